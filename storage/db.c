/*
 * The LMDB environment: opening (directory 0700, files 0600, named
 * databases, schema version, stale readers), transactions, the map that
 * grows when it is full, and the mapping of LMDB's codes to ours. This is
 * the only file that includes <lmdb.h>.
 *
 * MDB_NOTLS ties a read transaction's reader slot to the transaction rather
 * than to the thread. Without it a thread could hold one read transaction
 * only, the reset transaction kept here for reuse could not move between the
 * loop thread and uv_queue_work threads, and a thread that reads while
 * running a write (the ledger does) would break LMDB's rule.
 *
 * LMDB lets a process change its map size only while no transaction of that
 * process is open. Every transaction therefore holds a process-local rwlock
 * shared; growing the map (or adopting a size another process chose, after
 * MDB_MAP_RESIZED) takes it exclusive. The reset read transaction kept for
 * reuse holds no snapshot and does not count.
 *
 * Disk space: with MDB_WRITEMAP a store into a page the filesystem cannot
 * back raises SIGBUS, so the file is reserved with posix_fallocate up to the
 * map size before LMDB may write (db_back: at open, before the map grows,
 * and retried before a write while it is short). The full state (db.h)
 * lives in a small shared segment; its transitions are logged once.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS */

#include "storage/db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/admin/metrics.h"
#include "core/base/pool.h"
#include "core/base/shm.h"
#include "storage/responses.h"

#define DB_MAX_READERS   1024
#define DB_GROWTH_LIMIT  16 /* the map grows up to 16x the size given to sl_db_open */
#define DB_DEFAULT_MAP   ((size_t) 1 << 30)
#define DB_SCHEMA_KEY    "schema_version"
#define DB_BACK_RETRY    1000 /* ms: a failed reservation of disk space is retried this often */
#define DB_COMMIT_MAX    (128u << 10) /* bytes of map one commit is assumed to take at most */
#define DB_FAULT_MIN     (64u << 10)  /* sl_db_prefault: bytes populated past the end at least */
#define DB_EMPTY_WAIT_MS 1000u /* db_check_file: how long an empty data.mdb may be a new one */
#define DB_EMPTY_STEP_MS 10u
#define DB_FAULT_MAX     (16u << 20) /* and at most */
#ifdef MADV_POPULATE_WRITE
#define DB_MADV_POPULATE_WRITE MADV_POPULATE_WRITE
#else
#define DB_MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL */
#endif
#define DB_WHY_MAX   320
#define DB_KEY_MAX   511          /* LMDB's default mdb_env_get_maxkeysize() */
#define DB_LOCK_SIZE (128u << 10) /* a new lock.mdb: more than LMDB's 1024 reader slots need */

struct sl_db {
    MDB_env *env;
    MDB_dbi dbi[SL_DBI_COUNT];
    bool has[SL_DBI_COUNT]; /* false only in a read-only open of an env that lacks it */
    char *path;
    unsigned flags;
    size_t map_size; /* current; read under lock shared, written under it exclusive */
    size_t map_max;
    size_t psize;              /* LMDB page size */
    pthread_rwlock_t lock;     /* shared: a transaction is open; exclusive: map resize */
    _Atomic(sl_txn_t *) spare; /* one reset read transaction kept for reuse */
    _Atomic size_t backed;     /* bytes of data.mdb reserved on disk (posix_fallocate) */
    _Atomic uint64_t back_at;  /* ms: no new reservation attempt before this */
    _Atomic size_t eval_skip;  /* commits that cannot have used up the room seen last */
    size_t reserve;            /* room kept for admitted requests; 0: no full state */
    int lockfd;                /* lock.mdb, open until after mdb_env_close (db_back_lockfile) */
    char grow_why[DB_WHY_MAX]; /* why the map could not grow last time, under lock exclusive */
    /* sl_db_prefault and sl_db_sync (one sync pass at a time, or at exit) touch these */
    size_t fault_last;  /* me_last_pgno seen by the previous populate, 0 none */
    size_t fault_want;  /* pages the previous populate wanted */
    size_t fault_end;   /* first page past the range it populated */
    uint64_t fault_gen; /* db_state->sync_gen it saw */
    size_t fault_map;   /* the map size it populated in (a grow maps anew: populate again) */
    char *fault_addr;   /* the map's address, found for fault_size */
    size_t fault_size;  /* the map size fault_addr belongs to (a grow maps anew) */
    bool fault_off;     /* the kernel has no MADV_POPULATE_WRITE */
};

/* The full state; one per machine once sl_db_shared_init mapped it. */
typedef struct db_state {
    atomic_bool full;
    _Atomic uint64_t
        synced_ms; /* CLOCK_MONOTONIC ms of the last sl_db_sync_shared() msync, 0 none */
    _Atomic uint64_t sync_gen; /* msyncs done (sl_db_sync), for sl_db_prefault */
} db_state_t;

struct sl_txn {
    sl_db_t *db;
    MDB_txn *txn;
    MDB_cursor *append; /* sl_db_append's (write txn), on append_dbi; LMDB frees it at the end */
    sl_dbi_e append_dbi;
    bool write;
    bool full; /* an operation hit MDB_MAP_FULL: sl_db_write grows the map and runs fn again */
};

typedef int (*db_migrate_fn)(sl_txn_t *t);

static int db_mkdir(const char *path);
static int db_init_write(sl_txn_t *t, void *arg);
static int db_init_read(sl_db_t *db);
static int db_check_schema(sl_txn_t *t, bool write);
static int db_begin(sl_db_t *db, bool write, sl_txn_t *t);
static void db_unlock(sl_db_t *db);
static int db_adopt_size(sl_db_t *db);
static int db_grow(sl_db_t *db, size_t seen);
static int db_drop_cache(sl_db_t *db);
static int db_drop_cache_txn(sl_txn_t *t, void *arg);
static int db_error(const sl_db_t *db, const char *what, sl_dbi_e dbi, int mrc);
static int db_fsync_dir(const char *path);
static int db_check_file(const char *path, unsigned flags, off_t *size);
static int db_check_length(sl_db_t *db, off_t size);
static int db_init(sl_db_t *db);
static int db_back(sl_db_t *db, size_t size);
static void db_back_lockfile(sl_db_t *db);
static int db_make_lockfile(const char *path);
static int db_ensure_backed(sl_db_t *db);
static void db_set_full(sl_db_t *db, bool full, const char *why, size_t room);
static void db_after_commit(sl_db_t *db);
static int db_room(sl_db_t *db, size_t *room, size_t *map_size);
static char *db_map_addr(sl_db_t *db, size_t size);
static char *db_map_find(sl_db_t *db, size_t size);
static bool db_sane_len(const sl_txn_t *t, size_t klen, size_t vlen);
static int db_damaged(const sl_db_t *db, const char *what, sl_dbi_e dbi);
static uint64_t db_now_ms(void);
static int db_stat(sl_txn_t *t, sl_dbi_e dbi, size_t *n, size_t *pages);
static int db_put(sl_txn_t *t, sl_dbi_e dbi, MDB_val *k, MDB_val *v, unsigned flags);
static int db_put_rc(sl_txn_t *t, sl_dbi_e dbi, int mrc);
static int db_append(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val,
                     size_t vlen, sl_str_t *last);

static const char *const db_names[SL_DBI_COUNT] = {
    [SL_DBI_META] = "meta",           [SL_DBI_KEYS] = "keys",
    [SL_DBI_KEY_HASH] = "key_hash",   [SL_DBI_KEY_NAME] = "key_name",
    [SL_DBI_SECRETS] = "secrets",     [SL_DBI_LEDGER] = "ledger",
    [SL_DBI_SPEND] = "spend",         [SL_DBI_TEAMS] = "teams",
    [SL_DBI_CACHE] = "cache",         [SL_DBI_CACHE_AGE] = "cache_age",
    [SL_DBI_CACHE_VEC] = "cache_vec", [SL_DBI_RESPONSES] = "responses",
    [SL_DBI_SESSIONS] = "sessions",   [SL_DBI_RESPONSE_IDS] = "response_ids",
};

/*
 * Forward migrations: db_migrations[v] turns schema v into v + 1, inside the
 * opening write transaction. Version 0 is a fresh environment, which needs
 * nothing because every database was just created.
 */
