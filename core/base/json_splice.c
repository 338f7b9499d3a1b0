/*
 * The splice (see json.h): sl_json_splice() copies a source with edits
 * applied, sl_json_splice_strings() edits string bodies of a parsed
 * document and moves its tokens instead of reading the copy again. Also
 * the JSON string escaping of quoted edits, which sl_json_quote() (and
 * through it the writer) uses too.
 */
#include "core/base/json.h"
#include "core/base/json_internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/*
 * 1 where the target has SSE2 (every x86-64), so that json_raw_plain16() is
 * a vector. A plain if tests it: what it guards is compiled either way.
 */
#if defined(__SSE2__)
#define JSON_SSE2 1
#else
#define JSON_SSE2 0
#endif

/* what may not stand as it is inside a JSON string: control bytes, '"' and '\\' */
static const unsigned char json_raw_bad[256] = {
    [0] = 1,  [1] = 1,  [2] = 1,  [3] = 1,  [4] = 1,  [5] = 1,   [6] = 1,    [7] = 1,  [8] = 1,
    [9] = 1,  [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1,  [15] = 1,   [16] = 1, [17] = 1,
    [18] = 1, [19] = 1, [20] = 1, [21] = 1, [22] = 1, [23] = 1,  [24] = 1,   [25] = 1, [26] = 1,
    [27] = 1, [28] = 1, [29] = 1, [30] = 1, [31] = 1, ['"'] = 1, ['\\'] = 1,
};

static size_t json_edits_before(const sl_json_edit_t *edits, size_t n, size_t lo, size_t at,
                                bool upto);
static bool json_raw_plain(const char *p, size_t n);
static inline bool json_raw_plain16(const char *p, size_t n) __attribute__((always_inline));
static char *json_put(char *d, const char *s, size_t n);
static size_t json_escaped_len(sl_str_t s);
static char *json_escape(char *d, sl_str_t s);
static char *json_escape_one(char *d, unsigned char c);
static unsigned json_esc16(const char *p);

/* the bytes an escape adds, by byte: "\\n" and its kind 1, "\\u001f" and its kind 5 */
static const unsigned char json_esc_extra[256] = {
    [0] = 5,  [1] = 5,  [2] = 5,  [3] = 5,  [4] = 5,  [5] = 5,   [6] = 5,    [7] = 5,  [8] = 1,
    [9] = 1,  [10] = 1, [11] = 5, [12] = 1, [13] = 1, [14] = 5,  [15] = 5,   [16] = 5, [17] = 5,
    [18] = 5, [19] = 5, [20] = 5, [21] = 5, [22] = 5, [23] = 5,  [24] = 5,   [25] = 5, [26] = 5,
    [27] = 5, [28] = 5, [29] = 5, [30] = 5, [31] = 5, ['"'] = 1, ['\\'] = 1,
};


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

        d = json_put(d, src.p + at, e->start - at);
        if (e->quote) {
            d = json_escape(d, e->text);
        } else {
            d = json_put(d, e->text.p, e->text.len);
        }
        at = e->end;
    }
    memcpy(d, src.p + at, src.len - at);
    d += src.len - at;
    *d = '\0';
    *out = (sl_str_t){ buf, len };
    return 0;
}


