/*
 * The response cache's driver phases (core/gateway/cache.h has what a key
 * is made of, storage/cache.h the store):
 *
 *  - prepare, after decode: whether the cache applies (cache.enabled, the
 *    model's cache:, Cache-Control no-store / no-cache / max-age);
 *  - lookup, after the policy phase and before the plan: the exact key,
 *    computed off the loop for a large body, then one short read
 *    transaction; a hit is replayed at once, without planning, reserving
 *    or touching jansson; a miss may go on to the semantic lookup
 *    (cache_semantic.c);
 *  - while a miss is served: the typed events of a stream are gathered,
 *    a JSON answer is kept;
 *  - record: the ledger row says hit, semantic, miss or bypass (a hit has
 *    cost 0 and saved_usd, the price of the answer it replaced); then a
 *    complete 200 answer is filled in the thread pool, never holding the
 *    response.
 *
 * A hit counts against the key's rpm like any request; it uses no tokens
 * (tpm) and no budget, and is served even when those are spent.
 */
#include "core/gateway/cache_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/admin/metrics.h"
#include "core/admin/tail.h"
#include "core/base/clock.h"
#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/gateway/pricing.h"

#define CACHE_KEY_VERSION "sluice-cache-1"
#define CACHE_MAX_HEADERS 24

/* One fill, handed to the thread pool: owns copies of everything it writes. */
typedef struct cache_fill {
    uv_work_t work;
    sl_db_t *db;
    size_t cap;
    sl_cache_entry_t e;
    sl_cache_vec_t vec;
    size_t evicted;
    int rc;
    char data[]; /* strings, the answer, the vector and the words */
} cache_fill_t;

static const char *cache_scope(sl_drv_req_t *rq);
static int cache_key(sl_drv_req_t *rq);
static void cache_key_work(uv_work_t *w);
static void cache_key_done(uv_work_t *w, int status);
static int cache_keyed(sl_drv_req_t *rq);
static bool cache_guarded(const sl_drv_req_t *rq);
static void cache_respond(sl_drv_req_t *rq, void *st, const sl_http_header_t *h, size_t n,
                          sl_buf_t *out);
static int64_t cache_now_ns(void);
static char *cache_copy(char **at, const char *s);
static void cache_fill_work(uv_work_t *w);
static void cache_fill_done(uv_work_t *w, int status);
static void cache_hit_end(sl_drv_req_t *rq);

/* Client headers that change an answer, so they are part of the key. */
static const char *const cache_key_headers[] = { "anthropic-version", "anthropic-beta",
                                                 "openai-beta" };


void
sl__cache_prepare(sl_drv_req_t *rq)
{
    const sl_conf_t *conf = rq->r->conf;
    const sl_model_conf_t *m = sl_conf_model(conf, rq->public_model, strlen(rq->public_model));
    const sl_str_t *h;
    struct sl_cache_req *c;
    sl_cache_cc_t cc;
    bool on;

    if (m != NULL && m->cache != SL_MODEL_CACHE_DEFAULT) {
        on = m->cache == SL_MODEL_CACHE_ON;
    } else {
        on = conf->cache.enabled;
    }
    if (!on || rq->d->db == NULL || rq->fe->encode_answer == NULL) {
        return;
    }
    memset(&cc, 0, sizeof(cc));
    h = sl_http_req_header(rq->r, "cache-control");
    if (h != NULL) {
        sl_cache_cc_parse(*h, &cc);
    }
    if (cc.no_store) {
        return; /* neither read nor written: bypass */
    }
    c = sl_pcalloc(rq->r->pool, sizeof(*c));
    c->status = "miss";
    c->model = m;
    c->cc = cc;
    c->lookup = !cc.no_cache;
    c->store = true;
    c->ttl = m != NULL && m->cache_ttl != 0 ? m->cache_ttl : conf->cache.ttl;
    rq->cache = c;
}


