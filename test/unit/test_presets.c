/*
 * Unit tests for the OpenAI-compatible presets (providers/openai.c) and
 * Azure OpenAI (providers/azure.c): every kind resolves in the registry,
 * a preset's default base_url applies when the YAML has none (vllm has
 * none and still needs one), each preset's quirks drop exactly the keys
 * its row names (the rest of the body byte for byte), empty stream chunks
 * are skipped where the provider sends them (raw bytes for a chat client;
 * the typed events still go out), and Azure's path, api-version,
 * deployment map and api-key header.
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

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "providers/provider.h"
#include "providers/registry.h"

#define KEY "sk-preset-test-0123456789"

typedef struct test_ctx {
    sl_conf_t *conf;
    sl_pool_t *pool;
    sl_target_t target;
    sl_call_t call;
} test_ctx_t;

static int load(const char *yaml, sl_conf_t **out, char *err, size_t errlen);
static int setup(void **state);
static int teardown(void **state);
static void call_init(test_ctx_t *t, const char *provider, const char *model, sl_api_e api,
                      const char *body, bool stream);
static sl_upstream_req_t build(test_ctx_t *t);
static const char *header(test_ctx_t *t, const sl_upstream_req_t *req, const char *name);
static void expect_body(test_ctx_t *t, const char *provider, const char *in, bool stream,
                        const char *want);
static size_t stream_one(test_ctx_t *t, const char *provider, const char *data, size_t *nevents);
static void test_registry(void **state);
static void test_default_base_url(void **state);
static void test_vllm_needs_base_url(void **state);
static void test_quirks(void **state);
static void test_empty_chunks(void **state);
static void test_azure(void **state);
static void test_azure_conf_errors(void **state);
static void test_credential(void **state);

static const char *const test_kinds[] = {
    "openai", "azure",      "gemini",     "deepseek", "mistral", "groq", "together", "fireworks",
    "xai",    "openrouter", "perplexity", "cerebras", "ollama",  "vllm", "echo",
};

static const char test_yaml[] =
    "providers:\n"
    "  deepseek: {kind: deepseek, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  mistral: {kind: mistral, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  groq: {kind: groq, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  together: {kind: together, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  fireworks: {kind: fireworks, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  xai: {kind: xai, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  openrouter: {kind: openrouter, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  perplexity: {kind: perplexity, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  cerebras: {kind: cerebras, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  ollama: {kind: ollama}\n"
    "  vllm: {kind: vllm, base_url: 'http://10.0.0.5:8000/v1'}\n"
    "  gemini: {kind: gemini, api_key: env:SL_TEST_PRESET_KEY}\n"
    "  openai:\n"
    "    kind: openai\n"
    "    base_url: https://api.openai.com/v1\n"
    "    api_key: env:SL_TEST_PRESET_KEY\n"
    "  azure:\n"
    "    kind: azure\n"
    "    base_url: https://acme.openai.azure.com/\n"
    "    api_key: env:SL_TEST_PRESET_KEY\n"
    "    api_version: 2025-01-01-preview\n"
    "    deployments: {gpt-4o-mini: prod-4o-mini, text-embedding-3-small: emb}\n"
    "  azure2: {kind: azure, base_url: 'https://b.openai.azure.com/x'}\n";


static int
load(const char *yaml, sl_conf_t **out, char *err, size_t errlen)
{
    char path[] = "/tmp/sl-presets-XXXXXX";
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
    setenv("SL_TEST_PRESET_KEY", KEY, 1);
    if (load(test_yaml, &t->conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "load: %s\n", err);
        free(t);
        return -1;
    }
    t->pool = sl_pool_create(0);
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


static void
call_init(test_ctx_t *t, const char *provider, const char *model, sl_api_e api, const char *body,
          bool stream)
{
    sl_json_t *doc = sl_json_create(t->pool);
    sl_call_t *c = &t->call;

    t->target.provider = sl_conf_provider(t->conf, provider, strlen(provider));
    assert_non_null(t->target.provider);
    t->target.model = model;
    memset(c, 0, sizeof(*c));
    assert_int_equal(sl_json_parse(doc, body, strlen(body), NULL), 0);
    c->pool = t->pool;
    c->api = api;
    c->client_api = api;
    c->raw = (sl_str_t){ body, strlen(body) };
    c->doc = doc;
    c->native = c->raw;
    c->native_doc = doc;
    c->model = sl_json_get(doc, SL_JSON_ROOT, "model");
    c->stream_options = sl_json_get(doc, SL_JSON_ROOT, "stream_options");
    c->target = &t->target;
    c->api_key = t->target.provider->api_key.value != NULL ? &t->target.provider->api_key : NULL;
    c->stream = stream;
    c->request_id = "req-presets";
}


static sl_upstream_req_t
build(test_ctx_t *t)
{
    const sl_provider_conf_t *p = t->target.provider;
    sl_upstream_req_t req;

    int rc;

    memset(&req, 0, sizeof(req));
    rc = p->ops->build_request(p->ext, &t->call, &req);
    if (rc != 0) {
        fail_msg("%s: build_request returned %d for %.*s", p->name, rc, (int) t->call.raw.len,
                 t->call.raw.p);
    }
    assert_string_equal(req.method, "POST");
    return req;
}


static const char *
header(test_ctx_t *t, const sl_upstream_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (sl_str_eq(req->headers[i].name, name)) {
            return sl_pstrndup(t->pool, req->headers[i].value.p, req->headers[i].value.len);
        }
    }
    return NULL;
}


static void
expect_body(test_ctx_t *t, const char *provider, const char *in, bool stream, const char *want)
{
    sl_upstream_req_t req;

    call_init(t, provider, "m1", SL_API_CHAT, in, stream);
    req = build(t);
    if (strlen(want) != req.body_len || memcmp(req.body, want, req.body_len) != 0) {
        fail_msg("%s: got\n%.*s\nwant\n%s", provider, (int) req.body_len, req.body, want);
    }
}


/* Raw bytes a chat client gets for one data: event; *nevents the typed events. */
static size_t
stream_one(test_ctx_t *t, const char *provider, const char *data, size_t *nevents)
{
    const sl_provider_conf_t *p;
    sl_evs_t evs;
    sl_sse_event_t ev;
    sl_stream_t st;

    call_init(t, provider, "m1", SL_API_CHAT, "{\"model\":\"x\",\"messages\":[1]}", true);
    p = t->target.provider;
    memset(&st, 0, sizeof(st));
    st.call = &t->call;
    memset(&evs, 0, sizeof(evs));
    evs.pool = t->pool;
    memset(&ev, 0, sizeof(ev));
    ev.event = sl_str_lit("");
    ev.id = sl_str_lit("");
    ev.data = (sl_str_t){ data, strlen(data) };
    assert_int_equal(p->ops->stream_event(p->ext, &st, &ev, &evs), 0);
    assert_non_null(evs.raw.p);
    assert_int_equal(evs.raw_api, SL_API_CHAT);
    *nevents = evs.n;
    return evs.raw.len;
}


