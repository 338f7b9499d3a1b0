/*
 * Stored responses on LMDB, layout 2 (schema 2):
 *
 *     SL_DBI_RESPONSES      "z:" + be64 number  -> record
 *     SL_DBI_RESPONSE_IDS   id                  -> be64 number
 *
 * Records are numbered in the order their transactions write them, one
 * more than the last, so each one is appended at the end of its tree
 * (MDB_APPEND) and fills its page; the ids live in a tree of their own so
 * that they never split a page of records. Keyed by id the records were
 * not packed: an id is chosen when its request starts and stored when it
 * ends, so ids arrive a little out of order, and every split in the
 * middle of a page left half of it empty for good (two records of 1 KiB
 * per 4 KiB page instead of three; each page is a fault, a zeroing and a
 * write-back). The numbers order the records by when they were written,
 * which retention walks from the oldest. "z:" sorts after the keys of
 * layout 1, which share the tree while they are moved.
 *
 * Record, version 2:
 *
 *     u8 version (2)   u8 key id length   u8 team length   u8 id length
 *     be64 created ns   id   key id   team   JSON text (the rest)
 *
 * Layout 1 (schema 1) was "r:" + id -> record version 1 (no id, the
 * fourth byte 0) and "t:" + be64 created ns + id -> "" (the retention
 * index); sl__responses_migrate_2 moves it to layout 2 when the storage
 * is opened for writing.
 */
#include "storage/responses.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/base/log.h"

#define RESP_VERSION     2
#define RESP_VERSION_1   1
#define RESP_HEAD_LEN    12
#define RESP_REC_KEY_LEN 10 /* "z:" + be64 */
#define RESP_V1_KEY_MAX  (2 + 8 + SL_RESPONSES_ID_MAX)
#define RESP_MIGRATE_MAX 256 /* layout 1 records moved per scan */

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
    int64_t before;
    size_t max;
    size_t n;
    sl_txn_t *t;
} resp_prune_arg_t;

/* Layout 1 index keys collected by one scan of sl__responses_migrate_2. */
typedef struct resp_migrate_arg {
    const char *prefix; /* "t:" (index entries) or "r:" (records) */
    size_t skip;        /* bytes before the id in such a key */
    uint8_t keys[RESP_MIGRATE_MAX][RESP_V1_KEY_MAX];
    size_t lens[RESP_MIGRATE_MAX];
    size_t n;
} resp_migrate_arg_t;

static int resp_put_txn(sl_txn_t *t, void *arg);
static int resp_put_one(sl_txn_t *t, const sl_resp_put_t *p);
static bool resp_put_valid(const sl_resp_put_t *p);
static int resp_next_number(sl_txn_t *t, uint64_t *num);
static int resp_write(sl_txn_t *t, uint64_t num, const char *id, size_t idlen, const char *key_id,
                      const char *team, int64_t created_ns, sl_str_t json);
static int resp_find(sl_txn_t *t, const char *id, size_t idlen, uint8_t *rkey, sl_str_t *rec);
static int resp_del_txn(sl_txn_t *t, void *arg);
static int resp_prune_txn(sl_txn_t *t, void *arg);
static int resp_prune_one(void *arg, sl_str_t key, sl_str_t val);
static int resp_migrate_collect(void *arg, sl_str_t key, sl_str_t val);
static int resp_migrate_one(sl_txn_t *t, const uint8_t *key, size_t len, size_t skip,
                            size_t *moved);
static void resp_rec_key(uint8_t *b, uint64_t num);
static int resp_decode(sl_str_t rec, sl_pool_t *pool, sl_resp_rec_t *out);
static int resp_decode_id(sl_str_t rec, sl_str_t *id);
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
    uint8_t be[8], rkey[RESP_REC_KEY_LEN];
    sl_str_t old;
    uint64_t num;
    int rc;

    rc = resp_next_number(t, &num);
    if (rc != 0) {
        return rc;
    }
    resp_put_be64(be, num);
    rc = sl_db_put(t, SL_DBI_RESPONSE_IDS, a->id, idlen, be, 8, true);
    if (rc == -EEXIST) {
        /* a replacement: its old record goes */
        rc = resp_find(t, a->id, idlen, rkey, &old);
        if (rc == 0) {
            rc = sl_db_del(t, SL_DBI_RESPONSES, rkey, RESP_REC_KEY_LEN);
        }
        if (rc != 0 && rc != SL_ENOTFOUND) {
            return rc;
        }
        rc = sl_db_put(t, SL_DBI_RESPONSE_IDS, a->id, idlen, be, 8, false);
    }
    if (rc != 0) {
        return rc;
    }
    return resp_write(t, num, a->id, idlen, a->key_id, a->team, a->created_ns, a->json);
}


