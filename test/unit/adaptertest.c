/*
 * Helpers shared by the adapter tests (see adaptertest.h).
 */
#include "unit/adaptertest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/gateway/frontend.h"
#include "core/base/sse.h"

typedef struct test_feed {
    const sl_provider_ops_t *ops;
    const void *conf;
    sl_stream_t *st;
    const sl_frontend_t *fe;
    void *state;
    sl_evs_t evs;
    sl_test_stream_t *out;
    bool stopped;
} test_feed_t;

static int test_on_event(void *data, const sl_sse_event_t *ev);
static const char *test_event_name(sl_ev_type_e type);
static json_t *test_usage_json(const sl_usage_t *u);
static const char *test_finish_name(sl_finish_e f);


char *
sl_test_fixture(sl_pool_t *pool, const char *dir, const char *name, size_t *len)
{
    const char *srcdir = getenv("SL_TEST_SRCDIR");
    char path[4096];
    FILE *f;
    long n;
    char *p;

    snprintf(path, sizeof(path), "%s/unit/fixtures/%s/%s", srcdir != NULL ? srcdir : "test", dir,
             name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open fixture %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    p = sl_palloc(pool, (size_t) n + 1);
    assert_int_equal(fread(p, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    p[n] = '\0';
    *len = (size_t) n;
    return p;
}


json_t *
sl_test_fixture_json(const char *dir, const char *name)
{
    sl_pool_t *pool = sl_pool_create(0);
    json_error_t err;
    size_t len;
    char *p = sl_test_fixture(pool, dir, name, &len);
    json_t *v = json_loadb(p, len, 0, &err);

    if (v == NULL) {
        fail_msg("fixture %s/%s: %s at line %d", dir, name, err.text, err.line);
    }
    sl_pool_destroy(pool);
    return v;
}


void
sl_test_json_equal(json_t *got, json_t *want, const char *what)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENCODE_ANY);

        print_error("%s: got\n%s\nwant\n%s\n", what, g != NULL ? g : "(null)",
                    w != NULL ? w : "(null)");
        free(g);
        free(w);
        fail();
    }
}


void
sl_test_json_expect(json_t *got, json_t *want, const char *what)
{
    sl_test_json_equal(got, want, what);
    json_decref(got);
    json_decref(want);
}


void
sl_test_golden(json_t *got, const char *dir, const char *name)
{
    const char *update = getenv("SL_TEST_UPDATE_GOLDEN");
    const char *srcdir = getenv("SL_TEST_SRCDIR");
    char path[4096];
    json_t *want;

    snprintf(path, sizeof(path), "%s/unit/fixtures/%s/%s", srcdir != NULL ? srcdir : "test", dir,
             name);
    if (update != NULL && strcmp(update, "1") == 0) {
        assert_int_equal(json_dump_file(got, path, JSON_INDENT(1) | JSON_REAL_PRECISION(15)), 0);
    }
    want = sl_test_fixture_json(dir, name);
    sl_test_json_equal(got, want, name);
    json_decref(want);
    json_decref(got);
}


void
sl_test_normalise_created(json_t *v)
{
    json_int_t now = (json_int_t) time(NULL);
    json_t *c;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            sl_test_normalise_created(c);
        }
        return;
    }
    c = json_object_get(v, "created");
    if (c == NULL) {
        return;
    }
    assert_true(json_is_integer(c));
    assert_true(json_integer_value(c) >= now - 60 && json_integer_value(c) <= now + 60);
    json_object_set_new(v, "created", json_integer(0));
}


json_t *
sl_test_literal(sl_str_t lit)
{
    json_error_t err;
    json_t *v;

    if (lit.len == 0) {
        return NULL;
    }
    v = json_loadb(lit.p, lit.len, JSON_DECODE_ANY, &err);
    if (!json_is_string(v)) {
        fail_msg("not a literal jansson takes: %.*s (%s)", (int) lit.len, lit.p, err.text);
    }
    return v;
}


static const char *
test_event_name(sl_ev_type_e type)
{
    switch (type) {
    case SL_EV_START:
        return "start";
    case SL_EV_TEXT:
        return "text";
    case SL_EV_REASONING:
        return "reasoning";
    case SL_EV_TOOL_CALL:
        return "tool_call";
    case SL_EV_TOOL_ARGS:
        return "tool_args";
    case SL_EV_FINISH:
        return "finish";
    case SL_EV_USAGE:
        return "usage";
    case SL_EV_ERROR:
        return "error";
    case SL_EV_DONE:
        return "done";
    case SL_EV_REDACTED:
        return "redacted";
    }
    fail_msg("unknown event type %d", (int) type);
    return NULL;
}


static const char *
test_finish_name(sl_finish_e f)
{
    static const char *const names[] = {
        "none", "stop", "length", "tool_calls", "content_filter", "stop_sequence", "pause",
    };

    if ((unsigned) f >= sizeof(names) / sizeof(names[0])) {
        fail_msg("unknown finish %d", (int) f);
    }
    return names[f];
}


static json_t *
test_usage_json(const sl_usage_t *u)
{
    return json_pack("{sIsIsIsIsIsIsb}", "prompt_tokens", (json_int_t) u->prompt_tokens,
                     "completion_tokens", (json_int_t) u->completion_tokens, "cached_tokens",
                     (json_int_t) u->cached_tokens, "cache_write_tokens",
                     (json_int_t) u->cache_write_tokens, "cache_write_1h_tokens",
                     (json_int_t) u->cache_write_1h_tokens, "reasoning_tokens",
                     (json_int_t) u->reasoning_tokens, "known", u->known);
}


