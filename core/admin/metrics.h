/*
 * Process-wide metrics in the shared segment (core/base/shm.h) the master
 * maps before forking, so every worker of every generation adds to the same
 * numbers (C11 atomics, relaxed: they are statistics, not
 * synchronisation). Rendered in Prometheus' text format by the admin
 * listener's /metrics, together with the per-target gauges of
 * core/gateway/state.h.
 *
 * Two kinds live here: plain counters (sl_metric_e, no labels or a fixed
 * one), and labelled series: requests by frontend, model, provider and
 * status class with their duration and time-to-first-token histograms;
 * tokens, cost, cache hits and savings by model, provider, key and team;
 * upstream attempt latency by target; ledger write latency. A labelled
 * series is a slot of a fixed-size table in the segment (the bounds below,
 * documented in etc/sluice.yaml): a label set seen for the first time takes
 * a free slot, and once a table is full (or a slot cannot be found within a
 * short probe) new label sets are counted under the series whose every
 * label is "other", so a client inventing model names can never grow the
 * segment or the scrape without bound.
 */
#ifndef SL_CORE_ADMIN_METRICS_H
#define SL_CORE_ADMIN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"

/* Labelled series each table holds at most (its "other" series included). */
#define SL_METRICS_ROUTES  256  /* (frontend, model, provider) */
#define SL_METRICS_SPEND   1024 /* (model, provider, key, team) */
#define SL_METRICS_TARGETS 256  /* (provider, model) of upstream attempts */
#define SL_METRICS_LABEL_MAX                                         \
    128 /* bytes of a label value kept, NUL included; cut at a UTF-8 \
          character boundary */

typedef enum sl_metric {
    SL_METRIC_UPSTREAM_ERRORS = 0, /* transport failures and 5xx from providers */
    SL_METRIC_STREAMS_BROKEN,      /* upstream streams cut after the first byte */
    SL_METRIC_UNPRICED,            /* requests whose model has no price */
    SL_METRIC_LEDGER_FAILURES,     /* ledger rows that could not be written */
    SL_METRIC_BUDGET_DENIED,       /* requests refused by a budget */
    SL_METRIC_STORAGE_REFUSED,     /* 503 storage_full: refused while the storage is full */
    SL_METRIC_UNRECORDED,          /* served with no ledger row (ledger.on_full: serve) */
    SL_METRIC_BUDGET_OVERRUN,      /* requests that cost more than their reservation */
    SL_METRIC_OVERRUN_NUSD,        /* what they cost beyond it, nano-USD */
    SL_METRIC_WORKER_DIED,         /* rows the master wrote for requests of a dead worker */
    SL_METRIC_INTENTS_FULL,        /* requests admitted without an intent: the table was full */
    SL_METRIC_STORAGE_FULL,        /* gauge: 1 while the storage is full */
    SL_METRIC_CACHE_HIT,        /* response cache lookups: an exact hit (sl_metrics_cache_lookup) */
    SL_METRIC_CACHE_SEMANTIC,   /* a semantic hit */
    SL_METRIC_CACHE_MISS,       /* a miss */
    SL_METRIC_CACHE_FILLS,      /* answers stored in the response cache */
    SL_METRIC_CACHE_EVICTIONS,  /* entries evicted to stay under cache.max_size */
    SL_METRIC_SPANS_EXPORTED,   /* trace spans the OTLP collector accepted */
    SL_METRIC_SPANS_QUEUE_FULL, /* spans dropped: the worker's export queue was full */
    SL_METRIC_SPANS_FAILED,     /* spans dropped: their export failed */
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

/*
 * One finished request, for the labelled series. Label values may be NULL
 * (rendered as ""); every string is read during the call only. Any process
 * after sl_metrics_init; a no-op before.
 */
typedef struct sl_metrics_req {
    const char *frontend; /* "chat", "embeddings", "messages" */
    const char *model;    /* the model asked for; "" when it named nothing configured */
    const char *provider; /* the provider that answered (or failed last); "" for none */
    const char *key;      /* the client key's name */
    const char *team;     /* its team, "" for none */
    int status;           /* sent to the client; 499: the client went away */
    uint64_t duration_us; /* arrival to the end */
    uint64_t ttft_us;     /* arrival to a stream's first output; 0: none */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cached_tokens;
    uint64_t cache_write_tokens;
    uint64_t reasoning_tokens;
    uint64_t cost_nusd;
    bool cache_hit;      /* answered from the response cache (the ledger row's cache) */
    uint64_t saved_nusd; /* what that hit saved */
} sl_metrics_req_t;

void sl_metrics_request(const sl_metrics_req_t *m);

/*
 * One upstream attempt to provider/model ended after us microseconds
 * (from its start to its answer's end or its failure); ok: it answered.
 */
void sl_metrics_upstream(const char *provider, const char *model, bool ok, uint64_t us);

/* One ledger write (pricing, row and budget settlement) took us microseconds. */
void sl_metrics_ledger_write(uint64_t us);

/*
 * One lookup in the response cache: hit (semantic: found by meaning), or a
 * miss. For the cache: per-model hits and savings come from the ledger row
 * (its cache and saved_nusd), this counts the lookups for the hit ratio.
 */
void sl_metrics_cache_lookup(bool hit, bool semantic);

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
