/*
 * libFuzzer target for the pricing loader (core/pricing.c over the YAML
 * reader of core/conf.c): the input is written to a file and loaded as the
 * file `pricing:` names, then every model the input mentions as a key is
 * looked up and priced for a few usages, from none to absurd.
 *
 * Beyond "no crash, no sanitizer report, no leak" it checks: a failure
 * returns SL_ECONF or -errno with one line of message; a loaded price is
 * never above SL_PRICE_MAX; sl_pricing_cost answers 0, SL_ENOTFOUND or
 * SL_ETOOBIG, agrees with sl_price_cost on the price sl_pricing_find gave,
 * and never falls when a usage gains tokens; sl_pricing_format_usd writes a
 * decimal that reads back as the same amount.
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_pricing
 *   build-fuzz/test/fuzz/fuzz_pricing -max_total_time=60 test/fuzz/corpus/pricing
 * or everything at once: scripts/fuzz.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/gateway/pricing.h"
#include "providers/provider.h"

#define FUZZ_MAX_KEYS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok, const char *what);
static void fuzz_init(void);
static void fuzz_cleanup(void);
static size_t fuzz_keys(const uint8_t *data, size_t size, char keys[][128], size_t max);
static void fuzz_price(const sl_pricing_t *p, const char *key);
static void fuzz_check_usd(uint64_t nusd);

static char fuzz_path[64];

/*
 * Usages 0..3 only grow (nothing; then one more completion token; then one
 * more uncached prompt token), so their costs must not fall; then more
 * cached than prompt tokens, and counts that overflow.
 */
static const sl_usage_t fuzz_usages[] = {
    { .known = true },
    { .known = true,
      .prompt_tokens = 1000,
      .completion_tokens = 500,
      .cached_tokens = 800,
      .cache_write_tokens = 100 },
    { .known = true,
      .prompt_tokens = 1000,
      .completion_tokens = 501,
      .cached_tokens = 800,
      .cache_write_tokens = 100 },
    { .known = true,
      .prompt_tokens = 1001,
      .completion_tokens = 501,
      .cached_tokens = 800,
      .cache_write_tokens = 100 },
    { .known = true, .prompt_tokens = 10, .cached_tokens = 20, .cache_write_tokens = 30 },
    { .known = true, .prompt_tokens = UINT32_MAX, .completion_tokens = UINT32_MAX },
    { .known = true, .prompt_tokens = UINT64_MAX / 2, .completion_tokens = UINT64_MAX / 2 },
};


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_pricing: check failed: %s\n", what);
        abort();
    }
}


static void
fuzz_cleanup(void)
{
    unlink(fuzz_path);
}


static void
fuzz_init(void)
{
    int fd;

    sl_log_open("stderr", SL_LOG_CRIT);
    snprintf(fuzz_path, sizeof(fuzz_path), "/tmp/sl-fuzz-pricing-XXXXXX");
    fd = mkstemp(fuzz_path);
    fuzz_check(fd >= 0, "mkstemp");
    close(fd);
    atexit(fuzz_cleanup);
}


/* Words of the input that look like table keys ("a/b", "*" "/b"), at most max. */
static size_t
fuzz_keys(const uint8_t *data, size_t size, char keys[][128], size_t max)
{
    size_t n = 0;
    size_t i = 0;

    while (i < size && n < max) {
        size_t start;
        size_t len;

        while (i < size && (data[i] <= ' ' || strchr("{}:,\"'[]#", data[i]) != NULL)) {
            i++;
        }
        start = i;
        while (i < size && data[i] > ' ' && strchr("{}:,\"'[]#", data[i]) == NULL) {
            i++;
        }
        len = i - start;
        if (len > 2 && len < 128 && memchr(data + start, '/', len) != NULL) {
            memcpy(keys[n], data + start, len);
            keys[n][len] = '\0';
            n++;
        }
    }
    return n;
}


static void
fuzz_check_usd(uint64_t nusd)
{
    char buf[32];
    uint64_t micro;
    char *dot;

    sl_pricing_format_usd(nusd, buf, sizeof(buf));
    dot = strchr(buf, '.');
    fuzz_check(dot != NULL && strlen(dot + 1) >= 6 && strlen(dot + 1) <= 9, "USD decimals");
    /* whole micro-USD read back exactly */
    if (nusd % 1000 == 0 && nusd / 1000 <= SL_PRICE_MAX) {
        dot[7] = '\0';
        fuzz_check(sl_pricing_parse_usd(buf, &micro) == 0 && micro == nusd / 1000,
                   "format_usd does not read back");
    }
}


