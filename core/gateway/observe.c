/*
 * What a proxied request tells the outside once it ends: its labelled
 * metrics (core/admin/metrics.h), its trace (one SERVER span for the
 * request, one CLIENT span per upstream attempt, GenAI semantic-convention
 * attributes plus sluice's own, exported by core/admin/telemetry.h) and the
 * fields of its JSON access log line. The driver calls in at the start
 * (after authentication), at each attempt, when the ledger row is written
 * and at the end; everything lives in the request pool.
 *
 * Trace context: a client's valid `traceparent` makes the request span its
 * child (a parent-based sampler follows its sampled flag); each attempt sends
 * its own span's id upstream in `traceparent`, replacing the client's. With
 * telemetry.otlp off, no span is recorded and a client's traceparent passes
 * upstream untouched, but its trace id still reaches the ledger row and the
 * access log. Nothing secret goes into a span: no key, no header, no prompt
 * or answer text, no provider error message (only its code).
 */
#include "core/gateway/driver_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/admin/metrics.h"
#include "core/admin/otlp.h"
#include "core/admin/telemetry.h"
#include "core/base/clock.h"
#include "core/base/json.h"
#include "core/gateway/pricing.h"
#include "core/gateway/trace.h"

#define OBS_ATTR_MAX 1024 /* bytes kept of a string attribute */
#define OBS_NAME_MAX 200  /* bytes kept of the model in a span's name */

/* The attribute keys of sluice's spans (OpenTelemetry's GenAI and HTTP conventions, and sluice's
 * own). */
#define OBS_KEYS(X)                                                      \
    X(METHOD, "http.request.method")                                     \
    X(PATH, "url.path")                                                  \
    X(STATUS, "http.response.status_code")                               \
    X(OPERATION, "gen_ai.operation.name")                                \
    X(GENAI_PROVIDER, "gen_ai.provider.name")                            \
    X(REQUEST_MODEL, "gen_ai.request.model")                             \
    X(RESPONSE_MODEL, "gen_ai.response.model")                           \
    X(MAX_TOKENS, "gen_ai.request.max_tokens")                           \
    X(STREAM, "gen_ai.request.stream")                                   \
    X(INPUT_TOKENS, "gen_ai.usage.input_tokens")                         \
    X(OUTPUT_TOKENS, "gen_ai.usage.output_tokens")                       \
    X(CACHE_READ_TOKENS, "gen_ai.usage.cache_read.input_tokens")         \
    X(CACHE_CREATION_TOKENS, "gen_ai.usage.cache_creation.input_tokens") \
    X(REASONING_TOKENS, "gen_ai.usage.reasoning.output_tokens")          \
    X(ESTIMATED, "sluice.usage.estimated")                               \
    X(PROVIDER, "sluice.provider")                                       \
    X(TARGET_MODEL, "sluice.target.model")                               \
    X(SERVER_ADDRESS, "server.address")                                  \
    X(SERVER_PORT, "server.port")                                        \
    X(ATTEMPT, "sluice.attempt")                                         \
    X(PROBE, "sluice.breaker.probe")                                     \
    X(OUTCOME, "sluice.attempt.outcome")                                 \
    X(ERROR_TYPE, "error.type")                                          \
    X(RETRY_WAIT, "sluice.retry.wait_ms")                                \
    X(COST, "sluice.cost_usd")                                           \
    X(CACHE, "sluice.cache")                                             \
    X(GUARD_POLICY, "sluice.guard.policy")                               \
    X(GUARD_RULE, "sluice.guard.rule")                                   \
    X(GUARD_ACTION, "sluice.guard.action")                               \
    X(GUARD_COUNT, "sluice.guard.count")                                 \
    X(FRONTEND, "sluice.frontend")                                       \
    X(REQUEST_ID, "sluice.request_id")                                   \
    X(KEY_NAME, "sluice.key.name")                                       \
    X(TEAM, "sluice.team")                                               \
    X(ATTEMPTS, "sluice.attempts")                                       \
    X(TTFT, "sluice.time_to_first_token_ms")                             \
    X(STRATEGY, "sluice.route.strategy")                                 \
    X(RULE, "sluice.route.rule")                                         \
    X(ABORTED, "sluice.client_aborted")

