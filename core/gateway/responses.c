/*
 * Stored responses, the driver's side (storage/responses.h keeps them):
 *
 *  - store: a Responses request whose answer succeeded, with store not
 *    false and responses.store on, is written with its input items in the
 *    same write transaction as its ledger row: its record (put together on
 *    the loop from the response object as sent and the client's body as
 *    the frontend tokenized it) joins the worker's group commit
 *    (core/gateway/commit.h) right ahead of the row, so one transaction per
 *    loop turn writes the rows and the responses of every request that
 *    finished in it. The answer (a whole one, or a stream's end) goes out
 *    once both committed, so a client that chains at once finds it on any
 *    worker. A record that cannot go in (larger than responses.max_size, a
 *    full map) is logged and the answer goes out all the same; a batch that
 *    fails is written again one item per transaction, so a response never
 *    costs its row (or another request's). A cache hit's answer, recorded
 *    before it is known, is stored in a commit of its own;
 *  - previous_response_id: after decode, the chain of stored responses
 *    (each one's input items, then its output items, oldest first) is put
 *    before the request's input and the request translated again, so any
 *    provider gets the whole conversation. A request forwarded natively
 *    (openai, azure) goes as the client sent it when every response of the
 *    chain came from a native upstream (which keeps its own state);
 *    otherwise its input is replaced by the whole conversation and
 *    previous_response_id removed, so that upstream needs no state;
 *  - GET /v1/responses/{id}, GET /v1/responses/{id}/input_items and
 *    DELETE /v1/responses/{id}, visible only to the key that made the
 *    response or to keys of its team (anything else is a 404, as for an id
 *    that does not exist).
 *
 * Worker context. Reads are short read transactions on the loop; stored
 * responses are written by the group commit (on the loop, as the ledger's
 * rows), DELETEs in the thread pool.
 */
#include "core/gateway/driver_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "storage/responses.h"

#define RESP_CHAIN_MAX 256 /* responses a previous_response_id chain may link */
#define RESP_LIST_MAX  100 /* input items one page of input_items may hold */

/*
 * One response being stored: a step of the ledger's group commit, queued
 * before the request's row so that it is written in the same transaction
 * and done first; the answer is held while it is pending. A large one
 * (client body and response past SL_DRV_OFFLOOP_BYTES) is put together
 * and written in the thread pool instead, in a transaction of its own
 * after the row, so that its copies and its pages stay off the loop and
 * out of the ledger's write lock.
 */
typedef struct resp_job {
    sl_commit_item_t item; /* in the worker's group commit */
    uv_work_t work;        /* or a large one, in the thread pool */
    sl_drv_req_t *rq;
    sl_resp_put_t put; /* id, key, team, created, the record's JSON (text) */
    char id[SL_RESPONSES_ID_MAX + 1];
    sl_buf_t text;
    sl_str_t object; /* a large one's response object, for the thread pool */
    bool native;
    size_t max_size;
    int rc;
    bool pending;  /* queued, not committed yet */
    bool parked;   /* the answer waits for it (tail, status, h, n) */
    sl_buf_t tail; /* what is held back */
    int status;
    sl_http_header_t *h;
    size_t n;
    bool stream;
} resp_job_t;

/* One DELETE in the thread pool. */
typedef struct resp_del {
    uv_work_t work;
    sl_http_req_t *r;
    sl_db_t *db;
    const char *id;
    const char *key_id;
    const char *team;
    int rc;
} resp_del_t;

static bool resp_stores(const sl_drv_req_t *rq, int status);
static resp_job_t *resp_job_new(sl_drv_req_t *rq, bool native);
static bool resp_large(const sl_drv_req_t *rq, sl_str_t object);
static void resp_stage(sl_drv_req_t *rq, sl_str_t object, bool native);
static void resp_offload(sl_drv_req_t *rq, sl_str_t object, bool native);
static void resp_large_work(uv_work_t *w);
static void resp_large_done(uv_work_t *w, int status);
static int resp_record(resp_job_t *job, sl_str_t object, sl_pool_t *pool);
static int resp_object_id(sl_pool_t *pool, sl_str_t object, sl_str_t *id);
static int resp_job_txn(sl_txn_t *t, sl_commit_item_t *it);
static void resp_job_done(sl_commit_item_t *it, int rc);
static void resp_report(resp_job_t *job);
static void resp_store_done(resp_job_t *job);
static void resp_input_items(const sl_json_t *cl, sl_str_t id, sl_buf_t *b);
static void resp_item_id(sl_buf_t *b, sl_str_t suffix, size_t i);
static int resp_chain(sl_drv_req_t *rq, const char *id, sl_rs_items_t **history, size_t *n,
                      bool *all_native);
