/*
 * The shared counters (the "metrics" region of core/base/shm.h) and their
 * Prometheus rendering, with the per-target gauges core/gateway/state.h keeps.
 */
#include "core/admin/metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "core/base/json.h"
#include "core/base/shm.h"
#include "core/gateway/guard.h"
#include "core/gateway/state.h"

#define METRICS_BUCKETS 15 /* finite histogram buckets; +Inf is one more */
#define METRICS_PROBE   64 /* slots a lookup tries before counting under "other" */
#define METRICS_SPIN    4096
#define METRICS_LABELS  4 /* labels of a series, at most */

/* Slot states of a labelled series. */
#define METRICS_FREE  0u
#define METRICS_CLAIM 1u /* a process is writing the labels */
#define METRICS_READY 2u

/* Counters of a spend series, in the order of metrics_spend_desc. */
enum {
    METRICS_SPEND_PROMPT = 0,
    METRICS_SPEND_COMPLETION,
    METRICS_SPEND_CACHED,
    METRICS_SPEND_CACHE_WRITE,
    METRICS_SPEND_REASONING,
    METRICS_SPEND_COST,
    METRICS_SPEND_CACHE_HITS,
    METRICS_SPEND_SAVED,
    METRICS_SPEND_N,
};

/* Status classes of sluice_requests_total, in label order. */
enum { METRICS_2XX = 0, METRICS_4XX, METRICS_5XX, METRICS_ABORTED, METRICS_OUTCOMES };

