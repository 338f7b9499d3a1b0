/*
 * The shared rate-limit table: 4096 slots of per-key minute counters, in
 * the "limits" region of the shared segment (core/base/shm.h).
 */
#include "core/gateway/limits.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "core/base/log.h"
#include "core/base/shm.h"

#define LIMITS_SLOTS 4096 /* power of two */
#define LIMITS_PROBE 32   /* slots tried before giving up */

typedef struct limits_slot {
    _Atomic uint64_t key;    /* hash of the key id; 0 = free */
    _Atomic uint64_t window; /* minute number the counters belong to */
    _Atomic uint64_t requests;
    _Atomic uint64_t tokens;
} limits_slot_t;

typedef struct limits_table {
    limits_slot_t slots[LIMITS_SLOTS];
    atomic_bool full_logged;
} limits_table_t;

static limits_table_t *limits;

static uint64_t limits_hash(const char *s);
static limits_slot_t *limits_slot(const char *key_id);
static void limits_roll(limits_slot_t *s, uint64_t window);


int
sl_limits_init(void)
{
    if (limits != NULL) {
        return 0;
    }
    /* a fresh region is zero: every slot is free; an existing one keeps its windows */
    limits = sl_shm_region("limits", sizeof(limits_table_t));
    return limits != NULL ? 0 : -ENOMEM;
}


size_t
sl_limits_shm_size(void)
{
    return sizeof(limits_table_t);
}


/* FNV-1a, never 0 (0 marks a free slot). */
static uint64_t
limits_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ull;
    }
    return h == 0 ? 1 : h;
}


static limits_slot_t *
limits_slot(const char *key_id)
{
    uint64_t h = limits_hash(key_id);

    for (unsigned i = 0; i < LIMITS_PROBE; i++) {
        limits_slot_t *s = &limits->slots[(h + i) & (LIMITS_SLOTS - 1)];
        uint64_t cur = atomic_load_explicit(&s->key, memory_order_acquire);
        uint64_t zero = 0;

        if (cur == h) {
            return s;
        }
        if (cur == 0 && atomic_compare_exchange_strong(&s->key, &zero, h)) {
            return s;
        }
        if (zero == h) {
            return s; /* another worker claimed it for the same key just now */
        }
    }
    if (!atomic_exchange(&limits->full_logged, true)) {
        sl_log(NULL, SL_LOG_WARN, 0, "rate limit table is full: some keys are not limited");
    }
    return NULL;
}


/* Starts a new window when the minute changed; the first worker to see it wins. */
static void
limits_roll(limits_slot_t *s, uint64_t window)
{
    uint64_t old = atomic_load_explicit(&s->window, memory_order_acquire);

    if (old != window && atomic_compare_exchange_strong(&s->window, &old, window)) {
        atomic_store_explicit(&s->requests, 0, memory_order_release);
        atomic_store_explicit(&s->tokens, 0, memory_order_release);
    }
}


bool
sl_limits_admit(const char *key_id, uint64_t rpm, uint64_t tpm, int64_t now, unsigned *retry_after,
                const char **which)
{
    uint64_t window = (uint64_t) now / 60;
    limits_slot_t *s;

    if ((rpm == 0 && tpm == 0) || limits == NULL || key_id == NULL || *key_id == '\0') {
        return true;
    }
    s = limits_slot(key_id);
    if (s == NULL) {
        return true;
    }
    limits_roll(s, window);
    *retry_after = (unsigned) (60 - (uint64_t) now % 60);
    if (tpm != 0 && atomic_load_explicit(&s->tokens, memory_order_relaxed) >= tpm) {
        *which = "tokens";
        return false;
    }
    if (rpm != 0 && atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed) >= rpm) {
        atomic_fetch_sub_explicit(&s->requests, 1, memory_order_relaxed);
        *which = "requests";
        return false;
    }
    return true;
}


void
sl_limits_add_tokens(const char *key_id, uint64_t tokens, int64_t now)
{
    limits_slot_t *s;

    if (limits == NULL || key_id == NULL || *key_id == '\0' || tokens == 0) {
        return;
    }
    s = limits_slot(key_id);
    if (s == NULL) {
        return;
    }
    limits_roll(s, (uint64_t) now / 60);
    atomic_fetch_add_explicit(&s->tokens, tokens, memory_order_relaxed);
}
