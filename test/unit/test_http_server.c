/*
 * Unit tests for the inbound HTTP server. Each test runs a server on a
 * fresh libuv loop in the main thread and drives it from a client thread
 * with blocking sockets and llhttp in response mode. The client records its
 * first failed check; the main thread asserts on it once the loop is done,
 * since cmocka's asserts must not fire on another thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>
#include <jansson.h>
#include <llhttp.h>
#include <uv.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/http/http_server.h"

#define BIG_TOTAL (8 * 1024 * 1024)
#define BIG_PIECE (64 * 1024)

typedef struct test_ctx test_ctx_t;
typedef struct cl_resp cl_resp_t;
typedef struct cl_conn cl_conn_t;
typedef struct job job_t;

struct test_ctx {
    uv_loop_t loop;
    sl_conf_t conf;
    sl_http_server_t *srv;
    uv_async_t done_async;
    uv_async_t drain_async;
    pthread_t thread;
    int port;
    void (*client)(test_ctx_t *t);
    char fail[1024];
    const char *cors_origins[2];
    int rcvbuf; /* client SO_RCVBUF, 0 for the default */
    /* written by handlers on the loop thread, read by the client */
    atomic_int aborts;
    atomic_int produced;
    atomic_int drains;
    atomic_bool retire; /* what the next drain_async asks: a reload's retire, or a stop */
    atomic_int inflight;
    atomic_int max_inflight;
    atomic_int handled;
};

struct cl_resp {
    int status;
    bool chunked;
    char headers[16384]; /* "\nname: value" with lower-case names */
    size_t hlen;
    sl_buf_t body;
};

struct cl_conn {
    int fd;
    llhttp_t parser;
    llhttp_settings_t settings;
    size_t pos;
    size_t len;
    bool complete;
    bool eof;
    cl_resp_t *resp;
    void (*on_body)(cl_conn_t *cc, const char *at, size_t len);
    test_ctx_t *t;
    bool piece1_checked;
    int produced_at_piece1;
    char buf[65536];
};

struct job {
    uv_timer_t timer;
    sl_http_req_t *r;
    int step;
    size_t sent;
};

static test_ctx_t *T;

