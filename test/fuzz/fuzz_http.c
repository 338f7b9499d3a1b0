/*
 * libFuzzer target for the inbound HTTP path (core/http_server.c and llhttp
 * behind it), driven only through the server's public API, as a worker runs
 * it: a server per configuration on one libuv loop, listening on a loopback
 * socket, and per input one real TCP connection that sends the input and
 * reads whatever comes back. So request lines, header limits, chunked and
 * Content-Length bodies, pipelining, Expect, the smuggling checks and the
 * server's own error answers all run as they do in production.
 *
 * Input: the first byte picks the configuration (bit 0: tight limits with
 * CORS, or roomy ones without) and how the rest is cut into writes (bits
 * 1-7: 0 all at once, else pieces of 1..127 bytes with loop turns between
 * them, so the parser also sees every split point). The loop then runs
 * until nothing moves for a few turns; the client closes; the loop runs
 * until the server closed its side too.
 *
 * Beyond "no crash, no sanitizer report, no leak": the handlers check what
 * the server promises them (header count and body size within the limits,
 * names and values NUL-terminated, values trimmed and free of CR, LF and
 * NUL, never both Transfer-Encoding and Content-Length, a sane request id),
 * the connection count comes back to 0, and, when the input has no HEAD
 * request (whose answers have no body, which a response parser cannot know),
 * everything the server sent parses as HTTP/1.x responses, each final one
 * with an x-request-id, and holds a final one (or only the 100 Continue an
 * input asking for one gets when it ends before its body). Any broken
 * promise aborts.
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_http
 *   build-fuzz/test/fuzz/fuzz_http -max_total_time=60 -dict=test/fuzz/http.dict
 * test/fuzz/corpus/http or everything at once: scripts/fuzz.
 */
#define _GNU_SOURCE /* memmem */

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <llhttp.h>
#include <uv.h>

#include "core/base/buf.h"
#include "core/conf/conf.h"
#include "core/http/http_server.h"
#include "core/base/log.h"
#include "core/base/str.h"

#define FUZZ_IDLE_TURNS 3      /* loop turns without progress that count as "settled" */
#define FUZZ_MAX_TURNS  200000 /* a connection still open after this many turns is a hang */

typedef struct fuzz_srv {
    sl_conf_t conf;
    sl_http_server_t *srv;
    int port;
} fuzz_srv_t;

typedef struct fuzz_resp {
    llhttp_t parser;
    llhttp_settings_t settings;
    bool in_id;      /* the header being read is x-request-id */
    bool has_id;     /* the current response carried one */
    size_t finals;   /* complete final (>= 200) responses */
    size_t interims; /* complete interim (1xx) ones: 100 Continue */
} fuzz_resp_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok, const char *what);
static void fuzz_init(void);
static void fuzz_srv_init(fuzz_srv_t *s, bool tight);
static int fuzz_connect(int port);
static bool fuzz_turn(int fd, sl_buf_t *out);
static void fuzz_settle(int fd, sl_buf_t *out);
static void fuzz_check_req(sl_http_req_t *r);
static void h_echo(sl_http_req_t *r);
static void h_stream(sl_http_req_t *r);
static void h_error(sl_http_req_t *r);
static int fuzz_error_body(sl_pool_t *pool, int status, const char *type, const char *code,
                           const char *param, const char *message, sl_str_t *out);
static void fuzz_check_responses(const sl_buf_t *out, bool expect);
static bool fuzz_has_nocase(const uint8_t *p, size_t n, const char *s);
static int resp_on_header_field(llhttp_t *p, const char *at, size_t len);
static int resp_on_header_value(llhttp_t *p, const char *at, size_t len);
static int resp_on_headers_complete(llhttp_t *p);
static int resp_on_message_complete(llhttp_t *p);

static const sl_http_route_t fuzz_routes[] = {
    { "GET", "/echo", h_echo, NULL },
    { "POST", "/echo", h_echo, NULL },
    { "POST", "/v1/chat/completions", h_stream, NULL },
    { "GET", "/prefix/*", h_echo, NULL },
    { "POST", "/v1/messages", h_error, fuzz_error_body },
    { "DELETE", "/v1/messages", h_echo, fuzz_error_body },
};

