/*
 * OTLP span encodings: protobuf (each message written in one pass through
 * a cursor, its length filled in afterwards into three bytes kept in front
 * of it, moved when fewer suffice) and the JSON mapping (ids as hex, 64-bit
 * integers as strings, enums as numbers, as the OTLP/HTTP specification
 * asks). A span is recorded as values and encoded once, at the end of its
 * request, straight into the batch that exports it, so every instruction
 * here counts: no allocation, no printf, keys copied as fixed-size blocks,
 * strings checked eight bytes at a time. Resource attributes (set once)
 * are encoded as they are set.
 */
#include "core/admin/otlp.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/gateway/trace.h"

#define OTLP_SCOPE    "sluice"
#define OTLP_KEY_COPY 48 /* bytes copied for a key: its head and up to SL_OTLP_KEY_MAX */
#define OTLP_LEN_ROOM 2  /* bytes kept for a message length: 128 B to 16 KiB without a move */

/* Appends a string literal at cursor d. */
#define otlp_lit(d, s) ((d) = otlp_mem((d), (s), sizeof(s) - 1))

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
static sl_otlp_attr_t *otlp_slot(sl_otlp_attr_t *v, size_t *n, size_t cap, const sl_otlp_key_t *k,
                                 uint8_t type);
static char *otlp_room_at(sl_buf_t *out, char *d, size_t n);
static bool otlp_pb_plain(const char *p, size_t n);
static size_t otlp_clean_len(const char *p, size_t n);
static char *otlp_clean_to(char *d, const char *p, size_t n);
static char *otlp_pb_text(sl_buf_t *out, char *d, uint8_t tag, const char *p, size_t n);
static char *otlp_pb_close(sl_buf_t *out, size_t start, char *d);
static char *otlp_pb_attr(sl_buf_t *out, char *d, uint8_t tag, const sl_otlp_attr_t *a);
static char *otlp_pb_attrs(sl_buf_t *out, char *d, uint8_t tag, const sl_otlp_attr_t *v, size_t n);
/* inlined into each attribute loop, where json is a constant: the call would cost more than the
 * copy */
static inline uint64_t otlp_word_bad(uint64_t w, bool json) __attribute__((always_inline));
static inline bool otlp_copy_plain(char *d, const char *p, size_t n, bool json)
    __attribute__((always_inline));
static char *otlp_json_attr(sl_buf_t *out, char *d, const sl_otlp_attr_t *a, bool first);
static char *otlp_json_attrs(sl_buf_t *out, char *d, const sl_otlp_attr_t *v, size_t n);
static char *otlp_json_text(sl_buf_t *out, char *d, const char *p, size_t n);
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
    memset(s, 0, offsetof(sl_otlp_span_t, attrs));
    s->protobuf = protobuf;
}


/* The next free attribute of v[0..cap), or NULL when they are all taken. */
static sl_otlp_attr_t *
otlp_slot(sl_otlp_attr_t *v, size_t *n, size_t cap, const sl_otlp_key_t *k, uint8_t type)
{
    sl_otlp_attr_t *a;

    if (*n >= cap) {
        return NULL;
    }
    a = &v[(*n)++];
    a->key = k;
    a->type = type;
    return a;
}


void
sl_otlp_span_str(sl_otlp_span_t *s, const sl_otlp_key_t *k, const char *v)
{
    if (v != NULL) {
        sl_otlp_span_strn(s, k, (sl_str_t){ v, strlen(v) });
    }
}


void
sl_otlp_span_double(sl_otlp_span_t *s, const sl_otlp_key_t *k, double v)
{
    sl_otlp_attr_t *a;

    if (isfinite(v)
        && (a = otlp_slot(s->attrs, &s->nattrs, SL_OTLP_SPAN_ATTRS, k, SL_OTLP_DOUBLE)) != NULL) {
        a->v.d = v;
    }
}


