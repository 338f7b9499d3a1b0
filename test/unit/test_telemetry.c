/*
 * Unit tests for the tracing pieces: W3C traceparent parsing and formatting,
 * trace sampling and ids (core/gateway/trace.c), the OTLP encodings
 * (core/admin/otlp.c: protobuf bytes checked field by field against the
 * opentelemetry-proto numbers, the JSON mapping read back with jansson),
 * and telemetry: with the OTEL_* environment (core/conf/conf_telemetry.c:
 * what turns export on, which source wins, bad values refused without
 * echoing a header value).
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/admin/otlp.h"
#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/conf/conf.h"
#include "core/gateway/trace.h"

static const char *const test_otel_vars[] = {
    "OTEL_SDK_DISABLED",           "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",  "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",  "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_SERVICE_NAME",           "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",         "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",     "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
};

static sl_str_t
S(const char *s)
{
    return (sl_str_t){ s, strlen(s) };
}


static void
test_traceparent(void **state)
{
    sl_trace_ctx_t c;
    char out[SL_TRACE_HEADER_LEN + 1];

    (void) state;
    assert_int_equal(
        sl_trace_parse(S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), &c), 0);
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, 1);
    sl_trace_format(c.trace_id, c.span_id, 0, out);
    assert_string_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");

    /* a later version may add fields after a dash */
    assert_int_equal(
        sl_trace_parse(S("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what"), &c), 0);
    /* refused: upper case, version ff, all-zero ids, extra data on 00, short, bad separators */
    assert_int_equal(
        sl_trace_parse(S("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), &c),
        SL_EPARSE);
    assert_int_equal(
        sl_trace_parse(S("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), &c),
        SL_EPARSE);
    assert_int_equal(
        sl_trace_parse(S("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), &c),
        SL_EPARSE);
    assert_int_equal(
        sl_trace_parse(S("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), &c),
        SL_EPARSE);
    assert_int_equal(
        sl_trace_parse(S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"), &c),
        SL_EPARSE);
    assert_int_equal(
        sl_trace_parse(S("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"), &c),
        SL_EPARSE);
    assert_int_equal(sl_trace_parse(S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"), &c),
                     SL_EPARSE);
    assert_int_equal(
        sl_trace_parse(S("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), &c),
        SL_EPARSE);
    assert_int_equal(
        sl_trace_parse(S("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"), &c),
        SL_EPARSE);
}


static void
test_sampling_and_ids(void **state)
{
    uint8_t low[16] = { 0 }, high[16], a[16], b[16];
    int n = 0;

    (void) state;
    memset(high, 0xff, sizeof(high));
    low[0] = 1;
    assert_true(sl_trace_sample(low, 1.0));
    assert_false(sl_trace_sample(high, 0.0));
    assert_true(sl_trace_sample(low, 0.5));   /* its last eight bytes are 0 */
    assert_false(sl_trace_sample(high, 0.5)); /* all ones: above any share but 1 */
    assert_true(sl_trace_sample(high, 1.0));
    /* about the share asked for, and the same answer for the same id */
    for (int i = 0; i < 4000; i++) {
        sl_trace_new_id(a, 16);
        n += sl_trace_sample(a, 0.25) ? 1 : 0;
        assert_int_equal(sl_trace_sample(a, 0.25), sl_trace_sample(a, 0.25));
    }
    assert_in_range(n, 800, 1200);
    sl_trace_new_id(a, 16);
    sl_trace_new_id(b, 16);
    assert_memory_not_equal(a, b, 16);
}


/* A forked child (a worker) reseeds: its next id is not its parent's next id. */
static void
test_ids_after_fork(void **state)
{
    uint8_t mine[16], child[16];
    int fds[2];
    pid_t pid;
    int st;

    (void) state;
    sl_trace_new_id(mine, 16); /* seeded before the fork */
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sl_trace_new_id(child, 16);
        _exit(write(fds[1], child, 16) == 16 ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], child, 16), 16);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sl_trace_new_id(mine, 16);
    assert_memory_not_equal(mine, child, 16);
}


static const sl_otlp_key_t test_k = SL_OTLP_KEY("k");
static const sl_otlp_key_t test_i = SL_OTLP_KEY("i");
static const sl_otlp_key_t test_d = SL_OTLP_KEY("d");
static const sl_otlp_key_t test_b = SL_OTLP_KEY("b");
static const sl_otlp_key_t test_n = SL_OTLP_KEY("n");
static const sl_otlp_key_t test_bad = SL_OTLP_KEY("bad");


/* A span with one of everything, ids 0x01.. and 0x02.. */
static void
test_span(sl_pool_t *pool, sl_otlp_span_t *s, bool protobuf)
{
    sl_otlp_span_init(s, protobuf);
    memset(s->trace_id, 0x01, 16);
    memset(s->span_id, 0x02, 8);
    s->name = "s";
    s->kind = SL_OTLP_KIND_SERVER;
    s->start_ns = 1;
    s->end_ns = 2;
    s->trace_flags = 1;
    (void) pool;
    sl_otlp_span_str(s, &test_k, "v");
}


/* The Span message, byte by byte, as opentelemetry-proto numbers its fields. */
static void
test_protobuf_span(void **state)
{
    static const uint8_t want[] = {
        0x12, 71, /* ScopeSpans.spans, 71 bytes */
        0x0a, 16,   1,    1, 1,   1,    1, 1,    1, 1,   1, 1, 1, 1, 1, 1, 1, 1, /* trace_id */
        0x12, 8,    2,    2, 2,   2,    2, 2,    2, 2,                           /* span_id */
        0x2a, 1,    's',                                                         /* name */
        0x30, 2,                                                                 /* kind SERVER */
        0x39, 1,    0,    0, 0,   0,    0, 0,    0,      /* start_time_unix_nano (fixed64) */
        0x41, 2,    0,    0, 0,   0,    0, 0,    0,      /* end_time_unix_nano */
        0x4a, 8,    0x0a, 1, 'k', 0x12, 3, 0x0a, 1, 'v', /* attributes: KeyValue{k, AnyValue{v}} */
        0x7a, 2,    0x18, 0,                             /* status {code UNSET} */
        0x85, 0x01, 1,    0, 0,   0,                     /* flags (field 16, fixed32): sampled */
    };
    sl_pool_t *pool = sl_pool_create(1024);
    sl_otlp_span_t s;
    sl_buf_t b = SL_BUF_INIT;

    (void) state;
    test_span(pool, &s, true);
    sl_otlp_encode_span(&b, &s);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.p, want, sizeof(want));

    /* a parent, an int, a double, a bool, a negative int, an event, an error status */
    sl_buf_clear(&b);
    memset(s.parent_id, 0x03, 8);
    s.has_parent = true;
    s.parent_remote = true;
    sl_otlp_span_int(&s, &test_i, -1);
    sl_otlp_span_double(&s, &test_d, 0.5);
    sl_otlp_span_bool(&s, &test_b, true);
    sl_otlp_event(pool, &s, "e", 3);
    s.status = SL_OTLP_STATUS_ERROR;
    s.status_message = "m";
    sl_otlp_encode_span(&b, &s);
    /* the length in front matches what follows (two-byte varint: > 127) */
    assert_int_equal(((uint8_t) b.p[1] & 0x7f) | ((uint8_t) b.p[2] << 7), b.len - 3);
    /* int64 -1 is ten varint bytes: 0xff x9, 0x01 */
    assert_non_null(
        memmem(b.p, b.len, "\x0a\x01i\x12\x0b\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 16));
    /* double 0.5 as fixed64 */
    assert_non_null(memmem(b.p, b.len, "\x21\x00\x00\x00\x00\x00\x00\xe0\x3f", 9));
    /* parent_span_id (field 4), the event (11: time, name), status message and code ERROR */
    assert_non_null(memmem(b.p, b.len, "\x22\x08\x03\x03\x03\x03\x03\x03\x03\x03", 10));
    assert_non_null(
        memmem(b.p, b.len, "\x5a\x0c\x09\x03\x00\x00\x00\x00\x00\x00\x00\x12\x01\x65", 14));
    assert_non_null(memmem(b.p, b.len, "\x7a\x05\x12\x01m\x18\x02", 7));
    /* flags: sampled, has-is-remote, is-remote */
    assert_memory_equal(b.p + b.len - 6, "\x85\x01\x01\x03\x00\x00", 6);
    sl_buf_free(&b);
    sl_pool_destroy(pool);
}


static void
test_protobuf_export(void **state)
{
    sl_pool_t *pool = sl_pool_create(1024);
    sl_otlp_attrs_t res = { 0 };
    sl_otlp_span_t s;
    sl_buf_t spans = SL_BUF_INIT, b = SL_BUF_INIT;

    (void) state;
    test_span(pool, &s, true);
    sl_otlp_encode_span(&spans, &s);
    sl_otlp_attrs_init(&res, true, 1);
    sl_otlp_str(pool, &res, "service.name", "x");
    sl_otlp_encode_export(&b, &res, spans.p, spans.len);
    /* resource_spans(108) { resource(21) {attributes(19)}, scope_spans(83) {scope(8), spans} } */
    assert_int_equal(b.len, 110);
    assert_memory_equal(b.p, "\x0a\x6c\x0a\x15\x0a\x13\x0a\x0cservice.name\x12\x03\x0a\x01x", 25);
    assert_memory_equal(b.p + 25, "\x12\x53\x0a\x08\x0a\x06sluice", 12);
    assert_memory_equal(b.p + 37, spans.p, spans.len);

    /* a name from outside that is not UTF-8 is cleaned: KeyValue{key "a\ufffd", int 1} */
    sl_otlp_attrs_init(&res, true, 1);
    sl_otlp_int(pool, &res, sl_otlp_key(pool, "a\xff"), 1);
    assert_int_equal(res.len, 12);
    assert_memory_equal(res.p,
                        "\x0a\x0a\x0a\x04"
                        "a\xef\xbf\xbd"
                        "\x12\x02\x18\x01",
                        12);
    sl_buf_free(&spans);
    sl_buf_free(&b);
    sl_pool_destroy(pool);
}


static void
test_json(void **state)
{
    sl_pool_t *pool = sl_pool_create(1024);
    sl_otlp_attrs_t res = { 0 };
    sl_otlp_span_t s;
    sl_buf_t spans = SL_BUF_INIT, b = SL_BUF_INIT;
    json_t *doc, *span, *attrs;
    json_error_t jerr;

    (void) state;
    test_span(pool, &s, false);
    memset(s.parent_id, 0xab, 8);
    s.has_parent = true;
    s.start_ns = 1700000000123456789ull;
    sl_otlp_span_int(&s, &test_n, 12345678901234ll);
    sl_otlp_span_strn(&s, &test_bad, (sl_str_t){ "a\xff\"b", 4 });
    sl_otlp_event(pool, &s, "ev", 5);
    s.status = SL_OTLP_STATUS_ERROR;
    sl_otlp_encode_span(&spans, &s);
    sl_buf_append(&spans, ",", 1);
    sl_otlp_encode_span(&spans, &s);
    sl_otlp_attrs_init(&res, false, 1);
    sl_otlp_str(pool, &res, "service.name", "x");
    sl_otlp_str(pool, &res, sl_otlp_key(pool, "a\"b\\\xff\x01"), "y"); /* from outside */
    sl_otlp_encode_export(&b, &res, spans.p, spans.len);
    doc = json_loadb(b.p, b.len, 0, &jerr);
    assert_non_null(doc);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(
                json_object_get(
                    json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
                                    "resource"),
                    "attributes"),
                1),
            "key")),
        "a_b_\xef\xbf\xbd_");
    assert_int_equal(
        json_array_size(json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans")),
        2);
    span = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans"),
        0);
    assert_string_equal(json_string_value(json_object_get(span, "traceId")),
                        "01010101010101010101010101010101");
    assert_string_equal(json_string_value(json_object_get(span, "spanId")), "0202020202020202");
    assert_string_equal(json_string_value(json_object_get(span, "parentSpanId")),
                        "abababababababab");
    assert_int_equal(json_integer_value(json_object_get(span, "kind")), 2);
    assert_string_equal(json_string_value(json_object_get(span, "startTimeUnixNano")),
                        "1700000000123456789");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(span, "status"), "code")),
                     2);
    attrs = json_object_get(span, "attributes");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(attrs, 1), "value"), "intValue")),
                        "12345678901234");
    /* not UTF-8: replaced, still escaped */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(attrs, 2), "value"), "stringValue")),
                        "a\xef\xbf\xbd\"b");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(span, "events"), 0), "name")),
                        "ev");
    json_decref(doc);
    sl_buf_free(&spans);
    sl_buf_free(&b);
    sl_pool_destroy(pool);
}


