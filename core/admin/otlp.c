/*
 * OTLP span encodings: protobuf (sizes computed first, so every nested
 * message is written once, straight into the output, with its length in
 * front) and the JSON mapping (ids as hex, 64-bit integers as strings, enums
 * as numbers, as the OTLP/HTTP specification asks).
 */
#include "core/admin/otlp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/base/json.h"

#define OTLP_SCOPE "sluice"

static void otlp_attrs_push(sl_pool_t *pool, sl_otlp_attrs_t *a, const sl_otlp_attr_t *at);
static void *otlp_grow(sl_pool_t *pool, void *v, size_t n, size_t *cap, size_t size, size_t first);
static size_t otlp_vsize(uint64_t v);
static size_t otlp_lsize(size_t len);
static size_t otlp_any_size(const sl_otlp_attr_t *a);
static size_t otlp_kv_size(const sl_otlp_attr_t *a);
static size_t otlp_attrs_size(const sl_otlp_attrs_t *a);
static size_t otlp_event_size(const sl_otlp_event_t *e);
static size_t otlp_status_size(const sl_otlp_span_t *s);
static size_t otlp_span_size(const sl_otlp_span_t *s);
static void otlp_varint(sl_buf_t *out, uint64_t v);
static void otlp_tag(sl_buf_t *out, unsigned field, unsigned wire);
static void otlp_bytes(sl_buf_t *out, unsigned field, const void *p, size_t len);
static void otlp_fixed64(sl_buf_t *out, unsigned field, uint64_t v);
static void otlp_pb_attrs(sl_buf_t *out, unsigned field, const sl_otlp_attrs_t *a);
static void otlp_pb_span(sl_buf_t *out, const sl_otlp_span_t *s);
static void otlp_json_hex(sl_buf_t *out, const uint8_t *p, size_t n);
static void otlp_json_str(sl_buf_t *out, const char *s);
static void otlp_json_attrs(sl_buf_t *out, const sl_otlp_attrs_t *a);
static void otlp_json_span(sl_buf_t *out, const sl_otlp_span_t *s);

enum { OTLP_VARINT = 0, OTLP_I64 = 1, OTLP_LEN = 2, OTLP_I32 = 5 };


void
sl_otlp_str(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, const char *v)
{
    if (v != NULL) {
        sl_otlp_strn(pool, a, key, (sl_str_t){ v, strlen(v) });
    }
}


void
sl_otlp_strn(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, sl_str_t v)
{
    sl_otlp_attr_t at = { .key = key, .type = SL_OTLP_STR };

    if (v.p == NULL) {
        return;
    }
    at.s = sl_otlp_clean(pool, v);
    otlp_attrs_push(pool, a, &at);
}


void
sl_otlp_int(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, int64_t v)
{
    sl_otlp_attr_t at = { .key = key, .type = SL_OTLP_INT, .i = v };

    otlp_attrs_push(pool, a, &at);
}


void
sl_otlp_double(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, double v)
{
    sl_otlp_attr_t at = { .key = key, .type = SL_OTLP_DOUBLE, .d = v };

    if (isfinite(v)) {
        otlp_attrs_push(pool, a, &at);
    }
}


void
sl_otlp_bool(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, bool v)
{
    sl_otlp_attr_t at = { .key = key, .type = SL_OTLP_BOOL, .b = v };

    otlp_attrs_push(pool, a, &at);
}


static void
otlp_attrs_push(sl_pool_t *pool, sl_otlp_attrs_t *a, const sl_otlp_attr_t *at)
{
    a->v = otlp_grow(pool, a->v, a->n, &a->cap, sizeof(*a->v), 16);
    a->v[a->n++] = *at;
}


sl_otlp_event_t *
sl_otlp_event(sl_pool_t *pool, sl_otlp_span_t *s, const char *name, uint64_t time_ns)
{
    sl_otlp_event_t *e;

    s->events = otlp_grow(pool, s->events, s->nevents, &s->events_cap, sizeof(*s->events), 4);
    e = &s->events[s->nevents++];
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->time_ns = time_ns;
    return e;
}


/* v (n used of *cap elements of size bytes) with room for one more: doubled into pool. */
static void *
otlp_grow(sl_pool_t *pool, void *v, size_t n, size_t *cap, size_t size, size_t first)
{
    void *nv;

    if (n < *cap) {
        return v;
    }
    *cap = *cap > 0 ? *cap * 2 : first;
    nv = sl_palloc(pool, *cap * size);
    if (n > 0) {
        memcpy(nv, v, n * size);
    }
    return nv;
}


