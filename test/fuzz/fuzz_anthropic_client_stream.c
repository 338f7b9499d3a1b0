/*
 * libFuzzer target for the Messages frontend's stream encoder (POST
 * /v1/messages in front of an OpenAI-shaped target): an OpenAI chunk stream
 * goes through core/base/sse.c into the OpenAI adapter's stream_event, and each
 * batch of typed events into core/gateway/fe_messages.c, the way the driver
 * hands them over: an error before the first output drops the attempt (its
 * held bytes are never sent), an error after it is encode_stream_error, the
 * provider's clean end is encode_end with the adapter's usage, and a stream
 * cut after output ends with the driver's "interrupted" error. The first
 * input byte chooses the feed size and the request id and target model
 * (with characters to escape); the rest is the stream.
 *
 * The stream the client gets is checked by fuzzmessages.c (Anthropic's
 * event framing and order, see fuzzmessages.h); the adapter's literals are
 * checked to be literals. libFuzzer's -rss_limit_mb and LeakSanitizer
 * watch memory.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_anthropic_client_stream
 *   build-fuzz/test/fuzz/fuzz_anthropic_client_stream -max_total_time=60
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/gateway/frontend.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "providers/provider.h"
#include "providers/registry.h"

#include "fuzzmessages.h"

typedef struct fuzz_feed {
    const sl_provider_ops_t *ops;
    const sl_frontend_t *fe;
    sl_stream_t *st;
    sl_evs_t evs;
    void *state;
    sl_buf_t out;
    bool committed; /* an output event came: the held bytes went out */
    bool dropped;   /* the attempt failed before output: nothing was sent */
    bool failed;    /* an error event went out */
} fuzz_feed_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_on_event(void *data, const sl_sse_event_t *ev);
static void fuzz_check(int ok, const char *what);

static const size_t fuzz_steps[4] = { 0, 1, 5, 64 };
static const char *const fuzz_ids[2] = { "req-fuzz", "req-\"\\\n-\xc3\xa9" };
static const char *const fuzz_models[2] = { "gpt-\"fuzz\"", "m\\\t\xe2\x82\xac" };


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_anthropic_client_stream: check failed: %s\n", what);
        abort();
    }
}


/* One upstream event: the adapter's batch, then the driver's part. */
static int
fuzz_on_event(void *data, const sl_sse_event_t *ev)
{
    fuzz_feed_t *f = data;

    if (f->st->done || f->dropped || f->failed) {
        return 0;
    }
    sl_evs_reset(&f->evs);
    fuzz_check(f->ops->stream_event(NULL, f->st, ev, &f->evs) == 0, "stream_event failed");
    for (size_t i = 0; i < f->evs.n; i++) {
        const sl_ev_t *e = &f->evs.v[i];

        fuzz_check(e->text.p == NULL || e->text.len == 0 || e->text.len >= 2,
                   "an event's text is not a literal");
        if (sl_ev_is_output(e)) {
            f->committed = true;
        }
    }
    fuzz_check(f->fe->encode_events(f->state, &f->evs, &f->out) == 0, "encode_events failed");
    for (size_t i = 0; i < f->evs.n; i++) {
        if (f->evs.v[i].type != SL_EV_ERROR) {
            continue;
        }
        fuzz_check(f->evs.v[i].error != NULL, "an error event without its error");
        if (!f->committed) {
            /* a failed attempt: the driver drops what it held */
            f->dropped = true;
            return 0;
        }
        fuzz_check(f->fe->encode_stream_error(f->state, f->evs.v[i].error, &f->out) == 0,
                   "encode_stream_error failed");
        f->failed = true;
        return 0;
    }
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_provider_ops_t *ops = sl_provider_find("openai");
    const sl_frontend_t *fe = sl_frontend_get(SL_API_MESSAGES);
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

    fuzz_check(ops != NULL && ops->stream_event != NULL, "no openai adapter");
    fuzz_check(fe != NULL, "no messages frontend");
    if (size < 1) {
        return 0;
    }
    step = fuzz_steps[data[0] & 3];
    s = (const char *) data + 1;
    len = size - 1;

    pool = sl_pool_create(0);
    memset(&prov, 0, sizeof(prov));
    prov.name = "openai";
    prov.kind = "openai";
    prov.ops = ops;
    prov.base_path = "";
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = fuzz_models[(data[0] >> 2) & 1];
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.api = SL_API_CHAT;
    call.client_api = SL_API_MESSAGES;
    call.model = -1;
    call.stream_options = -1;
    call.target = &target;
    call.stream = true;
    call.client_wants_usage = true;
    call.request_id = fuzz_ids[(data[0] >> 3) & 1];
    memset(&st, 0, sizeof(st));
    st.call = &call;

    memset(&f, 0, sizeof(f));
    f.ops = ops;
    f.fe = fe;
    f.st = &st;
    f.evs.pool = pool;
    f.state = fe->stream_open(&call);
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
    if (!f.dropped && !f.failed) {
        if (st.done) {
            fuzz_check(fe->encode_end(f.state, &st.usage, &f.out) == 0, "encode_end failed");
        } else if (f.committed) {
            sl_error_t e = { 502,
                             "api_error",
                             "upstream_stream_interrupted",
                             NULL,
                             "the upstream stream was interrupted",
                             false,
                             0 };

            fuzz_check(fe->encode_stream_error(f.state, &e, &f.out) == 0,
                       "encode_stream_error failed");
            f.failed = true;
        } else {
            f.dropped = true; /* no output: the driver tries the next target */
        }
    }
    if (!f.dropped) {
        sl_fuzz_messages_check("fuzz_anthropic_client_stream", &f.out, f.failed);
    }
    sl_buf_free(&f.out);
    sl_pool_destroy(pool);
    return 0;
}
