/*
 * The pricing table. sl_pricing_load_files() reads each file (sluice's YAML
 * through conf.c's node API, which stays the only libyaml user; LiteLLM's
 * JSON in pricing_litellm.c), checks every line, merges them so that a later
 * file's line for a key wins, and keeps a sorted array of sl_price_t in the
 * generation pool; lookups are a binary search on "prefix/model". All money
 * is integer: prices in micro-USD per 1M tokens (= pico-USD per token),
 * costs in nano-USD.
 */
#include "core/gateway/pricing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/gateway/pricing_internal.h"
#include "providers/registry.h"

#define PRICING_DATE_MIN   20000101
#define PRICING_DATE_MAX   29991231
#define PRICING_ABOVE_MAX  100000 /* thousands of tokens: a tier above 100M is not a tier */
#define PRICING_TOKENS_MAX 1000000000ULL
#define PRICING_DIGITS_MAX                                                \
    128 /* digits of a LiteLLM price, leading and trailing zeros included \
         */

struct sl_pricing {
    sl_price_t *prices; /* sorted by key */
    size_t nprices;
    size_t nskipped; /* LiteLLM entries skipped at load */
    const char *notes[SL_PRICING_NOTES_MAX];
    size_t nnotes;
};

/* The rate fields of a YAML line or tier, by name. */
typedef struct pricing_field {
    const char *name;
    size_t offset; /* into sl_price_rates_t */
} pricing_field_t;

/* A tier's fields as written, before the line's own rates fill the gaps. */
typedef struct pricing_tier {
    sl_price_rates_t rates;
    bool given[5];
} pricing_tier_t;

/* Merge order of the lines: key, then the order they were read. */
typedef struct pricing_sort {
    const sl_price_t *v;
} pricing_sort_t;

static const pricing_field_t pricing_fields[] = {
    { "input", offsetof(sl_price_rates_t, input) },
    { "output", offsetof(sl_price_rates_t, output) },
    { "cached_input", offsetof(sl_price_rates_t, cached_input) },
    { "cache_write", offsetof(sl_price_rates_t, cache_write) },
    { "cache_write_1h", offsetof(sl_price_rates_t, cache_write_1h) },
};

#define PRICING_NFIELDS (sizeof(pricing_fields) / sizeof(pricing_fields[0]))

static int pricing_read_file(sl__pricing_build_t *b, const char *path, char *err, size_t errlen);
static int pricing_merge(sl__pricing_build_t *b);
static int pricing_order_cmp(const void *a, const void *b);
static int pricing_parse_root(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg);
static int pricing_parse_model(sl_conf_ctx_t *cx, sl__pricing_build_t *b, const sl_conf_node_t *key,
                               const sl_conf_node_t *val);
static int pricing_parse_pair(sl_conf_ctx_t *cx, const sl_conf_node_t *k, const sl_conf_node_t *v,
                              sl_price_t *price, bool given[PRICING_NFIELDS], pricing_tier_t *tier,
                              const sl_conf_node_t **tier_node);
static int pricing_parse_tier(sl_conf_ctx_t *cx, const sl_conf_node_t *key,
                              const sl_conf_node_t *val, const char *model, sl_price_t *price,
                              pricing_tier_t *tier);
static int pricing_field_index(const char *name);
static int pricing_parse_price(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *field,
                               const char *model, uint64_t *out);
static int pricing_parse_tokens(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *model,
                                uint64_t *out);
static int pricing_parse_source(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *model,
                                const char **out);
static int pricing_parse_date(const char *s, uint32_t *out);
static int pricing_above(const char *name, uint64_t *tokens);
static void pricing_defaults(sl_price_t *price, const bool given[PRICING_NFIELDS]);
static uint64_t *pricing_rate(sl_price_rates_t *r, size_t i);
static int pricing_cmp(const void *a, const void *b);
static const sl_price_t *pricing_lookup(const sl_pricing_t *p, const char *prefix,
                                        const char *model, size_t mlen);