static const char *fuzz_origins[2] = { "https://app.example.com", "*" };

static uv_loop_t fuzz_loop;
static fuzz_srv_t fuzz_srvs[2];
static bool fuzz_ready;
static uint64_t fuzz_handled; /* handler calls: progress the settle loop watches */


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http: check failed: %s\n", what);
        abort();
    }
}


static void
fuzz_srv_init(fuzz_srv_t *s, bool tight)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd;

    memset(&s->conf, 0, sizeof(s->conf));
    s->conf.max_connections = 16;
    s->conf.backlog = 16;
    /* long enough never to fire while an input runs: timeouts are not what is fuzzed */
    s->conf.header_timeout = 600000;
    s->conf.body_timeout = 600000;
    s->conf.keepalive_timeout = 600000;
    s->conf.send_timeout = 600000;
    s->conf.max_body = tight ? 512 : 1024 * 1024;
    s->conf.max_header_size = tight ? 1024 : 32 * 1024;
    s->conf.max_headers = tight ? 8 : 100;
    s->conf.keepalive_requests = tight ? 4 : 1000;
    if (tight) {
        s->conf.cors.enabled = true;
        s->conf.cors.origins = fuzz_origins;
        s->conf.cors.norigins = 2;
        s->conf.cors.max_age = 600;
    }
    s->srv = sl_http_server_create(&fuzz_loop, &s->conf, fuzz_routes,
                                   sizeof(fuzz_routes) / sizeof(fuzz_routes[0]));
    fuzz_check(s->srv != NULL, "sl_http_server_create");

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fuzz_check(fd >= 0, "socket");
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fuzz_check(bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0, "bind");
    fuzz_check(listen(fd, 16) == 0, "listen");
    fuzz_check(getsockname(fd, (struct sockaddr *) &sin, &len) == 0, "getsockname");
    s->port = ntohs(sin.sin_port);
    fuzz_check(sl_http_server_listen_fd(s->srv, fd) == 0, "sl_http_server_listen_fd");
}


static void
fuzz_init(void)
{
    /* the server logs every refused request at info: keep only what would be a real alarm */
    sl_log_open("stderr", SL_LOG_CRIT);
    signal(SIGPIPE, SIG_IGN);
    fuzz_check(uv_loop_init(&fuzz_loop) == 0, "uv_loop_init");
    fuzz_srv_init(&fuzz_srvs[0], false);
    fuzz_srv_init(&fuzz_srvs[1], true);
    fuzz_ready = true;
}


/*
 * A connected, non-blocking client socket (loopback connects complete at
 * once, without the server's accept). The client closes first, so each
 * connection leaves a TIME_WAIT entry for a minute: the source address
 * rotates through 127.0.0.0/16 so that a long run never runs out of
 * ephemeral ports. libFuzzer's SIGALRM may interrupt the wait: retried.
 */
