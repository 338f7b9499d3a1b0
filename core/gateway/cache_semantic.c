/*
 * The semantic cache (cache.semantic): after the exact lookup missed, the
 * last user turn is embedded through the configured target, with the
 * normal upstream client and that provider's adapter (an embeddings
 * request of the gateway's own, recorded in the ledger under the key name
 * "sluice" with the gateway flag), and the request's partition (scope,
 * model, frontend) is scanned for a vector at least cache.semantic.threshold
 * close whose context (everything but that turn's text: system prompt,
 * earlier turns, parameters) is the same and whose content words are the
 * same (core/gateway/cache.h). The first SL_CACHE_INLINE_SCAN vectors are
 * compared on the loop; a larger partition is scanned in the thread pool.
 *
 * Whatever goes wrong here (the embedding provider fails, an answer without
 * a vector) only costs the semantic lookup: the request goes on as a miss.
 */
#include "core/gateway/cache_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/gateway/state.h"

#define CACHE_PROMPT_MAX   (32u * 1024)        /* longer prompts are not embedded */
#define CACHE_EMBED_MAX    (16u * 1024 * 1024) /* an embeddings answer larger than this fails */
#define CACHE_WARN_EVERY   10000               /* ms between two warnings of one worker */
#define CACHE_SEMANTIC_TAG "sluice-semantic-1"

/* The gateway's own embeddings call for one request. */
typedef struct cache_embed {
    sl_drv_req_t *rq;
    sl_call_t call;
    const sl_target_t *target;
    sl_upstream_call_t *uc; /* in flight; cancelled if the request ends first */
    int status;
    sl_buf_t body;
    uint64_t start_ns;
    uint64_t first_byte_us;
} cache_embed_t;

static int cache_embed_start(sl_drv_req_t *rq);
static void cache_embed_release(void *arg);
static void cache_embed_on_headers(sl_upstream_call_t *uc, int status,
                                   const sl_http_header_t *headers, size_t nheaders, void *data);
static void cache_embed_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
static void cache_embed_on_done(sl_upstream_call_t *uc, int rc, void *data);
static void cache_embed_done(cache_embed_t *e, int rc);
static int cache_embed_vector(sl_drv_req_t *rq, sl_str_t raw);
static void cache_embed_record(cache_embed_t *e, int status, const sl_usage_t *usage);
static void cache_embed_recorded(void *arg);
static void cache_semantic_match(sl_drv_req_t *rq);
static void cache_match_work(uv_work_t *w);
static void cache_match_done(uv_work_t *w, int status);
static void cache_semantic_decide(sl_drv_req_t *rq);
static void cache_query(sl_drv_req_t *rq, sl_cache_query_t *q);
static void cache_warn(sl_drv_req_t *rq, int rc, const char *what);

static const sl_upstream_cbs_t cache_embed_cbs = {
    cache_embed_on_headers,
    cache_embed_on_body,
    cache_embed_on_done,
    NULL,
};

static uint64_t cache_warned_at; /* this worker's last warning, sl_state_now() ms */


int
sl__cache_semantic(sl_drv_req_t *rq)
{
    struct sl_cache_req *c = rq->cache;
    const sl_conf_t *conf = rq->r->conf;
    int content = -1;
    sl_str_t text;

    if (!conf->cache.semantic || (c->model != NULL && c->model->cache_no_semantic)
        || rq->call.client_api == SL_API_EMBEDDINGS) {
        return 0;
    }
    if (sl_cache_prompt(rq->call.doc, conf->cache.max_messages, rq->r->pool, &content, &text) != 0
        || text.len > CACHE_PROMPT_MAX) {
        return 0; /* tool turns, long conversations, images: exact lookups only */
    }
    if (sl__cache_semantic_ids(rq, content, c->vec.part, c->vec.ctx) != 0) {
        return 0;
    }
    sl_cache_words(text, rq->r->pool, SL_CACHE_WORDS_MAX, &c->words, &c->vec.nwords);
    c->vec.words = c->words;
    c->prompt = text;
    c->semantic = true;
    return cache_embed_start(rq) == 0 ? SL_ASYNC : 0;
}


