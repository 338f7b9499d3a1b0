/*
 * Unit tests for the response cache: the canonical form of a request (key
 * order, whitespace, number spelling, unicode escapes, what is skipped and
 * omitted, no two documents alike), Cache-Control directives, the content-
 * word rule and the last user turn the semantic cache reads, answers
 * through the store's encoding and through replayed events, and the store
 * on a scratch LMDB environment: get, expiry, oldest-first eviction under
 * the cap, the semantic scan and purges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/gateway/cache.h"
#include "storage/cache.h"
#include "storage/db.h"

#define NOW ((int64_t) 1795262400) /* 2026-11-21 12:00:00 UTC */
#define NS  1000000000LL

typedef struct fixture {
    char dir[64];
    sl_db_t *db;
    sl_pool_t *pool;
} fixture_t;

static int setup(void **state);
static int teardown(void **state);
static char *canon(sl_pool_t *pool, const char *json, const char *const *skip, int omit);
static void assert_same(const char *a, const char *b);
static void assert_differ(const char *a, const char *b);
static char *number(const char *text);
static sl_str_t words_of(sl_pool_t *pool, const char *text);
static bool same_words(const char *a, const char *b);
static void key_of(uint8_t key[SL_CACHE_KEY_LEN], unsigned n);
static sl_cache_entry_t entry(sl_pool_t *pool, unsigned n, const char *model, const char *key_id,
                              size_t body_len, int64_t created_s);
static sl_str_t lit(const char *s);


static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sl-cache-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_rc(sl_db_open(f->dir, 8u << 20, 0, &f->db), 0);
    f->pool = sl_pool_create(0);
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t *f = *state;

    sl_db_close(f->db);
    sl_pool_destroy(f->pool);
    sl_test_rmtree(f->dir);
    free(f);
    return 0;
}


/* The canonical form of json as a NUL-terminated string (it holds no NUL for these inputs). */
static char *
canon(sl_pool_t *pool, const char *json, const char *const *skip, int omit)
{
    sl_json_t *doc = sl_json_create(pool);
    sl_buf_t b = SL_BUF_INIT;
    char *s;

    assert_rc(sl_json_parse(doc, json, strlen(json), NULL), 0);
    assert_rc(sl_cache_canonical(doc, SL_JSON_ROOT, skip, omit, pool, &b), 0);
    s = sl_pstrndup(pool, b.p, b.len);
    sl_buf_free(&b);
    return s;
}


static void
assert_same(const char *a, const char *b)
{
    sl_pool_t *pool = sl_pool_create(0);
    char *x = canon(pool, a, NULL, -1), *y = canon(pool, b, NULL, -1);

    if (strcmp(x, y) != 0) {
        fail_msg("%s and %s should be the same request:\n  %s\n  %s", a, b, x, y);
    }
    sl_pool_destroy(pool);
}


static void
assert_differ(const char *a, const char *b)
{
    sl_pool_t *pool = sl_pool_create(0);
    char *x = canon(pool, a, NULL, -1), *y = canon(pool, b, NULL, -1);

    if (strcmp(x, y) == 0) {
        fail_msg("%s and %s should differ, both are %s", a, b, x);
    }
    sl_pool_destroy(pool);
}


static void
test_canonical_order_space(void **state)
{
    (void) state;
    assert_same("{\"model\":\"m\",\"temperature\":0.5,\"messages\":[{\"role\":\"user\",\"content\":"
                "\"hi\"}]}",
                " { \"messages\" : [ { \"content\" : \"hi\" , \"role\" : \"user\" } ] ,\n"
                "\t\"temperature\":0.5, \"model\":\"m\" } ");
    assert_same("{\"b\":{\"y\":1,\"x\":[1,2]},\"a\":null}",
                "{\"a\":null,\"b\":{\"x\":[1,2],\"y\":1}}");
    /* array order is content */
    assert_differ("{\"a\":[1,2]}", "{\"a\":[2,1]}");
    assert_differ("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\","
                  "\"content\":\"b\"}]}",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"b\"},{\"role\":\"user\","
                  "\"content\":\"a\"}]}");
    /* a key that sorts first by bytes, a key that is a prefix of another */
    assert_same("{\"ab\":1,\"a\":2,\"B\":3}", "{\"B\":3,\"a\":2,\"ab\":1}");
}


