/*
 * sluice keys: create, list, show, revoke and update client keys. A new
 * key's text is printed once, as the last line of stdout (or in the JSON
 * object with --json), and is never stored or shown again: list and show
 * give its last four characters only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cmd/cli.h"
#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "storage/keys.h"
#include "storage/ledger.h"
#include "storage/spend.h"

#define KEYS_PROG "sluice keys"

typedef enum keys_sub {
    KEYS_CREATE = 0,
    KEYS_LIST,
    KEYS_SHOW,
    KEYS_REVOKE,
    KEYS_UPDATE,
} keys_sub_e;

typedef struct keys_opts {
    keys_sub_e sub;
    const char *prog; /* "sluice keys create" */
    const char *conf_file;
    const char *target; /* ID|NAME of show, revoke, update */
    bool json;
    sl_key_spec_t spec;
    unsigned fields; /* what was given: sl_key_field_e */
    bool period_given;
    char *models_buf; /* the --models value, split in place */
    const char *models[SL_KEY_MODELS_MAX + 1];
} keys_opts_t;

typedef struct keys_rows {
    sl_cli_table_t *table;
    json_t *array;
    int64_t now;
    size_t n;
} keys_rows_t;

static void keys_help(FILE *f);
static int keys_parse(int argc, char **argv, keys_opts_t *o);
static int keys_parse_flag(int argc, char **argv, int *i, keys_opts_t *o);
static int keys_parse_models(keys_opts_t *o, const char *v);
static int keys_create(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool);
static int keys_list(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool);
static int keys_list_cb(void *arg, const sl_key_t *k);
static int keys_show(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool);
static int keys_revoke(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool);
static int keys_update(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool);
static int keys_fail(const keys_opts_t *o, const char *what, int rc);
static void keys_print(const sl_key_t *k, int64_t now);
static void keys_models_text(const sl_key_t *k, char *buf, size_t len);
static void keys_budget_text(uint64_t budget, sl_budget_period_e period, char *buf, size_t len);
static void keys_limit_text(uint64_t v, char *buf, size_t len);


static void
keys_help(FILE *f)
{
    fprintf(f,
            "usage: sluice keys create --name NAME [--team T] [--models GLOB,...] [--rpm N]\n"
            "                          [--tpm N] [--budget USD --period day|week|month|total]\n"
            "                          [--expires 30d|YYYY-MM-DD] [--meta JSON] [--guard POLICY]\n"
            "                          [--json]\n"
            "       sluice keys list [--json]\n"
            "       sluice keys show ID|NAME [--json]\n"
            "       sluice keys revoke ID|NAME\n"
            "       sluice keys update ID|NAME [create's options] [--no-team] [--all-models]\n"
            "                          [--no-expiry] [--no-budget] [--no-meta] [--no-guard]\n"
            "\n"
            "Client keys. create prints the new key (sk-sluice-...) as the last line of\n"
            "stdout, once: sluice keeps only its SHA-256. Keys take effect at once, with\n"
            "no reload.\n"
            "\n"
            "  --name NAME      unique: letters, digits, '.', '_', '-' (at most 64)\n"
            "  --team T         team whose budget the key also draws from (sluice teams)\n"
            "  --models G,...   models the key may use, as globs (gpt-4o*,anthropic/*);\n"
            "                   default: every model\n"
            "  --rpm N, --tpm N requests / tokens per minute (0: unlimited)\n"
            "  --budget USD     spend limit per period, e.g. 25 or 12.50\n"
            "  --period P       day, week or month (UTC calendar), or total\n"
            "  --expires E      a duration from now (12h, 30d) or a UTC date (valid through\n"
            "                   that day)\n"
            "  --meta JSON      free-form JSON object kept with the key\n"
            "  --guard POLICY   guardrail policy of the key's requests (guardrails.policies in\n"
            "                   the configuration, or none); beats its team's, the model's and\n"
            "                   the global one. --no-guard: back to those\n"
            "  --json           print JSON instead of text\n"
            "  -c FILE          configuration file (default %s)\n",
            SL_CLI_DEFAULT_CONF);
}


