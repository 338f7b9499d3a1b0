/*
 * Unit tests for core/gateway/pricing.c: exact decimal parsing, the USD formatter,
 * the cost arithmetic (cached and cache-write tokens, rounding, overflow),
 * the lookup order (provider name, kind, "*", snapshot suffixes), the
 * reservation estimate, every validation error with its file:line:col, the
 * reference etc/pricing.yaml, and loading through sl_conf_load(); 1-hour
 * cache writes and long-context tiers; LiteLLM's JSON table (exact number
 * text, the provider mapping, skipped entries with their line) and a list
 * of files where the later one wins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/gateway/pricing.h"
#include "providers/registry.h"

#define TEST_ERR_MAX 1024

typedef struct test_error {
    const char *yaml;
    const char *msg; /* after "FILE:" */
} test_error_t;

static char *tmp_write(const char *text);
static int load(const char *yaml, sl_pool_t *pool, sl_pricing_t **out, char *err, size_t errlen);
static sl_pricing_t *load_ok(const char *yaml, sl_pool_t *pool);
static void expect_error(const char *yaml, const char *msg);
static sl_usage_t usage(uint64_t prompt, uint64_t completion, uint64_t cached, uint64_t write);
static uint64_t cost_of(const sl_pricing_t *p, const char *name, const char *kind,
                        const char *model, sl_usage_t u);
static const char *reference_path(char *buf, size_t size);
static char *tmp_write_ext(const char *text, const char *ext);

static char last_path[64];


static char *
tmp_write(const char *text)
{
    char *path = strdup("/tmp/sl-pricing-XXXXXX");
    size_t len = strlen(text);
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    assert_int_equal(close(fd), 0);
    return path;
}


/* As tmp_write, the name ending in ext (".json"): beside a unique name mkstemp made. */
static char *
tmp_write_ext(const char *text, const char *ext)
{
    char *base = tmp_write("");
    char *path = malloc(strlen(base) + strlen(ext) + 1);
    size_t len = strlen(text);
    int fd;

    assert_non_null(path);
    strcpy(path, base);
    strcat(path, ext);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    assert_int_equal(close(fd), 0);
    unlink(base);
    free(base);
    return path;
}


static int
load(const char *yaml, sl_pool_t *pool, sl_pricing_t **out, char *err, size_t errlen)
{
    char *path = tmp_write(yaml);
    int rc;

    snprintf(last_path, sizeof(last_path), "%s", path);
    rc = sl_pricing_load(path, pool, out, err, errlen);
    unlink(path);
    free(path);
    return rc;
}


static sl_pricing_t *
load_ok(const char *yaml, sl_pool_t *pool)
{
    char err[TEST_ERR_MAX];
    sl_pricing_t *p = NULL;
    int rc = load(yaml, pool, &p, err, sizeof(err));

    if (rc != 0) {
        fail_msg("load failed (%s): %s", sl_strerror(rc), err);
    }
    assert_non_null(p);
    return p;
}


static void
expect_error(const char *yaml, const char *msg)
{
    char err[TEST_ERR_MAX], want[TEST_ERR_MAX + 64];
    sl_pool_t *pool = sl_pool_create(0);
    sl_pricing_t *p = NULL;
    int rc;

    rc = load(yaml, pool, &p, err, sizeof(err));
    snprintf(want, sizeof(want), "%s:%s", last_path, msg);
    if (rc != SL_ECONF || strcmp(err, want) != 0) {
        fail_msg("yaml:\n%s\nrc %d (%s)\nwant: %s\ngot:  %s", yaml, rc, sl_strerror(rc), want, err);
    }
    sl_pool_destroy(pool);
}


static sl_usage_t
usage(uint64_t prompt, uint64_t completion, uint64_t cached, uint64_t write)
{
    sl_usage_t u;

    memset(&u, 0, sizeof(u));
    u.prompt_tokens = prompt;
    u.completion_tokens = completion;
    u.cached_tokens = cached;
    u.cache_write_tokens = write;
    u.known = true;
    return u;
}


static uint64_t
cost_of(const sl_pricing_t *p, const char *name, const char *kind, const char *model, sl_usage_t u)
{
    uint64_t nusd = 12345;
    int rc = sl_pricing_cost(p, name, kind, model, &u, &nusd);

    if (rc != 0) {
        fail_msg("sl_pricing_cost(%s, %s, %s): %s", name != NULL ? name : "-",
                 kind != NULL ? kind : "-", model, sl_strerror(rc));
    }
    return nusd;
}


static const char *
reference_path(char *buf, size_t size)
{
    const char *srcdir = getenv("SL_TEST_SRCDIR");
    char cwd[PATH_MAX];

    if (srcdir == NULL) {
        srcdir = "test";
    }
    if (srcdir[0] == '/') {
        snprintf(buf, size, "%s/../etc/pricing.yaml", srcdir);
    } else {
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        snprintf(buf, size, "%s/%s/../etc/pricing.yaml", cwd, srcdir);
    }
    return buf;
}


static void
test_parse_usd(void **state)
{
    static const struct {
        const char *s;
        uint64_t micro;
    } ok[] = {
        { "0", 0 },
        { "0.075", 75000 },
        { "0.15", 150000 },
        { "0.60", 600000 },
        { "1.25", 1250000 },
        { "15", 15000000 },
        { "18.75", 18750000 },
        { "0.000001", 1 },
        { "0.0750000", 75000 },
        { "007.5", 7500000 },
        { "1000000", 1000000000000ULL },
        { "1000000.000000", 1000000000000ULL },
        { "999999.999999", 999999999999ULL },
    };
    static const char *const bad[] = {
        "",
        "-1",
        "+1",
        "1e-3",
        ".5",
        "5.",
        "0.0000001",
        "1,5",
        " 1",
        "1 ",
        "1.2.3",
        "abc",
        "NaN",
        "0x10",
        "1000001",
        "1000000.000001",
        "99999999999999999999999",
        "1.5e2",
        "inf",
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 42;
        if (sl_pricing_parse_usd(ok[i].s, &v) != 0 || v != ok[i].micro) {
            fail_msg("\"%s\": got %llu, want %llu", ok[i].s, (unsigned long long) v,
                     (unsigned long long) ok[i].micro);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_pricing_parse_usd(bad[i], &v) != SL_EPARSE) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
    }
}


