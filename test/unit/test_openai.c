/*
 * Unit tests for the OpenAI adapter's answers and streams
 * (providers/openai.c, shared by Azure, the presets and echo) against
 * fixtures in test/unit/fixtures/openai/: a chat client gets the provider's
 * bytes (raw) while the typed answer and events carry the same content, so
 * encoding the typed side with the chat frontend gives the provider's
 * answer back; streams fed whole and byte by byte give the same events;
 * in-band errors, [DONE], the usage chunk the client did not ask for,
 * reasoning_content, data that is not JSON, multi-line data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/base/errno.h"
#include "core/gateway/frontend.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "providers/provider.h"
#include "providers/registry.h"
#include "unit/adaptertest.h"

#define DIR "openai"

typedef struct test_ctx {
    sl_pool_t *pool;
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
} test_ctx_t;

static int setup(void **state);
static int teardown(void **state);
static const sl_provider_ops_t *openai(void);
static void call_init(test_ctx_t *t, sl_api_e client_api, bool stream, bool wants_usage);
static void parse(test_ctx_t *t, const char *name, sl_answer_t *a, sl_buf_t *body);
static void assert_text_raw(test_ctx_t *t, const sl_answer_t *a, const sl_buf_t *body);
static void test_api(void **state);
static void test_answer_text(void **state);
static void test_answer_tools(void **state);
static void test_answer_reasoning(void **state);
static void test_answer_embeddings(void **state);
static void test_answer_invalid(void **state);
static void test_answer_raw(void **state);
static void test_answer_responses_raw(void **state);
static void test_stream_passthrough(void **state);
static void test_stream_typed(void **state);
static void test_stream_error(void **state);
static void test_stream_framing(void **state);
static void test_build_model(void **state);
static sl_upstream_req_t build_body(test_ctx_t *t, const char *body);


static int
setup(void **state)
{
    test_ctx_t *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return -1;
    }
    t->pool = sl_pool_create(0);
    t->prov.name = "openai";
    t->prov.kind = "openai";
    t->prov.ops = openai();
    t->prov.base_path = "/v1";
    t->target.provider = &t->prov;
    t->target.model = "gpt-4o-mini";
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
openai(void)
{
    const sl_provider_ops_t *ops = sl_provider_find("openai");

    assert_non_null(ops);
    return ops;
}


/* A chat call as the driver hands it over; client_api MESSAGES stands for "not a chat client". */
static void
call_init(test_ctx_t *t, sl_api_e client_api, bool stream, bool wants_usage)
{
    static const char body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    sl_json_t *doc = sl_json_create(t->pool);
    sl_call_t *c = &t->call;

    memset(c, 0, sizeof(*c));
    assert_int_equal(sl_json_parse(doc, body, sizeof(body) - 1, NULL), 0);
    c->pool = t->pool;
    c->api = SL_API_CHAT;
    c->client_api = client_api;
    c->raw = (sl_str_t){ body, sizeof(body) - 1 };
    c->doc = doc;
    c->native = c->raw;
    c->native_doc = doc;
    c->model = sl_json_get(doc, SL_JSON_ROOT, "model");
    c->stream_options = -1;
    c->stream = stream;
    c->client_wants_usage = wants_usage;
    c->target = &t->target;
    c->request_id = "req-openai";
}


/* parse_response on fixture name into a (body keeps the bytes a's literals point into). */
static void
parse(test_ctx_t *t, const char *name, sl_answer_t *a, sl_buf_t *body)
{
    size_t len;
    char *p = sl_test_fixture(t->pool, DIR, name, &len);

    *body = (sl_buf_t){ p, len, len };
    memset(a, 0, sizeof(*a));
    assert_int_equal(openai()->parse_response(NULL, &t->call, body, a), 0);
}


/* resp_text.json's answer: a chat client gets its bytes; its usage and created are read. */
static void
assert_text_raw(test_ctx_t *t, const sl_answer_t *a, const sl_buf_t *body)
{
    sl_buf_t out = SL_BUF_INIT;

    assert_int_equal(a->raw_api, SL_API_CHAT);
    assert_ptr_equal(a->raw.p, body->p);
    assert_int_equal(a->raw.len, body->len);
    assert_int_equal(sl_frontend_get(SL_API_CHAT)->encode_answer(&t->call, a, &out), 0);
    assert_int_equal(out.len, body->len);
    assert_memory_equal(out.p, body->p, body->len);
    sl_buf_free(&out);
    assert_true(a->usage.known);
    assert_int_equal(a->usage.prompt_tokens, 12);
    assert_int_equal(a->usage.completion_tokens, 5);
    assert_int_equal(a->usage.cached_tokens, 4);
    assert_int_equal(a->usage.reasoning_tokens, 2);
    assert_int_equal(a->created, 1700000000);
}


