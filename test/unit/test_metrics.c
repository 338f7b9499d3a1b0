/*
 * Unit tests for core/admin/metrics.c: counters are shared across fork and render
 * as Prometheus text, with the per-target gauges of core/gateway/state.h (label
 * values escaped, each family's samples together).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
        sl_metric_add(SL_METRIC_COST_NUSD, 150);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(sl_metric_get(SL_METRIC_UNPRICED), 5);
    assert_int_equal(sl_metric_get(SL_METRIC_COST_NUSD), 150);
}


static void
test_render(void **state)
{
    sl_buf_t b = SL_BUF_INIT;

    (void) state;
    assert_int_equal(sl_metrics_init(), 0);
    sl_metric_add(SL_METRIC_REQUESTS_2XX, 7);
    sl_metrics_render(&b);
    sl_buf_append(&b, "", 1);
    assert_non_null(strstr(b.p, "# TYPE sluice_requests_total counter\n"));
    assert_non_null(strstr(b.p, "sluice_requests_total{outcome=\"2xx\"} 7\n"));
    assert_non_null(strstr(b.p, "sluice_unpriced_requests_total "));
    /* one HELP per metric family, not per label set */
    assert_null(
        strstr(strstr(b.p, "# HELP sluice_requests_total") + 1, "# HELP sluice_requests_total"));
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
        cmocka_unit_test(test_shared_across_fork),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_target_gauges),
        cmocka_unit_test(test_targets_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