int
sl__cache_semantic_ids(sl_drv_req_t *rq, int content, uint8_t part[SL_CACHE_PART_LEN],
                       uint8_t ctx[SL_CACHE_CTX_LEN])
{
    static const char *const skip[] = { "stream", "stream_options", NULL };
    static const char *const skip_native[] = { "stream", "stream_options", "messages", "input",
                                               NULL };
    struct sl_cache_req *c = rq->cache;
    uint8_t h[SL_CRYPTO_SHA256_LEN];
    sl_buf_t b = SL_BUF_INIT;
    int rc;

    sl_buf_printf(&b, "%s\n%s\n%s\n%zu:", CACHE_SEMANTIC_TAG, sl_api_name(rq->call.client_api),
                  c->scope, strlen(rq->public_model));
    sl_buf_puts(&b, rq->public_model);
    sl_crypto_sha256(b.p, b.len, h);
    memcpy(part, h, SL_CACHE_PART_LEN);

    /* the context: the chat without the last turn's text, the client's own fields, headers */
    sl_buf_clear(&b);
    sl_buf_append(&b, "ctx\n", 4);
    sl__cache_key_headers(rq, &b);
    rc = sl_cache_canonical(rq->call.doc, SL_JSON_ROOT, skip, content, rq->r->pool, &b);
    if (rc == 0 && rq->call.native_doc != rq->call.doc) {
        sl_buf_append(&b, "\nnative\n", 8);
        rc =
            sl_cache_canonical(rq->call.native_doc, SL_JSON_ROOT, skip_native, -1, rq->r->pool, &b);
    }
    if (rc == 0) {
        sl_crypto_sha256(b.p, b.len, h);
        memcpy(ctx, h, SL_CACHE_CTX_LEN);
    }
    sl_buf_free(&b);
    return rc;
}


/* Sends the embeddings request. Returns 0 (the answer comes to cache_embed_done) or an error. */
static int
cache_embed_start(sl_drv_req_t *rq)
{
    struct sl_cache_req *c = rq->cache;
    const sl_target_t *t = &rq->r->conf->cache.embedding;
    const sl_provider_conf_t *p = t->provider;
    sl_pool_t *pool = rq->r->pool;
    sl_upstream_req_t ureq;
    sl_json_t *doc;
    cache_embed_t *e;
    sl_buf_t b = SL_BUF_INIT;
    uint64_t wait = 0;
    char *raw;
    int cred, rc;

    sl_buf_puts(&b, "{\"model\":");
    sl_json_quote(&b, (sl_str_t){ t->model, strlen(t->model) });
    sl_buf_puts(&b, ",\"input\":");
    sl_json_quote(&b, c->prompt);
    sl_buf_puts(&b, "}");
    raw = sl_palloc(pool, b.len + 1);
    memcpy(raw, b.p, b.len);
    raw[b.len] = '\0';

    e = sl_pcalloc(pool, sizeof(*e));
    e->rq = rq;
    e->target = t;
    e->body = (sl_buf_t) SL_BUF_INIT;
    e->start_ns = uv_hrtime();
    e->call.pool = pool;
    e->call.api = SL_API_EMBEDDINGS;
    e->call.client_api = SL_API_EMBEDDINGS;
    e->call.raw = (sl_str_t){ raw, b.len };
    sl_buf_free(&b);
    doc = sl_json_create(pool);
    if (sl_json_parse(doc, e->call.raw.p, e->call.raw.len, NULL) != 0) {
        return SL_EPARSE;
    }
    e->call.doc = doc;
    e->call.model = sl_json_get(doc, SL_JSON_ROOT, "model");
    e->call.stream_options = -1;
    e->call.native = e->call.raw;
    e->call.native_doc = doc;
    e->call.request_id = rq->call.request_id;
    e->call.target = t;
    cred = sl_router_credential(p, sl_state_now(), NULL, NULL, &wait);
    e->call.api_key = cred >= 0 && p->api_keys[cred].value != NULL ? &p->api_keys[cred] : NULL;
    sl_pool_on_destroy(pool, cache_embed_release, e);

    memset(&ureq, 0, sizeof(ureq));
    rc = p->ops->build_request(p->ext, &e->call, &ureq);
    if (rc < 0) {
        cache_warn(rq, rc, "the embedding target cannot build an embeddings request");
        return rc;
    }
    if (p->ops->local != NULL) {
        sl_local_reply_t lr;

        memset(&lr, 0, sizeof(lr));
        rc = p->ops->local(p->ext, &e->call, &lr);
        if (rc < 0) {
            cache_warn(rq, rc, "the embedding target cannot answer");
            return rc;
        }
        e->status = lr.status;
        sl_buf_append(&e->body, lr.body, lr.body_len);
        cache_embed_done(e, 0);
        return 0;
    }
    rc = sl_upstream_send(rq->d->up, p, &ureq, &cache_embed_cbs, e, &rq->r->log, &e->uc);
    if (rc < 0) {
        e->uc = NULL;
        cache_warn(rq, rc, "sending the embeddings request failed");
        return rc;
    }
    return 0;
}


/* Request pool cleanup: the call still in flight (the client went away) stops here. */
static void
cache_embed_release(void *arg)
{
    cache_embed_t *e = arg;

    if (e->uc != NULL) {
        sl_upstream_cancel(e->uc);
        e->uc = NULL;
    }
    sl_buf_free(&e->body);
}