/* The number of the next record: one more than the last one's (1 for the first). */
static int
resp_next_number(sl_txn_t *t, uint64_t *num)
{
    sl_str_t key, val;
    int rc;

    rc = sl_db_last(t, SL_DBI_RESPONSES, &key, &val);
    if (rc == SL_ENOTFOUND) {
        *num = 1;
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (key.len == RESP_REC_KEY_LEN && memcmp(key.p, "z:", 2) == 0) {
        *num = resp_get_be64((const uint8_t *) key.p + 2) + 1;
    } else {
        *num = 1; /* only layout 1 keys so far (being moved): "z:" sorts after them */
    }
    return 0;
}


/* Appends record num (its id key is the caller's). */
static int
resp_write(sl_txn_t *t, uint64_t num, const char *id, size_t idlen, const char *key_id,
           const char *team, int64_t created_ns, sl_str_t json)
{
    size_t klen = strlen(key_id);
    size_t tlen = strlen(team);
    uint8_t rkey[RESP_REC_KEY_LEN];
    uint8_t *rec;
    void *out;
    int rc;

    resp_rec_key(rkey, num);
    rc = sl_db_reserve(t, SL_DBI_RESPONSES, rkey, RESP_REC_KEY_LEN,
                       RESP_HEAD_LEN + idlen + klen + tlen + json.len, true, &out);
    if (rc == -EEXIST) {
        /* the last record is numbered num or higher: resp_next_number was not asked */
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "stored response number %llu is taken",
               (unsigned long long) num);
        return SL_ESTORE;
    }
    if (rc != 0) {
        return rc;
    }
    rec = out;
    rec[0] = RESP_VERSION;
    rec[1] = (uint8_t) klen;
    rec[2] = (uint8_t) tlen;
    rec[3] = (uint8_t) idlen;
    resp_put_be64(rec + 4, (uint64_t) created_ns);
    rec += RESP_HEAD_LEN;
    memcpy(rec, id, idlen);
    memcpy(rec + idlen, key_id, klen);
    memcpy(rec + idlen + klen, team, tlen);
    if (json.len > 0) {
        memcpy(rec + idlen + klen + tlen, json.p, json.len);
    }
    return 0;
}


/* The record of id (borrowed) and its key. Returns 0, SL_ENOTFOUND or an error of the store. */
static int
resp_find(sl_txn_t *t, const char *id, size_t idlen, uint8_t *rkey, sl_str_t *rec)
{
    sl_str_t num;
    int rc;

    rc = sl_db_get(t, SL_DBI_RESPONSE_IDS, id, idlen, &num);
    if (rc != 0) {
        return rc;
    }
    if (num.len != 8) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "stored response \"%.*s\" has a malformed index entry",
               (int) idlen, id);
        return SL_ECORRUPT;
    }
    memcpy(rkey, "z:", 2);
    memcpy(rkey + 2, num.p, 8);
    return sl_db_get(t, SL_DBI_RESPONSES, rkey, RESP_REC_KEY_LEN, rec);
}


int
sl_responses_get(sl_txn_t *t, const char *id, sl_pool_t *pool, sl_resp_rec_t *out)
{
    size_t idlen = strlen(id);
    uint8_t rkey[RESP_REC_KEY_LEN];
    sl_str_t rec;
    int rc;

    if (idlen == 0 || idlen > SL_RESPONSES_ID_MAX) {
        return SL_ENOTFOUND;
    }
    rc = resp_find(t, id, idlen, rkey, &rec);
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
    uint8_t rkey[RESP_REC_KEY_LEN];
    sl_resp_rec_t rec;
    sl_str_t val;
    sl_pool_t *pool;
    int rc;

    rc = resp_find(t, a->id, idlen, rkey, &val);
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
    rc = sl_db_del(t, SL_DBI_RESPONSES, rkey, RESP_REC_KEY_LEN);
    if (rc != 0) {
        return rc;
    }
    return sl_db_del(t, SL_DBI_RESPONSE_IDS, a->id, idlen);
}


