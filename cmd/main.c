/*
 * sluice: the command line. Reads argv, loads the configuration and hands
 * over to the master (serve), or runs a one-shot command (check, reload).
 * The storage commands (keys, teams, secrets, backup, usage, stats) parse
 * their own arguments; they live in the other files of cmd/ (cli.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/process/master.h"
#include "core/process/process.h"
#include "storage/vault.h"

#define SLUICE_VERSION      "0.1.0"
#define SLUICE_DEFAULT_CONF "etc/sluice.yaml"

typedef struct cmd_opts {
    const char *conf_file;
    int single;
    int init_storage; /* serve --init-storage */
} cmd_opts_t;

typedef int (*cmd_fn)(const cmd_opts_t *o);

/* A subcommand that parses its own argv (argv[0] is its name); see cmd/cli.h. */
typedef int (*cmd_main_fn)(int argc, char **argv);

typedef struct cmd {
    const char *name;
    cmd_fn fn;
    cmd_main_fn main; /* set instead of fn */
    const char *usage;
    const char *summary;
} cmd_t;

static int cmd_serve(const cmd_opts_t *o);
static int cmd_check(const cmd_opts_t *o);
static int cmd_reload(const cmd_opts_t *o);
static int cmd_version(const cmd_opts_t *o);
static void cmd_usage(FILE *f);
static void cmd_help(const cmd_t *c);
static int cmd_load(const cmd_opts_t *o, sl_conf_t **conf);

static const cmd_t cmds[] = {
    { "serve", cmd_serve, NULL, "sluice serve [-c FILE] [--single] [--init-storage]",
      "run the gateway in the foreground (master + workers; --single: one process, for "
      "debugging; --init-storage: start an empty store in a 0-byte data.mdb instead of "
      "refusing it)" },
    { "check", cmd_check, NULL, "sluice check [-c FILE]",
      "validate the configuration; exit non-zero with file:line:column on error" },
    { "reload", cmd_reload, NULL, "sluice reload [-c FILE]",
      "validate the configuration, then send SIGHUP to the master named in server.pid_file" },
    { "keys", NULL, sl_cmd_keys, NULL, "create, list, show, revoke and update client keys" },
    { "teams", NULL, sl_cmd_teams, NULL, "set, list and remove team budgets" },
    { "secrets", NULL, sl_cmd_secrets, NULL,
      "store provider keys in the encrypted vault (set, list, rm, rotate-master)" },
    { "usage", NULL, sl_cmd_usage, NULL, "usage and cost from the ledger, grouped" },
    { "stats", NULL, sl_cmd_stats, NULL, "spend, traffic and top keys and models from the ledger" },
    { "budgets", NULL, sl_cmd_budgets, NULL,
      "every key and team budget: spent, reserved by requests in flight, remaining" },
    { "backup", NULL, sl_cmd_backup, NULL, "write a compacted copy of the storage to a file" },
    { "cache", NULL, sl_cmd_cache, NULL,
      "the response cache: stats (entries, hit ratio, savings) and purge" },
    { "pricing", NULL, sl_cmd_pricing, NULL,
      "show the price of a model (file, line, fields); check that every target has one" },
    { "dashboard", NULL, sl_cmd_dashboard, NULL,
      "print a one-time link that opens the dashboard logged in" },
    { "guard", NULL, sl_cmd_guard, NULL,
      "test a guardrail policy on a prompt from stdin, list them" },
    { "version", cmd_version, NULL, "sluice version", "print the version" },
};


static void
cmd_usage(FILE *f)
{
    fprintf(f, "usage: sluice COMMAND [-c FILE] [--help]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].summary);
    }
    fprintf(f, "\n  -c FILE   configuration file (default %s)\n", SLUICE_DEFAULT_CONF);
}


static void
cmd_help(const cmd_t *c)
{
    printf("usage: %s\n\n%s\n\n  -c FILE   configuration file (default %s)\n", c->usage, c->summary,
           SLUICE_DEFAULT_CONF);
}


static int
cmd_load(const cmd_opts_t *o, sl_conf_t **conf)
{
    char err[1024];
    int rc = sl_conf_load(o->conf_file, conf, err, sizeof(err));

    if (rc < 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return rc;
    }
    return 0;
}


