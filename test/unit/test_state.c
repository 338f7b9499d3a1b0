/*
 * Unit tests for core/gateway/state.c and core/base/shm.c: named regions of the shared
 * segment, the breaker state machine (thresholds, cooldown, the single
 * probe, also under concurrency between processes, a lost probe's lease,
 * release, a disabled breaker), the latency EWMA, in-flight counts with a
 * dead process's share cleared, rate-limit headroom, credential cooldowns,
 * the retry budget's window and floor, state surviving a reload, the
 * snapshot iterators, and a full table degrading to "no state".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf/conf.h"
#include "core/base/log.h"
#include "core/base/shm.h"
#include "core/gateway/state.h"

#define T0 1700000000000ull /* a fixed "now" */

typedef struct snap {
    unsigned n;
    sl_state_target_info_t want_info;
    const char *want;
    bool prefix; /* want is a prefix of the name */
    bool found;
    char want_name[SL_STATE_NAME_MAX];
} snap_t;

static sl_conf_t *load_conf(const char *yaml);
static sl_routing_conf_t breaker_conf(unsigned failures, uint64_t cooldown);
static int snap_cb(void *arg, const sl_state_target_info_t *t);
static int cred_cb(void *arg, const sl_state_cred_info_t *c);


static sl_conf_t *
load_conf(const char *yaml)
{
    char path[] = "/tmp/sl-state-XXXXXX", err[1024];
    sl_conf_t *conf = NULL;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t) strlen(yaml));
    close(fd);
    if (sl_conf_load(path, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    unlink(path);
    return conf;
}


static sl_routing_conf_t
breaker_conf(unsigned failures, uint64_t cooldown)
{
    sl_routing_conf_t rc;

    memset(&rc, 0, sizeof(rc));
    rc.breaker_failures = failures;
    rc.breaker_cooldown = cooldown;
    rc.first_token_timeout = 1000;
    return rc;
}


static int
snap_cb(void *arg, const sl_state_target_info_t *t)
{
    snap_t *s = arg;

    s->n++;
    if (s->want != NULL
        && (s->prefix ? strncmp(t->name, s->want, strlen(s->want)) == 0
                      : strcmp(t->name, s->want) == 0)) {
        s->found = true;
        s->want_info = *t;
        snprintf(s->want_name, sizeof(s->want_name), "%s", t->name);
    }
    return 0;
}


static int
cred_cb(void *arg, const sl_state_cred_info_t *c)
{
    snap_t *s = arg;

    s->n++;
    if (strcmp(c->provider, "cp") == 0 && strcmp(c->ref, "env:SL_STATE_K2") == 0) {
        s->found = true;
        s->want_info.open_until = c->cooling_until;
    }
    return 0;
}


static void
test_shm_regions(void **state)
{
    char *a, *b, *again;
    size_t used;
    pid_t pid;
    int status;

    (void) state;
    assert_int_equal(sl_shm_init(1 << 20), 0);
    assert_int_equal(sl_shm_init(1), 0); /* the first segment stays */
    assert_true(sl_shm_capacity() >= (1 << 20));
    a = sl_shm_region("test-a", 100);
    b = sl_shm_region("test-b", 10);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal((uintptr_t) a % 64, 0);
    assert_int_equal((uintptr_t) b % 64, 0);
    assert_true(b >= a + 100);
    assert_int_equal(a[0], 0);
    a[0] = 'x';
    used = sl_shm_used();
    /* asked for again (a reload): the same memory, nothing carved */
    again = sl_shm_region("test-a", 50);
    assert_ptr_equal(again, a);
    assert_int_equal(again[0], 'x');
    assert_int_equal(sl_shm_used(), used);
    /* refused: bigger than it was, no room, bad name */
    assert_null(sl_shm_region("test-a", 101));
    assert_null(sl_shm_region("test-huge", sl_shm_capacity()));
    assert_null(sl_shm_region("", 1));
    assert_null(sl_shm_region("a-name-that-is-much-too-long-for-the-table", 1));
    /* shared with a child */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        b[0] = 'y';
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(b[0], 'y');
}


static void
test_breaker_machine(void **state)
{
    sl_routing_conf_t rc = breaker_conf(3, 1000);
    sl_state_target_t *t;
    uint64_t now = T0;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    t = sl_state_target("bp", "m1");
    assert_non_null(t);
    assert_ptr_equal(sl_state_target("bp", "m1"), t);
    assert_ptr_not_equal(sl_state_target("bp", "m2"), t);

    /* closed: failures below the threshold, a success resets the count */
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PASS);
    assert_int_equal(sl_state_breaker_enter(t, now, &rc), SL_BREAKER_PASS);
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    sl_state_breaker_success(t, SL_BREAKER_PASS);
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PASS);
    assert_int_equal(sl_state_breaker_until(t), 0);

    /* the third in a row opens it for the cooldown */
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    assert_int_equal(sl_state_breaker_until(t), now + 1000);
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_SKIP);
    assert_int_equal(sl_state_breaker_enter(t, now + 999, &rc), SL_BREAKER_SKIP);
    /* more failures while open do not move the deadline */
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now + 500, &rc);
    assert_int_equal(sl_state_breaker_until(t), now + 1000);
    /* a stray success of a request that entered while closed does not close it */
    sl_state_breaker_success(t, SL_BREAKER_PASS);
    assert_int_equal(sl_state_breaker_peek(t, now + 999, &rc), SL_BREAKER_SKIP);

    /*
     * cooldown over: one probe; everyone else keeps skipping, also those
     * that planned with the probe due (the interleaving of a race)
     */
    now += 1000;
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PROBE);
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PROBE);
    assert_int_equal(sl_state_breaker_enter(t, now, &rc), SL_BREAKER_PROBE);
    assert_int_equal(sl_state_breaker_enter(t, now, &rc), SL_BREAKER_SKIP);
    assert_int_equal(sl_state_breaker_peek(t, now + 10, &rc), SL_BREAKER_SKIP);

    /* the probe fails: open again for a whole cooldown */
    sl_state_breaker_failure(t, SL_BREAKER_PROBE, now + 10, &rc);
    assert_int_equal(sl_state_breaker_until(t), now + 1010);
    assert_int_equal(sl_state_breaker_enter(t, now + 1009, &rc), SL_BREAKER_SKIP);

    /* the next probe succeeds: closed, count reset */
    now += 1010;
    assert_int_equal(sl_state_breaker_enter(t, now, &rc), SL_BREAKER_PROBE);
    sl_state_breaker_success(t, SL_BREAKER_PROBE);
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PASS);
    assert_int_equal(sl_state_breaker_until(t), 0);
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PASS);

    /* a probe given back (client gone): the next request may probe at once */
    sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    now += 1000;
    assert_int_equal(sl_state_breaker_enter(t, now, &rc), SL_BREAKER_PROBE);
    sl_state_breaker_release(t, SL_BREAKER_PROBE, now + 5);
    assert_int_equal(sl_state_breaker_enter(t, now + 5, &rc), SL_BREAKER_PROBE);

    /* a probe that never reports (its process died): another after the lease */
    assert_int_equal(sl_state_breaker_enter(t, now + 6, &rc), SL_BREAKER_SKIP);
    assert_int_equal(sl_state_breaker_until(t), now + 5 + SL_STATE_PROBE_LEASE);
    assert_int_equal(sl_state_breaker_enter(t, now + 5 + SL_STATE_PROBE_LEASE - 1, &rc),
                     SL_BREAKER_SKIP);
    assert_int_equal(sl_state_breaker_enter(t, now + 5 + SL_STATE_PROBE_LEASE, &rc),
                     SL_BREAKER_PROBE);
    sl_state_breaker_success(t, SL_BREAKER_PROBE);

    /* releasing a PASS or releasing twice changes nothing */
    sl_state_breaker_release(t, SL_BREAKER_PASS, now);
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PASS);

    /* failures 0: no breaker, whatever the stored state */
    for (int i = 0; i < 3; i++) {
        sl_state_breaker_failure(t, SL_BREAKER_PASS, now, &rc);
    }
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_SKIP);
    rc.breaker_failures = 0;
    assert_int_equal(sl_state_breaker_peek(t, now, &rc), SL_BREAKER_PASS);
    assert_int_equal(sl_state_breaker_enter(t, now, &rc), SL_BREAKER_PASS);

    /* a NULL handle (no state): always PASS, never a crash */
    rc.breaker_failures = 3;
    assert_int_equal(sl_state_breaker_peek(NULL, now, &rc), SL_BREAKER_PASS);
    assert_int_equal(sl_state_breaker_enter(NULL, now, &rc), SL_BREAKER_PASS);
    sl_state_breaker_failure(NULL, SL_BREAKER_PASS, now, &rc);
    sl_state_breaker_success(NULL, SL_BREAKER_PROBE);
    sl_state_breaker_release(NULL, SL_BREAKER_PROBE, now);
    assert_int_equal(sl_state_breaker_until(NULL), 0);
}


