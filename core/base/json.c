/*
 * The zero-copy JSON reader (see json.h). One forward pass over the bytes
 * checks the whole grammar and writes the tokens: each token records its
 * type, its span, its member count and next, the index just past its
 * subtree. Open containers wait on a stack, so a closing bracket or a comma
 * costs O(1) and the pass is linear in the input; every loop below advances
 * the cursor or closes a container it opened. (jsmn, which this replaced,
 * looked for the open container by walking back over earlier tokens: a
 * 1 MB body of [] took half a minute.) Also the string decoder shared by
 * lookups and callers, the strict check and the jansson bridge. The writer
 * (sl_json_w_*) is in json_write.c, the splice and sl_json_quote() in
 * json_splice.c.
 */
#include "core/base/json.h"
#include "core/base/json_internal.h"
#include "core/base/str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/base/errno.h"

#define JSON_INITIAL_TOKENS 64 /* a chat request or answer needs 10 to 50 */

/*
 * 1 where a word's first byte in memory is its lowest, which the eight-byte
 * steps of json_string_run() rely on (the lowest flagged byte is the first
 * stop). Elsewhere those and json_ascii_run()'s are skipped: a byte a step
 * does it all. Tested with a plain if, as json_splice.c tests JSON_SSE2.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSON_LITTLE_ENDIAN 1
#else
#define JSON_LITTLE_ENDIAN 0
#endif

/* One parse in progress. */
typedef struct json_parser {
    sl_json_t *doc;
    const char *p;
    size_t len;
    size_t pos; /* the cursor: it only moves forward */
    sl_json_error_t *err;
    uint64_t work;        /* loop steps, for sl__json_work() */
    int depth;            /* open non-empty containers and keys, for the limit */
    const sl_str_t *keep; /* sl_json_parse_skim(): members read whole, the rest skimmed */
    size_t nkeep;
    bool skim;                   /* top-level containers not in keep are skimmed */
    int nopen;                   /* entries in open */
    int open[SL_JSON_MAX_DEPTH]; /* open non-empty containers (token indexes), innermost last */
} json_parser_t;

/* Bytes that end a run of plain string bytes: the quote, an escape, and NUL (refused). */
static const bool json_string_stop[256] = { [0] = true, ['"'] = true, ['\\'] = true };

/* Bytes a skim stops at outside strings: a string's quote and the brackets. */
static const bool json_skim_stop[256] = {
    ['"'] = true, ['{'] = true, ['}'] = true, ['['] = true, [']'] = true,
};

static void json_free_cb(void *arg);
static int json_tokenize(json_parser_t *jp);
/* the pass's steps, inlined into it: a call per token was a third of a small document's cost */
static inline int json_read_value(json_parser_t *jp, int *out) __attribute__((always_inline));
static inline int json_read_key(json_parser_t *jp) __attribute__((always_inline));
static inline int json_read_string(json_parser_t *jp, int *out) __attribute__((always_inline));
static inline int json_string_end(json_parser_t *jp, size_t q, size_t *end)
    __attribute__((always_inline));
static bool json_skims(const json_parser_t *jp, int key);
static int json_skim(json_parser_t *jp, int t, int *out);
static size_t json_skim_run(const char *p, size_t q, size_t len);
static int json_parse(sl_json_t *doc, const char *p, size_t len, sl_json_error_t *err,
                      const sl_str_t *keep, size_t nkeep, bool skim);
static int json_read_number(json_parser_t *jp, int *out);
static int json_read_literal(json_parser_t *jp, int *out);
static inline int json_tok_add(sl_json_t *doc, sl_json_type_e type, size_t start, size_t end);
static int json_push(json_parser_t *jp, sl_json_type_e type, size_t start, size_t end);
static inline void json_skip_space(json_parser_t *jp) __attribute__((always_inline));
static void json_skip_space_run(json_parser_t *jp);
static inline size_t json_string_next(const char *p, size_t q, size_t len)
    __attribute__((always_inline));
static size_t json_string_run(const char *p, size_t q, size_t len);
static const char *json_ascii_run16(const char *p, const char *end);
static const char *json_text_run(const char *p, const char *end);
static bool json_string_run16(const char *p, size_t *q, size_t len);
static const char *json_ascii_run(const char *p, const char *end);
static bool json_is_digit(const json_parser_t *jp, size_t at);
static bool json_is_hex(char c);
static int json_fail(const sl_json_t *doc, sl_json_error_t *err, size_t pos, const char *text);
static int json_unescape(const char *s, size_t n, char *dst, size_t *outlen);
static int json_hex4(const char *s, const char *end, unsigned *out);
static size_t json_utf8_put(unsigned cp, unsigned char *buf);
static bool json_key_eq(const sl_json_t *doc, int k, const char *key, size_t klen);
static void json_decref_cb(void *arg);
static int json_strict_keys(const sl_json_t *doc, int obj, sl_pool_t *pool);
static int json_key_cmp(const void *a, const void *b);
static bool json_real_ok(const char *p, size_t n);

