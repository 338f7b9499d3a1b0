/*
 * Client API handlers. One request goes: auth -> parse body -> route ->
 * adapter builds the upstream request -> upstream client -> relay. A stream
 * is relayed as its bytes arrive (with backpressure: a slow client pauses
 * the upstream read), a JSON answer once complete. Once the first byte of a
 * stream went to the client the request is committed to that target.
 *
 * POST /v1/messages takes the same path: the inbound hooks of the
 * "anthropic" adapter turn the client's body into a chat call before the
 * body is read, and turn the answer, each stream event and every error back
 * into Anthropic's shape on the way out.
 */
#include "core/proxy.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/account.h"
#include "core/buf.h"
#include "core/errno.h"
#include "core/headers.h"
#include "core/json.h"
#include "core/pricing.h"
#include "core/sse.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "providers/registry.h"

#define PROXY_MAX_UPSTREAM_BODY                                      \
    (64u * 1024 * 1024) /* a JSON answer larger than this is refused \
                         */

struct sl_proxy {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    sl_upstream_t *up;
    sl_db_t *db;       /* NULL: no storage (static keys only, no ledger) */
    char *models_body; /* GET /v1/models answer, built once per generation */
    size_t models_len;
    uint64_t requests;
};

typedef struct proxy_req {
    sl_http_req_t *r;
    sl_proxy_t *px;
    sl_call_t call;
    sl_target_t direct;       /* target for a "provider/model" request */
    const char *public_model; /* what the client asked for */
    sl_upstream_call_t *uc;
    int status;              /* upstream status */
    const char *retry_after; /* upstream Retry-After, copied */
    sl_buf_t body;           /* buffered upstream body (JSON answer or error) */
    sl_buf_t out;            /* translated stream events waiting to be written */
    sl_sse_parser_t sse;     /* upstream event stream */
    sl_stream_t st;
    const sl_provider_ops_t *client; /* inbound format's hooks (/v1/messages), NULL for OpenAI */
    sl_str_t in;                     /* the OpenAI-shaped body the call is read from */
    sl_buf_t mid;                    /* /v1/messages: OpenAI events before the client's format */
    sl_sse_parser_t mid_sse;
    sl_stream_t cst; /* /v1/messages: the client side's stream state */
    sl_acct_t acct;
    uint64_t first_byte_us; /* request sent upstream -> first response byte */
    uint64_t max_tokens;    /* max_completion_tokens or max_tokens, 0 when not given */
    unsigned attempts;
    bool streaming; /* relaying an event stream to the client */
    bool paused;
    bool done;
} proxy_req_t;

static sl_proxy_t *proxy_current;

static void proxy_healthz(sl_http_req_t *r);
static void proxy_models(sl_http_req_t *r);
static void proxy_chat(sl_http_req_t *r);
static void proxy_embeddings(sl_http_req_t *r);
static void proxy_messages(sl_http_req_t *r);
static int proxy_messages_error(sl_pool_t *pool, int status, const char *type, const char *code,
                                const char *param, const char *message, sl_str_t *out);
static void proxy_call(sl_http_req_t *r, sl_endpoint_e endpoint);
static bool proxy_auth(sl_http_req_t *r, sl_acct_t *a, const sl_provider_ops_t *client);
static void proxy_respond_error(sl_http_req_t *r, const sl_provider_ops_t *client, int status,
                                const sl_http_header_t *h, size_t n, const sl_error_t *e);
static int proxy_translate(proxy_req_t *pr);
static int proxy_parse(proxy_req_t *pr, sl_endpoint_e endpoint);
static int proxy_parse_error(proxy_req_t *pr, const sl_json_error_t *jerr, const char *why);
static int proxy_route(proxy_req_t *pr);
static void proxy_filter_headers(proxy_req_t *pr);
static size_t proxy_sluice_headers(proxy_req_t *pr, sl_http_header_t *h);
static void proxy_error(proxy_req_t *pr, int status, const char *type, const char *code,
                        const char *param, const char *message);
static void proxy_finish_log(proxy_req_t *pr, int status);
static void proxy_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                             size_t nheaders, void *data);
static void proxy_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
static void proxy_on_done(sl_upstream_call_t *uc, int rc, void *data);
static void proxy_on_abort(sl_http_req_t *r);
static void proxy_on_drain(sl_http_req_t *r);
static void proxy_release(proxy_req_t *pr);
static void proxy_free_buf(void *arg);
static void proxy_free_sse(void *arg);
static int proxy_on_event(void *data, const sl_sse_event_t *ev);
static int proxy_on_client_event(void *data, const sl_sse_event_t *ev);
static void proxy_client_events(proxy_req_t *pr, const char *p, size_t len);
static void proxy_record(proxy_req_t *pr, int status, const sl_usage_t *usage);
static void proxy_estimate(proxy_req_t *pr, sl_usage_t *u);

/* Top-level keys of a client body that the proxy reads; none may repeat. */
enum {
    PROXY_KEY_MODEL = 0,
    PROXY_KEY_MESSAGES,
    PROXY_KEY_STREAM,
    PROXY_KEY_STREAM_OPTIONS,
    PROXY_KEY_INPUT,
    PROXY_KEY_MAX_COMPLETION_TOKENS,
    PROXY_KEY_MAX_TOKENS,
    PROXY_NKEYS
};