typedef struct metrics_hist {
    _Atomic uint64_t bucket[METRICS_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    _Atomic uint64_t sum_us;
} metrics_hist_t;

/* The head of every labelled slot: up to four label values. */
typedef struct metrics_series {
    _Atomic uint32_t state;
    uint32_t hash;
    char label[METRICS_LABELS][SL_METRICS_LABEL_MAX];
} metrics_series_t;

typedef struct metrics_route {
    metrics_series_t s; /* frontend, model, provider */
    _Atomic uint64_t outcome[METRICS_OUTCOMES];
    metrics_hist_t duration;
    metrics_hist_t ttft;
} metrics_route_t;

typedef struct metrics_spend {
    metrics_series_t s; /* model, provider, key, team */
    _Atomic uint64_t v[METRICS_SPEND_N];
} metrics_spend_t;

typedef struct metrics_target {
    metrics_series_t s;        /* provider, model */
    metrics_hist_t latency[2]; /* [0] error, [1] ok */
} metrics_target_t;

typedef struct metrics_shm {
    _Atomic uint64_t v[SL_METRIC_COUNT];
    metrics_hist_t ledger_write;
    metrics_route_t route[SL_METRICS_ROUTES];
    metrics_spend_t spend[SL_METRICS_SPEND];
    metrics_target_t target[SL_METRICS_TARGETS];
} metrics_shm_t;

/* A table of labelled slots, each starting with a metrics_series_t. */
typedef struct metrics_table {
    void *base;
    size_t stride;
    size_t n;
    size_t nlabels;
} metrics_table_t;

typedef struct metrics_desc {
    const char *name;
    const char *help;
    const char *labels; /* "" or {label="value"} */
    const char *type;   /* NULL: counter */
} metrics_desc_t;

typedef struct metrics_gauge {
    sl_buf_t *out;
    const char *name;
    bool in_flight; /* else: breaker state */
} metrics_gauge_t;

static metrics_shm_t *metrics_shm;

/* Upper bounds of the histogram buckets, in microseconds and as rendered. */
static const uint64_t metrics_bounds_us[METRICS_BUCKETS] = {
    5000,    10000,   25000,    50000,    100000,   250000,    500000,    1000000,
    2500000, 5000000, 10000000, 30000000, 60000000, 120000000, 300000000,
};
static const char *const metrics_bounds[METRICS_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5",   "5",    "10",    "30",   "60",  "120",  "300",
};

static const char *const metrics_route_labels[] = { "frontend", "model", "provider" };
static const char *const metrics_spend_labels[] = { "model", "provider", "key", "team" };
static const char *const metrics_target_labels[] = { "provider", "model" };
static const char *const metrics_outcomes[METRICS_OUTCOMES] = { "2xx", "4xx", "5xx", "aborted" };

typedef struct metrics_json {
    sl_buf_t *out;
    uint64_t now;
    bool first;
} metrics_json_t;

static int metrics_gauge_cb(void *arg, const sl_state_target_info_t *t);
static void metrics_label(sl_buf_t *out, const char *p, size_t len);
static int metrics_target_json_cb(void *arg, const sl_state_target_info_t *t);
static int metrics_cred_json_cb(void *arg, const sl_state_cred_info_t *c);
static void metrics_json_opt(sl_buf_t *out, const char *key, bool known, uint64_t v);
static metrics_table_t metrics_table(void *base, size_t stride, size_t n, size_t nlabels);
static void metrics_other(const metrics_table_t *t);
static metrics_series_t *metrics_slot(const metrics_table_t *t, size_t i);
static metrics_series_t *metrics_find(const metrics_table_t *t, const char *const *values);
static bool metrics_same(const metrics_series_t *s, size_t nlabels, const char *const *values,
                         const size_t *lens);
static uint32_t metrics_hash(size_t nlabels, const char *const *values, const size_t *lens);
static size_t metrics_label_len(const char *src);
static void metrics_copy_label(char *dst, const char *src);
static void metrics_observe(metrics_hist_t *h, uint64_t us);
static void metrics_add(_Atomic uint64_t *v, uint64_t n);
static void metrics_labels(sl_buf_t *out, const metrics_series_t *s, const char *const *names,
                           size_t n);
static void metrics_family(sl_buf_t *out, const char *name, const char *type, const char *help);
static void metrics_render_hist(sl_buf_t *out, const char *name, const metrics_hist_t *h,
                                const metrics_series_t *s, const char *const *names, size_t n,
                                const char *extra);
static bool metrics_hist_empty(const metrics_hist_t *h);
static bool metrics_ready(const metrics_series_t *s);
static void metrics_render_routes(sl_buf_t *out);
static void metrics_render_spend(sl_buf_t *out);
static void metrics_render_targets(sl_buf_t *out);

static const metrics_desc_t metrics_desc[SL_METRIC_COUNT] = {
    [SL_METRIC_UPSTREAM_ERRORS] = { "sluice_upstream_errors_total",
                                    "Provider transport failures and 5xx answers.", "", NULL },
    [SL_METRIC_STREAMS_BROKEN] = { "sluice_streams_interrupted_total",
                                   "Upstream streams cut after their first byte.", "", NULL },
    [SL_METRIC_UNPRICED] = { "sluice_unpriced_requests_total",
                             "Requests recorded without cost: the model has no price.", "", NULL },
    [SL_METRIC_LEDGER_FAILURES] = { "sluice_ledger_failures_total",
                                    "Usage rows that could not be written.", "", NULL },
    [SL_METRIC_BUDGET_DENIED] = { "sluice_budget_denied_total",
                                  "Requests refused because a budget was spent.", "", NULL },
    [SL_METRIC_STORAGE_REFUSED] = { "sluice_storage_full_refused_total",
                                    "Requests refused with 503 storage_full while the storage "
                                    "was full (ledger.on_full: refuse).",
                                    "", NULL },
    [SL_METRIC_UNRECORDED] = { "sluice_ledger_unrecorded_total",
                               "Requests served without a ledger row while the storage was full "
                               "(ledger.on_full: serve).",
                               "", NULL },
    [SL_METRIC_BUDGET_OVERRUN] = { "sluice_budget_overrun_total",
                                   "Requests whose cost exceeded their budget reservation.", "",
                                   NULL },
    [SL_METRIC_OVERRUN_NUSD] = { "sluice_budget_overrun_nanodollars_total",
                                 "Cost beyond the reservation of those requests, nano-USD.", "",
                                 NULL },
    [SL_METRIC_WORKER_DIED] = { "sluice_ledger_worker_died_total",
                                "Ledger rows written by the master for requests of a worker "
                                "that died.",
                                "", NULL },
    [SL_METRIC_INTENTS_FULL] = { "sluice_intents_unavailable_total",
                                 "Requests admitted without an intent because the intent table "
                                 "was full.",
                                 "", NULL },
    [SL_METRIC_STORAGE_FULL] = { "sluice_storage_full", "1 while the storage is full, else 0.", "",
                                 "gauge" },
    [SL_METRIC_CACHE_HIT] = { "sluice_cache_lookups_total", "Response cache lookups by result.",
                              "{result=\"hit\"}", NULL },
    [SL_METRIC_CACHE_SEMANTIC] = { "sluice_cache_lookups_total", NULL, "{result=\"semantic\"}",
                                   NULL },
    [SL_METRIC_CACHE_MISS] = { "sluice_cache_lookups_total", NULL, "{result=\"miss\"}", NULL },
    [SL_METRIC_CACHE_FILLS] = { "sluice_cache_fills_total", "Answers stored in the response cache.",
                                "", NULL },
    [SL_METRIC_CACHE_EVICTIONS] = { "sluice_cache_evictions_total",
                                    "Response cache entries evicted to stay under cache.max_size.",
                                    "", NULL },
    [SL_METRIC_SPANS_EXPORTED] = { "sluice_trace_spans_exported_total",
                                   "Trace spans the OTLP collector accepted.", "", NULL },
    [SL_METRIC_SPANS_QUEUE_FULL] = { "sluice_trace_spans_dropped_total",
                                     "Trace spans dropped: the worker's export queue was full, "
                                     "or their export failed.",
                                     "{reason=\"queue_full\"}", NULL },
    [SL_METRIC_SPANS_FAILED] = { "sluice_trace_spans_dropped_total", NULL,
                                 "{reason=\"export_failed\"}", NULL },
    [SL_METRIC_LEDGER_COMMITS] = { "sluice_ledger_commits_total",
                                   "Write transactions of the ledger's group commit.", "", NULL },
    [SL_METRIC_LEDGER_ROWS] = { "sluice_ledger_committed_rows_total",
                                "Ledger rows written by the group commit.", "", NULL },
};

/* The labelled families of a spend series, in METRICS_SPEND_* order. */
static const metrics_desc_t metrics_spend_desc[METRICS_SPEND_N] = {
    [METRICS_SPEND_PROMPT] = { "sluice_tokens_total",
                               "Tokens of answered requests (prompt: every input token, cached "
                               "ones included; completion: every output token).",
                               "prompt", NULL },
    [METRICS_SPEND_COMPLETION] = { "sluice_tokens_total", NULL, "completion", NULL },
    [METRICS_SPEND_CACHED] = { "sluice_cached_tokens_total",
                               "Prompt tokens read from the provider's prompt cache.", "", NULL },
    [METRICS_SPEND_CACHE_WRITE] = { "sluice_cache_write_tokens_total",
                                    "Prompt tokens written to the provider's prompt cache.", "",
                                    NULL },
    [METRICS_SPEND_REASONING] = { "sluice_reasoning_tokens_total",
                                  "Completion tokens spent on reasoning.", "", NULL },
    [METRICS_SPEND_COST] = { "sluice_cost_nanodollars_total",
                             "Priced cost of answered requests in nano-USD (1 USD = 1e9).", "",
                             NULL },
    [METRICS_SPEND_CACHE_HITS] = { "sluice_cache_hits_total",
                                   "Requests answered from sluice's response cache.", "", NULL },
    [METRICS_SPEND_SAVED] = { "sluice_cache_saved_nanodollars_total",
                              "What the answers from the response cache would have cost, "
                              "nano-USD.",
                              "", NULL },
};


int
sl_metrics_init(void)
{
    metrics_table_t t;

    if (metrics_shm != NULL) {
        return 0;
    }
    /* a fresh region is zero; an existing one (a reload) keeps counting */
    metrics_shm = sl_shm_region("metrics", sizeof(metrics_shm_t));
    if (metrics_shm == NULL) {
        return -ENOMEM;
    }
    t = metrics_table(metrics_shm->route, sizeof(metrics_route_t), SL_METRICS_ROUTES, 3);
    metrics_other(&t);
    t = metrics_table(metrics_shm->spend, sizeof(metrics_spend_t), SL_METRICS_SPEND, 4);
    metrics_other(&t);
    t = metrics_table(metrics_shm->target, sizeof(metrics_target_t), SL_METRICS_TARGETS, 2);
    metrics_other(&t);
    return 0;
}


size_t
sl_metrics_shm_size(void)
{
    return sizeof(metrics_shm_t);
}


void
sl_metric_add(sl_metric_e m, uint64_t n)
{
    if (metrics_shm != NULL) {
        atomic_fetch_add_explicit(&metrics_shm->v[m], n, memory_order_relaxed);
    }
}


void
sl_metric_set(sl_metric_e m, uint64_t v)
{
    if (metrics_shm != NULL) {
        atomic_store_explicit(&metrics_shm->v[m], v, memory_order_relaxed);
    }
}


uint64_t
sl_metric_get(sl_metric_e m)
{
    if (metrics_shm == NULL) {
        return 0;
    }
    return atomic_load_explicit(&metrics_shm->v[m], memory_order_relaxed);
}


void
sl_metrics_request(const sl_metrics_req_t *m)
{
    const char *rl[3] = { m->frontend, m->model, m->provider };
    const char *sl[4] = { m->model, m->provider, m->key, m->team };
    metrics_table_t t;
    metrics_route_t *r;
    metrics_spend_t *sp;
    int oc;

    if (metrics_shm == NULL) {
        return;
    }
    oc = m->status == 499   ? METRICS_ABORTED
         : m->status >= 500 ? METRICS_5XX
         : m->status >= 400 ? METRICS_4XX
                            : METRICS_2XX;
    t = metrics_table(metrics_shm->route, sizeof(metrics_route_t), SL_METRICS_ROUTES, 3);
    r = (metrics_route_t *) metrics_find(&t, rl);
    metrics_add(&r->outcome[oc], 1);
    metrics_observe(&r->duration, m->duration_us);
    if (m->ttft_us != 0) {
        metrics_observe(&r->ttft, m->ttft_us);
    }
    if (m->prompt_tokens == 0 && m->completion_tokens == 0 && m->cost_nusd == 0 && !m->cache_hit) {
        return; /* nothing spent: no spend series for it */
    }
    t = metrics_table(metrics_shm->spend, sizeof(metrics_spend_t), SL_METRICS_SPEND, 4);
    sp = (metrics_spend_t *) metrics_find(&t, sl);
    metrics_add(&sp->v[METRICS_SPEND_PROMPT], m->prompt_tokens);
    metrics_add(&sp->v[METRICS_SPEND_COMPLETION], m->completion_tokens);
    metrics_add(&sp->v[METRICS_SPEND_CACHED], m->cached_tokens);
    metrics_add(&sp->v[METRICS_SPEND_CACHE_WRITE], m->cache_write_tokens);
    metrics_add(&sp->v[METRICS_SPEND_REASONING], m->reasoning_tokens);
    metrics_add(&sp->v[METRICS_SPEND_COST], m->cost_nusd);
    if (m->cache_hit) {
        metrics_add(&sp->v[METRICS_SPEND_CACHE_HITS], 1);
        metrics_add(&sp->v[METRICS_SPEND_SAVED], m->saved_nusd);
    }
}


void
sl_metrics_upstream(const char *provider, const char *model, bool ok, uint64_t us)
{
    const char *l[2] = { provider, model };
    metrics_table_t t;
    metrics_target_t *tg;

    if (metrics_shm == NULL) {
        return;
    }
    t = metrics_table(metrics_shm->target, sizeof(metrics_target_t), SL_METRICS_TARGETS, 2);
    tg = (metrics_target_t *) metrics_find(&t, l);
    metrics_observe(&tg->latency[ok ? 1 : 0], us);
}


void
sl_metrics_ledger_write(uint64_t us)
{
    if (metrics_shm != NULL) {
        metrics_observe(&metrics_shm->ledger_write, us);
    }
}


void
sl_metrics_cache_lookup(bool hit, bool semantic)
{
    sl_metric_add(!hit       ? SL_METRIC_CACHE_MISS
                  : semantic ? SL_METRIC_CACHE_SEMANTIC
                             : SL_METRIC_CACHE_HIT,
                  1);
}


static metrics_table_t
metrics_table(void *base, size_t stride, size_t n, size_t nlabels)
{
    metrics_table_t t = { base, stride, n, nlabels };

    return t;
}


static metrics_series_t *
metrics_slot(const metrics_table_t *t, size_t i)
{
    return (metrics_series_t *) ((char *) t->base + i * t->stride);
}


/* Slot 0 of every table is the series whose labels are all "other". */
static void
metrics_other(const metrics_table_t *t)
{
    metrics_series_t *s = metrics_slot(t, 0);

    if (atomic_load_explicit(&s->state, memory_order_acquire) == METRICS_READY) {
        return;
    }
    for (size_t i = 0; i < t->nlabels; i++) {
        metrics_copy_label(s->label[i], "other");
    }
    atomic_store_explicit(&s->state, METRICS_READY, memory_order_release);
}


/*
 * The slot of a label set: found, or claimed from the free ones; the
 * "other" slot when the table is full, when no slot turns up within
 * METRICS_PROBE tries, or when a slot being claimed by another process
 * does not become ready (it died half-way): never two slots with the same
 * labels, which would make the scrape invalid.
 */
static metrics_series_t *
metrics_find(const metrics_table_t *t, const char *const *values)
{
    size_t lens[METRICS_LABELS];
    uint32_t h;
    size_t n = t->n - 1;

    SL_ASSERT(t->nlabels <= METRICS_LABELS);
    for (size_t k = 0; k < t->nlabels; k++) {
        lens[k] = metrics_label_len(values[k]);
    }
    h = metrics_hash(t->nlabels, values, lens);

    for (size_t i = 0; i < METRICS_PROBE && i < n; i++) {
        metrics_series_t *s = metrics_slot(t, 1 + (h + i) % n);
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

        if (st == METRICS_FREE) {
            uint32_t expect = METRICS_FREE;

            if (atomic_compare_exchange_strong_explicit(&s->state, &expect, METRICS_CLAIM,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                for (size_t k = 0; k < t->nlabels; k++) {
                    metrics_copy_label(s->label[k], values[k]);
                }
                s->hash = h;
                atomic_store_explicit(&s->state, METRICS_READY, memory_order_release);
                return s;
            }
            st = expect;
        }
        for (unsigned spin = 0; st == METRICS_CLAIM && spin < METRICS_SPIN; spin++) {
            st = atomic_load_explicit(&s->state, memory_order_acquire);
        }
        if (st != METRICS_READY) {
            break;
        }
        if (s->hash == h && metrics_same(s, t->nlabels, values, lens)) {
            return s;
        }
    }
    return metrics_slot(t, 0);
}


static bool
metrics_same(const metrics_series_t *s, size_t nlabels, const char *const *values,
             const size_t *lens)
{
    for (size_t i = 0; i < nlabels; i++) {
        if (s->label[i][lens[i]] != '\0'
            || (lens[i] > 0 && memcmp(s->label[i], values[i], lens[i]) != 0)) {
            return false;
        }
    }
    return true;
}


/*
 * A hash of the label values as stored (cut to lens), eight bytes a step
 * (the last step zero-padded) with each value's length mixed in, so that
 * "ab","c" and "a","bc" differ. Every request looks its series up, so this
 * runs per request; the table lives in the master's segment, which only
 * this binary's processes share.
 */
static uint32_t
metrics_hash(size_t nlabels, const char *const *values, const size_t *lens)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;

    for (size_t i = 0; i < nlabels; i++) {
        const char *v = values[i];
        size_t k = 0;

        for (; k + 8 <= lens[i]; k += 8) {
            uint64_t w;

            memcpy(&w, v + k, 8);
            h = (h ^ w) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        }
        if (k < lens[i]) {
            uint64_t w = 0;

            memcpy(&w, v + k, lens[i] - k);
            h = (h ^ w) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        }
        h = (h ^ lens[i]) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 29;
    }
    return (uint32_t) (h ^ (h >> 32));
}


/* The stored length of a label value: NULL is "", cut to the buffer at a UTF-8 character boundary.
 */
static size_t
metrics_label_len(const char *src)
{
    size_t len = src != NULL ? strnlen(src, SL_METRICS_LABEL_MAX) : 0;

    if (len >= SL_METRICS_LABEL_MAX) {
        len = SL_METRICS_LABEL_MAX - 1;
        while (len > 0 && ((unsigned char) src[len] & 0xc0) == 0x80) {
            len--; /* src[len] continues a character: cut before that character */
        }
    }
    return len;
}


/* Copies a label value as stored (metrics_label_len). */
static void
metrics_copy_label(char *dst, const char *src)
{
    size_t len = metrics_label_len(src);

    if (len > 0) {
        memcpy(dst, src, len);
    }
    dst[len] = '\0';
}


static void
metrics_observe(metrics_hist_t *h, uint64_t us)
{
    size_t i = 0;

    while (i < METRICS_BUCKETS && us > metrics_bounds_us[i]) {
        i++;
    }
    metrics_add(&h->bucket[i], 1);
    metrics_add(&h->sum_us, us);
}


static void
metrics_add(_Atomic uint64_t *v, uint64_t n)
{
    if (n != 0) {
        atomic_fetch_add_explicit(v, n, memory_order_relaxed);
    }
}


void
sl_metrics_render(sl_buf_t *out)
{
    metrics_gauge_t g;

    for (size_t i = 0; i < SL_METRIC_COUNT; i++) {
        const metrics_desc_t *d = &metrics_desc[i];

        if (d->help != NULL) {
            metrics_family(out, d->name, d->type != NULL ? d->type : "counter", d->help);
        }
        sl_buf_printf(out, "%s%s %llu\n", d->name, d->labels,
                      (unsigned long long) sl_metric_get((sl_metric_e) i));
    }
    if (metrics_shm != NULL) {
        metrics_render_routes(out);
        metrics_render_spend(out);
        metrics_render_targets(out);
        metrics_family(out, "sluice_ledger_write_seconds", "histogram",
                       "Time to price a request and commit its ledger row and budget "
                       "settlement.");
        metrics_render_hist(out, "sluice_ledger_write_seconds", &metrics_shm->ledger_write, NULL,
                            NULL, 0, NULL);
    }
    metrics_family(out, "sluice_target_breaker_state", "gauge",
                   "Circuit breaker of a target: 0 closed, 1 open, 2 half-open (one probe in "
                   "flight).");
    g.out = out;
    g.name = "sluice_target_breaker_state";
    g.in_flight = false;
    sl_state_each_target(metrics_gauge_cb, &g, sl_state_now());
    metrics_family(out, "sluice_target_in_flight", "gauge",
                   "Requests in flight to a target across all workers.");
    g.name = "sluice_target_in_flight";
    g.in_flight = true;
    sl_state_each_target(metrics_gauge_cb, &g, sl_state_now());
    sl_guard_metrics_render(out);
}


static void
metrics_family(sl_buf_t *out, const char *name, const char *type, const char *help)
{
    sl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}


/* {a="x",b="y" (no closing brace: the caller may add more) */
static void
metrics_labels(sl_buf_t *out, const metrics_series_t *s, const char *const *names, size_t n)
{
    sl_buf_append(out, "{", 1);
    for (size_t i = 0; i < n; i++) {
        sl_buf_printf(out, "%s%s=\"", i > 0 ? "," : "", names[i]);
        metrics_label(out, s->label[i], strlen(s->label[i]));
        sl_buf_append(out, "\"", 1);
    }
}


/*
 * One histogram series: cumulative buckets, sum (seconds) and count, the
 * count being the +Inf bucket so the two always agree. s NULL: no labels;
 * extra: one more label, already formatted (`outcome="ok"`), or NULL.
 */
static void
metrics_render_hist(sl_buf_t *out, const char *name, const metrics_hist_t *h,
                    const metrics_series_t *s, const char *const *names, size_t n,
                    const char *extra)
{
    uint64_t cum = 0, sum;
    sl_buf_t l = SL_BUF_INIT;

    if (s != NULL) {
        metrics_labels(&l, s, names, n);
    }
    if (extra != NULL) {
        sl_buf_printf(&l, "%s%s", l.len > 0 ? "," : "{", extra);
    }
    for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        sl_buf_printf(out, "%s_bucket%.*s%sle=\"%s\"} %llu\n", name, (int) l.len,
                      l.len > 0 ? l.p : "", l.len > 0 ? "," : "{",
                      i < METRICS_BUCKETS ? metrics_bounds[i] : "+Inf", (unsigned long long) cum);
    }
    sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    sl_buf_printf(out, "%s_sum%.*s%s %llu.%06llu\n", name, (int) l.len, l.len > 0 ? l.p : "",
                  l.len > 0 ? "}" : "", (unsigned long long) (sum / 1000000),
                  (unsigned long long) (sum % 1000000));
    sl_buf_printf(out, "%s_count%.*s%s %llu\n", name, (int) l.len, l.len > 0 ? l.p : "",
                  l.len > 0 ? "}" : "", (unsigned long long) cum);
    sl_buf_free(&l);
}