static const db_migrate_fn db_migrations[SL_DB_SCHEMA_VERSION] = {
    [0] = NULL, [1] = sl__responses_migrate_2, /* stored responses numbered in write order */
};

static db_state_t db_local_state;
static db_state_t *db_state = &db_local_state;

/* Transactions this thread holds, over every handle: the map cannot grow while it is not 0. */
static _Thread_local unsigned db_txns_held;
static _Thread_local bool db_in_write;


int
sl_db_open(const char *path, size_t map_size, unsigned flags, sl_db_t **out)
{
    sl_db_t *db;
    MDB_envinfo info;
    struct stat st;
    MDB_stat ms;
    off_t size = -1;
    int rc, mrc, brc = 0, dead = 0, err;
    /*
     * MDB_WRITEMAP: a commit writes the map in place instead of pwrite()ing
     * every dirty page, which is what keeps the per-request ledger write
     * cheap (scripts/bench: ledger on/off 0.75 -> 0.91). LMDB's price is
     * that a wild write into the map could damage the store; nothing here
     * writes through a pointer LMDB returned (values are copied out), and
     * the ASan builds in CI would catch a stray write. The other price, a
     * SIGBUS when the disk cannot back a page, is paid off by db_back.
     */
    unsigned mflags = MDB_NOSYNC | MDB_NOTLS | MDB_WRITEMAP;

    *out = NULL;
    if (path == NULL || *path == '\0') {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "storage path is empty");
        return -EINVAL;
    }
    if (map_size == 0) {
        map_size = DB_DEFAULT_MAP;
    }
    if (flags & SL_DB_RDONLY) {
        mflags |= MDB_RDONLY;
        if (stat(path, &st) != 0) {
            err = errno;
            sl_log(&sl_log_main, SL_LOG_ERR, err, "storage \"%s\" cannot be opened", path);
            return -err;
        }
    } else {
        rc = db_mkdir(path);
        if (rc != 0) {
            return rc;
        }
        if (stat(path, &st) != 0) {
            err = errno;
            sl_log(&sl_log_main, SL_LOG_ERR, err, "stat() \"%s\" failed", path);
            return -err;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "storage path \"%s\" is not a directory", path);
        return -ENOTDIR;
    }
    if (st.st_mode & 077) {
        sl_log(&sl_log_main, SL_LOG_WARN, 0,
               "storage directory \"%s\" is accessible by group or others (mode %04o), "
               "run chmod 700 on it",
               path, (unsigned) (st.st_mode & 07777));
    }
    rc = db_check_file(path, flags, &size);
    if (rc != 0) {
        return rc;
    }

    db = calloc(1, sizeof(*db));
    if (db == NULL) {
        return -ENOMEM;
    }
    db->path = strdup(path);
    if (db->path == NULL) {
        free(db);
        return -ENOMEM;
    }
    db->flags = flags;
    db->lockfd = -1;
    db->map_max = map_size <= SIZE_MAX / DB_GROWTH_LIMIT ? map_size * DB_GROWTH_LIMIT : SIZE_MAX;
    atomic_init(&db->spare, NULL);
    atomic_init(&db->backed, 0);
    atomic_init(&db->back_at, 0);
    atomic_init(&db->eval_skip, 0);
    rc = pthread_rwlock_init(&db->lock, NULL);
    if (rc != 0) {
        free(db->path);
        free(db);
        return -rc;
    }

    mrc = mdb_env_create(&db->env);
    if (mrc != 0) {
        rc = db_error(db, "mdb_env_create()", SL_DBI_COUNT, mrc);
        db->env = NULL;
        goto out_free;
    }
    mrc = mdb_env_set_maxdbs(db->env, SL_DBI_COUNT);
    if (mrc == 0) {
        mrc = mdb_env_set_maxreaders(db->env, DB_MAX_READERS);
    }
    if (mrc == 0) {
        mrc = mdb_env_set_mapsize(db->env, map_size);
    }
    if (mrc != 0) {
        rc = db_error(db, "mdb_env_set_*()", SL_DBI_COUNT, mrc);
        goto out_free;
    }
    if (!(flags & SL_DB_RDONLY)) {
        rc = db_make_lockfile(path);
        if (rc != 0) {
            goto out_free;
        }
    }
    mrc = mdb_env_open(db->env, path, mflags, 0600);
    if (mrc == ENOENT && (flags & SL_DB_RDONLY)) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "storage \"%s\" holds no database yet", path);
        rc = -ENOENT;
        goto out_free;
    }
    if (mrc != 0) {
        rc = db_error(db, "mdb_env_open()", SL_DBI_COUNT, mrc);
        goto out_free;
    }
    mdb_env_info(db->env, &info);
    db->map_size = info.me_mapsize;
    if (db->map_size > db->map_max) {
        db->map_max = db->map_size;
    }
    mdb_env_stat(db->env, &ms);
    db->psize = ms.ms_psize;
    rc = db_check_length(db, size);
    if (rc != 0) {
        goto out_free;
    }
    db_back_lockfile(db);
    if (!(flags & SL_DB_RDONLY)) {
        brc = db_back(db, db->map_size);
        if (brc != 0) {
            atomic_store(&db->back_at, db_now_ms() + DB_BACK_RETRY);
        }
    }

    /* slots of processes that died inside a read transaction pin old pages forever */
    mrc = mdb_reader_check(db->env, &dead);
    if (mrc != 0) {
        rc = db_error(db, "mdb_reader_check()", SL_DBI_COUNT, mrc);
        goto out_free;
    }
    if (dead > 0) {
        sl_log(&sl_log_main, SL_LOG_NOTICE, 0, "cleared %d stale reader slot(s) in \"%s\"", dead,
               path);
    }

    rc = (flags & SL_DB_RDONLY) ? db_init_read(db) : db_init(db);
    if (rc == SL_EFULL) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "storage \"%s\" cannot be set up: the filesystem has no room for its %zu-byte map "
               "(%s); free disk space or lower storage.map_size",
               path, db->map_size, sl_strerror(brc));
    }
    if (rc != 0) {
        goto out_free;
    }
    if (brc != 0) {
        char why[DB_WHY_MAX];

        snprintf(why, sizeof(why), "the filesystem has no room to reserve its %zu-byte map (%s)",
                 db->map_size, sl_strerror(brc));
        db_set_full(db, true, why, 0);
    }
    *out = db;
    return 0;

out_free:
    if (db->env != NULL) {
        mdb_env_close(db->env);
    }
    if (db->lockfd >= 0) {
        close(db->lockfd);
    }
    pthread_rwlock_destroy(&db->lock);
    free(db->path);
    free(db);
    return rc;
}


/* mkdir -p with mode 0700 for every directory it creates. */
static int
db_mkdir(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    int err;

    if (len >= sizeof(buf)) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "storage path \"%s\" is too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') {
            continue;
        }
        if (buf[i - 1] == '/') {
            continue;
        }
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            err = errno;
            sl_log(&sl_log_main, SL_LOG_ERR, err, "mkdir() \"%s\" failed", buf);
            return -err;
        }
        buf[i] = path[i];
    }
    return 0;
}


/* Creates the named databases and brings the schema up to date. Repeatable. */
static int
db_init_write(sl_txn_t *t, void *arg)
{
    sl_db_t *db = t->db;
    int mrc;

    (void) arg;
    for (int i = 0; i < SL_DBI_COUNT; i++) {
        mrc = mdb_dbi_open(t->txn, db_names[i], MDB_CREATE, &db->dbi[i]);
        if (mrc == MDB_MAP_FULL) {
            t->full = true;
            return SL_ESTORE;
        }
        if (mrc != 0) {
            return db_error(db, "mdb_dbi_open()", (sl_dbi_e) i, mrc);
        }
        db->has[i] = true;
    }
    return db_check_schema(t, true);
}


/*
 * A read-only open cannot create anything: a database that is missing
 * (an environment written by an older sluice) reads as empty. The handles
 * outlive the transaction only if it commits.
 */
static int
db_init_read(sl_db_t *db)
{
    sl_txn_t t;
    int rc, mrc;

    rc = db_begin(db, false, &t);
    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < SL_DBI_COUNT; i++) {
        mrc = mdb_dbi_open(t.txn, db_names[i], 0, &db->dbi[i]);
        if (mrc == MDB_NOTFOUND) {
            continue;
        }
        if (mrc != 0) {
            rc = db_error(db, "mdb_dbi_open()", (sl_dbi_e) i, mrc);
            goto out_abort;
        }
        db->has[i] = true;
    }
    rc = db_check_schema(&t, false);
    if (rc != 0) {
        goto out_abort;
    }
    mrc = mdb_txn_commit(t.txn);
    db_unlock(db);
    if (mrc != 0) {
        return db_error(db, "mdb_txn_commit()", SL_DBI_COUNT, mrc);
    }
    return 0;

