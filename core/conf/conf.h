/*
 * The validated, immutable configuration of one generation. sl_conf_load()
 * parses the YAML file (libyaml, in conf.c only), checks every value and
 * resolves secret references; everything it returns lives in conf->pool (the
 * generation pool) and is read-only afterwards, so workers forked from the
 * master share it copy-on-write and never lock it.
 *
 * The struct is public because every request reads it on the hot path.
 * Durations are stored in milliseconds, sizes in bytes.
 */
#ifndef SL_CORE_CONF_CONF_H
#define SL_CORE_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/base/log.h"
#include "core/base/pool.h"

typedef struct sl_provider_ops sl_provider_ops_t;
typedef struct sl_db sl_db_t; /* storage/db.h */
/*
 * Completion tokens a budget reservation assumes when the request sets no
 * max_tokens and the price data give no max_output for the model
 * (budgets.default_output_tokens).
 */
#define SL_BUDGET_DEFAULT_OUTPUT 4096

typedef struct sl_pricing sl_pricing_t;           /* core/gateway/pricing.h */
typedef struct sl_guard_conf sl_guard_conf_t;     /* core/gateway/guard.h */
typedef struct sl_guard_policy sl_guard_policy_t; /* core/gateway/guard.h */

/*
 * HTTPS on a listen address: the PEM files as configured and their
 * contents, read (and checked to parse and belong together) when the
 * configuration is loaded, so every worker of a generation serves exactly
 * what was checked and a reload re-reads them. The key text is wiped when
 * the generation goes.
 */
typedef struct sl_listen_tls {
    const char *cert_file;
    const char *key_file;
    const char *cert_pem; /* NUL-terminated; cert_len excludes the NUL */
    size_t cert_len;
    const char *key_pem; /* secret */
    size_t key_len;
    bool session_tickets;     /* default true */
    uint32_t session_timeout; /* seconds a session (ticket) may be resumed; default 3600 */
} sl_listen_tls_t;

typedef struct sl_listen_conf {
    const char *text; /* as written, e.g. "127.0.0.1:4141" or "[::1]:4141" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const sl_listen_tls_t *tls; /* NULL: plain HTTP */
} sl_listen_conf_t;

/* A resolved secret: the plaintext and where it came from (for messages, never the value). */
typedef struct sl_secret {
    const char *ref;   /* "env:OPENAI_API_KEY", "file:/etc/sluice/key", "vault:openai" */
    const char *value; /* plaintext, NUL-terminated, in the generation pool; NULL for a
                          vault: reference until a worker resolved it */
    size_t len;
    bool vault;        /* a vault: reference: resolved in each worker after fork */
    const char *where; /* "file:line:col" of the reference, for messages */
} sl_secret_t;

typedef struct sl_header_conf {
    const char *name;
    const char *value;
} sl_header_conf_t;

typedef struct sl_provider_conf {
    const char *name;             /* key under providers: */
    const char *kind;             /* "openai", ... */
    const sl_provider_ops_t *ops; /* from the registry, by kind */
    void *ext;                    /* what ops->conf_parse returned, or NULL */
    const char *base_url;         /* as written, without a trailing slash */
    bool tls;                     /* https:// */
    const char *host;             /* host name or literal address, no brackets */
    uint16_t port;                /* explicit or 443/80 */
    const char *host_header;      /* "host" or "host:port" when non-default */
    const char *base_path;        /* path prefix, "" or "/v1" (no trailing slash) */
    sl_secret_t api_key;          /* value NULL when no key is configured (local servers) */
    const char *ca_file;          /* extra CA bundle, or NULL */
    bool tls_verify;              /* default true; false only for explicit opt-out */
    bool allow_direct;            /* requests for "name/model" allowed (default true) */
    uint64_t connect_timeout;     /* ms */
    uint64_t first_byte_timeout;  /* ms: request sent -> response headers */
    uint64_t idle_timeout;        /* ms: max gap between response bytes */
    uint64_t total_timeout;       /* ms: whole exchange */
    uint64_t keepalive_timeout;   /* ms: idle pooled connection lifetime */
    unsigned max_connections;     /* per worker, per provider */
    unsigned max_idle;            /* idle connections kept per worker */
    sl_header_conf_t *headers;    /* extra headers sent upstream */
    size_t nheaders;

    /*
     * Every credential, in file order: `api_key: REF` or `api_key: [REF, ...]`.
     * api_key above is a copy of api_keys[0] (value NULL when none is
     * configured), for code that knows only one. NULL and 0 without api_key.
     */
    sl_secret_t *api_keys;
    size_t napi_keys;
    const char **forward_headers; /* opt-in client headers passed upstream (core/http/headers.h) */
    size_t nforward_headers;
} sl_provider_conf_t;

