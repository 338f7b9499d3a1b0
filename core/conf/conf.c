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
 * This file holds the public API, the document, the walk from its root and
 * the helpers the sections share; the sections themselves are in
 * conf_server.c, conf_providers.c and conf_models.c (see conf_internal.h).
 */
#include "core/conf/conf.h"

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
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "core/base/errno.h"
#include "core/conf/conf_internal.h"
#include "providers/registry.h"

#define CONF_FILE_MAX   (16u * 1024 * 1024)
#define CONF_SECRET_MAX (64u * 1024)
#define CONF_NAME_MAX   64

struct sl_conf_node {
    yaml_node_t *y;
    bool consumed; /* as a mapping key: some reader asked for it */
};

static int conf_load_doc(sl_conf_ctx_t *cx, const sl_conf_node_t *root, void *arg);
static int conf_load(const char *path, sl_conf_find_kind_cb find, unsigned flags, sl_conf_t **out,
                     char *err, size_t errlen);
static int conf_with_doc(const char *path, sl_pool_t *pool, sl_conf_find_kind_cb find,
                         unsigned flags, sl_conf_parse_cb fn, void *arg, char *err, size_t errlen);
static int conf_read_file(sl_conf_ctx_t *cx, const char *path, char **out, size_t *outlen);
static void conf_syntax_error(sl_conf_ctx_t *cx, const yaml_parser_t *parser, const char *buf,
                              size_t len);