static void
cache_embed_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                       size_t nheaders, void *data)
{
    cache_embed_t *e = data;
    const sl_upstream_timing_t *tm = sl_upstream_timing(uc);

    (void) headers;
    (void) nheaders;
    e->status = status;
    if (tm->first_byte > tm->sent && tm->sent != 0) {
        e->first_byte_us = (tm->first_byte - tm->sent) / 1000;
    }
}


static void
cache_embed_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data)
{
    cache_embed_t *e = data;

    (void) uc;
    if (e->body.len + len <= CACHE_EMBED_MAX) {
        sl_buf_append(&e->body, p, len);
    } else {
        e->body.len = CACHE_EMBED_MAX + 1; /* on_done reports it */
    }
}


static void
cache_embed_on_done(sl_upstream_call_t *uc, int rc, void *data)
{
    cache_embed_t *e = data;

    (void) uc;
    e->uc = NULL;
    cache_embed_done(e, rc);
}


/* The embeddings answer: the gateway's row, the vector, then the lookup or the plan. */
static void
cache_embed_done(cache_embed_t *e, int rc)
{
    sl_drv_req_t *rq = e->rq;
    const sl_provider_conf_t *p = e->target->provider;
    sl_usage_t usage;
    sl_answer_t ans;
    int status = e->status;

    memset(&usage, 0, sizeof(usage));
    if (rc == 0 && e->body.len > CACHE_EMBED_MAX) {
        rc = SL_EUPSTREAM;
    }
    if (rc < 0) {
        status = rc == SL_ETIMEOUT ? 504 : 502;
        cache_warn(rq, rc, "the embeddings request failed");
    } else if (status < 200 || status > 299) {
        cache_warn(rq, 0, "the embedding provider answered an error");
    } else {
        memset(&ans, 0, sizeof(ans));
        if (p->ops->parse_response(p->ext, &e->call, &e->body, &ans) != 0
            || cache_embed_vector(rq, ans.raw) != 0) {
            status = 502;
            cache_warn(rq, 0, "the embedding provider's answer holds no embedding");
        }
        usage = ans.usage;
    }
    cache_embed_record(e, status, &usage);
    sl_buf_free(&e->body);
    cache_semantic_match(rq);
}


/* data[0].embedding of an OpenAI embeddings answer -> rq's unit vector. */
static int
cache_embed_vector(sl_drv_req_t *rq, sl_str_t raw)
{
    struct sl_cache_req *c = rq->cache;
    sl_json_t *doc = sl_json_create(rq->r->pool);
    int data, first, emb;
    size_t n, i = 0;
    double norm = 0;
    char num[64];

    if (raw.p == NULL || sl_json_parse(doc, raw.p, raw.len, NULL) != 0) {
        return SL_EPARSE;
    }
    data = sl_json_get(doc, SL_JSON_ROOT, "data");
    first = sl_json_first(doc, data);
    emb = sl_json_get(doc, first, "embedding");
    n = sl_json_size(doc, emb);
    if (sl_json_type(doc, emb) != SL_JSON_ARRAY || n == 0 || n > SL_CACHE_DIMS_MAX) {
        return SL_EPARSE;
    }
    c->v = sl_palloc(rq->r->pool, n * sizeof(float));
    for (int x = sl_json_first(doc, emb); x >= 0; x = sl_json_next(doc, emb, x), i++) {
        sl_str_t s = sl_json_raw(doc, x);
        char *end;

        if (sl_json_type(doc, x) != SL_JSON_NUMBER || s.len >= sizeof(num)) {
            return SL_EPARSE;
        }
        memcpy(num, s.p, s.len);
        num[s.len] = '\0';
        c->v[i] = strtof(num, &end);
        if (!isfinite(c->v[i])) {
            return SL_EPARSE;
        }
        norm += (double) c->v[i] * c->v[i];
    }
    if (norm <= 0) {
        return SL_EPARSE;
    }
    norm = sqrt(norm);
    for (i = 0; i < n; i++) {
        c->v[i] = (float) (c->v[i] / norm);
    }
    c->vec.v = c->v;
    c->vec.dims = (uint32_t) n;
    c->vector = true;
    return 0;
}


/*
 * The gateway's own row: key name "sluice", the SL_LEDGER_GATEWAY flag,
 * endpoint embeddings, the request id of the request it served with
 * ".embedding" after it, priced like any embeddings call.
 */
