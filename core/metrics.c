/*
 * The shared counters segment and its Prometheus rendering.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS */

#include "core/metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>

typedef struct metrics_shm {
    _Atomic uint64_t v[SL_METRIC_COUNT];
} metrics_shm_t;

typedef struct metrics_desc {
    const char *name;
    const char *help;
    const char *labels; /* "" or {label="value"} */
    const char *type;   /* NULL: counter */
} metrics_desc_t;

static metrics_shm_t *metrics_shm;

static const metrics_desc_t metrics_desc[SL_METRIC_COUNT] = {
    [SL_METRIC_REQUESTS_2XX] = { "sluice_requests_total", "Proxied requests by outcome.",
                                 "{outcome=\"2xx\"}" },
    [SL_METRIC_REQUESTS_4XX] = { "sluice_requests_total", NULL, "{outcome=\"4xx\"}" },
    [SL_METRIC_REQUESTS_5XX] = { "sluice_requests_total", NULL, "{outcome=\"5xx\"}" },
    [SL_METRIC_REQUESTS_ABORTED] = { "sluice_requests_total", NULL, "{outcome=\"aborted\"}" },
    [SL_METRIC_UPSTREAM_ERRORS] = { "sluice_upstream_errors_total",
                                    "Provider transport failures and 5xx answers.", "" },
    [SL_METRIC_STREAMS_BROKEN] = { "sluice_streams_interrupted_total",
                                   "Upstream streams cut after their first byte.", "" },
    [SL_METRIC_UNPRICED] = { "sluice_unpriced_requests_total",
                             "Requests recorded without cost: the model has no price.", "" },
    [SL_METRIC_LEDGER_FAILURES] = { "sluice_ledger_failures_total",
                                    "Usage rows that could not be written.", "" },
    [SL_METRIC_BUDGET_DENIED] = { "sluice_budget_denied_total",
                                  "Requests refused because a budget was spent.", "" },
    [SL_METRIC_PROMPT_TOKENS] = { "sluice_tokens_total", "Tokens recorded in the ledger.",
                                  "{kind=\"prompt\"}" },
    [SL_METRIC_COMPLETION_TOKENS] = { "sluice_tokens_total", NULL, "{kind=\"completion\"}" },
    [SL_METRIC_COST_NUSD] = { "sluice_cost_nanodollars_total",
                              "Priced cost of recorded requests in nano-USD.", "" },
    [SL_METRIC_STORAGE_REFUSED] = { "sluice_storage_full_refused_total",
                                    "Requests refused with 503 storage_full while the storage "
                                    "was full (ledger.on_full: refuse).",
                                    "" },
    [SL_METRIC_UNRECORDED] = { "sluice_ledger_unrecorded_total",
                               "Requests served without a ledger row while the storage was full "
                               "(ledger.on_full: serve).",
                               "" },
    [SL_METRIC_BUDGET_OVERRUN] = { "sluice_budget_overrun_total",
                                   "Requests whose cost exceeded their budget reservation.", "" },
    [SL_METRIC_OVERRUN_NUSD] = { "sluice_budget_overrun_nanodollars_total",
                                 "Cost beyond the reservation of those requests, nano-USD.", "" },
    [SL_METRIC_WORKER_DIED] = { "sluice_ledger_worker_died_total",
                                "Ledger rows written by the master for requests of a worker "
                                "that died.",
                                "" },
    [SL_METRIC_INTENTS_FULL] = { "sluice_intents_unavailable_total",
                                 "Requests admitted without an intent because the intent table "
                                 "was full.",
                                 "" },
    [SL_METRIC_STORAGE_FULL] = { "sluice_storage_full", "1 while the storage is full, else 0.", "",
                                 "gauge" },
};


int
sl_metrics_init(void)
{
    void *p;

    if (metrics_shm != NULL) {
        return 0;
    }
    p = mmap(NULL, sizeof(metrics_shm_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
             0);
    if (p == MAP_FAILED) {
        return -errno;
    }
    metrics_shm = p;
    for (size_t i = 0; i < SL_METRIC_COUNT; i++) {
        atomic_init(&metrics_shm->v[i], 0);
    }
    return 0;
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
    for (size_t i = 0; i < SL_METRIC_COUNT; i++) {
        const metrics_desc_t *d = &metrics_desc[i];

        if (d->help != NULL) {
            sl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
                          d->type != NULL ? d->type : "counter");
        }
        sl_buf_printf(out, "%s%s %llu\n", d->name, d->labels,
                      (unsigned long long) sl_metric_get((sl_metric_e) i));
    }
}
