/*
 * Unit tests for storage/db.c on a real LMDB environment in a temporary
 * directory: modes of what it creates, get/put/del/scan/count and their
 * codes, aborting writes, the schema version (newer on disk is refused,
 * malformed is refused), a tiny map that must grow (in one process, across
 * processes with MDB_MAP_RESIZED, and from several threads at once), the
 * cache emptied and "storage is full" said once when the map cannot grow,
 * stale reader slots cleared at open, compacting backups that open, corrupt
 * files refused without a crash, and read-only opens. Then the hardening:
 * a 0-byte or truncated data.mdb refused unless asked to start anew, the
 * map reserved on disk, a full filesystem (a file-size limit in a child)
 * giving SL_EFULL and one alert instead of SIGBUS, and the full state that
 * keeps a reserve, is shared across fork and ends once room returns.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/base/errno.h"
#include "core/base/log.h"
#include "storage/db.h"


typedef struct test_ctx {
    char dir[64];   /* temporary directory for this test */
    char path[128]; /* dir/db: the environment */
    char log[128];  /* dir/error.log */
} test_ctx_t;

typedef struct put_arg {
    sl_dbi_e dbi;
    unsigned first, count;
    size_t vlen;
    unsigned calls;
    int fail;    /* returned after the puts when non-zero */
    bool append; /* sl_db_append instead of sl_db_put */
} put_arg_t;

typedef struct scan_arg {
    sl_txn_t *t;
    unsigned seen;
    unsigned stop_at;
    int del_mode; /* 0 none, 1 every record, 2 every other */
    char first[32];
} scan_arg_t;

typedef struct del_arg {
    const char *key;
    bool noover;
    int put_rc, del_rc, del2_rc;
} del_arg_t;

typedef struct thread_arg {
    sl_db_t *db;
    unsigned base;
    int rc;
} thread_arg_t;

/* A thread that syncs the map until told to stop, as a worker's sync pass does. */
typedef struct sync_arg {
    sl_db_t *db;
    atomic_bool stop;
    atomic_uint syncs;
    int rc;
} sync_arg_t;

static int setup(void **state);
static int teardown(void **state);
static bool log_has(const test_ctx_t *c, const char *needle);
static int count_in_log(const test_ctx_t *c, const char *needle);
static void key_of(unsigned i, char *buf, size_t len);
static int put_many(sl_txn_t *t, void *arg);
static int put_schema(sl_txn_t *t, void *arg);
static int put_short_schema(sl_txn_t *t, void *arg);
static int scan_cb(void *arg, sl_str_t key, sl_str_t val);
static int scan_del_txn(sl_txn_t *t, void *arg);
static int del_txn(sl_txn_t *t, void *arg);
static int nested_write(sl_txn_t *t, void *arg);
static int noop_txn(sl_txn_t *t, void *arg);
static unsigned count_dbi(sl_db_t *db, sl_dbi_e dbi);
static void *writer_thread(void *arg);
static void *reader_thread(void *arg);
static void test_open_modes(void **state);
static void test_put_get_del(void **state);
static void test_append(void **state);
static void test_append_mixed(void **state);
static int append_mixed_txn(sl_txn_t *t, void *arg);
static int append_collect(void *arg, sl_str_t key, sl_str_t val);
static int append_txn(sl_txn_t *t, void *arg);
static void test_abort_on_error(void **state);
static void test_scan(void **state);
static void test_scan_delete(void **state);
static void test_schema_newer(void **state);
static void test_schema_malformed(void **state);
static void test_map_grows(void **state);
static void test_map_grows_in_one_txn(void **state);
static void test_storage_full(void **state);
static void test_map_resized_elsewhere(void **state);
static void test_threads(void **state);
static void test_sync_while_growing(void **state);
static void test_prefault(void **state);
static void test_prefault_shared(void **state);
static int prefault_shared_run(test_ctx_t *c);
static int run_in_child(int (*fn)(test_ctx_t *c), test_ctx_t *c);
static int prefault_other_sync(const int go[2], const int done[2]);
static long write_faults(sl_db_t *db, put_arg_t *a);
static long fresh_page_faults(sl_db_t *db, unsigned first, bool prefault);
static void test_nested_write(void **state);
static void test_reader_check(void **state);
static void test_backup(void **state);
static void test_corrupt_file(void **state);
static void test_rdonly(void **state);
static void empty_store(test_ctx_t *c, char *file, size_t size);
static void test_zero_bytes(void **state);
static void test_empty_new(void **state);
static void test_truncated(void **state);
static void test_backed(void **state);
static void test_disk_full(void **state);
static void test_reserve(void **state);
static void test_shared_state(void **state);
static int del_many(sl_txn_t *t, void *arg);
static int disk_full_child(test_ctx_t *c);


static int
setup(void **state)
{
    test_ctx_t *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    sl_test_tmpdir("/tmp/sl-db-XXXXXX", c->dir, sizeof(c->dir), c->log, sizeof(c->log));
    snprintf(c->path, sizeof(c->path), "%s/db", c->dir);
    *state = c;
    return 0;
}


static int
teardown(void **state)
{
    test_ctx_t *c = *state;

    sl_log_open(NULL, SL_LOG_WARN);
    if (getenv("SL_TEST_KEEP") != NULL) {
        fprintf(stderr, "kept %s\n", c->dir);
    } else {
        sl_test_rmtree(c->dir);
    }
    free(c);
    return 0;
}


static bool
log_has(const test_ctx_t *c, const char *needle)
{
    return count_in_log(c, needle) > 0;
}


static int
count_in_log(const test_ctx_t *c, const char *needle)
{
    size_t len;
    char *text = sl_test_slurp(c->log, &len), *p = text;
    int n = 0;

    while ((p = memmem(p, len - (size_t) (p - text), needle, strlen(needle))) != NULL) {
        n++;
        p++;
    }
    free(text);
    return n;
}


static void
key_of(unsigned i, char *buf, size_t len)
{
    snprintf(buf, len, "k%08u", i);
}