/* What json_read_value() and json_read_key() did besides failing. */
enum {
    JSON_DONE = 0, /* read a whole value (*out) */
    JSON_OPEN = 1, /* opened a container (an object's first key read too): its children come next */
};


sl_json_t *
sl_json_create(sl_pool_t *pool)
{
    sl_json_t *doc = sl_pcalloc(pool, sizeof(*doc));

    doc->pool = pool;
    sl_pool_on_destroy(pool, json_free_cb, doc);
    return doc;
}


static void
json_free_cb(void *arg)
{
    sl_json_t *doc = arg;

    if (doc->heap) {
        free(doc->tok);
    }
}


int
sl_json_parse(sl_json_t *doc, const char *p, size_t len, sl_json_error_t *err)
{
    return json_parse(doc, p, len, err, NULL, 0, false);
}


int
sl_json_parse_skim(sl_json_t *doc, const char *p, size_t len, const sl_str_t *keep, size_t nkeep,
                   sl_json_error_t *err)
{
    return json_parse(doc, p, len, err, keep, nkeep, true);
}


static int
json_parse(sl_json_t *doc, const char *p, size_t len, sl_json_error_t *err, const sl_str_t *keep,
           size_t nkeep, bool skim)
{
    json_parser_t jp;
    int rc;

    doc->ntok = 0;
    doc->work = 0;
    doc->p = p;
    doc->len = len;
    if (len >= SL__JSON_MAX_LEN) {
        if (err != NULL) {
            err->pos = 0;
            err->line = 1;
            err->column = 1;
            err->text = "document too large";
        }
        return SL_ETOOBIG;
    }
    /* jp holds the open-container stack, 8 KiB: fine on a worker's stack */
    jp.doc = doc;
    jp.p = p;
    jp.len = len;
    jp.pos = 0;
    jp.err = err;
    jp.work = 0;
    jp.depth = 0;
    jp.keep = keep;
    jp.nkeep = nkeep;
    jp.skim = skim;
    jp.nopen = 0;
    rc = json_tokenize(&jp);
    doc->work = jp.work;
    if (rc < 0) {
        doc->ntok = 0;
    }
    return rc;
}


uint64_t
sl__json_work(const sl_json_t *doc)
{
    return doc->work;
}


/*
 * The pass: read a value; when it completes a container's member, take the
 * ',' (and the next key) or the closing bracket, which may complete the
 * container in turn, and so on outwards. Each turn of either loop consumes
 * input or closes an open container.
 */
static int
json_tokenize(json_parser_t *jp)
{
    sl_json_t *doc = jp->doc;
    int t = -1; /* json_read_value sets it unless it fails (GCC 12 with --coverage cannot tell) */
    int rc;

    for (;;) {
        jp->work++;
        rc = json_read_value(jp, &t);
        if (rc < 0) {
            return rc;
        }
        if (rc == JSON_OPEN) {
            continue;
        }
        /* t is complete: record where its subtree ends, then close what it completes */
        for (;;) {
            int c;
            sl__json_tok_t *ct;

            jp->work++;
            doc->tok[t].next = (int) doc->ntok;
            if (jp->nopen == 0) {
                json_skip_space(jp);
                if (jp->pos != jp->len) {
                    return json_fail(doc, jp->err, jp->pos, "end of input expected");
                }
                return 0;
            }
            c = jp->open[jp->nopen - 1];
            ct = &doc->tok[c];
            if (ct->type == SL_JSON_OBJECT) {
                /* t is a member's value: its key's subtree ends here too */
                doc->tok[t - 1].next = (int) doc->ntok;
                jp->depth--;
            }
            ct->size++;
            json_skip_space(jp);
            if (jp->pos == jp->len) {
                return json_fail(doc, jp->err, jp->pos, "unexpected end of input");
            }
            if (jp->p[jp->pos] == ',') {
                jp->pos++;
                jp->work++; /* every byte a step, as a skim counts them */
                if (ct->type == SL_JSON_OBJECT) {
                    rc = json_read_key(jp);
                    if (rc < 0) {
                        return rc;
                    }
                }
                break;
            }
            if (jp->p[jp->pos] != (ct->type == SL_JSON_OBJECT ? '}' : ']')) {
                return json_fail(doc, jp->err, jp->pos,
                                 ct->type == SL_JSON_OBJECT ? "',' or '}' expected"
                                                            : "',' or ']' expected");
            }
            jp->pos++;
            ct->end = (int) jp->pos;
            jp->nopen--;
            jp->depth--;
            t = c;
        }
    }
}


