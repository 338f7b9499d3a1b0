/*
 * Unit tests for storage/vault.c on a real environment: set/get/list/rm,
 * the master key from the environment and from files (modes, owners,
 * formats), a wrong master key caught by the key-check record, a vault
 * used without a key, the name bound as additional data (a value copied
 * under another name does not open), rotation (all or nothing), values
 * wiped with their pool, and plaintexts absent from data.mdb and the log.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/conf/conf.h"
#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "storage/db.h"
#include "storage/vault.h"


#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

typedef struct test_ctx {
    char dir[64];
    char path[128];
    char log[128];
    sl_db_t *db;
    sl_pool_t *pool;
} test_ctx_t;

typedef struct raw_put {
    const char *name;
    const void *val;
    size_t vlen;
} raw_put_t;

typedef struct list_acc {
    unsigned n;
    char names[8][32];
    int64_t created[8], updated[8];
} list_acc_t;

typedef struct wipe_probe {
    const char **value;
    size_t len;
    bool ran;
    bool zero;
} wipe_probe_t;

static int setup(void **state);
static int teardown(void **state);
static bool file_has(const char *path, const void *needle, size_t len);
static int raw_put_txn(sl_txn_t *t, void *arg);
static sl_str_t raw_get(test_ctx_t *c, const char *name);
static sl_vault_t *vault_with(test_ctx_t *c, const char *hex);
static int get(test_ctx_t *c, sl_vault_t *v, const char *name, sl_str_t *value);
static int list_cb(void *arg, const sl_vault_entry_t *e);
static void list_all(test_ctx_t *c, sl_vault_t *v, list_acc_t *acc, int want_rc);
static void write_file(const char *path, const void *data, size_t len, mode_t mode);
static void wipe_probe_cb(void *arg);
static void test_set_get_list_rm(void **state);
static void test_wrong_master_key(void **state);
static void test_no_master_key(void **state);
static void test_name_bound(void **state);
static void test_rotate(void **state);
static void test_rotate_all_or_nothing(void **state);
static void test_key_files(void **state);
static void test_bad_env_key(void **state);
static void test_wiped_with_pool(void **state);
static void test_plaintext_absent(void **state);
static void test_conf_credentials(void **state);


static int
setup(void **state)
{
    test_ctx_t *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    sl_test_tmpdir("/tmp/sl-vault-XXXXXX", c->dir, sizeof(c->dir), c->log, sizeof(c->log));
    snprintf(c->path, sizeof(c->path), "%s/db", c->dir);
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &c->db), 0);
    c->pool = sl_pool_create(0);
    assert_non_null(c->pool);
    setenv(SL_VAULT_KEY_ENV, KEY_A, 1);
    unsetenv(SL_VAULT_KEY_FILE_ENV);
    *state = c;
    return 0;
}


static int
teardown(void **state)
{
    test_ctx_t *c = *state;

    sl_db_close(c->db);
    sl_pool_destroy(c->pool);
    sl_log_open(NULL, SL_LOG_WARN);
    sl_test_rmtree(c->dir);
    free(c);
    unsetenv(SL_VAULT_KEY_ENV);
    unsetenv(SL_VAULT_KEY_FILE_ENV);
    return 0;
}


static bool
file_has(const char *path, const void *needle, size_t len)
{
    size_t n;
    char *text = sl_test_slurp(path, &n);
    bool found = memmem(text, n, needle, len) != NULL;

    free(text);
    return found;
}


static int
raw_put_txn(sl_txn_t *t, void *arg)
{
    raw_put_t *a = arg;

    return sl_db_put(t, SL_DBI_SECRETS, a->name, strlen(a->name), a->val, a->vlen, false);
}


static sl_str_t
raw_get(test_ctx_t *c, const char *name)
{
    sl_txn_t *t;
    sl_str_t v, copy;

    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_db_get(t, SL_DBI_SECRETS, name, strlen(name), &v), 0);
    copy.p = sl_pstrndup(c->pool, v.p, v.len);
    copy.len = v.len;
    sl_db_abort(t);
    return copy;
}


/* A vault whose master key is hex (NULL: none at all). */
static sl_vault_t *
vault_with(test_ctx_t *c, const char *hex)
{
    sl_vault_t *v;

    if (hex != NULL) {
        setenv(SL_VAULT_KEY_ENV, hex, 1);
    } else {
        unsetenv(SL_VAULT_KEY_ENV);
    }
    assert_rc(sl_vault_open(c->db, NULL, &v), 0);
    assert_int_equal(sl_vault_has_key(v), hex != NULL);
    return v;
}


