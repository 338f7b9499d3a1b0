/*
 * Inbound HTTP/1.1 server on libuv and llhttp. One sl_http_conn_t per
 * accepted socket holds the uv handles (the socket and one timer that serves
 * every timeout), the llhttp parser, a fixed read buffer, and the request
 * currently being read or answered. Pipelined bytes wait in the read buffer
 * while a handler owns the request: llhttp is paused from
 * on_message_complete and resumed once the response has left.
 *
 * Everything a request keeps (URL, headers) is copied into the connection's
 * request pool, which is reset between requests, and the body is collected
 * in a heap buffer that is reused across keep-alive requests, so a warm
 * connection serves requests without calling malloc. Responses are written
 * with uv_try_write first; only the part the kernel does not take is copied
 * into a queued uv_write.
 *
 * The connection memory is released in the close callback of its last uv
 * handle, and not before the handler that holds the request let it go.
 */
#include "core/http_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <llhttp.h>

#include "core/buf.h"
#include "core/errno.h"

#define HTTP_RBUF_SIZE        16384
#define HTTP_POOL_SIZE        8192
#define HTTP_NHEADERS         16
#define HTTP_HIGH_WATER       (256 * 1024)
#define HTTP_LOW_WATER        (64 * 1024)
#define HTTP_BODY_KEEP        (1024 * 1024) /* larger body buffers are freed between requests */
#define HTTP_BODY_RESERVE     (64 * 1024)   /* body bytes reserved before they arrive */
#define HTTP_LINGER_MS        2000
#define HTTP_DRAIN_IDLE_GRACE 1000 /* ms an idle connection stays open once draining */
#define HTTP_RID_MAX          128
#define HTTP_OVERLOAD_LOG     60000 /* ms between two "max_connections reached" messages */

#define HTTP_EXPOSE_HEADERS \
    "x-request-id, x-sluice-provider, x-sluice-model, x-sluice-cache, x-sluice-attempts"
#define HTTP_CORS_HEADERS "authorization, content-type, x-api-key, x-request-id"

#define http_cat_lit(p, s) http_cat((p), (s), sizeof(s) - 1)

typedef enum sl_http_state {
    SL_HTTP_IDLE = 0, /* between requests: keep-alive (or fresh connection) timer */
    SL_HTTP_HEADERS,  /* request line and headers: header_timeout from the first byte */
    SL_HTTP_BODY,     /* body: body_timeout between reads */
    SL_HTTP_BUSY,     /* a handler (or the server itself) is answering */
    SL_HTTP_SENDING,  /* the response is complete but still queued */
    SL_HTTP_LINGER,   /* response sent, write side shut down, discarding input */
} sl_http_state_e;

typedef enum sl_http_body {
    SL_HTTP_BODY_NONE = 0, /* 1xx, 204, 304: no body and no length */
    SL_HTTP_BODY_LENGTH,   /* Content-Length */
    SL_HTTP_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
    SL_HTTP_BODY_CLOSE,    /* delimited by closing the connection (HTTP/1.0 streaming) */
} sl_http_body_e;

typedef struct http_listener http_listener_t;
typedef struct http_route_info http_route_info_t;
typedef struct http_write http_write_t;

struct http_listener {
    uv_tcp_t tcp;
    sl_http_server_t *srv;
    http_listener_t *next;
    bool closing;
};

struct http_route_info {
    size_t len;  /* path length without the trailing '*' */
    bool prefix; /* the path ended in '*' */
};

/* A queued write: the bytes uv_try_write did not take, copied once. */
struct http_write {
    uv_write_t req;
    sl_http_conn_t *c;
    size_t len;
    char data[];
};

struct sl_http_server {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    const sl_http_route_t *routes;
    http_route_info_t *info;
    size_t nroutes;
    llhttp_settings_t settings;
    http_listener_t *listeners;
    sl_http_conn_t *conns; /* open connections, doubly linked */
    size_t nconns;         /* connections whose handles are not closed yet */
    size_t nactive;        /* connections counted against max_connections */
    uint64_t serial;
    uint64_t rid_counter;
    uint64_t overload_logged; /* uv_now() of the last message, 0 when none */
    uint64_t refused;         /* connections answered 503 since that message */
    time_t date_sec;
    char date[40];
    char rid_prefix[17];
    bool draining;
};

struct sl_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    llhttp_t parser;
    sl_http_req_t req;
    sl_log_t log;
    sl_http_server_t *srv;
    sl_http_conn_t *prev;
    sl_http_conn_t *next;
    sl_pool_t *pool; /* request pool, reset between requests */
    sl_http_state_e state;
    unsigned nhandles;  /* uv handles not closed yet */
    unsigned nrequests; /* requests finished on this connection */
    size_t rpos;        /* parsed up to here */
    size_t rlen;        /* read up to here */
    size_t hdr_bytes;   /* request line and headers so far */
    size_t trl_bytes;   /* trailer fields so far (chunked bodies), never merged */
    size_t hcap;        /* capacity of req.headers */
    char *span;         /* URL, header name or value being collected, in the pool */
    size_t span_len;
    size_t span_cap;
    sl_str_t url;
    sl_str_t hname;
    sl_str_t cors_origin; /* Access-Control-Allow-Origin to send; empty when none */
    size_t body_length;   /* Content-Length of the request, 0 when chunked or none */
    size_t queued;        /* bytes handed to uv_write and not written yet */
    sl_buf_t body;
    sl_buf_t head;  /* response head scratch */
    int err_status; /* a parser callback refused the request with this status */
    const char *err_code;
    const char *err_message;
    bool busy;      /* a handler holds req */
    bool finished;  /* the response is complete (maybe still queued) */
    bool streaming; /* sl_http_start was called */
    bool chunked;
    bool head_only; /* HEAD: no body goes out */
    bool congested;
    bool in_process;  /* inside conn_process: do not recurse into it */
    bool in_close_cb; /* inside the final close callback */
    bool reading;
    bool closing;
    bool linger; /* the request was not read completely: shut down and drain before close */
    bool eof;
    bool hdr_paused;     /* llhttp paused in on_headers_complete */
    bool need_exec;      /* llhttp must run again even without new bytes */
    bool resume;         /* the IDLE timer fired at 0 ms: parse pipelined bytes */
    bool counted;        /* counted in srv->nactive */
    bool logged;         /* the access log line for this request is written */
    int resp_status;     /* status of the response being sent */
    uint64_t resp_bytes; /* bytes of the response handed to the socket */
    char addr[64];
    char rid[HTTP_RID_MAX + 1];
    char rbuf[HTTP_RBUF_SIZE];
};

