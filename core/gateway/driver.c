/*
 * The request driver: routes, the phases of a proxied request, and the
 * request's end (the record phase, then the response's last bytes). The
 * attempts themselves (one upstream exchange each) are attempt.c; they
 * report back through sl__drv_attempt_done().
 */
#include "core/gateway/driver_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/admin/alerts.h"
#include "core/admin/metrics.h"
#include "core/admin/tail.h"
#include "core/gateway/pricing.h"
#include "core/base/str.h"

#define DRV_MAX_HEADERS 12 /* response headers the driver adds */

static sl_driver_t *drv_current;

static void drv_healthz(sl_http_req_t *r);
static sl_str_t drv_uint(sl_pool_t *pool, uint64_t v);
static void drv_models(sl_http_req_t *r);
static void drv_model(sl_http_req_t *r);
static void drv_chat(sl_http_req_t *r);
static void drv_embeddings(sl_http_req_t *r);
static void drv_messages(sl_http_req_t *r);
static void drv_responses(sl_http_req_t *r);
static int drv_messages_error(sl_pool_t *pool, int status, const char *type, const char *code,
                              const char *param, const char *message, sl_str_t *out);
static void drv_handle(sl_http_req_t *r, sl_api_e api);
static void drv_decode_work(uv_work_t *w);
static void drv_decode_done(uv_work_t *w, int status);
static void drv_decoded(sl_drv_req_t *rq);
static bool drv_limit(sl_drv_req_t *rq, unsigned limits);
static bool drv_auth(sl_http_req_t *r, const sl_frontend_t *fe, sl_acct_t *a);
static int drv_plan(sl_drv_req_t *rq);
static void drv_guard_run(sl_drv_req_t *rq);
static int drv_guard(sl_drv_req_t *rq);
static void drv_on_abort(sl_http_req_t *r);
static void drv_on_drain(sl_http_req_t *r);
static void drv_unlink(sl_drv_req_t *rq);
static void drv_estimate(sl_drv_req_t *rq, const sl_stream_t *st, sl_usage_t *u);
static void drv_error_end(sl_drv_req_t *rq);
static void drv_abort_end(sl_drv_req_t *rq);
static void drv_recorded(void *arg);

static const sl_http_route_t drv_routes[] = {
    { "GET", "/healthz", drv_healthz, NULL }, /* liveness, no auth */
    { "GET", "/v1/models", drv_models, NULL },
    { "GET", "/v1/models/*", drv_model, NULL },
    { "POST", "/v1/chat/completions", drv_chat, NULL },
    { "POST", "/v1/embeddings", drv_embeddings, NULL },
    /* Anthropic's shape in and out, errors included (also the server's own) */
    { "POST", "/v1/messages", drv_messages, drv_messages_error },
    { "POST", "/v1/messages/count_tokens", sl__drv_count_tokens, drv_messages_error },
    { "GET", "/v1/messages/*", sl__drv_messages_other, drv_messages_error },
    { "POST", "/v1/messages/*", sl__drv_messages_other, drv_messages_error },
    { "PUT", "/v1/messages/*", sl__drv_messages_other, drv_messages_error },
    { "PATCH", "/v1/messages/*", sl__drv_messages_other, drv_messages_error },
    { "DELETE", "/v1/messages/*", sl__drv_messages_other, drv_messages_error },
    { "POST", "/v1/responses", drv_responses, NULL },
    { "GET", "/v1/responses/*", sl__drv_responses_route, NULL },
    { "DELETE", "/v1/responses/*", sl__drv_responses_route, NULL },
};


const sl_http_route_t *
sl_driver_routes(size_t *n)
{
    *n = sizeof(drv_routes) / sizeof(drv_routes[0]);
    return drv_routes;
}


