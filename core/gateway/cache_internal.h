/*
 * Module-private state of the response cache's driver phases: cache.c (the
 * exact lookup, replaying a hit, gathering and filling answers, the ledger
 * row's cache fields) and cache_semantic.c (the embedding call and the
 * semantic lookup). The driver reaches them through the sl__cache_*
 * functions in driver_internal.h.
 */
#ifndef SL_CORE_GATEWAY_CACHE_INTERNAL_H
#define SL_CORE_GATEWAY_CACHE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/gateway/cache.h"
#include "core/gateway/driver_internal.h"
#include "storage/cache.h"

#define SL_CACHE_INLINE_SCAN 512 /* vectors a semantic lookup compares on the loop */

/* The cache's view of one request, in its pool; rq->cache, NULL when the cache does not apply. */
struct sl_cache_req {
    const char *status;           /* "hit", "semantic", "miss" or "bypass" */
    const sl_model_conf_t *model; /* the alias asked for, NULL for provider/model */
    sl_cache_cc_t cc;
    bool lookup; /* the entry may be read (not no-cache) */
    bool store;  /* a complete answer is filled */
    bool keyed;  /* key (and scope) are computed */
    bool hit;    /* answered from the cache */
    bool semantic_hit;
    uint64_t ttl; /* ms */
    uint8_t key[SL_CACHE_KEY_LEN];
    const char *scope; /* "k:<id>", "t:<team>", "g" */

    /* the entry a hit replays */
    sl_cache_entry_t entry;
    int64_t age; /* seconds */

    /* what a miss fills */
    sl_str_t answer;     /* a JSON answer, encoded (sl_cache_answer_encode), in the pool */
    sl_cache_acc_t *acc; /* a stream's events, gathered */
    const void *owner;   /* the attempt whose events acc holds */

    /* semantic */
    bool semantic; /* the prompt qualifies: its vector is (being) computed */
    bool vector;   /* vec holds the prompt's vector */
    sl_cache_vec_t vec;
    float *v;
    uint32_t *words;
    sl_str_t prompt; /* the last user turn's text */
    sl_cache_match_t match;
    int match_rc;

    uv_work_t work; /* the key of a large body, or a semantic scan of a large partition */
};

/*
 * Serves rq from c->entry (a semantic hit when semantic): admission, the
 * ledger row (cost 0, saved_usd), x-sluice-cache and Age, the answer as
 * JSON or as a stream. Returns 0 (rq is finished), or SL_EPARSE when the
 * entry cannot be replayed (the caller goes on as for a miss).
 */
int sl__cache_hit(sl_drv_req_t *rq, bool semantic);

/* Appends the client headers that change an answer (anthropic-version, ...) to b, for keys. */
void sl__cache_key_headers(sl_drv_req_t *rq, sl_buf_t *b);

/* A lookup found nothing usable: counts the miss. */
void sl__cache_missed(sl_drv_req_t *rq);

/*
 * Reads the entry under key into c->entry when it is fresh enough for the
 * request (its TTL and max-age). Returns 0 or SL_ENOTFOUND.
 */
int sl__cache_read(sl_drv_req_t *rq, const uint8_t key[SL_CACHE_KEY_LEN]);

/*
 * cache_semantic.c: when the semantic cache applies to rq, embeds the last
 * user turn (an embeddings call of the gateway's own, recorded in the
 * ledger as such) and looks for a close entry with the same content words;
 * then serves the hit or calls sl__drv_proceed. Returns SL_ASYNC when it
 * took the request over, 0 when it does not apply (the caller proceeds).
 */
int sl__cache_semantic(sl_drv_req_t *rq);

/*
 * The partition (scope, model, frontend) and the context (the request
 * without the last user turn's text) of the prompt whose content is the
 * value index content of the internal request. Returns 0 or SL_EPARSE.
 */
int sl__cache_semantic_ids(sl_drv_req_t *rq, int content, uint8_t part[SL_CACHE_PART_LEN],
                           uint8_t ctx[SL_CACHE_CTX_LEN]);

#endif
