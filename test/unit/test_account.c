/*
 * Unit tests for the money side of core/gateway/account.c: what a request
 * reserves against its budgets (sl_acct_estimate: max_tokens, the model's
 * max_output, budgets.default_output_tokens, the budgets.max_reservation
 * cap as an amount or a share of the smallest budget) and which targets
 * `unpriced: reject` refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/base/pool.h"
#include "core/conf/conf.h"
#include "core/gateway/account.h"
#include "core/gateway/pricing.h"
#include "storage/spend.h"

static sl_pricing_t *load(sl_pool_t *pool);


static sl_pricing_t *
load(sl_pool_t *pool)
{
    static const char yaml[] = "models:\n"
                               "  openai/big: {input: 1, output: 10, max_output: 1000}\n"
                               "  openai/nomax: {input: 1, output: 10}\n";
    char path[] = "/tmp/sl-account-XXXXXX", err[512];
    sl_pricing_t *p = NULL;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, sizeof(yaml) - 1), (ssize_t) sizeof(yaml) - 1);
    close(fd);
    if (sl_pricing_load(path, pool, &p, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    unlink(path);
    return p;
}


static void
test_estimate(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_pricing_t *p = load(pool);
    const sl_price_t *big = sl_pricing_find(p, NULL, "openai", "big");
    const sl_price_t *nomax = sl_pricing_find(p, NULL, "openai", "nomax");
    sl_conf_t conf;
    sl_acct_t a;

    (void) state;
    memset(&conf, 0, sizeof(conf));
    memset(&a, 0, sizeof(a));
    conf.budget_default_output = SL_BUDGET_DEFAULT_OUTPUT;

    /* no cap: 400 bytes = 100 prompt tokens at 1000 nano-USD, the answer at 10000 each */
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 400, 500), 100 * 1000 + 500 * 10000);
    /* max_tokens above the model's max_output: the model cannot answer more */
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 400, 1000000), 100 * 1000 + 1000 * 10000);
    /* no max_tokens: the model's max_output */
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 400, 0), 100 * 1000 + 1000 * 10000);
    /* no max_tokens and no max_output: budgets.default_output_tokens */
    assert_int_equal(sl_acct_estimate(&conf, &a, nomax, 400, 0),
                     100 * 1000 + SL_BUDGET_DEFAULT_OUTPUT * 10000);
    conf.budget_default_output = 7;
    assert_int_equal(sl_acct_estimate(&conf, &a, nomax, 0, 0), 7 * 10000);
    /* unpriced: nothing to reserve */
    assert_int_equal(sl_acct_estimate(&conf, &a, NULL, 400, 500), 0);

    /* a fixed cap */
    conf.budget_max_reservation = 2000000;
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 400, 500), 2000000);
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 4, 10), 1000 + 10 * 10000);

    /* a share of the smallest budget of the request (key 1 USD, team 0.2 USD): 1% of 0.2 */
    conf.budget_max_reservation = 0;
    conf.budget_max_reservation_permille = 10;
    a.refs[0] = (sl_budget_ref_t){ SL_BUDGET_KEY, "k", 1000000000, SL_BUDGET_DAY };
    a.refs[1] = (sl_budget_ref_t){ SL_BUDGET_TEAM, "t", 200000000, SL_BUDGET_WEEK };
    a.nrefs = 2;
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 400, 1000000), 2000000);
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 400, 5), 100 * 1000 + 5 * 10000);
    /* no overflow for a huge budget */
    a.refs[0].budget_nusd = UINT64_MAX;
    a.nrefs = 1;
    conf.budget_max_reservation_permille = 1000;
    assert_int_equal(sl_acct_estimate(&conf, &a, big, 400, 1000000), 100 * 1000 + 1000 * 10000);

    sl_pool_destroy(pool);
}


static void
test_unpriced(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_provider_conf_t openai, echo;
    sl_target_t t;
    sl_conf_t conf;

    (void) state;
    memset(&conf, 0, sizeof(conf));
    memset(&openai, 0, sizeof(openai));
    memset(&echo, 0, sizeof(echo));
    openai.name = "oa";
    openai.kind = "openai";
    echo.name = "demo";
    echo.kind = "echo";
    conf.pricing = load(pool);

    t = (sl_target_t){ &openai, "other", 1 };
    assert_false(sl_acct_unpriced(&conf, &t)); /* unpriced: allow */
    conf.unpriced_reject = true;
    assert_true(sl_acct_unpriced(&conf, &t));
    t.model = "big-2025-01-01"; /* a snapshot of a priced model is priced */
    assert_false(sl_acct_unpriced(&conf, &t));
    t = (sl_target_t){ &echo, "echo", 1 };
    assert_false(sl_acct_unpriced(&conf, &t));
    /* no table at all: everything but echo is unpriced */
    conf.pricing = NULL;
    t = (sl_target_t){ &openai, "big", 1 };
    assert_true(sl_acct_unpriced(&conf, &t));
    sl_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_unpriced),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