sl_driver_t *
sl_driver_create(uv_loop_t *loop, const sl_conf_t *conf, sl_upstream_t *up, sl_db_t *db)
{
    sl_driver_t *d = sl_xcalloc(1, sizeof(*d));
    json_t *list = json_object();
    json_t *data = json_array();
    json_int_t created = (json_int_t) time(NULL);

    d->loop = loop;
    d->conf = conf;
    d->up = up;
    d->db = db;
    if (db != NULL && (conf->ledger_enabled || conf->responses_store)) {
        /* the ledger's rows and stored responses (responses.c) */
        d->commit = sl_commit_create(loop, db, conf->ledger_commit_window);
        if (d->commit == NULL) {
            json_decref(list);
            json_decref(data);
            free(d);
            return NULL;
        }
    }
    d->created = (int64_t) created;
    for (size_t i = 0; i < conf->nmodels; i++) {
        json_array_append_new(data,
                              json_pack("{s:s,s:s,s:I,s:s}", "id", conf->models[i].name, "object",
                                        "model", "created", created, "owned_by", "sluice"));
    }
    json_object_set_new(list, "object", json_string("list"));
    json_object_set_new(list, "data", data);
    d->models_body = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    if (d->models_body == NULL) {
        sl_log(NULL, SL_LOG_EMERG, 0, "cannot build the model list");
        sl_commit_destroy(d->commit);
        free(d);
        return NULL;
    }
    d->models_len = strlen(d->models_body);
    drv_current = d;
    return d;
}


sl_driver_t *
sl__drv_current(void)
{
    return drv_current;
}


void
sl_driver_destroy(sl_driver_t *d)
{
    if (d == NULL) {
        return;
    }
    SL_ASSERT(d->active == NULL);
    if (drv_current == d) {
        drv_current = NULL;
    }
    sl_commit_destroy(d->commit);
    free(d->models_body);
    free(d);
}


uint64_t
sl_driver_requests(const sl_driver_t *d)
{
    return d != NULL ? d->requests : 0;
}


static void
drv_healthz(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };

    sl_http_respond(r, 200, h, 1, "{\"status\":\"ok\"}", 15);
}


/*
 * Authenticates the client; answers 401 (or 500 on a storage failure)
 * itself, in the frontend's shape.
 */
static bool
drv_auth(sl_http_req_t *r, const sl_frontend_t *fe, sl_acct_t *a)
{
    const char *why = NULL;
    int rc = sl_acct_auth(drv_current->db, r, a, &why);
    sl_error_t e;

    if (rc == 0) {
        return true;
    }
    memset(&e, 0, sizeof(e));
    e.status = rc == SL_EAUTH ? 401 : 500;
    e.type = rc == SL_EAUTH ? "invalid_request_error" : "api_error";
    e.code = rc == SL_EAUTH ? "invalid_api_key" : "storage_error";
    e.message = rc == SL_EAUTH ? why : "The gateway cannot read its key store right now.";
    sl__drv_respond_error(r, fe, &e, NULL, 0);
    return false;
}


/* An error in fe's shape: content-type, then the n headers h. Finishes r. */
void
sl__drv_respond_error(sl_http_req_t *r, const sl_frontend_t *fe, const sl_error_t *e,
                      const sl_http_header_t *h, size_t n)
{
    sl_http_header_t hh[DRV_MAX_HEADERS + 2];
    sl_str_t body;
    size_t k = 0;

    hh[k++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("application/json") };
    for (size_t i = 0; i < n && k < sizeof(hh) / sizeof(hh[0]); i++) {
        hh[k++] = h[i];
    }
    if (fe->encode_error(r->pool, e, &body) < 0) {
        body = sl_str_lit("{}");
    }
    sl_http_respond(r, e->status, hh, k, body.p, body.len);
}


static void
drv_models(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };
    sl_driver_t *d = drv_current;
    sl_acct_t a;

    memset(&a, 0, sizeof(a));
    if (!drv_auth(r, sl_frontend_get(SL_API_CHAT), &a)) {
        return;
    }
    sl_http_respond(r, 200, h, 1, d->models_body, d->models_len);
}


