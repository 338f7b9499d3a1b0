/*
 * Unit tests for core/base/str.c: equality (exact and ASCII case-insensitive),
 * trimming, strict decimal parsing with overflow, and the constant-time
 * compare, including inputs of different lengths.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/base/errno.h"
#include "core/base/str.h"


static sl_str_t str_of(const char *s);
static void assert_trim(const char *in, const char *want);
static void assert_u64(const char *in, unsigned long long want);
static void assert_u64_bad(const char *in);
static void test_hash2(void **state);
static void test_lit(void **state);
static void test_eq(void **state);
static void test_caseeq(void **state);
static void test_mem_caseeq(void **state);
static void test_trim(void **state);
static void test_to_u64(void **state);
static void test_to_u64_overflow(void **state);
static void test_to_u64_garbage(void **state);
static void test_ct_eq(void **state);
static void test_utf8_char_len(void **state);
static bool utf8_ref(const unsigned char *s, size_t n);
static void utf8_check(const unsigned char *s, size_t n);
static void test_utf8_text(void **state);


static sl_str_t
str_of(const char *s)
{
    sl_str_t r = { s, strlen(s) };

    return r;
}


static void
assert_trim(const char *in, const char *want)
{
    sl_str_t t = sl_str_trim(str_of(in));
    char got[64];

    assert_in_range(t.len, 0, sizeof(got) - 1);
    memcpy(got, t.p, t.len);
    got[t.len] = '\0';
    assert_string_equal(got, want);
    /* The result points into the input. */
    assert_true(t.p >= in && t.p + t.len <= in + strlen(in));
}


static void
assert_u64(const char *in, unsigned long long want)
{
    unsigned long long v = 12345;

    assert_rc(sl_str_to_u64(str_of(in), &v), 0);
    assert_int_equal(v, want);
}


static void
assert_u64_bad(const char *in)
{
    unsigned long long v = 12345;
    int rc = sl_str_to_u64(str_of(in), &v);

    if (rc != SL_EPARSE) {
        print_error("input \"%s\"\n", in);
    }
    assert_rc(rc, SL_EPARSE);
    /* A failed parse leaves *out alone. */
    assert_int_equal(v, 12345);
}


static void
test_lit(void **state)
{
    sl_str_t s = sl_str_lit("abc");
    sl_str_t n = sl_str_null;

    assert_int_equal(s.len, 3);
    assert_memory_equal(s.p, "abc", 3);
    assert_null(n.p);
    assert_int_equal(n.len, 0);
}


static void
test_eq(void **state)
{
    static const char nul[] = "ab\0c";

    assert_true(sl_str_eq(sl_str_lit("abc"), "abc"));
    assert_false(sl_str_eq(sl_str_lit("abc"), "abd"));
    assert_false(sl_str_eq(sl_str_lit("abc"), "ab"));
    assert_false(sl_str_eq(sl_str_lit("ab"), "abc"));
    assert_false(sl_str_eq(sl_str_lit("ABC"), "abc"));
    assert_true(sl_str_eq(sl_str_lit(""), ""));
    assert_true(sl_str_eq(sl_str_null, ""));
    assert_false(sl_str_eq(sl_str_null, "a"));
    /* A prefix of a longer buffer. */
    assert_true(sl_str_eq((sl_str_t){ "abcdef", 3 }, "abc"));
    /* Embedded NUL in a: never equal to the shorter C string. */
    assert_false(sl_str_eq((sl_str_t){ nul, sizeof(nul) - 1 }, "ab"));
}


static void
test_caseeq(void **state)
{
    assert_true(sl_str_caseeq(sl_str_lit("Content-Type"), "content-type"));
    assert_true(sl_str_caseeq(sl_str_lit("X-API-KEY"), "x-api-key"));
    assert_true(sl_str_caseeq(sl_str_lit("abc"), "ABC"));
    assert_false(sl_str_caseeq(sl_str_lit("abc"), "abd"));
    assert_false(sl_str_caseeq(sl_str_lit("abc"), "abcd"));
    assert_true(sl_str_caseeq(sl_str_null, ""));
    /* ASCII only: '@' (0x40) and '`' (0x60) differ by 0x20 but are not letters. */
    assert_false(sl_str_caseeq(sl_str_lit("@"), "`"));
    /* either side a prefix of the other, a NUL inside the counted side */
    assert_false(sl_str_caseeq(sl_str_lit("abcd"), "abc"));
    assert_false(sl_str_caseeq(sl_str_lit("ab"), "abc"));
    assert_false(sl_str_caseeq(sl_str_lit("abc"), ""));
    assert_false(sl_str_caseeq((sl_str_t){ "ab\0", 3 }, "ab"));
    assert_false(sl_str_caseeq((sl_str_t){ "ab\0d", 4 }, "ab"));
    assert_false(sl_str_caseeq(sl_str_lit("["), "{"));
    /* Non-ASCII bytes compare exactly. */
    assert_true(sl_str_caseeq(sl_str_lit("\xC3\xA9"), "\xC3\xA9"));
    assert_false(sl_str_caseeq(sl_str_lit("\xC3\xA9"), "\xC3\x89"));
}


