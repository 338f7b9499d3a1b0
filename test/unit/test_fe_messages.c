/*
 * Unit tests for core/gateway/fe_messages.c, the Anthropic Messages
 * frontend, against the golden fixtures of the old inbound hooks in
 * test/unit/fixtures/anthropic/client_* (found through SL_TEST_SRCDIR):
 * Anthropic requests in -> OpenAI chat bodies out; OpenAI answers, read by
 * the OpenAI adapter's parse_response, -> Anthropic messages out; OpenAI
 * chunk streams, read by the OpenAI adapter's stream_event, -> Anthropic
 * event sequences out (fed whole and in small steps; each event's name must
 * be its data's type). JSON is compared semantically with json_equal().
 * Also what those fixtures cannot show: thinking blocks and signatures kept
 * byte-identical, an Anthropic target's own bytes passed through (with
 * exactly one message_stop at the end), an error after the commit point,
 * 1-hour cache writes, and the error bodies; and the Anthropic adapter's
 * fixtures (resp_thinking, stream_thinking) through this frontend, natively
 * (byte for byte) and as typed events.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/base/errno.h"
#include "core/gateway/frontend.h"
#include "core/gateway/frontend_internal.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "providers/provider.h"
#include "providers/registry.h"

typedef struct test_ctx {
    sl_pool_t *pool;
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
} test_ctx_t;

/* What the driver does with a stream, for the fixtures: adapter -> frontend. */
typedef struct test_feed {
    const sl_frontend_t *fe;
    const sl_provider_ops_t *ops;
    sl_stream_t *st;
    sl_evs_t evs;
    void *state;
    sl_buf_t out;
    bool over; /* an error or the provider's end came */
} test_feed_t;

static int setup(void **state);
static int teardown(void **state);
static const sl_frontend_t *messages(void);
static const sl_provider_ops_t *openai(void);
static char *fixture(sl_pool_t *pool, const char *name, size_t *len);
static json_t *fixture_json(const char *name);
static void call_init(test_ctx_t *t);
static void assert_json_equal(json_t *got, json_t *want, const char *what);
static json_t *events_json(const char *p, size_t len);
static size_t count(const char *p, size_t len, const char *needle);
static sl_str_t lit(const char *s);
static void push(sl_evs_t *evs, sl_ev_type_e type, const char *text);
static int feed_on_event(void *data, const sl_sse_event_t *ev);
static void test_table(void **state);
static void test_requests(void **state);
static void test_request_native(void **state);
static void test_request_errors(void **state);
static void test_responses(void **state);
static void test_answer_thinking(void **state);
static void test_answer_cache_1h(void **state);
static void test_answer_raw(void **state);
static void test_streams(void **state);
static void test_stream_empty(void **state);
static void test_request_anthropic_only(void **state);
static void test_request_mapped(void **state);
static void test_stream_thinking(void **state);
static void test_stream_raw(void **state);
static void test_stream_raw_without_finish(void **state);
static void test_stream_error_after_content(void **state);
static void test_native_answer(void **state);
static void test_native_stream(void **state);
static void test_anthropic_typed_stream(void **state);
static void run_anthropic(test_ctx_t *t, sl_api_e client_api, size_t step, sl_buf_t *out);
static void test_error(void **state);


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
    t->prov.ops = sl_provider_find("openai");
    t->prov.base_path = "/v1";
    t->target.provider = &t->prov;
    t->target.model = "claude-test";
    t->target.weight = 1;
    call_init(t);
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


static const sl_frontend_t *
messages(void)
{
    const sl_frontend_t *fe = sl_frontend_get(SL_API_MESSAGES);

    assert_non_null(fe);
    return fe;
}


static const sl_provider_ops_t *
openai(void)
{
    const sl_provider_ops_t *ops = sl_provider_find("openai");

    assert_non_null(ops);
    return ops;
}


/* Reads fixtures/anthropic/name into pool, NUL-terminated. */
static char *
fixture(sl_pool_t *pool, const char *name, size_t *len)
{
    const char *srcdir = getenv("SL_TEST_SRCDIR");
    char path[4096];
    FILE *f;
    long n;
    char *p;

    snprintf(path, sizeof(path), "%s/unit/fixtures/anthropic/%s", srcdir != NULL ? srcdir : "test",
             name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open fixture %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    p = sl_palloc(pool, (size_t) n + 1);
    assert_int_equal(fread(p, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    p[n] = '\0';
    *len = (size_t) n;
    return p;
}


static json_t *
fixture_json(const char *name)
{
    sl_pool_t *pool = sl_pool_create(0);
    json_error_t err;
    size_t len;
    char *p = fixture(pool, name, &len);
    json_t *v = json_loadb(p, len, 0, &err);

    if (v == NULL) {
        fail_msg("fixture %s: %s at line %d", name, err.text, err.line);
    }
    sl_pool_destroy(pool);
    return v;
}


/* A fresh call on the test's target, as the driver hands one to the frontend. */
static void
call_init(test_ctx_t *t)
{
    memset(&t->call, 0, sizeof(t->call));
    t->call.pool = t->pool;
    t->call.client_api = SL_API_MESSAGES;
    t->call.model = -1;
    t->call.stream_options = -1;
    t->call.target = &t->target;
    t->call.request_id = "req-test";
}


static void
assert_json_equal(json_t *got, json_t *want, const char *what)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);

        print_error("%s: got\n%s\nwant\n%s\n", what, g != NULL ? g : "(null)",
                    w != NULL ? w : "(null)");
        free(g);
        free(w);
        fail();
    }
}


/*
 * The events in p as a JSON array of their data; each must be "event: X",
 * "data: " one JSON object whose type is X, then a blank line.
 */