void
sl_otlp_span_bool(sl_otlp_span_t *s, const sl_otlp_key_t *k, bool v)
{
    sl_otlp_attr_t *a = otlp_slot(s->attrs, &s->nattrs, SL_OTLP_SPAN_ATTRS, k, SL_OTLP_BOOL);

    if (a != NULL) {
        a->v.i = v ? 1 : 0;
    }
}


void
sl_otlp_event_str(sl_otlp_event_t *e, const sl_otlp_key_t *k, const char *v)
{
    sl_otlp_attr_t *a;

    if (v != NULL
        && (a = otlp_slot(e->attrs, &e->nattrs, SL_OTLP_EVENT_ATTRS, k, SL_OTLP_STR)) != NULL) {
        size_t len = strlen(v);

        a->v.s = v;
        a->len = len > UINT32_MAX ? UINT32_MAX : (uint32_t) len;
    }
}


void
sl_otlp_event_int(sl_otlp_event_t *e, const sl_otlp_key_t *k, int64_t v)
{
    sl_otlp_attr_t *a = otlp_slot(e->attrs, &e->nattrs, SL_OTLP_EVENT_ATTRS, k, SL_OTLP_INT);

    if (a != NULL) {
        a->v.i = v;
    }
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
    e->name = name;
    e->time_ns = time_ns;
    e->nattrs = 0;
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


/* "hex" of n bytes (sl_trace_hex ends it with a NUL, which the closing quote overwrites). */
static char *
otlp_json_hex(char *d, const uint8_t *p, size_t n)
{
    *d++ = '"';
    sl_trace_hex(p, n, d);
    d[2 * n] = '"';
    return d + 2 * n + 1;
}


/* Decimal digits of v, two at a time. */
static char *
otlp_json_u64(char *d, uint64_t v)
{
    static const char pairs[] = "0001020304050607080910111213141516171819"
                                "2021222324252627282930313233343536373839"
                                "4041424344454647484950515253545556575859"
                                "6061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char b[20];
    size_t n = sizeof(b);

    while (v >= 100) {
        n -= 2;
        memcpy(b + n, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        n -= 2;
        memcpy(b + n, pairs + 2 * v, 2);
    } else {
        b[--n] = (char) ('0' + v);
    }
    memcpy(d, b + n, sizeof(b) - n);
    return d + sizeof(b) - n;
}


/* ---------------------------------------------------------------- strings */

/* d, with at least n bytes free after it in out (out->len is not kept up to date while writing). */
static char *
otlp_room_at(sl_buf_t *out, char *d, size_t n)
{
    size_t used = (size_t) (d - out->p);

    if (out->cap - used < n) {
        out->len = used;
        sl_buf_reserve(out, n);
        d = out->p + used;
    }
    return d;
}


/*
 * True when p[0..n) is ASCII without NUL: well-formed UTF-8 as it is, what
 * protobuf needs. Eight bytes at a time, as otlp_plain.
 */
static bool
otlp_pb_plain(const char *p, size_t n)
{
    uint64_t w, bad = 0;
    size_t i;

    if (n < 8) {
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char) p[i];

            if (c - 1u >= 0x7fu) {
                return false;
            }
        }
        return true;
    }
    for (i = 0; i + 8 < n; i += 8) {
        memcpy(&w, p + i, 8);
        bad |= (w | ((w - 0x0101010101010101ull) & ~w)) & 0x8080808080808080ull;
    }
    memcpy(&w, p + n - 8, 8); /* the last word, overlapping the one before */
    bad |= (w | ((w - 0x0101010101010101ull) & ~w)) & 0x8080808080808080ull;
    return bad == 0;
}


/* Bytes p[0..n) takes once cleaned (each byte that does not start a character, or a NUL, as
 * U+FFFD). */
static size_t
otlp_clean_len(const char *p, size_t n)
{
    size_t i = 0, k = 0, len;

    while (i < n) {
        len = p[i] != 0 ? sl_utf8_char_len(p + i, n - i) : 0;
        k += len == 0 ? 3 : len;
        i += len == 0 ? 1 : len;
    }
    return k;
}


