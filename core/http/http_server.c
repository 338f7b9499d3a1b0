/*
 * Inbound HTTP/1.1 server on libuv and llhttp: the public server API
 * (core/http/http_server.h), the listeners (plain or TLS, each TLS listener with
 * the mbedTLS configuration the server builds from its PEM text), accepting
 * connections with max_connections, drain and fast stop, and the request
 * header accessors. The connection's life is in http_conn.c, parsing and
 * routing in http_request.c, responses in http_response.c; the structs they
 * share are in http_server_internal.h.
 */
#include "core/http/http_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/base/errno.h"
#include "core/http/http_server_internal.h"
#include "core/http/tls.h"

static void server_on_connection(uv_stream_t *stream, int status);
static void server_refuse(sl_http_server_t *srv, sl_http_conn_t *c, bool tls);
static void server_on_listener_close(uv_handle_t *handle);
static void server_close_listeners(sl_http_server_t *srv);
static void conn_peer_addr(sl_http_conn_t *c);
static bool server_conn_idle(const sl_http_conn_t *c);


sl_http_server_t *
sl_http_server_create(uv_loop_t *loop, const sl_conf_t *conf, const sl_http_route_t *routes,
                      size_t nroutes)
{
    sl_http_server_t *srv;
    unsigned char seed[8];
    ssize_t n;
    int err;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "calloc() of the http server failed");
        return NULL;
    }
    srv->info = calloc(nroutes + 1, sizeof(*srv->info));
    if (srv->info == NULL) {
        err = errno;
        sl_log(&sl_log_main, SL_LOG_ERR, err, "calloc() of the route table failed");
        goto out_free_srv;
    }
    for (size_t i = 0; i < nroutes; i++) {
        size_t len = strlen(routes[i].path);

        srv->info[i].prefix = len > 0 && routes[i].path[len - 1] == '*';
        srv->info[i].len = srv->info[i].prefix ? len - 1 : len;
    }

    /*
     * Request ids are this random prefix and a counter, so ids stay unique
     * across workers and restarts without a syscall per request.
     */
    n = getrandom(seed, sizeof(seed), 0);
    if (n != (ssize_t) sizeof(seed)) {
        uint64_t mix = uv_hrtime() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) srv;

        err = n < 0 ? errno : 0;
        sl_log(&sl_log_main, SL_LOG_WARN, err, "getrandom() failed, request ids use the clock");
        for (size_t i = 0; i < sizeof(seed); i++) {
            seed[i] = (unsigned char) (mix >> (i * 8));
        }
    }
    for (size_t i = 0; i < sizeof(seed); i++) {
        static const char hex[] = "0123456789abcdef";

        srv->rid_prefix[2 * i] = hex[seed[i] >> 4];
        srv->rid_prefix[2 * i + 1] = hex[seed[i] & 0xf];
    }

    srv->loop = loop;
    srv->conf = conf;
    srv->routes = routes;
    srv->nroutes = nroutes;
    sl__http_parser_settings(&srv->settings);
    return srv;

out_free_srv:
    free(srv);
    return NULL;
}


int
sl_http_server_listen_fd(sl_http_server_t *srv, int fd)
{
    http_listener_t *l;
    int backlog;
    int rc;

    l = sl_xcalloc(1, sizeof(*l));
    l->srv = srv;
    rc = uv_tcp_init(srv->loop, &l->tcp);
    if (rc < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, rc, "uv_tcp_init() failed");
        free(l);
        close(fd);
        return rc;
    }
    l->tcp.data = l;
    rc = uv_tcp_open(&l->tcp, fd);
    if (rc < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, rc, "uv_tcp_open(%d) failed", fd);
        close(fd);
        goto out_close;
    }
    backlog = srv->conf->backlog > 0 ? (int) srv->conf->backlog : 511;
    rc = uv_listen((uv_stream_t *) &l->tcp, backlog, server_on_connection);
    if (rc < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, rc, "listen() on fd %d failed", fd);
        goto out_close;
    }
    l->next = srv->listeners;
    srv->listeners = l;
    return 0;

out_close:
    l->closing = true;
    uv_close((uv_handle_t *) &l->tcp, server_on_listener_close);
    return rc;
}