/*
 * One value at the cursor (after whitespace). A scalar or an empty
 * container is read whole (JSON_DONE, *out its token); any other container
 * is opened (JSON_OPEN), and for an object its first key and ':' are read.
 */
static inline int
json_read_value(json_parser_t *jp, int *out)
{
    sl_json_t *doc = jp->doc;
    sl_json_type_e type = SL_JSON_ARRAY;
    char close = ']';
    int t;

    json_skip_space(jp);
    if (jp->pos == jp->len) {
        return json_fail(doc, jp->err, jp->pos,
                         doc->ntok == 0 ? "no JSON value" : "unexpected end of input");
    }
    switch (jp->p[jp->pos]) {
    case '{':
        type = SL_JSON_OBJECT;
        close = '}';
        /* fall through */
    case '[':
        t = json_push(jp, type, jp->pos, jp->pos);
        jp->pos++;
        json_skip_space(jp);
        if (jp->pos < jp->len && jp->p[jp->pos] == close) {
            jp->pos++;
            doc->tok[t].end = (int) jp->pos;
            *out = t;
            return JSON_DONE;
        }
        if (jp->depth == SL_JSON_MAX_DEPTH) {
            return json_fail(doc, jp->err, (size_t) doc->tok[t].start,
                             "maximum nesting depth reached");
        }
        if (jp->skim && json_skims(jp, t - 1)) {
            return json_skim(jp, t, out);
        }
        jp->open[jp->nopen++] = t;
        jp->depth++;
        if (type == SL_JSON_OBJECT) {
            int rc = json_read_key(jp);

            if (rc < 0) {
                return rc;
            }
        }
        return JSON_OPEN;
    case '"':
        return json_read_string(jp, out);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return json_read_number(jp, out);
    case 't':
    case 'f':
    case 'n':
        return json_read_literal(jp, out);
    default:
        return json_fail(doc, jp->err, jp->pos, "value expected");
    }
}


/* An object's key and its ':' (after whitespace); the key counts towards the depth limit. */
static inline int
json_read_key(json_parser_t *jp)
{
    sl_json_t *doc = jp->doc;
    int t;
    int rc;

    json_skip_space(jp);
    if (jp->pos == jp->len) {
        return json_fail(doc, jp->err, jp->pos, "unexpected end of input");
    }
    if (jp->p[jp->pos] != '"') {
        return json_fail(doc, jp->err, jp->pos, "string expected");
    }
    rc = json_read_string(jp, &t);
    if (rc < 0) {
        return rc;
    }
    doc->tok[t].size = 1;
    json_skip_space(jp);
    if (jp->pos == jp->len) {
        return json_fail(doc, jp->err, jp->pos, "unexpected end of input");
    }
    if (jp->p[jp->pos] != ':') {
        return json_fail(doc, jp->err, jp->pos, "':' expected");
    }
    jp->pos++;
    jp->work++;
    if (jp->depth == SL_JSON_MAX_DEPTH) {
        return json_fail(doc, jp->err, sl__json_raw_start(doc, t), "maximum nesting depth reached");
    }
    jp->depth++;
    return JSON_DONE;
}


/*
 * A string at the cursor (its opening quote). Escapes are checked for form
 * (what follows a backslash, four hex digits after \u); their meaning, and
 * the bytes between them, are left to json_unescape() when asked for. A NUL
 * byte is refused, as jsmn refused it.
 */
static inline int
json_read_string(json_parser_t *jp, int *out)
{
    size_t q = 0; /* json_string_end sets it unless it fails (likewise) */
    int rc = json_string_end(jp, jp->pos + 1, &q);

    if (rc < 0) {
        return rc;
    }
    *out = json_push(jp, SL_JSON_STRING, jp->pos + 1, q);
    jp->pos = q + 1;
    return JSON_DONE;
}


/*
 * The closing quote (*end) of the string whose bytes start at q, its escapes
 * checked for form as json_read_string() says. Returns JSON_DONE or the
 * failure.
 */
