/*
 * /admin/teams: the team budgets and guardrail policies, as `sluice teams`
 * manages them. PUT sets a team's budget and period (together), its guard
 * (a policy name, or null to remove it), or both, as `sluice teams set`,
 * and answers the team as stored; DELETE removes the team's record.
 */
#include "core/admin/admin_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/gateway/guard.h"
#include "storage/spend.h"
#include "storage/teams.h"

static int admin_teams_list_cb(void *arg, const sl_team_t *team);


void
sl__admin_teams_list(sl_http_req_t *r)
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
        rc = sl_teams_list(t, r->pool, admin_teams_list_cb, data);
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
admin_teams_list_cb(void *arg, const sl_team_t *team)
{
    json_t *j = sl_team_json(team);

    if (j == NULL || json_array_append_new(arg, j) != 0) {
        return -ENOMEM;
    }
    return 0;
}


void
sl__admin_team_get(sl_http_req_t *r)
{
    sl_str_t rest;
    sl_team_t *team;
    sl_txn_t *t;
    char *name;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    name = sl__admin_path_name(r, sizeof(ADMIN_TEAMS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        sl__admin_error(r, 404, "not_found", NULL, "No such team.");
        return;
    }
    rc = sl_db_read(sl__admin_db(), &t);
    if (rc == 0) {
        rc = sl_teams_get(t, name, r->pool, &team);
        sl_db_abort(t);
    }
    if (rc == SL_ENOTFOUND) {
        sl__admin_error(r, 404, "not_found", NULL, "No team \"%s\".", name);
        return;
    }
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    sl__admin_send(r, 200, sl_team_json(team));
}


/* PUT /admin/teams/{name} {budget_usd, period, guard}: as `sluice teams set`. */
void
sl__admin_team_put(sl_http_req_t *r)
{
    sl_budget_period_e period = SL_BUDGET_MONTH;
    bool has_budget = false, has_period = false, has_guard = false;
    const char *guard = NULL;
    uint64_t budget = 0;
    const char *field;
    sl_str_t rest;
    sl_team_t *team;
    sl_txn_t *t;
    json_t *body, *v;
    char *name;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    name = sl__admin_path_name(r, sizeof(ADMIN_TEAMS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        sl__admin_error(r, 404, "not_found", NULL, "No such team.");
        return;
    }
    if (!sl_team_name_valid(name)) {
        sl__admin_bad(r, NULL,
                      "Invalid team name \"%s\": use 1 to 64 letters, digits, '.', '_' or '-', "
                      "starting with a letter or digit.",
                      name);
        return;
    }
    body = sl__admin_body(r);
    if (body == NULL) {
        return;
    }
    json_object_foreach(body, field, v)
    {
        if (strcmp(field, "budget_usd") == 0) {
            if (sl__admin_json_usd(v, &budget) != 0 || budget == 0) {
                json_decref(body);
                sl__admin_bad(r, "budget_usd",
                              "budget_usd wants a dollar amount above 0: a string such as \"500\" "
                              "or \"12.50\", or a number with at most 6 decimals.");
                return;
            }
            has_budget = true;
        } else if (strcmp(field, "period") == 0) {
            if (!json_is_string(v) || sl_budget_period_parse(json_string_value(v), &period) != 0) {
                json_decref(body);
                sl__admin_bad(r, "period", "period is day, week, month or total.");
                return;
            }
            has_period = true;
        } else if (strcmp(field, "guard") == 0) {
            if ((!json_is_string(v) && !json_is_null(v))
                || (json_is_string(v)
                    && sl_guard_find(r->conf->guard, json_string_value(v)) == NULL)) {
                json_decref(body);
                sl__admin_bad(r, "guard",
                              "guard must be a guardrail policy of the configuration "
                              "(guardrails.policies), \"none\", or null to remove the team's.");
                return;
            }
            guard = json_is_string(v) ? sl_pstrdup(r->pool, json_string_value(v)) : NULL;
            has_guard = true;
        } else {
            sl__admin_unknown_field(r, field, "field");
            json_decref(body);
            return;
        }
    }
    json_decref(body);
    if (has_budget != has_period || (!has_budget && !has_guard)) {
        sl__admin_bad(r, has_budget ? "period" : "budget_usd",
                      "budget_usd and period are required (together), unless guard is given.");
        return;
    }
    rc = has_budget ? sl_teams_set(sl__admin_db(), name, budget, period, (int64_t) time(NULL)) : 0;
    if (rc == 0 && has_guard) {
        rc = sl_teams_set_guard(sl__admin_db(), name, guard, (int64_t) time(NULL));
    }
    if (rc == -EINVAL) {
        sl__admin_bad(r, NULL, "The team's fields are not valid.");
        return;
    }
    if (rc == 0) {
        rc = sl_db_read(sl__admin_db(), &t);
        if (rc == 0) {
            rc = sl_teams_get(t, name, r->pool, &team);
            sl_db_abort(t);
        }
    }
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: team %s %s set from %s", name,
           has_budget && has_guard ? "budget and guard"
           : has_budget            ? "budget"
                                   : "guard",
           r->client_addr);
    sl__admin_send(r, 200, sl_team_json(team));
}


void
sl__admin_team_delete(sl_http_req_t *r)
{
    sl_str_t rest;
    char *name;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    name = sl__admin_path_name(r, sizeof(ADMIN_TEAMS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        sl__admin_error(r, 404, "not_found", NULL, "No such team.");
        return;
    }
    rc = sl_teams_rm(sl__admin_db(), name);
    if (rc == SL_ENOTFOUND) {
        sl__admin_error(r, 404, "not_found", NULL, "No team \"%s\".", name);
        return;
    }
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: team %s removed from %s", name, r->client_addr);
    sl_http_respond(r, 204, NULL, 0, NULL, 0);
}
