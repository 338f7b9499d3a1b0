/*
 * OTLP span encodings: protobuf (attributes encoded as they are set, the
 * span's length computed from its parts, then written in one pass through
 * a cursor) and the JSON mapping (ids as hex, 64-bit integers as strings,
 * enums as numbers, as the OTLP/HTTP specification asks). A span is
 * encoded once, on the request's path, so every byte here counts: no
 * printf, no per-byte buffer calls.
 */
#include "core/admin/otlp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define OTLP_SCOPE "sluice"

enum { OTLP_VARINT = 0, OTLP_I64 = 1, OTLP_LEN = 2, OTLP_I32 = 5 };

static char *otlp_room(sl_pool_t *pool, sl_otlp_attrs_t *a, size_t n);
static size_t otlp_vsize(uint64_t v);
static char *otlp_varint(char *d, uint64_t v);
static char *otlp_fixed64(char *d, uint64_t v);
static char *otlp_mem(char *d, const void *p, size_t n);
static char *otlp_pb_str(char *d, uint8_t tag, const char *p, size_t n);
static bool otlp_plain(const char *p, size_t n);
static bool otlp_valid(const char *p, size_t n);
static char *otlp_json_esc(char *d, const char *p, size_t n);
static char *otlp_json_hex(char *d, const uint8_t *p, size_t n);
static char *otlp_json_u64(char *d, uint64_t v);
static char *otlp_json_key(sl_otlp_attrs_t *a, char *d, const char *key, size_t klen);
static void otlp_pb_value(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, uint8_t vtag,
                          const char *v, size_t vlen, uint64_t num);
static size_t otlp_pb_event_size(const sl_otlp_event_t *e);
static size_t otlp_pb_status_size(const sl_otlp_span_t *s);
static void otlp_pb_span(sl_buf_t *out, const sl_otlp_span_t *s);
static void otlp_json_span(sl_buf_t *out, const sl_otlp_span_t *s);


void
sl_otlp_attrs_init(sl_otlp_attrs_t *a, bool protobuf, unsigned field)
{
    memset(a, 0, sizeof(*a));
    a->protobuf = protobuf;
    a->tag = (uint8_t) ((field << 3) | OTLP_LEN);
}


void
sl_otlp_span_init(sl_otlp_span_t *s, bool protobuf)
{
    memset(s, 0, sizeof(*s));
    s->protobuf = protobuf;
    sl_otlp_attrs_init(&s->attrs, protobuf, 9); /* Span.attributes */
}


/* n more bytes at the end of a, growing it (doubled) in pool. */
static char *
otlp_room(sl_pool_t *pool, sl_otlp_attrs_t *a, size_t n)
{
    if (a->len + n > a->cap) {
        size_t cap = a->cap > 0 ? a->cap * 2 : 512;
        char *p;

        while (cap < a->len + n) {
            cap *= 2;
        }
        p = sl_palloc(pool, cap);
        if (a->len > 0) {
            memcpy(p, a->p, a->len);
        }
        a->p = p;
        a->cap = cap;
    }
    return a->p + a->len;
}


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
    size_t klen;
    char *d;

    if (v.p == NULL) {
        return;
    }
    if (a->protobuf) {
        if (!otlp_valid(v.p, v.len)) {
            v = sl_otlp_clean(pool, v);
        }
        otlp_pb_value(pool, a, key, 0x0a, v.p, v.len, 0); /* AnyValue.string_value */
        return;
    }
    klen = strlen(key);
    d = otlp_room(pool, a, klen + 6 * v.len + 48);
    d = otlp_json_key(a, d, key, klen);
    d = otlp_mem(d, "{\"stringValue\":\"", 16);
    d = otlp_json_esc(d, v.p, v.len);
    d = otlp_mem(d, "\"}}", 3);
    a->len = (size_t) (d - a->p);
}


void
sl_otlp_int(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, int64_t v)
{
    size_t klen;
    char *d;

    if (a->protobuf) {
        otlp_pb_value(pool, a, key, 0x18, NULL, 0, (uint64_t) v); /* AnyValue.int_value */
        return;
    }
    klen = strlen(key);
    d = otlp_room(pool, a, klen + 80);
    d = otlp_json_key(a, d, key, klen);
    d = otlp_mem(d, "{\"intValue\":\"", 13);
    if (v < 0) {
        *d++ = '-';
    }
    d = otlp_json_u64(d, v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v);
    d = otlp_mem(d, "\"}}", 3);
    a->len = (size_t) (d - a->p);
}


