/*
 * The response side: the handler-facing API (whole responses, streams with
 * chunked encoding or close-delimited on HTTP/1.0, backpressure), the head
 * writer (status line, the server's own headers, handler headers with
 * control characters neutralised), the server's own error bodies in
 * OpenAI's shape or the route's, the write path (uv_try_write first, then a
 * queued copy of what the kernel did not take; through the TLS session on a
 * TLS connection) and the access log line.
 */
#include "core/http/http_server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/http/http.h"
#include "core/base/log.h"
#include "core/http/tls.h"

static unsigned http_piece(sl_http_conn_t *c, const char *data, size_t len, char *line,
                           const char *end, uv_buf_t bufs[3]);
static void conn_access_log(sl_http_conn_t *c);
static void conn_access_log_json(sl_http_conn_t *c, uint64_t us);
static void http_log_str(sl_buf_t *b, const char *p, size_t n);
static sl_http_error_cb conn_error_format(const sl_http_conn_t *c);
static void conn_build_head(sl_http_conn_t *c, int status, const sl_http_header_t *headers,
                            size_t nheaders, sl_http_body_e body, size_t clen);
static void conn_on_write(uv_write_t *req, int status);
static void conn_on_write_run(uv_write_t *req, int status);
static int conn_finish(sl_http_conn_t *c);
static bool http_header_is_ours(sl_str_t name);
static bool http_status_has_body(int status);
static char *http_cat_field(char *p, const char *s, size_t n);
static json_t *http_json_string(const char *s);
static char *http_error_json(const char *type, const char *code, const char *param,
                             const char *message);


int
sl_http_respond(sl_http_req_t *r, int status, const sl_http_header_t *headers, size_t nheaders,
                const char *body, size_t len)
{
    sl_http_conn_t *c = sl__http_conn(r);

    if (c->finished || c->streaming) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_respond() on a started response");
        return -EINVAL;
    }
    if (r->aborted || c->closing) {
        return conn_finish(c);
    }
    return sl__http_conn_respond(c, status, headers, nheaders, body, len);
}


int
sl_http_respond_error(sl_http_req_t *r, int status, const char *type, const char *code,
                      const char *param, const char *message)
{
    sl_http_conn_t *c = sl__http_conn(r);

    if (c->finished || c->streaming) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_respond_error() on a started response");
        return -EINVAL;
    }
    if (r->aborted || c->closing) {
        return conn_finish(c);
    }
    return sl__http_conn_error(c, status, NULL, 0, type, code, param, message);
}


int
sl_http_start(sl_http_req_t *r, int status, const sl_http_header_t *headers, size_t nheaders)
{
    sl_http_conn_t *c = sl__http_conn(r);

    if (c->finished || c->streaming) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_start() on a started response");
        return -EINVAL;
    }
    c->streaming = true;
    if (r->aborted || c->closing) {
        return SL_ECLOSED;
    }
    c->chunked = r->http_minor >= 1;
    if (!c->chunked) {
        r->keepalive = false;
    }
    conn_build_head(c, status, headers, nheaders,
                    c->chunked ? SL_HTTP_BODY_CHUNKED : SL_HTTP_BODY_CLOSE, 0);
    /* held for the first piece (or the end): one write instead of two */
    sl_buf_clear(&c->held);
    sl_buf_append(&c->held, c->srv->head.p, c->srv->head.len);
    return 0;
}


int
sl_http_write(sl_http_req_t *r, const char *data, size_t len)
{
    sl_http_conn_t *c = sl__http_conn(r);
    char line[24];
    uv_buf_t bufs[3];
    unsigned n;

    if (!c->streaming || c->finished) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_write() outside a streaming response");
        return -EINVAL;
    }
    if (r->aborted || c->closing) {
        return SL_ECLOSED;
    }
    if (len == 0 || c->head_only) {
        /* an empty chunk would end the body */
        return 0;
    }
    n = http_piece(c, data, len, line, "\r\n", bufs);
    return sl__http_conn_send(c, bufs, n);
}


int
sl_http_finish(sl_http_req_t *r)
{
    return sl_http_finish_with(r, NULL, 0);
}


