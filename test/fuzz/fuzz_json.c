/*
 * libFuzzer target for the JSON reader (core/base/json.c). The input is the
 * document. Beyond "no crash, no sanitizer report" it checks, aborting on
 * any mismatch:
 *   - linearity: the parse takes at most 4 * len + 8 steps (sl__json_work);
 *   - a refusal leaves no document and points inside the input;
 *   - the tree: every container's children (first/next) number its size,
 *     lie inside its bytes and in order, and keys are followed by values;
 *   - jansson (JSON_DECODE_ANY) agrees: what it takes the reader takes
 *     (but for the reader's depth limit, which counts keys too, and a NUL
 *     byte after a number or literal, which jansson skips), and what
 *     only the reader takes holds something the reader documents it leaves
 *     to the caller (a string sl_json_string() refuses, a number jansson
 *     cannot hold); when both take it, they hold the same values (strings
 *     decoded alike, integers and reals equal, sl_json_get() finding what
 *     json_object_get() finds);
 *   - sl_json_lookup() agrees with sl_json_get() and reports repeats;
 *   - splice: rewriting every string as sl_json_splice() quotes its decoded
 *     text gives a document both readers take with the same values, and
 *     sl_json_quote() writes the same bytes;
 *   - reuse: parsing a prefix first, then the document, with one reader,
 *     gives the same result as a fresh reader;
 *   - skim: sl_json_parse_skim() (keeping the first member's name) takes
 *     what the reader takes, within the same steps, with the same top-level
 *     members: each of the same type and bytes, the kept one and scalars
 *     with the same children, other containers with none; what it refuses
 *     the reader refuses.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_json
 *   build-fuzz/test/fuzz/fuzz_json -max_total_time=60 test/fuzz/corpus/json
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/json_internal.h"
#include "core/base/pool.h"

#define FUZZ_MAX_EDITS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok, const char *what);
static void fuzz_tree(const sl_json_t *doc, int v, size_t *count);
static bool fuzz_reader_only(const sl_json_t *doc, int v, int depth, sl_pool_t *pool);
static bool fuzz_number_fits(const sl_json_t *doc, int v, sl_pool_t *pool);
static void fuzz_same(const sl_json_t *doc, int v, json_t *j, sl_pool_t *pool);
static void fuzz_lookup(const sl_json_t *doc, int obj, sl_pool_t *pool);
static void fuzz_strings(const sl_json_t *doc, int v, sl_json_edit_t *edits, size_t *n,
                         sl_pool_t *pool);
static void fuzz_splice(const sl_json_t *doc, sl_str_t src, json_t *j, sl_pool_t *pool);
static void fuzz_skim(const sl_json_t *doc, const char *p, size_t size, int rc, sl_pool_t *pool);


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json: check failed: %s\n", what);
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_json_t *doc = sl_json_create(pool);
    sl_json_t *again = sl_json_create(pool);
    /* a copy of exactly size bytes: ASan sees any read past the end */
    char *p = sl_xmalloc(size + 1);
    sl_json_error_t err;
    json_error_t jerr;
    json_t *j;
    size_t count = 0;
    int rc;

    memcpy(p, data, size);
    rc = sl_json_parse(doc, p, size, &err);
    fuzz_check(sl__json_work(doc) <= 4 * (uint64_t) size + 8, "more than 4 * len + 8 steps");

    /* the same reader, used for a shorter document first, must not remember it */
    (void) sl_json_parse(again, p, size / 2, NULL);
    fuzz_check(sl_json_parse(again, p, size, NULL) == rc, "a reused reader disagrees");

    fuzz_skim(doc, p, size, rc, pool);
    j = json_loadb(p, size, JSON_DECODE_ANY, &jerr);
    if (rc < 0) {
        fuzz_check(rc == SL_EPARSE, "refused with another code than SL_EPARSE");
        fuzz_check(err.pos <= size && err.text != NULL, "error outside the input");
        fuzz_check(sl_json_type(doc, SL_JSON_ROOT) == SL_JSON_NONE, "a refused document remains");
        /* jansson skips a NUL byte after a number or literal: "[0\0,1]" is [0,1] to it */
        fuzz_check(j == NULL || strcmp(err.text, "maximum nesting depth reached") == 0
                       || (err.pos < size && p[err.pos] == '\0'),
                   "jansson takes what the reader refuses");
        goto out;
    }

    fuzz_check(sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_NONE, "no root");
    fuzz_check(sl_json_type(again, SL_JSON_ROOT) == sl_json_type(doc, SL_JSON_ROOT),
               "a reused reader reads another root");
    fuzz_tree(doc, SL_JSON_ROOT, &count);
    fuzz_check(sl_json_type(doc, (int) count) == SL_JSON_NONE, "tokens past the tree");
    fuzz_lookup(doc, SL_JSON_ROOT, pool);
    if (j == NULL) {
        fuzz_check(fuzz_reader_only(doc, SL_JSON_ROOT, 1, pool),
                   "only the reader takes a plain document");
        goto out;
    }
    fuzz_same(doc, SL_JSON_ROOT, j, pool);
    fuzz_splice(doc, (sl_str_t){ p, size }, j, pool);
    if (json_is_object(j) || json_is_array(j)) {
        /* the bridge: no crash; what it refuses jansson refuses with the same flags */
        json_t *dom = sl_json_dom(pool, (sl_str_t){ p, size });
        json_t *plain = json_loadb(p, size, JSON_REJECT_DUPLICATES, NULL);

        fuzz_check((dom == NULL) == (plain == NULL), "sl_json_dom differs from json_loadb");
        json_decref(plain);
    }

