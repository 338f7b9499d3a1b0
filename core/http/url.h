/*
 * Absolute http(s) URLs as a configuration gives them for an endpoint
 * sluice posts to (alerts.webhook): scheme, host, port and the request
 * target (path and query). Unlike a provider's base_url, a query is kept:
 * webhook receivers often carry their token there. User info and
 * fragments are refused. Base of the HTTP layer: depends on core/base only.
 */
#ifndef SL_CORE_HTTP_URL_H
#define SL_CORE_HTTP_URL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base/pool.h"

typedef struct sl_url {
    bool tls;                /* https:// */
    const char *host;        /* name or literal address, without brackets */
    uint16_t port;           /* explicit, or 443 / 80 */
    const char *host_header; /* host, with ":port" when not the default, brackets for IPv6 */
    const char *target;      /* path and query, "/" at least */
} sl_url_t;

/*
 * Parses url into out; the strings are copied into pool. On failure
 * returns SL_EPARSE and points *why at a static reason that never quotes
 * the URL (it may hold a token). Any context.
 */
int sl_url_parse(sl_pool_t *pool, const char *url, sl_url_t *out, const char **why);

#endif
