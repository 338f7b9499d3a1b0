/*
 * Unit tests for storage/keys.c and storage/teams.c on a real environment:
 * the key text and id formats, authentication by hash, lookup by id and by
 * name, unique names (a refused create leaves nothing behind), spec
 * checking, revocation, updates (rename included), expiry, model globs,
 * records that are truncated, flipped or garbage (SL_ESTORE and a log line,
 * never a crash), the plaintext never reaching the file, and teams.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "storage/db.h"
#include "storage/keys.h"
#include "storage/spend.h"
#include "storage/teams.h"


typedef struct test_ctx {
    char dir[64];
    char path[128];
    char log[128];
    sl_db_t *db;
    sl_pool_t *pool;
} test_ctx_t;

typedef struct raw_put {
    sl_dbi_e dbi;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
} raw_put_t;

typedef struct list_acc {
    unsigned n;
    unsigned stop_at;
    const char *names[16];
} list_acc_t;

static int setup(void **state);
static int teardown(void **state);
static bool log_has(const test_ctx_t *c, const char *needle);
static int raw_put_txn(sl_txn_t *t, void *arg);
static void raw_put(sl_db_t *db, sl_dbi_e dbi, const void *key, size_t klen, const void *val,
                    size_t vlen);
static sl_str_t raw_get(test_ctx_t *c, sl_dbi_e dbi, const void *key, size_t klen);
static unsigned count_dbi(sl_db_t *db, sl_dbi_e dbi);
static sl_key_t *create(test_ctx_t *c, const char *name, char **text);
static int auth(test_ctx_t *c, const char *text, sl_key_t **k);
static int find(test_ctx_t *c, const char *id_or_name, sl_key_t **k);
static int list_cb(void *arg, const sl_key_t *k);
static int team_list_cb(void *arg, const sl_team_t *team);
static void test_create_and_auth(void **state);
static void test_find(void **state);
static void test_unique_names(void **state);
static void test_spec_check(void **state);
static void test_revoke(void **state);
static void test_update(void **state);
static void test_expiry(void **state);
static void test_globs(void **state);
static void test_list(void **state);
static void test_corrupt_records(void **state);
static void test_plaintext_absent(void **state);
static void test_teams(void **state);
static uint32_t fnv1a(const uint8_t *p, size_t len);
static void test_key_guard(void **state);
static void test_team_guard(void **state);
static void test_auth_cache(void **state);
static void test_auth_cache_record(void **state);
static void same_key(const sl_key_t *a, const sl_key_t *b);


static int
setup(void **state)
{
    test_ctx_t *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    sl_test_tmpdir("/tmp/sl-keys-XXXXXX", c->dir, sizeof(c->dir), c->log, sizeof(c->log));
    snprintf(c->path, sizeof(c->path), "%s/db", c->dir);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &c->db), 0);
    c->pool = sl_pool_create(0);
    assert_non_null(c->pool);
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


static bool
log_has(const test_ctx_t *c, const char *needle)
{
    size_t len;
    char *text = sl_test_slurp(c->log, &len);
    bool found = memmem(text, len, needle, strlen(needle)) != NULL;

    free(text);
    return found;
}


static int
raw_put_txn(sl_txn_t *t, void *arg)
{
    raw_put_t *a = arg;

    return sl_db_put(t, a->dbi, a->key, a->klen, a->val, a->vlen, false);
}


static void
raw_put(sl_db_t *db, sl_dbi_e dbi, const void *key, size_t klen, const void *val, size_t vlen)
{
    raw_put_t a = { dbi, key, klen, val, vlen };

    assert_rc(sl_db_write(db, raw_put_txn, &a), 0);
}


/* A copy (in the test pool) of a raw record. */
static sl_str_t
raw_get(test_ctx_t *c, sl_dbi_e dbi, const void *key, size_t klen)
{
    sl_txn_t *t;
    sl_str_t v, copy;

    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_db_get(t, dbi, key, klen, &v), 0);
    copy.p = sl_pstrndup(c->pool, v.p, v.len);
    copy.len = v.len;
    sl_db_abort(t);
    return copy;
}


static unsigned
count_dbi(sl_db_t *db, sl_dbi_e dbi)
{
    sl_txn_t *t;
    size_t n = 0;

    assert_rc(sl_db_read(db, &t), 0);
    assert_rc(sl_db_count(t, dbi, &n), 0);
    sl_db_abort(t);
    return (unsigned) n;
}


static sl_key_t *
create(test_ctx_t *c, const char *name, char **text)
{
    sl_key_spec_t spec;
    sl_key_t *k;

    memset(&spec, 0, sizeof(spec));
    spec.name = name;
    assert_rc(sl_keys_create(c->db, &spec, c->pool, &k, text), 0);
    return k;
}


static int
auth(test_ctx_t *c, const char *text, sl_key_t **k)
{
    sl_txn_t *t;
    int rc;

    assert_rc(sl_db_read(c->db, &t), 0);
    rc = sl_keys_auth(t, text, strlen(text), c->pool, k);
    sl_db_abort(t);
    return rc;
}


