/*
 * The connections of the upstream client's pools. A call gets the most
 * recently used idle connection of its provider's pool, else a new one when
 * fewer than max_connections are busy, else waits in the pool's queue; a
 * connection that finished a response cleanly goes to the oldest waiting
 * call or back to the idle list, where a read stays started so a peer
 * close is noticed at once, until keepalive_timeout. A new connection
 * resolves the host (a pool caches the answer briefly, failures too),
 * connects to each address in turn, does the TLS handshake when the
 * provider is https, writes the call's request (plain: straight from the
 * call's memory) and feeds every byte read to llhttp, whose callbacks
 * collect the headers and pass the body on. A reused connection that died
 * before the first byte of the response is retried once on a fresh one.
 */
#include "core/http/upstream_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <llhttp.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/http/tls.h"

#define UPSTREAM_MAX_HEADER  (64 * 1024) /* status line excluded; all header bytes */
#define UPSTREAM_MAX_HEADERS 256
#define UPSTREAM_SPARE_HBUF  4096  /* largest header buffer a worker keeps */
#define UPSTREAM_SPARE_HCAP  32    /* largest header index it keeps */
#define UPSTREAM_DNS_TTL     30000 /* ms, positive answers */
#define UPSTREAM_DNS_NEG_TTL 5000  /* ms, failures */

static void pool_dns_set(upstream_pool_t *pool, const struct addrinfo *res, int rc);