static inline int
json_string_end(json_parser_t *jp, size_t q, size_t *end)
{
    const char *p = jp->p;
    size_t len = jp->len;

    for (;;) {
        size_t from = q;

        q = json_string_next(p, q, len);
        jp->work += q - from + 1;
        if (q == len) {
            return json_fail(jp->doc, jp->err, len, "unexpected end of input");
        }
        if (p[q] == '"') {
            break;
        }
        if (p[q] == '\0') {
            return json_fail(jp->doc, jp->err, q, "NUL byte in string");
        }
        if (q + 1 == len) {
            return json_fail(jp->doc, jp->err, len, "unexpected end of input");
        }
        switch (p[q + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            q += 2;
            break;
        case 'u':
            if (len - q < 6) {
                return json_fail(jp->doc, jp->err, len, "unexpected end of input");
            }
            if (!json_is_hex(p[q + 2]) || !json_is_hex(p[q + 3]) || !json_is_hex(p[q + 4])
                || !json_is_hex(p[q + 5])) {
                return json_fail(jp->doc, jp->err, q, "invalid escape");
            }
            q += 6;
            break;
        default:
            return json_fail(jp->doc, jp->err, q, "invalid escape");
        }
    }
    *end = q;
    return JSON_DONE;
}


/*
 * Whether the container value of member key (a top-level member: the root
 * object is the only open container) is skimmed: its name is not one the
 * caller keeps. An escaped name is compared as written.
 */
static bool
json_skims(const json_parser_t *jp, int key)
{
    const sl__json_tok_t *k = &jp->doc->tok[key];
    size_t n = (size_t) (k->end - k->start);

    if (jp->nopen != 1 || jp->doc->tok[jp->open[0]].type != SL_JSON_OBJECT) {
        return false;
    }
    for (size_t i = 0; i < jp->nkeep; i++) {
        if (jp->keep[i].len == n && memcmp(jp->keep[i].p, jp->p + k->start, n) == 0) {
            return false;
        }
    }
    return true;
}


/*
 * The rest of the container t opened (the cursor is past its opening
 * bracket): brackets matched by kind, strings read for form
 * (json_string_end), the other bytes passed over, no token written. t spans
 * it and has no children. Linear; nesting is bounded as sl_json_parse()
 * bounds it, counting containers only.
 */
static int
json_skim(json_parser_t *jp, int t, int *out)
{
    sl_json_t *doc = jp->doc;
    const char *p = jp->p;
    char want[SL_JSON_MAX_DEPTH];
    int room = SL_JSON_MAX_DEPTH - jp->depth;
    size_t q = jp->pos;
    int n = 0;
    int rc;

    want[n++] = doc->tok[t].type == SL_JSON_OBJECT ? '}' : ']';
    while (n > 0) {
        size_t from = q;

        q = json_skim_run(p, q, jp->len);
        jp->work += q - from + 1;
        if (q == jp->len) {
            return json_fail(doc, jp->err, q, "unexpected end of input");
        }
        switch (p[q]) {
        case '"':
            rc = json_string_end(jp, q + 1, &q);
            if (rc < 0) {
                return rc;
            }
            break;
        case '{':
        case '[':
            if (n == room) {
                return json_fail(doc, jp->err, q, "maximum nesting depth reached");
            }
            want[n++] = p[q] == '{' ? '}' : ']';
            break;
        default:
            if (p[q] != want[n - 1]) {
                return json_fail(doc, jp->err, q,
                                 want[n - 1] == '}' ? "'}' expected" : "']' expected");
            }
            n--;
            break;
        }
        q++;
    }
    jp->pos = q;
    doc->tok[t].end = (int) q;
    *out = t;
    return JSON_DONE;
}


/* A number at the cursor, as RFC 8259 spells it; what follows it is the caller's. */
static int
json_read_number(json_parser_t *jp, int *out)
{
    size_t start = jp->pos;
    size_t q = start;

    if (jp->p[q] == '-') {
        q++;
    }
    if (q < jp->len && jp->p[q] == '0') {
        q++;
    } else if (json_is_digit(jp, q)) {
        while (json_is_digit(jp, q)) {
            q++;
        }
    } else {
        return json_fail(jp->doc, jp->err, start, "invalid literal or number");
    }
    if (q < jp->len && jp->p[q] == '.') {
        q++;
        if (!json_is_digit(jp, q)) {
            return json_fail(jp->doc, jp->err, start, "invalid literal or number");
        }
        while (json_is_digit(jp, q)) {
            q++;
        }
    }
    if (q < jp->len && (jp->p[q] == 'e' || jp->p[q] == 'E')) {
        q++;
        if (q < jp->len && (jp->p[q] == '+' || jp->p[q] == '-')) {
            q++;
        }
        if (!json_is_digit(jp, q)) {
            return json_fail(jp->doc, jp->err, start, "invalid literal or number");
        }
        while (json_is_digit(jp, q)) {
            q++;
        }
    }
    jp->work += q - start;
    *out = json_push(jp, SL_JSON_NUMBER, start, q);
    jp->pos = q;
    return JSON_DONE;
}


/* true, false or null at the cursor. */
static int
json_read_literal(json_parser_t *jp, int *out)
{
    static const struct {
        const char *text;
        size_t len;
        sl_json_type_e type;
    } lits[] = {
        { "true", 4, SL_JSON_TRUE },
        { "false", 5, SL_JSON_FALSE },
        { "null", 4, SL_JSON_NULL },
    };
    size_t left = jp->len - jp->pos;

    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
        if (left >= lits[i].len && memcmp(jp->p + jp->pos, lits[i].text, lits[i].len) == 0) {
            *out = json_push(jp, lits[i].type, jp->pos, jp->pos + lits[i].len);
            jp->pos += lits[i].len;
            jp->work += lits[i].len;
            return JSON_DONE;
        }
    }
    return json_fail(jp->doc, jp->err, jp->pos, "invalid literal or number");
}


