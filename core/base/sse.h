/*
 * Server-sent events parser (the WHATWG event-stream format) for upstream
 * streams. Feed it bytes as they arrive in any split; it calls back once per
 * complete event. Lines end with LF, CRLF or CR; "data:" lines join with LF;
 * comment lines (":") are skipped; a field value loses one leading space; a
 * UTF-8 byte order mark at the very start of the stream is ignored. Bytes are
 * passed through as they are (no UTF-8 validation), so a multi-byte sequence
 * split across feeds needs no special care.
 */
#ifndef SL_CORE_BASE_SSE_H
#define SL_CORE_BASE_SSE_H

#include <stddef.h>

#include "core/base/buf.h"
#include "core/base/str.h"

typedef struct sl_sse_event {
    sl_str_t event; /* "event:" field, empty when absent */
    sl_str_t data;  /* "data:" lines joined with "\n" */
    sl_str_t id;    /* last "id:" seen in the stream; it persists across events (spec) */
} sl_sse_event_t;

/*
 * Called per event; fields are valid during the call only. Each field's p is
 * never NULL and is followed by a NUL byte (p[len] == '\0'), so data can go
 * straight to json_loads(); data itself may still contain NUL bytes. An empty
 * line with no "data:" field before it dispatches nothing (spec). Non-zero
 * stops the feed.
 */
typedef int (*sl_sse_event_cb)(void *data, const sl_sse_event_t *ev);

typedef struct sl_sse_parser {
    sl_buf_t line; /* partial line carried between feeds */
    sl_buf_t event;
    sl_buf_t data;
    sl_buf_t id;
    size_t max_event; /* bytes; an event larger than this is an error */
    unsigned has_data : 1;
    unsigned skip_lf : 1;    /* previous chunk ended in CR */
    unsigned bom_done : 1;   /* the start of the stream was checked for a BOM */
    unsigned in_comment : 1; /* a comment line is split across feeds; drop its bytes */
} sl_sse_parser_t;

/* Initialises p; max_event 0 means 16 MiB. */
void sl_sse_init(sl_sse_parser_t *p, size_t max_event);

/*
 * Feeds bytes; buf is only read during the call. Returns 0, SL_ETOOBIG when
 * the bytes buffered for one event (its fields plus a partial line) exceed
 * max_event, or the callback's non-zero return value. After a non-zero return
 * the rest of buf is not consumed and the parser may only be freed. Worker
 * context; allocates (heap, aborts on OOM) only for the event fields and for
 * lines split across feeds.
 */
int sl_sse_feed(sl_sse_parser_t *p, const char *buf, size_t len, sl_sse_event_cb cb, void *data);

/* Frees the parser's buffers. */
void sl_sse_free(sl_sse_parser_t *p);

#endif
