/*
 * The usage ledger, on storage/db.h (the spend counters a row's cost moves
 * are storage/spend.h's).
 *
 * Ledger (SL_DBI_LEDGER): one row per request that got past auth. The key
 * is be64(time ns) + be32(pid) + be32(seq), so rows sort by time and two
 * workers never collide; the value is a compact, versioned encoding. A row
 * that does not decode is skipped with a log line, never trusted.
 *
 * Every function taking an sl_txn_t works inside the caller's transaction
 * (read or write as stated) and is repeatable, as sl_db_write requires.
 * Strings in rows and groups are NUL-terminated.
 */
#ifndef SL_STORAGE_LEDGER_H
#define SL_STORAGE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "core/base/pool.h"
#include "storage/db.h"

/* Longest string field kept in a row; longer ones are truncated. */
#define SL_LEDGER_STR_MAX 1024

typedef enum sl_ledger_flag {
    SL_LEDGER_UNPRICED = 1u << 0,       /* no price for the model: cost_nusd is 0 */
    SL_LEDGER_ESTIMATED = 1u << 1,      /* token counts estimated by sluice */
    SL_LEDGER_STREAM = 1u << 2,         /* the client asked for a stream */
    SL_LEDGER_CACHE_HIT = 1u << 3,      /* answered from sluice's response cache */
    SL_LEDGER_WORKER_DIED = 1u << 4,    /* written by the master: the worker died mid-request */
    SL_LEDGER_CACHE_SEMANTIC = 1u << 5, /* the hit was a semantic one (with SL_LEDGER_CACHE_HIT) */
    SL_LEDGER_GATEWAY = 1u << 6, /* the gateway's own usage (e.g. a semantic cache embedding) */
} sl_ledger_flag_e;

/*
 * The status of a row the master wrote for a request whose worker died
 * before answering it: the client got no complete answer, as with a
 * client that closed the connection (nginx's 499), and it counts as an
 * error. The row also carries SL_LEDGER_WORKER_DIED.
 */
#define SL_LEDGER_STATUS_WORKER_DIED 499

typedef struct sl_ledger_row {
    int64_t time_ns; /* unix time, ns: when the request arrived */
    uint32_t pid;    /* writer; sl_ledger_append uses getpid() when 0 */
    uint32_t seq;    /* per-process sequence; set by append, read by scan */
    const char *request_id;
    const char *key_id; /* "" for a static key from the config */
    const char *key_name;
    const char *team;         /* "" when the key has none */
    const char *endpoint;     /* "chat", "embeddings", "messages" */
    const char *model;        /* as the client asked for it */
    const char *provider;     /* provider name of the last attempt, "" when none */
    const char *served_model; /* what the provider says it used, "" when unknown */
    uint32_t attempts;
    uint32_t status;        /* HTTP status sent to the client */
    uint64_t prompt_tokens; /* includes cached and cache-write tokens */
    uint64_t completion_tokens;
    uint64_t cached_tokens;
    uint64_t cache_write_tokens;
    uint64_t cost_nusd;     /* nano-USD */
    uint32_t flags;         /* sl_ledger_flag_e */
    uint64_t latency_us;    /* arrival to last byte sent */
    uint64_t first_byte_us; /* request sent upstream to first response byte, 0 if none */
    /* version 2: */
    uint64_t saved_nusd;            /* a cache hit: the price of the answer it replaced */
    uint64_t reasoning_tokens;      /* of completion_tokens */
    uint64_t cache_write_1h_tokens; /* of cache_write_tokens, kept for 1 hour */
    uint64_t ttft_us;               /* arrival to the first real output of a stream, 0 if none */
    const char *cache;              /* "hit", "semantic", "miss", "bypass"; "" when none applied */
    const char *guard;              /* guardrail decisions, "policy/rule/action;..."; "" none */
    const char *trace_id;           /* the request's W3C trace id (32 hex digits), or "" */
} sl_ledger_row_t;

/*
 * Appends row inside the caller's write transaction. NULL strings are
 * stored as "". The key takes row->time_ns (negative counts as 0) or,
 * when the ledger's last key is later and less than an hour later, a time
 * just past that key (the row keeps its own time: ledger.c); row->pid
 * (0: getpid()) and the next value of a per-process counter.
 * Returns 0 or SL_ESTORE (logged). Worker context; no allocation.
 */
int sl_ledger_append(sl_txn_t *t, const sl_ledger_row_t *row);

#define SL_LEDGER_KEY_LEN 16

/* As sl_ledger_append, and stores the row's key in key (valid once the transaction commits). */
int sl_ledger_append_key(sl_txn_t *t, const sl_ledger_row_t *row, uint8_t key[SL_LEDGER_KEY_LEN]);

/*
 * Whether the row under key exists: 0, SL_ENOTFOUND or SL_ESTORE. Read or
 * write transaction. Tells whether a write that a dead process may or may
 * not have committed did commit.
 */
int sl_ledger_has(sl_txn_t *t, const uint8_t key[SL_LEDGER_KEY_LEN]);

/*
 * Calls cb(arg, row) for every row with time_ns >= since_ns in key order
 * (the order of their commits: by time, give or take the hour a key may
 * lag behind), until cb returns non-zero: 1 stops the scan and returns 0, a negative
 * code stops it and is returned. The row and its strings are valid only
 * during the call. Rows that do not decode are skipped with a warning.
 * Read or write transaction. Returns 0, cb's code or SL_ESTORE.
 */
int sl_ledger_scan(sl_txn_t *t, int64_t since_ns, int (*cb)(void *arg, const sl_ledger_row_t *row),
                   void *arg);

