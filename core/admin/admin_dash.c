/*
 * The dashboard's side of the admin listener: the page and its assets
 * (core/admin/dashboard.h), logins and sessions (storage/sessions.h) and the
 * checks that make a session safe to act with.
 *
 * A session is an HttpOnly, SameSite=Strict cookie named for the admin
 * port (sluice_session_PORT: cookies are not scoped by port, so two
 * gateways on one host keep theirs apart). It is opened by the one-time link
 * `sluice dashboard` prints (GET /login?token=...) or by the admin key
 * (POST /admin/session), and ends when it expires (dashboard.session_ttl)
 * or at logout (DELETE /admin/session). A request that authenticates with
 * the cookie and changes something (any method but GET and HEAD) must also
 * carry the session's CSRF token in X-CSRF-Token and come from the
 * dashboard's own origin (Origin, else Referer, equal to the listener's
 * scheme and Host; Sec-Fetch-Site, when sent, same-origin): a page on
 * another port of the same host is same-site, so SameSite alone would not
 * stop it. The admin key keeps working as before and needs neither.
 */
#include "core/admin/admin_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/admin/dashboard.h"
#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/gateway/state.h"
#include "storage/ledger.h"
#include "storage/sessions.h"

#define DASH_CSP                                                                      \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static const char *dash_cookie_name(sl_http_req_t *r);
static sl_str_t dash_cookie(sl_http_req_t *r);
static bool dash_same_origin(sl_http_req_t *r);
static bool dash_unsafe(const sl_http_req_t *r);
static const char *dash_set_cookie(sl_http_req_t *r, const char *token, int64_t max_age_ms);
static void dash_page(sl_http_req_t *r, int status, const char *html);
static void dash_session_answer(sl_http_req_t *r, int status, const char *token,
                                const sl_session_t *s);
static bool dash_enabled(sl_http_req_t *r);
static bool dash_has_token(sl_str_t list, const char *token);


/* "sluice_session_4142": the admin listener's port keeps two gateways' cookies apart. */
static const char *
dash_cookie_name(sl_http_req_t *r)
{
    const sl_listen_conf_t *l = r->conf->admin_listen;
    unsigned port = 0;

    if (l != NULL && l->addr.ss_family == AF_INET) {
        port = ntohs(((const struct sockaddr_in *) &l->addr)->sin_port);
    } else if (l != NULL && l->addr.ss_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *) &l->addr)->sin6_port);
    }
    return sl_psprintf(r->pool, "sluice_session_%u", port);
}


