/*
 * sluice teams: set, list and remove team budgets and guardrail policies. A
 * key joins a team with `sluice keys create|update --team NAME`; a team's
 * budget is shared by all of its keys, on top of each key's own, and its
 * policy applies to the keys that have none of their own.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cmd/cli.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "storage/ledger.h"
#include "storage/spend.h"
#include "storage/teams.h"

typedef struct teams_rows {
    sl_cli_table_t *table;
    json_t *array;
    size_t n;
} teams_rows_t;

static void teams_help(FILE *f);
static int teams_set(const char *prog, sl_db_t *db, const char *name, uint64_t budget,
                     sl_budget_period_e period);
static int teams_set_guard(const char *prog, sl_db_t *db, const char *name, const char *guard);
static int teams_list(const char *prog, sl_db_t *db, bool json);
static int teams_list_cb(void *arg, const sl_team_t *team);
static int teams_rm(const char *prog, sl_db_t *db, const char *name);


static void
teams_help(FILE *f)
{
    fprintf(f,
            "usage: sluice teams set NAME [--budget USD --period day|week|month|total]\n"
            "                             [--guard POLICY | --no-guard]\n"
            "       sluice teams list [--json]\n"
            "       sluice teams rm NAME\n"
            "\n"
            "Team budgets, shared by every key created or updated with --team NAME, and\n"
            "team guardrail policies. Removing a team removes its budget and policy only;\n"
            "its keys keep working.\n"
            "\n"
            "  --budget USD    spend limit per period, e.g. 500 or 12.50\n"
            "  --period P      day, week or month (UTC calendar), or total\n"
            "  --guard POLICY  guardrail policy for the team's keys that have none of their\n"
            "                  own (guardrails.policies in the configuration, or none);\n"
            "                  --no-guard removes it\n"
            "  --json          print JSON instead of a table\n"
            "  -c FILE         configuration file (default %s)\n",
            SL_CLI_DEFAULT_CONF);
}


int
sl_cmd_teams(int argc, char **argv)
{
    const char *conf_file = SL_CLI_DEFAULT_CONF, *name = NULL, *v, *sub, *prog, *guard = NULL;
    sl_budget_period_e period = SL_BUDGET_MONTH;
    bool json = false, has_budget = false, has_period = false, has_guard = false;
    sl_conf_t *conf = NULL;
    uint64_t budget = 0;
    sl_db_t *db;
    int rc;

    if (argc < 2 || sl_cli_is_help(argv[1])) {
        teams_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? SL_CLI_USAGE : SL_CLI_OK;
    }
    sub = argv[1];
    if (strcmp(sub, "set") == 0) {
        prog = "sluice teams set";
    } else if (strcmp(sub, "list") == 0) {
        prog = "sluice teams list";
    } else if (strcmp(sub, "rm") == 0) {
        prog = "sluice teams rm";
    } else {
        fprintf(stderr, "sluice teams: unknown subcommand \"%s\"\n\n", sub);
        teams_help(stderr);
        return SL_CLI_USAGE;
    }

    for (int i = 2; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            teams_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(prog, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(prog, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            conf_file = v;
        } else if (strcmp(sub, "list") == 0 && strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(sub, "set") == 0
                   && (rc = sl_cli_opt(prog, argc, argv, &i, "--budget", &v)) != 0) {
            if (rc < 0 || sl_budget_parse_usd(v, &budget) != 0 || budget == 0) {
                if (rc > 0) {
                    fprintf(stderr,
                            "%s: --budget wants a dollar amount above 0 such as 500 or 12.50, "
                            "not \"%s\"\n",
                            prog, v);
                }
                return SL_CLI_USAGE;
            }
            has_budget = true;
        } else if (strcmp(sub, "set") == 0
                   && (rc = sl_cli_opt(prog, argc, argv, &i, "--period", &v)) != 0) {
            if (rc < 0 || sl_budget_period_parse(v, &period) != 0) {
                if (rc > 0) {
                    fprintf(stderr, "%s: --period is day, week, month or total, not \"%s\"\n", prog,
                            v);
                }
                return SL_CLI_USAGE;
            }
            has_period = true;
        } else if (strcmp(sub, "set") == 0
                   && (rc = sl_cli_opt(prog, argc, argv, &i, "--guard", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            guard = v;
            has_guard = true;
        } else if (strcmp(sub, "set") == 0 && strcmp(argv[i], "--no-guard") == 0) {
            guard = NULL;
            has_guard = true;
        } else if (strcmp(sub, "list") != 0 && name == NULL && argv[i][0] != '-') {
            name = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[i]);
            return SL_CLI_USAGE;
        }
    }
    if (strcmp(sub, "list") != 0 && name == NULL) {
        fprintf(stderr, "%s: which team? give its name\n", prog);
        return SL_CLI_USAGE;
    }
    if (strcmp(sub, "set") == 0) {
        if (!sl_team_name_valid(name)) {
            fprintf(stderr,
                    "%s: invalid team name \"%s\": use 1 to 64 letters, digits, '.', '_' or "
                    "'-', starting with a letter or digit\n",
                    prog, name);
            return SL_CLI_USAGE;
        }
        if (has_budget != has_period || (!has_budget && !has_guard)) {
            fprintf(stderr, "%s: give --budget with --period, --guard (or --no-guard), or both\n",
                    prog);
            return SL_CLI_USAGE;
        }
    }

    rc = sl_cli_open_db(prog, conf_file, 0, &db, &conf);
    if (rc != 0) {
        return rc;
    }
    if (has_guard) {
        rc = sl_cli_check_guard(prog, conf, guard);
    }
    sl_conf_destroy(conf);
    if (rc != 0) {
        /* nothing was changed */
    } else if (strcmp(sub, "set") == 0) {
        rc = has_budget ? teams_set(prog, db, name, budget, period) : 0;
        if (rc == 0 && has_guard) {
            rc = teams_set_guard(prog, db, name, guard);
        }
    } else if (strcmp(sub, "list") == 0) {
        rc = teams_list(prog, db, json);
    } else {
        rc = teams_rm(prog, db, name);
    }
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "%s: writing the output failed\n", prog);
        rc = SL_CLI_FAIL;
    }
    sl_db_close(db);
    return rc;
}


