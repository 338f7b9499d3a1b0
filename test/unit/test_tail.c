/*
 * Unit tests for core/admin/tail.c: the live tail's ring and the request
 * text it keeps only with dashboard.tail_text (the last user message, the
 * answer of choice 0, one line, bounded, never a UTF-8 sequence cut).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/admin/tail.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/base/shm.h"

typedef struct fixture {
    sl_pool_t *pool;
    sl_conf_t *conf;
} fixture_t;

static sl_call_t call_of(fixture_t *f, const char *body);
static sl_ledger_row_t row_of(const char *request_id);
static json_t *tail_newest(void);


static int
group_setup(void **state)
{
    (void) state;
    assert_int_equal(sl_shm_init(1u << 20), 0);
    assert_int_equal(sl_tail_init(), 0);
    return 0;
}


static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->pool = sl_pool_create(4096);
    f->conf = calloc(1, sizeof(*f->conf));
    assert_non_null(f->conf);
    f->conf->dashboard.tail_text = true;
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t *f = *state;

    sl_pool_destroy(f->pool);
    free(f->conf);
    free(f);
    return 0;
}


/* A call whose internal request is body. */
static sl_call_t
call_of(fixture_t *f, const char *body)
{
    sl_json_t *doc = sl_json_create(f->pool);
    sl_call_t c;

    memset(&c, 0, sizeof(c));
    assert_int_equal(sl_json_parse(doc, body, strlen(body), NULL), 0);
    c.pool = f->pool;
    c.raw = (sl_str_t){ body, strlen(body) };
    c.doc = doc;
    return c;
}


static sl_ledger_row_t
row_of(const char *request_id)
{
    sl_ledger_row_t r;

    memset(&r, 0, sizeof(r));
    r.request_id = request_id;
    r.key_name = "k";
    r.key_id = "";
    r.team = "";
    r.endpoint = "chat";
    r.model = "m";
    r.provider = "p";
    r.served_model = "m-1";
    r.cache = "miss";
    r.status = 200;
    return r;
}


/* The newest entry of the tail (a new reference). */
static json_t *
tail_newest(void)
{
    uint64_t last;
    json_t *a = sl_tail_json(0, 1, &last), *e;

    assert_non_null(a);
    assert_int_equal(json_array_size(a), 1);
    e = json_incref(json_array_get(a, 0));
    json_decref(a);
    return e;
}


/* Off (the default): no holder, so nothing is kept; the entry has no text fields. */
static void
test_off(void **state)
{
    fixture_t *f = *state;
    sl_call_t c = call_of(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"secret plan\"}]}");
    sl_ledger_row_t r = row_of("req-off");
    json_t *e;

    f->conf->dashboard.tail_text = false;
    assert_null(sl_tail_text_new(f->conf, f->pool, &c, true));
    sl_tail_add(&r, NULL);
    e = tail_newest();
    assert_string_equal(json_string_value(json_object_get(e, "request_id")), "req-off");
    assert_null(json_object_get(e, "prompt"));
    assert_null(json_object_get(e, "answer"));
    json_decref(e);
}


/* The last user message (a string or its first text part), on one line. */
static void
test_prompt(void **state)
{
    fixture_t *f = *state;
    sl_call_t c = call_of(f, "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},"
                             "{\"role\":\"user\",\"content\":\"first\"},"
                             "{\"role\":\"assistant\",\"content\":\"earlier\"},"
                             "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"},"
                             "{\"type\":\"text\",\"text\":\"line one\\n\\nline\\ttwo\\u0007!\"}]},"
                             "{\"role\":\"tool\",\"content\":\"42\"}]}");
    sl_call_t emb = call_of(f, "{\"model\":\"e\",\"input\":[\"to embed\",\"more\"]}");
    sl_tail_text_t *t = sl_tail_text_new(f->conf, f->pool, &c, true);

    assert_non_null(t);
    assert_string_equal(t->prompt, "line one line two!");
    assert_string_equal(t->answer, "");
    t = sl_tail_text_new(f->conf, f->pool, &emb, true);
    assert_string_equal(t->prompt, "to embed");
}


