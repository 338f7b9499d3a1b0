/*
 * The usage ledger on the LMDB environment (the spend counters are
 * storage/spend.c's).
 *
 * Ledger key: be64 time, be32 pid, be32 sequence. The time is the row's
 * (the request's arrival) plus a lag, 0 unless the row arrived at the
 * ledger after a later one: then the key goes just past the ledger's last
 * key, so that every row is appended (MDB_APPEND) and pages stay full.
 * Rows are written when their requests end, so with requests in parallel
 * about half of them come after a later-arriving one; inserted in the
 * middle, each split a full page in two and the ledger's pages were two
 * thirds full (more pages to write, write back and fault in per row). A
 * row more than LEDGER_LAG_MAX behind is inserted at its own time instead.
 * So rows are in key order, which is their time order give or take
 * LEDGER_LAG_MAX, and a scan from a time seeks to it and skips what
 * started before.
 *
 * Ledger value, version 4: one byte 0x04, then LEB128 varints for attempts,
 * status, prompt, completion, cached and cache-write tokens, cost, flags,
 * latency, first-byte latency, saved cost, reasoning tokens, 1-hour
 * cache-write tokens and time to first token, then eleven strings:
 * request id, key id, key name, team, endpoint, model, provider, served
 * model, cache status, guardrail decisions, trace id, then a varint, the
 * key's lag in ns. A string starts with a varint h: h & 3 is its form and
 * n = h >> 2. Form 0: n bytes, the string. Form 1: a varint p, p bytes,
 * then n bytes: the string is those p bytes followed by the 2n lowercase
 * hex digits of the n bytes (request and trace ids, the hex part of key
 * ids: a third of the row, stored in half the room). Form 2 (served model
 * only, n 0): the same as the model. Form 3 is not used.
 *
 * Version 3 (0x03) rows, written before, hold each string as a varint
 * length and its bytes. Version 2 rows also lack the lag (0). Version 1
 * rows have the first ten varints and eight strings; they read with the
 * rest zero or empty. A decoder accepts exactly these layouts; anything
 * else (another version or form, truncation, trailing bytes, a string
 * longer than SL_LEDGER_STR_MAX, a lag past the key's time) is a corrupted
 * row and is skipped.

 */
#include "storage/ledger.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/buf.h"
#include "core/base/crypto.h"
#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pid.h"
#include "core/base/str.h"
#include "core/gateway/pricing.h"
#include "storage/spend.h"

#define LEDGER_VERSION  4
#define LEDGER_KEY_LEN  SL_LEDGER_KEY_LEN
#define LEDGER_NSTRS    11
#define LEDGER_NINTS    14
#define LEDGER_V1_NSTRS 8
#define LEDGER_V1_NINTS 10
#define LEDGER_VARINT   10 /* bytes of the longest uint64 varint */
#define LEDGER_ROW_MAX                      \
    (1 + (LEDGER_NINTS + 1) * LEDGER_VARINT \
     + LEDGER_NSTRS * (2 * LEDGER_VARINT + SL_LEDGER_STR_MAX))
#define LEDGER_SERVED    7  /* the served model's index among the strings */
#define LEDGER_STR_BYTES 0u /* version 4 string forms (the header) */
#define LEDGER_STR_HEX   1u
#define LEDGER_STR_MODEL 2u
#define LEDGER_HEX_MIN   16                     /* hex digits: a shorter run is stored as bytes */
#define LEDGER_LAG_MAX   (3600 * 1000000000ull) /* ns: one hour */
#define LEDGER_NS        1000000000LL


/* The rows of one scan, and what the caller wants from them. */
typedef struct ledger_scan {
    int64_t since_ns;
    int64_t until_ns; /* INT64_MAX: no end */
    int (*cb)(void *arg, const sl_ledger_row_t *row);
    void *arg;
    sl_buf_t scratch; /* decoded strings of the current row */
    uint64_t skipped;
} ledger_scan_t;

typedef struct ledger_prune {
    sl_txn_t *t;
    uint8_t before[8];
    size_t max;
    size_t n;
} ledger_prune_t;

/* A group being built, with every latency for exact percentiles. */
typedef struct agg_group {
    sl_ledger_group_t g;
    uint64_t *lat;
    size_t nlat;
    size_t latcap;
} agg_group_t;

typedef struct agg_ctx {
    sl_ledger_by_e by;
    sl_pool_t *pool;
    agg_group_t *groups;
    size_t ngroups;
    size_t cap;
    size_t *slots; /* open addressing: group index + 1, 0 for empty */
    size_t nslots;
    agg_group_t total;
} agg_ctx_t;

static atomic_uint_fast32_t ledger_seq;

