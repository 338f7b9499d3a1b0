/*
 * What the two files of the Anthropic adapter share: anthropic.c builds
 * requests and holds the adapter's ops, anthropic_answer.c reads answers,
 * stream events and errors. Internal to providers/; see anthropic.c for
 * the mapping between the APIs.
 */
#ifndef SL_PROVIDERS_ANTHROPIC_INTERNAL_H
#define SL_PROVIDERS_ANTHROPIC_INTERNAL_H

#include "providers/provider.h"

/* The adapter's answer side (sl_provider_ops_t parse_response, stream_event, map_error). */
int sl__anthropic_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                            sl_error_t *out);
int sl__anthropic_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                                 sl_answer_t *out);
int sl__anthropic_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                               sl_evs_t *out);

#endif /* SL_PROVIDERS_ANTHROPIC_INTERNAL_H */
