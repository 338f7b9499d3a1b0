/*
 * The pricing table. sl_pricing_load() walks the YAML file through conf.c's
 * node API (conf.c stays the only libyaml user), checks every line and
 * keeps a sorted array of sl_price_t in the generation pool; lookups are a
 * binary search on "prefix/model". All money is integer: prices in micro-USD
 * per 1M tokens (= pico-USD per token), costs in nano-USD.
 */
#include "core/gateway/pricing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "providers/registry.h"

#define PRICING_KEY_MAX  512 /* "prefix/model" built for a lookup */
#define PRICING_DATE_MIN 20000101
#define PRICING_DATE_MAX 29991231

struct sl_pricing {
    sl_price_t *prices; /* sorted by key */
    size_t nprices;
};

typedef struct pricing_load {
    sl_pricing_t *pricing;
} pricing_load_t;

static int pricing_parse_root(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg);
static int pricing_parse_model(sl_conf_ctx_t *cx, const sl_conf_node_t *key,
                               const sl_conf_node_t *val, sl_price_t *price);
static int pricing_parse_price(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *field,
                               const char *model, uint64_t *out, bool *found);
static int pricing_parse_date(const char *s, uint32_t *out);
static bool pricing_valid_key(const char *s, size_t len);
static int pricing_cmp(const void *a, const void *b);
static const sl_price_t *pricing_lookup(const sl_pricing_t *p, const char *prefix,
                                        const char *model, size_t mlen);
static const sl_price_t *pricing_find_n(const sl_pricing_t *p, const char *name, const char *kind,
                                        const char *model, size_t mlen);
static size_t pricing_strip_snapshot(const char *model, size_t len);
static bool pricing_digits(const char *s, size_t n);
static int pricing_part(uint64_t tokens, uint64_t price, uint64_t *whole, uint64_t *frac);


int
sl_pricing_load(const char *path, sl_pool_t *pool, sl_pricing_t **out, char *err, size_t errlen)
{
    pricing_load_t ld;
    int rc;

    ld.pricing = sl_pcalloc(pool, sizeof(sl_pricing_t));
    rc = sl_conf_parse_file(path, pool, pricing_parse_root, &ld, err, errlen);
    if (rc != 0) {
        return rc;
    }
    *out = ld.pricing;
    return 0;
}