int
sl_json_splice_strings(sl_json_t *into, const sl_json_t *doc, const sl_json_edit_t *edits, size_t n,
                       sl_str_t *out)
{
    int64_t *shift;
    unsigned t = 0;
    size_t room = doc->len, any = 0, at = 0, b = 0; /* b: edits before the last token's start */
    int prev = 0;
    char *buf, *d;

    if (into == doc || doc->ntok == 0) {
        return -EINVAL;
    }
    /*
     * sl_json_splice() with each edit checked as it comes, into room for the
     * source and every edit's text (what valid edits write at most; a bad
     * edit leaves the piece unused in the pool), and shift[i]: how far the
     * edits before edit i moved what follows them
     */
    for (size_t i = 0; i < n; i++) {
        room += edits[i].text.len;
        any |= edits[i].text.len;
    }
    if (any > INT_MAX) {
        return -EINVAL; /* no text that long fits a document (and the sum cannot wrap) */
    }
    buf = sl_palloc(into->pool, room + 1);
    shift = sl_palloc(into->pool, (n + 1) * sizeof(*shift));
    shift[0] = 0;
    d = buf;
    for (size_t i = 0; i < n; i++) {
        const sl_json_edit_t *e = &edits[i];
        const sl__json_tok_t *tk = &doc->tok[t];

        if (e->quote || e->start < at || e->end < e->start || e->end > doc->len
            || !json_raw_plain(e->text.p, e->text.len)) {
            return -EINVAL;
        }
        /*
         * the last token starting at or before the edit: the string holding
         * it (the one of the edit before, most often: nothing starts inside a
         * string, so no later token starts before its end)
         */
        if (tk->type != SL_JSON_STRING || (size_t) tk->start > e->start
            || e->end > (size_t) tk->end) {
            while (t + 1 < doc->ntok && (size_t) doc->tok[t + 1].start <= e->start) {
                t++;
            }
            tk = &doc->tok[t];
            if (tk->type != SL_JSON_STRING || (size_t) tk->start > e->start
                || e->end > (size_t) tk->end) {
                return -EINVAL;
            }
        }
        d = json_put(d, doc->p + at, e->start - at);
        d = json_put(d, e->text.p, e->text.len);
        at = e->end;
        shift[i + 1] = shift[i] + (int64_t) e->text.len - (int64_t) (e->end - e->start);
    }
    d = json_put(d, doc->p + at, doc->len - at);
    *d = '\0';
    *out = (sl_str_t){ buf, (size_t) (d - buf) };
    if (into->cap < doc->ntok) {
        sl__json_tok_grow(into, doc->ntok);
    }
    memcpy(into->tok, doc->tok, sizeof(sl__json_tok_t) * doc->ntok);
    into->ntok = doc->ntok;
    into->p = out->p;
    into->len = out->len;
    into->work = 0;
    for (unsigned i = 0; i < into->ntok; i++) {
        sl__json_tok_t *tk = &into->tok[i];

        /*
         * a start moves with the edits before it, an end with those up to it
         * (a string's own); the tokens come in the order of their starts, so
         * the count of the one before is where the search starts
         */
        b = json_edits_before(edits, n, tk->start >= prev ? b : 0, (size_t) tk->start, false);
        prev = tk->start;
        tk->start = (int) ((int64_t) tk->start + shift[b]);
        tk->end = (int) ((int64_t) tk->end
                         + shift[json_edits_before(edits, n, b, (size_t) tk->end, true)]);
    }
    return 0;
}


#if defined(__SSE2__)
/*
 * json_raw_plain() of 4 <= n <= 16 bytes (a placeholder's few) as one
 * vector: two overlapping words of eight bytes, or below eight two
 * overlapping words of four, each twice.
 */
static inline bool
json_raw_plain16(const char *p, size_t n)
{
    uint64_t x, q;
    uint32_t lo, hi;
    __m128i v;

    if (n >= 8) {
        memcpy(&x, p, 8);
        memcpy(&q, p + n - 8, 8);
        v = _mm_set_epi64x((long long) q, (long long) x);
    } else {
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        v = _mm_set_epi32((int) hi, (int) lo, (int) hi, (int) lo);
    }
    return _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                       _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                          _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v)))
           == 0;
}
#else
/*
 * Without SSE2: never called (JSON_SSE2 is 0, and json_raw_plain()'s
 * eight-byte steps take these sizes too); the table, for a correct answer.
 */
static inline bool
json_raw_plain16(const char *p, size_t n)
{
    unsigned bad = 0;

    for (size_t k = 0; k < n; k++) {
        bad |= json_raw_bad[(unsigned char) p[k]];
    }
    return bad == 0;
}
#endif


/*
 * Whether p[0..n) may stand as it is inside a JSON string (no control
 * byte, '"' or '\\'). Up to sixteen bytes with SSE2 as one vector
 * (json_raw_plain16()); longer ones, and all without SSE2, eight bytes a
 * step, the last eight overlapping: a byte below 0x20, or one equal to '"'
 * or '\\' after an xor, leaves a borrow in its top bit (exact for "any",
 * which is all that is asked); the table below four.
 */
static bool
json_raw_plain(const char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, tops = 0x8080808080808080ULL;
    uint64_t acc = 0, x, q, b;
    uint32_t lo, hi;
    unsigned bad = 0;

    if (n < 4) {
        for (size_t k = 0; k < n; k++) {
            bad |= json_raw_bad[(unsigned char) p[k]];
        }
        return bad == 0;
    }
    if (JSON_SSE2 && n <= 16) {
        return json_raw_plain16(p, n);
    }
    for (size_t k = 0;; k += 8) {
        if (k + 8 > n) {
            if (n >= 8) {
                memcpy(&x, p + n - 8, 8);
            } else {
                memcpy(&lo, p, 4);
                memcpy(&hi, p + n - 4, 4);
                x = lo | (uint64_t) hi << 32;
            }
        } else {
            memcpy(&x, p + k, 8);
        }
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        acc |= ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b);
        if (k + 8 >= n) {
            return (acc & tops) == 0;
        }
    }
}


