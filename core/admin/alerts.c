/*
 * Alerts: episodes and windows in the shared segment, the ring the
 * dashboard reads, and each worker's delivery queue (core/admin/alerts.h).
 * _GNU_SOURCE: timegm(), for the end of a budget's UTC period.
 */
#define _GNU_SOURCE
#include "core/admin/alerts.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/base/shm.h"
#include "core/base/str.h"
#include "core/gateway/state.h"
#include "core/http/upstream.h"
#include "core/http/url.h"
#include "storage/spend.h"

#define ALERTS_PROBE       16 /* slots an episode or a model may land in */
#define ALERTS_WIN_BUCKETS 6  /* an error window in 6 slices */
#define ALERTS_POLL_MS     1000
#define ALERTS_BACKOFF_MAX (3600ULL * 1000)
#define ALERTS_TEXT_MAX    400
#define ALERTS_DETAIL_MAX  480

typedef enum alerts_delivery {
    ALERTS_NONE = 0, /* no webhook: shown only */
    ALERTS_PENDING,
    ALERTS_RETRYING,
    ALERTS_SENT,
    ALERTS_FAILED,
    ALERTS_DROPPED,
} alerts_delivery_e;

static const char *const alerts_delivery_names[] = { "none", "pending", "retrying",
                                                     "sent", "failed",  "dropped" };

typedef struct alerts_episode {
    _Atomic uint64_t hash; /* 0: free */
    _Atomic uint32_t active;
    _Atomic int64_t expires; /* unix ms; 0: never */
} alerts_episode_t;

typedef struct alerts_slice {
    _Atomic int64_t epoch; /* time / slice length */
    _Atomic uint64_t requests;
    _Atomic uint64_t errors;
} alerts_slice_t;

typedef struct alerts_window {
    _Atomic uint64_t hash; /* 0: free */
    alerts_slice_t s[ALERTS_WIN_BUCKETS];
} alerts_window_t;

typedef struct alerts_entry {
    _Atomic uint64_t seq; /* 0 while being written */
    int64_t time_ms;
    char kind[16];
    char severity[12];
    char subject[160];
    char text[ALERTS_TEXT_MAX];
    char detail[ALERTS_DETAIL_MAX]; /* compact JSON object */
    _Atomic uint32_t delivery;      /* alerts_delivery_e */
    _Atomic uint32_t tries;
} alerts_entry_t;

typedef struct alerts_shm {
    alerts_episode_t ep[SL_ALERTS_EPISODES];
    alerts_window_t win[SL_ALERTS_MODELS];
    _Atomic uint64_t next;
    alerts_entry_t ring[SL_ALERTS_RING];
    _Atomic uint32_t full_logged;
} alerts_shm_t;

/* One alert waiting for delivery in this worker. */
typedef struct alerts_job {
    struct alerts_job *next;
    uint64_t seq; /* its ring entry */
    char *body;
    size_t len;
    unsigned tries;
} alerts_job_t;

struct sl_alerts {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    sl_db_t *db;
    uv_timer_t poll;  /* the breaker watch */
    uv_timer_t retry; /* the wait before the next delivery */
    bool waiting;     /* retry is armed */
    bool stopped;

    /* delivery: a client of its own with the webhook as its one "provider" */
    sl_pool_t *pool;
    sl_url_t url;
    sl_conf_t up_conf;
    sl_provider_conf_t up_provider;
    sl_upstream_t *up;
    sl_upstream_call_t *uc;
    int status; /* of the post in flight */
    alerts_job_t *head;
    alerts_job_t *tail;
    size_t njobs;
    char host[128];
};

static alerts_shm_t *alerts_shm;
static sl_alerts_t *alerts_current;

