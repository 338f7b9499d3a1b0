/*
 * The sections of the configuration that describe the server itself: the
 * built-in defaults every key starts from, server: (listen and admin_listen
 * addresses, TLS with its certificate and key read and checked here, the
 * worker count, logs, timeouts and limits, CORS), auth: (static keys, the
 * admin key), storage: and ledger: (pricing: is conf_accounting.c's). Each
 * reads its mapping into cx->conf and reports the keys it does not know.
 */
#include "core/conf/conf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/http/tls.h"

#define CONF_PEM_MAX             (1024u * 1024)
#define CONF_WORKERS_MAX         256
#define CONF_TLS_SESSION_TIMEOUT (3600u * 1000) /* 1 hour */
#define CONF_TLS_SESSION_TIMEOUT_MAX \
    (7u * 86400 * 1000) /* RFC 5077: a ticket hint of at most 7 days */

static int conf_parse_listens(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_listen_list(sl_conf_ctx_t *cx, const sl_conf_node_t *n,
                                  const sl_listen_tls_t *tls);
static int conf_parse_listen_item(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                                  const sl_listen_tls_t *dflt, sl_listen_conf_t *out);
static int conf_parse_tls(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                          const sl_listen_tls_t **out);
static int conf_read_pem(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                         const char *path, bool secret, const char **out, size_t *len);
static int conf_parse_address(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                              sl_listen_conf_t *out);
static int conf_parse_workers(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_logs(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_parse_cors(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static bool conf_same_addr(const sl_listen_conf_t *a, const sl_listen_conf_t *b);
static bool conf_valid_origin(const char *s);
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
    { "commit_window", CONF_MSEC, offsetof(sl_conf_t, ledger_commit_window), 0, 1000 },
    { NULL, CONF_BOOL, 0, 0, 0 },
};


void
sl__conf_defaults(sl_conf_t *conf)
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
    conf->storage_map_size = 256 * CONF_MIB;
    conf->storage_sync_interval = 1000;
    conf->ledger_retention = 90ull * 24 * 3600 * 1000;
    conf->ledger_enabled = true;
    sl__conf_accounting_defaults(conf);
}


int
sl__conf_parse_ledger(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    const sl_conf_node_t *n;
    const char *s;

    if (sl__conf_read_fields(cx, map, conf_ledger_fields, cx->conf) != 0) {
        return SL_ECONF;
    }
    n = map != NULL ? sl_conf_get(cx, map, "on_full") : NULL;
    if (n != NULL) {
        if (sl__conf_scalar(cx, n, "on_full", &s) != 0) {
            return SL_ECONF;
        }
        if (strcmp(s, "refuse") == 0) {
            cx->conf->ledger_on_full = SL_ON_FULL_REFUSE;
        } else if (strcmp(s, "serve") == 0) {
            cx->conf->ledger_on_full = SL_ON_FULL_SERVE;
        } else {
            return sl_conf_errorf(cx, n, "invalid on_full \"%s\" (use refuse or serve)", s);
        }
    }
    return sl_conf_check_unknown(cx, map, "ledger");
}


int
sl__conf_parse_server(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    if (conf_parse_listens(cx, map) != 0 || conf_parse_workers(cx, map) != 0
        || conf_parse_logs(cx, map) != 0
        || sl__conf_read_fields(cx, map, conf_server_fields, cx->conf) != 0
        || conf_parse_cors(cx, map) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "server");
}


/*
 * listen: an address, a mapping {address, tls}, or a list of either;
 * server.tls applies to every listen address whose item does not set its
 * own tls (false: plain). admin_listen takes the same forms, but only its
 * own tls.
 */
static int
conf_parse_listens(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const sl_listen_tls_t *tls = NULL;
    const sl_conf_node_t *n;

    n = sl_conf_get(cx, map, "tls");
    if (n != NULL && conf_parse_tls(cx, n, "server.tls", &tls) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, map, "listen");
    if (n == NULL) {
        conf->listen = sl_pcalloc(cx->pool, sizeof(sl_listen_conf_t));
        conf->nlisten = 1;
        (void) sl_conf_parse_listen("127.0.0.1:4141", &conf->listen[0]);
        conf->listen[0].tls = tls;
    } else if (conf_parse_listen_list(cx, n, tls) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "admin_listen");
    if (n == NULL) {
        return 0;
    }
    conf->admin_listen = sl_pcalloc(cx->pool, sizeof(sl_listen_conf_t));
    if (conf_parse_listen_item(cx, n, "admin_listen", NULL, conf->admin_listen) != 0) {
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


/* One item or a list of items; the same address twice is an error. */
static int
conf_parse_listen_list(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const sl_listen_tls_t *tls)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *item;
    size_t count;

    if (sl__conf_is_seq(n)) {
        count = sl__conf_seq_len(n);
        if (count == 0) {
            return sl_conf_errorf(cx, n, "listen needs at least one address");
        }
    } else if (sl__conf_is_scalar(n) || sl__conf_is_map(n)) {
        count = 1;
    } else {
        return sl_conf_errorf(cx, n, "listen must be an address or a list of addresses, not %s",
                              sl__conf_type_name(n));
    }

    conf->listen = sl_pcalloc(cx->pool, count * sizeof(sl_listen_conf_t));
    for (size_t i = 0; i < count; i++) {
        item = sl__conf_is_seq(n) ? sl__conf_seq_item(cx, n, i) : n;
        if (conf_parse_listen_item(cx, item, "listen", tls, &conf->listen[i]) != 0) {
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


/* "host:port", or {address: "host:port", tls: {cert, key} | false}; dflt when tls is not set. */
static int
conf_parse_listen_item(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                       const sl_listen_tls_t *dflt, sl_listen_conf_t *out)
{
    const sl_conf_node_t *a, *t;
    char where[64];

    out->tls = dflt;
    if (!sl__conf_is_map(n)) {
        return conf_parse_address(cx, n, what, out);
    }
    a = sl_conf_get(cx, n, "address");
    if (a == NULL) {
        return sl_conf_errorf(cx, n, "%s needs an address (e.g. {address: 0.0.0.0:4443, tls: ...})",
                              what);
    }
    if (conf_parse_address(cx, a, what, out) != 0) {
        return SL_ECONF;
    }
    t = sl_conf_get(cx, n, "tls");
    snprintf(where, sizeof(where), "%s %s tls", what, out->text);
    if (t != NULL && conf_parse_tls(cx, t, where, &out->tls) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, n, what);
}


/*
 * tls: {cert: FILE, key: FILE, session_tickets: BOOL, session_timeout:
 * DURATION} reads and checks both PEM files; false (or off, no) means plain
 * HTTP and stores NULL.
 */
static int
conf_parse_tls(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
               const sl_listen_tls_t **out)
{
    const sl_conf_node_t *cn, *kn;
    sl_listen_tls_t *tls;
    char msg[512];
    uint64_t timeout_ms;
    bool on;

    if (sl__conf_is_scalar(n) && sl__conf_parse_bool(sl__conf_text(n), &on) == 0 && !on) {
        *out = NULL;
        return 0;
    }
    if (!sl__conf_is_map(n)) {
        return sl_conf_errorf(cx, n, "%s must be {cert: FILE, key: FILE, ...} or false, not %s",
                              what, sl__conf_type_name(n));
    }
    tls = sl_pcalloc(cx->pool, sizeof(*tls));
    cn = sl_conf_get(cx, n, "cert");
    kn = sl_conf_get(cx, n, "key");
    if (cn == NULL || kn == NULL) {
        return sl_conf_errorf(cx, n, "%s needs both cert and key (PEM files)", what);
    }
    tls->session_tickets = true;
    timeout_ms = CONF_TLS_SESSION_TIMEOUT;
    if (sl__conf_nonempty(cx, cn, "cert", &tls->cert_file) != 0
        || sl__conf_nonempty(cx, kn, "key", &tls->key_file) != 0
        || sl_conf_get_bool(cx, n, "session_tickets", &tls->session_tickets) != 0
        || sl_conf_get_duration(cx, n, "session_timeout", 1000, CONF_TLS_SESSION_TIMEOUT_MAX,
                                &timeout_ms)
               != 0
        || sl_conf_check_unknown(cx, n, what) != 0) {
        return SL_ECONF;
    }
    tls->session_timeout = (uint32_t) (timeout_ms / 1000);
    if ((cx->flags & SL_CONF_NO_SECRETS) != 0) {
        /* a command that serves nothing: the key file may well be unreadable here */
        *out = tls;
        return 0;
    }
    if (conf_read_pem(cx, cn, "certificate", tls->cert_file, false, &tls->cert_pem, &tls->cert_len)
            != 0
        || conf_read_pem(cx, kn, "private key", tls->key_file, true, &tls->key_pem, &tls->key_len)
               != 0) {
        return SL_ECONF;
    }
    if (sl_tls_check_server_pem(tls->cert_pem, tls->cert_len, tls->key_pem, tls->key_len, msg,
                                sizeof(msg))
        != 0) {
        return sl_conf_errorf(cx, strncmp(msg, "private key", 11) == 0 ? kn : cn,
                              "%s: %s (cert \"%s\", key \"%s\")", what, msg, tls->cert_file,
                              tls->key_file);
    }
    *out = tls;
    return 0;
}


/* Reads a PEM file whole into the generation pool, NUL-terminated; a secret is wiped later. */
static int
conf_read_pem(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char *path,
              bool secret, const char **out, size_t *len)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    ssize_t r;
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
    if ((uint64_t) st.st_size > CONF_PEM_MAX) {
        close(fd);
        return sl_conf_errorf(cx, n, "%s \"%s\" is larger than 1MiB", what, path);
    }
    buf = sl_palloc(cx->pool, (size_t) st.st_size + 1);
    if (secret) {
        buf[0] = '\0';
        sl_pool_on_destroy(cx->pool, sl__conf_wipe, buf);
    }
    while (got < (size_t) st.st_size) {
        r = read(fd, buf + got, (size_t) st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            err = errno;
            buf[got] = '\0';
            close(fd);
            return sl_conf_errorf(cx, n, "%s \"%s\" cannot be read (%d: %s)", what, path, err,
                                  strerror(err));
        }
        if (r == 0) {
            break;
        }
        got += (size_t) r;
    }
    close(fd);
    buf[got] = '\0';
    if (got == 0 || memchr(buf, '\0', got) != NULL) {
        return sl_conf_errorf(cx, n, "%s \"%s\" is %s", what, path,
                              got == 0 ? "empty" : "not a PEM file");
    }
    *out = buf;
    *len = got;
    return 0;
}


static int
conf_parse_address(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                   sl_listen_conf_t *out)
{
    const char *s;

    if (sl__conf_scalar(cx, n, what, &s) != 0) {
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
    if (sl__conf_scalar(cx, n, "workers", &s) != 0) {
        return SL_ECONF;
    }
    if (strcmp(s, "auto") == 0) {
        cx->conf->workers = conf_cpus();
        return 0;
    }
    if (sl__conf_parse_uint(s, &v) != 0 || v < 1 || v > CONF_WORKERS_MAX) {
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
    if (n != NULL && sl__conf_nonempty(cx, n, "error_log", &conf->error_log) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "log_level");
    if (n != NULL) {
        if (sl__conf_scalar(cx, n, "log_level", &s) != 0) {
            return SL_ECONF;
        }
        if (sl_log_level_parse(s, &conf->log_level) != 0) {
            return sl_conf_errorf(cx, n, "invalid log_level \"%s\" (use %s)", s,
                                  "emerg, alert, crit, error, warn, notice, info or debug");
        }
    }

    n = sl_conf_get(cx, map, "access_log");
    if (n != NULL) {
        if (sl__conf_nonempty(cx, n, "access_log", &s) != 0) {
            return SL_ECONF;
        }
        conf->access_log = strcmp(s, "off") == 0 ? NULL : s;
    }

    n = sl_conf_get(cx, map, "access_log_format");
    if (n != NULL) {
        if (sl__conf_scalar(cx, n, "access_log_format", &s) != 0) {
            return SL_ECONF;
        }
        if (strcmp(s, "json") != 0 && strcmp(s, "text") != 0) {
            return sl_conf_errorf(cx, n, "invalid access_log_format \"%s\" (use text or json)", s);
        }
        conf->access_log_json = strcmp(s, "json") == 0;
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

    if (sl__conf_section(cx, map, "cors", &n) != 0) {
        return SL_ECONF;
    }
    if (n == NULL) {
        return 0;
    }

    o = sl_conf_get(cx, n, "allow_origins");
    if (o == NULL) {
        return sl_conf_errorf(cx, n, "cors needs allow_origins");
    }
    if (!sl__conf_is_seq(o)) {
        return sl_conf_errorf(cx, o, "allow_origins must be a list, not %s", sl__conf_type_name(o));
    }
    count = sl__conf_seq_len(o);
    if (count == 0) {
        return sl_conf_errorf(cx, o, "allow_origins needs at least one origin");
    }
    cors->origins = sl_pcalloc(cx->pool, count * sizeof(const char *));
    for (size_t i = 0; i < count; i++) {
        item = sl__conf_seq_item(cx, o, i);
        if (sl__conf_scalar(cx, item, "allow_origins entry", &cors->origins[i]) != 0) {
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


int
sl__conf_parse_auth(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *n, *item;
    size_t count;

    n = sl_conf_get(cx, map, "static_keys");
    if (n != NULL) {
        if (!sl__conf_is_seq(n)) {
            return sl_conf_errorf(cx, n, "static_keys must be a list, not %s",
                                  sl__conf_type_name(n));
        }
        count = sl__conf_seq_len(n);
        conf->static_keys = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_secret_t));
        for (size_t i = 0; i < count; i++) {
            item = sl__conf_seq_item(cx, n, i);
            if (sl__conf_secret(cx, item, "static_keys entry", &conf->static_keys[i]) != 0) {
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


int
sl__conf_parse_storage(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    if (sl__conf_read_fields(cx, map, conf_storage_fields, cx->conf) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "storage");
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


static unsigned
conf_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1) {
        return 1;
    }
    return n > CONF_WORKERS_MAX ? CONF_WORKERS_MAX : (unsigned) n;
}