static void
test_format_usd(void **state)
{
    char buf[32];

    assert_string_equal(sl_pricing_format_usd(0, buf, sizeof(buf)), "0.000000");
    assert_string_equal(sl_pricing_format_usd(150000000, buf, sizeof(buf)), "0.150000");
    assert_string_equal(sl_pricing_format_usd(150, buf, sizeof(buf)), "0.00000015");
    assert_string_equal(sl_pricing_format_usd(1, buf, sizeof(buf)), "0.000000001");
    assert_string_equal(sl_pricing_format_usd(1000, buf, sizeof(buf)), "0.000001");
    assert_string_equal(sl_pricing_format_usd(12345678901ULL, buf, sizeof(buf)), "12.345678901");
    assert_string_equal(sl_pricing_format_usd(7 * SL_NUSD_PER_USD, buf, sizeof(buf)), "7.000000");
    assert_string_equal(sl_pricing_format_usd(UINT64_MAX, buf, sizeof(buf)),
                        "18446744073.709551615");
}


/* The arithmetic of one request, by hand, in nano-USD. */
static void
test_cost(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_pricing_t *p;
    sl_usage_t u;
    uint64_t nusd;

    p = load_ok("models:\n"
                "  anthropic/sonnet: {input: 3.00, output: 15.00, cached_input: 0.30,"
                " cache_write: 3.75}\n"
                "  openai/mini: {input: 0.15, output: 0.60, cached_input: 0.075}\n"
                "  openai/plain: {input: 2, output: 8}\n"
                "  openai/embed: {input: 0.02}\n"
                "  local/tiny: {input: 0.000001, output: 0.000001}\n"
                "  local/free: {input: 0, output: 0}\n",
                pool);
    assert_int_equal(sl_pricing_count(p), 6);

    /*
     * 700 uncached x 3 USD/M = 2100000, 200 cached x 0.30 = 60000,
     * 100 written x 3.75 = 375000, 500 out x 15 = 7500000 nano-USD
     */
    assert_int_equal(cost_of(p, "anthropic", "anthropic", "sonnet", usage(1000, 500, 200, 100)),
                     10035000);
    /* 1M in + 1M out of gpt-4o-mini-like prices: 0.75 USD exactly */
    assert_int_equal(cost_of(p, "openai", "openai", "mini", usage(1000000, 1000000, 0, 0)),
                     750000000);
    /* cached at 0.075: 1M cached prompt tokens cost 0.075 USD */
    assert_int_equal(cost_of(p, "openai", "openai", "mini", usage(1000000, 0, 1000000, 0)),
                     75000000);
    /* one token of each: 150 + 600 nano-USD, 75 for a cached one */
    assert_int_equal(cost_of(p, "openai", "openai", "mini", usage(1, 1, 0, 0)), 750);
    assert_int_equal(cost_of(p, "openai", "openai", "mini", usage(1, 0, 1, 0)), 75);
    /* no cache prices: cached and written tokens cost what input costs */
    assert_int_equal(cost_of(p, "openai", "openai", "plain", usage(1000, 0, 400, 100)), 2000000);
    /* embeddings: no output price */
    assert_int_equal(cost_of(p, "openai", "openai", "embed", usage(12345, 0, 0, 0)), 246900);
    assert_int_equal(cost_of(p, "local", "openai", "free", usage(99999, 99999, 0, 0)), 0);

    /* rounding: 1 pico-USD per token, summed over the parts, rounded once, half up */
    assert_int_equal(cost_of(p, "local", NULL, "tiny", usage(499, 0, 0, 0)), 0);
    assert_int_equal(cost_of(p, "local", NULL, "tiny", usage(500, 0, 0, 0)), 1);
    assert_int_equal(cost_of(p, "local", NULL, "tiny", usage(250, 250, 0, 0)), 1);
    assert_int_equal(cost_of(p, "local", NULL, "tiny", usage(1499, 0, 0, 0)), 1);
    assert_int_equal(cost_of(p, "local", NULL, "tiny", usage(1500, 0, 0, 0)), 2);
    /* 0.075 USD/M is 75 nano-USD per token */
    assert_int_equal(cost_of(p, "openai", "openai", "mini", usage(7, 0, 7, 0)), 525);

    /* the provider claims more cached than prompt tokens: uncached is 0, never negative */
    assert_int_equal(cost_of(p, "anthropic", "anthropic", "sonnet", usage(10, 0, 20, 5)),
                     20 * 300 + 5 * 3750);

    /* absurd counts do not wrap */
    u = usage(UINT64_MAX, 0, 0, 0);
    assert_int_equal(sl_pricing_cost(p, "openai", "openai", "plain", &u, &nusd), SL_ETOOBIG);
    u = usage(0, UINT64_MAX / 1000, 0, 0);
    assert_int_equal(sl_pricing_cost(p, "openai", "openai", "plain", &u, &nusd), SL_ETOOBIG);
    /* the largest count that fits: 2^64-1 tokens at 1 pico each */
    u = usage(UINT64_MAX, 0, 0, 0);
    assert_int_equal(sl_pricing_cost(p, "local", NULL, "tiny", &u, &nusd), 0);
    assert_int_equal(nusd, UINT64_MAX / 1000 + 1);

    /* unpriced */
    u = usage(1, 1, 0, 0);
    nusd = 7;
    assert_int_equal(sl_pricing_cost(p, "openai", "openai", "gpt-9", &u, &nusd), SL_ENOTFOUND);
    assert_int_equal(nusd, 7);
    assert_int_equal(sl_pricing_cost(NULL, "openai", "openai", "mini", &u, &nusd), SL_ENOTFOUND);

    sl_pool_destroy(pool);
}


