/*
 * The upstream HTTP/1.1 client. One sl_upstream_t per worker holds one pool
 * per provider (same index as conf->providers). A pool owns its connections:
 * idle ones (LIFO, a read kept started so a peer close is noticed at once)
 * and busy ones (resolving, connecting, TLS handshaking or carrying a call),
 * plus a FIFO of calls waiting for a free slot when max_connections are busy.
 *
 * A call is one malloc: the struct, its timer and the serialized request
 * behind it. The timer carries every deadline of the call (the nearest of
 * the phase deadline and total_timeout); the idle deadline is lazy: reads
 * only record their time and the timer re-arms itself when it fires early
 * (nginx does the same with its timer tree). on_done always runs on the
 * next loop turn, from the client's idle handle (u->done), so it never
 * nests inside connection code or inside sl_upstream_send.
 *
 * Memory: a connection is freed when its two handles (socket, keep-alive
 * timer) closed; a call when its timer closed; the client itself once the
 * last connection and call, and its done handle, are gone after
 * sl_upstream_destroy.
 *
 * This file holds the public API, the request's serialization and a call's
 * life; upstream_conn.c the connections (see upstream_internal.h).
 */
#include "core/http/upstream.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/http/tls.h"
#include "core/http/upstream_internal.h"

#define UPSTREAM_SPARE_CALL 16384 /* largest call block (struct and request) a worker keeps */

static size_t upstream_request_size(const sl_provider_conf_t *p, const sl_upstream_req_t *req,
                                    bool *with_length);
static bool upstream_header_skip(const sl_http_header_t *h);
static bool upstream_provider_sets(const sl_provider_conf_t *p, sl_str_t name);
static bool upstream_bad_chars(const char *s, size_t len);
static char *upstream_put(char *d, const char *s, size_t len);
static void upstream_serialize(sl_upstream_call_t *uc, const sl_provider_conf_t *p,
                               const sl_upstream_req_t *req, bool with_length);
static void upstream_free(sl_upstream_t *u);

static void call_on_timer(uv_timer_t *timer);
static void call_on_timer_run(uv_timer_t *timer);
static void call_timeout(sl_upstream_call_t *uc, const char *which, uint64_t ms);
static void call_close(sl_upstream_call_t *uc);
static void call_on_close(uv_handle_t *handle);
static void upstream_on_done(uv_idle_t *idle);
static void upstream_on_idle_close(uv_handle_t *handle);


sl_upstream_t *
sl_upstream_create(uv_loop_t *loop, const sl_conf_t *conf)
{
    sl_upstream_t *u;
    upstream_pool_t *pool;
    const sl_provider_conf_t *p;
    sl_tls_conf_t *tls;

    u = sl_xcalloc(1, sizeof(*u));
    u->loop = loop;
    u->conf = conf;
    TAILQ_INIT(&u->calls);
    TAILQ_INIT(&u->done);
    u->npools = conf->nproviders;
    u->pools = sl_xcalloc(u->npools > 0 ? u->npools : 1, sizeof(upstream_pool_t));
    u->tls = sl_xcalloc(u->npools > 0 ? u->npools : 1, sizeof(sl_tls_conf_t *));

    for (size_t i = 0; i < u->npools; i++) {
        pool = &u->pools[i];
        p = &conf->providers[i];
        pool->u = u;
        pool->p = p;
        TAILQ_INIT(&pool->idle);
        TAILQ_INIT(&pool->busy);
        TAILQ_INIT(&pool->waiting);

        if (inet_pton(AF_INET, p->host, &pool->addrs[0].sin.sin_addr) == 1) {
            pool->addrs[0].sin.sin_family = AF_INET;
            pool->naddrs = 1;
            pool->dns_expires = UINT64_MAX;
        } else if (inet_pton(AF_INET6, p->host, &pool->addrs[0].sin6.sin6_addr) == 1) {
            pool->addrs[0].sin6.sin6_family = AF_INET6;
            pool->naddrs = 1;
            pool->dns_expires = UINT64_MAX;
        }

        if (!p->tls) {
            continue;
        }
        /* providers that trust the same CAs share one configuration (and one parsed bundle) */
        for (size_t j = 0; j < i; j++) {
            const sl_provider_conf_t *q = &conf->providers[j];

            if (q->tls && q->tls_verify == p->tls_verify
                && ((q->ca_file == NULL && p->ca_file == NULL)
                    || (q->ca_file != NULL && p->ca_file != NULL
                        && strcmp(q->ca_file, p->ca_file) == 0))) {
                pool->tls = u->pools[j].tls;
                break;
            }
        }
        if (pool->tls != NULL) {
            continue;
        }
        tls = sl_tls_conf_client(p->ca_file, p->tls_verify);
        if (tls == NULL) {
            sl_log(&sl_log_main, SL_LOG_ERR, 0, "cannot set up TLS for upstream \"%s\"", p->name);
            goto out_free;
        }
        u->tls[u->ntls++] = tls;
        pool->tls = tls;
    }
    uv_idle_init(loop, &u->done_idle);
    u->done_idle.data = u;
    u->refs++; /* until done_idle closed */
    return u;

out_free:
    upstream_free(u);
    return NULL;
}


