/*
 * Unit tests for core/base/json.c: what the reader accepts and refuses (compared
 * with jansson on fixed and mutated documents),
 * error positions, key lookup (escaped and repeated keys), nested paths,
 * iteration, string decoding, integers, growth of the token array, reuse of
 * one reader, nesting depth, the splice writer and the jansson bridge, the
 * strict check (against jansson) and the token writer (against the reader); and
 * that the reader stays linear on hostile bodies (sl__json_work(), the
 * reader's own step count, not a clock: issue 7's 1 MB of [] took 31 s).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unit/testutil.h"
#include <jansson.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/json_internal.h"
#include "core/base/pool.h"
#include "core/base/str.h"


/* A hostile body for test_linear: n repetitions of a worst case, and the values it holds. */
typedef struct shape {
    const char *name;
    void (*gen)(sl_buf_t *b, size_t n);
    size_t n;                   /* repetitions for a body of about 1 MiB */
    size_t (*values)(size_t n); /* values in the body (keys not counted) */
} shape_t;

static sl_json_t *parse_ok(sl_pool_t *pool, const char *s);
static void assert_str(const sl_json_t *doc, int v, const char *want);
static void assert_jansson_agrees(const char *p, size_t len, bool want_ok);
static void assert_same_tokens(const sl_json_t *moved, const sl_json_t *fresh, int ntok);
static void splice_many(sl_buf_t *src, unsigned units, sl_json_edit_t *ed, size_t *n);
static int setup(void **state);
static int teardown(void **state);
static void test_valid(void **state);
static void test_invalid(void **state);
static void test_mutations(void **state);
static void test_error_position(void **state);
static void test_types(void **state);
static void test_get(void **state);
static void test_path(void **state);
static void test_members(void **state);
static void test_lookup(void **state);
static void test_iterate(void **state);
static void test_string(void **state);
static void test_string_runs(void **state);
static void test_int(void **state);
static void test_growth(void **state);
static void test_reuse(void **state);
static void test_tok_boundary(void **state);
static void test_depth(void **state);
static void test_depth_limit(void **state);
static void test_linear(void **state);
static void test_linear_refused(void **state);
static void test_key_escape_bound(void **state);
static void test_skim(void **state);
static void test_skim_refused(void **state);
static void shape_open(sl_buf_t *b);
static void shape_list(sl_buf_t *b, size_t n, const char *item);
static void gen_arrays(sl_buf_t *b, size_t n);
static void gen_objects(sl_buf_t *b, size_t n);
static void gen_nest(sl_buf_t *b, size_t n);
static void gen_keys(sl_buf_t *b, size_t n);
static void gen_esckeys(sl_buf_t *b, size_t n);
static void gen_string(sl_buf_t *b, size_t n);
static void gen_strings(sl_buf_t *b, size_t n);
static void gen_numbers(sl_buf_t *b, size_t n);
static void gen_mixed(sl_buf_t *b, size_t n);
static size_t values_list(size_t n);
static size_t values_nest(size_t n);
static size_t values_keys(size_t n);
static size_t values_string(size_t n);
static size_t values_mixed(size_t n);
static void count_values(const sl_json_t *doc, int v, size_t *count);
static void assert_linear(const sl_json_t *doc, size_t len, const char *what);
static void test_splice(void **state);
static void test_splice_escape(void **state);
static void test_splice_strings(void **state);
static void test_splice_strings_many(void **state);
static void test_splice_strings_bytes(void **state);
static void test_dom(void **state);
static void test_strict(void **state);
static void test_writer(void **state);
static void test_quote_generated(void **state);
static void test_writer_misuse(void **state);


static int
setup(void **state)
{
    *state = sl_pool_create(0);
    return *state == NULL ? -1 : 0;
}


static int
teardown(void **state)
{
    sl_pool_destroy(*state);
    return 0;
}


static sl_json_t *
parse_ok(sl_pool_t *pool, const char *s)
{
    sl_json_t *doc = sl_json_create(pool);
    sl_json_error_t err;
    int rc = sl_json_parse(doc, s, strlen(s), &err);

    if (rc != 0) {
        print_error("parse of %s failed at %zu: %s\n", s, err.pos, err.text);
    }
    assert_rc(rc, 0);
    return doc;
}


static void
assert_str(const sl_json_t *doc, int v, const char *want)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_str_t s;

    assert_rc(sl_json_string(doc, v, pool, &s), 0);
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0) {
        print_error("string is \"%.*s\", want \"%s\"\n", (int) s.len, s.p, want);
        fail();
    }
    sl_pool_destroy(pool);
}


/* jansson (any top value) takes p exactly when want_ok says. */
static void
assert_jansson_agrees(const char *p, size_t len, bool want_ok)
{
    json_error_t e;
    json_t *root = json_loadb(p, len, JSON_DECODE_ANY, &e);

    if ((root != NULL) != want_ok) {
        print_error("jansson %s %.*s (%s)\n", root != NULL ? "takes" : "refuses", (int) len, p,
                    root != NULL ? "" : e.text);
        fail();
    }
    json_decref(root);
}


static void
test_valid(void **state)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        " { } ",
        "\t[ ]\r\n",
        "0",
        "-0",
        "1.5e10",
        "-12.0E-3 ",
        "true",
        "null",
        "\"\"",
        "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"",
        "{\"a\":1}",
        "{ \"a\" : 1 , \"b\" : [ 1 , 2 , { } ] }",
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}",
        "[[[[[]]]]]",
        "[{\"a\":{\"b\":{\"c\":[true,false,null]}}},\"x\",-1]",
        "{\"a\":{},\"b\":[],\"c\":\"\",\"d\":{\"e\":[[]]}}",
        "{\"\":0}",
        "[\"caf\xc3\xa9\",\"\xf0\x9f\x98\x80\"]",
    };

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        sl_json_t *doc = sl_json_create(*state);
        sl_json_error_t err;
        int rc = sl_json_parse(doc, docs[i], strlen(docs[i]), &err);

        if (rc != 0) {
            print_error("refused %s: %s at %zu\n", docs[i], err.text, err.pos);
        }
        assert_rc(rc, 0);
        assert_jansson_agrees(docs[i], strlen(docs[i]), true);
    }
}


static void
test_invalid(void **state)
{
    /* many of these are leniencies of jsmn, which the reader was built on before */
    static const char *const docs[] = {
        "",
        "   ",
        "{",
        "[",
        "}",
        "]",
        "{\"a\":1",
        "{\"a\":",
        "{\"a\"",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{\"a\"::1}",
        "{\"a\":1,}",
        "{,\"a\":1}",
        "{\"a\":1,,\"b\":2}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":\"b\":\"c\"}",
        "{\"a\":1:2}",
        "{1:2}",
        "{\"a\":{}:1}",
        "[1 2]",
        "[1,]",
        "[,1]",
        "[1,,2]",
        "[\"a\":1]",
        "[1:2]",
        "[1}",
        "{\"a\":[1}]",
        "[1]]",
        "tru",
        "nul",
        "truex",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "1e+",
        "+1",
        "0x10",
        "1 2",
        "{} {}",
        "{}x",
        "{\"model\":\"gpt-4o-mini\",\"messages\":[]}garbage",
        "not json at all",
        "'a'",
        "\"abc",
        "\"\\x\"",
        "\"\\u12g4\"",
        "\xef\xbb\xbf{}",
        "[true false]",
        "{\"a\":1}}",
    };

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        sl_json_t *doc = sl_json_create(*state);
        sl_json_error_t err;

        memset(&err, 0, sizeof(err));
        if (sl_json_parse(doc, docs[i], strlen(docs[i]), &err) != SL_EPARSE) {
            print_error("took %s\n", docs[i]);
            fail();
        }
        assert_non_null(err.text);
        assert_true(err.pos <= strlen(docs[i]));
        assert_int_equal(sl_json_type(doc, SL_JSON_ROOT), SL_JSON_NONE);
        assert_jansson_agrees(docs[i], strlen(docs[i]), false);
    }

    /* a NUL byte ends nothing: the rest must still be there and valid */
    {
        sl_json_t *doc = sl_json_create(*state);

        assert_rc(sl_json_parse(doc, "{\"a\":1}\0", 8, NULL), SL_EPARSE);
        assert_rc(sl_json_parse(doc, "{\"a\":\"b\0c\"}", 11, NULL), SL_EPARSE);
        assert_rc(sl_json_parse(doc, "[1,\0 2]", 7, NULL), SL_EPARSE);
    }
}


/*
 * Random edits of valid documents: the reader and jansson must agree on
 * every result, except where the reader documents that it does not look
 * (inside strings, and integers too big for jansson).
 */