int
sl_http_finish_with(sl_http_req_t *r, const char *data, size_t len)
{
    sl_http_conn_t *c = sl__http_conn(r);
    char line[24];
    uv_buf_t bufs[3];
    unsigned n = 0;
    int rc = 0;

    if (c->finished) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_finish() on a finished response");
        return -EINVAL;
    }
    if (r->aborted || c->closing) {
        return conn_finish(c);
    }
    if (!c->streaming) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_finish() without sl_http_start()");
        return sl__http_conn_error(c, 500, NULL, 0, "server_error", NULL, NULL,
                                   "The server had an error while processing your request.");
    }
    if (len > 0 && !c->head_only) {
        /* the last piece and the body's end in one write */
        n = http_piece(c, data, len, line, "\r\n0\r\n\r\n", bufs);
    } else if (c->chunked && !c->head_only) {
        bufs[n++] = uv_buf_init("0\r\n\r\n", 5);
    }
    if (n > 0 || c->held.len > 0) {
        rc = sl__http_conn_send(c, bufs, n); /* with the head, if nothing was written yet */
    }
    conn_finish(c);
    return rc;
}


/*
 * The buffers of one piece of a streaming body: as it is when close-delimited
 * (HTTP/1.0), else a chunk of it, its size in line, ended by end ("\r\n",
 * or that and the last chunk). Returns how many.
 */
static unsigned
http_piece(sl_http_conn_t *c, const char *data, size_t len, char *line, const char *end,
           uv_buf_t bufs[3])
{
    char *p;

    if (!c->chunked) {
        bufs[0] = uv_buf_init((char *) data, (unsigned) len);
        return 1;
    }
    p = sl__http_put_hex(line, len, 0);
    p = sl__http_cat_lit(p, "\r\n");
    bufs[0] = uv_buf_init(line, (unsigned) (p - line));
    bufs[1] = uv_buf_init((char *) data, (unsigned) len);
    bufs[2] = uv_buf_init((char *) end, (unsigned) strlen(end));
    return 3;
}


bool
sl_http_is_congested(const sl_http_req_t *r)
{
    return sl__http_conn(r)->congested;
}


size_t
sl_http_queued(const sl_http_req_t *r)
{
    return sl__http_conn(r)->queued;
}


/*
 * One access log line per request, combined-log style plus the request id
 * and the time taken: never a header value (they may carry keys) or a body.
 */
static void
conn_access_log(sl_http_conn_t *c)
{
    sl_http_req_t *r = &c->req;
    char line[1024];
    struct tm tm;
    time_t now;
    uint64_t us;
    int n;

    if (c->logged || !sl_access_log_enabled() || c->resp_status == 0) {
        return;
    }
    c->logged = true;
    us = (sl_clock_ns() - r->start_ns) / 1000;
    if (r->conf->access_log_json) {
        conn_access_log_json(c, us);
        return;
    }
    now = time(NULL);
    gmtime_r(&now, &tm);
    n = snprintf(line, sizeof(line),
                 "%s [%04d-%02d-%02dT%02d:%02d:%02dZ] \"%.*s %.*s HTTP/1.%u\" %d %llu %llu.%06llu "
                 "%s%s\n",
                 c->addr, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int) (r->method.len > 16 ? 16 : r->method.len), r->method.p,
                 (int) (r->path.len > 512 ? 512 : r->path.len), r->path.p, r->http_minor,
                 c->resp_status, (unsigned long long) c->resp_bytes,
                 (unsigned long long) (us / 1000000), (unsigned long long) (us % 1000000),
                 r->aborted ? "aborted " : "", r->request_id != NULL ? r->request_id : "-");
    if (n > 0) {
        sl_access_log_write(line, (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1);
    }
}


/*
 * The JSON form of the access log line (server.access_log_format: json):
 * one object, the server's fields and then the handler's (r->log_fields),
 * strings escaped and any bytes that are not UTF-8 replaced, so every line
 * parses. Never a header value or a body.
 */