static json_t *
events_json(const char *p, size_t len)
{
    json_t *events = json_array();
    const char *s = p;
    const char *end = p + len;

    while (s < end) {
        const char *sep = strstr(s, "\n\n");
        const char *nl;
        json_t *v;

        assert_non_null(sep);
        assert_memory_equal(s, "event: ", 7);
        nl = memchr(s, '\n', (size_t) (sep - s));
        assert_non_null(nl);
        assert_memory_equal(nl + 1, "data: ", 6);
        v = json_loadb(nl + 7, (size_t) (sep - nl - 7), 0, NULL);
        if (!json_is_object(v)) {
            fail_msg("event data is not a JSON object: %.*s", (int) (sep - s), s);
        }
        if (!json_is_string(json_object_get(v, "type"))
            || strlen(json_string_value(json_object_get(v, "type"))) != (size_t) (nl - s - 7)
            || memcmp(json_string_value(json_object_get(v, "type")), s + 7, (size_t) (nl - s - 7))
                   != 0) {
            fail_msg("event name and data type differ: %.*s", (int) (sep - s), s);
        }
        json_array_append_new(events, v);
        s = sep + 2;
    }
    return events;
}


/* Occurrences of needle in p[0..len). */
static size_t
count(const char *p, size_t len, const char *needle)
{
    size_t n = 0;
    size_t k = strlen(needle);

    for (size_t i = 0; i + k <= len; i++) {
        if (memcmp(p + i, needle, k) == 0) {
            n++;
        }
    }
    return n;
}


static sl_str_t
lit(const char *s)
{
    return (sl_str_t){ s, strlen(s) };
}


/* Appends an event of type with text (a literal) to evs; choice 0. */
static void
push(sl_evs_t *evs, sl_ev_type_e type, const char *text)
{
    sl_ev_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    if (text != NULL) {
        ev.text = lit(text);
    }
    sl_evs_push(evs, &ev);
}


/* One upstream event through the adapter, the batch through the frontend. */
static int
feed_on_event(void *data, const sl_sse_event_t *ev)
{
    test_feed_t *f = data;

    if (f->over) {
        return 0;
    }
    sl_evs_reset(&f->evs);
    assert_int_equal(f->ops->stream_event(NULL, f->st, ev, &f->evs), 0);
    assert_int_equal(f->fe->encode_events(f->state, &f->evs, &f->out), 0);
    for (size_t i = 0; i < f->evs.n; i++) {
        if (f->evs.v[i].type == SL_EV_ERROR) {
            /* after the commit point, as in the fixtures: the driver's in-band error */
            assert_non_null(f->evs.v[i].error);
            assert_int_equal(f->fe->encode_stream_error(f->state, f->evs.v[i].error, &f->out), 0);
            f->over = true;
        } else if (f->evs.v[i].type == SL_EV_DONE) {
            f->over = true;
        }
    }
    return 0;
}


static void
test_table(void **state)
{
    const sl_frontend_t *fe = messages();

    (void) state;
    assert_ptr_equal(fe, &sl__frontend_messages);
    assert_string_equal(fe->name, "messages");
    assert_string_equal(fe->name, sl_api_name(SL_API_MESSAGES));
    assert_int_equal(fe->api, SL_API_MESSAGES);
    assert_non_null(fe->decode);
    assert_non_null(fe->model);
    assert_non_null(fe->encode_answer);
    assert_non_null(fe->stream_open);
    assert_non_null(fe->encode_events);
    assert_non_null(fe->encode_end);
    assert_non_null(fe->encode_stream_error);
    assert_non_null(fe->encode_error);
}


static void
test_requests(void **state)
{
    static const struct {
        const char *name;
        const char *model;
        bool stream;
        uint64_t max_tokens;
    } cases[] = {
        { "client_req_text", "claude", false, 256 },
        { "client_req_tools", "gpt-4o-mini", true, 1024 },
        { "client_req_tool_choice", "gemini", false, 64 },
    };
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        sl_error_t err;
        json_t *got;
        json_t *want;
        size_t len;
        char *raw;
        int rc;

        call_init(t);
        snprintf(name, sizeof(name), "%s.in.json", cases[i].name);
        raw = fixture(t->pool, name, &len);
        rc = fe->decode(&t->call, (sl_str_t){ raw, len }, &err);
        if (rc != 0) {
            fail_msg("%s: decode = %d (%s)", cases[i].name, rc,
                     err.message != NULL ? err.message : "-");
        }
        assert_int_equal(t->call.api, SL_API_CHAT);
        assert_int_equal(t->call.raw.p[t->call.raw.len], '\0');
        got = json_loadb(t->call.raw.p, t->call.raw.len, 0, NULL);
        assert_non_null(got);
        snprintf(name, sizeof(name), "%s.out.json", cases[i].name);
        want = fixture_json(name);
        assert_json_equal(got, want, cases[i].name);
        json_decref(got);
        json_decref(want);

        /* the client's own body travels along, for an Anthropic target */
        assert_ptr_equal(t->call.native.p, raw);
        assert_int_equal(t->call.native.len, len);
        assert_non_null(t->call.native_doc);
        assert_int_equal(sl_json_type(t->call.native_doc, SL_JSON_ROOT), SL_JSON_OBJECT);
        assert_non_null(t->call.doc);
        assert_true(t->call.model >= 0);
        assert_string_equal(fe->model(&t->call), cases[i].model);
        assert_int_equal(t->call.stream, cases[i].stream);
        assert_int_equal(t->call.client_wants_usage, cases[i].stream);
        assert_int_equal(t->call.max_tokens, cases[i].max_tokens);
    }
}


/*
 * thinking and top_k are mapped for the other kinds (sluice_thinking,
 * reasoning_effort, top_k); the thinking blocks of earlier turns are not
 * (only Anthropic reads them back); all of it is still in call->native.
 */