static int
put_many(sl_txn_t *t, void *arg)
{
    put_arg_t *a = arg;
    char key[32], val[8192];
    int rc;

    a->calls++;
    assert_true(a->vlen <= sizeof(val));
    for (unsigned i = a->first; i < a->first + a->count; i++) {
        key_of(i, key, sizeof(key));
        memset(val, 'a' + (int) (i % 26), a->vlen);
        rc = a->append ? sl_db_append(t, a->dbi, key, strlen(key), val, a->vlen)
                       : sl_db_put(t, a->dbi, key, strlen(key), val, a->vlen, false);
        if (rc != 0) {
            return rc;
        }
    }
    return a->fail;
}


static int
put_schema(sl_txn_t *t, void *arg)
{
    static const uint8_t v99[4] = { 0, 0, 0, 99 };

    (void) arg;
    return sl_db_put(t, SL_DBI_META, "schema_version", 14, v99, 4, false);
}


static int
put_short_schema(sl_txn_t *t, void *arg)
{
    (void) arg;
    return sl_db_put(t, SL_DBI_META, "schema_version", 14, "\x01\x02", 2, false);
}


static int
scan_cb(void *arg, sl_str_t key, sl_str_t val)
{
    scan_arg_t *a = arg;
    int rc;

    (void) val;
    if (a->seen == 0) {
        snprintf(a->first, sizeof(a->first), "%.*s", (int) key.len, key.p);
    }
    a->seen++;
    if (a->del_mode == 1 || (a->del_mode == 2 && a->seen % 2 == 1)) {
        rc = sl_db_del(a->t, SL_DBI_KEYS, key.p, key.len);
        if (rc != 0) {
            return rc;
        }
    }
    if (a->stop_at != 0 && a->seen == a->stop_at) {
        return 1;
    }
    return 0;
}


static int
scan_del_txn(sl_txn_t *t, void *arg)
{
    scan_arg_t *a = arg;

    a->t = t;
    a->seen = 0;
    return sl_db_scan(t, SL_DBI_KEYS, NULL, 0, scan_cb, a);
}


static int
nested_write(sl_txn_t *t, void *arg)
{
    (void) t;
    return sl_db_write(arg, noop_txn, NULL);
}


static int
noop_txn(sl_txn_t *t, void *arg)
{
    (void) t;
    (void) arg;
    return 0;
}


static unsigned
count_dbi(sl_db_t *db, sl_dbi_e dbi)
{
    sl_txn_t *t;
    size_t n = 0;

    assert_rc(sl_db_read(db, &t), 0);
    assert_rc(sl_db_count(t, dbi, &n), 0);
    sl_db_abort(t);
    return (unsigned) n;
}


static void
test_open_modes(void **state)
{
    test_ctx_t *c = *state;
    char nested[256], file[300];
    struct stat st;
    sl_db_t *db;

    /* missing parents are created too, each 0700 */
    snprintf(nested, sizeof(nested), "%s/a/b/store", c->dir);
    assert_rc(sl_db_open(nested, 1 << 20, 0, &db), 0);
    sl_db_close(db);
    assert_int_equal(stat(nested, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(file, sizeof(file), "%s/a", c->dir);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(file, sizeof(file), "%s/data.mdb", nested);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(file, sizeof(file), "%s/lock.mdb", nested);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* reopening an existing environment works and a file is not a directory */
    assert_rc(sl_db_open(nested, 1 << 20, 0, &db), 0);
    sl_db_close(db);
    snprintf(file, sizeof(file), "%s/data.mdb", nested);
    assert_rc(sl_db_open(file, 1 << 20, 0, &db), -ENOTDIR);
    assert_null(db);
    assert_rc(sl_db_open("", 1 << 20, 0, &db), -EINVAL);
    sl_db_close(NULL);
}


static void
test_put_get_del(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 10, 100, 0, 0, false };
    sl_db_t *db;
    sl_txn_t *t;
    sl_str_t v;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_int_equal(a.calls, 1);

    assert_rc(sl_db_read(db, &t), 0);
    assert_rc(sl_db_get(t, SL_DBI_KEYS, "k00000003", 9, &v), 0);
    assert_int_equal(v.len, 100);
    assert_int_equal(v.p[0], 'd');
    assert_rc(sl_db_get(t, SL_DBI_KEYS, "k00000010", 9, &v), SL_ENOTFOUND);
    /* databases are separate */
    assert_rc(sl_db_get(t, SL_DBI_SECRETS, "k00000003", 9, &v), SL_ENOTFOUND);
    sl_db_abort(t);
    sl_db_abort(NULL);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 10);
    assert_int_equal(count_dbi(db, SL_DBI_SECRETS), 0);
    sl_db_close(db);
}


/*
 * sl_db_append: ascending keys, then keys that sort before the last (an
 * ordinary insert, the transaction going on), a repeat (-EEXIST) and the
 * value kept; everything committed and found in key order.
 */
static void
test_append(void **state)
{
    test_ctx_t *c = *state;
    int rcs[4];
    sl_db_t *db;
    sl_txn_t *t;
    sl_str_t v;
    char key[16];

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, append_txn, rcs), 0);
    assert_rc(rcs[0], 0);
    assert_rc(rcs[1], 0);
    assert_rc(rcs[2], -EEXIST);
    assert_rc(rcs[3], -EEXIST);
    assert_int_equal(count_dbi(db, SL_DBI_LEDGER), 2001);
    assert_rc(sl_db_read(db, &t), 0);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%08d", i * 2);
        assert_rc(sl_db_get(t, SL_DBI_LEDGER, key, 9, &v), 0);
        assert_int_equal(v.len, 40);
        assert_int_equal(v.p[0], 'a' + i % 26);
    }
    assert_rc(sl_db_get(t, SL_DBI_LEDGER, "k00000999", 9, &v), 0);
    assert_int_equal(v.p[0], 'z');
    sl_db_abort(t);
    /* a second transaction appends after what the first committed */
    assert_rc(sl_db_write(db, append_txn, rcs), 0);
    assert_rc(rcs[0], -EEXIST);
    /* sl_db_sync_shared: one msync per min_ms, whoever asks */
    assert_int_equal(sl_db_sync_shared(db, 0), 1);
    assert_int_equal(sl_db_sync_shared(db, 60000), 0);
    assert_int_equal(sl_db_sync_shared(db, 0), 1);
    sl_db_close(db);
}