bool
sl__cache_may_hit(const sl_drv_req_t *rq)
{
    /* fixed when prepared: the limits taken before the lookup and after it must agree */
    return rq->cache != NULL && !rq->cache->cc.no_cache;
}


sl_str_t
sl__cache_status(const sl_drv_req_t *rq)
{
    const char *s = rq->cache != NULL ? rq->cache->status : "bypass";

    return (sl_str_t){ s, strlen(s) };
}


/*
 * Who may read what this request fills: the client key (a stored key by
 * its id, a key of auth.static_keys by a hash of it), its team, or
 * everyone.
 */
static const char *
cache_scope(sl_drv_req_t *rq)
{
    const sl_acct_t *a = &rq->acct;
    uint8_t h[SL_CRYPTO_SHA256_LEN];
    char hex[2 * SL_CRYPTO_SHA256_LEN + 1];
    sl_str_t cred;

    switch (rq->r->conf->cache.scope) {
    case SL_CACHE_SCOPE_GLOBAL:
        return "g";
    case SL_CACHE_SCOPE_TEAM:
        if (a->team != NULL && a->team[0] != '\0') {
            return sl_psprintf(rq->r->pool, "t:%s", a->team);
        }
        break; /* a key without a team shares with nobody */
    default:
        break;
    }
    if (a->key_id != NULL && a->key_id[0] != '\0') {
        return sl_psprintf(rq->r->pool, "k:%s", a->key_id);
    }
    cred = sl_http_req_credential(rq->r);
    sl_crypto_sha256(cred.p, cred.len, h);
    sl_crypto_hex(h, 16, hex);
    return sl_psprintf(rq->r->pool, "s:%s", hex);
}


/* The exact key: see core/gateway/cache.h. Returns 0 or SL_EPARSE. */
static int
cache_key(sl_drv_req_t *rq)
{
    static const char *const skip[] = { "stream", "stream_options", NULL };
    struct sl_cache_req *c = rq->cache;
    sl_buf_t b = SL_BUF_INIT;
    int rc;

    c->scope = cache_scope(rq);
    sl_buf_printf(&b, "%s\n%s\n%s\n", CACHE_KEY_VERSION, sl_api_name(rq->call.client_api),
                  c->scope);
    sl_buf_printf(&b, "%zu:", strlen(rq->public_model));
    sl_buf_puts(&b, rq->public_model);
    sl__cache_key_headers(rq, &b);
    rc = sl_cache_canonical(rq->call.native_doc, SL_JSON_ROOT, skip, -1, rq->r->pool, &b);
    if (rc == 0) {
        sl_crypto_sha256(b.p, b.len, c->key);
    }
    sl_buf_free(&b);
    return rc;
}


void
sl__cache_key_headers(sl_drv_req_t *rq, sl_buf_t *b)
{
    for (size_t i = 0; i < sizeof(cache_key_headers) / sizeof(cache_key_headers[0]); i++) {
        const sl_str_t *h = sl_http_req_header(rq->r, cache_key_headers[i]);

        if (h != NULL) {
            sl_buf_printf(b, "\nh%zu:%zu:", i, h->len);
            sl_buf_append(b, h->p, h->len);
        }
    }
    sl_buf_puts(b, "\n");
}


/* True when the guardrails redacted rq's input or filter its answer. */
static bool
cache_guarded(const sl_drv_req_t *rq)
{
    const sl_guard_decision_t *d;
    size_t n = 0;

    if (rq->guard == NULL) {
        return false;
    }
    if (sl_guard_filters_output(rq->guard)) {
        return true;
    }
    d = sl_guard_decisions(rq->guard, &n);
    for (size_t i = 0; i < n; i++) {
        if (d[i].action == SL_GUARD_REDACT) {
            return true;
        }
    }
    return false;
}


