/*
 * The time of the event being handled, read once per event callback as
 * nginx reads its time once per loop turn: a clock read costs ~30 ns on a
 * paravirtualized machine, and one request used to read the clocks about
 * 24 times (arrival, attempt, upstream send, first byte, limits, ledger,
 * traces), most of them inside the same callback.
 *
 * The loop's entry points that carry requests (a client's or an
 * upstream's read, the call and one-shot timers, the ended calls'
 * on_done, the ledger's group commit, a client write's completion) bracket
 * their work with sl_clock_enter() and sl_clock_leave(). Inside a bracket the first
 * sl_clock_ns() or sl_clock_real_ns() reads its clock and the rest of the
 * callback gets that instant; outside one (another callback, another
 * thread, the master) every call reads the clock. So an instant is never
 * older than the callback that uses it, and a duration measured across
 * callbacks is exact to within one callback's run. A duration inside one
 * callback (how long a commit took) must read uv_hrtime() itself.
 *
 * Per thread (thread-local): a thread-pool job never sees the loop's
 * bracket. Base layer: depends on nothing above it.
 */
#ifndef SL_CORE_BASE_CLOCK_H
#define SL_CORE_BASE_CLOCK_H

#include <stdint.h>

/* Opens a bracket (nested brackets share the outermost one's instant). */
void sl_clock_enter(void);

/* Closes it; the outermost close forgets the instant. */
void sl_clock_leave(void);

/*
 * Drops the bracket's instant, so the next read reads the clock: for a
 * callback that has just waited (a commit) before what it times next.
 */
void sl_clock_forget(void);

/* Monotonic nanoseconds (uv_hrtime()'s clock): the callback's instant inside a bracket. */
uint64_t sl_clock_ns(void);

/* Unix time in nanoseconds (CLOCK_REALTIME): the callback's instant inside a bracket. */
uint64_t sl_clock_real_ns(void);

/* sl_clock_real_ns() in milliseconds. */
static inline uint64_t
sl_clock_ms(void)
{
    return sl_clock_real_ns() / 1000000;
}

#endif
