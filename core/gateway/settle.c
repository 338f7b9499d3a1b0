/*
 * Admission to the ledger, intents, pending rows and the rows of dead
 * workers (core/gateway/settle.h). Rows built here from an intent go through the
 * same sl_ledger_append and sl_spend_settle as every other row.
 */
#include "core/gateway/settle.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/gateway/intent.h"
#include "core/base/json.h"
#include "core/base/log.h"
#include "core/base/pid.h"
#include "core/admin/metrics.h"
#include "core/gateway/pricing.h"
#include "storage/spend.h"

#define SETTLE_ROW_RESERVE  1024 /* map bytes kept per request that may be in flight */
#define SETTLE_RESERVE_MIN  (64u << 10)
#define SETTLE_CAPACITY_MAX (1u << 20)
#define SETTLE_NS           1000000000LL

/* The entries one write settles, and how. */
typedef struct settle_batch {
    const sl_conf_t *conf;
    sl_intent_t **items;
    size_t n;
    size_t cap;
    bool done_only; /* a worker's retry: leave its open intents alone */
    bool oom;
    size_t rows;       /* rows written (an entry whose row had committed gets none) */
    size_t died;       /* rows of requests cut by the worker's death */
    uint64_t released; /* nano-USD of reservations released */
} settle_batch_t;

/* Pending rows of this process, so that sl_settle_retry costs nothing when there are none. */
static size_t settle_pending;

static int64_t settle_now_ns(void);
static sl_str_t settle_model(const sl_call_t *call);
static void settle_collect(void *arg, sl_intent_t *in);
static int settle_txn(sl_txn_t *t, void *arg);
static void settle_row(const sl_conf_t *conf, const sl_intent_t *in, int64_t now_ns,
                       sl_ledger_row_t *row);
static void settle_done(sl_intent_t *in, const sl_ledger_row_t *row);
static size_t settle_refs(const sl_intent_t *in, sl_budget_ref_t refs[2]);


size_t
sl_settle_reserve(const sl_conf_t *conf)
{
    size_t n = sl_settle_capacity(conf) * SETTLE_ROW_RESERVE;
    size_t max = conf->storage_map_size / 4;

    if (n < SETTLE_RESERVE_MIN) {
        n = SETTLE_RESERVE_MIN;
    }
    return n < max ? n : max;
}


size_t
sl_settle_capacity(const sl_conf_t *conf)
{
    uint64_t n = (uint64_t) conf->workers * conf->max_connections * 2;

    return n < SETTLE_CAPACITY_MAX ? (size_t) n : SETTLE_CAPACITY_MAX;
}


static int64_t
settle_now_ns(void)
{
    return (int64_t) sl_clock_real_ns();
}


/*
 * The model the client asked for, as the request's row names it. The
 * frontend decoded and checked that string before admission (a request
 * whose model does not decode is refused first), so a body without an
 * escape is the string itself, taken without decoding it again.
 */
static sl_str_t
settle_model(const sl_call_t *call)
{
    sl_str_t raw = sl_json_raw(call->doc, call->model), model = sl_str_null;

    if (raw.len >= 2 && raw.p[0] == '"' && memchr(raw.p + 1, '\\', raw.len - 2) == NULL) {
        return (sl_str_t){ raw.p + 1, raw.len - 2 };
    }
    sl_json_string(call->doc, call->model, call->pool, &model);
    return model;
}


int
sl_settle_admit(const sl_conf_t *conf, sl_acct_t *a, const sl_call_t *call)
{
    sl_intent_t *in;
    sl_str_t model = sl_str_null;

    if (sl_db_is_full()) {
        /* the map's reserve belongs to the requests already admitted: no row for this one */
        a->recorded = true;
        if (conf->ledger_on_full == SL_ON_FULL_REFUSE) {
            sl_metric_add(SL_METRIC_STORAGE_REFUSED, 1);
            return SL_EFULL;
        }
        sl_metric_add(SL_METRIC_UNRECORDED, 1);
        return 0;
    }
    in = sl_intent_open();
    a->intent = in;
    if (in == NULL) {
        return 0;
    }
    if (call->doc != NULL) {
        model = settle_model(call);
    }
    in->start_ns = settle_now_ns();
    if (a->req != NULL) {
        in->start_ns -= (int64_t) (sl_clock_ns() - a->req->start_ns);
        in->body_len = a->req->body.len;
        sl_intent_str(in->request_id, sizeof(in->request_id), a->req->request_id);
    }
    in->flags = call->stream ? SL_INTENT_STREAM : 0;
    sl_intent_str(in->key_id, sizeof(in->key_id), a->key_id);
    sl_intent_str(in->key_name, sizeof(in->key_name), a->key_name);
    sl_intent_str(in->team, sizeof(in->team), a->team);
    sl_intent_str(in->endpoint, sizeof(in->endpoint), sl_api_name(call->client_api));
    /* the model's bytes in the body are not NUL-terminated */
    sl_intent_strn(in->model, sizeof(in->model), model.p, model.len);
    if (call->target != NULL) {
        sl_intent_str(in->provider, sizeof(in->provider), call->target->provider->name);
        sl_intent_str(in->target_model, sizeof(in->target_model), call->target->model);
    }
    in->nrefs = (uint32_t) (a->nrefs < 2 ? a->nrefs : 2);
    for (uint32_t i = 0; i < in->nrefs; i++) {
        in->ref_kind[i] = (uint8_t) a->refs[i].kind;
        in->ref_period[i] = (uint8_t) a->refs[i].period;
    }
    return 0;
}


