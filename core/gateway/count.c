/*
 * POST /v1/messages/count_tokens (Anthropic's shape in and out), and the
 * Anthropic-shaped 404 for every other /v1/messages/... path.
 *
 * The model's targets are looked at in order: the first Anthropic target
 * (a kind speaking Messages natively) gets the client's body, with only the
 * model and the credential changed, at {base}/v1/messages/count_tokens,
 * and its answer goes back as it came (x-sluice-token-count: provider).
 * When no target speaks Messages, or that upstream fails (a connection
 * error, 401/403, 429, 5xx), the count is an estimate: the UTF-8 bytes of
 * the system prompt, the messages and the tool definitions as JSON, divided
 * by 4 and rounded up (about what every tokenizer gives English text and
 * code), marked x-sluice-token-count: estimated. Counting is free: it
 * writes no ledger row and touches no budget.
 *
 * Worker context.
 */
#include "core/gateway/driver_internal.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/http/headers.h"

/* One forwarded count. */
typedef struct count_job {
    sl_http_req_t *r;
    sl_upstream_call_t *uc;
    json_t *in; /* the client's body, for the estimate */
    int status;
    sl_buf_t body;
    bool aborted;
} count_job_t;

static const sl_frontend_t *count_fe(void);
static void count_error(sl_http_req_t *r, int status, const char *message);
static const sl_target_t *count_target(sl_http_req_t *r, const char *model, sl_target_t *direct);
static void count_estimate(sl_http_req_t *r, json_t *in);
static void count_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                             size_t nheaders, void *data);
static void count_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
static void count_on_done(sl_upstream_call_t *uc, int rc, void *data);
static void count_on_abort(sl_http_req_t *r);
static void count_free(void *arg);

static const sl_upstream_cbs_t count_cbs = {
    count_on_headers,
    count_on_body,
    count_on_done,
    NULL,
};


static const sl_frontend_t *
count_fe(void)
{
    return sl_frontend_get(SL_API_MESSAGES);
}


static void
count_error(sl_http_req_t *r, int status, const char *message)
{
    sl_error_t e;

    memset(&e, 0, sizeof(e));
    e.status = status;
    e.type = "invalid_request_error";
    e.message = message;
    sl__drv_respond_error(r, count_fe(), &e, NULL, 0);
}


void
sl__drv_messages_other(sl_http_req_t *r)
{
    count_error(r, 404,
                sl_psprintf(r->pool, "Not Found: %.*s %.*s", (int) r->method.len, r->method.p,
                            (int) r->path.len, r->path.p));
}


void
sl__drv_count_tokens(sl_http_req_t *r)
{
    sl_driver_t *d = sl__drv_current();
    const char *why = NULL;
    const char *model;
    const sl_target_t *t;
    const sl_provider_conf_t *p;
    sl_target_t direct;
    sl_upstream_req_t ureq;
    sl_http_header_t *hdrs;
    count_job_t *job;
    sl_json_t *doc;
    sl_call_t call;
    sl_acct_t a;
    json_t *in;
    uint64_t wait = 0;
    int cred;
    int rc;

    memset(&a, 0, sizeof(a));
    rc = sl_acct_auth(d->db, r, &a, &why);
    if (rc != 0) {
        sl_error_t e = { .status = rc == SL_EAUTH ? 401 : 500,
                         .type = rc == SL_EAUTH ? "authentication_error" : "api_error",
                         .message =
                             rc == SL_EAUTH ? why : "The gateway cannot read its key store." };

        sl__drv_respond_error(r, count_fe(), &e, NULL, 0);
        return;
    }
    in = sl_json_dom(r->pool, r->body);
    model = json_string_value(json_object_get(in, "model"));
    if (!json_is_object(in)) {
        count_error(r, 400, "The request body must be a JSON object.");
        return;
    }
    if (model == NULL) {
        count_error(r, 400, "model: Field required");
        return;
    }
    if (!json_is_array(json_object_get(in, "messages"))) {
        count_error(r, 400, "messages: Field required");
        return;
    }
    if (!sl_acct_allows(&a, model)) {
        sl_error_t e = { .status = 403, .type = "permission_error" };

        e.message =
            sl_psprintf(r->pool, "This API key is not allowed to use the model `%s`.", model);
        sl__drv_respond_error(r, count_fe(), &e, NULL, 0);
        return;
    }
    t = count_target(r, model, &direct);
    if (t == NULL) {
        sl_error_t e = { .status = 404, .type = "not_found_error" };

        e.message = sl_psprintf(r->pool, "model: %s", model);
        sl__drv_respond_error(r, count_fe(), &e, NULL, 0);
        return;
    }
    p = t->provider;
    if (!sl_provider_speaks(p->ops, SL_API_MESSAGES)) {
        count_estimate(r, in);
        return;
    }
    /* the adapter writes the native request for /v1/messages; counting lives under it */
    doc = sl_json_create(r->pool);
    if (sl_json_parse(doc, r->body.p, r->body.len, NULL) < 0) {
        count_estimate(r, in);
        return;
    }
    memset(&call, 0, sizeof(call));
    call.pool = r->pool;
    call.api = SL_API_CHAT;
    call.client_api = SL_API_MESSAGES;
    call.native = r->body;
    call.native_doc = doc;
    call.raw = r->body;
    call.doc = doc;
    call.model = -1;
    call.stream_options = -1;
    call.request_id = r->request_id;
    call.target = t;
    cred = sl_router_credential(p, sl_state_now(), NULL, NULL, &wait);
    call.api_key = cred >= 0 && p->api_keys[cred].value != NULL ? &p->api_keys[cred] : NULL;
    hdrs = sl_palloc(r->pool, sizeof(*hdrs) * (r->nheaders + 1));
    call.headers = hdrs;
    call.nheaders = sl_headers_upstream(p, r->headers, r->nheaders, hdrs);
    memset(&ureq, 0, sizeof(ureq));
    if (p->ops->build_request(p->ext, &call, &ureq) != 0) {
        count_estimate(r, in);
        return;
    }
    ureq.path = sl_psprintf(r->pool, "%s/count_tokens", ureq.path);
    job = sl_pcalloc(r->pool, sizeof(*job));
    job->r = r;
    job->in = in;
    job->body = (sl_buf_t) SL_BUF_INIT;
    sl_pool_on_destroy(r->pool, count_free, job);
    r->data = job;
    r->on_abort = count_on_abort;
    if (sl_upstream_send(d->up, p, &ureq, &count_cbs, job, &r->log, &job->uc) < 0) {
        job->uc = NULL;
        count_estimate(r, in);
    }
}