static upstream_conn_t *conn_create(upstream_pool_t *pool);
static void conn_attach(upstream_conn_t *c, sl_upstream_call_t *uc);
static void conn_open(upstream_conn_t *c);
static void conn_on_resolve(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
static void conn_connect(upstream_conn_t *c);
static void conn_on_connect(uv_connect_t *req, int status);
static void conn_connect_failed(upstream_conn_t *c, int err);
static void conn_handshake(upstream_conn_t *c);
static void conn_send(upstream_conn_t *c);
static int conn_flush(upstream_conn_t *c);
static void conn_on_write(uv_write_t *req, int status);
static void conn_on_write_run(uv_write_t *req, int status);
static void conn_request_sent(upstream_conn_t *c);
static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_on_read_run(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_parse(upstream_conn_t *c, const char *p, size_t len);
static void conn_eof(upstream_conn_t *c, int err);
static void conn_complete(upstream_conn_t *c);
static void conn_fail(upstream_conn_t *c, int rc);
static void conn_release(upstream_conn_t *c);
static void conn_on_keepalive(uv_timer_t *timer);
static void conn_on_close(uv_handle_t *handle);
static void conn_free(upstream_conn_t *c);
static const char *upstream_strerror(int err);

static int http_on_message_begin(llhttp_t *parser);
static int http_on_header_field(llhttp_t *parser, const char *at, size_t len);
static int http_on_header_value(llhttp_t *parser, const char *at, size_t len);
static int http_on_headers_complete(llhttp_t *parser);
static void conn_headers_release(upstream_conn_t *c);
static int http_on_body(llhttp_t *parser, const char *at, size_t len);
static int http_on_message_complete(llhttp_t *parser);

static const llhttp_settings_t upstream_http_settings = {
    .on_message_begin = http_on_message_begin,
    .on_header_field = http_on_header_field,
    .on_header_value = http_on_header_value,
    .on_headers_complete = http_on_headers_complete,
    .on_body = http_on_body,
    .on_message_complete = http_on_message_complete,
};


/* Gives free slots and idle connections to the calls queued for them, oldest first. */
void
sl__upstream_pool_dispatch(upstream_pool_t *pool)
{
    sl_upstream_call_t *uc;
    unsigned max = pool->p->max_connections;

    if (pool->u->destroyed) {
        return;
    }
    while (!TAILQ_EMPTY(&pool->waiting)
           && (!TAILQ_EMPTY(&pool->idle) || max == 0 || pool->nbusy < max)) {
        uc = TAILQ_FIRST(&pool->waiting);
        TAILQ_REMOVE(&pool->waiting, uc, wait_link);
        uc->waiting = false;
        sl__upstream_call_set_phase(uc, UPSTREAM_PHASE_CONNECT);
        sl__upstream_call_acquire(uc, false);
    }
}


static void
pool_dns_set(upstream_pool_t *pool, const struct addrinfo *res, int rc)
{
    uint64_t now = uv_now(pool->u->loop);

    pool->naddrs = 0;
    for (; res != NULL && pool->naddrs < UPSTREAM_MAX_ADDRS; res = res->ai_next) {
        if (res->ai_family == AF_INET && res->ai_addrlen >= sizeof(struct sockaddr_in)) {
            memcpy(&pool->addrs[pool->naddrs++].sin, res->ai_addr, sizeof(struct sockaddr_in));
        } else if (res->ai_family == AF_INET6 && res->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            memcpy(&pool->addrs[pool->naddrs++].sin6, res->ai_addr, sizeof(struct sockaddr_in6));
        }
    }
    if (rc == 0 && pool->naddrs == 0) {
        rc = SL_ERESOLVE;
    }
    pool->dns_rc = rc;
    pool->dns_expires = now + (rc == 0 ? UPSTREAM_DNS_TTL : UPSTREAM_DNS_NEG_TTL);
}


/*
 * Finds a connection for uc: the most recently used idle one (unless fresh
 * is asked for, as on the retry after a stale one), else a new one when the
 * pool has a free slot, else a place at the end of the queue.
 */
void
sl__upstream_call_acquire(sl_upstream_call_t *uc, bool fresh)
{
    upstream_pool_t *pool = uc->pool;
    upstream_conn_t *c;
    unsigned max = pool->p->max_connections;

    if (!fresh && !TAILQ_EMPTY(&pool->idle)) {
        c = TAILQ_FIRST(&pool->idle);
        TAILQ_REMOVE(&pool->idle, c, link);
        pool->nidle--;
        TAILQ_INSERT_TAIL(&pool->busy, c, link);
        pool->nbusy++;
        /* its keep-alive timer stays armed: conn_on_keepalive ignores a busy connection */
        c->reused = true;
        uc->timing.reused = true;
        uc->timing.connected = sl_clock_ns();
        conn_attach(c, uc);
        conn_send(c);
        return;
    }
    if (max == 0 || pool->nbusy < max || fresh) {
        c = conn_create(pool);
        c->reused = false;
        uc->timing.reused = false;
        conn_attach(c, uc);
        sl__upstream_call_arm(uc);
        conn_open(c);
        return;
    }
    uc->waiting = true;
    TAILQ_INSERT_TAIL(&pool->waiting, uc, wait_link);
    uc->phase = UPSTREAM_PHASE_WAIT;
    sl__upstream_call_arm(uc);
}


static upstream_conn_t *
conn_create(upstream_pool_t *pool)
{
    sl_upstream_t *u = pool->u;
    upstream_conn_t *c;

    c = sl_xcalloc(1, sizeof(*c));
    c->pool = pool;
    c->state = UPSTREAM_CONN_RESOLVING;
    uv_tcp_init(u->loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_init(u->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->connect_req.data = c;
    c->write_req.data = c;
    c->handles = 2;
    llhttp_init(&c->parser, HTTP_RESPONSE, &upstream_http_settings);
    c->parser.data = c;
    snprintf(c->addr_text, sizeof(c->addr_text), "%s", pool->p->host);
    TAILQ_INSERT_TAIL(&pool->busy, c, link);
    pool->nbusy++;
    u->refs++;
    return c;
}


static void
conn_attach(upstream_conn_t *c, sl_upstream_call_t *uc)
{
    c->call = uc;
    uc->conn = c;
    uc->got_byte = false;
}


/* Resolves the provider's host (or takes the cached answer) and connects. */
static void
conn_open(upstream_conn_t *c)
{
    upstream_pool_t *pool = c->pool;
    struct addrinfo hints;
    int rc;

    if (uv_now(pool->u->loop) < pool->dns_expires) {
        if (pool->dns_rc != 0) {
            conn_fail(c, SL_ERESOLVE);
            return;
        }
        memcpy(c->addrs, pool->addrs, pool->naddrs * sizeof(upstream_addr_t));
        c->naddrs = pool->naddrs;
        conn_connect(c);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->dns = sl_xmalloc(sizeof(uv_getaddrinfo_t));
    c->dns->data = c;
    rc = uv_getaddrinfo(pool->u->loop, c->dns, conn_on_resolve, pool->p->host, NULL, &hints);
    if (rc != 0) {
        free(c->dns);
        c->dns = NULL;
        sl_log(&c->call->log, SL_LOG_ERR, 0,
               "%s could not be resolved (%d: %s) while connecting to upstream \"%s\"",
               pool->p->host, rc, uv_strerror(rc), pool->p->name);
        conn_fail(c, SL_ERESOLVE);
    }
}


static void
conn_on_resolve(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    upstream_conn_t *c = req->data;
    upstream_pool_t *pool;

    free(req);
    if (c == NULL) {
        /* the connection was closed during the lookup */
        uv_freeaddrinfo(res);
        return;
    }
    c->dns = NULL;
    pool = c->pool;
    pool_dns_set(pool, res, status);
    uv_freeaddrinfo(res);
    if (pool->dns_rc != 0) {
        sl_log(c->call != NULL ? &c->call->log : &sl_log_main, SL_LOG_ERR, 0,
               "%s could not be resolved (%d: %s) while connecting to upstream \"%s\"",
               pool->p->host, status, status != 0 ? uv_strerror(status) : "no address",
               pool->p->name);
        conn_fail(c, SL_ERESOLVE);
        return;
    }
    memcpy(c->addrs, pool->addrs, pool->naddrs * sizeof(upstream_addr_t));
    c->naddrs = pool->naddrs;
    conn_connect(c);
}


static void
conn_connect(upstream_conn_t *c)
{
    upstream_addr_t *a = &c->addrs[c->addr];
    uint16_t port = htons(c->pool->p->port);
    char ip[INET6_ADDRSTRLEN];
    int rc;

    c->state = UPSTREAM_CONN_CONNECTING;
    if (a->sa.sa_family == AF_INET6) {
        a->sin6.sin6_port = port;
        inet_ntop(AF_INET6, &a->sin6.sin6_addr, ip, sizeof(ip));
        snprintf(c->addr_text, sizeof(c->addr_text), "[%s]:%u", ip, c->pool->p->port);
    } else {
        a->sin.sin_port = port;
        inet_ntop(AF_INET, &a->sin.sin_addr, ip, sizeof(ip));
        snprintf(c->addr_text, sizeof(c->addr_text), "%s:%u", ip, c->pool->p->port);
    }
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, &a->sa, conn_on_connect);
    if (rc != 0) {
        conn_connect_failed(c, rc);
    }
}


static void
conn_on_connect(uv_connect_t *req, int status)
{
    upstream_conn_t *c = req->data;
    sl_upstream_call_t *uc = c->call;

    if (status == UV_ECANCELED || c->state == UPSTREAM_CONN_CLOSING || uc == NULL) {
        return;
    }
    if (status != 0) {
        conn_connect_failed(c, status);
        return;
    }
    sl__upstream_conn_read_start(c);
    if (c->pool->tls == NULL) {
        uc->timing.connected = sl_clock_ns();
        conn_send(c);
        return;
    }
    c->tls = sl_tls_create(c->pool->tls, c->pool->p->host);
    if (c->tls == NULL) {
        conn_fail(c, SL_ETLS);
        return;
    }
    /* offer the pool's last session: a server that still knows it skips the full handshake */
    if (c->pool->session != NULL) {
        (void) sl_tls_session_set(c->tls, c->pool->session);
    }
    c->state = UPSTREAM_CONN_HANDSHAKE;
    conn_handshake(c);
}


/* Logs the failure and moves on to the next address, or fails the call after the last one. */
static void
conn_connect_failed(upstream_conn_t *c, int err)
{
    sl_log(&c->call->log, SL_LOG_ERR, 0,
           "connect() to %s failed (%d: %s) while connecting to upstream \"%s\"", c->addr_text,
           -err, upstream_strerror(err), c->pool->p->name);
    if (c->addr + 1 < c->naddrs) {
        c->addr++;
        c->reconnect = true;
        uv_close((uv_handle_t *) &c->tcp, conn_on_close);
        return;
    }
    conn_fail(c, err);
}


static void
conn_handshake(upstream_conn_t *c)
{
    sl_upstream_call_t *uc = c->call;
    int rc, wrc;

    rc = sl_tls_handshake(c->tls);
    wrc = conn_flush(c);
    if (rc == UV_EAGAIN) {
        if (wrc < 0) {
            conn_eof(c, wrc);
        }
        return;
    }
    if (rc == SL_ECERT) {
        sl_log(&uc->log, SL_LOG_ERR, 0,
               "upstream \"%s\" certificate verify error: (%s) while TLS handshaking to %s",
               c->pool->p->name, sl_tls_last_error(c->tls), c->addr_text);
        conn_fail(c, rc);
        return;
    }
    if (rc != 0) {
        sl_log(&uc->log, SL_LOG_ERR, 0, "TLS handshake with upstream \"%s\" at %s failed: %s",
               c->pool->p->name, c->addr_text, sl_tls_last_error(c->tls));
        /* the next connection starts afresh */
        sl_tls_session_free(c->pool->session);
        c->pool->session = NULL;
        conn_fail(c, rc);
        return;
    }
    /* keep the newest session (and ticket) for the pool's next connection */
    sl_tls_session_free(c->pool->session);
    c->pool->session = sl_tls_session_get(c->tls);
    uc->timing.connected = sl_clock_ns();
    conn_send(c);
}


/*
 * Starts writing the attached call's request, its head and then a kept body
 * (plain: straight from the call's memory and the body's, one writev).
 */
static void
conn_send(upstream_conn_t *c)
{
    sl_upstream_call_t *uc = c->call;
    size_t total = uc->req_len + uc->body_len;
    uv_buf_t b[2];
    unsigned nb = 0;
    size_t n;
    int w, rc;

    c->state = UPSTREAM_CONN_ACTIVE;
    c->complete = false;
    c->keepalive = false;
    c->req_pending = true;
    c->last_read = 0;
    llhttp_reset(&c->parser);
    if (uc->paused) {
        sl__upstream_conn_read_stop(c);
    } else {
        sl__upstream_conn_read_start(c);
    }
    sl__upstream_call_set_phase(uc, UPSTREAM_PHASE_SEND);

    if (c->tls != NULL) {
        rc = sl_tls_write(c->tls, uc->req, uc->req_len);
        if (rc == 0 && uc->body_len > 0) {
            rc = sl_tls_write(c->tls, uc->body, uc->body_len);
        }
        if (rc != 0) {
            sl_log(&uc->log, SL_LOG_ERR, 0, "TLS write to upstream \"%s\" at %s failed: %s",
                   c->pool->p->name, c->addr_text, sl_tls_last_error(c->tls));
            conn_fail(c, rc);
            return;
        }
        rc = conn_flush(c);
        if (rc < 0) {
            conn_eof(c, rc);
        } else if (rc == 0) {
            conn_request_sent(c);
        }
        return;
    }

    b[nb++] = uv_buf_init(uc->req, (unsigned) uc->req_len);
    if (uc->body_len > 0) {
        b[nb++] = uv_buf_init((char *) (uintptr_t) uc->body, (unsigned) uc->body_len);
    }
    w = uv_try_write((uv_stream_t *) &c->tcp, b, nb);
    if (w >= 0 && (size_t) w == total) {
        conn_request_sent(c);
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        conn_eof(c, w);
        return;
    }
    /* what is left: the rest of the head and the body, or the rest of the body */
    n = w > 0 ? (size_t) w : 0;
    nb = 0;
    if (n < uc->req_len) {
        b[nb++] = uv_buf_init(uc->req + n, (unsigned) (uc->req_len - n));
        n = 0;
    } else {
        n -= uc->req_len;
    }
    if (uc->body_len > n) {
        b[nb++] = uv_buf_init((char *) (uintptr_t) (uc->body + n), (unsigned) (uc->body_len - n));
    }
    SL_ASSERT(nb > 0);
    rc = uv_write(&c->write_req, (uv_stream_t *) &c->tcp, b, nb, conn_on_write);
    if (rc != 0) {
        conn_eof(c, rc);
        return;
    }
    c->writing = true;
}


/*
 * Sends the TLS output. Returns 0 when everything left synchronously, 1
 * when a write is in flight (conn_on_write finishes it), or a libuv error.
 */
static int
conn_flush(upstream_conn_t *c)
{
    sl_buf_t *out, tmp;
    uv_buf_t b;
    int n, rc;

    if (c->writing) {
        return 1;
    }
    out = sl_tls_output(c->tls);
    if (out->len == 0) {
        return 0;
    }
    b = uv_buf_init(out->p, (unsigned) out->len);
    n = uv_try_write((uv_stream_t *) &c->tcp, &b, 1);
    if (n == (int) out->len) {
        sl_buf_clear(out);
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN) {
        return n;
    }
    if (n < 0) {
        n = 0;
    }
    /* swap storage: the session keeps encrypting into an empty buffer while this one is written */
    tmp = *out;
    sl_buf_clear(&c->wbuf);
    *out = c->wbuf;
    c->wbuf = tmp;
    b = uv_buf_init(c->wbuf.p + n, (unsigned) (c->wbuf.len - (size_t) n));
    rc = uv_write(&c->write_req, (uv_stream_t *) &c->tcp, &b, 1, conn_on_write);
    if (rc != 0) {
        return rc;
    }
    c->writing = true;
    return 1;
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
    upstream_conn_t *c = req->data;
    int rc;

    c->writing = false;
    if (status == UV_ECANCELED || c->state == UPSTREAM_CONN_CLOSING) {
        return;
    }
    if (status < 0) {
        conn_eof(c, status);
        return;
    }
    if (c->tls != NULL) {
        rc = conn_flush(c);
        if (rc < 0) {
            conn_eof(c, rc);
            return;
        }
        if (rc > 0) {
            return;
        }
    }
    if (c->req_pending && c->state == UPSTREAM_CONN_ACTIVE) {
        conn_request_sent(c);
    }
}


static void
conn_request_sent(upstream_conn_t *c)
{
    sl_upstream_call_t *uc = c->call;

    c->req_pending = false;
    uc->timing.sent = sl_clock_ns();
    if (uc->phase == UPSTREAM_PHASE_SEND) {
        sl__upstream_call_set_phase(uc, UPSTREAM_PHASE_FIRST_BYTE);
    }
}


void
sl__upstream_conn_read_start(upstream_conn_t *c)
{
    int rc;

    if (c->reading) {
        return;
    }
    rc = uv_read_start((uv_stream_t *) &c->tcp, conn_on_alloc, conn_on_read);
    if (rc == 0) {
        c->reading = true;
    }
}


void
sl__upstream_conn_read_stop(upstream_conn_t *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *) &c->tcp);
        c->reading = false;
    }
}


static void
conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    upstream_conn_t *c = handle->data;

    *buf = uv_buf_init(c->pool->u->rbuf, UPSTREAM_RBUF_SIZE);
}