static void
test_lookup(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    const sl_price_t *pr;
    sl_pricing_t *p;

    p = load_ok("models:\n"
                "  openai/gpt-4o: {input: 2.50, output: 10}\n"
                "  openai/gpt-4o-2024-05-13: {input: 5, output: 15}\n"
                "  azure-east/gpt-4o: {input: 2.75, output: 11}\n"
                "  '*/llama3.2': {input: 0, output: 0}\n"
                "  anthropic/claude-haiku-4-5: {input: 1, output: 5}\n"
                "  anthropic/claude-3-5-haiku: {input: 0.8, output: 4}\n"
                "  vendor/org/model: {input: 1}\n",
                pool);

    /* name first, then kind */
    pr = sl_pricing_find(p, "azure-east", "openai", "gpt-4o");
    assert_non_null(pr);
    assert_string_equal(pr->key, "azure-east/gpt-4o");
    assert_int_equal(pr->rates.input, 2750000);
    pr = sl_pricing_find(p, "azure-west", "openai", "gpt-4o");
    assert_non_null(pr);
    assert_string_equal(pr->key, "openai/gpt-4o");
    pr = sl_pricing_find(p, NULL, "openai", "gpt-4o");
    assert_non_null(pr);
    assert_string_equal(pr->key, "openai/gpt-4o");
    assert_null(sl_pricing_find(p, "openai", NULL, "gpt-4o-mini"));

    /* then "*" */
    pr = sl_pricing_find(p, "local", "openai", "llama3.2");
    assert_non_null(pr);
    assert_string_equal(pr->key, "*/llama3.2");
    pr = sl_pricing_find(p, NULL, NULL, "llama3.2");
    assert_non_null(pr);

    /* snapshots: an exact line wins, else the base name */
    pr = sl_pricing_find(p, "openai", "openai", "gpt-4o-2024-05-13");
    assert_non_null(pr);
    assert_int_equal(pr->rates.input, 5000000);
    pr = sl_pricing_find(p, "openai", "openai", "gpt-4o-2024-08-06");
    assert_non_null(pr);
    assert_string_equal(pr->key, "openai/gpt-4o");
    pr = sl_pricing_find(p, "anthropic", "anthropic", "claude-haiku-4-5-20251001");
    assert_non_null(pr);
    assert_string_equal(pr->key, "anthropic/claude-haiku-4-5");
    pr = sl_pricing_find(p, "anthropic", "anthropic", "claude-3-5-haiku-latest");
    assert_non_null(pr);
    assert_string_equal(pr->key, "anthropic/claude-3-5-haiku");
    assert_null(sl_pricing_find(p, "anthropic", "anthropic", "claude-3-5-haiku-2024"));
    assert_null(sl_pricing_find(p, "openai", "openai", "gpt-4o-2024-13"));
    assert_null(sl_pricing_find(p, "openai", "openai", "-latest"));

    /* models with slashes: the first slash splits the key */
    pr = sl_pricing_find(p, "vendor", NULL, "org/model");
    assert_non_null(pr);
    assert_int_equal(pr->rates.output, 0);

    /* no partial matches */
    assert_null(sl_pricing_find(p, "openai", "openai", "gpt-4"));
    assert_null(sl_pricing_find(p, "openai", "openai", "gpt-4o-mini"));
    assert_null(sl_pricing_find(p, "openai", "openai", ""));
    assert_null(sl_pricing_find(NULL, "openai", "openai", "gpt-4o"));

    sl_pool_destroy(pool);
}


static void
test_estimate(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_pricing_t *p;

    p = load_ok("models:\n"
                "  openai/m: {input: 1, output: 2}\n"
                "  openai/huge: {input: 1000000, output: 1000000}\n",
                pool);

    /* 10 bytes -> 3 prompt tokens (rounded up) x 1000 + 100 x 2000 */
    assert_int_equal(sl_pricing_estimate(p, "openai", "openai", "m", 10, 100), 3000 + 200000);
    assert_int_equal(sl_pricing_estimate(p, "openai", "openai", "m", 8, 100), 2000 + 200000);
    /* no max_tokens: the documented default of 1024 */
    assert_int_equal(sl_pricing_estimate(p, "openai", "openai", "m", 0, 0),
                     SL_PRICING_DEFAULT_COMPLETION * 2000);
    /* unpriced: nothing to reserve */
    assert_int_equal(sl_pricing_estimate(p, "openai", "openai", "other", 4000, 100), 0);
    assert_int_equal(sl_pricing_estimate(NULL, "openai", "openai", "m", 4000, 100), 0);
    /* absurd max_tokens saturates instead of wrapping */
    assert_true(sl_pricing_estimate(p, "openai", "openai", "huge", 0, UINT64_MAX / 2)
                == UINT64_MAX);

    sl_pool_destroy(pool);
}