int
sl__cache_lookup(sl_drv_req_t *rq)
{
    struct sl_cache_req *c = rq->cache;

    if (c == NULL) {
        return 0;
    }
    if (cache_guarded(rq)) {
        /*
         * a redacted request's placeholders stand for this request's text
         * only, and an answer the guardrails rewrite or may cut must pass
         * them: neither served from nor kept in the cache
         */
        c->lookup = false;
        c->store = false;
        c->status = "bypass";
        return 0;
    }
    if (rq->r->body.len >= SL_DRV_OFFLOOP_BYTES) {
        /* the canonical form of a large body is the decoder's kind of work: off the loop */
        rq->working = true;
        c->work.data = rq;
        if (uv_queue_work(rq->d->loop, &c->work, cache_key_work, cache_key_done) == 0) {
            return 1;
        }
        rq->working = false;
    }
    c->keyed = cache_key(rq) == 0;
    return cache_keyed(rq);
}


/* Thread pool: the key of a large body (the request waits). */
static void
cache_key_work(uv_work_t *w)
{
    sl_drv_req_t *rq = w->data;

    rq->cache->keyed = cache_key(rq) == 0;
}


static void
cache_key_done(uv_work_t *w, int status)
{
    sl_drv_req_t *rq = w->data;

    (void) status;
    rq->working = false;
    if (rq->gone) {
        sl__drv_gone(rq);
        return;
    }
    if (cache_keyed(rq) == 0) {
        sl__drv_proceed(rq);
    }
}


/* With the key: the exact lookup, then the semantic one. Returns as sl__cache_lookup. */
static int
cache_keyed(sl_drv_req_t *rq)
{
    struct sl_cache_req *c = rq->cache;

    if (!c->keyed) {
        /* a body the canonical form refuses: served, not cached */
        c->lookup = false;
        c->store = false;
        c->status = "bypass";
        return 0;
    }
    if (c->lookup && sl__cache_read(rq, c->key) == 0 && sl__cache_hit(rq, false) == 0) {
        return 1;
    }
    if (sl__cache_semantic(rq) == SL_ASYNC) {
        return 1;
    }
    if (c->lookup) {
        sl__cache_missed(rq);
    }
    return 0;
}


void
sl__cache_missed(sl_drv_req_t *rq)
{
    rq->cache->status = "miss";
    sl_metrics_cache_lookup(false, false);
}


static int64_t
cache_now_ns(void)
{
    return (int64_t) sl_clock_real_ns();
}


int
sl__cache_read(sl_drv_req_t *rq, const uint8_t key[SL_CACHE_KEY_LEN])
{
    struct sl_cache_req *c = rq->cache;
    int64_t now = cache_now_ns();
    sl_txn_t *t;
    int64_t age;
    int rc;

    rc = sl_db_read(rq->d->db, &t);
    if (rc != 0) {
        return SL_ENOTFOUND;
    }
    rc = sl_cache_get(t, key, now / 1000000000, rq->r->pool, &c->entry);
    sl_db_abort(t);
    if (rc != 0) {
        return SL_ENOTFOUND;
    }
    age = (now - c->entry.created_ns) / 1000000000;
    if (age < 0) {
        age = 0;
    }
    /* the model's ttl may have been shortened by a reload since the fill */
    if ((uint64_t) (now - c->entry.created_ns) / 1000000 >= c->ttl
        || (c->cc.max_age && (uint64_t) age > c->cc.max_age_s)
        || c->entry.api != (uint32_t) rq->call.client_api) {
        return SL_ENOTFOUND;
    }
    c->age = age;
    return 0;
}


