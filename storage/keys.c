/*
 * Client keys on LMDB: creation (random text, stored as SHA-256 only),
 * authentication by hash, lookup by id or name, listing, revocation and
 * updates, and the record codec.
 *
 * Record layout, version 2 (integers big-endian):
 *
 *     u8  version (2)        u8  period          u16 reserved (0)
 *     i64 created            i64 expires         i64 revoked
 *     u64 rpm                u64 tpm             u64 budget (nano-USD)
 *     u8[4] last4
 *     str id, str name, str team, str metadata   (str: u16 length + bytes)
 *     u16 nmodels, nmodels x str
 *     str guard                                  (version 2; "" for none)
 *     u32 FNV-1a of everything before it
 *
 * Version 1 records (without the guard) are still read; every write is
 * version 2.
 *
 * Decoding checks every length against the record's end, the version, the
 * ranges and the checksum; it copies what it keeps into one pool block, so
 * nothing points into LMDB's map after the transaction ends.
 *
 * Authentication cache: the hash index (SHA-256 of the text -> id) is
 * written once, when a key is created, and never changed or deleted, so
 * what it maps a text to can be remembered. Each thread keeps a small
 * direct-mapped table of text -> id for the keys it authenticated, tagged
 * with a keyed 128-bit SipHash of the text (per-process random key; the
 * text itself is not kept), which spares the hot path the SHA-256 and the
 * index read. The record is still read from the transaction on every
 * request, so revocation, expiry, limits and budgets take effect at once;
 * an id whose record is gone (a restored backup) drops its entry and the
 * text is looked up again. The entry also keeps the bytes of the last
 * record it decoded whole (checksum included, when it fits): a record read
 * byte for byte the same is decoded without its checksum being computed
 * again (identical bytes have the checksum that matched), and any other
 * record, changed or damaged, is checked whole.
 */
#include "storage/keys.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/conf/conf.h"
#include "core/base/log.h"
#include "storage/ledger.h"
#include "storage/spend.h"

#define KEYS_VERSION    2
#define KEYS_VERSION_V1 1  /* no guard field */
#define KEYS_FIXED_LEN  56 /* version .. last4 */
#define KEYS_SUM_LEN    4
#define KEYS_RANDOM_LEN 32
#define KEYS_ID_RANDOM  8
#define KEYS_AUTH_MAX   1024 /* longer "keys" are not hashed at all */
#define KEYS_ID_PREFIX  "key_"
#define KEYS_CACHE_SIZE 256 /* entries of the per-thread auth cache, a power of two */
#define KEYS_CACHE_REC  218 /* longest record an entry keeps the checked bytes of (entry: 256) */

typedef struct keys_cache_entry {
    uint64_t tag[2]; /* SipHash-2-4-128 of the text; {0, 0}: empty */
    char id[SL_KEY_ID_LEN];
    uint16_t reclen;             /* 0: no checked record kept */
    uint8_t rec[KEYS_CACHE_REC]; /* the record last decoded whole, checksum matched */
} keys_cache_entry_t;

static _Thread_local keys_cache_entry_t keys_cache[KEYS_CACHE_SIZE];
static _Thread_local uint64_t keys_cache_key[2];
static _Thread_local int keys_cache_state; /* 0 unseeded, 1 ready, -1 off (no randomness) */

typedef struct keys_create_arg {
    const sl_key_t *key;
    const uint8_t *rec;
    size_t reclen;
    const uint8_t *hash;
} keys_create_arg_t;

typedef struct keys_update_arg {
    const char *id_or_name;
    const sl_key_spec_t *changes;
    unsigned fields;
    int64_t now;
    bool revoke;
    sl_pool_t *pool;
    sl_key_t *key; /* the result */
} keys_update_arg_t;

typedef struct keys_list_arg {
    sl_pool_t *pool;
    int (*cb)(void *arg, const sl_key_t *key);
    void *arg;
    bool corrupt;
} keys_list_arg_t;

typedef struct keys_reader {
    const uint8_t *p;
    const uint8_t *end;
} keys_reader_t;

