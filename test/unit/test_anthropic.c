/*
 * Unit tests for providers/anthropic.c against golden fixtures in
 * test/unit/fixtures/anthropic/ (found through SL_TEST_SRCDIR, which meson
 * sets to test/): OpenAI requests in -> Anthropic requests out, Anthropic
 * answers in -> OpenAI answers out, recorded Anthropic event streams in ->
 * OpenAI chunk sequences out (fed whole and byte by byte). JSON is compared
 * semantically with json_equal() once `created` is normalised to 0. Also
 * the headers and path, requests the adapter must refuse, and map_error.
 *
 * The inbound hooks (POST /v1/messages) have their own client_* fixtures:
 * Anthropic requests in -> OpenAI requests out, OpenAI answers in ->
 * Anthropic messages out, OpenAI chunk streams in -> Anthropic event
 * sequences out (event names checked against each data's type), and the
 * error bodies by status.
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

#include "core/errno.h"
#include "core/pool.h"
#include "core/sse.h"
#include "providers/provider.h"
#include "providers/registry.h"

#define API_KEY "sk-ant-test-secret-0123456789"

typedef struct test_ctx {
    sl_pool_t *pool;
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
} test_ctx_t;

typedef struct test_feed {
    const sl_provider_ops_t *ops;
    sl_stream_t *st;
    sl_buf_t out;
} test_feed_t;

static int setup(void **state);
static int teardown(void **state);
static const sl_provider_ops_t *anthropic(void);
static char *fixture(sl_pool_t *pool, const char *name, size_t *len);
static json_t *fixture_json(const char *name);
static void call_init(test_ctx_t *t, const char *raw, size_t len);
static void assert_json_equal(json_t *got, json_t *want, const char *what);
static void normalise_created(json_t *v);
static int feed_on_event(void *data, const sl_sse_event_t *ev);
static json_t *run_stream(test_ctx_t *t, const char *sse, size_t len, bool wants_usage, size_t step,
                          sl_stream_t *st);
static void test_registry(void **state);
static void test_requests(void **state);
static void test_headers(void **state);
static void test_request_errors(void **state);
static void test_responses(void **state);
static void test_response_invalid(void **state);
static void test_streams(void **state);
static void test_stream_without_start(void **state);
static void test_map_error(void **state);
static json_t *client_events(sl_buf_t *out);
static int client_feed_on_event(void *data, const sl_sse_event_t *ev);
static void test_client_requests(void **state);
static void test_client_request_errors(void **state);
static void test_client_responses(void **state);
static void test_client_streams(void **state);
static void test_client_stream_empty(void **state);
static void test_client_error(void **state);


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


static void
call_init(test_ctx_t *t, const char *raw, size_t len)
{
    memset(&t->call, 0, sizeof(t->call));
    t->call.pool = t->pool;
    t->call.endpoint = SL_ENDPOINT_CHAT;
    t->call.raw = (sl_str_t){ raw, len };
    t->call.model = -1;
    t->call.stream_options = -1;
    t->call.target = &t->target;
    t->call.request_id = "req-test";
    if (sl_call_json(&t->call) != NULL) {
        t->call.stream = json_is_true(json_object_get(t->call.body, "stream"));
    }
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


/* Checks that `created` is a plausible time and sets it to 0. */
static void
normalise_created(json_t *v)
{
    json_t *c = json_object_get(v, "created");
    json_int_t now = (json_int_t) time(NULL);

    if (c == NULL) {
        return;
    }
    assert_true(json_is_integer(c));
    assert_true(json_integer_value(c) >= now - 60 && json_integer_value(c) <= now + 60);
    json_object_set_new(v, "created", json_integer(0));
}


static void
test_registry(void **state)
{
    const sl_provider_ops_t *ops = anthropic();

    (void) state;
    assert_string_equal(ops->kind, "anthropic");
    assert_non_null(ops->build_request);
    assert_non_null(ops->parse_response);
    assert_non_null(ops->stream_event);
    assert_non_null(ops->map_error);
    assert_non_null(ops->client_request);
    assert_non_null(ops->client_response);
    assert_non_null(ops->client_stream_event);
    assert_non_null(ops->client_error);
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
        json_t *want;
        size_t len;
        char *raw;
        int rc;

        snprintf(name, sizeof(name), "%s.in.json", cases[i]);
        raw = fixture(t->pool, name, &len);
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
        want = fixture_json(name);
        assert_json_equal(got, want, cases[i]);
        json_decref(got);
        json_decref(want);
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

    /* no key configured: no x-api-key */
    t->prov.api_key.value = NULL;
    call_init(t, raw, sizeof(raw) - 1);
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
    t->call.endpoint = SL_ENDPOINT_EMBEDDINGS;
    assert_int_equal(ops->build_request(NULL, &t->call, &req), SL_EDENIED);
}


