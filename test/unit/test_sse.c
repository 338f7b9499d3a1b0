/*
 * Unit tests for core/base/sse.c: OpenAI- and Anthropic-shaped streams, every way
 * of splitting a stream across feeds, the three line endings (a CRLF split
 * between feeds included), comments, multi-line data, the BOM, the id and
 * event field rules, the max_event limit and callback stop codes. Events are
 * recorded as "[event|id]data" lines so whole streams compare as one string.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/sse.h"


/* Parse or feed a string literal, NUL bytes inside it included. */
#define parse_lit(s, max, out) parse_whole((s), sizeof(s) - 1, (max), (out))
#define feed_lit(p, s, r)      sl_sse_feed((p), (s), sizeof(s) - 1, rec_on_event, (r))

typedef struct test_rec {
    sl_buf_t out; /* recorded events, NUL-terminated */
    int count;
    int stop_at; /* return stop_rc from the callback for this event (1-based); 0 never */
    int stop_rc;
    int nul_ok; /* every field had p[len] == '\0' */
} test_rec_t;

static void rec_init(test_rec_t *r);
static void rec_free(test_rec_t *r);
static int rec_on_event(void *data, const sl_sse_event_t *ev);
static int parse_whole(const char *s, size_t len, size_t max_event, sl_buf_t *out);
static int parse_split(const char *s, size_t len, const size_t *cuts, size_t ncuts, sl_buf_t *out);
static void expect_events(const char *stream, const char *want);
static void test_openai_stream(void **state);
static void test_anthropic_stream(void **state);
static void test_every_split(void **state);
static void test_every_double_split(void **state);
static void test_line_endings(void **state);
static void test_cr_at_feed_end(void **state);
static void test_comments(void **state);
static void test_split_comment_is_not_buffered(void **state);
static void test_multiline_data(void **state);
static void test_done_sentinel(void **state);
static void test_field_rules(void **state);
static void test_id_rules(void **state);
static void test_event_reset(void **state);
static void test_incomplete_event_not_dispatched(void **state);
static void test_bom(void **state);
static void test_max_event(void **state);
static void test_max_event_partial_line(void **state);
static void test_callback_stop(void **state);
static void test_fields_nul_terminated(void **state);
static void test_data_with_nul(void **state);
static void test_empty_feed(void **state);

/* Exercises most rules at once; used by the split tests. */
static const char sample[] = "\xEF\xBB\xBF"
                             ": hello\r\n"
                             "event: message_start\r\n"
                             "data: {\"type\":\"message_start\"}\r\n"
                             "\r\n"
                             "id: 7\n"
                             "data:first\n"
                             "data: second\n"
                             "data\n"
                             "retry: 100\n"
                             "\n"
                             "event: x\r"
                             "\r"
                             "data: caf\xC3\xA9 \xE2\x82\xAC\r"
                             "\r"
                             ":\n"
                             "data: [DONE]\n"
                             "\n";

static const char sample_want[] = "[message_start|]{\"type\":\"message_start\"}\n"
                                  "[|7]first\nsecond\n\n"
                                  "[|7]caf\xC3\xA9 \xE2\x82\xAC\n"
                                  "[|7][DONE]\n";


static void
rec_init(test_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->out = SL_BUF_INIT;
    r->nul_ok = 1;
    sl_buf_reserve(&r->out, 1);
    r->out.p[0] = '\0';
}


static void
rec_free(test_rec_t *r)
{
    sl_buf_free(&r->out);
}


static int
rec_on_event(void *data, const sl_sse_event_t *ev)
{
    test_rec_t *r = data;

    r->count++;
    if (ev->event.p == NULL || ev->data.p == NULL || ev->id.p == NULL
        || ev->event.p[ev->event.len] != '\0' || ev->data.p[ev->data.len] != '\0'
        || ev->id.p[ev->id.len] != '\0') {
        r->nul_ok = 0;
    }
    sl_buf_append(&r->out, "[", 1);
    sl_buf_append(&r->out, ev->event.p, ev->event.len);
    sl_buf_append(&r->out, "|", 1);
    sl_buf_append(&r->out, ev->id.p, ev->id.len);
    sl_buf_append(&r->out, "]", 1);
    sl_buf_append(&r->out, ev->data.p, ev->data.len);
    sl_buf_append(&r->out, "\n", 1);
    sl_buf_reserve(&r->out, 1);
    r->out.p[r->out.len] = '\0';
    if (r->count == r->stop_at) {
        return r->stop_rc;
    }
    return 0;
}