static const sl_price_t *pricing_find_n(const sl_pricing_t *p, const char *name, const char *kind,
                                        const char *model, size_t mlen);
static size_t pricing_strip_snapshot(const char *model, size_t len);
static bool pricing_digits(const char *s, size_t n);
static bool pricing_is_json(const char *path);
static int pricing_part(uint64_t tokens, uint64_t price, uint64_t *whole, uint64_t *frac);


int
sl_pricing_load(const char *path, sl_pool_t *pool, sl_pricing_t **out, char *err, size_t errlen)
{
    return sl_pricing_load_files(&path, 1, pool, out, err, errlen);
}


int
sl_pricing_load_files(const char *const *paths, size_t n, sl_pool_t *pool, sl_pricing_t **out,
                      char *err, size_t errlen)
{
    sl__pricing_build_t b;
    int rc = 0;

    memset(&b, 0, sizeof(b));
    b.pool = pool;
    b.table = sl_pcalloc(pool, sizeof(sl_pricing_t));
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = pricing_read_file(&b, paths[i], err, errlen);
    }
    if (rc == 0) {
        rc = pricing_merge(&b);
        if (rc != 0) {
            snprintf(err, errlen, "%s: out of memory", n > 0 ? paths[n - 1] : "pricing");
        }
    }
    free(b.v);
    if (rc != 0) {
        return rc;
    }
    *out = b.table;
    return 0;
}


static int
pricing_read_file(sl__pricing_build_t *b, const char *path, char *err, size_t errlen)
{
    b->file = sl_pstrdup(b->pool, path);
    if (pricing_is_json(path)) {
        return sl__pricing_litellm(b, path, err, errlen);
    }
    return sl_conf_parse_file(path, b->pool, pricing_parse_root, b, err, errlen);
}


/* A path ending in ".json" is a LiteLLM table. */
static bool
pricing_is_json(const char *path)
{
    size_t len = strlen(path);

    return len > 5 && strcmp(path + len - 5, ".json") == 0;
}