static void
test_canonical_numbers(void **state)
{
    (void) state;
    assert_same("{\"t\":1}", "{\"t\":1.0}");
    assert_same("{\"t\":1}", "{\"t\":1e0}");
    assert_same("{\"t\":1}", "{\"t\":10e-1}");
    assert_same("{\"t\":1}", "{\"t\":0.1E+1}");
    assert_same("{\"t\":100}", "{\"t\":1e2}");
    assert_same("{\"t\":0.5}", "{\"t\":5e-1}");
    assert_same("{\"t\":0}", "{\"t\":-0.0}");
    assert_same("{\"t\":-1.50}", "{\"t\":-15e-1}");
    assert_differ("{\"t\":1}", "{\"t\":-1}");
    assert_differ("{\"t\":1}", "{\"t\":\"1\"}");
    assert_differ("{\"t\":0.7}", "{\"t\":0.70000001}");
    /* integers are kept digit for digit, beyond what a double holds */
    assert_differ("{\"seed\":12345678901234567890}", "{\"seed\":12345678901234567891}");
    assert_differ("{\"seed\":9007199254740993}", "{\"seed\":9007199254740992}");
    assert_same("{\"seed\":12345678901234567890}", "{\"seed\":1234567890123456789e1}");

    assert_string_equal(number("1"), "1e0");
    assert_string_equal(number("1.0"), "1e0");
    assert_string_equal(number("-0.00"), "0e0");
    assert_string_equal(number("120"), "12e1");
    assert_string_equal(number("0.0250"), "25e-3");
    assert_string_equal(number("1.5e-7"), "15e-8");
    assert_string_equal(number("007"), "7e0");
    /* an exponent nobody sends is kept as written */
    assert_string_equal(number("1e1234567890123456"), "N1e1234567890123456");
    assert_null(number("1."));
    assert_null(number("--1"));
    assert_null(number("1e"));
}


static char *
number(const char *text)
{
    static char out[64];
    sl_buf_t b = SL_BUF_INIT;
    int rc = sl_cache_number((sl_str_t){ text, strlen(text) }, &b);

    if (rc != 0) {
        sl_buf_free(&b);
        return NULL;
    }
    snprintf(out, sizeof(out), "%.*s", (int) b.len, b.p);
    sl_buf_free(&b);
    return out;
}


static void
test_canonical_strings(void **state)
{
    (void) state;
    assert_same("{\"c\":\"caf\\u00e9\"}", "{\"c\":\"café\"}");
    assert_same("{\"c\":\"\\ud83d\\ude00\"}", "{\"c\":\"😀\"}");
    assert_same("{\"c\":\"a\\/b\\n\"}", "{\"c\":\"a/b\\u000a\"}");
    assert_same("{\"mod\\u0065l\":\"m\"}", "{\"model\":\"m\"}");
    assert_differ("{\"c\":\"Café\"}", "{\"c\":\"café\"}");
    assert_differ("{\"c\":\"a b\"}", "{\"c\":\"a  b\"}");
    /* lengths are part of the form: no two documents alike */
    assert_differ("{\"a\":\"b\",\"c\":\"\"}", "{\"a\":\"\",\"bc\":\"\"}");
    assert_differ("{\"a\":[\"x\",\"y\"]}", "{\"a\":[\"x\"],\"b\":[\"y\"]}");
    assert_differ("{\"a\":\"1\"}", "{\"a\":1}");
    assert_differ("{\"a\":true}", "{\"a\":\"t\"}");
    assert_differ("{\"a\":null}", "{\"a\":[]}");
}