int
sl_responses_prune(sl_db_t *db, int64_t before_ns, size_t max, size_t *deleted)
{
    resp_prune_arg_t a;
    int rc = 0;

    memset(&a, 0, sizeof(a));
    a.max = max;
    a.before = before_ns;
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
    return sl_db_scan(t, SL_DBI_RESPONSES, "z:", 2, resp_prune_one, a);
}


/*
 * One record, oldest written first: stop at the first one created at or
 * after the cut-off (a record written later but created earlier, by a
 * longer request, waits for the next pass), else delete it and its id.
 */
static int
resp_prune_one(void *arg, sl_str_t key, sl_str_t val)
{
    resp_prune_arg_t *a = arg;
    uint8_t rkey[RESP_REC_KEY_LEN];
    char id[SL_RESPONSES_ID_MAX];
    size_t idlen = 0;
    sl_str_t ids;
    int rc;

    if (key.len != RESP_REC_KEY_LEN || memcmp(key.p, "z:", 2) != 0 || a->n >= a->max) {
        return 1;
    }
    if (val.len >= RESP_HEAD_LEN
        && (int64_t) resp_get_be64((const uint8_t *) val.p + 4) >= a->before) {
        return 1;
    }
    /* copies: key and val lie on a page the deletes change */
    memcpy(rkey, key.p, RESP_REC_KEY_LEN);
    if (resp_decode_id(val, &ids) == 0 && ids.len <= sizeof(id)) {
        memcpy(id, ids.p, ids.len);
        idlen = ids.len;
    }
    a->n++;
    rc = sl_db_del(a->t, SL_DBI_RESPONSES, rkey, RESP_REC_KEY_LEN);
    if (rc == 0 && idlen > 0) {
        rc = sl_db_del(a->t, SL_DBI_RESPONSE_IDS, id, idlen);
        rc = rc == SL_ENOTFOUND ? 0 : rc;
    }
    return rc;
}


int
sl__responses_migrate_2(sl_txn_t *t)
{
    resp_migrate_arg_t *a = malloc(sizeof(*a));
    size_t moved = 0;
    int rc = 0;

    if (a == NULL) {
        return -ENOMEM;
    }
    /*
     * Oldest first by the retention index ("t:" + be64 + id), then any
     * record it missed ("r:" + id); a batch per scan, the scan's cursor
     * done before the batch is moved.
     */
    for (int phase = 0; rc == 0 && phase < 2; phase++) {
        a->prefix = phase == 0 ? "t:" : "r:";
        a->skip = phase == 0 ? 10 : 2;
        do {
            a->n = 0;
            rc = sl_db_scan(t, SL_DBI_RESPONSES, a->prefix, 2, resp_migrate_collect, a);
            for (size_t i = 0; rc == 0 && i < a->n; i++) {
                rc = resp_migrate_one(t, a->keys[i], a->lens[i], a->skip, &moved);
            }
        } while (rc == 0 && a->n == RESP_MIGRATE_MAX);
    }
    free(a);
    if (rc == 0 && moved > 0) {
        sl_log(&sl_log_main, SL_LOG_NOTICE, 0, "%zu stored responses moved to the new layout",
               moved);
    }
    return rc;
}


static int
resp_migrate_collect(void *arg, sl_str_t key, sl_str_t val)
{
    resp_migrate_arg_t *a = arg;

    (void) val;
    if (key.len < 2 || memcmp(key.p, a->prefix, 2) != 0 || a->n == RESP_MIGRATE_MAX) {
        return 1;
    }
    memcpy(a->keys[a->n], key.p, key.len < RESP_V1_KEY_MAX ? key.len : RESP_V1_KEY_MAX);
    a->lens[a->n++] = key.len;
    return 0;
}


/*
 * Moves one layout 1 response to layout 2: key is its index entry or its
 * record's key, the id after skip bytes. Both old keys go; a record that
 * does not decode is dropped (logged).
 */