int
sl_cmd_keys(int argc, char **argv)
{
    static const char *const subs[] = { "create", "list", "show", "revoke", "update" };
    static const char *const progs[] = { "sluice keys create", "sluice keys list",
                                         "sluice keys show", "sluice keys revoke",
                                         "sluice keys update" };
    keys_opts_t o;
    sl_pool_t *pool;
    sl_conf_t *conf;
    sl_db_t *db;
    int rc;

    memset(&o, 0, sizeof(o));
    o.conf_file = SL_CLI_DEFAULT_CONF;
    if (argc < 2 || sl_cli_is_help(argv[1])) {
        keys_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? SL_CLI_USAGE : SL_CLI_OK;
    }
    o.prog = NULL;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i]) == 0) {
            o.sub = (keys_sub_e) i;
            o.prog = progs[i];
        }
    }
    if (o.prog == NULL) {
        fprintf(stderr, "%s: unknown subcommand \"%s\"\n\n", KEYS_PROG, argv[1]);
        keys_help(stderr);
        return SL_CLI_USAGE;
    }
    rc = keys_parse(argc, argv, &o);
    if (rc != 0) {
        free(o.models_buf);
        return rc < 0 ? SL_CLI_OK : rc;
    }

    rc = sl_cli_open_db(o.prog, o.conf_file, 0, &db, &conf);
    if (rc != 0) {
        free(o.models_buf);
        return rc;
    }
    rc = (o.fields & SL_KEY_SET_GUARD) ? sl_cli_check_guard(o.prog, conf, o.spec.guard) : 0;
    sl_conf_destroy(conf);
    if (rc != 0) {
        goto out_db;
    }
    pool = sl_pool_create(0);
    if (pool == NULL) {
        fprintf(stderr, "%s: out of memory\n", o.prog);
        rc = SL_CLI_FAIL;
        goto out_db;
    }
    switch (o.sub) {
    case KEYS_CREATE:
        rc = keys_create(&o, db, pool);
        break;
    case KEYS_LIST:
        rc = keys_list(&o, db, pool);
        break;
    case KEYS_SHOW:
        rc = keys_show(&o, db, pool);
        break;
    case KEYS_REVOKE:
        rc = keys_revoke(&o, db, pool);
        break;
    case KEYS_UPDATE:
        rc = keys_update(&o, db, pool);
        break;
    }
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "%s: writing the output failed\n", o.prog);
        rc = SL_CLI_FAIL;
    }
    sl_pool_destroy(pool);
out_db:
    sl_db_close(db);
    free(o.models_buf);
    return rc;
}


