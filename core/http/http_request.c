/*
 * Request assembly on llhttp: the URL, header names and values are
 * collected into the connection's request pool (growing by doubling, so a
 * client dribbling bytes costs linear memory) and the body into a heap
 * buffer reused across keep-alive requests. When the headers are complete
 * the request is checked (version, Host, Expect, Content-Length against
 * max_body) and gets its request id and CORS origin; when it is complete it
 * is routed (404, 405 with Allow, CORS preflight) and handed to its handler.
 */
#include "core/http/http_server_internal.h"

#include <stdio.h>
#include <string.h>

#include <llhttp.h>

#include "core/http/http.h"
#include "core/base/log.h"
#include "core/base/pool.h"

static void conn_options(sl_http_conn_t *c, const char *allow);
static void conn_cors_origin(sl_http_conn_t *c);
static int http_on_url(llhttp_t *p, const char *at, size_t len);
static int http_on_url_complete(llhttp_t *p);
static int http_on_header_field(llhttp_t *p, const char *at, size_t len);
static int http_on_header_field_complete(llhttp_t *p);
static int http_on_header_value(llhttp_t *p, const char *at, size_t len);
static int http_on_header_value_complete(llhttp_t *p);
static int http_on_headers_complete(llhttp_t *p);
static int http_on_body(llhttp_t *p, const char *at, size_t len);
static int http_on_message_complete(llhttp_t *p);
static int http_span_add(sl_http_conn_t *c, const char *at, size_t len);
static sl_str_t http_span_take(sl_http_conn_t *c);
static void http_split_url(sl_str_t url, sl_str_t *path, sl_str_t *query);
static bool http_rid_is_sane(sl_str_t id);


/* The llhttp callbacks every request parser of a server shares. */
void
sl__http_parser_settings(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_url = http_on_url;
    s->on_url_complete = http_on_url_complete;
    s->on_header_field = http_on_header_field;
    s->on_header_field_complete = http_on_header_field_complete;
    s->on_header_value = http_on_header_value;
    s->on_header_value_complete = http_on_header_value_complete;
    s->on_headers_complete = http_on_headers_complete;
    s->on_body = http_on_body;
    s->on_message_complete = http_on_message_complete;
}


void
sl__http_conn_headers_done(sl_http_conn_t *c)
{
    const sl_conf_t *conf = c->srv->conf;
    sl_http_req_t *r = &c->req;
    llhttp_t *p = &c->parser;
    const sl_str_t *expect;
    bool has_body;
    char msg[160];

    r->http_minor = p->http_minor;
    if (p->http_major != 1) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an HTTP/%u.%u request", c->addr,
               (unsigned) p->http_major, (unsigned) p->http_minor);
        r->http_minor = 1;
        if (p->http_major == 0) {
            sl__http_conn_fail(c, 400, "invalid_request",
                               "invalid HTTP request: HTTP/0.9 is not supported");
        } else {
            sl__http_conn_fail(c, 505, "http_version_not_supported", "HTTP version not supported.");
        }
        return;
    }

    r->method.p = llhttp_method_name((llhttp_method_t) p->method);
    r->method.len = strlen(r->method.p);
    c->head_only = p->method == HTTP_HEAD;
    http_split_url(c->url, &r->path, &r->query);
    sl__http_conn_request_id(c);
    conn_cors_origin(c);
    r->keepalive =
        llhttp_should_keep_alive(p) && !p->upgrade && !c->srv->draining
        && conf->keepalive_timeout > 0
        && (conf->keepalive_requests == 0 || c->nrequests + 1 < conf->keepalive_requests);

    if (r->http_minor >= 1 && sl_http_req_header(r, "host") == NULL) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an HTTP/1.1 request without Host", c->addr);
        sl__http_conn_fail(c, 400, "invalid_request", "invalid HTTP request: missing Host header");
        return;
    }
    has_body = (p->flags & F_CHUNKED) != 0
               || ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > 0);
    expect = r->http_minor >= 1 ? sl_http_req_header(r, "expect") : NULL;
    if (expect != NULL && !sl_str_caseeq(sl_str_trim(*expect), "100-continue")) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an unsupported expectation", c->addr);
        sl__http_conn_fail(c, 417, "expectation_failed",
                           "Only \"Expect: 100-continue\" is supported.");
        return;
    }
    if ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > conf->max_body) {
        sl_log(&c->log, SL_LOG_INFO, 0,
               "client %s intends to send too large a body: %llu bytes, max_body is %zu", c->addr,
               (unsigned long long) p->content_length, conf->max_body);
        snprintf(msg, sizeof(msg), "Request body too large: %llu bytes, the limit is %zu bytes.",
                 (unsigned long long) p->content_length, conf->max_body);
        sl__http_conn_fail(c, 413, "request_too_large", msg);
        return;
    }

    c->state = SL_HTTP_BODY;
    if (!has_body) {
        return;
    }
    if ((p->flags & F_CONTENT_LENGTH) != 0) {
        /*
         * Reserve what the client announced, but at most HTTP_BODY_RESERVE
         * before it has sent that much: an announcement costs nothing.
         */
        c->body_length = (size_t) p->content_length;
        sl_buf_reserve(&c->body,
                       c->body_length < HTTP_BODY_RESERVE ? c->body_length : HTTP_BODY_RESERVE);
    }
    if (expect != NULL && c->rpos == c->rlen) {
        uv_buf_t buf = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);

        sl__http_conn_send(c, &buf, 1);
    }
    sl__http_conn_timer(c, conf->body_timeout);
}