static int
teams_set(const char *prog, sl_db_t *db, const char *name, uint64_t budget,
          sl_budget_period_e period)
{
    char usd[40];
    int rc;

    rc = sl_teams_set(db, name, budget, period, (int64_t) time(NULL));
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, name, sl_strerror(rc));
        return SL_CLI_FAIL;
    }
    sl_budget_format_usd(budget, usd, sizeof(usd));
    printf("team %s: budget $%s per %s\n", name, usd,
           period == SL_BUDGET_TOTAL ? "lifetime" : sl_budget_period_name(period));
    return 0;
}


static int
teams_set_guard(const char *prog, sl_db_t *db, const char *name, const char *guard)
{
    int rc = sl_teams_set_guard(db, name, guard, (int64_t) time(NULL));

    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, name, sl_strerror(rc));
        return SL_CLI_FAIL;
    }
    if (guard != NULL) {
        printf("team %s: guardrail policy %s\n", name, guard);
    } else {
        printf("team %s: no guardrail policy of its own\n", name);
    }
    return 0;
}


static int
teams_list(const char *prog, sl_db_t *db, bool json)
{
    static const char *const headers[] = { "TEAM", "BUDGET", "PERIOD", "UPDATED", "GUARD" };
    teams_rows_t rows = { NULL, NULL, 0 };
    sl_pool_t *pool = sl_pool_create(0);
    sl_txn_t *t;
    int rc;

    if (pool == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return SL_CLI_FAIL;
    }
    if (json) {
        rows.array = json_array();
    } else {
        rows.table = sl_cli_table_create(5, headers);
    }
    rc = sl_db_read(db, &t);
    if (rc == 0) {
        rc = sl_teams_list(t, pool, teams_list_cb, &rows);
        sl_db_abort(t);
    }
    sl_pool_destroy(pool);
    if (json) {
        if (sl_cli_print_json(prog, rows.array) != 0) {
            return SL_CLI_FAIL;
        }
    } else {
        if (rows.n > 0) {
            sl_cli_table_print(rows.table, stdout);
        } else if (rc == 0) {
            fprintf(stderr,
                    "%s: no teams yet; add one with sluice teams set NAME --budget USD "
                    "--period month\n",
                    prog);
        }
        sl_cli_table_destroy(rows.table);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: listing the teams failed: %s\n", prog, sl_strerror(rc));
        return SL_CLI_FAIL;
    }
    return 0;
}


static int
teams_list_cb(void *arg, const sl_team_t *team)
{
    teams_rows_t *rows = arg;
    char usd[40], budget[48], updated[32];
    const char *cells[5];

    rows->n++;
    sl_budget_format_usd(team->budget, usd, sizeof(usd));
    sl_ledger_format_time(team->updated, updated, sizeof(updated));
    if (rows->array != NULL) {
        json_array_append_new(rows->array, sl_team_json(team));
        return 0;
    }
    snprintf(budget, sizeof(budget), "$%s", usd);
    cells[0] = team->name;
    cells[1] = team->budget != 0 ? budget : "-";
    cells[2] = team->budget != 0 ? sl_budget_period_name(team->period) : "-";
    cells[3] = updated;
    cells[4] = team->guard != NULL ? team->guard : "-";
    sl_cli_table_add(rows->table, cells);
    return 0;
}


static int
teams_rm(const char *prog, sl_db_t *db, const char *name)
{
    int rc = sl_teams_rm(db, name);

    if (rc == SL_ENOTFOUND) {
        fprintf(stderr, "%s: no team \"%s\"\n", prog, name);
        return SL_CLI_FAIL;
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, name, sl_strerror(rc));
        return SL_CLI_FAIL;
    }
    printf("team %s removed (its keys keep working, without a team budget or policy)\n", name);
    return 0;
}