size_t
sl_pricing_count(const sl_pricing_t *p)
{
    return p != NULL ? p->nprices : 0;
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
    uint64_t whole = 0, frac = 0, uncached = 0, cost;

    if (u->cached_tokens <= u->prompt_tokens
        && u->cache_write_tokens <= u->prompt_tokens - u->cached_tokens) {
        uncached = u->prompt_tokens - u->cached_tokens - u->cache_write_tokens;
    }
    if (pricing_part(uncached, price->input, &whole, &frac) != 0
        || pricing_part(u->cached_tokens, price->cached_input, &whole, &frac) != 0
        || pricing_part(u->cache_write_tokens, price->cache_write, &whole, &frac) != 0
        || pricing_part(u->completion_tokens, price->output, &whole, &frac) != 0) {
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
sl_pricing_estimate(const sl_pricing_t *p, const char *provider_name, const char *provider_kind,
                    const char *model, size_t prompt_bytes, uint64_t max_tokens)
{
    const sl_price_t *price = sl_pricing_find(p, provider_name, provider_kind, model);
    sl_usage_t u;
    uint64_t nusd;

    if (price == NULL) {
        return 0;
    }
    memset(&u, 0, sizeof(u));
    /* about 4 bytes of text per token, rounded up: an estimate must not be low */
    u.prompt_tokens = (uint64_t) (prompt_bytes / 4 + (prompt_bytes % 4 != 0 ? 1 : 0));
    u.completion_tokens = max_tokens != 0 ? max_tokens : SL_PRICING_DEFAULT_COMPLETION;
    if (sl_price_cost(price, &u, &nusd) != 0) {
        return UINT64_MAX;
    }
    return nusd;
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


char *
sl_pricing_format_usd(uint64_t nusd, char *buf, size_t size)
{
    /* by hand, not printf: every traced request and JSON log line formats one */
    char tmp[32];
    char *e = tmp + sizeof(tmp);
    uint64_t whole = nusd / SL_NUSD_PER_USD, frac = nusd % SL_NUSD_PER_USD;
    size_t n = 9, len;

    while (n > 6 && frac % 10 == 0) {
        frac /= 10;
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        *--e = (char) ('0' + frac % 10);
        frac /= 10;
    }
    *--e = '.';
    do {
        *--e = (char) ('0' + whole % 10);
        whole /= 10;
    } while (whole > 0);
    len = (size_t) (tmp + sizeof(tmp) - e);
    if (size > 0) {
        len = len < size - 1 ? len : size - 1;
        memcpy(buf, e, len);
        buf[len] = '\0';
    }
    return buf;
}


static int
pricing_parse_root(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg)
{
    pricing_load_t *ld = arg;
    sl_pricing_t *p = ld->pricing;
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
    p->prices = sl_pcalloc(sl_conf_pool(cx), (n > 0 ? n : 1) * sizeof(sl_price_t));
    for (size_t i = 0; i < n; i++) {
        if (sl_conf_map_pair(cx, models, i, &key, &val) != 0
            || pricing_parse_model(cx, key, val, &p->prices[i]) != 0) {
            return SL_ECONF;
        }
    }
    p->nprices = n;
    qsort(p->prices, n, sizeof(sl_price_t), pricing_cmp);
    return sl_conf_check_unknown(cx, root, NULL);
}


static int
pricing_parse_model(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *val,
                    sl_price_t *price)
{
    const sl_conf_node_t *n;
    const char *k, *s;
    size_t klen;
    bool found, has_input;

    k = sl_conf_node_str(key, &klen);
    if (k == NULL || !pricing_valid_key(k, klen)) {
        return sl_conf_errorf(cx, key, "invalid model key \"%s\" (use PROVIDER/MODEL or */MODEL)",
                              k != NULL ? k : "");
    }
    price->key = sl_pstrndup(sl_conf_pool(cx), k, klen);
    if (val == NULL || !sl_conf_node_is_map(val)) {
        return sl_conf_errorf(cx, val != NULL ? val : key,
                              "prices of %s must be a mapping like {input: 0.15, output: 0.60}",
                              price->key);
    }

    if (pricing_parse_price(cx, val, "input", price->key, &price->input, &has_input) != 0
        || pricing_parse_price(cx, val, "output", price->key, &price->output, &found) != 0) {
        return SL_ECONF;
    }
    if (!has_input) {
        return sl_conf_errorf(cx, key, "%s has no input price", price->key);
    }
    /* without a cache price, cache tokens cost what any prompt token costs */
    price->cached_input = price->input;
    price->cache_write = price->input;
    if (pricing_parse_price(cx, val, "cached_input", price->key, &price->cached_input, &found) != 0
        || pricing_parse_price(cx, val, "cache_write", price->key, &price->cache_write, &found)
               != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, val, "checked");
    if (n != NULL) {
        s = sl_conf_node_str(n, NULL);
        if (s == NULL || pricing_parse_date(s, &price->checked) != 0) {
            return sl_conf_errorf(cx, n, "invalid date \"%s\" for checked of %s (use YYYY-MM-DD)",
                                  s != NULL ? s : "", price->key);
        }
    }
    return sl_conf_check_unknown(cx, val, price->key);
}


static int
pricing_parse_price(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *field,
                    const char *model, uint64_t *out, bool *found)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, field);
    const char *s;

    *found = false;
    if (n == NULL) {
        return 0;
    }
    s = sl_conf_node_str(n, NULL);
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
    *found = true;
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


/* PREFIX/MODEL: a non-empty prefix without '/', a non-empty model, no blanks or controls. */
static bool
pricing_valid_key(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);

    if (slash == NULL || slash == s || slash == s + len - 1 || len >= PRICING_KEY_MAX) {
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
    char key[PRICING_KEY_MAX];
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