static const char *const proxy_keys[PROXY_NKEYS] = {
    "model", "messages", "stream", "stream_options", "input", "max_completion_tokens", "max_tokens",
};

static const char *const proxy_key_include_usage = "include_usage";

static const sl_http_route_t proxy_routes[] = {
    { "GET", "/healthz", proxy_healthz, NULL }, /* liveness, no auth */
    { "GET", "/v1/models", proxy_models, NULL },
    { "POST", "/v1/chat/completions", proxy_chat, NULL },
    { "POST", "/v1/embeddings", proxy_embeddings, NULL },
    /* Anthropic's shape in and out, errors included (also the server's own) */
    { "POST", "/v1/messages", proxy_messages, proxy_messages_error },
};

static const sl_upstream_cbs_t proxy_cbs = {
    proxy_on_headers,
    proxy_on_body,
    proxy_on_done,
};


const sl_http_route_t *
sl_proxy_routes(size_t *n)
{
    *n = sizeof(proxy_routes) / sizeof(proxy_routes[0]);
    return proxy_routes;
}


sl_proxy_t *
sl_proxy_create(uv_loop_t *loop, const sl_conf_t *conf, sl_upstream_t *up, sl_db_t *db)
{
    sl_proxy_t *px = sl_xcalloc(1, sizeof(*px));
    json_t *list = json_object();
    json_t *data = json_array();
    json_int_t created = (json_int_t) time(NULL);

    px->loop = loop;
    px->conf = conf;
    px->up = up;
    px->db = db;
    for (size_t i = 0; i < conf->nmodels; i++) {
        json_array_append_new(data,
                              json_pack("{s:s,s:s,s:I,s:s}", "id", conf->models[i].name, "object",
                                        "model", "created", created, "owned_by", "sluice"));
    }
    json_object_set_new(list, "object", json_string("list"));
    json_object_set_new(list, "data", data);
    px->models_body = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    if (px->models_body == NULL) {
        sl_log(NULL, SL_LOG_EMERG, 0, "cannot build the model list");
        free(px);
        return NULL;
    }
    px->models_len = strlen(px->models_body);
    proxy_current = px;
    return px;
}


void
sl_proxy_destroy(sl_proxy_t *px)
{
    if (px == NULL) {
        return;
    }
    if (proxy_current == px) {
        proxy_current = NULL;
    }
    free(px->models_body);
    free(px);
}


uint64_t
sl_proxy_requests(const sl_proxy_t *px)
{
    return px != NULL ? px->requests : 0;
}


static void
proxy_healthz(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };

    sl_http_respond(r, 200, h, 1, "{\"status\":\"ok\"}", 15);
}


/*
 * Authenticates the client; answers 401 (or 500 on a storage failure)
 * itself, in the inbound format's shape when client is not NULL.
 */
static bool
proxy_auth(sl_http_req_t *r, sl_acct_t *a, const sl_provider_ops_t *client)
{
    const char *why = NULL;
    int rc = sl_acct_auth(proxy_current->db, r, a, &why);
    sl_error_t e;

    if (rc == 0) {
        return true;
    }
    memset(&e, 0, sizeof(e));
    e.status = rc == SL_EAUTH ? 401 : 500;
    e.type = rc == SL_EAUTH ? "invalid_request_error" : "api_error";
    e.code = rc == SL_EAUTH ? "invalid_api_key" : "storage_error";
    e.message = rc == SL_EAUTH ? why : "The gateway cannot read its key store right now.";
    if (client == NULL) {
        sl_http_respond_error(r, e.status, e.type, e.code, NULL, e.message);
    } else {
        proxy_respond_error(r, client, e.status, NULL, 0, &e);
    }
    return false;
}


/* An error in the inbound format's shape: content-type, then the n headers h. */
static void
proxy_respond_error(sl_http_req_t *r, const sl_provider_ops_t *client, int status,
                    const sl_http_header_t *h, size_t n, const sl_error_t *e)
{
    sl_http_header_t hh[9];
    sl_str_t body;
    size_t k = 0;

    hh[k++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("application/json") };
    for (size_t i = 0; i < n && k < sizeof(hh) / sizeof(hh[0]); i++) {
        hh[k++] = h[i];
    }
    client->client_error(status, e, r->pool, &body);
    sl_http_respond(r, status, hh, k, body.p, body.len);
}


static void
proxy_models(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };
    sl_proxy_t *px = proxy_current;
    sl_acct_t a;

    memset(&a, 0, sizeof(a));
    if (!proxy_auth(r, &a, NULL)) {
        return;
    }
    sl_http_respond(r, 200, h, 1, px->models_body, px->models_len);
}


static void
proxy_chat(sl_http_req_t *r)
{
    proxy_call(r, SL_ENDPOINT_CHAT);
}


static void
proxy_embeddings(sl_http_req_t *r)
{
    proxy_call(r, SL_ENDPOINT_EMBEDDINGS);
}