static bool
metrics_hist_empty(const metrics_hist_t *h)
{
    for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
        if (atomic_load_explicit(&h->bucket[i], memory_order_relaxed) != 0) {
            return false;
        }
    }
    return true;
}


static bool
metrics_ready(const metrics_series_t *s)
{
    return atomic_load_explicit(&s->state, memory_order_acquire) == METRICS_READY;
}


static void
metrics_render_routes(sl_buf_t *out)
{
    metrics_route_t *r = metrics_shm->route;

    metrics_family(out, "sluice_requests_total", "counter",
                   "Proxied requests by frontend, model asked for, provider and status class "
                   "(outcome: 2xx, 4xx, 5xx, aborted).");
    for (size_t i = 0; i < SL_METRICS_ROUTES; i++) {
        for (size_t k = 0; k < METRICS_OUTCOMES && metrics_ready(&r[i].s); k++) {
            uint64_t v = atomic_load_explicit(&r[i].outcome[k], memory_order_relaxed);

            if (v == 0) {
                continue;
            }
            sl_buf_printf(out, "sluice_requests_total");
            metrics_labels(out, &r[i].s, metrics_route_labels, 3);
            sl_buf_printf(out, ",outcome=\"%s\"} %llu\n", metrics_outcomes[k],
                          (unsigned long long) v);
        }
    }
    metrics_family(out, "sluice_request_duration_seconds", "histogram",
                   "Time from a request's arrival to its end, by frontend, model and provider.");
    for (size_t i = 0; i < SL_METRICS_ROUTES; i++) {
        if (metrics_ready(&r[i].s) && !metrics_hist_empty(&r[i].duration)) {
            metrics_render_hist(out, "sluice_request_duration_seconds", &r[i].duration, &r[i].s,
                                metrics_route_labels, 3, NULL);
        }
    }
    metrics_family(out, "sluice_time_to_first_token_seconds", "histogram",
                   "Time from a streamed request's arrival to its first output.");
    for (size_t i = 0; i < SL_METRICS_ROUTES; i++) {
        if (metrics_ready(&r[i].s) && !metrics_hist_empty(&r[i].ttft)) {
            metrics_render_hist(out, "sluice_time_to_first_token_seconds", &r[i].ttft, &r[i].s,
                                metrics_route_labels, 3, NULL);
        }
    }
}


