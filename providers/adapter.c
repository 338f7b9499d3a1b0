/*
 * Helpers the adapters share: literals read with the token reader, JSON
 * text as a literal, SSE framing and a per-stream scratch buffer (see
 * adapter_internal.h).
 */
#include "providers/adapter_internal.h"

#include <string.h>

#include "core/base/errno.h"

static bool adapter_strings_ok(const sl_json_t *doc, int v, unsigned depth);
static void adapter_buf_free(void *arg);

/* The member a skimmed answer is read for. */
static const sl_str_t adapter_usage_key = sl_str_lit("usage");


int
sl__adapter_parse_answer(sl_json_t *doc, sl_str_t raw, bool skim)
{
    if (skim) {
        return sl_json_parse_skim(doc, raw.p, raw.len, &adapter_usage_key, 1, NULL);
    }
    return sl_json_parse(doc, raw.p, raw.len, NULL);
}


sl_str_t
sl__adapter_literal(const sl_json_t *doc, int v, size_t *len)
{
    size_t n;

    if (sl_json_string_len(doc, v, &n) < 0) {
        return sl_str_null;
    }
    if (len != NULL) {
        *len = n;
    }
    return sl_json_raw(doc, v);
}


/* True when every string under v (keys too) is one jansson accepts. */
static bool
adapter_strings_ok(const sl_json_t *doc, int v, unsigned depth)
{
    size_t len;

    if (depth > SL_JSON_MAX_DEPTH) {
        return false;
    }
    switch (sl_json_type(doc, v)) {
    case SL_JSON_OBJECT:
        for (int k = sl_json_first(doc, v); k >= 0; k = sl_json_next(doc, v, k)) {
            if (sl_json_string_len(doc, k, &len) < 0
                || !adapter_strings_ok(doc, sl_json_key_value(doc, k), depth + 1)) {
                return false;
            }
        }
        return true;
    case SL_JSON_ARRAY:
        for (int e = sl_json_first(doc, v); e >= 0; e = sl_json_next(doc, v, e)) {
            if (!adapter_strings_ok(doc, e, depth + 1)) {
                return false;
            }
        }
        return true;
    case SL_JSON_STRING:
        return sl_json_string_len(doc, v, &len) == 0;
    case SL_JSON_NONE:
        return false;
    default:
        return true;
    }
}


sl_str_t
sl__adapter_keep(sl_pool_t *pool, sl_str_t lit)
{
    if (lit.len == 0) {
        return lit;
    }
    return (sl_str_t){ sl_pstrndup(pool, lit.p, lit.len), lit.len };
}


int
sl__adapter_json_literal(sl_pool_t *pool, const sl_json_t *doc, int v, sl_str_t *out)
{
    sl_str_t raw = sl_json_raw(doc, v);
    bool in_string = false;
    bool escaped = false;
    char *p;
    size_t n = 0;

    if (!adapter_strings_ok(doc, v, 0)) {
        return SL_EPARSE;
    }
    /* each byte needs at most two (\" and \\), plus the quotes */
    p = sl_palloc(pool, raw.len * 2 + 3);
    p[n++] = '"';
    for (size_t i = 0; i < raw.len; i++) {
        char c = raw.p[i];

        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue; /* between tokens */
        } else if (c == '"') {
            in_string = true;
        }
        if (c == '"' || c == '\\') {
            p[n++] = '\\';
        }
        p[n++] = c;
    }
    p[n++] = '"';
    p[n] = '\0';
    *out = (sl_str_t){ p, n };
    return 0;
}


void
sl__adapter_members(const sl_json_t *doc, int obj, const sl_str_t *keys, size_t n, int *vals)
{
    sl_json_members(doc, obj, keys, n, vals);
}


uint64_t
sl__adapter_uint(const sl_json_t *doc, int v)
{
    int64_t n;

    return sl_json_int(doc, v, &n) == 0 && n > 0 ? (uint64_t) n : 0;
}


void
sl__adapter_sse(sl_buf_t *b, sl_str_t event, sl_str_t data)
{
    const char *p = data.p != NULL ? data.p : "";
    const char *end = p + data.len;

    if (event.len > 0) {
        sl_buf_append(b, "event: ", 7);
        sl_buf_append(b, event.p, event.len);
        sl_buf_append(b, "\n", 1);
    }
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        const char *stop = nl != NULL ? nl : end;

        sl_buf_append(b, "data: ", 6);
        sl_buf_append(b, p, (size_t) (stop - p));
        sl_buf_append(b, "\n", 1);
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    sl_buf_append(b, "\n", 1);
}


static void
adapter_buf_free(void *arg)
{
    sl_buf_free(arg);
}


sl_buf_t *
sl__adapter_buf(sl_pool_t *pool)
{
    sl_buf_t *b = sl_pcalloc(pool, sizeof(*b));

    sl_pool_on_destroy(pool, adapter_buf_free, b);
    return b;
}


sl_str_t
sl__adapter_buf_str(const sl_buf_t *b)
{
    return b->p != NULL ? (sl_str_t){ b->p, b->len } : (sl_str_t){ "", 0 };
}


bool
sl__adapter_same_string(sl_str_t raw, const char *s)
{
    size_t len = strlen(s);

    if (raw.len != len + 2 || raw.p[0] != '"' || memcmp(raw.p + 1, s, len) != 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c < 0x20 || c == '"' || c == '\\') {
            return false; /* raw holds these escaped, or is another string */
        }
    }
    return true;
}


sl_str_t
sl__adapter_quote(sl_pool_t *pool, const char *s)
{
    size_t len = strlen(s);
    char *p = sl_palloc(pool, len + 3);

    p[0] = '"';
    memcpy(p + 1, s, len);
    p[len + 1] = '"';
    p[len + 2] = '\0';
    return (sl_str_t){ p, len + 2 };
}