void
sl_otlp_double(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, double v)
{
    size_t klen;
    uint64_t bits;
    char *d;
    int n;

    if (!isfinite(v)) {
        return;
    }
    if (a->protobuf) {
        memcpy(&bits, &v, sizeof(bits));
        otlp_pb_value(pool, a, key, 0x21, NULL, 0, bits); /* AnyValue.double_value */
        return;
    }
    klen = strlen(key);
    d = otlp_room(pool, a, klen + 80);
    d = otlp_json_key(a, d, key, klen);
    d = otlp_mem(d, "{\"doubleValue\":", 15);
    n = snprintf(d, 32, "%.17g", v);
    d += n > 0 && n < 32 ? n : 0;
    d = otlp_mem(d, "}}", 2);
    a->len = (size_t) (d - a->p);
}


void
sl_otlp_bool(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, bool v)
{
    size_t klen;
    char *d;

    if (a->protobuf) {
        otlp_pb_value(pool, a, key, 0x10, NULL, 0, v ? 1 : 0); /* AnyValue.bool_value */
        return;
    }
    klen = strlen(key);
    d = otlp_room(pool, a, klen + 48);
    d = otlp_json_key(a, d, key, klen);
    d = v ? otlp_mem(d, "{\"boolValue\":true}}", 19) : otlp_mem(d, "{\"boolValue\":false}}", 20);
    a->len = (size_t) (d - a->p);
}


/*
 * One KeyValue field of a protobuf list: the key, and an AnyValue whose
 * only field has tag vtag (a string v[0..vlen) for 0x0a, else num as a
 * varint, or as fixed64 for the double's 0x21).
 */
static void
otlp_pb_value(sl_pool_t *pool, sl_otlp_attrs_t *a, const char *key, uint8_t vtag, const char *v,
              size_t vlen, uint64_t num)
{
    sl_str_t k = { key, strlen(key) };
    size_t any, kv;
    char *d;

    any = vtag == 0x0a ? 1 + otlp_vsize(vlen) + vlen : vtag == 0x21 ? 9 : 1 + otlp_vsize(num);
    kv = 1 + otlp_vsize(k.len) + k.len + 1 + otlp_vsize(any) + any;
    d = otlp_room(pool, a, 1 + otlp_vsize(kv) + kv);
    *d++ = (char) a->tag;
    d = otlp_varint(d, kv);
    d = otlp_pb_str(d, 0x0a, k.p, k.len); /* KeyValue.key */
    *d++ = 0x12;                          /* KeyValue.value */
    d = otlp_varint(d, any);
    if (vtag == 0x0a) {
        d = otlp_pb_str(d, 0x0a, v, vlen);
    } else if (vtag == 0x21) {
        *d++ = 0x21;
        d = otlp_fixed64(d, num);
    } else {
        *d++ = (char) vtag;
        d = otlp_varint(d, num);
    }
    a->len = (size_t) (d - a->p);
    a->n++;
}


/* ,{"key":"KEY","value": (the comma unless first) */
static char *
otlp_json_key(sl_otlp_attrs_t *a, char *d, const char *key, size_t klen)
{
    if (a->n++ > 0) {
        *d++ = ',';
    }
    d = otlp_mem(d, "{\"key\":\"", 8);
    d = otlp_mem(d, key, klen); /* a safe name (sl_otlp_key) */
    return otlp_mem(d, "\",\"value\":", 10);
}


sl_otlp_event_t *
sl_otlp_event(sl_pool_t *pool, sl_otlp_span_t *s, const char *name, uint64_t time_ns)
{
    sl_otlp_event_t *e;

    if (s->nevents == s->events_cap) {
        size_t cap = s->events_cap > 0 ? s->events_cap * 2 : 4;
        sl_otlp_event_t *v = sl_palloc(pool, cap * sizeof(*v));

        if (s->nevents > 0) {
            memcpy(v, s->events, s->nevents * sizeof(*v));
        }
        s->events = v;
        s->events_cap = cap;
    }
    e = &s->events[s->nevents++];
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->time_ns = time_ns;
    sl_otlp_attrs_init(&e->attrs, s->protobuf, 3); /* Span.Event.attributes */
    return e;
}


/*
 * True when p[0..n) is printable ASCII without '"' or '\\': what nearly
 * every name and value is, and what needs neither checking nor escaping.
 * Eight bytes at a time (the bit tricks of "Bit Twiddling Hacks": a zero
 * byte, a byte below a bound; exact for whether any byte is one).
 */