static int64_t alerts_now(void);
static alerts_window_t *alerts_window(uint64_t h);
static void alerts_raise(const char *kind, const char *severity, const char *subject,
                         json_t *detail, int64_t now, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void alerts_copy(char *dst, size_t size, const char *src);
static void alerts_budget(const sl_ledger_row_t *row, const sl_budget_ref_t *refs, size_t n,
                          int64_t now);
static void alerts_budget_one(const sl_ledger_row_t *row, const sl_budget_ref_t *ref,
                              const sl_spend_t *sp, int64_t now);
static void alerts_period(sl_budget_period_e p, int64_t now, char *bucket, size_t size,
                          int64_t *end);
static void alerts_error_rate(const sl_ledger_row_t *row, int64_t now);
static bool alerts_episode_begin_h(uint64_t h, int64_t expires, int64_t now);
static void alerts_episode_end_h(uint64_t h);
static void alerts_on_poll(uv_timer_t *t);
static int alerts_breaker_cb(void *arg, const sl_state_target_info_t *t);
static int alerts_webhook_setup(sl_alerts_t *a);
static void alerts_enqueue(sl_alerts_t *a, uint64_t seq, json_t *payload);
static void alerts_kick(sl_alerts_t *a);
static void alerts_on_retry(uv_timer_t *t);
static void alerts_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                              size_t nheaders, void *data);
static void alerts_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
static void alerts_on_done(sl_upstream_call_t *uc, int rc, void *data);
static void alerts_pop(sl_alerts_t *a, alerts_delivery_e how);
static void alerts_set_delivery(uint64_t seq, alerts_delivery_e d, unsigned tries);

static const sl_upstream_cbs_t alerts_cbs = { alerts_on_headers, alerts_on_body, alerts_on_done,
                                              NULL };


size_t
sl_alerts_shm_size(void)
{
    return sizeof(alerts_shm_t) + 64;
}


int
sl_alerts_init(void)
{
    alerts_shm = sl_shm_region("alerts", sizeof(alerts_shm_t));
    if (alerts_shm == NULL) {
        sl_log(NULL, SL_LOG_EMERG, ENOMEM, "no room for the alerts in the shared segment");
        return -ENOMEM;
    }
    return 0;
}


static int64_t
alerts_now(void)
{
    return (int64_t) sl_state_now();
}


bool
sl_alerts_episode_begin(const char *key, int64_t expires, int64_t now)
{
    return alerts_episode_begin_h(sl_str_hash(key), expires, now);
}


static bool
alerts_episode_begin_h(uint64_t h, int64_t expires, int64_t now)
{
    uint64_t seen;
    alerts_episode_t *e;
    uint32_t idle = 0;
    int64_t exp;

    if (alerts_shm == NULL) {
        return false;
    }
    for (int round = 0; round < 2; round++) {
        /* the episode's own slot, wherever it landed (see alerts_episode_end_h) */
        for (size_t i = 0; i < ALERTS_PROBE; i++) {
            e = &alerts_shm->ep[(h + i) % SL_ALERTS_EPISODES];
            seen = atomic_load(&e->hash);
            if (seen == 0) {
                break;
            }
            if (seen != h) {
                continue;
            }
            exp = atomic_load(&e->expires);
            if (atomic_load(&e->active) && exp != 0 && exp <= now) {
                /* the last one ran out by itself: this is a new episode */
                atomic_store(&e->active, 0);
            }
            idle = 0;
            if (!atomic_compare_exchange_strong(&e->active, &idle, 1)) {
                return false;
            }
            atomic_store(&e->expires, expires);
            return true;
        }
        /* a new slot: the first free (or run out) one; a racing claim is seen next round */
        for (size_t i = 0; i < ALERTS_PROBE; i++) {
            e = &alerts_shm->ep[(h + i) % SL_ALERTS_EPISODES];
            seen = atomic_load(&e->hash);
            exp = atomic_load(&e->expires);
            if (seen != 0 && !(exp != 0 && exp <= now && seen != h)) {
                continue;
            }
            if (atomic_compare_exchange_strong(&e->hash, &seen, h)) {
                atomic_store(&e->expires, expires);
                atomic_store(&e->active, 1);
                return true;
            }
            break;
        }
    }
    if (atomic_exchange(&alerts_shm->full_logged, 1) == 0) {
        sl_log(NULL, SL_LOG_WARN, 0, "the alert table is full: some alerts are not raised");
    }
    return false;
}