enum {
#define OBS_KEY_ID(id, name) OBS_K_##id,
    OBS_KEYS(OBS_KEY_ID)
#undef OBS_KEY_ID
};

static const sl_otlp_key_t obs_keys[] = {
#define OBS_KEY(id, name) SL_OTLP_KEY(name),
    OBS_KEYS(OBS_KEY)
#undef OBS_KEY
};

#define obs_key(id) (&obs_keys[OBS_K_##id])

struct sl_drv_obs {
    sl_trace_ctx_t parent; /* the client's traceparent */
    bool has_parent;
    bool recording;                /* spans are recorded and exported */
    bool propagate;                /* tracing is on: attempts send our traceparent */
    uint8_t trace_id[16];          /* the request's trace */
    uint8_t span_id[8];            /* the request span */
    char trace_hex[33];            /* "" when the request has no trace id */
    uint64_t start_unix_ns;        /* arrival, wall clock */
    uint64_t unix_off;             /* wall clock minus monotonic, read once at the start */
    sl_otlp_span_t span;           /* the request span */
    struct obs_attempt **attempts; /* every attempt, in order */
    size_t nattempts;
    size_t attempts_cap;
    bool recorded;    /* sl__drv_obs_record ran */
    sl_usage_t usage; /* what the record phase saw */
    uint64_t cost_nusd;
    const char *cache; /* the ledger row's cache status */
    bool cache_hit;
    uint64_t saved_nusd;
};

/* What an attempt's span carries besides the otlp span. */
typedef struct obs_attempt {
    const sl_target_t *target;
    bool started; /* a real attempt (the adapter built a request) */
    bool failed;  /* sl__drv_obs_attempt_fail ran */
    bool ended;
    const char *outcome;
    uint64_t wait_ms;
    uint64_t start_ns;   /* monotonic (sl_clock_ns) */
    sl_otlp_span_t span; /* last: its attribute slots are never zeroed */
} obs_attempt_t;

static uint64_t obs_unix_ns(const sl_drv_obs_t *o, uint64_t hr_ns);
static const char *obs_operation(const sl_drv_req_t *rq);
static const char *obs_genai_provider(const sl_provider_conf_t *p);
static void obs_name(sl_otlp_span_t *s, const char *op, const char *model);
static void obs_str(sl_otlp_span_t *s, const sl_otlp_key_t *k, const char *v);
static void obs_strn(sl_otlp_span_t *s, const sl_otlp_key_t *k, sl_str_t v);
static void obs_usage(sl_otlp_span_t *s, const sl_usage_t *u);
static void obs_trace(sl_drv_req_t *rq, int status);
static void obs_metrics(sl_drv_req_t *rq, int status);
static void obs_access(sl_drv_req_t *rq);
static void obs_json_field(sl_pool_t *pool, sl_buf_t *b, const char *key, const char *v);
static bool obs_model_known(const sl_drv_req_t *rq);


