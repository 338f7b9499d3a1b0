/*
 * The adapter fuzz targets' shared driver and checks (see fuzzadapter.h).
 */
#define _GNU_SOURCE /* memmem */

#include "fuzzadapter.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/gateway/frontend.h"

typedef struct fuzz_feed {
    const char *name;
    const sl_provider_ops_t *ops;
    const void *conf;
    sl_stream_t *st;
    const sl_frontend_t *fe;
    void *state;
    sl_evs_t evs;
    sl_buf_t out;
    sl_fuzz_raw_cb raw;
    size_t events;
    bool ended; /* SL_EV_DONE or SL_EV_ERROR went out */
    bool errored;
} fuzz_feed_t;

static int fuzz_on_event(void *data, const sl_sse_event_t *ev);
static void fuzz_literal(const char *name, sl_str_t lit);
static void fuzz_event(const char *name, const sl_ev_t *ev);
static void fuzz_chunks(const char *name, const sl_buf_t *out, bool done, bool errored);


void
sl_fuzz_check(int ok, const char *name, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s: check failed: %s\n", name, what);
        abort();
    }
}


/* An empty literal, or one jansson decodes as a string. */
static void
fuzz_literal(const char *name, sl_str_t lit)
{
    json_t *v;

    if (lit.len == 0) {
        return;
    }
    sl_fuzz_check(lit.p != NULL, name, "literal without bytes");
    v = json_loadb(lit.p, lit.len, JSON_DECODE_ANY, NULL);
    sl_fuzz_check(json_is_string(v), name, "a literal jansson refuses");
    json_decref(v);
}


static void
fuzz_event(const char *name, const sl_ev_t *ev)
{
    sl_fuzz_check(ev->type >= SL_EV_START && ev->type <= SL_EV_DONE, name, "unknown event type");
    fuzz_literal(name, ev->id);
    fuzz_literal(name, ev->name);
    fuzz_literal(name, ev->text);
    fuzz_literal(name, ev->signature);
    if (ev->type == SL_EV_TEXT || ev->type == SL_EV_TOOL_ARGS) {
        sl_fuzz_check(ev->text.len >= 2, name, "a text event without text");
    }
    if (ev->type == SL_EV_TOOL_CALL) {
        sl_fuzz_check(ev->id.len >= 2 && ev->name.len >= 2, name, "a tool call without id or name");
    }
    if (ev->type == SL_EV_USAGE) {
        sl_fuzz_check(ev->usage != NULL, name, "a usage event without usage");
    }
    if (ev->type == SL_EV_ERROR) {
        sl_fuzz_check(ev->error != NULL && ev->error->message != NULL && ev->error->type != NULL
                          && ev->error->status >= 400,
                      name, "an error event with holes");
    }
}


static int
fuzz_on_event(void *data, const sl_sse_event_t *ev)
{
    fuzz_feed_t *f = data;
    const sl_error_t *err = NULL;
    bool done = false;

    sl_evs_reset(&f->evs);
    sl_fuzz_check(f->ops->stream_event(f->conf, f->st, ev, &f->evs) == 0, f->name,
                  "stream_event failed");
    if (f->ended) {
        /* the driver stops reading; the adapter must give nothing more either */
        sl_fuzz_check(f->evs.n == 0 && f->evs.raw.len == 0, f->name, "events after the end");
        return 0;
    }
    f->events += f->evs.n;
    for (size_t i = 0; i < f->evs.n; i++) {
        fuzz_event(f->name, &f->evs.v[i]);
        if (f->evs.v[i].type == SL_EV_ERROR && err == NULL) {
            err = f->evs.v[i].error;
        }
        done = done || f->evs.v[i].type == SL_EV_DONE;
    }
    sl_fuzz_check(done == f->st->done, f->name, "SL_EV_DONE and st->done disagree");
    sl_fuzz_check((err != NULL) == f->st->failed, f->name, "SL_EV_ERROR and st->failed disagree");
    if (f->evs.raw.p != NULL && f->raw != NULL) {
        f->raw(ev, &f->evs);
    }
    sl_fuzz_check(f->fe->encode_events(f->state, &f->evs, &f->out) == 0, f->name,
                  "encode_events failed");
    if (err != NULL) {
        sl_fuzz_check(f->fe->encode_stream_error(f->state, err, &f->out) == 0, f->name,
                      "encode_stream_error failed");
        f->errored = true;
    }
    f->ended = done || err != NULL;
    return 0;
}


/*
 * Every chunk is "data: " JSON-object "\n\n" with the data on one line;
 * "data: [DONE]" comes last and only after a clean end; an error chunk
 * comes last and only after an error.
 */