static void
test_request_native(void **state)
{
    static const char body[] =
        "{\"model\":\"m\\u00e9\",\"max_tokens\":5,\"top_k\":3,"
        "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024},"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"s+/=\"},"
        "{\"type\":\"text\",\"text\":\"y\"}]},{\"role\":\"user\",\"content\":\"z\"}]}";
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();
    sl_error_t err;
    sl_str_t sig;

    assert_int_equal(fe->decode(&t->call, lit(body), &err), 0);
    assert_null(strstr(t->call.raw.p, "signature"));
    assert_non_null(
        strstr(t->call.raw.p, "\"sluice_thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}"));
    assert_non_null(strstr(t->call.raw.p, "\"reasoning_effort\":\"low\""));
    assert_non_null(strstr(t->call.raw.p, "\"top_k\":3"));
    assert_null(t->call.untranslatable);
    assert_int_equal(t->call.native.len, strlen(body));
    assert_int_equal(
        sl_json_type(t->call.native_doc, sl_json_get(t->call.native_doc, SL_JSON_ROOT, "thinking")),
        SL_JSON_OBJECT);
    assert_int_equal(
        sl_json_type(t->call.native_doc, sl_json_get(t->call.native_doc, SL_JSON_ROOT, "top_k")),
        SL_JSON_NUMBER);
    sig =
        sl_json_raw(t->call.native_doc, sl_json_path(t->call.native_doc, SL_JSON_ROOT, "messages"));
    assert_non_null(strstr(sig.p, "\"signature\":\"s+/=\""));
    assert_string_equal(fe->model(&t->call), "m\xc3\xa9");
    assert_false(t->call.stream);
}


static void
test_request_errors(void **state)
{
    static const struct {
        const char *body;
        const char *message; /* a substring of the message */
    } cases[] = {
        { "", "The request body is empty. Send a JSON object." },
        { "{not json", "We could not parse the JSON body of your request: string or '}' expected "
                       "near 'not' (line 1, column 4)." },
        { "[1]", "We could not parse the JSON body of your request: the request body must be a "
                 "JSON object." },
        { "5", "We could not parse the JSON body of your request: '[' or '{' expected near '5' "
               "(line 1, column 1)." },
        { "{\"a\":1,\"a\":2}", "We could not parse the JSON body of your request: duplicate object "
                               "key near '\"a\"'" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "max_tokens: Field required" },
        { "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "max_tokens: Input should be a positive integer" },
        { "{\"model\":\"m\",\"max_tokens\":5}", "messages: Field required" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", "messages" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
          "role" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":5}]}",
          "content" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"document\",\"source\":{}}]}]}",
          "document" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"thinking\":{\"type\":\"on\"},\"messages\":"
          "[{\"role\":\"user\",\"content\":\"x\"}]}",
          "thinking" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"output_config\":{\"format\":{\"type\":\"x\"}},"
          "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "output_config" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
          "image" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"tool_result\",\"content\":\"x\"}]}]}",
          "tool_use_id" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":"
          "[{\"type\":\"tool_use\",\"name\":\"n\",\"input\":{}}]}]}",
          "tool_use" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"stream\":\"yes\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}]}",
          "stream" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"tool\"},\"messages\":"
          "[{\"role\":\"user\",\"content\":\"x\"}]}",
          "tool_choice" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":[1],\"messages\":[{\"role\":"
          "\"user\",\"content\":\"x\"}]}",
          "stop_sequences" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"temperature\":\"hot\",\"messages\":[{\"role\":"
          "\"user\",\"content\":\"x\"}]}",
          "temperature" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":\"image\"}],\"messages\":"
          "[{\"role\":\"user\",\"content\":\"x\"}]}",
          "system" },
        /* what the chat frontend checks on the translated body */
        { "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "You must provide a model parameter." },
        { "{\"model\":7,\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "Invalid type for 'model'" },
    };
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_error_t err;
        int rc;

        call_init(t);
        memset(&err, 0, sizeof(err));
        rc = fe->decode(&t->call, lit(cases[i].body), &err);
        if (rc != SL_EPARSE) {
            fail_msg("case %zu: decode = %d, want SL_EPARSE", i, rc);
        }
        assert_int_equal(err.status, 400);
        assert_string_equal(err.type, "invalid_request_error");
        if (err.message == NULL || strstr(err.message, cases[i].message) == NULL) {
            fail_msg("case %zu: message \"%s\", want \"%s\" in it", i,
                     err.message != NULL ? err.message : "(null)", cases[i].message);
        }
    }
}


static void
test_responses(void **state)
{
    static const char *const cases[] = {
        "client_resp_text",
        "client_resp_tool_use",
        "client_resp_length",
    };
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();
    sl_answer_t none;
    sl_buf_t out = SL_BUF_INIT;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        sl_answer_t a;
        sl_buf_t body = SL_BUF_INIT;
        json_t *got;
        json_t *want;
        size_t len;
        char *raw;

        call_init(t);
        snprintf(name, sizeof(name), "%s.in.json", cases[i]);
        raw = fixture(t->pool, name, &len);
        sl_buf_append(&body, raw, len);
        memset(&a, 0, sizeof(a));
        assert_int_equal(openai()->parse_response(NULL, &t->call, &body, &a), 0);
        sl_buf_clear(&out);
        assert_int_equal(fe->encode_answer(&t->call, &a, &out), 0);
        got = json_loadb(out.p, out.len, 0, NULL);
        if (got == NULL) {
            fail_msg("%s: not JSON: %.*s", cases[i], (int) out.len, out.p);
        }
        snprintf(name, sizeof(name), "%s.out.json", cases[i]);
        want = fixture_json(name);
        assert_json_equal(got, want, cases[i]);
        json_decref(got);
        json_decref(want);
        sl_buf_free(&body);
    }
    /* an answer without a choice cannot be a message */
    memset(&none, 0, sizeof(none));
    assert_int_equal(fe->encode_answer(&t->call, &none, &out), SL_EPARSE);
    sl_buf_free(&out);
}


/*
 * Reasoning becomes a thinking block before the text, its text and
 * signature the provider's literals byte for byte; tool input is the
 * arguments' object ({} for arguments that do not hold one); a stop
 * sequence is told apart from a natural end.
 */
static void
test_answer_thinking(void **state)
{
    static const char thinking[] = "\"Let me think: 2\\u00b2 = 4.\\n\\\"Sure\\\" \\/ \xc3\xa9\"";
    static const char signature[] = "\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/=\"";
    test_ctx_t *t = *state;
    sl_tool_call_t tools[2];
    sl_choice_t c;
    sl_answer_t a;
    sl_buf_t out = SL_BUF_INIT;
    json_t *got;
    json_t *want;

    memset(tools, 0, sizeof(tools));
    tools[0].id = lit("\"toolu_1\"");
    tools[0].name = lit("\"get_weather\"");
    tools[0].args = lit("\"{\\\"location\\\":\\\"Paris\\\",\\\"days\\\":[1,2]}\"");
    tools[1].id = lit("\"toolu_2\"");
    tools[1].name = lit("\"noop\"");
    tools[1].args = lit("\"{\\\"cut\\\":\"");
    memset(&c, 0, sizeof(c));
    c.text = lit("\"4\"");
    c.reasoning = lit(thinking);
    c.signature = lit(signature);
    c.tools = tools;
    c.ntools = 2;
    c.finish = SL_FINISH_STOP_SEQUENCE;
    memset(&a, 0, sizeof(a));
    a.id = lit("\"msg_01\"");
    a.model = lit("\"claude-sonnet-4-5\"");
    a.choices = &c;
    a.nchoices = 1;
    a.usage.known = true;
    a.usage.prompt_tokens = 10;
    a.usage.completion_tokens = 20;
    a.usage.reasoning_tokens = 15;

    assert_int_equal(messages()->encode_answer(&t->call, &a, &out), 0);
    sl_buf_append(&out, "", 1);
    assert_non_null(strstr(out.p, "{\"type\":\"thinking\",\"thinking\":" /* byte-identical */));
    assert_non_null(strstr(out.p, thinking));
    assert_non_null(strstr(out.p, signature));
    got = json_loadb(out.p, out.len - 1, 0, NULL);
    assert_non_null(got);
    want = json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:s},{s:s,s:s},{s:s,s:s,s:s,s:{s:s,s:[i,i]}},"
                     "{s:s,s:s,s:s,s:{}}],s:s,s:n,s:{s:i,s:i}}",
                     "id", "msg_01", "type", "message", "role", "assistant", "model",
                     "claude-sonnet-4-5", "content", "type", "thinking", "thinking",
                     "Let me think: 2\xc2\xb2 = 4.\n\"Sure\" / \xc3\xa9", "signature",
                     "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/=", "type", "text",
                     "text", "4", "type", "tool_use", "id", "toolu_1", "name", "get_weather",
                     "input", "location", "Paris", "days", 1, 2, "type", "tool_use", "id",
                     "toolu_2", "name", "noop", "input", "stop_reason", "stop_sequence",
                     "stop_sequence", "usage", "input_tokens", 10, "output_tokens", 20);
    assert_non_null(want);
    assert_json_equal(got, want, "thinking answer");
    json_decref(got);
    json_decref(want);
    sl_buf_free(&out);
}


