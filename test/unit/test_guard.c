/*
 * Unit tests for the guardrails' detectors and text engine
 * (core/gateway/guard_detect.c, guard_redact.c, guard.c): each detector on
 * a table of true positives and near misses (a 16-digit order number that
 * fails Luhn, an IBAN with a bad checksum, versions, dates, times), the
 * checksums, deny literals and regular expressions, redaction with stable
 * placeholders, restore, block and log, and the streaming redactor giving
 * exactly the whole text's result for every way of cutting it into pieces.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/conf/conf.h"
#include "core/gateway/guard.h"
#include "core/gateway/guard_internal.h"

typedef struct det_case {
    int det;
    const char *text;
    const char *want; /* matches joined by '|', "" for none */
} det_case_t;

static const char *matches(sl_pool_t *pool, unsigned mask, const char *text);
static sl_guard_policy_t *policy(sl_pool_t *pool, const char *desc);
static sl__guard_sess_t *sess(sl_pool_t *pool, const char *desc);
static const char *apply(sl__guard_sess_t *s, unsigned dir, const char *text, int *rc);
static void test_stream_long_key(void **state);
static const char *streamed(sl__guard_sess_t *s, const char *text, size_t chunk, int *rc,
                            bool *word_cut);
static int load(const char *yaml, sl_conf_t **conf, char *err, size_t errlen);
static sl_call_t *chat_call(sl_pool_t *pool, const char *body, const char *native);
static sl_call_t *prompt_call(sl_pool_t *pool, size_t n, const char *image, unsigned nimages);
static sl_conf_t *good_conf(sl_guard_who_t *who);
static const char *twin_request(sl_conf_t *conf, sl_pool_t *pool, const char *text, bool twin,
                                const char **row);
static int exact_decode(sl_buf_t raw, sl_buf_t *out, sl__guard_map_t *map);
static sl_call_t *text_call(sl_pool_t *pool, const char *a, const char *b, const char *c);

#define SLUICE_KEY "sk-sluice-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
#define JWT \
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
#define PEM                                                                     \
    "-----BEGIN RSA PRIVATE "                                                   \
    "KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Q" \
    "u\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END RSA PRIVATE KEY-----"

#define DIGITS64 "1111111111111111111111111111111111111111111111111111111111111111"

static const det_case_t det_cases[] = {
    /* email */
    { SL_GUARD_DET_EMAIL, "write to john.smith+tag@example.co.uk today",
      "john.smith+tag@example.co.uk" },
    { SL_GUARD_DET_EMAIL, "mail: a@b.io.", "a@b.io" },
    { SL_GUARD_DET_EMAIL, "<bob_99@mail.example.org>, x@y.dev", "bob_99@mail.example.org|x@y.dev" },
    { SL_GUARD_DET_EMAIL, "user@localhost", "" },
    { SL_GUARD_DET_EMAIL, "ping @handle on chat", "" },
    { SL_GUARD_DET_EMAIL, "a@b and x@y.c and n@host.123", "" },
    { SL_GUARD_DET_EMAIL, "foo@-bar.com and foo@bar-.com", "" },
    /* phone */
    { SL_GUARD_DET_PHONE, "call +1 415 555 0100 now", "+1 415 555 0100" },
    { SL_GUARD_DET_PHONE, "+44 20 7946 0958; +4915112345678", "+44 20 7946 0958|+4915112345678" },
    { SL_GUARD_DET_PHONE, "UK: +44 (0)20 7946 0958", "+44 (0)20 7946 0958" },
    { SL_GUARD_DET_PHONE, "(415) 555-0100 or 415-555-0100 or 415.555.0100",
      "(415) 555-0100|415-555-0100|415.555.0100" },
    { SL_GUARD_DET_PHONE, "toll free 1-800-555-0100.", "1-800-555-0100" },
    { SL_GUARD_DET_PHONE, "office 020 7946 0958, desk 0800-123-4567",
      "020 7946 0958|0800-123-4567" },
    { SL_GUARD_DET_PHONE, "order 12345678 and 4155550100", "" },
    { SL_GUARD_DET_PHONE, "on 2024-01-15 at 12:30:45, version 1.2.3", "" },
    { SL_GUARD_DET_PHONE, "+12 34 and 415-555-01000 and ID 0123456", "" },
    { SL_GUARD_DET_PHONE, "card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 01", "" },
    /* after a group holding a digit no number starts; a word of more than 8 bytes is no group */
    { SL_GUARD_DET_PHONE, "ref ab12 0044 0532 3123 and ab12cd3 0044 0532 3123", "" },
    { SL_GUARD_DET_PHONE,
      "room 8rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr 0044 0532 3123, ab12cdef9 020 7946 0958",
      "0044 0532 3123|020 7946 0958" },
    /* card */
    { SL_GUARD_DET_CARD, "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111" },
    { SL_GUARD_DET_CARD, "4111-1111-1111-1111 and 5500000000000004",
      "4111-1111-1111-1111|5500000000000004" },
    { SL_GUARD_DET_CARD, "amex 3782 822463 10005, discover 6011111111111117",
      "3782 822463 10005|6011111111111117" },
    { SL_GUARD_DET_CARD, "order number 4111111111111112 shipped", "" },
    { SL_GUARD_DET_CARD, "41111111111111111111 is twenty digits", "" },
    { SL_GUARD_DET_CARD, "4111 1111-1111 1111 mixes separators", "" },
    { SL_GUARD_DET_CARD, "ref 1234567812345670, x4111111111111111", "" },
    { SL_GUARD_DET_CARD, "iban DE89 3704 0044 0532 0130 01 (bad checksum)", "" },
    { SL_GUARD_DET_CARD, "acct AB12-3704-0044-0532-0130-01", "" },
    /* iban */
    { SL_GUARD_DET_IBAN, "IBAN DE89 3704 0044 0532 0130 00, thanks",
      "DE89 3704 0044 0532 0130 00" },
    { SL_GUARD_DET_IBAN, "GB82WEST12345698765432 / FR1420041010050500013M02606",
      "GB82WEST12345698765432|FR1420041010050500013M02606" },
    { SL_GUARD_DET_IBAN, "nl91abna0417164300", "nl91abna0417164300" },
    { SL_GUARD_DET_IBAN, "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum", "" },
    { SL_GUARD_DET_IBAN, "DE8937040044053201300 is short, XX89370400440532013000 unknown", "" },
    /* ip */
    { SL_GUARD_DET_IP, "host 192.168.1.10, dns 8.8.8.8.", "192.168.1.10|8.8.8.8" },
    { SL_GUARD_DET_IP, "v6 2001:db8::1 and fe80::1ff:fe23:4567:890a, lo ::1",
      "2001:db8::1|fe80::1ff:fe23:4567:890a|::1" },
    { SL_GUARD_DET_IP, "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
      "2001:0db8:85a3:0000:0000:8a2e:0370:7334" },
    { SL_GUARD_DET_IP, "v1.2.3 and 1.2.3 and 256.1.1.1 and 1.2.3.4.5 and 01.02.03.04", "" },
    { SL_GUARD_DET_IP, "at 12:30:45 use std::vector or Foo::Bar, mac 00:1a:2b:3c:4d:5e", "" },
    /* secret */
    { SL_GUARD_DET_SECRET, "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 here",
      "sk-proj-abcdefghijklmnopqrstuvwxyz012345" },
    { SL_GUARD_DET_SECRET, "anthropic sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv",
      "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv" },
    { SL_GUARD_DET_SECRET, "sluice " SLUICE_KEY, SLUICE_KEY },
    { SL_GUARD_DET_SECRET,
      "aws AKIAIOSFODNN7EXAMPLE google AIzaSyA1234567890abcdefghijklmnopqrstuv",
      "AKIAIOSFODNN7EXAMPLE|AIzaSyA1234567890abcdefghijklmnopqrstuv" },
    { SL_GUARD_DET_SECRET,
      "gh ghp_0123456789abcdefghijklmnopqrstuvwxyz slack xoxb-1234567890-abcdef",
      "ghp_0123456789abcdefghijklmnopqrstuvwxyz|xoxb-1234567890-abcdef" },
    { SL_GUARD_DET_SECRET,
      "sk_live_0123456789abcdefgh rk_live_0123456789abcdefgh ASIAIOSFODNN7EXAMPLE "
      "github_pat_0123456789abcdefghijkl glpat-0123456789abcdefghij xapp-1-A0123-456 "
      "hf_0123456789abcdefghijklmnopqrstu",
      "sk_live_0123456789abcdefgh|rk_live_0123456789abcdefgh|ASIAIOSFODNN7EXAMPLE|"
      "github_pat_0123456789abcdefghijkl|glpat-0123456789abcdefghij|xapp-1-A0123-456|"
      "hf_0123456789abcdefghijklmnopqrstu" },
    { SL_GUARD_DET_SECRET, "token " JWT " ok", JWT },
    { SL_GUARD_DET_SECRET, "key:\n" PEM "\nend", PEM },
    { SL_GUARD_DET_SECRET, "sk-123 and desk-abcdefghijklmnopqrstuvwxyz and AKIA1234", "" },
    { SL_GUARD_DET_SECRET, "akiaiosfodnn7example, eyJhbGciOi alone, -----BEGIN PUBLIC KEY-----",
      "" },
    /* a 64-byte scan chunk that is all digits (the run goes on past it), then a card */
    { SL_GUARD_DET_CARD, DIGITS64 ", card 4111 1111 1111 1111", "4111 1111 1111 1111" },
    { SL_GUARD_DET_PHONE, DIGITS64 DIGITS64 "9", "" },
};


/* Every match of the detectors in mask, '|'-joined, in the pool. */
static const char *
matches(sl_pool_t *pool, unsigned mask, const char *text)
{
    sl__guard_hits_t h = { NULL, 0, 0, SIZE_MAX };
    sl_buf_t b = SL_BUF_INIT;
    const char *s;

    sl__guard_detect(text, strlen(text), 0, mask, &h);
    for (size_t i = 0; i < h.n; i++) {
        sl_buf_printf(&b, "%s%.*s", i > 0 ? "|" : "", (int) (h.v[i].end - h.v[i].start),
                      text + h.v[i].start);
    }
    s = sl_pstrndup(pool, b.p != NULL ? b.p : "", b.len);
    sl_buf_free(&b);
    sl__guard_hits_free(&h);
    return s;
}


/* hits a and b are the same list: positions, detector, open */
static void
same_hits(const sl__guard_hits_t *a, const sl__guard_hits_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->v[i].start, b->v[i].start);
        assert_int_equal(a->v[i].end, b->v[i].end);
        assert_int_equal(a->v[i].det, b->v[i].det);
        assert_int_equal(a->v[i].open, b->v[i].open);
    }
}


/*
 * The memo (guard_memo.c): a text scanned a third time is answered from it
 * with the scan's very hits (the first scan notes its hash, the second
 * keeps it); another mask, another text of the same length and
 * the same sampled bytes, a short text and an open PEM block are not mixed
 * up; appended hits follow those already in the list; and it holds at
 * most SL__GUARD_MEMO_BYTES, dropping the oldest texts first.
 */
