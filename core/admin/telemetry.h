/*
 * The worker's trace exporter: finished spans (core/admin/otlp.h) are
 * encoded at once into a bounded per-worker queue and sent to the OTLP/HTTP
 * collector of telemetry.otlp in batches (batch_size spans, or whatever is
 * waiting every flush_interval), one export at a time, through an upstream
 * client of its own (core/http/upstream.h: keep-alive, TLS, timeouts). A
 * request never waits for any of it: a full queue drops the span, a failed
 * export drops its batch, both counted in /metrics
 * (sluice_trace_spans_dropped_total), and after a failure the exporter
 * rests (doubling up to 30 s) so an unreachable collector costs one
 * connection attempt per pause, not one per span.
 *
 * Worker context. One exporter per worker process.
 */
#ifndef SL_CORE_ADMIN_TELEMETRY_H
#define SL_CORE_ADMIN_TELEMETRY_H

#include <stdbool.h>

#include <uv.h>

#include "core/admin/otlp.h"
#include "core/conf/conf.h"

typedef struct sl_telemetry sl_telemetry_t;

/*
 * Creates the exporter for conf->otlp on loop (conf must outlive it).
 * Returns NULL when export is off, or on failure (logged: the worker then
 * serves without exporting).
 */
sl_telemetry_t *sl_telemetry_create(uv_loop_t *loop, const sl_conf_t *conf);

/*
 * Queues one finished span of this worker's exporter (encoded now; s may go
 * right after). Dropped, and counted, when the queue is full; a no-op
 * without an exporter.
 */
void sl_telemetry_add(const sl_otlp_span_t *s);

/*
 * The worker stops: sends what is queued (one last export, bounded by the
 * timeout) and stops the timer. NULL is a no-op.
 */
void sl_telemetry_shutdown(sl_telemetry_t *t);

/*
 * Cancels an export in flight and releases the exporter once its handles
 * closed (run the loop afterwards). NULL is a no-op.
 */
void sl_telemetry_destroy(sl_telemetry_t *t);

#endif