void
sl_upstream_destroy(sl_upstream_t *u)
{
    upstream_pool_t *pool;
    sl_upstream_call_t *uc;

    if (u == NULL || u->destroyed) {
        return;
    }
    u->destroyed = true;
    while (!TAILQ_EMPTY(&u->calls)) {
        uc = TAILQ_FIRST(&u->calls);
        sl_upstream_cancel(uc);
    }
    SL_ASSERT(TAILQ_EMPTY(&u->done));
    uv_close((uv_handle_t *) &u->done_idle, upstream_on_idle_close);
    for (size_t i = 0; i < u->npools; i++) {
        pool = &u->pools[i];
        while (!TAILQ_EMPTY(&pool->idle)) {
            sl__upstream_conn_close(TAILQ_FIRST(&pool->idle));
        }
        while (!TAILQ_EMPTY(&pool->busy)) {
            sl__upstream_conn_close(TAILQ_FIRST(&pool->busy));
        }
    }
    if (u->refs == 0) {
        upstream_free(u);
    }
}


int
sl_upstream_send(sl_upstream_t *u, const sl_provider_conf_t *p, const sl_upstream_req_t *req,
                 const sl_upstream_cbs_t *cbs, void *data, const sl_log_t *log,
                 sl_upstream_call_t **out)
{
    sl_upstream_call_t *uc;
    upstream_pool_t *pool;
    size_t idx, len;
    bool with_length;

    /* compared as integers: p may point anywhere */
    idx = (size_t) ((uintptr_t) p - (uintptr_t) u->conf->providers) / sizeof(*p);
    if (u->destroyed || idx >= u->npools || &u->conf->providers[idx] != p) {
        return UV_EINVAL;
    }
    pool = &u->pools[idx];
    if (req->method == NULL || req->path == NULL
        || upstream_bad_chars(req->method, strlen(req->method))
        || upstream_bad_chars(req->path, strlen(req->path)) || req->path[0] == '\0') {
        sl_log(log != NULL ? log : &sl_log_main, SL_LOG_ERR, 0,
               "invalid request line for upstream \"%s\"", p->name);
        return UV_EINVAL;
    }

    len = upstream_request_size(p, req, &with_length);
    uc = NULL;
    for (unsigned i = u->nspare_calls; i-- > 0;) {
        if (u->spare_call_size[i] >= sizeof(*uc) + len) {
            size_t size = u->spare_call_size[i];

            uc = u->spare_call[i];
            u->nspare_calls--;
            u->spare_call[i] = u->spare_call[u->nspare_calls];
            u->spare_call_size[i] = u->spare_call_size[u->nspare_calls];
            memset(uc, 0, sizeof(*uc));
            uc->alloc_size = size;
            break;
        }
    }
    if (uc == NULL) {
        uc = sl_xmalloc(sizeof(*uc) + len);
        memset(uc, 0, sizeof(*uc));
        uc->alloc_size = sizeof(*uc) + len;
    }
    uc->u = u;
    uc->pool = pool;
    uc->cbs = *cbs;
    uc->data = data;
    uc->log = log != NULL ? *log : sl_log_main;
    uc->head = strcmp(req->method, "HEAD") == 0;
    upstream_serialize(uc, p, req, with_length);

    uv_timer_init(u->loop, &uc->timer);
    uc->timer.data = uc;
    TAILQ_INSERT_TAIL(&u->calls, uc, link);
    u->refs++;

    uc->timing.start = sl_clock_ns();
    uc->start = uv_now(u->loop);
    uc->phase = UPSTREAM_PHASE_CONNECT;
    uc->phase_start = uc->start;
    sl__upstream_call_acquire(uc, false);
    *out = uc;
    return 0;
}