/*
 * sl_db_append amid other writes of its transaction: a put that sorts
 * last (the next append inserts), a delete of the last key (appends
 * resume), appends to a second database in between, a value the caller
 * reuses, sl_db_append_only's refusals; every record as written, in key
 * order.
 */
static void
test_append_mixed(void **state)
{
    test_ctx_t *c = *state;
    char seen[256] = "";
    int rc = -1;
    sl_db_t *db;
    sl_txn_t *t;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, append_mixed_txn, &rc), 0);
    assert_rc(rc, 0);
    assert_rc(sl_db_read(db, &t), 0);
    assert_rc(sl_db_scan(t, SL_DBI_LEDGER, NULL, 0, append_collect, seen), 0);
    assert_string_equal(seen, "a2=x;a4=x;a5=p;a6=x;a8=x;b1=y;b2=o;");
    seen[0] = '\0';
    assert_rc(sl_db_scan(t, SL_DBI_CACHE_AGE, NULL, 0, append_collect, seen), 0);
    assert_string_equal(seen, "c1=z;c2=z;");
    sl_db_abort(t);
    sl_db_close(db);
}


static int
append_mixed_txn(sl_txn_t *t, void *arg)
{
    int *rc = arg;
    sl_str_t last;

    *rc = sl_db_append(t, SL_DBI_LEDGER, "a2", 2, "x", 1);
    *rc |= sl_db_append(t, SL_DBI_LEDGER, "a4", 2, "x", 1);
    *rc |= sl_db_append(t, SL_DBI_CACHE_AGE, "c1", 2, "z", 1);
    *rc |= sl_db_put(t, SL_DBI_LEDGER, "a9", 2, "p", 1, false); /* now the last key */
    *rc |= sl_db_append(t, SL_DBI_LEDGER, "a6", 2, "x", 1);     /* before it: inserted */
    *rc |= sl_db_put(t, SL_DBI_LEDGER, "a5", 2, "p", 1, true);
    *rc |= sl_db_del(t, SL_DBI_LEDGER, "a9", 2);
    *rc |= sl_db_append(t, SL_DBI_LEDGER, "a8", 2, "x", 1); /* last again */
    *rc |= sl_db_append(t, SL_DBI_CACHE_AGE, "c2", 2, "z", 1);
    *rc |= sl_db_append(t, SL_DBI_LEDGER, "b1", 2, "y", 1);
    if (sl_db_append(t, SL_DBI_LEDGER, "a6", 2, "w", 1) != -EEXIST) {
        *rc = -1;
    }
    /* append only: before the last or equal to it, nothing is stored and the last key told */
    if (sl_db_append_only(t, SL_DBI_LEDGER, "a7", 2, "w", 1, &last) != 1 || last.len != 2
        || memcmp(last.p, "b1", 2) != 0) {
        *rc = -1;
    }
    if (sl_db_append_only(t, SL_DBI_LEDGER, "b1", 2, "w", 1, &last) != 1
        || memcmp(last.p, "b1", 2) != 0) {
        *rc = -1;
    }
    *rc |= sl_db_append_only(t, SL_DBI_LEDGER, "b2", 2, "o", 1, &last);
    if (sl_db_append_only(t, SL_DBI_CACHE_AGE, "c0", 2, "w", 1, &last) != 1
        || memcmp(last.p, "c2", 2) != 0) {
        *rc = -1;
    }
    return 0;
}


static int
append_collect(void *arg, sl_str_t key, sl_str_t val)
{
    char *seen = arg;

    strncat(seen, key.p, key.len);
    strcat(seen, "=");
    strncat(seen, val.p, val.len);
    strcat(seen, ";");
    return 0;
}


static int
append_txn(sl_txn_t *t, void *arg)
{
    int *rcs = arg;
    char key[16], val[40];

    rcs[0] = 0;
    for (int i = 0; i < 2000 && rcs[0] == 0; i++) {
        snprintf(key, sizeof(key), "k%08d", i * 2);
        memset(val, 'a' + i % 26, sizeof(val));
        rcs[0] = sl_db_append(t, SL_DBI_LEDGER, key, 9, val, sizeof(val));
    }
    memset(val, 'z', sizeof(val));
    rcs[1] = sl_db_append(t, SL_DBI_LEDGER, "k00000999", 9, val, sizeof(val));
    rcs[2] = sl_db_append(t, SL_DBI_LEDGER, "k00000999", 9, "y", 1);
    rcs[3] = sl_db_append(t, SL_DBI_LEDGER, "k00003998", 9, "y", 1);
    return 0;
}


static int
del_txn(sl_txn_t *t, void *arg)
{
    del_arg_t *a = arg;

    a->put_rc = sl_db_put(t, SL_DBI_KEYS, a->key, strlen(a->key), "x", 1, a->noover);
    a->del_rc = sl_db_del(t, SL_DBI_KEYS, "k00000001", 9);
    a->del2_rc = sl_db_del(t, SL_DBI_KEYS, "k00000001", 9);
    return 0;
}


static void
test_abort_on_error(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 5, 10, 0, 0, false };
    del_arg_t d = { "k00000002", true, 0, 0, 0 };
    sl_db_t *db;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);

    /* an error from fn aborts everything it wrote and comes back as is */
    a.first = 100;
    a.fail = -EINVAL;
    assert_rc(sl_db_write(db, put_many, &a), -EINVAL);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 5);

    assert_rc(sl_db_write(db, del_txn, &d), 0);
    assert_rc(d.put_rc, -EEXIST);
    assert_rc(d.del_rc, 0);
    assert_rc(d.del2_rc, SL_ENOTFOUND);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 4);
    sl_db_close(db);
}


