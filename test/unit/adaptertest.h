/*
 * Helpers shared by the adapter tests (test_openai.c, test_anthropic.c,
 * test_gemini.c, test_presets.c, test_echo.c): golden fixtures, semantic
 * JSON comparison, and the composition the driver makes of an adapter and
 * the chat frontend (core/gateway/fe_chat.c): a whole answer through
 * encode_answer, a stream through stream_open, encode_events per upstream
 * event and encode_end (or encode_stream_error after an SL_EV_ERROR). Test
 * code only (cmocka asserts).
 */
#ifndef SL_TEST_UNIT_ADAPTERTEST_H
#define SL_TEST_UNIT_ADAPTERTEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/gateway/call.h"
#include "core/base/pool.h"
#include "providers/provider.h"

/* What a stream made, as the client of the chat frontend sees it. */
typedef struct sl_test_stream {
    sl_buf_t out;   /* the SSE bytes written to the client */
    json_t *data;   /* each "data: " payload but [DONE], parsed */
    json_t *events; /* the typed events (sl_test_event_json), every batch in order */
    bool done_line; /* the client got "data: [DONE]" last */
    bool errored;   /* encode_stream_error was called */
} sl_test_stream_t;

/* Reads SL_TEST_SRCDIR/unit/fixtures/DIR/NAME into pool, NUL-terminated; asserts it exists. */
char *sl_test_fixture(sl_pool_t *pool, const char *dir, const char *name, size_t *len);

/* The fixture parsed (asserts it is JSON). Release with json_decref(). */
json_t *sl_test_fixture_json(const char *dir, const char *name);

/* Fails the test, printing both, when got and want differ as JSON (json_equal). */
void sl_test_json_equal(json_t *got, json_t *want, const char *what);

/* sl_test_json_equal, then releases both (takes their references). */
void sl_test_json_expect(json_t *got, json_t *want, const char *what);

/*
 * got (a reference taken) must equal fixture DIR/NAME as JSON; with
 * SL_TEST_UPDATE_GOLDEN=1 the fixture is rewritten from got first (review
 * the diff before committing it).
 */
void sl_test_golden(json_t *got, const char *dir, const char *name);

/* Every `created` in v (an object, or an array of them) must be a recent time; it becomes 0. */
void sl_test_normalise_created(json_t *v);

/*
 * Checks that lit is a literal jansson takes (a JSON string, quotes
 * included) and returns it decoded as a json string (new reference); NULL
 * for an empty literal (len 0).
 */
json_t *sl_test_literal(sl_str_t lit);

/* One typed event as JSON: {"type": "text", "choice": 0, "text": "..."}, present fields only. */
json_t *sl_test_event_json(const sl_ev_t *ev);

/* The chat frontend's body for answer a (encode_answer), parsed. */
json_t *sl_test_encode_answer(sl_call_t *call, const sl_answer_t *a);

/*
 * Feeds sse[0..len) in steps of step bytes (0: at once) through the SSE
 * parser into ops->stream_event(conf, st, ...) as the driver does (st is
 * zeroed and gets call), each batch into the chat frontend's encode_events;
 * at SL_EV_ERROR encode_stream_error(error) and nothing more; when st->done,
 * encode_end(&st->usage). Fills out (free with sl_test_stream_free).
 */
void sl_test_run_stream(const sl_provider_ops_t *ops, const void *conf, sl_call_t *call,
                        sl_stream_t *st, const char *sse, size_t len, size_t step,
                        sl_test_stream_t *out);

void sl_test_stream_free(sl_test_stream_t *s);

#endif
