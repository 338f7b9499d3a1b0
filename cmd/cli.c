/*
 * Helpers shared by the storage subcommands: option matching, opening the
 * configured storage, exact dollar amounts and UTC times.
 */
#include "cmd/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"

struct sl_cli_table {
    sl_pool_t *pool;
    size_t ncols;
    size_t nrows, cap;
    char ***rows; /* rows[0] holds the headers */
    size_t *width;
};

static size_t cli_utf8_width(const char *s);
static void cli_on_crash(int signo);

/* What cli_on_crash writes: formatted before the storage is read (a handler may not format). */
static char cli_crash_msg[1024];
static size_t cli_crash_len;


int
sl_cli_opt(const char *prog, int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);

    if (strcmp(argv[*i], name) == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "%s: option %s needs a value\n", prog, name);
            return -1;
        }
        *value = argv[++*i];
        return 1;
    }
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    return 0;
}


bool
sl_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}


int
sl_cli_open_db(const char *prog, const char *conf_file, unsigned flags, sl_db_t **db,
               sl_conf_t **conf)
{
    char err[1024];
    sl_conf_t *c;
    int rc;

    /* notices such as "map grown" are for the server's log, not a terminal */
    sl_log_open(NULL, SL_LOG_WARN);
    rc = sl_conf_load_flags(conf_file, SL_CONF_NO_SECRETS, &c, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return SL_CLI_FAIL;
    }
    rc = sl_db_open(c->storage_path, c->storage_map_size, flags, db);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot open the storage at \"%s\": %s\n", prog, c->storage_path,
                sl_strerror(rc));
        sl_conf_destroy(c);
        return SL_CLI_FAIL;
    }
    if (conf != NULL) {
        *conf = c;
    } else {
        sl_conf_destroy(c);
    }
    return 0;
}


void
sl_cli_guard_storage(const char *prog, const char *path)
{
    static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
    struct sigaction sa;
    int n;

    n = snprintf(cli_crash_msg, sizeof(cli_crash_msg),
                 "%s: reading the storage crashed: the file \"%s/data.mdb\" is damaged (nothing "
                 "was printed). Stop sluice, keep a copy of the file and restore the last backup "
                 "(see \"Backup and recovery\" in README.md)\n",
                 prog, path);
    cli_crash_len = n < 0                                ? 0
                    : (size_t) n < sizeof(cli_crash_msg) ? (size_t) n
                                                         : sizeof(cli_crash_msg) - 1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli_on_crash;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
}


/* Async-signal-safe: write(2) a prepared message and _exit. */
static void
cli_on_crash(int signo)
{
    ssize_t w;

    (void) signo;
    w = write(STDERR_FILENO, cli_crash_msg, cli_crash_len);
    (void) w;
    _exit(SL_CLI_FAIL);
}


int
sl_cli_parse_u64(const char *s, uint64_t *v)
{
    sl_str_t str = { s, strlen(s) };
    unsigned long long n;

    if (sl_str_to_u64(str, &n) != 0) {
        return SL_EPARSE;
    }
    *v = n;
    return 0;
}


sl_cli_table_t *
sl_cli_table_create(size_t ncols, const char *const *headers)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_cli_table_t *t;

    if (pool == NULL) {
        abort();
    }
    t = sl_pcalloc(pool, sizeof(*t));
    t->pool = pool;
    t->ncols = ncols;
    t->width = sl_pcalloc(pool, ncols * sizeof(*t->width));
    sl_cli_table_add(t, headers);
    return t;
}


void
sl_cli_table_add(sl_cli_table_t *t, const char *const *cells)
{
    char ***rows;
    size_t w;

    if (t->nrows == t->cap) {
        t->cap = t->cap == 0 ? 16 : t->cap * 2;
        rows = sl_palloc(t->pool, t->cap * sizeof(*rows));
        if (t->nrows > 0) {
            memcpy(rows, t->rows, t->nrows * sizeof(*rows));
        }
        t->rows = rows;
    }
    t->rows[t->nrows] = sl_palloc(t->pool, t->ncols * sizeof(char *));
    for (size_t c = 0; c < t->ncols; c++) {
        t->rows[t->nrows][c] = sl_pstrdup(t->pool, cells[c] == NULL ? "" : cells[c]);
        w = cli_utf8_width(t->rows[t->nrows][c]);
        if (w > t->width[c]) {
            t->width[c] = w;
        }
    }
    t->nrows++;
}


void
sl_cli_table_print(const sl_cli_table_t *t, FILE *f)
{
    const char *cell;

    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            cell = t->rows[r][c];
            if (c + 1 == t->ncols) {
                fprintf(f, "%s\n", cell);
            } else {
                fprintf(f, "%s%*s", cell, (int) (t->width[c] - cli_utf8_width(cell) + 2), "");
            }
        }
    }
}


void
sl_cli_table_destroy(sl_cli_table_t *t)
{
    if (t != NULL) {
        sl_pool_destroy(t->pool);
    }
}


/* Characters, not bytes: UTF-8 continuation bytes do not count. */
static size_t
cli_utf8_width(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (((unsigned char) *s & 0xc0) != 0x80) {
            n++;
        }
    }
    return n;
}


int
sl_cli_print_json(const char *prog, json_t *j)
{
    char *text;

    if (j == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return SL_CLI_FAIL;
    }
    text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return SL_CLI_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}