int
sl_http_server_listen_tls(sl_http_server_t *srv, int fd, const sl_listen_tls_t *tls)
{
    sl_tls_conf_t *conf;
    char err[512];
    int rc;

    if (tls == NULL) {
        return sl_http_server_listen_fd(srv, fd);
    }
    conf = sl_tls_conf_server_pem(tls->cert_pem, tls->cert_len, tls->key_pem, tls->key_len, err,
                                  sizeof(err));
    if (conf == NULL) {
        sl_log(&sl_log_main, SL_LOG_EMERG, 0, "TLS for \"%s\" and \"%s\": %s", tls->cert_file,
               tls->key_file, err);
        close(fd);
        return SL_ETLS;
    }
    if (tls->session_tickets) {
        rc = sl_tls_conf_tickets(conf, tls->session_timeout);
        SL_ASSERT(rc == 0); /* a server conf; the loader keeps the timeout above 0 */
    }
    srv->tls_confs = sl_xrealloc(srv->tls_confs, (srv->ntls + 1) * sizeof(*srv->tls_confs));
    srv->tls_confs[srv->ntls++] = conf;
    rc = sl_http_server_listen_fd(srv, fd);
    if (rc == 0) {
        srv->listeners->tls = conf;
    }
    return rc;
}


void
sl_http_server_drain(sl_http_server_t *srv, bool retire)
{
    sl_http_conn_t *c;
    sl_http_conn_t *next;

    if (srv->draining && (retire || !srv->retiring)) {
        return; /* a stop asked twice, or a retire after a stop: nothing changes */
    }
    srv->draining = true;
    srv->retiring = retire;
    server_close_listeners(srv);
    if (retire) {
        return; /* idle connections keep their keep-alive timers */
    }
    /*
     * An idle keep-alive connection is not closed at once: its client may
     * have sent the next request already, and closing now would reset it.
     * It gets a short grace instead; a request that arrives in it is served
     * with "Connection: close", and the close after a quiet second races
     * only as much as any keep-alive timeout does. sl__http_conn_timer only
     * ever moves a deadline earlier.
     */
    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (server_conn_idle(c)) {
            sl__http_conn_timer(c, sl__http_conn_idle_timeout(c));
        }
    }
}


size_t
sl_http_server_busy_connections(const sl_http_server_t *srv)
{
    const sl_http_conn_t *c;
    size_t n = 0;

    for (c = srv->conns; c != NULL; c = c->next) {
        n += !server_conn_idle(c) && !c->closing;
    }
    return n;
}


/* Idle between requests: nothing read of the next one, nothing left to send. */
static bool
server_conn_idle(const sl_http_conn_t *c)
{
    return c->state == SL_HTTP_IDLE && c->queued == 0 && c->rpos == c->rlen && !c->resume;
}


void
sl_http_server_close_all(sl_http_server_t *srv)
{
    sl_http_conn_t *c;
    sl_http_conn_t *next;

    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        sl__http_conn_close(c);
    }
}


size_t
sl_http_server_connections(const sl_http_server_t *srv)
{
    return srv->nconns;
}


void
sl_http_server_destroy(sl_http_server_t *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->nconns != 0) {
        /* connections still point at srv: leaking it is the lesser evil */
        sl_log(&sl_log_main, SL_LOG_ALERT, 0, "http server destroyed with %zu open connections",
               srv->nconns);
        return;
    }
    server_close_listeners(srv);
    for (size_t i = 0; i < srv->ntls; i++) {
        sl_tls_conf_destroy(srv->tls_confs[i]);
    }
    free(srv->tls_confs);
    sl_buf_free(&srv->head);
    free(srv->info);
    free(srv);
}


const sl_str_t *
sl_http_req_header(const sl_http_req_t *r, const char *name)
{
    const sl_http_header_t *h = sl_http_find_header(r->headers, r->nheaders, name);

    return h != NULL ? &h->value : NULL;
}