/* The session cookie's value; empty when there is none. */
static sl_str_t
dash_cookie(sl_http_req_t *r)
{
    const char *name = dash_cookie_name(r);
    size_t nlen = strlen(name);

    for (size_t i = 0; i < r->nheaders; i++) {
        const char *p, *end;

        if (!sl_str_caseeq(r->headers[i].name, "cookie")) {
            continue;
        }
        p = r->headers[i].value.p;
        end = p + r->headers[i].value.len;
        while (p < end) {
            const char *semi = memchr(p, ';', (size_t) (end - p));
            const char *stop = semi != NULL ? semi : end;

            while (p < stop && *p == ' ') {
                p++;
            }
            if ((size_t) (stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
                return (sl_str_t){ p + nlen + 1, (size_t) (stop - p - (ptrdiff_t) nlen - 1) };
            }
            p = stop + 1;
        }
    }
    return sl_str_null;
}


bool
sl__admin_has_cookie(sl_http_req_t *r)
{
    return dash_cookie(r).len > 0;
}


static bool
dash_unsafe(const sl_http_req_t *r)
{
    return !sl_str_eq(r->method, "GET") && !sl_str_eq(r->method, "HEAD");
}


/*
 * The request comes from a page of this listener: Sec-Fetch-Site (when the
 * browser sends it) is same-origin, and Origin (else Referer) is this
 * listener's scheme and Host.
 */
static bool
dash_same_origin(sl_http_req_t *r)
{
    const sl_str_t *site = sl_http_req_header(r, "sec-fetch-site");
    const sl_str_t *host = sl_http_req_header(r, "host");
    const sl_str_t *origin = sl_http_req_header(r, "origin");
    const sl_str_t *referer = sl_http_req_header(r, "referer");
    const char *self;
    size_t len;

    if (site != NULL && !sl_str_eq(*site, "same-origin")) {
        return false;
    }
    if (host == NULL || host->len == 0) {
        return false;
    }
    self = sl_psprintf(r->pool, "%s://%.*s",
                       r->conf->admin_listen != NULL && r->conf->admin_listen->tls != NULL ? "https"
                                                                                           : "http",
                       (int) host->len, host->p);
    len = strlen(self);
    if (origin != NULL && origin->len > 0) {
        return origin->len == len && strncasecmp(origin->p, self, len) == 0;
    }
    return referer != NULL && referer->len > len && strncasecmp(referer->p, self, len) == 0
           && referer->p[len] == '/';
}


/*
 * Authenticates r by its session cookie (the caller saw one and no admin
 * key); answers 401 or 403 itself and returns false.
 */
bool
sl__admin_session_auth(sl_http_req_t *r)
{
    sl_str_t token = dash_cookie(r);
    const sl_str_t *csrf;
    sl_session_t s;
    int rc;

    if (sl__admin_db() == NULL) {
        sl__admin_error(r, 503, "storage_unavailable", NULL,
                        "This worker has no storage open: sessions cannot be checked.");
        return false;
    }
    rc = sl_sessions_get(sl__admin_db(), token.p, token.len, (int64_t) sl_state_now(), &s);
    if (rc == SL_ESTORE || rc == SL_ECORRUPT) {
        sl__admin_store_error(r);
        return false;
    }
    if (rc < 0) {
        sl__admin_error(r, 401, "session_expired", NULL,
                        "Your dashboard session has expired or ended; log in again.");
        return false;
    }
    if (!dash_unsafe(r)) {
        return true;
    }
    if (!dash_same_origin(r)) {
        sl__admin_error(r, 403, "cross_origin", NULL,
                        "This request does not come from the dashboard's own origin; it is "
                        "refused (CSRF protection).");
        return false;
    }
    csrf = sl_http_req_header(r, "x-csrf-token");
    if (csrf == NULL || !sl_str_ct_eq(csrf->p, csrf->len, s.csrf, strlen(s.csrf))) {
        sl__admin_error(r, 403, "csrf_token_invalid", NULL,
                        "A missing or wrong X-CSRF-Token: reload the dashboard and try again.");
        return false;
    }
    return true;
}


static const char *
dash_set_cookie(sl_http_req_t *r, const char *token, int64_t max_age_ms)
{
    bool tls = r->conf->admin_listen != NULL && r->conf->admin_listen->tls != NULL;

    return sl_psprintf(r->pool, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
                       dash_cookie_name(r), token, (long long) (max_age_ms / 1000),
                       tls ? "; Secure" : "");
}


static bool
dash_enabled(sl_http_req_t *r)
{
    if (!r->conf->dashboard.enabled) {
        sl__admin_error(r, 404, "not_found", NULL,
                        "The dashboard is off (dashboard.enabled: false).");
        return false;
    }
    return true;
}


/* A comma-separated header list (Accept-Encoding) names token, with or without ;q=... */
static bool
dash_has_token(sl_str_t list, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = list.p, *end = list.p + list.len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t) (end - p));
        const char *stop = comma != NULL ? comma : end, *q;

        while (p < stop && *p == ' ') {
            p++;
        }
        for (q = p; q < stop && *q != ';' && *q != ' '; q++) {
        }
        if ((size_t) (q - p) == tlen && strncasecmp(p, token, tlen) == 0) {
            /* "gzip;q=0" refuses it: a q of only zeros */
            const char *v = q;

            while (v < stop && (*v == ' ' || *v == ';')) {
                v++;
            }
            if (stop - v < 3 || strncasecmp(v, "q=0", 3) != 0) {
                return true;
            }
            for (v += 3; v < stop && (*v == '0' || *v == '.'); v++) {
            }
            if (v < stop && *v != ' ') {
                return true;
            }
        }
        p = stop + 1;
    }
    return false;
}