void
sl_alerts_episode_end(const char *key)
{
    alerts_episode_end_h(sl_str_hash(key));
}


static void
alerts_episode_end_h(uint64_t h)
{
    if (alerts_shm == NULL) {
        return;
    }
    /*
     * A slot, once claimed, never frees again (a run-out one is taken over),
     * and an episode takes the first free slot of its probe sequence: a free
     * slot ends the search. Every request that succeeds ends two episodes
     * that mostly never began, so this is one probe, not ALERTS_PROBE.
     */
    for (size_t i = 0; i < ALERTS_PROBE; i++) {
        alerts_episode_t *e = &alerts_shm->ep[(h + i) % SL_ALERTS_EPISODES];
        uint64_t seen = atomic_load(&e->hash);

        if (seen == 0) {
            return;
        }
        if (seen == h) {
            atomic_store(&e->active, 0);
            return;
        }
    }
}


static void
alerts_copy(char *dst, size_t size, const char *src)
{
    sl_ledger_utf8_clean(src != NULL ? src : "", true, dst, size);
}


json_t *
sl_alerts_payload(const char *kind, const char *severity, const char *subject, const char *text,
                  int64_t time_ms, const json_t *detail)
{
    char when[32], host[128];
    json_t *alert, *j;

    sl_ledger_format_time(time_ms / 1000, when, sizeof(when));
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "sluice");
    }
    host[sizeof(host) - 1] = '\0';
    alert = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", kind, "severity", severity, "subject",
                      subject, "time", when, "gateway", host);
    if (alert != NULL && detail != NULL) {
        json_object_update(alert, (json_t *) detail);
    }
    j = json_pack("{s:s, s:o}", "text", text, "alert", alert);
    return j;
}


/*
 * Writes a new alert into the ring and, with a webhook, queues its
 * delivery in this worker. Steals detail.
 */
static void
alerts_raise(const char *kind, const char *severity, const char *subject, json_t *detail,
             int64_t now, const char *fmt, ...)
{
    sl_alerts_t *a = alerts_current;
    char text[ALERTS_TEXT_MAX];
    char *dtext;
    alerts_entry_t *e;
    json_t *payload;
    uint64_t seq;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    sl_log(NULL, SL_LOG_WARN, 0, "alert: %s", text);
    if (alerts_shm == NULL) {
        json_decref(detail);
        return;
    }
    seq = atomic_fetch_add(&alerts_shm->next, 1) + 1;
    e = &alerts_shm->ring[seq % SL_ALERTS_RING];
    atomic_store(&e->seq, 0);
    e->time_ms = now;
    alerts_copy(e->kind, sizeof(e->kind), kind);
    alerts_copy(e->severity, sizeof(e->severity), severity);
    alerts_copy(e->subject, sizeof(e->subject), subject);
    alerts_copy(e->text, sizeof(e->text), text);
    dtext = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    snprintf(e->detail, sizeof(e->detail), "%s",
             dtext != NULL && strlen(dtext) < sizeof(e->detail) ? dtext : "{}");
    free(dtext);
    atomic_store(&e->tries, 0);
    atomic_store(&e->delivery, a != NULL && a->up != NULL ? ALERTS_PENDING : ALERTS_NONE);
    atomic_store(&e->seq, seq);
    if (a != NULL && a->up != NULL && !a->stopped) {
        payload = sl_alerts_payload(kind, severity, subject, text, now, detail);
        alerts_enqueue(a, seq, payload);
    }
    json_decref(detail);
}


