/*
 * One inbound connection's life. An sl_http_conn_t holds the uv handles
 * (the socket and one timer that serves every timeout), the llhttp parser,
 * the TLS session when the listener speaks TLS, and the request being read
 * or answered. Reads land in buffers the server's connections share; only
 * bytes a connection has not parsed when its callback returns (pipelined
 * requests, which wait while a handler owns the request: llhttp is paused
 * from on_message_complete and resumed once the response has left) move to
 * a buffer of its own. EOF is a half-close until the client shows it is
 * gone; drain lets a connection that promised keep-alive answer the request
 * its client may already have sent; a response that leaves input unread
 * ends with a lingering close. The connection memory is released in the
 * close callback of its last uv handle, and not before the handler that
 * holds the request let it go.
 */
#include "core/http/http_server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <llhttp.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/http/tls.h"

static void conn_read_stop(sl_http_conn_t *c);
static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void conn_rbuf(sl_http_conn_t *c);
static size_t conn_direct_room(sl_http_conn_t *c);
static void conn_keep(sl_http_conn_t *c);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_on_read_run(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_on_plain(sl_http_conn_t *c, size_t n);
static void conn_tls_on_read(sl_http_conn_t *c, const char *p, size_t n);
static int conn_tls_handshake(sl_http_conn_t *c);
static void conn_tls_plain_http(sl_http_conn_t *c);
static int conn_tls_fill(sl_http_conn_t *c);
static void conn_on_read_error(sl_http_conn_t *c, ssize_t nread);
static void conn_on_eof(sl_http_conn_t *c);
static void conn_peer_probe(sl_http_conn_t *c);
static void conn_peer_check(sl_http_conn_t *c);
static void conn_on_timer(uv_timer_t *timer);
static void conn_process(sl_http_conn_t *c);
static void conn_parse(sl_http_conn_t *c);
static void conn_request_end(sl_http_conn_t *c);
static void conn_close_after_response(sl_http_conn_t *c);
static void conn_linger(sl_http_conn_t *c);
static void conn_on_shutdown(uv_shutdown_t *req, int status);
static void conn_on_close(uv_handle_t *handle);


/*
 * Sets the connection's timeout to ms from now (0: none). A request moves
 * through several timeouts (headers, body, none while busy, send, idle),
 * and restarting a libuv timer for each costs a heap removal and insertion:
 * the libuv timer is only restarted when the new deadline comes before the
 * one it is armed for; otherwise it fires early and conn_on_timer arms it
 * again for what is left. Stopping only forgets the deadline.
 */
void
sl__http_conn_timer(sl_http_conn_t *c, uint64_t ms)
{
    uint64_t d;

    if (ms == 0) {
        c->timer_on = false;
        return;
    }
    d = uv_now(c->timer.loop) + ms;
    c->timer_on = true;
    c->deadline = d;
    if (c->timer_armed && c->timer_due <= d) {
        return;
    }
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
    c->timer_armed = true;
    c->timer_due = d;
}


void
sl__http_conn_timer_now(sl_http_conn_t *c)
{
    uint64_t now = uv_now(c->timer.loop);

    c->timer_on = true;
    c->deadline = now;
    if (c->timer_armed && c->timer_due <= now) {
        return;
    }
    uv_timer_start(&c->timer, conn_on_timer, 0, 0);
    c->timer_armed = true;
    c->timer_due = now;
}


/*
 * How long an idle keep-alive connection waits for its next request:
 * keepalive_timeout, or the short drain grace once the server drains for a
 * stop (a retiring server keeps keepalive_timeout).
 */
uint64_t
sl__http_conn_idle_timeout(const sl_http_conn_t *c)
{
    uint64_t ms = c->srv->conf->keepalive_timeout;

    if (c->srv->draining && !c->srv->retiring && ms > HTTP_DRAIN_IDLE_GRACE) {
        ms = HTTP_DRAIN_IDLE_GRACE;
    }
    return ms;
}


void
sl__http_conn_read_start(sl_http_conn_t *c)
{
    int rc;

    if (c->reading || c->closing || c->eof) {
        return;
    }
    rc = uv_read_start((uv_stream_t *) &c->tcp, conn_on_alloc, conn_on_read);
    if (rc < 0) {
        sl_log(&c->log, SL_LOG_ERR, rc, "uv_read_start() failed");
        sl__http_conn_close(c);
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


/*
 * Plain connections read into rbuf (conn_rbuf picks it). TLS connections
 * read into the server's ciphertext buffer, which the session copies at
 * once, and decrypt into rbuf as far as it has room (conn_tls_fill). A read
 * callback always follows its alloc callback before any other, so shared
 * buffers are safe.
 */
static void
conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sl_http_conn_t *c = handle->data;
    size_t room;

    if (c->tls != NULL) {
        *buf = uv_buf_init(c->srv->tls_rbuf, sizeof(c->srv->tls_rbuf));
        return;
    }
    room = conn_direct_room(c);
    if (room > 0) {
        /* the rest of a long body goes where it stays, not through rbuf */
        c->direct = true;
        *buf = uv_buf_init(c->body.p + c->body.len, (unsigned) room);
        return;
    }
    conn_rbuf(c);
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned) (HTTP_RBUF_SIZE - c->rlen));
}


