/*
 * Unit tests for core/admin/metrics.c: counters are shared across fork and render
 * as Prometheus text, with the per-target gauges of core/gateway/state.h (label
 * values escaped, each family's samples together); labelled series (requests,
 * spend, histograms) merge across processes, and once a table is full new
 * label sets fold into the "other" series.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/base/buf.h"
#include "core/admin/metrics.h"
#include "core/gateway/state.h"


static void
test_shared_across_fork(void **state)
{
    pid_t pid;
    int status;

    (void) state;
    assert_int_equal(sl_metrics_init(), 0);
    assert_int_equal(sl_metrics_init(), 0); /* idempotent */
    sl_metric_add(SL_METRIC_UNPRICED, 2);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sl_metric_add(SL_METRIC_UNPRICED, 3);
        sl_metric_add(SL_METRIC_UPSTREAM_ERRORS, 150);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(sl_metric_get(SL_METRIC_UNPRICED), 5);
    assert_int_equal(sl_metric_get(SL_METRIC_UPSTREAM_ERRORS), 150);
}


static void
test_render(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    sl_metrics_req_t m;

    (void) state;
    assert_int_equal(sl_metrics_init(), 0);
    memset(&m, 0, sizeof(m));
    m.frontend = "chat";
    m.model = "rm";
    m.provider = "rp";
    m.status = 200;
    for (int i = 0; i < 7; i++) {
        sl_metrics_request(&m);
    }
    sl_metrics_render(&b);
    sl_buf_append(&b, "", 1);
    assert_non_null(strstr(b.p, "# TYPE sluice_requests_total counter\n"));
    assert_non_null(strstr(b.p, "sluice_requests_total{frontend=\"chat\",model=\"rm\",provider="
                                "\"rp\",outcome=\"2xx\"} 7\n"));
    assert_non_null(strstr(b.p, "sluice_unpriced_requests_total "));
    /* one HELP per metric family, not per label set */
    assert_null(
        strstr(strstr(b.p, "# HELP sluice_requests_total") + 1, "# HELP sluice_requests_total"));
    sl_buf_free(&b);
}


/* The value of the sample line that starts with prefix, or -1. */
static double
sample(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);

    return p != NULL ? strtod(p + strlen(prefix), NULL) : -1;
}


/*
 * Requests from two processes land in one series; histograms are
 * cumulative with count = the +Inf bucket and the sum in seconds; spend
 * series carry tokens, cost, cache hits and savings by model, provider, key
 * and team; a request that spent nothing makes no spend series.
 */
static void
test_labelled(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    sl_metrics_req_t m;
    pid_t pid;
    int status;

    (void) state;
    assert_int_equal(sl_metrics_init(), 0);
    memset(&m, 0, sizeof(m));
    m.frontend = "messages";
    m.model = "lm";
    m.provider = "lp";
    m.key = "alice";
    m.team = "eng";
    m.status = 200;
    m.duration_us = 30000; /* 0.03 s: in the 0.05 bucket */
    m.ttft_us = 4000;
    m.prompt_tokens = 100;
    m.completion_tokens = 20;
    m.cached_tokens = 40;
    m.reasoning_tokens = 5;
    m.cost_nusd = 1500;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sl_metrics_request(&m);
        m.status = 502;
        m.duration_us = 2000000; /* 2 s */
        m.ttft_us = 0;
        m.prompt_tokens = m.completion_tokens = m.cached_tokens = m.reasoning_tokens = 0;
        m.cost_nusd = 0;
        sl_metrics_request(&m);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    m.cache_hit = true;
    m.saved_nusd = 700;
    m.cost_nusd = 0;
    m.prompt_tokens = 0;
    m.completion_tokens = 0;
    m.cached_tokens = 0;
    m.reasoning_tokens = 0;
    sl_metrics_request(&m);
    m.key = "bob"; /* nothing spent and no hit: no spend series for bob */
    m.cache_hit = false;
    m.saved_nusd = 0;
    sl_metrics_request(&m);
    sl_metrics_upstream("lp", "lm-2024", true, 120000);
    sl_metrics_upstream("lp", "lm-2024", false, 9000);
    sl_metrics_ledger_write(250);

    sl_metrics_render(&b);
    sl_buf_append(&b, "", 1);
#define L "frontend=\"messages\",model=\"lm\",provider=\"lp\""
#define S "model=\"lm\",provider=\"lp\",key=\"alice\",team=\"eng\""
    assert_int_equal(sample(b.p, "sluice_requests_total{" L ",outcome=\"2xx\"} "), 3);
    assert_int_equal(sample(b.p, "sluice_requests_total{" L ",outcome=\"5xx\"} "), 1);
    assert_int_equal(sample(b.p, "sluice_request_duration_seconds_bucket{" L ",le=\"0.025\"} "), 0);
    assert_int_equal(sample(b.p, "sluice_request_duration_seconds_bucket{" L ",le=\"0.05\"} "), 3);
    assert_int_equal(sample(b.p, "sluice_request_duration_seconds_bucket{" L ",le=\"2.5\"} "), 4);
    assert_int_equal(sample(b.p, "sluice_request_duration_seconds_bucket{" L ",le=\"+Inf\"} "), 4);
    assert_int_equal(sample(b.p, "sluice_request_duration_seconds_count{" L "} "), 4);
    assert_true(sample(b.p, "sluice_request_duration_seconds_sum{" L "} ") > 2.0899
                && sample(b.p, "sluice_request_duration_seconds_sum{" L "} ") < 2.0901);
    assert_int_equal(sample(b.p, "sluice_time_to_first_token_seconds_bucket{" L ",le=\"0.005\"} "),
                     3);
    assert_int_equal(sample(b.p, "sluice_time_to_first_token_seconds_count{" L "} "), 3);
    assert_int_equal(sample(b.p, "sluice_tokens_total{" S ",kind=\"prompt\"} "), 100);
    assert_int_equal(sample(b.p, "sluice_tokens_total{" S ",kind=\"completion\"} "), 20);
    assert_int_equal(sample(b.p, "sluice_cached_tokens_total{" S "} "), 40);
    assert_int_equal(sample(b.p, "sluice_reasoning_tokens_total{" S "} "), 5);
    assert_int_equal(sample(b.p, "sluice_cost_nanodollars_total{" S "} "), 1500);
    assert_int_equal(sample(b.p, "sluice_cache_hits_total{" S "} "), 1);
    assert_int_equal(sample(b.p, "sluice_cache_saved_nanodollars_total{" S "} "), 700);
    assert_null(strstr(b.p, "key=\"bob\""));
    assert_int_equal(sample(b.p, "sluice_upstream_latency_seconds_count{provider=\"lp\",model="
                                 "\"lm-2024\",outcome=\"ok\"} "),
                     1);
    assert_int_equal(sample(b.p, "sluice_upstream_latency_seconds_bucket{provider=\"lp\",model="
                                 "\"lm-2024\",outcome=\"error\",le=\"0.01\"} "),
                     1);
    assert_int_equal(sample(b.p, "sluice_ledger_write_seconds_bucket{le=\"0.005\"} "), 1);
    assert_int_equal(sample(b.p, "sluice_ledger_write_seconds_count "), 1);
#undef L
#undef S
    sl_buf_free(&b);
}