static void
conn_access_log_json(sl_http_conn_t *c, uint64_t us)
{
    sl_http_req_t *r = &c->req;
    sl_buf_t b = SL_BUF_INIT;
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    sl_buf_printf(&b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"remote_addr\":",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  ts.tv_nsec / 1000000);
    http_log_str(&b, c->addr, strlen(c->addr));
    sl_buf_puts(&b, ",\"method\":");
    http_log_str(&b, r->method.p, r->method.len > 16 ? 16 : r->method.len);
    sl_buf_puts(&b, ",\"path\":");
    http_log_str(&b, r->path.p, r->path.len > 512 ? 512 : r->path.len);
    sl_buf_printf(&b,
                  ",\"protocol\":\"HTTP/1.%u\",\"status\":%d,\"bytes\":%llu,"
                  "\"duration_ms\":%llu.%03llu,\"aborted\":%s,\"request_id\":",
                  r->http_minor, c->resp_status, (unsigned long long) c->resp_bytes,
                  (unsigned long long) (us / 1000), (unsigned long long) (us % 1000),
                  r->aborted ? "true" : "false");
    if (r->request_id != NULL) {
        http_log_str(&b, r->request_id, strlen(r->request_id));
    } else {
        sl_buf_puts(&b, "null");
    }
    if (r->log_fields.len > 0) {
        sl_buf_append(&b, r->log_fields.p, r->log_fields.len);
    }
    sl_buf_puts(&b, "}\n");
    sl_access_log_write(b.p, b.len);
    sl_buf_free(&b);
}


/* A JSON string of p[0..n): escaped, each byte that does not start valid UTF-8 as U+FFFD. */
static void
http_log_str(sl_buf_t *b, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *) p;

    sl_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t len;

        if (u[i] == '"' || u[i] == '\\') {
            sl_buf_printf(b, "\\%c", u[i]);
            i++;
        } else if (u[i] < 0x20 || u[i] == 0x7f) {
            sl_buf_printf(b, "\\u%04x", u[i]);
            i++;
        } else if ((len = sl_utf8_char_len(p + i, n - i)) == 0) {
            sl_buf_puts(b, "\\ufffd");
            i++;
        } else {
            sl_buf_append(b, u + i, len);
            i += len;
        }
    }
    sl_buf_append(b, "\"", 1);
}


/*
 * The server refuses the request it is reading: answer status, then close
 * the connection (after draining what the client still sends).
 */
void
sl__http_conn_fail(sl_http_conn_t *c, int status, const char *code, const char *message)
{
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";

    c->state = SL_HTTP_BUSY;
    c->hdr_paused = false;
    c->linger = true;
    c->req.keepalive = false;
    sl__http_conn_timer(c, 0);
    if (c->req.request_id == NULL) {
        sl__http_conn_request_id(c);
    }
    sl__http_conn_error(c, status, NULL, 0, type, code, NULL, message);
}


int
sl__http_conn_error(sl_http_conn_t *c, int status, const sl_http_header_t *headers, size_t nheaders,
                    const char *type, const char *code, const char *param, const char *message)
{
    sl_http_header_t h[8];
    sl_http_error_cb fmt;
    sl_str_t own;
    char *body;
    size_t n = 0;
    int rc;

    h[n].name = sl_str_lit("Content-Type");
    h[n++].value = sl_str_lit("application/json");
    for (size_t i = 0; i < nheaders && n < sizeof(h) / sizeof(h[0]); i++) {
        h[n++] = headers[i];
    }
    fmt = conn_error_format(c);
    if (fmt != NULL && c->pool != NULL
        && fmt(c->pool, status, type, code, param, message, &own) == 0) {
        return sl__http_conn_respond(c, status, h, n, own.p, own.len);
    }
    body = http_error_json(type, code, param, message);
    if (body == NULL) {
        static const char oom[] = "{\"error\":{\"message\":\"internal error\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}";

        return sl__http_conn_respond(c, status, h, n, oom, sizeof(oom) - 1);
    }
    rc = sl__http_conn_respond(c, status, h, n, body, strlen(body));
    free(body);
    return rc;
}


/* The error formatter of the route the request's path belongs to (any method), or NULL. */
static sl_http_error_cb
conn_error_format(const sl_http_conn_t *c)
{
    const sl_http_server_t *srv = c->srv;

    if (c->req.path.len == 0) {
        return NULL; /* the path is not known yet (errors in the request line or headers) */
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (srv->routes[i].error != NULL && sl__http_route_match(srv, i, c->req.path)) {
            return srv->routes[i].error;
        }
    }
    return NULL;
}


