/*
 * Request accounting on the storage layer: key lookup, budget reservation
 * and the per-request ledger write.
 */
#include "core/gateway/account.h"

#include <string.h>

#include "core/base/clock.h"
#include "core/base/errno.h"
#include "core/gateway/limits.h"
#include "core/base/log.h"
#include "core/admin/metrics.h"
#include "core/gateway/pricing.h"
#include "core/gateway/settle.h"
#include "core/base/str.h"
#include "storage/keys.h"
#include "storage/spend.h"
#include "storage/teams.h"

typedef struct acct_reserve_arg {
    sl_acct_t *a;
    uint64_t estimate;
    time_t now;
    sl_spend_denial_t denial;
} acct_reserve_arg_t;

static int acct_reserve_txn(sl_txn_t *t, void *arg);
static int acct_record_txn(sl_txn_t *t, sl_commit_item_t *it);
static int acct_record_one(sl_txn_t *t, void *arg);
static void acct_recorded(sl_commit_item_t *it, int rc);
static sl_acct_t *acct_of(sl_commit_item_t *it);
static void acct_add_tokens(const sl_acct_t *a, uint64_t tokens, time_t at);


int
sl_acct_auth(sl_db_t *db, sl_http_req_t *r, sl_acct_t *a, const char **why)
{
    const sl_conf_t *conf = r->conf;
    sl_str_t key = sl_http_req_credential(r);
    bool stored;
    bool ok = false;
    sl_txn_t *t;
    sl_key_t *k;
    sl_team_t *team;
    time_t now;
    int rc;

    a->req = r;
    if (key.len == 0) {
        *why = "You didn't provide an API key. Provide it in an Authorization header using "
               "Bearer auth (Authorization: Bearer YOUR_KEY) or in an x-api-key header.";
        return SL_EAUTH;
    }

    /*
     * static keys: every one is compared, whatever matched (constant time),
     * but a stored key's text (SL_KEY_PREFIX, which is public) is compared
     * only with static keys that have the prefix too: no other can match.
     */
    stored = key.len >= sizeof(SL_KEY_PREFIX) - 1
             && memcmp(key.p, SL_KEY_PREFIX, sizeof(SL_KEY_PREFIX) - 1) == 0;
    for (size_t i = 0; i < conf->nstatic_keys; i++) {
        const sl_secret_t *s = &conf->static_keys[i];

        if (stored
            && (s->len < sizeof(SL_KEY_PREFIX) - 1
                || memcmp(s->value, SL_KEY_PREFIX, sizeof(SL_KEY_PREFIX) - 1) != 0)) {
            continue;
        }
        ok |= sl_str_ct_eq(key.p, key.len, s->value, s->len);
    }
    if (ok) {
        a->key_id = "";
        a->key_name = "static";
        a->team = "";
        a->authed = true;
        return 0;
    }
    *why = "Incorrect API key provided.";
    if (db == NULL || !stored) {
        return SL_EAUTH;
    }

    rc = sl_db_read(db, &t);
    if (rc < 0) {
        return SL_ESTORE;
    }
    rc = sl_keys_auth(t, key.p, key.len, r->pool, &k);
    if (rc < 0) {
        sl_db_abort(t);
        return rc == SL_ESTORE ? SL_ESTORE : SL_EAUTH;
    }
    now = time(NULL);
    if (k->revoked != 0) {
        sl_db_abort(t);
        *why = "This API key has been revoked.";
        return SL_EAUTH;
    }
    if (k->expires != 0 && k->expires <= now) {
        sl_db_abort(t);
        *why = "This API key has expired.";
        return SL_EAUTH;
    }
    a->key_id = k->id;
    a->key_name = k->name;
    a->team = k->team != NULL ? k->team : "";
    a->models = k->models;
    a->nmodels = k->nmodels;
    a->rpm = k->rpm;
    a->tpm = k->tpm;
    if (k->budget != 0) {
        a->refs[a->nrefs++] = (sl_budget_ref_t){ SL_BUDGET_KEY, k->id, k->budget, k->period };
    }
    a->key_guard = k->guard;
    if (k->team != NULL && sl_teams_get(t, k->team, r->pool, &team) == 0) {
        if (team->budget != 0) {
            a->refs[a->nrefs++] =
                (sl_budget_ref_t){ SL_BUDGET_TEAM, team->name, team->budget, team->period };
        }
        a->team_guard = team->guard;
    }
    sl_db_abort(t);
    a->authed = true;
    return 0;
}


