/*
 * One-shot timers whose memory is not tied to a pool: a request can arm
 * one and forget it when the request ends, without waiting for a libuv
 * close callback before its pool goes (the timer frees itself after its
 * handle closed).
 *
 * Worker context, on the loop's thread.
 */
#ifndef SL_CORE_BASE_TIMER_H
#define SL_CORE_BASE_TIMER_H

#include <stdint.h>

#include <uv.h>

typedef struct sl_timer sl_timer_t;

typedef void (*sl_timer_cb)(void *data);

/*
 * Calls cb(data) once, ms milliseconds from now (0: on the next loop
 * turn). The timer is valid until cb starts or sl_timer_cancel returns.
 * Aborts on OOM (worker).
 */
sl_timer_t *sl_timer_start(uv_loop_t *loop, uint64_t ms, sl_timer_cb cb, void *data);

/* Stops a timer that has not fired: cb never runs. NULL is a no-op. */
void sl_timer_cancel(sl_timer_t *t);

#endif