static void test_init(test_ctx_t *t);
static void test_run(test_ctx_t *t, void (*client)(test_ctx_t *t));
static void test_on_done(uv_async_t *async);
static void test_on_drain(uv_async_t *async);
static void *test_client_main(void *arg);
static void check_fail(test_ctx_t *t, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ms_sleep(int ms);
static uint64_t ms_now(void);
static int cl_fd(int port, int rcvbuf);
static cl_conn_t *cl_open(test_ctx_t *t);
static void cl_close(cl_conn_t *cc);
static void cl_send(cl_conn_t *cc, const char *s);
static void cl_sendn(cl_conn_t *cc, const char *s, size_t n);
static int cl_read(cl_conn_t *cc, cl_resp_t *resp);
static bool cl_wait_eof(cl_conn_t *cc, int ms);
static void cl_open_drain_set(test_ctx_t *t, cl_conn_t **busy, cl_conn_t **idle, cl_conn_t **late);
static void cl_resp_free(cl_resp_t *resp);
static bool cl_header(const cl_resp_t *resp, const char *name, char *out, size_t outlen);
static bool cl_body_has(const cl_resp_t *resp, const char *s);
static bool is_hex32(const char *s);
static int cl_on_header_field(llhttp_t *p, const char *at, size_t len);
static int cl_on_header_field_complete(llhttp_t *p);
static int cl_on_header_value(llhttp_t *p, const char *at, size_t len);
static int cl_on_header_value_complete(llhttp_t *p);
static void cl_hdr_append(cl_resp_t *resp, const char *at, size_t len, bool lower);
static int cl_on_headers_complete(llhttp_t *p);
static int cl_on_body(llhttp_t *p, const char *at, size_t len);
static int cl_on_message_complete(llhttp_t *p);
static void h_echo(sl_http_req_t *r);
static void h_echo_respond(sl_http_req_t *r);
static void h_delay(sl_http_req_t *r);
static void h_slow(sl_http_req_t *r);
static void h_stream(sl_http_req_t *r);
static void h_empty_stream(sl_http_req_t *r);
static void h_big(sl_http_req_t *r);
static void h_big_write(sl_http_req_t *r);
static void h_big_abort(sl_http_req_t *r);
static void h_badhdr(sl_http_req_t *r);
static job_t *job_new(sl_http_req_t *r);
static void job_on_close(uv_handle_t *handle);
static void job_on_delay(uv_timer_t *timer);
static void job_on_slow(uv_timer_t *timer);
static void job_on_stream(uv_timer_t *timer);
static void job_on_stream_begin(uv_timer_t *timer);
static void job_abort(sl_http_req_t *r);
static void job_stream_abort(sl_http_req_t *r);

#define CHECK(t, cond)                                        \
    do {                                                      \
        if (!(cond)) {                                        \
            check_fail((t), __FILE__, __LINE__, "%s", #cond); \
            return;                                           \
        }                                                     \
    } while (0)

#define CHECK_INT(t, a, b)                                                                 \
    do {                                                                                   \
        long long a_ = (long long) (a);                                                    \
        long long b_ = (long long) (b);                                                    \
        if (a_ != b_) {                                                                    \
            check_fail((t), __FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_HDR(t, resp, name, want)                                                     \
    do {                                                                                   \
        char v_[512];                                                                      \
        if (!cl_header((resp), (name), v_, sizeof(v_))) {                                  \
            check_fail((t), __FILE__, __LINE__, "header %s missing", (name));              \
            return;                                                                        \
        }                                                                                  \
        if (strcmp(v_, (want)) != 0) {                                                     \
            check_fail((t), __FILE__, __LINE__, "header %s: \"%s\" != \"%s\"", (name), v_, \
                       (want));                                                            \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_BODY(t, resp, s)                                                                \
    do {                                                                                      \
        if (!cl_body_has((resp), (s))) {                                                      \
            check_fail((t), __FILE__, __LINE__, "body lacks %s: %.*s", (s),                   \
                       (int) (resp)->body.len, (resp)->body.p != NULL ? (resp)->body.p : ""); \
            return;                                                                           \
        }                                                                                     \
    } while (0)

static const sl_http_route_t routes[] = {
    { "GET", "/echo", h_echo, NULL },
    { "POST", "/echo", h_echo, NULL },
    { "GET", "/v1/models", h_echo, NULL },
    { "GET", "/prefix/*", h_echo, NULL },
    { "GET", "/delay", h_delay, NULL },
    { "GET", "/slow", h_slow, NULL },
    { "GET", "/stream", h_stream, NULL },
    { "GET", "/big", h_big, NULL },
    { "GET", "/empty-stream", h_empty_stream, NULL },
    { "GET", "/badhdr", h_badhdr, NULL },
};


/* ---- harness ---------------------------------------------------------- */


static void
test_init(test_ctx_t *t)
{
    memset(t, 0, sizeof(*t));
    t->conf.max_connections = 64;
    t->conf.backlog = 128;
    t->conf.header_timeout = 5000;
    t->conf.body_timeout = 5000;
    t->conf.keepalive_timeout = 5000;
    t->conf.send_timeout = 5000;
    t->conf.max_body = 1024 * 1024;
    t->conf.max_header_size = 8192;
    t->conf.max_headers = 64;
    t->conf.keepalive_requests = 100;
    T = t;
}


static void
test_run(test_ctx_t *t, void (*client)(test_ctx_t *t))
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd;

    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->srv = sl_http_server_create(&t->loop, &t->conf, routes, sizeof(routes) / sizeof(routes[0]));
    assert_non_null(t->srv);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 128), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
    t->port = ntohs(sin.sin_port);
    assert_int_equal(sl_http_server_listen_fd(t->srv, fd), 0);

    assert_int_equal(uv_async_init(&t->loop, &t->done_async, test_on_done), 0);
    assert_int_equal(uv_async_init(&t->loop, &t->drain_async, test_on_drain), 0);
    t->done_async.data = t;
    t->drain_async.data = t;
    t->client = client;
    assert_int_equal(pthread_create(&t->thread, NULL, test_client_main, t), 0);

    uv_run(&t->loop, UV_RUN_DEFAULT);

    assert_int_equal(pthread_join(t->thread, NULL), 0);
    assert_int_equal(sl_http_server_connections(t->srv), 0);
    sl_http_server_destroy(t->srv);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    if (t->fail[0] != '\0') {
        fail_msg("%s", t->fail);
    }
}


static void
test_on_done(uv_async_t *async)
{
    test_ctx_t *t = async->data;

    sl_http_server_drain(t->srv, false);
    sl_http_server_close_all(t->srv);
    uv_close((uv_handle_t *) &t->done_async, NULL);
    uv_close((uv_handle_t *) &t->drain_async, NULL);
}


static void
test_on_drain(uv_async_t *async)
{
    test_ctx_t *t = async->data;

    sl_http_server_drain(t->srv, atomic_load(&t->retire));
}


static void *
test_client_main(void *arg)
{
    test_ctx_t *t = arg;

    t->client(t);
    uv_async_send(&t->done_async);
    return NULL;
}


static void
check_fail(test_ctx_t *t, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->fail[0] != '\0') {
        return;
    }
    n = snprintf(t->fail, sizeof(t->fail), "%s:%d: ", file, line);
    va_start(ap, fmt);
    vsnprintf(t->fail + n, sizeof(t->fail) - (size_t) n, fmt, ap);
    va_end(ap);
}


static void
ms_sleep(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}


static uint64_t
ms_now(void)
{
    return uv_hrtime() / 1000000;
}


/* ---- client ----------------------------------------------------------- */


/* A blocking client socket; rcvbuf > 0 shrinks its receive buffer. */
static int
cl_fd(int port, int rcvbuf)
{
    struct sockaddr_in sin;
    struct timeval tv = { 5, 0 };
    int one = 1;
    int fd;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);
    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}


static cl_conn_t *
cl_open(test_ctx_t *t)
{
    cl_conn_t *cc = calloc(1, sizeof(*cc));

    assert_non_null(cc);
    cc->t = t;
    cc->fd = cl_fd(t->port, t->rcvbuf);
    llhttp_settings_init(&cc->settings);
    cc->settings.on_header_field = cl_on_header_field;
    cc->settings.on_header_field_complete = cl_on_header_field_complete;
    cc->settings.on_header_value = cl_on_header_value;
    cc->settings.on_header_value_complete = cl_on_header_value_complete;
    cc->settings.on_headers_complete = cl_on_headers_complete;
    cc->settings.on_body = cl_on_body;
    cc->settings.on_message_complete = cl_on_message_complete;
    llhttp_init(&cc->parser, HTTP_RESPONSE, &cc->settings);
    cc->parser.data = cc;
    return cc;
}


static void
cl_close(cl_conn_t *cc)
{
    if (cc->fd >= 0) {
        close(cc->fd);
    }
    free(cc);
}


static void
cl_send(cl_conn_t *cc, const char *s)
{
    cl_sendn(cc, s, strlen(s));
}


static void
cl_sendn(cl_conn_t *cc, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(cc->fd, s, n, MSG_NOSIGNAL);

        if (w <= 0) {
            return;
        }
        s += w;
        n -= (size_t) w;
    }
}


/* Reads one response. Returns 0, -1 on timeout or EOF first, -2 on a parse error. */
static int
cl_read(cl_conn_t *cc, cl_resp_t *resp)
{
    llhttp_errno_t err;
    ssize_t n;

    memset(resp, 0, sizeof(*resp));
    resp->headers[0] = '\n';
    resp->hlen = 1;
    cc->resp = resp;
    cc->complete = false;
    for (;;) {
        if (cc->pos < cc->len) {
            const char *data = cc->buf + cc->pos;

            err = llhttp_execute(&cc->parser, data, cc->len - cc->pos);
            if (err == HPE_PAUSED) {
                cc->pos += (size_t) (llhttp_get_error_pos(&cc->parser) - data);
                llhttp_resume(&cc->parser);
                return 0;
            }
            if (err != HPE_OK) {
                return -2;
            }
            cc->pos = cc->len;
        }
        if (cc->eof) {
            llhttp_finish(&cc->parser);
            return cc->complete ? 0 : -1;
        }
        if (cc->pos == cc->len) {
            cc->pos = 0;
            cc->len = 0;
        }
        n = recv(cc->fd, cc->buf + cc->len, sizeof(cc->buf) - cc->len, 0);
        if (n == 0) {
            cc->eof = true;
            continue;
        }
        if (n < 0) {
            return -1;
        }
        cc->len += (size_t) n;
    }
}


/* True when the server closed the connection within ms and sent nothing more. */
static bool
cl_wait_eof(cl_conn_t *cc, int ms)
{
    struct pollfd pfd = { cc->fd, POLLIN, 0 };
    char b[256];
    ssize_t n;

    if (cc->eof) {
        return cc->pos == cc->len;
    }
    if (poll(&pfd, 1, ms) <= 0) {
        return false;
    }
    n = recv(cc->fd, b, sizeof(b), 0);
    if (n == 0) {
        cc->eof = true;
        return true;
    }
    return n < 0 && errno == ECONNRESET;
}


static void
cl_resp_free(cl_resp_t *resp)
{
    sl_buf_free(&resp->body);
}


static bool
cl_header(const cl_resp_t *resp, const char *name, char *out, size_t outlen)
{
    char key[128];
    const char *p;
    const char *end;
    size_t n;

    snprintf(key, sizeof(key), "\n%s: ", name);
    p = strstr(resp->headers, key);
    if (p == NULL) {
        return false;
    }
    p += strlen(key);
    end = strchr(p, '\n');
    n = end != NULL ? (size_t) (end - p) : strlen(p);
    if (n >= outlen) {
        n = outlen - 1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}


static bool
cl_body_has(const cl_resp_t *resp, const char *s)
{
    size_t n = strlen(s);

    if (resp->body.len < n) {
        return false;
    }
    for (size_t i = 0; i + n <= resp->body.len; i++) {
        if (memcmp(resp->body.p + i, s, n) == 0) {
            return true;
        }
    }
    return false;
}


static bool
is_hex32(const char *s)
{
    if (strlen(s) != 32) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) {
            return false;
        }
    }
    return true;
}


static void
cl_hdr_append(cl_resp_t *resp, const char *at, size_t len, bool lower)
{
    for (size_t i = 0; i < len && resp->hlen + 2 < sizeof(resp->headers); i++) {
        char ch = at[i];

        if (lower && ch >= 'A' && ch <= 'Z') {
            ch = (char) (ch + 32);
        }
        resp->headers[resp->hlen++] = ch;
    }
    resp->headers[resp->hlen] = '\0';
}


static int
cl_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    cl_conn_t *cc = p->data;

    cl_hdr_append(cc->resp, at, len, true);
    return 0;
}


