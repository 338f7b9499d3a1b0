/*
 * The response cache's store (storage/cache.h): entries, their age index
 * and the semantic cache's vectors, with a byte counter that keeps the
 * cache under its cap by evicting the oldest entries first.
 *
 * Layouts (native byte order, like LMDB's own pages; the store never
 * leaves the machine except in a backup, which is restored on the same
 * kind of machine):
 *
 *   entry   u8 version (1), u8 flags (1: has a vector), u16 0, u32 api,
 *           i64 created ns, i64 expires s, u64 cost nano-USD,
 *           [16 bytes partition, when it has a vector],
 *           seven strings (u32 length, bytes, NUL): model, key id, key
 *           name, team, provider, target model, served model; u32 length +
 *           the answer
 *   age     key be64 created ns + entry key, value be64 expires s
 *   vector  key partition + entry key, value: 16 bytes context, i64
 *           expires s, u32 dims, u32 words, u32 words[], f32 v[]
 *   stats   SL_DBI_CACHE under "stats": u64 entries, u64 bytes
 */
#include "storage/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/gateway/pricing.h"
#include "storage/ledger.h"

#define CACHE_VERSION    1
#define CACHE_FLAG_VEC   0x1u
#define CACHE_HEAD       32 /* the fixed part of an entry */
#define CACHE_NSTR       7
#define CACHE_AGE_KEY    (8 + SL_CACHE_KEY_LEN)
#define CACHE_VEC_KEY    (SL_CACHE_PART_LEN + SL_CACHE_KEY_LEN)
#define CACHE_VEC_HEAD   (SL_CACHE_CTX_LEN + 16)
#define CACHE_STATS_KEY  "stats"
#define CACHE_STATS_KLEN 5
#define CACHE_EVICT_MAX  256  /* evictions one fill may make */
#define CACHE_BATCH      1000 /* deletions per write transaction (expiry, purge) */

/* An entry decoded in place: pointers into the value it was read from. */
typedef struct cache_rec {
    uint8_t flags;
    uint32_t api;
    int64_t created_ns;
    int64_t expires;
    uint64_t cost;
    const uint8_t *part; /* NULL without a vector */
    const char *s[CACHE_NSTR];
    sl_str_t body;
} cache_rec_t;

/* The counters, read once per write and stored once at its end. */
typedef struct cache_stats {
    uint64_t entries;
    uint64_t bytes;
} cache_stats_t;

typedef struct cache_put_arg {
    sl_txn_t *t; /* during the scan of the age index */
    const sl_cache_entry_t *e;
    size_t cap;
    sl_str_t val; /* the encoded entry */
    uint8_t *vec; /* the encoded vector, or NULL */
    size_t vlen;
    size_t need; /* bytes the new records add */
    size_t evicted;
    bool dropped; /* too many evictions: the entry was not stored */
    cache_stats_t st;
} cache_put_arg_t;

/*
 * Keys collected by a read scan for a later write: age keys (fill time +
 * entry key) of expired entries, or entry keys (at offset 8) to purge.
 */
typedef struct cache_keys {
    uint8_t (*keys)[CACHE_AGE_KEY];
    size_t n;
    size_t max;
    int64_t now;
    const char *model;
    const char *key;
} cache_keys_t;

typedef struct cache_del_arg {
    cache_keys_t *ks;
    size_t deleted;
    bool all;     /* empty the cache */
    bool expired; /* ks holds age keys of expired entries */
} cache_del_arg_t;

typedef struct cache_match_arg {
    const sl_cache_query_t *q;
    sl_cache_match_t *out;
    size_t limit;
    float *buf;
} cache_match_arg_t;