static void
metrics_render_spend(sl_buf_t *out)
{
    metrics_spend_t *sp = metrics_shm->spend;

    for (size_t k = 0; k < METRICS_SPEND_N; k++) {
        const metrics_desc_t *d = &metrics_spend_desc[k];

        if (d->help != NULL) {
            metrics_family(out, d->name, "counter", d->help);
        }
        for (size_t i = 0; i < SL_METRICS_SPEND; i++) {
            uint64_t v;

            if (!metrics_ready(&sp[i].s)) {
                continue;
            }
            v = atomic_load_explicit(&sp[i].v[k], memory_order_relaxed);
            if (v == 0 && (i == 0 || (k != METRICS_SPEND_PROMPT && k != METRICS_SPEND_COST))) {
                continue; /* tokens and cost always (but "other" once used); the rest once seen */
            }
            sl_buf_printf(out, "%s", d->name);
            metrics_labels(out, &sp[i].s, metrics_spend_labels, 4);
            if (d->labels[0] != '\0') {
                sl_buf_printf(out, ",kind=\"%s\"", d->labels);
            }
            sl_buf_printf(out, "} %llu\n", (unsigned long long) v);
        }
    }
}


static void
metrics_render_targets(sl_buf_t *out)
{
    metrics_target_t *tg = metrics_shm->target;

    metrics_family(out, "sluice_upstream_latency_seconds", "histogram",
                   "Duration of upstream attempts, from their start to the end of the answer or "
                   "the failure, by target and outcome (ok: the provider answered).");
    for (size_t i = 0; i < SL_METRICS_TARGETS; i++) {
        for (int ok = 1; ok >= 0 && metrics_ready(&tg[i].s); ok--) {
            if (!metrics_hist_empty(&tg[i].latency[ok])) {
                metrics_render_hist(out, "sluice_upstream_latency_seconds", &tg[i].latency[ok],
                                    &tg[i].s, metrics_target_labels, 2,
                                    ok ? "outcome=\"ok\"" : "outcome=\"error\"");
            }
        }
    }
}


