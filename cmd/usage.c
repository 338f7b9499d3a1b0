/*
 * sluice usage: the ledger grouped by key, team, model, provider, day or
 * request over a recent window, as a table, CSV or JSON. Opens the LMDB
 * environment read-only, so it runs beside a serving gateway; money comes out
 * of the ledger as integer nano-USD and is printed as an exact decimal string.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cmd/cli.h"
#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/gateway/pricing.h"
#include "storage/db.h"
#include "storage/ledger.h"

#define USAGE_DEFAULT_CONF  "etc/sluice.yaml"
#define USAGE_DEFAULT_SINCE "7d"
#define USAGE_NS            1000000000LL
#define USAGE_COLS          10
#define USAGE_CELL          (SL_LEDGER_STR_MAX + 1)

typedef enum usage_format {
    USAGE_TABLE = 0,
    USAGE_CSV,
    USAGE_JSON,
} usage_format_e;

typedef struct usage_opts {
    const char *conf_file;
    const char *since;
    int64_t since_ns; /* 0: everything */
    sl_ledger_by_e by;
    usage_format_e format;
} usage_opts_t;

int sl_cmd_usage(int argc, char **argv);

static int usage_parse_args(int argc, char **argv, usage_opts_t *o);
static const char *usage_optarg(int argc, char **argv, int *i, const char *name);
static void usage_help(FILE *f);
static int usage_run(const usage_opts_t *o);
static void usage_print_table(const sl_ledger_agg_t *a, bool flags);
static void usage_print_csv(const sl_ledger_agg_t *a, bool flags);
static int usage_print_json(const sl_ledger_agg_t *a);
static void usage_cells(const sl_ledger_group_t *g, bool table, char cells[USAGE_COLS][USAGE_CELL]);
static void usage_pad_usd(char *usd);
static void usage_table_cells(const sl_ledger_agg_t *a, size_t i,
                              char cells[USAGE_COLS][USAGE_CELL]);
static void usage_csv_field(const char *s);


/*
 * Entry point: argv[0] is "usage", the rest are its options. Returns the
 * process exit status: 0, 1 on failure, 2 on a usage error.
 */
int
sl_cmd_usage(int argc, char **argv)
{
    usage_opts_t o;
    int rc;

    rc = usage_parse_args(argc, argv, &o);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    return usage_run(&o);
}


/* 0 to run, 2 on a bad option, -1 after --help. */
static int
usage_parse_args(int argc, char **argv, usage_opts_t *o)
{
    struct timespec ts;
    const char *v;

    o->conf_file = USAGE_DEFAULT_CONF;
    o->since = USAGE_DEFAULT_SINCE;
    o->by = SL_LEDGER_BY_KEY;
    o->format = USAGE_TABLE;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage_help(stdout);
            return -1;
        }
        if ((v = usage_optarg(argc, argv, &i, "-c")) != NULL
            || (v = usage_optarg(argc, argv, &i, "--config")) != NULL) {
            o->conf_file = v;
        } else if ((v = usage_optarg(argc, argv, &i, "--since")) != NULL) {
            o->since = v;
        } else if ((v = usage_optarg(argc, argv, &i, "--by")) != NULL) {
            if (sl_ledger_by_parse(v, &o->by) != 0) {
                fprintf(stderr,
                        "sluice usage: invalid --by \"%s\" (key, team, model, provider, "
                        "day or request)\n",
                        v);
                return 2;
            }
        } else if ((v = usage_optarg(argc, argv, &i, "--format")) != NULL) {
            if (strcmp(v, "table") == 0) {
                o->format = USAGE_TABLE;
            } else if (strcmp(v, "csv") == 0) {
                o->format = USAGE_CSV;
            } else if (strcmp(v, "json") == 0) {
                o->format = USAGE_JSON;
            } else {
                fprintf(stderr, "sluice usage: invalid --format \"%s\" (table, csv or json)\n", v);
                return 2;
            }
        } else if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0
                   || strcmp(argv[i], "--since") == 0 || strcmp(argv[i], "--by") == 0
                   || strcmp(argv[i], "--format") == 0) {
            fprintf(stderr, "sluice usage: option %s needs a value\n", argv[i]);
            return 2;
        } else {
            fprintf(stderr, "sluice usage: unknown option \"%s\"\n", argv[i]);
            usage_help(stderr);
            return 2;
        }
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    if (sl_ledger_parse_since(o->since, (int64_t) ts.tv_sec * USAGE_NS + ts.tv_nsec, &o->since_ns)
        != 0) {
        fprintf(stderr,
                "sluice usage: invalid --since \"%s\" (a duration such as 24h, 7d, 30d, or "
                "all)\n",
                o->since);
        return 2;
    }
    return 0;
}