bool
sl_acct_allows(const sl_acct_t *a, const char *model)
{
    sl_key_t k;

    if (a->nmodels == 0) {
        return true;
    }
    memset(&k, 0, sizeof(k));
    k.models = a->models;
    k.nmodels = a->nmodels;
    return sl_key_allows_model(&k, model);
}


int
sl_acct_limit(const sl_acct_t *a, sl_pool_t *pool, unsigned limits, uint64_t *retry_after_ms,
              const char **why)
{
    uint64_t rpm = (limits & SL_ACCT_LIMIT_REQUESTS) ? a->rpm : 0;
    uint64_t tpm = (limits & SL_ACCT_LIMIT_TOKENS) ? a->tpm : 0;
    const char *which = NULL;

    if (rpm == 0 && tpm == 0) {
        return 0;
    }
    if (sl_limits_admit(a->key_id, rpm, tpm, (int64_t) sl_clock_ms(), retry_after_ms, &which)) {
        return 0;
    }
    *why = sl_psprintf(pool,
                       "Rate limit reached for key \"%s\": %llu %s per minute. Try again in "
                       "%llu.%03llu seconds.",
                       a->key_name, (unsigned long long) (which[0] == 't' ? a->tpm : a->rpm), which,
                       (unsigned long long) (*retry_after_ms / 1000),
                       (unsigned long long) (*retry_after_ms % 1000));
    return SL_EDENIED;
}


static int
acct_reserve_txn(sl_txn_t *t, void *arg)
{
    acct_reserve_arg_t *ra = arg;
    sl_acct_t *a = ra->a;
    int rc = sl_spend_reserve(t, a->refs, a->nrefs, ra->estimate, ra->now, &ra->denial);

    if (rc < 0) {
        return rc;
    }
    sl_settle_reserved(a, (a->reserved_at != 0 ? a->reserved : 0) + ra->estimate, ra->now);
    a->remaining = UINT64_MAX;
    for (size_t i = 0; i < a->nrefs; i++) {
        sl_spend_t s;
        uint64_t left;

        if (sl_spend_get(t, a->refs[i].kind, a->refs[i].id, a->refs[i].period, ra->now, &s) < 0) {
            continue;
        }
        left = sl_spend_remaining(a->refs[i].budget_nusd, &s);
        if (left < a->remaining) {
            a->remaining = left;
        }
    }
    return 0;
}


int
sl_acct_admit(sl_db_t *db, const sl_conf_t *conf, sl_acct_t *a, const sl_call_t *call)
{
    if (db == NULL || !conf->ledger_enabled) {
        return 0;
    }
    return sl_settle_admit(conf, a, call);
}


bool
sl_acct_unpriced(const sl_conf_t *conf, const sl_target_t *target)
{
    const sl_provider_conf_t *p = target->provider;

    return conf->unpriced_reject && strcmp(p->kind, "echo") != 0
           && sl_pricing_find(conf->pricing, p->name, p->kind, target->model) == NULL;
}


uint64_t
sl_acct_estimate(const sl_conf_t *conf, const sl_acct_t *a, const sl_price_t *price,
                 size_t body_len, uint64_t max_tokens)
{
    uint64_t completion = max_tokens, estimate, cap = conf->budget_max_reservation, smallest;

    if (price == NULL) {
        return 0;
    }
    if (price->max_output != 0 && (completion == 0 || completion > price->max_output)) {
        completion = price->max_output; /* the model cannot answer more */
    }
    if (completion == 0) {
        completion = conf->budget_default_output;
    }
    estimate = sl_price_estimate(price, body_len, completion);
    if (conf->budget_max_reservation_permille != 0 && a->nrefs > 0) {
        smallest = UINT64_MAX;
        for (size_t i = 0; i < a->nrefs; i++) {
            if (a->refs[i].budget_nusd < smallest) {
                smallest = a->refs[i].budget_nusd;
            }
        }
        /* smallest x permille / 1000, without overflow */
        cap = smallest / 1000 * conf->budget_max_reservation_permille
              + smallest % 1000 * conf->budget_max_reservation_permille / 1000;
    }
    if ((conf->budget_max_reservation != 0 || conf->budget_max_reservation_permille != 0)
        && estimate > cap) {
        estimate = cap;
    }
    return estimate;
}