static void
test_errors(void **state)
{
    static const test_error_t t[] = {
        { "", "1:1: the pricing file is empty (expected a models: mapping)" },
        { "# nothing\n", "1:1: the pricing file is empty (expected a models: mapping)" },
        { "[1]\n", "1:1: the pricing file must be a mapping" },
        { "currency: USD\n", "1:1: missing models: mapping" },
        { "models: {}\nextra: 1\n", "2:1: unknown key \"extra\"" },
        { "models: 1\n", "1:9: models must be a mapping of PROVIDER/MODEL to prices" },
        { "models: [a/b]\n", "1:9: models must be a mapping of PROVIDER/MODEL to prices" },
        { "models:\n  gpt-4o: {input: 1}\n",
          "2:3: invalid model key \"gpt-4o\" (use PROVIDER/MODEL or */MODEL)" },
        { "models:\n  /gpt-4o: {input: 1}\n",
          "2:3: invalid model key \"/gpt-4o\" (use PROVIDER/MODEL or */MODEL)" },
        { "models:\n  openai/: {input: 1}\n",
          "2:3: invalid model key \"openai/\" (use PROVIDER/MODEL or */MODEL)" },
        { "models:\n  \"openai/gpt 4\": {input: 1}\n",
          "2:3: invalid model key \"openai/gpt 4\" (use PROVIDER/MODEL or */MODEL)" },
        { "models:\n  a/b: 1\n",
          "2:8: prices of a/b must be a mapping like {input: 0.15, output: 0.60}" },
        { "models:\n  a/b:\n",
          "2:3: prices of a/b must be a mapping like {input: 0.15, output: 0.60}" },
        { "models:\n  a/b: {output: 1}\n", "2:3: a/b has no input price" },
        { "models:\n  a/b: {input: -1}\n", "2:16: input of a/b must not be negative" },
        { "models:\n  a/b: {input: 1, output: -0.5}\n",
          "2:27: output of a/b must not be negative" },
        { "models:\n  a/b: {input: 0.1234567}\n",
          "2:16: invalid price \"0.1234567\" for input of a/b (USD per 1M tokens, at most 6 "
          "decimals, e.g. 0.15)" },
        { "models:\n  a/b: {input: 1e-6}\n",
          "2:16: invalid price \"1e-6\" for input of a/b (USD per 1M tokens, at most 6 "
          "decimals, e.g. 0.15)" },
        { "models:\n  a/b: {input: $1}\n",
          "2:16: invalid price \"$1\" for input of a/b (USD per 1M tokens, at most 6 "
          "decimals, e.g. 0.15)" },
        { "models:\n  a/b: {input: 1, cached_input: abc}\n",
          "2:33: invalid price \"abc\" for cached_input of a/b (USD per 1M tokens, at most 6 "
          "decimals, e.g. 0.15)" },
        { "models:\n  a/b: {input: 1, cache_write: 2000000}\n",
          "2:32: invalid price \"2000000\" for cache_write of a/b (USD per 1M tokens, at most 6 "
          "decimals, e.g. 0.15)" },
        { "models:\n  a/b: {input: 1, output: [1]}\n", "2:27: output of a/b must be a number" },
        { "models:\n  a/b: {input: 1, price: 2}\n", "2:19: unknown key \"price\" in a/b" },
        { "models:\n  a/b: {input: 1, checked: 2026-13-01}\n",
          "2:28: invalid date \"2026-13-01\" for checked of a/b (use YYYY-MM-DD)" },
        { "models:\n  a/b: {input: 1, checked: 2026-02-30}\n",
          "2:28: invalid date \"2026-02-30\" for checked of a/b (use YYYY-MM-DD)" },
        { "models:\n  a/b: {input: 1, checked: 2025-02-29}\n",
          "2:28: invalid date \"2025-02-29\" for checked of a/b (use YYYY-MM-DD)" },
        { "models:\n  a/b: {input: 1, checked: 26-01-01}\n",
          "2:28: invalid date \"26-01-01\" for checked of a/b (use YYYY-MM-DD)" },
        { "models:\n  a/b: {input: 1, checked: 2026/01/01}\n",
          "2:28: invalid date \"2026/01/01\" for checked of a/b (use YYYY-MM-DD)" },
        { "models:\n  a/b: {input: 1, checked: 1999-12-31}\n",
          "2:28: invalid date \"1999-12-31\" for checked of a/b (use YYYY-MM-DD)" },
        { "models:\n  a/b: {input: 1, checked: [2026-01-01]}\n",
          "2:28: invalid date \"\" for checked of a/b (use YYYY-MM-DD)" },
        { "models:\n  a/b: {input: 1}\n  a/b: {input: 2}\n", "3:3: duplicate key \"a/b\"" },
        { "models:\n  a/b: {input: 1\n",
          "3:1: syntax error: did not find expected ',' or '}' (while parsing a flow mapping at "
          "line 2, column 8)" },
        { "models: {}\n---\nmodels: {}\n", "2:1: only one YAML document is allowed" },
        { "models:\n  a/b: {input: 1, above_200: {input: 2}}\n",
          "2:19: invalid key \"above_200\" in a/b (a long-context tier is above_<N>k, e.g. "
          "above_200k)" },
        { "models:\n  a/b: {input: 1, above_0k: {input: 2}}\n",
          "2:19: invalid key \"above_0k\" in a/b (a long-context tier is above_<N>k, e.g. "
          "above_200k)" },
        { "models:\n  a/b: {input: 1, above_200k: 2}\n",
          "2:31: above_200k of a/b must be a mapping like {input: 6, output: 22.5}" },
        { "models:\n  a/b: {input: 1, above_200k: {inputs: 2}}\n",
          "2:32: unknown key \"inputs\" in above_200k of a/b" },
        { "models:\n  a/b: {input: 1, above_200k: {input: x}}\n",
          "2:39: invalid price \"x\" for above_200k.input of a/b (USD per 1M tokens, at most 6 "
          "decimals, e.g. 0.15)" },
        { "models:\n  a/b: {input: 2, above_200k: {input: 1}}\n",
          "2:19: the long-context prices of a/b must not be below its own" },
        { "models:\n  a/b: {input: 1, above_128k: {input: 2}, above_200k: {input: 3}}\n",
          "2:43: a/b has more than one long-context tier" },
        { "models:\n  a/b: {input: 1, cache_write_1h: -6}\n",
          "2:35: cache_write_1h of a/b must not be negative" },
        { "models:\n  a/b: {input: 1, max_output: 0}\n",
          "2:31: invalid max_output \"0\" of a/b (tokens, 1 to 1000000000)" },
        { "models:\n  a/b: {input: 1, max_output: 1k}\n",
          "2:31: invalid max_output \"1k\" of a/b (tokens, 1 to 1000000000)" },
        { "models:\n  a/b: {input: 1, source: [x]}\n",
          "2:27: source of a/b must be a text of at most 256 bytes" },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        expect_error(t[i].yaml, t[i].msg);
    }
}


