/*
 * The zero-copy JSON reader (see json.h): jsmn in strict mode for the
 * tokens, then one walk over them that checks the grammar jsmn does not
 * (the bytes between tokens, keys, primitives, depth) and fills next[],
 * the index just past each value's subtree. Also the string decoder shared
 * by lookups and callers, the splice writer and the jansson bridge.
 */
#include "core/json.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define JSMN_STRICT
#define JSMN_STATIC
#include <jsmn.h>

#include "core/errno.h"

#define JSON_INITIAL_TOKENS 64 /* a chat request or answer needs 10 to 50 */

struct sl_json {
    sl_pool_t *pool;
    const char *p;
    size_t len;
    jsmntok_t *tok;
    int *next;         /* next[i]: index of the first token after value i's subtree */
    unsigned ntok;     /* tokens of the current document, 0 when there is none */
    unsigned cap;      /* room in tok */
    unsigned next_cap; /* room in next */
};

typedef struct json_frame {
    int tok;       /* open object, array or key */
    int left;      /* children still to come */
    bool has_prev; /* a child was seen: the next one needs a separator */
} json_frame_t;

static int json_tokenize(sl_json_t *doc, sl_json_error_t *err);
static int json_check(sl_json_t *doc, sl_json_error_t *err);
static int json_close(sl_json_t *doc, json_frame_t *stack, int *depth, int end, size_t *pos,
                      sl_json_error_t *err);
static int json_gap(const sl_json_t *doc, size_t from, size_t to, char sep, size_t *bad);
static bool json_is_space(char c);
static bool json_primitive_ok(const char *s, size_t n);
static int json_fail(const sl_json_t *doc, sl_json_error_t *err, size_t pos, const char *text);
static size_t json_raw_start(const sl_json_t *doc, int v);
static size_t json_raw_end(const sl_json_t *doc, int v);
static int json_unescape(const char *s, size_t n, char *dst, size_t *outlen);
static size_t json_utf8_len(const unsigned char *p, const unsigned char *end);
static int json_hex4(const char *s, const char *end, unsigned *out);
static size_t json_utf8_put(unsigned cp, unsigned char *buf);
static bool json_key_eq(const sl_json_t *doc, int k, const char *key, size_t klen);
static size_t json_escaped_len(sl_str_t s);
static char *json_escape(char *d, sl_str_t s);
static void json_decref_cb(void *arg);


sl_json_t *
sl_json_create(sl_pool_t *pool)
{
    sl_json_t *doc = sl_pcalloc(pool, sizeof(*doc));

    doc->pool = pool;
    return doc;
}


int
sl_json_parse(sl_json_t *doc, const char *p, size_t len, sl_json_error_t *err)
{
    int rc;

    doc->ntok = 0;
    doc->p = p;
    doc->len = len;
    if (len >= INT_MAX) {
        if (err != NULL) {
            err->pos = 0;
            err->line = 1;
            err->column = 1;
            err->text = "document too large";
        }
        return SL_ETOOBIG;
    }
    rc = json_tokenize(doc, err);
    if (rc == 0) {
        rc = json_check(doc, err);
    }
    if (rc < 0) {
        doc->ntok = 0;
    }
    return rc;
}


/* jsmn over the whole buffer, growing the token array in the pool as it asks. */
static int
json_tokenize(sl_json_t *doc, sl_json_error_t *err)
{
    jsmn_parser jp;
    int n;

    if (doc->cap == 0) {
        doc->cap = JSON_INITIAL_TOKENS;
        doc->tok = sl_palloc(doc->pool, sizeof(jsmntok_t) * doc->cap);
    }
    jsmn_init(&jp);
    for (;;) {
        n = jsmn_parse(&jp, doc->p, doc->len, doc->tok, doc->cap);
        if (n != JSMN_ERROR_NOMEM) {
            break;
        }
        /* jsmn resumes where it stopped once it has room; the old array stays
         * in the pool, which at most doubles what the tokens cost */
        jsmntok_t *bigger = sl_palloc(doc->pool, sizeof(jsmntok_t) * doc->cap * 4);

        memcpy(bigger, doc->tok, sizeof(jsmntok_t) * jp.toknext);
        doc->tok = bigger;
        doc->cap *= 4;
    }
    if (n == JSMN_ERROR_INVAL) {
        return json_fail(doc, err, jp.pos, "invalid character");
    }
    if (n == JSMN_ERROR_PART && jp.toknext == 0 && jp.pos < doc->len && doc->p[jp.pos] != '\0'
        && strchr("-0123456789tfn", doc->p[jp.pos]) != NULL) {
        /* strict jsmn wants a delimiter after a primitive, even a top one
         * that ends the input: take it, json_check() reads its grammar */
        doc->tok[0].type = JSMN_PRIMITIVE;
        doc->tok[0].start = (int) jp.pos;
        doc->tok[0].end = (int) doc->len;
        doc->tok[0].size = 0;
        n = 1;
    }
    if (n == JSMN_ERROR_PART) {
        return json_fail(doc, err, doc->len, "unexpected end of input");
    }
    if (n <= 0) {
        return json_fail(doc, err, jp.pos, "no JSON value");
    }
    doc->ntok = (unsigned) n;
    return 0;
}