sl_price_t *
sl__pricing_add(sl__pricing_build_t *b)
{
    sl_price_t *v;

    if (b->n == b->cap) {
        size_t cap = b->cap == 0 ? 64 : b->cap * 2;

        v = realloc(b->v, cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        b->v = v;
        b->cap = cap;
    }
    v = &b->v[b->n++];
    memset(v, 0, sizeof(*v));
    v->file = b->file;
    v->source = "";
    return v;
}


void
sl__pricing_skip(sl__pricing_build_t *b, unsigned line, unsigned col, const char *key, size_t klen,
                 const char *why)
{
    sl_pricing_t *t = b->table;

    t->nskipped++;
    if (t->nnotes < SL_PRICING_NOTES_MAX) {
        t->notes[t->nnotes++] = sl_psprintf(b->pool, "%s:%u:%u: %.*s: %s", b->file, line, col,
                                            (int) (klen < 200 ? klen : 200), key, why);
    }
}


/*
 * The build's lines sorted by key into the table, the last one read of
 * each key only. The lines are sorted through pointers, so that equal keys
 * keep the order they were read in (qsort is not stable).
 */
static int
pricing_merge(sl__pricing_build_t *b)
{
    sl_pricing_t *t = b->table;
    pricing_sort_t *order;
    size_t n = 0;

    t->prices = sl_pcalloc(b->pool, (b->n > 0 ? b->n : 1) * sizeof(sl_price_t));
    if (b->n == 0) {
        return 0;
    }
    order = malloc(b->n * sizeof(*order));
    if (order == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        order[i].v = &b->v[i];
    }
    qsort(order, b->n, sizeof(*order), pricing_order_cmp);
    for (size_t i = 0; i < b->n; i++) {
        if (i + 1 < b->n && strcmp(order[i].v->key, order[i + 1].v->key) == 0) {
            continue; /* a later line of the same key follows */
        }
        t->prices[n++] = *order[i].v;
    }
    t->nprices = n;
    free(order);
    return 0;
}


static int
pricing_order_cmp(const void *a, const void *b)
{
    const pricing_sort_t *pa = a, *pb = b;
    int c = strcmp(pa->v->key, pb->v->key);

    if (c != 0) {
        return c;
    }
    return pa->v < pb->v ? -1 : pa->v > pb->v ? 1 : 0;
}


size_t
sl_pricing_count(const sl_pricing_t *p)
{
    return p != NULL ? p->nprices : 0;
}


const sl_price_t *
sl_pricing_at(const sl_pricing_t *p, size_t i)
{
    return p != NULL && i < p->nprices ? &p->prices[i] : NULL;
}


size_t
sl_pricing_skipped(const sl_pricing_t *p)
{
    return p != NULL ? p->nskipped : 0;
}


const char *
sl_pricing_note(const sl_pricing_t *p, size_t i)
{
    return p != NULL && i < p->nnotes ? p->notes[i] : NULL;
}


const sl_price_t *
sl_pricing_find(const sl_pricing_t *p, const char *provider_name, const char *provider_kind,
                const char *model)
{
    const sl_price_t *price;
    size_t len, base;

    if (p == NULL || model == NULL || p->nprices == 0) {
        return NULL;
    }
    len = strlen(model);
    price = pricing_find_n(p, provider_name, provider_kind, model, len);
    if (price != NULL) {
        return price;
    }
    base = pricing_strip_snapshot(model, len);
    if (base == len) {
        return NULL;
    }
    return pricing_find_n(p, provider_name, provider_kind, model, base);
}


const sl_price_t *
sl_pricing_get(const sl_pricing_t *p, const char *key)
{
    sl_price_t probe;

    if (p == NULL || key == NULL || p->nprices == 0) {
        return NULL;
    }
    probe.key = key;
    return bsearch(&probe, p->prices, p->nprices, sizeof(sl_price_t), pricing_cmp);
}


int
sl_pricing_cost(const sl_pricing_t *p, const char *provider_name, const char *provider_kind,
                const char *model, const sl_usage_t *u, uint64_t *nusd)
{
    const sl_price_t *price = sl_pricing_find(p, provider_name, provider_kind, model);

    if (price == NULL) {
        return SL_ENOTFOUND;
    }
    return sl_price_cost(price, u, nusd);
}


int
sl_price_cost(const sl_price_t *price, const sl_usage_t *u, uint64_t *nusd)
{
    const sl_price_rates_t *r = &price->rates;
    uint64_t whole = 0, frac = 0, uncached = 0, write, write_1h, cost;

    if (price->above != 0 && u->prompt_tokens > price->above) {
        r = &price->long_rates; /* the whole request is billed at the long-context rates */
    }
    if (u->cached_tokens <= u->prompt_tokens
        && u->cache_write_tokens <= u->prompt_tokens - u->cached_tokens) {
        uncached = u->prompt_tokens - u->cached_tokens - u->cache_write_tokens;
    }
    write = u->cache_write_tokens;
    write_1h = u->cache_write_1h_tokens < write ? u->cache_write_1h_tokens : write;
    if (pricing_part(uncached, r->input, &whole, &frac) != 0
        || pricing_part(u->cached_tokens, r->cached_input, &whole, &frac) != 0
        || pricing_part(write - write_1h, r->cache_write, &whole, &frac) != 0
        || pricing_part(write_1h, r->cache_write_1h, &whole, &frac) != 0
        || pricing_part(u->completion_tokens, r->output, &whole, &frac) != 0) {
        return SL_ETOOBIG;
    }
    /* frac is in pico-USD below 1000 per part: round the sum once, half up */
    cost = frac / 1000 + (frac % 1000 >= 500 ? 1 : 0);
    if (__builtin_add_overflow(whole, cost, &cost)) {
        return SL_ETOOBIG;
    }
    *nusd = cost;
    return 0;
}


uint64_t
sl_price_estimate(const sl_price_t *price, size_t prompt_bytes, uint64_t completion)
{
    sl_usage_t u;
    uint64_t nusd;

    memset(&u, 0, sizeof(u));
    /* about 4 bytes of text per token, rounded up: an estimate must not be low */
    u.prompt_tokens = (uint64_t) (prompt_bytes / 4 + (prompt_bytes % 4 != 0 ? 1 : 0));
    u.completion_tokens = completion;
    if (sl_price_cost(price, &u, &nusd) != 0) {
        return UINT64_MAX;
    }
    return nusd;
}


uint64_t
sl_pricing_estimate(const sl_pricing_t *p, const char *provider_name, const char *provider_kind,
                    const char *model, size_t prompt_bytes, uint64_t max_tokens)
{
    const sl_price_t *price = sl_pricing_find(p, provider_name, provider_kind, model);

    if (price == NULL) {
        return 0;
    }
    return sl_price_estimate(price, prompt_bytes,
                             max_tokens != 0 ? max_tokens : SL_PRICING_DEFAULT_COMPLETION);
}


int
sl_pricing_parse_usd(const char *s, uint64_t *micro)
{
    uint64_t whole = 0, frac = 0;
    unsigned places = 0;
    const char *p = s;

    if (s == NULL || *p < '0' || *p > '9') {
        return SL_EPARSE;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (uint64_t) (*p - '0');
        if (whole > SL_PRICE_MAX / 1000000) {
            return SL_EPARSE;
        }
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return SL_EPARSE;
        }
        for (; *p >= '0' && *p <= '9'; p++) {
            if (places < 6) {
                frac = frac * 10 + (uint64_t) (*p - '0');
                places++;
            } else if (*p != '0') {
                /* below one micro-USD per 1M tokens: cannot be kept exactly */
                return SL_EPARSE;
            }
        }
    }
    if (*p != '\0') {
        return SL_EPARSE;
    }
    for (; places < 6; places++) {
        frac *= 10;
    }
    whole = whole * 1000000 + frac;
    if (whole > SL_PRICE_MAX) {
        return SL_EPARSE;
    }
    *micro = whole;
    return 0;
}


