/*
 * The providers: section. Each provider gets its defaults, then its kind
 * (which finds the adapter in the registry), its base_url split into scheme,
 * host, port and path, its credentials (api_key: one secret reference or a
 * list), an extra CA file, timeouts and pool limits, and the extra headers
 * sent upstream; last, the adapter's conf_parse hook reads the keys only it
 * knows, and whatever nobody consumed is reported as unknown.
 */
#include "core/conf/conf_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/http/headers.h"
#include "providers/provider.h"

#define CONF_CREDS_MAX 64 /* credentials per provider */

static void conf_provider_defaults(sl_provider_conf_t *p);
static int conf_parse_provider(sl_conf_ctx_t *cx, const sl_conf_node_t *key,
                               const sl_conf_node_t *map, sl_provider_conf_t *p);
static int conf_parse_forward_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n,
                                      sl_provider_conf_t *p);
static int conf_parse_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_provider_conf_t *p);
static int conf_check_readable(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                               const char *path);
static int conf_parse_api_keys(sl_conf_ctx_t *cx, const sl_conf_node_t *map, sl_provider_conf_t *p);
static bool conf_valid_host(const char *s, size_t len);


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

/* Hop-by-hop and framing headers: the upstream client owns them. */
static const char *const conf_reserved_headers[] = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade",
    NULL,
};


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