int
sl_acct_spent_out(sl_db_t *db, const sl_conf_t *conf, const sl_acct_t *a, sl_pool_t *pool,
                  const char **why)
{
    sl_txn_t *t;
    int64_t now = time(NULL);
    int rc = 0;

    if (db == NULL || !conf->ledger_enabled || a->nrefs == 0 || sl_db_read(db, &t) < 0) {
        return 0;
    }
    for (size_t i = 0; i < a->nrefs && rc == 0; i++) {
        const sl_budget_ref_t *ref = &a->refs[i];
        sl_spend_t s;
        char budget[32];

        if (sl_spend_get(t, ref->kind, ref->id, ref->period, now, &s) < 0
            || s.spent < ref->budget_nusd) {
            continue;
        }
        *why = sl_psprintf(pool,
                           "You exceeded your current quota: the %s budget of %s USD per %s "
                           "for %s \"%s\" is spent.",
                           ref->kind == SL_BUDGET_KEY ? "key" : "team",
                           sl_pricing_format_usd(ref->budget_nusd, budget, sizeof(budget)),
                           sl_budget_period_name(ref->period),
                           ref->kind == SL_BUDGET_KEY ? "key" : "team",
                           ref->kind == SL_BUDGET_KEY ? a->key_name : ref->id);
        rc = SL_EDENIED;
    }
    sl_db_abort(t);
    return rc;
}


int
sl_acct_reserve(sl_db_t *db, const sl_conf_t *conf, sl_acct_t *a, const sl_target_t *target,
                size_t body_len, uint64_t max_tokens, sl_pool_t *pool, const char **why)
{
    acct_reserve_arg_t ra;
    const sl_provider_conf_t *p = target->provider;
    uint64_t estimate;
    int rc;

    if (sl_acct_unpriced(conf, target)) {
        *why = sl_psprintf(pool,
                           "The model `%s` of provider \"%s\" has no price in the gateway's "
                           "pricing table, and the gateway does not send requests it cannot "
                           "price (unpriced: reject).",
                           target->model, p->name);
        return SL_ENOTFOUND;
    }
    if (db == NULL || !conf->ledger_enabled) {
        return 0;
    }
    if (a->nrefs == 0 || a->recorded) {
        return 0; /* no budget, or no row for this request: nothing to hold */
    }
    estimate =
        sl_acct_estimate(conf, a, sl_pricing_find(conf->pricing, p->name, p->kind, target->model),
                         body_len, max_tokens);
    if (a->reserved_at != 0 && estimate <= a->reserved) {
        return 0; /* a fallback target that costs no more than what is held */
    }
    memset(&ra, 0, sizeof(ra));
    ra.a = a;
    ra.now = a->reserved_at != 0 ? a->reserved_at : time(NULL);
    /* only the difference: the first target's reservation is still held */
    ra.estimate = estimate - (a->reserved_at != 0 ? a->reserved : 0);
    rc = sl_db_write(db, acct_reserve_txn, &ra);
    if (rc < 0) {
        /* the intent keeps what was held before (nothing for a first reservation) */
        sl_settle_reserved(a, a->reserved_at != 0 ? a->reserved : 0, a->reserved_at);
    }
    if (rc == SL_EDENIED) {
        const sl_budget_ref_t *ref = &a->refs[ra.denial.index];

        sl_metric_add(SL_METRIC_BUDGET_DENIED, 1);
        char left[32];
        char budget[32];
        *why = sl_psprintf(pool,
                           "You exceeded your current quota: the %s budget of %s USD per %s "
                           "for %s \"%s\" has %s USD left, less than this request may cost.",
                           ref->kind == SL_BUDGET_KEY ? "key" : "team",
                           sl_pricing_format_usd(ref->budget_nusd, budget, sizeof(budget)),
                           sl_budget_period_name(ref->period),
                           ref->kind == SL_BUDGET_KEY ? "key" : "team",
                           ref->kind == SL_BUDGET_KEY ? a->key_name : ref->id,
                           sl_pricing_format_usd(ra.denial.remaining, left, sizeof(left)));
        if (a->reserved_at == 0) {
            a->remaining = ra.denial.remaining;
        }
        return SL_EDENIED;
    }
    if (rc == SL_EFULL) {
        /* filled up just now: refuse, or serve with nothing reserved */
        return conf->ledger_on_full == SL_ON_FULL_REFUSE ? SL_EFULL : 0;
    }
    if (rc < 0) {
        return SL_ESTORE;
    }
    a->reserved = estimate;
    a->reserved_at = ra.now;
    return 0;
}