static int
get(test_ctx_t *c, sl_vault_t *v, const char *name, sl_str_t *value)
{
    sl_txn_t *t;
    int rc;

    assert_rc(sl_db_read(c->db, &t), 0);
    rc = sl_vault_get(v, t, name, c->pool, value);
    sl_db_abort(t);
    return rc;
}


static int
list_cb(void *arg, const sl_vault_entry_t *e)
{
    list_acc_t *a = arg;

    if (a->n < 8) {
        snprintf(a->names[a->n], sizeof(a->names[0]), "%s", e->name);
        a->created[a->n] = e->created;
        a->updated[a->n] = e->updated;
    }
    a->n++;
    return 0;
}


static void
list_all(test_ctx_t *c, sl_vault_t *v, list_acc_t *acc, int want_rc)
{
    sl_txn_t *t;

    memset(acc, 0, sizeof(*acc));
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_vault_list(v, t, list_cb, acc), want_rc);
    sl_db_abort(t);
}


static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}


static void
wipe_probe_cb(void *arg)
{
    wipe_probe_t *p = arg;

    p->ran = true;
    p->zero = true;
    for (size_t i = 0; i < p->len; i++) {
        if ((*p->value)[i] != 0) {
            p->zero = false;
        }
    }
}


static void
test_set_get_list_rm(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v = vault_with(c, KEY_A);
    const char bin[] = "bin\0ary\n\xff";
    list_acc_t acc;
    sl_str_t val;

    assert_rc(sl_vault_set(v, "openai", "sk-proj-abc123", 14, 1000), 0);
    assert_rc(sl_vault_set(v, "anthropic", "sk-ant-xyz", 10, 1001), 0);
    assert_rc(sl_vault_set(v, "binary", bin, sizeof(bin) - 1, 1002), 0);

    assert_rc(get(c, v, "openai", &val), 0);
    assert_int_equal(val.len, 14);
    assert_memory_equal(val.p, "sk-proj-abc123", 14);
    assert_int_equal(val.p[14], '\0');
    assert_rc(get(c, v, "binary", &val), 0);
    assert_int_equal(val.len, sizeof(bin) - 1);
    assert_memory_equal(val.p, bin, sizeof(bin) - 1);
    assert_rc(get(c, v, "missing", &val), SL_ENOTFOUND);
    assert_null(val.p);
    assert_rc(get(c, v, "bad name", &val), SL_ENOTFOUND);

    /* replacing keeps the creation date */
    assert_rc(sl_vault_set(v, "openai", "sk-proj-new", 11, 2000), 0);
    assert_rc(get(c, v, "openai", &val), 0);
    assert_int_equal(val.len, 11);
    assert_memory_equal(val.p, "sk-proj-new", 11);

    list_all(c, v, &acc, 0);
    assert_int_equal(acc.n, 3);
    assert_string_equal(acc.names[0], "anthropic");
    assert_string_equal(acc.names[1], "binary");
    assert_string_equal(acc.names[2], "openai");
    assert_int_equal(acc.created[2], 1000);
    assert_int_equal(acc.updated[2], 2000);

    assert_rc(sl_vault_rm(v, "anthropic"), 0);
    assert_rc(sl_vault_rm(v, "anthropic"), SL_ENOTFOUND);
    assert_rc(get(c, v, "anthropic", &val), SL_ENOTFOUND);
    list_all(c, v, &acc, 0);
    assert_int_equal(acc.n, 2);

    /* refused input */
    assert_rc(sl_vault_set(v, "", "x", 1, 1), -EINVAL);
    assert_rc(sl_vault_set(v, "-x", "x", 1, 1), -EINVAL);
    assert_rc(sl_vault_set(v, "a/b", "x", 1, 1), -EINVAL);
    assert_rc(sl_vault_set(v, "empty", "", 0, 1), -EINVAL);
    assert_rc(sl_vault_set(v, "huge", bin, SL_VAULT_VALUE_MAX + 1, 1), -EINVAL);
    sl_vault_close(v);
    sl_vault_close(NULL);
}


