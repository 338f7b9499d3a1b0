/*
 * Stored responses (POST /v1/responses with store: true) on storage/db.h,
 * in the named database SL_DBI_RESPONSES (the layout: storage/responses.c).
 * A record keeps who made the response (key id, team) next to its JSON
 * text, {"response": {...}, "input": [items]}, which the store does not
 * read. Visibility is the caller's rule (sl_responses_visible): the key
 * that made a response, or a key of the same team.
 *
 * Writes are short transactions of a few puts (blocking), or puts inside
 * the caller's write transaction (sl_responses_put_txn); reads are the
 * caller's read transaction. Any process with the
 * environment open.
 */
#ifndef SL_STORAGE_RESPONSES_H
#define SL_STORAGE_RESPONSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/pool.h"
#include "core/base/str.h"
#include "storage/db.h"

#define SL_RESPONSES_ID_MAX 128 /* bytes of a response id */

/* A stored response, as read (strings in the caller's pool, NUL-terminated). */
typedef struct sl_resp_rec {
    const char *key_id; /* "" for a static key */
    const char *team;   /* "" for none */
    int64_t created_ns;
    sl_str_t json; /* {"response": ..., "input": [...]} */
} sl_resp_rec_t;

/*
 * Stores (or replaces) response id. json is the record's JSON text.
 * Returns 0, -EINVAL (an empty or too long id, a key id or team longer
 * than 255 bytes; not logged), SL_EFULL or SL_ESTORE. Blocking.
 */
int sl_responses_put(sl_db_t *db, const char *id, const char *key_id, const char *team,
                     int64_t created_ns, sl_str_t json);

/* One response of a batch (sl_responses_put_many). */
typedef struct sl_resp_put {
    const char *id;
    const char *key_id;
    const char *team;
    int64_t created_ns;
    sl_str_t json;
    int rc; /* out: 0, or -EINVAL for this one (the others are stored) */
} sl_resp_put_t;

/*
 * Stores (or replaces) n responses in one write transaction (a group
 * commit: one commit for every response finished meanwhile). An invalid
 * entry (as sl_responses_put would refuse) gets rc -EINVAL and is left
 * out. Returns 0 (every valid one stored), SL_EFULL or SL_ESTORE (none
 * stored). Blocking.
 */
int sl_responses_put_many(sl_db_t *db, sl_resp_put_t *v, size_t n);

/*
 * Stores (or replaces) p inside the caller's write transaction t (a
 * repeatable step of it: the ledger's group commit writes a response and
 * its request's row together). Returns 0, -EINVAL (as sl_responses_put
 * would refuse p; nothing written) or what the puts returned (SL_ESTORE;
 * the caller's sl_db_write sees a full map itself).
 */
int sl_responses_put_txn(sl_txn_t *t, const sl_resp_put_t *p);

/*
 * Reads response id into *out (in pool). Returns 0, SL_ENOTFOUND, or
 * SL_ECORRUPT / SL_ESTORE (a record that does not decode is logged).
 */
int sl_responses_get(sl_txn_t *t, const char *id, sl_pool_t *pool, sl_resp_rec_t *out);

/* True when a client with key_id and team ("" for none) may see rec. */
bool sl_responses_visible(const sl_resp_rec_t *rec, const char *key_id, const char *team);

/*
 * Deletes response id when a client with key_id and team may see it.
 * Returns 0, SL_ENOTFOUND (absent or not visible: the same answer, so
 * that ids of others cannot be probed), SL_EFULL or SL_ESTORE. Blocking.
 */
int sl_responses_del(sl_db_t *db, const char *id, const char *key_id, const char *team);

/*
 * Deletes up to max responses created before before_ns, oldest first, in
 * one write transaction; *deleted (may be NULL) gets how many. Returns 0,
 * SL_EFULL or SL_ESTORE. Blocking.
 */
int sl_responses_prune(sl_db_t *db, int64_t before_ns, size_t max, size_t *deleted);

/*
 * Storage schema 1 -> 2 (storage/db.c runs it once, inside the opening
 * write transaction): moves the responses of layout 1 to layout 2, oldest
 * first. Repeatable. Returns 0 or an error of the store.
 */
int sl__responses_migrate_2(sl_txn_t *t);

#endif
