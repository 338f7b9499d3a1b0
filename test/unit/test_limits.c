/*
 * Unit tests for core/gateway/limits.c: the sliding window (no 60-second
 * window ever holds more than rpm admitted requests, whatever the arrival
 * pattern, across minute boundaries included), the exact Retry-After, tpm,
 * and the table shared across fork.
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

#include "core/gateway/limits.h"

#define MIN_MS 60000


static void
test_rpm(void **state)
{
    uint64_t retry = 0;
    const char *which = NULL;
    int64_t now = 6000000000LL; /* the start of a minute, in ms */

    (void) state;
    assert_int_equal(sl_limits_init(), 0);
    for (int i = 0; i < 3; i++) {
        assert_true(sl_limits_admit("key_rpm", 3, 0, now + 10000, &retry, &which));
    }
    assert_false(sl_limits_admit("key_rpm", 3, 0, now + 10500, &retry, &which));
    assert_string_equal(which, "requests");
    /* the three came in second 10 of the minute: they leave the window at second 71 */
    assert_int_equal(retry, 71000 - 10500);
    /* another key has its own window */
    assert_true(sl_limits_admit("key_other", 3, 0, now + 10000, &retry, &which));
    /* the next minute does not start afresh: the window slides */
    assert_false(sl_limits_admit("key_rpm", 3, 0, now + 60000, &retry, &which));
    assert_int_equal(retry, 11000);
    assert_false(sl_limits_admit("key_rpm", 3, 0, now + 70999, &retry, &which));
    assert_int_equal(retry, 1);
    assert_true(sl_limits_admit("key_rpm", 3, 0, now + 71000, &retry, &which));
    /* no limits: always admitted, nothing counted */
    assert_true(sl_limits_admit("key_none", 0, 0, now, &retry, &which));
}


/*
 * A request the response cache may answer is held to rpm before the lookup
 * and to tpm only after a miss: that second, tokens-only check must not
 * count the request again, or a key with rpm N would get N/2 misses.
 */
static void
test_tokens_only_counts_no_request(void **state)
{
    uint64_t retry = 0;
    const char *which = NULL;
    int64_t now = 6000000000LL;

    (void) state;
    assert_int_equal(sl_limits_init(), 0);
    for (int i = 0; i < 3; i++) {
        assert_true(sl_limits_admit("key_split", 3, 0, now + 1000, &retry, &which));
        assert_true(sl_limits_admit("key_split", 0, 1000, now + 1000, &retry, &which));
    }
    /* three requests counted, not six: the fourth is the one refused */
    assert_false(sl_limits_admit("key_split", 3, 0, now + 1000, &retry, &which));
    assert_string_equal(which, "requests");
}


/* rpm 6, as a new user tries it: six before a minute's end, six right after. */
static void
test_minute_boundary(void **state)
{
    uint64_t retry = 0;
    const char *which = NULL;
    int64_t minute = 6000120000LL; /* a minute boundary */
    int admitted = 0;

    (void) state;
    assert_int_equal(sl_limits_init(), 0);
    for (int i = 0; i < 6; i++) {
        admitted += sl_limits_admit("key_boundary", 6, 0, minute - 2000 + i * 100, &retry, &which);
    }
    for (int i = 0; i < 6; i++) {
        admitted += sl_limits_admit("key_boundary", 6, 0, minute + 500 + i * 100, &retry, &which);
    }
    assert_int_equal(admitted, 6);
    /* the first six came in second -2 of the boundary: admitted again from second 59 */
    assert_int_equal(retry, (uint64_t) (minute + 59000 - (minute + 1000)));
}


/*
 * Random arrivals over five minutes: every admitted request, with the ones
 * admitted in the 60 seconds before it, stays within rpm; and a denial's
 * Retry-After is exact: one millisecond earlier is denied, at it admitted.
 */
static void
test_sliding_property(void **state)
{
    static int64_t admitted[20000];
    size_t n = 0, oldest = 0;
    uint64_t retry = 0, probe;
    const char *which = NULL;
    int64_t t = 7000000123LL;
    const uint64_t rpm = 25;
    char key[32];

    (void) state;
    assert_int_equal(sl_limits_init(), 0);
    srand(42);
    for (int round = 0; round < 4; round++) {
        snprintf(key, sizeof(key), "key_prop_%d", round);
        n = 0;
        oldest = 0;
        for (int i = 0; i < 3000 && n < sizeof(admitted) / sizeof(admitted[0]); i++) {
            t += rand() % (round == 0 ? 50 : round == 1 ? 400 : round == 2 ? 2000 : 6000);
            if (sl_limits_admit(key, rpm, 0, t, &retry, &which)) {
                admitted[n++] = t;
                while (admitted[oldest] <= t - MIN_MS) {
                    oldest++;
                }
                assert_true(n - oldest <= rpm);
                continue;
            }
            /* exact: denied one ms before the time given, admitted at it (nothing else came) */
            probe = retry;
            assert_true(probe >= 1 && probe <= 61000);
            if (probe > 1) {
                assert_false(sl_limits_admit(key, rpm, 0, t + (int64_t) probe - 1, &retry, &which));
            }
            t += (int64_t) probe;
            assert_true(sl_limits_admit(key, rpm, 0, t, &retry, &which));
            admitted[n++] = t;
            while (admitted[oldest] <= t - MIN_MS) {
                oldest++;
            }
            assert_true(n - oldest <= rpm);
        }
    }
}


static void
test_tpm(void **state)
{
    uint64_t retry = 0;
    const char *which = NULL;
    int64_t now = 8000000000LL;

    (void) state;
    assert_int_equal(sl_limits_init(), 0);
    assert_true(sl_limits_admit("key_tpm1", 0, 100, now, &retry, &which));
    sl_limits_add_tokens("key_tpm1", 60, now + 1000);
    sl_limits_add_tokens("key_tpm1", 50, now + 5000);
    assert_false(sl_limits_admit("key_tpm1", 0, 100, now + 6000, &retry, &which));
    assert_string_equal(which, "tokens");
    /* 110 used: the 60 of second 1 must go, at second 62 */
    assert_int_equal(retry, 62000 - 6000);
    assert_true(sl_limits_admit("key_tpm1", 0, 100, now + 62000, &retry, &which));
    /* both limits: the longer wait is the answer */
    assert_true(sl_limits_admit("key_both", 1, 10, now, &retry, &which));
    sl_limits_add_tokens("key_both", 10, now + 30000);
    assert_false(sl_limits_admit("key_both", 1, 10, now + 30000, &retry, &which));
    assert_string_equal(which, "tokens");
    assert_int_equal(retry, 61000); /* tokens: second 30 + 61; requests would be 31000 */
}


static void
test_tpm_shared_across_fork(void **state)
{
    uint64_t retry = 0;
    const char *which = NULL;
    int64_t now = 7000020000LL;
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
    assert_false(sl_limits_admit("key_tpm", 0, 100, now + 1000, &retry, &which));
    assert_string_equal(which, "tokens");
    assert_true(sl_limits_admit("key_tpm", 0, 100, now + 61000, &retry, &which));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm),
        cmocka_unit_test(test_tokens_only_counts_no_request),
        cmocka_unit_test(test_minute_boundary),
        cmocka_unit_test(test_sliding_property),
        cmocka_unit_test(test_tpm),
        cmocka_unit_test(test_tpm_shared_across_fork),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