/* Sends a whole response and finishes the request. */
int
sl__http_conn_respond(sl_http_conn_t *c, int status, const sl_http_header_t *headers,
                      size_t nheaders, const char *body, size_t len)
{
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    int rc;

    if (!http_status_has_body(status)) {
        len = 0;
        conn_build_head(c, status, headers, nheaders, SL_HTTP_BODY_NONE, 0);
    } else {
        conn_build_head(c, status, headers, nheaders, SL_HTTP_BODY_LENGTH, len);
    }
    bufs[0] = uv_buf_init(c->srv->head.p, (unsigned) c->srv->head.len);
    if (len > 0 && !c->head_only) {
        bufs[nbufs++] = uv_buf_init((char *) body, (unsigned) len);
    }
    rc = sl__http_conn_send(c, bufs, nbufs);
    conn_finish(c);
    return rc;
}


static void
conn_build_head(sl_http_conn_t *c, int status, const sl_http_header_t *headers, size_t nheaders,
                sl_http_body_e body, size_t clen)
{
    sl_http_req_t *r = &c->req;
    const char *reason;
    const char *date;

    if (status >= 200) {
        c->resp_status = status;
        if (c->peer_check) {
            /* the response's own writes meet a gone client */
            c->peer_check = false;
            if (c->queued == 0) {
                sl__http_conn_timer(c, 0);
            }
        }
    }
    size_t need;
    char *p;

    if (status < 100 || status > 999) {
        status = 500;
    }
    reason = sl_http_reason(status);
    /* after a half-close, the last request read is the last one answered */
    r->keepalive = r->keepalive && !c->srv->draining && !(c->eof && c->rpos == c->rlen)
                   && body != SL_HTTP_BODY_CLOSE;
    need = 512 + strlen(reason) + HTTP_RID_MAX + c->cors_origin.len;
    for (size_t i = 0; i < nheaders; i++) {
        need += headers[i].name.len + headers[i].value.len + 4;
    }
    /* one scratch buffer for every head: sl__http_conn_send copies what the socket does not take */
    sl_buf_clear(&c->srv->head);
    sl_buf_reserve(&c->srv->head, need);

    p = c->srv->head.p;
    p = sl__http_cat_lit(p, "HTTP/1.1 ");
    p = sl__http_put_uint(p, (uint64_t) status);
    *p++ = ' ';
    p = sl__http_cat(p, reason, strlen(reason));
    p = sl__http_cat_lit(p, "\r\nServer: sluice\r\nDate: ");
    date = sl__http_server_date(c->srv);
    p = sl__http_cat(p, date, strlen(date));
    p = sl__http_cat_lit(p, "\r\n");
    /*
     * A handler's header values may carry what a client sent (a model
     * name): a name that is not a token drops its header, and a value's
     * control characters (CR and LF included, and DEL) go out as '?', so no
     * byte of a value can end or split the header or trip a strict client.
     */
    for (size_t i = 0; i < nheaders; i++) {
        const sl_http_header_t *h = &headers[i];

        if (http_header_is_ours(h->name)) {
            continue;
        }
        if (!sl_http_is_token(h->name)) {
            sl_log(&c->log, SL_LOG_INFO, 0, "response header with an invalid name dropped");
            continue;
        }
        p = sl__http_cat(p, h->name.p, h->name.len);
        p = sl__http_cat_lit(p, ": ");
        if (sl_http_is_field_value(h->value)) {
            p = sl__http_cat(p, h->value.p, h->value.len);
        } else {
            sl_log(&c->log, SL_LOG_INFO, 0,
                   "control characters in the value of response header \"%.*s\" sent as '?'",
                   (int) h->name.len, h->name.p);
            p = http_cat_field(p, h->value.p, h->value.len);
        }
        p = sl__http_cat_lit(p, "\r\n");
    }
    switch (body) {
    case SL_HTTP_BODY_LENGTH:
        p = sl__http_cat_lit(p, "Content-Length: ");
        p = sl__http_put_uint(p, clen);
        p = sl__http_cat_lit(p, "\r\n");
        break;
    case SL_HTTP_BODY_CHUNKED:
        p = sl__http_cat_lit(p, "Transfer-Encoding: chunked\r\n");
        break;
    default:
        break;
    }
    if (r->keepalive) {
        p = sl__http_cat_lit(p, "Connection: keep-alive\r\n");
    } else {
        p = sl__http_cat_lit(p, "Connection: close\r\n");
    }
    p = sl__http_cat_lit(p, "x-request-id: ");
    p = sl__http_cat(p, r->request_id, strlen(r->request_id));
    p = sl__http_cat_lit(p, "\r\n");
    if (c->cors_origin.len > 0) {
        p = sl__http_cat_lit(p, "Access-Control-Allow-Origin: ");
        p = sl__http_cat(p, c->cors_origin.p, c->cors_origin.len);
        p = sl__http_cat_lit(
            p, "\r\nVary: Origin\r\nAccess-Control-Expose-Headers: " HTTP_EXPOSE_HEADERS "\r\n");
    }
    p = sl__http_cat_lit(p, "\r\n");
    c->srv->head.len = (size_t) (p - c->srv->head.p);
}


