/*
 * The provider adapter interface. An adapter is a translator, not a client:
 * it never touches a socket, a timer or LMDB. The core owns all I/O and
 * calls these hooks to turn the internal request (core/gateway/call.h: an
 * OpenAI-shaped body, plus the client's own body for native forwarding)
 * into the provider's request, and the provider's bytes back into typed
 * answers and stream events that any frontend can encode.
 *
 * Adding a provider is one file here plus one line in registry.c.
 */
#ifndef SL_PROVIDERS_PROVIDER_H
#define SL_PROVIDERS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/conf/conf.h"
#include "core/gateway/call.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "core/base/str.h"

typedef struct sl_conf_ctx sl_conf_ctx_t;   /* defined by core/conf/conf_internal.h */
typedef struct sl_conf_node sl_conf_node_t; /* defined by core/conf/conf.c */

/* What an adapter without network answers (kind echo): a whole upstream response. */
typedef struct sl_local_reply {
    int status;
    const char *content_type; /* "application/json" or "text/event-stream" */
    const char *body;         /* request pool */
    size_t body_len;
} sl_local_reply_t;

struct sl_provider_ops {
    const char *kind; /* YAML `kind:` */

    /*
     * base_url used when the provider's YAML map has none (a public
     * service's well-known endpoint), or NULL when base_url is required.
     */
    const char *default_base_url;

    /*
     * The client API this adapter speaks natively, or SL_API_COUNT for
     * none (Gemini). When the client used that API, the adapter forwards
     * the client's own body (call->native) and sets raw on its answers.
     */
    sl_api_e api;

    /*
     * Further client APIs the adapter forwards natively, as bits (1u <<
     * SL_API_x): OpenAI's Responses for the openai and azure kinds. 0 for
     * none. sl_provider_speaks() tells both apart from translation.
     */
    unsigned native_apis;

    /*
     * Master, at config load: provider-specific keys of the provider's YAML
     * map. Allocates in the generation pool only, no I/O. May be NULL when
     * the kind has no keys of its own. Returns 0 or SL_ECONF (with the
     * message already recorded through cx).
     */
    int (*conf_parse)(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf);

    /*
     * Worker: the call -> method, path, headers, body. Request pool. The
     * credential is call->api_key (NULL: none). Returns 0; SL_ENOTFOUND when
     * the target's model cannot name a model of this provider (an adapter
     * that puts it into the URL path accepts letters, digits, '-', '_' and
     * '.', starting with a letter or digit: never a dot segment; the client
     * gets 400 invalid_model); SL_EPARSE when the call cannot be expressed
     * for this provider (a 400); SL_EDENIED when the kind does not serve
     * call->api (the next target may). Nothing is sent upstream on an error.
     */
    int (*build_request)(const void *conf, sl_call_t *call, sl_upstream_req_t *out);

    /*
     * Worker: a whole 2xx upstream body -> the typed answer (and raw, for
     * a client of the adapter's own API). Request pool. The answer's
     * literals and raw may point into body: keep body until the answer is
     * encoded. Returns 0 or SL_EUPSTREAM (not an answer).
     */
    int (*parse_response)(const void *conf, sl_call_t *call, const sl_buf_t *body,
                          sl_answer_t *out);

    /*
     * Worker: one upstream stream event -> zero or more typed events in out
     * (plus out->raw for a client of the adapter's own API). Keeps
     * st->usage, st->content_bytes and st->served_model current; sets
     * st->done at the provider's clean end (and pushes SL_EV_DONE) and
     * st->failed when the provider reported an error (and pushes
     * SL_EV_ERROR); after either, further events give nothing. Request
     * pool: the events' literals are copied there (a frontend may keep the
     * START's); out->raw is the adapter's scratch, valid until its next
     * call. Returns 0.
     *
     * Raw events. The clean end marker is the frontend's (encode_end), and
     * what a client sees of a provider's error is the driver's
     * (encode_stream_error): neither is passed raw. An event the client
     * must not see gets raw "" (p set, len 0). By adapter:
     *  - openai family and echo (SL_API_CHAT, raw only when the client's
     *    API is chat): every event as the provider sent it ("event:" line
     *    kept, one "data:" line per line), except "[DONE]", an in-band
     *    {"error": ...}, the usage-only chunk when the client did not ask
     *    for usage (sluice asked on its behalf), and the empty chunks of the
     *    providers that send them (Azure, Together, Fireworks, OpenRouter).
     *  - anthropic (SL_API_MESSAGES, raw only when the client's API is
     *    messages): every event as it came, its "event:" line included
     *    (message_start, content_block_*, message_delta, ping and types
     *    added later), except message_stop and `error`.
     *  - gemini: none (SL_API_COUNT).
     */
    int (*stream_event)(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_evs_t *out);

    /* Worker: upstream error status and body -> OpenAI error. Request pool. */
    int (*map_error)(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                     sl_error_t *out);

    /*
     * Optional, for kinds that answer without network (echo): the whole
     * upstream response for call, which the core then reads with
     * parse_response or stream_event as if it had come over the wire.
     * Request pool. Returns 0 or SL_EPARSE.
     */
    int (*local)(const void *conf, sl_call_t *call, sl_local_reply_t *out);
};

/* True when ops serves a client of api natively (ops->api or one of native_apis). */
static inline bool
sl_provider_speaks(const sl_provider_ops_t *ops, sl_api_e api)
{
    return ops->api == api || (ops->native_apis & (1u << api)) != 0;
}

#endif
