/*
 * Unit tests for providers/gemini.c against golden fixtures in
 * test/unit/fixtures/gemini/ (found through SL_TEST_SRCDIR): OpenAI
 * requests in -> Gemini requests out (NAME.in.json -> NAME.out.json),
 * Gemini answers in -> the typed answer -> the chat frontend's answer out,
 * recorded Gemini streams in -> typed events -> the chat frontend's chunk
 * list out (a JSON array; fed whole and byte by byte), composed as the
 * driver does (adaptertest.c); thoughts and their signatures, embeddings
 * one and batched, and errors. JSON is compared with json_equal() once
 * `created` is normalised to 0. With SL_TEST_UPDATE_GOLDEN=1 the expected
 * files are rewritten from what the adapter produces (review the diff
 * before committing it).
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

#define API_KEY "AIza-test-secret-0123456789"

typedef struct test_ctx {
    sl_pool_t *pool;
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
} test_ctx_t;

static int setup(void **state);
static int teardown(void **state);
static const sl_provider_ops_t *gemini(void);
static const char *fixture_path(const char *name);
static char *fixture(sl_pool_t *pool, const char *name, size_t *len);
static void call_init(test_ctx_t *t, sl_api_e api, const char *name);
static void check_golden(json_t *got, const char *name);
static void normalise_created(json_t *v);
static json_t *build(test_ctx_t *t, sl_upstream_req_t *req);
static json_t *parse(test_ctx_t *t, const char *name, sl_answer_t *a);
static json_t *run_stream(test_ctx_t *t, const char *name, bool wants_usage, size_t step,
                          sl_stream_t *st, json_t **events);
static const char *header(sl_pool_t *pool, const sl_upstream_req_t *req, const char *name);
static void test_registry(void **state);
static void test_request_tools(void **state);
static void test_request_images(void **state);
static void test_request_json_object(void **state);
static void test_request_errors(void **state);
static void test_response_text(void **state);
static void test_response_parallel_calls(void **state);
static void test_response_finish_reasons(void **state);
static void test_response_blocked(void **state);
static void test_response_invalid(void **state);
static void test_embed_single(void **state);
static void test_embed_batch(void **state);
static void test_stream_text(void **state);
static void test_stream_tools(void **state);
static void test_stream_safety(void **state);
static void test_stream_error(void **state);
static void test_response_thoughts(void **state);
static void test_stream_thoughts(void **state);
static void test_map_error(void **state);


static int
setup(void **state)
{
    test_ctx_t *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return -1;
    }
    t->pool = sl_pool_create(0);
    t->prov.name = "gemini";
    t->prov.kind = "gemini";
    t->prov.ops = gemini();
    t->prov.base_path = "/v1beta";
    t->prov.api_key.value = API_KEY;
    t->prov.api_key.len = strlen(API_KEY);
    t->target.provider = &t->prov;
    t->target.model = "gemini-2.0-flash";
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
gemini(void)
{
    const sl_provider_ops_t *ops = sl_provider_find("gemini");

    assert_non_null(ops);
    return ops;
}


static const char *
fixture_path(const char *name)
{
    static char path[4096];
    const char *srcdir = getenv("SL_TEST_SRCDIR");

    snprintf(path, sizeof(path), "%s/unit/fixtures/gemini/%s", srcdir != NULL ? srcdir : "test",
             name);
    return path;
}


/* Reads fixtures/gemini/name into pool, NUL-terminated. */
static char *
fixture(sl_pool_t *pool, const char *name, size_t *len)
{
    const char *path = fixture_path(name);
    FILE *f = fopen(path, "rb");
    long n;
    char *p;

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


/* The call the proxy would hand over for fixture name (the client's body). */
static void
call_init(test_ctx_t *t, sl_api_e api, const char *name)
{
    sl_call_t *c = &t->call;
    sl_json_t *doc = sl_json_create(t->pool);
    size_t len;
    char *raw = fixture(t->pool, name, &len);

    memset(c, 0, sizeof(*c));
    assert_int_equal(sl_json_parse(doc, raw, len, NULL), 0);
    c->pool = t->pool;
    c->api = api;
    c->client_api = api;
    c->raw = (sl_str_t){ raw, len };
    c->doc = doc;
    c->native = c->raw;
    c->native_doc = doc;
    c->api_key = &t->prov.api_key;
    c->model = sl_json_get(doc, SL_JSON_ROOT, "model");
    c->stream_options = sl_json_get(doc, SL_JSON_ROOT, "stream_options");
    c->target = &t->target;
    c->stream = sl_json_is_true(doc, sl_json_get(doc, SL_JSON_ROOT, "stream"));
    c->request_id = "req-test-1";
}


/* got (a reference taken) must equal fixture name, or is written there when updating. */
static void
check_golden(json_t *got, const char *name)
{
    const char *update = getenv("SL_TEST_UPDATE_GOLDEN");
    json_error_t err;
    json_t *want;

    normalise_created(got);
    if (update != NULL && strcmp(update, "1") == 0) {
        assert_int_equal(
            json_dump_file(got, fixture_path(name), JSON_INDENT(2) | JSON_REAL_PRECISION(15)), 0);
    }
    want = json_load_file(fixture_path(name), 0, &err);
    if (want == NULL) {
        fail_msg("fixture %s: %s (line %d)", name, err.text, err.line);
    }
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS);

        print_error("%s: got\n%s\nwant\n%s\n", name, g, w);
        free(g);
        free(w);
        json_decref(got);
        json_decref(want);
        fail_msg("%s differs", name);
    }
    json_decref(got);
    json_decref(want);
}


