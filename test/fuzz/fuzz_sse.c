/*
 * libFuzzer target for core/base/sse.c. The first three input bytes choose how the
 * rest is cut into feeds (a chunk-size cap and a PRNG seed), a small
 * max_event and an event at which the callback asks to stop; the rest is the
 * stream. Beyond "no crash, no sanitizer report" it checks that splitting
 * never changes the result: the events seen when feeding in chunks must equal
 * those seen in one feed, a small max_event may only cut the event list
 * short with SL_ETOOBIG, and a stop code comes back unchanged. Any mismatch
 * aborts.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_sse && build-fuzz/test/fuzz/fuzz_sse -max_total_time=60
 * Or stand-alone, from the repository root:
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *       test/fuzz/fuzz_sse.c core/base/sse.c core/base/buf.c core/base/pool.c core/base/str.c
 * core/base/errno.c -o fuzz_sse
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/sse.h"

#define FUZZ_STOP_RC 4242

typedef struct fuzz_rec {
    sl_buf_t out; /* events as (len, bytes) triples */
    size_t count;
    size_t stop_at; /* 1-based event that returns FUZZ_STOP_RC; 0 never */
} fuzz_rec_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_on_event(void *data, const sl_sse_event_t *ev);
static void fuzz_put_str(sl_buf_t *b, sl_str_t s);
static int fuzz_parse(const char *s, size_t len, size_t max_event, size_t max_chunk, uint32_t seed,
                      size_t stop_at, fuzz_rec_t *r);
static void fuzz_check(int ok, const char *what);
static int fuzz_is_prefix(const sl_buf_t *a, const sl_buf_t *b);

static const size_t fuzz_chunk_caps[8] = { 0, 1, 2, 3, 7, 16, 64, 512 };


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_sse: check failed: %s\n", what);
        abort();
    }
}


static void
fuzz_put_str(sl_buf_t *b, sl_str_t s)
{
    fuzz_check(s.p != NULL, "field pointer is NULL");
    fuzz_check(s.p[s.len] == '\0', "field is not NUL-terminated");
    sl_buf_append(b, &s.len, sizeof(s.len));
    sl_buf_append(b, s.p, s.len);
}


static int
fuzz_on_event(void *data, const sl_sse_event_t *ev)
{
    fuzz_rec_t *r = data;

    fuzz_check(memchr(ev->id.p, '\0', ev->id.len) == NULL, "id contains NUL");
    fuzz_put_str(&r->out, ev->event);
    fuzz_put_str(&r->out, ev->data);
    fuzz_put_str(&r->out, ev->id);
    r->count++;
    return r->count == r->stop_at ? FUZZ_STOP_RC : 0;
}


/* Feeds s in chunks of 1..max_chunk bytes (0: one feed) and records the events. */
static int
fuzz_parse(const char *s, size_t len, size_t max_event, size_t max_chunk, uint32_t seed,
           size_t stop_at, fuzz_rec_t *r)
{
    sl_sse_parser_t p;
    size_t off = 0;
    int rc = 0;

    r->out = SL_BUF_INIT;
    r->count = 0;
    r->stop_at = stop_at;
    sl_sse_init(&p, max_event);
    if (max_chunk == 0) {
        rc = sl_sse_feed(&p, s, len, fuzz_on_event, r);
    }
    while (max_chunk != 0 && off < len && rc == 0) {
        size_t n;

        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        /* Empty feeds sometimes, to cover them too. */
        n = seed % (max_chunk + 1);
        if (n > len - off) {
            n = len - off;
        }
        rc = sl_sse_feed(&p, s + off, n, fuzz_on_event, r);
        off += n;
    }
    sl_sse_free(&p);
    return rc;
}


static int
fuzz_is_prefix(const sl_buf_t *a, const sl_buf_t *b)
{
    return a->len <= b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_rec_t whole;
    fuzz_rec_t split;
    fuzz_rec_t small;
    fuzz_rec_t small_whole;
    fuzz_rec_t stop;
    const char *s;
    size_t len;
    size_t max_chunk;
    size_t small_max;
    size_t stop_at;
    uint32_t seed;
    int rc;
    int rc_small_whole;

    if (size < 3) {
        return 0;
    }
    max_chunk = fuzz_chunk_caps[data[0] & 7];
    small_max = (size_t) (data[0] >> 3) * 3 + 1;
    stop_at = (size_t) (data[1] & 3) + 1;
    seed = ((uint32_t) data[1] << 8 | data[2]) + 1;
    s = (const char *) data + 3;
    len = size - 3;

    /* Inputs are far below the default limit, so the reference run never fails. */
    rc = fuzz_parse(s, len, 0, 0, 0, 0, &whole);
    fuzz_check(rc == 0, "one feed failed");

    rc = fuzz_parse(s, len, 0, max_chunk == 0 ? 1 : max_chunk, seed, 0, &split);
    fuzz_check(rc == 0, "split feed failed");
    fuzz_check(split.count == whole.count, "split changed the event count");
    fuzz_check(split.out.len == whole.out.len
                   && (whole.out.len == 0 || memcmp(split.out.p, whole.out.p, whole.out.len) == 0),
               "split changed the events");

    /* A small limit only stops early; it never alters an event. */
    rc_small_whole = fuzz_parse(s, len, small_max, 0, 0, 0, &small_whole);
    rc = fuzz_parse(s, len, small_max, max_chunk, seed, 0, &small);
    fuzz_check(rc == 0 || rc == SL_ETOOBIG, "unexpected code with a small limit");
    fuzz_check(rc_small_whole == 0 || rc_small_whole == SL_ETOOBIG,
               "unexpected code with a small limit in one feed");
    fuzz_check(fuzz_is_prefix(&small.out, &whole.out), "small limit altered the events");
    fuzz_check(fuzz_is_prefix(&small_whole.out, &whole.out), "small limit altered the events");
    if (rc == 0) {
        fuzz_check(small.out.len == whole.out.len, "small limit lost events without error");
    }
    if (rc_small_whole != 0) {
        /* Split feeding also counts carried partial lines, so it is never laxer. */
        fuzz_check(rc == SL_ETOOBIG, "split feeding was laxer than one feed");
    }

    /* The callback's stop code comes back as is, after exactly stop_at events. */
    rc = fuzz_parse(s, len, 0, max_chunk, seed, stop_at, &stop);
    if (whole.count >= stop_at) {
        fuzz_check(rc == FUZZ_STOP_RC, "stop code lost");
        fuzz_check(stop.count == stop_at, "events after the stop");
    } else {
        fuzz_check(rc == 0, "stop code without a stop");
    }
    fuzz_check(fuzz_is_prefix(&stop.out, &whole.out), "stop altered the events");

    sl_buf_free(&stop.out);
    sl_buf_free(&small.out);
    sl_buf_free(&small_whole.out);
    sl_buf_free(&split.out);
    sl_buf_free(&whole.out);
    return 0;
}
