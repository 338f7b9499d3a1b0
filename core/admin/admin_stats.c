/*
 * What the dashboard reads. GET /admin/stats groups the ledger over a
 * window into time buckets (core/admin/stats.h) and GET /admin/budgets
 * builds each budget's burn-down; both read the whole window, so they run
 * in the libuv thread pool. GET /admin/tail and GET /admin/alerts copy the
 * rings in the shared segment (core/admin/tail.h, core/admin/alerts.h).
 */
#include "core/admin/admin_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/admin/alerts.h"
#include "core/admin/stats.h"
#include "core/admin/tail.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/base/str.h"
#include "core/gateway/state.h"
#include "storage/keys.h"
#include "storage/ledger.h"
#include "storage/spend.h"
#include "storage/teams.h"

#define STATS_DEFAULT_SINCE "24h"
#define BUDGETS_MAX         100 /* budgets shown: the most used ones */
#define BUDGET_SLOTS        256 /* open addressing over BUDGETS_MAX */
#define BUDGET_POINTS_MAX   32  /* a month by day, a day by hour */

/* One burn-down: a key's or a team's budget in its current period. */
typedef struct budget_item {
    sl_budget_kind_e kind;
    char id[SL_KEY_NAME_MAX + 32]; /* key id or team name */
    char name[SL_KEY_NAME_MAX + 1];
    char team[SL_KEY_NAME_MAX + 1];
    uint64_t budget;
    sl_budget_period_e period;
    sl_spend_t spend;
    int64_t start; /* unix ms; 0 for a lifetime budget */
    int64_t end;
    int64_t step;                       /* ms between points */
    uint64_t points[BUDGET_POINTS_MAX]; /* cost per step from the ledger */
    size_t npoints;
} budget_item_t;

/* A request's work, in r->pool while it runs in the thread pool. */
typedef struct stats_work {
    uv_work_t work;
    sl_http_req_t *r;
    sl_db_t *db;
    int64_t since_ms;
    int64_t now_ms;
    int64_t bucket_ms;
    sl_stats_t *stats;
    budget_item_t *items; /* budgets */
    size_t nitems;
    int slots[BUDGET_SLOTS];
    bool truncated;
    int rc;
} stats_work_t;

static int stats_row_cb(void *arg, const sl_ledger_row_t *row);
static void stats_run(uv_work_t *req);
static void stats_done(uv_work_t *req, int status);
static void stats_queue(sl_http_req_t *r, stats_work_t *w, uv_work_cb work, uv_after_work_cb done);
static void budgets_run(uv_work_t *req);
static void budgets_done(uv_work_t *req, int status);
static int budgets_key_cb(void *arg, const sl_key_t *k);
static int budgets_team_cb(void *arg, const sl_team_t *t);
static budget_item_t *budgets_add(stats_work_t *w, sl_budget_kind_e kind, const char *id,
                                  uint64_t budget, sl_budget_period_e period);
static void budgets_window(budget_item_t *b, int64_t now);
static int budgets_row_cb(void *arg, const sl_ledger_row_t *row);
static budget_item_t *budgets_find(stats_work_t *w, sl_budget_kind_e kind, const char *id);
static uint64_t budgets_hash(sl_budget_kind_e kind, const char *id);
static int budgets_cmp(const void *a, const void *b);
static json_t *budgets_item_json(const budget_item_t *b, int64_t now);
static json_t *stats_usd(uint64_t nusd);


static json_t *
stats_usd(uint64_t nusd)
{
    char buf[32];

    sl_budget_format_usd(nusd, buf, sizeof(buf));
    return json_string(buf);
}


static void
stats_queue(sl_http_req_t *r, stats_work_t *w, uv_work_cb work, uv_after_work_cb done)
{
    int rc;

    w->r = r;
    w->db = sl__admin_db();
    w->work.data = w;
    rc = uv_queue_work(r->loop, &w->work, work, done);
    if (rc < 0) {
        sl_log(&r->log, SL_LOG_ERR, rc, "uv_queue_work() for the dashboard failed");
        sl__admin_error(r, 500, NULL, NULL, "The report could not be started.");
    }
}


/*
 * GET /admin/stats?since=24h&bucket=hour: the ledger over the window in
 * time buckets (hour by default up to two days, day beyond).
 */