/* 0 to run, SL_CLI_USAGE on a bad command line, -1 after --help. */
static int
keys_parse(int argc, char **argv, keys_opts_t *o)
{
    bool takes_target = o->sub == KEYS_SHOW || o->sub == KEYS_REVOKE || o->sub == KEYS_UPDATE;
    bool takes_spec = o->sub == KEYS_CREATE || o->sub == KEYS_UPDATE;
    const char *v;
    char err[256];
    int rc;

    for (int i = 2; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            keys_help(stdout);
            return -1;
        }
        rc = sl_cli_opt(o->prog, argc, argv, &i, "-c", &v);
        if (rc == 0) {
            rc = sl_cli_opt(o->prog, argc, argv, &i, "--config", &v);
        }
        if (rc < 0) {
            return SL_CLI_USAGE;
        }
        if (rc > 0) {
            o->conf_file = v;
            continue;
        }
        if (strcmp(argv[i], "--json") == 0 && o->sub != KEYS_REVOKE) {
            o->json = true;
            continue;
        }
        if (takes_spec) {
            rc = keys_parse_flag(argc, argv, &i, o);
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            if (rc > 0) {
                continue;
            }
        }
        if (takes_target && o->target == NULL && argv[i][0] != '-') {
            o->target = argv[i];
            continue;
        }
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", o->prog, argv[i]);
        return SL_CLI_USAGE;
    }

    if (takes_target && o->target == NULL) {
        fprintf(stderr, "%s: which key? give its id or name\n", o->prog);
        return SL_CLI_USAGE;
    }
    if (o->sub == KEYS_CREATE && !(o->fields & SL_KEY_SET_NAME)) {
        fprintf(stderr, "%s: --name is required\n", o->prog);
        return SL_CLI_USAGE;
    }
    if (o->sub == KEYS_UPDATE && o->fields == 0) {
        fprintf(stderr, "%s: nothing to change; see sluice keys --help\n", o->prog);
        return SL_CLI_USAGE;
    }
    if (o->sub == KEYS_CREATE && (o->fields & SL_KEY_SET_BUDGET) && o->spec.budget != 0
        && !o->period_given) {
        fprintf(stderr, "%s: --budget needs --period day, week, month or total\n", o->prog);
        return SL_CLI_USAGE;
    }
    if (o->period_given && !(o->fields & SL_KEY_SET_BUDGET)) {
        fprintf(stderr, "%s: --period goes with --budget\n", o->prog);
        return SL_CLI_USAGE;
    }
    if (takes_spec
        && sl_key_spec_check(&o->spec, o->fields, (int64_t) time(NULL), err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        return SL_CLI_USAGE;
    }
    return 0;
}


/* The create/update options. 1 consumed, 0 not one of them, -1 bad (printed). */
static int
keys_parse_flag(int argc, char **argv, int *i, keys_opts_t *o)
{
    const char *arg = argv[*i], *p = o->prog, *v = NULL;
    int64_t now = (int64_t) time(NULL);
    int rc;

    if ((rc = sl_cli_opt(p, argc, argv, i, "--name", &v)) != 0) {
        o->spec.name = v;
        o->fields |= SL_KEY_SET_NAME;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--team", &v)) != 0) {
        o->spec.team = v;
        o->fields |= SL_KEY_SET_TEAM;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--models", &v)) != 0) {
        if (rc > 0 && keys_parse_models(o, v) != 0) {
            return -1;
        }
        o->fields |= SL_KEY_SET_MODELS;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--rpm", &v)) != 0) {
        if (rc > 0 && sl_cli_parse_u64(v, &o->spec.rpm) != 0) {
            fprintf(stderr, "%s: --rpm wants a whole number (0: unlimited), not \"%s\"\n", p, v);
            return -1;
        }
        o->fields |= SL_KEY_SET_RPM;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--tpm", &v)) != 0) {
        if (rc > 0 && sl_cli_parse_u64(v, &o->spec.tpm) != 0) {
            fprintf(stderr, "%s: --tpm wants a whole number (0: unlimited), not \"%s\"\n", p, v);
            return -1;
        }
        o->fields |= SL_KEY_SET_TPM;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--budget", &v)) != 0) {
        if (rc > 0 && sl_budget_parse_usd(v, &o->spec.budget) != 0) {
            fprintf(stderr,
                    "%s: --budget wants a dollar amount such as 25 or 12.50 (at most 9 "
                    "decimals), not \"%s\"\n",
                    p, v);
            return -1;
        }
        o->fields |= SL_KEY_SET_BUDGET;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--period", &v)) != 0) {
        if (rc > 0 && sl_budget_period_parse(v, &o->spec.period) != 0) {
            fprintf(stderr, "%s: --period is day, week, month or total, not \"%s\"\n", p, v);
            return -1;
        }
        o->period_given = true;
        o->fields |= SL_KEY_SET_PERIOD;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--expires", &v)) != 0) {
        if (rc > 0 && sl_key_parse_expiry(v, now, &o->spec.expires) != 0) {
            fprintf(stderr,
                    "%s: --expires wants a duration (12h, 30d) or a date (YYYY-MM-DD), not "
                    "\"%s\"\n",
                    p, v);
            return -1;
        }
        o->fields |= SL_KEY_SET_EXPIRES;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--meta", &v)) != 0) {
        o->spec.metadata = v;
        o->fields |= SL_KEY_SET_METADATA;
    } else if ((rc = sl_cli_opt(p, argc, argv, i, "--guard", &v)) != 0) {
        o->spec.guard = v;
        o->fields |= SL_KEY_SET_GUARD;
    } else if (o->sub == KEYS_UPDATE && strcmp(arg, "--no-guard") == 0) {
        o->spec.guard = NULL;
        o->fields |= SL_KEY_SET_GUARD;
    } else if (o->sub == KEYS_UPDATE && strcmp(arg, "--no-team") == 0) {
        o->spec.team = NULL;
        o->fields |= SL_KEY_SET_TEAM;
    } else if (o->sub == KEYS_UPDATE && strcmp(arg, "--all-models") == 0) {
        o->spec.nmodels = 0;
        o->fields |= SL_KEY_SET_MODELS;
    } else if (o->sub == KEYS_UPDATE && strcmp(arg, "--no-expiry") == 0) {
        o->spec.expires = 0;
        o->fields |= SL_KEY_SET_EXPIRES;
    } else if (o->sub == KEYS_UPDATE && strcmp(arg, "--no-budget") == 0) {
        o->spec.budget = 0;
        o->fields |= SL_KEY_SET_BUDGET;
    } else if (o->sub == KEYS_UPDATE && strcmp(arg, "--no-meta") == 0) {
        o->spec.metadata = NULL;
        o->fields |= SL_KEY_SET_METADATA;
    } else {
        return 0;
    }
    return rc < 0 ? -1 : 1;
}


