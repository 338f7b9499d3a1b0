/*
 * The router: turns a model (or a direct provider/model target) and one
 * request's features into the ordered list of targets to try. It reads
 * the shared state (core/gateway/state.h) and the pricing table but changes
 * nothing; the driver makes the attempts and reports their outcomes.
 *
 * Planning:
 *   1. Rules. The first of the model's rules whose every condition holds
 *      (sl_router_rule_matches) replaces the model's targets, and its
 *      strategy, when it sets one, the model's. No match: the model's.
 *   2. Breakers. A target whose breaker is open and not yet due for a
 *      probe is left out of the order and reported in skipped (for the
 *      trace); one due for a probe stays in place: the request probes it.
 *   3. Strategy, over the rest:
 *        fallback    the order written.
 *        weighted    the first target drawn at random in proportion to
 *                    weight, the others after it in the order written.
 *        cheapest    by this request's estimated price (sl_pricing_estimate:
 *                    prompt_bytes and max_tokens), cheapest first, ties in
 *                    the order written; unpriced targets last. With
 *                    max_latency, targets whose latency estimate is above
 *                    it go behind all the others (tried only when those
 *                    fail: never dropped).
 *        fastest     by the shared latency estimate (time to first token
 *                    for streams, total latency otherwise), lowest first;
 *                    targets with no estimate yet come first, in the order
 *                    written, so that new targets get measured.
 *        least_busy  by requests in flight across all workers, fewest first,
 *                    ties in the order written.
 *   4. Headroom. Targets the provider said are nearly exhausted (see
 *      sl_state_headroom_low) or whose every credential is cooling down go
 *      behind the others, keeping their relative order.
 *
 * Worker context; allocates the plan in the pool given; no I/O.
 */
#ifndef SL_CORE_GATEWAY_ROUTER_H
#define SL_CORE_GATEWAY_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf/conf.h"
#include "core/gateway/features.h"
#include "core/base/pool.h"
#include "core/gateway/pricing.h"
#include "core/gateway/retry.h"
#include "core/gateway/state.h"

/* One target of a plan, with what the plan saw of it. */
typedef struct sl_route_target {
    const sl_target_t *target;
    sl_state_target_t *state;     /* NULL: no shared state for it */
    sl_breaker_verdict_e breaker; /* PASS, or PROBE when a probe was due; SKIP in skipped */
    bool headroom_low;            /* nearly exhausted, or every credential cooling down */
    bool slow;                    /* cheapest with max_latency: its estimate is above it */
    bool priced;                  /* cheapest: the pricing table knows it */
    uint64_t cost_nusd;           /* cheapest: estimated cost of this request */
    uint64_t latency_us;          /* fastest, cheapest with max_latency: the estimate used
                                     (TTFT for streams); 0: unknown or not read */
    uint64_t in_flight;           /* least_busy: requests in flight to it, all workers */
} sl_route_target_t;

typedef struct sl_route_plan {
    const sl_routing_conf_t *routing; /* effective: the model's, or the rule's */
    const sl_rule_conf_t *rule;       /* the rule that matched, or NULL */
    sl_route_target_t *order;         /* to try, in this order */
    size_t norder;
    sl_route_target_t *skipped; /* left out: breaker open, no probe due */
    size_t nskipped;
    uint64_t retry_after; /* norder 0: ms until the first skipped target's probe is due */
} sl_route_plan_t;

/* What sl_router_plan needs. */
typedef struct sl_route_req {
    const sl_model_conf_t *model;     /* the alias asked for, or NULL for a direct request */
    const sl_target_t *direct;        /* model NULL: the provider/model asked for */
    const sl_routing_conf_t *routing; /* model NULL: the global one (&conf->routing) */
    const sl_pricing_t *pricing;      /* conf->pricing; NULL prices nothing */
    sl_features_t *features;          /* the request's; its complexity is computed on demand */
    uint64_t now;                     /* unix ms, as sl_state_now() */
    sl_rand_fn rand;                  /* NULL: sl_retry_rand */
    void *rand_arg;
} sl_route_req_t;

/*
 * Plans req into *out (arrays in pool). Returns 0, also when every target
 * is skipped (out->norder 0: answer 503 with Retry-After out->retry_after),
 * or -EINVAL when req names neither a model nor a direct target.
 */
int sl_router_plan(const sl_route_req_t *req, sl_pool_t *pool, sl_route_plan_t *out);

/* The first rule of m that f matches, or NULL. */
const sl_rule_conf_t *sl_router_match(const sl_model_conf_t *m, sl_features_t *f);

/*
 * True when every condition of r holds for f: prompt tokens within
 * min/max (inclusive), each header present (name in any case) with
 * exactly that value, the key's name / team among the listed ones,
 * has_tools and has_images equal, and the complexity class equal (scored
 * only when all the other conditions hold).
 */
bool sl_router_rule_matches(const sl_rule_conf_t *r, sl_features_t *f);

/*
 * Picks the credential for an attempt on provider p: a random one among
 * those not cooling down at now, so the load spreads over them. Returns
 * its index in p->api_keys and *wait 0; when every one is cooling down,
 * the one that is free first and *wait the ms until then; -1 when p has
 * no credential. rand NULL uses sl_retry_rand.
 */
int sl_router_credential(const sl_provider_conf_t *p, uint64_t now, sl_rand_fn rand, void *rand_arg,
                         uint64_t *wait);

#endif