void
sl_settle_target(sl_acct_t *a, const sl_target_t *t)
{
    if (a->intent != NULL && t != NULL) {
        sl_intent_str(a->intent->provider, sizeof(a->intent->provider), t->provider->name);
        sl_intent_str(a->intent->target_model, sizeof(a->intent->target_model), t->model);
    }
}


void
sl_settle_reserved(sl_acct_t *a, uint64_t reserved, time_t at)
{
    if (a->intent != NULL) {
        a->intent->reserved = reserved;
        a->intent->reserved_at = (int64_t) at;
    }
}


int
sl_settle_append(sl_txn_t *t, sl_acct_t *a, const sl_ledger_row_t *row)
{
    sl_intent_t *in = a->intent;
    uint8_t key[SL_LEDGER_KEY_LEN];
    int rc = sl_ledger_append_key(t, row, key);

    if (rc == 0 && in != NULL) {
        memcpy(in->row_key, key, sizeof(in->row_key));
        in->has_key = 1;
        settle_done(in, row);
    }
    return rc;
}


/* The entry holds the finished row from now on. */
static void
settle_done(sl_intent_t *in, const sl_ledger_row_t *row)
{
    in->status = row->status;
    in->attempts = row->attempts;
    in->row_flags = row->flags;
    in->prompt_tokens = row->prompt_tokens;
    in->completion_tokens = row->completion_tokens;
    in->cached_tokens = row->cached_tokens;
    in->cache_write_tokens = row->cache_write_tokens;
    in->cost_nusd = row->cost_nusd;
    in->latency_us = row->latency_us;
    in->first_byte_us = row->first_byte_us;
    if (row->served_model != NULL && row->served_model[0] != '\0') {
        sl_intent_str(in->target_model, sizeof(in->target_model), row->served_model);
    }
    /* whoever reads the entry after our death sees the row before the state */
    atomic_thread_fence(memory_order_release);
    in->state = SL_INTENT_DONE;
}


void
sl_settle_recorded(sl_acct_t *a, const sl_ledger_row_t *row, int rc)
{
    sl_intent_t *in = a->intent;

    if (rc == 0) {
        if (a->reserved > 0 && row->cost_nusd > a->reserved) {
            sl_metric_add(SL_METRIC_BUDGET_OVERRUN, 1);
            sl_metric_add(SL_METRIC_OVERRUN_NUSD, row->cost_nusd - a->reserved);
        }
        sl_intent_close(in);
        a->intent = NULL;
        return;
    }
    sl_metric_add(SL_METRIC_LEDGER_FAILURES, 1);
    if (rc != SL_EFULL) {
        sl_log(NULL, SL_LOG_CRIT, rc, "writing the usage ledger row of request %s failed",
               row->request_id != NULL ? row->request_id : "-");
    }
    if (in == NULL) {
        return;
    }
    /* the write did not commit: the row waits in the intent for sl_settle_retry or the master */
    in->has_key = 0;
    settle_done(in, row);
    a->intent = NULL;
    settle_pending++;
}


size_t
sl_settle_retry(sl_db_t *db, const sl_conf_t *conf)
{
    settle_batch_t b;
    int rc;

    if (settle_pending == 0 || db == NULL) {
        return 0;
    }
    memset(&b, 0, sizeof(b));
    b.conf = conf;
    b.done_only = true;
    sl_intent_scan(sl_pid(), settle_collect, &b);
    if (b.n == 0 || b.oom) {
        free(b.items);
        return settle_pending;
    }
    rc = sl_db_write(db, settle_txn, &b);
    if (rc == 0) {
        for (size_t i = 0; i < b.n; i++) {
            sl_intent_close(b.items[i]);
        }
        settle_pending = settle_pending > b.n ? settle_pending - b.n : 0;
        sl_log(NULL, SL_LOG_NOTICE, 0, "wrote %zu usage ledger row(s) that had failed before",
               b.rows);
    }
    free(b.items);
    return settle_pending;
}


