/*
 * libFuzzer target for the OpenAI adapter's stream translation, which
 * OpenAI itself and every OpenAI-compatible preset share: the first input
 * byte chooses the feed size, whether the client asked for usage and the
 * kind (openai, mistral, or together, which drops empty chunks); the rest
 * is an upstream event stream fed through core/sse.c into stream_event, as
 * the core does (no events after done). Beyond "no crash, no sanitizer
 * report" it checks that the translator emits, per upstream event, nothing
 * or one well-framed event (an optional "event:" line, "data: " lines, a
 * blank line) whose data is the upstream data unchanged, and a JSON object
 * when the upstream data was one; libFuzzer's -rss_limit_mb and
 * LeakSanitizer watch memory.
 *
 * A preset's conf (its row of openai.c's quirk table, built by conf_parse
 * at config load) is written out here: only skip_empty_chunks matters to
 * streams, and test_presets.c checks the rows themselves.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_openai_stream
 *   build-fuzz/test/fuzz/fuzz_openai_stream -max_total_time=60
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
#include "providers/openai_internal.h"
#include "providers/provider.h"
#include "providers/registry.h"

typedef struct fuzz_kind {
    const char *kind;
    const sl__openai_quirks_t *quirks; /* the provider's conf; NULL for openai */
} fuzz_kind_t;

typedef struct fuzz_feed {
    const sl_provider_ops_t *ops;
    const void *conf;
    sl_stream_t *st;
    sl_buf_t out;
} fuzz_feed_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_on_event(void *data, const sl_sse_event_t *ev);
static void fuzz_check(int ok, const char *what);
static void fuzz_check_event(const sl_sse_event_t *ev, const char *s, size_t len);

static const size_t fuzz_steps[4] = { 0, 1, 5, 64 };

static const sl__openai_quirks_t fuzz_mistral = { "mistral", NULL, false };
static const sl__openai_quirks_t fuzz_together = { "together", NULL, true };

static const fuzz_kind_t fuzz_kinds[4] = {
    { "openai", NULL },
    { "mistral", &fuzz_mistral },
    { "together", &fuzz_together },
    { "together", &fuzz_together },
};


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_openai_stream: check failed: %s\n", what);
        abort();
    }
}


static int
fuzz_on_event(void *data, const sl_sse_event_t *ev)
{
    fuzz_feed_t *f = data;
    sl_chunks_t out = { &f->out };
    size_t before = f->out.len;

    if (f->st->done) {
        return 0;
    }
    fuzz_check(f->ops->stream_event(f->conf, f->st, ev, &out) == 0, "stream_event failed");
    if (f->out.len > before) {
        fuzz_check_event(ev, f->out.p + before, f->out.len - before);
    }
    return 0;
}


/*
 * What one upstream event became: nothing, or ["event: " X "\n"] followed by
 * one "data: " line per line of the upstream data, then a blank line; the
 * data lines joined with LF give back the upstream data, and a JSON object
 * stays one.
 */
static void
fuzz_check_event(const sl_sse_event_t *ev, const char *s, size_t len)
{
    const char *end = s + len;
    const char *nl;
    sl_buf_t joined = SL_BUF_INIT;
    bool first = true;
    json_t *v;

    if (len == 0) {
        return;
    }
    if (len > 7 && memcmp(s, "event: ", 7) == 0) {
        nl = memchr(s, '\n', len);
        fuzz_check(nl != NULL, "event line without an end");
        s = nl + 1;
    }
    fuzz_check(end - s >= 2 && memcmp(end - 2, "\n\n", 2) == 0, "event without a blank line");
    while (s < end - 1) {
        fuzz_check(end - s > 6 && memcmp(s, "data: ", 6) == 0, "a line that is not data");
        s += 6;
        nl = memchr(s, '\n', (size_t) (end - s));
        fuzz_check(nl != NULL, "data line without an end");
        fuzz_check(memchr(s, '\r', (size_t) (nl - s)) == NULL, "data holds a CR");
        if (!first) {
            sl_buf_append(&joined, "\n", 1);
        }
        first = false;
        sl_buf_append(&joined, s, (size_t) (nl - s));
        s = nl + 1;
    }
    fuzz_check(joined.len == ev->data.len
                   && (ev->data.len == 0 || memcmp(joined.p, ev->data.p, ev->data.len) == 0),
               "data changed on the way");
    v = json_loadb(ev->data.p, ev->data.len, 0, NULL);
    if (json_is_object(v)) {
        json_t *w = json_loadb(joined.p, joined.len, 0, NULL);

        fuzz_check(json_is_object(w), "event data is not a JSON object");
        json_decref(w);
    }
    json_decref(v);
    sl_buf_free(&joined);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_kind_t *k;
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
    sl_stream_t st;
    sl_sse_parser_t p;
    fuzz_feed_t f;
    sl_pool_t *pool;
    const char *s;
    size_t len;
    size_t step;

    if (size < 1) {
        return 0;
    }
    k = &fuzz_kinds[(data[0] >> 3) & 3];
    step = fuzz_steps[data[0] & 3];
    s = (const char *) data + 1;
    len = size - 1;

    pool = sl_pool_create(0);
    memset(&prov, 0, sizeof(prov));
    prov.name = k->kind;
    prov.base_path = "";
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = "gpt-fuzz";
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.endpoint = SL_ENDPOINT_CHAT;
    call.target = &target;
    call.stream = true;
    call.request_id = "req-fuzz";
    memset(&st, 0, sizeof(st));
    st.call = &call;
    st.client_wants_usage = (data[0] & 4) != 0;

    f.ops = sl_provider_find(k->kind);
    fuzz_check(f.ops != NULL && f.ops->stream_event != NULL, "no adapter for the kind");
    f.conf = k->quirks;
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
    sl_buf_free(&f.out);
    sl_pool_destroy(pool);
    return 0;
}
