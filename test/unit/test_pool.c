/*
 * Unit tests for core/base/pool.c: alignment of every allocation, many small and
 * large allocations, sl_pool_reset, cleanup hook order on destroy and reset,
 * the string helpers and the sl_x* heap helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base/pool.h"

#define TEST_MAX_HOOKS 16

typedef struct test_hooks {
    int order[TEST_MAX_HOOKS]; /* ids in the order the hooks ran */
    int ran;
} test_hooks_t;

typedef struct test_hook {
    test_hooks_t *log;
    int id;
} test_hook_t;

static void hook_run(void *arg);
static void assert_aligned(const void *p);
static void fill_and_check(sl_pool_t *pool, size_t count, size_t max_size, unsigned seed);
static void test_create_destroy(void **state);
static void test_alignment(void **state);
static void test_many_small(void **state);
static void test_large(void **state);
static void test_tiny_block_size(void **state);
static void test_zero_size(void **state);
static void test_pcalloc(void **state);
static void test_reset(void **state);
static void test_reset_keeps_blocks(void **state);
static void test_reset_keeps_spare(void **state);
static void test_hooks_on_destroy(void **state);
static void test_hooks_on_reset(void **state);
static void test_pstrndup(void **state);
static void test_psprintf(void **state);
static void test_try_alloc_huge(void **state);
static void test_xalloc(void **state);
static void test_pgrow(void **state);


static void
hook_run(void *arg)
{
    test_hook_t *h = arg;

    assert_in_range(h->log->ran, 0, TEST_MAX_HOOKS - 1);
    h->log->order[h->log->ran++] = h->id;
}


static void
assert_aligned(const void *p)
{
    assert_non_null(p);
    assert_int_equal((uintptr_t) p % alignof(max_align_t), 0);
}


/*
 * Makes count allocations of pseudo-random sizes up to max_size, fills each
 * with its own byte, then checks none was overwritten by another.
 */
static void
fill_and_check(sl_pool_t *pool, size_t count, size_t max_size, unsigned seed)
{
    unsigned char **ptrs = calloc(count, sizeof(*ptrs));
    size_t *sizes = calloc(count, sizeof(*sizes));
    unsigned x = seed;

    assert_non_null(ptrs);
    assert_non_null(sizes);
    for (size_t i = 0; i < count; i++) {
        x = x * 1103515245u + 12345u;
        sizes[i] = (x >> 8) % max_size + 1;
        ptrs[i] = sl_palloc(pool, sizes[i]);
        assert_aligned(ptrs[i]);
        memset(ptrs[i], (int) (i & 0xff), sizes[i]);
    }
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < sizes[i]; j++) {
            if (ptrs[i][j] != (unsigned char) (i & 0xff)) {
                print_error("allocation %zu (size %zu) byte %zu overwritten\n", i, sizes[i], j);
            }
            assert_int_equal(ptrs[i][j], i & 0xff);
        }
    }
    free(sizes);
    free(ptrs);
}


static void
test_create_destroy(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);

    assert_non_null(pool);
    sl_pool_destroy(pool);
    sl_pool_destroy(NULL);
}


static void
test_alignment(void **state)
{
    sl_pool_t *pool = sl_pool_create(1024);

    /* Every size from 1 up past a quarter block, after odd-sized neighbours. */
    for (size_t n = 1; n <= 300; n++) {
        double *d;
        long double *ld;

        assert_aligned(sl_palloc(pool, n));
        assert_aligned(sl_pcalloc(pool, n));
        assert_aligned(sl_pstrndup(pool, "abc", n % 3));
        d = sl_palloc(pool, sizeof(*d));
        *d = (double) n;
        ld = sl_palloc(pool, sizeof(*ld));
        *ld = (long double) n;
    }
    sl_pool_destroy(pool);
}


static void
test_many_small(void **state)
{
    sl_pool_t *pool = sl_pool_create(4096);

    /* Many blocks' worth of small allocations. */
    fill_and_check(pool, 20000, 64, 1);
    sl_pool_destroy(pool);
}


static void
test_large(void **state)
{
    sl_pool_t *pool = sl_pool_create(4096);
    unsigned char *big;

    /* Small and large (past a quarter block, past a block) interleaved. */
    fill_and_check(pool, 2000, 10000, 2);

    big = sl_palloc(pool, 1 << 20);
    assert_aligned(big);
    memset(big, 0xab, 1 << 20);
    assert_int_equal(big[0], 0xab);
    assert_int_equal(big[(1 << 20) - 1], 0xab);
    sl_pool_destroy(pool);
}