/* The callback with the clock read once for its whole run (core/base/clock.h). */
static void
conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sl_clock_enter();
    conn_on_read_run(stream, nread, buf);
    sl_clock_leave();
}


static void
conn_on_read_run(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    upstream_conn_t *c = stream->data;
    int rc;

    if (nread == 0 || c->state == UPSTREAM_CONN_CLOSING) {
        return;
    }
    if (c->state == UPSTREAM_CONN_IDLE) {
        /* EOF, close_notify or stray bytes: this connection can carry no more requests */
        sl_debug(&sl_log_main, "idle upstream connection to \"%s\" at %s closed (%zd)",
                 c->pool->p->name, c->addr_text, nread);
        sl__upstream_conn_close(c);
        return;
    }
    if (nread < 0) {
        conn_eof(c, (int) nread);
        return;
    }
    if (c->tls == NULL) {
        conn_parse(c, buf->base, (size_t) nread);
        return;
    }

    sl_tls_feed(c->tls, buf->base, (size_t) nread);
    if (c->state == UPSTREAM_CONN_HANDSHAKE) {
        conn_handshake(c);
        return;
    }
    for (;;) {
        rc = sl_tls_read_into(c->tls, c->pool->u->pbuf, UPSTREAM_RBUF_SIZE);
        if (rc > 0) {
            conn_parse(c, c->pool->u->pbuf, (size_t) rc);
            if (c->state == UPSTREAM_CONN_CLOSING) {
                return;
            }
            /* idle or handed on: a close_notify right behind the response is still read */
            continue;
        }
        if (rc == 0) {
            break;
        }
        if (rc == SL_ECLOSED) {
            conn_eof(c, UV_EOF);
            return;
        }
        if (c->state == UPSTREAM_CONN_IDLE) {
            sl__upstream_conn_close(c);
            return;
        }
        sl_log(&c->call->log, SL_LOG_ERR, 0, "TLS read from upstream \"%s\" at %s failed: %s",
               c->pool->p->name, c->addr_text, sl_tls_last_error(c->tls));
        conn_fail(c, rc);
        return;
    }
    rc = conn_flush(c);
    if (rc < 0) {
        conn_eof(c, rc);
    }
}