/* Every `created` (answers and chunks) must be a positive integer; it becomes 0. */
static void
normalise_created(json_t *v)
{
    json_t *c;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            normalise_created(c);
        }
        return;
    }
    c = json_object_get(v, "created");
    if (c != NULL) {
        assert_true(json_is_integer(c) && json_integer_value(c) > 0);
        json_object_set_new(v, "created", json_integer(0));
    }
}


/* Runs build_request on the call; returns the upstream body parsed. */
static json_t *
build(test_ctx_t *t, sl_upstream_req_t *req)
{
    json_error_t err;
    json_t *body;

    memset(req, 0, sizeof(*req));
    assert_int_equal(gemini()->build_request(t->prov.ext, &t->call, req), 0);
    assert_string_equal(req->method, "POST");
    assert_non_null(req->body);
    assert_int_equal(strlen(req->body), req->body_len);
    body = json_loadb(req->body, req->body_len, 0, &err);
    if (body == NULL) {
        fail_msg("upstream body is not JSON: %s", err.text);
    }
    return body;
}


/* Value of header name in req (pool copy), or NULL. */
static const char *
header(sl_pool_t *pool, const sl_upstream_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (sl_str_eq(req->headers[i].name, name)) {
            return sl_pstrndup(pool, req->headers[i].value.p, req->headers[i].value.len);
        }
    }
    return NULL;
}


/*
 * parse_response on fixture name; returns the body the client gets from
 * its frontend (chat, or embeddings), parsed.
 */
static json_t *
parse(test_ctx_t *t, const char *name, sl_answer_t *a)
{
    sl_buf_t body;
    size_t len;
    char *p = fixture(t->pool, name, &len);

    body = (sl_buf_t){ p, len, len };
    memset(a, 0, sizeof(*a));
    assert_int_equal(gemini()->parse_response(t->prov.ext, &t->call, &body, a), 0);
    if (t->call.api == SL_API_EMBEDDINGS) {
        sl_buf_t out = SL_BUF_INIT;
        json_t *v;

        assert_int_equal(a->raw_api, SL_API_EMBEDDINGS);
        assert_int_equal(sl_frontend_get(SL_API_EMBEDDINGS)->encode_answer(&t->call, a, &out), 0);
        v = json_loadb(out.p, out.len, 0, NULL);
        assert_non_null(v);
        sl_buf_free(&out);
        return v;
    }
    assert_null(a->raw.p);
    return sl_test_encode_answer(&t->call, a);
}


/*
 * Feeds fixture name through the SSE parser, step bytes at a time (0: all
 * at once), into the adapter and the chat frontend's encoders; returns the
 * chunks the client got as a JSON array (the final "data: [DONE]" apart:
 * it must come exactly when the stream is done) and, in *events when not
 * NULL, the typed events.
 */
