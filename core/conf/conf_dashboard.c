/*
 * The dashboard: and alerts: sections (core/conf/conf.h has the fields;
 * etc/sluice.yaml documents every key). Both have defaults, so their
 * parsers run with a NULL mapping when the section is absent.
 */
#include "core/conf/conf_internal.h"

#include <stddef.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/http/url.h"

#define CONF_ALERT_RETRIES_MAX 20

static int conf_alert_budget(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_alert_error_rate(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_alert_share(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                            unsigned *permille);

static const conf_field_t conf_dashboard_fields[] = {
    { "enabled", CONF_BOOL, offsetof(sl_dashboard_conf_t, enabled), 0, 0 },
    { "session_ttl", CONF_MSEC, offsetof(sl_dashboard_conf_t, session_ttl), 60 * 1000,
      30ULL * 86400 * 1000 },
    { "link_ttl", CONF_MSEC, offsetof(sl_dashboard_conf_t, link_ttl), 10 * 1000, 86400 * 1000 },
    { "tail_text", CONF_BOOL, offsetof(sl_dashboard_conf_t, tail_text), 0, 0 },
    { NULL, CONF_BOOL, 0, 0, 0 },
};

static const conf_field_t conf_alerts_fields[] = {
    { "breaker", CONF_BOOL, offsetof(sl_alerts_conf_t, breaker), 0, 0 },
    { "model_down", CONF_BOOL, offsetof(sl_alerts_conf_t, model_down), 0, 0 },
    { "timeout", CONF_MSEC, offsetof(sl_alerts_conf_t, timeout), 100, 300 * 1000 },
    { "retries", CONF_UINT, offsetof(sl_alerts_conf_t, retries), 0, CONF_ALERT_RETRIES_MAX },
    { "backoff", CONF_MSEC, offsetof(sl_alerts_conf_t, backoff), 10, 3600 * 1000 },
    { NULL, CONF_BOOL, 0, 0, 0 },
};


int
sl__conf_parse_dashboard(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_dashboard_conf_t *d = &cx->conf->dashboard;

    d->enabled = true;
    d->session_ttl = 12ULL * 3600 * 1000;
    d->link_ttl = 10ULL * 60 * 1000;
    if (sl__conf_read_fields(cx, map, conf_dashboard_fields, d) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "dashboard");
}


int
sl__conf_parse_alerts(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_alerts_conf_t *a = &cx->conf->alerts;
    const sl_conf_node_t *n;
    const char *why;
    sl_url_t url;

    memset(a, 0, sizeof(*a));
    a->budget[0] = 800;
    a->budget[1] = 1000;
    a->nbudget = 2;
    a->breaker = true;
    a->model_down = true;
    a->error_rate = 200;
    a->error_window = 5 * 60 * 1000;
    a->error_min_requests = 20;
    a->timeout = 10 * 1000;
    a->retries = 5;
    a->backoff = 1000;
    if (sl__conf_read_fields(cx, map, conf_alerts_fields, a) != 0 || conf_alert_budget(cx, map) != 0
        || conf_alert_error_rate(cx, map) != 0) {
        return SL_ECONF;
    }
    n = map != NULL ? sl_conf_get(cx, map, "webhook") : NULL;
    if (n != NULL) {
        if (sl__conf_secret(cx, n, "alerts.webhook", &a->webhook) != 0) {
            return SL_ECONF;
        }
        /* a vault: URL is known in the workers only, which check it the same way */
        if (a->webhook.value != NULL && sl_url_parse(cx->pool, a->webhook.value, &url, &why) != 0) {
            return sl_conf_errorf(cx, n, "alerts.webhook (%s): %s", a->webhook.ref, why);
        }
    }
    return sl_conf_check_unknown(cx, map, "alerts");
}


/* budget: a list of shares ("80%", "100%"), or false for no budget alerts. */
static int
conf_alert_budget(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_alerts_conf_t *a = &cx->conf->alerts;
    const sl_conf_node_t *n = map != NULL ? sl_conf_get(cx, map, "budget") : NULL;
    bool on;
    size_t count;

    if (n == NULL) {
        return 0;
    }
    if (sl__conf_is_scalar(n) && sl__conf_parse_bool(sl__conf_text(n), &on) == 0 && !on) {
        a->nbudget = 0;
        return 0;
    }
    if (!sl__conf_is_seq(n)) {
        return sl_conf_errorf(cx, n, "alerts.budget must be a list of shares (80%%) or false");
    }
    count = sl__conf_seq_len(n);
    if (count == 0 || count > SL_ALERTS_BUDGET_MAX) {
        return sl_conf_errorf(cx, n, "alerts.budget takes 1 to %d shares", SL_ALERTS_BUDGET_MAX);
    }
    for (size_t i = 0; i < count; i++) {
        const sl_conf_node_t *item = sl__conf_seq_item(cx, n, i);

        if (conf_alert_share(cx, item, "alerts.budget entry", &a->budget[i]) != 0) {
            return SL_ECONF;
        }
        if (a->budget[i] == 0 || (i > 0 && a->budget[i] <= a->budget[i - 1])) {
            return sl_conf_errorf(cx, item, "alerts.budget shares must be above 0%% and ascending");
        }
    }
    a->nbudget = count;
    return 0;
}


/* error_rate: {threshold: 20%, window: 5m, min_requests: 20}, or false. */
static int
conf_alert_error_rate(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_alerts_conf_t *a = &cx->conf->alerts;
    const sl_conf_node_t *n = map != NULL ? sl_conf_get(cx, map, "error_rate") : NULL;
    const sl_conf_node_t *t;
    bool on;

    if (n == NULL) {
        return 0;
    }
    if (sl__conf_is_scalar(n) && sl__conf_parse_bool(sl__conf_text(n), &on) == 0 && !on) {
        a->error_rate = 0;
        return 0;
    }
    if (!sl__conf_is_map(n)) {
        return sl_conf_errorf(cx, n,
                              "alerts.error_rate must be a mapping {threshold, window, "
                              "min_requests} or false");
    }
    t = sl_conf_get(cx, n, "threshold");
    if (t != NULL) {
        if (conf_alert_share(cx, t, "alerts.error_rate.threshold", &a->error_rate) != 0) {
            return SL_ECONF;
        }
        if (a->error_rate == 0) {
            return sl_conf_errorf(cx, t, "alerts.error_rate.threshold must be above 0%%");
        }
    }
    if (sl_conf_get_duration(cx, n, "window", 10 * 1000, 24ULL * 3600 * 1000, &a->error_window) != 0
        || sl_conf_get_uint(cx, n, "min_requests", 1, 1000000, &a->error_min_requests) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, n, "alerts.error_rate");
}


static int
conf_alert_share(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, unsigned *permille)
{
    if (!sl__conf_is_scalar(n) || sl_conf_parse_share(sl__conf_text(n), permille) != 0) {
        return sl_conf_errorf(cx, n, "%s must be a share such as 80%% (0..100%%)", what);
    }
    return 0;
}
