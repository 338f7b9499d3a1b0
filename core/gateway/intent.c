/*
 * The shared intent table: a header, one owner word per entry (the pid
 * that claimed it, 0 when free) and the entries, in one anonymous
 * MAP_SHARED mapping made before the first fork, so every worker of every
 * generation sees it at the same address.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */

#include "core/gateway/intent.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/base/pid.h"
#include "core/admin/metrics.h"
#include "core/base/shm.h"

typedef struct intent_table {
    size_t capacity;
    _Atomic size_t high;     /* one past the highest index ever claimed: scans stop there */
    atomic_bool full_logged; /* "table is full" said since the last successful claim */
} intent_table_t;

static intent_table_t *intent_tab;
static _Atomic int32_t *intent_owner;
static sl_intent_t *intent_entries;

static size_t intent_align(size_t n);
static void intent_reset(sl_intent_t *in);


static size_t
intent_align(size_t n)
{
    return (n + 63) & ~(size_t) 63;
}


size_t
sl_intent_shm_size(size_t capacity)
{
    if (capacity == 0) {
        capacity = 1;
    }
    return intent_align(sizeof(intent_table_t)) + intent_align(capacity * sizeof(int32_t))
           + capacity * sizeof(sl_intent_t);
}


int
sl_intent_init(size_t capacity)
{
    size_t owners;
    char *p;

    if (intent_tab != NULL) {
        return 0;
    }
    if (capacity == 0) {
        capacity = 1;
    }
    owners = intent_align(sizeof(intent_table_t)) + intent_align(capacity * sizeof(int32_t));
    /* a region of the shared segment: its pages are committed as entries are first used */
    p = sl_shm_region("intents", sl_intent_shm_size(capacity));
    if (p == NULL) {
        return -ENOMEM;
    }
    /* anonymous memory is zero: every owner word says free */
    intent_tab = (intent_table_t *) p;
    intent_tab->capacity = capacity;
    intent_owner = (_Atomic int32_t *) (p + intent_align(sizeof(intent_table_t)));
    intent_entries = (sl_intent_t *) (p + owners);
    return 0;
}


size_t
sl_intent_capacity(void)
{
    return intent_tab != NULL ? intent_tab->capacity : 0;
}


sl_intent_t *
sl_intent_open(void)
{
    int32_t pid, cur;
    size_t high;
    sl_intent_t *in;

    if (intent_tab == NULL) {
        return NULL;
    }
    pid = (int32_t) sl_pid();
    for (size_t i = 0; i < intent_tab->capacity; i++) {
        cur = atomic_load_explicit(&intent_owner[i], memory_order_relaxed);
        if (cur != 0 || !atomic_compare_exchange_strong(&intent_owner[i], &cur, pid)) {
            continue;
        }
        high = atomic_load(&intent_tab->high);
        while (high < i + 1 && !atomic_compare_exchange_weak(&intent_tab->high, &high, i + 1)) {
        }
        in = &intent_entries[i];
        intent_reset(in);
        /* a reader after our death sees a zeroed entry or an open one, never a stale one */
        atomic_thread_fence(memory_order_release);
        in->state = SL_INTENT_OPEN;
        if (atomic_load_explicit(&intent_tab->full_logged, memory_order_relaxed)) {
            atomic_store(&intent_tab->full_logged, false);
        }
        return in;
    }
    sl_metric_add(SL_METRIC_INTENTS_FULL, 1);
    if (!atomic_exchange(&intent_tab->full_logged, true)) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "the intent table is full (%zu entries): requests go on without one, so a worker "
               "killed now loses their ledger rows; restart sluice to size it for the current "
               "workers and max_connections",
               intent_tab->capacity);
    }
    return NULL;
}


/*
 * Zeroes the entry's numbers and empties its strings: the bytes past a
 * string's NUL are never read, so the ~800 bytes of text need not be
 * cleared (every request clears its entry).
 */
static void
intent_reset(sl_intent_t *in)
{
    /* the numbers come first, then these strings and nothing else */
    _Static_assert(offsetof(sl_intent_t, target_model) + sizeof(in->target_model)
                           - offsetof(sl_intent_t, request_id)
                       == sizeof(in->request_id) + sizeof(in->key_id) + sizeof(in->key_name)
                              + sizeof(in->team) + sizeof(in->endpoint) + sizeof(in->provider)
                              + sizeof(in->model) + sizeof(in->target_model),
                   "sl_intent_t: a field among the strings that intent_reset does not clear");
    _Static_assert(sizeof(sl_intent_t) - offsetof(sl_intent_t, target_model)
                           - sizeof(in->target_model)
                       < _Alignof(sl_intent_t),
                   "sl_intent_t: a field after the strings that intent_reset does not clear");

    memset(in, 0, offsetof(sl_intent_t, request_id));
    in->request_id[0] = '\0';
    in->key_id[0] = '\0';
    in->key_name[0] = '\0';
    in->team[0] = '\0';
    in->endpoint[0] = '\0';
    in->provider[0] = '\0';
    in->model[0] = '\0';
    in->target_model[0] = '\0';
}


void
sl_intent_update(sl_intent_t *in, uint64_t relayed)
{
    if (in == NULL) {
        return;
    }
    in->flags |= SL_INTENT_SENT;
    in->relayed = relayed;
}


void
sl_intent_close(sl_intent_t *in)
{
    size_t i;

    if (in == NULL || intent_tab == NULL) {
        return;
    }
    i = (size_t) (in - intent_entries);
    in->state = 0;
    atomic_store_explicit(&intent_owner[i], 0, memory_order_release);
}


size_t
sl_intent_scan(pid_t pid, void (*cb)(void *arg, sl_intent_t *in), void *arg)
{
    size_t high, n = 0;

    if (intent_tab == NULL || pid <= 0) {
        return 0;
    }
    high = atomic_load(&intent_tab->high);
    for (size_t i = 0; i < high; i++) {
        if (atomic_load_explicit(&intent_owner[i], memory_order_acquire) == (int32_t) pid) {
            n++;
            cb(arg, &intent_entries[i]);
        }
    }
    return n;
}


void
sl_intent_str(char *field, size_t size, const char *s)
{
    sl_intent_strn(field, size, s, s != NULL ? strlen(s) : 0);
}


void
sl_intent_strn(char *field, size_t size, const char *s, size_t len)
{
    if (len >= size) {
        len = size - 1;
        /* do not cut a UTF-8 sequence in half */
        while (len > 0 && ((unsigned char) s[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    if (len > 0) {
        memcpy(field, s, len);
    }
    field[len] = '\0';
}
