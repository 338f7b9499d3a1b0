/*
 * Unit tests for core/gateway/retry.c: backoff with full jitter (bounds, doubling,
 * the max_wait cap, an injected random source), Retry-After in all its
 * forms with garbage ignored, retry-after-ms first, the failure classes
 * against retry_on, Go-style durations, RFC 3339 times and the providers'
 * rate-limit headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/base/errno.h"
#include "core/gateway/retry.h"

/* 2024-01-01T00:00:00Z */
#define JAN1_2024 1704067200000ull

typedef struct fixed_rand {
    uint64_t value;
    unsigned calls;
} fixed_rand_t;

static uint64_t fixed(void *arg);
static sl_str_t str(const char *s);
static sl_routing_conf_t routing(uint64_t backoff, uint64_t max_wait);


static uint64_t
fixed(void *arg)
{
    fixed_rand_t *r = arg;

    r->calls++;
    return r->value;
}


static sl_str_t
str(const char *s)
{
    return (sl_str_t){ s, strlen(s) };
}


static sl_routing_conf_t
routing(uint64_t backoff, uint64_t max_wait)
{
    sl_routing_conf_t rc;

    memset(&rc, 0, sizeof(rc));
    rc.backoff = backoff;
    rc.max_wait = max_wait;
    rc.retry_on = SL_RETRY_ON_ALL;
    return rc;
}


static void
test_backoff(void **state)
{
    sl_routing_conf_t rc = routing(200, 5000);
    fixed_rand_t r = { UINT64_MAX, 0 };

    (void) state;
    /* the largest draw hits the cap exactly: 200, 400, 800, ... up to max_wait */
    assert_int_equal(sl_retry_backoff(&rc, 0, fixed, &r), UINT64_MAX % 201);
    r.value = 200;
    assert_int_equal(sl_retry_backoff(&rc, 0, fixed, &r), 200);
    r.value = 400;
    assert_int_equal(sl_retry_backoff(&rc, 1, fixed, &r), 400);
    r.value = 401;
    assert_int_equal(sl_retry_backoff(&rc, 1, fixed, &r), 0);
    r.value = 3200;
    assert_int_equal(sl_retry_backoff(&rc, 4, fixed, &r), 3200);
    r.value = 5000;
    assert_int_equal(sl_retry_backoff(&rc, 5, fixed, &r), 5000); /* 6400 capped at 5000 */
    r.value = 5001;
    assert_int_equal(sl_retry_backoff(&rc, 5, fixed, &r), 0);
    assert_int_equal(sl_retry_backoff(&rc, 200, fixed, &r), 0); /* no overflow at any n */
    r.value = 0;
    assert_int_equal(sl_retry_backoff(&rc, 3, fixed, &r), 0);
    assert_int_equal(r.calls, 9);

    /* backoff 0: no wait and no draw */
    rc = routing(0, 5000);
    assert_int_equal(sl_retry_backoff(&rc, 3, fixed, &r), 0);
    assert_int_equal(r.calls, 9);

    /* the default source stays within the bounds */
    rc = routing(100, 1000);
    for (unsigned n = 0; n < 6; n++) {
        for (int i = 0; i < 200; i++) {
            uint64_t w = sl_retry_backoff(&rc, n, NULL, NULL);
            uint64_t cap = (100ull << n) > 1000 ? 1000 : (100ull << n);

            assert_true(w <= cap);
        }
    }
}


