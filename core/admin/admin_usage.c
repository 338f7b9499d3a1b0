/*
 * What the gateway did and does. GET /admin/usage groups the ledger over a
 * window, as `sluice usage --format json`; it reads the whole window, so
 * the aggregation runs in the libuv thread pool with the request waiting.
 * GET /admin/targets renders the targets' live state (breakers, latency,
 * in flight, headroom, credentials cooling down) and /metrics the shared
 * counters in Prometheus' text format, both from core/admin/metrics.h.
 */
#include "core/admin/admin_internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/admin/metrics.h"
#include "core/base/buf.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/gateway/state.h"
#include "storage/ledger.h"

#define ADMIN_DEFAULT_SINCE "7d"

/* One usage report, in r->pool while it runs in the thread pool. */
typedef struct admin_usage {
    uv_work_t work;
    sl_http_req_t *r;
    sl_db_t *db;
    int64_t since_ns;
    sl_ledger_by_e by;
    sl_ledger_agg_t *agg;
    int rc;
} admin_usage_t;

static void admin_usage_work(uv_work_t *req);
static void admin_usage_done(uv_work_t *req, int status);


/* See admin_internal.h. */
int
sl__admin_query(sl_http_req_t *r, const char *const *names, const char **values, size_t n)
{
    const char *p = r->query.p, *end = r->query.p + r->query.len, *amp, *eq;
    size_t klen;
    bool known;

    while (p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }
        eq = memchr(p, '=', (size_t) (amp - p));
        klen = (size_t) ((eq != NULL ? eq : amp) - p);
        known = false;
        for (size_t i = 0; i < n && klen > 0; i++) {
            if (strlen(names[i]) == klen && memcmp(p, names[i], klen) == 0) {
                values[i] = eq != NULL ? sl_pstrndup(r->pool, eq + 1, (size_t) (amp - eq - 1)) : "";
                known = true;
            }
        }
        if (!known && klen > 0) {
            sl__admin_unknown_field(r, sl_pstrndup(r->pool, p, klen), "query parameter");
            return -EINVAL;
        }
        p = amp + 1;
    }
    return 0;
}


/* GET /admin/usage?since=7d&by=key: what `sluice usage --format json` prints, as a list. */
void
sl__admin_usage(sl_http_req_t *r)
{
    static const char *const names[] = { "since", "by" };
    const char *values[] = { ADMIN_DEFAULT_SINCE, "key" };
    struct timespec ts;
    admin_usage_t *u;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    if (sl__admin_query(r, names, values, 2) < 0) {
        return;
    }
    u = sl_pcalloc(r->pool, sizeof(*u));
    clock_gettime(CLOCK_REALTIME, &ts);
    if (sl_ledger_parse_since(values[0], (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec,
                              &u->since_ns)
        != 0) {
        sl__admin_bad(r, "since", "since wants a duration such as 24h, 7d or 30d, or all.");
        return;
    }
    if (sl_ledger_by_parse(values[1], &u->by) != 0) {
        sl__admin_bad(r, "by", "by is key, team, model, provider, day or request.");
        return;
    }
    u->r = r;
    u->db = sl__admin_db();
    u->work.data = u;
    /* the whole window is read and grouped: off the loop */
    rc = uv_queue_work(r->loop, &u->work, admin_usage_work, admin_usage_done);
    if (rc < 0) {
        sl_log(&r->log, SL_LOG_ERR, rc, "uv_queue_work() for a usage report failed");
        sl__admin_error(r, 500, NULL, NULL, "The usage report could not be started.");
    }
}


/* Thread pool: one read transaction over the window. */
static void
admin_usage_work(uv_work_t *req)
{
    admin_usage_t *u = req->data;
    sl_txn_t *t;

    u->rc = sl_db_read(u->db, &t);
    if (u->rc == 0) {
        u->rc = sl_ledger_aggregate(t, u->since_ns, 0, u->by, &u->agg);
        sl_db_abort(t);
    }
}


static void
admin_usage_done(uv_work_t *req, int status)
{
    admin_usage_t *u = req->data;
    sl_http_req_t *r = u->r;
    json_t *data, *g;
    int rc = u->rc;

    if (status < 0 || rc < 0) {
        sl_ledger_agg_free(u->agg);
        sl__admin_store_error(r);
        return;
    }
    data = json_array();
    for (size_t i = 0; data != NULL && i < u->agg->ngroups; i++) {
        g = sl_ledger_group_json(&u->agg->groups[i]);
        if (g == NULL || json_array_append_new(data, g) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    sl_ledger_agg_free(u->agg);
    sl__admin_send_list(r, data);
}


/* Prometheus text exposition of the shared counters (core/admin/metrics.h). */
void
sl__admin_metrics(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "text/plain; version=0.0.4", 25 } },
    };
    sl_buf_t b = SL_BUF_INIT;

    if (!sl__admin_auth(r)) {
        return;
    }
    sl_metrics_render(&b);
    sl_http_respond(r, 200, h, 1, b.p, b.len);
    sl_buf_free(&b);
}


/*
 * GET /admin/targets: every target the gateway keeps state for (breaker
 * state, consecutive failures, open until, latency estimates, in flight,
 * rate-limit headroom) and the credentials cooling down after a 429.
 */
void
sl__admin_targets(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };
    sl_buf_t b = SL_BUF_INIT;

    if (!sl__admin_auth(r)) {
        return;
    }
    sl_metrics_render_targets(&b, sl_state_now());
    sl_http_respond(r, 200, h, 1, b.p, b.len);
    sl_buf_free(&b);
}
