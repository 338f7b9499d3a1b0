/*
 * Unit tests for core/admin/stats.c: the dashboard's buckets, series,
 * percentiles and budget projection, fed with synthetic ledger rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/admin/stats.h"

#define T0 (1796428800000LL) /* 2026-12-05T00:00:00Z */

static sl_ledger_row_t
row(int64_t ms, const char *model, const char *key, uint32_t status, uint64_t cost_nusd,
    uint64_t latency_us)
{
    sl_ledger_row_t r;

    memset(&r, 0, sizeof(r));
    r.time_ns = ms * 1000000;
    r.model = model;
    r.key_name = key;
    r.key_id = "";
    r.team = "";
    r.provider = "mock";
    r.served_model = model;
    r.status = status;
    r.cost_nusd = cost_nusd;
    r.latency_us = latency_us;
    r.request_id = "r";
    r.endpoint = "chat";
    r.cache = "";
    r.guard = "";
    r.trace_id = "";
    return r;
}


static json_int_t
at(const json_t *a, size_t i)
{
    return json_integer_value(json_array_get(a, i));
}


/* Rows land in their UTC hour; requests, errors and cost add up per bucket and in total. */
static void
test_buckets(void **state)
{
    sl_stats_t *s = sl_stats_create(T0 + 30 * 60000, T0 + 3 * SL_STATS_HOUR_MS, SL_STATS_HOUR_MS);
    sl_ledger_row_t r;
    json_t *j, *total;

    (void) state;
    assert_non_null(s);
    r = row(T0 + 10 * 60000, "m", "k", 200, 5, 1000); /* before since: ignored */
    sl_stats_add(s, &r);
    r = row(T0 + 40 * 60000, "m", "k", 200, 7, 1000);
    sl_stats_add(s, &r);
    r = row(T0 + SL_STATS_HOUR_MS + 1, "m", "k", 502, 0, 1000);
    sl_stats_add(s, &r);
    r = row(T0 + 2 * SL_STATS_HOUR_MS + 5, "m", "k", 200, 11, 1000);
    sl_stats_add(s, &r);
    r = row(T0 + 2 * SL_STATS_HOUR_MS + 6, "m", "k", 200, 0, 1000);
    r.flags = SL_LEDGER_GATEWAY; /* the gateway's own usage is not a client request */
    sl_stats_add(s, &r);
    j = sl_stats_json(s);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "bucket")), "hour");
    assert_int_equal(json_array_size(json_object_get(j, "buckets")), 3);
    assert_int_equal(at(json_object_get(j, "buckets"), 0), T0);
    assert_int_equal(at(json_object_get(j, "requests"), 0), 1);
    assert_int_equal(at(json_object_get(j, "requests"), 1), 1);
    assert_int_equal(at(json_object_get(j, "errors"), 1), 1);
    assert_int_equal(at(json_object_get(j, "requests"), 2), 1);
    assert_int_equal(at(json_object_get(j, "cost_nusd"), 2), 11);
    total = json_object_get(j, "total");
    assert_int_equal(json_integer_value(json_object_get(total, "requests")), 3);
    assert_int_equal(json_integer_value(json_object_get(total, "errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(total, "cost_nusd")), 18);
    assert_string_equal(json_string_value(json_object_get(total, "cost_usd")), "0.000000018");
    json_decref(j);
    sl_stats_destroy(s);
}


/*
 * Guardrail decisions by policy and action, the most first: a decision per
 * rule and action of a row, requests counted once per pair; rule names with
 * a slash ("output:x") and policies past SL_STATS_GUARD_MAX pairs do not
 * break the count.
 */
static void
test_guard(void **state)
{
    static const char *const guards[] = {
        "pii/email/redact;pii/card/redact",          "pii/falcon/block",  "",
        "pii/email/redact;pii/output:deny[2]/block", "strict/models/log",
    };
    sl_stats_t *s = sl_stats_create(T0, T0 + SL_STATS_HOUR_MS, SL_STATS_HOUR_MS);
    json_t *j, *g;
    char buf[64];

    (void) state;
    for (size_t i = 0; i < sizeof(guards) / sizeof(guards[0]); i++) {
        sl_ledger_row_t r = row(T0 + (int64_t) i, "m", "k", 200, 1, 1000);

        r.guard = guards[i];
        sl_stats_add(s, &r);
    }
    for (int i = 0; i < 40; i++) {
        sl_ledger_row_t r = row(T0 + 100 + i, "m", "k", 200, 1, 1000);

        snprintf(buf, sizeof(buf), "p%d/x/log", i);
        r.guard = buf;
        sl_stats_add(s, &r);
    }
    j = sl_stats_json(s);
    g = json_object_get(j, "guard");
    assert_int_equal(json_array_size(g), SL_STATS_GUARD_MAX);
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "policy")), "pii");
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "action")),
                        "redact");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(g, 0), "decisions")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(g, 0), "requests")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 1), "action")),
                        "block");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(g, 1), "decisions")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(g, 1), "requests")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 2), "policy")),
                        "strict");
    assert_int_equal(json_integer_value(json_object_get(j, "guard_requests")), 44);
    json_decref(j);
    sl_stats_destroy(s);
}