static void
test_responses(void **state)
{
    static const char *const cases[] = {
        "resp_text",     "resp_max_tokens", "resp_stop_sequence",
        "resp_tool_use", "resp_cache",      "resp_refusal",
    };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        sl_reply_t reply;
        sl_buf_t body;
        json_t *got;
        json_t *want;
        json_t *u;
        size_t len;

        snprintf(name, sizeof(name), "%s.in.json", cases[i]);
        body.p = fixture(t->pool, name, &len);
        body.len = len;
        body.cap = len;
        call_init(t, "{}", 2);
        memset(&reply, 0, sizeof(reply));
        assert_int_equal(ops->parse_response(NULL, &t->call, &body, &reply), 0);
        got = json_loadb(reply.body, reply.body_len, 0, NULL);
        assert_non_null(got);
        normalise_created(got);
        snprintf(name, sizeof(name), "%s.out.json", cases[i]);
        want = fixture_json(name);
        assert_json_equal(got, want, cases[i]);

        u = json_object_get(want, "usage");
        assert_true(reply.usage.known);
        assert_int_equal(reply.usage.prompt_tokens,
                         json_integer_value(json_object_get(u, "prompt_tokens")));
        assert_int_equal(reply.usage.completion_tokens,
                         json_integer_value(json_object_get(u, "completion_tokens")));
        assert_int_equal(reply.usage.cached_tokens,
                         json_integer_value(json_object_get(
                             json_object_get(u, "prompt_tokens_details"), "cached_tokens")));
        assert_non_null(reply.served_model);
        assert_string_equal(reply.served_model, json_string_value(json_object_get(want, "model")));
        if (strcmp(cases[i], "resp_cache") == 0) {
            assert_int_equal(reply.usage.cached_tokens, 1000);
            assert_int_equal(reply.usage.cache_write_tokens, 300);
        }
        json_decref(got);
        json_decref(want);
    }
}


static void
test_response_invalid(void **state)
{
    static const char *const bad[] = { "", "not json", "[1]", "\"msg\"" };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_buf_t body = { (char *) bad[i], strlen(bad[i]), strlen(bad[i]) };
        sl_reply_t reply;

        call_init(t, "{}", 2);
        memset(&reply, 0, sizeof(reply));
        assert_int_equal(ops->parse_response(NULL, &t->call, &body, &reply), SL_EUPSTREAM);
    }
}


static int
feed_on_event(void *data, const sl_sse_event_t *ev)
{
    test_feed_t *f = data;
    sl_chunks_t out = { &f->out };

    if (f->st->done) {
        return 0; /* as the core does */
    }
    return f->ops->stream_event(NULL, f->st, ev, &out);
}


/*
 * Feeds sse in steps of step bytes (0: at once) and returns the client
 * events as a JSON array of their data, created normalised.
 */
static json_t *
run_stream(test_ctx_t *t, const char *sse, size_t len, bool wants_usage, size_t step,
           sl_stream_t *st)
{
    test_feed_t f;
    sl_sse_parser_t p;
    json_t *chunks = json_array();
    const char *s;
    const char *end;

    call_init(t, "{\"stream\":true}", 15);
    memset(st, 0, sizeof(*st));
    st->call = &t->call;
    st->client_wants_usage = wants_usage;
    f.ops = anthropic();
    f.st = st;
    f.out = SL_BUF_INIT;
    sl_sse_init(&p, 0);
    for (size_t off = 0; off < len;) {
        size_t n = step == 0 || step > len - off ? len - off : step;

        assert_int_equal(sl_sse_feed(&p, sse + off, n, feed_on_event, &f), 0);
        off += n;
    }
    sl_sse_free(&p);

    s = f.out.p;
    end = f.out.p + f.out.len;
    while (s != NULL && s < end) {
        const char *sep = strstr(s, "\n\n");
        json_t *v;

        assert_non_null(sep);
        assert_memory_equal(s, "data: ", 6);
        v = json_loadb(s + 6, (size_t) (sep - s - 6), 0, NULL);
        if (v == NULL) {
            fail_msg("chunk is not JSON: %.*s", (int) (sep - s), s);
        }
        normalise_created(v);
        json_array_append_new(chunks, v);
        s = sep + 2;
    }
    sl_buf_free(&f.out);
    return chunks;
}