/* A lowercase hex digit's value plus one; 0 for every other byte (ledger_put_str). */
static const uint8_t ledger_hex[256] = {
    ['0'] = 1, ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static uint8_t *ledger_put_varint(uint8_t *p, uint64_t v);
static uint8_t *ledger_put_str(uint8_t *p, const char *s);
static bool ledger_hex8(const char *s);
static void ledger_pack8(const char *s, uint8_t *out);
static int ledger_get_str(const uint8_t **pp, const uint8_t *end, unsigned version,
                          const char *model, sl_buf_t *scratch, const char **out);
static int ledger_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v);
static int ledger_get_u32(const uint8_t **pp, const uint8_t *end, uint32_t *v);
static void ledger_put_be64(uint8_t *p, uint64_t v);
static uint64_t ledger_get_be64(const uint8_t *p);
static uint64_t ledger_lag(uint64_t start, sl_str_t last);
static void ledger_put_be32(uint8_t *p, uint32_t v);
static uint32_t ledger_get_be32(const uint8_t *p);
static int ledger_decode(sl_str_t key, sl_str_t val, sl_ledger_row_t *row, sl_buf_t *scratch);
static int ledger_scan_range(sl_txn_t *t, ledger_scan_t *sc, int64_t since_ns);
static int ledger_on_row(void *arg, sl_str_t key, sl_str_t val);
static int ledger_prune_txn(sl_txn_t *t, void *arg);
static int ledger_prune_row(void *arg, sl_str_t key, sl_str_t val);
static int agg_on_row(void *arg, const sl_ledger_row_t *row);
static agg_group_t *agg_group(agg_ctx_t *ac, const char *id);
static void agg_grow_slots(agg_ctx_t *ac);
static uint64_t agg_hash(const char *s);
static void agg_add(agg_group_t *ag, const sl_ledger_row_t *row);
static void agg_finish(agg_group_t *ag);
static int agg_cmp_cost(const void *a, const void *b);
static int agg_cmp_id(const void *a, const void *b);
static int agg_cmp_u64(const void *a, const void *b);
static uint64_t sat_add(uint64_t a, uint64_t b);
static size_t ledger_plain_run(const unsigned char *p, size_t max, bool ctrl);
static size_t ledger_utf8_len(const unsigned char *p);


int
sl_ledger_append(sl_txn_t *t, const sl_ledger_row_t *row)
{
    uint8_t key[LEDGER_KEY_LEN];

    return sl_ledger_append_key(t, row, key);
}


int
sl_ledger_has(sl_txn_t *t, const uint8_t key[SL_LEDGER_KEY_LEN])
{
    sl_str_t val;

    return sl_db_get(t, SL_DBI_LEDGER, key, LEDGER_KEY_LEN, &val);
}


int
sl_ledger_append_key(sl_txn_t *t, const sl_ledger_row_t *row, uint8_t key[SL_LEDGER_KEY_LEN])
{
    uint8_t val[LEDGER_ROW_MAX], *p = val, *end;
    uint64_t start, lag;
    sl_str_t last;
    uint32_t pid = row->pid != 0 ? row->pid : (uint32_t) sl_pid();
    const char *strs[LEDGER_NSTRS] = {
        row->request_id, row->key_id,       row->key_name, row->team,  row->endpoint, row->model,
        row->provider,   row->served_model, row->cache,    row->guard, row->trace_id,
    };
    const uint64_t ints[LEDGER_NINTS] = {
        row->attempts,
        row->status,
        row->prompt_tokens,
        row->completion_tokens,
        row->cached_tokens,
        row->cache_write_tokens,
        row->cost_nusd,
        row->flags,
        row->latency_us,
        row->first_byte_us,
        row->saved_nusd,
        row->reasoning_tokens,
        row->cache_write_1h_tokens,
        row->ttft_us,
    };
    int rc;

    *p++ = LEDGER_VERSION;
    for (size_t i = 0; i < LEDGER_NINTS; i++) {
        p = ledger_put_varint(p, ints[i]);
    }
    for (size_t i = 0; i < LEDGER_NSTRS; i++) {
        if (i == LEDGER_SERVED && row->served_model != NULL && row->served_model[0] != '\0'
            && row->model != NULL && strcmp(row->served_model, row->model) == 0) {
            *p++ = LEDGER_STR_MODEL; /* n 0 */
            continue;
        }
        p = ledger_put_str(p, strs[i]);
    }

    start = row->time_ns > 0 ? (uint64_t) row->time_ns : 0;
    ledger_put_be32(key + 8, pid);
    /* a collision needs the same ns, pid and a wrapped counter: try the next value */
    for (int tries = 0; tries < 4; tries++) {
        ledger_put_be64(key, start);
        ledger_put_be32(key + 12, (uint32_t) atomic_fetch_add(&ledger_seq, 1));
        end = ledger_put_varint(p, 0);
        rc = sl_db_append_only(t, SL_DBI_LEDGER, key, LEDGER_KEY_LEN, val, (size_t) (end - val),
                               &last);
        if (rc == 1) {
            lag = ledger_lag(start, last);
            ledger_put_be64(key, start + lag);
            end = ledger_put_varint(p, lag);
            /* a lag of 0 (the row is too far behind): an insert among the older rows */
            rc = lag > 0 ? sl_db_append_only(t, SL_DBI_LEDGER, key, LEDGER_KEY_LEN, val,
                                             (size_t) (end - val), &last)
                         : sl_db_append(t, SL_DBI_LEDGER, key, LEDGER_KEY_LEN, val,
                                        (size_t) (end - val));
            SL_ASSERT(rc != 1); /* the write lock is held: nothing came after last */
        }
        if (rc != -EEXIST) {
            return rc;
        }
    }
    sl_log(&sl_log_main, SL_LOG_ERR, 0, "ledger: no free key at %lld for pid %u",
           (long long) row->time_ns, pid);
    return SL_ESTORE;
}