static void server_on_connection(uv_stream_t *stream, int status);
static void server_on_listener_close(uv_handle_t *handle);
static void server_close_listeners(sl_http_server_t *srv);
static const char *server_date(sl_http_server_t *srv);
static void server_refuse(sl_http_server_t *srv, sl_http_conn_t *c);
static sl_http_conn_t *http_conn(const sl_http_req_t *r);
static void conn_peer_addr(sl_http_conn_t *c);
static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_on_read_error(sl_http_conn_t *c, ssize_t nread);
static void conn_on_timer(uv_timer_t *timer);
static void conn_on_write(uv_write_t *req, int status);
static void conn_on_shutdown(uv_shutdown_t *req, int status);
static void conn_on_close(uv_handle_t *handle);
static void conn_timer(sl_http_conn_t *c, uint64_t ms);
static void conn_read_start(sl_http_conn_t *c);
static void conn_read_stop(sl_http_conn_t *c);
static void conn_process(sl_http_conn_t *c);
static void conn_request_begin(sl_http_conn_t *c);
static void conn_request_end(sl_http_conn_t *c);
static void conn_headers_done(sl_http_conn_t *c);
static void conn_parse_error(sl_http_conn_t *c, llhttp_errno_t err);
static void conn_dispatch(sl_http_conn_t *c);
static void conn_options(sl_http_conn_t *c, const char *allow);
static void conn_fail(sl_http_conn_t *c, int status, const char *code, const char *message);
static int conn_error(sl_http_conn_t *c, int status, const sl_http_header_t *headers,
                      size_t nheaders, const char *type, const char *code, const char *param,
                      const char *message);
static int conn_respond(sl_http_conn_t *c, int status, const sl_http_header_t *headers,
                        size_t nheaders, const char *body, size_t len);
static void conn_build_head(sl_http_conn_t *c, int status, const sl_http_header_t *headers,
                            size_t nheaders, sl_http_body_e body, size_t clen);
static int conn_send(sl_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs);
static int conn_finish(sl_http_conn_t *c);
static void conn_request_done(sl_http_conn_t *c);
static void conn_close_after_response(sl_http_conn_t *c);
static void conn_linger(sl_http_conn_t *c);
static void conn_close(sl_http_conn_t *c);
static void conn_free(sl_http_conn_t *c);
static void conn_request_id(sl_http_conn_t *c);
static void conn_access_log(sl_http_conn_t *c);
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
static bool http_route_match(const sl_http_server_t *srv, size_t i, sl_str_t path);
static bool http_rid_is_sane(sl_str_t id);
static bool http_header_is_ours(sl_str_t name);
static bool http_status_has_body(int status);
static char *http_cat(char *p, const char *s, size_t n);
static char *http_put_uint(char *p, uint64_t v);
static char *http_put_hex(char *p, uint64_t v, int width);
static json_t *http_json_string(const char *s);
static sl_http_error_cb conn_error_format(const sl_http_conn_t *c);
static char *http_error_json(const char *type, const char *code, const char *param,
                             const char *message);


sl_http_server_t *
sl_http_server_create(uv_loop_t *loop, const sl_conf_t *conf, const sl_http_route_t *routes,
                      size_t nroutes)
{
    sl_http_server_t *srv;
    unsigned char seed[8];
    ssize_t n;
    int err;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "calloc() of the http server failed");
        return NULL;
    }
    srv->info = calloc(nroutes + 1, sizeof(*srv->info));
    if (srv->info == NULL) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "calloc() of the route table failed");
        goto out_free_srv;
    }
    for (size_t i = 0; i < nroutes; i++) {
        size_t len = strlen(routes[i].path);

        srv->info[i].prefix = len > 0 && routes[i].path[len - 1] == '*';
        srv->info[i].len = srv->info[i].prefix ? len - 1 : len;
    }

    /*
     * Request ids are this random prefix and a counter, so ids stay unique
     * across workers and restarts without a syscall per request.
     */
    n = getrandom(seed, sizeof(seed), 0);
    if (n != (ssize_t) sizeof(seed)) {
        uint64_t mix = uv_hrtime() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) srv;

        err = n < 0 ? errno : 0;
        sl_log(&sl_log_main, SL_LOG_WARN, err, "getrandom() failed, request ids use the clock");
        for (size_t i = 0; i < sizeof(seed); i++) {
            seed[i] = (unsigned char) (mix >> (i * 8));
        }
    }
    for (size_t i = 0; i < sizeof(seed); i++) {
        static const char hex[] = "0123456789abcdef";

        srv->rid_prefix[2 * i] = hex[seed[i] >> 4];
        srv->rid_prefix[2 * i + 1] = hex[seed[i] & 0xf];
    }

    srv->loop = loop;
    srv->conf = conf;
    srv->routes = routes;
    srv->nroutes = nroutes;
    llhttp_settings_init(&srv->settings);
    srv->settings.on_url = http_on_url;
    srv->settings.on_url_complete = http_on_url_complete;
    srv->settings.on_header_field = http_on_header_field;
    srv->settings.on_header_field_complete = http_on_header_field_complete;
    srv->settings.on_header_value = http_on_header_value;
    srv->settings.on_header_value_complete = http_on_header_value_complete;
    srv->settings.on_headers_complete = http_on_headers_complete;
    srv->settings.on_body = http_on_body;
    srv->settings.on_message_complete = http_on_message_complete;
    return srv;