static void
test_mutations(void **state)
{
    static const char *const seeds[] = {
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":false},\"max_tokens\":12}",
        "{\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"prompt_tokens_details\":"
        "{\"cached_tokens\":0}},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\nb\"}}]}",
        "[1,-2.5e3,true,false,null,\"x\",[],{},[[{\"a\":[0]}]]]",
    };
    static const char alphabet[] = "{}[]:,\"\\ 0123456789.-+eEtrufalsn\t\n";
    unsigned seed = 12345;
    size_t agree = 0;
    size_t accepted = 0;

    for (int iter = 0; iter < 200000; iter++) {
        const char *src = seeds[iter % 3];
        char buf[512];
        size_t len = strlen(src);
        int edits = 1 + (int) ((seed >> 8) % 3);
        sl_json_t *doc;
        json_error_t e;
        json_t *root;
        int rc;

        memcpy(buf, src, len);
        for (int k = 0; k < edits; k++) {
            size_t at;
            char c;

            seed = seed * 1103515245u + 12345u;
            at = (seed >> 4) % len;
            seed = seed * 1103515245u + 12345u;
            c = alphabet[(seed >> 4) % (sizeof(alphabet) - 1)];
            switch ((seed >> 12) % 3) {
            case 0: /* replace */
                buf[at] = c;
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
                break;
            }
        }
        doc = sl_json_create(*state);
        rc = sl_json_parse(doc, buf, len, NULL);
        root = json_loadb(buf, len, JSON_DECODE_ANY, &e);
        if (rc == 0 && root == NULL
            && (strstr(e.text, "\\u0000") != NULL || strstr(e.text, "Unicode") != NULL
                || strstr(e.text, "too big") != NULL || strstr(e.text, "control character") != NULL
                || strstr(e.text, "overflow") != NULL || strstr(e.text, "newline") != NULL)) {
            continue;
        }
        if ((rc == 0) != (root != NULL)) {
            print_error("reader %s, jansson %s (%s): %.*s\n", rc == 0 ? "takes" : "refuses",
                        root != NULL ? "takes" : "refuses", root != NULL ? "" : e.text, (int) len,
                        buf);
            fail();
        }
        agree++;
        accepted += rc == 0;
        json_decref(root);
        if (iter % 1000 == 999) {
            /* the docs live in the pool: start a fresh one now and then */
            sl_pool_destroy(*state);
            *state = sl_pool_create(0);
        }
    }
    assert_true(agree > 190000);
    assert_true(accepted > 1000);
}


static void
test_error_position(void **state)
{
    static const char doc_text[] = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    sl_json_t *doc = sl_json_create(*state);
    sl_json_error_t err;

    assert_rc(sl_json_parse(doc, doc_text, strlen(doc_text), &err), SL_EPARSE);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.column, 8);
    assert_int_equal(err.pos, 19);

    assert_rc(sl_json_parse(doc, "[1,2", 4, &err), SL_EPARSE);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, 5);
    assert_string_equal(err.text, "unexpected end of input");

    assert_rc(sl_json_parse(doc, "[1 2]", 5, &err), SL_EPARSE);
    assert_int_equal(err.column, 4);
    assert_string_equal(err.text, "',' or ']' expected");
}


static void
test_types(void **state)
{
    sl_json_t *doc =
        parse_ok(*state, "{\"o\":{\"x\":1,\"y\":2},\"a\":[1,2,3],\"s\":\"str\",\"n\":-1.5,"
                         "\"t\":true,\"f\":false,\"z\":null}");

    assert_int_equal(sl_json_type(doc, SL_JSON_ROOT), SL_JSON_OBJECT);
    assert_int_equal(sl_json_size(doc, SL_JSON_ROOT), 7);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, 0, "o")), SL_JSON_OBJECT);
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, 0, "o")), 2);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, 0, "a")), SL_JSON_ARRAY);
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, 0, "a")), 3);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, 0, "s")), SL_JSON_STRING);
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, 0, "s")), 0);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, 0, "n")), SL_JSON_NUMBER);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, 0, "t")), SL_JSON_TRUE);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, 0, "f")), SL_JSON_FALSE);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, 0, "z")), SL_JSON_NULL);
    assert_true(sl_json_is_true(doc, sl_json_get(doc, 0, "t")));
    assert_false(sl_json_is_true(doc, sl_json_get(doc, 0, "f")));
    assert_false(sl_json_is_true(doc, -1));
    assert_int_equal(sl_json_type(doc, -1), SL_JSON_NONE);
    assert_int_equal(sl_json_type(doc, 1000), SL_JSON_NONE);
    assert_int_equal(sl_json_type(NULL, SL_JSON_ROOT), SL_JSON_NONE);
    assert_int_equal(sl_json_get(NULL, SL_JSON_ROOT, "a"), -1);
    assert_int_equal(sl_json_first(NULL, SL_JSON_ROOT), -1);
    assert_null(sl_json_raw(NULL, SL_JSON_ROOT).p);

    /* raw spans: strings with their quotes, containers whole */
    {
        sl_str_t raw = sl_json_raw(doc, sl_json_get(doc, 0, "s"));

        assert_int_equal(raw.len, 5);
        assert_memory_equal(raw.p, "\"str\"", 5);
        raw = sl_json_raw(doc, sl_json_get(doc, 0, "o"));
        assert_int_equal(raw.len, 13);
        assert_memory_equal(raw.p, "{\"x\":1,\"y\":2}", 13);
        raw = sl_json_raw(doc, sl_json_get(doc, 0, "n"));
        assert_memory_equal(raw.p, "-1.5", raw.len);
        assert_int_equal(sl_json_offset(doc, sl_json_get(doc, 0, "o")), 5);
        assert_int_equal(sl_json_raw(doc, -1).len, 0);
    }
}


static void
test_get(void **state)
{
    sl_json_t *doc = parse_ok(
        *state,
        "{\"messages\":[{\"model\":\"inner\"},[\"model\"]],\"model\":\"first\",\"x\":{\"model\":2},"
        "\"mod\\u0065l\":\"escaped\",\"k\":1,\"k\":2}");

    /* the top-level member, not the ones inside skipped subtrees; the last of a repeat */
    assert_str(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), "escaped");
    assert_int_equal(sl_json_get(doc, SL_JSON_ROOT, "missing"), -1);
    assert_int_equal(sl_json_get(doc, sl_json_get(doc, 0, "messages"), "model"), -1);
    assert_int_equal(sl_json_get(doc, -1, "model"), -1);
    assert_memory_equal(sl_json_raw(doc, sl_json_get(doc, SL_JSON_ROOT, "k")).p, "2", 1);
    assert_int_equal(sl_json_get(doc, sl_json_get(doc, 0, "x"), "model"),
                     sl_json_path(doc, SL_JSON_ROOT, "x.model"));
}