static int keys_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool keys_name_ok(const char *s);
static bool keys_is_id(const char *s);
static int keys_create_txn(sl_txn_t *t, void *arg);
static int keys_update_txn(sl_txn_t *t, void *arg);
static int keys_list_cb(void *arg, sl_str_t key, sl_str_t val);
static int keys_get_id(sl_txn_t *t, const char *id, size_t idlen, sl_pool_t *pool, sl_key_t **key);
static int keys_resolve(sl_txn_t *t, const char *id_or_name, sl_str_t *id);
static int keys_apply(sl_key_t *k, const sl_key_spec_t *c, unsigned fields, sl_pool_t *pool);
static char *keys_compact_json(const char *text, sl_pool_t *pool);
static int64_t keys_days_from_civil(int64_t y, unsigned m, unsigned d);
static json_t *keys_json_time(int64_t t);
static int keys_encode(const sl_key_t *k, sl_pool_t *pool, uint8_t **out, size_t *len);
static int keys_decode(sl_str_t id, sl_str_t rec, bool checked, sl_pool_t *pool, sl_key_t **out);
static int keys_get_cached(sl_txn_t *t, keys_cache_entry_t *e, sl_pool_t *pool, sl_key_t **key);
static const char *keys_take(char **s, sl_str_t src);
static int keys_corrupt(sl_str_t id, const char *why);
static uint8_t *keys_put_u64(uint8_t *p, uint64_t v);
static uint8_t *keys_put_str(uint8_t *p, const char *s);
static bool keys_get_u64(keys_reader_t *r, uint64_t *v);
static bool keys_get_u16(keys_reader_t *r, size_t *v);
static bool keys_get_str(keys_reader_t *r, sl_str_t *s, size_t max);
static uint32_t keys_fnv1a(const uint8_t *p, size_t len);
static bool keys_cache_tag(const char *text, size_t len, uint64_t tag[2]);
static void keys_siphash128(const uint64_t k[2], const uint8_t *p, size_t len, uint64_t out[2]);


static int
keys_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}


/* 1..64 of [A-Za-z0-9._-], starting with a letter or digit; shared by names and teams. */
static bool
keys_name_ok(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > SL_KEY_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            return false;
        }
    }
    return true;
}