static void
test_memo(void **state)
{
    const unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;
    sl__guard_hits_t want = { NULL, 0, 0, SIZE_MAX }, got = { NULL, 0, 0, SIZE_MAX };
    sl__guard_memo_stats_t st;
    size_t len = 4000;
    char *t = malloc(SL__GUARD_MEMO_TEXT_MAX + 1), *u;

    (void) state;
    assert_non_null(t);
    sl__guard_memo_clear();
    for (size_t i = 0; i < len; i++) {
        t[i] = "lorem ipsum dolor "[i % 18];
    }
    memcpy(t + 100, "mail jane@example.com now", 25);
    memcpy(t + 2001, "call +44 20 7946 0958 now", 25);
    sl__guard_detect(t, len, 0, all, &want);
    assert_int_equal(want.n, 2);
    sl__guard_detect_whole(t, len, all, &got);
    same_hits(&want, &got);
    assert_int_equal(sl__guard_memo_stats().bytes, 0); /* the first time: its hash alone */
    got.n = 0;
    sl__guard_detect_whole(t, len, all, &got);
    same_hits(&want, &got);
    st = sl__guard_memo_stats();
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.hits, 0);
    assert_true(st.bytes >= len);
    /* again: from the memo, appended after what the list holds */
    sl__guard_detect_whole(t, len, all, &got);
    st = sl__guard_memo_stats();
    assert_int_equal(st.hits, 1);
    assert_int_equal(got.n, 4);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(got.v[2 + i].start, want.v[i].start);
        assert_int_equal(got.v[2 + i].end, want.v[i].end);
        assert_int_equal(got.v[2 + i].det, want.v[i].det);
    }
    /* another mask is another scan */
    got.n = 0;
    sl__guard_detect_whole(t, len, 1u << SL_GUARD_DET_EMAIL, &got);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.v[0].det, SL_GUARD_DET_EMAIL);
    assert_int_equal(sl__guard_memo_stats().misses, 3);
    /* one byte changed where the hash does not look: compared whole, scanned */
    u = malloc(len);
    assert_non_null(u);
    memcpy(u, t, len);
    /* the hash reads 8 bytes every 63 here (4000 bytes): 2016..2023, then 2079.. */
    memcpy(u + 2030, " jo@example.org ", 16);
    got.n = 0;
    want.n = 0;
    sl__guard_detect(u, len, 0, all, &want);
    assert_int_equal(want.n, 3);
    sl__guard_detect_whole(u, len, all, &got);
    same_hits(&want, &got);
    assert_int_equal(sl__guard_memo_stats().misses, 4);
    /* short texts are scanned, not kept */
    got.n = 0;
    sl__guard_detect_whole("jane@example.com", 16, all, &got);
    sl__guard_detect_whole("jane@example.com", 16, all, &got);
    assert_int_equal(got.n, 2);
    assert_int_equal(sl__guard_memo_stats().misses, 4);
    /* an open PEM block at the end stays open */
    memcpy(t + len - 60, "\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 60);
    want.n = 0;
    sl__guard_detect(t, len, 0, all, &want);
    assert_true(want.n > 0 && want.v[want.n - 1].open);
    for (int round = 0; round < 2; round++) {
        got.n = 0;
        sl__guard_detect_whole(t, len, all, &got);
        same_hits(&want, &got);
    }
    /* full: the oldest texts go first, and the memo never holds more than its bytes */
    sl__guard_memo_clear();
    memset(t, 'a', SL__GUARD_MEMO_TEXT_MAX);
    for (size_t i = 0; i < SL__GUARD_MEMO_BYTES / SL__GUARD_MEMO_TEXT_MAX + 4; i++) {
        memcpy(t, &i, sizeof(i));
        got.n = 0;
        sl__guard_detect_whole(t, SL__GUARD_MEMO_TEXT_MAX, all, &got);
        sl__guard_detect_whole(t, SL__GUARD_MEMO_TEXT_MAX, all, &got);
        assert_true(sl__guard_memo_stats().bytes <= SL__GUARD_MEMO_BYTES);
    }
    /* the newest is there, the oldest gone */
    st = sl__guard_memo_stats();
    sl__guard_detect_whole(t, SL__GUARD_MEMO_TEXT_MAX, all, &got);
    assert_int_equal(sl__guard_memo_stats().hits, st.hits + 1);
    memset(t, 0, sizeof(size_t)); /* text 0 */
    sl__guard_detect_whole(t, SL__GUARD_MEMO_TEXT_MAX, all, &got);
    assert_int_equal(sl__guard_memo_stats().misses, st.misses + 1);
    sl__guard_memo_clear();
    assert_int_equal(sl__guard_memo_stats().bytes, 0);
    free(u);
    free(t);
    sl__guard_hits_free(&want);
    sl__guard_hits_free(&got);
}


/*
 * The memo's hash of the whole text, under each instruction set this
 * machine has: a text that differs from the one scanned last in a single
 * byte anywhere (the first, the last, within the last partial stripe, at
 * each lane), or in two pieces of 16 bytes swapped (within a stripe, across
 * stripes), is a text not seen before, so it is not kept. (The bytes the
 * slot's hash samples are 0..7 and every 63rd on; most here are others, so
 * the two texts share a slot and only the whole text's hash tells them
 * apart.)
 */
static void
test_memo_hash(void **state)
{
    const unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;
    static const size_t at[] = { 0,   1,    8,    15,   16,   31,   32,   63,   64,   100, 127,
                                 128, 1999, 3871, 3872, 3900, 3935, 3936, 3990, 3998, 3999 };
    static const size_t swap[][2] = { { 0, 16 }, { 16, 48 }, { 0, 64 }, { 0, 128 }, { 32, 3968 } };
    sl__guard_hits_t got = { NULL, 0, 0, SIZE_MAX };
    size_t len = 4000; /* stripes of 64 and 128 bytes leave a partial one */
    char *t = malloc(len), *u = malloc(len), piece[16];
    unsigned seed = 11, isas = 0;

    (void) state;
    assert_non_null(t);
    assert_non_null(u);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        t[i] = (char) ('a' + (seed >> 16) % 26);
    }
    for (unsigned isa = SL__GUARD_ISA_SCALAR; isa <= SL__GUARD_ISA_AVX2; isa++) {
        if (sl__guard_detect_isa(isa) != 0) {
            continue; /* this machine lacks it (scalar and SSE2 are always there on x86-64) */
        }
        isas++;
        sl__guard_memo_clear();
        sl__guard_detect_whole(t, len, all, &got);
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
            memcpy(u, t, len);
            u[at[k]] = (char) (u[at[k]] == 'x' ? 'y' : 'x');
            sl__guard_detect_whole(u, len, all, &got);
            assert_int_equal(sl__guard_memo_stats().bytes, 0);
            sl__guard_memo_clear();
            sl__guard_detect_whole(t, len, all, &got);
        }
        for (size_t k = 0; k < sizeof(swap) / sizeof(swap[0]); k++) {
            memcpy(u, t, len);
            memcpy(piece, u + swap[k][0], 16);
            memcpy(u + swap[k][0], u + swap[k][1], 16);
            memcpy(u + swap[k][1], piece, 16);
            sl__guard_detect_whole(u, len, all, &got);
            assert_int_equal(sl__guard_memo_stats().bytes, 0);
            sl__guard_memo_clear();
            sl__guard_detect_whole(t, len, all, &got);
        }
        /* and the same text twice is kept */
        sl__guard_detect_whole(t, len, all, &got);
        assert_true(sl__guard_memo_stats().bytes >= len);
        assert_int_equal(sl__guard_memo_stats().hits, 0);
    }
    assert_true(isas >= 1);
    assert_int_equal(sl__guard_detect_isa(SL__GUARD_ISA_BEST), 0);
    sl__guard_memo_clear();
    sl__guard_hits_free(&got);
    free(u);
    free(t);
}


static void
test_detectors(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);

    (void) state;
    for (size_t i = 0; i < sizeof(det_cases) / sizeof(det_cases[0]); i++) {
        const det_case_t *c = &det_cases[i];
        const char *got = matches(pool, 1u << c->det, c->text);

        if (strcmp(got, c->want) != 0) {
            fail_msg("%s in \"%s\": got \"%s\", want \"%s\"", sl_guard_det_name((unsigned) c->det),
                     c->text, got, c->want);
        }
    }
    sl_pool_destroy(pool);
}


/* Luhn as the standard states it, one digit at a time from the right. */
static bool
luhn_ref(const char *d, size_t n)
{
    unsigned sum = 0;

    for (size_t k = 0; k < n; k++) {
        unsigned v = (unsigned) (d[n - 1 - k] - '0');

        if (k % 2 == 1) {
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        }
        sum += v;
    }
    return n > 0 && sum % 10 == 0;
}


/*
 * sl__guard_luhn (eight digits a step up to 24, one at a time beyond)
 * against the reference on random digit strings of every length 0..30,
 * all nines and all zeros included.
 */
static void
test_luhn_generated(void **state)
{
    char d[32];
    unsigned seed = 11;

    (void) state;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t) round % 31;

        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            d[k] = round % 97 == 0 ? '9' : round % 89 == 0 ? '0' : (char) ('0' + (seed >> 16) % 10);
        }
        if (sl__guard_luhn(d, n) != luhn_ref(d, n)) {
            fail_msg("luhn differs on \"%.*s\"", (int) n, d);
        }
    }
}


/*
 * sl__guard_plain (64 and 32 bytes a step with AVX2, 16 with SSE2, then
 * byte by byte) against a byte-by-byte reference under each instruction
 * set this machine has: texts of 0 to 300 bytes, plain or with one or two
 * bytes that count ('\\', a control byte, 0x80 and above) anywhere.
 */
static void
test_plain_generated(void **state)
{
    static const unsigned char marks[] = { '\\', 0x00, 0x1f, 0x0a, 0x80, 0xc3, 0xff };
    char t[300];
    unsigned seed = 3;

    (void) state;
    for (unsigned isa = SL__GUARD_ISA_SCALAR; isa <= SL__GUARD_ISA_AVX2; isa++) {
        if (sl__guard_detect_isa(isa) != 0) {
            continue; /* this machine lacks it (scalar and SSE2 are always there on x86-64) */
        }
        for (int round = 0; round < 6000; round++) {
            size_t n = (size_t) round % 301;
            unsigned want = 0;

            for (size_t k = 0; k < n; k++) {
                seed = seed * 1103515245u + 12345u;
                t[k] = (char) (0x20 + (seed >> 16) % 0x5c); /* ' '..'{' less '\\' below */
                t[k] = t[k] == '\\' ? 'x' : t[k];
            }
            for (int m = 0; m < round % 3 && n > 0; m++) {
                seed = seed * 1103515245u + 12345u;
                t[(seed >> 8) % n] = (char) marks[(seed >> 20) % sizeof(marks)];
            }
            for (size_t k = 0; k < n; k++) {
                unsigned char c = (unsigned char) t[k];

                want |= c == '\\' ? SL__GUARD_PLAIN_ESC : 0;
                want |= c < 0x20 || c >= 0x80 ? SL__GUARD_PLAIN_HIGH : 0;
            }
            assert_int_equal(sl__guard_plain(t, n), want);
        }
    }
    assert_int_equal(sl__guard_detect_isa(SL__GUARD_ISA_BEST), 0);
}