static int
cmd_serve(const cmd_opts_t *o)
{
    sl_conf_t *conf;
    int rc;

    if (cmd_load(o, &conf) < 0) {
        return 1;
    }
    conf->storage_init = o->init_storage != 0;
    rc = sl_log_open(conf->error_log, conf->log_level);
    if (rc < 0) {
        fprintf(stderr, "sluice: open() \"%s\" failed: %s\n", conf->error_log, sl_strerror(rc));
        sl_conf_destroy(conf);
        return 1;
    }
    sl_log_set_startup(true);
    rc = sl_access_log_open(conf->access_log);
    if (rc < 0) {
        fprintf(stderr, "sluice: open() \"%s\" failed: %s\n", conf->access_log, sl_strerror(rc));
        sl_conf_destroy(conf);
        return 1;
    }
    if (o->single) {
        return sl_master_run_single(conf);
    }
    return sl_master_run(conf, o->conf_file);
}


static int
cmd_check(const cmd_opts_t *o)
{
    sl_conf_t *conf;

    char err[1024];

    if (cmd_load(o, &conf) < 0) {
        fprintf(stderr, "sluice: configuration file %s test failed\n", o->conf_file);
        return 1;
    }
    if (sl_vault_resolve_conf(conf, NULL, false, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice: %s\nsluice: configuration file %s test failed\n", err,
                o->conf_file);
        sl_conf_destroy(conf);
        return 1;
    }
    fprintf(stderr, "sluice: configuration file %s test is successful\n", o->conf_file);
    sl_conf_destroy(conf);
    return 0;
}


static int
cmd_reload(const cmd_opts_t *o)
{
    sl_conf_t *conf;
    FILE *f;
    long pid = 0;

    if (cmd_load(o, &conf) < 0) {
        fprintf(stderr, "sluice: not reloading: the configuration is invalid\n");
        return 1;
    }
    f = fopen(conf->pid_file, "r");
    if (f == NULL) {
        fprintf(stderr, "sluice: open() \"%s\" failed: %s (is sluice running?)\n", conf->pid_file,
                strerror(errno));
        sl_conf_destroy(conf);
        return 1;
    }
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "sluice: invalid pid in \"%s\"\n", conf->pid_file);
        fclose(f);
        sl_conf_destroy(conf);
        return 1;
    }
    fclose(f);
    if (kill((pid_t) pid, SIGHUP) == -1) {
        fprintf(stderr, "sluice: kill(%ld, SIGHUP) failed: %s\n", pid, strerror(errno));
        sl_conf_destroy(conf);
        return 1;
    }
    fprintf(stderr, "sluice: sent SIGHUP to master process %ld\n", pid);
    sl_conf_destroy(conf);
    return 0;
}


static int
cmd_version(const cmd_opts_t *o)
{
    (void) o;
    printf("sluice %s\n", SLUICE_VERSION);
    return 0;
}


int
main(int argc, char **argv)
{
    cmd_opts_t o = { SLUICE_DEFAULT_CONF, 0, 0 };
    const cmd_t *c = NULL;
    int help = 0;

    /* before any secret is read; `serve` applies server.core_dumps itself */
    (void) sl_process_core_dumps(false);

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0) {
        cmd_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            c = &cmds[i];
        }
    }
    if (c == NULL) {
        fprintf(stderr, "sluice: unknown command \"%s\"\n\n", argv[1]);
        cmd_usage(stderr);
        return 2;
    }
    if (c->main != NULL) {
        return c->main(argc - 1, argv + 1);
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            o.conf_file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            o.conf_file = argv[i] + 9;
        } else if (strcmp(argv[i], "--single") == 0 && c->fn == cmd_serve) {
            o.single = 1;
        } else if (strcmp(argv[i], "--init-storage") == 0 && c->fn == cmd_serve) {
            o.init_storage = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help = 1;
        } else {
            fprintf(stderr, "sluice %s: unknown option \"%s\"\n", c->name, argv[i]);
            fprintf(stderr, "usage: %s\n", c->usage);
            return 2;
        }
    }
    if (help) {
        cmd_help(c);
        return 0;
    }
    return c->fn(&o);
}
