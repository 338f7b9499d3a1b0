/*
 * The spend counters of budgets on the LMDB environment (storage/spend.h
 * says what they hold and how a request moves them).
 *
 * Spend value, version 1: one byte 0x01, be64 spent, be64 reserved.
 */
#include "storage/spend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/gateway/pricing.h"

#define SPEND_VERSION 1
#define SPEND_VAL_LEN 17
#define SPEND_ID_MAX  400 /* LMDB keys stop at 511 bytes */
#define SPEND_KEY_MAX (SPEND_ID_MAX + 16)

typedef struct spend_keys {
    sl_buf_t keys; /* each key: be16 length, bytes */
} spend_keys_t;

static uint64_t spend_sat_add(uint64_t a, uint64_t b);
static int spend_key(char *buf, sl_budget_kind_e kind, const char *id, sl_budget_period_e period,
                     time_t when, size_t *len);
static int spend_bucket(sl_txn_t *t, const sl_budget_ref_t *ref, time_t when, char *key,
                        size_t *klen, sl_spend_t *s);
static int spend_read(sl_txn_t *t, const char *key, size_t klen, sl_spend_t *s);
static int spend_write(sl_txn_t *t, const char *key, size_t klen, const sl_spend_t *s);
static int spend_collect(void *arg, sl_str_t key, sl_str_t val);