out:
    json_decref(j);
    free(p);
    sl_pool_destroy(pool);
    return 0;
}


/* The skim against the whole read (doc, rc) of the same bytes (see the header). */
static void
fuzz_skim(const sl_json_t *doc, const char *p, size_t size, int rc, sl_pool_t *pool)
{
    sl_json_t *sk = sl_json_create(pool);
    sl_str_t keep = sl_str_null;
    int first = sl_json_first(doc, SL_JSON_ROOT);
    int src;
    int k;

    if (rc == 0 && sl_json_type(doc, SL_JSON_ROOT) == SL_JSON_OBJECT && first >= 0) {
        keep = sl_json_raw(doc, first);
        keep = (sl_str_t){ keep.p + 1, keep.len - 2 }; /* the name as written, no quotes */
    }
    src = sl_json_parse_skim(sk, p, size, &keep, keep.p != NULL ? 1 : 0, NULL);
    fuzz_check(sl__json_work(sk) <= sl__json_work(doc) || rc < 0,
               "the skim takes more steps than the whole read");
    fuzz_check(sl__json_work(sk) <= 4 * (uint64_t) size + 8, "skim: more than 4 * len + 8 steps");
    if (rc < 0) {
        return; /* the skim may take it: it does not check every byte it passes */
    }
    fuzz_check(src == 0, "the skim refuses what the reader takes");
    fuzz_check(sl_json_type(sk, SL_JSON_ROOT) == sl_json_type(doc, SL_JSON_ROOT),
               "the skim reads another root");
    if (sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        fuzz_check(sl_json_size(sk, SL_JSON_ROOT) == sl_json_size(doc, SL_JSON_ROOT),
                   "the skim reads a top-level array otherwise");
        return;
    }
    fuzz_check(sl_json_size(sk, SL_JSON_ROOT) == sl_json_size(doc, SL_JSON_ROOT),
               "the skim reads another number of members");
    k = sl_json_first(sk, SL_JSON_ROOT);
    for (int d = first; d >= 0; d = sl_json_next(doc, SL_JSON_ROOT, d)) {
        int dv = sl_json_key_value(doc, d);
        int sv = sl_json_key_value(sk, k);
        sl_str_t a = sl_json_raw(doc, dv);
        sl_str_t b = sl_json_raw(sk, sv);
        sl_str_t dk = sl_json_raw(doc, d);
        sl_str_t sk_key = sl_json_raw(sk, k);
        bool kept = dk.len == keep.len + 2 && memcmp(dk.p + 1, keep.p, keep.len) == 0;
        bool scalar =
            sl_json_type(doc, dv) != SL_JSON_OBJECT && sl_json_type(doc, dv) != SL_JSON_ARRAY;

        fuzz_check(dk.p == sk_key.p && dk.len == sk_key.len, "the skim moves a key");
        fuzz_check(sl_json_type(sk, sv) == sl_json_type(doc, dv), "the skim reads another type");
        fuzz_check(a.len == b.len && a.p == b.p, "the skim spans a value otherwise");
        fuzz_check(
            sl_json_size(sk, sv)
                == (kept || scalar || sl_json_size(doc, dv) == 0 ? sl_json_size(doc, dv) : 0),
            "the skim reads a member's children otherwise");
        k = sl_json_next(sk, SL_JSON_ROOT, k);
    }
    fuzz_check(k == -1, "the skim reads more members");
}


