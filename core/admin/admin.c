/*
 * The admin API handlers (core/admin/admin.h has the routes and the rules of the
 * request bodies). They validate what the CLI validates, through the same
 * store functions and JSON builders (storage/keys.h, teams.h, vault.h,
 * ledger.h), so `sluice keys --json` and GET /admin/keys agree. Each
 * handler authenticates first, then answers in one go: every LMDB
 * transaction opens and ends inside it, except the usage report, whose
 * aggregation runs in the thread pool because it reads the whole window.
 * This file holds the admin state, the route table, authentication and the
 * helpers every handler answers with, and the reload; the resources have a
 * file each (see admin_internal.h).
 */
#include "core/admin/admin.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/admin/admin_internal.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/base/str.h"
#include "core/gateway/pricing.h"
#include "storage/spend.h"
#include "storage/vault.h"

#define ADMIN_NAME_MAX   128 /* longest {name} in a path: a vault name */
#define ADMIN_USD_DIGITS 15  /* significant digits a double keeps exactly (DBL_DIG) */

struct sl_admin {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    sl_db_t *db;       /* borrowed; NULL: no storage */
    sl_vault_t *vault; /* NULL when the master key given could not be used */
    bool has_master;   /* false in --single mode */
};

static sl_admin_t *admin_current;

static const sl_http_header_t admin_json_header[] = {
    { { "Content-Type", 12 }, { "application/json", 16 } },
};

static void admin_reload(sl_http_req_t *r);

static const sl_http_route_t admin_routes[] = {
    { "GET", "/admin/keys", sl__admin_keys_list, NULL },
    { "POST", "/admin/keys", sl__admin_keys_create, NULL },
    { "GET", ADMIN_KEYS_PREFIX "*", sl__admin_key_get, NULL },
    { "PATCH", ADMIN_KEYS_PREFIX "*", sl__admin_key_patch, NULL },
    { "DELETE", ADMIN_KEYS_PREFIX "*", sl__admin_key_delete, NULL },
    { "POST", ADMIN_KEYS_PREFIX "*", sl__admin_key_post, NULL },
    { "GET", "/admin/usage", sl__admin_usage, NULL },
    { "GET", "/admin/teams", sl__admin_teams_list, NULL },
    { "GET", ADMIN_TEAMS_PREFIX "*", sl__admin_team_get, NULL },
    { "PUT", ADMIN_TEAMS_PREFIX "*", sl__admin_team_put, NULL },
    { "DELETE", ADMIN_TEAMS_PREFIX "*", sl__admin_team_delete, NULL },
    { "GET", "/admin/secrets", sl__admin_secrets_list, NULL },
    { "PUT", ADMIN_SECRETS_PREFIX "*", sl__admin_secret_put, NULL },
    { "DELETE", ADMIN_SECRETS_PREFIX "*", sl__admin_secret_delete, NULL },
    { "POST", "/admin/reload", admin_reload, NULL },
    { "GET", "/admin/targets", sl__admin_targets, NULL },
    { "GET", "/admin/cache", sl__admin_cache_get, NULL },
    { "DELETE", "/admin/cache", sl__admin_cache_delete, NULL },
    { "GET", "/metrics", sl__admin_metrics, NULL },
    { "GET", "/", sl__admin_dash_asset, NULL },
    { "GET", "/assets/*", sl__admin_dash_asset, NULL },
    { "GET", "/favicon.ico", sl__admin_dash_asset, NULL },
    { "GET", "/login", sl__admin_dash_login, NULL },
    { "GET", "/admin/session", sl__admin_session_get, NULL },
    { "POST", "/admin/session", sl__admin_session_post, NULL },
    { "DELETE", "/admin/session", sl__admin_session_delete, NULL },
    { "GET", "/admin/stats", sl__admin_stats, NULL },
    { "GET", "/admin/budgets", sl__admin_budgets, NULL },
    { "GET", "/admin/tail", sl__admin_tail, NULL },
    { "GET", "/admin/alerts", sl__admin_alerts, NULL },
};


sl_admin_t *
sl_admin_create(uv_loop_t *loop, const sl_conf_t *conf, sl_db_t *db, bool has_master)
{
    sl_admin_t *a = sl_xcalloc(1, sizeof(*a));
    int rc;

    a->loop = loop;
    a->conf = conf;
    a->db = db;
    a->has_master = has_master;
    if (db != NULL) {
        /* a key that is given but unusable was logged by the vault; only secrets suffer */
        rc = sl_vault_open(db, conf->storage_master_key_file, &a->vault);
        if (rc < 0) {
            a->vault = NULL;
        }
    }
    admin_current = a;
    return a;
}


