/*
 * The admin API handlers (core/admin/admin.h has the routes and the rules of the
 * request bodies). They validate what the CLI validates, through the same
 * store functions and JSON builders (storage/keys.h, teams.h, vault.h,
 * ledger.h), so `sluice keys --json` and GET /admin/keys agree. Each
 * handler authenticates first, then answers in one go: every LMDB
 * transaction opens and ends inside it, except the usage report, whose
 * aggregation runs in the thread pool because it reads the whole window.
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
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/admin/metrics.h"
#include "core/gateway/state.h"
#include "core/base/pool.h"
#include "core/gateway/pricing.h"
#include "core/base/str.h"
#include "storage/keys.h"
#include "storage/ledger.h"
#include "storage/teams.h"
#include "storage/vault.h"

#define ADMIN_KEYS_PREFIX    "/admin/keys/"
#define ADMIN_TEAMS_PREFIX   "/admin/teams/"
#define ADMIN_SECRETS_PREFIX "/admin/secrets/"
#define ADMIN_REVOKE         "/revoke"
#define ADMIN_NAME_MAX       128 /* longest {name} in a path: a vault name */
#define ADMIN_MSG_MAX        512
#define ADMIN_USD_DIGITS     15 /* significant digits a double keeps exactly (DBL_DIG) */
#define ADMIN_DEFAULT_SINCE  "7d"

struct sl_admin {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    sl_db_t *db;       /* borrowed; NULL: no storage */
    sl_vault_t *vault; /* NULL when the master key given could not be used */
    bool has_master;   /* false in --single mode */
};

/* A key's fields as a request body gives them. */
typedef struct admin_spec {
    sl_key_spec_t spec;
    unsigned fields; /* sl_key_field_e */
    bool period_given;
    bool budget_given;
    const char *models[SL_KEY_MODELS_MAX];
} admin_spec_t;

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

static sl_admin_t *admin_current;

static const sl_http_header_t admin_json_header[] = {
    { { "Content-Type", 12 }, { "application/json", 16 } },
};