/* A new token of doc; the array doubles when full (amortized O(1)). Aborts on OOM (worker). */
static inline int
json_tok_add(sl_json_t *doc, sl_json_type_e type, size_t start, size_t end)
{
    sl__json_tok_t *t;

    if (doc->ntok == doc->cap) {
        sl__json_tok_grow(doc, doc->ntok + 1);
    }
    t = &doc->tok[doc->ntok];
    t->type = (unsigned) type;
    t->start = (int) start;
    t->end = (int) end;
    t->size = 0;
    t->next = 0;
    return (int) doc->ntok++;
}


/* json_tok_add() for the writer (json_write.c): the reader's own calls stay inlined. */
int
sl__json_tok_add(sl_json_t *doc, sl_json_type_e type, size_t start, size_t end)
{
    return json_tok_add(doc, type, start, end);
}


/*
 * Room for need tokens in doc, doubling. The first array, JSON_INITIAL_TOKENS
 * (what a chat request or answer needs), is taken from the document's pool,
 * whose blocks a keep-alive connection's reset keeps: no heap call per
 * document. A bigger one moves to the heap, its tokens copied. Aborts on OOM.
 */
void
sl__json_tok_grow(sl_json_t *doc, unsigned need)
{
    unsigned cap = doc->cap == 0 ? JSON_INITIAL_TOKENS : doc->cap * 2;

    while (cap < need) {
        cap *= 2;
    }
    if (doc->cap == 0 && cap == JSON_INITIAL_TOKENS) {
        doc->tok = sl_palloc(doc->pool, sizeof(sl__json_tok_t) * cap);
    } else if (!doc->heap) {
        sl__json_tok_t *tok = sl_xmalloc(sizeof(sl__json_tok_t) * cap);

        if (doc->ntok > 0) {
            memcpy(tok, doc->tok, sizeof(sl__json_tok_t) * doc->ntok);
        }
        doc->tok = tok;
        doc->heap = true;
    } else {
        doc->tok = sl_xrealloc(doc->tok, sizeof(sl__json_tok_t) * cap);
    }
    doc->cap = cap;
}


/* A new token of the document being parsed. */
static int
json_push(json_parser_t *jp, sl_json_type_e type, size_t start, size_t end)
{
    jp->work++;
    return json_tok_add(jp->doc, type, start, end);
}


/* Whitespace at the cursor, skipped; compact JSON has none, and pays one compare in place. */
static inline void
json_skip_space(json_parser_t *jp)
{
    if (jp->pos >= jp->len || (unsigned char) jp->p[jp->pos] <= ' ') {
        json_skip_space_run(jp);
    }
}


static void
json_skip_space_run(json_parser_t *jp)
{
    size_t from = jp->pos;

    while (jp->pos < jp->len) {
        char c = jp->p[jp->pos];

        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            break;
        }
        jp->pos++;
    }
    jp->work += jp->pos - from;
}


#if defined(__SSE2__)
/*
 * Moves *q to the first stop byte (json_string_stop) at or after it,
 * sixteen bytes a step while sixteen remain, and returns true; false, *q
 * where fewer than sixteen remain, when none was found (the caller goes on
 * from there). One compare per stop byte and a mask: a key or a short
 * value is one step.
 */
static bool
json_string_run16(const char *p, size_t *q, size_t len)
{
    const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    const __m128i zero = _mm_setzero_si128();

    size_t at = *q;

    for (; at + 16 <= len; at += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (p + at));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bs)),
                                   _mm_cmpeq_epi8(x, zero));
        unsigned m = (unsigned) _mm_movemask_epi8(hit);

        if (m != 0) {
            *q = at + (size_t) __builtin_ctz(m);
            return true;
        }
    }
    *q = at;
    return false;
}


/*
 * The first byte a skim stops at (json_skim_stop) at or after q in
 * p[0..len), or len: sixteen bytes a step while sixteen remain (an
 * embedding's numbers pass at that pace). '[' and ']' are '{' and '}'
 * with bit 0x20 clear, so two compares find the four brackets.
 */
static size_t
json_skim_run(const char *p, size_t q, size_t len)
{
    const __m128i quote = _mm_set1_epi8('"'), lbrace = _mm_set1_epi8('{');
    const __m128i rbrace = _mm_set1_epi8('}'), bit = _mm_set1_epi8(0x20);

    for (; q + 16 <= len; q += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (p + q));
        __m128i y = _mm_or_si128(x, bit);
        __m128i hit =
            _mm_or_si128(_mm_cmpeq_epi8(x, quote),
                         _mm_or_si128(_mm_cmpeq_epi8(y, lbrace), _mm_cmpeq_epi8(y, rbrace)));
        unsigned m = (unsigned) _mm_movemask_epi8(hit);

        if (m != 0) {
            return q + (size_t) __builtin_ctz(m);
        }
    }
    while (q < len && !json_skim_stop[(unsigned char) p[q]]) {
        q++;
    }
    return q;
}