/*
 * The JSON number grammar (RFC 8259) in full. The integer and fraction
 * digits are joined (value = digits x 10^exp exactly), stripped of leading
 * and trailing zeros, then scaled by 10^12 (USD to pico-USD) in integers.
 */
int
sl_pricing_parse_per_token(const char *s, size_t len, uint64_t *pico)
{
    const char *p = s, *end = s + len;
    char digits[PRICING_DIGITS_MAX];
    size_t nd = 0, first = 0;
    int64_t exp = 0, e = 0;
    bool eneg = false;
    uint64_t v = 0;

    if (len == 0 || *p < '0' || *p > '9' || (*p == '0' && len > 1 && p[1] >= '0' && p[1] <= '9')) {
        return SL_EPARSE; /* empty, a sign, or a leading zero JSON does not allow */
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (nd == sizeof(digits)) {
            return SL_EPARSE;
        }
        digits[nd++] = *p;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || *p < '0' || *p > '9') {
            return SL_EPARSE;
        }
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (nd == sizeof(digits)) {
                return SL_EPARSE;
            }
            digits[nd++] = *p;
            exp--;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p == end || *p < '0' || *p > '9') {
            return SL_EPARSE;
        }
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (e < 100000) {
                e = e * 10 + (*p - '0');
            }
        }
        exp += eneg ? -e : e;
    }
    if (p != end) {
        return SL_EPARSE;
    }
    while (first < nd && digits[first] == '0') {
        first++;
    }
    while (nd > first && digits[nd - 1] == '0') {
        nd--;
        exp++;
    }
    if (first == nd) {
        *pico = 0;
        return 0;
    }
    exp += 12; /* USD to pico-USD */
    if (exp < 0) {
        return SL_EPARSE; /* a fraction of a pico-USD: not exact in this unit */
    }
    if ((int64_t) (nd - first) + exp > 13) {
        return SL_EPARSE; /* 10^13 pico-USD or more, far above SL_PRICE_MAX */
    }
    for (size_t i = first; i < nd; i++) {
        v = v * 10 + (uint64_t) (digits[i] - '0');
    }
    for (; exp > 0; exp--) {
        v *= 10;
    }
    if (v > SL_PRICE_MAX) {
        return SL_EPARSE;
    }
    *pico = v;
    return 0;
}


