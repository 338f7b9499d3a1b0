/*
 * The provider adapter interface. An adapter is a translator, not a client:
 * it never touches a socket, a timer or LMDB. The core owns all I/O and
 * calls these hooks to turn an OpenAI-shaped call into the provider's
 * request, and the provider's bytes back into OpenAI-shaped bytes.
 *
 * Adding a provider is one file here plus one line in registry.c.
 */
#ifndef SL_PROVIDERS_PROVIDER_H
#define SL_PROVIDERS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/json.h"
#include "core/pool.h"
#include "core/sse.h"
#include "core/str.h"
#include "core/upstream.h"

typedef enum sl_endpoint {
    SL_ENDPOINT_CHAT = 0,   /* POST /v1/chat/completions */
    SL_ENDPOINT_EMBEDDINGS, /* POST /v1/embeddings */
    SL_ENDPOINT_MESSAGES,   /* POST /v1/messages (Anthropic shape in) */
} sl_endpoint_e;

/* Token counts of one exchange, as the provider reported them. */
typedef struct sl_usage {
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cached_tokens;      /* prompt tokens read from the provider's cache */
    uint64_t cache_write_tokens; /* prompt tokens written to the provider's cache */
    bool known;                  /* false when the provider said nothing */
    bool estimated;              /* true when sluice estimated the numbers */
} sl_usage_t;

/*
 * One call as the core hands it to an adapter. Lives in the request pool.
 * The proxy has read the body with core/json.h (no DOM): a passthrough
 * adapter splices raw using the value indexes below; a translating adapter
 * takes the jansson DOM from sl_call_json().
 */
typedef struct sl_call {
    sl_pool_t *pool; /* request pool: adapters allocate here */
    sl_endpoint_e endpoint;
    sl_str_t raw;              /* the client's body as received (request memory) */
    const sl_json_t *doc;      /* raw, tokenized: a JSON object */
    int model;                 /* doc value of "model" (a non-empty string) */
    int stream_options;        /* doc value of "stream_options", or -1 */
    json_t *body;              /* DOM of raw: NULL until sl_call_json() builds it */
    const sl_target_t *target; /* provider and the provider's model name */
    bool stream;               /* the client asked for a stream */
    const char *request_id;
    const sl_http_header_t *headers; /* client headers safe to forward (no auth, no hop-by-hop) */
    size_t nheaders;
} sl_call_t;

/*
 * The client's body as a jansson DOM, parsed on first use and released
 * with the request pool; the adapter may edit it in place. NULL when
 * jansson refuses bytes the proxy's reader accepted (treat as SL_EPARSE).
 */
static inline json_t *
sl_call_json(sl_call_t *call)
{
    return call->body != NULL ? call->body : (call->body = sl_json_dom(call->pool, call->raw));
}

/* A full upstream answer translated back to the client's shape. */
typedef struct sl_reply {
    const char *body; /* request pool */
    size_t body_len;
    sl_usage_t usage;
    const char *served_model; /* model the provider says it used, or NULL */
} sl_reply_t;

/* An upstream error in OpenAI's terms. Strings live in the request pool or are static. */
typedef struct sl_error {
    int status;           /* status to send the client */
    const char *type;     /* "invalid_request_error", "rate_limit_error", "api_error", ... */
    const char *code;     /* or NULL */
    const char *param;    /* or NULL */
    const char *message;  /* the provider's own message where it gave one */
    bool retryable;       /* another attempt (or target) may succeed */
    uint64_t retry_after; /* ms, 0 when the provider gave none */
} sl_error_t;

/* Per-stream state: request pool; the adapter keeps its own state in priv. */
typedef struct sl_stream {
    sl_call_t *call;
    void *priv;
    sl_usage_t usage;
    bool client_wants_usage; /* the client itself asked for stream_options.include_usage */
    bool done;               /* the adapter saw the end of the stream */
    bool failed;             /* the provider reported an error in the stream; the adapter
                                already told the client (no [DONE] follows) */
    const char *served_model;
    uint64_t content_bytes; /* generated text seen so far, for estimates */
} sl_stream_t;