out_free_srv:
    free(srv);
    return NULL;
}


int
sl_http_server_listen_fd(sl_http_server_t *srv, int fd)
{
    http_listener_t *l;
    int backlog;
    int rc;

    l = sl_xcalloc(1, sizeof(*l));
    l->srv = srv;
    rc = uv_tcp_init(srv->loop, &l->tcp);
    if (rc < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, rc, "uv_tcp_init() failed");
        free(l);
        close(fd);
        return rc;
    }
    l->tcp.data = l;
    rc = uv_tcp_open(&l->tcp, fd);
    if (rc < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, rc, "uv_tcp_open(%d) failed", fd);
        close(fd);
        goto out_close;
    }
    backlog = srv->conf->backlog > 0 ? (int) srv->conf->backlog : 511;
    rc = uv_listen((uv_stream_t *) &l->tcp, backlog, server_on_connection);
    if (rc < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, rc, "listen() on fd %d failed", fd);
        goto out_close;
    }
    l->next = srv->listeners;
    srv->listeners = l;
    return 0;

out_close:
    l->closing = true;
    uv_close((uv_handle_t *) &l->tcp, server_on_listener_close);
    return rc;
}


void
sl_http_server_drain(sl_http_server_t *srv)
{
    sl_http_conn_t *c;
    sl_http_conn_t *next;

    srv->draining = true;
    server_close_listeners(srv);
    /*
     * An idle keep-alive connection is not closed at once: its client may
     * have sent the next request already, and closing now would reset it.
     * It gets a short grace instead; a request that arrives in it is served
     * with "Connection: close", and the close after a quiet second races
     * only as much as any keep-alive timeout does.
     */
    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == SL_HTTP_IDLE && c->queued == 0 && c->rpos == c->rlen && !c->resume) {
            uint64_t grace = srv->conf->keepalive_timeout < HTTP_DRAIN_IDLE_GRACE
                                 ? srv->conf->keepalive_timeout
                                 : HTTP_DRAIN_IDLE_GRACE;

            conn_timer(c, grace);
        }
    }
}


void
sl_http_server_close_all(sl_http_server_t *srv)
{
    sl_http_conn_t *c;
    sl_http_conn_t *next;

    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
}


size_t
sl_http_server_connections(const sl_http_server_t *srv)
{
    return srv->nconns;
}


void
sl_http_server_destroy(sl_http_server_t *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->nconns != 0) {
        /* connections still point at srv: leaking it is the lesser evil */
        sl_log(&sl_log_main, SL_LOG_ALERT, 0, "http server destroyed with %zu open connections",
               srv->nconns);
        return;
    }
    server_close_listeners(srv);
    free(srv->info);
    free(srv);
}


const sl_str_t *
sl_http_req_header(const sl_http_req_t *r, const char *name)
{
    const sl_http_header_t *h = sl_http_find_header(r->headers, r->nheaders, name);

    return h != NULL ? &h->value : NULL;
}


sl_str_t
sl_http_req_credential(const sl_http_req_t *r)
{
    const sl_str_t *h = sl_http_req_header(r, "authorization");
    sl_str_t key = sl_str_null;

    if (h != NULL) {
        sl_str_t v = sl_str_trim(*h);

        if (v.len > 7 && sl_mem_caseeq(v.p, "bearer ", 7)) {
            key = sl_str_trim((sl_str_t){ v.p + 7, v.len - 7 });
        }
    }
    if (key.len == 0) {
        h = sl_http_req_header(r, "x-api-key");
        if (h != NULL) {
            key = sl_str_trim(*h);
        }
    }
    return key;
}


int
sl_http_respond(sl_http_req_t *r, int status, const sl_http_header_t *headers, size_t nheaders,
                const char *body, size_t len)
{
    sl_http_conn_t *c = http_conn(r);

    if (c->finished || c->streaming) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_respond() on a started response");
        return -EINVAL;
    }
    if (r->aborted || c->closing) {
        return conn_finish(c);
    }
    return conn_respond(c, status, headers, nheaders, body, len);
}


int
sl_http_respond_error(sl_http_req_t *r, int status, const char *type, const char *code,
                      const char *param, const char *message)
{
    sl_http_conn_t *c = http_conn(r);

    if (c->finished || c->streaming) {
        sl_log(&r->log, SL_LOG_ALERT, 0, "sl_http_respond_error() on a started response");
        return -EINVAL;
    }
    if (r->aborted || c->closing) {
        return conn_finish(c);
    }
    return conn_error(c, status, NULL, 0, type, code, param, message);
}