static void
test_path(void **state)
{
    sl_json_t *doc = parse_ok(
        *state, "{\"id\":\"c1\",\"choices\":[{\"message\":{\"content\":\"usage\"}}],\"usage\":{"
                "\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21,"
                "\"prompt_tokens_details\":{\"cached_tokens\":4,\"audio_tokens\":0}},"
                "\"model\":\"gpt-4o-mini-2024-07-18\"}");
    int64_t n = 0;

    assert_rc(sl_json_int(doc, sl_json_path(doc, 0, "usage.prompt_tokens"), &n), 0);
    assert_int_equal(n, 9);
    assert_rc(
        sl_json_int(doc, sl_json_path(doc, 0, "usage.prompt_tokens_details.cached_tokens"), &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(sl_json_path(doc, 0, "usage.prompt_tokens.x"), -1);
    assert_int_equal(sl_json_path(doc, 0, "usage.nope.cached_tokens"), -1);
    assert_int_equal(sl_json_path(doc, 0, "choices.message"), -1);
    assert_str(doc, sl_json_path(doc, 0, "model"), "gpt-4o-mini-2024-07-18");
}


static void
test_lookup(void **state)
{
    static const char *const keys[] = { "model", "messages", "stream", "absent" };
    sl_json_t *doc = parse_ok(*state, "{\"stream\":false,\"model\":\"m\",\"messages\":[1],"
                                      "\"other\":{\"model\":\"x\",\"model\":\"y\"}}");
    int v[4];

    assert_rc(sl_json_lookup(doc, SL_JSON_ROOT, keys, 4, v), 0);
    assert_str(doc, v[0], "m");
    assert_int_equal(sl_json_type(doc, v[1]), SL_JSON_ARRAY);
    assert_int_equal(sl_json_type(doc, v[2]), SL_JSON_FALSE);
    assert_int_equal(v[3], -1);

    /* a repeat among the keys asked for is refused, also when escaped */
    doc = parse_ok(*state, "{\"model\":\"cheap\",\"messages\":[],\"model\":\"dear\"}");
    assert_rc(sl_json_lookup(doc, SL_JSON_ROOT, keys, 4, v), SL_EPARSE);
    doc = parse_ok(*state, "{\"model\":\"cheap\",\"m\\u006fdel\":\"dear\"}");
    assert_rc(sl_json_lookup(doc, SL_JSON_ROOT, keys, 4, v), SL_EPARSE);
    /* ... but not among the others, nor in nested objects */
    doc = parse_ok(*state, "{\"x\":1,\"x\":2,\"o\":{\"model\":1,\"model\":2},\"model\":\"m\"}");
    assert_rc(sl_json_lookup(doc, SL_JSON_ROOT, keys, 4, v), 0);
    assert_str(doc, v[0], "m");

    /* not an object: nothing found */
    doc = parse_ok(*state, "[\"model\"]");
    assert_rc(sl_json_lookup(doc, SL_JSON_ROOT, keys, 4, v), 0);
    assert_int_equal(v[0], -1);
    assert_rc(sl_json_lookup(doc, SL_JSON_ROOT, keys, SL_JSON_LOOKUP_MAX + 1, v), -EINVAL);
}


/* sl_json_members: sl_json_get's answer for each key, in one walk. */
static void
test_members(void **state)
{
    static const sl_str_t keys[] = {
        { "model", 5 }, { "messages", 8 }, { "stream", 6 }, { "absent", 6 }
    };
    static const char *const docs[] = {
        "{\"stream\":false,\"model\":\"m\",\"messages\":[1],\"o\":{\"model\":\"x\"}}",
        "{\"model\":\"cheap\",\"messages\":[],\"model\":\"dear\"}",
        "{\"model\":\"cheap\",\"m\\u006fdel\":\"dear\",\"stream\":true}",
        "{\"m\\u006fdel\":\"dear\",\"\\u0078\":1,\"model\":\"cheap\",\"str\\u0065am\":2}",
        "{\"messages\":1,\"\\u0078\":1,\"stream\\\"\":2,\"\\\\\":3}",
        "{\"o\":{\"model\":1,\"model\":2},\"model\":{\"a\":[{}]},\"x\":null}",
        "{}",
        "[\"model\"]",
        "\"model\"",
    };
    sl_json_t *doc;
    int v[4];

    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        doc = parse_ok(*state, docs[d]);

        sl_json_members(doc, SL_JSON_ROOT, keys, 4, v);
        for (size_t i = 0; i < 4; i++) {
            assert_int_equal(v[i], sl_json_get(doc, SL_JSON_ROOT, keys[i].p));
        }
    }
    doc = parse_ok(*state, docs[1]);
    sl_json_members(doc, SL_JSON_ROOT, keys, 4, v);
    assert_str(doc, v[0], "dear");
    sl_json_members(NULL, SL_JSON_ROOT, keys, 4, v);
    assert_int_equal(v[0], -1);
}


static void
test_iterate(void **state)
{
    sl_json_t *doc =
        parse_ok(*state, "{\"choices\":[{\"delta\":{\"content\":\"a\"}},[[1],[2]],3,{}],"
                         "\"o\":{\"k1\":[1,{\"z\":2}],\"k2\":null}}");
    int choices = sl_json_get(doc, 0, "choices");
    int o = sl_json_get(doc, 0, "o");
    sl_json_type_e want[] = { SL_JSON_OBJECT, SL_JSON_ARRAY, SL_JSON_NUMBER, SL_JSON_OBJECT };
    int n = 0;
    int k;

    for (int c = sl_json_first(doc, choices); c >= 0; c = sl_json_next(doc, choices, c)) {
        assert_true(n < 4);
        assert_int_equal(sl_json_type(doc, c), want[n]);
        n++;
    }
    assert_int_equal(n, 4);

    k = sl_json_first(doc, o);
    assert_str(doc, k, "k1");
    assert_int_equal(sl_json_type(doc, sl_json_key_value(doc, k)), SL_JSON_ARRAY);
    k = sl_json_next(doc, o, k);
    assert_str(doc, k, "k2");
    assert_int_equal(sl_json_type(doc, sl_json_key_value(doc, k)), SL_JSON_NULL);
    assert_int_equal(sl_json_next(doc, o, k), -1);

    assert_int_equal(sl_json_first(doc, sl_json_get(doc, sl_json_get(doc, 0, "o"), "k2")), -1);
    assert_int_equal(sl_json_first(doc, sl_json_path(doc, 0, "choices")) + 0, choices + 1);
    assert_int_equal(sl_json_key_value(doc, choices), -1);
}


static void
test_string(void **state)
{
    sl_json_t *doc = parse_ok(
        *state, "[\"plain\",\"a\\nb\\t\\\"q\\\"\\\\\\/\",\"caf\\u00e9 \\u20ac\","
                "\"\\ud83d\\ude00\",\"caf\xc3\xa9\",\"\\u0000\",\"\\ud800\",\"\\udc00x\","
                "\"\\ud800\\u0041\",\"bad\xff\",\"ctl\x01\",\"\xe0\x80\x80\",\"\xed\xa0\x80\","
                "\"\xf4\x90\x80\x80\",\"\",7]");
    int v[16];
    sl_str_t s;
    size_t len;
    int i = 0;

    for (int c = sl_json_first(doc, 0); c >= 0; c = sl_json_next(doc, 0, c)) {
        v[i++] = c;
    }
    assert_int_equal(i, 16);

    /* no escape: borrowed from the source */
    assert_rc(sl_json_string(doc, v[0], *state, &s), 0);
    assert_ptr_equal(s.p, sl_json_raw(doc, v[0]).p + 1);
    assert_str(doc, v[0], "plain");
    assert_str(doc, v[1], "a\nb\t\"q\"\\/");
    assert_str(doc, v[2], "caf\xc3\xa9 \xe2\x82\xac");
    assert_str(doc, v[3], "\xf0\x9f\x98\x80");
    assert_str(doc, v[4], "caf\xc3\xa9");
    assert_rc(sl_json_string_len(doc, v[2], &len), 0);
    assert_int_equal(len, 9);
    assert_rc(sl_json_string_len(doc, v[3], &len), 0);
    assert_int_equal(len, 4);

    /* what jansson refuses: \u0000, unpaired surrogates, invalid UTF-8, control characters */
    for (int k = 5; k <= 13; k++) {
        assert_rc(sl_json_string(doc, v[k], *state, &s), SL_EPARSE);
        assert_rc(sl_json_string_len(doc, v[k], &len), SL_EPARSE);
    }
    assert_str(doc, v[14], "");
    assert_rc(sl_json_string(doc, v[15], *state, &s), SL_EPARSE);
    assert_rc(sl_json_string(doc, -1, *state, &s), SL_EPARSE);
}


/*
 * The string scan takes sixteen bytes a step, then eight, then one: a
 * stop byte (an escape's backslash, the closing quote, a NUL) at every
 * position of strings of 0 to 80 bytes, each string at 16 alignments and
 * ending its buffer or followed by more, in a buffer of exactly its size
 * (ASan sees any read past it). The value must decode to what was
 * written; a NUL anywhere is refused.
 */
static void
test_string_runs(void **state)
{
    static const char *const stops[] = { "\\\"", "\\\\", "\\n", "" };

    for (size_t n = 0; n <= 80; n++) {
        for (size_t k = 0; k <= n; k++) {
            for (size_t st = 0; st < sizeof(stops) / sizeof(stops[0]); st++) {
                for (size_t pad = 0; pad < 16; pad++) {
                    for (int tail = 0; tail < 2; tail++) {
                        /* n plain bytes with stops[st] (or a NUL when "") at k */
                        char enc[128], want[128], *buf;
                        size_t elen = 0, wlen = 0, len;
                        bool nul = stops[st][0] == '\0';
                        sl_json_t *doc;
                        int rc;

                        for (size_t i = 0; i < n; i++) {
                            char c = (char) ('a' + (i * 7 + n) % 26);

                            if (i == k) {
                                continue;
                            }
                            enc[elen++] = c;
                            want[wlen++] = c;
                        }
                        if (k < n) {
                            /* the stop replaces byte k */
                            size_t at = k, sl = nul ? 1 : strlen(stops[st]);

                            memmove(enc + at + sl, enc + at, elen - at);
                            memcpy(enc + at, nul ? "\0" : stops[st], sl);
                            elen += sl;
                            memmove(want + k + 1, want + k, wlen - k);
                            want[k] = nul ? '\0' : stops[st][1] == 'n' ? '\n' : stops[st][1];
                            wlen++;
                        }
                        len = pad + 1 + elen + 1 + (tail ? 4 : 0);
                        buf = test_malloc(len);
                        memset(buf, ' ', pad);
                        buf[pad] = '"';
                        memcpy(buf + pad + 1, enc, elen);
                        buf[pad + 1 + elen] = '"';
                        if (tail) {
                            memcpy(buf + pad + 2 + elen, "  \n ", 4);
                        }
                        doc = sl_json_create(*state);
                        rc = sl_json_parse(doc, buf, len, NULL);
                        if (nul && k < n) {
                            assert_rc(rc, SL_EPARSE);
                        } else {
                            sl_str_t raw, got;

                            assert_rc(rc, 0);
                            raw = sl_json_raw(doc, SL_JSON_ROOT);
                            assert_int_equal(raw.len, elen + 2);
                            assert_ptr_equal(raw.p, buf + pad);
                            assert_rc(sl_json_string(doc, SL_JSON_ROOT, *state, &got), 0);
                            assert_int_equal(got.len, wlen);
                            assert_memory_equal(got.p, want, wlen);
                        }
                        test_free(buf);
                    }
                }
            }
        }
        /* the docs live in the pool: a fresh one per length */
        sl_pool_destroy(*state);
        *state = sl_pool_create(0);
    }
}


static void
test_int(void **state)
{
    sl_json_t *doc = parse_ok(*state, "[0,-0,42,-7,9223372036854775807,-9223372036854775808,"
                                      "9223372036854775808,-9223372036854775809,"
                                      "123456789012345678901234567890,1.0,1e3,\"5\",true]");
    int64_t want[] = { 0, 0, 42, -7, INT64_MAX, INT64_MIN };
    int64_t n;
    int v = sl_json_first(doc, 0);

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_rc(sl_json_int(doc, v, &n), 0);
        assert_true(n == want[i]);
        v = sl_json_next(doc, 0, v);
    }
    for (int i = 0; i < 3; i++) {
        assert_rc(sl_json_int(doc, v, &n), SL_ETOOBIG);
        v = sl_json_next(doc, 0, v);
    }
    for (int i = 0; i < 4; i++) {
        assert_rc(sl_json_int(doc, v, &n), SL_EPARSE);
        v = sl_json_next(doc, 0, v);
    }
    assert_int_equal(v, -1);
}