/*
 * Processes race for a due probe, round after round: exactly one of them
 * gets it every time, and the others see its claim. (A race this short
 * cannot prove the claim atomic: test_breaker_machine simulates the
 * interleaving where every racer saw the probe due before any claimed it.)
 */
#define RACE_ROUNDS 50
#define RACE_PROCS  3

typedef struct race {
    _Atomic unsigned round;
    _Atomic unsigned done;
    _Atomic unsigned probes[RACE_ROUNDS + 1];
    _Atomic unsigned skips[RACE_ROUNDS + 1];
} race_t;

static void
test_probe_concurrency(void **state)
{
    sl_routing_conf_t rc = breaker_conf(1, 1000);
    sl_state_target_t *t;
    pid_t pids[RACE_PROCS];
    race_t *race;
    int status;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    t = sl_state_target("bp", "race");
    assert_non_null(t);
    race = sl_shm_region("test-race", sizeof(*race));
    assert_non_null(race);

    for (int i = 0; i < RACE_PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            for (unsigned r = 1; r <= RACE_ROUNDS; r++) {
                while (atomic_load(&race->round) < r) {
                    sched_yield();
                }
                switch (sl_state_breaker_enter(t, T0 + 1000, &rc)) {
                case SL_BREAKER_PROBE:
                    atomic_fetch_add(&race->probes[r], 1);
                    break;
                case SL_BREAKER_SKIP:
                    atomic_fetch_add(&race->skips[r], 1);
                    break;
                default:
                    break;
                }
                atomic_fetch_add(&race->done, 1);
            }
            _exit(0);
        }
    }
    for (unsigned r = 1; r <= RACE_ROUNDS; r++) {
        /* open, and due for a probe at T0 + 1000 */
        sl_state_breaker_failure(t, SL_BREAKER_PROBE, T0, &rc);
        assert_int_equal(sl_state_breaker_peek(t, T0 + 1000, &rc), SL_BREAKER_PROBE);
        atomic_store(&race->round, r);
        while (atomic_load(&race->done) < r * RACE_PROCS) {
            sched_yield();
        }
    }
    for (int i = 0; i < RACE_PROCS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
    }
    for (unsigned r = 1; r <= RACE_ROUNDS; r++) {
        if (race->probes[r] != 1 || race->skips[r] != RACE_PROCS - 1) {
            fail_msg("round %u: %u probes, %u skips", r, race->probes[r], race->skips[r]);
        }
    }
    /* the last prober's process is gone without a word: half-open until its lease ends */
    assert_int_equal(sl_state_breaker_enter(t, T0 + 1001, &rc), SL_BREAKER_SKIP);
    assert_int_equal(sl_state_breaker_enter(t, T0 + 1000 + SL_STATE_PROBE_LEASE, &rc),
                     SL_BREAKER_PROBE);
}