/* The value of "NAME VALUE" or "NAME=VALUE" at argv[*i], or NULL when argv[*i] is not NAME. */
static const char *
usage_optarg(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);

    if (strcmp(argv[*i], name) == 0) {
        if (*i + 1 >= argc) {
            return NULL;
        }
        return argv[++*i];
    }
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
        return argv[*i] + n + 1;
    }
    return NULL;
}


static void
usage_help(FILE *f)
{
    fprintf(f,
            "usage: sluice usage [-c FILE] [--since 7d] [--by "
            "key|team|model|provider|day|request|endpoint]\n"
            "                    [--format table|csv|json]\n"
            "\n"
            "Requests, errors, tokens and cost from the usage ledger, one row per group.\n"
            "\n"
            "  -c FILE    configuration file (default %s)\n"
            "  --since D  window: a duration back from now (24h, 7d, 30d) or all (default %s)\n"
            "  --by G     group by key (default), team, model, provider, day (UTC),\n"
            "             endpoint or request (id: the request id, name: the model; a last\n"
            "             column FLAGS: worker_died when the master wrote the row for a\n"
            "             worker that died mid-request, estimated, stream, ...)\n"
            "  --format F table (default), csv, or json (an array of objects)\n"
            "\n"
            "cost_usd is exact (from integer nano-USD); requests to models without a price\n"
            "count as 0 and are reported on stderr.\n",
            USAGE_DEFAULT_CONF, USAGE_DEFAULT_SINCE);
}