out_abort:
    mdb_txn_abort(t.txn);
    db_unlock(db);
    return rc;
}


/*
 * A writable open: when every database exists and the schema is current
 * nothing is written, so a store whose disk filled up still opens; else
 * one write transaction creates what is missing and migrates.
 */
static int
db_init(sl_db_t *db)
{
    sl_txn_t t;
    sl_str_t v;
    bool complete = true;
    int rc, mrc;

    rc = db_begin(db, false, &t);
    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < SL_DBI_COUNT; i++) {
        mrc = mdb_dbi_open(t.txn, db_names[i], 0, &db->dbi[i]);
        if (mrc == MDB_NOTFOUND) {
            complete = false;
            continue;
        }
        if (mrc != 0) {
            rc = db_error(db, "mdb_dbi_open()", (sl_dbi_e) i, mrc);
            goto out_abort;
        }
        db->has[i] = true;
    }
    if (complete) {
        rc = sl_db_get(&t, SL_DBI_META, DB_SCHEMA_KEY, sizeof(DB_SCHEMA_KEY) - 1, &v);
        if (rc != 0 && rc != SL_ENOTFOUND) {
            goto out_abort;
        }
        complete = rc == 0 && v.len == 4
                   && ((uint32_t) (uint8_t) v.p[0] << 24 | (uint32_t) (uint8_t) v.p[1] << 16
                       | (uint32_t) (uint8_t) v.p[2] << 8 | (uint8_t) v.p[3])
                          == SL_DB_SCHEMA_VERSION;
    }
    if (!complete) {
        mdb_txn_abort(t.txn);
        db_unlock(db);
        for (int i = 0; i < SL_DBI_COUNT; i++) {
            db->has[i] = false;
        }
        return sl_db_write(db, db_init_write, NULL);
    }
    mrc = mdb_txn_commit(t.txn);
    db_unlock(db);
    if (mrc != 0) {
        return db_error(db, "mdb_txn_commit()", SL_DBI_COUNT, mrc);
    }
    return 0;

out_abort:
    mdb_txn_abort(t.txn);
    db_unlock(db);
    return rc;
}


/*
 * Looks at data.mdb before LMDB does. A file of 0 bytes is a store that was
 * truncated (or a copy that failed): LMDB would silently start an empty
 * store in it, so it is refused unless SL_DB_INIT says to start one. It is
 * also, for a moment, a new store another process is creating (LMDB makes
 * the file, then writes its first pages): so the file must stay empty for
 * DB_EMPTY_WAIT_MS before it is called truncated. *size is the file's
 * length, -1 when there is none yet.
 */
static int
db_check_file(const char *path, unsigned flags, off_t *size)
{
    char file[PATH_MAX];
    struct stat st;
    int n, err;

    *size = -1;
    n = snprintf(file, sizeof(file), "%s/data.mdb", path);
    if (n < 0 || (size_t) n >= sizeof(file)) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "storage path \"%s\" is too long", path);
        return -ENAMETOOLONG;
    }
    for (unsigned waited = 0;; waited += DB_EMPTY_STEP_MS) {
        if (stat(file, &st) != 0) {
            err = errno;
            if (err == ENOENT) {
                return 0;
            }
            sl_log(&sl_log_main, SL_LOG_ERR, err, "stat() \"%s\" failed", file);
            return -err;
        }
        *size = st.st_size;
        if (st.st_size > 0) {
            return 0;
        }
        if (((flags & SL_DB_INIT) && !(flags & SL_DB_RDONLY)) || waited >= DB_EMPTY_WAIT_MS) {
            break;
        }
        nanosleep(&(struct timespec){ 0, DB_EMPTY_STEP_MS * 1000000L }, NULL);
    }
    if ((flags & SL_DB_INIT) && !(flags & SL_DB_RDONLY)) {
        sl_log(&sl_log_main, SL_LOG_WARN, 0,
               "storage \"%s\" is empty (0 bytes): starting a new, empty store in it as "
               "--init-storage asks",
               file);
        return 0;
    }
    sl_log(&sl_log_main, SL_LOG_ERR, 0,
           "storage \"%s\" is empty (0 bytes): the store was truncated or never written. "
           "Restore data.mdb from a backup (see \"Backup and recovery\" in README.md), or, to "
           "start with an empty store on purpose, run \"sluice serve --init-storage\" once",
           file);
    return SL_ECORRUPT;
}


/*
 * A data.mdb shorter than its own last page has lost data (a copy that
 * stopped half-way, a truncate): reading the missing pages would crash
 * with SIGBUS. size is the length before LMDB opened it (a writable open
 * extends the file to the map size), -1 for a new store.
 */
static int
db_check_length(sl_db_t *db, off_t size)
{
    MDB_envinfo info;
    struct stat st;
    size_t need;
    int fd;

    if ((db->flags & SL_DB_RDONLY) && mdb_env_get_fd(db->env, &fd) == 0 && fstat(fd, &st) == 0) {
        size = st.st_size;
    }
    if (size <= 0) {
        return 0;
    }
    mdb_env_info(db->env, &info);
    need = (info.me_last_pgno + 1) * db->psize;
    if ((size_t) size >= need) {
        return 0;
    }
    sl_log(&sl_log_main, SL_LOG_ERR, 0,
           "storage \"%s/data.mdb\" is truncated: it has %lld bytes but its pages reach byte "
           "%zu. Stop sluice, keep the file for analysis and restore the last backup (see "
           "\"Backup and recovery\" in README.md)",
           db->path, (long long) size, need);
    return SL_ECORRUPT;
}


static int
db_check_schema(sl_txn_t *t, bool write)
{
    sl_db_t *db = t->db;
    sl_str_t v = sl_str_null;
    uint8_t be[4];
    uint32_t version = 0;
    int rc;

    rc = sl_db_get(t, SL_DBI_META, DB_SCHEMA_KEY, sizeof(DB_SCHEMA_KEY) - 1, &v);
    if (rc == 0) {
        if (v.len != 4) {
            sl_log(&sl_log_main, SL_LOG_ERR, 0,
                   "storage \"%s\" has a malformed schema version record (%zu bytes)", db->path,
                   v.len);
            return SL_ESTORE;
        }
        memcpy(be, v.p, 4);
        version = (uint32_t) be[0] << 24 | (uint32_t) be[1] << 16 | (uint32_t) be[2] << 8 | be[3];
    } else if (rc != SL_ENOTFOUND) {
        return rc;
    }
    if (version > SL_DB_SCHEMA_VERSION) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "storage \"%s\" has schema version %u, newer than the %u this sluice knows: "
               "it was written by a newer sluice, run that one",
               db->path, version, SL_DB_SCHEMA_VERSION);
        return SL_ESTORE;
    }
    if (version == SL_DB_SCHEMA_VERSION) {
        return 0;
    }
    if (!write) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "storage \"%s\" has schema version %u and needs an upgrade to %u, which a "
               "read-only open cannot do: run any command that writes (e.g. \"sluice keys list\")",
               db->path, version, SL_DB_SCHEMA_VERSION);
        return SL_ESTORE;
    }
    for (uint32_t v0 = version; v0 < SL_DB_SCHEMA_VERSION; v0++) {
        if (db_migrations[v0] != NULL) {
            rc = db_migrations[v0](t);
            if (rc != 0) {
                return rc;
            }
        }
    }
    be[0] = (uint8_t) (SL_DB_SCHEMA_VERSION >> 24);
    be[1] = (uint8_t) (SL_DB_SCHEMA_VERSION >> 16);
    be[2] = (uint8_t) (SL_DB_SCHEMA_VERSION >> 8);
    be[3] = (uint8_t) SL_DB_SCHEMA_VERSION;
    rc = sl_db_put(t, SL_DBI_META, DB_SCHEMA_KEY, sizeof(DB_SCHEMA_KEY) - 1, be, 4, false);
    if (rc == 0 && version != 0) {
        sl_log(&sl_log_main, SL_LOG_NOTICE, 0, "storage \"%s\" migrated from schema %u to %u",
               db->path, version, SL_DB_SCHEMA_VERSION);
    }
    return rc;
}


