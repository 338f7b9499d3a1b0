/*
 * What the OpenAI wire-format adapters share: openai.c (OpenAI itself and
 * the OpenAI-compatible presets) and azure.c (Azure OpenAI, which speaks
 * the same bodies under other paths and another credential header). Only
 * providers/ includes this header.
 */
#ifndef SL_PROVIDERS_OPENAI_INTERNAL_H
#define SL_PROVIDERS_OPENAI_INTERNAL_H

#include <stdbool.h>

#include "providers/provider.h"

/*
 * What one member of the OpenAI family does differently from OpenAI.
 * Static data (openai.c's preset table); a preset's conf_parse hook puts a
 * copy in its provider's ext.
 */
typedef struct sl__openai_quirks {
    const char *kind;
    const char *const *drop; /* top-level chat keys the provider rejects, NULL-terminated */
    bool skip_empty_chunks;  /* the provider streams chunks with "choices": [] and no usage */
} sl__openai_quirks_t;

/*
 * The upstream request for call in OpenAI's shape: the internal request's
 * bytes (call->raw) with `model` set to the target's model,
 * stream_options.include_usage forced on for chat streams (unless q drops
 * stream_options), and, for chat, q's keys removed with one info log line
 * naming them (q may be NULL). path is the whole origin-form path
 * (base_path included); auth_name/auth_value is the credential header, or
 * NULL when the call has no key. Request pool. Returns 0 or SL_EPARSE (a
 * body the frontend did not read). Worker context.
 */
int sl__openai_build(sl_call_t *call, const sl__openai_quirks_t *q, const char *path,
                     const char *auth_name, const char *auth_value, sl_upstream_req_t *out);

/* OpenAI's path suffix for api ("/chat/completions", "/embeddings"), or NULL. */
const char *sl__openai_api_path(sl_api_e api);

/*
 * OpenAI's parse_response hook: the typed answer read with the token
 * reader (id, model, created, choices with text, reasoning_content, tool
 * calls and finish, usage with cached and reasoning tokens), and raw = the
 * body for a client of call->api. Embeddings: raw and usage only. The
 * answer's literals point into body. Returns 0 or SL_EUPSTREAM (not JSON).
 */
int sl__openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                              sl_answer_t *out);

/*
 * OpenAI's stream_event: one chat.completion.chunk (or "[DONE]", or an
 * in-band {"error": ...}) -> typed events (see openai.c), and, for a chat
 * client, the event raw as the provider sent it, except the usage-only
 * chunk the client did not ask for, "[DONE]" (the frontend's encode_end
 * writes the end), an error (the driver decides what the client sees) and,
 * when q says so, empty chunks. q may be NULL. Request pool; literals and
 * raw point into ev and a per-stream buffer: valid until the next call.
 */
int sl__openai_stream(sl_stream_t *st, const sl_sse_event_t *ev, const sl__openai_quirks_t *q,
                      sl_evs_t *out);

/* OpenAI's map_error hook: OpenAI's error shape, statuses mapped for the client. */
int sl__openai_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                         sl_error_t *out);

/*
 * OpenAI's Responses API forwarded natively (openai_responses.c): the
 * client's own body (call->native) with `model` set to model, to path,
 * with the credential header (auth_name NULL: none); sets
 * call->forwarded. Returns 0 or SL_EPARSE.
 */
int sl__openai_responses_build(sl_call_t *call, const char *model, const char *path,
                               const char *auth_name, const char *auth_value,
                               sl_upstream_req_t *out);

/*
 * A whole Responses body -> the typed answer (one choice: output text,
 * reasoning summary, function calls, usage) and raw = the body. Returns 0
 * or SL_EUPSTREAM.
 */
int sl__openai_responses_parse(sl_call_t *call, const sl_buf_t *body, sl_answer_t *out);

/* One Responses stream event -> typed events and raw (see openai_responses.c). Returns 0. */
int sl__openai_responses_stream(sl_stream_t *st, const sl_sse_event_t *ev, sl_evs_t *out);

#endif