void
sl__http_conn_parse_error(sl_http_conn_t *c, llhttp_errno_t err)
{
    char msg[160];

    if (c->err_status != 0) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent a request refused with %d %s", c->addr,
               c->err_status, c->err_code);
        sl__http_conn_fail(c, c->err_status, c->err_code, c->err_message);
        return;
    }
    if (err == HPE_PAUSED_H2_UPGRADE || err == HPE_INVALID_VERSION) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an unsupported HTTP version", c->addr);
        sl__http_conn_fail(c, 505, "http_version_not_supported",
                           "HTTP version not supported: only HTTP/1.0 and HTTP/1.1 are served.");
        return;
    }
    snprintf(msg, sizeof(msg), "invalid HTTP request: %s", llhttp_get_error_reason(&c->parser));
    sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an %s", c->addr, msg);
    sl__http_conn_fail(c, 400, "invalid_request", msg);
}


/* The request is complete: route it and hand it to its handler. */
void
sl__http_conn_dispatch(sl_http_conn_t *c)
{
    sl_http_server_t *srv = c->srv;
    sl_http_req_t *r = &c->req;
    const sl_http_route_t *route = NULL;
    sl_http_header_t allow_h;
    char allow[256];
    size_t alen = 0;
    int n;

    r->body = (sl_str_t){ c->body.p != NULL ? c->body.p : "", c->body.len };
    c->state = SL_HTTP_BUSY;
    sl__http_conn_timer(c, 0);

    for (size_t i = 0; i < srv->nroutes; i++) {
        if (!sl__http_route_match(srv, i, r->path)) {
            continue;
        }
        if (sl_str_eq(r->method, srv->routes[i].method)) {
            route = &srv->routes[i];
            break;
        }
        n = snprintf(allow + alen, sizeof(allow) - alen, "%s%s", alen > 0 ? ", " : "",
                     srv->routes[i].method);
        if (n > 0 && (size_t) n < sizeof(allow) - alen) {
            alen += (size_t) n;
        }
    }

    if (route != NULL) {
        c->busy = true;
        route->handler(r);
        return;
    }
    if (alen == 0) {
        sl__http_conn_error(c, 404, NULL, 0, "invalid_request_error", "unknown_url", NULL,
                            sl_psprintf(c->pool, "Unknown request URL: %s %.*s.", r->method.p,
                                        (int) r->path.len, r->path.p));
        return;
    }
    allow[alen] = '\0';
    if (sl_str_eq(r->method, "OPTIONS") && srv->conf->cors.enabled) {
        conn_options(c, allow);
        return;
    }
    allow_h.name = sl_str_lit("Allow");
    allow_h.value = (sl_str_t){ allow, alen };
    sl__http_conn_error(c, 405, &allow_h, 1, "invalid_request_error", "method_not_allowed", NULL,
                        sl_psprintf(c->pool, "Method %s is not allowed for %.*s.", r->method.p,
                                    (int) r->path.len, r->path.p));
}


/* OPTIONS on a known path with CORS on: a preflight answer, or just Allow. */
static void
conn_options(sl_http_conn_t *c, const char *allow)
{
    sl_http_req_t *r = &c->req;
    const sl_str_t *acrh;
    sl_http_header_t h[4];
    size_t n = 0;
    char age[24];

    if (sl_http_req_header(r, "access-control-request-method") == NULL) {
        h[n].name = sl_str_lit("Allow");
        h[n++].value = (sl_str_t){ allow, strlen(allow) };
        sl__http_conn_respond(c, 204, h, n, NULL, 0);
        return;
    }
    acrh = sl_http_req_header(r, "access-control-request-headers");
    h[n].name = sl_str_lit("Access-Control-Allow-Methods");
    h[n++].value = (sl_str_t){ allow, strlen(allow) };
    h[n].name = sl_str_lit("Access-Control-Allow-Headers");
    h[n++].value = acrh != NULL && acrh->len > 0 ? *acrh : sl_str_lit(HTTP_CORS_HEADERS);
    if (r->conf->cors.max_age > 0) {
        h[n].name = sl_str_lit("Access-Control-Max-Age");
        h[n++].value =
            (sl_str_t){ age, (size_t) (sl__http_put_uint(age, r->conf->cors.max_age) - age) };
    }
    sl__http_conn_respond(c, 204, h, n, NULL, 0);
}


