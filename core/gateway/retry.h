/*
 * Pure helpers for the attempt loop: the wait before another try
 * (exponential backoff with full jitter), reading Retry-After and the
 * providers' rate-limit headers, and classifying an upstream outcome
 * against `retry_on:`. No I/O, no shared state, no allocation: any context.
 *
 * Classification (sl_retry_classify):
 *
 *   outcome                         retry_on class  same  next  breaker  cooldown
 *   connection failed (refused,     connect          x     x      x
 *     DNS, TLS), or cut before the
 *     answer was complete
 *   timeout (connect, first byte,   timeout          x     x      x
 *     idle, total, first token)
 *   408                             timeout          x     x      x
 *   429                             429              x     x             x
 *   409                             5xx              x     x
 *   500, 502..599                   5xx              x     x      x
 *   501 Not Implemented             5xx                    x
 *   any other 4xx                   (never)
 *   1xx..3xx: success
 *
 * "same": worth another try of the same target after a wait; "next": worth
 * moving on to the next target; both only when the outcome's class is in
 * retry_on. "breaker": counts as a failure of the target whatever retry_on
 * says. "cooldown": the credential used should rest until Retry-After. 501
 * says this provider will never do it, so only another target may; 409
 * and 408 are retried because the OpenAI and Anthropic SDKs retry them.
 */
#ifndef SL_CORE_GATEWAY_RETRY_H
#define SL_CORE_GATEWAY_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conf/conf.h"
#include "core/http/http.h"
#include "core/gateway/state.h"
#include "core/base/str.h"

#define SL_RETRY_AFTER_MAX (24ULL * 3600 * 1000) /* ms: longer Retry-After values are clamped */

/* What went wrong with one attempt. */
typedef enum sl_fail {
    SL_FAIL_NONE = 0, /* a response (see its status) */
    SL_FAIL_CONNECT,  /* no connection: refused, unreachable, DNS, TLS handshake */
    SL_FAIL_CUT,      /* the connection broke before the answer was complete */
    SL_FAIL_TIMEOUT,  /* connect, first byte, idle, total or first-token timeout */
} sl_fail_e;

/* Bits of sl_retry_classify()'s answer. */
#define SL_RETRY_SAME     0x1u /* another try of the same target may succeed */
#define SL_RETRY_NEXT     0x2u /* the next target may succeed */
#define SL_RETRY_BREAKER  0x4u /* counts as a failure of the target */
#define SL_RETRY_COOLDOWN 0x8u /* the credential should cool down until Retry-After */

/* A uniform 64-bit random number; arg is the source's own state. */
typedef uint64_t (*sl_rand_fn)(void *arg);

/*
 * The default random source: xorshift64* seeded per process (pid and the
 * clock, reseeded after fork). Not for secrets. arg is unused.
 */
uint64_t sl_retry_rand(void *arg);

/*
 * The wait before extra try number attempt (0 for the first retry), in ms:
 * uniform in [0, min(rc->max_wait, rc->backoff * 2^attempt)] ("full
 * jitter"). rand NULL uses sl_retry_rand.
 */
uint64_t sl_retry_backoff(const sl_routing_conf_t *rc, unsigned attempt, sl_rand_fn rand,
                          void *rand_arg);

/*
 * Parses one Retry-After value: delta-seconds ("30", also "1.5") or an
 * HTTP-date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 or
 * asctime) relative to now (unix ms); a date in the past gives 0. The
 * result is clamped to SL_RETRY_AFTER_MAX. Returns 0, or SL_EPARSE for
 * anything else (ignore the header then).
 */
int sl_retry_parse_after(sl_str_t value, uint64_t now, uint64_t *ms);

/*
 * The wait a response asks for, in ms: `retry-after-ms` (milliseconds,
 * fraction allowed) when present and valid, else `retry-after`; -1 when
 * neither is there or both are garbage. Clamped to SL_RETRY_AFTER_MAX.
 */
int64_t sl_retry_after(const sl_http_header_t *h, size_t n, uint64_t now);

/* SL_RETRY_* bits for an attempt that ended with fail (and status, for SL_FAIL_NONE). */
unsigned sl_retry_classify(unsigned retry_on, sl_fail_e fail, int status);

/*
 * Reads the rate-limit headroom from a response's headers: OpenAI's
 * x-ratelimit-remaining-requests / -tokens and x-ratelimit-reset-requests
 * / -tokens (durations such as "1s", "6m0s", "20ms", "1h2m3.5s"), and
 * Anthropic's anthropic-ratelimit-requests-remaining / -tokens-remaining
 * (or -input-tokens-remaining when there is no overall one) and their
 * -reset (RFC 3339 times). Resets become unix ms from now. Unknown or
 * garbage values stay -1 / 0. Returns true when any remaining count was
 * found.
 */
bool sl_retry_ratelimit(const sl_http_header_t *h, size_t n, uint64_t now, sl_ratelimit_t *out);

/* Parses a Go-style duration ("6m0s", "1.5s", "20ms") into ms, rounded up. SL_EPARSE else. */
int sl_retry_parse_duration(sl_str_t s, uint64_t *ms);

/* Parses an RFC 3339 date-time into unix ms. SL_EPARSE else. */
int sl_retry_parse_rfc3339(sl_str_t s, uint64_t *ms);

#endif
