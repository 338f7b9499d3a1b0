/*
 * libFuzzer target for the Gemini stream translator (providers/gemini.c's
 * stream_event). The first input byte chooses whether the client asked for
 * usage and the feed size; the rest is an upstream event stream, cut into
 * events by core/sse.c and handed to the adapter the way the proxy does
 * (nothing after the adapter says done). Beyond "no crash, no sanitizer
 * report, no leak" it checks that everything written for the client is a
 * sequence of "data: JSON\n\n" events and that the feed size changes neither
 * the output's length nor whether the stream ended (`created` is a clock
 * reading, so the bytes themselves may differ). The same bytes also go
 * through parse_response (chat and embeddings) and map_error.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_gemini_stream
 *   build-fuzz/test/fuzz/fuzz_gemini_stream -max_total_time=60 test/unit/fixtures/gemini
 */
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
static void fuzz_run(const sl_provider_ops_t *ops, sl_call_t *call, const char *p, size_t len,
                     bool wants_usage, size_t step, sl_buf_t *out, bool *done);
static void fuzz_check_events(const sl_buf_t *out);
static void fuzz_check(int ok, const char *what);


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_gemini_stream: check failed: %s\n", what);
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


static void
fuzz_run(const sl_provider_ops_t *ops, sl_call_t *call, const char *p, size_t len, bool wants_usage,
         size_t step, sl_buf_t *out, bool *done)
{
    sl_sse_parser_t parser;
    sl_stream_t st;
    fuzz_feed_t f;

    memset(&st, 0, sizeof(st));
    st.call = call;
    st.client_wants_usage = wants_usage;
    f.ops = ops;
    f.st = &st;
    f.out = (sl_buf_t) SL_BUF_INIT;
    sl_sse_init(&parser, 1 << 20);
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;

        if (sl_sse_feed(&parser, p + i, n, fuzz_on_event, &f) < 0) {
            break;
        }
    }
    sl_sse_free(&parser);
    *out = f.out;
    *done = st.done;
}


/* The client's bytes are "data: " + a JSON object + a blank line, over and over. */
static void
fuzz_check_events(const sl_buf_t *out)
{
    const char *p = out->p;
    const char *end = out->p != NULL ? out->p + out->len : NULL; /* NULL + 0 is UB */

    while (p != NULL && p < end) {
        const char *e = p;
        json_t *j;

        while (e != NULL && e + 1 < end && !(e[0] == '\n' && e[1] == '\n')) {
            e = memchr(e + 1, '\n', (size_t) (end - e - 1));
        }
        if (e != NULL && e + 1 >= end) {
            e = NULL;
        }

        fuzz_check(e != NULL, "event not terminated");
        fuzz_check(e - p > 6 && memcmp(p, "data: ", 6) == 0, "event without data:");
        fuzz_check(memchr(p, '\n', (size_t) (e - p)) == NULL, "newline inside an event");
        j = json_loadb(p + 6, (size_t) (e - p - 6), 0, NULL);
        fuzz_check(json_is_object(j), "event data is not a JSON object");
        json_decref(j);
        p = e + 2;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t steps[4] = { 1, 3, 64, 1 << 20 };
    const sl_provider_ops_t *ops = sl_provider_find("gemini");
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
    sl_pool_t *pool;
    sl_buf_t whole, split, body;
    sl_reply_t reply;
    sl_error_t e;
    bool done1, done2;
    const char *p;
    size_t len;

    if (size < 1 || ops == NULL) {
        return 0;
    }
    p = (const char *) data + 1;
    len = size - 1;
    pool = sl_pool_create(0);
    memset(&prov, 0, sizeof(prov));
    prov.name = "gemini";
    prov.kind = "gemini";
    prov.ops = ops;
    prov.base_path = "/v1beta";
    target.provider = &prov;
    target.model = "gemini-fuzz";
    target.weight = 1;
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.endpoint = SL_ENDPOINT_CHAT;
    call.raw = sl_str_lit("{\"model\":\"m\",\"input\":[\"a\"],\"encoding_format\":\"base64\"}");
    call.model = -1;
    call.stream_options = -1;
    call.target = &target;
    call.stream = true;
    call.request_id = "fuzz";

    fuzz_run(ops, &call, p, len, data[0] & 1, len + 1, &whole, &done1);
    fuzz_run(ops, &call, p, len, data[0] & 1, steps[(data[0] >> 1) & 3], &split, &done2);
    fuzz_check_events(&whole);
    fuzz_check_events(&split);
    fuzz_check(done1 == done2, "feed size changed the end of the stream");
    fuzz_check(whole.len == split.len, "feed size changed the output's length");
    sl_buf_free(&whole);
    sl_buf_free(&split);

    body = (sl_buf_t) SL_BUF_INIT;
    sl_buf_append(&body, p, len);
    memset(&reply, 0, sizeof(reply));
    if (ops->parse_response(NULL, &call, &body, &reply) == 0) {
        fuzz_check(reply.body != NULL, "parse_response gave no body");
    }
    call.endpoint = SL_ENDPOINT_EMBEDDINGS;
    memset(&reply, 0, sizeof(reply));
    (void) ops->parse_response(NULL, &call, &body, &reply);
    memset(&e, 0, sizeof(e));
    fuzz_check(ops->map_error(NULL, 400 + (data[0] % 200), &body, pool, &e) == 0, "map_error");
    fuzz_check(e.status >= 400 && e.message != NULL && e.type != NULL, "map_error result");
    sl_buf_free(&body);
    sl_pool_destroy(pool);
    return 0;
}