/* Cache reads and writes are not input_tokens; writes are split by time to live. */
static void
test_answer_cache_1h(void **state)
{
    test_ctx_t *t = *state;
    sl_choice_t c;
    sl_answer_t a;
    sl_buf_t out = SL_BUF_INIT;
    json_t *got;
    json_t *want;

    memset(&c, 0, sizeof(c));
    c.text = lit("\"ok\"");
    c.finish = SL_FINISH_PAUSE;
    memset(&a, 0, sizeof(a));
    a.choices = &c;
    a.nchoices = 1;
    a.usage.known = true;
    a.usage.prompt_tokens = 2000;
    a.usage.cached_tokens = 1000;
    a.usage.cache_write_tokens = 900;
    a.usage.cache_write_1h_tokens = 600;
    a.usage.completion_tokens = 5;

    assert_int_equal(messages()->encode_answer(&t->call, &a, &out), 0);
    got = json_loadb(out.p, out.len, 0, NULL);
    assert_non_null(got);
    /* no id or model from the provider: the request's id and the target's model */
    want =
        json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:s,s:n,s:{s:i,s:i,s:i,s:{s:i,s:i},s:i}}", "id",
                  "msg_req-test", "type", "message", "role", "assistant", "model", "claude-test",
                  "content", "type", "text", "text", "ok", "stop_reason", "pause_turn",
                  "stop_sequence", "usage", "input_tokens", 100, "cache_creation_input_tokens", 900,
                  "cache_read_input_tokens", 1000, "cache_creation", "ephemeral_5m_input_tokens",
                  300, "ephemeral_1h_input_tokens", 600, "output_tokens", 5);
    assert_non_null(want);
    assert_json_equal(got, want, "1h cache answer");
    json_decref(got);
    json_decref(want);
    sl_buf_free(&out);
}


/* An Anthropic target's own body goes back as it is; another API's raw does not. */
static void
test_answer_raw(void **state)
{
    static const char raw[] = "{\"id\":\"msg_1\",\"type\":\"message\" , \"content\":[]}";
    test_ctx_t *t = *state;
    sl_choice_t c;
    sl_answer_t a;
    sl_buf_t out = SL_BUF_INIT;

    memset(&c, 0, sizeof(c));
    c.text = lit("\"typed\"");
    memset(&a, 0, sizeof(a));
    a.choices = &c;
    a.nchoices = 1;
    a.raw = lit(raw);
    a.raw_api = SL_API_MESSAGES;
    assert_int_equal(messages()->encode_answer(&t->call, &a, &out), 0);
    assert_int_equal(out.len, strlen(raw));
    assert_memory_equal(out.p, raw, out.len);

    sl_buf_clear(&out);
    a.raw = lit("{\"object\":\"chat.completion\"}");
    a.raw_api = SL_API_CHAT;
    assert_int_equal(messages()->encode_answer(&t->call, &a, &out), 0);
    sl_buf_append(&out, "", 1);
    assert_null(strstr(out.p, "chat.completion"));
    assert_non_null(strstr(out.p, "\"text\":\"typed\""));
    sl_buf_free(&out);
}


