/*
 * Module-private declarations of the admin API (core/admin/admin*.c): the
 * helpers every handler answers with and the handlers the route table in
 * admin.c names. Nothing outside core/admin/ includes it.
 *
 *   admin.c          create and destroy, the route table, authentication,
 *                    the answers (errors, JSON, lists), request bodies, path
 *                    names, money in bodies, and POST /admin/reload
 *   admin_keys.c     /admin/keys: list, create, show, update, revoke
 *   admin_teams.c    /admin/teams: list, show, set a budget, remove it
 *   admin_secrets.c  /admin/secrets: the vault's names, seal, remove
 *   admin_usage.c    what the gateway did and does: /admin/usage (the
 *                    ledger, grouped in the thread pool), /admin/targets
 *                    and /metrics
 *   admin_cache.c    /admin/cache: the response cache's figures, purges
 *   admin_dash.c     the dashboard page, its login link and sessions
 *   admin_stats.c    what the dashboard reads: stats, budgets, tail, alerts
 *
 * Worker context, like core/admin/admin.h. Every handler starts with
 * sl__admin_auth() and answers exactly once; the helpers that answer say so.
 */
#ifndef SL_CORE_ADMIN_ADMIN_INTERNAL_H
#define SL_CORE_ADMIN_ADMIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/admin/admin.h"
#include "core/base/str.h"
#include "core/http/http_server.h"
#include "storage/db.h"
#include "storage/vault.h"

#define ADMIN_KEYS_PREFIX    "/admin/keys/"
#define ADMIN_TEAMS_PREFIX   "/admin/teams/"
#define ADMIN_SECRETS_PREFIX "/admin/secrets/"
#define ADMIN_MSG_MAX        512

/*
 * Checks the admin key; answers 401 (or 503 before sl_admin_create) itself
 * and returns false. The key given is never echoed or logged.
 */
bool sl__admin_auth(sl_http_req_t *r);

/* This worker has storage open; else answers 503 and returns false. */
bool sl__admin_has_db(sl_http_req_t *r);

/*
 * The store and the vault of the admin created last; valid once
 * sl__admin_auth() returned true. The vault is NULL when the master key
 * given could not be used.
 */
sl_db_t *sl__admin_db(void);
sl_vault_t *sl__admin_vault(void);

/* An error in OpenAI's shape; the type follows from the status. Finishes r. */
void sl__admin_error(sl_http_req_t *r, int status, const char *code, const char *param,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* 400 for a bad field (param) or body (param NULL). Finishes r. */
void sl__admin_bad(sl_http_req_t *r, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 500: the store said SL_ESTORE (or worse) and logged why. Finishes r. */
void sl__admin_store_error(sl_http_req_t *r);

/* Sends j (a reference this call steals; NULL: 500) as the JSON body. Finishes r. */
void sl__admin_send(sl_http_req_t *r, int status, json_t *j);

/* Sends len bytes of JSON text at body, which stays the caller's (to wipe). Finishes r. */
void sl__admin_send_text(sl_http_req_t *r, int status, const char *body, size_t len);

/* {"object":"list","data":data}, 200. Steals data (NULL: 500). Finishes r. */
void sl__admin_send_list(sl_http_req_t *r, json_t *data);

/*
 * The request body as a JSON object (the caller owns the reference);
 * answers 400 itself and returns NULL when it is not one.
 */
json_t *sl__admin_body(sl_http_req_t *r);

/*
 * 400 for a field or parameter (what: "field", "query parameter") this
 * endpoint does not take; echoed only when it looks like a name. Finishes r.
 */
void sl__admin_unknown_field(sl_http_req_t *r, const char *field, const char *what);

/*
 * The {name} path segment after the first prefix_len bytes, copied into
 * r->pool, and in *rest what follows it ("" or e.g. "/revoke"). NULL when
 * the segment is empty, too long or not made of [A-Za-z0-9._-]. Answers
 * nothing.
 */
char *sl__admin_path_name(sl_http_req_t *r, size_t prefix_len, sl_str_t *rest);

/*
 * budget_usd as nano-USD, exactly: a decimal string, a JSON integer (whole
 * dollars) or a JSON real that is the decimal the client wrote (see admin.h).
 * Returns 0 or SL_EPARSE; answers nothing.
 */
int sl__admin_json_usd(const json_t *v, uint64_t *nusd);

/* admin_keys.c: the /admin/keys routes. */
void sl__admin_keys_list(sl_http_req_t *r);
void sl__admin_keys_create(sl_http_req_t *r);
void sl__admin_key_get(sl_http_req_t *r);
void sl__admin_key_patch(sl_http_req_t *r);
void sl__admin_key_delete(sl_http_req_t *r);
void sl__admin_key_post(sl_http_req_t *r);

/* admin_teams.c: the /admin/teams routes. */
void sl__admin_teams_list(sl_http_req_t *r);
void sl__admin_team_get(sl_http_req_t *r);
void sl__admin_team_put(sl_http_req_t *r);
void sl__admin_team_delete(sl_http_req_t *r);

/* admin_secrets.c: the /admin/secrets routes. */
void sl__admin_secrets_list(sl_http_req_t *r);
void sl__admin_secret_put(sl_http_req_t *r);
void sl__admin_secret_delete(sl_http_req_t *r);

/*
 * admin_dash.c: the dashboard's files, its login link, sessions. A request
 * with a session cookie and no admin key is authenticated by
 * sl__admin_session_auth (which answers 401/403 itself, CSRF included).
 */
bool sl__admin_has_cookie(sl_http_req_t *r);
bool sl__admin_session_auth(sl_http_req_t *r);
void sl__admin_dash_asset(sl_http_req_t *r);
void sl__admin_dash_login(sl_http_req_t *r);
void sl__admin_session_get(sl_http_req_t *r);
void sl__admin_session_post(sl_http_req_t *r);
void sl__admin_session_delete(sl_http_req_t *r);

/* admin_stats.c: what the dashboard reads: /admin/stats, /admin/budgets, /admin/tail,
 * /admin/alerts. */
void sl__admin_stats(sl_http_req_t *r);
void sl__admin_budgets(sl_http_req_t *r);
void sl__admin_tail(sl_http_req_t *r);
void sl__admin_alerts(sl_http_req_t *r);

/*
 * Splits r's query into the n parameters names allows; values[i] is a copy
 * in r->pool, or stays as it was when absent. Answers 400 itself and
 * returns -EINVAL for a parameter it does not know. (admin_usage.c)
 */
int sl__admin_query(sl_http_req_t *r, const char *const *names, const char **values, size_t n);

/* admin_usage.c: GET /admin/usage, /admin/targets and /metrics. */
void sl__admin_usage(sl_http_req_t *r);
void sl__admin_targets(sl_http_req_t *r);
void sl__admin_metrics(sl_http_req_t *r);

/* admin_cache.c: GET and DELETE /admin/cache. */
void sl__admin_cache_get(sl_http_req_t *r);
void sl__admin_cache_delete(sl_http_req_t *r);

#endif
