/*
 * The request driver: the client API routes (/v1/chat/completions,
 * /v1/embeddings, /v1/messages, /v1/models, /healthz) and the phases every
 * proxied request goes through, in order:
 *
 *   frontend decode -> auth -> policy (rpm/tpm, model allow-list)
 *     -> plan (the router's ordered targets) -> attempts (reserve, adapter
 *     encode, upstream, adapter decode into typed events, commit on the
 *     first real output, frontend encode) -> record (usage, price, ledger
 *     row with the budget settlement) -> the response's last bytes
 *
 * The driver owns the per-request state; an attempt owns the per-target
 * state and is thrown away and replaced, invisibly to the client, until
 * the commit point (a whole JSON answer, or a stream's first content or
 * tool-call delta). After it a failure ends the stream with an in-band
 * error event and never a clean end.
 *
 * Worker context. One driver per worker process.
 */
#ifndef SL_CORE_GATEWAY_DRIVER_H
#define SL_CORE_GATEWAY_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/conf/conf.h"
#include "core/http/http_server.h"
#include "core/http/upstream.h"
#include "storage/db.h"

typedef struct sl_driver sl_driver_t;

/*
 * Creates the worker's driver; conf, up and db (NULL: no storage: static
 * keys only, no ledger) must outlive it. Returns NULL on failure (logged).
 * Only one may exist per process.
 */
sl_driver_t *sl_driver_create(uv_loop_t *loop, const sl_conf_t *conf, sl_upstream_t *up,
                              sl_db_t *db);

/* Frees it; every request must be finished. NULL is a no-op. */
void sl_driver_destroy(sl_driver_t *d);

/* The route table for sl_http_server_create; static storage. */
const sl_http_route_t *sl_driver_routes(size_t *n);

/* Requests handled so far (for the exit log line). */
uint64_t sl_driver_requests(const sl_driver_t *d);

/*
 * Ends every stream in flight with an in-band error event (no clean end):
 * the drain deadline passed and the connections are about to be closed.
 */
void sl_driver_cut_streams(sl_driver_t *d, const char *why);

#endif