static void
test_wrong_master_key(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *a = vault_with(c, KEY_A), *b;
    list_acc_t acc;
    sl_str_t val;

    assert_rc(sl_vault_set(a, "openai", "sk-secret-1", 11, 1), 0);
    b = vault_with(c, KEY_B);
    assert_rc(get(c, b, "openai", &val), SL_EAUTH);
    assert_null(val.p);
    assert_true(file_has(c->log, "the master key does not match the vault", 39));
    /* and nothing can be written with it */
    assert_rc(sl_vault_set(b, "other", "v", 1, 2), SL_EAUTH);
    assert_rc(sl_vault_set(b, "openai", "v", 1, 2), SL_EAUTH);
    /* listing needs no key */
    list_all(c, b, &acc, 0);
    assert_int_equal(acc.n, 1);
    assert_rc(get(c, a, "openai", &val), 0);
    assert_memory_equal(val.p, "sk-secret-1", 11);
    sl_vault_close(a);
    sl_vault_close(b);
}


static void
test_no_master_key(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *a = vault_with(c, KEY_A), *none;
    uint8_t newkey[SL_CRYPTO_KEY_LEN] = { 1 };
    list_acc_t acc;
    sl_str_t val;

    assert_rc(sl_vault_set(a, "s1", "value", 5, 1), 0);
    none = vault_with(c, NULL);
    assert_rc(get(c, none, "s1", &val), SL_ESECRET);
    assert_rc(sl_vault_set(none, "s2", "v", 1, 1), SL_ESECRET);
    assert_rc(sl_vault_rotate(none, newkey, NULL), SL_ESECRET);
    assert_true(file_has(c->log, "the vault needs its master key", 30));
    list_all(c, none, &acc, 0);
    assert_int_equal(acc.n, 1);
    assert_rc(sl_vault_rm(none, "s1"), 0);
    sl_vault_close(a);
    sl_vault_close(none);
}


static void
test_name_bound(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v = vault_with(c, KEY_A);
    raw_put_t put;
    sl_str_t rec, val;
    char *copy;

    assert_rc(sl_vault_set(v, "prod", "sk-prod-key", 11, 1), 0);
    assert_rc(sl_vault_set(v, "dev", "sk-dev-key", 10, 1), 0);

    /* the sealed bytes of "prod" stored under "dev" do not open */
    rec = raw_get(c, "prod");
    put.name = "dev";
    put.val = rec.p;
    put.vlen = rec.len;
    assert_rc(sl_db_write(c->db, raw_put_txn, &put), 0);
    assert_rc(get(c, v, "dev", &val), SL_ESTORE);
    assert_null(val.p);
    assert_true(file_has(c->log, "secret \"dev\" cannot be used", 27));

    /* nor does a record whose dates were changed */
    copy = sl_palloc(c->pool, rec.len);
    memcpy(copy, rec.p, rec.len);
    copy[19] ^= 1;
    put.name = "prod";
    put.val = copy;
    assert_rc(sl_db_write(c->db, raw_put_txn, &put), 0);
    assert_rc(get(c, v, "prod", &val), SL_ESTORE);

    /* nor garbage */
    put.val = "short";
    put.vlen = 5;
    assert_rc(sl_db_write(c->db, raw_put_txn, &put), 0);
    assert_rc(get(c, v, "prod", &val), SL_ESTORE);
    sl_vault_close(v);
}