void
sl_db_close(sl_db_t *db)
{
    sl_txn_t *spare;
    int mrc;

    if (db == NULL) {
        return;
    }
    spare = atomic_exchange(&db->spare, NULL);
    if (spare != NULL) {
        mdb_txn_abort(spare->txn);
        free(spare);
    }
    if (!(db->flags & SL_DB_RDONLY)) {
        mrc = mdb_env_sync(db->env, 1);
        if (mrc != 0) {
            db_error(db, "mdb_env_sync()", SL_DBI_COUNT, mrc);
        }
    }
    mdb_env_close(db->env);
    if (db->lockfd >= 0) {
        close(db->lockfd);
    }
    pthread_rwlock_destroy(&db->lock);
    free(db->path);
    free(db);
}


/*
 * Begins a transaction holding the lock shared. MDB_MAP_RESIZED means
 * another process grew the map past ours: adopt its size (which needs the
 * lock exclusive, so it is dropped first) and begin again.
 */
static int
db_begin(sl_db_t *db, bool write, sl_txn_t *t)
{
    int mrc, rc;

    t->db = db;
    t->txn = NULL;
    t->append = NULL;
    t->write = write;
    t->full = false;
    for (int attempt = 0;; attempt++) {
        pthread_rwlock_rdlock(&db->lock);
        db_txns_held++;
        mrc = mdb_txn_begin(db->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
        if (mrc == 0) {
            return 0;
        }
        db_unlock(db);
        if (mrc != MDB_MAP_RESIZED || attempt > 0) {
            return db_error(db, "mdb_txn_begin()", SL_DBI_COUNT, mrc);
        }
        rc = db_adopt_size(db);
        if (rc != 0) {
            return rc;
        }
    }
}


static void
db_unlock(sl_db_t *db)
{
    db_txns_held--;
    pthread_rwlock_unlock(&db->lock);
}


static int
db_adopt_size(sl_db_t *db)
{
    MDB_envinfo info;
    int mrc;

    if (db_txns_held > 0) {
        sl_log(&sl_log_main, SL_LOG_ALERT, 0,
               "storage \"%s\" grew in another process but this thread holds a transaction, "
               "so the map cannot follow",
               db->path);
        return SL_ESTORE;
    }
    pthread_rwlock_wrlock(&db->lock);
    mrc = mdb_env_set_mapsize(db->env, 0);
    if (mrc == 0) {
        mdb_env_info(db->env, &info);
        db->map_size = info.me_mapsize;
        if (db->map_size > db->map_max) {
            db->map_max = db->map_size;
        }
    }
    pthread_rwlock_unlock(&db->lock);
    if (mrc != 0) {
        return db_error(db, "mdb_env_set_mapsize()", SL_DBI_COUNT, mrc);
    }
    return 0;
}


/*
 * Doubles the map (up to map_max) unless another thread already grew it
 * since the failed transaction saw seen. The new size is reserved on disk
 * first: a map the disk cannot back does not grow. Returns 0 (try again),
 * -ENOSPC (at the cap, or no disk space; db->grow_why says which) or
 * SL_ESTORE.
 */
static int
db_grow(sl_db_t *db, size_t seen)
{
    MDB_envinfo info;
    size_t want;
    int mrc = 0, rc = 0;

    if (db_txns_held > 0) {
        sl_log(&sl_log_main, SL_LOG_ALERT, 0,
               "storage \"%s\" is full but this thread holds a transaction, so the map "
               "cannot grow",
               db->path);
        return SL_ESTORE;
    }
    pthread_rwlock_wrlock(&db->lock);
    if (db->map_size == seen) {
        if (db->map_size >= db->map_max) {
            snprintf(db->grow_why, sizeof(db->grow_why),
                     "its map reached its map limit of %zu bytes (16 x storage.map_size)",
                     db->map_max);
            rc = -ENOSPC;
        } else {
            want = db->map_size <= db->map_max / 2 ? db->map_size * 2 : db->map_max;
            rc = db_back(db, want);
            if (rc != 0) {
                snprintf(db->grow_why, sizeof(db->grow_why),
                         "the filesystem has no room to grow its map to %zu bytes (%s)", want,
                         sl_strerror(rc));
                rc = -ENOSPC;
            } else {
                mrc = mdb_env_set_mapsize(db->env, want);
            }
            if (rc == 0 && mrc == 0) {
                mdb_env_info(db->env, &info);
                db->map_size = info.me_mapsize;
                sl_log(&sl_log_main, SL_LOG_NOTICE, 0, "storage \"%s\" map grown to %zu bytes",
                       db->path, db->map_size);
            }
        }
    }
    pthread_rwlock_unlock(&db->lock);
    if (mrc != 0) {
        return db_error(db, "mdb_env_set_mapsize()", SL_DBI_COUNT, mrc);
    }
    return rc;
}


static int
db_drop_cache(sl_db_t *db)
{
    sl_txn_t t;
    size_t n = 0;
    int rc, mrc;

    rc = db_begin(db, true, &t);
    if (rc != 0) {
        return rc;
    }
    rc = sl_db_count(&t, SL_DBI_CACHE, &n);
    if (rc == 0) {
        rc = db_drop_cache_txn(&t, NULL);
    }
    if (rc == 0) {
        mrc = mdb_txn_commit(t.txn);
        if (mrc == MDB_MAP_FULL) {
            rc = -ENOSPC;
        } else if (mrc != 0) {
            rc = db_error(db, "mdb_txn_commit()", SL_DBI_CACHE, mrc);
        }
    } else {
        mdb_txn_abort(t.txn);
    }
    db_unlock(db);
    if (rc == 0 && n > 0) {
        sl_log(&sl_log_main, SL_LOG_WARN, 0,
               "storage \"%s\" is full: emptied the response cache (%zu entries)", db->path, n);
    }
    return rc == 0 && n == 0 ? -ENOSPC : rc;
}


/* Empties the response cache: its entries and their two indexes. */
static int
db_drop_cache_txn(sl_txn_t *t, void *arg)
{
    static const sl_dbi_e dbis[] = { SL_DBI_CACHE, SL_DBI_CACHE_AGE, SL_DBI_CACHE_VEC };
    int mrc;

    (void) arg;
    for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
        if (!t->db->has[dbis[i]]) {
            continue;
        }
        mrc = mdb_drop(t->txn, t->db->dbi[dbis[i]], 0);
        if (mrc == MDB_MAP_FULL) {
            return -ENOSPC;
        }
        if (mrc != 0) {
            return db_error(t->db, "mdb_drop()", dbis[i], mrc);
        }
    }
    return 0;
}