/* GET /v1/models/{id}: one model alias, as OpenAI answers. */
static void
drv_model(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };
    sl_driver_t *d = drv_current;
    const sl_frontend_t *fe = sl_frontend_get(SL_API_CHAT);
    sl_str_t id = { r->path.p + 11, r->path.len - 11 };
    const sl_model_conf_t *m;
    json_t *obj;
    char *body;
    sl_acct_t a;

    memset(&a, 0, sizeof(a));
    if (!drv_auth(r, fe, &a)) {
        return;
    }
    m = sl_conf_model(r->conf, id.p, id.len);
    if (m == NULL) {
        sl_error_t e = {
            .status = 404,
            .type = "invalid_request_error",
            .code = "model_not_found",
            .param = "model",
            .message = "The model does not exist or you do not have access to it.",
        };

        sl__drv_respond_error(r, fe, &e, NULL, 0);
        return;
    }
    obj = json_pack("{s:s,s:s,s:I,s:s}", "id", m->name, "object", "model", "created",
                    (json_int_t) d->created, "owned_by", "sluice");
    body = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    sl_http_respond(r, 200, h, 1, body, body != NULL ? strlen(body) : 0);
    free(body);
}


static void
drv_chat(sl_http_req_t *r)
{
    drv_handle(r, SL_API_CHAT);
}


static void
drv_embeddings(sl_http_req_t *r)
{
    drv_handle(r, SL_API_EMBEDDINGS);
}


static void
drv_messages(sl_http_req_t *r)
{
    drv_handle(r, SL_API_MESSAGES);
}


static void
drv_responses(sl_http_req_t *r)
{
    drv_handle(r, SL_API_RESPONSES);
}


/*
 * Errors the HTTP server produces on /v1/messages before the handler runs
 * (405, 413, 408, ...) in Anthropic's shape.
 */
static int
drv_messages_error(sl_pool_t *pool, int status, const char *type, const char *code,
                   const char *param, const char *message, sl_str_t *out)
{
    const sl_frontend_t *fe = sl_frontend_get(SL_API_MESSAGES);
    sl_error_t e;

    if (fe == NULL) {
        return SL_ENOTFOUND;
    }
    memset(&e, 0, sizeof(e));
    e.status = status;
    e.type = type;
    e.code = code;
    e.param = param;
    e.message = message;
    return fe->encode_error(pool, &e, out);
}


/* Decode, auth, policy and plan; then the first attempt. */
static void
drv_handle(sl_http_req_t *r, sl_api_e api)
{
    sl_driver_t *d = drv_current;
    const sl_frontend_t *fe = sl_frontend_get(api);
    sl_drv_req_t *rq;

    d->requests++;
    if (fe == NULL) {
        sl_http_respond_error(r, 404, "invalid_request_error", "unknown_url", NULL,
                              "This gateway does not serve this API.");
        return;
    }
    rq = sl_pcalloc(r->pool, sizeof(*rq));
    rq->r = r;
    rq->d = d;
    rq->fe = fe;
    rq->call.pool = r->pool;
    rq->call.client_api = api;
    rq->call.request_id = r->request_id;
    rq->call.stream_options = -1;
    rq->call.model = -1;

    if (!drv_auth(r, fe, &rq->acct)) {
        return;
    }
    sl__drv_obs_begin(rq);
    r->data = rq;
    r->on_abort = drv_on_abort;
    r->on_drain = drv_on_drain;
    if (r->body.len >= SL_DRV_OFFLOOP_BYTES) {
        rq->working = true;
        rq->work.data = rq;
        if (uv_queue_work(d->loop, &rq->work, drv_decode_work, drv_decode_done) == 0) {
            return;
        }
        rq->working = false; /* no thread pool: decode here */
    }
    memset(&rq->decode_err, 0, sizeof(rq->decode_err));
    rq->decode_rc = fe->decode(&rq->call, r->body, &rq->decode_err);
    drv_decoded(rq);
}


/* Thread pool: the frontend's decode of a large body (the request waits). */
static void
drv_decode_work(uv_work_t *w)
{
    sl_drv_req_t *rq = w->data;

    memset(&rq->decode_err, 0, sizeof(rq->decode_err));
    rq->decode_rc = rq->fe->decode(&rq->call, rq->r->body, &rq->decode_err);
    if (rq->decode_rc == 0) {
        drv_guard_run(rq); /* reading a large body's text must not hold the loop either */
    }
}


static void
drv_decode_done(uv_work_t *w, int status)
{
    sl_drv_req_t *rq = w->data;

    (void) status;
    rq->working = false;
    if (rq->gone) {
        sl__drv_gone(rq);
        return;
    }
    drv_decoded(rq);
}