int
sl_http_start(sl_http_req_t *r, int status, const sl_http_header_t *headers, size_t nheaders)
{
    sl_http_conn_t *c = http_conn(r);
    uv_buf_t buf;

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
    buf = uv_buf_init(c->head.p, (unsigned) c->head.len);
    return conn_send(c, &buf, 1);
}


int
sl_http_write(sl_http_req_t *r, const char *data, size_t len)
{
    sl_http_conn_t *c = http_conn(r);
    char line[24];
    uv_buf_t bufs[3];
    char *p;

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
    if (!c->chunked) {
        bufs[0] = uv_buf_init((char *) data, (unsigned) len);
        return conn_send(c, bufs, 1);
    }
    p = http_put_hex(line, len, 0);
    p = http_cat_lit(p, "\r\n");
    bufs[0] = uv_buf_init(line, (unsigned) (p - line));
    bufs[1] = uv_buf_init((char *) data, (unsigned) len);
    bufs[2] = uv_buf_init("\r\n", 2);
    return conn_send(c, bufs, 3);
}


int
sl_http_finish(sl_http_req_t *r)
{
    sl_http_conn_t *c = http_conn(r);
    uv_buf_t buf;
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
        return conn_error(c, 500, NULL, 0, "server_error", NULL, NULL,
                          "The server had an error while processing your request.");
    }
    if (c->chunked && !c->head_only) {
        buf = uv_buf_init("0\r\n\r\n", 5);
        rc = conn_send(c, &buf, 1);
    }
    conn_finish(c);
    return rc;
}


bool
sl_http_is_congested(const sl_http_req_t *r)
{
    return http_conn(r)->congested;
}


size_t
sl_http_queued(const sl_http_req_t *r)
{
    return http_conn(r)->queued;
}


static sl_http_conn_t *
http_conn(const sl_http_req_t *r)
{
    return (sl_http_conn_t *) ((char *) r - offsetof(sl_http_conn_t, req));
}


static void
server_on_connection(uv_stream_t *stream, int status)
{
    http_listener_t *l = stream->data;
    sl_http_server_t *srv = l->srv;
    sl_http_conn_t *c;
    int rc;

    if (status < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, status, "accept() failed");
        return;
    }

    /* the read buffer is not zeroed: it is written before it is read */
    c = sl_xmalloc(sizeof(*c));
    memset(c, 0, offsetof(sl_http_conn_t, rbuf));
    c->srv = srv;
    c->log.worker = sl_log_main.worker;
    c->log.conn = ++srv->serial;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->nhandles = 2;
    llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
    c->parser.data = c;
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->nconns++;

    rc = uv_accept(stream, (uv_stream_t *) &c->tcp);
    if (rc < 0) {
        sl_log(&c->log, SL_LOG_ERR, rc, "accept() failed");
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_peer_addr(c);

    if (srv->conf->max_connections > 0 && srv->nactive >= srv->conf->max_connections) {
        server_refuse(srv, c);
        return;
    }
    srv->nactive++;
    c->counted = true;
    sl_debug(&c->log, "accepted connection from %s", c->addr);

    /* a fresh connection gets header_timeout to send its first byte (nginx) */
    c->state = SL_HTTP_IDLE;
    conn_timer(c, srv->conf->header_timeout);
    conn_read_start(c);
}


/* Answers 503 on a connection over max_connections and closes it. */
static void
server_refuse(sl_http_server_t *srv, sl_http_conn_t *c)
{
    uint64_t now = uv_now(srv->loop);

    srv->refused++;
    if (srv->overload_logged == 0 || now - srv->overload_logged >= HTTP_OVERLOAD_LOG) {
        sl_log(&c->log, SL_LOG_WARN, 0,
               "max_connections (%u) reached, %llu connection(s) answered 503",
               srv->conf->max_connections, (unsigned long long) srv->refused);
        srv->overload_logged = now != 0 ? now : 1;
        srv->refused = 0;
    }
    conn_request_begin(c);
    conn_fail(c, 503, "server_overloaded",
              "The server is overloaded: too many connections. Please retry later.");
}


static void
server_on_listener_close(uv_handle_t *handle)
{
    free(handle->data);
}


static void
server_close_listeners(sl_http_server_t *srv)
{
    http_listener_t *l;

    while (srv->listeners != NULL) {
        l = srv->listeners;
        srv->listeners = l->next;
        if (!l->closing) {
            l->closing = true;
            uv_close((uv_handle_t *) &l->tcp, server_on_listener_close);
        }
    }
}


/* The Date header value, formatted again only when the second changes. */
static const char *
server_date(sl_http_server_t *srv)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t now = time(NULL);
    struct tm tm;

    if (now != srv->date_sec || srv->date[0] == '\0') {
        gmtime_r(&now, &tm);
        snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        srv->date_sec = now;
    }
    return srv->date;
}


static void
conn_peer_addr(sl_http_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];

    strcpy(c->addr, "unknown");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *) &ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;

        uv_ip4_name(sin, ip, sizeof(ip));
        snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, (unsigned) ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &ss;

        uv_ip6_name(sin6, ip, sizeof(ip));
        snprintf(c->addr, sizeof(c->addr), "[%s]:%u", ip, (unsigned) ntohs(sin6->sin6_port));
    }
}