static char *
otlp_clean_to(char *d, const char *p, size_t n)
{
    size_t i = 0, len;

    while (i < n) {
        len = p[i] != 0 ? sl_utf8_char_len(p + i, n - i) : 0;
        if (len == 0) {
            d = otlp_mem(d, "\xef\xbf\xbd", 3); /* U+FFFD */
            i++;
            continue;
        }
        d = otlp_mem(d, p + i, len);
        i += len;
    }
    return d;
}


/* ---------------------------------------------------------------- protobuf */

/* A string field (tag, length, UTF-8 bytes: cleaned when p[0..n) is not), with room made for it. */
static char *
otlp_pb_text(sl_buf_t *out, char *d, uint8_t tag, const char *p, size_t n)
{
    size_t len;

    if (otlp_pb_plain(p, n) || otlp_valid(p, n)) {
        d = otlp_room_at(out, d, n + 11);
        return otlp_pb_str(d, tag, p, n);
    }
    len = otlp_clean_len(p, n);
    d = otlp_room_at(out, d, len + 11);
    *d++ = (char) tag;
    d = otlp_varint(d, len);
    return otlp_clean_to(d, p, n);
}


/*
 * Ends the message whose body began OTLP_LEN_ROOM bytes after out->p +
 * start (where its length goes) and ends at d: writes the length, moving
 * the body when it takes another number of bytes. Returns the new end.
 */
static char *
otlp_pb_close(sl_buf_t *out, size_t start, char *d)
{
    size_t len = (size_t) (d - out->p) - start - OTLP_LEN_ROOM, n = otlp_vsize(len);
    char *p;

    if (n > OTLP_LEN_ROOM) {
        d = otlp_room_at(out, d, n - OTLP_LEN_ROOM);
    }
    p = out->p + start;
    if (n != OTLP_LEN_ROOM) {
        memmove(p + n, p + OTLP_LEN_ROOM, len);
    }
    otlp_varint(p, len);
    return p + n + len;
}


/*
 * One KeyValue field with tag tag: the key (its head and name copied as
 * one block), and an AnyValue whose only field holds the value.
 */
static char *
otlp_pb_attr(sl_buf_t *out, char *d, uint8_t tag, const sl_otlp_attr_t *a)
{
    const sl_otlp_key_t *k = a->key;
    size_t klen = k->pb[1], vlen = 0, any, kv;
    uint64_t num = 0;
    bool clean = false;

    switch (a->type) {
    case SL_OTLP_STR:
        vlen = a->len;
        if (!otlp_pb_plain(a->v.s, vlen) && !otlp_valid(a->v.s, vlen)) {
            vlen = otlp_clean_len(a->v.s, vlen);
            clean = true;
        }
        any = 1 + otlp_vsize(vlen) + vlen;
        break;
    case SL_OTLP_DOUBLE:
        memcpy(&num, &a->v.d, sizeof(num));
        any = 9;
        break;
    default:
        num = (uint64_t) a->v.i;
        any = 1 + otlp_vsize(num);
        break;
    }
    kv = 2 + klen + 1 + otlp_vsize(any) + any;
    d = otlp_room_at(out, d, vlen + OTLP_KEY_COPY + 32); /* heads: at most 32 bytes */
    *d++ = (char) tag;
    d = otlp_varint(d, kv);
    memcpy(d, k, OTLP_KEY_COPY); /* KeyValue.key: tag, length, name (and padding, overwritten) */
    d += 2 + klen;
    *d++ = 0x12; /* KeyValue.value */
    d = otlp_varint(d, any);
    switch (a->type) {
    case SL_OTLP_STR:
        *d++ = 0x0a; /* AnyValue.string_value */
        d = otlp_varint(d, vlen);
        return clean ? otlp_clean_to(d, a->v.s, a->len) : otlp_mem(d, a->v.s, vlen);
    case SL_OTLP_DOUBLE:
        *d++ = 0x21; /* AnyValue.double_value */
        return otlp_fixed64(d, num);
    case SL_OTLP_BOOL:
        *d++ = 0x10; /* AnyValue.bool_value */
        break;
    default:
        *d++ = 0x18; /* AnyValue.int_value */
        break;
    }
    return otlp_varint(d, num);
}


