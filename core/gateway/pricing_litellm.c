/*
 * LiteLLM's model_prices_and_context_window.json, read as it is: an object
 * of entries, each with a litellm_provider and prices in USD per token as
 * JSON numbers. The numbers are read from their text with the project's own
 * reader (core/base/json.h hands out the raw number text), exactly, never
 * through a double. An entry becomes the line "KIND/MODEL" when its
 * provider maps onto a sluice kind (below) and it has an input price; the
 * rest (image, audio, rerank prices; providers sluice has no kind for) are
 * not lines, silently. An entry of a served kind that cannot be priced
 * exactly is skipped with a note (sl_pricing_skipped).
 */
#include "core/gateway/pricing.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/gateway/pricing_internal.h"

#define LITELLM_FILE_MAX (256u * 1024 * 1024)
#define LITELLM_WHY_MAX  256

/* litellm_provider -> sluice kind, and the prefix LiteLLM puts on that provider's model keys. */
typedef struct litellm_kind {
    const char *provider;
    const char *kind;
    const char *strip; /* "together_ai/" of "together_ai/meta-llama/..." */
} litellm_kind_t;

/* The JSON fields of a rate card, in sl_price_rates_t order. */
typedef struct litellm_field {
    const char *name;
    size_t offset;
} litellm_field_t;

/* Where the entries are, to tell their line and column. */
typedef struct litellm_pos {
    const char *text;
    size_t off;
    unsigned line;
    size_t line_start;
} litellm_pos_t;

static const litellm_kind_t litellm_kinds[] = {
    { "anthropic", "anthropic", "anthropic/" },
    { "azure", "azure", "azure/" },
    { "cerebras", "cerebras", "cerebras/" },
    { "deepseek", "deepseek", "deepseek/" },
    { "fireworks_ai", "fireworks", "fireworks_ai/" },
    { "fireworks_ai-embedding-models", "fireworks", "fireworks_ai/" },
    { "gemini", "gemini", "gemini/" },
    { "groq", "groq", "groq/" },
    { "hosted_vllm", "vllm", "hosted_vllm/" },
    { "mistral", "mistral", "mistral/" },
    { "ollama", "ollama", "ollama/" },
    { "openai", "openai", "openai/" },
    { "openrouter", "openrouter", "openrouter/" },
    { "perplexity", "perplexity", "perplexity/" },
    { "together_ai", "together", "together_ai/" },
    { "xai", "xai", "xai/" },
};

static const litellm_field_t litellm_fields[] = {
    { "input_cost_per_token", offsetof(sl_price_rates_t, input) },
    { "output_cost_per_token", offsetof(sl_price_rates_t, output) },
    { "cache_read_input_token_cost", offsetof(sl_price_rates_t, cached_input) },
    { "cache_creation_input_token_cost", offsetof(sl_price_rates_t, cache_write) },
    { "cache_creation_input_token_cost_above_1hr", offsetof(sl_price_rates_t, cache_write_1h) },
};

#define LITELLM_NFIELDS (sizeof(litellm_fields) / sizeof(litellm_fields[0]))

static int litellm_read(const char *path, char **out, size_t *outlen, char *err, size_t errlen);
static void litellm_where(litellm_pos_t *pos, size_t off, unsigned *line, unsigned *col);
static int litellm_entry(sl__pricing_build_t *b, const sl_json_t *doc, sl_pool_t *tmp, int k, int v,
                         unsigned line, unsigned col);
static int litellm_rates(const sl_json_t *doc, int v, sl_price_t *price, unsigned *given, char *why,
                         size_t len);
static int litellm_tiers(const sl_json_t *doc, sl_pool_t *tmp, int v, sl_price_t *price,
                         unsigned given, char *why, size_t len);
static int litellm_tier_field(const char *name, size_t len, uint64_t *above);
static int litellm_price(const sl_json_t *doc, int v, const char *field, uint64_t *out, char *why,
                         size_t len);