/* Far more tokens than the first array holds: it grows, and lookups still skip subtrees. */
static void
test_growth(void **state)
{
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t len = 0;
    sl_json_t *doc;
    int64_t n;
    int count = 0;

    assert_non_null(buf);
    len += (size_t) sprintf(buf + len, "{\"messages\":[");
    for (int i = 0; i < 5000; i++) {
        len += (size_t) sprintf(buf + len, "%s{\"role\":\"user\",\"content\":[%d,\"model\"]}",
                                i > 0 ? "," : "", i);
    }
    len += (size_t) sprintf(buf + len, "],\"model\":\"last\",\"max_tokens\":77}");
    doc = sl_json_create(*state);
    assert_rc(sl_json_parse(doc, buf, len, NULL), 0);
    assert_str(doc, sl_json_get(doc, 0, "model"), "last");
    assert_rc(sl_json_int(doc, sl_json_get(doc, 0, "max_tokens"), &n), 0);
    assert_int_equal(n, 77);
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, 0, "messages")), 5000);
    for (int m = sl_json_first(doc, sl_json_get(doc, 0, "messages")); m >= 0;
         m = sl_json_next(doc, sl_json_get(doc, 0, "messages"), m)) {
        int c = sl_json_first(doc, sl_json_get(doc, m, "content"));

        assert_rc(sl_json_int(doc, c, &n), 0);
        assert_int_equal(n, count);
        count++;
    }
    assert_int_equal(count, 5000);
    free(buf);
}


/* One reader, documents of changing size in turn; an error leaves no document behind. */
static void
test_reuse(void **state)
{
    sl_json_t *doc = sl_json_create(*state);
    char big[4096];
    size_t len = 0;
    int64_t n;

    big[len++] = '[';
    for (int i = 0; i < 500; i++) {
        len += (size_t) snprintf(big + len, sizeof(big) - len, "%s%d", i > 0 ? "," : "", i % 10);
    }
    big[len++] = ']';
    assert_rc(sl_json_parse(doc, "{\"a\":1}", 7, NULL), 0);
    assert_rc(sl_json_int(doc, sl_json_get(doc, 0, "a"), &n), 0);
    assert_rc(sl_json_parse(doc, big, len, NULL), 0);
    assert_int_equal(sl_json_size(doc, 0), 500);
    assert_rc(sl_json_parse(doc, "{\"b\":2}", 7, NULL), 0);
    assert_int_equal(sl_json_get(doc, 0, "a"), -1);
    assert_rc(sl_json_int(doc, sl_json_get(doc, 0, "b"), &n), 0);
    assert_int_equal(n, 2);
    assert_rc(sl_json_parse(doc, "{\"b\":", 5, NULL), SL_EPARSE);
    assert_int_equal(sl_json_type(doc, 0), SL_JSON_NONE);
    assert_int_equal(sl_json_get(doc, 0, "b"), -1);
}


/*
 * Token arrays around the first one's size (64 tokens, pool memory; then the
 * heap): arrays of k numbers for k about 64, 128 and far past it, each read
 * back whole; one reader going from small to big to small documents (the
 * tokens move to the heap with their values), in a pool reset between
 * rounds as a keep-alive connection's is; a writer copying a big subtree
 * into a fresh document.
 */
static void
test_tok_boundary(void **state)
{
    static const int ks[] = { 1, 62, 63, 64, 65, 66, 127, 128, 129, 300, 2000 };
    sl_pool_t *pool = sl_pool_create(6144);
    char *buf = malloc(16 * 2000 + 16);
    int64_t n;

    (void) state;
    assert_non_null(buf);
    for (int round = 0; round < 3; round++) {
        sl_json_t *one = sl_json_create(pool);

        for (size_t j = 0; j < sizeof(ks) / sizeof(ks[0]); j++) {
            sl_json_t *doc = sl_json_create(pool);
            size_t len = 0;
            int i = 0;

            buf[len++] = '[';
            for (int e = 0; e < ks[j]; e++) {
                len += (size_t) sprintf(buf + len, "%s%d", e > 0 ? "," : "", e * 7 + round);
            }
            buf[len++] = ']';
            assert_rc(sl_json_parse(doc, buf, len, NULL), 0);
            assert_rc(sl_json_parse(one, buf, len, NULL), 0);
            assert_int_equal(sl_json_size(doc, 0), ks[j]);
            assert_int_equal(sl_json_size(one, 0), ks[j]);
            for (int e = sl_json_first(doc, 0); e >= 0; e = sl_json_next(doc, 0, e), i++) {
                assert_rc(sl_json_int(doc, e, &n), 0);
                assert_int_equal(n, i * 7 + round);
                assert_rc(sl_json_int(one, e, &n), 0);
                assert_int_equal(n, i * 7 + round);
            }
            assert_int_equal(i, ks[j]);
        }
        assert_rc(sl_json_parse(one, "{\"a\":[1,2]}", 11, NULL), 0);
        assert_int_equal(sl_json_size(one, sl_json_get(one, 0, "a")), 2);
        assert_rc(sl_json_int(one, sl_json_first(one, sl_json_get(one, 0, "a")), &n), 0);
        assert_int_equal(n, 1);
        sl_pool_reset(pool);
    }
    sl_pool_destroy(pool);
    free(buf);
}


static void
test_depth(void **state)
{
    size_t deep = SL_JSON_MAX_DEPTH + 10;
    char *buf = malloc(deep * 2);
    sl_json_t *doc = sl_json_create(*state);
    sl_json_error_t err;

    assert_non_null(buf);
    for (size_t i = 0; i < deep; i++) {
        buf[i] = '[';
        buf[deep * 2 - 1 - i] = ']';
    }
    assert_rc(sl_json_parse(doc, buf, deep * 2, &err), SL_EPARSE);
    assert_string_equal(err.text, "maximum nesting depth reached");
    /* well inside the limit, with a grown frame stack */
    assert_rc(sl_json_parse(doc, buf + 20, deep * 2 - 40, NULL), 0);
    free(buf);
}


/*
 * The limit counts open non-empty containers and keys, as it always did:
 * 2049 arrays nest (the innermost, empty, opens nothing), 2050 do not; an
 * object level costs two (the object and its key).
 */
static void
test_depth_limit(void **state)
{
    sl_json_t *doc = sl_json_create(*state);
    sl_buf_t b = SL_BUF_INIT;
    sl_json_error_t err;

    for (int k = 0; k < 2; k++) {
        size_t n = SL_JSON_MAX_DEPTH + 1 + (size_t) k;

        sl_buf_clear(&b);
        for (size_t i = 0; i < n; i++) {
            sl_buf_append(&b, "[", 1);
        }
        for (size_t i = 0; i < n; i++) {
            sl_buf_append(&b, "]", 1);
        }
        assert_rc(sl_json_parse(doc, b.p, b.len, &err), k == 0 ? 0 : SL_EPARSE);
    }
    assert_string_equal(err.text, "maximum nesting depth reached");
    for (int k = 0; k < 2; k++) {
        size_t n = SL_JSON_MAX_DEPTH / 2 + (size_t) k;

        sl_buf_clear(&b);
        for (size_t i = 0; i < n; i++) {
            sl_buf_puts(&b, "{\"a\":");
        }
        sl_buf_append(&b, "0", 1);
        for (size_t i = 0; i < n; i++) {
            sl_buf_append(&b, "}", 1);
        }
        assert_rc(sl_json_parse(doc, b.p, b.len, &err), k == 0 ? 0 : SL_EPARSE);
    }
    assert_string_equal(err.text, "maximum nesting depth reached");
    sl_buf_free(&b);
}


/* {"model":"m","messages":[1],"x": — then the shape's value and "}" */
static void
shape_open(sl_buf_t *b)
{
    sl_buf_puts(b, "{\"model\":\"m\",\"messages\":[1],\"x\":");
}


/* x: [item,item,…] (n items), and the body's closing brace */
static void
shape_list(sl_buf_t *b, size_t n, const char *item)
{
    shape_open(b);
    sl_buf_append(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            sl_buf_append(b, ",", 1);
        }
        sl_buf_puts(b, item);
    }
    sl_buf_puts(b, "]}");
}


static void
gen_arrays(sl_buf_t *b, size_t n)
{
    shape_list(b, n, "[]");
}


static void
gen_objects(sl_buf_t *b, size_t n)
{
    shape_list(b, n, "{}");
}


static void
gen_strings(sl_buf_t *b, size_t n)
{
    shape_list(b, n, "\"a\\n\\u00e9\"");
}


static void
gen_numbers(sl_buf_t *b, size_t n)
{
    shape_list(b, n, "-1.5e+10");
}


static void
gen_mixed(sl_buf_t *b, size_t n)
{
    shape_list(b, n, "{\"a\":[1,\"s\",{}],\"b\":null}");
}


/* x: [[[…0…]],[[…0…]],…]: n groups 2000 deep, closed all at once */
static void
gen_nest(sl_buf_t *b, size_t n)
{
    shape_open(b);
    sl_buf_append(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            sl_buf_append(b, ",", 1);
        }
        for (int d = 0; d < 2000; d++) {
            sl_buf_append(b, "[", 1);
        }
        sl_buf_append(b, "0", 1);
        for (int d = 0; d < 2000; d++) {
            sl_buf_append(b, "]", 1);
        }
    }
    sl_buf_puts(b, "]}");
}