static void
test_api(void **state)
{
    static const char *const family[] = { "openai",     "azure",      "deepseek",  "mistral",
                                          "groq",       "together",   "fireworks", "xai",
                                          "openrouter", "perplexity", "cerebras",  "ollama",
                                          "vllm",       "echo" };

    (void) state;
    for (size_t i = 0; i < sizeof(family) / sizeof(family[0]); i++) {
        const sl_provider_ops_t *ops = sl_provider_find(family[i]);

        assert_non_null(ops);
        if (ops->api != SL_API_CHAT) {
            fail_msg("%s speaks api %d, not chat", family[i], (int) ops->api);
        }
    }
}


/* build_request on a non-streaming chat call whose body is body. */
static sl_upstream_req_t
build_body(test_ctx_t *t, const char *body)
{
    sl_json_t *doc = sl_json_create(t->pool);
    sl_upstream_req_t req;

    call_init(t, SL_API_CHAT, false, false);
    assert_int_equal(sl_json_parse(doc, body, strlen(body), NULL), 0);
    t->call.raw = t->call.native = (sl_str_t){ body, strlen(body) };
    t->call.doc = t->call.native_doc = doc;
    t->call.model = sl_json_get(doc, SL_JSON_ROOT, "model");
    memset(&req, 0, sizeof(req));
    assert_int_equal(openai()->build_request(NULL, &t->call, &req), 0);
    return req;
}


/*
 * The body goes out with the target's model: when the client named it
 * already, written exactly so, the client's bytes are sent as they are
 * (not copied); otherwise, an escape or a backslash of the model's own
 * included, the model is rewritten.
 */
static void
test_build_model(void **state)
{
    static const char same[] = "{\"model\":\"gpt-4o-mini\",\"messages\":[]}";
    static const char alias[] = "{\"model\":\"m\",\"messages\":[]}";
    static const char escaped[] = "{\"model\":\"gpt-4o\\u002dmini\",\"messages\":[]}";
    static const char bs[] = "{\"model\":\"a\\b\",\"messages\":[]}";
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    req = build_body(t, same);
    assert_ptr_equal(req.body, same);
    assert_int_equal(req.body_len, strlen(same));

    req = build_body(t, alias);
    assert_string_equal(req.body, same);
    assert_ptr_not_equal(req.body, alias);

    req = build_body(t, escaped);
    assert_string_equal(req.body, same);

    /* the client's "a\b" is a and a backspace; the target's a\b is written "a\\b" */
    t->target.model = "a\\b";
    req = build_body(t, bs);
    assert_string_equal(req.body, "{\"model\":\"a\\\\b\",\"messages\":[]}");
}


/* A chat client gets the bytes; the typed answer, encoded as chat, is the same answer. */
static void
test_answer_text(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t a;
    sl_buf_t body;

    call_init(t, SL_API_CHAT, false, false);
    parse(t, "resp_text.json", &a, &body);
    assert_text_raw(t, &a, &body);
    assert_int_equal(a.nchoices, 1);
    assert_int_equal(a.choices[0].finish, SL_FINISH_STOP);

    a.raw = sl_str_null;
    sl_test_json_expect(sl_test_encode_answer(&t->call, &a),
                        sl_test_fixture_json(DIR, "resp_text.json"), "resp_text typed");
}


/* Two choices, one with two tool calls. */
static void
test_answer_tools(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t a;
    sl_buf_t body;
    json_t *s;

    call_init(t, SL_API_MESSAGES, false, false);
    parse(t, "resp_tools.json", &a, &body);
    assert_int_equal(a.nchoices, 2);
    assert_int_equal(a.choices[0].ntools, 2);
    assert_int_equal(a.choices[0].finish, SL_FINISH_TOOL_CALLS);
    assert_int_equal(a.choices[0].text.len, 0);
    s = sl_test_literal(a.choices[0].tools[0].args);
    assert_string_equal(json_string_value(s), "{\"city\":\"Paris\"}");
    json_decref(s);
    assert_int_equal(a.choices[1].index, 1);
    assert_int_equal(a.choices[1].finish, SL_FINISH_LENGTH);
    a.raw = sl_str_null;
    sl_test_json_expect(sl_test_encode_answer(&t->call, &a),
                        sl_test_fixture_json(DIR, "resp_tools.json"), "resp_tools typed");
}