static json_t *
run_stream(test_ctx_t *t, const char *name, bool wants_usage, size_t step, sl_stream_t *st,
           json_t **events)
{
    sl_test_stream_t got;
    size_t len;
    char *sse = fixture(t->pool, name, &len);
    json_t *list;

    t->call.client_wants_usage = wants_usage;
    sl_test_run_stream(gemini(), t->prov.ext, &t->call, st, sse, len, step, &got);
    assert_int_equal(got.done_line, st->done);
    list = json_incref(got.data);
    if (events != NULL) {
        *events = json_incref(got.events);
    }
    sl_test_stream_free(&got);
    return list;
}


static void
test_registry(void **state)
{
    (void) state;
    assert_string_equal(gemini()->kind, "gemini");
    assert_string_equal(gemini()->default_base_url,
                        "https://generativelanguage.googleapis.com/v1beta");
    assert_null(gemini()->conf_parse);
}


/* Multi-turn tool use: parallel calls, results by id (a reused id), schemas cleaned. */
static void
test_request_tools(void **state)
{
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    call_init(t, SL_API_CHAT, "req_tools.in.json");
    check_golden(build(t, &req), "req_tools.out.json");
    assert_string_equal(req.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_string_equal(header(t->pool, &req, "x-goog-api-key"), API_KEY);
    assert_string_equal(header(t->pool, &req, "content-type"), "application/json");
    assert_null(header(t->pool, &req, "authorization"));
}


/* Images inline and by URL, audio, a stream, json_schema, n, tool_choice required. */
static void
test_request_images(void **state)
{
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    t->target.model = "models/gemini-1.5-pro";
    call_init(t, SL_API_CHAT, "req_images.in.json");
    check_golden(build(t, &req), "req_images.out.json");
    assert_string_equal(req.path, "/v1beta/models/gemini-1.5-pro:streamGenerateContent?alt=sse");
}


static void
test_request_json_object(void **state)
{
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    t->target.model = "tunedModels/my_model-2.0";
    t->prov.api_key.value = NULL;
    call_init(t, SL_API_CHAT, "req_json_object.in.json");
    check_golden(build(t, &req), "req_json_object.out.json");
    assert_string_equal(req.path, "/v1beta/tunedModels/my_model-2.0:generateContent");
    assert_null(header(t->pool, &req, "x-goog-api-key"));
}


/* Requests Gemini cannot express are refused before anything is sent. */
static void
test_request_errors(void **state)
{
    static const char *const bodies[] = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"nope\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"tools\":[{\"type\":\"retrieval\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"tool_choice\":\"sometimes\"}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video\"}]}]}",
    };
    static const char *const models[] = {
        "..",
        ".",
        "models/..",
        "tunedModels/..",
        "../../v1/files x",
        "a/b",
        "models/a/b",
        "-x",
        ".x",
        "",
        "models/",
        "gemini 2",
        "x:generateContent",
        "x?alt=sse",
        "x%2F..",
    };
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sl_json_t *doc = sl_json_create(t->pool);

        memset(&t->call, 0, sizeof(t->call));
        assert_int_equal(sl_json_parse(doc, bodies[i], strlen(bodies[i]), NULL), 0);
        t->call.pool = t->pool;
        t->call.api = SL_API_CHAT;
        t->call.raw = (sl_str_t){ bodies[i], strlen(bodies[i]) };
        t->call.doc = doc;
        t->call.model = sl_json_get(doc, SL_JSON_ROOT, "model");
        t->call.stream_options = -1;
        t->call.target = &t->target;
        if (gemini()->build_request(NULL, &t->call, &req) != SL_EPARSE) {
            fail_msg("accepted %s", bodies[i]);
        }
    }
    call_init(t, SL_API_MESSAGES, "req_json_object.in.json");
    assert_int_equal(gemini()->build_request(NULL, &t->call, &req), SL_EDENIED);

    /* a client's model never walks the path: refused, not encoded */
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        for (int embed = 0; embed < 2; embed++) {
            t->target.model = models[i];
            call_init(t, embed ? SL_API_EMBEDDINGS : SL_API_CHAT,
                      embed ? "embed_single.in.json" : "req_json_object.in.json");
            memset(&req, 0, sizeof(req));
            if (gemini()->build_request(NULL, &t->call, &req) != SL_ENOTFOUND) {
                fail_msg("model \"%s\" was not refused", models[i]);
            }
            assert_null(req.path);
        }
    }
}