static void
test_registry(void **state)
{
    size_t n = 0;

    (void) state;
    for (size_t i = 0; i < sizeof(test_kinds) / sizeof(test_kinds[0]); i++) {
        const sl_provider_ops_t *ops = sl_provider_find(test_kinds[i]);

        if (ops == NULL) {
            fail_msg("kind %s is not registered", test_kinds[i]);
        }
        assert_string_equal(ops->kind, test_kinds[i]);
        assert_non_null(ops->build_request);
        assert_non_null(ops->parse_response);
        assert_non_null(ops->stream_event);
        assert_non_null(ops->map_error);
    }
    while (sl_providers[n] != NULL) {
        n++;
    }
    assert_true(n >= 16); /* with anthropic and echo */
    assert_null(sl_provider_find("azure-openai"));
}


static void
test_default_base_url(void **state)
{
    static const struct {
        const char *name;
        const char *url;
        const char *host;
        unsigned port;
        const char *path;
    } want[] = {
        { "deepseek", "https://api.deepseek.com/v1", "api.deepseek.com", 443, "/v1" },
        { "mistral", "https://api.mistral.ai/v1", "api.mistral.ai", 443, "/v1" },
        { "groq", "https://api.groq.com/openai/v1", "api.groq.com", 443, "/openai/v1" },
        { "together", "https://api.together.xyz/v1", "api.together.xyz", 443, "/v1" },
        { "fireworks", "https://api.fireworks.ai/inference/v1", "api.fireworks.ai", 443,
          "/inference/v1" },
        { "xai", "https://api.x.ai/v1", "api.x.ai", 443, "/v1" },
        { "openrouter", "https://openrouter.ai/api/v1", "openrouter.ai", 443, "/api/v1" },
        { "perplexity", "https://api.perplexity.ai", "api.perplexity.ai", 443, "" },
        { "cerebras", "https://api.cerebras.ai/v1", "api.cerebras.ai", 443, "/v1" },
        { "ollama", "http://127.0.0.1:11434/v1", "127.0.0.1", 11434, "/v1" },
        { "vllm", "http://10.0.0.5:8000/v1", "10.0.0.5", 8000, "/v1" },
        { "gemini", "https://generativelanguage.googleapis.com/v1beta",
          "generativelanguage.googleapis.com", 443, "/v1beta" },
        { "azure", "https://acme.openai.azure.com", "acme.openai.azure.com", 443, "" },
    };
    test_ctx_t *t = *state;

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const sl_provider_conf_t *p = sl_conf_provider(t->conf, want[i].name, strlen(want[i].name));

        assert_non_null(p);
        assert_string_equal(p->base_url, want[i].url);
        assert_string_equal(p->host, want[i].host);
        assert_int_equal(p->port, want[i].port);
        assert_string_equal(p->base_path, want[i].path);
        assert_int_equal(p->tls, strncmp(want[i].url, "https", 5) == 0);
    }
    assert_null(sl_conf_provider(t->conf, "ollama", 6)->api_key.value);
    assert_string_equal(sl_conf_provider(t->conf, "groq", 4)->api_key.value, KEY);
}


