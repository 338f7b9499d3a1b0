/*
 * Self-freeing one-shot timers on libuv.
 */
#include "core/base/timer.h"

#include <stdlib.h>

#include "core/base/clock.h"
#include "core/base/pool.h"

struct sl_timer {
    uv_timer_t handle;
    sl_timer_cb cb;
    void *data;
};

static void timer_on_fire(uv_timer_t *h);
static void timer_on_fire_run(uv_timer_t *h);
static void timer_on_close(uv_handle_t *h);


sl_timer_t *
sl_timer_start(uv_loop_t *loop, uint64_t ms, sl_timer_cb cb, void *data)
{
    sl_timer_t *t = sl_xmalloc(sizeof(*t));

    t->cb = cb;
    t->data = data;
    uv_timer_init(loop, &t->handle);
    t->handle.data = t;
    uv_timer_start(&t->handle, timer_on_fire, ms, 0);
    return t;
}


void
sl_timer_cancel(sl_timer_t *t)
{
    if (t == NULL) {
        return;
    }
    uv_timer_stop(&t->handle);
    uv_close((uv_handle_t *) &t->handle, timer_on_close);
}


/* The callback with the clock read once for its whole run (core/base/clock.h). */
static void
timer_on_fire(uv_timer_t *h)
{
    sl_clock_enter();
    timer_on_fire_run(h);
    sl_clock_leave();
}


static void
timer_on_fire_run(uv_timer_t *h)
{
    sl_timer_t *t = h->data;

    uv_close((uv_handle_t *) &t->handle, timer_on_close);
    t->cb(t->data);
}


static void
timer_on_close(uv_handle_t *h)
{
    free(h->data);
}