/* Splits "a, b,c" into globs; an empty piece or too many is an error (printed). */
static int
keys_parse_models(keys_opts_t *o, const char *v)
{
    char *p, *tok, *save = NULL;

    free(o->models_buf);
    o->models_buf = strdup(v);
    if (o->models_buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", o->prog);
        return -1;
    }
    o->spec.nmodels = 0;
    o->spec.models = o->models;
    p = o->models_buf;
    for (tok = strtok_r(p, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') {
            tok++;
        }
        for (char *end = tok + strlen(tok); end > tok && end[-1] == ' '; end--) {
            end[-1] = '\0';
        }
        if (*tok == '\0') {
            continue;
        }
        if (o->spec.nmodels == SL_KEY_MODELS_MAX) {
            fprintf(stderr, "%s: at most %d model globs\n", o->prog, SL_KEY_MODELS_MAX);
            return -1;
        }
        o->models[o->spec.nmodels++] = tok;
    }
    if (o->spec.nmodels == 0) {
        fprintf(stderr, "%s: --models needs at least one glob (to allow every model, %s)\n",
                o->prog, o->sub == KEYS_UPDATE ? "use --all-models" : "leave it out");
        return -1;
    }
    return 0;
}


static int
keys_create(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool)
{
    sl_key_t *k;
    char *text;
    int rc;

    rc = sl_keys_create(db, &o->spec, pool, &k, &text);
    if (rc == -EEXIST) {
        fprintf(stderr, "%s: a key named \"%s\" already exists\n", o->prog, o->spec.name);
        return SL_CLI_FAIL;
    }
    if (rc != 0) {
        return keys_fail(o, "creating the key failed", rc);
    }
    if (o->json) {
        rc = sl_cli_print_json(o->prog, sl_key_json(k, k->created, text));
    } else {
        keys_print(k, k->created);
        fprintf(stderr, "%s: store this key now; it cannot be shown again\n", o->prog);
        fflush(stderr);
        printf("%s\n", text);
    }
    sl_crypto_wipe(text, strlen(text));
    return rc;
}


