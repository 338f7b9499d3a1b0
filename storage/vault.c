/*
 * Vault records and the master key.
 *
 * Secret record, version 1 (big-endian):
 *
 *     u8 version (1)   u8 reserved (0)   u16 reserved (0)
 *     i64 created      i64 updated
 *     nonce (12) || ciphertext || tag (16)
 *
 * The additional data is the 20-byte header followed by the name, so
 * neither the dates nor the name can be changed without the value failing
 * to open. The key-check record (META "vault_check") is a version byte and
 * a fixed text sealed with the additional data "vault_check".
 */
#include "storage/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/log.h"

#define VAULT_VERSION    1
#define VAULT_HDR_LEN    20
#define VAULT_CHECK_KEY  "vault_check"
#define VAULT_CHECK_TEXT "sluice vault key check v1"
#define VAULT_CHECK_LEN  (1 + sizeof(VAULT_CHECK_TEXT) - 1 + SL_CRYPTO_SEAL_OVERHEAD)
#define VAULT_FILE_MAX   512

struct sl_vault {
    sl_db_t *db;
    bool has_key;
    uint8_t key[SL_CRYPTO_KEY_LEN];
};

typedef struct vault_set_arg {
    sl_vault_t *v;
    const char *name;
    const void *value;
    size_t len;
    int64_t now;
    uint8_t *buf; /* header + sealed value, VAULT_HDR_LEN + len + overhead */
} vault_set_arg_t;

typedef struct vault_list_arg {
    int (*cb)(void *arg, const sl_vault_entry_t *e);
    void *arg;
    bool corrupt;
} vault_list_arg_t;

typedef struct vault_rotate_arg {
    sl_vault_t *v;
    const uint8_t *new_key;
    sl_pool_t *pool;
    const char **names;
    size_t n, cap;
} vault_rotate_arg_t;

typedef struct vault_wipe {
    void *p;
    size_t len;
} vault_wipe_t;

static int vault_read_key_file(const char *file, uint8_t key[SL_CRYPTO_KEY_LEN]);
static int vault_need_key(const sl_vault_t *v);
static int vault_check(sl_txn_t *t, const uint8_t key[SL_CRYPTO_KEY_LEN], bool create);
static int vault_put_check(sl_txn_t *t, const uint8_t key[SL_CRYPTO_KEY_LEN]);
static void vault_header(uint8_t *hdr, int64_t created, int64_t updated);
static int vault_parse(sl_str_t rec, int64_t *created, int64_t *updated);
static int vault_ad(const uint8_t *hdr, const char *name, uint8_t *ad, size_t *adlen);
static int vault_open_rec(const uint8_t key[SL_CRYPTO_KEY_LEN], const char *name, sl_str_t rec,
                          uint8_t *out);
static int vault_seal_rec(const uint8_t key[SL_CRYPTO_KEY_LEN], const char *name, int64_t created,
                          int64_t updated, const void *pt, size_t len, uint8_t *out);
static int vault_set_txn(sl_txn_t *t, void *arg);
static int vault_rm_txn(sl_txn_t *t, void *arg);
static int vault_list_cb(void *arg, sl_str_t key, sl_str_t val);
static int vault_collect_cb(void *arg, sl_str_t key, sl_str_t val);
static int vault_rotate_txn(sl_txn_t *t, void *arg);
static void vault_wipe_cb(void *arg);
static void vault_corrupt(sl_str_t name, const char *why);
static int64_t vault_get_i64(const uint8_t *p);


int
sl_vault_load_key(const char *env, const char *file, uint8_t key[SL_CRYPTO_KEY_LEN])
{
    const char *text = env == NULL ? NULL : getenv(env);

    if (text != NULL && *text != '\0') {
        if (sl_crypto_parse_key(text, strlen(text), key) != 0) {
            sl_log(&sl_log_main, SL_LOG_ERR, 0,
                   "%s must be 64 hex digits or the base64 of 32 bytes", env);
            return -EINVAL;
        }
        return 0;
    }
    if (file != NULL && *file != '\0') {
        return vault_read_key_file(file, key);
    }
    return SL_ENOTFOUND;
}