int
sl__cache_hit(sl_drv_req_t *rq, bool semantic)
{
    struct sl_cache_req *c = rq->cache;
    const sl_cache_entry_t *e = &c->entry;
    sl_http_req_t *r = rq->r;
    const sl_frontend_t *fe = rq->fe;
    sl_http_header_t h[CACHE_MAX_HEADERS];
    sl_buf_t out = SL_BUF_INIT;
    sl_answer_t ans;
    const char *age, *v, *why = NULL;
    void *st = NULL;
    size_t n = 0;

    if (sl_cache_answer_decode(e->body, r->pool, &ans) != 0) {
        return SL_EPARSE;
    }
    if (rq->call.stream && fe->stream_open != NULL) {
        sl_evs_t evs;

        st = fe->stream_open(&rq->call);
        memset(&evs, 0, sizeof(evs));
        evs.pool = r->pool;
        sl_cache_replay_events(&ans, &evs);
        fe->encode_events(st, &evs, &out);
        fe->encode_end(st, &ans.usage, &out);
        h[n++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("text/event-stream") };
        h[n++] = (sl_http_header_t){ sl_str_lit("cache-control"), sl_str_lit("no-cache") };
    } else {
        if (fe->encode_answer(&rq->call, &ans, &out) != 0) {
            sl_buf_free(&out);
            return SL_EPARSE;
        }
        h[n++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("application/json") };
    }

    /* a hit spends nothing, but a key (or team) whose budget is spent gets no answer at all */
    if (sl_acct_spent_out(rq->d->db, r->conf, &rq->acct, r->pool, &why) == SL_EDENIED) {
        sl_buf_free(&out);
        sl_metric_add(SL_METRIC_BUDGET_DENIED, 1);
        sl__drv_error_new(rq, 429, "insufficient_quota", "insufficient_quota", NULL, why);
        return 0;
    }
    /* a hit is a request: it has its row (and an intent), so it is admitted like one */
    if (sl_acct_admit(rq->d->db, r->conf, &rq->acct, &rq->call) == SL_EFULL) {
        sl_buf_free(&out);
        sl__drv_error_new(rq, 503, "api_error", "storage_full", NULL,
                          "The gateway's usage ledger is full, so it cannot record this request. "
                          "Try again later.");
        return 0;
    }
    c->hit = true;
    c->semantic_hit = semantic;
    c->status = semantic ? "semantic" : "hit";
    sl_tail_text_answer(rq->tail_text, r->pool, &ans); /* the live tail (dashboard.tail_text) */
    sl_metrics_cache_lookup(true, semantic);           /* its savings reach /metrics with the row */

    n += sl__drv_headers(rq, &h[n]);
    h[n++] =
        (sl_http_header_t){ sl_str_lit("x-sluice-provider"), { e->provider, strlen(e->provider) } };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-model"),
                                 { e->target_model, strlen(e->target_model) } };
    v = c->status;
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-cache"), { v, strlen(v) } };
    age = sl_psprintf(r->pool, "%lld", (long long) c->age);
    h[n++] = (sl_http_header_t){ sl_str_lit("age"), { age, strlen(age) } };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-attempts"), sl_str_lit("0") };

    /* the row is committed before the answer's bytes go out, as for any request */
    c->hit_st = st;
    c->hit_h = sl_palloc(r->pool, n * sizeof(*h));
    memcpy(c->hit_h, h, n * sizeof(*h));
    c->hit_n = n;
    rq->end_body = out;
    sl__drv_record(rq, 200, NULL, cache_hit_end);
    return 0;
}


/*
 * Sends a hit's answer (out, the whole of it). A hit on /v1/responses is a
 * response of its own (its id is this request's): it is stored before its
 * last bytes go out, like any, so it can be retrieved and chained.
 */
static void
cache_respond(sl_drv_req_t *rq, void *st, const sl_http_header_t *h, size_t n, sl_buf_t *out)
{
    if (st == NULL) {
        if (!sl__drv_responses_hold(rq, NULL, out, 200, h, n, false)) {
            sl__drv_finish_respond(rq, 200, h, n, out);
        }
        return;
    }
    if (rq->call.client_api != SL_API_RESPONSES) {
        sl__drv_finish_respond(rq, 200, h, n, out);
        return;
    }
    /* as a stream's end: the headers wait with the events for the store (one write) */
    sl_http_start(rq->r, 200, h, n);
    if (!sl__drv_responses_hold(rq, st, out, 200, NULL, 0, false)) {
        sl_buf_t b = *out; /* out may live in rq (rq->end_body), which the finish releases */

        memset(out, 0, sizeof(*out));
        sl__drv_finish_with(rq, b.p, b.len);
        sl_buf_free(&b);
    }
}


