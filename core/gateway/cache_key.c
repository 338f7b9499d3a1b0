/*
 * What a cache key is made of (core/gateway/cache.h): the canonical form of
 * a JSON request, Cache-Control directives, and for the semantic cache the
 * last user turn of a chat and its content words. Pure functions on the
 * token reader (core/base/json.h): no jansson, no I/O.
 */
#include "core/gateway/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"

#define CACHE_EXP_DIGITS 15 /* exponents with more digits are kept as written */

/* A member of an object, for sorting by decoded key. */
typedef struct cache_member {
    sl_str_t key;
    int value;
    size_t pos; /* repeated keys keep their order */
} cache_member_t;

static int cache_value(const sl_json_t *doc, int v, const char *const *skip, int omit,
                       sl_pool_t *pool, sl_buf_t *out);
static int cache_object(const sl_json_t *doc, int v, const char *const *skip, int omit,
                        sl_pool_t *pool, sl_buf_t *out);
static int cache_member_cmp(const void *a, const void *b);
static void cache_len(sl_buf_t *out, char tag, size_t n);
static bool cache_skipped(const char *const *skip, sl_str_t key);
static bool cache_word_byte(unsigned char c);
static bool cache_digit(unsigned char c);
static int cache_words_cmp(const void *a, const void *b);
static uint32_t cache_fnv(const char *p, size_t len);
static size_t cache_stem(char *w, size_t len);
static int cache_message_text(const sl_json_t *doc, int content, sl_pool_t *pool, sl_str_t *text);

/* Sorted, so that sl_cache_stopword can search it. */
static const char *const cache_stopwords[] = {
    "about",  "also",      "am",       "an",      "and",   "answer",  "are",      "as",
    "at",     "be",        "because",  "been",    "being", "briefly", "but",      "by",
    "can",    "could",     "describe", "did",     "do",    "does",    "doing",    "explain",
    "for",    "from",      "give",     "had",     "has",   "have",    "having",   "he",
    "her",    "here",      "hers",     "herself", "him",   "himself", "his",      "how",
    "if",     "in",        "into",     "is",      "it",    "its",     "itself",   "just",
    "kindly", "know",      "let",      "like",    "ll",    "me",      "might",    "much",
    "must",   "my",        "myself",   "now",     "of",    "on",      "or",       "our",
    "ours",   "ourselves", "own",      "please",  "quick", "quickly", "re",       "really",
    "say",    "shall",     "she",      "should",  "show",  "so",      "such",     "tell",
    "thank",  "thanks",    "that",     "the",     "their", "theirs",  "them",     "themselves",
    "then",   "there",     "these",    "they",    "this",  "those",   "through",  "to",
    "us",     "ve",        "very",     "want",    "was",   "we",      "were",     "what",
    "whats",  "when",      "where",    "which",   "while", "who",     "whom",     "why",
    "will",   "with",      "would",    "you",     "your",  "yours",   "yourself", "yourselves",
};


int
sl_cache_canonical(const sl_json_t *doc, int v, const char *const *skip, int omit, sl_pool_t *pool,
                   sl_buf_t *out)
{
    return cache_value(doc, v, skip, omit, pool, out);
}