static void
conn_timer(sl_http_conn_t *c, uint64_t ms)
{
    if (ms == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}


static void
conn_read_start(sl_http_conn_t *c)
{
    int rc;

    if (c->reading || c->closing || c->eof) {
        return;
    }
    rc = uv_read_start((uv_stream_t *) &c->tcp, conn_on_alloc, conn_on_read);
    if (rc < 0) {
        sl_log(&c->log, SL_LOG_ERR, rc, "uv_read_start() failed");
        conn_close(c);
        return;
    }
    c->reading = true;
}


static void
conn_read_stop(sl_http_conn_t *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *) &c->tcp);
        c->reading = false;
    }
}


static void
conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sl_http_conn_t *c = handle->data;

    /* nothing points into rbuf between reads, so unparsed bytes may move */
    if (c->rpos == c->rlen) {
        c->rpos = 0;
        c->rlen = 0;
    } else if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned) (sizeof(c->rbuf) - c->rlen));
}


static void
conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sl_http_conn_t *c = stream->data;

    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        conn_on_read_error(c, nread);
        return;
    }

    switch (c->state) {
    case SL_HTTP_LINGER:
        return;
    case SL_HTTP_BUSY:
    case SL_HTTP_SENDING:
        /* the next pipelined request waits until this response left */
        c->rlen += (size_t) nread;
        if (c->rlen == sizeof(c->rbuf) && c->rpos == 0) {
            conn_read_stop(c);
        }
        return;
    case SL_HTTP_BODY:
        conn_timer(c, c->srv->conf->body_timeout);
        break;
    default:
        break;
    }
    c->rlen += (size_t) nread;
    conn_process(c);
}


static void
conn_on_read_error(sl_http_conn_t *c, ssize_t nread)
{
    if (nread == UV_ENOBUFS) {
        conn_read_stop(c);
        return;
    }
    conn_read_stop(c);
    c->eof = true;
    if (nread != UV_EOF) {
        sl_log(&c->log, SL_LOG_INFO, (int) nread, "recv() from client %s failed", c->addr);
        conn_close(c);
        return;
    }

    switch (c->state) {
    case SL_HTTP_HEADERS:
    case SL_HTTP_BODY:
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s closed the connection while sending a request",
               c->addr);
        conn_close(c);
        break;
    case SL_HTTP_BUSY:
        if (c->busy) {
            sl_log(&c->log, SL_LOG_INFO, 0,
                   "client %s closed the connection before the response was complete", c->addr);
            conn_close(c);
        }
        /* the server's own error response: finish sending it, then close */
        break;
    case SL_HTTP_SENDING:
        /* a half-close: the client still reads what is queued */
        break;
    default:
        conn_close(c);
        break;
    }
}


static void
conn_on_timer(uv_timer_t *timer)
{
    sl_http_conn_t *c = timer->data;

    switch (c->state) {
    case SL_HTTP_IDLE:
        if (c->resume) {
            c->resume = false;
            conn_timer(c, c->srv->conf->keepalive_timeout);
            conn_process(c);
            break;
        }
        sl_debug(&c->log, "keep-alive connection timed out");
        conn_close(c);
        break;
    case SL_HTTP_HEADERS:
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s timed out sending the request headers", c->addr);
        conn_fail(c, 408, "request_timeout", "Timed out waiting for the request headers.");
        break;
    case SL_HTTP_BODY:
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s timed out sending the request body", c->addr);
        conn_fail(c, 408, "request_timeout", "Timed out waiting for the request body.");
        break;
    case SL_HTTP_BUSY:
    case SL_HTTP_SENDING:
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s timed out reading the response", c->addr);
        conn_close(c);
        break;
    case SL_HTTP_LINGER:
        conn_close(c);
        break;
    }
}


/*
 * Runs llhttp over the unparsed bytes until it needs more, a handler owns
 * the request, or the connection is closing.
 */
static void
conn_process(sl_http_conn_t *c)
{
    const sl_conf_t *conf = c->srv->conf;
    llhttp_errno_t err;
    const char *data;
    size_t avail;
    size_t used;

    c->in_process = true;
    while (!c->closing) {
        if (c->state == SL_HTTP_IDLE) {
            if (c->rpos == c->rlen) {
                break;
            }
            conn_request_begin(c);
        } else if (c->state != SL_HTTP_HEADERS && c->state != SL_HTTP_BODY) {
            break;
        }
        avail = c->rlen - c->rpos;
        if (avail == 0 && !c->need_exec) {
            break;
        }
        c->need_exec = false;
        data = c->rbuf + c->rpos;
        err = llhttp_execute(&c->parser, data, avail);
        used = err == HPE_OK ? avail : (size_t) (llhttp_get_error_pos(&c->parser) - data);
        c->rpos += used;

        if (c->state == SL_HTTP_HEADERS && c->err_status == 0) {
            c->hdr_bytes += used;
            if (c->hdr_bytes > conf->max_header_size) {
                sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent too large a request header",
                       c->addr);
                conn_fail(c, 431, "request_header_fields_too_large",
                          "Request header fields too large.");
                continue;
            }
        }

        switch (err) {
        case HPE_OK:
            break;
        case HPE_PAUSED:
            llhttp_resume(&c->parser);
            c->need_exec = true;
            if (c->hdr_paused) {
                c->hdr_paused = false;
                conn_headers_done(c);
            } else {
                conn_dispatch(c);
            }
            break;
        case HPE_PAUSED_UPGRADE:
            /* upgrades are not supported; the request was answered as plain HTTP */
            llhttp_resume_after_upgrade(&c->parser);
            c->need_exec = true;
            break;
        default:
            conn_parse_error(c, err);
            break;
        }
    }
    c->in_process = false;

    if (!c->closing && c->state != SL_HTTP_LINGER && c->rlen < sizeof(c->rbuf)) {
        conn_read_start(c);
    }
}