/* The hit's row is committed: its answer. */
static void
cache_hit_end(sl_drv_req_t *rq)
{
    struct sl_cache_req *c = rq->cache;

    sl__drv_log(rq, 200);
    cache_respond(rq, c->hit_st, c->hit_h, c->hit_n, &rq->end_body);
}


void
sl__cache_events(sl_drv_req_t *rq, const void *a, const sl_evs_t *evs)
{
    struct sl_cache_req *c = rq->cache;

    if (c == NULL || !c->store || evs->n == 0) {
        return;
    }
    if (c->acc == NULL) {
        c->acc = sl_cache_acc_create(rq->r->pool);
    }
    if (c->owner != a) {
        /* an attempt thrown away before the commit point leaves nothing behind */
        sl_cache_acc_reset(c->acc);
        c->owner = a;
    }
    sl_cache_acc_add(c->acc, evs);
}


void
sl__cache_answer(sl_drv_req_t *rq, const sl_answer_t *ans)
{
    struct sl_cache_req *c = rq->cache;
    sl_answer_t a;
    sl_buf_t b = SL_BUF_INIT;
    char *p;

    if (c == NULL || !c->store) {
        return;
    }
    a = *ans;
    if (rq->call.client_api == SL_API_EMBEDDINGS) {
        if (a.raw.p == NULL || a.raw_api != SL_API_EMBEDDINGS) {
            return; /* embeddings travel as the provider's bytes only */
        }
    } else {
        if (a.nchoices == 0) {
            return;
        }
        a.raw = sl_str_null; /* kept typed: it replays in any shape */
    }
    sl_cache_answer_encode(&a, &b);
    p = sl_palloc(rq->r->pool, b.len);
    memcpy(p, b.p, b.len);
    c->answer = (sl_str_t){ p, b.len };
    sl_buf_free(&b);
}


bool
sl__cache_stores(const sl_drv_req_t *rq)
{
    return rq->cache != NULL && rq->cache->store;
}


void
sl__cache_row(sl_drv_req_t *rq, sl_ledger_row_t *row)
{
    struct sl_cache_req *c = rq->cache;

    row->cache = c != NULL ? c->status : "bypass";
    if (c == NULL || !c->hit) {
        return;
    }
    row->flags |= SL_LEDGER_CACHE_HIT | (c->semantic_hit ? SL_LEDGER_CACHE_SEMANTIC : 0);
    row->saved_nusd = c->entry.cost_nusd;
    row->provider = c->entry.provider;
    row->served_model =
        c->entry.served_model[0] != '\0' ? c->entry.served_model : c->entry.target_model;
    row->attempts = 0;
}


/* Copies s (NUL included) to *at and moves it on; returns the copy. */
static char *
cache_copy(char **at, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = *at;

    memcpy(p, s, n);
    *at += n;
    return p;
}