/*
 * How far past its start time a row's key must go to sort after last (the
 * ledger's last key): 0 when that is more than LEDGER_LAG_MAX, or last is
 * not a ledger key.
 */
static uint64_t
ledger_lag(uint64_t start, sl_str_t last)
{
    uint64_t t;

    if (last.len != LEDGER_KEY_LEN) {
        return 0;
    }
    t = ledger_get_be64((const uint8_t *) last.p);
    if (t < start || t - start >= LEDGER_LAG_MAX || t == UINT64_MAX) {
        return 0;
    }
    return t - start + 1;
}


int
sl_ledger_scan(sl_txn_t *t, int64_t since_ns, int (*cb)(void *arg, const sl_ledger_row_t *row),
               void *arg)
{
    ledger_scan_t sc;
    int rc;

    memset(&sc, 0, sizeof(sc));
    sc.until_ns = INT64_MAX;
    sc.cb = cb;
    sc.arg = arg;
    rc = ledger_scan_range(t, &sc, since_ns);
    sl_buf_free(&sc.scratch);
    return rc;
}


int
sl_ledger_prune(sl_db_t *db, int64_t before_ns, size_t max_rows, size_t *deleted)
{
    ledger_prune_t pr;
    int rc = 0;

    pr.max = max_rows;
    pr.n = 0;
    ledger_put_be64(pr.before, before_ns > 0 ? (uint64_t) before_ns : 0);
    if (max_rows > 0 && before_ns > 0) {
        rc = sl_db_write(db, ledger_prune_txn, &pr);
    }
    if (deleted != NULL) {
        *deleted = rc == 0 ? pr.n : 0;
    }
    return rc;
}


int
sl_ledger_aggregate(sl_txn_t *t, int64_t since_ns, int64_t until_ns, sl_ledger_by_e by,
                    sl_ledger_agg_t **out)
{
    sl_ledger_agg_t *agg;
    ledger_scan_t sc;
    agg_ctx_t ac;
    int rc;

    *out = NULL;
    memset(&ac, 0, sizeof(ac));
    ac.by = by;
    ac.pool = sl_pool_create(0);
    if (ac.pool == NULL) {
        sl_log(&sl_log_main, SL_LOG_ERR, ENOMEM, "ledger: sl_pool_create() failed");
        return -ENOMEM;
    }
    ac.total.g.id = "total";
    ac.total.g.name = "total";

    memset(&sc, 0, sizeof(sc));
    sc.until_ns = until_ns > 0 ? until_ns : INT64_MAX;
    sc.cb = agg_on_row;
    sc.arg = &ac;
    rc = ledger_scan_range(t, &sc, since_ns);
    sl_buf_free(&sc.scratch);
    if (rc != 0) {
        goto out_free;
    }

    agg = sl_pcalloc(ac.pool, sizeof(sl_ledger_agg_t));
    agg->pool = ac.pool;
    agg->skipped = sc.skipped;
    agg->ngroups = ac.ngroups;
    agg->groups =
        sl_pcalloc(ac.pool, (ac.ngroups > 0 ? ac.ngroups : 1) * sizeof(sl_ledger_group_t));
    for (size_t i = 0; i < ac.ngroups; i++) {
        agg_finish(&ac.groups[i]);
        agg->groups[i] = ac.groups[i].g;
    }
    agg_finish(&ac.total);
    agg->total = ac.total.g;
    qsort(agg->groups, agg->ngroups, sizeof(sl_ledger_group_t),
          by == SL_LEDGER_BY_DAY ? agg_cmp_id : agg_cmp_cost);
    *out = agg;
    ac.pool = NULL;

out_free:
    for (size_t i = 0; i < ac.ngroups; i++) {
        free(ac.groups[i].lat);
    }
    free(ac.total.lat);
    free(ac.groups);
    free(ac.slots);
    sl_pool_destroy(ac.pool);
    return rc;
}


void
sl_ledger_agg_free(sl_ledger_agg_t *agg)
{
    if (agg == NULL) {
        return;
    }
    sl_pool_destroy(agg->pool);
}