/* The UTC bucket a budget period is in at now ("20261121", "202611", "all") and its end. */
static void
alerts_period(sl_budget_period_e p, int64_t now, char *bucket, size_t size, int64_t *end)
{
    time_t t = (time_t) (now / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    if (p == SL_BUDGET_DAY) {
        strftime(bucket, size, "%Y%m%d", &tm);
        tm.tm_mday++;
    } else if (p == SL_BUDGET_MONTH) {
        strftime(bucket, size, "%Y%m", &tm);
        tm.tm_mday = 1;
        tm.tm_mon++;
    } else {
        snprintf(bucket, size, "all");
        *end = 0;
        return;
    }
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    *end = (int64_t) timegm(&tm) * 1000;
}


static void
alerts_budget_one(const sl_ledger_row_t *row, const sl_budget_ref_t *ref, const sl_spend_t *sp,
                  int64_t now)
{
    const sl_alerts_conf_t *ac = &alerts_current->conf->alerts;
    char bucket[16], key[256], subject[160], spent[32], budget[32], share[16], pct[32];
    double used =
        ref->budget_nusd > 0 ? (double) sp->spent * 1000.0 / (double) ref->budget_nusd : 1000.0;
    const char *who = ref->kind == SL_BUDGET_KEY ? "key" : "team";
    const char *name = ref->kind == SL_BUDGET_KEY ? row->key_name : ref->id;
    const char *period = sl_budget_period_name(ref->period);
    int64_t end;
    size_t top = SIZE_MAX;

    for (size_t i = 0; i < ac->nbudget; i++) {
        if (used >= (double) ac->budget[i]) {
            top = i;
        }
    }
    if (top == SIZE_MAX) {
        return;
    }
    alerts_period(ref->period, now, bucket, sizeof(bucket), &end);
    /* every share reached counts as alerted; only the highest one new speaks */
    for (size_t i = 0; i <= top; i++) {
        bool first;

        snprintf(key, sizeof(key), "budget|%s|%s|%s|%u", who, ref->id, bucket, ac->budget[i]);
        first = sl_alerts_episode_begin(key, end, now);
        if (i < top || !first) {
            continue;
        }
        snprintf(subject, sizeof(subject), "%s %s", who, name);
        snprintf(share, sizeof(share), "%u.%u%%", ac->budget[i] / 10, ac->budget[i] % 10);
        if (ac->budget[i] % 10 == 0) {
            snprintf(share, sizeof(share), "%u%%", ac->budget[i] / 10);
        }
        sl_budget_format_usd(sp->spent, spent, sizeof(spent));
        sl_budget_format_usd(ref->budget_nusd, budget, sizeof(budget));
        alerts_raise("budget", ac->budget[i] >= 1000 ? "critical" : "warning", subject,
                     json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "scope", who, "name", name,
                               "period", period, "threshold", share, "spent_usd", spent,
                               "budget_usd", budget, "used_percent", (int) (used / 10.0)),
                     now, "%s budget: %s \"%s\" has spent $%s of its %s budget of $%s (%s)%s",
                     ac->budget[i] >= 1000 ? ":rotating_light:" : ":warning:", who, name, spent,
                     ref->period == SL_BUDGET_TOTAL ? "lifetime" : period, budget,
                     sl__alerts_share_text(used, pct, sizeof(pct)),
                     ac->budget[i] >= 1000 ? "; its requests are refused until the period ends."
                                           : ".");
    }
}


const char *
sl__alerts_share_text(double used, char *buf, size_t size)
{
    if (used >= 10000.0) {
        snprintf(buf, size, "over 10x the budget");
    } else {
        snprintf(buf, size, "%u%%", (unsigned) (used / 10.0));
    }
    return buf;
}


static void
alerts_budget(const sl_ledger_row_t *row, const sl_budget_ref_t *refs, size_t n, int64_t now)
{
    sl_spend_t sp[2];
    sl_txn_t *t;
    size_t i;

    if (n == 0 || alerts_current == NULL || alerts_current->db == NULL
        || alerts_current->conf->alerts.nbudget == 0) {
        return;
    }
    n = n > 2 ? 2 : n;
    if (sl_db_read(alerts_current->db, &t) < 0) {
        return;
    }
    for (i = 0; i < n; i++) {
        if (sl_spend_get(t, refs[i].kind, refs[i].id, refs[i].period, (time_t) (now / 1000), &sp[i])
            < 0) {
            break;
        }
    }
    sl_db_abort(t);
    for (size_t k = 0; k < i; k++) {
        alerts_budget_one(row, &refs[k], &sp[k], now);
    }
}