/* Text joined without thoughts; cached and thinking tokens; modelVersion and responseId. */
static void
test_response_text(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t reply;

    call_init(t, SL_API_CHAT, "req_json_object.in.json");
    check_golden(parse(t, "resp_text.in.json", &reply), "resp_text.out.json");
    assert_true(reply.usage.known);
    assert_int_equal(reply.usage.prompt_tokens, 1200);
    assert_int_equal(reply.usage.completion_tokens, 37);
    assert_int_equal(reply.usage.cached_tokens, 1024);
    assert_true(sl_str_eq(reply.model, "\"gemini-2.5-flash-001\""));
}


static void
test_response_parallel_calls(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t reply;

    call_init(t, SL_API_CHAT, "req_tools.in.json");
    check_golden(parse(t, "resp_parallel_calls.in.json", &reply), "resp_parallel_calls.out.json");
    assert_int_equal(reply.usage.prompt_tokens, 80);
    assert_int_equal(reply.usage.completion_tokens, 20);
    assert_int_equal(reply.usage.cached_tokens, 0);
}


/* Two candidates: MAX_TOKENS -> length, SAFETY -> content_filter; tool-use prompt tokens. */
static void
test_response_finish_reasons(void **state)
{
    static const struct {
        const char *reason;
        const char *want;
    } table[] = {
        { "STOP", "stop" },
        { "MAX_TOKENS", "length" },
        { "SAFETY", "content_filter" },
        { "RECITATION", "content_filter" },
        { "BLOCKLIST", "content_filter" },
        { "PROHIBITED_CONTENT", "content_filter" },
        { "SPII", "content_filter" },
        { "MALFORMED_FUNCTION_CALL", "stop" },
        { "OTHER", "stop" },
    };
    test_ctx_t *t = *state;
    sl_answer_t reply;

    call_init(t, SL_API_CHAT, "req_json_object.in.json");
    check_golden(parse(t, "resp_max_tokens.in.json", &reply), "resp_max_tokens.out.json");
    assert_int_equal(reply.usage.prompt_tokens, 7);
    assert_int_equal(reply.model.len, 0);

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        char body[256];
        sl_buf_t b = SL_BUF_INIT;
        json_t *out;

        snprintf(body, sizeof(body),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"finishReason\":\"%s\"}]}",
                 table[i].reason);
        sl_buf_puts(&b, body);
        memset(&reply, 0, sizeof(reply));
        assert_int_equal(gemini()->parse_response(NULL, &t->call, &b, &reply), 0);
        out = sl_test_encode_answer(&t->call, &reply);
        sl_buf_free(&b);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(json_object_get(out, "choices"), 0),
                                              "finish_reason")),
            table[i].want);
        assert_false(reply.usage.known);
        json_decref(out);
    }
}


static void
test_response_blocked(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t reply;

    call_init(t, SL_API_CHAT, "req_json_object.in.json");
    check_golden(parse(t, "resp_blocked.in.json", &reply), "resp_blocked.out.json");
    assert_int_equal(reply.usage.prompt_tokens, 9);
}


static void
test_response_invalid(void **state)
{
    static const char *const bodies[] = { "", "not json", "[1,2]", "{}", "{\"candidates\":[]}" };
    test_ctx_t *t = *state;
    sl_answer_t reply;

    call_init(t, SL_API_CHAT, "req_json_object.in.json");
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sl_buf_t b = SL_BUF_INIT;

        sl_buf_puts(&b, bodies[i]);
        memset(&reply, 0, sizeof(reply));
        assert_int_equal(gemini()->parse_response(NULL, &t->call, &b, &reply), SL_EUPSTREAM);
        sl_buf_free(&b);
    }
    call_init(t, SL_API_EMBEDDINGS, "embed_single.in.json");
    {
        sl_buf_t b = SL_BUF_INIT;

        sl_buf_puts(&b, "{\"embedding\":{\"values\":\"no\"}}");
        assert_int_equal(gemini()->parse_response(NULL, &t->call, &b, &reply), SL_EUPSTREAM);
        sl_buf_free(&b);
    }
}


