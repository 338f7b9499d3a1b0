/*
 * Unit tests of the store of stored responses (storage/responses.c: put,
 * get, visibility by key and team, delete, retention pruning, full pages
 * for ids stored out of order, the move from layout 1). The frontend's
 * translation is test_fe_responses.c's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "storage/db.h"
#include "storage/responses.h"
#include "testutil.h"

typedef struct test_ctx {
    char dir[256];
    char log[300];
    char path[300];
    sl_db_t *db;
    sl_pool_t *pool;
} test_ctx_t;

static int setup(void **state);
static int teardown(void **state);
static void test_store(void **state);
static void test_prune(void **state);
static void test_put_many(void **state);
static int put_txn_cb(sl_txn_t *t, void *arg);
static void test_put_txn(void **state);
static void test_pack(void **state);
static int put_layout1(sl_txn_t *t, void *arg);
static void test_migrate(void **state);


static int
setup(void **state)
{
    test_ctx_t *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    sl_test_tmpdir("/tmp/sl-resp-XXXXXX", c->dir, sizeof(c->dir), c->log, sizeof(c->log));
    snprintf(c->path, sizeof(c->path), "%s/db", c->dir);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &c->db), 0);
    c->pool = sl_pool_create(0);
    *state = c;
    return 0;
}


static int
teardown(void **state)
{
    test_ctx_t *c = *state;

    sl_db_close(c->db);
    sl_pool_destroy(c->pool);
    sl_log_open(NULL, SL_LOG_WARN);
    sl_test_rmtree(c->dir);
    free(c);
    return 0;
}


/* Put, get, visibility (the key, or its team), delete only by who may see it. */
static void
test_store(void **state)
{
    test_ctx_t *c = *state;
    sl_resp_rec_t rec;
    sl_txn_t *t;
    size_t n;

    assert_rc(sl_responses_put(c->db, "resp_1", "k1", "red", 1000, sl_str_lit("{\"a\":1}")), 0);
    assert_rc(sl_responses_put(c->db, "resp_2", "", "", 2000, sl_str_lit("{}")), 0);
    assert_rc(sl_responses_put(c->db, "", "k1", "", 1, sl_str_lit("{}")), -EINVAL);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_responses_get(t, "resp_1", c->pool, &rec), 0);
    assert_string_equal(rec.key_id, "k1");
    assert_string_equal(rec.team, "red");
    assert_int_equal(rec.created_ns, 1000);
    assert_int_equal(rec.json.len, 7);
    assert_memory_equal(rec.json.p, "{\"a\":1}", 7);
    assert_true(sl_responses_visible(&rec, "k1", ""));
    assert_true(sl_responses_visible(&rec, "k2", "red"));
    assert_false(sl_responses_visible(&rec, "k2", "blue"));
    assert_false(sl_responses_visible(&rec, "", ""));
    assert_rc(sl_responses_get(t, "resp_2", c->pool, &rec), 0);
    assert_true(sl_responses_visible(&rec, "", ""));    /* static keys share one identity */
    assert_false(sl_responses_visible(&rec, "k1", "")); /* no team: nobody else */
    assert_rc(sl_responses_get(t, "resp_3", c->pool, &rec), SL_ENOTFOUND);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSES, &n), 0);
    assert_int_equal(n, 2);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSE_IDS, &n), 0);
    assert_int_equal(n, 2);
    sl_db_abort(t);

    /* a replacement leaves one record */
    assert_rc(sl_responses_put(c->db, "resp_2", "", "", 2500, sl_str_lit("{\"v\":2}")), 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSES, &n), 0);
    assert_int_equal(n, 2);
    assert_rc(sl_responses_get(t, "resp_2", c->pool, &rec), 0);
    assert_int_equal(rec.created_ns, 2500);
    assert_memory_equal(rec.json.p, "{\"v\":2}", 7);
    sl_db_abort(t);

    assert_rc(sl_responses_del(c->db, "resp_1", "k9", "blue"), SL_ENOTFOUND);
    assert_rc(sl_responses_del(c->db, "resp_1", "k2", "red"), 0);
    assert_rc(sl_responses_del(c->db, "resp_1", "k1", "red"), SL_ENOTFOUND);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_responses_get(t, "resp_1", c->pool, &rec), SL_ENOTFOUND);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSES, &n), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSE_IDS, &n), 0);
    assert_int_equal(n, 1);
    sl_db_abort(t);
}


