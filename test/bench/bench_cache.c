/*
 * Timing of the semantic cache's lookup (storage/cache.c sl_cache_match),
 * for scripts/bench (BENCH_ONLY=cache): one partition is filled with N
 * entries (random unit vectors of DIMS dimensions, each with its content
 * words), then Q lookups with random vectors scan it, as a miss does (a
 * threshold nothing reaches, so every vector is compared).
 *
 *   bench_cache DIR N DIMS Q
 *
 * prints one line: "N DIMS fill_s P50_US P99_US INLINE_P50_US CPU_P50_US",
 * where P50 and P99 are wall-clock times over the Q whole-partition scans
 * (what a worker's thread pool does for a large partition), INLINE is the
 * first SL_CACHE_INLINE_SCAN vectors (what the event loop does before
 * handing a large partition to the thread pool), and CPU the thread's CPU
 * time of a whole scan (unlike wall time, not inflated by a busy machine). Warm: the partition is
 * read once before timing. DIR must not exist or be empty; it is left behind (the caller removes
 * it). No timing here is a test: scripts/bench prints the numbers.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "storage/cache.h"
#include "storage/db.h"

#define BENCH_INLINE 512 /* SL_CACHE_INLINE_SCAN in core/gateway/cache_internal.h */
#define BENCH_WORDS  4

static uint64_t bench_rand_state = 88172645463325252ull;

static uint64_t bench_rand(void);
static void bench_vector(float *v, uint32_t dims);
static double bench_now_us(void);
static double bench_cpu_us(void);
static int bench_cmp(const void *a, const void *b);


static uint64_t
bench_rand(void)
{
    bench_rand_state ^= bench_rand_state << 13;
    bench_rand_state ^= bench_rand_state >> 7;
    bench_rand_state ^= bench_rand_state << 17;
    return bench_rand_state;
}


/* A random unit vector (sums of uniforms: close enough to normal for direction). */
static void
bench_vector(float *v, uint32_t dims)
{
    double n = 0;

    for (uint32_t i = 0; i < dims; i++) {
        double x = 0;

        for (int k = 0; k < 4; k++) {
            x += (double) (bench_rand() % 2001) / 1000.0 - 1.0;
        }
        v[i] = (float) x;
        n += x * x;
    }
    n = sqrt(n);
    for (uint32_t i = 0; i < dims; i++) {
        v[i] = (float) (v[i] / n);
    }
}


static double
bench_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}


static double
bench_cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}


static int
bench_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y ? 1 : 0;
}