static bool
keys_is_id(const char *s)
{
    if (strlen(s) != SL_KEY_ID_LEN || strncmp(s, KEYS_ID_PREFIX, 4) != 0) {
        return false;
    }
    for (size_t i = 4; i < SL_KEY_ID_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}


int
sl_key_spec_check(const sl_key_spec_t *spec, unsigned fields, int64_t now, char *err, size_t errlen)
{
    json_t *meta;
    json_error_t jerr;
    bool object;

    if (fields & SL_KEY_SET_NAME) {
        if (spec->name == NULL || !keys_name_ok(spec->name)) {
            return keys_errf(err, errlen,
                             "invalid key name: use 1 to %d letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit",
                             SL_KEY_NAME_MAX);
        }
        if (strncmp(spec->name, KEYS_ID_PREFIX, 4) == 0) {
            return keys_errf(err, errlen, "a key name may not start with \"key_\" (ids do)");
        }
    }
    if ((fields & SL_KEY_SET_TEAM) && spec->team != NULL && *spec->team != '\0'
        && !keys_name_ok(spec->team)) {
        return keys_errf(err, errlen,
                         "invalid team name: use 1 to %d letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit",
                         SL_KEY_NAME_MAX);
    }
    if (fields & SL_KEY_SET_MODELS) {
        if (spec->nmodels > SL_KEY_MODELS_MAX) {
            return keys_errf(err, errlen, "too many model globs (%zu, at most %d)", spec->nmodels,
                             SL_KEY_MODELS_MAX);
        }
        for (size_t i = 0; i < spec->nmodels; i++) {
            const char *g = spec->models[i];
            size_t len = g == NULL ? 0 : strlen(g);

            if (len == 0 || len > SL_KEY_GLOB_MAX) {
                return keys_errf(err, errlen, "a model glob must be 1 to %d characters",
                                 SL_KEY_GLOB_MAX);
            }
            for (size_t j = 0; j < len; j++) {
                if (g[j] <= ' ' || g[j] == ',' || g[j] == 0x7f) {
                    return keys_errf(err, errlen,
                                     "model glob \"%.*s\" has a space, comma or control character",
                                     (int) (len > 64 ? 64 : len), g);
                }
            }
        }
    }
    if ((fields & SL_KEY_SET_BUDGET) && (fields & SL_KEY_SET_PERIOD) && spec->budget != 0
        && (spec->period < SL_BUDGET_DAY || spec->period > SL_BUDGET_PERIOD_MAX)) {
        return keys_errf(err, errlen, "a budget needs a period: day, week, month or total");
    }
    if ((fields & SL_KEY_SET_GUARD) && spec->guard != NULL && *spec->guard != '\0'
        && !keys_name_ok(spec->guard)) {
        return keys_errf(err, errlen,
                         "invalid guard policy name: use 1 to %d letters, digits, '.', '_' or "
                         "'-', starting with a letter or digit",
                         SL_KEY_NAME_MAX);
    }
    if ((fields & SL_KEY_SET_EXPIRES) && spec->expires != 0 && spec->expires <= now) {
        return keys_errf(err, errlen, "the expiry is in the past");
    }
    if ((fields & SL_KEY_SET_METADATA) && spec->metadata != NULL && *spec->metadata != '\0') {
        if (strlen(spec->metadata) > SL_KEY_META_MAX) {
            return keys_errf(err, errlen, "metadata is larger than %d bytes", SL_KEY_META_MAX);
        }
        meta = json_loads(spec->metadata, JSON_REJECT_DUPLICATES, &jerr);
        if (meta == NULL) {
            return keys_errf(err, errlen, "metadata is not valid JSON: %s (column %d)", jerr.text,
                             jerr.column);
        }
        object = json_is_object(meta);
        json_decref(meta);
        if (!object) {
            return keys_errf(err, errlen, "metadata must be a JSON object");
        }
    }
    return 0;
}


int
sl_keys_create(sl_db_t *db, const sl_key_spec_t *spec, sl_pool_t *pool, sl_key_t **key,
               char **plaintext)
{
    uint8_t rnd[KEYS_RANDOM_LEN], idrnd[KEYS_ID_RANDOM], hash[SL_CRYPTO_SHA256_LEN], *rec;
    int64_t now = (int64_t) time(NULL);
    char *text, *id;
    sl_key_t *k;
    keys_create_arg_t a;
    int rc;

    *key = NULL;
    *plaintext = NULL;
    if (sl_key_spec_check(spec, ~0u, now, NULL, 0) != 0) {
        return -EINVAL;
    }
    rc = sl_crypto_random(rnd, sizeof(rnd));
    if (rc == 0) {
        rc = sl_crypto_random(idrnd, sizeof(idrnd));
    }
    if (rc != 0) {
        goto out_wipe;
    }
    text = sl_palloc(pool, SL_KEY_TEXT_LEN + 1);
    memcpy(text, SL_KEY_PREFIX, sizeof(SL_KEY_PREFIX) - 1);
    sl_crypto_base62(rnd, sizeof(rnd), text + sizeof(SL_KEY_PREFIX) - 1,
                     SL_KEY_TEXT_LEN + 1 - (sizeof(SL_KEY_PREFIX) - 1));
    sl_crypto_sha256(text, SL_KEY_TEXT_LEN, hash);
    id = sl_palloc(pool, SL_KEY_ID_LEN + 1);
    memcpy(id, KEYS_ID_PREFIX, 4);
    sl_crypto_hex(idrnd, sizeof(idrnd), id + 4);

    k = sl_pcalloc(pool, sizeof(*k));
    k->id = id;
    k->created = now;
    memcpy(k->last4, text + SL_KEY_TEXT_LEN - 4, 4);
    k->last4[4] = '\0';
    rc = keys_apply(k, spec, ~0u, pool);
    if (rc != 0) {
        goto out_wipe;
    }
    a.key = k;
    a.hash = hash;
    rc = keys_encode(k, pool, &rec, &a.reclen);
    if (rc != 0) {
        goto out_wipe;
    }
    a.rec = rec;
    rc = sl_db_write(db, keys_create_txn, &a);
    if (rc != 0) {
        sl_crypto_wipe(text, SL_KEY_TEXT_LEN);
        goto out_wipe;
    }
    *key = k;
    *plaintext = text;

out_wipe:
    sl_crypto_wipe(rnd, sizeof(rnd));
    sl_crypto_wipe(hash, sizeof(hash));
    return rc;
}


static int
keys_create_txn(sl_txn_t *t, void *arg)
{
    keys_create_arg_t *a = arg;
    const sl_key_t *k = a->key;
    int rc;

    rc = sl_db_put(t, SL_DBI_KEY_NAME, k->name, strlen(k->name), k->id, SL_KEY_ID_LEN, true);
    if (rc != 0) {
        return rc;
    }
    /* 64 random bits for the id and 256 for the key: a clash means a broken generator */
    rc = sl_db_put(t, SL_DBI_KEYS, k->id, SL_KEY_ID_LEN, a->rec, a->reclen, true);
    if (rc == -EEXIST) {
        sl_log(&sl_log_main, SL_LOG_ALERT, 0, "new key id %s already exists", k->id);
        return SL_ESTORE;
    }
    if (rc != 0) {
        return rc;
    }
    rc = sl_db_put(t, SL_DBI_KEY_HASH, a->hash, SL_CRYPTO_SHA256_LEN, k->id, SL_KEY_ID_LEN, true);
    if (rc == -EEXIST) {
        sl_log(&sl_log_main, SL_LOG_ALERT, 0, "the hash of new key %s already exists", k->id);
        return SL_ESTORE;
    }
    return rc;
}


int
sl_keys_auth(sl_txn_t *t, const char *text, size_t len, sl_pool_t *pool, sl_key_t **key)
{
    uint8_t hash[SL_CRYPTO_SHA256_LEN];
    sl_str_t id;
    int rc;

    uint64_t tag[2] = { 0, 0 };
    keys_cache_entry_t *e = NULL;

    *key = NULL;
    if (len == 0 || len > KEYS_AUTH_MAX) {
        return SL_EAUTH;
    }
    if (keys_cache_tag(text, len, tag)) {
        e = &keys_cache[tag[0] & (KEYS_CACHE_SIZE - 1)];
        if (e->tag[0] == tag[0] && e->tag[1] == tag[1]) {
            rc = keys_get_cached(t, e, pool, key);
            if (rc != SL_ENOTFOUND) {
                return rc;
            }
            /* the record is gone (a restored backup): ask the index again */
            memset(e, 0, sizeof(*e));
        }
    }
    sl_crypto_sha256(text, len, hash);
    rc = sl_db_get(t, SL_DBI_KEY_HASH, hash, sizeof(hash), &id);
    if (rc == SL_ENOTFOUND) {
        return SL_EAUTH;
    }
    if (rc != 0) {
        return rc;
    }
    rc = keys_get_id(t, id.p, id.len, pool, key);
    if (rc == SL_ENOTFOUND) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "key hash index names key \"%.*s\", which is missing",
               (int) (id.len > SL_KEY_ID_LEN ? SL_KEY_ID_LEN : id.len), id.p);
        return SL_ESTORE;
    }
    if (rc == 0 && e != NULL) {
        /* id.len == SL_KEY_ID_LEN: keys_get_id checked it */
        memcpy(e->id, id.p, SL_KEY_ID_LEN);
        e->tag[0] = tag[0];
        e->tag[1] = tag[1];
        e->reclen = 0; /* the next hit decodes whole and keeps the record */
    }
    return rc;
}


