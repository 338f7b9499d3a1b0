/*
 * The ledger's group commit (core/gateway/commit.h). A singly linked queue
 * of items embedded in the requests; flushing detaches the whole queue,
 * writes it in one sl_db_write and then calls each item's done callback.
 * With a commit window of 0 the flush is armed with a prepare handle (runs
 * before the loop polls, so a row queued by a timer callback does not wait
 * for I/O) and a check handle (runs right after the poll's callbacks); both
 * stop once the queue is empty, so an idle worker pays nothing. With a
 * window, a timer started by the first row of a batch.
 */
#include "core/gateway/commit.h"

#include <stdbool.h>
#include <stdlib.h>

#include "core/admin/metrics.h"
#include "core/base/clock.h"
#include "core/base/log.h"

struct sl_commit {
    uv_loop_t *loop;
    sl_db_t *db;
    uint64_t window; /* ms; 0: one loop turn */
    uv_prepare_t prepare;
    uv_check_t check;
    uv_timer_t timer;
    sl_commit_item_t *head;
    sl_commit_item_t **tail;
    bool armed;
    bool flushing;
    unsigned closing; /* handles not closed yet, once destroyed */
    uint64_t rows;
    uint64_t batches;
};

static void commit_arm(sl_commit_t *c);
static void commit_disarm(sl_commit_t *c);
static void commit_count(sl_commit_t *c, size_t rows);
static void commit_on_prepare(uv_prepare_t *h);
static void commit_on_check(uv_check_t *h);
static void commit_on_timer(uv_timer_t *h);
static int commit_batch_txn(sl_txn_t *t, void *arg);
static int commit_one_txn(sl_txn_t *t, void *arg);
static void commit_on_close(uv_handle_t *h);


sl_commit_t *
sl_commit_create(uv_loop_t *loop, sl_db_t *db, uint64_t window_ms)
{
    sl_commit_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        sl_log(NULL, SL_LOG_EMERG, 0, "cannot allocate the ledger commit queue");
        return NULL;
    }
    c->loop = loop;
    c->db = db;
    c->window = window_ms;
    c->tail = &c->head;
    uv_prepare_init(loop, &c->prepare);
    uv_check_init(loop, &c->check);
    uv_timer_init(loop, &c->timer);
    c->prepare.data = c;
    c->check.data = c;
    c->timer.data = c;
    return c;
}


void
sl_commit_push(sl_commit_t *c, sl_commit_item_t *it)
{
    it->next = NULL;
    *c->tail = it;
    c->tail = &it->next;
    if (!c->armed && !c->flushing) {
        commit_arm(c); /* while flushing, the flush writes it before it returns */
    }
}


static void
commit_arm(sl_commit_t *c)
{
    c->armed = true;
    if (c->window == 0) {
        uv_prepare_start(&c->prepare, commit_on_prepare);
        uv_check_start(&c->check, commit_on_check);
    } else {
        uv_timer_start(&c->timer, commit_on_timer, c->window, 0);
    }
}


static void
commit_disarm(sl_commit_t *c)
{
    c->armed = false;
    uv_prepare_stop(&c->prepare);
    uv_check_stop(&c->check);
    uv_timer_stop(&c->timer);
}


static void
commit_on_prepare(uv_prepare_t *h)
{
    sl_clock_enter();
    sl_commit_flush(h->data);
    sl_clock_leave();
}


static void
commit_on_check(uv_check_t *h)
{
    sl_clock_enter();
    sl_commit_flush(h->data);
    sl_clock_leave();
}


static void
commit_on_timer(uv_timer_t *h)
{
    sl_clock_enter();
    sl_commit_flush(h->data);
    sl_clock_leave();
}


void
sl_commit_flush(sl_commit_t *c)
{
    sl_commit_item_t *batch, *it, *next;
    uint64_t t0;
    size_t n, rows;
    int rc;

    if (c->flushing) {
        return; /* from a done callback: the loop below writes what it queued */
    }
    c->flushing = true;
    commit_disarm(c);
    /*
     * A done callback may queue another row (the connection's next request
     * answered at once): written here, in a batch of its own, and not left
     * to a poll that could block with nothing else to wake it.
     */
    while (c->head != NULL) {
        batch = c->head;
        c->head = NULL;
        c->tail = &c->head;
        n = rows = 0;
        for (it = batch; it != NULL; it = it->next) {
            n++;
            rows += !it->aside;
        }
        t0 = uv_hrtime();
        rc = sl_db_write(c->db, commit_batch_txn, batch);
        sl_metrics_ledger_write((uv_hrtime() - t0) / 1000);
        sl_clock_forget(); /* the answers below leave after the commit, not at its start */
        if (rc == 0) {
            commit_count(c, rows);
        }
        for (it = batch; it != NULL; it = next) {
            int one = rc;

            /* done may end the request and free the item: read next first */
            next = it->next;
            if (rc < 0 && n > 1) {
                /* one row must not fail its neighbours: each on its own */
                one = sl_db_write(c->db, commit_one_txn, it);
                if (one == 0) {
                    commit_count(c, it->aside ? 0 : 1);
                }
            }
            it->done(it, one);
        }
    }
    c->flushing = false;
}


static void
commit_count(sl_commit_t *c, size_t rows)
{
    c->rows += rows;
    c->batches++;
    sl_metric_add(SL_METRIC_LEDGER_COMMITS, 1);
    sl_metric_add(SL_METRIC_LEDGER_ROWS, rows);
}


static int
commit_batch_txn(sl_txn_t *t, void *arg)
{
    int rc;

    for (sl_commit_item_t *it = arg; it != NULL; it = it->next) {
        rc = it->txn(t, it);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}


static int
commit_one_txn(sl_txn_t *t, void *arg)
{
    sl_commit_item_t *it = arg;

    return it->txn(t, it);
}


void
sl_commit_stats(const sl_commit_t *c, uint64_t *rows, uint64_t *batches)
{
    *rows = c != NULL ? c->rows : 0;
    *batches = c != NULL ? c->batches : 0;
}


void
sl_commit_destroy(sl_commit_t *c)
{
    uv_handle_t *h[3];

    if (c == NULL) {
        return;
    }
    h[0] = (uv_handle_t *) &c->prepare;
    h[1] = (uv_handle_t *) &c->check;
    h[2] = (uv_handle_t *) &c->timer;
    sl_commit_flush(c);
    commit_disarm(c);
    /* a loop torn down by uv_walk may have closed them already (and run that close) */
    for (size_t i = 0; i < 3; i++) {
        if (!uv_is_closing(h[i])) {
            c->closing++;
        }
    }
    if (c->closing == 0) {
        free(c);
        return;
    }
    for (size_t i = 0; i < 3; i++) {
        if (!uv_is_closing(h[i])) {
            uv_close(h[i], commit_on_close);
        }
    }
}


static void
commit_on_close(uv_handle_t *h)
{
    sl_commit_t *c = h->data;

    if (--c->closing == 0) {
        free(c);
    }
}
