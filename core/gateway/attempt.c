/*
 * Attempts: one upstream exchange with one target. An attempt owns its
 * upstream call, its adapter's stream state, the frontend encoder's state
 * and the bytes encoded for the client; until the commit point those bytes
 * are held, so a failed attempt is discarded without the client seeing a
 * thing and the next one starts from scratch. The first real output (a
 * whole JSON answer, a stream's first content or tool-call delta) commits
 * the request to the attempt.
 */
#include "core/gateway/driver_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/admin/alerts.h"
#include "core/admin/metrics.h"
#include "core/admin/tail.h"
#include "core/gateway/settle.h"
#include "core/http/headers.h"
#include "core/base/str.h"

#define ATTEMPT_MAX_BODY (64u * 1024 * 1024) /* a JSON answer larger than this is refused */

struct sl_drv_attempt {
    sl_drv_req_t *rq;
    sl_call_t call; /* this attempt's view of the request */
    const sl_provider_ops_t *ops;
    const void *ext;
    const sl_route_target_t *rt;  /* the plan's entry: target and its shared state */
    sl_breaker_verdict_e breaker; /* what the breaker said when the attempt began */
    int cred;                     /* index into the provider's api_keys, -1: none */
    sl_upstream_call_t *uc;
    sl_timer_t *timer;      /* first-token deadline, or a local answer's delivery */
    sl_local_reply_t local; /* kinds without network */
    int status;             /* upstream status */
    uint64_t retry_after;   /* ms the provider asked to wait, 0 when it did not say */
    const char *retry_after_text;
    sl_buf_t body;       /* a buffered answer or error */
    sl_sse_parser_t sse; /* the upstream event stream */
    sl_stream_t st;
    sl_evs_t evs;   /* the typed events of one upstream event */
    void *fe_state; /* the frontend encoder's stream state */
    sl_buf_t out;   /* encoded for the client, not yet written (held before the commit) */
    uint64_t start_ns;
    uint64_t first_output_ns; /* the commit point of a stream */
    bool upstream_stream;     /* the provider answered with an event stream */
    bool reported;            /* the breaker and in-flight count know how it ended */
    bool paused;
    bool batching; /* inside one upstream read: its events' output goes out at its end */
    bool over;     /* failed or finished: later events are ignored */
    void *span;    /* observe.c's view of the attempt */
};

static void attempt_dom_work(uv_work_t *w);
static void attempt_dom_done(uv_work_t *w, int status);
static void attempt_build(sl_drv_attempt_t *a);
static sl_drv_attempt_t *attempt_create(sl_drv_req_t *rq, const sl_route_target_t *rt, int cred);
static void attempt_report(sl_drv_attempt_t *a, bool ok, unsigned bits);
static void attempt_halt(sl_drv_attempt_t *a);
static void attempt_close(sl_drv_attempt_t *a);
static void attempt_free_bufs(void *arg);
static void attempt_on_local(void *data);
static void attempt_on_first_token_timeout(void *data);
static void attempt_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                               size_t nheaders, void *data);
static void attempt_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
static void attempt_on_read_end(sl_upstream_call_t *uc, void *data);
static void attempt_on_done(sl_upstream_call_t *uc, int rc, void *data);
static int attempt_on_sse(void *data, const sl_sse_event_t *ev);
static int attempt_events(sl_drv_attempt_t *a, bool final);
static void attempt_guard_block(sl_drv_attempt_t *a, const sl_usage_t *usage, const sl_error_t *e);
static void attempt_commit(sl_drv_attempt_t *a);
static void attempt_write(sl_drv_attempt_t *a);
static void attempt_answer(sl_drv_attempt_t *a);
static void attempt_answer_end(sl_drv_req_t *rq);
static void attempt_stream_end(sl_drv_attempt_t *a);
static void attempt_stream_end_write(sl_drv_req_t *rq);
static void attempt_guard_block_end(sl_drv_req_t *rq);
static void attempt_stream_fail_write(sl_drv_req_t *rq);
static void attempt_fail(sl_drv_attempt_t *a, sl_fail_e fail, int status, const sl_error_t *e);
static void attempt_fail_transport(sl_drv_attempt_t *a, int rc);
static void attempt_give_up(sl_drv_req_t *rq);
static void attempt_on_wait(void *data);
static const char *attempt_served_model(sl_drv_attempt_t *a, sl_str_t lit);

static const sl_upstream_cbs_t attempt_cbs = {
    attempt_on_headers,
    attempt_on_body,
    attempt_on_done,
    attempt_on_read_end,
};


