/*
 * Unit tests for core/http/headers.c, the policy of which client headers reach a
 * provider: the three classes, the Connection header's tokens, a provider's
 * own headers winning over the client's, forward_headers opting identity
 * headers in for one provider only, and the forward_headers key as the
 * configuration loader reads it (values and every error message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/http/headers.h"
#include "core/http/http.h"

#define TEST_ERR_MAX 1024

static sl_str_t str(const char *s);
static bool passes(const sl_provider_conf_t *p, const sl_http_header_t *in, size_t n,
                   const char *name);
static int load(const char *yaml, sl_conf_t **out, char *err, size_t errlen, char *path,
                size_t pathlen);
static void expect_error(const char *yaml, const char *msg);

/* What an OpenAI SDK behind a proxy sends, plus credentials and framing. */
static const sl_http_header_t client[] = {
    { { "Host", 4 }, { "gw", 2 } },
    { { "Authorization", 13 }, { "Bearer sk-client", 16 } },
    { { "Content-Type", 12 }, { "application/json", 16 } },
    { { "Content-Length", 14 }, { "2", 1 } },
    { { "OpenAI-Organization", 19 }, { "org-client", 10 } },
    { { "OpenAI-Project", 14 }, { "proj_client", 11 } },
    { { "X-Forwarded-For", 15 }, { "10.1.2.3", 8 } },
    { { "X-Forwarded-Host", 16 }, { "internal", 8 } },
    { { "Forwarded", 9 }, { "for=10.1.2.3", 12 } },
    { { "X-Real-IP", 9 }, { "10.1.2.3", 8 } },
    { { "Cookie", 6 }, { "session=abc", 11 } },
    { { "User-Agent", 10 }, { "OpenAI/JS 4.0", 13 } },
    { { "anthropic-beta", 14 }, { "tools-2024", 10 } },
    { { "x-stainless-lang", 16 }, { "js", 2 } },
    { { "X-Sluice-Cache", 14 }, { "hit", 3 } },
    { { "x-request-id", 12 }, { "abc", 3 } },
};

#define NCLIENT (sizeof(client) / sizeof(client[0]))


static sl_str_t
str(const char *s)
{
    return (sl_str_t){ s, strlen(s) };
}


static bool
passes(const sl_provider_conf_t *p, const sl_http_header_t *in, size_t n, const char *name)
{
    sl_http_header_t out[32];
    size_t k;

    assert_true(n <= 32);
    k = sl_headers_upstream(p, in, n, out);
    assert_true(k <= n);
    return sl_http_find_header(out, k, name) != NULL;
}


static void
test_classes(void **state)
{
    static const char *const never[] = {
        "authorization",
        "X-Api-Key",
        "api-key",
        "x-goog-api-key",
        "Cookie",
        "host",
        "Connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-authorization",
        "x-sluice-key",
        "X-SLUICE-CACHE",
        "x-request-id",
        "content-length",
        "content-type",
        "ocp-apim-subscription-key",
    };
    static const char *const opt_in[] = {
        "OpenAI-Organization",
        "openai-project",
        "X-Forwarded-For",
        "x-forwarded-proto",
        "X-Forwarded-Host",
        "Forwarded",
        "X-Real-IP",
        "true-client-ip",
        "CF-Connecting-IP",
        "via",
        "origin",
        "referer",
        "x-goog-user-project",
    };
    static const char *const pass[] = {
        "user-agent",  "anthropic-beta", "openai-beta", "x-stainless-os",
        "x-forwarded", "x-sluice",       "accept",      "x-team",
    };

    (void) state;
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        if (sl_headers_class(str(never[i])) != SL_HEADERS_NEVER) {
            fail_msg("%s: not in class never", never[i]);
        }
    }
    for (size_t i = 0; i < sizeof(opt_in) / sizeof(opt_in[0]); i++) {
        if (sl_headers_class(str(opt_in[i])) != SL_HEADERS_OPT_IN) {
            fail_msg("%s: not in class opt-in", opt_in[i]);
        }
    }
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        if (sl_headers_class(str(pass[i])) != SL_HEADERS_PASS) {
            fail_msg("%s: not in class pass", pass[i]);
        }
    }
}