static int resp_native_rewrite(sl_drv_req_t *rq, const sl_rs_items_t *history, size_t n);
static const sl_frontend_t *resp_fe(void);
static void resp_error(sl_http_req_t *r, int status, const char *type, const char *code,
                       const char *param, const char *message);
static int resp_auth(sl_http_req_t *r, sl_acct_t *a);
static int resp_read(sl_http_req_t *r, const sl_acct_t *a, const char *id, json_t **out);
static void resp_list(sl_http_req_t *r, json_t *rec);
static json_t *resp_list_item(json_t *it);
static void resp_respond_json(sl_http_req_t *r, int status, json_t *j);
static void resp_delete(sl_http_req_t *r, const sl_acct_t *a, const char *id);
static void resp_del_work(uv_work_t *w);
static void resp_del_done(uv_work_t *w, int status);
static const char *resp_query(sl_http_req_t *r, const char *name);


/* ---------------------------------------------------------------- store */


/* True when rq is a Responses request whose answer (status) is to be stored. */
static bool
resp_stores(const sl_drv_req_t *rq, int status)
{
    int store;

    if (status < 200 || status > 299 || rq->call.client_api != SL_API_RESPONSES || !rq->acct.authed
        || !rq->r->conf->responses_store || rq->d->db == NULL || rq->d->commit == NULL) {
        return false;
    }
    store = sl_json_get(rq->call.native_doc, SL_JSON_ROOT, "store");
    return sl_json_type(rq->call.native_doc, store) != SL_JSON_FALSE; /* false: what Codex sends */
}


void
sl__drv_responses_stage(sl_drv_req_t *rq, const sl_buf_t *body, int status, bool native)
{
    sl_str_t object = { body->p, body->len };

    if (rq->resp_job == NULL && resp_stores(rq, status) && !resp_large(rq, object)) {
        resp_stage(rq, object, native);
    }
}


void
sl__drv_responses_stage_stream(sl_drv_req_t *rq, void *fe_state, const sl_usage_t *usage,
                               sl_buf_t *out, bool native)
{
    if (rq->resp_job != NULL || fe_state == NULL || !resp_stores(rq, 200)) {
        return;
    }
    /* the stream's end now (the same bytes it would get later), for its response object */
    rq->fe->encode_end(fe_state, usage, out);
    if (!resp_large(rq, sl__frontend_responses_final(fe_state))) {
        resp_stage(rq, sl__frontend_responses_final(fe_state), native);
    }
}


static resp_job_t *
resp_job_new(sl_drv_req_t *rq, bool native)
{
    resp_job_t *job = sl_pcalloc(rq->r->pool, sizeof(*job));

    job->rq = rq;
    job->native = native;
    job->max_size = rq->r->conf->responses_max_size;
    job->put.id = job->id;
    job->put.key_id = rq->acct.key_id != NULL ? rq->acct.key_id : "";
    job->put.team = rq->acct.team != NULL ? rq->acct.team : "";
    job->put.created_ns = (int64_t) sl_clock_real_ns();
    rq->resp_job = job;
    return job;
}


/* True when the record of object is put together and written in the thread pool. */
static bool
resp_large(const sl_drv_req_t *rq, sl_str_t object)
{
    return rq->r->body.len + object.len > SL_DRV_OFFLOOP_BYTES;
}


/*
 * The record of object (the response as sent) goes into the group commit
 * (before the row that follows it); one that cannot be stored (too large,
 * no id) is reported now and holds nothing.
 */
static void
resp_stage(sl_drv_req_t *rq, sl_str_t object, bool native)
{
    resp_job_t *job = resp_job_new(rq, native);

    job->rc = resp_record(job, object, rq->r->pool);
    if (job->rc < 0) {
        resp_report(job);
        return;
    }
    job->pending = true;
    job->item.txn = resp_job_txn;
    job->item.done = resp_job_done;
    job->item.aside = true; /* not a ledger row */
    sl_commit_push(rq->d->commit, &job->item);
}


/* A large one: in the thread pool (the request waits, parked, for resp_large_done). */
static void
resp_offload(sl_drv_req_t *rq, sl_str_t object, bool native)
{
    resp_job_t *job = resp_job_new(rq, native);

    job->object = object;
    job->pending = true;
    job->work.data = job;
    if (uv_queue_work(rq->d->loop, &job->work, resp_large_work, resp_large_done) != 0) {
        job->pending = false;
        job->rc = SL_ESTORE;
        resp_report(job);
    }
}


