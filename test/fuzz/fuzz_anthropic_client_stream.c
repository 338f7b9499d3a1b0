/*
 * libFuzzer target for the Anthropic adapter's inbound stream translation
 * (POST /v1/messages): client_stream_event turns OpenAI chunk events into
 * Anthropic events. The first input byte chooses the feed size and the
 * usage the core reports in st->usage; the rest is an OpenAI event stream
 * fed through core/sse.c into the hook, followed by "[DONE]" as the core
 * sends it last (no events after done). Beyond "no crash, no sanitizer
 * report" it checks that every client event is `event: X`, then `data: `
 * plus one JSON object whose "type" is X, then a blank line; that
 * message_start comes first (unless an error event does), and that nothing
 * follows an error or message_stop. libFuzzer's -rss_limit_mb and
 * LeakSanitizer watch memory.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_anthropic_client_stream
 *   build-fuzz/test/fuzz/fuzz_anthropic_client_stream -max_total_time=60
 */
#define _GNU_SOURCE /* memmem */

#include <stdbool.h>
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
        fprintf(stderr, "fuzz_anthropic_client_stream: check failed: %s\n", what);
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
    fuzz_check(f->ops->client_stream_event(f->st, ev, &out) == 0, "client_stream_event failed");
    return 0;
}


/*
 * Every event is "event: " X "\n" "data: " {"type": X, ...} "\n\n";
 * message_start (or an error) comes first; error and message_stop are last.
 */
static void
fuzz_check_events(const sl_buf_t *out)
{
    const char *s = out->p;
    const char *end = out->p != NULL ? out->p + out->len : NULL; /* NULL + 0 is UB */
    bool first = true;

    while (s != NULL && s < end) {
        const char *sep = memmem(s, (size_t) (end - s), "\n\n", 2);
        const char *nl;
        const char *type;
        size_t name_len;
        json_t *v;

        fuzz_check(sep != NULL, "event without a blank line");
        fuzz_check(sep - s > 7 && memcmp(s, "event: ", 7) == 0, "event without a name");
        nl = memchr(s, '\n', (size_t) (sep - s));
        fuzz_check(nl != NULL, "event without data");
        name_len = (size_t) (nl - s - 7);
        fuzz_check(sep - nl > 6 && memcmp(nl + 1, "data: ", 6) == 0, "event without data");
        fuzz_check(memchr(nl + 1, '\n', (size_t) (sep - nl - 1)) == NULL, "data spans lines");
        v = json_loadb(nl + 7, (size_t) (sep - nl - 7), 0, NULL);
        fuzz_check(json_is_object(v), "event data is not a JSON object");
        type = json_string_value(json_object_get(v, "type"));
        fuzz_check(type != NULL && strlen(type) == name_len && memcmp(type, s + 7, name_len) == 0,
                   "event name and data type differ");
        if (first) {
            fuzz_check(strcmp(type, "message_start") == 0 || strcmp(type, "error") == 0,
                       "first event is neither message_start nor error");
            first = false;
        }
        if (strcmp(type, "error") == 0 || strcmp(type, "message_stop") == 0) {
            fuzz_check(sep + 2 == end, "events after an error or message_stop");
        }
        json_decref(v);
        s = sep + 2;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_provider_ops_t *ops = sl_provider_find("anthropic");
    static const sl_sse_event_t done = { { "", 0 }, { "[DONE]", 6 }, { "", 0 } };
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

    fuzz_check(ops != NULL && ops->client_stream_event != NULL, "no anthropic client hook");
    if (size < 1) {
        return 0;
    }
    step = fuzz_steps[data[0] & 3];
    s = (const char *) data + 1;
    len = size - 1;

    pool = sl_pool_create(0);
    memset(&prov, 0, sizeof(prov));
    prov.name = "openai";
    prov.base_path = "";
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = "gpt-\"fuzz\"";
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.endpoint = SL_ENDPOINT_MESSAGES;
    call.target = &target;
    call.stream = true;
    call.request_id = "req-fuzz";
    memset(&st, 0, sizeof(st));
    st.call = &call;
    st.client_wants_usage = true;
    if (data[0] & 4) {
        st.usage.known = true;
        st.usage.prompt_tokens = (uint64_t) (data[0] >> 3) * 7;
        st.usage.cached_tokens = data[0] >> 5;
        st.usage.cache_write_tokens = (data[0] >> 6) * 11;
        st.usage.completion_tokens = (uint64_t) data[0] * 1000003;
    }

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
    fuzz_on_event(&f, &done);
    fuzz_check_events(&f.out);
    sl_buf_free(&f.out);
    sl_pool_destroy(pool);
    return 0;
}
