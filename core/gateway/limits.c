/*
 * The shared rate-limit table: 4096 slots of per-key one-second buckets,
 * in the "limits" region of the shared segment (core/base/shm.h). Each slot
 * is a ring of LIMITS_BUCKETS buckets indexed by second modulo the ring;
 * head is the newest second written, and moving it forward clears the
 * seconds skipped.
 */
#include "core/gateway/limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "core/base/log.h"
#include "core/base/shm.h"

#define LIMITS_SLOTS   4096 /* power of two */
#define LIMITS_PROBE   32   /* slots tried before giving up */
#define LIMITS_BUCKETS 61   /* seconds: the current one and the 60 before it */
#define LIMITS_MAGIC   0x736c6c6d31ULL

typedef struct limits_slot {
    _Atomic uint64_t key; /* hash of the key id; 0 = free */
    pthread_mutex_t lock; /* guards what follows */
    int64_t head;         /* unix second of the newest bucket */
    uint32_t requests[LIMITS_BUCKETS];
    uint32_t tokens[LIMITS_BUCKETS];
} limits_slot_t;

typedef struct limits_table {
    uint64_t magic; /* LIMITS_MAGIC once the mutexes are made */
    atomic_bool full_logged;
    limits_slot_t slots[LIMITS_SLOTS];
} limits_table_t;

static limits_table_t *limits;

static uint64_t limits_hash(const char *s);
static limits_slot_t *limits_slot(const char *key_id);
static void limits_lock(limits_slot_t *s);
static void limits_advance(limits_slot_t *s, int64_t sec);
static uint64_t limits_wait(const uint32_t *counts, const limits_slot_t *s, uint64_t sum,
                            uint64_t limit, int64_t now_ms);
static uint32_t limits_sat_add(uint32_t a, uint64_t b);


int
sl_limits_init(void)
{
    pthread_mutexattr_t attr;
    int rc;

    if (limits != NULL) {
        return 0;
    }
    /* a fresh region is zero; an existing one (a reload) keeps its windows and mutexes */
    limits = sl_shm_region("limits", sizeof(limits_table_t));
    if (limits == NULL) {
        return -ENOMEM;
    }
    if (limits->magic == LIMITS_MAGIC) {
        return 0;
    }
    rc = pthread_mutexattr_init(&attr);
    if (rc == 0) {
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    }
    if (rc == 0) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    for (size_t i = 0; rc == 0 && i < LIMITS_SLOTS; i++) {
        rc = pthread_mutex_init(&limits->slots[i].lock, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        sl_log(NULL, SL_LOG_EMERG, rc, "pthread_mutex_init() for the rate limit table failed");
        limits = NULL;
        return -rc;
    }
    limits->magic = LIMITS_MAGIC;
    return 0;
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


/* A holder that died mid-update left counts at worst one request off: take the lock on. */
static void
limits_lock(limits_slot_t *s)
{
    if (pthread_mutex_lock(&s->lock) == EOWNERDEAD) {
        pthread_mutex_consistent(&s->lock);
    }
}


/* Makes sec the newest bucket, clearing the seconds in between (or all, after a minute). */
static void
limits_advance(limits_slot_t *s, int64_t sec)
{
    int64_t from;

    if (sec <= s->head) {
        return; /* the same second, or a clock a little behind another worker's */
    }
    from = sec - s->head >= LIMITS_BUCKETS ? sec - LIMITS_BUCKETS + 1 : s->head + 1;
    for (int64_t t = from; t <= sec; t++) {
        s->requests[t % LIMITS_BUCKETS] = 0;
        s->tokens[t % LIMITS_BUCKETS] = 0;
    }
    s->head = sec;
}


/*
 * Milliseconds until the window's sum of counts falls below limit: the
 * oldest buckets leave it one second at a time, bucket of second b at the
 * start of second b + LIMITS_BUCKETS.
 */
static uint64_t
limits_wait(const uint32_t *counts, const limits_slot_t *s, uint64_t sum, uint64_t limit,
            int64_t now_ms)
{
    uint64_t gone = 0;
    int64_t at;

    for (int64_t b = s->head - LIMITS_BUCKETS + 1; b <= s->head; b++) {
        gone += counts[((b % LIMITS_BUCKETS) + LIMITS_BUCKETS) % LIMITS_BUCKETS];
        if (sum - gone < limit) {
            at = (b + LIMITS_BUCKETS) * 1000;
            return at > now_ms ? (uint64_t) (at - now_ms) : 1;
        }
    }
    return (uint64_t) LIMITS_BUCKETS * 1000; /* not reached: everything leaves by then */
}


bool
sl_limits_admit(const char *key_id, uint64_t rpm, uint64_t tpm, int64_t now_ms,
                uint64_t *retry_after_ms, const char **which)
{
    uint64_t reqs = 0, toks = 0, wait = 0, w;
    limits_slot_t *s;

    if ((rpm == 0 && tpm == 0) || limits == NULL || key_id == NULL || *key_id == '\0') {
        return true;
    }
    s = limits_slot(key_id);
    if (s == NULL) {
        return true;
    }
    limits_lock(s);
    limits_advance(s, now_ms / 1000);
    for (size_t i = 0; i < LIMITS_BUCKETS; i++) {
        reqs += s->requests[i];
        toks += s->tokens[i];
    }
    if (tpm != 0 && toks >= tpm) {
        wait = limits_wait(s->tokens, s, toks, tpm, now_ms);
        *which = "tokens";
    }
    if (rpm != 0 && reqs >= rpm) {
        w = limits_wait(s->requests, s, reqs, rpm, now_ms);
        if (w > wait) {
            wait = w;
            *which = "requests";
        }
    }
    if (wait == 0 && rpm != 0) { /* a tokens-only check (after a cache miss) counts no request */
        s->requests[s->head % LIMITS_BUCKETS] =
            limits_sat_add(s->requests[s->head % LIMITS_BUCKETS], 1);
    }
    pthread_mutex_unlock(&s->lock);
    if (wait != 0) {
        *retry_after_ms = wait;
        return false;
    }
    return true;
}


void
sl_limits_add_tokens(const char *key_id, uint64_t tokens, int64_t now_ms)
{
    limits_slot_t *s;

    if (limits == NULL || key_id == NULL || *key_id == '\0' || tokens == 0) {
        return;
    }
    s = limits_slot(key_id);
    if (s == NULL) {
        return;
    }
    limits_lock(s);
    limits_advance(s, now_ms / 1000);
    s->tokens[s->head % LIMITS_BUCKETS] =
        limits_sat_add(s->tokens[s->head % LIMITS_BUCKETS], tokens);
    pthread_mutex_unlock(&s->lock);
}


static uint32_t
limits_sat_add(uint32_t a, uint64_t b)
{
    return b >= (uint64_t) (UINT32_MAX - a) ? UINT32_MAX : (uint32_t) (a + b);
}
