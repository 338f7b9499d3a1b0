/*
 * Unit tests for storage/ledger.c on a scratch LMDB environment: rows
 * round-trip and come back in time order across "workers" (pids), scans
 * start where asked and stop when told, corrupted rows are skipped and
 * counted, pruning works in bounded batches, aggregation by every
 * dimension (with percentiles), and the spend counters: reserve and settle
 * arithmetic, interleaved requests, denial with the remaining amount, and
 * day and month roll-over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/str.h"
#include "storage/db.h"
#include "storage/ledger.h"
#include "storage/spend.h"

#define NS 1000000000LL

#define T0 ((time_t) 1795262400) /* 2026-11-21 12:00:00 UTC */

#define assert_ok(expr)                                            \
    do {                                                           \
        int rc_ = (expr);                                          \
        if (rc_ != 0) {                                            \
            fail_msg("%s: %d (%s)", #expr, rc_, sl_strerror(rc_)); \
        }                                                          \
    } while (0)

typedef struct fixture {
    char dir[64];
    sl_db_t *db;
} fixture_t;

typedef struct rows {
    sl_ledger_row_t *rows; /* one write transaction appends them all */
    size_t n;
} rows_t;

typedef struct raw {
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
} raw_t;

typedef struct collected {
    size_t n;
    int64_t time[64];
    uint32_t pid[64];
    uint32_t seq[64];
    char request_id[64][32];
    size_t stop_after; /* 0: never */
    int stop_rc;
} collected_t;

typedef struct spend_op {
    int op; /* 0 reserve, 1 settle */
    const sl_budget_ref_t *refs;
    size_t n;
    uint64_t estimate; /* reserve: estimate; settle: reserved */
    uint64_t actual;
    time_t at; /* reserve: now; settle: reserved_at */
    time_t now;
    sl_spend_denial_t denial;
} spend_op_t;

typedef struct workers {
    size_t n;
    pid_t pids[3];
    uint32_t last_seq[3];
    size_t per_pid[3];
    int64_t last_time[3];
} workers_t;

typedef struct fields {
    int n;
    size_t long_len;
} fields_t;

/* A finished request: its row and its spend, in one transaction. */
/* every string of up to 8 rows, as a scan hands them out */
typedef struct strings {
    size_t n;
    char s[8][11][SL_LEDGER_STR_MAX + 1];
} strings_t;

typedef struct sizes {
    size_t n;
    size_t len[8]; /* the values' lengths, in key order */
} sizes_t;

typedef struct request {
    sl_ledger_row_t row;
    const sl_budget_ref_t *refs;
    size_t n;
    uint64_t reserved;
    bool fail;
} request_t;

static void test_v1_row(void **state);
static void test_v4_strings(void **state);
static void test_v4_rows(void **state);
static void test_utf8_clean(void **state);
static void test_utf8_clean_runs(void **state);
static void utf8_clean_ref(const char *s, bool ctrl, char *out, size_t size);
static int setup(void **state);
static int teardown(void **state);
static int append_txn(sl_txn_t *t, void *arg);
static int raw_txn(sl_txn_t *t, void *arg);
static int clear_txn(sl_txn_t *t, void *arg);
static int spend_txn(sl_txn_t *t, void *arg);
static int collect_cb(void *arg, const sl_ledger_row_t *row);
static int fields_cb(void *arg, const sl_ledger_row_t *row);
static int strings_cb(void *arg, const sl_ledger_row_t *row);
static int sizes_cb(void *arg, sl_str_t key, sl_str_t val);
static int workers_cb(void *arg, const sl_ledger_row_t *row);
static int request_txn(sl_txn_t *t, void *arg);
static void make_key(uint8_t *key, uint64_t time_ns);
static void append(fixture_t *f, sl_ledger_row_t *rows, size_t n);
static void put_raw(fixture_t *f, const void *key, size_t klen, const void *val, size_t vlen);
static void scan(fixture_t *f, int64_t since, collected_t *c, int want_rc);
static sl_ledger_row_t row_at(int64_t time_ns, uint32_t pid, const char *rid);
static sl_ledger_agg_t *aggregate(fixture_t *f, int64_t since, int64_t until, sl_ledger_by_e by);
static const sl_ledger_group_t *group(const sl_ledger_agg_t *a, const char *id);
static int reserve(fixture_t *f, const sl_budget_ref_t *refs, size_t n, uint64_t estimate,
                   time_t now, sl_spend_denial_t *denial);
static void settle(fixture_t *f, const sl_budget_ref_t *refs, size_t n, uint64_t reserved,
                   uint64_t actual, time_t reserved_at, time_t now);
static sl_spend_t get(fixture_t *f, sl_budget_kind_e kind, const char *id,
                      sl_budget_period_e period, time_t now);
static time_t utc(int y, int mon, int d, int h, int min, int s);


static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sl-ledger-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_ok(sl_db_open(f->dir, 8u << 20, 0, &f->db));
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t *f = *state;

    sl_db_close(f->db);
    sl_test_rmtree(f->dir);
    free(f);
    return 0;
}