/*
 * Bytes the next read may put straight into the body's tail: with a
 * Content-Length body under way, nothing else buffered and half a read
 * buffer of the body in already (a body one read brings whole is read as
 * usual), as many as the body still lacks (so no byte of a next request
 * lands there), in room grown as the body arrives (a client announcing a
 * large body gets no large buffer for it). 0 when the read goes to rbuf.
 */
static size_t
conn_direct_room(sl_http_conn_t *c)
{
    size_t left, want;

    if (c->state != SL_HTTP_BODY || c->err_status != 0 || c->need_exec || c->rpos != c->rlen
        || c->body_length <= c->body.len || c->body.len < HTTP_RBUF_SIZE / 2) {
        return 0;
    }
    left = c->body_length - c->body.len;
    want = c->body.len > left ? left : c->body.len;
    if (c->body.cap - c->body.len < want) {
        sl_buf_reserve(&c->body, want);
    }
    return left < c->body.cap - c->body.len ? left : c->body.cap - c->body.len;
}


/*
 * Points rbuf where new bytes go: the server's shared buffer when nothing
 * is pending, else the buffer holding the pending bytes, which move to its
 * front (nothing points into it: llhttp's spans are copied to the pool).
 */
static void
conn_rbuf(sl_http_conn_t *c)
{
    if (c->rpos == c->rlen) {
        c->rpos = 0;
        c->rlen = 0;
        c->rbuf = c->srv->rbuf;
        return;
    }
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
}


/*
 * Before a callback returns: unparsed bytes still in the shared buffer move
 * to the connection's own (allocated for the purpose: pipelining is rare,
 * and a connection without pending bytes holds no read buffer at all).
 */
static void
conn_keep(sl_http_conn_t *c)
{
    size_t n = c->rlen - c->rpos;

    if (n == 0 || c->closing) {
        c->rpos = 0;
        c->rlen = 0;
        c->rbuf = c->srv->rbuf;
        free(c->own);
        c->own = NULL;
        return;
    }
    if (c->rbuf == c->own) {
        return;
    }
    if (c->own == NULL) {
        c->own = sl_xmalloc(HTTP_RBUF_SIZE);
    }
    memcpy(c->own, c->rbuf + c->rpos, n);
    c->rbuf = c->own;
    c->rpos = 0;
    c->rlen = n;
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
    sl_http_conn_t *c = stream->data;

    if (nread <= 0) {
        c->direct = false;
        if (nread < 0) {
            conn_on_read_error(c, nread);
        }
        return;
    }
    if (c->tls != NULL) {
        conn_tls_on_read(c, buf->base, (size_t) nread);
        return;
    }
    if (c->direct) {
        /* parsed where they are: http_on_body sees its own tail and only counts them */
        SL_ASSERT(c->state == SL_HTTP_BODY && c->rpos == c->rlen);
        c->rbuf = buf->base;
        c->rpos = 0;
        c->rlen = 0;
    }
    conn_on_plain(c, (size_t) nread);
    c->direct = false;
}


/* n new bytes of the request stream are at rbuf + rlen. */
static void
conn_on_plain(sl_http_conn_t *c, size_t n)
{
    switch (c->state) {
    case SL_HTTP_LINGER:
        return;
    case SL_HTTP_BUSY:
    case SL_HTTP_SENDING:
        /* the next pipelined request waits until this response left */
        c->rlen += n;
        if (c->rlen == HTTP_RBUF_SIZE && c->rpos == 0) {
            conn_read_stop(c);
        }
        conn_keep(c);
        return;
    case SL_HTTP_BODY:
        sl__http_conn_timer(c, c->srv->conf->body_timeout);
        break;
    default:
        break;
    }
    c->rlen += n;
    conn_process(c);
}


