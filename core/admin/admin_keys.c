/*
 * /admin/keys: the client keys, as `sluice keys` manages them. A body's
 * fields are read one by one so a 400 names its param, then checked with
 * the store's own rules (sl_key_spec_check); a key is found by id or name,
 * never by its text, which is shown once, in the answer to the create, and
 * wiped from every copy of ours. DELETE and POST .../revoke both revoke;
 * revoking keeps the first revocation time.
 */
#include "core/admin/admin_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/base/str.h"
#include "core/gateway/guard.h"
#include "storage/keys.h"
#include "storage/spend.h"

#define ADMIN_REVOKE "/revoke"

/* A key's fields as a request body gives them. */
typedef struct admin_spec {
    sl_key_spec_t spec;
    unsigned fields; /* sl_key_field_e */
    bool period_given;
    bool budget_given;
    const char *models[SL_KEY_MODELS_MAX];
} admin_spec_t;

static void admin_not_allowed(sl_http_req_t *r, const char *allow);
static int admin_key_fields(sl_http_req_t *r, json_t *body, admin_spec_t *as, bool create);
static int admin_key_field(sl_http_req_t *r, const char *field, json_t *v, admin_spec_t *as);
static int admin_key_check(sl_http_req_t *r, admin_spec_t *as, int64_t now);
static int admin_key_find(sl_http_req_t *r, const char *id_or_name, sl_key_t **k);
static void admin_key_not_found(sl_http_req_t *r, const char *id_or_name);
static int admin_keys_list_cb(void *arg, const sl_key_t *k);
static void admin_key_revoke(sl_http_req_t *r, const char *id_or_name);