void
sl__drv_attempt_next(sl_drv_req_t *rq)
{
    const sl_routing_conf_t *rc = rq->routing;
    const sl_route_target_t *rt;
    sl_breaker_verdict_e v = SL_BREAKER_PASS;
    sl_drv_attempt_t *a;
    const sl_target_t *t;
    uint64_t now = sl_state_now();
    uint64_t wait = 0;
    int cred;
    int rc_;

    SL_ASSERT(rq->att == NULL && !rq->committed && !rq->done);
    for (;; rq->ti++, rq->tries = 0) {
        if (rq->ti >= rq->plan.norder) {
            attempt_give_up(rq);
            return;
        }
        rt = &rq->plan.order[rq->ti];
        t = rt->target;
        if (rq->tries == 0) {
            /* a new target: the budget reservation must cover what it may cost */
            const char *why = NULL;

            rc_ = sl_acct_reserve(rq->d->db, rq->r->conf, &rq->acct, t, rq->r->body.len,
                                  rq->call.max_tokens, rq->r->pool, &why);
            if (rc_ == SL_EDENIED && rq->attempts > 0) {
                sl__drv_obs_event(rq, "budget_skip", t);
                continue; /* too dear for what is left: a cheaper fallback may still do */
            }
            if (rc_ == SL_ENOTFOUND) {
                /* unpriced: reject: never sent; a priced fallback may serve it */
                if (!rq->have_error) {
                    rq->have_error = true;
                    rq->last_error = (sl_error_t){ .status = 403,
                                                   .type = "invalid_request_error",
                                                   .code = "model_not_priced",
                                                   .param = "model",
                                                   .message = why };
                }
                continue;
            }
            if (rc_ == SL_EDENIED) {
                sl__drv_error_new(rq, 429, "insufficient_quota", "insufficient_quota", NULL, why);
                return;
            }
            if (rc_ == SL_EFULL) {
                sl__drv_error_new(rq, 503, "api_error", "storage_full", NULL,
                                  "The gateway's usage ledger is full, so it cannot record this "
                                  "request and did not send it. Try again later.");
                return;
            }
            if (rc_ < 0) {
                sl__drv_error_new(rq, 500, "api_error", "storage_error", NULL,
                                  "The gateway cannot update its budget store right now.");
                return;
            }
        }
        if (rt->state != NULL) {
            v = sl_state_breaker_enter(rt->state, now, rc);
            if (v == SL_BREAKER_SKIP) {
                /* opened (or probed by another request) since the plan was made */
                sl__drv_obs_event(rq, "breaker_skip", t);
                continue;
            }
        }
        cred = sl_router_credential(t->provider, now, NULL, NULL, &wait);
        if (wait > 0 && wait > rc->max_wait && rq->ti + 1 < rq->plan.norder) {
            if (rt->state != NULL) {
                sl_state_breaker_release(rt->state, v, now);
            }
            continue; /* every credential cools down longer than we may wait */
        }
        a = attempt_create(rq, rt, cred);
        a->breaker = v;
        break;
    }
    rq->att = a;
    if (rq->r->body.len >= SL_DRV_OFFLOOP_BYTES && !sl_provider_speaks(a->ops, rq->call.client_api)
        && a->ops->api != rq->call.api) {
        /* a translating adapter will want the DOM of a large body: built off the loop */
        rq->working = true;
        rq->work.data = a;
        if (uv_queue_work(rq->d->loop, &rq->work, attempt_dom_work, attempt_dom_done) == 0) {
            return;
        }
        rq->working = false;
    }
    attempt_build(a);
}


/* Thread pool: the DOM of the internal request for this attempt's adapter. */
static void
attempt_dom_work(uv_work_t *w)
{
    sl_drv_attempt_t *a = w->data;

    sl_call_json(&a->call);
}


static void
attempt_dom_done(uv_work_t *w, int status)
{
    sl_drv_attempt_t *a = w->data;
    sl_drv_req_t *rq = a->rq;

    (void) status;
    rq->working = false;
    if (rq->gone) {
        sl__drv_gone(rq);
        return;
    }
    attempt_build(a);
}


/*
 * The adapter builds the upstream request of attempt a, which is then sent
 * (or answered locally). A kind that does not serve the client's API moves
 * on to the next target.
 */