static int
usage_run(const usage_opts_t *o)
{
    char err[1024];
    sl_ledger_agg_t *agg = NULL;
    sl_conf_t *conf;
    sl_db_t *db;
    sl_txn_t *t;
    int rc, status = 1;

    rc = sl_conf_load_flags(o->conf_file, SL_CONF_NO_SECRETS, &conf, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    sl_cli_guard_storage("sluice usage", conf->storage_path);
    rc = sl_db_open(conf->storage_path, conf->storage_map_size, SL_DB_RDONLY, &db);
    if (rc != 0) {
        fprintf(stderr, "sluice usage: cannot open the storage at \"%s\": %s\n", conf->storage_path,
                sl_strerror(rc));
        goto out_conf;
    }
    rc = sl_db_read(db, &t);
    if (rc == 0) {
        rc = sl_ledger_aggregate(t, o->since_ns, 0, o->by, &agg);
        sl_db_abort(t);
    }
    if (rc != 0) {
        fprintf(stderr, "sluice usage: reading the ledger failed: %s\n", sl_strerror(rc));
        goto out_db;
    }

    switch (o->format) {
    case USAGE_TABLE:
        usage_print_table(agg, o->by == SL_LEDGER_BY_REQUEST);
        break;
    case USAGE_CSV:
        usage_print_csv(agg, o->by == SL_LEDGER_BY_REQUEST);
        break;
    case USAGE_JSON:
        if (usage_print_json(agg) != 0) {
            fprintf(stderr, "sluice usage: out of memory\n");
            goto out_agg;
        }
        break;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sluice usage: writing the output failed\n");
        goto out_agg;
    }
    if (agg->total.unpriced > 0) {
        fprintf(stderr, "sluice usage: %llu request(s) had no price and count as 0 USD\n",
                (unsigned long long) agg->total.unpriced);
    }
    if (agg->skipped > 0) {
        fprintf(stderr,
                "sluice usage: %llu damaged ledger row(s) skipped, so the totals above leave "
                "them out: the file \"%s/data.mdb\" is damaged. Stop sluice, keep a copy of the "
                "file and restore the last backup (see \"Backup and recovery\" in README.md)\n",
                (unsigned long long) agg->skipped, conf->storage_path);
        goto out_agg;
    }
    status = 0;

out_agg:
    sl_ledger_agg_free(agg);
out_db:
    sl_db_close(db);
out_conf:
    sl_conf_destroy(conf);
    return status;
}


/*
 * With flags (--by request), two last columns: FLAGS (worker_died,
 * estimated, stream, ...) and GUARD (the guardrail decisions).
 */
static void
usage_print_table(const sl_ledger_agg_t *a, bool flags)
{
    static const char *const head[USAGE_COLS] = {
        "ID",
        "NAME",
        "REQUESTS",
        "ERRORS",
        "PROMPT_TOKENS",
        "COMPLETION_TOKENS",
        "CACHED_TOKENS",
        "COST_USD",
        "CACHE_HITS",
        "SAVED_USD",
    };
    char cells[USAGE_COLS][USAGE_CELL], names[96];
    int width[USAGE_COLS], fwidth = 5;

    for (size_t c = 0; c < USAGE_COLS; c++) {
        width[c] = (int) strlen(head[c]);
    }
    for (size_t i = 0; flags && i < a->ngroups; i++) {
        sl_ledger_flag_names(a->groups[i].flags, names, sizeof(names));
        if ((int) strlen(names) > fwidth) {
            fwidth = (int) strlen(names);
        }
    }
    for (size_t i = 0; i <= a->ngroups; i++) {
        usage_table_cells(a, i, cells);
        for (size_t c = 0; c < USAGE_COLS; c++) {
            if ((int) strlen(cells[c]) > width[c]) {
                width[c] = (int) strlen(cells[c]);
            }
        }
    }

    /* text columns left-aligned, numbers right-aligned */
    printf("%-*s  %-*s", width[0], head[0], width[1], head[1]);
    for (size_t c = 2; c < USAGE_COLS; c++) {
        printf("  %*s", width[c], head[c]);
    }
    if (flags) {
        printf("  %-*s  GUARD", fwidth, "FLAGS");
    }
    printf("\n");
    for (size_t i = 0; i <= a->ngroups; i++) {
        usage_table_cells(a, i, cells);
        printf("%-*s  %-*s", width[0], cells[0], width[1], cells[1]);
        for (size_t c = 2; c < USAGE_COLS; c++) {
            printf("  %*s", width[c], cells[c]);
        }
        if (flags && i < a->ngroups) {
            const char *guard = a->groups[i].guard;

            sl_ledger_flag_names(a->groups[i].flags, names, sizeof(names));
            printf("  %-*s  ", fwidth, names[0] != '\0' ? names : "-");
            printf("%s", guard != NULL && guard[0] != '\0' ? guard : "-");
        }
        printf("\n");
    }
}


/*
 * Row i of the table, the total after the last group (no name). Costs are
 * padded to 9 decimals so the decimal points line up.
 */
static void
usage_table_cells(const sl_ledger_agg_t *a, size_t i, char cells[USAGE_COLS][USAGE_CELL])
{
    usage_cells(i < a->ngroups ? &a->groups[i] : &a->total, true, cells);
    if (i == a->ngroups) {
        cells[1][0] = '\0';
    }
    usage_pad_usd(cells[7]);
    usage_pad_usd(cells[9]);
}


/* Pads an amount to 9 decimals with spaces, so the decimal points line up. */
static void
usage_pad_usd(char *usd)
{
    char *dot = strchr(usd, '.');
    size_t len = strlen(usd);

    while (dot != NULL && len - (size_t) (dot - usd) - 1 < 9 && len + 1 < USAGE_CELL) {
        usd[len++] = ' ';
        usd[len] = '\0';
    }
}


static void
usage_print_csv(const sl_ledger_agg_t *a, bool flags)
{
    char cells[USAGE_COLS][USAGE_CELL], names[96];

    printf("id,name,requests,errors,prompt_tokens,completion_tokens,cached_tokens,cost_usd,"
           "cache_hits,saved_usd%s\n",
           flags ? ",flags,guard" : "");
    for (size_t i = 0; i < a->ngroups; i++) {
        usage_cells(&a->groups[i], false, cells);
        usage_csv_field(cells[0]);
        printf(",");
        usage_csv_field(cells[1]);
        for (size_t c = 2; c < USAGE_COLS; c++) {
            printf(",%s", cells[c]);
        }
        if (flags) {
            sl_ledger_flag_names(a->groups[i].flags, names, sizeof(names));
            printf(",");
            usage_csv_field(names);
            printf(",");
            usage_csv_field(a->groups[i].guard != NULL ? a->groups[i].guard : "");
        }
        printf("\n");
    }
}


static int
usage_print_json(const sl_ledger_agg_t *a)
{
    const sl_ledger_group_t *g;
    json_t *arr, *obj;
    int rc = 0;

    arr = json_array();
    if (arr == NULL) {
        return -1;
    }
    for (size_t i = 0; i < a->ngroups && rc == 0; i++) {
        g = &a->groups[i];
        obj = sl_ledger_group_json(g);
        if (obj == NULL || json_array_append_new(arr, obj) != 0) {
            rc = -1;
        }
    }
    if (rc == 0 && json_dumpf(arr, stdout, JSON_INDENT(2)) != 0) {
        rc = -1;
    }
    if (rc == 0) {
        printf("\n");
    }
    json_decref(arr);
    return rc;
}


/*
 * One group as text: id, name, five counts, cost, cache hits, savings. Control characters and
 * invalid UTF-8 in names become '?' (a model name comes from a client and
 * must not drive the terminal); in a table "" shows as "-".
 */
static void
usage_cells(const sl_ledger_group_t *g, bool table, char cells[USAGE_COLS][USAGE_CELL])
{
    const char *id = g->id, *name = g->name;

    if (table && id[0] == '\0') {
        id = "-";
    }
    if (table && name[0] == '\0') {
        name = "-";
    }
    sl_ledger_utf8_clean(id, true, cells[0], sizeof(cells[0]));
    sl_ledger_utf8_clean(name, true, cells[1], sizeof(cells[1]));
    snprintf(cells[2], sizeof(cells[2]), "%llu", (unsigned long long) g->requests);
    snprintf(cells[3], sizeof(cells[3]), "%llu", (unsigned long long) g->errors);
    snprintf(cells[4], sizeof(cells[4]), "%llu", (unsigned long long) g->prompt_tokens);
    snprintf(cells[5], sizeof(cells[5]), "%llu", (unsigned long long) g->completion_tokens);
    snprintf(cells[6], sizeof(cells[6]), "%llu", (unsigned long long) g->cached_tokens);
    sl_pricing_format_usd(g->cost_nusd, cells[7], sizeof(cells[7]));
    snprintf(cells[8], sizeof(cells[8]), "%llu", (unsigned long long) g->cache_hits);
    sl_pricing_format_usd(g->saved_nusd, cells[9], sizeof(cells[9]));
}


/* RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. */
static void
usage_csv_field(const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            putchar('"');
        }
        putchar(*s);
    }
    putchar('"');
}