static bool admin_auth(sl_http_req_t *r);
static bool admin_has_db(sl_http_req_t *r);
static void admin_error(sl_http_req_t *r, int status, const char *code, const char *param,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void admin_bad(sl_http_req_t *r, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void admin_store_error(sl_http_req_t *r);
static void admin_not_allowed(sl_http_req_t *r, const char *allow);
static void admin_send(sl_http_req_t *r, int status, json_t *j);
static void admin_send_list(sl_http_req_t *r, json_t *data);
static json_t *admin_body(sl_http_req_t *r);
static void admin_unknown_field(sl_http_req_t *r, const char *field, const char *what);
static char *admin_path_name(sl_http_req_t *r, size_t prefix_len, sl_str_t *rest);
static int admin_query(sl_http_req_t *r, const char *const *names, const char **values, size_t n);
static int admin_json_usd(const json_t *v, uint64_t *nusd);
static int admin_key_fields(sl_http_req_t *r, json_t *body, admin_spec_t *as, bool create);
static int admin_key_field(sl_http_req_t *r, const char *field, json_t *v, admin_spec_t *as);
static int admin_key_check(sl_http_req_t *r, admin_spec_t *as, int64_t now);
static int admin_key_find(sl_http_req_t *r, const char *id_or_name, sl_key_t **k);
static void admin_key_not_found(sl_http_req_t *r, const char *id_or_name);
static void admin_keys_list(sl_http_req_t *r);
static int admin_keys_list_cb(void *arg, const sl_key_t *k);
static void admin_keys_create(sl_http_req_t *r);
static void admin_key_get(sl_http_req_t *r);
static void admin_key_patch(sl_http_req_t *r);
static void admin_key_delete(sl_http_req_t *r);
static void admin_key_post(sl_http_req_t *r);
static void admin_key_revoke(sl_http_req_t *r, const char *id_or_name);
static void admin_usage(sl_http_req_t *r);
static void admin_usage_work(uv_work_t *req);
static void admin_usage_done(uv_work_t *req, int status);
static void admin_teams_list(sl_http_req_t *r);
static int admin_teams_list_cb(void *arg, const sl_team_t *team);
static void admin_team_get(sl_http_req_t *r);
static void admin_team_put(sl_http_req_t *r);
static void admin_team_delete(sl_http_req_t *r);
static bool admin_vault_usable(sl_http_req_t *r);
static void admin_secrets_list(sl_http_req_t *r);
static int admin_secrets_list_cb(void *arg, const sl_vault_entry_t *e);
static void admin_secret_put(sl_http_req_t *r);
static void admin_secret_delete(sl_http_req_t *r);
static void admin_reload(sl_http_req_t *r);
static void admin_metrics(sl_http_req_t *r);
static void admin_targets(sl_http_req_t *r);

static const sl_http_route_t admin_routes[] = {
    { "GET", "/admin/keys", admin_keys_list, NULL },
    { "POST", "/admin/keys", admin_keys_create, NULL },
    { "GET", ADMIN_KEYS_PREFIX "*", admin_key_get, NULL },
    { "PATCH", ADMIN_KEYS_PREFIX "*", admin_key_patch, NULL },
    { "DELETE", ADMIN_KEYS_PREFIX "*", admin_key_delete, NULL },
    { "POST", ADMIN_KEYS_PREFIX "*", admin_key_post, NULL },
    { "GET", "/admin/usage", admin_usage, NULL },
    { "GET", "/admin/teams", admin_teams_list, NULL },
    { "GET", ADMIN_TEAMS_PREFIX "*", admin_team_get, NULL },
    { "PUT", ADMIN_TEAMS_PREFIX "*", admin_team_put, NULL },
    { "DELETE", ADMIN_TEAMS_PREFIX "*", admin_team_delete, NULL },
    { "GET", "/admin/secrets", admin_secrets_list, NULL },
    { "PUT", ADMIN_SECRETS_PREFIX "*", admin_secret_put, NULL },
    { "DELETE", ADMIN_SECRETS_PREFIX "*", admin_secret_delete, NULL },
    { "POST", "/admin/reload", admin_reload, NULL },
    { "GET", "/admin/targets", admin_targets, NULL },
    { "GET", "/metrics", admin_metrics, NULL },
};

/* Which body field each key field comes from, for the param of a 400. */
static const struct {
    unsigned field;
    const char *param;
} admin_key_params[] = {
    { SL_KEY_SET_NAME, "name" },       { SL_KEY_SET_TEAM, "team" },
    { SL_KEY_SET_MODELS, "models" },   { SL_KEY_SET_RPM, "rpm" },
    { SL_KEY_SET_TPM, "tpm" },         { SL_KEY_SET_BUDGET, "budget_usd" },
    { SL_KEY_SET_EXPIRES, "expires" }, { SL_KEY_SET_METADATA, "metadata" },
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


/* Checks the admin key; answers 401 itself. The key given is never echoed or logged. */
static bool
admin_auth(sl_http_req_t *r)
{
    const sl_secret_t *admin = &r->conf->admin_key;
    sl_str_t key = sl_http_req_credential(r);

    if (admin->value == NULL) {
        admin_error(r, 401, "admin_disabled", NULL,
                    "The admin API is disabled: auth.admin_key is not configured.");
        return false;
    }
    if (key.len == 0) {
        admin_error(r, 401, "invalid_api_key", NULL,
                    "You didn't provide the admin key. Provide it in an Authorization header "
                    "using Bearer auth (Authorization: Bearer ADMIN_KEY) or in an x-api-key "
                    "header.");
        return false;
    }
    if (!sl_str_ct_eq(key.p, key.len, admin->value, admin->len)) {
        admin_error(r, 401, "invalid_api_key", NULL, "Incorrect admin key provided.");
        return false;
    }
    if (admin_current == NULL) {
        admin_error(r, 503, "admin_unavailable", NULL, "The admin API is not ready.");
        return false;
    }
    return true;
}


static bool
admin_has_db(sl_http_req_t *r)
{
    if (admin_current->db == NULL) {
        admin_error(r, 503, "storage_unavailable", NULL, "This worker has no storage open.");
        return false;
    }
    return true;
}


/* An error in OpenAI's shape; the type follows from the status. Finishes r. */
static void
admin_error(sl_http_req_t *r, int status, const char *code, const char *param, const char *fmt, ...)
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
static void
admin_bad(sl_http_req_t *r, const char *param, const char *fmt, ...)
{
    char msg[ADMIN_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl_http_respond_error(r, 400, "invalid_request_error", "invalid_value", param, msg);
}


/* The store said SL_ESTORE (or worse) and logged why. */
static void
admin_store_error(sl_http_req_t *r)
{
    admin_error(r, 500, "storage_error", NULL,
                "The gateway cannot read or write its store right now; see its error log.");
}


/* 405 with Allow, for a method the route table let through but this path does not take. */
static void
admin_not_allowed(sl_http_req_t *r, const char *allow)
{
    sl_http_header_t h[2];
    json_t *j;
    char *body;
    char msg[ADMIN_MSG_MAX];

    snprintf(msg, sizeof(msg), "Method %.*s is not allowed for %.*s.", (int) r->method.len,
             r->method.p, (int) (r->path.len > 256 ? 256 : r->path.len), r->path.p);
    j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type",
                  "invalid_request_error", "param", "code", "method_not_allowed");
    body = j == NULL ? NULL : json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (body == NULL) {
        admin_error(r, 500, NULL, NULL, "Out of memory.");
        return;
    }
    h[0].name = sl_str_lit("Content-Type");
    h[0].value = sl_str_lit("application/json");
    h[1].name = sl_str_lit("Allow");
    h[1].value = (sl_str_t){ allow, strlen(allow) };
    sl_http_respond(r, 405, h, 2, body, strlen(body));
    free(body);
}


/* Sends j (a reference this call steals) as the JSON body. */
static void
admin_send(sl_http_req_t *r, int status, json_t *j)
{
    char *body = j == NULL ? NULL : json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(j);
    if (body == NULL) {
        admin_error(r, 500, NULL, NULL, "Out of memory.");
        return;
    }
    sl_http_respond(r, status, admin_json_header, 1, body, strlen(body));
    free(body);
}


/* {"object":"list","data":data}, 200. Steals data. */
static void
admin_send_list(sl_http_req_t *r, json_t *data)
{
    json_t *j = json_object();

    if (j == NULL || data == NULL) {
        json_decref(j);
        json_decref(data);
        admin_send(r, 500, NULL);
        return;
    }
    json_object_set_new(j, "object", json_string("list"));
    json_object_set_new(j, "data", data);
    admin_send(r, 200, j);
}


/*
 * The request body as a JSON object; answers 400 itself and returns NULL
 * when it is not one. jansson's message is left out on purpose: it quotes
 * the text near the error, which may be a secret's value.
 */
static json_t *
admin_body(sl_http_req_t *r)
{
    json_error_t err;
    json_t *j;

    if (r->body.len == 0) {
        admin_bad(r, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    j = json_loadb(r->body.p, r->body.len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        admin_error(r, 400, "invalid_json", NULL,
                    "The request body is not valid JSON (line %d, column %d).", err.line,
                    err.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        admin_bad(r, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    return j;
}


/* 400 for a field or parameter this endpoint does not take; echoed only when it looks like a name.
 */
static void
admin_unknown_field(sl_http_req_t *r, const char *field, const char *what)
{
    size_t len = strlen(field);
    bool plain = len > 0 && len <= 32;

    for (size_t i = 0; i < len && plain; i++) {
        plain = (field[i] >= 'a' && field[i] <= 'z') || field[i] == '_';
    }
    if (plain) {
        admin_bad(r, field, "Unknown %s \"%s\".", what, field);
    } else {
        admin_bad(r, NULL, "This endpoint does not take that %s.", what);
    }
}


/*
 * The {name} path segment after the first prefix_len bytes, copied into
 * r->pool, and in *rest what follows it ("" or e.g. "/revoke"). NULL when
 * the segment is empty, too long or not made of [A-Za-z0-9._-] (names
 * never need percent-decoding).
 */
static char *
admin_path_name(sl_http_req_t *r, size_t prefix_len, sl_str_t *rest)
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
 * Splits the query into the n parameters names allows; values[i] is a copy
 * in r->pool, or stays as it was when absent. Answers 400 itself and
 * returns -EINVAL for a parameter it does not know.
 */
static int
admin_query(sl_http_req_t *r, const char *const *names, const char **values, size_t n)
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
            admin_unknown_field(r, sl_pstrndup(r->pool, p, klen), "query parameter");
            return -EINVAL;
        }
        p = amp + 1;
    }
    return 0;
}


/*
 * budget_usd as nano-USD, exactly. A string is read as decimal text. A
 * JSON integer is whole dollars. A JSON real reached us as a double: it is
 * printed with 6 decimals, and taken only when that text has at most 15
 * significant digits and reads back as the very same double; then it is
 * the decimal the client wrote (15 digits survive a trip through a double),
 * never a neighbour. Returns 0 or SL_EPARSE.
 */
static int
admin_json_usd(const json_t *v, uint64_t *nusd)
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
 * Reads a key's fields from body into as (strings copied into r->pool).
 * Answers 400 itself and returns -EINVAL on a bad field, a missing name
 * (create) or nothing to change (update).
 */
static int
admin_key_fields(sl_http_req_t *r, json_t *body, admin_spec_t *as, bool create)
{
    const char *field;
    json_t *v;

    memset(as, 0, sizeof(*as));
    as->spec.period = SL_BUDGET_MONTH;
    json_object_foreach(body, field, v)
    {
        if (admin_key_field(r, field, v, as) < 0) {
            return -EINVAL;
        }
    }
    if (create && !(as->fields & SL_KEY_SET_NAME)) {
        admin_bad(r, "name", "name is required.");
        return -EINVAL;
    }
    if (!create && as->fields == 0 && !as->period_given) {
        admin_bad(r, NULL,
                  "Nothing to change: give at least one of name, team, models, rpm, "
                  "tpm, budget_usd (with period), expires or metadata.");
        return -EINVAL;
    }
    /* as the CLI: a new key's budget needs its period (an update keeps the key's own),
     * and a period goes with a budget */
    if (create && as->budget_given && as->spec.budget != 0 && !as->period_given) {
        admin_bad(r, "period", "budget_usd needs period: day, month or total.");
        return -EINVAL;
    }
    if (as->period_given && !as->budget_given) {
        admin_bad(r, "period", "period goes with budget_usd.");
        return -EINVAL;
    }
    return 0;
}


/* One field of a key's body; answers 400 itself and returns -EINVAL when it is bad. */
static int
admin_key_field(sl_http_req_t *r, const char *field, json_t *v, admin_spec_t *as)
{
    sl_key_spec_t *s = &as->spec;
    size_t i;
    json_t *m;
    char *text;

    if (strcmp(field, "name") == 0) {
        if (!json_is_string(v)) {
            admin_bad(r, "name", "name must be a string.");
            return -EINVAL;
        }
        s->name = sl_pstrdup(r->pool, json_string_value(v));
        as->fields |= SL_KEY_SET_NAME;
    } else if (strcmp(field, "team") == 0) {
        if (!json_is_string(v) && !json_is_null(v)) {
            admin_bad(r, "team", "team must be a string, or null for none.");
            return -EINVAL;
        }
        s->team = json_is_null(v) ? NULL : sl_pstrdup(r->pool, json_string_value(v));
        as->fields |= SL_KEY_SET_TEAM;
    } else if (strcmp(field, "models") == 0) {
        if (json_is_null(v)) {
            s->nmodels = 0;
        } else if (!json_is_array(v) || json_array_size(v) == 0) {
            admin_bad(r, "models",
                      "models must be a non-empty array of globs, or null for every model.");
            return -EINVAL;
        } else if (json_array_size(v) > SL_KEY_MODELS_MAX) {
            admin_bad(r, "models", "At most %d model globs.", SL_KEY_MODELS_MAX);
            return -EINVAL;
        } else {
            json_array_foreach(v, i, m)
            {
                if (!json_is_string(m)) {
                    admin_bad(r, "models", "models must be an array of strings.");
                    return -EINVAL;
                }
                as->models[i] = sl_pstrdup(r->pool, json_string_value(m));
            }
            s->nmodels = json_array_size(v);
        }
        s->models = as->models;
        as->fields |= SL_KEY_SET_MODELS;
    } else if (strcmp(field, "rpm") == 0 || strcmp(field, "tpm") == 0) {
        if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            admin_bad(r, field, "%s must be a whole number (0 or null: unlimited).", field);
            return -EINVAL;
        }
        if (field[0] == 'r') {
            s->rpm = json_is_null(v) ? 0 : (uint64_t) json_integer_value(v);
            as->fields |= SL_KEY_SET_RPM;
        } else {
            s->tpm = json_is_null(v) ? 0 : (uint64_t) json_integer_value(v);
            as->fields |= SL_KEY_SET_TPM;
        }
    } else if (strcmp(field, "budget_usd") == 0) {
        s->budget = 0;
        if (!json_is_null(v) && admin_json_usd(v, &s->budget) != 0) {
            admin_bad(r, "budget_usd",
                      "budget_usd wants a dollar amount: a string such as \"12.50\" (at most 9 "
                      "decimals), a number with at most 6 decimals, or null for no budget.");
            return -EINVAL;
        }
        as->budget_given = true;
        as->fields |= SL_KEY_SET_BUDGET;
    } else if (strcmp(field, "period") == 0) {
        if (json_is_null(v)) {
            return 0;
        }
        if (!json_is_string(v) || sl_budget_period_parse(json_string_value(v), &s->period) != 0) {
            admin_bad(r, "period", "period is day, month or total.");
            return -EINVAL;
        }
        as->period_given = true;
        as->fields |= SL_KEY_SET_PERIOD;
    } else if (strcmp(field, "expires") == 0) {
        s->expires = 0;
        if (json_is_integer(v) && json_integer_value(v) > 0) {
            s->expires = (int64_t) json_integer_value(v);
        } else if (!json_is_null(v)
                   && (!json_is_string(v)
                       || sl_key_parse_expiry(json_string_value(v), (int64_t) time(NULL),
                                              &s->expires)
                              != 0)) {
            admin_bad(r, "expires",
                      "expires wants a duration (12h, 30d), a date (YYYY-MM-DD), unix seconds, "
                      "or null for never.");
            return -EINVAL;
        }
        as->fields |= SL_KEY_SET_EXPIRES;
    } else if (strcmp(field, "metadata") == 0) {
        s->metadata = NULL;
        if (!json_is_null(v)) {
            if (!json_is_object(v)) {
                admin_bad(r, "metadata", "metadata must be a JSON object, or null for none.");
                return -EINVAL;
            }
            text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (text == NULL) {
                admin_error(r, 500, NULL, NULL, "Out of memory.");
                return -EINVAL;
            }
            s->metadata = sl_pstrdup(r->pool, text);
            free(text);
        }
        as->fields |= SL_KEY_SET_METADATA;
    } else {
        admin_unknown_field(r, field, "field");
        return -EINVAL;
    }
    return 0;
}


/* The store's own validation, field by field so a 400 can name its param. */
static int
admin_key_check(sl_http_req_t *r, admin_spec_t *as, int64_t now)
{
    char err[256];

    for (size_t i = 0; i < sizeof(admin_key_params) / sizeof(admin_key_params[0]); i++) {
        if ((as->fields & admin_key_params[i].field)
            && sl_key_spec_check(&as->spec, admin_key_params[i].field, now, err, sizeof(err))
                   != 0) {
            admin_bad(r, admin_key_params[i].param, "%s.", err);
            return -EINVAL;
        }
    }
    return 0;
}


/* One short read transaction. Returns 0, SL_ENOTFOUND or SL_ESTORE; answers nothing. */
static int
admin_key_find(sl_http_req_t *r, const char *id_or_name, sl_key_t **k)
{
    sl_txn_t *t;
    int rc;

    rc = sl_db_read(admin_current->db, &t);
    if (rc < 0) {
        return rc;
    }
    rc = sl_keys_find(t, id_or_name, r->pool, k);
    sl_db_abort(t);
    return rc;
}


/* 404. The identifier is not echoed: a client may have pasted a key's text. */
static void
admin_key_not_found(sl_http_req_t *r, const char *id_or_name)
{
    if (id_or_name != NULL && strncmp(id_or_name, SL_KEY_PREFIX, strlen(SL_KEY_PREFIX)) == 0) {
        admin_error(r, 404, "not_found", NULL,
                    "Keys are looked up by id or name, never by their text; no such key.");
        return;
    }
    admin_error(r, 404, "not_found", NULL, "No key with that id or name.");
}


static void
admin_keys_list(sl_http_req_t *r)
{
    json_t *data;
    sl_txn_t *t;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    data = json_array();
    if (data == NULL) {
        admin_send(r, 500, NULL);
        return;
    }
    rc = sl_db_read(admin_current->db, &t);
    if (rc == 0) {
        rc = sl_keys_list(t, r->pool, admin_keys_list_cb, data);
        sl_db_abort(t);
    }
    if (rc < 0) {
        json_decref(data);
        admin_store_error(r);
        return;
    }
    admin_send_list(r, data);
}


static int
admin_keys_list_cb(void *arg, const sl_key_t *k)
{
    json_t *j = sl_key_json(k, (int64_t) time(NULL), NULL);

    if (j == NULL || json_array_append_new(arg, j) != 0) {
        return -ENOMEM;
    }
    return 0;
}


static void
admin_keys_create(sl_http_req_t *r)
{
    admin_spec_t as;
    json_t *body, *j;
    sl_key_t *k;
    char *text, *out;
    const char *shown;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    body = admin_body(r);
    if (body == NULL) {
        return;
    }
    rc = admin_key_fields(r, body, &as, true);
    json_decref(body);
    if (rc < 0 || admin_key_check(r, &as, (int64_t) time(NULL)) < 0) {
        return;
    }
    rc = sl_keys_create(admin_current->db, &as.spec, r->pool, &k, &text);
    if (rc == -EEXIST) {
        admin_error(r, 409, "name_taken", "name", "A key named \"%s\" already exists.",
                    as.spec.name);
        return;
    }
    if (rc == -EINVAL) {
        admin_bad(r, NULL, "The key's fields are not valid.");
        return;
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: key %s (%s) created from %s", k->id, k->name,
           r->client_addr);
    j = sl_key_json(k, k->created, text);
    sl_crypto_wipe(text, strlen(text));
    out = j == NULL ? NULL : json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    /* the text is shown once: no copy of ours outlives the answer */
    shown = json_string_value(json_object_get(j, "key"));
    if (shown != NULL) {
        sl_crypto_wipe((char *) shown, strlen(shown));
    }
    json_decref(j);
    if (out == NULL) {
        admin_error(r, 500, NULL, NULL, "Out of memory.");
        return;
    }
    sl_http_respond(r, 201, admin_json_header, 1, out, strlen(out));
    sl_crypto_wipe(out, strlen(out));
    free(out);
}


static void
admin_key_get(sl_http_req_t *r)
{
    sl_str_t rest;
    char *id;
    sl_key_t *k;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    id = admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
    if (id != NULL && sl_str_eq(rest, ADMIN_REVOKE)) {
        admin_not_allowed(r, "POST");
        return;
    }
    if (id == NULL || rest.len > 0) {
        admin_key_not_found(r, NULL);
        return;
    }
    rc = admin_key_find(r, id, &k);
    if (rc == SL_ENOTFOUND) {
        admin_key_not_found(r, id);
        return;
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    admin_send(r, 200, sl_key_json(k, (int64_t) time(NULL), NULL));
}


static void
admin_key_patch(sl_http_req_t *r)
{
    admin_spec_t as;
    sl_str_t rest;
    json_t *body;
    char *id;
    sl_key_t *k;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    id = admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
    if (id != NULL && sl_str_eq(rest, ADMIN_REVOKE)) {
        admin_not_allowed(r, "POST");
        return;
    }
    if (id == NULL || rest.len > 0) {
        admin_key_not_found(r, NULL);
        return;
    }
    body = admin_body(r);
    if (body == NULL) {
        return;
    }
    rc = admin_key_fields(r, body, &as, false);
    json_decref(body);
    if (rc < 0 || admin_key_check(r, &as, (int64_t) time(NULL)) < 0) {
        return;
    }
    rc = sl_keys_update(admin_current->db, id, &as.spec, as.fields, r->pool, &k);
    if (rc == -EEXIST) {
        admin_error(r, 409, "name_taken", "name", "A key named \"%s\" already exists.",
                    as.spec.name);
        return;
    }
    if (rc == SL_ENOTFOUND) {
        admin_key_not_found(r, id);
        return;
    }
    if (rc == -EINVAL && (as.fields & SL_KEY_SET_BUDGET) && !as.period_given) {
        admin_bad(r, "period",
                  "The key has no budget yet: budget_usd needs period: day, month "
                  "or total.");
        return;
    }
    if (rc == -EINVAL) {
        admin_bad(r, NULL, "The key's fields are not valid.");
        return;
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: key %s (%s) updated from %s", k->id, k->name,
           r->client_addr);
    admin_send(r, 200, sl_key_json(k, (int64_t) time(NULL), NULL));
}


static void
admin_key_delete(sl_http_req_t *r)
{
    sl_str_t rest;
    char *id;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    id = admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
    if (id != NULL && sl_str_eq(rest, ADMIN_REVOKE)) {
        admin_not_allowed(r, "POST");
        return;
    }
    if (id == NULL || rest.len > 0) {
        admin_key_not_found(r, NULL);
        return;
    }
    admin_key_revoke(r, id);
}


/* POST /admin/keys/{id|name}/revoke; POST on the key itself is not a thing. */
static void
admin_key_post(sl_http_req_t *r)
{
    sl_str_t rest;
    char *id;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    id = admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
    if (id != NULL && rest.len == 0) {
        admin_not_allowed(r, "GET, PATCH, DELETE");
        return;
    }
    if (id == NULL || !sl_str_eq(rest, ADMIN_REVOKE)) {
        admin_key_not_found(r, NULL);
        return;
    }
    admin_key_revoke(r, id);
}


/* Revokes (keeping the first revocation time) and answers the key as it is now. */
static void
admin_key_revoke(sl_http_req_t *r, const char *id_or_name)
{
    int64_t now = (int64_t) time(NULL);
    sl_key_t *k;
    bool already = false;
    int rc;

    rc = admin_key_find(r, id_or_name, &k);
    if (rc == 0) {
        already = k->revoked != 0;
        rc = sl_keys_revoke(admin_current->db, k->id, now);
        if (rc == 0) {
            rc = admin_key_find(r, k->id, &k);
        }
    }
    if (rc == SL_ENOTFOUND) {
        admin_key_not_found(r, id_or_name);
        return;
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    if (!already) {
        sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: key %s (%s) revoked from %s", k->id, k->name,
               r->client_addr);
    }
    admin_send(r, 200, sl_key_json(k, now, NULL));
}


/* GET /admin/usage?since=7d&by=key: what `sluice usage --format json` prints, as a list. */
static void
admin_usage(sl_http_req_t *r)
{
    static const char *const names[] = { "since", "by" };
    const char *values[] = { ADMIN_DEFAULT_SINCE, "key" };
    struct timespec ts;
    admin_usage_t *u;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    if (admin_query(r, names, values, 2) < 0) {
        return;
    }
    u = sl_pcalloc(r->pool, sizeof(*u));
    clock_gettime(CLOCK_REALTIME, &ts);
    if (sl_ledger_parse_since(values[0], (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec,
                              &u->since_ns)
        != 0) {
        admin_bad(r, "since", "since wants a duration such as 24h, 7d or 30d, or all.");
        return;
    }
    if (sl_ledger_by_parse(values[1], &u->by) != 0) {
        admin_bad(r, "by", "by is key, team, model, provider, day or request.");
        return;
    }
    u->r = r;
    u->db = admin_current->db;
    u->work.data = u;
    /* the whole window is read and grouped: off the loop */
    rc = uv_queue_work(r->loop, &u->work, admin_usage_work, admin_usage_done);
    if (rc < 0) {
        sl_log(&r->log, SL_LOG_ERR, rc, "uv_queue_work() for a usage report failed");
        admin_error(r, 500, NULL, NULL, "The usage report could not be started.");
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
        admin_store_error(r);
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
    admin_send_list(r, data);
}


static void
admin_teams_list(sl_http_req_t *r)
{
    json_t *data;
    sl_txn_t *t;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    data = json_array();
    if (data == NULL) {
        admin_send(r, 500, NULL);
        return;
    }
    rc = sl_db_read(admin_current->db, &t);
    if (rc == 0) {
        rc = sl_teams_list(t, r->pool, admin_teams_list_cb, data);
        sl_db_abort(t);
    }
    if (rc < 0) {
        json_decref(data);
        admin_store_error(r);
        return;
    }
    admin_send_list(r, data);
}


static int
admin_teams_list_cb(void *arg, const sl_team_t *team)
{
    json_t *j = sl_team_json(team);

    if (j == NULL || json_array_append_new(arg, j) != 0) {
        return -ENOMEM;
    }
    return 0;
}


static void
admin_team_get(sl_http_req_t *r)
{
    sl_str_t rest;
    sl_team_t *team;
    sl_txn_t *t;
    char *name;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    name = admin_path_name(r, sizeof(ADMIN_TEAMS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        admin_error(r, 404, "not_found", NULL, "No such team.");
        return;
    }
    rc = sl_db_read(admin_current->db, &t);
    if (rc == 0) {
        rc = sl_teams_get(t, name, r->pool, &team);
        sl_db_abort(t);
    }
    if (rc == SL_ENOTFOUND) {
        admin_error(r, 404, "not_found", NULL, "No team \"%s\".", name);
        return;
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    admin_send(r, 200, sl_team_json(team));
}


/* PUT /admin/teams/{name} {budget_usd, period}: as `sluice teams set`, both required. */
static void
admin_team_put(sl_http_req_t *r)
{
    sl_budget_period_e period = SL_BUDGET_MONTH;
    bool has_budget = false, has_period = false;
    uint64_t budget = 0;
    const char *field;
    sl_str_t rest;
    sl_team_t *team;
    sl_txn_t *t;
    json_t *body, *v;
    char *name;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    name = admin_path_name(r, sizeof(ADMIN_TEAMS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        admin_error(r, 404, "not_found", NULL, "No such team.");
        return;
    }
    if (!sl_team_name_valid(name)) {
        admin_bad(r, NULL,
                  "Invalid team name \"%s\": use 1 to 64 letters, digits, '.', '_' or '-', "
                  "starting with a letter or digit.",
                  name);
        return;
    }
    body = admin_body(r);
    if (body == NULL) {
        return;
    }
    json_object_foreach(body, field, v)
    {
        if (strcmp(field, "budget_usd") == 0) {
            if (admin_json_usd(v, &budget) != 0 || budget == 0) {
                json_decref(body);
                admin_bad(r, "budget_usd",
                          "budget_usd wants a dollar amount above 0: a string such as \"500\" "
                          "or \"12.50\", or a number with at most 6 decimals.");
                return;
            }
            has_budget = true;
        } else if (strcmp(field, "period") == 0) {
            if (!json_is_string(v) || sl_budget_period_parse(json_string_value(v), &period) != 0) {
                json_decref(body);
                admin_bad(r, "period", "period is day, month or total.");
                return;
            }
            has_period = true;
        } else {
            admin_unknown_field(r, field, "field");
            json_decref(body);
            return;
        }
    }
    json_decref(body);
    if (!has_budget || !has_period) {
        admin_bad(r, has_budget ? "period" : "budget_usd", "budget_usd and period are required.");
        return;
    }
    rc = sl_teams_set(admin_current->db, name, budget, period, (int64_t) time(NULL));
    if (rc == -EINVAL) {
        admin_bad(r, NULL, "The team's fields are not valid.");
        return;
    }
    if (rc == 0) {
        rc = sl_db_read(admin_current->db, &t);
        if (rc == 0) {
            rc = sl_teams_get(t, name, r->pool, &team);
            sl_db_abort(t);
        }
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: team %s budget set from %s", name, r->client_addr);
    admin_send(r, 200, sl_team_json(team));
}


static void
admin_team_delete(sl_http_req_t *r)
{
    sl_str_t rest;
    char *name;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    name = admin_path_name(r, sizeof(ADMIN_TEAMS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        admin_error(r, 404, "not_found", NULL, "No such team.");
        return;
    }
    rc = sl_teams_rm(admin_current->db, name);
    if (rc == SL_ENOTFOUND) {
        admin_error(r, 404, "not_found", NULL, "No team \"%s\".", name);
        return;
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: team %s removed from %s", name, r->client_addr);
    sl_http_respond(r, 204, NULL, 0, NULL, 0);
}


/* The vault handle exists (a master key that was given could be used); else 503. */
static bool
admin_vault_usable(sl_http_req_t *r)
{
    if (admin_current->vault == NULL) {
        admin_error(r, 503, "vault_unavailable", NULL,
                    "The vault master key given to sluice cannot be used; see its error log.");
        return false;
    }
    return true;
}


static void
admin_secrets_list(sl_http_req_t *r)
{
    json_t *data;
    sl_txn_t *t;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r) || !admin_vault_usable(r)) {
        return;
    }
    data = json_array();
    if (data == NULL) {
        admin_send(r, 500, NULL);
        return;
    }
    rc = sl_db_read(admin_current->db, &t);
    if (rc == 0) {
        rc = sl_vault_list(admin_current->vault, t, admin_secrets_list_cb, data);
        sl_db_abort(t);
    }
    if (rc < 0) {
        json_decref(data);
        admin_store_error(r);
        return;
    }
    admin_send_list(r, data);
}


/* Names and dates, as `sluice secrets list --json`; there is no way to read a value. */
static int
admin_secrets_list_cb(void *arg, const sl_vault_entry_t *e)
{
    char created[32], updated[32];
    json_t *j;

    sl_ledger_format_time(e->created, created, sizeof(created));
    sl_ledger_format_time(e->updated, updated, sizeof(updated));
    j = json_pack("{s:s, s:s, s:s}", "name", e->name, "created", created, "updated", updated);
    if (j == NULL || json_array_append_new(arg, j) != 0) {
        return -ENOMEM;
    }
    return 0;
}


/* PUT /admin/secrets/{name} {"value": "..."}: 204. The value is wiped from our copies. */
static void
admin_secret_put(sl_http_req_t *r)
{
    const char *field;
    sl_str_t rest;
    json_t *body, *v, *value = NULL;
    char *name;
    size_t len = 0;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    name = admin_path_name(r, sizeof(ADMIN_SECRETS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0 || !sl_vault_name_valid(name)) {
        admin_bad(r, NULL,
                  "Invalid secret name: use 1 to %d letters, digits, '.', '_' or '-', starting "
                  "with a letter or digit.",
                  SL_VAULT_NAME_MAX);
        return;
    }
    body = admin_body(r);
    if (body == NULL) {
        return;
    }
    json_object_foreach(body, field, v)
    {
        if (strcmp(field, "value") != 0) {
            admin_unknown_field(r, field, "field");
            goto out_body;
        }
        value = v;
    }
    if (value == NULL || !json_is_string(value) || json_string_length(value) == 0
        || json_string_length(value) > SL_VAULT_VALUE_MAX) {
        admin_bad(r, "value", "value must be a string of 1 to %d bytes.", SL_VAULT_VALUE_MAX);
        goto out_body;
    }
    len = json_string_length(value);
    if (!admin_vault_usable(r)) {
        goto out_body;
    }
    if (!sl_vault_has_key(admin_current->vault)) {
        admin_error(r, 503, "vault_unavailable", NULL,
                    "No vault master key: start sluice with SLUICE_MASTER_KEY (64 hex digits or "
                    "base64 of 32 bytes) or SLUICE_MASTER_KEY_FILE in its environment.");
        goto out_body;
    }
    rc = sl_vault_set(admin_current->vault, name, json_string_value(value), len,
                      (int64_t) time(NULL));
    switch (rc) {
    case 0:
        sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: secret %s stored from %s", name, r->client_addr);
        sl_http_respond(r, 204, NULL, 0, NULL, 0);
        break;
    case -EINVAL:
        admin_bad(r, "value", "value must be a string of 1 to %d bytes.", SL_VAULT_VALUE_MAX);
        break;
    case SL_EAUTH:
        admin_error(r, 503, "vault_unavailable", NULL,
                    "The master key sluice runs with does not match the vault.");
        break;
    case SL_ESECRET:
        admin_error(r, 503, "vault_unavailable", NULL, "No vault master key.");
        break;
    default:
        admin_store_error(r);
        break;
    }

out_body:
    if (value != NULL && json_is_string(value)) {
        sl_crypto_wipe((char *) json_string_value(value), json_string_length(value));
    }
    json_decref(body);
}


static void
admin_secret_delete(sl_http_req_t *r)
{
    sl_str_t rest;
    char *name;
    int rc;

    if (!admin_auth(r) || !admin_has_db(r)) {
        return;
    }
    name = admin_path_name(r, sizeof(ADMIN_SECRETS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        admin_error(r, 404, "not_found", NULL, "No such secret.");
        return;
    }
    if (!admin_vault_usable(r)) {
        return;
    }
    rc = sl_vault_rm(admin_current->vault, name);
    if (rc == SL_ENOTFOUND) {
        admin_error(r, 404, "not_found", NULL, "No secret \"%s\".", name);
        return;
    }
    if (rc < 0) {
        admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: secret %s removed from %s", name, r->client_addr);
    sl_http_respond(r, 204, NULL, 0, NULL, 0);
}


/*
 * POST /admin/reload: SIGHUP to the master, which rolls a new generation
 * over (this worker drains after answering). 202: the outcome is in the
 * master's log, like `sluice reload`.
 */
/* Prometheus text exposition of the shared counters (core/admin/metrics.h). */
static void
admin_metrics(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "text/plain; version=0.0.4", 25 } },
    };
    sl_buf_t b = SL_BUF_INIT;

    if (!admin_auth(r)) {
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
static void
admin_targets(sl_http_req_t *r)
{
    static const sl_http_header_t h[] = {
        { { "content-type", 12 }, { "application/json", 16 } },
    };
    sl_buf_t b = SL_BUF_INIT;

    if (!admin_auth(r)) {
        return;
    }
    sl_metrics_render_targets(&b, sl_state_now());
    sl_http_respond(r, 200, h, 1, b.p, b.len);
    sl_buf_free(&b);
}


static void
admin_reload(sl_http_req_t *r)
{
    pid_t master;
    int err;

    if (!admin_auth(r)) {
        return;
    }
    if (!admin_current->has_master) {
        admin_error(r, 409, "single_mode", NULL,
                    "sluice runs with --single: there is no master process to reload; restart "
                    "it instead.");
        return;
    }
    master = getppid();
    if (master <= 1) {
        admin_error(r, 409, "no_master", NULL, "The master process is gone; this worker drains.");
        return;
    }
    if (kill(master, SIGHUP) != 0) {
        err = errno;
        sl_log(&r->log, SL_LOG_ERR, err, "kill(%d, SIGHUP) failed", (int) master);
        admin_error(r, 500, NULL, NULL, "The reload signal could not be sent.");
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: reload requested from %s", r->client_addr);
    admin_send(r, 202, json_pack("{s:s}", "status", "reloading"));
}