static int
fuzz_connect(int port)
{
    static uint32_t next;
    struct sockaddr_in sin;
    struct pollfd pfd;
    socklen_t len = sizeof(int);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = 0;

    fuzz_check(fd >= 0, "client socket");
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + next++ % 65000);
    fuzz_check(bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0, "client bind");
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        err = errno;
        fuzz_check(err == EINPROGRESS || err == EINTR, "connect");
        pfd.fd = fd;
        pfd.events = POLLOUT;
        while (poll(&pfd, 1, 5000) < 0) {
            fuzz_check(errno == EINTR, "poll");
        }
        fuzz_check(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, "SO_ERROR");
    }
    if (err != 0) {
        fprintf(stderr, "fuzz_http: connect(): %s\n", strerror(err));
    }
    fuzz_check(err == 0, "connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}


/* One loop turn, then whatever the server sent. True when anything moved. */
static bool
fuzz_turn(int fd, sl_buf_t *out)
{
    uint64_t handled = fuzz_handled;
    size_t before = out->len;
    char buf[16384];
    ssize_t n;

    uv_run(&fuzz_loop, UV_RUN_NOWAIT);
    while (fd >= 0 && (n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        sl_buf_append(out, buf, (size_t) n);
    }
    return out->len != before || fuzz_handled != handled;
}


/* Runs the loop until nothing moved for FUZZ_IDLE_TURNS turns in a row. */
static void
fuzz_settle(int fd, sl_buf_t *out)
{
    unsigned idle = 0;

    for (unsigned turns = 0; idle < FUZZ_IDLE_TURNS; turns++) {
        fuzz_check(turns < FUZZ_MAX_TURNS, "the server never settled");
        idle = fuzz_turn(fd, out) ? 0 : idle + 1;
    }
}


/* What the server promises a handler about the request it hands out. */
static void
fuzz_check_req(sl_http_req_t *r)
{
    const sl_conf_t *conf = r->conf;
    bool te = false;
    bool cl = false;

    fuzz_handled++;
    fuzz_check(r->method.len > 0 && r->path.len > 0, "empty method or path");
    fuzz_check(r->http_minor <= 1, "HTTP minor version");
    fuzz_check(r->nheaders <= conf->max_headers, "more headers than max_headers");
    fuzz_check(r->body.len <= conf->max_body, "body above max_body");
    fuzz_check(r->body.p != NULL, "body pointer is NULL");
    fuzz_check(r->request_id != NULL && r->request_id[0] != '\0', "no request id");
    for (const char *p = r->request_id; *p != '\0'; p++) {
        fuzz_check((unsigned char) *p > 0x20 && *p != 0x7f, "control character in request id");
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const sl_http_header_t *h = &r->headers[i];

        fuzz_check(h->name.len > 0, "empty header name");
        fuzz_check(h->name.p[h->name.len] == '\0' && h->value.p[h->value.len] == '\0',
                   "header not NUL-terminated");
        fuzz_check(memchr(h->name.p, '\0', h->name.len) == NULL
                       && memchr(h->value.p, '\0', h->value.len) == NULL,
                   "NUL inside a header");
        fuzz_check(memchr(h->value.p, '\r', h->value.len) == NULL
                       && memchr(h->value.p, '\n', h->value.len) == NULL,
                   "CR or LF in a header value");
        fuzz_check(h->value.len == 0
                       || (h->value.p[0] != ' ' && h->value.p[0] != '\t'
                           && h->value.p[h->value.len - 1] != ' '
                           && h->value.p[h->value.len - 1] != '\t'),
                   "header value not trimmed");
        te = te || sl_str_caseeq(h->name, "transfer-encoding");
        cl = cl || sl_str_caseeq(h->name, "content-length");
    }
    if (te && cl) {
        for (size_t i = 0; i < r->nheaders; i++) {
            fprintf(stderr, "fuzz_http: header \"%s\": \"%s\"\n", r->headers[i].name.p,
                    r->headers[i].value.p);
        }
    }
    fuzz_check(!(te && cl), "a request with both Transfer-Encoding and Content-Length");
    (void) sl_http_req_credential(r);
}


static void
h_echo(sl_http_req_t *r)
{
    sl_http_header_t h = { sl_str_lit("content-type"), sl_str_lit("application/octet-stream") };

    fuzz_check_req(r);
    sl_http_respond(r, 200, &h, 1, r->body.p, r->body.len);
}


/* A streamed answer: the body back in up to three pieces, chunked on HTTP/1.1. */
static void
h_stream(sl_http_req_t *r)
{
    sl_http_header_t h = { sl_str_lit("content-type"), sl_str_lit("text/event-stream") };
    size_t third = r->body.len / 3;

    fuzz_check_req(r);
    if (sl_http_start(r, 200, &h, 1) == 0) {
        sl_http_write(r, r->body.p, third);
        sl_http_write(r, r->body.p + third, third);
        sl_http_write(r, r->body.p + 2 * third, r->body.len - 2 * third);
    }
    sl_http_finish(r);
}


static void
h_error(sl_http_req_t *r)
{
    fuzz_check_req(r);
    sl_http_respond_error(r, 400, "invalid_request_error", "bad", "model", "fuzz error");
}


/* Anthropic's error shape for the /v1/messages routes, as the proxy's hook makes it. */
static int
fuzz_error_body(sl_pool_t *pool, int status, const char *type, const char *code, const char *param,
                const char *message, sl_str_t *out)
{
    const char *body =
        sl_psprintf(pool, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"status\":%d}}",
                    type != NULL ? type : "api_error", status);

    (void) code;
    (void) param;
    (void) message;
    *out = (sl_str_t){ body, strlen(body) };
    return 0;
}


static int
resp_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    fuzz_resp_t *fr = p->data;

    fr->in_id = len == 12 && sl_mem_caseeq(at, "x-request-id", 12);
    return 0;
}


static int
resp_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    fuzz_resp_t *fr = p->data;

    (void) at;
    if (fr->in_id && len > 0) {
        fr->has_id = true;
    }
    return 0;
}