static int
vault_read_key_file(const char *file, uint8_t key[SL_CRYPTO_KEY_LEN])
{
    uint8_t buf[VAULT_FILE_MAX];
    struct stat st;
    size_t len = 0;
    ssize_t r;
    int fd, err, rc = 0;

    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "cannot open master key file \"%s\"", file);
        return -err;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "master key file \"%s\" is not a regular file", file);
        rc = -EINVAL;
        goto out_close;
    }
    if (st.st_mode & 077) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "master key file \"%s\" is accessible by group or others (mode %04o): "
               "run chmod 600 on it",
               file, (unsigned) (st.st_mode & 07777));
        rc = -EACCES;
        goto out_close;
    }
    if (st.st_uid != geteuid()) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "master key file \"%s\" belongs to uid %ld, not to the user sluice runs as (%ld)",
               file, (long) st.st_uid, (long) geteuid());
        rc = -EACCES;
        goto out_close;
    }
    while (len < sizeof(buf)) {
        r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            err = errno;
            sl_log(&sl_log_main, SL_LOG_ERR, err, "cannot read master key file \"%s\"", file);
            rc = -err;
            goto out_wipe;
        }
        if (r == 0) {
            break;
        }
        len += (size_t) r;
    }
    if (len == SL_CRYPTO_KEY_LEN) {
        /* neither hex (64) nor base64 (44) is 32 characters long: these are raw bytes */
        memcpy(key, buf, SL_CRYPTO_KEY_LEN);
    } else if (len == sizeof(buf) || sl_crypto_parse_key((const char *) buf, len, key) != 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "master key file \"%s\" must hold 64 hex digits, the base64 of 32 bytes or 32 raw "
               "bytes",
               file);
        rc = -EINVAL;
    }

out_wipe:
    sl_crypto_wipe(buf, sizeof(buf));
out_close:
    close(fd);
    return rc;
}


int
sl_vault_open(sl_db_t *db, const char *key_file, sl_vault_t **out)
{
    sl_vault_t *v;
    int rc;

    *out = NULL;
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return -ENOMEM;
    }
    v->db = db;
    if (key_file == NULL) {
        key_file = getenv(SL_VAULT_KEY_FILE_ENV);
    }
    rc = sl_vault_load_key(SL_VAULT_KEY_ENV, key_file, v->key);
    if (rc == 0) {
        v->has_key = true;
    } else if (rc != SL_ENOTFOUND) {
        sl_vault_close(v);
        return rc;
    }
    *out = v;
    return 0;
}


void
sl_vault_close(sl_vault_t *v)
{
    if (v == NULL) {
        return;
    }
    sl_crypto_wipe(v->key, sizeof(v->key));
    free(v);
}


bool
sl_vault_has_key(const sl_vault_t *v)
{
    return v->has_key;
}


bool
sl_vault_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > SL_VAULT_NAME_MAX) {
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


static int
vault_need_key(const sl_vault_t *v)
{
    if (!v->has_key) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0,
               "the vault needs its master key: set %s (64 hex digits or base64 of 32 bytes) or "
               "%s (a 0600 file holding it)",
               SL_VAULT_KEY_ENV, SL_VAULT_KEY_FILE_ENV);
        return SL_ESECRET;
    }
    return 0;
}


/*
 * Checks key against the key-check record. With create, a vault without
 * one (no secret was ever stored) gets one sealed under key.
 */
static int
vault_check(sl_txn_t *t, const uint8_t key[SL_CRYPTO_KEY_LEN], bool create)
{
    uint8_t plain[sizeof(VAULT_CHECK_TEXT)];
    sl_str_t rec;
    size_t n;
    int rc;

    rc = sl_db_get(t, SL_DBI_META, VAULT_CHECK_KEY, sizeof(VAULT_CHECK_KEY) - 1, &rec);
    if (rc == SL_ENOTFOUND) {
        rc = sl_db_count(t, SL_DBI_SECRETS, &n);
        if (rc != 0) {
            return rc;
        }
        if (n > 0) {
            sl_log(&sl_log_main, SL_LOG_ERR, 0,
                   "the vault holds %zu secret(s) but its key-check record is missing", n);
            return SL_ESTORE;
        }
        return create ? vault_put_check(t, key) : 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (rec.len != VAULT_CHECK_LEN || (uint8_t) rec.p[0] != VAULT_VERSION) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "the vault's key-check record is damaged");
        return SL_ESTORE;
    }
    rc = sl_crypto_open(key, VAULT_CHECK_KEY, sizeof(VAULT_CHECK_KEY) - 1, rec.p + 1, rec.len - 1,
                        plain);
    if (rc != 0 || memcmp(plain, VAULT_CHECK_TEXT, sizeof(VAULT_CHECK_TEXT) - 1) != 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "the master key does not match the vault");
        return SL_EAUTH;
    }
    return 0;
}