static void
attempt_build(sl_drv_attempt_t *a)
{
    sl_drv_req_t *rq = a->rq;
    const sl_routing_conf_t *rc = rq->routing;
    const sl_target_t *t = a->call.target;
    sl_upstream_req_t ureq;
    int rc_;

    memset(&ureq, 0, sizeof(ureq));
    if (rq->call.untranslatable != NULL && !sl_provider_speaks(a->ops, rq->call.client_api)) {
        /* only a target that takes the client's own body can serve it */
        rq->have_error = true;
        rq->last_error = (sl_error_t){
            .status = 400,
            .type = "invalid_request_error",
            .code = "unsupported_parameter",
            .message = sl_psprintf(rq->r->pool,
                                   "%s: provider \"%s\" (kind %s) does not speak this API, and "
                                   "the request cannot be translated for it",
                                   rq->call.untranslatable, t->provider->name, t->provider->kind),
        };
        rc_ = SL_EDENIED;
    } else {
        rc_ = a->ops->build_request(a->ext, &a->call, &ureq);
    }
    if (rc_ == SL_EDENIED) {
        /* this kind does not serve the client's API: the next target may */
        attempt_report(a, true, 0);
        attempt_close(a);
        if (!rq->have_error) {
            rq->have_error = true;
            rq->last_error = (sl_error_t){
                .status = 400,
                .type = "invalid_request_error",
                .code = "unsupported_api",
                .message =
                    sl_psprintf(rq->r->pool, "provider \"%s\" (kind %s) does not serve %s requests",
                                t->provider->name, t->provider->kind, sl_api_name(rq->call.api)),
            };
        }
        rq->ti++;
        rq->tries = 0;
        sl__drv_attempt_next(rq);
        return;
    }
    rq->tries++;
    rq->attempts++;
    rq->last_target = t;
    sl__drv_obs_attempt_start(rq, a->span, rq->attempts, a->breaker == SL_BREAKER_PROBE);
    if (rc_ == SL_ENOTFOUND) {
        sl_error_t e = {
            .status = 400,
            .type = "invalid_request_error",
            .code = "invalid_model",
            .param = "model",
            .message = sl_psprintf(rq->r->pool,
                                   "The model `%s` is not a valid model name for provider \"%s\": "
                                   "use letters, digits, '-', '_' and '.', starting with a letter "
                                   "or digit.",
                                   rq->public_model, t->provider->name),
        };

        attempt_fail(a, SL_FAIL_NONE, 400, &e);
        return;
    }
    if (rc_ < 0) {
        sl_error_t e = {
            .status = 400,
            .type = "invalid_request_error",
            .message = sl_psprintf(rq->r->pool,
                                   "the request cannot be translated for provider \"%s\" "
                                   "(kind %s)",
                                   t->provider->name, t->provider->kind),
        };

        attempt_fail(a, SL_FAIL_NONE, 400, &e);
        return;
    }
    if (rq->call.stream && rc->first_token_timeout > 0) {
        a->timer =
            sl_timer_start(rq->d->loop, rc->first_token_timeout, attempt_on_first_token_timeout, a);
    }
    if (a->ops->local != NULL) {
        memset(&a->local, 0, sizeof(a->local));
        if (a->ops->local(a->ext, &a->call, &a->local) < 0) {
            sl_error_t e = { .status = 400,
                             .type = "invalid_request_error",
                             .message = "the request cannot be answered by this provider" };

            attempt_fail(a, SL_FAIL_NONE, 400, &e);
            return;
        }
        sl_timer_cancel(a->timer);
        a->timer = sl_timer_start(rq->d->loop, 0, attempt_on_local, a);
        return;
    }
    sl_settle_target(&rq->acct, t);
    sl_intent_update(rq->acct.intent, 0); /* from here the provider may bill it */
    /*
     * Every adapter builds the body in the request's pool or points at the
     * client's body, and attempt_halt cancels the call before either goes:
     * it is written from there, not copied.
     */
    ureq.body_kept = true;
    rc_ = sl_upstream_send(rq->d->up, t->provider, &ureq, &attempt_cbs, a, &rq->r->log, &a->uc);
    if (rc_ < 0) {
        a->uc = NULL;
        attempt_fail_transport(a, rc_);
    }
}


static sl_drv_attempt_t *
attempt_create(sl_drv_req_t *rq, const sl_route_target_t *rt, int cred)
{
    sl_pool_t *pool = rq->r->pool;
    sl_drv_attempt_t *a = sl_pcalloc(pool, sizeof(*a));
    const sl_provider_conf_t *p = rt->target->provider;
    sl_http_header_t *hdrs;

    a->rq = rq;
    a->rt = rt;
    a->cred = cred;
    a->call = rq->call;
    a->call.body = NULL;
    a->call.target = rt->target;
    a->call.api_key = cred >= 0 && p->api_keys[cred].value != NULL ? &p->api_keys[cred] : NULL;
    /* which client headers may go to this provider depends on the provider (forward_headers) */
    hdrs = sl_palloc(pool, sizeof(*hdrs) * (rq->r->nheaders + 1));
    a->call.headers = hdrs;
    a->call.nheaders = sl_headers_upstream(p, rq->r->headers, rq->r->nheaders, hdrs);
    a->span = sl__drv_obs_attempt(rq, rt->target, hdrs, &a->call.nheaders);
    a->ops = p->ops;
    a->ext = p->ext;
    a->body = (sl_buf_t) SL_BUF_INIT;
    a->out = (sl_buf_t) SL_BUF_INIT;
    a->st.call = &a->call;
    a->evs.pool = pool;
    a->start_ns = sl_clock_ns();
    sl_sse_init(&a->sse, 0);
    sl_pool_on_destroy(pool, attempt_free_bufs, a);
    if (rt->state != NULL) {
        sl_state_inflight_add(rt->state, 1);
    }
    return a;
}


/*
 * Tells the shared state how the attempt went, once: the in-flight count,
 * and the breaker (ok: the target answered; bits: sl_retry_classify's
 * verdict on a failure, 0 for one that is nobody's fault).
 */