static void
test_streams(void **state)
{
    static const char *const cases[] = {
        "client_stream_text.events.json",
        "client_stream_tool_use.events.json",
        "client_stream_error.events.json",
    };
    static const size_t steps[] = { 0, 1, 7 };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *want = fixture_json(cases[i]);
        json_t *u = json_object_get(want, "usage");
        size_t len;
        const char *sse = fixture(t->pool, json_string_value(json_object_get(want, "input")), &len);

        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            sl_stream_t st;
            test_feed_t f;
            sl_sse_parser_t p;
            json_t *got;
            char what[160];

            call_init(t);
            t->call.stream = true;
            t->call.client_wants_usage = true;
            memset(&st, 0, sizeof(st));
            st.call = &t->call;
            memset(&f, 0, sizeof(f));
            f.fe = messages();
            f.ops = openai();
            f.st = &st;
            f.evs.pool = t->pool;
            f.state = f.fe->stream_open(&t->call);
            f.out = SL_BUF_INIT;
            sl_sse_init(&p, 0);
            for (size_t off = 0; off < len;) {
                size_t n = steps[k] == 0 || steps[k] > len - off ? len - off : steps[k];

                assert_int_equal(sl_sse_feed(&p, sse + off, n, feed_on_event, &f), 0);
                off += n;
            }
            sl_sse_free(&p);
            snprintf(what, sizeof(what), "%s (step %zu)", cases[i], steps[k]);
            /* the usage the adapter reported is what the driver ends the stream with */
            assert_int_equal(st.usage.prompt_tokens,
                             json_integer_value(json_object_get(u, "prompt_tokens")));
            assert_int_equal(st.usage.completion_tokens,
                             json_integer_value(json_object_get(u, "completion_tokens")));
            assert_int_equal(st.usage.cached_tokens,
                             json_integer_value(json_object_get(u, "cached_tokens")));
            if (!st.failed) {
                assert_true(st.done);
                assert_int_equal(f.fe->encode_end(f.state, &st.usage, &f.out), 0);
            }
            got = events_json(f.out.p, f.out.len);
            assert_json_equal(got, json_object_get(want, "events"), what);
            json_decref(got);
            sl_buf_free(&f.out);
        }
        json_decref(want);
    }
}


/* A stream with no event at all still makes a whole message (ids from the request). */
static void
test_stream_empty(void **state)
{
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();
    void *s = fe->stream_open(&t->call);
    sl_usage_t u;
    sl_buf_t b = SL_BUF_INIT;
    json_t *got;
    json_t *want;

    memset(&u, 0, sizeof(u));
    u.prompt_tokens = 2;
    u.estimated = true;
    assert_int_equal(fe->encode_end(s, &u, &b), 0);
    assert_int_equal(fe->encode_end(s, &u, &b), 0); /* once only */
    got = events_json(b.p, b.len);
    want = json_loads(
        "[{\"type\":\"message_start\",\"message\":{\"id\":\"msg_req-test\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"claude-test\",\"content\":[],\"stop_reason\":null,"
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":2,\"output_tokens\":0}}},"
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":"
        "null},\"usage\":{\"input_tokens\":2,\"output_tokens\":0}},{\"type\":\"message_stop\"}]",
        0, NULL);
    assert_non_null(want);
    assert_json_equal(got, want, "empty stream");
    json_decref(got);
    json_decref(want);
    sl_buf_free(&b);
}


/*
 * What only Anthropic's API takes (server tools, documents by URL, other
 * block types, mcp_servers) decodes fine, for an Anthropic target only:
 * call->untranslatable names it.
 */
static void
test_request_anthropic_only(void **state)
{
    static const struct {
        const char *body;
        const char *why;
    } cases[] = {
        { "{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\","
          "\"name\":\"web_search\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "web_search_20250305" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"stream\":true,\"messages\":[{\"role\":\"user\","
          "\"content\":[{\"type\":\"document\",\"source\":{\"type\":\"url\",\"url\":"
          "\"https://x/y.pdf\"}}]}]}",
          "url" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"search_result\",\"source\":\"s\",\"title\":\"t\",\"content\":[]}]}]}",
          "search_result" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"mcp_servers\":[{\"type\":\"url\"}],\"messages\":"
          "[{\"role\":\"user\",\"content\":\"x\"}]}",
          "mcp_servers" },
    };
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_error_t err;

        call_init(t);
        assert_int_equal(fe->decode(&t->call, lit(cases[i].body), &err), 0);
        if (t->call.untranslatable == NULL
            || strstr(t->call.untranslatable, cases[i].why) == NULL) {
            fail_msg("case %zu: untranslatable \"%s\", want \"%s\" in it", i,
                     t->call.untranslatable != NULL ? t->call.untranslatable : "(null)",
                     cases[i].why);
        }
        assert_int_equal(t->call.native.len, strlen(cases[i].body));
    }
    call_init(t);
    assert_int_equal(fe->decode(&t->call, lit(cases[1].body), NULL), 0);
    assert_true(t->call.stream);
    assert_int_equal(t->call.max_tokens, 5);
}


/* output_config, documents with data: mapped for every target. */
static void
test_request_mapped(void **state)
{
    static const char body[] =
        "{\"model\":\"m\",\"max_tokens\":5,\"output_config\":{\"effort\":\"high\",\"format\":"
        "{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\"}}},\"messages\":[{\"role\":"
        "\"user\",\"content\":[{\"type\":\"document\",\"title\":\"a.pdf\",\"source\":{\"type\":"
        "\"base64\",\"media_type\":\"application/pdf\",\"data\":\"JVBER\"}},{\"type\":\"document\","
        "\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"plain\"}}]}]}";
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();
    json_t *got;
    json_t *want;
    sl_error_t err;

    assert_int_equal(fe->decode(&t->call, lit(body), &err), 0);
    assert_null(t->call.untranslatable);
    got = json_loads(t->call.raw.p, 0, NULL);
    want = json_loads(
        "{\"model\":\"m\",\"max_tokens\":5,\"reasoning_effort\":\"high\",\"response_format\":"
        "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"output\",\"schema\":{\"type\":"
        "\"object\"},\"strict\":true}},\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
        "\"file\",\"file\":{\"file_data\":\"data:application/pdf;base64,JVBER\",\"filename\":"
        "\"a.pdf\"}},{\"type\":\"text\",\"text\":\"plain\"}]}]}",
        0, NULL);
    assert_non_null(want);
    assert_json_equal(got, want, "mapped request");
    json_decref(got);
    json_decref(want);
}