/* n top-level keys after model and messages (no "x") */
static void
gen_keys(sl_buf_t *b, size_t n)
{
    sl_buf_puts(b, "{\"model\":\"m\",\"messages\":[1]");
    for (size_t i = 0; i < n; i++) {
        sl_buf_printf(b, ",\"k%08zu\":0", i);
    }
    sl_buf_puts(b, "}");
}


/* as gen_keys, each key escaped (a lookup must not decode them all in full) */
static void
gen_esckeys(sl_buf_t *b, size_t n)
{
    sl_buf_puts(b, "{\"model\":\"m\",\"messages\":[1]");
    for (size_t i = 0; i < n; i++) {
        sl_buf_printf(b, ",\"\\u006b%08zu\":0", i);
    }
    sl_buf_puts(b, "}");
}


/* x: one string of n escape runs */
static void
gen_string(sl_buf_t *b, size_t n)
{
    shape_open(b);
    sl_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        sl_buf_puts(b, "\\\"\\\\\\n\\u00e9\\ud83d\\ude00 abc");
    }
    sl_buf_puts(b, "\"}");
}


/* root, model, messages, its 1, x and x's n elements */
static size_t
values_list(size_t n)
{
    return n + 5;
}


static size_t
values_nest(size_t n)
{
    return n * 2001 + 5;
}


static size_t
values_keys(size_t n)
{
    return n + 4;
}


static size_t
values_string(size_t n)
{
    (void) n;
    return 5;
}


static size_t
values_mixed(size_t n)
{
    return n * 6 + 5;
}


/* Every value under v, through first/next and key_value (keys are not values). */
static void
count_values(const sl_json_t *doc, int v, size_t *count)
{
    bool obj = sl_json_type(doc, v) == SL_JSON_OBJECT;

    (*count)++;
    for (int c = sl_json_first(doc, v); c >= 0; c = sl_json_next(doc, v, c)) {
        count_values(doc, obj ? sl_json_key_value(doc, c) : c, count);
    }
}


static void
assert_linear(const sl_json_t *doc, size_t len, const char *what)
{
    uint64_t work = sl__json_work(doc);

    if (work == 0 || work > 4 * (uint64_t) len + 8) {
        print_error("%s: %llu steps for %zu bytes (want 1 .. 4 * len + 8)\n", what,
                    (unsigned long long) work, len);
        fail();
    }
}


/*
 * Issue 7's shapes at about 1 MiB each: the reader takes them in a number
 * of steps linear in the size (the jsmn-based reader took minutes here,
 * past the test's timeout), builds the right tree, and a lookup still finds
 * the members around the big subtree.
 */
static void
test_linear(void **state)
{
    static const shape_t shapes[] = {
        { "arrays", gen_arrays, 350000, values_list },
        { "objects", gen_objects, 350000, values_list },
        { "nest", gen_nest, 260, values_nest },
        { "keys", gen_keys, 75000, values_keys },
        { "esckeys", gen_esckeys, 55000, values_keys },
        { "string", gen_string, 36000, values_string },
        { "strings", gen_strings, 90000, values_list },
        { "numbers", gen_numbers, 110000, values_list },
        { "mixed", gen_mixed, 35000, values_mixed },
    };
    static const char *const keys[] = { "model", "messages", "x", "stream" };

    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        const shape_t *sh = &shapes[i];
        sl_pool_t *pool = sl_pool_create(0);
        sl_json_t *doc = sl_json_create(pool);
        sl_buf_t b = SL_BUF_INIT;
        sl_json_error_t err;
        size_t count = 0;
        int v[4];
        int rc;

        sh->gen(&b, sh->n);
        assert_true(b.len > 900000);
        rc = sl_json_parse(doc, b.p, b.len, &err);
        if (rc != 0) {
            print_error("%s: %s at %zu\n", sh->name, err.text, err.pos);
        }
        assert_rc(rc, 0);
        assert_linear(doc, b.len, sh->name);
        count_values(doc, SL_JSON_ROOT, &count);
        if (count != sh->values(sh->n)) {
            print_error("%s: %zu values, want %zu\n", sh->name, count, sh->values(sh->n));
            fail();
        }
        assert_rc(sl_json_lookup(doc, SL_JSON_ROOT, keys, 4, v), 0);
        assert_str(doc, v[0], "m");
        assert_int_equal(sl_json_size(doc, v[1]), 1);
        assert_int_equal(v[3], -1);
        if (sh->values != values_keys) {
            assert_int_equal(sl_json_get(doc, SL_JSON_ROOT, "x"), v[2]);
            assert_true(v[2] > v[1]);
        }
        assert_int_equal(sl_json_offset(doc, SL_JSON_ROOT), 0);
        assert_int_equal(sl_json_raw(doc, SL_JSON_ROOT).len, b.len);
        sl_buf_free(&b);
        sl_pool_destroy(pool);
    }
}


/* Hostile bodies the reader refuses: it stops early, or at least in linear steps. */
static void
test_linear_refused(void **state)
{
    sl_json_t *doc = sl_json_create(*state);
    sl_buf_t b = SL_BUF_INIT;
    sl_json_error_t err;
    size_t n = 1 << 19;

    /* far too deep: refused at the limit, not after reading the rest */
    for (size_t i = 0; i < n; i++) {
        sl_buf_append(&b, "[", 1);
    }
    for (size_t i = 0; i < n; i++) {
        sl_buf_append(&b, "]", 1);
    }
    assert_rc(sl_json_parse(doc, b.p, b.len, &err), SL_EPARSE);
    assert_string_equal(err.text, "maximum nesting depth reached");
    assert_int_equal(err.pos, SL_JSON_MAX_DEPTH);
    assert_linear(doc, err.pos + 1, "deep");

    /* a million tiny arrays that never close: refused at the end, linearly */
    sl_buf_clear(&b);
    sl_buf_append(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        sl_buf_puts(&b, "[],");
    }
    assert_rc(sl_json_parse(doc, b.p, b.len, &err), SL_EPARSE);
    assert_int_equal(err.pos, b.len);
    assert_linear(doc, b.len, "unclosed");

    /* a bad byte at the very end of a big valid prefix */
    sl_buf_clear(&b);
    gen_objects(&b, n);
    b.p[b.len - 1] = ']';
    assert_rc(sl_json_parse(doc, b.p, b.len, &err), SL_EPARSE);
    assert_int_equal(err.pos, b.len - 1);
    assert_string_equal(err.text, "',' or '}' expected");
    assert_linear(doc, b.len, "bad end");
    assert_int_equal(sl_json_type(doc, SL_JSON_ROOT), SL_JSON_NONE);

    /* 1 GiB or more is refused before a byte is read (sizes must fit the tokens) */
    assert_rc(sl_json_parse(doc, b.p, (size_t) 1 << 30, &err), SL_ETOOBIG);
    assert_string_equal(err.text, "document too large");
    assert_int_equal(sl_json_type(doc, SL_JSON_ROOT), SL_JSON_NONE);
    sl_buf_free(&b);
}


/*
 * A lookup does not decode a key more than six times longer than the name
 * it looks for (no escape is longer than that), and still finds one that is
 * exactly that long.
 */
static void
test_key_escape_bound(void **state)
{
    sl_json_t *doc;
    int v;

    doc = parse_ok(*state, "{\"\\u006d\\u006f\\u0064\\u0065\\u006c\":1}");
    v = sl_json_get(doc, SL_JSON_ROOT, "model");
    assert_int_equal(sl_json_type(doc, v), SL_JSON_NUMBER);
    doc = parse_ok(*state, "{\"\\ud83d\\ude00\":1,\"\\u00e9\\u00e9\":2,\"\\/\":3}");
    assert_int_equal(sl_json_get(doc, SL_JSON_ROOT, "\xf0\x9f\x98\x80"), 2);
    assert_int_equal(sl_json_get(doc, SL_JSON_ROOT, "\xc3\xa9\xc3\xa9"), 4);
    assert_int_equal(sl_json_get(doc, SL_JSON_ROOT, "/"), 6);
    doc = parse_ok(*state, "{\"\\u006d\\u006f\\u0064\\u0065\\u006c \":1}");
    assert_int_equal(sl_json_get(doc, SL_JSON_ROOT, "model"), -1);
}


/*
 * sl_json_parse_skim: top-level containers not kept are one childless
 * token spanning their bytes (strings holding brackets and escaped quotes
 * included); kept ones, scalars and the members after a skimmed value are
 * read as sl_json_parse reads them.
 */