/*
 * keys_get_id for a cached entry's id: a record byte for byte the one the
 * entry kept is decoded without its checksum; any other is decoded whole
 * and, when it is sound and fits, kept instead.
 */
static int
keys_get_cached(sl_txn_t *t, keys_cache_entry_t *e, sl_pool_t *pool, sl_key_t **key)
{
    sl_str_t rec, ids = { e->id, SL_KEY_ID_LEN };
    bool checked;
    int rc;

    rc = sl_db_get(t, SL_DBI_KEYS, e->id, SL_KEY_ID_LEN, &rec);
    if (rc != 0) {
        return rc;
    }
    checked = e->reclen != 0 && rec.len == e->reclen && memcmp(rec.p, e->rec, rec.len) == 0;
    rc = keys_decode(ids, rec, checked, pool, key);
    if (rc == 0 && !checked) {
        if (rec.len <= KEYS_CACHE_REC) {
            memcpy(e->rec, rec.p, rec.len);
            e->reclen = (uint16_t) rec.len;
        } else {
            e->reclen = 0;
        }
    }
    return rc;
}


void
sl_keys_auth_forget(void)
{
    memset(keys_cache, 0, sizeof(keys_cache));
}


/*
 * The auth cache's tag of text into tag; false when the cache is off (no
 * randomness for its key: every lookup then hashes). A {0, 0} tag, which
 * marks an empty entry, is never returned.
 */
static bool
keys_cache_tag(const char *text, size_t len, uint64_t tag[2])
{
    if (keys_cache_state == 0) {
        keys_cache_state = sl_crypto_random(keys_cache_key, sizeof(keys_cache_key)) == 0 ? 1 : -1;
    }
    if (keys_cache_state < 0) {
        return false;
    }
    keys_siphash128(keys_cache_key, (const uint8_t *) text, len, tag);
    if (tag[0] == 0 && tag[1] == 0) {
        tag[1] = 1;
    }
    return true;
}


#define KEYS_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define KEYS_SIPROUND           \
    do {                        \
        v0 += v1;               \
        v1 = KEYS_ROTL(v1, 13); \
        v1 ^= v0;               \
        v0 = KEYS_ROTL(v0, 32); \
        v2 += v3;               \
        v3 = KEYS_ROTL(v3, 16); \
        v3 ^= v2;               \
        v0 += v3;               \
        v3 = KEYS_ROTL(v3, 21); \
        v3 ^= v0;               \
        v2 += v1;               \
        v1 = KEYS_ROTL(v1, 17); \
        v1 ^= v2;               \
        v2 = KEYS_ROTL(v2, 32); \
    } while (0)


/* SipHash-2-4 with a 128-bit output (the reference's outlen 16 variant) of p[0..len) under k. */
static void
keys_siphash128(const uint64_t k[2], const uint8_t *p, size_t len, uint64_t out[2])
{
    uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
    uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
    uint64_t m, b = (uint64_t) len << 56;
    size_t i, left = len & 7;

    v1 ^= 0xee;
    for (i = 0; i + 8 <= len; i += 8) {
        m = 0;
        for (int j = 7; j >= 0; j--) {
            m = m << 8 | p[i + (size_t) j];
        }
        v3 ^= m;
        KEYS_SIPROUND;
        KEYS_SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; j < left; j++) {
        b |= (uint64_t) p[i + j] << (8 * j);
    }
    v3 ^= b;
    KEYS_SIPROUND;
    KEYS_SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    for (int r = 0; r < 4; r++) {
        KEYS_SIPROUND;
    }
    out[0] = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    for (int r = 0; r < 4; r++) {
        KEYS_SIPROUND;
    }
    out[1] = v0 ^ v1 ^ v2 ^ v3;
}


/* Reads and decodes the record of id; SL_ENOTFOUND when there is none. */
static int
keys_get_id(sl_txn_t *t, const char *id, size_t idlen, sl_pool_t *pool, sl_key_t **key)
{
    sl_str_t rec, ids = { id, idlen };
    int rc;

    if (idlen != SL_KEY_ID_LEN) {
        return keys_corrupt(ids, "an index holds a malformed id");
    }
    rc = sl_db_get(t, SL_DBI_KEYS, id, idlen, &rec);
    if (rc != 0) {
        return rc;
    }
    return keys_decode(ids, rec, false, pool, key);
}


