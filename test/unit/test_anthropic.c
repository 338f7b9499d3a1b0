/*
 * Unit tests for providers/anthropic.c against golden fixtures in
 * test/unit/fixtures/anthropic/ (found through SL_TEST_SRCDIR, which meson
 * sets to test/): OpenAI requests in -> Anthropic requests out; Anthropic
 * answers and recorded event streams (fed whole and byte by byte) in ->
 * the typed answer and events, composed with the chat frontend's encoders
 * as the driver does (adaptertest.c), so the OpenAI answers and chunk
 * sequences out are what they were. JSON is compared semantically once
 * `created` is normalised to 0. Also thinking and its signatures (byte for
 * byte), 1-hour cache writes, the headers and path, requests the adapter
 * must refuse, map_error and stream errors, and the native path: a
 * Messages client's own body forwarded with only the model changed, its
 * answers and events passed raw (message_stop and errors left to the
 * frontend and the driver) with the typed side filled beside them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "providers/provider.h"
#include "providers/registry.h"
#include "unit/adaptertest.h"

#define API_KEY "sk-ant-test-secret-0123456789"
#define DIR     "anthropic"

typedef struct test_ctx {
    sl_pool_t *pool;
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
} test_ctx_t;

static int setup(void **state);
static int teardown(void **state);
static const sl_provider_ops_t *anthropic(void);
static void call_init(test_ctx_t *t, const char *raw, size_t len);
static void native_init(test_ctx_t *t, const char *raw, size_t len);
static json_t *answer(test_ctx_t *t, const char *name, sl_answer_t *a, sl_buf_t *body);
static void test_registry(void **state);
static void test_requests(void **state);
static void test_headers(void **state);
static void test_request_errors(void **state);
static void test_responses(void **state);
static void test_response_thinking(void **state);
static void test_response_invalid(void **state);
static void test_streams(void **state);
static void test_stream_without_start(void **state);
static void test_stream_errors(void **state);
static void test_map_error(void **state);
static void test_native_request(void **state);
static void test_native_answer(void **state);
static void test_native_stream(void **state);


static int
setup(void **state)
{
    test_ctx_t *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return -1;
    }
    t->pool = sl_pool_create(0);
    t->prov.name = "anthropic";
    t->prov.kind = "anthropic";
    t->prov.base_path = "";
    t->prov.api_key.value = API_KEY;
    t->target.provider = &t->prov;
    t->target.model = "claude-test";
    t->target.weight = 1;
    *state = t;
    return 0;
}


static int
teardown(void **state)
{
    test_ctx_t *t = *state;

    sl_pool_destroy(t->pool);
    free(t);
    return 0;
}


static const sl_provider_ops_t *
anthropic(void)
{
    const sl_provider_ops_t *ops = sl_provider_find("anthropic");

    assert_non_null(ops);
    return ops;
}


/* A chat client's call (raw may be anything: the translating path reads its DOM). */
static void
call_init(test_ctx_t *t, const char *raw, size_t len)
{
    sl_json_t *doc = sl_json_create(t->pool);

    memset(&t->call, 0, sizeof(t->call));
    t->call.pool = t->pool;
    t->call.api = SL_API_CHAT;
    t->call.client_api = SL_API_CHAT;
    t->call.raw = (sl_str_t){ raw, len };
    t->call.model = -1;
    t->call.stream_options = -1;
    if (sl_json_parse(doc, raw, len, NULL) == 0) {
        t->call.doc = doc;
        t->call.model = sl_json_get(doc, SL_JSON_ROOT, "model");
        t->call.native_doc = doc;
    }
    t->call.native = t->call.raw;
    t->call.target = &t->target;
    t->call.api_key = &t->prov.api_key;
    t->call.request_id = "req-test";
    if (sl_call_json(&t->call) != NULL) {
        t->call.stream = json_is_true(json_object_get(t->call.body, "stream"));
    }
}