static int
keys_list(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool)
{
    static const char *const headers[] = { "ID",  "NAME",   "TEAM",    "MODELS", "RPM",
                                           "TPM", "BUDGET", "EXPIRES", "STATUS", "KEY" };
    keys_rows_t rows = { NULL, NULL, (int64_t) time(NULL), 0 };
    sl_txn_t *t;
    int rc;

    if (o->json) {
        rows.array = json_array();
    } else {
        rows.table = sl_cli_table_create(10, headers);
    }
    rc = sl_db_read(db, &t);
    if (rc == 0) {
        rc = sl_keys_list(t, pool, keys_list_cb, &rows);
        sl_db_abort(t);
    }
    if (o->json) {
        if (sl_cli_print_json(o->prog, rows.array) != 0) {
            return SL_CLI_FAIL;
        }
    } else {
        if (rows.n > 0) {
            sl_cli_table_print(rows.table, stdout);
        } else if (rc == 0) {
            fprintf(stderr, "%s: no keys yet; create one with sluice keys create --name NAME\n",
                    o->prog);
        }
        sl_cli_table_destroy(rows.table);
    }
    if (rc == SL_ESTORE) {
        fprintf(stderr, "%s: some key records could not be read (see the messages above)\n",
                o->prog);
        return SL_CLI_FAIL;
    }
    if (rc != 0) {
        return keys_fail(o, "listing the keys failed", rc);
    }
    return 0;
}


static int
keys_list_cb(void *arg, const sl_key_t *k)
{
    keys_rows_t *rows = arg;
    char models[64], rpm[24], tpm[24], budget[48], expires[24], last4[16];
    const char *cells[10];

    rows->n++;
    if (rows->array != NULL) {
        json_array_append_new(rows->array, sl_key_json(k, rows->now, NULL));
        return 0;
    }
    keys_models_text(k, models, sizeof(models));
    if (strlen(models) > 40) {
        memcpy(models + 37, "...", 4);
    }
    keys_limit_text(k->rpm, rpm, sizeof(rpm));
    keys_limit_text(k->tpm, tpm, sizeof(tpm));
    keys_budget_text(k->budget, k->period, budget, sizeof(budget));
    if (k->expires == 0) {
        snprintf(expires, sizeof(expires), "never");
    } else {
        sl_ledger_format_time(k->expires, expires, sizeof(expires));
        expires[10] = '\0';
    }
    snprintf(last4, sizeof(last4), "\xe2\x80\xa6%s", k->last4);
    cells[0] = k->id;
    cells[1] = k->name;
    cells[2] = k->team == NULL ? "-" : k->team;
    cells[3] = models;
    cells[4] = rpm;
    cells[5] = tpm;
    cells[6] = budget;
    cells[7] = expires;
    cells[8] = sl_key_status(k, rows->now);
    cells[9] = last4;
    sl_cli_table_add(rows->table, cells);
    return 0;
}


static int
keys_show(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool)
{
    int64_t now = (int64_t) time(NULL);
    sl_txn_t *t;
    sl_key_t *k;
    int rc;

    rc = sl_db_read(db, &t);
    if (rc == 0) {
        rc = sl_keys_find(t, o->target, pool, &k);
        sl_db_abort(t);
    }
    if (rc != 0) {
        return keys_fail(o, o->target, rc);
    }
    if (o->json) {
        return sl_cli_print_json(o->prog, sl_key_json(k, now, NULL));
    }
    keys_print(k, now);
    return 0;
}


static int
keys_revoke(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool)
{
    int64_t now = (int64_t) time(NULL);
    bool already = false;
    char when[32];
    sl_txn_t *t;
    sl_key_t *k;
    int rc;

    rc = sl_db_read(db, &t);
    if (rc == 0) {
        rc = sl_keys_find(t, o->target, pool, &k);
        sl_db_abort(t);
    }
    if (rc == 0) {
        already = k->revoked != 0;
        rc = sl_keys_revoke(db, k->id, now);
    }
    if (rc == 0) {
        rc = sl_db_read(db, &t);
        if (rc == 0) {
            rc = sl_keys_find(t, o->target, pool, &k);
            sl_db_abort(t);
        }
    }
    if (rc != 0) {
        return keys_fail(o, o->target, rc);
    }
    sl_ledger_format_time(k->revoked, when, sizeof(when));
    if (already) {
        printf("key %s (%s) was already revoked at %s\n", k->id, k->name, when);
    } else {
        printf("key %s (%s) revoked at %s; it is refused from now on\n", k->id, k->name, when);
    }
    return 0;
}


