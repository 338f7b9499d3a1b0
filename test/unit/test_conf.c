/*
 * Unit tests for core/conf/conf*.c: the value parsers (durations, sizes, listen
 * addresses), a configuration using every key, the defaults, the annotated
 * etc/sluice.yaml, the adapter hook helpers, and every error path with its
 * exact file:line:col message. Each test writes its YAML to a mkstemp()
 * file under /tmp and loads it; secrets come from variables and files the
 * test creates, and no message may ever contain a secret's value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "providers/registry.h"
#include "testutil.h"

#define TEST_ERR_MAX 1024

typedef struct test_ext {
    const char *deployment;
    uint64_t api_version;
    bool flag;
    sl_secret_t extra_key;
    uint64_t poll;
    size_t chunk;
    bool nested;
    const char *provider_name;
    const char *provider_host;
} test_ext_t;

typedef struct test_error {
    const char *yaml;
    const char *msg; /* after "FILE:" */
} test_error_t;

static char *tmp_write(const char *text, size_t len);
static int load(const char *yaml, sl_conf_t **out, char *err, size_t errlen);
static void expect_error(const char *yaml, const char *msg);
static void expect_errors(const test_error_t *t, size_t n);
static void expect_no_secret(const char *yaml, const char *needle);
static const sl_provider_ops_t *test_find(const char *kind);
static int test_conf_parse(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf);
static void assert_v4(const sl_listen_conf_t *l, const char *addr, unsigned port);
static void assert_v6(const sl_listen_conf_t *l, const char *addr, unsigned port);
static void assert_routing_defaults(const sl_routing_conf_t *r);

static const sl_provider_ops_t test_ops = {
    .kind = "testkind",
    .conf_parse = test_conf_parse,
};

static char last_path[64];


static char *
tmp_write(const char *text, size_t len)
{
    char *path = strdup("/tmp/sl-conf-XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    assert_int_equal(close(fd), 0);
    return path;
}


static int
load(const char *yaml, sl_conf_t **out, char *err, size_t errlen)
{
    char *path = tmp_write(yaml, strlen(yaml));
    int rc;

    snprintf(last_path, sizeof(last_path), "%s", path);
    rc = sl_conf_load_with(path, test_find, out, err, errlen);
    unlink(path);
    free(path);
    return rc;
}


static void
expect_error(const char *yaml, const char *msg)
{
    char err[TEST_ERR_MAX], want[TEST_ERR_MAX];
    sl_conf_t *conf = NULL;
    int rc;

    rc = load(yaml, &conf, err, sizeof(err));
    if (rc == 0) {
        fail_msg("loaded, expected \"%s\" for:\n%s", msg, yaml);
    }
    assert_int_equal(rc, SL_ECONF);
    assert_null(conf);
    snprintf(want, sizeof(want), "%s:%s", last_path, msg);
    assert_string_equal(err, want);
    assert_null(strchr(err, '\n'));
}


static void
expect_errors(const test_error_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        expect_error(t[i].yaml, t[i].msg);
    }
}


/* The load fails, and nothing of the secret shows in the message. */
static void
expect_no_secret(const char *yaml, const char *needle)
{
    char err[TEST_ERR_MAX];
    sl_conf_t *conf = NULL;

    assert_int_equal(load(yaml, &conf, err, sizeof(err)), SL_ECONF);
    assert_true(strlen(err) > strlen(last_path) + 2);
    if (strstr(err, needle) != NULL) {
        fail_msg("secret leaked into \"%s\"", err);
    }
}


static const sl_provider_ops_t *
test_find(const char *kind)
{
    if (strcmp(kind, "testkind") == 0) {
        return &test_ops;
    }
    return sl_provider_find(kind);
}


static int
test_conf_parse(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf)
{
    test_ext_t *ext = sl_pcalloc(sl_conf_pool(cx), sizeof(test_ext_t));
    const sl_conf_node_t *n;
    const char *s;

    ext->api_version = 1;
    ext->poll = 5000;
    ext->chunk = 4096;
    if (sl_conf_get_str(cx, node, "deployment", &ext->deployment) != 0
        || sl_conf_get_uint(cx, node, "api_version", 1, 100, &ext->api_version) != 0
        || sl_conf_get_bool(cx, node, "flag", &ext->flag) != 0
        || sl_conf_get_secret(cx, node, "extra_key", &ext->extra_key) != 0
        || sl_conf_get_duration(cx, node, "poll", 1, 60000, &ext->poll) != 0
        || sl_conf_get_size(cx, node, "chunk", 1, 1024 * 1024, &ext->chunk) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, node, "mode");
    if (n != NULL) {
        s = sl_conf_node_str(n, NULL);
        if (s == NULL || strcmp(s, "bad") == 0) {
            return sl_conf_errorf(cx, n, "mode \"%s\" is not supported", s != NULL ? s : "?");
        }
    }
    n = sl_conf_get(cx, node, "opts");
    if (n != NULL) {
        if (sl_conf_get_bool(cx, n, "nested", &ext->nested) != 0
            || sl_conf_check_unknown(cx, n, "opts") != 0) {
            return SL_ECONF;
        }
    }
    if (sl_conf_get(cx, node, "silent_fail") != NULL) {
        return SL_ECONF;
    }
    ext->provider_name = sl_conf_current_provider(cx)->name;
    ext->provider_host = sl_conf_current_provider(cx)->host;
    *conf = ext;
    return 0;
}


static void
assert_v4(const sl_listen_conf_t *l, const char *addr, unsigned port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *) &l->addr;
    char buf[INET_ADDRSTRLEN];

    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(l->addrlen, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(sin->sin_port), port);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
    assert_string_equal(buf, addr);
}


static void
assert_v6(const sl_listen_conf_t *l, const char *addr, unsigned port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &l->addr;
    char buf[INET6_ADDRSTRLEN];

    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(l->addrlen, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(sin6->sin6_port), port);
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
    assert_string_equal(buf, addr);
}


static void
assert_routing_defaults(const sl_routing_conf_t *r)
{
    assert_int_equal(r->retries, 1);
    assert_int_equal(r->backoff, 200);
    assert_int_equal(r->max_wait, 5000);
    assert_int_equal(r->retry_on, SL_RETRY_ON_ALL);
    assert_int_equal(r->first_token_timeout, 60000);
    assert_int_equal(r->breaker_failures, 5);
    assert_int_equal(r->breaker_cooldown, 30000);
    assert_int_equal(r->retry_budget, 200);
    assert_int_equal(r->deadline, 0);
    assert_int_equal(r->strategy, SL_STRATEGY_FALLBACK);
    assert_int_equal(r->max_latency, 0);
}


static void
test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        { "750ms", 750 },
        { "0", 0 },
        { "10", 10000 },
        { "10s", 10000 },
        { "5m", 300000 },
        { "1h", 3600000 },
        { "2d", 172800000 },
        { "007s", 7000 },
        { "18446744073709551615ms", UINT64_MAX },
        { "18446744073709551s", 18446744073709551000ULL },
    };
    static const char *const bad[] = {
        "",
        "s",
        "-1s",
        "+1s",
        "1.5s",
        "10 s",
        " 10s",
        "10s ",
        "10S",
        "10sec",
        "1h30m",
        "abc",
        "10x",
        "ms5",
        "18446744073709551616ms", /* digits overflow */
        "18446744073709552s",     /* overflow when scaled */
        "213503982334602d",
    };
    uint64_t ms;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ms = 1;
        assert_int_equal(sl_conf_parse_duration(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 42;
        if (sl_conf_parse_duration(bad[i], &ms) != SL_ECONF) {
            fail_msg("duration \"%s\" accepted", bad[i]);
        }
        assert_int_equal(ms, 42);
    }
    assert_int_equal(sl_conf_parse_duration(NULL, &ms), SL_ECONF);
}


static void
test_parse_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } ok[] = {
        { "0", 0 },
        { "512", 512 },
        { "512B", 512 },
        { "64KiB", 65536 },
        { "8MiB", 8388608 },
        { "1GiB", 1073741824 },
        { "1TiB", 1099511627776ULL },
        { "10KB", 10000 },
        { "10kB", 10000 },
        { "5MB", 5000000 },
        { "2GB", 2000000000 },
        { "3TB", 3000000000000ULL },
        { "18446744073709551615", UINT64_MAX },
        { "16777215TiB", 16777215ULL << 40 },
    };
    static const char *const bad[] = {
        "",
        "KiB",
        "-1",
        "1.5MiB",
        "1 KiB",
        "1kib",
        "1K",
        "1M",
        "1KIB",
        "1PiB",
        "abc",
        "1Ki",
        " 1",
        "1B ",
        "18446744073709551616", /* digits overflow */
        "16777216TiB",          /* overflow when scaled */
        "18446744073709552KB",
    };
    size_t bytes;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        bytes = 1;
        assert_int_equal(sl_conf_parse_size(ok[i].s, &bytes), 0);
        assert_int_equal(bytes, ok[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bytes = 42;
        if (sl_conf_parse_size(bad[i], &bytes) != SL_ECONF) {
            fail_msg("size \"%s\" accepted", bad[i]);
        }
        assert_int_equal(bytes, 42);
    }
}


static void
test_parse_listen(void **state)
{
    static const struct {
        const char *s;
        int family;
        const char *addr;
        unsigned port;
    } ok[] = {
        { "127.0.0.1:4141", AF_INET, "127.0.0.1", 4141 },
        { "0.0.0.0:80", AF_INET, "0.0.0.0", 80 },
        { ":4141", AF_INET, "0.0.0.0", 4141 },
        { "4141", AF_INET, "0.0.0.0", 4141 },
        { "1", AF_INET, "0.0.0.0", 1 },
        { "65535", AF_INET, "0.0.0.0", 65535 },
        { "localhost:8080", AF_INET, "127.0.0.1", 8080 },
        { "10.1.2.3:9", AF_INET, "10.1.2.3", 9 },
        { "[::1]:4141", AF_INET6, "::1", 4141 },
        { "[::]:443", AF_INET6, "::", 443 },
        { "[2001:db8::7]:8443", AF_INET6, "2001:db8::7", 8443 },
    };
    static const char *const bad[] = {
        "",
        "0",
        ":0",
        "65536",
        "99999999999999999999999",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:x",
        "127.0.0.1:-1",
        "127.0.0.1:80 ",
        "256.0.0.1:80",
        "example.com:80",
        "::1:4141",
        "[::1]",
        "[::1]4141",
        "[::1:4141",
        "[]:4141",
        "[127.0.0.1]:80",
        "[zz::1]:80",
        "host:",
    };
    sl_listen_conf_t l;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memset(&l, 0xff, sizeof(l));
        assert_int_equal(sl_conf_parse_listen(ok[i].s, &l), 0);
        assert_ptr_equal(l.text, ok[i].s);
        if (ok[i].family == AF_INET) {
            assert_v4(&l, ok[i].addr, ok[i].port);
        } else {
            assert_v6(&l, ok[i].addr, ok[i].port);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_conf_parse_listen(bad[i], &l) != SL_ECONF) {
            fail_msg("listen \"%s\" accepted", bad[i]);
        }
    }
}