/* A Messages client's call: its own body is native (raw stands for the chat translation). */
static void
native_init(test_ctx_t *t, const char *raw, size_t len)
{
    static const char chat[] = "{\"model\":\"fast\",\"messages\":[{\"role\":\"user\","
                               "\"content\":\"x\"}]}";
    sl_json_t *doc = sl_json_create(t->pool);

    call_init(t, chat, sizeof(chat) - 1);
    assert_int_equal(sl_json_parse(doc, raw, len, NULL), 0);
    t->call.client_api = SL_API_MESSAGES;
    t->call.native = (sl_str_t){ raw, len };
    t->call.native_doc = doc;
    t->call.stream = sl_json_is_true(doc, sl_json_get(doc, SL_JSON_ROOT, "stream"));
}


/* parse_response on fixture name; returns what a chat client gets, created set to 0. */
static json_t *
answer(test_ctx_t *t, const char *name, sl_answer_t *a, sl_buf_t *body)
{
    size_t len;
    json_t *v;

    body->p = sl_test_fixture(t->pool, DIR, name, &len);
    body->len = len;
    body->cap = len;
    memset(a, 0, sizeof(*a));
    assert_int_equal(anthropic()->parse_response(NULL, &t->call, body, a), 0);
    assert_int_equal(a->raw_api, SL_API_MESSAGES);
    v = sl_test_encode_answer(&t->call, a);
    sl_test_normalise_created(v);
    return v;
}


static void
test_registry(void **state)
{
    const sl_provider_ops_t *ops = anthropic();

    (void) state;
    assert_string_equal(ops->kind, "anthropic");
    assert_int_equal(ops->api, SL_API_MESSAGES);
    assert_non_null(ops->build_request);
    assert_non_null(ops->parse_response);
    assert_non_null(ops->stream_event);
    assert_non_null(ops->map_error);
    assert_null(ops->local);
}


static void
test_requests(void **state)
{
    static const char *const cases[] = {
        "req_text",  "req_system_string", "req_system_parts",
        "req_tools", "req_tool_choice",   "req_images",
    };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        sl_upstream_req_t req;
        json_t *got;
        size_t len;
        char *raw;
        int rc;

        snprintf(name, sizeof(name), "%s.in.json", cases[i]);
        raw = sl_test_fixture(t->pool, DIR, name, &len);
        call_init(t, raw, len);
        memset(&req, 0, sizeof(req));
        rc = ops->build_request(NULL, &t->call, &req);
        if (rc != 0) {
            fail_msg("%s: build_request = %d (%s)", cases[i], rc, sl_strerror(rc));
        }
        assert_string_equal(req.method, "POST");
        assert_string_equal(req.path, "/v1/messages");
        got = json_loadb(req.body, req.body_len, 0, NULL);
        assert_non_null(got);
        snprintf(name, sizeof(name), "%s.out.json", cases[i]);
        sl_test_json_expect(got, sl_test_fixture_json(DIR, name), cases[i]);
    }
}


static void
test_headers(void **state)
{
    static const char raw[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();
    sl_http_header_t in[2] = {
        { sl_str_lit("anthropic-beta"), sl_str_lit("prompt-caching-2024-07-31") },
        { sl_str_lit("Anthropic-Version"), sl_str_lit("2020-01-01") },
    };
    sl_upstream_req_t req;
    const sl_http_header_t *h;

    t->prov.base_path = "/gw";
    call_init(t, raw, sizeof(raw) - 1);
    t->call.headers = in;
    t->call.nheaders = 2;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ops->build_request(NULL, &t->call, &req), 0);
    assert_string_equal(req.path, "/gw/v1/messages");
    assert_int_equal(req.nheaders, 4);
    h = sl_http_find_header(req.headers, req.nheaders, "anthropic-beta");
    assert_non_null(h);
    assert_true(sl_str_eq(h->value, "prompt-caching-2024-07-31"));
    h = sl_http_find_header(req.headers, req.nheaders, "anthropic-version");
    assert_non_null(h);
    assert_true(sl_str_eq(h->value, "2023-06-01"));
    h = sl_http_find_header(req.headers, req.nheaders, "x-api-key");
    assert_non_null(h);
    assert_true(sl_str_eq(h->value, API_KEY));
    h = sl_http_find_header(req.headers, req.nheaders, "content-type");
    assert_non_null(h);
    assert_true(sl_str_eq(h->value, "application/json"));
    assert_null(sl_http_find_header(req.headers, req.nheaders, "authorization"));

    /* no key for this attempt: no x-api-key */
    call_init(t, raw, sizeof(raw) - 1);
    t->call.api_key = NULL;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ops->build_request(NULL, &t->call, &req), 0);
    assert_null(sl_http_find_header(req.headers, req.nheaders, "x-api-key"));
}


