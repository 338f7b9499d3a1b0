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
 * (nginx does the same with its timer tree). on_done always runs from that
 * timer, armed at zero, so it never nests inside connection code or inside
 * sl_upstream_send.
 *
 * Memory: a connection is freed when its two handles (socket, keep-alive
 * timer) closed; a call when its timer closed; the client itself once the
 * last connection and call are gone after sl_upstream_destroy.
 */
#include "core/http/upstream.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <llhttp.h>

#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/http/tls.h"

#define UPSTREAM_MAX_ADDRS   8
#define UPSTREAM_RBUF_SIZE   (32 * 1024)
#define UPSTREAM_MAX_HEADER  (64 * 1024) /* status line excluded; all header bytes */
#define UPSTREAM_MAX_HEADERS 256
#define UPSTREAM_DNS_TTL     30000 /* ms, positive answers */
#define UPSTREAM_DNS_NEG_TTL 5000  /* ms, failures */
#define UPSTREAM_ADDR_TEXT   (INET6_ADDRSTRLEN + 8)

typedef struct upstream_pool upstream_pool_t;
typedef struct upstream_conn upstream_conn_t;

typedef enum upstream_state {
    UPSTREAM_CONN_RESOLVING = 0,
    UPSTREAM_CONN_CONNECTING,
    UPSTREAM_CONN_HANDSHAKE,
    UPSTREAM_CONN_ACTIVE,
    UPSTREAM_CONN_IDLE,
    UPSTREAM_CONN_CLOSING,
} upstream_state_e;

typedef enum upstream_phase {
    UPSTREAM_PHASE_WAIT = 0,   /* queued for a slot: connect_timeout, then SL_EPOOL */
    UPSTREAM_PHASE_CONNECT,    /* resolve + connect + handshake: connect_timeout */
    UPSTREAM_PHASE_SEND,       /* writing the request: first_byte_timeout */
    UPSTREAM_PHASE_FIRST_BYTE, /* request written: first_byte_timeout */
    UPSTREAM_PHASE_READ,       /* response started: idle_timeout between reads */
    UPSTREAM_PHASE_DONE,       /* on_done pending on the zero timer */
    UPSTREAM_PHASE_CLOSED,     /* on_done ran or the call was cancelled */
} upstream_phase_e;

typedef union upstream_addr {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
} upstream_addr_t;

/* Offsets of one header in the connection's header buffer. */
typedef struct upstream_hidx {
    uint32_t name;
    uint32_t name_len;
    uint32_t value;
    uint32_t value_len;
} upstream_hidx_t;

struct sl_upstream {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    upstream_pool_t *pools;
    size_t npools;
    sl_tls_conf_t **tls; /* distinct client configurations, owned */
    size_t ntls;
    TAILQ_HEAD(, sl_upstream_call) calls; /* every call not yet closed */
    size_t refs;                          /* live connections and calls */
    bool destroyed;
    /*
     * Every read is parsed before its callback returns, so the connections
     * of a worker share one buffer for what the socket gives and one for
     * TLS plaintext instead of holding 32 KiB (and 16 KiB) each.
     */
    char rbuf[UPSTREAM_RBUF_SIZE];
    char pbuf[UPSTREAM_RBUF_SIZE];
};

struct upstream_pool {
    sl_upstream_t *u;
    const sl_provider_conf_t *p;
    sl_tls_conf_t *tls;               /* NULL for plain http */
    TAILQ_HEAD(, upstream_conn) idle; /* most recently used first */
    TAILQ_HEAD(, upstream_conn) busy;
    TAILQ_HEAD(, sl_upstream_call) waiting;
    unsigned nidle;
    unsigned nbusy;
    upstream_addr_t addrs[UPSTREAM_MAX_ADDRS]; /* DNS cache, port not set */
    unsigned naddrs;
    int dns_rc;
    uint64_t dns_expires; /* loop ms; UINT64_MAX for a literal address */
};