static int
find(test_ctx_t *c, const char *id_or_name, sl_key_t **k)
{
    sl_txn_t *t;
    int rc;

    assert_rc(sl_db_read(c->db, &t), 0);
    rc = sl_keys_find(t, id_or_name, c->pool, k);
    sl_db_abort(t);
    return rc;
}


static int
list_cb(void *arg, const sl_key_t *k)
{
    list_acc_t *a = arg;

    if (a->n < 16) {
        a->names[a->n] = k->name;
    }
    a->n++;
    return a->stop_at != 0 && a->n == a->stop_at ? 1 : 0;
}


static int
team_list_cb(void *arg, const sl_team_t *team)
{
    list_acc_t *a = arg;

    if (a->n < 16) {
        a->names[a->n] = team->name;
    }
    a->n++;
    return 0;
}


static void
test_create_and_auth(void **state)
{
    test_ctx_t *c = *state;
    int64_t now = (int64_t) time(NULL);
    sl_key_spec_t spec;
    const char *models[] = { "gpt-4o*", "anthropic/*" };
    sl_key_t *k, *a;
    char *text, wrong[SL_KEY_TEXT_LEN + 2];

    memset(&spec, 0, sizeof(spec));
    spec.name = "billing-svc";
    spec.team = "payments";
    spec.models = models;
    spec.nmodels = 2;
    spec.rpm = 60;
    spec.tpm = 100000;
    spec.budget = 12500000000ULL;
    spec.period = SL_BUDGET_MONTH;
    spec.expires = now + 3600;
    spec.metadata = "{ \"owner\": \"ana\", \"cost_center\": 7 }";
    assert_rc(sl_keys_create(c->db, &spec, c->pool, &k, &text), 0);

    /* sk-sluice- + 43 base62 characters */
    assert_int_equal(strlen(text), SL_KEY_TEXT_LEN);
    assert_int_equal(strncmp(text, "sk-sluice-", 10), 0);
    for (size_t i = 10; i < SL_KEY_TEXT_LEN; i++) {
        assert_non_null(
            strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", text[i]));
    }
    assert_int_equal(strlen(k->id), SL_KEY_ID_LEN);
    assert_int_equal(strncmp(k->id, "key_", 4), 0);
    assert_string_equal(k->last4, text + SL_KEY_TEXT_LEN - 4);
    assert_true(k->created >= now && k->created <= now + 5);

    assert_rc(auth(c, text, &a), 0);
    assert_string_equal(a->id, k->id);
    assert_string_equal(a->name, "billing-svc");
    assert_string_equal(a->team, "payments");
    assert_int_equal(a->nmodels, 2);
    assert_string_equal(a->models[0], "gpt-4o*");
    assert_string_equal(a->models[1], "anthropic/*");
    assert_null(a->models[2]);
    assert_int_equal(a->rpm, 60);
    assert_int_equal(a->tpm, 100000);
    assert_int_equal(a->budget, 12500000000ULL);
    assert_int_equal(a->period, SL_BUDGET_MONTH);
    assert_int_equal(a->expires, now + 3600);
    assert_int_equal(a->revoked, 0);
    assert_int_equal(a->created, k->created);
    /* metadata is normalized: compact, keys sorted */
    assert_string_equal(a->metadata, "{\"cost_center\":7,\"owner\":\"ana\"}");
    assert_string_equal(a->last4, k->last4);
    assert_true(sl_key_is_active(a, now));

    /* anything but the exact text is unknown */
    snprintf(wrong, sizeof(wrong), "%s", text);
    wrong[20] = wrong[20] == 'a' ? 'b' : 'a';
    assert_rc(auth(c, wrong, &a), SL_EAUTH);
    assert_null(a);
    snprintf(wrong, sizeof(wrong), "%sx", text);
    assert_rc(auth(c, wrong, &a), SL_EAUTH);
    assert_rc(auth(c, "", &a), SL_EAUTH);
    assert_rc(auth(c, k->id, &a), SL_EAUTH);

    /* a second key is different in every way */
    k = create(c, "other", &text);
    assert_rc(auth(c, text, &a), 0);
    assert_string_equal(a->name, "other");
    assert_null(a->team);
    assert_null(a->metadata);
    assert_int_equal(a->nmodels, 0);
    assert_int_equal(a->expires, 0);
    assert_false(log_has(c, "[error]"));
}


static void
test_find(void **state)
{
    test_ctx_t *c = *state;
    sl_key_t *k, *f;
    char *text;

    k = create(c, "finder", &text);
    assert_rc(find(c, "finder", &f), 0);
    assert_string_equal(f->id, k->id);
    assert_rc(find(c, k->id, &f), 0);
    assert_string_equal(f->name, "finder");
    assert_rc(find(c, "nobody", &f), SL_ENOTFOUND);
    assert_null(f);
    assert_rc(find(c, "key_0000000000000000", &f), SL_ENOTFOUND);
    assert_rc(find(c, "", &f), SL_ENOTFOUND);
    /* the key text is not a name */
    assert_rc(find(c, text, &f), SL_ENOTFOUND);
}


static void
test_unique_names(void **state)
{
    test_ctx_t *c = *state;
    sl_key_spec_t spec;
    sl_key_t *k;
    char *text;

    create(c, "dup", &text);
    memset(&spec, 0, sizeof(spec));
    spec.name = "dup";
    assert_rc(sl_keys_create(c->db, &spec, c->pool, &k, &text), -EEXIST);
    assert_null(k);
    assert_null(text);
    /* nothing of the refused key was written */
    assert_int_equal(count_dbi(c->db, SL_DBI_KEYS), 1);
    assert_int_equal(count_dbi(c->db, SL_DBI_KEY_HASH), 1);
    assert_int_equal(count_dbi(c->db, SL_DBI_KEY_NAME), 1);
    /* names are case-sensitive */
    create(c, "Dup", &text);
    assert_int_equal(count_dbi(c->db, SL_DBI_KEYS), 2);
}


static void
test_spec_check(void **state)
{
    test_ctx_t *c = *state;
    int64_t now = 1700000000;
    const char *long_glob_models[1];
    char err[256], longname[80], longglob[200];
    const char *bad_models[] = { "gpt 4" };
    const char *bad_names[] = {
        "", "-lead", ".dot", "has space", "slash/x", "key_abc", "\xc3\xa4"
    };
    const char *comma[] = { "a,b" };
    sl_key_spec_t s;
    sl_key_t *k;
    char *text;

    memset(&s, 0, sizeof(s));
    s.name = "ok.name_1-x";
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), 0);

    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        s.name = bad_names[i];
        err[0] = '\0';
        assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
        assert_true(strlen(err) > 0);
        assert_rc(sl_keys_create(c->db, &s, c->pool, &k, &text), -EINVAL);
    }
    memset(longname, 'a', 65);
    longname[65] = '\0';
    s.name = longname;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    longname[64] = '\0';
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), 0);

    s.name = "fine";
    s.team = "bad team";
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "team"));
    s.team = "";
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), 0);

    s.models = bad_models;
    s.nmodels = 1;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    s.models = comma;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    memset(longglob, 'g', 129);
    longglob[129] = '\0';
    long_glob_models[0] = longglob;
    s.models = long_glob_models;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    s.nmodels = 65;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too many"));
    s.nmodels = 0;

    s.budget = 5;
    s.period = (sl_budget_period_e) 9;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    s.period = SL_BUDGET_TOTAL;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), 0);

    s.expires = now;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "past"));
    s.expires = now + 1;
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), 0);

    s.metadata = "[1,2]";
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "object"));
    s.metadata = "{\"a\":";
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not valid JSON"));
    s.metadata = "{\"a\":1,\"a\":2}";
    assert_rc(sl_key_spec_check(&s, ~0u, now, err, sizeof(err)), -EINVAL);
    /* only the fields asked about are checked */
    assert_rc(sl_key_spec_check(&s, SL_KEY_SET_RPM, now, err, sizeof(err)), 0);
    assert_int_equal(count_dbi(c->db, SL_DBI_KEYS), 0);
}