static void
test_mem_caseeq(void **state)
{
    assert_true(sl_mem_caseeq("HeLLo", "hEllO", 5));
    assert_true(sl_mem_caseeq("abcX", "ABCy", 3));
    assert_false(sl_mem_caseeq("abcX", "ABCy", 4));
    assert_true(sl_mem_caseeq("", "", 0));
    assert_true(sl_mem_caseeq("a\0b", "A\0B", 3));
    /* eight bytes a step, then the rest: only A-Z and a-z fold, at every offset */
    assert_true(sl_mem_caseeq("Content-Type", "content-type", 12));
    assert_true(sl_mem_caseeq("X-SLUICE-REQUEST-ID", "x-sluice-request-id", 19));
    assert_false(sl_mem_caseeq("content-typf", "content-type", 12));
    assert_false(sl_mem_caseeq("Content-Type", "content-typ", 12));
    for (unsigned x = 0; x < 256; x++) {
        for (unsigned y = 0; y < 256; y++) {
            char a[17] = "0123456789abcdef", b[17] = "0123456789ABCDEF";
            bool want =
                x == y || ((x | 0x20) == (y | 0x20) && (x | 0x20) >= 'a' && (x | 0x20) <= 'z');

            a[x % 16] = (char) x;
            b[x % 16] = (char) y;
            assert_int_equal(sl_mem_caseeq(a, b, 16), want);
            assert_int_equal(sl_mem_caseeq(a + 8, b + 8, 8), x % 16 < 8 || want);
            assert_int_equal(sl_mem_caseeq(a + 4, b + 4, 12), x % 16 < 4 || want);
            assert_int_equal(sl_mem_caseeq(a + 1, b + 1, 9), x % 16 < 1 || x % 16 > 9 || want);
            assert_int_equal(sl_mem_caseeq(a + 11, b + 11, 5), x % 16 < 11 || want);
        }
    }
}


static void
test_trim(void **state)
{
    assert_trim("  abc  ", "abc");
    assert_trim("\t a b \t", "a b");
    assert_trim("abc", "abc");
    assert_trim("", "");
    assert_trim("   ", "");
    assert_trim("\t\t", "");
    /* Only spaces and tabs: CR, LF and other whitespace stay. */
    assert_trim(" \r\nx\n ", "\r\nx\n");
    assert_trim("\vx\f", "\vx\f");
}


static void
test_to_u64(void **state)
{
    assert_u64("0", 0);
    assert_u64("7", 7);
    assert_u64("1234567890", 1234567890ULL);
    assert_u64("007", 7);
    assert_u64("18446744073709551615", ULLONG_MAX);
    assert_u64("18446744073709551614", ULLONG_MAX - 1);
    /* Leading zeros do not count towards overflow. */
    assert_u64("000000000000000000000000042", 42);
    assert_u64("00018446744073709551615", ULLONG_MAX);
}


static void
test_to_u64_overflow(void **state)
{
    assert_u64_bad("18446744073709551616");
    assert_u64_bad("18446744073709551620");
    assert_u64_bad("18446744073709551699");
    assert_u64_bad("19000000000000000000");
    assert_u64_bad("99999999999999999999");
    assert_u64_bad("100000000000000000000");
    assert_u64_bad("184467440737095516150");
    assert_u64_bad("99999999999999999999999999999999999999");
}


static void
test_to_u64_garbage(void **state)
{
    unsigned long long v = 1;
    sl_str_t s;

    assert_u64_bad("");
    assert_u64_bad("-1");
    assert_u64_bad("+1");
    assert_u64_bad(" 1");
    assert_u64_bad("1 ");
    assert_u64_bad("1a");
    assert_u64_bad("a1");
    assert_u64_bad("0x10");
    assert_u64_bad("1.5");
    assert_u64_bad("1e3");
    assert_u64_bad("/");
    assert_u64_bad(":");
    assert_rc(sl_str_to_u64(sl_str_null, &v), SL_EPARSE);

    /* The length bounds the parse: digits after it are not read. */
    s.p = "12x";
    s.len = 2;
    assert_rc(sl_str_to_u64(s, &v), 0);
    assert_int_equal(v, 12);
    s.p = "1\0002";
    s.len = 3;
    assert_rc(sl_str_to_u64(s, &v), SL_EPARSE);
}


