/*
 * The ledger's side of admission and recovery, so that every request that
 * passed authentication ends with exactly one ledger row and no budget
 * reservation outlives it:
 *
 *  - admission: while the storage is full (storage/db.h) a request is
 *    refused before any upstream call (ledger.on_full: refuse, 503
 *    storage_full) or served without a row (serve, counted in /metrics);
 *    either way it gets no row, because the map's reserve belongs to the
 *    requests already admitted. Otherwise it gets an intent (core/gateway/intent.h)
 *    holding what a row needs, including its budget reservation;
 *  - record: the row goes into the intent inside the write that commits it
 *    (sl_settle_append), and the intent is closed once it committed; a row
 *    whose write fails stays in the intent, retried by the worker
 *    (sl_settle_retry) and, should the worker exit first, by the master,
 *    which skips a row whose write turns out to have committed;
 *  - a dead worker: the master turns each of its intents into a row
 *    (status SL_LEDGER_STATUS_WORKER_DIED, flag SL_LEDGER_WORKER_DIED,
 *    usage estimated from the body size and the bytes relayed) and
 *    releases its reservation, in one write transaction.
 */
#ifndef SL_CORE_GATEWAY_SETTLE_H
#define SL_CORE_GATEWAY_SETTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/gateway/account.h"
#include "core/conf/conf.h"
#include "storage/db.h"
#include "storage/ledger.h"

/*
 * Bytes of map kept free for the rows of requests that may be in flight
 * (sl_db_set_reserve): 1 KiB per possible request, between 64 KiB and a
 * quarter of storage.map_size. Any context.
 */
size_t sl_settle_reserve(const sl_conf_t *conf);

/*
 * Intent table entries for conf: every client connection has at most one
 * request in flight, and a reload runs two generations at once, so
 * workers * max_connections * 2 (at most 1M). Any context.
 */
size_t sl_settle_capacity(const sl_conf_t *conf);

/*
 * Admission, after auth, routing and the allow-list, before the budget
 * reservation. Returns SL_EFULL when the storage is full and on_full is
 * refuse (answer 503 storage_full); with serve it returns 0 and marks the
 * account recorded (nothing is reserved or written). Otherwise opens the
 * intent (a->intent; NULL when the table is full) and returns 0. Worker.
 */
int sl_settle_admit(const sl_conf_t *conf, sl_acct_t *a, const sl_call_t *call);

/* The target an attempt goes to, for the row the master may have to write. Worker. */
void sl_settle_target(sl_acct_t *a, const sl_target_t *t);

/*
 * The reservation of a (reserved nano-USD, bucket time at) goes into its
 * intent: call inside the reserving write transaction (repeatable), and
 * with 0, 0 when the transaction did not commit. Worker.
 */
void sl_settle_reserved(sl_acct_t *a, uint64_t reserved, time_t at);

/*
 * Appends a's row (sl_ledger_append) inside the recording write
 * transaction, and puts the row and its key into the intent: should the
 * worker die before it closes the intent, the master finds whether that
 * write committed. Repeatable. Returns what sl_ledger_append returns.
 */
int sl_settle_append(sl_txn_t *t, sl_acct_t *a, const sl_ledger_row_t *row);

/*
 * After the ledger write of a's row returned rc: 0 closes the intent and
 * counts a cost beyond the reservation (/metrics); a failure is counted,
 * logged unless it is SL_EFULL (logged once per episode where it
 * happened), and keeps the row in the intent as pending. Worker.
 */
void sl_settle_recorded(sl_acct_t *a, const sl_ledger_row_t *row, int rc);

/*
 * Writes this process's pending rows and settles their reservations.
 * Returns how many are still pending (0 at once when there are none).
 * Worker, on the loop: one short write transaction.
 */
size_t sl_settle_retry(sl_db_t *db, const sl_conf_t *conf);

/*
 * A worker's last step before closing the store: retries pending rows and
 * checks that no request is still in flight (an alert if one is; the
 * master writes what is left).
 */
void sl_settle_exit(sl_db_t *db, const sl_conf_t *conf);

/*
 * Master, after reaping pid (any exit): writes a row for each of its
 * intents and releases their reservations in one write transaction on an
 * environment opened and closed here, then frees the entries; signaled
 * says whether the worker died by a signal (an open intent after a normal
 * exit is a bug, logged as an alert). Does not touch LMDB when pid left
 * nothing. Returns 0, or a negative code with the entries kept for a later
 * call (the storage is full or failing). *rows (may be NULL): rows written.
 */
int sl_settle_dead(const sl_conf_t *conf, pid_t pid, bool signaled, size_t *rows);

#endif