/*
 * The eight-bytes-at-a-time fast path: one byte that needs escaping (or is
 * not UTF-8) at every position of a 17-byte string, in both encodings.
 */
static void
test_plain_fast_path(void **state)
{
    static const unsigned char odd[] = { '"', '\\', 0x01, 0x1f, 0x7f, 0xff, 0x80 };
    sl_pool_t *pool = sl_pool_create(1024);

    (void) state;
    for (size_t k = 0; k < sizeof(odd); k++) {
        for (size_t i = 0; i < 17; i++) {
            char v[17];
            sl_otlp_attrs_t a;
            sl_buf_t b = SL_BUF_INIT;
            json_t *doc;
            json_error_t jerr;
            const char *got;

            memset(v, 'a', sizeof(v));
            v[i] = (char) odd[k];
            sl_otlp_attrs_init(&a, false, 1);
            sl_otlp_strn(pool, &a, "k", (sl_str_t){ v, sizeof(v) });
            sl_buf_puts(&b, "[");
            sl_buf_append(&b, a.p, a.len);
            sl_buf_puts(&b, "]");
            doc = json_loadb(b.p, b.len, 0, &jerr);
            assert_non_null(doc);
            got = json_string_value(
                json_object_get(json_object_get(json_array_get(doc, 0), "value"), "stringValue"));
            if (odd[k] < 0x80) {
                assert_int_equal(strlen(got), 17);
                assert_memory_equal(got, v, 17); /* escaped and back */
            } else {
                assert_int_equal(strlen(got), 19); /* U+FFFD for the byte */
                assert_memory_equal(got + i, "\xef\xbf\xbd", 3);
            }
            json_decref(doc);
            sl_buf_free(&b);

            /* protobuf: bytes as they are when valid UTF-8, else U+FFFD */
            sl_otlp_attrs_init(&a, true, 1);
            sl_otlp_strn(pool, &a, "k", (sl_str_t){ v, sizeof(v) });
            /* tag, len, key(3), value tag, len, string tag, len, string */
            assert_int_equal(a.len, 9 + (odd[k] < 0x80 ? 17 : 19));
            if (odd[k] < 0x80) {
                assert_memory_equal(a.p + 9, v, 17);
            } else {
                assert_memory_equal(a.p + 9 + i, "\xef\xbf\xbd", 3);
            }
        }
    }
    sl_pool_destroy(pool);
}


