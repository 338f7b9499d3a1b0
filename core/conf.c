/*
 * The YAML configuration loader, the only user of libyaml. The file is read
 * whole, composed into one libyaml document and walked node by node. Each
 * section reads the keys it knows through sl_conf_get(), which marks them
 * consumed; a key left unconsumed afterwards is reported as unknown, which
 * is also how provider adapters get their own keys (ops->conf_parse). Every
 * message carries file:line:col from the node's start mark; the first one
 * wins and the walk stops there. What the configuration keeps lives in the
 * generation pool; the document and the node wrappers are freed before
 * sl_conf_load() returns. Resolved secrets are wiped when the pool dies.
 */
#include "core/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "core/errno.h"
#include "core/headers.h"
#include "core/pricing.h"
#include "providers/registry.h"

#define CONF_FILE_MAX    (16u * 1024 * 1024)
#define CONF_SECRET_MAX  (64u * 1024)
#define CONF_NAME_MAX    64
#define CONF_MODEL_MAX   256
#define CONF_WORKERS_MAX 256
#define CONF_MS_MAX      (365ULL * 86400 * 1000)
#define CONF_WHERE_MAX   (CONF_MODEL_MAX + 16)

#define CONF_KIB (1024ULL)
#define CONF_MIB (1024ULL * CONF_KIB)
#define CONF_GIB (1024ULL * CONF_MIB)
#define CONF_TIB (1024ULL * CONF_GIB)

struct sl_conf_node {
    yaml_node_t *y;
    bool consumed; /* as a mapping key: some reader asked for it */
};

struct sl_conf_ctx {
    const char *file;
    sl_conf_find_kind_cb find;
    sl_conf_t *conf;
    sl_pool_t *pool;
    yaml_document_t doc;
    sl_conf_node_t *nodes; /* one wrapper per document node, same order */
    size_t nnodes;
    sl_provider_conf_t *provider; /* the one whose conf_parse hook runs */
    char *err;
    size_t errlen;
    unsigned flags; /* SL_CONF_* */
    bool failed;
};

typedef enum conf_type {
    CONF_BOOL = 0,
    CONF_UINT, /* unsigned */
    CONF_MSEC, /* uint64_t, milliseconds */
    CONF_SIZE, /* size_t, bytes */
    CONF_PATH, /* const char *, non-empty */
} conf_type_e;

/* A plain key read straight into a struct field. */
typedef struct conf_field {
    const char *key;
    conf_type_e type;
    size_t offset;
    uint64_t min;
    uint64_t max;
} conf_field_t;

static int conf_read_file(sl_conf_ctx_t *cx, const char *path, char **out, size_t *outlen);
static void conf_syntax_error(sl_conf_ctx_t *cx, const yaml_parser_t *parser, const char *buf,
                              size_t len);
static int conf_check_single(sl_conf_ctx_t *cx, yaml_parser_t *parser, const char *buf, size_t len);
static int conf_error_at(sl_conf_ctx_t *cx, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conf_verror_at(sl_conf_ctx_t *cx, size_t line, size_t col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static sl_conf_node_t *conf_node(sl_conf_ctx_t *cx, yaml_node_item_t index);
static bool conf_is_null(const sl_conf_node_t *n);
static bool conf_is_map(const sl_conf_node_t *n);
static bool conf_is_seq(const sl_conf_node_t *n);
static const char *conf_type_name(const sl_conf_node_t *n);
static const char *conf_text(const sl_conf_node_t *n);
static size_t conf_map_len(const sl_conf_node_t *n);
static size_t conf_seq_len(const sl_conf_node_t *n);
static int conf_check_keys(sl_conf_ctx_t *cx);
static int conf_scalar(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                       const char **out);
static int conf_nonempty(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                         const char **out);
static int conf_section(sl_conf_ctx_t *cx, const sl_conf_node_t *parent, const char *key,
                        const sl_conf_node_t **out);
static int conf_read_fields(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const conf_field_t *f,
                            void *base);
static void conf_defaults(sl_conf_t *conf);
static void conf_provider_defaults(sl_provider_conf_t *p);
static int conf_load(const char *path, sl_conf_find_kind_cb find, unsigned flags, sl_conf_t **out,
                     char *err, size_t errlen);
static int conf_with_doc(const char *path, sl_pool_t *pool, sl_conf_find_kind_cb find,
                         unsigned flags, sl_conf_parse_cb fn, void *arg, char *err, size_t errlen);
static int conf_load_doc(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg);
static int conf_parse_root(sl_conf_ctx_t *cx);
static int conf_parse_server(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_listens(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_listen_list(sl_conf_ctx_t *cx, const sl_conf_node_t *n);
static int conf_parse_address(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                              sl_listen_conf_t *out);
static int conf_parse_workers(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_logs(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_cors(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_auth(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_storage(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_pricing(sl_conf_ctx_t *cx, const sl_conf_node_t *n);
static int conf_parse_providers(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_provider(sl_conf_ctx_t *cx, const sl_conf_node_t *key,
                               const sl_conf_node_t *map, sl_provider_conf_t *p);
static int conf_parse_base_url(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *url,
                               sl_provider_conf_t *p);
static int conf_parse_forward_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n,
                                      sl_provider_conf_t *p);
static int conf_parse_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_provider_conf_t *p);
static int conf_check_readable(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                               const char *path);
static int conf_parse_models(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_model(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *map,
                            sl_model_conf_t *m);
static int conf_parse_target(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_target_t *t);
static int conf_secret(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                       sl_secret_t *out);
static int conf_secret_env(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                           const char *ref, sl_secret_t *out);
static int conf_secret_file(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                            const char *ref, sl_secret_t *out);
static void conf_secret_store(sl_conf_ctx_t *cx, const char *ref, const char *value, size_t len,
                              sl_secret_t *out);
static void conf_wipe(void *arg);
static void conf_wipe_n(char *p, size_t n);
static int conf_digits(const char **pp, uint64_t *out);
static int conf_parse_uint(const char *s, uint64_t *out);
static int conf_parse_bool(const char *s, bool *out);
static const char *conf_fmt_ms(char *buf, size_t size, uint64_t ms);
static const char *conf_fmt_size(char *buf, size_t size, uint64_t bytes);
static bool conf_same_addr(const sl_listen_conf_t *a, const sl_listen_conf_t *b);
static bool conf_valid_name(const char *s);
static bool conf_valid_model_name(const char *s);
static bool conf_valid_origin(const char *s);
static bool conf_valid_host(const char *s, size_t len);
static bool conf_is_token(const char *s);
static unsigned conf_cpus(void);


static const conf_field_t conf_server_fields[] = {
    { "reuse_port", CONF_BOOL, offsetof(sl_conf_t, reuse_port), 0, 0 },
    { "backlog", CONF_UINT, offsetof(sl_conf_t, backlog), 1, 65535 },
    { "pid_file", CONF_PATH, offsetof(sl_conf_t, pid_file), 0, 0 },
    { "max_connections", CONF_UINT, offsetof(sl_conf_t, max_connections), 1, 1000000 },
    { "header_timeout", CONF_MSEC, offsetof(sl_conf_t, header_timeout), 1, CONF_MS_MAX },
    { "body_timeout", CONF_MSEC, offsetof(sl_conf_t, body_timeout), 1, CONF_MS_MAX },
    { "keepalive_timeout", CONF_MSEC, offsetof(sl_conf_t, keepalive_timeout), 1, CONF_MS_MAX },
    { "send_timeout", CONF_MSEC, offsetof(sl_conf_t, send_timeout), 1, CONF_MS_MAX },
    { "drain_timeout", CONF_MSEC, offsetof(sl_conf_t, drain_timeout), 1, CONF_MS_MAX },
    { "stop_timeout", CONF_MSEC, offsetof(sl_conf_t, stop_timeout), 1, CONF_MS_MAX },
    { "max_body", CONF_SIZE, offsetof(sl_conf_t, max_body), CONF_KIB, CONF_GIB },
    { "max_header_size", CONF_SIZE, offsetof(sl_conf_t, max_header_size), CONF_KIB, CONF_MIB },
    { "max_headers", CONF_UINT, offsetof(sl_conf_t, max_headers), 1, 1000 },
    { "keepalive_requests", CONF_UINT, offsetof(sl_conf_t, keepalive_requests), 1, 1000000 },
    { "core_dumps", CONF_BOOL, offsetof(sl_conf_t, core_dumps), 0, 0 },
    { NULL, CONF_BOOL, 0, 0, 0 },
};

static const conf_field_t conf_storage_fields[] = {
    { "path", CONF_PATH, offsetof(sl_conf_t, storage_path), 0, 0 },
    { "map_size", CONF_SIZE, offsetof(sl_conf_t, storage_map_size), CONF_MIB, CONF_TIB },
    { "sync_interval", CONF_MSEC, offsetof(sl_conf_t, storage_sync_interval), 1, CONF_MS_MAX },
    { "master_key_file", CONF_PATH, offsetof(sl_conf_t, storage_master_key_file), 0, 0 },
    { NULL, CONF_BOOL, 0, 0, 0 },
};

static const conf_field_t conf_ledger_fields[] = {
    { "enabled", CONF_BOOL, offsetof(sl_conf_t, ledger_enabled), 0, 0 },
    { "retention", CONF_MSEC, offsetof(sl_conf_t, ledger_retention), 1, CONF_MS_MAX },
    { NULL, CONF_BOOL, 0, 0, 0 },
};

static const conf_field_t conf_provider_fields[] = {
    { "tls_verify", CONF_BOOL, offsetof(sl_provider_conf_t, tls_verify), 0, 0 },
    { "allow_direct", CONF_BOOL, offsetof(sl_provider_conf_t, allow_direct), 0, 0 },
    { "connect_timeout", CONF_MSEC, offsetof(sl_provider_conf_t, connect_timeout), 1, CONF_MS_MAX },
    { "first_byte_timeout", CONF_MSEC, offsetof(sl_provider_conf_t, first_byte_timeout), 1,
      CONF_MS_MAX },
    { "idle_timeout", CONF_MSEC, offsetof(sl_provider_conf_t, idle_timeout), 1, CONF_MS_MAX },
    { "total_timeout", CONF_MSEC, offsetof(sl_provider_conf_t, total_timeout), 1, CONF_MS_MAX },
    { "keepalive_timeout", CONF_MSEC, offsetof(sl_provider_conf_t, keepalive_timeout), 1,
      CONF_MS_MAX },
    { "max_connections", CONF_UINT, offsetof(sl_provider_conf_t, max_connections), 1, 100000 },
    { "max_idle", CONF_UINT, offsetof(sl_provider_conf_t, max_idle), 0, 100000 },
    { NULL, CONF_BOOL, 0, 0, 0 },
};

static const char *const conf_strategies[] = {
    [SL_STRATEGY_FALLBACK] = "fallback",
    [SL_STRATEGY_WEIGHTED] = "weighted",
    [SL_STRATEGY_CHEAPEST] = "cheapest",
    [SL_STRATEGY_FASTEST] = "fastest",
};

/* Hop-by-hop and framing headers: the upstream client owns them. */
static const char *const conf_reserved_headers[] = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade",
    NULL,
};


int
sl_conf_load(const char *path, sl_conf_t **out, char *err, size_t errlen)
{
    return conf_load(path, sl_provider_find, 0, out, err, errlen);
}


int
sl_conf_load_flags(const char *path, unsigned flags, sl_conf_t **out, char *err, size_t errlen)
{
    return conf_load(path, sl_provider_find, flags, out, err, errlen);
}


int
sl_conf_load_with(const char *path, sl_conf_find_kind_cb find, sl_conf_t **out, char *err,
                  size_t errlen)
{
    return conf_load(path, find, 0, out, err, errlen);
}


typedef struct conf_load_arg {
    sl_conf_t *conf;
} conf_load_arg_t;


/* conf_with_doc callback of conf_load: the document becomes a configuration. */
static int
conf_load_doc(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg)
{
    conf_load_arg_t *la = arg;
    int rc;

    (void) root; /* conf_parse_root finds it and checks its type itself */
    cx->conf = sl_pcalloc(cx->pool, sizeof(sl_conf_t));
    cx->conf->pool = cx->pool;
    cx->conf->file = sl_pstrdup(cx->pool, cx->file);
    conf_defaults(cx->conf);
    rc = conf_parse_root(cx);
    if (rc == 0) {
        la->conf = cx->conf;
    }
    return rc;
}


static int
conf_load(const char *path, sl_conf_find_kind_cb find, unsigned flags, sl_conf_t **out, char *err,
          size_t errlen)
{
    conf_load_arg_t la = { NULL };
    sl_pool_t *pool;
    int rc;

    *out = NULL;
    pool = sl_pool_create(0);
    if (pool == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: out of memory", path);
        }
        return -ENOMEM;
    }
    rc = conf_with_doc(path, pool, find, flags, conf_load_doc, &la, err, errlen);
    if (rc != 0) {
        /* this also wipes the secrets resolved so far */
        sl_pool_destroy(pool);
        return rc;
    }
    *out = la.conf;
    return 0;
}


void
sl_conf_destroy(sl_conf_t *conf)
{
    if (conf == NULL) {
        return;
    }
    sl_pool_destroy(conf->pool);
}


const sl_provider_conf_t *
sl_conf_provider(const sl_conf_t *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->nproviders; i++) {
        const char *p = conf->providers[i].name;

        if (strlen(p) == len && memcmp(p, name, len) == 0) {
            return &conf->providers[i];
        }
    }
    return NULL;
}


const sl_model_conf_t *
sl_conf_model(const sl_conf_t *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->nmodels; i++) {
        const char *p = conf->models[i].name;

        if (strlen(p) == len && memcmp(p, name, len) == 0) {
            return &conf->models[i];
        }
    }
    return NULL;
}


int
sl_conf_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        { "", 1000 },   { "ms", 1 },      { "s", 1000 },
        { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    const char *p = s;
    uint64_t v;

    if (s == NULL || conf_digits(&p, &v) != 0) {
        return SL_ECONF;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult) {
                return SL_ECONF;
            }
            *ms = v * units[i].mult;
            return 0;
        }
    }
    return SL_ECONF;
}


int
sl_conf_parse_size(const char *s, size_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        { "", 1 },
        { "B", 1 },
        { "KiB", CONF_KIB },
        { "MiB", CONF_MIB },
        { "GiB", CONF_GIB },
        { "TiB", CONF_TIB },
        { "KB", 1000ULL },
        { "kB", 1000ULL },
        { "MB", 1000ULL * 1000 },
        { "GB", 1000ULL * 1000 * 1000 },
        { "TB", 1000ULL * 1000 * 1000 * 1000 },
    };
    const char *p = s;
    uint64_t v;

    if (s == NULL || conf_digits(&p, &v) != 0) {
        return SL_ECONF;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult || v * units[i].mult > SIZE_MAX) {
                return SL_ECONF;
            }
            *bytes = (size_t) (v * units[i].mult);
            return 0;
        }
    }
    return SL_ECONF;
}