static void
conn_tls_on_read(sl_http_conn_t *c, const char *p, size_t n)
{
    int rc;

    if (c->state == SL_HTTP_LINGER) {
        return;
    }
    /*
     * No TLS record type: plain HTTP. A resumed handshake's second flight
     * starts with change_cipher_spec, not handshake, so any type passes.
     */
    if (c->tls_handshake && c->state == SL_HTTP_IDLE && c->nrequests == 0
        && ((unsigned char) p[0] < HTTP_TLS_RECORD_MIN
            || (unsigned char) p[0] > HTTP_TLS_RECORD_MAX)
        && !sl_tls_pending(c->tls)) {
        conn_tls_plain_http(c);
        return;
    }
    sl_tls_feed(c->tls, p, n);
    if (c->tls_handshake && conn_tls_handshake(c) != 0) {
        return;
    }
    switch (c->state) {
    case SL_HTTP_BUSY:
    case SL_HTTP_SENDING:
        /* the next pipelined request waits in rbuf, and in the session when rbuf is full */
        do {
            rc = conn_tls_fill(c);
        } while (rc > 0);
        if (rc == 0 && c->rlen == HTTP_RBUF_SIZE && c->rpos == 0) {
            conn_read_stop(c);
        }
        conn_keep(c);
        if (rc == SL_ECLOSED) {
            conn_on_eof(c);
        }
        return;
    case SL_HTTP_BODY:
        sl__http_conn_timer(c, c->srv->conf->body_timeout);
        break;
    default:
        break;
    }
    conn_process(c);
}


/*
 * Advances the handshake with what was fed. Returns 0 once it is complete,
 * 1 while it needs more, -1 when it failed (the connection is closing).
 */
static int
conn_tls_handshake(sl_http_conn_t *c)
{
    int rc = sl_tls_handshake(c->tls);

    if (sl__http_conn_tls_flush(c) != 0) {
        return -1;
    }
    if (rc == UV_EAGAIN) {
        return 1;
    }
    if (rc < 0) {
        sl_log(&c->log, SL_LOG_INFO, 0, "TLS handshake with client %s failed: %s", c->addr,
               sl_tls_last_error(c->tls));
        c->tls_quiet = true;
        conn_linger(c);
        return -1;
    }
    c->tls_handshake = false;
    /* the first request gets its own header_timeout */
    sl__http_conn_timer(c, c->srv->conf->header_timeout);
    return 0;
}


/*
 * The first bytes on a TLS port are no TLS handshake: most likely a plain
 * HTTP request. It gets a plain 400 that says so, and the connection a
 * clean close (nginx answers the same with its 497).
 */
static void
conn_tls_plain_http(sl_http_conn_t *c)
{
    sl_log(&c->log, SL_LOG_INFO, 0, "client %s sent plain HTTP to a TLS port", c->addr);
    sl_tls_destroy(c->tls);
    c->tls = NULL;
    c->tls_handshake = false;
    sl__http_conn_request_begin(c);
    sl__http_conn_fail(c, 400, "https_required", "This port speaks HTTPS: use https:// for it.");
}


/*
 * Decrypts what the session holds into rbuf's free space. Returns the
 * number of bytes added, 0 when there is nothing more or no room,
 * SL_ECLOSED after the client's close_notify (eof is set), or SL_ETLS (the
 * connection is closing).
 */
static int
conn_tls_fill(sl_http_conn_t *c)
{
    int n;

    if (c->tls == NULL || c->tls_handshake || c->closing || c->eof) {
        return 0;
    }
    conn_rbuf(c);
    n = sl_tls_read_into(c->tls, c->rbuf + c->rlen, HTTP_RBUF_SIZE - c->rlen);
    if (sl_tls_output(c->tls)->len > 0 && sl__http_conn_tls_flush(c) != 0) {
        return SL_ETLS;
    }
    if (n > 0) {
        c->rlen += (size_t) n;
        return n;
    }
    if (n == SL_ECLOSED) {
        conn_read_stop(c);
        c->eof = true;
        return SL_ECLOSED;
    }
    if (n < 0) {
        sl_log(&c->log, SL_LOG_INFO, 0, "TLS read from client %s failed: %s", c->addr,
               sl_tls_last_error(c->tls));
        c->tls_quiet = true;
        sl__http_conn_close(c);
        return SL_ETLS;
    }
    return 0;
}