/* The defect: identity and network headers reached the provider next to the gateway's key. */
static void
test_default_drops_identity(void **state)
{
    sl_provider_conf_t p;

    (void) state;
    memset(&p, 0, sizeof(p));
    assert_false(passes(&p, client, NCLIENT, "openai-organization"));
    assert_false(passes(&p, client, NCLIENT, "openai-project"));
    assert_false(passes(&p, client, NCLIENT, "x-forwarded-for"));
    assert_false(passes(&p, client, NCLIENT, "x-forwarded-host"));
    assert_false(passes(&p, client, NCLIENT, "forwarded"));
    assert_false(passes(&p, client, NCLIENT, "x-real-ip"));
    assert_false(passes(&p, client, NCLIENT, "cookie"));
    assert_false(passes(&p, client, NCLIENT, "authorization"));
    assert_false(passes(&p, client, NCLIENT, "host"));
    assert_false(passes(&p, client, NCLIENT, "content-length"));
    assert_false(passes(&p, client, NCLIENT, "x-sluice-cache"));
    assert_false(passes(&p, client, NCLIENT, "x-request-id"));
    assert_true(passes(&p, client, NCLIENT, "user-agent"));
    assert_true(passes(&p, client, NCLIENT, "anthropic-beta"));
    assert_true(passes(&p, client, NCLIENT, "x-stainless-lang"));
}


static void
test_forward_headers_opt_in(void **state)
{
    const char *fwd[] = { "OpenAI-Organization", "x-forwarded-for" };
    sl_provider_conf_t p;
    sl_http_header_t out[32];
    size_t k;

    (void) state;
    memset(&p, 0, sizeof(p));
    p.forward_headers = fwd;
    p.nforward_headers = 2;
    assert_true(passes(&p, client, NCLIENT, "openai-organization"));
    assert_true(passes(&p, client, NCLIENT, "x-forwarded-for"));
    /* only what is listed */
    assert_false(passes(&p, client, NCLIENT, "openai-project"));
    assert_false(passes(&p, client, NCLIENT, "x-forwarded-host"));
    assert_false(passes(&p, client, NCLIENT, "forwarded"));
    assert_false(passes(&p, client, NCLIENT, "authorization"));

    /* order and values are kept; nothing is copied */
    k = sl_headers_upstream(&p, client, NCLIENT, out);
    assert_int_equal(k, 5);
    assert_ptr_equal(out[0].name.p, client[4].name.p);
    assert_ptr_equal(out[0].value.p, client[4].value.p);
    assert_ptr_equal(out[1].name.p, client[6].name.p);
    assert_ptr_equal(out[2].name.p, client[11].name.p);
    assert_ptr_equal(out[4].name.p, client[13].name.p);
}


static void
test_connection_tokens(void **state)
{
    static const sl_http_header_t in[] = {
        { { "Connection", 10 }, { "keep-alive, X-Team ,Foo", 23 } },
        { { "x-team", 6 }, { "a", 1 } },
        { { "foo", 3 }, { "b", 1 } },
        { { "bar", 3 }, { "c", 1 } },
    };
    sl_provider_conf_t p;
    sl_str_t conn = str("keep-alive, X-Team ,Foo");

    (void) state;
    memset(&p, 0, sizeof(p));
    assert_false(passes(&p, in, 4, "connection"));
    assert_false(passes(&p, in, 4, "x-team"));
    assert_false(passes(&p, in, 4, "foo"));
    assert_true(passes(&p, in, 4, "bar"));
    assert_false(sl_headers_forwardable(&p, str("FOO"), &conn));
    assert_true(sl_headers_forwardable(&p, str("fo"), &conn));
    assert_true(sl_headers_forwardable(&p, str("foo"), NULL));
}


