/*
 * Growable byte buffer on the heap. The sl_buf_t owns p; release it with
 * sl_buf_free(). Growth aborts on OOM (worker rule). Used for socket read
 * accumulation, response bodies and anything built incrementally.
 */
#ifndef SL_CORE_BASE_BUF_H
#define SL_CORE_BASE_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct sl_buf {
    char *p;
    size_t len;
    size_t cap;
} sl_buf_t;

#define SL_BUF_INIT ((sl_buf_t){ NULL, 0, 0 })

/* Makes room for at least n more bytes. */
void sl_buf_reserve(sl_buf_t *b, size_t n);

/* sl_buf_append when the room is short: grows the buffer, then appends. */
void sl__buf_append_grow(sl_buf_t *b, const void *data, size_t n);

/*
 * Appends n bytes. Inline, so that an append that fits, the most common
 * kind, is a compare and a memcpy of a size often known at compile time.
 */
static inline void
sl_buf_append(sl_buf_t *b, const void *data, size_t n)
{
    if (n > b->cap - b->len) {
        sl__buf_append_grow(b, data, n);
    } else if (n > 0) {
        memcpy(b->p + b->len, data, n);
        b->len += n;
    }
}

/* Appends a NUL-terminated string (without the NUL); a literal's length is folded. */
static inline void
sl_buf_puts(sl_buf_t *b, const char *s)
{
    sl_buf_append(b, s, strlen(s));
}

/* Appends v in decimal (no printf: answers' hot paths). */
void sl_buf_put_u64(sl_buf_t *b, unsigned long long v);

/* Appends v in decimal, a '-' first when negative. */
void sl_buf_put_i64(sl_buf_t *b, long long v);

/* Appends printf output. */
void sl_buf_printf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops the first n bytes, moving the rest to the front. */
void sl_buf_consume(sl_buf_t *b, size_t n);

/* Keeps the storage, forgets the content. */
static inline void
sl_buf_clear(sl_buf_t *b)
{
    b->len = 0;
}

/* Frees the storage; the buffer is SL_BUF_INIT afterwards. */
void sl_buf_free(sl_buf_t *b);

#endif
