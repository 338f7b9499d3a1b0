/*
 * Gateway state shared by every worker: per target (provider + model) a
 * circuit breaker, latency estimates, the in-flight count and the
 * provider's rate-limit headroom; per provider credential a cooling-down
 * deadline; one global retry budget. This header is the whole interface:
 * the implementation in state.c keeps everything in the shared segment
 * (core/base/shm.h) with C11 atomics and no lock, and a networked store (Redis,
 * for several sluice nodes behind one load balancer) can implement the
 * same functions. Callers never see the layout: they hold opaque handles.
 *
 * Time. Every function takes the time as "now" in unix milliseconds
 * (sl_state_now(), CLOCK_REALTIME), a clock all processes and all nodes
 * share; tests pass their own.
 *
 * Robustness. No operation takes a lock, so a process killed in the middle
 * of one cannot wedge the others: at worst one update is lost. In-flight
 * counts are kept per process and the master zeroes a dead worker's share
 * (sl_state_process_exited), so a crash does not leave a target looking
 * busy forever.
 *
 * Capacity. The tables are sized when the master first maps the segment,
 * from the configuration, with headroom for reloads and direct
 * provider/model requests (those may take at most half of the target
 * table, so configured targets always find room). A target or credential
 * that finds no slot gets a NULL handle and is served without shared state
 * (a warning is logged once); every function accepts a NULL handle and then
 * does nothing or answers "unknown".
 *
 * Any process after sl_state_init() (inherited across fork).
 */
#ifndef SL_CORE_GATEWAY_STATE_H
#define SL_CORE_GATEWAY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/conf/conf.h"

#define SL_STATE_NAME_MAX                                                                    \
    336                             /* bytes of a stored name, NUL included; longer ones are \
                                       verified by their hash and this prefix */
#define SL_STATE_EWMA_SHIFT   3     /* latency EWMA alpha = 1 / 2^3 = 0.125 */
#define SL_STATE_RETRY_WINDOW 10    /* seconds of history the retry budget looks at */
#define SL_STATE_RETRY_FLOOR  10    /* extra attempts per window allowed whatever the traffic */
#define SL_STATE_HEADROOM_TTL 60000 /* ms a remaining count without a reset time is believed */
#define SL_STATE_PROBE_LEASE                                        \
    60000 /* ms: least time a breaker probe may take before another \
             request may probe (its process is presumed dead) */

typedef struct sl_state_target sl_state_target_t;
typedef struct sl_state_cred sl_state_cred_t;

typedef enum sl_breaker_state {
    SL_BREAKER_CLOSED = 0, /* traffic flows; consecutive failures are counted */
    SL_BREAKER_OPEN,       /* skipped until its cooldown passed, then one probe is due */
    SL_BREAKER_HALF_OPEN,  /* one probe is in flight; everyone else keeps skipping */
} sl_breaker_state_e;

/* What a request may do with a target, from sl_state_breaker_peek/enter. */
typedef enum sl_breaker_verdict {
    SL_BREAKER_PASS = 0, /* closed (or no breaker): go */
    SL_BREAKER_PROBE,    /* a probe is due; from enter: this request holds it */
    SL_BREAKER_SKIP,     /* open, or another request is probing: do not try it */
} sl_breaker_verdict_e;

/* A provider's rate-limit headroom, from its response headers (core/gateway/retry.h parses them).
 */
typedef struct sl_ratelimit {
    int64_t requests_remaining; /* -1: unknown */
    int64_t tokens_remaining;   /* -1: unknown */
    uint64_t requests_reset;    /* unix ms when the request allowance refills; 0: unknown */
    uint64_t tokens_reset;      /* unix ms when the token allowance refills; 0: unknown */
} sl_ratelimit_t;