static void
test_streams(void **state)
{
    static const char *const cases[] = {
        "stream_text.usage.json",  "stream_text.nousage.json",       "stream_tool_use.usage.json",
        "stream_error.usage.json", "stream_max_tokens.nousage.json",
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
            json_t *got =
                run_stream(t, sse, len, json_is_true(json_object_get(want, "client_wants_usage")),
                           steps[k], &st);

            assert_json_equal(got, json_object_get(want, "chunks"), cases[i]);
            assert_int_equal(st.done, json_is_true(json_object_get(want, "done")));
            assert_true(st.usage.known);
            assert_int_equal(st.usage.prompt_tokens,
                             json_integer_value(json_object_get(u, "prompt_tokens")));
            assert_int_equal(st.usage.completion_tokens,
                             json_integer_value(json_object_get(u, "completion_tokens")));
            assert_int_equal(st.usage.cached_tokens,
                             json_integer_value(json_object_get(u, "cached_tokens")));
            assert_int_equal(st.usage.cache_write_tokens,
                             json_integer_value(json_object_get(u, "cache_write_tokens")));
            assert_int_equal(st.content_bytes,
                             json_integer_value(json_object_get(want, "content_bytes")));
            assert_non_null(st.served_model);
            assert_string_equal(st.served_model, json_string_value(json_object_get(
                                                     json_array_get(got, 0), "model")));
            json_decref(got);
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
    sl_stream_t st;
    json_t *got = run_stream(t, sse, sizeof(sse) - 1, true, 0, &st);

    /* the role chunk and "hi"; no usage chunk, as the provider gave none */
    assert_int_equal(json_array_size(got), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "model")),
                        "claude-test");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(json_array_get(got, 1), "choices"), 0),
                            "delta"),
            "content")),
        "hi");
    assert_true(st.done);
    assert_false(st.usage.known);
    assert_int_equal(st.content_bytes, 2);
    json_decref(got);
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


static void
test_client_requests(void **state)
{
    static const char *const cases[] = {
        "client_req_text",
        "client_req_tools",
        "client_req_tool_choice",
    };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        const char *why = NULL;
        sl_str_t out;
        json_t *got;
        json_t *want;
        size_t len;
        char *raw;
        int rc;

        snprintf(name, sizeof(name), "%s.in.json", cases[i]);
        raw = fixture(t->pool, name, &len);
        rc = ops->client_request(t->pool, (sl_str_t){ raw, len }, &out, &why);
        if (rc != 0) {
            fail_msg("%s: client_request = %d (%s)", cases[i], rc, why != NULL ? why : "-");
        }
        assert_int_equal(out.p[out.len], '\0');
        got = json_loadb(out.p, out.len, 0, NULL);
        assert_non_null(got);
        snprintf(name, sizeof(name), "%s.out.json", cases[i]);
        want = fixture_json(name);
        assert_json_equal(got, want, cases[i]);
        json_decref(got);
        json_decref(want);
    }
}


static void
test_client_request_errors(void **state)
{
    static const struct {
        const char *body;
        const char *why; /* a substring of the message; NULL: not a JSON object */
    } cases[] = {
        { "", NULL },
        { "{not json", NULL },
        { "[1]", NULL },
        { "{\"a\":1,\"a\":2}", NULL },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "max_tokens: Field required" },
        { "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "max_tokens" },
        { "{\"model\":\"m\",\"max_tokens\":5}", "messages: Field required" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", "messages" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
          "role" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":5}]}",
          "content" },
        { "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"document\",\"source\":{}}]}]}",
          "not supported" },
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
        { "{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\","
          "\"name\":\"web_search\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "tools" },
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
    };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = "unset";
        sl_str_t out = sl_str_null;
        int rc = ops->client_request(t->pool, (sl_str_t){ cases[i].body, strlen(cases[i].body) },
                                     &out, &why);

        if (rc != SL_EPARSE) {
            fail_msg("case %zu: client_request = %d, want SL_EPARSE", i, rc);
        }
        if (cases[i].why == NULL) {
            assert_null(why);
        } else if (why == NULL || strstr(why, cases[i].why) == NULL) {
            fail_msg("case %zu: why \"%s\", want \"%s\" in it", i, why != NULL ? why : "(null)",
                     cases[i].why);
        }
    }
}


static void
test_client_responses(void **state)
{
    static const char *const cases[] = {
        "client_resp_text",
        "client_resp_tool_use",
        "client_resp_length",
    };
    static const char *const bad[] = { "", "not json", "[1]", "{\"choices\":[]}" };
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();
    sl_str_t out;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[128];
        json_t *got;
        json_t *want;
        size_t len;
        char *raw;

        snprintf(name, sizeof(name), "%s.in.json", cases[i]);
        raw = fixture(t->pool, name, &len);
        assert_int_equal(ops->client_response(t->pool, (sl_str_t){ raw, len }, &out), 0);
        got = json_loadb(out.p, out.len, 0, NULL);
        assert_non_null(got);
        snprintf(name, sizeof(name), "%s.out.json", cases[i]);
        want = fixture_json(name);
        assert_json_equal(got, want, cases[i]);
        json_decref(got);
        json_decref(want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ops->client_response(t->pool, (sl_str_t){ bad[i], strlen(bad[i]) }, &out),
                         SL_EPARSE);
    }
}


