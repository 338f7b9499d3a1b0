/*
 * Upstream HTTP/1.1 client, one per worker, on libuv, llhttp (response mode)
 * and core/http/tls.h (mbedTLS).
 *
 * Per provider it keeps a keep-alive connection pool (max_connections busy
 * + idle, max_idle idle, idle ones closed after keepalive_timeout), resolves
 * names with uv_getaddrinfo behind a short cache, verifies certificates
 * against the system CA bundle plus the provider's ca_file, sends SNI and
 * checks the host name. Timeouts: connect, first byte (request sent ->
 * response headers), idle (gap between reads), total.
 *
 * A call on a pooled connection that the upstream had closed is retried
 * once on a fresh connection when no byte of the response has arrived.
 *
 * Worker context only. Nothing here blocks.
 */
#ifndef SL_CORE_HTTP_UPSTREAM_H
#define SL_CORE_HTTP_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/conf/conf.h"
#include "core/http/http.h"
#include "core/base/log.h"

typedef struct sl_upstream sl_upstream_t;
typedef struct sl_upstream_call sl_upstream_call_t;

typedef struct sl_upstream_cbs {
    /* Response status line and headers arrived. headers are valid during the call only. */
    void (*on_headers)(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                       size_t nheaders, void *data);
    /* Body bytes (de-chunked), valid during the call only. */
    void (*on_body)(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
    /*
     * The call ended: rc 0 when the whole response arrived, else SL_ETIMEOUT,
     * SL_ECLOSED, SL_ETLS, SL_ECERT, SL_ERESOLVE, SL_EUPSTREAM (malformed),
     * SL_EPOOL, or a libuv code (e.g. UV_ECONNREFUSED). Called exactly once
     * unless the call was cancelled; uc is invalid after it returns.
     */
    void (*on_done)(sl_upstream_call_t *uc, int rc, void *data);
    /*
     * Optional (NULL): the body bytes of one read were all handed to on_body;
     * a consumer batching its output per read writes it now. Runs before the
     * on_done of the read that completed the response.
     */
    void (*on_read_end)(sl_upstream_call_t *uc, void *data);
} sl_upstream_cbs_t;

/* Timing of a call, for logs and the ledger. Nanoseconds from uv_hrtime, 0 when not reached. */
typedef struct sl_upstream_timing {
    uint64_t start;
    uint64_t connected;
    uint64_t sent;
    uint64_t first_byte;
    bool reused; /* the connection came from the pool */
} sl_upstream_timing_t;

/* Creates the client for conf's providers (loads CA bundles). NULL on failure (logged). */
sl_upstream_t *sl_upstream_create(uv_loop_t *loop, const sl_conf_t *conf);

/*
 * Closes idle connections and stops the timers. Calls in flight are
 * cancelled. The memory goes once every handle closed (run the loop).
 */
void sl_upstream_destroy(sl_upstream_t *u);

/*
 * Starts a call to provider p, which must be an element of the conf's
 * providers array. On success stores the call in *out (it stays valid until
 * on_done runs or sl_upstream_cancel) and returns 0; the callbacks run
 * later, never from inside this function. log supplies the connection serial
 * for messages (copied; NULL for the process's own). Returns UV_EINVAL for a
 * provider not in the conf, a method or path with CR, LF, space or NUL, or
 * after sl_upstream_destroy. Headers named Host, Content-Length, Connection
 * or Transfer-Encoding, or with CR/LF in name or value, are dropped.
 */
int sl_upstream_send(sl_upstream_t *u, const sl_provider_conf_t *p, const sl_upstream_req_t *req,
                     const sl_upstream_cbs_t *cbs, void *data, const sl_log_t *log,
                     sl_upstream_call_t **out);

/* Cancels a call: no callback runs afterwards; its connection is closed, never reused. */
void sl_upstream_cancel(sl_upstream_call_t *uc);

/*
 * Flow control for streams: stop / restart reading from the upstream socket.
 * Bytes already read when pause is called are still delivered. While paused
 * the first-byte and idle timeouts do not run; total_timeout does.
 */
void sl_upstream_pause(sl_upstream_call_t *uc);
void sl_upstream_resume(sl_upstream_call_t *uc);

/* Timing so far. */
const sl_upstream_timing_t *sl_upstream_timing(const sl_upstream_call_t *uc);

#endif