/*
 * The high bit of each byte of w that is not plain: not ASCII or NUL for
 * protobuf; for JSON also below 0x20, DEL, '"' or '\\' (a zero byte once
 * xor-ed with it). Exact for whether any byte is one.
 */
static inline uint64_t
otlp_word_bad(uint64_t w, bool json)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');

    if (!json) {
        return (w | ((w - ones) & ~w)) & highs;
    }
    /*
     * ASCII bytes from 0x20 to 0x7e: x + 0x60 reaches the high bit, x + 1
     * does not (a byte with its high bit set is bad already, and what its
     * carries do to the next byte cannot turn "bad" into "plain").
     */
    return (w | ~(w + ones * 0x60) | (w + ones) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
}


/*
 * Copies p[0..n) to d (room made by the caller) and tells whether it was
 * plain (otlp_word_bad). Up to 32 bytes move as overlapping words, checked
 * on the way: no call for the short strings nearly every value is.
 */
static inline bool
otlp_copy_plain(char *d, const char *p, size_t n, bool json)
{
    uint64_t w1, w2, w3, w4;
    uint32_t h1, h2;

    if (n == 0) {
        return true;
    }
    if (n < 4) {
        /* the first, middle and last byte cover 1 to 3; the rest of the word is plain */
        d[0] = p[0];
        d[n / 2] = p[n / 2];
        d[n - 1] = p[n - 1];
        w1 = 0x6161616161000000ull | (uint64_t) (unsigned char) p[0]
             | (uint64_t) (unsigned char) p[n / 2] << 8 | (uint64_t) (unsigned char) p[n - 1] << 16;
        return otlp_word_bad(w1, json) == 0;
    }
    if (n < 8) {
        memcpy(&h1, p, 4);
        memcpy(&h2, p + n - 4, 4);
        memcpy(d, &h1, 4);
        memcpy(d + n - 4, &h2, 4);
        return otlp_word_bad((uint64_t) h1 | (uint64_t) h2 << 32, json) == 0;
    }
    if (n <= 16) {
        memcpy(&w1, p, 8);
        memcpy(&w2, p + n - 8, 8);
        memcpy(d, &w1, 8);
        memcpy(d + n - 8, &w2, 8);
        return (otlp_word_bad(w1, json) | otlp_word_bad(w2, json)) == 0;
    }
    if (n <= 32) {
        memcpy(&w1, p, 8);
        memcpy(&w2, p + 8, 8);
        memcpy(&w3, p + n - 16, 8);
        memcpy(&w4, p + n - 8, 8);
        memcpy(d, &w1, 8);
        memcpy(d + 8, &w2, 8);
        memcpy(d + n - 16, &w3, 8);
        memcpy(d + n - 8, &w4, 8);
        return (otlp_word_bad(w1, json) | otlp_word_bad(w2, json) | otlp_word_bad(w3, json)
                | otlp_word_bad(w4, json))
               == 0;
    }
    otlp_mem(d, p, n);
    return json ? otlp_plain(p, n) : otlp_pb_plain(p, n);
}


/*
 * The attributes v[0..n) as KeyValue fields with tag tag. The usual ones
 * (an integer, a bool, a plain string under 76 bytes: every length one
 * byte) are written here without a call; the rest by otlp_pb_attr.
 */