/*
 * A span's attributes, written by the encoders' fast paths (strings up to
 * 75 bytes checked and copied as words, integers without a call), are the
 * bytes the reference encoder of an attribute list writes: strings of every
 * length from 0 to 80 with a byte of each kind (plain or not) at each
 * position, integers and bools of every varint length, in protobuf and JSON.
 */
static void
test_span_attrs_match_list(void **state)
{
    static const unsigned char odd[] = { 0,    '"',  '\\', 0x01, 0x1f, 0x20, 0x21, 0x23,
                                         0x5b, 0x5d, 0x7e, 0x7f, 0xff, 0x80, 0xc3 };
    static const int64_t ints[] = { 0,   1,         127,      128,
                                    200, 16383,     16384,    1700000000123456789ll,
                                    -1,  INT64_MIN, INT64_MAX };
    sl_pool_t *pool = sl_pool_create(1024);

    (void) state;
    for (int pb = 0; pb < 2; pb++) {
        for (size_t n = 0; n <= 80; n++) {
            for (size_t k = 0; k <= sizeof(odd); k++) {
                for (size_t i = 0; i < (k < sizeof(odd) ? n : 1); i++) {
                    char v[80];
                    sl_otlp_attrs_t ref;
                    sl_otlp_span_t s;
                    sl_buf_t b = SL_BUF_INIT;

                    for (size_t j = 0; j < n; j++) {
                        v[j] = (char) ('a' + j % 26);
                    }
                    if (k < sizeof(odd)) {
                        v[i] = (char) odd[k];
                    }
                    sl_otlp_attrs_init(&ref, pb, 9); /* Span.attributes */
                    sl_otlp_strn(pool, &ref, "k", (sl_str_t){ v, n });
                    test_span(pool, &s, pb);
                    s.nattrs = 0;
                    sl_otlp_span_strn(&s, &test_k, (sl_str_t){ v, n });
                    sl_otlp_encode_span(&b, &s);
                    assert_non_null(memmem(b.p, b.len, ref.p, ref.len));
                    sl_buf_free(&b);
                }
            }
        }
        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
            sl_otlp_attrs_t ref;
            sl_otlp_span_t s;
            sl_buf_t b = SL_BUF_INIT;

            sl_otlp_attrs_init(&ref, pb, 9);
            sl_otlp_int(pool, &ref, "i", ints[i]);
            sl_otlp_bool(pool, &ref, "b", ints[i] != 0);
            test_span(pool, &s, pb);
            s.nattrs = 0;
            sl_otlp_span_int(&s, &test_i, ints[i]);
            sl_otlp_span_bool(&s, &test_b, ints[i] != 0);
            sl_otlp_encode_span(&b, &s);
            assert_non_null(memmem(b.p, b.len, ref.p, ref.len));
            sl_buf_free(&b);
        }
    }
    sl_pool_destroy(pool);
}