static sl_acct_t *
acct_of(sl_commit_item_t *it)
{
    return (sl_acct_t *) (void *) ((char *) it - offsetof(sl_acct_t, commit));
}


/* Inside the batch's write transaction: the settlement, the row, the intent. Repeatable. */
static int
acct_record_txn(sl_txn_t *t, sl_commit_item_t *it)
{
    sl_acct_t *a = acct_of(it);
    int rc;

    if (a->nrefs > 0) {
        rc = sl_spend_settle(t, a->refs, a->nrefs, a->reserved, a->row->cost_nusd,
                             a->reserved_at != 0 ? a->reserved_at : a->record_at, a->record_at);
        if (rc < 0) {
            return rc;
        }
    }
    return sl_settle_append(t, a, a->row);
}


static int
acct_record_one(sl_txn_t *t, void *arg)
{
    return acct_record_txn(t, arg);
}


/* After the commit, on the loop: the intent and the limits, then the caller. */
static void
acct_recorded(sl_commit_item_t *it, int rc)
{
    sl_acct_t *a = acct_of(it);
    const sl_ledger_row_t *row = a->row;

    sl_settle_recorded(a, row, rc);
    if (rc == 0) {
        acct_add_tokens(a, row->prompt_tokens + row->completion_tokens, a->record_at);
    }
    a->on_recorded(a->on_recorded_arg);
}


/* A finished request's tokens, for the key's tpm (none: nothing to count). */
static void
acct_add_tokens(const sl_acct_t *a, uint64_t tokens, time_t at)
{
    if (a->tpm != 0) {
        sl_limits_add_tokens(a->key_id, tokens, (int64_t) at * 1000);
    }
}


void
sl_acct_record(sl_db_t *db, sl_commit_t *commit, const sl_conf_t *conf, sl_acct_t *a,
               const sl_target_t *target, const sl_usage_t *usage, sl_ledger_row_t *row,
               void (*recorded)(void *arg), void *arg)
{
    uint64_t t0;
    int rc;

    if (db == NULL || a->recorded || !a->authed || !conf->ledger_enabled) {
        if (a->authed && a->row == NULL) {
            /*
             * No row for this request (the ledger is off): its tokens count
             * against the key's tpm all the same. a->row marks it counted.
             */
            a->recorded = true;
            a->row = row;
            acct_add_tokens(a, usage->prompt_tokens + usage->completion_tokens, time(NULL));
        }
        recorded(arg);
        return;
    }
    a->recorded = true;
    row->key_id = a->key_id;
    row->key_name = a->key_name;
    row->team = a->team;
    row->prompt_tokens = usage->prompt_tokens;
    row->completion_tokens = usage->completion_tokens;
    row->cached_tokens = usage->cached_tokens;
    row->cache_write_tokens = usage->cache_write_tokens;
    row->cache_write_1h_tokens = usage->cache_write_1h_tokens;
    row->reasoning_tokens = usage->reasoning_tokens;
    if (usage->estimated) {
        row->flags |= SL_LEDGER_ESTIMATED;
    }
    row->cost_nusd = 0;
    if (target != NULL && (usage->prompt_tokens != 0 || usage->completion_tokens != 0)) {
        const sl_provider_conf_t *p = target->provider;

        rc = conf->pricing != NULL ? sl_pricing_cost(conf->pricing, p->name, p->kind, target->model,
                                                     usage, &row->cost_nusd)
                                   : SL_ENOTFOUND;
        if (rc < 0) {
            row->cost_nusd = 0;
            row->flags |= SL_LEDGER_UNPRICED;
            sl_metric_add(SL_METRIC_UNPRICED, 1);
        }
    }
    a->row = row;
    a->record_at = time(NULL);
    a->on_recorded = recorded;
    a->on_recorded_arg = arg;
    a->commit.txn = acct_record_txn;
    a->commit.done = acct_recorded;
    if (commit != NULL) {
        sl_commit_push(commit, &a->commit);
        return;
    }
    t0 = uv_hrtime();
    rc = sl_db_write(db, acct_record_one, &a->commit);
    sl_metrics_ledger_write((uv_hrtime() - t0) / 1000);
    acct_recorded(&a->commit, rc);
}