/* Parses s in one feed; the recorded events go to out. */
static int
parse_whole(const char *s, size_t len, size_t max_event, sl_buf_t *out)
{
    sl_sse_parser_t p;
    test_rec_t r;
    int rc;

    rec_init(&r);
    sl_sse_init(&p, max_event);
    rc = sl_sse_feed(&p, s, len, rec_on_event, &r);
    sl_sse_free(&p);
    assert_int_equal(r.nul_ok, 1);
    *out = r.out;
    return rc;
}


/* Parses s in ncuts + 1 feeds, cut at the ascending offsets in cuts. */
static int
parse_split(const char *s, size_t len, const size_t *cuts, size_t ncuts, sl_buf_t *out)
{
    sl_sse_parser_t p;
    test_rec_t r;
    size_t from = 0;
    int rc = 0;

    rec_init(&r);
    sl_sse_init(&p, 0);
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;

        rc = sl_sse_feed(&p, s + from, to - from, rec_on_event, &r);
        from = to;
    }
    sl_sse_free(&p);
    assert_int_equal(r.nul_ok, 1);
    *out = r.out;
    return rc;
}


static void
expect_events(const char *stream, const char *want)
{
    sl_buf_t out;

    assert_rc(parse_whole(stream, strlen(stream), 0, &out), 0);
    assert_string_equal(out.p, want);
    sl_buf_free(&out);
}


static void
test_openai_stream(void **state)
{
    expect_events("data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
                  "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
                  "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"total_tokens\":9}}\n\n"
                  "data: [DONE]\n\n",
                  "[|]{\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n"
                  "[|]{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n"
                  "[|]{\"id\":\"c1\",\"choices\":[],\"usage\":{\"total_tokens\":9}}\n"
                  "[|][DONE]\n");
}


static void
test_anthropic_stream(void **state)
{
    expect_events(
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n"
        "\n"
        "event: ping\n"
        "data: {\"type\": \"ping\"}\n"
        "\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}\n"
        "\n"
        "event: message_stop\n"
        "data: {\"type\":\"message_stop\"}\n"
        "\n",
        "[message_start|]{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n"
        "[ping|]{\"type\": \"ping\"}\n"
        "[content_block_delta|]{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}\n"
        "[message_stop|]{\"type\":\"message_stop\"}\n");
}


static void
test_every_split(void **state)
{
    size_t len = sizeof(sample) - 1;
    size_t cuts[sizeof(sample)];
    sl_buf_t out;

    /* One feed. */
    assert_rc(parse_whole(sample, len, 0, &out), 0);
    assert_string_equal(out.p, sample_want);
    sl_buf_free(&out);

    /* Two feeds, cut at every offset (empty feeds at both ends included). */
    for (size_t i = 0; i <= len; i++) {
        assert_rc(parse_split(sample, len, &i, 1, &out), 0);
        if (strcmp(out.p, sample_want) != 0) {
            print_error("split at %zu\n", i);
        }
        assert_string_equal(out.p, sample_want);
        sl_buf_free(&out);
    }

    /* Byte by byte. */
    for (size_t i = 0; i < len; i++) {
        cuts[i] = i + 1;
    }
    assert_rc(parse_split(sample, len, cuts, len - 1, &out), 0);
    assert_string_equal(out.p, sample_want);
    sl_buf_free(&out);
}


static void
test_every_double_split(void **state)
{
    size_t len = sizeof(sample) - 1;
    sl_buf_t out;

    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            size_t cuts[2] = { i, j };

            assert_rc(parse_split(sample, len, cuts, 2, &out), 0);
            if (strcmp(out.p, sample_want) != 0) {
                print_error("split at %zu and %zu\n", i, j);
            }
            assert_string_equal(out.p, sample_want);
            sl_buf_free(&out);
        }
    }
}


static void
test_line_endings(void **state)
{
    expect_events("data: lf\n\n", "[|]lf\n");
    expect_events("data: crlf\r\n\r\n", "[|]crlf\n");
    expect_events("data: cr\r\r", "[|]cr\n");
    /* Mixed within one event and one stream. */
    expect_events("data: a\rdata: b\r\ndata: c\n\r\n"
                  "data: d\r\r",
                  "[|]a\nb\nc\n[|]d\n");
    /* CR LF is one terminator, LF CR is two. */
    expect_events("data: x\n\rdata: y\n\n", "[|]x\n[|]y\n");
}