static void
test_canonical_skip_omit(void **state)
{
    static const char *const skip[] = { "stream", "stream_options", NULL };
    sl_pool_t *pool = sl_pool_create(0);
    sl_json_t *doc = sl_json_create(pool);
    const char *j = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    const char *js = "{\"stream\":true,\"model\":\"m\",\"stream_options\":{\"include_usage\":"
                     "true},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    const char *nested = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                         "\"x\":{\"stream\":true}}";
    int content;

    (void) state;
    assert_string_equal(canon(pool, j, skip, -1), canon(pool, js, skip, -1));
    /* only at the top: a nested "stream" is content */
    assert_string_not_equal(canon(pool, nested, skip, -1),
                            canon(pool,
                                  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                                  "\"content\":\"x\"}],\"x\":{}}",
                                  skip, -1));
    /* an omitted value: its text does not count, its place does */
    assert_rc(sl_json_parse(doc, j, strlen(j), NULL), 0);
    content = sl_json_path(doc, sl_json_first(doc, sl_json_get(doc, SL_JSON_ROOT, "messages")),
                           "content");
    assert_true(content > 0);
    {
        sl_json_t *d2 = sl_json_create(pool);
        const char *j2 = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"other "
                         "words\"}]}";
        sl_buf_t a = SL_BUF_INIT, b = SL_BUF_INIT;
        int c2;

        assert_rc(sl_json_parse(d2, j2, strlen(j2), NULL), 0);
        c2 = sl_json_path(d2, sl_json_first(d2, sl_json_get(d2, SL_JSON_ROOT, "messages")),
                          "content");
        assert_rc(sl_cache_canonical(doc, SL_JSON_ROOT, NULL, content, pool, &a), 0);
        assert_rc(sl_cache_canonical(d2, SL_JSON_ROOT, NULL, c2, pool, &b), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        sl_buf_free(&a);
        sl_buf_free(&b);
    }
    sl_pool_destroy(pool);
}


static void
test_cache_control(void **state)
{
    sl_cache_cc_t cc;

    (void) state;
    sl_cache_cc_parse((sl_str_t){ "no-cache", 8 }, &cc);
    assert_true(cc.no_cache);
    assert_false(cc.no_store);
    assert_false(cc.max_age);
    sl_cache_cc_parse(sl_str_lit("No-Store , MAX-AGE=60"), &cc);
    assert_true(cc.no_store);
    assert_true(cc.max_age);
    assert_int_equal(cc.max_age_s, 60);
    sl_cache_cc_parse(sl_str_lit("max-age=\"30\", private"), &cc);
    assert_int_equal(cc.max_age_s, 30);
    assert_false(cc.no_cache);
    sl_cache_cc_parse(sl_str_lit("max-age=soon"), &cc);
    assert_true(cc.max_age);
    assert_int_equal(cc.max_age_s, 0);
    sl_cache_cc_parse(sl_str_lit("no-transform"), &cc);
    assert_false(cc.no_cache || cc.no_store || cc.max_age);
}


/* The content words of text, as bytes (the hashes), for comparing. */
static sl_str_t
words_of(sl_pool_t *pool, const char *text)
{
    uint32_t *w;
    uint32_t n;

    assert_rc(sl_cache_words((sl_str_t){ text, strlen(text) }, pool, SL_CACHE_WORDS_MAX, &w, &n),
              0);
    return (sl_str_t){ (const char *) w, n * sizeof(*w) };
}


static bool
same_words(const char *a, const char *b)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_str_t x = words_of(pool, a), y = words_of(pool, b);
    bool same = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;

    sl_pool_destroy(pool);
    return same;
}