static int
cache_value(const sl_json_t *doc, int v, const char *const *skip, int omit, sl_pool_t *pool,
            sl_buf_t *out)
{
    sl_str_t s;
    int rc;

    if (v == omit) {
        sl_buf_append(out, "x", 1);
        return 0;
    }
    switch (sl_json_type(doc, v)) {
    case SL_JSON_OBJECT:
        return cache_object(doc, v, skip, omit, pool, out);
    case SL_JSON_ARRAY:
        cache_len(out, 'a', sl_json_size(doc, v));
        for (int e = sl_json_first(doc, v); e >= 0; e = sl_json_next(doc, v, e)) {
            rc = cache_value(doc, e, NULL, omit, pool, out);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    case SL_JSON_STRING:
        if (sl_json_string(doc, v, pool, &s) < 0) {
            return SL_EPARSE;
        }
        cache_len(out, 's', s.len);
        sl_buf_append(out, s.p, s.len);
        return 0;
    case SL_JSON_NUMBER:
        sl_buf_append(out, "n", 1);
        if (sl_cache_number(sl_json_raw(doc, v), out) != 0) {
            return SL_EPARSE;
        }
        sl_buf_append(out, ";", 1);
        return 0;
    case SL_JSON_TRUE:
        sl_buf_append(out, "t", 1);
        return 0;
    case SL_JSON_FALSE:
        sl_buf_append(out, "f", 1);
        return 0;
    case SL_JSON_NULL:
        sl_buf_append(out, "z", 1);
        return 0;
    default:
        return SL_EPARSE;
    }
}


/* Members sorted by decoded key (bytes, shorter first), then by position. */
static int
cache_object(const sl_json_t *doc, int v, const char *const *skip, int omit, sl_pool_t *pool,
             sl_buf_t *out)
{
    size_t n = sl_json_size(doc, v), m = 0;
    cache_member_t *mem;
    int rc;

    mem = sl_palloc(pool, (n > 0 ? n : 1) * sizeof(*mem));
    for (int k = sl_json_first(doc, v); k >= 0 && m < n; k = sl_json_next(doc, v, k)) {
        if (sl_json_string(doc, k, pool, &mem[m].key) < 0) {
            return SL_EPARSE;
        }
        if (skip != NULL && cache_skipped(skip, mem[m].key)) {
            continue;
        }
        mem[m].value = sl_json_key_value(doc, k);
        mem[m].pos = m;
        m++;
    }
    if (m > 1) {
        qsort(mem, m, sizeof(*mem), cache_member_cmp);
    }
    cache_len(out, 'o', m);
    for (size_t i = 0; i < m; i++) {
        cache_len(out, 's', mem[i].key.len);
        sl_buf_append(out, mem[i].key.p, mem[i].key.len);
        rc = cache_value(doc, mem[i].value, NULL, omit, pool, out);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


static int
cache_member_cmp(const void *a, const void *b)
{
    const cache_member_t *x = a, *y = b;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = n > 0 ? memcmp(x->key.p, y->key.p, n) : 0;

    if (c != 0) {
        return c;
    }
    if (x->key.len != y->key.len) {
        return x->key.len < y->key.len ? -1 : 1;
    }
    return x->pos < y->pos ? -1 : x->pos > y->pos ? 1 : 0;
}


/* A tag and a length, so that what follows cannot be read as anything else. */
static void
cache_len(sl_buf_t *out, char tag, size_t n)
{
    char b[24];
    size_t k = sizeof(b);

    b[--k] = ':';
    do {
        b[--k] = (char) ('0' + n % 10);
        n /= 10;
    } while (n != 0);
    b[--k] = tag;
    sl_buf_append(out, b + k, sizeof(b) - k);
}


static bool
cache_skipped(const char *const *skip, sl_str_t key)
{
    for (; *skip != NULL; skip++) {
        if (sl_str_eq(key, *skip)) {
            return true;
        }
    }
    return false;
}


/*
 * -?int(.frac)?([eE][+-]?exp)? -> [-]digits "e" exponent, the digits
 * without leading or trailing zeros (0 is "0e0", without a sign): the same
 * text for every spelling of one value, and every digit kept. An exponent
 * too long for an int64 is kept as written ("N" and the text), which only
 * tells apart spellings nobody sends.
 */
int
sl_cache_number(sl_str_t text, sl_buf_t *out)
{
    const char *p = text.p, *end = text.p + text.len;
    const char *ip, *fp = NULL;
    size_t il, fl = 0, lead = 0, trail = 0, total;
    bool neg = false, eneg = false;
    int64_t exp = 0;
    size_t edigits = 0;
    char buf[32];
    int n;

    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    ip = p;
    while (p < end && *p >= '0' && *p <= '9') {
        p++;
    }
    il = (size_t) (p - ip);
    if (il == 0) {
        return SL_EPARSE;
    }
    if (p < end && *p == '.') {
        fp = ++p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        fl = (size_t) (p - fp);
        if (fl == 0) {
            return SL_EPARSE;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p == end) {
            return SL_EPARSE;
        }
        while (p < end && *p == '0') {
            p++;
        }
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (++edigits > CACHE_EXP_DIGITS) {
                sl_buf_append(out, "N", 1);
                sl_buf_append(out, text.p, text.len);
                return 0;
            }
            exp = exp * 10 + (*p - '0');
        }
    }
    if (p != end) {
        return SL_EPARSE;
    }
    if (eneg) {
        exp = -exp;
    }
    /* the digits are int then frac; leading zeros, then trailing ones, go */
    total = il + fl;
    for (size_t i = 0; i < total; i++) {
        char c = i < il ? ip[i] : fp[i - il];

        if (c != '0') {
            break;
        }
        lead++;
    }
    if (lead == total) {
        sl_buf_append(out, "0e0", 3);
        return 0;
    }
    for (size_t i = total; i > lead; i--) {
        char c = i - 1 < il ? ip[i - 1] : fp[i - 1 - il];

        if (c != '0') {
            break;
        }
        trail++;
    }
    exp = exp - (int64_t) fl + (int64_t) trail;
    if (neg) {
        sl_buf_append(out, "-", 1);
    }
    for (size_t i = lead; i < total - trail; i++) {
        sl_buf_append(out, i < il ? &ip[i] : &fp[i - il], 1);
    }
    n = snprintf(buf, sizeof(buf), "e%lld", (long long) exp);
    sl_buf_append(out, buf, (size_t) n);
    return 0;
}


void
sl_cache_cc_parse(sl_str_t value, sl_cache_cc_t *out)
{
    const char *p = value.p, *end = value.p + value.len;

    memset(out, 0, sizeof(*out));
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t) (end - p));
        sl_str_t d = sl_str_trim((sl_str_t){ p, (size_t) ((comma != NULL ? comma : end) - p) });

        p = comma != NULL ? comma + 1 : end;
        if (sl_str_caseeq(d, "no-cache")) {
            out->no_cache = true;
        } else if (sl_str_caseeq(d, "no-store")) {
            out->no_store = true;
        } else if (d.len >= 8 && sl_mem_caseeq(d.p, "max-age=", 8)) {
            sl_str_t n = { d.p + 8, d.len - 8 };
            unsigned long long v = 0;

            if (n.len >= 2 && n.p[0] == '"' && n.p[n.len - 1] == '"') {
                n.p++;
                n.len -= 2;
            }
            out->max_age = true;
            /* a value that is not a number makes every entry too old */
            out->max_age_s = sl_str_to_u64(n, &v) == 0 ? (uint64_t) v : 0;
        }
    }
}