static void
test_vllm_needs_base_url(void **state)
{
    char err[512];
    sl_conf_t *conf = NULL;

    (void) state;
    assert_int_equal(load("providers:\n  v: {kind: vllm}\n", &conf, err, sizeof(err)), SL_ECONF);
    assert_null(conf);
    assert_non_null(strstr(err, ":2:3: provider \"v\" needs a base_url"));
    assert_int_equal(load("providers:\n  o: {kind: openai}\n", &conf, err, sizeof(err)), SL_ECONF);
    assert_non_null(strstr(err, "needs a base_url"));
    assert_int_equal(
        load("providers:\n  g: {kind: groq, deployments: {a: b}}\n", &conf, err, sizeof(err)),
        SL_ECONF);
    assert_non_null(strstr(err, "unknown key \"deployments\""));
}


static void
test_quirks(void **state)
{
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    /* openai keeps everything and asks for stream usage */
    expect_body(t, "openai", "{\"model\":\"a\",\"seed\":1,\"n\":2,\"logprobs\":true}", true,
                "{\"model\":\"m1\",\"seed\":1,\"n\":2,\"logprobs\":true,"
                "\"stream_options\":{\"include_usage\":true}}");
    /* mistral: no stream_options at all, nor seed/user/logit_bias */
    expect_body(t, "mistral",
                "{\"seed\": 3, \"model\": \"a\", \"stream_options\": {\"include_usage\": true}, "
                "\"temperature\": 0.2, \"user\": \"u\", \"logit_bias\": {\"1\": 2}}",
                true, "{\"model\": \"m1\", \"temperature\": 0.2}");
    expect_body(t, "mistral", "{\"model\":\"a\",\"messages\":[]}", true,
                "{\"model\":\"m1\",\"messages\":[]}");
    /* groq: logprobs, top_logprobs, logit_bias, n; stream usage still asked for */
    expect_body(t, "groq",
                "{\"n\":2,\"logprobs\":true,\"top_logprobs\":3,\"model\":\"a\",\"logit_bias\":{},"
                "\"seed\":4}",
                true, "{\"model\":\"m1\",\"seed\":4,\"stream_options\":{\"include_usage\":true}}");
    expect_body(t, "deepseek", "{\"model\":\"a\",\"seed\":9,\"logprobs\":true}", false,
                "{\"model\":\"m1\",\"logprobs\":true}");
    expect_body(t, "perplexity", "{\"model\":\"a\",\"n\":1,\"stream_options\":null}", true,
                "{\"model\":\"m1\"}");
    expect_body(t, "cerebras", "{\"model\":\"a\",\"n\":1,\"logit_bias\":{\"5\":1}}", false,
                "{\"model\":\"m1\"}");
    expect_body(t, "together", "{\"model\":\"a\",\"seed\":1,\"logit_bias\":{}}", false,
                "{\"model\":\"m1\",\"seed\":1,\"logit_bias\":{}}");

    /* embeddings are never edited beyond the model */
    call_init(t, "mistral", "mistral-embed", SL_API_EMBEDDINGS,
              "{\"model\":\"e\",\"input\":\"x\",\"user\":\"u\"}", false);
    req = build(t);
    assert_string_equal(req.body, "{\"model\":\"mistral-embed\",\"input\":\"x\",\"user\":\"u\"}");
    assert_string_equal(req.path, "/v1/embeddings");

    /* the OpenAI path and bearer key for a preset; no key for ollama */
    call_init(t, "groq", "llama", SL_API_CHAT, "{\"model\":\"a\"}", false);
    req = build(t);
    assert_string_equal(req.path, "/openai/v1/chat/completions");
    assert_string_equal(header(t, &req, "authorization"), "Bearer " KEY);
    call_init(t, "ollama", "llama3", SL_API_CHAT, "{\"model\":\"a\"}", false);
    req = build(t);
    assert_string_equal(req.path, "/v1/chat/completions");
    assert_null(header(t, &req, "authorization"));
    call_init(t, "perplexity", "sonar", SL_API_CHAT, "{\"model\":\"a\"}", false);
    req = build(t);
    assert_string_equal(req.path, "/chat/completions");
}