static void
test_provider_headers_win(void **state)
{
    sl_header_conf_t own[] = { { "OpenAI-Organization", "org-gateway" }, { "x-team", "ops" } };
    sl_provider_conf_t p;
    static const sl_http_header_t in[] = {
        { { "x-team", 6 }, { "client", 6 } },
        { { "openai-organization", 19 }, { "org-client", 10 } },
        { { "user-agent", 10 }, { "x", 1 } },
    };

    (void) state;
    memset(&p, 0, sizeof(p));
    p.headers = own;
    p.nheaders = 2;
    assert_false(passes(&p, in, 3, "x-team"));
    assert_false(passes(&p, in, 3, "openai-organization"));
    assert_true(passes(&p, in, 3, "user-agent"));
}


static int
load(const char *yaml, sl_conf_t **out, char *err, size_t errlen, char *path, size_t pathlen)
{
    int fd;
    int rc;

    snprintf(path, pathlen, "/tmp/sl-headers-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t) strlen(yaml));
    assert_int_equal(close(fd), 0);
    rc = sl_conf_load(path, out, err, errlen);
    unlink(path);
    return rc;
}


static void
expect_error(const char *yaml, const char *msg)
{
    char err[TEST_ERR_MAX], want[TEST_ERR_MAX], path[64];
    sl_conf_t *conf = NULL;
    int rc = load(yaml, &conf, err, sizeof(err), path, sizeof(path));

    if (rc == 0) {
        fail_msg("loaded, expected \"%s\" for:\n%s", msg, yaml);
    }
    assert_int_equal(rc, SL_ECONF);
    snprintf(want, sizeof(want), "%s:%s", path, msg);
    assert_string_equal(err, want);
}


static void
test_conf_forward_headers(void **state)
{
    char err[TEST_ERR_MAX], path[64];
    sl_conf_t *conf = NULL;
    const sl_provider_conf_t *p;
    int rc;

    (void) state;
    rc = load("providers:\n"
              "  a: {kind: openai, base_url: 'http://127.0.0.1:9/v1',\n"
              "      forward_headers: [OpenAI-Organization, x-forwarded-for, X-Team]}\n"
              "  b: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}\n",
              &conf, err, sizeof(err), path, sizeof(path));
    if (rc != 0) {
        fail_msg("%s", err);
    }
    p = sl_conf_provider(conf, "a", 1);
    assert_non_null(p);
    assert_int_equal(p->nforward_headers, 3);
    assert_string_equal(p->forward_headers[0], "OpenAI-Organization");
    assert_string_equal(p->forward_headers[1], "x-forwarded-for");
    assert_string_equal(p->forward_headers[2], "X-Team");
    assert_true(sl_headers_forwardable(p, str("openai-organization"), NULL));
    assert_false(sl_headers_forwardable(p, str("openai-project"), NULL));
    p = sl_conf_provider(conf, "b", 1);
    assert_non_null(p);
    assert_int_equal(p->nforward_headers, 0);
    assert_false(sl_headers_forwardable(p, str("openai-organization"), NULL));
    sl_conf_destroy(conf);
}


static void
test_conf_forward_headers_errors(void **state)
{
    (void) state;
    expect_error(
        "providers:\n"
        "  a: {kind: openai, base_url: 'http://127.0.0.1:9', forward_headers: x-real-ip}\n",
        "2:70: forward_headers must be a list of header names, not a scalar");
    expect_error("providers:\n"
                 "  a: {kind: openai, base_url: 'http://127.0.0.1:9',\n"
                 "      forward_headers: [Authorization]}\n",
                 "3:25: header \"Authorization\" is never forwarded (a credential, hop-by-hop, "
                 "or set by sluice itself)");
    expect_error("providers:\n"
                 "  a: {kind: openai, base_url: 'http://127.0.0.1:9',\n"
                 "      forward_headers: [x-real-ip, cookie]}\n",
                 "3:36: header \"cookie\" is never forwarded (a credential, hop-by-hop, "
                 "or set by sluice itself)");
    expect_error("providers:\n"
                 "  a: {kind: openai, base_url: 'http://127.0.0.1:9',\n"
                 "      forward_headers: [x-sluice-model]}\n",
                 "3:25: header \"x-sluice-model\" is never forwarded (a credential, hop-by-hop, "
                 "or set by sluice itself)");
    expect_error("providers:\n"
                 "  a: {kind: openai, base_url: 'http://127.0.0.1:9',\n"
                 "      forward_headers: [\"bad header\"]}\n",
                 "3:25: invalid header name \"bad header\"");
    expect_error("providers:\n"
                 "  a: {kind: openai, base_url: 'http://127.0.0.1:9',\n"
                 "      forward_headers: [Via, via]}\n",
                 "3:30: duplicate header \"via\" in forward_headers");
    expect_error("providers:\n"
                 "  a: {kind: openai, base_url: 'http://127.0.0.1:9',\n"
                 "      forward_headers: [[Via]]}\n",
                 "3:25: forward_headers entry must be a scalar value, not a list");
    expect_error("providers:\n"
                 "  a: {kind: openai, base_url: 'http://127.0.0.1:9',\n"
                 "      headers: {OpenAI-Organization: org-gw},\n"
                 "      forward_headers: [openai-organization]}\n",
                 "4:25: header \"openai-organization\" is set by this provider's headers: and "
                 "cannot also be forwarded from the client");
}


/*
 * The header-name helpers the hot path leans on: sl_http_is_token against
 * RFC 9110's tchar for every byte, sl_http_is_hop_by_hop and
 * sl_http_find_header case-insensitive and exact in length.
 */
static void
test_http_name_helpers(void **state)
{
    static const sl_http_header_t hs[] = {
        { { "Content-Typ", 11 }, { "a", 1 } },
        { { "Content-Type", 12 }, { "b", 1 } },
        { { "content-type2", 13 }, { "c", 1 } },
        { { "X-Api-Key", 9 }, { "d", 1 } },
    };
    char one[2] = { 0, 0 };

    (void) state;
    for (int ch = 0; ch < 256; ch++) {
        bool want = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                    || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);

        one[0] = (char) ch;
        assert_int_equal(sl_http_is_token((sl_str_t){ one, 1 }), want);
    }
    assert_true(sl_http_is_token(sl_str_lit("X-Sluice-Model")));
    assert_false(sl_http_is_token(sl_str_lit("bad name")));
    assert_false(sl_http_is_token(sl_str_lit("")));

    assert_true(sl_http_is_hop_by_hop(sl_str_lit("Connection")));
    assert_true(sl_http_is_hop_by_hop(sl_str_lit("TE")));
    assert_true(sl_http_is_hop_by_hop(sl_str_lit("Proxy-Authorization")));
    assert_false(sl_http_is_hop_by_hop(sl_str_lit("Connectio")));
    assert_false(sl_http_is_hop_by_hop(sl_str_lit("Connections")));
    assert_false(sl_http_is_hop_by_hop(sl_str_lit("tee")));

    assert_ptr_equal(sl_http_find_header(hs, 4, "content-type"), &hs[1]);
    assert_ptr_equal(sl_http_find_header(hs, 4, "x-api-key"), &hs[3]);
    assert_null(sl_http_find_header(hs, 4, "content"));
    assert_null(sl_http_find_header(hs, 3, "x-api-key"));
    assert_true(sl_str_caseeq_lit(sl_str_lit("Content-Length"), "content-length"));
    assert_false(sl_str_caseeq_lit(sl_str_lit("Content-Lengths"), "content-length"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_default_drops_identity),
        cmocka_unit_test(test_forward_headers_opt_in),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_provider_headers_win),
        cmocka_unit_test(test_conf_forward_headers),
        cmocka_unit_test(test_conf_forward_headers_errors),
        cmocka_unit_test(test_http_name_helpers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