/*
 * A span's name with a tail from outside (the model a client asked for):
 * "<name> <tail>", the tail cleaned alike in both encodings (a NUL and a
 * byte that starts no character are U+FFFD), escaped for JSON.
 */
static void
test_span_name_tail(void **state)
{
    static const char want[] = "chat a\xef\xbf\xbd\"b\xef\xbf\xbd";
    sl_pool_t *pool = sl_pool_create(1024);
    sl_otlp_span_t s;
    sl_buf_t b = SL_BUF_INIT;
    json_t *doc;
    json_error_t jerr;

    (void) state;
    test_span(pool, &s, true);
    s.name = "chat";
    s.name_tail = (sl_str_t){ "a\0\"b\xff", 5 };
    sl_otlp_encode_span(&b, &s);
    assert_non_null(memmem(b.p, b.len, "\x2a\x0e", 2)); /* name: 14 bytes */
    assert_non_null(memmem(b.p, b.len, want, sizeof(want) - 1));
    sl_buf_free(&b);

    test_span(pool, &s, false);
    s.name = "chat";
    s.name_tail = (sl_str_t){ "a\0\"b\xff", 5 };
    sl_otlp_encode_span(&b, &s);
    doc = json_loadb(b.p, b.len, 0, &jerr);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "name")), want);
    json_decref(doc);
    sl_buf_free(&b);
    sl_pool_destroy(pool);
}


