/*
 * sluice secrets: put provider keys in the vault (value from stdin, never
 * from argv where ps(1) and shell history would see it), list their names
 * and dates, remove them, and re-encrypt them all under a new master key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd/cli.h"
#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "storage/ledger.h"
#include "storage/vault.h"

#define SECRETS_NEW_KEY_ENV "SLUICE_NEW_MASTER_KEY"

typedef enum secrets_sub {
    SECRETS_SET = 0,
    SECRETS_LIST,
    SECRETS_RM,
    SECRETS_ROTATE,
} secrets_sub_e;

typedef struct secrets_rows {
    sl_cli_table_t *table;
    json_t *array;
    size_t n;
} secrets_rows_t;

static void secrets_help(FILE *f);
static int secrets_read_value(const char *prog, const char *name, char **value, size_t *len);
static int secrets_set(const char *prog, sl_vault_t *v, const char *name);
static int secrets_list(const char *prog, sl_db_t *db, sl_vault_t *v, bool json);
static int secrets_list_cb(void *arg, const sl_vault_entry_t *e);
static int secrets_rm(const char *prog, sl_vault_t *v, const char *name);
static int secrets_rotate(const char *prog, sl_vault_t *v, const char *new_key_file);
static int secrets_fail(const char *prog, const char *name, int rc);


static void
secrets_help(FILE *f)
{
    fprintf(f,
            "usage: sluice secrets set NAME        (the value is read from stdin)\n"
            "       sluice secrets list [--json]\n"
            "       sluice secrets rm NAME\n"
            "       sluice secrets rotate-master [--new-key-file FILE]\n"
            "\n"
            "The vault holds provider keys that the configuration names as vault:NAME,\n"
            "encrypted (AES-256-GCM) under a master key kept outside the storage:\n"
            "  SLUICE_MASTER_KEY       64 hex digits or base64 of 32 bytes, or else\n"
            "  storage.master_key_file (or $SLUICE_MASTER_KEY_FILE): a file holding it,\n"
            "                          mode 0600\n"
            "Make one with: openssl rand -hex 32\n"
            "\n"
            "set reads the value from stdin (one trailing newline is dropped); on a\n"
            "terminal it asks without echoing. list shows names and dates, never values.\n"
            "rotate-master re-encrypts every secret under the key in $%s\n"
            "(or --new-key-file) in one transaction; restart sluice with the new key.\n"
            "\n"
            "  --json    print JSON instead of a table\n"
            "  -c FILE   configuration file (default %s)\n",
            SECRETS_NEW_KEY_ENV, SL_CLI_DEFAULT_CONF);
}


int
sl_cmd_secrets(int argc, char **argv)
{
    static const char *const subs[] = { "set", "list", "rm", "rotate-master" };
    static const char *const progs[] = { "sluice secrets set", "sluice secrets list",
                                         "sluice secrets rm", "sluice secrets rotate-master" };
    const char *conf_file = SL_CLI_DEFAULT_CONF, *name = NULL, *new_key_file = NULL, *v;
    const char *prog = NULL;
    secrets_sub_e sub = SECRETS_SET;
    bool json = false;
    sl_vault_t *vault;
    sl_conf_t *conf;
    sl_db_t *db;
    int rc;

    if (argc < 2 || sl_cli_is_help(argv[1])) {
        secrets_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? SL_CLI_USAGE : SL_CLI_OK;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i]) == 0) {
            sub = (secrets_sub_e) i;
            prog = progs[i];
        }
    }
    if (prog == NULL) {
        fprintf(stderr, "sluice secrets: unknown subcommand \"%s\"\n\n", argv[1]);
        secrets_help(stderr);
        return SL_CLI_USAGE;
    }

    for (int i = 2; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            secrets_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(prog, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(prog, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            conf_file = v;
        } else if (sub == SECRETS_LIST && strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (sub == SECRETS_ROTATE
                   && (rc = sl_cli_opt(prog, argc, argv, &i, "--new-key-file", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            new_key_file = v;
        } else if ((sub == SECRETS_SET || sub == SECRETS_RM) && name == NULL && argv[i][0] != '-') {
            name = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"%s\n", prog, argv[i],
                    sub == SECRETS_SET && name != NULL ? " (the value is read from stdin)" : "");
            return SL_CLI_USAGE;
        }
    }
    if ((sub == SECRETS_SET || sub == SECRETS_RM) && name == NULL) {
        fprintf(stderr, "%s: which secret? give its name\n", prog);
        return SL_CLI_USAGE;
    }
    if (sub == SECRETS_SET && !sl_vault_name_valid(name)) {
        fprintf(stderr,
                "%s: invalid secret name \"%s\": use 1 to %d letters, digits, '.', '_' or '-', "
                "starting with a letter or digit\n",
                prog, name, SL_VAULT_NAME_MAX);
        return SL_CLI_USAGE;
    }
    if (sub == SECRETS_ROTATE && new_key_file == NULL && getenv(SECRETS_NEW_KEY_ENV) == NULL) {
        fprintf(stderr, "%s: give the new master key in $%s or with --new-key-file FILE\n", prog,
                SECRETS_NEW_KEY_ENV);
        return SL_CLI_USAGE;
    }

    rc = sl_cli_open_db(prog, conf_file, 0, &db, &conf);
    if (rc != 0) {
        return rc;
    }
    /* SLUICE_MASTER_KEY, else storage.master_key_file, else $SLUICE_MASTER_KEY_FILE */
    rc = sl_vault_open(db, conf->storage_master_key_file, &vault);
    sl_conf_destroy(conf);
    if (rc != 0) {
        fprintf(stderr, "%s: the master key cannot be used: %s\n", prog, sl_strerror(rc));
        sl_db_close(db);
        return SL_CLI_FAIL;
    }
    switch (sub) {
    case SECRETS_SET:
        rc = secrets_set(prog, vault, name);
        break;
    case SECRETS_LIST:
        rc = secrets_list(prog, db, vault, json);
        break;
    case SECRETS_RM:
        rc = secrets_rm(prog, vault, name);
        break;
    case SECRETS_ROTATE:
        rc = secrets_rotate(prog, vault, new_key_file);
        break;
    }
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "%s: writing the output failed\n", prog);
        rc = SL_CLI_FAIL;
    }
    sl_vault_close(vault);
    sl_db_close(db);
    return rc;
}