static int
client_feed_on_event(void *data, const sl_sse_event_t *ev)
{
    test_feed_t *f = data;
    sl_chunks_t out = { &f->out };

    return f->ops->client_stream_event(f->st, ev, &out);
}


/*
 * The events in out as a JSON array of their data; each event's name must
 * be its data's type.
 */
static json_t *
client_events(sl_buf_t *out)
{
    json_t *events = json_array();
    const char *s = out->p;
    const char *end = out->p + out->len;

    while (s != NULL && s < end) {
        const char *sep = strstr(s, "\n\n");
        const char *nl;
        json_t *v;

        assert_non_null(sep);
        assert_memory_equal(s, "event: ", 7);
        nl = memchr(s, '\n', (size_t) (sep - s));
        assert_non_null(nl);
        assert_memory_equal(nl + 1, "data: ", 6);
        v = json_loadb(nl + 7, (size_t) (sep - nl - 7), 0, NULL);
        if (v == NULL) {
            fail_msg("event data is not JSON: %.*s", (int) (sep - s), s);
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


static void
test_client_streams(void **state)
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

            call_init(t, "{\"stream\":true}", 15);
            memset(&st, 0, sizeof(st));
            st.call = &t->call;
            st.usage.known = true;
            st.usage.prompt_tokens =
                (uint64_t) json_integer_value(json_object_get(u, "prompt_tokens"));
            st.usage.completion_tokens =
                (uint64_t) json_integer_value(json_object_get(u, "completion_tokens"));
            st.usage.cached_tokens =
                (uint64_t) json_integer_value(json_object_get(u, "cached_tokens"));
            f.ops = anthropic();
            f.st = &st;
            f.out = SL_BUF_INIT;
            sl_sse_init(&p, 0);
            for (size_t off = 0; off < len;) {
                size_t n = steps[k] == 0 || steps[k] > len - off ? len - off : steps[k];

                assert_int_equal(sl_sse_feed(&p, sse + off, n, client_feed_on_event, &f), 0);
                off += n;
            }
            sl_sse_free(&p);
            got = client_events(&f.out);
            snprintf(what, sizeof(what), "%s (step %zu)", cases[i], steps[k]);
            assert_json_equal(got, json_object_get(want, "events"), what);
            json_decref(got);
            sl_buf_free(&f.out);
        }
        json_decref(want);
    }
}


/* A stream with no chunk at all still makes a whole message (ids from the request). */
static void
test_client_stream_empty(void **state)
{
    test_ctx_t *t = *state;
    const sl_provider_ops_t *ops = anthropic();
    sl_sse_event_t done = { sl_str_null, sl_str_lit("[DONE]"), sl_str_null };
    sl_stream_t st;
    sl_buf_t b = SL_BUF_INIT;
    sl_chunks_t out = { &b };
    json_t *got;
    json_t *want;

    call_init(t, "{\"stream\":true}", 15);
    memset(&st, 0, sizeof(st));
    st.call = &t->call;
    st.usage.prompt_tokens = 2;
    st.usage.completion_tokens = 0;
    assert_int_equal(ops->client_stream_event(&st, &done, &out), 0);
    assert_true(st.done);
    assert_int_equal(ops->client_stream_event(&st, &done, &out), 0); /* once only */
    got = client_events(&b);
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


static void
test_client_error(void **state)
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
    const sl_provider_ops_t *ops = anthropic();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_error_t e;
        sl_str_t out;
        json_t *got;

        memset(&e, 0, sizeof(e));
        e.status = cases[i].status;
        e.type = "invalid_request_error";
        e.code = "some_code";
        e.message = "the \"message\" stays";
        assert_int_equal(ops->client_error(cases[i].status, &e, t->pool, &out), 0);
        assert_int_equal(out.p[out.len], '\0');
        got = json_loadb(out.p, out.len, 0, NULL);
        assert_non_null(got);
        assert_string_equal(json_string_value(json_object_get(got, "type")), "error");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(got, "error"), "type")),
            cases[i].type);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(got, "error"), "message")),
            "the \"message\" stays");
        json_decref(got);
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
        cmocka_unit_test_setup_teardown(test_response_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_without_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_request_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_stream_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_error, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