struct upstream_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* keepalive_timeout while idle */
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_getaddrinfo_t *dns; /* lookup in flight, or NULL */
    upstream_pool_t *pool;
    sl_upstream_call_t *call;
    TAILQ_ENTRY(upstream_conn) link;
    upstream_state_e state;
    unsigned handles; /* open libuv handles */
    upstream_addr_t addrs[UPSTREAM_MAX_ADDRS];
    unsigned naddrs;
    unsigned addr;
    char addr_text[UPSTREAM_ADDR_TEXT];
    sl_tls_t *tls;
    llhttp_t parser;
    sl_buf_t wbuf; /* TLS ciphertext being written */
    sl_buf_t hbuf; /* header names and values of the current response */
    upstream_hidx_t *hidx;
    sl_http_header_t *hdrs;
    unsigned nh;
    unsigned hcap;
    uint64_t last_read; /* loop ms */
    bool reading;
    bool writing;
    bool req_pending; /* the request is not fully written yet */
    bool reconnect;   /* tcp closes to be reopened to the next address */
    bool reused;      /* came from the idle list for the current call */
    bool in_value;
    bool complete;
    bool keepalive;
};

struct sl_upstream_call {
    uv_timer_t timer;
    sl_upstream_t *u;
    upstream_pool_t *pool;
    upstream_conn_t *conn;
    TAILQ_ENTRY(sl_upstream_call) link;      /* u->calls */
    TAILQ_ENTRY(sl_upstream_call) wait_link; /* pool->waiting */
    sl_upstream_cbs_t cbs;
    void *data;
    sl_log_t log;
    sl_upstream_timing_t timing;
    upstream_phase_e phase;
    uint64_t phase_start; /* loop ms */
    uint64_t start;       /* loop ms */
    int rc;
    bool head;
    bool waiting;
    bool retried;
    bool paused;
    bool got_byte;
    size_t req_len;
    char req[]; /* the serialized request */
};

static size_t upstream_request_size(const sl_provider_conf_t *p, const sl_upstream_req_t *req,
                                    bool *with_length);
static bool upstream_header_skip(const sl_http_header_t *h);
static bool upstream_provider_sets(const sl_provider_conf_t *p, sl_str_t name);
static bool upstream_bad_chars(const char *s, size_t len);
static char *upstream_put(char *d, const char *s, size_t len);
static void upstream_serialize(sl_upstream_call_t *uc, const sl_provider_conf_t *p,
                               const sl_upstream_req_t *req, bool with_length);
static void upstream_unref(sl_upstream_t *u);
static void upstream_free(sl_upstream_t *u);

static void pool_dispatch(upstream_pool_t *pool);
static void pool_dns_set(upstream_pool_t *pool, const struct addrinfo *res, int rc);

static void call_acquire(sl_upstream_call_t *uc, bool fresh);
static void call_set_phase(sl_upstream_call_t *uc, upstream_phase_e phase);
static void call_arm(sl_upstream_call_t *uc);
static void call_on_timer(uv_timer_t *timer);
static void call_timeout(sl_upstream_call_t *uc, const char *which, uint64_t ms);
static void call_finish(sl_upstream_call_t *uc, int rc);
static void call_close(sl_upstream_call_t *uc);
static void call_on_close(uv_handle_t *handle);

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
static void conn_request_sent(upstream_conn_t *c);
static void conn_read_start(upstream_conn_t *c);
static void conn_read_stop(upstream_conn_t *c);
static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_parse(upstream_conn_t *c, const char *p, size_t len);
static void conn_eof(upstream_conn_t *c, int err);
static void conn_complete(upstream_conn_t *c);
static void conn_fail(upstream_conn_t *c, int rc);
static void conn_release(upstream_conn_t *c);
static void conn_on_keepalive(uv_timer_t *timer);
static void conn_close(upstream_conn_t *c);
static void conn_on_close(uv_handle_t *handle);
static void conn_free(upstream_conn_t *c);
static const char *conn_phase_text(const sl_upstream_call_t *uc);
static const char *upstream_strerror(int err);