/* The error window of the model hashed h, claimed on first use; NULL when the table is full. */
static alerts_window_t *
alerts_window(uint64_t h)
{
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < ALERTS_PROBE; i++) {
            alerts_window_t *w = &alerts_shm->win[(h + i) % SL_ALERTS_MODELS];
            uint64_t seen = atomic_load(&w->hash);

            if (seen == h) {
                return w;
            }
            if (seen == 0) {
                if (atomic_compare_exchange_strong(&w->hash, &seen, h) || seen == h) {
                    return w;
                }
                break;
            }
        }
    }
    return NULL;
}


static void
alerts_error_rate(const sl_ledger_row_t *row, int64_t now)
{
    const sl_alerts_conf_t *ac = &alerts_current->conf->alerts;
    int64_t slice = (int64_t) ac->error_window / ALERTS_WIN_BUCKETS, epoch, seen;
    uint64_t requests = 0, errors = 0;
    alerts_window_t *w;
    alerts_slice_t *s;
    char subject[160], window[32];
    uint64_t h;

    if (ac->error_rate == 0 || row->model[0] == '\0' || alerts_shm == NULL) {
        return;
    }
    w = alerts_window(sl_str_hash(row->model));
    if (w == NULL) {
        return;
    }
    slice = slice > 0 ? slice : 1;
    epoch = now / slice;
    s = &w->s[epoch % ALERTS_WIN_BUCKETS];
    seen = atomic_load(&s->epoch);
    if (seen != epoch && atomic_compare_exchange_strong(&s->epoch, &seen, epoch)) {
        /* a statistic: a count racing this reset may be lost, never doubled */
        atomic_store(&s->requests, 0);
        atomic_store(&s->errors, 0);
    }
    atomic_fetch_add(&s->requests, 1);
    if (row->status >= 500) {
        atomic_fetch_add(&s->errors, 1);
    }
    for (int i = 0; i < ALERTS_WIN_BUCKETS; i++) {
        int64_t e = atomic_load(&w->s[i].epoch);

        if (e > epoch - ALERTS_WIN_BUCKETS && e <= epoch) {
            requests += atomic_load(&w->s[i].requests);
            errors += atomic_load(&w->s[i].errors);
        }
    }
    h = sl_str_hash2("error_rate|", row->model);
    if (requests < ac->error_min_requests || errors * 1000 < (uint64_t) ac->error_rate * requests) {
        if (errors * 1000 < (uint64_t) ac->error_rate * requests) {
            alerts_episode_end_h(h);
        }
        return;
    }
    if (!alerts_episode_begin_h(h, 0, now)) {
        return;
    }
    snprintf(subject, sizeof(subject), "model %s", row->model);
    snprintf(window, sizeof(window), "%llus", (unsigned long long) (ac->error_window / 1000));
    alerts_raise("error_rate", "critical", subject,
                 json_pack("{s:s, s:I, s:I, s:i, s:i, s:s}", "model", row->model, "requests",
                           (json_int_t) requests, "errors", (json_int_t) errors,
                           "error_rate_percent", (int) (errors * 100 / requests),
                           "threshold_percent", (int) (ac->error_rate / 10), "window", window),
                 now,
                 ":rotating_light: model \"%s\": %llu of %llu requests failed in the last %s "
                 "(%u%%, threshold %u%%).",
                 row->model, (unsigned long long) errors, (unsigned long long) requests, window,
                 (unsigned) (errors * 100 / requests), ac->error_rate / 10);
}


void
sl_alerts_record(const sl_ledger_row_t *row, const sl_budget_ref_t *refs, size_t n)
{
    int64_t now = alerts_now();

    if (alerts_current == NULL || alerts_current->stopped) {
        return;
    }
    if (row->status < 400 && row->model != NULL && row->model[0] != '\0') {
        alerts_episode_end_h(sl_str_hash2("model_down|", row->model));
    }
    if (row->model != NULL && !(row->flags & SL_LEDGER_GATEWAY)) {
        alerts_error_rate(row, now);
    }
    if (row->key_name != NULL) {
        alerts_budget(row, refs, n, now);
    }
}


