/*
 * Region allocator (nginx pools). Memory comes from large blocks and is
 * released all at once by sl_pool_destroy(); there is no per-object free.
 * Three lifetimes use pools: the config generation, a connection, a request.
 *
 * In workers every allocation here aborts the process on OOM (the master
 * respawns the worker); the master uses the checked sl_pool_try_* calls.
 */
#ifndef SL_CORE_BASE_POOL_H
#define SL_CORE_BASE_POOL_H

#include <stddef.h>

typedef struct sl_pool sl_pool_t;
typedef void (*sl_pool_cleanup_cb)(void *arg);

/*
 * Creates a pool whose blocks are block_size bytes (0 picks 4 KiB). Returns
 * NULL on OOM. The caller owns the pool and destroys it with sl_pool_destroy.
 */
sl_pool_t *sl_pool_create(size_t block_size);

/* Runs the cleanup hooks (last added first), then frees every block. NULL is a no-op. */
void sl_pool_destroy(sl_pool_t *pool);

/*
 * Releases everything allocated so far but keeps the first two blocks and
 * one block of a large allocation (up to 8 KiB) for reuse, empty
 * (keep-alive connections reset their request pool this way). Cleanup
 * hooks run.
 */
void sl_pool_reset(sl_pool_t *pool);

/* Allocates n bytes aligned for any type. Aborts on OOM. Owned by the pool. */
void *sl_palloc(sl_pool_t *pool, size_t n);

/* As sl_palloc, zero-filled. */
void *sl_pcalloc(sl_pool_t *pool, size_t n);

/* Copies n bytes of s and appends a NUL. Aborts on OOM. */
char *sl_pstrndup(sl_pool_t *pool, const char *s, size_t n);

/* Copies a NUL-terminated string. Aborts on OOM. */
char *sl_pstrdup(sl_pool_t *pool, const char *s);

/* a then b, NUL-terminated, in pool memory (sl_psprintf "%s%s" without printf). Aborts on OOM. */
char *sl_pstrcat(sl_pool_t *pool, const char *a, const char *b);

/* printf into pool memory. Aborts on OOM. */
char *sl_psprintf(sl_pool_t *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Room for one more element in a pool array v of n elements of size bytes
 * and capacity *cap: v itself while n < *cap, else a copy in pool memory
 * with twice the capacity (first when *cap is 0), *cap updated. The old
 * array stays in the pool until it is reset. Aborts on OOM.
 */
void *sl_pgrow(sl_pool_t *pool, void *v, size_t n, size_t *cap, size_t first, size_t size);

/* Checked variants for the master: return NULL on OOM instead of aborting. */
void *sl_pool_try_alloc(sl_pool_t *pool, size_t n);

/*
 * Registers fn(arg) to run when the pool is destroyed or reset (nginx
 * ngx_pool_cleanup_add). Hooks run in reverse order of registration.
 */
void sl_pool_on_destroy(sl_pool_t *pool, sl_pool_cleanup_cb fn, void *arg);

/* Heap allocation that aborts on OOM (workers, tests). Free with free(). */
void *sl_xmalloc(size_t n);
void *sl_xcalloc(size_t nmemb, size_t n);
void *sl_xrealloc(void *p, size_t n);
char *sl_xstrndup(const char *s, size_t n);

#endif
