/*
 * /admin/cache: the response cache, as `sluice cache` shows and purges it.
 * GET /admin/cache?since=7d answers what storage/cache.h reports (entries
 * and bytes now, hits, misses and savings over the window); DELETE
 * /admin/cache?model=M&key=K purges (neither: everything) and answers
 * {"deleted": N}. Both read or write the whole cache or window, so they run
 * in the libuv thread pool with the request waiting.
 */
#include "core/admin/admin_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/base/log.h"
#include "core/base/pool.h"
#include "storage/cache.h"
#include "storage/ledger.h"

#define ADMIN_CACHE_SINCE "7d"

/* One GET or DELETE, in r->pool while it runs in the thread pool. */
typedef struct admin_cache {
    uv_work_t work;
    sl_http_req_t *r;
    sl_db_t *db;
    int64_t since_ns;
    const char *model; /* DELETE: NULL for any */
    const char *key;
    bool purge;
    sl_cache_report_t report;
    size_t deleted;
    int rc;
} admin_cache_t;

static admin_cache_t *admin_cache_new(sl_http_req_t *r);
static void admin_cache_queue(admin_cache_t *c, uv_work_cb work);
static void admin_cache_report_work(uv_work_t *w);
static void admin_cache_purge_work(uv_work_t *w);
static void admin_cache_done(uv_work_t *w, int status);


static admin_cache_t *
admin_cache_new(sl_http_req_t *r)
{
    admin_cache_t *c = sl_pcalloc(r->pool, sizeof(*c));

    c->r = r;
    c->db = sl__admin_db();
    c->work.data = c;
    return c;
}


/* GET /admin/cache?since=7d */
void
sl__admin_cache_get(sl_http_req_t *r)
{
    static const char *const names[] = { "since" };
    const char *values[] = { ADMIN_CACHE_SINCE };
    struct timespec ts;
    admin_cache_t *c;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    if (sl__admin_query(r, names, values, 1) < 0) {
        return;
    }
    c = admin_cache_new(r);
    clock_gettime(CLOCK_REALTIME, &ts);
    if (sl_ledger_parse_since(values[0], (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec,
                              &c->since_ns)
        != 0) {
        sl__admin_bad(r, "since", "since wants a duration such as 24h, 7d or 30d, or all.");
        return;
    }
    admin_cache_queue(c, admin_cache_report_work);
}


/* DELETE /admin/cache?model=M&key=K */
void
sl__admin_cache_delete(sl_http_req_t *r)
{
    static const char *const names[] = { "model", "key" };
    const char *values[] = { NULL, NULL };
    admin_cache_t *c;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    if (sl__admin_query(r, names, values, 2) < 0) {
        return;
    }
    for (size_t i = 0; i < 2; i++) {
        if (values[i] != NULL && values[i][0] == '\0') {
            sl__admin_bad(r, names[i], "%s must not be empty.", names[i]);
            return;
        }
    }
    c = admin_cache_new(r);
    c->model = values[0];
    c->key = values[1];
    c->purge = true;
    admin_cache_queue(c, admin_cache_purge_work);
}


static void
admin_cache_queue(admin_cache_t *c, uv_work_cb work)
{
    int rc = uv_queue_work(c->r->loop, &c->work, work, admin_cache_done);

    if (rc < 0) {
        sl_log(&c->r->log, SL_LOG_ERR, rc, "uv_queue_work() for /admin/cache failed");
        sl__admin_error(c->r, 500, NULL, NULL, "The cache request could not be started.");
    }
}


/* Thread pool: one read transaction. */
static void
admin_cache_report_work(uv_work_t *w)
{
    admin_cache_t *c = w->data;
    sl_txn_t *t;

    c->rc = sl_db_read(c->db, &t);
    if (c->rc == 0) {
        c->rc = sl_cache_report(t, c->since_ns, &c->report);
        sl_db_abort(t);
    }
}


/* Thread pool: short write transactions, a batch each. */
static void
admin_cache_purge_work(uv_work_t *w)
{
    admin_cache_t *c = w->data;

    c->rc = sl_cache_purge(c->db, c->model, c->key, &c->deleted);
}


static void
admin_cache_done(uv_work_t *w, int status)
{
    admin_cache_t *c = w->data;
    sl_http_req_t *r = c->r;

    if (status < 0 || c->rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    if (c->purge) {
        sl__admin_send(r, 200, json_pack("{s:I}", "deleted", (json_int_t) c->deleted));
        return;
    }
    sl__admin_send(r, 200, sl_cache_report_json(&c->report, r->conf->cache.max_size));
}
