/*
 * Teams: a name that keys share (sl_key_t.team), an optional budget that
 * all of them draw from together and an optional guardrail policy
 * (core/gateway/guard.h) their requests get unless a key has its own, on
 * storage/db.h (SL_DBI_TEAMS: name -> record). A key may name a team that
 * has no record; it then has no team budget and no team policy. Removing a
 * team removes its record only: keys keep the name.
 *
 * Records are versioned and checksummed like key records; one that does
 * not decode is logged and reported as SL_ESTORE.
 */
#ifndef SL_STORAGE_TEAMS_H
#define SL_STORAGE_TEAMS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/base/pool.h"
#include "storage/db.h"
#include "storage/spend.h"

typedef struct sl_team {
    const char *name;          /* in the caller's pool */
    uint64_t budget;           /* nano-USD per period; 0: none */
    sl_budget_period_e period; /* meaningful when budget is not 0 */
    int64_t created;           /* unix seconds */
    int64_t updated;
    const char *guard; /* guardrail policy name or "none"; NULL: unset */
} sl_team_t;

/* Same rule as key names: 1..64 of [A-Za-z0-9._-], starting with a letter or digit. */
bool sl_team_name_valid(const char *name);

/*
 * Creates or replaces the team's budget in one write transaction (its guard
 * stays). Returns 0, -EINVAL (name or period; not logged) or SL_ESTORE.
 * CLI or admin context.
 */
int sl_teams_set(sl_db_t *db, const char *name, uint64_t budget, sl_budget_period_e period,
                 int64_t now);

/*
 * Sets (guard a policy name) or clears (NULL or "") the team's guardrail
 * policy, creating the team without a budget when it has no record. The
 * name is checked for syntax only (the configuration knows the policies).
 * Returns 0, -EINVAL or SL_ESTORE. CLI or admin context.
 */
int sl_teams_set_guard(sl_db_t *db, const char *name, const char *guard, int64_t now);

/* Returns 0 and *team (in pool), SL_ENOTFOUND or SL_ESTORE. Read or write transaction. */
int sl_teams_get(sl_txn_t *t, const char *name, sl_pool_t *pool, sl_team_t **team);

/*
 * Calls cb for every team in name order (team in pool); cb returns 0 to go
 * on, 1 to stop, or a negative code (returned). Records that do not decode
 * are logged and skipped, then SL_ESTORE is returned. Read transaction.
 */
int sl_teams_list(sl_txn_t *t, sl_pool_t *pool, int (*cb)(void *arg, const sl_team_t *team),
                  void *arg);

/* Removes the team's record. Returns 0, SL_ENOTFOUND or SL_ESTORE. */
int sl_teams_rm(sl_db_t *db, const char *name);

/*
 * The team as `sluice teams list --json` and the admin API show it: team,
 * budget_usd (decimal string; null without a budget), budget_nano_usd,
 * period (null without a budget), updated (UTC time), guard (or null).
 * Returns a new reference, or NULL when out of memory. Any context.
 */
json_t *sl_team_json(const sl_team_t *team);

#endif