static int
append_txn(sl_txn_t *t, void *arg)
{
    rows_t *r = arg;
    int rc;

    for (size_t i = 0; i < r->n; i++) {
        rc = sl_ledger_append(t, &r->rows[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


static int
raw_txn(sl_txn_t *t, void *arg)
{
    raw_t *r = arg;

    return sl_db_put(t, SL_DBI_LEDGER, r->key, r->klen, r->val, r->vlen, false);
}


static int
clear_txn(sl_txn_t *t, void *arg)
{
    (void) arg;
    return sl_spend_clear_reserved(t);
}


static int
spend_txn(sl_txn_t *t, void *arg)
{
    spend_op_t *op = arg;

    if (op->op == 0) {
        return sl_spend_reserve(t, op->refs, op->n, op->estimate, op->at, &op->denial);
    }
    return sl_spend_settle(t, op->refs, op->n, op->estimate, op->actual, op->at, op->now);
}


static int
collect_cb(void *arg, const sl_ledger_row_t *row)
{
    collected_t *c = arg;

    assert_true(c->n < 64);
    c->time[c->n] = row->time_ns;
    c->pid[c->n] = row->pid;
    c->seq[c->n] = row->seq;
    snprintf(c->request_id[c->n], sizeof(c->request_id[0]), "%s", row->request_id);
    c->n++;
    if (c->stop_after != 0 && c->n == c->stop_after) {
        return c->stop_rc;
    }
    return 0;
}


static void
append(fixture_t *f, sl_ledger_row_t *rows, size_t n)
{
    rows_t r = { rows, n };

    assert_ok(sl_db_write(f->db, append_txn, &r));
}


static void
put_raw(fixture_t *f, const void *key, size_t klen, const void *val, size_t vlen)
{
    raw_t r = { key, klen, val, vlen };

    assert_ok(sl_db_write(f->db, raw_txn, &r));
}


static void
scan(fixture_t *f, int64_t since, collected_t *c, int want_rc)
{
    sl_txn_t *t;

    assert_ok(sl_db_read(f->db, &t));
    assert_int_equal(sl_ledger_scan(t, since, collect_cb, c), want_rc);
    sl_db_abort(t);
}


static sl_ledger_row_t
row_at(int64_t time_ns, uint32_t pid, const char *rid)
{
    sl_ledger_row_t r;

    memset(&r, 0, sizeof(r));
    r.time_ns = time_ns;
    r.pid = pid;
    r.request_id = rid;
    r.key_id = "k1";
    r.key_name = "alpha";
    r.team = "red";
    r.endpoint = "chat";
    r.model = "gpt-4o-mini";
    r.provider = "openai";
    r.served_model = "gpt-4o-mini-2024-07-18";
    r.attempts = 1;
    r.status = 200;
    return r;
}


static sl_ledger_agg_t *
aggregate(fixture_t *f, int64_t since, int64_t until, sl_ledger_by_e by)
{
    sl_ledger_agg_t *a = NULL;
    sl_txn_t *t;

    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_ledger_aggregate(t, since, until, by, &a));
    sl_db_abort(t);
    assert_non_null(a);
    return a;
}


static const sl_ledger_group_t *
group(const sl_ledger_agg_t *a, const char *id)
{
    for (size_t i = 0; i < a->ngroups; i++) {
        if (strcmp(a->groups[i].id, id) == 0) {
            return &a->groups[i];
        }
    }
    fail_msg("no group \"%s\"", id);
    return NULL;
}


static int
reserve(fixture_t *f, const sl_budget_ref_t *refs, size_t n, uint64_t estimate, time_t now,
        sl_spend_denial_t *denial)
{
    spend_op_t op;
    int rc;

    memset(&op, 0, sizeof(op));
    op.op = 0;
    op.refs = refs;
    op.n = n;
    op.estimate = estimate;
    op.at = now;
    op.denial.index = 99;
    rc = sl_db_write(f->db, spend_txn, &op);
    if (denial != NULL) {
        *denial = op.denial;
    }
    return rc;
}


static void
settle(fixture_t *f, const sl_budget_ref_t *refs, size_t n, uint64_t reserved, uint64_t actual,
       time_t reserved_at, time_t now)
{
    spend_op_t op;

    memset(&op, 0, sizeof(op));
    op.op = 1;
    op.refs = refs;
    op.n = n;
    op.estimate = reserved;
    op.actual = actual;
    op.at = reserved_at;
    op.now = now;
    assert_ok(sl_db_write(f->db, spend_txn, &op));
}


static sl_spend_t
get(fixture_t *f, sl_budget_kind_e kind, const char *id, sl_budget_period_e period, time_t now)
{
    sl_spend_t s = { 77, 77 };
    sl_txn_t *t;

    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_spend_get(t, kind, id, period, now, &s));
    sl_db_abort(t);
    return s;
}


/* A ledger key for time_ns, pid 0, seq 0. */
static void
make_key(uint8_t *key, uint64_t time_ns)
{
    memset(key, 0, 16);
    for (int i = 7; i >= 0; i--) {
        key[i] = (uint8_t) time_ns;
        time_ns >>= 8;
    }
}


static time_t
utc(int y, int mon, int d, int h, int min, int s)
{
    /* days from civil (Howard Hinnant), to stay away from timegm() and TZ */
    int64_t yy = y - (mon <= 2 ? 1 : 0);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;

    return (time_t) (days * 86400 + h * 3600 + min * 60 + s);
}


static int
fields_cb(void *arg, const sl_ledger_row_t *row)
{
    fields_t *fl = arg;

    if (fl->n == 0) {
        assert_int_equal(row->time_ns, (int64_t) T0 * NS + 123);
        assert_int_equal(row->pid, 4242);
        assert_string_equal(row->request_id, "req-1");
        assert_string_equal(row->key_id, "key_01");
        assert_string_equal(row->key_name, "alpha");
        assert_string_equal(row->team, "red");
        assert_string_equal(row->endpoint, "chat");
        assert_string_equal(row->model, "fast");
        assert_string_equal(row->provider, "anthropic");
        assert_string_equal(row->served_model, "claude-haiku-4-5-20251001");
        assert_int_equal(row->attempts, 3);
        assert_int_equal(row->status, 200);
        assert_int_equal(row->prompt_tokens, 1234567);
        assert_int_equal(row->completion_tokens, 89);
        assert_int_equal(row->cached_tokens, 1000000);
        assert_int_equal(row->cache_write_tokens, 7);
        assert_true(row->cost_nusd == UINT64_MAX - 1);
        assert_int_equal(row->flags, SL_LEDGER_STREAM | SL_LEDGER_ESTIMATED);
        assert_int_equal(row->latency_us, 1500000);
        assert_int_equal(row->first_byte_us, 250000);
        assert_int_equal(row->saved_nusd, 987654321);
        assert_int_equal(row->reasoning_tokens, 42);
        assert_int_equal(row->cache_write_1h_tokens, 5);
        assert_int_equal(row->ttft_us, 90000);
        assert_string_equal(row->cache, "miss");
        assert_string_equal(row->guard, "strict/card/redact");
        assert_string_equal(row->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    } else if (fl->n == 1) {
        assert_string_equal(row->cache, "");
        assert_string_equal(row->guard, "");
        assert_int_equal(row->saved_nusd, 0);
        assert_int_equal(row->pid, (uint32_t) getpid());
        assert_string_equal(row->request_id, "");
        assert_string_equal(row->key_id, "");
        assert_string_equal(row->served_model, "");
        fl->long_len = strlen(row->model);
    } else {
        /* test_v1_row's row */
        assert_int_equal(row->attempts, 2);
        assert_int_equal(row->status, 200);
        assert_int_equal(row->prompt_tokens, 10);
        assert_int_equal(row->completion_tokens, 20);
        assert_int_equal(row->cached_tokens, 3);
        assert_int_equal(row->cost_nusd, 10000);
        assert_int_equal(row->flags, SL_LEDGER_STREAM);
        assert_int_equal(row->latency_us, 1000);
        assert_string_equal(row->request_id, "r1");
        assert_string_equal(row->key_name, "k");
        assert_string_equal(row->endpoint, "chat");
        assert_string_equal(row->model, "m");
        assert_string_equal(row->provider, "p");
        assert_int_equal(row->saved_nusd, 0);
        assert_int_equal(row->reasoning_tokens, 0);
        assert_int_equal(row->ttft_us, 0);
        assert_string_equal(row->cache, "");
        assert_string_equal(row->guard, "");
        assert_string_equal(row->trace_id, "");
    }
    fl->n++;
    return 0;
}


static int
strings_cb(void *arg, const sl_ledger_row_t *row)
{
    strings_t *st = arg;
    const char *v[11] = {
        row->request_id, row->key_id,       row->key_name, row->team,  row->endpoint, row->model,
        row->provider,   row->served_model, row->cache,    row->guard, row->trace_id,
    };

    assert_true(st->n < 8);
    for (size_t i = 0; i < 11; i++) {
        assert_non_null(v[i]);
        assert_true(strlen(v[i]) <= SL_LEDGER_STR_MAX);
        strcpy(st->s[st->n][i], v[i]);
    }
    st->n++;
    return 0;
}


static int
sizes_cb(void *arg, sl_str_t key, sl_str_t val)
{
    sizes_t *sz = arg;

    (void) key;
    assert_true(sz->n < 8);
    sz->len[sz->n++] = val.len;
    return 0;
}


/* Every field comes back; NULL strings read as ""; long strings are cut. */
static void
test_fields(void **state)
{
    fixture_t *f = *state;
    char long_model[SL_LEDGER_STR_MAX + 100];
    sl_ledger_row_t rows[2];
    fields_t fl = { 0, 0 };
    sl_txn_t *t;

    memset(long_model, 'm', sizeof(long_model) - 1);
    long_model[sizeof(long_model) - 1] = '\0';
    memset(rows, 0, sizeof(rows));
    rows[0].time_ns = (int64_t) T0 * NS + 123;
    rows[0].pid = 4242;
    rows[0].request_id = "req-1";
    rows[0].key_id = "key_01";
    rows[0].key_name = "alpha";
    rows[0].team = "red";
    rows[0].endpoint = "chat";
    rows[0].model = "fast";
    rows[0].provider = "anthropic";
    rows[0].served_model = "claude-haiku-4-5-20251001";
    rows[0].attempts = 3;
    rows[0].status = 200;
    rows[0].prompt_tokens = 1234567;
    rows[0].completion_tokens = 89;
    rows[0].cached_tokens = 1000000;
    rows[0].cache_write_tokens = 7;
    rows[0].cost_nusd = UINT64_MAX - 1;
    rows[0].flags = SL_LEDGER_STREAM | SL_LEDGER_ESTIMATED;
    rows[0].latency_us = 1500000;
    rows[0].first_byte_us = 250000;
    rows[0].saved_nusd = 987654321;
    rows[0].reasoning_tokens = 42;
    rows[0].cache_write_1h_tokens = 5;
    rows[0].ttft_us = 90000;
    rows[0].cache = "miss";
    rows[0].guard = "strict/card/redact";
    rows[0].trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    rows[1].time_ns = rows[0].time_ns + 1;
    rows[1].model = long_model;
    append(f, rows, 2);

    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_ledger_scan(t, 0, fields_cb, &fl));
    sl_db_abort(t);
    assert_int_equal(fl.n, 2);
    assert_int_equal(fl.long_len, SL_LEDGER_STR_MAX);
}


/* A version 1 row (written before version 2) reads back with the new fields zero or empty. */
static void
test_v1_row(void **state)
{
    fixture_t *f = *state;
    static const uint8_t v1[] = {
        1,                                         /* version */
        2, 0xc8, 0x01, 10, 20, 3,   0, 0x90, 0x4e, /* attempts 2, status 200, tokens, cost 10000 */
        4, 0xe8, 0x07, 0,                          /* flags, latency 1000, first byte 0 */
        2, 'r',  '1',  0,  1,  'k', 0, 4,    'c',  'h', 'a', 't', 1, 'm', 1, 'p', 0,
    };
    uint8_t key[16];
    fields_t fl = { 3, 0 };
    sl_txn_t *t;

    make_key(key, (uint64_t) T0 * NS + 5);
    put_raw(f, key, sizeof(key), v1, sizeof(v1));
    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_ledger_scan(t, 0, fields_cb, &fl));
    sl_db_abort(t);
    assert_int_equal(fl.n, 4);
}


/*
 * Version 4's string forms round-trip every string: runs of lowercase hex
 * digits packed (ids, with and without a prefix, odd runs, a run as long
 * as a string may be), the served model stored as "the model", and what
 * must stay bytes (uppercase, a short run, UTF-8). A row of the usual
 * shape takes the bytes the header's layout says: 99, against 147 before.
 */
static void
test_v4_strings(void **state)
{
    fixture_t *f = *state;
    int64_t base = (int64_t) T0 * NS;
    char all_hex[SL_LEDGER_STR_MAX + 1], long_hex[SL_LEDGER_STR_MAX + 10],
        cut[SL_LEDGER_STR_MAX + 1];
    sl_ledger_row_t rows[4];
    strings_t *st = calloc(1, sizeof(*st));
    sizes_t sz = { 0, { 0 } };
    const char *want[4][11];
    uint8_t from[8] = { 0 };
    sl_txn_t *t;

    assert_non_null(st);
    memset(all_hex, 'a', SL_LEDGER_STR_MAX);
    all_hex[SL_LEDGER_STR_MAX] = '\0';
    memset(long_hex, 'f', sizeof(long_hex) - 1);
    long_hex[sizeof(long_hex) - 1] = '\0';
    memcpy(cut, long_hex, SL_LEDGER_STR_MAX);
    cut[SL_LEDGER_STR_MAX] = '\0';
    memset(rows, 0, sizeof(rows));
    for (size_t i = 0; i < 4; i++) {
        rows[i].time_ns = base + (int64_t) i;
    }
    rows[0].request_id = "0123456789abcdef0123456789abcdef";
    rows[0].key_id = "key_6de6fcdf86cdc662";
    rows[0].endpoint = "chat";
    rows[0].model = "gpt-4o-mini";
    rows[0].provider = "mock";
    rows[0].served_model = "gpt-4o-mini";
    rows[0].cache = "bypass";
    rows[0].trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    rows[1].request_id = "x0123456789abcdef0"; /* an odd run: "x0" then 16 digits */
    rows[1].key_id = "ABCDEF0123456789ABCD";   /* uppercase: bytes */
    rows[1].team = "deadbeefdeadbeef";         /* a run of exactly LEDGER_HEX_MIN */
    rows[1].model = "gpt-4o-mini";
    rows[1].served_model = "gpt-4o-mini-2024-07-18";
    rows[1].trace_id = "0123456789abcde"; /* too short a run */
    rows[2].request_id = all_hex;         /* 512 bytes of hex */
    rows[2].key_name = long_hex;          /* cut to SL_LEDGER_STR_MAX, then packed */
    rows[2].served_model = "only-served"; /* no model: stays bytes */
    rows[3].request_id = "caf\xc3\xa9-00112233445566778899";
    rows[3].model = "m";
    rows[3].served_model = "m";
    rows[3].guard = "pii/email/redact";
    append(f, rows, 4);

    for (size_t i = 0; i < 4; i++) {
        const char *v[11] = {
            rows[i].request_id, rows[i].key_id, rows[i].key_name, rows[i].team,
            rows[i].endpoint,   rows[i].model,  rows[i].provider, rows[i].served_model,
            rows[i].cache,      rows[i].guard,  rows[i].trace_id,
        };

        for (size_t j = 0; j < 11; j++) {
            want[i][j] = v[j] != NULL ? v[j] : "";
        }
    }
    want[2][2] = cut;
    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_ledger_scan(t, 0, strings_cb, st));
    assert_ok(sl_db_scan(t, SL_DBI_LEDGER, from, sizeof(from), sizes_cb, &sz));
    sl_db_abort(t);
    assert_int_equal(st->n, 4);
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 11; j++) {
            assert_string_equal(st->s[i][j], want[i][j]);
        }
    }
    /*
     * row 0: version 1, fourteen zero varints 14, request id 1 + 1 + 16,
     * key id 1 + 1 + 4 + 8, key name and team 1 each, "chat" 5,
     * "gpt-4o-mini" 12, "mock" 5, served model 1, "bypass" 7, guard 1,
     * trace id 1 + 1 + 16, lag 1
     */
    assert_int_equal(sz.n, 4);
    assert_int_equal(sz.len[0], 99);
    free(st);
}