static void
attempt_report(sl_drv_attempt_t *a, bool ok, unsigned bits)
{
    sl_state_target_t *st = a->rt->state;
    uint64_t now;

    if (a->reported || st == NULL) {
        a->reported = true;
        return;
    }
    a->reported = true;
    now = sl_state_now();
    sl_state_inflight_add(st, -1);
    if (ok) {
        sl_state_breaker_success(st, a->breaker);
    } else if (bits & SL_RETRY_BREAKER) {
        sl_state_breaker_failure(st, a->breaker, now, a->rq->routing);
    } else {
        sl_state_breaker_release(st, a->breaker, now);
    }
}


static void
attempt_free_bufs(void *arg)
{
    sl_drv_attempt_t *a = arg;

    sl_buf_free(&a->body);
    sl_buf_free(&a->out);
    sl_sse_free(&a->sse);
}


/* Stops everything the attempt has under way; its encoder and buffers stay. */
static void
attempt_halt(sl_drv_attempt_t *a)
{
    attempt_report(a, false, 0); /* not reported yet: the client went away */
    sl__drv_obs_attempt_end(a->rq, a->span);
    a->over = true;
    if (a->uc != NULL) {
        sl_upstream_cancel(a->uc);
        a->uc = NULL;
    }
    sl_timer_cancel(a->timer);
    a->timer = NULL;
}


/* Stops everything the attempt has under way and frees its buffers. */
static void
attempt_close(sl_drv_attempt_t *a)
{
    attempt_halt(a);
    attempt_free_bufs(a);
    if (a->rq->att == a) {
        a->rq->att = NULL;
    }
}


void
sl__drv_attempt_cancel(sl_drv_req_t *rq)
{
    sl_timer_cancel(rq->timer);
    rq->timer = NULL;
    if (rq->att != NULL) {
        attempt_close(rq->att);
    }
}


const sl_stream_t *
sl__drv_attempt_stream(const sl_drv_req_t *rq)
{
    return rq->att != NULL && rq->att->upstream_stream ? &rq->att->st : NULL;
}


void
sl__drv_attempt_resume(sl_drv_req_t *rq)
{
    sl_drv_attempt_t *a = rq->att;

    if (a != NULL && a->paused && a->uc != NULL) {
        a->paused = false;
        sl_upstream_resume(a->uc);
    }
}


/* A kind without network answered: deliver it as if it came over the wire. */
static void
attempt_on_local(void *data)
{
    sl_drv_attempt_t *a = data;
    sl_http_header_t h = { sl_str_lit("content-type"),
                           { a->local.content_type, strlen(a->local.content_type) } };

    a->timer = NULL;
    attempt_on_headers(NULL, a->local.status, &h, 1, a);
    if (a->over) {
        return;
    }
    attempt_on_body(NULL, a->local.body, a->local.body_len, a);
    if (a->over) {
        return;
    }
    attempt_on_done(NULL, 0, a);
}


static void
attempt_on_first_token_timeout(void *data)
{
    sl_drv_attempt_t *a = data;
    sl_drv_req_t *rq = a->rq;
    sl_error_t e = {
        .status = 504,
        .type = "timeout_error",
        .code = "upstream_timeout",
        .retryable = true,
    };

    a->timer = NULL;
    e.message = sl_psprintf(rq->r->pool, "provider \"%s\" sent no output within %llu ms",
                            a->call.target->provider->name,
                            (unsigned long long) rq->routing->first_token_timeout);
    attempt_fail(a, SL_FAIL_TIMEOUT, 0, &e);
}


static void
attempt_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                   size_t nheaders, void *data)
{
    sl_drv_attempt_t *a = data;
    sl_drv_req_t *rq = a->rq;
    const sl_http_header_t *ct = sl_http_find_header(headers, nheaders, "content-type");
    uint64_t now = sl_state_now();
    sl_ratelimit_t rl;
    int64_t after;

    a->status = status;
    if (uc != NULL) {
        const sl_upstream_timing_t *tm = sl_upstream_timing(uc);

        if (tm->first_byte > tm->sent && tm->sent != 0) {
            rq->first_byte_us = (tm->first_byte - tm->sent) / 1000;
        }
    }
    /* a wait the provider asks for comes with a refusal (429, 503): a success is not searched */
    after = status >= 400 ? sl_retry_after(headers, nheaders, now) : -1;
    if (after >= 0) {
        a->retry_after = (uint64_t) after;
        a->retry_after_text =
            sl_psprintf(rq->r->pool, "%llu", (unsigned long long) ((a->retry_after + 999) / 1000));
    }
    if (a->rt->state != NULL && sl_retry_ratelimit(headers, nheaders, now, &rl)) {
        sl_state_headroom_update(a->rt->state, &rl, now);
    }
    if (!rq->call.stream || status < 200 || status > 299 || ct == NULL || ct->value.len < 17
        || !sl_mem_caseeq(ct->value.p, "text/event-stream", 17)) {
        return; /* buffered: a JSON answer or an error */
    }
    a->upstream_stream = true;
    a->fe_state = rq->fe->stream_open(&a->call);
    sl_guard_restart(rq->guard);
}