static void
test_checksums(void **state)
{
    (void) state;
    /* the near misses above fail for the reason they are there */
    assert_true(sl__guard_luhn("4111111111111111", 16));
    assert_false(sl__guard_luhn("4111111111111112", 16));
    assert_true(sl__guard_luhn("378282246310005", 15));
    assert_true(sl__guard_iban_valid("DE89370400440532013000", 22));
    assert_false(sl__guard_iban_valid("DE89370400440532013001", 22));
    assert_false(sl__guard_iban_valid("DE8937040044053201300", 21));
    assert_true(sl__guard_iban_valid("GB82WEST12345698765432", 22));
    assert_false(sl__guard_iban_valid("GB82WEST1234569876543!", 22));
    assert_int_equal(sl_guard_det_find("iban"), SL_GUARD_DET_IBAN);
    assert_int_equal(sl_guard_det_find("ssn"), -1);
}


static void
test_patterns(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl__guard_hits_t h = { NULL, 0, 0, SIZE_MAX };
    sl_guard_pattern_t pats[8]; /* each compiled pattern stays where the pool frees it */
    size_t k = 0;
    char err[200];
    const char *t;

    (void) state;
    /* a literal: any case, white space runs, whole words */
    assert_int_equal(
        sl_guard_pattern_compile(pool, "Project  Falcon", &pats[k++], err, sizeof(err)), 0);
    t = "about PROJECT\n\t falcon, not project falconry or myproject falcon";
    sl__guard_deny(&pats[k - 1], t, strlen(t), 0, true, &h);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.v[0].start, 6);
    assert_int_equal(h.v[0].end, 6 + strlen("PROJECT\n\t falcon"));
    /* a regular expression, (?i) accepted */
    h.n = 0;
    assert_int_equal(
        sl_guard_pattern_compile(pool, "re:(?i)internal[- ]only", &pats[k++], err, sizeof(err)), 0);
    t = "INTERNAL ONLY, internal-only and internalonly";
    sl__guard_deny(&pats[k - 1], t, strlen(t), 0, true, &h);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.v[1].start, 15);
    /* ^ holds only at the text's start */
    h.n = 0;
    assert_int_equal(sl_guard_pattern_compile(pool, "re:^secret", &pats[k++], err, sizeof(err)), 0);
    sl__guard_deny(&pats[k - 1], "secret", 6, 0, true, &h);
    sl__guard_deny(&pats[k - 1], "secret", 6, 0, false, &h);
    assert_int_equal(h.n, 1);
    /* refused */
    assert_int_equal(sl_guard_pattern_compile(pool, "re:(?=x)y", &pats[k++], err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "POSIX"));
    assert_int_equal(sl_guard_pattern_compile(pool, "re:a*", &pats[k++], err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "empty string"));
    assert_int_equal(sl_guard_pattern_compile(pool, "re:(", &pats[k++], err, sizeof(err)), -EINVAL);
    assert_int_equal(sl_guard_pattern_compile(pool, " \t", &pats[k++], err, sizeof(err)), -EINVAL);
    sl__guard_hits_free(&h);
    sl_pool_destroy(pool);
}


/*
 * A policy from a compact description, one check per ';':
 * "detect email card redact restore in", "deny falcon|re:x+y block out",
 * "detect email log in out". Words: detectors / patterns ('~' stands for a
 * space in a literal), the action, restore, and the directions (default in).
 */
static sl_guard_policy_t *
policy(sl_pool_t *pool, const char *desc)
{
    sl_guard_policy_t *p = sl_pcalloc(pool, sizeof(*p));
    char *copy = sl_pstrdup(pool, desc), *save = NULL, *check;
    char err[200];

    p->name = "test";
    p->checks = sl_pcalloc(pool, 8 * sizeof(*p->checks));
    for (check = strtok_r(copy, ";", &save); check != NULL; check = strtok_r(NULL, ";", &save)) {
        sl_guard_check_t *c = &p->checks[p->nchecks++];
        char *s2 = NULL, *w = strtok_r(check, " ", &s2);

        c->kind = strcmp(w, "deny") == 0 ? SL_GUARD_DENY : SL_GUARD_DETECT;
        c->deny = sl_pcalloc(pool, 8 * sizeof(*c->deny));
        while ((w = strtok_r(NULL, " ", &s2)) != NULL) {
            if (strcmp(w, "redact") == 0) {
                c->action = SL_GUARD_REDACT;
            } else if (strcmp(w, "block") == 0) {
                c->action = SL_GUARD_BLOCK;
            } else if (strcmp(w, "log") == 0) {
                c->action = SL_GUARD_LOG;
            } else if (strcmp(w, "restore") == 0) {
                c->restore = true;
            } else if (strcmp(w, "in") == 0) {
                c->on |= SL_GUARD_INPUT;
            } else if (strcmp(w, "out") == 0) {
                c->on |= SL_GUARD_OUTPUT;
            } else if (c->kind == SL_GUARD_DETECT) {
                assert_true(sl_guard_det_find(w) >= 0);
                c->detect |= 1u << sl_guard_det_find(w);
            } else {
                char *s3 = NULL;

                for (char *pat = strtok_r(w, "|", &s3); pat != NULL;
                     pat = strtok_r(NULL, "|", &s3)) {
                    for (char *q = pat; *q != '\0'; q++) {
                        *q = *q == '~' ? ' ' : *q; /* "top~~secret": a literal with spaces */
                    }
                    assert_int_equal(sl_guard_pattern_compile(pool, sl_pstrdup(pool, pat),
                                                              &c->deny[c->ndeny++], err,
                                                              sizeof(err)),
                                     0);
                }
            }
        }
        if (c->on == 0) {
            c->on = SL_GUARD_INPUT;
        }
    }
    sl_guard_policy_finish(pool, p);
    return p;
}


/* A session of the policy desc, in pool (its buffers go with the pool). */
static sl__guard_sess_t *
sess(sl_pool_t *pool, const char *desc)
{
    sl__guard_sess_t *s = sl_palloc(pool, sizeof(*s));

    sl__guard_sess_init(s, pool, policy(pool, desc));
    return s;
}


/* The engine over a whole text; the result in the session's pool. */
static const char *
apply(sl__guard_sess_t *s, unsigned dir, const char *text, int *rc)
{
    sl_buf_t out = SL_BUF_INIT;
    size_t cut = 0;
    bool changed;
    const char *r;

    *rc = sl__guard_apply(s, dir, text, strlen(text), 0, true, false, &out, &cut, &changed);
    r = sl_pstrndup(s->pool, out.p != NULL ? out.p : "", out.len);
    if (*rc == 0) {
        assert_int_equal(changed, strcmp(r, text) != 0);
    }
    sl_buf_free(&out);
    return r;
}


static const char *
decisions(sl__guard_sess_t *s)
{
    sl_buf_t b = SL_BUF_INIT;
    const char *r;

    for (size_t i = 0; i < s->ndec; i++) {
        sl_buf_printf(&b, "%s%s%s/%s*%u", i > 0 ? ";" : "", s->dec[i].output ? "output:" : "",
                      s->dec[i].rule, sl_guard_action_name(s->dec[i].action), s->dec[i].count);
    }
    r = sl_pstrndup(s->pool, b.p != NULL ? b.p : "", b.len);
    sl_buf_free(&b);
    return r;
}


static void
test_redact_restore(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl__guard_sess_t *s = sess(pool, "detect email card redact restore;detect phone log");
    int rc;

    (void) state;
    assert_string_equal(apply(s, SL_GUARD_INPUT,
                              "mail a@b.io and c@d.io, again a@b.io; card 4111 1111 1111 1111, "
                              "tel +1 415 555 0100",
                              &rc),
                        "mail [EMAIL_1] and [EMAIL_2], again [EMAIL_1]; card [CARD_1], tel +1 415 "
                        "555 0100");
    assert_int_equal(rc, 0);
    assert_string_equal(decisions(s), "email/redact*3;card/redact*1;phone/log*1");
    assert_int_equal(s->nrestorable, 3);
    /* the same text in another string of the request: the same placeholder */
    assert_string_equal(apply(s, SL_GUARD_INPUT, "c@d.io", &rc), "[EMAIL_2]");
    /* the answer: placeholders back; unknown ones and look-alikes stay */
    assert_string_equal(apply(s, SL_GUARD_OUTPUT,
                              "Hi [EMAIL_1], your card [CARD_1] ([CARD_2], [EMAIL_1x], [EMAIL_1",
                              &rc),
                        "Hi a@b.io, your card 4111 1111 1111 1111 ([CARD_2], [EMAIL_1x], [EMAIL_1");
    sl_pool_destroy(pool);
}


/* Placeholders are found by their label and number; near misses are none. */
static void
test_placeholder_find(void **state)
{
    static const char *const none[] = {
        "[EMAIL_3]",    "[EMAIL_0]", "[EMAIL_01]", "[EMAIL_]", "[EMAIL1]",   "[email_1]",
        "[EMAIL__1]",   "[CARD_2]",  "[PHONE_1]",  "[IP_1]",   "[_1]",       "[EMAIL_1",
        "EMAIL_1]",     "[]",        "[EMAIL_1x]", "[MAIL_1]", "[XEMAIL_1]", "[EMAIL_99999999999]",
        "[REDACTED_1]",
    };
    sl_pool_t *pool = sl_pool_create(0);
    sl__guard_sess_t *s = sess(pool, "detect email card redact restore");
    const sl__guard_ph_t *ph;
    char many[4096];
    size_t n = 0;
    int rc;

    (void) state;
    assert_null(sl__guard_ph_find(s, "[EMAIL_1]", 9));
    apply(s, SL_GUARD_INPUT, "a@b.io c@d.io 4111 1111 1111 1111", &rc);
    ph = sl__guard_ph_find(s, "[EMAIL_2]", 9);
    assert_non_null(ph);
    assert_true(ph->orig.len == 6 && memcmp(ph->orig.p, "c@d.io", 6) == 0);
    ph = sl__guard_ph_find(s, "[CARD_1]", 8);
    assert_non_null(ph);
    assert_true(ph->orig.len == 19 && memcmp(ph->orig.p, "4111 1111 1111 1111", 19) == 0);
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        if (sl__guard_ph_find(s, none[i], strlen(none[i])) != NULL) {
            fail_msg("\"%s\" found", none[i]);
        }
    }
    /* many of one label: numbers of several digits */
    for (unsigned i = 0; i < 150; i++) {
        n += (size_t) snprintf(many + n, sizeof(many) - n, "u%u@x.io ", i);
    }
    apply(s, SL_GUARD_INPUT, many, &rc);
    ph = sl__guard_ph_find(s, "[EMAIL_152]", 11);
    assert_non_null(ph);
    assert_true(ph->orig.len == 9 && memcmp(ph->orig.p, "u149@x.io", 9) == 0);
    assert_null(sl__guard_ph_find(s, "[EMAIL_153]", 11));
    assert_int_equal(s->nph, 153);
    sl_pool_destroy(pool);
}