/*
 * Errors the HTTP server produces on /v1/messages before the handler runs
 * (405, 413, 408, ...) in Anthropic's shape, through the same adapter hook
 * as the proxy's own errors there.
 */
static int
proxy_messages_error(sl_pool_t *pool, int status, const char *type, const char *code,
                     const char *param, const char *message, sl_str_t *out)
{
    const sl_provider_ops_t *client = sl_provider_find("anthropic");
    sl_error_t e;

    if (client == NULL || client->client_error == NULL) {
        return SL_ENOTFOUND;
    }
    memset(&e, 0, sizeof(e));
    e.status = status;
    e.type = type;
    e.code = code;
    e.param = param;
    e.message = message;
    return client->client_error(status, &e, pool, out);
}


/* Anthropic's Messages API in and out; the call itself runs as chat. */
static void
proxy_messages(sl_http_req_t *r)
{
    proxy_call(r, SL_ENDPOINT_MESSAGES);
}


static void
proxy_free_buf(void *arg)
{
    sl_buf_free(arg);
}


static void
proxy_free_sse(void *arg)
{
    sl_sse_free(arg);
}


static void
proxy_call(sl_http_req_t *r, sl_endpoint_e endpoint)
{
    sl_proxy_t *px = proxy_current;
    proxy_req_t *pr;
    sl_upstream_req_t ureq;
    const sl_provider_ops_t *ops;
    const char *why = NULL;
    unsigned retry = 0;
    int rc;

    px->requests++;
    pr = sl_pcalloc(r->pool, sizeof(*pr));
    pr->r = r;
    pr->px = px;
    pr->in = r->body;
    if (endpoint == SL_ENDPOINT_MESSAGES) {
        pr->client = sl_provider_find("anthropic");
        if (pr->client == NULL || pr->client->client_request == NULL) {
            sl_http_respond_error(r, 404, "invalid_request_error", "unknown_url", NULL,
                                  "This gateway does not serve the Messages API.");
            return;
        }
        endpoint = SL_ENDPOINT_CHAT; /* the inbound hooks turn it into a chat call */
    }
    if (!proxy_auth(r, &pr->acct, pr->client)) {
        return;
    }
    if (sl_acct_limit(&pr->acct, r->pool, &retry, &why) < 0) {
        pr->retry_after = sl_psprintf(r->pool, "%u", retry);
        proxy_error(pr, 429, "rate_limit_exceeded", "rate_limit_exceeded", NULL, why);
        return;
    }
    pr->body = (sl_buf_t) SL_BUF_INIT;
    pr->out = (sl_buf_t) SL_BUF_INIT;
    sl_pool_on_destroy(r->pool, proxy_free_buf, &pr->body);
    sl_pool_on_destroy(r->pool, proxy_free_buf, &pr->out);
    pr->call.pool = r->pool;
    pr->call.endpoint = endpoint;
    pr->call.request_id = r->request_id;

    if (proxy_parse(pr, endpoint) < 0 || proxy_route(pr) < 0) {
        return;
    }
    if (!sl_acct_allows(&pr->acct, pr->public_model)) {
        proxy_error(pr, 403, "invalid_request_error", "model_not_allowed", "model",
                    sl_psprintf(r->pool, "This API key is not allowed to use the model `%s`.",
                                pr->public_model));
        return;
    }
    rc = sl_acct_reserve(px->db, r->conf, &pr->acct, &pr->call, r->body.len, pr->max_tokens,
                         r->pool, &why);
    if (rc < 0) {
        if (rc == SL_EDENIED) {
            proxy_error(pr, 429, "insufficient_quota", "insufficient_quota", NULL, why);
        } else {
            proxy_error(pr, 500, "api_error", "storage_error", NULL,
                        "The gateway cannot update its budget store right now.");
        }
        return;
    }
    if (pr->call.stream) {
        pr->st.call = &pr->call;
        sl_sse_init(&pr->sse, 0);
        sl_pool_on_destroy(r->pool, proxy_free_sse, &pr->sse);
        if (pr->client != NULL) {
            pr->cst.call = &pr->call;
            pr->mid = (sl_buf_t) SL_BUF_INIT;
            sl_pool_on_destroy(r->pool, proxy_free_buf, &pr->mid);
            sl_sse_init(&pr->mid_sse, 0);
            sl_pool_on_destroy(r->pool, proxy_free_sse, &pr->mid_sse);
        }
    }
    proxy_filter_headers(pr);

    ops = pr->call.target->provider->ops;
    memset(&ureq, 0, sizeof(ureq));
    rc = ops->build_request(pr->call.target->provider->ext, &pr->call, &ureq);
    if (rc == SL_ENOTFOUND) {
        proxy_error(pr, 400, "invalid_request_error", "invalid_model", "model",
                    sl_psprintf(r->pool,
                                "The model `%s` is not a valid model name for provider \"%s\": "
                                "use letters, digits, '-', '_' and '.', starting with a letter "
                                "or digit.",
                                pr->public_model, pr->call.target->provider->name));
        return;
    }
    if (rc < 0) {
        proxy_error(pr, 400, "invalid_request_error", NULL, NULL,
                    "the request cannot be translated for this provider");
        return;
    }

    pr->attempts = 1;
    r->data = pr;
    r->on_abort = proxy_on_abort;
    r->on_drain = proxy_on_drain;
    rc = sl_upstream_send(px->up, pr->call.target->provider, &ureq, &proxy_cbs, pr, &r->log,
                          &pr->uc);
    if (rc < 0) {
        pr->uc = NULL;
        proxy_error(pr, 502, "api_error", "upstream_error", NULL,
                    sl_psprintf(r->pool, "cannot reach provider \"%s\": %s",
                                pr->call.target->provider->name, sl_strerror(rc)));
    }
}


