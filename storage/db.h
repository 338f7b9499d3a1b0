/*
 * The LMDB environment under storage.path, shared by every worker and the
 * CLI. db.c is the only file that includes <lmdb.h>: LMDB's codes stop here
 * (MDB_NOTFOUND -> SL_ENOTFOUND, anything else logged with mdb_strerror and
 * returned as SL_ESTORE).
 *
 * Rules (STYLE.md §5-6):
 *  - open it in a worker after fork, never in the master across a fork;
 *  - values read in a transaction are borrowed until it ends: copy what you
 *    keep;
 *  - never keep a transaction open across a libuv callback;
 *  - write transactions are short (a few puts); sl_db_write() runs one,
 *    growing the map and retrying when it is full.
 *
 * The environment is opened with MDB_NOSYNC: commits reach the OS page cache
 * at once (a killed process loses nothing), and sl_db_sync() flushes them to
 * disk every storage.sync_interval, so power loss costs at most that.
 * sl_db_close() flushes too, so a CLI command's write is on disk when it
 * exits.
 *
 * Threads: a handle may be used from several threads of one process (the
 * loop thread and uv_queue_work threads); LMDB runs with MDB_NOTLS, so a
 * read transaction belongs to its handle, not to a thread. A thread must not
 * call sl_db_write() while it holds a transaction of its own: the map can
 * only grow when no transaction of this process is open.
 */
#ifndef SL_STORAGE_DB_H
#define SL_STORAGE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

typedef struct sl_db sl_db_t;
typedef struct sl_txn sl_txn_t;

/* The named databases. */
typedef enum sl_dbi {
    SL_DBI_META = 0, /* schema version and other singletons */
    SL_DBI_KEYS,     /* key id -> key record */
    SL_DBI_KEY_HASH, /* sha256(client key) -> key id */
    SL_DBI_KEY_NAME, /* key name -> key id */
    SL_DBI_SECRETS,  /* secret name -> sealed value */
    SL_DBI_LEDGER,   /* be64 time ns + be32 worker/seq -> usage row */
    SL_DBI_SPEND,    /* "k:<id>:<bucket>" / "t:<team>:<bucket>" -> spend counters */
    SL_DBI_TEAMS,    /* team name -> team record (budget) */
    SL_DBI_CACHE,    /* response cache (cache issue) */
    SL_DBI_COUNT,
} sl_dbi_e;

#define SL_DB_SCHEMA_VERSION 1

typedef enum sl_db_flags {
    SL_DB_RDONLY = 1u << 0, /* open read-only (reporting commands) */
} sl_db_flags_e;

/*
 * Opens (creating when missing, mode 0700 directory / 0600 files) the
 * environment at path with at least map_size bytes of map. Creates the
 * named databases, checks the schema version and migrates forward; a newer
 * version than this binary knows is an error. Clears stale reader slots
 * (mdb_reader_check). Returns 0 and *out, or SL_ESTORE / -errno (logged).
 * Worker (after fork) or CLI context.
 */
int sl_db_open(const char *path, size_t map_size, unsigned flags, sl_db_t **out);

/* Closes the environment. No transaction may be open. NULL is a no-op. */
void sl_db_close(sl_db_t *db);

/* Read-only transaction. Returns 0 or SL_ESTORE. End with sl_db_abort. */
int sl_db_read(sl_db_t *db, sl_txn_t **out);

/* Ends a read transaction, or abandons a write one. */
void sl_db_abort(sl_txn_t *t);

/*
 * Runs fn in a write transaction and commits it. When fn or the commit hits
 * a full map, the transaction is aborted, the map grown (doubling, up to 16x
 * the size given to sl_db_open) and fn run again, so fn must be repeatable
 * (no side effects outside the txn). When the map cannot grow, the cache
 * database is emptied and fn tried once more; after that SL_ESTORE
 * ("storage is full", logged once). fn returns 0 to commit or a negative
 * code to abort (returned as is). Also returns SL_ESTORE on a read-only
 * handle, and -EDEADLK when called from inside another write transaction.
 * Blocks while another process writes: keep fn short.
 */
int sl_db_write(sl_db_t *db, int (*fn)(sl_txn_t *t, void *arg), void *arg);

/* Borrowed value of key in dbi. Returns 0, SL_ENOTFOUND or SL_ESTORE. */
int sl_db_get(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, sl_str_t *val);

/*
 * Stores val under key, overwriting unless noover. Returns 0, -EEXIST (the
 * key exists and noover is set; not logged) or SL_ESTORE. Write txn only.
 */
int sl_db_put(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val, size_t vlen,
              bool noover);

/* Deletes key. Returns 0, SL_ENOTFOUND or SL_ESTORE. */
int sl_db_del(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen);

/*
 * Calls cb for every record with key >= from (all when flen is 0), in key
 * order, until cb returns non-zero (returned, unless it is 1 which means
 * "stop, fine" and becomes 0). Key and value are borrowed. In a write
 * transaction cb may delete the current record with sl_db_del.
 */
int sl_db_scan(sl_txn_t *t, sl_dbi_e dbi, const void *from, size_t flen,
               int (*cb)(void *arg, sl_str_t key, sl_str_t val), void *arg);

/* Flushes committed data to disk (mdb_env_sync(force)). Blocking: run off the loop. */
int sl_db_sync(sl_db_t *db);

/*
 * Compacting copy of the environment into the file path (mode 0600): written
 * to a temporary file beside it, flushed, then renamed over path, so path is
 * either the old file or a complete copy. Safe while serving. To restore,
 * stop sluice and install the copy as data.mdb in an empty storage.path.
 * Returns 0, -errno or SL_ESTORE (logged). Blocking: CLI or off the loop.
 */
int sl_db_backup(sl_db_t *db, const char *path);

/* Number of records in dbi. Returns 0 or SL_ESTORE. */
int sl_db_count(sl_txn_t *t, sl_dbi_e dbi, size_t *n);

#endif