static void
attempt_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data)
{
    sl_drv_attempt_t *a = data;
    sl_drv_req_t *rq = a->rq;
    int rc;

    (void) uc;
    if (a->over) {
        return;
    }
    sl_intent_update(rq->acct.intent, a->upstream_stream ? a->st.content_bytes : a->body.len + len);
    if (!a->upstream_stream) {
        if (a->body.len + len <= ATTEMPT_MAX_BODY) {
            sl_buf_append(&a->body, p, len);
        } else {
            a->body.len = ATTEMPT_MAX_BODY + 1; /* on_done reports it */
        }
        return;
    }
    a->batching = true;
    rc = sl_sse_feed(&a->sse, p, len, attempt_on_sse, a);
    if (a->over) {
        return; /* the attempt failed or the request ended inside the feed */
    }
    if (rc < 0) {
        sl_log(&rq->r->log, SL_LOG_WARN, rc, "bad event stream from provider \"%s\"",
               a->call.target->provider->name);
    }
}


/*
 * The end of one upstream read: what its events encoded goes to the client
 * in one write (a provider often sends several events in one segment),
 * then the stream pauses if the client is slower than the provider.
 */
static void
attempt_on_read_end(sl_upstream_call_t *uc, void *data)
{
    sl_drv_attempt_t *a = data;
    sl_drv_req_t *rq = a->rq;

    (void) uc;
    a->batching = false;
    if (a->over || !rq->committed) {
        return;
    }
    attempt_write(a);
    if (!a->paused && a->uc != NULL && sl_http_is_congested(rq->r)) {
        a->paused = true;
        sl_upstream_pause(a->uc);
    }
}


/* One upstream event: the adapter turns it into typed events. */
static int
attempt_on_sse(void *data, const sl_sse_event_t *ev)
{
    sl_drv_attempt_t *a = data;

    if (a->over || a->st.done || a->st.failed) {
        return 0;
    }
    sl_evs_reset(&a->evs);
    a->ops->stream_event(a->ext, &a->st, ev, &a->evs);
    return attempt_events(a, false);
}


/*
 * One batch of typed events, through the guardrails' output filters first
 * (final: the stream ended, let out what they hold). Before the commit
 * point its encoding is held; the first real output commits. An error
 * before it fails the attempt, an error after it ends the client's
 * stream; so does an output check that blocks. Returns non-zero to stop
 * the feed (the attempt or the request is over).
 */
static int
attempt_events(sl_drv_attempt_t *a, bool final)
{
    sl_drv_req_t *rq = a->rq;
    const sl_error_t *err = NULL;
    bool output = false;
    sl_error_t blocked;

    if (sl_guard_events(rq->guard, &a->evs, final, &blocked) < 0) {
        if (!rq->committed) {
            sl_usage_t usage;

            sl__drv_usage(rq, &a->st, &usage);
            attempt_guard_block(a, &usage, &blocked);
            return 1;
        }
        err = &blocked; /* what may go out before it does, then the in-band error */
    }

    for (size_t i = 0; i < a->evs.n; i++) {
        const sl_ev_t *ev = &a->evs.v[i];

        if (ev->type == SL_EV_ERROR && err == NULL) {
            err = ev->error;
        } else if (sl_ev_is_output(ev)) {
            output = true;
        }
    }
    if (err != NULL && !output && !rq->committed) {
        attempt_fail(a, SL_FAIL_NONE, err->status, err);
        return 1;
    }
    sl_tail_text_events(rq->tail_text, rq->r->pool, &a->evs);
    sl__cache_events(rq, a, &a->evs);
    rq->fe->encode_events(a->fe_state, &a->evs, &a->out);
    if (!rq->committed) {
        if (!output) {
            return 0; /* preamble: held */
        }
        attempt_commit(a);
    }
    if (!a->batching || err != NULL) {
        attempt_write(a); /* else attempt_on_read_end writes what the whole read brought */
    }
    if (err != NULL) {
        sl__drv_stream_fail(rq, err);
        return 1;
    }
    return 0;
}


/* The first real output of a stream: the client's response starts. */
static void
attempt_commit(sl_drv_attempt_t *a)
{
    sl_drv_req_t *rq = a->rq;
    sl_http_header_t h[16];
    size_t n = 0;

    rq->committed = true;
    rq->served = a->call.target;
    rq->streaming = true;
    sl_timer_cancel(a->timer);
    a->timer = NULL;
    a->first_output_ns = sl_clock_ns();
    rq->ttft_us = (a->first_output_ns - rq->r->start_ns) / 1000;
    attempt_report(a, true, 0);
    h[n++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("text/event-stream") };
    h[n++] = (sl_http_header_t){ sl_str_lit("cache-control"), sl_str_lit("no-cache") };
    n += sl__drv_headers(rq, &h[n]);
    sl_http_start(rq->r, 200, h, n);
}


static void
attempt_write(sl_drv_attempt_t *a)
{
    if (a->out.len > 0) {
        sl_http_write(a->rq->r, a->out.p, a->out.len);
        sl_buf_clear(&a->out);
    }
}