/* Version 4 rows written by hand decode; each string form's misuse is a corrupted row. */
static void
test_v4_rows(void **state)
{
    fixture_t *f = *state;
#define Z14 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    /* request id "r" + packed abcd, key id "k", model "modl", served model: the model */
    static const uint8_t good[] = {
        4, Z14, 9, 1, 'r', 0xab, 0xcd, 4, 'k', 0, 0, 0, 16, 'm', 'o', 'd', 'l', 0, 2, 0, 0, 0, 0,
    };
    static const uint8_t form3[] = { 4, Z14, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t model_first[] = { 4, Z14, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t model_len[] = { 4, Z14, 0, 0, 0, 0, 0, 0, 0, 6, 'x', 0, 0, 0, 0 };
    static const uint8_t hex_empty[] = { 4, Z14, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t hex_nul[] = {
        4, Z14, 9, 1, 0, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const uint8_t hex_short[] = { 4, Z14, 9, 1, 'r', 0xab };
#undef Z14
    uint8_t key[16], too_long[15 + 2 + 1 + 30 + 500 + 11];
    size_t n = 0;
    sl_ledger_agg_t *a;
    collected_t c;
    strings_t *st = calloc(1, sizeof(*st));
    sl_txn_t *t;
    const struct {
        const uint8_t *v;
        size_t len;
    } bad[] = {
        { form3, sizeof(form3) },         { model_first, sizeof(model_first) },
        { model_len, sizeof(model_len) }, { hex_empty, sizeof(hex_empty) },
        { hex_nul, sizeof(hex_nul) },     { hex_short, sizeof(hex_short) },
        { too_long, sizeof(too_long) },
    };

    assert_non_null(st);
    /* request id: 30 bytes then 500 packed, 1000 digits: 1030 > SL_LEDGER_STR_MAX */
    memset(too_long, 0, sizeof(too_long));
    too_long[n++] = 4;
    n += 14;
    too_long[n++] = (uint8_t) (0x80 | ((500u << 2 | 1u) & 0x7f));
    too_long[n++] = (uint8_t) ((500u << 2 | 1u) >> 7);
    too_long[n++] = 30;
    memset(too_long + n, 'r', 30);
    n += 30 + 500 + 11; /* the digits, ten empty strings, a zero lag */
    assert_int_equal(n, sizeof(too_long));

    make_key(key, (uint64_t) T0 * NS);
    put_raw(f, key, sizeof(key), good, sizeof(good));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        make_key(key, (uint64_t) T0 * NS + 1 + i);
        put_raw(f, key, sizeof(key), bad[i].v, bad[i].len);
    }
    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 1);
    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_ledger_scan(t, 0, strings_cb, st));
    sl_db_abort(t);
    assert_int_equal(st->n, 1);
    assert_string_equal(st->s[0][0], "rabcd");
    assert_string_equal(st->s[0][1], "k");
    assert_string_equal(st->s[0][5], "modl");
    assert_string_equal(st->s[0][7], "modl");
    a = aggregate(f, 0, 0, SL_LEDGER_BY_KEY);
    assert_int_equal(a->total.requests, 1);
    assert_int_equal(a->skipped, sizeof(bad) / sizeof(bad[0]));
    sl_ledger_agg_free(a);

    /* every byte of the good row set to each of a few values: read or skipped, never more */
    for (size_t i = 0; i < sizeof(good); i++) {
        static const uint8_t vals[] = { 0, 1, 2, 3, 6, 0x7f, 0x80, 0xff };

        for (size_t j = 0; j < sizeof(vals); j++) {
            uint8_t m[sizeof(good)];

            memcpy(m, good, sizeof(good));
            m[i] = vals[j];
            make_key(key, (uint64_t) (T0 + 1) * NS + i * sizeof(vals) + j);
            put_raw(f, key, sizeof(key), m, sizeof(m));
        }
    }
    a = aggregate(f, (int64_t) (T0 + 1) * NS, 0, SL_LEDGER_BY_KEY);
    assert_int_equal(a->total.requests + a->skipped, sizeof(good) * 8);
    assert_true(a->total.requests > 0 && a->skipped > 0);
    sl_ledger_agg_free(a);
    free(st);
}


/*
 * Rows from several workers, each transaction's written out of order: a
 * row behind the ledger's last key is appended after it (its key lags), so
 * they read back in the order they were written, each with its own time,
 * pid and sequence; a scan from a time skips the lagging rows before it.
 */
static void
test_order(void **state)
{
    fixture_t *f = *state;
    int64_t base = (int64_t) T0 * NS;
    sl_ledger_row_t rows[] = {
        row_at(base + 30, 200, "w2-c"),  row_at(base + 10, 200, "w2-a"),
        row_at(base + 10, 100, "w1-a"),  row_at(base + 20, 100, "w1-b"),
        row_at(base + 10, 100, "w1-a2"), row_at(base + 20, 200, "w2-b"),
    };
    static const char *const want[] = { "w1-b", "w1-a2", "w2-b", "w2-c", "w2-a", "w1-a" };
    static const int64_t want_time[] = { 20, 10, 20, 30, 10, 10 };
    static const uint32_t want_pid[] = { 100, 100, 200, 200, 200, 100 };
    collected_t c;

    /* two "workers" committing separately, the second one first */
    append(f, rows + 3, 3);
    append(f, rows, 3);

    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(c.request_id[i], want[i]);
        assert_int_equal(c.time[i], base + want_time[i]);
        assert_int_equal(c.pid[i], want_pid[i]);
    }
    /* one process wrote them all: the sequence follows the order of the appends */
    for (size_t i = 1; i < 6; i++) {
        assert_true(c.seq[i] > c.seq[i - 1]);
    }

    /* since: inclusive, by the row's own time, not its key's */
    memset(&c, 0, sizeof(c));
    scan(f, base + 20, &c, 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.request_id[0], "w1-b");
    assert_string_equal(c.request_id[1], "w2-b");
    assert_string_equal(c.request_id[2], "w2-c");
    memset(&c, 0, sizeof(c));
    scan(f, base + 21, &c, 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.request_id[0], "w2-c");

    /* a callback returning 1 stops cleanly, a negative code is passed on */
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    c.stop_rc = 1;
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 2);
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    c.stop_rc = -EIO;
    scan(f, 0, &c, -EIO);
    assert_int_equal(c.n, 1);
}


