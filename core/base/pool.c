/*
 * A bump allocator over a linked list of blocks. Allocations larger than a
 * quarter block get a block of their own so they do not waste the current
 * one. Cleanup hooks are kept in a singly linked list, newest first.
 *
 * A reset keeps the first POOL_KEEP_BLOCKS blocks of the chain (the rest is
 * freed) and the largest of the dedicated blocks up to POOL_SPARE_MAX bytes
 * (the spare, for the next large allocation it can hold): a keep-alive
 * connection whose requests need a few blocks and a big structure does not
 * allocate and free them again for every request. The blocks after cur are
 * the kept, unused ones; moving on to one starts it empty.
 */
#include "core/base/pool.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"

#define POOL_ALIGN         16
#define POOL_DEFAULT_BLOCK 4096
#define POOL_KEEP_BLOCKS   2 /* blocks of the chain (the first included) a reset keeps */
#define POOL_SPARE_MAX     ((size_t) 8192) /* largest dedicated block a reset keeps */

typedef struct pool_block pool_block_t;
typedef struct pool_cleanup pool_cleanup_t;

struct pool_block {
    pool_block_t *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(POOL_ALIGN) unsigned char data[];
};

struct pool_cleanup {
    pool_cleanup_t *next;
    sl_pool_cleanup_cb fn;
    void *arg;
};

struct sl_pool {
    pool_block_t *head;  /* first block, kept across sl_pool_reset (and the next few) */
    pool_block_t *cur;   /* block being filled; the blocks after it are kept, unused */
    pool_block_t *large; /* dedicated blocks for big allocations */
    pool_block_t *spare; /* a dedicated block a reset kept, unused; NULL when none */
    pool_cleanup_t *cleanups;
    size_t block_size;
};

static pool_block_t *pool_block_new(size_t size);
static void pool_run_cleanups(sl_pool_t *pool);
static void pool_free_chain(pool_block_t *b);
static void pool_oom(size_t n) __attribute__((noreturn));


static void
pool_oom(size_t n)
{
    /* fatal: the worker dies, the master respawns it */
    fprintf(stderr, "sluice: out of memory allocating %zu bytes\n", n);
    abort();
}


static pool_block_t *
pool_block_new(size_t size)
{
    pool_block_t *b;

    /* A wrapped sum would hand out a tiny block for a huge request. */
    if (size > SIZE_MAX - sizeof(*b)) {
        return NULL;
    }
    b = malloc(sizeof(*b) + size);
    if (b == NULL) {
        return NULL;
    }
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}


sl_pool_t *
sl_pool_create(size_t block_size)
{
    sl_pool_t *pool;

    if (block_size == 0) {
        block_size = POOL_DEFAULT_BLOCK;
    }
    pool = malloc(sizeof(*pool));
    if (pool == NULL) {
        return NULL;
    }
    pool->head = pool_block_new(block_size);
    if (pool->head == NULL) {
        free(pool);
        return NULL;
    }
    pool->cur = pool->head;
    pool->large = NULL;
    pool->spare = NULL;
    pool->cleanups = NULL;
    pool->block_size = block_size;
    return pool;
}


static void
pool_run_cleanups(sl_pool_t *pool)
{
    while (pool->cleanups != NULL) {
        pool_cleanup_t *c = pool->cleanups;

        pool->cleanups = c->next;
        c->fn(c->arg);
    }
}


static void
pool_free_chain(pool_block_t *b)
{
    while (b != NULL) {
        pool_block_t *next = b->next;

        free(b);
        b = next;
    }
}


void
sl_pool_destroy(sl_pool_t *pool)
{
    if (pool == NULL) {
        return;
    }
    pool_run_cleanups(pool);
    pool_free_chain(pool->large);
    pool_free_chain(pool->head);
    free(pool->spare);
    free(pool);
}


void
sl_pool_reset(sl_pool_t *pool)
{
    pool_block_t *last = pool->head;

    pool_run_cleanups(pool);
    while (pool->large != NULL) {
        pool_block_t *b = pool->large;

        pool->large = b->next;
        if (b->size <= POOL_SPARE_MAX && (pool->spare == NULL || b->size > pool->spare->size)) {
            free(pool->spare);
            pool->spare = b;
            b->next = NULL;
        } else {
            free(b);
        }
    }
    for (int i = 1; i < POOL_KEEP_BLOCKS && last->next != NULL; i++) {
        last = last->next;
    }
    pool_free_chain(last->next);
    last->next = NULL;
    pool->head->used = 0;
    pool->cur = pool->head;
}