/*
 * Placeholders past the table's growth (at 192 and 768 of them): each
 * text keeps its own, numbered in order of first sight, and a text seen
 * again (in another order, after the growth) gets the same one back.
 */
static void
test_placeholder_table(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl__guard_sess_t *s = sess(pool, "detect email ip redact restore");
    sl_buf_t in = SL_BUF_INIT, want = SL_BUF_INIT;
    const char *got;
    int rc;

    (void) state;
    for (unsigned i = 0; i < 1000; i++) {
        sl_buf_printf(&in, "u%u@x.io 10.0.%u.%u ", i, i / 250, i % 250);
        sl_buf_printf(&want, "[EMAIL_%u] [IP_%u] ", i + 1, i + 1);
    }
    sl_buf_append(&in, "", 1);
    sl_buf_append(&want, "", 1);
    got = apply(s, SL_GUARD_INPUT, in.p, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want.p);
    assert_int_equal(s->nph, 2000);
    /* again, last first, with one new text between */
    sl_buf_clear(&in);
    sl_buf_clear(&want);
    for (unsigned i = 1000; i-- > 0;) {
        sl_buf_printf(&in, "10.0.%u.%u u%u@x.io ", i / 250, i % 250, i);
        sl_buf_printf(&want, "[IP_%u] [EMAIL_%u] ", i + 1, i + 1);
        if (i == 500) {
            sl_buf_printf(&in, "new@x.io ");
            sl_buf_printf(&want, "[EMAIL_1001] ");
        }
    }
    sl_buf_append(&in, "", 1);
    sl_buf_append(&want, "", 1);
    got = apply(s, SL_GUARD_INPUT, in.p, &rc);
    assert_string_equal(got, want.p);
    assert_int_equal(s->nph, 2001);
    assert_non_null(sl__guard_ph_find(s, "[IP_1000]", 9));
    assert_null(sl__guard_ph_find(s, "[IP_1001]", 9));
    sl_buf_free(&in);
    sl_buf_free(&want);
    sl_pool_destroy(pool);
}


static void
test_block_and_output(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl__guard_sess_t *s = sess(pool, "detect email redact;deny Project_Falcon|re:code[0-9]+ block "
                                     "in out;detect secret redact out");
    int rc;

    (void) state;
    assert_string_equal(apply(s, SL_GUARD_INPUT, "x@y.io wrote project_falcon", &rc),
                        "[EMAIL_1] wrote ");
    assert_int_equal(rc, SL_EDENIED);
    assert_non_null(s->blocked);
    assert_int_equal(s->blocked_det, SL_GUARD_DET_DENY);
    assert_string_equal(sl__guard_rule(s->blocked, s->blocked_det), "deny[2]");
    assert_false(s->blocked_output);
    /* output: the email check is input only, the secret check output only */
    s->blocked = NULL;
    assert_string_equal(
        apply(s, SL_GUARD_OUTPUT, "x@y.io key sk-abcdefghijklmnopqrstuvwxyz ok", &rc),
        "x@y.io key [SECRET_1] ok");
    assert_int_equal(rc, 0);
    apply(s, SL_GUARD_OUTPUT, "the CODE42 is", &rc);
    assert_int_equal(rc, SL_EDENIED);
    assert_true(s->blocked_output);
    assert_string_equal(decisions(s),
                        "email/redact*1;deny[2]/block*1;output:secret/redact*1;output:deny[2]/"
                        "block*1");
    sl_pool_destroy(pool);
}


/* The text fed in pieces of chunk bytes (final at the end); what went out, joined. */
static const char *
streamed(sl__guard_sess_t *s, const char *text, size_t chunk, int *rc, bool *word_cut)
{
    sl__guard_stream_t st;
    sl_buf_t out = SL_BUF_INIT, piece = SL_BUF_INIT;
    size_t len = strlen(text);
    const char *r;

    memset(&st, 0, sizeof(st));
    *rc = 0;
    *word_cut = false;
    for (size_t i = 0; i < len && *rc == 0; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;

        sl_buf_clear(&piece);
        *rc = sl__guard_stream_feed(s, &st, text + i, n, false, &piece);
        if (piece.len > 0 && i + n < len && *rc == 0) {
            unsigned char last = (unsigned char) piece.p[piece.len - 1];
            unsigned char next = (unsigned char) text[i + n];

            /* a piece never ends inside a word (a match would have been shown cut) */
            if (last != ' ' && last != '\n' && next != ' ') {
                *word_cut = true;
            }
        }
        sl_buf_append(&out, piece.p, piece.len);
    }
    if (*rc == 0) {
        sl_buf_clear(&piece);
        *rc = sl__guard_stream_feed(s, &st, "", 0, true, &piece);
        sl_buf_append(&out, piece.p, piece.len);
    }
    r = sl_pstrndup(s->pool, out.p != NULL ? out.p : "", out.len);
    sl_buf_free(&out);
    sl_buf_free(&piece);
    sl__guard_stream_free(&st);
    return r;
}


static void
test_stream_equals_whole(void **state)
{
    static const char *const texts[] = {
        "Dear [EMAIL_1], your card 4111 1111 1111 1111 and phone +44 20 7946 0958 are on file; "
        "write to ops@example.com or call (415) 555-0100. IBAN DE89 3704 0044 0532 0130 00.",
        "no matches at all, just words that go on and on and on without anything special",
        "glued:ops@example.com,[EMAIL_1][EMAIL_1] 192.168.0.1 and 2001:db8::1 "
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv and " JWT " end",
        "short",
        "[EMAIL_1",
        "a very-long-word-without-any-space-at-all-that-keeps-going-past-the-hold-of-the-stream "
        "then text",
        "key\n" PEM "\nafter the key, 8.8.8.8",
        "unicode café ☕ naïve [EMAIL_1] 😀 x@y.io",
        /* a word with a digit far before the number: the stream has dropped it (fuzz_guard_stream)
         */
        "8rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr 0044 0532 3123\x95"
        "0044 0532 31 04 532 3123 5Ab0-1\xcd\x9b\x9d"
        "3\x9b\x9d\xc7::11\xcd\x9b\x9d\xc7::1",
        "x8rrrrrrr 0044 0532 3123 and 9rrrrrrrr 0044 0532 3123 rrrrrrrrrrrrrrrrrrrrrrrr",
    };
    sl_pool_t *pool = sl_pool_create(0);

    (void) state;
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        for (size_t chunk = 1; chunk <= 9; chunk++) {
            sl__guard_sess_t *whole = sess(pool, "detect email redact restore in;detect email "
                                                 "card phone iban ip secret redact out");
            sl__guard_sess_t *st = sl_palloc(pool, sizeof(*st));
            const char *a, *b;
            bool cut;
            int rc1, rc2;

            sl__guard_sess_init(st, pool, whole->policy);
            /* [EMAIL_1] is restorable in both */
            apply(whole, SL_GUARD_INPUT, "me@home.org", &rc1);
            apply(st, SL_GUARD_INPUT, "me@home.org", &rc1);
            a = apply(whole, SL_GUARD_OUTPUT, texts[t], &rc1);
            b = streamed(st, texts[t], chunk, &rc2, &cut);
            if (strcmp(a, b) != 0 || rc1 != rc2) {
                fail_msg("text %zu in pieces of %zu:\n whole  \"%s\"\n stream \"%s\"", t, chunk, a,
                         b);
            }
            assert_false(cut);
            assert_string_equal(decisions(whole), decisions(st));
        }
    }
    sl_pool_destroy(pool);
}


/*
 * A private key block longer than SL__GUARD_FORCE (an RSA 8192 key's PEM is
 * about 6.5 KiB) is redacted whole in a stream as in the whole text, with
 * its END line and what follows (an address), and without one (open to
 * the end), whatever the pieces; past SL__GUARD_OPEN_MAX an open block goes
 * out as it stands, its start redacted.
 */
static void
test_stream_long_key(void **state)
{
    static const char line[] =
        "MIIJKQIBAAKCAgEAx4Ufq1n0+TXqZ8uQ7yV0m1q2r3s4t5u6v7w8x9y0z1A2B3C4D5E6\n";
    static const int lines[] = { 60, 100, 110 };
    static const size_t chunks[] = { 1, 7, 97, 4000 };
    sl_pool_t *pool = sl_pool_create(0);
    sl_buf_t body = SL_BUF_INIT;
    sl__guard_sess_t *st;
    const char *out;
    bool cut;
    int rc;

    (void) state;
    for (size_t l = 0; l < sizeof(lines) / sizeof(lines[0]); l++) {
        for (int end = 0; end < 2; end++) {
            for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
                const char *whole_out, *stream_out, *text;
                sl__guard_sess_t *whole;
                int rc1, rc2;

                sl_buf_clear(&body);
                sl_buf_puts(&body, "key: -----BEGIN RSA PRIVATE KEY-----\n");
                for (int i = 0; i < lines[l]; i++) {
                    sl_buf_puts(&body, line);
                }
                sl_buf_puts(&body,
                            end ? "-----END RSA PRIVATE KEY-----\nthen ops@example.com" : "");
                text = sl_pstrndup(pool, body.p, body.len);
                assert_true(strlen(text) > SL__GUARD_FORCE);
                whole = sess(pool, "detect email secret redact out");
                st = sl_palloc(pool, sizeof(*st));
                sl__guard_sess_init(st, pool, whole->policy);
                whole_out = apply(whole, SL_GUARD_OUTPUT, text, &rc1);
                stream_out = streamed(st, text, chunks[c], &rc2, &cut);
                assert_int_equal(rc1, 0);
                assert_int_equal(rc2, 0);
                if (strcmp(stream_out, whole_out) != 0) {
                    fail_msg("%d lines, END %d, pieces of %zu:\n whole  \"%s\"\n stream \"%s\"",
                             lines[l], end, chunks[c], whole_out, stream_out);
                }
                assert_string_equal(stream_out,
                                    end ? "key: [SECRET_1]\nthen [EMAIL_1]" : "key: [SECRET_1]");
                assert_string_equal(decisions(whole), decisions(st));
            }
        }
    }
    /* past SL__GUARD_OPEN_MAX an open block goes out as it stands: its start is redacted */
    st = sess(pool, "detect secret redact out");
    sl_buf_clear(&body);
    sl_buf_puts(&body, "-----BEGIN PRIVATE KEY-----\n");
    while (body.len < SL__GUARD_OPEN_MAX + 4096) {
        sl_buf_puts(&body, line);
    }
    out = streamed(st, sl_pstrndup(pool, body.p, body.len), 4000, &rc, &cut);
    assert_int_equal(rc, 0);
    assert_true(strncmp(out, "[SECRET_1]", 10) == 0);
    assert_true(strlen(out) < body.len);
    sl_buf_free(&body);
    sl_pool_destroy(pool);
}