static int
vault_put_check(sl_txn_t *t, const uint8_t key[SL_CRYPTO_KEY_LEN])
{
    uint8_t rec[VAULT_CHECK_LEN];
    int rc;

    rec[0] = VAULT_VERSION;
    rc = sl_crypto_seal(key, VAULT_CHECK_KEY, sizeof(VAULT_CHECK_KEY) - 1, VAULT_CHECK_TEXT,
                        sizeof(VAULT_CHECK_TEXT) - 1, rec + 1);
    if (rc != 0) {
        return rc;
    }
    return sl_db_put(t, SL_DBI_META, VAULT_CHECK_KEY, sizeof(VAULT_CHECK_KEY) - 1, rec, sizeof(rec),
                     false);
}


static void
vault_header(uint8_t *hdr, int64_t created, int64_t updated)
{
    uint64_t v[2] = { (uint64_t) created, (uint64_t) updated };

    hdr[0] = VAULT_VERSION;
    hdr[1] = 0;
    hdr[2] = 0;
    hdr[3] = 0;
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < 8; i++) {
            hdr[4 + 8 * f + i] = (uint8_t) (v[f] >> (56 - 8 * i));
        }
    }
}


/* Checks a record's framing and reads its dates. Returns 0 or SL_ESTORE (not logged). */
static int
vault_parse(sl_str_t rec, int64_t *created, int64_t *updated)
{
    const uint8_t *b = (const uint8_t *) rec.p;

    if (rec.len < VAULT_HDR_LEN + SL_CRYPTO_SEAL_OVERHEAD + 1
        || rec.len > VAULT_HDR_LEN + SL_CRYPTO_SEAL_OVERHEAD + SL_VAULT_VALUE_MAX
        || b[0] != VAULT_VERSION || b[1] != 0 || b[2] != 0 || b[3] != 0) {
        return SL_ESTORE;
    }
    *created = vault_get_i64(b + 4);
    *updated = vault_get_i64(b + 12);
    return 0;
}


static int
vault_ad(const uint8_t *hdr, const char *name, uint8_t *ad, size_t *adlen)
{
    size_t len = strlen(name);

    if (len > SL_VAULT_NAME_MAX) {
        return -EINVAL;
    }
    memcpy(ad, hdr, VAULT_HDR_LEN);
    memcpy(ad + VAULT_HDR_LEN, name, len);
    *adlen = VAULT_HDR_LEN + len;
    return 0;
}


/* Opens a parsed record into out (rec.len - header - overhead bytes). Returns 0 or SL_EAUTH. */
static int
vault_open_rec(const uint8_t key[SL_CRYPTO_KEY_LEN], const char *name, sl_str_t rec, uint8_t *out)
{
    uint8_t ad[VAULT_HDR_LEN + SL_VAULT_NAME_MAX];
    size_t adlen;

    if (vault_ad((const uint8_t *) rec.p, name, ad, &adlen) != 0) {
        return SL_EAUTH;
    }
    return sl_crypto_open(key, ad, adlen, rec.p + VAULT_HDR_LEN, rec.len - VAULT_HDR_LEN, out);
}


/* Writes a whole record (header + sealed value) to out. */
static int
vault_seal_rec(const uint8_t key[SL_CRYPTO_KEY_LEN], const char *name, int64_t created,
               int64_t updated, const void *pt, size_t len, uint8_t *out)
{
    uint8_t ad[VAULT_HDR_LEN + SL_VAULT_NAME_MAX];
    size_t adlen;
    int rc;

    vault_header(out, created, updated);
    rc = vault_ad(out, name, ad, &adlen);
    if (rc != 0) {
        return rc;
    }
    return sl_crypto_seal(key, ad, adlen, pt, len, out + VAULT_HDR_LEN);
}


int
sl_vault_set(sl_vault_t *v, const char *name, const void *value, size_t len, int64_t now)
{
    vault_set_arg_t a = { v, name, value, len, now, NULL };
    int rc;

    if (!sl_vault_name_valid(name) || len == 0 || len > SL_VAULT_VALUE_MAX) {
        return -EINVAL;
    }
    rc = vault_need_key(v);
    if (rc != 0) {
        return rc;
    }
    a.buf = malloc(VAULT_HDR_LEN + len + SL_CRYPTO_SEAL_OVERHEAD);
    if (a.buf == NULL) {
        return -ENOMEM;
    }
    rc = sl_db_write(v->db, vault_set_txn, &a);
    free(a.buf);
    return rc;
}