static void
test_ct_eq(void **state)
{
    assert_true(sl_str_ct_eq("secret", 6, "secret", 6));
    assert_false(sl_str_ct_eq("secret", 6, "secreT", 6));
    assert_false(sl_str_ct_eq("secret", 6, "Secret", 6));
    assert_true(sl_str_ct_eq("", 0, "", 0));
    assert_true(sl_str_ct_eq(NULL, 0, NULL, 0));

    /* Different lengths are never equal, whichever side is longer. */
    assert_false(sl_str_ct_eq("secret", 6, "secret2", 7));
    assert_false(sl_str_ct_eq("secret2", 7, "secret", 6));
    assert_false(sl_str_ct_eq("", 0, "a", 1));
    assert_false(sl_str_ct_eq("a", 1, "", 0));
    assert_false(sl_str_ct_eq(NULL, 0, "a", 1));

    /* A shorter input that matches the longer one's prefix followed by NULs. */
    assert_false(sl_str_ct_eq("ab", 2, "ab\0", 3));
    assert_false(sl_str_ct_eq("ab\0", 3, "ab", 2));

    /* A difference only in the last byte, and in the high bit. */
    assert_false(sl_str_ct_eq("sk-sluice-aaaa", 14, "sk-sluice-aaab", 14));
    assert_false(sl_str_ct_eq("\x80", 1, "\x00", 1));

    /* eight bytes a step, then the rest: one differing bit anywhere counts */
    for (size_t at = 0; at < 41; at++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            char x[41], y[41];

            memset(x, 'k', sizeof(x));
            memcpy(y, x, sizeof(y));
            y[at] = (char) (y[at] ^ (1u << bit));
            assert_false(sl_str_ct_eq(x, sizeof(x), y, sizeof(y)));
            assert_true(sl_str_ct_eq(x, sizeof(x), x, sizeof(x)));
            assert_false(sl_str_ct_eq(x, at, y, sizeof(y)));
        }
    }
}