static void
test_stream_block(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    const char *text = "The plan for the next quarter is ready, and it mentions the codename "
                       "falcon in the third paragraph of the memo";
    sl__guard_sess_t *s = sess(pool, "deny falcon block out");
    const char *out;
    bool cut;
    int rc;

    (void) state;
    out = streamed(s, text, 7, &rc, &cut);
    assert_int_equal(rc, SL_EDENIED);
    /* everything before the match, and not a byte of it */
    assert_true(strncmp(text, out, strlen(out)) == 0);
    assert_null(strstr(out, "falcon"));
    assert_true(strlen(out) <= (size_t) (strstr(text, "falcon") - text));
    /* with only restores to do, nothing is held but a possible placeholder */
    s = sess(pool, "detect email redact restore");
    apply(s, SL_GUARD_INPUT, "me@home.org", &rc);
    {
        sl__guard_stream_t st;
        sl_buf_t piece = SL_BUF_INIT;

        memset(&st, 0, sizeof(st));
        assert_int_equal(sl__guard_stream_feed(s, &st, "Hello wor", 9, false, &piece), 0);
        assert_int_equal(piece.len, 9);
        sl_buf_clear(&piece);
        assert_int_equal(sl__guard_stream_feed(s, &st, "ld [EMA", 7, false, &piece), 0);
        assert_int_equal(piece.len, 3);
        sl_buf_clear(&piece);
        assert_int_equal(sl__guard_stream_feed(s, &st, "IL_1]!", 6, false, &piece), 0);
        assert_int_equal(piece.len, strlen("me@home.org!"));
        assert_memory_equal(piece.p, "me@home.org!", piece.len);
        sl_buf_free(&piece);
        sl__guard_stream_free(&st);
    }
    sl_pool_destroy(pool);
}


/*
 * A deny literal's white space matches a run of any length, so its match
 * can be longer than what a stream holds back: the stream holds from where
 * a partial match starts until it is decided, and blocks as the whole text
 * does (found by fuzz_guard_stream: a 90-byte run of form feeds).
 */
static void
test_stream_block_space_run(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl__guard_sess_t *s = sess(pool, "deny top~~secret! block out");
    char text[256];
    const char *out;
    size_t n;
    bool cut;
    int rc;

    (void) state;
    n = (size_t) snprintf(text, sizeof(text), "%s", "The memo was marked top");
    memset(text + n, '\f', 90);
    n += 90;
    snprintf(text + n, sizeof(text) - n, "%s", "secret! and it says more after that");
    apply(s, SL_GUARD_OUTPUT, text, &rc);
    assert_int_equal(rc, SL_EDENIED);
    for (size_t piece = 1; piece <= 13; piece += 4) {
        s = sess(pool, "deny top~~secret! block out");
        out = streamed(s, text, piece, &rc, &cut);
        assert_int_equal(rc, SL_EDENIED);
        assert_true(strncmp(text, out, strlen(out)) == 0);
        assert_true(strlen(out) <= strlen("The memo was marked "));
    }
    /* a partial match that the text then breaks goes out whole */
    s = sess(pool, "deny top~~secret! block out");
    memcpy(text + strlen("The memo was marked top") + 90, "secrets", 7);
    out = streamed(s, text, 5, &rc, &cut);
    assert_int_equal(rc, 0);
    assert_string_equal(out, text);
    sl_pool_destroy(pool);
}


static void
test_unquote(void **state)
{
    sl_buf_t b = SL_BUF_INIT;

    (void) state;
    assert_int_equal(sl__guard_unquote(sl_str_lit("\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\""), &b),
                     0);
    assert_int_equal(b.len, strlen("a\"b\\c\né😀"));
    assert_memory_equal(b.p, "a\"b\\c\né😀", b.len);
    sl_buf_clear(&b);
    assert_int_equal(sl__guard_unquote(sl_str_lit("\"\""), &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(sl__guard_unquote(sl_str_lit("x"), &b), SL_EPARSE);
    sl_buf_free(&b);
}


/*
 * sl__guard_decode (strict) of the literal raw's body, copied to a heap
 * block of its exact size first: a read past it is a sanitizer report.
 */
static int
exact_decode(sl_buf_t raw, sl_buf_t *out, sl__guard_map_t *map)
{
    size_t n = raw.len - 2;
    char *body = malloc(n > 0 ? n : 1);
    int rc;

    assert_non_null(body);
    memcpy(body, raw.p + 1, n);
    rc = sl__guard_decode(body, n, out, map, true);
    free(body);
    return rc;
}


/*
 * sl__guard_decode against the JSON reader's own decoding on generated
 * strings (plain runs of every length around the 16- and 32-byte copy
 * steps, and runs of several steps; every escape, \u with surrogate
 * pairs), and its map: decoded offsets map back into the raw string in
 * order, the end to the end. Odd rounds decode after a prefix already in
 * out (appended; the map is used on an empty one).
 */
static void
test_decode_generated(void **state)
{
    static const char *const esc[] = { "\\n",     "\\t",     "\\\"",    "\\\\",
                                       "\\/",     "\\b",     "\\f",     "\\r",
                                       "\\u00e9", "\\u0040", "\\u20ac", "\\ud83d\\ude00" };
    static const char plain[] = "abcdefghij@0123456789 .-";
    sl_pool_t *pool = sl_pool_create(0);
    sl_buf_t raw = SL_BUF_INIT, out = SL_BUF_INIT;
    sl__guard_map_t map = { 0 };
    unsigned seed = 7;

    (void) state;
    for (int round = 0; round < 2000; round++) {
        size_t pre = (size_t) (round % 2) * 3, n;
        sl_json_t *doc = sl_json_create(pool);
        sl_str_t want;

        sl_buf_clear(&raw);
        sl_buf_append(&raw, "\"", 1);
        for (int part = 0; part < 1 + round % 9; part++) {
            seed = seed * 1103515245u + 12345u;
            n = (seed >> 16) % (round % 5 == 0 ? 300 : 40);
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                sl_buf_append(&raw, &plain[(seed >> 8) % (sizeof(plain) - 1)], 1);
            }
            if ((seed >> 12) % 3 != 0) {
                sl_buf_puts(&raw, esc[(seed >> 20) % (sizeof(esc) / sizeof(esc[0]))]);
            }
        }
        sl_buf_append(&raw, "\"", 1);
        assert_int_equal(sl_json_parse(doc, raw.p, raw.len, NULL), 0);
        assert_int_equal(sl_json_string(doc, SL_JSON_ROOT, pool, &want), 0);
        sl_buf_clear(&out);
        sl_buf_append(&out, "pre", pre);
        assert_int_equal(exact_decode(raw, &out, &map), 0);
        assert_int_equal(out.len, pre + want.len);
        assert_memory_equal(out.p + pre, want.p, want.len);
        if (pre == 0) {
            size_t last = 0;

            for (size_t d = 0; d <= want.len; d++) {
                size_t r = sl__guard_map_raw(&map, d);

                assert_true(r >= last && r <= raw.len - 2);
                last = r;
            }
            assert_int_equal(sl__guard_map_raw(&map, want.len), raw.len - 2);
        }
        sl_pool_reset(pool);
    }
    free(map.v);
    sl_buf_free(&raw);
    sl_buf_free(&out);
    sl_pool_destroy(pool);
}


/*
 * sl__guard_decode strict (a request's string) refuses the escapes the
 * JSON reader refuses, and decodes them as they are when not (an answer's
 * literal, passed on whatever it holds); a bad escape fails either way.
 */
static void
test_decode_strict(void **state)
{
    static const struct {
        const char *in;
        bool lenient; /* decodes when not strict */
        const char *out;
    } cases[] = {
        { "a\\u0000b", true, "a\0b" },
        { "\\ud800 x", true, "\xed\xa0\x80 x" },
        { "x\\udc00", true, "x\xed\xb0\x80" },
        { "\\ud800\\u0041", true,
          "\xed\xa0\x80"
          "A" },
        { "\\ud83d\\ude00!", true, NULL }, /* a pair: strict decodes it too */
        { "\\u12G4", false, NULL },
        { "\\u12", false, NULL },
        { "\\x", false, NULL },
        { "tail\\", false, NULL },
    };
    sl_buf_t out = SL_BUF_INIT;
    sl__guard_map_t map = { 0 };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *in = cases[i].in;
        bool pair = strstr(in, "\\ud83d") != NULL;

        sl_buf_clear(&out);
        assert_int_equal(sl__guard_decode(in, strlen(in), &out, &map, true), pair ? 0 : SL_EPARSE);
        sl_buf_clear(&out);
        assert_int_equal(sl__guard_decode(in, strlen(in), &out, NULL, false),
                         cases[i].lenient ? 0 : SL_EPARSE);
        if (cases[i].out != NULL) {
            size_t want = strcmp(in, "a\\u0000b") == 0 ? 3 : strlen(cases[i].out);

            assert_int_equal(out.len, want);
            assert_memory_equal(out.p, cases[i].out, want);
        }
        if (pair) {
            assert_int_equal(out.len, 5);
            assert_memory_equal(out.p, "\xf0\x9f\x98\x80!", 5);
        }
    }
    free(map.v);
    sl_buf_free(&out);
}


/*
 * One escape (\n, \\ or \u00e9) at every position of plain runs of 0 to 100
 * bytes: before, across and after each 16- and 32-byte step of
 * sl__guard_decode, against the JSON reader, with the map of the escape.
 */