int
sl_conf_parse_listen(const char *s, sl_listen_conf_t *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_p, *close, *colon;
    struct sockaddr_in *sin;
    struct sockaddr_in6 *sin6;
    size_t hlen;
    uint64_t port;
    bool v6 = false;

    if (s == NULL || *s == '\0') {
        return SL_ECONF;
    }

    if (*s == '[') {
        close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return SL_ECONF;
        }
        hlen = (size_t) (close - (s + 1));
        if (hlen == 0 || hlen >= sizeof(host)) {
            return SL_ECONF;
        }
        memcpy(host, s + 1, hlen);
        port_p = close + 2;
        v6 = true;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            hlen = 0;
            port_p = s;
        } else {
            hlen = (size_t) (colon - s);
            /* a bare IPv6 address: the port would be ambiguous */
            if (hlen >= sizeof(host) || memchr(s, ':', hlen) != NULL) {
                return SL_ECONF;
            }
            memcpy(host, s, hlen);
            port_p = colon + 1;
        }
    }
    host[hlen] = '\0';

    if (conf_parse_uint(port_p, &port) != 0 || port < 1 || port > 65535) {
        return SL_ECONF;
    }

    memset(&out->addr, 0, sizeof(out->addr));
    if (v6) {
        sin6 = (struct sockaddr_in6 *) &out->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            return SL_ECONF;
        }
        out->addrlen = sizeof(*sin6);
    } else {
        sin = (struct sockaddr_in *) &out->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        if (hlen == 0) {
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (strcmp(host, "localhost") == 0) {
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            return SL_ECONF;
        }
        out->addrlen = sizeof(*sin);
    }
    out->text = s;
    return 0;
}


const sl_conf_node_t *
sl_conf_get(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key)
{
    const yaml_node_pair_t *pair;
    sl_conf_node_t *k, *v;
    size_t klen = strlen(key);

    if (map == NULL || !conf_is_map(map)) {
        return NULL;
    }
    for (pair = map->y->data.mapping.pairs.start; pair < map->y->data.mapping.pairs.top; pair++) {
        k = conf_node(cx, pair->key);
        if (k->y->type == YAML_SCALAR_NODE && k->y->data.scalar.length == klen
            && memcmp(k->y->data.scalar.value, key, klen) == 0) {
            k->consumed = true;
            v = conf_node(cx, pair->value);
            return conf_is_null(v) ? NULL : v;
        }
    }
    return NULL;
}


const char *
sl_conf_node_str(const sl_conf_node_t *n, size_t *len)
{
    if (n == NULL || n->y->type != YAML_SCALAR_NODE) {
        return NULL;
    }
    if (len != NULL) {
        *len = n->y->data.scalar.length;
    }
    return (const char *) n->y->data.scalar.value;
}


int
sl_conf_get_str(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, const char **out)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, key);

    if (n == NULL) {
        return 0;
    }
    return conf_scalar(cx, n, key, out);
}


int
sl_conf_get_bool(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, bool *out)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, key);
    const char *s;

    if (n == NULL) {
        return 0;
    }
    if (conf_scalar(cx, n, key, &s) != 0) {
        return SL_ECONF;
    }
    if (conf_parse_bool(s, out) != 0) {
        return sl_conf_errorf(cx, n, "%s must be true or false", key);
    }
    return 0;
}


