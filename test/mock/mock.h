/*
 * sluice-mock: a fake OpenAI-compatible provider for the integration tests
 * and the benchmarks. mock.c owns the process, the event loop and the
 * connections (HTTP/1.1 over plain TCP or TLS); mock_api.c turns one parsed
 * request into one response plan (the bytes to send, cut into segments, and
 * how to pace them). The split keeps the wire format apart from the I/O, so
 * the fault headers only ever change the plan.
 *
 * The mock deliberately shares no code with the gateway's HTTP server or
 * upstream client: it is the yardstick they are tested against.
 */
#ifndef SL_TEST_MOCK_H
#define SL_TEST_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/http.h"
#include "core/pool.h"
#include "core/str.h"

#define SL_MOCK_LOG_MAX 100 /* requests kept for GET /__mock/requests */

/* Command-line settings; immutable once the loop runs. */
typedef struct sl_mock_conf {
    const char *listen;   /* "host:port", "[v6]:port" */
    const char *tls_cert; /* NULL: plain HTTP */
    const char *tls_key;
    const char *api_key;     /* NULL: no authentication */
    unsigned chunks;         /* content chunks per streamed reply */
    unsigned chunk_delay_ms; /* pause before each streamed event after the first */
    unsigned latency_ms;     /* delay before the response headers */
} sl_mock_conf_t;

/* One remembered request (raw bytes; turned into JSON only when asked for). */
typedef struct sl_mock_record {
    sl_buf_t blob; /* method NUL target NUL (name NUL value NUL)* body */
    size_t nheaders;
    size_t body_off;
} sl_mock_record_t;

/* Process-wide state: settings, counters and the request log. */
typedef struct sl_mock {
    sl_mock_conf_t conf;
    uint64_t requests;    /* requests outside /__mock/ */
    uint64_t connections; /* accepted TCP connections */
    uint64_t active;      /* connections open now */
    uint64_t serial;      /* response ids */
    sl_pool_t *scratch;   /* reset after every request */
    sl_buf_t body;        /* scratch for building one JSON body */
    sl_mock_record_t log[SL_MOCK_LOG_MAX];
    size_t log_next; /* next slot to overwrite */
    size_t log_len;  /* valid entries, at most SL_MOCK_LOG_MAX */
} sl_mock_t;

/* A parsed request. Everything is borrowed from the connection until the handler returns. */
typedef struct sl_mock_req {
    sl_str_t method;
    sl_str_t target; /* as sent, query included */
    sl_str_t path;   /* target without the query */
    const sl_http_header_t *headers;
    size_t nheaders;
    sl_str_t body;
    bool keep_alive; /* the client allows another request on this connection */
    bool http10;
} sl_mock_req_t;

/*
 * A response plan: data holds the exact bytes for the wire, and seg_end[]
 * cuts them into segments (headers, body or one SSE event each). The
 * connection sends segment by segment; pacing and faults act only at
 * segment boundaries, except the drip, which works byte by byte.
 */
typedef struct sl_mock_resp {
    sl_buf_t data;
    size_t *seg_end;
    size_t nseg;
    size_t seg_cap;
    size_t paced_from; /* segments from this index wait chunk_delay_ms first */
    unsigned delay_ms; /* before the first byte */
    unsigned chunk_delay_ms;
    unsigned drip_ms;   /* non-zero: one byte per drip_ms */
    size_t reset_after; /* non-zero: RST once this many segments went out */
    bool close;         /* close (FIN) once everything went out */
    bool abort;         /* the close is an abrupt one: no TLS close_notify */
} sl_mock_resp_t;

/*
 * Builds the response plan for r into resp (cleared first) and records r in
 * the request log. Never fails: bad requests get an error response. The
 * connection owns resp; m->scratch is reset before returning.
 */
void sl_mock_handle(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp);

/* A "400 Bad Request" plan that closes the connection, for unparseable HTTP. */
void sl_mock_bad_request(sl_mock_t *m, sl_mock_resp_t *resp, int status);

/* Frees the request log. */
void sl_mock_log_free(sl_mock_t *m);

#endif
