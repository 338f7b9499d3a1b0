/*
 * The response cache's store, on storage/db.h. Three databases:
 *
 *   SL_DBI_CACHE      entry key (32 bytes: the hash of a canonical request,
 *                     core/gateway/cache.h) -> the entry: when it was
 *                     filled, when it expires, what the answer cost, who
 *                     filled it (model, key, team), who answered (provider,
 *                     target and served model) and the answer, opaque here;
 *   SL_DBI_CACHE_AGE  be64 fill time (ns) + entry key -> be64 expiry (unix
 *                     s): entries oldest first, for eviction and expiry;
 *   SL_DBI_CACHE_VEC  partition (16 bytes) + entry key -> the semantic
 *                     cache's view of the entry's prompt: a context hash,
 *                     the expiry, the prompt's content words (32-bit
 *                     hashes, sorted, unique) and its embedding (float32,
 *                     unit length). A partition holds one scope, model and
 *                     frontend, so a lookup scans only vectors it may use.
 *
 * Size: the cache's bytes (keys and values of the three databases, kept
 * in a counter record beside the entries, under the 5-byte key "stats")
 * stay at or below a cap: a fill first evicts the oldest entries; a fill
 * that would need more evictions than one write should make, or that is
 * larger than the cap, is dropped. When the map as a whole runs short,
 * storage/db.c empties the cache before the ledger or the keys can fail
 * for lack of room.
 *
 * Records are checked when read: one that does not decode is skipped (and
 * deleted by the next write that meets it), never trusted. An index record
 * whose entry is gone (an older sluice emptied the entries only) is removed
 * when met. Strings are NUL-terminated.
 *
 * Context: any thread of a worker, or the CLI. Functions taking sl_db_t
 * run their own short write transactions (sl_db_write): call them off the
 * event loop.
 */
#ifndef SL_STORAGE_CACHE_H
#define SL_STORAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/base/pool.h"
#include "core/base/str.h"
#include "storage/db.h"

#define SL_CACHE_KEY_LEN   32
#define SL_CACHE_PART_LEN  16
#define SL_CACHE_CTX_LEN   16
#define SL_CACHE_DIMS_MAX  16384 /* embedding dimensions kept at most */
#define SL_CACHE_WORDS_MAX 512   /* content words of one prompt kept at most */

/* The semantic cache's view of an entry's prompt. */
typedef struct sl_cache_vec {
    uint8_t part[SL_CACHE_PART_LEN]; /* scope, model and frontend */
    uint8_t ctx[SL_CACHE_CTX_LEN];   /* everything but the last user turn's text */
    const float *v;                  /* dims values of unit length */
    uint32_t dims;
    const uint32_t *words; /* content-word hashes, sorted and unique */
    uint32_t nwords;
} sl_cache_vec_t;

/* One entry. */
typedef struct sl_cache_entry {
    uint8_t key[SL_CACHE_KEY_LEN];
    int64_t created_ns; /* unix ns: when it was filled */
    int64_t expires;    /* unix s: not served from then on */
    uint64_t cost_nusd; /* what the answer cost when it was filled */
    uint32_t api;       /* the frontend (sl_api_e) */
    const char *model;  /* the public model name */
    const char *key_id; /* who filled it: "" for a static key */
    const char *key_name;
    const char *team;          /* "" when none */
    const char *provider;      /* the target that answered: provider name */
    const char *target_model;  /* and its model */
    const char *served_model;  /* what the provider says it used, "" when unknown */
    sl_str_t body;             /* the answer, as core/gateway/cache.c encoded it */
    const sl_cache_vec_t *vec; /* sl_cache_put: the prompt's vector, or NULL */
} sl_cache_entry_t;

/*
 * The entry under key, copied into pool, unless it expired by now (unix
 * s). Read or write transaction. Returns 0, SL_ENOTFOUND (none, expired
 * or undecodable), SL_ECORRUPT or SL_ESTORE. out->vec is NULL.
 */
int sl_cache_get(sl_txn_t *t, const uint8_t key[SL_CACHE_KEY_LEN], int64_t now, sl_pool_t *pool,
                 sl_cache_entry_t *out);

/*
 * Stores e (replacing an entry under the same key), with its vector when
 * e->vec is set, after evicting the oldest entries while the cache's pages
 * and the new records would exceed cap bytes; at most 256 evictions per
 * call. *evicted (may be NULL) gets how many went. Returns 0; SL_EFULL
 * when the entry does not fit (larger than cap, too many evictions, or the
 * storage is full: nothing written); SL_EPARSE for a vector with more than
 * SL_CACHE_DIMS_MAX dimensions or SL_CACHE_WORDS_MAX words; SL_ESTORE.
 * Blocking: off the loop.
 */