static int http_on_message_begin(llhttp_t *parser);
static int http_on_header_field(llhttp_t *parser, const char *at, size_t len);
static int http_on_header_value(llhttp_t *parser, const char *at, size_t len);
static int http_on_headers_complete(llhttp_t *parser);
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
    for (size_t i = 0; i < u->npools; i++) {
        pool = &u->pools[i];
        while (!TAILQ_EMPTY(&pool->idle)) {
            conn_close(TAILQ_FIRST(&pool->idle));
        }
        while (!TAILQ_EMPTY(&pool->busy)) {
            conn_close(TAILQ_FIRST(&pool->busy));
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
    uc = sl_xmalloc(sizeof(*uc) + len);
    memset(uc, 0, sizeof(*uc));
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

    uc->timing.start = uv_hrtime();
    uc->start = uv_now(u->loop);
    uc->phase = UPSTREAM_PHASE_CONNECT;
    uc->phase_start = uc->start;
    call_acquire(uc, false);
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
        conn_close(c);
        pool_dispatch(uc->pool);
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
        conn_read_stop(uc->conn);
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
        conn_read_start(c);
    }
    call_arm(uc);
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
    return len + 2 + req->body_len;
}


/*
 * Headers the client owns (framing) or that would break the request line
 * structure are dropped: a CR or LF in a name or value could smuggle a
 * second request to the upstream.
 */
static bool
upstream_header_skip(const sl_http_header_t *h)
{
    return h->name.len == 0 || sl_str_caseeq(h->name, "host")
           || sl_str_caseeq(h->name, "content-length") || sl_str_caseeq(h->name, "connection")
           || sl_str_caseeq(h->name, "transfer-encoding")
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
    int n;

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
        /* room for the longest number was counted; the terminating NUL lands in the slack */
        n = snprintf(d, sizeof("Content-Length: 18446744073709551615\r\n"),
                     "Content-Length: %zu\r\n", req->body_len);
        d += n;
    }
    d = upstream_put(d, "\r\n", 2);
    if (req->body_len > 0) {
        d = upstream_put(d, req->body, req->body_len);
    }
    uc->req_len = (size_t) (d - uc->req);
}


static void
upstream_unref(sl_upstream_t *u)
{
    if (--u->refs == 0 && u->destroyed) {
        upstream_free(u);
    }
}


static void
upstream_free(sl_upstream_t *u)
{
    for (size_t i = 0; i < u->ntls; i++) {
        sl_tls_conf_destroy(u->tls[i]);
    }
    free(u->tls);
    free(u->pools);
    free(u);
}


/* Gives free slots and idle connections to the calls queued for them, oldest first. */
static void
pool_dispatch(upstream_pool_t *pool)
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
        call_set_phase(uc, UPSTREAM_PHASE_CONNECT);
        call_acquire(uc, false);
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
static void
call_acquire(sl_upstream_call_t *uc, bool fresh)
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
        uv_timer_stop(&c->timer);
        c->reused = true;
        uc->timing.reused = true;
        uc->timing.connected = uv_hrtime();
        conn_attach(c, uc);
        conn_send(c);
        return;
    }
    if (max == 0 || pool->nbusy < max || fresh) {
        c = conn_create(pool);
        c->reused = false;
        uc->timing.reused = false;
        conn_attach(c, uc);
        call_arm(uc);
        conn_open(c);
        return;
    }
    uc->waiting = true;
    TAILQ_INSERT_TAIL(&pool->waiting, uc, wait_link);
    uc->phase = UPSTREAM_PHASE_WAIT;
    call_arm(uc);
}


static void
call_set_phase(sl_upstream_call_t *uc, upstream_phase_e phase)
{
    /* the wait for a slot and the connection set-up share connect_timeout */
    if (!(uc->phase == UPSTREAM_PHASE_WAIT && phase == UPSTREAM_PHASE_CONNECT)) {
        uc->phase_start = uv_now(uc->u->loop);
    }
    uc->phase = phase;
    call_arm(uc);
}


