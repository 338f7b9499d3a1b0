/*
 * Team records on LMDB. Layout, version 1 (big-endian):
 *
 *     u8 version (1)   u8 period   u16 reserved (0)
 *     u64 budget (nano-USD)   i64 created   i64 updated
 *     u32 FNV-1a of everything before it
 *
 * The name is the record's key.
 */
#include "storage/teams.h"

#include <errno.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "storage/keys.h"

#define TEAMS_VERSION 1
#define TEAMS_REC_LEN 32

typedef struct teams_set_arg {
    const char *name;
    uint64_t budget;
    sl_budget_period_e period;
    int64_t now;
} teams_set_arg_t;

typedef struct teams_list_arg {
    sl_pool_t *pool;
    int (*cb)(void *arg, const sl_team_t *team);
    void *arg;
    bool corrupt;
} teams_list_arg_t;

static int teams_set_txn(sl_txn_t *t, void *arg);
static int teams_rm_txn(sl_txn_t *t, void *arg);
static int teams_list_cb(void *arg, sl_str_t key, sl_str_t val);
static void teams_encode(uint8_t *b, uint64_t budget, sl_budget_period_e period, int64_t created,
                         int64_t updated);
static int teams_decode(sl_str_t name, sl_str_t rec, sl_pool_t *pool, sl_team_t **out);
static uint64_t teams_get_u64(const uint8_t *p);
static uint32_t teams_fnv1a(const uint8_t *p, size_t len);


bool
sl_team_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > SL_KEY_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            return false;
        }
    }
    return true;
}


int
sl_teams_set(sl_db_t *db, const char *name, uint64_t budget, sl_budget_period_e period, int64_t now)
{
    teams_set_arg_t a = { name, budget, period, now };

    if (!sl_team_name_valid(name) || period < SL_BUDGET_DAY || period > SL_BUDGET_PERIOD_MAX) {
        return -EINVAL;
    }
    return sl_db_write(db, teams_set_txn, &a);
}


static int
teams_set_txn(sl_txn_t *t, void *arg)
{
    teams_set_arg_t *a = arg;
    uint8_t b[TEAMS_REC_LEN];
    int64_t created = a->now;
    sl_str_t old;
    int rc;

    rc = sl_db_get(t, SL_DBI_TEAMS, a->name, strlen(a->name), &old);
    if (rc == 0 && old.len == TEAMS_REC_LEN) {
        /* keep the creation time; a corrupt old record is simply replaced */
        created = (int64_t) teams_get_u64((const uint8_t *) old.p + 12);
    } else if (rc != 0 && rc != SL_ENOTFOUND) {
        return rc;
    }
    teams_encode(b, a->budget, a->period, created, a->now);
    return sl_db_put(t, SL_DBI_TEAMS, a->name, strlen(a->name), b, sizeof(b), false);
}


int
sl_teams_get(sl_txn_t *t, const char *name, sl_pool_t *pool, sl_team_t **team)
{
    sl_str_t rec, key = { name, strlen(name) };
    int rc;

    *team = NULL;
    if (key.len == 0 || key.len > SL_KEY_NAME_MAX) {
        return SL_ENOTFOUND;
    }
    rc = sl_db_get(t, SL_DBI_TEAMS, name, key.len, &rec);
    if (rc != 0) {
        return rc;
    }
    return teams_decode(key, rec, pool, team);
}


int
sl_teams_list(sl_txn_t *t, sl_pool_t *pool, int (*cb)(void *arg, const sl_team_t *team), void *arg)
{
    teams_list_arg_t a = { pool, cb, arg, false };
    int rc;

    rc = sl_db_scan(t, SL_DBI_TEAMS, NULL, 0, teams_list_cb, &a);
    if (rc == 0 && a.corrupt) {
        return SL_ESTORE;
    }
    return rc;
}


static int
teams_list_cb(void *arg, sl_str_t key, sl_str_t val)
{
    teams_list_arg_t *a = arg;
    sl_team_t *team;

    if (teams_decode(key, val, a->pool, &team) != 0) {
        a->corrupt = true;
        return 0;
    }
    return a->cb(a->arg, team);
}