/*
 * The walk: each token is checked against its parent (a key needs a value,
 * a value has no children), the bytes before it against what the grammar
 * puts there (nothing, ':' or ','), and the subtrees it closes get their
 * next[] entries.
 */
static int
json_check(sl_json_t *doc, sl_json_error_t *err)
{
    json_frame_t small[16];
    json_frame_t *stack = small;
    int nstack = 16;
    int depth = 0;
    size_t pos = 0;
    size_t bad;
    int rc;

    if (doc->next_cap < doc->ntok) {
        doc->next_cap = doc->cap;
        doc->next = sl_palloc(doc->pool, sizeof(int) * doc->next_cap);
    }
    for (int i = 0; i < (int) doc->ntok; i++) {
        const jsmntok_t *t = &doc->tok[i];
        const jsmntok_t *parent = depth > 0 ? &doc->tok[stack[depth - 1].tok] : NULL;
        size_t start = json_raw_start(doc, i);
        char sep = 0;

        if (parent == NULL && i > 0) {
            return json_fail(doc, err, start, "end of input expected");
        }
        if (parent != NULL && parent->type == JSMN_STRING) {
            sep = ':';
        } else if (parent != NULL && stack[depth - 1].has_prev) {
            sep = ',';
        }
        if (json_gap(doc, pos, start, sep, &bad) < 0) {
            return json_fail(doc, err, bad,
                             sep == ':'   ? "':' expected"
                             : sep == ',' ? "',' expected"
                                          : "unexpected character");
        }
        if (parent != NULL && parent->type == JSMN_OBJECT) {
            if (t->type != JSMN_STRING) {
                return json_fail(doc, err, start, "string or '}' expected");
            }
            if (t->size != 1) {
                return json_fail(doc, err, json_raw_end(doc, i), "':' expected");
            }
        } else if (t->type == JSMN_STRING || t->type == JSMN_PRIMITIVE) {
            if (t->size != 0) {
                return json_fail(doc, err, json_raw_end(doc, i),
                                 "',' or end of container expected");
            }
            if (t->type == JSMN_PRIMITIVE
                && !json_primitive_ok(doc->p + t->start, (size_t) (t->end - t->start))) {
                return json_fail(doc, err, start, "invalid literal or number");
            }
        }
        if (t->size > 0) {
            /* an object, array or key with children: they come next */
            if (depth == SL_JSON_MAX_DEPTH) {
                return json_fail(doc, err, start, "maximum nesting depth reached");
            }
            if (depth == nstack) {
                json_frame_t *bigger = sl_palloc(doc->pool, sizeof(*bigger) * (size_t) nstack * 4);

                memcpy(bigger, stack, sizeof(*bigger) * (size_t) nstack);
                stack = bigger;
                nstack *= 4;
            }
            stack[depth].tok = i;
            stack[depth].left = t->size;
            stack[depth].has_prev = false;
            depth++;
            pos = t->type == JSMN_STRING ? json_raw_end(doc, i) : (size_t) t->start + 1;
            continue;
        }
        if (t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) {
            if (json_gap(doc, (size_t) t->start + 1, (size_t) t->end - 1, 0, &bad) < 0) {
                return json_fail(doc, err, bad,
                                 t->type == JSMN_OBJECT ? "string or '}' expected"
                                                        : "value or ']' expected");
            }
        }
        pos = json_raw_end(doc, i);
        doc->next[i] = i + 1;
        rc = json_close(doc, stack, &depth, i + 1, &pos, err);
        if (rc < 0) {
            return rc;
        }
    }
    if (depth != 0) {
        /* jsmn reports unclosed containers itself; this is a dangling key */
        return json_fail(doc, err, doc->len, "unexpected end of input");
    }
    if (json_gap(doc, pos, doc->len, 0, &bad) < 0) {
        return json_fail(doc, err, bad, "end of input expected");
    }
    return 0;
}