static int
resp_on_headers_complete(llhttp_t *p)
{
    fuzz_resp_t *fr = p->data;

    if (p->status_code >= 200) {
        fuzz_check(fr->has_id, "a response without x-request-id");
    }
    fr->has_id = false;
    return 0;
}


static int
resp_on_message_complete(llhttp_t *p)
{
    fuzz_resp_t *fr = p->data;

    if (p->status_code >= 200) {
        fr->finals++;
    } else {
        fr->interims++;
    }
    return 0;
}


/* Whether p[0..n) holds s, ASCII letters compared without case. */
static bool
fuzz_has_nocase(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);

    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;

        while (j < k && tolower(p[i + j]) == tolower((unsigned char) s[j])) {
            j++;
        }
        if (j == k) {
            return true;
        }
    }
    return false;
}


/*
 * Everything the server sent parses as a sequence of HTTP/1.x responses,
 * and holds a final one, or only the 100 Continue the client asked for
 * (expect) when it closed before sending the body that 100 invited.
 */
static void
fuzz_check_responses(const sl_buf_t *out, bool expect)
{
    fuzz_resp_t fr;
    llhttp_errno_t err;

    if (out->len == 0) {
        return;
    }
    memset(&fr, 0, sizeof(fr));
    llhttp_settings_init(&fr.settings);
    fr.settings.on_header_field = resp_on_header_field;
    fr.settings.on_header_value = resp_on_header_value;
    fr.settings.on_headers_complete = resp_on_headers_complete;
    fr.settings.on_message_complete = resp_on_message_complete;
    llhttp_init(&fr.parser, HTTP_RESPONSE, &fr.settings);
    fr.parser.data = &fr;
    err = llhttp_execute(&fr.parser, out->p, out->len);
    if (err == HPE_OK) {
        /* a close-delimited body ends here; a response cut short does not */
        err = llhttp_finish(&fr.parser);
    }
    if (err != HPE_OK) {
        fprintf(stderr, "fuzz_http: response stream: %s (%s) at byte %zu of %zu\n",
                llhttp_errno_name(err), llhttp_get_error_reason(&fr.parser),
                (size_t) (llhttp_get_error_pos(&fr.parser) - out->p), out->len);
    }
    fuzz_check(err == HPE_OK, "the server sent something that is not HTTP/1.x responses");
    fuzz_check(fr.finals > 0 || (expect && fr.interims > 0), "bytes but no complete response");
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_buf_t out = SL_BUF_INIT;
    fuzz_srv_t *s;
    size_t piece;
    size_t off = 0;
    int fd;

    if (!fuzz_ready) {
        fuzz_init();
    }
    if (size < 1) {
        return 0;
    }
    s = &fuzz_srvs[data[0] & 1];
    piece = data[0] >> 1;
    data++;
    size--;

    fd = fuzz_connect(s->port);
    while (off < size) {
        size_t n = piece == 0 || piece > size - off ? size - off : piece;
        ssize_t w = send(fd, data + off, n, MSG_NOSIGNAL);

        if (w > 0) {
            off += (size_t) w;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            break; /* the server closed (e.g. after an error answer) */
        }
        /* let the server read this piece before the next one */
        fuzz_turn(fd, &out);
        fuzz_turn(fd, &out);
    }
    fuzz_settle(fd, &out);
    close(fd);

    for (unsigned turns = 0; sl_http_server_connections(s->srv) > 0; turns++) {
        fuzz_check(turns < FUZZ_MAX_TURNS, "the server kept a closed client's connection open");
        uv_run(&fuzz_loop, UV_RUN_NOWAIT);
    }
    if (memmem(data, size, "HEAD", 4) == NULL) {
        fuzz_check_responses(&out, fuzz_has_nocase(data, size, "100-continue"));
    }
    sl_buf_free(&out);
    return 0;
}
