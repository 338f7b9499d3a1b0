/*
 * The shared-memory implementation of core/gateway/state.h: one region "state" of
 * the shared segment holding a header (table sizes, the retry budget's
 * buckets, the owners of the in-flight columns), an open-addressing table
 * of targets, one of credentials, and the in-flight counters, one column
 * per process. Every field is a C11 atomic; nothing is ever locked.
 *
 * A slot is claimed by a CAS of its key (the name's hash) from 0, then its
 * name is written and "ready" is set with release order; readers that see
 * the key but not "ready" treat the target as stateless for that one call.
 * Slots are never freed: a target removed by a reload keeps its slot, and
 * gets its state back if it is configured again.
 */
#include "core/gateway/state.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/base/clock.h"
#include "core/base/log.h"
#include "core/base/pid.h"
#include "core/base/shm.h"

#define STATE_MIN_TARGETS 256
#define STATE_MIN_CREDS   64
#define STATE_MIN_COLS    64
#define STATE_MAX_COLS    1024
#define STATE_PROBE       64 /* slots tried before giving up */

/* The breaker word: state in the low 2 bits, a time in ms above them. */
#define STATE_BRK(st, ms)  (((uint64_t) (ms) << 2) | (uint64_t) (st))
#define STATE_BRK_STATE(w) ((sl_breaker_state_e) ((w) &3u))
#define STATE_BRK_TIME(w)  ((w) >> 2)

typedef struct state_name {
    _Atomic uint64_t key;         /* FNV-1a of the full name, never 0; 0 = free */
    _Atomic uint32_t ready;       /* 1 once name is written */
    uint32_t len;                 /* full length of the name */
    uint32_t keep;                /* bytes of it kept in name */
    char name[SL_STATE_NAME_MAX]; /* NUL-terminated; a long name is cut at
                                     SL_STATE_NAME_MAX - 1 bytes or the UTF-8
                                     character boundary before */
} state_name_t;

struct sl_state_target {
    state_name_t id;
    _Atomic uint64_t breaker; /* STATE_BRK(state, time) */
    _Atomic uint32_t fails;   /* consecutive failures */
    _Atomic uint64_t lat_us;  /* EWMA; 0 unknown */
    _Atomic uint64_t ttft_us; /* EWMA; 0 unknown */
    _Atomic uint64_t req_rem; /* remaining requests + 1; 0 unknown */
    _Atomic uint64_t tok_rem; /* remaining tokens + 1; 0 unknown */
    _Atomic uint64_t req_reset;
    _Atomic uint64_t tok_reset;
};

struct sl_state_cred {
    state_name_t id;
    _Atomic uint64_t until; /* cooling down until, unix ms */
};

typedef struct state_bucket {
    _Atomic uint64_t sec; /* the second this bucket counts */
    _Atomic uint64_t requests;
    _Atomic uint64_t retries;
} state_bucket_t;

typedef struct state_header {
    uint32_t ntargets;     /* power of two */
    uint32_t ncreds;       /* power of two */
    uint32_t ncols;        /* in-flight columns; column 0 is shared by processes that found none */
    _Atomic uint32_t lazy; /* targets claimed by workers rather than registered by the master */
    atomic_bool full_targets_logged;
    atomic_bool full_creds_logged;
    atomic_bool full_cols_logged;
    state_bucket_t budget[SL_STATE_RETRY_WINDOW];
} state_header_t;

typedef struct state {
    state_header_t *hdr;
    _Atomic int32_t *owners; /* [ncols]: pid owning each column, 0 = free */
    sl_state_target_t *targets;
    sl_state_cred_t *creds;
    _Atomic int32_t *inflight; /* [ntargets][ncols] */
} state_t;

static state_t st;
static int state_col = -1; /* this process's in-flight column */
static pid_t state_pid;    /* the process that claimed state_col (fork copies it) */