void
sl__drv_obs_begin(sl_drv_req_t *rq)
{
    sl_http_req_t *r = rq->r;
    const sl_otlp_conf_t *oc = &r->conf->otlp;
    sl_drv_obs_t *o = sl_pcalloc(r->pool, sizeof(*o));
    const sl_str_t *tp = sl_http_req_header(r, "traceparent");
    bool sampled;

    rq->obs = o;
    o->unix_off = sl_clock_real_ns() - sl_clock_ns();
    o->start_unix_ns = obs_unix_ns(o, r->start_ns);
    if (tp != NULL && sl_trace_parse(*tp, &o->parent) == 0) {
        o->has_parent = true;
        memcpy(o->trace_id, o->parent.trace_id, 16);
    }
    o->propagate = oc->enabled;
    if (!oc->enabled) {
        if (o->has_parent) {
            sl_trace_hex(o->trace_id, 16, o->trace_hex);
        }
        return;
    }
    if (!o->has_parent) {
        sl_trace_new_id(o->trace_id, 16);
    }
    sl_trace_new_id(o->span_id, 8);
    sl_trace_hex(o->trace_id, 16, o->trace_hex);
    if (o->has_parent && oc->parent_based) {
        sampled = (o->parent.flags & SL_TRACE_SAMPLED) != 0;
    } else {
        sampled = sl_trace_sample(o->trace_id, oc->sampling);
    }
    o->recording = sampled;
    sl_otlp_span_init(&o->span, oc->protobuf);
    memcpy(o->span.trace_id, o->trace_id, 16);
    memcpy(o->span.span_id, o->span_id, 8);
    o->span.trace_flags = sampled ? SL_TRACE_SAMPLED : 0;
    if (o->has_parent) {
        memcpy(o->span.parent_id, o->parent.span_id, 8);
        o->span.has_parent = true;
        o->span.parent_remote = true;
    }
    o->span.kind = SL_OTLP_KIND_SERVER;
    o->span.start_ns = o->start_unix_ns;
}


const char *
sl__drv_obs_trace_id(const sl_drv_req_t *rq)
{
    return rq->obs != NULL ? rq->obs->trace_hex : "";
}


void *
sl__drv_obs_attempt(sl_drv_req_t *rq, const sl_target_t *t, sl_http_header_t *h, size_t *n)
{
    sl_drv_obs_t *o = rq->obs;
    sl_pool_t *pool = rq->r->pool;
    obs_attempt_t *a;
    char *tp;
    size_t k = 0;

    if (o == NULL) {
        return NULL;
    }
    a = sl_palloc(pool, sizeof(*a));
    memset(a, 0, offsetof(obs_attempt_t, span));
    sl_otlp_span_init(&a->span, rq->r->conf->otlp.protobuf);
    a->target = t;
    if (o->nattempts == o->attempts_cap) {
        size_t cap = o->attempts_cap > 0 ? o->attempts_cap * 2 : 4;
        obs_attempt_t **v = sl_palloc(pool, cap * sizeof(*v));

        if (o->nattempts > 0) {
            memcpy(v, o->attempts, o->nattempts * sizeof(*v));
        }
        o->attempts = v;
        o->attempts_cap = cap;
    }
    o->attempts[o->nattempts++] = a;
    if (!o->propagate) {
        return a;
    }
    memcpy(a->span.trace_id, o->trace_id, 16);
    sl_trace_new_id(a->span.span_id, 8);
    memcpy(a->span.parent_id, o->span_id, 8);
    a->span.has_parent = true;
    a->span.kind = SL_OTLP_KIND_CLIENT;
    a->span.trace_flags = o->recording ? SL_TRACE_SAMPLED : 0;

    /* the client's traceparent (and nothing else) is replaced by this attempt's */
    for (size_t i = 0; i < *n; i++) {
        if (h[i].name.len != sizeof("traceparent") - 1
            || !sl_str_caseeq(h[i].name, "traceparent")) {
            h[k++] = h[i];
        }
    }
    /* sl_trace_format's value, the trace id's hex taken from the request's */
    tp = sl_palloc(pool, SL_TRACE_HEADER_LEN + 1);
    memcpy(tp, "00-", 3);
    memcpy(tp + 3, o->trace_hex, 32);
    tp[35] = '-';
    sl_trace_hex(a->span.span_id, 8, tp + 36);
    memcpy(tp + 52, o->recording ? "-01" : "-00", 4);
    h[k++] = (sl_http_header_t){ sl_str_lit("traceparent"), { tp, SL_TRACE_HEADER_LEN } };
    *n = k;
    return a;
}