static void
test_valid_forms(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    const sl_price_t *pr;
    sl_pricing_t *p;

    p = load_ok("# comment\n"
                "models:\n"
                "  a/leap: {input: \"0.5\", checked: 2024-02-29}\n"
                "  a/block:\n"
                "    input: 1\n"
                "    output: 2.000001\n"
                "    cached_input: 0\n"
                "    checked: '2026-11-21'\n"
                "  a/nulls: {input: 1, output: ~, checked: }\n",
                pool);
    assert_int_equal(sl_pricing_count(p), 3);
    pr = sl_pricing_find(p, "a", NULL, "leap");
    assert_non_null(pr);
    assert_int_equal(pr->rates.input, 500000);
    assert_int_equal(pr->checked, 20240229);
    pr = sl_pricing_find(p, "a", NULL, "block");
    assert_non_null(pr);
    assert_int_equal(pr->rates.output, 2000001);
    assert_int_equal(pr->rates.cached_input, 0);
    assert_int_equal(pr->rates.cache_write, 1000000);
    assert_int_equal(pr->checked, 20261121);
    pr = sl_pricing_find(p, "a", NULL, "nulls");
    assert_non_null(pr);
    assert_int_equal(pr->rates.output, 0);
    assert_int_equal(pr->checked, 0);

    /* an empty table is allowed: every request is recorded unpriced */
    p = load_ok("models: {}\n", pool);
    assert_int_equal(sl_pricing_count(p), 0);
    assert_null(sl_pricing_find(p, "a", "b", "c"));

    sl_pool_destroy(pool);
}


static void
test_missing_file(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_pricing_t *p = NULL;
    char err[TEST_ERR_MAX];

    assert_int_equal(sl_pricing_load("/nonexistent/pricing.yaml", pool, &p, err, sizeof(err)),
                     -ENOENT);
    assert_string_equal(err,
                        "/nonexistent/pricing.yaml: open() failed (2: No such file or directory)");
    assert_null(p);
    sl_pool_destroy(pool);
}


/* The shipped table loads, and its numbers are the ones the header documents. */
static void
test_reference_table(void **state)
{
    static const char *const expected[] = {
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-4.1",
        "openai/gpt-4.1-mini",
        "openai/gpt-4.1-nano",
        "openai/o3",
        "openai/o4-mini",
        "openai/text-embedding-3-small",
        "openai/text-embedding-3-large",
        "anthropic/claude-opus-4-1",
        "anthropic/claude-sonnet-4-5",
        "anthropic/claude-haiku-4-5",
        "gemini/gemini-2.5-pro",
        "gemini/gemini-2.5-flash",
        "gemini/gemini-2.5-flash-lite",
        "gemini/gemini-embedding-001",
        "deepseek/deepseek-chat",
        "mistral/mistral-large-latest",
        "groq/llama-3.3-70b-versatile",
        "xai/grok-4",
    };
    sl_pool_t *pool = sl_pool_create(0);
    char path[PATH_MAX + 64], err[TEST_ERR_MAX];
    const sl_price_t *pr;
    sl_pricing_t *p = NULL;
    const char *slash;
    char prefix[32];
    int rc;

    rc = sl_pricing_load(reference_path(path, sizeof(path)), pool, &p, err, sizeof(err));
    if (rc != 0) {
        fail_msg("%s", err);
    }
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        slash = strchr(expected[i], '/');
        snprintf(prefix, sizeof(prefix), "%.*s", (int) (slash - expected[i]), expected[i]);
        pr = sl_pricing_find(p, NULL, prefix, slash + 1);
        if (pr == NULL) {
            fail_msg("%s is not priced", expected[i]);
        }
        if (pr->checked < 20250101) {
            fail_msg("%s has no checked date", expected[i]);
        }
        if (pr->rates.cached_input > pr->rates.input
            || (pr->rates.output != 0 && pr->rates.output < pr->rates.input)) {
            fail_msg("%s: implausible prices", expected[i]);
        }
    }
    pr = sl_pricing_find(p, "openai", "openai", "gpt-4o-mini-2024-07-18");
    assert_non_null(pr);
    assert_int_equal(pr->rates.input, 150000);
    assert_int_equal(pr->rates.cached_input, 75000);
    assert_int_equal(pr->rates.output, 600000);
    pr = sl_pricing_find(p, "anthropic", "anthropic", "claude-haiku-4-5-20251001");
    assert_non_null(pr);
    assert_int_equal(pr->rates.cache_write, 1250000);
    assert_int_equal(pr->rates.cached_input, 100000);
    /* generated by scripts/pricing-import: 1-hour writes at 2x input, the 200k tier, stamps */
    pr = sl_pricing_find(p, "anthropic", "anthropic", "claude-sonnet-4-5");
    assert_non_null(pr);
    assert_int_equal(pr->rates.cache_write_1h, 6000000);
    assert_int_equal(pr->above, 200000);
    assert_int_equal(pr->long_rates.input, 6000000);
    assert_int_equal(pr->long_rates.output, 22500000);
    assert_int_equal(pr->long_rates.cache_write_1h, 12000000);
    assert_int_equal(pr->max_output, 64000);
    assert_string_equal(pr->source, "litellm:claude-sonnet-4-5");
    assert_int_equal(pr->checked, 20260724);
    assert_true(pr->line > 0);
    for (size_t i = 0; i < sl_pricing_count(p); i++) {
        pr = sl_pricing_at(p, i);
        if (pr->checked == 0 || strncmp(pr->source, "litellm:", 8) != 0) {
            fail_msg("%s has no checked date or source", pr->key);
        }
    }
    assert_int_equal(sl_pricing_skipped(p), 0);
    sl_pool_destroy(pool);
}