int
sl_ledger_by_parse(const char *s, sl_ledger_by_e *out)
{
    static const char *const names[] = {
        [SL_LEDGER_BY_KEY] = "key",           [SL_LEDGER_BY_TEAM] = "team",
        [SL_LEDGER_BY_MODEL] = "model",       [SL_LEDGER_BY_PROVIDER] = "provider",
        [SL_LEDGER_BY_DAY] = "day",           [SL_LEDGER_BY_REQUEST] = "request",
        [SL_LEDGER_BY_ENDPOINT] = "endpoint",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (sl_ledger_by_e) i;
            return 0;
        }
    }
    return SL_EPARSE;
}


static uint8_t *
ledger_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t) v;
    return p;
}


/* A string in version 4's forms: bytes, or bytes then a run of hex digits packed. */
static uint8_t *
ledger_put_str(uint8_t *p, const char *s)
{
    size_t len, j, k;

    if (s == NULL || s[0] == '\0') {
        *p = 0; /* an absent field (team, cache, guard...): no strlen call */
        return p + 1;
    }
    len = strlen(s);
    if (len > SL_LEDGER_STR_MAX) {
        len = SL_LEDGER_STR_MAX;
        /* do not cut a UTF-8 sequence in half */
        while (len > 0 && ((uint8_t) s[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    /* the run of lowercase hex digits the string ends with, cut to an even length */
    j = len;
    while (j >= 8 && ledger_hex8(s + j - 8)) {
        j -= 8; /* ids are runs of 16 and 32 */
    }
    while (j > 0 && ledger_hex[(uint8_t) s[j - 1]] != 0) {
        j--;
    }
    j += (len - j) & 1;
    if (len - j < LEDGER_HEX_MIN) {
        p = ledger_put_varint(p, (uint64_t) len << 2 | LEDGER_STR_BYTES);
        memcpy(p, s, len);
        return p + len;
    }
    p = ledger_put_varint(p, (uint64_t) (len - j) / 2 << 2 | LEDGER_STR_HEX);
    p = ledger_put_varint(p, j);
    memcpy(p, s, j);
    p += j;
    for (k = j; k + 8 <= len; k += 8, p += 4) {
        ledger_pack8(s + k, p);
    }
    for (; k < len; k += 2) {
        *p++ = (uint8_t) ((ledger_hex[(uint8_t) s[k]] - 1) << 4
                          | (ledger_hex[(uint8_t) s[k + 1]] - 1));
    }
    return p;
}


/* Whether the 8 bytes at s are all lowercase hex digits (no branch per byte). */
static bool
ledger_hex8(const char *s)
{
    unsigned all = 1;

    for (unsigned i = 0; i < 8; i++) {
        all &= ledger_hex[(uint8_t) s[i]] != 0;
    }
    return all != 0;
}


/*
 * The 4 bytes that the 8 lowercase hex digits at s stand for, into out, a
 * word at a time: a digit's low nibble, plus 9 for a letter (bit 6 set),
 * is its value; then each pair of nibbles is joined into a byte, and the
 * four bytes moved together.
 */
static void
ledger_pack8(const char *s, uint8_t *out)
{
    uint64_t w = 0, n, m;

    for (unsigned i = 0; i < 8; i++) {
        w |= (uint64_t) (uint8_t) s[i] << (8 * i); /* the first digit lowest */
    }
    n = (w & 0x0f0f0f0f0f0f0f0full) + ((w >> 6) & 0x0101010101010101ull) * 9;
    m = ((n << 4) | (n >> 8)) & 0x00ff00ff00ff00ffull; /* byte 2i: digits 2i and 2i + 1 */
    m = (m | (m >> 8)) & 0x0000ffff0000ffffull;
    m = (m | (m >> 16)) & 0x00000000ffffffffull;
    for (unsigned i = 0; i < 4; i++) {
        out[i] = (uint8_t) (m >> (8 * i));
    }
}


/*
 * One string of a row of this version, copied NUL-terminated into scratch
 * (which has room: ledger_decode) as *out; model is the row's model when
 * the string is the served model, else NULL. SL_EPARSE when it is not one
 * the encoder writes.
 */
static int
ledger_get_str(const uint8_t **pp, const uint8_t *end, unsigned version, const char *model,
               sl_buf_t *scratch, const char **out)
{
    const uint8_t *p = *pp;
    uint64_t h, n = 0, len;
    unsigned form = LEDGER_STR_BYTES;
    char *o;

    if (ledger_get_varint(&p, end, &h) != 0) {
        return SL_EPARSE;
    }
    len = h;
    if (version >= 4) {
        form = (unsigned) (h & 3u);
        len = h >> 2;
    }
    if (form == LEDGER_STR_MODEL) {
        if (model == NULL || len != 0) {
            return SL_EPARSE;
        }
        len = strlen(model);
        SL_ASSERT(scratch->len + len < scratch->cap);
        *out = scratch->p + scratch->len;
        sl_buf_append(scratch, model, len + 1);
        *pp = p;
        return 0;
    }
    if (form == LEDGER_STR_HEX) {
        n = len; /* n bytes of hex after len bytes */
        if (n == 0 || ledger_get_varint(&p, end, &len) != 0) {
            return SL_EPARSE;
        }
    } else if (form != LEDGER_STR_BYTES) {
        return SL_EPARSE;
    }
    if (len > (uint64_t) (end - p) || n > (uint64_t) (end - p) - len
        || len + 2 * n > SL_LEDGER_STR_MAX || memchr(p, '\0', (size_t) len) != NULL) {
        return SL_EPARSE;
    }
    SL_ASSERT(scratch->len + len + 2 * n < scratch->cap);
    o = scratch->p + scratch->len;
    *out = o;
    memcpy(o, p, (size_t) len);
    sl_crypto_hex(p + len, (size_t) n, o + len); /* NUL-terminated, also when n is 0 */
    scratch->len += (size_t) (len + 2 * n + 1);
    *pp = p + len + n;
    return 0;
}


static int
ledger_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p == end) {
            return SL_EPARSE;
        }
        if (shift == 63 && *p > 1) {
            return SL_EPARSE;
        }
        r |= (uint64_t) (*p & 0x7f) << shift;
        if ((*p++ & 0x80) == 0) {
            *pp = p;
            *v = r;
            return 0;
        }
    }
    return SL_EPARSE;
}


static int
ledger_get_u32(const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
    uint64_t w;

    if (ledger_get_varint(pp, end, &w) != 0 || w > UINT32_MAX) {
        return SL_EPARSE;
    }
    *v = (uint32_t) w;
    return 0;
}


static void
ledger_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}