int
sl_spend_reserve(sl_txn_t *t, const sl_budget_ref_t *refs, size_t n, uint64_t estimate, time_t now,
                 sl_spend_denial_t *denial)
{
    char key[SPEND_KEY_MAX];
    sl_spend_t s;
    size_t klen;
    int rc;

    /* check all before writing any: a refusal changes nothing */
    for (size_t i = 0; i < n; i++) {
        rc = spend_bucket(t, &refs[i], now, key, &klen, &s);
        if (rc != 0) {
            return rc;
        }
        if (spend_sat_add(spend_sat_add(s.spent, s.reserved), estimate) > refs[i].budget_nusd) {
            if (denial != NULL) {
                denial->index = i;
                denial->remaining = sl_spend_remaining(refs[i].budget_nusd, &s);
            }
            return SL_EDENIED;
        }
    }
    if (estimate == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        /* read again: two refs may share a bucket */
        rc = spend_bucket(t, &refs[i], now, key, &klen, &s);
        if (rc == 0) {
            s.reserved = spend_sat_add(s.reserved, estimate);
            rc = spend_write(t, key, klen, &s);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


int
sl_spend_settle(sl_txn_t *t, const sl_budget_ref_t *refs, size_t n, uint64_t reserved,
                uint64_t actual, time_t reserved_at, time_t now)
{
    char key[SPEND_KEY_MAX];
    sl_spend_t s;
    size_t klen;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (reserved > 0) {
            rc = spend_bucket(t, &refs[i], reserved_at, key, &klen, &s);
            if (rc != 0) {
                return rc;
            }
            if (s.reserved < reserved) {
                /* only after sl_spend_clear_reserved ran under a live request */
                sl_log(&sl_log_main, SL_LOG_NOTICE, 0,
                       "spend: reservation of %llu on \"%.*s\" exceeds the %llu reserved",
                       (unsigned long long) reserved, (int) klen, key,
                       (unsigned long long) s.reserved);
            }
            s.reserved -= s.reserved < reserved ? s.reserved : reserved;
            rc = spend_write(t, key, klen, &s);
            if (rc != 0) {
                return rc;
            }
        }
        if (actual > 0) {
            rc = spend_bucket(t, &refs[i], now, key, &klen, &s);
            if (rc == 0) {
                s.spent = spend_sat_add(s.spent, actual);
                rc = spend_write(t, key, klen, &s);
            }
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}


int
sl_spend_get(sl_txn_t *t, sl_budget_kind_e kind, const char *id, sl_budget_period_e period,
             time_t now, sl_spend_t *out)
{
    char key[SPEND_KEY_MAX];
    size_t klen;
    int rc;

    rc = spend_key(key, kind, id, period, now, &klen);
    if (rc != 0) {
        return rc;
    }
    return spend_read(t, key, klen, out);
}


json_t *
sl_spend_json(sl_txn_t *t, sl_budget_kind_e kind, const char *id, uint64_t budget_nusd,
              sl_budget_period_e period, time_t now)
{
    char spent[32], reserved[32], left[32];
    sl_spend_t s;

    if (sl_spend_get(t, kind, id, period, now, &s) != 0) {
        return NULL;
    }
    sl_budget_format_usd(s.spent, spent, sizeof(spent));
    sl_budget_format_usd(s.reserved, reserved, sizeof(reserved));
    sl_budget_format_usd(sl_spend_remaining(budget_nusd, &s), left, sizeof(left));
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "period", sl_budget_period_name(period),
                     "spent_usd", spent, "reserved_usd", reserved, "remaining_usd", left,
                     "spent_nano_usd", (json_int_t) s.spent, "reserved_nano_usd",
                     (json_int_t) s.reserved);
}


uint64_t
sl_spend_remaining(uint64_t budget_nusd, const sl_spend_t *s)
{
    uint64_t used = spend_sat_add(s->spent, s->reserved);

    return used >= budget_nusd ? 0 : budget_nusd - used;
}


int
sl_spend_clear_reserved(sl_txn_t *t)
{
    spend_keys_t sk;
    sl_spend_t s;
    size_t off = 0, klen;
    int rc;

    sk.keys = SL_BUF_INIT;
    /* collect first: no writes under the scan's cursor */
    rc = sl_db_scan(t, SL_DBI_SPEND, NULL, 0, spend_collect, &sk);
    while (rc == 0 && off + 2 <= sk.keys.len) {
        klen = (size_t) (((uint8_t) sk.keys.p[off] << 8) | (uint8_t) sk.keys.p[off + 1]);
        off += 2;
        rc = spend_read(t, sk.keys.p + off, klen, &s);
        if (rc == 0) {
            s.reserved = 0;
            rc = spend_write(t, sk.keys.p + off, klen, &s);
        }
        off += klen;
    }
    sl_buf_free(&sk.keys);
    return rc;
}


int
sl_budget_period_parse(const char *s, sl_budget_period_e *out)
{
    for (int p = SL_BUDGET_DAY; p <= SL_BUDGET_PERIOD_MAX; p++) {
        if (strcmp(s, sl_budget_period_name((sl_budget_period_e) p)) == 0) {
            *out = (sl_budget_period_e) p;
            return 0;
        }
    }
    return SL_EPARSE;
}


const char *
sl_budget_period_name(sl_budget_period_e period)
{
    switch (period) {
    case SL_BUDGET_DAY:
        return "day";
    case SL_BUDGET_WEEK:
        return "week";
    case SL_BUDGET_MONTH:
        return "month";
    case SL_BUDGET_TOTAL:
        return "total";
    }
    return "?";
}


int
sl_budget_parse_usd(const char *s, uint64_t *nusd)
{
    uint64_t whole = 0, frac = 0, scale = SL_NUSD_PER_USD;
    const char *p = s;
    bool digits = false;

    if (*p == '$') {
        p++;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (UINT64_MAX / SL_NUSD_PER_USD) / 10) {
            return SL_EPARSE;
        }
        whole = whole * 10 + (uint64_t) (*p - '0');
        digits = true;
    }
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 1) {
                return SL_EPARSE; /* below a nano-dollar */
            }
            scale /= 10;
            frac += (uint64_t) (*p - '0') * scale;
            digits = true;
        }
    }
    if (!digits || *p != '\0' || whole > (UINT64_MAX - frac) / SL_NUSD_PER_USD) {
        return SL_EPARSE;
    }
    *nusd = whole * SL_NUSD_PER_USD + frac;
    return 0;
}


void
sl_budget_format_usd(uint64_t nusd, char *buf, size_t len)
{
    char frac[10];
    int n = 9;

    snprintf(frac, sizeof(frac), "%09llu", (unsigned long long) (nusd % SL_NUSD_PER_USD));
    while (n > 2 && frac[n - 1] == '0') {
        n--;
    }
    frac[n] = '\0';
    snprintf(buf, len, "%llu.%s", (unsigned long long) (nusd / SL_NUSD_PER_USD), frac);
}


/* a + b, UINT64_MAX when that overflows */
static uint64_t
spend_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}


