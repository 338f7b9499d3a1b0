/*
 * sl_buf_t: a heap buffer that doubles when it runs out of room.
 */
#include "core/base/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/pool.h"

static void buf_overflow(size_t len, size_t n) __attribute__((noreturn, cold));


static void
buf_overflow(size_t len, size_t n)
{
    /* fatal: no buffer can be this large; treated like OOM */
    fprintf(stderr, "sluice: buffer size overflow (%zu + %zu bytes)\n", len, n);
    abort();
}


void
sl_buf_reserve(sl_buf_t *b, size_t n)
{
    size_t want;
    size_t cap;

    if (n > SIZE_MAX - b->len) {
        buf_overflow(b->len, n);
    }
    want = b->len + n;
    if (want <= b->cap) {
        return;
    }
    cap = b->cap == 0 ? 256 : b->cap;
    while (cap < want) {
        /* Doubling past SIZE_MAX would wrap and loop forever. */
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    }
    b->p = sl_xrealloc(b->p, cap);
    b->cap = cap;
}


void
sl__buf_append_grow(sl_buf_t *b, const void *data, size_t n)
{
    sl_buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}


void
sl_buf_put_u64(sl_buf_t *b, unsigned long long v)
{
    char d[24];
    size_t k = sizeof(d);

    do {
        d[--k] = (char) ('0' + v % 10);
        v /= 10;
    } while (v > 0);
    sl_buf_append(b, d + k, sizeof(d) - k);
}


void
sl_buf_put_i64(sl_buf_t *b, long long v)
{
    if (v < 0) {
        sl_buf_append(b, "-", 1);
        /* the magnitude in unsigned arithmetic: -LLONG_MIN does not fit */
        sl_buf_put_u64(b, 0ULL - (unsigned long long) v);
        return;
    }
    sl_buf_put_u64(b, (unsigned long long) v);
}


void
sl_buf_printf(sl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    /*
     * fmt is never NULL, but gcc 12 under -fsanitize=undefined does not know
     * it and fails the build with a false "null format string" warning.
     */
    if (fmt == NULL) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        return;
    }
    sl_buf_reserve(b, (size_t) n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}


void
sl_buf_consume(sl_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}


void
sl_buf_free(sl_buf_t *b)
{
    free(b->p);
    *b = (sl_buf_t) SL_BUF_INIT;
}