static int
cl_on_header_field_complete(llhttp_t *p)
{
    cl_conn_t *cc = p->data;

    cl_hdr_append(cc->resp, ": ", 2, false);
    return 0;
}


static int
cl_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    cl_conn_t *cc = p->data;

    cl_hdr_append(cc->resp, at, len, false);
    return 0;
}


static int
cl_on_header_value_complete(llhttp_t *p)
{
    cl_conn_t *cc = p->data;

    cl_hdr_append(cc->resp, "\n", 1, false);
    return 0;
}


static int
cl_on_headers_complete(llhttp_t *p)
{
    cl_conn_t *cc = p->data;

    cc->resp->status = p->status_code;
    cc->resp->chunked = (p->flags & F_CHUNKED) != 0;
    return 0;
}


static int
cl_on_body(llhttp_t *p, const char *at, size_t len)
{
    cl_conn_t *cc = p->data;

    sl_buf_append(&cc->resp->body, at, len);
    if (cc->on_body != NULL) {
        cc->on_body(cc, at, len);
    }
    return 0;
}


static int
cl_on_message_complete(llhttp_t *p)
{
    cl_conn_t *cc = p->data;

    cc->complete = true;
    return HPE_PAUSED;
}


/* ---- handlers (loop thread) ------------------------------------------- */


static void
h_echo(sl_http_req_t *r)
{
    int n = atomic_fetch_add(&T->inflight, 1) + 1;

    if (n > atomic_load(&T->max_inflight)) {
        atomic_store(&T->max_inflight, n);
    }
    h_echo_respond(r);
}


static void
h_echo_respond(sl_http_req_t *r)
{
    const sl_str_t *x = sl_http_req_header(r, "x-test");
    sl_http_header_t h = { sl_str_lit("Content-Type"), sl_str_lit("application/json") };
    json_t *o;
    char *s;

    o = json_pack("{s:s%,s:s%,s:s%,s:s%,s:I,s:s%,s:s,s:s}", "method", r->method.p, r->method.len,
                  "path", r->path.p, r->path.len, "query", r->query.p, r->query.len, "body",
                  r->body.p, r->body.len, "blen", (json_int_t) r->body.len, "hdr",
                  x != NULL ? x->p : "", x != NULL ? x->len : 0, "rid", r->request_id, "addr",
                  r->client_addr);
    assert_non_null(o);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    atomic_fetch_sub(&T->inflight, 1);
    atomic_fetch_add(&T->handled, 1);
    sl_http_respond(r, 200, &h, 1, s, strlen(s));
    free(s);
}


static job_t *
job_new(sl_http_req_t *r)
{
    job_t *j = calloc(1, sizeof(*j));

    assert_non_null(j);
    j->r = r;
    uv_timer_init(r->loop, &j->timer);
    j->timer.data = j;
    r->data = j;
    return j;
}


static void
job_on_close(uv_handle_t *handle)
{
    free(handle->data);
}


static void
h_delay(sl_http_req_t *r)
{
    job_t *j = job_new(r);
    int n = atomic_fetch_add(&T->inflight, 1) + 1;

    if (n > atomic_load(&T->max_inflight)) {
        atomic_store(&T->max_inflight, n);
    }
    r->on_abort = job_abort;
    uv_timer_start(&j->timer, job_on_delay, 50, 0);
}


static void
job_on_delay(uv_timer_t *timer)
{
    job_t *j = timer->data;

    h_echo_respond(j->r);
    uv_close((uv_handle_t *) &j->timer, job_on_close);
}


static void
h_slow(sl_http_req_t *r)
{
    job_t *j = job_new(r);
    unsigned long long ms = 3000;

    if (r->query.len > 3 && memcmp(r->query.p, "ms=", 3) == 0) {
        sl_str_to_u64((sl_str_t){ r->query.p + 3, r->query.len - 3 }, &ms);
    }
    r->on_abort = job_abort;
    uv_timer_start(&j->timer, job_on_slow, ms, 0);
}


static void
job_on_slow(uv_timer_t *timer)
{
    job_t *j = timer->data;

    sl_http_respond(j->r, 200, NULL, 0, "slow done", 9);
    uv_close((uv_handle_t *) &j->timer, job_on_close);
}


/* The client went away: stop the work, release the request. */
static void
job_abort(sl_http_req_t *r)
{
    job_t *j = r->data;

    assert_true(r->aborted);
    atomic_fetch_add(&T->aborts, 1);
    uv_timer_stop(&j->timer);
    assert_int_equal(sl_http_respond(r, 200, NULL, 0, "late", 4), 0);
    uv_close((uv_handle_t *) &j->timer, job_on_close);
}


/* Three pieces 100 ms apart; "?wait=MS" first waits before the response starts. */
static void
h_stream(sl_http_req_t *r)
{
    job_t *j = job_new(r);
    unsigned long long ms = 0;

    r->on_abort = job_stream_abort;
    if (r->query.len > 5 && memcmp(r->query.p, "wait=", 5) == 0) {
        sl_str_to_u64((sl_str_t){ r->query.p + 5, r->query.len - 5 }, &ms);
    }
    if (ms > 0) {
        uv_timer_start(&j->timer, job_on_stream_begin, ms, 0);
        return;
    }
    job_on_stream_begin(&j->timer);
}


static void
job_on_stream_begin(uv_timer_t *timer)
{
    sl_http_header_t h = { sl_str_lit("Content-Type"), sl_str_lit("text/plain") };
    job_t *j = timer->data;
    sl_http_req_t *r = j->r;

    assert_int_equal(sl_http_start(r, 200, &h, 1), 0);
    atomic_store(&T->produced, 1);
    sl_http_write(r, "piece-1", 7);
    j->step = 1;
    uv_timer_start(&j->timer, job_on_stream, 100, 100);
}