/*
 * json_string_run() with its first sixteen bytes looked at in place: a key
 * or a short value ends there, without a call.
 */
static inline size_t
json_string_next(const char *p, size_t q, size_t len)
{
    if (q + 16 <= len) {
        const __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (p + q));
        const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                                      _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                         _mm_cmpeq_epi8(x, _mm_setzero_si128()));
        unsigned m = (unsigned) _mm_movemask_epi8(hit);

        if (m != 0) {
            return q + (size_t) __builtin_ctz(m);
        }
        q += 16;
    }
    return json_string_run(p, q, len);
}


/*
 * json_ascii_run() sixteen bytes a step while sixteen remain: where the
 * first block with a byte below 0x20 or above 0x7f (negative, as signed
 * bytes: one compare finds both) or a backslash starts, or where fewer
 * than sixteen remain.
 */
static const char *
json_ascii_run16(const char *p, const char *end)
{
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *) (const void *) p);
        __m128i stop = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                                    _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
        unsigned m = (unsigned) _mm_movemask_epi8(stop);

        if (m != 0) {
            return p + __builtin_ctz(m);
        }
        p += 16;
    }
    return p;
}


/* The first backslash or control byte at or after p, or end: sixteen bytes a step, then one. */
static const char *
json_text_run(const char *p, const char *end)
{
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *) (const void *) p);
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x),
                                    _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
        unsigned m = (unsigned) _mm_movemask_epi8(stop);

        if (m != 0) {
            return p + __builtin_ctz(m);
        }
        p += 16;
    }
    while (p < end && (unsigned char) *p >= 0x20 && *p != '\\') {
        p++;
    }
    return p;
}
#else
/* Without SSE2: a byte a step. */
static const char *
json_text_run(const char *p, const char *end)
{
    while (p < end && (unsigned char) *p >= 0x20 && *p != '\\') {
        p++;
    }
    return p;
}


/* Without SSE2: json_ascii_run's eight-byte steps do it all. */
static const char *
json_ascii_run16(const char *p, const char *end)
{
    (void) end;
    return p;
}


/* Without SSE2: a byte a step. */
static size_t
json_skim_run(const char *p, size_t q, size_t len)
{
    while (q < len && !json_skim_stop[(unsigned char) p[q]]) {
        q++;
    }
    return q;
}


/* Without SSE2: json_string_run's eight-byte steps do it all. */
static bool
json_string_run16(const char *p, size_t *q, size_t len)
{
    (void) p;
    (void) q;
    (void) len;
    return false;
}


static inline size_t
json_string_next(const char *p, size_t q, size_t len)
{
    return json_string_run(p, q, len);
}
#endif


/*
 * The first stop byte (json_string_stop) at or after q in p[0..len), or
 * len. Past json_string_run16's blocks, eight bytes a step: a byte is zero, '"' or '\\' where the
 * word, XORed with it repeated, has a zero byte, and the lowest byte flagged by (x - 0x01..) & ~x &
 * 0x80.. is always a true one (a borrow only runs upwards from a zero byte), so the first flagged
 * byte is the first stop.
 */
static size_t
json_string_run(const char *p, size_t q, size_t len)
{
    /* sixteen bytes a step first (SSE2), then eight, then one */
    if (json_string_run16(p, &q, len)) {
        return q;
    }
    if (JSON_LITTLE_ENDIAN) {
        const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;

        for (; q + 8 <= len; q += 8) {
            uint64_t w, qt, bs, m;

            memcpy(&w, p + q, 8);
            qt = w ^ (ones * '"');
            bs = w ^ (ones * '\\');
            m = (((w - ones) & ~w) | ((qt - ones) & ~qt) | ((bs - ones) & ~bs)) & high;
            if (m != 0) {
                return q + (size_t) __builtin_ctzll(m) / 8;
            }
        }
    }
    while (q < len && !json_string_stop[(unsigned char) p[q]]) {
        q++;
    }
    return q;
}


/*
 * End of the run of plain ASCII (0x20 to 0x7f, no backslash) that starts at
 * p, at most end: sixteen bytes a step with SSE2, eight as
 * json_string_run(), then byte by byte.
 */