static int cache_decode(sl_str_t val, cache_rec_t *r);
static size_t cache_encode(const sl_cache_entry_t *e, uint8_t *out);
static size_t cache_encoded_len(const sl_cache_entry_t *e);
static void cache_be64(uint8_t *p, uint64_t v);
static uint64_t cache_get_be64(const uint8_t *p);
static void cache_age_key(uint8_t *out, int64_t created_ns, const uint8_t *key);
static int cache_stats_read(sl_txn_t *t, cache_stats_t *st);
static int cache_stats_write(sl_txn_t *t, const cache_stats_t *st);
static int cache_del(sl_txn_t *t, const uint8_t *key, cache_stats_t *st);
static int cache_del_expired(sl_txn_t *t, const uint8_t *age, int64_t now, cache_stats_t *st);
static int cache_put_txn(sl_txn_t *t, void *arg);
static int cache_evict_cb(void *arg, sl_str_t key, sl_str_t val);
static int cache_expired_cb(void *arg, sl_str_t key, sl_str_t val);
static int cache_match_cb(void *arg, sl_str_t key, sl_str_t val);
static int cache_select_cb(void *arg, sl_str_t key, sl_str_t val);
static int cache_del_txn(sl_txn_t *t, void *arg);
static int cache_collect(sl_db_t *db, cache_keys_t *ks, bool expired);
static bool cache_is_entry_key(sl_str_t key);
static int cache_report_cb(void *arg, const sl_ledger_row_t *row);


/* Decodes an entry in place; SL_EPARSE when it is not one this version wrote. */
static int
cache_decode(sl_str_t val, cache_rec_t *r)
{
    const uint8_t *p = (const uint8_t *) val.p;
    const uint8_t *end = p + val.len;
    uint32_t len;

    if (val.len < CACHE_HEAD || p[0] != CACHE_VERSION) {
        return SL_EPARSE;
    }
    memset(r, 0, sizeof(*r));
    r->flags = p[1];
    memcpy(&r->api, p + 4, 4);
    memcpy(&r->created_ns, p + 8, 8);
    memcpy(&r->expires, p + 16, 8);
    memcpy(&r->cost, p + 24, 8);
    p += CACHE_HEAD;
    if (r->flags & CACHE_FLAG_VEC) {
        if ((size_t) (end - p) < SL_CACHE_PART_LEN) {
            return SL_EPARSE;
        }
        r->part = p;
        p += SL_CACHE_PART_LEN;
    }
    for (size_t i = 0; i < CACHE_NSTR; i++) {
        if ((size_t) (end - p) < 4) {
            return SL_EPARSE;
        }
        memcpy(&len, p, 4);
        p += 4;
        if ((size_t) (end - p) < (size_t) len + 1 || p[len] != '\0') {
            return SL_EPARSE;
        }
        r->s[i] = (const char *) p;
        p += len + 1;
    }
    if ((size_t) (end - p) < 4) {
        return SL_EPARSE;
    }
    memcpy(&len, p, 4);
    p += 4;
    if ((size_t) (end - p) != len) {
        return SL_EPARSE;
    }
    r->body = (sl_str_t){ (const char *) p, len };
    return 0;
}


static size_t
cache_encoded_len(const sl_cache_entry_t *e)
{
    const char *s[CACHE_NSTR] = { e->model,    e->key_id,       e->key_name,    e->team,
                                  e->provider, e->target_model, e->served_model };
    size_t n = CACHE_HEAD + (e->vec != NULL ? SL_CACHE_PART_LEN : 0) + 4 + e->body.len;

    for (size_t i = 0; i < CACHE_NSTR; i++) {
        n += 4 + (s[i] != NULL ? strlen(s[i]) : 0) + 1;
    }
    return n;
}


