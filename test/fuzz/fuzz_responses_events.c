/*
 * libFuzzer target for the Responses frontend's stream encoder fed typed
 * events directly, in orders no one adapter produces (as
 * fuzz_messages_events.c does for Messages): reasoning with and without
 * signatures, redacted reasoning, signatures on text and tool calls,
 * tool calls and their arguments by index, text, finish reasons, usage at
 * any point, a second choice, empty literals, batches of any size. The
 * first input byte chooses how the stream ends (encode_end with one of four
 * usages, or an error after the commit point). Every event written must be
 * "event: T" then one data line of a JSON object whose type is T and whose
 * sequence_number counts from 0; a clean end is response.completed or
 * response.incomplete, whose response (also the frontend's final object)
 * is a response object with an output array; an error ends with `error`.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   ninja -C build-fuzz test/fuzz/fuzz_responses_events
 *   build-fuzz/test/fuzz/fuzz_responses_events -max_total_time=60 test/fuzz/corpus/responses_events
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/base/pool.h"
#include "core/gateway/frontend.h"
#include "core/gateway/frontend_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sl_str_t fuzz_literal(uint8_t b);
static const sl_call_t *fuzz_decoded(void);
static void fuzz_check(const sl_buf_t *out, bool failed, sl_str_t final);
static const char *fuzz_blank_line(const char *p, const char *end);

/* JSON string literals as adapters hand them over; "" is an absent one. */
static const char *const fuzz_literals[] = {
    "",
    "\"\"",
    "\"a\"",
    "\"\\u00e9\\n\\\"x\\\" \\/\"",
    "\"{\\\"k\\\":[1,{\\\"z\\\":null}]}\"",
    "\"\xc3\xa9\xe2\x82\xac\"",
    "\"ns_a_b_0000abcd\"",
    "\"EqQBCgIYAhIM+/=\"",
};

/* The request the events answer: a namespaced tool whose name the translation replaced. */
static const char fuzz_request[] =
    "{\"model\":\"m\",\"input\":\"x\",\"instructions\":\"i\\\"\",\"metadata\":{\"k\":\"v\"},"
    "\"tools\":[{\"type\":\"namespace\",\"name\":\"ns.\",\"tools\":[{\"type\":\"function\","
    "\"name\":\"a/b\"}]}]}";


/*
 * The request, decoded once (its pool lives as long as the process): the
 * encoder only reads the decoded call, and each run gets a copy of it with
 * a pool of its own, which keeps the runs fast.
 */
static const sl_call_t *
fuzz_decoded(void)
{
    static sl_call_t call;
    static bool done;
    sl_error_t err;

    if (!done) {
        memset(&call, 0, sizeof(call));
        memset(&err, 0, sizeof(err));
        call.pool = sl_pool_create(0);
        call.client_api = SL_API_RESPONSES;
        call.model = -1;
        call.stream_options = -1;
        call.request_id = "req-fuzz";
        if (sl_frontend_get(SL_API_RESPONSES)
                ->decode(&call, (sl_str_t){ fuzz_request, sizeof(fuzz_request) - 1 }, &err)
            != 0) {
            abort();
        }
        done = true;
    }
    return &call;
}


static sl_str_t
fuzz_literal(uint8_t b)
{
    const char *s = fuzz_literals[b % (sizeof(fuzz_literals) / sizeof(fuzz_literals[0]))];

    return (sl_str_t){ s, strlen(s) };
}


/* The first "\n\n" in [p, end), or NULL. */
static const char *
fuzz_blank_line(const char *p, const char *end)
{
    for (; end - p >= 2; p++) {
        if (p[0] == '\n' && p[1] == '\n') {
            return p;
        }
    }
    return NULL;
}