/*
 * Walks the tree under v: counts its tokens (keys too) into *count and
 * checks each container's children against its size and its bytes.
 */
static void
fuzz_tree(const sl_json_t *doc, int v, size_t *count)
{
    sl_json_type_e type = sl_json_type(doc, v);
    sl_str_t raw = sl_json_raw(doc, v);
    size_t n = 0;
    size_t at;

    fuzz_check(raw.p != NULL && raw.len > 0, "a value without bytes");
    fuzz_check(sl_json_offset(doc, v) + raw.len
                   <= sl_json_raw(doc, SL_JSON_ROOT).len + sl_json_offset(doc, SL_JSON_ROOT),
               "a value past the root");
    (*count)++;
    if (type != SL_JSON_OBJECT && type != SL_JSON_ARRAY) {
        fuzz_check(sl_json_first(doc, v) == -1 && sl_json_size(doc, v) == 0,
                   "a scalar with children");
        return;
    }
    fuzz_check(raw.p[0] == (type == SL_JSON_OBJECT ? '{' : '['), "a container's first byte");
    fuzz_check(raw.p[raw.len - 1] == (type == SL_JSON_OBJECT ? '}' : ']'),
               "a container's last byte");
    at = sl_json_offset(doc, v) + 1;
    for (int c = sl_json_first(doc, v); c >= 0; c = sl_json_next(doc, v, c)) {
        sl_str_t cr = sl_json_raw(doc, c);

        fuzz_check(c == (int) *count, "children out of token order");
        fuzz_check(sl_json_offset(doc, c) >= at, "children out of byte order");
        fuzz_check(sl_json_offset(doc, c) + cr.len < sl_json_offset(doc, v) + raw.len,
                   "a child past its container");
        at = sl_json_offset(doc, c) + cr.len;
        if (type == SL_JSON_OBJECT) {
            int val = sl_json_key_value(doc, c);

            fuzz_check(sl_json_type(doc, c) == SL_JSON_STRING && val == c + 1,
                       "a key without value");
            (*count)++;
            fuzz_tree(doc, val, count);
            at = sl_json_offset(doc, val) + sl_json_raw(doc, val).len;
        } else {
            fuzz_check(sl_json_key_value(doc, c) == -1, "an element read as a key");
            fuzz_tree(doc, c, count);
        }
        n++;
    }
    fuzz_check(n == sl_json_size(doc, v), "children do not number the size");
}


/*
 * True when something under v is what the reader leaves to its caller and
 * jansson refuses while parsing: a string sl_json_string() refuses (keys
 * too), an integer past int64_t, a real that overflows a double; or more
 * than 2048 containers nest (the reader does not count an empty one, which
 * opens nothing, towards its limit; jansson does). depth: v's level.
 */
static bool
fuzz_reader_only(const sl_json_t *doc, int v, int depth, sl_pool_t *pool)
{
    sl_json_type_e type = sl_json_type(doc, v);
    size_t len;
    bool obj = type == SL_JSON_OBJECT;

    if (type == SL_JSON_STRING) {
        return sl_json_string_len(doc, v, &len) < 0;
    }
    if (type == SL_JSON_NUMBER) {
        return !fuzz_number_fits(doc, v, pool);
    }
    if (depth > 2048) {
        return true;
    }
    for (int c = sl_json_first(doc, v); c >= 0; c = sl_json_next(doc, v, c)) {
        if ((obj && sl_json_string_len(doc, c, &len) < 0)
            || fuzz_reader_only(doc, obj ? sl_json_key_value(doc, c) : c, depth + 1, pool)) {
            return true;
        }
    }
    return false;
}