/* Thread pool: the record (read-only use of the parked request), then its own transaction. */
static void
resp_large_work(uv_work_t *w)
{
    resp_job_t *job = w->data;
    sl_pool_t *pool = sl_pool_create(0);

    job->rc = resp_record(job, job->object, pool);
    if (job->rc == 0) {
        job->rc = sl_responses_put(job->rq->d->db, job->put.id, job->put.key_id, job->put.team,
                                   job->put.created_ns, job->put.json);
    }
    sl_pool_destroy(pool);
}


static void
resp_large_done(uv_work_t *w, int status)
{
    resp_job_t *job = w->data;

    (void) status;
    resp_job_done(&job->item, job->rc);
}


/*
 * The record's text and id (job->id): {"response":<the object as sent>,
 * "input":[items],"previous_response_id":..,"native":..}, put together
 * from the bytes with the client's body as the frontend tokenized it (no
 * DOM, no second parse); pool for what a parse needs. Returns 0,
 * SL_EPARSE or SL_ETOOBIG.
 */
static int
resp_record(resp_job_t *job, sl_str_t object, sl_pool_t *pool)
{
    sl_drv_req_t *rq = job->rq;
    const sl_json_t *cl = rq->call.native_doc;
    sl_buf_t *b = &job->text;
    sl_str_t id;
    int prev;

    if (object.p == NULL || object.len == 0 || resp_object_id(pool, object, &id) < 0 || id.len == 0
        || id.len > SL_RESPONSES_ID_MAX || memchr(id.p, '\0', id.len) != NULL) {
        return SL_EPARSE;
    }
    memcpy(job->id, id.p, id.len);
    job->id[id.len] = '\0';
    if (rq->call.native.p != rq->r->body.p) {
        /* a native body rewritten with the whole conversation: the client's own is kept */
        sl_json_t *doc = sl_json_create(pool);

        if (sl_json_parse(doc, rq->r->body.p, rq->r->body.len, NULL) != 0) {
            return SL_EPARSE;
        }
        cl = doc;
    }
    if (sl_json_type(cl, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return SL_EPARSE;
    }
    sl_buf_reserve(b, object.len + rq->r->body.len + 256);
    sl_buf_puts(b, "{\"response\":");
    sl_buf_append(b, object.p, object.len);
    sl_buf_puts(b, ",\"input\":");
    resp_input_items(cl, id, b);
    sl_buf_puts(b, ",\"previous_response_id\":");
    prev = sl_json_get(cl, SL_JSON_ROOT, "previous_response_id");
    if (sl_json_type(cl, prev) == SL_JSON_STRING) {
        sl_str_t raw = sl_json_raw(cl, prev);

        sl_buf_append(b, raw.p, raw.len);
    } else {
        sl_buf_puts(b, "null");
    }
    sl_buf_puts(b, job->native ? ",\"native\":true}" : ",\"native\":false}");
    if (b->len > job->max_size) {
        sl_buf_free(b);
        return SL_ETOOBIG;
    }
    job->put.json = (sl_str_t){ b->p, b->len };
    return 0;
}


/*
 * The id of a response object: read straight from its start when it is
 * ours ({"id":"..." with nothing to unescape), else with the tokenizer.
 */
static int
resp_object_id(sl_pool_t *pool, sl_str_t object, sl_str_t *id)
{
    static const char head[] = "{\"id\":\"";
    size_t hl = sizeof(head) - 1;
    sl_json_t *doc;

    if (object.len > hl && memcmp(object.p, head, hl) == 0) {
        for (size_t i = hl; i < object.len; i++) {
            unsigned char c = (unsigned char) object.p[i];

            if (c == '"') {
                *id = (sl_str_t){ object.p + hl, i - hl };
                return 0;
            }
            if (c == '\\' || c < 0x20) {
                break;
            }
        }
    }
    doc = sl_json_create(pool);
    if (sl_json_parse(doc, object.p, object.len, NULL) != 0) {
        return SL_EPARSE;
    }
    return sl_json_string(doc, sl_json_get(doc, SL_JSON_ROOT, "id"), pool, id);
}


/* Inside the batch's write transaction (repeatable): the record and its index entry. */
static int
resp_job_txn(sl_txn_t *t, sl_commit_item_t *it)
{
    resp_job_t *job = (resp_job_t *) (void *) ((char *) it - offsetof(resp_job_t, item));

    return sl_responses_put_txn(t, &job->put);
}


/* On the loop once the batch committed (rc 0) or failed: an answer that waits goes out. */
static void
resp_job_done(sl_commit_item_t *it, int rc)
{
    resp_job_t *job = (resp_job_t *) (void *) ((char *) it - offsetof(resp_job_t, item));

    job->pending = false;
    job->rc = rc;
    sl_buf_free(&job->text);
    job->put.json = sl_str_null;
    resp_report(job);
    if (job->parked) {
        resp_store_done(job);
    }
}


static void
resp_report(resp_job_t *job)
{
    sl_drv_req_t *rq = job->rq;

    if (job->rc == SL_ETOOBIG) {
        sl_log(&rq->r->log, SL_LOG_NOTICE, 0,
               "response not stored: larger than responses.max_size (%zu bytes)", job->max_size);
    } else if (job->rc < 0) {
        sl_log(&rq->r->log, SL_LOG_WARN, job->rc, "response not stored");
    }
}


bool
sl__drv_responses_hold(sl_drv_req_t *rq, void *fe_state, sl_buf_t *body, int status,
                       const sl_http_header_t *h, size_t n, bool native)
{
    resp_job_t *job;

    if (rq->resp_job == NULL && resp_stores(rq, status)) {
        /* not staged with its row (a cache hit's answer, a large one): stored on its own now */
        sl_str_t object = fe_state != NULL ? sl__frontend_responses_final(fe_state)
                                           : (sl_str_t){ body->p, body->len };

        if (resp_large(rq, object)) {
            resp_offload(rq, object, native);
        } else {
            resp_stage(rq, object, native);
        }
    }
    job = rq->resp_job;
    if (job == NULL || !job->pending) {
        return false; /* stored (or reported) already: the answer goes on as usual */
    }
    job->parked = true;
    job->tail = *body; /* the held bytes are the job's now */
    *body = (sl_buf_t) SL_BUF_INIT;
    job->status = status;
    job->stream = fe_state != NULL;
    if (n > 0) {
        job->h = sl_palloc(rq->r->pool, n * sizeof(*h));
        memcpy(job->h, h, n * sizeof(*h));
        job->n = n;
    }
    rq->working = true;
    rq->streaming = false; /* a shutdown now closes the connection instead of failing the stream */
    return true;
}


static void
resp_store_done(resp_job_t *job)
{
    sl_drv_req_t *rq = job->rq;

    rq->working = false;
    if (rq->gone) {
        sl_buf_free(&job->tail);
        sl__drv_finish(rq);
        return;
    }
    if (job->stream) {
        sl_buf_t tail = job->tail;

        /* the job lives in the request's pool, which the finish releases */
        job->tail = (sl_buf_t) SL_BUF_INIT;
        sl__drv_finish_with(rq, tail.p, tail.len);
        sl_buf_free(&tail);
        return;
    }
    {
        /* the job lives in the request's pool, which the response may reset */
        sl_buf_t tail = job->tail;

        job->tail = (sl_buf_t) SL_BUF_INIT;
        sl__drv_finish_respond(rq, job->status, job->h, job->n, &tail);
    }
}


/*
 * Appends the request's own input as a JSON array of items: a string is
 * one user message; an object item gets "type":"message" when it has a
 * role and no type, and an id ("in_" + the response id's random part +
 * "_" + position) when it has no string one, as its last member (so it
 * wins over a non-string one on reading); anything else becomes {} with
 * an id.
 */
static void
resp_input_items(const sl_json_t *cl, sl_str_t id, sl_buf_t *b)
{
    int input = sl_json_get(cl, SL_JSON_ROOT, "input");
    sl_str_t suffix = id;
    size_t i = 0;

    if (id.len > 5 && memcmp(id.p, "resp_", 5) == 0) {
        suffix = (sl_str_t){ id.p + 5, id.len - 5 };
    }
    sl_buf_puts(b, "[");
    if (sl_json_type(cl, input) == SL_JSON_STRING) {
        sl_str_t raw = sl_json_raw(cl, input);

        sl_buf_puts(b, "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
                       "\"input_text\",\"text\":");
        sl_buf_append(b, raw.p, raw.len);
        sl_buf_puts(b, "}],");
        resp_item_id(b, suffix, 0);
        sl_buf_puts(b, "}");
    } else if (sl_json_type(cl, input) == SL_JSON_ARRAY) {
        for (int it = sl_json_first(cl, input); it >= 0; it = sl_json_next(cl, input, it), i++) {
            bool obj = sl_json_type(cl, it) == SL_JSON_OBJECT;
            bool sep = obj && sl_json_size(cl, it) > 0;

            if (i > 0) {
                sl_buf_puts(b, ",");
            }
            if (obj) {
                sl_str_t raw = sl_json_raw(cl, it);

                sl_buf_append(b, raw.p, raw.len - 1); /* up to its closing brace */
            } else {
                sl_buf_puts(b, "{");
            }
            if (obj && sl_json_get(cl, it, "type") < 0 && sl_json_get(cl, it, "role") >= 0) {
                sl_buf_puts(b, sep ? ",\"type\":\"message\"" : "\"type\":\"message\"");
                sep = true;
            }
            if (!obj || sl_json_type(cl, sl_json_get(cl, it, "id")) != SL_JSON_STRING) {
                sl_buf_puts(b, sep ? "," : "");
                resp_item_id(b, suffix, i);
            }
            sl_buf_puts(b, "}");
        }
    }
    sl_buf_puts(b, "]");
}


/* Appends "id":"in_<suffix>_<i>" (suffix is valid UTF-8, as the id's reader gives it). */
static void
resp_item_id(sl_buf_t *b, sl_str_t suffix, size_t i)
{
    char num[24];
    size_t k = sizeof(num);
    bool plain = true;

    do {
        num[--k] = (char) ('0' + i % 10);
        i /= 10;
    } while (i > 0);
    for (size_t j = 0; j < suffix.len && plain; j++) {
        unsigned char c = (unsigned char) suffix.p[j];

        plain = c >= 0x20 && c != '"' && c != '\\' && c < 0x7f;
    }
    sl_buf_puts(b, "\"id\":");
    if (plain) {
        sl_buf_puts(b, "\"in_");
        sl_buf_append(b, suffix.p, suffix.len);
        sl_buf_puts(b, "_");
        sl_buf_append(b, num + k, sizeof(num) - k);
        sl_buf_puts(b, "\"");
    } else {
        sl_buf_t t = SL_BUF_INIT;

        sl_buf_puts(&t, "in_");
        sl_buf_append(&t, suffix.p, suffix.len);
        sl_buf_puts(&t, "_");
        sl_buf_append(&t, num + k, sizeof(num) - k);
        sl_json_quote(b, (sl_str_t){ t.p, t.len });
        sl_buf_free(&t);
    }
}


/* ------------------------------------------------- previous_response_id */


int
sl__drv_responses_decoded(sl_drv_req_t *rq)
{
    sl_call_t *call = &rq->call;
    int prev = sl_json_get(call->native_doc, SL_JSON_ROOT, "previous_response_id");
    sl_rs_items_t *history = NULL;
    size_t n = 0;
    bool all_native = true;
    sl_error_t err;
    sl_str_t id;
    int rc;

    if (sl_json_type(call->native_doc, prev) != SL_JSON_STRING) {
        return 0;
    }
    if (sl_json_string(call->native_doc, prev, rq->r->pool, &id) < 0) {
        sl__frontend_bad_request_error(rq, "previous_response_id",
                                       "Invalid 'previous_response_id': not a valid string.");
        return SL_EPARSE;
    }
    if (!rq->r->conf->responses_store || rq->d->db == NULL) {
        sl__drv_error_new(rq, 400, "invalid_request_error", "unsupported_parameter",
                          "previous_response_id",
                          "This gateway keeps no responses (responses.store is off), so "
                          "'previous_response_id' cannot be used: send the whole conversation "
                          "as input.");
        return SL_EDENIED;
    }
    rc = resp_chain(rq, sl_pstrndup(rq->r->pool, id.p, id.len), &history, &n, &all_native);
    if (rc < 0) {
        return rc;
    }
    memset(&err, 0, sizeof(err));
    if (sl__frontend_responses_translate(call, history, n, &err) < 0) {
        sl__drv_error(rq, &err);
        return SL_EPARSE;
    }
    rc = all_native ? 0 : resp_native_rewrite(rq, history, n);
    if (rc < 0) {
        sl__frontend_bad_request_error(rq, NULL, "The request cannot be encoded.");
    }
    return rc;
}


/*
 * The conversation before response id: each response's input items, then
 * its output items, oldest first, as *n arrays of the records read with
 * the token reader (in the request pool) into *history. Answers the client
 * itself when the chain cannot be read.
 */
static int
resp_chain(sl_drv_req_t *rq, const char *id, sl_rs_items_t **history, size_t *n, bool *all_native)
{
    sl_pool_t *pool = rq->r->pool;
    const sl_json_t **recs = sl_palloc(pool, RESP_CHAIN_MAX * sizeof(*recs));
    size_t nrecs = 0;
    sl_rs_items_t *out;
    sl_txn_t *t;
    const char *next = id;
    size_t k = 0;
    int rc;

    rc = sl_db_read(rq->d->db, &t);
    if (rc < 0) {
        sl__drv_error_new(rq, 500, "api_error", "storage_error", NULL,
                          "The gateway cannot read its response store right now.");
        return rc;
    }
    while (next != NULL && nrecs < RESP_CHAIN_MAX) {
        sl_resp_rec_t r;
        sl_json_t *doc;
        sl_str_t p;

        rc = sl_responses_get(t, next, pool, &r);
        if (rc == 0 && !sl_responses_visible(&r, rq->acct.key_id, rq->acct.team)) {
            rc = SL_ENOTFOUND;
        }
        if (rc < 0) {
            break;
        }
        doc = sl_json_create(pool);
        if (sl_json_parse(doc, r.json.p, r.json.len, NULL) < 0
            || sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT || sl_json_strict(doc, pool) < 0) {
            rc = SL_ECORRUPT;
            break;
        }
        recs[nrecs++] = doc;
        next = NULL;
        if (sl_json_string(doc, sl_json_get(doc, SL_JSON_ROOT, "previous_response_id"), pool, &p)
            == 0) {
            next = sl_pstrndup(pool, p.p, p.len);
        }
    }
    sl_db_abort(t);
    if (rc == SL_ENOTFOUND) {
        sl__drv_error_new(
            rq, 400, "invalid_request_error", "previous_response_not_found", "previous_response_id",
            sl_psprintf(pool, "Previous response with id '%s' not found.", nrecs == 0 ? id : next));
    } else if (rc < 0) {
        sl__drv_error_new(rq, 500, "api_error", "storage_error", NULL,
                          "The gateway cannot read its response store right now.");
    }
    if (rc < 0) {
        return rc;
    }
    out = sl_palloc(pool, (2 * nrecs + 1) * sizeof(*out));
    for (size_t i = nrecs; i-- > 0;) {
        const sl_json_t *doc = recs[i];
        int items = sl_json_get(doc, SL_JSON_ROOT, "input");
        int output = sl_json_path(doc, SL_JSON_ROOT, "response.output");

        if (sl_json_type(doc, items) == SL_JSON_ARRAY) {
            out[k++] = (sl_rs_items_t){ doc, items };
        }
        if (sl_json_type(doc, output) == SL_JSON_ARRAY) {
            out[k++] = (sl_rs_items_t){ doc, output };
        }
        *all_native = *all_native && sl_json_is_true(doc, sl_json_get(doc, SL_JSON_ROOT, "native"));
    }
    *history = out;
    *n = k;
    return 0;
}


/*
 * The client's body for a native target when the chain is not all the
 * upstream's own: the whole conversation as input, no previous id.
 * Reasoning items of other providers (and ones without encrypted content)
 * are left out: OpenAI could not read them. A DOM: this is the rare path.
 */
static int
resp_native_rewrite(sl_drv_req_t *rq, const sl_rs_items_t *history, size_t n)
{
    sl_call_t *call = &rq->call;
    json_t *body = json_loadb(call->native.p, call->native.len, 0, NULL);
    json_t *input = json_array();
    json_t *own = json_object_get(body, "input");
    sl_json_t *doc;
    json_t *it;
    size_t i, len;
    char *p;

    if (!json_is_object(body)) {
        json_decref(body);
        json_decref(input);
        return SL_EPARSE;
    }
    for (size_t h = 0; h < n; h++) {
        sl_str_t raw = sl_json_raw(history[h].doc, history[h].items);
        json_t *items = json_loadb(raw.p, raw.len, 0, NULL);

        json_array_foreach(items, i, it)
        {
            const char *type = json_string_value(json_object_get(it, "type"));
            const char *enc = json_string_value(json_object_get(it, "encrypted_content"));

            if (type != NULL && strcmp(type, "reasoning") == 0
                && (enc == NULL || strncmp(enc, "sl1.", 4) == 0)) {
                continue;
            }
            json_array_append(input, it);
        }
        json_decref(items);
    }
    if (json_is_string(own)) {
        json_array_append_new(input, json_pack("{s:s,s:O}", "role", "user", "content", own));
    } else if (json_is_array(own)) {
        json_array_extend(input, own);
    }
    json_object_set_new(body, "input", input);
    json_object_del(body, "previous_response_id");
    len = json_dumpb(body, NULL, 0, JSON_COMPACT);
    p = len > 0 ? sl_palloc(rq->r->pool, len) : NULL;
    if (p != NULL) {
        json_dumpb(body, p, len, JSON_COMPACT);
    }
    json_decref(body);
    doc = sl_json_create(rq->r->pool);
    if (p == NULL || sl_json_parse(doc, p, len, NULL) < 0) {
        return SL_EPARSE;
    }
    call->native = (sl_str_t){ p, len };
    call->native_doc = doc;
    return 0;
}


/* --------------------------------------------------- GET and DELETE */


static const sl_frontend_t *
resp_fe(void)
{
    return sl_frontend_get(SL_API_RESPONSES);
}


static void
resp_error(sl_http_req_t *r, int status, const char *type, const char *code, const char *param,
           const char *message)
{
    sl_error_t e;

    memset(&e, 0, sizeof(e));
    e.status = status;
    e.type = type;
    e.code = code;
    e.param = param;
    e.message = message;
    sl__drv_respond_error(r, resp_fe(), &e, NULL, 0);
}


/* Authenticates r; answers 401 or 500 itself (returns non-zero then). */
static int
resp_auth(sl_http_req_t *r, sl_acct_t *a)
{
    sl_driver_t *d = sl__drv_current();
    const char *why = NULL;
    int rc;

    memset(a, 0, sizeof(*a));
    rc = sl_acct_auth(d->db, r, a, &why);
    if (rc == 0) {
        return 0;
    }
    if (rc == SL_EAUTH) {
        resp_error(r, 401, "invalid_request_error", "invalid_api_key", NULL, why);
    } else {
        resp_error(r, 500, "api_error", "storage_error", NULL,
                   "The gateway cannot read its key store right now.");
    }
    return rc;
}


void
sl__drv_responses_route(sl_http_req_t *r)
{
    sl_str_t rest = { r->path.p + 14, r->path.len - 14 }; /* after "/v1/responses/" */
    const char *slash = memchr(rest.p, '/', rest.len);
    size_t idlen = slash != NULL ? (size_t) (slash - rest.p) : rest.len;
    bool items = slash != NULL && sl_str_eq((sl_str_t){ slash, rest.len - idlen }, "/input_items");
    bool del = sl_str_eq(r->method, "DELETE");
    json_t *rec = NULL;
    const char *id;
    sl_acct_t a;

    if (resp_auth(r, &a) != 0) {
        return;
    }
    if (idlen == 0 || idlen > SL_RESPONSES_ID_MAX || (slash != NULL && (!items || del))
        || memchr(rest.p, '\0', idlen) != NULL) {
        resp_error(r, 404, "invalid_request_error", "unknown_url", NULL,
                   sl_psprintf(r->pool, "Unknown request URL: %.*s %.*s.", (int) r->method.len,
                               r->method.p, (int) r->path.len, r->path.p));
        return;
    }
    id = sl_pstrndup(r->pool, rest.p, idlen);
    if (del) {
        resp_delete(r, &a, id);
        return;
    }
    if (resp_read(r, &a, id, &rec) != 0) {
        return;
    }
    if (items) {
        resp_list(r, rec);
    } else {
        resp_respond_json(r, 200, json_object_get(rec, "response"));
    }
    json_decref(rec);
}


/* The stored record of id visible to a, or an answered 404 (non-zero). */
static int
resp_read(sl_http_req_t *r, const sl_acct_t *a, const char *id, json_t **out)
{
    sl_driver_t *d = sl__drv_current();
    sl_resp_rec_t rec;
    sl_txn_t *t;
    int rc;

    rc = d->db != NULL ? sl_db_read(d->db, &t) : SL_ENOTFOUND;
    if (rc == 0) {
        rc = sl_responses_get(t, id, r->pool, &rec);
        sl_db_abort(t);
    }
    if (rc == 0 && !sl_responses_visible(&rec, a->key_id, a->team)) {
        rc = SL_ENOTFOUND;
    }
    if (rc == 0) {
        *out = json_loadb(rec.json.p, rec.json.len, 0, NULL);
        rc = json_is_object(*out) ? 0 : SL_ECORRUPT;
    }
    if (rc == SL_ENOTFOUND) {
        resp_error(r, 404, "invalid_request_error", NULL, NULL,
                   sl_psprintf(r->pool, "Response with id '%s' not found.", id));
    } else if (rc < 0) {
        json_decref(*out);
        resp_error(r, 500, "api_error", "storage_error", NULL,
                   "The gateway cannot read its response store right now.");
    }
    return rc;
}


/* GET .../input_items: a page of the input items (order desc by default, limit, after). */
static void
resp_list(sl_http_req_t *r, json_t *rec)
{
    json_t *items = json_object_get(rec, "input");
    const char *order = resp_query(r, "order");
    const char *limit_s = resp_query(r, "limit");
    const char *after = resp_query(r, "after");
    bool asc = order != NULL && strcmp(order, "asc") == 0;
    long limit = limit_s != NULL ? strtol(limit_s, NULL, 10) : 20;
    size_t n = json_array_size(items);
    json_t *data = json_array();
    json_t *list;
    bool skipping = after != NULL;
    bool more = false;

    if (limit < 1 || limit > RESP_LIST_MAX) {
        limit = limit < 1 ? 1 : RESP_LIST_MAX;
    }
    for (size_t k = 0; k < n; k++) {
        json_t *it = json_array_get(items, asc ? k : n - 1 - k);
        const char *iid = json_string_value(json_object_get(it, "id"));

        if (skipping) {
            skipping = iid == NULL || strcmp(iid, after) != 0;
            continue;
        }
        if ((long) json_array_size(data) == limit) {
            more = true;
            break;
        }
        json_array_append_new(data, resp_list_item(it));
    }
    list = json_pack("{s:s,s:o,s:O,s:O,s:b}", "object", "list", "data", data, "first_id",
                     json_array_size(data) > 0 ? json_object_get(json_array_get(data, 0), "id")
                                               : json_null(),
                     "last_id",
                     json_array_size(data) > 0
                         ? json_object_get(json_array_get(data, json_array_size(data) - 1), "id")
                         : json_null(),
                     "has_more", more);
    resp_respond_json(r, 200, list);
    json_decref(list);
}


/*
 * An input item as OpenAI lists it (a new reference): a message's string
 * content becomes one part, input_text (output_text with no annotations
 * for the assistant's), and a message without a status is "completed".
 * Stored as sent, so records of any version read the same.
 */
static json_t *
resp_list_item(json_t *it)
{
    const char *type = json_string_value(json_object_get(it, "type"));
    const char *role = json_string_value(json_object_get(it, "role"));
    json_t *content = json_object_get(it, "content");
    json_t *out;

    if (type == NULL || strcmp(type, "message") != 0) {
        return json_incref(it);
    }
    out = json_copy(it);
    if (out == NULL) {
        return json_incref(it);
    }
    if (json_is_string(content)) {
        json_t *part =
            role != NULL && strcmp(role, "assistant") == 0
                ? json_pack("{s:s,s:O,s:[]}", "type", "output_text", "text", content, "annotations")
                : json_pack("{s:s,s:O}", "type", "input_text", "text", content);

        json_object_set_new(out, "content", json_pack("[o]", part));
    }
    if (json_object_get(out, "status") == NULL) {
        json_object_set_new(out, "status", json_string("completed"));
    }
    return out;
}


static void
resp_respond_json(sl_http_req_t *r, int status, json_t *j)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };
    char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

    if (body == NULL) {
        resp_error(r, 500, "api_error", NULL, NULL, "The stored response cannot be encoded.");
        return;
    }
    sl_http_respond(r, status, h, 1, body, strlen(body));
    free(body);
}