/*
 * Reads and checks the client's JSON body without building a DOM (the
 * OpenAI passthrough forwards the bytes). Answers the client itself on
 * error, with the messages the proxy gave when it parsed with jansson.
 */
static int
proxy_parse(proxy_req_t *pr, sl_endpoint_e endpoint)
{
    sl_http_req_t *r = pr->r;
    sl_json_error_t jerr;
    sl_json_t *doc;
    sl_str_t model = sl_str_null;
    int v[PROXY_NKEYS];
    int usage = -1;
    int64_t n = 0;
    int64_t limit;
    int rc;

    if (r->body.len == 0) {
        proxy_error(pr, 400, "invalid_request_error", NULL, NULL,
                    "The request body is empty. Send a JSON object.");
        return SL_EPARSE;
    }
    if (pr->client != NULL && proxy_translate(pr) < 0) {
        return SL_EPARSE;
    }
    doc = sl_json_create(r->pool);
    if (sl_json_parse(doc, pr->in.p, pr->in.len, &jerr) < 0) {
        return proxy_parse_error(pr, &jerr, NULL);
    }
    switch (sl_json_type(doc, SL_JSON_ROOT)) {
    case SL_JSON_OBJECT:
        break;
    case SL_JSON_ARRAY:
        proxy_error(pr, 400, "invalid_request_error", NULL, NULL,
                    "The request body must be a JSON object.");
        return SL_EPARSE;
    default:
        /* jansson, as the proxy called it, takes only an object or an array */
        return proxy_parse_error(pr, NULL, "'[' or '{' expected");
    }

    /*
     * What jansson refused while parsing is refused before any field is
     * checked, as before: a repeated key (an ambiguous model is a routing
     * and billing hazard), a string it would not decode, an integer too big.
     */
    if (sl_json_lookup(doc, SL_JSON_ROOT, proxy_keys, PROXY_NKEYS, v) < 0
        || sl_json_lookup(doc, v[PROXY_KEY_STREAM_OPTIONS], &proxy_key_include_usage, 1, &usage)
               < 0) {
        return proxy_parse_error(pr, NULL, "duplicate object key");
    }
    if (sl_json_type(doc, v[PROXY_KEY_MODEL]) == SL_JSON_STRING
        && sl_json_string(doc, v[PROXY_KEY_MODEL], r->pool, &model) < 0) {
        return proxy_parse_error(pr, NULL, "invalid string");
    }
    rc = sl_json_int(doc, v[PROXY_KEY_MAX_COMPLETION_TOKENS], &n);
    if (rc == SL_ETOOBIG || sl_json_int(doc, v[PROXY_KEY_MAX_TOKENS], &limit) == SL_ETOOBIG) {
        return proxy_parse_error(pr, NULL, "too big integer");
    }
    if (rc != 0) {
        /* max_completion_tokens, when it is an integer, wins (even at 0) */
        rc = sl_json_int(doc, v[PROXY_KEY_MAX_TOKENS], &n);
    }
    if (rc == 0 && n > 0) {
        pr->max_tokens = (uint64_t) n;
    }

    if (model.len == 0) {
        bool missing = v[PROXY_KEY_MODEL] < 0;

        proxy_error(pr, 400, "invalid_request_error",
                    missing ? "missing_required_parameter" : "invalid_type", "model",
                    missing ? "You must provide a model parameter."
                            : "Invalid type for 'model': expected a non-empty string.");
        return SL_EPARSE;
    }
    pr->public_model = sl_pstrndup(r->pool, model.p, model.len);
    if (endpoint == SL_ENDPOINT_CHAT) {
        int m = v[PROXY_KEY_MESSAGES];
        sl_json_type_e st = sl_json_type(doc, v[PROXY_KEY_STREAM]);

        if (sl_json_type(doc, m) != SL_JSON_ARRAY || sl_json_size(doc, m) == 0) {
            proxy_error(pr, 400, "invalid_request_error",
                        m < 0 ? "missing_required_parameter" : "invalid_type", "messages",
                        m < 0 ? "Missing required parameter: 'messages'."
                              : "Invalid type for 'messages': expected a non-empty array.");
            return SL_EPARSE;
        }
        if (st != SL_JSON_NONE && st != SL_JSON_TRUE && st != SL_JSON_FALSE && st != SL_JSON_NULL) {
            proxy_error(pr, 400, "invalid_request_error", "invalid_type", "stream",
                        "Invalid type for 'stream': expected a boolean.");
            return SL_EPARSE;
        }
        pr->call.stream = st == SL_JSON_TRUE;
        pr->st.client_wants_usage = sl_json_is_true(doc, usage);
    } else if (endpoint == SL_ENDPOINT_EMBEDDINGS) {
        int in = v[PROXY_KEY_INPUT];
        sl_json_type_e t = sl_json_type(doc, in);

        if (t != SL_JSON_STRING && t != SL_JSON_ARRAY) {
            proxy_error(pr, 400, "invalid_request_error",
                        in < 0 ? "missing_required_parameter" : "invalid_type", "input",
                        in < 0 ? "Missing required parameter: 'input'."
                               : "Invalid type for 'input': expected a string or an array.");
            return SL_EPARSE;
        }
    }
    pr->call.raw = pr->in;
    pr->call.doc = doc;
    pr->call.model = v[PROXY_KEY_MODEL];
    pr->call.stream_options = v[PROXY_KEY_STREAM_OPTIONS];
    return 0;
}