void
sl__drv_obs_attempt_start(sl_drv_req_t *rq, void *span, unsigned number, bool probe)
{
    obs_attempt_t *a = span;
    const sl_provider_conf_t *p;
    sl_otlp_span_t *s;
    const char *op = obs_operation(rq);

    if (a == NULL) {
        return;
    }
    a->started = true;
    a->start_ns = sl_clock_ns();
    if (!rq->obs->recording) {
        return;
    }
    p = a->target->provider;
    s = &a->span;
    s->start_ns = obs_unix_ns(rq->obs, a->start_ns);
    obs_name(s, op, a->target->model);
    obs_str(s, obs_key(OPERATION), op);
    obs_str(s, obs_key(GENAI_PROVIDER), obs_genai_provider(p));
    obs_str(s, obs_key(REQUEST_MODEL), a->target->model);
    obs_str(s, obs_key(PROVIDER), p->name);
    if (p->host != NULL) {
        obs_str(s, obs_key(SERVER_ADDRESS), p->host);
        sl_otlp_span_int(s, obs_key(SERVER_PORT), (int64_t) p->port);
    }
    sl_otlp_span_int(s, obs_key(ATTEMPT), (int64_t) number);
    if (probe) {
        sl_otlp_span_bool(s, obs_key(PROBE), true);
    }
}


void
sl__drv_obs_attempt_fail(sl_drv_req_t *rq, void *span, int status, const sl_error_t *e)
{
    obs_attempt_t *a = span;

    if (a == NULL || !a->started) {
        return;
    }
    a->failed = true;
    a->span.status = SL_OTLP_STATUS_ERROR;
    a->span.status_message = e->code != NULL ? e->code : e->type;
    if (status > 0 && rq->obs->recording) {
        sl_otlp_span_int(&a->span, obs_key(STATUS), status);
    }
}


void
sl__drv_obs_attempt_next(void *span, const char *outcome, uint64_t wait_ms)
{
    obs_attempt_t *a = span;

    if (a != NULL) {
        a->outcome = outcome;
        a->wait_ms = wait_ms;
    }
}


void
sl__drv_obs_attempt_end(sl_drv_req_t *rq, void *span)
{
    obs_attempt_t *a = span;
    uint64_t now;

    if (a == NULL || !a->started || a->ended) {
        return;
    }
    a->ended = true;
    now = sl_clock_ns();
    a->span.end_ns = obs_unix_ns(rq->obs, now);
    sl_metrics_upstream(a->target->provider->name, a->target->model, !a->failed && rq->committed,
                        (now - a->start_ns) / 1000);
}


void
sl__drv_obs_event(sl_drv_req_t *rq, const char *name, const sl_target_t *t)
{
    sl_drv_obs_t *o = rq->obs;
    sl_otlp_event_t *e;

    if (o == NULL || !o->recording) {
        return;
    }
    e = sl_otlp_event(rq->r->pool, &o->span, name, obs_unix_ns(o, sl_clock_ns()));
    sl_otlp_event_str(e, obs_key(PROVIDER), t->provider->name);
    sl_otlp_event_str(e, obs_key(REQUEST_MODEL), t->model);
}


void
sl__drv_obs_record(sl_drv_req_t *rq, const sl_ledger_row_t *row, const sl_usage_t *usage)
{
    sl_drv_obs_t *o = rq->obs;
    const sl_conf_t *conf = rq->r->conf;
    const sl_target_t *t = rq->served != NULL ? rq->served : rq->last_target;

    if (o == NULL) {
        return;
    }
    o->recorded = true;
    o->usage = *usage;
    o->cost_nusd = row->cost_nusd;
    if ((rq->d->db == NULL || !conf->ledger_enabled) && t != NULL && conf->pricing != NULL
        && (usage->prompt_tokens != 0 || usage->completion_tokens != 0)) {
        /* no ledger to price it: priced here, for the metrics, span and log line */
        if (sl_pricing_cost(conf->pricing, t->provider->name, t->provider->kind, t->model, usage,
                            &o->cost_nusd)
            < 0) {
            o->cost_nusd = 0;
        }
    }
    o->cache = row->cache;
    o->cache_hit = (row->flags & SL_LEDGER_CACHE_HIT) != 0;
    o->saved_nusd = row->saved_nusd;
}


