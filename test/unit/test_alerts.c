/*
 * Unit tests for core/admin/alerts.c (episodes, the error-rate window,
 * model_down, the payload), core/http/url.c (webhook URLs) and the
 * dashboard: and alerts: configuration sections.
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
#include <uv.h>

#include "core/admin/alerts.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/base/shm.h"
#include "core/conf/conf.h"
#include "core/gateway/state.h"
#include "core/http/url.h"
#include "testutil.h"

static char tmpdir[128];
static char logpath[256];

static int
group_setup(void **state)
{
    (void) state;
    sl_test_tmpdir("/tmp/sl-alerts-XXXXXX", tmpdir, sizeof(tmpdir), logpath, sizeof(logpath));
    assert_int_equal(sl_shm_init(4u << 20), 0);
    assert_int_equal(sl_alerts_init(), 0);
    assert_int_equal(sl_state_init(NULL), 0);
    return 0;
}


static int
group_teardown(void **state)
{
    (void) state;
    sl_test_rmtree(tmpdir);
    return 0;
}


/* Loads YAML text as a configuration; err gets the message on failure. */
static int
load(const char *yaml, sl_conf_t **conf, char *err, size_t errlen)
{
    char path[300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/sluice.yaml", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "storage: {path: %s/var}\nproviders:\n  demo: {kind: echo}\n%s", tmpdir, yaml);
    fclose(f);
    return sl_conf_load(path, conf, err, errlen);
}


/* Once per episode; again after it ended or ran out. */
static void
test_episodes(void **state)
{
    (void) state;
    assert_true(sl_alerts_episode_begin("t|a", 0, 1000));
    assert_false(sl_alerts_episode_begin("t|a", 0, 1001));
    assert_true(sl_alerts_episode_begin("t|b", 0, 1001));
    sl_alerts_episode_end("t|a");
    assert_true(sl_alerts_episode_begin("t|a", 0, 1002));
    /* one that expires at 5000 is over by itself then */
    assert_true(sl_alerts_episode_begin("t|exp", 5000, 1000));
    assert_false(sl_alerts_episode_begin("t|exp", 5000, 4999));
    assert_true(sl_alerts_episode_begin("t|exp", 9000, 5000));
    /* ending an episode that never began is harmless */
    sl_alerts_episode_end("t|never");
}


/*
 * Episodes whose probe sequences overlap (500 in a table of 1024 slots)
 * end one by one: ending one neither misses it nor ends another, and
 * ending one that never began (its search stops at a free slot) ends none.
 */
static void
test_episodes_shared_slots(void **state)
{
    char key[32];

    (void) state;
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "t|many|%d", i);
        assert_true(sl_alerts_episode_begin(key, 0, 2000));
    }
    for (int i = 0; i < 500; i += 2) {
        snprintf(key, sizeof(key), "t|many|%d", i);
        sl_alerts_episode_end(key);
        snprintf(key, sizeof(key), "t|none|%d", i);
        sl_alerts_episode_end(key);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "t|many|%d", i);
        assert_int_equal(sl_alerts_episode_begin(key, 0, 2001), i % 2 == 0);
    }
}


/* Webhook URLs: scheme, host, port, target with query; no user info, no fragment. */
static void
test_url(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    const char *why = NULL;
    sl_url_t u;

    (void) state;
    assert_int_equal(sl_url_parse(pool, "https://hooks.example.com/services/T0/B0/xyz", &u, &why),
                     0);
    assert_true(u.tls);
    assert_string_equal(u.host, "hooks.example.com");
    assert_int_equal(u.port, 443);
    assert_string_equal(u.host_header, "hooks.example.com");
    assert_string_equal(u.target, "/services/T0/B0/xyz");
    assert_int_equal(sl_url_parse(pool, "http://127.0.0.1:9001?token=abc", &u, &why), 0);
    assert_false(u.tls);
    assert_int_equal(u.port, 9001);
    assert_string_equal(u.host_header, "127.0.0.1:9001");
    assert_string_equal(u.target, "/?token=abc");
    assert_int_equal(sl_url_parse(pool, "http://[::1]:8080/h", &u, &why), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.host_header, "[::1]:8080");
    assert_int_equal(sl_url_parse(pool, "ftp://x/", &u, &why), SL_EPARSE);
    assert_int_equal(sl_url_parse(pool, "https://user:pw@x/", &u, &why), SL_EPARSE);
    assert_null(strstr(why, "pw"));
    assert_int_equal(sl_url_parse(pool, "https://x/#frag", &u, &why), SL_EPARSE);
    assert_int_equal(sl_url_parse(pool, "https://x:99999/", &u, &why), SL_EPARSE);
    assert_int_equal(sl_url_parse(pool, "https://x:/", &u, &why), SL_EPARSE);
    assert_int_equal(sl_url_parse(pool, "https://ex ample/", &u, &why), SL_EPARSE);
    sl_pool_destroy(pool);
}