static const char *
json_ascii_run(const char *p, const char *end)
{
    p = json_ascii_run16(p, end);
    if (JSON_LITTLE_ENDIAN) {
        const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;

        while (end - p >= 8) {
            uint64_t w, bs;

            memcpy(&w, p, 8);
            bs = w ^ (ones * '\\');
            /* any byte >= 0x80, below 0x20 (exact for "any" since 0x20 <= 0x80) or a backslash */
            if (((w | ((w - ones * 0x20) & ~w) | ((bs - ones) & ~bs)) & high) != 0) {
                break;
            }
            p += 8;
        }
    }
    while (p < end && (unsigned char) *p >= 0x20 && (unsigned char) *p < 0x80 && *p != '\\') {
        p++;
    }
    return p;
}


static bool
json_is_digit(const json_parser_t *jp, size_t at)
{
    return at < jp->len && jp->p[at] >= '0' && jp->p[at] <= '9';
}


static bool
json_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
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


sl_json_type_e
sl_json_type(const sl_json_t *doc, int v)
{
    if (doc == NULL || v < 0 || (unsigned) v >= doc->ntok) {
        return SL_JSON_NONE;
    }
    return (sl_json_type_e) doc->tok[v].type;
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
    start = sl__json_raw_start(doc, v);
    return (sl_str_t){ doc->p + start, sl__json_raw_end(doc, v) - start };
}


size_t
sl_json_offset(const sl_json_t *doc, int v)
{
    if (sl_json_type(doc, v) == SL_JSON_NONE) {
        return 0;
    }
    return sl__json_raw_start(doc, v);
}