/* A number jansson holds: an integer in int64_t, or a real that does not overflow. */
static bool
fuzz_number_fits(const sl_json_t *doc, int v, sl_pool_t *pool)
{
    sl_str_t raw = sl_json_raw(doc, v);
    int64_t n;
    int rc = sl_json_int(doc, v, &n);

    if (rc == 0) {
        return true;
    }
    if (rc == SL_ETOOBIG) {
        return false;
    }
    return isfinite(strtod(sl_pstrndup(pool, raw.p, raw.len), NULL));
}


/* The reader's value v and jansson's j hold the same. */
static void
fuzz_same(const sl_json_t *doc, int v, json_t *j, sl_pool_t *pool)
{
    sl_json_type_e type = sl_json_type(doc, v);
    sl_str_t s;
    int64_t n;
    size_t i = 0;

    switch (type) {
    case SL_JSON_OBJECT:
        fuzz_check(json_is_object(j), "object");
        for (int k = sl_json_first(doc, v); k >= 0; k = sl_json_next(doc, v, k)) {
            char *key;
            int got;

            fuzz_check(sl_json_string(doc, k, pool, &s) == 0, "a key jansson took");
            i++;
            if (s.len >= 64) {
                /* sl_json_get() decodes escaped keys only up to 63 bytes */
                continue;
            }
            key = sl_pstrndup(pool, s.p, s.len);
            got = sl_json_get(doc, v, key);
            /* the last of a repeated key, as jansson keeps it; each value compared once */
            fuzz_check(got >= k + 1, "sl_json_get misses a key or finds an earlier one");
            if (got == k + 1) {
                fuzz_same(doc, got, json_object_get(j, key), pool);
            }
        }
        fuzz_check(json_object_size(j) <= i, "jansson has more members");
        break;
    case SL_JSON_ARRAY:
        fuzz_check(json_is_array(j) && json_array_size(j) == sl_json_size(doc, v), "array");
        for (int e = sl_json_first(doc, v); e >= 0; e = sl_json_next(doc, v, e)) {
            fuzz_same(doc, e, json_array_get(j, i++), pool);
        }
        break;
    case SL_JSON_STRING:
        fuzz_check(json_is_string(j), "string");
        fuzz_check(sl_json_string(doc, v, pool, &s) == 0, "a string jansson took");
        fuzz_check(s.len == json_string_length(j) && memcmp(s.p, json_string_value(j), s.len) == 0,
                   "strings decode differently");
        break;
    case SL_JSON_NUMBER:
        fuzz_check(json_is_number(j), "number");
        if (json_is_integer(j)) {
            fuzz_check(sl_json_int(doc, v, &n) == 0 && n == json_integer_value(j), "integer");
        } else {
            fuzz_check(sl_json_int(doc, v, &n) == SL_EPARSE, "a real read as an integer");
        }
        break;
    case SL_JSON_TRUE:
        fuzz_check(json_is_true(j) && sl_json_is_true(doc, v), "true");
        break;
    case SL_JSON_FALSE:
        fuzz_check(json_is_false(j), "false");
        break;
    case SL_JSON_NULL:
        fuzz_check(json_is_null(j), "null");
        break;
    default:
        fuzz_check(0, "a value of no type");
    }
}


/*
 * sl_json_lookup() on obj with its own first keys (decoded, up to
 * SL_JSON_LOOKUP_MAX - 1) and one most likely absent: each value found is
 * the one sl_json_get() finds, unless a key asked for repeats (SL_EPARSE).
 */