/*
 * A child of the innermost open frame ended (its subtree stops before token
 * end): counts it, and closes every frame that it completes, checking that
 * only whitespace stands before each closing bracket.
 */
static int
json_close(sl_json_t *doc, json_frame_t *stack, int *depth, int end, size_t *pos,
           sl_json_error_t *err)
{
    size_t bad;

    while (*depth > 0) {
        json_frame_t *f = &stack[*depth - 1];
        const jsmntok_t *t = &doc->tok[f->tok];

        f->left--;
        f->has_prev = true;
        if (f->left > 0) {
            return 0;
        }
        if (t->type != JSMN_STRING) {
            if (json_gap(doc, *pos, (size_t) t->end - 1, 0, &bad) < 0) {
                return json_fail(doc, err, bad,
                                 t->type == JSMN_OBJECT ? "',' or '}' expected"
                                                        : "',' or ']' expected");
            }
            *pos = (size_t) t->end;
        }
        doc->next[f->tok] = end;
        (*depth)--;
    }
    return 0;
}


/*
 * Bytes [from, to) hold whitespace, with exactly one sep in it when sep is
 * not 0. Returns 0, or -1 with *bad at the first byte out of place.
 */
static int
json_gap(const sl_json_t *doc, size_t from, size_t to, char sep, size_t *bad)
{
    bool seen = sep == 0;

    for (size_t i = from; i < to; i++) {
        char c = doc->p[i];

        if (json_is_space(c)) {
            continue;
        }
        if (!seen && c == sep) {
            seen = true;
            continue;
        }
        *bad = i;
        return -1;
    }
    if (!seen) {
        *bad = to;
        return -1;
    }
    return 0;
}


static bool
json_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/* true, false, null or a number as RFC 8259 spells it (jsmn takes any run of printable bytes). */
static bool
json_primitive_ok(const char *s, size_t n)
{
    const char *p = s;
    const char *end = s + n;

    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0)
        || (n == 4 && memcmp(s, "null", 4) == 0)) {
        return true;
    }
    if (p < end && *p == '-') {
        p++;
    }
    if (p == end || *p < '0' || *p > '9') {
        return false;
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || *p < '0' || *p > '9') {
            return false;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p == end || *p < '0' || *p > '9') {
            return false;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    return p == end;
}