/* The id of a key given by id or name, borrowed from the transaction or from id_or_name. */
static int
keys_resolve(sl_txn_t *t, const char *id_or_name, sl_str_t *id)
{
    size_t len = strlen(id_or_name);

    if (keys_is_id(id_or_name)) {
        id->p = id_or_name;
        id->len = len;
        return 0;
    }
    if (len == 0 || len > SL_KEY_NAME_MAX) {
        return SL_ENOTFOUND;
    }
    return sl_db_get(t, SL_DBI_KEY_NAME, id_or_name, len, id);
}


int
sl_keys_find(sl_txn_t *t, const char *id_or_name, sl_pool_t *pool, sl_key_t **key)
{
    sl_str_t id;
    int rc;

    *key = NULL;
    rc = keys_resolve(t, id_or_name, &id);
    if (rc != 0) {
        return rc;
    }
    return keys_get_id(t, id.p, id.len, pool, key);
}


int
sl_keys_list(sl_txn_t *t, sl_pool_t *pool, int (*cb)(void *arg, const sl_key_t *key), void *arg)
{
    keys_list_arg_t a = { pool, cb, arg, false };
    int rc;

    rc = sl_db_scan(t, SL_DBI_KEYS, NULL, 0, keys_list_cb, &a);
    if (rc == 0 && a.corrupt) {
        return SL_ESTORE;
    }
    return rc;
}


static int
keys_list_cb(void *arg, sl_str_t key, sl_str_t val)
{
    keys_list_arg_t *a = arg;
    sl_key_t *k;

    if (keys_decode(key, val, false, a->pool, &k) != 0) {
        a->corrupt = true;
        return 0;
    }
    return a->cb(a->arg, k);
}


int
sl_keys_revoke(sl_db_t *db, const char *id_or_name, int64_t now)
{
    sl_pool_t *pool = sl_pool_create(0);
    keys_update_arg_t a = { id_or_name, NULL, 0, now, true, pool, NULL };
    int rc;

    if (pool == NULL) {
        return -ENOMEM;
    }
    rc = sl_db_write(db, keys_update_txn, &a);
    sl_pool_destroy(pool);
    return rc;
}


int
sl_keys_update(sl_db_t *db, const char *id_or_name, const sl_key_spec_t *changes, unsigned fields,
               sl_pool_t *pool, sl_key_t **key)
{
    keys_update_arg_t a = { id_or_name, changes, fields, (int64_t) time(NULL), false, pool, NULL };
    int rc;

    if (key != NULL) {
        *key = NULL;
    }
    if (sl_key_spec_check(changes, fields, a.now, NULL, 0) != 0) {
        return -EINVAL;
    }
    rc = sl_db_write(db, keys_update_txn, &a);
    if (rc == 0 && key != NULL) {
        *key = a.key;
    }
    return rc;
}


/* Read, change, write back; repeatable, as sl_db_write requires. */
static int
keys_update_txn(sl_txn_t *t, void *arg)
{
    keys_update_arg_t *a = arg;
    const char *old_name;
    uint8_t *rec;
    size_t len;
    sl_key_t *k;
    int rc;

    rc = sl_keys_find(t, a->id_or_name, a->pool, &k);
    if (rc != 0) {
        return rc;
    }
    if (a->revoke) {
        if (k->revoked == 0) {
            k->revoked = a->now > 0 ? a->now : 1;
        }
    } else {
        old_name = k->name;
        rc = keys_apply(k, a->changes, a->fields, a->pool);
        if (rc != 0) {
            return rc;
        }
        if (strcmp(old_name, k->name) != 0) {
            rc =
                sl_db_put(t, SL_DBI_KEY_NAME, k->name, strlen(k->name), k->id, SL_KEY_ID_LEN, true);
            if (rc != 0) {
                return rc;
            }
            rc = sl_db_del(t, SL_DBI_KEY_NAME, old_name, strlen(old_name));
            if (rc != 0 && rc != SL_ENOTFOUND) {
                return rc;
            }
        }
    }
    rc = keys_encode(k, a->pool, &rec, &len);
    if (rc != 0) {
        return rc;
    }
    rc = sl_db_put(t, SL_DBI_KEYS, k->id, SL_KEY_ID_LEN, rec, len, false);
    if (rc != 0) {
        return rc;
    }
    a->key = k;
    return 0;
}