sl_str_t
sl_otlp_clean(sl_pool_t *pool, sl_str_t s)
{
    const unsigned char *p = (const unsigned char *) s.p;
    size_t i = 0, k, len;
    char *out;

    while (i < s.len && (len = sl_utf8_char_len(s.p + i, s.len - i)) != 0 && p[i] != 0) {
        i += len;
    }
    if (i == s.len) {
        return s;
    }
    out = sl_palloc(pool, s.len * 3 + 1);
    memcpy(out, s.p, i);
    k = i;
    while (i < s.len) {
        len = sl_utf8_char_len(s.p + i, s.len - i);
        if (len == 0 || p[i] == 0) {
            memcpy(out + k, "\xef\xbf\xbd", 3); /* U+FFFD */
            k += 3;
            i++;
            continue;
        }
        memcpy(out + k, p + i, len);
        k += len;
        i += len;
    }
    out[k] = '\0';
    return (sl_str_t){ out, k };
}


const char *
sl_otlp_content_type(bool protobuf)
{
    return protobuf ? "application/x-protobuf" : "application/json";
}


/* ---------------------------------------------------------------- protobuf */

static size_t
otlp_vsize(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}


/* A length-delimited field's size: tag (fields below 16: one byte), length, payload. */
static size_t
otlp_lsize(size_t len)
{
    return 1 + otlp_vsize(len) + len;
}


static size_t
otlp_any_size(const sl_otlp_attr_t *a)
{
    switch (a->type) {
    case SL_OTLP_STR:
        return otlp_lsize(a->s.len);
    case SL_OTLP_INT:
        return 1 + otlp_vsize((uint64_t) a->i);
    case SL_OTLP_DOUBLE:
        return 1 + 8;
    case SL_OTLP_BOOL:
        return 1 + 1;
    }
    return 0;
}


static size_t
otlp_kv_size(const sl_otlp_attr_t *a)
{
    return otlp_lsize(strlen(a->key)) + otlp_lsize(otlp_any_size(a));
}


/* Every attribute as a length-delimited KeyValue field (tags below 16). */
static size_t
otlp_attrs_size(const sl_otlp_attrs_t *a)
{
    size_t n = 0;

    for (size_t i = 0; i < a->n; i++) {
        n += otlp_lsize(otlp_kv_size(&a->v[i]));
    }
    return n;
}


static size_t
otlp_event_size(const sl_otlp_event_t *e)
{
    return 1 + 8 + otlp_lsize(strlen(e->name)) + otlp_attrs_size(&e->attrs);
}


static size_t
otlp_status_size(const sl_otlp_span_t *s)
{
    size_t n = 1 + otlp_vsize((uint64_t) s->status);

    if (s->status_message != NULL) {
        n += otlp_lsize(strlen(s->status_message));
    }
    return n;
}


static size_t
otlp_span_size(const sl_otlp_span_t *s)
{
    size_t n = otlp_lsize(16) + otlp_lsize(8) + otlp_lsize(strlen(s->name)) + 1
               + otlp_vsize((uint64_t) s->kind) + (1 + 8) * 2 + otlp_attrs_size(&s->attrs);

    if (s->has_parent) {
        n += otlp_lsize(8);
    }
    for (size_t i = 0; i < s->nevents; i++) {
        n += otlp_lsize(otlp_event_size(&s->events[i]));
    }
    n += otlp_lsize(otlp_status_size(s));
    n += 2 + 4; /* flags: field 16 takes a two-byte tag */
    return n;
}


static void
otlp_varint(sl_buf_t *out, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;

    while (v >= 0x80) {
        b[n++] = (unsigned char) (v | 0x80);
        v >>= 7;
    }
    b[n++] = (unsigned char) v;
    sl_buf_append(out, b, n);
}


static void
otlp_tag(sl_buf_t *out, unsigned field, unsigned wire)
{
    otlp_varint(out, ((uint64_t) field << 3) | wire);
}


static void
otlp_bytes(sl_buf_t *out, unsigned field, const void *p, size_t len)
{
    otlp_tag(out, field, OTLP_LEN);
    otlp_varint(out, len);
    sl_buf_append(out, p, len);
}


static void
otlp_fixed64(sl_buf_t *out, unsigned field, uint64_t v)
{
    unsigned char b[8];

    for (size_t i = 0; i < 8; i++) {
        b[i] = (unsigned char) (v >> (8 * i));
    }
    otlp_tag(out, field, OTLP_I64);
    sl_buf_append(out, b, 8);
}