char *
sl_pricing_format_usd(uint64_t nusd, char *buf, size_t size)
{
    char frac[16];
    int n = 9;

    snprintf(frac, sizeof(frac), "%09llu", (unsigned long long) (nusd % SL_NUSD_PER_USD));
    while (n > 6 && frac[n - 1] == '0') {
        n--;
    }
    snprintf(buf, size, "%llu.%.*s", (unsigned long long) (nusd / SL_NUSD_PER_USD), n, frac);
    return buf;
}


static int
pricing_parse_root(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg)
{
    sl__pricing_build_t *b = arg;
    const sl_conf_node_t *models, *key, *val;
    size_t n;

    if (root == NULL) {
        return sl_conf_errorf(cx, NULL, "the pricing file is empty (expected a models: mapping)");
    }
    if (!sl_conf_node_is_map(root)) {
        return sl_conf_errorf(cx, root, "the pricing file must be a mapping");
    }
    models = sl_conf_get(cx, root, "models");
    if (models == NULL) {
        return sl_conf_errorf(cx, root, "missing models: mapping");
    }
    if (!sl_conf_node_is_map(models)) {
        return sl_conf_errorf(cx, models, "models must be a mapping of PROVIDER/MODEL to prices");
    }

    n = sl_conf_map_size(models);
    for (size_t i = 0; i < n; i++) {
        if (sl_conf_map_pair(cx, models, i, &key, &val) != 0
            || pricing_parse_model(cx, b, key, val) != 0) {
            return SL_ECONF;
        }
    }
    return sl_conf_check_unknown(cx, root, NULL);
}


static int
pricing_parse_model(sl_conf_ctx_t *cx, sl__pricing_build_t *b, const sl_conf_node_t *key,
                    const sl_conf_node_t *val)
{
    const sl_conf_node_t *k, *v, *tier_node = NULL;
    bool given[PRICING_NFIELDS] = { false };
    pricing_tier_t tier;
    sl_price_t *price;
    const char *s;
    size_t klen, n;

    s = sl_conf_node_str(key, &klen);
    if (s == NULL || !sl__pricing_valid_key(s, klen)) {
        return sl_conf_errorf(cx, key, "invalid model key \"%s\" (use PROVIDER/MODEL or */MODEL)",
                              s != NULL ? s : "");
    }
    price = sl__pricing_add(b);
    if (price == NULL) {
        return sl_conf_errorf(cx, key, "out of memory");
    }
    price->key = sl_pstrndup(sl_conf_pool(cx), s, klen);
    price->line = sl_conf_node_line(key);
    if (val == NULL || !sl_conf_node_is_map(val)) {
        return sl_conf_errorf(cx, val != NULL ? val : key,
                              "prices of %s must be a mapping like {input: 0.15, output: 0.60}",
                              price->key);
    }

    memset(&tier, 0, sizeof(tier));
    n = sl_conf_map_size(val);
    for (size_t i = 0; i < n; i++) {
        if (sl_conf_map_pair(cx, val, i, &k, &v) != 0
            || pricing_parse_pair(cx, k, v, price, given, &tier, &tier_node) != 0) {
            return SL_ECONF;
        }
    }
    if (!given[0]) {
        return sl_conf_errorf(cx, key, "%s has no input price", price->key);
    }
    pricing_defaults(price, given);
    if (tier_node != NULL) {
        /* a tier's price left out is the line's own */
        for (size_t i = 0; i < PRICING_NFIELDS; i++) {
            *pricing_rate(&price->long_rates, i) =
                tier.given[i] ? *pricing_rate(&tier.rates, i) : *pricing_rate(&price->rates, i);
        }
        unsigned base_bits = 0, tier_bits = 0;

        for (size_t i = 0; i < PRICING_NFIELDS; i++) {
            base_bits |= given[i] ? 1u << i : 0;
            tier_bits |= tier.given[i] ? 1u << i : 0;
        }
        if (!sl__pricing_tier_ok(price, base_bits, tier_bits)) {
            return sl_conf_errorf(cx, tier_node,
                                  "the long-context prices of %s must not be below its own",
                                  price->key);
        }
    }
    return 0;
}