/* Slack's shape: text at the top, the structured fields beside it. */
static void
test_payload(void **state)
{
    json_t *detail = json_pack("{s:s}", "threshold", "80%");
    json_t *p =
        sl_alerts_payload("budget", "warning", "key alice", "hello", 1796428800000LL, detail);
    json_t *a;

    (void) state;
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "text")), "hello");
    a = json_object_get(p, "alert");
    assert_string_equal(json_string_value(json_object_get(a, "kind")), "budget");
    assert_string_equal(json_string_value(json_object_get(a, "subject")), "key alice");
    assert_string_equal(json_string_value(json_object_get(a, "time")), "2026-12-05T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(a, "threshold")), "80%");
    json_decref(p);
    json_decref(detail);
}


/* The sections' defaults and their checks. */
static void
test_conf(void **state)
{
    char err[1024];
    sl_conf_t *c;

    (void) state;
    assert_int_equal(load("", &c, err, sizeof(err)), 0);
    assert_true(c->dashboard.enabled);
    assert_int_equal(c->dashboard.session_ttl, 12 * 3600 * 1000);
    assert_false(c->dashboard.tail_text);
    assert_int_equal(c->alerts.nbudget, 2);
    assert_int_equal(c->alerts.budget[0], 800);
    assert_int_equal(c->alerts.budget[1], 1000);
    assert_null(c->alerts.webhook.value);
    assert_int_equal(c->alerts.error_rate, 200);
    sl_conf_destroy(c);

    setenv("SL_TEST_HOOK", "http://127.0.0.1:9/hook?token=t0p", 1);
    assert_int_equal(load("dashboard: {session_ttl: 1h, link_ttl: 2m, tail_text: true}\n"
                          "alerts:\n  webhook: env:SL_TEST_HOOK\n  budget: [50%, 90%, 100%]\n"
                          "  error_rate: {threshold: 10%, window: 1m, min_requests: 5}\n"
                          "  retries: 2\n  backoff: 50ms\n",
                          &c, err, sizeof(err)),
                     0);
    assert_int_equal(c->dashboard.session_ttl, 3600 * 1000);
    assert_int_equal(c->dashboard.link_ttl, 120 * 1000);
    assert_true(c->dashboard.tail_text);
    assert_string_equal(c->alerts.webhook.value, "http://127.0.0.1:9/hook?token=t0p");
    assert_int_equal(c->alerts.nbudget, 3);
    assert_int_equal(c->alerts.budget[0], 500);
    assert_int_equal(c->alerts.error_rate, 100);
    assert_int_equal(c->alerts.error_window, 60000);
    assert_int_equal(c->alerts.error_min_requests, 5);
    assert_int_equal(c->alerts.retries, 2);
    assert_int_equal(c->alerts.backoff, 50);
    sl_conf_destroy(c);

    assert_int_equal(load("alerts: {budget: false, error_rate: false}\n", &c, err, sizeof(err)), 0);
    assert_int_equal(c->alerts.nbudget, 0);
    assert_int_equal(c->alerts.error_rate, 0);
    sl_conf_destroy(c);

    setenv("SL_TEST_HOOK", "ftp://example.com/t0p-secret", 1);
    assert_int_equal(load("alerts: {webhook: env:SL_TEST_HOOK}\n", &c, err, sizeof(err)), SL_ECONF);
    assert_non_null(strstr(err, "alerts.webhook (env:SL_TEST_HOOK)"));
    assert_null(strstr(err, "t0p-secret"));
    assert_int_equal(load("alerts: {budget: [90%, 80%]}\n", &c, err, sizeof(err)), SL_ECONF);
    assert_non_null(strstr(err, "ascending"));
    assert_int_equal(load("alerts: {budget: [180%]}\n", &c, err, sizeof(err)), SL_ECONF);
    assert_int_equal(load("alerts: {bogus: 1}\n", &c, err, sizeof(err)), SL_ECONF);
    assert_non_null(strstr(err, "unknown key \"bogus\" in alerts"));
    assert_int_equal(load("dashboard: {session_ttl: 1s}\n", &c, err, sizeof(err)), SL_ECONF);
    assert_int_equal(load("dashboard: {tail_text: maybe}\n", &c, err, sizeof(err)), SL_ECONF);
    unsetenv("SL_TEST_HOOK");
}


