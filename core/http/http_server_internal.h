/*
 * Module-private declarations of the inbound HTTP server (core/http_*.c):
 * the server, connection and listener structs and the sl__http_* functions
 * the four files call across. Nothing outside core/http_*.c includes it.
 *
 *   http_server.c    the public server API, listeners, accept, the Date cache
 *   http_conn.c      a connection's life: reads (plain and TLS), timeouts,
 *                    half-close, keep-alive and drain, lingering close
 *   http_request.c   llhttp callbacks and request assembly, the request's
 *                    checks, routing and dispatch to handlers
 *   http_response.c  the handler-facing response API, the head writer, the
 *                    write path with backpressure, error bodies, access log
 *
 * Worker context only, like core/http/http_server.h.
 */
#ifndef SL_CORE_HTTP_HTTP_SERVER_INTERNAL_H
#define SL_CORE_HTTP_HTTP_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <llhttp.h>
#include <uv.h>

#include "core/base/buf.h"
#include "core/http/http_server.h"
#include "core/http/tls.h"

#define HTTP_RBUF_SIZE        65536 /* one read takes a request with a 60 KiB body whole */
#define HTTP_POOL_SIZE        6144
#define HTTP_NHEADERS         16
#define HTTP_SEND_BUFS        4 /* at most this many buffers in one sl__http_conn_send */
#define HTTP_HIGH_WATER       (256 * 1024)
#define HTTP_LOW_WATER        (64 * 1024)
#define HTTP_BODY_KEEP        (1024 * 1024) /* larger body buffers are freed between requests */
#define HTTP_BODY_RESERVE     (64 * 1024)   /* body bytes reserved before they arrive */
#define HTTP_LINGER_MS        2000
#define HTTP_DRAIN_IDLE_GRACE 1000 /* ms an idle connection stays open once draining */
#define HTTP_RID_MAX          128
#define HTTP_OVERLOAD_LOG     60000 /* ms between two "max_connections reached" messages */
#define HTTP_PEER_CHECK       250 /* ms between checks of a half-closed client (see conn_peer_probe) */
#define HTTP_TLS_OUT_KEEP     (16 * 1024) /* larger TLS output buffers are freed once sent */
#define HTTP_TLS_RECORD_MIN   0x14        /* TLS record content types: change_cipher_spec, */
#define HTTP_TLS_RECORD_MAX   0x17        /* alert, handshake, application_data */

#define HTTP_EXPOSE_HEADERS \
    "x-request-id, x-sluice-provider, x-sluice-model, x-sluice-cache, x-sluice-attempts"
#define HTTP_CORS_HEADERS "authorization, content-type, x-api-key, x-request-id"

#define sl__http_cat_lit(p, s) sl__http_cat((p), (s), sizeof(s) - 1)

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
    sl_tls_conf_t *tls; /* NULL: plain HTTP; owned by srv (tls_confs) */
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
    bool retiring;             /* draining for a reload: idle connections keep keepalive_timeout */
    sl_tls_conf_t **tls_confs; /* one per TLS listener, freed with the server */
    size_t ntls;
    /*
     * Reads land in these buffers, shared by every connection of the
     * server: one read callback at a time, and what a connection has not
     * parsed when its callback returns moves to its own buffer (conn_keep).
     */
    char rbuf[HTTP_RBUF_SIZE];
    char tls_rbuf[HTTP_RBUF_SIZE]; /* ciphertext, copied into the session at once */
    sl_buf_t head;                 /* the response head being sent (conn_build_head) */
};