static void
test_skim(void **state)
{
    static const char src[] =
        "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"a ]} \\\"[{ b\"},\"n\":[1,{}]}],"
        " \"usage\" : {\"prompt_tokens\":3,\"details\":{\"cached\":1}},\"e\":{},\"tail\":[[\"]\"]],"
        "\"z\":true}";
    static const char choices[] = "[{\"message\":{\"content\":\"a ]} \\\"[{ b\"},\"n\":[1,{}]}]";
    static const sl_str_t keep[] = { sl_str_lit("usage") };
    sl_json_t *doc = sl_json_create(*state);
    sl_json_t *full = sl_json_create(*state);
    sl_json_t *part = sl_json_create(*state);
    int ch, u, tail;
    int64_t n = 0;
    sl_str_t raw;

    assert_rc(sl_json_parse_skim(doc, src, strlen(src), keep, 1, NULL), 0);
    assert_rc(sl_json_parse(full, src, strlen(src), NULL), 0);
    assert_int_equal(sl_json_size(doc, SL_JSON_ROOT), 6);
    assert_str(doc, sl_json_get(doc, SL_JSON_ROOT, "id"), "x");
    ch = sl_json_get(doc, SL_JSON_ROOT, "choices");
    assert_int_equal(sl_json_type(doc, ch), SL_JSON_ARRAY);
    assert_int_equal(sl_json_size(doc, ch), 0);
    assert_int_equal(sl_json_first(doc, ch), -1);
    raw = sl_json_raw(doc, ch);
    assert_true(sl_str_eq(raw, choices));
    assert_true(sl_str_eq(sl_json_raw(full, sl_json_get(full, SL_JSON_ROOT, "choices")), choices));
    /* its bytes read on their own */
    assert_rc(sl_json_parse(part, raw.p, raw.len, NULL), 0);
    assert_int_equal(sl_json_size(part, SL_JSON_ROOT), 1);
    /* the kept member is read whole, its nested object too */
    u = sl_json_get(doc, SL_JSON_ROOT, "usage");
    assert_int_equal(sl_json_size(doc, u), 2);
    assert_rc(sl_json_int(doc, sl_json_path(doc, u, "details.cached"), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, SL_JSON_ROOT, "e")), SL_JSON_OBJECT);
    tail = sl_json_get(doc, SL_JSON_ROOT, "tail");
    assert_true(sl_str_eq(sl_json_raw(doc, tail), "[[\"]\"]]"));
    assert_int_equal(sl_json_type(doc, sl_json_get(doc, SL_JSON_ROOT, "z")), SL_JSON_TRUE);
    /* a root that is not an object, and containers below the top level, are read whole */
    assert_rc(sl_json_parse_skim(doc, "[[1,2],{\"a\":[3]}]", 17, keep, 1, NULL), 0);
    assert_int_equal(sl_json_size(doc, sl_json_first(doc, SL_JSON_ROOT)), 2);
    assert_rc(
        sl_json_parse_skim(doc, "{\"usage\":{\"a\":[1]},\"b\":{\"c\":[2,3]}}", 35, keep, 1, NULL),
        0);
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, SL_JSON_ROOT, "usage")), 1);
    assert_int_equal(sl_json_size(doc, sl_json_path(doc, SL_JSON_ROOT, "usage.a")), 1);
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, SL_JSON_ROOT, "b")), 0);
    /* with no name kept, every top-level container is skimmed */
    assert_rc(sl_json_parse_skim(doc, "{\"usage\":{\"a\":1}}", 17, NULL, 0, NULL), 0);
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, SL_JSON_ROOT, "usage")), 0);
}


/*
 * A skim never takes more steps than the whole read of the same bytes:
 * its scan counts every byte it passes, and so does the reader, ',' and
 * ':' included (a nest of keys and containers only once took one more,
 * fuzz_json).
 */
static void
test_skim_steps(void **state)
{
    static const char *const docs[] = {
        "{\"a\":{\"b\":{}}}",
        "{\"a\":{\"b\":{\"c\":[]}}}",
        "{\"a\":[{},{}],\"b\":[{},{}]}",
        "{\"a\":{\"b\":[1,2,3]},\"c\":{\"d\":{\"e\":{}}}}",
        "{\"a\" : { \"b\" : { } } , \"c\" : [ [ ] , { } ] }",
    };
    sl_json_t *whole = sl_json_create(*state);
    sl_json_t *skim = sl_json_create(*state);
    sl_buf_t deep = SL_BUF_INIT;

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        assert_rc(sl_json_parse(whole, docs[i], strlen(docs[i]), NULL), 0);
        assert_rc(sl_json_parse_skim(skim, docs[i], strlen(docs[i]), NULL, 0, NULL), 0);
        if (sl__json_work(skim) > sl__json_work(whole)) {
            print_error("skim of %s: %llu steps, whole read %llu\n", docs[i],
                        (unsigned long long) sl__json_work(skim),
                        (unsigned long long) sl__json_work(whole));
            fail();
        }
    }
    /* sixty objects deep, each one key: the shape fuzz_json found */
    sl_buf_puts(&deep, "{\"m\":1,\"mess\":");
    for (int i = 0; i < 60; i++) {
        sl_buf_puts(&deep, "{\"a\":");
    }
    sl_buf_puts(&deep, "[]");
    for (int i = 0; i < 61; i++) {
        sl_buf_puts(&deep, "}");
    }
    assert_rc(sl_json_parse(whole, deep.p, deep.len, NULL), 0);
    assert_rc(sl_json_parse_skim(skim, deep.p, deep.len, NULL, 0, NULL), 0);
    assert_true(sl__json_work(skim) <= sl__json_work(whole));
    sl_buf_free(&deep);
}


/*
 * A skimmed value is refused for what the skim checks (brackets by kind,
 * strings and their escapes, the end of input, nesting) and for what the
 * reader checks around it; what it does not check (a number's or a
 * literal's spelling inside it) passes.
 */
static void
test_skim_refused(void **state)
{
    static const char *const bad[] = {
        "{\"c\":[{]}",         "{\"c\":[}",           "{\"c\":{\"a\":[1}}", "{\"c\":[\"a]",
        "{\"c\":[\"\\q\"]}",   "{\"c\":[\"\\u12\"]}", "{\"c\":[1]",         "{\"c\":[1]]}",
        "{\"c\":[1] \"d\":2}", "{\"c\":[\"a\0\"]}",   "{\"c\":[",
    };
    sl_json_t *doc = sl_json_create(*state);
    sl_json_error_t err;
    sl_buf_t deep = SL_BUF_INIT;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* the NUL one is measured past its NUL */
        size_t len = i == 9 ? 12 : strlen(bad[i]);

        if (sl_json_parse_skim(doc, bad[i], len, NULL, 0, &err) != SL_EPARSE) {
            print_error("skim took bad document %zu: %.*s\n", i, (int) len, bad[i]);
            fail();
        }
        assert_true(err.pos <= len);
        assert_int_equal(sl_json_type(doc, SL_JSON_ROOT), SL_JSON_NONE);
    }
    assert_rc(sl_json_parse_skim(doc, "{\"c\":[tru, 1.2.3, x]}", 21, NULL, 0, NULL), 0);
    assert_int_equal(sl_json_parse(doc, "{\"c\":[tru, 1.2.3, x]}", 21, NULL), SL_EPARSE);
    /* nesting: bounded as the reader bounds it */
    sl_buf_puts(&deep, "{\"c\":");
    for (int i = 0; i < SL_JSON_MAX_DEPTH; i++) {
        sl_buf_puts(&deep, "[");
    }
    for (int i = 0; i < SL_JSON_MAX_DEPTH; i++) {
        sl_buf_puts(&deep, "]");
    }
    sl_buf_puts(&deep, "}");
    assert_int_equal(sl_json_parse_skim(doc, deep.p, deep.len, NULL, 0, &err), SL_EPARSE);
    assert_string_equal(err.text, "maximum nesting depth reached");
    assert_true(sl__json_work(doc) <= 4 * deep.len + 8);
    sl_buf_free(&deep);
}


static void
test_splice(void **state)
{
    const char *src = "{\"model\": \"gpt-4o\" ,\"messages\":[],\"stream_options\":{}}";
    sl_json_t *doc = parse_ok(*state, src);
    sl_str_t m = sl_json_raw(doc, sl_json_get(doc, 0, "model"));
    sl_str_t so = sl_json_raw(doc, sl_json_get(doc, 0, "stream_options"));
    sl_json_edit_t ed[2];
    sl_str_t out;

    ed[0].start = (size_t) (m.p - src);
    ed[0].end = ed[0].start + m.len;
    ed[0].text = sl_str_lit("prov/model-\"x\"");
    ed[0].quote = true;
    ed[1].start = (size_t) (so.p - src) + 1;
    ed[1].end = ed[1].start;
    ed[1].text = sl_str_lit("\"include_usage\":true");
    ed[1].quote = false;
    assert_rc(sl_json_splice(*state, (sl_str_t){ src, strlen(src) }, ed, 2, &out), 0);
    assert_string_equal(out.p, "{\"model\": \"prov/model-\\\"x\\\"\" ,\"messages\":[],"
                               "\"stream_options\":{\"include_usage\":true}}");
    assert_int_equal(out.len, strlen(out.p));
    parse_ok(*state, out.p);

    /* no edits: a copy */
    assert_rc(sl_json_splice(*state, (sl_str_t){ src, strlen(src) }, ed, 0, &out), 0);
    assert_string_equal(out.p, src);

    /* out of order, overlapping or out of range */
    {
        sl_json_edit_t bad[2] = { ed[1], ed[0] };

        assert_rc(sl_json_splice(*state, (sl_str_t){ src, strlen(src) }, bad, 2, &out), -EINVAL);
        bad[0] = ed[0];
        bad[0].end = strlen(src) + 1;
        assert_rc(sl_json_splice(*state, (sl_str_t){ src, strlen(src) }, bad, 1, &out), -EINVAL);
    }
}