/*
 * /v1/messages: the client's body -> the OpenAI chat body the rest of the
 * call reads (pr->in). Answers the client itself on error.
 */
static int
proxy_translate(proxy_req_t *pr)
{
    const char *why = NULL;
    sl_str_t out;

    if (pr->client->client_request(pr->r->pool, pr->r->body, &out, &why) < 0) {
        if (why == NULL) {
            json_t *root = sl_json_dom(pr->r->pool, pr->r->body);

            return proxy_parse_error(pr, NULL,
                                     json_is_array(root) ? "the request body must be a JSON object"
                                                         : "'[' or '{' expected");
        }
        proxy_error(pr, 400, "invalid_request_error", NULL, NULL, why);
        return SL_EPARSE;
    }
    pr->in = out;
    return 0;
}


/*
 * The 400 for a body that is not JSON. Its text is jansson's, as when the
 * proxy parsed with jansson: the reader only finds that the body is bad,
 * and this path is cold. Should jansson take what the reader refused, the
 * reader's reason (jerr, or why without a position) is given instead.
 */
static int
proxy_parse_error(proxy_req_t *pr, const sl_json_error_t *jerr, const char *why)
{
    sl_http_req_t *r = pr->r;
    json_error_t e;
    json_t *root = json_loadb(r->body.p, r->body.len, JSON_REJECT_DUPLICATES, &e);
    const char *msg;

    if (root == NULL) {
        msg = sl_psprintf(r->pool,
                          "We could not parse the JSON body of your request: %s "
                          "(line %d, column %d).",
                          e.text, e.line, e.column);
    } else if (jerr != NULL) {
        json_decref(root);
        msg = sl_psprintf(r->pool,
                          "We could not parse the JSON body of your request: %s "
                          "(line %u, column %u).",
                          jerr->text, jerr->line, jerr->column);
    } else {
        json_decref(root);
        msg = sl_psprintf(r->pool, "We could not parse the JSON body of your request: %s.", why);
    }
    proxy_error(pr, 400, "invalid_request_error", NULL, NULL, msg);
    return SL_EPARSE;
}


/* model alias -> its first target; "provider/model" -> that provider. */
static int
proxy_route(proxy_req_t *pr)
{
    const sl_conf_t *conf = pr->r->conf;
    const char *name = pr->public_model;
    const sl_model_conf_t *m = sl_conf_model(conf, name, strlen(name));
    const char *slash;

    if (m != NULL && m->ntargets > 0) {
        /* fall-back across targets arrives with the routing issue */
        pr->call.target = &m->targets[0];
        return 0;
    }
    slash = strchr(name, '/');
    if (slash != NULL && slash[1] != '\0') {
        const sl_provider_conf_t *p = sl_conf_provider(conf, name, (size_t) (slash - name));

        if (p != NULL && p->allow_direct) {
            pr->direct.provider = p;
            pr->direct.model = slash + 1;
            pr->direct.weight = 1;
            pr->call.target = &pr->direct;
            return 0;
        }
    }
    proxy_error(pr, 404, "invalid_request_error", "model_not_found", "model",
                sl_psprintf(pr->r->pool,
                            "The model `%s` does not exist or you do not have access to it.",
                            name));
    return SL_ENOTFOUND;
}


/* Client headers that may travel upstream to this target's provider (core/headers.h). */
static void
proxy_filter_headers(proxy_req_t *pr)
{
    sl_http_req_t *r = pr->r;
    sl_http_header_t *out = sl_palloc(r->pool, sizeof(*out) * (r->nheaders + 1));

    pr->call.headers = out;
    pr->call.nheaders =
        sl_headers_upstream(pr->call.target->provider, r->headers, r->nheaders, out);
}


