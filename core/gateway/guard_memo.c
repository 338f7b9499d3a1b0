/*
 * The detectors' memo (core/gateway/guard_internal.h): what the built-in
 * detectors found in the texts of 1 KiB and more a worker scanned last,
 * kept so that the same text is not scanned twice. Agents send their whole
 * conversation with every turn, so all but the newest messages of a
 * request are texts the worker has seen. A text is found by a hash of some
 * of its bytes and then compared whole: two texts share a result only when
 * they are equal, byte for byte, and were scanned with the same detectors.
 *
 * A text is kept the second time it is scanned (the first time only its
 * hash is noted), so texts that never come again cost no copy. One table
 * per process, used by its event loop only. Each entry holds a copy of its
 * text (heap), so the memo keeps at most SL__GUARD_MEMO_BYTES of recent
 * prompt text in the worker's memory; the oldest entries go first when it
 * is full.
 */
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/gateway/guard_internal.h"

#define MEMO_SLOTS   1024u /* a power of two */
#define MEMO_SAMPLES 64u   /* 8-byte words of a text the hash reads */

/*
 * What the build has for memo_hash_all: 1 or 0, tested in the code; each
 * helper is defined under the same test, with a stand-in otherwise (never
 * called then). AVX2 is the CPU's choice at run time, as for the scan.
 */
#if defined(__SSE2__)
#define MEMO_SSE2 1
#include <emmintrin.h>
#else
#define MEMO_SSE2 0
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MEMO_AVX2 1
#include <immintrin.h>
#else
#define MEMO_AVX2 0
#endif

/* A match as the memo keeps it (check and placeholder are the caller's). */
typedef struct memo_hit {
    uint32_t start;
    uint32_t end;
    uint16_t det;
    bool open;
} memo_hit_t;

typedef struct memo_entry {
    uint64_t hash; /* 0: empty */
    unsigned mask;
    size_t len;
    char *text; /* heap: text, then the hits */
    memo_hit_t *hits;
    size_t nhits;
    uint64_t age; /* memo_clock when it was stored */
} memo_entry_t;

static size_t memo_align(size_t n);
static void memo_drop(memo_entry_t *e);
static uint64_t memo_hash(const char *t, size_t len, unsigned mask);
static uint64_t memo_hash_all(const char *t, size_t len, unsigned mask);
static uint64_t memo_fold(const uint64_t *v, size_t n, uint64_t h);
#if MEMO_AVX2
static void memo_lanes_avx2(const char *t, size_t len, uint64_t a, uint64_t b, uint64_t *v)
    __attribute__((target("avx2")));
#else
static void memo_lanes_avx2(const char *t, size_t len, uint64_t a, uint64_t b, uint64_t *v);
#endif
static void memo_lanes_sse2(const char *t, size_t len, uint64_t a, uint64_t b, uint64_t *v);
static void memo_room(size_t need);

static memo_entry_t memo[MEMO_SLOTS];
static uint64_t memo_seen[MEMO_SLOTS]; /* by memo_hash: memo_hash_all of the text scanned last */
static size_t memo_bytes;              /* text and hits of every entry */
static uint64_t memo_clock;            /* entries stored */
static sl__guard_memo_stats_t memo_stats;


void
sl__guard_detect_whole(const char *t, size_t len, unsigned mask, sl__guard_hits_t *out)
{
    uint64_t h, all;
    memo_entry_t *e;
    size_t before = out->n, n, size;

    if (len < SL__GUARD_MEMO_MIN || len > SL__GUARD_MEMO_TEXT_MAX) {
        sl__guard_detect(t, len, 0, mask, out);
        return;
    }
    h = memo_hash(t, len, mask);
    e = &memo[h & (MEMO_SLOTS - 1)];
    if (e->hash == h && e->mask == mask && e->len == len && memcmp(e->text, t, len) == 0) {
        memo_stats.hits++;
        for (size_t i = 0; i < e->nhits; i++) {
            const memo_hit_t *m = &e->hits[i];

            sl__guard_hits_push(out, m->start, m->end, m->det, m->open);
        }
        return;
    }
    memo_stats.misses++;
    sl__guard_detect(t, len, 0, mask, out);
    all = memo_hash_all(t, len, mask);
    if (memo_seen[h & (MEMO_SLOTS - 1)] != all) {
        /* the first time: only its hash is noted (most texts never come again) */
        memo_seen[h & (MEMO_SLOTS - 1)] = all;
        return;
    }
    n = out->n - before;
    size = len + n * sizeof(memo_hit_t);
    memo_drop(e);
    memo_room(size);
    /* the hits after the text, aligned */
    e->text = malloc(memo_align(len) + n * sizeof(memo_hit_t));
    if (e->text == NULL) {
        return; /* not kept; the result is out all the same */
    }
    memcpy(e->text, t, len);
    e->hits = (memo_hit_t *) (void *) (e->text + memo_align(len));
    for (size_t i = 0; i < n; i++) {
        const sl__guard_hit_t *x = &out->v[before + i];

        /* len <= SL__GUARD_MEMO_TEXT_MAX: every position fits */
        e->hits[i] =
            (memo_hit_t){ (uint32_t) x->start, (uint32_t) x->end, (uint16_t) x->det, x->open };
    }
    e->hash = h;
    e->mask = mask;
    e->len = len;
    e->nhits = n;
    e->age = ++memo_clock;
    memo_bytes += size;
    SL_ASSERT(memo_bytes <= SL__GUARD_MEMO_BYTES);
}


