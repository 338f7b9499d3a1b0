/*
 * Per-key request and token rate limits (rpm, tpm), shared by every worker
 * through a table in the shared segment the master maps before forking.
 *
 * Fixed one-minute windows per key: simple, exact at the window's edges
 * within one request, and lock-free (C11 atomics). A key's slot is found by
 * open addressing on a hash of its id; when the table is full a key is not
 * limited (and a warning is logged once), never refused by accident.
 */
#ifndef SL_CORE_GATEWAY_LIMITS_H
#define SL_CORE_GATEWAY_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Carves the table from the shared segment (core/base/shm.h), or finds it
 * again. Master (or single mode), before any fork. Returns 0 or -ENOMEM
 * (logged) when the segment has no room.
 */
int sl_limits_init(void);

/* Bytes the table takes in the shared segment, for sizing it. */
size_t sl_limits_shm_size(void);

/*
 * Admits one request of key_id under rpm (0: unlimited) and tpm (0:
 * unlimited; checks tokens already used in this minute). Returns true and
 * counts the request, or false with *retry_after (seconds to the next
 * window) and *which ("requests" or "tokens"). now: unix seconds.
 */
bool sl_limits_admit(const char *key_id, uint64_t rpm, uint64_t tpm, int64_t now,
                     unsigned *retry_after, const char **which);

/* Adds tokens used by a finished request of key_id to its current window. */
void sl_limits_add_tokens(const char *key_id, uint64_t tokens, int64_t now);

#endif