/* The top SL_STATS_TOP names by cost are kept; the rest add up into "other". */
static void
test_top_and_other(void **state)
{
    sl_stats_t *s = sl_stats_create(T0, T0 + SL_STATS_DAY_MS, SL_STATS_DAY_MS);
    char names[12][16];
    sl_ledger_row_t r;
    json_t *j, *series, *last;

    (void) state;
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof(names[i]), "model-%02d", i);
        for (int k = 0; k <= i; k++) {
            r = row(T0 + 1000 + k, names[i], "key", 200, 100, 1000);
            sl_stats_add(s, &r);
        }
    }
    j = sl_stats_json(s);
    series = json_object_get(json_object_get(j, "series"), "model");
    assert_int_equal(json_array_size(series), SL_STATS_TOP + 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(series, 0), "name")),
                        "model-11");
    last = json_array_get(series, SL_STATS_TOP);
    assert_string_equal(json_string_value(json_object_get(last, "name")), "other");
    /* models 00..03: 1 + 2 + 3 + 4 requests of 100 nano-USD */
    assert_int_equal(json_integer_value(json_object_get(last, "requests")), 10);
    assert_int_equal(at(json_object_get(last, "cost_nusd"), 0), 1000);
    assert_string_equal(json_string_value(json_object_get(j, "bucket")), "day");
    json_decref(j);
    sl_stats_destroy(s);
}


/* Percentiles come from log bins: within 7% of the exact nearest rank. */
static void
test_percentiles(void **state)
{
    uint32_t hist[SL_STATS_BINS];
    uint64_t p;

    (void) state;
    memset(hist, 0, sizeof(hist));
    assert_int_equal(sl_stats_percentile(hist, 0, 50), 0);
    for (uint64_t v = 1; v <= 1000; v++) {
        hist[sl_stats_bin(v * 1000)]++;
    }
    p = sl_stats_percentile(hist, 1000, 50);
    assert_in_range(p, 500000 * 93 / 100, 500000 * 107 / 100);
    p = sl_stats_percentile(hist, 1000, 99);
    assert_in_range(p, 990000 * 93 / 100, 990000 * 107 / 100);
    /* bins never run off the end, whatever the value */
    assert_int_equal(sl_stats_bin(UINT64_MAX), SL_STATS_BINS - 1);
    assert_int_equal(sl_stats_bin(3), 3);
}


/* Served targets per model, errors excluded; p95 per model. */
static void
test_models(void **state)
{
    sl_stats_t *s = sl_stats_create(T0, T0 + SL_STATS_HOUR_MS, SL_STATS_HOUR_MS);
    sl_ledger_row_t r;
    json_t *j, *m, *served;

    (void) state;
    r = row(T0 + 1, "fast", "k", 200, 1, 2000);
    r.provider = "anthropic";
    r.served_model = "claude-haiku";
    sl_stats_add(s, &r);
    r = row(T0 + 2, "fast", "k", 503, 0, 1000);
    r.provider = "openai";
    r.served_model = "gpt-4o-mini";
    sl_stats_add(s, &r);
    j = sl_stats_json(s);
    m = json_array_get(json_object_get(j, "models"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "model")), "fast");
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 2);
    assert_int_equal(json_integer_value(json_object_get(m, "errors")), 1);
    served = json_object_get(m, "served");
    assert_int_equal(json_array_size(served), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(served, 0), "model")),
                        "claude-haiku");
    assert_non_null(json_object_get(m, "p95_us"));
    json_decref(j);
    sl_stats_destroy(s);
}


/* A window that needs too many buckets, or none, is refused. */
static void
test_bounds(void **state)
{
    (void) state;
    assert_null(sl_stats_create(T0, T0, SL_STATS_HOUR_MS));
    assert_null(
        sl_stats_create(T0, T0 + (SL_STATS_BUCKETS_MAX + 1) * SL_STATS_HOUR_MS, SL_STATS_HOUR_MS));
}


/* Spend at the same rate until the period ends; nothing to project from in the first minute. */
static void
test_project(void **state)
{
    (void) state;
    assert_int_equal(sl_stats_project(100, T0, T0 + 10 * SL_STATS_DAY_MS, T0 + SL_STATS_DAY_MS),
                     1000);
    assert_int_equal(sl_stats_project(100, T0, T0 + SL_STATS_DAY_MS, T0 + 1000), 100);
    assert_int_equal(sl_stats_project(100, T0, T0 + SL_STATS_DAY_MS, T0 + 2 * SL_STATS_DAY_MS),
                     100);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),     cmocka_unit_test(test_top_and_other),
        cmocka_unit_test(test_percentiles), cmocka_unit_test(test_models),
        cmocka_unit_test(test_bounds),      cmocka_unit_test(test_project),
        cmocka_unit_test(test_guard),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