void
sl__drv_obs_end(sl_drv_req_t *rq, int status)
{
    if (rq->obs == NULL) {
        return;
    }
    obs_metrics(rq, status);
    obs_trace(rq, status);
    obs_access(rq);
}


/* --------------------------------------------------------------- metrics */

/* The model label: only names configuration knows, or that reached a target. */
static bool
obs_model_known(const sl_drv_req_t *rq)
{
    const char *m = rq->public_model;

    return m != NULL
           && (rq->last_target != NULL || sl_conf_model(rq->r->conf, m, strlen(m)) != NULL);
}


static void
obs_metrics(sl_drv_req_t *rq, int status)
{
    sl_drv_obs_t *o = rq->obs;
    const sl_target_t *t = rq->served != NULL ? rq->served : rq->last_target;
    sl_metrics_req_t m;

    memset(&m, 0, sizeof(m));
    m.frontend = rq->fe->name;
    m.model = obs_model_known(rq) ? rq->public_model : "";
    m.provider = t != NULL ? t->provider->name : "";
    m.key = rq->acct.key_name;
    m.team = rq->acct.team;
    m.status = status;
    m.duration_us = (sl_clock_ns() - rq->r->start_ns) / 1000;
    m.ttft_us = rq->ttft_us;
    if (o->recorded) {
        m.prompt_tokens = o->usage.prompt_tokens;
        m.completion_tokens = o->usage.completion_tokens;
        m.cached_tokens = o->usage.cached_tokens;
        m.cache_write_tokens = o->usage.cache_write_tokens;
        m.reasoning_tokens = o->usage.reasoning_tokens;
        m.cost_nusd = o->cost_nusd;
        m.cache_hit = o->cache_hit;
        m.saved_nusd = o->saved_nusd;
    }
    sl_metrics_request(&m);
}


/* --------------------------------------------------------------- traces */