/* Which body field each key field comes from, for the param of a 400. */
static const struct {
    unsigned field;
    const char *param;
} admin_key_params[] = {
    { SL_KEY_SET_NAME, "name" },       { SL_KEY_SET_TEAM, "team" },
    { SL_KEY_SET_MODELS, "models" },   { SL_KEY_SET_RPM, "rpm" },
    { SL_KEY_SET_TPM, "tpm" },         { SL_KEY_SET_BUDGET, "budget_usd" },
    { SL_KEY_SET_EXPIRES, "expires" }, { SL_KEY_SET_METADATA, "metadata" },
    { SL_KEY_SET_GUARD, "guard" },
};


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
        sl__admin_error(r, 500, NULL, NULL, "Out of memory.");
        return;
    }
    h[0].name = sl_str_lit("Content-Type");
    h[0].value = sl_str_lit("application/json");
    h[1].name = sl_str_lit("Allow");
    h[1].value = (sl_str_t){ allow, strlen(allow) };
    sl_http_respond(r, 405, h, 2, body, strlen(body));
    free(body);
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
        sl__admin_bad(r, "name", "name is required.");
        return -EINVAL;
    }
    if (!create && as->fields == 0 && !as->period_given) {
        sl__admin_bad(r, NULL,
                      "Nothing to change: give at least one of name, team, models, rpm, "
                      "tpm, budget_usd (with period), expires, metadata or guard.");
        return -EINVAL;
    }
    /* as the CLI: a new key's budget needs its period (an update keeps the key's own),
     * and a period goes with a budget */
    if (create && as->budget_given && as->spec.budget != 0 && !as->period_given) {
        sl__admin_bad(r, "period", "budget_usd needs period: day, week, month or total.");
        return -EINVAL;
    }
    if (as->period_given && !as->budget_given) {
        sl__admin_bad(r, "period", "period goes with budget_usd.");
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
            sl__admin_bad(r, "name", "name must be a string.");
            return -EINVAL;
        }
        s->name = sl_pstrdup(r->pool, json_string_value(v));
        as->fields |= SL_KEY_SET_NAME;
    } else if (strcmp(field, "team") == 0) {
        if (!json_is_string(v) && !json_is_null(v)) {
            sl__admin_bad(r, "team", "team must be a string, or null for none.");
            return -EINVAL;
        }
        s->team = json_is_null(v) ? NULL : sl_pstrdup(r->pool, json_string_value(v));
        as->fields |= SL_KEY_SET_TEAM;
    } else if (strcmp(field, "models") == 0) {
        if (json_is_null(v)) {
            s->nmodels = 0;
        } else if (!json_is_array(v) || json_array_size(v) == 0) {
            sl__admin_bad(r, "models",
                          "models must be a non-empty array of globs, or null for every model.");
            return -EINVAL;
        } else if (json_array_size(v) > SL_KEY_MODELS_MAX) {
            sl__admin_bad(r, "models", "At most %d model globs.", SL_KEY_MODELS_MAX);
            return -EINVAL;
        } else {
            json_array_foreach(v, i, m)
            {
                if (!json_is_string(m)) {
                    sl__admin_bad(r, "models", "models must be an array of strings.");
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
            sl__admin_bad(r, field, "%s must be a whole number (0 or null: unlimited).", field);
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
        if (!json_is_null(v) && sl__admin_json_usd(v, &s->budget) != 0) {
            sl__admin_bad(r, "budget_usd",
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
            sl__admin_bad(r, "period", "period is day, week, month or total.");
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
            sl__admin_bad(r, "expires",
                          "expires wants a duration (12h, 30d), a date (YYYY-MM-DD), unix seconds, "
                          "or null for never.");
            return -EINVAL;
        }
        as->fields |= SL_KEY_SET_EXPIRES;
    } else if (strcmp(field, "guard") == 0) {
        /* a guardrail policy of this configuration, "none", or null: no policy of its own */
        if (!json_is_string(v) && !json_is_null(v)) {
            sl__admin_bad(r, "guard", "guard must be a policy name, or null for none.");
            return -EINVAL;
        }
        s->guard = json_is_null(v) ? NULL : sl_pstrdup(r->pool, json_string_value(v));
        if (s->guard != NULL && sl_guard_find(r->conf->guard, s->guard) == NULL) {
            sl__admin_bad(r, "guard",
                          "No guardrail policy \"%s\" in the configuration (guardrails.policies, "
                          "or none).",
                          s->guard);
            return -EINVAL;
        }
        as->fields |= SL_KEY_SET_GUARD;
    } else if (strcmp(field, "metadata") == 0) {
        s->metadata = NULL;
        if (!json_is_null(v)) {
            if (!json_is_object(v)) {
                sl__admin_bad(r, "metadata", "metadata must be a JSON object, or null for none.");
                return -EINVAL;
            }
            text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (text == NULL) {
                sl__admin_error(r, 500, NULL, NULL, "Out of memory.");
                return -EINVAL;
            }
            s->metadata = sl_pstrdup(r->pool, text);
            free(text);
        }
        as->fields |= SL_KEY_SET_METADATA;
    } else {
        sl__admin_unknown_field(r, field, "field");
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
            sl__admin_bad(r, admin_key_params[i].param, "%s.", err);
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

    rc = sl_db_read(sl__admin_db(), &t);
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
        sl__admin_error(r, 404, "not_found", NULL,
                        "Keys are looked up by id or name, never by their text; no such key.");
        return;
    }
    sl__admin_error(r, 404, "not_found", NULL, "No key with that id or name.");
}


void
sl__admin_keys_list(sl_http_req_t *r)
{
    json_t *data;
    sl_txn_t *t;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    data = json_array();
    if (data == NULL) {
        sl__admin_send(r, 500, NULL);
        return;
    }
    rc = sl_db_read(sl__admin_db(), &t);
    if (rc == 0) {
        rc = sl_keys_list(t, r->pool, admin_keys_list_cb, data);
        sl_db_abort(t);
    }
    if (rc < 0) {
        json_decref(data);
        sl__admin_store_error(r);
        return;
    }
    sl__admin_send_list(r, data);
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


void
sl__admin_keys_create(sl_http_req_t *r)
{
    admin_spec_t as;
    json_t *body, *j;
    sl_key_t *k;
    char *text, *out;
    const char *shown;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    body = sl__admin_body(r);
    if (body == NULL) {
        return;
    }
    rc = admin_key_fields(r, body, &as, true);
    json_decref(body);
    if (rc < 0 || admin_key_check(r, &as, (int64_t) time(NULL)) < 0) {
        return;
    }
    rc = sl_keys_create(sl__admin_db(), &as.spec, r->pool, &k, &text);
    if (rc == -EEXIST) {
        sl__admin_error(r, 409, "name_taken", "name", "A key named \"%s\" already exists.",
                        as.spec.name);
        return;
    }
    if (rc == -EINVAL) {
        sl__admin_bad(r, NULL, "The key's fields are not valid.");
        return;
    }
    if (rc < 0) {
        sl__admin_store_error(r);
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
        sl__admin_error(r, 500, NULL, NULL, "Out of memory.");
        return;
    }
    sl__admin_send_text(r, 201, out, strlen(out));
    sl_crypto_wipe(out, strlen(out));
    free(out);
}


void
sl__admin_key_get(sl_http_req_t *r)
{
    sl_str_t rest;
    char *id;
    sl_key_t *k;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    id = sl__admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
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
        sl__admin_store_error(r);
        return;
    }
    sl__admin_send(r, 200, sl_key_json(k, (int64_t) time(NULL), NULL));
}


void
sl__admin_key_patch(sl_http_req_t *r)
{
    admin_spec_t as;
    sl_str_t rest;
    json_t *body;
    char *id;
    sl_key_t *k;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    id = sl__admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
    if (id != NULL && sl_str_eq(rest, ADMIN_REVOKE)) {
        admin_not_allowed(r, "POST");
        return;
    }
    if (id == NULL || rest.len > 0) {
        admin_key_not_found(r, NULL);
        return;
    }
    body = sl__admin_body(r);
    if (body == NULL) {
        return;
    }
    rc = admin_key_fields(r, body, &as, false);
    json_decref(body);
    if (rc < 0 || admin_key_check(r, &as, (int64_t) time(NULL)) < 0) {
        return;
    }
    rc = sl_keys_update(sl__admin_db(), id, &as.spec, as.fields, r->pool, &k);
    if (rc == -EEXIST) {
        sl__admin_error(r, 409, "name_taken", "name", "A key named \"%s\" already exists.",
                        as.spec.name);
        return;
    }
    if (rc == SL_ENOTFOUND) {
        admin_key_not_found(r, id);
        return;
    }
    if (rc == -EINVAL && (as.fields & SL_KEY_SET_BUDGET) && !as.period_given) {
        sl__admin_bad(r, "period",
                      "The key has no budget yet: budget_usd needs period: day, month "
                      "or total.");
        return;
    }
    if (rc == -EINVAL) {
        sl__admin_bad(r, NULL, "The key's fields are not valid.");
        return;
    }
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: key %s (%s) updated from %s", k->id, k->name,
           r->client_addr);
    sl__admin_send(r, 200, sl_key_json(k, (int64_t) time(NULL), NULL));
}


void
sl__admin_key_delete(sl_http_req_t *r)
{
    sl_str_t rest;
    char *id;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    id = sl__admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
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
void
sl__admin_key_post(sl_http_req_t *r)
{
    sl_str_t rest;
    char *id;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    id = sl__admin_path_name(r, sizeof(ADMIN_KEYS_PREFIX) - 1, &rest);
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
        rc = sl_keys_revoke(sl__admin_db(), k->id, now);
        if (rc == 0) {
            rc = admin_key_find(r, k->id, &k);
        }
    }
    if (rc == SL_ENOTFOUND) {
        admin_key_not_found(r, id_or_name);
        return;
    }
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    if (!already) {
        sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: key %s (%s) revoked from %s", k->id, k->name,
               r->client_addr);
    }
    sl__admin_send(r, 200, sl_key_json(k, now, NULL));
}
