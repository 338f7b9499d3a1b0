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
#include "core/gateway/driver.h"
#include "core/gateway/frontend.h"
#include "core/gateway/frontend_internal.h"
#include "core/gateway/features.h"
#include "core/http/http_server.h"
#include "core/gateway/router.h"
#include "core/base/sse.h"
#include "core/base/timer.h"
#include "core/http/upstream.h"
#include "providers/provider.h"

typedef struct sl_drv_req sl_drv_req_t;
typedef struct sl_drv_attempt sl_drv_attempt_t;

struct sl_driver {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    sl_upstream_t *up;
    sl_db_t *db;
    char *models_body; /* GET /v1/models answer, built once per generation */
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
    const char *retry_after; /* Retry-After for the client, or NULL */

    /* work off the loop (decoding or a DOM of a large body) */
    uv_work_t work;
    bool working;  /* work is queued or running: the request waits for it */
    bool gone;     /* the client went away while it ran */
    int decode_rc; /* the frontend's decode, when it ran off the loop */
    sl_error_t decode_err;

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
    bool linked;
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

/* The request's one ledger row (usage NULL: none used). */
void sl__drv_record(sl_drv_req_t *rq, int status, const sl_usage_t *usage);

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

#endif