void
sl__admin_stats(sl_http_req_t *r)
{
    static const char *const names[] = { "since", "bucket" };
    const char *values[] = { STATS_DEFAULT_SINCE, NULL };
    stats_work_t *w;
    int64_t since_ns;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    if (sl__admin_query(r, names, values, 2) < 0) {
        return;
    }
    w = sl_pcalloc(r->pool, sizeof(*w));
    w->now_ms = (int64_t) sl_state_now();
    if (strcmp(values[0], "all") == 0
        || sl_ledger_parse_since(values[0], w->now_ms * 1000000, &since_ns) != 0) {
        sl__admin_bad(r, "since", "since wants a duration such as 1h, 24h, 7d or 30d.");
        return;
    }
    w->since_ms = since_ns / 1000000;
    if (values[1] == NULL) {
        w->bucket_ms =
            w->now_ms - w->since_ms <= 2 * SL_STATS_DAY_MS ? SL_STATS_HOUR_MS : SL_STATS_DAY_MS;
    } else if (strcmp(values[1], "hour") == 0) {
        w->bucket_ms = SL_STATS_HOUR_MS;
    } else if (strcmp(values[1], "day") == 0) {
        w->bucket_ms = SL_STATS_DAY_MS;
    } else {
        sl__admin_bad(r, "bucket", "bucket is hour or day.");
        return;
    }
    w->stats = sl_stats_create(w->since_ms, w->now_ms + 1, w->bucket_ms);
    if (w->stats == NULL) {
        sl__admin_bad(r, "since", "That window needs more than %d buckets: use bucket=day.",
                      SL_STATS_BUCKETS_MAX);
        return;
    }
    stats_queue(r, w, stats_run, stats_done);
}


static int
stats_row_cb(void *arg, const sl_ledger_row_t *row)
{
    sl_stats_add(arg, row);
    return 0;
}


/* Thread pool: one read transaction over the window. */
static void
stats_run(uv_work_t *req)
{
    stats_work_t *w = req->data;
    sl_txn_t *t;

    w->rc = sl_db_read(w->db, &t);
    if (w->rc == 0) {
        w->rc = sl_ledger_scan(t, w->since_ms * 1000000, stats_row_cb, w->stats);
        sl_db_abort(t);
    }
}


static void
stats_done(uv_work_t *req, int status)
{
    stats_work_t *w = req->data;
    json_t *j = status == 0 && w->rc == 0 ? sl_stats_json(w->stats) : NULL;

    sl_stats_destroy(w->stats);
    if (status < 0 || w->rc < 0) {
        sl__admin_store_error(w->r);
        return;
    }
    sl__admin_send(w->r, 200, j);
}


/*
 * GET /admin/budgets: every key and team budget (the BUDGETS_MAX most used
 * ones) with its current period, spend, the projection to the period's end
 * and the spend per day (per hour for a daily budget) from the ledger.
 */
void
sl__admin_budgets(sl_http_req_t *r)
{
    stats_work_t *w;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    if (sl__admin_query(r, NULL, NULL, 0) < 0) {
        return;
    }
    w = sl_pcalloc(r->pool, sizeof(*w));
    w->now_ms = (int64_t) sl_state_now();
    w->items = sl_pcalloc(r->pool, BUDGETS_MAX * sizeof(budget_item_t));
    stats_queue(r, w, budgets_run, budgets_done);
}


static uint64_t
budgets_hash(sl_budget_kind_e kind, const char *id)
{
    return sl_str_hash(id) ^ (uint64_t) kind;
}


static budget_item_t *
budgets_find(stats_work_t *w, sl_budget_kind_e kind, const char *id)
{
    size_t slot = (size_t) (budgets_hash(kind, id) % BUDGET_SLOTS);

    for (size_t i = 0; i < BUDGET_SLOTS; i++, slot = (slot + 1) % BUDGET_SLOTS) {
        budget_item_t *b;

        if (w->slots[slot] == 0) {
            return NULL;
        }
        b = &w->items[w->slots[slot] - 1];
        if (b->kind == kind && strcmp(b->id, id) == 0) {
            return b;
        }
    }
    return NULL;
}


static budget_item_t *
budgets_add(stats_work_t *w, sl_budget_kind_e kind, const char *id, uint64_t budget,
            sl_budget_period_e period)
{
    size_t slot = (size_t) (budgets_hash(kind, id) % BUDGET_SLOTS);
    budget_item_t *b;

    if (w->nitems == BUDGETS_MAX) {
        w->truncated = true;
        return NULL;
    }
    b = &w->items[w->nitems];
    b->kind = kind;
    snprintf(b->id, sizeof(b->id), "%s", id);
    b->budget = budget;
    b->period = period;
    while (w->slots[slot] != 0) {
        slot = (slot + 1) % BUDGET_SLOTS;
    }
    w->slots[slot] = (int) ++w->nitems;
    return b;
}


