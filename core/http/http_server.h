/*
 * Inbound HTTP/1.1 server, one per worker, on libuv and llhttp.
 *
 * The server owns connections, parsing, limits and timeouts; a handler owns
 * one request at a time per connection. Pipelined requests are parsed and
 * answered strictly in order: the next one is not handed out before the
 * current one is finished. A request's memory (r->pool) lives from the first
 * byte until the handler finished it AND the response left; the connection's
 * memory lives until its uv handle's close callback.
 *
 * Routing is a static table given at creation: an unknown path answers 404,
 * a known path with another method answers 405 with Allow. Every error the
 * server itself produces uses OpenAI's shape {"error":{"message","type",
 * "param","code"}} and carries x-request-id.
 *
 * Worker context only. Nothing here blocks.
 */
#ifndef SL_CORE_HTTP_HTTP_SERVER_H
#define SL_CORE_HTTP_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/conf/conf.h"
#include "core/http/http.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/base/str.h"

typedef struct sl_http_server sl_http_server_t;
typedef struct sl_http_conn sl_http_conn_t;
typedef struct sl_http_req sl_http_req_t;

typedef void (*sl_http_handler_cb)(sl_http_req_t *r);
typedef void (*sl_http_req_cb)(sl_http_req_t *r);

/*
 * Formats an error body for a route that speaks another wire format than
 * OpenAI's (e.g. Anthropic's on /v1/messages): status and OpenAI-style
 * fields in, body (allocated in pool) out. Returns 0 or a negative code
 * (the server then falls back to OpenAI's shape).
 */
typedef int (*sl_http_error_cb)(sl_pool_t *pool, int status, const char *type, const char *code,
                                const char *param, const char *message, sl_str_t *out);

typedef struct sl_http_route {
    const char *method; /* "GET", "POST", ... */
    const char *path; /* exact path, e.g. "/v1/chat/completions"; a trailing '*' matches a prefix */
    sl_http_handler_cb handler;
    sl_http_error_cb error; /* NULL: OpenAI's error shape; also used for the server's own
                               errors (405, 413, 408, ...) on this path */
} sl_http_route_t;

/*
 * One request. Public because handlers read it on the hot path. Fields are
 * set by the server before the handler runs and are read-only to handlers,
 * except data, on_abort, on_drain and log_fields which belong to the handler.
 */
struct sl_http_req {
    sl_pool_t *pool; /* request pool */
    sl_log_t log;    /* worker id + connection serial */
    uv_loop_t *loop;
    sl_http_server_t *server;
    const sl_conf_t *conf; /* the generation this worker serves */
    sl_str_t method;
    sl_str_t path;             /* raw (not percent-decoded), without the query */
    sl_str_t query;            /* after '?', without it; empty when none */
    sl_http_header_t *headers; /* in r->pool; names and values NUL-terminated, values trimmed */
    size_t nheaders;
    sl_str_t body;           /* whole body, de-chunked; at most conf->max_body bytes */
    const char *request_id;  /* client's sane x-request-id, else generated; NUL-terminated */
    const char *client_addr; /* "127.0.0.1:53412" */
    uint64_t start_ns;       /* uv_hrtime() at the first byte */
    unsigned http_minor;     /* 0 or 1 */
    bool keepalive;          /* the connection may be reused after this response */
    bool aborted;            /* the client went away; further writes are dropped */

    void *data;              /* the handler's state */
    sl_http_req_cb on_abort; /* called once if the client goes away before finish, from a
                                libuv callback (never inside an sl_http_* call); the
                                handler must still finish the request to release it */
    sl_http_req_cb on_drain; /* called when queued output fell below the low-water mark */
    sl_str_t log_fields;     /* JSON members (",\"key\":value...") a JSON access log line adds
                                (server.access_log_format: json); in r->pool, empty: none */
};

/*
 * Creates the server on loop for conf. routes (nroutes entries) must outlive
 * the server. Returns NULL on failure (logged).
 */
sl_http_server_t *sl_http_server_create(uv_loop_t *loop, const sl_conf_t *conf,
                                        const sl_http_route_t *routes, size_t nroutes);

/*
 * Adopts an already bound and listening socket fd (uv_tcp_open) and starts
 * accepting. Takes ownership of fd, also on failure (it is then closed).
 * Returns 0 or a libuv code (logged).
 */
int sl_http_server_listen_fd(sl_http_server_t *srv, int fd);