static void
test_rotate(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v = vault_with(c, KEY_A), *old, *fresh;
    uint8_t kb[SL_CRYPTO_KEY_LEN];
    size_t n = 0;
    sl_str_t val, before;
    list_acc_t acc;

    assert_rc(sl_vault_set(v, "one", "value-one", 9, 10), 0);
    assert_rc(sl_vault_set(v, "two", "value-two", 9, 11), 0);
    assert_rc(sl_vault_set(v, "three", "value-three", 11, 12), 0);
    before = raw_get(c, "one");

    assert_rc(sl_crypto_parse_key(KEY_B, 64, kb), 0);
    assert_rc(sl_vault_rotate(v, kb, &n), 0);
    assert_int_equal(n, 3);
    /* re-sealed: new bytes, same dates */
    assert_memory_not_equal(raw_get(c, "one").p, before.p, before.len);
    list_all(c, v, &acc, 0);
    assert_int_equal(acc.created[0], 10);

    /* the same handle now uses the new key */
    assert_rc(get(c, v, "three", &val), 0);
    assert_memory_equal(val.p, "value-three", 11);

    old = vault_with(c, KEY_A);
    assert_rc(get(c, old, "one", &val), SL_EAUTH);
    fresh = vault_with(c, KEY_B);
    assert_rc(get(c, fresh, "one", &val), 0);
    assert_memory_equal(val.p, "value-one", 9);
    assert_rc(get(c, fresh, "two", &val), 0);
    assert_memory_equal(val.p, "value-two", 9);
    assert_rc(sl_vault_set(fresh, "four", "v4", 2, 13), 0);

    /* rotating with the wrong current key changes nothing */
    assert_rc(sl_vault_rotate(old, kb, &n), SL_EAUTH);
    sl_vault_close(v);
    sl_vault_close(old);
    sl_vault_close(fresh);
}


static void
test_rotate_all_or_nothing(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v = vault_with(c, KEY_A);
    uint8_t kb[SL_CRYPTO_KEY_LEN];
    raw_put_t put;
    sl_str_t val;

    assert_rc(sl_vault_set(v, "a-good", "good", 4, 1), 0);
    assert_rc(sl_vault_set(v, "b-bad", "bad", 3, 1), 0);
    assert_rc(sl_vault_set(v, "c-good", "good", 4, 1), 0);
    /* damage the middle one: b-bad gets a-good's sealed bytes */
    val = raw_get(c, "a-good");
    put.name = "b-bad";
    put.val = val.p;
    put.vlen = val.len;
    assert_rc(sl_db_write(c->db, raw_put_txn, &put), 0);

    assert_rc(sl_crypto_parse_key(KEY_B, 64, kb), 0);
    assert_rc(sl_vault_rotate(v, kb, NULL), SL_ESTORE);
    assert_true(file_has(c->log, "nothing was rotated", 19));
    /* the old key still opens everything that was fine */
    assert_rc(get(c, v, "a-good", &val), 0);
    assert_rc(get(c, v, "c-good", &val), 0);
    sl_vault_close(v);
}


