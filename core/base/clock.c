/*
 * Clock reads cached per event callback (see clock.h).
 */
#include "core/base/clock.h"

#include <stdbool.h>
#include <time.h>

#include <uv.h>

#include "core/base/log.h"

typedef struct {
    unsigned depth; /* open brackets */
    bool have_ns;   /* ns was read in the current bracket */
    bool have_real;
    uint64_t ns;   /* monotonic, as uv_hrtime() */
    uint64_t real; /* unix time, ns */
} clock_state_t;

static _Thread_local clock_state_t clock_now;


void
sl_clock_enter(void)
{
    clock_now.depth++;
}


void
sl_clock_leave(void)
{
    /* unbalanced brackets would pin a stale instant on every later callback */
    SL_ASSERT(clock_now.depth > 0);
    if (--clock_now.depth == 0) {
        sl_clock_forget();
    }
}


void
sl_clock_forget(void)
{
    clock_now.have_ns = false;
    clock_now.have_real = false;
}


uint64_t
sl_clock_ns(void)
{
    uint64_t ns;

    if (clock_now.have_ns) {
        return clock_now.ns;
    }
    ns = uv_hrtime();
    if (clock_now.depth > 0) {
        clock_now.ns = ns;
        clock_now.have_ns = true;
    }
    return ns;
}


uint64_t
sl_clock_real_ns(void)
{
    struct timespec ts;
    uint64_t ns;

    if (clock_now.have_real) {
        return clock_now.real;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ns = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
    if (clock_now.depth > 0) {
        clock_now.real = ns;
        clock_now.have_real = true;
    }
    return ns;
}
