/*
 * Frontends: one per client wire format (OpenAI chat completions,
 * embeddings, Anthropic messages, OpenAI responses). A frontend decodes the
 * client's body into the internal request (core/gateway/call.h) and encodes
 * what comes back (a typed answer, typed stream events, errors) in the
 * client's format. It never does I/O; the driver owns the request.
 *
 * Worker context. Everything is allocated in the request pool.
 */
#ifndef SL_CORE_GATEWAY_FRONTEND_H
#define SL_CORE_GATEWAY_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>

#include "core/base/buf.h"
#include "core/gateway/call.h"
#include "core/base/pool.h"
#include "core/base/str.h"

typedef struct sl_frontend {
    const char *name; /* "chat", ...: sl_api_name(api) */
    sl_api_e api;

    /*
     * The client's body -> the internal request: fills call->api, raw,
     * doc, model, stream_options, native, native_doc, stream,
     * client_wants_usage and max_tokens (call->pool and request_id are
     * set). Returns 0, or SL_EPARSE with *err filled (status 400 and the
     * message the client gets) for a body the client must fix.
     */
    int (*decode)(sl_call_t *call, sl_str_t body, sl_error_t *err);

    /*
     * The public model name the client asked for (decoded; NUL-terminated
     * in pool): what routing, allow-lists and the ledger use. Only after a
     * successful decode.
     */
    const char *(*model)(const sl_call_t *call);

    /* A whole answer -> the client's body (appended to out). Returns 0 or SL_EPARSE. */
    int (*encode_answer)(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out);

    /*
     * Streams. stream_open makes the encoder's state for one attempt (the
     * driver opens a new one when an attempt is replaced before the commit
     * point). encode_events appends the SSE bytes of one batch (evs->raw
     * where it is set for this API); encode_end the clean end of the
     * stream (after the ledger row is written; usage is the request's
     * final usage); encode_stream_error an in-band error after which no
     * clean end follows. Each returns 0.
     */
    void *(*stream_open)(const sl_call_t *call);
    int (*encode_events)(void *state, const sl_evs_t *evs, sl_buf_t *out);
    int (*encode_end)(void *state, const sl_usage_t *usage, sl_buf_t *out);
    int (*encode_stream_error)(void *state, const sl_error_t *e, sl_buf_t *out);

    /* An error for the client -> the body in this format (NUL-terminated, in pool). */
    int (*encode_error)(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out);
} sl_frontend_t;

/* The frontend of api; NULL for one sluice does not serve. */
const sl_frontend_t *sl_frontend_get(sl_api_e api);

#endif
