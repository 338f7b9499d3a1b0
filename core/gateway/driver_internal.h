/*
 * Module-private state of the request driver (driver.c: the phases and the
 * request's end; attempt.c: one upstream exchange at a time).
 */
#ifndef SL_CORE_GATEWAY_DRIVER_INTERNAL_H
#define SL_CORE_GATEWAY_DRIVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/gateway/account.h"
#include "core/gateway/call.h"
#include "core/gateway/commit.h"
#include "core/gateway/driver.h"
#include "core/gateway/frontend.h"
#include "core/gateway/frontend_internal.h"
#include "core/gateway/features.h"
#include "core/gateway/guard.h"
#include "core/http/http_server.h"
#include "core/gateway/router.h"
#include "core/base/sse.h"
#include "core/base/timer.h"
#include "core/http/upstream.h"
#include "providers/provider.h"

typedef struct sl_drv_req sl_drv_req_t;
typedef struct sl_drv_attempt sl_drv_attempt_t;
typedef struct sl_drv_obs sl_drv_obs_t;

struct sl_driver {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    sl_upstream_t *up;
    sl_db_t *db;
    sl_commit_t *commit; /* the ledger's group commit (NULL without a ledger) */
    char *models_body;   /* GET /v1/models answer, built once per generation */
    size_t models_len;
    int64_t created;
    uint64_t requests;
    sl_drv_req_t *active; /* requests with attempts under way or streams open */
};

struct sl_drv_req {
    sl_http_req_t *r;
    sl_driver_t *d;
    const sl_frontend_t *fe;
    sl_call_t call; /* the shared fields; each attempt copies it */
    const char *public_model;
    sl_acct_t acct;
    sl_features_t features;

    /* plan */
    sl_route_plan_t plan;
    const sl_routing_conf_t *routing; /* plan.routing */
    size_t ti;                        /* plan.order[ti] is the target being tried */
    unsigned tries;                   /* attempts on it so far */
    sl_target_t direct;
    uint64_t start_ms; /* sl_state_now() at the start: the deadline counts from it */

    /* attempts */
    sl_drv_attempt_t *att; /* the current one, NULL between attempts */
    unsigned attempts;     /* made so far */
    sl_timer_t *timer;     /* the wait before the next attempt */
    sl_error_t last_error; /* what the client gets when every attempt failed */
    bool have_error;
    const char *retry_after;    /* Retry-After for the client, or NULL */
    const char *retry_after_ms; /* retry-after-ms for the client (our own rate limit), or NULL */

    /* work off the loop (decoding or a DOM of a large body) */
    uv_work_t work;
    bool working;  /* work is queued or running: the request waits for it */
    bool gone;     /* the client went away while it ran */
    int decode_rc; /* the frontend's decode, when it ran off the loop */
    sl_error_t decode_err;

    struct sl_cache_req *cache; /* the response cache's state, NULL: it does not apply */
    /* guardrails (core/gateway/guard.h): the request's state, NULL when no policy applies */
    sl_guard_req_t *guard;
    bool guarded; /* the request phase ran (off the loop, with a large body's decode) */
    int guard_rc; /* its result */
    sl_error_t guard_err;

    /* outcome */
    const sl_target_t *served;      /* the target whose answer the client got */
    const sl_target_t *last_target; /* the last one tried */
    const char *served_model;
    uint64_t first_byte_us;
    uint64_t ttft_us;               /* arrival to a stream's first real output */
    struct sl_tail_text *tail_text; /* dashboard.tail_text: text for the live tail, else NULL */
    bool committed;                 /* the client got real output */
    bool streaming;                 /* the client's response is an event stream already started */
    bool done;

    /* the record phase: the ledger row is being committed, then then() sends the end */
    sl_ledger_row_t row;
    bool recording;
    void (*then)(sl_drv_req_t *rq);
    int end_status;
    sl_buf_t end_body;    /* a whole answer, sent by then() */
    sl_usage_t end_usage; /* a stream's usage, for its end */
    sl_error_t end_error; /* the error then() answers or ends the stream with */
    bool end_native;      /* the answer came from a native upstream (responses hold) */
    sl_usage_t rec_usage; /* the row's usage, for what sees the row once committed */
    int rec_status;
    bool linked;
    /* responses.c: the response being stored, NULL for none */
    struct resp_job *resp_job;
    sl_drv_obs_t *obs; /* metrics, trace and access log fields (observe.c) */
    sl_drv_req_t *next_active;
    sl_drv_req_t *prev_active;
};

/* attempt.c */

/*
 * Bodies at least this large are decoded, and turned into a DOM for a
 * translating adapter, in the thread pool: hostile JSON (millions of tiny
 * values) costs jansson about 0.3 s per MiB, which must not hold the loop.
 */
