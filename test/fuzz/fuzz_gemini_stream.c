/*
 * libFuzzer target for the Gemini adapter's answers and streams
 * (providers/gemini.c). The first input byte chooses whether the client
 * asked for usage and the feed size; the rest is an upstream event stream,
 * cut into events by core/base/sse.c and handed to stream_event and the chat
 * frontend's encoders the way the driver does (fuzzadapter.c holds the
 * shared checks: literals jansson takes, chat chunks that are JSON
 * objects, nothing after the end), fed at once and in steps, which must
 * give the same events and the same number of bytes. The same bytes also
 * go through parse_response (chat and embeddings) and map_error.
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

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/base/sse.h"
#include "fuzzadapter.h"
#include "providers/provider.h"
#include "providers/registry.h"

#define NAME "fuzz_gemini_stream"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t steps[4] = { 1, 3, 64, 1 << 20 };
    const sl_provider_ops_t *ops = sl_provider_find("gemini");
    sl_provider_conf_t prov;
    sl_target_t target;
    sl_call_t call;
    sl_pool_t *pool;
    sl_buf_t body;
    sl_answer_t a;
    sl_error_t e;
    const char *p;
    size_t len;

    sl_fuzz_check(ops != NULL, NAME, "no gemini adapter");
    if (size < 1) {
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
    memset(&target, 0, sizeof(target));
    target.provider = &prov;
    target.model = "gemini-fuzz";
    target.weight = 1;
    memset(&call, 0, sizeof(call));
    call.pool = pool;
    call.api = SL_API_CHAT;
    call.client_api = SL_API_CHAT;
    call.raw = sl_str_lit("{\"model\":\"m\",\"input\":[\"a\"],\"encoding_format\":\"base64\"}");
    call.model = -1;
    call.stream_options = -1;
    call.target = &target;
    call.stream = true;
    call.client_wants_usage = (data[0] & 1) != 0;
    call.request_id = "fuzz";

    sl_fuzz_stream_twice(NAME, ops, NULL, &call, p, len, steps[(data[0] >> 1) & 3], NULL);

    call.stream = false;
    sl_fuzz_answer(NAME, ops, NULL, &call, p, len);
    call.api = SL_API_EMBEDDINGS;
    body = (sl_buf_t){ (char *) p, len, len };
    memset(&a, 0, sizeof(a));
    if (ops->parse_response(NULL, &call, &body, &a) == 0) {
        sl_fuzz_check(a.raw.p != NULL && a.raw_api == SL_API_EMBEDDINGS, NAME,
                      "an embeddings answer without its body");
    }
    memset(&e, 0, sizeof(e));
    sl_fuzz_check(ops->map_error(NULL, 400 + (data[0] % 200), &body, pool, &e) == 0, NAME,
                  "map_error failed");
    sl_fuzz_check(e.status >= 400 && e.message != NULL && e.type != NULL, NAME,
                  "map_error left holes");
    sl_pool_destroy(pool);
    return 0;
}