static void
test_content_words(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);

    (void) state;
    /* paraphrases: the same names and nouns */
    assert_true(same_words("What is the capital of Spain?", "Tell me, what's Spain's capital?"));
    assert_true(same_words("What is the capital of Spain?", "capital of spain"));
    assert_true(same_words("Please explain how photosynthesis works.",
                           "How does photosynthesis work? Explain briefly, please."));
    assert_true(same_words("List the capitals of Europe", "list the capital of europe"));
    assert_true(same_words("Which cities are in Texas?", "which city is in texas"));
    /* another subject, however alike the sentence */
    assert_false(same_words("What is the capital of Spain?", "What is the capital of Germany?"));
    assert_false(same_words("What is 2 + 3?", "What is 2 + 4?"));
    assert_false(same_words("Convert 3.5 miles to km", "Convert 5.3 miles to km"));
    assert_false(same_words("Convert 1,000 miles to km", "Convert 1 000 miles to km"));
    assert_false(same_words("Is Paris in France?", "Is Paris not in France?"));
    assert_false(same_words("Who wrote Hamlet?", "Who wrote Macbeth?"));
    assert_false(same_words("Résumé tips", "Resume tips"));
    /* not plurals: glass, virus, analysis keep their s */
    assert_false(same_words("glass", "glas"));
    assert_false(same_words("virus", "viru"));
    /* repeats do not count, order does not */
    assert_true(same_words("spain spain capital", "capital spain"));
    /* nothing but stopwords: no words at all */
    assert_int_equal(words_of(pool, "What is it? Tell me please.").len, 0);
    /* every stopword looked up, from both ends of the sorted list */
    assert_true(sl_cache_stopword("about", 5));
    assert_true(sl_cache_stopword("yourselves", 10));
    assert_true(sl_cache_stopword("what", 4));
    assert_true(sl_cache_stopword("me", 2));
    assert_true(sl_cache_stopword("explain", 7));
    assert_true(sl_cache_stopword("the", 3));
    assert_false(sl_cache_stopword("not", 3));
    assert_false(sl_cache_stopword("capital", 7));
    assert_false(sl_cache_stopword("theme", 5));
    sl_pool_destroy(pool);
}


static void
test_prompt(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_json_t *doc = sl_json_create(pool);
    sl_str_t text;
    int content;
    const char *ok = "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":"
                     "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":"
                     "\"text\",\"text\":\"b\"}]}]}";
    const char *const refused[] = {
        "{\"messages\":[]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
        "\"content\":\"a\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
        "\"tool_calls\":[]},{\"role\":\"tool\",\"tool_call_id\":\"x\",\"content\":\"r\"},{"
        "\"role\":\"user\",\"content\":\"and?\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"x\"}}]}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"1\"},{\"role\":\"assistant\","
        "\"content\":\"2\"},{\"role\":\"user\",\"content\":\"3\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
    };

    (void) state;
    assert_rc(sl_json_parse(doc, ok, strlen(ok), NULL), 0);
    assert_rc(sl_cache_prompt(doc, 2, pool, &content, &text), 0);
    assert_int_equal(sl_json_type(doc, content), SL_JSON_ARRAY);
    assert_int_equal(text.len, 3);
    assert_memory_equal(text.p, "a\nb", 3);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_rc(sl_json_parse(doc, refused[i], strlen(refused[i]), NULL), 0);
        /* the fifth has three messages: one more than max_messages */
        assert_rc(sl_cache_prompt(doc, 2, pool, &content, &text), SL_EDENIED);
    }
    sl_pool_destroy(pool);
}


static sl_str_t
lit(const char *s)
{
    return (sl_str_t){ s, strlen(s) };
}