/* Writes the x-sluice-* headers into h (room for 5); returns how many. */
static size_t
proxy_sluice_headers(proxy_req_t *pr, sl_http_header_t *h)
{
    size_t n = 0;
    const char *attempts;

    if (pr->acct.nrefs > 0 && (pr->acct.reserved_at != 0 || pr->acct.remaining != 0)) {
        char usd[32];
        const char *v =
            sl_pstrdup(pr->r->pool, sl_pricing_format_usd(pr->acct.remaining, usd, sizeof(usd)));

        h[n++] =
            (sl_http_header_t){ sl_str_lit("x-sluice-budget-remaining-usd"), { v, strlen(v) } };
    }
    if (pr->call.target == NULL) {
        return n;
    }
    attempts = sl_psprintf(pr->r->pool, "%u", pr->attempts);
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-provider"),
                                 { pr->call.target->provider->name,
                                   strlen(pr->call.target->provider->name) } };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-model"),
                                 { pr->call.target->model, strlen(pr->call.target->model) } };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-cache"), sl_str_lit("bypass") };
    h[n++] = (sl_http_header_t){ sl_str_lit("x-sluice-attempts"), { attempts, strlen(attempts) } };
    return n;
}


static void
proxy_error(proxy_req_t *pr, int status, const char *type, const char *code, const char *param,
            const char *message)
{
    sl_http_req_t *r = pr->r;
    sl_http_header_t h[8];
    size_t n = 0;
    json_t *err;
    json_t *root;
    char *body;

    n += proxy_sluice_headers(pr, &h[n]);
    if (pr->retry_after != NULL) {
        h[n++] = (sl_http_header_t){ sl_str_lit("retry-after"),
                                     { pr->retry_after, strlen(pr->retry_after) } };
    }
    proxy_record(pr, status, NULL);
    proxy_finish_log(pr, status);
    pr->done = true;
    if (pr->client != NULL) {
        sl_error_t e = {
            .status = status, .type = type, .code = code, .param = param, .message = message
        };

        proxy_respond_error(r, pr->client, status, h, n, &e);
        return;
    }
    err = json_pack("{s:s,s:s,s:s?,s:s?}", "message", message, "type", type, "param", param, "code",
                    code);
    root = json_pack("{s:o}", "error", err);
    body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    memmove(&h[1], &h[0], n * sizeof(h[0]));
    h[0] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("application/json") };
    n++;
    sl_http_respond(r, status, h, n, body, body != NULL ? strlen(body) : 0);
    free(body);
}


static void
proxy_finish_log(proxy_req_t *pr, int status)
{
    sl_http_req_t *r = pr->r;

    sl_metric_add(status == 499   ? SL_METRIC_REQUESTS_ABORTED
                  : status >= 500 ? SL_METRIC_REQUESTS_5XX
                  : status >= 400 ? SL_METRIC_REQUESTS_4XX
                                  : SL_METRIC_REQUESTS_2XX,
                  1);

    sl_log(&r->log, SL_LOG_INFO, 0, "\"%.*s %.*s\" %d model=%s target=%s/%s attempts=%u %llums",
           (int) r->method.len, r->method.p, (int) r->path.len, r->path.p, status,
           pr->public_model != NULL ? pr->public_model : "-",
           pr->call.target != NULL ? pr->call.target->provider->name : "-",
           pr->call.target != NULL ? pr->call.target->model : "-", pr->attempts,
           (unsigned long long) ((uv_hrtime() - r->start_ns) / 1000000));
}


static void
proxy_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                 size_t nheaders, void *data)
{
    proxy_req_t *pr = data;
    const sl_http_header_t *ct = sl_http_find_header(headers, nheaders, "content-type");
    const sl_http_header_t *ra = sl_http_find_header(headers, nheaders, "retry-after");
    sl_http_header_t h[8];
    size_t n = 0;
    const sl_upstream_timing_t *tm = sl_upstream_timing(uc);

    pr->status = status;
    if (tm->first_byte > tm->sent && tm->sent != 0) {
        pr->first_byte_us = (tm->first_byte - tm->sent) / 1000;
    }
    if (ra != NULL && ra->value.len > 0 && ra->value.len < 64) {
        pr->retry_after = sl_pstrndup(pr->r->pool, ra->value.p, ra->value.len);
    }
    if (!pr->call.stream || status < 200 || status > 299 || ct == NULL || ct->value.len < 17
        || !sl_mem_caseeq(ct->value.p, "text/event-stream", 17)) {
        return; /* buffered: a JSON answer or an error */
    }
    pr->streaming = true;
    h[n++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("text/event-stream") };
    h[n++] = (sl_http_header_t){ sl_str_lit("cache-control"), sl_str_lit("no-cache") };
    n += proxy_sluice_headers(pr, &h[n]);
    sl_http_start(pr->r, status, h, n);
}


static void
proxy_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data)
{
    proxy_req_t *pr = data;

    if (pr->streaming) {
        int rc = sl_sse_feed(&pr->sse, p, len, proxy_on_event, pr);

        if (pr->out.len > 0) {
            sl_http_write(pr->r, pr->out.p, pr->out.len);
            sl_buf_clear(&pr->out);
        }
        if (rc < 0) {
            sl_log(&pr->r->log, SL_LOG_WARN, rc, "bad event stream from provider \"%s\"",
                   pr->call.target->provider->name);
        }
        if (!pr->paused && sl_http_is_congested(pr->r)) {
            pr->paused = true;
            sl_upstream_pause(uc);
        }
        return;
    }
    if (pr->body.len + len > PROXY_MAX_UPSTREAM_BODY) {
        /* on_done reports it; stop collecting */
        return;
    }
    sl_buf_append(&pr->body, p, len);
}