static char *
otlp_pb_attrs(sl_buf_t *out, char *d, uint8_t tag, const sl_otlp_attr_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const sl_otlp_attr_t *a = &v[i];
        const sl_otlp_key_t *k = a->key;
        size_t klen = k->pb[1], len = a->len;
        uint64_t num;
        char *e;

        if (a->type == SL_OTLP_STR && len <= 75) {
            d = otlp_room_at(out, d, OTLP_KEY_COPY + 8 + len);
            memcpy(d + 2, k, OTLP_KEY_COPY); /* KeyValue.key: tag, length, name, padding */
            if (otlp_copy_plain(d + 8 + klen, a->v.s, len, false)) {
                d[0] = (char) tag;
                d[1] = (char) (2 + klen + 2 + 2 + len);
                e = d + 4 + klen;
                e[0] = 0x12; /* KeyValue.value */
                e[1] = (char) (2 + len);
                e[2] = 0x0a; /* AnyValue.string_value */
                e[3] = (char) len;
                d = e + 4 + len;
                continue;
            }
        } else if (a->type == SL_OTLP_INT || a->type == SL_OTLP_BOOL) {
            num = (uint64_t) a->v.i;
            d = otlp_room_at(out, d, OTLP_KEY_COPY + 16);
            memcpy(d + 2, k, OTLP_KEY_COPY);
            e = d + 4 + klen;
            e[0] = 0x12;
            e[2] = a->type == SL_OTLP_INT ? 0x18 : 0x10; /* AnyValue.int_value, bool_value */
            len = (size_t) (otlp_varint(e + 3, num) - (e + 3));
            e[1] = (char) (1 + len);
            d[0] = (char) tag;
            d[1] = (char) (2 + klen + 2 + 1 + len);
            d = e + 3 + len;
            continue;
        }
        d = otlp_pb_attr(out, d, tag, a);
    }
    return d;
}


static void
otlp_pb_span(sl_buf_t *out, const sl_otlp_span_t *s)
{
    size_t nlen = strlen(s->name), start, ev, mlen, st;
    uint32_t f = s->trace_flags;
    char *d;

    sl_buf_reserve(out, 128);
    d = out->p + out->len;
    *d++ = 0x12; /* ScopeSpans.spans */
    start = (size_t) (d - out->p);
    d += OTLP_LEN_ROOM;
    *d++ = 0x0a; /* trace_id */
    *d++ = 16;
    d = otlp_mem(d, s->trace_id, 16);
    *d++ = 0x12; /* span_id */
    *d++ = 8;
    d = otlp_mem(d, s->span_id, 8);
    if (s->has_parent) {
        *d++ = 0x22; /* parent_span_id */
        *d++ = 8;
        d = otlp_mem(d, s->parent_id, 8);
        f |= 0x100u | (s->parent_remote ? 0x200u : 0); /* parent remote: bits 8 and 9 */
    }
    if (s->name_tail.p == NULL) {
        d = otlp_pb_text(out, d, 0x2a, s->name, nlen); /* name */
    } else {
        /* "<name> <tail>": the tail may need cleaning, the name not */
        size_t tlen = otlp_pb_plain(s->name_tail.p, s->name_tail.len)
                              || otlp_valid(s->name_tail.p, s->name_tail.len)
                          ? s->name_tail.len
                          : otlp_clean_len(s->name_tail.p, s->name_tail.len);

        d = otlp_room_at(out, d, nlen + 1 + tlen + 11);
        *d++ = 0x2a;
        d = otlp_varint(d, nlen + 1 + tlen);
        d = otlp_mem(d, s->name, nlen);
        *d++ = ' ';
        d = tlen == s->name_tail.len ? otlp_mem(d, s->name_tail.p, tlen)
                                     : otlp_clean_to(d, s->name_tail.p, s->name_tail.len);
    }
    d = otlp_room_at(out, d, 32);
    *d++ = 0x30; /* kind */
    *d++ = (char) s->kind;
    *d++ = 0x39; /* start_time_unix_nano */
    d = otlp_fixed64(d, s->start_ns);
    *d++ = 0x41; /* end_time_unix_nano */
    d = otlp_fixed64(d, s->end_ns);
    d = otlp_pb_attrs(out, d, 0x4a, s->attrs, s->nattrs); /* attributes */
    for (size_t i = 0; i < s->nevents; i++) {
        const sl_otlp_event_t *e = &s->events[i];

        d = otlp_room_at(out, d, 16);
        *d++ = 0x5a; /* events */
        ev = (size_t) (d - out->p);
        d += OTLP_LEN_ROOM;
        *d++ = 0x09; /* time_unix_nano */
        d = otlp_fixed64(d, e->time_ns);
        d = otlp_pb_text(out, d, 0x12, e->name, strlen(e->name)); /* name */
        d = otlp_pb_attrs(out, d, 0x1a, e->attrs, e->nattrs);     /* attributes */
        d = otlp_pb_close(out, ev, d);
    }
    mlen = s->status_message != NULL ? strlen(s->status_message) : 0;
    st = 2 + (s->status_message != NULL ? 1 + otlp_vsize(mlen) + mlen : 0);
    d = otlp_room_at(out, d, st + 32);
    *d++ = 0x7a; /* status (its message is valid UTF-8: no cleaning, the size is known) */
    d = otlp_varint(d, st);
    if (s->status_message != NULL) {
        d = otlp_pb_str(d, 0x12, s->status_message, mlen);
    }
    *d++ = 0x18;
    *d++ = (char) s->status; /* 0, 1 or 2 */
    *d++ = (char) 0x85;      /* flags: field 16, fixed32, a two-byte tag */
    *d++ = 0x01;
    for (size_t i = 0; i < 4; i++) {
        *d++ = (char) (f >> (8 * i));
    }
    d = otlp_pb_close(out, start, d);
    out->len = (size_t) (d - out->p);
}