static void
test_revoke(void **state)
{
    test_ctx_t *c = *state;
    int64_t now = (int64_t) time(NULL);
    sl_key_t *k, *a;
    char *text;

    k = create(c, "to-revoke", &text);
    assert_rc(sl_keys_revoke(c->db, "to-revoke", now), 0);
    /* still found, so the caller can say "revoked" rather than "unknown" */
    assert_rc(auth(c, text, &a), 0);
    assert_int_equal(a->revoked, now);
    assert_false(sl_key_is_active(a, now));
    assert_string_equal(sl_key_status(a, now), "revoked");

    /* revoking again keeps the first time; by id works too */
    assert_rc(sl_keys_revoke(c->db, k->id, now + 100), 0);
    assert_rc(auth(c, text, &a), 0);
    assert_int_equal(a->revoked, now);
    assert_rc(sl_keys_revoke(c->db, "nobody", now), SL_ENOTFOUND);
}


static void
test_update(void **state)
{
    test_ctx_t *c = *state;
    int64_t now = (int64_t) time(NULL);
    const char *models[] = { "openai/*" };
    sl_key_spec_t ch;
    sl_key_t *k, *u, *a;
    char *text, *text2;

    k = create(c, "old-name", &text);
    create(c, "taken", &text2);

    memset(&ch, 0, sizeof(ch));
    ch.name = "new-name";
    ch.models = models;
    ch.nmodels = 1;
    ch.rpm = 10;
    ch.budget = 1000000000ULL;
    ch.period = SL_BUDGET_DAY;
    ch.expires = now + 86400;
    ch.metadata = "{\"b\":1}";
    ch.team = "t1";
    assert_rc(sl_keys_update(c->db, "old-name", &ch, ~0u, c->pool, &u), 0);
    assert_string_equal(u->name, "new-name");
    assert_string_equal(u->id, k->id);

    assert_rc(auth(c, text, &a), 0);
    assert_string_equal(a->name, "new-name");
    assert_string_equal(a->team, "t1");
    assert_int_equal(a->nmodels, 1);
    assert_int_equal(a->rpm, 10);
    assert_int_equal(a->tpm, 0);
    assert_int_equal(a->budget, 1000000000ULL);
    assert_int_equal(a->period, SL_BUDGET_DAY);
    assert_int_equal(a->expires, now + 86400);
    assert_string_equal(a->metadata, "{\"b\":1}");
    assert_int_equal(a->created, k->created);
    assert_rc(find(c, "old-name", &a), SL_ENOTFOUND);
    assert_rc(find(c, "new-name", &a), 0);

    /* only the named fields change; clearing works */
    memset(&ch, 0, sizeof(ch));
    assert_rc(sl_keys_update(c->db, k->id, &ch,
                             SL_KEY_SET_EXPIRES | SL_KEY_SET_BUDGET | SL_KEY_SET_MODELS
                                 | SL_KEY_SET_TEAM | SL_KEY_SET_METADATA,
                             c->pool, NULL),
              0);
    assert_rc(auth(c, text, &a), 0);
    assert_int_equal(a->expires, 0);
    assert_int_equal(a->budget, 0);
    assert_int_equal(a->nmodels, 0);
    assert_null(a->team);
    assert_null(a->metadata);
    assert_int_equal(a->rpm, 10);
    assert_string_equal(a->name, "new-name");

    /* a taken name is refused and nothing changes */
    ch.name = "taken";
    ch.rpm = 99;
    assert_rc(sl_keys_update(c->db, "new-name", &ch, SL_KEY_SET_NAME | SL_KEY_SET_RPM, c->pool, &u),
              -EEXIST);
    assert_null(u);
    assert_rc(auth(c, text, &a), 0);
    assert_string_equal(a->name, "new-name");
    assert_int_equal(a->rpm, 10);
    assert_rc(auth(c, text2, &a), 0);
    assert_string_equal(a->name, "taken");

    /* renaming to its own name is fine; invalid input and unknown keys are refused */
    ch.name = "new-name";
    assert_rc(sl_keys_update(c->db, "new-name", &ch, SL_KEY_SET_NAME, c->pool, NULL), 0);
    ch.name = "bad name";
    assert_rc(sl_keys_update(c->db, "new-name", &ch, SL_KEY_SET_NAME, c->pool, NULL), -EINVAL);
    assert_rc(sl_keys_update(c->db, "ghost", &ch, SL_KEY_SET_RPM, c->pool, NULL), SL_ENOTFOUND);
    assert_int_equal(count_dbi(c->db, SL_DBI_KEY_NAME), 2);
}