static void
test_key_files(void **state)
{
    test_ctx_t *c = *state;
    uint8_t raw[SL_CRYPTO_KEY_LEN], key[SL_CRYPTO_KEY_LEN], want[SL_CRYPTO_KEY_LEN];
    char file[256], missing[256];
    sl_vault_t *v;
    sl_str_t val;

    unsetenv(SL_VAULT_KEY_ENV);
    snprintf(file, sizeof(file), "%s/master.key", c->dir);
    snprintf(missing, sizeof(missing), "%s/none.key", c->dir);

    /* hex with a newline, 0600, via $SLUICE_MASTER_KEY_FILE */
    write_file(file, KEY_A "\n", 65, 0600);
    setenv(SL_VAULT_KEY_FILE_ENV, file, 1);
    assert_rc(sl_vault_open(c->db, NULL, &v), 0);
    assert_true(sl_vault_has_key(v));
    assert_rc(sl_vault_set(v, "s", "from-file", 9, 1), 0);
    sl_vault_close(v);
    /* the same key from the environment opens it */
    v = vault_with(c, KEY_A);
    assert_rc(get(c, v, "s", &val), 0);
    sl_vault_close(v);
    unsetenv(SL_VAULT_KEY_ENV);

    /* too open: refused, saying why */
    assert_int_equal(chmod(file, 0644), 0);
    assert_rc(sl_vault_open(c->db, NULL, &v), -EACCES);
    assert_null(v);
    assert_true(file_has(c->log, "is accessible by group or others (mode 0644)", 44));
    assert_int_equal(chmod(file, 0640), 0);
    assert_rc(sl_vault_open(c->db, file, &v), -EACCES);
    assert_int_equal(chmod(file, 0400), 0);
    assert_rc(sl_vault_open(c->db, file, &v), 0);
    sl_vault_close(v);

    /* an explicit file wins over $SLUICE_MASTER_KEY_FILE; a missing one is an error */
    assert_rc(sl_vault_open(c->db, missing, &v), -ENOENT);
    assert_true(file_has(c->log, "cannot open master key file", 27));

    /* 32 raw bytes, and base64 */
    assert_rc(sl_crypto_parse_key(KEY_A, 64, raw), 0);
    unlink(file);
    write_file(file, raw, sizeof(raw), 0600);
    assert_rc(sl_vault_load_key(NULL, file, key), 0);
    assert_memory_equal(key, raw, sizeof(raw));
    unlink(file);
    write_file(file, "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=\n", 45, 0600);
    memset(key, 0, sizeof(key));
    assert_rc(sl_vault_load_key(NULL, file, key), 0);
    memcpy(want, raw, sizeof(want));
    assert_memory_equal(key, want, sizeof(want));

    /* junk */
    unlink(file);
    write_file(file, "not a key\n", 10, 0600);
    assert_rc(sl_vault_load_key(NULL, file, key), -EINVAL);
    assert_rc(sl_vault_load_key(NULL, NULL, key), SL_ENOTFOUND);
    assert_rc(sl_vault_load_key(NULL, c->dir, key), -EINVAL);
}


static void
test_bad_env_key(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v;

    setenv(SL_VAULT_KEY_ENV, "s3cr3t-but-too-short", 1);
    assert_rc(sl_vault_open(c->db, NULL, &v), -EINVAL);
    assert_null(v);
    assert_true(file_has(c->log, "SLUICE_MASTER_KEY must be 64 hex digits", 39));
    /* the value itself is never printed */
    assert_false(file_has(c->log, "s3cr3t", 6));
}


/* A value read into a pool is zeroed before the pool's memory is released. */
static void
test_wiped_with_pool(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v = vault_with(c, KEY_A);
    wipe_probe_t probe = { NULL, 0, false, false };
    const char *value = NULL;
    sl_pool_t *pool = sl_pool_create(0);
    sl_str_t val;
    sl_txn_t *t;

    assert_rc(sl_vault_set(v, "wipe-me", "sk-wipe-me-please", 17, 1), 0);
    /* hooks run last-added first: this one runs after the vault's wipe */
    probe.value = &value;
    sl_pool_on_destroy(pool, wipe_probe_cb, &probe);
    assert_rc(sl_db_read(c->db, &t), 0);
    assert_rc(sl_vault_get(v, t, "wipe-me", pool, &val), 0);
    sl_db_abort(t);
    value = val.p;
    probe.len = val.len;
    assert_memory_equal(value, "sk-wipe-me-please", 17);
    sl_pool_destroy(pool);
    assert_true(probe.ran);
    assert_true(probe.zero);
    sl_vault_close(v);
}


