/*
 * Process-wide counters in the shared segment (core/base/shm.h) the master maps
 * before forking, so every worker of every generation adds to the same
 * numbers (C11 atomics, relaxed: they are statistics, not
 * synchronisation). Rendered in Prometheus' text format by the admin
 * listener's /metrics, together with the per-target gauges of
 * core/gateway/state.h.
 */
#ifndef SL_CORE_ADMIN_METRICS_H
#define SL_CORE_ADMIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"

typedef enum sl_metric {
    SL_METRIC_REQUESTS_2XX = 0, /* proxied requests answered 2xx */
    SL_METRIC_REQUESTS_4XX,
    SL_METRIC_REQUESTS_5XX,
    SL_METRIC_REQUESTS_ABORTED, /* the client went away */
    SL_METRIC_UPSTREAM_ERRORS,  /* transport failures and 5xx from providers */
    SL_METRIC_STREAMS_BROKEN,   /* upstream streams cut after the first byte */
    SL_METRIC_UNPRICED,         /* requests whose model has no price */
    SL_METRIC_LEDGER_FAILURES,  /* ledger rows that could not be written */
    SL_METRIC_BUDGET_DENIED,    /* requests refused by a budget */
    SL_METRIC_PROMPT_TOKENS,
    SL_METRIC_COMPLETION_TOKENS,
    SL_METRIC_COST_NUSD,       /* priced cost, nano-USD */
    SL_METRIC_STORAGE_REFUSED, /* 503 storage_full: refused while the storage is full */
    SL_METRIC_UNRECORDED,      /* served with no ledger row (ledger.on_full: serve) */
    SL_METRIC_BUDGET_OVERRUN,  /* requests that cost more than their reservation */
    SL_METRIC_OVERRUN_NUSD,    /* what they cost beyond it, nano-USD */
    SL_METRIC_WORKER_DIED,     /* rows the master wrote for requests of a dead worker */
    SL_METRIC_INTENTS_FULL,    /* requests admitted without an intent: the table was full */
    SL_METRIC_STORAGE_FULL,    /* gauge: 1 while the storage is full */
    SL_METRIC_LEDGER_COMMITS,  /* LMDB write transactions of the ledger's group commit */
    SL_METRIC_LEDGER_ROWS,     /* ledger rows they committed */
    SL_METRIC_COUNT,
} sl_metric_e;

/*
 * Carves the counters from the shared segment, or finds them again.
 * Master (or single mode) context, before any fork; returns 0 or -ENOMEM
 * (logged). Until it runs, sl_metric_add is a no-op.
 */
int sl_metrics_init(void);

/* Bytes the counters take in the shared segment, for sizing it. */
size_t sl_metrics_shm_size(void);

/* Adds n to a counter. Any process after sl_metrics_init. */
void sl_metric_add(sl_metric_e m, uint64_t n);

/* Sets a gauge (SL_METRIC_STORAGE_FULL). Any process after sl_metrics_init. */
void sl_metric_set(sl_metric_e m, uint64_t v);

/* Current value of a counter (0 before sl_metrics_init). */
uint64_t sl_metric_get(sl_metric_e m);

/* Appends every counter in Prometheus text exposition format to out. */
void sl_metrics_render(sl_buf_t *out);

/*
 * Appends the per-target state (core/gateway/state.h) as one JSON object, for
 * /admin/targets:
 *   {"targets":[{"provider","model","breaker":"closed|open|half_open",
 *     "failures","open_until_ms","latency_us","ttft_us","in_flight",
 *     "requests_remaining","tokens_remaining","requests_reset_ms",
 *     "tokens_reset_ms"}],
 *    "credentials":[{"provider","ref","cooling","cooling_until_ms"}]}
 * Times are unix ms; unknown values are null (open_until_ms is null when
 * closed, latencies when not measured). A credential is named by its
 * reference (e.g. "vault:k1"), never its value. now: unix ms.
 */
void sl_metrics_render_targets(sl_buf_t *out, uint64_t now);

#endif