static void
obs_trace(sl_drv_req_t *rq, int status)
{
    sl_drv_obs_t *o = rq->obs;
    sl_http_req_t *r = rq->r;
    sl_pool_t *pool = r->pool;
    sl_otlp_span_t *s = &o->span;
    const sl_target_t *t = rq->served != NULL ? rq->served : rq->last_target;
    const char *op = obs_operation(rq);
    uint64_t now = obs_unix_ns(o, sl_clock_ns());
    char usd[32]; /* lives until the spans are encoded, below */
    size_t nspans = 1;

    for (size_t i = 0; i < o->nattempts; i++) {
        nspans += o->attempts[i]->started ? 1 : 0;
    }
    if (!o->recording || sl_telemetry_full(nspans)) {
        /* not sampled, or nowhere to put them (a collector down fills the queue): not built */
        if (o->recording) {
            sl_telemetry_drop(nspans);
        }
        for (size_t i = 0; i < o->nattempts; i++) {
            sl__drv_obs_attempt_end(rq, o->attempts[i]);
        }
        return;
    }
    obs_name(s, op, rq->public_model);
    s->end_ns = now;
    obs_strn(s, obs_key(METHOD), r->method);
    obs_strn(s, obs_key(PATH), r->path);
    sl_otlp_span_int(s, obs_key(STATUS), status);
    obs_str(s, obs_key(OPERATION), op);
    obs_str(s, obs_key(REQUEST_MODEL), rq->public_model);
    if (rq->call.max_tokens > 0) {
        sl_otlp_span_int(s, obs_key(MAX_TOKENS), (int64_t) rq->call.max_tokens);
    }
    sl_otlp_span_bool(s, obs_key(STREAM), rq->call.stream);
    if (t != NULL) {
        obs_str(s, obs_key(GENAI_PROVIDER), obs_genai_provider(t->provider));
        obs_str(s, obs_key(PROVIDER), t->provider->name);
        obs_str(s, obs_key(TARGET_MODEL), t->model);
    }
    if (rq->served != NULL) {
        obs_str(s, obs_key(RESPONSE_MODEL),
                rq->served_model != NULL ? rq->served_model : rq->served->model);
    }
    if (o->recorded && (o->usage.prompt_tokens != 0 || o->usage.completion_tokens != 0)) {
        obs_usage(s, &o->usage);
    }
    if (o->recorded) {
        obs_str(s, obs_key(COST), sl_pricing_format_usd(o->cost_nusd, usd, sizeof(usd)));
        obs_str(s, obs_key(CACHE), o->cache != NULL && o->cache[0] != '\0' ? o->cache : NULL);
    }
    if (rq->guard != NULL) {
        /* the guardrails: the policy, and one event per decision (never the matched text) */
        size_t nd = 0;
        const sl_guard_decision_t *d = sl_guard_decisions(rq->guard, &nd);

        obs_str(s, obs_key(GUARD_POLICY), sl_guard_policy_name(rq->guard));
        for (size_t i = 0; i < nd; i++) {
            sl_otlp_event_t *e = sl_otlp_event(pool, s, "guard_decision", now);

            sl_otlp_event_str(e, obs_key(GUARD_POLICY), d[i].policy);
            sl_otlp_event_str(e, obs_key(GUARD_RULE),
                              d[i].output ? sl_psprintf(pool, "output:%s", d[i].rule) : d[i].rule);
            sl_otlp_event_str(e, obs_key(GUARD_ACTION), sl_guard_action_name(d[i].action));
            sl_otlp_event_int(e, obs_key(GUARD_COUNT), (int64_t) d[i].count);
        }
    }
    obs_str(s, obs_key(FRONTEND), rq->fe->name);
    obs_str(s, obs_key(REQUEST_ID), r->request_id);
    obs_str(s, obs_key(KEY_NAME), rq->acct.key_name);
    if (rq->acct.team != NULL && rq->acct.team[0] != '\0') {
        obs_str(s, obs_key(TEAM), rq->acct.team);
    }
    sl_otlp_span_int(s, obs_key(ATTEMPTS), (int64_t) rq->attempts);
    if (rq->ttft_us != 0) {
        sl_otlp_span_int(s, obs_key(TTFT), (int64_t) (rq->ttft_us / 1000));
    }
    if (rq->routing != NULL) {
        obs_str(s, obs_key(STRATEGY), sl_conf_strategy_name(rq->routing->strategy));
    }
    if (rq->plan.rule != NULL) {
        sl_otlp_span_int(s, obs_key(RULE), (int64_t) rq->plan.rule->index);
    }
    for (size_t i = 0; i < rq->plan.nskipped; i++) {
        sl_otlp_event_t *e = sl_otlp_event(pool, s, "breaker_skip", s->start_ns);

        sl_otlp_event_str(e, obs_key(PROVIDER), rq->plan.skipped[i].target->provider->name);
        sl_otlp_event_str(e, obs_key(REQUEST_MODEL), rq->plan.skipped[i].target->model);
    }
    if (status >= 500) {
        s->status = SL_OTLP_STATUS_ERROR;
        s->status_message = sl_http_reason(status);
    }
    if (status == 499) {
        sl_otlp_span_bool(s, obs_key(ABORTED), true);
    }
    sl_telemetry_add(s);

    for (size_t i = 0; i < o->nattempts; i++) {
        obs_attempt_t *a = o->attempts[i];
        sl_otlp_span_t *as = &a->span;
        bool served = i + 1 == o->nattempts && rq->served == a->target && rq->committed;
        bool ok = status >= 200 && status <= 299;

        if (!a->started) {
            continue;
        }
        if (!a->ended) {
            /* the answer's attempt: it ends with the request */
            sl__drv_obs_attempt_end(rq, a);
            if (served && ok) {
                sl_otlp_span_int(as, obs_key(STATUS), status);
            }
        }
        if (served && !a->failed) {
            obs_str(as, obs_key(RESPONSE_MODEL),
                    rq->served_model != NULL ? rq->served_model : a->target->model);
            if (o->recorded && (o->usage.prompt_tokens != 0 || o->usage.completion_tokens != 0)) {
                obs_usage(as, &o->usage);
            }
            a->outcome = ok ? "ok" : "interrupted";
            if (!ok) {
                as->status = SL_OTLP_STATUS_ERROR;
                as->status_message = status == 499 ? "client_gone" : "stream_interrupted";
            }
        } else if (a->outcome == NULL) {
            a->outcome = a->failed ? "failed" : "cancelled";
        }
        obs_str(as, obs_key(OUTCOME), a->outcome);
        if (a->failed && as->status_message != NULL) {
            obs_str(as, obs_key(ERROR_TYPE), as->status_message);
        }
        if (a->wait_ms > 0) {
            sl_otlp_span_int(as, obs_key(RETRY_WAIT), (int64_t) a->wait_ms);
        }
        sl_telemetry_add(as);
    }
}