/* ---------------------------------------------------------------- JSON */

/* p[0..n) as the inside of a JSON string, with room made for it. */
static char *
otlp_json_text(sl_buf_t *out, char *d, const char *p, size_t n)
{
    if (otlp_plain(p, n)) {
        d = otlp_room_at(out, d, n + 32);
        return otlp_mem(d, p, n);
    }
    d = otlp_room_at(out, d, 6 * n + 32);
    return otlp_json_esc(d, p, n);
}


/* ,{"key":"KEY","value":{...}} (the comma unless first) */
static char *
otlp_json_attr(sl_buf_t *out, char *d, const sl_otlp_attr_t *a, bool first)
{
    const sl_otlp_key_t *k = a->key;
    int n;

    d = otlp_room_at(out, d, OTLP_KEY_COPY + 96);
    if (!first) {
        *d++ = ',';
    }
    otlp_lit(d, "{\"key\":\"");
    memcpy(d, k->name, OTLP_KEY_COPY); /* the name and padding, overwritten */
    d += k->pb[1];
    otlp_lit(d, "\",\"value\":");
    switch (a->type) {
    case SL_OTLP_STR:
        otlp_lit(d, "{\"stringValue\":\"");
        d = otlp_json_text(out, d, a->v.s, a->len);
        otlp_lit(d, "\"}}");
        break;
    case SL_OTLP_INT:
        otlp_lit(d, "{\"intValue\":\"");
        if (a->v.i < 0) {
            *d++ = '-';
        }
        d = otlp_json_u64(d, a->v.i < 0 ? (uint64_t) 0 - (uint64_t) a->v.i : (uint64_t) a->v.i);
        otlp_lit(d, "\"}}");
        break;
    case SL_OTLP_DOUBLE:
        otlp_lit(d, "{\"doubleValue\":");
        n = snprintf(d, 32, "%.17g", a->v.d);
        d += n > 0 && n < 32 ? n : 0;
        otlp_lit(d, "}}");
        break;
    default:
        if (a->v.i != 0) {
            otlp_lit(d, "{\"boolValue\":true}}");
        } else {
            otlp_lit(d, "{\"boolValue\":false}}");
        }
        break;
    }
    return d;
}


/*
 * The attributes v[0..n) joined by commas. Plain strings up to 32 bytes and
 * integers are written here without a call; the rest by otlp_json_attr.
 */