void
sl_admin_destroy(sl_admin_t *a)
{
    if (a == NULL) {
        return;
    }
    if (admin_current == a) {
        admin_current = NULL;
    }
    sl_vault_close(a->vault);
    free(a);
}


const sl_http_route_t *
sl_admin_routes(size_t *n)
{
    *n = sizeof(admin_routes) / sizeof(admin_routes[0]);
    return admin_routes;
}


/*
 * Checks the admin key, or without one a dashboard session (admin_dash.c);
 * answers 401 (403 for a session's request that fails the CSRF checks)
 * itself. The key given is never echoed or logged.
 */
bool
sl__admin_auth(sl_http_req_t *r)
{
    const sl_secret_t *admin = &r->conf->admin_key;
    sl_str_t key = sl_http_req_credential(r);

    if (key.len == 0 && sl__admin_has_cookie(r)) {
        if (admin_current == NULL) {
            sl__admin_error(r, 503, "admin_unavailable", NULL, "The admin API is not ready.");
            return false;
        }
        return sl__admin_session_auth(r);
    }
    if (admin->value == NULL) {
        sl__admin_error(r, 401, "admin_disabled", NULL,
                        "The admin API is disabled: auth.admin_key is not configured.");
        return false;
    }
    if (key.len == 0) {
        sl__admin_error(r, 401, "invalid_api_key", NULL,
                        "You didn't provide the admin key. Provide it in an Authorization header "
                        "using Bearer auth (Authorization: Bearer ADMIN_KEY) or in an x-api-key "
                        "header.");
        return false;
    }
    if (!sl_str_ct_eq(key.p, key.len, admin->value, admin->len)) {
        sl__admin_error(r, 401, "invalid_api_key", NULL, "Incorrect admin key provided.");
        return false;
    }
    if (admin_current == NULL) {
        sl__admin_error(r, 503, "admin_unavailable", NULL, "The admin API is not ready.");
        return false;
    }
    return true;
}


bool
sl__admin_has_db(sl_http_req_t *r)
{
    if (admin_current->db == NULL) {
        sl__admin_error(r, 503, "storage_unavailable", NULL, "This worker has no storage open.");
        return false;
    }
    return true;
}


sl_db_t *
sl__admin_db(void)
{
    return admin_current->db;
}


sl_vault_t *
sl__admin_vault(void)
{
    return admin_current->vault;
}


