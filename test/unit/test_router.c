/*
 * Unit tests for core/gateway/router.c: rule matching (every when kind, first
 * match wins, the complexity scored only when needed), every strategy's
 * ordering (fallback, weighted with an injected random source, cheapest
 * by this request's size with unpriced last and max_latency, fastest with
 * unknown first and TTFT for streams, least_busy), breaker skips with the
 * Retry-After of an all-open plan, headroom and cooling credentials put
 * behind, direct requests, and picking a credential.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf/conf.h"
#include "core/gateway/features.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/gateway/router.h"
#include "core/gateway/state.h"

#define T0 1700000000000ull

typedef struct seq_rand {
    uint64_t next;
} seq_rand_t;

typedef struct router_ctx {
    sl_conf_t *conf;
    sl_pool_t *pool;
    char prices[64];
} router_ctx_t;

static int setup(void **state);
static int teardown(void **state);
static uint64_t seq(void *arg);
static void plan(router_ctx_t *c, const char *model, sl_features_t *f, sl_rand_fn rand,
                 void *rand_arg, sl_route_plan_t *out);
static void assert_order(const sl_route_plan_t *p, const char *want);
static void chat(router_ctx_t *c, sl_features_t *f, const char *json);

static const char conf_yaml[] =
    "pricing: %s\n"
    "providers:\n"
    "  a: {kind: openai, base_url: \"http://a\"}\n"
    "  b: {kind: openai, base_url: \"http://b\"}\n"
    "  c: {kind: openai, base_url: \"http://c\"}\n"
    "  w: {kind: openai, base_url: \"http://w\"}\n"
    "  brk: {kind: openai, base_url: \"http://brk\"}\n"
    "  keys: {kind: openai, base_url: \"http://k\", api_key: [env:SL_RT_K1, env:SL_RT_K2, "
    "env:SL_RT_K3]}\n"
    "  hr: {kind: openai, base_url: \"http://hr\"}\n"
    "  one: {kind: openai, base_url: \"http://one\", api_key: env:SL_RT_K1}\n"
    "routing:\n"
    "  breaker: {failures: 1, cooldown: 10s}\n"
    "models:\n"
    "  ruled:\n"
    "    targets: [a/default]\n"
    "    rules:\n"
    "      - {when: {min_prompt_tokens: 1000}, targets: [a/long], strategy: cheapest}\n"
    "      - {when: {max_prompt_tokens: 2, has_tools: false}, targets: [a/tiny]}\n"
    "      - {when: {header: {X-Team: research}}, targets: [a/research]}\n"
    "      - {when: {key: [bot, ci]}, targets: [a/bots]}\n"
    "      - {when: {team: ml}, targets: [a/ml]}\n"
    "      - {when: {has_tools: true}, targets: [a/tools]}\n"
    "      - {when: {has_images: true}, targets: [a/vision]}\n"
    "      - {when: {complexity: complex}, targets: [a/smart]}\n"
    "  fb: {targets: [a/x, b/x, c/x]}\n"
    "  wt: {targets: [w/one, {target: w/three, weight: 3}], strategy: weighted}\n"
    "  cheap: {targets: [c/unpriced, b/outcheap, a/incheap], strategy: cheapest}\n"
    "  cheap_fast: {targets: [a/incheap, b/outcheap], strategy: cheapest, max_latency: 2s}\n"
    "  fast: {targets: [a/f1, b/f2, c/f3], strategy: fastest}\n"
    "  busy: {targets: [a/l1, b/l2, c/l3], strategy: least_busy}\n"
    "  brk: {targets: [brk/one, brk/two, brk/three]}\n"
    "  room: {targets: [hr/low, keys/m, hr/ok]}\n";


static int
setup(void **state)
{
    static const char prices[] = "models:\n"
                                 "  openai/incheap: {input: 1, output: 10}\n"
                                 "  openai/outcheap: {input: 5, output: 2}\n";
    router_ctx_t *c = calloc(1, sizeof(*c));
    char yaml[4096], path[] = "/tmp/sl-router-XXXXXX", err[1024];
    int fd;

    assert_non_null(c);
    snprintf(c->prices, sizeof(c->prices), "/tmp/sl-router-prices-XXXXXX");
    fd = mkstemp(c->prices);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, prices, sizeof(prices) - 1), (ssize_t) sizeof(prices) - 1);
    close(fd);
    snprintf(yaml, sizeof(yaml), conf_yaml, c->prices);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t) strlen(yaml));
    close(fd);
    setenv("SL_RT_K1", "sk-1", 1);
    setenv("SL_RT_K2", "sk-2", 1);
    setenv("SL_RT_K3", "sk-3", 1);
    if (sl_conf_load(path, &c->conf, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    unlink(path);
    assert_int_equal(sl_state_init(c->conf), 0);
    c->pool = sl_pool_create(0);
    *state = c;
    return 0;
}


static int
teardown(void **state)
{
    router_ctx_t *c = *state;

    sl_pool_destroy(c->pool);
    sl_conf_destroy(c->conf);
    unlink(c->prices);
    free(c);
    return 0;
}


/* 0, 1, 2, ... */
static uint64_t
seq(void *arg)
{
    seq_rand_t *r = arg;

    return r->next++;
}