/* LiteLLM's USD per token, from the number's text, into pico-USD per token. */
static void
test_parse_per_token(void **state)
{
    static const struct {
        const char *s;
        uint64_t pico;
    } ok[] = {
        { "3.75e-06", 3750000 },
        { "0.0000015", 1500000 },
        { "1.5E-7", 150000 },
        { "150e-9", 150000 },
        { "0.000000150000000", 150000 },
        { "1e-12", 1 },
        { "0", 0 },
        { "0.0", 0 },
        { "0e5", 0 },
        { "1", 1000000000000ULL },
        { "1e+0", 1000000000000ULL },
        { "0.5", 500000000000ULL },
        { "2.25e-05", 22500000 },
        { "1.2e-11", 12 },
    };
    static const char *const bad[] = {
        "",         "-1e-6", "-0",  "1.5e-13",      "0.0000029999900000000002",
        "1.000001", "2",     "1e1", "01",           ".5",
        "1.",       "1e",    "1e+", "+1",           "0x10",
        "1,5",      "\"1\"", "nan", "1e-999999999",
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 7;
        if (sl_pricing_parse_per_token(ok[i].s, strlen(ok[i].s), &v) != 0 || v != ok[i].pico) {
            fail_msg("%s: got %llu, want %llu", ok[i].s, (unsigned long long) v,
                     (unsigned long long) ok[i].pico);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_pricing_parse_per_token(bad[i], strlen(bad[i]), &v) != SL_EPARSE) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
    }
}


/* 1-hour cache writes at their own rate, and the long-context tier for the whole request. */
static void
test_cost_tiers(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    const sl_price_t *pr;
    sl_pricing_t *p;
    sl_usage_t u;

    p = load_ok("models:\n"
                "  anthropic/sonnet: {input: 3, output: 15, cached_input: 0.3, cache_write: 3.75,"
                " cache_write_1h: 6, above_200k: {input: 6, output: 22.5, cached_input: 0.6,"
                " cache_write: 7.5, cache_write_1h: 12}, max_output: 64000,"
                " source: \"negotiated 2026\"}\n"
                "  anthropic/old: {input: 3, output: 15, cache_write: 3.75}\n"
                "  gemini/pro: {input: 1.25, output: 10, above_200k: {input: 2.5}}\n",
                pool);

    /* 1000 written, 800 of them for 1 hour: 200 x 3.75 + 800 x 6, plus 100 uncached x 3 */
    u = usage(1100, 0, 0, 1000);
    u.cache_write_1h_tokens = 800;
    assert_int_equal(cost_of(p, "anthropic", "anthropic", "sonnet", u),
                     200 * 3750 + 800 * 6000 + 100 * 3000);
    /* the 5-minute rate would have been 16% less on the write part alone: not what is billed */
    /* no 1-hour price: a 1-hour write costs a 5-minute one */
    assert_int_equal(cost_of(p, "anthropic", "anthropic", "old", u), 1000 * 3750 + 100 * 3000);
    /* more 1-hour than written tokens counts as all written tokens */
    u.cache_write_1h_tokens = 5000;
    assert_int_equal(cost_of(p, "anthropic", "anthropic", "sonnet", u), 1000 * 6000 + 100 * 3000);

    /* 200000 prompt tokens: not above the threshold */
    u = usage(200000, 1000, 0, 0);
    assert_int_equal(cost_of(p, "anthropic", "anthropic", "sonnet", u),
                     200000ULL * 3000 + 1000 * 15000);
    /* 250000: every token at the tier's rates, output included */
    u = usage(250000, 1000, 50000, 10000);
    u.cache_write_1h_tokens = 4000;
    assert_int_equal(cost_of(p, "anthropic", "anthropic", "sonnet", u),
                     190000ULL * 6000 + 50000 * 600 + 6000 * 7500 + 4000 * 12000 + 1000 * 22500);
    /* a tier that names only input keeps the line's other rates */
    u = usage(250000, 1000, 0, 0);
    assert_int_equal(cost_of(p, "gemini", "gemini", "pro", u), 250000ULL * 2500 + 1000 * 10000);
    /* reasoning tokens are part of completion_tokens, priced as output, not twice */
    u = usage(10, 100, 0, 0);
    u.reasoning_tokens = 80;
    assert_int_equal(cost_of(p, "gemini", "gemini", "pro", u), 10 * 1250 + 100 * 10000);

    pr = sl_pricing_find(p, "anthropic", "anthropic", "sonnet");
    assert_non_null(pr);
    assert_int_equal(pr->max_output, 64000);
    assert_string_equal(pr->source, "negotiated 2026");
    assert_int_equal(pr->line, 2);
    assert_string_equal(pr->file, last_path);
    /* the estimate lands in the tier too: 1 MB of prompt is 250000 tokens */
    assert_int_equal(sl_price_estimate(pr, 1000000, 100), 250000ULL * 6000 + 100 * 22500);
    assert_int_equal(sl_price_estimate(pr, 400, 100), 100 * 3000 + 100 * 15000);

    sl_pool_destroy(pool);
}