static void
obs_usage(sl_otlp_span_t *s, const sl_usage_t *u)
{
    sl_otlp_span_int(s, obs_key(INPUT_TOKENS), (int64_t) u->prompt_tokens);
    sl_otlp_span_int(s, obs_key(OUTPUT_TOKENS), (int64_t) u->completion_tokens);
    /* the breakdowns only when there is one: most answers have none */
    if (u->cached_tokens != 0) {
        sl_otlp_span_int(s, obs_key(CACHE_READ_TOKENS), (int64_t) u->cached_tokens);
    }
    if (u->cache_write_tokens != 0) {
        sl_otlp_span_int(s, obs_key(CACHE_CREATION_TOKENS), (int64_t) u->cache_write_tokens);
    }
    if (u->reasoning_tokens != 0) {
        sl_otlp_span_int(s, obs_key(REASONING_TOKENS), (int64_t) u->reasoning_tokens);
    }
    if (u->estimated) {
        sl_otlp_span_bool(s, obs_key(ESTIMATED), true);
    }
}


/* --------------------------------------------------------------- access log */

static void
obs_json_field(sl_pool_t *pool, sl_buf_t *b, const char *key, const char *v)
{
    sl_buf_printf(b, ",\"%s\":", key);
    if (v == NULL) {
        sl_buf_puts(b, "null");
        return;
    }
    sl_json_quote(b, sl_otlp_clean(pool, (sl_str_t){ v, strlen(v) }));
}


/* The request's fields of a JSON access log line (core/http/http_server.h). */
static void
obs_access(sl_drv_req_t *rq)
{
    sl_drv_obs_t *o = rq->obs;
    sl_http_req_t *r = rq->r;
    const sl_target_t *t = rq->served != NULL ? rq->served : rq->last_target;
    sl_buf_t b = SL_BUF_INIT;
    char usd[32];

    if (!r->conf->access_log_json || r->conf->access_log == NULL) {
        return;
    }
    obs_json_field(r->pool, &b, "trace_id", o->trace_hex[0] != '\0' ? o->trace_hex : NULL);
    obs_json_field(r->pool, &b, "key", rq->acct.key_name);
    obs_json_field(r->pool, &b, "team",
                   rq->acct.team != NULL && rq->acct.team[0] != '\0' ? rq->acct.team : NULL);
    obs_json_field(r->pool, &b, "frontend", rq->fe->name);
    obs_json_field(r->pool, &b, "model", rq->public_model);
    obs_json_field(r->pool, &b, "served_model",
                   rq->served == NULL         ? NULL
                   : rq->served_model != NULL ? rq->served_model
                                              : rq->served->model);
    obs_json_field(r->pool, &b, "provider", t != NULL ? t->provider->name : NULL);
    sl_buf_printf(&b, ",\"attempts\":%u,\"stream\":%s", rq->attempts,
                  rq->call.stream ? "true" : "false");
    sl_buf_printf(&b,
                  ",\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"cached_tokens\":%llu,"
                  "\"reasoning_tokens\":%llu,\"tokens_estimated\":%s,\"cost_usd\":%s",
                  (unsigned long long) o->usage.prompt_tokens,
                  (unsigned long long) o->usage.completion_tokens,
                  (unsigned long long) o->usage.cached_tokens,
                  (unsigned long long) o->usage.reasoning_tokens,
                  o->usage.estimated ? "true" : "false",
                  sl_pricing_format_usd(o->cost_nusd, usd, sizeof(usd)));
    obs_json_field(r->pool, &b, "cache", o->cache != NULL && o->cache[0] != '\0' ? o->cache : NULL);
    if (rq->ttft_us != 0) {
        sl_buf_printf(&b, ",\"ttft_ms\":%llu.%03llu", (unsigned long long) (rq->ttft_us / 1000),
                      (unsigned long long) (rq->ttft_us % 1000));
    } else {
        sl_buf_puts(&b, ",\"ttft_ms\":null");
    }
    r->log_fields.p = sl_pstrndup(r->pool, b.p, b.len);
    r->log_fields.len = b.len;
    sl_buf_free(&b);
}


