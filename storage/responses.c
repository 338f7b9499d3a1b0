/*
 * Stored responses on LMDB. Record layout, version 1:
 *
 *     u8 version (1)   u8 key id length   u8 team length   u8 reserved (0)
 *     be64 created ns   key id   team   JSON text (the rest)
 *
 * The id is the record's key (after "r:"); the retention index key
 * "t:" + be64 created ns + id sorts the records by age.
 */
#include "storage/responses.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/base/log.h"

#define RESP_VERSION  1
#define RESP_HEAD_LEN 12
#define RESP_KEY_MAX  (2 + 8 + SL_RESPONSES_ID_MAX)

typedef struct resp_put_arg {
    sl_resp_put_t *v;
    size_t n;
} resp_put_arg_t;

typedef struct resp_del_arg {
    const char *id;
    const char *key_id;
    const char *team;
} resp_del_arg_t;

typedef struct resp_prune_arg {
    uint8_t before[8];
    size_t max;
    size_t n;
    sl_txn_t *t;
} resp_prune_arg_t;

static int resp_put_txn(sl_txn_t *t, void *arg);
static int resp_put_one(sl_txn_t *t, const sl_resp_put_t *p);
static bool resp_put_valid(const sl_resp_put_t *p);
static int resp_del_txn(sl_txn_t *t, void *arg);
static int resp_prune_txn(sl_txn_t *t, void *arg);
static int resp_prune_one(void *arg, sl_str_t key, sl_str_t val);
static int resp_unindex(sl_txn_t *t, const char *id, size_t idlen, sl_str_t rec);
static size_t resp_key(uint8_t *b, const char *id, size_t idlen);
static size_t resp_index_key(uint8_t *b, int64_t created_ns, const char *id, size_t idlen);
static int resp_decode(sl_str_t rec, sl_pool_t *pool, sl_resp_rec_t *out);
static void resp_put_be64(uint8_t *p, uint64_t v);
static uint64_t resp_get_be64(const uint8_t *p);


int
sl_responses_put(sl_db_t *db, const char *id, const char *key_id, const char *team,
                 int64_t created_ns, sl_str_t json)
{
    sl_resp_put_t p = { id, key_id, team, created_ns, json, 0 };
    int rc;

    if (!resp_put_valid(&p)) {
        return -EINVAL;
    }
    rc = sl_responses_put_many(db, &p, 1);
    return rc != 0 ? rc : p.rc;
}


int
sl_responses_put_many(sl_db_t *db, sl_resp_put_t *v, size_t n)
{
    resp_put_arg_t a = { v, n };
    size_t valid = 0;

    for (size_t i = 0; i < n; i++) {
        v[i].rc = resp_put_valid(&v[i]) ? 0 : -EINVAL;
        valid += v[i].rc == 0;
    }
    return valid > 0 ? sl_db_write(db, resp_put_txn, &a) : 0;
}


int
sl_responses_put_txn(sl_txn_t *t, const sl_resp_put_t *p)
{
    return resp_put_valid(p) ? resp_put_one(t, p) : -EINVAL;
}


static bool
resp_put_valid(const sl_resp_put_t *p)
{
    size_t idlen = strlen(p->id);

    return idlen > 0 && idlen <= SL_RESPONSES_ID_MAX && strlen(p->key_id) <= 255
           && strlen(p->team) <= 255;
}


static int
resp_put_txn(sl_txn_t *t, void *arg)
{
    resp_put_arg_t *a = arg;

    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].rc == 0) {
            int rc = resp_put_one(t, &a->v[i]);

            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}


