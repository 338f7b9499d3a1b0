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
 * Disk space: the environment runs with MDB_WRITEMAP, so LMDB writes new
 * pages by storing into a shared file mapping. A page the filesystem cannot
 * back (disk full) would kill the writer with SIGBUS, so every byte of the
 * map is reserved on disk (posix_fallocate) before LMDB may write to it: at
 * open, and before the map grows. A map that cannot be backed is not
 * written to (SL_EFULL) until the space is there; a map that cannot grow
 * counts as full. On copy-on-write filesystems (btrfs, ZFS) an overwrite
 * needs new blocks even inside reserved space: put storage.path on a
 * filesystem that overwrites in place, or mark it nodatacow (chattr +C).
 *
 * Full state: with a reserve set (sl_db_set_reserve), the storage counts as
 * full when the free room in the map (pages past the last used one plus
 * LMDB's free list, after growing the map as far as disk and the 16x limit
 * allow) falls below the reserve, and as not full again once the room is
 * back to twice the reserve (retention pruning, a bigger storage.map_size
 * after a reload, disk space freed). The state is shared by every process
 * (sl_db_shared_init) and logged once per episode: an alert when it starts,
 * a notice when it ends. Admission reads it (sl_db_is_full) so that the
 * reserve is left to the rows of requests already admitted.
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

#include "core/base/str.h"

typedef struct sl_db sl_db_t;
typedef struct sl_txn sl_txn_t;

/* The named databases. */
typedef enum sl_dbi {
    SL_DBI_META = 0,     /* schema version and other singletons */
    SL_DBI_KEYS,         /* key id -> key record */
    SL_DBI_KEY_HASH,     /* sha256(client key) -> key id */
    SL_DBI_KEY_NAME,     /* key name -> key id */
    SL_DBI_SECRETS,      /* secret name -> sealed value */
    SL_DBI_LEDGER,       /* be64 time ns + be32 worker/seq -> usage row */
    SL_DBI_SPEND,        /* "k:<id>:<bucket>" / "t:<team>:<bucket>" -> spend counters */
    SL_DBI_TEAMS,        /* team name -> team record (budget) */
    SL_DBI_CACHE,        /* response cache: sha256 of the request -> entry (storage/cache.h) */
    SL_DBI_CACHE_AGE,    /* be64 fill time ns + entry key -> be64 expiry: oldest first */
    SL_DBI_CACHE_VEC,    /* partition + entry key -> prompt vector of the semantic cache */
    SL_DBI_RESPONSES,    /* stored responses of POST /v1/responses (storage/responses.h) */
    SL_DBI_SESSIONS,     /* dashboard logins: sha256(token) -> expiry (storage/sessions.h) */
    SL_DBI_RESPONSE_IDS, /* response id -> its number in SL_DBI_RESPONSES */
    SL_DBI_COUNT,
} sl_dbi_e;

#define SL_DB_SCHEMA_VERSION 2

typedef enum sl_db_flags {
    SL_DB_RDONLY = 1u << 0, /* open read-only (reporting commands) */
    SL_DB_INIT = 1u << 1,   /* a 0-byte data.mdb may be initialised (serve --init-storage) */
} sl_db_flags_e;

/*
 * Opens (creating when missing, mode 0700 directory / 0600 files) the
 * environment at path with at least map_size bytes of map. Creates the
 * named databases, checks the schema version and migrates forward; a newer
 * version than this binary knows is an error. Clears stale reader slots
 * (mdb_reader_check). Reserves the map's disk space (see above): when the
 * disk cannot hold it the open still succeeds if nothing has to be written
 * (an existing, current store), with the storage in the full state.
 *
 * Refuses, without changing anything, a data.mdb of 0 bytes (truncated:
 * restore a backup, or pass SL_DB_INIT to start an empty store) and one
 * shorter than its own last page (SL_ECORRUPT). Returns 0 and *out, or
 * SL_ESTORE, SL_ECORRUPT, SL_EFULL (a new store on a full disk) or -errno,
 * all logged. Worker (after fork), master (never across a fork) or CLI.
 */
int sl_db_open(const char *path, size_t map_size, unsigned flags, sl_db_t **out);

/*
 * Maps the full state shared by every process. Master (or single mode)
 * before any fork; until then the state is this process's own. Returns 0
 * or -errno.
 */
int sl_db_shared_init(void);

/* Bytes of the shared segment sl_db_shared_init takes. */
size_t sl_db_shared_size(void);

/* True while the storage is full. Any process; a relaxed atomic load. */
bool sl_db_is_full(void);

/*
 * Sets the room in bytes that the map keeps for rows of requests already
 * admitted; 0 (the default) turns the full state off for this handle.
 * Call once after sl_db_open, before the handle is shared between threads.
 */
void sl_db_set_reserve(sl_db_t *db, size_t bytes);