int
sl_conf_get_uint(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, uint64_t min,
                 uint64_t max, uint64_t *out)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, key);
    const char *s;
    uint64_t v;

    if (n == NULL) {
        return 0;
    }
    if (conf_scalar(cx, n, key, &s) != 0) {
        return SL_ECONF;
    }
    if (conf_parse_uint(s, &v) != 0 || v < min || v > max) {
        return sl_conf_errorf(cx, n, "%s must be a whole number between %" PRIu64 " and %" PRIu64,
                              key, min, max);
    }
    *out = v;
    return 0;
}


int
sl_conf_get_duration(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, uint64_t min,
                     uint64_t max, uint64_t *ms)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, key);
    char lo[32], hi[32];
    const char *s;
    uint64_t v;

    if (n == NULL) {
        return 0;
    }
    if (conf_scalar(cx, n, key, &s) != 0) {
        return SL_ECONF;
    }
    if (sl_conf_parse_duration(s, &v) != 0) {
        return sl_conf_errorf(
            cx, n, "invalid duration \"%s\" for %s (use e.g. 750ms, 10s, 5m, 1h or 2d)", s, key);
    }
    if (v < min || v > max) {
        return sl_conf_errorf(cx, n, "%s must be between %s and %s", key,
                              conf_fmt_ms(lo, sizeof(lo), min), conf_fmt_ms(hi, sizeof(hi), max));
    }
    *ms = v;
    return 0;
}


int
sl_conf_get_size(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, size_t min,
                 size_t max, size_t *bytes)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, key);
    char lo[32], hi[32];
    const char *s;
    size_t v;

    if (n == NULL) {
        return 0;
    }
    if (conf_scalar(cx, n, key, &s) != 0) {
        return SL_ECONF;
    }
    if (sl_conf_parse_size(s, &v) != 0) {
        return sl_conf_errorf(
            cx, n, "invalid size \"%s\" for %s (use e.g. 512, 64KiB, 8MiB, 1GiB or 10KB)", s, key);
    }
    if (v < min || v > max) {
        return sl_conf_errorf(cx, n, "%s must be between %s and %s", key,
                              conf_fmt_size(lo, sizeof(lo), min),
                              conf_fmt_size(hi, sizeof(hi), max));
    }
    *bytes = v;
    return 0;
}


int
sl_conf_get_secret(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, sl_secret_t *out)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, key);

    if (n == NULL) {
        return 0;
    }
    return conf_secret(cx, n, key, out);
}


int
sl_conf_check_unknown(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *where)
{
    const yaml_node_pair_t *pair;
    const sl_conf_node_t *k;

    if (map == NULL || !conf_is_map(map)) {
        return 0;
    }
    for (pair = map->y->data.mapping.pairs.start; pair < map->y->data.mapping.pairs.top; pair++) {
        k = conf_node(cx, pair->key);
        if (k->consumed) {
            continue;
        }
        if (where == NULL) {
            return sl_conf_errorf(cx, k, "unknown key \"%s\"", conf_text(k));
        }
        return sl_conf_errorf(cx, k, "unknown key \"%s\" in %s", conf_text(k), where);
    }
    return 0;
}


int
sl_conf_errorf(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *fmt, ...)
{
    va_list ap;
    size_t line = 1, col = 1;

    if (n != NULL) {
        line = n->y->start_mark.line + 1;
        col = n->y->start_mark.column + 1;
    }
    va_start(ap, fmt);
    conf_verror_at(cx, line, col, fmt, ap);
    va_end(ap);
    return SL_ECONF;
}


sl_pool_t *
sl_conf_pool(sl_conf_ctx_t *cx)
{
    return cx->pool;
}


const sl_provider_conf_t *
sl_conf_current_provider(sl_conf_ctx_t *cx)
{
    return cx->provider;
}


bool
sl_conf_node_is_map(const sl_conf_node_t *n)
{
    return n != NULL && conf_is_map(n);
}


size_t
sl_conf_map_size(const sl_conf_node_t *map)
{
    if (map == NULL || !conf_is_map(map)) {
        return 0;
    }
    return conf_map_len(map);
}


int
sl_conf_map_pair(sl_conf_ctx_t *cx, const sl_conf_node_t *map, size_t i, const sl_conf_node_t **key,
                 const sl_conf_node_t **val)
{
    const yaml_node_pair_t *pair;
    sl_conf_node_t *k, *v;

    if (i >= sl_conf_map_size(map)) {
        return SL_ENOTFOUND;
    }
    pair = &map->y->data.mapping.pairs.start[i];
    k = conf_node(cx, pair->key);
    v = conf_node(cx, pair->value);
    k->consumed = true;
    *key = k;
    *val = conf_is_null(v) ? NULL : v;
    return 0;
}


int
sl_conf_parse_file(const char *path, sl_pool_t *pool, sl_conf_parse_cb fn, void *arg, char *err,
                   size_t errlen)
{
    return conf_with_doc(path, pool, NULL, 0, fn, arg, err, errlen);
}


/*
 * Reads path, loads its one YAML document and calls fn with the root node
 * (NULL for an empty document) in a context whose messages carry
 * file:line:col. Allocations go to pool. The only place libyaml parses.
 */
static int
conf_with_doc(const char *path, sl_pool_t *pool, sl_conf_find_kind_cb find, unsigned flags,
              sl_conf_parse_cb fn, void *arg, char *err, size_t errlen)
{
    sl_conf_ctx_t cx;
    yaml_parser_t parser;
    const sl_conf_node_t *root = NULL;
    yaml_node_t *y;
    char *buf = NULL;
    size_t len = 0;
    int rc;

    memset(&cx, 0, sizeof(cx));
    cx.file = path;
    cx.pool = pool;
    cx.find = find;
    cx.flags = flags;
    cx.err = err;
    cx.errlen = errlen;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }

    rc = conf_read_file(&cx, path, &buf, &len);
    if (rc != 0) {
        return rc;
    }

    if (yaml_parser_initialize(&parser) == 0) {
        conf_error_at(&cx, 0, 0, "out of memory");
        rc = -ENOMEM;
        goto out_free_buf;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);

    if (yaml_parser_load(&parser, &cx.doc) == 0) {
        conf_syntax_error(&cx, &parser, buf, len);
        rc = SL_ECONF;
        goto out_delete_parser;
    }

    rc = conf_check_single(&cx, &parser, buf, len);
    if (rc != 0) {
        goto out_delete_document;
    }

    cx.nnodes = (size_t) (cx.doc.nodes.top - cx.doc.nodes.start);
    if (cx.nnodes > 0) {
        cx.nodes = calloc(cx.nnodes, sizeof(sl_conf_node_t));
        if (cx.nodes == NULL) {
            conf_error_at(&cx, 0, 0, "out of memory");
            rc = -ENOMEM;
            goto out_delete_document;
        }
        for (size_t i = 0; i < cx.nnodes; i++) {
            cx.nodes[i].y = &cx.doc.nodes.start[i];
        }
    }

    rc = conf_check_keys(&cx);
    if (rc == 0) {
        y = yaml_document_get_root_node(&cx.doc);
        if (y != NULL && !conf_is_null(&cx.nodes[y - cx.doc.nodes.start])) {
            root = &cx.nodes[y - cx.doc.nodes.start];
        }
        rc = fn(&cx, root, arg);
        if (rc != 0 && !cx.failed) {
            /* a callback that forgot its message still must not fail silently */
            conf_error_at(&cx, 0, 0, "%s", sl_strerror(rc));
        }
    }

    free(cx.nodes);
out_delete_document:
    yaml_document_delete(&cx.doc);
out_delete_parser:
    yaml_parser_delete(&parser);
out_free_buf:
    free(buf);
    return rc;
}


/* Reads the whole file: libyaml reader errors only give a byte offset, which we map back. */
static int
conf_read_file(sl_conf_ctx_t *cx, const char *path, char **out, size_t *outlen)
{
    struct stat st;
    char *buf;
    size_t len = 0;
    ssize_t n;
    int fd, err;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        conf_error_at(cx, 0, 0, "open() failed (%d: %s)", err, strerror(err));
        return -err;
    }
    if (fstat(fd, &st) != 0) {
        err = errno;
        conf_error_at(cx, 0, 0, "fstat() failed (%d: %s)", err, strerror(err));
        goto out_close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        err = EINVAL;
        conf_error_at(cx, 0, 0, "not a regular file");
        goto out_close_fd;
    }
    if ((uint64_t) st.st_size > CONF_FILE_MAX) {
        err = EFBIG;
        conf_error_at(cx, 0, 0, "the configuration is larger than 16MiB");
        goto out_close_fd;
    }

    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL) {
        err = ENOMEM;
        conf_error_at(cx, 0, 0, "out of memory");
        goto out_close_fd;
    }
    /* the file may change under us: read at most what we allocated */
    while (len < (size_t) st.st_size) {
        n = read(fd, buf + len, (size_t) st.st_size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = errno;
            conf_error_at(cx, 0, 0, "read() failed (%d: %s)", err, strerror(err));
            free(buf);
            goto out_close_fd;
        }
        if (n == 0) {
            break;
        }
        len += (size_t) n;
    }
    buf[len] = '\0';
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;

