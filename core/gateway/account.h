/*
 * Request accounting: who the client is (a key stored in LMDB, or one of
 * auth.static_keys), what it may do (revoked, expired, model allow-list,
 * budgets of the key and its team), and what the request cost (priced from
 * the generation's pricing table, written to the usage ledger together with
 * the budget settlement, group-committed with the other rows of the same
 * loop turn: core/gateway/commit.h). With ledger.enabled false nothing is
 * recorded and no budget is enforced.
 *
 * Worker context. Every LMDB transaction here is short and ends before the
 * function returns; a recorded row waits in the worker's commit queue.
 */
#ifndef SL_CORE_GATEWAY_ACCOUNT_H
#define SL_CORE_GATEWAY_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/conf/conf.h"
#include "core/http/http_server.h"
#include "core/gateway/commit.h"
#include "core/gateway/intent.h"
#include "core/gateway/pricing.h"
#include "providers/provider.h"
#include "storage/db.h"
#include "storage/ledger.h"
#include "storage/spend.h"

/* One request's account; lives in the request pool (zero it before use). */
typedef struct sl_acct {
    const char *key_id;        /* "" for a static key */
    const char *key_name;      /* "static" for a static key */
    const char *team;          /* "" when none */
    const char *const *models; /* allow-list globs of a stored key */
    size_t nmodels;
    uint64_t rpm; /* the key's limits, 0: none */
    uint64_t tpm;
    sl_budget_ref_t refs[2]; /* key and team budgets that exist */
    size_t nrefs;
    uint64_t reserved; /* nano-USD held for this request */
    time_t reserved_at;
    uint64_t remaining; /* smallest remaining budget after the reservation, nano-USD */
    bool authed;
    bool recorded;            /* the ledger row is written (or none will be: storage full) */
    const sl_http_req_t *req; /* the request (id, arrival, body), set by sl_acct_auth */
    sl_intent_t *intent;      /* admission to ledger row (core/gateway/settle.h); NULL: none */
    const char *key_guard;    /* the key's guardrail policy (core/gateway/guard.h), or NULL */
    const char *team_guard;   /* its team's, or NULL */
    /* the record phase: the row waits in the commit queue, then on_recorded(on_recorded_arg) */
    sl_commit_item_t commit;
    sl_ledger_row_t *row;
    time_t record_at;
    void (*on_recorded)(void *arg);
    void *on_recorded_arg;
} sl_acct_t;

/*
 * Authenticates r from "Authorization: Bearer KEY" or "x-api-key: KEY".
 * Returns 0 and fills a, or SL_EAUTH with *why set to a message for the
 * client (never containing the key), or SL_ESTORE.
 */
int sl_acct_auth(sl_db_t *db, sl_http_req_t *r, sl_acct_t *a, const char **why);

/* True when the key may use model (the name the client asked for). */
bool sl_acct_allows(const sl_acct_t *a, const char *model);

/* Which limits sl_acct_limit applies. */
#define SL_ACCT_LIMIT_REQUESTS 0x1u /* rpm: counts the request */
#define SL_ACCT_LIMIT_TOKENS   0x2u /* tpm: the tokens of this minute so far */
#define SL_ACCT_LIMIT_ALL      0x3u

/*
 * Applies the key's rpm and/or tpm limits (limits: SL_ACCT_LIMIT_* bits;
 * core/gateway/limits.h). A request the response cache may answer is
 * held to rpm first and to tpm only once the lookup missed. Returns 0, or
 * SL_EDENIED with *retry_after_ms (when a request would be admitted) and
 * *why set: the client gets 429 rate_limit_exceeded with Retry-After (whole
 * seconds, rounded up) and retry-after-ms.
 */
int sl_acct_limit(const sl_acct_t *a, sl_pool_t *pool, unsigned limits, uint64_t *retry_after_ms,
                  const char **why);

/*
 * Admits the request to the ledger, once, after auth, routing and the
 * allow-list and before the first attempt (core/gateway/settle.h: the full-storage
 * policy and the request's intent). Returns 0, or SL_EFULL (storage full
 * and ledger.on_full refuse: the client gets 503 storage_full, and the
 * request no ledger row).
 */
int sl_acct_admit(sl_db_t *db, const sl_conf_t *conf, sl_acct_t *a, const sl_call_t *call);

/*
 * For a request that spends nothing (a cache hit): SL_EDENIED with *why set
 * when one of the account's budgets is already spent in its period (the
 * client gets 429 insufficient_quota, as any request of that key would), 0
 * otherwise (also on a read error: a hit costs nothing). On the loop: one
 * read transaction.
 */
int sl_acct_spent_out(sl_db_t *db, const sl_conf_t *conf, const sl_acct_t *a, sl_pool_t *pool,
                      const char **why);

/*
 * Reserves the estimated cost of a call to target against every budget of
 * the account (sl_acct_estimate). Called again for a fallback target, it
 * reserves only what that target may cost beyond what is already held
 * (nothing for a cheaper one), so the settlement releases one reservation.
 * Returns 0, SL_ENOTFOUND with *why set when the target has no price and
 * `unpriced: reject` is set (the target must not be called: the next one
 * may, else the client gets 403 model_not_priced), SL_EFULL (the storage
 * filled up just now and ledger.on_full is refuse: 503 storage_full),
 * SL_EDENIED with *why set (the client gets 429 insufficient_quota), or
 * SL_ESTORE. No reservation without budgets.
 */
int sl_acct_reserve(sl_db_t *db, const sl_conf_t *conf, sl_acct_t *a, const sl_target_t *target,
                    size_t body_len, uint64_t max_tokens, sl_pool_t *pool, const char **why);

/*
 * What a request reserves at price (NULL: unpriced, 0): the prompt (about
 * 4 bytes a token) and the answer at list price, the answer being
 * max_tokens but no more than the model's max_output; without max_tokens,
 * max_output, or budgets.default_output_tokens when the price data do not
 * know it. Capped by budgets.max_reservation: a fixed amount, or a share of
 * the smallest budget in a's refs. Any context.
 */
uint64_t sl_acct_estimate(const sl_conf_t *conf, const sl_acct_t *a, const sl_price_t *price,
                          size_t body_len, uint64_t max_tokens);

/*
 * True when `unpriced: reject` refuses a call to target: the pricing table
 * has no price for it (kind echo is built in and free: never refused).
 */
bool sl_acct_unpriced(const sl_conf_t *conf, const sl_target_t *target);

/*
 * Prices the usage (flags the row unpriced when the model has no price) and
 * queues the row on commit: its write transaction settles the reservation
 * and appends the row (and puts it in the request's intent), together with
 * the other rows of this loop turn. Then recorded(arg) runs, once, on the
 * loop: the response's last bytes go out from there, after the commit. A
 * failed write is logged and the row waits in the intent (settle.h); the
 * response still goes out. When there is nothing to record (not
 * authenticated, recorded already, no ledger) recorded runs before this
 * returns, and without a queue (commit NULL) the row is written here: the
 * caller touches nothing of the request after the call. row carries
 * everything but cost, flags for pricing, and pid/seq; it must live until
 * recorded runs. Called once per request.
 */
void sl_acct_record(sl_db_t *db, sl_commit_t *commit, const sl_conf_t *conf, sl_acct_t *a,
                    const sl_target_t *target, const sl_usage_t *usage, sl_ledger_row_t *row,
                    void (*recorded)(void *arg), void *arg);

#endif