bool
sl_cache_stopword(const char *word, size_t len)
{
    size_t lo = 0, hi = sizeof(cache_stopwords) / sizeof(cache_stopwords[0]);

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *s = cache_stopwords[mid];
        size_t sl = strlen(s);
        int c = memcmp(word, s, len < sl ? len : sl);

        if (c == 0) {
            c = len < sl ? -1 : len > sl ? 1 : 0;
        }
        if (c == 0) {
            return true;
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return false;
}


static bool
cache_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}


static bool
cache_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}


int
sl_cache_words(sl_str_t text, sl_pool_t *pool, size_t max, uint32_t **out, uint32_t *n)
{
    const unsigned char *p = (const unsigned char *) text.p;
    size_t len = text.len, i = 0, k = 0;
    uint32_t *w = sl_palloc(pool, (max > 0 ? max : 1) * sizeof(*w));
    char word[128];

    while (i < len && k < max) {
        size_t wl = 0;
        bool ascii_letters = true;

        while (i < len && !cache_word_byte(p[i])) {
            i++;
        }
        while (i < len) {
            unsigned char c = p[i];

            if (cache_word_byte(c)) {
                if (wl < sizeof(word)) {
                    word[wl++] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
                }
                ascii_letters &= !(c >= 0x80 || cache_digit(c));
                i++;
            } else if ((c == '.' || c == ',') && wl > 0 && cache_digit((unsigned char) word[wl - 1])
                       && i + 1 < len && cache_digit(p[i + 1])) {
                if (wl < sizeof(word)) {
                    word[wl++] = (char) c;
                }
                i++;
            } else {
                break;
            }
        }
        if (wl == 0 || (wl == 1 && ascii_letters) || sl_cache_stopword(word, wl)) {
            continue;
        }
        if (ascii_letters) {
            wl = cache_stem(word, wl);
        }
        w[k++] = cache_fnv(word, wl);
    }
    if (k > 1) {
        size_t u = 1;

        qsort(w, k, sizeof(*w), cache_words_cmp);
        for (size_t j = 1; j < k; j++) {
            if (w[j] != w[u - 1]) {
                w[u++] = w[j];
            }
        }
        k = u;
    }
    *out = w;
    *n = (uint32_t) k;
    return 0;
}