void
sl_settle_exit(sl_db_t *db, const sl_conf_t *conf)
{
    settle_batch_t b;
    size_t open = 0;

    if (sl_settle_retry(db, conf) > 0) {
        sl_log(NULL, SL_LOG_ERR, 0,
               "exiting with %zu usage ledger row(s) not written yet: the master writes them",
               settle_pending);
    }
    memset(&b, 0, sizeof(b));
    sl_intent_scan(sl_pid(), settle_collect, &b);
    for (size_t i = 0; i < b.n; i++) {
        open += b.items[i]->state == SL_INTENT_OPEN ? 1 : 0;
    }
    free(b.items);
    if (open > 0) {
        /* every request ends with its row before the loop can stop: this is a bug */
        sl_log(NULL, SL_LOG_ALERT, 0,
               "exiting with %zu request(s) in flight that have no usage ledger row: the master "
               "writes them as worker_died",
               open);
    }
}


int
sl_settle_dead(const sl_conf_t *conf, pid_t pid, bool signaled, size_t *rows)
{
    settle_batch_t b;
    sl_db_t *db;
    size_t open = 0;
    char usd[32];
    int rc;

    if (rows != NULL) {
        *rows = 0;
    }
    memset(&b, 0, sizeof(b));
    b.conf = conf;
    sl_intent_scan(pid, settle_collect, &b);
    if (b.oom) {
        free(b.items);
        sl_log(NULL, SL_LOG_ALERT, ENOMEM, "cannot settle the requests of worker process %d",
               (int) pid);
        return -ENOMEM;
    }
    if (b.n == 0) {
        free(b.items);
        return 0;
    }
    for (size_t i = 0; i < b.n; i++) {
        open += b.items[i]->state == SL_INTENT_OPEN ? 1 : 0;
    }
    if (!signaled && open > 0) {
        sl_log(NULL, SL_LOG_ALERT, 0,
               "worker process %d exited without a signal but left %zu request(s) in flight",
               (int) pid, open);
    }
    if (!conf->ledger_enabled) {
        rc = 0;
    } else {
        rc = sl_db_open(conf->storage_path, conf->storage_map_size, 0, &db);
        if (rc == 0) {
            sl_db_set_reserve(db, sl_settle_reserve(conf));
            rc = sl_db_write(db, settle_txn, &b);
            sl_db_close(db);
        }
    }
    if (rc != 0) {
        free(b.items);
        sl_log(NULL, SL_LOG_ERR, rc,
               "the usage ledger rows of %zu request(s) of worker process %d cannot be written "
               "yet, trying again later",
               b.n, (int) pid);
        return rc;
    }
    for (size_t i = 0; i < b.n; i++) {
        sl_intent_close(b.items[i]);
    }
    free(b.items);
    sl_metric_add(SL_METRIC_WORKER_DIED, b.died);
    sl_log(NULL, SL_LOG_NOTICE, 0,
           "wrote %zu usage ledger row(s) for worker process %d (%zu cut short by its end) and "
           "released %s USD of budget reservations",
           b.rows, (int) pid, b.died, sl_pricing_format_usd(b.released, usd, sizeof(usd)));
    if (rows != NULL) {
        *rows = b.rows;
    }
    return 0;
}


/*
 * Collects the entries a write settles. An entry that is neither open nor
 * pending, or has no request id, was claimed by a process that died before
 * it filled it: it is freed without a row (that request was never admitted).
 */
static void
settle_collect(void *arg, sl_intent_t *in)
{
    settle_batch_t *b = arg;
    sl_intent_t **items;

    if (in->state != SL_INTENT_OPEN && in->state != SL_INTENT_DONE) {
        if (!b->done_only) {
            sl_intent_close(in);
        }
        return;
    }
    if (b->done_only && in->state != SL_INTENT_DONE) {
        return;
    }
    if (in->request_id[0] == '\0') {
        if (!b->done_only) {
            sl_intent_close(in);
        }
        return;
    }
    if (b->n == b->cap) {
        b->cap = b->cap == 0 ? 16 : b->cap * 2;
        items = realloc(b->items, b->cap * sizeof(*items));
        if (items == NULL) {
            b->oom = true;
            return;
        }
        b->items = items;
    }
    b->items[b->n++] = in;
}


/*
 * One write: a row and a settlement per collected entry, unless the write
 * that the entry's owner made of it is already there. Each row's key goes
 * back into its entry before the commit, so that a writer that dies right
 * after committing is not written twice. Repeatable, as sl_db_write needs.
 */