static void
test_request_errors(void **state)
{
    static const char *const bad[] = {
        /* n > 1: one choice only */
        "{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        /* tool arguments that are not JSON, or not an object */
        "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{nope\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
        /* images neither data: base64 nor http(s) */
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
        /* no counterpart */
        "{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]"
        "}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"no id\"}]}",
        "{\"model\":\"m\",\"messages\":\"hi\"}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"tools\":[{\"type\":\"code_interpreter\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"response_format\":{\"type\":\"xml\"}}",
        "[1,2]",
    };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();
    sl_upstream_req_t req;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;

        call_init(t, bad[i], strlen(bad[i]));
        memset(&req, 0, sizeof(req));
        rc = ops->build_request(NULL, &t->call, &req);
        if (rc != SL_EPARSE) {
            fail_msg("case %zu: build_request = %d (%s), want SL_EPARSE", i, rc, sl_strerror(rc));
        }
    }
    call_init(t, bad[0], strlen(bad[0]));
    t->call.api = SL_API_EMBEDDINGS;
    assert_int_equal(ops->build_request(NULL, &t->call, &req), SL_EDENIED);
}


static void
test_responses(void **state)
{
    static const char *const cases[] = {
        "resp_text",     "resp_max_tokens", "resp_stop_sequence",
        "resp_tool_use", "resp_cache",      "resp_refusal",
    };
    static const sl_finish_e finish[] = {
        SL_FINISH_STOP,       SL_FINISH_LENGTH,     SL_FINISH_STOP_SEQUENCE,
        SL_FINISH_TOOL_CALLS, SL_FINISH_TOOL_CALLS, SL_FINISH_CONTENT_FILTER,
    };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        sl_answer_t a;
        sl_buf_t body;
        json_t *got;
        json_t *want;
        json_t *u;
        json_t *model;

        call_init(t, "{}", 2);
        snprintf(name, sizeof(name), "%s.in.json", cases[i]);
        got = answer(t, name, &a, &body);
        snprintf(name, sizeof(name), "%s.out.json", cases[i]);
        want = sl_test_fixture_json(DIR, name);
        sl_test_json_equal(got, want, cases[i]);

        u = json_object_get(want, "usage");
        assert_true(a.usage.known);
        assert_int_equal(a.usage.prompt_tokens,
                         json_integer_value(json_object_get(u, "prompt_tokens")));
        assert_int_equal(a.usage.completion_tokens,
                         json_integer_value(json_object_get(u, "completion_tokens")));
        assert_int_equal(a.usage.cached_tokens,
                         json_integer_value(json_object_get(
                             json_object_get(u, "prompt_tokens_details"), "cached_tokens")));
        model = sl_test_literal(a.model);
        assert_non_null(model);
        assert_string_equal(json_string_value(model),
                            json_string_value(json_object_get(want, "model")));
        json_decref(model);
        assert_int_equal(a.nchoices, 1);
        assert_int_equal(a.choices[0].finish, finish[i]);
        if (strcmp(cases[i], "resp_cache") == 0) {
            assert_int_equal(a.usage.cached_tokens, 1000);
            assert_int_equal(a.usage.cache_write_tokens, 300);
        }
        assert_ptr_equal(a.raw.p, body.p);
        json_decref(got);
        json_decref(want);
    }
}


/*
 * Thinking is the choice's reasoning and its signature the provider's own
 * bytes; text blocks are joined; 1-hour cache writes are counted apart;
 * redacted thinking is left to raw.
 */
