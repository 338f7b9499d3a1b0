/*
 * Unit tests for core/base/clock.c: outside a bracket every read reads the
 * clock (the same clock as uv_hrtime() and CLOCK_REALTIME); inside one the
 * callback's first read is the instant for the rest of it; nested brackets
 * share the outermost one's instant; sl_clock_forget() makes the next read
 * read again; another thread never sees the loop thread's bracket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "core/base/clock.h"

static void nap(void);
static void *thread_read(void *arg);
static void test_unbracketed(void **state);
static void test_bracket(void **state);
static void test_nested(void **state);
static void test_forget(void **state);
static void test_other_thread(void **state);


/* 2 ms: longer than any clock's step here, so two reads around it differ. */
static void
nap(void)
{
    struct timespec ts = { 0, 2000000 };

    nanosleep(&ts, NULL);
}


static void *
thread_read(void *arg)
{
    uint64_t *out = arg;

    out[0] = sl_clock_ns();
    out[1] = sl_clock_real_ns();
    return NULL;
}


static void
test_unbracketed(void **state)
{
    struct timespec ts;
    uint64_t a, b, c, real, ms;

    (void) state;
    a = uv_hrtime();
    b = sl_clock_ns();
    c = uv_hrtime();
    assert_true(a <= b && b <= c); /* uv_hrtime()'s clock */
    nap();
    assert_true(sl_clock_ns() > c);
    clock_gettime(CLOCK_REALTIME, &ts);
    real = sl_clock_real_ns();
    assert_true(real >= (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec);
    nap();
    ms = sl_clock_ms();
    assert_true(ms * 1000000 > real);
    assert_true(sl_clock_real_ns() > real);
}


static void
test_bracket(void **state)
{
    uint64_t ns, real, before = uv_hrtime();

    (void) state;
    sl_clock_enter();
    ns = sl_clock_ns();
    real = sl_clock_real_ns();
    assert_true(ns >= before);
    nap();
    assert_int_equal(sl_clock_ns(), ns);
    assert_int_equal(sl_clock_real_ns(), real);
    assert_int_equal(sl_clock_ms(), real / 1000000);
    sl_clock_leave();
    assert_true(sl_clock_ns() > ns);
    assert_true(sl_clock_real_ns() > real);

    /* a bracket that reads nothing leaves nothing behind */
    sl_clock_enter();
    sl_clock_leave();
    ns = uv_hrtime();
    nap();
    assert_true(sl_clock_ns() > ns);
}


static void
test_nested(void **state)
{
    uint64_t a;

    (void) state;
    sl_clock_enter();
    sl_clock_enter();
    a = sl_clock_ns();
    sl_clock_leave();
    nap();
    assert_int_equal(sl_clock_ns(), a); /* still inside the outer bracket */
    sl_clock_leave();
    assert_true(sl_clock_ns() > a); /* and no bracket is left open: */
    a = sl_clock_ns();
    nap();
    assert_true(sl_clock_ns() > a);
}


static void
test_forget(void **state)
{
    uint64_t a, b, real;

    (void) state;
    sl_clock_enter();
    a = sl_clock_ns();
    real = sl_clock_real_ns();
    nap();
    sl_clock_forget();
    b = sl_clock_ns();
    assert_true(b > a);
    assert_true(sl_clock_real_ns() > real);
    nap();
    assert_int_equal(sl_clock_ns(), b); /* the bracket holds the new instant */
    sl_clock_leave();
}


static void
test_other_thread(void **state)
{
    pthread_t th;
    uint64_t a, real, seen[2];

    (void) state;
    sl_clock_enter();
    a = sl_clock_ns();
    real = sl_clock_real_ns();
    nap();
    assert_int_equal(pthread_create(&th, NULL, thread_read, seen), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(seen[0] > a);
    assert_true(seen[1] > real);
    assert_int_equal(sl_clock_ns(), a);
    sl_clock_leave();
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unbracketed),  cmocka_unit_test(test_bracket),
        cmocka_unit_test(test_nested),       cmocka_unit_test(test_forget),
        cmocka_unit_test(test_other_thread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
