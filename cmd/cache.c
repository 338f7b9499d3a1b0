/*
 * sluice cache stats|purge: the response cache from the command line,
 * beside a serving gateway. stats prints what the cache holds (entries,
 * bytes) and, from the ledger, what it did over a window (hits, misses,
 * hit ratio, savings, the semantic cache's embedding calls); purge deletes
 * entries of a model, of a key, or all of them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "core/base/errno.h"
#include "core/gateway/pricing.h"
#include "storage/cache.h"
#include "storage/ledger.h"

#define CACHE_PROG  "sluice cache"
#define CACHE_SINCE "7d"

static void cache_help(FILE *f);
static int cache_stats(const char *conf_file, const char *since, bool json);
static int cache_purge(const char *conf_file, const char *model, const char *key);
static void cache_print(const sl_cache_report_t *r, size_t max_size, const char *since);


static void
cache_help(FILE *f)
{
    fprintf(f,
            "usage: sluice cache stats [-c FILE] [--since 7d] [--json]\n"
            "       sluice cache purge [-c FILE] [--model M] [--key K]\n"
            "\n"
            "stats: entries and bytes the response cache holds now, and over the window\n"
            "(--since 24h, 7d, 30d or all; default %s) from the ledger: hits (exact and\n"
            "semantic), misses, requests it did not apply to, the hit ratio, what the\n"
            "hits saved (the price their answers had), and the semantic cache's own\n"
            "embedding calls and their cost. --json prints one object.\n"
            "\n"
            "purge: deletes the entries of model M (the name clients ask for) and/or of\n"
            "key K (a key id or name; \"static\" for auth.static_keys); with neither,\n"
            "every entry. Prints how many went. Safe while sluice runs.\n"
            "\n"
            "  -c FILE   configuration file (default %s)\n",
            CACHE_SINCE, SL_CLI_DEFAULT_CONF);
}


int
sl_cmd_cache(int argc, char **argv)
{
    const char *conf_file = SL_CLI_DEFAULT_CONF, *since = CACHE_SINCE, *model = NULL, *key = NULL,
               *v;
    const char *sub = NULL;
    bool json = false, since_set = false;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            cache_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(CACHE_PROG, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(CACHE_PROG, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            conf_file = v;
        } else if ((rc = sl_cli_opt(CACHE_PROG, argc, argv, &i, "--since", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            since = v;
            since_set = true;
        } else if ((rc = sl_cli_opt(CACHE_PROG, argc, argv, &i, "--model", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            model = v;
        } else if ((rc = sl_cli_opt(CACHE_PROG, argc, argv, &i, "--key", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            key = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (sub == NULL && argv[i][0] != '-') {
            sub = argv[i];
        } else {
            fprintf(stderr, "%s: unknown option \"%s\"\n", CACHE_PROG, argv[i]);
            cache_help(stderr);
            return SL_CLI_USAGE;
        }
    }
    if (sub != NULL && strcmp(sub, "stats") == 0 && model == NULL && key == NULL) {
        return cache_stats(conf_file, since, json);
    }
    if (sub != NULL && strcmp(sub, "purge") == 0 && !json && !since_set) {
        if ((model != NULL && *model == '\0') || (key != NULL && *key == '\0')) {
            fprintf(stderr, "%s: --model and --key need a value\n", CACHE_PROG);
            return SL_CLI_USAGE;
        }
        return cache_purge(conf_file, model, key);
    }
    if (sub == NULL || (strcmp(sub, "stats") != 0 && strcmp(sub, "purge") != 0)) {
        fprintf(stderr, "%s: say stats or purge\n\n", CACHE_PROG);
    } else {
        fprintf(stderr, "%s: stats takes --since and --json, purge --model and --key\n\n",
                CACHE_PROG);
    }
    cache_help(stderr);
    return SL_CLI_USAGE;
}


static int
cache_stats(const char *conf_file, const char *since, bool json)
{
    sl_cache_report_t r;
    struct timespec ts;
    sl_conf_t *conf;
    sl_txn_t *t;
    sl_db_t *db;
    int64_t since_ns;
    int rc, status = SL_CLI_FAIL;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (sl_ledger_parse_since(since, (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec, &since_ns)
        != 0) {
        fprintf(stderr, "%s: --since wants a duration such as 24h, 7d or 30d, or all\n",
                CACHE_PROG);
        return SL_CLI_USAGE;
    }
    if (sl_cli_open_db(CACHE_PROG, conf_file, SL_DB_RDONLY, &db, &conf) != 0) {
        return SL_CLI_FAIL;
    }
    rc = sl_db_read(db, &t);
    if (rc == 0) {
        rc = sl_cache_report(t, since_ns, &r);
        sl_db_abort(t);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: reading the cache failed: %s\n", CACHE_PROG, sl_strerror(rc));
    } else if (json) {
        status = sl_cli_print_json(CACHE_PROG, sl_cache_report_json(&r, conf->cache.max_size));
    } else {
        cache_print(&r, conf->cache.max_size, since);
        status = SL_CLI_OK;
    }
    sl_db_close(db);
    sl_conf_destroy(conf);
    return status;
}


static void
cache_print(const sl_cache_report_t *r, size_t max_size, const char *since)
{
    uint64_t hits = r->hits + r->semantic_hits, all = hits + r->misses;
    uint64_t bp = all > 0 ? (hits * 10000 + all / 2) / all : 0;
    char saved[32], embed[32];

    printf("entries       %zu\n", r->entries);
    printf("bytes         %zu of %zu (cache.max_size)\n", r->bytes, max_size);
    printf("hits          %llu (%llu exact, %llu semantic) in %s\n", (unsigned long long) hits,
           (unsigned long long) r->hits, (unsigned long long) r->semantic_hits, since);
    printf("misses        %llu, %llu requests bypassed the cache\n", (unsigned long long) r->misses,
           (unsigned long long) r->bypassed);
    printf("hit ratio     %llu.%02llu%%\n", (unsigned long long) (bp / 100),
           (unsigned long long) (bp % 100));
    printf("saved (USD)   %s\n", sl_pricing_format_usd(r->saved_nusd, saved, sizeof(saved)));
    printf("embeddings    %llu requests, %s USD (the semantic cache's own usage)\n",
           (unsigned long long) r->embed_requests,
           sl_pricing_format_usd(r->embed_nusd, embed, sizeof(embed)));
}


static int
cache_purge(const char *conf_file, const char *model, const char *key)
{
    sl_db_t *db;
    size_t n = 0;
    int rc;

    if (sl_cli_open_db(CACHE_PROG, conf_file, 0, &db, NULL) != 0) {
        return SL_CLI_FAIL;
    }
    rc = sl_cache_purge(db, model, key, &n);
    sl_db_close(db);
    if (rc != 0) {
        fprintf(stderr, "%s: purging failed: %s\n", CACHE_PROG, sl_strerror(rc));
        return SL_CLI_FAIL;
    }
    printf("%zu entries deleted\n", n);
    return SL_CLI_OK;
}