static int
vault_set_txn(sl_txn_t *t, void *arg)
{
    vault_set_arg_t *a = arg;
    int64_t created = a->now, updated;
    sl_str_t old;
    int rc;

    rc = vault_check(t, a->v->key, true);
    if (rc != 0) {
        return rc;
    }
    rc = sl_db_get(t, SL_DBI_SECRETS, a->name, strlen(a->name), &old);
    if (rc == 0) {
        if (vault_parse(old, &created, &updated) != 0) {
            created = a->now;
        }
    } else if (rc != SL_ENOTFOUND) {
        return rc;
    }
    rc = vault_seal_rec(a->v->key, a->name, created, a->now, a->value, a->len, a->buf);
    if (rc != 0) {
        return rc;
    }
    return sl_db_put(t, SL_DBI_SECRETS, a->name, strlen(a->name), a->buf,
                     VAULT_HDR_LEN + a->len + SL_CRYPTO_SEAL_OVERHEAD, false);
}


int
sl_vault_get(sl_vault_t *v, sl_txn_t *t, const char *name, sl_pool_t *pool, sl_str_t *value)
{
    vault_wipe_t *w;
    sl_str_t rec, sname = { name, strlen(name) };
    int64_t created, updated;
    size_t len;
    uint8_t *out;
    int rc;

    value->p = NULL;
    value->len = 0;
    if (!sl_vault_name_valid(name)) {
        return SL_ENOTFOUND;
    }
    rc = vault_need_key(v);
    if (rc != 0) {
        return rc;
    }
    rc = sl_db_get(t, SL_DBI_SECRETS, name, sname.len, &rec);
    if (rc != 0) {
        return rc;
    }
    rc = vault_check(t, v->key, false);
    if (rc != 0) {
        return rc;
    }
    if (vault_parse(rec, &created, &updated) != 0) {
        vault_corrupt(sname, "malformed record");
        return SL_ESTORE;
    }
    len = rec.len - VAULT_HDR_LEN - SL_CRYPTO_SEAL_OVERHEAD;
    out = sl_palloc(pool, len + 1);
    w = sl_palloc(pool, sizeof(*w));
    w->p = out;
    w->len = len + 1;
    sl_pool_on_destroy(pool, vault_wipe_cb, w);
    if (vault_open_rec(v->key, name, rec, out) != 0) {
        vault_corrupt(sname, "it does not decrypt: damaged, or copied from another name");
        return SL_ESTORE;
    }
    out[len] = '\0';
    value->p = (const char *) out;
    value->len = len;
    return 0;
}


static void
vault_wipe_cb(void *arg)
{
    vault_wipe_t *w = arg;

    sl_crypto_wipe(w->p, w->len);
}


int
sl_vault_list(sl_vault_t *v, sl_txn_t *t, int (*cb)(void *arg, const sl_vault_entry_t *e),
              void *arg)
{
    vault_list_arg_t a = { cb, arg, false };
    int rc;

    (void) v;
    rc = sl_db_scan(t, SL_DBI_SECRETS, NULL, 0, vault_list_cb, &a);
    if (rc == 0 && a.corrupt) {
        return SL_ESTORE;
    }
    return rc;
}


static int
vault_list_cb(void *arg, sl_str_t key, sl_str_t val)
{
    vault_list_arg_t *a = arg;
    char name[SL_VAULT_NAME_MAX + 1];
    sl_vault_entry_t e;

    if (key.len == 0 || key.len > SL_VAULT_NAME_MAX) {
        vault_corrupt(key, "bad name");
        a->corrupt = true;
        return 0;
    }
    memcpy(name, key.p, key.len);
    name[key.len] = '\0';
    if (!sl_vault_name_valid(name) || vault_parse(val, &e.created, &e.updated) != 0) {
        vault_corrupt(key, "malformed record");
        a->corrupt = true;
        return 0;
    }
    e.name = name;
    return a->cb(a->arg, &e);
}


int
sl_vault_rm(sl_vault_t *v, const char *name)
{
    if (!sl_vault_name_valid(name)) {
        return SL_ENOTFOUND;
    }
    return sl_db_write(v->db, vault_rm_txn, (void *) name);
}


static int
vault_rm_txn(sl_txn_t *t, void *arg)
{
    const char *name = arg;

    return sl_db_del(t, SL_DBI_SECRETS, name, strlen(name));
}


