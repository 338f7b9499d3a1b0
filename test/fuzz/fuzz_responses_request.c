/*
 * libFuzzer target for the Responses frontend's request decoder: any bytes
 * as a POST /v1/responses body. A body it takes must have become a chat
 * body jansson parses to an object with a non-empty messages array and the
 * gateway's response id, and whose tokens (the token writer's) are what
 * the token reader makes of the same bytes; the same body is then
 * translated again with its own input as the conversation before it (what
 * previous_response_id does), which must hold the same. Errors must be
 * 400s with a message.
 *
 * Through meson (test/fuzz/meson.build, clang only):
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_responses_request
 *   build-fuzz/test/fuzz/fuzz_responses_request -max_total_time=60
 * test/fuzz/corpus/responses_request
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/base/json_internal.h"
#include "core/base/pool.h"
#include "core/gateway/frontend.h"
#include "core/gateway/frontend_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const sl_call_t *call, int rc, const sl_error_t *err);
static const sl_json_t *fuzz_reparse(sl_pool_t *pool, sl_str_t raw);


/* A decoded call holds a chat body with messages; a refused one a 400 with a message. */
static void
fuzz_check(const sl_call_t *call, int rc, const sl_error_t *err)
{
    json_t *chat;

    if (rc != 0) {
        if (err->status != 400 || err->message == NULL || err->message[0] == '\0') {
            abort();
        }
        return;
    }
    chat = json_loadb(call->raw.p, call->raw.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(chat) || json_array_size(json_object_get(chat, "messages")) == 0
        || !json_is_string(json_object_get(chat, "sluice_response_id"))) {
        abort();
    }
    json_decref(chat);
}


/* raw read by the token reader, to hold the writer's tokens against. */
static const sl_json_t *
fuzz_reparse(sl_pool_t *pool, sl_str_t raw)
{
    sl_json_t *doc = sl_json_create(pool);

    if (sl_json_parse(doc, raw.p, raw.len, NULL) < 0) {
        abort();
    }
    return doc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_frontend_t *fe = sl_frontend_get(SL_API_RESPONSES);
    sl_pool_t *pool = sl_pool_create(0);
    sl_call_t call;
    sl_error_t err;
    sl_rs_items_t history;
    int rc;

    memset(&call, 0, sizeof(call));
    memset(&err, 0, sizeof(err));
    call.pool = pool;
    call.client_api = SL_API_RESPONSES;
    call.model = -1;
    call.stream_options = -1;
    call.request_id = "req-fuzz";
    rc = fe->decode(&call, (sl_str_t){ (const char *) data, size }, &err);
    fuzz_check(&call, rc, &err);
    if (rc == 0 && fe->model(&call) == NULL) {
        abort();
    }
    if (rc == 0 && !sl__json_same(call.doc, fuzz_reparse(pool, call.raw))) {
        abort(); /* the writer's tokens are the reader's */
    }
    history.doc = call.native_doc;
    history.items = sl_json_get(call.native_doc, SL_JSON_ROOT, "input");
    if (rc == 0 && sl_json_type(history.doc, history.items) == SL_JSON_ARRAY) {
        memset(&err, 0, sizeof(err));
        rc = sl__frontend_responses_translate(&call, &history, 1, &err);
        fuzz_check(&call, rc, &err);
        if (rc == 0 && !sl__json_same(call.doc, fuzz_reparse(pool, call.raw))) {
            abort();
        }
    }
    sl_pool_destroy(pool);
    return 0;
}