static void
test_scan(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 50, 10, 0, 0, false };
    scan_arg_t s;
    sl_db_t *db;
    sl_txn_t *t;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_rc(sl_db_read(db, &t), 0);

    memset(&s, 0, sizeof(s));
    assert_rc(sl_db_scan(t, SL_DBI_KEYS, NULL, 0, scan_cb, &s), 0);
    assert_int_equal(s.seen, 50);
    assert_string_equal(s.first, "k00000000");

    /* from a key between records: starts at the next one */
    memset(&s, 0, sizeof(s));
    assert_rc(sl_db_scan(t, SL_DBI_KEYS, "k00000040x", 10, scan_cb, &s), 0);
    assert_int_equal(s.seen, 9);
    assert_string_equal(s.first, "k00000041");

    /* 1 stops quietly */
    memset(&s, 0, sizeof(s));
    s.stop_at = 7;
    assert_rc(sl_db_scan(t, SL_DBI_KEYS, NULL, 0, scan_cb, &s), 0);
    assert_int_equal(s.seen, 7);

    /* past the end, and an empty database */
    memset(&s, 0, sizeof(s));
    assert_rc(sl_db_scan(t, SL_DBI_KEYS, "z", 1, scan_cb, &s), 0);
    assert_int_equal(s.seen, 0);
    assert_rc(sl_db_scan(t, SL_DBI_LEDGER, NULL, 0, scan_cb, &s), 0);
    assert_int_equal(s.seen, 0);
    sl_db_abort(t);
    sl_db_close(db);
}


/* Deleting the current record from inside a scan visits every record once, across many pages. */
static void
test_scan_delete(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 3000, 40, 0, 0, false };
    scan_arg_t s;
    sl_db_t *db;

    assert_rc(sl_db_open(c->path, 4 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);

    memset(&s, 0, sizeof(s));
    s.del_mode = 2;
    assert_rc(sl_db_write(db, scan_del_txn, &s), 0);
    assert_int_equal(s.seen, 3000);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 1500);

    memset(&s, 0, sizeof(s));
    s.del_mode = 1;
    assert_rc(sl_db_write(db, scan_del_txn, &s), 0);
    assert_int_equal(s.seen, 1500);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 0);
    sl_db_close(db);
}


static void
test_schema_newer(void **state)
{
    test_ctx_t *c = *state;
    sl_db_t *db;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_schema, NULL), 0);
    sl_db_close(db);

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), SL_ESTORE);
    assert_null(db);
    assert_true(log_has(c, "has schema version 99, newer than the 2 this sluice knows"));
    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_RDONLY, &db), SL_ESTORE);
}


static void
test_schema_malformed(void **state)
{
    test_ctx_t *c = *state;
    sl_db_t *db;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_short_schema, NULL), 0);
    sl_db_close(db);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), SL_ESTORE);
    assert_true(log_has(c, "malformed schema version record"));
}


static void
test_map_grows(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 4, 1000, 0, 0, false };
    sl_db_t *db;
    sl_txn_t *t;
    sl_str_t v;

    /* 64 KiB: a few pages, far less than what is written below */
    assert_rc(sl_db_open(c->path, 64 << 10, 0, &db), 0);
    for (unsigned i = 0; i < 100; i++) {
        a.first = i * 4;
        assert_rc(sl_db_write(db, put_many, &a), 0);
    }
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 400);
    assert_true(log_has(c, "map grown to"));
    assert_false(log_has(c, "[err]"));
    assert_rc(sl_db_read(db, &t), 0);
    assert_rc(sl_db_get(t, SL_DBI_KEYS, "k00000399", 9, &v), 0);
    assert_int_equal(v.len, 1000);
    sl_db_abort(t);
    sl_db_close(db);

    /* what was written survives a reopen at the small configured size */
    assert_rc(sl_db_open(c->path, 64 << 10, 0, &db), 0);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 400);
    a.first = 1000;
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 404);
    sl_db_close(db);
}


static void
test_map_grows_in_one_txn(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 100, 4000, 0, 0, false };
    sl_db_t *db;

    /* one transaction bigger than the map: aborted, grown, run again until it fits */
    assert_rc(sl_db_open(c->path, 64 << 10, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_true(a.calls > 1);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 100);
    /* appends too: each run of the transaction starts on a cursor of its own */
    a = (put_arg_t){ SL_DBI_LEDGER, 0, 100, 4000, 0, 0, true };
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_true(a.calls > 1);
    assert_int_equal(count_dbi(db, SL_DBI_LEDGER), 100);
    sl_db_close(db);
}


static void
test_storage_full(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t cache = { SL_DBI_CACHE, 0, 60, 4000, 0, 0, false };
    put_arg_t a = { SL_DBI_KEYS, 0, 10, 4000, 0, 0, false };
    unsigned i, fails, written = 0;
    int rc = 0, logged;
    sl_db_t *db;

    /* the map may grow to 16 x 64 KiB = 1 MiB */
    assert_rc(sl_db_open(c->path, 64 << 10, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &cache), 0);
    assert_int_equal(count_dbi(db, SL_DBI_CACHE), 60);

    /*
     * Write until it fails twice in a row: pages freed by emptying the
     * cache become reusable only a transaction or two later, so one
     * failure may be followed by a success.
     */
    for (i = 0, fails = 0; i < 400 && fails < 2; i++) {
        a.first = i * 10;
        rc = sl_db_write(db, put_many, &a);
        fails = rc == 0 ? 0 : fails + 1;
        if (rc == 0) {
            written += 10;
        }
    }
    assert_rc(rc, SL_EFULL);
    assert_int_equal(fails, 2);
    assert_true(written > 100);
    /* the cache was given up before anything else */
    assert_int_equal(count_dbi(db, SL_DBI_CACHE), 0);
    assert_true(log_has(c, "emptied the response cache (60 entries)"));
    logged = count_in_log(c, "reached its map limit");
    assert_true(logged >= 1);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), written);

    /* further failures are not logged again, and nothing half-written appears */
    for (unsigned j = 0; j < 5; j++) {
        assert_rc(sl_db_write(db, put_many, &a), SL_EFULL);
    }
    assert_int_equal(count_in_log(c, "reached its map limit"), logged);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), written);

    /* small writes still fit, and a success re-arms the message */
    a.count = 1;
    a.vlen = 10;
    a.first = 100000;
    assert_rc(sl_db_write(db, put_many, &a), 0);
    sl_db_close(db);
}


/*
 * Another process grows the map past this one's: the next transaction here
 * gets MDB_MAP_RESIZED, adopts the new size and carries on.
 */