static void
test_embed_single(void **state)
{
    test_ctx_t *t = *state;
    sl_upstream_req_t req;
    sl_answer_t reply;

    t->target.model = "text-embedding-004";
    call_init(t, SL_API_EMBEDDINGS, "embed_single.in.json");
    check_golden(build(t, &req), "embed_single.out.json");
    assert_string_equal(req.path, "/v1beta/models/text-embedding-004:embedContent");
    check_golden(parse(t, "embed_single.resp.json", &reply), "embed_single.resp.out.json");
    assert_true(reply.usage.estimated);
    assert_int_equal(reply.usage.prompt_tokens, 5); /* 19 bytes */
}


/* A list of inputs, answered as base64 little-endian float32 vectors. */
static void
test_embed_batch(void **state)
{
    test_ctx_t *t = *state;
    sl_upstream_req_t req;
    sl_answer_t reply;
    json_t *out;

    t->target.model = "text-embedding-004";
    call_init(t, SL_API_EMBEDDINGS, "embed_batch.in.json");
    check_golden(build(t, &req), "embed_batch.out.json");
    assert_string_equal(req.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
    out = parse(t, "embed_batch.resp.json", &reply);
    /* 1.0f = 00 00 80 3f, -2.5f = 00 00 20 c0; 0.5f = 00 00 00 3f */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "data"), 0), "embedding")),
                        "AACAPwAAIMA=");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "data"), 1), "embedding")),
                        "AAAAPw==");
    check_golden(out, "embed_batch.resp.out.json");
    assert_int_equal(reply.usage.prompt_tokens, 4); /* 16 bytes */
}


/* Role first, text deltas without thoughts, finish, usage when asked; the same at any split. */
static void
test_stream_text(void **state)
{
    static const size_t steps[] = { 0, 1, 7 };
    test_ctx_t *t = *state;
    sl_stream_t st;

    call_init(t, SL_API_CHAT, "req_images.in.json");
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        check_golden(run_stream(t, "stream_text.sse", true, steps[i], &st, NULL),
                     "stream_text.usage.json");
        assert_true(st.done);
        assert_true(st.usage.known);
        assert_int_equal(st.usage.prompt_tokens, 10);
        assert_int_equal(st.usage.completion_tokens, 7);
        assert_int_equal(st.usage.cached_tokens, 6);
        assert_int_equal(st.content_bytes, 13 + 9); /* the thought counts: it is output */
        assert_string_equal(st.served_model, "gemini-2.0-flash");
    }
    check_golden(run_stream(t, "stream_text.sse", false, 0, &st, NULL), "stream_text.nousage.json");
    assert_true(st.done);
    assert_int_equal(st.usage.completion_tokens, 7);
}


/*
 * Parallel calls: each a tool call (id, name) then its whole arguments;
 * finish tool_calls. CRLF framing.
 */
static void
test_stream_tools(void **state)
{
    test_ctx_t *t = *state;
    sl_stream_t st;

    call_init(t, SL_API_CHAT, "req_tools.in.json");
    check_golden(run_stream(t, "stream_tools.sse", true, 0, &st, NULL), "stream_tools.usage.json");
    assert_true(st.done);
    assert_int_equal(st.usage.prompt_tokens, 50);
    check_golden(run_stream(t, "stream_tools.sse", true, 3, &st, NULL), "stream_tools.usage.json");
}


static void
test_stream_safety(void **state)
{
    test_ctx_t *t = *state;
    sl_stream_t st;

    call_init(t, SL_API_CHAT, "req_tools.in.json");
    check_golden(run_stream(t, "stream_safety.sse", false, 0, &st, NULL),
                 "stream_safety.nousage.json");
    assert_true(st.done);
    assert_int_equal(st.usage.completion_tokens, 2);
}


/*
 * An error chunk mid-stream: SL_EV_ERROR (503 UNAVAILABLE: retryable),
 * which the driver ends the stream with in OpenAI's shape; not done.
 */
static void
test_stream_error(void **state)
{
    test_ctx_t *t = *state;
    sl_stream_t st;
    json_t *events;
    json_t *e;

    call_init(t, SL_API_CHAT, "req_tools.in.json");
    check_golden(run_stream(t, "stream_error.sse", true, 0, &st, &events),
                 "stream_error.usage.json");
    assert_false(st.done);
    assert_true(st.failed);
    assert_false(st.usage.known);
    e = json_object_get(json_array_get(events, json_array_size(events) - 1), "error");
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 503);
    assert_true(json_is_true(json_object_get(e, "retryable")));
    assert_string_equal(json_string_value(json_object_get(e, "code")), "unavailable");
    json_decref(events);
}