static void
attempt_on_done(sl_upstream_call_t *uc, int rc, void *data)
{
    sl_drv_attempt_t *a = data;
    sl_drv_req_t *rq = a->rq;

    (void) uc;
    a->uc = NULL;
    if (a->over) {
        return;
    }
    if (a->upstream_stream) {
        if (a->st.done && !a->st.failed) {
            if (sl_guard_filters_output(rq->guard)) {
                sl_evs_reset(&a->evs);
                if (attempt_events(a, true) != 0) {
                    return; /* blocked */
                }
            }
            if (!rq->committed) {
                attempt_commit(a); /* a complete answer without output (empty) */
            }
            attempt_stream_end(a);
            return;
        }
        if (rq->committed) {
            sl_error_t e = {
                .status = 502,
                .type = "api_error",
                .code = "upstream_stream_interrupted",
            };

            e.message = sl_psprintf(
                rq->r->pool, "the upstream stream from provider \"%s\" was interrupted: %s",
                a->call.target->provider->name, sl_strerror(rc < 0 ? rc : SL_ECLOSED));
            sl_log(&rq->r->log, SL_LOG_WARN, rc, "upstream stream from \"%s\" interrupted",
                   a->call.target->provider->name);
            sl__drv_stream_fail(rq, &e);
            return;
        }
        if (rc == 0) {
            rc = SL_ECLOSED; /* the stream ended before its end */
        }
    }
    if (rc < 0) {
        attempt_fail_transport(a, rc);
        return;
    }
    if (a->body.len > ATTEMPT_MAX_BODY) {
        sl_error_t e = { .status = 502,
                         .type = "api_error",
                         .code = "upstream_error",
                         .message = "the provider's answer is larger than the gateway accepts" };

        attempt_fail(a, SL_FAIL_NONE, 502, &e);
        return;
    }
    if (a->status >= 200 && a->status <= 299) {
        attempt_answer(a);
        return;
    }

    sl_error_t e;

    memset(&e, 0, sizeof(e));
    a->ops->map_error(a->ext, a->status, &a->body, rq->r->pool, &e);
    if (a->status >= 500) {
        sl_metric_add(SL_METRIC_UPSTREAM_ERRORS, 1);
    }
    if (e.status >= 500) {
        sl_log(&rq->r->log, SL_LOG_WARN, 0, "provider \"%s\" answered HTTP %d",
               a->call.target->provider->name, a->status);
    }
    if (e.retry_after == 0) {
        e.retry_after = a->retry_after;
    }
    attempt_fail(a, SL_FAIL_NONE, a->status, &e);
}


/* A whole 2xx answer: translated, recorded, sent. */
static void
attempt_answer(sl_drv_attempt_t *a)
{
    sl_drv_req_t *rq = a->rq;
    sl_http_req_t *r = rq->r;
    sl_answer_t ans;
    sl_buf_t out = SL_BUF_INIT;
    sl_error_t blocked;

    memset(&ans, 0, sizeof(ans));
    a->call.raw_answer =
        rq->tail_text == NULL && !sl_guard_filters_output(rq->guard) && !sl__cache_stores(rq);
    if (a->ops->parse_response(a->ext, &a->call, &a->body, &ans) < 0) {
        sl_error_t e = { .status = 502,
                         .type = "api_error",
                         .code = "upstream_invalid_response",
                         .retryable = true };

        e.message = sl_psprintf(r->pool, "provider \"%s\" sent an answer that is not valid JSON",
                                a->call.target->provider->name);
        attempt_fail(a, SL_FAIL_NONE, 502, &e);
        return;
    }
    if (sl_guard_answer(rq->guard, &ans, &blocked) < 0) {
        rq->served_model = attempt_served_model(a, ans.model);
        attempt_guard_block(a, &ans.usage, &blocked);
        return;
    }
    if (rq->fe->encode_answer(&a->call, &ans, &out) < 0) {
        sl_error_t e = { .status = 502,
                         .type = "api_error",
                         .code = "upstream_invalid_response",
                         .retryable = true };

        sl_buf_free(&out);
        e.message = sl_psprintf(r->pool,
                                "provider \"%s\" sent an answer the gateway cannot turn into "
                                "this API's shape",
                                a->call.target->provider->name);
        attempt_fail(a, SL_FAIL_NONE, 502, &e);
        return;
    }
    sl_tail_text_answer(rq->tail_text, r->pool, &ans);
    sl__cache_answer(rq, &ans);
    rq->committed = true;
    rq->served = a->call.target;
    rq->served_model = attempt_served_model(a, ans.model);
    attempt_report(a, true, 0);
    if (a->rt->state != NULL) {
        sl_state_latency_record(a->rt->state, (sl_clock_ns() - a->start_ns) / 1000, 0);
    }
    rq->end_status = a->status;
    rq->end_body = out;
    rq->end_native = a->call.forwarded;
    attempt_close(a);
    sl_timer_cancel(rq->timer);
    rq->timer = NULL;
    /* the answer goes out once its row (and its stored response) is committed */
    sl__drv_responses_stage(rq, &rq->end_body, rq->end_status, rq->end_native);
    sl__drv_record(rq, rq->end_status, &ans.usage, attempt_answer_end);
}