static void
fuzz_lookup(const sl_json_t *doc, int obj, sl_pool_t *pool)
{
    const char *keys[SL_JSON_LOOKUP_MAX];
    int vals[SL_JSON_LOOKUP_MAX];
    size_t n = 0;
    int rc;

    if (sl_json_type(doc, obj) != SL_JSON_OBJECT) {
        fuzz_check(sl_json_get(doc, obj, "a") == -1, "a member of a non-object");
        return;
    }
    for (int k = sl_json_first(doc, obj); k >= 0 && n < SL_JSON_LOOKUP_MAX - 1;
         k = sl_json_next(doc, obj, k)) {
        sl_str_t s;

        if (sl_json_string(doc, k, pool, &s) < 0 || memchr(s.p, '\0', s.len) != NULL
            || s.len >= 64) {
            continue;
        }
        keys[n++] = sl_pstrndup(pool, s.p, s.len);
    }
    keys[n++] = "\x01 absent \x01";
    rc = sl_json_lookup(doc, obj, keys, n, vals);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            bool dup = false;

            for (size_t k = 0; k < i; k++) {
                dup = dup || strcmp(keys[k], keys[i]) == 0;
            }
            if (!dup) {
                fuzz_check(vals[i] == sl_json_get(doc, obj, keys[i]), "lookup differs from get");
            }
        }
    } else {
        fuzz_check(rc == SL_EPARSE, "lookup fails otherwise than SL_EPARSE");
    }
    /* sl_json_members: what sl_json_get answers, for the keys seen once in keys[] */
    {
        sl_str_t mkeys[SL_JSON_LOOKUP_MAX];
        size_t m = 0;

        for (size_t i = 0; i < n; i++) {
            bool dup = false;

            for (size_t k = 0; k < i; k++) {
                dup = dup || strcmp(keys[k], keys[i]) == 0;
            }
            if (!dup) {
                mkeys[m++] = (sl_str_t){ keys[i], strlen(keys[i]) };
            }
        }
        sl_json_members(doc, obj, mkeys, m, vals);
        for (size_t i = 0; i < m; i++) {
            fuzz_check(vals[i] == sl_json_get(doc, obj, mkeys[i].p), "members differs from get");
        }
    }
}


/* An edit per string under v (keys too), each its decoded text, quoted; up to FUZZ_MAX_EDITS. */
static void
fuzz_strings(const sl_json_t *doc, int v, sl_json_edit_t *edits, size_t *n, sl_pool_t *pool)
{
    sl_json_type_e type = sl_json_type(doc, v);

    if (*n == FUZZ_MAX_EDITS) {
        return;
    }
    if (type == SL_JSON_STRING) {
        sl_json_edit_t *e = &edits[*n];
        sl_str_t raw = sl_json_raw(doc, v);
        sl_buf_t b = SL_BUF_INIT;

        fuzz_check(sl_json_string(doc, v, pool, &e->text) == 0, "a string jansson took");
        e->start = sl_json_offset(doc, v);
        e->end = e->start + raw.len;
        e->quote = true;
        (*n)++;
        /* sl_json_quote() writes what the splice writes */
        sl_json_quote(&b, e->text);
        fuzz_check(b.len >= 2 && b.p[0] == '"' && b.p[b.len - 1] == '"', "quote");
        sl_buf_free(&b);
        return;
    }
    for (int c = sl_json_first(doc, v); c >= 0; c = sl_json_next(doc, v, c)) {
        fuzz_strings(doc, c, edits, n, pool);
        if (type == SL_JSON_OBJECT) {
            fuzz_strings(doc, sl_json_key_value(doc, c), edits, n, pool);
        }
    }
}


/* Every string rewritten by the splice: the same document to both readers. */
static void
fuzz_splice(const sl_json_t *doc, sl_str_t src, json_t *j, sl_pool_t *pool)
{
    sl_json_edit_t edits[FUZZ_MAX_EDITS];
    sl_json_t *out_doc = sl_json_create(pool);
    size_t n = 0;
    sl_str_t out;
    json_t *oj;

    fuzz_check(sl_json_splice(pool, src, edits, 0, &out) == 0 && out.len == src.len
                   && memcmp(out.p, src.p, src.len) == 0 && out.p[out.len] == '\0',
               "an empty splice is not a copy");
    fuzz_strings(doc, SL_JSON_ROOT, edits, &n, pool);
    fuzz_check(sl_json_splice(pool, src, edits, n, &out) == 0, "splice refused its edits");
    fuzz_check(out.p[out.len] == '\0', "splice not NUL-terminated");
    fuzz_check(sl_json_parse(out_doc, out.p, out.len, NULL) == 0, "the reader refuses a splice");
    oj = json_loadb(out.p, out.len, JSON_DECODE_ANY, NULL);
    fuzz_check(oj != NULL && json_equal(oj, j), "jansson reads a splice differently");
    json_decref(oj);
    if (n >= 2) {
        sl_json_edit_t swapped[2] = { edits[1], edits[0] };

        fuzz_check(sl_json_splice(pool, src, swapped, 2, &out) == -EINVAL,
                   "splice took edits out of order");
    }
}
