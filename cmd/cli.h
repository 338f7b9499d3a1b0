/*
 * What the files of cmd/ share: the entry points of the subcommands that
 * main.c dispatches to, and small helpers for their options, the storage
 * they open and the money and times they print. cmd/ is the binary and
 * exports nothing; this header only ties its files together.
 *
 * An entry point gets argv from the subcommand's own name on
 * (argv[0] == "keys") and returns the exit status: 0 success, 1 failure
 * (already explained on stderr), 2 usage error. Each takes -c FILE (or
 * --config=FILE) and --help anywhere in its arguments.
 */
#ifndef SL_CMD_CLI_H
#define SL_CMD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/conf/conf.h"
#include "storage/db.h"

#define SL_CLI_DEFAULT_CONF "etc/sluice.yaml"

#define SL_CLI_OK    0
#define SL_CLI_FAIL  1
#define SL_CLI_USAGE 2

int sl_cmd_keys(int argc, char **argv);    /* cmd/keys.c */
int sl_cmd_teams(int argc, char **argv);   /* cmd/teams.c */
int sl_cmd_secrets(int argc, char **argv); /* cmd/secrets.c */
int sl_cmd_backup(int argc, char **argv);  /* cmd/backup.c */
int sl_cmd_usage(int argc, char **argv);   /* cmd/usage.c */
int sl_cmd_stats(int argc, char **argv);   /* cmd/stats.c */
int sl_cmd_budgets(int argc, char **argv); /* cmd/budgets.c */
int sl_cmd_cache(int argc, char **argv);   /* cmd/cache.c */
int sl_cmd_pricing(int argc, char **argv); /* cmd/pricing.c */
int sl_cmd_guard(int argc, char **argv);   /* cmd/guard.c */

int sl_cmd_dashboard(int argc, char **argv); /* cmd/dashboard.c */

/*
 * cmd/guard.c: 0 when name (a --guard value) is a policy of conf or
 * "none" (NULL, a --no-guard, too); else prints why and returns SL_CLI_USAGE.
 */
int sl_cli_check_guard(const char *prog, const sl_conf_t *conf, const char *name);

/*
 * Matches argv[*i] against option name, as "NAME VALUE" or "NAME=VALUE".
 * Returns 1 and *value (advancing *i past a separate value), 0 when argv[*i]
 * is not that option, or -1 after printing "PROG: option NAME needs a value".
 */
int sl_cli_opt(const char *prog, int argc, char **argv, int *i, const char *name,
               const char **value);

/* True when argv[i] is --help or -h. */
bool sl_cli_is_help(const char *arg);

/*
 * Loads conf_file and opens its storage.path with storage.map_size (flags
 * as for sl_db_open). Quiets the log to warnings and worse. On failure
 * prints why, prefixed with prog, and returns SL_CLI_FAIL; else 0 and *db,
 * and the configuration in *conf (free it with sl_conf_destroy) unless conf
 * is NULL.
 */
int sl_cli_open_db(const char *prog, const char *conf_file, unsigned flags, sl_db_t **db,
                   sl_conf_t **conf);

/*
 * For commands that only read the storage at path: LMDB trusts its pages,
 * and a damaged one can crash it (or its caller) while it walks a tree.
 * From here on SIGSEGV, SIGBUS, SIGABRT, SIGFPE and SIGILL print that the
 * storage is damaged and what to do, then exit with SL_CLI_FAIL, instead of
 * dumping core. Call before sl_db_open; nothing may be printed to stdout
 * before the reading is done (a crash leaves no half report behind).
 */
void sl_cli_guard_storage(const char *prog, const char *path);

/* A decimal integer that fills s. Returns 0 or SL_EPARSE. */
int sl_cli_parse_u64(const char *s, uint64_t *v);

/*
 * A text table: headers, rows of cells copied in, printed with columns as
 * wide as their widest cell (counted in UTF-8 characters), two spaces apart.
 * Allocation failure aborts (CLI).
 */
typedef struct sl_cli_table sl_cli_table_t;

sl_cli_table_t *sl_cli_table_create(size_t ncols, const char *const *headers);
void sl_cli_table_add(sl_cli_table_t *t, const char *const *cells);
void sl_cli_table_print(const sl_cli_table_t *t, FILE *f);
void sl_cli_table_destroy(sl_cli_table_t *t);

/*
 * Prints j to stdout (indented, keys in insertion order, newline) and
 * releases it. Returns 0, or SL_CLI_FAIL after saying why.
 */
int sl_cli_print_json(const char *prog, json_t *j);

#endif
