/*
 * Dashboard logins, on storage/db.h (SL_DBI_SESSIONS), shared by every
 * worker and the CLI:
 *
 *  - one-time links: `sluice dashboard` stores a short-lived random token
 *    and prints it in a URL; the first worker that exchanges it deletes it
 *    and opens a session in the same write transaction, so a link works
 *    once, whichever worker gets it;
 *  - sessions: a random token the browser keeps in an HttpOnly cookie,
 *    with its expiry and the CSRF token bound to it.
 *
 * Only SHA-256 hashes of tokens are stored ("l" or "s" + 32 bytes): a copy
 * of the store holds no usable token. Records are a version byte, the
 * creation and expiry times (unix ms, big-endian) and, for sessions, the
 * CSRF token. Expired records are refused when read and removed whenever
 * a session or a link is created. Tokens are 43 characters of base62 (32
 * random bytes).
 */
#ifndef SL_STORAGE_SESSIONS_H
#define SL_STORAGE_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"

#define SL_SESSION_TOKEN_LEN 43  /* base62 of 32 random bytes */
#define SL_SESSION_PRUNE_MAX 256 /* expired records removed per creation */

typedef struct sl_session {
    int64_t created; /* unix ms */
    int64_t expires; /* unix ms */
    char csrf[SL_SESSION_TOKEN_LEN + 1];
} sl_session_t;

/*
 * Stores a new one-time login link valid until now + ttl (ms) and writes
 * its token into token (NUL-terminated). Returns 0, -EIO (no randomness)
 * or SL_ESTORE/SL_EFULL. CLI or worker context (a short write).
 */
int sl_sessions_link_create(sl_db_t *db, int64_t now, int64_t ttl,
                            char token[SL_SESSION_TOKEN_LEN + 1]);

/*
 * Exchanges the link token (len bytes) for a new session valid until now +
 * ttl (ms): the link is deleted and the session stored in one write
 * transaction. On success token_out holds the session's token and *out
 * the session. Returns 0, SL_EAUTH (no such link: unknown, used, or
 * expired), -EIO or SL_ESTORE. Worker context.
 */
int sl_sessions_redeem(sl_db_t *db, const char *link, size_t len, int64_t now, int64_t ttl,
                       char token_out[SL_SESSION_TOKEN_LEN + 1], sl_session_t *out);

/*
 * Opens a session without a link (a login with the admin key), as
 * sl_sessions_redeem does. Returns 0, -EIO or SL_ESTORE.
 */
int sl_sessions_create(sl_db_t *db, int64_t now, int64_t ttl,
                       char token_out[SL_SESSION_TOKEN_LEN + 1], sl_session_t *out);

/*
 * The session whose token is token[0..len), when it exists and has not
 * expired at now. Returns 0 and *out, SL_EAUTH, or SL_ESTORE. Read
 * transaction; cheap enough for every dashboard request.
 */
int sl_sessions_get(sl_db_t *db, const char *token, size_t len, int64_t now, sl_session_t *out);

/* Ends a session (logout). Returns 0, SL_ENOTFOUND or SL_ESTORE. */
int sl_sessions_delete(sl_db_t *db, const char *token, size_t len);

#endif