int
sl_json_get(const sl_json_t *doc, int obj, const char *key)
{
    size_t klen = strlen(key);
    int found = -1;
    int end;

    if (sl_json_type(doc, obj) != SL_JSON_OBJECT) {
        return -1;
    }
    /* a key's subtree holds its value: next steps from key to key, up to the object's end */
    end = doc->tok[obj].next;
    for (int k = obj + 1; k < end; k = doc->tok[k].next) {
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


void
sl_json_members(const sl_json_t *doc, int obj, const sl_str_t *keys, size_t n, int *vals)
{
    size_t shortest = SIZE_MAX;
    int end;

    for (size_t i = 0; i < n; i++) {
        vals[i] = -1;
        shortest = keys[i].len < shortest ? keys[i].len : shortest;
    }
    if (sl_json_type(doc, obj) != SL_JSON_OBJECT || doc->tok[obj].size == 0) {
        return;
    }
    /* a key's subtree holds its value: next steps from key to key, up to the object's end */
    end = doc->tok[obj].next;
    for (int k = obj + 1; k < end; k = doc->tok[k].next) {
        const sl__json_tok_t *t = &doc->tok[k];
        const char *name = doc->p + t->start;
        size_t len = (size_t) (t->end - t->start);
        size_t i;

        for (i = 0; i < n; i++) {
            if (keys[i].len == len && memcmp(keys[i].p, name, len) == 0) {
                vals[i] = k + 1;
                break;
            }
        }
        /*
         * a key that matched none may be an escaped one: "mod\u0065l" is
         * "model" (decoded lookups, rare enough). An escape is longer than
         * what it stands for, so a key no longer than the shortest wanted
         * one cannot be.
         */
        if (i == n && len > shortest && memchr(name, '\\', len) != NULL) {
            for (i = 0; i < n; i++) {
                vals[i] = sl_json_get(doc, obj, keys[i].p);
            }
            return;
        }
    }
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
    n = doc->tok[v].next;
    return n < doc->tok[parent].next ? n : -1;
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
    const sl__json_tok_t *t = &doc->tok[k];
    const char *s = doc->p + t->start;
    size_t n = (size_t) (t->end - t->start);
    char buf[64];
    size_t len;

    if (n == klen && memcmp(s, key, klen) == 0) {
        return true;
    }
    /*
     * an escaped key may still decode to key: "mod\u0065l" is "model". No
     * escape is longer than six times its bytes (\u0041 is "A"), so a raw
     * key past 6 * klen cannot match and is not decoded: a lookup costs
     * O(klen) per key however long the keys are.
     */
    if (klen >= sizeof(buf) || n <= klen || n > klen * 6 || memchr(s, '\\', n) == NULL) {
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
    const sl__json_tok_t *t;
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
    if (memchr(s, '\\', n) == NULL) {
        /* its bytes are its text: checked only */
        if (json_unescape(s, n, NULL, &len) < 0) {
            return SL_EPARSE;
        }
        *out = (sl_str_t){ s, n };
        return 0;
    }
    /* decoded in one pass: never longer than the escaped bytes */
    d = sl_palloc(pool, n + 1);
    if (json_unescape(s, n, d, &len) < 0) {
        return SL_EPARSE;
    }
    d[len] = '\0';
    *out = (sl_str_t){ d, len };
    return 0;
}


int
sl_json_string_len(const sl_json_t *doc, int v, size_t *len)
{
    const sl__json_tok_t *t;

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
            const char *q = json_ascii_run(p + 1, end);

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
            /* text in other scripts: up to the next escape or control byte, checked at once */
            const char *q = json_text_run(p + 1, end);

            if (sl_utf8_text(p, (size_t) (q - p)) < 0) {
                return SL_EPARSE;
            }
            if (dst != NULL) {
                memcpy(dst + o, p, (size_t) (q - p));
            }
            o += (size_t) (q - p);
            p = q;
            continue;
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
    const sl__json_tok_t *t;
    const char *p;
    const char *end;
    bool neg = false;
    bool over = false;
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
    limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    /* one pass: a fraction or an exponent (any byte but a digit) wins over an overflow */
    for (; p < end; p++) {
        unsigned d = (unsigned) (*p - '0');

        if (d > 9) {
            return SL_EPARSE;
        }
        if (over || n > (limit - d) / 10) {
            over = true;
            continue;
        }
        n = n * 10 + d;
    }
    if (over) {
        return SL_ETOOBIG;
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


/* ------------------------------------------------------------ strict */


int
sl_json_strict(const sl_json_t *doc, sl_pool_t *pool)
{
    for (unsigned i = 0; i < doc->ntok; i++) {
        const sl__json_tok_t *t = &doc->tok[i];
        size_t len;

        switch ((sl_json_type_e) t->type) {
        case SL_JSON_STRING:
            if (json_unescape(doc->p + t->start, (size_t) (t->end - t->start), NULL, &len) < 0) {
                return SL_EPARSE;
            }
            break;
        case SL_JSON_OBJECT:
            if (t->size > 1 && json_strict_keys(doc, (int) i, pool) < 0) {
                return SL_EPARSE;
            }
            break;
        case SL_JSON_NUMBER: {
            const char *p = doc->p + t->start;
            size_t n = (size_t) (t->end - t->start);
            int64_t v;

            if (memchr(p, '.', n) == NULL && memchr(p, 'e', n) == NULL
                && memchr(p, 'E', n) == NULL) {
                if (sl_json_int(doc, (int) i, &v) < 0) {
                    return SL_EPARSE;
                }
            } else if (!json_real_ok(p, n)) {
                return SL_EPARSE;
            }
            break;
        }
        default:
            break;
        }
    }
    return 0;
}


/* No key of obj (two members or more, strings already checked) repeats, compared decoded. */
static int
json_strict_keys(const sl_json_t *doc, int obj, sl_pool_t *pool)
{
    size_t n = doc->tok[obj].size;
    sl_str_t small[8];
    sl_str_t *keys = n <= 8 ? small : sl_palloc(pool, n * sizeof(*keys));
    size_t i = 0;

    for (int k = sl_json_first(doc, obj); k >= 0; k = sl_json_next(doc, obj, k)) {
        if (sl_json_string(doc, k, pool, &keys[i]) < 0) {
            return SL_EPARSE;
        }
        i++;
    }
    if (n <= 8) {
        for (size_t a = 0; a < n; a++) {
            for (size_t b = a + 1; b < n; b++) {
                if (keys[a].len == keys[b].len && memcmp(keys[a].p, keys[b].p, keys[a].len) == 0) {
                    return SL_EPARSE;
                }
            }
        }
        return 0;
    }
    qsort(keys, n, sizeof(*keys), json_key_cmp);
    for (i = 1; i < n; i++) {
        if (json_key_cmp(&keys[i - 1], &keys[i]) == 0) {
            return SL_EPARSE;
        }
    }
    return 0;
}


static int
json_key_cmp(const void *a, const void *b)
{
    const sl_str_t *x = a;
    const sl_str_t *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return x->len == 0 ? 0 : memcmp(x->p, y->p, x->len);
}


/* A real number (p[0..n), valid grammar) a double holds: strtod does not overflow. */
static bool
json_real_ok(const char *p, size_t n)
{
    char small[64];
    char *s = small;
    double d;
    bool ok;

    if (n >= sizeof(small)) {
        s = malloc(n + 1);
        if (s == NULL) {
            return false;
        }
    }
    memcpy(s, p, n);
    s[n] = '\0';
    errno = 0;
    d = strtod(s, NULL);
    ok = !(errno == ERANGE && (d > 1.0 || d < -1.0));
    if (s != small) {
        free(s);
    }
    return ok;
}


bool
sl__json_same(const sl_json_t *a, const sl_json_t *b)
{
    if (a->len != b->len || a->ntok != b->ntok || (a->len > 0 && memcmp(a->p, b->p, a->len) != 0)) {
        return false;
    }
    for (unsigned i = 0; i < a->ntok; i++) {
        const sl__json_tok_t *x = &a->tok[i];
        const sl__json_tok_t *y = &b->tok[i];

        if (x->start != y->start || x->end != y->end || x->next != y->next || x->size != y->size
            || x->type != y->type) {
            return false;
        }
    }
    return true;
}