static uint64_t
ledger_get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}


static void
ledger_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}


static uint32_t
ledger_get_be32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}


/*
 * Decodes one row; its strings are copied, NUL-terminated, into scratch,
 * which is sized up front so the pointers stay valid. SL_EPARSE when the
 * key or value is not exactly a row of version 1 to 4.
 */
static int
ledger_decode(sl_str_t key, sl_str_t val, sl_ledger_row_t *row, sl_buf_t *scratch)
{
    const uint8_t *p = (const uint8_t *) val.p, *end = p + val.len, *k = (const uint8_t *) key.p;
    const char **strs[LEDGER_NSTRS] = {
        &row->request_id, &row->key_id, &row->key_name, &row->team,
        &row->endpoint,   &row->model,  &row->provider, &row->served_model,
        &row->cache,      &row->guard,  &row->trace_id,
    };
    uint64_t time, lag;
    unsigned version;
    size_t nstrs;

    if (key.len != LEDGER_KEY_LEN || val.len < 1 || *p < 1 || *p > LEDGER_VERSION) {
        return SL_EPARSE;
    }
    version = *p++;
    nstrs = version == 1 ? LEDGER_V1_NSTRS : LEDGER_NSTRS;
    time = ledger_get_be64(k);
    if (time > INT64_MAX) {
        return SL_EPARSE;
    }
    memset(row, 0, sizeof(*row));
    row->time_ns = (int64_t) time;
    row->pid = ledger_get_be32(k + 8);
    row->seq = ledger_get_be32(k + 12);

    if (ledger_get_u32(&p, end, &row->attempts) != 0 || ledger_get_u32(&p, end, &row->status) != 0
        || ledger_get_varint(&p, end, &row->prompt_tokens) != 0
        || ledger_get_varint(&p, end, &row->completion_tokens) != 0
        || ledger_get_varint(&p, end, &row->cached_tokens) != 0
        || ledger_get_varint(&p, end, &row->cache_write_tokens) != 0
        || ledger_get_varint(&p, end, &row->cost_nusd) != 0
        || ledger_get_u32(&p, end, &row->flags) != 0
        || ledger_get_varint(&p, end, &row->latency_us) != 0
        || ledger_get_varint(&p, end, &row->first_byte_us) != 0) {
        return SL_EPARSE;
    }
    if (version != 1
        && (ledger_get_varint(&p, end, &row->saved_nusd) != 0
            || ledger_get_varint(&p, end, &row->reasoning_tokens) != 0
            || ledger_get_varint(&p, end, &row->cache_write_1h_tokens) != 0
            || ledger_get_varint(&p, end, &row->ttft_us) != 0)) {
        return SL_EPARSE;
    }

    /*
     * room for every string, so that the pointers handed out stay valid:
     * each string's bytes once and its packed hex twice over (2 * val.len
     * at most), the served model as the model (SL_LEDGER_STR_MAX at most)
     * and the NULs
     */
    sl_buf_clear(scratch);
    sl_buf_reserve(scratch, 2 * val.len + SL_LEDGER_STR_MAX + LEDGER_NSTRS + 1);
    for (size_t i = 0; i < LEDGER_NSTRS; i++) {
        if (i >= nstrs) {
            *strs[i] = ""; /* a version 1 row */
            continue;
        }
        if (ledger_get_str(&p, end, version, i == LEDGER_SERVED ? row->model : NULL, scratch,
                           strs[i])
            != 0) {
            return SL_EPARSE;
        }
    }
    if (version >= 3) {
        if (ledger_get_varint(&p, end, &lag) != 0 || lag > time) {
            return SL_EPARSE;
        }
        row->time_ns = (int64_t) (time - lag);
    }
    return p == end ? 0 : SL_EPARSE;
}


