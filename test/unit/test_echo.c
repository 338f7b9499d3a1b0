/*
 * Unit tests for kind echo (providers/echo.c): the configuration takes no
 * base_url; its local answers, read back with its parse_response and
 * stream_event and encoded by the chat frontend, echo the last user
 * message; streams go a word at a time with usage when asked; the tool-call
 * rule (forced, required, named in the prompt, none, after a tool result);
 * token usage (characters / 4, words); max_tokens; embeddings are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "providers/provider.h"
#include "providers/registry.h"
#include "unit/adaptertest.h"

typedef struct test_ctx {
    sl_pool_t *pool;
    sl_conf_t *conf;
    sl_target_t target;
    sl_call_t call;
} test_ctx_t;

static int load(const char *yaml, sl_conf_t **out, char *err, size_t errlen);
static int setup(void **state);
static int teardown(void **state);
static const sl_provider_ops_t *echo(void);
static void call_init(test_ctx_t *t, const char *body);
static json_t *answer(test_ctx_t *t, const char *body, sl_answer_t *a);
static json_t *tool_call(test_ctx_t *t, const char *body);
static void test_conf(void **state);
static void test_answer(void **state);
static void test_stream(void **state);
static void test_tools(void **state);
static void test_max_tokens(void **state);
static void test_refused(void **state);


static int
load(const char *yaml, sl_conf_t **out, char *err, size_t errlen)
{
    char path[] = "/tmp/sl-echo-XXXXXX";
    int fd = mkstemp(path);
    int rc;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t) strlen(yaml));
    assert_int_equal(close(fd), 0);
    rc = sl_conf_load(path, out, err, errlen);
    unlink(path);
    return rc;
}


static int
setup(void **state)
{
    test_ctx_t *t = calloc(1, sizeof(*t));
    char err[512];

    if (t == NULL) {
        return -1;
    }
    if (load("providers:\n  demo: {kind: echo}\n", &t->conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "load: %s\n", err);
        free(t);
        return -1;
    }
    t->pool = sl_pool_create(0);
    t->target.provider = sl_conf_provider(t->conf, "demo", 4);
    t->target.model = "echo-1";
    t->target.weight = 1;
    *state = t;
    return 0;
}


static int
teardown(void **state)
{
    test_ctx_t *t = *state;

    sl_pool_destroy(t->pool);
    sl_conf_destroy(t->conf);
    free(t);
    return 0;
}


static const sl_provider_ops_t *
echo(void)
{
    const sl_provider_ops_t *ops = sl_provider_find("echo");

    assert_non_null(ops);
    return ops;
}


/* The call the chat frontend would make of body (a chat client). */
static void
call_init(test_ctx_t *t, const char *body)
{
    sl_json_t *doc = sl_json_create(t->pool);
    sl_call_t *c = &t->call;
    int64_t n;
    int so;

    memset(c, 0, sizeof(*c));
    assert_int_equal(sl_json_parse(doc, body, strlen(body), NULL), 0);
    c->pool = t->pool;
    c->api = SL_API_CHAT;
    c->client_api = SL_API_CHAT;
    c->raw = (sl_str_t){ body, strlen(body) };
    c->doc = doc;
    c->native = c->raw;
    c->native_doc = doc;
    c->model = sl_json_get(doc, SL_JSON_ROOT, "model");
    so = sl_json_get(doc, SL_JSON_ROOT, "stream_options");
    c->stream_options = so;
    c->stream = sl_json_is_true(doc, sl_json_get(doc, SL_JSON_ROOT, "stream"));
    c->client_wants_usage = sl_json_is_true(doc, sl_json_get(doc, so, "include_usage"));
    if (sl_json_int(doc, sl_json_get(doc, SL_JSON_ROOT, "max_tokens"), &n) == 0 && n > 0) {
        c->max_tokens = (uint64_t) n;
    }
    c->target = &t->target;
    c->request_id = "req-echo";
}


/* build_request, local and parse_response on body; the chat body the client gets, parsed. */
static json_t *
answer(test_ctx_t *t, const char *body, sl_answer_t *a)
{
    const sl_provider_conf_t *p = t->target.provider;
    sl_upstream_req_t req;
    sl_local_reply_t reply;
    sl_buf_t b;
    json_t *typed;
    json_t *v;

    call_init(t, body);
    memset(&req, 0, sizeof(req));
    assert_int_equal(p->ops->build_request(p->ext, &t->call, &req), 0);
    memset(&reply, 0, sizeof(reply));
    assert_int_equal(p->ops->local(p->ext, &t->call, &reply), 0);
    assert_int_equal(reply.status, 200);
    assert_string_equal(reply.content_type, "application/json");
    b = (sl_buf_t){ (char *) reply.body, reply.body_len, reply.body_len };
    memset(a, 0, sizeof(*a));
    assert_int_equal(p->ops->parse_response(p->ext, &t->call, &b, a), 0);
    v = sl_test_encode_answer(&t->call, a);
    sl_test_normalise_created(v);
    a->raw = sl_str_null; /* the typed answer says the same */
    typed = sl_test_encode_answer(&t->call, a);
    sl_test_normalise_created(typed);
    sl_test_json_expect(typed, json_deep_copy(v), "typed echo");
    return v;
}


