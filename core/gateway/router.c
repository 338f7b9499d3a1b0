/*
 * Planning a request's attempts (see core/gateway/router.h for the rules). Target
 * lists are short (a handful), so every ordering is a stable insertion
 * sort on a key computed once per target.
 */
#include "core/gateway/router.h"

#include <errno.h>
#include <string.h>

#include "core/http/http.h"

typedef bool (*router_before_fn)(const sl_route_target_t *a, const sl_route_target_t *b);

static void router_sort(sl_route_target_t *t, size_t n, router_before_fn before);
static bool router_cheaper(const sl_route_target_t *a, const sl_route_target_t *b);
static bool router_faster(const sl_route_target_t *a, const sl_route_target_t *b);
static bool router_idler(const sl_route_target_t *a, const sl_route_target_t *b);
static bool router_not_slow(const sl_route_target_t *a, const sl_route_target_t *b);
static bool router_roomier(const sl_route_target_t *a, const sl_route_target_t *b);
static void router_weighted(sl_route_target_t *t, size_t n, sl_rand_fn rand, void *rand_arg);
static bool router_listed(const char *name, const char *const *list, size_t n);
static bool router_creds_cooling(const sl_provider_conf_t *p, uint64_t now);


int
sl_router_plan(const sl_route_req_t *req, sl_pool_t *pool, sl_route_plan_t *out)
{
    const sl_target_t *targets;
    const sl_routing_conf_t *rc;
    sl_features_t *f = req->features;
    sl_rand_fn rand = req->rand != NULL ? req->rand : sl_retry_rand;
    sl_route_target_t rt;
    uint64_t tokens, due;
    size_t n;
    bool stream = f != NULL && f->stream;

    memset(out, 0, sizeof(*out));
    if (req->model != NULL) {
        out->rule = f != NULL ? sl_router_match(req->model, f) : NULL;
        targets = out->rule != NULL ? out->rule->targets : req->model->targets;
        n = out->rule != NULL ? out->rule->ntargets : req->model->ntargets;
        rc = out->rule != NULL ? &out->rule->routing : &req->model->routing;
    } else if (req->direct != NULL && req->routing != NULL) {
        targets = req->direct;
        n = 1;
        rc = req->routing;
    } else {
        return -EINVAL;
    }
    out->routing = rc;
    out->order = sl_pcalloc(pool, (n > 0 ? n : 1) * sizeof(sl_route_target_t));
    out->skipped = sl_pcalloc(pool, (n > 0 ? n : 1) * sizeof(sl_route_target_t));
    tokens = f != NULL ? f->prompt_tokens + f->max_tokens : 0;

    for (size_t i = 0; i < n; i++) {
        const sl_target_t *t = &targets[i];

        memset(&rt, 0, sizeof(rt));
        rt.target = t;
        rt.state = sl_state_target(t->provider->name, t->model);
        rt.breaker = sl_state_breaker_peek(rt.state, req->now, rc);
        if (rt.breaker == SL_BREAKER_SKIP) {
            out->skipped[out->nskipped++] = rt;
            due = sl_state_breaker_until(rt.state);
            due = due > req->now ? due - req->now : 0;
            if (out->nskipped == 1 || due < out->retry_after) {
                out->retry_after = due;
            }
            continue;
        }
        /* only what the strategy orders by: the in-flight sum reads every worker's column */
        if (rc->strategy == SL_STRATEGY_FASTEST
            || (rc->strategy == SL_STRATEGY_CHEAPEST && rc->max_latency != 0)) {
            rt.latency_us = sl_state_latency(rt.state, stream);
        }
        if (rc->strategy == SL_STRATEGY_LEAST_BUSY) {
            rt.in_flight = sl_state_inflight(rt.state);
        }
        rt.headroom_low = sl_state_headroom_low(rt.state, req->now, tokens)
                          || router_creds_cooling(t->provider, req->now);
        if (rc->strategy == SL_STRATEGY_CHEAPEST) {
            rt.priced =
                sl_pricing_find(req->pricing, t->provider->name, t->provider->kind, t->model)
                != NULL;
            rt.cost_nusd = rt.priced ? sl_pricing_estimate(
                               req->pricing, t->provider->name, t->provider->kind, t->model,
                               f != NULL ? f->prompt_bytes : 0, f != NULL ? f->max_tokens : 0)
                                     : 0;
            rt.slow = rc->max_latency != 0 && rt.latency_us > rc->max_latency * 1000;
        }
        out->order[out->norder++] = rt;
    }
    if (out->norder > 0) {
        out->retry_after = 0;
    }

    switch (rc->strategy) {
    case SL_STRATEGY_WEIGHTED:
        router_weighted(out->order, out->norder, rand, req->rand_arg);
        break;
    case SL_STRATEGY_CHEAPEST:
        router_sort(out->order, out->norder, router_cheaper);
        router_sort(out->order, out->norder, router_not_slow);
        break;
    case SL_STRATEGY_FASTEST:
        router_sort(out->order, out->norder, router_faster);
        break;
    case SL_STRATEGY_LEAST_BUSY:
        router_sort(out->order, out->norder, router_idler);
        break;
    case SL_STRATEGY_FALLBACK:
    default:
        break;
    }
    router_sort(out->order, out->norder, router_roomier);
    return 0;
}