/* Plurals: "cities" -> "city", "capitals" -> "capital"; not "glass", "virus", "analysis". */
static size_t
cache_stem(char *w, size_t len)
{
    if (len >= 5 && memcmp(w + len - 3, "ies", 3) == 0) {
        w[len - 3] = 'y';
        return len - 2;
    }
    if (len >= 4 && w[len - 1] == 's' && w[len - 2] != 's' && w[len - 2] != 'u'
        && w[len - 2] != 'i') {
        return len - 1;
    }
    return len;
}


static int
cache_words_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y ? 1 : 0;
}


static uint32_t
cache_fnv(const char *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char) p[i];
        h *= 16777619u;
    }
    return h;
}


int
sl_cache_prompt(const sl_json_t *doc, unsigned max_messages, sl_pool_t *pool, int *content,
                sl_str_t *text)
{
    int msgs = sl_json_get(doc, SL_JSON_ROOT, "messages");
    size_t n = sl_json_size(doc, msgs);
    int last = -1;
    sl_str_t role;

    if (sl_json_type(doc, msgs) != SL_JSON_ARRAY || n == 0 || n > max_messages) {
        return SL_EDENIED;
    }
    for (int m = sl_json_first(doc, msgs); m >= 0; m = sl_json_next(doc, msgs, m)) {
        if (sl_json_string(doc, sl_json_get(doc, m, "role"), pool, &role) < 0
            || sl_str_eq(role, "tool") || sl_str_eq(role, "function")
            || sl_json_get(doc, m, "tool_calls") >= 0 || sl_json_get(doc, m, "function_call") >= 0
            || sl_json_get(doc, m, "tool_call_id") >= 0) {
            return SL_EDENIED; /* a tool turn: its answer depends on more than words */
        }
        last = m;
    }
    if (sl_json_string(doc, sl_json_get(doc, last, "role"), pool, &role) < 0
        || !sl_str_eq(role, "user")) {
        return SL_EDENIED;
    }
    *content = sl_json_get(doc, last, "content");
    if (cache_message_text(doc, *content, pool, text) != 0 || text->len == 0) {
        return SL_EDENIED;
    }
    return 0;
}


/* A string, or an array of text parts joined with "\n"; anything else (images, ...) refuses. */
static int
cache_message_text(const sl_json_t *doc, int content, sl_pool_t *pool, sl_str_t *text)
{
    sl_buf_t b = SL_BUF_INIT;
    sl_str_t s, type;
    char *p;

    if (sl_json_type(doc, content) == SL_JSON_STRING) {
        return sl_json_string(doc, content, pool, text) < 0 ? SL_EDENIED : 0;
    }
    if (sl_json_type(doc, content) != SL_JSON_ARRAY) {
        return SL_EDENIED;
    }
    for (int e = sl_json_first(doc, content); e >= 0; e = sl_json_next(doc, content, e)) {
        if (sl_json_string(doc, sl_json_get(doc, e, "type"), pool, &type) < 0
            || !sl_str_eq(type, "text")
            || sl_json_string(doc, sl_json_get(doc, e, "text"), pool, &s) < 0) {
            sl_buf_free(&b);
            return SL_EDENIED;
        }
        if (b.len > 0) {
            sl_buf_append(&b, "\n", 1);
        }
        sl_buf_append(&b, s.p, s.len);
    }
    p = sl_palloc(pool, b.len + 1);
    if (b.len > 0) {
        memcpy(p, b.p, b.len);
    }
    p[b.len] = '\0';
    *text = (sl_str_t){ p, b.len };
    sl_buf_free(&b);
    return 0;
}