/* Retention: the oldest first, up to max, the index and the record both. */
static void
test_prune(void **state)
{
    test_ctx_t *c = *state;
    sl_resp_rec_t rec;
    size_t n = 0;
    sl_txn_t *t;

    for (int i = 1; i <= 5; i++) {
        char id[16];

        snprintf(id, sizeof(id), "resp_%d", i);
        assert_rc(sl_responses_put(c->db, id, "k", "", i * 100, sl_str_lit("{}")), 0);
    }
    /* replacing one moves it in the index */
    assert_rc(sl_responses_put(c->db, "resp_1", "k", "", 900, sl_str_lit("{}")), 0);
    assert_rc(sl_responses_prune(c->db, 350, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_responses_prune(c->db, 350, 10, &n), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_responses_prune(c->db, 350, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_responses_get(t, "resp_1", c->pool, &rec), 0);
    assert_rc(sl_responses_get(t, "resp_2", c->pool, &rec), SL_ENOTFOUND);
    assert_rc(sl_responses_get(t, "resp_3", c->pool, &rec), SL_ENOTFOUND);
    assert_rc(sl_responses_get(t, "resp_4", c->pool, &rec), 0);
    sl_db_abort(t);
}


/* A batch: one transaction for the valid ones, the invalid one left out. */
static void
test_put_many(void **state)
{
    test_ctx_t *c = *state;
    char long_id[SL_RESPONSES_ID_MAX + 2];
    sl_resp_put_t v[3] = {
        { "resp_a", "k1", "", 10, sl_str_lit("{\"a\":1}"), 7 },
        { long_id, "k1", "", 20, sl_str_lit("{}"), 7 },
        { "resp_b", "k2", "t", 30, sl_str_lit("{\"b\":2}"), 7 },
    };
    sl_resp_rec_t rec;
    sl_txn_t *t;

    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_rc(sl_responses_put_many(c->db, v, 3), 0);
    assert_int_equal(v[0].rc, 0);
    assert_int_equal(v[1].rc, -EINVAL);
    assert_int_equal(v[2].rc, 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_responses_get(t, "resp_a", c->pool, &rec), 0);
    assert_memory_equal(rec.json.p, "{\"a\":1}", 7);
    assert_rc(sl_responses_get(t, "resp_b", c->pool, &rec), 0);
    assert_string_equal(rec.team, "t");
    assert_int_equal(rec.created_ns, 30);
    sl_db_abort(t);
    /* nothing valid: no transaction, no error */
    assert_rc(sl_responses_put_many(c->db, &v[1], 1), 0);
    assert_int_equal(v[1].rc, -EINVAL);
}


/* A write of the caller's: an invalid entry first (refused, nothing written), then two. */
static int
put_txn_cb(sl_txn_t *t, void *arg)
{
    sl_resp_put_t *v = arg;
    int rc;

    assert_rc(sl_responses_put_txn(t, &v[0]), -EINVAL);
    rc = sl_responses_put_txn(t, &v[1]);
    if (rc == 0) {
        rc = sl_responses_put_txn(t, &v[2]);
    }
    return rc;
}


/* Responses stored inside another write transaction (the ledger's group commit), repeatably. */
static void
test_put_txn(void **state)
{
    test_ctx_t *c = *state;
    sl_resp_put_t v[3] = {
        { "", "k1", "", 10, sl_str_lit("{}"), 0 },
        { "resp_x", "k1", "", 20, sl_str_lit("{\"x\":1}"), 0 },
        { "resp_y", "k2", "t", 30, sl_str_lit("{\"y\":2}"), 0 },
    };
    sl_resp_rec_t rec;
    size_t n = 0;
    sl_txn_t *t;

    assert_rc(sl_db_write(c->db, put_txn_cb, v), 0);
    /* run again (as after the map grew): the same two, replaced, one index entry each */
    assert_rc(sl_db_write(c->db, put_txn_cb, v), 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_responses_get(t, "resp_x", c->pool, &rec), 0);
    assert_memory_equal(rec.json.p, "{\"x\":1}", 7);
    assert_rc(sl_responses_get(t, "resp_y", c->pool, &rec), 0);
    assert_string_equal(rec.team, "t");
    assert_rc(sl_db_count(t, SL_DBI_RESPONSES, &n), 0);
    assert_int_equal(n, 2); /* two records (their ids apart) */
    sl_db_abort(t);
}


/*
 * Ids arrive out of order (chosen when a request starts, stored when it
 * ends): here every pair is swapped. Records still fill their pages, three
 * of about 1 KiB to a 4 KiB page (100 pages and a branch page); keyed by
 * id, each swap split a page in the middle and left half of it empty
 * (157 pages).
 */
static void
test_pack(void **state)
{
    test_ctx_t *c = *state;
    char json[1001];
    sl_resp_rec_t rec;
    size_t n, pages;
    sl_txn_t *t;

    memset(json, 'x', 1000);
    json[0] = '{';
    json[999] = '}';
    json[1000] = '\0';
    for (int i = 0; i < 300; i++) {
        char id[32];

        snprintf(id, sizeof(id), "resp_%04d", i ^ 1);
        assert_rc(sl_responses_put(c->db, id, "key-1", "", i, (sl_str_t){ json, 1000 }), 0);
    }
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSES, &n), 0);
    assert_int_equal(n, 300);
    assert_rc(sl_db_pages(t, SL_DBI_RESPONSES, &pages), 0);
    assert_in_range(pages, 100, 102);
    for (int i = 0; i < 300; i++) {
        char id[32];

        snprintf(id, sizeof(id), "resp_%04d", i);
        assert_rc(sl_responses_get(t, id, c->pool, &rec), 0);
        assert_int_equal(rec.created_ns, i ^ 1);
        assert_int_equal(rec.json.len, 1000);
        assert_memory_equal(rec.json.p, json, 1000);
    }
    sl_db_abort(t);
}