out_close_fd:
    close(fd);
    return -err;
}


static void
conf_syntax_error(sl_conf_ctx_t *cx, const yaml_parser_t *parser, const char *buf, size_t len)
{
    size_t line = 1, col = 1;
    const char *problem = parser->problem != NULL ? parser->problem : "unknown error";

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        conf_error_at(cx, 0, 0, "out of memory");
        return;

    case YAML_READER_ERROR:
        /* only a byte offset is known: count lines and characters up to it */
        for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char) buf[i] & 0xc0) != 0x80) {
                col++;
            }
        }
        conf_error_at(cx, line, col, "syntax error: %s", problem);
        return;

    default:
        line = parser->problem_mark.line + 1;
        col = parser->problem_mark.column + 1;
        if (parser->context != NULL) {
            conf_error_at(cx, line, col, "syntax error: %s (%s at line %zu, column %zu)", problem,
                          parser->context, parser->context_mark.line + 1,
                          parser->context_mark.column + 1);
        } else {
            conf_error_at(cx, line, col, "syntax error: %s", problem);
        }
        return;
    }
}


/* A stream of several documents is almost always a paste accident: refuse it. */
static int
conf_check_single(sl_conf_ctx_t *cx, yaml_parser_t *parser, const char *buf, size_t len)
{
    yaml_document_t extra;
    yaml_node_t *root;
    int rc = 0;

    if (yaml_parser_load(parser, &extra) == 0) {
        conf_syntax_error(cx, parser, buf, len);
        return SL_ECONF;
    }
    root = yaml_document_get_root_node(&extra);
    if (root != NULL) {
        rc = conf_error_at(cx, extra.start_mark.line + 1, extra.start_mark.column + 1,
                           "only one YAML document is allowed");
    }
    yaml_document_delete(&extra);
    return rc;
}


static int
conf_error_at(sl_conf_ctx_t *cx, size_t line, size_t col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_verror_at(cx, line, col, fmt, ap);
    va_end(ap);
    return SL_ECONF;
}