static int
keys_update(keys_opts_t *o, sl_db_t *db, sl_pool_t *pool)
{
    sl_key_t *k;
    int rc;

    rc = sl_keys_update(db, o->target, &o->spec, o->fields, pool, &k);
    if (rc == -EINVAL && (o->fields & SL_KEY_SET_BUDGET)) {
        fprintf(stderr,
                "%s: key \"%s\" has no budget yet: give --period day, week, month or total\n",
                o->prog, o->target);
        return SL_CLI_USAGE;
    }
    if (rc == -EEXIST) {
        fprintf(stderr, "%s: a key named \"%s\" already exists\n", o->prog, o->spec.name);
        return SL_CLI_FAIL;
    }
    if (rc != 0) {
        return keys_fail(o, o->target, rc);
    }
    if (o->json) {
        return sl_cli_print_json(o->prog, sl_key_json(k, (int64_t) time(NULL), NULL));
    }
    keys_print(k, (int64_t) time(NULL));
    return 0;
}


static int
keys_fail(const keys_opts_t *o, const char *what, int rc)
{
    if (rc == SL_ENOTFOUND) {
        fprintf(stderr, "%s: no key with id or name \"%s\"\n", o->prog, what);
    } else {
        fprintf(stderr, "%s: %s: %s\n", o->prog, what, sl_strerror(rc));
    }
    return SL_CLI_FAIL;
}


static void
keys_print(const sl_key_t *k, int64_t now)
{
    char buf[512], when[32];

    printf("id        %s\n", k->id);
    printf("name      %s\n", k->name);
    printf("team      %s\n", k->team == NULL ? "-" : k->team);
    printf("status    %s\n", sl_key_status(k, now));
    keys_models_text(k, buf, sizeof(buf));
    printf("models    %s\n", buf);
    keys_limit_text(k->rpm, buf, sizeof(buf));
    printf("rpm       %s\n", buf);
    keys_limit_text(k->tpm, buf, sizeof(buf));
    printf("tpm       %s\n", buf);
    keys_budget_text(k->budget, k->period, buf, sizeof(buf));
    printf("budget    %s\n", buf);
    sl_ledger_format_time(k->created, when, sizeof(when));
    printf("created   %s\n", when);
    if (k->expires != 0) {
        sl_ledger_format_time(k->expires, when, sizeof(when));
    }
    printf("expires   %s\n", k->expires == 0 ? "never" : when);
    if (k->revoked != 0) {
        sl_ledger_format_time(k->revoked, when, sizeof(when));
        printf("revoked   %s\n", when);
    }
    printf("key       \xe2\x80\xa6%s\n", k->last4);
    if (k->guard != NULL) {
        printf("guard     %s\n", k->guard);
    }
    if (k->metadata != NULL) {
        printf("metadata  %s\n", k->metadata);
    }
}


static void
keys_models_text(const sl_key_t *k, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    if (k->nmodels == 0) {
        snprintf(buf, len, "*");
        return;
    }
    for (size_t i = 0; i < k->nmodels && n < len; i++) {
        n += (size_t) snprintf(buf + n, len - n, "%s%s", i > 0 ? "," : "", k->models[i]);
    }
}


static void
keys_budget_text(uint64_t budget, sl_budget_period_e period, char *buf, size_t len)
{
    char usd[40];

    if (budget == 0) {
        snprintf(buf, len, "-");
        return;
    }
    sl_budget_format_usd(budget, usd, sizeof(usd));
    snprintf(buf, len, "$%s/%s", usd, sl_budget_period_name(period));
}


static void
keys_limit_text(uint64_t v, char *buf, size_t len)
{
    if (v == 0) {
        snprintf(buf, len, "-");
    } else {
        snprintf(buf, len, "%llu", (unsigned long long) v);
    }
}