/* --------------------------------------------------------------- helpers */

/* A monotonic sl_clock_ns() instant as unix nanoseconds (the clocks' offset read at the start). */
static uint64_t
obs_unix_ns(const sl_drv_obs_t *o, uint64_t hr_ns)
{
    return hr_ns + o->unix_off;
}


/* gen_ai.operation.name: "chat" for chat and messages, "embeddings". */
static const char *
obs_operation(const sl_drv_req_t *rq)
{
    return rq->call.client_api == SL_API_EMBEDDINGS ? "embeddings" : "chat";
}


/* gen_ai.provider.name: the semantic conventions' name for the provider's kind. */
static const char *
obs_genai_provider(const sl_provider_conf_t *p)
{
    static const struct {
        const char *kind;
        const char *name;
    } map[] = {
        { "openai", "openai" },
        { "azure", "azure.ai.openai" },
        { "anthropic", "anthropic" },
        { "gemini", "gcp.gemini" },
        { "deepseek", "deepseek" },
        { "mistral", "mistral_ai" },
        { "groq", "groq" },
        { "xai", "x_ai" },
        { "perplexity", "perplexity" },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].kind, p->kind) == 0) {
            return map[i].name;
        }
    }
    return p->kind; /* together, fireworks, ollama, vllm, echo, ...: the kind itself */
}


/*
 * "{operation} {model}", as the GenAI conventions name spans: the model cut
 * to OBS_NAME_MAX bytes at a character boundary (and cleaned when encoded).
 */
static void
obs_name(sl_otlp_span_t *s, const char *op, const char *model)
{
    size_t ml;

    s->name = op;
    if (model == NULL || model[0] == '\0') {
        return;
    }
    ml = strlen(model);
    if (ml > OBS_NAME_MAX) {
        ml = OBS_NAME_MAX;
        while (ml > 0 && ((unsigned char) model[ml] & 0xc0) == 0x80) {
            ml--; /* a cut in the middle of a character: drop all of it */
        }
    }
    s->name_tail = (sl_str_t){ model, ml };
}


/* A string attribute, at most OBS_ATTR_MAX bytes (cut at a character boundary). */
static void
obs_str(sl_otlp_span_t *s, const sl_otlp_key_t *k, const char *v)
{
    if (v != NULL) {
        obs_strn(s, k, (sl_str_t){ v, strlen(v) });
    }
}


static void
obs_strn(sl_otlp_span_t *s, const sl_otlp_key_t *k, sl_str_t v)
{
    if (v.len > OBS_ATTR_MAX) {
        v.len = OBS_ATTR_MAX;
        while (v.len > 0 && ((unsigned char) v.p[v.len] & 0xc0) == 0x80) {
            v.len--;
        }
    }
    sl_otlp_span_strn(s, k, v);
}