static void
otlp_pb_attrs(sl_buf_t *out, unsigned field, const sl_otlp_attrs_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        const sl_otlp_attr_t *at = &a->v[i];
        uint64_t bits;

        otlp_tag(out, field, OTLP_LEN);
        otlp_varint(out, otlp_kv_size(at));
        otlp_bytes(out, 1, at->key, strlen(at->key));
        otlp_tag(out, 2, OTLP_LEN);
        otlp_varint(out, otlp_any_size(at));
        switch (at->type) {
        case SL_OTLP_STR:
            otlp_bytes(out, 1, at->s.p, at->s.len);
            break;
        case SL_OTLP_BOOL:
            otlp_tag(out, 2, OTLP_VARINT);
            otlp_varint(out, at->b ? 1 : 0);
            break;
        case SL_OTLP_INT:
            otlp_tag(out, 3, OTLP_VARINT);
            otlp_varint(out, (uint64_t) at->i);
            break;
        case SL_OTLP_DOUBLE:
            memcpy(&bits, &at->d, sizeof(bits));
            otlp_fixed64(out, 4, bits);
            break;
        }
    }
}


static void
otlp_pb_span(sl_buf_t *out, const sl_otlp_span_t *s)
{
    unsigned char flags[4];
    uint32_t f = s->trace_flags;

    otlp_bytes(out, 1, s->trace_id, 16);
    otlp_bytes(out, 2, s->span_id, 8);
    if (s->has_parent) {
        otlp_bytes(out, 4, s->parent_id, 8);
    }
    otlp_bytes(out, 5, s->name, strlen(s->name));
    otlp_tag(out, 6, OTLP_VARINT);
    otlp_varint(out, (uint64_t) s->kind);
    otlp_fixed64(out, 7, s->start_ns);
    otlp_fixed64(out, 8, s->end_ns);
    otlp_pb_attrs(out, 9, &s->attrs);
    for (size_t i = 0; i < s->nevents; i++) {
        const sl_otlp_event_t *e = &s->events[i];

        otlp_tag(out, 11, OTLP_LEN);
        otlp_varint(out, otlp_event_size(e));
        otlp_fixed64(out, 1, e->time_ns);
        otlp_bytes(out, 2, e->name, strlen(e->name));
        otlp_pb_attrs(out, 3, &e->attrs);
    }
    otlp_tag(out, 15, OTLP_LEN);
    otlp_varint(out, otlp_status_size(s));
    if (s->status_message != NULL) {
        otlp_bytes(out, 2, s->status_message, strlen(s->status_message));
    }
    otlp_tag(out, 3, OTLP_VARINT);
    otlp_varint(out, (uint64_t) s->status);
    /* flags: the W3C trace flags, and whether the parent is remote (bits 8 and 9) */
    if (s->has_parent) {
        f |= 0x100u | (s->parent_remote ? 0x200u : 0);
    }
    for (size_t i = 0; i < 4; i++) {
        flags[i] = (unsigned char) (f >> (8 * i));
    }
    otlp_tag(out, 16, OTLP_I32);
    sl_buf_append(out, flags, 4);
}


/* ---------------------------------------------------------------- JSON */

static void
otlp_json_hex(sl_buf_t *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char b[2 * 16 + 2];
    size_t k = 0;

    b[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        b[k++] = hex[p[i] >> 4];
        b[k++] = hex[p[i] & 0xf];
    }
    b[k++] = '"';
    sl_buf_append(out, b, k);
}


static void
otlp_json_str(sl_buf_t *out, const char *s)
{
    sl_json_quote(out, (sl_str_t){ s, strlen(s) });
}


static void
otlp_json_attrs(sl_buf_t *out, const sl_otlp_attrs_t *a)
{
    sl_buf_puts(out, "[");
    for (size_t i = 0; i < a->n; i++) {
        const sl_otlp_attr_t *at = &a->v[i];

        sl_buf_puts(out, i > 0 ? ",{\"key\":" : "{\"key\":");
        otlp_json_str(out, at->key);
        switch (at->type) {
        case SL_OTLP_STR:
            sl_buf_puts(out, ",\"value\":{\"stringValue\":");
            sl_json_quote(out, at->s);
            sl_buf_puts(out, "}}");
            break;
        case SL_OTLP_INT:
            sl_buf_printf(out, ",\"value\":{\"intValue\":\"%lld\"}}", (long long) at->i);
            break;
        case SL_OTLP_DOUBLE:
            sl_buf_printf(out, ",\"value\":{\"doubleValue\":%.17g}}", at->d);
            break;
        case SL_OTLP_BOOL:
            sl_buf_printf(out, ",\"value\":{\"boolValue\":%s}}", at->b ? "true" : "false");
            break;
        }
    }
    sl_buf_puts(out, "]");
}


