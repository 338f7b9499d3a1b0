/*
 * Alerts: what an operator must hear about without watching the dashboard
 * (alerts: in the configuration).
 *
 *  - budget: a key's or a team's spend in its current period reached one of
 *    alerts.budget (80% and 100% by default); checked after each request's
 *    ledger row, from the settled spend;
 *  - breaker: a target's circuit breaker opened (each worker looks at the
 *    shared breaker state every second);
 *  - model_down: every target of a model failed one request (the plan was
 *    exhausted with a 5xx or 429 for the client);
 *  - error_rate: the share of a model's requests answered 5xx over
 *    alerts.error_rate.window reached its threshold, with at least
 *    min_requests requests in the window.
 *
 * Each alert is raised once per episode, across every worker: episodes are
 * claimed in the shared segment with compare-and-swap. A budget episode
 * lasts for the budget's period (the next period may alert again), a
 * breaker's until it closes, a model's until one of its requests succeeds,
 * an error rate's until the rate falls below the threshold.
 *
 * A raised alert goes into a ring in the shared segment (GET /admin/alerts,
 * shown on the dashboard) and, when alerts.webhook is set, is posted as
 * JSON that Slack-compatible receivers accept: {"text": "...", "alert":
 * {kind, severity, subject, time, ...fields}}. The worker that raised it
 * posts it from its own queue with its own HTTP client (core/http/upstream.h)
 * after the request finished: a slow or dead receiver never delays a
 * request. A failed post is retried alerts.retries times, waiting
 * alerts.backoff, doubled each time; the queue holds SL_ALERTS_QUEUE
 * alerts, and a worker that exits drops what it had not delivered (logged).
 * The webhook URL is a secret reference: it is never logged.
 */
#ifndef SL_CORE_ADMIN_ALERTS_H
#define SL_CORE_ADMIN_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/conf/conf.h"
#include "storage/db.h"
#include "storage/ledger.h"
#include "storage/spend.h"

#define SL_ALERTS_RING     64 /* alerts the dashboard can show */
#define SL_ALERTS_EPISODES 1024
#define SL_ALERTS_MODELS   256 /* models whose error rate is measured */
#define SL_ALERTS_QUEUE    32  /* alerts a worker holds for delivery */

typedef struct sl_alerts sl_alerts_t;

/* Bytes the alert state takes in the shared segment. */
size_t sl_alerts_shm_size(void);

/* Carves it (master or single mode, before any fork). Returns 0 or -ENOMEM (logged). */
int sl_alerts_init(void);

/*
 * The worker's alerts for conf on loop: the breaker watch and, with
 * alerts.webhook, the delivery queue and its HTTP client (a vault: URL that
 * does not parse is logged and leaves the webhook off). db (may be NULL)
 * is read for budgets. The hooks below use the instance created last.
 * Returns NULL on failure (logged). Worker, after the DRBG is seeded.
 */
sl_alerts_t *sl_alerts_create(uv_loop_t *loop, const sl_conf_t *conf, sl_db_t *db);

/*
 * Stops watching and delivering: closes the timers, cancels a post in
 * flight, logs the alerts left undelivered. The handles close on the next
 * loop turns. NULL is a no-op.
 */
void sl_alerts_stop(sl_alerts_t *a);

/* Frees a stopped instance once its handles closed (after the loop ran). NULL is a no-op. */
void sl_alerts_destroy(sl_alerts_t *a);

/*
 * After a request's ledger row was written: the budget checks for the n
 * budgets in refs (key and team), the model's error window, and the end of
 * a model_down episode on success. row's strings are read during the call.
 * Worker; one short read transaction when refs are given.
 */
void sl_alerts_record(const sl_ledger_row_t *row, const sl_budget_ref_t *refs, size_t n);

/* Every target of model failed a request: the client got status after attempts attempts. */
void sl_alerts_model_failed(const char *model, int status, unsigned attempts);

/*
 * Begins the episode named key, unless it is under way: true exactly once
 * per episode across all processes. expires (unix ms, 0: never) ends it by
 * itself; now is the current unix ms. False also when the table is full
 * (logged once). Any process after sl_alerts_init.
 */
bool sl_alerts_episode_begin(const char *key, int64_t expires, int64_t now);

/* Ends the episode named key: the next sl_alerts_episode_begin of it is true again. */
void sl_alerts_episode_end(const char *key);

/*
 * The newest alerts, at most limit, newest first: [{id, time, time_ms,
 * kind, severity, subject, text, detail {...}, delivery ("none", "pending",
 * "retrying", "sent", "failed", "dropped"), tries}]. Returns a new
 * reference, or NULL when out of memory. Any process.
 */
json_t *sl_alerts_json(size_t limit);

/*
 * The body posted for an alert: {"text": text, "alert": {kind, severity,
 * subject, time (UTC), gateway (host name), ...detail}}. detail (may be NULL)
 * is borrowed. Returns a new reference, or NULL when out of memory.
 */
json_t *sl_alerts_payload(const char *kind, const char *severity, const char *subject,
                          const char *text, int64_t time_ms, const json_t *detail);

/*
 * The share of a budget spent (used: tenths of a percent) as an alert says
 * it: "85%", or "over 10x the budget" when one request cost far more than a
 * small budget (a share in the thousands reads as a bug). Returns buf.
 */
const char *sl__alerts_share_text(double used, char *buf, size_t size);

#endif