/* Thought parts are reasoning; thoughtSignature is kept byte for byte; thinking tokens. */
static void
test_response_thoughts(void **state)
{
    test_ctx_t *t = *state;
    sl_answer_t a;
    json_t *s;

    call_init(t, SL_API_CHAT, "req_tools.in.json");
    check_golden(parse(t, "resp_thoughts.in.json", &a), "resp_thoughts.out.json");
    assert_int_equal(a.nchoices, 1);
    s = sl_test_literal(a.choices[0].reasoning);
    assert_string_equal(json_string_value(s), "Weather first, then time.");
    json_decref(s);
    assert_true(sl_str_eq(a.choices[0].signature, "\"CiQB0e2Kb\\/+sigB==\""));
    assert_int_equal(a.choices[0].ntools, 1);
    assert_int_equal(a.usage.reasoning_tokens, 12);
    assert_int_equal(a.usage.completion_tokens, 20);
    assert_int_equal(a.choices[0].finish, SL_FINISH_TOOL_CALLS);
}


/* The typed events of a stream with thoughts, signatures and a call (fixture events). */
static void
test_stream_thoughts(void **state)
{
    test_ctx_t *t = *state;
    sl_stream_t st;
    json_t *events;
    json_t *chunks;

    call_init(t, SL_API_CHAT, "req_tools.in.json");
    chunks = run_stream(t, "stream_thoughts.sse", true, 0, &st, &events);
    normalise_created(chunks);
    check_golden(json_pack("{soso}", "events", events, "chunks", chunks),
                 "stream_thoughts.out.json");
    assert_true(st.done);
    assert_int_equal(st.usage.reasoning_tokens, 9);
}


static void
test_map_error(void **state)
{
    static const struct {
        int status;
        const char *file; /* NULL: empty body */
        int want_status;
        const char *type;
        const char *code;
        bool retryable;
        const char *message; /* NULL: not checked */
        uint64_t retry_after;
    } table[] = {
        { 429, "error_429.json", 429, "rate_limit_error", "rate_limit_exceeded", true,
          "Resource has been exhausted (e.g. check quota).", 12500 },
        { 400, "error_bad_key.json", 502, "api_error", "upstream_auth_failed", false, NULL, 0 },
        { 400, "error_400.json", 400, "invalid_request_error", "invalid_argument", false,
          "* GenerateContentRequest.contents: contents is not specified\n", 0 },
        { 403, NULL, 502, "api_error", "upstream_auth_failed", false, NULL, 0 },
        { 401, NULL, 502, "api_error", "upstream_auth_failed", false, NULL, 0 },
        { 404, NULL, 404, "invalid_request_error", NULL, false, "upstream returned HTTP 404", 0 },
        { 500, NULL, 502, "api_error", NULL, true, NULL, 0 },
        { 503, NULL, 503, "api_error", NULL, true, NULL, 0 },
        { 504, NULL, 504, "api_error", NULL, true, NULL, 0 },
    };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        sl_buf_t b = SL_BUF_INIT;
        sl_error_t e;

        if (table[i].file != NULL) {
            size_t len;
            char *p = fixture(t->pool, table[i].file, &len);

            sl_buf_append(&b, p, len);
        }
        memset(&e, 0, sizeof(e));
        assert_int_equal(gemini()->map_error(NULL, table[i].status, &b, t->pool, &e), 0);
        sl_buf_free(&b);
        assert_int_equal(e.status, table[i].want_status);
        assert_string_equal(e.type, table[i].type);
        if (table[i].code == NULL) {
            assert_true(e.code == NULL || table[i].file == NULL);
        } else {
            assert_string_equal(e.code, table[i].code);
        }
        assert_int_equal(e.retryable, table[i].retryable);
        assert_int_equal(e.retry_after, table[i].retry_after);
        assert_non_null(e.message);
        if (table[i].message != NULL) {
            assert_string_equal(e.message, table[i].message);
        }
        assert_null(strstr(e.message, "API key"));
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_json_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_parallel_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_finish_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embed_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embed_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_thoughts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_thoughts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