int
sl__conf_parse_providers(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *k, *v;
    size_t count;

    if (map == NULL) {
        return 0;
    }
    count = sl__conf_map_len(map);
    conf->providers = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_provider_conf_t));
    for (size_t i = 0; i < count; i++) {
        sl__conf_map_at(cx, map, i, &k, &v);
        if (conf_parse_provider(cx, k, v, &conf->providers[i]) != 0) {
            return SL_ECONF;
        }
        conf->nproviders = i + 1;
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

    if (sl__conf_scalar(cx, key, "provider name", &p->name) != 0) {
        return SL_ECONF;
    }
    if (!sl__conf_valid_name(p->name)) {
        return sl_conf_errorf(
            cx, key, "invalid provider name \"%s\" (use 1 to 64 of A-Z a-z 0-9 _ . -)", p->name);
    }
    if (!sl__conf_is_map(map)) {
        return sl_conf_errorf(cx, map, "provider \"%s\" must be a mapping, not %s", p->name,
                              sl__conf_type_name(map));
    }
    conf_provider_defaults(p);

    n = sl_conf_get(cx, map, "kind");
    if (n == NULL) {
        return sl_conf_errorf(cx, key, "provider \"%s\" needs a kind", p->name);
    }
    if (sl__conf_scalar(cx, n, "kind", &p->kind) != 0) {
        return SL_ECONF;
    }
    p->ops = cx->find(p->kind);
    if (p->ops == NULL) {
        return sl_conf_errorf(cx, n, "unknown provider kind \"%s\"", p->kind);
    }

    n = sl_conf_get(cx, map, "base_url");
    if (n == NULL && p->ops->default_base_url != NULL) {
        /* a public service's own endpoint: errors, if any, point at the provider */
        if (sl__conf_parse_url(cx, key, "base_url", "api_key", p->ops->default_base_url, p) != 0) {
            return SL_ECONF;
        }
    } else if (n == NULL) {
        return sl_conf_errorf(cx, key, "provider \"%s\" needs a base_url", p->name);
    } else if (sl__conf_scalar(cx, n, "base_url", &s) != 0
               || sl__conf_parse_url(cx, n, "base_url", "api_key", s, p) != 0) {
        return SL_ECONF;
    }

    if (conf_parse_api_keys(cx, map, p) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "ca_file");
    if (n != NULL
        && (sl__conf_nonempty(cx, n, "ca_file", &p->ca_file) != 0
            || conf_check_readable(cx, n, "ca_file", p->ca_file) != 0)) {
        return SL_ECONF;
    }

    if (sl__conf_read_fields(cx, map, conf_provider_fields, p) != 0) {
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
 * what names the value in messages ("base_url"), secrets where credentials
 * go instead ("api_key").
 */
int
sl__conf_parse_url(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                   const char *secrets, const char *url, sl_provider_conf_t *p)
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
            return sl_conf_errorf(cx, n, "%s must not contain spaces or control characters", what);
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
        return sl_conf_errorf(cx, n, "%s \"%s\" must start with http:// or https://", what, url);
    }
    if (strpbrk(url, "?#") != NULL) {
        return sl_conf_errorf(cx, n, "%s \"%s\" must not have a query or fragment", what, url);
    }
    end = auth + strcspn(auth, "/");
    if (memchr(auth, '@', (size_t) (end - auth)) != NULL) {
        /* do not echo the URL: user info is often a password */
        return sl_conf_errorf(cx, n, "%s must not contain user info (use %s)", what, secrets);
    }

    if (*auth == '[') {
        close = memchr(auth, ']', (size_t) (end - auth));
        if (close == NULL) {
            return sl_conf_errorf(cx, n, "%s \"%s\" has an unterminated IPv6 address", what, url);
        }
        host = auth + 1;
        hlen = (size_t) (close - host);
        if (hlen == 0 || hlen >= sizeof(addr)) {
            return sl_conf_errorf(cx, n, "%s \"%s\" has an invalid IPv6 address", what, url);
        }
        memcpy(addr, host, hlen);
        addr[hlen] = '\0';
        if (inet_pton(AF_INET6, addr, &in6) != 1) {
            return sl_conf_errorf(cx, n, "%s \"%s\" has an invalid IPv6 address", what, url);
        }
        if (close + 1 < end) {
            if (close[1] != ':') {
                return sl_conf_errorf(cx, n, "%s \"%s\" has an invalid host", what, url);
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
            return sl_conf_errorf(cx, n, "%s \"%s\" has an invalid host", what, url);
        }
    }

    if (port_p != NULL) {
        const char *q = port_p;

        if (sl__conf_digits(&q, &port) != 0 || q != end || port < 1 || port > 65535) {
            return sl_conf_errorf(cx, n, "%s \"%s\" has an invalid port", what, url);
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
    const sl_conf_node_t *k, *v;
    sl_header_conf_t *h;
    const char *s;
    size_t count, len;

    if (!sl__conf_is_map(n)) {
        return sl_conf_errorf(cx, n, "headers must be a mapping, not %s", sl__conf_type_name(n));
    }
    count = sl__conf_map_len(n);
    p->headers = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_header_conf_t));
    for (size_t j = 0; j < sl__conf_map_len(n); j++) {
        sl__conf_map_at(cx, n, j, &k, &v);
        h = &p->headers[p->nheaders];
        if (sl__conf_scalar(cx, k, "header name", &h->name) != 0) {
            return SL_ECONF;
        }
        if (!sl__conf_is_token(h->name)) {
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
        s = sl_conf_node_str(v, &len);
        if (s == NULL) {
            return sl_conf_errorf(cx, v, "header \"%s\" must have a scalar value, not %s", h->name,
                                  sl__conf_type_name(v));
        }
        if (strlen(s) != len || strpbrk(s, "\r\n") != NULL) {
            return sl_conf_errorf(cx, v, "value of header \"%s\" must not contain CR, LF or NUL",
                                  h->name);
        }
        h->value = sl__conf_is_null(v) ? "" : sl_pstrdup(cx->pool, s);
        p->nheaders++;
    }
    return 0;
}


/* forward_headers: [name, ...]: opt-in client headers (core/http/headers.h) this provider gets. */
static int
conf_parse_forward_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_provider_conf_t *p)
{
    const sl_conf_node_t *item;
    const char *name;
    size_t count;

    if (!sl__conf_is_seq(n)) {
        return sl_conf_errorf(cx, n, "forward_headers must be a list of header names, not %s",
                              sl__conf_type_name(n));
    }
    count = sl__conf_seq_len(n);
    p->forward_headers =
        sl_pcalloc(sl_conf_pool(cx), (count > 0 ? count : 1) * sizeof(const char *));
    for (size_t i = 0; i < count; i++) {
        item = sl__conf_seq_item(cx, n, i);
        if (sl__conf_scalar(cx, item, "forward_headers entry", &name) != 0) {
            return SL_ECONF;
        }
        if (!sl__conf_is_token(name)) {
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


/*
 * api_key: one secret reference or a list of them (several credentials of
 * one account, used in turn). api_key keeps the first, for code that only
 * knows one.
 */
static int
conf_parse_api_keys(sl_conf_ctx_t *cx, const sl_conf_node_t *map, sl_provider_conf_t *p)
{
    const sl_conf_node_t *n = sl_conf_get(cx, map, "api_key"), *item;
    size_t len = 1;

    if (n == NULL) {
        return 0;
    }
    if (sl__conf_is_seq(n)) {
        len = sl__conf_seq_len(n);
        if (len == 0) {
            return sl_conf_errorf(cx, n, "api_key needs at least one secret reference");
        }
        if (len > CONF_CREDS_MAX) {
            return sl_conf_errorf(cx, n, "api_key takes at most %d secret references",
                                  CONF_CREDS_MAX);
        }
    }
    p->api_keys = sl_pcalloc(cx->pool, len * sizeof(sl_secret_t));
    for (size_t i = 0; i < len; i++) {
        item = sl__conf_is_seq(n) ? sl__conf_seq_item(cx, n, i) : n;
        if (sl__conf_secret(cx, item, sl__conf_is_seq(n) ? "api_key entry" : "api_key",
                            &p->api_keys[i])
            != 0) {
            return SL_ECONF;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->api_keys[j].ref, p->api_keys[i].ref) == 0) {
                return sl_conf_errorf(cx, item, "api_key \"%s\" is listed twice",
                                      p->api_keys[i].ref);
            }
        }
        p->napi_keys = i + 1;
    }
    p->api_key = p->api_keys[0];
    return 0;
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