int
main(int argc, char **argv)
{
    size_t n, q, map;
    uint32_t dims, words[BENCH_WORDS];
    float *v;
    double t0, c0, fill, *full, *inline_us, *cpu;
    uint8_t part[SL_CACHE_PART_LEN], ctx[SL_CACHE_CTX_LEN];
    sl_cache_query_t query;
    sl_cache_match_t m;
    sl_db_t *db;
    sl_txn_t *t;
    char body[600];
    int rc;

    if (argc != 5) {
        fprintf(stderr, "usage: bench_cache DIR N DIMS QUERIES\n");
        return 2;
    }
    n = strtoul(argv[2], NULL, 10);
    dims = (uint32_t) strtoul(argv[3], NULL, 10);
    q = strtoul(argv[4], NULL, 10);
    if (n == 0 || dims == 0 || dims > SL_CACHE_DIMS_MAX || q == 0) {
        fprintf(stderr, "bench_cache: N, DIMS (at most %d) and QUERIES must be positive\n",
                SL_CACHE_DIMS_MAX);
        return 2;
    }
    sl_log_open(NULL, SL_LOG_WARN);
    /* vector, words, the entry and its two index records, with room to spare */
    map = n * (5 * (size_t) dims + sizeof(body) + 512) * 2 + (64u << 20);
    rc = sl_db_open(argv[1], map, 0, &db);
    if (rc != 0) {
        fprintf(stderr, "bench_cache: cannot open \"%s\": %s\n", argv[1], sl_strerror(rc));
        return 1;
    }
    v = malloc(4 * (size_t) dims);
    full = malloc(q * sizeof(double));
    inline_us = malloc(q * sizeof(double));
    cpu = malloc(q * sizeof(double));
    if (v == NULL || full == NULL || inline_us == NULL || cpu == NULL) {
        return 1;
    }
    memset(part, 7, sizeof(part));
    memset(ctx, 9, sizeof(ctx));
    memset(body, 'x', sizeof(body));

    t0 = bench_now_us();
    for (size_t i = 0; i < n; i++) {
        sl_cache_entry_t e;
        sl_cache_vec_t vec;

        bench_vector(v, dims);
        for (int k = 0; k < BENCH_WORDS; k++) {
            words[k] = (uint32_t) (i * BENCH_WORDS + (size_t) k); /* sorted, unique */
        }
        memset(&e, 0, sizeof(e));
        memset(&vec, 0, sizeof(vec));
        for (size_t k = 0; k < SL_CACHE_KEY_LEN; k += 8) {
            uint64_t r = bench_rand();

            memcpy(e.key + k, &r, 8);
        }
        e.created_ns = (int64_t) time(NULL) * 1000000000 + (int64_t) i;
        e.expires = (int64_t) time(NULL) + 86400;
        e.model = "gpt-4o-mini";
        e.key_id = "";
        e.key_name = "static";
        e.team = "";
        e.provider = "mock";
        e.target_model = "gpt-4o-mini";
        e.served_model = "gpt-4o-mini";
        e.body = (sl_str_t){ body, sizeof(body) };
        memcpy(vec.part, part, sizeof(part));
        memcpy(vec.ctx, ctx, sizeof(ctx));
        vec.v = v;
        vec.dims = dims;
        vec.words = words;
        vec.nwords = BENCH_WORDS;
        e.vec = &vec;
        rc = sl_cache_put(db, &e, (size_t) 1 << 40, NULL);
        if (rc != 0) {
            fprintf(stderr, "bench_cache: fill %zu failed: %s\n", i, sl_strerror(rc));
            return 1;
        }
    }
    fill = (bench_now_us() - t0) / 1e6;

    memset(&query, 0, sizeof(query));
    memcpy(query.part, part, sizeof(part));
    memcpy(query.ctx, ctx, sizeof(ctx));
    query.v = v;
    query.dims = dims;
    query.threshold = 2.0f; /* nothing reaches it: every lookup scans the whole partition */
    query.now = (int64_t) time(NULL);
    /* warm: one scan reads every page once */
    if (sl_db_read(db, &t) != 0 || sl_cache_match(t, &query, 0, &m) != 0) {
        return 1;
    }
    sl_db_abort(t);
    if (m.scanned != n) {
        fprintf(stderr, "bench_cache: scanned %zu of %zu vectors\n", m.scanned, n);
        return 1;
    }
    for (size_t i = 0; i < q; i++) {
        bench_vector(v, dims);
        t0 = bench_now_us();
        c0 = bench_cpu_us();
        if (sl_db_read(db, &t) != 0 || sl_cache_match(t, &query, 0, &m) != 0) {
            return 1;
        }
        sl_db_abort(t);
        cpu[i] = bench_cpu_us() - c0;
        full[i] = bench_now_us() - t0;
        t0 = bench_now_us();
        if (sl_db_read(db, &t) != 0 || sl_cache_match(t, &query, BENCH_INLINE, &m) != 0) {
            return 1;
        }
        sl_db_abort(t);
        inline_us[i] = bench_now_us() - t0;
    }
    qsort(full, q, sizeof(double), bench_cmp);
    qsort(inline_us, q, sizeof(double), bench_cmp);
    qsort(cpu, q, sizeof(double), bench_cmp);
    printf("%zu %u %.1f %.0f %.0f %.0f %.0f\n", n, dims, fill, full[q / 2], full[(q * 99) / 100],
           inline_us[q / 2], cpu[q / 2]);
    free(v);
    free(full);
    free(inline_us);
    free(cpu);
    sl_db_close(db);
    return 0;
}