static void state_sizes(const sl_conf_t *conf, uint32_t *ntargets, uint32_t *ncreds,
                        uint32_t *ncols);
static size_t state_layout(uint32_t ntargets, uint32_t ncreds, uint32_t ncols, size_t *owners,
                           size_t *targets, size_t *creds, size_t *inflight);
static uint32_t state_pow2(size_t n);
static uint64_t state_hash2(const char *a, size_t alen, char sep, const char *b, size_t blen);
static bool state_name_eq(const state_name_t *id, const char *a, size_t alen, char sep,
                          const char *b, size_t blen);
static void state_name_set(state_name_t *id, const char *a, size_t alen, char sep, const char *b,
                           size_t blen);
static size_t state_compose(char *buf, const char *a, size_t alen, char sep, const char *b,
                            size_t blen);
static sl_state_target_t *state_target(const char *provider, const char *model, bool lazy);
static sl_state_cred_t *state_cred(const char *provider, const char *ref);
static void state_ewma(_Atomic uint64_t *v, uint64_t sample);
static uint64_t state_probe_lease(const sl_routing_conf_t *rc);
static unsigned state_column(void);
static state_bucket_t *state_bucket(uint64_t sec);
static void state_register(const sl_conf_t *conf);


static uint32_t
state_pow2(size_t n)
{
    uint32_t p = 1;

    while (p < n && p < (1u << 30)) {
        p <<= 1;
    }
    return p;
}


/* Four times what the configuration needs: room for reloads and direct requests. */
static void
state_sizes(const sl_conf_t *conf, uint32_t *ntargets, uint32_t *ncreds, uint32_t *ncols)
{
    size_t t = 0, c = 0, cols = STATE_MIN_COLS;

    if (conf != NULL) {
        for (size_t i = 0; i < conf->nmodels; i++) {
            t += conf->models[i].ntargets;
            for (size_t r = 0; r < conf->models[i].nrules; r++) {
                t += conf->models[i].rules[r].ntargets;
            }
        }
        for (size_t i = 0; i < conf->nproviders; i++) {
            c += conf->providers[i].napi_keys;
        }
        /* two generations at once during a reload, and a few respawns */
        cols = (size_t) conf->workers * 2 + 8;
    }
    *ntargets = state_pow2(t * 4 > STATE_MIN_TARGETS ? t * 4 : STATE_MIN_TARGETS);
    *ncreds = state_pow2(c * 4 > STATE_MIN_CREDS ? c * 4 : STATE_MIN_CREDS);
    if (cols < STATE_MIN_COLS) {
        cols = STATE_MIN_COLS;
    }
    *ncols = (uint32_t) (cols > STATE_MAX_COLS ? STATE_MAX_COLS : cols);
}


/* Offsets of the parts inside the region; returns its size. */
static size_t
state_layout(uint32_t ntargets, uint32_t ncreds, uint32_t ncols, size_t *owners, size_t *targets,
             size_t *creds, size_t *inflight)
{
    size_t off = (sizeof(state_header_t) + 63) & ~(size_t) 63;

    *owners = off;
    off += ((ncols * sizeof(int32_t)) + 63) & ~(size_t) 63;
    *targets = off;
    off += (size_t) ntargets * sizeof(sl_state_target_t);
    *creds = off;
    off += (size_t) ncreds * sizeof(sl_state_cred_t);
    *inflight = off;
    off += (size_t) ntargets * ncols * sizeof(int32_t);
    return off;
}


size_t
sl_state_shm_size(const sl_conf_t *conf)
{
    uint32_t nt, nc, ncols;
    size_t a, b, c, d;

    state_sizes(conf, &nt, &nc, &ncols);
    return state_layout(nt, nc, ncols, &a, &b, &c, &d);
}


