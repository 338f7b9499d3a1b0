/*
 * The spend counters of budgets, on storage/db.h.
 *
 * Spend (SL_DBI_SPEND): per key and per team, one record per budget period
 * bucket ("k:<id>:<bucket>", "t:<team>:<bucket>"; bucket "YYYYMMDD" for a
 * day, "GGGGWww" for an ISO week (the ISO year: 2026W01 starts on Monday
 * 2025-12-29), "YYYYMM" for a month, "all" for a lifetime budget, all UTC) holding
 * `spent` and `reserved` in nano-USD. A request reserves an estimate before
 * it goes upstream and settles the actual cost afterwards, in the same
 * write transaction as its ledger row:
 *
 *     sl_db_write(db, fn, arg) with fn doing
 *         sl_ledger_append(t, &row);
 *         sl_spend_settle(t, refs, n, estimate, cost, reserved_at, now);
 *
 * so a row and the money it moved are committed together or not at all.
 *
 * Every function taking an sl_txn_t works inside the caller's transaction
 * (read or write as stated) and is repeatable, as sl_db_write requires.
 */
#ifndef SL_STORAGE_SPEND_H
#define SL_STORAGE_SPEND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "storage/db.h"

typedef enum sl_budget_kind {
    SL_BUDGET_KEY = 0,
    SL_BUDGET_TEAM,
} sl_budget_kind_e;

typedef enum sl_budget_period {
    SL_BUDGET_DAY = 0, /* UTC calendar day */
    SL_BUDGET_MONTH,   /* UTC calendar month */
    SL_BUDGET_TOTAL,   /* lifetime */
    SL_BUDGET_WEEK,    /* ISO 8601 week in UTC: Monday 00:00 to Sunday 24:00 */
} sl_budget_period_e;

/* The last valid sl_budget_period_e (records check against it). */
#define SL_BUDGET_PERIOD_MAX SL_BUDGET_WEEK

/*
 * One budget a request is subject to. Build refs only for budgets that
 * exist: a key or team record with budget 0 has none, and must not be
 * passed (here 0 means a limit of zero).
 */
typedef struct sl_budget_ref {
    sl_budget_kind_e kind;
    const char *id;       /* key id or team name */
    uint64_t budget_nusd; /* the limit per period; 0 refuses all priced requests */
    sl_budget_period_e period;
} sl_budget_ref_t;

typedef struct sl_spend {
    uint64_t spent;    /* settled cost, nano-USD */
    uint64_t reserved; /* estimates of requests in flight, nano-USD */
} sl_spend_t;

/* Which budget refused a reservation. */
typedef struct sl_spend_denial {
    size_t index;       /* into refs */
    uint64_t remaining; /* budget - spent - reserved, 0 when overspent */
} sl_spend_denial_t;

/*
 * Checks every ref against its bucket for now: when spent + reserved +
 * estimate > budget_nusd for any of them, nothing is written, *denial (may
 * be NULL) names the first such ref, and SL_EDENIED is returned. Otherwise
 * adds estimate to reserved in every ref's bucket and returns 0. Write
 * transaction. Returns 0, SL_EDENIED or SL_ESTORE.
 */
int sl_spend_reserve(sl_txn_t *t, const sl_budget_ref_t *refs, size_t n, uint64_t estimate,
                     time_t now, sl_spend_denial_t *denial);

/*
 * Ends a reservation: subtracts reserved from the bucket it was made in
 * (reserved_at; never below 0) and adds actual to spent in the bucket of
 * now, for every ref, so a request that straddles midnight is charged to
 * the day it finished. With reserved 0 it only records spend (requests
 * that reserved nothing). Never refuses: the money is already spent.
 * Write transaction. Returns 0 or SL_ESTORE.
 */
int sl_spend_settle(sl_txn_t *t, const sl_budget_ref_t *refs, size_t n, uint64_t reserved,
                    uint64_t actual, time_t reserved_at, time_t now);

/*
 * The counters of id's bucket for now ({0, 0} when nothing was recorded).
 * Read or write transaction. Returns 0 or SL_ESTORE.
 */
int sl_spend_get(sl_txn_t *t, sl_budget_kind_e kind, const char *id, sl_budget_period_e period,
                 time_t now, sl_spend_t *out);

/*
 * The current bucket of a budget as the CLI shows it: {period, spent_usd,
 * reserved_usd, remaining_usd (decimal strings), spent_nano_usd,
 * reserved_nano_usd}. Read or write transaction. Returns a new reference,
 * or NULL when the bucket cannot be read or memory runs out.
 */
json_t *sl_spend_json(sl_txn_t *t, sl_budget_kind_e kind, const char *id, uint64_t budget_nusd,
                      sl_budget_period_e period, time_t now);

/* budget - spent - reserved, 0 when nothing is left. */
uint64_t sl_spend_remaining(uint64_t budget_nusd, const sl_spend_t *s);

/*
 * Sets reserved to 0 in every spend record. Only when no request can be in
 * flight (the master at a cold start, before any worker): a worker killed
 * between reserve and settle leaves its reservation behind, which would
 * otherwise hold budget until its period ends ("all": forever). Write
 * transaction. Returns 0 or SL_ESTORE.
 */
int sl_spend_clear_reserved(sl_txn_t *t);

/* "day", "week", "month", "total". Returns 0 or SL_EPARSE. */
int sl_budget_period_parse(const char *s, sl_budget_period_e *out);

/* "day", "week", "month", "total". */
const char *sl_budget_period_name(sl_budget_period_e period);

/*
 * Parses a dollar amount exactly into nano-USD: digits, an optional '.'
 * and at most 9 decimals, an optional leading '$' ("12.50" ->
 * 12500000000). Returns 0 or SL_EPARSE (negative, junk, overflow, more
 * than 9 decimals). Any context.
 */
int sl_budget_parse_usd(const char *s, uint64_t *nusd);

/* "12.50", "0.000000001", "3.00": at least two decimals, no trailing zeros beyond. */
void sl_budget_format_usd(uint64_t nusd, char *buf, size_t len);

#endif
