/*
 * sluice stats: a terminal summary of the usage ledger. Spend today, over
 * the last 7 and 30 UTC calendar days (today included), the request count,
 * error rate, latency percentiles, response cache hits and their savings
 * of the 30 days, and the top keys and models by cost. Read-only, like `sluice usage`; integer
 * money throughout.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/gateway/pricing.h"
#include "storage/db.h"
#include "storage/ledger.h"

#define STATS_DEFAULT_CONF "etc/sluice.yaml"
#define STATS_NS           1000000000LL
#define STATS_DAYS         30
#define STATS_TOP          5
#define STATS_LABEL_MAX    44

int sl_cmd_stats(int argc, char **argv);

static void stats_help(FILE *f);
static int stats_run(const char *conf_file);
static int stats_collect(sl_db_t *db, int64_t since_ns, sl_ledger_agg_t *aggs[3]);
static void stats_print(const sl_ledger_agg_t *days, const sl_ledger_agg_t *keys,
                        const sl_ledger_agg_t *models, time_t now);
static void stats_top(const char *title, const sl_ledger_agg_t *a);
static const char *stats_usd(uint64_t nusd, char *buf, size_t size);
static const char *stats_ms(uint64_t us, char *buf, size_t size);
static const char *stats_percent(uint64_t part, uint64_t whole, char *buf, size_t size);
static const char *stats_label(const sl_ledger_group_t *g, char *buf, size_t size);


/*
 * Entry point: argv[0] is "stats", the rest are its options. Returns the
 * process exit status: 0, 1 on failure, 2 on a usage error.
 */
int
sl_cmd_stats(int argc, char **argv)
{
    const char *conf_file = STATS_DEFAULT_CONF;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            stats_help(stdout);
            return 0;
        }
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            conf_file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            conf_file = argv[i] + 9;
        } else {
            fprintf(stderr, "sluice stats: unknown option \"%s\"\n", argv[i]);
            stats_help(stderr);
            return 2;
        }
    }
    return stats_run(conf_file);
}


static void
stats_help(FILE *f)
{
    fprintf(f,
            "usage: sluice stats [-c FILE]\n"
            "\n"
            "A summary of the usage ledger: spend today, over 7 and 30 days (UTC calendar\n"
            "days, today included), requests, error rate, p50/p95 latency, cache hits and\n"
            "what they saved, and the top %d\n"
            "keys and models by cost over the 30 days.\n"
            "\n"
            "  -c FILE   configuration file (default %s)\n",
            STATS_TOP, STATS_DEFAULT_CONF);
}


static int
stats_run(const char *conf_file)
{
    sl_ledger_agg_t *aggs[3] = { NULL, NULL, NULL };
    char err[1024];
    sl_conf_t *conf;
    sl_db_t *db;
    time_t now = time(NULL);
    int64_t since;
    int rc, status = 1;

    rc = sl_conf_load_flags(conf_file, SL_CONF_NO_SECRETS, &conf, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    sl_cli_guard_storage("sluice stats", conf->storage_path);
    rc = sl_db_open(conf->storage_path, conf->storage_map_size, SL_DB_RDONLY, &db);
    if (rc != 0) {
        fprintf(stderr, "sluice stats: cannot open the storage at \"%s\": %s\n", conf->storage_path,
                sl_strerror(rc));
        goto out_conf;
    }

    /* midnight UTC, STATS_DAYS - 1 days ago */
    since = ((int64_t) now / 86400 - (STATS_DAYS - 1)) * 86400 * STATS_NS;
    rc = stats_collect(db, since, aggs);
    if (rc != 0) {
        fprintf(stderr, "sluice stats: reading the ledger failed: %s\n", sl_strerror(rc));
        goto out_db;
    }
    stats_print(aggs[0], aggs[1], aggs[2], now);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sluice stats: writing the output failed\n");
        goto out_db;
    }
    if (aggs[0]->skipped > 0) {
        fprintf(stderr,
                "sluice stats: %llu damaged ledger row(s) skipped, so the figures above leave "
                "them out: the file \"%s/data.mdb\" is damaged. Stop sluice, keep a copy of the "
                "file and restore the last backup (see \"Backup and recovery\" in README.md)\n",
                (unsigned long long) aggs[0]->skipped, conf->storage_path);
        goto out_db;
    }
    status = 0;

out_db:
    for (size_t i = 0; i < 3; i++) {
        sl_ledger_agg_free(aggs[i]);
    }
    sl_db_close(db);
out_conf:
    sl_conf_destroy(conf);
    return status;
}


/* By day, by key and by model, from one snapshot so the three agree. */
static int
stats_collect(sl_db_t *db, int64_t since_ns, sl_ledger_agg_t *aggs[3])
{
    static const sl_ledger_by_e by[3] = { SL_LEDGER_BY_DAY, SL_LEDGER_BY_KEY, SL_LEDGER_BY_MODEL };
    sl_txn_t *t;
    int rc;

    rc = sl_db_read(db, &t);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < 3 && rc == 0; i++) {
        rc = sl_ledger_aggregate(t, since_ns, 0, by[i], &aggs[i]);
    }
    sl_db_abort(t);
    return rc;
}