/* line 0 means no position is known (the file itself could not be read). */
static void
conf_verror_at(sl_conf_ctx_t *cx, size_t line, size_t col, const char *fmt, va_list ap)
{
    int n;

    if (cx->failed) {
        return;
    }
    cx->failed = true;
    if (cx->err == NULL || cx->errlen == 0) {
        return;
    }

    if (line > 0) {
        n = snprintf(cx->err, cx->errlen, "%s:%zu:%zu: ", cx->file, line, col);
    } else {
        n = snprintf(cx->err, cx->errlen, "%s: ", cx->file);
    }
    if (n >= 0 && (size_t) n < cx->errlen) {
        vsnprintf(cx->err + n, cx->errlen - (size_t) n, fmt, ap);
    }
    /* values quoted in messages may hold escapes like "\n": keep one line */
    for (char *p = cx->err; *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
}


static sl_conf_node_t *
conf_node(sl_conf_ctx_t *cx, yaml_node_item_t index)
{
    return &cx->nodes[index - 1];
}


static bool
conf_is_null(const sl_conf_node_t *n)
{
    const char *s;

    if (n->y->type != YAML_SCALAR_NODE || n->y->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    s = (const char *) n->y->data.scalar.value;
    return strcmp(s, "") == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0
           || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}


static bool
conf_is_map(const sl_conf_node_t *n)
{
    return n->y->type == YAML_MAPPING_NODE;
}


static bool
conf_is_seq(const sl_conf_node_t *n)
{
    return n->y->type == YAML_SEQUENCE_NODE;
}


static const char *
conf_type_name(const sl_conf_node_t *n)
{
    switch (n->y->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return conf_is_null(n) ? "an empty value" : "a scalar";
    }
}


/* A scalar's text for messages; "" for anything else. */
static const char *
conf_text(const sl_conf_node_t *n)
{
    const char *s = sl_conf_node_str(n, NULL);

    return s != NULL ? s : "";
}


static size_t
conf_map_len(const sl_conf_node_t *n)
{
    return (size_t) (n->y->data.mapping.pairs.top - n->y->data.mapping.pairs.start);
}


static size_t
conf_seq_len(const sl_conf_node_t *n)
{
    return (size_t) (n->y->data.sequence.items.top - n->y->data.sequence.items.start);
}


/* Before any value is read: every key is a scalar and no mapping repeats one. */
static int
conf_check_keys(sl_conf_ctx_t *cx)
{
    const yaml_node_pair_t *a, *b;
    const sl_conf_node_t *ka, *kb;
    const yaml_node_t *y;

    for (size_t i = 0; i < cx->nnodes; i++) {
        y = cx->nodes[i].y;
        if (y->type != YAML_MAPPING_NODE) {
            continue;
        }
        for (a = y->data.mapping.pairs.start; a < y->data.mapping.pairs.top; a++) {
            ka = conf_node(cx, a->key);
            if (ka->y->type != YAML_SCALAR_NODE) {
                return sl_conf_errorf(cx, ka, "mapping keys must be scalars, not %s",
                                      conf_type_name(ka));
            }
            for (b = y->data.mapping.pairs.start; b < a; b++) {
                kb = conf_node(cx, b->key);
                if (ka->y->data.scalar.length == kb->y->data.scalar.length
                    && memcmp(ka->y->data.scalar.value, kb->y->data.scalar.value,
                              ka->y->data.scalar.length)
                           == 0) {
                    return sl_conf_errorf(cx, ka, "duplicate key \"%s\"", conf_text(ka));
                }
            }
        }
    }
    return 0;
}


/* Copies a scalar's text into the generation pool. */
static int
conf_scalar(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char **out)
{
    const yaml_node_t *y = n->y;

    if (y->type != YAML_SCALAR_NODE) {
        return sl_conf_errorf(cx, n, "%s must be a scalar value, not %s", what, conf_type_name(n));
    }
    if (strlen((const char *) y->data.scalar.value) != y->data.scalar.length) {
        return sl_conf_errorf(cx, n, "%s must not contain NUL characters", what);
    }
    *out = sl_pstrndup(cx->pool, (const char *) y->data.scalar.value, y->data.scalar.length);
    return 0;
}


static int
conf_nonempty(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char **out)
{
    const char *s;

    if (conf_scalar(cx, n, what, &s) != 0) {
        return SL_ECONF;
    }
    if (*s == '\0') {
        return sl_conf_errorf(cx, n, "%s must not be empty", what);
    }
    *out = s;
    return 0;
}


/* An optional mapping under parent: *out is NULL when absent or null. */
static int
conf_section(sl_conf_ctx_t *cx, const sl_conf_node_t *parent, const char *key,
             const sl_conf_node_t **out)
{
    const sl_conf_node_t *n = sl_conf_get(cx, parent, key);

    *out = NULL;
    if (n != NULL && !conf_is_map(n)) {
        return sl_conf_errorf(cx, n, "%s must be a mapping, not %s", key, conf_type_name(n));
    }
    *out = n;
    return 0;
}


static int
conf_read_fields(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const conf_field_t *f, void *base)
{
    const sl_conf_node_t *n;
    char *p;
    uint64_t v;
    int rc = 0;

    for (; f->key != NULL; f++) {
        p = (char *) base + f->offset;
        switch (f->type) {
        case CONF_BOOL:
            rc = sl_conf_get_bool(cx, map, f->key, (bool *) p);
            break;

        case CONF_UINT:
            v = *(unsigned *) p;
            rc = sl_conf_get_uint(cx, map, f->key, f->min, f->max, &v);
            *(unsigned *) p = (unsigned) v;
            break;

        case CONF_MSEC:
            rc = sl_conf_get_duration(cx, map, f->key, f->min, f->max, (uint64_t *) p);
            break;

        case CONF_SIZE:
            rc = sl_conf_get_size(cx, map, f->key, (size_t) f->min, (size_t) f->max, (size_t *) p);
            break;

        case CONF_PATH:
            n = sl_conf_get(cx, map, f->key);
            if (n != NULL) {
                rc = conf_nonempty(cx, n, f->key, (const char **) p);
            }
            break;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


static void
conf_defaults(sl_conf_t *conf)
{
    conf->workers = conf_cpus();
    conf->reuse_port = true;
    conf->pid_file = "var/sluice.pid";
    conf->error_log = "stderr";
    conf->log_level = SL_LOG_NOTICE;
    conf->access_log = NULL;
    conf->backlog = 511;
    conf->max_connections = 4096;
    conf->header_timeout = 10 * 1000;
    conf->body_timeout = 30 * 1000;
    conf->keepalive_timeout = 75 * 1000;
    conf->send_timeout = 60 * 1000;
    conf->drain_timeout = 30 * 1000;
    conf->stop_timeout = 5 * 1000;
    conf->max_body = 8 * CONF_MIB;
    conf->max_header_size = 32 * CONF_KIB;
    conf->max_headers = 100;
    conf->keepalive_requests = 1000;
    conf->cors.enabled = false;
    conf->cors.max_age = 600;
    conf->storage_path = "var/";
    conf->storage_map_size = CONF_GIB;
    conf->storage_sync_interval = 1000;
    conf->ledger_retention = 90ull * 24 * 3600 * 1000;
    conf->ledger_enabled = true;
}


static void
conf_provider_defaults(sl_provider_conf_t *p)
{
    p->tls_verify = true;
    p->allow_direct = true;
    p->connect_timeout = 10 * 1000;
    p->first_byte_timeout = 300 * 1000;
    p->idle_timeout = 120 * 1000;
    p->total_timeout = 600 * 1000;
    p->keepalive_timeout = 60 * 1000;
    p->max_connections = 256;
    p->max_idle = 64;
}


static int
conf_parse_root(sl_conf_ctx_t *cx)
{
    const sl_conf_node_t *root = NULL, *n;
    yaml_node_t *y = yaml_document_get_root_node(&cx->doc);

    if (y != NULL) {
        root = &cx->nodes[y - cx->doc.nodes.start];
        if (conf_is_null(root)) {
            root = NULL;
        } else if (!conf_is_map(root)) {
            return sl_conf_errorf(cx, root, "the configuration must be a mapping, not %s",
                                  conf_type_name(root));
        }
    }

    if (conf_section(cx, root, "server", &n) != 0 || conf_parse_server(cx, n) != 0) {
        return SL_ECONF;
    }
    if (conf_section(cx, root, "auth", &n) != 0 || conf_parse_auth(cx, n) != 0) {
        return SL_ECONF;
    }
    if (conf_section(cx, root, "storage", &n) != 0 || conf_parse_storage(cx, n) != 0) {
        return SL_ECONF;
    }
    if (conf_section(cx, root, "ledger", &n) != 0
        || conf_read_fields(cx, n, conf_ledger_fields, cx->conf) != 0
        || sl_conf_check_unknown(cx, n, "ledger") != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, root, "pricing");
    if (n != NULL
        && (conf_nonempty(cx, n, "pricing", &cx->conf->pricing_file) != 0
            || conf_parse_pricing(cx, n) != 0)) {
        return SL_ECONF;
    }
    /* providers before models, whatever the order in the file: targets name providers */
    if (conf_section(cx, root, "providers", &n) != 0 || conf_parse_providers(cx, n) != 0) {
        return SL_ECONF;
    }
    if (conf_section(cx, root, "models", &n) != 0 || conf_parse_models(cx, n) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, root, NULL);
}


static int
conf_parse_server(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    if (conf_parse_listens(cx, map) != 0 || conf_parse_workers(cx, map) != 0
        || conf_parse_logs(cx, map) != 0
        || conf_read_fields(cx, map, conf_server_fields, cx->conf) != 0
        || conf_parse_cors(cx, map) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "server");
}


static int
conf_parse_listens(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *n;

    n = sl_conf_get(cx, map, "listen");
    if (n == NULL) {
        conf->listen = sl_pcalloc(cx->pool, sizeof(sl_listen_conf_t));
        conf->nlisten = 1;
        (void) sl_conf_parse_listen("127.0.0.1:4141", &conf->listen[0]);
    } else if (conf_parse_listen_list(cx, n) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "admin_listen");
    if (n == NULL) {
        return 0;
    }
    conf->admin_listen = sl_pcalloc(cx->pool, sizeof(sl_listen_conf_t));
    if (conf_parse_address(cx, n, "admin_listen", conf->admin_listen) != 0) {
        return SL_ECONF;
    }
    for (size_t j = 0; j < conf->nlisten; j++) {
        if (conf_same_addr(conf->admin_listen, &conf->listen[j])) {
            return sl_conf_errorf(cx, n, "admin_listen \"%s\" duplicates a listen address",
                                  conf->admin_listen->text);
        }
    }
    return 0;
}


/* One address or a list; the same address twice is an error. */
static int
conf_parse_listen_list(sl_conf_ctx_t *cx, const sl_conf_node_t *n)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *item;
    size_t count;

    if (conf_is_seq(n)) {
        count = conf_seq_len(n);
        if (count == 0) {
            return sl_conf_errorf(cx, n, "listen needs at least one address");
        }
    } else if (n->y->type == YAML_SCALAR_NODE) {
        count = 1;
    } else {
        return sl_conf_errorf(cx, n, "listen must be an address or a list of addresses, not %s",
                              conf_type_name(n));
    }

    conf->listen = sl_pcalloc(cx->pool, count * sizeof(sl_listen_conf_t));
    for (size_t i = 0; i < count; i++) {
        item = conf_is_seq(n) ? conf_node(cx, n->y->data.sequence.items.start[i]) : n;
        if (conf_parse_address(cx, item, "listen", &conf->listen[i]) != 0) {
            return SL_ECONF;
        }
        for (size_t j = 0; j < i; j++) {
            if (conf_same_addr(&conf->listen[i], &conf->listen[j])) {
                return sl_conf_errorf(cx, item, "duplicate listen address \"%s\"",
                                      conf->listen[i].text);
            }
        }
        conf->nlisten = i + 1;
    }
    return 0;
}


static int
conf_parse_address(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                   sl_listen_conf_t *out)
{
    const char *s;

    if (conf_scalar(cx, n, what, &s) != 0) {
        return SL_ECONF;
    }
    if (sl_conf_parse_listen(s, out) != 0) {
        return sl_conf_errorf(cx, n, "invalid %s address \"%s\" (use %s)", what, s,
                              "host:port, [ipv6]:port, :port or port, with port 1..65535");
    }
    return 0;
}


static int
conf_parse_workers(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, "workers");
    const char *s;
    uint64_t v;

    if (n == NULL) {
        return 0;
    }
    if (conf_scalar(cx, n, "workers", &s) != 0) {
        return SL_ECONF;
    }
    if (strcmp(s, "auto") == 0) {
        cx->conf->workers = conf_cpus();
        return 0;
    }
    if (conf_parse_uint(s, &v) != 0 || v < 1 || v > CONF_WORKERS_MAX) {
        return sl_conf_errorf(cx, n, "workers must be \"auto\" or a number between 1 and %d",
                              CONF_WORKERS_MAX);
    }
    cx->conf->workers = (unsigned) v;
    return 0;
}


static int
conf_parse_logs(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *n;
    const char *s;

    n = sl_conf_get(cx, map, "error_log");
    if (n != NULL && conf_nonempty(cx, n, "error_log", &conf->error_log) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "log_level");
    if (n != NULL) {
        if (conf_scalar(cx, n, "log_level", &s) != 0) {
            return SL_ECONF;
        }
        if (sl_log_level_parse(s, &conf->log_level) != 0) {
            return sl_conf_errorf(cx, n, "invalid log_level \"%s\" (use %s)", s,
                                  "emerg, alert, crit, error, warn, notice, info or debug");
        }
    }

    n = sl_conf_get(cx, map, "access_log");
    if (n != NULL) {
        if (conf_nonempty(cx, n, "access_log", &s) != 0) {
            return SL_ECONF;
        }
        conf->access_log = strcmp(s, "off") == 0 ? NULL : s;
    }
    return 0;
}


static int
conf_parse_cors(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_cors_conf_t *cors = &cx->conf->cors;
    const sl_conf_node_t *n, *o, *item;
    uint64_t ms;
    size_t count;

    if (conf_section(cx, map, "cors", &n) != 0) {
        return SL_ECONF;
    }
    if (n == NULL) {
        return 0;
    }

    o = sl_conf_get(cx, n, "allow_origins");
    if (o == NULL) {
        return sl_conf_errorf(cx, n, "cors needs allow_origins");
    }
    if (!conf_is_seq(o)) {
        return sl_conf_errorf(cx, o, "allow_origins must be a list, not %s", conf_type_name(o));
    }
    count = conf_seq_len(o);
    if (count == 0) {
        return sl_conf_errorf(cx, o, "allow_origins needs at least one origin");
    }
    cors->origins = sl_pcalloc(cx->pool, count * sizeof(const char *));
    for (size_t i = 0; i < count; i++) {
        item = conf_node(cx, o->y->data.sequence.items.start[i]);
        if (conf_scalar(cx, item, "allow_origins entry", &cors->origins[i]) != 0) {
            return SL_ECONF;
        }
        if (!conf_valid_origin(cors->origins[i])) {
            return sl_conf_errorf(cx, item,
                                  "invalid CORS origin \"%s\" (use \"*\" or scheme://host[:port])",
                                  cors->origins[i]);
        }
    }
    cors->norigins = count;

    ms = cors->max_age * 1000;
    if (sl_conf_get_duration(cx, n, "max_age", 0, CONF_MS_MAX, &ms) != 0) {
        return SL_ECONF;
    }
    cors->max_age = ms / 1000;
    cors->enabled = true;
    return sl_conf_check_unknown(cx, n, "server.cors");
}


static int
conf_parse_auth(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *n, *item;
    size_t count;

    n = sl_conf_get(cx, map, "static_keys");
    if (n != NULL) {
        if (!conf_is_seq(n)) {
            return sl_conf_errorf(cx, n, "static_keys must be a list, not %s", conf_type_name(n));
        }
        count = conf_seq_len(n);
        conf->static_keys = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_secret_t));
        for (size_t i = 0; i < count; i++) {
            item = conf_node(cx, n->y->data.sequence.items.start[i]);
            if (conf_secret(cx, item, "static_keys entry", &conf->static_keys[i]) != 0) {
                return SL_ECONF;
            }
            conf->nstatic_keys = i + 1;
        }
    }

    if (sl_conf_get_secret(cx, map, "admin_key", &conf->admin_key) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "auth");
}


static int
conf_parse_storage(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    if (conf_read_fields(cx, map, conf_storage_fields, cx->conf) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "storage");
}


/*
 * Loads the table `pricing:` names into the generation pool, so a reload
 * swaps prices together with everything else. An unreadable file is
 * reported at the `pricing:` line; the table's own errors keep their
 * file:line:col, which point into the pricing file.
 */
static int
conf_parse_pricing(sl_conf_ctx_t *cx, const sl_conf_node_t *n)
{
    sl_pricing_t *pricing;
    char err[1024];
    int rc;

    rc = sl_pricing_load(cx->conf->pricing_file, cx->pool, &pricing, err, sizeof(err));
    if (rc == 0) {
        cx->conf->pricing = pricing;
        return 0;
    }
    if (rc != SL_ECONF) {
        return sl_conf_errorf(cx, n, "cannot load pricing: %s", err);
    }
    if (!cx->failed) {
        cx->failed = true;
        if (cx->err != NULL && cx->errlen > 0) {
            snprintf(cx->err, cx->errlen, "%s", err);
        }
    }
    return SL_ECONF;
}


static int
conf_parse_providers(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const yaml_node_pair_t *pair;
    size_t count, i = 0;

    if (map == NULL) {
        return 0;
    }
    count = conf_map_len(map);
    conf->providers = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_provider_conf_t));
    for (pair = map->y->data.mapping.pairs.start; pair < map->y->data.mapping.pairs.top; pair++) {
        if (conf_parse_provider(cx, conf_node(cx, pair->key), conf_node(cx, pair->value),
                                &conf->providers[i])
            != 0) {
            return SL_ECONF;
        }
        conf->nproviders = ++i;
    }
    return 0;
}