static void
conn_request_begin(sl_http_conn_t *c)
{
    sl_http_server_t *srv = c->srv;
    sl_http_req_t *r = &c->req;

    if (c->pool == NULL) {
        c->pool = sl_pool_create(HTTP_POOL_SIZE);
        if (c->pool == NULL) {
            /* fatal: worker rule, the master respawns us */
            abort();
        }
    }
    memset(r, 0, sizeof(*r));
    r->pool = c->pool;
    r->log = c->log;
    r->loop = srv->loop;
    r->server = srv;
    r->conf = srv->conf;
    r->client_addr = c->addr;
    r->start_ns = uv_hrtime();
    r->http_minor = 1;
    r->body = (sl_str_t){ "", 0 };

    c->state = SL_HTTP_HEADERS;
    c->hdr_bytes = 0;
    c->trl_bytes = 0;
    c->hcap = 0;
    c->span = NULL;
    c->span_len = 0;
    c->span_cap = 0;
    c->url = (sl_str_t){ "", 0 };
    c->hname = c->url;
    c->cors_origin = sl_str_null;
    c->err_status = 0;
    c->body_length = 0;
    c->busy = false;
    c->finished = false;
    c->streaming = false;
    c->chunked = false;
    c->head_only = false;
    c->congested = false;
    c->hdr_paused = false;
    c->need_exec = false;
    c->resume = false;
    c->logged = false;
    c->resp_status = 0;
    c->resp_bytes = 0;
    conn_timer(c, srv->conf->header_timeout);
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
    now = time(NULL);
    gmtime_r(&now, &tm);
    us = (uv_hrtime() - r->start_ns) / 1000;
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


/* Forgets the finished request; the connection stays for the next one. */
static void
conn_request_end(sl_http_conn_t *c)
{
    sl_pool_reset(c->pool);
    if (c->body.cap > HTTP_BODY_KEEP) {
        sl_buf_free(&c->body);
    } else {
        sl_buf_clear(&c->body);
    }
    c->nrequests++;
}


static void
conn_headers_done(sl_http_conn_t *c)
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
            conn_fail(c, 400, "invalid_request", "invalid HTTP request: HTTP/0.9 is not supported");
        } else {
            conn_fail(c, 505, "http_version_not_supported", "HTTP version not supported.");
        }
        return;
    }

    r->method.p = llhttp_method_name((llhttp_method_t) p->method);
    r->method.len = strlen(r->method.p);
    c->head_only = p->method == HTTP_HEAD;
    http_split_url(c->url, &r->path, &r->query);
    conn_request_id(c);
    conn_cors_origin(c);
    r->keepalive =
        llhttp_should_keep_alive(p) && !p->upgrade && !c->srv->draining
        && conf->keepalive_timeout > 0
        && (conf->keepalive_requests == 0 || c->nrequests + 1 < conf->keepalive_requests);

    if (r->http_minor >= 1 && sl_http_req_header(r, "host") == NULL) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an HTTP/1.1 request without Host", c->addr);
        conn_fail(c, 400, "invalid_request", "invalid HTTP request: missing Host header");
        return;
    }
    has_body = (p->flags & F_CHUNKED) != 0
               || ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > 0);
    expect = r->http_minor >= 1 ? sl_http_req_header(r, "expect") : NULL;
    if (expect != NULL && !sl_str_caseeq(sl_str_trim(*expect), "100-continue")) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an unsupported expectation", c->addr);
        conn_fail(c, 417, "expectation_failed", "Only \"Expect: 100-continue\" is supported.");
        return;
    }
    if ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > conf->max_body) {
        sl_log(&c->log, SL_LOG_INFO, 0,
               "client %s intends to send too large a body: %llu bytes, max_body is %zu", c->addr,
               (unsigned long long) p->content_length, conf->max_body);
        snprintf(msg, sizeof(msg), "Request body too large: %llu bytes, the limit is %zu bytes.",
                 (unsigned long long) p->content_length, conf->max_body);
        conn_fail(c, 413, "request_too_large", msg);
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

        conn_send(c, &buf, 1);
    }
    conn_timer(c, conf->body_timeout);
}


static void
conn_parse_error(sl_http_conn_t *c, llhttp_errno_t err)
{
    char msg[160];

    if (c->err_status != 0) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent a request refused with %d %s", c->addr,
               c->err_status, c->err_code);
        conn_fail(c, c->err_status, c->err_code, c->err_message);
        return;
    }
    if (err == HPE_PAUSED_H2_UPGRADE || err == HPE_INVALID_VERSION) {
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an unsupported HTTP version", c->addr);
        conn_fail(c, 505, "http_version_not_supported",
                  "HTTP version not supported: only HTTP/1.0 and HTTP/1.1 are served.");
        return;
    }
    snprintf(msg, sizeof(msg), "invalid HTTP request: %s", llhttp_get_error_reason(&c->parser));
    sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent an %s", c->addr, msg);
    conn_fail(c, 400, "invalid_request", msg);
}


