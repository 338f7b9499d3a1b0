/*
 * Unit tests for core/gateway/commit.c on a scratch LMDB environment and a
 * real libuv loop: the rows queued during one loop turn go out in one write
 * transaction, done never runs inside push, a commit window gathers rows
 * queued later in the window, a bad row fails alone (its neighbours are
 * written one by one), a row queued by a done callback gets a batch of its
 * own, and destroy flushes what is queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "unit/testutil.h"

#include "core/base/errno.h"
#include "core/gateway/commit.h"
#include "storage/db.h"

#define NITEMS 8

typedef struct item {
    sl_commit_item_t it; /* first: the callbacks cast back */
    char key[16];
    bool bad;   /* its txn fails */
    int runs;   /* txn calls */
    int done;   /* done calls */
    int rc;     /* what done got */
    int pushed; /* done_push: pushed another */
    struct fixture *f;
} item_t;

typedef struct fixture {
    char dir[64];
    char log[128];
    uv_loop_t loop;
    sl_db_t *db;
    sl_commit_t *c;
    item_t items[NITEMS];
    item_t extra;
    size_t npush; /* items the timer pushes */
} fixture_t;

static int setup(void **state);
static int teardown(void **state);
static int item_txn(sl_txn_t *t, sl_commit_item_t *it);
static void item_done(sl_commit_item_t *it, int rc);
static void item_done_push(sl_commit_item_t *it, int rc);
static void item_init(fixture_t *f, item_t *x, const char *key);
static bool stored(fixture_t *f, const char *key);
static void on_push_timer(uv_timer_t *t);
static void on_late_timer(uv_timer_t *t);
static void on_late_check(uv_check_t *h);
static void run(fixture_t *f);


static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    sl_test_tmpdir("/tmp/sl-commit-XXXXXX", f->dir, sizeof(f->dir), f->log, sizeof(f->log));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_db_open(f->dir, 8u << 20, 0, &f->db), 0);
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t *f = *state;

    sl_commit_destroy(f->c);
    run(f); /* the queue's handles close */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_db_close(f->db);
    sl_test_rmtree(f->dir);
    free(f);
    return 0;
}


static void
run(fixture_t *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
}


static void
item_init(fixture_t *f, item_t *x, const char *key)
{
    memset(x, 0, sizeof(*x));
    snprintf(x->key, sizeof(x->key), "%s", key);
    x->it.txn = item_txn;
    x->it.done = item_done;
    x->f = f;
}


static int
item_txn(sl_txn_t *t, sl_commit_item_t *it)
{
    item_t *x = (item_t *) (void *) it;

    x->runs++;
    if (x->bad) {
        return SL_ESTORE;
    }
    return sl_db_put(t, SL_DBI_META, x->key, strlen(x->key), "v", 1, false);
}


static void
item_done(sl_commit_item_t *it, int rc)
{
    item_t *x = (item_t *) (void *) it;

    x->done++;
    x->rc = rc;
}


/* Done that queues the fixture's extra item, once. */
static void
item_done_push(sl_commit_item_t *it, int rc)
{
    item_t *x = (item_t *) (void *) it;

    item_done(it, rc);
    if (!x->pushed) {
        x->pushed = 1;
        sl_commit_push(x->f->c, &x->f->extra.it);
    }
}


static bool
stored(fixture_t *f, const char *key)
{
    sl_txn_t *t;
    sl_str_t v;
    int rc;

    assert_int_equal(sl_db_read(f->db, &t), 0);
    rc = sl_db_get(t, SL_DBI_META, key, strlen(key), &v);
    sl_db_abort(t);
    return rc == 0;
}


/* One loop callback pushing npush items, as the responses of one turn would. */
static void
on_push_timer(uv_timer_t *t)
{
    fixture_t *f = t->data;

    for (size_t i = 0; i < f->npush; i++) {
        sl_commit_push(f->c, &f->items[i].it);
        assert_int_equal(f->items[i].done, 0); /* never from inside push */
    }
    uv_close((uv_handle_t *) t, NULL);
}


static void
on_late_timer(uv_timer_t *t)
{
    fixture_t *f = t->data;

    sl_commit_push(f->c, &f->extra.it);
    uv_close((uv_handle_t *) t, NULL);
}


/* After the poll of the turn whose prepare flushed the first batch: a later turn's row. */
static void
on_late_check(uv_check_t *h)
{
    fixture_t *f = h->data;

    sl_commit_push(f->c, &f->extra.it);
    uv_close((uv_handle_t *) h, NULL);
}


