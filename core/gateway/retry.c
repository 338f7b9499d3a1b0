/*
 * Backoff, Retry-After, rate-limit headers and failure classes (see
 * core/gateway/retry.h for the table). Dates are converted with a proleptic
 * Gregorian day count (no locale, no timegm), so the parsers behave the
 * same everywhere.
 */
#include "core/gateway/retry.h"

#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/pid.h"

#define RETRY_NS_MAX (UINT64_MAX / 4)

static int64_t retry_days(int64_t y, unsigned m, unsigned d);
static bool retry_digits(const char **p, const char *end, unsigned n, unsigned *out);
static int retry_month(const char *p);
static int retry_time(const char **p, const char *end, unsigned *h, unsigned *mi, unsigned *s);
static int retry_http_date(sl_str_t v, uint64_t *ms);
static int retry_decimal_ms(sl_str_t v, uint64_t unit_ms, uint64_t *ms);
static int retry_int(sl_str_t v, int64_t *out);
static const sl_http_header_t *retry_header(const sl_http_header_t *h, size_t n, const char *name);
static bool retry_has_ratelimit(const sl_http_header_t *h, size_t n);


uint64_t
sl_retry_rand(void *arg)
{
    static uint64_t x;
    static pid_t owner;
    pid_t pid = sl_pid(); /* cached: a system call per jitter is dear */

    (void) arg;
    if (x == 0 || owner != pid) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = ((uint64_t) ts.tv_nsec << 20) ^ (uint64_t) ts.tv_sec ^ ((uint64_t) pid << 40)
            ^ 0x9e3779b97f4a7c15ull;
        owner = pid;
        if (x == 0) {
            x = 1;
        }
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 2685821657736338717ull;
}


uint64_t
sl_retry_backoff(const sl_routing_conf_t *rc, unsigned attempt, sl_rand_fn rand, void *rand_arg)
{
    uint64_t cap = rc->max_wait;

    if (rand == NULL) {
        rand = sl_retry_rand;
    }
    /* backoff * 2^attempt, unless that already exceeds max_wait (or 64 bits) */
    if (attempt < 63 && rc->backoff <= (cap >> attempt)) {
        cap = rc->backoff << attempt;
    }
    if (cap == 0) {
        return 0;
    }
    return rand(rand_arg) % (cap + 1);
}


/* Days from 1970-01-01 to y-m-d (Gregorian; Howard Hinnant's days_from_civil). */
static int64_t
retry_days(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}