static int
json_fail(const sl_json_t *doc, sl_json_error_t *err, size_t pos, const char *text)
{
    size_t line_start = 0;
    unsigned line = 1;

    if (err == NULL) {
        return SL_EPARSE;
    }
    if (pos > doc->len) {
        pos = doc->len;
    }
    for (size_t i = 0; i < pos; i++) {
        if (doc->p[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    err->pos = pos;
    err->line = line;
    err->column = (unsigned) (pos - line_start) + 1;
    err->text = text;
    return SL_EPARSE;
}


/* First byte of value v in the source: a string's opening quote. */
static size_t
json_raw_start(const sl_json_t *doc, int v)
{
    const jsmntok_t *t = &doc->tok[v];

    return t->type == JSMN_STRING ? (size_t) t->start - 1 : (size_t) t->start;
}


/* One past the last byte of value v: past a string's closing quote. */
static size_t
json_raw_end(const sl_json_t *doc, int v)
{
    const jsmntok_t *t = &doc->tok[v];

    return t->type == JSMN_STRING ? (size_t) t->end + 1 : (size_t) t->end;
}


sl_json_type_e
sl_json_type(const sl_json_t *doc, int v)
{
    const jsmntok_t *t;

    if (doc == NULL || v < 0 || (unsigned) v >= doc->ntok) {
        return SL_JSON_NONE;
    }
    t = &doc->tok[v];
    switch (t->type) {
    case JSMN_OBJECT:
        return SL_JSON_OBJECT;
    case JSMN_ARRAY:
        return SL_JSON_ARRAY;
    case JSMN_STRING:
        return SL_JSON_STRING;
    case JSMN_PRIMITIVE:
        switch (doc->p[t->start]) {
        case 't':
            return SL_JSON_TRUE;
        case 'f':
            return SL_JSON_FALSE;
        case 'n':
            return SL_JSON_NULL;
        default:
            return SL_JSON_NUMBER;
        }
    default:
        return SL_JSON_NONE;
    }
}


size_t
sl_json_size(const sl_json_t *doc, int v)
{
    sl_json_type_e type = sl_json_type(doc, v);

    if (type != SL_JSON_OBJECT && type != SL_JSON_ARRAY) {
        return 0;
    }
    return (size_t) doc->tok[v].size;
}


sl_str_t
sl_json_raw(const sl_json_t *doc, int v)
{
    size_t start;

    if (sl_json_type(doc, v) == SL_JSON_NONE) {
        return sl_str_null;
    }
    start = json_raw_start(doc, v);
    return (sl_str_t){ doc->p + start, json_raw_end(doc, v) - start };
}


size_t
sl_json_offset(const sl_json_t *doc, int v)
{
    if (sl_json_type(doc, v) == SL_JSON_NONE) {
        return 0;
    }
    return json_raw_start(doc, v);
}


int
sl_json_get(const sl_json_t *doc, int obj, const char *key)
{
    size_t klen = strlen(key);
    int found = -1;

    if (sl_json_type(doc, obj) != SL_JSON_OBJECT) {
        return -1;
    }
    for (int k = sl_json_first(doc, obj); k >= 0; k = sl_json_next(doc, obj, k)) {
        if (json_key_eq(doc, k, key, klen)) {
            found = k + 1;
        }
    }
    return found;
}


int
sl_json_path(const sl_json_t *doc, int obj, const char *path)
{
    char key[64];
    const char *p = path;

    while (obj >= 0) {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t) (dot - p) : strlen(p);

        if (n >= sizeof(key)) {
            return -1;
        }
        memcpy(key, p, n);
        key[n] = '\0';
        obj = sl_json_get(doc, obj, key);
        if (dot == NULL) {
            break;
        }
        p = dot + 1;
    }
    return obj;
}


int
sl_json_lookup(const sl_json_t *doc, int obj, const char *const *keys, size_t n, int *vals)
{
    size_t klen[SL_JSON_LOOKUP_MAX];

    if (n > SL_JSON_LOOKUP_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        vals[i] = -1;
        klen[i] = strlen(keys[i]);
    }
    if (sl_json_type(doc, obj) != SL_JSON_OBJECT) {
        return 0;
    }
    for (int k = sl_json_first(doc, obj); k >= 0; k = sl_json_next(doc, obj, k)) {
        for (size_t i = 0; i < n; i++) {
            if (!json_key_eq(doc, k, keys[i], klen[i])) {
                continue;
            }
            if (vals[i] >= 0) {
                return SL_EPARSE;
            }
            vals[i] = k + 1;
            break;
        }
    }
    return 0;
}


int
sl_json_first(const sl_json_t *doc, int v)
{
    return sl_json_size(doc, v) > 0 ? v + 1 : -1;
}


int
sl_json_next(const sl_json_t *doc, int parent, int v)
{
    int n;

    if (sl_json_type(doc, v) == SL_JSON_NONE || sl_json_type(doc, parent) == SL_JSON_NONE) {
        return -1;
    }
    /* a key's subtree holds its value, so this steps from key to key */
    n = doc->next[v];
    return n < doc->next[parent] ? n : -1;
}


int
sl_json_key_value(const sl_json_t *doc, int k)
{
    if (sl_json_type(doc, k) != SL_JSON_STRING || doc->tok[k].size != 1) {
        return -1;
    }
    return k + 1;
}


static bool
json_key_eq(const sl_json_t *doc, int k, const char *key, size_t klen)
{
    const jsmntok_t *t = &doc->tok[k];
    const char *s = doc->p + t->start;
    size_t n = (size_t) (t->end - t->start);
    char buf[64];
    size_t len;

    if (n == klen && memcmp(s, key, klen) == 0) {
        return true;
    }
    /* an escaped key may still decode to key: "mod\u0065l" is "model" */
    if (klen >= sizeof(buf) || n <= klen || memchr(s, '\\', n) == NULL) {
        return false;
    }
    if (json_unescape(s, n, NULL, &len) < 0 || len != klen) {
        return false;
    }
    if (json_unescape(s, n, buf, &len) < 0) {
        return false;
    }
    return memcmp(buf, key, klen) == 0;
}


int
sl_json_string(const sl_json_t *doc, int v, sl_pool_t *pool, sl_str_t *out)
{
    const jsmntok_t *t;
    const char *s;
    size_t n;
    size_t len;
    char *d;

    if (sl_json_type(doc, v) != SL_JSON_STRING) {
        return SL_EPARSE;
    }
    t = &doc->tok[v];
    s = doc->p + t->start;
    n = (size_t) (t->end - t->start);
    if (json_unescape(s, n, NULL, &len) < 0) {
        return SL_EPARSE;
    }
    if (memchr(s, '\\', n) == NULL) {
        *out = (sl_str_t){ s, n };
        return 0;
    }
    d = sl_palloc(pool, len + 1);
    json_unescape(s, n, d, &len);
    d[len] = '\0';
    *out = (sl_str_t){ d, len };
    return 0;
}


int
sl_json_string_len(const sl_json_t *doc, int v, size_t *len)
{
    const jsmntok_t *t;

    if (sl_json_type(doc, v) != SL_JSON_STRING) {
        return SL_EPARSE;
    }
    t = &doc->tok[v];
    return json_unescape(doc->p + t->start, (size_t) (t->end - t->start), NULL, len);
}


/*
 * Decodes the string body s[0..n) (no quotes) into dst, which has room for
 * n bytes, or only measures it when dst is NULL. Refuses what jansson
 * refuses: control characters, bad escapes, \u0000, unpaired surrogates and
 * invalid UTF-8. Returns 0 with the decoded length in *outlen, or SL_EPARSE.
 */
static int
json_unescape(const char *s, size_t n, char *dst, size_t *outlen)
{
    const char *p = s;
    const char *end = s + n;
    size_t o = 0;

    while (p < end) {
        unsigned char c = (unsigned char) *p;
        unsigned char buf[4];
        const unsigned char *src = buf;
        size_t k;

        if (c >= 0x20 && c < 0x80 && c != '\\') {
            /* the common case: a run of plain ASCII */
            const char *q = p + 1;

            while (q < end && (unsigned char) *q >= 0x20 && (unsigned char) *q < 0x80
                   && *q != '\\') {
                q++;
            }
            if (dst != NULL) {
                memcpy(dst + o, p, (size_t) (q - p));
            }
            o += (size_t) (q - p);
            p = q;
            continue;
        }
        if (c < 0x20) {
            return SL_EPARSE;
        }
        if (c >= 0x80) {
            k = json_utf8_len((const unsigned char *) p, (const unsigned char *) end);
            if (k == 0) {
                return SL_EPARSE;
            }
            src = (const unsigned char *) p;
            p += k;
        } else {
            unsigned cp;

            if (end - p < 2) {
                return SL_EPARSE;
            }
            k = 1;
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
                buf[0] = (unsigned char) p[1];
                break;
            case 'b':
                buf[0] = '\b';
                break;
            case 'f':
                buf[0] = '\f';
                break;
            case 'n':
                buf[0] = '\n';
                break;
            case 'r':
                buf[0] = '\r';
                break;
            case 't':
                buf[0] = '\t';
                break;
            case 'u':
                if (json_hex4(p + 2, end, &cp) < 0 || cp == 0) {
                    return SL_EPARSE;
                }
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return SL_EPARSE;
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;

                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u'
                        || json_hex4(p + 8, end, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
                        return SL_EPARSE;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
                k = json_utf8_put(cp, buf);
                p += 4;
                break;
            default:
                return SL_EPARSE;
            }
            p += 2;
        }
        if (dst != NULL) {
            memcpy(dst + o, src, k);
        }
        o += k;
    }
    *outlen = o;
    return 0;
}


/* Length of the valid UTF-8 sequence at p (not ASCII), or 0. */
static size_t
json_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t) (end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}


static int
json_hex4(const char *s, const char *end, unsigned *out)
{
    unsigned v = 0;

    if (end - s < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        char c = s[i];

        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned) (c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned) (c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned) (c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = v;
    return 0;
}


static size_t
json_utf8_put(unsigned cp, unsigned char *buf)
{
    if (cp < 0x80) {
        buf[0] = (unsigned char) cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (unsigned char) (0xc0 | (cp >> 6));
        buf[1] = (unsigned char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (unsigned char) (0xe0 | (cp >> 12));
        buf[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        buf[2] = (unsigned char) (0x80 | (cp & 0x3f));
        return 3;
    }
    buf[0] = (unsigned char) (0xf0 | (cp >> 18));
    buf[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
    buf[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
    buf[3] = (unsigned char) (0x80 | (cp & 0x3f));
    return 4;
}


int
sl_json_int(const sl_json_t *doc, int v, int64_t *out)
{
    const jsmntok_t *t;
    const char *p;
    const char *end;
    bool neg = false;
    uint64_t limit;
    uint64_t n = 0;

    if (sl_json_type(doc, v) != SL_JSON_NUMBER) {
        return SL_EPARSE;
    }
    t = &doc->tok[v];
    p = doc->p + t->start;
    end = doc->p + t->end;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (memchr(p, '.', (size_t) (end - p)) != NULL || memchr(p, 'e', (size_t) (end - p)) != NULL
        || memchr(p, 'E', (size_t) (end - p)) != NULL) {
        return SL_EPARSE;
    }
    limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    for (; p < end; p++) {
        unsigned d = (unsigned) (*p - '0');

        if (n > (limit - d) / 10) {
            return SL_ETOOBIG;
        }
        n = n * 10 + d;
    }
    if (neg) {
        *out = n == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) n;
    } else {
        *out = (int64_t) n;
    }
    return 0;
}


bool
sl_json_is_true(const sl_json_t *doc, int v)
{
    return sl_json_type(doc, v) == SL_JSON_TRUE;
}


int
sl_json_splice(sl_pool_t *pool, sl_str_t src, const sl_json_edit_t *edits, size_t n, sl_str_t *out)
{
    size_t len = 0;
    size_t at = 0;
    char *buf;
    char *d;

    for (size_t i = 0; i < n; i++) {
        const sl_json_edit_t *e = &edits[i];

        if (e->start < at || e->end < e->start || e->end > src.len) {
            return -EINVAL;
        }
        len += e->start - at;
        len += e->quote ? json_escaped_len(e->text) : e->text.len;
        at = e->end;
    }
    len += src.len - at;

    buf = sl_palloc(pool, len + 1);
    d = buf;
    at = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_json_edit_t *e = &edits[i];

        memcpy(d, src.p + at, e->start - at);
        d += e->start - at;
        if (e->quote) {
            d = json_escape(d, e->text);
        } else {
            memcpy(d, e->text.p, e->text.len);
            d += e->text.len;
        }
        at = e->end;
    }
    memcpy(d, src.p + at, src.len - at);
    d += src.len - at;
    *d = '\0';
    *out = (sl_str_t){ buf, len };
    return 0;
}


/* Bytes json_escape() writes for s, quotes included. */
static size_t
json_escaped_len(sl_str_t s)
{
    size_t n = 2;

    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.p[i];

        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r'
            || c == '\t') {
            n += 2;
        } else if (c < 0x20) {
            n += 6;
        } else {
            n++;
        }
    }
    return n;
}


/* Writes s as a JSON string at d, the way jansson's dump does; returns the end. */
static char *
json_escape(char *d, sl_str_t s)
{
    static const char hex[] = "0123456789ABCDEF";

    *d++ = '"';
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.p[i];
        char esc = 0;

        switch (c) {
        case '"':
            esc = '"';
            break;
        case '\\':
            esc = '\\';
            break;
        case '\b':
            esc = 'b';
            break;
        case '\f':
            esc = 'f';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        default:
            break;
        }
        if (esc != 0) {
            *d++ = '\\';
            *d++ = esc;
        } else if (c < 0x20) {
            memcpy(d, "\\u00", 4);
            d[4] = hex[c >> 4];
            d[5] = hex[c & 0xf];
            d += 6;
        } else {
            *d++ = (char) c;
        }
    }
    *d++ = '"';
    return d;
}


json_t *
sl_json_dom(sl_pool_t *pool, sl_str_t src)
{
    json_t *root = json_loadb(src.p, src.len, JSON_REJECT_DUPLICATES, NULL);

    if (root != NULL) {
        sl_pool_on_destroy(pool, json_decref_cb, root);
    }
    return root;
}


static void
json_decref_cb(void *arg)
{
    json_decref(arg);
}


void
sl_json_quote(sl_buf_t *b, sl_str_t s)
{
    size_t n = json_escaped_len(s);

    sl_buf_reserve(b, n);
    json_escape(b->p + b->len, s);
    b->len += n;
}
