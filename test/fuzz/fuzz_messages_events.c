/*
 * libFuzzer target for the Messages frontend's stream encoder fed typed
 * events directly, in orders no one adapter produces: reasoning with and
 * without signatures, tool calls and their arguments by index, text, finish
 * reasons, usage at any point, events of a second choice, empty literals,
 * in batches of any size. The first input byte chooses how the stream ends
 * (the driver's encode_end with one of four usages, or an error after the
 * commit point) and the request id and target model (with characters to
 * escape); each later pair of bytes is one event (its kind, then its index,
 * choice and literals from a small table of valid ones) or a batch boundary.
 * An error before any output event is the driver dropping the attempt:
 * nothing is checked. The stream the client gets is checked by
 * fuzzmessages.c (see fuzzmessages.h).
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_messages_events
 *   build-fuzz/test/fuzz/fuzz_messages_events -max_total_time=60
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/base/buf.h"
#include "core/gateway/frontend.h"
#include "core/base/pool.h"

#include "fuzzmessages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sl_str_t fuzz_literal(uint8_t b);

/* JSON string literals as adapters hand them over; "" is an absent one. */
static const char *const fuzz_literals[] = {
    "",
    "\"\"",
    "\"a\"",
    "\"\\u00e9\\n\\\"x\\\" \\/\"",
    "\"{\\\"k\\\":[1,{\\\"z\\\":null}]}\"",
    "\"\xc3\xa9\xe2\x82\xac\"",
    "\"}\"",
    "\"EqQBCgIYAhIM+/=\"",
};

static const char *const fuzz_ids[2] = { "req-fuzz", "req-\"\\\n-\xc3\xa9" };
static const char *const fuzz_models[2] = { "gpt-\"fuzz\"", "m\\\t\xe2\x82\xac" };


static sl_str_t
fuzz_literal(uint8_t b)
{
    const char *s = fuzz_literals[b % (sizeof(fuzz_literals) / sizeof(fuzz_literals[0]))];

    return (sl_str_t){ s, strlen(s) };
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_frontend_t *fe = sl_frontend_get(SL_API_MESSAGES);
    sl_error_t err = { 502, "api_error", "overloaded_error", NULL, "x\"y", true, 0 };
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
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = fuzz_models[(data[0] >> 3) & 1];
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.client_api = SL_API_MESSAGES;
    call.model = -1;
    call.stream_options = -1;
    call.target = &target;
    call.request_id = fuzz_ids[(data[0] >> 4) & 1];
    call.stream = true;
    memset(usage, 0, sizeof(usage));
    for (unsigned k = 0; k < 4; k++) {
        usage[k].known = k > 0;
        usage[k].prompt_tokens = k * 100u;
        usage[k].cached_tokens = k * 20u;
        usage[k].cache_write_tokens = k * 50u;
        usage[k].cache_write_1h_tokens = k * 70u; /* more than the writes at k > 0 */
        usage[k].completion_tokens = k;
    }
    memset(&evs, 0, sizeof(evs));
    evs.pool = pool;
    state = fe->stream_open(&call);

    for (size_t i = 1; i < size; i += 2) {
        uint8_t x = i + 1 < size ? data[i + 1] : 0;
        sl_ev_t ev;

        memset(&ev, 0, sizeof(ev));
        ev.choice = (x & 0x80) != 0 ? 1 : 0;
        switch (data[i] % 9) {
        case 0:
            ev.type = SL_EV_START;
            ev.id = fuzz_literal(x);
            ev.name = fuzz_literal(x >> 3);
            break;
        case 1:
            ev.type = SL_EV_TEXT;
            ev.text = fuzz_literal(x);
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
        sl_fuzz_messages_check("fuzz_messages_events", &out, failed);
    }
    sl_buf_free(&out);
    sl_pool_destroy(pool);
    return 0;
}
