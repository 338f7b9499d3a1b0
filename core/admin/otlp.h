/*
 * OpenTelemetry spans and their OTLP encodings: the JSON mapping (http/json)
 * and the protobuf wire format (http/protobuf) of the few messages a trace
 * export needs (ExportTraceServiceRequest, ResourceSpans, ScopeSpans, Span,
 * Span.Event, Status, KeyValue, AnyValue, Resource, InstrumentationScope of
 * opentelemetry-proto), written by hand: no code generator, no library.
 *
 * A span is recorded as plain values (sl_otlp_span_t: ints, borrowed
 * strings, static keys), then encoded in one pass into bytes that are
 * concatenated with other spans' and wrapped into one export request, so
 * a batch keeps bytes only. Resource attributes, built once, are encoded
 * as they are set (sl_otlp_attrs_t).
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

/*
 * A list of attributes, encoded as each one is set (so a span costs one
 * pass): protobuf KeyValue fields under the list's own field number, or
 * JSON objects joined by commas. Bytes in a pool; zero it, then
 * sl_otlp_attrs_init (a span's and an event's lists are set up by
 * sl_otlp_span_init and sl_otlp_event).
 */
typedef struct sl_otlp_attrs {
    char *p;
    size_t len;
    size_t cap;
    size_t n;    /* attributes */
    uint8_t tag; /* protobuf: the tag byte of the list's field */
    bool protobuf;
} sl_otlp_attrs_t;

typedef enum sl_otlp_type {
    SL_OTLP_STR = 0,
    SL_OTLP_INT = 1,
    SL_OTLP_DOUBLE = 2,
    SL_OTLP_BOOL = 3,
} sl_otlp_type_e;

#define SL_OTLP_KEY_MAX     46 /* bytes of a span attribute's key */
#define SL_OTLP_SPAN_ATTRS  40 /* a span keeps the first 40 attributes set */
#define SL_OTLP_EVENT_ATTRS 4

/*
 * A span attribute's key: its protobuf head (the KeyValue.key tag and
 * length) and the name, padded, so an encoder copies it in one fixed-size
 * move. Keys are compile-time constants of the code that records spans:
 * SL_OTLP_KEY("gen_ai.request.model"), a safe name (printable ASCII
 * without '"' or '\\') of at most SL_OTLP_KEY_MAX bytes.
 */
typedef struct sl_otlp_key {
    uint8_t pb[2]; /* 0x0a, length */
    char name[62];
} sl_otlp_key_t;

#define SL_OTLP_KEY(s)                                                                       \
    {                                                                                        \
        { 0x0a, (uint8_t) (sizeof(s) - 1                                                     \
                           + 0 * sizeof(char[sizeof(s) <= SL_OTLP_KEY_MAX + 1 ? 1 : -1])) }, \
            s                                                                                \
    }

/*
 * One recorded attribute: the key and the value as it is, a string
 * borrowed (it must stay valid until the span is encoded).
 */
typedef struct sl_otlp_attr {
    const sl_otlp_key_t *key;
    union {
        const char *s;
        int64_t i;
        double d;
    } v;
    uint32_t len; /* a string's bytes */
    uint8_t type; /* sl_otlp_type_e */
} sl_otlp_attr_t;

typedef struct sl_otlp_event {
    const char *name; /* valid UTF-8, borrowed */
    uint64_t time_ns; /* unix */
    size_t nattrs;
    sl_otlp_attr_t attrs[SL_OTLP_EVENT_ATTRS];
} sl_otlp_event_t;

/*
 * A span as it is recorded: plain fields and attributes as values (no
 * encoding, no allocation but for events), encoded once by
 * sl_otlp_encode_span straight into an export's buffer. Strings are
 * borrowed until then; they need not be UTF-8 (each byte that does not
 * start a well-formed character is encoded as U+FFFD), except name,
 * event names and status_message, which must be.
 */
typedef struct sl_otlp_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    bool has_parent;
    bool parent_remote; /* the parent came from another process (a client's traceparent) */
    const char *name;   /* valid UTF-8 */
    sl_str_t name_tail; /* p != NULL: the name is "<name> <name_tail>" */
    sl_otlp_kind_e kind;
    uint64_t start_ns; /* unix */
    uint64_t end_ns;
    sl_otlp_event_t *events;
    size_t nevents;
    size_t events_cap;
    sl_otlp_status_e status;
    const char *status_message; /* NULL: none; valid UTF-8 */
    uint8_t trace_flags;        /* W3C flags, 0x01 sampled */
    bool protobuf;              /* how it is encoded */
    size_t nattrs;
    sl_otlp_attr_t attrs[SL_OTLP_SPAN_ATTRS]; /* left uninitialised past nattrs */
} sl_otlp_span_t;

/* Starts the empty attribute list of protobuf field field (JSON: no field). */
void sl_otlp_attrs_init(sl_otlp_attrs_t *a, bool protobuf, unsigned field);