static uint64_t *litellm_rate(sl_price_rates_t *r, size_t i);


const char *
sl_pricing_litellm_kind(const char *provider, size_t len)
{
    for (size_t i = 0; i < sizeof(litellm_kinds) / sizeof(litellm_kinds[0]); i++) {
        if (strlen(litellm_kinds[i].provider) == len
            && memcmp(litellm_kinds[i].provider, provider, len) == 0) {
            return litellm_kinds[i].kind;
        }
    }
    return NULL;
}


int
sl__pricing_litellm(sl__pricing_build_t *b, const char *path, char *err, size_t errlen)
{
    sl_json_error_t jerr;
    litellm_pos_t pos;
    sl_pool_t *tmp;
    sl_json_t *doc;
    char *text = NULL;
    size_t len = 0;
    unsigned line, col;
    int rc;

    rc = litellm_read(path, &text, &len, err, errlen);
    if (rc != 0) {
        return rc;
    }
    /* the reader's tokens and decoded strings last as long as this read */
    tmp = sl_pool_create(0);
    if (tmp == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(text);
        return -ENOMEM;
    }
    doc = sl_json_create(tmp);
    rc = SL_ECONF;
    if (sl_json_parse(doc, text, len, &jerr) != 0) {
        snprintf(err, errlen, "%s:%u:%u: not a LiteLLM price table: %s", path, jerr.line,
                 jerr.column, jerr.text);
        goto out_free;
    }
    if (sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        snprintf(err, errlen,
                 "%s:1:1: not a LiteLLM price table: the top value must be an object of models",
                 path);
        goto out_free;
    }
    memset(&pos, 0, sizeof(pos));
    pos.text = text;
    pos.line = 1;
    rc = 0;
    for (int k = sl_json_first(doc, SL_JSON_ROOT); k >= 0 && rc == 0;
         k = sl_json_next(doc, SL_JSON_ROOT, k)) {
        litellm_where(&pos, sl_json_offset(doc, k), &line, &col);
        rc = litellm_entry(b, doc, tmp, k, sl_json_key_value(doc, k), line, col);
        if (rc != 0) {
            snprintf(err, errlen, "%s: out of memory", path);
        }
    }

out_free:
    sl_pool_destroy(tmp);
    free(text);
    return rc;
}


static int
litellm_read(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    struct stat st;
    size_t len = 0;
    ssize_t n;
    char *buf;
    int fd, e;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        snprintf(err, errlen, "%s: open() failed (%d: %s)", path, e, strerror(e));
        return -e;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        snprintf(err, errlen, "%s: fstat() failed (%d: %s)", path, e, strerror(e));
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > LITELLM_FILE_MAX) {
        e = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        snprintf(err, errlen, "%s: %s", path,
                 e == EFBIG ? "larger than 256MiB" : "not a regular file");
        close(fd);
        return -e;
    }
    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        close(fd);
        return -ENOMEM;
    }
    while (len < (size_t) st.st_size) {
        n = read(fd, buf + len, (size_t) st.st_size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            e = errno;
            snprintf(err, errlen, "%s: read() failed (%d: %s)", path, e, strerror(e));
            free(buf);
            close(fd);
            return -e;
        }
        if (n == 0) {
            break;
        }
        len += (size_t) n;
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}


/* Line and column of byte off; offsets only grow, so the text is walked once. */
static void
litellm_where(litellm_pos_t *pos, size_t off, unsigned *line, unsigned *col)
{
    for (; pos->off < off; pos->off++) {
        if (pos->text[pos->off] == '\n') {
            pos->line++;
            pos->line_start = pos->off + 1;
        }
    }
    *line = pos->line;
    *col = (unsigned) (off - pos->line_start + 1);
}