static void
test_answer_roundtrip(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_tool_call_t tools[2] = {
        { lit("\"call_1\""), lit("\"get_weather\""), lit("\"{\\\"location\\\":\\\"Paris\\\"}\"") },
        { lit("\"call_2\""), lit("\"get_time\""), sl_str_null },
    };
    sl_choice_t choices[2] = {
        { 0,
          lit("\"Hello, caf\\u00e9 \\ud83d\\ude00\\n and a long enough text to come back in "
              "several pieces of about sixty-four bytes each, \\\"quoted\\\" too.\""),
          lit("\"thinking...\""), lit("\"sig==\""), tools, 2, SL_FINISH_TOOL_CALLS, NULL, 0 },
        { 1, lit("\"second\""), sl_str_null, sl_str_null, NULL, 0, SL_FINISH_LENGTH, NULL, 0 },
    };
    sl_answer_t a = { lit("\"chatcmpl-1\""), lit("\"gpt-x\""), 1700000000, choices, 2, { 0 },
                      sl_str_null,           SL_API_CHAT };
    sl_answer_t b, c;
    sl_buf_t enc = SL_BUF_INIT;
    sl_evs_t evs;
    sl_cache_acc_t *acc;
    size_t texts = 0;
    sl_buf_t joined = SL_BUF_INIT;
    sl_str_t full, piece;

    (void) state;
    a.usage = (sl_usage_t){ 10, 20, 3, 0, 0, 5, true, false };
    sl_cache_answer_encode(&a, &enc);
    assert_rc(sl_cache_answer_decode((sl_str_t){ enc.p, enc.len }, pool, &b), 0);
    assert_int_equal(b.nchoices, 2);
    assert_int_equal(b.created, 1700000000);
    assert_int_equal(b.usage.reasoning_tokens, 5);
    assert_true(b.usage.known);
    assert_int_equal(b.choices[0].ntools, 2);
    assert_int_equal(b.choices[0].finish, SL_FINISH_TOOL_CALLS);
    assert_memory_equal(b.choices[0].text.p, choices[0].text.p, choices[0].text.len);
    assert_memory_equal(b.choices[0].tools[0].args.p, tools[0].args.p, tools[0].args.len);
    assert_int_equal(b.choices[0].tools[1].args.len, 0);
    assert_int_equal(b.choices[1].finish, SL_FINISH_LENGTH);
    /* a damaged record decodes to nothing, never past its end */
    for (size_t cut = 0; cut < enc.len; cut += 7) {
        assert_int_not_equal(sl_cache_answer_decode((sl_str_t){ enc.p, cut }, pool, &c), 0);
    }

    /* replayed as events and gathered again: the same answer */
    memset(&evs, 0, sizeof(evs));
    evs.pool = pool;
    sl_cache_replay_events(&b, &evs);
    for (size_t i = 0; i < evs.n; i++) {
        if (evs.v[i].type == SL_EV_TEXT && evs.v[i].choice == 0) {
            texts++;
            /* every piece is a whole literal: cut between characters only */
            assert_rc(sl_jstr_decode(pool, evs.v[i].text, &piece), 0);
            sl_buf_append(&joined, piece.p, piece.len);
        }
    }
    assert_true(texts >= 2);
    assert_rc(sl_jstr_decode(pool, choices[0].text, &full), 0);
    assert_int_equal(joined.len, full.len);
    assert_memory_equal(joined.p, full.p, full.len);
    acc = sl_cache_acc_create(pool);
    sl_cache_acc_add(acc, &evs);
    assert_rc(sl_cache_acc_answer(acc, NULL, &c), 0);
    assert_int_equal(c.nchoices, 2);
    assert_int_equal(c.choices[0].text.len, choices[0].text.len);
    assert_memory_equal(c.choices[0].text.p, choices[0].text.p, choices[0].text.len);
    assert_memory_equal(c.choices[0].reasoning.p, "\"thinking...\"", 13);
    assert_memory_equal(c.choices[0].signature.p, "\"sig==\"", 7);
    assert_int_equal(c.choices[0].ntools, 2);
    assert_memory_equal(c.choices[0].tools[0].args.p, tools[0].args.p, tools[0].args.len);
    assert_memory_equal(c.choices[0].tools[1].name.p, "\"get_time\"", 10);
    assert_int_equal(c.choices[0].finish, SL_FINISH_TOOL_CALLS);
    assert_int_equal(c.choices[1].finish, SL_FINISH_LENGTH);
    assert_int_equal(c.usage.completion_tokens, 20);
    assert_memory_equal(c.id.p, "\"chatcmpl-1\"", 12);

    /* a stream without its clean end, or with an error, is not an answer to keep */
    sl_cache_acc_reset(acc);
    evs.n--; /* without SL_EV_DONE */
    sl_cache_acc_add(acc, &evs);
    assert_rc(sl_cache_acc_answer(acc, NULL, &c), SL_EDENIED);
    sl_cache_acc_reset(acc);
    {
        sl_error_t e = { .status = 500 };
        sl_ev_t err = { .type = SL_EV_ERROR, .error = &e };

        sl_evs_push(&evs, &err);
        sl_cache_acc_add(acc, &evs);
        assert_rc(sl_cache_acc_answer(acc, NULL, &c), SL_EDENIED);
    }
    sl_buf_free(&joined);
    sl_buf_free(&enc);
    sl_pool_destroy(pool);
}