/* The client's x-request-id when it is sane, else prefix + counter. */
void
sl__http_conn_request_id(sl_http_conn_t *c)
{
    sl_http_req_t *r = &c->req;
    const sl_str_t *h = r->nheaders > 0 ? sl_http_req_header(r, "x-request-id") : NULL;
    char *p;

    if (h != NULL && http_rid_is_sane(*h)) {
        memcpy(c->rid, h->p, h->len);
        c->rid[h->len] = '\0';
    } else {
        p = sl__http_cat(c->rid, c->srv->rid_prefix, 16);
        p = sl__http_put_hex(p, c->srv->rid_counter++, 16);
        *p = '\0';
    }
    r->request_id = c->rid;
}


static void
conn_cors_origin(sl_http_conn_t *c)
{
    const sl_cors_conf_t *cors = &c->srv->conf->cors;
    const sl_str_t *origin;
    bool star = false;

    if (!cors->enabled) {
        return;
    }
    origin = sl_http_req_header(&c->req, "origin");
    if (origin == NULL || origin->len == 0) {
        return;
    }
    for (size_t i = 0; i < cors->norigins; i++) {
        if (strcmp(cors->origins[i], "*") == 0) {
            star = true;
        } else if (sl_str_eq(*origin, cors->origins[i])) {
            c->cors_origin = *origin;
        }
    }
    if (star) {
        c->cors_origin = sl_str_lit("*");
    }
}


static int
http_on_url(llhttp_t *p, const char *at, size_t len)
{
    return http_span_add(p->data, at, len);
}


static int
http_on_url_complete(llhttp_t *p)
{
    sl_http_conn_t *c = p->data;

    c->url = http_span_take(c);
    return 0;
}


static int
http_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    return http_span_add(p->data, at, len);
}


static int
http_on_header_field_complete(llhttp_t *p)
{
    sl_http_conn_t *c = p->data;

    c->hname = http_span_take(c);
    if (c->hname.len == 0) {
        /* llhttp takes ":name: value" as a field with an empty name; a field name is a token */
        c->err_status = 400;
        c->err_code = "invalid_request";
        c->err_message = "invalid HTTP request: empty header name";
        return -1;
    }
    return 0;
}


static int
http_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    return http_span_add(p->data, at, len);
}


static int
http_on_header_value_complete(llhttp_t *p)
{
    sl_http_conn_t *c = p->data;
    sl_http_req_t *r = &c->req;
    sl_http_header_t *h;
    sl_str_t value = sl_str_trim(http_span_take(c));

    if (c->state == SL_HTTP_BODY) {
        /*
         * A trailer field of a chunked body: not merged into the header
         * section the handler sees (RFC 9110 6.5.1), where it would add a
         * Content-Length, a Host or a credential after framing was decided.
         * Dropped, within the header size budget.
         */
        c->trl_bytes += c->hname.len + value.len + 4;
        if (c->trl_bytes > c->srv->conf->max_header_size) {
            c->err_status = 431;
            c->err_code = "request_header_fields_too_large";
            c->err_message = "Request trailer fields too large.";
            return -1;
        }
        return 0;
    }
    if (r->nheaders >= c->srv->conf->max_headers) {
        c->err_status = 431;
        c->err_code = "request_header_fields_too_large";
        c->err_message = "Too many request header fields.";
        return -1;
    }
    if (r->nheaders == c->hcap) {
        size_t cap = c->hcap == 0 ? HTTP_NHEADERS : c->hcap * 2;

        h = sl_palloc(c->pool, cap * sizeof(*h));
        if (r->nheaders > 0) {
            memcpy(h, r->headers, r->nheaders * sizeof(*h));
        }
        r->headers = h;
        c->hcap = cap;
    }
    /* the value lives in our pool copy, so it can be NUL-terminated in place */
    ((char *) value.p)[value.len] = '\0';
    r->headers[r->nheaders].name = c->hname;
    r->headers[r->nheaders].value = value;
    r->nheaders++;
    return 0;
}


static int
http_on_headers_complete(llhttp_t *p)
{
    sl_http_conn_t *c = p->data;

    /* pause so sl__http_conn_headers_done sees exactly where the headers ended */
    c->hdr_paused = true;
    return HPE_PAUSED;
}