/* One entry: a line of the build, nothing, or a skip note. Returns 0 or -ENOMEM. */
static int
litellm_entry(sl__pricing_build_t *b, const sl_json_t *doc, sl_pool_t *pool, int k, int v,
              unsigned line, unsigned col)
{
    const litellm_kind_t *lk = NULL;
    char why[LITELLM_WHY_MAX];
    sl_str_t name, orig, provider;
    sl_price_t *price, tmp;
    unsigned given = 0;
    size_t strip;

    if (sl_json_type(doc, v) != SL_JSON_OBJECT
        || sl_json_string(doc, sl_json_get(doc, v, "litellm_provider"), pool, &provider) != 0
        || sl_json_string(doc, k, pool, &name) != 0) {
        return 0; /* not an entry (LiteLLM's own "sample_spec" has no real provider either) */
    }
    for (size_t i = 0; i < sizeof(litellm_kinds) / sizeof(litellm_kinds[0]); i++) {
        if (strlen(litellm_kinds[i].provider) == provider.len
            && memcmp(litellm_kinds[i].provider, provider.p, provider.len) == 0) {
            lk = &litellm_kinds[i];
            break;
        }
    }
    if (lk == NULL || sl_json_type(doc, sl_json_get(doc, v, "input_cost_per_token")) == SL_JSON_NONE
        || sl_json_type(doc, sl_json_get(doc, v, "input_cost_per_token")) == SL_JSON_NULL) {
        return 0; /* a provider sluice does not serve, or no price per token */
    }

    memset(&tmp, 0, sizeof(tmp));
    orig = name;
    strip = strlen(lk->strip);
    if (name.len > strip && memcmp(name.p, lk->strip, strip) == 0) {
        name.p += strip;
        name.len -= strip;
    }
    tmp.key = sl_psprintf(b->pool, "%s/%.*s", lk->kind, (int) name.len, name.p);
    if (!sl__pricing_valid_key(tmp.key, strlen(tmp.key))) {
        sl__pricing_skip(b, line, col, name.p, name.len,
                         "the model name cannot be a pricing key (blanks, control characters, "
                         "or too long)");
        return 0;
    }
    if (litellm_rates(doc, v, &tmp, &given, why, sizeof(why)) != 0
        || litellm_tiers(doc, pool, v, &tmp, given, why, sizeof(why)) != 0) {
        sl__pricing_skip(b, line, col, name.p, name.len, why);
        return 0;
    }
    {
        int64_t max = 0;

        if (sl_json_int(doc, sl_json_get(doc, v, "max_output_tokens"), &max) == 0 && max > 0) {
            tmp.max_output = (uint64_t) max;
        }
    }
    tmp.source = sl_psprintf(b->pool, "litellm:%.*s", (int) orig.len, orig.p);
    price = sl__pricing_add(b);
    if (price == NULL) {
        return -ENOMEM;
    }
    tmp.file = price->file;
    tmp.line = line;
    *price = tmp;
    return 0;
}


/* The base rates; a cache price left out costs what input (or a 5-minute write) costs. */
static int
litellm_rates(const sl_json_t *doc, int v, sl_price_t *price, unsigned *given, char *why,
              size_t len)
{
    for (size_t i = 0; i < LITELLM_NFIELDS; i++) {
        int f = sl_json_get(doc, v, litellm_fields[i].name);

        if (sl_json_type(doc, f) == SL_JSON_NONE || sl_json_type(doc, f) == SL_JSON_NULL) {
            continue;
        }
        *given |= 1u << i;
        if (litellm_price(doc, f, litellm_fields[i].name, litellm_rate(&price->rates, i), why, len)
            != 0) {
            return SL_EPARSE;
        }
    }
    if (!(*given & (1u << 2))) {
        price->rates.cached_input = price->rates.input;
    }
    if (!(*given & (1u << 3))) {
        price->rates.cache_write = price->rates.input;
    }
    if (!(*given & (1u << 4))) {
        price->rates.cache_write_1h = price->rates.cache_write;
    }
    return 0;
}