/* The rest of the phases, once the body is decoded: policy, cache lookup, then the others. */
static void
drv_decoded(sl_drv_req_t *rq)
{
    sl_http_req_t *r = rq->r;
    const sl_frontend_t *fe = rq->fe;

    if (rq->decode_rc < 0) {
        sl__drv_error(rq, &rq->decode_err);
        return;
    }
    if (rq->call.client_api == SL_API_RESPONSES && sl__drv_responses_decoded(rq) < 0) {
        return;
    }
    rq->public_model = fe->model(&rq->call);
    if (rq->public_model == NULL) {
        sl__frontend_bad_request_error(rq, "model", "Invalid value for 'model'.");
        return;
    }
    sl__cache_prepare(rq);
    if (!drv_limit(rq, sl__cache_may_hit(rq) ? SL_ACCT_LIMIT_REQUESTS : SL_ACCT_LIMIT_ALL)) {
        return;
    }
    if (!sl_acct_allows(&rq->acct, rq->public_model)) {
        sl__drv_error_new(rq, 403, "invalid_request_error", "model_not_allowed", "model",
                          sl_psprintf(r->pool, "This API key is not allowed to use the model `%s`.",
                                      rq->public_model));
        return;
    }
    if (drv_guard(rq) < 0) {
        return;
    }
    /* the prompt as it goes upstream (redacted); no answer text when the guardrails rewrite it */
    rq->tail_text =
        sl_tail_text_new(r->conf, r->pool, &rq->call, !sl_guard_filters_output(rq->guard));
    if (sl__cache_lookup(rq) != 0) {
        return; /* answered from the cache, or the lookup goes on and proceeds itself */
    }
    sl__drv_proceed(rq);
}


/* The key's rate limits (SL_ACCT_LIMIT_* bits); answers 429 itself. */
static bool
drv_limit(sl_drv_req_t *rq, unsigned limits)
{
    uint64_t retry_ms = 0;
    const char *why = NULL;

    if (sl_acct_limit(&rq->acct, rq->r->pool, limits, &retry_ms, &why) == 0) {
        return true;
    }
    rq->retry_after =
        sl_psprintf(rq->r->pool, "%llu", (unsigned long long) (retry_ms + 999) / 1000);
    rq->retry_after_ms = sl_psprintf(rq->r->pool, "%llu", (unsigned long long) retry_ms);
    sl__drv_error_new(rq, 429, "rate_limit_exceeded", "rate_limit_exceeded", NULL, why);
    return false;
}


void
sl__drv_proceed(sl_drv_req_t *rq)
{
    sl_http_req_t *r = rq->r;
    sl_driver_t *d = rq->d;

    /* a request the cache might have answered was held to rpm only so far */
    if (sl__cache_may_hit(rq) && !drv_limit(rq, SL_ACCT_LIMIT_TOKENS)) {
        return;
    }
    rq->start_ms = sl_state_now();
    sl_state_budget_request(rq->start_ms);
    if (drv_plan(rq) < 0) {
        return;
    }
    if (sl_acct_admit(d->db, r->conf, &rq->acct, &rq->call) == SL_EFULL) {
        sl__drv_error_new(rq, 503, "api_error", "storage_full", NULL,
                          "The gateway's usage ledger is full, so it cannot record this request "
                          "and did not send it. Try again later.");
        return;
    }
    rq->next_active = d->active;
    if (d->active != NULL) {
        d->active->prev_active = rq;
    }
    d->active = rq;
    rq->linked = true;
    sl__drv_attempt_next(rq);
}


/*
 * The guardrails' request phase: the policy of the key, its team, the
 * model or the configuration runs its checks on the internal request (and
 * may rewrite it). Thread pool or loop; touches only the request.
 */