static void
test_plaintext_absent(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v = vault_with(c, KEY_A);
    static const char *values[] = { "sk-proj-PLAINTEXT-MARKER-0001", "sk-ant-PLAINTEXT-MARKER-0002",
                                    "AIzaPLAINTEXT-MARKER-0003" };
    uint8_t key[SL_CRYPTO_KEY_LEN];
    char file[256], name[16];
    sl_str_t val;

    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof(name), "s%d", i);
            assert_rc(sl_vault_set(v, name, values[i], strlen(values[i]), 1), 0);
            assert_rc(get(c, v, name, &val), 0);
        }
    }
    /* rotation writes only sealed bytes too */
    assert_rc(sl_crypto_parse_key(KEY_B, 64, key), 0);
    assert_rc(sl_vault_rotate(v, key, NULL), 0);
    sl_vault_close(v);
    sl_db_close(c->db);
    c->db = NULL;

    snprintf(file, sizeof(file), "%s/data.mdb", c->path);
    for (int i = 0; i < 3; i++) {
        assert_false(file_has(file, values[i], strlen(values[i])));
        assert_false(file_has(file, "PLAINTEXT-MARKER", 16));
        assert_false(file_has(c->log, "PLAINTEXT", 9));
    }
    /* nor the master keys, in any form */
    assert_rc(sl_crypto_parse_key(KEY_A, 64, key), 0);
    assert_false(file_has(file, key, sizeof(key)));
    assert_false(file_has(file, KEY_A, 64));
    assert_rc(sl_db_open(c->path, 1 << 20, 0, &c->db), 0);
}


/* sl_vault_resolve_conf resolves every credential of a provider, api_key keeps the first. */
static void
test_conf_credentials(void **state)
{
    test_ctx_t *c = *state;
    sl_vault_t *v = vault_with(c, KEY_A);
    char yaml[512], conf_path[160], err[512];
    const sl_provider_conf_t *p;
    sl_conf_t *conf = NULL;

    assert_rc(sl_vault_set(v, "k1", "sk-one", 6, 1), 0);
    assert_rc(sl_vault_set(v, "k2", "sk-two", 6, 1), 0);
    sl_vault_close(v);
    setenv("SL_TEST_CRED3", "sk-three", 1);
    snprintf(yaml, sizeof(yaml),
             "storage: {path: %s}\n"
             "providers:\n"
             "  p: {kind: openai, base_url: \"http://x\", api_key: [vault:k1, vault:k2, "
             "env:SL_TEST_CRED3]}\n",
             c->path);
    snprintf(conf_path, sizeof(conf_path), "%s/sluice.yaml", c->dir);
    write_file(conf_path, yaml, strlen(yaml), 0600);
    assert_rc(sl_conf_load(conf_path, &conf, err, sizeof(err)), 0);
    p = &conf->providers[0];
    assert_int_equal(p->napi_keys, 3);
    assert_null(p->api_keys[0].value);
    assert_null(p->api_keys[1].value);
    assert_string_equal(p->api_keys[2].value, "sk-three");

    /* the master's check proves they resolve and keeps nothing */
    assert_rc(sl_vault_resolve_conf(conf, c->db, false, err, sizeof(err)), 0);
    assert_null(p->api_keys[1].value);
    assert_rc(sl_vault_resolve_conf(conf, c->db, true, err, sizeof(err)), 0);
    assert_string_equal(p->api_keys[0].value, "sk-one");
    assert_string_equal(p->api_keys[1].value, "sk-two");
    assert_int_equal(p->api_keys[1].len, 6);
    assert_string_equal(p->api_keys[2].value, "sk-three");
    assert_string_equal(p->api_key.value, "sk-one");
    assert_string_equal(p->api_key.ref, "vault:k1");
    sl_conf_destroy(conf);

    /* a missing second credential is reported at its own position */
    snprintf(yaml, sizeof(yaml),
             "storage: {path: %s}\n"
             "providers:\n"
             "  p: {kind: openai, base_url: \"http://x\", api_key: [vault:k1, vault:nope]}\n",
             c->path);
    write_file(conf_path, yaml, strlen(yaml), 0600);
    assert_rc(sl_conf_load(conf_path, &conf, err, sizeof(err)), 0);
    assert_rc(sl_vault_resolve_conf(conf, c->db, true, err, sizeof(err)), SL_ESECRET);
    if (strstr(err, ":3:63: vault:nope: no such secret in the vault") == NULL) {
        fail_msg("%s", err);
    }
    sl_conf_destroy(conf);
    unsetenv("SL_TEST_CRED3");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_get_list_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_master_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_master_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_env_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wiped_with_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_credentials, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
