/*
 * Client keys: the "sk-sluice-..." keys sluice issues, on storage/db.h.
 *
 * A key's text is "sk-sluice-" followed by the base62 of 32 random bytes
 * (43 characters). It is shown once, when it is created, and stored only
 * as its SHA-256: SL_DBI_KEY_HASH maps the hash to the key's id,
 * SL_DBI_KEY_NAME maps its unique name to the id, and SL_DBI_KEYS maps the
 * id ("key_" + 16 hex digits) to the record below. A key is never deleted:
 * revoking it keeps the record (and the usage that names it) and makes
 * sl_key_is_active() false.
 *
 * Records are a versioned binary layout with a checksum, decoded without
 * any allocation but the copies into the caller's pool; one that does not
 * decode is reported (SL_ESTORE, logged with the key's id) and never
 * trusted. Authentication is one read transaction with two gets and a
 * decode, cheap enough for every request, and it always reads the current
 * record, so a revoke is seen by the next request of every worker.
 *
 * Money is integer nano-USD (1 USD = 1,000,000,000).
 */
#ifndef SL_STORAGE_KEYS_H
#define SL_STORAGE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/base/pool.h"
#include "storage/db.h"
#include "storage/spend.h"

#define SL_KEY_PREFIX     "sk-sluice-"
#define SL_KEY_TEXT_LEN   53 /* prefix + 43 base62 characters */
#define SL_KEY_ID_LEN     20 /* "key_" + 16 hex digits */
#define SL_KEY_NAME_MAX   64
#define SL_KEY_MODELS_MAX 64  /* globs per key */
#define SL_KEY_GLOB_MAX   128 /* characters per glob */
#define SL_KEY_META_MAX   4096

/*
 * A key as stored. Strings are NUL-terminated and live in the pool the
 * reading call was given.
 */
typedef struct sl_key {
    const char *id;            /* "key_" + 16 hex digits */
    const char *name;          /* unique; [A-Za-z0-9._-], not starting with "key_" */
    const char *team;          /* NULL when none */
    int64_t created;           /* unix seconds */
    int64_t expires;           /* unix seconds; 0: never */
    int64_t revoked;           /* unix seconds; 0: active */
    const char *const *models; /* fnmatch globs; nmodels 0: every model */
    size_t nmodels;
    uint64_t rpm;              /* requests per minute; 0: unlimited */
    uint64_t tpm;              /* tokens per minute; 0: unlimited */
    uint64_t budget;           /* nano-USD per period; 0: none */
    sl_budget_period_e period; /* meaningful when budget is not 0 */
    const char *metadata;      /* compact JSON object text; NULL when none */
    char last4[5];             /* last four characters of the key text, for display */
    const char *guard;         /* guardrail policy (core/gateway/guard.h) or "none"; NULL: unset */
} sl_key_t;

/* Which fields of an sl_key_spec_t sl_keys_update() changes. */
typedef enum sl_key_field {
    SL_KEY_SET_NAME = 1u << 0,
    SL_KEY_SET_TEAM = 1u << 1,
    SL_KEY_SET_MODELS = 1u << 2,
    SL_KEY_SET_RPM = 1u << 3,
    SL_KEY_SET_TPM = 1u << 4,
    SL_KEY_SET_BUDGET = 1u << 5, /* the budget; its period only with SL_KEY_SET_PERIOD */
    SL_KEY_SET_EXPIRES = 1u << 6,
    SL_KEY_SET_METADATA = 1u << 7,
    SL_KEY_SET_PERIOD = 1u << 8, /* with SL_KEY_SET_BUDGET: the period; an update without it
                                    keeps the key's own (a key with no budget yet has none:
                                    -EINVAL) */
    SL_KEY_SET_GUARD = 1u << 9,
} sl_key_field_e;

/* What a new key looks like, or (with a field mask) what an update changes. Borrowed. */
typedef struct sl_key_spec {
    const char *name;
    const char *team; /* NULL or "": none */
    const char *const *models;
    size_t nmodels; /* 0: every model */
    uint64_t rpm;
    uint64_t tpm;
    uint64_t budget; /* nano-USD; 0: none */
    sl_budget_period_e period;
    int64_t expires;      /* unix seconds; 0: never */
    const char *metadata; /* JSON object text, NULL or "": none */
    const char *guard;    /* guardrail policy name, NULL or "": none set */
} sl_key_spec_t;

/*
 * Checks the fields of spec named by fields (all of them for a create):
 * name syntax, team and guard policy syntax, glob count and length, metadata is a JSON
 * object of at most SL_KEY_META_MAX bytes, expiry not in the past (relative
 * to now). On failure writes a one-line reason into err and returns
 * -EINVAL; logs nothing (it is the caller's input). Any context.
 */