bool
sl__pricing_tier_ok(const sl_price_t *price, unsigned given, unsigned tier_given)
{
    sl_price_rates_t base = price->rates, tier = price->long_rates;

    if (price->above == 0) {
        return true;
    }
    for (size_t i = 0; i < PRICING_NFIELDS; i++) {
        if ((given & tier_given & (1u << i)) && *pricing_rate(&tier, i) < *pricing_rate(&base, i)) {
            return false;
        }
    }
    return true;
}


/* One key of a model's mapping. */
static int
pricing_parse_pair(sl_conf_ctx_t *cx, const sl_conf_node_t *k, const sl_conf_node_t *v,
                   sl_price_t *price, bool given[PRICING_NFIELDS], pricing_tier_t *tier,
                   const sl_conf_node_t **tier_node)
{
    const char *name = sl_conf_node_str(k, NULL), *s;
    int i;

    if (name == NULL) {
        return sl_conf_errorf(cx, k, "unknown key in %s", price->key);
    }
    i = pricing_field_index(name);
    if (i >= 0) {
        if (v == NULL) {
            return 0; /* `output: ~`: as if left out */
        }
        if (pricing_parse_price(cx, v, name, price->key, pricing_rate(&price->rates, (size_t) i))
            != 0) {
            return SL_ECONF;
        }
        given[i] = true;
        return 0;
    }
    if (strncmp(name, "above_", 6) == 0) {
        if (*tier_node != NULL) {
            return sl_conf_errorf(cx, k, "%s has more than one long-context tier", price->key);
        }
        *tier_node = k;
        return pricing_parse_tier(cx, k, v, price->key, price, tier);
    }
    if (v == NULL) {
        return 0;
    }
    if (strcmp(name, "max_output") == 0) {
        return pricing_parse_tokens(cx, v, price->key, &price->max_output);
    }
    if (strcmp(name, "source") == 0) {
        return pricing_parse_source(cx, v, price->key, &price->source);
    }
    if (strcmp(name, "checked") == 0) {
        s = sl_conf_node_str(v, NULL);
        if (s == NULL || pricing_parse_date(s, &price->checked) != 0) {
            return sl_conf_errorf(cx, v, "invalid date \"%s\" for checked of %s (use YYYY-MM-DD)",
                                  s != NULL ? s : "", price->key);
        }
        return 0;
    }
    return sl_conf_errorf(cx, k, "unknown key \"%s\" in %s", name, price->key);
}


/* above_<N>k: {input: ..., output: ..., ...}, the long-context tier. */
static int
pricing_parse_tier(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *val,
                   const char *model, sl_price_t *price, pricing_tier_t *tier)
{
    const char *name = sl_conf_node_str(key, NULL), *fname;
    const sl_conf_node_t *k, *v;
    char what[64];
    size_t n;
    int i;

    if (pricing_above(name, &price->above) != 0) {
        return sl_conf_errorf(cx, key,
                              "invalid key \"%s\" in %s (a long-context tier is above_<N>k, "
                              "e.g. above_200k)",
                              name, model);
    }
    if (val == NULL || !sl_conf_node_is_map(val)) {
        return sl_conf_errorf(cx, val != NULL ? val : key,
                              "%s of %s must be a mapping like {input: 6, output: 22.5}", name,
                              model);
    }
    n = sl_conf_map_size(val);
    for (size_t j = 0; j < n; j++) {
        if (sl_conf_map_pair(cx, val, j, &k, &v) != 0) {
            return SL_ECONF;
        }
        fname = sl_conf_node_str(k, NULL);
        i = fname != NULL ? pricing_field_index(fname) : -1;
        if (i < 0) {
            return sl_conf_errorf(cx, k, "unknown key \"%s\" in %s of %s",
                                  fname != NULL ? fname : "", name, model);
        }
        if (v == NULL) {
            continue;
        }
        snprintf(what, sizeof(what), "%s.%s", name, fname);
        if (pricing_parse_price(cx, v, what, model, pricing_rate(&tier->rates, (size_t) i)) != 0) {
            return SL_ECONF;
        }
        tier->given[i] = true;
    }
    return 0;
}