static void
resp_delete(sl_http_req_t *r, const sl_acct_t *a, const char *id)
{
    sl_driver_t *d = sl__drv_current();
    resp_del_t *job = sl_pcalloc(r->pool, sizeof(*job));

    if (d->db == NULL) {
        resp_error(r, 404, "invalid_request_error", NULL, NULL,
                   sl_psprintf(r->pool, "Response with id '%s' not found.", id));
        return;
    }
    job->r = r;
    job->db = d->db;
    job->id = id;
    job->key_id = a->key_id;
    job->team = a->team;
    job->work.data = job;
    if (uv_queue_work(d->loop, &job->work, resp_del_work, resp_del_done) != 0) {
        resp_error(r, 500, "api_error", NULL, NULL, "The gateway cannot delete it right now.");
    }
}


static void
resp_del_work(uv_work_t *w)
{
    resp_del_t *job = w->data;

    job->rc = sl_responses_del(job->db, job->id, job->key_id, job->team);
}


static void
resp_del_done(uv_work_t *w, int status)
{
    resp_del_t *job = w->data;
    sl_http_req_t *r = job->r;
    json_t *j;

    (void) status;
    if (job->rc == SL_ENOTFOUND) {
        resp_error(r, 404, "invalid_request_error", NULL, NULL,
                   sl_psprintf(r->pool, "Response with id '%s' not found.", job->id));
        return;
    }
    if (job->rc < 0) {
        resp_error(r, 500, "api_error", "storage_error", NULL,
                   "The gateway cannot update its response store right now.");
        return;
    }
    j = json_pack("{s:s,s:s,s:b}", "id", job->id, "object", "response", "deleted", 1);
    resp_respond_json(r, 200, j);
    json_decref(j);
}


/* The value of query parameter name (NUL-terminated, in the pool, not decoded), or NULL. */
static const char *
resp_query(sl_http_req_t *r, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = r->query.p;
    const char *end = r->query.p + r->query.len;

    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t) (end - p));
        const char *stop = amp != NULL ? amp : end;

        if ((size_t) (stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            return sl_pstrndup(r->pool, p + nlen + 1, (size_t) (stop - p - nlen - 1));
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return NULL;
}