static void
test_retry_after(void **state)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        { "0", 0 },
        { "30", 30000 },
        { " 2 ", 2000 },
        { "1.5", 1500 },
        { "0.0001", 1 },
        { "99999999999999999999", SL_RETRY_AFTER_MAX },
        /* IMF-fixdate, RFC 850, asctime; relative to JAN1_2024 */
        { "Mon, 01 Jan 2024 00:00:30 GMT", 30000 },
        { "Monday, 01-Jan-24 00:01:00 GMT", 60000 },
        { "Mon Jan  1 00:00:05 2024", 5000 },
        { "Mon Jan 01 00:00:05 2024", 5000 },
        { "Sun, 31 Dec 2023 23:59:00 GMT", 0 }, /* in the past */
        { "Tue, 02 Jan 2024 00:00:00 GMT", 86400000 },
        { "Fri, 01 Jan 2100 00:00:00 GMT", SL_RETRY_AFTER_MAX },
    };
    static const char *const bad[] = {
        "",
        "soon",
        "-1",
        "1.",
        "1e3",
        "1,5",
        "30s",
        "Mon, 01 Jan 2024 00:00:30",
        "Mon, 01 Foo 2024 00:00:30 GMT",
        "Mon, 1 Jan 2024 00:00:30 GMT",
        "Mon, 01 Jan 2024 25:00:30 GMT",
        "Mon, 01 Jan 2024 00:00:30 UTC",
        "Mon Jan  1 00:00:05 24",
        "Thu, 01 Jan 1960 00:00:00 GMT",
    };
    uint64_t ms;

    (void) state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ms = 12345;
        if (sl_retry_parse_after(str(ok[i].in), JAN1_2024, &ms) != 0) {
            fail_msg("\"%s\" refused", ok[i].in);
        }
        if (ms != ok[i].ms) {
            fail_msg("\"%s\": %llu, want %llu", ok[i].in, (unsigned long long) ms,
                     (unsigned long long) ok[i].ms);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_retry_parse_after(str(bad[i]), JAN1_2024, &ms) != SL_EPARSE) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
    }
}


static void
test_retry_after_headers(void **state)
{
    sl_http_header_t h[3];

    (void) state;
    assert_int_equal(sl_retry_after(NULL, 0, JAN1_2024), -1);
    h[0] = (sl_http_header_t){ str("content-type"), str("application/json") };
    assert_int_equal(sl_retry_after(h, 1, JAN1_2024), -1);
    h[1] = (sl_http_header_t){ str("Retry-After"), str("7") };
    assert_int_equal(sl_retry_after(h, 2, JAN1_2024), 7000);
    /* retry-after-ms wins, fractions round up */
    h[2] = (sl_http_header_t){ str("retry-after-ms"), str("1500.2") };
    assert_int_equal(sl_retry_after(h, 3, JAN1_2024), 1501);
    /* a garbage retry-after-ms falls back to retry-after */
    h[2].value = str("soon");
    assert_int_equal(sl_retry_after(h, 3, JAN1_2024), 7000);
    /* both garbage: nothing */
    h[1].value = str("later");
    assert_int_equal(sl_retry_after(h, 3, JAN1_2024), -1);
    h[2].value = str("250");
    assert_int_equal(sl_retry_after(h, 3, JAN1_2024), 250);
    h[2].value = str("999999999999");
    assert_int_equal(sl_retry_after(h, 3, JAN1_2024), (int64_t) SL_RETRY_AFTER_MAX);
}


static void
test_classify(void **state)
{
    const unsigned all = SL_RETRY_ON_ALL;
    const unsigned both = SL_RETRY_SAME | SL_RETRY_NEXT;

    (void) state;
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 200), 0);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 304), 0);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_CONNECT, 0), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_CUT, 0), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_TIMEOUT, 0), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 500), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 502), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 503), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 529), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 501), SL_RETRY_NEXT);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 429), both | SL_RETRY_COOLDOWN);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 408), both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 409), both);
    /* any other 4xx: final, not the target's fault */
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 400), 0);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 401), 0);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 403), 0);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 404), 0);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 413), 0);
    assert_int_equal(sl_retry_classify(all, SL_FAIL_NONE, 422), 0);

    /* retry_on decides whether to retry; the breaker counts regardless */
    assert_int_equal(sl_retry_classify(0, SL_FAIL_CONNECT, 0), SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(0, SL_FAIL_NONE, 429), SL_RETRY_COOLDOWN);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_5XX, SL_FAIL_TIMEOUT, 0), SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_5XX, SL_FAIL_NONE, 408), SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_5XX, SL_FAIL_NONE, 503),
                     both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_5XX, SL_FAIL_NONE, 409), both);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_TIMEOUT, SL_FAIL_NONE, 408),
                     both | SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_429, SL_FAIL_NONE, 503), SL_RETRY_BREAKER);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_429, SL_FAIL_NONE, 429),
                     both | SL_RETRY_COOLDOWN);
    assert_int_equal(sl_retry_classify(SL_RETRY_ON_CONNECT, SL_FAIL_CUT, 0),
                     both | SL_RETRY_BREAKER);
}