static const char litellm_table[] =
    "{\n"
    "  \"sample_spec\": {\"litellm_provider\": \"one of https://docs.litellm.ai/docs/providers\",\n"
    "    \"input_cost_per_token\": 0.0, \"max_output_tokens\": \"max output tokens\"},\n"
    "  \"acme-large-1\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\",\n"
    "    \"input_cost_per_token\": 1.234567e-06, \"output_cost_per_token\": 0.000009876543,\n"
    "    \"cache_read_input_token_cost\": 1.2e-07, \"max_output_tokens\": 32000},\n"
    "  \"claude-acme\": {\"litellm_provider\": \"anthropic\", \"input_cost_per_token\": 3e-06,\n"
    "    \"output_cost_per_token\": 1.5e-05, \"cache_creation_input_token_cost\": 3.75e-06,\n"
    "    \"cache_creation_input_token_cost_above_1hr\": 6e-06, \"cache_read_input_token_cost\": "
    "3e-07,\n"
    "    \"input_cost_per_token_above_200k_tokens\": 6e-06,\n"
    "    \"output_cost_per_token_above_200k_tokens\": 2.25e-05,\n"
    "    \"cache_creation_input_token_cost_above_1hr_above_200k_tokens\": 1.2e-05,\n"
    "    \"input_cost_per_token_above_272k_tokens_priority\": 1e-05},\n"
    "  \"together_ai/acme/llama-x\": {\"litellm_provider\": \"together_ai\",\n"
    "    \"input_cost_per_token\": 8.8e-07, \"output_cost_per_token\": 8.8e-07},\n"
    "  \"vertex-acme\": {\"litellm_provider\": \"vertex_ai-language-models\",\n"
    "    \"input_cost_per_token\": 1e-06},\n"
    "  \"dall-e-acme\": {\"litellm_provider\": \"openai\", \"output_cost_per_image\": 0.04},\n"
    "  \"acme-odd\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 3.0002e-13},\n"
    "  \"acme-two-tiers\": {\"litellm_provider\": \"xai\", \"input_cost_per_token\": 1e-06,\n"
    "    \"input_cost_per_token_above_128k_tokens\": 2e-06,\n"
    "    \"input_cost_per_token_above_200k_tokens\": 3e-06},\n"
    "  \"acme-words\": {\"litellm_provider\": \"mistral\", \"input_cost_per_token\": \"cheap\"},\n"
    "  \"gpt-acme\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 1e-06},\n"
    "  \"openai/gpt-acme\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 2e-06}\n"
    "}\n";