int
sl_teams_rm(sl_db_t *db, const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > SL_KEY_NAME_MAX) {
        return SL_ENOTFOUND;
    }
    return sl_db_write(db, teams_rm_txn, (void *) name);
}


json_t *
sl_team_json(const sl_team_t *team)
{
    char usd[40], updated[32];
    json_t *j = json_object();

    if (j == NULL) {
        return NULL;
    }
    sl_budget_format_usd(team->budget, usd, sizeof(usd));
    sl_ledger_format_time(team->updated, updated, sizeof(updated));
    json_object_set_new(j, "team", json_string(team->name));
    json_object_set_new(j, "budget_usd", json_string(usd));
    json_object_set_new(j, "budget_nano_usd", json_integer((json_int_t) team->budget));
    json_object_set_new(j, "period", json_string(sl_budget_period_name(team->period)));
    json_object_set_new(j, "updated", json_string(updated));
    return j;
}

static int
teams_rm_txn(sl_txn_t *t, void *arg)
{
    const char *name = arg;

    return sl_db_del(t, SL_DBI_TEAMS, name, strlen(name));
}


static void
teams_encode(uint8_t *b, uint64_t budget, sl_budget_period_e period, int64_t created,
             int64_t updated)
{
    uint64_t v[3] = { budget, (uint64_t) created, (uint64_t) updated };
    uint32_t sum;

    b[0] = TEAMS_VERSION;
    b[1] = (uint8_t) period;
    b[2] = 0;
    b[3] = 0;
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < 8; i++) {
            b[4 + 8 * f + i] = (uint8_t) (v[f] >> (56 - 8 * i));
        }
    }
    sum = teams_fnv1a(b, TEAMS_REC_LEN - 4);
    b[28] = (uint8_t) (sum >> 24);
    b[29] = (uint8_t) (sum >> 16);
    b[30] = (uint8_t) (sum >> 8);
    b[31] = (uint8_t) sum;
}


static int
teams_decode(sl_str_t name, sl_str_t rec, sl_pool_t *pool, sl_team_t **out)
{
    const uint8_t *b = (const uint8_t *) rec.p;
    uint32_t sum;
    sl_team_t *team;
    char safe[SL_KEY_NAME_MAX + 1];
    const char *why = NULL;
    size_t n;

    if (rec.len != TEAMS_REC_LEN) {
        why = "bad length";
    } else if (b[0] != TEAMS_VERSION) {
        why = "unknown version";
    } else {
        sum = (uint32_t) b[28] << 24 | (uint32_t) b[29] << 16 | (uint32_t) b[30] << 8 | b[31];
        if (sum != teams_fnv1a(b, TEAMS_REC_LEN - 4)) {
            why = "checksum mismatch";
        } else if (b[1] > SL_BUDGET_PERIOD_MAX || b[2] != 0 || b[3] != 0) {
            why = "bad period or flags";
        }
    }
    if (why != NULL) {
        n = name.len < SL_KEY_NAME_MAX ? name.len : SL_KEY_NAME_MAX;
        for (size_t i = 0; i < n; i++) {
            safe[i] = name.p[i] > ' ' && name.p[i] < 0x7f ? name.p[i] : '?';
        }
        safe[n] = '\0';
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "team record \"%s\" is corrupt (%s), not used", safe,
               why);
        return SL_ESTORE;
    }
    team = sl_pcalloc(pool, sizeof(*team));
    team->name = sl_pstrndup(pool, name.p, name.len);
    team->period = (sl_budget_period_e) b[1];
    team->budget = teams_get_u64(b + 4);
    team->created = (int64_t) teams_get_u64(b + 12);
    team->updated = (int64_t) teams_get_u64(b + 20);
    *out = team;
    return 0;
}


static uint64_t
teams_get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}


static uint32_t
teams_fnv1a(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}
