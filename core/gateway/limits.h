/*
 * Per-key request and token rate limits (rpm, tpm), shared by every worker
 * through a table in the shared segment the master maps before forking.
 *
 * A sliding window, not fixed minutes: each key keeps 61 one-second
 * buckets (the current second and the 60 before it) of admitted requests
 * and of tokens used. A request admitted at time t counts against rpm until
 * the start of the 61st second after the one it came in, that is for 60 to
 * 61 seconds: so no 60-second window, wherever it starts, ever holds more
 * than rpm admitted requests (fixed minutes let 2 x rpm through around a
 * minute's boundary), and a denied client is told exactly when the oldest
 * request it needs gone leaves the window. Tokens count from the second a
 * request finished, against tpm the same way (a request is admitted while
 * the window's tokens are below tpm).
 *
 * A key's slot is found by open addressing on a hash of its id; its window
 * is changed under the slot's robust, process-shared mutex (a worker that
 * dies holding it leaves it usable). When the table is full a key is not
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
 * (logged) when the segment has no room, or -errno when the mutexes cannot
 * be made.
 */
int sl_limits_init(void);

/* Bytes the table takes in the shared segment, for sizing it. */
size_t sl_limits_shm_size(void);

/*
 * Admits one request of key_id under rpm (0: unlimited) and tpm (0:
 * unlimited; checks the tokens used in the window). Returns true and counts
 * the request, or false with *retry_after_ms (milliseconds until a request
 * would be admitted, at least 1) and *which ("requests" or "tokens").
 * now_ms: unix time in milliseconds. Any process that mapped the table.
 */
bool sl_limits_admit(const char *key_id, uint64_t rpm, uint64_t tpm, int64_t now_ms,
                     uint64_t *retry_after_ms, const char **which);

/* Adds tokens used by a finished request of key_id to the window at now_ms. */
void sl_limits_add_tokens(const char *key_id, uint64_t tokens, int64_t now_ms);

#endif