static int
settle_txn(sl_txn_t *t, void *arg)
{
    settle_batch_t *b = arg;
    sl_budget_ref_t refs[2];
    sl_ledger_row_t row;
    uint8_t key[SL_LEDGER_KEY_LEN];
    int64_t now_ns = settle_now_ns();
    time_t now = (time_t) (now_ns / SETTLE_NS);
    size_t nrefs;
    int rc;

    b->rows = 0;
    b->died = 0;
    b->released = 0;
    for (size_t i = 0; i < b->n; i++) {
        sl_intent_t *in = b->items[i];

        if (in->state == SL_INTENT_DONE && in->has_key) {
            rc = sl_ledger_has(t, in->row_key);
            if (rc == 0) {
                continue; /* committed, with its settlement, before the owner could close it */
            }
            if (rc != SL_ENOTFOUND) {
                return rc;
            }
        }
        settle_row(b->conf, in, now_ns, &row);
        nrefs = settle_refs(in, refs);
        if (nrefs > 0 && (in->reserved > 0 || row.cost_nusd > 0)) {
            rc = sl_spend_settle(t, refs, nrefs, in->reserved, row.cost_nusd,
                                 in->reserved_at != 0 ? (time_t) in->reserved_at : now, now);
            if (rc != 0) {
                return rc;
            }
        }
        rc = sl_ledger_append_key(t, &row, key);
        if (rc != 0) {
            return rc;
        }
        b->rows++;
        b->released += in->reserved;
        b->died += in->state == SL_INTENT_OPEN ? 1 : 0;
        if (in->state == SL_INTENT_DONE) {
            memcpy(in->row_key, key, sizeof(in->row_key));
            in->has_key = 1;
        }
    }
    return 0;
}


/*
 * The row of an entry: a pending one as the worker finished it; an open one
 * as cut short by the worker's death, its usage estimated at about four
 * bytes a token from the body and the answer relayed so far (nothing when
 * it never went upstream), priced like any other row.
 */
static void
settle_row(const sl_conf_t *conf, const sl_intent_t *in, int64_t now_ns, sl_ledger_row_t *row)
{
    const sl_provider_conf_t *p;
    sl_usage_t u;

    memset(row, 0, sizeof(*row));
    row->time_ns = in->start_ns;
    row->request_id = in->request_id;
    row->key_id = in->key_id;
    row->key_name = in->key_name;
    row->team = in->team;
    row->endpoint = in->endpoint;
    row->model = in->model;
    row->provider = in->provider;
    row->served_model = in->target_model;
    if (in->state == SL_INTENT_DONE) {
        row->attempts = in->attempts;
        row->status = in->status;
        row->flags = in->row_flags;
        row->prompt_tokens = in->prompt_tokens;
        row->completion_tokens = in->completion_tokens;
        row->cached_tokens = in->cached_tokens;
        row->cache_write_tokens = in->cache_write_tokens;
        row->cost_nusd = in->cost_nusd;
        row->latency_us = in->latency_us;
        row->first_byte_us = in->first_byte_us;
        return;
    }
    row->status = SL_LEDGER_STATUS_WORKER_DIED;
    row->flags = SL_LEDGER_WORKER_DIED | ((in->flags & SL_INTENT_STREAM) ? SL_LEDGER_STREAM : 0);
    row->latency_us = now_ns > in->start_ns ? (uint64_t) (now_ns - in->start_ns) / 1000 : 0;
    if (!(in->flags & SL_INTENT_SENT)) {
        return;
    }
    row->attempts = 1;
    row->flags |= SL_LEDGER_ESTIMATED;
    memset(&u, 0, sizeof(u));
    u.prompt_tokens = (in->body_len + 3) / 4;
    u.completion_tokens = (in->relayed + 3) / 4;
    u.estimated = true;
    row->prompt_tokens = u.prompt_tokens;
    row->completion_tokens = u.completion_tokens;
    p = sl_conf_provider(conf, in->provider, strlen(in->provider));
    if (p == NULL || conf->pricing == NULL
        || sl_pricing_cost(conf->pricing, p->name, p->kind, in->target_model, &u, &row->cost_nusd)
               < 0) {
        row->cost_nusd = 0;
        row->flags |= SL_LEDGER_UNPRICED;
    }
}


static size_t
settle_refs(const sl_intent_t *in, sl_budget_ref_t refs[2])
{
    size_t n = 0;

    for (uint32_t i = 0; i < in->nrefs && i < 2; i++) {
        refs[n].kind = (sl_budget_kind_e) in->ref_kind[i];
        refs[n].period = (sl_budget_period_e) in->ref_period[i];
        refs[n].id = refs[n].kind == SL_BUDGET_TEAM ? in->team : in->key_id;
        refs[n].budget_nusd = 0; /* unused by a settlement */
        n++;
    }
    return n;
}
