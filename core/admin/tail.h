/*
 * The live tail: the most recent requests of every worker, metadata only
 * (who, which model and target, status, attempts, latency, tokens, cost,
 * cache), never a prompt or an answer. A ring of SL_TAIL_SIZE entries in
 * the shared segment (core/base/shm.h): each worker writes the rows it
 * records, the dashboard reads them through GET /admin/tail. Entries are
 * guarded by a sequence number (a seqlock): a reader that races a writer
 * skips that entry, nobody waits.
 */
#ifndef SL_CORE_ADMIN_TAIL_H
#define SL_CORE_ADMIN_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "storage/ledger.h"

#define SL_TAIL_SIZE 256

/* Bytes the ring takes in the shared segment. */
size_t sl_tail_shm_size(void);

/* Carves the ring (master or single mode, before any fork). Returns 0 or -ENOMEM (logged). */
int sl_tail_init(void);

/*
 * Adds the request whose ledger row is row (its strings are copied,
 * truncated to fixed widths). No-op before sl_tail_init. Worker; lock-free.
 */
void sl_tail_add(const sl_ledger_row_t *row);

/*
 * The entries with a sequence number above after, oldest first, at most
 * limit of the newest, as a JSON array of objects {seq, time, request_id,
 * key, team, endpoint, model, provider, served_model, status, attempts,
 * latency_us, ttft_us (0: not a stream), prompt_tokens, completion_tokens,
 * cost_usd, cost_nusd, cache, stream}; *last gets the newest sequence number written so far.
 * Returns a new reference, or NULL when out of memory. Any process.
 */
json_t *sl_tail_json(uint64_t after, size_t limit, uint64_t *last);

#endif
