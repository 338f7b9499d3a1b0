/*
 * W3C traceparent parsing and formatting, trace sampling, and the ids:
 * xoshiro256** seeded from the process's DRBG, so ids cost a few
 * nanoseconds and never repeat across workers (a fork reseeds, told by
 * an atfork handler).
 */
#include "core/gateway/trace.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"

static uint64_t trace_rng[4];
static bool trace_rng_seeded; /* cleared in a forked child: it must not repeat its parent's ids */
static pthread_once_t trace_rng_once = PTHREAD_ONCE_INIT;

static int trace_hex_byte(const char *p);
static bool trace_all_zero(const uint8_t *p, size_t n);
static uint64_t trace_next(void);
static uint64_t trace_rotl(uint64_t x, int k);
static void trace_rng_seed(const void *salt);
static void trace_rng_at_fork(void);
static void trace_rng_on_fork(void);


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


/* Two digits per byte from a table (a trace id is hexed on every traced request). */
void
sl_trace_hex(const uint8_t *p, size_t n, char *out)
{
    static const char pairs[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                                "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                                "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
                                "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                                "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
                                "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                                "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                                "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    const uint8_t *end = p + n;

    /* pointers, not 2 * i: GCC's loop analysis warned of an index overflow no caller can reach */
    for (; end - p >= 8; p += 8, out += 16) {
        /* ids are 8 or 16 bytes: whole rounds, unrolled */
        memcpy(out, pairs + 2 * p[0], 2);
        memcpy(out + 2, pairs + 2 * p[1], 2);
        memcpy(out + 4, pairs + 2 * p[2], 2);
        memcpy(out + 6, pairs + 2 * p[3], 2);
        memcpy(out + 8, pairs + 2 * p[4], 2);
        memcpy(out + 10, pairs + 2 * p[5], 2);
        memcpy(out + 12, pairs + 2 * p[6], 2);
        memcpy(out + 14, pairs + 2 * p[7], 2);
    }
    for (; p < end; p++, out += 2) {
        memcpy(out, pairs + 2 * p[0], 2);
    }
    *out = '\0';
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
    uint64_t r;

    /* a fork is noticed by an atfork handler, not getpid(): a system call per id is dear */
    if (!trace_rng_seeded) {
        trace_rng_seed(id);
    }
    if (n == 8 || n == 16) {
        /* the ids of spans and traces: whole words, redrawn in the unlikely case they are zero */
        do {
            r = trace_next();
            memcpy(id, &r, 8);
            if (n == 16) {
                uint64_t r2 = trace_next();

                memcpy(id + 8, &r2, 8);
                r |= r2;
            }
        } while (r == 0);
        return;
    }
    do {
        for (size_t i = 0; i < n; i += 8) {
            size_t k = n - i < 8 ? n - i : 8;

            r = trace_next();
            memcpy(id + i, &r, k);
        }
    } while (trace_all_zero(id, n));
}


/* Seeds the generator from the DRBG (once per process: a fork clears trace_rng_seeded). */
static void
trace_rng_seed(const void *salt)
{
    (void) pthread_once(&trace_rng_once, trace_rng_at_fork);
    if (sl_crypto_random(trace_rng, sizeof(trace_rng)) < 0
        || trace_all_zero((const uint8_t *) trace_rng, sizeof(trace_rng))) {
        /* no DRBG (logged): still distinct per process and per moment */
        trace_rng[0] = (uint64_t) getpid() * 0x9e3779b97f4a7c15ull;
        trace_rng[1] = (uint64_t) (uintptr_t) salt ^ 0xbf58476d1ce4e5b9ull;
        trace_rng[2] = 0x94d049bb133111ebull;
        trace_rng[3] = 1;
    }
    trace_rng_seeded = true;
}


static void
trace_rng_at_fork(void)
{
    (void) pthread_atfork(NULL, NULL, trace_rng_on_fork);
}


static void
trace_rng_on_fork(void)
{
    trace_rng_seeded = false;
}
