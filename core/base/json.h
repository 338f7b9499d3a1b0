/*
 * Zero-copy JSON reader for hot paths that pass a document on and only need
 * a few of its fields (the passthrough adapters, the proxy's checks). One
 * pass over the buffer checks the grammar (RFC 8259, nesting depth) and
 * writes a token per value and key, each linked to the one after its
 * subtree, so a lookup skips a whole subtree in one step. A value is a
 * token index into the document (SL_JSON_ROOT is the top value, -1 means
 * "absent"). Strings come back as sl_str_t borrowed from the buffer, or
 * decoded into the pool when they hold escapes.
 *
 * Costs, for hostile input too: sl_json_parse() is linear in len (it never
 * goes back over bytes or tokens; 16 bytes of tokens per value and key);
 * sl_json_next(), sl_json_first(), sl_json_type() and the like are O(1);
 * sl_json_get() and sl_json_lookup() are linear in the object's members
 * (each key compared in O(key asked for)); sl_json_string() is linear in
 * the string.
 *
 * Not checked for the whole document (the pass only finds where strings
 * end and that their escapes are well formed): control characters and
 * UTF-8 inside strings, \u0000 and surrogates, and repeated keys.
 * sl_json_string() checks all of these for the strings it returns and
 * sl_json_lookup() reports repeated keys among the ones asked for; a
 * provider rejects the rest itself. Translation that edits a document uses
 * jansson; sl_json_dom() builds that DOM from the same bytes.
 */
#ifndef SL_CORE_BASE_JSON_H
#define SL_CORE_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/base/pool.h"
#include "core/base/str.h"

#define SL_JSON_ROOT       0    /* the document's top value */
#define SL_JSON_MAX_DEPTH  2048 /* open containers and keys at once */
#define SL_JSON_LOOKUP_MAX 16   /* keys per sl_json_lookup() */

typedef struct sl_json sl_json_t;

typedef enum sl_json_type {
    SL_JSON_NONE = 0, /* no such value (index -1 or out of range) */
    SL_JSON_OBJECT,
    SL_JSON_ARRAY,
    SL_JSON_STRING,
    SL_JSON_NUMBER,
    SL_JSON_TRUE,
    SL_JSON_FALSE,
    SL_JSON_NULL,
} sl_json_type_e;

/* Where and why a document was refused. */
typedef struct sl_json_error {
    size_t pos;       /* byte offset of the problem */
    unsigned line;    /* 1-based */
    unsigned column;  /* 1-based, in bytes */
    const char *text; /* static, lower case, e.g. "',' or '}' expected" */
} sl_json_error_t;

/* One replacement for sl_json_splice(). */
typedef struct sl_json_edit {
    size_t start;  /* first replaced byte of the source */
    size_t end;    /* one past the last replaced byte; == start inserts */
    sl_str_t text; /* the new bytes */
    bool quote;    /* write text as a JSON string: quoted and escaped */
} sl_json_edit_t;

/*
 * Creates an empty reader in pool. Its token array is on the heap, grown
 * (doubled) as documents need and freed when pool is destroyed. One reader
 * can parse many documents in turn: each sl_json_parse() replaces the
 * previous one and reuses its memory. Aborts on OOM (worker). Owned by the
 * pool.
 */
sl_json_t *sl_json_create(sl_pool_t *pool);

/*
 * Reads p[0..len), which must outlive every use of the values. Any JSON
 * value may be the top one. Returns 0; SL_EPARSE with *err filled (err may
 * be NULL) when the bytes are not one JSON value; SL_ETOOBIG when len is
 * 1 GiB or more (the reader's offsets and sizes). After an error the reader holds
 * no document. Linear in len. Worker context; grows the reader's token
 * array (heap, released with the pool) when a document needs more.
 */
int sl_json_parse(sl_json_t *doc, const char *p, size_t len, sl_json_error_t *err);

/*
 * sl_json_parse() for a caller that reads a few members of a top-level
 * object and passes the bytes on: the value of a top-level member that is a
 * non-empty object or array and whose name (as written) is none of the
 * nkeep names in keep is skimmed, not read. Its brackets are matched by
 * kind and its strings checked as the reader checks them, but nothing else
 * in it is held to the grammar, and it becomes one token with no children
 * (sl_json_size() 0; sl_json_raw() gives its bytes, which sl_json_parse()
 * can read on their own). The rest of the document is read as
 * sl_json_parse() reads it. Same returns and costs; a skimmed value costs
 * no token.
 */