int
sl_db_read(sl_db_t *db, sl_txn_t **out)
{
    sl_txn_t *t;
    int mrc, rc;

    *out = NULL;
    t = atomic_exchange(&db->spare, NULL);
    if (t != NULL) {
        pthread_rwlock_rdlock(&db->lock);
        db_txns_held++;
        mrc = mdb_txn_renew(t->txn);
        if (mrc == 0) {
            *out = t;
            return 0;
        }
        db_unlock(db);
        /* MDB_MAP_RESIZED and the rest: start over with a new transaction */
        mdb_txn_abort(t->txn);
        free(t);
    }
    t = malloc(sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    rc = db_begin(db, false, t);
    if (rc != 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}


void
sl_db_abort(sl_txn_t *t)
{
    sl_db_t *db;
    sl_txn_t *expected = NULL;

    if (t == NULL) {
        return;
    }
    db = t->db;
    if (t->write) {
        sl_log(&sl_log_main, SL_LOG_ALERT, 0,
               "sl_db_abort() called on a write transaction: return an error from the "
               "sl_db_write() callback instead");
        return;
    }
    mdb_txn_reset(t->txn);
    db_unlock(db);
    if (!atomic_compare_exchange_strong(&db->spare, &expected, t)) {
        mdb_txn_abort(t->txn);
        free(t);
    }
}


int
sl_db_write(sl_db_t *db, int (*fn)(sl_txn_t *t, void *arg), void *arg)
{
    sl_txn_t t;
    size_t seen;
    bool dropped = false;
    int rc, mrc;

    if (db->flags & SL_DB_RDONLY) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "storage \"%s\" is open read-only", db->path);
        return SL_ESTORE;
    }
    if (db_in_write) {
        sl_log(&sl_log_main, SL_LOG_ALERT, 0,
               "sl_db_write() called inside a write transaction of the same thread");
        return -EDEADLK;
    }
    rc = db_ensure_backed(db);
    if (rc != 0) {
        return rc;
    }
    for (;;) {
        rc = db_begin(db, true, &t);
        if (rc != 0) {
            return rc;
        }
        seen = db->map_size;
        db_in_write = true;
        rc = fn(&t, arg);
        db_in_write = false;
        if (rc == 0 && !t.full) {
            mrc = mdb_txn_commit(t.txn);
            if (mrc == MDB_MAP_FULL) {
                t.full = true;
            } else if (mrc != 0) {
                rc = db_error(db, "mdb_txn_commit()", SL_DBI_COUNT, mrc);
            }
        } else {
            mdb_txn_abort(t.txn);
        }
        db_unlock(db);
        if (!t.full) {
            if (rc == 0) {
                db_after_commit(db);
            }
            return rc;
        }

        rc = db_grow(db, seen);
        if (rc == 0) {
            continue;
        }
        if (rc != -ENOSPC) {
            return rc;
        }
        if (!dropped) {
            dropped = true;
            rc = db_drop_cache(db);
            if (rc == 0) {
                continue;
            }
            if (rc != -ENOSPC) {
                return rc;
            }
        }
        {
            char why[DB_WHY_MAX + 64];

            pthread_rwlock_rdlock(&db->lock);
            snprintf(why, sizeof(why), "%s, and the response cache is empty", db->grow_why);
            pthread_rwlock_unlock(&db->lock);
            db_set_full(db, true, why, 0);
        }
        return SL_EFULL;
    }
}


/*
 * Reserves the disk space of the whole map when it is not yet, at most
 * once per DB_BACK_RETRY. Returns 0 or SL_EFULL (the full state is set).
 */
static int
db_ensure_backed(sl_db_t *db)
{
    char why[DB_WHY_MAX];
    size_t size;
    uint64_t now;
    int rc;

    pthread_rwlock_rdlock(&db->lock);
    size = db->map_size;
    if (atomic_load(&db->backed) >= size) {
        pthread_rwlock_unlock(&db->lock);
        return 0;
    }
    now = db_now_ms();
    if (now < atomic_load(&db->back_at)) {
        pthread_rwlock_unlock(&db->lock);
        return SL_EFULL;
    }
    atomic_store(&db->back_at, now + DB_BACK_RETRY);
    rc = db_back(db, size);
    pthread_rwlock_unlock(&db->lock);
    if (rc != 0) {
        snprintf(why, sizeof(why), "the filesystem has no room to reserve its %zu-byte map (%s)",
                 size, sl_strerror(rc));
        db_set_full(db, true, why, 0);
        return SL_EFULL;
    }
    return 0;
}


/*
 * Reserves disk blocks for the first size bytes of data.mdb (no-op for
 * what is reserved already). Returns 0, -ENOSPC or another -errno; logs
 * nothing, the caller says what the failure means.
 */
static int
db_back(sl_db_t *db, size_t size)
{
    size_t from = atomic_load(&db->backed);
    int fd, rc;

    if (from >= size) {
        return 0;
    }
    if (mdb_env_get_fd(db->env, &fd) != 0) {
        return -EBADF;
    }
    do {
        rc = posix_fallocate(fd, (off_t) from, (off_t) (size - from));
    } while (rc == EINTR);
    if (rc != 0) {
        return -rc;
    }
    /* other threads may have reserved more meanwhile: keep the larger */
    while (from < size && !atomic_compare_exchange_weak(&db->backed, &from, size)) {
    }
    return 0;
}


/*
 * LMDB creates a missing lock.mdb sparse and writes its header through a
 * mapping, which on a full disk is a SIGBUS inside mdb_env_open. So a new
 * one is made here, its blocks reserved; LMDB adopts a lock file at least
 * as large as it needs. Before mdb_env_open this process holds no lock on
 * the file, so closing the descriptor drops nothing.
 */
static int
db_make_lockfile(const char *path)
{
    char file[PATH_MAX];
    int fd, rc, n;

    n = snprintf(file, sizeof(file), "%s/lock.mdb", path);
    if (n < 0 || (size_t) n >= sizeof(file)) {
        return -ENAMETOOLONG;
    }
    fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return errno == EEXIST ? 0 : -errno;
    }
    do {
        rc = posix_fallocate(fd, 0, DB_LOCK_SIZE);
    } while (rc == EINTR);
    close(fd);
    if (rc != 0) {
        unlink(file);
        sl_log(&sl_log_main, SL_LOG_ERR, rc,
               "storage \"%s\" cannot be set up: the filesystem has no room for its lock file; "
               "free disk space",
               path);
        return rc == ENOSPC ? SL_EFULL : -rc;
    }
    return 0;
}


/*
 * The lock file is a shared mapping too (the reader table): reserve its
 * blocks so that taking a reader slot cannot fault on a full disk. The
 * descriptor stays open until after mdb_env_close: closing any descriptor
 * of a file drops every fcntl() lock the process holds on it, and LMDB's
 * locks on lock.mdb must live as long as the environment.
 */
static void
db_back_lockfile(sl_db_t *db)
{
    char file[PATH_MAX];
    struct stat st;
    int rc, n;

    n = snprintf(file, sizeof(file), "%s/lock.mdb", db->path);
    if (n < 0 || (size_t) n >= sizeof(file)) {
        return;
    }
    db->lockfd = open(file, O_RDWR | O_CLOEXEC);
    if (db->lockfd < 0) {
        return;
    }
    rc = fstat(db->lockfd, &st) == 0 && st.st_size > 0 ? posix_fallocate(db->lockfd, 0, st.st_size)
                                                       : 0;
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_WARN, rc, "cannot reserve disk space for \"%s\"", file);
    }
}


/*
 * Enters (full) or leaves the full state; whoever flips it logs: an alert
 * with why when it starts, a notice with the room when it ends.
 */
static void
db_set_full(sl_db_t *db, bool full, const char *why, size_t room)
{
    if (full) {
        if (!atomic_exchange(&db_state->full, true)) {
            sl_metric_set(SL_METRIC_STORAGE_FULL, 1);
            sl_log(&sl_log_main, SL_LOG_ALERT, 0,
                   "storage \"%s\" is full: %s; until there is room again new requests are "
                   "handled as ledger.on_full says (free disk space, raise storage.map_size and "
                   "reload, or lower ledger.retention)",
                   db->path, why);
        }
        return;
    }
    if (atomic_exchange(&db_state->full, false)) {
        sl_metric_set(SL_METRIC_STORAGE_FULL, 0);
        sl_log(&sl_log_main, SL_LOG_NOTICE, 0,
               "storage \"%s\" has room again (%zu bytes free in its map): requests are recorded "
               "again",
               db->path, room);
    }
}


/*
 * After a commit: without a reserve a write that fits ends a full episode
 * (CLI, tests); with one, a map whose tail is getting short is evaluated,
 * which grows it or enters the full state. An evaluation that found room R
 * is not repeated for the next (R - reserve) / DB_COMMIT_MAX commits, which
 * cannot have used it up: the free list is not read on every write. Leaving
 * the full state is left to sl_db_check_room, run periodically.
 */
static void
db_after_commit(sl_db_t *db)
{
    MDB_envinfo info;
    size_t used, skip;

    if (db->reserve == 0) {
        db_set_full(db, false, NULL, 0);
        return;
    }
    if (atomic_load_explicit(&db_state->full, memory_order_relaxed)) {
        return;
    }
    mdb_env_info(db->env, &info);
    used = (info.me_last_pgno + 1) * db->psize;
    if (used < info.me_mapsize && info.me_mapsize - used >= db->reserve) {
        return;
    }
    skip = atomic_load(&db->eval_skip);
    while (skip > 0 && !atomic_compare_exchange_weak(&db->eval_skip, &skip, skip - 1)) {
    }
    if (skip > 0) {
        return;
    }
    sl_db_check_room(db);
}