static int
ledger_scan_range(sl_txn_t *t, ledger_scan_t *sc, int64_t since_ns)
{
    uint8_t from[8];

    sc->since_ns = since_ns;
    ledger_put_be64(from, since_ns > 0 ? (uint64_t) since_ns : 0);
    return sl_db_scan(t, SL_DBI_LEDGER, from, sizeof(from), ledger_on_row, sc);
}


static int
ledger_on_row(void *arg, sl_str_t key, sl_str_t val)
{
    ledger_scan_t *sc = arg;
    sl_ledger_row_t row;
    const uint8_t *k = (const uint8_t *) key.p;

    /* a key is its row's time plus at most LEDGER_LAG_MAX (no overflow: until_ns <= INT64_MAX) */
    if (key.len >= 8 && ledger_get_be64(k) >= (uint64_t) sc->until_ns + LEDGER_LAG_MAX) {
        return 1;
    }
    if (ledger_decode(key, val, &row, &sc->scratch) != 0) {
        sc->skipped++;
        if (key.len == LEDGER_KEY_LEN) {
            sl_log(&sl_log_main, SL_LOG_WARN, 0,
                   "ledger: skipping corrupted row %llu-%u-%u (%zu bytes, version %u)",
                   (unsigned long long) ledger_get_be64(k), ledger_get_be32(k + 8),
                   ledger_get_be32(k + 12), val.len, val.len > 0 ? (uint8_t) val.p[0] : 0);
        } else {
            sl_log(&sl_log_main, SL_LOG_WARN, 0, "ledger: skipping a row with a %zu-byte key",
                   key.len);
        }
        return 0;
    }
    if (row.time_ns < sc->since_ns || row.time_ns >= sc->until_ns) {
        return 0; /* its key lags: it came in before since (or after until) */
    }
    return sc->cb(sc->arg, &row);
}


static int
ledger_prune_txn(sl_txn_t *t, void *arg)
{
    ledger_prune_t *pr = arg;

    /* sl_db_write may run this twice: count only the run that commits */
    pr->t = t;
    pr->n = 0;
    return sl_db_scan(t, SL_DBI_LEDGER, NULL, 0, ledger_prune_row, pr);
}


static int
ledger_prune_row(void *arg, sl_str_t key, sl_str_t val)
{
    ledger_prune_t *pr = arg;
    size_t n = key.len < 8 ? key.len : 8;
    int c, rc;

    if (pr->n >= pr->max) {
        return 1;
    }
    c = memcmp(key.p, pr->before, n);
    if (c > 0 || (c == 0 && key.len >= 8)) {
        return 1;
    }
    (void) val;
    rc = sl_db_del(pr->t, SL_DBI_LEDGER, key.p, key.len);
    if (rc != 0) {
        return rc;
    }
    pr->n++;
    return 0;
}