static int
http_on_body(llhttp_t *p, const char *at, size_t len)
{
    sl_http_conn_t *c = p->data;

    if (c->body.len + len > c->srv->conf->max_body) {
        c->err_status = 413;
        c->err_code = "request_too_large";
        c->err_message = "Request body too large.";
        return -1;
    }
    if (c->direct && at == c->body.p + c->body.len) {
        c->body.len += len; /* read there directly (conn_direct_room) */
        return 0;
    }
    if (c->body.len + len > c->body.cap && c->body_length > c->body.len) {
        sl_buf_reserve(&c->body, c->body_length - c->body.len);
    }
    sl_buf_append(&c->body, at, len);
    return 0;
}


static int
http_on_message_complete(llhttp_t *p)
{
    /* the next pipelined request waits until this one is answered */
    return HPE_PAUSED;
}


/*
 * Appends a piece of the URL, a header name or a header value. Pieces are
 * split only at read boundaries; the span grows by doubling in the request
 * pool so a client dribbling bytes costs linear memory.
 */
static int
http_span_add(sl_http_conn_t *c, const char *at, size_t len)
{
    size_t need = c->span_len + len;
    size_t cap;
    char *s;

    if (len == 0) {
        /* llhttp reports empty pieces (an empty header value); nothing to keep */
        return 0;
    }
    if (need > c->srv->conf->max_header_size) {
        c->err_status = 431;
        c->err_code = "request_header_fields_too_large";
        c->err_message = "Request header fields too large.";
        return -1;
    }
    if (need > c->span_cap) {
        cap = c->span_cap == 0 ? need : c->span_cap * 2;
        if (cap < need) {
            cap = need;
        }
        s = sl_palloc(c->pool, cap + 1);
        if (c->span_len > 0) {
            memcpy(s, c->span, c->span_len);
        }
        c->span = s;
        c->span_cap = cap;
    }
    memcpy(c->span + c->span_len, at, len);
    c->span_len = need;
    return 0;
}


static sl_str_t
http_span_take(sl_http_conn_t *c)
{
    sl_str_t s;

    if (c->span == NULL) {
        s.p = sl_pstrndup(c->pool, "", 0);
        s.len = 0;
        return s;
    }
    c->span[c->span_len] = '\0';
    s.p = c->span;
    s.len = c->span_len;
    c->span = NULL;
    c->span_len = 0;
    c->span_cap = 0;
    return s;
}


/*
 * Splits the request target into path and query. The absolute form
 * "http://host/path?q" (RFC 9112 3.2.2) is reduced to its path.
 */
static void
http_split_url(sl_str_t url, sl_str_t *path, sl_str_t *query)
{
    const char *q;
    const char *slash;
    size_t skip = 0;

    if (url.len > 7 && sl_mem_caseeq(url.p, "http://", 7)) {
        skip = 7;
    } else if (url.len > 8 && sl_mem_caseeq(url.p, "https://", 8)) {
        skip = 8;
    }
    if (skip > 0) {
        slash = memchr(url.p + skip, '/', url.len - skip);
        q = memchr(url.p + skip, '?', url.len - skip);
        if (slash == NULL || (q != NULL && q < slash)) {
            /* no path: the origin itself */
            *path = sl_str_lit("/");
            *query = q != NULL ? (sl_str_t){ q + 1, (size_t) (url.p + url.len - q - 1) }
                               : (sl_str_t){ "", 0 };
            return;
        }
        url.len -= (size_t) (slash - url.p);
        url.p = slash;
    }
    q = memchr(url.p, '?', url.len);
    if (q != NULL) {
        *path = (sl_str_t){ url.p, (size_t) (q - url.p) };
        *query = (sl_str_t){ q + 1, url.len - path->len - 1 };
    } else {
        *path = url;
        *query = (sl_str_t){ "", 0 };
    }
}


bool
sl__http_route_match(const sl_http_server_t *srv, size_t i, sl_str_t path)
{
    const http_route_info_t *info = &srv->info[i];

    if (info->prefix) {
        return path.len >= info->len && memcmp(path.p, srv->routes[i].path, info->len) == 0;
    }
    return path.len == info->len && memcmp(path.p, srv->routes[i].path, info->len) == 0;
}


static bool
http_rid_is_sane(sl_str_t id)
{
    if (id.len == 0 || id.len > HTTP_RID_MAX) {
        return false;
    }
    for (size_t i = 0; i < id.len; i++) {
        char ch = id.p[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
              || ch == '.' || ch == '_' || ch == ':' || ch == '-')) {
            return false;
        }
    }
    return true;
}