/* Layout 1 as sluice wrote it: "r:" + id -> record version 1, "t:" + be64 created + id -> "". */
static int
put_layout1(sl_txn_t *t, void *arg)
{
    static const struct {
        const char *id, *key_id, *team, *json;
        uint8_t created;
        bool indexed;
    } v[] = {
        { "resp_b", "k1", "", "{\"b\":1}", 30, true },
        { "resp_a", "k2", "red", "{\"a\":1}", 10, true },
        { "resp_c", "", "", "{}", 20, false }, /* missed by the index */
    };
    uint8_t key[64], rec[64];
    int rc;

    (void) arg;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t il = strlen(v[i].id), kl = strlen(v[i].key_id), tl = strlen(v[i].team);
        size_t jl = strlen(v[i].json);

        memset(rec, 0, 12);
        rec[0] = 1;
        rec[1] = (uint8_t) kl;
        rec[2] = (uint8_t) tl;
        rec[11] = v[i].created;
        memcpy(rec + 12, v[i].key_id, kl);
        memcpy(rec + 12 + kl, v[i].team, tl);
        memcpy(rec + 12 + kl + tl, v[i].json, jl);
        memcpy(key, "r:", 2);
        memcpy(key + 2, v[i].id, il);
        rc = sl_db_put(t, SL_DBI_RESPONSES, key, 2 + il, rec, 12 + kl + tl + jl, false);
        if (rc == 0 && v[i].indexed) {
            memset(key, 0, 10);
            memcpy(key, "t:", 2);
            key[9] = v[i].created;
            memcpy(key + 10, v[i].id, il);
            rc = sl_db_put(t, SL_DBI_RESPONSES, key, 10 + il, "", 0, false);
        }
        if (rc != 0) {
            return rc;
        }
    }
    rc = sl_db_put(t, SL_DBI_RESPONSES, "r:resp_bad", 10, "\x09", 1, false);
    if (rc == 0) {
        rc = sl_db_put(t, SL_DBI_META, "schema_version", 14, "\x00\x00\x00\x01", 4, false);
    }
    return rc;
}


/*
 * Schema 1 to 2: opening the storage moves every response of layout 1 (the
 * indexed ones oldest first, then one the index missed), drops one that
 * does not decode, and numbering goes on after them.
 */
static void
test_migrate(void **state)
{
    test_ctx_t *c = *state;
    sl_resp_rec_t rec;
    size_t n;
    sl_txn_t *t;
    char *log;

    assert_rc(sl_db_write(c->db, put_layout1, NULL), 0);
    sl_db_close(c->db);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &c->db), 0);
    log = sl_test_slurp(c->log, &n);
    assert_non_null(strstr(log, "3 stored responses moved to the new layout"));
    assert_non_null(strstr(log, "stored response \"resp_bad\" does not decode: dropped"));
    assert_non_null(strstr(log, "migrated from schema 1 to 2"));
    free(log);

    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSES, &n), 0);
    assert_int_equal(n, 3);
    assert_rc(sl_db_count(t, SL_DBI_RESPONSE_IDS, &n), 0);
    assert_int_equal(n, 3);
    assert_rc(sl_responses_get(t, "resp_a", c->pool, &rec), 0);
    assert_string_equal(rec.key_id, "k2");
    assert_string_equal(rec.team, "red");
    assert_int_equal(rec.created_ns, 10);
    assert_memory_equal(rec.json.p, "{\"a\":1}", 7);
    assert_rc(sl_responses_get(t, "resp_b", c->pool, &rec), 0);
    assert_string_equal(rec.key_id, "k1");
    assert_int_equal(rec.created_ns, 30);
    assert_rc(sl_responses_get(t, "resp_c", c->pool, &rec), 0);
    assert_int_equal(rec.json.len, 2);
    assert_rc(sl_responses_get(t, "resp_bad", c->pool, &rec), SL_ENOTFOUND);
    sl_db_abort(t);

    /* numbered in that order: a (10), b (30), c (20); retention stops at b */
    assert_rc(sl_responses_put(c->db, "resp_d", "k1", "", 5, sl_str_lit("{}")), 0);
    assert_rc(sl_responses_prune(c->db, 25, 10, &n), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_responses_get(t, "resp_a", c->pool, &rec), SL_ENOTFOUND);
    assert_rc(sl_responses_get(t, "resp_b", c->pool, &rec), 0);
    assert_rc(sl_responses_get(t, "resp_c", c->pool, &rec), 0);
    assert_rc(sl_responses_get(t, "resp_d", c->pool, &rec), 0);
    sl_db_abort(t);
    assert_rc(sl_responses_prune(c->db, 35, 10, &n), 0);
    assert_int_equal(n, 3); /* b, c and d */
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