static void
test_decode_positions(void **state)
{
    static const char *const esc[] = { "\\n", "\\\\", "\\u00e9" };
    sl_pool_t *pool = sl_pool_create(0);
    sl_buf_t raw = SL_BUF_INIT, out = SL_BUF_INIT;
    sl__guard_map_t map = { 0 };

    (void) state;
    for (size_t e = 0; e < sizeof(esc) / sizeof(esc[0]); e++) {
        for (size_t len = 0; len <= 100; len++) {
            for (size_t pos = 0; pos <= len; pos++) {
                sl_json_t *doc = sl_json_create(pool);
                sl_str_t want;

                sl_buf_clear(&raw);
                sl_buf_append(&raw, "\"", 1);
                for (size_t i = 0; i < len; i++) {
                    if (i == pos) {
                        sl_buf_puts(&raw, esc[e]);
                    }
                    sl_buf_append(&raw, &"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36], 1);
                }
                if (pos == len) {
                    sl_buf_puts(&raw, esc[e]);
                }
                sl_buf_append(&raw, "\"", 1);
                assert_int_equal(sl_json_parse(doc, raw.p, raw.len, NULL), 0);
                assert_int_equal(sl_json_string(doc, SL_JSON_ROOT, pool, &want), 0);
                sl_buf_clear(&out);
                assert_int_equal(exact_decode(raw, &out, &map), 0);
                assert_int_equal(out.len, want.len);
                assert_memory_equal(out.p, want.p, want.len);
                assert_int_equal(map.n, 1);
                assert_int_equal(map.v[0].d, pos);
                assert_int_equal(map.v[0].r, pos);
                assert_int_equal(map.v[0].rl, strlen(esc[e]));
                sl_pool_reset(pool);
            }
        }
    }
    free(map.v);
    sl_buf_free(&raw);
    sl_buf_free(&out);
    sl_pool_destroy(pool);
}


#define CONF_HEAD                     \
    "server: {listen: 127.0.0.1:1}\n" \
    "providers: {demo: {kind: echo}}\n"

#define CONF_GOOD                                                                               \
    CONF_HEAD                                                                                   \
    "guardrails:\n"                                                                             \
    "  policies:\n"                                                                             \
    "    strict:\n"                                                                             \
    "      - {detect: [email, phone, card, iban, ip, secret], action: redact, restore: true}\n" \
    "      - {deny: [\"project  falcon\", \"re:(?i)internal[- ]only\"], action: block}\n"       \
    "      - {limits: {max_prompt_tokens: 8000, max_output_tokens: 2000, max_messages: 3,\n"    \
    "                  max_images: 1, max_body: 64KiB}}\n"                                      \
    "      - {models: [\"demo*\", \"demo/*\"], name: allowed}\n"                                \
    "      - {detect: [secret], on: both, action: log, name: keys}\n"                           \
    "    relaxed:\n"                                                                            \
    "      - {deny: [forbidden], on: output}\n"                                                 \
    "    empty:\n"                                                                              \
    "  apply: strict\n"                                                                         \
    "models:\n"                                                                                 \
    "  demo: {targets: [demo/echo], guard: relaxed}\n"                                          \
    "  demo-open: {targets: [demo/echo], guard: none}\n"                                        \
    "  demo-global: {targets: [demo/echo]}\n"


/* Loads yaml from a temporary file. */
static int
load(const char *yaml, sl_conf_t **conf, char *err, size_t errlen)
{
    char path[] = "/tmp/sl-guard-conf-XXXXXX";
    int fd = mkstemp(path), rc;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t) strlen(yaml));
    close(fd);
    rc = sl_conf_load(path, conf, err, errlen);
    unlink(path);
    return rc;
}


static void
test_conf(void **state)
{
    sl_conf_t *conf = NULL;
    const sl_guard_policy_t *p;
    const sl_guard_check_t *c;
    char err[512];

    (void) state;
    if (load(CONF_GOOD, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_non_null(conf->guard);
    assert_int_equal(conf->guard->npolicies, 3);
    p = sl_guard_find(conf->guard, "strict");
    assert_ptr_equal(conf->guard->apply, p);
    assert_int_equal(p->nchecks, 5);
    c = &p->checks[0];
    assert_int_equal(c->kind, SL_GUARD_DETECT);
    assert_int_equal(c->detect, (1u << SL_GUARD_DET_COUNT) - 1);
    assert_int_equal(c->action, SL_GUARD_REDACT);
    assert_true(c->restore);
    assert_int_equal(c->on, SL_GUARD_INPUT);
    c = &p->checks[1];
    assert_int_equal(c->kind, SL_GUARD_DENY);
    assert_int_equal(c->ndeny, 2);
    assert_string_equal(c->deny[0].lit, "project falcon");
    assert_true(c->deny[1].regex);
    assert_int_equal(c->on, SL_GUARD_INPUT | SL_GUARD_OUTPUT);
    assert_string_equal(c->deny_rule, "deny[2]");
    c = &p->checks[2];
    assert_int_equal(c->limits.max_prompt_tokens, 8000);
    assert_int_equal(c->limits.max_output_tokens, 2000);
    assert_int_equal(c->limits.max_messages, 3);
    assert_int_equal(c->limits.max_images, 1);
    assert_int_equal(c->limits.max_body, 64 * 1024);
    assert_int_equal(c->action, SL_GUARD_BLOCK);
    c = &p->checks[3];
    assert_int_equal(c->nmodels, 2);
    assert_string_equal(c->name, "allowed");
    assert_int_equal(p->checks[4].on, SL_GUARD_INPUT | SL_GUARD_OUTPUT);
    assert_int_equal(p->checks[4].action, SL_GUARD_LOG);
    assert_true(p->in_text);
    assert_true(p->out_text);
    assert_true(p->restore);
    assert_int_equal(p->hold, SL__GUARD_HOLD + strlen("project falcon"));
    assert_ptr_equal(sl_conf_model(conf, "demo", 4)->guard, sl_guard_find(conf->guard, "relaxed"));
    assert_ptr_equal(sl_conf_model(conf, "demo-open", 9)->guard, &sl_guard_policy_none);
    assert_null(sl_conf_model(conf, "demo-global", 11)->guard);
    assert_false(sl_guard_find(conf->guard, "relaxed")->in_text);
    assert_int_equal(sl_guard_find(conf->guard, "empty")->nchecks, 0);
    sl_conf_destroy(conf);
}


static void
test_conf_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } bad[] = {
        { "guardrails: {policies: {p: [{detect: [email, ssn]}]}}",
          "unknown detector \"ssn\" (email, phone, card, iban, ip, secret)" },
        { "guardrails: {policies: {p: [{detect: [email], deny: [x]}]}}",
          "a check of policy \"p\" needs exactly one of detect, deny, limits or models" },
        { "guardrails: {policies: {p: [{action: block}]}}",
          "a check of policy \"p\" needs exactly one of detect, deny, limits or models" },
        { "guardrails: {policies: {p: [{deny: [\"re:a(\"]}]}}", "deny pattern \"re:a(\": bad" },
        { "guardrails: {policies: {p: [{deny: [\"re:(?s)x\"]}]}}", "deny pattern \"re:(?s)x\": " },
        { "guardrails: {policies: {p: [{deny: [x], action: block, restore: true}]}}",
          "restore goes with action redact on the input" },
        { "guardrails: {policies: {p: [{limits: {max_messages: 2}, action: redact}]}}",
          "action must be block or log, not \"redact\"" },
        { "guardrails: {policies: {p: [{limits: {max_messages: 2}, on: output}]}}",
          "on: goes with detect and deny checks only" },
        { "guardrails: {policies: {p: [{limits: {max_tokens: 2}}]}}",
          "unknown key \"max_tokens\"" },
        { "guardrails: {policies: {p: [{detect: []}]}}", "detect must be a non-empty list" },
        { "guardrails: {policies: {p: [{detect: [ip], on: sideways}]}}",
          "on must be input, output or both, not \"sideways\"" },
        { "guardrails: {policies: {p: [{deny: [x], colour: red}]}}", "unknown key \"colour\"" },
        { "guardrails: {policies: {none: []}}", "\"none\" is reserved: it means no policy" },
        { "guardrails: {policies: {\"a b\": []}}", "invalid policy name \"a b\"" },
        { "guardrails: {policies: {p: []}, apply: q}", "unknown guardrail policy \"q\"" },
        { "guardrails: {policies: {p: []}}\nmodels: {m: {targets: [demo/echo], guard: zz}}",
          "unknown guardrail policy \"zz\"" },
    };
    char yaml[1024], err[512];
    sl_conf_t *conf = NULL;

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(yaml, sizeof(yaml), "%s%s\n", CONF_HEAD, bad[i].yaml);
        if (load(yaml, &conf, err, sizeof(err)) == 0) {
            fail_msg("loaded: %s", bad[i].yaml);
        }
        if (strstr(err, bad[i].msg) == NULL || strstr(err, "/tmp/sl-guard-conf-") != err) {
            fail_msg("%s:\n got  \"%s\"\n want \"...%s...\"", bad[i].yaml, err, bad[i].msg);
        }
    }
}


/* A chat call on body (and native, when not NULL: a frontend's own body). */
static sl_call_t *
chat_call(sl_pool_t *pool, const char *body, const char *native)
{
    sl_call_t *call = sl_pcalloc(pool, sizeof(*call));
    sl_json_t *doc = sl_json_create(pool);
    int64_t n = 0;

    call->pool = pool;
    call->api = SL_API_CHAT;
    call->raw = (sl_str_t){ body, strlen(body) };
    assert_int_equal(sl_json_parse(doc, body, strlen(body), NULL), 0);
    call->doc = doc;
    call->model = sl_json_get(doc, SL_JSON_ROOT, "model");
    call->native = call->raw;
    call->native_doc = doc;
    if (sl_json_int(doc, sl_json_get(doc, SL_JSON_ROOT, "max_tokens"), &n) == 0) {
        call->max_tokens = (uint64_t) n;
    }
    if (native != NULL) {
        sl_json_t *nd = sl_json_create(pool);

        call->native = (sl_str_t){ native, strlen(native) };
        assert_int_equal(sl_json_parse(nd, native, strlen(native), NULL), 0);
        call->native_doc = nd;
    }
    return call;
}


/*
 * A chat call whose one user message is n bytes of text, with nimages
 * images: image "part" (parts of the message), "tool" (inside a
 * tool_result part of it) or "system" (parts of a top-level system).
 */
static sl_call_t *
prompt_call(sl_pool_t *pool, size_t n, const char *image, unsigned nimages)
{
    static const char img[] = "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:x\"}}";
    char *x = sl_palloc(pool, n + 1);
    char *imgs = sl_pstrdup(pool, "");
    const char *part = "", *tool = "", *system = "";

    memset(x, 'x', n);
    x[n] = '\0';
    for (unsigned i = 0; i < nimages; i++) {
        imgs = sl_psprintf(pool, "%s%s%s", imgs, i > 0 ? "," : "", img);
    }
    if (strcmp(image, "part") == 0) {
        part = sl_psprintf(pool, ",%s", imgs);
    } else if (strcmp(image, "tool") == 0) {
        tool = sl_psprintf(
            pool, ",{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":[%s]}", imgs);
    } else if (strcmp(image, "system") == 0) {
        system = sl_psprintf(pool, "\"system\":[%s],", imgs);
    }
    return chat_call(pool,
                     sl_psprintf(pool,
                                 "{\"model\":\"demo-global\",%s\"messages\":[{\"role\":\"user\","
                                 "\"content\":[{\"type\":\"text\",\"text\":\"%s\"}%s%s]}]}",
                                 system, x, part, tool),
                     NULL);
}


/* A chat call whose one user message is the JSON string body a, b and c make. */
static sl_call_t *
text_call(sl_pool_t *pool, const char *a, const char *b, const char *c)
{
    return chat_call(pool,
                     sl_psprintf(pool,
                                 "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\","
                                 "\"content\":\"%s%s%s\"}]}",
                                 a, b, c),
                     NULL);
}


/* CONF_GOOD loaded (the test fails when it does not), and who asking for its model "demo-global".
 */