/* One upstream event: the adapter translates it into pr->out and reads usage. */
static int
proxy_on_event(void *data, const sl_sse_event_t *ev)
{
    proxy_req_t *pr = data;
    const sl_provider_ops_t *ops = pr->call.target->provider->ops;
    sl_chunks_t out = { pr->client != NULL ? &pr->mid : &pr->out };
    int rc;

    if (pr->st.done || pr->st.failed) {
        return 0;
    }
    rc = ops->stream_event(pr->call.target->provider->ext, &pr->st, ev, &out);
    if (pr->client != NULL && pr->mid.len > 0) {
        proxy_client_events(pr, pr->mid.p, pr->mid.len);
        sl_buf_clear(&pr->mid);
    }
    return rc;
}


/* /v1/messages: OpenAI-framed events -> the client's format, into pr->out. */
static void
proxy_client_events(proxy_req_t *pr, const char *p, size_t len)
{
    int rc = sl_sse_feed(&pr->mid_sse, p, len, proxy_on_client_event, pr);

    if (rc < 0) {
        sl_log(&pr->r->log, SL_LOG_ERR, rc, "cannot re-read the gateway's own event stream");
    }
}


static int
proxy_on_client_event(void *data, const sl_sse_event_t *ev)
{
    proxy_req_t *pr = data;
    sl_chunks_t out = { &pr->out };

    pr->cst.usage = pr->st.usage;
    return pr->client->client_stream_event(&pr->cst, ev, &out);
}


/*
 * Usage of a stream that ended without the provider's numbers: estimated
 * from what was sent and what came back, about four bytes a token.
 */
static void
proxy_estimate(proxy_req_t *pr, sl_usage_t *u)
{
    *u = pr->st.usage;
    if (u->known) {
        return;
    }
    u->prompt_tokens = (pr->r->body.len + 3) / 4;
    u->completion_tokens = (pr->st.content_bytes + 3) / 4;
    u->estimated = true;
}