static int
resp_put_one(sl_txn_t *t, const sl_resp_put_t *a)
{
    size_t idlen = strlen(a->id);
    size_t klen = strlen(a->key_id);
    size_t tlen = strlen(a->team);
    size_t len = RESP_HEAD_LEN + klen + tlen + a->json.len;
    uint8_t key[RESP_KEY_MAX];
    uint8_t *rec;
    sl_str_t old;
    size_t n;
    int rc;

    n = resp_key(key, a->id, idlen);
    rc = sl_db_get(t, SL_DBI_RESPONSES, key, n, &old);
    if (rc == 0) {
        rc = resp_unindex(t, a->id, idlen, old);
    }
    if (rc != 0 && rc != SL_ENOTFOUND) {
        return rc;
    }
    rec = sl_xmalloc(len);
    rec[0] = RESP_VERSION;
    rec[1] = (uint8_t) klen;
    rec[2] = (uint8_t) tlen;
    rec[3] = 0;
    resp_put_be64(rec + 4, (uint64_t) a->created_ns);
    memcpy(rec + RESP_HEAD_LEN, a->key_id, klen);
    memcpy(rec + RESP_HEAD_LEN + klen, a->team, tlen);
    if (a->json.len > 0) {
        memcpy(rec + RESP_HEAD_LEN + klen + tlen, a->json.p, a->json.len);
    }
    rc = sl_db_put(t, SL_DBI_RESPONSES, key, n, rec, len, false);
    free(rec);
    if (rc != 0) {
        return rc;
    }
    n = resp_index_key(key, a->created_ns, a->id, idlen);
    return sl_db_put(t, SL_DBI_RESPONSES, key, n, "", 0, false);
}


int
sl_responses_get(sl_txn_t *t, const char *id, sl_pool_t *pool, sl_resp_rec_t *out)
{
    size_t idlen = strlen(id);
    uint8_t key[RESP_KEY_MAX];
    sl_str_t rec;
    size_t n;
    int rc;

    if (idlen == 0 || idlen > SL_RESPONSES_ID_MAX) {
        return SL_ENOTFOUND;
    }
    n = resp_key(key, id, idlen);
    rc = sl_db_get(t, SL_DBI_RESPONSES, key, n, &rec);
    if (rc != 0) {
        return rc;
    }
    rc = resp_decode(rec, pool, out);
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "stored response \"%s\" does not decode", id);
    }
    return rc;
}


bool
sl_responses_visible(const sl_resp_rec_t *rec, const char *key_id, const char *team)
{
    if (strcmp(rec->key_id, key_id) == 0) {
        return true;
    }
    return rec->team[0] != '\0' && strcmp(rec->team, team) == 0;
}


int
sl_responses_del(sl_db_t *db, const char *id, const char *key_id, const char *team)
{
    resp_del_arg_t a = { id, key_id, team };
    size_t idlen = strlen(id);

    if (idlen == 0 || idlen > SL_RESPONSES_ID_MAX) {
        return SL_ENOTFOUND;
    }
    return sl_db_write(db, resp_del_txn, &a);
}


static int
resp_del_txn(sl_txn_t *t, void *arg)
{
    resp_del_arg_t *a = arg;
    size_t idlen = strlen(a->id);
    uint8_t key[RESP_KEY_MAX];
    sl_resp_rec_t rec;
    sl_str_t val;
    sl_pool_t *pool;
    size_t n;
    int rc;

    n = resp_key(key, a->id, idlen);
    rc = sl_db_get(t, SL_DBI_RESPONSES, key, n, &val);
    if (rc != 0) {
        return rc;
    }
    pool = sl_pool_create(0);
    rc = resp_decode(val, pool, &rec);
    if (rc == 0 && !sl_responses_visible(&rec, a->key_id, a->team)) {
        rc = SL_ENOTFOUND;
    }
    sl_pool_destroy(pool);
    if (rc != 0) {
        return rc;
    }
    rc = resp_unindex(t, a->id, idlen, val);
    if (rc != 0 && rc != SL_ENOTFOUND) {
        return rc;
    }
    return sl_db_del(t, SL_DBI_RESPONSES, key, n);
}