void
sl_alerts_model_failed(const char *model, int status, unsigned attempts)
{
    int64_t now = alerts_now();
    char subject[160];

    if (alerts_current == NULL || alerts_current->stopped
        || !alerts_current->conf->alerts.model_down || model == NULL || model[0] == '\0') {
        return;
    }
    if (!alerts_episode_begin_h(sl_str_hash2("model_down|", model), 0, now)) {
        return;
    }
    snprintf(subject, sizeof(subject), "model %s", model);
    alerts_raise(
        "model_down", "critical", subject,
        json_pack("{s:s, s:i, s:i}", "model", model, "status", status, "attempts", (int) attempts),
        now,
        ":rotating_light: every target of model \"%s\" failed: a request got %d after "
        "%u attempt%s.",
        model, status, attempts, attempts == 1 ? "" : "s");
}


/* Every second: a breaker that opened raises an alert, one that closed ends its episode. */
static void
alerts_on_poll(uv_timer_t *t)
{
    sl_state_each_target(alerts_breaker_cb, t->data, sl_state_now());
}


static int
alerts_breaker_cb(void *arg, const sl_state_target_info_t *t)
{
    sl_alerts_t *a = arg;
    char key[SL_STATE_NAME_MAX + 16], subject[160], until[32];
    int64_t now = alerts_now();

    snprintf(key, sizeof(key), "breaker|%s", t->name);
    if (t->breaker == SL_BREAKER_CLOSED) {
        sl_alerts_episode_end(key);
        return 0;
    }
    if (!a->conf->alerts.breaker || !sl_alerts_episode_begin(key, 0, now)) {
        return 0;
    }
    snprintf(subject, sizeof(subject), "target %s", t->name);
    sl_ledger_format_time((int64_t) (t->open_until / 1000), until, sizeof(until));
    alerts_raise("breaker", "critical", subject,
                 json_pack("{s:s, s:s%, s:i, s:s}", "target", t->name, "provider", t->name,
                           t->provider_len, "failures", (int) t->failures, "probe_at", until),
                 now,
                 ":rotating_light: circuit breaker opened for target %s after %u consecutive "
                 "failures: it is skipped until a probe succeeds (next probe %s).",
                 t->name, t->failures, until);
    return 0;
}


sl_alerts_t *
sl_alerts_create(uv_loop_t *loop, const sl_conf_t *conf, sl_db_t *db)
{
    sl_alerts_t *a = sl_xcalloc(1, sizeof(*a));

    a->loop = loop;
    a->conf = conf;
    a->db = db;
    a->pool = sl_pool_create(0);
    uv_timer_init(loop, &a->poll);
    uv_timer_init(loop, &a->retry);
    a->poll.data = a->retry.data = a;
    uv_timer_start(&a->poll, alerts_on_poll, ALERTS_POLL_MS, ALERTS_POLL_MS);
    if (conf->alerts.webhook.value != NULL && alerts_webhook_setup(a) < 0) {
        a->up = NULL;
    }
    alerts_current = a;
    return a;
}


/* The webhook as the one provider of a client of our own. */
static int
alerts_webhook_setup(sl_alerts_t *a)
{
    const sl_alerts_conf_t *ac = &a->conf->alerts;
    sl_provider_conf_t *p = &a->up_provider;
    const char *why;

    if (sl_url_parse(a->pool, ac->webhook.value, &a->url, &why) != 0) {
        sl_log(NULL, SL_LOG_ERR, 0, "alerts.webhook (%s): %s; alerts are not posted",
               ac->webhook.ref, why);
        return -EINVAL;
    }
    p->name = "alerts.webhook";
    p->kind = "webhook";
    p->base_url = "";
    p->tls = a->url.tls;
    p->host = a->url.host;
    p->port = a->url.port;
    p->host_header = a->url.host_header;
    p->base_path = "";
    p->tls_verify = true;
    p->connect_timeout = ac->timeout;
    p->first_byte_timeout = ac->timeout;
    p->idle_timeout = ac->timeout;
    p->total_timeout = ac->timeout;
    p->keepalive_timeout = 30 * 1000;
    p->max_connections = 1;
    p->max_idle = 1;
    a->up_conf.pool = a->pool;
    a->up_conf.providers = p;
    a->up_conf.nproviders = 1;
    a->up = sl_upstream_create(a->loop, &a->up_conf);
    return a->up != NULL ? 0 : -ENOMEM;
}