int
sl_db_check_room(sl_db_t *db)
{
    char why[DB_WHY_MAX * 2];
    size_t room = 0, size = 0, max;
    bool was_full;
    int rc;

    if (db->flags & SL_DB_RDONLY) {
        return 0;
    }
    /*
     * Only a measurement begun inside an episode may end it: room measured
     * before another process entered the full state is stale by then, and
     * ending the episode with it would flap (a notice, then a second alert).
     */
    was_full = atomic_load(&db_state->full);
    rc = db_ensure_backed(db);
    if (rc != 0 || db->reserve == 0) {
        return rc;
    }
    rc = db_room(db, &room, &size);
    if (rc != 0) {
        return rc;
    }
    pthread_rwlock_rdlock(&db->lock);
    max = db->map_max;
    pthread_rwlock_unlock(&db->lock);
    /* grow while that helps: each step doubles the map, up to its limit and the disk's */
    while (room < db->reserve && size < max) {
        rc = db_grow(db, size);
        if (rc == -ENOSPC) {
            break;
        }
        if (rc == 0) {
            rc = db_room(db, &room, &size);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (room < db->reserve && db_drop_cache(db) == 0) {
        /* the response cache goes before the ledger and the keys run short */
        rc = db_room(db, &room, &size);
        if (rc != 0) {
            return rc;
        }
    }
    if (room < db->reserve) {
        pthread_rwlock_rdlock(&db->lock);
        snprintf(why, sizeof(why),
                 "%zu bytes are free in its %zu-byte map, less than the %zu kept for requests in "
                 "flight, and %s",
                 room, size, db->reserve,
                 db->map_size < db->map_max ? db->grow_why : "it is at its map limit");
        pthread_rwlock_unlock(&db->lock);
        db_set_full(db, true, why, room);
        return SL_EFULL;
    }
    atomic_store(&db->eval_skip, (room - db->reserve) / DB_COMMIT_MAX);
    if (was_full && room >= 2 * db->reserve) {
        db_set_full(db, false, NULL, room);
    }
    return atomic_load(&db_state->full) ? SL_EFULL : 0;
}


/*
 * Free bytes in the map: pages past the last one used, plus the pages on
 * LMDB's free list (what pruning freed; reused before the map extends).
 */
static int
db_room(sl_db_t *db, size_t *room, size_t *map_size)
{
    MDB_envinfo info;
    MDB_cursor *c;
    MDB_val k, v;
    sl_txn_t t;
    size_t pages, used, free_pages = 0;
    int rc, mrc;

    rc = db_begin(db, false, &t);
    if (rc != 0) {
        return rc;
    }
    mdb_env_info(db->env, &info);
    /* the free list is database 0: records of page-number lists, count first */
    mrc = mdb_cursor_open(t.txn, 0, &c);
    if (mrc != 0) {
        rc = db_error(db, "mdb_cursor_open()", SL_DBI_COUNT, mrc);
    } else {
        while ((mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
            if (v.mv_size >= sizeof(size_t)) {
                free_pages += *(const size_t *) v.mv_data;
            }
        }
        if (mrc != MDB_NOTFOUND) {
            rc = db_error(db, "mdb_cursor_get()", SL_DBI_COUNT, mrc);
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(t.txn);
    db_unlock(db);
    if (rc != 0) {
        return rc;
    }
    pages = info.me_mapsize / db->psize;
    used = info.me_last_pgno + 1;
    *room = ((pages > used ? pages - used : 0) + free_pages) * db->psize;
    *map_size = info.me_mapsize;
    return 0;
}


size_t
sl_db_shared_size(void)
{
    return sizeof(db_state_t);
}


int
sl_db_shared_init(void)
{
    void *p;

    if (db_state != &db_local_state) {
        return 0;
    }
    p = sl_shm_region("storage", sizeof(db_state_t));
    if (p == NULL) {
        return -ENOMEM;
    }
    db_state = p;
    atomic_init(&db_state->full, atomic_load(&db_local_state.full));
    atomic_init(&db_state->synced_ms, 0);
    atomic_init(&db_state->sync_gen, 0);
    return 0;
}


bool
sl_db_is_full(void)
{
    return atomic_load_explicit(&db_state->full, memory_order_relaxed);
}


void
sl_db_set_reserve(sl_db_t *db, size_t bytes)
{
    db->reserve = bytes;
}


static uint64_t
db_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


int
sl_db_get(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, sl_str_t *val)
{
    MDB_val k = { klen, (void *) key }, v;
    int mrc;

    if (t->full) {
        return SL_ESTORE;
    }
    if (!t->db->has[dbi]) {
        return SL_ENOTFOUND;
    }
    mrc = mdb_get(t->txn, t->db->dbi[dbi], &k, &v);
    if (mrc == MDB_NOTFOUND) {
        return SL_ENOTFOUND;
    }
    if (mrc != 0) {
        return db_error(t->db, "mdb_get()", dbi, mrc);
    }
    if (!db_sane_len(t, klen, v.mv_size)) {
        return db_damaged(t->db, "mdb_get()", dbi);
    }
    val->p = v.mv_data;
    val->len = v.mv_size;
    return 0;
}


int
sl_db_put(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val, size_t vlen,
          bool noover)
{
    MDB_val k = { klen, (void *) key }, v = { vlen, (void *) val };

    return db_put(t, dbi, &k, &v, noover ? MDB_NOOVERWRITE : 0);
}


int
sl_db_reserve(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, size_t vlen, bool append,
              void **out)
{
    MDB_val k = { klen, (void *) key }, v = { vlen, NULL };
    int rc;

    rc = db_put(t, dbi, &k, &v, MDB_RESERVE | (append ? MDB_APPEND : 0));
    if (rc == 0) {
        SL_ASSERT(v.mv_size == vlen);
        *out = v.mv_data;
    }
    return rc;
}


/* mdb_put with flags: 0, -EEXIST (MDB_KEYEXIST) or SL_ESTORE (a full map marks t). */
static int
db_put(sl_txn_t *t, sl_dbi_e dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
    if (t->full) {
        return SL_ESTORE;
    }
    return db_put_rc(t, dbi, mdb_put(t->txn, t->db->dbi[dbi], k, v, flags));
}


/* What a put's LMDB code mrc means, as db_put returns it. */
static int
db_put_rc(sl_txn_t *t, sl_dbi_e dbi, int mrc)
{
    if (mrc == 0) {
        return 0;
    }
    if (mrc == MDB_KEYEXIST) {
        return -EEXIST;
    }
    if (mrc == MDB_MAP_FULL) {
        /* not an error yet: sl_db_write grows the map and runs the transaction again */
        t->full = true;
        return SL_ESTORE;
    }
    return db_error(t->db, "mdb_put()", dbi, mrc);
}


int
sl_db_append(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val, size_t vlen)
{
    return db_append(t, dbi, key, klen, val, vlen, NULL);
}


int
sl_db_append_only(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val,
                  size_t vlen, sl_str_t *last)
{
    SL_ASSERT(last != NULL);
    return db_append(t, dbi, key, klen, val, vlen, last);
}


/*
 * sl_db_append (last NULL: a key that does not sort last is inserted) and
 * sl_db_append_only (it is not: 1, with *last set).
 */
static int
db_append(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen, const void *val, size_t vlen,
          sl_str_t *last)
{
    MDB_val k = { klen, (void *) key }, v = { vlen, (void *) val }, lk, lv;
    int mrc;

    if (t->full || !t->write) {
        return db_put(t, dbi, &k, &v, MDB_NOOVERWRITE); /* fails as sl_db_put does */
    }
    /*
     * One cursor for the transaction's appends to dbi (a group commit's
     * rows), where mdb_put would set up one per call: ~100 instructions a
     * row less (callgrind). LMDB keeps it right through the other writes
     * of the transaction and frees it when the transaction ends.
     */
    if (t->append == NULL || t->append_dbi != dbi) {
        mrc = mdb_cursor_open(t->txn, t->db->dbi[dbi], &t->append);
        if (mrc != 0) {
            t->append = NULL;
            return db_error(t->db, "mdb_cursor_open()", dbi, mrc);
        }
        t->append_dbi = dbi;
    }
    /*
     * MDB_APPEND goes straight to the last leaf instead of searching, and a
     * full last page splits off only the new key (older pages stay full).
     * LMDB answers MDB_KEYEXIST, having changed nothing, when key is not
     * past the last one (another worker wrote a later row): then insert,
     * or tell the caller which key it must pass.
     */
    mrc = mdb_cursor_put(t->append, &k, &v, MDB_APPEND);
    if (mrc == MDB_KEYEXIST && last == NULL) {
        mrc = mdb_cursor_put(t->append, &k, &v, MDB_NOOVERWRITE);
    } else if (mrc == MDB_KEYEXIST) {
        mrc = mdb_cursor_get(t->append, &lk, &lv, MDB_LAST);
        if (mrc == 0 && !db_sane_len(t, lk.mv_size, lv.mv_size)) {
            return db_damaged(t->db, "mdb_cursor_get()", dbi);
        }
        if (mrc == 0) {
            last->p = lk.mv_data;
            last->len = lk.mv_size;
            return 1;
        }
        return db_error(t->db, "mdb_cursor_get()", dbi, mrc);
    }
    return db_put_rc(t, dbi, mrc);
}


int
sl_db_last(sl_txn_t *t, sl_dbi_e dbi, sl_str_t *key, sl_str_t *val)
{
    MDB_cursor *c;
    MDB_val k, v;
    int mrc, rc = 0;

    if (t->full) {
        return SL_ESTORE;
    }
    if (!t->db->has[dbi]) {
        return SL_ENOTFOUND;
    }
    mrc = mdb_cursor_open(t->txn, t->db->dbi[dbi], &c);
    if (mrc != 0) {
        return db_error(t->db, "mdb_cursor_open()", dbi, mrc);
    }
    mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (mrc == MDB_NOTFOUND) {
        rc = SL_ENOTFOUND;
    } else if (mrc != 0) {
        rc = db_error(t->db, "mdb_cursor_get()", dbi, mrc);
    } else if (!db_sane_len(t, k.mv_size, v.mv_size)) {
        rc = db_damaged(t->db, "mdb_cursor_get()", dbi);
    } else {
        key->p = k.mv_data;
        key->len = k.mv_size;
        val->p = v.mv_data;
        val->len = v.mv_size;
    }
    mdb_cursor_close(c);
    return rc;
}


int
sl_db_del(sl_txn_t *t, sl_dbi_e dbi, const void *key, size_t klen)
{
    MDB_val k = { klen, (void *) key };
    int mrc;

    if (t->full) {
        return SL_ESTORE;
    }
    mrc = mdb_del(t->txn, t->db->dbi[dbi], &k, NULL);
    if (mrc == 0) {
        return 0;
    }
    if (mrc == MDB_NOTFOUND) {
        return SL_ENOTFOUND;
    }
    if (mrc == MDB_MAP_FULL) {
        t->full = true;
        return SL_ESTORE;
    }
    return db_error(t->db, "mdb_del()", dbi, mrc);
}


int
sl_db_scan(sl_txn_t *t, sl_dbi_e dbi, const void *from, size_t flen,
           int (*cb)(void *arg, sl_str_t key, sl_str_t val), void *arg)
{
    MDB_cursor *c;
    MDB_val k = { flen, (void *) from }, v;
    MDB_cursor_op op = flen > 0 ? MDB_SET_RANGE : MDB_FIRST;
    sl_str_t ks, vs;
    int mrc, rc = 0;

    if (t->full) {
        return SL_ESTORE;
    }
    if (!t->db->has[dbi]) {
        return 0;
    }
    mrc = mdb_cursor_open(t->txn, t->db->dbi[dbi], &c);
    if (mrc != 0) {
        return db_error(t->db, "mdb_cursor_open()", dbi, mrc);
    }
    for (;;) {
        mrc = mdb_cursor_get(c, &k, &v, op);
        if (mrc == MDB_NOTFOUND) {
            break;
        }
        if (mrc != 0) {
            rc = db_error(t->db, "mdb_cursor_get()", dbi, mrc);
            break;
        }
        if (!db_sane_len(t, k.mv_size, v.mv_size)) {
            rc = db_damaged(t->db, "mdb_cursor_get()", dbi);
            break;
        }
        ks.p = k.mv_data;
        ks.len = k.mv_size;
        vs.p = v.mv_data;
        vs.len = v.mv_size;
        rc = cb(arg, ks, vs);
        if (rc != 0) {
            rc = rc == 1 ? 0 : rc;
            break;
        }
        if (t->full) {
            rc = SL_ESTORE;
            break;
        }
        /* after a delete of the current record LMDB's MDB_NEXT lands on its successor */
        op = MDB_NEXT;
    }
    mdb_cursor_close(c);
    return rc;
}


int
sl_db_sync(sl_db_t *db)
{
    MDB_envinfo info;
    size_t len = 0;
    int mrc, err = 0;

    if (db->flags & SL_DB_RDONLY) {
        return 0;
    }
    /* the map must not be replaced under msync: growing it takes the lock for writing */
    pthread_rwlock_rdlock(&db->lock);
    mdb_env_info(db->env, &info);
    if (db_map_addr(db, info.me_mapsize) != NULL) {
        /*
         * Only the pages in use, up to the last commit's last page: the
         * pages past it hold nothing to keep, and those sl_db_prefault
         * populated would otherwise be written back as zeros and
         * write-protected, each a TLB flush in every worker, and populated
         * again. A commit after the meta was read is the next sync's.
         */
        len = (info.me_last_pgno + 1) * db->psize;
        len = len < info.me_mapsize ? len : info.me_mapsize;
        if (msync(db->fault_addr, len, MS_SYNC) != 0) {
            err = errno;
        }
        mrc = 0;
    } else {
        mrc = mdb_env_sync(db->env, 1);
    }
    pthread_rwlock_unlock(&db->lock);
    if (err != 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, err, "msync() of storage \"%s\" failed", db->path);
        return -err;
    }
    if (mrc != 0) {
        return db_error(db, "mdb_env_sync()", SL_DBI_COUNT, mrc);
    }
    if (len == 0) {
        /* the whole map: every process's populated pages are write-protected again */
        atomic_fetch_add(&db_state->sync_gen, 1);
    }
    return 0;
}


/*
 * Populates, writable, the pages just past the map's last used one: the
 * fault of a fresh page of a shared file mapping (page cache, the
 * filesystem's block, zeroing) then happens here, in the thread pool, not
 * on the loop inside a commit. Page tables are per process, and an msync
 * by any process writes back and write-protects every dirty page of its
 * range in all of them. sl_db_sync's covers the pages in use only, so a
 * populated range past them survives it; one of the whole map (when the
 * map's address is unknown) takes the populated, unused pages too (written
 * back as zeros), and the range is then populated again (sync_gen). It is
 * also populated again when the commits have taken half of it. Otherwise
 * nothing is done, which makes the call cheap enough to run a few times
 * per sync interval.
 * The range is 1.5 times the growth since the previous populate, never
 * under three quarters of the previous range (a burst is not forgotten at
 * once), 64 KiB to 16 MiB. Contents are not changed.
 */
int
sl_db_prefault(sl_db_t *db)
{
    MDB_envinfo info;
    size_t first, want, end, pages;
    uint64_t gen;
    int rc = 0;

    if ((db->flags & SL_DB_RDONLY) || db->fault_off) {
        return 0;
    }
    /* read before populating: an msync racing with it is seen by the next call */
    gen = atomic_load(&db_state->sync_gen);
    /* the map must not be replaced under madvise: growing it takes the lock for writing */
    pthread_rwlock_rdlock(&db->lock);
    mdb_env_info(db->env, &info);
    first = info.me_last_pgno + 1;
    if (info.me_mapsize == db->fault_map && gen == db->fault_gen && db->fault_end > first
        && (db->fault_end - first) * 2 > db->fault_want) {
        pthread_rwlock_unlock(&db->lock);
        return 0; /* more than half of the range populated last time is still there */
    }
    db_map_addr(db, info.me_mapsize);
    db->fault_map = info.me_mapsize;
    pages = info.me_mapsize / db->psize;
    want = db->fault_last != 0 && info.me_last_pgno > db->fault_last
               ? (info.me_last_pgno - db->fault_last) * 3 / 2
               : 0;
    if (want < db->fault_want * 3 / 4) {
        want = db->fault_want * 3 / 4;
    }
    if (want < DB_FAULT_MIN / db->psize) {
        want = DB_FAULT_MIN / db->psize;
    } else if (want > DB_FAULT_MAX / db->psize) {
        want = DB_FAULT_MAX / db->psize;
    }
    end = first + want < pages ? first + want : pages;
    db->fault_last = info.me_last_pgno;
    db->fault_want = want;
    db->fault_end = end;
    db->fault_gen = gen;
    if (db->fault_addr != NULL && first < end
        && madvise(db->fault_addr + first * db->psize, (end - first) * db->psize,
                   DB_MADV_POPULATE_WRITE)
               != 0) {
        rc = -errno;
    }
    if (rc == 0 && db->fault_addr != NULL) {
        /*
         * One read of each page from this process too: a hypervisor that maps
         * guest page tables lazily (shadow paging) traps the first access to a
         * new mapping even after the kernel populated it, and that trap was
         * the loop's (perf: a store to each fresh page in mdb_page_alloc took
         * ~0.4 us per request). A read changes nothing; a writer in another
         * process may be filling the page meanwhile.
         */
        for (size_t pg = first; pg < end; pg++) {
            (void) *(volatile const char *) (db->fault_addr + pg * db->psize);
        }
    }
    pthread_rwlock_unlock(&db->lock);
    if (rc == -EINVAL) {
        db->fault_off = true; /* before Linux 5.14 */
    }
    /* any other failure (no block on a full disk, say) is the commit's to meet and report */
    return rc == 0 && db->fault_addr != NULL && first < end ? 1 : 0;
}


/*
 * Where data.mdb is mapped in this process with size bytes (db->fault_addr,
 * looked up again when the size changed: a grow maps anew), or NULL. LMDB
 * tells a map's address only when it is fixed: the process's own table does.
 * Its callers are the sync pass's (one at a time) and the worker's exit.
 */
static char *
db_map_addr(sl_db_t *db, size_t size)
{
    if (size != db->fault_size) {
        db->fault_size = size;
        db->fault_addr = db_map_find(db, size);
    }
    return db->fault_addr;
}


/*
 * Where data.mdb is mapped in this process with size bytes: the line of
 * /proc/self/maps with its device and inode. NULL when none is found.
 */
static char *
db_map_find(sl_db_t *db, size_t size)
{
    char line[512];
    struct stat st;
    unsigned long lo, hi, ino;
    unsigned maj, mnr;
    char *addr = NULL;
    FILE *f;
    int fd;

    if (mdb_env_get_fd(db->env, &fd) != 0 || fstat(fd, &st) != 0) {
        return NULL;
    }
    f = fopen("/proc/self/maps", "re");
    if (f == NULL) {
        return NULL;
    }
    while (addr == NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj, &mnr, &ino) == 5
            && ino == (unsigned long) st.st_ino && makedev(maj, mnr) == st.st_dev
            && hi - lo == size) {
            addr = (char *) (uintptr_t) lo;
        }
    }
    fclose(f);
    return addr;
}


int
sl_db_sync_shared(sl_db_t *db, uint64_t min_ms)
{
    struct timespec ts;
    uint64_t now, last;
    int rc;

    if (db->flags & SL_DB_RDONLY) {
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000 + 1; /* never 0 */
    last = atomic_load(&db_state->synced_ms);
    if (last != 0 && now - last < min_ms) {
        return 0;
    }
    /* of the workers due at once, the one that moves the stamp syncs */
    if (!atomic_compare_exchange_strong(&db_state->synced_ms, &last, now)) {
        return 0;
    }
    rc = sl_db_sync(db);
    return rc < 0 ? rc : 1;
}


int
sl_db_backup(sl_db_t *db, const char *path)
{
    char tmp[PATH_MAX];
    int fd, n, mrc, err, rc = 0;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long) getpid());
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "backup path \"%s\" is too long", path);
        return -ENAMETOOLONG;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "open() \"%s\" failed", tmp);
        return -err;
    }

    /* the copy reads through this process's map: keep it from being resized meanwhile */
    pthread_rwlock_rdlock(&db->lock);
    db_txns_held++;
    mrc = mdb_env_copyfd2(db->env, fd, MDB_CP_COMPACT);
    db_unlock(db);
    if (mrc != 0) {
        rc = db_error(db, "mdb_env_copyfd2()", SL_DBI_COUNT, mrc);
        goto out_unlink;
    }
    if (fsync(fd) != 0) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "fsync() \"%s\" failed", tmp);
        rc = -err;
        goto out_unlink;
    }
    if (close(fd) != 0) {
        err = errno;
        fd = -1;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "close() \"%s\" failed", tmp);
        rc = -err;
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "rename() \"%s\" to \"%s\" failed", tmp, path);
        rc = -err;
        goto out_unlink;
    }
    return db_fsync_dir(path);