static void
fuzz_chunks(const char *name, const sl_buf_t *out, bool done, bool errored)
{
    const char *s = out->p;
    const char *end = s != NULL ? s + out->len : NULL;
    bool saw_done = false;
    bool saw_error = false;

    while (s != NULL && s < end) {
        const char *sep = memmem(s, (size_t) (end - s), "\n\n", 2);
        json_t *v;

        sl_fuzz_check(!saw_done && !saw_error, name, "a chunk after the end");
        sl_fuzz_check(sep != NULL, name, "a chunk without a blank line");
        sl_fuzz_check(sep - s > 6 && memcmp(s, "data: ", 6) == 0, name, "a chunk without data");
        sl_fuzz_check(memchr(s, '\n', (size_t) (sep - s)) == NULL, name, "data spans lines");
        if (sep - s == 12 && memcmp(s + 6, "[DONE]", 6) == 0) {
            saw_done = true;
        } else {
            v = json_loadb(s + 6, (size_t) (sep - s - 6), 0, NULL);
            sl_fuzz_check(json_is_object(v), name, "chunk data is not a JSON object");
            saw_error = json_object_get(v, "error") != NULL;
            json_decref(v);
        }
        s = sep + 2;
    }
    sl_fuzz_check(saw_done == (done && !errored), name, "[DONE] without a clean end");
    sl_fuzz_check(saw_error == errored, name, "an error chunk without an error");
}


sl_fuzz_result_t
sl_fuzz_stream(const char *name, const sl_provider_ops_t *ops, const void *conf, sl_call_t *call,
               const char *s, size_t len, size_t step, sl_fuzz_raw_cb raw)
{
    sl_fuzz_result_t r;
    sl_sse_parser_t p;
    sl_stream_t st;
    fuzz_feed_t f;

    memset(&st, 0, sizeof(st));
    st.call = call;
    memset(&f, 0, sizeof(f));
    f.name = name;
    f.ops = ops;
    f.conf = conf;
    f.st = &st;
    f.fe = sl_frontend_get(SL_API_CHAT);
    f.state = f.fe->stream_open(call);
    f.evs.pool = call->pool;
    f.out = SL_BUF_INIT;
    f.raw = raw;
    sl_sse_init(&p, 0);
    for (size_t off = 0; off < len;) {
        size_t n = step == 0 || step > len - off ? len - off : step;

        if (sl_sse_feed(&p, s + off, n, fuzz_on_event, &f) != 0) {
            break;
        }
        off += n;
    }
    sl_sse_free(&p);
    if (st.done && !f.errored) {
        sl_fuzz_check(f.fe->encode_end(f.state, &st.usage, &f.out) == 0, name, "encode_end failed");
    }
    /* raw chunks are the provider's own: only a translated stream is checked whole */
    if (call->client_api != ops->api) {
        fuzz_chunks(name, &f.out, st.done, f.errored);
    }
    r.events = f.events;
    r.bytes = f.out.len;
    r.done = st.done;
    r.failed = st.failed;
    sl_buf_free(&f.out);
    return r;
}


void
sl_fuzz_stream_twice(const char *name, const sl_provider_ops_t *ops, const void *conf,
                     sl_call_t *call, const char *s, size_t len, size_t step, sl_fuzz_raw_cb raw)
{
    sl_fuzz_result_t a = sl_fuzz_stream(name, ops, conf, call, s, len, 0, raw);
    sl_fuzz_result_t b = sl_fuzz_stream(name, ops, conf, call, s, len, step, raw);

    /* `created` is a clock reading: the bytes may differ, their number may not */
    sl_fuzz_check(a.events == b.events && a.bytes == b.bytes && a.done == b.done
                      && a.failed == b.failed,
                  name, "the feed size changed the stream");
}


void
sl_fuzz_answer(const char *name, const sl_provider_ops_t *ops, const void *conf, sl_call_t *call,
               const char *s, size_t len)
{
    sl_buf_t body = { (char *) s, len, len };
    sl_buf_t out = SL_BUF_INIT;
    sl_answer_t a;
    json_t *v;

    memset(&a, 0, sizeof(a));
    if (ops->parse_response(conf, call, &body, &a) != 0) {
        return;
    }
    fuzz_literal(name, a.id);
    fuzz_literal(name, a.model);
    for (size_t i = 0; i < a.nchoices; i++) {
        fuzz_literal(name, a.choices[i].text);
        fuzz_literal(name, a.choices[i].reasoning);
        fuzz_literal(name, a.choices[i].signature);
        for (size_t k = 0; k < a.choices[i].ntools; k++) {
            sl_fuzz_check(a.choices[i].tools[k].id.len >= 2 && a.choices[i].tools[k].name.len >= 2,
                          name, "a tool call without id or name");
            fuzz_literal(name, a.choices[i].tools[k].id);
            fuzz_literal(name, a.choices[i].tools[k].name);
            fuzz_literal(name, a.choices[i].tools[k].args);
        }
    }
    if (call->api != SL_API_CHAT) {
        return;
    }
    a.raw = sl_str_null;
    sl_fuzz_check(sl_frontend_get(SL_API_CHAT)->encode_answer(call, &a, &out) == 0, name,
                  "encode_answer failed");
    v = json_loadb(out.p, out.len, 0, NULL);
    sl_fuzz_check(json_is_object(v), name, "the chat answer is not a JSON object");
    json_decref(v);
    sl_buf_free(&out);
}