/* Feeds response bytes to llhttp; completes or fails the call as the parser says. */
static void
conn_parse(upstream_conn_t *c, const char *p, size_t len)
{
    sl_upstream_call_t *uc = c->call;
    llhttp_errno_t err;
    const char *pos;

    if (c->state == UPSTREAM_CONN_IDLE) {
        /* bytes after a complete response: the connection is out of step */
        sl__upstream_conn_close(c);
        return;
    }
    if (!uc->got_byte) {
        uc->got_byte = true;
        uc->timing.first_byte = sl_clock_ns();
        c->last_read = uv_now(uc->u->loop);
        sl__upstream_call_set_phase(uc, UPSTREAM_PHASE_READ);
    } else {
        c->last_read = uv_now(uc->u->loop);
    }

    err = llhttp_execute(&c->parser, p, len);
    if (c->call == uc && uc->cbs.on_read_end != NULL) {
        uc->cbs.on_read_end(uc, uc->data);
    }
    if (c->call != uc) {
        /* cancelled from on_headers, on_body or on_read_end */
        return;
    }
    if (err == HPE_OK) {
        return;
    }
    if (err == HPE_PAUSED && c->complete) {
        pos = llhttp_get_error_pos(&c->parser);
        if (pos != NULL && pos < p + len) {
            c->keepalive = false;
        }
        conn_complete(c);
        return;
    }
    sl_log(&uc->log, SL_LOG_ERR, 0,
           "upstream \"%s\" at %s sent an invalid response: %s (%s) while %s upstream",
           c->pool->p->name, c->addr_text, llhttp_errno_name(err),
           llhttp_get_error_reason(&c->parser) != NULL ? llhttp_get_error_reason(&c->parser) : "",
           sl__upstream_phase_text(uc));
    conn_fail(c, SL_EUPSTREAM);
}