typedef enum sl_strategy {
    SL_STRATEGY_FALLBACK = 0,
    SL_STRATEGY_WEIGHTED,
    SL_STRATEGY_CHEAPEST,
    SL_STRATEGY_FASTEST,
    SL_STRATEGY_LEAST_BUSY,
} sl_strategy_e;

/* Upstream failure classes `retry_on:` may name, as bits of sl_routing_conf_t.retry_on. */
#define SL_RETRY_ON_CONNECT 0x1u /* the connection (TCP, TLS) could not be made */
#define SL_RETRY_ON_TIMEOUT 0x2u /* connect, first byte, idle, total or first token timeout */
#define SL_RETRY_ON_429     0x4u /* 429 Too Many Requests */
#define SL_RETRY_ON_5XX     0x8u /* 500..599 (501 excepted: see core/gateway/retry.h) */
#define SL_RETRY_ON_ALL     0xfu

/*
 * How one request is routed and retried: the top-level `routing:` map,
 * with a model's own keys laid over it (resolved once at load). Durations
 * are milliseconds.
 */
typedef struct sl_routing_conf {
    unsigned retries;             /* extra tries of one target on a retryable failure, 0..10 */
    uint64_t backoff;             /* first wait between tries of one target, doubled per try */
    uint64_t max_wait;            /* a wait (backoff or Retry-After) above it moves on instead */
    unsigned retry_on;            /* SL_RETRY_ON_* bits: what counts as retryable */
    uint64_t first_token_timeout; /* a stream with no real output by then is abandoned */
    unsigned breaker_failures;    /* consecutive failures that open a target; 0: no breaker */
    uint64_t breaker_cooldown;    /* an open target is skipped this long, then probed once */
    unsigned retry_budget;        /* extra attempts allowed, permille of recent requests */
    uint64_t deadline;            /* the whole request across attempts; 0: none */
    sl_strategy_e strategy;       /* how the targets are ordered */
    uint64_t max_latency;         /* cheapest: skip targets whose latency estimate is above it;
                                     0: none */
} sl_routing_conf_t;

typedef struct sl_target {
    const sl_provider_conf_t *provider;
    const char *model; /* the provider's own model name */
    unsigned weight;   /* for SL_STRATEGY_WEIGHTED, default 1 */
} sl_target_t;

/* `complexity:` of a rule's when; SL_COMPLEXITY_ANY when the rule does not ask. */
typedef enum sl_complexity_class {
    SL_COMPLEXITY_ANY = 0,
    SL_COMPLEXITY_SIMPLE,
    SL_COMPLEXITY_COMPLEX,
} sl_complexity_e;

/* The conditions a rule's when: holds, as bits of sl_rule_conf_t.when. */
#define SL_WHEN_MIN_PROMPT_TOKENS 0x01u
#define SL_WHEN_MAX_PROMPT_TOKENS 0x02u
#define SL_WHEN_HEADER            0x04u
#define SL_WHEN_KEY               0x08u
#define SL_WHEN_TEAM              0x10u
#define SL_WHEN_HAS_TOOLS         0x20u
#define SL_WHEN_HAS_IMAGES        0x40u
#define SL_WHEN_COMPLEXITY        0x80u

/*
 * One entry of a model's `rules:`. It matches when every condition its
 * when: names holds (core/gateway/router.h); the first matching rule's targets
 * replace the model's.
 */
typedef struct sl_rule_conf {
    unsigned index;             /* 0-based position in the model's rules */
    const char *where;          /* "file:line:col" of the rule, for traces */
    unsigned when;              /* SL_WHEN_* bits present */
    uint64_t min_prompt_tokens; /* estimated prompt tokens >= this */
    uint64_t max_prompt_tokens; /* estimated prompt tokens <= this */
    sl_header_conf_t *headers;  /* each: a client header of that name (any case) whose
                                   value is exactly this */
    size_t nheaders;
    const char **keys; /* the client key's name is one of these */
    size_t nkeys;
    const char **teams; /* the client key's team is one of these */
    size_t nteams;
    bool has_tools;             /* the request offers tools (or not) */
    bool has_images;            /* the request carries images (or not) */
    sl_complexity_e complexity; /* simple or complex by the scorer */
    sl_target_t *targets;       /* at least one */
    size_t ntargets;
    sl_routing_conf_t routing; /* the model's, with the rule's strategy when it sets one */
} sl_rule_conf_t;