static void
test_expiry(void **state)
{
    test_ctx_t *c = *state;
    int64_t now = (int64_t) time(NULL);
    sl_key_spec_t spec;
    sl_key_t *k, *a;
    char *text;

    memset(&spec, 0, sizeof(spec));
    spec.name = "short-lived";
    spec.expires = now + 10;
    assert_rc(sl_keys_create(c->db, &spec, c->pool, &k, &text), 0);
    assert_rc(auth(c, text, &a), 0);
    assert_true(sl_key_is_active(a, now));
    assert_true(sl_key_is_active(a, now + 9));
    assert_false(sl_key_is_active(a, now + 10));
    assert_string_equal(sl_key_status(a, now + 10), "expired");
    assert_string_equal(sl_key_status(a, now), "active");

    /* an expiry in the past is refused at creation */
    spec.name = "already-dead";
    spec.expires = now - 1;
    assert_rc(sl_keys_create(c->db, &spec, c->pool, &k, &text), -EINVAL);
}


static void
test_globs(void **state)
{
    sl_key_t k;
    const char *models[] = { "gpt-4o*", "anthropic/*", "exact-model" };

    memset(&k, 0, sizeof(k));
    assert_true(sl_key_allows_model(&k, "anything/at-all"));
    k.models = models;
    k.nmodels = 3;
    assert_true(sl_key_allows_model(&k, "gpt-4o"));
    assert_true(sl_key_allows_model(&k, "gpt-4o-mini"));
    assert_true(sl_key_allows_model(&k, "anthropic/claude-haiku-4-5"));
    assert_true(sl_key_allows_model(&k, "exact-model"));
    assert_false(sl_key_allows_model(&k, "exact-model-2"));
    assert_false(sl_key_allows_model(&k, "gpt-3.5-turbo"));
    assert_false(sl_key_allows_model(&k, "openai/gpt-4o"));
    assert_false(sl_key_allows_model(&k, ""));
    assert_false(sl_key_allows_model(&k, "GPT-4O"));
}


static void
test_list(void **state)
{
    test_ctx_t *c = *state;
    list_acc_t acc;
    sl_txn_t *t;
    char *text;

    create(c, "a", &text);
    create(c, "b", &text);
    create(c, "c", &text);
    assert_rc(sl_db_read(c->db, &t), 0);
    memset(&acc, 0, sizeof(acc));
    assert_rc(sl_keys_list(t, c->pool, list_cb, &acc), 0);
    assert_int_equal(acc.n, 3);
    memset(&acc, 0, sizeof(acc));
    acc.stop_at = 2;
    assert_rc(sl_keys_list(t, c->pool, list_cb, &acc), 0);
    assert_int_equal(acc.n, 2);
    sl_db_abort(t);
}