static void
attempt_answer_end(sl_drv_req_t *rq)
{
    sl_http_header_t h[16];
    size_t n = 0;

    h[n++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("application/json") };
    n += sl__drv_headers(rq, &h[n]);
    sl__drv_log(rq, rq->end_status);
    if (sl__drv_responses_hold(rq, NULL, &rq->end_body, rq->end_status, h, n, rq->end_native)) {
        return; /* stored first, then answered */
    }
    rq->done = true;
    sl__drv_finish_respond(rq, rq->end_status, h, n, &rq->end_body);
}


/*
 * An output check blocked the answer before the commit point: the target
 * did its job (it is not failed over, and the usage is recorded), the
 * client gets the guardrail's error.
 */
static void
attempt_guard_block(sl_drv_attempt_t *a, const sl_usage_t *usage, const sl_error_t *e)
{
    sl_drv_req_t *rq = a->rq;

    sl_usage_t u = *usage; /* usage may live in the attempt */

    rq->served = a->call.target;
    attempt_report(a, true, 0);
    sl__drv_keep_error(rq, e);
    attempt_close(a);
    /* the row with the usage first; the error's own record then finds it written */
    sl__drv_record(rq, rq->end_error.status, &u, attempt_guard_block_end);
}


static void
attempt_guard_block_end(sl_drv_req_t *rq)
{
    sl__drv_error(rq, &rq->end_error);
}


/* The stream ended cleanly: the row, then the end marker. */
static void
attempt_stream_end(sl_drv_attempt_t *a)
{
    sl_drv_req_t *rq = a->rq;

    sl__drv_usage(rq, &a->st, &rq->end_usage);
    rq->served_model = a->st.served_model;
    if (a->rt->state != NULL) {
        sl_state_latency_record(a->rt->state, (sl_clock_ns() - a->start_ns) / 1000,
                                (a->first_output_ns - a->start_ns) / 1000);
    }
    attempt_halt(a);
    /* the ledger row (and a stored response) is committed before the stream's last bytes go out */
    sl__drv_responses_stage_stream(rq, a->fe_state, &rq->end_usage, &a->out, a->call.forwarded);
    sl__drv_record(rq, 200, &rq->end_usage, attempt_stream_end_write);
}


static void
attempt_stream_end_write(sl_drv_req_t *rq)
{
    sl_drv_attempt_t *a = rq->att;
    sl_buf_t tail;
    bool held;

    rq->fe->encode_end(a->fe_state, &rq->end_usage, &a->out);
    held = sl__drv_responses_hold(rq, a->fe_state, &a->out, 200, NULL, 0, a->call.forwarded);
    tail = a->out; /* the end marker goes with the body's end: one write */
    a->out = (sl_buf_t) SL_BUF_INIT;
    sl__drv_log(rq, 200);
    attempt_close(a);
    if (!held) {
        sl__drv_finish_with(rq, tail.p, tail.len);
    } else if (tail.len > 0) {
        sl_http_write(rq->r, tail.p, tail.len);
    }
    sl_buf_free(&tail);
}


void
sl__drv_stream_fail(sl_drv_req_t *rq, const sl_error_t *e)
{
    sl_drv_attempt_t *a = rq->att;

    SL_ASSERT(rq->committed && rq->streaming && !rq->recording);
    sl_metric_add(SL_METRIC_STREAMS_BROKEN, 1);
    sl__drv_usage(rq, a != NULL ? &a->st : NULL, &rq->end_usage);
    if (a != NULL && a->st.served_model != NULL) {
        rq->served_model = a->st.served_model;
    }
    if (a != NULL) {
        attempt_halt(a); /* nothing more from upstream; the encoder stays for the error */
    }
    sl__drv_keep_error(rq, e);
    sl__drv_record(rq, e->status >= 500 ? 502 : e->status, &rq->end_usage,
                   attempt_stream_fail_write);
}


/* The broken stream's row is committed: its in-band error, never a clean end. */
static void
attempt_stream_fail_write(sl_drv_req_t *rq)
{
    sl_drv_attempt_t *a = rq->att;
    sl_buf_t out = SL_BUF_INIT;

    rq->fe->encode_stream_error(a != NULL ? a->fe_state : NULL, &rq->end_error, &out);
    if (out.len > 0) {
        sl_http_write(rq->r, out.p, out.len);
    }
    sl_buf_free(&out);
    sl__drv_log(rq, 502);
    if (a != NULL) {
        attempt_close(a);
    }
    sl__drv_finish(rq);
}