sl_str_t
sl_http_req_credential(const sl_http_req_t *r)
{
    const sl_str_t *h = sl_http_req_header(r, "authorization");
    sl_str_t key = sl_str_null;

    if (h != NULL) {
        sl_str_t v = sl_str_trim(*h);

        if (v.len > 7 && sl_mem_caseeq(v.p, "bearer ", 7)) {
            key = sl_str_trim((sl_str_t){ v.p + 7, v.len - 7 });
        }
    }
    if (key.len == 0) {
        h = sl_http_req_header(r, "x-api-key");
        if (h != NULL) {
            key = sl_str_trim(*h);
        }
    }
    return key;
}


static void
server_on_connection(uv_stream_t *stream, int status)
{
    http_listener_t *l = stream->data;
    sl_http_server_t *srv = l->srv;
    sl_http_conn_t *c;
    int rc;

    if (status < 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, status, "accept() failed");
        return;
    }

    c = sl_xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->rbuf = srv->rbuf;
    c->log.worker = sl_log_main.worker;
    c->log.conn = ++srv->serial;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->nhandles = 2;
    llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
    c->parser.data = c;
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->nconns++;

    rc = uv_accept(stream, (uv_stream_t *) &c->tcp);
    if (rc < 0) {
        sl_log(&c->log, SL_LOG_ERR, rc, "accept() failed");
        sl__http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_peer_addr(c);

    if (srv->conf->max_connections > 0 && srv->nactive >= srv->conf->max_connections) {
        server_refuse(srv, c, l->tls != NULL);
        return;
    }
    srv->nactive++;
    c->counted = true;
    sl_debug(&c->log, "accepted connection from %s", c->addr);
    if (l->tls != NULL) {
        c->tls = sl_tls_create(l->tls, NULL);
        if (c->tls == NULL) {
            sl__http_conn_close(c);
            return;
        }
        c->tls_handshake = true;
    }

    /*
     * A fresh connection gets header_timeout to send its first byte (nginx),
     * and to complete the TLS handshake.
     */
    c->state = SL_HTTP_IDLE;
    sl__http_conn_timer(c, srv->conf->header_timeout);
    sl__http_conn_read_start(c);
}


/*
 * Answers 503 on a connection over max_connections and closes it; a TLS
 * connection is just closed (a handshake is what the overload cannot pay).
 */
static void
server_refuse(sl_http_server_t *srv, sl_http_conn_t *c, bool tls)
{
    uint64_t now = uv_now(srv->loop);

    srv->refused++;
    if (srv->overload_logged == 0 || now - srv->overload_logged >= HTTP_OVERLOAD_LOG) {
        sl_log(&c->log, SL_LOG_WARN, 0,
               "max_connections (%u) reached, %llu connection(s) answered 503",
               srv->conf->max_connections, (unsigned long long) srv->refused);
        srv->overload_logged = now != 0 ? now : 1;
        srv->refused = 0;
    }
    if (tls) {
        sl__http_conn_close(c);
        return;
    }
    sl__http_conn_request_begin(c);
    sl__http_conn_fail(c, 503, "server_overloaded",
                       "The server is overloaded: too many connections. Please retry later.");
}


static void
server_on_listener_close(uv_handle_t *handle)
{
    free(handle->data);
}


static void
server_close_listeners(sl_http_server_t *srv)
{
    http_listener_t *l;

    while (srv->listeners != NULL) {
        l = srv->listeners;
        srv->listeners = l->next;
        if (!l->closing) {
            l->closing = true;
            uv_close((uv_handle_t *) &l->tcp, server_on_listener_close);
        }
    }
}


/* The Date header value, formatted again only when the second changes. */
const char *
sl__http_server_date(sl_http_server_t *srv)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t now = time(NULL);
    struct tm tm;

    if (now != srv->date_sec || srv->date[0] == '\0') {
        gmtime_r(&now, &tm);
        snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        srv->date_sec = now;
    }
    return srv->date;
}


static void
conn_peer_addr(sl_http_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];

    strcpy(c->addr, "unknown");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *) &ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;

        uv_ip4_name(sin, ip, sizeof(ip));
        snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, (unsigned) ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &ss;

        uv_ip6_name(sin6, ip, sizeof(ip));
        snprintf(c->addr, sizeof(c->addr), "[%s]:%u", ip, (unsigned) ntohs(sin6->sin6_port));
    }
}