static void
test_latency_ewma(void **state)
{
    sl_state_target_t *t;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    t = sl_state_target("lp", "m");
    assert_int_equal(sl_state_latency(t, false), 0);
    assert_int_equal(sl_state_latency(t, true), 0);
    /* the first sample is taken as is; then new = old + (sample - old) / 8 */
    sl_state_latency_record(t, 1000, 0);
    assert_int_equal(sl_state_latency(t, false), 1000);
    assert_int_equal(sl_state_latency(t, true), 0);
    sl_state_latency_record(t, 2000, 400);
    assert_int_equal(sl_state_latency(t, false), 1125);
    assert_int_equal(sl_state_latency(t, true), 400);
    sl_state_latency_record(t, 125, 800);
    assert_int_equal(sl_state_latency(t, false), 1000);
    assert_int_equal(sl_state_latency(t, true), 450);
    /* it converges on a steady value */
    for (int i = 0; i < 200; i++) {
        sl_state_latency_record(t, 5000, 0);
    }
    assert_in_range(sl_state_latency(t, false), 4990, 5000);
    /* 0 is a valid sample but never "unknown"; integer rounding settles within 4 us */
    for (int i = 0; i < 200; i++) {
        sl_state_latency_record(t, 0, 0);
    }
    assert_in_range(sl_state_latency(t, false), 1, 5);
    assert_int_equal(sl_state_latency(NULL, false), 0);
    sl_state_latency_record(NULL, 5, 5);
}