/*
 * The peer closed (err UV_EOF), reset, or a write failed. A response that
 * ends at EOF completes; a reused connection that died before any byte of
 * the response came back is retried once on a fresh connection.
 */
static void
conn_eof(upstream_conn_t *c, int err)
{
    sl_upstream_call_t *uc = c->call;
    upstream_pool_t *pool = c->pool;

    if (uc == NULL) {
        sl__upstream_conn_close(c);
        return;
    }
    if (c->state == UPSTREAM_CONN_HANDSHAKE) {
        sl_log(&uc->log, SL_LOG_ERR, 0,
               "upstream \"%s\" at %s closed the connection (%d: %s) while TLS handshaking",
               pool->p->name, c->addr_text, -err, upstream_strerror(err));
        conn_fail(c, SL_ETLS);
        return;
    }
    if (!uc->got_byte && c->reused && !uc->retried
        && (err == UV_EOF || err == UV_ECONNRESET || err == UV_EPIPE)) {
        sl_log(&uc->log, SL_LOG_INFO, 0,
               "kept-alive connection to upstream \"%s\" at %s was closed (%d: %s), retrying",
               pool->p->name, c->addr_text, -err, upstream_strerror(err));
        c->call = NULL;
        uc->conn = NULL;
        sl__upstream_conn_close(c);
        uc->retried = true;
        sl__upstream_call_set_phase(uc, UPSTREAM_PHASE_CONNECT);
        sl__upstream_call_acquire(uc, true);
        sl__upstream_pool_dispatch(pool);
        return;
    }
    if (err == UV_EOF && uc->got_byte) {
        /* a body delimited by the close completes here (on_message_complete pauses) */
        (void) llhttp_finish(&c->parser);
    }
    if (c->complete) {
        c->keepalive = false;
        conn_complete(c);
        return;
    }
    if (err == UV_EOF) {
        sl_log(&uc->log, SL_LOG_ERR, 0,
               "upstream \"%s\" at %s prematurely closed connection while %s upstream",
               pool->p->name, c->addr_text, sl__upstream_phase_text(uc));
        conn_fail(c, SL_ECLOSED);
        return;
    }
    sl_log(&uc->log, SL_LOG_ERR, 0, "%s upstream \"%s\" at %s failed (%d: %s)",
           c->req_pending ? "writing to" : "reading from", pool->p->name, c->addr_text, -err,
           upstream_strerror(err));
    conn_fail(c, err);
}


