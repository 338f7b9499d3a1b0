/*
 * Helpers the adapters share (providers/adapter.c): reading the provider's
 * JSON with the token reader into the literals of core/gateway/call.h,
 * SSE framing for raw stream events, and a per-stream scratch buffer. Only
 * providers/ includes this header. Worker context; nothing here does I/O.
 */
#ifndef SL_PROVIDERS_ADAPTER_INTERNAL_H
#define SL_PROVIDERS_ADAPTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"
#include "core/gateway/call.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/base/str.h"

/*
 * String v as a literal (its source bytes, quotes included) when it is one
 * jansson accepts (see call.h); sl_str_null otherwise (not a string, or a
 * control character, invalid UTF-8, \u0000). The literal points into the
 * document's source. len, when not NULL, gets the decoded length.
 */
sl_str_t sl__adapter_literal(const sl_json_t *doc, int v, size_t *len);

/*
 * Reads a whole answer's bytes into doc: all of them, or with skim (the
 * answer goes to the client as these bytes and nothing else reads it:
 * call->raw_answer) the top-level scalars and "usage" only, the other
 * containers skimmed (sl_json_parse_skim). sl_json_parse's returns.
 */
int sl__adapter_parse_answer(sl_json_t *doc, sl_str_t raw, bool skim);

/*
 * A copy of lit in pool (NUL-terminated), for an event's literal: the
 * stream's bytes are the SSE parser's, reused for the next event, while a
 * frontend may keep a literal (the START's id and model) for the rest of
 * the stream. An empty lit stays as it is.
 */
sl_str_t sl__adapter_keep(sl_pool_t *pool, sl_str_t lit);

/*
 * Any value v as a literal holding its JSON text with the whitespace
 * between tokens removed (a tool call's arguments): {"a": 1} becomes
 * "{\"a\":1}". In pool. Returns 0, or SL_EPARSE when v is absent or a
 * string under it (a key included) is not one jansson accepts.
 */
int sl__adapter_json_literal(sl_pool_t *pool, const sl_json_t *doc, int v, sl_str_t *out);

/*
 * One pass over object obj's members: vals[i] gets the value of keys[i],
 * or -1 (all -1 when obj is not an object). A repeated key gives its last
 * value, as jansson and sl_json_get() do; a key written with escapes is
 * found too (then through sl_json_get()). Cheaper than one sl_json_get()
 * per key on the hot paths.
 */
void sl__adapter_members(const sl_json_t *doc, int obj, const sl_str_t *keys, size_t n, int *vals);

/* As jansson's json_integer_value() of a count: the integer, 0 for anything else or < 0. */
uint64_t sl__adapter_uint(const sl_json_t *doc, int v);

/*
 * Appends one SSE event to b: "event: NAME\n" when event is not empty,
 * then one "data: " line per line of data (the parser joined multi-line
 * data with LF, and a bare line would be a field the client does not
 * expect), then the blank line.
 */
void sl__adapter_sse(sl_buf_t *b, sl_str_t event, sl_str_t data);

/*
 * A heap buffer freed with pool: a stream's scratch for the raw bytes of
 * one event at a time, so passing events raw allocates nothing per event.
 */
sl_buf_t *sl__adapter_buf(sl_pool_t *pool);

/* b's content as a string; p is never NULL (an empty b gives ""). */
sl_str_t sl__adapter_buf_str(const sl_buf_t *b);

/* The literal "s" of a NUL-terminated ASCII s without quotes or backslashes, in pool. */
sl_str_t sl__adapter_quote(sl_pool_t *pool, const char *s);

/*
 * Whether raw, a JSON string's text as the client sent it (quotes
 * included), is already how s is written: s needs no escape and raw is s
 * between quotes. An edit setting raw to s would change nothing.
 */
bool sl__adapter_same_string(sl_str_t raw, const char *s);

#endif
