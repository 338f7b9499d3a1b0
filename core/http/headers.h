/*
 * Which client request headers may travel upstream to provider P. The
 * provider gets the gateway's credential, so whatever names the client, its
 * organisation or its network must not ride along with it by accident.
 * Every client header falls in one of three classes:
 *
 *   never    hop-by-hop headers (RFC 9110 7.6.1) and those the request's
 *            Connection header names; framing and routing sluice sets
 *            itself (host, content-length, content-type, expect,
 *            accept-encoding); credentials (authorization, x-api-key,
 *            api-key, x-goog-api-key, ocp-apim-subscription-key, cookie);
 *            sluice's own (x-request-id, x-sluice-*); and any header the
 *            provider's `headers:` sets, so the operator's value is the only
 *            one the provider sees.
 *   opt-in   identity and network headers: openai-organization,
 *            openai-project, x-goog-user-project, forwarded, x-forwarded-*,
 *            x-real-ip, x-client-ip, client-ip, true-client-ip,
 *            cf-connecting-ip, fastly-client-ip, x-cluster-client-ip,
 *            x-original-forwarded-for, x-originating-ip, x-remote-ip,
 *            x-remote-addr, via, origin, referer. Dropped unless the
 *            provider's `forward_headers:` lists the name.
 *   pass     everything else (anthropic-beta, openai-beta, user-agent,
 *            x-stainless-*, ...).
 *
 * Pure functions of their arguments: any process context, no allocation.
 */
#ifndef SL_CORE_HTTP_HEADERS_H
#define SL_CORE_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/conf/conf.h"
#include "core/http/http.h"
#include "core/base/str.h"

typedef enum sl_headers_class {
    SL_HEADERS_PASS = 0, /* forwarded */
    SL_HEADERS_OPT_IN,   /* forwarded only when the provider's forward_headers lists it */
    SL_HEADERS_NEVER,    /* never forwarded, and forward_headers may not list it */
} sl_headers_class_e;

/* The class of a header name (case-insensitive), without provider or request context. */
sl_headers_class_e sl_headers_class(sl_str_t name);

/*
 * True when the client header name may go to provider p. connection is
 * the request's Connection header value (its tokens are hop-by-hop for
 * this request), or NULL when there is none.
 */
bool sl_headers_forwardable(const sl_provider_conf_t *p, sl_str_t name, const sl_str_t *connection);

/*
 * Copies the headers of in (n entries) that may go to provider p into out,
 * which has room for n entries, in their order; returns how many it copied.
 * The entries are shallow copies: they borrow in's names and values.
 */
size_t sl_headers_upstream(const sl_provider_conf_t *p, const sl_http_header_t *in, size_t n,
                           sl_http_header_t *out);

#endif