static void
drv_guard_run(sl_drv_req_t *rq)
{
    const sl_conf_t *conf = rq->r->conf;
    const char *model = rq->fe->model(&rq->call);
    const sl_model_conf_t *m = model != NULL ? sl_conf_model(conf, model, strlen(model)) : NULL;
    sl_guard_who_t who = { rq->acct.key_guard, rq->acct.team_guard, model,
                           m != NULL ? m->guard : NULL, rq->r->body.len };

    rq->guarded = true;
    memset(&rq->guard_err, 0, sizeof(rq->guard_err));
    rq->guard_rc = sl_guard_request(conf->guard, &who, &rq->call, &rq->guard, &rq->guard_err);
}


/* Runs the request phase unless it ran off the loop; answers the client itself when it blocks. */
static int
drv_guard(sl_drv_req_t *rq)
{
    if (!rq->guarded) {
        drv_guard_run(rq);
    }
    if (rq->guard_rc < 0) {
        sl__drv_error(rq, &rq->guard_err);
        return -1;
    }
    return 0;
}


/*
 * The plan: the router orders the targets of the model (or of the rule that
 * matched), leaving out those whose breaker is open; a "provider/model"
 * request has that one target. Answers the client itself on failure.
 */
static int
drv_plan(sl_drv_req_t *rq)
{
    const sl_conf_t *conf = rq->r->conf;
    const char *name = rq->public_model;
    const sl_model_conf_t *m = sl_conf_model(conf, name, strlen(name));
    sl_route_req_t req;
    const char *slash;

    memset(&req, 0, sizeof(req));
    if (m != NULL && m->ntargets > 0) {
        req.model = m;
    } else if ((slash = strchr(name, '/')) != NULL && slash[1] != '\0') {
        const sl_provider_conf_t *p = sl_conf_provider(conf, name, (size_t) (slash - name));

        if (p != NULL && p->allow_direct) {
            rq->direct.provider = p;
            rq->direct.model = slash + 1;
            rq->direct.weight = 1;
            req.direct = &rq->direct;
            req.routing = &conf->routing;
        }
    }
    if (req.model == NULL && req.direct == NULL) {
        sl__drv_error_new(
            rq, 404, "invalid_request_error", "model_not_found", "model",
            sl_psprintf(rq->r->pool,
                        "The model `%s` does not exist or you do not have access to it.", name));
        return SL_ENOTFOUND;
    }
    sl_features_init(&rq->features);
    if (m != NULL && (m->nrules > 0 || m->routing.strategy == SL_STRATEGY_CHEAPEST)) {
        /* only what reads the request pays for reading it */
        sl_features_from_chat(&rq->features, rq->call.doc, SL_JSON_ROOT, rq->r->pool);
    } else {
        rq->features.prompt_bytes = rq->call.raw.len;
        rq->features.prompt_tokens = (rq->call.raw.len + 3) / 4;
    }
    rq->features.max_tokens = rq->call.max_tokens;
    rq->features.stream = rq->call.stream;
    rq->features.headers = rq->r->headers;
    rq->features.nheaders = rq->r->nheaders;
    rq->features.key_name = rq->acct.key_name;
    rq->features.team = rq->acct.team != NULL && rq->acct.team[0] != '\0' ? rq->acct.team : NULL;
    req.pricing = conf->pricing;
    req.features = &rq->features;
    req.now = rq->start_ms;
    sl_router_plan(&req, rq->r->pool, &rq->plan);
    rq->routing = rq->plan.routing;
    if (rq->plan.norder == 0) {
        uint64_t secs = (rq->plan.retry_after + 999) / 1000;

        rq->retry_after =
            sl_psprintf(rq->r->pool, "%llu", (unsigned long long) (secs > 0 ? secs : 1));
        sl__drv_error_new(rq, 503, "api_error", "no_target_available", NULL,
                          sl_psprintf(rq->r->pool,
                                      "Every target of the model `%s` is failing right now "
                                      "(circuit breakers open); try again later.",
                                      name));
        return SL_EDENIED;
    }
    return 0;
}