out_unlink:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return rc;
}


/* Makes a rename durable: fsync the directory that holds path. */
static int
db_fsync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t len;
    int fd, err, rc = 0;

    if (slash == NULL) {
        memcpy(dir, ".", 2);
    } else {
        len = slash == path ? 1 : (size_t) (slash - path);
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "open() \"%s\" failed", dir);
        return -err;
    }
    if (fsync(fd) != 0) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "fsync() \"%s\" failed", dir);
        rc = -err;
    }
    close(fd);
    return rc;
}


int
sl_db_count(sl_txn_t *t, sl_dbi_e dbi, size_t *n)
{
    return db_stat(t, dbi, n, NULL);
}


int
sl_db_pages(sl_txn_t *t, sl_dbi_e dbi, size_t *pages)
{
    return db_stat(t, dbi, NULL, pages);
}


/* Records and pages (branch, leaf and overflow) of dbi; either may be NULL. */
static int
db_stat(sl_txn_t *t, sl_dbi_e dbi, size_t *n, size_t *pages)
{
    MDB_stat st;
    int mrc;

    memset(&st, 0, sizeof(st));
    if (t->db->has[dbi]) {
        mrc = mdb_stat(t->txn, t->db->dbi[dbi], &st);
        if (mrc != 0) {
            return db_error(t->db, "mdb_stat()", dbi, mrc);
        }
    }
    if (n != NULL) {
        *n = st.ms_entries;
    }
    if (pages != NULL) {
        *pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return 0;
}


int
sl_db_clear(sl_txn_t *t, sl_dbi_e dbi)
{
    int mrc;

    if (!t->db->has[dbi]) {
        return 0;
    }
    mrc = mdb_drop(t->txn, t->db->dbi[dbi], 0);
    if (mrc == MDB_MAP_FULL) {
        t->full = true;
        return SL_ESTORE;
    }
    if (mrc != 0) {
        return db_error(t->db, "mdb_drop()", dbi, mrc);
    }
    return 0;
}


/*
 * A record's length must fit in the map (a key in LMDB's 511 bytes): a
 * damaged node can claim gigabytes, and whoever decodes the value would
 * read past the map. LMDB offers no way to learn the map's address, so
 * this is the check there is; page numbers LMDB checks itself.
 */
static bool
db_sane_len(const sl_txn_t *t, size_t klen, size_t vlen)
{
    size_t n = t->db->map_size;

    return klen <= DB_KEY_MAX && vlen <= n - 2 * t->db->psize;
}


static int
db_damaged(const sl_db_t *db, const char *what, sl_dbi_e dbi)
{
    sl_log(&sl_log_main, SL_LOG_ERR, 0,
           "%s on \"%s\" in \"%s\" returned a record larger than the map. The file "
           "\"%s/data.mdb\" is damaged: stop sluice, keep a copy of the file and restore the last "
           "backup (see \"Backup and recovery\" in README.md)",
           what, db_names[dbi], db->path, db->path);
    return SL_ECORRUPT;
}


/*
 * Logs an LMDB failure with the environment and database it concerns and
 * returns SL_ESTORE, or SL_ECORRUPT when LMDB found the file damaged. dbi
 * is SL_DBI_COUNT when no database is involved.
 */
static int
db_error(const sl_db_t *db, const char *what, sl_dbi_e dbi, int mrc)
{
    if (mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND || mrc == MDB_INVALID) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "%s in \"%s\" failed: %s. The file \"%s/data.mdb\" is damaged: stop sluice, keep "
               "a copy of the file and restore the last backup (see \"Backup and recovery\" in "
               "README.md)",
               what, db->path, mdb_strerror(mrc), db->path);
        return SL_ECORRUPT;
    }
    if (dbi < SL_DBI_COUNT) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "%s on \"%s\" in \"%s\" failed: %s", what,
               db_names[dbi], db->path, mdb_strerror(mrc));
    } else {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "%s in \"%s\" failed: %s", what, db->path,
               mdb_strerror(mrc));
    }
    return SL_ESTORE;
}