/*
 * Reads the value from stdin: all of it from a pipe or file, one line
 * without echo from a terminal. One trailing newline (LF or CRLF) is
 * dropped. *value is malloc'ed; the caller wipes and frees it.
 */
static int
secrets_read_value(const char *prog, const char *name, char **value, size_t *len)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO), echo_off = false;
    size_t cap = SL_VAULT_VALUE_MAX + 2, n = 0;
    char *buf;
    ssize_t r;
    int err;

    *value = NULL;
    buf = malloc(cap);
    if (buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return SL_CLI_FAIL;
    }
    if (tty) {
        fprintf(stderr, "value for %s (input hidden): ", name);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= (tcflag_t) ~ECHO;
            echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    while (n < cap) {
        r = read(STDIN_FILENO, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            err = errno;
            fprintf(stderr, "%s: reading stdin failed: %s\n", prog, strerror(err));
            n = cap + 1;
            break;
        }
        if (r == 0) {
            break;
        }
        n += (size_t) r;
        if (tty && buf[n - 1] == '\n') {
            break;
        }
    }
    if (echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    }
    if (tty) {
        fputc('\n', stderr);
    }
    if (n > cap) {
        goto out_fail;
    }
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') {
            n--;
        }
    }
    if (n > SL_VAULT_VALUE_MAX) {
        fprintf(stderr, "%s: the value is larger than %d bytes\n", prog, SL_VAULT_VALUE_MAX);
        goto out_fail;
    }
    if (n == 0) {
        fprintf(stderr, "%s: the value is empty (it is read from stdin)\n", prog);
        goto out_fail;
    }
    *value = buf;
    *len = n;
    return 0;

out_fail:
    sl_crypto_wipe(buf, cap);
    free(buf);
    return SL_CLI_FAIL;
}


static int
secrets_set(const char *prog, sl_vault_t *v, const char *name)
{
    char *value;
    size_t len;
    int rc;

    if (!sl_vault_has_key(v)) {
        fprintf(stderr,
                "%s: no master key: set SLUICE_MASTER_KEY (64 hex digits or base64 of 32 bytes) "
                "or SLUICE_MASTER_KEY_FILE; make one with: openssl rand -hex 32\n",
                prog);
        return SL_CLI_FAIL;
    }
    rc = secrets_read_value(prog, name, &value, &len);
    if (rc != 0) {
        return rc;
    }
    rc = sl_vault_set(v, name, value, len, (int64_t) time(NULL));
    sl_crypto_wipe(value, len);
    free(value);
    if (rc != 0) {
        return secrets_fail(prog, name, rc);
    }
    printf("secret %s stored (%zu bytes); use it as vault:%s\n", name, len, name);
    return 0;
}


