/*
 * Team records on LMDB. Layout, version 2 (big-endian):
 *
 *     u8 version (2)   u8 period   u16 reserved (0)
 *     u64 budget (nano-USD; 0: none)   i64 created   i64 updated
 *     u16 length + the guard policy name ("" for none)   (version 2)
 *     u32 FNV-1a of everything before it
 *
 * Version 1 records (32 bytes, no guard) are still read; every write is
 * version 2. The name is the record's key.
 */
#include "storage/teams.h"

#include <errno.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "storage/keys.h"
#include "storage/ledger.h"
#include "storage/spend.h"

#define TEAMS_VERSION    2
#define TEAMS_VERSION_V1 1
#define TEAMS_REC_LEN    32 /* version 1; version 2 adds 2 + the guard's length */
#define TEAMS_GUARD_AT   28 /* where version 2 keeps the guard */
#define TEAMS_REC_MAX    (TEAMS_REC_LEN + 2 + SL_KEY_NAME_MAX)

typedef struct teams_set_arg {
    const char *name;
    uint64_t budget;
    sl_budget_period_e period;
    int64_t now;
    bool set_budget;
    const char *guard; /* !set_budget: the new guard ("" clears) */
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
static size_t teams_encode(uint8_t *b, uint64_t budget, sl_budget_period_e period, int64_t created,
                           int64_t updated, const char *guard);
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
    teams_set_arg_t a = { name, budget, period, now, true, NULL };

    if (!sl_team_name_valid(name) || period < SL_BUDGET_DAY || period > SL_BUDGET_PERIOD_MAX) {
        return -EINVAL;
    }
    return sl_db_write(db, teams_set_txn, &a);
}


int
sl_teams_set_guard(sl_db_t *db, const char *name, const char *guard, int64_t now)
{
    teams_set_arg_t a = { name, 0, SL_BUDGET_MONTH, now, false, guard != NULL ? guard : "" };

    if (!sl_team_name_valid(name) || (*a.guard != '\0' && !sl_team_name_valid(a.guard))) {
        return -EINVAL;
    }
    return sl_db_write(db, teams_set_txn, &a);
}


static int
teams_set_txn(sl_txn_t *t, void *arg)
{
    teams_set_arg_t *a = arg;
    uint8_t b[TEAMS_REC_MAX];
    int64_t created = a->now;
    uint64_t budget = a->budget;
    sl_budget_period_e period = a->period;
    const char *guard = a->guard != NULL ? a->guard : "";
    sl_pool_t *pool;
    sl_team_t *old;
    size_t len;
    int rc;

    pool = sl_pool_create(0);
    if (pool == NULL) {
        return -ENOMEM;
    }
    rc = sl_teams_get(t, a->name, pool, &old);
    if (rc == 0) {
        /* keep the creation time and what this call does not change */
        created = old->created;
        if (a->set_budget) {
            guard = old->guard != NULL ? old->guard : "";
        } else {
            budget = old->budget;
            period = old->period;
        }
    } else if (rc != SL_ENOTFOUND && rc != SL_ESTORE) {
        sl_pool_destroy(pool);
        return rc; /* a corrupt old record is simply replaced */
    }
    len = teams_encode(b, budget, period, created, a->now, guard);
    rc = sl_db_put(t, SL_DBI_TEAMS, a->name, strlen(a->name), b, len, false);
    sl_pool_destroy(pool);
    return rc;
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
    json_object_set_new(j, "budget_usd", team->budget != 0 ? json_string(usd) : json_null());
    json_object_set_new(j, "budget_nano_usd", json_integer((json_int_t) team->budget));
    json_object_set_new(j, "period",
                        team->budget != 0 ? json_string(sl_budget_period_name(team->period))
                                          : json_null());
    json_object_set_new(j, "updated", json_string(updated));
    json_object_set_new(j, "guard", team->guard != NULL ? json_string(team->guard) : json_null());
    return j;
}

static int
teams_rm_txn(sl_txn_t *t, void *arg)
{
    const char *name = arg;

    return sl_db_del(t, SL_DBI_TEAMS, name, strlen(name));
}


/* A version 2 record into b (TEAMS_REC_MAX bytes); returns its length. */
static size_t
teams_encode(uint8_t *b, uint64_t budget, sl_budget_period_e period, int64_t created,
             int64_t updated, const char *guard)
{
    uint64_t v[3] = { budget, (uint64_t) created, (uint64_t) updated };
    size_t glen = strlen(guard), len = TEAMS_REC_LEN + 2 + glen;
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
    b[TEAMS_GUARD_AT] = (uint8_t) (glen >> 8);
    b[TEAMS_GUARD_AT + 1] = (uint8_t) glen;
    memcpy(b + TEAMS_GUARD_AT + 2, guard, glen);
    sum = teams_fnv1a(b, len - 4);
    b[len - 4] = (uint8_t) (sum >> 24);
    b[len - 3] = (uint8_t) (sum >> 16);
    b[len - 2] = (uint8_t) (sum >> 8);
    b[len - 1] = (uint8_t) sum;
    return len;
}


static int
teams_decode(sl_str_t name, sl_str_t rec, sl_pool_t *pool, sl_team_t **out)
{
    const uint8_t *b = (const uint8_t *) rec.p;
    uint32_t sum;
    sl_team_t *team;
    char safe[SL_KEY_NAME_MAX + 1];
    const char *why = NULL;
    size_t n, glen = 0;

    if (rec.len < TEAMS_REC_LEN) {
        why = "bad length";
    } else if (b[0] != TEAMS_VERSION && b[0] != TEAMS_VERSION_V1) {
        why = "unknown version";
    } else if (b[0] == TEAMS_VERSION_V1
                   ? rec.len != TEAMS_REC_LEN
                   : rec.len < TEAMS_REC_LEN + 2
                         || (glen = (size_t) b[TEAMS_GUARD_AT] << 8 | b[TEAMS_GUARD_AT + 1])
                                != rec.len - TEAMS_REC_LEN - 2
                         || glen > SL_KEY_NAME_MAX
                         || memchr(b + TEAMS_GUARD_AT + 2, '\0', glen) != NULL) {
        why = "bad length";
    } else {
        size_t e = rec.len - 4;

        sum =
            (uint32_t) b[e] << 24 | (uint32_t) b[e + 1] << 16 | (uint32_t) b[e + 2] << 8 | b[e + 3];
        if (sum != teams_fnv1a(b, e)) {
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
    if (glen > 0) {
        team->guard = sl_pstrndup(pool, (const char *) b + TEAMS_GUARD_AT + 2, glen);
    }
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