/*
 * Re-evaluates the room now: retries reserving disk space for the map,
 * grows the map when the room is below the reserve, and sets or clears the
 * full state. Returns 0 (room) or SL_EFULL. Blocking (fallocate, a read of
 * LMDB's free list): worker thread pool or CLI, never on the loop.
 */
int sl_db_check_room(sl_db_t *db);

/*
 * Faults in, writable, the pages the next commits will likely take past the
 * end of the map's used part (1.5 times the growth since the previous
 * populate, 64 KiB to 16 MiB), so that the loop's commits do not take those
 * faults; contents are unchanged. It populates only after an msync by any
 * process sharing the storage state (which write-protects every process's
 * populated pages again) or when the commits took half of the last range;
 * otherwise it returns at once, so call it a few times per sync interval,
 * from one thread at a time. Returns 1 when it populated pages, 0 when
 * there was nothing to do (also when the kernel cannot do it, or the pages
 * could not be populated: the commit will meet the same condition).
 * Blocking: worker thread pool.
 */
int sl_db_prefault(sl_db_t *db);

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
 * databases are emptied and fn tried once more; after that SL_EFULL (the
 * storage enters the full state, logged once per episode). SL_EFULL also
 * when the map's disk space is not reserved yet and cannot be now: then fn
 * does not run at all. fn returns 0 to commit or a negative code to abort
 * (returned as is). Also returns SL_ESTORE on a read-only handle, and
 * -EDEADLK when called from inside another write transaction. Blocks while
 * another process writes: keep fn short.
 */
int sl_db_write(sl_db_t *db, int (*fn)(sl_txn_t *t, void *arg), void *arg);

/*
 * Borrowed value of key in dbi. Returns 0, SL_ENOTFOUND, SL_ECORRUPT (LMDB
 * found a damaged page, or the value lies outside the map; logged with what
 * to do) or SL_ESTORE. sl_db_scan checks the same.
 */
int sl_db_get(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, sl_str_t *val);

/*
 * Stores val under key, overwriting unless noover. Returns 0, -EEXIST (the
 * key exists and noover is set; not logged) or SL_ESTORE. Write txn only.
 */
int sl_db_put(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val, size_t vlen,
              bool noover);

/*
 * sl_db_put(noover) for keys that mostly come in ascending order (the
 * ledger's time-ordered rows): cheaper when key sorts after every key in
 * dbi, an ordinary insert when it does not. Returns as sl_db_put.
 */
int sl_db_append(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val,
                 size_t vlen);

/*
 * sl_db_append that never inserts: stores val under key when key sorts
 * after every key of dbi, and otherwise stores nothing and returns 1 with
 * *last set to dbi's last key (valid until the next write on t), so that
 * the caller can choose a key that sorts after it (the ledger does).
 * Returns 0, 1, -EEXIST or SL_ESTORE. Write txn only.
 */
int sl_db_append_only(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val,
                      size_t vlen, sl_str_t *last);

/*
 * Like sl_db_put, but the caller writes the value: *out points at vlen
 * bytes reserved for it in the map, to be filled before the next call on
 * t (MDB_RESERVE; no copy). append: key sorts after every key of dbi and
 * goes at the end of the last page (MDB_APPEND), so that keys added in
 * order fill their pages instead of leaving each half empty after a
 * split; -EEXIST when it does not sort last. Returns 0, -EEXIST (not
 * logged) or SL_ESTORE. Write txn only.
 */
int sl_db_reserve(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, size_t vlen, bool append,
                  void **out);

/*
 * Borrowed key and value of the last record of dbi (in key order).
 * Returns 0, SL_ENOTFOUND (dbi is empty), SL_ECORRUPT or SL_ESTORE.
 */
int sl_db_last(sl_txn_t *t, sl_dbi_e dbi, sl_str_t *key, sl_str_t *val);

/* Deletes every record of dbi (it stays, empty). Returns 0 or SL_ESTORE. Write txn only. */
int sl_db_clear(sl_txn_t *t, sl_dbi_e dbi);

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

/*
 * Flushes committed data to disk: an msync of the map's pages up to the
 * last commit's last page (mdb_env_sync(force), the whole map, when the
 * map's address is not known). Blocking: run off the loop.
 */
int sl_db_sync(sl_db_t *db);

/*
 * sl_db_sync() unless a process sharing the storage state
 * (sl_db_shared_init) made one through this call less than min_ms ago:
 * workers that each run it several times per interval, passing the
 * interval less half their period, share one msync per interval between
 * them, whichever is due first (any of them may be gone). Returns 1 when it synced, 0 when it
 * skipped, or an error of sl_db_sync. Blocking: run off the loop.
 */
int sl_db_sync_shared(sl_db_t *db, uint64_t min_ms);

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

/* Pages (branch, leaf and overflow) dbi takes. Returns 0 or SL_ESTORE. */
int sl_db_pages(sl_txn_t *t, sl_dbi_e dbi, size_t *pages);

#endif