/*
 * Typed reasoning -> a thinking block (thinking_delta, signature_delta)
 * before the text block, literals byte-identical; message_start carries the
 * usage that came with the head (input without cache reads and writes).
 */
static void
test_stream_thinking(void **state)
{
    static const char piece[] = "\"2\\u00b2 is \\\"4\\\"\\n\"";
    static const char signature[] = "\"EqQBCgIYAhIM+/=\\u002b\"";
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();
    void *s;
    sl_evs_t evs = { .pool = t->pool };
    sl_usage_t head;
    sl_usage_t final;
    sl_ev_t ev;
    sl_buf_t b = SL_BUF_INIT;
    json_t *got;
    json_t *want;

    t->call.stream = true;
    s = fe->stream_open(&t->call);
    memset(&head, 0, sizeof(head));
    head.known = true;
    head.prompt_tokens = 1500;
    head.cached_tokens = 1000;
    head.cache_write_tokens = 400;
    head.cache_write_1h_tokens = 400;
    final = head;
    final.completion_tokens = 42;
    final.reasoning_tokens = 30;

    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_START;
    ev.id = lit("\"msg_th\"");
    ev.name = lit("\"claude-opus-4\"");
    sl_evs_push(&evs, &ev);
    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_USAGE;
    ev.usage = &head;
    sl_evs_push(&evs, &ev);
    assert_int_equal(fe->encode_events(s, &evs, &b), 0);

    sl_evs_reset(&evs);
    push(&evs, SL_EV_REASONING, "\"Let me see. \"");
    push(&evs, SL_EV_REASONING, piece);
    assert_int_equal(fe->encode_events(s, &evs, &b), 0);
    sl_evs_reset(&evs);
    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_REASONING;
    ev.signature = lit(signature);
    sl_evs_push(&evs, &ev);
    push(&evs, SL_EV_TEXT, "\"4\"");
    push(&evs, SL_EV_TEXT, "\"\"");
    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_FINISH;
    ev.finish = SL_FINISH_STOP_SEQUENCE;
    sl_evs_push(&evs, &ev);
    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_USAGE;
    ev.usage = &final;
    sl_evs_push(&evs, &ev);
    assert_int_equal(fe->encode_events(s, &evs, &b), 0);
    assert_int_equal(fe->encode_end(s, &final, &b), 0);

    sl_buf_append(&b, "", 1);
    assert_non_null(strstr(b.p, "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"2\\u00b2 is "
                                "\\\"4\\\"\\n\"}}"));
    assert_non_null(strstr(b.p, "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAh"
                                "IM+/=\\u002b\"}}"));
    got = events_json(b.p, b.len - 1);
    want = json_loads(
        "["
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_th\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"claude-opus-4\",\"content\":[],\"stop_reason\":null,"
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,\"cache_creation_input_tokens\":"
        "400,\"cache_read_input_tokens\":1000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":"
        "0,\"ephemeral_1h_input_tokens\":400},\"output_tokens\":0}}},"
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
        "\"thinking\":\"\",\"signature\":\"\"}},"
        "{\"type\":\"ping\"},"
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"Let me see. \"}},"
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"2\\u00b2 is \\\"4\\\"\\n\"}},"
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
        "\"signature\":\"EqQBCgIYAhIM+/=+\"}},"
        "{\"type\":\"content_block_stop\",\"index\":0},"
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}},"
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"4\"}},"
        "{\"type\":\"content_block_stop\",\"index\":1},"
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\","
        "\"stop_sequence\":null},\"usage\":{\"input_tokens\":100,\"cache_creation_input_tokens\":"
        "400,\"cache_read_input_tokens\":1000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":"
        "0,\"ephemeral_1h_input_tokens\":400},\"output_tokens\":42}},"
        "{\"type\":\"message_stop\"}"
        "]",
        0, NULL);
    assert_non_null(want);
    assert_json_equal(got, want, "thinking stream");
    json_decref(got);
    json_decref(want);
    sl_buf_free(&b);
}


/*
 * An Anthropic target's events go out as they are; the adapter does not
 * pass message_stop, and encode_end writes it once (no message_delta of
 * ours after the provider's).
 */
static void
test_stream_raw(void **state)
{
    static const char *const raw[] = {
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_r\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],"
        "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,"
        "\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n",
    };
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();
    void *s;
    sl_evs_t evs = { .pool = t->pool };
    sl_usage_t u;
    sl_ev_t ev;
    sl_buf_t b = SL_BUF_INIT;
    sl_buf_t want = SL_BUF_INIT;
    json_t *got;

    t->call.stream = true;
    s = fe->stream_open(&t->call);
    memset(&u, 0, sizeof(u));
    u.known = true;
    u.prompt_tokens = 9;
    u.completion_tokens = 3;
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        sl_evs_reset(&evs);
        memset(&ev, 0, sizeof(ev));
        switch (i) {
        case 0:
            ev.type = SL_EV_START;
            ev.id = lit("\"msg_r\"");
            ev.name = lit("\"claude-haiku-4-5\"");
            sl_evs_push(&evs, &ev);
            break;
        case 3:
            push(&evs, SL_EV_TEXT, "\"Hi\"");
            break;
        case 5:
            ev.type = SL_EV_FINISH;
            ev.finish = SL_FINISH_STOP;
            sl_evs_push(&evs, &ev);
            memset(&ev, 0, sizeof(ev));
            ev.type = SL_EV_USAGE;
            ev.usage = &u;
            sl_evs_push(&evs, &ev);
            break;
        default:
            break;
        }
        evs.raw = lit(raw[i]);
        evs.raw_api = SL_API_MESSAGES;
        assert_int_equal(fe->encode_events(s, &evs, &b), 0);
        sl_buf_puts(&want, raw[i]);
    }
    /* the provider's message_stop: typed only */
    sl_evs_reset(&evs);
    push(&evs, SL_EV_DONE, NULL);
    assert_int_equal(fe->encode_events(s, &evs, &b), 0);
    /* a raw event the client does not get (len 0) */
    sl_evs_reset(&evs);
    push(&evs, SL_EV_USAGE, NULL);
    evs.raw = (sl_str_t){ "", 0 };
    evs.raw_api = SL_API_MESSAGES;
    assert_int_equal(fe->encode_events(s, &evs, &b), 0);
    assert_int_equal(b.len, want.len);
    assert_memory_equal(b.p, want.p, b.len);

    assert_int_equal(fe->encode_end(s, &u, &b), 0);
    sl_buf_puts(&want, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    assert_int_equal(b.len, want.len);
    assert_memory_equal(b.p, want.p, b.len);
    assert_int_equal(count(b.p, b.len, "message_stop"), 2); /* name and type of one event */
    assert_int_equal(count(b.p, b.len, "message_delta"), 2);
    got = events_json(b.p, b.len);
    assert_int_equal(json_array_size(got), 7);
    json_decref(got);
    sl_buf_free(&b);
    sl_buf_free(&want);
}


