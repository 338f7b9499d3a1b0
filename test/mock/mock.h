/*
 * sluice-mock: a fake LLM provider (OpenAI, Anthropic Messages and Gemini
 * wire formats) for the integration tests and the benchmarks. mock.c owns
 * the process, the event loop and the connections (HTTP/1.1 over plain TCP
 * or TLS); mock_api.c turns one parsed request into one response plan (the
 * bytes to send, cut into segments, and how to pace them) and answers the
 * OpenAI paths itself; mock_anthropic.c and mock_gemini.c answer theirs. The
 * split keeps the wire format apart from the I/O, so the fault headers only
 * ever change the plan.
 *
 * The mock deliberately shares no code with the gateway's HTTP server or
 * upstream client: it is the yardstick they are tested against.
 */
#ifndef SL_TEST_MOCK_H
#define SL_TEST_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"
#include "core/http/http.h"
#include "core/base/pool.h"
#include "core/base/str.h"

#define SL_MOCK_LOG_MAX         100 /* requests kept for GET /__mock/requests */
#define SL_MOCK_REPLY_MAX_CHARS 200 /* of the last user text, echoed in the reply */
#define SL_MOCK_TOOL_ARGS       "{\"location\":\"Paris\"}"
#define SL_MOCK_EMBED_DIMS      64

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
#define SL_MOCK_FAULTS_MAX 16 /* headers one POST /__mock/faults may program */

typedef struct sl_mock {
    sl_mock_conf_t conf;
    uint64_t requests;    /* requests outside /__mock/ */
    uint64_t connections; /* accepted TCP connections */
    uint64_t active;      /* connections open now */
    uint64_t serial;      /* response ids */
    sl_pool_t *scratch;   /* reset after every request */
    sl_buf_t body;        /* scratch for building one JSON body */
    sl_mock_record_t log[SL_MOCK_LOG_MAX];
    sl_buf_t tags;   /* x-mock-tag values of every request since the last reset, '\n'-separated */
    size_t log_next; /* next slot to overwrite */
    size_t log_len;  /* valid entries, at most SL_MOCK_LOG_MAX */
    /* POST /__mock/faults: fault headers applied to the next fault_count API requests */
    sl_buf_t fault_blob; /* names and values, NUL-terminated */
    sl_http_header_t fault_h[SL_MOCK_FAULTS_MAX];
    size_t nfault;
    long fault_count; /* -1: every request until cleared */
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

/* The x-mock-* request headers, decoded. */
typedef struct sl_mock_faults {
    int status;           /* 0: none */
    sl_str_t retry_after; /* empty: none */
    unsigned delay_ms;
    unsigned chunks;
    unsigned chunk_delay_ms;
    long reset_after; /* -1: none */
    unsigned drip_ms;
    bool truncate;
    bool garbage;
    bool close;
} sl_mock_faults_t;

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

/*
 * Shared by mock_api.c, mock_anthropic.c and mock_gemini.c only. All run on
 * the loop thread inside sl_mock_handle; "m->body" is the per-request JSON
 * scratch, and anything from m->scratch lives until sl_mock_handle returns.
 */

/* Appends s as a JSON string literal (quotes included); bytes >= 0x80 pass as they are. */
void sl__mock_json_str(sl_buf_t *b, const char *s, size_t len);

/* Ends a segment of resp at the current end of resp->data. */
void sl__mock_seg(sl_mock_resp_t *resp);

/*
 * Status line and headers into resp->data, then ends that segment. clen < 0
 * means chunked. f may be NULL (no Retry-After); extra, if not NULL, is
 * more header lines, each ending in CRLF.
 */
void sl__mock_head(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
                   const char *ctype, long long clen, const sl_mock_faults_t *f, const char *extra);

/* m->body as a whole response (head + body), applying the truncate and reset faults of f. */
void sl__mock_emit(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
                   const sl_mock_faults_t *f, const char *ctype, const char *extra);

/* m->body as one HTTP chunk and one segment; last also ends the chunked body. */
void sl__mock_event(sl_mock_t *m, sl_mock_resp_t *resp, bool last);

/* The first request header with that name (case-insensitive), or NULL. */
const sl_http_header_t *sl__mock_header(const sl_mock_req_t *r, const char *name);

/* UTF-8 helpers: bytes of the first `chars` code points; code points; words; substring. */
size_t sl__mock_utf8_prefix(const char *s, size_t len, size_t chars);
size_t sl__mock_utf8_len(const char *s, size_t len);
long long sl__mock_words(const char *s, size_t len);
bool sl__mock_contains_ci(const char *s, size_t len, const char *needle);
/* Bytes up to the end of word number `words` (all of s when it has no more; words > 0). */
size_t sl__mock_words_prefix(const char *s, size_t len, long long words);

/* SL_MOCK_EMBED_DIMS deterministic values for the input, as a JSON array or a base64 string. */
void sl__mock_embedding(sl_buf_t *b, const char *p, size_t len, bool base64);

/* "mock reply: " + the first SL_MOCK_REPLY_MAX_CHARS code points of text, in m->scratch. */
sl_str_t sl__mock_reply(sl_mock_t *m, const char *text, size_t len);

/* Is r for the Anthropic Messages API (/v1/messages...)? */
bool sl__mock_is_anthropic(const sl_mock_req_t *r);

/*
 * Answers an Anthropic request: authentication (x-api-key), x-mock-status,
 * then the endpoint, all in Anthropic's error shape. f has been applied to
 * resp's pacing already; garbage has been handled.
 */
void sl__mock_anthropic(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                        const sl_mock_faults_t *f);

/* Is r for the Gemini API (/v1beta/... or POST /v1/models/{model}:method)? */
bool sl__mock_is_gemini(const sl_mock_req_t *r);

/* Answers a Gemini request, as sl__mock_anthropic does for Anthropic. */
void sl__mock_gemini(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                     const sl_mock_faults_t *f);

/* Is r for OpenAI's Responses API (/v1/responses, Azure's /openai/v1/responses)? */
bool sl__mock_is_responses(const sl_mock_req_t *r);

/* Answers a Responses request (mock_responses.c); authentication and faults are done. */
void sl__mock_responses(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                        const sl_mock_faults_t *f);

#endif