static sl_conf_t *
good_conf(sl_guard_who_t *who)
{
    sl_conf_t *conf = NULL;
    char err[512];

    if (load(CONF_GOOD, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    memset(who, 0, sizeof(*who));
    who->model = "demo-global";
    return conf;
}


/*
 * A policy of detectors and deny literals: its request strings with escapes
 * are scanned as twins (not those of "quoted" and "regex").
 */
#define CONF_TWIN                                                                               \
    CONF_HEAD                                                                                   \
    "guardrails:\n"                                                                             \
    "  policies:\n"                                                                             \
    "    pii:\n"                                                                                \
    "      - {detect: [email, phone, card, iban, ip, secret], action: redact, restore: true}\n" \
    "      - {detect: [secret], action: log, name: keys}\n"                                     \
    "      - {deny: [\"project  falcon\", \"top secret\"], action: redact}\n"                   \
    "    quoted: [{deny: [\"say \\\"hi\\\"\"]}]\n"                                              \
    "    regex: [{deny: [\"re:a.b\"]}]\n"                                                       \
    "  apply: pii\n"                                                                            \
    "models:\n"                                                                                 \
    "  demo-global: {targets: [demo/echo]}\n"


/*
 * The body a chat request whose message is the JSON string body text
 * becomes under CONF_TWIN, with strings with escapes scanned as twins or
 * decoded (twin false); *row: its decisions.
 */
static const char *
twin_request(sl_conf_t *conf, sl_pool_t *pool, const char *text, bool twin, const char **row)
{
    sl_guard_who_t who;
    sl_guard_req_t *g;
    sl_call_t *call = text_call(pool, text, "", "");
    sl_error_t e;

    memset(&who, 0, sizeof(who));
    who.model = "demo-global";
    who.body_len = call->raw.len;
    sl_answer_t a;
    sl_choice_t c;

    sl__guard_twin_enable(twin);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    sl__guard_twin_enable(true);
    assert_non_null(g);
    /* the originals the placeholders stand for, restored in an answer */
    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    c.text = sl_str_lit("\"[EMAIL_1] [EMAIL_2] [SECRET_1] [SECRET_2] [CARD_1] [IP_1] [PHONE_1]\"");
    a.choices = &c;
    a.nchoices = 1;
    assert_int_equal(sl_guard_answer(g, &a, &e), 0);
    *row = sl_psprintf(pool, "%s, answer %.*s", sl_guard_row(g), (int) c.text.len, c.text.p);
    /* the body the reader reads again: the tokens moved with the bytes */
    assert_int_equal(sl_json_parse(sl_json_create(pool), call->raw.p, call->raw.len, NULL), 0);
    return sl_pstrndup(pool, call->raw.p, call->raw.len);
}


/*
 * A string with escapes is scanned as its twin (no decode): the same body
 * and decisions as decoding it gives, on fixed strings and on strings
 * made of matches, near misses and escapes; a match holding an escape's
 * bytes (a private key block's line breaks), \/ and \u escapes take the
 * decode.
 */
static void
test_request_twin(void **state)
{
    static const char *const fixed[] = {
        "write to jane@example.com\\nor \\\"bob@example.org\\\", call +44 20 7946 0958\\tnow",
        "key:\\n-----BEGIN RSA PRIVATE KEY-----\\nMIIBOgIBAAJBAKj34GkxFhD9\\n-----END RSA PRIVATE "
        "KEY-----\\nmail a@b.io",
        "path C:\\\\x 10.0.0.1\\/24 a@b.io 1\\/2",
        "caf\\u00e9 a@b.io\\n",
        "no match\\n here",
        "project\\n  falcon, \\\"project falcon\\\", Top\\tSECRET\\\\ a@b.io",
    };
    static const char *const pieces[] = {
        "a@b.io",
        "jane.roe@example.com",
        "+44 20 7946 0958",
        "4111 1111 1111 1111",
        "4111111111111112",
        "10.0.0.1",
        "2001:db8::1",
        "DE89 3704 0044 0532 0130 00",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "project",
        "falcon",
        "Project Falcon",
        "top",
        "secret",
        "Top\\tSecret",
        "\\f",
        "\\b",
        " ",
        " ",
        "x",
        "12",
        "\\n",
        "\\n",
        "\\t",
        "\\\"",
        "\\\\",
        "\\r",
        "\\/",
        "\\u00e9",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIBOgIBAAJBAKj34GkxFhD9",
        "-----END RSA PRIVATE KEY-----",
        ".",
        "-",
        ":",
    };
    sl_pool_t *pool = sl_pool_create(0);
    sl_conf_t *conf = NULL;
    const char *body, *row, *row_dec;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    char err[512];
    sl_buf_t text = SL_BUF_INIT;

    (void) state;
    if (load(CONF_TWIN, &conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    /* a deny literal reads twins; a regex and a literal with a quote the decoded text */
    assert_false(sl_guard_find(conf->guard, "pii")->in_decode);
    assert_true(sl_guard_find(conf->guard, "quoted")->in_decode);
    assert_true(sl_guard_find(conf->guard, "regex")->in_decode);
    body = twin_request(conf, pool, fixed[0], true, &row);
    assert_string_equal(body, "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\","
                              "\"content\":\"write to [EMAIL_1]\\nor \\\"[EMAIL_2]\\\", call "
                              "[PHONE_1]\\tnow\"}]}");
    assert_string_equal(row, "pii/email/redact;pii/phone/redact, answer \"jane@example.com "
                             "bob@example.org [SECRET_1] [SECRET_2] [CARD_1] [IP_1] +44 20 7946 "
                             "0958\"");
    body = twin_request(conf, pool, fixed[1], true, &row);
    assert_non_null(strstr(body, "\"key:\\n[SECRET_1]\\nmail [EMAIL_1]\""));
    assert_string_equal(row, "pii/secret/redact;pii/keys/log;pii/email/redact, answer \"a@b.io "
                             "[EMAIL_2] -----BEGIN RSA PRIVATE KEY-----\\nMIIBOgIBAAJBAKj34GkxFhD9"
                             "\\n-----END RSA PRIVATE KEY----- [SECRET_2] [CARD_1] [IP_1] "
                             "[PHONE_1]\"");
    for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]) + 600; k++) {
        const char *t = k < sizeof(fixed) / sizeof(fixed[0]) ? fixed[k] : NULL;

        if (t == NULL) {
            sl_buf_clear(&text);
            for (unsigned i = (unsigned) (rng % 24) + 1; i > 0; i--) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                sl_buf_puts(&text, pieces[(rng >> 20) % (sizeof(pieces) / sizeof(pieces[0]))]);
            }
            t = sl_pstrndup(pool, text.p, text.len);
        }
        body = twin_request(conf, pool, t, true, &row);
        if (strcmp(body, twin_request(conf, pool, t, false, &row_dec)) != 0
            || strcmp(row, row_dec) != 0) {
            fail_msg("\"%s\": the twin gives %s (%s), the decode %s (%s)", t, body, row,
                     twin_request(conf, pool, t, false, &row_dec), row_dec);
        }
    }
    sl_buf_free(&text);
    sl_conf_destroy(conf);
    sl_pool_destroy(pool);
}


/*
 * A request string the guard cannot read is refused (400), whatever is
 * wrong with it and wherever: a control byte or invalid UTF-8 in its bytes,
 * \u0000 or a lone surrogate in its escapes (an escape of the wrong form
 * does not get past the JSON reader); short, or past the 32-byte
 * steps of the UTF-8 check, with an escape elsewhere in it or not. Text in
 * any script, escaped or not, is read and redacted.
 */
static void
test_request_text(void **state)
{
    static const char *const bad[] = {
        "\xc3",    "\xc0\xaf",  "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x01", "\xe2\x80 ",
        "\\u0000", "\\ud800 x", "\\udc00",      "\\ud800\\u0041",   "\xff"
    };
    static const char *const good[] = {
        "caf\xc3\xa9", "\xe2\x80\x94",   "\xf0\x9f\x98\x80",
        "\\u00e9",     "\\ud83d\\ude00", "\xe6\x97\xa5\xe6\x9c\xac"
    };
    static const char *const pre[] = { "", "0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 " };
    sl_pool_t *pool = sl_pool_create(0);
    sl_conf_t *conf = NULL;
    sl_guard_who_t who;
    sl_guard_req_t *g;
    sl_call_t *call;
    sl_error_t e;

    (void) state;
    conf = good_conf(&who);
    who.body_len = 100;
    for (size_t p = 0; p < 2; p++) {
        for (size_t esc = 0; esc < 2; esc++) {
            const char *tail = esc ? " mail a@b.io\\n" : " mail a@b.io";

            for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                call = text_call(pool, pre[p], bad[i], tail);
                assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
                assert_int_equal(e.status, 400);
                if (strstr(e.message, "it is not valid UTF-8 JSON text") == NULL) {
                    fail_msg("case %zu (prefix %zu, escape %zu): %s", i, p, esc, e.message);
                }
            }
            for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                call = text_call(pool, pre[p], good[i], tail);
                assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
                assert_non_null(
                    strstr(call->raw.p, sl_psprintf(pool, "%s%s mail [EMAIL_1]", pre[p], good[i])));
            }
            sl_pool_reset(pool);
        }
    }
    sl_conf_destroy(conf);
    sl_pool_destroy(pool);
}