/* "k:<id>:<bucket>" or "t:<team>:<bucket>" for the period containing when (UTC). */
static int
spend_key(char *buf, sl_budget_kind_e kind, const char *id, sl_budget_period_e period, time_t when,
          size_t *len)
{
    size_t idlen = id != NULL ? strlen(id) : 0;
    struct tm tm;
    int n;

    if (idlen == 0 || idlen > SPEND_ID_MAX) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "spend: invalid %s id of %zu bytes",
               kind == SL_BUDGET_TEAM ? "team" : "key", idlen);
        return SL_ESTORE;
    }
    if (period != SL_BUDGET_TOTAL && gmtime_r(&when, &tm) == NULL) {
        sl_log(&sl_log_main, SL_LOG_ERR, EOVERFLOW, "spend: gmtime_r(%lld) failed",
               (long long) when);
        return SL_ESTORE;
    }
    switch (period) {
    case SL_BUDGET_DAY:
        n = snprintf(buf, SPEND_KEY_MAX, "%c:%s:%04d%02d%02d", kind == SL_BUDGET_TEAM ? 't' : 'k',
                     id, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        break;
    case SL_BUDGET_MONTH:
        n = snprintf(buf, SPEND_KEY_MAX, "%c:%s:%04d%02d", kind == SL_BUDGET_TEAM ? 't' : 'k', id,
                     tm.tm_year + 1900, tm.tm_mon + 1);
        break;
    case SL_BUDGET_WEEK: {
        char week[16];

        /* ISO 8601: weeks start on Monday, week 1 holds the year's first Thursday */
        if (strftime(week, sizeof(week), "%GW%V", &tm) == 0) {
            return SL_ESTORE;
        }
        n = snprintf(buf, SPEND_KEY_MAX, "%c:%s:%s", kind == SL_BUDGET_TEAM ? 't' : 'k', id, week);
        break;
    }
    case SL_BUDGET_TOTAL:
    default:
        n = snprintf(buf, SPEND_KEY_MAX, "%c:%s:all", kind == SL_BUDGET_TEAM ? 't' : 'k', id);
        break;
    }
    if (n < 0 || n >= SPEND_KEY_MAX) {
        return SL_ESTORE;
    }
    *len = (size_t) n;
    return 0;
}


/* The key (SPEND_KEY_MAX bytes) and counters of ref's bucket for when. */
static int
spend_bucket(sl_txn_t *t, const sl_budget_ref_t *ref, time_t when, char *key, size_t *klen,
             sl_spend_t *s)
{
    int rc = spend_key(key, ref->kind, ref->id, ref->period, when, klen);

    return rc != 0 ? rc : spend_read(t, key, *klen, s);
}


/*
 * A record that does not decode is counted as {0, 0} and rewritten by the
 * next update: refusing would lock the key out for good, and LMDB's
 * copy-on-write pages make this a can't-happen worth a loud line.
 */
static int
spend_read(sl_txn_t *t, const char *key, size_t klen, sl_spend_t *s)
{
    const uint8_t *p;
    sl_str_t val;
    int rc;

    s->spent = 0;
    s->reserved = 0;
    rc = sl_db_get(t, SL_DBI_SPEND, key, klen, &val);
    if (rc == SL_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    p = (const uint8_t *) val.p;
    if (val.len != SPEND_VAL_LEN || p[0] != SPEND_VERSION) {
        sl_log(&sl_log_main, SL_LOG_CRIT, 0,
               "spend: record \"%.*s\" is corrupted (%zu bytes), counting it as 0", (int) klen, key,
               val.len);
        return 0;
    }
    for (int i = 1; i < 9; i++) {
        s->spent = (s->spent << 8) | p[i];
        s->reserved = (s->reserved << 8) | p[i + 8];
    }
    return 0;
}


static int
spend_write(sl_txn_t *t, const char *key, size_t klen, const sl_spend_t *s)
{
    uint8_t val[SPEND_VAL_LEN];

    val[0] = SPEND_VERSION;
    for (int i = 0; i < 8; i++) {
        /* big-endian */
        val[1 + i] = (uint8_t) (s->spent >> (56 - 8 * i));
        val[9 + i] = (uint8_t) (s->reserved >> (56 - 8 * i));
    }
    return sl_db_put(t, SL_DBI_SPEND, key, klen, val, sizeof(val), false);
}


static int
spend_collect(void *arg, sl_str_t key, sl_str_t val)
{
    spend_keys_t *sk = arg;
    uint8_t len[2];

    (void) val;
    if (key.len > 0xffff) {
        return 0;
    }
    len[0] = (uint8_t) (key.len >> 8);
    len[1] = (uint8_t) key.len;
    sl_buf_append(&sk->keys, len, sizeof(len));
    sl_buf_append(&sk->keys, key.p, key.len);
    return 0;
}
