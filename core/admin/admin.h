/*
 * The admin API, served on the admin listener (server.admin_listen) by every
 * worker: client keys, teams, vault secrets (write-only values), usage
 * reports and reload. Every request needs auth.admin_key, as
 * "Authorization: Bearer KEY" or "x-api-key: KEY", compared in constant
 * time; without an admin key configured every request is refused (401).
 *
 *   GET    /admin/keys                   list (never a key's text)
 *   POST   /admin/keys                   create: 201 with the key's text, once
 *   GET    /admin/keys/{id|name}         one key
 *   PATCH  /admin/keys/{id|name}         change fields (null clears expires,
 *                                        budget_usd, team, models, metadata)
 *   DELETE /admin/keys/{id|name}         revoke (200 with the key)
 *   POST   /admin/keys/{id|name}/revoke  the same
 *   GET    /admin/usage?since=7d&by=key  the ledger grouped (sluice usage)
 *   GET    /admin/teams                  list
 *   GET    /admin/teams/{name}           one team
 *   PUT    /admin/teams/{name}           {budget_usd, period}: create or replace
 *   DELETE /admin/teams/{name}           remove the budget (204)
 *   GET    /admin/secrets                names and dates, never values
 *   PUT    /admin/secrets/{name}         {"value": "..."}: seal (204)
 *   DELETE /admin/secrets/{name}         remove (204)
 *   POST   /admin/reload                 SIGHUP to the master (202)
 *   GET    /admin/targets                breakers, latency estimates, in-flight
 *                                        counts, headroom, credentials cooling down
 *   GET    /admin/cache?since=7d         the response cache: entries, bytes, hits,
 *                                        misses, hit ratio, savings (sluice cache stats)
 *   DELETE /admin/cache?model=M&key=K    purge (neither: all): {"deleted": N}
 *   GET    /admin/stats?since=24h&bucket=hour  the dashboard's time series
 *   GET    /admin/budgets                budgets, spend this period, projection
 *   GET    /admin/tail?after=SEQ         recent requests (metadata only)
 *   GET    /admin/alerts                 recent alerts and their delivery
 *   GET    /admin/session                who is asking; a session's CSRF token
 *   POST   /admin/session                {"admin_key"}: a dashboard login (cookie)
 *   DELETE /admin/session                logout
 *   GET    /, /assets/NAME, /login?token=  the dashboard and its one-time links
 *                                        (core/admin/admin_dash.c: no key needed)
 *
 * Besides the admin key, a dashboard session cookie authenticates; with
 * it, a request that changes something also needs X-CSRF-Token and the
 * dashboard's own Origin (403 otherwise).
 *
 * Money in request bodies (budget_usd): a decimal string, parsed exactly
 * ("12.5", "0.000000001": at most 9 decimals), or a JSON number that is
 * an integer, or a real with at most 6 decimals and 15 significant digits
 * whose decimal text reads back as the same double (12.5, 0.25); anything
 * finer must be a string, since a JSON real reaches us as a double. Money
 * in answers is always an exact decimal string. Expiry (expires): a
 * duration from now ("30d", "12h"), a UTC date ("YYYY-MM-DD", valid
 * through that day), unix seconds as an integer, or null for never.
 *
 * Answers are JSON; errors use OpenAI's shape with 400 (bad JSON or field,
 * with param), 401, 404, 405 (with Allow), 409 (name taken, or reload in
 * --single mode), 500 (storage) or 503 (no vault master key).
 *
 * Worker context. LMDB transactions are short and end before a handler
 * returns; the usage report aggregates in the libuv thread pool.
 */
#ifndef SL_CORE_ADMIN_ADMIN_H
#define SL_CORE_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "core/conf/conf.h"
#include "core/http/http_server.h"
#include "storage/db.h"

typedef struct sl_admin sl_admin_t;

/*
 * Creates the admin API state for this worker on loop: conf and db are
 * borrowed and must outlive it (db may be NULL: storage routes then answer
 * 503). Opens the vault with the master key from SLUICE_MASTER_KEY or the
 * key file (storage.master_key_file, else $SLUICE_MASTER_KEY_FILE); a key
 * that is present but unusable is logged and secrets answer 503. has_master
 * is false in --single mode (no process to reload). The handlers of
 * sl_admin_routes() use the admin created last. Returns NULL on failure
 * (logged). Worker context, after the DRBG is seeded.
 */
sl_admin_t *sl_admin_create(uv_loop_t *loop, const sl_conf_t *conf, sl_db_t *db, bool has_master);

/* Frees the admin state (wiping the vault key). No request may be in flight. NULL is a no-op. */
void sl_admin_destroy(sl_admin_t *a);

/* The route table for sl_http_server_create; static, *n entries. */
const sl_http_route_t *sl_admin_routes(size_t *n);

#endif