/* Takes payload. */
static void
alerts_enqueue(sl_alerts_t *a, uint64_t seq, json_t *payload)
{
    alerts_job_t *j;
    char *body = payload != NULL ? json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(payload);
    if (body == NULL) {
        alerts_set_delivery(seq, ALERTS_FAILED, 0);
        return;
    }
    if (a->njobs >= SL_ALERTS_QUEUE) {
        /* the oldest one waiting (not the one in flight) makes room */
        alerts_job_t *old = a->head->next;

        if (old != NULL) {
            a->head->next = old->next;
            if (a->tail == old) {
                a->tail = a->head;
            }
            a->njobs--;
            alerts_set_delivery(old->seq, ALERTS_DROPPED, old->tries);
            free(old->body);
            free(old);
        }
    }
    j = sl_xcalloc(1, sizeof(*j));
    j->seq = seq;
    j->body = body;
    j->len = strlen(body);
    if (a->tail != NULL) {
        a->tail->next = j;
    } else {
        a->head = j;
    }
    a->tail = j;
    a->njobs++;
    alerts_kick(a);
}


/* Posts the head of the queue unless a post is in flight or a retry waits. */
static void
alerts_kick(sl_alerts_t *a)
{
    static sl_http_header_t h[] = {
        { { "Content-Type", 12 }, { "application/json", 16 } },
        { { "User-Agent", 10 }, { "sluice-alerts", 13 } },
    };
    sl_upstream_req_t req;
    int rc;

    if (a->stopped || a->uc != NULL || a->waiting || a->head == NULL) {
        return;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.path = a->url.target;
    req.headers = h;
    req.nheaders = 2;
    req.body = a->head->body;
    req.body_len = a->head->len;
    a->status = 0;
    rc = sl_upstream_send(a->up, &a->up_provider, &req, &alerts_cbs, a, NULL, &a->uc);
    if (rc < 0) {
        a->uc = NULL;
        alerts_on_done(NULL, rc, a);
    }
}


static void
alerts_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                  size_t nheaders, void *data)
{
    sl_alerts_t *a = data;

    (void) uc;
    (void) headers;
    (void) nheaders;
    a->status = status;
}


static void
alerts_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data)
{
    (void) uc;
    (void) p;
    (void) len;
    (void) data;
}


static void
alerts_on_done(sl_upstream_call_t *uc, int rc, void *data)
{
    sl_alerts_t *a = data;
    alerts_job_t *j = a->head;
    uint64_t wait;

    (void) uc;
    a->uc = NULL;
    if (j == NULL) {
        return;
    }
    if (rc == 0 && a->status >= 200 && a->status < 300) {
        alerts_pop(a, ALERTS_SENT);
        alerts_kick(a);
        return;
    }
    j->tries++;
    if (rc < 0) {
        sl_log(NULL, SL_LOG_WARN, rc, "alerts.webhook (%s): delivery %u failed",
               a->conf->alerts.webhook.ref, j->tries);
    } else {
        sl_log(NULL, SL_LOG_WARN, 0, "alerts.webhook (%s): delivery %u answered %d",
               a->conf->alerts.webhook.ref, j->tries, a->status);
    }
    if (j->tries > a->conf->alerts.retries) {
        alerts_pop(a, ALERTS_FAILED);
        alerts_kick(a);
        return;
    }
    alerts_set_delivery(j->seq, ALERTS_RETRYING, j->tries);
    wait = a->conf->alerts.backoff << (j->tries - 1 < 20 ? j->tries - 1 : 20);
    a->waiting = true;
    uv_timer_start(&a->retry, alerts_on_retry,
                   wait < ALERTS_BACKOFF_MAX ? wait : ALERTS_BACKOFF_MAX, 0);
}