static sl_ledger_row_t
row(const char *model, uint32_t status)
{
    sl_ledger_row_t r;

    memset(&r, 0, sizeof(r));
    r.model = model;
    r.status = status;
    r.key_name = "k";
    r.key_id = "";
    r.team = "";
    r.provider = "demo";
    return r;
}


static size_t
count_kind(const char *kind, const char *subject)
{
    json_t *a = sl_alerts_json(SL_ALERTS_RING), *e;
    size_t i, n = 0;

    json_array_foreach(a, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0
            && strcmp(json_string_value(json_object_get(e, "subject")), subject) == 0) {
            n++;
            /* no webhook here: shown on the dashboard only */
            assert_string_equal(json_string_value(json_object_get(e, "delivery")), "none");
        }
    }
    json_decref(a);
    return n;
}


/*
 * The error rate alerts once when the window's share of 5xx reaches the
 * threshold with enough requests; model_down once until a success.
 */
static void
test_error_rate_and_model_down(void **state)
{
    char err[1024];
    sl_conf_t *c;
    sl_alerts_t *a;
    uv_loop_t loop;
    sl_ledger_row_t r;

    (void) state;
    assert_int_equal(load("alerts: {error_rate: {threshold: 50%, window: 1h, min_requests: 4}}\n",
                          &c, err, sizeof(err)),
                     0);
    assert_int_equal(uv_loop_init(&loop), 0);
    a = sl_alerts_create(&loop, c, NULL);
    assert_non_null(a);

    r = row("flaky", 502);
    sl_alerts_record(&r, NULL, 0);
    sl_alerts_record(&r, NULL, 0);
    sl_alerts_record(&r, NULL, 0);
    assert_int_equal(count_kind("error_rate", "model flaky"), 0); /* 3 < min_requests */
    r = row("flaky", 200);
    sl_alerts_record(&r, NULL, 0);
    assert_int_equal(count_kind("error_rate", "model flaky"), 1); /* 3 of 4 */
    r = row("flaky", 503);
    sl_alerts_record(&r, NULL, 0);
    assert_int_equal(count_kind("error_rate", "model flaky"), 1); /* once per episode */
    r = row("steady", 200);
    for (int i = 0; i < 10; i++) {
        sl_alerts_record(&r, NULL, 0);
    }
    assert_int_equal(count_kind("error_rate", "model steady"), 0);

    sl_alerts_model_failed("fast", 503, 2);
    sl_alerts_model_failed("fast", 502, 2);
    assert_int_equal(count_kind("model_down", "model fast"), 1);
    r = row("fast", 200);
    sl_alerts_record(&r, NULL, 0); /* a success ends the episode */
    sl_alerts_model_failed("fast", 504, 1);
    assert_int_equal(count_kind("model_down", "model fast"), 2);

    sl_alerts_stop(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    sl_alerts_destroy(a);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_conf_destroy(c);
}


/* An alert's share of the budget: whole percent, and no share in the thousands. */
static void
test_share_text(void **state)
{
    char buf[32];

    assert_string_equal(sl__alerts_share_text(800.0, buf, sizeof(buf)), "80%");
    assert_string_equal(sl__alerts_share_text(1004.9, buf, sizeof(buf)), "100%");
    assert_string_equal(sl__alerts_share_text(9999.0, buf, sizeof(buf)), "999%");
    assert_string_equal(sl__alerts_share_text(15195000.0, buf, sizeof(buf)), "over 10x the budget");
    (void) state;
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_episodes),
        cmocka_unit_test(test_episodes_shared_slots),
        cmocka_unit_test(test_share_text),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_error_rate_and_model_down),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