/* The request is complete: route it and hand it to its handler. */
static void
conn_dispatch(sl_http_conn_t *c)
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
    uv_timer_stop(&c->timer);

    for (size_t i = 0; i < srv->nroutes; i++) {
        if (!http_route_match(srv, i, r->path)) {
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
        conn_error(c, 404, NULL, 0, "invalid_request_error", "unknown_url", NULL,
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
    conn_error(c, 405, &allow_h, 1, "invalid_request_error", "method_not_allowed", NULL,
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
        conn_respond(c, 204, h, n, NULL, 0);
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
            (sl_str_t){ age, (size_t) (http_put_uint(age, r->conf->cors.max_age) - age) };
    }
    conn_respond(c, 204, h, n, NULL, 0);
}


/*
 * The server refuses the request it is reading: answer status, then close
 * the connection (after draining what the client still sends).
 */
static void
conn_fail(sl_http_conn_t *c, int status, const char *code, const char *message)
{
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";

    c->state = SL_HTTP_BUSY;
    c->hdr_paused = false;
    c->linger = true;
    c->req.keepalive = false;
    uv_timer_stop(&c->timer);
    if (c->req.request_id == NULL) {
        conn_request_id(c);
    }
    conn_error(c, status, NULL, 0, type, code, NULL, message);
}


static int
conn_error(sl_http_conn_t *c, int status, const sl_http_header_t *headers, size_t nheaders,
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
        return conn_respond(c, status, h, n, own.p, own.len);
    }
    body = http_error_json(type, code, param, message);
    if (body == NULL) {
        static const char oom[] = "{\"error\":{\"message\":\"internal error\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}";

        return conn_respond(c, status, h, n, oom, sizeof(oom) - 1);
    }
    rc = conn_respond(c, status, h, n, body, strlen(body));
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
        if (srv->routes[i].error != NULL && http_route_match(srv, i, c->req.path)) {
            return srv->routes[i].error;
        }
    }
    return NULL;
}


/* Sends a whole response and finishes the request. */
static int
conn_respond(sl_http_conn_t *c, int status, const sl_http_header_t *headers, size_t nheaders,
             const char *body, size_t len)
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
    bufs[0] = uv_buf_init(c->head.p, (unsigned) c->head.len);
    if (len > 0 && !c->head_only) {
        bufs[nbufs++] = uv_buf_init((char *) body, (unsigned) len);
    }
    rc = conn_send(c, bufs, nbufs);
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
    }
    size_t need;
    char *p;

    if (status < 100 || status > 999) {
        status = 500;
    }
    reason = sl_http_reason(status);
    r->keepalive = r->keepalive && !c->srv->draining && body != SL_HTTP_BODY_CLOSE;
    need = 512 + strlen(reason) + HTTP_RID_MAX + c->cors_origin.len;
    for (size_t i = 0; i < nheaders; i++) {
        need += headers[i].name.len + headers[i].value.len + 4;
    }
    sl_buf_clear(&c->head);
    sl_buf_reserve(&c->head, need);

    p = c->head.p;
    p = http_cat_lit(p, "HTTP/1.1 ");
    p = http_put_uint(p, (uint64_t) status);
    *p++ = ' ';
    p = http_cat(p, reason, strlen(reason));
    p = http_cat_lit(p, "\r\nServer: sluice\r\nDate: ");
    date = server_date(c->srv);
    p = http_cat(p, date, strlen(date));
    p = http_cat_lit(p, "\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        const sl_http_header_t *h = &headers[i];

        if (h->name.len == 0 || http_header_is_ours(h->name)
            || memchr(h->value.p, '\r', h->value.len) != NULL
            || memchr(h->value.p, '\n', h->value.len) != NULL) {
            continue;
        }
        p = http_cat(p, h->name.p, h->name.len);
        p = http_cat_lit(p, ": ");
        p = http_cat(p, h->value.p, h->value.len);
        p = http_cat_lit(p, "\r\n");
    }
    switch (body) {
    case SL_HTTP_BODY_LENGTH:
        p = http_cat_lit(p, "Content-Length: ");
        p = http_put_uint(p, clen);
        p = http_cat_lit(p, "\r\n");
        break;
    case SL_HTTP_BODY_CHUNKED:
        p = http_cat_lit(p, "Transfer-Encoding: chunked\r\n");
        break;
    default:
        break;
    }
    if (r->keepalive) {
        p = http_cat_lit(p, "Connection: keep-alive\r\n");
    } else {
        p = http_cat_lit(p, "Connection: close\r\n");
    }
    p = http_cat_lit(p, "x-request-id: ");
    p = http_cat(p, r->request_id, strlen(r->request_id));
    p = http_cat_lit(p, "\r\n");
    if (c->cors_origin.len > 0) {
        p = http_cat_lit(p, "Access-Control-Allow-Origin: ");
        p = http_cat(p, c->cors_origin.p, c->cors_origin.len);
        p = http_cat_lit(
            p, "\r\nVary: Origin\r\nAccess-Control-Expose-Headers: " HTTP_EXPOSE_HEADERS "\r\n");
    }
    p = http_cat_lit(p, "\r\n");
    c->head.len = (size_t) (p - c->head.p);
}


/*
 * Writes bufs now as far as the socket takes them and queues a copy of the
 * rest. Returns 0, or SL_ECLOSED when the connection is gone (it is then
 * closing and the request aborted).
 */