static int
agg_on_row(void *arg, const sl_ledger_row_t *row)
{
    agg_ctx_t *ac = arg;
    agg_group_t *ag;
    const char *id;
    char day[48];
    struct tm tm;
    time_t secs;

    switch (ac->by) {
    case SL_LEDGER_BY_KEY:
        id = row->key_id[0] != '\0' ? row->key_id : row->key_name;
        break;
    case SL_LEDGER_BY_TEAM:
        id = row->team;
        break;
    case SL_LEDGER_BY_MODEL:
        id = row->model;
        break;
    case SL_LEDGER_BY_PROVIDER:
        id = row->provider;
        break;
    case SL_LEDGER_BY_REQUEST:
        id = row->request_id;
        break;
    case SL_LEDGER_BY_ENDPOINT:
        id = row->endpoint;
        break;
    case SL_LEDGER_BY_DAY:
    default:
        secs = (time_t) (row->time_ns / LEDGER_NS);
        if (gmtime_r(&secs, &tm) == NULL) {
            return 0;
        }
        snprintf(day, sizeof(day), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        id = day;
        break;
    }

    ag = agg_group(ac, id);
    if (ac->by == SL_LEDGER_BY_KEY && strcmp(ag->g.name, row->key_name) != 0) {
        /* rows come oldest first: the newest name wins */
        ag->g.name = sl_pstrdup(ac->pool, row->key_name);
    } else if (ac->by == SL_LEDGER_BY_REQUEST && strcmp(ag->g.name, row->model) != 0) {
        ag->g.name = sl_pstrdup(ac->pool, row->model);
    }
    if (ac->by == SL_LEDGER_BY_REQUEST && row->trace_id[0] != '\0') {
        ag->g.trace_id = sl_pstrdup(ac->pool, row->trace_id);
    }
    if (ac->by == SL_LEDGER_BY_REQUEST && (ag->g.guard == NULL || row->guard[0] != '\0')) {
        ag->g.guard = sl_pstrdup(ac->pool, row->guard);
    }
    agg_add(ag, row);
    agg_add(&ac->total, row);
    return 0;
}


static agg_group_t *
agg_group(agg_ctx_t *ac, const char *id)
{
    agg_group_t *ag;
    size_t mask, i;

    if (ac->nslots == 0 || (ac->ngroups + 1) * 2 > ac->nslots) {
        agg_grow_slots(ac);
    }
    mask = ac->nslots - 1;
    for (i = agg_hash(id) & mask; ac->slots[i] != 0; i = (i + 1) & mask) {
        ag = &ac->groups[ac->slots[i] - 1];
        if (strcmp(ag->g.id, id) == 0) {
            return ag;
        }
    }

    if (ac->ngroups == ac->cap) {
        ac->cap = ac->cap == 0 ? 16 : ac->cap * 2;
        ac->groups = sl_xrealloc(ac->groups, ac->cap * sizeof(agg_group_t));
    }
    ag = &ac->groups[ac->ngroups++];
    memset(ag, 0, sizeof(*ag));
    ag->g.id = sl_pstrdup(ac->pool, id);
    ag->g.name = ag->g.id;
    ac->slots[i] = ac->ngroups;
    return ag;
}


static void
agg_grow_slots(agg_ctx_t *ac)
{
    size_t n = ac->nslots == 0 ? 64 : ac->nslots * 2, mask = n - 1, j;

    free(ac->slots);
    ac->slots = sl_xcalloc(n, sizeof(size_t));
    ac->nslots = n;
    for (size_t i = 0; i < ac->ngroups; i++) {
        for (j = agg_hash(ac->groups[i].g.id) & mask; ac->slots[j] != 0; j = (j + 1) & mask) {
        }
        ac->slots[j] = i + 1;
    }
}


/* FNV-1a */
static uint64_t
agg_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s != '\0'; s++) {
        h = (h ^ (uint8_t) *s) * 1099511628211ULL;
    }
    return h;
}


static void
agg_add(agg_group_t *ag, const sl_ledger_row_t *row)
{
    sl_ledger_group_t *g = &ag->g;

    g->requests++;
    g->errors += row->status >= 400 ? 1 : 0;
    g->unpriced += (row->flags & SL_LEDGER_UNPRICED) != 0 ? 1 : 0;
    g->worker_died += (row->flags & SL_LEDGER_WORKER_DIED) != 0 ? 1 : 0;
    g->flags |= row->flags;
    g->prompt_tokens = sat_add(g->prompt_tokens, row->prompt_tokens);
    g->completion_tokens = sat_add(g->completion_tokens, row->completion_tokens);
    g->cached_tokens = sat_add(g->cached_tokens, row->cached_tokens);
    g->cache_write_tokens = sat_add(g->cache_write_tokens, row->cache_write_tokens);
    g->cost_nusd = sat_add(g->cost_nusd, row->cost_nusd);
    g->cache_hits += (row->flags & SL_LEDGER_CACHE_HIT) != 0 ? 1 : 0;
    g->saved_nusd = sat_add(g->saved_nusd, row->saved_nusd);
    if (ag->nlat == ag->latcap) {
        ag->latcap = ag->latcap == 0 ? 64 : ag->latcap * 2;
        ag->lat = sl_xrealloc(ag->lat, ag->latcap * sizeof(uint64_t));
    }
    ag->lat[ag->nlat++] = row->latency_us;
}


/* Nearest-rank percentiles: the smallest value with at least p% of the rows at or below it. */
static void
agg_finish(agg_group_t *ag)
{
    size_t n = ag->nlat;

    if (n == 0) {
        return;
    }
    qsort(ag->lat, n, sizeof(uint64_t), agg_cmp_u64);
    ag->g.p50_us = ag->lat[(n * 50 + 99) / 100 - 1];
    ag->g.p95_us = ag->lat[(n * 95 + 99) / 100 - 1];
}


static int
agg_cmp_cost(const void *a, const void *b)
{
    const sl_ledger_group_t *ga = a, *gb = b;

    if (ga->cost_nusd != gb->cost_nusd) {
        return ga->cost_nusd > gb->cost_nusd ? -1 : 1;
    }
    if (ga->requests != gb->requests) {
        return ga->requests > gb->requests ? -1 : 1;
    }
    return strcmp(ga->id, gb->id);
}


static int
agg_cmp_id(const void *a, const void *b)
{
    const sl_ledger_group_t *ga = a, *gb = b;

    return strcmp(ga->id, gb->id);
}


static int
agg_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}


static uint64_t
sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}


void
sl_ledger_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t) t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, len, "%lld", (long long) t);
        return;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