/*
 * Every truncation and every single-byte change of a real record is
 * refused with SL_ESTORE and a log line; so are garbage and an empty value.
 * The other keys still list, and the list reports the damage.
 */
static void
test_corrupt_records(void **state)
{
    test_ctx_t *c = *state;
    uint8_t hash[SL_CRYPTO_SHA256_LEN];
    sl_key_t *k, *a;
    sl_str_t rec;
    list_acc_t acc;
    sl_txn_t *t;
    char *text, *bad;
    const char *id;

    create(c, "healthy", &text);
    k = create(c, "victim", &text);
    id = k->id;
    rec = raw_get(c, SL_DBI_KEYS, id, strlen(id));
    bad = sl_palloc(c->pool, rec.len);

    for (size_t len = 0; len < rec.len; len += 7) {
        raw_put(c->db, SL_DBI_KEYS, id, strlen(id), rec.p, len);
        assert_rc(auth(c, text, &a), SL_ESTORE);
        assert_null(a);
    }
    for (size_t i = 0; i < rec.len; i++) {
        memcpy(bad, rec.p, rec.len);
        bad[i] ^= (char) (1 + i % 255);
        raw_put(c->db, SL_DBI_KEYS, id, strlen(id), bad, rec.len);
        assert_rc(auth(c, text, &a), SL_ESTORE);
    }
    memset(bad, 0xff, rec.len);
    raw_put(c->db, SL_DBI_KEYS, id, strlen(id), bad, rec.len);
    assert_rc(auth(c, text, &a), SL_ESTORE);
    assert_rc(find(c, "victim", &a), SL_ESTORE);
    assert_true(log_has(c, "is corrupt"));
    assert_true(log_has(c, id));

    assert_rc(sl_db_read(c->db, &t), 0);
    memset(&acc, 0, sizeof(acc));
    assert_rc(sl_keys_list(t, c->pool, list_cb, &acc), SL_ESTORE);
    assert_int_equal(acc.n, 1);
    assert_string_equal(acc.names[0], "healthy");
    sl_db_abort(t);

    /* the hash index pointing at a missing record, or at a malformed id */
    raw_put(c->db, SL_DBI_KEYS, id, strlen(id), rec.p, rec.len);
    assert_rc(auth(c, text, &a), 0);
    sl_crypto_sha256(text, strlen(text), hash);
    raw_put(c->db, SL_DBI_KEY_HASH, hash, sizeof(hash), "key_0123456789abcdef", 20);
    sl_keys_auth_forget(); /* the index is never rewritten: its cache has to be told */
    assert_rc(auth(c, text, &a), SL_ESTORE);
    assert_true(log_has(c, "which is missing"));
    raw_put(c->db, SL_DBI_KEY_HASH, hash, sizeof(hash), "x", 1);
    assert_rc(auth(c, text, &a), SL_ESTORE);
}


static void
test_plaintext_absent(void **state)
{
    test_ctx_t *c = *state;
    char *texts[20], file[256], name[16];
    uint8_t hash[SL_CRYPTO_SHA256_LEN];
    size_t len;
    char *data;

    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        create(c, name, &texts[i]);
    }
    sl_db_close(c->db);
    c->db = NULL;
    snprintf(file, sizeof(file), "%s/data.mdb", c->path);
    data = sl_test_slurp(file, &len);
    for (int i = 0; i < 20; i++) {
        /* neither the text, nor its random part, nor a long piece of it */
        assert_null(memmem(data, len, texts[i], strlen(texts[i])));
        assert_null(memmem(data, len, texts[i] + 10, 43));
        assert_null(memmem(data, len, texts[i] + 20, 16));
        /* but its hash is there */
        sl_crypto_sha256(texts[i], strlen(texts[i]), hash);
        assert_non_null(memmem(data, len, hash, sizeof(hash)));
    }
    free(data);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &c->db), 0);
}


