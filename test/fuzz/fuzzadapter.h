/*
 * What the adapter fuzz targets (fuzz_openai_stream, fuzz_anthropic_stream,
 * fuzz_gemini_stream) share: an upstream byte stream fed through core/base/sse.c
 * into an adapter's stream_event and each batch into the chat frontend's
 * encoders, as the driver does, and a whole body through parse_response and
 * encode_answer. Beyond "no crash, no sanitizer report" it checks that
 * every literal in the typed events and answers is one jansson takes, that
 * every chunk the chat frontend writes is "data: " plus one JSON object and
 * a blank line (then "data: [DONE]" only after a clean end, nothing after
 * an error), and that nothing follows SL_EV_DONE or SL_EV_ERROR.
 */
#ifndef SL_TEST_FUZZ_FUZZADAPTER_H
#define SL_TEST_FUZZ_FUZZADAPTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/gateway/call.h"
#include "core/base/sse.h"
#include "providers/provider.h"

/* What one run of a stream gave: the same whatever the feed size. */
typedef struct sl_fuzz_result {
    size_t events; /* typed events */
    size_t bytes;  /* written for the client */
    bool done;
    bool failed;
} sl_fuzz_result_t;

/* Checks one event's raw bytes (evs->raw set for the client's API); may be NULL. */
typedef void (*sl_fuzz_raw_cb)(const sl_sse_event_t *ev, const sl_evs_t *evs);

/* Aborts with a message when ok is 0. */
void sl_fuzz_check(int ok, const char *name, const char *what);

/*
 * Runs s[0..len) in steps of step bytes (0: at once) as a stream of call
 * through ops (conf) and the chat frontend, with the checks of the file
 * comment; raw, when not NULL, sees every event whose batch has raw set.
 */
sl_fuzz_result_t sl_fuzz_stream(const char *name, const sl_provider_ops_t *ops, const void *conf,
                                sl_call_t *call, const char *s, size_t len, size_t step,
                                sl_fuzz_raw_cb raw);

/* Runs s at once and in steps of step bytes: both must give the same result. */
void sl_fuzz_stream_twice(const char *name, const sl_provider_ops_t *ops, const void *conf,
                          sl_call_t *call, const char *s, size_t len, size_t step,
                          sl_fuzz_raw_cb raw);

/*
 * Runs s[0..len) through parse_response; when it answers, every literal is
 * checked and the typed answer, encoded by the chat frontend (raw left
 * aside), must be a JSON object.
 */
void sl_fuzz_answer(const char *name, const sl_provider_ops_t *ops, const void *conf,
                    sl_call_t *call, const char *s, size_t len);

#endif