static void
job_on_stream(uv_timer_t *timer)
{
    job_t *j = timer->data;

    j->step++;
    atomic_store(&T->produced, j->step);
    if (j->step == 3) {
        /* the last piece and the end in one write */
        sl_http_finish_with(j->r, "piece-3", 7);
        uv_close((uv_handle_t *) &j->timer, job_on_close);
        return;
    }
    sl_http_write(j->r, "piece-2", 7);
}


static void
job_stream_abort(sl_http_req_t *r)
{
    job_t *j = r->data;

    atomic_fetch_add(&T->aborts, 1);
    uv_timer_stop(&j->timer);
    assert_int_equal(sl_http_write(r, "x", 1), SL_ECLOSED);
    sl_http_finish(r);
    uv_close((uv_handle_t *) &j->timer, job_on_close);
}


/* A stream that ends before its first piece: the head, held for that piece, goes with the end. */
static void
h_empty_stream(sl_http_req_t *r)
{
    assert_int_equal(sl_http_start(r, 200, NULL, 0), 0);
    assert_int_equal(sl_http_finish(r), 0);
}


/* Streams BIG_TOTAL bytes, pausing while the connection is congested. */
static void
h_big(sl_http_req_t *r)
{
    job_t *j = calloc(1, sizeof(*j));

    assert_non_null(j);
    j->r = r;
    r->data = j;
    r->on_abort = h_big_abort;
    r->on_drain = h_big_write;
    sl_http_start(r, 200, NULL, 0);
    h_big_write(r);
}


static void
h_big_write(sl_http_req_t *r)
{
    static char piece[BIG_PIECE];
    job_t *j = r->data;

    if (j->sent > 0) {
        atomic_fetch_add(&T->drains, 1);
    }
    memset(piece, 'b', sizeof(piece));
    while (j->sent < BIG_TOTAL) {
        if (sl_http_is_congested(r)) {
            assert_true(sl_http_queued(r) > 0);
            return;
        }
        if (sl_http_write(r, piece, sizeof(piece)) != 0) {
            return;
        }
        j->sent += sizeof(piece);
    }
    free(j);
    sl_http_finish(r);
}


static void
h_big_abort(sl_http_req_t *r)
{
    atomic_fetch_add(&T->aborts, 1);
    free(r->data);
    sl_http_finish(r);
}


/* Headers a handler built from client input: control characters, DEL, a bad name. */
static void
h_badhdr(sl_http_req_t *r)
{
    static const char del[] = "gpt\x7f-4o";
    static const char crlf[] = "v\r\nInjected: 1";
    static const char nul[] = { 'a', '\0', 'b' };
    sl_http_header_t h[] = {
        { sl_str_lit("x-sluice-model"), { del, sizeof(del) - 1 } },
        { sl_str_lit("x-crlf"), { crlf, sizeof(crlf) - 1 } },
        { sl_str_lit("x-nul"), { nul, sizeof(nul) } },
        { sl_str_lit("bad name"), sl_str_lit("v") },
        { sl_str_lit("x-tab"), sl_str_lit("a\tb") },
        { sl_str_lit("x-utf8"), sl_str_lit("mod\xc3\xa8le") },
    };

    sl_http_respond(r, 200, h, sizeof(h) / sizeof(h[0]), "ok", 2);
}


/* ---- clients ---------------------------------------------------------- */


static void
client_simple(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char v[128];

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Test: hello\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"method\":\"GET\"");
    CHECK_BODY(t, &resp, "\"path\":\"/echo\"");
    CHECK_BODY(t, &resp, "\"query\":\"a=1&b=2\"");
    CHECK_BODY(t, &resp, "\"hdr\":\"hello\"");
    CHECK_BODY(t, &resp, "\"addr\":\"127.0.0.1:");
    CHECK_HDR(t, &resp, "server", "sluice");
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    CHECK_HDR(t, &resp, "content-type", "application/json");
    snprintf(v, sizeof(v), "%zu", resp.body.len);
    CHECK_HDR(t, &resp, "content-length", v);
    CHECK(t, cl_header(&resp, "date", v, sizeof(v)) && strstr(v, " GMT") != NULL);
    CHECK(t, cl_header(&resp, "x-request-id", v, sizeof(v)) && is_hex32(v));
    cl_resp_free(&resp);

    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"method\":\"POST\"");
    CHECK_BODY(t, &resp, "\"body\":\"hello world\"");
    cl_resp_free(&resp);

    /* a request line, a header value and the body split across reads */
    cl_send(cc, "POST /ec");
    ms_sleep(30);
    cl_send(cc, "ho HTTP/1.1\r\nX-Te");
    ms_sleep(30);
    cl_send(cc, "st: hel");
    ms_sleep(30);
    cl_send(cc, "lo there  \r\nHost: x\r\nContent-Length: 6\r\n\r\nab");
    ms_sleep(30);
    cl_send(cc, "cdef");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"path\":\"/echo\"");
    CHECK_BODY(t, &resp, "\"hdr\":\"hello there\"");
    CHECK_BODY(t, &resp, "\"body\":\"abcdef\"");
    cl_resp_free(&resp);

    /* a large body, over the initial reservation */
    {
        size_t n = 200000;
        char *big = malloc(n);
        char head[128];

        CHECK(t, big != NULL);
        memset(big, 'x', n);
        snprintf(head, sizeof(head),
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
        cl_send(cc, head);
        cl_sendn(cc, big, n);
        free(big);
    }
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"blen\":200000");
    cl_resp_free(&resp);

    /* the absolute form */
    cl_send(cc, "GET http://example.com/echo?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"path\":\"/echo\"");
    CHECK_BODY(t, &resp, "\"query\":\"q=1\"");
    cl_resp_free(&resp);

    /* a prefix route */
    cl_send(cc, "GET /prefix/a/b HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"path\":\"/prefix/a/b\"");
    cl_resp_free(&resp);

    /* HTTP/1.1 without Host is malformed (RFC 9112 3.2); 1.0 needs none */
    cl_send(cc, "GET /echo HTTP/1.1\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 400);
    CHECK_BODY(t, &resp, "missing Host header");
    cl_resp_free(&resp);
    cl_close(cc);

    cc = cl_open(t);
    cl_send(cc, "GET /echo HTTP/1.0\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_simple(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_simple);
}


static void
client_keepalive(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char id1[64];
    char id2[64];

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK(t, cl_header(&resp, "x-request-id", id1, sizeof(id1)));
    cl_resp_free(&resp);
    cl_send(cc, "GET /echo?two HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"query\":\"two\"");
    CHECK(t, cl_header(&resp, "x-request-id", id2, sizeof(id2)));
    CHECK(t, is_hex32(id1) && is_hex32(id2) && strcmp(id1, id2) != 0);
    /* the same prefix (server), a different counter */
    CHECK(t, memcmp(id1, id2, 16) == 0);
    cl_resp_free(&resp);
    CHECK_INT(t, sl_http_server_connections(t->srv), 1);
    cl_close(cc);
}


static void
test_keepalive(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_keepalive);
}


