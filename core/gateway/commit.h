/*
 * Group commit of the usage ledger: a worker's ledger rows (each with its
 * budget settlement and its intent, core/gateway/settle.h) wait in a queue
 * and are written together in one LMDB write transaction, once per turn of
 * the event loop (ledger.commit_window 0: the rows of every callback that
 * ran in one turn, flushed right after the loop polled for I/O, or before it
 * would block) or at most commit_window milliseconds after the first of
 * them. Every request takes LMDB's write lock (shared by all workers) once
 * per batch instead of once per request.
 *
 * An item's txn callback runs inside the batch's transaction and must be
 * repeatable (sl_db_write may run it again after growing the map); its done
 * callback runs on the loop once the batch committed (rc 0) or failed, and
 * only then may the response's last bytes go out. When a batch fails, its
 * items are written again one transaction each, so one bad row does not
 * fail its neighbours, and each gets its own rc.
 *
 * Worker context, on the loop's thread; the queue is the worker's own.
 */
#ifndef SL_CORE_GATEWAY_COMMIT_H
#define SL_CORE_GATEWAY_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "storage/db.h"

typedef struct sl_commit sl_commit_t;
typedef struct sl_commit_item sl_commit_item_t;

/* Inside the batch's write transaction; 0 or a negative code (aborts the batch). */
typedef int (*sl_commit_txn_cb)(sl_txn_t *t, sl_commit_item_t *it);

/* On the loop, once: rc is 0 (committed) or what the write returned. */
typedef void (*sl_commit_done_cb)(sl_commit_item_t *it, int rc);

/*
 * Embedded in the caller's state, which must live until done runs. An item
 * that is not a ledger row (aside: a stored response written in the same
 * transaction as its request's row) is not counted as one.
 */
struct sl_commit_item {
    sl_commit_txn_cb txn;
    sl_commit_done_cb done;
    sl_commit_item_t *next; /* the queue's */
    bool aside;
};

/*
 * A queue on loop writing to db. window_ms 0 flushes once per loop turn.
 * Returns NULL when out of memory (logged). The caller destroys it.
 */
sl_commit_t *sl_commit_create(uv_loop_t *loop, sl_db_t *db, uint64_t window_ms);

/*
 * Queues it; txn and done are set. The first item of a batch arms the flush
 * (handles that keep the loop turning until the queue is empty); an item
 * queued by a done callback is written by the running flush, in a batch of
 * its own, before it returns. Never calls done from inside.
 */
void sl_commit_push(sl_commit_t *c, sl_commit_item_t *it);

/* Writes what is queued now, synchronously, and calls the done callbacks. */
void sl_commit_flush(sl_commit_t *c);

/* Rows committed (items not aside) and batches written so far (for logs and tests). */
void sl_commit_stats(const sl_commit_t *c, uint64_t *rows, uint64_t *batches);

/*
 * Flushes what is queued, closes the handles and frees the queue once they
 * are closed (the loop must run on). NULL is a no-op.
 */
void sl_commit_destroy(sl_commit_t *c);

#endif