void
sl_upstream_cancel(sl_upstream_call_t *uc)
{
    upstream_conn_t *c;

    if (uc == NULL || uc->phase == UPSTREAM_PHASE_CLOSED) {
        return;
    }
    if (uc->waiting) {
        TAILQ_REMOVE(&uc->pool->waiting, uc, wait_link);
        uc->waiting = false;
    }
    c = uc->conn;
    if (c != NULL) {
        c->call = NULL;
        uc->conn = NULL;
        sl__upstream_conn_close(c);
        sl__upstream_pool_dispatch(uc->pool);
    }
    call_close(uc);
}


void
sl_upstream_pause(sl_upstream_call_t *uc)
{
    if (uc->paused || uc->phase >= UPSTREAM_PHASE_DONE) {
        return;
    }
    uc->paused = true;
    if (uc->conn != NULL && uc->conn->state == UPSTREAM_CONN_ACTIVE) {
        sl__upstream_conn_read_stop(uc->conn);
    }
}


void
sl_upstream_resume(sl_upstream_call_t *uc)
{
    upstream_conn_t *c = uc->conn;

    if (!uc->paused || uc->phase >= UPSTREAM_PHASE_DONE) {
        return;
    }
    uc->paused = false;
    if (c != NULL && c->state == UPSTREAM_CONN_ACTIVE) {
        c->last_read = uv_now(uc->u->loop);
        sl__upstream_conn_read_start(c);
    }
    sl__upstream_call_arm(uc);
}


const sl_upstream_timing_t *
sl_upstream_timing(const sl_upstream_call_t *uc)
{
    return &uc->timing;
}


/* Bytes the serialized request takes; sets *with_length when a Content-Length goes out. */
static size_t
upstream_request_size(const sl_provider_conf_t *p, const sl_upstream_req_t *req, bool *with_length)
{
    size_t len;
    const char *m = req->method;

    len = strlen(m) + 1 + strlen(req->path) + sizeof(" HTTP/1.1\r\nHost: ") - 1
          + strlen(p->host_header) + 2;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!upstream_header_skip(&req->headers[i])
            && !upstream_provider_sets(p, req->headers[i].name)) {
            len += req->headers[i].name.len + 2 + req->headers[i].value.len + 2;
        }
    }
    for (size_t i = 0; i < p->nheaders; i++) {
        len += strlen(p->headers[i].name) + 2 + strlen(p->headers[i].value) + 2;
    }
    *with_length = req->body_len > 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0
                   || strcmp(m, "PATCH") == 0;
    if (*with_length) {
        len += sizeof("Content-Length: 18446744073709551615\r\n") - 1;
    }
    return len + 2 + (req->body_kept ? 0 : req->body_len);
}


/*
 * Headers the client owns (framing) or that would break the request line
 * structure are dropped: a CR or LF in a name or value could smuggle a
 * second request to the upstream.
 */
static bool
upstream_header_skip(const sl_http_header_t *h)
{
    return h->name.len == 0 || sl_str_caseeq_lit(h->name, "host")
           || sl_str_caseeq_lit(h->name, "content-length")
           || sl_str_caseeq_lit(h->name, "connection")
           || sl_str_caseeq_lit(h->name, "transfer-encoding")
           || upstream_bad_chars(h->name.p, h->name.len)
           || (h->value.len > 0
               && (memchr(h->value.p, '\r', h->value.len) != NULL
                   || memchr(h->value.p, '\n', h->value.len) != NULL));
}


/* True when the provider's `headers:` set name: its value replaces the request's. */
static bool
upstream_provider_sets(const sl_provider_conf_t *p, sl_str_t name)
{
    for (size_t i = 0; i < p->nheaders; i++) {
        if (sl_str_caseeq(name, p->headers[i].name)) {
            return true;
        }
    }
    return false;
}


static bool
upstream_bad_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == ' ' || s[i] == '\0') {
            return true;
        }
    }
    return false;
}