/* Writes the request's one ledger row (usage NULL: no tokens were used). */
static void
proxy_record(proxy_req_t *pr, int status, const sl_usage_t *usage)
{
    sl_http_req_t *r = pr->r;
    sl_ledger_row_t row;
    sl_usage_t none;
    struct timespec ts;
    uint64_t age = uv_hrtime() - r->start_ns;

    if (!pr->acct.authed || pr->acct.recorded) {
        return;
    }
    if (usage == NULL) {
        memset(&none, 0, sizeof(none));
        usage = &none;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(&row, 0, sizeof(row));
    row.time_ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec - (int64_t) age;
    row.request_id = r->request_id;
    row.endpoint = pr->client != NULL                            ? "messages"
                   : pr->call.endpoint == SL_ENDPOINT_EMBEDDINGS ? "embeddings"
                                                                 : "chat";
    row.model = pr->public_model != NULL ? pr->public_model : "";
    row.provider = pr->call.target != NULL ? pr->call.target->provider->name : "";
    row.served_model = pr->st.served_model != NULL ? pr->st.served_model
                       : pr->call.target != NULL   ? pr->call.target->model
                                                   : "";
    row.attempts = pr->attempts;
    row.status = (uint32_t) status;
    row.flags = pr->call.stream ? SL_LEDGER_STREAM : 0;
    row.latency_us = age / 1000;
    row.first_byte_us = pr->first_byte_us;
    sl_acct_record(pr->px->db, r->conf, &pr->acct, pr->call.target, usage, &row);
}


static void
proxy_on_drain(sl_http_req_t *r)
{
    proxy_req_t *pr = r->data;

    if (pr->paused && pr->uc != NULL) {
        pr->paused = false;
        sl_upstream_resume(pr->uc);
    }
}


static void
proxy_on_done(sl_upstream_call_t *uc, int rc, void *data)
{
    proxy_req_t *pr = data;
    sl_http_req_t *r = pr->r;
    const sl_provider_ops_t *ops = pr->call.target->provider->ops;
    const void *ext = pr->call.target->provider->ext;

    (void) uc;
    pr->uc = NULL;

    if (pr->streaming) {
        sl_usage_t usage;
        int status = pr->status;

        if (pr->st.failed) {
            /* the provider said so in the stream and the adapter told the client */
            sl_log(&r->log, SL_LOG_WARN, 0, "provider \"%s\" reported an error mid-stream",
                   pr->call.target->provider->name);
            sl_metric_add(SL_METRIC_STREAMS_BROKEN, 1);
            status = 502;
        } else if (rc < 0 || !pr->st.done) {
            /* the stream broke after it started: tell the client in-band, the way
             * OpenAI reports a failure mid-stream, so an SDK raises instead of
             * taking a truncated answer for a complete one */
            const char *ev = sl_psprintf(
                r->pool,
                "data: {\"error\":{\"message\":\"the upstream stream from provider \\\"%s\\\" "
                "was interrupted: %s\",\"type\":\"api_error\",\"param\":null,"
                "\"code\":\"upstream_stream_interrupted\"}}\n\n",
                pr->call.target->provider->name, sl_strerror(rc < 0 ? rc : SL_ECLOSED));

            sl_log(&r->log, SL_LOG_WARN, rc, "upstream stream from \"%s\" interrupted",
                   pr->call.target->provider->name);
            sl_metric_add(SL_METRIC_STREAMS_BROKEN, 1);
            if (pr->client != NULL) {
                proxy_client_events(pr, ev, strlen(ev));
                sl_http_write(r, pr->out.p, pr->out.len);
                sl_buf_clear(&pr->out);
            } else {
                sl_http_write(r, ev, strlen(ev));
            }
            status = 502;
        }
        /* the ledger row is committed before the stream's last bytes go out */
        proxy_estimate(pr, &usage);
        proxy_record(pr, status, &usage);
        if (status < 300 && pr->client != NULL) {
            sl_sse_event_t done = { sl_str_null, sl_str_lit("[DONE]"), sl_str_null };
            sl_chunks_t out = { &pr->out };

            pr->cst.usage = usage;
            pr->client->client_stream_event(&pr->cst, &done, &out);
            sl_http_write(r, pr->out.p, pr->out.len);
            sl_buf_clear(&pr->out);
        } else if (status < 300) {
            sl_http_write(r, "data: [DONE]\n\n", 14);
        }
        proxy_finish_log(pr, status);
        pr->done = true;
        sl_http_finish(r);
        return;
    }

    if (rc < 0 || pr->status >= 500) {
        sl_metric_add(SL_METRIC_UPSTREAM_ERRORS, 1);
    }
    if (rc == SL_ETIMEOUT) {
        proxy_error(pr, 504, "timeout_error", "upstream_timeout", NULL,
                    sl_psprintf(r->pool, "provider \"%s\" did not answer in time",
                                pr->call.target->provider->name));
        return;
    }
    if (rc < 0) {
        proxy_error(pr, 502, "api_error", "upstream_error", NULL,
                    sl_psprintf(r->pool, "provider \"%s\" failed: %s",
                                pr->call.target->provider->name, sl_strerror(rc)));
        return;
    }
    if (pr->body.len >= PROXY_MAX_UPSTREAM_BODY) {
        proxy_error(pr, 502, "api_error", "upstream_error", NULL,
                    "the provider's answer is larger than the gateway accepts");
        return;
    }
    if (pr->status >= 200 && pr->status <= 299) {
        sl_reply_t reply;
        sl_http_header_t h[7];
        size_t n = 0;

        memset(&reply, 0, sizeof(reply));
        if (ops->parse_response(ext, &pr->call, &pr->body, &reply) < 0) {
            proxy_error(pr, 502, "api_error", "upstream_invalid_response", NULL,
                        sl_psprintf(r->pool,
                                    "provider \"%s\" sent an answer that is not valid JSON",
                                    pr->call.target->provider->name));
            return;
        }
        if (reply.served_model != NULL) {
            pr->st.served_model = reply.served_model;
        }
        if (pr->client != NULL) {
            sl_str_t res;

            if (pr->client->client_response(r->pool, (sl_str_t){ reply.body, reply.body_len }, &res)
                < 0) {
                proxy_error(pr, 502, "api_error", "upstream_invalid_response", NULL,
                            sl_psprintf(r->pool,
                                        "provider \"%s\" sent an answer the gateway "
                                        "cannot turn into a message",
                                        pr->call.target->provider->name));
                return;
            }
            reply.body = res.p;
            reply.body_len = res.len;
        }
        proxy_record(pr, pr->status, &reply.usage);
        h[n++] = (sl_http_header_t){ sl_str_lit("content-type"), sl_str_lit("application/json") };
        n += proxy_sluice_headers(pr, &h[n]);
        proxy_finish_log(pr, pr->status);
        pr->done = true;
        sl_http_respond(r, pr->status, h, n, reply.body, reply.body_len);
        return;
    }

    sl_error_t e;

    memset(&e, 0, sizeof(e));
    ops->map_error(ext, pr->status, &pr->body, r->pool, &e);
    if (e.status >= 500) {
        sl_log(&r->log, SL_LOG_WARN, 0, "provider \"%s\" answered HTTP %d",
               pr->call.target->provider->name, pr->status);
    }
    proxy_error(pr, e.status, e.type, e.code, e.param, e.message);
}


static void
proxy_on_abort(sl_http_req_t *r)
{
    proxy_req_t *pr = r->data;

    if (pr->uc != NULL) {
        sl_upstream_cancel(pr->uc);
        pr->uc = NULL;
    }
    proxy_release(pr);
}


static void
proxy_release(proxy_req_t *pr)
{
    sl_usage_t usage;

    if (pr->done) {
        return;
    }
    if (pr->streaming) {
        proxy_estimate(pr, &usage);
        proxy_record(pr, 499, &usage);
    } else {
        proxy_record(pr, 499, NULL);
    }
    proxy_finish_log(pr, 499);
    pr->done = true;
    sl_http_finish(pr->r);
}