/* n rounded up to where a memo_hit_t may start. */
static size_t
memo_align(size_t n)
{
    return (n + _Alignof(memo_hit_t) - 1) & ~(size_t) (_Alignof(memo_hit_t) - 1);
}


/* Empties slot e. */
static void
memo_drop(memo_entry_t *e)
{
    if (e->hash == 0) {
        return;
    }
    SL_ASSERT(memo_bytes >= e->len + e->nhits * sizeof(memo_hit_t));
    memo_bytes -= e->len + e->nhits * sizeof(memo_hit_t);
    free(e->text);
    memset(e, 0, sizeof(*e));
}


/* Drops the oldest entries until need more bytes fit. */
static void
memo_room(size_t need)
{
    while (memo_bytes + need > SL__GUARD_MEMO_BYTES) {
        memo_entry_t *old = NULL;

        for (size_t i = 0; i < MEMO_SLOTS; i++) {
            if (memo[i].hash != 0 && (old == NULL || memo[i].age < old->age)) {
                old = &memo[i];
            }
        }
        SL_ASSERT(old != NULL); /* need <= SL__GUARD_MEMO_BYTES, so something holds the rest */
        memo_drop(old);
    }
}


/*
 * A hash of the length, the detectors and MEMO_SAMPLES words spread over
 * the text (the first and last included); never 0. A text that shares
 * them with another only costs the comparison that tells them apart.
 */
static uint64_t
memo_hash(const char *t, size_t len, unsigned mask)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len ^ ((uint64_t) mask << 40);
    size_t step = (len - 8) / (MEMO_SAMPLES - 1);

    for (size_t i = 0; i < MEMO_SAMPLES; i++) {
        uint64_t w;

        memcpy(&w, t + (i + 1 < MEMO_SAMPLES ? i * step : len - 8), 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    return h != 0 ? h : 1;
}


/*
 * A hash of every byte, which tells whether a text was scanned before:
 * texts that differ only where memo_hash does not look (a prefix of the
 * same length: "Request 17. ") share a slot but not this. Two texts that
 * collide here only cost a copy. It runs on every text the memo has not
 * seen, so it must cost little beside the scan: one chain of multiplies
 * (8 bytes a step, each step waiting for the last) took 1.2 us for 20 KiB,
 * half the scan of an ordinary prompt. With SSE2 or AVX2, independent
 * lanes (memo_lanes_sse2) take 0.2 to 0.4 us.
 */
static uint64_t
memo_hash_all(const char *t, size_t len, unsigned mask)
{
    uint64_t a = 0x243f6a8885a308d3ULL ^ len, b = 0x13198a2e03707344ULL ^ mask, v[16];
    unsigned isa = sl__guard_isa();
    size_t i = 0;

    if (MEMO_AVX2 && isa == SL__GUARD_ISA_AVX2 && len >= 128) {
        memo_lanes_avx2(t, len, a, b, v);
        a = memo_fold(v, 16, a);
    } else if (MEMO_SSE2 && isa >= SL__GUARD_ISA_SSE2 && len >= 64) {
        memo_lanes_sse2(t, len, a, b, v);
        a = memo_fold(v, 8, a);
    } else {
        for (; i + 32 <= len; i += 32) {
            uint64_t w0, w1, w2, w3;

            memcpy(&w0, t + i, 8);
            memcpy(&w1, t + i + 8, 8);
            memcpy(&w2, t + i + 16, 8);
            memcpy(&w3, t + i + 24, 8);
            a ^= w0;
            b ^= w2;
            a = ((a << 29) | (a >> 35)) * 0x9e3779b97f4a7c15ULL + w1;
            b = ((b << 29) | (b >> 35)) * 0xc2b2ae3d27d4eb4fULL + w3;
        }
        for (; i < len; i++) {
            a = (a ^ (unsigned char) t[i]) * 0x100000001b3ULL;
        }
    }
    a ^= b * 0xff51afd7ed558ccdULL;
    a ^= a >> 33;
    return a != 0 ? a : 1;
}


/* h mixed with the n words of v, in order. */
static uint64_t
memo_fold(const uint64_t *v, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ v[i]) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 32;
    }
    return h;
}