static int
resp_migrate_one(sl_txn_t *t, const uint8_t *key, size_t len, size_t skip, size_t *moved)
{
    const char *id = (const char *) key + skip;
    size_t idlen = len > skip ? len - skip : 0;
    uint8_t okey[RESP_V1_KEY_MAX], be[8];
    const uint8_t *p;
    char kt[2][256];
    sl_str_t rec, json;
    int64_t created;
    char *copy;
    uint64_t num;
    size_t klen, tlen;
    int rc;

    if (len > RESP_V1_KEY_MAX || idlen == 0 || idlen > SL_RESPONSES_ID_MAX) {
        sl_log(&sl_log_main, SL_LOG_WARN, 0, "a stored response key of %zu bytes: dropped", len);
        rc = len <= RESP_V1_KEY_MAX ? sl_db_del(t, SL_DBI_RESPONSES, key, len) : 0;
        return rc == SL_ENOTFOUND ? 0 : rc;
    }
    if (skip == 10) {
        rc = sl_db_del(t, SL_DBI_RESPONSES, key, len);
        if (rc != 0) {
            return rc;
        }
    }
    okey[0] = 'r';
    okey[1] = ':';
    memcpy(okey + 2, id, idlen);
    rc = sl_db_get(t, SL_DBI_RESPONSES, okey, 2 + idlen, &rec);
    if (rc != 0) {
        return rc == SL_ENOTFOUND ? 0 : rc;
    }
    p = (const uint8_t *) rec.p;
    if (rec.len < RESP_HEAD_LEN || p[0] != RESP_VERSION_1
        || RESP_HEAD_LEN + (size_t) p[1] + p[2] > rec.len) {
        sl_log(&sl_log_main, SL_LOG_WARN, 0, "stored response \"%.*s\" does not decode: dropped",
               (int) idlen, id);
        return sl_db_del(t, SL_DBI_RESPONSES, okey, 2 + idlen);
    }
    /* copies: the puts below may move the page the record lies on */
    klen = p[1];
    tlen = p[2];
    memcpy(kt[0], rec.p + RESP_HEAD_LEN, klen);
    kt[0][klen] = '\0';
    memcpy(kt[1], rec.p + RESP_HEAD_LEN + klen, tlen);
    kt[1][tlen] = '\0';
    created = (int64_t) resp_get_be64(p + 4);
    json.len = rec.len - RESP_HEAD_LEN - klen - tlen;
    copy = sl_xmalloc(json.len + 1);
    memcpy(copy, rec.p + RESP_HEAD_LEN + klen + tlen, json.len);
    json.p = copy;
    rc = resp_next_number(t, &num);
    if (rc == 0) {
        resp_put_be64(be, num);
        rc = sl_db_put(t, SL_DBI_RESPONSE_IDS, id, idlen, be, 8, false);
    }
    if (rc == 0) {
        rc = resp_write(t, num, id, idlen, kt[0], kt[1], created, json);
    }
    free(copy);
    if (rc == 0) {
        rc = sl_db_del(t, SL_DBI_RESPONSES, okey, 2 + idlen);
        *moved += rc == 0;
    }
    return rc;
}


static void
resp_rec_key(uint8_t *b, uint64_t num)
{
    b[0] = 'z';
    b[1] = ':';
    resp_put_be64(b + 2, num);
}


static int
resp_decode(sl_str_t rec, sl_pool_t *pool, sl_resp_rec_t *out)
{
    const uint8_t *p = (const uint8_t *) rec.p;
    size_t ilen, klen, tlen;

    if (rec.len < RESP_HEAD_LEN || p[0] != RESP_VERSION) {
        return SL_ECORRUPT;
    }
    klen = p[1];
    tlen = p[2];
    ilen = p[3];
    if (RESP_HEAD_LEN + ilen + klen + tlen > rec.len) {
        return SL_ECORRUPT;
    }
    out->created_ns = (int64_t) resp_get_be64(p + 4);
    out->key_id = sl_pstrndup(pool, rec.p + RESP_HEAD_LEN + ilen, klen);
    out->team = sl_pstrndup(pool, rec.p + RESP_HEAD_LEN + ilen + klen, tlen);
    out->json.len = rec.len - RESP_HEAD_LEN - ilen - klen - tlen;
    out->json.p = sl_pstrndup(pool, rec.p + RESP_HEAD_LEN + ilen + klen + tlen, out->json.len);
    return 0;
}


/* The id a record was stored under (borrowed). Returns 0 or SL_ECORRUPT. */
static int
resp_decode_id(sl_str_t rec, sl_str_t *id)
{
    const uint8_t *p = (const uint8_t *) rec.p;

    if (rec.len < RESP_HEAD_LEN || p[0] != RESP_VERSION || p[3] == 0
        || RESP_HEAD_LEN + (size_t) p[3] > rec.len) {
        return SL_ECORRUPT;
    }
    id->p = rec.p + RESP_HEAD_LEN;
    id->len = p[3];
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