static int
conf_parse_provider(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *map,
                    sl_provider_conf_t *p)
{
    char where[CONF_WHERE_MAX];
    const sl_conf_node_t *n;
    const char *s;
    int rc;

    if (conf_scalar(cx, key, "provider name", &p->name) != 0) {
        return SL_ECONF;
    }
    if (!conf_valid_name(p->name)) {
        return sl_conf_errorf(
            cx, key, "invalid provider name \"%s\" (use 1 to 64 of A-Z a-z 0-9 _ . -)", p->name);
    }
    if (!conf_is_map(map)) {
        return sl_conf_errorf(cx, map, "provider \"%s\" must be a mapping, not %s", p->name,
                              conf_type_name(map));
    }
    conf_provider_defaults(p);

    n = sl_conf_get(cx, map, "kind");
    if (n == NULL) {
        return sl_conf_errorf(cx, key, "provider \"%s\" needs a kind", p->name);
    }
    if (conf_scalar(cx, n, "kind", &p->kind) != 0) {
        return SL_ECONF;
    }
    p->ops = cx->find(p->kind);
    if (p->ops == NULL) {
        return sl_conf_errorf(cx, n, "unknown provider kind \"%s\"", p->kind);
    }

    n = sl_conf_get(cx, map, "base_url");
    if (n == NULL && p->ops->default_base_url != NULL) {
        /* a public service's own endpoint: errors, if any, point at the provider */
        if (conf_parse_base_url(cx, key, p->ops->default_base_url, p) != 0) {
            return SL_ECONF;
        }
    } else if (n == NULL) {
        return sl_conf_errorf(cx, key, "provider \"%s\" needs a base_url", p->name);
    } else if (conf_scalar(cx, n, "base_url", &s) != 0 || conf_parse_base_url(cx, n, s, p) != 0) {
        return SL_ECONF;
    }

    if (sl_conf_get_secret(cx, map, "api_key", &p->api_key) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "ca_file");
    if (n != NULL
        && (conf_nonempty(cx, n, "ca_file", &p->ca_file) != 0
            || conf_check_readable(cx, n, "ca_file", p->ca_file) != 0)) {
        return SL_ECONF;
    }

    if (conf_read_fields(cx, map, conf_provider_fields, p) != 0) {
        return SL_ECONF;
    }
    if (p->max_idle > p->max_connections) {
        n = sl_conf_get(cx, map, "max_idle");
        return sl_conf_errorf(cx, n != NULL ? n : key,
                              "max_idle (%u) must not exceed max_connections (%u)", p->max_idle,
                              p->max_connections);
    }

    n = sl_conf_get(cx, map, "headers");
    if (n != NULL && conf_parse_headers(cx, n, p) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, map, "forward_headers");
    if (n != NULL && conf_parse_forward_headers(cx, n, p) != 0) {
        return SL_ECONF;
    }

    if (p->ops->conf_parse != NULL) {
        cx->provider = p;
        rc = p->ops->conf_parse(cx, map, &p->ext);
        cx->provider = NULL;
        if (rc != 0 || cx->failed) {
            return sl_conf_errorf(cx, map, "provider \"%s\" of kind \"%s\" is misconfigured",
                                  p->name, p->kind);
        }
    }

    snprintf(where, sizeof(where), "provider \"%s\"", p->name);
    return sl_conf_check_unknown(cx, map, where);
}


/*
 * http[s]://host[:port][/path]. The host is a name or an IPv4 literal, or an
 * IPv6 literal in brackets; user info, queries and fragments are refused
 * (credentials belong in api_key, and adapters append their own paths).
 */
static int
conf_parse_base_url(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *url,
                    sl_provider_conf_t *p)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *auth, *end, *host, *close, *colon, *port_p = NULL;
    struct in6_addr in6;
    size_t hlen, len;
    uint64_t port;
    uint16_t def;
    bool v6 = false;

    for (const char *c = url; *c != '\0'; c++) {
        if ((unsigned char) *c <= 0x20 || *c == 0x7f) {
            return sl_conf_errorf(cx, n, "base_url must not contain spaces or control characters");
        }
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        p->tls = true;
        auth = url + 8;
        def = 443;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p->tls = false;
        auth = url + 7;
        def = 80;
    } else {
        return sl_conf_errorf(cx, n, "base_url \"%s\" must start with http:// or https://", url);
    }
    if (strpbrk(url, "?#") != NULL) {
        return sl_conf_errorf(cx, n, "base_url \"%s\" must not have a query or fragment", url);
    }
    end = auth + strcspn(auth, "/");
    if (memchr(auth, '@', (size_t) (end - auth)) != NULL) {
        /* do not echo the URL: user info is often a password */
        return sl_conf_errorf(cx, n, "base_url must not contain user info (use api_key)");
    }

    if (*auth == '[') {
        close = memchr(auth, ']', (size_t) (end - auth));
        if (close == NULL) {
            return sl_conf_errorf(cx, n, "base_url \"%s\" has an unterminated IPv6 address", url);
        }
        host = auth + 1;
        hlen = (size_t) (close - host);
        if (hlen == 0 || hlen >= sizeof(addr)) {
            return sl_conf_errorf(cx, n, "base_url \"%s\" has an invalid IPv6 address", url);
        }
        memcpy(addr, host, hlen);
        addr[hlen] = '\0';
        if (inet_pton(AF_INET6, addr, &in6) != 1) {
            return sl_conf_errorf(cx, n, "base_url \"%s\" has an invalid IPv6 address", url);
        }
        if (close + 1 < end) {
            if (close[1] != ':') {
                return sl_conf_errorf(cx, n, "base_url \"%s\" has an invalid host", url);
            }
            port_p = close + 2;
        }
        v6 = true;
    } else {
        host = auth;
        colon = memchr(auth, ':', (size_t) (end - auth));
        hlen = (size_t) ((colon != NULL ? colon : end) - auth);
        if (colon != NULL) {
            port_p = colon + 1;
        }
        if (!conf_valid_host(host, hlen)) {
            return sl_conf_errorf(cx, n, "base_url \"%s\" has an invalid host", url);
        }
    }

    if (port_p != NULL) {
        const char *q = port_p;

        if (conf_digits(&q, &port) != 0 || q != end || port < 1 || port > 65535) {
            return sl_conf_errorf(cx, n, "base_url \"%s\" has an invalid port", url);
        }
    } else {
        port = def;
    }

    len = strlen(url);
    while (len > (size_t) (end - url) && url[len - 1] == '/') {
        len--;
    }
    p->base_url = sl_pstrndup(cx->pool, url, len);
    p->base_path = sl_pstrndup(cx->pool, end, len - (size_t) (end - url));
    p->host = sl_pstrndup(cx->pool, host, hlen);
    p->port = (uint16_t) port;
    if (port != def) {
        p->host_header =
            sl_psprintf(cx->pool, v6 ? "[%s]:%u" : "%s:%u", p->host, (unsigned) p->port);
    } else {
        p->host_header = v6 ? sl_psprintf(cx->pool, "[%s]", p->host) : p->host;
    }
    return 0;
}