/* Looks key up as the table would be asked, and prices every usage. */
static void
fuzz_price(const sl_pricing_t *p, const char *key)
{
    const char *slash = strchr(key, '/');
    char prefix[128];
    const char *model = slash + 1;
    const sl_price_t *price;
    uint64_t last = 0;

    memcpy(prefix, key, (size_t) (slash - key));
    prefix[slash - key] = '\0';
    price = sl_pricing_find(p, prefix, "openai", model);
    if (price != NULL) {
        const sl_price_rates_t *r[2] = { &price->rates, &price->long_rates };

        for (int j = 0; j < 2; j++) {
            fuzz_check(r[j]->input <= SL_PRICE_MAX && r[j]->output <= SL_PRICE_MAX
                           && r[j]->cached_input <= SL_PRICE_MAX
                           && r[j]->cache_write <= SL_PRICE_MAX
                           && r[j]->cache_write_1h <= SL_PRICE_MAX,
                       "a price above SL_PRICE_MAX");
        }
    }
    for (size_t i = 0; i < sizeof(fuzz_usages) / sizeof(fuzz_usages[0]); i++) {
        uint64_t nusd = 0;
        uint64_t direct = 0;
        int rc = sl_pricing_cost(p, prefix, "openai", model, &fuzz_usages[i], &nusd);

        fuzz_check(rc == 0 || rc == SL_ENOTFOUND || rc == SL_ETOOBIG, "sl_pricing_cost code");
        fuzz_check((rc == SL_ENOTFOUND) == (price == NULL), "cost and find disagree");
        if (price != NULL) {
            int rc2 = sl_price_cost(price, &fuzz_usages[i], &direct);

            fuzz_check(rc2 == rc && (rc != 0 || direct == nusd), "sl_price_cost disagrees");
        }
        if (rc == 0) {
            fuzz_check_usd(nusd);
            /* usages 0..3 only grow (unless a long-context tier starts between two) */
            if (i <= 3
                && (i == 0 || price->above == 0
                    || !(fuzz_usages[i - 1].prompt_tokens <= price->above
                         && fuzz_usages[i].prompt_tokens > price->above))) {
                fuzz_check(nusd >= last, "a larger usage cost less");
                last = nusd;
            }
        }
        (void) sl_pricing_estimate(p, prefix, "openai", model,
                                   (size_t) fuzz_usages[i].prompt_tokens * 4,
                                   fuzz_usages[i].completion_tokens);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char keys[FUZZ_MAX_KEYS][128];
    char err[1024];
    sl_pricing_t *p = NULL;
    sl_pool_t *pool;
    FILE *f;
    size_t nkeys;
    int rc;

    if (fuzz_path[0] == '\0') {
        fuzz_init();
    }
    f = fopen(fuzz_path, "w");
    fuzz_check(f != NULL, "fopen");
    fuzz_check(fwrite(data, 1, size, f) == size, "fwrite");
    fuzz_check(fclose(f) == 0, "fclose");

    pool = sl_pool_create(4096);
    memset(err, 'x', sizeof(err));
    rc = sl_pricing_load(fuzz_path, pool, &p, err, sizeof(err));
    if (rc < 0) {
        fuzz_check(rc == SL_ECONF || rc > -4096, "unexpected return code");
        fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "message not NUL-terminated");
        fuzz_check(err[0] != '\0' && strchr(err, '\n') == NULL, "message not one line");
        sl_pool_destroy(pool);
        return 0;
    }
    fuzz_check(p != NULL, "success without a table");
    nkeys = fuzz_keys(data, size, keys, FUZZ_MAX_KEYS);
    for (size_t i = 0; i < nkeys; i++) {
        fuzz_price(p, keys[i]);
    }
    fuzz_price(p, "openai/gpt-4o-mini-2024-07-18");
    (void) sl_pricing_count(p);
    sl_pool_destroy(pool);
    return 0;
}