/* Writes the x-sluice-* (and frontend-specific) headers into h; returns how many. */
size_t
sl__drv_headers(sl_drv_req_t *rq, sl_http_header_t *h)
{
    sl_pool_t *pool = rq->r->pool;
    const sl_target_t *t;
    size_t n = 0;

    if (rq->acct.nrefs > 0 && (rq->acct.reserved_at != 0 || rq->acct.remaining != 0)) {
        char usd[32];
        const char *v =
            sl_pstrdup(pool, sl_pricing_format_usd(rq->acct.remaining, usd, sizeof(usd)));

        h[n++] =
            (sl_http_header_t){ sl_str_lit("x-sluice-budget-remaining-usd"), { v, strlen(v) } };
    }
    if (rq->fe->api == SL_API_MESSAGES) {
        /* Anthropic's SDKs read the request id from this header */
        h[n++] = (sl_http_header_t){ sl_str_lit("request-id"),
                                     { rq->r->request_id, strlen(rq->r->request_id) } };
    }
    if (rq->features.scored) {
        h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-complexity"),
                                     drv_uint(pool, sl_features_complexity(&rq->features)->score) };
    }
    t = rq->served != NULL ? rq->served : rq->last_target; /* an error: who gave it */
    if (t == NULL) {
        return n;
    }
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-provider"),
                                 { t->provider->name, strlen(t->provider->name) } };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-model"), { t->model, strlen(t->model) } };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-cache"), sl__cache_status(rq) };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-attempts"), drv_uint(pool, rq->attempts) };
    return n;
}