#define SL_DRV_OFFLOOP_BYTES (256u * 1024)

/* Starts the next attempt of the plan, or answers with the last error. */
void sl__drv_attempt_next(sl_drv_req_t *rq);

/*
 * The client went away while work ran off the loop: record and release the
 * request now that the work is done.
 */
void sl__drv_gone(sl_drv_req_t *rq);

/* The client went away: stop the attempt in flight (no callback follows). */
void sl__drv_attempt_cancel(sl_drv_req_t *rq);

/* The current attempt's upstream stream state, NULL when there is none. */
const sl_stream_t *sl__drv_attempt_stream(const sl_drv_req_t *rq);

/* Output towards the client drained: read the upstream again. */
void sl__drv_attempt_resume(sl_drv_req_t *rq);

/*
 * After the commit point: ends the client's stream with an in-band error
 * (no clean end), records the row and finishes the request.
 */
void sl__drv_stream_fail(sl_drv_req_t *rq, const sl_error_t *e);

/* driver.c */

/* Answers e in the frontend's shape (plus the n headers h). Finishes r. */
void sl__drv_respond_error(sl_http_req_t *r, const sl_frontend_t *fe, const sl_error_t *e,
                           const sl_http_header_t *h, size_t n);

/* Ends the request with an error before anything was sent: row, log, answer. */
void sl__drv_error(sl_drv_req_t *rq, const sl_error_t *e);
void sl__drv_error_new(sl_drv_req_t *rq, int status, const char *type, const char *code,
                       const char *param, const char *message);
void sl__frontend_bad_request_error(sl_drv_req_t *rq, const char *param, const char *message);

/* The x-sluice-* response headers (room for DRV_MAX_HEADERS); returns how many. */
size_t sl__drv_headers(sl_drv_req_t *rq, sl_http_header_t *h);

/* The request's usage: the stream's reported one, else an estimate. */
void sl__drv_usage(sl_drv_req_t *rq, const sl_stream_t *st, sl_usage_t *u);

/*
 * The request's one ledger row (usage NULL: none used), group-committed;
 * then then(rq) runs, once, on the loop: the response's last bytes go out
 * from there. It may run before sl__drv_record returns (nothing to record):
 * the caller touches nothing of rq after the call.
 */
void sl__drv_record(sl_drv_req_t *rq, int status, const sl_usage_t *usage,
                    void (*then)(sl_drv_req_t *rq));

/* Copies e (its strings into the request's pool) to rq->end_error, for then(). */
void sl__drv_keep_error(sl_drv_req_t *rq, const sl_error_t *e);

/* The request's info log line and status metrics. */
void sl__drv_log(sl_drv_req_t *rq, int status);

/*
 * Answers the whole body (freed here) with status and the n headers h and
 * releases the request; rq and its pool are gone afterwards.
 */
void sl__drv_finish_respond(sl_drv_req_t *rq, int status, const sl_http_header_t *h, size_t n,
                            sl_buf_t *body);

/* Releases the request (sl_http_finish); rq and its pool are gone afterwards. */
void sl__drv_finish(sl_drv_req_t *rq);

/* sl__drv_finish with a stream's last bytes, sent with its end in one write. */
void sl__drv_finish_with(sl_drv_req_t *rq, const char *data, size_t len);

/*
 * The phases after the cache lookup missed: the token limit (when the
 * lookup ran first), plan, admission, the first attempt.
 */
void sl__drv_proceed(sl_drv_req_t *rq);

/* cache.c: the response cache (core/gateway/cache.h) */

/*
 * Whether the cache applies to rq (cache.enabled and the model's cache:,
 * Cache-Control no-store) and how (no-cache, max-age); sets rq->cache.
 * After decode, once the public model is known.
 */
void sl__cache_prepare(sl_drv_req_t *rq);

/* True when rq may be answered by the cache: a hit counts against rpm, never tpm. */
bool sl__cache_may_hit(const sl_drv_req_t *rq);

/*
 * The lookup phase, before the plan. Returns 0 when the request goes on
 * (a miss, or the cache does not apply), non-zero when the cache took it
 * over: answered a hit, or looks further off the loop (it then answers or
 * calls sl__drv_proceed).
 */
int sl__cache_lookup(sl_drv_req_t *rq);

/* One batch of stream events of attempt a, before the frontend encodes them: gathered to fill. */
void sl__cache_events(sl_drv_req_t *rq, const void *a, const sl_evs_t *evs);

/* The whole answer the client gets, kept to fill. */
void sl__cache_answer(sl_drv_req_t *rq, const sl_answer_t *ans);