int
sl_state_init(const sl_conf_t *conf)
{
    uint32_t nt, nc, ncols;
    size_t size, owners, targets, creds, inflight;
    char *p;

    if (st.hdr == NULL) {
        state_sizes(conf, &nt, &nc, &ncols);
        size = state_layout(nt, nc, ncols, &owners, &targets, &creds, &inflight);
        p = sl_shm_region("state", size);
        if (p == NULL) {
            return -ENOMEM;
        }
        st.hdr = (state_header_t *) p;
        if (st.hdr->ntargets == 0) {
            /* a fresh region: the sizes are ours */
            st.hdr->ntargets = nt;
            st.hdr->ncreds = nc;
            st.hdr->ncols = ncols;
        }
        state_layout(st.hdr->ntargets, st.hdr->ncreds, st.hdr->ncols, &owners, &targets, &creds,
                     &inflight);
        st.owners = (_Atomic int32_t *) (p + owners);
        st.targets = (sl_state_target_t *) (p + targets);
        st.creds = (sl_state_cred_t *) (p + creds);
        st.inflight = (_Atomic int32_t *) (p + inflight);
    }
    if (conf != NULL) {
        state_register(conf);
    }
    return 0;
}


/* The master claims the slots of everything conf names, outside the lazy quota. */
static void
state_register(const sl_conf_t *conf)
{
    const sl_model_conf_t *m;

    for (size_t i = 0; i < conf->nmodels; i++) {
        m = &conf->models[i];
        for (size_t k = 0; k < m->ntargets; k++) {
            state_target(m->targets[k].provider->name, m->targets[k].model, false);
        }
        for (size_t r = 0; r < m->nrules; r++) {
            for (size_t k = 0; k < m->rules[r].ntargets; k++) {
                state_target(m->rules[r].targets[k].provider->name, m->rules[r].targets[k].model,
                             false);
            }
        }
    }
    for (size_t i = 0; i < conf->nproviders; i++) {
        for (size_t k = 0; k < conf->providers[i].napi_keys; k++) {
            state_cred(conf->providers[i].name, conf->providers[i].api_keys[k].ref);
        }
    }
}


uint64_t
sl_state_now(void)
{
    return sl_clock_ms();
}


/* FNV-1a of a, sep, b; never 0 (0 marks a free slot). */
static uint64_t
state_hash2(const char *a, size_t alen, char sep, const char *b, size_t blen)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < alen; i++) {
        h ^= (unsigned char) a[i];
        h *= 1099511628211ull;
    }
    h ^= (unsigned char) sep;
    h *= 1099511628211ull;
    for (size_t i = 0; i < blen; i++) {
        h ^= (unsigned char) b[i];
        h *= 1099511628211ull;
    }
    return h == 0 ? 1 : h;
}


/*
 * Writes a, sep, b into buf (SL_STATE_NAME_MAX bytes), NUL-terminated and
 * cut, when longer, at SL_STATE_NAME_MAX - 1 bytes or the UTF-8 character
 * boundary before; returns the bytes kept.
 */
static size_t
state_compose(char *buf, const char *a, size_t alen, char sep, const char *b, size_t blen)
{
    size_t cut = SL_STATE_NAME_MAX - 1, n = alen < cut ? alen : cut, keep;

    memcpy(buf, a, n);
    if (n < cut) {
        buf[n++] = sep;
    }
    if (n < cut) {
        size_t m = blen < cut - n ? blen : cut - n;

        memcpy(buf + n, b, m);
        n += m;
    }
    keep = n;
    if (alen + 1 + blen > n) {
        /* the first byte left out continues a character: drop that character's start too */
        char next = n < alen ? a[n] : (n == alen ? sep : b[n - alen - 1]);

        while (keep > 0 && ((unsigned char) next & 0xc0) == 0x80) {
            next = buf[--keep];
        }
    }
    buf[keep] = '\0';
    return keep;
}