static void
test_conf(void **state)
{
    test_ctx_t *t = *state;
    char err[512];
    sl_conf_t *conf = NULL;

    assert_int_equal(echo()->api, SL_API_CHAT);
    assert_non_null(echo()->local);
    assert_non_null(t->target.provider);
    assert_null(t->target.provider->api_key.value);
    assert_int_equal(
        load("providers:\n  e: {kind: echo, base_url: 'http://x'}\n", &conf, err, sizeof(err)),
        SL_ECONF);
    assert_null(conf);
    assert_non_null(strstr(err, "takes no base_url"));
    assert_int_equal(load("providers:\n  e: {kind: echo, voice: loud}\n", &conf, err, sizeof(err)),
                     SL_ECONF);
    assert_non_null(strstr(err, "unknown key \"voice\""));
}


/* The last user message, after "echo: "; usage by characters and words. */
static void
test_answer(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t a;
    json_t *want = json_loads(
        "{\"id\":\"chatcmpl-req-echo\",\"object\":\"chat.completion\",\"created\":0,"
        "\"model\":\"echo-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"echo: h\\u00e9llo \\\"world\\\"\\nagain\"},\"logprobs\":null,"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4,"
        "\"total_tokens\":14,\"prompt_tokens_details\":{\"cached_tokens\":0}}}",
        0, NULL);

    /*
     * 11 + 1 + 7 + 19 characters (é is one; the text parts joined with "\n"):
     * 38 / 4 rounded up is 10 tokens; 4 words
     */
    sl_test_json_expect(
        answer(t,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be a parrot\"},"
               "{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"echo: "
               "x\"},"
               "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9llo "
               "\\\"world\\\"\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},"
               "{\"type\":\"text\",\"text\":\"again\"}]}]}",
               &a),
        want, "answer");
    assert_int_equal(a.usage.prompt_tokens, 10);
    assert_int_equal(a.usage.completion_tokens, 4);
}


/* A word at a time; the usage chunk only for a client that asked; [DONE] from the frontend. */
static void
test_stream(void **state)
{
    static const char *const words[] = { "echo:", " two", "  words" };
    test_ctx_t *t = *state;
    const sl_provider_conf_t *p = t->target.provider;

    for (int usage = 0; usage < 2; usage++) {
        sl_local_reply_t reply;
        sl_test_stream_t got;
        sl_stream_t st;
        json_t *last;
        size_t n;

        call_init(t, usage
                         ? "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":"
                           "true},\"messages\":[{\"role\":\"user\",\"content\":\"two  words\"}]}"
                         : "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                           "\"content\":\"two  words\"}]}");
        memset(&reply, 0, sizeof(reply));
        assert_int_equal(p->ops->local(p->ext, &t->call, &reply), 0);
        assert_string_equal(reply.content_type, "text/event-stream");
        for (size_t step = 0; step < 8; step += 7) {
            sl_test_run_stream(p->ops, p->ext, &t->call, &st, reply.body, reply.body_len, step,
                               &got);
            assert_true(st.done);
            assert_true(got.done_line);
            n = json_array_size(got.data);
            assert_int_equal(n, usage ? 6 : 5);
            for (size_t i = 0; i < 3; i++) {
                json_t *c =
                    json_array_get(json_object_get(json_array_get(got.data, i + 1), "choices"), 0);

                assert_string_equal(
                    json_string_value(json_object_get(json_object_get(c, "delta"), "content")),
                    words[i]);
            }
            last = json_array_get(got.data, n - 1);
            if (usage) {
                assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "usage"),
                                                                    "prompt_tokens")),
                                 3); /* 10 characters */
                assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "usage"),
                                                                    "completion_tokens")),
                                 3);
            } else {
                assert_string_equal(
                    json_string_value(json_object_get(
                        json_array_get(json_object_get(last, "choices"), 0), "finish_reason")),
                    "stop");
            }
            assert_true(st.usage.known);
            assert_int_equal(st.usage.completion_tokens, 3);
            assert_string_equal(st.served_model, "echo-1");
            sl_test_stream_free(&got);
        }
    }
}