/*
 * A provider's stream that ended without a stop reason (no message_delta
 * came raw) still ends as a message: message_delta, then message_stop.
 */
static void
test_stream_raw_without_finish(void **state)
{
    static const char start[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_r\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],"
        "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,"
        "\"output_tokens\":1}}}\n\n";
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();
    void *s = fe->stream_open(&t->call);
    sl_evs_t evs = { .pool = t->pool };
    sl_usage_t u;
    sl_buf_t b = SL_BUF_INIT;
    json_t *got;

    memset(&u, 0, sizeof(u));
    u.prompt_tokens = 9;
    u.completion_tokens = 1;
    push(&evs, SL_EV_START, NULL);
    evs.raw = lit(start);
    evs.raw_api = SL_API_MESSAGES;
    assert_int_equal(fe->encode_events(s, &evs, &b), 0);
    assert_int_equal(fe->encode_end(s, &u, &b), 0);
    got = events_json(b.p, b.len);
    assert_int_equal(json_array_size(got), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 1), "type")),
                        "message_delta");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(got, 1), "usage"), "output_tokens")),
                     1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 2), "type")),
                        "message_stop");
    json_decref(got);
    sl_buf_free(&b);
}


/*
 * A failure after output: Anthropic's error event (types mapped from the
 * error's code or type), then nothing; no message_stop ever.
 */
static void
test_stream_error_after_content(void **state)
{
    static const struct {
        const char *type;
        const char *code;
        const char *message;
        const char *want_type;
        const char *want_message;
    } cases[] = {
        { "api_error", "upstream_stream_interrupted", "the stream was interrupted", "api_error",
          "the stream was interrupted" },
        { "api_error", "overloaded_error", "Overloaded", "overloaded_error", "Overloaded" },
        { "rate_limit_error", NULL, "slow down", "rate_limit_error", "slow down" },
        { "server_error", "boom", NULL, "api_error",
          "the provider reported an error in the stream" },
        { NULL, NULL, "bad \xff byte", "api_error", "error" },
    };
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        void *s;
        sl_evs_t evs = { .pool = t->pool };
        sl_error_t e;
        sl_buf_t b = SL_BUF_INIT;
        json_t *got;
        json_t *last;

        call_init(t);
        s = fe->stream_open(&t->call);
        push(&evs, SL_EV_START, NULL);
        push(&evs, SL_EV_TEXT, "\"Par\"");
        assert_int_equal(fe->encode_events(s, &evs, &b), 0);
        memset(&e, 0, sizeof(e));
        e.status = 502;
        e.type = cases[i].type;
        e.code = cases[i].code;
        e.message = cases[i].message;
        assert_int_equal(fe->encode_stream_error(s, &e, &b), 0);
        /* nothing after the error, whatever comes */
        assert_int_equal(fe->encode_events(s, &evs, &b), 0);
        assert_int_equal(fe->encode_end(s, NULL, &b), 0);
        assert_int_equal(count(b.p, b.len, "message_stop"), 0);
        assert_int_equal(count(b.p, b.len, "message_delta"), 0);
        got = events_json(b.p, b.len);
        /* message_start, block start, ping, delta, error: the block stays open */
        assert_int_equal(json_array_size(got), 5);
        last = json_array_get(got, 4);
        assert_string_equal(json_string_value(json_object_get(last, "type")), "error");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(last, "error"), "type")),
            cases[i].want_type);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(last, "error"), "message")),
            cases[i].want_message);
        json_decref(got);
        sl_buf_free(&b);
    }
}


/*
 * An Anthropic target's answer to a Messages client: the provider's body,
 * byte for byte. Its typed answer, encoded, keeps the signature's literal
 * (an escaped '/') and the usage with cache writes by time to live.
 */
static void
test_native_answer(void **state)
{
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = sl_provider_find("anthropic");
    sl_buf_t body = SL_BUF_INIT;
    sl_buf_t out = SL_BUF_INIT;
    sl_answer_t a;
    json_t *got;
    json_t *want;
    size_t len;
    char *raw;

    assert_non_null(ops);
    assert_int_equal(ops->api, SL_API_MESSAGES);
    raw = fixture(t->pool, "resp_thinking.in.json", &len);
    sl_buf_append(&body, raw, len);
    memset(&a, 0, sizeof(a));
    assert_int_equal(ops->parse_response(NULL, &t->call, &body, &a), 0);
    assert_int_equal(a.raw_api, SL_API_MESSAGES);
    assert_int_equal(messages()->encode_answer(&t->call, &a, &out), 0);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.p, raw, len);

    sl_buf_clear(&out);
    a.raw = sl_str_null;
    assert_int_equal(messages()->encode_answer(&t->call, &a, &out), 0);
    sl_buf_append(&out, "", 1);
    assert_non_null(
        strstr(out.p, "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDEtw+JhsjAtbA\\/0IiMA==\""));
    got = json_loadb(out.p, out.len - 1, 0, NULL);
    assert_non_null(got);
    want = json_loads(
        "{\"id\":\"msg_t1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
        "\"claude-sonnet-4-5\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me think "
        "about \\\"this\\\".\",\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDEtw+JhsjAtbA/0IiMA=="
        "\"},{\"type\":\"text\",\"text\":\"The answer is 4.\"}],\"stop_reason\":\"end_turn\","
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":50,\"cache_creation_input_tokens\":"
        "2000,\"cache_read_input_tokens\":100,\"cache_creation\":{\"ephemeral_5m_input_tokens\":"
        "500,\"ephemeral_1h_input_tokens\":1500},\"output_tokens\":120}}",
        0, NULL);
    assert_non_null(want);
    assert_json_equal(got, want, "typed Anthropic answer");
    json_decref(got);
    json_decref(want);
    sl_buf_free(&out);
    sl_buf_free(&body);
}