/*
 * Writes bufs now as far as the socket takes them and queues a copy of the
 * rest. Returns 0, or SL_ECLOSED when the connection is gone (it is then
 * closing and the request aborted).
 */
int
sl__http_conn_send(sl_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
{
    uv_buf_t all[HTTP_SEND_BUFS + 1];

    if (c->closing) {
        return SL_ECLOSED;
    }
    if (c->held.len > 0) {
        /* a streaming response's head goes with its first bytes */
        SL_ASSERT(nbufs <= HTTP_SEND_BUFS);
        all[0] = uv_buf_init(c->held.p, (unsigned) c->held.len);
        for (unsigned i = 0; i < nbufs; i++) {
            all[i + 1] = bufs[i];
        }
        bufs = all;
        nbufs++;
        c->held.len = 0; /* the bytes stay valid until the send below copied what it queues */
    }
    for (unsigned i = 0; i < nbufs; i++) {
        c->resp_bytes += bufs[i].len;
    }
    if (c->tls == NULL) {
        return sl__http_conn_send_raw(c, bufs, nbufs);
    }
    for (unsigned i = 0; i < nbufs; i++) {
        if (sl_tls_write(c->tls, bufs[i].base, bufs[i].len) != 0) {
            sl_log(&c->log, SL_LOG_INFO, 0, "TLS write to client %s failed: %s", c->addr,
                   sl_tls_last_error(c->tls));
            c->tls_quiet = true;
            sl__http_conn_close(c);
            return SL_ECLOSED;
        }
    }
    return sl__http_conn_tls_flush(c);
}


/* sl__http_conn_send for bytes as they go on the wire (ciphertext on a TLS connection). */
int
sl__http_conn_send_raw(sl_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
{
    http_write_t *w;
    size_t total = 0;
    size_t done = 0;
    size_t off = 0;
    uv_buf_t buf;
    int rc;

    if (c->closing) {
        return SL_ECLOSED;
    }
    for (unsigned i = 0; i < nbufs; i++) {
        total += bufs[i].len;
    }
    if (c->queued == 0) {
        rc = uv_try_write((uv_stream_t *) &c->tcp, bufs, nbufs);
        if (rc < 0 && rc != UV_EAGAIN) {
            sl_log(&c->log, SL_LOG_INFO, rc, "writev() to client %s failed", c->addr);
            sl__http_conn_close(c);
            return SL_ECLOSED;
        }
        done = rc > 0 ? (size_t) rc : 0;
        if (done == total) {
            return 0;
        }
    }

    w = sl_xmalloc(sizeof(*w) + total - done);
    w->c = c;
    w->len = total - done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t skip = done > bufs[i].len ? bufs[i].len : done;

        done -= skip;
        memcpy(w->data + off, bufs[i].base + skip, bufs[i].len - skip);
        off += bufs[i].len - skip;
    }
    buf = uv_buf_init(w->data, (unsigned) w->len);
    rc = uv_write(&w->req, (uv_stream_t *) &c->tcp, &buf, 1, conn_on_write);
    if (rc < 0) {
        sl_log(&c->log, SL_LOG_INFO, rc, "uv_write() to client %s failed", c->addr);
        free(w);
        sl__http_conn_close(c);
        return SL_ECLOSED;
    }
    if (c->queued == 0 && c->state != SL_HTTP_BODY) {
        sl__http_conn_timer(c, c->srv->conf->send_timeout);
    }
    c->queued += w->len;
    if (c->queued > HTTP_HIGH_WATER) {
        c->congested = true;
    }
    return 0;
}


/* The callback with the clock read once for its whole run (core/base/clock.h). */
static void
conn_on_write(uv_write_t *req, int status)
{
    sl_clock_enter();
    conn_on_write_run(req, status);
    sl_clock_leave();
}


static void
conn_on_write_run(uv_write_t *req, int status)
{
    http_write_t *w = (http_write_t *) req;
    sl_http_conn_t *c = w->c;

    c->queued -= w->len;
    free(w);
    if (c->closing) {
        return;
    }
    if (status < 0) {
        sl_log(&c->log, SL_LOG_INFO, status, "writev() to client %s failed", c->addr);
        sl__http_conn_close(c);
        return;
    }
    if (c->state == SL_HTTP_BUSY || c->state == SL_HTTP_SENDING) {
        /* progress re-arms send_timeout */
        if (c->queued > 0) {
            sl__http_conn_timer(c, c->srv->conf->send_timeout);
        } else if (c->peer_check && c->state == SL_HTTP_BUSY) {
            sl__http_conn_timer(c, HTTP_PEER_CHECK);
        } else {
            sl__http_conn_timer(c, 0);
        }
    }
    if (c->congested && c->queued < HTTP_LOW_WATER) {
        c->congested = false;
        if (c->busy && c->req.on_drain != NULL) {
            c->req.on_drain(&c->req);
            if (c->closing) {
                return;
            }
        }
    }
    if (c->queued == 0 && c->finished && c->state == SL_HTTP_SENDING) {
        sl__http_conn_request_done(c);
    }
}


/*
 * The response is complete as far as the producer is concerned. A handler
 * that finishes an aborted request only releases it here.
 */
static int
conn_finish(sl_http_conn_t *c)
{
    bool held = c->busy;

    c->busy = false;
    c->finished = true;
    conn_access_log(c);
    if (c->closing) {
        if (held && c->nhandles == 0 && !c->in_close_cb) {
            sl__http_conn_free(c);
        }
        return 0;
    }
    if (c->queued > 0) {
        c->state = SL_HTTP_SENDING;
        return 0;
    }
    sl__http_conn_request_done(c);
    return 0;
}


/* Headers the server writes itself; a handler's copy is dropped. */
static bool
http_header_is_ours(sl_str_t name)
{
    return sl_str_caseeq_lit(name, "content-length") || sl_str_caseeq_lit(name, "date")
           || sl_str_caseeq_lit(name, "server") || sl_str_caseeq_lit(name, "x-request-id")
           || sl_http_is_hop_by_hop(name);
}


static bool
http_status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}