/* Rows written by hand: version 2 (no lag) at its key's time, version 3 its lag before it. */
static void
test_v2_v3_rows(void **state)
{
    fixture_t *f = *state;
    static const uint8_t v2[] = {
        2, 1,   0xc8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* attempts 1, status 200 */
        2, 'r', '2',  0,    0, 0, 0, 0, 0, 0, 0, 0, 0,          /* request id "r2" */
    };
    static const uint8_t v3[] = {
        3, 1, 0xc8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 2, 'r',  '3',  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, /* lag 5 ns */
    };
    int64_t base = (int64_t) T0 * NS;
    uint8_t key[16];
    collected_t c;

    make_key(key, (uint64_t) base + 10);
    put_raw(f, key, sizeof(key), v2, sizeof(v2));
    make_key(key, (uint64_t) base + 20);
    put_raw(f, key, sizeof(key), v3, sizeof(v3));
    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.request_id[0], "r2");
    assert_int_equal(c.time[0], base + 10);
    assert_string_equal(c.request_id[1], "r3");
    assert_int_equal(c.time[1], base + 15);
    /* since between the v3 row's time and its key's: it is in */
    memset(&c, 0, sizeof(c));
    scan(f, base + 12, &c, 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.request_id[0], "r3");
}


/*
 * Out-of-order rows fill the ledger's pages as rows in order do (inserted
 * among the older rows, each split a full page in two); a row more than an
 * hour behind is inserted at its own time; an aggregate's end counts rows
 * by their time; a lag past the key's time is a corrupted row.
 */
static void
test_lag(void **state)
{
    fixture_t *f = *state;
    int64_t base = (int64_t) T0 * NS, hour = 3600 * NS;
    sl_ledger_row_t rows[6], old = row_at(base - 2 * hour, 7, "old");
    static const uint8_t bad_lag[] = {
        3,    0,    0,    0,    0,    0,    0,    0, 0, 0, 0,
        0,    0,    0,    0,                                  /* version 3, fourteen zero varints */
        0,    0,    0,    0,    0,    0,    0,    0, 0, 0, 0, /* eleven empty strings */
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, /* a lag of 2^42 ns > the key's 2^40 */
    };
    uint8_t key[16];
    size_t ordered, lagged, n = 3000;
    sl_ledger_agg_t *a;
    collected_t c;
    sl_txn_t *t;

    /* n rows in order, in transactions of six */
    for (size_t i = 0; i < n; i += 6) {
        for (size_t j = 0; j < 6; j++) {
            rows[j] = row_at(base + (int64_t) (i + j) * 1000, 1, "r");
        }
        append(f, rows, 6);
    }
    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_db_pages(t, SL_DBI_LEDGER, &ordered));
    sl_db_abort(t);
    /* n more from 1 ms on, 100 ns apart, each transaction's newest first: all behind the last */
    for (size_t i = 0; i < n; i += 6) {
        for (size_t j = 0; j < 6; j++) {
            rows[j] = row_at(base + 1000000 + (int64_t) (i + 5 - j) * 100, 2, "r");
        }
        append(f, rows, 6);
    }
    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_db_pages(t, SL_DBI_LEDGER, &lagged));
    sl_db_abort(t);
    assert_true(ordered > 10);
    assert_true(lagged * 10 <= ordered * 21);

    /* two hours behind: at its own time, first of all */
    append(f, &old, 1);
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    c.stop_rc = 1;
    scan(f, 0, &c, 0);
    assert_string_equal(c.request_id[0], "old");
    assert_int_equal(c.time[0], base - 2 * hour);

    /* the aggregate's end is by time: the lagging rows' keys are past it, their times before */
    a = aggregate(f, base, base + (int64_t) n * 1000, SL_LEDGER_BY_KEY);
    assert_int_equal(a->total.requests, 2 * n);
    sl_ledger_agg_free(a);
    a = aggregate(f, base, base + 1150000, SL_LEDGER_BY_KEY);
    assert_int_equal(a->total.requests, 1150 + 1500);
    sl_ledger_agg_free(a);

    make_key(key, (uint64_t) 1 << 40);
    put_raw(f, key, sizeof(key), bad_lag, sizeof(bad_lag));
    a = aggregate(f, 0, 0, SL_LEDGER_BY_KEY);
    assert_int_equal(a->total.requests, 2 * n + 1);
    assert_int_equal(a->skipped, 1);
    sl_ledger_agg_free(a);
}


