/*
 * http(s) URL parsing for the endpoints sluice posts to (core/http/url.h).
 */
#include "core/http/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/base/errno.h"

static bool url_host_ok(const char *p, size_t len);


/* A DNS name or an IPv4 literal: letters, digits, '-' and '.', not empty. */
static bool
url_host_ok(const char *p, size_t len)
{
    if (len == 0 || len > 253) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
              || c == '.')) {
            return false;
        }
    }
    return true;
}


int
sl_url_parse(sl_pool_t *pool, const char *url, sl_url_t *out, const char **why)
{
    char addr[INET6_ADDRSTRLEN + 1];
    struct in6_addr in6;
    const char *auth, *end, *host, *port_p = NULL, *close, *colon;
    size_t hlen;
    unsigned long port;
    uint16_t def;
    bool v6 = false;

    for (const char *c = url; *c != '\0'; c++) {
        if ((unsigned char) *c <= 0x20 || *c == 0x7f) {
            *why = "the URL must not contain spaces or control characters";
            return SL_EPARSE;
        }
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        out->tls = true;
        auth = url + 8;
        def = 443;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        out->tls = false;
        auth = url + 7;
        def = 80;
    } else {
        *why = "the URL must start with http:// or https://";
        return SL_EPARSE;
    }
    if (strchr(url, '#') != NULL) {
        *why = "the URL must not have a fragment";
        return SL_EPARSE;
    }
    end = auth + strcspn(auth, "/?");
    if (memchr(auth, '@', (size_t) (end - auth)) != NULL) {
        *why = "the URL must not contain user info";
        return SL_EPARSE;
    }
    if (*auth == '[') {
        close = memchr(auth, ']', (size_t) (end - auth));
        host = auth + 1;
        hlen = close != NULL ? (size_t) (close - host) : 0;
        if (close == NULL || hlen == 0 || hlen >= sizeof(addr)) {
            *why = "the URL has an invalid IPv6 address";
            return SL_EPARSE;
        }
        memcpy(addr, host, hlen);
        addr[hlen] = '\0';
        if (inet_pton(AF_INET6, addr, &in6) != 1 || (close + 1 < end && close[1] != ':')) {
            *why = "the URL has an invalid IPv6 address";
            return SL_EPARSE;
        }
        port_p = close + 1 < end ? close + 2 : NULL;
        v6 = true;
    } else {
        host = auth;
        colon = memchr(auth, ':', (size_t) (end - auth));
        hlen = (size_t) ((colon != NULL ? colon : end) - auth);
        port_p = colon != NULL ? colon + 1 : NULL;
        if (!url_host_ok(host, hlen)) {
            *why = "the URL has an invalid host";
            return SL_EPARSE;
        }
    }
    port = def;
    if (port_p != NULL) {
        port = 0;
        for (const char *q = port_p; q < end; q++) {
            if (*q < '0' || *q > '9' || port > 65535) {
                port = 0;
                break;
            }
            port = port * 10 + (unsigned long) (*q - '0');
        }
        if (port_p == end || port < 1 || port > 65535) {
            *why = "the URL has an invalid port";
            return SL_EPARSE;
        }
    }
    out->host = sl_pstrndup(pool, host, hlen);
    out->port = (uint16_t) port;
    if (port != def) {
        out->host_header = sl_psprintf(pool, v6 ? "[%s]:%lu" : "%s:%lu", out->host, port);
    } else {
        out->host_header = v6 ? sl_psprintf(pool, "[%s]", out->host) : out->host;
    }
    out->target = *end == '/' ? sl_pstrdup(pool, end) : sl_psprintf(pool, "/%s", end);
    return 0;
}