static bool
otlp_plain(const char *p, size_t n)
{
#define OTLP_ONES        0x0101010101010101ull
#define OTLP_HIGHS       0x8080808080808080ull
#define OTLP_HAS_ZERO(v) ((((v) -OTLP_ONES) & ~(v) &OTLP_HIGHS) != 0)
    size_t i = 0;

    if (n >= 8) {
        /* whole words, the last one overlapping the one before when n is not a multiple of 8 */
        for (;; i += 8) {
            uint64_t w;

            if (i + 8 > n) {
                i = n - 8;
            }
            memcpy(&w, p + i, 8);
            if ((w & OTLP_HIGHS) != 0 || ((w - OTLP_ONES * 0x20) & ~w & OTLP_HIGHS) != 0
                || OTLP_HAS_ZERO(w ^ (OTLP_ONES * 0x7f)) || OTLP_HAS_ZERO(w ^ (OTLP_ONES * '"'))
                || OTLP_HAS_ZERO(w ^ (OTLP_ONES * '\\'))) {
                return false;
            }
            if (i + 8 == n) {
                return true;
            }
        }
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char) p[i];

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
#undef OTLP_HAS_ZERO
#undef OTLP_HIGHS
#undef OTLP_ONES
}


/* True when p[0..n) is well-formed UTF-8 without a NUL. */
static bool
otlp_valid(const char *p, size_t n)
{
    size_t len;

    if (otlp_plain(p, n)) {
        return true;
    }
    for (size_t i = 0; i < n; i += len) {
        if ((unsigned char) p[i] - 1u < 0x7fu) {
            len = 1; /* ASCII but NUL */
        } else if ((len = sl_utf8_char_len(p + i, n - i)) == 0 || p[i] == 0) {
            return false;
        }
    }
    return true;
}


const char *
sl_otlp_key(sl_pool_t *pool, const char *name)
{
    sl_str_t s = { name, strlen(name) };
    char *k;

    if (otlp_plain(s.p, s.len)) {
        return name;
    }
    s = sl_otlp_clean(pool, s);
    k = sl_pstrndup(pool, s.p, s.len);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) k[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            k[i] = '_';
        }
    }
    return k;
}


sl_str_t
sl_otlp_clean(sl_pool_t *pool, sl_str_t s)
{
    size_t i = 0, k = 0, len;
    char *out;

    if (otlp_valid(s.p, s.len)) {
        return s;
    }
    out = sl_palloc(pool, s.len * 3 + 1);
    while (i < s.len) {
        len = s.p[i] != 0 ? sl_utf8_char_len(s.p + i, s.len - i) : 0;
        if (len == 0) {
            memcpy(out + k, "\xef\xbf\xbd", 3); /* U+FFFD */
            k += 3;
            i++;
            continue;
        }
        memcpy(out + k, s.p + i, len);
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


/* ---------------------------------------------------------------- writers */

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


static char *
otlp_varint(char *d, uint64_t v)
{
    while (v >= 0x80) {
        *d++ = (char) (v | 0x80);
        v >>= 7;
    }
    *d++ = (char) v;
    return d;
}


static char *
otlp_fixed64(char *d, uint64_t v)
{
    for (size_t i = 0; i < 8; i++) {
        *d++ = (char) (v >> (8 * i));
    }
    return d;
}


static char *
otlp_mem(char *d, const void *p, size_t n)
{
    if (n > 0) {
        memcpy(d, p, n);
    }
    return d + n;
}


/* A length-delimited field with a one-byte tag. */
static char *
otlp_pb_str(char *d, uint8_t tag, const char *p, size_t n)
{
    *d++ = (char) tag;
    d = otlp_varint(d, n);
    return otlp_mem(d, p, n);
}


/* p[0..n) escaped for a JSON string (at most 6 bytes out per byte in); bad UTF-8 as U+FFFD. */
static char *
otlp_json_esc(char *d, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t len;

    if (otlp_plain(p, n)) {
        return otlp_mem(d, p, n);
    }
    for (size_t i = 0; i < n; i += len) {
        unsigned char c = (unsigned char) p[i];

        len = 1;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *d++ = (char) c;
        } else if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = (char) c;
        } else if (c < 0x20 || c == 0x7f) {
            d = otlp_mem(d, "\\u00", 4);
            *d++ = hex[c >> 4];
            *d++ = hex[c & 0xf];
        } else if ((len = sl_utf8_char_len(p + i, n - i)) == 0) {
            d = otlp_mem(d, "\\ufffd", 6);
            len = 1;
        } else {
            d = otlp_mem(d, p + i, len);
        }
    }
    return d;
}


