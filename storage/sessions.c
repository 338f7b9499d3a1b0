/*
 * Dashboard logins: one-time links and sessions (storage/sessions.h).
 */
#include "storage/sessions.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"

#define SESSION_VERSION 1
#define SESSION_KEY_LEN (1 + SL_CRYPTO_SHA256_LEN)
#define SESSION_REC_LEN (1 + 8 + 8 + SL_SESSION_TOKEN_LEN)
#define SESSION_LINK    'l'
#define SESSION_SESSION 's'

typedef struct session_op {
    const char *link; /* redeem: the link's token */
    size_t link_len;
    int64_t now;
    int64_t ttl;
    char token[SL_SESSION_TOKEN_LEN + 1];
    char csrf[SL_SESSION_TOKEN_LEN + 1];
    bool expired; /* redeem: the link had expired (its delete commits, no session) */
} session_op_t;

typedef struct session_prune {
    sl_txn_t *t;
    int64_t now;
    size_t n;
} session_prune_t;

static int session_token(char out[SL_SESSION_TOKEN_LEN + 1]);
static void session_key(char kind, const char *token, size_t len, uint8_t key[SESSION_KEY_LEN]);
static void session_encode(uint8_t rec[SESSION_REC_LEN], int64_t created, int64_t expires,
                           const char *csrf);
static int session_decode(sl_str_t v, sl_session_t *out);
static int session_prune(sl_txn_t *t, int64_t now);
static int session_prune_cb(void *arg, sl_str_t key, sl_str_t val);
static int session_link_txn(sl_txn_t *t, void *arg);
static int session_open_txn(sl_txn_t *t, void *arg);
static int session_tokens(session_op_t *op);
static int session_delete_txn(sl_txn_t *t, void *arg);


static int
session_token(char out[SL_SESSION_TOKEN_LEN + 1])
{
    uint8_t rnd[32];
    int rc = sl_crypto_random(rnd, sizeof(rnd));

    if (rc < 0) {
        return rc;
    }
    rc = sl_crypto_base62(rnd, sizeof(rnd), out, SL_SESSION_TOKEN_LEN + 1);
    sl_crypto_wipe(rnd, sizeof(rnd));
    return rc < 0 ? rc : 0;
}


static void
session_key(char kind, const char *token, size_t len, uint8_t key[SESSION_KEY_LEN])
{
    key[0] = (uint8_t) kind;
    sl_crypto_sha256(token, len, key + 1);
}


static void
session_encode(uint8_t rec[SESSION_REC_LEN], int64_t created, int64_t expires, const char *csrf)
{
    rec[0] = SESSION_VERSION;
    for (int i = 0; i < 8; i++) {
        rec[1 + i] = (uint8_t) ((uint64_t) created >> (56 - 8 * i));
        rec[9 + i] = (uint8_t) ((uint64_t) expires >> (56 - 8 * i));
    }
    memset(rec + 17, 0, SL_SESSION_TOKEN_LEN);
    if (csrf != NULL) {
        memcpy(rec + 17, csrf, SL_SESSION_TOKEN_LEN);
    }
}


/* Returns 0 or SL_ECORRUPT (a record this version cannot read). */
static int
session_decode(sl_str_t v, sl_session_t *out)
{
    const uint8_t *p = (const uint8_t *) v.p;
    uint64_t created = 0, expires = 0;

    if (v.len != SESSION_REC_LEN || p[0] != SESSION_VERSION) {
        return SL_ECORRUPT;
    }
    for (int i = 0; i < 8; i++) {
        created = created << 8 | p[1 + i];
        expires = expires << 8 | p[9 + i];
    }
    out->created = (int64_t) created;
    out->expires = (int64_t) expires;
    memcpy(out->csrf, p + 17, SL_SESSION_TOKEN_LEN);
    out->csrf[SL_SESSION_TOKEN_LEN] = '\0';
    return 0;
}


/* Removes up to SL_SESSION_PRUNE_MAX expired (or unreadable) records. Write transaction. */
static int
session_prune(sl_txn_t *t, int64_t now)
{
    session_prune_t pr = { t, now, 0 };

    return sl_db_scan(t, SL_DBI_SESSIONS, NULL, 0, session_prune_cb, &pr);
}


static int
session_prune_cb(void *arg, sl_str_t key, sl_str_t val)
{
    session_prune_t *pr = arg;
    sl_session_t s;
    int rc;

    if (session_decode(val, &s) == 0 && s.expires > pr->now) {
        return 0;
    }
    rc = sl_db_del(pr->t, SL_DBI_SESSIONS, key.p, key.len);
    if (rc < 0) {
        return rc;
    }
    return ++pr->n >= SL_SESSION_PRUNE_MAX ? 1 : 0;
}


static int
session_link_txn(sl_txn_t *t, void *arg)
{
    session_op_t *op = arg;
    uint8_t key[SESSION_KEY_LEN], rec[SESSION_REC_LEN];
    int rc = session_prune(t, op->now);

    if (rc < 0) {
        return rc;
    }
    session_key(SESSION_LINK, op->token, SL_SESSION_TOKEN_LEN, key);
    session_encode(rec, op->now, op->now + op->ttl, NULL);
    return sl_db_put(t, SL_DBI_SESSIONS, key, sizeof(key), rec, sizeof(rec), false);
}


