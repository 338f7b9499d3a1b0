/*
 * The pricing table: list prices per model, loaded from the file that
 * `pricing:` names (etc/pricing.yaml is the annotated reference), and the
 * integer cost arithmetic every request goes through.
 *
 * Units. Prices are read from decimal text exactly (no floating point
 * anywhere) into integer micro-USD per 1M tokens: "0.075" USD per 1M tokens
 * is 75000. That is exactly pico-USD (1e-12 USD) per token. Costs are
 * integer nano-USD (1 USD = 1e9 nano-USD), the unit the ledger and the
 * spend counters keep.
 *
 * Lookup. A table key is "<prefix>/<model>" where model is the provider's
 * own model name (the target's model, not the client's alias). For a
 * request served by provider NAME of kind KIND for MODEL, the first of
 * these that exists wins:
 *   1. "NAME/MODEL"  a price for one configured provider (an Azure
 *                    deployment, a negotiated rate, a local server at 0);
 *   2. "KIND/MODEL"  the list price of the provider family;
 *   3. "*" "/MODEL"  (one key: a star, a slash, MODEL) any provider serving
 *                    MODEL.
 * When none matches and MODEL ends in a dated snapshot suffix
 * ("-YYYY-MM-DD", "-YYYYMMDD") or "-latest", the three are tried again
 * with the suffix removed, so "gpt-4o-mini-2024-07-18" finds "gpt-4o-mini"
 * unless the snapshot has its own line.
 *
 * The table lives in the generation pool and is immutable: a reload swaps
 * it with the rest of the configuration.
 */
#ifndef SL_CORE_GATEWAY_PRICING_H
#define SL_CORE_GATEWAY_PRICING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/pool.h"

typedef struct sl_pricing sl_pricing_t;
typedef struct sl_usage sl_usage_t; /* providers/provider.h */

/* Largest accepted price: 1,000,000 USD per 1M tokens. */
#define SL_PRICE_MAX (1000000ULL * 1000000ULL)

/* Nano-USD per USD. */
#define SL_NUSD_PER_USD 1000000000ULL

/* Completion tokens assumed by sl_pricing_estimate when the client set no limit. */
#define SL_PRICING_DEFAULT_COMPLETION 1024

/* One line of the table. All prices are micro-USD per 1M tokens. */
typedef struct sl_price {
    const char *key;       /* "openai/gpt-4o-mini", in the generation pool */
    uint64_t input;        /* uncached prompt tokens */
    uint64_t output;       /* completion tokens (reasoning tokens included) */
    uint64_t cached_input; /* prompt tokens read from the provider's cache */
    uint64_t cache_write;  /* prompt tokens written to the provider's cache */
    uint32_t checked;      /* YYYYMMDD the price was last verified, 0 when not given */
} sl_price_t;

/*
 * Parses and validates the pricing file at path into a table allocated
 * from pool (the generation pool, which owns it; there is no destroy). On
 * failure writes one "file:line:col: message" (or "file: message" when the
 * file cannot be read) into err and returns SL_ECONF or -errno. Master or
 * CLI context: blocking file I/O.
 */
int sl_pricing_load(const char *path, sl_pool_t *pool, sl_pricing_t **out, char *err,
                    size_t errlen);

/* Number of priced models. */
size_t sl_pricing_count(const sl_pricing_t *p);

/*
 * The price for model served by the provider named provider_name of kind
 * provider_kind, by the lookup order above; NULL when there is none or p is
 * NULL. provider_name and provider_kind may be NULL (skipped). The result
 * is borrowed from the table. Any context.
 */
const sl_price_t *sl_pricing_find(const sl_pricing_t *p, const char *provider_name,
                                  const char *provider_kind, const char *model);

/*
 * Cost of one exchange in nano-USD. prompt_tokens includes the cached and
 * the cache-write tokens (OpenAI's convention): the uncached remainder is
 * billed at input, cached_tokens at cached_input and cache_write_tokens at
 * cache_write, completion_tokens at output. When the provider reported more
 * cached + cache-write tokens than prompt tokens, the uncached remainder is
 * 0 (never negative).
 *
 * Rounding: each part is tokens x price in pico-USD, exact; the parts are
 * summed exactly and the sum is rounded once to the nearest nano-USD (half
 * up), so a request is never off by more than half a nano-USD.
 *
 * Returns 0 and *nusd, SL_ENOTFOUND when the model has no price (or p is
 * NULL: the caller records the row as unpriced; never an error for the
 * client), or SL_ETOOBIG when the cost does not fit 64 bits (absurd token
 * counts; treat like unpriced). Any context, no allocation.
 */
int sl_pricing_cost(const sl_pricing_t *p, const char *provider_name, const char *provider_kind,
                    const char *model, const sl_usage_t *u, uint64_t *nusd);

/* As sl_pricing_cost, with a price already looked up. */
int sl_price_cost(const sl_price_t *price, const sl_usage_t *u, uint64_t *nusd);

/*
 * Upper-end cost estimate for a budget reservation, in nano-USD: prompt
 * tokens are taken as ceil(prompt_bytes / 4), completion tokens as
 * max_tokens, or SL_PRICING_DEFAULT_COMPLETION when max_tokens is 0 (the
 * client set no limit), all at the uncached list prices. 0 when the model
 * is unpriced; saturates at UINT64_MAX. Any context.
 */
uint64_t sl_pricing_estimate(const sl_pricing_t *p, const char *provider_name,
                             const char *provider_kind, const char *model, size_t prompt_bytes,
                             uint64_t max_tokens);

/*
 * Parses a non-negative decimal amount of USD with at most 6 decimals
 * ("0.075", "15", "1.25") into micro-USD, exactly. Returns 0, or SL_EPARSE
 * (empty, sign, exponent, more than 6 significant decimals, above
 * SL_PRICE_MAX, anything else). Exposed for tests.
 */
int sl_pricing_parse_usd(const char *s, uint64_t *micro);

/*
 * Formats nano-USD as a decimal USD string with at least 6 and at most 9
 * decimals, exact ("0.150000", "0.00000015", "12.345678901"). Returns buf.
 * size 32 always suffices.
 */
char *sl_pricing_format_usd(uint64_t nusd, char *buf, size_t size);

#endif
