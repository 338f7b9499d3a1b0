/*
 * The dashboard's numbers from the usage ledger: rows grouped into time
 * buckets (hour or day, UTC) with requests, errors, spend, cache hits and
 * savings, latency and time-to-first-token percentiles, spend per bucket
 * by model, provider, key and team (the top SL_STATS_TOP of each, the rest
 * as "other"), and a table of the models asked for with the targets that
 * served them. Pure computation over sl_ledger_row_t: the caller scans the
 * ledger (off the event loop) and feeds every row to sl_stats_add.
 *
 * Memory is bounded whatever the number of rows: at most
 * SL_STATS_BUCKETS_MAX buckets, SL_STATS_NAMES_MAX distinct values per
 * dimension (later ones count as "other"), SL_STATS_MODELS_MAX models;
 * percentiles come from log-scale histograms (8 bins per doubling, so a
 * percentile is within about 5% of the exact one).
 */
#ifndef SL_CORE_ADMIN_STATS_H
#define SL_CORE_ADMIN_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "storage/ledger.h"

#define SL_STATS_BUCKETS_MAX 800
#define SL_STATS_NAMES_MAX   128
#define SL_STATS_MODELS_MAX  64
#define SL_STATS_TOP         8
#define SL_STATS_GUARD_MAX   32 /* (policy, action) pairs counted; later ones are not */
#define SL_STATS_HOUR_MS     (3600LL * 1000)
#define SL_STATS_DAY_MS      (86400LL * 1000)

typedef enum sl_stats_dim {
    SL_STATS_BY_MODEL = 0,
    SL_STATS_BY_PROVIDER,
    SL_STATS_BY_KEY,
    SL_STATS_BY_TEAM,
    SL_STATS_DIMS,
} sl_stats_dim_e;

typedef struct sl_stats sl_stats_t;

/*
 * A new aggregation of the rows with since_ms <= time < until_ms, in
 * buckets of bucket_ms (SL_STATS_HOUR_MS or SL_STATS_DAY_MS) aligned to
 * UTC; the first bucket starts at since_ms rounded down. NULL when the
 * window is empty or needs more than SL_STATS_BUCKETS_MAX buckets.
 * Allocation failure aborts (worker thread pool or CLI).
 */
sl_stats_t *sl_stats_create(int64_t since_ms, int64_t until_ms, int64_t bucket_ms);

/* Counts one ledger row (rows outside the window are ignored). */
void sl_stats_add(sl_stats_t *s, const sl_ledger_row_t *row);

/*
 * The result: {since, until, bucket ("hour"|"day"), bucket_ms, buckets
 * [start ms...], requests [...], errors [...] (status >= 400), cost_nusd
 * [...], cache_hits [...], saved_nusd [...], latency_us {p50, p95, p99:
 * [...]}, ttft_us {p50, p95, p99: [...]} (microseconds), series {model|provider|key|team:
 * [{name, cost_usd, cost_nusd [...], requests}]}, total {requests,
 * errors, cost_usd, cost_nusd, prompt_tokens, completion_tokens,
 * cache_hits, saved_usd, latency_us {p50, p95, p99}, ttft_us {...}},
 * models [{model, requests, errors, cost_usd, p95_us,
 * served [{provider, model, requests}]}]}, guard [{policy, action,
 * decisions, requests}] (the guardrail decisions of the rows, most first;
 * requests: rows with one) and guard_requests (rows with any). Percentiles
 * without data are null. Returns a new reference, or NULL when out of memory.
 */
json_t *sl_stats_json(const sl_stats_t *s);

/* Frees s. NULL is a no-op. */
void sl_stats_destroy(sl_stats_t *s);

/*
 * The value at the q-th percentile (1..100) of a histogram of hist_bins
 * counts in sl_stats_bin() bins, in the unit of the values counted; 0 when
 * it is empty.
 */
#define SL_STATS_BINS 264
unsigned sl_stats_bin(uint64_t v);
uint64_t sl_stats_percentile(const uint32_t *hist, uint64_t count, unsigned q);

/*
 * Linear projection of a budget period: spent so far (nano-USD) at now,
 * in a period [start, end) (unix ms), extended at the same rate to end.
 * Returns spent when less than a minute has passed or end <= now.
 */
uint64_t sl_stats_project(uint64_t spent, int64_t start, int64_t end, int64_t now);

#endif