/* Garbage under the ledger's keys is skipped, counted and logged, never trusted. */
static void
test_corrupted(void **state)
{
    fixture_t *f = *state;
    int64_t base = (int64_t) T0 * NS;
    sl_ledger_row_t rows[] = { row_at(base + 10, 1, "good-1"), row_at(base + 50, 1, "good-2") };
    uint8_t key[16] = { 0 }, short_key[5] = { 0 };
    static const uint8_t v2[] = { 2, 1, 2, 3 };
    static const uint8_t trunc[] = { 1, 1, 0xc8, 0x01, 5 };
    uint8_t huge_len[64], trailing[128];
    sl_ledger_agg_t *a;
    collected_t c;
    size_t n;

    append(f, rows, 2);

    /* keys between the two good rows */
    make_key(key, (uint64_t) base + 20);
    put_raw(f, key, sizeof(key), v2, sizeof(v2));
    make_key(key, (uint64_t) base + 30);
    put_raw(f, key, sizeof(key), trunc, sizeof(trunc));
    make_key(key, (uint64_t) base + 40);
    memset(huge_len, 0, sizeof(huge_len));
    huge_len[0] = 1;
    for (n = 1; n < 11; n++) {
        huge_len[n] = 0; /* ten zero varints */
    }
    huge_len[11] = 0xff; /* a string length far beyond the value */
    huge_len[12] = 0xff;
    huge_len[13] = 0x7f;
    put_raw(f, key, sizeof(key), huge_len, 14);
    make_key(key, (uint64_t) base + 45);
    memset(trailing, 0, sizeof(trailing));
    trailing[0] = 1; /* a valid empty row, then an extra byte */
    put_raw(f, key, sizeof(key), trailing, 1 + 10 + 8 + 1);
    make_key(key, (uint64_t) base + 46);
    put_raw(f, key, sizeof(key), "", 0);
    memcpy(short_key, key, sizeof(short_key));
    put_raw(f, short_key, sizeof(short_key), v2, sizeof(v2));

    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.request_id[0], "good-1");
    assert_string_equal(c.request_id[1], "good-2");

    a = aggregate(f, 0, 0, SL_LEDGER_BY_KEY);
    assert_int_equal(a->total.requests, 2);
    assert_int_equal(a->skipped, 6);
    sl_ledger_agg_free(a);

    /* a valid row written by hand decodes: the layout is what the header says */
    memset(trailing, 0, sizeof(trailing));
    trailing[0] = 1;
    trailing[2] = 0xc8; /* status 200 as a varint: 0xc8 0x01 */
    trailing[3] = 0x01;
    make_key(key, (uint64_t) base + 47);
    put_raw(f, key, sizeof(key), trailing, 1 + 1 + 2 + 8 + 8);
    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 3);
}


static int
workers_cb(void *arg, const sl_ledger_row_t *row)
{
    workers_t *w = arg;
    size_t i;

    for (i = 0; i < 3 && (uint32_t) w->pids[i] != row->pid; i++) {
    }
    assert_true(i < 3);
    /*
     * Rows come in the order of the commits (a row that took the write lock
     * after a later one lags behind it); a worker's own rows, written one
     * after the other, in their order and with their times.
     */
    if (w->per_pid[i] > 0) {
        assert_true(row->seq > w->last_seq[i]);
        assert_true(row->time_ns > w->last_time[i]);
    }
    w->last_seq[i] = row->seq;
    w->last_time[i] = row->time_ns;
    w->per_pid[i]++;
    w->n++;
    return 0;
}


/* Three real processes append at once, each with its own environment handle. */
static void
test_workers(void **state)
{
    fixture_t *f = *state;
    workers_t w;
    int status;
    sl_txn_t *t;

    memset(&w, 0, sizeof(w));
    for (size_t i = 0; i < 3; i++) {
        w.pids[i] = fork();
        assert_true(w.pids[i] >= 0);
        if (w.pids[i] == 0) {
            sl_db_t *db;
            struct timespec ts;
            sl_ledger_row_t r;
            rows_t one = { &r, 1 };

            /* LMDB: a child opens its own environment, never the parent's */
            if (sl_db_open(f->dir, 8u << 20, 0, &db) != 0) {
                _exit(1);
            }
            for (int j = 0; j < 50; j++) {
                clock_gettime(CLOCK_REALTIME, &ts);
                r = row_at((int64_t) ts.tv_sec * NS + ts.tv_nsec, 0, "w");
                if (sl_db_write(db, append_txn, &one) != 0) {
                    _exit(1);
                }
            }
            sl_db_close(db);
            _exit(0);
        }
    }
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(waitpid(w.pids[i], &status, 0), w.pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    assert_ok(sl_db_read(f->db, &t));
    assert_ok(sl_ledger_scan(t, 0, workers_cb, &w));
    sl_db_abort(t);
    assert_int_equal(w.n, 150);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(w.per_pid[i], 50);
    }
}


