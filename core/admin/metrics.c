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
#include "core/gateway/state.h"

typedef struct metrics_shm {
    _Atomic uint64_t v[SL_METRIC_COUNT];
} metrics_shm_t;

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

static const metrics_desc_t metrics_desc[SL_METRIC_COUNT] = {
    [SL_METRIC_REQUESTS_2XX] = { "sluice_requests_total", "Proxied requests by outcome.",
                                 "{outcome=\"2xx\"}", NULL },
    [SL_METRIC_REQUESTS_4XX] = { "sluice_requests_total", NULL, "{outcome=\"4xx\"}", NULL },
    [SL_METRIC_REQUESTS_5XX] = { "sluice_requests_total", NULL, "{outcome=\"5xx\"}", NULL },
    [SL_METRIC_REQUESTS_ABORTED] = { "sluice_requests_total", NULL, "{outcome=\"aborted\"}", NULL },
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
    [SL_METRIC_PROMPT_TOKENS] = { "sluice_tokens_total", "Tokens recorded in the ledger.",
                                  "{kind=\"prompt\"}", NULL },
    [SL_METRIC_COMPLETION_TOKENS] = { "sluice_tokens_total", NULL, "{kind=\"completion\"}", NULL },
    [SL_METRIC_COST_NUSD] = { "sluice_cost_nanodollars_total",
                              "Priced cost of recorded requests in nano-USD.", "", NULL },
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
    [SL_METRIC_LEDGER_COMMITS] = { "sluice_ledger_commits_total",
                                   "Write transactions of the ledger's group commit.", "", NULL },
    [SL_METRIC_LEDGER_ROWS] = { "sluice_ledger_committed_rows_total",
                                "Ledger rows written by the group commit.", "", NULL },
};


int
sl_metrics_init(void)
{
    if (metrics_shm != NULL) {
        return 0;
    }
    /* a fresh region is zero; an existing one (a reload) keeps counting */
    metrics_shm = sl_shm_region("metrics", sizeof(metrics_shm_t));
    return metrics_shm != NULL ? 0 : -ENOMEM;
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
sl_metrics_render(sl_buf_t *out)
{
    metrics_gauge_t g;

    for (size_t i = 0; i < SL_METRIC_COUNT; i++) {
        const metrics_desc_t *d = &metrics_desc[i];

        if (d->help != NULL) {
            sl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
                          d->type != NULL ? d->type : "counter");
        }
        sl_buf_printf(out, "%s%s %llu\n", d->name, d->labels,
                      (unsigned long long) sl_metric_get((sl_metric_e) i));
    }
    sl_buf_printf(out, "# HELP sluice_target_breaker_state Circuit breaker of a target: 0 closed, "
                       "1 open, 2 half-open (one probe in flight).\n"
                       "# TYPE sluice_target_breaker_state gauge\n");
    g.out = out;
    g.name = "sluice_target_breaker_state";
    g.in_flight = false;
    sl_state_each_target(metrics_gauge_cb, &g, sl_state_now());
    sl_buf_printf(out, "# HELP sluice_target_in_flight Requests in flight to a target across all "
                       "workers.\n"
                       "# TYPE sluice_target_in_flight gauge\n");
    g.name = "sluice_target_in_flight";
    g.in_flight = true;
    sl_state_each_target(metrics_gauge_cb, &g, sl_state_now());
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