static void
plan(router_ctx_t *c, const char *model, sl_features_t *f, sl_rand_fn rand, void *rand_arg,
     sl_route_plan_t *out)
{
    sl_route_req_t req;
    sl_features_t none;

    if (f == NULL) {
        sl_features_init(&none);
        f = &none;
    }
    memset(&req, 0, sizeof(req));
    req.model = sl_conf_model(c->conf, model, strlen(model));
    assert_non_null(req.model);
    req.pricing = c->conf->pricing;
    req.features = f;
    req.now = T0;
    req.rand = rand;
    req.rand_arg = rand_arg;
    assert_int_equal(sl_router_plan(&req, c->pool, out), 0);
}


/* want: "a/x b/x | c/x": the order, then the skipped ones after a bar. */
static void
assert_order(const sl_route_plan_t *p, const char *want)
{
    char got[512];
    size_t n = 0;

    got[0] = '\0';
    for (size_t i = 0; i < p->norder; i++) {
        n += (size_t) snprintf(got + n, sizeof(got) - n, "%s%s/%s", i > 0 ? " " : "",
                               p->order[i].target->provider->name, p->order[i].target->model);
    }
    if (p->nskipped > 0) {
        n += (size_t) snprintf(got + n, sizeof(got) - n, " |");
        for (size_t i = 0; i < p->nskipped; i++) {
            n += (size_t) snprintf(got + n, sizeof(got) - n, " %s/%s",
                                   p->skipped[i].target->provider->name,
                                   p->skipped[i].target->model);
        }
    }
    assert_string_equal(got, want);
}


static void
chat(router_ctx_t *c, sl_features_t *f, const char *json)
{
    sl_json_t *doc = sl_json_create(c->pool);

    assert_int_equal(sl_json_parse(doc, json, strlen(json), NULL), 0);
    sl_features_init(f);
    assert_int_equal(sl_features_from_chat(f, doc, SL_JSON_ROOT, c->pool), 0);
}