/* Sends the session's pending output (handshake messages, alerts). 0, or SL_ECLOSED. */
int
sl__http_conn_tls_flush(sl_http_conn_t *c)
{
    sl_buf_t *out = sl_tls_output(c->tls);
    uv_buf_t buf;
    int rc = 0;

    if (out->len > 0) {
        buf = uv_buf_init(out->p, (unsigned) out->len);
        rc = sl__http_conn_send_raw(c, &buf, 1);
    }
    if (out->cap > HTTP_TLS_OUT_KEEP) {
        sl_buf_free(out);
    } else {
        sl_buf_clear(out);
    }
    return rc;
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
        c->tls_quiet = true;
        sl__http_conn_close(c);
        return;
    }
    conn_on_eof(c);
}


/* The client sent EOF (a FIN, or a TLS close_notify). */
static void
conn_on_eof(sl_http_conn_t *c)
{
    /*
     * EOF is all a client that half-closed (shutdown(SHUT_WR)) after its
     * request and one that went away send: what it already sent is still
     * answered, and a client that is gone shows when it answers a write
     * with RST (conn_peer_probe). Once a stream has begun, EOF means the
     * client stopped listening (a half-close comes right after the request,
     * before any answer), so the stream stops at once.
     */
    switch (c->state) {
    case SL_HTTP_HEADERS:
    case SL_HTTP_BODY:
        if (c->rpos == c->rlen) {
            sl_log(&c->log, SL_LOG_INFO, 0,
                   "client %s closed the connection while sending a request", c->addr);
            sl__http_conn_close(c);
        }
        break;
    case SL_HTTP_BUSY:
        if (c->busy && c->streaming) {
            sl_log(&c->log, SL_LOG_INFO, 0,
                   "client %s closed the connection before the response was complete", c->addr);
            sl__http_conn_close(c);
        } else if (c->busy) {
            conn_peer_probe(c);
        }
        /* else the server's own error response: finish sending it, then close */
        break;
    case SL_HTTP_SENDING:
        /* the client still reads what is queued */
        break;
    case SL_HTTP_IDLE:
        if (c->rpos == c->rlen) {
            sl__http_conn_close(c);
        }
        /* else pipelined requests wait for their turn (c->resume) */
        break;
    default:
        sl__http_conn_close(c);
        break;
    }
}


/*
 * The client sent EOF while a handler works on its request. A client that
 * half-closed wants the answer; one that closed its socket will never read
 * it, and the handler's upstream work should stop. On the wire both are the
 * same FIN; they differ once we send something: a closed socket answers
 * with RST. So an HTTP/1.1 request that has no response bytes yet gets an
 * interim "100 Continue" (RFC 9110 15.2: clients must accept unexpected 1xx
 * responses), and the socket's pending error is checked every
 * HTTP_PEER_CHECK ms until the response starts (a stream that begins later
 * meets the RST with its own writes). HTTP/1.0 allows no 1xx: such a
 * request is answered, and a gone client shows at the write.
 */
static void
conn_peer_probe(sl_http_conn_t *c)
{
    uv_buf_t buf = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
    uint64_t bytes = c->resp_bytes;

    if (c->streaming || c->finished || c->req.http_minor == 0) {
        return;
    }
    sl_debug(&c->log, "client %s half-closed; probing it", c->addr);
    if (sl__http_conn_send(c, &buf, 1) != 0) {
        return;
    }
    c->resp_bytes = bytes; /* not part of the response in the access log */
    c->peer_check = true;
    if (c->queued == 0) {
        sl__http_conn_timer(c, HTTP_PEER_CHECK);
    }
}


/* The socket's pending error (RST after the probe): the client is gone. */
static void
conn_peer_check(sl_http_conn_t *c)
{
    uv_os_fd_t fd;
    socklen_t len = sizeof(int);
    int soerr = 0;

    if (uv_fileno((uv_handle_t *) &c->tcp, &fd) == 0
        && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0) {
        sl_log(&c->log, SL_LOG_INFO, soerr,
               "client %s closed the connection before the response was complete", c->addr);
        sl__http_conn_close(c);
        return;
    }
    sl__http_conn_timer(c, HTTP_PEER_CHECK);
}