static char *
otlp_json_hex(char *d, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        *d++ = hex[p[i] >> 4];
        *d++ = hex[p[i] & 0xf];
    }
    *d++ = '"';
    return d;
}


static char *
otlp_json_u64(char *d, uint64_t v)
{
    char b[20];
    size_t n = 0;

    do {
        b[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0) {
        *d++ = b[--n];
    }
    return d;
}


/* ---------------------------------------------------------------- protobuf */

static size_t
otlp_pb_event_size(const sl_otlp_event_t *e)
{
    size_t nlen = strlen(e->name);

    return 9 + 1 + otlp_vsize(nlen) + nlen + e->attrs.len;
}


static size_t
otlp_pb_status_size(const sl_otlp_span_t *s)
{
    size_t n = 1 + otlp_vsize((uint64_t) s->status);

    if (s->status_message != NULL) {
        size_t m = strlen(s->status_message);

        n += 1 + otlp_vsize(m) + m;
    }
    return n;
}


static void
otlp_pb_span(sl_buf_t *out, const sl_otlp_span_t *s)
{
    size_t nlen = strlen(s->name), st = otlp_pb_status_size(s);
    size_t size = 18 + 10 + (s->has_parent ? 10 : 0) + 1 + otlp_vsize(nlen) + nlen + 2 + 9 + 9
                  + s->attrs.len + 1 + otlp_vsize(st) + st + 6;
    uint32_t f = s->trace_flags;
    char *d;

    for (size_t i = 0; i < s->nevents; i++) {
        size_t e = otlp_pb_event_size(&s->events[i]);

        size += 1 + otlp_vsize(e) + e;
    }
    sl_buf_reserve(out, size + 12);
    d = out->p + out->len;
    *d++ = 0x12; /* ScopeSpans.spans */
    d = otlp_varint(d, size);
    d = otlp_pb_str(d, 0x0a, (const char *) s->trace_id, 16);
    d = otlp_pb_str(d, 0x12, (const char *) s->span_id, 8);
    if (s->has_parent) {
        d = otlp_pb_str(d, 0x22, (const char *) s->parent_id, 8);
        f |= 0x100u | (s->parent_remote ? 0x200u : 0); /* parent remote: bits 8 and 9 */
    }
    d = otlp_pb_str(d, 0x2a, s->name, nlen);
    *d++ = 0x30; /* kind */
    *d++ = (char) s->kind;
    *d++ = 0x39; /* start_time_unix_nano */
    d = otlp_fixed64(d, s->start_ns);
    *d++ = 0x41; /* end_time_unix_nano */
    d = otlp_fixed64(d, s->end_ns);
    d = otlp_mem(d, s->attrs.p, s->attrs.len);
    for (size_t i = 0; i < s->nevents; i++) {
        const sl_otlp_event_t *e = &s->events[i];

        *d++ = 0x5a; /* events */
        d = otlp_varint(d, otlp_pb_event_size(e));
        *d++ = 0x09;
        d = otlp_fixed64(d, e->time_ns);
        d = otlp_pb_str(d, 0x12, e->name, strlen(e->name));
        d = otlp_mem(d, e->attrs.p, e->attrs.len);
    }
    *d++ = 0x7a; /* status */
    d = otlp_varint(d, st);
    if (s->status_message != NULL) {
        d = otlp_pb_str(d, 0x12, s->status_message, strlen(s->status_message));
    }
    *d++ = 0x18;
    d = otlp_varint(d, (uint64_t) s->status);
    *d++ = (char) 0x85; /* flags: field 16, fixed32, a two-byte tag */
    *d++ = 0x01;
    for (size_t i = 0; i < 4; i++) {
        *d++ = (char) (f >> (8 * i));
    }
    out->len = (size_t) (d - out->p);
}


/* ---------------------------------------------------------------- JSON */

static void
otlp_json_span(sl_buf_t *out, const sl_otlp_span_t *s)
{
    size_t nlen = strlen(s->name);
    size_t size = 400 + 6 * nlen + s->attrs.len
                  + (s->status_message != NULL ? 6 * strlen(s->status_message) : 0);
    uint32_t f = s->trace_flags;
    char *d;

    for (size_t i = 0; i < s->nevents; i++) {
        size += 100 + 6 * strlen(s->events[i].name) + s->events[i].attrs.len;
    }
    sl_buf_reserve(out, size);
    d = out->p + out->len;
    d = otlp_mem(d, "{\"traceId\":", 11);
    d = otlp_json_hex(d, s->trace_id, 16);
    d = otlp_mem(d, ",\"spanId\":", 10);
    d = otlp_json_hex(d, s->span_id, 8);
    if (s->has_parent) {
        d = otlp_mem(d, ",\"parentSpanId\":", 16);
        d = otlp_json_hex(d, s->parent_id, 8);
        f |= 0x100u | (s->parent_remote ? 0x200u : 0);
    }
    d = otlp_mem(d, ",\"name\":\"", 9);
    d = otlp_json_esc(d, s->name, nlen);
    d = otlp_mem(d, "\",\"kind\":", 9);
    d = otlp_json_u64(d, (uint64_t) s->kind);
    d = otlp_mem(d, ",\"startTimeUnixNano\":\"", 22);
    d = otlp_json_u64(d, s->start_ns);
    d = otlp_mem(d, "\",\"endTimeUnixNano\":\"", 21);
    d = otlp_json_u64(d, s->end_ns);
    d = otlp_mem(d, "\",\"flags\":", 10);
    d = otlp_json_u64(d, f);
    d = otlp_mem(d, ",\"attributes\":[", 15);
    d = otlp_mem(d, s->attrs.p, s->attrs.len);
    *d++ = ']';
    if (s->nevents > 0) {
        d = otlp_mem(d, ",\"events\":[", 11);
        for (size_t i = 0; i < s->nevents; i++) {
            const sl_otlp_event_t *e = &s->events[i];

            d = otlp_mem(d, i > 0 ? ",{\"timeUnixNano\":\"" : "{\"timeUnixNano\":\"",
                         i > 0 ? 18 : 17);
            d = otlp_json_u64(d, e->time_ns);
            d = otlp_mem(d, "\",\"name\":\"", 10);
            d = otlp_json_esc(d, e->name, strlen(e->name));
            d = otlp_mem(d, "\",\"attributes\":[", 16);
            d = otlp_mem(d, e->attrs.p, e->attrs.len);
            d = otlp_mem(d, "]}", 2);
        }
        *d++ = ']';
    }
    d = otlp_mem(d, ",\"status\":{\"code\":", 18);
    d = otlp_json_u64(d, (uint64_t) s->status);
    if (s->status_message != NULL) {
        d = otlp_mem(d, ",\"message\":\"", 12);
        d = otlp_json_esc(d, s->status_message, strlen(s->status_message));
        *d++ = '"';
    }
    d = otlp_mem(d, "}}", 2);
    out->len = (size_t) (d - out->p);
}


/* ---------------------------------------------------------------- both */

void
sl_otlp_encode_span(sl_buf_t *out, const sl_otlp_span_t *s)
{
    if (s->protobuf) {
        otlp_pb_span(out, s);
    } else {
        otlp_json_span(out, s);
    }
}


void
sl_otlp_encode_export(sl_buf_t *out, const sl_otlp_attrs_t *resource, const char *spans, size_t len)
{
    size_t scope, scope_spans, res, resource_spans;
    char *d;

    if (!resource->protobuf) {
        sl_buf_puts(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
        sl_buf_append(out, resource->p, resource->len);
        sl_buf_puts(out, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"" OTLP_SCOPE "\"},\"spans\":[");
        sl_buf_append(out, spans, len);
        sl_buf_puts(out, "]}]}]}");
        return;
    }
    scope = 2 + sizeof(OTLP_SCOPE) - 1;
    scope_spans = 2 + scope + len;
    res = resource->len;
    resource_spans = 1 + otlp_vsize(res) + res + 1 + otlp_vsize(scope_spans) + scope_spans;
    sl_buf_reserve(out, resource_spans + 16);
    d = out->p + out->len;
    *d++ = 0x0a; /* ExportTraceServiceRequest.resource_spans */
    d = otlp_varint(d, resource_spans);
    *d++ = 0x0a; /* ResourceSpans.resource */
    d = otlp_varint(d, res);
    d = otlp_mem(d, resource->p, resource->len);
    *d++ = 0x12; /* ResourceSpans.scope_spans */
    d = otlp_varint(d, scope_spans);
    *d++ = 0x0a; /* ScopeSpans.scope */
    d = otlp_varint(d, scope);
    d = otlp_pb_str(d, 0x0a, OTLP_SCOPE, sizeof(OTLP_SCOPE) - 1);
    d = otlp_mem(d, spans, len);
    out->len = (size_t) (d - out->p);
}