int
sl_sessions_link_create(sl_db_t *db, int64_t now, int64_t ttl, char token[SL_SESSION_TOKEN_LEN + 1])
{
    session_op_t op;
    int rc;

    memset(&op, 0, sizeof(op));
    op.now = now;
    op.ttl = ttl;
    rc = session_token(op.token);
    if (rc == 0) {
        rc = sl_db_write(db, session_link_txn, &op);
    }
    if (rc == 0) {
        memcpy(token, op.token, sizeof(op.token));
    }
    sl_crypto_wipe(&op, sizeof(op));
    return rc;
}


/* Consumes the link (when op->link is set) and stores the new session. Repeatable. */
static int
session_open_txn(sl_txn_t *t, void *arg)
{
    session_op_t *op = arg;
    uint8_t key[SESSION_KEY_LEN], rec[SESSION_REC_LEN];
    sl_session_t link;
    sl_str_t v;
    int rc;

    op->expired = false;
    if (op->link != NULL) {
        session_key(SESSION_LINK, op->link, op->link_len, key);
        rc = sl_db_get(t, SL_DBI_SESSIONS, key, sizeof(key), &v);
        if (rc == SL_ENOTFOUND) {
            return SL_EAUTH;
        }
        if (rc < 0) {
            return rc;
        }
        rc = session_decode(v, &link);
        if (sl_db_del(t, SL_DBI_SESSIONS, key, sizeof(key)) < 0) {
            return SL_ESTORE;
        }
        if (rc < 0 || link.expires <= op->now) {
            /* an expired link is gone for good: commit the delete, refuse the login */
            op->expired = true;
            return 0;
        }
    }
    rc = session_prune(t, op->now);
    if (rc < 0) {
        return rc;
    }
    session_key(SESSION_SESSION, op->token, SL_SESSION_TOKEN_LEN, key);
    session_encode(rec, op->now, op->now + op->ttl, op->csrf);
    return sl_db_put(t, SL_DBI_SESSIONS, key, sizeof(key), rec, sizeof(rec), false);
}


static int
session_tokens(session_op_t *op)
{
    int rc = session_token(op->token);

    return rc < 0 ? rc : session_token(op->csrf);
}


int
sl_sessions_redeem(sl_db_t *db, const char *link, size_t len, int64_t now, int64_t ttl,
                   char token_out[SL_SESSION_TOKEN_LEN + 1], sl_session_t *out)
{
    session_op_t op;
    int rc;

    if (len != SL_SESSION_TOKEN_LEN) {
        return SL_EAUTH;
    }
    memset(&op, 0, sizeof(op));
    op.link = link;
    op.link_len = len;
    op.now = now;
    op.ttl = ttl;
    rc = session_tokens(&op);
    if (rc == 0) {
        rc = sl_db_write(db, session_open_txn, &op);
        rc = rc == 0 && op.expired ? SL_EAUTH : rc;
    }
    if (rc == 0) {
        memcpy(token_out, op.token, sizeof(op.token));
        out->created = now;
        out->expires = now + ttl;
        memcpy(out->csrf, op.csrf, sizeof(op.csrf));
    }
    sl_crypto_wipe(&op, sizeof(op));
    return rc;
}


int
sl_sessions_create(sl_db_t *db, int64_t now, int64_t ttl, char token_out[SL_SESSION_TOKEN_LEN + 1],
                   sl_session_t *out)
{
    return sl_sessions_redeem(db, NULL, SL_SESSION_TOKEN_LEN, now, ttl, token_out, out);
}


int
sl_sessions_get(sl_db_t *db, const char *token, size_t len, int64_t now, sl_session_t *out)
{
    uint8_t key[SESSION_KEY_LEN];
    sl_txn_t *t;
    sl_str_t v;
    int rc;

    if (len != SL_SESSION_TOKEN_LEN) {
        return SL_EAUTH;
    }
    session_key(SESSION_SESSION, token, len, key);
    rc = sl_db_read(db, &t);
    if (rc < 0) {
        return rc;
    }
    rc = sl_db_get(t, SL_DBI_SESSIONS, key, sizeof(key), &v);
    if (rc == 0) {
        rc = session_decode(v, out) == 0 && out->expires > now ? 0 : SL_EAUTH;
    } else if (rc == SL_ENOTFOUND) {
        rc = SL_EAUTH;
    }
    sl_db_abort(t);
    return rc;
}


static int
session_delete_txn(sl_txn_t *t, void *arg)
{
    return sl_db_del(t, SL_DBI_SESSIONS, arg, SESSION_KEY_LEN);
}


int
sl_sessions_delete(sl_db_t *db, const char *token, size_t len)
{
    uint8_t key[SESSION_KEY_LEN];

    session_key(SESSION_SESSION, token, len, key);
    return sl_db_write(db, session_delete_txn, key);
}