/* Writes e's value into out (cache_encoded_len bytes); returns its length. */
static size_t
cache_encode(const sl_cache_entry_t *e, uint8_t *out)
{
    const char *s[CACHE_NSTR] = { e->model,    e->key_id,       e->key_name,    e->team,
                                  e->provider, e->target_model, e->served_model };
    uint8_t *p = out;
    uint32_t len;

    memset(p, 0, CACHE_HEAD);
    p[0] = CACHE_VERSION;
    p[1] = e->vec != NULL ? CACHE_FLAG_VEC : 0;
    memcpy(p + 4, &e->api, 4);
    memcpy(p + 8, &e->created_ns, 8);
    memcpy(p + 16, &e->expires, 8);
    memcpy(p + 24, &e->cost_nusd, 8);
    p += CACHE_HEAD;
    if (e->vec != NULL) {
        memcpy(p, e->vec->part, SL_CACHE_PART_LEN);
        p += SL_CACHE_PART_LEN;
    }
    for (size_t i = 0; i < CACHE_NSTR; i++) {
        len = s[i] != NULL ? (uint32_t) strlen(s[i]) : 0;
        memcpy(p, &len, 4);
        p += 4;
        if (len > 0) {
            memcpy(p, s[i], len);
        }
        p[len] = '\0';
        p += len + 1;
    }
    len = (uint32_t) e->body.len;
    memcpy(p, &len, 4);
    p += 4;
    if (len > 0) {
        memcpy(p, e->body.p, len);
    }
    return (size_t) (p - out) + len;
}


static void
cache_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}


static uint64_t
cache_get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}


static void
cache_age_key(uint8_t *out, int64_t created_ns, const uint8_t *key)
{
    cache_be64(out, (uint64_t) (created_ns > 0 ? created_ns : 0));
    memcpy(out + 8, key, SL_CACHE_KEY_LEN);
}


/* Entry keys are the 32-byte hashes; the counter record is the only other one. */
static bool
cache_is_entry_key(sl_str_t key)
{
    return key.len == SL_CACHE_KEY_LEN;
}


