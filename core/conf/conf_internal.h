/*
 * Module-private declarations of the configuration loader (core/conf/conf*.c):
 * the parse context, the field tables' types, the limits several sections
 * share and the sl__conf_* functions the files call across. Nothing outside
 * core/conf/ includes it.
 *
 *   conf.c            the public API (load, destroy, lookups, value parsers,
 *                     the node API for adapters, sl_conf_parse_file, errors),
 *                     the YAML document and its walk from the root, and the
 *                     helpers every section uses: node access, secrets,
 *                     numbers, name checks. The only file that sees libyaml.
 *   conf_server.c     the defaults, server: (listen, TLS and its PEM files,
 *                     workers, logs, CORS), auth:, storage:, ledger:
 *   conf_providers.c  providers: (base_url, headers, api_key credentials,
 *                     a provider's defaults and the adapter's own keys)
 *   conf_models.c     models: and their targets, routing: with a model's own
 *                     overrides, rules: and their when: conditions
 *   conf_cache.c      cache: (and its semantic: part), a model's own cache:
 *   conf_accounting.c pricing: (one file or a list), unpriced:, budgets:
 *   conf_dashboard.c  dashboard: and alerts:
 *   conf_telemetry.c  telemetry: (OTLP trace export) and the standard
 *                     OTEL_* environment variables
 *   conf_guard.c      guardrails: (policies and their checks, apply) and a
 *                     model's guard: key
 *
 * Nodes stay opaque outside conf.c: the section files reach them only
 * through the functions below, so libyaml's types stay behind one file.
 * Master (or CLI) context, like core/conf/conf.h; nothing here is used after
 * sl_conf_load() returns.
 */
#ifndef SL_CORE_CONF_CONF_INTERNAL_H
#define SL_CORE_CONF_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf/conf.h"

#define CONF_MODEL_MAX 256
#define CONF_MS_MAX    (365ULL * 86400 * 1000)
#define CONF_WHERE_MAX (CONF_MODEL_MAX + 16)

#define CONF_KIB (1024ULL)
#define CONF_MIB (1024ULL * CONF_KIB)
#define CONF_GIB (1024ULL * CONF_MIB)
#define CONF_TIB (1024ULL * CONF_GIB)

struct yaml_document_s;

/* One walk over one YAML document (sl_conf_load or sl_conf_parse_file). */
struct sl_conf_ctx {
    const char *file;
    sl_conf_find_kind_cb find;
    sl_conf_t *conf; /* NULL for sl_conf_parse_file */
    sl_pool_t *pool;
    struct yaml_document_s *doc;
    sl_conf_node_t *nodes; /* one wrapper per document node, same order */
    size_t nnodes;
    sl_provider_conf_t *provider; /* the one whose conf_parse hook runs */
    char *err;
    size_t errlen;
    unsigned flags; /* SL_CONF_* */
    bool failed;    /* a message is recorded: later ones are dropped */
};

typedef enum conf_type {
    CONF_BOOL = 0,
    CONF_UINT, /* unsigned */
    CONF_MSEC, /* uint64_t, milliseconds */
    CONF_SIZE, /* size_t, bytes */
    CONF_PATH, /* const char *, non-empty */
} conf_type_e;

/* A plain key read straight into a struct field; a table ends with a NULL key. */
typedef struct conf_field {
    const char *key;
    conf_type_e type;
    size_t offset;
    uint64_t min;
    uint64_t max;
} conf_field_t;

/*
 * Node access (conf.c). A node is never NULL here. sl__conf_is_null is true
 * for a plain scalar "", "~" or "null"; sl__conf_type_name names n's type
 * for messages ("a mapping", "a list", "an empty value", "a scalar");
 * sl__conf_text is a scalar's text, or "" for anything else.
 */
bool sl__conf_is_null(const sl_conf_node_t *n);
bool sl__conf_is_map(const sl_conf_node_t *n);
bool sl__conf_is_seq(const sl_conf_node_t *n);
bool sl__conf_is_scalar(const sl_conf_node_t *n);
const char *sl__conf_type_name(const sl_conf_node_t *n);
const char *sl__conf_text(const sl_conf_node_t *n);

/* The number of pairs of a mapping, of items of a list; n must be one. */
size_t sl__conf_map_len(const sl_conf_node_t *n);
size_t sl__conf_seq_len(const sl_conf_node_t *n);

/* Item i (< sl__conf_seq_len) of the list n. */
const sl_conf_node_t *sl__conf_seq_item(sl_conf_ctx_t *cx, const sl_conf_node_t *n, size_t i);

/*
 * Pair i (< sl__conf_map_len) of the mapping n, as written: unlike
 * sl_conf_map_pair, it marks nothing consumed and a null value stays a node.
 */