/* One sample of a per-target gauge, labelled provider and model. */
static int
metrics_gauge_cb(void *arg, const sl_state_target_info_t *t)
{
    metrics_gauge_t *g = arg;
    const char *model = t->name + t->provider_len + (t->name[t->provider_len] == '/' ? 1 : 0);

    sl_buf_printf(g->out, "%s{provider=\"", g->name);
    metrics_label(g->out, t->name, t->provider_len);
    sl_buf_printf(g->out, "\",model=\"");
    metrics_label(g->out, model, strlen(model));
    sl_buf_printf(g->out, "\"} %llu\n",
                  (unsigned long long) (g->in_flight ? t->in_flight : (uint64_t) t->breaker));
    return 0;
}


/* A label value as the exposition format escapes it: backslash, quote, newline. */
static void
metrics_label(sl_buf_t *out, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\' || p[i] == '"') {
            sl_buf_printf(out, "\\%c", p[i]);
        } else if (p[i] == '\n') {
            sl_buf_printf(out, "\\n");
        } else {
            sl_buf_append(out, &p[i], 1);
        }
    }
}


void
sl_metrics_render_targets(sl_buf_t *out, uint64_t now)
{
    metrics_json_t j = { out, now, true };

    sl_buf_printf(out, "{\"targets\":[");
    sl_state_each_target(metrics_target_json_cb, &j, now);
    sl_buf_printf(out, "],\"credentials\":[");
    j.first = true;
    sl_state_each_cred(metrics_cred_json_cb, &j);
    sl_buf_printf(out, "]}");
}