static int
cache_stats_read(sl_txn_t *t, cache_stats_t *st)
{
    sl_str_t v;
    int rc;

    memset(st, 0, sizeof(*st));
    rc = sl_db_get(t, SL_DBI_CACHE, CACHE_STATS_KEY, CACHE_STATS_KLEN, &v);
    if (rc == SL_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (v.len == sizeof(*st)) {
        memcpy(st, v.p, sizeof(*st));
    }
    return 0;
}


static int
cache_stats_write(sl_txn_t *t, const cache_stats_t *st)
{
    return sl_db_put(t, SL_DBI_CACHE, CACHE_STATS_KEY, CACHE_STATS_KLEN, st, sizeof(*st), false);
}


/*
 * Deletes the entry under key with its age and vector records, and takes
 * their bytes off st. Returns 0, SL_ENOTFOUND (no entry) or SL_ESTORE.
 */
static int
cache_del(sl_txn_t *t, const uint8_t *key, cache_stats_t *st)
{
    uint8_t age[CACHE_AGE_KEY];
    uint8_t vk[CACHE_VEC_KEY];
    cache_rec_t r;
    sl_str_t v;
    uint64_t freed = 0;
    int rc;

    rc = sl_db_get(t, SL_DBI_CACHE, key, SL_CACHE_KEY_LEN, &v);
    if (rc != 0) {
        return rc;
    }
    freed += SL_CACHE_KEY_LEN + v.len;
    if (cache_decode(v, &r) == 0) {
        cache_age_key(age, r.created_ns, key);
        if (sl_db_del(t, SL_DBI_CACHE_AGE, age, sizeof(age)) == 0) {
            freed += sizeof(age) + 8;
        }
        if (r.part != NULL) {
            memcpy(vk, r.part, SL_CACHE_PART_LEN);
            memcpy(vk + SL_CACHE_PART_LEN, key, SL_CACHE_KEY_LEN);
            if (sl_db_get(t, SL_DBI_CACHE_VEC, vk, sizeof(vk), &v) == 0) {
                freed += sizeof(vk) + v.len;
                rc = sl_db_del(t, SL_DBI_CACHE_VEC, vk, sizeof(vk));
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    rc = sl_db_del(t, SL_DBI_CACHE, key, SL_CACHE_KEY_LEN);
    if (rc != 0) {
        return rc;
    }
    st->entries = st->entries > 0 ? st->entries - 1 : 0;
    st->bytes = st->bytes > freed ? st->bytes - freed : 0;
    return 0;
}


int
sl_cache_get(sl_txn_t *t, const uint8_t key[SL_CACHE_KEY_LEN], int64_t now, sl_pool_t *pool,
             sl_cache_entry_t *out)
{
    cache_rec_t r;
    sl_str_t v;
    char *copy;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = sl_db_get(t, SL_DBI_CACHE, key, SL_CACHE_KEY_LEN, &v);
    if (rc != 0) {
        return rc;
    }
    if (cache_decode(v, &r) != 0 || r.expires <= now) {
        return SL_ENOTFOUND;
    }
    /* the value is LMDB's until the transaction ends: one copy, then pointers into it */
    copy = sl_palloc(pool, v.len);
    memcpy(copy, v.p, v.len);
    cache_decode((sl_str_t){ copy, v.len }, &r);
    memcpy(out->key, key, SL_CACHE_KEY_LEN);
    out->created_ns = r.created_ns;
    out->expires = r.expires;
    out->cost_nusd = r.cost;
    out->api = r.api;
    out->model = r.s[0];
    out->key_id = r.s[1];
    out->key_name = r.s[2];
    out->team = r.s[3];
    out->provider = r.s[4];
    out->target_model = r.s[5];
    out->served_model = r.s[6];
    out->body = r.body;
    return 0;
}


int
sl_cache_put(sl_db_t *db, const sl_cache_entry_t *e, size_t cap, size_t *evicted)
{
    cache_put_arg_t a;
    size_t len = cache_encoded_len(e);
    uint8_t *val;
    int rc;

    if (evicted != NULL) {
        *evicted = 0;
    }
    if (sl_db_is_full()) {
        return SL_EFULL; /* the map's reserve belongs to the ledger */
    }
    memset(&a, 0, sizeof(a));
    if (e->vec != NULL) {
        const sl_cache_vec_t *v = e->vec;
        uint8_t *p;
        int64_t exp = e->expires;

        if (v->dims == 0 || v->dims > SL_CACHE_DIMS_MAX || v->nwords > SL_CACHE_WORDS_MAX) {
            return SL_EPARSE;
        }
        a.vlen = CACHE_VEC_HEAD + 4 * (size_t) v->nwords + 4 * (size_t) v->dims;
        a.vec = malloc(a.vlen);
        if (a.vec == NULL) {
            return -ENOMEM;
        }
        p = a.vec;
        memcpy(p, v->ctx, SL_CACHE_CTX_LEN);
        memcpy(p + 16, &exp, 8);
        memcpy(p + 24, &v->dims, 4);
        memcpy(p + 28, &v->nwords, 4);
        p += CACHE_VEC_HEAD;
        if (v->nwords > 0) {
            memcpy(p, v->words, 4 * (size_t) v->nwords);
        }
        memcpy(p + 4 * (size_t) v->nwords, v->v, 4 * (size_t) v->dims);
    }
    a.need =
        SL_CACHE_KEY_LEN + len + CACHE_AGE_KEY + 8 + (a.vec != NULL ? CACHE_VEC_KEY + a.vlen : 0);
    if (a.need > cap) {
        free(a.vec);
        return SL_EFULL;
    }
    val = malloc(len);
    if (val == NULL) {
        free(a.vec);
        return -ENOMEM;
    }
    a.val = (sl_str_t){ (const char *) val, cache_encode(e, val) };
    a.e = e;
    a.cap = cap;
    rc = sl_db_write(db, cache_put_txn, &a);
    free(val);
    free(a.vec);
    if (rc == 0 && evicted != NULL) {
        *evicted = a.evicted;
    }
    if (rc == 0 && a.dropped) {
        return SL_EFULL;
    }
    return rc;
}


/* The fill's write: old entry out, the oldest ones out while over the cap, the new one in. */
static int
cache_put_txn(sl_txn_t *t, void *arg)
{
    cache_put_arg_t *a = arg;
    const sl_cache_entry_t *e = a->e;
    uint8_t age[CACHE_AGE_KEY];
    uint8_t be[8];
    int rc;

    a->evicted = 0;
    a->dropped = false;
    rc = cache_stats_read(t, &a->st);
    if (rc != 0) {
        return rc;
    }
    rc = cache_del(t, e->key, &a->st);
    if (rc != 0 && rc != SL_ENOTFOUND) {
        return rc;
    }
    if (a->st.bytes + a->need > a->cap) {
        a->t = t;
        rc = sl_db_scan(t, SL_DBI_CACHE_AGE, NULL, 0, cache_evict_cb, a);
        if (rc != 0) {
            return rc;
        }
    }
    if (a->st.bytes + a->need > a->cap) {
        a->dropped = true; /* keep what was evicted; the next fill goes on */
        return cache_stats_write(t, &a->st);
    }
    rc = sl_db_put(t, SL_DBI_CACHE, e->key, SL_CACHE_KEY_LEN, a->val.p, a->val.len, false);
    if (rc != 0) {
        return rc;
    }
    cache_age_key(age, e->created_ns, e->key);
    cache_be64(be, (uint64_t) (e->expires > 0 ? e->expires : 0));
    rc = sl_db_put(t, SL_DBI_CACHE_AGE, age, sizeof(age), be, sizeof(be), false);
    if (rc != 0) {
        return rc;
    }
    if (a->vec != NULL) {
        uint8_t vk[CACHE_VEC_KEY];

        memcpy(vk, e->vec->part, SL_CACHE_PART_LEN);
        memcpy(vk + SL_CACHE_PART_LEN, e->key, SL_CACHE_KEY_LEN);
        rc = sl_db_put(t, SL_DBI_CACHE_VEC, vk, sizeof(vk), a->vec, a->vlen, false);
        if (rc != 0) {
            return rc;
        }
    }
    a->st.entries++;
    a->st.bytes += a->need;
    return cache_stats_write(t, &a->st);
}


/* One age record, oldest first: its entry goes, until the new one fits. */
static int
cache_evict_cb(void *arg, sl_str_t key, sl_str_t val)
{
    cache_put_arg_t *a = arg;
    const uint8_t *k = (const uint8_t *) key.p;
    int rc;

    (void) val;
    if (a->st.bytes + a->need <= a->cap || a->evicted >= CACHE_EVICT_MAX) {
        return 1;
    }
    if (key.len == CACHE_AGE_KEY) {
        rc = cache_del(a->t, k + 8, &a->st);
        if (rc == 0) {
            a->evicted++;
            return 0;
        }
        if (rc != SL_ENOTFOUND) {
            return rc;
        }
    }
    /* an index record without its entry (or not one of ours): it goes too */
    rc = sl_db_del(a->t, SL_DBI_CACHE_AGE, k, key.len);
    return rc == SL_ENOTFOUND ? 0 : rc;
}


float
sl_cache_dot(const float *a, const float *b, size_t n)
{
    float acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    float s = 0;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        for (size_t j = 0; j < 8; j++) {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    for (; i < n; i++) {
        s += a[i] * b[i];
    }
    return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}


int
sl_cache_match(sl_txn_t *t, const sl_cache_query_t *q, size_t limit, sl_cache_match_t *out)
{
    cache_match_arg_t a;
    int rc;

    memset(out, 0, sizeof(*out));
    if (q->dims == 0 || q->dims > SL_CACHE_DIMS_MAX) {
        return 0;
    }
    a.q = q;
    a.out = out;
    a.limit = limit;
    /* one aligned copy per vector: LMDB's values may sit at any 2-byte boundary */
    a.buf = malloc(4 * (size_t) q->dims);
    if (a.buf == NULL) {
        return -ENOMEM;
    }
    rc = sl_db_scan(t, SL_DBI_CACHE_VEC, q->part, SL_CACHE_PART_LEN, cache_match_cb, &a);
    free(a.buf);
    return rc;
}


/* One vector of the partition: a candidate when close enough, accepted when its words match. */
static int
cache_match_cb(void *arg, sl_str_t key, sl_str_t val)
{
    cache_match_arg_t *a = arg;
    const sl_cache_query_t *q = a->q;
    sl_cache_match_t *out = a->out;
    const uint8_t *p = (const uint8_t *) val.p;
    uint32_t dims, nwords;
    int64_t expires;
    float score;

    if (key.len < SL_CACHE_PART_LEN || memcmp(key.p, q->part, SL_CACHE_PART_LEN) != 0) {
        return 1; /* past the partition */
    }
    if (a->limit > 0 && out->scanned >= a->limit) {
        out->incomplete = true;
        return 1;
    }
    if (key.len != CACHE_VEC_KEY || val.len < CACHE_VEC_HEAD) {
        return 0;
    }
    memcpy(&expires, p + 16, 8);
    memcpy(&dims, p + 24, 4);
    memcpy(&nwords, p + 28, 4);
    if (dims != q->dims || nwords > SL_CACHE_WORDS_MAX
        || val.len != CACHE_VEC_HEAD + 4 * (size_t) nwords + 4 * (size_t) dims) {
        return 0; /* another embedding model, or not a record of ours */
    }
    out->scanned++;
    if (expires <= q->now || memcmp(p, q->ctx, SL_CACHE_CTX_LEN) != 0) {
        return 0;
    }
    memcpy(a->buf, p + CACHE_VEC_HEAD + 4 * (size_t) nwords, 4 * (size_t) dims);
    score = sl_cache_dot(q->v, a->buf, dims);
    if (score < q->threshold || (out->found && score <= out->score)) {
        return 0;
    }
    if (nwords != q->nwords
        || (nwords > 0 && memcmp(p + CACHE_VEC_HEAD, q->words, 4 * (size_t) nwords) != 0)) {
        out->rejected++; /* close, but about something else */
        return 0;
    }
    out->found = true;
    out->score = score;
    memcpy(out->key, key.p + SL_CACHE_PART_LEN, SL_CACHE_KEY_LEN);
    return 0;
}


/* Read scan: the entry keys of up to ks->max expired entries (or of matching ones). */
static int
cache_collect(sl_db_t *db, cache_keys_t *ks, bool expired)
{
    sl_txn_t *t;
    int rc;

    ks->n = 0;
    rc = sl_db_read(db, &t);
    if (rc != 0) {
        return rc;
    }
    if (expired) {
        rc = sl_db_scan(t, SL_DBI_CACHE_AGE, NULL, 0, cache_expired_cb, ks);
    } else {
        rc = sl_db_scan(t, SL_DBI_CACHE, NULL, 0, cache_select_cb, ks);
    }
    sl_db_abort(t);
    return rc;
}


static int
cache_expired_cb(void *arg, sl_str_t key, sl_str_t val)
{
    cache_keys_t *ks = arg;

    if (ks->n >= ks->max) {
        return 1;
    }
    if (key.len == CACHE_AGE_KEY && val.len == 8
        && (int64_t) cache_get_be64((const uint8_t *) val.p) <= ks->now) {
        memcpy(ks->keys[ks->n++], key.p, CACHE_AGE_KEY);
    }
    return 0;
}


/* An entry of the model and key asked for (either NULL: any). */
static int
cache_select_cb(void *arg, sl_str_t key, sl_str_t val)
{
    cache_keys_t *ks = arg;
    cache_rec_t r;

    if (ks->n >= ks->max) {
        return 1;
    }
    if (!cache_is_entry_key(key)) {
        return 0;
    }
    if (cache_decode(val, &r) == 0) {
        if (ks->model != NULL && strcmp(r.s[0], ks->model) != 0) {
            return 0;
        }
        if (ks->key != NULL && strcmp(r.s[1], ks->key) != 0 && strcmp(r.s[2], ks->key) != 0) {
            return 0;
        }
    }
    /* an entry that does not decode goes with any purge */
    memcpy(ks->keys[ks->n++] + 8, key.p, SL_CACHE_KEY_LEN);
    return 0;
}


static int
cache_del_txn(sl_txn_t *t, void *arg)
{
    static const sl_dbi_e dbis[] = { SL_DBI_CACHE, SL_DBI_CACHE_AGE, SL_DBI_CACHE_VEC };
    cache_del_arg_t *d = arg;
    cache_stats_t st;
    sl_str_t v;
    size_t n = 0;
    int rc;

    d->deleted = 0;
    if (d->all) {
        rc = sl_db_count(t, SL_DBI_CACHE, &n);
        if (rc == 0 && n > 0
            && sl_db_get(t, SL_DBI_CACHE, CACHE_STATS_KEY, CACHE_STATS_KLEN, &v) == 0) {
            n--; /* the counter record */
        }
        for (size_t i = 0; rc == 0 && i < sizeof(dbis) / sizeof(dbis[0]); i++) {
            rc = sl_db_clear(t, dbis[i]);
        }
        d->deleted = n;
        return rc;
    }
    rc = cache_stats_read(t, &st);
    for (size_t i = 0; rc == 0 && i < d->ks->n; i++) {
        if (d->expired) {
            rc = cache_del_expired(t, d->ks->keys[i], d->ks->now, &st);
        } else {
            rc = cache_del(t, d->ks->keys[i] + 8, &st);
        }
        if (rc == 0) {
            d->deleted++;
        } else if (rc == SL_ENOTFOUND) {
            rc = 0; /* gone meanwhile */
        }
    }
    if (rc != 0) {
        return rc;
    }
    return cache_stats_write(t, &st);
}


/*
 * The entry an expired age record names goes, unless a fill replaced it
 * since the scan; an age record without its entry goes alone. Returns 0,
 * SL_ENOTFOUND (nothing was deleted) or SL_ESTORE.
 */
static int
cache_del_expired(sl_txn_t *t, const uint8_t *age, int64_t now, cache_stats_t *st)
{
    cache_rec_t r;
    sl_str_t v;
    int rc;

    rc = sl_db_get(t, SL_DBI_CACHE, age + 8, SL_CACHE_KEY_LEN, &v);
    if (rc == 0 && cache_decode(v, &r) == 0 && r.expires > now) {
        if (cache_get_be64(age) == (uint64_t) (r.created_ns > 0 ? r.created_ns : 0)) {
            return SL_ENOTFOUND; /* refilled since the scan, under the same time */
        }
        rc = SL_ENOTFOUND; /* refilled: this index record is a stale one */
    } else if (rc == 0) {
        return cache_del(t, age + 8, st);
    }
    if (rc != SL_ENOTFOUND) {
        return rc;
    }
    rc = sl_db_del(t, SL_DBI_CACHE_AGE, age, CACHE_AGE_KEY);
    if (rc == 0) {
        st->bytes = st->bytes > CACHE_AGE_KEY + 8 ? st->bytes - CACHE_AGE_KEY - 8 : 0;
        return SL_ENOTFOUND;
    }
    return rc;
}


int
sl_cache_expire(sl_db_t *db, int64_t now, size_t max, size_t *n)
{
    cache_keys_t ks;
    cache_del_arg_t d;
    size_t total = 0;
    int rc = 0;

    memset(&ks, 0, sizeof(ks));
    ks.max = max < CACHE_BATCH ? max : CACHE_BATCH;
    ks.now = now;
    if (ks.max == 0) {
        return 0;
    }
    ks.keys = malloc(ks.max * CACHE_AGE_KEY);
    if (ks.keys == NULL) {
        return -ENOMEM;
    }
    while (total < max) {
        rc = cache_collect(db, &ks, true);
        if (rc != 0 || ks.n == 0) {
            break;
        }
        memset(&d, 0, sizeof(d));
        d.ks = &ks;
        d.expired = true;
        rc = sl_db_write(db, cache_del_txn, &d);
        if (rc != 0) {
            break;
        }
        total += d.deleted;
        if (ks.n < ks.max || d.deleted == 0) {
            break;
        }
    }
    free(ks.keys);
    if (n != NULL) {
        *n = total;
    }
    return rc;
}


int
sl_cache_purge(sl_db_t *db, const char *model, const char *key, size_t *n)
{
    cache_keys_t ks;
    cache_del_arg_t d;
    size_t total = 0;
    int rc = 0;

    memset(&d, 0, sizeof(d));
    if (model == NULL && key == NULL) {
        d.all = true;
        rc = sl_db_write(db, cache_del_txn, &d);
        if (n != NULL) {
            *n = rc == 0 ? d.deleted : 0;
        }
        return rc;
    }
    memset(&ks, 0, sizeof(ks));
    ks.max = CACHE_BATCH;
    ks.model = model;
    ks.key = key;
    ks.keys = malloc(ks.max * CACHE_AGE_KEY);
    if (ks.keys == NULL) {
        return -ENOMEM;
    }
    for (;;) {
        rc = cache_collect(db, &ks, false);
        if (rc != 0 || ks.n == 0) {
            break;
        }
        memset(&d, 0, sizeof(d));
        d.ks = &ks;
        rc = sl_db_write(db, cache_del_txn, &d);
        if (rc != 0) {
            break;
        }
        total += d.deleted;
        if (ks.n < ks.max || d.deleted == 0) {
            break;
        }
    }
    free(ks.keys);
    if (n != NULL) {
        *n = total;
    }
    return rc;
}


int
sl_cache_stat(sl_txn_t *t, size_t *entries, size_t *bytes)
{
    cache_stats_t st;
    int rc = cache_stats_read(t, &st);

    *entries = rc == 0 ? (size_t) st.entries : 0;
    *bytes = rc == 0 ? (size_t) st.bytes : 0;
    return rc;
}


int
sl_cache_report(sl_txn_t *t, int64_t since_ns, sl_cache_report_t *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = sl_cache_stat(t, &out->entries, &out->bytes);
    if (rc != 0) {
        return rc;
    }
    return sl_ledger_scan(t, since_ns, cache_report_cb, out);
}


static int
cache_report_cb(void *arg, const sl_ledger_row_t *row)
{
    sl_cache_report_t *r = arg;
    const char *c = row->cache != NULL ? row->cache : "";

    if (row->flags & SL_LEDGER_GATEWAY) {
        r->embed_requests++;
        r->embed_nusd += row->cost_nusd;
        return 0;
    }
    if (row->flags & SL_LEDGER_CACHE_HIT) {
        if (row->flags & SL_LEDGER_CACHE_SEMANTIC) {
            r->semantic_hits++;
        } else {
            r->hits++;
        }
        r->saved_nusd = r->saved_nusd + row->saved_nusd >= r->saved_nusd
                            ? r->saved_nusd + row->saved_nusd
                            : UINT64_MAX;
    } else if (strcmp(c, "miss") == 0) {
        r->misses++;
    } else if (strcmp(c, "bypass") == 0) {
        r->bypassed++;
    }
    return 0;
}


json_t *
sl_cache_report_json(const sl_cache_report_t *r, size_t max_size)
{
    uint64_t hits = r->hits + r->semantic_hits;
    char saved[32], embed[32];
    uint64_t all = hits + r->misses;
    /* four decimals, rounded in integers */
    double ratio = all > 0 ? (double) ((hits * 10000 + all / 2) / all) / 10000.0 : 0.0;

    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:s,s:I,s:s}", "entries",
                     (json_int_t) r->entries, "bytes", (json_int_t) r->bytes, "max_size_bytes",
                     (json_int_t) max_size, "hits", (json_int_t) r->hits, "semantic_hits",
                     (json_int_t) r->semantic_hits, "misses", (json_int_t) r->misses, "bypassed",
                     (json_int_t) r->bypassed, "hit_ratio", ratio, "saved_usd",
                     sl_pricing_format_usd(r->saved_nusd, saved, sizeof(saved)),
                     "embedding_requests", (json_int_t) r->embed_requests, "embedding_cost_usd",
                     sl_pricing_format_usd(r->embed_nusd, embed, sizeof(embed)));
}