static void
test_durations(void **state)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        { "0", 0 },         { "0s", 0 },         { "1s", 1000 },
        { "6m0s", 360000 }, { "20ms", 20 },      { "1h2m3.5s", 3723500 },
        { "0.5s", 500 },    { "1.0001s", 1001 }, { "17ms", 17 },
        { "250us", 1 },     { "999ns", 1 },      { "2m", 120000 },
        { "7.66s", 7660 },  { " 3s ", 3000 },
    };
    static const char *const bad[] = { "", "s", "1", "1x", "-1s", "1s2", "1.s.s", "ms", "1 s" };
    uint64_t ms;

    (void) state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (sl_retry_parse_duration(str(ok[i].in), &ms) != 0) {
            fail_msg("\"%s\" refused", ok[i].in);
        }
        if (ms != ok[i].ms) {
            fail_msg("\"%s\": %llu, want %llu", ok[i].in, (unsigned long long) ms,
                     (unsigned long long) ok[i].ms);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_retry_parse_duration(str(bad[i]), &ms) != SL_EPARSE) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
    }
}


static void
test_rfc3339(void **state)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        { "2024-01-01T00:00:00Z", JAN1_2024 },
        { "2024-01-01t00:00:00z", JAN1_2024 },
        { "2024-01-01T00:00:01.5Z", JAN1_2024 + 1500 },
        { "2024-01-01T00:00:01.123456Z", JAN1_2024 + 1123 },
        { "2024-01-01T01:00:00+01:00", JAN1_2024 },
        { "2023-12-31T23:30:00-00:30", JAN1_2024 },
        { "2024-03-01T00:00:00Z", JAN1_2024 + 60ull * 86400000 }, /* 2024 is a leap year */
    };
    static const char *const bad[] = {
        "",
        "2024-01-01",
        "2024-01-01T00:00:00",
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00+1:00",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00Zjunk",
        "Mon, 01 Jan 2024 00:00:30 GMT",
    };
    uint64_t ms;

    (void) state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (sl_retry_parse_rfc3339(str(ok[i].in), &ms) != 0) {
            fail_msg("\"%s\" refused", ok[i].in);
        }
        if (ms != ok[i].ms) {
            fail_msg("\"%s\": %llu, want %llu", ok[i].in, (unsigned long long) ms,
                     (unsigned long long) ok[i].ms);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_retry_parse_rfc3339(str(bad[i]), &ms) != SL_EPARSE) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
    }
}