/* reasoning_content (DeepSeek and others) is the choice's reasoning. */
static void
test_answer_reasoning(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t a;
    sl_buf_t body;
    json_t *s;

    call_init(t, SL_API_MESSAGES, false, false);
    parse(t, "resp_reasoning.json", &a, &body);
    assert_int_equal(a.nchoices, 1);
    s = sl_test_literal(a.choices[0].reasoning);
    assert_string_equal(json_string_value(s), "Six times seven.");
    json_decref(s);
    s = sl_test_literal(a.choices[0].text);
    assert_string_equal(json_string_value(s), "42");
    json_decref(s);
    assert_int_equal(a.usage.reasoning_tokens, 6);
    s = sl_test_literal(a.model);
    assert_string_equal(json_string_value(s), "deepseek-reasoner");
    json_decref(s);
}


static void
test_answer_embeddings(void **state)
{
    static const char resp[] =
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
        "\"embedding\":[0.5,-1]}],\"model\":\"text-embedding-3-small\","
        "\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}";
    test_ctx_t *t = *state;
    sl_buf_t body = { (char *) resp, sizeof(resp) - 1, sizeof(resp) - 1 };
    sl_buf_t out = SL_BUF_INIT;
    sl_answer_t a;

    call_init(t, SL_API_EMBEDDINGS, false, false);
    t->call.api = SL_API_EMBEDDINGS;
    memset(&a, 0, sizeof(a));
    assert_int_equal(openai()->parse_response(NULL, &t->call, &body, &a), 0);
    assert_int_equal(a.raw_api, SL_API_EMBEDDINGS);
    assert_int_equal(a.nchoices, 0);
    assert_true(a.usage.known);
    assert_int_equal(a.usage.prompt_tokens, 3);
    assert_int_equal(sl_frontend_get(SL_API_EMBEDDINGS)->encode_answer(&t->call, &a, &out), 0);
    assert_int_equal(out.len, sizeof(resp) - 1);
    sl_buf_free(&out);
}


static void
test_answer_invalid(void **state)
{
    static const char *const bad[] = { "", "not json", "\"x\"", "12" };
    test_ctx_t *t = *state;

    call_init(t, SL_API_CHAT, false, false);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_buf_t body = { (char *) bad[i], strlen(bad[i]), strlen(bad[i]) };
        sl_answer_t a;

        memset(&a, 0, sizeof(a));
        assert_int_equal(openai()->parse_response(NULL, &t->call, &body, &a), SL_EUPSTREAM);
    }
}


/*
 * With raw_answer (nothing but the frontend reads the answer) a chat client
 * gets the bytes and the usage, and the choices are skimmed: none are
 * typed. Broken brackets or strings in them still make SL_EUPSTREAM; a
 * client of another API gets the typed choices all the same.
 */
static void
test_answer_raw(void **state)
{
    static const char *const bad[] = {
        "{\"id\":\"x\",\"choices\":[{\"message\":{]}],\"usage\":{\"prompt_tokens\":1}}",
        "{\"id\":\"x\",\"choices\":[{\"message\":\"\\q\"}],\"usage\":{}}",
        "{\"id\":\"x\",\"choices\":[{\"message\":\"open]}",
    };
    test_ctx_t *t = *state;
    sl_answer_t a;
    sl_buf_t body;

    call_init(t, SL_API_CHAT, false, false);
    t->call.raw_answer = true;
    parse(t, "resp_text.json", &a, &body);
    assert_int_equal(a.nchoices, 0);
    assert_text_raw(t, &a, &body);
    assert_true(a.id.len > 2 && a.model.len > 2);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_buf_t b = { (char *) bad[i], strlen(bad[i]), strlen(bad[i]) };

        memset(&a, 0, sizeof(a));
        assert_int_equal(openai()->parse_response(NULL, &t->call, &b, &a), SL_EUPSTREAM);
    }
    /* a Messages client needs the choices: raw_answer does not skim for it */
    call_init(t, SL_API_MESSAGES, false, false);
    t->call.raw_answer = true;
    parse(t, "resp_text.json", &a, &body);
    assert_int_equal(a.nchoices, 1);
    assert_int_equal(a.choices[0].finish, SL_FINISH_STOP);
}


/*
 * A Responses client of a Responses target (forwarded) gets the bytes; with
 * raw_answer the output items are skimmed, the usage read all the same.
 */