static void
test_request(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_conf_t *conf = NULL;
    sl_guard_who_t who;
    sl_guard_req_t *g;
    sl_call_t *call;
    sl_error_t e;
    size_t n;

    (void) state;
    conf = good_conf(&who);
    who.body_len = 100;

    /* redacted in the internal body and in the client's own, with the same placeholders */
    call = chat_call(pool,
                     "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"mail a@b.io, card 4111 1111 1111 1111\",\"name\":\"a@b.io\"}]}",
                     "{\"model\":\"demo-global\",\"system\":\"x\",\"messages\":[{\"role\":\"user\","
                     "\"content\":[{\"type\":\"text\",\"text\":\"mail a@b.io, card 4111 1111 1111 "
                     "1111\"}]}]}");
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    assert_non_null(g);
    assert_string_equal(sl_guard_policy_name(g), "strict");
    assert_string_equal(call->raw.p, "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\","
                                     "\"content\":\"mail [EMAIL_1], card [CARD_1]\",\"name\":"
                                     "\"a@b.io\"}]}");
    assert_non_null(strstr(call->native.p, "\"text\":\"mail [EMAIL_1], card [CARD_1]\""));
    assert_int_equal(sl_json_type(call->doc, sl_json_get(call->doc, SL_JSON_ROOT, "messages")),
                     SL_JSON_ARRAY);
    assert_true(sl_guard_filters_output(g));
    assert_string_equal(sl_guard_row(g), "strict/email/redact;strict/card/redact");
    assert_non_null(sl_guard_decisions(g, &n));
    assert_int_equal(n, 2);

    /*
     * a string with escapes: checked decoded, the placeholders put in place of the match's
     * own bytes (escapes included), the rest of the string left as it was written
     */
    call = chat_call(pool,
                     "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"line\\none \\u0061@b.io\\t\\\"q\\\" x@y\\u002eio \\u00e9 4111 1111 1111 "
                     "1111\\n\"}],\"max_tokens\":5}",
                     NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    assert_string_equal(call->raw.p,
                        "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"line\\none [EMAIL_1]\\t\\\"q\\\" [EMAIL_2] \\u00e9 [CARD_1]\\n\"}],"
                        "\"max_tokens\":5}");
    /* the tokens moved with the bytes: the reader still reads the new body */
    {
        int msgs = sl_json_get(call->doc, SL_JSON_ROOT, "messages");
        int content = sl_json_get(call->doc, sl_json_first(call->doc, msgs), "content");
        sl_str_t text;
        int64_t mt;

        assert_int_equal(sl_json_string(call->doc, content, pool, &text), 0);
        assert_string_equal(text.p, "line\none [EMAIL_1]\t\"q\" [EMAIL_2] \xc3\xa9 [CARD_1]\n");
        assert_int_equal(
            sl_json_int(call->doc, sl_json_get(call->doc, SL_JSON_ROOT, "max_tokens"), &mt), 0);
        assert_int_equal(mt, 5);
    }
    /* and restored in an answer literal written as is, or with \\u escapes (decoded) */
    {
        sl_answer_t a;
        sl_choice_t c;
        const char *raw = "{\"x\":\"[EMAIL_2] and [EMAIL_1], [CARD_1] [EMAIL_9]\"}";

        memset(&a, 0, sizeof(a));
        memset(&c, 0, sizeof(c));
        a.raw = (sl_str_t){ raw, strlen(raw) };
        c.text = (sl_str_t){ raw + 5, strlen(raw) - 6 };
        a.choices = &c;
        a.nchoices = 1;
        assert_int_equal(sl_guard_answer(g, &a, &e), 0);
        assert_true(
            strncmp(c.text.p, "\"x@y.io and a@b.io, 4111 1111 1111 1111 [EMAIL_9]\"", c.text.len)
            == 0);
        /* the provider's body passed on with the literal replaced in place */
        assert_true(
            a.raw.len == strlen("{\"x\":\"x@y.io and a@b.io, 4111 1111 1111 1111 [EMAIL_9]\"}")
            && memcmp(a.raw.p, "{\"x\":\"x@y.io and a@b.io, 4111 1111 1111 1111 [EMAIL_9]\"}",
                      a.raw.len)
                   == 0);
        c.text = sl_str_lit("\"\\u005bEMAIL_1] \\\"[CARD_1]\\\"\"");
        a.raw = sl_str_null;
        assert_int_equal(sl_guard_answer(g, &a, &e), 0);
        assert_true(strncmp(c.text.p, "\"a@b.io \\\"4111 1111 1111 1111\\\"\"", c.text.len) == 0);
        assert_null(a.raw.p);
    }

    /* blocked: a deny literal across white space, before any upstream call */
    call = chat_call(pool,
                     "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"about PROJECT\\n falcon\"}]}",
                     NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "guardrail_blocked");
    assert_non_null(strstr(e.message, "policy \"strict\", rule \"deny[2]\""));
    assert_null(strstr(e.message, "falcon"));
    assert_string_equal(sl_guard_row(g), "strict/deny[2]/block");

    /* limits: messages (400), output tokens, body (413), images; models (403) */
    call = chat_call(pool,
                     "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"a\"},{\"role\":\"user\",\"content\":\"b\"},{\"role\":\"user\","
                     "\"content\":\"c\"},{\"role\":\"user\",\"content\":\"d\"}]}",
                     NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "guardrail_limit_exceeded");
    assert_non_null(strstr(e.message, "rule \"max_messages\": The request has 4 messages; at "
                                      "most 3 are allowed."));
    call = chat_call(pool, "{\"model\":\"demo-global\",\"max_tokens\":2001,\"messages\":[]}", NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_string_equal(e.param, "max_tokens");
    call = chat_call(pool,
                     "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:a@b.io\"}},"
                     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
                     NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_non_null(strstr(e.message, "max_images"));
    who.body_len = 65 * 1024;
    call = chat_call(pool, "{\"model\":\"demo-global\",\"messages\":[]}", NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_int_equal(e.status, 413);
    who.body_len = 100;
    who.model = "gpt-4o";
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_int_equal(e.status, 403);
    assert_string_equal(e.code, "model_not_allowed");
    assert_string_equal(sl_guard_row(g), "strict/allowed/block");
    who.model = "demo-global";

    /* max_prompt_tokens (8000) counts the text, not the JSON around it, and an image as 1024
       bytes: 32000 bytes of text pass, 32004 do not, nor 31000 with an image */
    call = prompt_call(pool, 32000, "", 0);
    assert_true(call->raw.len / 4 > 8000);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    call = prompt_call(pool, 32004, "", 0);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_non_null(strstr(e.message, "max_prompt_tokens"));
    /* an image in a tool result or in a top-level system counts for the estimate too */
    for (size_t i = 0; i < 3; i++) {
        call = prompt_call(pool, 31000, (const char *[]){ "part", "tool", "system" }[i], 1);
        assert_true(call->raw.len / 4 < 8000);
        assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
        assert_non_null(strstr(e.message, "max_prompt_tokens"));
    }
    /* max_images (1) counts the messages' own image parts: two fail, two in a tool result pass */
    call = prompt_call(pool, 10, "part", 2);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_EDENIED);
    assert_non_null(strstr(e.message, "The request has 2 images; at most 1 are allowed."));
    call = prompt_call(pool, 10, "tool", 2);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    call = prompt_call(pool, 10, "part", 1);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);

    /* who decides: key > team > model > global; "none" stops the chain */
    who.model = "demo";
    who.model_policy = sl_conf_model(conf, "demo", 4)->guard;
    call = chat_call(pool,
                     "{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"a@b.io\"}]}",
                     NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    assert_string_equal(sl_guard_policy_name(g), "relaxed");
    assert_non_null(strstr(call->raw.p, "a@b.io")); /* relaxed reads only the answer */
    who.team_guard = "strict";
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    assert_string_equal(sl_guard_policy_name(g), "strict");
    who.key_guard = "none";
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    assert_null(g);
    assert_string_equal(sl_guard_row(g), "");
    who.key_guard = "gone";
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), SL_ENOTFOUND);
    assert_int_equal(e.status, 500);
    assert_non_null(strstr(e.message, "\"gone\""));
    who.key_guard = NULL;
    who.team_guard = NULL;
    who.model_policy = sl_conf_model(conf, "demo-open", 9)->guard;
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    assert_null(g);

    sl_conf_destroy(conf);
    sl_pool_destroy(pool);
}


static void
test_answer_and_events(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_conf_t *conf = NULL;
    sl_guard_who_t who;
    sl_guard_req_t *g;
    sl_call_t *call;
    sl_error_t e;
    sl_answer_t a;
    sl_choice_t ch;
    sl_tool_call_t tc;
    sl_evs_t evs;
    sl_ev_t ev;
    sl_buf_t text = SL_BUF_INIT;

    (void) state;
    conf = good_conf(&who);
    call = chat_call(pool,
                     "{\"model\":\"demo-global\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"mail \\\"q\\\"@b.io or a@b.io\"}]}",
                     NULL);
    assert_int_equal(sl_guard_request(conf->guard, &who, call, &g, &e), 0);
    assert_non_null(strstr(call->raw.p, "[EMAIL_1]"));

    /* a whole answer: text and tool arguments restored (JSON-escaped in the arguments) */
    memset(&a, 0, sizeof(a));
    memset(&ch, 0, sizeof(ch));
    memset(&tc, 0, sizeof(tc));
    ch.text = sl_str_lit("\"Sent to [EMAIL_1].\"");
    tc.args = sl_str_lit("\"{\\\"to\\\":\\\"[EMAIL_1]\\\"}\"");
    ch.tools = &tc;
    ch.ntools = 1;
    a.choices = &ch;
    a.nchoices = 1;
    a.raw = sl_str_lit("{}");
    assert_int_equal(sl_guard_answer(g, &a, &e), 0);
    assert_null(a.raw.p);
    assert_int_equal(ch.text.len, strlen("\"Sent to a@b.io.\""));
    assert_memory_equal(ch.text.p, "\"Sent to a@b.io.\"", ch.text.len);

    /* output deny in a stream: the text before it goes out, then the error */
    memset(&evs, 0, sizeof(evs));
    evs.pool = pool;
    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_TEXT;
    ev.text = sl_str_lit("\"Hello [EMAIL_1], the word is \"");
    sl_evs_push(&evs, &ev);
    evs.raw = sl_str_lit("raw bytes");
    assert_int_equal(sl_guard_events(g, &evs, false, &e), 0);
    assert_null(evs.raw.p);
    for (size_t i = 0; i < evs.n; i++) {
        assert_int_equal(sl__guard_unquote(evs.v[i].text, &text), 0);
    }
    sl_evs_reset(&evs);
    ev.text = sl_str_lit("\"Internal-Only, sorry\"");
    sl_evs_push(&evs, &ev);
    /* held back (it could still grow) until the choice finishes */
    assert_int_equal(sl_guard_events(g, &evs, false, &e), 0);
    assert_int_equal(evs.n, 0);
    ev.type = SL_EV_FINISH;
    ev.text = sl_str_null;
    ev.finish = SL_FINISH_STOP;
    sl_evs_push(&evs, &ev);
    assert_int_equal(sl_guard_events(g, &evs, false, &e), SL_EDENIED);
    for (size_t i = 0; i < evs.n; i++) {
        assert_int_equal(sl__guard_unquote(evs.v[i].text, &text), 0);
    }
    assert_int_equal(text.len, strlen("Hello a@b.io, the word is "));
    assert_memory_equal(text.p, "Hello a@b.io, the word is ", text.len);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "rule \"output:deny[2]\": the answer contains"));
    assert_non_null(strstr(sl_guard_row(g), "strict/output:deny[2]/block"));
    sl_buf_free(&text);
    sl_conf_destroy(conf);
    sl_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detectors),
        cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_redact_restore),
        cmocka_unit_test(test_placeholder_find),
        cmocka_unit_test(test_placeholder_table),
        cmocka_unit_test(test_block_and_output),
        cmocka_unit_test(test_stream_equals_whole),
        cmocka_unit_test(test_stream_long_key),
        cmocka_unit_test(test_stream_block),
        cmocka_unit_test(test_stream_block_space_run),
        cmocka_unit_test(test_unquote),
        cmocka_unit_test(test_decode_generated),
        cmocka_unit_test(test_decode_positions),
        cmocka_unit_test(test_decode_strict),
        cmocka_unit_test(test_luhn_generated),
        cmocka_unit_test(test_plain_generated),
        cmocka_unit_test(test_memo),
        cmocka_unit_test(test_memo_hash),
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_request_text),
        cmocka_unit_test(test_request_twin),
        cmocka_unit_test(test_answer_and_events),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