static void
test_ratelimit_headers(void **state)
{
    sl_http_header_t openai[] = {
        { str("x-ratelimit-limit-requests"), str("10000") },
        { str("x-ratelimit-remaining-requests"), str("9999") },
        { str("x-ratelimit-remaining-tokens"), str("149984") },
        { str("x-ratelimit-reset-requests"), str("6ms") },
        { str("x-ratelimit-reset-tokens"), str("6m0s") },
    };
    sl_http_header_t anthropic[] = {
        { str("anthropic-ratelimit-requests-remaining"), str("0") },
        { str("anthropic-ratelimit-requests-reset"), str("2024-01-01T00:00:30Z") },
        { str("anthropic-ratelimit-input-tokens-remaining"), str("5000") },
        { str("anthropic-ratelimit-input-tokens-reset"), str("2024-01-01T00:01:00Z") },
    };
    sl_http_header_t garbage[] = {
        { str("x-ratelimit-remaining-requests"), str("-3") },
        { str("x-ratelimit-remaining-tokens"), str("lots") },
        { str("x-ratelimit-reset-requests"), str("tomorrow") },
        { str("anthropic-ratelimit-tokens-remaining"), str("12") },
        { str("anthropic-ratelimit-tokens-reset"), str("not a date") },
    };
    sl_ratelimit_t rl;

    (void) state;
    assert_true(sl_retry_ratelimit(openai, 5, JAN1_2024, &rl));
    assert_int_equal(rl.requests_remaining, 9999);
    assert_int_equal(rl.tokens_remaining, 149984);
    assert_int_equal(rl.requests_reset, JAN1_2024 + 6);
    assert_int_equal(rl.tokens_reset, JAN1_2024 + 360000);

    assert_true(sl_retry_ratelimit(anthropic, 4, JAN1_2024, &rl));
    assert_int_equal(rl.requests_remaining, 0);
    assert_int_equal(rl.requests_reset, JAN1_2024 + 30000);
    assert_int_equal(rl.tokens_remaining, 5000);
    assert_int_equal(rl.tokens_reset, JAN1_2024 + 60000);

    /* garbage is ignored field by field */
    assert_true(sl_retry_ratelimit(garbage, 5, JAN1_2024, &rl));
    assert_int_equal(rl.requests_remaining, -1);
    assert_int_equal(rl.requests_reset, 0);
    assert_int_equal(rl.tokens_remaining, 12);
    assert_int_equal(rl.tokens_reset, 0);

    assert_false(sl_retry_ratelimit(garbage, 3, JAN1_2024, &rl));
    assert_false(sl_retry_ratelimit(NULL, 0, JAN1_2024, &rl));
    /* names in any case, among other headers (the pass that looks for any first) */
    {
        sl_http_header_t mixed[] = {
            { str("Content-Type"), str("application/json") },
            { str("X-RateLimit-Remaining-Tokens"), str("77") },
            { str("x-ratelimit-"), str("5") },
        };

        assert_true(sl_retry_ratelimit(mixed, 3, JAN1_2024, &rl));
        assert_int_equal(rl.tokens_remaining, 77);
        assert_false(sl_retry_ratelimit(mixed + 2, 1, JAN1_2024, &rl));
        assert_false(sl_retry_ratelimit(mixed, 1, JAN1_2024, &rl));
    }
    assert_int_equal(rl.requests_remaining, -1);
    assert_int_equal(rl.tokens_remaining, -1);
}


/*
 * sl_retry_rand keys its state to the process (the cached sl_pid, reset in
 * a forked child): a worker forked after its master drew numbers draws a
 * sequence of its own, not the master's next numbers.
 */
static void
test_rand_after_fork(void **state)
{
    uint64_t mine[4], theirs[4];
    int fds[2];
    pid_t child;
    int status;

    (void) state;
    (void) sl_retry_rand(NULL);
    assert_int_equal(pipe(fds), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        for (int i = 0; i < 4; i++) {
            theirs[i] = sl_retry_rand(NULL);
        }
        _exit(write(fds[1], theirs, sizeof(theirs)) == (ssize_t) sizeof(theirs) ? 0 : 1);
    }
    close(fds[1]);
    for (int i = 0; i < 4; i++) {
        mine[i] = sl_retry_rand(NULL);
    }
    assert_int_equal(read(fds[0], theirs, sizeof(theirs)), sizeof(theirs));
    close(fds[0]);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_memory_not_equal(mine, theirs, sizeof(mine));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_retry_after_headers),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_ratelimit_headers),
        cmocka_unit_test(test_rand_after_fork),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
