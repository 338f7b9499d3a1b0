/*
 * Unit tests for core/gateway/limits.c: per-key minute windows shared across fork.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/gateway/limits.h"


static void
test_rpm(void **state)
{
    unsigned retry = 0;
    const char *which = NULL;
    int64_t now = 6000000; /* the start of a minute */

    (void) state;
    assert_int_equal(sl_limits_init(), 0);
    for (int i = 0; i < 3; i++) {
        assert_true(sl_limits_admit("key_rpm", 3, 0, now + 10, &retry, &which));
    }
    assert_false(sl_limits_admit("key_rpm", 3, 0, now + 10, &retry, &which));
    assert_string_equal(which, "requests");
    assert_int_equal(retry, 50);
    /* another key has its own window */
    assert_true(sl_limits_admit("key_other", 3, 0, now + 10, &retry, &which));
    /* the next minute starts afresh */
    assert_true(sl_limits_admit("key_rpm", 3, 0, now + 60, &retry, &which));
    /* no limits: always admitted, nothing counted */
    assert_true(sl_limits_admit("key_none", 0, 0, now, &retry, &which));
}


static void
test_tpm_shared_across_fork(void **state)
{
    unsigned retry = 0;
    const char *which = NULL;
    int64_t now = 7000020;
    pid_t pid;
    int status;

    (void) state;
    assert_int_equal(sl_limits_init(), 0);
    assert_true(sl_limits_admit("key_tpm", 0, 100, now, &retry, &which));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sl_limits_add_tokens("key_tpm", 100, now);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(sl_limits_admit("key_tpm", 0, 100, now + 1, &retry, &which));
    assert_string_equal(which, "tokens");
    assert_true(sl_limits_admit("key_tpm", 0, 100, now + 60, &retry, &which));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm),
        cmocka_unit_test(test_tpm_shared_across_fork),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