/* A model's `cache:`: what cache.enabled says, false, or true / {ttl, semantic}. */
typedef enum sl_model_cache {
    SL_MODEL_CACHE_DEFAULT = 0, /* no cache: key: cache.enabled decides */
    SL_MODEL_CACHE_OFF,         /* cache: false */
    SL_MODEL_CACHE_ON,          /* cache: true or a mapping */
} sl_model_cache_e;

typedef struct sl_model_conf {
    const char *name; /* public name clients ask for */
    sl_target_t *targets;
    size_t ntargets;
    sl_strategy_e strategy;    /* same as routing.strategy */
    sl_routing_conf_t routing; /* effective: routing: defaults with this model's keys over them */
    sl_rule_conf_t *rules;     /* in file order; NULL when none */
    size_t nrules;
    sl_model_cache_e cache;         /* the response cache for this model */
    uint64_t cache_ttl;             /* ms; 0: cache.ttl */
    bool cache_no_semantic;         /* cache: {semantic: false}: exact lookups only */
    const sl_guard_policy_t *guard; /* models.NAME.guard, NULL when unset */
} sl_model_conf_t;

/* cache.scope: who may read an entry another client's request filled. */
typedef enum sl_cache_scope {
    SL_CACHE_SCOPE_KEY = 0, /* the client key that filled it */
    SL_CACHE_SCOPE_TEAM,    /* every key of its team (a key without a team: itself only) */
    SL_CACHE_SCOPE_GLOBAL,  /* every client */
} sl_cache_scope_e;

/* cache: the response cache (core/gateway/cache.h, storage/cache.h). */
typedef struct sl_cache_conf {
    bool enabled; /* every model's default; a model's cache: overrides it */
    uint64_t ttl; /* ms an entry is served after it was filled */
    sl_cache_scope_e scope;
    size_t max_size;       /* bytes of the map the cache may take; oldest entries go first */
    bool semantic;         /* cache.semantic is configured */
    sl_target_t embedding; /* cache.semantic.embedding: who embeds the prompts */
    float threshold;       /* cosine similarity a candidate needs, (0, 1] */
    unsigned max_messages; /* longer conversations skip the semantic lookup */
} sl_cache_conf_t;

/* ledger.on_full: what admission does while the storage is full (storage/db.h). */
typedef enum sl_on_full {
    SL_ON_FULL_REFUSE = 0, /* 503 storage_full before any upstream call */
    SL_ON_FULL_SERVE,      /* serve without a ledger row, counted in /metrics */
} sl_on_full_e;

typedef struct sl_cors_conf {
    bool enabled;
    const char **origins; /* "*" allowed */
    size_t norigins;
    uint64_t max_age; /* seconds */
} sl_cors_conf_t;

/*
 * dashboard: (core/conf/conf_dashboard.c): the web page at / on the admin
 * listener and its logins (core/admin/admin.h).
 */
typedef struct sl_dashboard_conf {
    bool enabled;         /* GET / serves the dashboard; false: 404 */
    uint64_t session_ttl; /* ms a login lasts */
    uint64_t link_ttl;    /* ms within which a `sluice dashboard` link must be opened */
    bool tail_text;       /* the live tail also shows the start of prompt and answer */
} sl_dashboard_conf_t;

#define SL_ALERTS_BUDGET_MAX 4

/*
 * alerts: (core/conf/conf_dashboard.c, core/admin/alerts.h): what raises an
 * alert and where it is posted. Alerts are shown on the dashboard whether
 * or not a webhook is configured.
 */
typedef struct sl_alerts_conf {
    sl_secret_t webhook;                   /* an http(s) URL; value NULL: no webhook */
    unsigned budget[SL_ALERTS_BUDGET_MAX]; /* permille of a budget, ascending; none: off */
    size_t nbudget;
    bool breaker;                /* a target's breaker opens */
    bool model_down;             /* every target of a model failed a request */
    unsigned error_rate;         /* permille of a model's requests answered 5xx; 0: off */
    uint64_t error_window;       /* ms the error rate is measured over */
    uint64_t error_min_requests; /* fewer requests in the window never alert */
    uint64_t timeout;            /* ms one delivery may take */
    unsigned retries;            /* deliveries after the first one failed */
    uint64_t backoff;            /* ms before the first retry, doubled per retry */
} sl_alerts_conf_t;