/* The model's first target, or the provider/model one asks for; NULL when it names none. */
static const sl_target_t *
count_target(sl_http_req_t *r, const char *model, sl_target_t *direct)
{
    const sl_model_conf_t *m = sl_conf_model(r->conf, model, strlen(model));
    const char *slash = strchr(model, '/');
    const sl_provider_conf_t *p;

    if (m != NULL && m->ntargets > 0) {
        for (size_t i = 0; i < m->ntargets; i++) {
            if (sl_provider_speaks(m->targets[i].provider->ops, SL_API_MESSAGES)) {
                return &m->targets[i];
            }
        }
        return &m->targets[0];
    }
    if (slash == NULL || slash[1] == '\0') {
        return NULL;
    }
    p = sl_conf_provider(r->conf, model, (size_t) (slash - model));
    if (p == NULL || !p->allow_direct) {
        return NULL;
    }
    direct->provider = p;
    direct->model = slash + 1;
    direct->weight = 1;
    return direct;
}


/* The documented estimate (see the file comment), marked as one. */
static void
count_estimate(sl_http_req_t *r, json_t *in)
{
    static const char *const parts[] = { "system", "messages", "tools" };
    size_t bytes = 0;
    char body[64];
    int n;

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        json_t *v = json_object_get(in, parts[i]);

        if (v != NULL && !json_is_null(v)) {
            bytes +=
                json_is_string(v) ? json_string_length(v) : json_dumpb(v, NULL, 0, JSON_COMPACT);
        }
    }
    n = snprintf(body, sizeof(body), "{\"input_tokens\":%zu}", (bytes + 3) / 4);
    {
        sl_http_header_t h[] = {
            { sl_str_lit("content-type"), sl_str_lit("application/json") },
            { sl_str_lit("x-sluice-token-count"), sl_str_lit("estimated") },
        };

        sl_http_respond(r, 200, h, 2, body, (size_t) n);
    }
}


static void
count_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                 size_t nheaders, void *data)
{
    count_job_t *job = data;

    (void) uc;
    (void) headers;
    (void) nheaders;
    job->status = status;
}


static void
count_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data)
{
    count_job_t *job = data;

    (void) uc;
    if (job->body.len + len <= 1024 * 1024) {
        sl_buf_append(&job->body, p, len);
    }
}


/*
 * The provider's count goes back as it came; its refusal of the request
 * (4xx but 401, 403, 429) too. Anything else: the estimate.
 */
static void
count_on_done(sl_upstream_call_t *uc, int rc, void *data)
{
    count_job_t *job = data;
    sl_http_req_t *r = job->r;
    bool mine = job->status == 401 || job->status == 403 || job->status == 429;

    (void) uc;
    job->uc = NULL;
    if (job->aborted) {
        sl_http_finish(r);
        return;
    }
    if (rc == 0 && job->status >= 200 && job->status < 500 && !mine) {
        sl_http_header_t h[] = {
            { sl_str_lit("content-type"), sl_str_lit("application/json") },
            { sl_str_lit("x-sluice-token-count"), sl_str_lit("provider") },
        };

        sl_http_respond(r, job->status, h, 2, job->body.p != NULL ? job->body.p : "",
                        job->body.len);
        return;
    }
    if (rc < 0 || job->status >= 400) {
        sl_log(&r->log, SL_LOG_NOTICE, rc, "count_tokens upstream failed (HTTP %d): estimated",
               job->status);
    }
    count_estimate(r, job->in);
}


static void
count_on_abort(sl_http_req_t *r)
{
    count_job_t *job = r->data;

    if (job->uc != NULL) {
        sl_upstream_cancel(job->uc);
        job->uc = NULL;
        sl_http_finish(r);
        return;
    }
    job->aborted = true;
}


static void
count_free(void *arg)
{
    count_job_t *job = arg;

    sl_buf_free(&job->body);
}