/* Output of stream_event: bytes to send to the client, already framed as SSE. */
typedef struct sl_chunks {
    sl_buf_t *out;
} sl_chunks_t;

typedef struct sl_conf_ctx sl_conf_ctx_t;   /* defined by core/conf.c */
typedef struct sl_conf_node sl_conf_node_t; /* defined by core/conf.c */

struct sl_provider_ops {
    const char *kind; /* YAML `kind:` */

    /*
     * base_url used when the provider's YAML map has none (a public
     * service's well-known endpoint), or NULL when base_url is required.
     */
    const char *default_base_url;

    /*
     * Master, at config load: provider-specific keys of the provider's YAML
     * map. Allocates in the generation pool only, no I/O. May be NULL when
     * the kind has no keys of its own. Returns 0 or SL_ECONF (with the
     * message already recorded through cx).
     */
    int (*conf_parse)(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf);

    /*
     * Worker: OpenAI-shaped call -> method, path, headers, body. Request
     * pool. call is not const only so that sl_call_json() can cache the DOM.
     * Returns 0; SL_ENOTFOUND when the target's model cannot name a model
     * of this provider (an adapter that puts it into the URL path accepts
     * letters, digits, '-', '_' and '.', starting with a letter or digit:
     * never a dot segment); another negative code when the call cannot be
     * expressed for this provider. The core answers both with 400 and
     * sends nothing upstream.
     */
    int (*build_request)(const void *conf, sl_call_t *call, sl_upstream_req_t *out);

    /* Worker: full upstream 2xx body -> client body + usage. Request pool. */
    int (*parse_response)(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_reply_t *out);

    /* Worker: one upstream stream event -> zero or more client SSE events (+ usage at the end). */
    int (*stream_event)(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                        sl_chunks_t *out);

    /* Worker: upstream error status and body -> OpenAI error. Request pool. */
    int (*map_error)(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                     sl_error_t *out);

    /*
     * Optional inbound hooks, NULL for kinds sluice does not serve to
     * clients. With them the core takes a request in this kind's wire format
     * (anthropic: POST /v1/messages), turns it into an OpenAI chat call, runs
     * that through the same pipeline as /v1/chat/completions (any target
     * adapter) and turns the OpenAI-shaped answer, stream and errors back.
     */

    /*
     * Worker: the client's body in this kind's format -> an OpenAI chat
     * request body, NUL-terminated in pool (*out). A stream asks for usage
     * (stream_options.include_usage). Returns 0; SL_EPARSE with *why set
     * (static or pool) for a body the client must fix, or with *why NULL
     * when the body is not a JSON object (the core words that 400).
     */
    int (*client_request)(sl_pool_t *pool, sl_str_t body, sl_str_t *out, const char **why);

    /*
     * Worker: an OpenAI chat.completion body -> this kind's answer body,
     * NUL-terminated in pool (*out). Returns 0 or SL_EPARSE (not a
     * chat.completion).
     */
    int (*client_response)(sl_pool_t *pool, sl_str_t body, sl_str_t *out);

    /*
     * Worker: one OpenAI chunk event (data a chat.completion.chunk, an
     * in-band {"error":…} or "[DONE]", which the core passes last, after the
     * ledger row) -> zero or more events of this kind, framed as SSE, in
     * out. st is the client side's own state (st->priv is the hook's; the
     * core keeps st->usage current: the target's usage, estimated before
     * "[DONE]" when the provider gave none). Allocates in st->call->pool.
     * Returns 0.
     */
    int (*client_stream_event)(sl_stream_t *st, const sl_sse_event_t *ev, sl_chunks_t *out);

    /*
     * Worker: an error for the client (status as sent, err's OpenAI type,
     * code and message) -> this kind's error body, NUL-terminated in pool.
     * Returns 0.
     */
    int (*client_error)(int status, const sl_error_t *err, sl_pool_t *pool, sl_str_t *out);
};

#endif