static void
test_rules(void **state)
{
    router_ctx_t *c = *state;
    const sl_model_conf_t *m = sl_conf_model(c->conf, "ruled", 5);
    sl_http_header_t hdr[2] = {
        { { "accept", 6 }, { "*/*", 3 } },
        { { "x-team", 6 }, { "research", 8 } },
    };
    sl_route_plan_t p;
    sl_features_t f;

    /* 3 prompt tokens, no tools: no rule (the tiny one wants at most 2) */
    chat(c, &f, "{\"messages\":[{\"role\":\"user\",\"content\":\"hello wor\"}]}");
    assert_int_equal(f.prompt_tokens, 3);
    assert_null(sl_router_match(m, &f));
    plan(c, "ruled", &f, NULL, NULL, &p);
    assert_null(p.rule);
    assert_ptr_equal(p.routing, &m->routing);
    assert_order(&p, "a/default");
    /* only rules that ask for it score the prompt */
    assert_true(f.scored);

    /* min_prompt_tokens, with the rule's own strategy */
    f.prompt_tokens = 1000;
    plan(c, "ruled", &f, NULL, NULL, &p);
    assert_ptr_equal(p.rule, &m->rules[0]);
    assert_int_equal(p.routing->strategy, SL_STRATEGY_CHEAPEST);
    assert_order(&p, "a/long");
    f.prompt_tokens = 999;
    assert_ptr_not_equal(sl_router_match(m, &f), &m->rules[0]);

    /* max_prompt_tokens and has_tools: false, both must hold */
    f.prompt_tokens = 2;
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[1]);
    f.has_tools = true;
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[5]);
    f.has_tools = false;
    f.prompt_tokens = 3;

    /* header: name in any case, value exactly */
    f.headers = hdr;
    f.nheaders = 2;
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[2]);
    hdr[1].value = (sl_str_t){ "Research", 8 };
    assert_null(sl_router_match(m, &f));
    hdr[1].name = (sl_str_t){ "X-TEAM", 6 };
    hdr[1].value = (sl_str_t){ "research", 8 };
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[2]);
    f.nheaders = 1;
    assert_null(sl_router_match(m, &f));

    /* key: one of the names; team */
    f.key_name = "ci";
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[3]);
    f.key_name = "cid";
    assert_null(sl_router_match(m, &f));
    f.key_name = NULL;
    f.team = "ml";
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[4]);
    f.team = NULL;

    /* images */
    f.has_images = true;
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[6]);
    f.has_images = false;

    /* complexity: the last rule, first match wins over it */
    chat(c, &f,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"Prove it step by step, please do\"}]}");
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[7]);
    f.team = "ml";
    assert_ptr_equal(sl_router_match(m, &f), &m->rules[4]);

    /* an earlier condition failing spares the scan */
    chat(c, &f, "{\"messages\":[{\"role\":\"user\",\"content\":\"Prove it step by step\"}]}");
    f.prompt_tokens = 500;
    assert_false(sl_router_rule_matches(&m->rules[0], &f));
    assert_false(f.scored);
}


static void
test_fallback_and_breakers(void **state)
{
    router_ctx_t *c = *state;
    const sl_routing_conf_t *rc = &sl_conf_model(c->conf, "brk", 3)->routing;
    sl_route_plan_t p;

    plan(c, "fb", NULL, NULL, NULL, &p);
    assert_order(&p, "a/x b/x c/x");
    assert_int_equal(p.routing->strategy, SL_STRATEGY_FALLBACK);
    assert_non_null(p.order[0].state);
    assert_int_equal(p.order[0].breaker, SL_BREAKER_PASS);

    /* an open breaker is skipped and reported */
    sl_state_breaker_failure(sl_state_target("brk", "one"), SL_BREAKER_PASS, T0 - 4000, rc);
    plan(c, "brk", NULL, NULL, NULL, &p);
    assert_order(&p, "brk/two brk/three | brk/one");
    assert_int_equal(p.skipped[0].breaker, SL_BREAKER_SKIP);
    assert_int_equal(p.retry_after, 0);

    /* all open: nothing to try, and when the first probe is due */
    sl_state_breaker_failure(sl_state_target("brk", "two"), SL_BREAKER_PASS, T0 - 8000, rc);
    sl_state_breaker_failure(sl_state_target("brk", "three"), SL_BREAKER_PASS, T0 - 1000, rc);
    plan(c, "brk", NULL, NULL, NULL, &p);
    assert_order(&p, " | brk/one brk/two brk/three");
    assert_int_equal(p.norder, 0);
    assert_int_equal(p.retry_after, 2000);

    /* a due probe stays in its place, marked */
    sl_state_breaker_failure(sl_state_target("brk", "one"), SL_BREAKER_PASS, T0 - 4000, rc);
    sl_state_breaker_success(sl_state_target("brk", "two"), SL_BREAKER_PASS);
    {
        sl_route_req_t req;

        memset(&req, 0, sizeof(req));
        req.model = sl_conf_model(c->conf, "brk", 3);
        req.now = T0 + 2000;
        assert_int_equal(sl_router_plan(&req, c->pool, &p), 0);
    }
    assert_order(&p, "brk/two | brk/one brk/three");
    assert_int_equal(p.order[0].breaker, SL_BREAKER_PROBE);
}