static void
test_teams(void **state)
{
    test_ctx_t *c = *state;
    sl_team_t *team;
    list_acc_t acc;
    sl_txn_t *t;

    assert_true(sl_team_name_valid("platform"));
    assert_false(sl_team_name_valid("a b"));
    assert_rc(sl_teams_set(c->db, "platform", 50000000000ULL, SL_BUDGET_MONTH, 1000), 0);
    assert_rc(sl_teams_set(c->db, "data", 1, SL_BUDGET_DAY, 1000), 0);
    assert_rc(sl_teams_set(c->db, "bad name", 1, SL_BUDGET_DAY, 1000), -EINVAL);
    assert_rc(sl_teams_set(c->db, "x", 1, (sl_budget_period_e) 7, 1000), -EINVAL);
    /* replacing keeps the creation time */
    assert_rc(sl_teams_set(c->db, "platform", 60000000000ULL, SL_BUDGET_TOTAL, 2000), 0);

    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_teams_get(t, "platform", c->pool, &team), 0);
    assert_string_equal(team->name, "platform");
    assert_int_equal(team->budget, 60000000000ULL);
    assert_int_equal(team->period, SL_BUDGET_TOTAL);
    assert_int_equal(team->created, 1000);
    assert_int_equal(team->updated, 2000);
    assert_rc(sl_teams_get(t, "nope", c->pool, &team), SL_ENOTFOUND);
    memset(&acc, 0, sizeof(acc));
    assert_rc(sl_teams_list(t, c->pool, team_list_cb, &acc), 0);
    assert_int_equal(acc.n, 2);
    assert_string_equal(acc.names[0], "data");
    assert_string_equal(acc.names[1], "platform");
    sl_db_abort(t);

    raw_put(c->db, SL_DBI_TEAMS, "data", 4, "garbage", 7);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_teams_get(t, "data", c->pool, &team), SL_ESTORE);
    memset(&acc, 0, sizeof(acc));
    assert_rc(sl_teams_list(t, c->pool, team_list_cb, &acc), SL_ESTORE);
    assert_int_equal(acc.n, 1);
    sl_db_abort(t);
    assert_true(log_has(c, "team record \"data\" is corrupt"));

    assert_rc(sl_teams_rm(c->db, "platform"), 0);
    assert_rc(sl_teams_rm(c->db, "platform"), SL_ENOTFOUND);
    assert_int_equal(count_dbi(c->db, SL_DBI_TEAMS), 1);
}


static uint32_t
fnv1a(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}


/* A key's guardrail policy: set, shown, changed, cleared; version 1 records still read. */
static void
test_key_guard(void **state)
{
    test_ctx_t *c = *state;
    sl_key_spec_t spec;
    sl_key_t *k;
    json_t *j;
    char *text;
    uint8_t rec[256], *p = rec;
    uint32_t sum;
    static const char id[] = "key_00112233445566aa";

    memset(&spec, 0, sizeof(spec));
    spec.name = "guarded";
    spec.guard = "strict";
    assert_rc(sl_keys_create(c->db, &spec, c->pool, &k, &text), 0);
    assert_string_equal(k->guard, "strict");
    assert_rc(auth(c, text, &k), 0);
    assert_string_equal(k->guard, "strict");
    j = sl_key_json(k, time(NULL), NULL);
    assert_string_equal(json_string_value(json_object_get(j, "guard")), "strict");
    json_decref(j);
    spec.guard = "none";
    assert_rc(sl_keys_update(c->db, "guarded", &spec, SL_KEY_SET_GUARD, c->pool, &k), 0);
    assert_rc(find(c, "guarded", &k), 0);
    assert_string_equal(k->guard, "none");
    spec.guard = NULL;
    assert_rc(sl_keys_update(c->db, "guarded", &spec, SL_KEY_SET_GUARD, c->pool, &k), 0);
    assert_rc(find(c, "guarded", &k), 0);
    assert_null(k->guard);
    j = sl_key_json(k, time(NULL), NULL);
    assert_true(json_is_null(json_object_get(j, "guard")));
    json_decref(j);
    spec.guard = "a b";
    assert_rc(sl_keys_update(c->db, "guarded", &spec, SL_KEY_SET_GUARD, c->pool, &k), -EINVAL);

    /* a record written before keys had a guard (version 1) */
    *p++ = 1;
    *p++ = SL_BUDGET_DAY;
    *p++ = 0;
    *p++ = 0;
    memset(p, 0, 48);
    p[7] = 100; /* created */
    p += 48;
    memcpy(p, "WXYZ", 4);
    p += 4;
    *p++ = 0;
    *p++ = (uint8_t) strlen(id);
    memcpy(p, id, strlen(id));
    p += strlen(id);
    *p++ = 0;
    *p++ = 3;
    memcpy(p, "old", 3);
    p += 3;
    memset(p, 0, 6); /* team, metadata, nmodels */
    p += 6;
    sum = fnv1a(rec, (size_t) (p - rec));
    *p++ = (uint8_t) (sum >> 24);
    *p++ = (uint8_t) (sum >> 16);
    *p++ = (uint8_t) (sum >> 8);
    *p++ = (uint8_t) sum;
    raw_put(c->db, SL_DBI_KEYS, id, strlen(id), rec, (size_t) (p - rec));
    assert_rc(find(c, id, &k), 0);
    assert_string_equal(k->name, "old");
    assert_string_equal(k->last4, "WXYZ");
    assert_int_equal(k->created, 100);
    assert_null(k->guard);
    /* an update writes it as version 2, guard included */
    spec.guard = "strict";
    assert_rc(sl_keys_update(c->db, id, &spec, SL_KEY_SET_GUARD, c->pool, &k), 0);
    assert_rc(find(c, id, &k), 0);
    assert_string_equal(k->guard, "strict");
    assert_string_equal(k->name, "old");
}


