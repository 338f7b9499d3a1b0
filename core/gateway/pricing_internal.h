/*
 * Module-private declarations of the pricing table (pricing.c: the table,
 * sluice's YAML, lookups and costs; pricing_litellm.c: LiteLLM's JSON
 * table). Both readers append lines to one build, which pricing.c then
 * merges (a later file's line for a key wins) into the table. Master or CLI
 * context, at load.
 */
#ifndef SL_CORE_GATEWAY_PRICING_INTERNAL_H
#define SL_CORE_GATEWAY_PRICING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/pool.h"
#include "core/gateway/pricing.h"

#define SL__PRICING_KEY_MAX    512 /* "prefix/model", NUL included */
#define SL__PRICING_SOURCE_MAX 256 /* bytes of a source: text */

/* The lines read so far, in file order; the heap array is the build's own. */
typedef struct sl__pricing_build {
    sl_pool_t *pool;     /* the generation pool: keys, sources, notes */
    sl_pricing_t *table; /* gets the skip notes */
    sl_price_t *v;
    size_t n;
    size_t cap;
    const char *file; /* the file being read (pool copy) */
} sl__pricing_build_t;

/* A new zeroed line at the end of the build, or NULL when out of memory. */
sl_price_t *sl__pricing_add(sl__pricing_build_t *b);

/* Counts a skipped entry and keeps "file:line:col: key: why" while there is room. */
void sl__pricing_skip(sl__pricing_build_t *b, unsigned line, unsigned col, const char *key,
                      size_t klen, const char *why);

/*
 * True when no rate of the long-context tier is below the same rate of the
 * line, among the rates both give (bit i of given and tier_given: the i-th
 * field of sl_price_rates_t was written, not defaulted); also with no tier.
 */
bool sl__pricing_tier_ok(const sl_price_t *price, unsigned given, unsigned tier_given);

/* PREFIX/MODEL: a non-empty prefix without '/', a non-empty model, no blanks or controls. */
bool sl__pricing_valid_key(const char *s, size_t len);

/*
 * Reads the LiteLLM table at path into b. Returns 0, SL_ECONF (not JSON, or
 * not an object at the top: "file:line:col: message" in err) or -errno
 * ("file: message").
 */
int sl__pricing_litellm(sl__pricing_build_t *b, const char *path, char *err, size_t errlen);

#endif