static void
test_map_resized_elsewhere(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 1, 10, 0, 0, false };
    sl_db_t *db;
    sl_txn_t *t;
    sl_str_t v;
    int status;
    pid_t pid;

    assert_rc(sl_db_open(c->path, 64 << 10, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    /* keep a reset read transaction around: renewing it must cope too */
    assert_rc(sl_db_read(db, &t), 0);
    sl_db_abort(t);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        put_arg_t big = { SL_DBI_KEYS, 1000, 100, 4000, 0, 0, false };
        sl_db_t *db2;

        /* the parent's handle is never touched here */
        if (sl_db_open(c->path, 64 << 10, 0, &db2) != 0 || sl_db_write(db2, put_many, &big) != 0) {
            _exit(1);
        }
        sl_db_close(db2);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);

    assert_rc(sl_db_read(db, &t), 0);
    assert_rc(sl_db_get(t, SL_DBI_KEYS, "k00001099", 9, &v), 0);
    assert_int_equal(v.len, 4000);
    sl_db_abort(t);
    a.first = 5000;
    a.count = 20;
    a.vlen = 4000;
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 121);
    sl_db_close(db);
}


static void *
writer_thread(void *arg)
{
    thread_arg_t *ta = arg;
    put_arg_t a = { SL_DBI_KEYS, 0, 2, 2000, 0, 0, false };

    for (unsigned i = 0; i < 50 && ta->rc == 0; i++) {
        a.first = ta->base + i * 2;
        ta->rc = sl_db_write(ta->db, put_many, &a);
    }
    return NULL;
}


static void *
reader_thread(void *arg)
{
    thread_arg_t *ta = arg;
    sl_txn_t *t;
    sl_str_t v;
    int rc;

    for (unsigned i = 0; i < 2000 && ta->rc == 0; i++) {
        ta->rc = sl_db_read(ta->db, &t);
        if (ta->rc != 0) {
            break;
        }
        rc = sl_db_get(t, SL_DBI_KEYS, "k00000000", 9, &v);
        if (rc == 0 && v.len != 2000) {
            ta->rc = -EIO;
        } else if (rc != 0 && rc != SL_ENOTFOUND) {
            ta->rc = rc;
        }
        sl_db_abort(t);
    }
    return NULL;
}


/* Writers in threads grow the map while readers in other threads keep reading. */
static void
test_threads(void **state)
{
    test_ctx_t *c = *state;
    pthread_t th[4];
    thread_arg_t ta[4];
    sl_db_t *db;

    /*
     * 256 KiB grows to 512 KiB or 1 MiB here; the cap (4 MiB) leaves room for
     * the pages that readers pin while the writers run on a loaded machine.
     */
    assert_rc(sl_db_open(c->path, 256 << 10, 0, &db), 0);
    for (int i = 0; i < 4; i++) {
        ta[i].db = db;
        ta[i].base = (unsigned) i * 10000;
        ta[i].rc = 0;
        assert_int_equal(
            pthread_create(&th[i], NULL, i < 2 ? writer_thread : reader_thread, &ta[i]), 0);
    }
    /* join them all before any assert can leave this frame */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_rc(ta[i].rc, 0);
    }
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 200);
    assert_true(log_has(c, "map grown to"));
    sl_db_close(db);
}


static void *
sync_thread(void *arg)
{
    sync_arg_t *sa = arg;

    while (!atomic_load(&sa->stop) && sa->rc == 0) {
        sa->rc = sl_db_sync(sa->db);
        atomic_fetch_add(&sa->syncs, 1);
    }
    return NULL;
}


/*
 * The map grows (and is mapped again) on one thread while another syncs it:
 * a sync must never see the map half-replaced (msync of the old mapping
 * fails with ENOMEM). Each round starts from a fresh 64 KiB map that grows
 * four times.
 */
static void
test_sync_while_growing(void **state)
{
    test_ctx_t *c = *state;
    char path[sizeof(c->path) + 16];
    pthread_t th;
    sync_arg_t sa;
    sl_db_t *db;

    for (unsigned round = 0; round < 30; round++) {
        put_arg_t a = { SL_DBI_KEYS, 0, 200, 4000, 0, 0, false };

        snprintf(path, sizeof(path), "%s-%u", c->path, round);
        assert_rc(sl_db_open(path, 64 << 10, 0, &db), 0);
        sa.db = db;
        atomic_init(&sa.stop, false);
        atomic_init(&sa.syncs, 0);
        sa.rc = 0;
        assert_int_equal(pthread_create(&th, NULL, sync_thread, &sa), 0);
        while (atomic_load(&sa.syncs) == 0) {
            sched_yield();
        }
        for (unsigned i = 0; i < 10; i++) {
            a.first = i * 15;
            a.count = 15;
            if (sl_db_write(db, put_many, &a) != 0) {
                break;
            }
        }
        atomic_store(&sa.stop, true);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_rc(sa.rc, 0);
        assert_int_equal(count_dbi(db, SL_DBI_KEYS), 150);
        sl_db_close(db);
    }
    assert_true(log_has(c, "map grown to 1048576"));
    assert_false(log_has(c, "mdb_env_sync"));
}


/*
 * Minor faults taken by a write of 40 fresh 4000-byte values (each its own
 * page past the map's used end), after four intervals of the same growth
 * synced, and prefaulted when prefault is true. From the third on, the
 * pages a prefault populated but the interval did not take were written
 * back (as zeros) and write-protected by the sync: the next prefault must
 * populate them again, or the commits that take them fault.
 */
static long
fresh_page_faults(sl_db_t *db, unsigned first, bool prefault)
{
    put_arg_t a = { SL_DBI_KEYS, first, 40, 4000, 0, 0, false };
    struct rusage before, after;

    for (int i = 0; i < 4; i++) {
        assert_rc(sl_db_write(db, put_many, &a), 0);
        a.first += 40;
        assert_rc(sl_db_sync(db), 0);
        if (prefault) {
            assert_int_equal(sl_db_prefault(db), 1);
        }
    }
    getrusage(RUSAGE_THREAD, &before);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    getrusage(RUSAGE_THREAD, &after);
    return after.ru_minflt - before.ru_minflt;
}