static void
test_tiny_block_size(void **state)
{
    /* Every allocation is "large" here; the pool must still work. */
    sl_pool_t *pool = sl_pool_create(1);
    test_hooks_t log = { { 0 }, 0 };
    test_hook_t h = { &log, 1 };

    fill_and_check(pool, 200, 100, 3);
    sl_pool_on_destroy(pool, hook_run, &h);
    sl_pool_reset(pool);
    assert_int_equal(log.ran, 1);
    fill_and_check(pool, 200, 100, 4);
    sl_pool_destroy(pool);
}


static void
test_zero_size(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    void *a = sl_palloc(pool, 0);
    void *b = sl_palloc(pool, 0);

    assert_aligned(a);
    assert_aligned(b);
    assert_ptr_not_equal(a, b);
    sl_pool_destroy(pool);
}


static void
test_pcalloc(void **state)
{
    sl_pool_t *pool = sl_pool_create(512);

    for (size_t n = 1; n < 2000; n += 37) {
        unsigned char *p;

        /* Dirty the memory first so reused bytes would show. */
        memset(sl_palloc(pool, n), 0xff, n);
        p = sl_pcalloc(pool, n);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(p[i], 0);
        }
    }
    sl_pool_destroy(pool);
}


static void
test_reset(void **state)
{
    sl_pool_t *pool = sl_pool_create(1024);
    char *first;
    char *again;

    first = sl_palloc(pool, 16);
    fill_and_check(pool, 1000, 2000, 5);

    /* Reset keeps the first block: the next allocation reuses its start. */
    sl_pool_reset(pool);
    again = sl_palloc(pool, 16);
    assert_ptr_equal(again, first);

    for (int round = 0; round < 5; round++) {
        fill_and_check(pool, 500, 3000, (unsigned) round + 10);
        sl_pool_reset(pool);
    }
    /* A reset of a fresh or just-reset pool is harmless. */
    sl_pool_reset(pool);
    fill_and_check(pool, 100, 100, 20);
    sl_pool_destroy(pool);
}


/*
 * A reset keeps the first two blocks: the same allocations after it get
 * the same addresses in them, start empty (every allocation of a round
 * holds its own bytes to the end: nothing overlaps, whatever the round
 * before left), and a pool that once needed many blocks goes back to three
 * and grows again.
 */
static void
test_reset_keeps_blocks(void **state)
{
    enum { N = 40, SZ = 192 }; /* 1024-byte blocks: five allocations a block, eight blocks */
    sl_pool_t *pool = sl_pool_create(1024);
    unsigned char *before[N], *p[N];
    void *hog[2 * N];

    (void) state;
    for (int i = 0; i < N; i++) {
        before[i] = sl_palloc(pool, SZ);
        memset(before[i], 0xa5, SZ);
    }
    for (int round = 0; round < 4; round++) {
        sl_pool_reset(pool);
        /* blocks a reset freed go to these first (malloc reuses a freed chunk of the size) */
        for (int i = 0; i < 2 * N; i++) {
            hog[i] = malloc(1024 + 32);
            assert_non_null(hog[i]);
        }
        for (int i = 0; i < N; i++) {
            p[i] = sl_palloc(pool, SZ);
            assert_aligned(p[i]);
            memset(p[i], round * N + i, SZ);
            if (i < 10) {
                assert_ptr_equal(p[i], before[i]); /* the two kept blocks, in order */
            }
        }
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < SZ; j++) {
                assert_int_equal(p[i][j], (unsigned char) (round * N + i));
            }
        }
        for (int i = 0; i < 2 * N; i++) {
            free(hog[i]);
        }
        /* a smaller round between: only the first block used, the kept ones stay */
        sl_pool_reset(pool);
        for (int i = 0; i < 3; i++) {
            assert_ptr_equal(sl_palloc(pool, SZ), before[i]);
        }
        sl_pool_reset(pool);
        for (int i = 0; i < 10; i++) {
            assert_ptr_equal(sl_palloc(pool, SZ), before[i]);
        }
    }
    sl_pool_destroy(pool);
}


