/*
 * OpenTelemetry spans and their OTLP encodings: the JSON mapping (http/json)
 * and the protobuf wire format (http/protobuf) of the few messages a trace
 * export needs (ExportTraceServiceRequest, ResourceSpans, ScopeSpans, Span,
 * Span.Event, Status, KeyValue, AnyValue, Resource, InstrumentationScope of
 * opentelemetry-proto), written by hand: no code generator, no library.
 *
 * A span is built in a pool (the request's) with the setters below, then
 * encoded once into bytes that can be concatenated with other spans' and
 * wrapped into one export request later, so a batch keeps bytes only.
 *
 * Pure functions: any process context; allocation aborts on OOM (worker).
 */
#ifndef SL_CORE_ADMIN_OTLP_H
#define SL_CORE_ADMIN_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"
#include "core/base/pool.h"
#include "core/base/str.h"

typedef enum sl_otlp_kind {
    SL_OTLP_KIND_INTERNAL = 1,
    SL_OTLP_KIND_SERVER = 2,
    SL_OTLP_KIND_CLIENT = 3,
} sl_otlp_kind_e;

typedef enum sl_otlp_status {
    SL_OTLP_STATUS_UNSET = 0,
    SL_OTLP_STATUS_OK = 1,
    SL_OTLP_STATUS_ERROR = 2,
} sl_otlp_status_e;

typedef enum sl_otlp_type {
    SL_OTLP_STR = 0,
    SL_OTLP_INT,
    SL_OTLP_DOUBLE,
    SL_OTLP_BOOL,
} sl_otlp_type_e;

typedef struct sl_otlp_attr {
    const char *key; /* static or pool; valid UTF-8 */
    sl_otlp_type_e type;
    sl_str_t s; /* SL_OTLP_STR: valid UTF-8 (the setter cleans it) */
    int64_t i;
    double d; /* finite */
    bool b;
} sl_otlp_attr_t;

typedef struct sl_otlp_attrs {
    sl_otlp_attr_t *v;
    size_t n;
    size_t cap;
} sl_otlp_attrs_t;

typedef struct sl_otlp_event {
    const char *name;
    uint64_t time_ns; /* unix */
    sl_otlp_attrs_t attrs;
} sl_otlp_event_t;

typedef struct sl_otlp_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    bool has_parent;
    bool parent_remote; /* the parent came from another process (a client's traceparent) */
    const char *name;
    sl_otlp_kind_e kind;
    uint64_t start_ns; /* unix */
    uint64_t end_ns;
    sl_otlp_attrs_t attrs;
    sl_otlp_event_t *events;
    size_t nevents;
    size_t events_cap;
    sl_otlp_status_e status;
    const char *status_message; /* NULL: none */
    uint8_t trace_flags;        /* W3C flags, 0x01 sampled */
} sl_otlp_span_t;

/*
 * Setters: append one attribute to a (arrays grow in pool). String values
 * are borrowed when they are valid UTF-8 and copied into pool with U+FFFD
 * for each bad byte otherwise; NULL values add nothing. Doubles that are
 * not finite add nothing.
 */
void sl_otlp_str(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, const char *v);
void sl_otlp_strn(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, sl_str_t v);
void sl_otlp_int(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, int64_t v);
void sl_otlp_double(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, double v);
void sl_otlp_bool(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, bool v);

/* Adds an event to s (name borrowed) and returns it, for its attributes. */
sl_otlp_event_t *sl_otlp_event(sl_pool_t *pool, sl_otlp_span_t *s, const char *name,
                               uint64_t time_ns);

/* s itself when it is valid UTF-8, else a cleaned copy in pool (U+FFFD per bad byte). */
sl_str_t sl_otlp_clean(sl_pool_t *pool, sl_str_t s);

/*
 * Appends span s to out, ready to be concatenated with others into the
 * spans of one export: protobuf, the Span message as ScopeSpans field 2
 * (tag, length, message); JSON, the span object alone (the caller puts
 * commas between them).
 */
void sl_otlp_encode_span(sl_buf_t *out, const sl_otlp_span_t *s, bool protobuf);

/*
 * Appends one ExportTraceServiceRequest to out: one ResourceSpans with
 * resource's attributes, one ScopeSpans of scope "sluice" holding spans
 * (len bytes of sl_otlp_encode_span output; for JSON joined by commas).
 */
void sl_otlp_encode_export(sl_buf_t *out, bool protobuf, const sl_otlp_attrs_t *resource,
                           const char *spans, size_t len);

/* Content-Type of an export: "application/x-protobuf" or "application/json". */
const char *sl_otlp_content_type(bool protobuf);

#endif
