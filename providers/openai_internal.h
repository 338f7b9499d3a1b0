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
 * The upstream request for call in OpenAI's shape: the client's bytes with
 * `model` set to the target's model, stream_options.include_usage forced on
 * for chat streams (unless q drops stream_options), and, for chat, q's keys
 * removed with one info log line naming them (q may be NULL). path is the
 * whole origin-form path (base_path included); auth_name/auth_value is the
 * credential header, or NULL when the provider has no key. Request pool.
 * Returns 0 or SL_EPARSE (a body the proxy did not read). Worker context.
 */
int sl__openai_build(sl_call_t *call, const sl__openai_quirks_t *q, const char *path,
                     const char *auth_name, const char *auth_value, sl_upstream_req_t *out);

/* The client's endpoint as OpenAI's path suffix ("/chat/completions"), or NULL. */
const char *sl__openai_endpoint_path(sl_endpoint_e endpoint);

/* OpenAI's parse_response hook: the body passes unchanged, usage and model are read. */
int sl__openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                              sl_reply_t *out);

/*
 * OpenAI's stream translation: events pass unchanged except the usage-only
 * chunk the client did not ask for, "[DONE]" (held for the core) and, when
 * q says so, empty chunks. q may be NULL. Request pool.
 */
int sl__openai_stream(sl_stream_t *st, const sl_sse_event_t *ev, const sl__openai_quirks_t *q,
                      sl_chunks_t *out);

/* OpenAI's map_error hook: OpenAI's error shape, statuses mapped for the client. */
int sl__openai_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                         sl_error_t *out);

#endif
