/*
 * The live tail: the most recent requests of every worker, metadata (who,
 * which model and target, status, attempts, latency, tokens, cost, cache)
 * and, only when the operator set dashboard.tail_text, the start of the
 * last user message and of the answer (SL_TAIL_TEXT_MAX bytes each, kept
 * by the request in its pool while it runs). A ring of SL_TAIL_SIZE entries in
 * the shared segment (core/base/shm.h): each worker writes the rows it
 * records, the dashboard reads them through GET /admin/tail. Entries are
 * guarded by a sequence number (a seqlock): a reader that races a writer
 * skips that entry, nobody waits.
 */
#ifndef SL_CORE_ADMIN_TAIL_H
#define SL_CORE_ADMIN_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/base/pool.h"
#include "core/conf/conf.h"
#include "core/gateway/call.h"
#include "storage/ledger.h"

#define SL_TAIL_SIZE     256
#define SL_TAIL_TEXT_MAX 240 /* bytes of prompt and of answer an entry keeps */

/* A request's text for the tail (dashboard.tail_text); filled as it runs. */
typedef struct sl_tail_text {
    size_t nprompt; /* bytes used, SL_TAIL_TEXT_MAX once full */
    size_t nanswer; /* SL_TAIL_TEXT_MAX from the start when the answer is not kept */
    char prompt[SL_TAIL_TEXT_MAX + 1];
    char answer[SL_TAIL_TEXT_MAX + 1];
} sl_tail_text_t;

/* Bytes the ring takes in the shared segment. */
size_t sl_tail_shm_size(void);

/* Carves the ring (master or single mode, before any fork). Returns 0 or -ENOMEM (logged). */
int sl_tail_init(void);

/*
 * A request's text holder, in pool, with the start of the last user
 * message of call's (OpenAI-shaped) request, or of an embeddings input;
 * answers false: the answer is never kept (the guardrails rewrite it).
 * NULL when conf's dashboard.tail_text is off. Worker.
 */
sl_tail_text_t *sl_tail_text_new(const sl_conf_t *conf, sl_pool_t *pool, const sl_call_t *call,
                                 bool answers);

/* Adds the answer text of choice 0 among evs (a stream's) to t; t NULL: no-op. Worker. */
void sl_tail_text_events(sl_tail_text_t *t, sl_pool_t *pool, const sl_evs_t *evs);

/* Adds the text of ans's first choice to t; t NULL: no-op. Worker. */
void sl_tail_text_answer(sl_tail_text_t *t, sl_pool_t *pool, const sl_answer_t *ans);

/*
 * Adds the request whose ledger row is row (its strings are copied,
 * truncated to fixed widths), with text's when not NULL. No-op before
 * sl_tail_init. Worker; lock-free.
 */
void sl_tail_add(const sl_ledger_row_t *row, const sl_tail_text_t *text);

/*
 * The entries with a sequence number above after, oldest first, at most
 * limit of the newest, as a JSON array of objects {seq, time, request_id,
 * key, team, endpoint, model, provider, served_model, status, attempts,
 * latency_us, ttft_us (0: not a stream), prompt_tokens, completion_tokens,
 * cost_usd, cost_nusd, cache, stream, guard (the guardrail decisions,
 * "policy/rule/action;...", "" for none)}, plus prompt and answer for an entry
 * written with text; *last gets the newest sequence number written so far.
 * Returns a new reference, or NULL when out of memory. Any process.
 */
json_t *sl_tail_json(uint64_t after, size_t limit, uint64_t *last);

#endif
