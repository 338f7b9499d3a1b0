/*
 * Unit tests for core/base/buf.c: append, puts, printf (short, empty and long
 * output), consume, reserve and its growth, clear and free.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/base/buf.h"

static void assert_buf(const sl_buf_t *b, const char *want);
static void test_init(void **state);
static void test_append(void **state);
static void test_append_empty(void **state);
static void test_append_growth(void **state);
static void test_puts(void **state);
static void test_printf(void **state);
static void test_printf_long(void **state);
static void test_consume(void **state);
static void test_reserve(void **state);
static void test_clear_free(void **state);
static void test_put_numbers(void **state);


/* b holds exactly want (no NUL termination assumed). */
static void
assert_buf(const sl_buf_t *b, const char *want)
{
    size_t n = strlen(want);

    assert_int_equal(b->len, n);
    assert_true(b->len <= b->cap);
    if (n > 0) {
        assert_memory_equal(b->p, want, n);
    }
}


static void
test_init(void **state)
{
    sl_buf_t b = SL_BUF_INIT;

    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    sl_buf_free(&b);
}


static void
test_append(void **state)
{
    sl_buf_t b = SL_BUF_INIT;

    sl_buf_append(&b, "hello", 5);
    assert_buf(&b, "hello");
    sl_buf_append(&b, ", world", 7);
    assert_buf(&b, "hello, world");
    sl_buf_append(&b, "\0x", 2);
    assert_int_equal(b.len, 14);
    assert_memory_equal(b.p, "hello, world\0x", 14);
    sl_buf_free(&b);
}


static void
test_append_empty(void **state)
{
    sl_buf_t b = SL_BUF_INIT;

    /* Zero bytes, even from NULL, change nothing and allocate nothing. */
    sl_buf_append(&b, NULL, 0);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    sl_buf_append(&b, "x", 1);
    sl_buf_append(&b, NULL, 0);
    assert_buf(&b, "x");
    sl_buf_free(&b);
}


static void
test_append_growth(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    size_t last_cap = 0;
    int grows = 0;

    /* 100000 appends of 3 bytes: content intact, capacity doubles. */
    for (size_t i = 0; i < 100000; i++) {
        char c[3] = { (char) ('a' + i % 26), (char) ('0' + i % 10), '-' };

        sl_buf_append(&b, c, 3);
        if (b.cap != last_cap) {
            if (last_cap != 0) {
                assert_int_equal(b.cap, last_cap * 2);
            }
            last_cap = b.cap;
            grows++;
        }
    }
    assert_int_equal(b.len, 300000);
    assert_in_range(grows, 2, 20);
    for (size_t i = 0; i < 100000; i++) {
        assert_int_equal(b.p[3 * i], 'a' + i % 26);
        assert_int_equal(b.p[3 * i + 1], '0' + i % 10);
        assert_int_equal(b.p[3 * i + 2], '-');
    }
    sl_buf_free(&b);
}


static void
test_puts(void **state)
{
    sl_buf_t b = SL_BUF_INIT;

    sl_buf_puts(&b, "abc");
    sl_buf_puts(&b, "");
    sl_buf_puts(&b, "def");
    assert_buf(&b, "abcdef");
    sl_buf_free(&b);
}


static void
test_printf(void **state)
{
    sl_buf_t b = SL_BUF_INIT;

    sl_buf_printf(&b, "%d:%s", 42, "x");
    assert_buf(&b, "42:x");
    /* printf output is NUL-terminated in the spare byte it reserves. */
    assert_int_equal(b.p[b.len], '\0');
    sl_buf_printf(&b, "%s", "");
    assert_buf(&b, "42:x");
    sl_buf_printf(&b, "|%05.1f|%zu", 3.14159, (size_t) 9);
    assert_buf(&b, "42:x|003.1|9");
    sl_buf_free(&b);
}


static void
test_printf_long(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    char big[5000];

    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sl_buf_puts(&b, "<");
    sl_buf_printf(&b, "%s>", big);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.p[0], '<');
    assert_int_equal(b.p[1], 'y');
    assert_int_equal(b.p[sizeof(big) - 1], 'y');
    assert_int_equal(b.p[sizeof(big)], '>');
    sl_buf_free(&b);
}