static int
conn_send(sl_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
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
    c->resp_bytes += total;
    if (c->queued == 0) {
        rc = uv_try_write((uv_stream_t *) &c->tcp, bufs, nbufs);
        if (rc < 0 && rc != UV_EAGAIN) {
            sl_log(&c->log, SL_LOG_INFO, rc, "writev() to client %s failed", c->addr);
            conn_close(c);
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
        conn_close(c);
        return SL_ECLOSED;
    }
    if (c->queued == 0 && c->state != SL_HTTP_BODY) {
        conn_timer(c, c->srv->conf->send_timeout);
    }
    c->queued += w->len;
    if (c->queued > HTTP_HIGH_WATER) {
        c->congested = true;
    }
    return 0;
}


static void
conn_on_write(uv_write_t *req, int status)
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
        conn_close(c);
        return;
    }
    if (c->state == SL_HTTP_BUSY || c->state == SL_HTTP_SENDING) {
        /* progress re-arms send_timeout */
        if (c->queued > 0) {
            conn_timer(c, c->srv->conf->send_timeout);
        } else {
            uv_timer_stop(&c->timer);
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
        conn_request_done(c);
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
            conn_free(c);
        }
        return 0;
    }
    if (c->queued > 0) {
        c->state = SL_HTTP_SENDING;
        return 0;
    }
    conn_request_done(c);
    return 0;
}


/* The response left: keep the connection for the next request or close it. */
static void
conn_request_done(sl_http_conn_t *c)
{
    if (!c->req.keepalive || c->srv->draining || c->eof) {
        conn_close_after_response(c);
        return;
    }
    conn_request_end(c);
    c->state = SL_HTTP_IDLE;
    if (c->in_process) {
        /* conn_process goes on with any pipelined bytes */
        conn_timer(c, c->srv->conf->keepalive_timeout);
        return;
    }
    if (c->rpos < c->rlen) {
        /*
         * Parse the next pipelined request on the next loop turn, not inside
         * the sl_http_* call of the handler that just finished.
         */
        c->resume = true;
        uv_timer_start(&c->timer, conn_on_timer, 0, 0);
    } else {
        conn_timer(c, c->srv->conf->keepalive_timeout);
    }
    conn_read_start(c);
}


static void
conn_close_after_response(sl_http_conn_t *c)
{
    if (c->linger || c->rpos < c->rlen) {
        conn_linger(c);
    } else {
        conn_close(c);
    }
}


/*
 * Closing a socket with unread input makes the kernel send RST, which can
 * destroy the response before the client read it. So shut down the write
 * side and drain input for a while first (nginx lingering_close).
 */
static void
conn_linger(sl_http_conn_t *c)
{
    int rc;

    if (c->eof) {
        conn_close(c);
        return;
    }
    c->state = SL_HTTP_LINGER;
    c->rpos = 0;
    c->rlen = 0;
    rc = uv_shutdown(&c->shutdown, (uv_stream_t *) &c->tcp, conn_on_shutdown);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    conn_timer(c, HTTP_LINGER_MS);
    conn_read_start(c);
}


static void
conn_on_shutdown(uv_shutdown_t *req, int status)
{
    sl_http_conn_t *c = req->handle->data;

    if (status < 0 && !c->closing) {
        conn_close(c);
    }
}


/*
 * Starts closing the connection. A handler that holds the request sees
 * r->aborted now and on_abort from the close callback, never from inside
 * one of its own sl_http_* calls.
 */
static void
conn_close(sl_http_conn_t *c)
{
    sl_http_server_t *srv = c->srv;

    if (c->closing) {
        return;
    }
    c->closing = true;
    if (c->busy) {
        c->req.aborted = true;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = NULL;
    c->next = NULL;
    if (c->counted) {
        c->counted = false;
        srv->nactive--;
    }
    uv_close((uv_handle_t *) &c->tcp, conn_on_close);
    uv_close((uv_handle_t *) &c->timer, conn_on_close);
}


static void
conn_on_close(uv_handle_t *handle)
{
    sl_http_conn_t *c = handle->data;

    if (--c->nhandles > 0) {
        return;
    }
    c->srv->nconns--;
    if (c->busy && c->req.on_abort != NULL) {
        c->in_close_cb = true;
        c->req.on_abort(&c->req);
        c->in_close_cb = false;
    }
    if (!c->busy) {
        conn_free(c);
    }
}


static void
conn_free(sl_http_conn_t *c)
{
    sl_pool_destroy(c->pool);
    sl_buf_free(&c->body);
    sl_buf_free(&c->head);
    free(c);
}


/* The client's x-request-id when it is sane, else prefix + counter. */
static void
conn_request_id(sl_http_conn_t *c)
{
    sl_http_req_t *r = &c->req;
    const sl_str_t *h = r->nheaders > 0 ? sl_http_req_header(r, "x-request-id") : NULL;
    char *p;

    if (h != NULL && http_rid_is_sane(*h)) {
        memcpy(c->rid, h->p, h->len);
        c->rid[h->len] = '\0';
    } else {
        p = http_cat(c->rid, c->srv->rid_prefix, 16);
        p = http_put_hex(p, c->srv->rid_counter++, 16);
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

    /* pause so conn_headers_done sees exactly where the headers ended */
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


static bool
http_route_match(const sl_http_server_t *srv, size_t i, sl_str_t path)
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


/* Headers the server writes itself; a handler's copy is dropped. */
static bool
http_header_is_ours(sl_str_t name)
{
    return sl_str_caseeq(name, "content-length") || sl_str_caseeq(name, "date")
           || sl_str_caseeq(name, "server") || sl_str_caseeq(name, "x-request-id")
           || sl_http_is_hop_by_hop(name);
}


static bool
http_status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}


static char *
http_cat(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}


static char *
http_put_uint(char *p, uint64_t v)
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
static char *
http_put_hex(char *p, uint64_t v, int width)
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