/* The stored name is a, sep, b (by its full length and kept prefix, for long ones). */
static bool
state_name_eq(const state_name_t *id, const char *a, size_t alen, char sep, const char *b,
              size_t blen)
{
    char buf[SL_STATE_NAME_MAX];
    size_t keep;

    if (id->len != alen + 1 + blen) {
        return false;
    }
    keep = state_compose(buf, a, alen, sep, b, blen);
    return keep == id->keep && memcmp(buf, id->name, keep) == 0;
}


static void
state_name_set(state_name_t *id, const char *a, size_t alen, char sep, const char *b, size_t blen)
{
    id->len = (uint32_t) (alen + 1 + blen);
    id->keep = (uint32_t) state_compose(id->name, a, alen, sep, b, blen);
}


/*
 * Finds or claims the slot of provider/model. lazy: a worker's claim,
 * limited to half the table so configured targets always find room.
 */
static sl_state_target_t *
state_target(const char *provider, const char *model, bool lazy)
{
    size_t plen = strlen(provider), mlen = strlen(model);
    uint64_t h = state_hash2(provider, plen, '/', model, mlen);
    uint32_t mask = st.hdr->ntargets - 1;
    sl_state_target_t *t;
    uint64_t cur;

    for (uint32_t i = 0; i < STATE_PROBE && i <= mask; i++) {
        t = &st.targets[(h + i) & mask];
        cur = atomic_load_explicit(&t->id.key, memory_order_acquire);
        if (cur == 0) {
            if (lazy
                && atomic_load_explicit(&st.hdr->lazy, memory_order_relaxed)
                       >= st.hdr->ntargets / 2) {
                break;
            }
            if (atomic_compare_exchange_strong(&t->id.key, &cur, h)) {
                state_name_set(&t->id, provider, plen, '/', model, mlen);
                atomic_store_explicit(&t->id.ready, 1, memory_order_release);
                if (lazy) {
                    atomic_fetch_add_explicit(&st.hdr->lazy, 1, memory_order_relaxed);
                }
                return t;
            }
            /* lost the race: cur now holds the winner's key */
        }
        if (cur != h) {
            continue;
        }
        if (atomic_load_explicit(&t->id.ready, memory_order_acquire) == 0) {
            return NULL; /* being claimed right now */
        }
        if (state_name_eq(&t->id, provider, plen, '/', model, mlen)) {
            return t;
        }
    }
    if (!atomic_exchange(&st.hdr->full_targets_logged, true)) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "routing state table is full: target \"%s/%s\" and later ones get no breaker, "
               "latency or in-flight state",
               provider, model);
    }
    return NULL;
}


sl_state_target_t *
sl_state_target(const char *provider, const char *model)
{
    if (st.hdr == NULL || provider == NULL || model == NULL) {
        return NULL;
    }
    return state_target(provider, model, true);
}


static sl_state_cred_t *
state_cred(const char *provider, const char *ref)
{
    size_t plen = strlen(provider), rlen = strlen(ref);
    uint64_t h = state_hash2(provider, plen, '/', ref, rlen);
    uint32_t mask = st.hdr->ncreds - 1;
    sl_state_cred_t *c;
    uint64_t cur;

    for (uint32_t i = 0; i < STATE_PROBE && i <= mask; i++) {
        c = &st.creds[(h + i) & mask];
        cur = atomic_load_explicit(&c->id.key, memory_order_acquire);
        if (cur == 0 && atomic_compare_exchange_strong(&c->id.key, &cur, h)) {
            state_name_set(&c->id, provider, plen, '/', ref, rlen);
            atomic_store_explicit(&c->id.ready, 1, memory_order_release);
            return c;
        }
        if (cur != h) {
            continue;
        }
        if (atomic_load_explicit(&c->id.ready, memory_order_acquire) == 0) {
            return NULL;
        }
        if (state_name_eq(&c->id, provider, plen, '/', ref, rlen)) {
            return c;
        }
    }
    if (!atomic_exchange(&st.hdr->full_creds_logged, true)) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "credential state table is full: credential %s of provider \"%s\" and later "
               "ones do not cool down after a 429",
               ref, provider);
    }
    return NULL;
}