/*
 * After a sync, sl_db_prefault populates the pages the next interval will
 * likely take past the used end, so the commits that take them do not
 * fault; the same writes without it fault on each fresh page.
 */
static void
test_prefault(void **state)
{
    test_ctx_t *c = *state;
    char path[sizeof(c->path) + 16];
    long with, without;
    sl_db_t *db;

    snprintf(path, sizeof(path), "%s-plain", c->path);
    assert_rc(sl_db_open(path, 8 << 20, 0, &db), 0);
    without = fresh_page_faults(db, 0, false);
    sl_db_close(db);
    assert_rc(sl_db_open(c->path, 8 << 20, 0, &db), 0);
    with = fresh_page_faults(db, 0, true);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 200);
    sl_db_close(db);
    print_message("minor faults of 40 fresh pages: %ld plain, %ld prefaulted\n", without, with);
    assert_true(without >= 40);
    assert_true(with < without / 4);
}


/* Minor faults of this thread while it commits a. */
static long
write_faults(sl_db_t *db, put_arg_t *a)
{
    struct rusage before, after;

    getrusage(RUSAGE_THREAD, &before);
    if (sl_db_write(db, put_many, a) != 0) {
        return -1;
    }
    getrusage(RUSAGE_THREAD, &after);
    return after.ru_minflt - before.ru_minflt;
}


/* Has the other process of prefault_shared_run commit a row and msync. 0 or -1. */
static int
prefault_other_sync(const int go[2], const int done[2])
{
    char b = 's';

    return write(go[1], &b, 1) == 1 && read(done[0], &b, 1) == 1 ? 0 : -1;
}


/*
 * test_prefault_shared's process: it shares the storage state with a child
 * of its own that commits and msyncs on request. Returns 0 or the failing
 * step's number; the fault counts go to stderr.
 */
static int
prefault_shared_run(test_ctx_t *c)
{
    const char *path = c->path;
    put_arg_t a = { SL_DBI_KEYS, 0, 40, 4000, 0, 0, false };
    int go[2], done[2], status;
    long after;
    sl_db_t *db;
    pid_t pid;
    char b;

    /* a write to the other process, should it have ended, fails rather than kills */
    signal(SIGPIPE, SIG_IGN);
    if (sl_db_shared_init() != 0 || pipe(go) != 0 || pipe(done) != 0) {
        return 10;
    }
    pid = fork();
    if (pid < 0) {
        return 11;
    }
    if (pid == 0) {
        put_arg_t o = { SL_DBI_KEYS, 100000, 1, 100, 0, 0, false };

        close(go[1]);
        if (sl_db_open(path, 8 << 20, 0, &db) != 0) {
            _exit(20);
        }
        while (read(go[0], &b, 1) == 1) {
            o.first++;
            if (sl_db_write(db, put_many, &o) != 0 || sl_db_sync_shared(db, 0) != 1
                || write(done[1], &b, 1) != 1) {
                _exit(21);
            }
        }
        sl_db_close(db);
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    if (sl_db_open(path, 8 << 20, 0, &db) != 0) {
        return 12;
    }
    /* two intervals of 40 fresh pages, each synced and prefaulted */
    for (int i = 0; i < 2; i++) {
        if (sl_db_write(db, put_many, &a) != 0 || sl_db_sync(db) != 0 || sl_db_prefault(db) != 1) {
            return 13;
        }
        a.first += 40;
    }
    if (sl_db_prefault(db) != 0) {
        return 14; /* no msync, the range untouched: nothing to do */
    }
    /*
     * The other process's msync covers the pages in use only: the pages this
     * one populated past them stay writable, and its next commits do not
     * fault on them (a whole-map msync write-protected them all: 20 faults
     * and more for 20 fresh pages).
     */
    a.count = 20;
    if (prefault_other_sync(go, done) != 0) {
        /* the other process ended: its exit code (20 or 21) says where, as 35 or 36 */
        close(go[1]);
        return waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? 15 + WEXITSTATUS(status) : 15;
    }
    after = write_faults(db, &a);
    close(go[1]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return 17;
    }
    sl_db_close(db);
    fprintf(stderr, "minor faults of 20 fresh pages after another process's msync: %ld\n", after);
    /*
     * LMDB reuses a few freed pages, which the msync did write-protect: 4
     * to 7 faults seen (the ASan build the most); a whole-map msync, 24 to 27
     */
    return after >= 0 && after < 12 ? 0 : 18;
}


/*
 * Page tables are per process, and an msync by any process sharing the
 * storage write-protects the dirty pages in its range in all of them:
 * sl_db_sync covers only the pages in use, so the pages each process
 * populated past them stay writable (the commits after another process's
 * msync do not fault), and sl_db_prefault does nothing when the commits
 * did not use up its range.
 */
static void
test_prefault_shared(void **state)
{
    int status = run_in_child(prefault_shared_run, *state);

    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}


/* fn(c) in a child process, whose exit code is its return value: the wait status. */
static int
run_in_child(int (*fn)(test_ctx_t *c), test_ctx_t *c)
{
    int status;
    pid_t pid;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(fn(c));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}


static void
test_nested_write(void **state)
{
    test_ctx_t *c = *state;
    sl_db_t *db;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, nested_write, db), -EDEADLK);
    /* the handle is still usable */
    assert_rc(sl_db_write(db, noop_txn, NULL), 0);
    sl_db_close(db);
}


/*
 * A process that dies inside a read transaction leaves its slot behind.
 * LMDB resets the reader table when the first process opens the lock file,
 * so the slot matters (and is cleared at open) only while another process
 * keeps the environment open: a worker crashes, its siblings keep serving,
 * and its replacement opens the environment.
 */
static void
test_reader_check(void **state)
{
    test_ctx_t *c = *state;
    sl_db_t *db;
    int status;
    pid_t pid;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    for (int child = 0; child < 2; child++) {
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            sl_db_t *db2;
            sl_txn_t *t;

            /* never touches the parent's handle */
            if (sl_db_open(c->path, 1 << 20, 0, &db2) != 0) {
                _exit(1);
            }
            if (child == 0 && sl_db_read(db2, &t) != 0) {
                _exit(1);
            }
            if (child == 1) {
                sl_db_close(db2);
            }
            _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(status, 0);
        assert_int_equal(log_has(c, "cleared 1 stale reader slot(s)"), child == 1);
    }
    sl_db_close(db);
}