static int
budgets_key_cb(void *arg, const sl_key_t *k)
{
    stats_work_t *w = arg;
    budget_item_t *b;

    if (k->budget == 0 || !sl_key_is_active(k, w->now_ms / 1000)) {
        return 0;
    }
    b = budgets_add(w, SL_BUDGET_KEY, k->id, k->budget, k->period);
    if (b != NULL) {
        snprintf(b->name, sizeof(b->name), "%s", k->name);
        snprintf(b->team, sizeof(b->team), "%s", k->team != NULL ? k->team : "");
    }
    return 0;
}


static int
budgets_team_cb(void *arg, const sl_team_t *t)
{
    stats_work_t *w = arg;
    budget_item_t *b;

    if (t->budget == 0) {
        return 0;
    }
    b = budgets_add(w, SL_BUDGET_TEAM, t->name, t->budget, t->period);
    if (b != NULL) {
        snprintf(b->name, sizeof(b->name), "%s", t->name);
    }
    return 0;
}


/* The current period of b in UTC, and the step of its points. */
static void
budgets_window(budget_item_t *b, int64_t now)
{
    time_t t = (time_t) (now / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    if (b->period == SL_BUDGET_TOTAL) {
        b->start = b->end = 0;
        return;
    }
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (b->period == SL_BUDGET_DAY) {
        b->start = (int64_t) (now / SL_STATS_DAY_MS) * SL_STATS_DAY_MS;
        b->end = b->start + SL_STATS_DAY_MS;
        b->step = SL_STATS_HOUR_MS;
    } else {
        b->start = (int64_t) (now / SL_STATS_DAY_MS) * SL_STATS_DAY_MS
                   - (int64_t) (tm.tm_mday - 1) * SL_STATS_DAY_MS;
        /* the next month's first day: 28 days on, then forward to day 1 */
        t = (time_t) (b->start / 1000 + 32 * 86400);
        gmtime_r(&t, &tm);
        b->end = (int64_t) (t / 86400 - (tm.tm_mday - 1)) * SL_STATS_DAY_MS;
        b->step = SL_STATS_DAY_MS;
    }
    b->npoints = (size_t) ((b->end - b->start) / b->step);
}


static int
budgets_row_cb(void *arg, const sl_ledger_row_t *row)
{
    stats_work_t *w = arg;
    int64_t t = row->time_ns / 1000000;
    budget_item_t *b[2];

    if (row->cost_nusd == 0) {
        return 0;
    }
    b[0] = row->key_id[0] != '\0' ? budgets_find(w, SL_BUDGET_KEY, row->key_id) : NULL;
    b[1] = row->team[0] != '\0' ? budgets_find(w, SL_BUDGET_TEAM, row->team) : NULL;
    for (int i = 0; i < 2; i++) {
        if (b[i] != NULL && b[i]->npoints > 0 && t >= b[i]->start && t < b[i]->end) {
            size_t p = (size_t) ((t - b[i]->start) / b[i]->step);

            b[i]->points[p < b[i]->npoints ? p : b[i]->npoints - 1] += row->cost_nusd;
        }
    }
    return 0;
}


/* Thread pool: the budgets and their spend, then one scan since the earliest period start. */
static void
budgets_run(uv_work_t *req)
{
    stats_work_t *w = req->data;
    sl_pool_t *pool = sl_pool_create(0);
    int64_t since = w->now_ms;
    sl_txn_t *t;

    w->rc = sl_db_read(w->db, &t);
    if (w->rc == 0) {
        w->rc = sl_keys_list(t, pool, budgets_key_cb, w);
    }
    if (w->rc == 0) {
        w->rc = sl_teams_list(t, pool, budgets_team_cb, w);
    }
    for (size_t i = 0; w->rc == 0 && i < w->nitems; i++) {
        budget_item_t *b = &w->items[i];

        budgets_window(b, w->now_ms);
        if (b->npoints > 0 && b->start < since) {
            since = b->start;
        }
        w->rc = sl_spend_get(t, b->kind, b->id, b->period, (time_t) (w->now_ms / 1000), &b->spend);
    }
    if (w->rc == 0 && since < w->now_ms) {
        w->rc = sl_ledger_scan(t, since * 1000000, budgets_row_cb, w);
    }
    if (w->rc != SL_ESTORE || t != NULL) {
        sl_db_abort(t);
    }
    sl_pool_destroy(pool);
}


static int
budgets_cmp(const void *a, const void *b)
{
    const budget_item_t *x = a, *y = b;
    double ux = x->budget > 0 ? (double) x->spend.spent / (double) x->budget : 0;
    double uy = y->budget > 0 ? (double) y->spend.spent / (double) y->budget : 0;

    if (ux != uy) {
        return ux > uy ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}


static json_t *
budgets_item_json(const budget_item_t *b, int64_t now)
{
    char start[32], end[32];
    uint64_t projected = sl_stats_project(b->spend.spent, b->start, b->end, now);
    json_t *points = json_array(), *j;
    uint64_t sum = 0;

    for (size_t i = 0; points != NULL && i < b->npoints; i++) {
        int64_t at = b->start + (int64_t) i * b->step;

        if (at > now) {
            break;
        }
        sum += b->points[i];
        json_array_append_new(
            points, json_pack("{s:I, s:I}", "t", (json_int_t) at, "spent_nusd", (json_int_t) sum));
    }
    sl_ledger_format_time(b->start / 1000, start, sizeof(start));
    sl_ledger_format_time(b->end / 1000, end, sizeof(end));
    j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o}", "kind",
                  b->kind == SL_BUDGET_KEY ? "key" : "team", "id", b->id, "name", b->name, "team",
                  b->team, "period", sl_budget_period_name(b->period), "budget_usd",
                  stats_usd(b->budget), "budget_nusd", (json_int_t) b->budget, "spent_usd",
                  stats_usd(b->spend.spent), "reserved_usd", stats_usd(b->spend.reserved),
                  "remaining_usd", stats_usd(sl_spend_remaining(b->budget, &b->spend)));
    if (j == NULL) {
        json_decref(points);
        return NULL;
    }
    json_object_set_new(j, "spent_nusd", json_integer((json_int_t) b->spend.spent));
    if (b->npoints > 0) {
        json_object_set_new(j, "period_start", json_string(start));
        json_object_set_new(j, "period_end", json_string(end));
        json_object_set_new(j, "period_start_ms", json_integer((json_int_t) b->start));
        json_object_set_new(j, "period_end_ms", json_integer((json_int_t) b->end));
        json_object_set_new(j, "projected_usd", stats_usd(projected));
        json_object_set_new(j, "projected_nusd", json_integer((json_int_t) projected));
    } else {
        json_object_set_new(j, "period_start", json_null());
        json_object_set_new(j, "period_end", json_null());
        json_object_set_new(j, "projected_usd", json_null());
    }
    json_object_set_new(j, "points", points != NULL ? points : json_array());
    return j;
}