static void
conn_on_timer(uv_timer_t *timer)
{
    sl_http_conn_t *c = timer->data;
    uint64_t now = uv_now(timer->loop);

    c->timer_armed = false;
    if (!c->timer_on) {
        return; /* stopped since it was armed */
    }
    if (now < c->deadline) {
        /* armed for an earlier deadline that has since moved on */
        uv_timer_start(&c->timer, conn_on_timer, c->deadline - now, 0);
        c->timer_armed = true;
        c->timer_due = c->deadline;
        return;
    }
    c->timer_on = false;
    switch (c->state) {
    case SL_HTTP_IDLE:
        if (c->resume) {
            c->resume = false;
            sl__http_conn_timer(c, sl__http_conn_idle_timeout(c));
            conn_process(c);
            break;
        }
        if (c->tls_handshake) {
            sl_log(&c->log, SL_LOG_INFO, 0, "client %s timed out in the TLS handshake", c->addr);
            c->tls_quiet = true;
        } else {
            sl_debug(&c->log, "keep-alive connection timed out");
        }
        sl__http_conn_close(c);
        break;
    case SL_HTTP_HEADERS:
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s timed out sending the request headers", c->addr);
        sl__http_conn_fail(c, 408, "request_timeout", "Timed out waiting for the request headers.");
        break;
    case SL_HTTP_BODY:
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s timed out sending the request body", c->addr);
        sl__http_conn_fail(c, 408, "request_timeout", "Timed out waiting for the request body.");
        break;
    case SL_HTTP_BUSY:
        if (c->peer_check && c->queued == 0) {
            conn_peer_check(c);
            break;
        }
        /* fall through */
    case SL_HTTP_SENDING:
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s timed out reading the response", c->addr);
        sl__http_conn_close(c);
        break;
    case SL_HTTP_LINGER:
        sl__http_conn_close(c);
        break;
    }
}


/*
 * Runs llhttp over the unparsed bytes until it needs more, a handler owns
 * the request, or the connection is closing; what is left is kept.
 */
static void
conn_process(sl_http_conn_t *c)
{
    conn_parse(c);
    conn_keep(c);
}


static void
conn_parse(sl_http_conn_t *c)
{
    const sl_conf_t *conf = c->srv->conf;
    llhttp_errno_t err;
    const char *data;
    size_t avail;
    size_t used;

    c->in_process = true;
    while (!c->closing) {
        if (c->state == SL_HTTP_IDLE) {
            if (c->rpos == c->rlen && conn_tls_fill(c) <= 0) {
                break;
            }
            sl__http_conn_request_begin(c);
        } else if (c->state != SL_HTTP_HEADERS && c->state != SL_HTTP_BODY) {
            break;
        }
        avail = c->rlen - c->rpos;
        if (avail == 0 && !c->need_exec) {
            if (conn_tls_fill(c) <= 0) {
                break;
            }
            avail = c->rlen - c->rpos;
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
                sl__http_conn_fail(c, 431, "request_header_fields_too_large",
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
                sl__http_conn_headers_done(c);
            } else {
                sl__http_conn_dispatch(c);
            }
            break;
        case HPE_PAUSED_UPGRADE:
            /* upgrades are not supported; the request was answered as plain HTTP */
            llhttp_resume_after_upgrade(&c->parser);
            c->need_exec = true;
            break;
        default:
            sl__http_conn_parse_error(c, err);
            break;
        }
    }
    c->in_process = false;

    if (c->eof && !c->closing && c->rpos == c->rlen
        && (c->state == SL_HTTP_HEADERS || c->state == SL_HTTP_BODY)) {
        /* the client half-closed in the middle of a request: it cannot complete */
        sl_log(&c->log, SL_LOG_INFO, 0, "client %s closed the connection while sending a request",
               c->addr);
        sl__http_conn_close(c);
        return;
    }
    if (c->eof && !c->closing && c->rpos == c->rlen && c->state == SL_HTTP_IDLE) {
        sl__http_conn_close(c);
        return;
    }
    if (!c->closing && c->state != SL_HTTP_LINGER && c->rlen < HTTP_RBUF_SIZE) {
        sl__http_conn_read_start(c);
    }
}