static void
test_cr_at_feed_end(void **state)
{
    static const char *const parts[] = { "data: a\r", "\ndata: b\r", "\n\r", "\n" };
    sl_sse_parser_t p;
    test_rec_t r;

    /*
     * Were the LF after each CR taken as an empty line, "a" and "b" would
     * arrive as two events.
     */
    rec_init(&r);
    sl_sse_init(&p, 0);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        assert_rc(sl_sse_feed(&p, parts[i], strlen(parts[i]), rec_on_event, &r), 0);
    }
    assert_string_equal(r.out.p, "[|]a\nb\n");
    assert_int_equal(r.count, 1);

    /* A CR at a feed's end followed by a non-LF byte: the CR alone ends the line. */
    assert_rc(feed_lit(&p, "data: c\r", &r), 0);
    assert_rc(feed_lit(&p, "\r", &r), 0);
    assert_string_equal(r.out.p, "[|]a\nb\n[|]c\n");

    /* A CR, then an empty feed, then LF: still one terminator. */
    assert_rc(feed_lit(&p, "data: d\r", &r), 0);
    assert_rc(feed_lit(&p, "", &r), 0);
    assert_rc(feed_lit(&p, "\ndata: e\n\n", &r), 0);
    assert_string_equal(r.out.p, "[|]a\nb\n[|]c\n[|]d\ne\n");
    sl_sse_free(&p);
    rec_free(&r);
}


static void
test_comments(void **state)
{
    expect_events(": keep-alive\n\n", "");
    expect_events(":\n: OPENROUTER PROCESSING\ndata: a\n: between\ndata: b\n\n", "[|]a\nb\n");
    /* A comment line does not end an event. */
    expect_events("data: a\n:x\n\n", "[|]a\n");
    /* Only a leading colon makes a comment. */
    expect_events(" :x\ndata: a\n\n", "[|]a\n");
}


static void
test_split_comment_is_not_buffered(void **state)
{
    char big[256];
    sl_sse_parser_t p;
    test_rec_t r;

    memset(big, 'c', sizeof(big));
    rec_init(&r);
    sl_sse_init(&p, 64);
    assert_rc(feed_lit(&p, ":", &r), 0);
    for (int i = 0; i < 8; i++) {
        assert_rc(sl_sse_feed(&p, big, sizeof(big), rec_on_event, &r), 0);
    }
    assert_int_equal(p.line.len, 0);
    assert_rc(feed_lit(&p, "\ndata: ok\n\n", &r), 0);
    assert_string_equal(r.out.p, "[|]ok\n");
    sl_sse_free(&p);
    rec_free(&r);
}


static void
test_multiline_data(void **state)
{
    expect_events("data: a\ndata:\ndata:  b\ndata\n\n", "[|]a\n\n b\n\n");
    expect_events("data: {\n"
                  "data: \"k\": 1\n"
                  "data: }\n\n",
                  "[|]{\n\"k\": 1\n}\n");
}


static void
test_done_sentinel(void **state)
{
    expect_events("data: [DONE]\n\n", "[|][DONE]\n");
    expect_events("data:[DONE]\r\n\r\n", "[|][DONE]\n");
}


static void
test_field_rules(void **state)
{
    /* Only one leading space goes; tabs and trailing spaces stay. */
    expect_events("data:x\n\n", "[|]x\n");
    expect_events("data:  x \n\n", "[|] x \n");
    expect_events("data:\tx\n\n", "[|]\tx\n");
    /* A line without a colon is a field with an empty value. */
    expect_events("data\n\n", "[|]\n");
    /* Only the first colon separates. */
    expect_events("data: a:b: c\n\n", "[|]a:b: c\n");
    /* Field names are case-sensitive; unknown fields and retry are ignored. */
    expect_events("Data: a\nDATA: b\ndata : c\nfoo: bar\nretry: 3000\nretry\n\n", "");
    expect_events("foo: bar\ndata: x\nevents: y\nidx: 1\n\n", "[|]x\n");
    /* An empty event field means no type. */
    expect_events("event: a\nevent:\ndata: x\n\n", "[|]x\n");
    expect_events("event: a\nevent: b\ndata: x\n\n", "[b|]x\n");
}