/* Exactly n digits at *p. */
static bool
retry_digits(const char **p, const char *end, unsigned n, unsigned *out)
{
    unsigned v = 0;

    if ((size_t) (end - *p) < n) {
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (unsigned) (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}


/* 1..12 for a three-letter English month name at p (case-sensitive, as HTTP says), else -1. */
static int
retry_month(const char *p)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

    for (int i = 0; i < 12; i++) {
        if (memcmp(p, months + i * 3, 3) == 0) {
            return i + 1;
        }
    }
    return -1;
}


/* hh:mm:ss */
static int
retry_time(const char **p, const char *end, unsigned *h, unsigned *mi, unsigned *s)
{
    if (!retry_digits(p, end, 2, h) || *p >= end || **p != ':') {
        return SL_EPARSE;
    }
    (*p)++;
    if (!retry_digits(p, end, 2, mi) || *p >= end || **p != ':') {
        return SL_EPARSE;
    }
    (*p)++;
    if (!retry_digits(p, end, 2, s) || *h > 23 || *mi > 59 || *s > 60) {
        return SL_EPARSE;
    }
    return 0;
}


/* IMF-fixdate, RFC 850 or asctime (RFC 9110 5.6.7) into unix ms. */
static int
retry_http_date(sl_str_t v, uint64_t *ms)
{
    const char *p = v.p, *end = v.p + v.len;
    unsigned d, y, h, mi, s;
    int m;
    int64_t days;
    const char *comma = memchr(p, ',', v.len);

    if (comma != NULL) {
        p = comma + 1;
        if (p >= end || *p != ' ') {
            return SL_EPARSE;
        }
        p++;
        if (!retry_digits(&p, end, 2, &d) || end - p < 5) {
            return SL_EPARSE;
        }
        if (*p == ' ') {
            /* IMF-fixdate: "06 Nov 1994 08:49:37 GMT" */
            m = retry_month(p + 1);
            p += 4;
            if (m < 0 || p >= end || *p != ' ') {
                return SL_EPARSE;
            }
            p++;
            if (!retry_digits(&p, end, 4, &y)) {
                return SL_EPARSE;
            }
        } else if (*p == '-') {
            /* RFC 850: "06-Nov-94 08:49:37 GMT" */
            m = retry_month(p + 1);
            p += 4;
            if (m < 0 || p >= end || *p != '-') {
                return SL_EPARSE;
            }
            p++;
            if (!retry_digits(&p, end, 2, &y)) {
                return SL_EPARSE;
            }
            y += y < 70 ? 2000 : 1900;
        } else {
            return SL_EPARSE;
        }
        if (p >= end || *p != ' ') {
            return SL_EPARSE;
        }
        p++;
        if (retry_time(&p, end, &h, &mi, &s) != 0 || end - p != 4 || memcmp(p, " GMT", 4) != 0) {
            return SL_EPARSE;
        }
    } else {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (v.len != 24 || p[3] != ' ' || p[7] != ' ') {
            return SL_EPARSE;
        }
        m = retry_month(p + 4);
        p += 8;
        if (*p == ' ') {
            p++;
            if (!retry_digits(&p, end, 1, &d)) {
                return SL_EPARSE;
            }
        } else if (!retry_digits(&p, end, 2, &d)) {
            return SL_EPARSE;
        }
        if (m < 0 || *p != ' ') {
            return SL_EPARSE;
        }
        p++;
        if (retry_time(&p, end, &h, &mi, &s) != 0 || *p != ' ') {
            return SL_EPARSE;
        }
        p++;
        if (!retry_digits(&p, end, 4, &y) || p != end) {
            return SL_EPARSE;
        }
    }
    if (d < 1 || d > 31 || y < 1970) {
        return SL_EPARSE;
    }
    days = retry_days(y, (unsigned) m, d);
    *ms = ((uint64_t) days * 86400 + h * 3600 + mi * 60 + s) * 1000;
    return 0;
}


/* "12", "1.5" in units of unit_ms, rounded up to whole ms and clamped. */
static int
retry_decimal_ms(sl_str_t v, uint64_t unit_ms, uint64_t *ms)
{
    const char *p = v.p, *end = v.p + v.len;
    uint64_t whole = 0, frac = 0, scale = 1;
    bool digits = false, more = false;

    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        digits = true;
        if (whole < SL_RETRY_AFTER_MAX) {
            whole = whole * 10 + (uint64_t) (*p - '0');
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || *p < '0' || *p > '9') {
            return SL_EPARSE;
        }
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (scale < 1000000) {
                frac = frac * 10 + (uint64_t) (*p - '0');
                scale *= 10;
            } else if (*p != '0') {
                more = true;
            }
        }
    }
    if (!digits || p != end) {
        return SL_EPARSE;
    }
    if (whole >= SL_RETRY_AFTER_MAX / unit_ms) {
        *ms = SL_RETRY_AFTER_MAX;
        return 0;
    }
    /* whole units, plus the fraction of a unit rounded up to a millisecond */
    *ms = whole * unit_ms + (frac * unit_ms + scale - 1) / scale
          + (more && (frac * unit_ms) % scale == 0 ? 1 : 0);
    if (*ms > SL_RETRY_AFTER_MAX) {
        *ms = SL_RETRY_AFTER_MAX;
    }
    return 0;
}


int
sl_retry_parse_after(sl_str_t value, uint64_t now, uint64_t *ms)
{
    sl_str_t v = sl_str_trim(value);
    uint64_t at;

    if (v.len == 0) {
        return SL_EPARSE;
    }
    if (v.p[0] >= '0' && v.p[0] <= '9') {
        return retry_decimal_ms(v, 1000, ms);
    }
    if (retry_http_date(v, &at) != 0) {
        return SL_EPARSE;
    }
    *ms = at <= now ? 0 : at - now;
    if (*ms > SL_RETRY_AFTER_MAX) {
        *ms = SL_RETRY_AFTER_MAX;
    }
    return 0;
}


/* Whether a header name starts with x-ratelimit- or anthropic-ratelimit- (any case). */
static bool
retry_has_ratelimit(const sl_http_header_t *h, size_t n)
{
    for (size_t i = 0; h != NULL && i < n; i++) {
        sl_str_t name = h[i].name;

        if ((name.len > 12 && sl_mem_caseeq(name.p, "x-ratelimit-", 12))
            || (name.len > 20 && sl_mem_caseeq(name.p, "anthropic-ratelimit-", 20))) {
            return true;
        }
    }
    return false;
}


static const sl_http_header_t *
retry_header(const sl_http_header_t *h, size_t n, const char *name)
{
    return h == NULL ? NULL : sl_http_find_header(h, n, name);
}