static void
key_of(uint8_t key[SL_CACHE_KEY_LEN], unsigned n)
{
    char s[16];

    snprintf(s, sizeof(s), "k%u", n);
    sl_crypto_sha256(s, strlen(s), key);
}


static sl_cache_entry_t
entry(sl_pool_t *pool, unsigned n, const char *model, const char *key_id, size_t body_len,
      int64_t created_s)
{
    sl_cache_entry_t e;
    char *body = sl_palloc(pool, body_len);

    memset(body, 'a' + (int) (n % 26), body_len);
    memset(&e, 0, sizeof(e));
    key_of(e.key, n);
    e.created_ns = created_s * NS + n;
    e.expires = created_s + 3600;
    e.cost_nusd = 1000 + n;
    e.api = 0;
    e.model = model;
    e.key_id = key_id;
    e.key_name = "name";
    e.team = "";
    e.provider = "mock";
    e.target_model = "gpt";
    e.served_model = "gpt-1";
    e.body = (sl_str_t){ body, body_len };
    return e;
}


static void
test_store_get_expire(void **state)
{
    fixture_t *f = *state;
    sl_cache_entry_t e = entry(f->pool, 1, "m", "key_a", 100, NOW), got;
    uint8_t key[SL_CACHE_KEY_LEN];
    size_t n = 0, bytes = 0;
    sl_txn_t *t;

    assert_rc(sl_cache_put(f->db, &e, 1u << 20, NULL), 0);
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_cache_get(t, e.key, NOW, f->pool, &got), 0);
    assert_int_equal(got.created_ns, e.created_ns);
    assert_int_equal(got.cost_nusd, 1001);
    assert_string_equal(got.model, "m");
    assert_string_equal(got.key_id, "key_a");
    assert_string_equal(got.target_model, "gpt");
    assert_string_equal(got.served_model, "gpt-1");
    assert_int_equal(got.body.len, 100);
    assert_rc(sl_cache_get(t, e.key, NOW + 3600, f->pool, &got), SL_ENOTFOUND);
    key_of(key, 2);
    assert_rc(sl_cache_get(t, key, NOW, f->pool, &got), SL_ENOTFOUND);
    assert_rc(sl_cache_stat(t, &n, &bytes), 0);
    assert_int_equal(n, 1);
    assert_true(bytes > 100);
    sl_db_abort(t);

    /* a fill under the same key replaces the entry: one entry, the bytes of one */
    e.cost_nusd = 7;
    assert_rc(sl_cache_put(f->db, &e, 1u << 20, NULL), 0);
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_cache_stat(t, &n, &n), 0);
    assert_rc(sl_cache_stat(t, &n, &bytes), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_cache_get(t, e.key, NOW, f->pool, &got), 0);
    assert_int_equal(got.cost_nusd, 7);
    sl_db_abort(t);

    /* expiry removes what is past its time, and only that */
    {
        sl_cache_entry_t later = entry(f->pool, 3, "m", "key_a", 100, NOW + 7200);

        assert_rc(sl_cache_put(f->db, &later, 1u << 20, NULL), 0);
    }
    assert_rc(sl_cache_expire(f->db, NOW + 3600, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_cache_stat(t, &n, &bytes), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_cache_get(t, e.key, NOW, f->pool, &got), SL_ENOTFOUND);
    key_of(key, 3);
    assert_rc(sl_cache_get(t, key, NOW + 7200, f->pool, &got), 0);
    sl_db_abort(t);
}