int
sl_ledger_parse_since(const char *s, int64_t now_ns, int64_t *since_ns)
{
    uint64_t ms;

    if (strcmp(s, "all") == 0) {
        *since_ns = 0;
        return 0;
    }
    if (sl_conf_parse_duration(s, &ms) != 0 || ms == 0 || ms > (uint64_t) (now_ns / 1000000)) {
        return SL_EPARSE;
    }
    *since_ns = now_ns - (int64_t) ms * 1000000;
    return 0;
}


json_t *
sl_ledger_group_json(const sl_ledger_group_t *g)
{
    char usd[32], saved[32], id[SL_LEDGER_STR_MAX + 1], name[SL_LEDGER_STR_MAX + 1], names[128];
    char trace[SL_LEDGER_STR_MAX + 1];
    json_t *flags = json_array(), *j;
    const char *p, *comma;

    if (g->trace_id != NULL) {
        sl_ledger_utf8_clean(g->trace_id, false, trace, sizeof(trace));
    }
    sl_ledger_utf8_clean(g->id, false, id, sizeof(id));
    sl_ledger_utf8_clean(g->name, false, name, sizeof(name));
    sl_ledger_flag_names(g->flags, names, sizeof(names));
    for (p = names; flags != NULL && *p != '\0'; p = *comma != '\0' ? comma + 1 : comma) {
        comma = strchr(p, ',');
        if (comma == NULL) {
            comma = p + strlen(p);
        }
        json_array_append_new(flags, json_stringn(p, (size_t) (comma - p)));
    }
    j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:s, s:I, s:o*, s:s*}", "id", id,
                  "name", name, "requests", (json_int_t) g->requests, "errors",
                  (json_int_t) g->errors, "prompt_tokens", (json_int_t) g->prompt_tokens,
                  "completion_tokens", (json_int_t) g->completion_tokens, "cached_tokens",
                  (json_int_t) g->cached_tokens, "cost_usd",
                  sl_pricing_format_usd(g->cost_nusd, usd, sizeof(usd)), "cache_hits",
                  (json_int_t) g->cache_hits, "saved_usd",
                  sl_pricing_format_usd(g->saved_nusd, saved, sizeof(saved)), "worker_died",
                  (json_int_t) g->worker_died, "flags", flags, "trace_id",
                  g->trace_id != NULL ? trace : NULL);
    if (j != NULL && g->guard != NULL) {
        sl_ledger_utf8_clean(g->guard, false, id, sizeof(id));
        json_object_set_new(j, "guard", json_string(id));
    }

    return j;
}


void
sl_ledger_flag_names(uint32_t flags, char *buf, size_t len)
{
    static const char *const names[] = { "unpriced",    "estimated",      "stream", "cache_hit",
                                         "worker_died", "cache_semantic", "gateway" };
    size_t n = 0;

    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((flags & (1u << i)) != 0) {
            n += (size_t) snprintf(buf + n, n < len ? len - n : 0, "%s%s", n > 0 ? "," : "",
                                   names[i]);
        }
    }
}


void
sl_ledger_utf8_clean(const char *s, bool ctrl, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t o = 0, n;

    if (*p == '\0') {
        out[0] = '\0'; /* an absent field, the commonest string of all */
        return;
    }
    /* the leading run of plain ASCII (most strings, whole) in one copy; the loop stops there too */
    if (size > 4) {
        o = ledger_plain_run(p, size - 4, ctrl);
        memcpy(out, p, o);
        p += o;
    }
    while (*p != '\0' && o + 4 < size) {
        if (*p < 0x80 && (!ctrl || (*p >= 0x20 && *p != 0x7f))) {
            out[o++] = (char) *p++; /* ASCII, the common case: no decoding */
            continue;
        }
        n = ledger_utf8_len(p);
        if (n == 0 || (ctrl && (*p < 0x20 || *p == 0x7f))) {
            out[o++] = '?';
            p++;
            continue;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
}


/*
 * Bytes at the start of NUL-terminated p, at most max, that
 * sl_ledger_utf8_clean() copies as they are without decoding: ASCII other
 * than NUL (with ctrl, printable ASCII). Eight bytes a step inside the
 * string's length (strnlen: nothing past the NUL is read).
 */
static size_t
ledger_plain_run(const unsigned char *p, size_t max, bool ctrl)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t len = strnlen((const char *) p, max), i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w, bad, del;

        memcpy(&w, p + i, 8);
        bad = w & high;
        if (ctrl) {
            del = w ^ (0x7f * ones);
            bad |= (w - 0x20 * ones) & ~w & high; /* a byte below 0x20 */
            bad |= (del - ones) & ~del & high;    /* a 0x7f */
        }
        if (bad != 0) {
            break;
        }
    }
    for (; i < len; i++) {
        if (p[i] >= 0x80 || (ctrl && (p[i] < 0x20 || p[i] == 0x7f))) {
            break;
        }
    }
    return i;
}


/* Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 when it is not one. */
static size_t
ledger_utf8_len(const unsigned char *p)
{
    /* p is NUL-terminated: a NUL is never a continuation byte, so nothing past it is read */
    return sl_utf8_char_len((const char *) p, 4);
}