static void
client_keepalive_requests(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    cl_resp_free(&resp);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);
}


static void
test_keepalive_requests(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.keepalive_requests = 2;
    test_run(&t, client_keepalive_requests);
}


static void
client_pipeline(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /delay?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                "POST /echo?n=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
                "GET /delay?n=3 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /echo?n=4 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"query\":\"n=1\"");
    cl_resp_free(&resp);
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_BODY(t, &resp, "\"query\":\"n=2\"");
    CHECK_BODY(t, &resp, "\"body\":\"two\"");
    cl_resp_free(&resp);
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_BODY(t, &resp, "\"query\":\"n=3\"");
    cl_resp_free(&resp);
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_BODY(t, &resp, "\"query\":\"n=4\"");
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    cl_resp_free(&resp);
    CHECK_INT(t, atomic_load(&t->max_inflight), 1);
    cl_close(cc);
}


static void
test_pipeline(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_pipeline);
}


static void
client_chunked(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n");
    ms_sleep(30);
    cl_send(cc, "6\r\n world\r\n0\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"body\":\"hello world\"");
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    cl_resp_free(&resp);

    /* one byte per read: every span and chunk split everywhere */
    {
        static const char req[] = "POST /echo?x=y HTTP/1.1\r\nHost: x\r\nX-Test: dribble\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "3\r\nabc\r\na\r\n0123456789\r\n0\r\n\r\n";

        for (size_t i = 0; i < sizeof(req) - 1; i++) {
            cl_sendn(cc, req + i, 1);
            ms_sleep(1);
        }
    }
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"query\":\"x=y\"");
    CHECK_BODY(t, &resp, "\"hdr\":\"dribble\"");
    CHECK_BODY(t, &resp, "\"body\":\"abc0123456789\"");
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_chunked_body(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_chunked);
}


static void
client_expect(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                "Content-Length: 5\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 100);
    cl_resp_free(&resp);
    cl_send(cc, "hello");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"body\":\"hello\"");
    cl_resp_free(&resp);

    /* over the limit: 413 without a 100 */
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                "Content-Length: 5000\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 413);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);

    cc = cl_open(t);
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n"
                "Content-Length: 5\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 417);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK_BODY(t, &resp, "\"code\":\"expectation_failed\"");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);
}


static void
test_expect(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.max_body = 1000;
    test_run(&t, client_expect);
}


static void
client_too_large(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char chunk[80];

    /* Content-Length over max_body: answered before any body byte */
    CHECK(t, cc->fd >= 0);
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 413);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK_BODY(t, &resp, "\"code\":\"request_too_large\"");
    CHECK_BODY(t, &resp, "\"type\":\"invalid_request_error\"");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);

    /* chunked: as soon as the limit is crossed */
    cc = cl_open(t);
    memset(chunk, 'z', sizeof(chunk));
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 2; i++) {
        cl_send(cc, "50\r\n");
        cl_sendn(cc, chunk, sizeof(chunk));
        cl_send(cc, "\r\n");
    }
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 413);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);
}


static void
test_too_large(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.max_body = 100;
    test_run(&t, client_too_large);
}


static void
client_431(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char big[2100];
    char line[64];

    CHECK(t, cc->fd >= 0);
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ");
    cl_send(cc, big);
    cl_send(cc, "\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 431);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);

    cc = cl_open(t);
    cl_send(cc, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 20; i++) {
        snprintf(line, sizeof(line), "X-H%d: %d\r\n", i, i);
        cl_send(cc, line);
    }
    cl_send(cc, "\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 431);
    CHECK_BODY(t, &resp, "Too many request header fields");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);

    /* exactly at the header limit is fine */
    cc = cl_open(t);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 8; i++) {
        snprintf(line, sizeof(line), "X-H%d: %d\r\n", i, i);
        cl_send(cc, line);
    }
    cl_send(cc, "\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_431(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.max_header_size = 1024;
    t.conf.max_headers = 10;
    test_run(&t, client_431);
}


static void
client_timeouts(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    uint64_t t0 = ms_now();

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 408);
    CHECK(t, ms_now() - t0 >= 150);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK_BODY(t, &resp, "\"code\":\"request_timeout\"");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);

    /* body_timeout: the gap between body reads */
    cc = cl_open(t);
    t0 = ms_now();
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");
    ms_sleep(100);
    cl_send(cc, "cd");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 408);
    CHECK(t, ms_now() - t0 >= 250);
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);

    /* keepalive_timeout: an idle connection closes silently */
    cc = cl_open(t);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    cl_resp_free(&resp);
    t0 = ms_now();
    CHECK(t, cl_wait_eof(cc, 2000));
    CHECK(t, ms_now() - t0 >= 250);
    cl_close(cc);

    /* a fresh connection that never sends closes silently after header_timeout */
    cc = cl_open(t);
    CHECK(t, cl_wait_eof(cc, 2000));
    cl_close(cc);
}


static void
test_timeouts(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.header_timeout = 200;
    t.conf.body_timeout = 200;
    t.conf.keepalive_timeout = 300;
    test_run(&t, client_timeouts);
}


static void
client_routing(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char v[64];

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /v1/foo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 404);
    CHECK(t, resp.body.len > 0
                 && strncmp(resp.body.p,
                            "{\"error\":{\"message\":\"Unknown request URL: GET /v1/foo.\","
                            "\"type\":\"invalid_request_error\",\"param\":null,"
                            "\"code\":\"unknown_url\"}}",
                            resp.body.len)
                        == 0);
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    CHECK(t, cl_header(&resp, "x-request-id", v, sizeof(v)) && is_hex32(v));
    cl_resp_free(&resp);

    cl_send(cc, "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 405);
    CHECK_HDR(t, &resp, "allow", "GET");
    CHECK_BODY(t, &resp, "\"code\":\"method_not_allowed\"");
    cl_resp_free(&resp);

    cl_send(cc, "DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 405);
    CHECK_HDR(t, &resp, "allow", "GET, POST");
    cl_resp_free(&resp);

    /* CORS is off: OPTIONS is just another method */
    cl_send(cc, "OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n"
                "Access-Control-Request-Method: POST\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 405);
    CHECK(t, !cl_header(&resp, "access-control-allow-origin", v, sizeof(v)));
    cl_resp_free(&resp);

    /* a message with JSON-hostile bytes is escaped */
    cl_send(cc, "GET /a\"b\\c HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 404);
    CHECK_BODY(t, &resp, "GET /a\\\"b\\\\c.\"");
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_routing(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_routing);
}


static void
client_malformed(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01z\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 400);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK_BODY(t, &resp, "invalid HTTP request: Invalid header value char");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);

    cc = cl_open(t);
    cl_send(cc, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 505);
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);

    cc = cl_open(t);
    cl_send(cc, "GET /\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 400);
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);

    /* a TLS ClientHello on the plain port */
    cc = cl_open(t);
    cl_sendn(cc, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 400);
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);

    /* Content-Length and chunked together: request smuggling */
    cc = cl_open(t);
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 400);
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_malformed(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_malformed);
}


