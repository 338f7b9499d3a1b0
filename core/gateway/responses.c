/*
 * Stored responses, the driver's side (storage/responses.h keeps them):
 *
 *  - store: a Responses request whose answer succeeded, with store not
 *    false and responses.store on, is written with its input items before
 *    the answer's last bytes go out, in the thread pool: the response is
 *    held (the end of a stream, or a whole answer) until the write is done,
 *    so a client that chains at once finds it on any worker;
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
 * Worker context. Reads are short read transactions on the loop, writes
 * run in the thread pool.
 */
#include "core/gateway/driver_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "storage/responses.h"

#define RESP_CHAIN_MAX 256 /* responses a previous_response_id chain may link */
#define RESP_LIST_MAX  100 /* input items one page of input_items may hold */

/* One response being stored while its answer is held. */
typedef struct resp_job {
    uv_work_t work;
    sl_drv_req_t *rq;
    sl_db_t *db;
    const char *key_id;
    const char *team;
    sl_str_t client; /* the client's own body */
    sl_str_t object; /* the response object sent */
    bool native;     /* the answer came from a native upstream */
    size_t max_size;
    int64_t created_ns;
    int rc;
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

static void resp_store_work(uv_work_t *w);
static void resp_store_done(uv_work_t *w, int status);
static json_t *resp_input_items(json_t *client, const char *id);
static int resp_chain(sl_drv_req_t *rq, const char *id, json_t **history, bool *all_native);
static int resp_native_rewrite(sl_drv_req_t *rq, json_t *in, json_t *history);
static const sl_frontend_t *resp_fe(void);
static void resp_error(sl_http_req_t *r, int status, const char *type, const char *code,
                       const char *param, const char *message);
static int resp_auth(sl_http_req_t *r, sl_acct_t *a);
static int resp_read(sl_http_req_t *r, const sl_acct_t *a, const char *id, json_t **out);
static void resp_list(sl_http_req_t *r, json_t *rec);
static void resp_respond_json(sl_http_req_t *r, int status, json_t *j);
static void resp_delete(sl_http_req_t *r, const sl_acct_t *a, const char *id);
static void resp_del_work(uv_work_t *w);
static void resp_del_done(uv_work_t *w, int status);
static const char *resp_query(sl_http_req_t *r, const char *name);


/* ---------------------------------------------------------------- store */


bool
sl__drv_responses_hold(sl_drv_req_t *rq, void *fe_state, sl_buf_t *body, int status,
                       const sl_http_header_t *h, size_t n, bool native)
{
    const sl_conf_t *conf = rq->r->conf;
    sl_pool_t *pool = rq->r->pool;
    resp_job_t *job;
    struct timespec ts;
    sl_str_t object;
    int store;

    if (rq->call.client_api != SL_API_RESPONSES || !conf->responses_store || rq->d->db == NULL
        || status < 200 || status > 299 || !rq->acct.authed) {
        return false;
    }
    store = sl_json_get(rq->call.native_doc, SL_JSON_ROOT, "store");
    if (sl_json_type(rq->call.native_doc, store) == SL_JSON_FALSE) {
        return false; /* what Codex sends: nothing is kept */
    }
    object = fe_state != NULL ? sl__frontend_responses_final(fe_state)
                              : (sl_str_t){ body->p, body->len };
    if (object.p == NULL || object.len == 0) {
        return false;
    }
    job = sl_pcalloc(pool, sizeof(*job));
    job->rq = rq;
    job->db = rq->d->db;
    job->key_id = rq->acct.key_id != NULL ? rq->acct.key_id : "";
    job->team = rq->acct.team != NULL ? rq->acct.team : "";
    job->client = rq->r->body;
    job->object = object;
    job->native = native;
    job->max_size = conf->responses_max_size;
    clock_gettime(CLOCK_REALTIME, &ts);
    job->created_ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
    job->tail = *body; /* the held bytes are the job's now */
    *body = (sl_buf_t) SL_BUF_INIT;
    job->status = status;
    job->stream = fe_state != NULL;
    if (n > 0) {
        job->h = sl_palloc(pool, n * sizeof(*h));
        memcpy(job->h, h, n * sizeof(*h));
        job->n = n;
    }
    job->work.data = job;
    rq->working = true;
    rq->streaming = false; /* a shutdown now closes the connection instead of failing the stream */
    if (uv_queue_work(rq->d->loop, &job->work, resp_store_work, resp_store_done) != 0) {
        rq->working = false;
        *body = job->tail;
        return false;
    }
    return true;
}


/* Thread pool: the record, then the write. */
static void
resp_store_work(uv_work_t *w)
{
    resp_job_t *job = w->data;
    json_t *obj = json_loadb(job->object.p, job->object.len, 0, NULL);
    json_t *client = json_loadb(job->client.p, job->client.len, 0, NULL);
    const char *id = json_string_value(json_object_get(obj, "id"));
    json_t *rec;
    char *text;

    job->rc = SL_EPARSE;
    if (id != NULL && json_is_object(client)) {
        json_t *prev = json_object_get(client, "previous_response_id");

        rec = json_pack("{s:O,s:o,s:O,s:b}", "response", obj, "input", resp_input_items(client, id),
                        "previous_response_id", json_is_string(prev) ? prev : json_null(), "native",
                        job->native);
        text = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        if (text != NULL && strlen(text) > job->max_size) {
            job->rc = SL_ETOOBIG;
        } else if (text != NULL) {
            job->rc = sl_responses_put(job->db, id, job->key_id, job->team, job->created_ns,
                                       (sl_str_t){ text, strlen(text) });
        }
        free(text);
    }
    json_decref(obj);
    json_decref(client);
}


static void
resp_store_done(uv_work_t *w, int status)
{
    resp_job_t *job = w->data;
    sl_drv_req_t *rq = job->rq;

    (void) status;
    rq->working = false;
    if (job->rc == SL_ETOOBIG) {
        sl_log(&rq->r->log, SL_LOG_NOTICE, 0,
               "response not stored: larger than responses.max_size (%zu bytes)", job->max_size);
    } else if (job->rc < 0) {
        sl_log(&rq->r->log, SL_LOG_WARN, job->rc, "response not stored");
    }
    if (rq->gone) {
        sl_buf_free(&job->tail);
        sl__drv_finish(rq);
        return;
    }
    if (job->stream) {
        if (job->tail.len > 0) {
            sl_http_write(rq->r, job->tail.p, job->tail.len);
        }
        sl_buf_free(&job->tail);
        sl__drv_finish(rq);
        return;
    }
    sl__drv_finish_respond(rq, job->status, job->h, job->n, &job->tail);
}


/*
 * The request's own input as items, each with an id ("in_" + the
 * response id's random part + "_" + position where it had none). A new
 * reference.
 */
static json_t *
resp_input_items(json_t *client, const char *id)
{
    json_t *input = json_object_get(client, "input");
    json_t *items = json_array();
    const char *suffix = strncmp(id, "resp_", 5) == 0 ? id + 5 : id;
    json_t *it;
    size_t i;

    if (json_is_string(input)) {
        json_array_append_new(items,
                              json_pack("{s:s,s:s,s:[{s:s,s:O}]}", "type", "message", "role",
                                        "user", "content", "type", "input_text", "text", input));
    } else if (json_is_array(input)) {
        json_array_foreach(input, i, it)
        {
            json_t *copy = json_is_object(it) ? json_copy(it) : json_object();

            if (json_object_get(copy, "type") == NULL && json_object_get(copy, "role") != NULL) {
                json_object_set_new(copy, "type", json_string("message"));
            }
            json_array_append_new(items, copy);
        }
    }
    json_array_foreach(items, i, it)
    {
        if (!json_is_string(json_object_get(it, "id"))) {
            json_object_set_new(it, "id", json_sprintf("in_%s_%zu", suffix, i));
        }
    }
    return items;
}


/* ------------------------------------------------- previous_response_id */


int
sl__drv_responses_decoded(sl_drv_req_t *rq)
{
    sl_call_t *call = &rq->call;
    int prev = sl_json_get(call->native_doc, SL_JSON_ROOT, "previous_response_id");
    json_t *history = NULL;
    json_t *in;
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
    rc = resp_chain(rq, sl_pstrndup(rq->r->pool, id.p, id.len), &history, &all_native);
    if (rc < 0) {
        return rc;
    }
    in = sl_json_dom(rq->r->pool, call->native);
    memset(&err, 0, sizeof(err));
    if (in == NULL || sl__frontend_responses_translate(call, in, history, &err) < 0) {
        json_decref(history);
        if (in == NULL) {
            sl__frontend_bad_request_error(rq, NULL, "The request body cannot be read.");
        } else {
            sl__drv_error(rq, &err);
        }
        return SL_EPARSE;
    }
    rc = all_native ? 0 : resp_native_rewrite(rq, in, history);
    json_decref(history);
    if (rc < 0) {
        sl__frontend_bad_request_error(rq, NULL, "The request cannot be encoded.");
    }
    return rc;
}


/*
 * The conversation before response id: each response's input items, then
 * its output items, oldest first, into *history (a new reference). Answers
 * the client itself when the chain cannot be read.
 */
static int
resp_chain(sl_drv_req_t *rq, const char *id, json_t **history, bool *all_native)
{
    json_t *recs = json_array();
    json_t *out = json_array();
    sl_txn_t *t;
    const char *next = id;
    json_t *rec;
    size_t i;
    int rc;

    rc = sl_db_read(rq->d->db, &t);
    if (rc < 0) {
        json_decref(recs);
        json_decref(out);
        sl__drv_error_new(rq, 500, "api_error", "storage_error", NULL,
                          "The gateway cannot read its response store right now.");
        return rc;
    }
    while (next != NULL && json_array_size(recs) < RESP_CHAIN_MAX) {
        sl_resp_rec_t r;

        rc = sl_responses_get(t, next, rq->r->pool, &r);
        if (rc == 0 && !sl_responses_visible(&r, rq->acct.key_id, rq->acct.team)) {
            rc = SL_ENOTFOUND;
        }
        if (rc < 0) {
            break;
        }
        rec = json_loadb(r.json.p, r.json.len, 0, NULL);
        if (!json_is_object(rec)) {
            json_decref(rec);
            rc = SL_ECORRUPT;
            break;
        }
        json_array_insert_new(recs, 0, rec);
        next = json_string_value(json_object_get(rec, "previous_response_id"));
    }
    sl_db_abort(t);
    if (rc == SL_ENOTFOUND) {
        sl__drv_error_new(rq, 400, "invalid_request_error", "previous_response_not_found",
                          "previous_response_id",
                          sl_psprintf(rq->r->pool, "Previous response with id '%s' not found.",
                                      json_array_size(recs) == 0 ? id : next));
    } else if (rc < 0) {
        sl__drv_error_new(rq, 500, "api_error", "storage_error", NULL,
                          "The gateway cannot read its response store right now.");
    }
    if (rc < 0) {
        json_decref(recs);
        json_decref(out);
        return rc;
    }
    json_array_foreach(recs, i, rec)
    {
        json_t *items = json_object_get(rec, "input");
        json_t *output = json_object_get(json_object_get(rec, "response"), "output");

        if (json_is_array(items)) {
            json_array_extend(out, items);
        }
        if (json_is_array(output)) {
            json_array_extend(out, output);
        }
        *all_native = *all_native && json_is_true(json_object_get(rec, "native"));
    }
    json_decref(recs);
    *history = out;
    return 0;
}


/*
 * The client's body for a native target when the chain is not all the
 * upstream's own: the whole conversation as input, no previous id.
 * Reasoning items of other providers (and ones without encrypted content)
 * are left out: OpenAI could not read them.
 */
static int
resp_native_rewrite(sl_drv_req_t *rq, json_t *in, json_t *history)
{
    sl_call_t *call = &rq->call;
    json_t *body = json_deep_copy(in);
    json_t *input = json_array();
    json_t *own = json_object_get(in, "input");
    sl_json_t *doc;
    json_t *it;
    size_t i, len;
    char *p;

    json_array_foreach(history, i, it)
    {
        const char *type = json_string_value(json_object_get(it, "type"));
        const char *enc = json_string_value(json_object_get(it, "encrypted_content"));

        if (type != NULL && strcmp(type, "reasoning") == 0
            && (enc == NULL || strncmp(enc, "sl1.", 4) == 0)) {
            continue;
        }
        json_array_append(input, it);
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
        json_array_append(data, it);
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