static void
test_response_thinking(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t a;
    sl_buf_t body;
    json_t *s;

    call_init(t, "{}", 2);
    sl_test_json_expect(answer(t, "resp_thinking.in.json", &a, &body),
                        sl_test_fixture_json(DIR, "resp_thinking.out.json"), "resp_thinking");
    s = sl_test_literal(a.choices[0].reasoning);
    assert_string_equal(json_string_value(s), "Let me think about \"this\".");
    json_decref(s);
    assert_true(sl_str_eq(a.choices[0].signature,
                          "\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDEtw+JhsjAtbA\\/0IiMA==\""));
    assert_int_equal(a.usage.prompt_tokens, 2150);
    assert_int_equal(a.usage.cached_tokens, 100);
    assert_int_equal(a.usage.cache_write_tokens, 2000);
    assert_int_equal(a.usage.cache_write_1h_tokens, 1500);
    assert_int_equal(a.usage.completion_tokens, 120);
    assert_int_equal(a.choices[0].ntools, 0);
}


static void
test_response_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[1]",
        "\"msg\"",
        /* strings jansson refuses, in a block sluice reads */
        "{\"content\":[{\"type\":\"text\",\"text\":\"a\\u0000b\"}]}",
        ("{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":"
         "{\"k\":\"\x01\"}}]}"),
    };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_buf_t body = { (char *) bad[i], strlen(bad[i]), strlen(bad[i]) };
        sl_answer_t a;

        call_init(t, "{}", 2);
        memset(&a, 0, sizeof(a));
        if (anthropic()->parse_response(NULL, &t->call, &body, &a) != SL_EUPSTREAM) {
            fail_msg("case %zu: answered", i);
        }
    }
}


/*
 * The recorded streams through the adapter and the chat frontend: the
 * chunks a chat client got before the typed events, fed at once and in
 * steps; usage, content bytes, the served model; the typed events where
 * the fixture lists them.
 */
static void
test_streams(void **state)
{
    static const char *const cases[] = {
        "stream_text.usage.json",  "stream_text.nousage.json",       "stream_tool_use.usage.json",
        "stream_error.usage.json", "stream_max_tokens.nousage.json", "stream_thinking.usage.json",
    };
    static const size_t steps[] = { 0, 1, 7 };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *want = sl_test_fixture_json(DIR, cases[i]);
        json_t *u = json_object_get(want, "usage");
        size_t len;
        const char *sse =
            sl_test_fixture(t->pool, DIR, json_string_value(json_object_get(want, "input")), &len);
        bool done = json_is_true(json_object_get(want, "done"));

        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            sl_test_stream_t got;
            sl_stream_t st;
            char what[160];

            snprintf(what, sizeof(what), "%s (step %zu)", cases[i], steps[k]);
            call_init(t, "{\"stream\":true}", 15);
            t->call.client_wants_usage = json_is_true(json_object_get(want, "client_wants_usage"));
            sl_test_run_stream(anthropic(), NULL, &t->call, &st, sse, len, steps[k], &got);
            sl_test_normalise_created(got.data);
            sl_test_json_equal(got.data, json_object_get(want, "chunks"), what);
            if (json_object_get(want, "events") != NULL) {
                sl_test_json_equal(got.events, json_object_get(want, "events"), what);
            }
            assert_int_equal(st.done, done);
            assert_int_equal(got.done_line, done);
            assert_int_equal(st.failed, !done);
            assert_true(st.usage.known);
            assert_int_equal(st.usage.prompt_tokens,
                             json_integer_value(json_object_get(u, "prompt_tokens")));
            assert_int_equal(st.usage.completion_tokens,
                             json_integer_value(json_object_get(u, "completion_tokens")));
            assert_int_equal(st.usage.cached_tokens,
                             json_integer_value(json_object_get(u, "cached_tokens")));
            assert_int_equal(st.usage.cache_write_tokens,
                             json_integer_value(json_object_get(u, "cache_write_tokens")));
            assert_int_equal(st.usage.cache_write_1h_tokens,
                             json_integer_value(json_object_get(u, "cache_write_1h_tokens")));
            assert_int_equal(st.content_bytes,
                             json_integer_value(json_object_get(want, "content_bytes")));
            assert_non_null(st.served_model);
            assert_string_equal(st.served_model, json_string_value(json_object_get(
                                                     json_array_get(got.data, 0), "model")));
            sl_test_stream_free(&got);
        }
        json_decref(want);
    }
}