int sl_cache_put(sl_db_t *db, const sl_cache_entry_t *e, size_t cap, size_t *evicted);

/* A semantic lookup: what the new prompt looks like. */
typedef struct sl_cache_query {
    uint8_t part[SL_CACHE_PART_LEN];
    uint8_t ctx[SL_CACHE_CTX_LEN];
    const float *v; /* unit length */
    uint32_t dims;
    const uint32_t *words; /* sorted and unique */
    uint32_t nwords;
    float threshold; /* cosine similarity a candidate needs */
    int64_t now;     /* unix s: expired vectors do not count */
} sl_cache_query_t;

/* What a semantic lookup found. */
typedef struct sl_cache_match {
    bool found;
    uint8_t key[SL_CACHE_KEY_LEN]; /* the best accepted candidate's entry */
    float score;                   /* its cosine similarity */
    size_t scanned;                /* vectors compared */
    size_t rejected;               /* candidates above the threshold whose content words differ */
    bool incomplete; /* the partition holds more than limit vectors: not all were seen */
} sl_cache_match_t;

/*
 * Scans q's partition: every live vector of q's dimensions and context
 * whose cosine similarity to q->v is at least q->threshold is a candidate,
 * and a candidate is accepted only when its content words are exactly q's;
 * the accepted one with the highest similarity wins. limit > 0 stops after
 * that many vectors (out->incomplete tells), for a first try on the event
 * loop; 0 scans the whole partition. Read transaction. Returns 0,
 * SL_ECORRUPT or SL_ESTORE.
 */
int sl_cache_match(sl_txn_t *t, const sl_cache_query_t *q, size_t limit, sl_cache_match_t *out);

/*
 * Cosine similarity of two unit vectors of n values: their dot product,
 * summed in eight lanes so the compiler can vectorise it.
 */
float sl_cache_dot(const float *a, const float *b, size_t n);

/*
 * Deletes at most max entries that expired by now (unix s), in short write
 * transactions; *n (may be NULL) gets how many. Blocking: off the loop.
 * Returns 0 or SL_ESTORE.
 */
int sl_cache_expire(sl_db_t *db, int64_t now, size_t max, size_t *n);

/*
 * Deletes the entries of model (NULL: any) filled by key (a key id or
 * name, "static" for the configuration's keys; NULL: any); with neither,
 * empties the cache. *n (may be NULL) gets how many entries went.
 * Blocking: CLI or off the loop. Returns 0 or SL_ESTORE.
 */
int sl_cache_purge(sl_db_t *db, const char *model, const char *key, size_t *n);

/*
 * The cache's entries and bytes (keys and values of its three databases).
 * Read or write transaction. Returns 0 or SL_ESTORE.
 */
int sl_cache_stat(sl_txn_t *t, size_t *entries, size_t *bytes);

/* What the cache holds and did over a window of the ledger (sluice cache stats, /admin/cache). */
typedef struct sl_cache_report {
    size_t entries;
    size_t bytes;
    uint64_t hits;           /* rows answered by an exact hit */
    uint64_t semantic_hits;  /* ... by a semantic one */
    uint64_t misses;         /* rows the cache applied to and did not answer */
    uint64_t bypassed;       /* rows the cache did not apply to */
    uint64_t saved_nusd;     /* what the hits' answers had cost */
    uint64_t embed_requests; /* the semantic cache's own embeddings calls */
    uint64_t embed_nusd;     /* and their cost */
} sl_cache_report_t;

/*
 * The entries and bytes now, and the ledger's rows with time >= since_ns
 * (0: all) counted by their cache column. Read transaction; reads the
 * whole window: CLI or off the loop. Returns 0, SL_ESTORE or what
 * sl_ledger_scan returns.
 */
int sl_cache_report(sl_txn_t *t, int64_t since_ns, sl_cache_report_t *out);

/*
 * {entries, bytes, max_size_bytes, hits, semantic_hits, misses, bypassed,
 * hit_ratio (hits of both kinds / (those + misses), 0 when none),
 * saved_usd, embedding_requests, embedding_cost_usd (exact decimal
 * strings)}. Returns a new reference, or NULL when out of memory.
 */
json_t *sl_cache_report_json(const sl_cache_report_t *r, size_t max_size);

#endif
