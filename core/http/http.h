/*
 * HTTP bits shared by the inbound server and the upstream client: the
 * header type, reason phrases, hop-by-hop detection.
 */
#ifndef SL_CORE_HTTP_HTTP_H
#define SL_CORE_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/base/str.h"

typedef struct sl_http_header {
    sl_str_t name;
    sl_str_t value;
} sl_http_header_t;

/*
 * An outbound request as an adapter describes it; sl_upstream_send copies
 * everything before it returns, except a body marked body_kept.
 */
typedef struct sl_upstream_req {
    const char *method;
    const char *path;          /* origin-form, including base_path and query */
    sl_http_header_t *headers; /* without Host, Content-Length, Connection: the client adds them */
    size_t nheaders;
    const char *body;
    size_t body_len;
    /*
     * The body stays valid and unchanged until the call ends (on_done ran
     * or sl_upstream_cancel returned): it is written from where it is, not
     * copied (a large prompt is not copied once more).
     */
    bool body_kept;
} sl_upstream_req_t;

/* Reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know. */
const char *sl_http_reason(int status);

/*
 * True for headers a proxy must not forward (RFC 9110 7.6.1): connection,
 * keep-alive, proxy-connection, te, trailer, transfer-encoding, upgrade,
 * proxy-authenticate, proxy-authorization.
 */
bool sl_http_is_hop_by_hop(sl_str_t name);

/* True when name is a non-empty RFC 9110 token (the only bytes a header name may hold). */
bool sl_http_is_token(sl_str_t name);

/*
 * True when value may be sent as a header field value as it is: no control
 * characters (0x00-0x1f other than HTAB, and DEL 0x7f), so no CR or LF.
 * Bytes 0x80-0xff (obs-text, e.g. UTF-8) are allowed.
 */
bool sl_http_is_field_value(sl_str_t value);

/* Finds a header by case-insensitive name; NULL when absent. */
const sl_http_header_t *sl_http_find_header(const sl_http_header_t *h, size_t n, const char *name);

#endif