int
sl_vault_rotate(sl_vault_t *v, const uint8_t new_key[SL_CRYPTO_KEY_LEN], size_t *count)
{
    vault_rotate_arg_t a = { v, new_key, NULL, NULL, 0, 0 };
    int rc;

    rc = vault_need_key(v);
    if (rc != 0) {
        return rc;
    }
    a.pool = sl_pool_create(0);
    if (a.pool == NULL) {
        return -ENOMEM;
    }
    rc = sl_db_write(v->db, vault_rotate_txn, &a);
    if (rc == 0) {
        memcpy(v->key, new_key, SL_CRYPTO_KEY_LEN);
        if (count != NULL) {
            *count = a.n;
        }
    }
    sl_pool_destroy(a.pool);
    return rc;
}


static int
vault_collect_cb(void *arg, sl_str_t key, sl_str_t val)
{
    vault_rotate_arg_t *a = arg;
    const char **names;

    (void) val;
    if (a->n == a->cap) {
        a->cap = a->cap == 0 ? 16 : a->cap * 2;
        names = sl_palloc(a->pool, a->cap * sizeof(*names));
        if (a->n > 0) {
            memcpy(names, a->names, a->n * sizeof(*names));
        }
        a->names = names;
    }
    a->names[a->n++] = sl_pstrndup(a->pool, key.p, key.len);
    return 0;
}


/*
 * Collects the names first, then rewrites each record: no cursor walks a
 * database this transaction is changing.
 */
static int
vault_rotate_txn(sl_txn_t *t, void *arg)
{
    vault_rotate_arg_t *a = arg;
    uint8_t *plain = NULL, *sealed = NULL;
    int64_t created, updated;
    sl_str_t rec, sname;
    size_t len;
    int rc;

    a->n = 0;
    rc = vault_check(t, a->v->key, false);
    if (rc != 0) {
        return rc;
    }
    rc = sl_db_scan(t, SL_DBI_SECRETS, NULL, 0, vault_collect_cb, a);
    if (rc != 0) {
        return rc;
    }
    plain = malloc(SL_VAULT_VALUE_MAX);
    sealed = malloc(VAULT_HDR_LEN + SL_VAULT_VALUE_MAX + SL_CRYPTO_SEAL_OVERHEAD);
    if (plain == NULL || sealed == NULL) {
        rc = -ENOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < a->n; i++) {
        sname.p = a->names[i];
        sname.len = strlen(a->names[i]);
        rc = sl_db_get(t, SL_DBI_SECRETS, sname.p, sname.len, &rec);
        if (rc != 0) {
            goto out_free;
        }
        if (!sl_vault_name_valid(a->names[i]) || vault_parse(rec, &created, &updated) != 0) {
            vault_corrupt(sname, "malformed record; nothing was rotated");
            rc = SL_ESTORE;
            goto out_free;
        }
        len = rec.len - VAULT_HDR_LEN - SL_CRYPTO_SEAL_OVERHEAD;
        if (vault_open_rec(a->v->key, a->names[i], rec, plain) != 0) {
            vault_corrupt(sname, "it does not decrypt; nothing was rotated");
            rc = SL_ESTORE;
            goto out_free;
        }
        rc = vault_seal_rec(a->new_key, a->names[i], created, updated, plain, len, sealed);
        sl_crypto_wipe(plain, len);
        if (rc != 0) {
            goto out_free;
        }
        rc = sl_db_put(t, SL_DBI_SECRETS, sname.p, sname.len, sealed,
                       VAULT_HDR_LEN + len + SL_CRYPTO_SEAL_OVERHEAD, false);
        if (rc != 0) {
            goto out_free;
        }
    }
    rc = vault_put_check(t, a->new_key);

out_free:
    if (plain != NULL) {
        sl_crypto_wipe(plain, SL_VAULT_VALUE_MAX);
    }
    free(plain);
    free(sealed);
    return rc;
}


static void
vault_corrupt(sl_str_t name, const char *why)
{
    char safe[SL_VAULT_NAME_MAX + 1];
    size_t n = name.len < SL_VAULT_NAME_MAX ? name.len : SL_VAULT_NAME_MAX;

    for (size_t i = 0; i < n; i++) {
        safe[i] = name.p[i] > ' ' && name.p[i] < 0x7f ? name.p[i] : '?';
    }
    safe[n] = '\0';
    sl_log(&sl_log_main, SL_LOG_ERR, 0, "secret \"%s\" cannot be used: %s", safe, why);
}


static int64_t
vault_get_i64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return (int64_t) v;
}