int
sl_responses_prune(sl_db_t *db, int64_t before_ns, size_t max, size_t *deleted)
{
    resp_prune_arg_t a;
    int rc = 0;

    memset(&a, 0, sizeof(a));
    a.max = max;
    resp_put_be64(a.before, before_ns > 0 ? (uint64_t) before_ns : 0);
    if (max > 0 && before_ns > 0) {
        rc = sl_db_write(db, resp_prune_txn, &a);
    }
    if (deleted != NULL) {
        *deleted = rc == 0 ? a.n : 0;
    }
    return rc;
}


static int
resp_prune_txn(sl_txn_t *t, void *arg)
{
    resp_prune_arg_t *a = arg;

    a->n = 0;
    a->t = t;
    return sl_db_scan(t, SL_DBI_RESPONSES, "t:", 2, resp_prune_one, a);
}


/* One index entry: stop at the first young one, else delete it and its record. */
static int
resp_prune_one(void *arg, sl_str_t key, sl_str_t val)
{
    resp_prune_arg_t *a = arg;
    uint8_t rkey[RESP_KEY_MAX];
    size_t idlen;
    size_t n;
    int rc;

    (void) val;
    if (key.len < 10 || memcmp(key.p, "t:", 2) != 0 || a->n >= a->max
        || memcmp(key.p + 2, a->before, 8) >= 0) {
        return 1;
    }
    idlen = key.len - 10;
    if (idlen > SL_RESPONSES_ID_MAX) {
        return sl_db_del(a->t, SL_DBI_RESPONSES, key.p, key.len);
    }
    n = resp_key(rkey, key.p + 10, idlen);
    rc = sl_db_del(a->t, SL_DBI_RESPONSES, rkey, n);
    if (rc != 0 && rc != SL_ENOTFOUND) {
        return rc;
    }
    a->n++;
    return sl_db_del(a->t, SL_DBI_RESPONSES, key.p, key.len);
}


/* Removes the index entry of record rec of id. */
static int
resp_unindex(sl_txn_t *t, const char *id, size_t idlen, sl_str_t rec)
{
    uint8_t key[RESP_KEY_MAX];
    size_t n;

    if (rec.len < RESP_HEAD_LEN) {
        return SL_ENOTFOUND;
    }
    n = resp_index_key(key, (int64_t) resp_get_be64((const uint8_t *) rec.p + 4), id, idlen);
    return sl_db_del(t, SL_DBI_RESPONSES, key, n);
}


static size_t
resp_key(uint8_t *b, const char *id, size_t idlen)
{
    b[0] = 'r';
    b[1] = ':';
    memcpy(b + 2, id, idlen);
    return 2 + idlen;
}


static size_t
resp_index_key(uint8_t *b, int64_t created_ns, const char *id, size_t idlen)
{
    b[0] = 't';
    b[1] = ':';
    resp_put_be64(b + 2, (uint64_t) created_ns);
    memcpy(b + 10, id, idlen);
    return 10 + idlen;
}


static int
resp_decode(sl_str_t rec, sl_pool_t *pool, sl_resp_rec_t *out)
{
    const uint8_t *p = (const uint8_t *) rec.p;
    size_t klen, tlen;

    if (rec.len < RESP_HEAD_LEN || p[0] != RESP_VERSION) {
        return SL_ECORRUPT;
    }
    klen = p[1];
    tlen = p[2];
    if (RESP_HEAD_LEN + klen + tlen > rec.len) {
        return SL_ECORRUPT;
    }
    out->created_ns = (int64_t) resp_get_be64(p + 4);
    out->key_id = sl_pstrndup(pool, rec.p + RESP_HEAD_LEN, klen);
    out->team = sl_pstrndup(pool, rec.p + RESP_HEAD_LEN + klen, tlen);
    out->json.len = rec.len - RESP_HEAD_LEN - klen - tlen;
    out->json.p = sl_pstrndup(pool, rec.p + RESP_HEAD_LEN + klen + tlen, out->json.len);
    return 0;
}


static void
resp_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t) (v >> (56 - 8 * i));
    }
}


static uint64_t
resp_get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}