/* Events before (or without) message_start still give well-formed chunks. */
static void
test_stream_without_start(void **state)
{
    static const char sse[] =
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"hi\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"bad \x01\"}}\n\n"
        "data: not json\n\n"
        "data: {\"type\":\"message_stop\"}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"after\"}}\n\n";
    test_ctx_t *t = *state;
    sl_test_stream_t got;
    sl_stream_t st;

    call_init(t, "{\"stream\":true}", 15);
    t->call.client_wants_usage = true;
    sl_test_run_stream(anthropic(), NULL, &t->call, &st, sse, sizeof(sse) - 1, 0, &got);

    /* the role chunk and "hi"; no usage chunk, as the provider gave none */
    assert_int_equal(json_array_size(got.data), 2);
    assert_true(got.done_line);
    assert_string_equal(json_string_value(json_object_get(json_array_get(got.data, 0), "model")),
                        "claude-test");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(
                json_array_get(json_object_get(json_array_get(got.data, 1), "choices"), 0),
                "delta"),
            "content")),
        "hi");
    assert_true(st.done);
    assert_false(st.usage.known);
    assert_int_equal(st.content_bytes, 2);
    sl_test_stream_free(&got);
}


/* A stream `error` event: its status, type and retryability by Anthropic's error type. */
static void
test_stream_errors(void **state)
{
    static const struct {
        const char *type;
        int status;
        const char *want_type;
        bool retryable;
    } cases[] = {
        { "overloaded_error", 503, "api_error", true },
        { "api_error", 502, "api_error", true },
        { "rate_limit_error", 429, "rate_limit_error", false },
        { "invalid_request_error", 400, "invalid_request_error", false },
        { "some_new_error", 502, "api_error", false },
    };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char data[256];
        sl_sse_event_t ev = { sl_str_lit("error"), sl_str_null, sl_str_lit("") };
        sl_evs_t evs;
        sl_stream_t st;
        const sl_error_t *e;

        snprintf(data, sizeof(data),
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m %zu\"}}",
                 cases[i].type, i);
        ev.data = (sl_str_t){ data, strlen(data) };
        call_init(t, "{\"stream\":true}", 15);
        memset(&st, 0, sizeof(st));
        st.call = &t->call;
        memset(&evs, 0, sizeof(evs));
        evs.pool = t->pool;
        assert_int_equal(anthropic()->stream_event(NULL, &st, &ev, &evs), 0);
        assert_true(st.failed);
        assert_int_equal(evs.n, 1);
        assert_int_equal(evs.v[0].type, SL_EV_ERROR);
        e = evs.v[0].error;
        assert_int_equal(e->status, cases[i].status);
        assert_string_equal(e->type, cases[i].want_type);
        assert_string_equal(e->code, cases[i].type);
        assert_int_equal(e->retryable, cases[i].retryable);
        assert_non_null(strstr(e->message, "m "));
        /* nothing after the failure */
        sl_evs_reset(&evs);
        ev.data = sl_str_lit("{\"type\":\"message_stop\"}");
        assert_int_equal(anthropic()->stream_event(NULL, &st, &ev, &evs), 0);
        assert_int_equal(evs.n, 0);
        assert_false(st.done);
    }
}


static void
test_map_error(void **state)
{
    static const struct {
        int status;
        const char *body;
        int want_status;
        const char *want_type;
        const char *want_message; /* NULL: must not be the provider's */
        bool retryable;
    } cases[] = {
        { 400,
          "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
          "\"max_tokens: too large\"}}",
          400, "invalid_request_error", "max_tokens: too large", false },
        { 401,
          "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":"
          "\"invalid x-api-key sk-ant-test\"}}",
          502, "api_error", NULL, false },
        { 403,
          "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\",\"message\":"
          "\"no access\"}}",
          502, "api_error", NULL, false },
        { 404,
          "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":"
          "\"model: claude-x\"}}",
          404, "invalid_request_error", "model: claude-x", false },
        { 413,
          "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\",\"message\":"
          "\"Request exceeds the maximum size\"}}",
          413, "invalid_request_error", "Request exceeds the maximum size", false },
        { 429,
          "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
          "\"Number of requests has exceeded your rate limit\"}}",
          429, "rate_limit_error", "Number of requests has exceeded your rate limit", true },
        { 500,
          "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
          "\"Internal server error\"}}",
          502, "api_error", "Internal server error", true },
        { 529,
          "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
          "\"Overloaded\"}}",
          503, "api_error", "Overloaded", true },
        { 502, "<html>bad gateway</html>", 502, "api_error", "upstream returned HTTP 502", true },
        { 400, "", 400, "invalid_request_error", "upstream returned HTTP 400", false },
    };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_buf_t body = { (char *) cases[i].body, strlen(cases[i].body), 0 };
        sl_error_t e;

        memset(&e, 0, sizeof(e));
        assert_int_equal(ops->map_error(NULL, cases[i].status, &body, t->pool, &e), 0);
        assert_int_equal(e.status, cases[i].want_status);
        assert_string_equal(e.type, cases[i].want_type);
        assert_int_equal(e.retryable, cases[i].retryable);
        assert_non_null(e.message);
        if (cases[i].want_message != NULL) {
            assert_string_equal(e.message, cases[i].want_message);
        } else {
            assert_null(strstr(e.message, "sk-ant"));
            assert_null(strstr(e.message, "no access"));
            assert_string_equal(e.code, "upstream_auth_failed");
        }
    }
}