char *
sl__http_cat(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}


/* sl__http_cat for a header value: control characters (all but HTAB) and DEL become '?'. */
static char *
http_cat_field(char *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];

        *p++ = (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : (char) ch;
    }
    return p;
}


char *
sl__http_put_uint(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}


/* Lowercase hex of v, zero-padded to width digits (0: as many as needed). */
char *
sl__http_put_hex(char *p, uint64_t v, int width)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;

    do {
        tmp[n++] = hex[v & 0xf];
        v >>= 4;
    } while (v != 0);
    while (n < width) {
        tmp[n++] = '0';
    }
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}


/* A JSON string for s; bytes that are not valid UTF-8 become '?'. */
static json_t *
http_json_string(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j != NULL) {
        return j;
    }
    copy = strdup(s);
    if (copy == NULL) {
        return NULL;
    }
    for (char *p = copy; *p != '\0'; p++) {
        if ((unsigned char) *p >= 0x80) {
            *p = '?';
        }
    }
    j = json_string(copy);
    free(copy);
    return j;
}


/* {"error":{"message","type","param","code"}}, malloc()ed; NULL on OOM. */
static char *
http_error_json(const char *type, const char *code, const char *param, const char *message)
{
    json_t *root;
    char *s;

    root = json_pack("{s:{s:o?,s:o?,s:o?,s:o?}}", "error", "message",
                     http_json_string(message != NULL ? message : ""), "type",
                     http_json_string(type != NULL ? type : "invalid_request_error"), "param",
                     param != NULL ? http_json_string(param) : NULL, "code",
                     code != NULL ? http_json_string(code) : NULL);
    if (root == NULL) {
        return NULL;
    }
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}