/* GET / and GET /assets/NAME: the dashboard's files (no data: no login needed). */
void
sl__admin_dash_asset(sl_http_req_t *r)
{
    const sl_dash_asset_t *a;
    const sl_str_t *inm, *ae;
    sl_http_header_t h[9];
    size_t n = 0;
    bool gz;

    if (!dash_enabled(r)) {
        return;
    }
    a = sl_dash_asset(r->path.p, r->path.len);
    if (a == NULL) {
        sl__admin_error(r, 404, "not_found", NULL, "No such dashboard file.");
        return;
    }
    ae = sl_http_req_header(r, "accept-encoding");
    gz = ae != NULL && dash_has_token(*ae, "gzip");
    h[n].name = sl_str_lit("Content-Type");
    h[n++].value = (sl_str_t){ a->type, strlen(a->type) };
    h[n].name = sl_str_lit("ETag");
    h[n++].value = (sl_str_t){ a->etag, strlen(a->etag) };
    h[n].name = sl_str_lit("Cache-Control");
    h[n++].value = sl_str_lit("no-cache");
    h[n].name = sl_str_lit("Vary");
    h[n++].value = sl_str_lit("Accept-Encoding");
    h[n].name = sl_str_lit("X-Content-Type-Options");
    h[n++].value = sl_str_lit("nosniff");
    h[n].name = sl_str_lit("Content-Security-Policy");
    h[n++].value = sl_str_lit(DASH_CSP);
    h[n].name = sl_str_lit("X-Frame-Options");
    h[n++].value = sl_str_lit("DENY");
    h[n].name = sl_str_lit("Referrer-Policy");
    h[n++].value = sl_str_lit("no-referrer");
    inm = sl_http_req_header(r, "if-none-match");
    if (inm != NULL && sl_str_eq(*inm, a->etag)) {
        sl_http_respond(r, 304, h, n, NULL, 0);
        return;
    }
    if (gz) {
        h[n].name = sl_str_lit("Content-Encoding");
        h[n++].value = sl_str_lit("gzip");
        sl_http_respond(r, 200, h, n, (const char *) a->gzip, a->gzip_len);
        return;
    }
    sl_http_respond(r, 200, h, n, (const char *) a->body, a->len);
}


/* A small HTML page of our own (the login link's answer), with the session cookie when set. */
static void
dash_page(sl_http_req_t *r, int status, const char *html)
{
    sl_http_header_t h[5];
    size_t n = 0;

    h[n].name = sl_str_lit("Content-Type");
    h[n++].value = sl_str_lit("text/html; charset=utf-8");
    h[n].name = sl_str_lit("Cache-Control");
    h[n++].value = sl_str_lit("no-store");
    h[n].name = sl_str_lit("Referrer-Policy");
    h[n++].value = sl_str_lit("no-referrer");
    h[n].name = sl_str_lit("Content-Security-Policy");
    h[n++].value = sl_str_lit(DASH_CSP);
    if (r->data != NULL) {
        h[n].name = sl_str_lit("Set-Cookie");
        h[n++].value = (sl_str_t){ r->data, strlen(r->data) };
    }
    sl_http_respond(r, status, h, n, html, strlen(html));
}


/*
 * GET /login?token=...: exchanges a `sluice dashboard` link for a session
 * and opens the dashboard. The answer is a page that moves on to / by
 * itself (not a redirect): the browser then asks for / from this origin,
 * so the SameSite=Strict cookie goes along however the link was opened.
 */
void
sl__admin_dash_login(sl_http_req_t *r)
{
    static const char ok[] =
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"refresh\" content=\"0;url=/\"><title>sluice</title></head>"
        "<body><p>Signed in. <a href=\"/\">Open the dashboard</a>.</p></body></html>";
    static const char bad[] =
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sluice</title>"
        "</head><body><p>This login link is not valid: it was used already or it expired. "
        "Run <code>sluice dashboard</code> for a new one, or "
        "<a href=\"/\">log in with the admin key</a>.</p></body></html>";
    const char *p = r->query.p, *end = r->query.p + r->query.len;
    char token[SL_SESSION_TOKEN_LEN + 1];
    sl_str_t link = sl_str_null;
    sl_session_t s;
    int rc;

    if (!dash_enabled(r)) {
        return;
    }
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t) (end - p));

        amp = amp != NULL ? amp : end;
        if (amp - p > 6 && memcmp(p, "token=", 6) == 0) {
            link = (sl_str_t){ p + 6, (size_t) (amp - p - 6) };
        }
        p = amp + 1;
    }
    if (sl__admin_db() == NULL) {
        sl__admin_error(r, 503, "storage_unavailable", NULL, "This worker has no storage open.");
        return;
    }
    rc = sl_sessions_redeem(sl__admin_db(), link.p, link.len, (int64_t) sl_state_now(),
                            (int64_t) r->conf->dashboard.session_ttl, token, &s);
    if (rc == SL_EAUTH) {
        sl_log(&r->log, SL_LOG_NOTICE, 0, "dashboard: a login link was refused from %s",
               r->client_addr);
        dash_page(r, 401, bad);
        return;
    }
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "dashboard: login by link from %s", r->client_addr);
    r->data = (void *) dash_set_cookie(r, token, (int64_t) r->conf->dashboard.session_ttl);
    sl_crypto_wipe(token, sizeof(token));
    dash_page(r, 200, ok);
}