/* A quoted edit is written byte for byte as json_dumps() writes the string. */
static void
test_splice_escape(void **state)
{
    static const char *const names[] = {
        "gpt-4o-mini",
        "meta-llama/Llama-3.1-8B",
        "q\"uo\\te",
        "tab\there\nnl\r\b\f",
        "ctl\x01\x1f\x7f",
        "caf\xc3\xa9",
        "",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *j = json_pack("[s]", names[i]);
        char *want = json_dumps(j, JSON_COMPACT);
        sl_json_edit_t ed = { 1, 3, { names[i], strlen(names[i]) }, true };
        sl_str_t out;

        assert_rc(sl_json_splice(*state, sl_str_lit("[\"\"]"), &ed, 1, &out), 0);
        assert_string_equal(out.p, want);
        free(want);
        json_decref(j);
    }
}


/* The first ntok values of moved and fresh: the same types, bytes, places and sizes. */
static void
assert_same_tokens(const sl_json_t *moved, const sl_json_t *fresh, int ntok)
{
    for (int v = 0; v < ntok; v++) {
        sl_str_t s1 = sl_json_raw(moved, v), s2 = sl_json_raw(fresh, v);

        assert_int_equal(sl_json_type(moved, v), sl_json_type(fresh, v));
        assert_int_equal(sl_json_offset(moved, v), sl_json_offset(fresh, v));
        assert_int_equal(s1.len, s2.len);
        assert_true(s1.len == 0 || memcmp(s1.p, s2.p, s1.len) == 0);
        assert_int_equal(sl_json_size(moved, v), sl_json_size(fresh, v));
    }
}


/*
 * Edits inside strings: the new reader holds the old tokens moved, and reads
 * exactly what a fresh parse of the spliced bytes reads; edits that are not
 * plain string content inside one string's body are refused.
 */
static void
test_splice_strings(void **state)
{
    const char *src = "{\"a\":\"one two\",\"b\":[\"x\\ny\",{\"c\":\"\"}],\"d\":7}";
    sl_json_t *doc = sl_json_create(*state), *moved = sl_json_create(*state);
    sl_json_t *fresh = sl_json_create(*state);
    sl_json_edit_t ed[3];
    sl_str_t out, s1;

    assert_rc(sl_json_parse(doc, src, strlen(src), NULL), 0);
    /* "one" -> "[W_1]" (longer), "\n" -> "" (shorter: an escape's bytes), insert into "" */
    ed[0] = (sl_json_edit_t){ 6, 9, sl_str_lit("[W_1]"), false };
    ed[1] = (sl_json_edit_t){ 22, 24, sl_str_lit(""), false };
    ed[2] = (sl_json_edit_t){ 33, 33, sl_str_lit("in"), false };
    assert_rc(sl_json_splice_strings(moved, doc, ed, 3, &out), 0);
    assert_string_equal(out.p, "{\"a\":\"[W_1] two\",\"b\":[\"xy\",{\"c\":\"in\"}],\"d\":7}");
    assert_rc(sl_json_parse(fresh, out.p, out.len, NULL), 0);
    assert_same_tokens(moved, fresh, 11);
    assert_rc(sl_json_string(moved, sl_json_path(moved, 0, "b"), *state, &s1), SL_EPARSE);
    assert_rc(sl_json_string(moved, sl_json_get(moved, 0, "a"), *state, &s1), 0);
    assert_true(s1.len == 9 && memcmp(s1.p, "[W_1] two", 9) == 0);

    /* refused: across a quote, outside strings, quoted, with a quote or control byte */
    {
        sl_json_edit_t bad[] = {
            { 8, 16, sl_str_lit("x"), false },   { 0, 1, sl_str_lit("["), false },
            { 6, 9, sl_str_lit("x"), true },     { 6, 9, sl_str_lit("a\"b"), false },
            { 6, 9, sl_str_lit("a\nb"), false }, { 41, 42, sl_str_lit("1"), false },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            assert_rc(sl_json_splice_strings(moved, doc, &bad[i], 1, &out), -EINVAL);
        }
        assert_rc(sl_json_splice_strings(doc, doc, ed, 1, &out), -EINVAL);
    }
    /*
     * ... and after an edit that was fine: on past the string of the edit
     * before, overlapping it, with a backslash, outside strings; the reader
     * keeps what it held
     */
    {
        sl_json_edit_t after[][2] = {
            { { 6, 9, sl_str_lit("x"), false }, { 12, 16, sl_str_lit("x"), false } },
            { { 6, 9, sl_str_lit("x"), false }, { 8, 10, sl_str_lit("x"), false } },
            { { 6, 9, sl_str_lit("x"), false }, { 10, 11, sl_str_lit("\\"), false } },
            { { 6, 9, sl_str_lit("x"), false }, { 41, 42, sl_str_lit("1"), false } },
        };

        for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
            assert_rc(sl_json_splice_strings(moved, doc, after[i], 2, &out), -EINVAL);
        }
        assert_rc(sl_json_string(moved, sl_json_get(moved, 0, "a"), *state, &s1), 0);
        assert_true(s1.len == 9 && memcmp(s1.p, "[W_1] two", 9) == 0);
    }
}


/*
 * Many edits in two strings, one in a string between them and none in
 * others: the moved tokens (each found from the count of the token before)
 * equal a fresh parse of the spliced bytes.
 */
static void
test_splice_strings_many(void **state)
{
    sl_json_t *doc = sl_json_create(*state), *moved = sl_json_create(*state);
    sl_json_t *fresh = sl_json_create(*state);
    sl_json_edit_t ed[320];
    sl_buf_t src = SL_BUF_INIT;
    size_t n = 0;
    sl_str_t out, s1;

    sl_buf_append(&src, "{\"k\":[1,\"x\"],\"a\":\"", 18);
    splice_many(&src, 100, ed, &n);
    sl_buf_append(&src, "\",\"b\":[\"y\",{\"c\":\"zz\",\"d\":[]}],\"e\":\"", 35);
    ed[n++] = (sl_json_edit_t){ src.len - 18, src.len - 17, sl_str_lit("[Z]"), false }; /* "zz" */
    splice_many(&src, 150, ed, &n);
    ed[n++] = (sl_json_edit_t){ src.len, src.len, sl_str_lit("in"), false };
    sl_buf_append(&src, "\"}", 2);
    assert_true(n <= sizeof(ed) / sizeof(ed[0]));
    assert_rc(sl_json_parse(doc, src.p, src.len, NULL), 0);
    assert_rc(sl_json_splice_strings(moved, doc, ed, n, &out), 0);
    assert_rc(sl_json_parse(fresh, out.p, out.len, NULL), 0);
    s1 = sl_json_raw(fresh, 12);
    assert_true(s1.len == 6 && memcmp(s1.p, "\"[Z]z\"", 6) == 0);
    assert_same_tokens(moved, fresh, 17);
    sl_buf_free(&src);
}


/* Appends "ab" units times to src, with edits: each "b" -> "[Q]", an "a" -> "" once in a while. */
static void
splice_many(sl_buf_t *src, unsigned units, sl_json_edit_t *ed, size_t *n)
{
    for (unsigned i = 0; i < units; i++) {
        size_t at = src->len;

        sl_buf_append(src, "ab", 2);
        if (i % 7 == 3) {
            ed[(*n)++] = (sl_json_edit_t){ at, at + 1, sl_str_lit(""), false };
        }
        ed[(*n)++] = (sl_json_edit_t){ at + 1, at + 2, sl_str_lit("[Q]"), false };
    }
}


/*
 * The check of an edit's bytes (eight at a time) and its copy (short pieces
 * without memcpy): every length up to 40, each byte that may not stand in
 * a string and its neighbours at every position, against the plain rule.
 */
static void
test_splice_strings_bytes(void **state)
{
    static const unsigned char probe[] = { 0x00, 0x01, 0x09, 0x1f, '"',  '\\', 0x20,
                                           0x21, '#',  '!',  '[',  ']',  0x5b, 0x5d,
                                           0x7f, 0x80, 0xa2, 0xdc, 0xe0, 0xff };
    char src[96], text[41], want[128];
    sl_json_t *doc = sl_json_create(*state), *moved = sl_json_create(*state);
    sl_str_t out;

    /* {"a":"xxx...x"} with 64 x's; the edits replace bytes 10..30 of the string */
    memcpy(src, "{\"a\":\"", 6);
    memset(src + 6, 'x', 64);
    memcpy(src + 70, "\"}", 3);
    assert_rc(sl_json_parse(doc, src, 72, NULL), 0);
    for (size_t len = 0; len <= 40; len++) {
        memset(text, 'A' + (int) (len % 26), len);
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t b = 0; b < sizeof(probe); b++) {
                sl_json_edit_t ed = { 16, 36, { text, len }, false };
                bool bad = probe[b] < 0x20 || probe[b] == '"' || probe[b] == '\\';
                int rc;

                if (pos == len && b > 0) {
                    break; /* no byte to change: once as it is */
                }
                if (pos < len) {
                    text[pos] = (char) probe[b];
                }
                rc = sl_json_splice_strings(moved, doc, &ed, 1, &out);
                if (pos < len && bad) {
                    assert_rc(rc, -EINVAL);
                } else {
                    assert_rc(rc, 0);
                    memcpy(want, src, 16);
                    memcpy(want + 16, text, len);
                    memcpy(want + 16 + len, src + 36, 72 - 36);
                    assert_int_equal(out.len, 72 - 20 + len);
                    assert_memory_equal(out.p, want, out.len);
                    assert_int_equal(out.p[out.len], '\0');
                    assert_int_equal(sl_json_raw(moved, 2).len, 66 - 20 + len);
                }
                if (pos < len) {
                    text[pos] = 'A' + (char) (len % 26);
                }
            }
        }
    }
}