/* One target as sl_state_each_target() reports it. Strings are borrowed for the call. */
typedef struct sl_state_target_info {
    const char *name;           /* "provider/model" */
    size_t provider_len;        /* bytes of name before the '/' */
    sl_breaker_state_e breaker; /* as stored: OPEN stays OPEN until a probe is taken */
    unsigned failures;          /* consecutive failures counted */
    uint64_t open_until;        /* OPEN: unix ms a probe is due; HALF_OPEN: the probe's
                                   lease end; 0 when closed */
    uint64_t latency_us;        /* EWMA of total latency; 0: unknown */
    uint64_t ttft_us;           /* EWMA of time to first token (streams); 0: unknown */
    uint64_t in_flight;         /* requests in flight across all workers */
    sl_ratelimit_t headroom;    /* last seen, with expired values reported as unknown */
} sl_state_target_info_t;

/* One credential as sl_state_each_cred() reports it. */
typedef struct sl_state_cred_info {
    const char *provider;   /* provider name, NUL-terminated, borrowed */
    const char *ref;        /* the secret's reference ("vault:k1"), never its value */
    uint64_t cooling_until; /* unix ms; 0 or past: usable */
} sl_state_cred_info_t;

typedef int (*sl_state_target_cb)(void *arg, const sl_state_target_info_t *t);
typedef int (*sl_state_cred_cb)(void *arg, const sl_state_cred_info_t *c);

/*
 * Bytes the state takes in the shared segment for conf (NULL: the minimum),
 * for sizing it before sl_shm_init(). Any context.
 */
size_t sl_state_shm_size(const sl_conf_t *conf);

/*
 * Carves the state region from the shared segment (sized from conf the
 * first time; later calls find it again) and registers every target of
 * every model and rule and every provider credential of conf, so they
 * have slots before any worker runs. Call it in the master at start and
 * after each successful reload (state of targets that still exist
 * survives; new ones get fresh slots), or in single mode; conf may be NULL
 * (tests). Returns 0 or -ENOMEM (logged) when the segment has no room.
 */
int sl_state_init(const sl_conf_t *conf);

/* unix milliseconds (CLOCK_REALTIME): the clock every "now" below is on. */
uint64_t sl_state_now(void);

/*
 * The handle of target provider/model, claiming a slot on first use; NULL
 * when the state is not initialised, the table is full, or the slot is
 * being claimed by another process at this very moment (retry on the next
 * request). Cheap (a hash and a compare); valid for the process's life.
 */
sl_state_target_t *sl_state_target(const char *provider, const char *model);

/* The handle of credential ref of provider; NULL as for sl_state_target. */
sl_state_cred_t *sl_state_cred(const char *provider, const char *ref);

/*
 * Breaker, for planning: what a request would get now, without side
 * effects. PASS when rc->breaker_failures is 0 (no breaker) or t is NULL.
 */
sl_breaker_verdict_e sl_state_breaker_peek(const sl_state_target_t *t, uint64_t now,
                                           const sl_routing_conf_t *rc);

/*
 * When an open target's probe is due (OPEN), or when the probe in flight
 * is presumed lost (HALF_OPEN), in unix ms; 0 when closed or t is NULL.
 */
uint64_t sl_state_breaker_until(const sl_state_target_t *t);

/*
 * Breaker, right before an attempt: PASS (closed), PROBE (a probe was due
 * and this request took it: it must end with success, failure or release),
 * or SKIP (open, or another request holds the probe: try the next target).
 * A probe is held for max(cooldown, first_token_timeout,
 * SL_STATE_PROBE_LEASE); one that reports nothing by then is presumed lost
 * and another request may probe.
 */
sl_breaker_verdict_e sl_state_breaker_enter(sl_state_target_t *t, uint64_t now,
                                            const sl_routing_conf_t *rc);

/*
 * The attempt that entered with v succeeded (a response the target
 * produced, including 4xx other than 408/429: the target is up). Resets
 * the consecutive failures; a probe closes the breaker.
 */
void sl_state_breaker_success(sl_state_target_t *t, sl_breaker_verdict_e v);