static void
test_weighted(void **state)
{
    router_ctx_t *c = *state;
    seq_rand_t r = { 0 };
    unsigned first_three = 0;
    sl_route_plan_t p;

    /* weights 1 and 3: draws 0 | 1, 2, 3 */
    plan(c, "wt", NULL, seq, &r, &p);
    assert_order(&p, "w/one w/three");
    plan(c, "wt", NULL, seq, &r, &p);
    assert_order(&p, "w/three w/one");
    /* over every residue, exactly in proportion to the weights */
    r.next = 0;
    for (int i = 0; i < 400; i++) {
        plan(c, "wt", NULL, seq, &r, &p);
        assert_int_equal(p.norder, 2);
        first_three += strcmp(p.order[0].target->model, "three") == 0;
    }
    assert_int_equal(first_three, 300);
    /* the default source: a weight-1 target still goes first sometimes, not always */
    first_three = 0;
    for (int i = 0; i < 400; i++) {
        plan(c, "wt", NULL, NULL, NULL, &p);
        first_three += strcmp(p.order[0].target->model, "three") == 0;
    }
    assert_in_range(first_three, 200, 380);
}


static void
test_cheapest(void **state)
{
    router_ctx_t *c = *state;
    sl_route_plan_t p;
    sl_features_t f;

    /* a short prompt with a long answer: output price decides; unpriced last */
    sl_features_init(&f);
    f.prompt_bytes = 400;
    f.max_tokens = 2000;
    plan(c, "cheap", &f, NULL, NULL, &p);
    assert_order(&p, "b/outcheap a/incheap c/unpriced");
    assert_true(p.order[0].priced);
    assert_true(p.order[0].cost_nusd < p.order[1].cost_nusd);
    assert_false(p.order[2].priced);

    /* a long prompt with a short answer: input price decides */
    f.prompt_bytes = 400000;
    f.max_tokens = 10;
    plan(c, "cheap", &f, NULL, NULL, &p);
    assert_order(&p, "a/incheap b/outcheap c/unpriced");

    /* max_latency: the cheaper one is too slow, so it goes behind */
    plan(c, "cheap_fast", &f, NULL, NULL, &p);
    assert_order(&p, "a/incheap b/outcheap");
    sl_state_latency_record(sl_state_target("a", "incheap"), 2500000, 0);
    sl_state_latency_record(sl_state_target("b", "outcheap"), 1500000, 0);
    plan(c, "cheap_fast", &f, NULL, NULL, &p);
    assert_order(&p, "b/outcheap a/incheap");
    assert_true(p.order[1].slow);
}


static void
test_fastest(void **state)
{
    router_ctx_t *c = *state;
    sl_route_plan_t p;
    sl_features_t f;

    sl_features_init(&f);
    /* nothing measured: the order written */
    plan(c, "fast", &f, NULL, NULL, &p);
    assert_order(&p, "a/f1 b/f2 c/f3");
    sl_state_latency_record(sl_state_target("a", "f1"), 900000, 300000);
    sl_state_latency_record(sl_state_target("c", "f3"), 500000, 400000);
    /* b/f2 has no estimate yet: it goes first to get one */
    plan(c, "fast", &f, NULL, NULL, &p);
    assert_order(&p, "b/f2 c/f3 a/f1");
    assert_int_equal(p.order[1].latency_us, 500000);
    sl_state_latency_record(sl_state_target("b", "f2"), 700000, 350000);
    plan(c, "fast", &f, NULL, NULL, &p);
    assert_order(&p, "c/f3 b/f2 a/f1");
    /* streams go by time to first token */
    f.stream = true;
    plan(c, "fast", &f, NULL, NULL, &p);
    assert_order(&p, "a/f1 b/f2 c/f3");
    assert_int_equal(p.order[0].latency_us, 300000);
}


static void
test_least_busy(void **state)
{
    router_ctx_t *c = *state;
    sl_route_plan_t p;

    plan(c, "busy", NULL, NULL, NULL, &p);
    assert_order(&p, "a/l1 b/l2 c/l3");
    sl_state_inflight_add(sl_state_target("a", "l1"), 3);
    sl_state_inflight_add(sl_state_target("b", "l2"), 1);
    sl_state_inflight_add(sl_state_target("c", "l3"), 2);
    plan(c, "busy", NULL, NULL, NULL, &p);
    assert_order(&p, "b/l2 c/l3 a/l1");
    assert_int_equal(p.order[2].in_flight, 3);
    sl_state_inflight_add(sl_state_target("b", "l2"), 2);
    plan(c, "busy", NULL, NULL, NULL, &p);
    assert_order(&p, "c/l3 a/l1 b/l2");
    sl_state_inflight_add(sl_state_target("a", "l1"), -3);
    sl_state_inflight_add(sl_state_target("b", "l2"), -3);
    sl_state_inflight_add(sl_state_target("c", "l3"), -2);
}