/* LiteLLM's table as it is: mapped kinds, exact numbers, skipped entries with their place. */
static void
test_litellm(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    char err[TEST_ERR_MAX], want[TEST_ERR_MAX + 64];
    char *path = tmp_write_ext(litellm_table, ".json");
    const sl_price_t *pr;
    sl_pricing_t *p = NULL;
    sl_usage_t u;

    if (sl_pricing_load(path, pool, &p, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    /* acme-large-1, claude-acme, llama-x, gpt-acme (twice: the later entry wins) */
    assert_int_equal(sl_pricing_count(p), 4);

    pr = sl_pricing_find(p, "myopenai", "openai", "acme-large-1");
    assert_non_null(pr);
    assert_string_equal(pr->key, "openai/acme-large-1");
    assert_int_equal(pr->rates.input, 1234567);
    assert_int_equal(pr->rates.output, 9876543);
    assert_int_equal(pr->rates.cached_input, 120000);
    assert_int_equal(pr->rates.cache_write, 1234567);
    assert_int_equal(pr->max_output, 32000);
    assert_int_equal(pr->above, 0);
    assert_string_equal(pr->source, "litellm:acme-large-1");
    assert_string_equal(pr->file, path);
    assert_int_equal(pr->line, 4);
    /* 1000 in, 100 cached, 10 out: 900 x 1.234567 + 100 x 0.12 + 10 x 9.876543 (pico / 1000) */
    assert_int_equal(cost_of(p, NULL, "openai", "acme-large-1", usage(1000, 10, 100, 0)),
                     (900ULL * 1234567 + 100 * 120000 + 10 * 9876543 + 500) / 1000);

    pr = sl_pricing_find(p, NULL, "anthropic", "claude-acme");
    assert_non_null(pr);
    assert_int_equal(pr->rates.cache_write_1h, 6000000);
    assert_int_equal(pr->above, 200000);
    assert_int_equal(pr->long_rates.input, 6000000);
    assert_int_equal(pr->long_rates.output, 22500000);
    assert_int_equal(pr->long_rates.cached_input, 300000); /* not in the tier: the base rate */
    assert_int_equal(pr->long_rates.cache_write_1h, 12000000);
    u = usage(300000, 10, 0, 1000);
    u.cache_write_1h_tokens = 1000;
    assert_int_equal(cost_of(p, NULL, "anthropic", "claude-acme", u),
                     299000ULL * 6000 + 1000 * 12000 + 10 * 22500);

    /* together_ai -> together, its key's own prefix dropped */
    pr = sl_pricing_find(p, NULL, "together", "acme/llama-x");
    assert_non_null(pr);
    assert_string_equal(pr->source, "litellm:together_ai/acme/llama-x");
    /* openai/gpt-acme came after gpt-acme in the file: the same key, the later line */
    pr = sl_pricing_find(p, NULL, "openai", "gpt-acme");
    assert_non_null(pr);
    assert_int_equal(pr->rates.input, 2000000);
    /* not served (vertex_ai), not priced per token, or skipped */
    assert_null(sl_pricing_find(p, NULL, "gemini", "vertex-acme"));
    assert_null(sl_pricing_find(p, NULL, "openai", "dall-e-acme"));
    assert_null(sl_pricing_find(p, NULL, "openai", "acme-odd"));

    assert_int_equal(sl_pricing_skipped(p), 3);
    snprintf(want, sizeof(want),
             "%s:19:3: acme-odd: input_cost_per_token 3.0002e-13 is not a price sluice can keep "
             "exactly (USD per token, not negative, a whole number of 1e-12 USD, at most 1 USD)",
             path);
    assert_string_equal(sl_pricing_note(p, 0), want);
    snprintf(want, sizeof(want),
             "%s:20:3: acme-two-tiers: more than one long-context tier (above 128000 and 200000 "
             "tokens)",
             path);
    assert_string_equal(sl_pricing_note(p, 1), want);
    snprintf(want, sizeof(want), "%s:23:3: acme-words: input_cost_per_token is not a number", path);
    assert_string_equal(sl_pricing_note(p, 2), want);
    assert_null(sl_pricing_note(p, 3));

    assert_string_equal(sl_pricing_litellm_kind("fireworks_ai", 12), "fireworks");
    assert_null(sl_pricing_litellm_kind("bedrock", 7));

    unlink(path);
    free(path);
    sl_pool_destroy(pool);
}


/* A list of files: a later file's line for a key replaces an earlier one's; bad JSON is an error.
 */
static void
test_files(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    char *json = tmp_write_ext(litellm_table, ".json");
    char *yaml = tmp_write("models:\n"
                           "  openai/acme-large-1: {input: 1, output: 2, checked: 2026-08-01}\n"
                           "  negotiated/x: {input: 0.5}\n");
    char *bad = tmp_write_ext("{\"a\": [1,}\n", ".json");
    char *notobj = tmp_write_ext("[1]\n", ".json");
    const char *files[2];
    char err[TEST_ERR_MAX], want[TEST_ERR_MAX + 64];
    const sl_price_t *pr;
    sl_pricing_t *p = NULL;

    files[0] = json;
    files[1] = yaml;
    if (sl_pricing_load_files(files, 2, pool, &p, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(sl_pricing_count(p), 5);
    pr = sl_pricing_find(p, NULL, "openai", "acme-large-1");
    assert_non_null(pr);
    assert_int_equal(pr->rates.input, 1000000);
    assert_int_equal(pr->max_output, 0); /* the whole line is replaced, not merged */
    assert_string_equal(pr->file, yaml);
    assert_int_equal(pr->line, 2);
    assert_non_null(sl_pricing_get(p, "negotiated/x"));
    assert_non_null(sl_pricing_get(p, "anthropic/claude-acme"));
    assert_null(sl_pricing_get(p, "anthropic/claude"));

    /* the other way round the JSON wins */
    files[0] = yaml;
    files[1] = json;
    assert_int_equal(sl_pricing_load_files(files, 2, pool, &p, err, sizeof(err)), 0);
    assert_int_equal(sl_pricing_find(p, NULL, "openai", "acme-large-1")->rates.input, 1234567);

    assert_int_equal(sl_pricing_load(bad, pool, &p, err, sizeof(err)), SL_ECONF);
    snprintf(want, sizeof(want), "%s:1:10: not a LiteLLM price table: value expected", bad);
    assert_string_equal(err, want);
    assert_int_equal(sl_pricing_load(notobj, pool, &p, err, sizeof(err)), SL_ECONF);
    snprintf(want, sizeof(want),
             "%s:1:1: not a LiteLLM price table: the top value must be an object of models",
             notobj);
    assert_string_equal(err, want);

    unlink(json);
    unlink(yaml);
    unlink(bad);
    unlink(notobj);
    free(json);
    free(yaml);
    free(bad);
    free(notobj);
    sl_pool_destroy(pool);
}


/* sl_conf_load reads `pricing:` relative to the cwd and reports its errors. */
static void
test_conf_load(void **state)
{
    char yaml[PATH_MAX + 256], err[TEST_ERR_MAX], want[TEST_ERR_MAX];
    char *table, *conf_path;
    sl_conf_t *conf = NULL;
    int rc;

    table = tmp_write("models:\n  openai/gpt-4o-mini: {input: 0.15, output: 0.60}\n");
    snprintf(yaml, sizeof(yaml), "storage:\n  path: var/\npricing: %s\n", table);
    conf_path = tmp_write(yaml);
    rc = sl_conf_load(conf_path, &conf, err, sizeof(err));
    if (rc != 0) {
        fail_msg("%s", err);
    }
    assert_non_null(conf->pricing);
    assert_int_equal(sl_pricing_count(conf->pricing), 1);
    sl_conf_destroy(conf);
    unlink(conf_path);
    free(conf_path);

    /* no pricing: key, no table */
    conf_path = tmp_write("storage:\n  path: var/\n");
    assert_int_equal(sl_conf_load(conf_path, &conf, err, sizeof(err)), 0);
    assert_null(conf->pricing);
    sl_conf_destroy(conf);
    unlink(conf_path);
    free(conf_path);

    /* a missing table is reported at the pricing: line, with its path */
    conf_path = tmp_write("storage:\n  path: var/\npricing: no/such/pricing.yaml\n");
    assert_int_equal(sl_conf_load(conf_path, &conf, err, sizeof(err)), SL_ECONF);
    assert_null(conf);
    snprintf(want, sizeof(want),
             "%s:3:10: cannot load pricing: no/such/pricing.yaml: open() failed (2: No such "
             "file or directory)",
             conf_path);
    assert_string_equal(err, want);
    unlink(conf_path);
    free(conf_path);

    /* an error inside the table keeps the table's own file:line:col */
    unlink(table);
    free(table);
    table = tmp_write("models:\n  openai/x: {input: 1, output: one}\n");
    snprintf(yaml, sizeof(yaml), "pricing: %s\n", table);
    conf_path = tmp_write(yaml);
    assert_int_equal(sl_conf_load(conf_path, &conf, err, sizeof(err)), SL_ECONF);
    snprintf(want, sizeof(want),
             "%s:2:32: invalid price \"one\" for output of openai/x (USD per 1M tokens, at most "
             "6 decimals, e.g. 0.15)",
             table);
    assert_string_equal(err, want);
    unlink(conf_path);
    free(conf_path);
    unlink(table);
    free(table);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_usd),
        cmocka_unit_test(test_format_usd),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_valid_forms),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_reference_table),
        cmocka_unit_test(test_conf_load),
        cmocka_unit_test(test_parse_per_token),
        cmocka_unit_test(test_cost_tiers),
        cmocka_unit_test(test_litellm),
        cmocka_unit_test(test_files),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