/*
 * A Messages client's own body goes upstream with only the model changed
 * (thinking, top_k, output_config, documents and server tools intact,
 * nothing added to a stream), with the client's anthropic-version and
 * anthropic-beta.
 */
static void
test_native_request(void **state)
{
    test_ctx_t *t = *state;
    sl_http_header_t in[3] = {
        { sl_str_lit("anthropic-beta"), sl_str_lit("interleaved-thinking-2025-05-14") },
        { sl_str_lit("anthropic-version"), sl_str_lit("2023-01-01") },
        { sl_str_lit("x-custom"), sl_str_lit("1") },
    };
    sl_upstream_req_t req;
    const sl_http_header_t *h;
    size_t len;
    const char *raw = sl_test_fixture(t->pool, DIR, "native_req.json", &len);
    const char *model = strstr(raw, "\"fast\"");
    char *want;

    native_init(t, raw, len);
    t->call.headers = in;
    t->call.nheaders = 3;
    memset(&req, 0, sizeof(req));
    assert_int_equal(anthropic()->build_request(NULL, &t->call, &req), 0);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/v1/messages");
    assert_non_null(model);
    want = sl_psprintf(t->pool, "%.*s\"claude-test\"%s", (int) (model - raw), raw, model + 6);
    if (strlen(want) != req.body_len || memcmp(want, req.body, req.body_len) != 0) {
        fail_msg("native body: got\n%.*s\nwant\n%s", (int) req.body_len, req.body, want);
    }
    h = sl_http_find_header(req.headers, req.nheaders, "anthropic-version");
    assert_true(sl_str_eq(h->value, "2023-01-01"));
    h = sl_http_find_header(req.headers, req.nheaders, "anthropic-beta");
    assert_true(sl_str_eq(h->value, "interleaved-thinking-2025-05-14"));
    h = sl_http_find_header(req.headers, req.nheaders, "x-api-key");
    assert_true(sl_str_eq(h->value, API_KEY));
    assert_int_equal(req.nheaders, 5);

    /* without the client's version: ours */
    t->call.nheaders = 1;
    assert_int_equal(anthropic()->build_request(NULL, &t->call, &req), 0);
    h = sl_http_find_header(req.headers, req.nheaders, "anthropic-version");
    assert_true(sl_str_eq(h->value, "2023-06-01"));

    /* the client named the target's model already: its bytes go as they are, not copied */
    want = sl_pstrdup(t->pool, "{\"model\":\"claude-test\",\"max_tokens\":5}");
    native_init(t, want, strlen(want));
    assert_int_equal(anthropic()->build_request(NULL, &t->call, &req), 0);
    assert_ptr_equal(req.body, want);
    assert_int_equal(req.body_len, strlen(want));

    native_init(t, "{\"max_tokens\":5}", 16);
    assert_int_equal(anthropic()->build_request(NULL, &t->call, &req), SL_EPARSE);
}


/*
 * A whole answer for a Messages client: raw, with the typed answer beside it;
 * with raw_answer (no one else reads it), raw and the usage only.
 */