static int
pricing_field_index(const char *name)
{
    for (size_t i = 0; i < PRICING_NFIELDS; i++) {
        if (strcmp(name, pricing_fields[i].name) == 0) {
            return (int) i;
        }
    }
    return -1;
}


static uint64_t *
pricing_rate(sl_price_rates_t *r, size_t i)
{
    return (uint64_t *) ((char *) r + pricing_fields[i].offset);
}


/*
 * Without a cache price, cache tokens cost what any prompt token costs; a
 * 1-hour cache write without its own price costs a 5-minute one.
 */
static void
pricing_defaults(sl_price_t *price, const bool given[PRICING_NFIELDS])
{
    if (!given[2]) {
        price->rates.cached_input = price->rates.input;
    }
    if (!given[3]) {
        price->rates.cache_write = price->rates.input;
    }
    if (!given[4]) {
        price->rates.cache_write_1h = price->rates.cache_write;
    }
}


/* "above_200k" -> 200000 tokens. */
static int
pricing_above(const char *name, uint64_t *tokens)
{
    const char *p = name + 6;
    uint64_t n = 0;

    if (*p < '1' || *p > '9') {
        return SL_EPARSE;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t) (*p - '0');
        if (n > PRICING_ABOVE_MAX) {
            return SL_EPARSE;
        }
    }
    if (p[0] != 'k' || p[1] != '\0') {
        return SL_EPARSE;
    }
    *tokens = n * 1000;
    return 0;
}


static int
pricing_parse_price(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *field,
                    const char *model, uint64_t *out)
{
    const char *s = sl_conf_node_str(n, NULL);

    if (s == NULL) {
        return sl_conf_errorf(cx, n, "%s of %s must be a number", field, model);
    }
    if (s[0] == '-') {
        return sl_conf_errorf(cx, n, "%s of %s must not be negative", field, model);
    }
    if (sl_pricing_parse_usd(s, out) != 0) {
        return sl_conf_errorf(cx, n,
                              "invalid price \"%s\" for %s of %s (USD per 1M tokens, at most 6 "
                              "decimals, e.g. 0.15)",
                              s, field, model);
    }
    return 0;
}


static int
pricing_parse_tokens(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *model, uint64_t *out)
{
    const char *s = sl_conf_node_str(n, NULL);
    uint64_t v = 0;

    if (s == NULL || *s == '\0') {
        return sl_conf_errorf(cx, n, "max_output of %s must be a number of tokens", model);
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > PRICING_TOKENS_MAX) {
            return sl_conf_errorf(
                cx, n, "invalid max_output \"%s\" of %s (tokens, 1 to 1000000000)", s, model);
        }
        v = v * 10 + (uint64_t) (*p - '0');
    }
    if (v == 0 || v > PRICING_TOKENS_MAX) {
        return sl_conf_errorf(cx, n, "invalid max_output \"%s\" of %s (tokens, 1 to 1000000000)", s,
                              model);
    }
    *out = v;
    return 0;
}


static int
pricing_parse_source(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *model,
                     const char **out)
{
    size_t len;
    const char *s = sl_conf_node_str(n, &len);

    if (s == NULL || len > SL__PRICING_SOURCE_MAX) {
        return sl_conf_errorf(cx, n, "source of %s must be a text of at most %d bytes", model,
                              SL__PRICING_SOURCE_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return sl_conf_errorf(cx, n, "source of %s must not hold control characters", model);
        }
    }
    *out = sl_pstrndup(sl_conf_pool(cx), s, len);
    return 0;
}