/*
 * A reset keeps the largest dedicated block up to 8 KiB: the next large
 * allocation it can hold gets it (the same address although the heap's
 * freed chunks are taken first), and only one (a second in the same round
 * gets its own); one too big for it, or a block over 16 KiB, is not kept.
 * Every allocation holds its own bytes.
 */
static void
test_reset_keeps_spare(void **state)
{
    sl_pool_t *pool = sl_pool_create(1024);
    unsigned char *a, *b, *c, *d, *big;
    void *hog[16];

    (void) state;
    a = sl_palloc(pool, 3000);
    b = sl_palloc(pool, 5000);
    big = sl_palloc(pool, 20000);
    memset(a, 1, 3000);
    memset(b, 2, 5000);
    memset(big, 3, 20000);
    sl_pool_reset(pool);
    for (int i = 0; i < 16; i++) {
        hog[i] = malloc(i % 2 == 0 ? 3000 + 32 : 5000 + 32);
        assert_non_null(hog[i]);
    }
    c = sl_palloc(pool, 4000); /* the 5000-byte block, the larger one kept */
    assert_ptr_equal(c, b);
    d = sl_palloc(pool, 4000); /* no spare left: its own */
    assert_ptr_not_equal(d, b);
    memset(c, 4, 4000);
    memset(d, 5, 4000);
    for (int i = 0; i < 4000; i++) {
        assert_int_equal(c[i], 4);
        assert_int_equal(d[i], 5);
    }
    sl_pool_reset(pool);
    c = sl_palloc(pool, 6000); /* larger than the spare (5000 or 4000): a new block */
    memset(c, 6, 6000);
    assert_ptr_not_equal(c, b);
    assert_ptr_not_equal(c, d);
    sl_pool_reset(pool);
    c = sl_palloc(pool, 6000); /* the 6000-byte block kept */
    d = sl_palloc(pool, 300);
    memset(d, 7, 300);
    for (int i = 0; i < 6000; i++) {
        assert_int_equal(c[i], 6); /* a kept block is not cleared, nor overlapped */
    }
    sl_pool_reset(pool);
    big = sl_palloc(pool, 20000);
    memset(big, 8, 20000);
    sl_pool_reset(pool);
    c = sl_palloc(pool, 6000);
    assert_ptr_not_equal(c, big); /* over 8 KiB: never kept */
    for (int i = 0; i < 16; i++) {
        free(hog[i]);
    }
    sl_pool_destroy(pool);
}


static void
test_hooks_on_destroy(void **state)
{
    sl_pool_t *pool = sl_pool_create(256);
    test_hooks_t log = { { 0 }, 0 };
    test_hook_t h[5];

    for (int i = 0; i < 5; i++) {
        h[i].log = &log;
        h[i].id = i;
        sl_pool_on_destroy(pool, hook_run, &h[i]);
        /* Allocations between hooks move them across blocks. */
        (void) sl_palloc(pool, 200);
    }
    assert_int_equal(log.ran, 0);
    sl_pool_destroy(pool);
    assert_int_equal(log.ran, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(log.order[i], 4 - i);
    }
}


static void
test_hooks_on_reset(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    test_hooks_t log = { { 0 }, 0 };
    test_hook_t h[4];

    for (int i = 0; i < 4; i++) {
        h[i].log = &log;
        h[i].id = i;
    }
    sl_pool_on_destroy(pool, hook_run, &h[0]);
    sl_pool_on_destroy(pool, hook_run, &h[1]);
    sl_pool_reset(pool);
    assert_int_equal(log.ran, 2);
    assert_int_equal(log.order[0], 1);
    assert_int_equal(log.order[1], 0);

    /* Hooks run once: a second reset runs nothing, new hooks run on destroy. */
    sl_pool_reset(pool);
    assert_int_equal(log.ran, 2);
    sl_pool_on_destroy(pool, hook_run, &h[2]);
    sl_pool_on_destroy(pool, hook_run, &h[3]);
    sl_pool_destroy(pool);
    assert_int_equal(log.ran, 4);
    assert_int_equal(log.order[2], 3);
    assert_int_equal(log.order[3], 2);
}