sl_state_cred_t *
sl_state_cred(const char *provider, const char *ref)
{
    if (st.hdr == NULL || provider == NULL || ref == NULL) {
        return NULL;
    }
    return state_cred(provider, ref);
}


static uint64_t
state_probe_lease(const sl_routing_conf_t *rc)
{
    uint64_t lease = rc->breaker_cooldown;

    if (rc->first_token_timeout > lease) {
        lease = rc->first_token_timeout;
    }
    return lease > SL_STATE_PROBE_LEASE ? lease : SL_STATE_PROBE_LEASE;
}


sl_breaker_verdict_e
sl_state_breaker_peek(const sl_state_target_t *t, uint64_t now, const sl_routing_conf_t *rc)
{
    uint64_t w;

    if (t == NULL || rc->breaker_failures == 0) {
        return SL_BREAKER_PASS;
    }
    w = atomic_load_explicit(&t->breaker, memory_order_acquire);
    if (STATE_BRK_STATE(w) == SL_BREAKER_CLOSED) {
        return SL_BREAKER_PASS;
    }
    return now >= STATE_BRK_TIME(w) ? SL_BREAKER_PROBE : SL_BREAKER_SKIP;
}


uint64_t
sl_state_breaker_until(const sl_state_target_t *t)
{
    uint64_t w;

    if (t == NULL) {
        return 0;
    }
    w = atomic_load_explicit(&t->breaker, memory_order_acquire);
    return STATE_BRK_STATE(w) == SL_BREAKER_CLOSED ? 0 : STATE_BRK_TIME(w);
}


sl_breaker_verdict_e
sl_state_breaker_enter(sl_state_target_t *t, uint64_t now, const sl_routing_conf_t *rc)
{
    uint64_t w;

    if (t == NULL || rc->breaker_failures == 0) {
        return SL_BREAKER_PASS;
    }
    w = atomic_load_explicit(&t->breaker, memory_order_acquire);
    for (;;) {
        if (STATE_BRK_STATE(w) == SL_BREAKER_CLOSED) {
            return SL_BREAKER_PASS;
        }
        if (now < STATE_BRK_TIME(w)) {
            return SL_BREAKER_SKIP;
        }
        /* a due probe (or a lost one's expired lease): exactly one CAS wins it */
        if (atomic_compare_exchange_weak_explicit(
                &t->breaker, &w, STATE_BRK(SL_BREAKER_HALF_OPEN, now + state_probe_lease(rc)),
                memory_order_acq_rel, memory_order_acquire)) {
            return SL_BREAKER_PROBE;
        }
    }
}


void
sl_state_breaker_success(sl_state_target_t *t, sl_breaker_verdict_e v)
{
    if (t == NULL) {
        return;
    }
    atomic_store_explicit(&t->fails, 0, memory_order_relaxed);
    if (v == SL_BREAKER_PROBE) {
        atomic_store_explicit(&t->breaker, STATE_BRK(SL_BREAKER_CLOSED, 0), memory_order_release);
    }
}


void
sl_state_breaker_failure(sl_state_target_t *t, sl_breaker_verdict_e v, uint64_t now,
                         const sl_routing_conf_t *rc)
{
    uint64_t closed = STATE_BRK(SL_BREAKER_CLOSED, 0);
    uint32_t n;

    if (t == NULL) {
        return;
    }
    n = atomic_fetch_add_explicit(&t->fails, 1, memory_order_relaxed) + 1;
    if (rc->breaker_failures == 0) {
        return;
    }
    if (v == SL_BREAKER_PROBE) {
        atomic_store_explicit(&t->breaker, STATE_BRK(SL_BREAKER_OPEN, now + rc->breaker_cooldown),
                              memory_order_release);
        return;
    }
    if (n >= rc->breaker_failures) {
        /* only a closed breaker opens here: one that is open or probing keeps its time */
        atomic_compare_exchange_strong_explicit(
            &t->breaker, &closed, STATE_BRK(SL_BREAKER_OPEN, now + rc->breaker_cooldown),
            memory_order_acq_rel, memory_order_relaxed);
    }
}