/* Every key set to a non-default value, and every value checked. */
static void
test_full(void **state)
{
    char yaml[4096], err[TEST_ERR_MAX];
    char *keyfile = tmp_write("sk-file-key \r\n\n", 15);
    char *cafile = tmp_write("-----BEGIN CERTIFICATE-----\n", 28);
    static const char prices[] = "models:\n  openai/gpt-4o-mini: {input: 0.15, output: 0.60}\n";
    char *pricefile = tmp_write(prices, sizeof(prices) - 1);
    const sl_provider_conf_t *p;
    const sl_model_conf_t *m;
    sl_conf_t *conf = NULL;

    setenv("SL_TEST_KEY1", "sk-env-one", 1);
    setenv("SL_TEST_ADMIN", "admin-secret", 1);
    snprintf(yaml, sizeof(yaml),
             "server:\n"
             "  listen: [\"127.0.0.1:8080\", \"[::1]:8081\", \":8082\", \"8083\", localhost:8084]\n"
             "  admin_listen: \"127.0.0.1:9090\"\n"
             "  workers: 3\n"
             "  reuse_port: false\n"
             "  backlog: 128\n"
             "  pid_file: /run/sluice.pid\n"
             "  error_log: /var/log/sluice/error.log\n"
             "  log_level: debug\n"
             "  access_log: /var/log/sluice/access.log\n"
             "  max_connections: 100\n"
             "  header_timeout: 750ms\n"
             "  body_timeout: 2m\n"
             "  keepalive_timeout: 1h\n"
             "  send_timeout: 45\n"
             "  drain_timeout: 1d\n"
             "  stop_timeout: 3s\n"
             "  max_body: 64KiB\n"
             "  max_header_size: 10KB\n"
             "  max_headers: 50\n"
             "  keepalive_requests: 7\n"
             "  cors:\n"
             "    allow_origins: [\"*\", https://app.example.com, \"http://localhost:3000\"]\n"
             "    max_age: 2m\n"
             "auth:\n"
             "  static_keys: [env:SL_TEST_KEY1, \"file:%s\"]\n"
             "  admin_key: env:SL_TEST_ADMIN\n"
             "storage:\n"
             "  path: /srv/sluice/db\n"
             "  map_size: 2GiB\n"
             "  sync_interval: 250ms\n"
             "pricing: %s\n"
             "models:\n"
             "  gpt:\n"
             "    targets: [openai/gpt-4o-mini, {target: azure/deploy/gpt-4o, weight: 5}]\n"
             "    strategy: weighted\n"
             "  cheap: {targets: [local/llama3.2], strategy: cheapest}\n"
             "  quick: {targets: [local/a, openai/b], strategy: fastest}\n"
             "  plain: {targets: [openai/x]}\n"
             "  pinned: {targets: [{target: local/q}], strategy: fallback}\n"
             "providers:\n"
             "  openai:\n"
             "    kind: openai\n"
             "    base_url: https://api.openai.com/v1/\n"
             "    api_key: env:SL_TEST_KEY1\n"
             "    ca_file: %s\n"
             "    tls_verify: false\n"
             "    allow_direct: no\n"
             "    connect_timeout: 5s\n"
             "    first_byte_timeout: 1m\n"
             "    idle_timeout: 30s\n"
             "    total_timeout: 2h\n"
             "    keepalive_timeout: 90s\n"
             "    max_connections: 10\n"
             "    max_idle: 0\n"
             "    headers: {X-Custom: value, OpenAI-Organization: \"org-1\", X-Empty: \"\"}\n"
             "  azure:\n"
             "    kind: openai\n"
             "    base_url: \"http://[::1]:8443/openai\"\n"
             "    api_key: \"file:%s\"\n"
             "  local:\n"
             "    kind: openai\n"
             "    base_url: http://127.0.0.1:11434\n",
             keyfile, pricefile, cafile, keyfile);

    assert_int_equal(load(yaml, &conf, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_non_null(conf);
    assert_string_equal(conf->file, last_path);

    assert_int_equal(conf->nlisten, 5);
    assert_v4(&conf->listen[0], "127.0.0.1", 8080);
    assert_string_equal(conf->listen[0].text, "127.0.0.1:8080");
    assert_v6(&conf->listen[1], "::1", 8081);
    assert_string_equal(conf->listen[1].text, "[::1]:8081");
    assert_v4(&conf->listen[2], "0.0.0.0", 8082);
    assert_v4(&conf->listen[3], "0.0.0.0", 8083);
    assert_v4(&conf->listen[4], "127.0.0.1", 8084);
    assert_string_equal(conf->listen[4].text, "localhost:8084");
    assert_non_null(conf->admin_listen);
    assert_v4(conf->admin_listen, "127.0.0.1", 9090);
    assert_string_equal(conf->admin_listen->text, "127.0.0.1:9090");
    assert_int_equal(conf->workers, 3);
    assert_false(conf->reuse_port);
    assert_int_equal(conf->backlog, 128);
    assert_string_equal(conf->pid_file, "/run/sluice.pid");
    assert_string_equal(conf->error_log, "/var/log/sluice/error.log");
    assert_int_equal(conf->log_level, SL_LOG_DEBUG);
    assert_string_equal(conf->access_log, "/var/log/sluice/access.log");
    assert_int_equal(conf->max_connections, 100);
    assert_int_equal(conf->header_timeout, 750);
    assert_int_equal(conf->body_timeout, 120000);
    assert_int_equal(conf->keepalive_timeout, 3600000);
    assert_int_equal(conf->send_timeout, 45000);
    assert_int_equal(conf->drain_timeout, 86400000);
    assert_int_equal(conf->stop_timeout, 3000);
    assert_int_equal(conf->max_body, 65536);
    assert_int_equal(conf->max_header_size, 10000);
    assert_int_equal(conf->max_headers, 50);
    assert_int_equal(conf->keepalive_requests, 7);
    assert_true(conf->cors.enabled);
    assert_int_equal(conf->cors.norigins, 3);
    assert_string_equal(conf->cors.origins[0], "*");
    assert_string_equal(conf->cors.origins[1], "https://app.example.com");
    assert_string_equal(conf->cors.origins[2], "http://localhost:3000");
    assert_int_equal(conf->cors.max_age, 120);

    assert_int_equal(conf->nstatic_keys, 2);
    assert_string_equal(conf->static_keys[0].ref, "env:SL_TEST_KEY1");
    assert_string_equal(conf->static_keys[0].value, "sk-env-one");
    assert_int_equal(conf->static_keys[0].len, 10);
    assert_int_equal(strncmp(conf->static_keys[1].ref, "file:/tmp/sl-conf-", 18), 0);
    assert_string_equal(conf->static_keys[1].value, "sk-file-key");
    assert_int_equal(conf->static_keys[1].len, 11);
    assert_string_equal(conf->admin_key.ref, "env:SL_TEST_ADMIN");
    assert_string_equal(conf->admin_key.value, "admin-secret");
    assert_int_equal(conf->admin_key.len, 12);

    assert_string_equal(conf->storage_path, "/srv/sluice/db");
    assert_int_equal(conf->storage_map_size, 2ULL << 30);
    assert_int_equal(conf->storage_sync_interval, 250);
    assert_string_equal(conf->pricing_file, pricefile);
    assert_non_null(conf->pricing);

    assert_int_equal(conf->nproviders, 3);
    p = &conf->providers[0];
    assert_string_equal(p->name, "openai");
    assert_string_equal(p->kind, "openai");
    assert_ptr_equal(p->ops, sl_provider_find("openai"));
    assert_null(p->ext);
    assert_string_equal(p->base_url, "https://api.openai.com/v1");
    assert_true(p->tls);
    assert_string_equal(p->host, "api.openai.com");
    assert_int_equal(p->port, 443);
    assert_string_equal(p->host_header, "api.openai.com");
    assert_string_equal(p->base_path, "/v1");
    assert_string_equal(p->api_key.ref, "env:SL_TEST_KEY1");
    assert_string_equal(p->api_key.value, "sk-env-one");
    assert_int_equal(p->api_key.len, 10);
    assert_string_equal(p->ca_file, cafile);
    assert_false(p->tls_verify);
    assert_false(p->allow_direct);
    assert_int_equal(p->connect_timeout, 5000);
    assert_int_equal(p->first_byte_timeout, 60000);
    assert_int_equal(p->idle_timeout, 30000);
    assert_int_equal(p->total_timeout, 7200000);
    assert_int_equal(p->keepalive_timeout, 90000);
    assert_int_equal(p->max_connections, 10);
    assert_int_equal(p->max_idle, 0);
    assert_int_equal(p->nheaders, 3);
    assert_string_equal(p->headers[0].name, "X-Custom");
    assert_string_equal(p->headers[0].value, "value");
    assert_string_equal(p->headers[1].name, "OpenAI-Organization");
    assert_string_equal(p->headers[1].value, "org-1");
    assert_string_equal(p->headers[2].name, "X-Empty");
    assert_string_equal(p->headers[2].value, "");

    p = &conf->providers[1];
    assert_string_equal(p->name, "azure");
    assert_string_equal(p->base_url, "http://[::1]:8443/openai");
    assert_false(p->tls);
    assert_string_equal(p->host, "::1");
    assert_int_equal(p->port, 8443);
    assert_string_equal(p->host_header, "[::1]:8443");
    assert_string_equal(p->base_path, "/openai");
    assert_string_equal(p->api_key.value, "sk-file-key");
    assert_null(p->ca_file);

    p = &conf->providers[2];
    assert_string_equal(p->name, "local");
    assert_string_equal(p->base_url, "http://127.0.0.1:11434");
    assert_string_equal(p->host, "127.0.0.1");
    assert_int_equal(p->port, 11434);
    assert_string_equal(p->host_header, "127.0.0.1:11434");
    assert_string_equal(p->base_path, "");
    assert_null(p->api_key.value);
    assert_null(p->api_key.ref);

    assert_int_equal(conf->nmodels, 5);
    m = &conf->models[0];
    assert_string_equal(m->name, "gpt");
    assert_int_equal(m->strategy, SL_STRATEGY_WEIGHTED);
    assert_int_equal(m->ntargets, 2);
    assert_ptr_equal(m->targets[0].provider, &conf->providers[0]);
    assert_string_equal(m->targets[0].model, "gpt-4o-mini");
    assert_int_equal(m->targets[0].weight, 1);
    assert_ptr_equal(m->targets[1].provider, &conf->providers[1]);
    assert_string_equal(m->targets[1].model, "deploy/gpt-4o");
    assert_int_equal(m->targets[1].weight, 5);
    m = &conf->models[1];
    assert_string_equal(m->name, "cheap");
    assert_int_equal(m->strategy, SL_STRATEGY_CHEAPEST);
    assert_ptr_equal(m->targets[0].provider, &conf->providers[2]);
    assert_string_equal(m->targets[0].model, "llama3.2");
    assert_int_equal(conf->models[2].strategy, SL_STRATEGY_FASTEST);
    assert_int_equal(conf->models[2].ntargets, 2);
    assert_int_equal(conf->models[3].strategy, SL_STRATEGY_FALLBACK);
    assert_int_equal(conf->models[4].strategy, SL_STRATEGY_FALLBACK);
    assert_int_equal(conf->models[4].targets[0].weight, 1);
    assert_string_equal(conf->models[4].targets[0].model, "q");

    sl_conf_destroy(conf);
    unlink(keyfile);
    unlink(cafile);
    unlink(pricefile);
    free(pricefile);
    free(keyfile);
    free(cafile);
}


static void
test_defaults(void **state)
{
    static const char *const minimal[] = {
        "",
        "# nothing but a comment\n",
        "server:\nauth:\nstorage:\nproviders:\nmodels:\npricing:\n",
        "server: {}\nauth: ~\nstorage: null\nproviders: {}\nmodels: {}\n",
        "server:\n  admin_listen:\n  access_log: ~\n  cors:\n",
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char err[TEST_ERR_MAX];
    sl_conf_t *conf;

    for (size_t i = 0; i < sizeof(minimal) / sizeof(minimal[0]); i++) {
        conf = NULL;
        if (load(minimal[i], &conf, err, sizeof(err)) != 0) {
            fail_msg("%s", err);
        }
        assert_non_null(conf);
        assert_int_equal(conf->nlisten, 1);
        assert_v4(&conf->listen[0], "127.0.0.1", 4141);
        assert_string_equal(conf->listen[0].text, "127.0.0.1:4141");
        assert_null(conf->admin_listen);
        assert_int_equal(conf->workers, cpus < 1 ? 1 : (cpus > 256 ? 256 : cpus));
        assert_true(conf->workers >= 1);
        assert_true(conf->reuse_port);
        assert_int_equal(conf->backlog, 511);
        assert_string_equal(conf->pid_file, "var/sluice.pid");
        assert_string_equal(conf->error_log, "stderr");
        assert_int_equal(conf->log_level, SL_LOG_NOTICE);
        assert_null(conf->access_log);
        assert_int_equal(conf->max_connections, 4096);
        assert_int_equal(conf->header_timeout, 10000);
        assert_int_equal(conf->body_timeout, 30000);
        assert_int_equal(conf->keepalive_timeout, 75000);
        assert_int_equal(conf->send_timeout, 60000);
        assert_int_equal(conf->drain_timeout, 30000);
        assert_int_equal(conf->stop_timeout, 5000);
        assert_int_equal(conf->max_body, 8 * 1024 * 1024);
        assert_int_equal(conf->max_header_size, 32 * 1024);
        assert_int_equal(conf->max_headers, 100);
        assert_int_equal(conf->keepalive_requests, 1000);
        assert_false(conf->cors.enabled);
        assert_int_equal(conf->cors.norigins, 0);
        assert_int_equal(conf->nstatic_keys, 0);
        assert_null(conf->admin_key.value);
        assert_string_equal(conf->storage_path, "var/");
        assert_int_equal(conf->storage_map_size, 256ULL << 20);
        assert_int_equal(conf->storage_sync_interval, 1000);
        assert_null(conf->pricing_file);
        assert_int_equal(conf->nproviders, 0);
        assert_int_equal(conf->nmodels, 0);
        assert_routing_defaults(&conf->routing);
        sl_conf_destroy(conf);
    }

    /* provider defaults, and workers: auto, access_log: off, cors max_age default */
    conf = NULL;
    assert_int_equal(load("server:\n"
                          "  workers: auto\n"
                          "  access_log: \"off\"\n"
                          "  listen: \"[::1]:4141\"\n"
                          "  cors: {allow_origins: [\"*\"]}\n"
                          "providers:\n"
                          "  p: {kind: openai, base_url: \"HTTPS://example.com:443/\"}\n",
                          &conf, err, sizeof(err)),
                     0);
    assert_int_equal(conf->workers, cpus < 1 ? 1 : (cpus > 256 ? 256 : cpus));
    assert_null(conf->access_log);
    assert_int_equal(conf->nlisten, 1);
    assert_v6(&conf->listen[0], "::1", 4141);
    assert_true(conf->cors.enabled);
    assert_int_equal(conf->cors.max_age, 600);
    assert_int_equal(conf->nproviders, 1);
    assert_true(conf->providers[0].tls);
    assert_int_equal(conf->providers[0].port, 443);
    assert_string_equal(conf->providers[0].host_header, "example.com");
    assert_string_equal(conf->providers[0].base_url, "HTTPS://example.com:443");
    assert_string_equal(conf->providers[0].base_path, "");
    assert_null(conf->providers[0].api_key.value);
    assert_null(conf->providers[0].ca_file);
    assert_true(conf->providers[0].tls_verify);
    assert_true(conf->providers[0].allow_direct);
    assert_int_equal(conf->providers[0].connect_timeout, 10000);
    assert_int_equal(conf->providers[0].first_byte_timeout, 300000);
    assert_int_equal(conf->providers[0].idle_timeout, 120000);
    assert_int_equal(conf->providers[0].total_timeout, 600000);
    assert_int_equal(conf->providers[0].keepalive_timeout, 60000);
    assert_int_equal(conf->providers[0].max_connections, 256);
    assert_int_equal(conf->providers[0].max_idle, 64);
    assert_int_equal(conf->providers[0].nheaders, 0);
    assert_null(conf->providers[0].api_keys);
    assert_int_equal(conf->providers[0].napi_keys, 0);
    sl_conf_destroy(conf);
}


static void
test_base_urls(void **state)
{
    static const struct {
        const char *url;
        bool tls;
        const char *host;
        unsigned port;
        const char *host_header;
        const char *base_path;
        const char *base_url;
    } ok[] = {
        { "https://api.openai.com/v1", true, "api.openai.com", 443, "api.openai.com", "/v1",
          "https://api.openai.com/v1" },
        { "http://example.com", false, "example.com", 80, "example.com", "", "http://example.com" },
        { "http://example.com:80/", false, "example.com", 80, "example.com", "",
          "http://example.com:80" },
        { "https://h:8443/a/b//", true, "h", 8443, "h:8443", "/a/b", "https://h:8443/a/b" },
        { "http://[::1]/v1", false, "::1", 80, "[::1]", "/v1", "http://[::1]/v1" },
        { "https://[2001:db8::1]:9000", true, "2001:db8::1", 9000, "[2001:db8::1]:9000", "",
          "https://[2001:db8::1]:9000" },
        { "http://10.0.0.1:8080/openai/deployments", false, "10.0.0.1", 8080, "10.0.0.1:8080",
          "/openai/deployments", "http://10.0.0.1:8080/openai/deployments" },
    };
    char yaml[512], err[TEST_ERR_MAX];
    const sl_provider_conf_t *p;
    sl_conf_t *conf;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        conf = NULL;
        snprintf(yaml, sizeof(yaml), "providers:\n  p:\n    kind: openai\n    base_url: \"%s\"\n",
                 ok[i].url);
        if (load(yaml, &conf, err, sizeof(err)) != 0) {
            fail_msg("%s: %s", ok[i].url, err);
        }
        p = &conf->providers[0];
        assert_int_equal(p->tls, ok[i].tls);
        assert_string_equal(p->host, ok[i].host);
        assert_int_equal(p->port, ok[i].port);
        assert_string_equal(p->host_header, ok[i].host_header);
        assert_string_equal(p->base_path, ok[i].base_path);
        assert_string_equal(p->base_url, ok[i].base_url);
        sl_conf_destroy(conf);
    }
}


/* etc/sluice.yaml loads with no environment, given the key file the run script creates. */
static void
test_reference_config(void **state)
{
    const char *srcdir = getenv("SL_TEST_SRCDIR");
    char path[2 * PATH_MAX + 64], file[PATH_MAX + 32], cwd[PATH_MAX], prices[2 * PATH_MAX + 64],
        dir[] = "/tmp/sl-conf-ref-XXXXXX";
    char err[TEST_ERR_MAX];
    const sl_model_conf_t *m;
    sl_conf_t *conf = NULL;
    FILE *fp;
    int rc;

    if (srcdir == NULL) {
        srcdir = "test";
    }
    /* absolute, because the load runs from a scratch directory */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(file, sizeof(file), "%s/../etc/sluice.yaml", srcdir);
    if (file[0] == '/') {
        snprintf(path, sizeof(path), "%s", file);
    } else {
        snprintf(path, sizeof(path), "%s/%s", cwd, file);
    }
    assert_int_equal(access(path, R_OK), 0);
    /* pricing: etc/pricing.yaml is relative to the cwd: link the reference table there */
    snprintf(prices, sizeof(prices), "%.*s/pricing.yaml", (int) (strlen(path) - 12), path);
    assert_int_equal(access(prices, R_OK), 0);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(mkdir("var", 0700), 0);
    assert_int_equal(mkdir("etc", 0700), 0);
    assert_int_equal(symlink(prices, "etc/pricing.yaml"), 0);
    fp = fopen("var/sluice.key", "w");
    assert_non_null(fp);
    fputs("sk-sluice-reference\n", fp);
    fclose(fp);

    unsetenv("SLUICE_KEY");
    unsetenv("SLUICE_ADMIN_KEY");
    unsetenv("OPENAI_API_KEY");
    rc = sl_conf_load(path, &conf, err, sizeof(err));

    unlink("var/sluice.key");
    rmdir("var");
    unlink("etc/pricing.yaml");
    rmdir("etc");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
    if (rc != 0) {
        fail_msg("%s", err);
    }

    assert_int_equal(conf->nlisten, 1);
    assert_v4(&conf->listen[0], "127.0.0.1", 4141);
    assert_non_null(conf->admin_listen);
    assert_v4(conf->admin_listen, "127.0.0.1", 4142);
    assert_true(conf->workers >= 1);
    assert_string_equal(conf->pid_file, "var/sluice.pid");
    assert_string_equal(conf->error_log, "stderr");
    assert_null(conf->access_log);
    assert_false(conf->cors.enabled);
    assert_int_equal(conf->nstatic_keys, 1);
    assert_string_equal(conf->static_keys[0].ref, "file:var/sluice.key");
    assert_string_equal(conf->static_keys[0].value, "sk-sluice-reference");
    assert_null(conf->admin_key.value);
    assert_string_equal(conf->storage_path, "var/");
    assert_string_equal(conf->pricing_file, "etc/pricing.yaml");
    assert_non_null(conf->pricing);
    assert_int_equal(conf->nproviders, 2);
    /* the first request works with nothing else running: demo answers through echo */
    assert_string_equal(conf->providers[0].name, "demo");
    assert_string_equal(conf->providers[0].kind, "echo");
    assert_string_equal(conf->providers[1].name, "local");
    assert_string_equal(conf->providers[1].host, "127.0.0.1");
    assert_int_equal(conf->providers[1].port, 11434);
    assert_null(conf->providers[1].api_key.value);
    assert_string_equal(conf->models[0].name, "demo");
    assert_ptr_equal(conf->models[0].targets[0].provider, &conf->providers[0]);
    m = sl_conf_model(conf, "local-llama", 11);
    assert_non_null(m);
    assert_int_equal(m->ntargets, 1);
    assert_ptr_equal(m->targets[0].provider, &conf->providers[1]);
    assert_string_equal(m->targets[0].model, "llama3.2");
    /* routing: spells out the defaults */
    assert_routing_defaults(&conf->routing);
    assert_routing_defaults(&m->routing);
    assert_int_equal(m->nrules, 0);
    sl_conf_destroy(conf);
}


static void
test_lookup(void **state)
{
    char err[TEST_ERR_MAX];
    sl_conf_t *conf = NULL;

    assert_int_equal(load("providers:\n"
                          "  a: {kind: openai, base_url: \"http://a\"}\n"
                          "  ab: {kind: openai, base_url: \"http://ab\"}\n"
                          "models:\n"
                          "  m: {targets: [a/x]}\n"
                          "  mm: {targets: [ab/y]}\n",
                          &conf, err, sizeof(err)),
                     0);
    assert_ptr_equal(sl_conf_provider(conf, "abc", 1), &conf->providers[0]);
    assert_ptr_equal(sl_conf_provider(conf, "abc", 2), &conf->providers[1]);
    assert_null(sl_conf_provider(conf, "abc", 3));
    assert_null(sl_conf_provider(conf, "b", 1));
    assert_ptr_equal(sl_conf_model(conf, "mmm", 1), &conf->models[0]);
    assert_ptr_equal(sl_conf_model(conf, "mm", 2), &conf->models[1]);
    assert_null(sl_conf_model(conf, "x", 1));
    assert_null(sl_conf_model(conf, "", 0));
    sl_conf_destroy(conf);
    sl_conf_destroy(NULL);
}


static void
test_missing_file(void **state)
{
    char err[TEST_ERR_MAX];
    sl_conf_t *conf = (sl_conf_t *) &err;

    assert_int_equal(sl_conf_load("/nonexistent/sluice.yaml", &conf, err, sizeof(err)), -ENOENT);
    assert_null(conf);
    assert_string_equal(err,
                        "/nonexistent/sluice.yaml: open() failed (2: No such file or directory)");
    assert_int_equal(sl_conf_load("/tmp", &conf, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/tmp: not a regular file");
    /* no buffer at all is fine */
    assert_int_equal(sl_conf_load("/nonexistent/sluice.yaml", &conf, NULL, 0), -ENOENT);
    assert_int_equal(load("server: [\n", &conf, NULL, 0), SL_ECONF);
    /* a short buffer is truncated, still terminated */
    assert_int_equal(load("bogus: 1\n", &conf, err, 8), SL_ECONF);
    assert_int_equal(strlen(err), 7);
}


static void
test_errors_syntax(void **state)
{
    static const test_error_t t[] = {
        { "a: b: c\n", "1:5: syntax error: mapping values are not allowed in this context" },
        { "server:\n  listen: [a, b\nauth: {}\n",
          "3:5: syntax error: did not find expected ',' or ']' (while parsing a flow sequence at "
          "line 2, column 11)" },
        { "server:\n  pid_file: a\x01"
          "b\n",
          "2:14: syntax error: control characters are not allowed" },
        { "models:\n  m: *nope\n", "2:6: syntax error: found undefined alias" },
        { "server: {}\n---\nauth: {}\n", "2:1: only one YAML document is allowed" },
        { "- a\n- b\n", "1:1: the configuration must be a mapping, not a list" },
        { "just text\n", "1:1: the configuration must be a mapping, not a scalar" },
        { "server: {}\nbogus: 1\n", "2:1: unknown key \"bogus\"" },
        { "server:\n  backlog: 1\n  backlog: 2\n", "3:3: duplicate key \"backlog\"" },
        { "server: {}\nserver: {}\n", "2:1: duplicate key \"server\"" },
        { "providers:\n  p: {kind: openai, kind: openai}\n", "2:21: duplicate key \"kind\"" },
        { "? [a]\n: b\n", "1:3: mapping keys must be scalars, not a list" },
        { "server: [1]\n", "1:9: server must be a mapping, not a list" },
        { "auth: text\n", "1:7: auth must be a mapping, not a scalar" },
        { "storage: [a]\n", "1:10: storage must be a mapping, not a list" },
        { "providers: [a]\n", "1:12: providers must be a mapping, not a list" },
        { "models: x\n", "1:9: models must be a mapping, not a scalar" },
        { "pricing: {a: b}\n", "1:10: pricing must be a scalar value, not a mapping" },
        { "pricing: []\n", "1:10: pricing must list 1 to 64 files" },
        { "pricing: [[a]]\n", "1:11: pricing must be a scalar value, not a list" },
        { "pricing: [no/such.yaml]\n",
          "1:11: cannot load pricing: no/such.yaml: open() failed (2: No such file or directory)" },
        { "unpriced: maybe\n", "1:11: invalid unpriced \"maybe\" (use allow or reject)" },
        { "budgets: {max_reservation: 1.2345678}\n",
          "1:28: invalid max_reservation \"1.2345678\" (USD with at most 6 decimals like 0.50, or "
          "a share of the budget like 10%)" },
        { "budgets: {max_reservation: 120%}\n",
          "1:28: invalid max_reservation \"120%\" (a share of the budget, 0% to 100% with one "
          "decimal at most, or USD like 0.50)" },
        { "budgets: {default_output_tokens: 0}\n",
          "1:34: default_output_tokens must be a whole number between 1 and 10000000" },
        { "budgets: {cap: 1}\n", "1:11: unknown key \"cap\" in budgets" },
        { "ledger: {commit_window: 2s}\n", "1:25: commit_window must be between 0ms and 1s" },
        { "pricing: \"\"\n", "1:10: pricing must not be empty" },
    };

    expect_errors(t, sizeof(t) / sizeof(t[0]));
}


static void
test_errors_server(void **state)
{
    static const test_error_t t[] = {
        { "server:\n  listne: 1\n", "2:3: unknown key \"listne\" in server" },
        { "server:\n  backlog: {a: 1}\n", "2:12: backlog must be a scalar value, not a mapping" },
        { "server:\n  backlog: 70000\n",
          "2:12: backlog must be a whole number between 1 and 65535" },
        { "server:\n  backlog: -1\n", "2:12: backlog must be a whole number between 1 and 65535" },
        { "server:\n  max_headers: 0\n",
          "2:16: max_headers must be a whole number between 1 and 1000" },
        { "server:\n  max_connections: 1000001\n",
          "2:20: max_connections must be a whole number between 1 and 1000000" },
        { "server:\n  keepalive_requests: 1e3\n",
          "2:23: keepalive_requests must be a whole number between 1 and 1000000" },
        { "server:\n  reuse_port: maybe\n", "2:15: reuse_port must be true or false" },
        { "server:\n  header_timeout: 10x\n",
          "2:19: invalid duration \"10x\" for header_timeout (use e.g. 750ms, 10s, 5m, 1h or 2d)" },
        { "server:\n  header_timeout: -5s\n",
          "2:19: invalid duration \"-5s\" for header_timeout (use e.g. 750ms, 10s, 5m, 1h or 2d)" },
        { "server:\n  stop_timeout: 0\n", "2:17: stop_timeout must be between 1ms and 365d" },
        { "server:\n  drain_timeout: 366d\n", "2:18: drain_timeout must be between 1ms and 365d" },
        { "server:\n  body_timeout: [1]\n",
          "2:17: body_timeout must be a scalar value, not a list" },
        { "server:\n  max_body: 8XB\n",
          "2:13: invalid size \"8XB\" for max_body (use e.g. 512, 64KiB, 8MiB, 1GiB or 10KB)" },
        { "server:\n  max_body: 2GiB\n", "2:13: max_body must be between 1KiB and 1GiB" },
        { "server:\n  max_header_size: 1000\n",
          "2:20: max_header_size must be between 1KiB and 1MiB" },
        { "server:\n  workers: 0\n",
          "2:12: workers must be \"auto\" or a number between 1 and 256" },
        { "server:\n  workers: 257\n",
          "2:12: workers must be \"auto\" or a number between 1 and 256" },
        { "server:\n  workers: many\n",
          "2:12: workers must be \"auto\" or a number between 1 and 256" },
        { "server:\n  log_level: loud\n",
          "2:14: invalid log_level \"loud\" (use emerg, alert, crit, error, warn, notice, info or "
          "debug)" },
        { "server:\n  pid_file: \"\"\n", "2:13: pid_file must not be empty" },
        { "server:\n  error_log: {}\n", "2:14: error_log must be a scalar value, not a mapping" },
        { "server:\n  access_log: \"\"\n", "2:15: access_log must not be empty" },
        { "server:\n  listen: \"1.2.3.4:99999\"\n",
          "2:11: invalid listen address \"1.2.3.4:99999\" (use host:port, [ipv6]:port, :port or "
          "port, with port 1..65535)" },
        { "server:\n  listen:\n    - 127.0.0.1:1\n    - example.com:80\n",
          "4:7: invalid listen address \"example.com:80\" (use host:port, [ipv6]:port, :port or "
          "port, with port 1..65535)" },
        { "server:\n  listen: []\n", "2:11: listen needs at least one address" },
        { "server:\n  listen: {a: 1}\n",
          "2:11: listen needs an address (e.g. {address: 0.0.0.0:4443, tls: ...})" },
        { "server:\n  listen: true\n", "2:11: invalid listen address \"true\" (use host:port, "
                                       "[ipv6]:port, :port or port, with port 1..65535)" },
        { "server:\n  listen: [[1]]\n", "2:12: listen must be a scalar value, not a list" },
        { "server:\n  listen: [\"4141\", \":4141\"]\n",
          "2:20: duplicate listen address \":4141\"" },
        { "server:\n  listen: [\"[::1]:80\", \"[0:0::1]:80\"]\n",
          "2:24: duplicate listen address \"[0:0::1]:80\"" },
        { "server:\n  listen: 127.0.0.1:4141\n  admin_listen: localhost:4141\n",
          "3:17: admin_listen \"localhost:4141\" duplicates a listen address" },
        { "server:\n  admin_listen: \"4142x\"\n",
          "2:17: invalid admin_listen address \"4142x\" (use host:port, [ipv6]:port, :port or "
          "port, with port 1..65535)" },
        { "server:\n  cors: [a]\n", "2:9: cors must be a mapping, not a list" },
        { "server:\n  cors: {max_age: 1m}\n", "2:9: cors needs allow_origins" },
        { "server:\n  cors:\n    allow_origins: []\n",
          "3:20: allow_origins needs at least one origin" },
        { "server:\n  cors:\n    allow_origins: \"*\"\n",
          "3:20: allow_origins must be a list, not a scalar" },
        { "server:\n  cors:\n    allow_origins: [\"https://a.example/\"]\n",
          "3:21: invalid CORS origin \"https://a.example/\" (use \"*\" or scheme://host[:port])" },
        { "server:\n  cors:\n    allow_origins: [app.example.com]\n",
          "3:21: invalid CORS origin \"app.example.com\" (use \"*\" or scheme://host[:port])" },
        { "server:\n  cors:\n    allow_origins: [\"*\"]\n    max_age: soon\n",
          "4:14: invalid duration \"soon\" for max_age (use e.g. 750ms, 10s, 5m, 1h or 2d)" },
        { "server:\n  cors:\n    allow_origins: [\"*\"]\n    methods: [GET]\n",
          "4:5: unknown key \"methods\" in server.cors" },
        { "storage:\n  map_size: 1KiB\n", "2:13: map_size must be between 1MiB and 1TiB" },
        { "storage:\n  map_size: 2TiB\n", "2:13: map_size must be between 1MiB and 1TiB" },
        { "storage:\n  sync_interval: 0ms\n", "2:18: sync_interval must be between 1ms and 365d" },
        { "storage:\n  path: \"\"\n", "2:9: path must not be empty" },
        { "storage:\n  dir: var/\n", "2:3: unknown key \"dir\" in storage" },
    };

    expect_errors(t, sizeof(t) / sizeof(t[0]));
}


static void
test_errors_secrets(void **state)
{
    char yaml[512], want[512];
    char *empty = tmp_write(" \r\n\t\n", 5);
    char *twolines = tmp_write("abc\ndef\n", 8);
    static const test_error_t t[] = {
        { "auth:\n  admin_key: sk-live-1234\n",
          "2:14: admin_key must be a reference (env:NAME, file:PATH or vault:NAME), never a "
          "literal secret" },
        { "auth:\n  static_keys: [sk-live-1234]\n",
          "2:17: static_keys entry must be a reference (env:NAME, file:PATH or vault:NAME), never "
          "a literal secret" },
        { "auth:\n  static_keys: env:SL_TEST_SET\n",
          "2:16: static_keys must be a list, not a scalar" },
        { "auth:\n  static_keys: [env:SL_TEST_SET, [x]]\n",
          "2:34: static_keys entry must be a scalar value, not a list" },
        { "auth:\n  admin_key: env:SL_TEST_UNSET\n",
          "2:14: environment variable SL_TEST_UNSET (admin_key) is not set or empty" },
        { "auth:\n  admin_key: env:SL_TEST_EMPTY\n",
          "2:14: environment variable SL_TEST_EMPTY (admin_key) is not set or empty" },
        { "auth:\n  admin_key: env:SL_TEST_LINES\n",
          "2:14: environment variable SL_TEST_LINES (admin_key) must hold one line" },
        { "auth:\n  admin_key: \"env:\"\n",
          "2:14: admin_key reference \"env:\" needs a variable name after env:" },
        { "auth:\n  admin_key: env:A-B\n",
          "2:14: admin_key reference \"env:A-B\" has an invalid variable name" },
        { "auth:\n  admin_key: \"file:\"\n", "2:14: admin_key reference \"file:\" needs a path" },
        { "auth:\n  admin_key: file:/nonexistent/key\n",
          "2:14: cannot read secret file \"/nonexistent/key\" for admin_key (2: No such file or "
          "directory)" },
        { "auth:\n  admin_key: file:/tmp\n",
          "2:14: secret file \"/tmp\" for admin_key is not a regular file" },
        { "auth:\n  static_keys:\n    - \"vault:\"\n",
          "3:7: static_keys entry reference \"vault:\" needs a secret name after vault: (1..128 "
          "of A-Z a-z 0-9 . _ -)" },
        { "auth:\n  admin_key: {env: X}\n",
          "2:14: admin_key must be a scalar value, not a mapping" },
        { "auth:\n  keys: []\n", "2:3: unknown key \"keys\" in auth" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    api_key: sk-abc\n",
          "5:14: api_key must be a reference (env:NAME, file:PATH or vault:NAME), never a literal "
          "secret" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    api_key: "
          "vault:a/b\n",
          "5:14: api_key reference \"vault:a/b\" needs a secret name after vault: (1..128 of A-Z "
          "a-z 0-9 . _ -)" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    api_key: "
          "env:SL_TEST_UNSET\n",
          "5:14: environment variable SL_TEST_UNSET (api_key) is not set or empty" },
    };

    setenv("SL_TEST_SET", "x", 1);
    setenv("SL_TEST_EMPTY", "", 1);
    setenv("SL_TEST_LINES", "a\nb", 1);
    unsetenv("SL_TEST_UNSET");
    expect_errors(t, sizeof(t) / sizeof(t[0]));

    snprintf(yaml, sizeof(yaml), "auth:\n  admin_key: file:%s\n", empty);
    snprintf(want, sizeof(want), "2:14: secret file \"%s\" for admin_key is empty", empty);
    expect_error(yaml, want);
    snprintf(yaml, sizeof(yaml), "auth:\n  admin_key: file:%s\n", twolines);
    snprintf(want, sizeof(want), "2:14: secret file \"%s\" for admin_key must hold one line",
             twolines);
    expect_error(yaml, want);

    unlink(empty);
    unlink(twolines);
    free(empty);
    free(twolines);
}


static void
test_errors_providers(void **state)
{
    static const test_error_t t[] = {
        { "providers:\n  p: 1\n", "2:6: provider \"p\" must be a mapping, not a scalar" },
        { "providers:\n  p:\n", "2:5: provider \"p\" must be a mapping, not an empty value" },
        { "providers:\n  \"a b\": {kind: openai}\n",
          "2:3: invalid provider name \"a b\" (use 1 to 64 of A-Z a-z 0-9 _ . -)" },
        { "providers:\n  "
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: {}\n",
          "2:3: invalid provider name "
          "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" (use 1 to 64 of "
          "A-Z a-z 0-9 _ . -)" },
        { "providers:\n  openai:\n    base_url: https://api.openai.com/v1\n",
          "2:3: provider \"openai\" needs a kind" },
        { "providers:\n  p:\n    kind: nosuch\n    base_url: http://x\n",
          "3:11: unknown provider kind \"nosuch\"" },
        { "providers:\n  p:\n    kind: [openai]\n",
          "3:11: kind must be a scalar value, not a list" },
        { "providers:\n  p:\n    kind: openai\n", "2:3: provider \"p\" needs a base_url" },
        { "providers:\n  p:\n    kind: openai\n    base_url: ftp://x/\n",
          "4:15: base_url \"ftp://x/\" must start with http:// or https://" },
        { "providers:\n  p:\n    kind: openai\n    base_url: api.openai.com\n",
          "4:15: base_url \"api.openai.com\" must start with http:// or https://" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x/v1?a=1\n",
          "4:15: base_url \"http://x/v1?a=1\" must not have a query or fragment" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x/v1#f\n",
          "4:15: base_url \"http://x/v1#f\" must not have a query or fragment" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://u:pw@x/v1\n",
          "4:15: base_url must not contain user info (use api_key)" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http://x:0\"\n",
          "4:15: base_url \"http://x:0\" has an invalid port" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http://x:65536/\"\n",
          "4:15: base_url \"http://x:65536/\" has an invalid port" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http://x:/\"\n",
          "4:15: base_url \"http://x:/\" has an invalid port" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http:///v1\"\n",
          "4:15: base_url \"http:///v1\" has an invalid host" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http://[::1/v1\"\n",
          "4:15: base_url \"http://[::1/v1\" has an unterminated IPv6 address" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http://[::g]/v1\"\n",
          "4:15: base_url \"http://[::g]/v1\" has an invalid IPv6 address" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http://[::1]x/v1\"\n",
          "4:15: base_url \"http://[::1]x/v1\" has an invalid host" },
        { "providers:\n  p:\n    kind: openai\n    base_url: \"http://a b/\"\n",
          "4:15: base_url must not contain spaces or control characters" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    ca_file: "
          "/nonexistent/ca.pem\n",
          "5:14: ca_file \"/nonexistent/ca.pem\" cannot be read (2: No such file or directory)" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    ca_file: /tmp\n",
          "5:14: ca_file \"/tmp\" is not a regular file" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    tls_verify: nope\n",
          "5:17: tls_verify must be true or false" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    first_byte_timeout: "
          "5 m\n",
          "5:25: invalid duration \"5 m\" for first_byte_timeout (use e.g. 750ms, 10s, 5m, 1h or "
          "2d)" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    max_connections: 0\n",
          "5:22: max_connections must be a whole number between 1 and 100000" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    max_connections: 10\n"
          "    max_idle: 11\n",
          "6:15: max_idle (11) must not exceed max_connections (10)" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    max_connections: 10\n",
          "2:3: max_idle (64) must not exceed max_connections (10)" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    headers: [a]\n",
          "5:14: headers must be a mapping, not a list" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    headers:\n"
          "      \"Bad Header\": v\n",
          "6:7: invalid header name \"Bad Header\"" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    headers:\n"
          "      \"X:Y\": v\n",
          "6:7: invalid header name \"X:Y\"" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    headers: {Host: h}\n",
          "5:15: header \"Host\" is set by sluice itself" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    headers: {X-A: 1, "
          "x-a: 2}\n",
          "5:23: duplicate header \"x-a\"" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    headers: {X-A: [1]}\n",
          "5:20: header \"X-A\" must have a scalar value, not a list" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    headers: {X-A: "
          "\"a\\r\\nX-B: b\"}\n",
          "5:20: value of header \"X-A\" must not contain CR, LF or NUL" },
        { "providers:\n  p:\n    kind: openai\n    base_url: http://x\n    deployment: d\n",
          "5:5: unknown key \"deployment\" in provider \"p\"" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\n  p2: {base_url: "
          "\"http://y\"}\n",
          "3:3: provider \"p2\" needs a kind" },
    };

    expect_errors(t, sizeof(t) / sizeof(t[0]));
}


static void
test_errors_models(void **state)
{
    static const test_error_t t[] = {
        { "models:\n  m: [a/b]\n", "2:6: model \"m\" must be a mapping, not a list" },
        { "models:\n  \"a b\": {targets: [a/b]}\n",
          "2:3: invalid model name \"a b\" (1 to 256 characters, no spaces or control "
          "characters)" },
        { "models:\n  m: {strategy: fallback}\n", "2:3: model \"m\" needs targets" },
        { "models:\n  m:\n    targets: []\n", "3:14: model \"m\" needs at least one target" },
        { "models:\n  m:\n    targets: openai/x\n", "3:14: targets must be a list, not a scalar" },
        { "models:\n  m:\n    targets: [nope/gpt-4o]\n",
          "3:15: unknown provider \"nope\" in target \"nope/gpt-4o\"" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets:\n      - p/a\n      - gpt-4o\n",
          "7:9: target \"gpt-4o\" must be \"provider/model\"" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [\"/x\"]\n",
          "5:15: target \"/x\" must be \"provider/model\"" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [p/]\n",
          "5:15: target \"p/\" must be \"provider/model\"" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [{weight: 2}]\n",
          "5:15: a target mapping needs a \"target\" key" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [{target: p/a, weight: 0}]\n",
          "5:37: weight must be a whole number between 1 and 1000" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [{target: p/a, weight: 1001}]\n",
          "5:37: weight must be a whole number between 1 and 1000" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [{target: p/a, weight: heavy}]\n",
          "5:37: weight must be a whole number between 1 and 1000" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [{target: p/a, prio: 1}]\n",
          "5:29: unknown key \"prio\" in target" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [{target: [p/a]}]\n",
          "5:24: target must be a scalar value, not a list" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [[p/a]]\n",
          "5:15: a target must be \"provider/model\" or a mapping, not a list" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [p/a]\n    strategy: random\n",
          "6:15: invalid strategy \"random\" (use fallback, weighted, cheapest, fastest or "
          "least_busy)" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [p/a]\n    retry: 3\n",
          "6:5: unknown key \"retry\" in model \"m\"" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [p/a, {target: p/a, weight: 2}]\n",
          "5:20: target \"p/a\" is listed twice" },
    };

    expect_errors(t, sizeof(t) / sizeof(t[0]));
}


/* Resolved secrets never show in a message, whatever goes wrong after them. */
static void
test_secret_never_in_messages(void **state)
{
    char yaml[1024];
    char *keyfile = tmp_write("sk-SECRET456\n", 13);

    setenv("SL_TEST_SECRET", "sk-SECRET123", 1);

    expect_no_secret("providers:\n  p:\n    kind: openai\n    base_url: http://x\n"
                     "    api_key: env:SL_TEST_SECRET\n    max_idle: 999\n",
                     "SECRET");
    expect_no_secret("auth:\n  static_keys: [env:SL_TEST_SECRET]\n  admin_key: sk-SECRET789\n",
                     "SECRET");
    expect_no_secret("providers:\n  p:\n    kind: openai\n    base_url: http://x\n"
                     "    api_key: sk-SECRET789\n",
                     "SECRET");
    expect_no_secret("auth:\n  admin_key: \"Bearer sk-SECRET789\"\n", "SECRET");
    expect_no_secret("providers:\n  p:\n    kind: openai\n"
                     "    base_url: \"https://user:SECRETpw@api.example.com/v1\"\n",
                     "SECRET");
    expect_no_secret("providers:\n  p:\n    kind: openai\n    base_url: http://x\n"
                     "    headers: {Authorization: \"Bearer sk-SECRET789\\n\"}\n",
                     "SECRET");
    snprintf(yaml, sizeof(yaml),
             "auth:\n  static_keys: [\"file:%s\", env:SL_TEST_SECRET]\n"
             "providers:\n  p:\n    kind: openai\n    base_url: http://x\n"
             "    api_key: \"file:%s\"\n    headers: {Host: x}\n"
             "models:\n  m: {targets: [q/x]}\n",
             keyfile, keyfile);
    expect_no_secret(yaml, "SECRET");
    /* the same with the header fixed fails later, at the target; still no secret */
    snprintf(yaml, sizeof(yaml),
             "auth:\n  static_keys: [\"file:%s\", env:SL_TEST_SECRET]\n"
             "providers:\n  p:\n    kind: openai\n    base_url: http://x\n"
             "    api_key: \"file:%s\"\n"
             "models:\n  m: {targets: [q/x]}\n",
             keyfile, keyfile);
    expect_no_secret(yaml, "SECRET");

    unlink(keyfile);
    free(keyfile);
}


static void
test_provider_hook(void **state)
{
    char err[TEST_ERR_MAX];
    const test_ext_t *ext;
    sl_conf_t *conf = NULL;
    static const test_error_t t[] = {
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    bogus: 1\n",
          "5:5: unknown key \"bogus\" in provider \"t\"" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    mode: bad\n",
          "5:11: mode \"bad\" is not supported" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    api_version: 101\n",
          "5:18: api_version must be a whole number between 1 and 100" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    poll: 2m\n",
          "5:11: poll must be between 1ms and 1m" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    chunk: 2MiB\n",
          "5:12: chunk must be between 1 and 1MiB" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    deployment: [a]\n",
          "5:17: deployment must be a scalar value, not a list" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    extra_key: plain\n",
          "5:16: extra_key must be a reference (env:NAME, file:PATH or vault:NAME), never a "
          "literal secret" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    opts: {nested: "
          "true, other: 1}\n",
          "5:26: unknown key \"other\" in opts" },
        { "providers:\n  t:\n    kind: testkind\n    base_url: http://x\n    silent_fail: 1\n",
          "3:5: provider \"t\" of kind \"testkind\" is misconfigured" },
    };

    setenv("SL_TEST_EXTRA", "extra-value", 1);
    assert_int_equal(load("providers:\n"
                          "  t:\n"
                          "    kind: testkind\n"
                          "    base_url: https://t.example/v2\n"
                          "    deployment: dep-1\n"
                          "    api_version: 7\n"
                          "    flag: yes\n"
                          "    extra_key: env:SL_TEST_EXTRA\n"
                          "    poll: 250ms\n"
                          "    chunk: 8KiB\n"
                          "    mode: good\n"
                          "    opts: {nested: on}\n"
                          "  u: {kind: testkind, base_url: \"http://u\"}\n",
                          &conf, err, sizeof(err)),
                     0);
    ext = conf->providers[0].ext;
    assert_non_null(ext);
    assert_ptr_equal(conf->providers[0].ops, &test_ops);
    assert_string_equal(ext->deployment, "dep-1");
    assert_int_equal(ext->api_version, 7);
    assert_true(ext->flag);
    assert_string_equal(ext->extra_key.value, "extra-value");
    assert_string_equal(ext->extra_key.ref, "env:SL_TEST_EXTRA");
    assert_int_equal(ext->poll, 250);
    assert_int_equal(ext->chunk, 8192);
    assert_true(ext->nested);
    assert_string_equal(ext->provider_name, "t");
    assert_string_equal(ext->provider_host, "t.example");
    ext = conf->providers[1].ext;
    assert_non_null(ext);
    assert_null(ext->deployment);
    assert_int_equal(ext->api_version, 1);
    assert_false(ext->flag);
    assert_null(ext->extra_key.value);
    assert_int_equal(ext->poll, 5000);
    assert_int_equal(ext->chunk, 4096);
    assert_string_equal(ext->provider_name, "u");
    sl_conf_destroy(conf);

    expect_errors(t, sizeof(t) / sizeof(t[0]));
}


/* vault: references load unresolved, marked, with their position for later messages. */
static void
test_vault_refs(void **state)
{
    char err[TEST_ERR_MAX], want[TEST_ERR_MAX];
    sl_conf_t *conf = NULL;
    const char *yaml = "auth:\n  admin_key: vault:admin\nproviders:\n  p:\n    kind: testkind\n"
                       "    base_url: http://x\n    api_key: vault:openai.prod\n";

    (void) state;
    assert_int_equal(load(yaml, &conf, err, sizeof(err)), 0);
    assert_true(conf->admin_key.vault);
    assert_null(conf->admin_key.value);
    assert_string_equal(conf->admin_key.ref, "vault:admin");
    snprintf(want, sizeof(want), "%s:2:14", last_path);
    assert_string_equal(conf->admin_key.where, want);
    assert_true(conf->providers[0].api_key.vault);
    assert_string_equal(conf->providers[0].api_key.ref, "vault:openai.prod");
    sl_conf_destroy(conf);
}


/* SL_CONF_NO_SECRETS: storage commands load without the providers' variables. */
static void
test_no_secrets_flag(void **state)
{
    char err[TEST_ERR_MAX];
    sl_conf_t *conf = NULL;
    const char *yaml = "auth:\n  static_keys: [env:SL_TEST_UNSET, file:/nonexistent]\n"
                       "storage:\n  path: /tmp/x\n";
    char *path = tmp_write(yaml, strlen(yaml));

    (void) state;
    unsetenv("SL_TEST_UNSET");
    assert_int_equal(sl_conf_load(path, &conf, err, sizeof(err)), SL_ECONF);
    assert_int_equal(sl_conf_load_flags(path, SL_CONF_NO_SECRETS, &conf, err, sizeof(err)), 0);
    assert_int_equal(conf->nstatic_keys, 2);
    assert_null(conf->static_keys[0].value);
    assert_string_equal(conf->storage_path, "/tmp/x");
    sl_conf_destroy(conf);
    unlink(path);
    free(path);
}


static void
test_parse_share(void **state)
{
    static const struct {
        const char *in;
        unsigned out;
    } ok[] = {
        { "20%", 200 }, { "0%", 0 },    { "100%", 1000 }, { "12.5%", 125 }, { "0.2", 200 },
        { "0", 0 },     { "1", 1000 },  { "0.125", 125 }, { "1.0", 1000 },  { "0.05", 50 },
        { "5%", 50 },   { "0.001", 1 }, { "99.9%", 999 },
    };
    static const char *const bad[] = {
        "",       "%",      "20", "2",    "101%", "1.5",  "-0.2", "0.2%x",
        "12.55%", "0.1234", ".2", "20 %", "0.",   "1e-1", "20%%", "100.1%",
    };
    unsigned v;

    (void) state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 12345;
        if (sl_conf_parse_share(ok[i].in, &v) != 0) {
            fail_msg("\"%s\" refused", ok[i].in);
        }
        assert_int_equal(v, ok[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_conf_parse_share(bad[i], &v) != SL_ECONF) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
    }
    assert_int_equal(sl_conf_parse_share(NULL, &v), SL_ECONF);
    assert_string_equal(sl_conf_strategy_name(SL_STRATEGY_LEAST_BUSY), "least_busy");
    assert_string_equal(sl_conf_strategy_name(SL_STRATEGY_FALLBACK), "fallback");
}


/* routing: defaults for every model; a model overrides any key, breaker key by key. */
static void
test_routing(void **state)
{
    char err[TEST_ERR_MAX];
    const sl_model_conf_t *m;
    sl_conf_t *conf = NULL;

    (void) state;
    if (load("models:\n"
             "  a:\n"
             "    targets: [p/x, q/y]\n"
             "    retries: 0\n"
             "    breaker: {cooldown: 5s}\n"
             "  b:\n"
             "    targets: [p/x]\n"
             "    strategy: least_busy\n"
             "    retries: 10\n"
             "    backoff: 0\n"
             "    max_wait: 1m\n"
             "    retry_on: []\n"
             "    first_token_timeout: 0\n"
             "    breaker: {failures: 0, cooldown: 1h}\n"
             "    retry_budget: 0.05\n"
             "    deadline: 2m\n"
             "    max_latency: 1500ms\n"
             "  c: {targets: [q/z]}\n"
             "routing:\n"
             "  retries: 3\n"
             "  backoff: 50ms\n"
             "  max_wait: 2s\n"
             "  retry_on: [5xx, connect]\n"
             "  first_token_timeout: 20s\n"
             "  breaker: {failures: 2, cooldown: 10s}\n"
             "  retry_budget: 12.5%\n"
             "  deadline: 30s\n"
             "  strategy: cheapest\n"
             "  max_latency: 3s\n"
             "providers:\n"
             "  p: {kind: openai, base_url: \"http://p\"}\n"
             "  q: {kind: openai, base_url: \"http://q\"}\n",
             &conf, err, sizeof(err))
        != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(conf->routing.retries, 3);
    assert_int_equal(conf->routing.backoff, 50);
    assert_int_equal(conf->routing.max_wait, 2000);
    assert_int_equal(conf->routing.retry_on, SL_RETRY_ON_5XX | SL_RETRY_ON_CONNECT);
    assert_int_equal(conf->routing.first_token_timeout, 20000);
    assert_int_equal(conf->routing.breaker_failures, 2);
    assert_int_equal(conf->routing.breaker_cooldown, 10000);
    assert_int_equal(conf->routing.retry_budget, 125);
    assert_int_equal(conf->routing.deadline, 30000);
    assert_int_equal(conf->routing.strategy, SL_STRATEGY_CHEAPEST);
    assert_int_equal(conf->routing.max_latency, 3000);

    /* a: two overrides, the rest inherited; the breaker's failures kept, cooldown replaced */
    m = sl_conf_model(conf, "a", 1);
    assert_int_equal(m->routing.retries, 0);
    assert_int_equal(m->routing.backoff, 50);
    assert_int_equal(m->routing.retry_on, SL_RETRY_ON_5XX | SL_RETRY_ON_CONNECT);
    assert_int_equal(m->routing.breaker_failures, 2);
    assert_int_equal(m->routing.breaker_cooldown, 5000);
    assert_int_equal(m->routing.strategy, SL_STRATEGY_CHEAPEST);
    assert_int_equal(m->strategy, SL_STRATEGY_CHEAPEST);
    assert_int_equal(m->nrules, 0);
    assert_null(m->rules);

    m = sl_conf_model(conf, "b", 1);
    assert_int_equal(m->routing.strategy, SL_STRATEGY_LEAST_BUSY);
    assert_int_equal(m->strategy, SL_STRATEGY_LEAST_BUSY);
    assert_int_equal(m->routing.retries, 10);
    assert_int_equal(m->routing.backoff, 0);
    assert_int_equal(m->routing.max_wait, 60000);
    assert_int_equal(m->routing.retry_on, 0);
    assert_int_equal(m->routing.first_token_timeout, 0);
    assert_int_equal(m->routing.breaker_failures, 0);
    assert_int_equal(m->routing.breaker_cooldown, 3600000);
    assert_int_equal(m->routing.retry_budget, 50);
    assert_int_equal(m->routing.deadline, 120000);
    assert_int_equal(m->routing.max_latency, 1500);

    m = sl_conf_model(conf, "c", 1);
    assert_memory_equal(&m->routing, &conf->routing, sizeof(sl_routing_conf_t));
    sl_conf_destroy(conf);

    /* without routing:, models get the documented defaults */
    conf = NULL;
    assert_int_equal(load("providers:\n  p: {kind: openai, base_url: \"http://p\"}\n"
                          "models:\n  m: {targets: [p/x], strategy: weighted}\n",
                          &conf, err, sizeof(err)),
                     0);
    assert_int_equal(conf->models[0].routing.strategy, SL_STRATEGY_WEIGHTED);
    conf->models[0].routing.strategy = SL_STRATEGY_FALLBACK;
    assert_routing_defaults(&conf->models[0].routing);
    sl_conf_destroy(conf);
}


/* rules: every when kind, targets, an own strategy, file positions. */
static void
test_rules(void **state)
{
    char err[TEST_ERR_MAX], want[TEST_ERR_MAX];
    const sl_model_conf_t *m;
    const sl_rule_conf_t *r;
    sl_conf_t *conf = NULL;

    (void) state;
    if (load("providers:\n"
             "  p: {kind: openai, base_url: \"http://p\"}\n"
             "  q: {kind: openai, base_url: \"http://q\"}\n"
             "models:\n"
             "  m:\n"
             "    targets: [p/small]\n"
             "    strategy: fallback\n"
             "    retries: 2\n"
             "    rules:\n"
             "      - when: {min_prompt_tokens: 100000}\n"
             "        targets: [q/long]\n"
             "      - when: {max_prompt_tokens: 10, min_prompt_tokens: 1}\n"
             "        targets: [p/tiny, {target: q/tiny, weight: 3}]\n"
             "        strategy: weighted\n"
             "      - when: {header: {X-Team: research, x-tier: \"\"}}\n"
             "        targets: [q/big]\n"
             "      - when: {key: ci-bot}\n"
             "        targets: [p/ci]\n"
             "      - when: {team: [ml, \"data\"], key: [a, b]}\n"
             "        targets: [p/ml]\n"
             "      - when: {has_tools: true, has_images: no}\n"
             "        targets: [q/tools]\n"
             "      - when: {complexity: complex}\n"
             "        targets: [q/smart]\n"
             "        strategy: fastest\n"
             "      - when: {complexity: simple}\n"
             "        targets: [p/dumb]\n",
             &conf, err, sizeof(err))
        != 0) {
        fail_msg("%s", err);
    }
    m = &conf->models[0];
    assert_int_equal(m->nrules, 8);

    r = &m->rules[0];
    assert_int_equal(r->index, 0);
    snprintf(want, sizeof(want), "%s:10:9", last_path);
    assert_string_equal(r->where, want);
    assert_int_equal(r->when, SL_WHEN_MIN_PROMPT_TOKENS);
    assert_int_equal(r->min_prompt_tokens, 100000);
    assert_int_equal(r->ntargets, 1);
    assert_ptr_equal(r->targets[0].provider, &conf->providers[1]);
    assert_string_equal(r->targets[0].model, "long");
    assert_int_equal(r->routing.strategy, SL_STRATEGY_FALLBACK);
    assert_int_equal(r->routing.retries, 2);

    r = &m->rules[1];
    assert_int_equal(r->index, 1);
    assert_int_equal(r->when, SL_WHEN_MIN_PROMPT_TOKENS | SL_WHEN_MAX_PROMPT_TOKENS);
    assert_int_equal(r->min_prompt_tokens, 1);
    assert_int_equal(r->max_prompt_tokens, 10);
    assert_int_equal(r->ntargets, 2);
    assert_int_equal(r->targets[1].weight, 3);
    assert_int_equal(r->routing.strategy, SL_STRATEGY_WEIGHTED);
    assert_int_equal(r->routing.retries, 2);

    r = &m->rules[2];
    assert_int_equal(r->when, SL_WHEN_HEADER);
    assert_int_equal(r->nheaders, 2);
    assert_string_equal(r->headers[0].name, "X-Team");
    assert_string_equal(r->headers[0].value, "research");
    assert_string_equal(r->headers[1].name, "x-tier");
    assert_string_equal(r->headers[1].value, "");

    r = &m->rules[3];
    assert_int_equal(r->when, SL_WHEN_KEY);
    assert_int_equal(r->nkeys, 1);
    assert_string_equal(r->keys[0], "ci-bot");

    r = &m->rules[4];
    assert_int_equal(r->when, SL_WHEN_TEAM | SL_WHEN_KEY);
    assert_int_equal(r->nteams, 2);
    assert_string_equal(r->teams[0], "ml");
    assert_string_equal(r->teams[1], "data");
    assert_int_equal(r->nkeys, 2);
    assert_string_equal(r->keys[1], "b");

    r = &m->rules[5];
    assert_int_equal(r->when, SL_WHEN_HAS_TOOLS | SL_WHEN_HAS_IMAGES);
    assert_true(r->has_tools);
    assert_false(r->has_images);

    r = &m->rules[6];
    assert_int_equal(r->when, SL_WHEN_COMPLEXITY);
    assert_int_equal(r->complexity, SL_COMPLEXITY_COMPLEX);
    assert_int_equal(r->routing.strategy, SL_STRATEGY_FASTEST);
    assert_int_equal(m->rules[7].complexity, SL_COMPLEXITY_SIMPLE);
    assert_int_equal(m->routing.strategy, SL_STRATEGY_FALLBACK);
    sl_conf_destroy(conf);
}


/* api_key: one reference or a list; api_key keeps the first. */
static void
test_credentials(void **state)
{
    char err[TEST_ERR_MAX];
    char *keyfile = tmp_write("sk-from-file\n", 13);
    char yaml[1024];
    const sl_provider_conf_t *p;
    sl_conf_t *conf = NULL;

    (void) state;
    setenv("SL_TEST_CRED_A", "sk-a", 1);
    setenv("SL_TEST_CRED_B", "sk-b", 1);
    snprintf(yaml, sizeof(yaml),
             "providers:\n"
             "  one: {kind: openai, base_url: \"http://x\", api_key: env:SL_TEST_CRED_A}\n"
             "  many:\n"
             "    kind: openai\n"
             "    base_url: http://y\n"
             "    api_key: [env:SL_TEST_CRED_B, \"file:%s\", vault:third, env:SL_TEST_CRED_A]\n",
             keyfile);
    if (load(yaml, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    p = &conf->providers[0];
    assert_int_equal(p->napi_keys, 1);
    assert_string_equal(p->api_keys[0].value, "sk-a");
    assert_string_equal(p->api_key.value, "sk-a");
    assert_string_equal(p->api_key.ref, "env:SL_TEST_CRED_A");

    p = &conf->providers[1];
    assert_int_equal(p->napi_keys, 4);
    assert_string_equal(p->api_key.value, "sk-b");
    assert_string_equal(p->api_keys[0].value, "sk-b");
    assert_string_equal(p->api_keys[1].value, "sk-from-file");
    assert_true(p->api_keys[2].vault);
    assert_null(p->api_keys[2].value);
    assert_string_equal(p->api_keys[2].ref, "vault:third");
    assert_string_equal(p->api_keys[3].value, "sk-a");
    sl_conf_destroy(conf);
    unlink(keyfile);
    free(keyfile);
    unsetenv("SL_TEST_CRED_A");
    unsetenv("SL_TEST_CRED_B");
}


static void
test_errors_routing(void **state)
{
    static const test_error_t t[] = {
        { "routing: [1]\n", "1:10: routing must be a mapping, not a list" },
        { "routing:\n  retrys: 1\n", "2:3: unknown key \"retrys\" in routing" },
        { "routing:\n  targets: [a/b]\n", "2:3: unknown key \"targets\" in routing" },
        { "routing:\n  retries: 11\n", "2:12: retries must be a whole number between 0 and 10" },
        { "routing:\n  retries: -1\n", "2:12: retries must be a whole number between 0 and 10" },
        { "routing:\n  backoff: 2h\n", "2:12: backoff must be between 0ms and 1h" },
        { "routing:\n  max_wait: soon\n",
          "2:13: invalid duration \"soon\" for max_wait (use e.g. 750ms, 10s, 5m, 1h or 2d)" },
        { "routing:\n  first_token_timeout: 2d\n",
          "2:24: first_token_timeout must be between 0ms and 1d" },
        { "routing:\n  deadline: [1s]\n", "2:13: deadline must be a scalar value, not a list" },
        { "routing:\n  max_latency: 90m\n", "2:16: max_latency must be between 0ms and 1h" },
        { "routing:\n  retry_on: 5xx\n", "2:13: retry_on must be a list, not a scalar" },
        { "routing:\n  retry_on: [5xx, 4xx]\n",
          "2:19: invalid retry_on entry \"4xx\" (use connect, timeout, 429 or 5xx)" },
        { "routing:\n  retry_on: [429, timeout, 429]\n", "2:28: retry_on lists \"429\" twice" },
        { "routing:\n  retry_on: [{a: 1}]\n",
          "2:14: retry_on entry must be a scalar value, not a mapping" },
        { "routing:\n  breaker: 5\n", "2:12: breaker must be a mapping, not a scalar" },
        { "routing:\n  breaker: {failures: 1001}\n",
          "2:23: failures must be a whole number between 0 and 1000" },
        { "routing:\n  breaker: {cooldown: 0}\n", "2:23: cooldown must be between 1ms and 1d" },
        { "routing:\n  breaker: {failure: 3}\n", "2:13: unknown key \"failure\" in breaker" },
        { "routing:\n  retry_budget: 20\n",
          "2:17: invalid retry_budget \"20\" (a share of requests between 0% and 100%, e.g. 20% "
          "or 0.2)" },
        { "routing:\n  retry_budget: 120%\n",
          "2:17: invalid retry_budget \"120%\" (a share of requests between 0% and 100%, e.g. "
          "20% or 0.2)" },
        { "routing:\n  strategy: cheapest_first\n",
          "2:13: invalid strategy \"cheapest_first\" (use fallback, weighted, cheapest, fastest "
          "or least_busy)" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [p/a]\n    breaker: {failures: x}\n",
          "6:25: failures must be a whole number between 0 and 1000" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n"
          "    targets: [p/a]\n    retry_budget: lots\n",
          "6:19: invalid retry_budget \"lots\" (a share of requests between 0% and 100%, e.g. 20% "
          "or 0.2)" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\", api_key: []}\n",
          "2:52: api_key needs at least one secret reference" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\", api_key: [sk-live]}\n",
          "2:53: api_key entry must be a reference (env:NAME, file:PATH or vault:NAME), never a "
          "literal secret" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\", api_key: [vault:a, "
          "vault:a]}\n",
          "2:62: api_key \"vault:a\" is listed twice" },
        { "providers:\n  p: {kind: openai, base_url: \"http://x\", api_key: {a: 1}}\n",
          "2:52: api_key must be a scalar value, not a mapping" },
    };

    (void) state;
    expect_errors(t, sizeof(t) / sizeof(t[0]));
}


static void
test_errors_rules(void **state)
{
#define RULE_HEAD                                                              \
    "providers:\n  p: {kind: openai, base_url: \"http://x\"}\nmodels:\n  m:\n" \
    "    targets: [p/a]\n    rules:\n"
    static const test_error_t t[] = {
        { RULE_HEAD "      x: 1\n", "7:7: rules must be a list, not a mapping" },
        { RULE_HEAD "      - [p/a]\n", "7:9: rule 1 of model \"m\" must be a mapping, not a list" },
        { RULE_HEAD "      - {targets: [p/b]}\n", "7:9: rule 1 of model \"m\" needs a when" },
        { RULE_HEAD "      - {when: {key: a}, targets: [p/b]}\n      - {when: {key: b}}\n",
          "8:9: rule 2 of model \"m\" needs targets" },
        { RULE_HEAD "      - {when: {key: a}, targets: []}\n",
          "7:35: model \"m\" needs at least one target" },
        { RULE_HEAD "      - {when: {key: a}, targets: [nope/x]}\n",
          "7:36: unknown provider \"nope\" in target \"nope/x\"" },
        { RULE_HEAD "      - {when: {key: a}, targets: [p/b], strategy: quick}\n",
          "7:52: invalid strategy \"quick\" (use fallback, weighted, cheapest, fastest or "
          "least_busy)" },
        { RULE_HEAD "      - {when: {key: a}, targets: [p/b], retries: 2}\n",
          "7:42: unknown key \"retries\" in rule 1 of model \"m\"" },
        { RULE_HEAD "      - {when: {}, targets: [p/b]}\n",
          "7:16: when of rule 1 of model \"m\" needs at least one condition" },
        { RULE_HEAD "      - {when: yes, targets: [p/b]}\n",
          "7:16: when must be a mapping, not a scalar" },
        { RULE_HEAD "      - {when: {prompt_tokens: 5}, targets: [p/b]}\n",
          "7:17: unknown key \"prompt_tokens\" in when of rule 1 of model \"m\"" },
        { RULE_HEAD "      - {when: {min_prompt_tokens: many}, targets: [p/b]}\n",
          "7:36: min_prompt_tokens must be a whole number between 0 and 1000000000" },
        { RULE_HEAD
          "      - {when: {min_prompt_tokens: 10, max_prompt_tokens: 5}, targets: [p/b]}\n",
          "7:59: max_prompt_tokens (5) is below min_prompt_tokens (10)" },
        { RULE_HEAD "      - {when: {header: x-team}, targets: [p/b]}\n",
          "7:25: header must be a mapping of header names to values" },
        { RULE_HEAD "      - {when: {header: {}}, targets: [p/b]}\n",
          "7:25: header must be a mapping of header names to values" },
        { RULE_HEAD "      - {when: {header: {\"bad name\": x}}, targets: [p/b]}\n",
          "7:26: invalid header name \"bad name\"" },
        { RULE_HEAD "      - {when: {header: {X-A: 1, x-a: 2}}, targets: [p/b]}\n",
          "7:34: duplicate header \"x-a\"" },
        { RULE_HEAD "      - {when: {header: {X-A: [1]}}, targets: [p/b]}\n",
          "7:31: header value must be a scalar value, not a list" },
        { RULE_HEAD "      - {when: {key: []}, targets: [p/b]}\n",
          "7:22: key needs at least one name" },
        { RULE_HEAD "      - {when: {team: {a: b}}, targets: [p/b]}\n",
          "7:23: team must be a name or a list of names, not a mapping" },
        { RULE_HEAD "      - {when: {team: [a, \"\"]}, targets: [p/b]}\n",
          "7:27: team must not be empty" },
        { RULE_HEAD "      - {when: {has_tools: maybe}, targets: [p/b]}\n",
          "7:28: has_tools must be true or false" },
        { RULE_HEAD "      - {when: {has_images: 1}, targets: [p/b]}\n",
          "7:29: has_images must be true or false" },
        { RULE_HEAD "      - {when: {complexity: hard}, targets: [p/b]}\n",
          "7:29: invalid complexity \"hard\" (use simple or complex)" },
    };

    (void) state;
    expect_errors(t, sizeof(t) / sizeof(t[0]));
#undef RULE_HEAD
}


/* A new directory with good.crt/good.key and wrong.crt/wrong.key (test/unit/upstream/gen-certs.sh).
 */
static void
tls_certs_dir(char *dir, size_t len)
{
    const char *src = getenv("SL_TEST_SRCDIR");
    char cmd[PATH_MAX + 128];

    snprintf(dir, len, "/tmp/sl-conf-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "sh %s/unit/upstream/gen-certs.sh %s", src != NULL ? src : "test",
             dir);
    assert_int_equal(system(cmd), 0);
}


static void
test_tls_listen(void **state)
{
    char d[64], yaml[2048], err[TEST_ERR_MAX], want[TEST_ERR_MAX];
    sl_conf_t *conf = NULL;
    const sl_listen_tls_t *t;

    tls_certs_dir(d, sizeof(d));
    /* server.tls for every address unless an item says otherwise; admin only by its own */
    snprintf(
        yaml, sizeof(yaml),
        "server:\n"
        "  tls: {cert: %s/good.crt, key: %s/good.key}\n"
        "  listen:\n"
        "    - 127.0.0.1:4443\n"
        "    - {address: 127.0.0.1:4141, tls: false}\n"
        "    - address: \"[::1]:4444\"\n"
        "      tls: {cert: %s/wrong.crt, key: %s/wrong.key}\n"
        "  admin_listen: {address: 127.0.0.1:4142, tls: {cert: %s/good.crt, key: %s/good.key}}\n",
        d, d, d, d, d, d);
    if (load(yaml, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(conf->nlisten, 3);
    t = conf->listen[0].tls;
    assert_non_null(t);
    assert_non_null(strstr(t->cert_file, "/good.crt"));
    assert_non_null(strstr(t->cert_pem, "-----BEGIN CERTIFICATE-----"));
    assert_int_equal(strlen(t->cert_pem), t->cert_len);
    assert_non_null(strstr(t->key_pem, "PRIVATE KEY"));
    assert_int_equal(strlen(t->key_pem), t->key_len);
    assert_v4(&conf->listen[1], "127.0.0.1", 4141);
    assert_null(conf->listen[1].tls);
    assert_v6(&conf->listen[2], "::1", 4444);
    assert_non_null(conf->listen[2].tls);
    assert_non_null(strstr(conf->listen[2].tls->cert_file, "/wrong.crt"));
    assert_v4(conf->admin_listen, "127.0.0.1", 4142);
    assert_non_null(conf->admin_listen->tls);
    sl_conf_destroy(conf);

    /* without server.tls everything is plain; an item may still have its own */
    snprintf(yaml, sizeof(yaml),
             "server:\n  listen: [{address: 0.0.0.0:4443, tls: {cert: %s/good.crt, key: "
             "%s/good.key}}, 127.0.0.1:4141]\n  admin_listen: 127.0.0.1:4142\n",
             d, d);
    conf = NULL;
    if (load(yaml, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_non_null(conf->listen[0].tls);
    assert_null(conf->listen[1].tls);
    assert_null(conf->admin_listen->tls);
    sl_conf_destroy(conf);

    /* server.tls alone covers the default address */
    snprintf(yaml, sizeof(yaml), "server:\n  tls: {cert: %s/good.crt, key: %s/good.key}\n", d, d);
    conf = NULL;
    if (load(yaml, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(conf->nlisten, 1);
    assert_non_null(conf->listen[0].tls);
    /* session tickets: on, for an hour, unless set */
    assert_true(conf->listen[0].tls->session_tickets);
    assert_int_equal(conf->listen[0].tls->session_timeout, 3600);
    sl_conf_destroy(conf);
    snprintf(yaml, sizeof(yaml),
             "server:\n  tls: {cert: %s/good.crt, key: %s/good.key, session_tickets: false, "
             "session_timeout: 10m}\n",
             d, d);
    conf = NULL;
    if (load(yaml, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_false(conf->listen[0].tls->session_tickets);
    assert_int_equal(conf->listen[0].tls->session_timeout, 600);
    sl_conf_destroy(conf);

    /* errors, each at its node */
    snprintf(yaml, sizeof(yaml),
             "server:\n  tls: {cert: %s/good.crt, key: %s/good.key, session_timeout: 8d}\n", d, d);
    snprintf(want, sizeof(want), "2:%zu: session_timeout must be between 1s and 7d",
             strlen("  tls: {cert: /good.crt, key: /good.key, session_timeout: ") + 2 * strlen(d)
                 + 1);
    expect_error(yaml, want);
    snprintf(yaml, sizeof(yaml),
             "server:\n  tls: {cert: %s/good.crt, key: %s/good.key, session_tickets: 2}\n", d, d);
    snprintf(want, sizeof(want), "2:%zu: session_tickets must be true or false",
             strlen("  tls: {cert: /good.crt, key: /good.key, session_tickets: ") + 2 * strlen(d)
                 + 1);
    expect_error(yaml, want);
    snprintf(yaml, sizeof(yaml), "server:\n  tls: {cert: %s/good.crt}\n", d);
    expect_error(yaml, "2:8: server.tls needs both cert and key (PEM files)");
    expect_error("server:\n  tls: yes\n",
                 "2:8: server.tls must be {cert: FILE, key: FILE, ...} or false, not a scalar");
    snprintf(yaml, sizeof(yaml), "server:\n  tls: {cert: %s/good.crt, key: %s/good.key, x: 1}\n", d,
             d);
    snprintf(want, sizeof(want), "2:%zu: unknown key \"x\" in server.tls",
             strlen("  tls: {cert: /good.crt, key: /good.key, x") + 2 * strlen(d));
    expect_error(yaml, want);
    snprintf(yaml, sizeof(yaml), "server:\n  tls: {cert: %s/nope.crt, key: %s/good.key}\n", d, d);
    snprintf(want, sizeof(want),
             "2:15: certificate \"%s/nope.crt\" cannot be read (2: No such file or directory)", d);
    expect_error(yaml, want);
    snprintf(yaml, sizeof(yaml), "server:\n  tls: {cert: %s/good.key, key: %s/good.key}\n", d, d);
    snprintf(want, sizeof(want),
             "2:15: server.tls: certificate: no PEM certificate (\"-----BEGIN CERTIFICATE-----\") "
             "(cert \"%s/good.key\", key \"%s/good.key\")",
             d, d);
    expect_error(yaml, want);
    snprintf(yaml, sizeof(yaml), "server:\n  tls: {cert: %s/good.crt, key: %s/wrong.key}\n", d, d);
    snprintf(want, sizeof(want),
             "2:%zu: server.tls: private key: it does not belong to the certificate "
             "(cert \"%s/good.crt\", key \"%s/wrong.key\")",
             strlen("  tls: {cert: /good.crt, key: ") + strlen(d) + 1, d, d);
    expect_error(yaml, want);
    expect_error("server:\n  listen: [{tls: false}]\n",
                 "2:12: listen needs an address (e.g. {address: 0.0.0.0:4443, tls: ...})");
    expect_error("server:\n  listen: {address: 127.0.0.1:1, port: 2}\n",
                 "2:34: unknown key \"port\" in listen");
    expect_error(
        "server:\n  admin_listen: {address: 127.0.0.1:1, tls: on}\n",
        "2:45: admin_listen 127.0.0.1:1 tls must be {cert: FILE, key: FILE, ...} or false, "
        "not a scalar");
    sl_test_rmtree(d);
    (void) state;
}


/* cache: and a model's cache: (core/conf/conf_cache.c). */
static void
test_cache(void **state)
{
    static const char *prov = "providers:\n  p: {kind: openai, base_url: \"http://x\"}\n";
    static const test_error_t t[] = {
        { "cache: {scope: world}\n",
          "1:16: invalid cache scope \"world\" (use key, team or global)" },
        { "cache: {ttl: 0}\n", "1:14: ttl must be between 1s and 365d" },
        { "cache: {max_size: 1KiB}\n", "1:19: max_size must be between 64KiB and 1TiB" },
        { "cache: {enable: true}\n", "1:9: unknown key \"enable\" in cache" },
        { "cache: {semantic: {threshold: 0.9}}\n",
          "1:19: cache.semantic needs an embedding target (\"provider/model\")" },
        { "cache: {semantic: {embedding: nope/e}}\n",
          "1:31: unknown provider \"nope\" in embedding target \"nope/e\"" },
        { "cache: {semantic: {embedding: e}}\n",
          "1:31: embedding target \"e\" must be \"provider/model\"" },
    };
    char err[TEST_ERR_MAX], yaml[512];
    sl_conf_t *conf = NULL;
    const sl_model_conf_t *m;

    (void) state;
    /* the defaults: off, 1h, key scope, 256MiB, no semantic part */
    assert_int_equal(load("models: {}\n", &conf, err, sizeof(err)), 0);
    assert_false(conf->cache.enabled);
    assert_int_equal(conf->cache.ttl, 3600 * 1000);
    assert_int_equal(conf->cache.scope, SL_CACHE_SCOPE_KEY);
    assert_int_equal(conf->cache.max_size, 256u << 20);
    assert_false(conf->cache.semantic);
    sl_conf_destroy(conf);

    snprintf(yaml, sizeof(yaml),
             "%scache:\n  enabled: true\n  ttl: 10m\n  scope: team\n  max_size: 1MiB\n"
             "  semantic: {embedding: p/text-embedding-3-small, threshold: 0.85, max_messages: 6}\n"
             "models:\n  a: {targets: [p/x], cache: false}\n"
             "  b: {targets: [p/x], cache: {ttl: 30s, semantic: false}}\n"
             "  c: {targets: [p/x], cache: true}\n  d: {targets: [p/x]}\n",
             prov);
    if (load(yaml, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_true(conf->cache.enabled);
    assert_int_equal(conf->cache.ttl, 600 * 1000);
    assert_int_equal(conf->cache.scope, SL_CACHE_SCOPE_TEAM);
    assert_int_equal(conf->cache.max_size, 1u << 20);
    assert_true(conf->cache.semantic);
    assert_ptr_equal(conf->cache.embedding.provider, &conf->providers[0]);
    assert_string_equal(conf->cache.embedding.model, "text-embedding-3-small");
    assert_true(conf->cache.threshold > 0.849f && conf->cache.threshold < 0.851f);
    assert_int_equal(conf->cache.max_messages, 6);
    m = sl_conf_model(conf, "a", 1);
    assert_int_equal(m->cache, SL_MODEL_CACHE_OFF);
    m = sl_conf_model(conf, "b", 1);
    assert_int_equal(m->cache, SL_MODEL_CACHE_ON);
    assert_int_equal(m->cache_ttl, 30 * 1000);
    assert_true(m->cache_no_semantic);
    m = sl_conf_model(conf, "c", 1);
    assert_int_equal(m->cache, SL_MODEL_CACHE_ON);
    assert_int_equal(m->cache_ttl, 0);
    m = sl_conf_model(conf, "d", 1);
    assert_int_equal(m->cache, SL_MODEL_CACHE_DEFAULT);
    sl_conf_destroy(conf);

    expect_errors(t, sizeof(t) / sizeof(t[0]));
    snprintf(yaml, sizeof(yaml), "%scache: {semantic: {embedding: p/e, threshold: 1.5}}\n", prov);
    expect_error(yaml,
                 "3:47: invalid threshold \"1.5\" (a cosine similarity above 0 and at most 1, "
                 "e.g. 0.92)");
    snprintf(yaml, sizeof(yaml), "%scache: {semantic: {embedding: p/e, threshold: 0}}\n", prov);
    expect_error(yaml, "3:47: invalid threshold \"0\" (a cosine similarity above 0 and at most 1, "
                       "e.g. 0.92)");
    snprintf(yaml, sizeof(yaml), "%smodels:\n  m: {targets: [p/x], cache: maybe}\n", prov);
    expect_error(yaml, "4:30: cache of model \"m\" must be true, false or a mapping");
    snprintf(yaml, sizeof(yaml), "%smodels:\n  m: {targets: [p/x], cache: {ttl: 1m, size: 1}}\n",
             prov);
    expect_error(yaml, "4:40: unknown key \"size\" in cache");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_tls_listen),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_base_urls),
        cmocka_unit_test(test_reference_config),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_errors_syntax),
        cmocka_unit_test(test_errors_server),
        cmocka_unit_test(test_errors_secrets),
        cmocka_unit_test(test_vault_refs),
        cmocka_unit_test(test_no_secrets_flag),
        cmocka_unit_test(test_errors_providers),
        cmocka_unit_test(test_errors_models),
        cmocka_unit_test(test_secret_never_in_messages),
        cmocka_unit_test(test_provider_hook),
        cmocka_unit_test(test_parse_share),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_errors_routing),
        cmocka_unit_test(test_errors_rules),
        cmocka_unit_test(test_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