static void
budgets_done(uv_work_t *req, int status)
{
    stats_work_t *w = req->data;
    json_t *data, *j;

    if (status < 0 || w->rc < 0) {
        sl__admin_store_error(w->r);
        return;
    }
    qsort(w->items, w->nitems, sizeof(w->items[0]), budgets_cmp);
    data = json_array();
    for (size_t i = 0; data != NULL && i < w->nitems; i++) {
        json_array_append_new(data, budgets_item_json(&w->items[i], w->now_ms));
    }
    j = json_pack("{s:s, s:o, s:b}", "object", "list", "data", data != NULL ? data : json_array(),
                  "truncated", w->truncated);
    sl__admin_send(w->r, 200, j);
}


/* GET /admin/tail?after=SEQ&limit=N: requests recorded since SEQ (metadata only). */
void
sl__admin_tail(sl_http_req_t *r)
{
    static const char *const names[] = { "after", "limit" };
    const char *values[] = { "0", "100" };
    unsigned long long after, limit;
    uint64_t last;
    json_t *data;

    if (!sl__admin_auth(r)) {
        return;
    }
    if (sl__admin_query(r, names, values, 2) < 0) {
        return;
    }
    if (sl_str_to_u64((sl_str_t){ values[0], strlen(values[0]) }, &after) != 0) {
        sl__admin_bad(r, "after",
                      "after wants the seq of the last entry seen (0: from the start).");
        return;
    }
    if (sl_str_to_u64((sl_str_t){ values[1], strlen(values[1]) }, &limit) != 0 || limit == 0
        || limit > SL_TAIL_SIZE) {
        sl__admin_bad(r, "limit", "limit is 1 to %d.", SL_TAIL_SIZE);
        return;
    }
    data = sl_tail_json(after, limit, &last);
    if (data == NULL) {
        sl__admin_send(r, 500, NULL);
        return;
    }
    sl__admin_send(r, 200,
                   json_pack("{s:s, s:I, s:b, s:o}", "object", "list", "seq", (json_int_t) last,
                             "text", r->conf->dashboard.tail_text, "data", data));
}


/* GET /admin/alerts: the newest alerts and their delivery. */
void
sl__admin_alerts(sl_http_req_t *r)
{
    json_t *data;

    if (!sl__admin_auth(r)) {
        return;
    }
    if (sl__admin_query(r, NULL, NULL, 0) < 0) {
        return;
    }
    data = sl_alerts_json(SL_ALERTS_RING);
    if (data == NULL) {
        sl__admin_send(r, 500, NULL);
        return;
    }
    sl__admin_send(r, 200,
                   json_pack("{s:s, s:b, s:o}", "object", "list", "webhook",
                             r->conf->alerts.webhook.value != NULL, "data", data));
}