/* Copies the fields named by fields from c into k (strings into pool). */
static int
keys_apply(sl_key_t *k, const sl_key_spec_t *c, unsigned fields, sl_pool_t *pool)
{
    const char **models;

    if (fields & SL_KEY_SET_NAME) {
        k->name = sl_pstrdup(pool, c->name);
    }
    if (fields & SL_KEY_SET_TEAM) {
        k->team = c->team == NULL || *c->team == '\0' ? NULL : sl_pstrdup(pool, c->team);
    }
    if (fields & SL_KEY_SET_MODELS) {
        models = sl_palloc(pool, (c->nmodels + 1) * sizeof(*models));
        for (size_t i = 0; i < c->nmodels; i++) {
            models[i] = sl_pstrdup(pool, c->models[i]);
        }
        models[c->nmodels] = NULL;
        k->models = models;
        k->nmodels = c->nmodels;
    }
    if (fields & SL_KEY_SET_RPM) {
        k->rpm = c->rpm;
    }
    if (fields & SL_KEY_SET_TPM) {
        k->tpm = c->tpm;
    }
    if (fields & SL_KEY_SET_BUDGET) {
        if (c->budget != 0 && !(fields & SL_KEY_SET_PERIOD) && k->budget == 0) {
            return -EINVAL; /* a new budget needs a period: there is none to keep */
        }
        if (fields & SL_KEY_SET_PERIOD) {
            k->period = c->period;
        }
        k->budget = c->budget;
        if (c->budget == 0) {
            k->period = SL_BUDGET_DAY;
        }
    }
    if (fields & SL_KEY_SET_EXPIRES) {
        k->expires = c->expires;
    }
    if (fields & SL_KEY_SET_GUARD) {
        k->guard = c->guard == NULL || *c->guard == '\0' ? NULL : sl_pstrdup(pool, c->guard);
    }
    if (fields & SL_KEY_SET_METADATA) {
        k->metadata = NULL;
        if (c->metadata != NULL && *c->metadata != '\0') {
            k->metadata = keys_compact_json(c->metadata, pool);
            if (k->metadata == NULL) {
                return -EINVAL;
            }
        }
    }
    return 0;
}


/* The object re-serialized compactly with sorted keys, in pool; NULL when it is not one. */
static char *
keys_compact_json(const char *text, sl_pool_t *pool)
{
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    char *s, *out = NULL;

    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (s != NULL && strlen(s) <= SL_KEY_META_MAX) {
        out = sl_pstrdup(pool, s);
    }
    free(s);
    return out;
}


bool
sl_key_is_active(const sl_key_t *k, int64_t now)
{
    return k->revoked == 0 && (k->expires == 0 || now < k->expires);
}


const char *
sl_key_status(const sl_key_t *k, int64_t now)
{
    if (k->revoked != 0) {
        return "revoked";
    }
    if (k->expires != 0 && now >= k->expires) {
        return "expired";
    }
    return "active";
}


bool
sl_key_allows_model(const sl_key_t *k, const char *model)
{
    if (k->nmodels == 0) {
        return true;
    }
    for (size_t i = 0; i < k->nmodels; i++) {
        if (fnmatch(k->models[i], model, 0) == 0) {
            return true;
        }
    }
    return false;
}


int
sl_key_parse_expiry(const char *s, int64_t now, int64_t *at)
{
    unsigned y, m, d;
    uint64_t ms;
    int used = 0;

    if (strlen(s) == 10 && sscanf(s, "%4u-%2u-%2u%n", &y, &m, &d, &used) == 3 && used == 10) {
        /* a day that does not exist would roll over into the next month */
        if (y < 1970 || m < 1 || m > 12 || d < 1
            || keys_days_from_civil(y, m, d)
                   >= keys_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1)) {
            return SL_EPARSE;
        }
        *at = (keys_days_from_civil(y, m, d) + 1) * 86400;
        return 0;
    }
    if (sl_conf_parse_duration(s, &ms) != 0 || ms < 1000 || ms / 1000 > (uint64_t) INT32_MAX * 8) {
        return SL_EPARSE;
    }
    *at = now + (int64_t) (ms / 1000);
    return 0;
}


/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t
keys_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}


json_t *
sl_key_json(const sl_key_t *k, int64_t now, const char *text)
{
    json_t *j = json_object(), *models = json_array(), *meta = NULL;
    char usd[40];

    if (j == NULL || models == NULL) {
        json_decref(j);
        json_decref(models);
        return NULL;
    }
    for (size_t i = 0; i < k->nmodels; i++) {
        json_array_append_new(models, json_string(k->models[i]));
    }
    if (k->metadata != NULL) {
        meta = json_loads(k->metadata, 0, NULL);
    }
    json_object_set_new(j, "id", json_string(k->id));
    json_object_set_new(j, "name", json_string(k->name));
    if (text != NULL) {
        json_object_set_new(j, "key", json_string(text));
    }
    json_object_set_new(j, "team", k->team == NULL ? json_null() : json_string(k->team));
    json_object_set_new(j, "status", json_string(sl_key_status(k, now)));
    json_object_set_new(j, "models", models);
    json_object_set_new(j, "rpm", json_integer((json_int_t) k->rpm));
    json_object_set_new(j, "tpm", json_integer((json_int_t) k->tpm));
    if (k->budget != 0) {
        sl_budget_format_usd(k->budget, usd, sizeof(usd));
        json_object_set_new(j, "budget_usd", json_string(usd));
        json_object_set_new(j, "budget_nano_usd", json_integer((json_int_t) k->budget));
        json_object_set_new(j, "period", json_string(sl_budget_period_name(k->period)));
    } else {
        json_object_set_new(j, "budget_usd", json_null());
        json_object_set_new(j, "budget_nano_usd", json_integer(0));
        json_object_set_new(j, "period", json_null());
    }
    json_object_set_new(j, "created", keys_json_time(k->created));
    json_object_set_new(j, "expires", keys_json_time(k->expires));
    json_object_set_new(j, "revoked", keys_json_time(k->revoked));
    json_object_set_new(j, "last4", json_string(k->last4));
    json_object_set_new(j, "metadata", meta == NULL ? json_null() : meta);
    json_object_set_new(j, "guard", k->guard == NULL ? json_null() : json_string(k->guard));
    return j;
}