/* {authenticated, via, csrf, expires}, with Set-Cookie when token is not NULL. */
static void
dash_session_answer(sl_http_req_t *r, int status, const char *token, const sl_session_t *s)
{
    sl_http_header_t h[3];
    char when[32];
    json_t *j;
    char *body;
    size_t n = 0;

    if (s != NULL) {
        sl_ledger_format_time(s->expires / 1000, when, sizeof(when));
        j = json_pack("{s:b, s:s, s:s, s:s}", "authenticated", 1, "via", "session", "csrf", s->csrf,
                      "expires", when);
    } else {
        j = json_pack("{s:b, s:s, s:n, s:n}", "authenticated", 1, "via", "admin_key", "csrf",
                      "expires");
    }
    body = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (body == NULL) {
        sl__admin_error(r, 500, NULL, NULL, "Out of memory.");
        return;
    }
    h[n].name = sl_str_lit("Content-Type");
    h[n++].value = sl_str_lit("application/json");
    h[n].name = sl_str_lit("Cache-Control");
    h[n++].value = sl_str_lit("no-store");
    if (token != NULL) {
        const char *c = dash_set_cookie(r, token, (int64_t) r->conf->dashboard.session_ttl);

        h[n].name = sl_str_lit("Set-Cookie");
        h[n++].value = (sl_str_t){ c, strlen(c) };
    }
    sl_http_respond(r, status, h, n, body, strlen(body));
    sl_crypto_wipe(body, strlen(body));
    free(body);
}


/* GET /admin/session: who is asking, and the CSRF token a session must send back. */
void
sl__admin_session_get(sl_http_req_t *r)
{
    sl_str_t token;
    sl_session_t s;

    if (!sl__admin_auth(r)) {
        return;
    }
    token = dash_cookie(r);
    if (sl_http_req_credential(r).len > 0 || token.len == 0
        || sl_sessions_get(sl__admin_db(), token.p, token.len, (int64_t) sl_state_now(), &s) != 0) {
        dash_session_answer(r, 200, NULL, NULL);
        return;
    }
    dash_session_answer(r, 200, NULL, &s);
}


/* POST /admin/session {"admin_key": "..."}: a login with the admin key, from the dashboard only. */
void
sl__admin_session_post(sl_http_req_t *r)
{
    const sl_secret_t *admin = &r->conf->admin_key;
    char token[SL_SESSION_TOKEN_LEN + 1];
    const char *given;
    sl_session_t s;
    json_t *body;
    int rc;

    if (admin->value == NULL) {
        sl__admin_error(r, 401, "admin_disabled", NULL,
                        "Logging in with the admin key needs auth.admin_key; use the link "
                        "`sluice dashboard` prints.");
        return;
    }
    if (!dash_same_origin(r)) {
        sl__admin_error(r, 403, "cross_origin", NULL,
                        "Log in from the dashboard's own page; this request comes from elsewhere.");
        return;
    }
    if (!sl__admin_has_db(r)) {
        return;
    }
    body = sl__admin_body(r);
    if (body == NULL) {
        return;
    }
    given = json_string_value(json_object_get(body, "admin_key"));
    if (given == NULL || !sl_str_ct_eq(given, strlen(given), admin->value, admin->len)) {
        json_decref(body);
        sl_log(&r->log, SL_LOG_NOTICE, 0, "dashboard: a login with a wrong admin key from %s",
               r->client_addr);
        sl__admin_error(r, 401, "invalid_api_key", "admin_key", "Incorrect admin key provided.");
        return;
    }
    json_decref(body);
    rc = sl_sessions_create(sl__admin_db(), (int64_t) sl_state_now(),
                            (int64_t) r->conf->dashboard.session_ttl, token, &s);
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "dashboard: login with the admin key from %s",
           r->client_addr);
    dash_session_answer(r, 200, token, &s);
    sl_crypto_wipe(token, sizeof(token));
}


/* DELETE /admin/session: logout; the cookie is cleared. */
void
sl__admin_session_delete(sl_http_req_t *r)
{
    sl_http_header_t h[2];
    sl_str_t token;
    const char *clear;

    if (!sl__admin_auth(r)) {
        return;
    }
    token = dash_cookie(r);
    if (token.len > 0) {
        sl_sessions_delete(sl__admin_db(), token.p, token.len);
    }
    clear = dash_set_cookie(r, "", 0);
    h[0].name = sl_str_lit("Content-Type");
    h[0].value = sl_str_lit("application/json");
    h[1].name = sl_str_lit("Set-Cookie");
    h[1].value = (sl_str_t){ clear, strlen(clear) };
    sl_http_respond(r, 200, h, 2, "{\"authenticated\":false}", 23);
}
