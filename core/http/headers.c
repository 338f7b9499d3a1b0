/*
 * The upstream header policy: which client request headers a provider may
 * see (core/http/headers.h has the classes and why). Lists are small and
 * matched case-insensitively; a request carries at most max_headers
 * headers, so a linear scan is the fast path.
 */
#include "core/http/headers.h"

#include <string.h>

static bool headers_listed(const sl_str_t *list, sl_str_t name);
static bool headers_has_prefix(sl_str_t name, const char *prefix);
static bool headers_token_listed(sl_str_t list, sl_str_t name);
static bool headers_provider_sets(const sl_provider_conf_t *p, sl_str_t name);
static bool headers_opted_in(const sl_provider_conf_t *p, sl_str_t name);

/* a name and its length, as a constant initializer */
#define HEADERS_NAME(s)    \
    {                      \
        (s), sizeof(s) - 1 \
    }

static const sl_str_t headers_never[] = {
    /* framing and routing: sluice or the adapter sets them */
    HEADERS_NAME("host"),
    HEADERS_NAME("content-length"),
    HEADERS_NAME("content-type"),
    HEADERS_NAME("expect"),
    HEADERS_NAME("accept-encoding"),
    /* credentials: the provider gets the gateway's own */
    HEADERS_NAME("authorization"),
    HEADERS_NAME("x-api-key"),
    HEADERS_NAME("api-key"),
    HEADERS_NAME("x-goog-api-key"),
    HEADERS_NAME("ocp-apim-subscription-key"),
    /* may carry the dashboard's session: cookies are not scoped by port */
    HEADERS_NAME("cookie"),
    /* sluice's own */
    HEADERS_NAME("x-request-id"),
    { NULL, 0 },
};

static const sl_str_t headers_opt_in[] = {
    /* whose account pays: the gateway's key chooses that, not the client */
    HEADERS_NAME("openai-organization"),
    HEADERS_NAME("openai-project"),
    HEADERS_NAME("x-goog-user-project"),
    /* the client's network */
    HEADERS_NAME("forwarded"),
    HEADERS_NAME("x-real-ip"),
    HEADERS_NAME("x-client-ip"),
    HEADERS_NAME("client-ip"),
    HEADERS_NAME("true-client-ip"),
    HEADERS_NAME("cf-connecting-ip"),
    HEADERS_NAME("fastly-client-ip"),
    HEADERS_NAME("x-cluster-client-ip"),
    HEADERS_NAME("x-original-forwarded-for"),
    HEADERS_NAME("x-originating-ip"),
    HEADERS_NAME("x-remote-ip"),
    HEADERS_NAME("x-remote-addr"),
    HEADERS_NAME("via"),
    /* where the client's page lives */
    HEADERS_NAME("origin"),
    HEADERS_NAME("referer"),
    { NULL, 0 },
};


static bool
headers_listed(const sl_str_t *list, sl_str_t name)
{
    for (size_t i = 0; list[i].p != NULL; i++) {
        if (name.len == list[i].len && sl_mem_caseeq(name.p, list[i].p, name.len)) {
            return true;
        }
    }
    return false;
}


static bool
headers_has_prefix(sl_str_t name, const char *prefix)
{
    size_t len = strlen(prefix);

    return name.len > len && sl_mem_caseeq(name.p, prefix, len);
}


/* True when name is one of the comma-separated tokens of list (case-insensitive). */
static bool
headers_token_listed(sl_str_t list, sl_str_t name)
{
    const char *p = list.p;
    const char *end = list.p + list.len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t) (end - p));
        sl_str_t tok = sl_str_trim((sl_str_t){ p, (size_t) ((comma != NULL ? comma : end) - p) });

        if (tok.len == name.len && sl_mem_caseeq(tok.p, name.p, tok.len)) {
            return true;
        }
        p = comma != NULL ? comma + 1 : end;
    }
    return false;
}


static bool
headers_provider_sets(const sl_provider_conf_t *p, sl_str_t name)
{
    for (size_t i = 0; i < p->nheaders; i++) {
        if (sl_str_caseeq(name, p->headers[i].name)) {
            return true;
        }
    }
    return false;
}


static bool
headers_opted_in(const sl_provider_conf_t *p, sl_str_t name)
{
    for (size_t i = 0; i < p->nforward_headers; i++) {
        if (sl_str_caseeq(name, p->forward_headers[i])) {
            return true;
        }
    }
    return false;
}


sl_headers_class_e
sl_headers_class(sl_str_t name)
{
    if (sl_http_is_hop_by_hop(name) || headers_listed(headers_never, name)
        || headers_has_prefix(name, "x-sluice")) {
        return SL_HEADERS_NEVER;
    }
    if (headers_listed(headers_opt_in, name) || headers_has_prefix(name, "x-forwarded-")) {
        return SL_HEADERS_OPT_IN;
    }
    return SL_HEADERS_PASS;
}


bool
sl_headers_forwardable(const sl_provider_conf_t *p, sl_str_t name, const sl_str_t *connection)
{
    if (connection != NULL && headers_token_listed(*connection, name)) {
        return false;
    }
    if (headers_provider_sets(p, name)) {
        return false;
    }
    switch (sl_headers_class(name)) {
    case SL_HEADERS_PASS:
        return true;
    case SL_HEADERS_OPT_IN:
        return headers_opted_in(p, name);
    default:
        return false;
    }
}


size_t
sl_headers_upstream(const sl_provider_conf_t *p, const sl_http_header_t *in, size_t n,
                    sl_http_header_t *out)
{
    const sl_http_header_t *conn = sl_http_find_header(in, n, "connection");
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (sl_headers_forwardable(p, in[i].name, conn != NULL ? &conn->value : NULL)) {
            out[k++] = in[i];
        }
    }
    return k;
}