static void
test_inflight(void **state)
{
    sl_state_target_t *t;
    pid_t pid;
    int status;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    t = sl_state_target("ip", "m");
    sl_state_inflight_add(t, 1);
    sl_state_inflight_add(t, 1);
    sl_state_inflight_add(t, 1);
    sl_state_inflight_add(t, -1);
    assert_int_equal(sl_state_inflight(t), 2);

    /* a worker killed with requests in flight: the master clears its share */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sl_state_inflight_add(t, 1);
        sl_state_inflight_add(t, 1);
        kill(getpid(), SIGKILL);
        _exit(1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(sl_state_inflight(t), 4);
    sl_state_process_exited(pid);
    assert_int_equal(sl_state_inflight(t), 2);
    sl_state_process_exited(pid); /* twice: harmless */
    assert_int_equal(sl_state_inflight(t), 2);
    sl_state_inflight_add(t, -2);
    assert_int_equal(sl_state_inflight(t), 0);
    /* never below zero */
    sl_state_inflight_add(t, -1);
    assert_int_equal(sl_state_inflight(t), 0);
    sl_state_inflight_add(t, 1);
    assert_int_equal(sl_state_inflight(NULL), 0);
    sl_state_inflight_add(NULL, 1);
}


static void
test_headroom(void **state)
{
    sl_state_target_t *t;
    sl_ratelimit_t rl = { -1, -1, 0, 0 }, got;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    t = sl_state_target("hp", "m");
    assert_false(sl_state_headroom_low(t, T0, 100));
    sl_state_headroom_get(t, T0, &got);
    assert_int_equal(got.requests_remaining, -1);
    assert_int_equal(got.tokens_remaining, -1);

    /* one request left until T0 + 1000 */
    rl.requests_remaining = 1;
    rl.requests_reset = T0 + 1000;
    sl_state_headroom_update(t, &rl, T0);
    assert_true(sl_state_headroom_low(t, T0, 1));
    assert_true(sl_state_headroom_low(t, T0 + 999, 1));
    assert_false(sl_state_headroom_low(t, T0 + 1000, 1));
    sl_state_headroom_get(t, T0 + 1000, &got);
    assert_int_equal(got.requests_remaining, -1);

    /* plenty of requests, few tokens; a count without reset holds for the TTL */
    rl.requests_remaining = 500;
    rl.requests_reset = T0 + 60000;
    rl.tokens_remaining = 300;
    rl.tokens_reset = 0;
    sl_state_headroom_update(t, &rl, T0);
    assert_false(sl_state_headroom_low(t, T0, 300));
    assert_true(sl_state_headroom_low(t, T0, 301));
    assert_false(sl_state_headroom_low(t, T0 + SL_STATE_HEADROOM_TTL, 301));
    sl_state_headroom_get(t, T0, &got);
    assert_int_equal(got.requests_remaining, 500);
    assert_int_equal(got.tokens_remaining, 300);
    assert_int_equal(got.tokens_reset, T0 + SL_STATE_HEADROOM_TTL);

    /* unknown fields leave the stored ones alone; zero tokens count as one */
    rl.requests_remaining = -1;
    rl.tokens_remaining = 0;
    rl.tokens_reset = T0 + 10;
    sl_state_headroom_update(t, &rl, T0);
    sl_state_headroom_get(t, T0, &got);
    assert_int_equal(got.requests_remaining, 500);
    assert_true(sl_state_headroom_low(t, T0, 0));
    assert_false(sl_state_headroom_low(NULL, T0, 0));
}


static void
test_credentials(void **state)
{
    sl_state_cred_t *a, *b;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    a = sl_state_cred("cp", "vault:k1");
    b = sl_state_cred("cp", "vault:k2");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(sl_state_cred("cp", "vault:k1"), a);
    /* the same reference under another provider is another credential */
    assert_ptr_not_equal(sl_state_cred("other", "vault:k1"), a);
    assert_int_equal(sl_state_cred_until(a), 0);
    sl_state_cred_cool(a, T0 + 5000);
    assert_int_equal(sl_state_cred_until(a), T0 + 5000);
    /* a shorter Retry-After does not shorten a longer one */
    sl_state_cred_cool(a, T0 + 1000);
    assert_int_equal(sl_state_cred_until(a), T0 + 5000);
    sl_state_cred_cool(a, T0 + 9000);
    assert_int_equal(sl_state_cred_until(a), T0 + 9000);
    assert_int_equal(sl_state_cred_until(b), 0);
    assert_int_equal(sl_state_cred_until(NULL), 0);
    sl_state_cred_cool(NULL, T0);
}


static void
test_retry_budget(void **state)
{
    uint64_t now = T0 + 500000; /* far from the other tests' windows */
    unsigned allowed = 0;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    /* a quiet gateway: the floor */
    while (sl_state_budget_retry(now, 200) && allowed < 1000) {
        allowed++;
    }
    assert_int_equal(allowed, SL_STATE_RETRY_FLOOR);
    /* 100 requests at 20%: 20 more */
    for (int i = 0; i < 100; i++) {
        sl_state_budget_request(now + 1000);
    }
    allowed = 0;
    while (sl_state_budget_retry(now + 1000, 200) && allowed < 1000) {
        allowed++;
    }
    assert_int_equal(allowed, 20);
    /* 0% leaves only the floor, which is used up */
    assert_false(sl_state_budget_retry(now + 1000, 0));
    /* once the window slid past, the budget is back */
    assert_true(sl_state_budget_retry(now + 1000 + SL_STATE_RETRY_WINDOW * 1000, 200));
}


static void
test_reload_and_snapshot(void **state)
{
    static const char one[] = "providers:\n"
                              "  a: {kind: openai, base_url: \"http://a\"}\n"
                              "  cp: {kind: openai, base_url: \"http://c\", api_key: "
                              "[env:SL_STATE_K1, env:SL_STATE_K2]}\n"
                              "models:\n"
                              "  m: {targets: [a/x, cp/y]}\n";
    static const char two[] = "providers:\n"
                              "  a: {kind: openai, base_url: \"http://a\"}\n"
                              "  b: {kind: openai, base_url: \"http://b\"}\n"
                              "models:\n"
                              "  m:\n"
                              "    targets: [a/x]\n"
                              "    rules:\n"
                              "      - {when: {key: k}, targets: [b/new]}\n";
    sl_routing_conf_t rc = breaker_conf(1, 30000);
    sl_conf_t *c1, *c2;
    snap_t s;

    (void) state;
    setenv("SL_STATE_K1", "sk-1", 1);
    setenv("SL_STATE_K2", "sk-2", 1);
    c1 = load_conf(one);
    assert_int_equal(sl_state_init(c1), 0);
    sl_state_breaker_failure(sl_state_target("a", "x"), SL_BREAKER_PASS, T0, &rc);
    sl_state_latency_record(sl_state_target("a", "x"), 2500, 700);
    sl_state_inflight_add(sl_state_target("a", "x"), 1);
    sl_state_cred_cool(sl_state_cred("cp", "env:SL_STATE_K2"), T0 + 7000);

    /* a reload: a/x keeps its state, b/new is registered fresh */
    c2 = load_conf(two);
    assert_int_equal(sl_state_init(c2), 0);
    memset(&s, 0, sizeof(s));
    s.want = "a/x";
    assert_int_equal(sl_state_each_target(snap_cb, &s, T0), 0);
    assert_true(s.found);
    assert_int_equal(s.want_info.provider_len, 1);
    assert_int_equal(s.want_info.breaker, SL_BREAKER_OPEN);
    assert_int_equal(s.want_info.open_until, T0 + 30000);
    assert_int_equal(s.want_info.failures, 1);
    assert_int_equal(s.want_info.latency_us, 2500);
    assert_int_equal(s.want_info.ttft_us, 700);
    assert_int_equal(s.want_info.in_flight, 1);
    assert_int_equal(s.want_info.headroom.requests_remaining, -1);
    sl_state_inflight_add(sl_state_target("a", "x"), -1);

    memset(&s, 0, sizeof(s));
    s.want = "b/new";
    assert_int_equal(sl_state_each_target(snap_cb, &s, T0), 0);
    assert_true(s.found);
    assert_int_equal(s.want_info.breaker, SL_BREAKER_CLOSED);
    assert_int_equal(s.want_info.open_until, 0);
    assert_int_equal(s.want_info.latency_us, 0);
    /* targets of the old configuration are still listed (and keep their state) */
    memset(&s, 0, sizeof(s));
    s.want = "cp/y";
    sl_state_each_target(snap_cb, &s, T0);
    assert_true(s.found);

    memset(&s, 0, sizeof(s));
    assert_int_equal(sl_state_each_cred(cred_cb, &s), 0);
    assert_true(s.n >= 2);
    assert_true(s.found);
    assert_int_equal(s.want_info.open_until, T0 + 7000);
    sl_conf_destroy(c1);
    sl_conf_destroy(c2);
}


/* Last: it fills the table. Direct names stop getting state; configured ones never do. */
static void
test_table_full(void **state)
{
    static const char conf_yaml[] = "providers:\n"
                                    "  late: {kind: openai, base_url: \"http://l\"}\n"
                                    "models:\n"
                                    "  m: {targets: [late/one, late/two]}\n";
    char model[32];
    unsigned got = 0, none = 0;
    sl_conf_t *conf;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    for (int i = 0; i < 400; i++) {
        snprintf(model, sizeof(model), "direct-%d", i);
        if (sl_state_target("flood", model) != NULL) {
            got++;
        } else {
            none++;
        }
    }
    assert_true(got > 0);
    assert_true(none > 0);
    assert_null(sl_state_target("flood", "one-more"));
    /* the master still registers configured targets beyond the workers' quota */
    conf = load_conf(conf_yaml);
    assert_int_equal(sl_state_init(conf), 0);
    assert_non_null(sl_state_target("late", "one"));
    assert_non_null(sl_state_target("late", "two"));
    sl_conf_destroy(conf);
}


/* Names longer than a slot's copy are told apart by their hash and kept prefix. */
static void
test_long_names(void **state)
{
    char a[801], b[600];
    sl_state_target_t *ta, *tb;
    snap_t s;

    (void) state;
    assert_int_equal(sl_state_init(NULL), 0);
    memset(a, 'q', 599);
    a[599] = '\0';
    memcpy(b, a, sizeof(b));
    b[500] = 'r';
    ta = sl_state_target("lnp", a);
    tb = sl_state_target("lnp", b);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_ptr_not_equal(ta, tb);
    assert_ptr_equal(sl_state_target("lnp", a), ta);
    assert_ptr_equal(sl_state_target("lnp", b), tb);
    memset(&s, 0, sizeof(s));
    sl_state_each_target(snap_cb, &s, T0);
    assert_true(s.n >= 2);

    /* a cut never splits a UTF-8 character: "u8x/" then 400 two-byte characters */
    for (int i = 0; i < 400; i++) {
        a[2 * i] = (char) 0xc3;
        a[2 * i + 1] = (char) 0xa9;
    }
    a[800] = '\0';
    ta = sl_state_target("u8x", a);
    assert_non_null(ta);
    assert_ptr_equal(sl_state_target("u8x", a), ta);
    memset(&s, 0, sizeof(s));
    s.want = "u8x/\xc3\xa9";
    s.prefix = true;
    sl_state_each_target(snap_cb, &s, T0);
    assert_true(s.found);
    assert_int_equal(strlen(s.want_name), SL_STATE_NAME_MAX - 2);
    assert_int_equal((unsigned char) s.want_name[SL_STATE_NAME_MAX - 3], 0xa9);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shm_regions),
        cmocka_unit_test(test_breaker_machine),
        cmocka_unit_test(test_probe_concurrency),
        cmocka_unit_test(test_latency_ewma),
        cmocka_unit_test(test_inflight),
        cmocka_unit_test(test_headroom),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_retry_budget),
        cmocka_unit_test(test_reload_and_snapshot),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_table_full),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