/*
 * As sl_http_server_listen_fd, speaking HTTPS with tls (from the generation's
 * configuration; the server builds its own mbedTLS configuration from the
 * PEM text and frees it with the server). tls NULL: plain. Returns 0, a
 * libuv code, or SL_ETLS (logged; fd is closed on every failure).
 */
int sl_http_server_listen_tls(sl_http_server_t *srv, int fd, const sl_listen_tls_t *tls);

/*
 * Graceful drain: stops accepting (closes the listener handles). Every
 * request answered from then on goes out with Connection: close. A busy
 * connection finishes its response; when that response went out with
 * Connection: close it closes right after it, else (a stream that began
 * before the drain) it becomes idle.
 *
 * What happens to an idle keep-alive connection depends on retire:
 *  - false (a stop): a short grace (1 s) for a request its client may
 *    already have sent; quiet ones are closed after it;
 *  - true (a reload: the process is replaced, the service goes on): it is
 *    kept until its client uses it (the answer carries Connection: close)
 *    or closes it, or until its usual keepalive_timeout, as HAProxy's
 *    idle-close-on-response does: closing a connection the client may be
 *    sending on would reset that request. The caller bounds the whole by
 *    drain_timeout (sl_http_server_close_all).
 * A stop after a retire shortens the idle connections' wait to the grace.
 */
void sl_http_server_drain(sl_http_server_t *srv, bool retire);

/*
 * Connections of srv that are not idle between requests (a request being
 * read, handled or answered).
 */
size_t sl_http_server_busy_connections(const sl_http_server_t *srv);

/* Closes every connection now (fast stop). In-flight handlers get on_abort. */
void sl_http_server_close_all(sl_http_server_t *srv);

/* Number of open client connections. */
size_t sl_http_server_connections(const sl_http_server_t *srv);

/*
 * Frees the server. Call it once sl_http_server_connections() is 0 (after
 * drain or close_all and running the loop); listeners still open are closed
 * and their memory is released by the loop afterwards.
 */
void sl_http_server_destroy(sl_http_server_t *srv);

/* Finds a request header (case-insensitive); NULL when absent. */
const sl_str_t *sl_http_req_header(const sl_http_req_t *r, const char *name);

/*
 * The client's key: "Authorization: Bearer KEY", else "x-api-key: KEY"
 * (trimmed); empty when neither is there. Borrowed from the request.
 */
sl_str_t sl_http_req_credential(const sl_http_req_t *r);

/*
 * Response, whole: status, extra headers (the server adds Content-Length,
 * Connection, Date, Server, x-request-id and CORS), body. Copies everything
 * it needs; finishes the request. Returns 0, SL_ECLOSED when the client is
 * gone, -EINVAL when the response was already started.
 *
 * Finishing (sl_http_respond, sl_http_respond_error, sl_http_finish)
 * releases r: once the call returns, r and r->pool must not be used (the
 * pool's cleanup hooks may already have run). Finishing an aborted request
 * only releases it and returns 0.
 */
int sl_http_respond(sl_http_req_t *r, int status, const sl_http_header_t *headers, size_t nheaders,
                    const char *body, size_t len);

/*
 * Error response in OpenAI's shape. type e.g. "invalid_request_error";
 * code and param may be NULL. Finishes the request.
 */
int sl_http_respond_error(sl_http_req_t *r, int status, const char *type, const char *code,
                          const char *param, const char *message);

/*
 * Streaming response: the status line and headers (chunked transfer
 * encoding on HTTP/1.1, close-delimited on 1.0), held until the first
 * piece so that both go out in one write: call sl_http_write() (or
 * sl_http_finish()) without waiting on anything in between. Then
 * sl_http_write() sends each piece at once (no buffering beyond the
 * socket) and sl_http_finish() ends the body and finishes the request. sl_http_start and
 * sl_http_write return 0, SL_ECLOSED once the client is gone (the handler still finishes), or
 * -EINVAL when called out of order.
 */
int sl_http_start(sl_http_req_t *r, int status, const sl_http_header_t *headers, size_t nheaders);
int sl_http_write(sl_http_req_t *r, const char *data, size_t len);
int sl_http_finish(sl_http_req_t *r);

/* sl_http_write(data) and sl_http_finish() in one write to the socket. */
int sl_http_finish_with(sl_http_req_t *r, const char *data, size_t len);

/* True when so much output is queued that the producer should pause until on_drain. */
bool sl_http_is_congested(const sl_http_req_t *r);

/* Bytes queued towards the client and not yet written. */
size_t sl_http_queued(const sl_http_req_t *r);

#endif