static void
test_id_rules(void **state)
{
    static const char with_nul[] = "id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n";
    sl_buf_t out;

    /* The last event ID persists across events until an id field changes it. */
    expect_events("id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 3\ndata: d\n\n",
                  "[|1]a\n[|1]b\n[|]c\n[|3]d\n");
    /* An id set by a block that dispatches nothing still counts (spec). */
    expect_events("id: 5\n\ndata: a\n\n", "[|5]a\n");
    /* An id containing NUL is ignored. */
    assert_rc(parse_whole(with_nul, sizeof(with_nul) - 1, 0, &out), 0);
    assert_string_equal(out.p, "[|1]a\n[|1]b\n");
    sl_buf_free(&out);
}


static void
test_event_reset(void **state)
{
    /* The event type is per event, and a block without data resets it. */
    expect_events("event: a\ndata: 1\n\ndata: 2\n\n", "[a|]1\n[|]2\n");
    expect_events("event: a\n\ndata: x\n\n", "[|]x\n");
    /* Blank lines with nothing buffered dispatch nothing. */
    expect_events("\n\n\r\n\r\r", "");
}


static void
test_incomplete_event_not_dispatched(void **state)
{
    /* Data with no closing blank line is discarded at end of stream (spec). */
    expect_events("data: a\n\ndata: b\n", "[|]a\n");
    expect_events("data: a\n\ndata: b", "[|]a\n");
}


static void
test_bom(void **state)
{
    static const char bom_stream[] = "\xEF\xBB\xBF"
                                     "data: x\n\n";
    sl_sse_parser_t p;
    test_rec_t r;
    sl_buf_t out;

    expect_events(bom_stream, "[|]x\n");

    /* Split inside the BOM, byte by byte. */
    for (size_t i = 0; i <= 4; i++) {
        assert_rc(parse_split(bom_stream, sizeof(bom_stream) - 1, &i, 1, &out), 0);
        assert_string_equal(out.p, "[|]x\n");
        sl_buf_free(&out);
    }

    /* Only one BOM, only at the start: a second one is part of a field name. */
    expect_events("\xEF\xBB\xBF\xEF\xBB\xBF"
                  "data: x\n\ndata: y\n\n",
                  "[|]y\n");
    expect_events("data: x\n\n\xEF\xBB\xBF"
                  "data: y\n\n",
                  "[|]x\n");

    /* A partial BOM is not a BOM: its bytes start the first line. */
    expect_events("\xEF"
                  "data: x\n\ndata: y\n\n",
                  "[|]y\n");
    expect_events("\xEF\xBB"
                  "data: x\n\ndata: y\n\n",
                  "[|]y\n");
    rec_init(&r);
    sl_sse_init(&p, 0);
    assert_rc(feed_lit(&p, "\xEF\xBB", &r), 0);
    assert_rc(feed_lit(&p, "\n\ndata: y\n\n", &r), 0);
    assert_string_equal(r.out.p, "[|]y\n");
    sl_sse_free(&p);
    rec_free(&r);

    /* The BOM bytes inside a value are data. */
    expect_events("data: \xEF\xBB\xBF\n\n", "[|]\xEF\xBB\xBF\n");
}


static void
test_max_event(void **state)
{
    sl_buf_t out;

    /* 16 bytes of data: "0123456789" + "\n" + "abcd" + "\n" exactly fits. */
    assert_rc(parse_lit("data: 0123456789\ndata: abcd\n\n", 16, &out), 0);
    assert_string_equal(out.p, "[|]0123456789\nabcd\n");
    sl_buf_free(&out);

    /* One byte more does not. */
    assert_rc(parse_lit("data: 0123456789\ndata: abcde\n\n", 16, &out), SL_ETOOBIG);
    assert_string_equal(out.p, "");
    sl_buf_free(&out);

    /* The event and id fields count too. */
    assert_rc(parse_lit("event: 0123456789\ndata: abcdef\n\n", 16, &out), SL_ETOOBIG);
    sl_buf_free(&out);
    assert_rc(parse_lit("id: 0123456789abcdef\ndata: \n\n", 16, &out), SL_ETOOBIG);
    sl_buf_free(&out);

    /* The limit is per event: many events of 10 bytes pass a 16-byte limit. */
    assert_rc(parse_lit("data: 012345678\n\ndata: 012345678\n\ndata: 012345678\n\n", 16, &out), 0);
    assert_string_equal(out.p, "[|]012345678\n[|]012345678\n[|]012345678\n");
    sl_buf_free(&out);
}


