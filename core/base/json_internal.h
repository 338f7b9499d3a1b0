/*
 * core/base/json.c's test hook, for test/unit/test_json.c and the fuzz target
 * only: nothing in the gateway includes this header.
 */
#ifndef SL_CORE_BASE_JSON_INTERNAL_H
#define SL_CORE_BASE_JSON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base/json.h"

/*
 * Steps the last sl_json_parse() on doc took: every turn of the reader's
 * loops and every byte its scans passed (a skim's bytes, and a ',' or ':'
 * the reader steps over, one each, so a skim never takes more steps than
 * the whole read of the same bytes). The reader is linear when this
 * stays within a small multiple of the input's length for any input (the
 * tests hold it to 4 * len + 8). Any context.
 */
uint64_t sl__json_work(const sl_json_t *doc);

/* True when a and b hold the same bytes and the same tokens. Any context. */
bool sl__json_same(const sl_json_t *a, const sl_json_t *b);

#endif
