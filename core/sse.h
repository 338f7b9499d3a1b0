/*
 * Server-sent events parser (the WHATWG event-stream format) for upstream
 * streams. Feed it bytes as they arrive in any split; it calls back once per
 * complete event. Lines end with LF, CRLF or CR; "data:" lines join with LF;
 * comment lines (":") are skipped; a field value loses one leading space.
 */
#ifndef SL_CORE_SSE_H
#define SL_CORE_SSE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/str.h"

typedef struct sl_sse_event {
    sl_str_t event; /* "event:" field, empty when absent */
    sl_str_t data;  /* "data:" lines joined with "\n" */
    sl_str_t id;
} sl_sse_event_t;

/* Called per event; fields are valid during the call only. Non-zero stops the feed. */
typedef int (*sl_sse_event_cb)(void *data, const sl_sse_event_t *ev);

typedef struct sl_sse_parser {
    sl_buf_t line;  /* partial line carried between feeds */
    sl_buf_t event;
    sl_buf_t data;
    sl_buf_t id;
    size_t max_event; /* bytes; an event larger than this is an error */
    unsigned has_data : 1;
    unsigned skip_lf : 1; /* previous chunk ended in CR */
} sl_sse_parser_t;

/* Initialises p; max_event 0 means 16 MiB. */
void sl_sse_init(sl_sse_parser_t *p, size_t max_event);

/*
 * Feeds bytes. Returns 0, SL_ETOOBIG when an event exceeds max_event, or the
 * callback's non-zero return value.
 */
int sl_sse_feed(sl_sse_parser_t *p, const char *buf, size_t len, sl_sse_event_cb cb, void *data);

/* Frees the parser's buffers. */
void sl_sse_free(sl_sse_parser_t *p);

#endif