/*
 * telemetry.otlp (core/conf/conf_telemetry.c): OpenTelemetry traces over
 * OTLP/HTTP, from the file or the standard OTEL_* environment variables
 * (the file wins key by key). Durations in ms.
 */
typedef struct sl_otlp_conf {
    bool enabled;                 /* false: no spans are exported */
    const char *endpoint;         /* the traces URL, e.g. "http://127.0.0.1:4318/v1/traces" */
    const char *path;             /* its request path ("/v1/traces") */
    bool protobuf;                /* http/protobuf; false: http/json */
    sl_provider_conf_t collector; /* the collector as the upstream client takes it: host, port,
                                     TLS, timeouts, headers (values may be secrets) */
    const char *service_name;
    sl_header_conf_t *resource; /* more resource attributes (OTEL_RESOURCE_ATTRIBUTES) */
    size_t nresource;
    double sampling;         /* share of new traces recorded, 0..1 */
    bool parent_based;       /* a client's traceparent decides whether its trace is recorded */
    unsigned queue_size;     /* spans waiting for export, per worker */
    unsigned batch_size;     /* spans per export */
    uint64_t flush_interval; /* ms: a batch that is not full goes after this long */
    uint64_t timeout;        /* ms: one export, connection included */
} sl_otlp_conf_t;

typedef struct sl_conf {
    sl_pool_t *pool;  /* generation pool: owns everything below */
    const char *file; /* path it was loaded from */

    /* server: */
    sl_listen_conf_t *listen; /* each with its tls (server.tls unless the item says otherwise) */
    size_t nlisten;
    sl_listen_conf_t *admin_listen; /* NULL when not configured; server.tls does not apply */
    unsigned workers;               /* "auto" resolved to the core count */
    bool reuse_port;                /* one SO_REUSEPORT socket per worker slot */
    const char *pid_file;
    const char *error_log; /* path or "stderr" */
    sl_log_level_e log_level;
    const char *access_log; /* path, or NULL for none */
    bool access_log_json;   /* access_log_format: json (one JSON object a line), else text */
    unsigned backlog;
    unsigned max_connections;    /* per worker */
    uint64_t header_timeout;     /* ms: request line + headers must arrive within it */
    uint64_t body_timeout;       /* ms: max gap between body reads */
    uint64_t keepalive_timeout;  /* ms: idle keep-alive connection closed after it */
    uint64_t send_timeout;       /* ms: max gap while the client is not reading */
    uint64_t drain_timeout;      /* ms: old generation's limit on reload / SIGQUIT */
    uint64_t stop_timeout;       /* ms: SIGTERM -> SIGKILL escalation */
    size_t max_body;             /* bytes */
    size_t max_header_size;      /* bytes: request line + all headers */
    unsigned max_headers;        /* count */
    unsigned keepalive_requests; /* requests per connection before close */
    bool core_dumps; /* false: RLIMIT_CORE 0 and not dumpable (core/process/process.h) */
    sl_cors_conf_t cors;

    /* auth: */
    sl_secret_t *static_keys;
    size_t nstatic_keys;
    sl_secret_t admin_key; /* value NULL when not configured */

    /* storage: */
    const char *storage_path;
    size_t storage_map_size;
    uint64_t storage_sync_interval;      /* ms */
    const char *storage_master_key_file; /* vault master key file, or NULL */
    uint64_t ledger_retention;           /* ms; 0 keeps every row */
    bool ledger_enabled;                 /* false: no usage rows and no budget enforcement */
    sl_on_full_e ledger_on_full;
    uint64_t ledger_commit_window; /* ms rows wait to be committed together; 0: one loop turn */
    bool storage_init; /* `serve --init-storage` (command line, not YAML): a 0-byte data.mdb may
                          start an empty store */

    /* responses: (stored responses of POST /v1/responses) */
    bool responses_store;         /* false: nothing is kept and previous_response_id is refused */
    uint64_t responses_retention; /* ms a stored response is kept */
    size_t responses_max_size;    /* bytes: a larger response (with its input) is not kept */

    const char *pricing_file;         /* NULL when not configured; else pricing_files[0] */
    const sl_pricing_t *pricing;      /* loaded from pricing_files (relative to the cwd), or NULL */
    const char *const *pricing_files; /* `pricing:` as a list, in order (later files win) */
    size_t npricing_files;
    bool unpriced_reject; /* unpriced: reject: no upstream call to a target without a price */
    uint64_t budget_max_reservation;          /* budgets.max_reservation in nano-USD, 0: none */
    unsigned budget_max_reservation_permille; /* or as a share of the smallest budget, 0: none */
    uint64_t budget_default_output;           /* budgets.default_output_tokens */

    sl_routing_conf_t routing; /* routing: as written, for direct provider/model requests and
                                  as every model's defaults */

    sl_provider_conf_t *providers;
    size_t nproviders;
    sl_model_conf_t *models;
    size_t nmodels;

    sl_cache_conf_t cache;
    sl_dashboard_conf_t dashboard;
    sl_alerts_conf_t alerts;
    sl_otlp_conf_t otlp;          /* telemetry.otlp */
    const sl_guard_conf_t *guard; /* guardrails: (core/gateway/guard.h), NULL when absent */
} sl_conf_t;