void sl__conf_map_at(sl_conf_ctx_t *cx, const sl_conf_node_t *n, size_t i,
                     const sl_conf_node_t **key, const sl_conf_node_t **val);

/* "file:line:col" of n's start mark, in the generation pool (a rule's or a secret's origin). */
const char *sl__conf_where(sl_conf_ctx_t *cx, const sl_conf_node_t *n);

/*
 * Copies a scalar's text into the generation pool. Returns 0, or SL_ECONF
 * with a message naming what when n is not a scalar or holds a NUL.
 * sl__conf_nonempty also refuses "".
 */
int sl__conf_scalar(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char **out);
int sl__conf_nonempty(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                      const char **out);

/*
 * An optional mapping under parent: *out is NULL when absent or null.
 * Returns 0, or SL_ECONF when the value is not a mapping.
 */
int sl__conf_section(sl_conf_ctx_t *cx, const sl_conf_node_t *parent, const char *key,
                     const sl_conf_node_t **out);

/*
 * Reads every key of the table f present in map into base + f->offset
 * (absent keys keep what is there). Returns 0 or SL_ECONF.
 */
int sl__conf_read_fields(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const conf_field_t *f,
                         void *base);

/*
 * Resolves the secret reference n (env:NAME, file:PATH, or vault:NAME,
 * which a worker resolves later); what names it in messages, which never
 * hold the value. The plaintext lives in the generation pool and is wiped
 * with it. Returns 0 or SL_ECONF.
 */
int sl__conf_secret(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, sl_secret_t *out);

/* Pool cleanup: zeroes the NUL-terminated string arg (a plaintext secret). */
void sl__conf_wipe(void *arg);

/* One or more decimal digits at *pp; advances *pp. Returns 0, or SL_ECONF on none or overflow. */
int sl__conf_digits(const char **pp, uint64_t *out);

/* A whole string of decimal digits. Returns 0 or SL_ECONF. */
int sl__conf_parse_uint(const char *s, uint64_t *out);

/* true/True/TRUE/yes/on or false/False/FALSE/no/off. Returns 0 or SL_ECONF. */
int sl__conf_parse_bool(const char *s, bool *out);

/* 1 to 64 of A-Z a-z 0-9 _ . - (provider names, vault: secret names). */
bool sl__conf_valid_name(const char *s);

/* An RFC 9110 token: the only characters allowed in a header name. */
bool sl__conf_is_token(const char *s);

/*
 * conf_providers.c: an http[s]://host[:port][/path] URL into p's base_url,
 * tls, host, port, host_header and base_path; what names the value in
 * messages, secrets where credentials go instead of user info. Returns 0
 * or SL_ECONF.
 */
int sl__conf_parse_url(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                       const char *secrets, const char *url, sl_provider_conf_t *p);

/* conf_server.c: the built-in values every key starts from. */
void sl__conf_defaults(sl_conf_t *conf);

/* conf_accounting.c: the defaults of unpriced: and budgets:. */
void sl__conf_accounting_defaults(sl_conf_t *conf);

/*
 * The sections, in the order conf.c walks them: each reads its mapping
 * (NULL when absent) into cx->conf and reports its unknown keys. pricing
 * takes the `pricing:` node (a path or a list of them).
 * routing comes before providers and providers before models, which refer
 * to both. Each returns 0, or SL_ECONF with the message recorded.
 */
int sl__conf_parse_server(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_auth(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_storage(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_responses(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_ledger(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_pricing(sl_conf_ctx_t *cx, const sl_conf_node_t *n);
/* conf_accounting.c: unpriced: and budgets: from the root mapping (NULL: none). */
int sl__conf_parse_accounting(sl_conf_ctx_t *cx, const sl_conf_node_t *root);
int sl__conf_parse_routing(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_providers(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_models(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_telemetry(sl_conf_ctx_t *cx, const sl_conf_node_t *map);

/*
 * conf_cache.c: the cache: section (after providers: the semantic
 * embedding target names one), and a model's cache: value n (false, true
 * or {ttl, semantic}) into m. Each returns 0 or SL_ECONF.
 */
int sl__conf_parse_cache(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_model_cache(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_model_conf_t *m);
/* conf_dashboard.c: dashboard: and alerts: (defaults included: map may be NULL). */
int sl__conf_parse_dashboard(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_parse_alerts(sl_conf_ctx_t *cx, const sl_conf_node_t *map);

/*
 * conf_guard.c: the guardrails: section (before models:, whose guard: key
 * names its policies), and such a reference: a policy name or "none"
 * (&sl_guard_policy_none). Each returns 0, or SL_ECONF with the message
 * recorded.
 */
int sl__conf_parse_guardrails(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
int sl__conf_guard_ref(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const sl_guard_policy_t **out);

#endif