struct sl_http_conn {
    uv_tcp_t tcp;
    /*
     * One timer for the connection's current timeout, kept lazily (see
     * sl__http_conn_timer): deadline is what counts; the libuv timer may be
     * armed earlier (timer_due) and then re-arms itself for the rest.
     */
    uv_timer_t timer;
    uint64_t deadline;  /* loop ms; valid while timer_on */
    uint64_t timer_due; /* loop ms the libuv timer fires at; valid while timer_armed */
    bool timer_on;
    bool timer_armed;
    uv_shutdown_t shutdown;
    sl_tls_t *tls; /* NULL on a plain connection */
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
    sl_buf_t held;  /* a streaming response's head, sent with its first piece (sl_http_start) */
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
    bool direct;         /* the read in progress goes straight into the body's tail */
    bool resume;         /* the IDLE timer fired at 0 ms: parse pipelined bytes */
    bool counted;        /* counted in srv->nactive */
    bool logged;         /* the access log line for this request is written */
    bool peer_check;     /* the client half-closed and was probed: watch for its RST */
    bool tls_handshake;  /* the TLS handshake is not complete yet */
    bool tls_quiet;      /* no more TLS output: the session failed or close_notify went */
    int resp_status;     /* status of the response being sent */
    uint64_t resp_bytes; /* bytes of the response handed to the socket */
    char *rbuf; /* the request bytes: srv->rbuf, own while bytes wait between callbacks, or the
                   body's tail for one read (direct) */
    char *own;  /* HTTP_RBUF_SIZE bytes, only while unparsed (pipelined) bytes wait */
    char addr[64];
    char rid[HTTP_RID_MAX + 1];
};


/* The connection a request belongs to (the request is embedded in it). */
static inline sl_http_conn_t *
sl__http_conn(const sl_http_req_t *r)
{
    return (sl_http_conn_t *) ((char *) r - offsetof(sl_http_conn_t, req));
}

/* http_server.c: the Date header value, formatted again only when the second changes. */
const char *sl__http_server_date(sl_http_server_t *srv);

/*
 * http_conn.c: timers (one per connection serves every timeout), reading,
 * TLS output, the request's start and end, closing. sl__http_conn_close
 * starts closing (handlers see r->aborted now and on_abort from the close
 * callback); sl__http_conn_free releases a connection whose handles are
 * closed.
 */
void sl__http_conn_timer(sl_http_conn_t *c, uint64_t ms);

/* Fires the connection's timer on the next loop turn (a pipelined request resumes from it). */
void sl__http_conn_timer_now(sl_http_conn_t *c);
uint64_t sl__http_conn_idle_timeout(const sl_http_conn_t *c);
void sl__http_conn_read_start(sl_http_conn_t *c);
int sl__http_conn_tls_flush(sl_http_conn_t *c);
void sl__http_conn_request_begin(sl_http_conn_t *c);
void sl__http_conn_request_done(sl_http_conn_t *c);
void sl__http_conn_close(sl_http_conn_t *c);
void sl__http_conn_free(sl_http_conn_t *c);

/*
 * http_request.c: the parser callbacks, what happens when the headers are
 * complete (checks, limits, 100 Continue), parse errors, routing and
 * dispatch, request ids.
 */
void sl__http_parser_settings(llhttp_settings_t *s);
void sl__http_conn_headers_done(sl_http_conn_t *c);
void sl__http_conn_parse_error(sl_http_conn_t *c, llhttp_errno_t err);
void sl__http_conn_dispatch(sl_http_conn_t *c);
void sl__http_conn_request_id(sl_http_conn_t *c);
bool sl__http_route_match(const sl_http_server_t *srv, size_t i, sl_str_t path);

/*
 * http_response.c: the server's own answers (sl__http_conn_fail refuses the
 * request being read and closes after the answer), whole responses, the
 * write path (plaintext or through TLS; sl__http_conn_send_raw takes bytes
 * as they go on the wire) and the formatting helpers of the head writer.
 */
void sl__http_conn_fail(sl_http_conn_t *c, int status, const char *code, const char *message);
int sl__http_conn_error(sl_http_conn_t *c, int status, const sl_http_header_t *headers,
                        size_t nheaders, const char *type, const char *code, const char *param,
                        const char *message);
int sl__http_conn_respond(sl_http_conn_t *c, int status, const sl_http_header_t *headers,
                          size_t nheaders, const char *body, size_t len);
int sl__http_conn_send(sl_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs);
int sl__http_conn_send_raw(sl_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs);
char *sl__http_cat(char *p, const char *s, size_t n);
char *sl__http_put_uint(char *p, uint64_t v);
char *sl__http_put_hex(char *p, uint64_t v, int width);

#endif