static void
test_empty_chunks(void **state)
{
    static const char empty[] = "{\"id\":\"x\",\"choices\":[]}";
    static const char text[] =
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}";
    test_ctx_t *t = *state;
    size_t n;

    assert_int_equal(stream_one(t, "openrouter", empty, &n), 0);
    assert_int_equal(n, 1); /* SL_EV_START */
    assert_int_equal(stream_one(t, "together", empty, &n), 0);
    assert_int_equal(stream_one(t, "azure", empty, &n), 0);
    assert_int_equal(stream_one(t, "openrouter", text, &n), sizeof(text) - 1 + 8);
    assert_int_equal(n, 2); /* START, TEXT */
    assert_int_equal(stream_one(t, "openai", empty, &n), sizeof(empty) - 1 + 8);
    assert_int_equal(stream_one(t, "groq", empty, &n), sizeof(empty) - 1 + 8);
}


static void
test_azure(void **state)
{
    static const char *const bad[] = {
        "..",
        ".",
        "../x",
        "a/b",
        "my deploy",
        "-x",
        "_x",
        ".hidden",
        "a%2F..",
        "x?y",
        "x#y",
        "",
        "a\\b",
        "\xc3\xa9t\xc3\xa9",
        "x123456789x123456789x123456789x123456789x123456789x123456789x1234",
    };
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    call_init(t, "azure", "gpt-4o-mini", SL_API_CHAT, "{\"model\":\"a\",\"seed\":1}", true);
    req = build(t);
    assert_string_equal(req.path, "/openai/deployments/prod-4o-mini/chat/completions"
                                  "?api-version=2025-01-01-preview");
    assert_string_equal(header(t, &req, "api-key"), KEY);
    assert_null(header(t, &req, "authorization"));
    assert_string_equal(req.body, "{\"model\":\"gpt-4o-mini\",\"seed\":1,"
                                  "\"stream_options\":{\"include_usage\":true}}");

    call_init(t, "azure", "text-embedding-3-small", SL_API_EMBEDDINGS,
              "{\"model\":\"e\",\"input\":[\"x\"]}", false);
    req = build(t);
    assert_string_equal(req.path,
                        "/openai/deployments/emb/embeddings?api-version=2025-01-01-preview");

    /* not in the map: the model is the deployment, when it can be one */
    call_init(t, "azure", "gpt-4.1_mini-2", SL_API_CHAT, "{\"model\":\"a\"}", false);
    req = build(t);
    assert_string_equal(req.path, "/openai/deployments/gpt-4.1_mini-2/chat/completions"
                                  "?api-version=2025-01-01-preview");
    /* a client's "az/.." must not walk the upstream path: refused before anything is sent */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call_init(t, "azure", bad[i], SL_API_CHAT, "{\"model\":\"a\"}", false);
        memset(&req, 0, sizeof(req));
        if (t->target.provider->ops->build_request(t->target.provider->ext, &t->call, &req)
            != SL_ENOTFOUND) {
            fail_msg("deployment \"%s\" was not refused", bad[i]);
        }
        assert_null(req.path);
    }

    /* defaults: api_version, no key, base path kept */
    call_init(t, "azure2", "gpt-4o", SL_API_CHAT, "{\"model\":\"a\"}", false);
    req = build(t);
    assert_string_equal(req.path, "/x/openai/deployments/gpt-4o/chat/completions"
                                  "?api-version=2024-10-21");
    assert_null(header(t, &req, "api-key"));

    call_init(t, "azure", "gpt-4o", SL_API_MESSAGES, "{\"model\":\"a\"}", false);
    assert_int_equal(
        t->target.provider->ops->build_request(t->target.provider->ext, &t->call, &req),
        SL_EDENIED);
}