static void
test_backup(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 200, 500, 0, 0, false };
    char file[256], restore[256], data[300];
    struct stat st, st2;
    sl_db_t *db, *copy;
    sl_txn_t *t;
    sl_str_t v;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    snprintf(file, sizeof(file), "%s/backup.mdb", c->dir);
    assert_rc(sl_db_backup(db, file), 0);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* a second backup replaces the first */
    a.first = 200;
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_rc(sl_db_backup(db, file), 0);
    sl_db_close(db);

    /* installed as data.mdb, the copy opens and holds everything */
    snprintf(restore, sizeof(restore), "%s/restore", c->dir);
    assert_int_equal(mkdir(restore, 0700), 0);
    snprintf(data, sizeof(data), "%s/data.mdb", restore);
    assert_int_equal(rename(file, data), 0);
    assert_rc(sl_db_open(restore, 1 << 20, 0, &copy), 0);
    assert_int_equal(count_dbi(copy, SL_DBI_KEYS), 400);
    assert_rc(sl_db_read(copy, &t), 0);
    assert_rc(sl_db_get(t, SL_DBI_KEYS, "k00000399", 9, &v), 0);
    assert_int_equal(v.len, 500);
    sl_db_abort(t);
    sl_db_close(copy);

    /* compacted: no bigger than the original */
    snprintf(file, sizeof(file), "%s/data.mdb", c->path);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(stat(data, &st2), 0);
    assert_true(st2.st_size <= st.st_size);

    /* a directory that does not exist: an error, no stray file */
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    snprintf(file, sizeof(file), "%s/nope/backup.mdb", c->dir);
    assert_rc(sl_db_backup(db, file), -ENOENT);
    sl_db_close(db);
}


static void
test_corrupt_file(void **state)
{
    test_ctx_t *c = *state;
    char file[256], junk[16384];
    sl_db_t *db;
    FILE *f;

    assert_int_equal(mkdir(c->path, 0700), 0);
    snprintf(file, sizeof(file), "%s/data.mdb", c->path);

    /* garbage where the meta pages should be */
    memset(junk, 0xab, sizeof(junk));
    f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), SL_ECORRUPT);
    assert_null(db);
    assert_true(log_has(c, "mdb_env_open()"));
    assert_true(log_has(c, "is damaged: stop sluice"));

    /* a truncated file */
    f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, 100, f), 100);
    fclose(f);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), SL_ECORRUPT);
    assert_null(db);
}


static void
test_rdonly(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 3, 10, 0, 0, false };
    sl_db_t *db;

    /* read-only never creates anything */
    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_RDONLY, &db), -ENOENT);
    assert_int_equal(access(c->path, F_OK), -1);
    assert_int_equal(mkdir(c->path, 0700), 0);
    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_RDONLY, &db), -ENOENT);
    assert_true(log_has(c, "holds no database yet"));

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    sl_db_close(db);
    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_RDONLY, &db), 0);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 3);
    assert_rc(sl_db_write(db, put_many, &a), SL_ESTORE);
    assert_rc(sl_db_sync(db), 0);
    sl_db_close(db);
}


/* c->path, a storage directory whose data.mdb (file, its path) has 0 bytes. */
static void
empty_store(test_ctx_t *c, char *file, size_t size)
{
    FILE *f;

    assert_int_equal(mkdir(c->path, 0700), 0);
    snprintf(file, size, "%s/data.mdb", c->path);
    f = fopen(file, "wb");
    assert_non_null(f);
    fclose(f);
}


/* A data.mdb of 0 bytes is a truncated store: refused, untouched, unless SL_DB_INIT. */
static void
test_zero_bytes(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 3, 10, 0, 0, false };
    char file[256];
    struct stat st;
    sl_db_t *db;

    empty_store(c, file, sizeof(file));

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), SL_ECORRUPT);
    assert_null(db);
    assert_true(log_has(c, "is empty (0 bytes)"));
    assert_true(log_has(c, "--init-storage"));
    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_RDONLY, &db), SL_ECORRUPT);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_size, 0);

    /* asked for: an empty store starts in it */
    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_INIT, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    sl_db_close(db);
    assert_true(log_has(c, "starting a new, empty store"));
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_int_equal(count_dbi(db, SL_DBI_KEYS), 3);
    sl_db_close(db);
}


/*
 * A data.mdb of 0 bytes that another process is making a new store in (LMDB
 * creates the file, then writes its first pages) is not a truncated store:
 * an open meanwhile waits for the pages and opens it. (Two processes
 * opening a new storage directory at once failed now and then this way,
 * with "is empty (0 bytes)".)
 */
static void
test_empty_new(void **state)
{
    test_ctx_t *c = *state;
    char file[256];
    sl_db_t *db;
    int status;
    pid_t pid;

    empty_store(c, file, sizeof(file));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* finds the file empty: the new store's pages come within DB_EMPTY_WAIT_MS */
        _exit(sl_db_open(c->path, 1 << 20, 0, &db) == 0 ? 0 : 1);
    }
    /* the process making the store: its first pages 100 ms later */
    nanosleep(&(struct timespec){ 0, 100 * 1000000L }, NULL);
    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_INIT, &db), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    sl_db_close(db);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}


/* A data.mdb shorter than its last page lost data: refused, also read-only. */
static void
test_truncated(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 100, 1000, 0, 0, false };
    char file[256];
    sl_db_t *db;

    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_rc(sl_db_write(db, put_many, &a), 0);
    sl_db_close(db);
    snprintf(file, sizeof(file), "%s/data.mdb", c->path);
    assert_int_equal(truncate(file, 5 * 4096), 0);

    assert_rc(sl_db_open(c->path, 1 << 20, SL_DB_RDONLY, &db), SL_ECORRUPT);
    assert_true(log_has(c, "is truncated"));
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), SL_ECORRUPT);
    assert_null(db);
}