/*
 * Loads and validates path. On success stores a new configuration in *out
 * (the caller owns it; free with sl_conf_destroy) and returns 0. On failure
 * writes one message "file:line:col: what is wrong" into err (NUL-terminated,
 * truncated to errlen) and returns SL_ECONF (or -errno when the file cannot
 * be read). Master or CLI context; blocking file I/O is fine here.
 */
int sl_conf_load(const char *path, sl_conf_t **out, char *err, size_t errlen);

/*
 * As sl_conf_load, with flags: SL_CONF_NO_SECRETS records env: and file:
 * references without reading them (their value stays NULL), for commands
 * that only need the storage settings and run in a shell without the
 * providers' keys.
 */
#define SL_CONF_NO_SECRETS 1u
int sl_conf_load_flags(const char *path, unsigned flags, sl_conf_t **out, char *err, size_t errlen);

/* Frees the configuration and everything in its pool. NULL is a no-op. */
void sl_conf_destroy(sl_conf_t *conf);

/* Finds a provider by name; NULL when there is none. */
const sl_provider_conf_t *sl_conf_provider(const sl_conf_t *conf, const char *name, size_t len);

/* Finds a model alias by public name; NULL when there is none. */
const sl_model_conf_t *sl_conf_model(const sl_conf_t *conf, const char *name, size_t len);

/*
 * Parses a share as `retry_budget:` takes it, "20%" (at most one decimal)
 * or "0.2" (at most three decimals), both 0..100%, into permille (200).
 * Returns 0 or SL_ECONF.
 */
int sl_conf_parse_share(const char *s, unsigned *permille);

/* The YAML name of a strategy ("fallback", ...). */
const char *sl_conf_strategy_name(sl_strategy_e s);

/*
 * Value parsers, exposed for tests and other modules. Each returns 0 or
 * SL_ECONF. Durations: "750ms", "10s", "5m", "1h", "2d" (bare integers are
 * seconds). Sizes: "512", "64KiB", "8MiB", "1GiB", "10KB", "5MB" (KB = 1000).
 */
int sl_conf_parse_duration(const char *s, uint64_t *ms);
int sl_conf_parse_size(const char *s, size_t *bytes);

/*
 * Parses "host:port", "[v6]:port", ":port" or "port" into out->addr and
 * out->addrlen; out->text is set to s (borrowed, not copied). The host is a
 * literal IPv4 address, a bracketed IPv6 address, "localhost" (127.0.0.1)
 * or empty (0.0.0.0); the port is 1..65535. Returns 0 or SL_ECONF.
 */
int sl_conf_parse_listen(const char *s, sl_listen_conf_t *out);

/* Looks up an adapter by its YAML kind; sl_provider_find is the real one. */
typedef const sl_provider_ops_t *(*sl_conf_find_kind_cb)(const char *kind);

/*
 * As sl_conf_load, but resolves `kind:` with find instead of the provider
 * registry (tests, and tools that know extra kinds). find must not be NULL.
 */
int sl_conf_load_with(const char *path, sl_conf_find_kind_cb find, sl_conf_t **out, char *err,
                      size_t errlen);