/* A line starting with ':' is a field with an empty name (found by fuzz_http): refused. */
static void
client_empty_header_name(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\n:ransfer-Encoding: chunked\r\n"
                "Content-Length: 2\r\n\r\nhi");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 400);
    CHECK_BODY(t, &resp, "invalid HTTP request: empty header name");
    CHECK_INT(t, atomic_load(&t->handled), 0);
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 3000));
    cl_close(cc);
}


static void
test_empty_header_name(void **state)
{
    test_ctx_t t;

    (void) state;
    test_init(&t);
    test_run(&t, client_empty_header_name);
}


/*
 * Trailer fields of a chunked body never join the request's headers (found
 * by fuzz_http: a trailer Content-Length sat next to Transfer-Encoding).
 */
static void
client_trailers(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char big[1200];

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "2\r\nhi\r\n0\r\nX-Test: from-trailer\r\nContent-Length: 4\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"body\":\"hi\"");
    CHECK_BODY(t, &resp, "\"hdr\":\"\"");
    cl_resp_free(&resp);

    /* the header's own value stays; the connection stays usable */
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nX-Test: header\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\nX-Test: trailer\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "\"hdr\":\"header\"");
    cl_resp_free(&resp);

    /* trailers count against max_header_size (8192 here) like headers do */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cl_send(cc, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    for (int i = 0; i < 8; i++) {
        cl_send(cc, "X-Pad: ");
        cl_send(cc, big);
        cl_send(cc, "\r\n");
    }
    cl_send(cc, "\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 431);
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_trailers(void **state)
{
    test_ctx_t t;

    (void) state;
    test_init(&t);
    test_run(&t, client_trailers);
}


static void
client_request_id(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char v[200];
    char big[140];

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123_x.y:Z\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_HDR(t, &resp, "x-request-id", "abc-123_x.y:Z");
    CHECK_BODY(t, &resp, "\"rid\":\"abc-123_x.y:Z\"");
    cl_resp_free(&resp);

    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id!\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK(t, cl_header(&resp, "x-request-id", v, sizeof(v)) && is_hex32(v));
    cl_resp_free(&resp);

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: ");
    cl_send(cc, big);
    cl_send(cc, "\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK(t, cl_header(&resp, "x-request-id", v, sizeof(v)) && is_hex32(v));
    cl_resp_free(&resp);

    /* errors the server makes itself carry one too */
    cl_send(cc, "GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-42\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 404);
    CHECK_HDR(t, &resp, "x-request-id", "trace-42");
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_request_id(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_request_id);
}


static void
client_http10(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo HTTP/1.0\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);

    cc = cl_open(t);
    cl_send(cc, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    cl_resp_free(&resp);
    cl_send(cc, "GET /echo?again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_BODY(t, &resp, "\"query\":\"again\"");
    cl_resp_free(&resp);

    /* an HTTP/1.1 client asking to close */
    cl_send(cc, "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);

    /* streaming to HTTP/1.0: delimited by the close */
    cc = cl_open(t);
    cl_send(cc, "GET /stream HTTP/1.0\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK(t, !resp.chunked);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK(t, resp.body.len == 21 && memcmp(resp.body.p, "piece-1piece-2piece-3", 21) == 0);
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_http10(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_http10);
}


static void
stream_on_body(cl_conn_t *cc, const char *at, size_t len)
{
    if (!cc->piece1_checked && cl_body_has(cc->resp, "piece-1")) {
        cc->piece1_checked = true;
        cc->produced_at_piece1 = atomic_load(&cc->t->produced);
    }
}


static void
client_stream(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cc->on_body = stream_on_body;
    cl_send(cc, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK(t, resp.chunked);
    CHECK_HDR(t, &resp, "transfer-encoding", "chunked");
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    CHECK(t, cc->piece1_checked);
    CHECK(t, cc->produced_at_piece1 < 3);
    CHECK(t, resp.body.len == 21 && memcmp(resp.body.p, "piece-1piece-2piece-3", 21) == 0);
    cl_resp_free(&resp);

    /* a stream without a piece: its head and its end */
    cc->on_body = NULL;
    cl_send(cc, "GET /empty-stream HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK(t, resp.chunked);
    CHECK(t, resp.body.len == 0);
    cl_resp_free(&resp);

    /* the connection is reusable after a streamed response */
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_stream(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_stream);
}


static void
client_abort(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    uint64_t t0;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /slow?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n");
    ms_sleep(100);
    cl_close(cc);
    t0 = ms_now();
    while (atomic_load(&t->aborts) == 0 && ms_now() - t0 < 2000) {
        ms_sleep(10);
    }
    CHECK_INT(t, atomic_load(&t->aborts), 1);

    /* the same while streaming */
    cc = cl_open(t);
    cl_send(cc, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    ms_sleep(50);
    cl_close(cc);
    t0 = ms_now();
    while (atomic_load(&t->aborts) == 1 && ms_now() - t0 < 2000) {
        ms_sleep(10);
    }
    CHECK_INT(t, atomic_load(&t->aborts), 2);
    t0 = ms_now();
    while (sl_http_server_connections(t->srv) != 0 && ms_now() - t0 < 2000) {
        ms_sleep(10);
    }
    CHECK_INT(t, sl_http_server_connections(t->srv), 0);
}


static void
test_abort(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_abort);
}


static void
client_backpressure(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    ms_sleep(200);
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_INT(t, resp.body.len, BIG_TOTAL);
    CHECK(t, atomic_load(&t->drains) > 0);
    cl_resp_free(&resp);
    cl_close(cc);

    /* a client that does not read at all hits send_timeout */
    cc = cl_open(t);
    cl_send(cc, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    uint64_t t0 = ms_now();
    while (atomic_load(&t->aborts) == 0 && ms_now() - t0 < 3000) {
        ms_sleep(10);
    }
    CHECK_INT(t, atomic_load(&t->aborts), 1);
    cl_close(cc);
}


static void
test_backpressure(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.send_timeout = 300;
    t.rcvbuf = 16384;
    test_run(&t, client_backpressure);
}


static void
client_cors(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char v[256];

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                "Access-Control-Request-Method: POST\r\n"
                "Access-Control-Request-Headers: content-type, authorization\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 204);
    CHECK_HDR(t, &resp, "access-control-allow-origin", "https://app.example");
    CHECK_HDR(t, &resp, "access-control-allow-methods", "GET, POST");
    CHECK_HDR(t, &resp, "access-control-allow-headers", "content-type, authorization");
    CHECK_HDR(t, &resp, "access-control-max-age", "600");
    CHECK_HDR(t, &resp, "vary", "Origin");
    CHECK(t, !cl_header(&resp, "content-length", v, sizeof(v)));
    cl_resp_free(&resp);

    cl_send(cc, "OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                "Access-Control-Request-Method: POST\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 204);
    CHECK_HDR(t, &resp, "access-control-allow-headers",
              "authorization, content-type, x-api-key, x-request-id");
    cl_resp_free(&resp);

    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "access-control-allow-origin", "https://app.example");
    CHECK_HDR(t, &resp, "vary", "Origin");
    CHECK_HDR(t, &resp, "access-control-expose-headers",
              "x-request-id, x-sluice-provider, x-sluice-model, x-sluice-cache, "
              "x-sluice-attempts");
    cl_resp_free(&resp);

    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK(t, !cl_header(&resp, "access-control-allow-origin", v, sizeof(v)));
    cl_resp_free(&resp);

    /* errors carry CORS headers too, or the browser hides them */
    cl_send(cc, "GET /nope HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 404);
    CHECK_HDR(t, &resp, "access-control-allow-origin", "https://app.example");
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_cors(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.cors.enabled = true;
    t.cors_origins[0] = "https://app.example";
    t.conf.cors.origins = t.cors_origins;
    t.conf.cors.norigins = 1;
    t.conf.cors.max_age = 600;
    test_run(&t, client_cors);
}


static void
client_cors_star(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://any.example\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_HDR(t, &resp, "access-control-allow-origin", "*");
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_cors_star(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.cors.enabled = true;
    t.cors_origins[0] = "*";
    t.conf.cors.origins = t.cors_origins;
    t.conf.cors.norigins = 1;
    test_run(&t, client_cors_star);
}


static void
client_max_conns(test_ctx_t *t)
{
    cl_conn_t *a = cl_open(t);
    cl_conn_t *b;
    cl_resp_t resp;

    CHECK(t, a->fd >= 0);
    cl_send(a, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(a, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    cl_resp_free(&resp);

    b = cl_open(t);
    cl_send(b, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(b, &resp), 0);
    CHECK_INT(t, resp.status, 503);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK_BODY(t, &resp, "\"type\":\"server_error\"");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(b, 3000));
    cl_close(b);

    /* once a closes, there is room again */
    cl_close(a);
    ms_sleep(100);
    a = cl_open(t);
    cl_send(a, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(a, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    cl_resp_free(&resp);
    cl_close(a);
}


static void
test_max_connections(void **state)
{
    test_ctx_t t;

    test_init(&t);
    t.conf.max_connections = 1;
    test_run(&t, client_max_conns);
}


/*
 * Three connections for the drain tests: idle and late each served once
 * (keep-alive, now idle), busy with a 300 ms request under way.
 */
static void
cl_open_drain_set(test_ctx_t *t, cl_conn_t **busy, cl_conn_t **idle, cl_conn_t **late)
{
    cl_resp_t resp;

    *busy = cl_open(t);
    *idle = cl_open(t);
    *late = cl_open(t);
    CHECK(t, (*busy)->fd >= 0 && (*idle)->fd >= 0 && (*late)->fd >= 0);
    cl_send(*idle, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(*idle, &resp), 0);
    cl_resp_free(&resp);
    cl_send(*late, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(*late, &resp), 0);
    cl_resp_free(&resp);
    cl_send(*busy, "GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    ms_sleep(100);
}


static void
client_drain(test_ctx_t *t)
{
    cl_conn_t *busy, *idle, *late;
    cl_resp_t resp;

    cl_open_drain_set(t, &busy, &idle, &late);
    uv_async_send(&t->drain_async);
    ms_sleep(50);

    /* an idle connection that sends its next request during the grace is served, then closed */
    cl_send(late, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(late, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(late, 1000));
    cl_close(late);

    /* one that stays quiet is closed after the grace */
    CHECK(t, cl_wait_eof(idle, 2500));
    CHECK_INT(t, cl_read(busy, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(busy, 1000));
    CHECK(t, cl_fd(t->port, 0) < 0);
    cl_close(busy);
    cl_close(idle);
}


static void
test_drain(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_drain);
}


/*
 * A reload retires the server: an idle keep-alive connection is kept past
 * the stop's grace, so a client that sends on it a while later is answered
 * (with Connection: close) instead of reset; a busy one finishes as in a
 * stop. A stop after the retire gives the quiet ones the short grace.
 */
static void
client_retire(test_ctx_t *t)
{
    cl_conn_t *busy, *idle, *late;
    cl_resp_t resp;

    cl_open_drain_set(t, &busy, &idle, &late);
    atomic_store(&t->retire, true);
    uv_async_send(&t->drain_async);

    /* the busy one is answered with Connection: close and closed, as in a stop */
    CHECK_INT(t, cl_read(busy, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(busy, 1000));
    /* no new connection is accepted */
    CHECK(t, cl_fd(t->port, 0) < 0);

    /* well past the stop's 1 s grace, the idle ones are still open */
    CHECK(t, !cl_wait_eof(late, 1800));
    cl_send(late, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(late, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(late, 1000));

    /* a stop after the retire: the quiet one gets the grace, then is closed */
    CHECK(t, !cl_wait_eof(idle, 0));
    atomic_store(&t->retire, false);
    uv_async_send(&t->drain_async);
    CHECK(t, cl_wait_eof(idle, 2500));
    cl_close(busy);
    cl_close(idle);
    cl_close(late);
}


static void
test_retire(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_retire);
}


/*
 * No response header value carries a control character: the writer sends
 * them as '?' (CR and LF too, so nothing is injected), drops a header whose
 * name is not a token, and keeps HTAB and UTF-8.
 */
static void
client_header_values(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    char v[128];

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /badhdr HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "x-sluice-model", "gpt?-4o");
    CHECK_HDR(t, &resp, "x-crlf", "v??Injected: 1");
    CHECK_HDR(t, &resp, "x-nul", "a?b");
    CHECK_HDR(t, &resp, "x-tab", "a\tb");
    CHECK_HDR(t, &resp, "x-utf8", "mod\xc3\xa8le");
    CHECK(t, !cl_header(&resp, "injected", v, sizeof(v)));
    CHECK(t, !cl_header(&resp, "bad name", v, sizeof(v)));
    CHECK(t, strstr(resp.headers, "bad name") == NULL);
    cl_resp_free(&resp);

    /* the connection is still in sync */
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    cl_resp_free(&resp);
    cl_close(cc);
}


static void
test_header_values(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_header_values);
}


static void
test_field_value_checks(void **state)
{
    static const char nul[] = { 'a', '\0' };

    assert_true(sl_http_is_field_value(sl_str_lit("gpt-4o mini\t(x)")));
    assert_true(sl_http_is_field_value(sl_str_lit("mod\xc3\xa8le")));
    assert_true(sl_http_is_field_value(sl_str_lit("")));
    assert_false(sl_http_is_field_value(sl_str_lit("gpt\x7f")));
    assert_false(sl_http_is_field_value(sl_str_lit("a\rb")));
    assert_false(sl_http_is_field_value(sl_str_lit("a\nb")));
    assert_false(sl_http_is_field_value(sl_str_lit("\x1b[31m")));
    assert_false(sl_http_is_field_value((sl_str_t){ nul, sizeof(nul) }));
    /* eight bytes a step: every byte value at every offset of a 19-byte value */
    for (unsigned b = 0; b < 256; b++) {
        for (size_t at = 0; at < 19; at++) {
            char v[19];

            memset(v, 'a', sizeof(v));
            v[at] = (char) b;
            assert_int_equal(sl_http_is_field_value((sl_str_t){ v, sizeof(v) }),
                             b >= 0x20 ? b != 0x7f : b == '\t');
        }
    }
    assert_true(sl_http_is_token(sl_str_lit("x-sluice-model")));
    assert_true(sl_http_is_token(sl_str_lit("!#$%&'*+-.^_`|~09azAZ")));
    assert_false(sl_http_is_token(sl_str_lit("")));
    assert_false(sl_http_is_token(sl_str_lit("bad name")));
    assert_false(sl_http_is_token(sl_str_lit("x:y")));
    assert_false(sl_http_is_token(sl_str_lit("x\x7f")));
    assert_false(sl_http_is_token((sl_str_t){ nul, sizeof(nul) }));
    (void) state;
}


/* Reads the next final (non-1xx) response; *interim counts the 1xx ones skipped. */
static int
cl_read_final(cl_conn_t *cc, cl_resp_t *resp, int *interim)
{
    int rc;

    for (;;) {
        rc = cl_read(cc, resp);
        if (rc != 0 || resp->status >= 200) {
            return rc;
        }
        (*interim)++;
        cl_resp_free(resp);
    }
}


/*
 * A client that half-closes (shutdown(SHUT_WR)) after its request still
 * gets its whole answer, also to pipelined requests and streams, then EOF.
 */
static void
client_half_close(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_resp_t resp;
    int interim = 0;

    CHECK(t, cc->fd >= 0);
    cl_send(cc, "GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, shutdown(cc->fd, SHUT_WR), 0);
    CHECK_INT(t, cl_read_final(cc, &resp, &interim), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "slow done");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);
    CHECK_INT(t, atomic_load(&t->aborts), 0);

    cc = cl_open(t);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Test: first\r\n\r\n"
                "GET /slow?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /echo HTTP/1.1\r\nHost: x\r\nX-Test: third\r\n\r\n");
    CHECK_INT(t, shutdown(cc->fd, SHUT_WR), 0);
    CHECK_INT(t, cl_read_final(cc, &resp, &interim), 0);
    CHECK_BODY(t, &resp, "\"hdr\":\"first\"");
    cl_resp_free(&resp);
    CHECK_INT(t, cl_read_final(cc, &resp, &interim), 0);
    CHECK_BODY(t, &resp, "slow done");
    cl_resp_free(&resp);
    CHECK_INT(t, cl_read_final(cc, &resp, &interim), 0);
    CHECK_BODY(t, &resp, "\"hdr\":\"third\"");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);

    /* HTTP/1.0 gets no interim response, just the answer */
    cc = cl_open(t);
    interim = 0;
    cl_send(cc, "GET /slow?ms=200 HTTP/1.0\r\n\r\n");
    CHECK_INT(t, shutdown(cc->fd, SHUT_WR), 0);
    CHECK_INT(t, cl_read_final(cc, &resp, &interim), 0);
    CHECK_INT(t, interim, 0);
    CHECK_BODY(t, &resp, "slow done");
    cl_resp_free(&resp);
    cl_close(cc);

    /* a stream that begins after the half-close goes on to its end */
    cc = cl_open(t);
    cl_send(cc, "GET /stream?wait=200 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_INT(t, shutdown(cc->fd, SHUT_WR), 0);
    CHECK_INT(t, cl_read_final(cc, &resp, &interim), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "piece-1piece-2piece-3");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));
    cl_close(cc);
    CHECK_INT(t, atomic_load(&t->aborts), 0);

    /* EOF in the middle of a stream: the client is gone, the stream stops */
    cc = cl_open(t);
    cl_send(cc, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    {
        char raw[4096];
        size_t got = 0;
        ssize_t n;
        uint64_t t0 = ms_now();

        /* the head and the first piece: the stream has begun */
        while (got < sizeof(raw) - 1 && ms_now() - t0 < 2000) {
            n = recv(cc->fd, raw + got, sizeof(raw) - 1 - got, 0);
            if (n <= 0) {
                break;
            }
            got += (size_t) n;
            raw[got] = '\0';
            if (strstr(raw, "piece-1") != NULL) {
                break;
            }
        }
        raw[got] = '\0';
        CHECK(t, strstr(raw, "piece-1") != NULL && strstr(raw, "piece-3") == NULL);
        CHECK_INT(t, shutdown(cc->fd, SHUT_WR), 0);
        t0 = ms_now();
        while (atomic_load(&t->aborts) == 0 && ms_now() - t0 < 2000) {
            ms_sleep(10);
        }
    }
    CHECK_INT(t, atomic_load(&t->aborts), 1);
    cl_close(cc);
}


static void
test_half_close(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_half_close);
}


/*
 * A stream that began before the drain went out with keep-alive: once it
 * ends, the client may send its next request at once, and that request
 * (also one pipelined behind the stream) must be answered, with
 * Connection: close, before the connection closes.
 */
static void
client_drain_stream(test_ctx_t *t)
{
    cl_conn_t *cc = cl_open(t);
    cl_conn_t *pp = cl_open(t);
    cl_resp_t resp;

    CHECK(t, cc->fd >= 0 && pp->fd >= 0);
    cl_send(cc, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    cl_send(pp, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    ms_sleep(50);
    uv_async_send(&t->drain_async);
    ms_sleep(20);
    /* pp pipelines its next request while the stream is still going */
    cl_send(pp, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Test: piped\r\n\r\n");

    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "keep-alive");
    CHECK_BODY(t, &resp, "piece-3");
    cl_resp_free(&resp);
    cl_send(cc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Test: next\r\n\r\n");
    CHECK_INT(t, cl_read(cc, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK_BODY(t, &resp, "\"hdr\":\"next\"");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(cc, 1000));

    CHECK_INT(t, cl_read(pp, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_BODY(t, &resp, "piece-3");
    cl_resp_free(&resp);
    CHECK_INT(t, cl_read(pp, &resp), 0);
    CHECK_INT(t, resp.status, 200);
    CHECK_HDR(t, &resp, "connection", "close");
    CHECK_BODY(t, &resp, "\"hdr\":\"piped\"");
    cl_resp_free(&resp);
    CHECK(t, cl_wait_eof(pp, 1000));
    cl_close(cc);
    cl_close(pp);
}


static void
test_drain_stream(void **state)
{
    test_ctx_t t;

    test_init(&t);
    test_run(&t, client_drain_stream);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_keepalive_requests),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_431),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_empty_header_name),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_cors_star),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_retire),
        cmocka_unit_test(test_drain_stream),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_field_value_checks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