static void
test_dom(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    json_t *root = sl_json_dom(pool, sl_str_lit("{\"model\":\"m\",\"n\":[1,2]}"));

    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "model")), "m");
    json_object_set_new(root, "model", json_string("edited"));
    assert_null(sl_json_dom(pool, sl_str_lit("{\"a\":1,\"a\":2}")));
    assert_null(sl_json_dom(pool, sl_str_lit("{")));
    /* the pool releases the DOM (ASan reports a leak otherwise) */
    sl_pool_destroy(pool);
    (void) state;
}


/* sl_json_strict() refuses exactly what jansson (duplicates refused) refuses of what the reader
 * takes. */
static void
test_strict(void **state)
{
    static const char *const docs[] = {
        "{\"a\":1,\"b\":[\"x\",{\"c\":null,\"d\":true}],\"e\":-0.5e3}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"\\u0061\":2}",
        "[{\"k\":{\"x\":1,\"y\":2,\"x\":3}}]",
        "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":"
        "9}",
        "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k3\":"
        "9}",
        "{\"\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"\":9}",
        "[\"bad \\ud800 surrogate\"]",
        "{\"\\ud800\":1}",
        "[\"nul \\u0000\"]",
        "[\"ctl \x01\"]",
        "[\"utf8 \xc3\"]",
        "[\"utf8 \xc3\xa9 ok\"]",
        "[9223372036854775807,-9223372036854775808]",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[1e400]",
        "[-1e400]",
        "[1e-400,0.0,123456789012345678901234567890.5]",
        "\"top\"",
        "{}",
    };
    sl_pool_t *pool = *state;

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        sl_json_t *doc = parse_ok(pool, docs[i]);
        json_t *root = json_loads(docs[i], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        int rc = sl_json_strict(doc, pool);

        if ((rc == 0) != (root != NULL)) {
            print_error("doc %zu: strict %d, jansson %s\n", i, rc,
                        root != NULL ? "takes" : "refuses");
            fail();
        }
        json_decref(root);
    }
}


/* The writer's tokens are the reader's for the same bytes; copies carry their tokens. */
static void
test_writer(void **state)
{
    sl_pool_t *pool = *state;
    sl_json_t *src = parse_ok(pool, "{\"x\": [1, {\"y\" : \"z\\n\"}, []], \"n\":null}");
    sl_json_t *doc = sl_json_create(pool);
    sl_json_w_t *w = sl_json_w_create(pool, doc);
    sl_json_t *again;
    sl_str_t out;

    sl_json_w_open(w, true);
    sl_json_w_key(w, sl_str_lit("model"));
    sl_json_w_str(w, sl_str_lit("m \"q\" \x01"));
    sl_json_w_key(w, sl_str_lit("k\\ey"));
    sl_json_w_open(w, false);
    sl_json_w_scalar(w, SL_JSON_NUMBER, sl_str_lit("-12.5"));
    sl_json_w_value(w, src, sl_json_get(src, SL_JSON_ROOT, "x"));
    sl_json_w_open(w, true);
    sl_json_w_close(w);
    sl_json_w_value(w, src, SL_JSON_ROOT);
    sl_json_w_scalar(w, SL_JSON_TRUE, sl_str_lit("true"));
    sl_json_w_close(w);
    sl_json_w_key(w, sl_str_lit(""));
    sl_json_w_value(w, src, sl_json_get(src, SL_JSON_ROOT, "n"));
    sl_json_w_key(w, sl_str_lit("last"));
    sl_json_w_open(w, false);
    sl_json_w_close(w);
    sl_json_w_close(w);
    assert_rc(sl_json_w_finish(w, &out), 0);
    assert_string_equal(out.p,
                        "{\"model\":\"m \\\"q\\\" \\u0001\",\"k\\\\ey\":[-12.5,[1, {\"y\" : "
                        "\"z\\n\"}, []],{},{\"x\": [1, {\"y\" : \"z\\n\"}, []], \"n\":null},true],"
                        "\"\":null,\"last\":[]}");
    again = parse_ok(pool, out.p);
    assert_true(sl__json_same(doc, again));
    assert_str(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), "m \"q\" \x01");
    assert_int_equal(sl_json_size(doc, sl_json_get(doc, SL_JSON_ROOT, "k\\ey")), 5);
    assert_int_equal(sl_json_type(doc, sl_json_path(doc, SL_JSON_ROOT, "last")), SL_JSON_ARRAY);

    /* a scalar alone is a document too; the reader may be written again */
    w = sl_json_w_create(pool, doc);
    sl_json_w_str(w, sl_str_lit("only"));
    assert_rc(sl_json_w_finish(w, &out), 0);
    assert_true(sl__json_same(doc, parse_ok(pool, "\"only\"")));
}


/* A writer misused fails at finish, and its reader holds no document. */
static void
test_writer_misuse(void **state)
{
    sl_pool_t *pool = *state;
    sl_json_t *doc = sl_json_create(pool);
    sl_json_w_t *w;
    sl_str_t out;

    for (int c = 0; c < 8; c++) {
        w = sl_json_w_create(pool, doc);
        switch (c) {
        case 0: /* nothing */
            break;
        case 1: /* a key in an array */
            sl_json_w_open(w, false);
            sl_json_w_key(w, sl_str_lit("k"));
            sl_json_w_close(w);
            break;
        case 2: /* a value where a key is due */
            sl_json_w_open(w, true);
            sl_json_w_str(w, sl_str_lit("v"));
            sl_json_w_close(w);
            break;
        case 3: /* a key without its value */
            sl_json_w_open(w, true);
            sl_json_w_key(w, sl_str_lit("k"));
            sl_json_w_close(w);
            break;
        case 4: /* left open */
            sl_json_w_open(w, false);
            break;
        case 5: /* two top values */
            sl_json_w_str(w, sl_str_lit("a"));
            sl_json_w_str(w, sl_str_lit("b"));
            break;
        case 6: /* closed once too often */
            sl_json_w_open(w, false);
            sl_json_w_close(w);
            sl_json_w_close(w);
            break;
        default: /* deeper than the writer's stack */
            for (int i = 0; i <= SL_JSON_W_DEPTH; i++) {
                sl_json_w_open(w, false);
            }
            for (int i = 0; i <= SL_JSON_W_DEPTH; i++) {
                sl_json_w_close(w);
            }
            break;
        }
        if (sl_json_w_finish(w, &out) != -EINVAL) {
            fail_msg("case %d: finish took a misused writer", c);
        }
        assert_int_equal(sl_json_type(doc, SL_JSON_ROOT), SL_JSON_NONE);
    }
}


/*
 * sl_json_quote against jansson's dump on generated strings (the escaped
 * bytes, '/', DEL and UTF-8 among plain runs of every length around the
 * sixteen-byte steps), each copied to a heap block of its exact size (a
 * read past it is a sanitizer report); and the JSON reader reads back
 * what was quoted.
 */
static void
test_quote_generated(void **state)
{
    static const char *const piece[] = { "a",
                                         "bcdefghijklmnopq",
                                         " ",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\b",
                                         "\f",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80" };
    sl_pool_t *pool = sl_pool_create(0);
    sl_buf_t in = SL_BUF_INIT, out = SL_BUF_INIT;
    unsigned seed = 5;

    (void) state;
    for (int round = 0; round < 4000; round++) {
        size_t want = (size_t) round % 90;
        sl_json_t *doc = sl_json_create(pool);
        json_t *js;
        char *ref, *exact;
        sl_str_t back;

        sl_buf_clear(&in);
        while (in.len < want) {
            seed = seed * 1103515245u + 12345u;
            /* mostly plain text, so that whole sixteen-byte steps happen */
            sl_buf_puts(&in, (seed >> 16) % 3 != 0
                                 ? piece[(seed >> 8) % 2]
                                 : piece[(seed >> 8) % (sizeof(piece) / sizeof(piece[0]))]);
        }
        exact = malloc(in.len > 0 ? in.len : 1);
        assert_non_null(exact);
        if (in.len > 0) {
            memcpy(exact, in.p, in.len);
        }
        sl_buf_clear(&out);
        sl_json_quote(&out, (sl_str_t){ exact, in.len });
        js = json_stringn(exact, in.len);
        assert_non_null(js);
        ref = json_dumps(js, JSON_ENCODE_ANY);
        assert_non_null(ref);
        if (out.len != strlen(ref) || memcmp(out.p, ref, out.len) != 0) {
            fail_msg("round %d: quoted %.*s, jansson %s", round, (int) out.len, out.p, ref);
        }
        assert_int_equal(sl_json_parse(doc, out.p, out.len, NULL), 0);
        assert_int_equal(sl_json_string(doc, SL_JSON_ROOT, pool, &back), 0);
        assert_int_equal(back.len, in.len);
        assert_memory_equal(back.p, in.p, in.len);
        free(ref);
        json_decref(js);
        free(exact);
        sl_pool_reset(pool);
    }
    sl_buf_free(&in);
    sl_buf_free(&out);
    sl_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int, setup, teardown),
        cmocka_unit_test_setup_teardown(test_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test(test_tok_boundary),
        cmocka_unit_test(test_quote_generated),
        cmocka_unit_test_setup_teardown(test_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linear_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_escape_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skim_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skim_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_splice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_splice_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_splice_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_splice_strings_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_splice_strings_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_misuse, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