/* An error in OpenAI's shape; the type follows from the status. Finishes r. */
void
sl__admin_error(sl_http_req_t *r, int status, const char *code, const char *param, const char *fmt,
                ...)
{
    char msg[ADMIN_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl_http_respond_error(r, status, status >= 500 ? "api_error" : "invalid_request_error", code,
                          param, msg);
}


/* 400 for a bad field (param) or body (param NULL). */
void
sl__admin_bad(sl_http_req_t *r, const char *param, const char *fmt, ...)
{
    char msg[ADMIN_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl_http_respond_error(r, 400, "invalid_request_error", "invalid_value", param, msg);
}


/* The store said SL_ESTORE (or worse) and logged why. */
void
sl__admin_store_error(sl_http_req_t *r)
{
    sl__admin_error(r, 500, "storage_error", NULL,
                    "The gateway cannot read or write its store right now; see its error log.");
}


/* Sends j (a reference this call steals) as the JSON body. */
void
sl__admin_send(sl_http_req_t *r, int status, json_t *j)
{
    char *body = j == NULL ? NULL : json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(j);
    if (body == NULL) {
        sl__admin_error(r, 500, NULL, NULL, "Out of memory.");
        return;
    }
    sl__admin_send_text(r, status, body, strlen(body));
    free(body);
}


void
sl__admin_send_text(sl_http_req_t *r, int status, const char *body, size_t len)
{
    sl_http_respond(r, status, admin_json_header, 1, body, len);
}


/* {"object":"list","data":data}, 200. Steals data. */
void
sl__admin_send_list(sl_http_req_t *r, json_t *data)
{
    json_t *j = json_object();

    if (j == NULL || data == NULL) {
        json_decref(j);
        json_decref(data);
        sl__admin_send(r, 500, NULL);
        return;
    }
    json_object_set_new(j, "object", json_string("list"));
    json_object_set_new(j, "data", data);
    sl__admin_send(r, 200, j);
}


/*
 * The request body as a JSON object; answers 400 itself and returns NULL
 * when it is not one. jansson's message is left out on purpose: it quotes
 * the text near the error, which may be a secret's value.
 */
json_t *
sl__admin_body(sl_http_req_t *r)
{
    json_error_t err;
    json_t *j;

    if (r->body.len == 0) {
        sl__admin_bad(r, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    j = json_loadb(r->body.p, r->body.len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        sl__admin_error(r, 400, "invalid_json", NULL,
                        "The request body is not valid JSON (line %d, column %d).", err.line,
                        err.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        sl__admin_bad(r, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    return j;
}


/* 400 for a field or parameter this endpoint does not take; echoed only when it looks like a name.
 */
void
sl__admin_unknown_field(sl_http_req_t *r, const char *field, const char *what)
{
    size_t len = strlen(field);
    bool plain = len > 0 && len <= 32;

    for (size_t i = 0; i < len && plain; i++) {
        plain = (field[i] >= 'a' && field[i] <= 'z') || field[i] == '_';
    }
    if (plain) {
        sl__admin_bad(r, field, "Unknown %s \"%s\".", what, field);
    } else {
        sl__admin_bad(r, NULL, "This endpoint does not take that %s.", what);
    }
}


/*
 * The {name} path segment after the first prefix_len bytes, copied into
 * r->pool, and in *rest what follows it ("" or e.g. "/revoke"). NULL when
 * the segment is empty, too long or not made of [A-Za-z0-9._-] (names
 * never need percent-decoding).
 */
char *
sl__admin_path_name(sl_http_req_t *r, size_t prefix_len, sl_str_t *rest)
{
    const char *p = r->path.p + prefix_len, *end = r->path.p + r->path.len, *q = p;

    while (q < end && *q != '/') {
        char ch = *q;

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
              || ch == '.' || ch == '_' || ch == '-')) {
            return NULL;
        }
        q++;
    }
    if (q == p || (size_t) (q - p) > ADMIN_NAME_MAX) {
        return NULL;
    }
    *rest = (sl_str_t){ q, (size_t) (end - q) };
    return sl_pstrndup(r->pool, p, (size_t) (q - p));
}


/*
 * budget_usd as nano-USD, exactly. A string is read as decimal text. A
 * JSON integer is whole dollars. A JSON real reached us as a double: it is
 * printed with 6 decimals, and taken only when that text has at most 15
 * significant digits and reads back as the very same double; then it is
 * the decimal the client wrote (15 digits survive a trip through a double),
 * never a neighbour. Returns 0 or SL_EPARSE.
 */
int
sl__admin_json_usd(const json_t *v, uint64_t *nusd)
{
    char buf[64], *p;
    double d;
    int digits = 0, n;
    bool lead = true;

    if (json_is_string(v)) {
        return sl_budget_parse_usd(json_string_value(v), nusd);
    }
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0
            || (uint64_t) json_integer_value(v) > UINT64_MAX / SL_NUSD_PER_USD) {
            return SL_EPARSE;
        }
        *nusd = (uint64_t) json_integer_value(v) * SL_NUSD_PER_USD;
        return 0;
    }
    if (!json_is_real(v)) {
        return SL_EPARSE;
    }
    d = json_real_value(v);
    if (!isfinite(d) || d < 0) {
        return SL_EPARSE;
    }
    n = snprintf(buf, sizeof(buf), "%.6f", d);
    if (n <= 0 || (size_t) n >= sizeof(buf)) {
        return SL_EPARSE;
    }
    for (p = buf + n; p[-1] == '0'; p--) {
        p[-1] = '\0';
    }
    if (p[-1] == '.') {
        p[-1] = '\0';
    }
    for (p = buf; *p != '\0'; p++) {
        if (*p == '.' || (lead && *p == '0')) {
            continue;
        }
        lead = false;
        digits++;
    }
    if (digits > ADMIN_USD_DIGITS || strtod(buf, NULL) != d) {
        return SL_EPARSE;
    }
    return sl_budget_parse_usd(buf, nusd);
}


/*
 * POST /admin/reload: SIGHUP to the master, which rolls a new generation
 * over (this worker drains after answering). 202: the outcome is in the
 * master's log, like `sluice reload`.
 */
static void
admin_reload(sl_http_req_t *r)
{
    pid_t master;
    int err;

    if (!sl__admin_auth(r)) {
        return;
    }
    if (!admin_current->has_master) {
        sl__admin_error(r, 409, "single_mode", NULL,
                        "sluice runs with --single: there is no master process to reload; restart "
                        "it instead.");
        return;
    }
    master = getppid();
    if (master <= 1) {
        sl__admin_error(r, 409, "no_master", NULL,
                        "The master process is gone; this worker drains.");
        return;
    }
    if (kill(master, SIGHUP) != 0) {
        err = errno;
        sl_log(&r->log, SL_LOG_ERR, err, "kill(%d, SIGHUP) failed", (int) master);
        sl__admin_error(r, 500, NULL, NULL, "The reload signal could not be sent.");
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: reload requested from %s", r->client_addr);
    sl__admin_send(r, 202, json_pack("{s:s}", "status", "reloading"));
}