/* A team's guardrail policy, with or without a budget; version 1 records still read. */
static void
test_team_guard(void **state)
{
    test_ctx_t *c = *state;
    uint8_t rec[32];
    uint32_t sum;
    sl_team_t *team;
    sl_txn_t *t;
    json_t *j;

    /* a team with a policy and no budget */
    assert_rc(sl_teams_set_guard(c->db, "ops", "strict", 1000), 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_teams_get(t, "ops", c->pool, &team), 0);
    sl_db_abort(t);
    assert_string_equal(team->guard, "strict");
    assert_int_equal(team->budget, 0);
    j = sl_team_json(team);
    assert_true(json_is_null(json_object_get(j, "budget_usd")));
    assert_string_equal(json_string_value(json_object_get(j, "guard")), "strict");
    json_decref(j);
    /* a budget keeps the policy, a policy keeps the budget */
    assert_rc(sl_teams_set(c->db, "ops", 5000000000ULL, SL_BUDGET_MONTH, 2000), 0);
    assert_rc(sl_teams_set_guard(c->db, "ops", "lax", 3000), 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_teams_get(t, "ops", c->pool, &team), 0);
    sl_db_abort(t);
    assert_string_equal(team->guard, "lax");
    assert_int_equal(team->budget, 5000000000ULL);
    assert_int_equal(team->period, SL_BUDGET_MONTH);
    assert_int_equal(team->created, 1000);
    assert_int_equal(team->updated, 3000);
    assert_rc(sl_teams_set_guard(c->db, "ops", NULL, 4000), 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_teams_get(t, "ops", c->pool, &team), 0);
    sl_db_abort(t);
    assert_null(team->guard);
    assert_int_equal(team->budget, 5000000000ULL);
    assert_rc(sl_teams_set_guard(c->db, "ops", "no way", 4000), -EINVAL);

    /* a version 1 record */
    memset(rec, 0, sizeof(rec));
    rec[0] = 1;
    rec[1] = SL_BUDGET_DAY;
    rec[11] = 7; /* budget */
    rec[19] = 5; /* created */
    rec[27] = 6; /* updated */
    sum = fnv1a(rec, 28);
    rec[28] = (uint8_t) (sum >> 24);
    rec[29] = (uint8_t) (sum >> 16);
    rec[30] = (uint8_t) (sum >> 8);
    rec[31] = (uint8_t) sum;
    raw_put(c->db, SL_DBI_TEAMS, "legacy", 6, rec, sizeof(rec));
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_teams_get(t, "legacy", c->pool, &team), 0);
    sl_db_abort(t);
    assert_int_equal(team->budget, 7);
    assert_int_equal(team->created, 5);
    assert_null(team->guard);
    assert_rc(sl_teams_set_guard(c->db, "legacy", "strict", 9), 0);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_teams_get(t, "legacy", c->pool, &team), 0);
    sl_db_abort(t);
    assert_int_equal(team->budget, 7);
    assert_int_equal(team->period, SL_BUDGET_DAY);
    assert_int_equal(team->created, 5);
    assert_string_equal(team->guard, "strict");
}


/*
 * The auth cache (text -> id) answers from the record as it is now: an
 * update and a revocation show at once, another text of the same length
 * is not taken for the cached one, and when the database is replaced (a
 * restored backup) without the key, its text no longer authenticates.
 */
static void
test_auth_cache(void **state)
{
    test_ctx_t *c = *state;
    sl_key_spec_t changes;
    sl_key_t *k, *got;
    char *text, *other, wrong[128];
    char path2[160];
    sl_db_t *db1;

    k = create(c, "cached", &text);
    create(c, "other", &other);
    for (int i = 0; i < 3; i++) {
        assert_rc(auth(c, text, &got), 0);
        assert_string_equal(got->id, k->id);
        assert_int_equal(got->rpm, 0);
    }
    assert_rc(auth(c, other, &got), 0);
    assert_string_not_equal(got->id, k->id);
    snprintf(wrong, sizeof(wrong), "%s", text);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'a' ? 'b' : 'a';
    assert_rc(auth(c, wrong, &got), SL_EAUTH);

    memset(&changes, 0, sizeof(changes));
    changes.rpm = 7;
    assert_rc(sl_keys_update(c->db, k->id, &changes, SL_KEY_SET_RPM, c->pool, &got), 0);
    assert_rc(auth(c, text, &got), 0);
    assert_int_equal(got->rpm, 7);
    assert_rc(sl_keys_revoke(c->db, k->id, time(NULL)), 0);
    assert_rc(auth(c, text, &got), 0);
    assert_true(got->revoked != 0);

    /* another database at once (a restore): the cached id is not in it */
    db1 = c->db;
    snprintf(path2, sizeof(path2), "%s/db2", c->dir);
    assert_rc(sl_db_open(path2, 1 << 20, 0, &c->db), 0);
    assert_rc(auth(c, text, &got), SL_EAUTH);
    assert_rc(auth(c, other, &got), SL_EAUTH);
    sl_db_close(c->db);
    c->db = db1;
    assert_rc(auth(c, other, &got), 0);
}