static void
alerts_on_retry(uv_timer_t *t)
{
    sl_alerts_t *a = t->data;

    a->waiting = false;
    alerts_kick(a);
}


static void
alerts_pop(sl_alerts_t *a, alerts_delivery_e how)
{
    alerts_job_t *j = a->head;

    alerts_set_delivery(j->seq, how, j->tries + (how == ALERTS_SENT));
    a->head = j->next;
    if (a->head == NULL) {
        a->tail = NULL;
    }
    a->njobs--;
    free(j->body);
    free(j);
}


static void
alerts_set_delivery(uint64_t seq, alerts_delivery_e d, unsigned tries)
{
    alerts_entry_t *e = &alerts_shm->ring[seq % SL_ALERTS_RING];

    if (atomic_load(&e->seq) == seq) {
        atomic_store(&e->tries, tries);
        atomic_store(&e->delivery, d);
    }
}


void
sl_alerts_stop(sl_alerts_t *a)
{
    if (a == NULL || a->stopped) {
        return;
    }
    a->stopped = true;
    if (alerts_current == a) {
        alerts_current = NULL;
    }
    if (a->njobs > 0) {
        sl_log(NULL, SL_LOG_NOTICE, 0, "%zu alert(s) not delivered: the worker exits", a->njobs);
    }
    while (a->head != NULL) {
        alerts_pop(a, ALERTS_DROPPED);
    }
    uv_close((uv_handle_t *) &a->poll, NULL);
    uv_close((uv_handle_t *) &a->retry, NULL);
    /* cancels the post in flight (no callback follows) and closes the idle connection */
    sl_upstream_destroy(a->up);
    a->uc = NULL;
}


void
sl_alerts_destroy(sl_alerts_t *a)
{
    if (a == NULL) {
        return;
    }
    if (alerts_current == a) {
        alerts_current = NULL;
    }
    sl_pool_destroy(a->pool);
    free(a);
}


json_t *
sl_alerts_json(size_t limit)
{
    json_t *data = json_array(), *o, *detail;
    alerts_entry_t copy;
    uint64_t next, s2;
    char when[32];

    if (data == NULL || alerts_shm == NULL) {
        return data;
    }
    next = atomic_load(&alerts_shm->next);
    for (uint64_t seq = next;
         seq >= 1 && seq + SL_ALERTS_RING > next && json_array_size(data) < limit; seq--) {
        alerts_entry_t *e = &alerts_shm->ring[seq % SL_ALERTS_RING];

        if (atomic_load(&e->seq) != seq) {
            continue;
        }
        copy.time_ms = e->time_ms;
        memcpy(copy.kind, e->kind, sizeof(copy.kind));
        memcpy(copy.severity, e->severity, sizeof(copy.severity));
        memcpy(copy.subject, e->subject, sizeof(copy.subject));
        memcpy(copy.text, e->text, sizeof(copy.text));
        memcpy(copy.detail, e->detail, sizeof(copy.detail));
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load(&e->seq);
        if (s2 != seq) {
            continue;
        }
        copy.kind[sizeof(copy.kind) - 1] = copy.severity[sizeof(copy.severity) - 1] = '\0';
        copy.subject[sizeof(copy.subject) - 1] = copy.text[sizeof(copy.text) - 1] = '\0';
        copy.detail[sizeof(copy.detail) - 1] = '\0';
        detail = json_loads(copy.detail, 0, NULL);
        sl_ledger_format_time(copy.time_ms / 1000, when, sizeof(when));
        o = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:i}", "id", (json_int_t) seq,
                      "time", when, "time_ms", (json_int_t) copy.time_ms, "kind", copy.kind,
                      "severity", copy.severity, "subject", copy.subject, "text", copy.text,
                      "detail", detail != NULL ? detail : json_object(), "delivery",
                      alerts_delivery_names[atomic_load(&e->delivery) % 6], "tries",
                      (int) atomic_load(&e->tries));
        if (o == NULL || json_array_append_new(data, o) != 0) {
            json_decref(data);
            return NULL;
        }
    }
    return data;
}