static int
conf_parse_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_provider_conf_t *p)
{
    const yaml_node_pair_t *pair;
    const sl_conf_node_t *k, *v;
    sl_header_conf_t *h;
    size_t count;

    if (!conf_is_map(n)) {
        return sl_conf_errorf(cx, n, "headers must be a mapping, not %s", conf_type_name(n));
    }
    count = conf_map_len(n);
    p->headers = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_header_conf_t));
    for (pair = n->y->data.mapping.pairs.start; pair < n->y->data.mapping.pairs.top; pair++) {
        k = conf_node(cx, pair->key);
        v = conf_node(cx, pair->value);
        h = &p->headers[p->nheaders];
        if (conf_scalar(cx, k, "header name", &h->name) != 0) {
            return SL_ECONF;
        }
        if (!conf_is_token(h->name)) {
            return sl_conf_errorf(cx, k, "invalid header name \"%s\"", h->name);
        }
        for (size_t i = 0; conf_reserved_headers[i] != NULL; i++) {
            if (strcasecmp(h->name, conf_reserved_headers[i]) == 0) {
                return sl_conf_errorf(cx, k, "header \"%s\" is set by sluice itself", h->name);
            }
        }
        for (size_t i = 0; i < p->nheaders; i++) {
            if (strcasecmp(h->name, p->headers[i].name) == 0) {
                return sl_conf_errorf(cx, k, "duplicate header \"%s\"", h->name);
            }
        }
        /* never quote a header value: it may well be a credential */
        if (v->y->type != YAML_SCALAR_NODE) {
            return sl_conf_errorf(cx, v, "header \"%s\" must have a scalar value, not %s", h->name,
                                  conf_type_name(v));
        }
        if (strlen((const char *) v->y->data.scalar.value) != v->y->data.scalar.length
            || strpbrk((const char *) v->y->data.scalar.value, "\r\n") != NULL) {
            return sl_conf_errorf(cx, v, "value of header \"%s\" must not contain CR, LF or NUL",
                                  h->name);
        }
        h->value =
            conf_is_null(v) ? "" : sl_pstrdup(cx->pool, (const char *) v->y->data.scalar.value);
        p->nheaders++;
    }
    return 0;
}


/* forward_headers: [name, ...]: opt-in client headers (core/headers.h) this provider gets. */
static int
conf_parse_forward_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_provider_conf_t *p)
{
    const sl_conf_node_t *item;
    const char *name;
    size_t count;

    if (!conf_is_seq(n)) {
        return sl_conf_errorf(cx, n, "forward_headers must be a list of header names, not %s",
                              conf_type_name(n));
    }
    count = conf_seq_len(n);
    p->forward_headers = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(const char *));
    for (size_t i = 0; i < count; i++) {
        item = conf_node(cx, n->y->data.sequence.items.start[i]);
        if (conf_scalar(cx, item, "forward_headers entry", &name) != 0) {
            return SL_ECONF;
        }
        if (!conf_is_token(name)) {
            return sl_conf_errorf(cx, item, "invalid header name \"%s\"", name);
        }
        if (sl_headers_class((sl_str_t){ name, strlen(name) }) == SL_HEADERS_NEVER) {
            return sl_conf_errorf(cx, item,
                                  "header \"%s\" is never forwarded (a credential, hop-by-hop, "
                                  "or set by sluice itself)",
                                  name);
        }
        for (size_t k = 0; k < p->nheaders; k++) {
            if (strcasecmp(name, p->headers[k].name) == 0) {
                return sl_conf_errorf(cx, item,
                                      "header \"%s\" is set by this provider's headers: and "
                                      "cannot also be forwarded from the client",
                                      name);
            }
        }
        for (size_t k = 0; k < p->nforward_headers; k++) {
            if (strcasecmp(name, p->forward_headers[k]) == 0) {
                return sl_conf_errorf(cx, item, "duplicate header \"%s\" in forward_headers", name);
            }
        }
        p->forward_headers[p->nforward_headers++] = name;
    }
    return 0;
}


static int
conf_check_readable(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char *path)
{
    struct stat st;
    int fd, err;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        return sl_conf_errorf(cx, n, "%s \"%s\" cannot be read (%d: %s)", what, path, err,
                              strerror(err));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sl_conf_errorf(cx, n, "%s \"%s\" is not a regular file", what, path);
    }
    close(fd);
    return 0;
}


static int
conf_parse_models(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const yaml_node_pair_t *pair;
    size_t count, i = 0;

    if (map == NULL) {
        return 0;
    }
    count = conf_map_len(map);
    conf->models = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_model_conf_t));
    for (pair = map->y->data.mapping.pairs.start; pair < map->y->data.mapping.pairs.top; pair++) {
        if (conf_parse_model(cx, conf_node(cx, pair->key), conf_node(cx, pair->value),
                             &conf->models[i])
            != 0) {
            return SL_ECONF;
        }
        conf->nmodels = ++i;
    }
    return 0;
}


static int
conf_parse_model(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *map,
                 sl_model_conf_t *m)
{
    char where[CONF_WHERE_MAX];
    const sl_conf_node_t *n;
    const char *s;
    size_t count, i;

    if (conf_scalar(cx, key, "model name", &m->name) != 0) {
        return SL_ECONF;
    }
    if (!conf_valid_model_name(m->name)) {
        return sl_conf_errorf(cx, key, "invalid model name \"%s\" (%s)", m->name,
                              "1 to 256 characters, no spaces or control characters");
    }
    if (!conf_is_map(map)) {
        return sl_conf_errorf(cx, map, "model \"%s\" must be a mapping, not %s", m->name,
                              conf_type_name(map));
    }

    n = sl_conf_get(cx, map, "targets");
    if (n == NULL) {
        return sl_conf_errorf(cx, key, "model \"%s\" needs targets", m->name);
    }
    if (!conf_is_seq(n)) {
        return sl_conf_errorf(cx, n, "targets must be a list, not %s", conf_type_name(n));
    }
    count = conf_seq_len(n);
    if (count == 0) {
        return sl_conf_errorf(cx, n, "model \"%s\" needs at least one target", m->name);
    }
    m->targets = sl_pcalloc(cx->pool, count * sizeof(sl_target_t));
    for (i = 0; i < count; i++) {
        if (conf_parse_target(cx, conf_node(cx, n->y->data.sequence.items.start[i]), &m->targets[i])
            != 0) {
            return SL_ECONF;
        }
    }
    m->ntargets = count;

    m->strategy = SL_STRATEGY_FALLBACK;
    n = sl_conf_get(cx, map, "strategy");
    if (n != NULL) {
        if (conf_scalar(cx, n, "strategy", &s) != 0) {
            return SL_ECONF;
        }
        for (i = 0; i < sizeof(conf_strategies) / sizeof(conf_strategies[0]); i++) {
            if (strcmp(s, conf_strategies[i]) == 0) {
                break;
            }
        }
        if (i == sizeof(conf_strategies) / sizeof(conf_strategies[0])) {
            return sl_conf_errorf(
                cx, n, "invalid strategy \"%s\" (use fallback, weighted, cheapest or fastest)", s);
        }
        m->strategy = (sl_strategy_e) i;
    }

    snprintf(where, sizeof(where), "model \"%s\"", m->name);
    return sl_conf_check_unknown(cx, map, where);
}


/* "provider/model" or {target: "provider/model", weight: N}. */
static int
conf_parse_target(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_target_t *t)
{
    const sl_conf_node_t *n = item;
    const char *text, *slash;
    uint64_t weight = 1;

    if (conf_is_map(item)) {
        n = sl_conf_get(cx, item, "target");
        if (n == NULL) {
            return sl_conf_errorf(cx, item, "a target mapping needs a \"target\" key");
        }
        if (sl_conf_get_uint(cx, item, "weight", 1, 1000, &weight) != 0
            || sl_conf_check_unknown(cx, item, "target") != 0) {
            return SL_ECONF;
        }
    } else if (item->y->type != YAML_SCALAR_NODE) {
        return sl_conf_errorf(cx, item, "a target must be \"provider/model\" or a mapping, not %s",
                              conf_type_name(item));
    }

    if (conf_scalar(cx, n, "target", &text) != 0) {
        return SL_ECONF;
    }
    slash = strchr(text, '/');
    if (slash == NULL || slash == text || slash[1] == '\0') {
        return sl_conf_errorf(cx, n, "target \"%s\" must be \"provider/model\"", text);
    }
    t->provider = sl_conf_provider(cx->conf, text, (size_t) (slash - text));
    if (t->provider == NULL) {
        return sl_conf_errorf(cx, n, "unknown provider \"%.*s\" in target \"%s\"",
                              (int) (slash - text), text, text);
    }
    t->model = slash + 1;
    t->weight = (unsigned) weight;
    return 0;
}


/*
 * A secret is always a reference; its value never reaches a message. The
 * reference text itself is safe to print: it names a variable or a path.
 */