/* Arms the call's timer for the nearest of its deadlines. */
static void
call_arm(sl_upstream_call_t *uc)
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
    if (deadline == UINT64_MAX) {
        uv_timer_stop(&uc->timer);
        return;
    }
    uv_timer_start(&uc->timer, call_on_timer, deadline > now ? deadline - now : 0, 0);
}


static void
call_on_timer(uv_timer_t *timer)
{
    sl_upstream_call_t *uc = timer->data;
    const sl_provider_conf_t *p = uc->pool->p;
    uint64_t now = uv_now(uc->u->loop);
    uint64_t from = uc->phase_start;

    if (uc->phase == UPSTREAM_PHASE_DONE) {
        uc->phase = UPSTREAM_PHASE_CLOSED;
        TAILQ_REMOVE(&uc->u->calls, uc, link);
        uc->cbs.on_done(uc, uc->rc, uc->data);
        uv_close((uv_handle_t *) &uc->timer, call_on_close);
        return;
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
    call_arm(uc);
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
        call_finish(uc, SL_EPOOL);
        return;
    }
    sl_log(&uc->log, SL_LOG_ERR, 0,
           "upstream timed out (%s %" PRIu64 "ms) while %s upstream \"%s\", address %s", which, ms,
           conn_phase_text(uc), uc->pool->p->name, c != NULL ? c->addr_text : "-");
    if (c != NULL) {
        c->call = NULL;
        uc->conn = NULL;
        conn_close(c);
    }
    call_finish(uc, SL_ETIMEOUT);
    pool_dispatch(uc->pool);
}


/* Ends the call with rc; on_done runs from the zero timer, outside any connection code. */
static void
call_finish(sl_upstream_call_t *uc, int rc)
{
    uc->rc = rc;
    uc->phase = UPSTREAM_PHASE_DONE;
    uv_timer_start(&uc->timer, call_on_timer, 0, 0);
}


static void
call_close(sl_upstream_call_t *uc)
{
    if (uc->phase != UPSTREAM_PHASE_CLOSED) {
        uc->phase = UPSTREAM_PHASE_CLOSED;
        TAILQ_REMOVE(&uc->u->calls, uc, link);
        uv_close((uv_handle_t *) &uc->timer, call_on_close);
    }
}


static void
call_on_close(uv_handle_t *handle)
{
    sl_upstream_call_t *uc = handle->data;
    sl_upstream_t *u = uc->u;

    free(uc);
    upstream_unref(u);
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
    conn_read_start(c);
    if (c->pool->tls == NULL) {
        uc->timing.connected = uv_hrtime();
        conn_send(c);
        return;
    }
    c->tls = sl_tls_create(c->pool->tls, c->pool->p->host);
    if (c->tls == NULL) {
        conn_fail(c, SL_ETLS);
        return;
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
        conn_fail(c, rc);
        return;
    }
    uc->timing.connected = uv_hrtime();
    conn_send(c);
}


