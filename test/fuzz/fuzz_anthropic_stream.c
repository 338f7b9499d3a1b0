/*
 * libFuzzer target for the Anthropic adapter's answers and streams: the
 * first input byte chooses the feed size, whether the client asked for
 * usage and whether the client speaks Messages (the native path: raw
 * events) or chat (typed events only); the rest is an upstream event
 * stream fed through core/base/sse.c into stream_event and the chat frontend's
 * encoders, as the driver does (fuzzadapter.c holds the shared checks).
 * For a Messages client it also checks that each event's raw bytes are
 * nothing or the event as it came ("event:" line, one "data:" line per
 * line, a blank line), and that message_stop and error events are never
 * raw. The same bytes also go through parse_response and map_error.
 * libFuzzer's -rss_limit_mb and LeakSanitizer watch memory.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_anthropic_stream
 *   build-fuzz/test/fuzz/fuzz_anthropic_stream -max_total_time=60
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "fuzzadapter.h"
#include "providers/provider.h"
#include "providers/registry.h"

#define NAME "fuzz_anthropic_stream"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_raw(const sl_sse_event_t *ev, const sl_evs_t *evs);

static const size_t fuzz_steps[4] = { 1, 3, 5, 64 };


/* The event as it came, or nothing (message_stop, error, after the end). */
static void
fuzz_check_raw(const sl_sse_event_t *ev, const sl_evs_t *evs)
{
    sl_buf_t want = SL_BUF_INIT;
    const char *p = ev->data.p;
    const char *end = p + ev->data.len;

    sl_fuzz_check(evs->raw_api == SL_API_MESSAGES, NAME, "raw for another API");
    for (size_t i = 0; i < evs->n; i++) {
        sl_fuzz_check((evs->v[i].type != SL_EV_ERROR && evs->v[i].type != SL_EV_DONE)
                          || evs->raw.len == 0,
                      NAME, "message_stop or an error passed raw");
    }
    if (evs->raw.len == 0) {
        return;
    }
    if (ev->event.len > 0) {
        sl_buf_puts(&want, "event: ");
        sl_buf_append(&want, ev->event.p, ev->event.len);
        sl_buf_puts(&want, "\n");
    }
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        const char *stop = nl != NULL ? nl : end;

        sl_buf_puts(&want, "data: ");
        sl_buf_append(&want, p, (size_t) (stop - p));
        sl_buf_puts(&want, "\n");
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    sl_buf_puts(&want, "\n");
    sl_fuzz_check(want.len == evs->raw.len && memcmp(want.p, evs->raw.p, want.len) == 0, NAME,
                  "the event changed on the way");
    sl_buf_free(&want);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_provider_ops_t *ops = sl_provider_find("anthropic");
    static const char native[] = "{\"model\":\"m\",\"max_tokens\":5,\"stream\":true}";
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
    sl_json_t *doc;
    sl_pool_t *pool;
    sl_error_t e;
    sl_buf_t body;
    const char *s;
    size_t len;

    sl_fuzz_check(ops != NULL, NAME, "no anthropic adapter");
    if (size < 1) {
        return 0;
    }
    s = (const char *) data + 1;
    len = size - 1;

    pool = sl_pool_create(0);
    memset(&prov, 0, sizeof(prov));
    prov.name = "anthropic";
    prov.base_path = "";
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = "claude-fuzz";
    doc = sl_json_create(pool);
    sl_fuzz_check(sl_json_parse(doc, native, sizeof(native) - 1, NULL) == 0, NAME, "native");
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.api = SL_API_CHAT;
    call.client_api = (data[0] & 0x20) != 0 ? SL_API_MESSAGES : SL_API_CHAT;
    call.native = (sl_str_t){ native, sizeof(native) - 1 };
    call.native_doc = doc;
    call.target = &target;
    call.stream = true;
    call.client_wants_usage = (data[0] & 4) != 0;
    call.request_id = "req-fuzz";

    sl_fuzz_stream_twice(NAME, ops, NULL, &call, s, len, fuzz_steps[data[0] & 3], fuzz_check_raw);

    call.stream = false;
    sl_fuzz_answer(NAME, ops, NULL, &call, s, len);
    body = (sl_buf_t){ (char *) s, len, len };
    memset(&e, 0, sizeof(e));
    sl_fuzz_check(ops->map_error(NULL, 400 + (int) (data[0] >> 3) * 5, &body, pool, &e) == 0, NAME,
                  "map_error failed");
    sl_fuzz_check(e.status >= 400 && e.message != NULL && e.type != NULL, NAME,
                  "map_error left holes");
    sl_pool_destroy(pool);
    return 0;
}