int sl_key_spec_check(const sl_key_spec_t *spec, unsigned fields, int64_t now, char *err,
                      size_t errlen);

/*
 * Creates a key from spec in one write transaction. On success *key is the
 * stored record and *plaintext the key text (SL_KEY_TEXT_LEN characters,
 * NUL-terminated), both in pool: show the text once and let the pool (or
 * sl_crypto_wipe) get rid of it. Returns 0, -EINVAL (spec; nothing logged,
 * sl_key_spec_check says why), -EEXIST (a key with that name exists),
 * -EIO (no randomness) or SL_ESTORE. CLI or admin context.
 */
int sl_keys_create(sl_db_t *db, const sl_key_spec_t *spec, sl_pool_t *pool, sl_key_t **key,
                   char **plaintext);

/*
 * Looks up the key whose text is text[0..len). Returns 0 and *key (in
 * pool), SL_EAUTH when no key has that text (revoked and expired keys are
 * found: check sl_key_is_active), or SL_ESTORE (logged). Read or write
 * transaction; worker hot path: no logging on a miss.
 */
int sl_keys_auth(sl_txn_t *t, const char *text, size_t len, sl_pool_t *pool, sl_key_t **key);

/*
 * Forgets the calling thread's authentication cache (text -> id, see
 * storage/keys.c). sluice never needs it: the hash index it caches is
 * written once per key and never changed. For tests that rewrite the index
 * behind sl_keys_auth's back.
 */
void sl_keys_auth_forget(void);

/*
 * Finds a key by id ("key_...") or by name. Returns 0 and *key (in pool),
 * SL_ENOTFOUND or SL_ESTORE. Read or write transaction.
 */
int sl_keys_find(sl_txn_t *t, const char *id_or_name, sl_pool_t *pool, sl_key_t **key);

/*
 * Calls cb(arg, key) for every key in id order; key lives in pool. cb
 * returns 0 to go on, 1 to stop (sl_keys_list returns 0) or a negative code
 * (returned). A record that does not decode is logged and skipped, and
 * SL_ESTORE is returned after the others were listed. Read transaction.
 */
int sl_keys_list(sl_txn_t *t, sl_pool_t *pool, int (*cb)(void *arg, const sl_key_t *key),
                 void *arg);

/*
 * Revokes a key by id or name (revoked = now; a key revoked already keeps
 * its first revocation time). Returns 0, SL_ENOTFOUND or SL_ESTORE.
 */
int sl_keys_revoke(sl_db_t *db, const char *id_or_name, int64_t now);

/*
 * Changes the fields of a key named by fields (sl_key_field_e) to their
 * values in changes, in one write transaction. A new name must be unused.
 * Returns 0, -EINVAL (nothing logged), -EEXIST (name taken), SL_ENOTFOUND or
 * SL_ESTORE. When key is not NULL, *key is the updated record in pool.
 */
int sl_keys_update(sl_db_t *db, const char *id_or_name, const sl_key_spec_t *changes,
                   unsigned fields, sl_pool_t *pool, sl_key_t **key);

/* True when the key is neither revoked nor expired at now (unix seconds). */
bool sl_key_is_active(const sl_key_t *k, int64_t now);

/*
 * True when the key may use model: it has no globs, or one of them
 * matches model with fnmatch(3) (no flags: '*' also matches '/').
 */
bool sl_key_allows_model(const sl_key_t *k, const char *model);

/* "active", "revoked" or "expired" at now. */
const char *sl_key_status(const sl_key_t *k, int64_t now);

/*
 * An expiry as `sluice keys --expires` and the admin API take it: a
 * duration from now ("30d", "12h", "90m"; at least 1 s) or a UTC date
 * "YYYY-MM-DD", valid through that day (it expires at the next midnight
 * UTC). Returns 0 and *at (unix seconds), or SL_EPARSE. Any context.
 */
int sl_key_parse_expiry(const char *s, int64_t now, int64_t *at);

/*
 * The key as `sluice keys --json` and the admin API show it: id, name,
 * key (only when text is not NULL: the new key's text, at creation), team,
 * status at now, models, rpm, tpm, budget_usd (decimal string or null),
 * budget_nano_usd, period, created, expires, revoked (UTC times or null),
 * last4, metadata (object or null), guard (policy name or null). Never the
 * key's text otherwise.
 * Returns a new reference, or NULL when out of memory. Any context.
 */
json_t *sl_key_json(const sl_key_t *k, int64_t now, const char *text);

#endif