#if MEMO_SSE2
/*
 * The lanes of memo_hash_all (len >= 64): each 16 bytes x of a stripe of
 * 64 go to their own accumulator, which adds lo32(y) * hi32(y) for each
 * half y of x ^ key, and x with its halves swapped (so a y that zeroes the
 * product still counts). The key changes with each stripe, so the same
 * bytes elsewhere add something else. A last partial stripe is the last
 * 64 bytes (read twice in part). v: the 8 words of the accumulators.
 */
static void
memo_lanes_sse2(const char *t, size_t len, uint64_t a, uint64_t b, uint64_t *v)
{
    const __m128i step =
        _mm_set_epi64x((long long) 0x9e3779b97f4a7c15ULL, (long long) 0xc2b2ae3d27d4eb4fULL);
    __m128i key = _mm_set_epi64x((long long) a, (long long) b), acc[4];
    size_t i = 0;

    for (unsigned k = 0; k < 4; k++) {
        acc[k] = _mm_set_epi64x((long long) k, (long long) len);
    }
    while (i < len) {
        const char *p = i + 64 <= len ? t + i : t + len - 64;

        for (unsigned k = 0; k < 4; k++) {
            __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (p + 16 * k));
            __m128i y = _mm_xor_si128(x, key);
            __m128i m = _mm_mul_epu32(y, _mm_shuffle_epi32(y, 0xb1)); /* 0xb1: 32-bit swaps */

            acc[k] = _mm_add_epi64(acc[k], _mm_add_epi64(m, _mm_shuffle_epi32(x, 0x4e)));
        }
        key = _mm_add_epi64(key, step);
        i += 64;
    }
    _mm_storeu_si128((__m128i *) (void *) v, acc[0]);
    _mm_storeu_si128((__m128i *) (void *) (v + 2), acc[1]);
    _mm_storeu_si128((__m128i *) (void *) (v + 4), acc[2]);
    _mm_storeu_si128((__m128i *) (void *) (v + 6), acc[3]);
}
#else
/* (no SSE2 in this build: never called) */
static void
memo_lanes_sse2(const char *t, size_t len, uint64_t a, uint64_t b, uint64_t *v)
{
    (void) t;
    (void) len;
    (void) a;
    (void) b;
    (void) v;
}
#endif


#if MEMO_AVX2
/* memo_lanes_sse2 with AVX2 (len >= 128): stripes of 128 bytes, 32 to an accumulator; 16 words. */
static void
memo_lanes_avx2(const char *t, size_t len, uint64_t a, uint64_t b, uint64_t *v)
{
    const __m256i step =
        _mm256_set_epi64x((long long) 0x9e3779b97f4a7c15ULL, (long long) 0xc2b2ae3d27d4eb4fULL,
                          (long long) 0x165667b19e3779f9ULL, (long long) 0x27d4eb2f165667c5ULL);
    __m256i key = _mm256_set_epi64x((long long) a, (long long) b, (long long) ~a, (long long) ~b);
    __m256i acc[4];
    size_t i = 0;

    for (unsigned k = 0; k < 4; k++) {
        acc[k] = _mm256_set_epi64x((long long) k, (long long) len, 0, 0);
    }
    while (i < len) {
        const char *p = i + 128 <= len ? t + i : t + len - 128;

        for (unsigned k = 0; k < 4; k++) {
            __m256i x = _mm256_loadu_si256((const __m256i *) (const void *) (p + 32 * k));
            __m256i y = _mm256_xor_si256(x, key);
            __m256i m = _mm256_mul_epu32(y, _mm256_shuffle_epi32(y, 0xb1));

            acc[k] = _mm256_add_epi64(acc[k], _mm256_add_epi64(m, _mm256_shuffle_epi32(x, 0x4e)));
        }
        key = _mm256_add_epi64(key, step);
        i += 128;
    }
    for (unsigned k = 0; k < 4; k++) {
        _mm256_storeu_si256((__m256i *) (void *) (v + 4 * k), acc[k]);
    }
}
#else
/* (no AVX2 code in this build: never called) */
static void
memo_lanes_avx2(const char *t, size_t len, uint64_t a, uint64_t b, uint64_t *v)
{
    (void) t;
    (void) len;
    (void) a;
    (void) b;
    (void) v;
}
#endif


sl__guard_memo_stats_t
sl__guard_memo_stats(void)
{
    sl__guard_memo_stats_t st = memo_stats;

    st.bytes = memo_bytes;
    return st;
}


void
sl__guard_memo_clear(void)
{
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        memo_drop(&memo[i]);
    }
    memset(memo_seen, 0, sizeof(memo_seen));
    memset(&memo_stats, 0, sizeof(memo_stats));
}