static void
test_azure_conf_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } table[] = {
        { "providers:\n  a: {kind: azure}\n", "needs a base_url" },
        { "providers:\n  a: {kind: azure, base_url: 'https://x', api_version: 'v 1'}\n",
          "api_version \"v 1\" must be" },
        { "providers:\n  a: {kind: azure, base_url: 'https://x', deployments: [a]}\n",
          "deployments must be a mapping" },
        { "providers:\n  a: {kind: azure, base_url: 'https://x', deployments: {m: 'a/b'}}\n",
          "deployment \"a/b\" must be" },
        { "providers:\n  a: {kind: azure, base_url: 'https://x', deployments: {m: '..'}}\n",
          "deployment \"..\" must be 1 to 64 of A-Z a-z 0-9 - . _, starting with a letter or "
          "digit" },
        { "providers:\n  a: {kind: azure, base_url: 'https://x', deployments: {m: '.x'}}\n",
          "deployment \".x\" must be" },
        { "providers:\n  a: {kind: azure, base_url: 'https://x', deployments: {m: [x]}}\n",
          "maps a model name to a deployment name" },
        { "providers:\n  a: {kind: azure, base_url: 'https://x', deployment: x}\n",
          "unknown key \"deployment\"" },
    };
    char err[512];

    (void) state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        sl_conf_t *conf = NULL;

        assert_int_equal(load(table[i].yaml, &conf, err, sizeof(err)), SL_ECONF);
        if (strstr(err, table[i].msg) == NULL) {
            fail_msg("got \"%s\", want \"%s\"", err, table[i].msg);
        }
    }
}


/* The credential is the call's (the driver picks one per attempt), not the provider's. */
static void
test_credential(void **state)
{
    static const sl_secret_t other = { "env:OTHER", "sk-other-credential", 19, false, "-" };
    test_ctx_t *t = *state;
    sl_upstream_req_t req;

    call_init(t, "groq", "llama", SL_API_CHAT, "{\"model\":\"a\"}", false);
    t->call.api_key = &other;
    req = build(t);
    assert_string_equal(header(t, &req, "authorization"), "Bearer sk-other-credential");
    call_init(t, "groq", "llama", SL_API_CHAT, "{\"model\":\"a\"}", false);
    t->call.api_key = NULL;
    req = build(t);
    assert_null(header(t, &req, "authorization"));

    call_init(t, "azure", "gpt-4o", SL_API_CHAT, "{\"model\":\"a\"}", false);
    t->call.api_key = &other;
    req = build(t);
    assert_string_equal(header(t, &req, "api-key"), "sk-other-credential");
    t->call.api_key = NULL;
    req = build(t);
    assert_null(header(t, &req, "api-key"));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test_setup_teardown(test_default_base_url, setup, teardown),
        cmocka_unit_test(test_vllm_needs_base_url),
        cmocka_unit_test_setup_teardown(test_quirks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_azure, setup, teardown),
        cmocka_unit_test(test_azure_conf_errors),
        cmocka_unit_test_setup_teardown(test_credential, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