/*
 * The checked record an auth cache entry keeps: a record byte for byte the
 * same decodes to what a whole decode (sl_keys_find) gives; every
 * single-byte change and every truncation of it is still refused with
 * SL_ESTORE (then the sound record is accepted again); an update shows at
 * once; a record too long to keep (large metadata) is decoded whole every
 * time and still refused when damaged.
 */
static void
test_auth_cache_record(void **state)
{
    test_ctx_t *c = *state;
    sl_key_spec_t spec, changes;
    const char *models[] = { "gpt-*", "mock/*" };
    sl_key_t *k, *got, *ref;
    sl_str_t rec;
    char *text, *bad, meta[600];

    memset(&spec, 0, sizeof(spec));
    spec.name = "kept";
    spec.team = "ops";
    spec.models = models;
    spec.nmodels = 2;
    spec.rpm = 5;
    spec.budget = 9;
    spec.period = SL_BUDGET_DAY;
    assert_rc(sl_keys_create(c->db, &spec, c->pool, &k, &text), 0);
    rec = raw_get(c, SL_DBI_KEYS, k->id, strlen(k->id));
    assert_true(rec.len <= 218);
    assert_rc(find(c, k->id, &ref), 0);
    for (int i = 0; i < 4; i++) {
        /* miss, whole decode (kept), then decodes from the kept bytes */
        assert_rc(auth(c, text, &got), 0);
        same_key(got, ref);
    }
    bad = sl_palloc(c->pool, rec.len);
    for (size_t i = 0; i < rec.len; i++) {
        memcpy(bad, rec.p, rec.len);
        bad[i] ^= (char) (1 + i % 255);
        raw_put(c->db, SL_DBI_KEYS, k->id, strlen(k->id), bad, rec.len);
        assert_rc(auth(c, text, &got), SL_ESTORE);
        assert_null(got);
        raw_put(c->db, SL_DBI_KEYS, k->id, strlen(k->id), rec.p, rec.len);
        assert_rc(auth(c, text, &got), 0);
        same_key(got, ref);
    }
    for (size_t len = 0; len < rec.len; len++) {
        raw_put(c->db, SL_DBI_KEYS, k->id, strlen(k->id), rec.p, len);
        assert_rc(auth(c, text, &got), SL_ESTORE);
    }
    raw_put(c->db, SL_DBI_KEYS, k->id, strlen(k->id), rec.p, rec.len);
    assert_rc(auth(c, text, &got), 0);
    same_key(got, ref);
    memset(&changes, 0, sizeof(changes));
    changes.rpm = 77;
    assert_rc(sl_keys_update(c->db, k->id, &changes, SL_KEY_SET_RPM, c->pool, &got), 0);
    assert_rc(auth(c, text, &got), 0);
    assert_int_equal(got->rpm, 77);
    assert_rc(auth(c, text, &got), 0);
    assert_int_equal(got->rpm, 77);

    /* too long to keep: whole decodes, damage still refused */
    snprintf(meta, sizeof(meta), "{\"note\":\"%0500d\"}", 1);
    memset(&changes, 0, sizeof(changes));
    changes.metadata = meta;
    assert_rc(sl_keys_update(c->db, k->id, &changes, SL_KEY_SET_METADATA, c->pool, &got), 0);
    rec = raw_get(c, SL_DBI_KEYS, k->id, strlen(k->id));
    assert_true(rec.len > 218);
    assert_rc(find(c, k->id, &ref), 0);
    for (int i = 0; i < 3; i++) {
        assert_rc(auth(c, text, &got), 0);
        same_key(got, ref);
    }
    bad = sl_palloc(c->pool, rec.len);
    memcpy(bad, rec.p, rec.len);
    bad[rec.len / 2] ^= 0x20;
    raw_put(c->db, SL_DBI_KEYS, k->id, strlen(k->id), bad, rec.len);
    assert_rc(auth(c, text, &got), SL_ESTORE);
    raw_put(c->db, SL_DBI_KEYS, k->id, strlen(k->id), rec.p, rec.len);
    assert_rc(auth(c, text, &got), 0);
    same_key(got, ref);
}


/* Every field of a and b equal. */
static void
same_key(const sl_key_t *a, const sl_key_t *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->team != NULL ? a->team : "-", b->team != NULL ? b->team : "-");
    assert_string_equal(a->metadata != NULL ? a->metadata : "-",
                        b->metadata != NULL ? b->metadata : "-");
    assert_string_equal(a->guard != NULL ? a->guard : "-", b->guard != NULL ? b->guard : "-");
    assert_string_equal(a->last4, b->last4);
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->expires, b->expires);
    assert_int_equal(a->revoked, b->revoked);
    assert_int_equal(a->rpm, b->rpm);
    assert_int_equal(a->tpm, b->tpm);
    assert_int_equal(a->budget, b->budget);
    assert_int_equal(a->period, b->period);
    assert_int_equal(a->nmodels, b->nmodels);
    for (size_t i = 0; i < a->nmodels; i++) {
        assert_string_equal(a->models[i], b->models[i]);
    }
    assert_null(a->models[a->nmodels]);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test(test_globs),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_team_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_cache_record, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