static int conf_check_single(sl_conf_ctx_t *cx, yaml_parser_t *parser, const char *buf, size_t len);
static int conf_error_at(sl_conf_ctx_t *cx, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conf_verror_at(sl_conf_ctx_t *cx, size_t line, size_t col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static sl_conf_node_t *conf_node(sl_conf_ctx_t *cx, yaml_node_item_t index);
static int conf_check_keys(sl_conf_ctx_t *cx);
static int conf_parse_root(sl_conf_ctx_t *cx);
static int conf_secret_env(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                           const char *ref, sl_secret_t *out);
static int conf_secret_file(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                            const char *ref, sl_secret_t *out);
static void conf_secret_store(sl_conf_ctx_t *cx, const char *ref, const char *value, size_t len,
                              sl_secret_t *out);
static void conf_wipe_n(char *p, size_t n);
static const char *conf_fmt_ms(char *buf, size_t size, uint64_t ms);
static const char *conf_fmt_size(char *buf, size_t size, uint64_t bytes);


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
    sl__conf_defaults(cx->conf);
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

    if (s == NULL || sl__conf_digits(&p, &v) != 0) {
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

    if (s == NULL || sl__conf_digits(&p, &v) != 0) {
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

    if (sl__conf_parse_uint(port_p, &port) != 0 || port < 1 || port > 65535) {
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

    if (map == NULL || !sl__conf_is_map(map)) {
        return NULL;
    }
    for (pair = map->y->data.mapping.pairs.start; pair < map->y->data.mapping.pairs.top; pair++) {
        k = conf_node(cx, pair->key);
        if (k->y->type == YAML_SCALAR_NODE && k->y->data.scalar.length == klen
            && memcmp(k->y->data.scalar.value, key, klen) == 0) {
            k->consumed = true;
            v = conf_node(cx, pair->value);
            return sl__conf_is_null(v) ? NULL : v;
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
    return sl__conf_scalar(cx, n, key, out);
}


int
sl_conf_get_bool(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *key, bool *out)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, key);
    const char *s;

    if (n == NULL) {
        return 0;
    }
    if (sl__conf_scalar(cx, n, key, &s) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_parse_bool(s, out) != 0) {
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
    if (sl__conf_scalar(cx, n, key, &s) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_parse_uint(s, &v) != 0 || v < min || v > max) {
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
    if (sl__conf_scalar(cx, n, key, &s) != 0) {
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
    if (sl__conf_scalar(cx, n, key, &s) != 0) {
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
    return sl__conf_secret(cx, n, key, out);
}


int
sl_conf_check_unknown(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const char *where)
{
    const yaml_node_pair_t *pair;
    const sl_conf_node_t *k;

    if (map == NULL || !sl__conf_is_map(map)) {
        return 0;
    }
    for (pair = map->y->data.mapping.pairs.start; pair < map->y->data.mapping.pairs.top; pair++) {
        k = conf_node(cx, pair->key);
        if (k->consumed) {
            continue;
        }
        if (where == NULL) {
            return sl_conf_errorf(cx, k, "unknown key \"%s\"", sl__conf_text(k));
        }
        return sl_conf_errorf(cx, k, "unknown key \"%s\" in %s", sl__conf_text(k), where);
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


unsigned
sl_conf_node_line(const sl_conf_node_t *n)
{
    return n != NULL ? (unsigned) n->y->start_mark.line + 1 : 0;
}


bool
sl_conf_node_is_map(const sl_conf_node_t *n)
{
    return n != NULL && sl__conf_is_map(n);
}


size_t
sl_conf_map_size(const sl_conf_node_t *map)
{
    if (map == NULL || !sl__conf_is_map(map)) {
        return 0;
    }
    return sl__conf_map_len(map);
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
    *val = sl__conf_is_null(v) ? NULL : v;
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
    yaml_document_t doc;
    const sl_conf_node_t *root = NULL;
    yaml_node_t *y;
    char *buf = NULL;
    size_t len = 0;
    int rc;

    memset(&cx, 0, sizeof(cx));
    cx.file = path;
    cx.doc = &doc;
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

    if (yaml_parser_load(&parser, &doc) == 0) {
        conf_syntax_error(&cx, &parser, buf, len);
        rc = SL_ECONF;
        goto out_delete_parser;
    }

    rc = conf_check_single(&cx, &parser, buf, len);
    if (rc != 0) {
        goto out_delete_document;
    }

    cx.nnodes = (size_t) (doc.nodes.top - doc.nodes.start);
    if (cx.nnodes > 0) {
        cx.nodes = calloc(cx.nnodes, sizeof(sl_conf_node_t));
        if (cx.nodes == NULL) {
            conf_error_at(&cx, 0, 0, "out of memory");
            rc = -ENOMEM;
            goto out_delete_document;
        }
        for (size_t i = 0; i < cx.nnodes; i++) {
            cx.nodes[i].y = &doc.nodes.start[i];
        }
    }

    rc = conf_check_keys(&cx);
    if (rc == 0) {
        y = yaml_document_get_root_node(&doc);
        if (y != NULL && !sl__conf_is_null(&cx.nodes[y - doc.nodes.start])) {
            root = &cx.nodes[y - doc.nodes.start];
        }
        rc = fn(&cx, root, arg);
        if (rc != 0 && !cx.failed) {
            /* a callback that forgot its message still must not fail silently */
            conf_error_at(&cx, 0, 0, "%s", sl_strerror(rc));
        }
    }

    free(cx.nodes);
out_delete_document:
    yaml_document_delete(&doc);
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


bool
sl__conf_is_null(const sl_conf_node_t *n)
{
    const char *s;

    if (n->y->type != YAML_SCALAR_NODE || n->y->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    s = (const char *) n->y->data.scalar.value;
    return strcmp(s, "") == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0
           || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}


bool
sl__conf_is_map(const sl_conf_node_t *n)
{
    return n->y->type == YAML_MAPPING_NODE;
}


bool
sl__conf_is_seq(const sl_conf_node_t *n)
{
    return n->y->type == YAML_SEQUENCE_NODE;
}


bool
sl__conf_is_scalar(const sl_conf_node_t *n)
{
    return n->y->type == YAML_SCALAR_NODE;
}


const char *
sl__conf_type_name(const sl_conf_node_t *n)
{
    switch (n->y->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return sl__conf_is_null(n) ? "an empty value" : "a scalar";
    }
}


/* A scalar's text for messages; "" for anything else. */
const char *
sl__conf_text(const sl_conf_node_t *n)
{
    const char *s = sl_conf_node_str(n, NULL);

    return s != NULL ? s : "";
}


size_t
sl__conf_map_len(const sl_conf_node_t *n)
{
    return (size_t) (n->y->data.mapping.pairs.top - n->y->data.mapping.pairs.start);
}


size_t
sl__conf_seq_len(const sl_conf_node_t *n)
{
    return (size_t) (n->y->data.sequence.items.top - n->y->data.sequence.items.start);
}


const sl_conf_node_t *
sl__conf_seq_item(sl_conf_ctx_t *cx, const sl_conf_node_t *n, size_t i)
{
    return conf_node(cx, n->y->data.sequence.items.start[i]);
}


void
sl__conf_map_at(sl_conf_ctx_t *cx, const sl_conf_node_t *n, size_t i, const sl_conf_node_t **key,
                const sl_conf_node_t **val)
{
    const yaml_node_pair_t *pair = &n->y->data.mapping.pairs.start[i];

    *key = conf_node(cx, pair->key);
    *val = conf_node(cx, pair->value);
}


const char *
sl__conf_where(sl_conf_ctx_t *cx, const sl_conf_node_t *n)
{
    return sl_psprintf(cx->pool, "%s:%zu:%zu", cx->file, (size_t) n->y->start_mark.line + 1,
                       (size_t) n->y->start_mark.column + 1);
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
                                      sl__conf_type_name(ka));
            }
            for (b = y->data.mapping.pairs.start; b < a; b++) {
                kb = conf_node(cx, b->key);
                if (ka->y->data.scalar.length == kb->y->data.scalar.length
                    && memcmp(ka->y->data.scalar.value, kb->y->data.scalar.value,
                              ka->y->data.scalar.length)
                           == 0) {
                    return sl_conf_errorf(cx, ka, "duplicate key \"%s\"", sl__conf_text(ka));
                }
            }
        }
    }
    return 0;
}


/* Copies a scalar's text into the generation pool. */
int
sl__conf_scalar(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char **out)
{
    const yaml_node_t *y = n->y;

    if (y->type != YAML_SCALAR_NODE) {
        return sl_conf_errorf(cx, n, "%s must be a scalar value, not %s", what,
                              sl__conf_type_name(n));
    }
    if (strlen((const char *) y->data.scalar.value) != y->data.scalar.length) {
        return sl_conf_errorf(cx, n, "%s must not contain NUL characters", what);
    }
    *out = sl_pstrndup(cx->pool, (const char *) y->data.scalar.value, y->data.scalar.length);
    return 0;
}


int
sl__conf_nonempty(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char **out)
{
    const char *s = ""; /* gcc -O3 cannot see that sl__conf_scalar sets it whenever it returns 0 */

    if (sl__conf_scalar(cx, n, what, &s) != 0) {
        return SL_ECONF;
    }
    if (*s == '\0') {
        return sl_conf_errorf(cx, n, "%s must not be empty", what);
    }
    *out = s;
    return 0;
}


/* An optional mapping under parent: *out is NULL when absent or null. */
int
sl__conf_section(sl_conf_ctx_t *cx, const sl_conf_node_t *parent, const char *key,
                 const sl_conf_node_t **out)
{
    const sl_conf_node_t *n = sl_conf_get(cx, parent, key);

    *out = NULL;
    if (n != NULL && !sl__conf_is_map(n)) {
        return sl_conf_errorf(cx, n, "%s must be a mapping, not %s", key, sl__conf_type_name(n));
    }
    *out = n;
    return 0;
}


int
sl__conf_read_fields(sl_conf_ctx_t *cx, const sl_conf_node_t *map, const conf_field_t *f,
                     void *base)
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
                rc = sl__conf_nonempty(cx, n, f->key, (const char **) p);
            }
            break;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


static int
conf_parse_root(sl_conf_ctx_t *cx)
{
    const sl_conf_node_t *root = NULL, *n;
    yaml_node_t *y = yaml_document_get_root_node(cx->doc);

    if (y != NULL) {
        root = &cx->nodes[y - cx->doc->nodes.start];
        if (sl__conf_is_null(root)) {
            root = NULL;
        } else if (!sl__conf_is_map(root)) {
            return sl_conf_errorf(cx, root, "the configuration must be a mapping, not %s",
                                  sl__conf_type_name(root));
        }
    }

    if (sl__conf_section(cx, root, "server", &n) != 0 || sl__conf_parse_server(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "auth", &n) != 0 || sl__conf_parse_auth(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "storage", &n) != 0 || sl__conf_parse_storage(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "ledger", &n) != 0 || sl__conf_parse_ledger(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "responses", &n) != 0 || sl__conf_parse_responses(cx, n) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, root, "pricing");
    if (n != NULL && sl__conf_parse_pricing(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_parse_accounting(cx, root) != 0) {
        return SL_ECONF;
    }
    /* routing and providers before models, whatever the order in the file */
    if (sl__conf_section(cx, root, "routing", &n) != 0 || sl__conf_parse_routing(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "providers", &n) != 0 || sl__conf_parse_providers(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "guardrails", &n) != 0
        || sl__conf_parse_guardrails(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "cache", &n) != 0 || sl__conf_parse_cache(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "models", &n) != 0 || sl__conf_parse_models(cx, n) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "dashboard", &n) != 0 || sl__conf_parse_dashboard(cx, n) != 0
        || sl__conf_section(cx, root, "alerts", &n) != 0 || sl__conf_parse_alerts(cx, n) != 0) {
        return SL_ECONF;
    }
    /* also without a telemetry: section: the OTEL_* environment may turn it on */
    if (sl__conf_section(cx, root, "telemetry", &n) != 0 || sl__conf_parse_telemetry(cx, n) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, root, NULL);
}


int
sl_conf_parse_share(const char *s, unsigned *permille)
{
    const char *p = s;
    uint64_t whole, frac = 0;
    unsigned decimals = 0, max_decimals;
    bool percent;
    size_t len;

    if (s == NULL || sl__conf_digits(&p, &whole) != 0) {
        return SL_ECONF;
    }
    len = strlen(s);
    percent = len > 0 && s[len - 1] == '%';
    max_decimals = percent ? 1 : 3;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (++decimals > max_decimals) {
                return SL_ECONF;
            }
            frac = frac * 10 + (uint64_t) (*p - '0');
            p++;
        }
        if (decimals == 0) {
            return SL_ECONF;
        }
    }
    if (percent ? strcmp(p, "%") != 0 : *p != '\0') {
        return SL_ECONF;
    }
    for (; decimals < max_decimals; decimals++) {
        frac *= 10;
    }
    if (whole > 1000) {
        return SL_ECONF;
    }
    /* percent: tenths of a percent are permille; a fraction: thousandths are */
    whole = percent ? whole * 10 + frac : whole * 1000 + frac;
    if (whole > 1000) {
        return SL_ECONF;
    }
    *permille = (unsigned) whole;
    return 0;
}


/*
 * A secret is always a reference; its value never reaches a message. The
 * reference text itself is safe to print: it names a variable or a path.
 */
int
sl__conf_secret(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, sl_secret_t *out)
{
    const char *ref;

    if (sl__conf_scalar(cx, n, what, &ref) != 0) {
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

        if (len == 0 || len > 128 || !sl__conf_valid_name(name)) {
            return sl_conf_errorf(cx, n,
                                  "%s reference \"%s\" needs a secret name after vault: "
                                  "(1..128 of A-Z a-z 0-9 . _ -)",
                                  what, ref);
        }
        out->ref = ref;
        out->value = NULL;
        out->len = 0;
        out->vault = true;
        out->where = sl__conf_where(cx, n);
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

    sl_pool_on_destroy(cx->pool, sl__conf_wipe, copy);
    out->ref = sl_pstrdup(cx->pool, ref);
    out->value = copy;
    out->len = len;
}


/* Pool cleanup: zero a plaintext secret so it does not outlive its generation in memory. */
void
sl__conf_wipe(void *arg)
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
int
sl__conf_digits(const char **pp, uint64_t *out)
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


int
sl__conf_parse_uint(const char *s, uint64_t *out)
{
    const char *p = s;

    if (sl__conf_digits(&p, out) != 0 || *p != '\0') {
        return SL_ECONF;
    }
    return 0;
}


int
sl__conf_parse_bool(const char *s, bool *out)
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


bool
sl__conf_valid_name(const char *s)
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


/* RFC 9110 token: the only characters allowed in a header name. */
bool
sl__conf_is_token(const char *s)
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