int sl_json_parse_skim(sl_json_t *doc, const char *p, size_t len, const sl_str_t *keep,
                       size_t nkeep, sl_json_error_t *err);

/*
 * Type of value v; SL_JSON_NONE for -1, an index out of range, a reader
 * holding no document, or doc NULL. Every reading call below takes these and
 * answers "absent" (-1, 0, an empty string, SL_EPARSE).
 */
sl_json_type_e sl_json_type(const sl_json_t *doc, int v);

/* Members of an object, elements of an array, 0 for anything else. */
size_t sl_json_size(const sl_json_t *doc, int v);

/* The value's bytes in the source, strings with their quotes; sl_str_null for -1. */
sl_str_t sl_json_raw(const sl_json_t *doc, int v);

/* Byte offset of the value's first byte in the source (a string's quote). */
size_t sl_json_offset(const sl_json_t *doc, int v);

/*
 * Value of key in object obj, or -1 (also when obj is not an object). Keys
 * are compared decoded ("mod\u0065l" is "model"); a repeated key gives its
 * last value, as jansson does.
 */
int sl_json_get(const sl_json_t *doc, int obj, const char *key);

/* As sl_json_get along a dotted path of objects: "usage.prompt_tokens_details.cached_tokens". */
int sl_json_path(const sl_json_t *doc, int obj, const char *path);

/*
 * One pass over obj's members: vals[i] gets the value of keys[i] or -1.
 * Returns 0; SL_EPARSE when one of keys appears twice (vals then holds what
 * was seen so far); -EINVAL for more than SL_JSON_LOOKUP_MAX keys. obj not
 * an object leaves every vals[i] at -1.
 */
int sl_json_lookup(const sl_json_t *doc, int obj, const char *const *keys, size_t n, int *vals);

/*
 * One pass over object obj's members: vals[i] gets the value of keys[i]
 * (NUL-terminated, no two alike), or -1 (all -1 when obj is not an
 * object). Answers what sl_json_get() answers for each key (a repeated
 * member gives its last value; a member written with escapes is found too,
 * through sl_json_get()), in one walk over the tokens.
 */
void sl_json_members(const sl_json_t *doc, int obj, const sl_str_t *keys, size_t n, int *vals);

/* First element of an array or first key of an object; -1 when empty or not a container. */
int sl_json_first(const sl_json_t *doc, int v);

/* The element or key after v inside container parent, or -1. */
int sl_json_next(const sl_json_t *doc, int parent, int v);

/* The value of object key k (as returned by sl_json_first/next). */
int sl_json_key_value(const sl_json_t *doc, int k);

/*
 * String value v, decoded. Borrowed from the source when it holds no escape,
 * else decoded into pool (not NUL-terminated in either case). Returns 0,
 * SL_EPARSE when v is not a string or holds a control character, invalid
 * UTF-8, \u0000 or an unpaired surrogate (what jansson refuses).
 */
int sl_json_string(const sl_json_t *doc, int v, sl_pool_t *pool, sl_str_t *out);

/* Decoded byte length of string v, no allocation. Returns 0 or SL_EPARSE as sl_json_string. */
int sl_json_string_len(const sl_json_t *doc, int v, size_t *len);

/*
 * Integer value v (a number without fraction or exponent). Returns 0;
 * SL_ETOOBIG when it does not fit int64_t; SL_EPARSE for anything else.
 */
int sl_json_int(const sl_json_t *doc, int v, int64_t *out);

/* True when v is the literal true. */
bool sl_json_is_true(const sl_json_t *doc, int v);

/*
 * Copies src with edits applied into one pool allocation, NUL-terminated
 * (the NUL is not counted in out->len). Edits are in source order and do
 * not overlap; a quoted edit's text is escaped as jansson's json_dumps()
 * escapes a string (", \, control characters; UTF-8 and / as they are).
 * Returns 0 or -EINVAL for edits out of order or out of range. Aborts on
 * OOM (worker).
 */
int sl_json_splice(sl_pool_t *pool, sl_str_t src, const sl_json_edit_t *edits, size_t n,
                   sl_str_t *out);