/* Stream pieces of choice 0 add up; a whole answer replaces them. */
static void
test_answer(void **state)
{
    fixture_t *f = *state;
    sl_call_t c = call_of(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    sl_tail_text_t *t = sl_tail_text_new(f->conf, f->pool, &c, true);
    sl_ev_t v[4] = {
        { .type = SL_EV_TEXT, .choice = 0, .text = sl_str_lit("\"mock \"") },
        { .type = SL_EV_TEXT, .choice = 1, .text = sl_str_lit("\"other \"") },
        { .type = SL_EV_USAGE },
        { .type = SL_EV_TEXT, .choice = 0, .text = sl_str_lit("\"r\\u00e9ply\"") },
    };
    sl_evs_t evs = { .pool = f->pool, .v = v, .n = 4, .cap = 4 };
    sl_choice_t ch = { .text = sl_str_lit("\"whole\"") };
    sl_answer_t ans = { .choices = &ch, .nchoices = 1 };
    sl_ledger_row_t r = row_of("req-text");
    json_t *e;

    sl_tail_text_events(t, f->pool, &evs);
    assert_string_equal(t->answer, "mock r\xc3\xa9ply");
    sl_tail_add(&r, t);
    e = tail_newest();
    assert_string_equal(json_string_value(json_object_get(e, "prompt")), "q");
    assert_string_equal(json_string_value(json_object_get(e, "answer")), "mock r\xc3\xa9ply");
    json_decref(e);
    sl_tail_text_answer(t, f->pool, &ans);
    assert_string_equal(t->answer, "whole");
    /* answers false (the guardrails rewrite the answer): the prompt only */
    t = sl_tail_text_new(f->conf, f->pool, &c, false);
    sl_tail_text_events(t, f->pool, &evs);
    sl_tail_text_answer(t, f->pool, &ans);
    assert_string_equal(t->prompt, "q");
    assert_string_equal(t->answer, "");
    /* NULL holders (tail_text off) are no-ops */
    sl_tail_text_events(NULL, f->pool, &evs);
    sl_tail_text_answer(NULL, f->pool, &ans);
}


/* At most SL_TAIL_TEXT_MAX bytes, cut between characters. */
static void
test_bounds(void **state)
{
    fixture_t *f = *state;
    char body[2048], *p = body;
    sl_call_t c;
    sl_tail_text_t *t;

    p += sprintf(p, "{\"messages\":[{\"role\":\"user\",\"content\":\"a");
    for (int i = 0; i < 100; i++) {
        p += sprintf(p, "\xe2\x82\xac"); /* the euro sign: 3 bytes */
    }
    sprintf(p, "\"}]}");
    c = call_of(f, body);
    t = sl_tail_text_new(f->conf, f->pool, &c, true);
    /* 1 + 79 * 3 = 238: an 80th euro sign would end at 241 */
    assert_int_equal(strlen(t->prompt), 238);
    assert_int_equal(t->nprompt, SL_TAIL_TEXT_MAX); /* full: nothing more is added */
    assert_memory_equal(t->prompt + 235, "\xe2\x82\xac", 3);

    /* a stream: 239 bytes, a euro sign that does not fit, then nothing more */
    memset(body + 1, 'x', 239);
    body[0] = body[240] = '"';
    body[241] = '\0';
    {
        sl_ev_t v[3] = {
            { .type = SL_EV_TEXT, .text = { body, 241 } },
            { .type = SL_EV_TEXT, .text = sl_str_lit("\"\xe2\x82\xac\"") },
            { .type = SL_EV_TEXT, .text = sl_str_lit("\"a\"") },
        };
        sl_evs_t evs = { .pool = f->pool, .v = v, .n = 3, .cap = 3 };

        sl_tail_text_events(t, f->pool, &evs);
    }
    assert_int_equal(strlen(t->answer), 239);
    assert_null(strchr(t->answer, 'a'));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