static char *
upstream_put(char *d, const char *s, size_t len)
{
    if (len == 0) {
        return d;
    }
    memcpy(d, s, len);
    return d + len;
}


static void
upstream_serialize(sl_upstream_call_t *uc, const sl_provider_conf_t *p,
                   const sl_upstream_req_t *req, bool with_length)
{
    char *d = uc->req;
    const sl_http_header_t *h;

    d = upstream_put(d, req->method, strlen(req->method));
    *d++ = ' ';
    d = upstream_put(d, req->path, strlen(req->path));
    d = upstream_put(d, " HTTP/1.1\r\nHost: ", sizeof(" HTTP/1.1\r\nHost: ") - 1);
    d = upstream_put(d, p->host_header, strlen(p->host_header));
    d = upstream_put(d, "\r\n", 2);
    for (size_t i = 0; i < req->nheaders; i++) {
        h = &req->headers[i];
        if (upstream_header_skip(h) || upstream_provider_sets(p, h->name)) {
            continue;
        }
        d = upstream_put(d, h->name.p, h->name.len);
        d = upstream_put(d, ": ", 2);
        d = upstream_put(d, h->value.p, h->value.len);
        d = upstream_put(d, "\r\n", 2);
    }
    for (size_t i = 0; i < p->nheaders; i++) {
        d = upstream_put(d, p->headers[i].name, strlen(p->headers[i].name));
        d = upstream_put(d, ": ", 2);
        d = upstream_put(d, p->headers[i].value, strlen(p->headers[i].value));
        d = upstream_put(d, "\r\n", 2);
    }
    if (with_length) {
        /* room for the longest number was counted */
        char digits[20];
        size_t v = req->body_len, k = 0;

        d = upstream_put(d, "Content-Length: ", sizeof("Content-Length: ") - 1);
        do {
            digits[k++] = (char) ('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (k > 0) {
            *d++ = digits[--k];
        }
        d = upstream_put(d, "\r\n", 2);
    }
    d = upstream_put(d, "\r\n", 2);
    if (req->body_len > 0 && req->body_kept) {
        uc->body = req->body;
        uc->body_len = req->body_len;
    } else if (req->body_len > 0) {
        d = upstream_put(d, req->body, req->body_len);
    }
    uc->req_len = (size_t) (d - uc->req);
}


void
sl__upstream_unref(sl_upstream_t *u)
{
    if (--u->refs == 0 && u->destroyed) {
        upstream_free(u);
    }
}


static void
upstream_free(sl_upstream_t *u)
{
    for (size_t i = 0; i < u->npools; i++) {
        sl_tls_session_free(u->pools[i].session);
    }
    for (size_t i = 0; i < u->ntls; i++) {
        sl_tls_conf_destroy(u->tls[i]);
    }
    free(u->tls);
    free(u->pools);
    sl_buf_free(&u->spare_hbuf);
    for (unsigned i = 0; i < u->nspare_calls; i++) {
        free(u->spare_call[i]);
    }
    free(u->spare_hidx);
    free(u->spare_hdrs);
    free(u);
}


void
sl__upstream_call_set_phase(sl_upstream_call_t *uc, upstream_phase_e phase)
{
    /* the wait for a slot and the connection set-up share connect_timeout */
    if (!(uc->phase == UPSTREAM_PHASE_WAIT && phase == UPSTREAM_PHASE_CONNECT)) {
        uc->phase_start = uv_now(uc->u->loop);
    }
    uc->phase = phase;
    sl__upstream_call_arm(uc);
}


/*
 * Arms the call's timer for the nearest of its deadlines. A call moves
 * through several phases, each re-arming: the libuv timer is restarted only
 * when the deadline comes before the one it is armed for (call_on_timer
 * checks what really expired and arms again for the rest), and a call with
 * no deadline left keeps a timer armed for an earlier one, which then finds
 * nothing expired. Before the response starts, the timer is armed no later
 * than idle_timeout from now: the read phase's deadline, idle_timeout after
 * it starts, then never comes before it, so a call arms its timer once
 * (first_byte_timeout is usually the longer one: it would fire early only
 * for an answer slower than idle_timeout to start).
 */
void
sl__upstream_call_arm(sl_upstream_call_t *uc)
{
    const sl_provider_conf_t *p = uc->pool->p;
    uint64_t now = uv_now(uc->u->loop);
    uint64_t deadline = UINT64_MAX, phase_ms = 0, from = uc->phase_start;

    switch (uc->phase) {
    case UPSTREAM_PHASE_WAIT:
    case UPSTREAM_PHASE_CONNECT:
        phase_ms = p->connect_timeout;
        break;
    case UPSTREAM_PHASE_SEND:
    case UPSTREAM_PHASE_FIRST_BYTE:
        phase_ms = uc->paused ? 0 : p->first_byte_timeout;
        break;
    case UPSTREAM_PHASE_READ:
        phase_ms = uc->paused ? 0 : p->idle_timeout;
        if (uc->conn != NULL && uc->conn->last_read > from) {
            from = uc->conn->last_read;
        }
        break;
    default:
        return;
    }
    if (phase_ms != 0) {
        deadline = from + phase_ms;
    }
    if (p->total_timeout != 0 && uc->start + p->total_timeout < deadline) {
        deadline = uc->start + p->total_timeout;
    }
    if (deadline == UINT64_MAX || (uc->timer_armed && uc->timer_due <= deadline)) {
        return;
    }
    if (uc->phase < UPSTREAM_PHASE_READ && p->idle_timeout != 0
        && now + p->idle_timeout < deadline) {
        deadline = now + p->idle_timeout;
    }
    uv_timer_start(&uc->timer, call_on_timer, deadline > now ? deadline - now : 0, 0);
    uc->timer_armed = true;
    uc->timer_due = deadline > now ? deadline : now;
}


/* The callback with the clock read once for its whole run (core/base/clock.h). */
static void
call_on_timer(uv_timer_t *timer)
{
    sl_clock_enter();
    call_on_timer_run(timer);
    sl_clock_leave();
}


static void
call_on_timer_run(uv_timer_t *timer)
{
    sl_upstream_call_t *uc = timer->data;
    const sl_provider_conf_t *p = uc->pool->p;
    uint64_t now = uv_now(uc->u->loop);
    uint64_t from = uc->phase_start;

    uc->timer_armed = false;
    if (uc->phase >= UPSTREAM_PHASE_DONE) {
        return; /* ended: on_done is due from u->done */
    }
    if (p->total_timeout != 0 && now >= uc->start + p->total_timeout) {
        call_timeout(uc, "total_timeout", p->total_timeout);
        return;
    }
    switch (uc->phase) {
    case UPSTREAM_PHASE_WAIT:
    case UPSTREAM_PHASE_CONNECT:
        if (p->connect_timeout != 0 && now >= from + p->connect_timeout) {
            call_timeout(uc, "connect_timeout", p->connect_timeout);
            return;
        }
        break;
    case UPSTREAM_PHASE_SEND:
    case UPSTREAM_PHASE_FIRST_BYTE:
        if (!uc->paused && p->first_byte_timeout != 0 && now >= from + p->first_byte_timeout) {
            call_timeout(uc, "first_byte_timeout", p->first_byte_timeout);
            return;
        }
        break;
    case UPSTREAM_PHASE_READ:
        if (uc->conn != NULL && uc->conn->last_read > from) {
            from = uc->conn->last_read;
        }
        if (!uc->paused && p->idle_timeout != 0 && now >= from + p->idle_timeout) {
            call_timeout(uc, "idle_timeout", p->idle_timeout);
            return;
        }
        break;
    default:
        return;
    }
    sl__upstream_call_arm(uc);
}


static void
call_timeout(sl_upstream_call_t *uc, const char *which, uint64_t ms)
{
    upstream_conn_t *c = uc->conn;

    if (uc->phase == UPSTREAM_PHASE_WAIT) {
        TAILQ_REMOVE(&uc->pool->waiting, uc, wait_link);
        uc->waiting = false;
        sl_log(&uc->log, SL_LOG_ERR, 0,
               "no free connection to upstream \"%s\" within %s %" PRIu64 "ms (%u busy)",
               uc->pool->p->name, which, ms, uc->pool->nbusy);
        sl__upstream_call_finish(uc, SL_EPOOL);
        return;
    }
    sl_log(&uc->log, SL_LOG_ERR, 0,
           "upstream timed out (%s %" PRIu64 "ms) while %s upstream \"%s\", address %s", which, ms,
           sl__upstream_phase_text(uc), uc->pool->p->name, c != NULL ? c->addr_text : "-");
    if (c != NULL) {
        c->call = NULL;
        uc->conn = NULL;
        sl__upstream_conn_close(c);
    }
    sl__upstream_call_finish(uc, SL_ETIMEOUT);
    sl__upstream_pool_dispatch(uc->pool);
}


/*
 * Ends the call with rc; on_done runs on the next loop turn (upstream_on_done),
 * outside any connection code. The timer is left as it is: it finds the
 * call ended if it fires first, and closes with the call.
 */
void
sl__upstream_call_finish(sl_upstream_call_t *uc, int rc)
{
    sl_upstream_t *u = uc->u;

    SL_ASSERT(uc->phase < UPSTREAM_PHASE_DONE);
    uc->rc = rc;
    uc->phase = UPSTREAM_PHASE_DONE;
    if (TAILQ_EMPTY(&u->done)) {
        uv_idle_start(&u->done_idle, upstream_on_done);
    }
    TAILQ_INSERT_TAIL(&u->done, uc, done_link);
}


/*
 * The on_done of the calls that ended before this loop turn, in the order
 * they ended: as many as were due when it started (an on_done may cancel
 * one that is due, or start an attempt that ends at once: that one waits
 * for the next turn, so I/O is not starved).
 */
static void
upstream_on_done(uv_idle_t *idle)
{
    sl_upstream_t *u = idle->data;
    sl_upstream_call_t *uc;
    size_t n = 0;

    sl_clock_enter();
    TAILQ_FOREACH(uc, &u->done, done_link)
    {
        n++;
    }
    while (n-- > 0 && !TAILQ_EMPTY(&u->done)) {
        uc = TAILQ_FIRST(&u->done);
        TAILQ_REMOVE(&u->done, uc, done_link);
        SL_ASSERT(uc->phase == UPSTREAM_PHASE_DONE);
        uc->phase = UPSTREAM_PHASE_CLOSED;
        TAILQ_REMOVE(&u->calls, uc, link);
        uc->cbs.on_done(uc, uc->rc, uc->data);
        uv_close((uv_handle_t *) &uc->timer, call_on_close);
    }
    if (TAILQ_EMPTY(&u->done)) {
        uv_idle_stop(&u->done_idle);
    }
    sl_clock_leave();
}


static void
upstream_on_idle_close(uv_handle_t *handle)
{
    sl__upstream_unref(handle->data);
}


static void
call_close(sl_upstream_call_t *uc)
{
    sl_upstream_t *u = uc->u;

    if (uc->phase != UPSTREAM_PHASE_CLOSED) {
        if (uc->phase == UPSTREAM_PHASE_DONE) {
            /* cancelled with its on_done due: it never runs */
            TAILQ_REMOVE(&u->done, uc, done_link);
            if (TAILQ_EMPTY(&u->done)) {
                uv_idle_stop(&u->done_idle);
            }
        }
        uc->phase = UPSTREAM_PHASE_CLOSED;
        TAILQ_REMOVE(&u->calls, uc, link);
        uv_close((uv_handle_t *) &uc->timer, call_on_close);
    }
}


static void
call_on_close(uv_handle_t *handle)
{
    sl_upstream_call_t *uc = handle->data;
    sl_upstream_t *u = uc->u;

    /* kept for the next call when small (upstream_free frees it) */
    if (u->nspare_calls < UPSTREAM_SPARE_CALLS && uc->alloc_size <= UPSTREAM_SPARE_CALL) {
        u->spare_call[u->nspare_calls] = uc;
        u->spare_call_size[u->nspare_calls] = uc->alloc_size;
        u->nspare_calls++;
    } else {
        free(uc);
    }
    sl__upstream_unref(u);
}


const char *
sl__upstream_phase_text(const sl_upstream_call_t *uc)
{
    switch (uc->phase) {
    case UPSTREAM_PHASE_WAIT:
        return "waiting for a connection to";
    case UPSTREAM_PHASE_CONNECT:
        return "connecting to";
    case UPSTREAM_PHASE_SEND:
        return "sending request to";
    case UPSTREAM_PHASE_FIRST_BYTE:
        return "reading response header from";
    default:
        return "reading response from";
    }
}
