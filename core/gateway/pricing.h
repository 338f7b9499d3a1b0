/*
 * The pricing table: list prices per model, loaded from the files that
 * `pricing:` names (etc/pricing.yaml is the annotated reference; LiteLLM's
 * model_prices_and_context_window.json is read as it is), and the integer
 * cost arithmetic every request goes through.
 *
 * Units. Prices are read from decimal text exactly (no floating point
 * anywhere) into integer micro-USD per 1M tokens: "0.075" USD per 1M tokens
 * is 75000. That is exactly pico-USD (1e-12 USD) per token. Costs are
 * integer nano-USD (1 USD = 1e9 nano-USD), the unit the ledger and the
 * spend counters keep.
 *
 * Files. `pricing:` takes one path or a list; the files are read in order
 * and a later file's line for a key replaces an earlier one's (so a YAML of
 * negotiated rates after the LiteLLM table overrides it, key by key). A
 * path ending in ".json" is a LiteLLM table (pricing_litellm.c: its
 * litellm_provider values map onto sluice's kinds, see
 * sl_pricing_litellm_kind); any other path is sluice's YAML.
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

/* Skip notes kept per table (sl_pricing_note); the count goes on. */
#define SL_PRICING_NOTES_MAX 16

/* One rate card. All prices are micro-USD per 1M tokens (pico-USD per token). */
typedef struct sl_price_rates {
    uint64_t input;          /* uncached prompt tokens */
    uint64_t output;         /* completion tokens (reasoning tokens included) */
    uint64_t cached_input;   /* prompt tokens read from the provider's cache */
    uint64_t cache_write;    /* prompt tokens written to the cache, 5-minute TTL */
    uint64_t cache_write_1h; /* prompt tokens written to the cache, 1-hour TTL */
} sl_price_rates_t;

/* One line of the table. */
typedef struct sl_price {
    const char *key;             /* "openai/gpt-4o-mini", in the generation pool */
    sl_price_rates_t rates;      /* the prices */
    uint64_t above;              /* a request with more prompt tokens than this (cached and
                                    cache writes included) is priced at long entirely; 0: none */
    sl_price_rates_t long_rates; /* the long-context tier ("above_200k") */
    uint64_t max_output;         /* the model's largest answer in tokens, 0 when not given */
    uint32_t checked;            /* YYYYMMDD the price was last verified, 0 when not given */
    const char *source;          /* where the line came from ("litellm:gpt-4o"), "" if unsaid */
    const char *file;            /* the pricing file that holds the line */
    unsigned line;               /* its line there (1-based) */
} sl_price_t;

/*
 * Parses and validates the pricing files paths[0..n) into one table
 * allocated from pool (the generation pool, which owns it; there is no
 * destroy); a later file's line for a key replaces an earlier one's. On
 * failure writes one "file:line:col: message" (or "file: message" when a
 * file cannot be read) into err and returns SL_ECONF or -errno. Entries of
 * a LiteLLM file that cannot be used exactly (a price finer than 1 pico-USD
 * per token, a negative or non-numeric price) are skipped, not fatal: the
 * file is third-party data; sl_pricing_skipped counts them. Master or CLI
 * context: blocking file I/O.
 */
int sl_pricing_load_files(const char *const *paths, size_t n, sl_pool_t *pool, sl_pricing_t **out,
                          char *err, size_t errlen);

/* sl_pricing_load_files with one file. */
int sl_pricing_load(const char *path, sl_pool_t *pool, sl_pricing_t **out, char *err,
                    size_t errlen);

/* Number of priced models. */
size_t sl_pricing_count(const sl_pricing_t *p);

/* The i-th line of the table in key order (i < sl_pricing_count), for listings. */
const sl_price_t *sl_pricing_at(const sl_pricing_t *p, size_t i);

/*
 * Entries of LiteLLM files skipped at load, and the message of the i-th of
 * the first SL_PRICING_NOTES_MAX ("file:line:col: KEY: why"; NULL past
 * them). Any context.
 */
size_t sl_pricing_skipped(const sl_pricing_t *p);
const char *sl_pricing_note(const sl_pricing_t *p, size_t i);

/*
 * The sluice kind a LiteLLM litellm_provider value maps to ("together_ai"
 * -> "together"), or NULL for the providers sluice has no kind for
 * (vertex_ai-*, bedrock, ...). The table is documented in etc/pricing.yaml
 * and README.md. Any context.
 */
const char *sl_pricing_litellm_kind(const char *provider, size_t len);

/*
 * The price for model served by the provider named provider_name of kind
 * provider_kind, by the lookup order above; NULL when there is none or p is
 * NULL. provider_name and provider_kind may be NULL (skipped). The result
 * is borrowed from the table. Any context.
 */
const sl_price_t *sl_pricing_find(const sl_pricing_t *p, const char *provider_name,
                                  const char *provider_kind, const char *model);

/* The line whose key is exactly key ("kind/model", "*" "/model"), or NULL. Any context. */
const sl_price_t *sl_pricing_get(const sl_pricing_t *p, const char *key);

/*
 * Cost of one exchange in nano-USD. prompt_tokens includes the cached and
 * the cache-write tokens (OpenAI's convention): the uncached remainder is
 * billed at input, cached_tokens at cached_input, cache_write_tokens at
 * cache_write except the cache_write_1h_tokens among them at
 * cache_write_1h, completion_tokens (reasoning tokens included) at output.
 * When the price has a long-context tier and prompt_tokens is above its
 * threshold, every part is billed at the tier's rates. When the provider
 * reported more cached + cache-write tokens than prompt tokens, the
 * uncached remainder is 0 (never negative); more 1-hour than cache-write
 * tokens count as cache-write tokens.
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
 * Upper-end cost estimate of one request at price, in nano-USD: prompt
 * tokens are taken as ceil(prompt_bytes / 4) (uncached, at the tier their
 * number falls in) and completion as completion tokens at output.
 * Saturates at UINT64_MAX. Any context.
 */
uint64_t sl_price_estimate(const sl_price_t *price, size_t prompt_bytes, uint64_t completion);

/*
 * sl_price_estimate for the price of the model (0 when unpriced), with
 * max_tokens as the completion, or SL_PRICING_DEFAULT_COMPLETION when
 * max_tokens is 0 (the client set no limit): the size the router's
 * `cheapest` compares. Any context.
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
 * Parses a LiteLLM price, a JSON number of USD per token as written
 * ("3.75e-06", "0.0000015", "0"), exactly into pico-USD per token (which
 * is micro-USD per 1M tokens), never through a double. Returns 0, or
 * SL_EPARSE (not a number, negative, finer than 1 pico-USD, above
 * SL_PRICE_MAX). Exposed for tests.
 */
int sl_pricing_parse_per_token(const char *s, size_t len, uint64_t *pico);

/*
 * Formats nano-USD as a decimal USD string with at least 6 and at most 9
 * decimals, exact ("0.150000", "0.00000015", "12.345678901"). Returns buf.
 * size 32 always suffices.
 */
char *sl_pricing_format_usd(uint64_t nusd, char *buf, size_t size);

#endif