static void
test_prune(void **state)
{
    fixture_t *f = *state;
    sl_ledger_row_t rows[10];
    collected_t c;
    size_t deleted = 99;

    for (size_t i = 0; i < 10; i++) {
        rows[i] = row_at((int64_t) (i + 1) * NS, 1, "r");
    }
    append(f, rows, 10);

    /* older than t=8: rows 1..7, three at a time */
    assert_ok(sl_ledger_prune(f->db, 8 * NS, 3, &deleted));
    assert_int_equal(deleted, 3);
    assert_ok(sl_ledger_prune(f->db, 8 * NS, 3, &deleted));
    assert_int_equal(deleted, 3);
    assert_ok(sl_ledger_prune(f->db, 8 * NS, 3, &deleted));
    assert_int_equal(deleted, 1);
    assert_ok(sl_ledger_prune(f->db, 8 * NS, 3, &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(sl_ledger_prune(f->db, 100 * NS, 0, &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(sl_ledger_prune(f->db, 0, 10, NULL));

    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.time[0], 8 * NS);
    assert_int_equal(c.time[2], 10 * NS);

    /* everything */
    assert_ok(sl_ledger_prune(f->db, INT64_MAX, 1000, &deleted));
    assert_int_equal(deleted, 3);
    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 0);
}


static void
test_aggregate(void **state)
{
    fixture_t *f = *state;
    int64_t day1 = (int64_t) utc(2026, 11, 20, 23, 59, 59) * NS;
    int64_t day2 = (int64_t) utc(2026, 11, 21, 0, 0, 0) * NS;
    sl_ledger_row_t rows[12];
    const sl_ledger_group_t *g;
    sl_ledger_agg_t *a;
    char day[32];

    for (size_t i = 0; i < 12; i++) {
        rows[i] = row_at(i < 4 ? day1 : day2 + (int64_t) i * NS, 7, "r");
        rows[i].latency_us = (i + 1) * 1000; /* 1..12 ms */
        rows[i].prompt_tokens = 100;
        rows[i].completion_tokens = 10;
        rows[i].cached_tokens = i;
        rows[i].cost_nusd = 1000;
    }
    /* key k2 (renamed on its last row), team blue, other model and provider */
    for (size_t i = 8; i < 12; i++) {
        rows[i].key_id = "k2";
        rows[i].key_name = i == 11 ? "beta-renamed" : "beta";
        rows[i].team = "blue";
        rows[i].model = "fast";
        rows[i].provider = "anthropic";
        rows[i].cost_nusd = 5000;
    }
    rows[2].status = 429;
    rows[9].status = 502;
    rows[10].status = 400;
    rows[3].flags = SL_LEDGER_UNPRICED;
    rows[3].cost_nusd = 0;
    /* a static key: no id, grouped by name; no team, no provider */
    rows[5].key_id = "";
    rows[5].key_name = "static-1";
    rows[5].team = "";
    rows[5].provider = "";
    append(f, rows, 12);

    a = aggregate(f, 0, 0, SL_LEDGER_BY_KEY);
    assert_int_equal(a->ngroups, 3);
    /* by cost: k2 (4 x 5000), k1 (7 rows, 6 priced x 1000), static-1 */
    assert_string_equal(a->groups[0].id, "k2");
    assert_string_equal(a->groups[0].name, "beta-renamed");
    assert_int_equal(a->groups[0].cost_nusd, 20000);
    assert_int_equal(a->groups[0].errors, 2);
    assert_string_equal(a->groups[1].id, "k1");
    assert_string_equal(a->groups[1].name, "alpha");
    assert_int_equal(a->groups[1].requests, 7);
    assert_int_equal(a->groups[1].errors, 1);
    assert_int_equal(a->groups[1].unpriced, 1);
    assert_int_equal(a->groups[1].cost_nusd, 6000);
    assert_int_equal(a->groups[1].prompt_tokens, 700);
    assert_int_equal(a->groups[1].completion_tokens, 70);
    assert_int_equal(a->groups[1].cached_tokens, 0 + 1 + 2 + 3 + 4 + 6 + 7);
    /* latencies 1,2,3,4,5,7,8 ms: p50 = 4th = 4 ms, p95 = 7th = 8 ms */
    assert_int_equal(a->groups[1].p50_us, 4000);
    assert_int_equal(a->groups[1].p95_us, 8000);
    assert_string_equal(a->groups[2].id, "static-1");
    assert_string_equal(a->groups[2].name, "static-1");
    /* the total: every row */
    assert_int_equal(a->total.requests, 12);
    assert_int_equal(a->total.errors, 3);
    assert_int_equal(a->total.cost_nusd, 27000);
    assert_int_equal(a->total.p50_us, 6000);
    assert_int_equal(a->total.p95_us, 12000);
    assert_int_equal(a->skipped, 0);
    sl_ledger_agg_free(a);

    a = aggregate(f, 0, 0, SL_LEDGER_BY_TEAM);
    assert_int_equal(a->ngroups, 3);
    assert_int_equal(group(a, "blue")->requests, 4);
    assert_int_equal(group(a, "red")->requests, 7);
    assert_int_equal(group(a, "")->requests, 1);
    sl_ledger_agg_free(a);

    a = aggregate(f, 0, 0, SL_LEDGER_BY_MODEL);
    assert_int_equal(a->ngroups, 2);
    assert_string_equal(a->groups[0].id, "fast");
    g = group(a, "gpt-4o-mini");
    assert_int_equal(g->requests, 8);
    assert_int_equal(g->cost_nusd, 7000);
    sl_ledger_agg_free(a);

    a = aggregate(f, 0, 0, SL_LEDGER_BY_PROVIDER);
    assert_int_equal(a->ngroups, 3);
    assert_int_equal(group(a, "openai")->requests, 7);
    assert_int_equal(group(a, "anthropic")->requests, 4);
    assert_int_equal(group(a, "")->requests, 1);
    sl_ledger_agg_free(a);

    /* days, oldest first, UTC boundaries */
    a = aggregate(f, 0, 0, SL_LEDGER_BY_DAY);
    assert_int_equal(a->ngroups, 2);
    assert_string_equal(a->groups[0].id, "2026-11-20");
    assert_int_equal(a->groups[0].requests, 4);
    assert_int_equal(a->groups[0].cost_nusd, 3000);
    assert_string_equal(a->groups[1].id, "2026-11-21");
    assert_int_equal(a->groups[1].requests, 8);
    sl_ledger_agg_free(a);

    /* a window: [day2, day2 + 9 s) holds rows 4..8 */
    a = aggregate(f, day2, day2 + 9 * NS, SL_LEDGER_BY_DAY);
    assert_int_equal(a->ngroups, 1);
    assert_int_equal(a->groups[0].requests, 5);
    snprintf(day, sizeof(day), "%s", a->groups[0].id);
    assert_string_equal(day, "2026-11-21");
    sl_ledger_agg_free(a);

    /* an empty window */
    a = aggregate(f, day2 + 1000 * NS, 0, SL_LEDGER_BY_MODEL);
    assert_int_equal(a->ngroups, 0);
    assert_int_equal(a->total.requests, 0);
    assert_int_equal(a->total.p50_us, 0);
    sl_ledger_agg_free(a);
}


/* Many groups: the hash table grows and nothing is lost or merged. */
static void
test_aggregate_many(void **state)
{
    fixture_t *f = *state;
    static sl_ledger_row_t rows[600];
    static char ids[600][16];
    sl_ledger_agg_t *a;
    uint64_t sum = 0;

    for (size_t i = 0; i < 600; i++) {
        snprintf(ids[i], sizeof(ids[i]), "key-%zu", i % 300);
        rows[i] = row_at((int64_t) (i + 1) * NS, 1, "r");
        rows[i].key_id = ids[i];
        rows[i].cost_nusd = i % 300;
    }
    append(f, rows, 600);
    a = aggregate(f, 0, 0, SL_LEDGER_BY_KEY);
    assert_int_equal(a->ngroups, 300);
    for (size_t i = 0; i < a->ngroups; i++) {
        assert_int_equal(a->groups[i].requests, 2);
        sum += a->groups[i].cost_nusd;
        if (i > 0) {
            assert_true(a->groups[i - 1].cost_nusd >= a->groups[i].cost_nusd);
        }
    }
    assert_int_equal(sum, 2 * (299 * 300 / 2));
    assert_string_equal(a->groups[0].id, "key-299");
    sl_ledger_agg_free(a);
}


/*
 * By request: one group per request id, named after the model, so a client
 * can find its own requests; a request id seen twice is one group of two.
 */
static void
test_aggregate_by_request(void **state)
{
    fixture_t *f = *state;
    sl_ledger_row_t rows[5];
    const sl_ledger_group_t *g;
    sl_ledger_agg_t *a;

    rows[0] = row_at(1 * NS, 1, "req-a");
    rows[1] = row_at(2 * NS, 1, "req-b");
    rows[2] = row_at(3 * NS, 2, "req-c");
    rows[3] = row_at(4 * NS, 2, "req-b");
    rows[4] = row_at(5 * NS, 2, "");
    rows[1].model = "fast";
    rows[3].model = "fast-2";
    rows[2].status = 502;
    for (size_t i = 0; i < 5; i++) {
        rows[i].cost_nusd = (i + 1) * 100;
        rows[i].prompt_tokens = 10;
    }
    append(f, rows, 5);

    a = aggregate(f, 0, 0, SL_LEDGER_BY_REQUEST);
    assert_int_equal(a->ngroups, 4);
    /* by cost: req-b (200 + 400), "" (500), req-c (300), req-a (100) */
    assert_string_equal(a->groups[0].id, "req-b");
    assert_string_equal(a->groups[3].id, "req-a");
    g = group(a, "req-a");
    assert_string_equal(g->name, "gpt-4o-mini");
    assert_int_equal(g->requests, 1);
    assert_int_equal(g->cost_nusd, 100);
    g = group(a, "req-b");
    assert_string_equal(g->name, "fast-2"); /* the newest row's model */
    assert_int_equal(g->requests, 2);
    assert_int_equal(g->prompt_tokens, 20);
    assert_int_equal(g->cost_nusd, 600);
    g = group(a, "req-c");
    assert_int_equal(g->errors, 1);
    assert_int_equal(group(a, "")->requests, 1);
    assert_int_equal(a->total.requests, 5);
    assert_int_equal(a->total.cost_nusd, 1500);
    sl_ledger_agg_free(a);

    /* by endpoint: the same rows, split by the API they came through */
    a = aggregate(f, 0, 0, SL_LEDGER_BY_ENDPOINT);
    assert_int_equal(a->ngroups, 1);
    assert_string_equal(a->groups[0].id, rows[0].endpoint);
    assert_int_equal(a->groups[0].requests, 5);
    sl_ledger_agg_free(a);
}


static void
test_parse_names(void **state)
{
    sl_ledger_by_e by;
    sl_budget_period_e p;

    assert_int_equal(sl_ledger_by_parse("key", &by), 0);
    assert_int_equal(by, SL_LEDGER_BY_KEY);
    assert_int_equal(sl_ledger_by_parse("day", &by), 0);
    assert_int_equal(by, SL_LEDGER_BY_DAY);
    assert_int_equal(sl_ledger_by_parse("provider", &by), 0);
    assert_int_equal(by, SL_LEDGER_BY_PROVIDER);
    assert_int_equal(sl_ledger_by_parse("request", &by), 0);
    assert_int_equal(by, SL_LEDGER_BY_REQUEST);
    assert_int_equal(sl_ledger_by_parse("endpoint", &by), 0);
    assert_int_equal(by, SL_LEDGER_BY_ENDPOINT);
    assert_int_equal(sl_ledger_by_parse("requests", &by), SL_EPARSE);
    assert_int_equal(sl_ledger_by_parse("week", &by), SL_EPARSE);
    assert_int_equal(sl_budget_period_parse("month", &p), 0);
    assert_int_equal(p, SL_BUDGET_MONTH);
    assert_int_equal(sl_budget_period_parse("total", &p), 0);
    assert_int_equal(p, SL_BUDGET_TOTAL);
    assert_int_equal(sl_budget_period_parse("week", &p), 0);
    assert_int_equal(p, SL_BUDGET_WEEK);
    assert_int_equal(sl_budget_period_parse("year", &p), SL_EPARSE);
    assert_string_equal(sl_budget_period_name(SL_BUDGET_DAY), "day");
    assert_string_equal(sl_budget_period_name(SL_BUDGET_WEEK), "week");
}


static void
test_reserve_settle(void **state)
{
    fixture_t *f = *state;
    sl_budget_ref_t refs[] = {
        { SL_BUDGET_KEY, "k1", 1000, SL_BUDGET_MONTH },
        { SL_BUDGET_TEAM, "red", 5000, SL_BUDGET_DAY },
    };
    sl_spend_denial_t d;
    sl_spend_t s;

    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_MONTH, T0);
    assert_int_equal(s.spent, 0);
    assert_int_equal(s.reserved, 0);

    /* three requests in flight, settled out of order */
    assert_ok(reserve(f, refs, 2, 300, T0, NULL));
    assert_ok(reserve(f, refs, 2, 200, T0, NULL));
    assert_ok(reserve(f, refs, 2, 400, T0, NULL));
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_MONTH, T0);
    assert_int_equal(s.reserved, 900);
    assert_int_equal(sl_spend_remaining(1000, &s), 100);

    /* 900 reserved: 101 more is over, 100 fits exactly */
    assert_int_equal(reserve(f, refs, 2, 101, T0, &d), SL_EDENIED);
    assert_int_equal(d.index, 0);
    assert_int_equal(d.remaining, 100);
    s = get(f, SL_BUDGET_TEAM, "red", SL_BUDGET_DAY, T0);
    assert_int_equal(s.reserved, 900); /* the denial wrote nothing, not even to the team */

    settle(f, refs, 2, 200, 150, T0, T0 + 5);
    settle(f, refs, 2, 400, 0, T0, T0 + 6); /* failed upstream: nothing spent */
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_MONTH, T0);
    assert_int_equal(s.spent, 150);
    assert_int_equal(s.reserved, 300);

    /* actual above the estimate is still charged in full */
    settle(f, refs, 2, 300, 700, T0, T0 + 7);
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_MONTH, T0);
    assert_int_equal(s.spent, 850);
    assert_int_equal(s.reserved, 0);
    s = get(f, SL_BUDGET_TEAM, "red", SL_BUDGET_DAY, T0);
    assert_int_equal(s.spent, 850);
    assert_int_equal(s.reserved, 0);

    assert_ok(reserve(f, refs, 2, 150, T0, NULL));
    assert_int_equal(reserve(f, refs, 2, 1, T0, &d), SL_EDENIED);
    assert_int_equal(d.remaining, 0);
    settle(f, refs, 2, 150, 200, T0, T0);
    /* overspent by 50: even an unpriced request (estimate 0) is refused now */
    assert_int_equal(reserve(f, refs, 2, 0, T0, &d), SL_EDENIED);
    assert_int_equal(d.index, 0);
    assert_int_equal(d.remaining, 0);
    /* the team is fine on its own */
    assert_ok(reserve(f, refs + 1, 1, 0, T0, NULL));

    /* the second ref refuses: its index, and nothing reserved on the first */
    refs[0].id = "k2";
    refs[0].budget_nusd = 1000000;
    assert_int_equal(reserve(f, refs, 2, 4000, T0, &d), SL_EDENIED);
    assert_int_equal(d.index, 1);
    assert_int_equal(d.remaining, 5000 - 1050);
    s = get(f, SL_BUDGET_KEY, "k2", SL_BUDGET_MONTH, T0);
    assert_int_equal(s.reserved, 0);

    /* records spend without a reservation */
    settle(f, refs, 1, 0, 25, T0, T0);
    s = get(f, SL_BUDGET_KEY, "k2", SL_BUDGET_MONTH, T0);
    assert_int_equal(s.spent, 25);
    assert_int_equal(s.reserved, 0);

    /* budget 0 refuses anything priced */
    refs[0].budget_nusd = 0;
    refs[0].id = "k3";
    assert_int_equal(reserve(f, refs, 1, 1, T0, &d), SL_EDENIED);
    assert_ok(reserve(f, refs, 1, 0, T0, NULL));
}