static void
test_headroom_and_credentials(void **state)
{
    router_ctx_t *c = *state;
    const sl_provider_conf_t *keys = sl_conf_provider(c->conf, "keys", 4);
    sl_ratelimit_t rl = { 1, -1, T0 + 5000, 0 };
    sl_route_plan_t p;
    seq_rand_t r = { 0 };
    uint64_t wait;
    int picked[3] = { 0, 0, 0 };

    plan(c, "room", NULL, NULL, NULL, &p);
    assert_order(&p, "hr/low keys/m hr/ok");
    /* nearly exhausted: behind the others, which keep their order */
    sl_state_headroom_update(sl_state_target("hr", "low"), &rl, T0);
    plan(c, "room", NULL, NULL, NULL, &p);
    assert_order(&p, "keys/m hr/ok hr/low");
    assert_true(p.order[2].headroom_low);

    /* credentials: spread over all, never one cooling down */
    for (int i = 0; i < 30; i++) {
        int k = sl_router_credential(keys, T0, seq, &r, &wait);

        assert_in_range(k, 0, 2);
        assert_int_equal(wait, 0);
        picked[k]++;
    }
    assert_int_equal(picked[0], 10);
    assert_int_equal(picked[1], 10);
    assert_int_equal(picked[2], 10);
    sl_state_cred_cool(sl_state_cred("keys", "env:SL_RT_K2"), T0 + 3000);
    for (int i = 0; i < 30; i++) {
        assert_int_not_equal(sl_router_credential(keys, T0, seq, &r, &wait), 1);
    }
    /* it is back once its Retry-After passed */
    r.next = 1;
    assert_int_equal(sl_router_credential(keys, T0 + 3000, seq, &r, &wait), 1);

    /* all cooling: the one free first, with the wait; the target goes behind */
    sl_state_cred_cool(sl_state_cred("keys", "env:SL_RT_K1"), T0 + 9000);
    sl_state_cred_cool(sl_state_cred("keys", "env:SL_RT_K3"), T0 + 4000);
    assert_int_equal(sl_router_credential(keys, T0, NULL, NULL, &wait), 1);
    assert_int_equal(wait, 3000);
    plan(c, "room", NULL, NULL, NULL, &p);
    assert_order(&p, "hr/ok hr/low keys/m");
    assert_true(p.order[2].headroom_low);

    /* one credential, or none */
    assert_int_equal(
        sl_router_credential(sl_conf_provider(c->conf, "one", 3), T0, NULL, NULL, &wait), 0);
    assert_int_equal(sl_router_credential(sl_conf_provider(c->conf, "a", 1), T0, NULL, NULL, &wait),
                     -1);
}


static void
test_direct(void **state)
{
    router_ctx_t *c = *state;
    sl_target_t direct = { sl_conf_provider(c->conf, "a", 1), "anything", 1 };
    sl_route_plan_t p;
    sl_route_req_t req;
    sl_features_t f;

    sl_features_init(&f);
    memset(&req, 0, sizeof(req));
    req.direct = &direct;
    req.routing = &c->conf->routing;
    req.features = &f;
    req.now = T0;
    assert_int_equal(sl_router_plan(&req, c->pool, &p), 0);
    assert_order(&p, "a/anything");
    assert_ptr_equal(p.routing, &c->conf->routing);
    assert_null(p.rule);
    assert_non_null(p.order[0].state);

    req.routing = NULL;
    assert_int_equal(sl_router_plan(&req, c->pool, &p), -EINVAL);
    req.direct = NULL;
    assert_int_equal(sl_router_plan(&req, c->pool, &p), -EINVAL);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_fallback_and_breakers),
        cmocka_unit_test(test_weighted),
        cmocka_unit_test(test_cheapest),
        cmocka_unit_test(test_fastest),
        cmocka_unit_test(test_least_busy),
        cmocka_unit_test(test_headroom_and_credentials),
        cmocka_unit_test(test_direct),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