/*
 * The long-context tier: FIELD_above_<N>k_tokens for the five rate fields,
 * one N per entry (two thresholds in one entry are refused rather than
 * priced half right); a rate the tier leaves out is the base one.
 */
static int
litellm_tiers(const sl_json_t *doc, sl_pool_t *pool, int v, sl_price_t *price, unsigned given,
              char *why, size_t len)
{
    sl_price_rates_t tier = price->rates;
    unsigned tier_given = 0;
    uint64_t above;
    sl_str_t name;
    int i;

    for (int k = sl_json_first(doc, v); k >= 0; k = sl_json_next(doc, v, k)) {
        int f = sl_json_key_value(doc, k);

        if (sl_json_string(doc, k, pool, &name) != 0 || name.len > 128) {
            continue;
        }
        i = litellm_tier_field(name.p, name.len, &above);
        if (i < 0 || sl_json_type(doc, f) == SL_JSON_NULL) {
            continue;
        }
        if (price->above != 0 && price->above != above) {
            snprintf(why, len, "more than one long-context tier (above %llu and %llu tokens)",
                     (unsigned long long) price->above, (unsigned long long) above);
            return SL_EPARSE;
        }
        price->above = above;
        {
            char field[160];

            snprintf(field, sizeof(field), "%.*s", (int) name.len, name.p);
            if (litellm_price(doc, f, field, litellm_rate(&tier, (size_t) i), why, len) != 0) {
                return SL_EPARSE;
            }
            tier_given |= 1u << i;
        }
    }
    price->long_rates = tier;
    if (!sl__pricing_tier_ok(price, given, tier_given)) {
        snprintf(why, len, "a long-context price is below the same price for shorter prompts");
        return SL_EPARSE;
    }
    return 0;
}


/* "input_cost_per_token_above_200k_tokens": the field's index, *above = 200000; else -1. */
static int
litellm_tier_field(const char *name, size_t len, uint64_t *above)
{
    static const char suffix[] = "k_tokens";
    const char *p, *end = name + len;
    uint64_t n = 0;

    for (size_t i = 0; i < LITELLM_NFIELDS; i++) {
        size_t flen = strlen(litellm_fields[i].name);

        if (len <= flen + 7 || memcmp(name, litellm_fields[i].name, flen) != 0
            || memcmp(name + flen, "_above_", 7) != 0) {
            continue;
        }
        p = name + flen + 7;
        if (p == end || *p < '1' || *p > '9') {
            continue;
        }
        for (n = 0; p < end && *p >= '0' && *p <= '9' && n < 1000000; p++) {
            n = n * 10 + (uint64_t) (*p - '0');
        }
        if ((size_t) (end - p) != sizeof(suffix) - 1 || memcmp(p, suffix, sizeof(suffix) - 1) != 0
            || n >= 1000000) {
            continue;
        }
        *above = n * 1000;
        return (int) i;
    }
    return -1;
}


static int
litellm_price(const sl_json_t *doc, int v, const char *field, uint64_t *out, char *why, size_t len)
{
    sl_str_t raw = sl_json_raw(doc, v);

    if (sl_json_type(doc, v) != SL_JSON_NUMBER) {
        snprintf(why, len, "%s is not a number", field);
        return SL_EPARSE;
    }
    if (sl_pricing_parse_per_token(raw.p, raw.len, out) != 0) {
        /* a long field name may cut the message short: the result is looked at */
        if (snprintf(why, len,
                     "%s %.*s is not a price sluice can keep exactly (USD per token, not "
                     "negative, a whole number of 1e-12 USD, at most 1 USD)",
                     field, (int) (raw.len < 40 ? raw.len : 40), raw.p)
            < 0) {
            why[0] = '\0';
        }
        return SL_EPARSE;
    }
    return 0;
}


static uint64_t *
litellm_rate(sl_price_rates_t *r, size_t i)
{
    return (uint64_t *) ((char *) r + litellm_fields[i].offset);
}