/* Day and month buckets roll over at UTC midnight; a reservation is returned where it was made. */
static void
test_rollover(void **state)
{
    fixture_t *f = *state;
    time_t before = utc(2026, 11, 30, 23, 59, 59), after = utc(2026, 12, 1, 0, 0, 1);
    sl_budget_ref_t day = { SL_BUDGET_KEY, "k1", 1000, SL_BUDGET_DAY };
    sl_budget_ref_t month = { SL_BUDGET_TEAM, "red", 1000, SL_BUDGET_MONTH };
    sl_budget_ref_t total = { SL_BUDGET_KEY, "k1", 1000, SL_BUDGET_TOTAL };
    sl_budget_ref_t refs[3];
    sl_spend_t s;

    refs[0] = day;
    refs[1] = month;
    refs[2] = total;
    assert_ok(reserve(f, refs, 3, 600, before, NULL));
    /* full buckets before midnight */
    assert_int_equal(reserve(f, refs, 3, 600, before, NULL), SL_EDENIED);
    /* a new day and a new month have room, the lifetime budget does not */
    assert_int_equal(reserve(f, refs, 2, 600, after, NULL), 0);
    settle(f, refs, 2, 600, 0, after, after);
    assert_int_equal(reserve(f, refs, 3, 600, after, NULL), SL_EDENIED);

    /* settled after midnight: released from Nov 30 / November, charged to Dec 1 / December */
    settle(f, refs, 3, 600, 500, before, after);
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_DAY, before);
    assert_int_equal(s.spent, 0);
    assert_int_equal(s.reserved, 0);
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_DAY, after);
    assert_int_equal(s.spent, 500);
    assert_int_equal(s.reserved, 0);
    s = get(f, SL_BUDGET_TEAM, "red", SL_BUDGET_MONTH, before);
    assert_int_equal(s.spent, 0);
    assert_int_equal(s.reserved, 0);
    s = get(f, SL_BUDGET_TEAM, "red", SL_BUDGET_MONTH, utc(2026, 12, 31, 23, 0, 0));
    assert_int_equal(s.spent, 500);
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_TOTAL, utc(2030, 1, 1, 0, 0, 0));
    assert_int_equal(s.spent, 500);
    assert_int_equal(s.reserved, 0);

    /* day boundaries within a month; leap day */
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_DAY, utc(2026, 12, 1, 23, 59, 59));
    assert_int_equal(s.spent, 500);
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_DAY, utc(2026, 12, 2, 0, 0, 0));
    assert_int_equal(s.spent, 0);
    refs[0].id = "leap";
    settle(f, refs, 1, 0, 9, 0, utc(2028, 2, 29, 12, 0, 0));
    s = get(f, SL_BUDGET_KEY, "leap", SL_BUDGET_DAY, utc(2028, 2, 29, 0, 0, 0));
    assert_int_equal(s.spent, 9);
    s = get(f, SL_BUDGET_KEY, "leap", SL_BUDGET_DAY, utc(2028, 3, 1, 0, 0, 0));
    assert_int_equal(s.spent, 0);
}


/*
 * ISO weeks in UTC: Monday 00:00 to Sunday 24:00, the ISO year across New
 * Year (2026-W01 runs from Monday 2025-12-29 to Sunday 2026-01-04).
 */