static void
test_consume(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    size_t cap;

    sl_buf_puts(&b, "0123456789");
    cap = b.cap;
    sl_buf_consume(&b, 0);
    assert_buf(&b, "0123456789");
    sl_buf_consume(&b, 3);
    assert_buf(&b, "3456789");
    sl_buf_consume(&b, 6);
    assert_buf(&b, "9");
    sl_buf_consume(&b, 1);
    assert_buf(&b, "");
    /* More than held empties the buffer; the storage stays. */
    sl_buf_puts(&b, "abc");
    sl_buf_consume(&b, 100);
    assert_buf(&b, "");
    assert_int_equal(b.cap, cap);
    assert_non_null(b.p);
    sl_buf_consume(&b, 1);
    assert_buf(&b, "");
    sl_buf_puts(&b, "again");
    assert_buf(&b, "again");
    sl_buf_free(&b);
}


static void
test_reserve(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    char *p;
    size_t cap;

    sl_buf_reserve(&b, 0);
    assert_int_equal(b.len, 0);

    sl_buf_reserve(&b, 10);
    assert_true(b.cap >= 10);
    cap = b.cap;
    p = b.p;
    /* Room already there: no reallocation. */
    sl_buf_reserve(&b, cap);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.p, p);

    /* Reserve is relative to len, not to cap. */
    sl_buf_append(&b, "abcd", 4);
    sl_buf_reserve(&b, cap - 4);
    assert_int_equal(b.cap, cap);
    sl_buf_reserve(&b, cap - 3);
    assert_true(b.cap >= cap + 1);
    assert_buf(&b, "abcd");

    /* A big jump goes straight to a power-of-two multiple big enough. */
    sl_buf_reserve(&b, 1000000);
    assert_true(b.cap >= 1000004);
    assert_buf(&b, "abcd");
    memset(b.p + b.len, 'z', 1000000);
    sl_buf_free(&b);
}


static void
test_clear_free(void **state)
{
    sl_buf_t b = SL_BUF_INIT;
    size_t cap;

    sl_buf_puts(&b, "content");
    cap = b.cap;
    sl_buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    sl_buf_puts(&b, "x");
    assert_buf(&b, "x");
    sl_buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* Freeing a freed buffer is harmless. */
    sl_buf_free(&b);
}


/* Decimal appends against printf, at the edges of their types. */
static void
test_put_numbers(void **state)
{
    static const unsigned long long u[] = {
        0, 1, 9, 10, 99, 100, 4294967295ULL, 4294967296ULL, 18446744073709551615ULL
    };
    static const long long s[] = {
        0, -1, 1, -10, 1796540836LL, -9223372036854775807LL - 1, 9223372036854775807LL
    };
    sl_buf_t b = SL_BUF_INIT, w = SL_BUF_INIT;

    (void) state;
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        sl_buf_clear(&b);
        sl_buf_clear(&w);
        sl_buf_put_u64(&b, u[i]);
        sl_buf_printf(&w, "%llu", u[i]);
        assert_int_equal(b.len, w.len);
        assert_memory_equal(b.p, w.p, w.len);
    }
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        sl_buf_clear(&b);
        sl_buf_clear(&w);
        sl_buf_puts(&b, "x");
        sl_buf_put_i64(&b, s[i]);
        sl_buf_printf(&w, "x%lld", s[i]);
        assert_int_equal(b.len, w.len);
        assert_memory_equal(b.p, w.p, w.len);
    }
    sl_buf_free(&b);
    sl_buf_free(&w);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),         cmocka_unit_test(test_append),
        cmocka_unit_test(test_append_empty), cmocka_unit_test(test_append_growth),
        cmocka_unit_test(test_puts),         cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_long),  cmocka_unit_test(test_consume),
        cmocka_unit_test(test_reserve),      cmocka_unit_test(test_clear_free),
        cmocka_unit_test(test_put_numbers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