/* The tool call of body's answer ({"name", "arguments"} decoded), or NULL for a text answer. */
static json_t *
tool_call(test_ctx_t *t, const char *body)
{
    sl_answer_t a;
    json_t *v = answer(t, body, &a);
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    json_t *tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    json_t *out = NULL;

    if (tc != NULL) {
        assert_true(json_is_null(json_object_get(msg, "content")));
        assert_string_equal(json_string_value(json_object_get(tc, "id")), "call_echo_0");
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(v, "choices"), 0), "finish_reason")),
                            "tool_calls");
        out = json_incref(json_object_get(tc, "function"));
    } else {
        assert_true(json_is_string(json_object_get(msg, "content")));
    }
    json_decref(v);
    return out;
}


static void
test_tools(void **state)
{
#define TOOLS                                                                     \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}," \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}]"
    static const struct {
        const char *body;
        const char *name; /* NULL: a text answer */
    } cases[] = {
        /* named in the prompt, as a word */
        { "{\"model\":\"m\"," TOOLS ",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"call get_time please\"}]}",
          "get_time" },
        { "{\"model\":\"m\"," TOOLS ",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"call get_times please\"}]}",
          NULL },
        /* forced */
        { "{\"model\":\"m\"," TOOLS ",\"tool_choice\":{\"type\":\"function\",\"function\":"
          "{\"name\":\"get_weather\"}},\"messages\":[{\"role\":\"user\",\"content\":\"get_time\"}]"
          "}",
          "get_weather" },
        /* required: the one named, else the first */
        { "{\"model\":\"m\"," TOOLS ",\"tool_choice\":\"required\",\"messages\":[{\"role\":"
          "\"user\",\"content\":\"hi\"}]}",
          "get_weather" },
        { "{\"model\":\"m\"," TOOLS ",\"tool_choice\":\"required\",\"messages\":[{\"role\":"
          "\"user\",\"content\":\"(get_time)\"}]}",
          "get_time" },
        /* none, no tools, and after a tool result: text */
        { "{\"model\":\"m\"," TOOLS ",\"tool_choice\":\"none\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"get_time\"}]}",
          NULL },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"get_time\"}]}", NULL },
        { "{\"model\":\"m\"," TOOLS ",\"messages\":[{\"role\":\"user\",\"content\":\"get_time\"},"
          "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_echo_0\",\"type\":\"function\","
          "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
          "\"tool_call_id\":\"call_echo_0\",\"content\":\"noon\"}]}",
          NULL },
    };
#undef TOOLS
    test_ctx_t *t = *state;
    sl_answer_t a;
    json_t *v;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *fn = tool_call(t, cases[i].body);

        if (cases[i].name == NULL) {
            if (fn != NULL) {
                fail_msg("case %zu: a tool call", i);
            }
            continue;
        }
        if (fn == NULL) {
            fail_msg("case %zu: no tool call", i);
        }
        assert_string_equal(json_string_value(json_object_get(fn, "name")), cases[i].name);
        v = json_loads(json_string_value(json_object_get(fn, "arguments")), 0, NULL);
        assert_true(json_is_string(json_object_get(v, "text")));
        json_decref(v);
        json_decref(fn);
    }

    /* the tool's result is what echo says next */
    v = answer(t,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"get_time\"},"
               "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"noon\"}]}",
               &a);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message"),
            "content")),
        "echo: noon");
    json_decref(v);

    /* the arguments hold the prompt */
    v = answer(t,
               "{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
               "\"tool_choice\":\"required\",\"messages\":[{\"role\":\"user\",\"content\":"
               "\"say \\\"hi\\\"\"}]}",
               &a);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(
                json_array_get(json_object_get(
                                   json_object_get(json_array_get(json_object_get(v, "choices"), 0),
                                                   "message"),
                                   "tool_calls"),
                               0),
                "function"),
            "arguments")),
        "{\"text\":\"say \\\"hi\\\"\"}");
    json_decref(v);
}


/* max_tokens keeps that many words, finish "length". */
static void
test_max_tokens(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t a;
    json_t *v = answer(t,
                       "{\"model\":\"m\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"one two three\"}]}",
                       &a);
    json_t *c = json_array_get(json_object_get(v, "choices"), 0);

    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "message"), "content")), "echo: one");
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "length");
    assert_int_equal(a.usage.completion_tokens, 2);
    json_decref(v);
}


static void
test_refused(void **state)
{
    test_ctx_t *t = *state;
    const sl_provider_conf_t *p = t->target.provider;
    sl_upstream_req_t req;
    sl_local_reply_t reply;

    call_init(t, "{\"model\":\"m\",\"input\":\"x\"}");
    t->call.api = SL_API_EMBEDDINGS;
    assert_int_equal(p->ops->build_request(p->ext, &t->call, &req), SL_EDENIED);
    assert_int_equal(p->ops->local(p->ext, &t->call, &reply), SL_EPARSE);
    call_init(t, "{\"model\":\"m\",\"messages\":{}}");
    assert_int_equal(p->ops->build_request(p->ext, &t->call, &req), SL_EPARSE);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