static json_t *
keys_json_time(int64_t t)
{
    char buf[32];

    if (t == 0) {
        return json_null();
    }
    sl_ledger_format_time(t, buf, sizeof(buf));
    return json_string(buf);
}

static int
keys_encode(const sl_key_t *k, sl_pool_t *pool, uint8_t **out, size_t *len)
{
    size_t n = KEYS_FIXED_LEN + KEYS_SUM_LEN + 2 * 6;
    const char *team = k->team == NULL ? "" : k->team;
    const char *meta = k->metadata == NULL ? "" : k->metadata;
    const char *guard = k->guard == NULL ? "" : k->guard;
    uint8_t *buf, *p;
    uint32_t sum;

    n += strlen(k->id) + strlen(k->name) + strlen(team) + strlen(meta) + strlen(guard);
    for (size_t i = 0; i < k->nmodels; i++) {
        n += 2 + strlen(k->models[i]);
    }
    buf = sl_palloc(pool, n);
    p = buf;
    *p++ = KEYS_VERSION;
    *p++ = (uint8_t) k->period;
    *p++ = 0;
    *p++ = 0;
    p = keys_put_u64(p, (uint64_t) k->created);
    p = keys_put_u64(p, (uint64_t) k->expires);
    p = keys_put_u64(p, (uint64_t) k->revoked);
    p = keys_put_u64(p, k->rpm);
    p = keys_put_u64(p, k->tpm);
    p = keys_put_u64(p, k->budget);
    memcpy(p, k->last4, 4);
    p += 4;
    p = keys_put_str(p, k->id);
    p = keys_put_str(p, k->name);
    p = keys_put_str(p, team);
    p = keys_put_str(p, meta);
    *p++ = (uint8_t) (k->nmodels >> 8);
    *p++ = (uint8_t) k->nmodels;
    for (size_t i = 0; i < k->nmodels; i++) {
        p = keys_put_str(p, k->models[i]);
    }
    p = keys_put_str(p, guard);
    sum = keys_fnv1a(buf, (size_t) (p - buf));
    *p++ = (uint8_t) (sum >> 24);
    *p++ = (uint8_t) (sum >> 16);
    *p++ = (uint8_t) (sum >> 8);
    *p++ = (uint8_t) sum;
    *out = buf;
    *len = (size_t) (p - buf);
    return 0;
}


/*
 * The key in rec into one block of pool (*out); SL_ESTORE, logged, when rec
 * is damaged. checked: rec is byte for byte a record whose checksum matched
 * before (the auth cache's), so it is not computed again.
 */