static void
test_store_eviction(void **state)
{
    fixture_t *f = *state;
    const size_t cap = 64 * 1024, body = 3000;
    size_t n = 0, bytes = 0, evicted = 0, total = 0;
    sl_cache_entry_t got;
    sl_txn_t *t;
    unsigned first = 0;

    /* fills in time order: the oldest go first, the cache stays under the cap */
    for (unsigned i = 0; i < 100; i++) {
        sl_cache_entry_t e = entry(f->pool, i, "m", "key_a", body, NOW + i);

        assert_rc(sl_cache_put(f->db, &e, cap, &evicted), 0);
        total += evicted;
        assert_rc(sl_db_read(f->db, &t), 0);
        assert_rc(sl_cache_stat(t, &n, &bytes), 0);
        sl_db_abort(t);
        assert_true(bytes <= cap);
    }
    assert_true(total > 0);
    assert_int_equal(n + total, 100);
    assert_rc(sl_db_read(f->db, &t), 0);
    for (unsigned i = 0; i < 100; i++) {
        uint8_t key[SL_CACHE_KEY_LEN];
        int rc;

        key_of(key, i);
        rc = sl_cache_get(t, key, NOW, f->pool, &got);
        if (i < 100 - n) {
            assert_rc(rc, SL_ENOTFOUND); /* the oldest ones */
        } else {
            if (first == 0) {
                first = i;
            }
            assert_rc(rc, 0); /* the newest n, every one of them */
        }
    }
    sl_db_abort(t);
    assert_int_equal(first, 100 - n);

    /* larger than the cap: dropped, and nothing else goes for it */
    {
        sl_cache_entry_t big = entry(f->pool, 500, "m", "key_a", cap + 1, NOW + 500);

        assert_rc(sl_cache_put(f->db, &big, cap, &evicted), SL_EFULL);
        assert_int_equal(evicted, 0);
    }
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_cache_stat(t, &bytes, &bytes), 0);
    assert_rc(sl_cache_stat(t, &total, &bytes), 0);
    sl_db_abort(t);
    assert_int_equal(total, n);
}


static void
test_store_purge(void **state)
{
    fixture_t *f = *state;
    static const char *const models[] = { "a", "b" };
    static const char *const keys[] = { "key_1", "key_2", "" };
    size_t n = 0, bytes = 0;
    sl_txn_t *t;
    unsigned i = 0;

    for (size_t m = 0; m < 2; m++) {
        for (size_t k = 0; k < 3; k++, i++) {
            sl_cache_entry_t e = entry(f->pool, i, models[m], keys[k], 50, NOW);

            if (keys[k][0] == '\0') {
                e.key_name = "static";
            }
            assert_rc(sl_cache_put(f->db, &e, 1u << 20, NULL), 0);
        }
    }
    assert_rc(sl_cache_purge(f->db, "a", "key_1", &n), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_cache_purge(f->db, NULL, "static", &n), 0);
    assert_int_equal(n, 2);
    assert_rc(sl_cache_purge(f->db, "b", NULL, &n), 0);
    assert_int_equal(n, 2);
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_cache_stat(t, &n, &bytes), 0);
    sl_db_abort(t);
    assert_int_equal(n, 1); /* a, key_2 */
    assert_rc(sl_cache_purge(f->db, NULL, NULL, &n), 0);
    assert_int_equal(n, 1);
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_cache_stat(t, &n, &bytes), 0);
    sl_db_abort(t);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
}