static char *
otlp_json_attrs(sl_buf_t *out, char *d, const sl_otlp_attr_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const sl_otlp_attr_t *a = &v[i];
        size_t len = a->len;
        char *e;

        if (a->type == SL_OTLP_STR && len <= 32) {
            d = otlp_room_at(out, d, OTLP_KEY_COPY + 64 + len);
            e = d + (i > 0 ? 1 : 0);
            otlp_lit(e, "{\"key\":\"");
            memcpy(e, a->key->name, OTLP_KEY_COPY); /* the name and padding, overwritten */
            e += a->key->pb[1];
            otlp_lit(e, "\",\"value\":{\"stringValue\":\"");
            if (otlp_copy_plain(e, a->v.s, len, true)) {
                e += len;
                otlp_lit(e, "\"}}");
                if (i > 0) {
                    *d = ',';
                }
                d = e;
                continue;
            }
        } else if (a->type == SL_OTLP_INT) {
            d = otlp_room_at(out, d, OTLP_KEY_COPY + 64);
            if (i > 0) {
                *d++ = ',';
            }
            otlp_lit(d, "{\"key\":\"");
            memcpy(d, a->key->name, OTLP_KEY_COPY);
            d += a->key->pb[1];
            otlp_lit(d, "\",\"value\":{\"intValue\":\"");
            if (a->v.i < 0) {
                *d++ = '-';
            }
            d = otlp_json_u64(d, a->v.i < 0 ? (uint64_t) 0 - (uint64_t) a->v.i : (uint64_t) a->v.i);
            otlp_lit(d, "\"}}");
            continue;
        }
        d = otlp_json_attr(out, d, a, i == 0);
    }
    return d;
}