/*
 * The attempt that entered with v failed in a way that counts against the
 * target (connect, timeout, 5xx, a cut: SL_RETRY_BREAKER of core/gateway/retry.h).
 * After rc->breaker_failures in a row a closed breaker opens for
 * rc->breaker_cooldown; a failed probe opens it again for the cooldown.
 */
void sl_state_breaker_failure(sl_state_target_t *t, sl_breaker_verdict_e v, uint64_t now,
                              const sl_routing_conf_t *rc);

/*
 * The attempt that entered with v ended without telling anything about
 * the target (the client went away, the deadline passed, a 429): a held
 * probe is given back and the next request may probe at once.
 */
void sl_state_breaker_release(sl_state_target_t *t, sl_breaker_verdict_e v, uint64_t now);

/*
 * Feeds a successful attempt's latency into the estimates: total_us from
 * sending the request to the last byte, ttft_us from sending it to the
 * first real output of a stream (0: not a stream, leaves that estimate
 * alone). EWMA with alpha 1/8 (SL_STATE_EWMA_SHIFT): new = old + (sample -
 * old) / 8, the first sample taken as is. Record successes only: a fast
 * failure must not make a broken target look fast.
 */
void sl_state_latency_record(sl_state_target_t *t, uint64_t total_us, uint64_t ttft_us);

/* The estimate for ordering: time to first token for streams, total otherwise; 0: unknown. */
uint64_t sl_state_latency(const sl_state_target_t *t, bool stream);

/*
 * In-flight requests: +1 when an attempt starts, -1 when it ends (success
 * or not). Counted per process; the master clears a dead one's share.
 */
void sl_state_inflight_add(sl_state_target_t *t, int delta);

/* Requests in flight to t across all workers. */
uint64_t sl_state_inflight(const sl_state_target_t *t);

/* Master: worker pid exited; forget its in-flight counts. */
void sl_state_process_exited(pid_t pid);

/*
 * Stores the headroom a response reported (fields that are unknown in rl
 * keep their old value). A remaining count without a reset time is
 * believed for SL_STATE_HEADROOM_TTL.
 */
void sl_state_headroom_update(sl_state_target_t *t, const sl_ratelimit_t *rl, uint64_t now);

/*
 * True when the last headroom seen says t is nearly exhausted until its
 * reset: fewer than 2 requests, or fewer tokens than tokens (this
 * request's estimate; 0 counts as 1). The router then puts t behind
 * targets with room.
 */
bool sl_state_headroom_low(const sl_state_target_t *t, uint64_t now, uint64_t tokens);

/* The headroom as stored, expired values reported as unknown. */
void sl_state_headroom_get(const sl_state_target_t *t, uint64_t now, sl_ratelimit_t *out);

/* Credential c cools down until unix ms until (a later deadline already set wins). */
void sl_state_cred_cool(sl_state_cred_t *c, uint64_t until);

/* Unix ms until which c cools down; 0 when it never did (NULL: 0). */
uint64_t sl_state_cred_until(const sl_state_cred_t *c);

/* Counts one request (its first attempt) into the retry budget's window. */
void sl_state_budget_request(uint64_t now);

/*
 * Asks the retry budget for one extra attempt: true, and counted, while
 * the extra attempts of the last SL_STATE_RETRY_WINDOW seconds stay below
 * SL_STATE_RETRY_FLOOR + requests x permille / 1000; false otherwise.
 * True when the state is not initialised.
 */
bool sl_state_budget_retry(uint64_t now, unsigned permille);

/*
 * Calls cb for every target with a slot (configured now or at some point
 * since the master started, or asked for directly), in table order; stops
 * early and returns what cb returned when that is not 0. Returns 0.
 */
int sl_state_each_target(sl_state_target_cb cb, void *arg, uint64_t now);

/* As sl_state_each_target, for the credentials. */
int sl_state_each_cred(sl_state_cred_cb cb, void *arg);

#endif