void
sl__http_conn_request_begin(sl_http_conn_t *c)
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
    r->start_ns = sl_clock_ns();
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
    c->peer_check = false;
    c->resp_status = 0;
    c->resp_bytes = 0;
    sl__http_conn_timer(c, srv->conf->header_timeout);
}


/* Forgets the finished request; the connection stays for the next one. */
static void
conn_request_end(sl_http_conn_t *c)
{
    sl_pool_reset(c->pool);
    sl_buf_clear(&c->held);
    if (c->body.cap > HTTP_BODY_KEEP) {
        sl_buf_free(&c->body);
    } else {
        sl_buf_clear(&c->body);
    }
    c->nrequests++;
}


/*
 * The response left: keep the connection for the next request or close it.
 * A response that promised keep-alive keeps its promise also when draining
 * began while it was sent (a stream, typically): the client may reuse the
 * connection the moment the body ends, so the connection waits for that
 * request like an idle one (the drain grace) and answers it with
 * "Connection: close". Closing at once would race with that request.
 */
void
sl__http_conn_request_done(sl_http_conn_t *c)
{
    if (!c->req.keepalive) {
        conn_close_after_response(c);
        return;
    }
    if (c->eof && c->rpos == c->rlen) {
        /* the client half-closed: no further request can come */
        sl__http_conn_close(c);
        return;
    }
    conn_request_end(c);
    c->state = SL_HTTP_IDLE;
    if (c->in_process) {
        /* conn_process goes on with any pipelined bytes */
        sl__http_conn_timer(c, sl__http_conn_idle_timeout(c));
        return;
    }
    if (c->rpos < c->rlen || (c->tls != NULL && sl_tls_pending(c->tls))) {
        /*
         * Parse the next pipelined request on the next loop turn, not inside
         * the sl_http_* call of the handler that just finished.
         */
        c->resume = true;
        sl__http_conn_timer_now(c);
    } else {
        sl__http_conn_timer(c, sl__http_conn_idle_timeout(c));
    }
    sl__http_conn_read_start(c);
}


static void
conn_close_after_response(sl_http_conn_t *c)
{
    if (c->linger || c->rpos < c->rlen) {
        conn_linger(c);
    } else {
        sl__http_conn_close(c);
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
        sl__http_conn_close(c);
        return;
    }
    c->state = SL_HTTP_LINGER;
    c->rpos = 0;
    c->rlen = 0;
    if (c->tls != NULL && !c->tls_handshake && !c->tls_quiet) {
        sl_tls_close_notify(c->tls);
        c->tls_quiet = true;
        if (sl__http_conn_tls_flush(c) != 0) {
            return;
        }
    }
    rc = uv_shutdown(&c->shutdown, (uv_stream_t *) &c->tcp, conn_on_shutdown);
    if (rc < 0) {
        sl__http_conn_close(c);
        return;
    }
    sl__http_conn_timer(c, HTTP_LINGER_MS);
    sl__http_conn_read_start(c);
}


static void
conn_on_shutdown(uv_shutdown_t *req, int status)
{
    sl_http_conn_t *c = req->handle->data;

    if (status < 0 && !c->closing) {
        sl__http_conn_close(c);
    }
}


/*
 * Starts closing the connection. A handler that holds the request sees
 * r->aborted now and on_abort from the close callback, never from inside
 * one of its own sl_http_* calls.
 */
void
sl__http_conn_close(sl_http_conn_t *c)
{
    sl_http_server_t *srv = c->srv;

    if (c->closing) {
        return;
    }
    if (c->tls != NULL && !c->tls_handshake && !c->tls_quiet && c->queued == 0) {
        /* best effort: tell the client the stream ends here and not by truncation */
        sl_buf_t *out = sl_tls_output(c->tls);
        uv_buf_t buf;

        sl_buf_clear(out);
        sl_tls_close_notify(c->tls);
        c->tls_quiet = true;
        buf = uv_buf_init(out->p, (unsigned) out->len);
        (void) uv_try_write((uv_stream_t *) &c->tcp, &buf, 1);
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
        sl__http_conn_free(c);
    }
}


void
sl__http_conn_free(sl_http_conn_t *c)
{
    sl_tls_destroy(c->tls);
    free(c->own);
    sl_pool_destroy(c->pool);
    sl_buf_free(&c->body);
    sl_buf_free(&c->held);
    free(c);
}