static void
test_answer_responses_raw(void **state)
{
    static const char resp[] =
        "{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1700000000,"
        "\"model\":\"gpt-4o\",\"status\":\"completed\",\"output\":[{\"type\":\"message\","
        "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"hi ]}\"}]}],"
        "\"usage\":{\"input_tokens\":9,\"output_tokens\":3,\"total_tokens\":12}}";
    static const char bad[] = "{\"id\":\"resp_1\",\"output\":[{\"type\":\"message\"}}],"
                              "\"usage\":{\"input_tokens\":9}}";
    test_ctx_t *t = *state;
    sl_buf_t body = { (char *) resp, sizeof(resp) - 1, sizeof(resp) - 1 };
    sl_buf_t broken = { (char *) bad, sizeof(bad) - 1, sizeof(bad) - 1 };
    sl_answer_t a;

    for (int raw = 0; raw < 2; raw++) {
        call_init(t, SL_API_RESPONSES, false, false);
        t->call.forwarded = true;
        t->call.raw_answer = raw == 1;
        memset(&a, 0, sizeof(a));
        assert_int_equal(openai()->parse_response(NULL, &t->call, &body, &a), 0);
        assert_int_equal(a.raw_api, SL_API_RESPONSES);
        assert_ptr_equal(a.raw.p, body.p);
        assert_int_equal(a.nchoices, raw == 1 ? 0 : 1);
        assert_int_equal(a.usage.prompt_tokens, 9);
        assert_int_equal(a.usage.completion_tokens, 3);
        assert_int_equal(a.created, 1700000000);
        memset(&a, 0, sizeof(a));
        assert_int_equal(openai()->parse_response(NULL, &t->call, &broken, &a), SL_EUPSTREAM);
    }
}


/*
 * A chat client gets the provider's events unchanged (the frontend's
 * [DONE] at the end), but for the usage chunk when it did not ask for
 * usage; the typed events are there all the same.
 */
static void
test_stream_passthrough(void **state)
{
    static const char *const cases[] = { "stream_text.sse", "stream_tools.sse",
                                         "stream_reasoning.sse" };
    static const size_t steps[] = { 0, 1, 7 };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        const char *sse = sl_test_fixture(t->pool, DIR, cases[i], &len);

        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            sl_test_stream_t got;
            sl_stream_t st;
            json_t *want;
            size_t n;

            call_init(t, SL_API_CHAT, true, true);
            sl_test_run_stream(openai(), NULL, &t->call, &st, sse, len, steps[k], &got);
            assert_true(st.done);
            assert_true(got.done_line);
            if (got.out.len != len || memcmp(got.out.p, sse, len) != 0) {
                fail_msg("%s: got\n%.*s\nwant\n%s", cases[i], (int) got.out.len, got.out.p, sse);
            }
            want = json_deep_copy(got.events);
            sl_test_stream_free(&got);

            /* without usage: the usage-only chunk is the one thing missing */
            call_init(t, SL_API_CHAT, true, false);
            sl_test_run_stream(openai(), NULL, &t->call, &st, sse, len, steps[k], &got);
            sl_test_json_equal(got.events, want, cases[i]);
            n = json_array_size(got.data);
            if (strcmp(cases[i], "stream_reasoning.sse") == 0) {
                /* its usage rides on a chunk with choices: that one stays */
                assert_int_equal(n, 5);
            } else {
                assert_int_equal(n, strcmp(cases[i], "stream_text.sse") == 0 ? 4 : 5);
                assert_null(json_object_get(json_array_get(got.data, n - 1), "usage"));
            }
            json_decref(want);
            sl_test_stream_free(&got);
        }
    }
}


/*
 * The typed events, encoded by the chat frontend for a client whose API is
 * not the provider's: role, text, tool calls (a call's arguments sent with
 * its name become a second chunk), finish, and the frontend's usage chunk.
 */
static void
test_stream_typed(void **state)
{
    static const char *const cases[] = { "stream_text", "stream_tools", "stream_reasoning" };
    static const size_t steps[] = { 0, 1, 7 };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        size_t len;
        const char *sse;

        snprintf(name, sizeof(name), "%s.sse", cases[i]);
        sse = sl_test_fixture(t->pool, DIR, name, &len);
        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            sl_test_stream_t got;
            sl_stream_t st;

            call_init(t, SL_API_MESSAGES, true, true);
            sl_test_run_stream(openai(), NULL, &t->call, &st, sse, len, steps[k], &got);
            assert_true(st.done);
            assert_true(got.done_line);
            assert_string_equal(st.served_model, json_string_value(json_object_get(
                                                     json_array_get(got.data, 0), "model")));
            sl_test_normalise_created(got.data);
            snprintf(name, sizeof(name), "%s.typed.json", cases[i]);
            sl_test_golden(json_pack("{sOsO}", "events", got.events, "chunks", got.data), DIR,
                           name);
            sl_test_stream_free(&got);
        }
    }
}