/* The whole map is reserved on disk at open and when it grows: no hole LMDB could fault on. */
static void
test_backed(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 300, 4000, 0, 0, false };
    char file[256];
    struct stat st;
    sl_db_t *db;

    snprintf(file, sizeof(file), "%s/data.mdb", c->path);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &db), 0);
    assert_int_equal(stat(file, &st), 0);
    assert_true((uint64_t) st.st_blocks * 512 >= (uint64_t) 1 << 20);
    /* 1.2 MB of values: the map grows to 2 MiB, reserved before it is used */
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_true(log_has(c, "map grown to"));
    assert_int_equal(stat(file, &st), 0);
    assert_true((uint64_t) st.st_blocks * 512 >= (uint64_t) 2 << 20);
    sl_db_close(db);
}


/*
 * A filesystem that cannot hold more than 2 MiB, made with a file-size
 * limit (in a child: the limit is process-wide): the map cannot grow past
 * it, so writes fail with SL_EFULL and one alert, never SIGBUS; once the
 * limit is lifted the next evaluation grows the map and ends the episode.
 */
static void
test_disk_full(void **state)
{
    test_ctx_t *c = *state;
    int status = run_in_child(disk_full_child, c);

    assert_false(WIFSIGNALED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(count_in_log(c, "[alert]"), 1);
    assert_int_equal(count_in_log(c, "no room to grow its map to 4194304 bytes"), 1);
    assert_int_equal(count_in_log(c, "has room again"), 1);
}


/* Exit codes name the step that failed. */
static int
disk_full_child(test_ctx_t *c)
{
    put_arg_t a = { SL_DBI_KEYS, 0, 10, 4000, 0, 0, false };
    struct rlimit rl;
    sl_db_t *db;
    int rc = 0;

    signal(SIGXFSZ, SIG_IGN);
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0) {
        return 10;
    }
    rl.rlim_cur = 2 << 20;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
        return 11;
    }
    if (sl_db_open(c->path, 1 << 20, 0, &db) != 0) {
        return 12;
    }
    sl_db_set_reserve(db, 64 << 10);
    for (unsigned i = 0; i < 200 && rc == 0; i++) {
        a.first = i * 10;
        rc = sl_db_write(db, put_many, &a);
    }
    if (rc != SL_EFULL || !sl_db_is_full()) {
        return 13;
    }
    if (sl_db_write(db, put_many, &a) != SL_EFULL || sl_db_check_room(db) != SL_EFULL) {
        return 14;
    }
    /* the operator frees space */
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
        return 15;
    }
    if (sl_db_check_room(db) != 0 || sl_db_is_full() || sl_db_write(db, put_many, &a) != 0) {
        return 16;
    }
    sl_db_close(db);
    return 0;
}


static int
del_many(sl_txn_t *t, void *arg)
{
    put_arg_t *a = arg;
    char key[32];
    int rc;

    for (unsigned i = a->first; i < a->first + a->count; i++) {
        key_of(i, key, sizeof(key));
        rc = sl_db_del(t, a->dbi, key, strlen(key));
        if (rc != 0 && rc != SL_ENOTFOUND) {
            return rc;
        }
    }
    return 0;
}


/*
 * With a reserve the storage counts as full while writes still fit (the
 * reserve is for rows of requests already admitted), and stops being full
 * once deletions (retention pruning) free twice the reserve.
 */
static void
test_reserve(void **state)
{
    test_ctx_t *c = *state;
    put_arg_t a = { SL_DBI_KEYS, 0, 5, 1000, 0, 0, false };
    put_arg_t d = { SL_DBI_KEYS, 0, 0, 0, 0, 0, false };
    unsigned i;
    sl_db_t *db;

    /* the map may grow to 16 x 64 KiB = 1 MiB; keep 256 KiB */
    assert_rc(sl_db_open(c->path, 64 << 10, 0, &db), 0);
    sl_db_set_reserve(db, 256 << 10);
    for (i = 0; i < 400 && !sl_db_is_full(); i++) {
        a.first = i * 5;
        assert_rc(sl_db_write(db, put_many, &a), 0);
    }
    assert_true(sl_db_is_full());
    assert_int_equal(count_in_log(c, "less than the 262144 kept for requests in flight"), 1);
    /* what was admitted still fits */
    a.first = 100000;
    assert_rc(sl_db_write(db, put_many, &a), 0);
    assert_rc(sl_db_check_room(db), SL_EFULL);
    assert_false(log_has(c, "has room again"));

    d.count = i * 5;
    assert_rc(sl_db_write(db, del_many, &d), 0);
    /* freed pages become reusable a transaction later */
    assert_rc(sl_db_write(db, noop_txn, NULL), 0);
    assert_rc(sl_db_check_room(db), 0);
    assert_false(sl_db_is_full());
    assert_int_equal(count_in_log(c, "has room again"), 1);
    assert_int_equal(count_in_log(c, "[alert]"), 1);
    sl_db_close(db);
}


/* After sl_db_shared_init a full storage seen by one process is seen by all. */
static void
test_shared_state(void **state)
{
    test_ctx_t *c = *state;
    int status;
    pid_t pid, pid2;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (sl_db_shared_init() != 0 || sl_db_is_full()) {
            _exit(10);
        }
        pid2 = fork();
        if (pid2 == 0) {
            put_arg_t a = { SL_DBI_KEYS, 0, 5, 1000, 0, 0, false };
            sl_db_t *db;

            if (sl_db_open(c->path, 64 << 10, 0, &db) != 0) {
                _exit(11);
            }
            sl_db_set_reserve(db, 256 << 10);
            for (unsigned i = 0; i < 400 && !sl_db_is_full(); i++) {
                a.first = i * 5;
                if (sl_db_write(db, put_many, &a) != 0) {
                    _exit(12);
                }
            }
            sl_db_close(db);
            _exit(sl_db_is_full() ? 0 : 13);
        }
        if (pid2 < 0 || waitpid(pid2, &status, 0) != pid2 || !WIFEXITED(status)) {
            _exit(14);
        }
        _exit(WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : sl_db_is_full() ? 0 : 15);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* this process never mapped the segment: its own state is untouched */
    assert_false(sl_db_is_full());
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_mixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_on_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_grows_in_one_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_resized_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_while_growing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefault_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rdonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_state, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