static int
keys_decode(sl_str_t id, sl_str_t rec, bool checked, sl_pool_t *pool, sl_key_t **out)
{
    keys_reader_t r;
    const uint8_t *b = (const uint8_t *) rec.p;
    sl_str_t sid, name, team, meta, guard = { "", 0 }, models[SL_KEY_MODELS_MAX];
    uint64_t v[6];
    size_t nmodels, need;
    uint32_t sum;
    sl_key_t *k;
    char *s;
    const char **mp;

    if (rec.len < KEYS_FIXED_LEN + KEYS_SUM_LEN + 2 * 5) {
        return keys_corrupt(id, "too short");
    }
    if (b[0] != KEYS_VERSION && b[0] != KEYS_VERSION_V1) {
        return keys_corrupt(id, "unknown version");
    }
    sum = (uint32_t) b[rec.len - 4] << 24 | (uint32_t) b[rec.len - 3] << 16
          | (uint32_t) b[rec.len - 2] << 8 | b[rec.len - 1];
    if (!checked && sum != keys_fnv1a(b, rec.len - KEYS_SUM_LEN)) {
        return keys_corrupt(id, "checksum mismatch");
    }
    if (b[1] > SL_BUDGET_PERIOD_MAX || b[2] != 0 || b[3] != 0) {
        return keys_corrupt(id, "bad period or flags");
    }
    r.p = b + 4;
    r.end = b + rec.len - KEYS_SUM_LEN;
    for (int i = 0; i < 6; i++) {
        keys_get_u64(&r, &v[i]);
    }
    r.p += 4; /* last4, copied below */
    if (!keys_get_str(&r, &sid, SL_KEY_ID_LEN) || !keys_get_str(&r, &name, SL_KEY_NAME_MAX)
        || !keys_get_str(&r, &team, SL_KEY_NAME_MAX) || !keys_get_str(&r, &meta, SL_KEY_META_MAX)
        || !keys_get_u16(&r, &nmodels) || nmodels > SL_KEY_MODELS_MAX) {
        return keys_corrupt(id, "bad field length");
    }
    for (size_t i = 0; i < nmodels; i++) {
        if (!keys_get_str(&r, &models[i], SL_KEY_GLOB_MAX) || models[i].len == 0) {
            return keys_corrupt(id, "bad model glob");
        }
    }
    if (b[0] >= KEYS_VERSION && !keys_get_str(&r, &guard, SL_KEY_NAME_MAX)) {
        return keys_corrupt(id, "bad guard");
    }
    if (r.p != r.end) {
        return keys_corrupt(id, "trailing bytes");
    }
    if (sid.len != id.len || memcmp(sid.p, id.p, id.len) != 0 || name.len == 0 || (int64_t) v[0] < 0
        || (int64_t) v[1] < 0 || (int64_t) v[2] < 0) {
        return keys_corrupt(id, "inconsistent fields");
    }

    /* one pool block: the struct, the glob pointers, then every string */
    need = sizeof(*k) + (nmodels + 1) * sizeof(char *) + sid.len + name.len + team.len + meta.len
           + guard.len + 5;
    for (size_t i = 0; i < nmodels; i++) {
        need += models[i].len + 1;
    }
    k = sl_palloc(pool, need);
    memset(k, 0, sizeof(*k));
    mp = (const char **) (k + 1);
    s = (char *) (mp + nmodels + 1);
    k->id = keys_take(&s, sid);
    k->name = keys_take(&s, name);
    if (team.len > 0) {
        k->team = keys_take(&s, team);
    }
    if (meta.len > 0) {
        k->metadata = keys_take(&s, meta);
    }
    if (guard.len > 0) {
        k->guard = keys_take(&s, guard);
    }
    for (size_t i = 0; i < nmodels; i++) {
        mp[i] = keys_take(&s, models[i]);
    }
    mp[nmodels] = NULL;
    k->models = mp;
    k->nmodels = nmodels;
    k->period = (sl_budget_period_e) b[1];
    k->created = (int64_t) v[0];
    k->expires = (int64_t) v[1];
    k->revoked = (int64_t) v[2];
    k->rpm = v[3];
    k->tpm = v[4];
    k->budget = v[5];
    memcpy(k->last4, b + KEYS_FIXED_LEN - 4, 4);
    k->last4[4] = '\0';
    *out = k;
    return 0;
}


/* Copies src to *s, NUL-terminated, and moves *s past it. Returns the copy. */
static const char *
keys_take(char **s, sl_str_t src)
{
    char *dst = *s;

    memcpy(dst, src.p, src.len);
    dst[src.len] = '\0';
    *s = dst + src.len + 1;
    return dst;
}


/* Logs a record that does not decode; the id is printed only as far as it is printable. */
static int
keys_corrupt(sl_str_t id, const char *why)
{
    char safe[SL_KEY_ID_LEN + 1];
    size_t n = id.len < SL_KEY_ID_LEN ? id.len : SL_KEY_ID_LEN;

    for (size_t i = 0; i < n; i++) {
        safe[i] = id.p[i] > ' ' && id.p[i] < 0x7f ? id.p[i] : '?';
    }
    safe[n] = '\0';
    sl_log(&sl_log_main, SL_LOG_ERR, 0, "key record \"%s\" is corrupt (%s), not used", safe, why);
    return SL_ESTORE;
}


static uint8_t *
keys_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        *p++ = (uint8_t) (v >> (8 * i));
    }
    return p;
}


static uint8_t *
keys_put_str(uint8_t *p, const char *s)
{
    size_t len = strlen(s);

    *p++ = (uint8_t) (len >> 8);
    *p++ = (uint8_t) len;
    memcpy(p, s, len);
    return p + len;
}


static bool
keys_get_u64(keys_reader_t *r, uint64_t *v)
{
    if (r->end - r->p < 8) {
        return false;
    }
    *v = 0;
    for (int i = 0; i < 8; i++) {
        *v = *v << 8 | *r->p++;
    }
    return true;
}


static bool
keys_get_u16(keys_reader_t *r, size_t *v)
{
    if (r->end - r->p < 2) {
        return false;
    }
    *v = (size_t) r->p[0] << 8 | r->p[1];
    r->p += 2;
    return true;
}


/* A length-prefixed string of at most max bytes with no NUL inside, borrowed. */
static bool
keys_get_str(keys_reader_t *r, sl_str_t *s, size_t max)
{
    size_t len;

    if (!keys_get_u16(r, &len) || len > max || (size_t) (r->end - r->p) < len) {
        return false;
    }
    if (memchr(r->p, '\0', len) != NULL) {
        return false;
    }
    s->p = (const char *) r->p;
    s->len = len;
    r->p += len;
    return true;
}


static uint32_t
keys_fnv1a(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}
