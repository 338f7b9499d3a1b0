/*
 * Unit tests for core/gateway/settle.c, the master's side: a worker (a child here)
 * dies with intents open, one of them holding a budget reservation, one
 * finished with a row that did commit, one whose row failed, and one never
 * filled. sl_settle_dead writes exactly one row for each request that needs
 * one (worker_died, estimated when it went upstream; the finished row as
 * it was), none twice, releases the reservation and frees the entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/gateway/account.h"
#include "core/gateway/intent.h"
#include "core/base/log.h"
#include "core/gateway/settle.h"
#include "storage/db.h"
#include "storage/ledger.h"
#include "storage/spend.h"

#define RESERVED 1000000

typedef struct rows {
    unsigned n;
    sl_ledger_row_t open, unsent, committed, pending;
    unsigned committed_n;
    char strs[4][64];
} rows_t;

static int reserve_txn(sl_txn_t *t, void *arg);
static int commit_txn(sl_txn_t *t, void *arg);
static int worker(const char *path);
static int on_row(void *arg, const sl_ledger_row_t *row);
static void count_cb(void *arg, sl_intent_t *in);
static void test_dead_worker(void **state);
static void test_admit_model(void **state);

static const sl_budget_ref_t settle_ref = { SL_BUDGET_KEY, "key_0123456789abcdef", 5000000000,
                                            SL_BUDGET_TOTAL };


static int
reserve_txn(sl_txn_t *t, void *arg)
{
    (void) arg;
    return sl_spend_reserve(t, &settle_ref, 1, RESERVED, time(NULL), NULL);
}


static int
commit_txn(sl_txn_t *t, void *arg)
{
    sl_intent_t *in = arg;
    sl_ledger_row_t row;

    memset(&row, 0, sizeof(row));
    row.time_ns = 1;
    row.request_id = "r-committed";
    row.status = 200;
    return sl_ledger_append_key(t, &row, in->row_key);
}


/* The dying worker: exit codes name the step that failed. */
static int
worker(const char *path)
{
    sl_intent_t *a, *b, *c, *d, *e;
    sl_db_t *db;
    time_t now = time(NULL);

    a = sl_intent_open();
    b = sl_intent_open();
    c = sl_intent_open();
    d = sl_intent_open();
    e = sl_intent_open();
    if (a == NULL || b == NULL || c == NULL || d == NULL || e == NULL) {
        return 10;
    }
    if (sl_db_open(path, 1 << 20, 0, &db) != 0 || sl_db_write(db, reserve_txn, NULL) != 0) {
        return 11;
    }
    /* in flight upstream, with a reservation: 400 bytes sent, 100 relayed */
    sl_intent_str(a->request_id, sizeof(a->request_id), "r-open");
    sl_intent_str(a->key_id, sizeof(a->key_id), settle_ref.id);
    sl_intent_str(a->model, sizeof(a->model), "gpt-4o-mini");
    a->start_ns = (int64_t) now * 1000000000;
    a->body_len = 400;
    sl_intent_update(a, 100);
    a->reserved = RESERVED;
    a->reserved_at = now;
    a->nrefs = 1;
    a->ref_kind[0] = SL_BUDGET_KEY;
    a->ref_period[0] = SL_BUDGET_TOTAL;
    /* admitted, never sent */
    sl_intent_str(b->request_id, sizeof(b->request_id), "r-unsent");
    /* finished, and its row committed just before the death */
    sl_intent_str(c->request_id, sizeof(c->request_id), "r-committed");
    if (sl_db_write(db, commit_txn, c) != 0) {
        return 12;
    }
    c->has_key = 1;
    c->status = 200;
    c->state = SL_INTENT_DONE;
    /* finished, its row failed to commit */
    sl_intent_str(d->request_id, sizeof(d->request_id), "r-pending");
    d->status = 200;
    d->prompt_tokens = 7;
    d->completion_tokens = 9;
    d->state = SL_INTENT_DONE;
    /* e: claimed and never filled */
    sl_db_close(db);
    return 0;
}


static int
on_row(void *arg, const sl_ledger_row_t *row)
{
    rows_t *r = arg;
    sl_ledger_row_t *to = NULL;
    int i = -1;

    r->n++;
    if (strcmp(row->request_id, "r-open") == 0) {
        to = &r->open;
        i = 0;
    } else if (strcmp(row->request_id, "r-unsent") == 0) {
        to = &r->unsent;
        i = 1;
    } else if (strcmp(row->request_id, "r-committed") == 0) {
        to = &r->committed;
        r->committed_n++;
        i = 2;
    } else if (strcmp(row->request_id, "r-pending") == 0) {
        to = &r->pending;
        i = 3;
    }
    if (to != NULL) {
        *to = *row;
        snprintf(r->strs[i], sizeof(r->strs[i]), "%s", row->model);
        to->model = r->strs[i];
    }
    return 0;
}


static void
count_cb(void *arg, sl_intent_t *in)
{
    (void) in;
    (*(size_t *) arg)++;
}


