/*
 * libFuzzer target for the OpenAI adapter's stream translation, which
 * OpenAI itself, Azure, every OpenAI-compatible preset and echo share: the
 * first input byte chooses the feed size, whether the client asked for
 * usage, whether the client speaks chat (raw events) or another API (typed
 * events only), and the kind (openai, mistral, or together, which drops
 * empty chunks); the rest is an upstream event stream fed through
 * core/base/sse.c into stream_event and the chat frontend's encoders, as the
 * driver does (fuzzadapter.c holds the shared checks). For a chat client it
 * also checks that each event's raw bytes are nothing, or one well-framed
 * event (an optional "event:" line, "data: " lines, a blank line) whose
 * data is the upstream data unchanged, and a JSON object when the upstream
 * data was one; "[DONE]" and in-band errors are never raw. The same bytes
 * also go through parse_response and map_error. libFuzzer's -rss_limit_mb
 * and LeakSanitizer watch memory.
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

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "fuzzadapter.h"
#include "providers/openai_internal.h"
#include "providers/provider.h"
#include "providers/registry.h"

#define NAME "fuzz_openai_stream"

typedef struct fuzz_kind {
    const char *kind;
    const sl__openai_quirks_t *quirks; /* the provider's conf; NULL for openai */
} fuzz_kind_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_raw(const sl_sse_event_t *ev, const sl_evs_t *evs);

static const size_t fuzz_steps[4] = { 1, 3, 5, 64 };

static const sl__openai_quirks_t fuzz_mistral = { "mistral", NULL, false };
static const sl__openai_quirks_t fuzz_together = { "together", NULL, true };

static const fuzz_kind_t fuzz_kinds[4] = {
    { "openai", NULL },
    { "mistral", &fuzz_mistral },
    { "together", &fuzz_together },
    { "together", &fuzz_together },
};


/*
 * What one upstream event became for a chat client: nothing, or ["event: "
 * X "\n"] followed by one "data: " line per line of the upstream data, then
 * a blank line; the data lines joined with LF give back the upstream data,
 * and a JSON object stays one.
 */
static void
fuzz_check_raw(const sl_sse_event_t *ev, const sl_evs_t *evs)
{
    const char *s = evs->raw.p;
    size_t len = evs->raw.len;
    const char *end = s + len;
    const char *nl;
    sl_buf_t joined = SL_BUF_INIT;
    bool first = true;
    json_t *v;

    sl_fuzz_check(evs->raw_api == SL_API_CHAT, NAME, "raw for another API");
    if (sl_str_eq(ev->data, "[DONE]")) {
        sl_fuzz_check(len == 0, NAME, "[DONE] passed raw");
    }
    for (size_t i = 0; i < evs->n; i++) {
        sl_fuzz_check(evs->v[i].type != SL_EV_ERROR || len == 0, NAME, "an error passed raw");
    }
    if (len == 0) {
        return;
    }
    if (len > 7 && memcmp(s, "event: ", 7) == 0) {
        nl = memchr(s, '\n', len);
        sl_fuzz_check(nl != NULL, NAME, "event line without an end");
        s = nl + 1;
    }
    sl_fuzz_check(end - s >= 2 && memcmp(end - 2, "\n\n", 2) == 0, NAME,
                  "event without a blank line");
    while (s < end - 1) {
        sl_fuzz_check(end - s > 6 && memcmp(s, "data: ", 6) == 0, NAME, "a line that is not data");
        s += 6;
        nl = memchr(s, '\n', (size_t) (end - s));
        sl_fuzz_check(nl != NULL, NAME, "data line without an end");
        sl_fuzz_check(memchr(s, '\r', (size_t) (nl - s)) == NULL, NAME, "data holds a CR");
        if (!first) {
            sl_buf_append(&joined, "\n", 1);
        }
        first = false;
        sl_buf_append(&joined, s, (size_t) (nl - s));
        s = nl + 1;
    }
    sl_fuzz_check(joined.len == ev->data.len
                      && (ev->data.len == 0 || memcmp(joined.p, ev->data.p, ev->data.len) == 0),
                  NAME, "data changed on the way");
    v = json_loadb(ev->data.p, ev->data.len, 0, NULL);
    if (json_is_object(v)) {
        json_t *w = json_loadb(joined.p, joined.len, 0, NULL);

        sl_fuzz_check(json_is_object(w), NAME, "event data is not a JSON object");
        json_decref(w);
    }
    json_decref(v);
    sl_buf_free(&joined);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_provider_ops_t *ops;
    const fuzz_kind_t *k;
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
    sl_pool_t *pool;
    sl_buf_t body;
    sl_error_t e;
    const char *s;
    size_t len;

    if (size < 1) {
        return 0;
    }
    k = &fuzz_kinds[(data[0] >> 3) & 3];
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
    call.api = SL_API_CHAT;
    call.client_api = (data[0] & 0x20) != 0 ? SL_API_MESSAGES : SL_API_CHAT;
    call.target = &target;
    call.stream = true;
    call.client_wants_usage = (data[0] & 4) != 0;
    call.request_id = "req-fuzz";

    ops = sl_provider_find(k->kind);
    sl_fuzz_check(ops != NULL && ops->stream_event != NULL, NAME, "no adapter for the kind");
    sl_fuzz_stream_twice(NAME, ops, k->quirks, &call, s, len, fuzz_steps[data[0] & 3],
                         fuzz_check_raw);

    call.stream = false;
    sl_fuzz_answer(NAME, ops, k->quirks, &call, s, len);
    body = (sl_buf_t){ (char *) s, len, len };
    memset(&e, 0, sizeof(e));
    sl_fuzz_check(ops->map_error(NULL, 400 + (int) (data[0] >> 6) * 50, &body, pool, &e) == 0, NAME,
                  "map_error failed");
    sl_fuzz_check(e.status >= 400 && e.message != NULL && e.type != NULL, NAME,
                  "map_error left holes");
    sl_pool_destroy(pool);
    return 0;
}
