/*
 * sluice budgets: every key and team budget with its current period's
 * bucket: spent, held by requests in flight (reserved) and left. Read-only
 * and beside a serving gateway, like `sluice usage`. Reserved money that
 * stays when no request is in flight would be a leak: this is where an
 * operator (and the chaos test) sees that it is back to 0.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "storage/keys.h"
#include "storage/spend.h"
#include "storage/teams.h"

#define BUDGETS_PROG "sluice budgets"

typedef struct budgets_out {
    sl_txn_t *t;
    time_t now;
    json_t *array;         /* --json */
    sl_cli_table_t *table; /* otherwise */
    int rc;
} budgets_out_t;

static void budgets_help(FILE *f);
static void budgets_add(budgets_out_t *o, const char *kind, const char *id, const char *name,
                        uint64_t budget, sl_budget_period_e period);
static int budgets_on_key(void *arg, const sl_key_t *key);
static int budgets_on_team(void *arg, const sl_team_t *team);


static void
budgets_help(FILE *f)
{
    fprintf(f,
            "usage: sluice budgets [-c FILE] [--json]\n"
            "\n"
            "Every key and team budget and its current period: spent, reserved by requests\n"
            "in flight, and remaining (exact USD). Reserved goes back to 0 when nothing is\n"
            "in flight, also after a worker was killed.\n"
            "\n"
            "  -c FILE   configuration file (default %s)\n"
            "  --json    an array of {kind, id, name, budget_usd, period, spent_usd,\n"
            "            reserved_usd, remaining_usd, spent_nano_usd, reserved_nano_usd}\n",
            SL_CLI_DEFAULT_CONF);
}


int
sl_cmd_budgets(int argc, char **argv)
{
    static const char *const headers[] = { "KIND",   "ID",    "NAME",     "PERIOD",
                                           "BUDGET", "SPENT", "RESERVED", "REMAINING" };
    const char *conf_file = SL_CLI_DEFAULT_CONF, *v;
    budgets_out_t o;
    sl_pool_t *pool;
    sl_conf_t *conf;
    sl_db_t *db;
    bool json = false;
    int rc, status = SL_CLI_FAIL;

    for (int i = 1; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            budgets_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(BUDGETS_PROG, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(BUDGETS_PROG, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            conf_file = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "%s: unknown option \"%s\"\n", BUDGETS_PROG, argv[i]);
            budgets_help(stderr);
            return SL_CLI_USAGE;
        }
    }
    if (sl_cli_open_db(BUDGETS_PROG, conf_file, SL_DB_RDONLY, &db, &conf) != 0) {
        return SL_CLI_FAIL;
    }
    pool = sl_pool_create(0);
    memset(&o, 0, sizeof(o));
    o.now = time(NULL);
    if (json) {
        o.array = json_array();
    } else {
        o.table = sl_cli_table_create(8, headers);
    }
    rc = pool != NULL ? sl_db_read(db, &o.t) : -ENOMEM;
    if (rc == 0) {
        rc = sl_keys_list(o.t, pool, budgets_on_key, &o);
        if (rc == 0) {
            rc = sl_teams_list(o.t, pool, budgets_on_team, &o);
        }
        sl_db_abort(o.t);
    }
    if (rc == 0) {
        rc = o.rc;
    }
    if (rc != 0) {
        fprintf(stderr, "%s: reading the budgets failed: %s\n", BUDGETS_PROG, sl_strerror(rc));
        json_decref(o.array);
    } else if (json) {
        status = sl_cli_print_json(BUDGETS_PROG, o.array);
    } else {
        sl_cli_table_print(o.table, stdout);
        status = SL_CLI_OK;
    }
    sl_cli_table_destroy(o.table);
    sl_pool_destroy(pool);
    sl_db_close(db);
    sl_conf_destroy(conf);
    return status;
}


static void
budgets_add(budgets_out_t *o, const char *kind, const char *id, const char *name, uint64_t budget,
            sl_budget_period_e period)
{
    char usd[32], spent[32], reserved[32], left[32];
    const char *cells[8];
    json_t *j;

    j = sl_spend_json(o->t, kind[0] == 't' ? SL_BUDGET_TEAM : SL_BUDGET_KEY, id, budget, period,
                      o->now);
    if (j == NULL) {
        o->rc = SL_ESTORE;
        return;
    }
    sl_budget_format_usd(budget, usd, sizeof(usd));
    if (o->array != NULL) {
        json_object_set_new(j, "kind", json_string(kind));
        json_object_set_new(j, "id", json_string(id));
        json_object_set_new(j, "name", json_string(name));
        json_object_set_new(j, "budget_usd", json_string(usd));
        json_array_append_new(o->array, j);
        return;
    }
    snprintf(spent, sizeof(spent), "%s", json_string_value(json_object_get(j, "spent_usd")));
    snprintf(reserved, sizeof(reserved), "%s",
             json_string_value(json_object_get(j, "reserved_usd")));
    snprintf(left, sizeof(left), "%s", json_string_value(json_object_get(j, "remaining_usd")));
    cells[0] = kind;
    cells[1] = id;
    cells[2] = name;
    cells[3] = sl_budget_period_name(period);
    cells[4] = usd;
    cells[5] = spent;
    cells[6] = reserved;
    cells[7] = left;
    sl_cli_table_add(o->table, cells);
    json_decref(j);
}


static int
budgets_on_key(void *arg, const sl_key_t *key)
{
    if (key->budget != 0) {
        budgets_add(arg, "key", key->id, key->name, key->budget, key->period);
    }
    return 0;
}


static int
budgets_on_team(void *arg, const sl_team_t *team)
{
    if (team->budget != 0) {
        budgets_add(arg, "team", team->name, team->name, team->budget, team->period);
    }
    return 0;
}