void *
sl_pool_try_alloc(sl_pool_t *pool, size_t n)
{
    pool_block_t *b;
    size_t off;

    if (n == 0) {
        n = 1;
    }
    if (n > pool->block_size / 4) {
        if (pool->spare != NULL && pool->spare->size >= n) {
            b = pool->spare;
            pool->spare = NULL;
        } else {
            b = pool_block_new(n);
            if (b == NULL) {
                return NULL;
            }
        }
        b->used = n;
        b->next = pool->large;
        pool->large = b;
        return b->data;
    }
    b = pool->cur;
    off = (b->used + POOL_ALIGN - 1) & ~(size_t) (POOL_ALIGN - 1);
    if (off + n > b->size) {
        if (b->next != NULL) {
            b = b->next; /* kept by a reset: unused */
        } else {
            b = pool_block_new(pool->block_size);
            if (b == NULL) {
                return NULL;
            }
            pool->cur->next = b;
        }
        pool->cur = b;
        off = 0;
    }
    b->used = off + n;
    return b->data + off;
}


void *
sl_palloc(sl_pool_t *pool, size_t n)
{
    void *p = sl_pool_try_alloc(pool, n);

    if (p == NULL) {
        pool_oom(n);
    }
    return p;
}


void *
sl_pcalloc(sl_pool_t *pool, size_t n)
{
    void *p = sl_palloc(pool, n);

    memset(p, 0, n);
    return p;
}


void *
sl_pgrow(sl_pool_t *pool, void *v, size_t n, size_t *cap, size_t first, size_t size)
{
    size_t next;
    void *nv;

    SL_ASSERT(n <= *cap && first > 0);
    if (n < *cap) {
        return v;
    }
    next = *cap == 0 ? first : *cap * 2;
    SL_ASSERT(next > *cap && next <= SIZE_MAX / size);
    nv = sl_palloc(pool, next * size);
    if (n > 0) {
        memcpy(nv, v, n * size);
    }
    *cap = next;
    return nv;
}


char *
sl_pstrndup(sl_pool_t *pool, const char *s, size_t n)
{
    char *d = sl_palloc(pool, n + 1);

    if (n > 0) {
        memcpy(d, s, n);
    }
    d[n] = '\0';
    return d;
}


char *
sl_pstrdup(sl_pool_t *pool, const char *s)
{
    return sl_pstrndup(pool, s, strlen(s));
}


char *
sl_pstrcat(sl_pool_t *pool, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *d = sl_palloc(pool, na + nb + 1);

    memcpy(d, a, na);
    memcpy(d + na, b, nb + 1);
    return d;
}


char *
sl_psprintf(sl_pool_t *pool, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *d;

    /*
     * fmt is never NULL, but gcc 12 under -fsanitize=undefined does not know
     * it and fails the build with a false "null format string" warning.
     */
    if (fmt == NULL) {
        return sl_pstrdup(pool, "");
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return sl_pstrdup(pool, "");
    }
    d = sl_palloc(pool, (size_t) n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t) n + 1, fmt, ap);
    va_end(ap);
    return d;
}


void
sl_pool_on_destroy(sl_pool_t *pool, sl_pool_cleanup_cb fn, void *arg)
{
    pool_cleanup_t *c = sl_palloc(pool, sizeof(*c));

    c->fn = fn;
    c->arg = arg;
    c->next = pool->cleanups;
    pool->cleanups = c;
}


void *
sl_xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL) {
        pool_oom(n);
    }
    return p;
}


void *
sl_xcalloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb == 0 ? 1 : nmemb, n == 0 ? 1 : n);

    if (p == NULL) {
        pool_oom(nmemb * n);
    }
    return p;
}


void *
sl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);

    if (q == NULL) {
        pool_oom(n);
    }
    return q;
}


char *
sl_xstrndup(const char *s, size_t n)
{
    char *d = sl_xmalloc(n + 1);

    if (n > 0) {
        memcpy(d, s, n);
    }
    d[n] = '\0';
    return d;
}