/*
 * Label values are cut at a character boundary, and once the spend table is
 * full a new label set is counted under the series whose labels are all
 * "other", so the scrape stays bounded.
 */
static void
test_bounded(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    sl_metrics_req_t m;
    char key[32], longm[300];
    const char *p;

    (void) state;
    assert_int_equal(sl_metrics_init(), 0);
    memset(&m, 0, sizeof(m));
    m.frontend = "chat";
    m.provider = "bp";
    m.model = "bm";
    m.status = 200;
    m.prompt_tokens = 1;
    for (int i = 0; i < SL_METRICS_SPEND + 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        m.key = key;
        sl_metrics_request(&m);
    }
    /* a 300-byte model name of two-byte characters: cut to whole characters */
    for (size_t i = 0; i + 1 < sizeof(longm); i += 2) {
        longm[i] = (char) 0xc3;
        longm[i + 1] = (char) 0xa9;
    }
    longm[sizeof(longm) - 1] = '\0';
    m.key = "k0";
    m.model = longm;
    sl_metrics_upstream("bp", longm, true, 1);
    sl_metrics_render(&b);
    sl_buf_append(&b, "", 1);
    assert_true(sample(b.p, "sluice_tokens_total{model=\"other\",provider=\"other\",key=\"other\","
                            "team=\"other\",kind=\"prompt\"} ")
                >= 10);
    /* the spend samples of one family never exceed the table */
    {
        size_t n = 0;

        for (p = strstr(b.p, "sluice_cost_nanodollars_total{"); p != NULL;
             p = strstr(p + 1, "sluice_cost_nanodollars_total{")) {
            n++;
        }
        assert_true(n <= SL_METRICS_SPEND);
    }
    p = strstr(b.p, "sluice_upstream_latency_seconds_count{provider=\"bp\",model=\"");
    assert_non_null(p);
    p += strlen("sluice_upstream_latency_seconds_count{provider=\"bp\",model=\"");
    assert_int_equal(strchr(p, '"') - p, 126); /* 63 whole characters of 2 bytes */
    sl_buf_free(&b);
}