static int
conf_secret(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, sl_secret_t *out)
{
    const char *ref;

    if (conf_scalar(cx, n, what, &ref) != 0) {
        return SL_ECONF;
    }
    if ((cx->flags & SL_CONF_NO_SECRETS) != 0
        && (strncmp(ref, "env:", 4) == 0 || strncmp(ref, "file:", 5) == 0)) {
        /* a storage command: it needs no provider key, so none is read */
        out->ref = ref;
        out->value = NULL;
        out->len = 0;
        return 0;
    }
    if (strncmp(ref, "env:", 4) == 0) {
        return conf_secret_env(cx, n, what, ref, out);
    }
    if (strncmp(ref, "file:", 5) == 0) {
        return conf_secret_file(cx, n, what, ref, out);
    }
    if (strncmp(ref, "vault:", 6) == 0) {
        const char *name = ref + 6;
        size_t len = strlen(name);

        if (len == 0 || len > 128 || !conf_valid_name(name)) {
            return sl_conf_errorf(cx, n,
                                  "%s reference \"%s\" needs a secret name after vault: "
                                  "(1..128 of A-Z a-z 0-9 . _ -)",
                                  what, ref);
        }
        out->ref = ref;
        out->value = NULL;
        out->len = 0;
        out->vault = true;
        out->where =
            sl_psprintf(cx->pool, "%s:%zu:%zu", cx->file, (size_t) n->y->start_mark.line + 1,
                        (size_t) n->y->start_mark.column + 1);
        return 0;
    }
    return sl_conf_errorf(cx, n, "%s must be a reference (%s), never a literal secret", what,
                          "env:NAME, file:PATH or vault:NAME");
}


static int
conf_secret_env(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char *ref,
                sl_secret_t *out)
{
    const char *name = ref + 4, *value;

    if (!((*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z') || *name == '_')) {
        return sl_conf_errorf(cx, n, "%s reference \"%s\" needs a variable name after env:", what,
                              ref);
    }
    for (const char *c = name; *c != '\0'; c++) {
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
              || *c == '_')) {
            return sl_conf_errorf(cx, n, "%s reference \"%s\" has an invalid variable name", what,
                                  ref);
        }
    }
    value = getenv(name);
    if (value == NULL || *value == '\0') {
        return sl_conf_errorf(cx, n, "environment variable %s (%s) is not set or empty", name,
                              what);
    }
    if (strpbrk(value, "\r\n") != NULL) {
        return sl_conf_errorf(cx, n, "environment variable %s (%s) must hold one line", name, what);
    }
    conf_secret_store(cx, ref, value, strlen(value), out);
    return 0;
}


static int
conf_secret_file(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char *ref,
                 sl_secret_t *out)
{
    const char *path = ref + 5;
    struct stat st;
    char *buf;
    size_t len = 0, got;
    ssize_t r;
    int fd, err, rc = SL_ECONF;

    if (*path == '\0') {
        return sl_conf_errorf(cx, n, "%s reference \"file:\" needs a path", what);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        return sl_conf_errorf(cx, n, "cannot read secret file \"%s\" for %s (%d: %s)", path, what,
                              err, strerror(err));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        sl_conf_errorf(cx, n, "secret file \"%s\" for %s is not a regular file", path, what);
        goto out_close_fd;
    }
    if ((uint64_t) st.st_size > CONF_SECRET_MAX) {
        sl_conf_errorf(cx, n, "secret file \"%s\" for %s is larger than 64KiB", path, what);
        goto out_close_fd;
    }

    buf = malloc(CONF_SECRET_MAX + 1);
    if (buf == NULL) {
        sl_conf_errorf(cx, n, "out of memory");
        goto out_close_fd;
    }
    while (len < CONF_SECRET_MAX) {
        r = read(fd, buf + len, CONF_SECRET_MAX - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            err = errno;
            sl_conf_errorf(cx, n, "cannot read secret file \"%s\" for %s (%d: %s)", path, what, err,
                           strerror(err));
            got = len;
            goto out_free_buf;
        }
        if (r == 0) {
            break;
        }
        len += (size_t) r;
    }
    got = len;

    while (len > 0
           && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '
               || buf[len - 1] == '\t')) {
        len--;
    }
    buf[len] = '\0';
    if (len == 0) {
        sl_conf_errorf(cx, n, "secret file \"%s\" for %s is empty", path, what);
        goto out_free_buf;
    }
    if (memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL
        || memchr(buf, '\r', len) != NULL) {
        sl_conf_errorf(cx, n, "secret file \"%s\" for %s must hold one line", path, what);
        goto out_free_buf;
    }
    conf_secret_store(cx, ref, buf, len, out);
    rc = 0;

out_free_buf:
    conf_wipe_n(buf, got);
    free(buf);
out_close_fd:
    close(fd);
    return rc;
}


static void
conf_secret_store(sl_conf_ctx_t *cx, const char *ref, const char *value, size_t len,
                  sl_secret_t *out)
{
    char *copy = sl_pstrndup(cx->pool, value, len);

    sl_pool_on_destroy(cx->pool, conf_wipe, copy);
    out->ref = sl_pstrdup(cx->pool, ref);
    out->value = copy;
    out->len = len;
}


/* Pool cleanup: zero a plaintext secret so it does not outlive its generation in memory. */
static void
conf_wipe(void *arg)
{
    conf_wipe_n(arg, strlen(arg));
}


/* volatile, so the stores are not dropped as dead before free() */
static void
conf_wipe_n(char *p, size_t n)
{
    volatile char *v = p;

    for (size_t i = 0; i < n; i++) {
        v[i] = '\0';
    }
}


/* One or more decimal digits; fails on none or on overflow. Advances *pp. */
static int
conf_digits(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (*p < '0' || *p > '9') {
        return SL_ECONF;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10) {
            return SL_ECONF;
        }
        v = v * 10 + (uint64_t) (*p - '0');
    }
    *pp = p;
    *out = v;
    return 0;
}


static int
conf_parse_uint(const char *s, uint64_t *out)
{
    const char *p = s;

    if (conf_digits(&p, out) != 0 || *p != '\0') {
        return SL_ECONF;
    }
    return 0;
}


static int
conf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "on", NULL };
    static const char *const no[] = { "false", "False", "FALSE", "no", "off", NULL };

    for (size_t i = 0; yes[i] != NULL; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    }
    for (size_t i = 0; no[i] != NULL; i++) {
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return SL_ECONF;
}


/* The largest unit that divides ms exactly, for range messages. */
static const char *
conf_fmt_ms(char *buf, size_t size, uint64_t ms)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {
        { 86400000, "d" },
        { 3600000, "h" },
        { 60000, "m" },
        { 1000, "s" },
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, size, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
            return buf;
        }
    }
    snprintf(buf, size, "%" PRIu64 "ms", ms);
    return buf;
}


static const char *
conf_fmt_size(char *buf, size_t size, uint64_t bytes)
{
    static const struct {
        uint64_t mult;
        const char *unit;
    } units[] = {
        { CONF_TIB, "TiB" },
        { CONF_GIB, "GiB" },
        { CONF_MIB, "MiB" },
        { CONF_KIB, "KiB" },
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (bytes != 0 && bytes % units[i].mult == 0) {
            snprintf(buf, size, "%" PRIu64 "%s", bytes / units[i].mult, units[i].unit);
            return buf;
        }
    }
    snprintf(buf, size, "%" PRIu64, bytes);
    return buf;
}


static bool
conf_same_addr(const sl_listen_conf_t *a, const sl_listen_conf_t *b)
{
    const struct sockaddr_in *a4, *b4;
    const struct sockaddr_in6 *a6, *b6;

    if (a->addr.ss_family != b->addr.ss_family) {
        return false;
    }
    if (a->addr.ss_family == AF_INET) {
        a4 = (const struct sockaddr_in *) &a->addr;
        b4 = (const struct sockaddr_in *) &b->addr;
        return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
    }
    a6 = (const struct sockaddr_in6 *) &a->addr;
    b6 = (const struct sockaddr_in6 *) &b->addr;
    return a6->sin6_port == b6->sin6_port
           && memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}


static bool
conf_valid_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > CONF_NAME_MAX) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
              || *s == '_' || *s == '.' || *s == '-')) {
            return false;
        }
    }
    return true;
}


static bool
conf_valid_model_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > CONF_MODEL_MAX) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if ((unsigned char) *s <= 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}


/* "*" or scheme://host[:port], exactly as browsers send Origin. */
static bool
conf_valid_origin(const char *s)
{
    const char *host;

    if (strcmp(s, "*") == 0) {
        return true;
    }
    if (strncmp(s, "https://", 8) == 0) {
        host = s + 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        host = s + 7;
    } else {
        return false;
    }
    if (*host == '\0' || *host == ':') {
        return false;
    }
    for (; *host != '\0'; host++) {
        if (!((*host >= 'A' && *host <= 'Z') || (*host >= 'a' && *host <= 'z')
              || (*host >= '0' && *host <= '9') || *host == '.' || *host == '-' || *host == ':'
              || *host == '[' || *host == ']' || *host == '_')) {
            return false;
        }
    }
    return true;
}


static bool
conf_valid_host(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_')) {
            return false;
        }
    }
    return true;
}


/* RFC 9110 token: the only characters allowed in a header name. */
static bool
conf_is_token(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
              || strchr("!#$%&'*+-.^_`|~", *s) != NULL)) {
            return false;
        }
    }
    return true;
}


static unsigned
conf_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1) {
        return 1;
    }
    return n > CONF_WORKERS_MAX ? CONF_WORKERS_MAX : (unsigned) n;
}