/* memcpy() of n bytes to d, the few bytes of a short piece without the call; returns d + n. */
static char *
json_put(char *d, const char *s, size_t n)
{
    uint64_t a, b;
    uint32_t x, y;

    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        /* two words of eight, overlapping */
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else {
        for (size_t k = 0; k < n; k++) {
            d[k] = s[k];
        }
    }
    return d + n;
}


/*
 * How many edits start before at (or at it, with upto), given that the
 * first lo do: steps of 1, 2, 4... from lo to a range that holds the
 * answer (most often lo itself: no edit starts inside most tokens), then
 * a binary search of it.
 */
static size_t
json_edits_before(const sl_json_edit_t *edits, size_t n, size_t lo, size_t at, bool upto)
{
    size_t step = 1, hi;

    while (lo + step <= n
           && (edits[lo + step - 1].start < at || (upto && edits[lo + step - 1].start == at))) {
        lo += step;
        step *= 2;
    }
    hi = lo + step - 1 < n ? lo + step - 1 : n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (edits[mid].start < at || (upto && edits[mid].start == at)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}


/*
 * Bytes json_escape() writes for s, quotes included: s's own, and what
 * its escapes add, found sixteen bytes at a time (json_esc16()).
 */
static size_t
json_escaped_len(sl_str_t s)
{
    size_t n = s.len + 2, i = 0;

    for (; i + 16 <= s.len; i += 16) {
        for (unsigned m = json_esc16(s.p + i); m != 0; m &= m - 1) {
            n += json_esc_extra[(unsigned char) s.p[i + (size_t) __builtin_ctz(m)]];
        }
    }
    for (; i < s.len; i++) {
        n += json_esc_extra[(unsigned char) s.p[i]];
    }
    return n;
}


/*
 * Writes s as a JSON string at d, the way jansson's dump does; returns the
 * end. Sixteen bytes at a time are stored whole and kept up to the first
 * byte that needs an escape (the rest is written again from there): d
 * always has room for them, since each byte of s takes one byte of d at
 * least.
 */
static char *
json_escape(char *d, sl_str_t s)
{
    size_t i = 0;

    *d++ = '"';
    while (i < s.len) {
        unsigned char c;

        if (i + 16 <= s.len) {
            unsigned m = json_esc16(s.p + i);

            memcpy(d, s.p + i, 16);
            if (m == 0) {
                d += 16;
                i += 16;
                continue;
            }
            d += __builtin_ctz(m);
            i += (size_t) __builtin_ctz(m);
        }
        c = (unsigned char) s.p[i++];
        if (json_esc_extra[c] == 0) {
            *d++ = (char) c;
        } else {
            d = json_escape_one(d, c);
        }
    }
    *d++ = '"';
    return d;
}


/* Writes the escape of c (a control byte, '"' or '\\') at d; returns the end. */
static char *
json_escape_one(char *d, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
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
        memcpy(d, "\\u00", 4);
        d[4] = hex[c >> 4];
        d[5] = hex[c & 0xf];
        return d + 6;
    }
    d[0] = '\\';
    d[1] = esc;
    return d + 2;
}


#if defined(__SSE2__)
/* The bits of the sixteen bytes at p that need an escape (a control byte, '"' or '\\'). */
static unsigned
json_esc16(const char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *) (const void *) p);

    return (unsigned) _mm_movemask_epi8(_mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
        _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v)));
}
#else
/* Without SSE2: the same from the table, a byte at a time. */
static unsigned
json_esc16(const char *p)
{
    unsigned m = 0;

    for (unsigned k = 0; k < 16; k++) {
        m |= (json_esc_extra[(unsigned char) p[k]] != 0 ? 1u : 0u) << k;
    }
    return m;
}
#endif


void
sl_json_quote(sl_buf_t *b, sl_str_t s)
{
    size_t n = json_escaped_len(s);

    sl_buf_reserve(b, n);
    json_escape(b->p + b->len, s);
    b->len += n;
}
