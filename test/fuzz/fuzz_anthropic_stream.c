/*
 * libFuzzer target for the Anthropic adapter's stream translation: the
 * first input byte chooses the feed size and whether the client asked for
 * usage, the rest is an upstream event stream fed through core/sse.c into
 * stream_event, as the core does (no events after done). Beyond "no crash,
 * no sanitizer report" it checks that every client event is `data: ` plus
 * one JSON object and a blank line and that nothing follows an in-band
 * error; libFuzzer's -rss_limit_mb and LeakSanitizer watch memory. The same
 * bytes also go through parse_response (whose output must be a JSON
 * object) and map_error.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_anthropic_stream
 *   build-fuzz/test/fuzz/fuzz_anthropic_stream -max_total_time=60
 */
#define _GNU_SOURCE /* memmem */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/errno.h"
#include "core/pool.h"
#include "core/sse.h"
#include "providers/provider.h"
#include "providers/registry.h"

typedef struct fuzz_feed {
    const sl_provider_ops_t *ops;
    sl_stream_t *st;
    sl_buf_t out;
} fuzz_feed_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_on_event(void *data, const sl_sse_event_t *ev);
static void fuzz_check(int ok, const char *what);
static void fuzz_check_events(const sl_buf_t *out);

static const size_t fuzz_steps[4] = { 0, 1, 5, 64 };


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_anthropic_stream: check failed: %s\n", what);
        abort();
    }
}


static int
fuzz_on_event(void *data, const sl_sse_event_t *ev)
{
    fuzz_feed_t *f = data;
    sl_chunks_t out = { &f->out };

    if (f->st->done) {
        return 0;
    }
    fuzz_check(f->ops->stream_event(NULL, f->st, ev, &out) == 0, "stream_event failed");
    return 0;
}


/* Every event is "data: " JSON-object "\n\n"; an error event is the last one. */
static void
fuzz_check_events(const sl_buf_t *out)
{
    const char *s = out->p;
    const char *end = out->p != NULL ? out->p + out->len : NULL; /* NULL + 0 is UB */

    while (s != NULL && s < end) {
        const char *sep = memmem(s, (size_t) (end - s), "\n\n", 2);
        json_t *v;

        fuzz_check(sep != NULL, "event without a blank line");
        fuzz_check(sep - s > 6 && memcmp(s, "data: ", 6) == 0, "event without data");
        fuzz_check(memchr(s, '\n', (size_t) (sep - s)) == NULL, "data spans lines");
        v = json_loadb(s + 6, (size_t) (sep - s - 6), 0, NULL);
        fuzz_check(json_is_object(v), "event data is not a JSON object");
        if (json_object_get(v, "error") != NULL) {
            fuzz_check(sep + 2 == end, "events after an error");
        }
        json_decref(v);
        s = sep + 2;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_provider_ops_t *ops = sl_provider_find("anthropic");
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
    sl_stream_t st;
    sl_sse_parser_t p;
    fuzz_feed_t f;
    sl_pool_t *pool;
    sl_reply_t reply;
    sl_error_t e;
    sl_buf_t body;
    const char *s;
    size_t len;
    size_t step;

    fuzz_check(ops != NULL, "no anthropic adapter");
    if (size < 1) {
        return 0;
    }
    step = fuzz_steps[data[0] & 3];
    s = (const char *) data + 1;
    len = size - 1;

    pool = sl_pool_create(0);
    memset(&prov, 0, sizeof(prov));
    prov.name = "anthropic";
    prov.base_path = "";
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = "claude-fuzz";
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.endpoint = SL_ENDPOINT_CHAT;
    call.target = &target;
    call.stream = true;
    memset(&st, 0, sizeof(st));
    st.call = &call;
    st.client_wants_usage = (data[0] & 4) != 0;

    f.ops = ops;
    f.st = &st;
    f.out = SL_BUF_INIT;
    sl_sse_init(&p, 0);
    for (size_t off = 0; off < len;) {
        size_t n = step == 0 || step > len - off ? len - off : step;

        if (sl_sse_feed(&p, s + off, n, fuzz_on_event, &f) != 0) {
            break;
        }
        off += n;
    }
    sl_sse_free(&p);
    fuzz_check_events(&f.out);
    sl_buf_free(&f.out);

    body = (sl_buf_t){ (char *) s, len, len };
    memset(&reply, 0, sizeof(reply));
    if (ops->parse_response(NULL, &call, &body, &reply) == 0) {
        json_t *v = json_loadb(reply.body, reply.body_len, 0, NULL);

        fuzz_check(json_is_object(v), "parse_response wrote no JSON object");
        json_decref(v);
    }
    memset(&e, 0, sizeof(e));
    fuzz_check(ops->map_error(NULL, 400 + (int) (data[0] >> 3) * 5, &body, pool, &e) == 0,
               "map_error failed");
    fuzz_check(e.status >= 400 && e.message != NULL && e.type != NULL, "map_error left holes");

    sl_pool_destroy(pool);
    return 0;
}