void
sl_state_breaker_release(sl_state_target_t *t, sl_breaker_verdict_e v, uint64_t now)
{
    uint64_t w;

    if (t == NULL || v != SL_BREAKER_PROBE) {
        return;
    }
    w = atomic_load_explicit(&t->breaker, memory_order_acquire);
    if (STATE_BRK_STATE(w) == SL_BREAKER_HALF_OPEN) {
        atomic_compare_exchange_strong_explicit(&t->breaker, &w, STATE_BRK(SL_BREAKER_OPEN, now),
                                                memory_order_acq_rel, memory_order_relaxed);
    }
}


static void
state_ewma(_Atomic uint64_t *v, uint64_t sample)
{
    uint64_t old = atomic_load_explicit(v, memory_order_relaxed), next;

    if (sample == 0) {
        sample = 1; /* 0 means unknown */
    }
    do {
        if (old == 0) {
            next = sample;
        } else {
            /* old + (sample - old) / 8, rounded, in unsigned arithmetic */
            next = (old * ((1u << SL_STATE_EWMA_SHIFT) - 1) + sample
                    + (1u << (SL_STATE_EWMA_SHIFT - 1)))
                   >> SL_STATE_EWMA_SHIFT;
            if (next == 0) {
                next = 1;
            }
        }
    } while (!atomic_compare_exchange_weak_explicit(v, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}


void
sl_state_latency_record(sl_state_target_t *t, uint64_t total_us, uint64_t ttft_us)
{
    if (t == NULL) {
        return;
    }
    /* an hour in microseconds keeps old * 7 far from overflow */
    state_ewma(&t->lat_us, total_us > 3600000000ull ? 3600000000ull : total_us);
    if (ttft_us != 0) {
        state_ewma(&t->ttft_us, ttft_us > 3600000000ull ? 3600000000ull : ttft_us);
    }
}


uint64_t
sl_state_latency(const sl_state_target_t *t, bool stream)
{
    if (t == NULL) {
        return 0;
    }
    return atomic_load_explicit(stream ? &t->ttft_us : &t->lat_us, memory_order_relaxed);
}


/* This process's in-flight column, claimed on first use; 0 (shared) when none is free. */
static unsigned
state_column(void)
{
    pid_t pid = sl_pid();

    if (state_col >= 0 && state_pid == pid) {
        return (unsigned) state_col;
    }
    state_pid = pid;
    for (uint32_t c = 1; c < st.hdr->ncols; c++) {
        int32_t free_col = 0;

        if (atomic_load_explicit(&st.owners[c], memory_order_relaxed) == 0
            && atomic_compare_exchange_strong(&st.owners[c], &free_col, (int32_t) pid)) {
            state_col = (int) c;
            return c;
        }
    }
    if (!atomic_exchange(&st.hdr->full_cols_logged, true)) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "no in-flight column left for process %d: its counts are not cleared if it dies",
               (int) pid);
    }
    state_col = 0;
    return 0;
}


void
sl_state_inflight_add(sl_state_target_t *t, int delta)
{
    size_t slot;

    if (t == NULL) {
        return;
    }
    slot = (size_t) (t - st.targets);
    atomic_fetch_add_explicit(&st.inflight[slot * st.hdr->ncols + state_column()], delta,
                              memory_order_relaxed);
}


uint64_t
sl_state_inflight(const sl_state_target_t *t)
{
    const _Atomic int32_t *row;
    int64_t sum = 0;

    if (t == NULL) {
        return 0;
    }
    row = &st.inflight[(size_t) (t - st.targets) * st.hdr->ncols];
    for (uint32_t c = 0; c < st.hdr->ncols; c++) {
        sum += atomic_load_explicit(&row[c], memory_order_relaxed);
    }
    return sum > 0 ? (uint64_t) sum : 0;
}