static void
test_store_match(void **state)
{
    fixture_t *f = *state;
    const uint32_t dims = 37;
    float v[3][37];
    uint32_t words[2] = { 11, 22 }, other[2] = { 11, 33 };
    sl_cache_vec_t vec;
    sl_cache_query_t q;
    sl_cache_match_t m;
    uint8_t part[SL_CACHE_PART_LEN], ctx[SL_CACHE_CTX_LEN];
    sl_txn_t *t;

    memset(part, 1, sizeof(part));
    memset(ctx, 2, sizeof(ctx));
    /* three unit vectors: v0; v1 close to v0; v2 far from it */
    for (uint32_t i = 0; i < dims; i++) {
        v[0][i] = i == 0 ? 1.0f : 0.0f;
        v[1][i] = i == 0 ? 0.96f : i == 5 ? 0.28f : 0.0f;
        v[2][i] = i == 7 ? 1.0f : 0.0f;
    }
    for (unsigned i = 0; i < 3; i++) {
        sl_cache_entry_t e = entry(f->pool, i, "m", "", 10, NOW);

        memset(&vec, 0, sizeof(vec));
        memcpy(vec.part, part, sizeof(part));
        memcpy(vec.ctx, ctx, sizeof(ctx));
        vec.v = v[i];
        vec.dims = dims;
        vec.words = i == 1 ? other : words;
        vec.nwords = 2;
        e.vec = &vec;
        assert_rc(sl_cache_put(f->db, &e, 1u << 20, NULL), 0);
    }
    memset(&q, 0, sizeof(q));
    memcpy(q.part, part, sizeof(part));
    memcpy(q.ctx, ctx, sizeof(ctx));
    q.v = v[0];
    q.dims = dims;
    q.words = words;
    q.nwords = 2;
    q.threshold = 0.9f;
    q.now = NOW;
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_true(m.found);
    assert_int_equal(m.scanned, 3);
    {
        uint8_t k0[SL_CACHE_KEY_LEN];

        key_of(k0, 0);
        assert_memory_equal(m.key, k0, SL_CACHE_KEY_LEN);
    }
    assert_true(fabsf(m.score - 1.0f) < 1e-5f);

    /* v1 is close enough, but its words are others: rejected, never chosen */
    q.v = v[1];
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_true(m.found); /* v0, 0.96 away, with our words */
    assert_int_equal(m.rejected, 1);
    q.words = other;
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_true(m.found && m.score > 0.999f);

    /* another context, another partition, expired, or above the threshold: nothing */
    q.words = words;
    q.v = v[0];
    q.ctx[0] = 9;
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_false(m.found);
    q.ctx[0] = 2;
    q.part[0] = 9;
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_false(m.found);
    assert_int_equal(m.scanned, 0);
    q.part[0] = 1;
    q.now = NOW + 3600;
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_false(m.found);
    q.now = NOW;
    q.v = v[2];
    q.threshold = 0.5f;
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_true(m.found); /* itself */
    q.words = other;
    assert_rc(sl_cache_match(t, &q, 0, &m), 0);
    assert_false(m.found);
    /* a limit stops early and says so */
    assert_rc(sl_cache_match(t, &q, 2, &m), 0);
    assert_true(m.incomplete);
    assert_int_equal(m.scanned, 2);
    sl_db_abort(t);

    /* purging an entry takes its vector along */
    {
        size_t n = 0;

        assert_rc(sl_cache_purge(f->db, NULL, NULL, &n), 0);
        assert_rc(sl_db_read(f->db, &t), 0);
        q.words = words;
        q.v = v[0];
        assert_rc(sl_cache_match(t, &q, 0, &m), 0);
        assert_int_equal(m.scanned, 0);
        sl_db_abort(t);
    }
}


static void
test_dot(void **state)
{
    float a[19], b[19];
    double want = 0;

    (void) state;
    for (int i = 0; i < 19; i++) {
        a[i] = (float) (i + 1) / 19.0f;
        b[i] = (float) (19 - i) / 19.0f;
        want += (double) a[i] * b[i];
    }
    assert_true(fabs(sl_cache_dot(a, b, 19) - want) < 1e-5);
    assert_true(fabs(sl_cache_dot(a, b, 8) - sl_cache_dot(b, a, 8)) < 1e-6);
    assert_true(sl_cache_dot(a, b, 0) == 0.0f);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_order_space),
        cmocka_unit_test(test_canonical_numbers),
        cmocka_unit_test(test_canonical_strings),
        cmocka_unit_test(test_canonical_skip_omit),
        cmocka_unit_test(test_cache_control),
        cmocka_unit_test(test_content_words),
        cmocka_unit_test(test_prompt),
        cmocka_unit_test(test_answer_roundtrip),
        cmocka_unit_test(test_dot),
        cmocka_unit_test_setup_teardown(test_store_get_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_match, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
