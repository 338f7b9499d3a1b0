/*
 * What the Messages frontend's fuzz targets (fuzz_anthropic_client_stream,
 * fuzz_messages_events) check of the stream it writes, beyond "no crash,
 * no sanitizer report": every event is `event: X`, then `data: ` plus one
 * JSON object (jansson, no repeated key) whose "type" is X, then a blank
 * line; message_start comes first and once; content blocks open at the
 * next index, get deltas and close only while open; no block is open at
 * message_delta, which comes once; the stream ends with message_stop after
 * message_delta (a clean end) or with an error event (a failure), nothing
 * after either.
 */
#ifndef SL_TEST_FUZZ_FUZZMESSAGES_H
#define SL_TEST_FUZZ_FUZZMESSAGES_H

#include <stdbool.h>

#include "core/base/buf.h"

/* Checks out (failed: it ends with an error); aborts naming name when a check fails. */
void sl_fuzz_messages_check(const char *name, const sl_buf_t *out, bool failed);

#endif