static void
stats_print(const sl_ledger_agg_t *days, const sl_ledger_agg_t *keys, const sl_ledger_agg_t *models,
            time_t now)
{
    const sl_ledger_group_t *all = &days->total;
    char today[16], week[16], b1[32], b2[32], b3[32];
    uint64_t spend_today = 0, spend_week = 0;
    time_t t;
    struct tm tm;

    t = now;
    gmtime_r(&t, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    t = now - 6 * 86400;
    gmtime_r(&t, &tm);
    strftime(week, sizeof(week), "%Y-%m-%d", &tm);
    for (size_t i = 0; i < days->ngroups; i++) {
        /* "YYYY-MM-DD" compares like the date it names */
        if (strcmp(days->groups[i].id, week) >= 0) {
            spend_week += days->groups[i].cost_nusd;
        }
        if (strcmp(days->groups[i].id, today) == 0) {
            spend_today = days->groups[i].cost_nusd;
        }
    }

    printf("spend (USD)   today %s   7 d %s   30 d %s\n", stats_usd(spend_today, b1, sizeof(b1)),
           stats_usd(spend_week, b2, sizeof(b2)), stats_usd(all->cost_nusd, b3, sizeof(b3)));
    printf("requests      %llu in 30 d, %llu errors (%s)", (unsigned long long) all->requests,
           (unsigned long long) all->errors,
           stats_percent(all->errors, all->requests, b1, sizeof(b1)));
    if (all->unpriced > 0) {
        printf(", %llu unpriced", (unsigned long long) all->unpriced);
    }
    printf("\n");
    printf("latency       p50 %s   p95 %s\n", stats_ms(all->p50_us, b1, sizeof(b1)),
           stats_ms(all->p95_us, b2, sizeof(b2)));
    printf("cache         %llu hits (%s of requests), saved %s USD\n",
           (unsigned long long) all->cache_hits,
           stats_percent(all->cache_hits, all->requests, b1, sizeof(b1)),
           stats_usd(all->saved_nusd, b2, sizeof(b2)));
    if (days->skipped > 0) {
        printf("warning       %llu corrupted ledger row(s) skipped\n",
               (unsigned long long) days->skipped);
    }
    stats_top("top keys by cost (30 d)", keys);
    stats_top("top models by cost (30 d)", models);
}


static void
stats_top(const char *title, const sl_ledger_agg_t *a)
{
    char usd[32], label[STATS_LABEL_MAX + 4];

    printf("\n%s\n", title);
    if (a->ngroups == 0) {
        printf("  (no requests)\n");
        return;
    }
    for (size_t i = 0; i < a->ngroups && i < STATS_TOP; i++) {
        printf("  %-*s %16s USD %10llu req\n", STATS_LABEL_MAX,
               stats_label(&a->groups[i], label, sizeof(label)),
               stats_usd(a->groups[i].cost_nusd, usd, sizeof(usd)),
               (unsigned long long) a->groups[i].requests);
    }
}


static const char *
stats_usd(uint64_t nusd, char *buf, size_t size)
{
    return sl_pricing_format_usd(nusd, buf, size);
}


/* "850 us", "12.3 ms", "4.56 s", "-" when there were no requests. */
static const char *
stats_ms(uint64_t us, char *buf, size_t size)
{
    if (us == 0) {
        snprintf(buf, size, "-");
    } else if (us < 1000) {
        snprintf(buf, size, "%llu us", (unsigned long long) us);
    } else if (us < 1000000) {
        snprintf(buf, size, "%llu.%llu ms", (unsigned long long) (us / 1000),
                 (unsigned long long) (us % 1000 / 100));
    } else {
        snprintf(buf, size, "%llu.%02llu s", (unsigned long long) (us / 1000000),
                 (unsigned long long) (us % 1000000 / 10000));
    }
    return buf;
}


/* part / whole as a percentage with two decimals, truncated; integer arithmetic. */
static const char *
stats_percent(uint64_t part, uint64_t whole, char *buf, size_t size)
{
    uint64_t bp;

    if (whole == 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    /* in two steps so that part * 10000 cannot overflow (whole stays far below 2^50) */
    bp = part / whole * 10000 + part % whole * 10000 / whole;
    snprintf(buf, size, "%llu.%02llu%%", (unsigned long long) (bp / 100),
             (unsigned long long) (bp % 100));
    return buf;
}


/*
 * "name (id)", or the id alone when they are the same, cut to
 * STATS_LABEL_MAX bytes with "..."; control characters become '?' (model
 * names come from clients) and "" shows as "-".
 */
static const char *
stats_label(const sl_ledger_group_t *g, char *buf, size_t size)
{
    char text[2 * SL_LEDGER_STR_MAX + 8];
    const char *s = text;
    size_t n = 0;

    if (strcmp(g->id, g->name) == 0) {
        snprintf(text, sizeof(text), "%s", g->id[0] != '\0' ? g->id : "-");
    } else {
        snprintf(text, sizeof(text), "%s (%s)", g->name, g->id);
    }
    for (; *s != '\0' && n + 4 < size && n < STATS_LABEL_MAX - 3; s++) {
        buf[n++] = ((unsigned char) *s < 0x20 || *s == 0x7f) ? '?' : *s;
    }
    if (*s != '\0') {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}