static void
test_week(void **state)
{
    fixture_t *f = *state;
    sl_budget_ref_t week = { SL_BUDGET_KEY, "wk", 1000, SL_BUDGET_WEEK };
    sl_spend_t s;

    /* Sunday 2026-11-29 23:59:59 ends week 48; Monday 2026-11-30 00:00:00 starts week 49 */
    settle(f, &week, 1, 0, 7, 0, utc(2026, 11, 29, 23, 59, 59));
    settle(f, &week, 1, 0, 11, 0, utc(2026, 11, 30, 0, 0, 0));
    s = get(f, SL_BUDGET_KEY, "wk", SL_BUDGET_WEEK, utc(2026, 11, 23, 0, 0, 0)); /* Monday */
    assert_int_equal(s.spent, 7);
    s = get(f, SL_BUDGET_KEY, "wk", SL_BUDGET_WEEK, utc(2026, 12, 6, 23, 59, 59)); /* Sunday */
    assert_int_equal(s.spent, 11);
    s = get(f, SL_BUDGET_KEY, "wk", SL_BUDGET_WEEK, utc(2026, 12, 7, 0, 0, 0));
    assert_int_equal(s.spent, 0);

    /* across New Year: Monday 2025-12-29 and Sunday 2026-01-04 are one week, 2026-W01 */
    week.id = "ny";
    settle(f, &week, 1, 0, 5, 0, utc(2025, 12, 29, 0, 0, 0));
    s = get(f, SL_BUDGET_KEY, "ny", SL_BUDGET_WEEK, utc(2026, 1, 4, 23, 0, 0));
    assert_int_equal(s.spent, 5);
    s = get(f, SL_BUDGET_KEY, "ny", SL_BUDGET_WEEK, utc(2025, 12, 28, 23, 59, 59));
    assert_int_equal(s.spent, 0);
    /* 2026-12-31 (Thursday) is in 2026-W53, not in 2027's first week */
    settle(f, &week, 1, 0, 3, 0, utc(2026, 12, 31, 12, 0, 0));
    s = get(f, SL_BUDGET_KEY, "ny", SL_BUDGET_WEEK, utc(2026, 12, 28, 0, 0, 0));
    assert_int_equal(s.spent, 3);
    s = get(f, SL_BUDGET_KEY, "ny", SL_BUDGET_WEEK, utc(2027, 1, 4, 0, 0, 0));
    assert_int_equal(s.spent, 0);

    /* a weekly budget refuses within its week and has room in the next */
    week.id = "cap";
    assert_ok(reserve(f, &week, 1, 900, utc(2026, 11, 30, 8, 0, 0), NULL));
    assert_int_equal(reserve(f, &week, 1, 200, utc(2026, 12, 6, 8, 0, 0), NULL), SL_EDENIED);
    assert_ok(reserve(f, &week, 1, 200, utc(2026, 12, 7, 8, 0, 0), NULL));
}


static void
test_clear_reserved(void **state)
{
    fixture_t *f = *state;
    sl_budget_ref_t refs[] = {
        { SL_BUDGET_KEY, "k1", 1000, SL_BUDGET_TOTAL },
        { SL_BUDGET_TEAM, "red", 1000, SL_BUDGET_DAY },
    };
    sl_spend_t s;

    assert_ok(reserve(f, refs, 2, 400, T0, NULL));
    settle(f, refs, 2, 0, 100, T0, T0);
    assert_ok(reserve(f, refs, 2, 400, T0, NULL));
    /* a worker died with two reservations: a cold start releases them */
    assert_ok(sl_db_write(f->db, clear_txn, NULL));
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_TOTAL, T0);
    assert_int_equal(s.spent, 100);
    assert_int_equal(s.reserved, 0);
    s = get(f, SL_BUDGET_TEAM, "red", SL_BUDGET_DAY, T0);
    assert_int_equal(s.spent, 100);
    assert_int_equal(s.reserved, 0);
    /* a settle after the clear does not go below zero */
    settle(f, refs, 2, 400, 0, T0, T0);
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_TOTAL, T0);
    assert_int_equal(s.reserved, 0);
}


static int
request_txn(sl_txn_t *t, void *arg)
{
    request_t *r = arg;
    int rc;

    rc = sl_ledger_append(t, &r->row);
    if (rc == 0) {
        rc = sl_spend_settle(t, r->refs, r->n, r->reserved, r->row.cost_nusd,
                             (time_t) (r->row.time_ns / NS), (time_t) (r->row.time_ns / NS));
    }
    return rc == 0 && r->fail ? -EIO : rc;
}


static void
test_one_write(void **state)
{
    fixture_t *f = *state;
    sl_budget_ref_t ref = { SL_BUDGET_KEY, "k1", 10000, SL_BUDGET_DAY };
    request_t r;
    collected_t c;
    sl_spend_t s;

    memset(&r, 0, sizeof(r));
    r.row = row_at((int64_t) T0 * NS, 1, "ok");
    r.row.cost_nusd = 700;
    r.refs = &ref;
    r.n = 1;
    r.reserved = 1000;
    assert_ok(reserve(f, &ref, 1, 1000, T0, NULL));
    assert_ok(sl_db_write(f->db, request_txn, &r));

    /* an aborted transaction leaves neither the row nor the money */
    r.row.request_id = "aborted";
    r.fail = true;
    assert_int_equal(sl_db_write(f->db, request_txn, &r), -EIO);

    memset(&c, 0, sizeof(c));
    scan(f, 0, &c, 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.request_id[0], "ok");
    s = get(f, SL_BUDGET_KEY, "k1", SL_BUDGET_DAY, T0);
    assert_int_equal(s.spent, 700);
    assert_int_equal(s.reserved, 0);
}


/* sl_ledger_utf8_clean: ASCII copied, controls '?' when asked, bad UTF-8 '?', good kept, room
 * for 4. */
static void
test_utf8_clean(void **state)
{
    char out[16];

    (void) state;
    sl_ledger_utf8_clean("gpt-4o-mini", true, out, sizeof(out));
    assert_string_equal(out, "gpt-4o-mini");
    sl_ledger_utf8_clean("a\tb\x7f\x1b[0m", true, out, sizeof(out));
    assert_string_equal(out, "a?b??[0m");
    sl_ledger_utf8_clean("a\tb\x7f", false, out, sizeof(out));
    assert_string_equal(out, "a\tb\x7f");
    sl_ledger_utf8_clean("caf\xc3\xa9 \xc3( \xed\xa0\x80", true, out, sizeof(out));
    assert_string_equal(out, "caf\xc3\xa9 ?( ???");
    sl_ledger_utf8_clean("0123456789abcdefghij", true, out, 8);
    assert_string_equal(out, "0123");
    sl_ledger_utf8_clean("", true, out, sizeof(out));
    assert_string_equal(out, "");
}

/*
 * The same, against a byte-at-a-time reference, for strings whose leading
 * ASCII run (copied eight bytes a step) ends at every offset, on every kind
 * of byte (control, DEL, UTF-8, invalid UTF-8), in every room.
 */
static void
test_utf8_clean_runs(void **state)
{
    static const char *const ends[] = { "\x01", "\x1f",     "\x7f",
                                        "\t",   "\xc3\xa9", "\xe2\x82\xac",
                                        "\xc3", "\xff",     "\xed\xa0\x80",
                                        " ",    "~" };
    char in[80], out[64], want[64];

    (void) state;
    for (size_t run = 0; run < 40; run++) {
        for (size_t e = 0; e < sizeof(ends) / sizeof(ends[0]); e++) {
            for (size_t i = 0; i < run; i++) {
                in[i] = (char) ('!' + (i * 7) % 94);
            }
            snprintf(in + run, sizeof(in) - run, "%sxyz0123456789", ends[e]);
            for (size_t size = 1; size <= sizeof(out); size++) {
                for (int ctrl = 0; ctrl < 2; ctrl++) {
                    sl_ledger_utf8_clean(in, ctrl, out, size);
                    utf8_clean_ref(in, ctrl, want, size);
                    assert_string_equal(out, want);
                }
            }
        }
    }
}


/* sl_ledger_utf8_clean as it was, one byte at a time. */
static void
utf8_clean_ref(const char *s, bool ctrl, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t o = 0, n;

    while (*p != '\0' && o + 4 < size) {
        if (*p < 0x80 && (!ctrl || (*p >= 0x20 && *p != 0x7f))) {
            out[o++] = (char) *p++;
            continue;
        }
        n = sl_utf8_char_len((const char *) p, 4);
        if (n == 0 || (ctrl && (*p < 0x20 || *p == 0x7f))) {
            out[o++] = '?';
            p++;
            continue;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_v3_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v4_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v4_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregate_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregate_by_request, setup, teardown),
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test_setup_teardown(test_reserve_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_week, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_reserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_write, setup, teardown),
        cmocka_unit_test(test_utf8_clean),
        cmocka_unit_test(test_utf8_clean_runs),
    };

    /* corrupted rows log warnings by design: keep the test output to failures */
    sl_log_level = SL_LOG_ERR;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