void
sl_state_process_exited(pid_t pid)
{
    if (st.hdr == NULL || pid <= 0) {
        return;
    }
    for (uint32_t c = 1; c < st.hdr->ncols; c++) {
        if (atomic_load_explicit(&st.owners[c], memory_order_acquire) != (int32_t) pid) {
            continue;
        }
        /* the owner is dead: nobody else writes this column until it is released */
        for (uint32_t s = 0; s < st.hdr->ntargets; s++) {
            atomic_store_explicit(&st.inflight[(size_t) s * st.hdr->ncols + c], 0,
                                  memory_order_relaxed);
        }
        atomic_store_explicit(&st.owners[c], 0, memory_order_release);
    }
}


void
sl_state_headroom_update(sl_state_target_t *t, const sl_ratelimit_t *rl, uint64_t now)
{
    if (t == NULL) {
        return;
    }
    if (rl->requests_remaining >= 0) {
        atomic_store_explicit(&t->req_reset,
                              rl->requests_reset != 0 ? rl->requests_reset
                                                      : now + SL_STATE_HEADROOM_TTL,
                              memory_order_relaxed);
        atomic_store_explicit(&t->req_rem, (uint64_t) rl->requests_remaining + 1,
                              memory_order_relaxed);
    }
    if (rl->tokens_remaining >= 0) {
        atomic_store_explicit(
            &t->tok_reset, rl->tokens_reset != 0 ? rl->tokens_reset : now + SL_STATE_HEADROOM_TTL,
            memory_order_relaxed);
        atomic_store_explicit(&t->tok_rem, (uint64_t) rl->tokens_remaining + 1,
                              memory_order_relaxed);
    }
}


void
sl_state_headroom_get(const sl_state_target_t *t, uint64_t now, sl_ratelimit_t *out)
{
    uint64_t rem, reset;

    out->requests_remaining = -1;
    out->tokens_remaining = -1;
    out->requests_reset = 0;
    out->tokens_reset = 0;
    if (t == NULL) {
        return;
    }
    rem = atomic_load_explicit(&t->req_rem, memory_order_relaxed);
    reset = atomic_load_explicit(&t->req_reset, memory_order_relaxed);
    if (rem != 0 && now < reset) {
        out->requests_remaining = (int64_t) (rem - 1);
        out->requests_reset = reset;
    }
    rem = atomic_load_explicit(&t->tok_rem, memory_order_relaxed);
    reset = atomic_load_explicit(&t->tok_reset, memory_order_relaxed);
    if (rem != 0 && now < reset) {
        out->tokens_remaining = (int64_t) (rem - 1);
        out->tokens_reset = reset;
    }
}


bool
sl_state_headroom_low(const sl_state_target_t *t, uint64_t now, uint64_t tokens)
{
    sl_ratelimit_t rl;

    sl_state_headroom_get(t, now, &rl);
    if (rl.requests_remaining >= 0 && rl.requests_remaining < 2) {
        return true;
    }
    return rl.tokens_remaining >= 0 && (uint64_t) rl.tokens_remaining < (tokens > 0 ? tokens : 1);
}


void
sl_state_cred_cool(sl_state_cred_t *c, uint64_t until)
{
    uint64_t old;

    if (c == NULL) {
        return;
    }
    old = atomic_load_explicit(&c->until, memory_order_relaxed);
    while (old < until
           && !atomic_compare_exchange_weak_explicit(&c->until, &old, until, memory_order_relaxed,
                                                     memory_order_relaxed)) {
    }
}


uint64_t
sl_state_cred_until(const sl_state_cred_t *c)
{
    return c == NULL ? 0 : atomic_load_explicit(&c->until, memory_order_relaxed);
}