/* Whether sl__cache_answer() keeps rq's answer (it reads its choices). */
bool sl__cache_stores(const sl_drv_req_t *rq);

/* The ledger row's cache fields (and a hit's provider, model and savings). */
void sl__cache_row(sl_drv_req_t *rq, sl_ledger_row_t *row);

/* After the row: a complete answer (status 200) is filled, off the loop. */
void sl__cache_fill(sl_drv_req_t *rq, int status, const sl_usage_t *usage);

/* x-sluice-cache: hit, semantic, miss or bypass. */
sl_str_t sl__cache_status(const sl_drv_req_t *rq);
/* The driver of the running generation. */
sl_driver_t *sl__drv_current(void);

/* responses.c (stored responses) */

/*
 * After a Responses request's decode: a previous_response_id puts the
 * stored conversation before the input (the call is translated again).
 * Returns 0, or a negative code after answering the client (400
 * previous_response_not_found, 500).
 */
int sl__drv_responses_decoded(sl_drv_req_t *rq);

/*
 * Right before the row of a successful Responses answer is recorded: when
 * the response is to be stored, its record (from body, the whole answer)
 * joins the ledger's group commit ahead of the row, so both are written in
 * one transaction. native: the answer came from a native upstream.
 * Nothing when it is not stored.
 */
void sl__drv_responses_stage(sl_drv_req_t *rq, const sl_buf_t *body, int status, bool native);

/*
 * The same for a stream that ended cleanly (before its row): the stream's
 * end is encoded now into out (fe_state's encode_end with usage, which
 * then adds nothing later), and its response object staged.
 */
void sl__drv_responses_stage_stream(sl_drv_req_t *rq, void *fe_state, const sl_usage_t *usage,
                                    sl_buf_t *out, bool native);

/*
 * Before a successful Responses answer's last bytes (after its row): when
 * its stored record is not committed yet, takes body (the whole answer, or
 * a stream's last bytes: fe_state is then the stream encoder's) and
 * returns true; the request finishes once the record is written (status
 * and the n headers h for a whole answer, copied). An answer to store that
 * was not staged (a cache hit's, or one past SL_DRV_OFFLOOP_BYTES, which
 * is put together and written in the thread pool) is stored now, in a
 * transaction of its own.
 * False when nothing is (or is still to be) stored: go on as usual.
 */
bool sl__drv_responses_hold(sl_drv_req_t *rq, void *fe_state, sl_buf_t *body, int status,
                            const sl_http_header_t *h, size_t n, bool native);

/* GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items. */
void sl__drv_responses_route(sl_http_req_t *r);

/* count.c: POST /v1/messages/count_tokens; every other /v1/messages/... path (a 404). */
void sl__drv_count_tokens(sl_http_req_t *r);
void sl__drv_messages_other(sl_http_req_t *r);

/*
 * observe.c: what a request tells metrics, its trace and the access log.
 * begin after authentication; attempt when an attempt is created (returns
 * its handle, NULL without begin, and replaces a client's traceparent in the
 * n headers h, which have room for one more, with the attempt's own while
 * tracing is on); attempt_start once the adapter built its request (the
 * number of the attempt; probe: the breaker let it through as a probe);
 * attempt_fail when it failed (the upstream status, 0 for none, and the
 * error), attempt_next when another try follows ("retry" or "fallback",
 * after wait_ms); attempt_end when it is closed; event for a target skipped
 * while attempting ("breaker_skip", "budget_skip"); trace_id is "" or the
 * 32 hex digits for the ledger row; record when the row is written (its
 * cost and cache status, and the usage); end in the log phase, once.
 */
void sl__drv_obs_begin(sl_drv_req_t *rq);
void *sl__drv_obs_attempt(sl_drv_req_t *rq, const sl_target_t *t, sl_http_header_t *h, size_t *n);
void sl__drv_obs_attempt_start(sl_drv_req_t *rq, void *span, unsigned number, bool probe);
void sl__drv_obs_attempt_fail(sl_drv_req_t *rq, void *span, int status, const sl_error_t *e);
void sl__drv_obs_attempt_next(void *span, const char *outcome, uint64_t wait_ms);
void sl__drv_obs_attempt_end(sl_drv_req_t *rq, void *span);
void sl__drv_obs_event(sl_drv_req_t *rq, const char *name, const sl_target_t *t);
const char *sl__drv_obs_trace_id(const sl_drv_req_t *rq);
void sl__drv_obs_record(sl_drv_req_t *rq, const sl_ledger_row_t *row, const sl_usage_t *usage);
void sl__drv_obs_end(sl_drv_req_t *rq, int status);

#endif