/*
 * Provider configuration hooks. While sl_conf_load() walks a provider's
 * mapping it first consumes the common keys (kind, base_url, api_key, ...),
 * then calls the adapter's ops->conf_parse(cx, node, &ext) with that
 * mapping, then reports any key nobody consumed as unknown. The adapter
 * reads its own keys with the helpers below; every sl_conf_get* call marks
 * its key consumed. cx and the nodes are valid only during the call;
 * strings the helpers return are copies in the generation pool. A null
 * value (`key:` or `key: ~`) counts as absent. Master context, no I/O
 * except what sl_conf_get_secret does to resolve a reference.
 */
typedef struct sl_conf_ctx sl_conf_ctx_t;
typedef struct sl_conf_node sl_conf_node_t;

/*
 * The value of key in map and marks the key consumed. NULL when map is NULL
 * or not a mapping, when the key is absent, or when its value is null.
 */
const sl_conf_node_t *sl_conf_get(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key);

/*
 * The text of a scalar node, NUL-terminated, borrowed (valid during the
 * hook); *len gets its length when len is not NULL. NULL when n is not a
 * scalar.
 */
const char *sl_conf_node_str(const sl_conf_node_t *n, size_t *len);

/*
 * Typed readers of map's key. Each returns 0 and leaves *out untouched when
 * the key is absent, returns 0 after storing the value, or records a
 * message at the value's mark and returns SL_ECONF (wrong type, bad syntax,
 * outside [min, max]). Strings are copied into the generation pool; bools
 * are true/false, yes/no or on/off; durations are stored in ms; secrets
 * must be env:NAME or file:PATH references and are resolved here.
 */
int sl_conf_get_str(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key,
                    const char **out);
int sl_conf_get_bool(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, bool *out);
int sl_conf_get_uint(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, uint64_t min,
                     uint64_t max, uint64_t *out);
int sl_conf_get_duration(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key,
                         uint64_t min, uint64_t max, uint64_t *ms);
int sl_conf_get_size(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, size_t min,
                     size_t max, size_t *bytes);
int sl_conf_get_secret(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key,
                       sl_secret_t *out);

/*
 * Reports the first key of map that no reader consumed, as
 * `unknown key "x" in WHERE`. For an adapter's own nested mappings (the
 * loader checks the provider's mapping itself). Returns 0 or SL_ECONF.
 */
int sl_conf_check_unknown(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *where);

/*
 * Records "file:line:col: message" at n's start mark, unless a message is
 * already recorded (the first one wins). Control characters in the message
 * become '?', so it stays one line. Never pass a secret. Returns SL_ECONF.
 */
int sl_conf_errorf(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when n is a mapping. */
bool sl_conf_node_is_map(const sl_conf_node_t *n);

/* The 1-based line of n's first character in its file (0 for NULL). */
unsigned sl_conf_node_line(const sl_conf_node_t *n);

/* Number of key/value pairs of map; 0 when map is NULL or not a mapping. */
size_t sl_conf_map_size(const sl_conf_node_t *map);

/*
 * The i-th pair of map, in file order, for walking mappings whose keys are
 * data (model names) rather than a fixed set. Marks the key consumed.
 * *val is NULL when the value is null. Returns 0, or SL_ENOTFOUND when i is
 * past the end or map is not a mapping.
 */
int sl_conf_map_pair(sl_conf_ctx_t *cx, const sl_conf_node_t *map, size_t i,
                     const sl_conf_node_t **key, const sl_conf_node_t **val);

/* The callback of sl_conf_parse_file; root is NULL for an empty document. */
typedef int (*sl_conf_parse_cb)(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg);

/*
 * Parses another YAML file (the pricing table) with the same rules as the
 * configuration (one document, scalar and unique keys) and calls
 * fn(cx, root, arg), which reads it with the node API above; cx and the
 * nodes are valid only during the call, and sl_conf_pool(cx) is pool, where
 * fn keeps what it builds. Returns what fn returned, or SL_ECONF / -errno
 * when the file cannot be read or parsed; every failure leaves one
 * "file:line:col: message" (or "file: message") in err. Master or CLI
 * context; blocking file I/O.
 */
int sl_conf_parse_file(const char *path, sl_pool_t *pool, sl_conf_parse_cb fn, void *arg, char *err,
                       size_t errlen);

/* The generation pool: an adapter's ext and everything it points to live here. */
sl_pool_t *sl_conf_pool(sl_conf_ctx_t *cx);

/* The provider being parsed, common keys already filled in; NULL outside conf_parse. */
const sl_provider_conf_t *sl_conf_current_provider(sl_conf_ctx_t *cx);

#endif