static void
test_native_answer(void **state)
{
    static const char bad[] = "{\"id\":\"msg_1\",\"content\":[{\"type\":\"text\"]},"
                              "\"usage\":{\"input_tokens\":1}}";
    test_ctx_t *t = *state;
    size_t len;
    const char *raw = sl_test_fixture(t->pool, DIR, "native_req.json", &len);
    sl_answer_t a;
    sl_buf_t body;
    json_t *got;

    native_init(t, raw, len);
    got = answer(t, "resp_thinking.in.json", &a, &body);
    json_decref(got);
    assert_ptr_equal(a.raw.p, body.p);
    assert_int_equal(a.raw.len, body.len);
    assert_int_equal(a.raw_api, SL_API_MESSAGES);
    assert_true(a.choices[0].signature.len > 2);
    assert_int_equal(a.usage.cache_write_1h_tokens, 1500);

    /* nothing but the frontend reads it: the content is skimmed, the usage read */
    t->call.raw_answer = true;
    got = answer(t, "resp_thinking.in.json", &a, &body);
    json_decref(got);
    assert_ptr_equal(a.raw.p, body.p);
    assert_int_equal(a.nchoices, 0);
    assert_int_equal(a.usage.cache_write_1h_tokens, 1500);
    assert_true(a.id.len > 2);
    body = (sl_buf_t){ (char *) bad, sizeof(bad) - 1, sizeof(bad) - 1 };
    memset(&a, 0, sizeof(a));
    assert_int_equal(anthropic()->parse_response(NULL, &t->call, &body, &a), SL_EUPSTREAM);
}


/*
 * A stream for a Messages client: each event raw as it came ("event:" line
 * included) but message_stop and error (nothing: the frontend and the
 * driver write those), and the same typed events as for any client.
 */
static void
test_native_stream(void **state)
{
    static const char *const inputs[] = { "stream_thinking.sse", "stream_error.sse" };
    test_ctx_t *t = *state;
    size_t nlen;
    const char *native = sl_test_fixture(t->pool, DIR, "native_req.json", &nlen);

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t len;
        const char *sse = sl_test_fixture(t->pool, DIR, inputs[i], &len);
        const char *p = sse;
        const char *end = sse + len;
        sl_stream_t st;
        sl_evs_t evs;
        json_t *events = json_array();
        json_t *want;

        native_init(t, native, nlen);
        memset(&st, 0, sizeof(st));
        st.call = &t->call;
        memset(&evs, 0, sizeof(evs));
        evs.pool = t->pool;
        /* one event at a time, as the recorded text has it */
        while (p < end) {
            const char *sep = strstr(p, "\n\n");
            const char *nl = strchr(p, '\n');
            sl_sse_event_t ev;
            bool quiet;

            assert_non_null(sep);
            assert_memory_equal(p, "event: ", 7);
            memset(&ev, 0, sizeof(ev));
            ev.event = (sl_str_t){ p + 7, (size_t) (nl - p - 7) };
            ev.data = (sl_str_t){ nl + 7, (size_t) (sep - nl - 7) };
            ev.id = sl_str_lit("");
            sl_evs_reset(&evs);
            assert_int_equal(anthropic()->stream_event(NULL, &st, &ev, &evs), 0);
            for (size_t k = 0; k < evs.n; k++) {
                json_array_append_new(events, sl_test_event_json(&evs.v[k]));
            }
            quiet =
                sl_str_eq(ev.event, "message_stop") || sl_str_eq(ev.event, "error") || st.failed;
            assert_non_null(evs.raw.p);
            assert_int_equal(evs.raw_api, SL_API_MESSAGES);
            if (quiet) {
                assert_int_equal(evs.raw.len, 0);
            } else if (evs.raw.len != (size_t) (sep + 2 - p)
                       || memcmp(evs.raw.p, p, evs.raw.len) != 0) {
                fail_msg("raw: got\n%.*s\nwant\n%.*s", (int) evs.raw.len, evs.raw.p,
                         (int) (sep + 2 - p), p);
            }
            p = sep + 2;
        }
        if (i == 0) {
            want = sl_test_fixture_json(DIR, "stream_thinking.usage.json");
            sl_test_json_equal(events, json_object_get(want, "events"), inputs[i]);
            json_decref(want);
            assert_true(st.done);
        } else {
            assert_true(st.failed);
        }
        json_decref(events);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_thinking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_without_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_stream, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