int64_t
sl_retry_after(const sl_http_header_t *h, size_t n, uint64_t now)
{
    const sl_http_header_t *x = retry_header(h, n, "retry-after-ms");
    uint64_t ms;

    if (x != NULL && retry_decimal_ms(sl_str_trim(x->value), 1, &ms) == 0) {
        return (int64_t) ms;
    }
    x = retry_header(h, n, "retry-after");
    if (x != NULL && sl_retry_parse_after(x->value, now, &ms) == 0) {
        return (int64_t) ms;
    }
    return -1;
}


unsigned
sl_retry_classify(unsigned retry_on, sl_fail_e fail, int status)
{
    unsigned cls, bits;

    switch (fail) {
    case SL_FAIL_CONNECT:
    case SL_FAIL_CUT:
        cls = SL_RETRY_ON_CONNECT;
        bits = SL_RETRY_SAME | SL_RETRY_NEXT | SL_RETRY_BREAKER;
        break;
    case SL_FAIL_TIMEOUT:
        cls = SL_RETRY_ON_TIMEOUT;
        bits = SL_RETRY_SAME | SL_RETRY_NEXT | SL_RETRY_BREAKER;
        break;
    case SL_FAIL_NONE:
    default:
        if (status < 400) {
            return 0;
        }
        if (status == 408) {
            cls = SL_RETRY_ON_TIMEOUT;
            bits = SL_RETRY_SAME | SL_RETRY_NEXT | SL_RETRY_BREAKER;
        } else if (status == 429) {
            cls = SL_RETRY_ON_429;
            bits = SL_RETRY_SAME | SL_RETRY_NEXT | SL_RETRY_COOLDOWN;
        } else if (status == 409) {
            cls = SL_RETRY_ON_5XX;
            bits = SL_RETRY_SAME | SL_RETRY_NEXT;
        } else if (status == 501) {
            cls = SL_RETRY_ON_5XX;
            bits = SL_RETRY_NEXT;
        } else if (status >= 500 && status <= 599) {
            cls = SL_RETRY_ON_5XX;
            bits = SL_RETRY_SAME | SL_RETRY_NEXT | SL_RETRY_BREAKER;
        } else {
            return 0; /* the request itself is wrong: nobody else will take it either */
        }
        break;
    }
    if ((retry_on & cls) == 0) {
        bits &= ~(unsigned) (SL_RETRY_SAME | SL_RETRY_NEXT);
    }
    return bits;
}


int
sl_retry_parse_duration(sl_str_t s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        size_t len;
        uint64_t ns;
    } units[] = {
        /* longest first: "ms" before "m" */
        { "ms", 2, 1000000ull },   { "us", 2, 1000ull },         { "\xc2\xb5s", 3, 1000ull },
        { "ns", 2, 1ull },         { "h", 1, 3600000000000ull }, { "m", 1, 60000000000ull },
        { "s", 1, 1000000000ull },
    };
    sl_str_t v = sl_str_trim(s);
    const char *p = v.p, *end = v.p + v.len;
    uint64_t total = 0;

    if (v.len == 0) {
        return SL_EPARSE;
    }
    if (v.len == 1 && v.p[0] == '0') {
        *ms = 0;
        return 0;
    }
    while (p < end) {
        uint64_t whole = 0, frac = 0, scale = 1, part;
        bool digits = false;
        size_t u;

        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            digits = true;
            if (whole > RETRY_NS_MAX / 10) {
                return SL_EPARSE;
            }
            whole = whole * 10 + (uint64_t) (*p - '0');
        }
        if (p < end && *p == '.') {
            for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
                digits = true;
                if (scale < 1000000000ull) {
                    frac = frac * 10 + (uint64_t) (*p - '0');
                    scale *= 10;
                }
            }
        }
        if (!digits) {
            return SL_EPARSE;
        }
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            if ((size_t) (end - p) >= units[u].len && memcmp(p, units[u].unit, units[u].len) == 0) {
                break;
            }
        }
        if (u == sizeof(units) / sizeof(units[0])) {
            return SL_EPARSE;
        }
        p += units[u].len;
        if (whole > RETRY_NS_MAX / units[u].ns) {
            return SL_EPARSE;
        }
        part = whole * units[u].ns + frac * units[u].ns / scale;
        if (part > RETRY_NS_MAX - total) {
            return SL_EPARSE;
        }
        total += part;
    }
    *ms = (total + 999999) / 1000000;
    return 0;
}