static void
otlp_json_span(sl_buf_t *out, const sl_otlp_span_t *s)
{
    uint32_t f = s->trace_flags;
    char *d;

    sl_buf_reserve(out, 256);
    d = out->p + out->len;
    otlp_lit(d, "{\"traceId\":");
    d = otlp_json_hex(d, s->trace_id, 16);
    otlp_lit(d, ",\"spanId\":");
    d = otlp_json_hex(d, s->span_id, 8);
    if (s->has_parent) {
        otlp_lit(d, ",\"parentSpanId\":");
        d = otlp_json_hex(d, s->parent_id, 8);
        f |= 0x100u | (s->parent_remote ? 0x200u : 0);
    }
    otlp_lit(d, ",\"name\":\"");
    d = otlp_json_text(out, d, s->name, strlen(s->name));
    if (s->name_tail.p != NULL) {
        const char *p = s->name_tail.p, *end = p + s->name_tail.len, *z;

        *d++ = ' ';
        /* a NUL in the tail is U+FFFD, as the protobuf encoding cleans it */
        while (p < end && (z = memchr(p, '\0', (size_t) (end - p))) != NULL) {
            d = otlp_json_text(out, d, p, (size_t) (z - p));
            d = otlp_room_at(out, d, 8);
            otlp_lit(d, "\\ufffd");
            p = z + 1;
        }
        d = otlp_json_text(out, d, p, (size_t) (end - p));
    }
    d = otlp_room_at(out, d, 160);
    otlp_lit(d, "\",\"kind\":");
    d = otlp_json_u64(d, (uint64_t) s->kind);
    otlp_lit(d, ",\"startTimeUnixNano\":\"");
    d = otlp_json_u64(d, s->start_ns);
    otlp_lit(d, "\",\"endTimeUnixNano\":\"");
    d = otlp_json_u64(d, s->end_ns);
    otlp_lit(d, "\",\"flags\":");
    d = otlp_json_u64(d, f);
    otlp_lit(d, ",\"attributes\":[");
    d = otlp_json_attrs(out, d, s->attrs, s->nattrs);
    d = otlp_room_at(out, d, 32);
    *d++ = ']';
    if (s->nevents > 0) {
        otlp_lit(d, ",\"events\":[");
        for (size_t i = 0; i < s->nevents; i++) {
            const sl_otlp_event_t *e = &s->events[i];

            d = otlp_room_at(out, d, 64);
            if (i > 0) {
                *d++ = ',';
            }
            otlp_lit(d, "{\"timeUnixNano\":\"");
            d = otlp_json_u64(d, e->time_ns);
            otlp_lit(d, "\",\"name\":\"");
            d = otlp_json_text(out, d, e->name, strlen(e->name));
            otlp_lit(d, "\",\"attributes\":[");
            d = otlp_json_attrs(out, d, e->attrs, e->nattrs);
            d = otlp_room_at(out, d, 32);
            otlp_lit(d, "]}");
        }
        *d++ = ']';
    }
    d = otlp_room_at(out, d, 64);
    otlp_lit(d, ",\"status\":{\"code\":");
    d = otlp_json_u64(d, (uint64_t) s->status);
    if (s->status_message != NULL) {
        otlp_lit(d, ",\"message\":\"");
        d = otlp_json_text(out, d, s->status_message, strlen(s->status_message));
        *d++ = '"';
    }
    otlp_lit(d, "}}");
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


#define OTLP_JSON_HEAD1 "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
#define OTLP_JSON_HEAD2 "]},\"scopeSpans\":[{\"scope\":{\"name\":\"" OTLP_SCOPE "\"},\"spans\":["
#define OTLP_JSON_TAIL  "]}]}]}"
#define OTLP_PB_SCOPE   (2 + sizeof(OTLP_SCOPE) - 1) /* InstrumentationScope{name} */


size_t
sl_otlp_export_head_max(const sl_otlp_attrs_t *resource)
{
    if (!resource->protobuf) {
        return sizeof(OTLP_JSON_HEAD1) - 1 + resource->len + sizeof(OTLP_JSON_HEAD2) - 1;
    }
    /* three tags and lengths, the resource, the scope's tag, length and body */
    return 3 * 11 + resource->len + 2 + OTLP_PB_SCOPE;
}


size_t
sl_otlp_export_head(char *end, const sl_otlp_attrs_t *resource, size_t len)
{
    size_t scope_spans, res = resource->len, resource_spans, n;
    char *d;

    if (!resource->protobuf) {
        n = sl_otlp_export_head_max(resource);
        d = end - n;
        otlp_lit(d, OTLP_JSON_HEAD1);
        d = otlp_mem(d, resource->p, res);
        otlp_lit(d, OTLP_JSON_HEAD2);
        return n;
    }
    scope_spans = 2 + OTLP_PB_SCOPE + len;
    resource_spans = 1 + otlp_vsize(res) + res + 1 + otlp_vsize(scope_spans) + scope_spans;
    n = 1 + otlp_vsize(resource_spans) + resource_spans - len;
    d = end - n;
    *d++ = 0x0a; /* ExportTraceServiceRequest.resource_spans */
    d = otlp_varint(d, resource_spans);
    *d++ = 0x0a; /* ResourceSpans.resource */
    d = otlp_varint(d, res);
    d = otlp_mem(d, resource->p, res);
    *d++ = 0x12; /* ResourceSpans.scope_spans */
    d = otlp_varint(d, scope_spans);
    *d++ = 0x0a; /* ScopeSpans.scope */
    d = otlp_varint(d, OTLP_PB_SCOPE);
    d = otlp_pb_str(d, 0x0a, OTLP_SCOPE, sizeof(OTLP_SCOPE) - 1);
    return n;
}


void
sl_otlp_export_tail(sl_buf_t *out, bool protobuf)
{
    if (!protobuf) {
        sl_buf_append(out, OTLP_JSON_TAIL, sizeof(OTLP_JSON_TAIL) - 1);
    }
}


void
sl_otlp_encode_export(sl_buf_t *out, const sl_otlp_attrs_t *resource, const char *spans, size_t len)
{
    size_t max = sl_otlp_export_head_max(resource), n;
    char *d;

    sl_buf_reserve(out, max + len);
    d = out->p + out->len;
    n = sl_otlp_export_head(d + max, resource, len);
    memmove(d, d + max - n, n);
    out->len += n;
    sl_buf_append(out, spans, len);
    sl_otlp_export_tail(out, resource->protobuf);
}