/* "YYYY-MM-DD", a real calendar day, into YYYYMMDD. */
static int
pricing_parse_date(const char *s, uint32_t *out)
{
    static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    unsigned y, m, d;

    if (strlen(s) != 10 || !pricing_digits(s, 4) || s[4] != '-' || !pricing_digits(s + 5, 2)
        || s[7] != '-' || !pricing_digits(s + 8, 2)) {
        return SL_EPARSE;
    }
    y = (unsigned) ((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'));
    m = (unsigned) ((s[5] - '0') * 10 + (s[6] - '0'));
    d = (unsigned) ((s[8] - '0') * 10 + (s[9] - '0'));
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) {
        return SL_EPARSE;
    }
    if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) {
        return SL_EPARSE;
    }
    *out = y * 10000 + m * 100 + d;
    if (*out < PRICING_DATE_MIN || *out > PRICING_DATE_MAX) {
        return SL_EPARSE;
    }
    return 0;
}


bool
sl__pricing_valid_key(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);

    if (slash == NULL || slash == s || slash == s + len - 1 || len >= SL__PRICING_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char) s[i] <= 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}


static int
pricing_cmp(const void *a, const void *b)
{
    const sl_price_t *pa = a, *pb = b;

    return strcmp(pa->key, pb->key);
}


static const sl_price_t *
pricing_lookup(const sl_pricing_t *p, const char *prefix, const char *model, size_t mlen)
{
    char key[SL__PRICING_KEY_MAX];
    sl_price_t probe;
    size_t plen;

    if (prefix == NULL) {
        return NULL;
    }
    plen = strlen(prefix);
    if (plen == 0 || plen + 1 + mlen >= sizeof(key)) {
        return NULL;
    }
    memcpy(key, prefix, plen);
    key[plen] = '/';
    memcpy(key + plen + 1, model, mlen);
    key[plen + 1 + mlen] = '\0';
    probe.key = key;
    return bsearch(&probe, p->prices, p->nprices, sizeof(sl_price_t), pricing_cmp);
}


static const sl_price_t *
pricing_find_n(const sl_pricing_t *p, const char *name, const char *kind, const char *model,
               size_t mlen)
{
    const sl_price_t *price;

    price = pricing_lookup(p, name, model, mlen);
    if (price == NULL) {
        price = pricing_lookup(p, kind, model, mlen);
    }
    if (price == NULL) {
        price = pricing_lookup(p, "*", model, mlen);
    }
    return price;
}


/* Length of model without a "-YYYY-MM-DD", "-YYYYMMDD" or "-latest" suffix; len if none. */
static size_t
pricing_strip_snapshot(const char *model, size_t len)
{
    const char *s;

    if (len > 7 && memcmp(model + len - 7, "-latest", 7) == 0) {
        return len - 7;
    }
    if (len > 11) {
        s = model + len - 11;
        if (s[0] == '-' && pricing_digits(s + 1, 4) && s[5] == '-' && pricing_digits(s + 6, 2)
            && s[8] == '-' && pricing_digits(s + 9, 2)) {
            return len - 11;
        }
    }
    if (len > 9) {
        s = model + len - 9;
        if (s[0] == '-' && pricing_digits(s + 1, 8)) {
            return len - 9;
        }
    }
    return len;
}


static bool
pricing_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}


/*
 * Adds tokens x price (pico-USD) to whole (nano-USD) and frac (pico-USD
 * remainders), without ever forming the full product: price / 1000 is whole
 * nano-USD per token and price % 1000 stays below 1000.
 */
static int
pricing_part(uint64_t tokens, uint64_t price, uint64_t *whole, uint64_t *frac)
{
    uint64_t w, f;

    if (__builtin_mul_overflow(tokens, price / 1000, &w)
        || __builtin_mul_overflow(tokens, price % 1000, &f)
        || __builtin_add_overflow(*whole, w, whole) || __builtin_add_overflow(*frac, f, frac)) {
        return SL_ETOOBIG;
    }
    return 0;
}