/* Makes s an empty span to be encoded as protobuf or JSON (its attribute slots are not touched). */
void sl_otlp_span_init(sl_otlp_span_t *s, bool protobuf);

/*
 * Records one attribute of span s (beyond SL_OTLP_SPAN_ATTRS: ignored).
 * Strings are borrowed; a NULL string adds nothing, as does a double that
 * is not finite.
 */
void sl_otlp_span_str(sl_otlp_span_t *s, const sl_otlp_key_t *k, const char *v);
void sl_otlp_span_double(sl_otlp_span_t *s, const sl_otlp_key_t *k, double v);
void sl_otlp_span_bool(sl_otlp_span_t *s, const sl_otlp_key_t *k, bool v);

/* Inline: a span takes some thirty of them per request. */
static inline void
sl_otlp_span_strn(sl_otlp_span_t *s, const sl_otlp_key_t *k, sl_str_t v)
{
    if (v.p != NULL && s->nattrs < SL_OTLP_SPAN_ATTRS) {
        s->attrs[s->nattrs++] = (sl_otlp_attr_t){
            k, { .s = v.p }, v.len > UINT32_MAX ? UINT32_MAX : (uint32_t) v.len, SL_OTLP_STR
        };
    }
}


static inline void
sl_otlp_span_int(sl_otlp_span_t *s, const sl_otlp_key_t *k, int64_t v)
{
    if (s->nattrs < SL_OTLP_SPAN_ATTRS) {
        s->attrs[s->nattrs++] = (sl_otlp_attr_t){ k, { .i = v }, 0, SL_OTLP_INT };
    }
}
/* The same for an event (beyond SL_OTLP_EVENT_ATTRS: ignored). */
void sl_otlp_event_str(sl_otlp_event_t *e, const sl_otlp_key_t *k, const char *v);
void sl_otlp_event_int(sl_otlp_event_t *e, const sl_otlp_key_t *k, int64_t v);

/*
 * Setters of an encoded list (a resource's): encode one attribute into a
 * (growing it in pool). Keys are
 * copied as they are: they must be safe names (literals like
 * "gen_ai.request.model", or what sl_otlp_key made of one from outside).
 * String values are copied (JSON-escaped for JSON), each byte that does not
 * start well-formed UTF-8 becoming U+FFFD; a NULL value adds nothing, as
 * does a double that is not finite.
 */
void sl_otlp_str(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, const char *v);
void sl_otlp_strn(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, sl_str_t v);
void sl_otlp_int(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, int64_t v);
void sl_otlp_double(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, double v);
void sl_otlp_bool(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, bool v);

/* Adds an event to s (name borrowed: valid UTF-8) and returns it, for its attributes. */
sl_otlp_event_t *sl_otlp_event(sl_pool_t *pool, sl_otlp_span_t *s, const char *name,
                               uint64_t time_ns);

/* s itself when it is valid UTF-8, else a cleaned copy in pool (U+FFFD per bad byte). */
sl_str_t sl_otlp_clean(sl_pool_t *pool, sl_str_t s);

/*
 * name as a safe attribute key: itself when it is printable ASCII without
 * '"' or '\\', else a copy in pool, cleaned like a value (U+FFFD) with
 * '"', '\\' and control characters as '_' (e.g. OTEL_RESOURCE_ATTRIBUTES'
 * names, which may be anything).
 */
const char *sl_otlp_key(sl_pool_t *pool, const char *name);

/*
 * Appends span s to out, ready to be concatenated with others into the
 * spans of one export: protobuf, the Span message as ScopeSpans field 2
 * (tag, length, message); JSON, the span object alone (the caller puts
 * commas between them). One pass, no allocation but out's growth.
 */
void sl_otlp_encode_span(sl_buf_t *out, const sl_otlp_span_t *s);

/*
 * The most bytes the head of an export (all before its spans) takes with
 * these resource attributes; for JSON, the exact length.
 */
size_t sl_otlp_export_head_max(const sl_otlp_attrs_t *resource);

/*
 * Writes the head of an export whose spans take len bytes so that it ends
 * at end (right before the spans, which need not move), and returns its
 * length (at most sl_otlp_export_head_max).
 */
size_t sl_otlp_export_head(char *end, const sl_otlp_attrs_t *resource, size_t len);

/* Appends what follows the spans of an export (JSON: the closing brackets; protobuf: nothing). */
void sl_otlp_export_tail(sl_buf_t *out, bool protobuf);

/*
 * Appends one ExportTraceServiceRequest to out: one ResourceSpans with
 * the attributes resource (field 1 of Resource), one ScopeSpans of scope
 * "sluice" holding spans (len bytes of sl_otlp_encode_span output, in the
 * same encoding; for JSON joined by commas).
 */
void sl_otlp_encode_export(sl_buf_t *out, const sl_otlp_attrs_t *resource, const char *spans,
                           size_t len);

/* Content-Type of an export: "application/x-protobuf" or "application/json". */
const char *sl_otlp_content_type(bool protobuf);

#endif