static void
test_target_gauges(void **state)
{
    sl_routing_conf_t rc;
    sl_buf_t b = SL_BUF_INIT;
    sl_state_target_t *t;
    const char *breaker, *inflight;

    (void) state;
    memset(&rc, 0, sizeof(rc));
    rc.breaker_failures = 1;
    rc.breaker_cooldown = 60000;
    assert_int_equal(sl_metrics_init(), 0);
    assert_int_equal(sl_state_init(NULL), 0);
    t = sl_state_target("mp", "we\"ird\\model");
    assert_non_null(t);
    sl_state_inflight_add(t, 2);
    sl_state_breaker_failure(t, SL_BREAKER_PASS, sl_state_now(), &rc);
    sl_state_inflight_add(sl_state_target("mp", "calm"), 1);
    sl_metrics_render(&b);
    sl_buf_append(&b, "", 1);

    breaker = strstr(b.p, "# TYPE sluice_target_breaker_state gauge\n");
    inflight = strstr(b.p, "# TYPE sluice_target_in_flight gauge\n");
    assert_non_null(breaker);
    assert_non_null(inflight);
    assert_non_null(strstr(b.p, "# HELP sluice_target_breaker_state "));
    assert_non_null(strstr(
        breaker, "sluice_target_breaker_state{provider=\"mp\",model=\"we\\\"ird\\\\model\"} 1\n"));
    assert_non_null(
        strstr(breaker, "sluice_target_breaker_state{provider=\"mp\",model=\"calm\"} 0\n"));
    assert_non_null(strstr(
        inflight, "sluice_target_in_flight{provider=\"mp\",model=\"we\\\"ird\\\\model\"} 2\n"));
    assert_non_null(
        strstr(inflight, "sluice_target_in_flight{provider=\"mp\",model=\"calm\"} 1\n"));
    /* one family after the other: no in-flight sample among the breaker ones */
    assert_true(breaker < inflight);
    assert_null(strstr(inflight, "sluice_target_breaker_state{"));
    {
        const char *first_inflight = strstr(b.p, "sluice_target_in_flight{");

        assert_true(first_inflight > inflight);
    }
    sl_buf_free(&b);
}


/* The /admin/targets document: valid JSON, every field, unknowns null, no secret. */
static void
test_targets_json(void **state)
{
    sl_routing_conf_t rc;
    sl_ratelimit_t rl = { 7, -1, 1700000009000ull, 0 };
    uint64_t now = 1700000000000ull;
    sl_buf_t b = SL_BUF_INIT;
    sl_state_target_t *t;
    json_t *doc, *item, *found = NULL, *fresh = NULL, *cred = NULL;
    size_t i;

    (void) state;
    memset(&rc, 0, sizeof(rc));
    rc.breaker_failures = 1;
    rc.breaker_cooldown = 5000;
    assert_int_equal(sl_state_init(NULL), 0);
    t = sl_state_target("jp", "m\"1");
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    sl_state_latency_record(t, 1500, 0);
    sl_state_headroom_update(t, &rl, now);
    sl_state_target("jp", "fresh");
    sl_state_cred_cool(sl_state_cred("jp", "vault:k1"), now + 3000);
    sl_metrics_render_targets(&b, now);
    sl_buf_append(&b, "", 1);
    doc = json_loads(b.p, 0, NULL);
    assert_non_null(doc);
    json_array_foreach(json_object_get(doc, "targets"), i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "model")), "m\"1") == 0) {
            found = item;
        }
        if (strcmp(json_string_value(json_object_get(item, "model")), "fresh") == 0) {
            fresh = item;
        }
    }
    assert_non_null(found);
    assert_string_equal(json_string_value(json_object_get(found, "provider")), "jp");
    assert_string_equal(json_string_value(json_object_get(found, "breaker")), "open");
    assert_int_equal(json_integer_value(json_object_get(found, "failures")), 1);
    assert_int_equal(json_integer_value(json_object_get(found, "open_until_ms")), now + 5000);
    assert_int_equal(json_integer_value(json_object_get(found, "latency_us")), 1500);
    assert_true(json_is_null(json_object_get(found, "ttft_us")));
    assert_int_equal(json_integer_value(json_object_get(found, "requests_remaining")), 7);
    assert_int_equal(json_integer_value(json_object_get(found, "requests_reset_ms")),
                     1700000009000ll);
    assert_true(json_is_null(json_object_get(found, "tokens_remaining")));
    assert_int_equal(json_integer_value(json_object_get(found, "in_flight")), 0);
    assert_non_null(fresh);
    assert_string_equal(json_string_value(json_object_get(fresh, "breaker")), "closed");
    assert_true(json_is_null(json_object_get(fresh, "open_until_ms")));
    assert_true(json_is_null(json_object_get(fresh, "latency_us")));
    json_array_foreach(json_object_get(doc, "credentials"), i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "ref")), "vault:k1") == 0) {
            cred = item;
        }
    }
    assert_non_null(cred);
    assert_string_equal(json_string_value(json_object_get(cred, "provider")), "jp");
    assert_true(json_is_true(json_object_get(cred, "cooling")));
    assert_int_equal(json_integer_value(json_object_get(cred, "cooling_until_ms")), now + 3000);
    json_decref(doc);
    sl_buf_free(&b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_across_fork), cmocka_unit_test(test_render),
        cmocka_unit_test(test_labelled),           cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_target_gauges),      cmocka_unit_test(test_targets_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