/* v in decimal, in pool (a header value: no printf on the hot path). */
static sl_str_t
drv_uint(sl_pool_t *pool, uint64_t v)
{
    char tmp[20];
    size_t k = 0;
    char *s;

    do {
        tmp[k++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);
    s = sl_palloc(pool, k);
    for (size_t i = 0; i < k; i++) {
        s[i] = tmp[k - 1 - i];
    }
    return (sl_str_t){ s, k };
}


void
sl__drv_error_new(sl_drv_req_t *rq, int status, const char *type, const char *code,
                  const char *param, const char *message)
{
    sl_error_t e;

    memset(&e, 0, sizeof(e));
    e.status = status;
    e.type = type;
    e.code = code;
    e.param = param;
    e.message = message;
    sl__drv_error(rq, &e);
}


void
sl__frontend_bad_request_error(sl_drv_req_t *rq, const char *param, const char *message)
{
    sl__drv_error_new(rq, 400, "invalid_request_error", NULL, param, message);
}


/*
 * The request ends with an error before anything was sent: the ledger row
 * (when the client was authenticated), the log line, the error in the
 * frontend's shape.
 */
void
sl__drv_error(sl_drv_req_t *rq, const sl_error_t *e)
{
    sl__drv_keep_error(rq, e);
    sl__drv_record(rq, e->status, NULL, drv_error_end);
}


/*
 * Keeps e for the end of the request, which comes after the row's commit:
 * its strings may point into buffers that go before that (the attempt's).
 */
void
sl__drv_keep_error(sl_drv_req_t *rq, const sl_error_t *e)
{
    sl_pool_t *pool = rq->r->pool;

    if (e == &rq->end_error) {
        return;
    }
    rq->end_error = *e;
    rq->end_error.type = e->type != NULL ? sl_pstrdup(pool, e->type) : NULL;
    rq->end_error.code = e->code != NULL ? sl_pstrdup(pool, e->code) : NULL;
    rq->end_error.param = e->param != NULL ? sl_pstrdup(pool, e->param) : NULL;
    rq->end_error.message = e->message != NULL ? sl_pstrdup(pool, e->message) : NULL;
}


/* The error's row is committed: the answer. */
static void
drv_error_end(sl_drv_req_t *rq)
{
    sl_http_req_t *r = rq->r;
    const sl_error_t *e = &rq->end_error;
    sl_http_header_t h[DRV_MAX_HEADERS];
    size_t n = 0;

    n += sl__drv_headers(rq, &h[n]);
    if (rq->retry_after != NULL) {
        h[n++] = (sl_http_header_t){ sl_str_lit("retry-after"),
                                     { rq->retry_after, strlen(rq->retry_after) } };
    }
    if (rq->retry_after_ms != NULL) {
        h[n++] = (sl_http_header_t){ sl_str_lit("retry-after-ms"),
                                     { rq->retry_after_ms, strlen(rq->retry_after_ms) } };
    }
    if (e->status == 429 && e->code != NULL && strcmp(e->code, "insufficient_quota") == 0) {
        /* waiting does not bring budget back: the OpenAI SDKs would retry twice */
        h[n++] = (sl_http_header_t){ sl_str_lit("x-should-retry"), sl_str_lit("false") };
    }
    sl__drv_log(rq, e->status);
    rq->done = true;
    drv_unlink(rq);
    sl__drv_respond_error(r, rq->fe, e, h, n);
}


void
sl__drv_log(sl_drv_req_t *rq, int status)
{
    sl_http_req_t *r = rq->r;

    sl__drv_obs_end(rq, status);
    sl_log(&r->log, SL_LOG_INFO, 0, "\"%.*s %.*s\" %d model=%s target=%s/%s attempts=%u %llums",
           (int) r->method.len, r->method.p, (int) r->path.len, r->path.p, status,
           rq->public_model != NULL ? rq->public_model : "-",
           rq->served != NULL ? rq->served->provider->name : "-",
           rq->served != NULL ? rq->served->model : "-", rq->attempts,
           (unsigned long long) ((sl_clock_ns() - r->start_ns) / 1000000));
}


/*
 * Usage of a stream that ended without the provider's numbers: estimated
 * from what was sent and what came back, about four bytes a token.
 */
static void
drv_estimate(sl_drv_req_t *rq, const sl_stream_t *st, sl_usage_t *u)
{
    if (st != NULL && st->usage.known) {
        *u = st->usage;
        return;
    }
    memset(u, 0, sizeof(*u));
    u->prompt_tokens = (rq->r->body.len + 3) / 4;
    u->completion_tokens = st != NULL ? (st->content_bytes + 3) / 4 : 0;
    u->estimated = true;
}


void
sl__drv_usage(sl_drv_req_t *rq, const sl_stream_t *st, sl_usage_t *u)
{
    drv_estimate(rq, st, u);
}


/* Writes the request's one ledger row (usage NULL: no tokens were used), then then(rq). */
void
sl__drv_record(sl_drv_req_t *rq, int status, const sl_usage_t *usage,
               void (*then)(sl_drv_req_t *rq))
{
    sl_http_req_t *r = rq->r;
    const sl_target_t *t = rq->served != NULL ? rq->served : rq->last_target;
    sl_ledger_row_t *row = &rq->row;
    sl_usage_t none;
    uint64_t age = sl_clock_ns() - r->start_ns;

    /*
     * Once per request. A request admitted while the storage was full (no
     * row: acct.recorded is set from the start) goes on all the same:
     * sl_acct_record counts its tokens against its key's tpm, and the live
     * tail, the alerts and the metrics see it, as with the ledger off.
     */
    if (!rq->acct.authed || rq->acct.row != NULL) {
        then(rq);
        return;
    }
    if (usage == NULL) {
        memset(&none, 0, sizeof(none));
        usage = &none;
    }
    memset(row, 0, sizeof(*row));
    row->time_ns = (int64_t) sl_clock_real_ns() - (int64_t) age;
    row->request_id = r->request_id;
    row->endpoint = rq->fe->name;
    row->model = rq->public_model != NULL ? rq->public_model : "";
    row->provider = t != NULL ? t->provider->name : "";
    row->served_model = rq->served_model != NULL ? rq->served_model : t != NULL ? t->model : "";
    row->attempts = rq->attempts;
    row->status = (uint32_t) status;
    row->flags = rq->call.stream ? SL_LEDGER_STREAM : 0;
    row->latency_us = age / 1000;
    row->first_byte_us = rq->first_byte_us;
    row->ttft_us = rq->ttft_us;
    sl__cache_row(rq, row);
    row->trace_id = sl__drv_obs_trace_id(rq);
    row->guard = sl_guard_row(rq->guard);
    /* the caller's usage may not outlive this call: the commit's callback uses a copy */
    rq->rec_usage = *usage;
    rq->rec_status = status;
    rq->recording = true;
    rq->then = then;
    sl_acct_record(rq->d->db, rq->d->commit, r->conf, &rq->acct, t, usage, row, drv_recorded, rq);
}


/*
 * The row is committed (or failed, logged): the response cache, the live
 * tail, the alerts and the request's metrics and trace see it as written,
 * then the rest of the request's end.
 */
static void
drv_recorded(void *arg)
{
    sl_drv_req_t *rq = arg;

    rq->recording = false;
    sl__cache_fill(rq, rq->rec_status, &rq->rec_usage);
    sl_tail_add(&rq->row, rq->tail_text);
    sl_alerts_record(&rq->row, rq->acct.refs, rq->acct.nrefs);
    sl__drv_obs_record(rq, &rq->row, &rq->rec_usage);
    rq->then(rq);
}


static void
drv_unlink(sl_drv_req_t *rq)
{
    sl_driver_t *d = rq->d;

    if (!rq->linked) {
        return;
    }
    rq->linked = false;
    if (rq->prev_active != NULL) {
        rq->prev_active->next_active = rq->next_active;
    } else {
        d->active = rq->next_active;
    }
    if (rq->next_active != NULL) {
        rq->next_active->prev_active = rq->prev_active;
    }
    rq->next_active = rq->prev_active = NULL;
}


/* The request is over (answered, failed or abandoned): release it. */
void
sl__drv_finish(sl_drv_req_t *rq)
{
    sl__drv_finish_with(rq, NULL, 0);
}


void
sl__drv_finish_with(sl_drv_req_t *rq, const char *data, size_t len)
{
    sl_timer_cancel(rq->timer);
    rq->timer = NULL;
    drv_unlink(rq);
    rq->done = true;
    sl_http_finish_with(rq->r, data, len);
}


void
sl__drv_finish_respond(sl_drv_req_t *rq, int status, const sl_http_header_t *h, size_t n,
                       sl_buf_t *body)
{
    /* body may live in rq (rq->end_body), which the response's end releases */
    sl_buf_t b = *body;

    memset(body, 0, sizeof(*body));
    sl_timer_cancel(rq->timer);
    rq->timer = NULL;
    drv_unlink(rq);
    rq->done = true;
    sl_http_respond(rq->r, status, h, n, b.p, b.len);
    sl_buf_free(&b);
}


static void
drv_on_abort(sl_http_req_t *r)
{
    sl_drv_req_t *rq = r->data;
    sl_usage_t usage;

    if (rq->done || rq->recording) {
        return; /* the row is being committed: its callback finishes the request (nothing goes out)
                 */
    }
    if (rq->working) {
        rq->gone = true; /* the work's callback finishes the request */
        return;
    }
    if (rq->committed) {
        drv_estimate(rq, sl__drv_attempt_stream(rq), &usage);
        sl__drv_attempt_cancel(rq);
        sl__drv_record(rq, 499, &usage, drv_abort_end);
    } else {
        sl__drv_attempt_cancel(rq);
        sl__drv_record(rq, 499, NULL, drv_abort_end);
    }
}


/* The client went away and the row is committed: release the request. */
static void
drv_abort_end(sl_drv_req_t *rq)
{
    sl__drv_log(rq, 499);
    sl__drv_finish(rq);
}


void
sl__drv_gone(sl_drv_req_t *rq)
{
    sl__drv_attempt_cancel(rq);
    sl__drv_record(rq, 499, NULL, drv_abort_end);
}


static void
drv_on_drain(sl_http_req_t *r)
{
    sl_drv_req_t *rq = r->data;

    sl__drv_attempt_resume(rq);
}


void
sl_driver_cut_streams(sl_driver_t *d, const char *why)
{
    while (d != NULL && d->active != NULL) {
        sl_drv_req_t *rq = d->active;
        sl_error_t e;

        drv_unlink(rq);
        if (!rq->committed || !rq->streaming || rq->recording) {
            continue; /* the connection's close aborts it, or its row is being committed */
        }
        memset(&e, 0, sizeof(e));
        e.status = 503;
        e.type = "api_error";
        e.code = "gateway_shutting_down";
        e.message = why;
        sl__drv_stream_fail(rq, &e);
    }
    if (d != NULL && d->commit != NULL) {
        /* the cut streams' rows now, so that their error events go out before the close */
        sl_commit_flush(d->commit);
    }
}