void
sl__cache_fill(sl_drv_req_t *rq, int status, const sl_usage_t *usage)
{
    struct sl_cache_req *c = rq->cache;
    const sl_conf_t *conf = rq->r->conf;
    const sl_target_t *t = rq->served;
    const sl_acct_t *ac = &rq->acct;
    const char *served = rq->served_model != NULL ? rq->served_model : "";
    sl_answer_t ans;
    sl_buf_t b = SL_BUF_INIT;
    sl_str_t body;
    cache_fill_t *f;
    uint64_t cost = 0;
    size_t size, vbytes = 0, cap;
    bool vec;
    char *at;
    int64_t now;

    if (c == NULL || !c->store || c->hit || status != 200 || t == NULL) {
        return;
    }
    c->store = false; /* once */
    if (c->answer.p != NULL) {
        body = c->answer;
        vec = c->vector;
        if (vec && sl_cache_answer_decode(body, rq->r->pool, &ans) == 0) {
            for (size_t i = 0; i < ans.nchoices; i++) {
                vec &= ans.choices[i].ntools == 0;
            }
        }
    } else if (c->acc != NULL && sl_cache_acc_answer(c->acc, usage, &ans) == 0) {
        sl_cache_answer_encode(&ans, &b);
        body = (sl_str_t){ b.p, b.len };
        vec = c->vector;
        for (size_t i = 0; i < ans.nchoices; i++) {
            vec &= ans.choices[i].ntools == 0; /* a tool call answers these words, not others */
        }
    } else {
        return; /* an interrupted stream, or nothing to keep */
    }
    if (conf->pricing != NULL && usage != NULL
        && sl_pricing_cost(conf->pricing, t->provider->name, t->provider->kind, t->model, usage,
                           &cost)
               != 0) {
        cost = 0;
    }
    if (vec) {
        vbytes = 4 * (size_t) c->vec.dims + 4 * (size_t) c->vec.nwords + 8;
    }
    size = sizeof(*f) + body.len + vbytes + strlen(rq->public_model) + strlen(ac->key_id)
           + strlen(ac->key_name) + strlen(ac->team) + strlen(t->provider->name) + strlen(t->model)
           + strlen(served) + 8;
    f = malloc(size);
    if (f == NULL) {
        sl_buf_free(&b);
        return;
    }
    memset(f, 0, sizeof(*f));
    at = f->data;
    if (vec) {
        /* first, so the floats and words are aligned */
        f->vec = c->vec;
        f->vec.v = (const float *) (void *) at;
        memcpy(at, c->vec.v, 4 * (size_t) c->vec.dims);
        at += 4 * (size_t) c->vec.dims;
        f->vec.words = (const uint32_t *) (void *) at;
        if (c->vec.nwords > 0) {
            memcpy(at, c->vec.words, 4 * (size_t) c->vec.nwords);
        }
        at += 4 * (size_t) c->vec.nwords;
        f->e.vec = &f->vec;
    }
    memcpy(at, body.p, body.len);
    f->e.body = (sl_str_t){ at, body.len };
    at += body.len;
    sl_buf_free(&b);
    f->e.model = cache_copy(&at, rq->public_model);
    f->e.key_id = cache_copy(&at, ac->key_id);
    f->e.key_name = cache_copy(&at, ac->key_name);
    f->e.team = cache_copy(&at, ac->team);
    f->e.provider = cache_copy(&at, t->provider->name);
    f->e.target_model = cache_copy(&at, t->model);
    f->e.served_model = cache_copy(&at, served);
    memcpy(f->e.key, c->key, SL_CACHE_KEY_LEN);
    now = cache_now_ns();
    f->e.created_ns = now;
    f->e.expires = now / 1000000000 + (int64_t) ((c->ttl + 999) / 1000);
    f->e.cost_nusd = cost;
    f->e.api = (uint32_t) rq->call.client_api;
    /* the cache never takes more than half of what the map may grow to */
    cap = conf->storage_map_size * 8;
    f->cap = conf->cache.max_size < cap ? conf->cache.max_size : cap;
    f->db = rq->d->db;
    f->work.data = f;
    if (uv_queue_work(rq->d->loop, &f->work, cache_fill_work, cache_fill_done) != 0) {
        free(f);
    }
}


/* Thread pool: one short write transaction (evictions, then the entry). */
static void
cache_fill_work(uv_work_t *w)
{
    cache_fill_t *f = w->data;

    f->rc = sl_cache_put(f->db, &f->e, f->cap, &f->evicted);
}


static void
cache_fill_done(uv_work_t *w, int status)
{
    cache_fill_t *f = w->data;

    (void) status;
    sl_metric_add(SL_METRIC_CACHE_EVICTIONS, f->evicted);
    if (f->rc == 0) {
        sl_metric_add(SL_METRIC_CACHE_FILLS, 1);
    } else if (f->rc != SL_EFULL) {
        sl_log(NULL, SL_LOG_WARN, f->rc, "response cache: storing an answer of model \"%s\" failed",
               f->e.model);
    }
    free(f);
}