/* The response is complete: the connection goes back to the pool if it can, the call ends. */
static void
conn_complete(upstream_conn_t *c)
{
    sl_upstream_call_t *uc = c->call;

    c->call = NULL;
    uc->conn = NULL;
    if (c->keepalive && !c->req_pending) {
        conn_release(c);
    } else {
        sl__upstream_conn_close(c);
        sl__upstream_pool_dispatch(c->pool);
    }
    sl__upstream_call_finish(uc, 0);
}


static void
conn_fail(upstream_conn_t *c, int rc)
{
    sl_upstream_call_t *uc = c->call;

    c->call = NULL;
    if (uc != NULL) {
        uc->conn = NULL;
    }
    sl__upstream_conn_close(c);
    if (uc != NULL) {
        sl__upstream_call_finish(uc, rc);
    }
    sl__upstream_pool_dispatch(c->pool);
}


/* Hands a reusable connection to the oldest waiting call, or keeps it idle. */
static void
conn_release(upstream_conn_t *c)
{
    upstream_pool_t *pool = c->pool;
    const sl_provider_conf_t *p = pool->p;
    sl_upstream_call_t *uc;

    if (pool->u->destroyed || p->keepalive_timeout == 0) {
        sl__upstream_conn_close(c);
        return;
    }
    if (!TAILQ_EMPTY(&pool->waiting)) {
        uc = TAILQ_FIRST(&pool->waiting);
        TAILQ_REMOVE(&pool->waiting, uc, wait_link);
        uc->waiting = false;
        uc->phase = UPSTREAM_PHASE_CONNECT;
        c->reused = true;
        uc->timing.reused = true;
        uc->timing.connected = sl_clock_ns();
        conn_attach(c, uc);
        conn_send(c);
        return;
    }
    if (pool->nidle >= p->max_idle) {
        sl__upstream_conn_close(c);
        return;
    }
    TAILQ_REMOVE(&pool->busy, c, link);
    pool->nbusy--;
    TAILQ_INSERT_HEAD(&pool->idle, c, link);
    pool->nidle++;
    c->state = UPSTREAM_CONN_IDLE;
    sl__upstream_conn_read_start(c);
    c->idle_until = uv_now(c->pool->u->loop) + p->keepalive_timeout;
    if (!c->timer_armed) {
        uv_timer_start(&c->timer, conn_on_keepalive, p->keepalive_timeout, 0);
        c->timer_armed = true;
    }
}