/* Stable insertion sort: a moves ahead of b only when before(a, b). */
static void
router_sort(sl_route_target_t *t, size_t n, router_before_fn before)
{
    for (size_t i = 1; i < n; i++) {
        sl_route_target_t x = t[i];
        size_t j = i;

        while (j > 0 && before(&x, &t[j - 1])) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = x;
    }
}


static bool
router_cheaper(const sl_route_target_t *a, const sl_route_target_t *b)
{
    if (a->priced != b->priced) {
        return a->priced;
    }
    return a->priced && a->cost_nusd < b->cost_nusd;
}


/* Unknown (0) first: a target nobody measured yet gets measured. */
static bool
router_faster(const sl_route_target_t *a, const sl_route_target_t *b)
{
    if ((a->latency_us == 0) != (b->latency_us == 0)) {
        return a->latency_us == 0;
    }
    return a->latency_us < b->latency_us;
}


static bool
router_idler(const sl_route_target_t *a, const sl_route_target_t *b)
{
    return a->in_flight < b->in_flight;
}


static bool
router_not_slow(const sl_route_target_t *a, const sl_route_target_t *b)
{
    return !a->slow && b->slow;
}


static bool
router_roomier(const sl_route_target_t *a, const sl_route_target_t *b)
{
    return !a->headroom_low && b->headroom_low;
}


/* Moves one target, drawn in proportion to weight, to the front; the rest keep their order. */
static void
router_weighted(sl_route_target_t *t, size_t n, sl_rand_fn rand, void *rand_arg)
{
    uint64_t total = 0, r;
    sl_route_target_t x;
    size_t i;

    if (n < 2) {
        return;
    }
    for (i = 0; i < n; i++) {
        total += t[i].target->weight > 0 ? t[i].target->weight : 1;
    }
    r = rand(rand_arg) % total;
    for (i = 0; i < n; i++) {
        uint64_t w = t[i].target->weight > 0 ? t[i].target->weight : 1;

        if (r < w) {
            break;
        }
        r -= w;
    }
    x = t[i];
    memmove(&t[1], &t[0], i * sizeof(sl_route_target_t));
    t[0] = x;
}


static bool
router_listed(const char *name, const char *const *list, size_t n)
{
    if (name == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, list[i]) == 0) {
            return true;
        }
    }
    return false;
}


bool
sl_router_rule_matches(const sl_rule_conf_t *r, sl_features_t *f)
{
    const sl_http_header_t *h;

    if ((r->when & SL_WHEN_MIN_PROMPT_TOKENS) != 0 && f->prompt_tokens < r->min_prompt_tokens) {
        return false;
    }
    if ((r->when & SL_WHEN_MAX_PROMPT_TOKENS) != 0 && f->prompt_tokens > r->max_prompt_tokens) {
        return false;
    }
    if ((r->when & SL_WHEN_HAS_TOOLS) != 0 && f->has_tools != r->has_tools) {
        return false;
    }
    if ((r->when & SL_WHEN_HAS_IMAGES) != 0 && f->has_images != r->has_images) {
        return false;
    }
    if ((r->when & SL_WHEN_KEY) != 0 && !router_listed(f->key_name, r->keys, r->nkeys)) {
        return false;
    }
    if ((r->when & SL_WHEN_TEAM) != 0 && !router_listed(f->team, r->teams, r->nteams)) {
        return false;
    }
    if ((r->when & SL_WHEN_HEADER) != 0) {
        for (size_t i = 0; i < r->nheaders; i++) {
            h = f->headers != NULL
                    ? sl_http_find_header(f->headers, f->nheaders, r->headers[i].name)
                    : NULL;
            if (h == NULL || !sl_str_eq(h->value, r->headers[i].value)) {
                return false;
            }
        }
    }
    /* last: the only condition that may cost a scan of the prompt */
    if ((r->when & SL_WHEN_COMPLEXITY) != 0 && sl_features_class(f) != r->complexity) {
        return false;
    }
    return true;
}


const sl_rule_conf_t *
sl_router_match(const sl_model_conf_t *m, sl_features_t *f)
{
    for (size_t i = 0; i < m->nrules; i++) {
        if (sl_router_rule_matches(&m->rules[i], f)) {
            return &m->rules[i];
        }
    }
    return NULL;
}


/* True when p has credentials and every one is cooling down. */
static bool
router_creds_cooling(const sl_provider_conf_t *p, uint64_t now)
{
    for (size_t i = 0; i < p->napi_keys; i++) {
        if (sl_state_cred_until(sl_state_cred(p->name, p->api_keys[i].ref)) <= now) {
            return false;
        }
    }
    return p->napi_keys > 0;
}


int
sl_router_credential(const sl_provider_conf_t *p, uint64_t now, sl_rand_fn rand, void *rand_arg,
                     uint64_t *wait)
{
    size_t n = p->napi_keys, start, best = 0;
    uint64_t until, soonest = UINT64_MAX;

    *wait = 0;
    if (n == 0) {
        return -1;
    }
    if (rand == NULL) {
        rand = sl_retry_rand;
    }
    start = n > 1 ? (size_t) (rand(rand_arg) % n) : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;

        until = sl_state_cred_until(sl_state_cred(p->name, p->api_keys[i].ref));
        if (until <= now) {
            return (int) i;
        }
        if (until < soonest) {
            soonest = until;
            best = i;
        }
    }
    *wait = soonest - now;
    return (int) best;
}