/* ,"key":v or ,"key":null */
static void
metrics_json_opt(sl_buf_t *out, const char *key, bool known, uint64_t v)
{
    if (known) {
        sl_buf_printf(out, ",\"%s\":%llu", key, (unsigned long long) v);
    } else {
        sl_buf_printf(out, ",\"%s\":null", key);
    }
}


static int
metrics_target_json_cb(void *arg, const sl_state_target_info_t *t)
{
    static const char *const states[] = { "closed", "open", "half_open" };
    metrics_json_t *j = arg;
    const char *model = t->name + t->provider_len + (t->name[t->provider_len] == '/' ? 1 : 0);

    sl_buf_printf(j->out, "%s{\"provider\":", j->first ? "" : ",");
    j->first = false;
    sl_json_quote(j->out, (sl_str_t){ t->name, t->provider_len });
    sl_buf_printf(j->out, ",\"model\":");
    sl_json_quote(j->out, (sl_str_t){ model, strlen(model) });
    sl_buf_printf(j->out, ",\"breaker\":\"%s\",\"failures\":%u",
                  states[(unsigned) t->breaker < 3 ? t->breaker : 0], t->failures);
    metrics_json_opt(j->out, "open_until_ms", t->breaker != SL_BREAKER_CLOSED, t->open_until);
    metrics_json_opt(j->out, "latency_us", t->latency_us != 0, t->latency_us);
    metrics_json_opt(j->out, "ttft_us", t->ttft_us != 0, t->ttft_us);
    sl_buf_printf(j->out, ",\"in_flight\":%llu", (unsigned long long) t->in_flight);
    metrics_json_opt(j->out, "requests_remaining", t->headroom.requests_remaining >= 0,
                     (uint64_t) t->headroom.requests_remaining);
    metrics_json_opt(j->out, "tokens_remaining", t->headroom.tokens_remaining >= 0,
                     (uint64_t) t->headroom.tokens_remaining);
    metrics_json_opt(j->out, "requests_reset_ms", t->headroom.requests_reset != 0,
                     t->headroom.requests_reset);
    metrics_json_opt(j->out, "tokens_reset_ms", t->headroom.tokens_reset != 0,
                     t->headroom.tokens_reset);
    sl_buf_printf(j->out, "}");
    return 0;
}


static int
metrics_cred_json_cb(void *arg, const sl_state_cred_info_t *c)
{
    metrics_json_t *j = arg;
    bool cooling = c->cooling_until > j->now;

    sl_buf_printf(j->out, "%s{\"provider\":", j->first ? "" : ",");
    j->first = false;
    sl_json_quote(j->out, (sl_str_t){ c->provider, strlen(c->provider) });
    sl_buf_printf(j->out, ",\"ref\":");
    sl_json_quote(j->out, (sl_str_t){ c->ref, strlen(c->ref) });
    sl_buf_printf(j->out, ",\"cooling\":%s", cooling ? "true" : "false");
    metrics_json_opt(j->out, "cooling_until_ms", cooling, c->cooling_until);
    sl_buf_printf(j->out, "}");
    return 0;
}
