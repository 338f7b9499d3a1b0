/*
 * The client API handlers: /v1/chat/completions, /v1/embeddings, /v1/messages
 * (Anthropic shape in and out, through the same pipeline), /v1/models,
 * /healthz. Authenticates the client, parses and checks the body, routes the
 * model to a target, has the provider adapter build the upstream request,
 * sends it with the upstream client and relays the answer (streams event by
 * event, never buffered whole).
 *
 * Worker context. One proxy per worker process.
 */
#ifndef SL_CORE_PROXY_H
#define SL_CORE_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/conf.h"
#include "core/http_server.h"
#include "core/upstream.h"
#include "storage/db.h"

typedef struct sl_proxy sl_proxy_t;

/*
 * Creates the worker's proxy state; conf, up and db (NULL: no storage)
 * must outlive it. Returns
 * NULL on failure (logged). Only one may exist per process.
 */
sl_proxy_t *sl_proxy_create(uv_loop_t *loop, const sl_conf_t *conf, sl_upstream_t *up, sl_db_t *db);

/* Frees it; every request must be finished. NULL is a no-op. */
void sl_proxy_destroy(sl_proxy_t *px);

/* The route table for sl_http_server_create; static storage. */
const sl_http_route_t *sl_proxy_routes(size_t *n);

/* Requests handled so far (for the exit log line). */
uint64_t sl_proxy_requests(const sl_proxy_t *px);

#endif
