/*
 * The vault: provider secrets (what `vault:NAME` references resolve to),
 * sealed with AES-256-GCM under a master key that never touches the disk
 * the vault is on.
 *
 * Master key: 32 bytes, written as 64 hex digits or as base64, taken from
 * the environment variable SLUICE_MASTER_KEY or else from a key file (the
 * caller's key_file, else $SLUICE_MASTER_KEY_FILE). A key file must be a
 * regular file owned by the user sluice runs as and readable by nobody
 * else (mode 0600 or 0400); it may also hold the 32 raw bytes.
 *
 * Each secret (SL_DBI_SECRETS: name -> record) is sealed with a fresh
 * 96-bit nonce, and its record header and name are the additional data, so
 * a sealed value copied under another name does not open. A key-check
 * record in SL_DBI_META (a fixed text sealed under the master key) tells a
 * wrong master key ("the master key does not match the vault") from a
 * damaged secret. Plaintexts are never logged and are wiped from every
 * buffer this module owns.
 */
#ifndef SL_STORAGE_VAULT_H
#define SL_STORAGE_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/crypto.h"
#include "core/base/pool.h"
#include "core/base/str.h"
#include "core/conf/conf.h"
#include "storage/db.h"

#define SL_VAULT_NAME_MAX  128
#define SL_VAULT_VALUE_MAX 65536

#define SL_VAULT_KEY_ENV      "SLUICE_MASTER_KEY"
#define SL_VAULT_KEY_FILE_ENV "SLUICE_MASTER_KEY_FILE"

typedef struct sl_vault sl_vault_t;

/* What sl_vault_list reports of a secret: never its value. */
typedef struct sl_vault_entry {
    const char *name; /* NUL-terminated, valid during the callback */
    int64_t created;  /* unix seconds */
    int64_t updated;
} sl_vault_entry_t;

/*
 * Reads a master key from the environment variable env (when not NULL and
 * set) or else from the file file (when not NULL). Returns 0 and key,
 * SL_ENOTFOUND when neither is given (not logged), or -EINVAL (malformed),
 * -EACCES (file too open or not ours) or -errno (file unreadable), logged
 * naming the variable or file, never the key. CLI or master context.
 */
int sl_vault_load_key(const char *env, const char *file, uint8_t key[SL_CRYPTO_KEY_LEN]);

/*
 * Opens the vault on db (borrowed; it must outlive the vault) with the
 * master key from SLUICE_MASTER_KEY, else key_file (NULL: use
 * $SLUICE_MASTER_KEY_FILE). No key is not an error here: sl_vault_set,
 * sl_vault_get and sl_vault_rotate then fail with SL_ESECRET, while
 * sl_vault_list and sl_vault_rm work. A key that is given but unusable is:
 * returns 0 and *out, or what sl_vault_load_key returned.
 */
int sl_vault_open(sl_db_t *db, const char *key_file, sl_vault_t **out);

/* Wipes the master key and frees the vault. NULL is a no-op. */
void sl_vault_close(sl_vault_t *v);

/* True when a master key was loaded. */
bool sl_vault_has_key(const sl_vault_t *v);

/* 1..128 of [A-Za-z0-9._-], starting with a letter or digit. */
bool sl_vault_name_valid(const char *name);

/*
 * Seals value (1..SL_VAULT_VALUE_MAX bytes, borrowed) under name, creating
 * or replacing it, in one write transaction; the first secret also writes
 * the key-check record. Returns 0, -EINVAL (name or size; not logged),
 * SL_ESECRET (no master key), SL_EAUTH (the master key does not match the
 * vault), -EIO or SL_ESTORE.
 */
int sl_vault_set(sl_vault_t *v, const char *name, const void *value, size_t len, int64_t now);

/*
 * Opens secret name inside transaction t. On success value points to a
 * NUL-terminated copy in pool, which is wiped when the pool is destroyed.
 * Returns 0, SL_ENOTFOUND, SL_ESECRET (no master key), SL_EAUTH (the master
 * key does not match the vault) or SL_ESTORE (the record is damaged or was
 * moved from another name). Read or write transaction.
 */
int sl_vault_get(sl_vault_t *v, sl_txn_t *t, const char *name, sl_pool_t *pool, sl_str_t *value);

/*
 * Calls cb for every secret in name order; cb returns 0 to go on, 1 to stop
 * or a negative code (returned). Records that do not decode are logged and
 * skipped, then SL_ESTORE is returned. Needs no master key.
 */
int sl_vault_list(sl_vault_t *v, sl_txn_t *t, int (*cb)(void *arg, const sl_vault_entry_t *e),
                  void *arg);

/* Deletes secret name. Returns 0, SL_ENOTFOUND or SL_ESTORE. Needs no master key. */
int sl_vault_rm(sl_vault_t *v, const char *name);

/*
 * Re-seals every secret and the key-check record under new_key in one
 * write transaction (all or nothing), then uses new_key from now on. The
 * count of secrets goes to *count when not NULL. Returns 0, SL_ESECRET,
 * SL_EAUTH (the current key does not match), SL_ESTORE (a secret does not
 * open: nothing is changed) or -EIO.
 */
int sl_vault_rotate(sl_vault_t *v, const uint8_t new_key[SL_CRYPTO_KEY_LEN], size_t *count);

/*
 * Resolves the vault: references of conf (core/conf/conf.h) (provider keys, static keys, the
 * admin key). With keep, the plaintexts are stored in conf's pool (a
 * worker's private copy, after fork); without, each is opened and wiped at
 * once, which only proves it resolves (the master before a generation, and
 * `sluice check`). db is the caller's open environment, or NULL to open
 * conf->storage_path briefly. Returns 0 or SL_ESECRET with
 * "file:line:col: why" in err. No-op without vault references.
 */
int sl_vault_resolve_conf(sl_conf_t *conf, sl_db_t *db, bool keep, char *err, size_t errlen);

#endif