static void
fuzz_check(const sl_buf_t *out, bool failed, sl_str_t final)
{
    const char *p = out->p != NULL ? out->p : "";
    const char *end = p + out->len;
    json_int_t seq = 0;
    char last[64] = "";

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        const char *data, *stop;
        size_t tlen;
        json_t *ev;

        /* out is not NUL-terminated: every look stays inside [p, end) */
        if (nl == NULL || nl - p < 7 || memcmp(p, "event: ", 7) != 0 || end - (nl + 1) < 6
            || memcmp(nl + 1, "data: ", 6) != 0) {
            abort();
        }
        tlen = (size_t) (nl - p - 7);
        data = nl + 7;
        stop = fuzz_blank_line(data, end);
        if (stop == NULL || memchr(data, '\n', (size_t) (stop - data)) != NULL
            || tlen >= sizeof(last)) {
            abort();
        }
        ev = json_loadb(data, (size_t) (stop - data), JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(ev) || json_integer_value(json_object_get(ev, "sequence_number")) != seq
            || !json_is_string(json_object_get(ev, "type"))
            || strlen(json_string_value(json_object_get(ev, "type"))) != tlen
            || memcmp(json_string_value(json_object_get(ev, "type")), p + 7, tlen) != 0) {
            abort();
        }
        memcpy(last, p + 7, tlen);
        last[tlen] = '\0';
        if (!failed
            && (strcmp(last, "response.completed") == 0
                || strcmp(last, "response.incomplete") == 0)) {
            json_t *r = json_object_get(ev, "response");

            if (!json_is_array(json_object_get(r, "output"))
                || !json_is_string(json_object_get(r, "id"))) {
                abort();
            }
        }
        json_decref(ev);
        seq++;
        p = stop + 2;
    }
    if (failed
            ? strcmp(last, "error") != 0
            : strcmp(last, "response.completed") != 0 && strcmp(last, "response.incomplete") != 0) {
        abort();
    }
    if (!failed) {
        json_t *r = json_loadb(final.p, final.len, JSON_REJECT_DUPLICATES, NULL);

        if (!json_is_object(r) || !json_is_array(json_object_get(r, "output"))) {
            abort();
        }
        json_decref(r);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_frontend_t *fe = sl_frontend_get(SL_API_RESPONSES);
    sl_error_t err = { 502, "api_error", "server_error", NULL, "x\"y", true, 0 };
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
    sl_usage_t usage[4];
    sl_evs_t evs;
    sl_buf_t out = SL_BUF_INIT;
    sl_pool_t *pool;
    void *state;
    bool committed = false;
    bool failed;

    if (size < 1) {
        return 0;
    }
    pool = sl_pool_create(0);
    memset(&prov, 0, sizeof(prov));
    prov.name = "p";
    prov.kind = (data[0] & 0x20) != 0 ? "anthropic" : "gemini";
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = "m\\\t\xe2\x82\xac";
    call = *fuzz_decoded();
    call.pool = pool;
    call.target = &target;
    call.stream = true;
    memset(usage, 0, sizeof(usage));
    for (unsigned k = 0; k < 4; k++) {
        usage[k].known = k > 0;
        usage[k].prompt_tokens = k * 100u;
        usage[k].cached_tokens = k * 20u;
        usage[k].completion_tokens = k;
        usage[k].reasoning_tokens = k / 2;
    }
    memset(&evs, 0, sizeof(evs));
    evs.pool = pool;
    state = fe->stream_open(&call);

    for (size_t i = 1; i < size; i += 2) {
        uint8_t x = i + 1 < size ? data[i + 1] : 0;
        sl_ev_t ev;

        memset(&ev, 0, sizeof(ev));
        ev.choice = (x & 0x80) != 0 ? 1 : 0;
        switch (data[i] % 11) {
        case 0:
            ev.type = SL_EV_START;
            ev.id = fuzz_literal(x);
            ev.name = fuzz_literal(x >> 3);
            break;
        case 1:
            ev.type = SL_EV_TEXT;
            ev.text = fuzz_literal(x);
            ev.signature = (x & 0x40) != 0 ? fuzz_literal(x >> 3) : sl_str_null;
            break;
        case 2:
            ev.type = SL_EV_REASONING;
            ev.text = fuzz_literal(x);
            break;
        case 3:
            ev.type = SL_EV_REASONING;
            ev.signature = fuzz_literal(x);
            ev.text = fuzz_literal(x >> 4);
            break;
        case 4:
            ev.type = SL_EV_TOOL_CALL;
            ev.index = x & 3;
            ev.id = fuzz_literal(x >> 2);
            ev.name = fuzz_literal(x >> 4);
            ev.signature = (x & 0x40) != 0 ? fuzz_literal(x) : sl_str_null;
            break;
        case 5:
            ev.type = SL_EV_TOOL_ARGS;
            ev.index = x & 3;
            ev.text = fuzz_literal(x >> 2);
            break;
        case 6:
            ev.type = SL_EV_FINISH;
            ev.finish = (sl_finish_e) (x % (SL_FINISH_PAUSE + 1));
            break;
        case 7:
            ev.type = SL_EV_USAGE;
            ev.usage = &usage[x & 3];
            break;
        case 8:
            ev.type = SL_EV_REDACTED;
            ev.text = fuzz_literal(x);
            break;
        default:
            fe->encode_events(state, &evs, &out);
            sl_evs_reset(&evs);
            continue;
        }
        committed = committed || sl_ev_is_output(&ev);
        sl_evs_push(&evs, &ev);
    }
    fe->encode_events(state, &evs, &out);
    failed = (data[0] & 1) != 0;
    if (failed && committed) {
        fe->encode_stream_error(state, &err, &out);
    } else if (!failed) {
        fe->encode_end(state, &usage[(data[0] >> 1) & 3], &out);
    }
    if (!failed || committed) {
        fuzz_check(&out, failed, sl__frontend_responses_final(state));
    }
    sl_buf_free(&out);
    sl_pool_destroy(pool);
    return 0;
}
