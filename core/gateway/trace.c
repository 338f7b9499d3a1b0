/*
 * W3C traceparent parsing and formatting, trace sampling, and the ids:
 * xoshiro256** seeded from the process's DRBG, so ids cost a few
 * nanoseconds and never repeat across workers (a fork reseeds).
 */
#include "core/gateway/trace.h"

#include <string.h>
#include <unistd.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"

static uint64_t trace_rng[4];
static pid_t trace_rng_pid;

static int trace_hex_byte(const char *p);
static bool trace_all_zero(const uint8_t *p, size_t n);
static uint64_t trace_next(void);
static uint64_t trace_rotl(uint64_t x, int k);


static int
trace_hex_byte(const char *p)
{
    int v = 0;

    for (int i = 0; i < 2; i++) {
        char c = p[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v = v * 16 + (c - 'a' + 10);
        } else {
            return -1;
        }
    }
    return v;
}


static bool
trace_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}


int
sl_trace_parse(sl_str_t v, sl_trace_ctx_t *out)
{
    const char *p = v.p;
    int version, b;

    /* optional whitespace around the value is already trimmed by the HTTP server */
    if (v.len < SL_TRACE_HEADER_LEN || p[2] != '-' || p[35] != '-' || p[52] != '-') {
        return SL_EPARSE;
    }
    version = trace_hex_byte(p);
    if (version < 0 || version == 0xff) {
        return SL_EPARSE;
    }
    if ((version == 0 && v.len != SL_TRACE_HEADER_LEN)
        || (version > 0 && v.len > SL_TRACE_HEADER_LEN && p[SL_TRACE_HEADER_LEN] != '-')) {
        return SL_EPARSE;
    }
    for (size_t i = 0; i < 16; i++) {
        if ((b = trace_hex_byte(p + 3 + 2 * i)) < 0) {
            return SL_EPARSE;
        }
        out->trace_id[i] = (uint8_t) b;
    }
    for (size_t i = 0; i < 8; i++) {
        if ((b = trace_hex_byte(p + 36 + 2 * i)) < 0) {
            return SL_EPARSE;
        }
        out->span_id[i] = (uint8_t) b;
    }
    if ((b = trace_hex_byte(p + 53)) < 0) {
        return SL_EPARSE;
    }
    out->flags = (uint8_t) b;
    if (trace_all_zero(out->trace_id, 16) || trace_all_zero(out->span_id, 8)) {
        return SL_EPARSE;
    }
    return 0;
}


void
sl_trace_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}


void
sl_trace_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                char out[SL_TRACE_HEADER_LEN + 1])
{
    memcpy(out, "00-", 3);
    sl_trace_hex(trace_id, 16, out + 3);
    out[35] = '-';
    sl_trace_hex(span_id, 8, out + 36);
    out[52] = '-';
    sl_trace_hex(&flags, 1, out + 53);
}


bool
sl_trace_sample(const uint8_t trace_id[16], double ratio)
{
    uint64_t v = 0;

    if (ratio >= 1.0) {
        return true;
    }
    if (ratio <= 0.0) {
        return false;
    }
    for (size_t i = 8; i < 16; i++) {
        v = (v << 8) | trace_id[i];
    }
    /* 63 bits, so the bound fits a double exactly enough and the product never overflows */
    return (double) (v >> 1) < ratio * 9223372036854775808.0;
}


static uint64_t
trace_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


/* xoshiro256** */
static uint64_t
trace_next(void)
{
    uint64_t *s = trace_rng;
    uint64_t r = trace_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = trace_rotl(s[3], 45);
    return r;
}


void
sl_trace_new_id(uint8_t *id, size_t n)
{
    pid_t pid = getpid();

    if (trace_rng_pid != pid || trace_all_zero((const uint8_t *) trace_rng, sizeof(trace_rng))) {
        if (sl_crypto_random(trace_rng, sizeof(trace_rng)) < 0
            || trace_all_zero((const uint8_t *) trace_rng, sizeof(trace_rng))) {
            /* no DRBG (logged): still distinct per process and per moment */
            trace_rng[0] = (uint64_t) pid * 0x9e3779b97f4a7c15ull;
            trace_rng[1] = (uint64_t) (uintptr_t) id ^ 0xbf58476d1ce4e5b9ull;
            trace_rng[2] = 0x94d049bb133111ebull;
            trace_rng[3] = 1;
        }
        trace_rng_pid = pid;
    }
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = trace_next();
            size_t k = n - i < 8 ? n - i : 8;

            memcpy(id + i, &r, k);
        }
    } while (trace_all_zero(id, n));
}