static void
test_dead_worker(void **state)
{
    char dir[64], log[128], path[128];
    sl_conf_t conf;
    rows_t r;
    sl_spend_t s;
    sl_txn_t *t;
    sl_db_t *db;
    size_t rows = 0, n = 0;
    int status;
    pid_t pid;

    (void) state;
    sl_test_tmpdir("/tmp/sl-settle-XXXXXX", dir, sizeof(dir), log, sizeof(log));
    snprintf(path, sizeof(path), "%s/db", dir);
    memset(&conf, 0, sizeof(conf));
    conf.storage_path = path;
    conf.storage_map_size = 1 << 20;
    conf.ledger_enabled = true;
    conf.workers = 1;
    conf.max_connections = 4;
    assert_int_equal(sl_intent_init(sl_settle_capacity(&conf)), 0);
    assert_int_equal(sl_intent_capacity(), 8);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(worker(path));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_rc(sl_settle_dead(&conf, pid, true, &rows), 0);
    assert_int_equal(rows, 3);
    assert_int_equal(sl_intent_scan(pid, count_cb, &n), 0);

    memset(&r, 0, sizeof(r));
    assert_rc(sl_db_open(path, 1 << 20, SL_DB_RDONLY, &db), 0);
    assert_rc(sl_db_read(db, &t), 0);
    assert_rc(sl_ledger_scan(t, 0, on_row, &r), 0);
    assert_rc(sl_spend_get(t, SL_BUDGET_KEY, settle_ref.id, SL_BUDGET_TOTAL, time(NULL), &s), 0);
    sl_db_abort(t);
    sl_db_close(db);

    assert_int_equal(r.n, 4);
    assert_int_equal(r.committed_n, 1);
    assert_int_equal(r.open.status, SL_LEDGER_STATUS_WORKER_DIED);
    assert_int_equal(r.open.flags,
                     SL_LEDGER_WORKER_DIED | SL_LEDGER_ESTIMATED | SL_LEDGER_UNPRICED);
    assert_int_equal(r.open.prompt_tokens, 100);
    assert_int_equal(r.open.completion_tokens, 25);
    assert_int_equal(r.open.attempts, 1);
    assert_string_equal(r.open.model, "gpt-4o-mini");
    assert_int_equal(r.unsent.status, SL_LEDGER_STATUS_WORKER_DIED);
    assert_int_equal(r.unsent.flags, SL_LEDGER_WORKER_DIED);
    assert_int_equal(r.unsent.prompt_tokens, 0);
    assert_int_equal(r.pending.status, 200);
    assert_int_equal(r.pending.prompt_tokens, 7);
    assert_int_equal(r.pending.completion_tokens, 9);
    /* the reservation is gone; the unpriced estimate cost nothing */
    assert_int_equal(s.reserved, 0);
    assert_int_equal(s.spent, 0);

    sl_log_open(NULL, SL_LOG_WARN);
    if (getenv("SL_TEST_KEEP") == NULL) {
        sl_test_rmtree(dir);
    }
}


/*
 * The intent names the model as the client asked for it: the string's bytes
 * when it has no escape, decoded when it has (compared with sl_json_string,
 * the reference), cut to the field at a UTF-8 boundary.
 */
static void
test_admit_model(void **state)
{
    static const struct {
        const char *body;
        const char *model;
    } cases[] = {
        { "{\"model\":\"gpt-4o-mini\"}", "gpt-4o-mini" },
        { "{\"model\":\"gpt\\u002d4o\"}", "gpt-4o" },
        { "{\"model\":\"a\\\"b\\\\c\"}", "a\"b\\c" },
        { "{\"model\":\"caf\xc3\xa9\"}", "caf\xc3\xa9" },
        { "{\"model\":\"x\"}", "x" },
    };
    char long_body[600], long_model[SL_INTENT_MODEL_MAX + 1];
    sl_pool_t *pool = sl_pool_create(0);
    sl_json_t *doc = sl_json_create(pool);
    sl_conf_t conf;

    (void) state;
    memset(&conf, 0, sizeof(conf));
    assert_int_equal(sl_intent_init(8), 0);
    for (size_t i = 0; i <= sizeof(cases) / sizeof(cases[0]); i++) {
        const char *body = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].body : long_body;
        const char *want = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].model : long_model;
        sl_call_t call;
        sl_acct_t a;
        sl_str_t ref;

        if (body == long_body) {
            /* 199 ASCII bytes and then a two-byte character: the field keeps the 199 */
            snprintf(long_body, sizeof(long_body), "{\"model\":\"%0199d\xc3\xa9tail\"}", 0);
            snprintf(long_model, sizeof(long_model), "%0199d", 0);
        }
        memset(&call, 0, sizeof(call));
        memset(&a, 0, sizeof(a));
        assert_int_equal(sl_json_parse(doc, body, strlen(body), NULL), 0);
        call.pool = pool;
        call.doc = doc;
        call.model = sl_json_get(doc, SL_JSON_ROOT, "model");
        call.client_api = SL_API_CHAT;
        assert_int_equal(sl_json_string(doc, call.model, pool, &ref), 0);
        assert_int_equal(sl_settle_admit(&conf, &a, &call), 0);
        assert_non_null(a.intent);
        assert_string_equal(a.intent->model, want);
        assert_memory_equal(a.intent->model, ref.p, strlen(want));
        sl_intent_close(a.intent);
    }
    sl_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_worker),
        cmocka_unit_test(test_admit_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