static int
secrets_list(const char *prog, sl_db_t *db, sl_vault_t *v, bool json)
{
    static const char *const headers[] = { "NAME", "CREATED", "UPDATED" };
    secrets_rows_t rows = { NULL, NULL, 0 };
    sl_txn_t *t;
    int rc;

    if (json) {
        rows.array = json_array();
    } else {
        rows.table = sl_cli_table_create(3, headers);
    }
    rc = sl_db_read(db, &t);
    if (rc == 0) {
        rc = sl_vault_list(v, t, secrets_list_cb, &rows);
        sl_db_abort(t);
    }
    if (json) {
        if (sl_cli_print_json(prog, rows.array) != 0) {
            return SL_CLI_FAIL;
        }
    } else {
        if (rows.n > 0) {
            sl_cli_table_print(rows.table, stdout);
        } else if (rc == 0) {
            fprintf(stderr, "%s: the vault is empty\n", prog);
        }
        sl_cli_table_destroy(rows.table);
    }
    if (rc != 0) {
        return secrets_fail(prog, "listing the vault", rc);
    }
    return 0;
}


static int
secrets_list_cb(void *arg, const sl_vault_entry_t *e)
{
    secrets_rows_t *rows = arg;
    char created[32], updated[32];
    const char *cells[3];
    json_t *j;

    rows->n++;
    sl_ledger_format_time(e->created, created, sizeof(created));
    sl_ledger_format_time(e->updated, updated, sizeof(updated));
    if (rows->array != NULL) {
        j = json_object();
        json_object_set_new(j, "name", json_string(e->name));
        json_object_set_new(j, "created", json_string(created));
        json_object_set_new(j, "updated", json_string(updated));
        json_array_append_new(rows->array, j);
        return 0;
    }
    cells[0] = e->name;
    cells[1] = created;
    cells[2] = updated;
    sl_cli_table_add(rows->table, cells);
    return 0;
}


static int
secrets_rm(const char *prog, sl_vault_t *v, const char *name)
{
    int rc = sl_vault_rm(v, name);

    if (rc != 0) {
        return secrets_fail(prog, name, rc);
    }
    printf("secret %s removed\n", name);
    return 0;
}


static int
secrets_rotate(const char *prog, sl_vault_t *v, const char *new_key_file)
{
    uint8_t key[SL_CRYPTO_KEY_LEN];
    size_t n = 0;
    int rc;

    if (!sl_vault_has_key(v)) {
        fprintf(stderr,
                "%s: the current master key is needed too: set SLUICE_MASTER_KEY or "
                "SLUICE_MASTER_KEY_FILE\n",
                prog);
        return SL_CLI_FAIL;
    }
    rc = sl_vault_load_key(new_key_file != NULL ? NULL : SECRETS_NEW_KEY_ENV, new_key_file, key);
    if (rc != 0) {
        fprintf(stderr, "%s: the new master key cannot be used (see above)\n", prog);
        return SL_CLI_FAIL;
    }
    rc = sl_vault_rotate(v, key, &n);
    sl_crypto_wipe(key, sizeof(key));
    if (rc != 0) {
        return secrets_fail(prog, "rotating the master key", rc);
    }
    printf("re-encrypted %zu secret(s) under the new master key; start sluice with it from now "
           "on\n",
           n);
    return 0;
}


static int
secrets_fail(const char *prog, const char *name, int rc)
{
    switch (rc) {
    case SL_ENOTFOUND:
        fprintf(stderr, "%s: no secret \"%s\"\n", prog, name);
        break;
    case SL_EAUTH:
        fprintf(stderr, "%s: the master key does not match the vault\n", prog);
        break;
    case SL_ESECRET:
        fprintf(stderr, "%s: no master key (set SLUICE_MASTER_KEY or SLUICE_MASTER_KEY_FILE)\n",
                prog);
        break;
    default:
        fprintf(stderr, "%s: %s: %s\n", prog, name, sl_strerror(rc));
        break;
    }
    return SL_CLI_FAIL;
}