static void
conn_on_keepalive(uv_timer_t *timer)
{
    upstream_conn_t *c = timer->data;
    uint64_t now = uv_now(timer->loop);

    c->timer_armed = false;
    if (c->state != UPSTREAM_CONN_IDLE) {
        return; /* busy again since it was armed: going idle arms it anew */
    }
    if (now < c->idle_until) {
        uv_timer_start(&c->timer, conn_on_keepalive, c->idle_until - now, 0);
        c->timer_armed = true;
        return;
    }
    sl__upstream_conn_close(c);
}


/* Takes the connection out of its pool and closes it; memory goes in conn_on_close. */
void
sl__upstream_conn_close(upstream_conn_t *c)
{
    upstream_pool_t *pool = c->pool;

    if (c->state == UPSTREAM_CONN_CLOSING) {
        return;
    }
    if (c->state == UPSTREAM_CONN_IDLE) {
        TAILQ_REMOVE(&pool->idle, c, link);
        pool->nidle--;
    } else {
        TAILQ_REMOVE(&pool->busy, c, link);
        pool->nbusy--;
    }
    c->state = UPSTREAM_CONN_CLOSING;
    if (c->call != NULL) {
        c->call->conn = NULL;
        c->call = NULL;
    }
    if (c->dns != NULL) {
        /* the lookup frees itself in conn_on_resolve */
        c->dns->data = NULL;
        uv_cancel((uv_req_t *) c->dns);
        c->dns = NULL;
    }
    if (!uv_is_closing((uv_handle_t *) &c->tcp)) {
        uv_close((uv_handle_t *) &c->tcp, conn_on_close);
    }
    uv_close((uv_handle_t *) &c->timer, conn_on_close);
}


static void
conn_on_close(uv_handle_t *handle)
{
    upstream_conn_t *c = handle->data;

    if (handle == (uv_handle_t *) &c->tcp && c->reconnect) {
        c->reconnect = false;
        if (c->state != UPSTREAM_CONN_CLOSING) {
            uv_tcp_init(c->pool->u->loop, &c->tcp);
            uv_tcp_nodelay(&c->tcp, 1);
            c->tcp.data = c;
            conn_connect(c);
            return;
        }
    }
    if (--c->handles == 0) {
        conn_free(c);
    }
}


static void
conn_free(upstream_conn_t *c)
{
    sl_upstream_t *u = c->pool->u;

    sl_tls_destroy(c->tls);
    sl_buf_free(&c->wbuf);
    conn_headers_release(c);
    free(c);
    sl__upstream_unref(u);
}


/*
 * Gives up the connection's header storage: kept by the worker for the next
 * response when it keeps none and the storage is small, else freed.
 */
static void
conn_headers_release(upstream_conn_t *c)
{
    sl_upstream_t *u = c->pool->u;

    if (u->spare_hbuf.p == NULL && c->hbuf.cap <= UPSTREAM_SPARE_HBUF) {
        u->spare_hbuf = c->hbuf;
        sl_buf_clear(&u->spare_hbuf);
    } else {
        sl_buf_free(&c->hbuf);
    }
    if (u->spare_hidx == NULL && c->hidx != NULL && c->hcap <= UPSTREAM_SPARE_HCAP) {
        u->spare_hidx = c->hidx;
        u->spare_hdrs = c->hdrs;
        u->spare_hcap = c->hcap;
    } else {
        free(c->hidx);
        free(c->hdrs);
    }
    c->hbuf = SL_BUF_INIT;
    c->hidx = NULL;
    c->hdrs = NULL;
    c->hcap = 0;
    c->nh = 0;
}


/* libuv codes are -errno except UV_EOF, which strerror does not know. */
static const char *
upstream_strerror(int err)
{
    return err == UV_EOF ? "Connection closed by peer" : strerror(-err);
}