/*
 * Deletes at most max_rows of the oldest rows older than before_ns (by key:
 * a row whose key lags goes with the rows written around it), in one
 * short write transaction of its own, and stores how many in *deleted
 * (may be NULL). Call it again while *deleted == max_rows. Worker (off the
 * loop or from a timer with a small max_rows) or CLI context. Returns 0 or
 * SL_ESTORE.
 */
int sl_ledger_prune(sl_db_t *db, int64_t before_ns, size_t max_rows, size_t *deleted);

typedef enum sl_ledger_by {
    SL_LEDGER_BY_KEY = 0,  /* id: key id, name: key name */
    SL_LEDGER_BY_TEAM,     /* id = name: team, "" for none */
    SL_LEDGER_BY_MODEL,    /* id = name: the model the client asked for */
    SL_LEDGER_BY_PROVIDER, /* id = name: provider name, "" for none */
    SL_LEDGER_BY_DAY,      /* id = name: "YYYY-MM-DD" (UTC) */
    SL_LEDGER_BY_REQUEST,  /* id: request id, name: the model on its newest row */
    SL_LEDGER_BY_ENDPOINT, /* id = name: "chat", "embeddings", "messages" */
} sl_ledger_by_e;

typedef struct sl_ledger_group {
    const char *id;
    const char *name; /* by key (request): the key name (model) on the newest row */
    uint64_t requests;
    uint64_t errors;      /* status >= 400 */
    uint64_t unpriced;    /* rows flagged SL_LEDGER_UNPRICED */
    uint64_t worker_died; /* rows flagged SL_LEDGER_WORKER_DIED */
    uint32_t flags;       /* every sl_ledger_flag_e seen on the group's rows */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cached_tokens;
    uint64_t cache_write_tokens;
    uint64_t cost_nusd;  /* saturates at UINT64_MAX */
    uint64_t cache_hits; /* rows answered from the response cache */
    uint64_t saved_nusd; /* what those hits would have cost; saturates */
    uint64_t p50_us;     /* nearest-rank percentiles of latency_us */
    uint64_t p95_us;
    const char *trace_id; /* by request: the W3C trace id of its row, NULL when none */
    const char *guard;    /* by request: its row's guardrail decisions ("" none); else NULL */
} sl_ledger_group_t;

typedef struct sl_ledger_agg {
    sl_ledger_group_t *groups; /* by day: oldest first; otherwise by cost, then requests */
    size_t ngroups;
    sl_ledger_group_t total; /* every row in the window; id and name "total" */
    uint64_t skipped;        /* rows that did not decode */
    sl_pool_t *pool;         /* owns groups and their strings */
} sl_ledger_agg_t;

/*
 * Groups the rows with since_ns <= time_ns < until_ns (until_ns 0: no end)
 * by the dimension by (static keys, which have no id, group by name).
 * On success *out is a new result the caller frees with
 * sl_ledger_agg_free. Returns 0, -ENOMEM or SL_ESTORE. Memory grows with
 * the number of rows (latencies are kept for exact percentiles) and
 * allocation failure aborts, as in a worker: CLI or admin context, never
 * on the event loop.
 */
int sl_ledger_aggregate(sl_txn_t *t, int64_t since_ns, int64_t until_ns, sl_ledger_by_e by,
                        sl_ledger_agg_t **out);

/* Frees an aggregate. NULL is a no-op. */
void sl_ledger_agg_free(sl_ledger_agg_t *agg);

/* "key", "team", "model", "provider", "day", "request", "endpoint". Returns 0 or SL_EPARSE. */
int sl_ledger_by_parse(const char *s, sl_ledger_by_e *out);

/* Unix seconds as "2026-11-21T04:40:00Z" (UTC) into buf (at least 21 bytes). */
void sl_ledger_format_time(int64_t t, char *buf, size_t len);

/*
 * A report window: "all" (*since_ns 0, everything) or a duration back from
 * now_ns ("24h", "7d", as sl_conf_parse_duration reads it). Returns 0 or
 * SL_EPARSE (zero, malformed, or reaching back before 1970).
 */
int sl_ledger_parse_since(const char *s, int64_t now_ns, int64_t *since_ns);

/*
 * Copies s into out (size bytes, NUL-terminated), replacing bytes that are
 * not well-formed UTF-8 (and, with ctrl, control characters) by '?': ledger
 * strings come from clients, and JSON or a terminal must not get them raw.
 */
void sl_ledger_utf8_clean(const char *s, bool ctrl, char *out, size_t size);

/*
 * One group as `sluice usage --format json` and GET /admin/usage show it:
 * {id, name, requests, errors, prompt_tokens, completion_tokens,
 * cached_tokens, cost_usd (exact decimal string), cache_hits, saved_usd
 * (exact decimal string: what the hits would have cost), worker_died (rows the
 * master wrote for a dead worker's requests), flags (names of the flags
 * seen: sl_ledger_flag_names), and trace_id (by request, when the row has one)}.
 * Bytes of id and name
 * that are not well-formed UTF-8 (a model name comes from a client and may
 * have been cut mid-character) become '?'. Returns a new reference, or
 * NULL when out of memory.
 */
json_t *sl_ledger_group_json(const sl_ledger_group_t *g);

/*
 * The names of flags ("unpriced", "estimated", "stream", "cache_hit",
 * "worker_died"), comma-separated, into buf; "" for none.
 */
void sl_ledger_flag_names(uint32_t flags, char *buf, size_t len);

#endif
