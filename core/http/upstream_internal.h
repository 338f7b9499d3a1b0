/*
 * Module-private declarations of the upstream HTTP/1.1 client
 * (core/http/upstream*.c): the client, pool, connection and call structs
 * and the sl__upstream_* functions the two files call across. Nothing
 * outside core/http/upstream*.c includes it.
 *
 *   upstream.c       the public API (create, destroy, send, cancel, pause,
 *                    resume), serializing a request into its call, and a
 *                    call's life: phases, the one timer that carries every
 *                    deadline, the end through on_done, memory
 *   upstream_conn.c  a pool's connections: handing them to calls (idle
 *                    first, else a new one, else the wait queue) and back,
 *                    the DNS cache and resolve, connect (address after
 *                    address), TLS, writing the request, reading and parsing
 *                    the response (llhttp callbacks), EOF and retry, close
 *
 * A call and its connection point at each other while the connection
 * carries it; whoever ends the pair first clears both pointers. Worker
 * context only, like core/http/upstream.h.
 */
#ifndef SL_CORE_HTTP_UPSTREAM_INTERNAL_H
#define SL_CORE_HTTP_UPSTREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <llhttp.h>
#include <uv.h>

#include "core/base/buf.h"
#include "core/http/tls.h"
#include "core/http/upstream.h"

#define UPSTREAM_MAX_ADDRS 8
#define UPSTREAM_RBUF_SIZE (32 * 1024)
#define UPSTREAM_ADDR_TEXT (INET6_ADDRSTRLEN + 8)

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
    UPSTREAM_PHASE_DONE,       /* on_done due (u->done) */
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

#define UPSTREAM_SPARE_CALLS 16 /* closed calls' blocks a worker keeps for the next ones */

struct sl_upstream {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    upstream_pool_t *pools;
    size_t npools;
    sl_tls_conf_t **tls; /* distinct client configurations, owned */
    size_t ntls;
    TAILQ_HEAD(, sl_upstream_call) calls; /* every call not yet closed */
    /*
     * Calls whose on_done is due, run by done_idle on the next loop turn:
     * one handle for them all, where a zero timer per call cost a timer
     * heap insertion and removal per request.
     */
    TAILQ_HEAD(, sl_upstream_call) done;
    uv_idle_t done_idle;
    size_t refs; /* live connections and calls, and done_idle until it closed */
    bool destroyed;
    /*
     * Every read is parsed before its callback returns, so the connections
     * of a worker share one buffer for what the socket gives and one for
     * TLS plaintext instead of holding 32 KiB (and 16 KiB) each.
     */
    char rbuf[UPSTREAM_RBUF_SIZE];
    char pbuf[UPSTREAM_RBUF_SIZE];
    /*
     * A connection gives its header storage back once a response's headers
     * are handed over (a long stream does not hold it); the worker keeps one
     * set of it, when small, for the next response: no heap call per
     * response. Empty (NULL) when none is kept.
     */
    sl_buf_t spare_hbuf;
    struct upstream_hidx *spare_hidx;
    sl_http_header_t *spare_hdrs;
    unsigned spare_hcap;
    /* closed calls' blocks (struct and request bytes), kept when small for the next calls */
    struct sl_upstream_call *spare_call[UPSTREAM_SPARE_CALLS];
    size_t spare_call_size[UPSTREAM_SPARE_CALLS]; /* their bytes */
    unsigned nspare_calls;
};

struct upstream_pool {
    sl_upstream_t *u;
    const sl_provider_conf_t *p;
    sl_tls_conf_t *tls;               /* NULL for plain http */
    sl_tls_session_t *session;        /* the last TLS session, offered to resume; or NULL */
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
    /*
     * keepalive_timeout while idle, kept lazily: going busy leaves it armed
     * and going idle restarts it only when it is not armed already; when it
     * fires early (the connection was busy meanwhile), it re-arms for the
     * rest of idle_until.
     */
    uv_timer_t timer;
    uint64_t idle_until; /* loop ms the idle connection closes at */
    bool timer_armed;
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
    /* armed for the nearest deadline or earlier (see sl__upstream_call_arm) */
    uv_timer_t timer;
    uint64_t timer_due; /* loop ms; valid while timer_armed */
    bool timer_armed;
    sl_upstream_t *u;
    size_t alloc_size; /* bytes of the block the call lives in (its request follows it) */
    upstream_pool_t *pool;
    upstream_conn_t *conn;
    TAILQ_ENTRY(sl_upstream_call) link;      /* u->calls */
    TAILQ_ENTRY(sl_upstream_call) wait_link; /* pool->waiting */
    TAILQ_ENTRY(sl_upstream_call) done_link; /* u->done */
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
    const char *body; /* a kept body (sl_upstream_req_t.body_kept), sent after req; or NULL */
    size_t body_len;
    size_t req_len;
    char req[]; /* the serialized request: its head, and its body unless kept */
};

/*
 * upstream_conn.c. sl__upstream_call_acquire finds a connection for uc: the
 * most recently used idle one (unless fresh is asked for, as on the retry
 * after a stale one), else a new one when the pool has a free slot, else a
 * place at the end of the pool's queue. sl__upstream_pool_dispatch gives
 * free slots and idle connections to the queued calls, oldest first; call
 * it whenever a connection left the pool's busy list.
 */
void sl__upstream_call_acquire(sl_upstream_call_t *uc, bool fresh);
void sl__upstream_pool_dispatch(upstream_pool_t *pool);

/*
 * Takes c out of its pool, detaches its call (which the caller ends) and
 * closes it; its memory goes once its handles closed. Closing twice is a
 * no-op.
 */
void sl__upstream_conn_close(upstream_conn_t *c);

/* Starts and stops reading c's socket (a paused call stops it); both are idempotent. */
void sl__upstream_conn_read_start(upstream_conn_t *c);
void sl__upstream_conn_read_stop(upstream_conn_t *c);

/*
 * upstream.c. sl__upstream_call_set_phase enters a phase and re-arms the
 * call's timer (the wait for a slot and the connection set-up share one
 * connect_timeout); sl__upstream_call_arm arms it for the nearest of the
 * call's deadlines. sl__upstream_call_finish ends the call with rc (0 or a
 * negative code): on_done runs on the next loop turn (u->done), outside any
 * connection code.
 */
void sl__upstream_call_set_phase(sl_upstream_call_t *uc, upstream_phase_e phase);
void sl__upstream_call_arm(sl_upstream_call_t *uc);
void sl__upstream_call_finish(sl_upstream_call_t *uc, int rc);

/* What the call was doing, for messages: "connecting to", "reading response from", ... */
const char *sl__upstream_phase_text(const sl_upstream_call_t *uc);

/* Drops a reference a connection or call held; frees u after the last one once destroyed. */
void sl__upstream_unref(sl_upstream_t *u);

#endif
