/*
 * The intent table: one entry per request in flight whose ledger row is
 * not written yet, in a MAP_SHARED segment the master maps before forking
 * (like core/gateway/limits.c). A worker opens an entry at admission, before any
 * upstream call, updates it when the request goes upstream and as the
 * answer is relayed, and closes it in the same step as the request's
 * ledger row. When a worker dies with entries open, the master turns each
 * into a ledger row and releases its budget reservation (core/gateway/settle.h).
 *
 * Entries are owned by pid, not by worker slot: during a reload two
 * generations run at once. Only the owner writes an entry while it lives;
 * the master reads a dead owner's entries after waitpid() reaped it, so
 * the fields are plain and only the owner word is atomic (claiming a free
 * entry with compare-and-swap). Free entries are claimed lowest index
 * first, so the pages touched stay proportional to the peak number of
 * requests in flight, not to the capacity.
 *
 * Strings are NUL-terminated and truncated to their field (a model name
 * longer than SL_INTENT_MODEL_MAX loses its tail in a worker_died row).
 */
#ifndef SL_CORE_GATEWAY_INTENT_H
#define SL_CORE_GATEWAY_INTENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SL_INTENT_RID_MAX   128 /* request ids, as the HTTP server accepts them */
#define SL_INTENT_NAME_MAX  64  /* key names, key ids, teams, provider names */
#define SL_INTENT_MODEL_MAX 200

typedef enum sl_intent_state {
    SL_INTENT_OPEN = 1, /* in flight */
    SL_INTENT_DONE,     /* finished: the row is in the outcome fields; if has_key, a write of it
                           under row_key may have committed (check before writing it again) */
} sl_intent_state_e;

typedef enum sl_intent_flag {
    SL_INTENT_SENT = 1u << 0,   /* the request went upstream */
    SL_INTENT_STREAM = 1u << 1, /* the client asked for a stream */
} sl_intent_flag_e;

typedef struct sl_intent {
    uint32_t state; /* sl_intent_state_e */
    uint32_t flags; /* sl_intent_flag_e */
    int64_t start_ns;
    uint64_t body_len;   /* client body bytes */
    uint64_t relayed;    /* answer bytes received so far (content bytes of a stream) */
    uint64_t reserved;   /* nano-USD reserved against the budgets below, 0: none */
    int64_t reserved_at; /* unix seconds of the reservation (its budget bucket) */
    uint32_t nrefs;      /* budgets: kind 0 is the key (key_id), 1 the team (team) */
    uint8_t ref_kind[2];
    uint8_t ref_period[2];
    /* SL_INTENT_DONE: the finished request's row */
    uint32_t has_key;
    uint8_t row_key[16];
    uint32_t status;
    uint32_t attempts;
    uint32_t row_flags;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cached_tokens;
    uint64_t cache_write_tokens;
    uint64_t cost_nusd;
    uint64_t latency_us;
    uint64_t first_byte_us;
    char request_id[SL_INTENT_RID_MAX + 1];
    char key_id[SL_INTENT_NAME_MAX + 1];
    char key_name[SL_INTENT_NAME_MAX + 1];
    char team[SL_INTENT_NAME_MAX + 1];
    char endpoint[16];
    char provider[SL_INTENT_NAME_MAX + 1];
    char model[SL_INTENT_MODEL_MAX + 1];        /* as the client asked */
    char target_model[SL_INTENT_MODEL_MAX + 1]; /* the provider's name for it (pricing) */
} sl_intent_t;

/*
 * Maps a table of capacity entries (at least 1). Master (or single mode)
 * before any fork; a second call keeps the first table. Returns 0 or
 * -errno.
 */
int sl_intent_init(size_t capacity);

/* Bytes of the shared segment (core/base/shm.h) a table of capacity entries takes. */
size_t sl_intent_shm_size(size_t capacity);

/* Entries the table holds (0 before sl_intent_init). */
size_t sl_intent_capacity(void);

/*
 * Claims a free entry for this process: numbers 0, strings empty, state
 * SL_INTENT_OPEN (the bytes past a string's NUL are left as they were). The
 * caller fills it and keeps the pointer until sl_intent_close. Returns
 * NULL when there is no table or no free entry (the first failure of a
 * run of them is logged). Worker context.
 */
sl_intent_t *sl_intent_open(void);

/* The request went upstream and relayed bytes of the answer came back so far. NULL: no-op. */
void sl_intent_update(sl_intent_t *in, uint64_t relayed);

/* Frees the entry. NULL is a no-op. Its owner, or the master once the owner is dead. */
void sl_intent_close(sl_intent_t *in);

/*
 * Calls cb(arg, entry) for every entry owned by pid (cb may close it).
 * Returns how many there were. The master for a reaped pid, or a worker
 * for its own pid; never for another live process.
 */
size_t sl_intent_scan(pid_t pid, void (*cb)(void *arg, sl_intent_t *in), void *arg);

/* Copies s into a field of size bytes, truncating at a UTF-8 boundary. */
void sl_intent_str(char *field, size_t size, const char *s);

/* As sl_intent_str, for the len bytes at s (no NUL needed; NULL only with len 0). */
void sl_intent_strn(char *field, size_t size, const char *s, size_t len);

#endif
