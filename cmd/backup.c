/*
 * sluice backup FILE: a compacted, consistent copy of the whole storage
 * (keys, vault, ledger, spend, teams; the cache too), taken from a read
 * snapshot, so it is safe while sluice serves. The vault stays encrypted
 * in the copy: keep the master key apart from it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cli.h"
#include "core/base/errno.h"

#define BACKUP_PROG "sluice backup"

static void backup_help(FILE *f);


static void
backup_help(FILE *f)
{
    fprintf(f,
            "usage: sluice backup [-c FILE] OUT\n"
            "\n"
            "Writes a compacted copy of the storage (storage.path) to OUT, mode 0600,\n"
            "atomically (a temporary file beside OUT, then a rename). Safe while sluice\n"
            "runs. To restore: stop sluice, copy OUT to data.mdb in an empty\n"
            "storage.path directory, start sluice.\n"
            "\n"
            "  -c FILE   configuration file (default %s)\n",
            SL_CLI_DEFAULT_CONF);
}


int
sl_cmd_backup(int argc, char **argv)
{
    const char *conf_file = SL_CLI_DEFAULT_CONF, *out = NULL, *v;
    struct stat st;
    sl_db_t *db;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            backup_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(BACKUP_PROG, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(BACKUP_PROG, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            conf_file = v;
        } else if (out == NULL && argv[i][0] != '-') {
            out = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", BACKUP_PROG, argv[i]);
            return SL_CLI_USAGE;
        }
    }
    if (out == NULL) {
        fprintf(stderr, "%s: where to? give the output file\n\n", BACKUP_PROG);
        backup_help(stderr);
        return SL_CLI_USAGE;
    }
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: \"%s\" is a directory; give a file name\n", BACKUP_PROG, out);
        return SL_CLI_USAGE;
    }

    rc = sl_cli_open_db(BACKUP_PROG, conf_file, SL_DB_RDONLY, &db, NULL);
    if (rc != 0) {
        return rc;
    }
    rc = sl_db_backup(db, out);
    sl_db_close(db);
    if (rc != 0) {
        fprintf(stderr, "%s: writing \"%s\" failed: %s\n", BACKUP_PROG, out, sl_strerror(rc));
        return SL_CLI_FAIL;
    }
    if (stat(out, &st) == 0) {
        printf("backup written to %s (%lld bytes)\n", out, (long long) st.st_size);
    }
    return SL_CLI_OK;
}