static void
test_pstrndup(void **state)
{
    sl_pool_t *pool = sl_pool_create(64);
    char big[1000];
    char *s;

    s = sl_pstrndup(pool, "hello world", 5);
    assert_string_equal(s, "hello");
    s = sl_pstrndup(pool, "", 0);
    assert_string_equal(s, "");
    s = sl_pstrndup(pool, NULL, 0);
    assert_string_equal(s, "");
    /* Embedded NUL bytes are copied; the result is still terminated after n. */
    s = sl_pstrndup(pool, "a\0b", 3);
    assert_memory_equal(s, "a\0b\0", 4);
    s = sl_pstrdup(pool, "dup");
    assert_string_equal(s, "dup");

    memset(big, 'z', sizeof(big));
    s = sl_pstrndup(pool, big, sizeof(big));
    assert_int_equal(strlen(s), sizeof(big));
    assert_memory_equal(s, big, sizeof(big));
    sl_pool_destroy(pool);
}


static void
test_psprintf(void **state)
{
    sl_pool_t *pool = sl_pool_create(64);
    char big[500];
    char *s;

    s = sl_psprintf(pool, "%s-%d-%zu", "ab", -42, (size_t) 7);
    assert_string_equal(s, "ab--42-7");
    s = sl_psprintf(pool, "%s", "");
    assert_string_equal(s, "");

    /* Longer than the block size. */
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s = sl_psprintf(pool, "<%s>", big);
    assert_int_equal(strlen(s), sizeof(big) + 1);
    assert_int_equal(s[0], '<');
    assert_int_equal(s[sizeof(big)], '>');

    /* sl_pstrcat: "%s%s" without printf */
    assert_string_equal(sl_pstrcat(pool, "Bearer ", "sk-x"), "Bearer sk-x");
    assert_string_equal(sl_pstrcat(pool, "", ""), "");
    s = sl_pstrcat(pool, big, "/v1");
    assert_int_equal(strlen(s), sizeof(big) + 2);
    assert_string_equal(s + sizeof(big) - 1, "/v1");
    sl_pool_destroy(pool);
}


static void
test_try_alloc_huge(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);

    /* A size that cannot be met must fail cleanly, not wrap around. */
    assert_null(sl_pool_try_alloc(pool, SIZE_MAX));
    assert_null(sl_pool_try_alloc(pool, SIZE_MAX - 8));
    assert_aligned(sl_pool_try_alloc(pool, 100));
    sl_pool_destroy(pool);
}


static void
test_xalloc(void **state)
{
    char *p = sl_xmalloc(0);
    unsigned char *z;
    char *s;

    assert_non_null(p);
    p = sl_xrealloc(p, 100);
    memset(p, 'a', 100);
    p = sl_xrealloc(p, 10000);
    assert_int_equal(p[99], 'a');
    free(p);

    z = sl_xcalloc(10, 10);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(z[i], 0);
    }
    free(z);

    s = sl_xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = sl_xstrndup(NULL, 0);
    assert_string_equal(s, "");
    free(s);
}


/* sl_pgrow: the same array while there is room, then a copy of twice the size. */
static void
test_pgrow(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    uint32_t *v = NULL, *prev;
    size_t n = 0, cap = 0;

    for (uint32_t i = 0; i < 1000; i++) {
        prev = v;
        v = sl_pgrow(pool, v, n, &cap, 4, sizeof(*v));
        if (n < 4 && n > 0) {
            assert_ptr_equal(v, prev);
        }
        assert_true(cap > n);
        assert_true(cap == 4 || (cap & (cap - 1)) == 0);
        v[n++] = i * 7;
    }
    assert_int_equal(cap, 1024);
    for (uint32_t i = 0; i < 1000; i++) {
        assert_int_equal(v[i], i * 7);
    }
    sl_pool_destroy(pool);
    (void) state;
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_destroy),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_many_small),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_tiny_block_size),
        cmocka_unit_test(test_zero_size),
        cmocka_unit_test(test_pcalloc),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_reset_keeps_blocks),
        cmocka_unit_test(test_reset_keeps_spare),
        cmocka_unit_test(test_hooks_on_destroy),
        cmocka_unit_test(test_hooks_on_reset),
        cmocka_unit_test(test_pstrndup),
        cmocka_unit_test(test_psprintf),
        cmocka_unit_test(test_try_alloc_huge),
        cmocka_unit_test(test_xalloc),
        cmocka_unit_test(test_pgrow),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