json_t *
sl_test_event_json(const sl_ev_t *ev)
{
    json_t *v = json_pack("{ss}", "type", test_event_name(ev->type));
    json_t *s;

    if (ev->type != SL_EV_START && ev->type != SL_EV_USAGE && ev->type != SL_EV_ERROR
        && ev->type != SL_EV_DONE) {
        json_object_set_new(v, "choice", json_integer(ev->choice));
    }
    if (ev->type == SL_EV_TOOL_CALL || ev->type == SL_EV_TOOL_ARGS) {
        json_object_set_new(v, "index", json_integer(ev->index));
    }
    if ((s = sl_test_literal(ev->id)) != NULL) {
        json_object_set_new(v, "id", s);
    }
    if ((s = sl_test_literal(ev->name)) != NULL) {
        json_object_set_new(v, "name", s);
    }
    if ((s = sl_test_literal(ev->text)) != NULL) {
        json_object_set_new(v, "text", s);
    }
    if ((s = sl_test_literal(ev->signature)) != NULL) {
        json_object_set_new(v, "signature", s);
    }
    if (ev->type == SL_EV_FINISH) {
        json_object_set_new(v, "finish", json_string(test_finish_name(ev->finish)));
    }
    if (ev->type == SL_EV_USAGE) {
        assert_non_null(ev->usage);
        json_object_set_new(v, "usage", test_usage_json(ev->usage));
    }
    if (ev->type == SL_EV_ERROR) {
        const sl_error_t *e = ev->error;

        assert_non_null(e);
        assert_non_null(e->message);
        assert_non_null(e->type);
        json_object_set_new(v, "error",
                            json_pack("{sisssssbss?ss?}", "status", e->status, "type", e->type,
                                      "message", e->message, "retryable", e->retryable, "code",
                                      e->code, "param", e->param));
    }
    return v;
}


json_t *
sl_test_encode_answer(sl_call_t *call, const sl_answer_t *a)
{
    const sl_frontend_t *fe = sl_frontend_get(SL_API_CHAT);
    sl_buf_t b = SL_BUF_INIT;
    json_error_t err;
    json_t *v;

    assert_non_null(fe);
    assert_int_equal(fe->encode_answer(call, a, &b), 0);
    v = json_loadb(b.p, b.len, 0, &err);
    if (v == NULL) {
        fail_msg("chat answer is not JSON (%s): %.*s", err.text, (int) b.len, b.p);
    }
    sl_buf_free(&b);
    return v;
}


static int
test_on_event(void *data, const sl_sse_event_t *ev)
{
    test_feed_t *f = data;
    const sl_ev_t *err = NULL;

    if (f->stopped || f->st->done) {
        return 0; /* as the driver: nothing after the end */
    }
    sl_evs_reset(&f->evs);
    assert_int_equal(f->ops->stream_event(f->conf, f->st, ev, &f->evs), 0);
    for (size_t i = 0; i < f->evs.n; i++) {
        json_array_append_new(f->out->events, sl_test_event_json(&f->evs.v[i]));
        if (f->evs.v[i].type == SL_EV_ERROR && err == NULL) {
            err = &f->evs.v[i];
        }
    }
    if (err != NULL) {
        /* the driver's: the batch before the error still goes out, then the error */
        assert_true(f->st->failed);
        assert_int_equal(f->fe->encode_events(f->state, &f->evs, &f->out->out), 0);
        assert_int_equal(f->fe->encode_stream_error(f->state, err->error, &f->out->out), 0);
        f->out->errored = true;
        f->stopped = true;
        return 0;
    }
    assert_false(f->st->failed);
    return f->fe->encode_events(f->state, &f->evs, &f->out->out);
}


void
sl_test_run_stream(const sl_provider_ops_t *ops, const void *conf, sl_call_t *call, sl_stream_t *st,
                   const char *sse, size_t len, size_t step, sl_test_stream_t *out)
{
    sl_sse_parser_t p;
    test_feed_t f;
    const char *s;
    const char *end;

    memset(out, 0, sizeof(*out));
    out->data = json_array();
    out->events = json_array();
    memset(st, 0, sizeof(*st));
    st->call = call;
    memset(&f, 0, sizeof(f));
    f.ops = ops;
    f.conf = conf;
    f.st = st;
    f.fe = sl_frontend_get(SL_API_CHAT);
    assert_non_null(f.fe);
    f.state = f.fe->stream_open(call);
    f.evs.pool = call->pool;
    f.out = out;
    sl_sse_init(&p, 0);
    for (size_t off = 0; off < len;) {
        size_t n = step == 0 || step > len - off ? len - off : step;

        assert_int_equal(sl_sse_feed(&p, sse + off, n, test_on_event, &f), 0);
        off += n;
    }
    sl_sse_free(&p);
    if (st->done && !out->errored) {
        assert_int_equal(f.fe->encode_end(f.state, &st->usage, &out->out), 0);
    }

    s = out->out.p;
    end = s != NULL ? s + out->out.len : NULL;
    while (s != NULL && s < end) {
        const char *sep = strstr(s, "\n\n");
        json_error_t err;
        json_t *v;

        assert_non_null(sep);
        assert_memory_equal(s, "data: ", 6);
        assert_false(out->done_line); /* nothing after [DONE] */
        if ((size_t) (sep - s) == 12 && memcmp(s + 6, "[DONE]", 6) == 0) {
            out->done_line = true;
            s = sep + 2;
            continue;
        }
        v = json_loadb(s + 6, (size_t) (sep - s - 6), 0, &err);
        if (v == NULL) {
            fail_msg("event data is not JSON (%s): %.*s", err.text, (int) (sep - s), s);
        }
        json_array_append_new(out->data, v);
        s = sep + 2;
    }
}


void
sl_test_stream_free(sl_test_stream_t *s)
{
    sl_buf_free(&s->out);
    json_decref(s->data);
    json_decref(s->events);
    memset(s, 0, sizeof(*s));
}