/* Well-formed UTF-8 characters and what is refused (RFC 3629). */
static void
test_utf8_char_len(void **state)
{
    (void) state;
    assert_int_equal(sl_utf8_char_len("a", 1), 1);
    assert_int_equal(sl_utf8_char_len("\xc3\xa9", 2), 2);
    assert_int_equal(sl_utf8_char_len("\xe2\x82\xac", 3), 3);
    assert_int_equal(sl_utf8_char_len("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(sl_utf8_char_len("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
    assert_int_equal(sl_utf8_char_len("\xc3\xa9", 1), 0);         /* cut short */
    assert_int_equal(sl_utf8_char_len("\xa9", 1), 0);             /* a continuation byte */
    assert_int_equal(sl_utf8_char_len("\xc0\xaf", 2), 0);         /* overlong */
    assert_int_equal(sl_utf8_char_len("\xe0\x80\xaf", 3), 0);     /* overlong */
    assert_int_equal(sl_utf8_char_len("\xf0\x80\x80\xaf", 4), 0); /* overlong */
    assert_int_equal(sl_utf8_char_len("\xed\xa0\x80", 3), 0);     /* a surrogate */
    assert_int_equal(sl_utf8_char_len("\xf4\x90\x80\x80", 4), 0); /* past U+10FFFF */
    assert_int_equal(sl_utf8_char_len("\xe2\x82", 4), 0); /* a NUL where a continuation goes */
}

/* sl_str_hash2 hashes two strings as one: the same value as their concatenation. */
static void
test_hash2(void **state)
{
    assert_true(sl_str_hash2("model_down|", "gpt-4o") == sl_str_hash("model_down|gpt-4o"));
    assert_true(sl_str_hash2("", "x") == sl_str_hash("x"));
    assert_true(sl_str_hash2("ab", "") == sl_str_hash("ab"));
    assert_true(sl_str_hash2("", "") == sl_str_hash(""));
    assert_true(sl_str_hash2("a|", "b") != sl_str_hash2("a", "|c"));
    (void) state;
}


/*
 * The reference for sl_utf8_text: a character at a time by
 * sl_utf8_char_len (tested on its own above), no byte below 0x20.
 */
static bool
utf8_ref(const unsigned char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        k = sl_utf8_char_len((const char *) s + i, n - i);
        if (k == 0 || s[i] < 0x20) {
            return false;
        }
    }
    return true;
}


/* sl_utf8_text of s[0..n), byte by byte and with AVX2 (when the CPU has it), against utf8_ref. */
static void
utf8_check(const unsigned char *s, size_t n)
{
    bool want = utf8_ref(s, n);

    for (int simd = 0; simd < 2; simd++) {
        if (!sl_utf8_text_simd(simd == 1) && simd == 1) {
            break; /* this machine lacks AVX2 */
        }
        if ((sl_utf8_text((const char *) s, n) == 0) != want) {
            char hex[3 * 80 + 1] = "";

            for (size_t i = 0; i < n && i < 80; i++) {
                snprintf(hex + 3 * i, 4, "%02x ", s[i]);
            }
            fail_msg("%s: sl_utf8_text says %s, the reference %s: %zu bytes: %s",
                     simd == 1 ? "AVX2" : "bytewise", want ? "invalid" : "valid",
                     want ? "valid" : "invalid", n, hex);
        }
    }
}


/*
 * sl_utf8_text against the reference: every pair of bytes, every
 * three-byte sequence from E0..EF and the four-byte ones from F0..F7 with
 * bytes around the continuation range, each at the start, across the
 * 32-byte step (and the block before's last three bytes) and cut short at
 * the end; then generated strings of valid and broken sequences.
 */
static void
test_utf8_text(void **state)
{
    static const size_t at[] = { 0, 29, 30, 31, 33, 40 };
    static const unsigned char edge[] = { 0x00, 0x1f, 0x20, 0x7f, 0x80, 0x8f, 0x90,
                                          0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0 };
    static const char *const seqs[] = { "a",
                                        "\xc3\xa9",
                                        "\xe2\x80\x94",
                                        "\xf0\x9f\x98\x80",
                                        "\xed\x9f\xbf",
                                        "\xee\x80\x80",
                                        "\xf4\x8f\xbf\xbf",
                                        "\xef\xbf\xbf",
                                        "\xc2\x80",
                                        "\n",
                                        "\xc0\xaf",
                                        "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80",
                                        "\xe0\x9f\xbf",
                                        "\xf0\x8f\xbf\xbf",
                                        "\x80",
                                        "\xbf\xbf",
                                        "\xf8\x88\x80\x80",
                                        "\xc3",
                                        "\xe2\x80",
                                        "\xf0\x9f\x98",
                                        "\x01",
                                        "\xff" };
    unsigned char b[64];
    unsigned seed = 11;

    (void) state;
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        for (unsigned x = 0; x < 256; x++) {
            for (unsigned y = 0; y < 256; y++) {
                memset(b, 'a', sizeof(b));
                b[at[k]] = (unsigned char) x;
                b[at[k] + 1] = (unsigned char) y;
                utf8_check(b, at[k] + (k % 2 == 0 ? 2 : 9));
            }
        }
    }
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        for (unsigned x = 0xe0; x <= 0xf7; x++) {
            for (unsigned y = 0x70; y < 0xc4; y++) {
                for (size_t z = 0; z < sizeof(edge); z++) {
                    memset(b, 'a', sizeof(b));
                    b[at[k]] = (unsigned char) x;
                    b[at[k] + 1] = (unsigned char) y;
                    b[at[k] + 2] = edge[z];
                    b[at[k] + 3] = x >= 0xf0 ? edge[(z * 5 + y) % sizeof(edge)] : 'a';
                    utf8_check(b, at[k] + 4);
                    utf8_check(b, at[k] + 3); /* cut short, for a four-byte one */
                }
            }
        }
    }
    /* each sequence at every offset of ASCII text: the 128-byte ASCII steps' edges, open ends */
    for (size_t q = 0; q < sizeof(seqs) / sizeof(seqs[0]); q++) {
        size_t ql = strlen(seqs[q]) > 0 ? strlen(seqs[q]) : 1;

        for (size_t off = 0; off + ql <= 300; off++) {
            unsigned char t[300];

            memset(t, 'a', sizeof(t));
            memcpy(t + off, seqs[q], ql);
            utf8_check(t, sizeof(t));
            utf8_check(t, off + ql); /* ending with it */
        }
    }
    for (int round = 0; round < 20000; round++) {
        unsigned char t[400];
        size_t n = 0, want = (size_t) round % 380;

        while (n < want) {
            const char *q;
            size_t ql;

            seed = seed * 1103515245u + 12345u;
            /* mostly ASCII and valid sequences; a broken one now and then */
            q = (seed >> 16) % 4 != 0 ? "abc d" : seqs[(seed >> 8) % (round % 7 == 0 ? 23 : 10)];
            ql = strlen(q) > 0 ? strlen(q) : 1;
            if (n + ql > sizeof(t)) {
                break;
            }
            memcpy(t + n, q, ql);
            n += ql;
        }
        utf8_check(t, n);
    }
    sl_utf8_text_simd(true);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash2),
        cmocka_unit_test(test_lit),
        cmocka_unit_test(test_eq),
        cmocka_unit_test(test_caseeq),
        cmocka_unit_test(test_mem_caseeq),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_to_u64),
        cmocka_unit_test(test_to_u64_overflow),
        cmocka_unit_test(test_to_u64_garbage),
        cmocka_unit_test(test_ct_eq),
        cmocka_unit_test(test_utf8_char_len),
        cmocka_unit_test(test_utf8_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