static int
http_on_message_begin(llhttp_t *parser)
{
    upstream_conn_t *c = parser->data;
    sl_upstream_t *u = c->pool->u;

    sl_buf_clear(&c->hbuf);
    if (c->hbuf.p == NULL && u->spare_hbuf.p != NULL) {
        c->hbuf = u->spare_hbuf;
        u->spare_hbuf = SL_BUF_INIT;
    }
    if (c->hidx == NULL && u->spare_hidx != NULL) {
        c->hidx = u->spare_hidx;
        c->hdrs = u->spare_hdrs;
        c->hcap = u->spare_hcap;
        u->spare_hidx = NULL;
        u->spare_hdrs = NULL;
        u->spare_hcap = 0;
    }
    c->nh = 0;
    c->in_value = false;
    return 0;
}


static int
http_on_header_field(llhttp_t *parser, const char *at, size_t len)
{
    upstream_conn_t *c = parser->data;
    upstream_hidx_t *h;

    if (c->hbuf.len + len > UPSTREAM_MAX_HEADER) {
        llhttp_set_error_reason(parser, "response header too large");
        return -1;
    }
    if (c->nh == 0 || c->in_value) {
        if (c->nh == UPSTREAM_MAX_HEADERS) {
            llhttp_set_error_reason(parser, "too many response headers");
            return -1;
        }
        if (c->nh == c->hcap) {
            c->hcap = c->hcap == 0 ? 32 : c->hcap * 2;
            c->hidx = sl_xrealloc(c->hidx, c->hcap * sizeof(upstream_hidx_t));
            c->hdrs = sl_xrealloc(c->hdrs, c->hcap * sizeof(sl_http_header_t));
        }
        h = &c->hidx[c->nh++];
        h->name = (uint32_t) c->hbuf.len;
        h->name_len = 0;
        h->value = (uint32_t) c->hbuf.len;
        h->value_len = 0;
        c->in_value = false;
    }
    h = &c->hidx[c->nh - 1];
    sl_buf_append(&c->hbuf, at, len);
    h->name_len += (uint32_t) len;
    return 0;
}


static int
http_on_header_value(llhttp_t *parser, const char *at, size_t len)
{
    upstream_conn_t *c = parser->data;
    upstream_hidx_t *h = &c->hidx[c->nh - 1];

    if (c->hbuf.len + len > UPSTREAM_MAX_HEADER) {
        llhttp_set_error_reason(parser, "response header too large");
        return -1;
    }
    if (!c->in_value) {
        c->in_value = true;
        h->value = (uint32_t) c->hbuf.len;
    }
    sl_buf_append(&c->hbuf, at, len);
    h->value_len += (uint32_t) len;
    return 0;
}


static int
http_on_headers_complete(llhttp_t *parser)
{
    upstream_conn_t *c = parser->data;
    sl_upstream_call_t *uc = c->call;
    int status = parser->status_code;

    if (status >= 100 && status < 200) {
        /* interim response (100 Continue, 103 Early Hints): not reported */
        return 0;
    }
    for (unsigned i = 0; i < c->nh; i++) {
        c->hdrs[i].name.p = c->hbuf.p + c->hidx[i].name;
        c->hdrs[i].name.len = c->hidx[i].name_len;
        c->hdrs[i].value.p = c->hbuf.p + c->hidx[i].value;
        c->hdrs[i].value.len = c->hidx[i].value_len;
    }
    if (uc->cbs.on_headers != NULL) {
        uc->cbs.on_headers(uc, status, c->hdrs, c->nh, uc->data);
        if (c->call != uc) {
            return -1;
        }
    }
    /* the headers were valid during the call only: a long stream does not keep their 2.5 KiB */
    conn_headers_release(c);
    /* a response to HEAD has no body whatever its headers say */
    return uc->head ? 1 : 0;
}


static int
http_on_body(llhttp_t *parser, const char *at, size_t len)
{
    upstream_conn_t *c = parser->data;
    sl_upstream_call_t *uc = c->call;

    if (uc->cbs.on_body != NULL) {
        uc->cbs.on_body(uc, at, len, uc->data);
        if (c->call != uc) {
            return -1;
        }
    }
    return 0;
}


static int
http_on_message_complete(llhttp_t *parser)
{
    upstream_conn_t *c = parser->data;

    if (parser->status_code >= 100 && parser->status_code < 200) {
        return 0;
    }
    c->complete = true;
    c->keepalive = llhttp_should_keep_alive(parser) != 0;
    /* stop here: the caller decides about any bytes behind the message */
    return HPE_PAUSED;
}
