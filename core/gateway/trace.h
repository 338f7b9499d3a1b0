/*
 * W3C Trace Context for the gateway: the `traceparent` header clients send
 * and sluice sends upstream (version 00: 00-<32 hex trace id>-<16 hex
 * parent id>-<2 hex flags>), new trace and span ids, and the sampling
 * decision (OpenTelemetry's TraceIdRatioBased, optionally parent-based).
 *
 * Pure functions but for sl_trace_new_id, which keeps a per-process
 * generator (seeded from the DRBG, again after a fork). Worker context.
 */
#ifndef SL_CORE_GATEWAY_TRACE_H
#define SL_CORE_GATEWAY_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/str.h"

#define SL_TRACE_HEADER_LEN 55 /* a version-00 traceparent value */
#define SL_TRACE_SAMPLED    0x01u

/* A trace context as a traceparent carries it. */
typedef struct sl_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;
} sl_trace_ctx_t;

/*
 * Parses a traceparent value into *out. Accepts version 00 exactly and,
 * as the specification asks, a higher version whose first four fields
 * parse (more may follow after a '-'); refuses version ff, upper-case hex,
 * all-zero ids and anything else. Returns 0 or SL_EPARSE.
 */
int sl_trace_parse(sl_str_t v, sl_trace_ctx_t *out);

/* Writes "00-<trace>-<span>-<flags>" and a NUL into out. */
void sl_trace_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                     char out[SL_TRACE_HEADER_LEN + 1]);

/*
 * Whether a trace with this id is recorded at ratio (0..1): its last eight
 * bytes, read as a number, below ratio of their range; the same id gives
 * the same answer in every process, as TraceIdRatioBased does.
 */
bool sl_trace_sample(const uint8_t trace_id[16], double ratio);

/* Fills id with n random bytes, never all zero. */
void sl_trace_new_id(uint8_t *id, size_t n);

/* Lower-case hex of n bytes and a NUL into out (2n + 1 bytes). */
void sl_trace_hex(const uint8_t *p, size_t n, char *out);

#endif
