/*
 * Unit tests for core/metrics.c: counters are shared across fork and render
 * as Prometheus text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/metrics.h"


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


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_across_fork),
        cmocka_unit_test(test_render),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