/* An in-band error: SL_EV_ERROR (server_error: a retryable 502), nothing raw, nothing after. */
static void
test_stream_error(void **state)
{
    test_ctx_t *t = *state;
    sl_test_stream_t got;
    sl_stream_t st;
    size_t len;
    const char *sse = sl_test_fixture(t->pool, DIR, "stream_error.sse", &len);
    json_t *last;
    json_t *e;

    for (int client = 0; client < 2; client++) {
        call_init(t, client == 0 ? SL_API_CHAT : SL_API_MESSAGES, true, true);
        sl_test_run_stream(openai(), NULL, &t->call, &st, sse, len, 0, &got);
        assert_true(st.failed);
        assert_false(st.done);
        assert_true(got.errored);
        assert_false(got.done_line);
        last = json_array_get(got.events, json_array_size(got.events) - 1);
        e = json_object_get(last, "error");
        assert_string_equal(json_string_value(json_object_get(last, "type")), "error");
        assert_int_equal(json_integer_value(json_object_get(e, "status")), 502);
        assert_true(json_is_true(json_object_get(e, "retryable")));
        assert_string_equal(json_string_value(json_object_get(e, "type")), "api_error");
        assert_string_equal(json_string_value(json_object_get(e, "message")),
                            "The server had an error while processing your request.");
        /* role, "Part", then the frontend's error event: the provider's is not passed raw */
        assert_int_equal(json_array_size(got.data), 3);
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(json_array_get(got.data, 2), "error"), "message")),
                            "The server had an error while processing your request.");
        sl_test_stream_free(&got);
    }
}


/* Raw framing: event: lines kept, multi-line data one data: line each; text that is not JSON. */
static void
test_stream_framing(void **state)
{
    test_ctx_t *t = *state;
    sl_sse_event_t ev;
    sl_stream_t st;
    sl_evs_t evs;

    call_init(t, SL_API_CHAT, true, true);
    memset(&st, 0, sizeof(st));
    st.call = &t->call;
    memset(&evs, 0, sizeof(evs));
    evs.pool = t->pool;
    memset(&ev, 0, sizeof(ev));
    ev.event = sl_str_lit("note");
    ev.data = sl_str_lit("{\"id\":\"x\",\n\"choices\":[]}");
    assert_int_equal(openai()->stream_event(NULL, &st, &ev, &evs), 0);
    assert_int_equal(evs.raw_api, SL_API_CHAT);
    assert_true(sl_str_eq(evs.raw, "event: note\ndata: {\"id\":\"x\",\ndata: \"choices\":[]}\n\n"));
    assert_int_equal(evs.n, 1); /* START */

    sl_evs_reset(&evs);
    ev.event = sl_str_lit("");
    ev.data = sl_str_lit("keep-alive");
    assert_int_equal(openai()->stream_event(NULL, &st, &ev, &evs), 0);
    assert_true(sl_str_eq(evs.raw, "data: keep-alive\n\n"));
    assert_int_equal(evs.n, 0);

    sl_evs_reset(&evs);
    ev.data = sl_str_lit("[DONE]");
    assert_int_equal(openai()->stream_event(NULL, &st, &ev, &evs), 0);
    assert_non_null(evs.raw.p);
    assert_int_equal(evs.raw.len, 0);
    assert_int_equal(evs.n, 1);
    assert_int_equal(evs.v[0].type, SL_EV_DONE);
    assert_true(st.done);

    /* a client of another API: no raw at all */
    call_init(t, SL_API_MESSAGES, true, true);
    memset(&st, 0, sizeof(st));
    st.call = &t->call;
    sl_evs_reset(&evs);
    ev.data =
        sl_str_lit("{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}");
    assert_int_equal(openai()->stream_event(NULL, &st, &ev, &evs), 0);
    assert_null(evs.raw.p);
    assert_int_equal(evs.n, 2);
    assert_int_equal(evs.v[1].type, SL_EV_TEXT);
    assert_int_equal(st.content_bytes, 1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api),
        cmocka_unit_test_setup_teardown(test_answer_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_reasoning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_embeddings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_responses_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_typed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_framing, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