/*
 * sl_json_splice() of doc's own source (out, in into's pool) where every
 * edit replaces bytes inside one string's body (from its first byte after
 * the opening quote up to its closing quote) by unquoted text that is
 * plain string content (no '"', '\\' or control byte): the document's
 * shape is unchanged, so into gets doc's tokens moved to where they now
 * are instead of reading out again (a string's value is then its new
 * bytes). into is another reader (its previous document is replaced).
 * Returns 0, or -EINVAL for edits out of order or range, quoted, not
 * inside one string's body or with such a byte (into is then unchanged).
 * Aborts on OOM (worker).
 */
int sl_json_splice_strings(sl_json_t *into, const sl_json_t *doc, const sl_json_edit_t *edits,
                           size_t n, sl_str_t *out);

/*
 * Appends s to b as a JSON string: quoted and escaped as sl_json_splice()
 * escapes quoted edits (jansson's json_dumps() way). s must be valid UTF-8
 * (a decoded sl_json_string() is). Aborts on OOM (worker).
 */
void sl_json_quote(sl_buf_t *b, sl_str_t s);

/*
 * Checks what sl_json_parse() leaves unchecked, over the whole document, as
 * jansson with JSON_REJECT_DUPLICATES checks it: every string and key
 * decodes (sl_json_string()'s rules), no object repeats a key (compared
 * decoded), every integer fits int64_t and no real overflows a double.
 * A document that passes can be copied piecewise (sl_json_w_value()) into
 * one jansson takes. pool: decoded keys with escapes, and the key lists of
 * large objects. Returns 0 or SL_EPARSE. Linear in the document, plus
 * n log n in the members of objects of more than 8 members. Worker context.
 */
int sl_json_strict(const sl_json_t *doc, sl_pool_t *pool);

/*
 * A writer: a document written and tokenized at once, so a translation
 * that produces JSON for the token reader needs no second pass over what it
 * wrote. Values go in document order; commas and colons are the writer's.
 * sl_json_w_finish() hands the bytes and their tokens to a reader, which
 * then holds exactly what sl_json_parse() of the same bytes would hold.
 * Misuse (a key outside an object, a value where a key is due, more than
 * SL_JSON_W_DEPTH open containers, finishing with one open) makes finish
 * fail. In the pool; aborts on OOM (worker).
 */
#define SL_JSON_W_DEPTH 32 /* containers the writer itself may hold open */

typedef struct sl_json_w sl_json_w_t;

/* A writer whose document doc (a reader of pool) receives at finish. */
sl_json_w_t *sl_json_w_create(sl_pool_t *pool, sl_json_t *doc);

/* Opens an object (true) or an array, as a value. */
void sl_json_w_open(sl_json_w_t *w, bool object);

/* Closes the innermost open container. */
void sl_json_w_close(sl_json_w_t *w);

/* A key of the open object: key is valid UTF-8 (quoted and escaped here). */
void sl_json_w_key(sl_json_w_t *w, sl_str_t key);

/* A string value: s is valid UTF-8 (quoted and escaped here). */
void sl_json_w_str(sl_json_w_t *w, sl_str_t s);

/*
 * A number, true, false or null: text is the literal's bytes (a valid JSON
 * number for SL_JSON_NUMBER).
 */
void sl_json_w_scalar(sl_json_w_t *w, sl_json_type_e type, sl_str_t text);

/*
 * A copy of value v of src (another reader), bytes and tokens: src's
 * document must be one sl_json_strict() took (or the writer's own output)
 * for the result to be one jansson takes.
 */
void sl_json_w_value(sl_json_w_t *w, const sl_json_t *src, int v);

/* Bytes written so far (0: nothing yet). */
size_t sl_json_w_len(const sl_json_w_t *w);

/*
 * Ends the document: *out is its bytes (in pool, NUL-terminated, the NUL
 * not counted) and the reader given at create reads them. Returns 0, or
 * -EINVAL for a writer misused or without one whole value (the reader then
 * holds no document).
 */
int sl_json_w_finish(sl_json_w_t *w, sl_str_t *out);

/*
 * jansson DOM of src (duplicate keys refused, as the proxy always did),
 * released when pool is destroyed; NULL when jansson refuses the bytes.
 * For adapters that translate (they want a DOM to edit).
 */
json_t *sl_json_dom(sl_pool_t *pool, sl_str_t src);

#endif