static void
clear_env(void)
{
    for (size_t i = 0; i < sizeof(test_otel_vars) / sizeof(test_otel_vars[0]); i++) {
        unsetenv(test_otel_vars[i]);
    }
}


/* Loads yaml with the environment as set; returns the code, *out on success. */
static int
load(const char *yaml, sl_conf_t **out, char *err, size_t errlen)
{
    char path[] = "/tmp/sl-tel-XXXXXX";
    int fd = mkstemp(path);
    int rc;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t) strlen(yaml));
    close(fd);
    rc = sl_conf_load(path, out, err, errlen);
    unlink(path);
    return rc;
}


static void
test_conf_env(void **state)
{
    sl_conf_t *conf = NULL;
    char err[512];
    const sl_otlp_conf_t *o;

    (void) state;
    clear_env();
    /* nothing set: off */
    assert_int_equal(load("{}\n", &conf, err, sizeof(err)), 0);
    assert_false(conf->otlp.enabled);
    sl_conf_destroy(conf);

    /* the standard variables alone turn it on */
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base/", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20tok , x-b=2,", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-b=1", 1);
    setenv("OTEL_SERVICE_NAME", "gw", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=ignored", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "250", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3000", 1);
    assert_int_equal(load("{}\n", &conf, err, sizeof(err)), 0);
    o = &conf->otlp;
    assert_true(o->enabled);
    assert_true(o->protobuf); /* the OTLP/HTTP default */
    assert_string_equal(o->endpoint, "http://collector:4318/base/v1/traces");
    assert_string_equal(o->path, "/base/v1/traces");
    assert_string_equal(o->collector.host, "collector");
    assert_int_equal(o->collector.port, 4318);
    assert_int_equal(o->collector.nheaders, 2);
    assert_string_equal(o->collector.headers[0].name, "x-b"); /* the traces variable wins */
    assert_string_equal(o->collector.headers[0].value, "1");
    assert_string_equal(o->collector.headers[1].name, "Authorization");
    assert_string_equal(o->collector.headers[1].value, "Bearer tok");
    assert_string_equal(o->service_name, "gw");
    assert_int_equal(o->nresource, 1);
    assert_string_equal(o->resource[0].name, "deployment.environment");
    assert_true(o->parent_based);
    assert_true(o->sampling > 0.2499 && o->sampling < 0.2501);
    assert_int_equal(o->flush_interval, 250);
    assert_int_equal(o->queue_size, 100);
    assert_int_equal(o->batch_size, 10);
    assert_int_equal(o->timeout, 3000);
    assert_int_equal(o->collector.total_timeout, 3000);
    sl_conf_destroy(conf);

    /* the signal's own endpoint is used as it is; the file wins key by key */
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example:9/x", 1);
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", 1);
    assert_int_equal(load("telemetry:\n  otlp:\n    protocol: http/json\n    sampling: 1\n"
                          "    service_name: file\n",
                          &conf, err, sizeof(err)),
                     0);
    o = &conf->otlp;
    assert_string_equal(o->endpoint, "https://t.example:9/x");
    assert_true(o->collector.tls);
    assert_false(o->protobuf);
    assert_true(o->sampling > 0.999);
    assert_string_equal(o->service_name, "file");
    sl_conf_destroy(conf);
    assert_int_equal(
        load("telemetry:\n  otlp:\n    endpoint: http://127.0.0.1:4318\n", &conf, err, sizeof(err)),
        0);
    assert_string_equal(conf->otlp.endpoint, "http://127.0.0.1:4318/v1/traces");
    sl_conf_destroy(conf);

    /* off: in the file, or by the SDK switches */
    assert_int_equal(load("telemetry: {otlp: {enabled: false}}\n", &conf, err, sizeof(err)), 0);
    assert_false(conf->otlp.enabled);
    sl_conf_destroy(conf);
    setenv("OTEL_SDK_DISABLED", "true", 1);
    assert_int_equal(load("{}\n", &conf, err, sizeof(err)), 0);
    assert_false(conf->otlp.enabled);
    sl_conf_destroy(conf);
    unsetenv("OTEL_SDK_DISABLED");
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    assert_int_equal(load("{}\n", &conf, err, sizeof(err)), 0);
    assert_false(conf->otlp.enabled);
    sl_conf_destroy(conf);
    clear_env();

    /* the file's headers are secret references, resolved at load; a variable adds only others */
    setenv("SL_TEST_OTLP_AUTH", "Bearer from-env", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=ignored,x-c=3", 1);
    assert_int_equal(
        load("telemetry:\n  otlp:\n    headers: {Authorization: env:SL_TEST_OTLP_AUTH}\n", &conf,
             err, sizeof(err)),
        0);
    o = &conf->otlp;
    assert_int_equal(o->collector.nheaders, 2);
    assert_string_equal(o->collector.headers[0].name, "Authorization");
    assert_string_equal(o->collector.headers[0].value, "Bearer from-env");
    assert_string_equal(o->collector.headers[1].name, "x-c");
    sl_conf_destroy(conf);
    unsetenv("SL_TEST_OTLP_AUTH");
    clear_env();

    /* a file mapping alone: on, at the default endpoint */
    assert_int_equal(load("telemetry:\n  otlp: {}\n", &conf, err, sizeof(err)), 0);
    assert_true(conf->otlp.enabled);
    assert_string_equal(conf->otlp.endpoint, "http://localhost:4318/v1/traces");
    sl_conf_destroy(conf);
}


static void
test_conf_errors(void **state)
{
    static const struct {
        const char *var;
        const char *value;
        const char *yaml;
        const char *msg;
    } cases[] = {
        { "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "{}\n",
          "environment variable OTEL_EXPORTER_OTLP_PROTOCOL: \"grpc\" is not supported" },
        { "OTEL_TRACES_EXPORTER", "zipkin", "{}\n", "\"zipkin\" is not supported" },
        { "OTEL_TRACES_SAMPLER_ARG", "2", "{}\n", "\"2\" is not a share from 0 to 1" },
        { "OTEL_BSP_MAX_QUEUE_SIZE", "-3", "{}\n", "is not a whole number" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x", "{}\n", "must start with http:// or https://" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:pw@x", "{}\n",
          "must not contain user info (use OTEL_EXPORTER_OTLP_HEADERS)" },
        { NULL, NULL, "telemetry: {otlp: {protocol: grpc}}\n",
          "invalid protocol \"grpc\" (use http/protobuf or http/json)" },
        { NULL, NULL, "telemetry: {otlp: {sampling: 1.5}}\n", "invalid sampling \"1.5\"" },
        { NULL, NULL, "telemetry: {otlp: {queue_size: 2, batch_size: 3}}\n",
          "batch_size (3) must not exceed queue_size (2)" },
        { NULL, NULL, "telemetry: {otlp: {headers: {x-a: secret-literal}}}\n",
          "telemetry.otlp header must be a reference" },
        { NULL, NULL, "telemetry: {otlp: {wat: 1}}\n", "unknown key \"wat\" in telemetry.otlp" },
        { NULL, NULL, "telemetry: {metrics: 1}\n", "unknown key \"metrics\" in telemetry" },
        { NULL, NULL, "server: {access_log_format: xml}\n",
          "invalid access_log_format \"xml\" (use text or json)" },
    };
    sl_conf_t *conf = NULL;
    char err[512];

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear_env();
        if (cases[i].var != NULL) {
            setenv(cases[i].var, cases[i].value, 1);
            if (strcmp(cases[i].var, "OTEL_TRACES_SAMPLER_ARG") == 0) {
                setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1); /* else the argument is unused */
            }
            if (strncmp(cases[i].var, "OTEL_EXPORTER_OTLP_ENDPOINT", 27) != 0) {
                setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
            }
        }
        conf = NULL;
        if (load(cases[i].yaml, &conf, err, sizeof(err)) == 0) {
            fail_msg("case %zu loaded, expected \"%s\"", i, cases[i].msg);
        }
        if (strstr(err, cases[i].msg) == NULL) {
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].msg);
        }
        assert_null(conf);
    }
    /* a header value never shows in a message */
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%0Atopsecret", 1);
    assert_int_equal(load("{}\n", &conf, err, sizeof(err)), SL_ECONF);
    assert_null(strstr(err, "topsecret"));
    assert_non_null(strstr(err, "control characters"));
    clear_env();
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent),
        cmocka_unit_test(test_sampling_and_ids),
        cmocka_unit_test(test_protobuf_span),
        cmocka_unit_test(test_protobuf_export),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_conf_env),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_ids_after_fork),
        cmocka_unit_test(test_plain_fast_path),
        cmocka_unit_test(test_span_attrs_match_list),
        cmocka_unit_test(test_span_name_tail),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