static void
test_max_event_partial_line(void **state)
{
    char big[100];
    sl_sse_parser_t p;
    test_rec_t r;

    memset(big, 'x', sizeof(big));
    rec_init(&r);

    /* A line that never ends cannot grow past the limit. */
    sl_sse_init(&p, 64);
    assert_rc(feed_lit(&p, "data: ", &r), 0);
    assert_rc(sl_sse_feed(&p, big, 50, rec_on_event, &r), 0);
    assert_rc(sl_sse_feed(&p, big, 50, rec_on_event, &r), SL_ETOOBIG);
    sl_sse_free(&p);

    /* Nor can a carried line completed by a long tail. */
    sl_sse_init(&p, 64);
    assert_rc(feed_lit(&p, "data: ", &r), 0);
    assert_rc(sl_sse_feed(&p, big, 50, rec_on_event, &r), 0);
    assert_rc(feed_lit(&p, "xxxxxxxxxx\n\n", &r), SL_ETOOBIG);
    sl_sse_free(&p);

    /* A split line within the limit is fine. */
    sl_sse_init(&p, 64);
    assert_rc(feed_lit(&p, "data: ", &r), 0);
    assert_rc(sl_sse_feed(&p, big, 40, rec_on_event, &r), 0);
    assert_rc(feed_lit(&p, "\n\n", &r), 0);
    assert_int_equal(r.count, 1);
    sl_sse_free(&p);
    rec_free(&r);
}


static void
test_callback_stop(void **state)
{
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    sl_sse_parser_t p;
    test_rec_t r;

    rec_init(&r);
    r.stop_at = 2;
    r.stop_rc = -12345;
    sl_sse_init(&p, 0);
    assert_rc(sl_sse_feed(&p, s, sizeof(s) - 1, rec_on_event, &r), -12345);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.out.p, "[|]1\n[|]2\n");
    sl_sse_free(&p);
    rec_free(&r);

    /* Positive codes propagate too, and a stop in a later feed. */
    rec_init(&r);
    r.stop_at = 1;
    r.stop_rc = 7;
    sl_sse_init(&p, 0);
    assert_rc(feed_lit(&p, "data: 1\n", &r), 0);
    assert_rc(feed_lit(&p, "\ndata: 2\n\n", &r), 7);
    assert_int_equal(r.count, 1);
    sl_sse_free(&p);
    rec_free(&r);
}


static void
test_fields_nul_terminated(void **state)
{
    sl_buf_t out;

    /* parse_whole asserts p[len] == '\0' for every field of every event. */
    assert_rc(parse_whole(sample, sizeof(sample) - 1, 0, &out), 0);
    sl_buf_free(&out);
    assert_rc(parse_lit("event: e\nid: i\ndata: a\ndata: b\n\ndata\n\n", 0, &out), 0);
    assert_string_equal(out.p, "[e|i]a\nb\n[|i]\n");
    sl_buf_free(&out);
}


static void
test_data_with_nul(void **state)
{
    static const char s[] = "data: a\0b\n\n";
    sl_buf_t out;

    assert_rc(parse_whole(s, sizeof(s) - 1, 0, &out), 0);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.p, "[|]a\0b\n", 7);
    sl_buf_free(&out);
}


static void
test_empty_feed(void **state)
{
    sl_sse_parser_t p;
    test_rec_t r;

    rec_init(&r);
    sl_sse_init(&p, 0);
    assert_rc(sl_sse_feed(&p, NULL, 0, rec_on_event, &r), 0);
    assert_rc(feed_lit(&p, "data: a\n\n", &r), 0);
    assert_int_equal(r.count, 1);
    sl_sse_free(&p);
    /* Freeing twice is harmless: the buffers are reset. */
    sl_sse_free(&p);
    rec_free(&r);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_stream),
        cmocka_unit_test(test_anthropic_stream),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_every_double_split),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_cr_at_feed_end),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_split_comment_is_not_buffered),
        cmocka_unit_test(test_multiline_data),
        cmocka_unit_test(test_done_sentinel),
        cmocka_unit_test(test_field_rules),
        cmocka_unit_test(test_id_rules),
        cmocka_unit_test(test_event_reset),
        cmocka_unit_test(test_incomplete_event_not_dispatched),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_max_event),
        cmocka_unit_test(test_max_event_partial_line),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_fields_nul_terminated),
        cmocka_unit_test(test_data_with_nul),
        cmocka_unit_test(test_empty_feed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