static void
cache_embed_record(cache_embed_t *e, int status, const sl_usage_t *usage)
{
    sl_drv_req_t *rq = e->rq;
    const sl_target_t *t = e->target;
    uint64_t age = uv_hrtime() - e->start_ns;
    sl_ledger_row_t row;
    struct timespec ts;
    sl_acct_t a;

    memset(&a, 0, sizeof(a));
    a.key_id = "";
    a.key_name = "sluice";
    a.team = "";
    a.authed = true;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(&row, 0, sizeof(row));
    row.time_ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec - (int64_t) age;
    row.request_id = sl_psprintf(rq->r->pool, "%s.embedding", rq->r->request_id);
    row.endpoint = sl_api_name(SL_API_EMBEDDINGS);
    row.model = sl_psprintf(rq->r->pool, "%s/%s", t->provider->name, t->model);
    row.provider = t->provider->name;
    row.served_model = t->model;
    row.attempts = 1;
    row.status = (uint32_t) status;
    row.flags = SL_LEDGER_GATEWAY;
    row.latency_us = age / 1000;
    row.first_byte_us = e->first_byte_us;
    row.cache = "";
    /* written at once (no commit queue): a and row live on this stack */
    sl_acct_record(rq->d->db, NULL, rq->r->conf, &a, t, usage, &row, cache_embed_recorded, NULL);
}


static void
cache_embed_recorded(void *arg)
{
    (void) arg;
}


/* With the prompt's vector: the partition is scanned, on the loop while it is small. */
static void
cache_semantic_match(sl_drv_req_t *rq)
{
    struct sl_cache_req *c = rq->cache;
    sl_cache_query_t q;
    sl_txn_t *t;

    memset(&c->match, 0, sizeof(c->match));
    c->match_rc = SL_ENOTFOUND;
    if (!c->vector || !c->lookup) {
        cache_semantic_decide(rq);
        return;
    }
    cache_query(rq, &q);
    c->match_rc = sl_db_read(rq->d->db, &t);
    if (c->match_rc == 0) {
        c->match_rc = sl_cache_match(t, &q, SL_CACHE_INLINE_SCAN, &c->match);
        sl_db_abort(t);
    }
    if (c->match_rc == 0 && c->match.incomplete) {
        rq->working = true;
        c->work.data = rq;
        if (uv_queue_work(rq->d->loop, &c->work, cache_match_work, cache_match_done) == 0) {
            return;
        }
        rq->working = false;
    }
    cache_semantic_decide(rq);
}


static void
cache_query(sl_drv_req_t *rq, sl_cache_query_t *q)
{
    struct sl_cache_req *c = rq->cache;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    memset(q, 0, sizeof(*q));
    memcpy(q->part, c->vec.part, SL_CACHE_PART_LEN);
    memcpy(q->ctx, c->vec.ctx, SL_CACHE_CTX_LEN);
    q->v = c->vec.v;
    q->dims = c->vec.dims;
    q->words = c->vec.words;
    q->nwords = c->vec.nwords;
    q->threshold = rq->r->conf->cache.threshold;
    q->now = (int64_t) ts.tv_sec;
}


/* Thread pool: the whole partition (the request waits). */
static void
cache_match_work(uv_work_t *w)
{
    sl_drv_req_t *rq = w->data;
    struct sl_cache_req *c = rq->cache;
    sl_cache_query_t q;
    sl_txn_t *t;

    cache_query(rq, &q);
    c->match_rc = sl_db_read(rq->d->db, &t);
    if (c->match_rc == 0) {
        c->match_rc = sl_cache_match(t, &q, 0, &c->match);
        sl_db_abort(t);
    }
}


static void
cache_match_done(uv_work_t *w, int status)
{
    sl_drv_req_t *rq = w->data;

    (void) status;
    rq->working = false;
    if (rq->gone) {
        sl__drv_gone(rq);
        return;
    }
    cache_semantic_decide(rq);
}


/* A close entry with the same content words is served; else the request goes on. */
static void
cache_semantic_decide(sl_drv_req_t *rq)
{
    struct sl_cache_req *c = rq->cache;

    if (c->match_rc == 0 && c->match.found && sl__cache_read(rq, c->match.key) == 0
        && sl__cache_hit(rq, true) == 0) {
        return;
    }
    if (c->lookup) {
        sl__cache_missed(rq);
    }
    sl__drv_proceed(rq);
}


/* One warning per worker every CACHE_WARN_EVERY ms: a failing provider must not flood the log. */
static void
cache_warn(sl_drv_req_t *rq, int rc, const char *what)
{
    uint64_t now = sl_state_now();
    const sl_target_t *t = &rq->r->conf->cache.embedding;

    if (cache_warned_at != 0 && now - cache_warned_at < CACHE_WARN_EVERY) {
        return;
    }
    cache_warned_at = now;
    sl_log(&rq->r->log, SL_LOG_WARN, 0,
           "semantic cache: %s (embedding target \"%s/%s\"%s%s); serving without the semantic "
           "lookup",
           what, t->provider->name, t->model, rc != 0 ? ": " : "", rc != 0 ? sl_strerror(rc) : "");
}