/* Starts writing the attached call's request (plain: straight from the call's memory). */
static void
conn_send(upstream_conn_t *c)
{
    sl_upstream_call_t *uc = c->call;
    uv_buf_t b;
    int n, rc;

    c->state = UPSTREAM_CONN_ACTIVE;
    c->complete = false;
    c->keepalive = false;
    c->req_pending = true;
    c->last_read = 0;
    llhttp_reset(&c->parser);
    if (uc->paused) {
        conn_read_stop(c);
    } else {
        conn_read_start(c);
    }
    call_set_phase(uc, UPSTREAM_PHASE_SEND);

    if (c->tls != NULL) {
        rc = sl_tls_write(c->tls, uc->req, uc->req_len);
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

    b = uv_buf_init(uc->req, (unsigned) uc->req_len);
    n = uv_try_write((uv_stream_t *) &c->tcp, &b, 1);
    if (n == (int) uc->req_len) {
        conn_request_sent(c);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        conn_eof(c, n);
        return;
    }
    if (n > 0) {
        b = uv_buf_init(uc->req + n, (unsigned) (uc->req_len - (size_t) n));
    }
    rc = uv_write(&c->write_req, (uv_stream_t *) &c->tcp, &b, 1, conn_on_write);
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


static void
conn_on_write(uv_write_t *req, int status)
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
    uc->timing.sent = uv_hrtime();
    if (uc->phase == UPSTREAM_PHASE_SEND) {
        call_set_phase(uc, UPSTREAM_PHASE_FIRST_BYTE);
    }
}


static void
conn_read_start(upstream_conn_t *c)
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


static void
conn_read_stop(upstream_conn_t *c)
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


static void
conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
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
        conn_close(c);
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
            conn_close(c);
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
        conn_close(c);
        return;
    }
    if (!uc->got_byte) {
        uc->got_byte = true;
        uc->timing.first_byte = uv_hrtime();
        c->last_read = uv_now(uc->u->loop);
        call_set_phase(uc, UPSTREAM_PHASE_READ);
    } else {
        c->last_read = uv_now(uc->u->loop);
    }

    err = llhttp_execute(&c->parser, p, len);
    if (c->call != uc) {
        /* cancelled from on_headers or on_body */
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
           conn_phase_text(uc));
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
        conn_close(c);
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
        conn_close(c);
        uc->retried = true;
        call_set_phase(uc, UPSTREAM_PHASE_CONNECT);
        call_acquire(uc, true);
        pool_dispatch(pool);
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
               pool->p->name, c->addr_text, conn_phase_text(uc));
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
        conn_close(c);
        pool_dispatch(c->pool);
    }
    call_finish(uc, 0);
}


static void
conn_fail(upstream_conn_t *c, int rc)
{
    sl_upstream_call_t *uc = c->call;

    c->call = NULL;
    if (uc != NULL) {
        uc->conn = NULL;
    }
    conn_close(c);
    if (uc != NULL) {
        call_finish(uc, rc);
    }
    pool_dispatch(c->pool);
}


/* Hands a reusable connection to the oldest waiting call, or keeps it idle. */
static void
conn_release(upstream_conn_t *c)
{
    upstream_pool_t *pool = c->pool;
    const sl_provider_conf_t *p = pool->p;
    sl_upstream_call_t *uc;

    if (pool->u->destroyed || p->keepalive_timeout == 0) {
        conn_close(c);
        return;
    }
    if (!TAILQ_EMPTY(&pool->waiting)) {
        uc = TAILQ_FIRST(&pool->waiting);
        TAILQ_REMOVE(&pool->waiting, uc, wait_link);
        uc->waiting = false;
        uc->phase = UPSTREAM_PHASE_CONNECT;
        c->reused = true;
        uc->timing.reused = true;
        uc->timing.connected = uv_hrtime();
        conn_attach(c, uc);
        conn_send(c);
        return;
    }
    if (pool->nidle >= p->max_idle) {
        conn_close(c);
        return;
    }
    TAILQ_REMOVE(&pool->busy, c, link);
    pool->nbusy--;
    TAILQ_INSERT_HEAD(&pool->idle, c, link);
    pool->nidle++;
    c->state = UPSTREAM_CONN_IDLE;
    conn_read_start(c);
    uv_timer_start(&c->timer, conn_on_keepalive, p->keepalive_timeout, 0);
}


static void
conn_on_keepalive(uv_timer_t *timer)
{
    upstream_conn_t *c = timer->data;

    conn_close(c);
}


/* Takes the connection out of its pool and closes it; memory goes in conn_on_close. */
static void
conn_close(upstream_conn_t *c)
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
    sl_buf_free(&c->hbuf);
    free(c->hidx);
    free(c->hdrs);
    free(c);
    upstream_unref(u);
}


static const char *
conn_phase_text(const sl_upstream_call_t *uc)
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

    sl_buf_clear(&c->hbuf);
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
    sl_buf_free(&c->hbuf);
    free(c->hidx);
    free(c->hdrs);
    c->hidx = NULL;
    c->hdrs = NULL;
    c->hcap = 0;
    c->nh = 0;
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
