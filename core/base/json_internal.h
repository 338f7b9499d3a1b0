/*
 * Module-private declarations of the JSON code (core/base/json*.c):
 *
 *   json.c         the token reader (sl_json_parse() and the lookups and
 *                  walks over its tokens), the strict check, the jansson
 *                  bridge
 *   json_write.c   the writer (sl_json_w_*), which writes tokens as well
 *   json_splice.c  the splice (sl_json_splice*) and sl_json_quote()
 *
 * and json.c's test hooks, for test/unit/test_json.c and the fuzz targets.
 * Nothing in the gateway includes this header.
 */
#ifndef SL_CORE_BASE_JSON_INTERNAL_H
#define SL_CORE_BASE_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/json.h"

#define SL__JSON_MAX_LEN ((size_t) 1 << 30) /* keeps every size under 2^29 */

/*
 * 16 bytes: a body of [],[],… needs a token per 3 bytes, so tokens are most
 * of what a hostile document costs (an 8 MiB body: 45 MB, each page of it
 * faulted in fresh).
 */
typedef struct sl__json_tok {
    int start;          /* first byte; a string's first byte after its quote */
    int end;            /* one past the last byte; a string's closing quote */
    int next;           /* index of the first token after the subtree (a key's holds its value) */
    unsigned size : 29; /* members or elements; 1 for a key, 0 for other scalars */
    unsigned type : 3;  /* sl_json_type_e */
} sl__json_tok_t;

_Static_assert(sizeof(sl__json_tok_t) == 16, "a token is 16 bytes");

struct sl_json {
    sl_pool_t *pool;
    const char *p;
    size_t len;
    sl__json_tok_t *tok; /* the pool's (JSON_INITIAL_TOKENS), then the heap's (heap), grown as
                            documents need; freed with the pool */
    unsigned ntok;       /* tokens of the current document, 0 when there is none */
    unsigned cap;        /* room in tok */
    bool heap;           /* tok is on the heap (free it) */
    uint64_t work;       /* steps of the last parse (sl__json_work) */
};

/*
 * A new token of doc (json.c's json_tok_add(), which the reader inlines);
 * the array doubles when full. Aborts on OOM (worker).
 */
int sl__json_tok_add(sl_json_t *doc, sl_json_type_e type, size_t start, size_t end);

/*
 * Room for need tokens in doc, doubling: the first array from the pool,
 * bigger ones on the heap. Aborts on OOM (worker).
 */
void sl__json_tok_grow(sl_json_t *doc, unsigned need);

/* First byte of value v in the source: a string's opening quote. */
static inline size_t
sl__json_raw_start(const sl_json_t *doc, int v)
{
    const sl__json_tok_t *t = &doc->tok[v];

    return t->type == SL_JSON_STRING ? (size_t) t->start - 1 : (size_t) t->start;
}

/* One past the last byte of value v: past a string's closing quote. */
static inline size_t
sl__json_raw_end(const sl_json_t *doc, int v)
{
    const sl__json_tok_t *t = &doc->tok[v];

    return t->type == SL_JSON_STRING ? (size_t) t->end + 1 : (size_t) t->end;
}

/*
 * Steps the last sl_json_parse() on doc took: every turn of the reader's
 * loops and every byte its scans passed (a skim's bytes, and a ',' or ':'
 * the reader steps over, one each, so a skim never takes more steps than
 * the whole read of the same bytes). The reader is linear when this
 * stays within a small multiple of the input's length for any input (the
 * tests hold it to 4 * len + 8). Any context.
 */
uint64_t sl__json_work(const sl_json_t *doc);

/* True when a and b hold the same bytes and the same tokens. Any context. */
bool sl__json_same(const sl_json_t *a, const sl_json_t *b);

#endif