/* fixtures/anthropic/stream_thinking.sse through the Anthropic adapter and the frontend. */
static void
run_anthropic(test_ctx_t *t, sl_api_e client_api, size_t step, sl_buf_t *out)
{
    size_t len;
    const char *sse = fixture(t->pool, "stream_thinking.sse", &len);
    sl_stream_t st;
    test_feed_t f;
    sl_sse_parser_t p;

    call_init(t);
    t->call.client_api = client_api;
    t->call.stream = true;
    memset(&st, 0, sizeof(st));
    st.call = &t->call;
    memset(&f, 0, sizeof(f));
    f.fe = messages();
    f.ops = sl_provider_find("anthropic");
    assert_non_null(f.ops);
    f.st = &st;
    f.evs.pool = t->pool;
    f.state = f.fe->stream_open(&t->call);
    f.out = SL_BUF_INIT;
    sl_sse_init(&p, 0);
    for (size_t off = 0; off < len;) {
        size_t n = step == 0 || step > len - off ? len - off : step;

        assert_int_equal(sl_sse_feed(&p, sse + off, n, feed_on_event, &f), 0);
        off += n;
    }
    sl_sse_free(&p);
    assert_true(st.done);
    assert_false(st.failed);
    assert_int_equal(f.fe->encode_end(f.state, &st.usage, &f.out), 0);
    *out = f.out;
}


/*
 * A Messages client in front of an Anthropic target gets the provider's
 * stream byte for byte: the adapter passes every event but message_stop,
 * which encode_end writes, once.
 */
static void
test_native_stream(void **state)
{
    static const size_t steps[] = { 0, 1, 7 };
    test_ctx_t *t = *state;
    size_t len;
    const char *sse = fixture(t->pool, "stream_thinking.sse", &len);

    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        sl_buf_t out;

        run_anthropic(t, SL_API_MESSAGES, steps[k], &out);
        if (out.len != len || memcmp(out.p, sse, len) != 0) {
            fail_msg("step %zu: got\n%.*s\nwant\n%s", steps[k], (int) out.len, out.p, sse);
        }
        assert_int_equal(count(out.p, out.len, "event: message_stop\n"), 1);
        sl_buf_free(&out);
    }
}


/*
 * The same stream as typed events (what any adapter gives): thinking and
 * signature deltas with the provider's literals (the signature's escaped
 * '/' kept), the redacted block left out, pause_turn, and message_start
 * with the input tokens Anthropic reported in its own message_start.
 */
static void
test_anthropic_typed_stream(void **state)
{
    test_ctx_t *t = *state;
    sl_buf_t out;
    json_t *got;
    json_t *want;

    run_anthropic(t, SL_API_CHAT, 0, &out);
    sl_buf_append(&out, "", 1);
    assert_non_null(strstr(out.p, "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h\\/GgxDEtw==\"}}"));
    got = events_json(out.p, out.len - 1);
    want = json_loads(
        "["
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_t2\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":"
        "null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,"
        "\"cache_creation_input_tokens\":1000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":"
        "0,\"ephemeral_1h_input_tokens\":1000},\"output_tokens\":0}}},"
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
        "\"thinking\":\"\",\"signature\":\"\"}},"
        "{\"type\":\"ping\"},"
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"Two plus\"}},"
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\" two.\"}},"
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
        "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h/GgxDEtw==\"}},"
        "{\"type\":\"content_block_stop\",\"index\":0},"
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}},"
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"4\"}},"
        "{\"type\":\"content_block_stop\",\"index\":1},"
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"pause_turn\",\"stop_sequence\":"
        "null},\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":1000,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":1000},"
        "\"output_tokens\":30}},"
        "{\"type\":\"message_stop\"}"
        "]",
        0, NULL);
    assert_non_null(want);
    assert_json_equal(got, want, "typed Anthropic stream");
    json_decref(got);
    json_decref(want);
    sl_buf_free(&out);
}


static void
test_error(void **state)
{
    static const struct {
        int status;
        const char *type;
    } cases[] = {
        { 400, "invalid_request_error" },
        { 401, "authentication_error" },
        { 403, "permission_error" },
        { 404, "not_found_error" },
        { 408, "invalid_request_error" },
        { 413, "request_too_large" },
        { 429, "rate_limit_error" },
        { 500, "api_error" },
        { 502, "api_error" },
        { 503, "overloaded_error" },
        { 504, "api_error" },
        { 529, "overloaded_error" },
    };
    test_ctx_t *t = *state;
    const sl_frontend_t *fe = messages();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_error_t e;
        sl_str_t out;
        json_t *got;

        memset(&e, 0, sizeof(e));
        e.status = cases[i].status;
        e.type = "invalid_request_error";
        e.code = "some_code";
        e.message = i == 0 ? "bad \xc3 byte" : "the \"message\" stays";
        assert_int_equal(fe->encode_error(t->pool, &e, &out), 0);
        assert_int_equal(out.p[out.len], '\0');
        got = json_loadb(out.p, out.len, 0, NULL);
        assert_non_null(got);
        assert_int_equal(json_object_size(got), 2);
        assert_string_equal(json_string_value(json_object_get(got, "type")), "error");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(got, "error"), "type")),
            cases[i].type);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(got, "error"), "message")),
            i == 0 ? "error" : "the \"message\" stays");
        json_decref(got);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_native, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_anthropic_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_mapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_thinking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_cache_1h, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_thinking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw_without_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_after_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anthropic_typed_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