/* The bucket of second sec, restarted when it still holds an older second. */
static state_bucket_t *
state_bucket(uint64_t sec)
{
    state_bucket_t *b = &st.hdr->budget[sec % SL_STATE_RETRY_WINDOW];
    uint64_t old = atomic_load_explicit(&b->sec, memory_order_acquire);

    if (old != sec && old < sec && atomic_compare_exchange_strong(&b->sec, &old, sec)) {
        atomic_store_explicit(&b->requests, 0, memory_order_relaxed);
        atomic_store_explicit(&b->retries, 0, memory_order_relaxed);
    }
    return b;
}


void
sl_state_budget_request(uint64_t now)
{
    if (st.hdr == NULL) {
        return;
    }
    atomic_fetch_add_explicit(&state_bucket(now / 1000)->requests, 1, memory_order_relaxed);
}


bool
sl_state_budget_retry(uint64_t now, unsigned permille)
{
    uint64_t sec = now / 1000, requests = 0, retries = 0, s;

    if (st.hdr == NULL) {
        return true;
    }
    for (unsigned i = 0; i < SL_STATE_RETRY_WINDOW; i++) {
        state_bucket_t *b = &st.hdr->budget[i];

        s = atomic_load_explicit(&b->sec, memory_order_acquire);
        if (s <= sec && s + SL_STATE_RETRY_WINDOW > sec) {
            requests += atomic_load_explicit(&b->requests, memory_order_relaxed);
            retries += atomic_load_explicit(&b->retries, memory_order_relaxed);
        }
    }
    if (retries >= SL_STATE_RETRY_FLOOR + requests * permille / 1000) {
        return false;
    }
    atomic_fetch_add_explicit(&state_bucket(sec)->retries, 1, memory_order_relaxed);
    return true;
}


int
sl_state_each_target(sl_state_target_cb cb, void *arg, uint64_t now)
{
    sl_state_target_info_t info;
    sl_state_target_t *t;
    uint64_t w;
    int rc;

    if (st.hdr == NULL) {
        return 0;
    }
    for (uint32_t i = 0; i < st.hdr->ntargets; i++) {
        t = &st.targets[i];
        if (atomic_load_explicit(&t->id.ready, memory_order_acquire) == 0) {
            continue;
        }
        memset(&info, 0, sizeof(info));
        info.name = t->id.name;
        info.provider_len = strcspn(t->id.name, "/");
        w = atomic_load_explicit(&t->breaker, memory_order_acquire);
        info.breaker = STATE_BRK_STATE(w);
        info.open_until = info.breaker == SL_BREAKER_CLOSED ? 0 : STATE_BRK_TIME(w);
        info.failures = atomic_load_explicit(&t->fails, memory_order_relaxed);
        info.latency_us = atomic_load_explicit(&t->lat_us, memory_order_relaxed);
        info.ttft_us = atomic_load_explicit(&t->ttft_us, memory_order_relaxed);
        info.in_flight = sl_state_inflight(t);
        sl_state_headroom_get(t, now, &info.headroom);
        rc = cb(arg, &info);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


int
sl_state_each_cred(sl_state_cred_cb cb, void *arg)
{
    char provider[SL_STATE_NAME_MAX];
    sl_state_cred_info_t info;
    sl_state_cred_t *c;
    size_t plen;
    int rc;

    if (st.hdr == NULL) {
        return 0;
    }
    for (uint32_t i = 0; i < st.hdr->ncreds; i++) {
        c = &st.creds[i];
        if (atomic_load_explicit(&c->id.ready, memory_order_acquire) == 0) {
            continue;
        }
        plen = strcspn(c->id.name, "/");
        memcpy(provider, c->id.name, plen);
        provider[plen] = '\0';
        info.provider = provider;
        info.ref = c->id.name[plen] == '/' ? c->id.name + plen + 1 : "";
        info.cooling_until = atomic_load_explicit(&c->until, memory_order_relaxed);
        rc = cb(arg, &info);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