/* A connection-level failure: refused, reset, TLS, DNS, timeout. */
static void
attempt_fail_transport(sl_drv_attempt_t *a, int rc)
{
    sl_drv_req_t *rq = a->rq;
    const sl_provider_conf_t *p = a->call.target->provider;
    sl_error_t e = { .type = "api_error", .retryable = true };
    sl_fail_e fail;

    sl_metric_add(SL_METRIC_UPSTREAM_ERRORS, 1);
    if (rc == SL_ETIMEOUT) {
        fail = SL_FAIL_TIMEOUT;
        e.status = 504;
        e.type = "timeout_error";
        e.code = "upstream_timeout";
        e.message = sl_psprintf(rq->r->pool, "provider \"%s\" (%s:%u) did not answer in time",
                                p->name, p->host, (unsigned) p->port);
    } else {
        /* broken once the response began, or no connection at all */
        fail = a->status != 0 ? SL_FAIL_CUT : SL_FAIL_CONNECT;
        e.status = 502;
        e.code = "upstream_error";
        e.message = sl_psprintf(rq->r->pool, "provider \"%s\" (%s:%u) failed: %s", p->name, p->host,
                                (unsigned) p->port, sl_strerror(rc));
    }
    sl_log(&rq->r->log, SL_LOG_WARN, rc, "provider \"%s\" (%s:%u) failed", p->name, p->host,
           (unsigned) p->port);
    attempt_fail(a, fail, 0, &e);
}


/*
 * An attempt failed before the commit point: tell the shared state, throw
 * the attempt away and decide what comes next (the same target after a
 * wait, the next target, or the client gets the error). fail and status
 * say what happened (core/gateway/retry.h); e is what the client gets if this was
 * the last attempt.
 */
static void
attempt_fail(sl_drv_attempt_t *a, sl_fail_e fail, int status, const sl_error_t *e)
{
    sl_drv_req_t *rq = a->rq;
    const sl_routing_conf_t *rc = rq->routing;
    unsigned bits = sl_retry_classify(rc->retry_on, fail, status);
    uint64_t now = sl_state_now();
    uint64_t wait = 0;
    uint64_t ra = e->retry_after != 0 ? e->retry_after : a->retry_after;

    SL_ASSERT(!rq->committed);
    attempt_report(a, false, bits);
    if ((bits & SL_RETRY_COOLDOWN) && a->cred >= 0) {
        const sl_provider_conf_t *p = a->call.target->provider;
        uint64_t other;

        /* this credential rests until the provider's Retry-After (1 s when it gave none) */
        sl_state_cred_cool(sl_state_cred(p->name, p->api_keys[a->cred].ref),
                           now + (ra != 0 ? ra : 1000));
        if (sl_router_credential(p, now, NULL, NULL, &other) >= 0 && other == 0) {
            ra = 0; /* another credential is free: no need to wait for this one */
        }
    }
    rq->last_error = *e;
    rq->have_error = true;
    rq->retry_after = a->retry_after_text;
    sl__drv_obs_attempt_fail(rq, a->span, a->status != 0 ? a->status : status, e);
    attempt_close(a);
    if ((bits & SL_RETRY_SAME) && rq->tries <= rc->retries
        && sl_state_budget_retry(now, rc->retry_budget)) {
        wait = sl_retry_backoff(rc, rq->tries - 1, NULL, NULL);
        if (ra > wait) {
            wait = ra;
        }
        if (wait > rc->max_wait) {
            wait = 0;
            bits &= ~SL_RETRY_SAME; /* too long to wait here: the next target instead */
        }
    } else {
        bits &= ~SL_RETRY_SAME;
    }
    if (!(bits & SL_RETRY_SAME)) {
        if (!(bits & SL_RETRY_NEXT)) {
            attempt_give_up(rq);
            return;
        }
        rq->ti++;
        rq->tries = 0;
        wait = 0;
    }
    if (rq->ti >= rq->plan.norder
        || (rc->deadline > 0 && now + wait >= rq->start_ms + rc->deadline)) {
        attempt_give_up(rq);
        return;
    }
    sl__drv_obs_attempt_next(a->span, (bits & SL_RETRY_SAME) ? "retry" : "fallback", wait);
    rq->timer = sl_timer_start(rq->d->loop, wait, attempt_on_wait, rq);
}


static void
attempt_on_wait(void *data)
{
    sl_drv_req_t *rq = data;

    rq->timer = NULL;
    sl__drv_attempt_next(rq);
}


/* Every attempt failed (or one that must not be retried): the last error. */
static void
attempt_give_up(sl_drv_req_t *rq)
{
    if (!rq->have_error) {
        rq->last_error = (sl_error_t){
            .status = 503,
            .type = "api_error",
            .code = "no_target_available",
            .message = "No target of this model is available right now.",
        };
    }
    if (rq->last_error.status >= 500 || rq->last_error.status == 429) {
        sl_alerts_model_failed(rq->public_model, rq->last_error.status, rq->attempts);
    }
    sl__drv_error(rq, &rq->last_error);
}


static const char *
attempt_served_model(sl_drv_attempt_t *a, sl_str_t lit)
{
    sl_str_t s;

    if (lit.len < 2 || sl_jstr_decode(a->rq->r->pool, lit, &s) < 0) {
        return NULL;
    }
    return sl_pstrndup(a->rq->r->pool, s.p, s.len);
}