static void
test_one_turn_one_transaction(void **state)
{
    fixture_t *f = *state;
    uv_timer_t t1;
    uv_check_t late;
    uint64_t rows, batches;
    char key[16];

    f->c = sl_commit_create(&f->loop, f->db, 0);
    assert_non_null(f->c);
    for (size_t i = 0; i < NITEMS; i++) {
        snprintf(key, sizeof(key), "row-%zu", i);
        item_init(f, &f->items[i], key);
    }
    item_init(f, &f->extra, "late");
    f->npush = NITEMS;
    uv_timer_init(&f->loop, &t1);
    uv_check_init(&f->loop, &late);
    t1.data = f;
    late.data = f;
    uv_timer_start(&t1, on_push_timer, 0, 0);
    uv_check_start(&late, on_late_check); /* a later phase: a batch of its own */
    run(f);
    for (size_t i = 0; i < NITEMS; i++) {
        assert_int_equal(f->items[i].done, 1);
        assert_int_equal(f->items[i].rc, 0);
        assert_int_equal(f->items[i].runs, 1);
        snprintf(key, sizeof(key), "row-%zu", i);
        assert_true(stored(f, key));
    }
    assert_int_equal(f->extra.done, 1);
    assert_true(stored(f, "late"));
    sl_commit_stats(f->c, &rows, &batches);
    assert_int_equal(rows, NITEMS + 1);
    assert_int_equal(batches, 2);
}


static void
test_window_gathers(void **state)
{
    fixture_t *f = *state;
    uv_timer_t t1, t2;
    uint64_t rows, batches;

    f->c = sl_commit_create(&f->loop, f->db, 200);
    assert_non_null(f->c);
    item_init(f, &f->items[0], "a");
    item_init(f, &f->items[1], "b");
    item_init(f, &f->extra, "c");
    f->npush = 2;
    uv_timer_init(&f->loop, &t1);
    uv_timer_init(&f->loop, &t2);
    t1.data = f;
    t2.data = f;
    uv_timer_start(&t1, on_push_timer, 0, 0);
    uv_timer_start(&t2, on_late_timer, 20, 0); /* due before the window closes */
    run(f);
    assert_int_equal(f->items[0].rc, 0);
    assert_int_equal(f->items[1].rc, 0);
    assert_int_equal(f->extra.done, 1);
    assert_true(stored(f, "a") && stored(f, "b") && stored(f, "c"));
    sl_commit_stats(f->c, &rows, &batches);
    assert_int_equal(rows, 3);
    assert_int_equal(batches, 1);
}


static void
test_bad_row_fails_alone(void **state)
{
    fixture_t *f = *state;
    uint64_t rows, batches;

    f->c = sl_commit_create(&f->loop, f->db, 0);
    assert_non_null(f->c);
    item_init(f, &f->items[0], "good-1");
    item_init(f, &f->items[1], "bad");
    item_init(f, &f->items[2], "good-2");
    f->items[1].bad = true;
    for (size_t i = 0; i < 3; i++) {
        sl_commit_push(f->c, &f->items[i].it);
    }
    run(f);
    assert_int_equal(f->items[0].rc, 0);
    assert_int_equal(f->items[1].rc, SL_ESTORE);
    assert_int_equal(f->items[2].rc, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(f->items[i].done, 1);
    }
    assert_true(stored(f, "good-1"));
    assert_true(stored(f, "good-2"));
    assert_false(stored(f, "bad"));
    sl_commit_stats(f->c, &rows, &batches);
    assert_int_equal(rows, 2);
}


static void
test_push_from_done(void **state)
{
    fixture_t *f = *state;
    uint64_t rows, batches;

    f->c = sl_commit_create(&f->loop, f->db, 0);
    assert_non_null(f->c);
    item_init(f, &f->items[0], "first");
    item_init(f, &f->extra, "second");
    f->items[0].it.done = item_done_push;
    sl_commit_push(f->c, &f->items[0].it);
    run(f);
    assert_int_equal(f->items[0].done, 1);
    assert_int_equal(f->extra.done, 1);
    assert_int_equal(f->extra.rc, 0);
    assert_true(stored(f, "second"));
    sl_commit_stats(f->c, &rows, &batches);
    assert_int_equal(rows, 2);
    assert_int_equal(batches, 2);
}


static void
test_destroy_flushes(void **state)
{
    fixture_t *f = *state;

    f->c = sl_commit_create(&f->loop, f->db, 1000);
    assert_non_null(f->c);
    item_init(f, &f->items[0], "queued");
    sl_commit_push(f->c, &f->items[0].it);
    assert_int_equal(f->items[0].done, 0);
    sl_commit_destroy(f->c);
    f->c = NULL;
    assert_int_equal(f->items[0].done, 1);
    assert_int_equal(f->items[0].rc, 0);
    assert_true(stored(f, "queued"));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_turn_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_gathers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_row_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_from_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_flushes, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