int
sl_retry_parse_rfc3339(sl_str_t s, uint64_t *ms)
{
    sl_str_t v = sl_str_trim(s);
    const char *p = v.p, *end = v.p + v.len;
    unsigned y, mo, d, h, mi, sec, oh, om;
    uint64_t frac_ms = 0, scale = 1;
    int64_t t, off = 0;

    if (!retry_digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !retry_digits(&p, end, 2, &mo)
        || p >= end || *p++ != '-' || !retry_digits(&p, end, 2, &d) || p >= end
        || (*p != 'T' && *p != 't' && *p != ' ')) {
        return SL_EPARSE;
    }
    p++;
    if (retry_time(&p, end, &h, &mi, &sec) != 0) {
        return SL_EPARSE;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            return SL_EPARSE;
        }
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (scale < 1000) {
                frac_ms = frac_ms * 10 + (uint64_t) (*p - '0');
                scale *= 10;
            }
        }
        frac_ms = frac_ms * 1000 / scale;
    }
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p == '-' ? -1 : 1;

        p++;
        if (!retry_digits(&p, end, 2, &oh) || p >= end || *p++ != ':'
            || !retry_digits(&p, end, 2, &om) || oh > 23 || om > 59) {
            return SL_EPARSE;
        }
        off = sign * (int64_t) (oh * 3600 + om * 60);
    } else {
        return SL_EPARSE;
    }
    if (p != end || mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1970) {
        return SL_EPARSE;
    }
    t = retry_days(y, mo, d) * 86400 + (int64_t) (h * 3600 + mi * 60 + sec) - off;
    if (t < 0) {
        return SL_EPARSE;
    }
    *ms = (uint64_t) t * 1000 + frac_ms;
    return 0;
}


/* A non-negative decimal count; SL_EPARSE else. */
static int
retry_int(sl_str_t v, int64_t *out)
{
    unsigned long long n;

    if (sl_str_to_u64(sl_str_trim(v), &n) != 0 || n > INT64_MAX) {
        return SL_EPARSE;
    }
    *out = (int64_t) n;
    return 0;
}


bool
sl_retry_ratelimit(const sl_http_header_t *h, size_t n, uint64_t now, sl_ratelimit_t *out)
{
    const sl_http_header_t *x;
    uint64_t ms;

    out->requests_remaining = -1;
    out->tokens_remaining = -1;
    out->requests_reset = 0;
    out->tokens_reset = 0;
    if (!retry_has_ratelimit(h, n)) {
        return false; /* most answers carry none: one pass instead of seven lookups */
    }

    x = retry_header(h, n, "x-ratelimit-remaining-requests");
    if (x != NULL && retry_int(x->value, &out->requests_remaining) != 0) {
        out->requests_remaining = -1;
    }
    x = retry_header(h, n, "x-ratelimit-remaining-tokens");
    if (x != NULL && retry_int(x->value, &out->tokens_remaining) != 0) {
        out->tokens_remaining = -1;
    }
    x = retry_header(h, n, "x-ratelimit-reset-requests");
    if (x != NULL && sl_retry_parse_duration(x->value, &ms) == 0) {
        out->requests_reset = now + ms;
    }
    x = retry_header(h, n, "x-ratelimit-reset-tokens");
    if (x != NULL && sl_retry_parse_duration(x->value, &ms) == 0) {
        out->tokens_reset = now + ms;
    }

    if (out->requests_remaining < 0) {
        x = retry_header(h, n, "anthropic-ratelimit-requests-remaining");
        if (x != NULL && retry_int(x->value, &out->requests_remaining) == 0) {
            x = retry_header(h, n, "anthropic-ratelimit-requests-reset");
            if (x != NULL && sl_retry_parse_rfc3339(x->value, &ms) == 0) {
                out->requests_reset = ms;
            }
        } else {
            out->requests_remaining = -1;
        }
    }
    if (out->tokens_remaining < 0) {
        static const char *const names[][2] = {
            { "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset" },
            { "anthropic-ratelimit-input-tokens-remaining",
              "anthropic-ratelimit-input-tokens-reset" },
        };

        for (size_t i = 0; i < 2 && out->tokens_remaining < 0; i++) {
            x = retry_header(h, n, names[i][0]);
            if (x == NULL || retry_int(x->value, &out->tokens_remaining) != 0) {
                out->tokens_remaining = -1;
                continue;
            }
            x = retry_header(h, n, names[i][1]);
            if (x != NULL && sl_retry_parse_rfc3339(x->value, &ms) == 0) {
                out->tokens_reset = ms;
            }
        }
    }
    return out->requests_remaining >= 0 || out->tokens_remaining >= 0;
}