static void
otlp_json_span(sl_buf_t *out, const sl_otlp_span_t *s)
{
    uint32_t f = s->trace_flags;

    sl_buf_puts(out, "{\"traceId\":");
    otlp_json_hex(out, s->trace_id, 16);
    sl_buf_puts(out, ",\"spanId\":");
    otlp_json_hex(out, s->span_id, 8);
    if (s->has_parent) {
        sl_buf_puts(out, ",\"parentSpanId\":");
        otlp_json_hex(out, s->parent_id, 8);
        f |= 0x100u | (s->parent_remote ? 0x200u : 0);
    }
    sl_buf_puts(out, ",\"name\":");
    otlp_json_str(out, s->name);
    sl_buf_printf(out,
                  ",\"kind\":%d,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\","
                  "\"flags\":%u,\"attributes\":",
                  (int) s->kind, (unsigned long long) s->start_ns, (unsigned long long) s->end_ns,
                  (unsigned) f);
    otlp_json_attrs(out, &s->attrs);
    if (s->nevents > 0) {
        sl_buf_puts(out, ",\"events\":[");
        for (size_t i = 0; i < s->nevents; i++) {
            sl_buf_printf(out, "%s{\"timeUnixNano\":\"%llu\",\"name\":", i > 0 ? "," : "",
                          (unsigned long long) s->events[i].time_ns);
            otlp_json_str(out, s->events[i].name);
            sl_buf_puts(out, ",\"attributes\":");
            otlp_json_attrs(out, &s->events[i].attrs);
            sl_buf_puts(out, "}");
        }
        sl_buf_puts(out, "]");
    }
    sl_buf_printf(out, ",\"status\":{\"code\":%d", (int) s->status);
    if (s->status_message != NULL) {
        sl_buf_puts(out, ",\"message\":");
        otlp_json_str(out, s->status_message);
    }
    sl_buf_puts(out, "}}");
}


/* ---------------------------------------------------------------- both */

void
sl_otlp_encode_span(sl_buf_t *out, const sl_otlp_span_t *s, bool protobuf)
{
    if (!protobuf) {
        otlp_json_span(out, s);
        return;
    }
    otlp_tag(out, 2, OTLP_LEN); /* ScopeSpans.spans */
    otlp_varint(out, otlp_span_size(s));
    otlp_pb_span(out, s);
}


void
sl_otlp_encode_export(sl_buf_t *out, bool protobuf, const sl_otlp_attrs_t *resource,
                      const char *spans, size_t len)
{
    size_t scope, scope_spans, res, resource_spans;

    if (!protobuf) {
        sl_buf_puts(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":");
        otlp_json_attrs(out, resource);
        sl_buf_puts(out, "},\"scopeSpans\":[{\"scope\":{\"name\":\"" OTLP_SCOPE "\"},\"spans\":[");
        sl_buf_append(out, spans, len);
        sl_buf_puts(out, "]}]}]}");
        return;
    }
    scope = otlp_lsize(sizeof(OTLP_SCOPE) - 1);
    scope_spans = otlp_lsize(scope) + len;
    res = otlp_attrs_size(resource);
    resource_spans = otlp_lsize(res) + otlp_lsize(scope_spans);
    otlp_tag(out, 1, OTLP_LEN); /* ExportTraceServiceRequest.resource_spans */
    otlp_varint(out, resource_spans);
    otlp_tag(out, 1, OTLP_LEN); /* ResourceSpans.resource */
    otlp_varint(out, res);
    otlp_pb_attrs(out, 1, resource);
    otlp_tag(out, 2, OTLP_LEN); /* ResourceSpans.scope_spans */
    otlp_varint(out, scope_spans);
    otlp_tag(out, 1, OTLP_LEN); /* ScopeSpans.scope */
    otlp_varint(out, scope);
    otlp_bytes(out, 1, OTLP_SCOPE, sizeof(OTLP_SCOPE) - 1);
    sl_buf_append(out, spans, len);
}
