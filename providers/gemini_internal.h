/*
 * What the two files of the Gemini adapter share: gemini.c builds requests
 * and holds the adapter's ops, gemini_answer.c reads answers, stream
 * events and errors. Internal to providers/; see gemini.c for the mapping.
 */
#ifndef SL_PROVIDERS_GEMINI_INTERNAL_H
#define SL_PROVIDERS_GEMINI_INTERNAL_H

#include <jansson.h>

#include "providers/provider.h"

/* The adapter's answer side (sl_provider_ops_t parse_response, stream_event, map_error). */
int sl__gemini_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                         sl_error_t *out);
int sl__gemini_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                              sl_answer_t *out);
int sl__gemini_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                            sl_evs_t *out);

/* A pool destructor that drops one jansson reference (arg is a json_t). */
void sl__gemini_decref(void *arg);

/* Dumps j compactly into the pool; 0 or SL_EPARSE (a value jansson cannot write). */
int sl__gemini_dump(sl_pool_t *pool, json_t *j, sl_str_t *out);

#endif /* SL_PROVIDERS_GEMINI_INTERNAL_H */
