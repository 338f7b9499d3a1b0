/*
 * Unit tests for core/http/upstream*.c against in-process libuv servers on
 * 127.0.0.1:0 that follow a script per request (canned bytes, delays,
 * closes, silence), in plain HTTP and over TLS (core/http/tls.h server side,
 * certificates made by test/unit/upstream/gen-certs.sh at start-up).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <uv.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/http/http.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/http/tls.h"
#include "core/http/upstream.h"

#define MAX_CALLS 8

typedef struct srv_step {
    unsigned delay; /* ms before this step */
    const char *data;
    bool close; /* close the connection after sending data */
} srv_step_t;

typedef struct srv srv_t;

typedef struct srv_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    srv_t *s;
    sl_tls_t *tls;
    bool hs_done;
    sl_buf_t in;
    sl_buf_t plain;
    int nreq;
    size_t step;
    bool responding;
    bool waited;
    bool closing;
    int handles;
    struct srv_conn *next;
} srv_conn_t;

struct srv {
    uv_tcp_t tcp;
    int port;
    sl_tls_conf_t *tls;
    const srv_step_t *steps;
    size_t nsteps;
    int drop_on_request; /* close without answering this request number on a connection */
    bool silent;
    bool greet; /* run the script on accept, before any request */
    int accepts;
    int resumed; /* TLS handshakes that resumed a session */
    int requests;
    int eofs;
    bool final_sent;
    const char *const
        *answers; /* with nanswers: request n (from 1) gets answers[(n - 1) % nanswers] */
    int nanswers;
    sl_buf_t last_req;
    srv_conn_t *conns;
};

typedef struct rec {
    int status;
    int header_calls;
    int body_calls;
    int body_before_final;
    int read_ends;           /* on_read_end calls */
    int bodies_unread;       /* on_body calls since the last on_read_end */
    size_t body_at_read_end; /* body bytes when on_read_end last ran */
    bool read_end_after_done;
    sl_buf_t body;
    bool has_xa;
    sl_buf_t heads; /* "name: value\n" for each response header, in order */
    sl_buf_t req;   /* the request the server last took when the call was done */
    int done;
    int rc;
    int order;
    sl_upstream_timing_t timing;
    sl_upstream_call_t *uc;
} rec_t;

typedef struct tctx {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t timer;
    srv_t srv;
    sl_conf_t conf;
    sl_provider_conf_t prov;
    sl_header_conf_t extra;
    char host_header[64];
    sl_upstream_t *u;
    rec_t recs[MAX_CALLS];
    int expect;
    int ndone;
    /* hooks */
    void (*on_done_hook)(int i);
    bool cancel_in_body;
    bool pause_in_headers;
    sl_upstream_call_t *paused;
    const char *next_method;
    bool kept; /* t_send marks its body body_kept */
    uint64_t started;
} tctx_t;

static tctx_t t;
static char cert_dir[64];

static int group_setup(void **state);
static int group_teardown(void **state);
static int test_setup(void **state);
static const char *cert_path(const char *name);

static void srv_start(srv_t *s, const srv_step_t *steps, size_t nsteps);
static void srv_start_tls(srv_t *s, const char *cert, const srv_step_t *steps, size_t nsteps);
static void srv_close(srv_t *s);
static void srv_on_connection(uv_stream_t *server, int status);
static void srv_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void srv_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void srv_on_write(uv_write_t *req, int status);
static void srv_write_raw(srv_conn_t *c, const char *p, size_t len);
static void srv_send(srv_conn_t *c, const char *p, size_t len);
static void srv_process(srv_conn_t *c);
static void srv_step(srv_conn_t *c);
static void srv_on_timer(uv_timer_t *timer);
static void srv_conn_close(srv_conn_t *c);
static void srv_conn_on_close(uv_handle_t *handle);
static size_t srv_content_length(const char *p, size_t len);

static void t_init(void);
static void t_provider(const char *host, int port, bool tls);
static void t_create(void);
static void t_send(int i, const char *method, const char *path, const char *body);
static void t_run(void);
static void t_finish(void);
static void t_on_watchdog(uv_timer_t *timer);
static void t_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                         size_t nheaders, void *data);
static void t_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
static void t_on_read_end(sl_upstream_call_t *uc, void *data);
static void t_on_done(sl_upstream_call_t *uc, int rc, void *data);
static void t_on_close(uv_handle_t *handle);
static int t_free_port(void);
static void t_on_resume(uv_timer_t *timer);
static void t_on_finish(uv_timer_t *timer);

static void test_content_length(void **state);
static void test_provider_header_wins(void **state);
static void test_get_no_body(void **state);
static void test_chunked_pieces(void **state);
static void test_close_delimited(void **state);
static void send_next(int i);
static void test_keepalive_reuse(void **state);
static void test_header_storage_reuse(void **state);
static void test_call_block_reuse(void **state);
static void test_body_kept(void **state);
static void test_tls_body_kept(void **state);
static void test_stale_retry_kept(void **state);
static void bodies_reach(const size_t *sizes, int n);
static void stale_retry(bool kept);
static void test_keepalive_lazy_timer(void **state);
static void test_head(void **state);
static void test_interim_response(void **state);
static void send_later_cb(uv_timer_t *timer);
static void send_later(int i);
static void test_stale_idle_closed(void **state);
static void test_stale_retry(void **state);
static void test_connect_refused(void **state);
static void test_first_byte_timeout(void **state);
static void test_first_byte_after_idle(void **state);
static void test_first_byte_timeout_idle_shorter(void **state);
static void test_idle_timeout(void **state);
static void test_total_timeout(void **state);
static void test_pause_resume(void **state);
static void test_malformed(void **state);
static void test_truncated(void **state);
static void test_pool_limit(void **state);
static void test_pool_wait_timeout(void **state);
static void test_cancel_mid_response(void **state);
static void cancel_other(int i);
static void test_cancel_when_done(void **state);
static void destroy_cb(uv_timer_t *timer);
static void test_destroy_in_flight(void **state);
static void test_localhost(void **state);
static void test_tls_ok(void **state);
static void test_tls_resume(void **state);
static void test_tls_ip_literal(void **state);
static void test_tls_untrusted(void **state);
static void test_tls_name_mismatch(void **state);
static void test_tls_no_verify(void **state);
static void test_tls_to_plain_server(void **state);

static const srv_step_t resp_hello[] = {
    { 0, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello", false },
};


static int
group_setup(void **state)
{
    const char *src = getenv("SL_TEST_SRCDIR");
    char cmd[256];

    snprintf(cert_dir, sizeof(cert_dir), "/tmp/sl-up-XXXXXX");
    if (mkdtemp(cert_dir) == NULL) {
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "sh %s/unit/upstream/gen-certs.sh %s", src != NULL ? src : "test",
             cert_dir);
    if (system(cmd) != 0) {
        return -1;
    }
    return sl_tls_worker_init();
}


static int
group_teardown(void **state)
{
    char cmd[128];

    for (int i = 0; i < MAX_CALLS; i++) {
        sl_buf_free(&t.recs[i].body);
        sl_buf_free(&t.recs[i].heads);
        sl_buf_free(&t.recs[i].req);
    }
    sl_buf_free(&t.srv.last_req);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
    return system(cmd) == 0 ? 0 : -1;
}


static int
test_setup(void **state)
{
    t_init();
    return 0;
}


static const char *
cert_path(const char *name)
{
    static char paths[4][128];
    static unsigned next;
    char *p = paths[next++ % 4];

    snprintf(p, 128, "%s/%s", cert_dir, name);
    return p;
}


/* --- the scripted server ------------------------------------------------ */


static void
srv_start(srv_t *s, const srv_step_t *steps, size_t nsteps)
{
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    s->steps = steps;
    s->nsteps = nsteps;
    s->last_req = SL_BUF_INIT;
    assert_int_equal(uv_tcp_init(&t.loop, &s->tcp), 0);
    s->tcp.data = s;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    assert_int_equal(uv_tcp_bind(&s->tcp, (struct sockaddr *) &sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *) &s->tcp, 16, srv_on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&s->tcp, (struct sockaddr *) &ss, &len), 0);
    s->port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
}


static void
srv_start_tls(srv_t *s, const char *cert, const srv_step_t *steps, size_t nsteps)
{
    char crt[32], key[32];

    snprintf(crt, sizeof(crt), "%s.crt", cert);
    snprintf(key, sizeof(key), "%s.key", cert);
    s->tls = sl_tls_conf_server(cert_path(crt), cert_path(key));
    assert_non_null(s->tls);
    srv_start(s, steps, nsteps);
}


static void
srv_close(srv_t *s)
{
    srv_conn_t *c, *next;

    if (s->port != 0 && !uv_is_closing((uv_handle_t *) &s->tcp)) {
        uv_close((uv_handle_t *) &s->tcp, NULL);
    }
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        srv_conn_close(c);
    }
}


static void
srv_on_connection(uv_stream_t *server, int status)
{
    srv_t *s = server->data;
    srv_conn_t *c;

    assert_int_equal(status, 0);
    c = sl_xcalloc(1, sizeof(*c));
    c->s = s;
    c->handles = 2;
    uv_tcp_init(&t.loop, &c->tcp);
    uv_timer_init(&t.loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *) &c->tcp), 0);
    if (s->tls != NULL) {
        c->tls = sl_tls_create(s->tls, NULL);
        assert_non_null(c->tls);
    }
    c->next = s->conns;
    s->conns = c;
    s->accepts++;
    uv_read_start((uv_stream_t *) &c->tcp, srv_on_alloc, srv_on_read);
    if (s->greet) {
        c->responding = true;
        srv_step(c);
    }
}


static void
srv_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];

    *buf = uv_buf_init(slab, sizeof(slab));
}


static void
srv_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    srv_conn_t *c = stream->data;
    int rc;

    if (nread == 0 || c->closing) {
        return;
    }
    if (nread < 0) {
        c->s->eofs++;
        srv_conn_close(c);
        return;
    }
    if (c->tls == NULL) {
        sl_buf_append(&c->in, buf->base, (size_t) nread);
        srv_process(c);
        return;
    }
    sl_tls_feed(c->tls, buf->base, (size_t) nread);
    if (!c->hs_done) {
        rc = sl_tls_handshake(c->tls);
        srv_send(c, NULL, 0);
        if (rc == UV_EAGAIN) {
            return;
        }
        if (rc != 0) {
            srv_conn_close(c);
            return;
        }
        c->hs_done = true;
        c->s->resumed += sl_tls_resumed(c->tls) ? 1 : 0;
    }
    rc = sl_tls_read(c->tls, &c->in);
    if (rc < 0) {
        c->s->eofs++;
        srv_conn_close(c);
        return;
    }
    srv_process(c);
}


static void
srv_on_write(uv_write_t *req, int status)
{
    free(req);
}


static void
srv_write_raw(srv_conn_t *c, const char *p, size_t len)
{
    uv_write_t *req;
    uv_buf_t b;

    if (len == 0 || c->closing) {
        return;
    }
    req = sl_xmalloc(sizeof(*req) + len);
    memcpy(req + 1, p, len);
    b = uv_buf_init((char *) (req + 1), (unsigned) len);
    if (uv_write(req, (uv_stream_t *) &c->tcp, &b, 1, srv_on_write) != 0) {
        free(req);
    }
}


/* Sends plaintext (encrypted on a TLS connection), then any pending TLS output. */
static void
srv_send(srv_conn_t *c, const char *p, size_t len)
{
    sl_buf_t *out;

    if (c->tls == NULL) {
        srv_write_raw(c, p, len);
        return;
    }
    if (len > 0) {
        assert_int_equal(sl_tls_write(c->tls, p, len), 0);
    }
    out = sl_tls_output(c->tls);
    srv_write_raw(c, out->p, out->len);
    sl_buf_clear(out);
}


/* Takes complete requests off the input and starts the script for each. */
static void
srv_process(srv_conn_t *c)
{
    srv_t *s = c->s;
    const char *end;
    size_t hlen, total;

    while (!c->responding && !c->closing && c->in.len > 0) {
        sl_buf_append(&c->in, "", 1);
        c->in.len--;
        end = strstr(c->in.p, "\r\n\r\n");
        if (end == NULL) {
            return;
        }
        hlen = (size_t) (end - c->in.p) + 4;
        total = hlen + srv_content_length(c->in.p, hlen);
        if (c->in.len < total) {
            return;
        }
        sl_buf_clear(&s->last_req);
        sl_buf_append(&s->last_req, c->in.p, total);
        sl_buf_append(&s->last_req, "", 1);
        sl_buf_consume(&c->in, total);
        c->nreq++;
        s->requests++;
        if (s->drop_on_request == c->nreq) {
            srv_conn_close(c);
            return;
        }
        if (s->silent) {
            continue;
        }
        if (s->answers != NULL) {
            const char *a = s->answers[(s->requests - 1) % s->nanswers];

            srv_send(c, a, strlen(a));
            continue;
        }
        c->responding = true;
        c->step = 0;
        c->waited = false;
        srv_step(c);
    }
}


static void
srv_step(srv_conn_t *c)
{
    const srv_step_t *st;

    while (c->step < c->s->nsteps) {
        st = &c->s->steps[c->step];
        if (st->delay > 0 && !c->waited) {
            c->waited = true;
            uv_timer_start(&c->timer, srv_on_timer, st->delay, 0);
            return;
        }
        c->waited = false;
        c->step++;
        if (c->step == c->s->nsteps) {
            c->s->final_sent = true;
        }
        if (st->data != NULL) {
            srv_send(c, st->data, strlen(st->data));
        }
        if (st->close) {
            srv_conn_close(c);
            return;
        }
    }
    c->responding = false;
    srv_process(c);
}


static void
srv_on_timer(uv_timer_t *timer)
{
    srv_step(timer->data);
}


static void
srv_conn_close(srv_conn_t *c)
{
    srv_conn_t **pp;

    if (c->closing) {
        return;
    }
    c->closing = true;
    for (pp = &c->s->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    uv_close((uv_handle_t *) &c->tcp, srv_conn_on_close);
    uv_close((uv_handle_t *) &c->timer, srv_conn_on_close);
}


static void
srv_conn_on_close(uv_handle_t *handle)
{
    srv_conn_t *c = handle->data;

    if (--c->handles > 0) {
        return;
    }
    sl_tls_destroy(c->tls);
    sl_buf_free(&c->in);
    sl_buf_free(&c->plain);
    free(c);
}


static size_t
srv_content_length(const char *p, size_t len)
{
    static const char name[] = "\r\ncontent-length:";

    for (size_t i = 0; i + sizeof(name) - 1 < len; i++) {
        if (strncasecmp(p + i, name, sizeof(name) - 1) == 0) {
            return (size_t) strtoul(p + i + sizeof(name) - 1, NULL, 10);
        }
    }
    return 0;
}


/* --- the client side ---------------------------------------------------- */


static void
t_init(void)
{
    for (int i = 0; i < MAX_CALLS; i++) {
        sl_buf_free(&t.recs[i].body);
        sl_buf_free(&t.recs[i].heads);
        sl_buf_free(&t.recs[i].req);
    }
    sl_buf_free(&t.srv.last_req);
    memset(&t, 0, sizeof(t));
    assert_int_equal(uv_loop_init(&t.loop), 0);
    uv_timer_init(&t.loop, &t.watchdog);
    uv_timer_start(&t.watchdog, t_on_watchdog, 10000, 0);
    uv_unref((uv_handle_t *) &t.watchdog);
    uv_timer_init(&t.loop, &t.timer);
    uv_unref((uv_handle_t *) &t.timer);
    for (int i = 0; i < MAX_CALLS; i++) {
        t.recs[i].rc = 1;
    }
}


static void
t_provider(const char *host, int port, bool tls)
{
    sl_provider_conf_t *p = &t.prov;

    snprintf(t.host_header, sizeof(t.host_header), "%s:%d", host, port);
    t.extra.name = "X-Extra";
    t.extra.value = "e";
    p->name = "test";
    p->kind = "openai";
    p->tls = tls;
    p->host = host;
    p->port = (uint16_t) port;
    p->host_header = t.host_header;
    p->base_path = "";
    p->tls_verify = true;
    p->connect_timeout = 1000;
    p->first_byte_timeout = 1000;
    p->idle_timeout = 1000;
    p->total_timeout = 5000;
    p->keepalive_timeout = 10000;
    p->max_connections = 16;
    p->max_idle = 4;
    p->headers = &t.extra;
    p->nheaders = 1;
    t.conf.providers = p;
    t.conf.nproviders = 1;
}


static void
t_create(void)
{
    t.u = sl_upstream_create(&t.loop, &t.conf);
    assert_non_null(t.u);
}


static void
t_send(int i, const char *method, const char *path, const char *body)
{
    static sl_http_header_t hdrs[] = {
        { { "A", 1 }, { "b", 1 } },
        { { "Content-Length", 14 }, { "999", 3 } },
        { { "X-Bad", 5 }, { "x\r\nInjected: 1", 14 } },
    };
    sl_upstream_req_t req = {
        .method = method,
        .path = path,
        .headers = hdrs,
        .nheaders = 3,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .body_kept = t.kept,
    };
    sl_upstream_cbs_t cbs = { t_on_headers, t_on_body, t_on_done, t_on_read_end };

    t.recs[i].order = -1;
    assert_int_equal(sl_upstream_send(t.u, &t.prov, &req, &cbs, &t.recs[i], NULL, &t.recs[i].uc),
                     0);
    /* never synchronous */
    assert_int_equal(t.recs[i].done, 0);
}


static void
t_run(void)
{
    t.started = uv_now(&t.loop);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *) &t.watchdog, NULL);
    uv_close((uv_handle_t *) &t.timer, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t.loop), 0);
    if (t.srv.tls != NULL) {
        sl_tls_conf_destroy(t.srv.tls);
        t.srv.tls = NULL;
    }
}


static void
t_finish(void)
{
    sl_upstream_destroy(t.u);
    srv_close(&t.srv);
}


static void
t_on_watchdog(uv_timer_t *timer)
{
    fail_msg("test hung");
}


static void
t_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers, size_t nheaders,
             void *data)
{
    rec_t *r = data;

    r->status = status;
    r->header_calls++;
    r->has_xa = sl_http_find_header(headers, nheaders, "x-a") != NULL;
    sl_buf_clear(&r->heads);
    for (size_t i = 0; i < nheaders; i++) {
        sl_buf_append(&r->heads, headers[i].name.p, headers[i].name.len);
        sl_buf_append(&r->heads, ": ", 2);
        sl_buf_append(&r->heads, headers[i].value.p, headers[i].value.len);
        sl_buf_append(&r->heads, "\n", 1);
    }
    if (t.pause_in_headers) {
        sl_upstream_pause(uc);
        t.paused = uc;
        uv_ref((uv_handle_t *) &t.timer);
        uv_timer_start(&t.timer, t_on_resume, 300, 0);
    }
}


static void
t_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data)
{
    rec_t *r = data;

    r->body_calls++;
    r->bodies_unread++;
    if (!t.srv.final_sent) {
        r->body_before_final++;
    }
    sl_buf_append(&r->body, p, len);
    if (t.cancel_in_body) {
        sl_upstream_cancel(uc);
        uv_ref((uv_handle_t *) &t.timer);
        uv_timer_start(&t.timer, t_on_finish, 200, 0);
    }
}


/* The end of a read: every on_body of it ran, and on_done has not yet. */
static void
t_on_read_end(sl_upstream_call_t *uc, void *data)
{
    rec_t *r = data;

    (void) uc;
    r->read_ends++;
    r->bodies_unread = 0;
    r->body_at_read_end = r->body.len;
    r->read_end_after_done |= r->done > 0;
}


static void
t_on_done(sl_upstream_call_t *uc, int rc, void *data)
{
    rec_t *r = data;

    r->done++;
    r->rc = rc;
    r->order = t.ndone;
    r->timing = *sl_upstream_timing(uc);
    sl_buf_clear(&r->req);
    sl_buf_append(&r->req, t.srv.last_req.p, t.srv.last_req.len);
    t.ndone++;
    if (t.on_done_hook != NULL) {
        t.on_done_hook((int) (r - t.recs));
    }
    if (t.ndone == t.expect) {
        t_finish();
    }
}


static void
t_on_close(uv_handle_t *handle)
{
}


static void
t_on_resume(uv_timer_t *timer)
{
    sl_upstream_resume(t.paused);
}


static void
t_on_finish(uv_timer_t *timer)
{
    t_finish();
}


static int
t_free_port(void)
{
    uv_tcp_t tcp;
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    int len = sizeof(ss), port;

    uv_tcp_init(&t.loop, &tcp);
    uv_ip4_addr("127.0.0.1", 0, &sin);
    assert_int_equal(uv_tcp_bind(&tcp, (struct sockaddr *) &sin, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&tcp, (struct sockaddr *) &ss, &len), 0);
    port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
    uv_close((uv_handle_t *) &tcp, t_on_close);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    return port;
}


/* --- tests -------------------------------------------------------------- */


static void
test_content_length(void **state)
{
    static const char want[] = "POST /v1/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nA: b\r\n"
                               "X-Extra: e\r\nContent-Length: 4\r\n\r\nbody";
    char buf[256];

    srv_start(&t.srv, resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/v1/x?q=1", "body");
    t_run();

    assert_int_equal(t.recs[0].done, 1);
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[0].status, 200);
    assert_true(t.recs[0].has_xa);
    assert_int_equal(t.recs[0].body.len, 5);
    assert_memory_equal(t.recs[0].body.p, "hello", 5);
    snprintf(buf, sizeof(buf), want, t.srv.port);
    assert_string_equal(t.srv.last_req.p, buf);
    assert_false(t.recs[0].timing.reused);
    assert_true(t.recs[0].timing.connected >= t.recs[0].timing.start);
    assert_true(t.recs[0].timing.sent >= t.recs[0].timing.connected);
    assert_true(t.recs[0].timing.first_byte >= t.recs[0].timing.sent);
}


/* A header the provider's config sets replaces the client's of the same name (any case). */
static void
test_provider_header_wins(void **state)
{
    static const char want[] = "POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                               "a: provider\r\nContent-Length: 4\r\n\r\nbody";
    char buf[256];

    srv_start(&t.srv, resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t.extra.name = "a";
    t.extra.value = "provider";
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/v1/x", "body");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    snprintf(buf, sizeof(buf), want, t.srv.port);
    assert_string_equal(t.srv.last_req.p, buf);
}


static void
test_get_no_body(void **state)
{
    char buf[256];

    srv_start(&t.srv, resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.nheaders = 0;
    t_create();
    t.expect = 1;
    t_send(0, "GET", "/v1/models", NULL);
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    snprintf(buf, sizeof(buf), "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nA: b\r\n\r\n",
             t.srv.port);
    assert_string_equal(t.srv.last_req.p, buf);
}


static void
test_chunked_pieces(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false },
        { 50, "6\r\n world\r\n", false },
        { 50, "0\r\n\r\n", false },
    };

    srv_start(&t.srv, steps, 3);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/stream", "{}");
    t_run();

    assert_int_equal(t.recs[0].rc, 0);
    assert_true(t.recs[0].body_calls >= 2);
    assert_true(t.recs[0].body_before_final >= 2);
    assert_int_equal(t.recs[0].body.len, 11);
    assert_memory_equal(t.recs[0].body.p, "hello world", 11);
    /* each of the three pieces came in a read of its own, which on_read_end closed */
    assert_true(t.recs[0].read_ends >= 3);
    assert_int_equal(t.recs[0].bodies_unread, 0);
    assert_int_equal(t.recs[0].body_at_read_end, 11);
    assert_false(t.recs[0].read_end_after_done);
}


static void
test_close_delimited(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\n\r\nabc", false },
        { 20, "def", true },
    };

    srv_start(&t.srv, steps, 2);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 1;
    t_send(0, "GET", "/", NULL);
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[0].body.len, 6);
    assert_memory_equal(t.recs[0].body.p, "abcdef", 6);
}


static void
send_next(int i)
{
    if (i + 1 < t.expect) {
        t_send(i + 1, t.next_method != NULL ? t.next_method : "POST", "/again", "x");
    }
}


static void
test_keepalive_reuse(void **state)
{
    srv_start(&t.srv, resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 3;
    t.on_done_hook = send_next;
    t_send(0, "POST", "/", "x");
    t_run();

    for (int i = 0; i < 3; i++) {
        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].status, 200);
    }
    assert_false(t.recs[0].timing.reused);
    assert_true(t.recs[1].timing.reused);
    assert_true(t.recs[2].timing.reused);
    assert_int_equal(t.srv.accepts, 1);
    assert_int_equal(t.srv.requests, 3);
}


/*
 * The worker keeps one connection's header storage for the next response:
 * responses in turn on one keep-alive connection with few headers, more
 * headers than the kept index holds (40), a header larger than the kept
 * buffer (6000 bytes), and few again each hand the callback exactly their
 * own headers, in order, nothing left over from the one before.
 */
static void
test_header_storage_reuse(void **state)
{
    static char answers[4][8192], want[4][8192];
    static const char *const list[] = { answers[0], answers[1], answers[0], answers[2],
                                        answers[3], answers[1], answers[0], answers[2] };
    char big[6001];
    size_t n, w;

    (void) state;
    sprintf(answers[0], "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
    sprintf(want[0], "Content-Length: 5\nX-A: b\n");
    n = (size_t) sprintf(answers[1], "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    w = (size_t) sprintf(want[1], "Content-Length: 2\n");
    for (int i = 0; i < 40; i++) {
        n += (size_t) sprintf(answers[1] + n, "X-H%d: value %d\r\n", i, i * 3);
        w += (size_t) sprintf(want[1] + w, "X-H%d: value %d\n", i, i * 3);
    }
    sprintf(answers[1] + n, "\r\nhi");
    memset(big, 'q', 6000);
    big[6000] = '\0';
    sprintf(answers[2], "HTTP/1.1 201 Created\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", big);
    sprintf(want[2], "X-Big: %s\nContent-Length: 0\n", big);
    sprintf(answers[3], "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
    sprintf(want[3], "Content-Length: 1\n");
    t.srv.answers = list;
    t.srv.nanswers = 8;
    srv_start(&t.srv, NULL, 0);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 8;
    t.on_done_hook = send_next;
    t_send(0, "POST", "/", "x");
    t_run();

    for (int i = 0; i < 8; i++) {
        int a = list[i] == answers[0]   ? 0
                : list[i] == answers[1] ? 1
                : list[i] == answers[2] ? 2
                                        : 3;

        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].status, a == 2 ? 201 : 200);
        assert_int_equal(t.recs[i].header_calls, 1);
        sl_buf_append(&t.recs[i].heads, "", 1);
        assert_string_equal(t.recs[i].heads.p, want[a]);
    }
    assert_int_equal(t.srv.accepts, 1);
    assert_int_equal(t.srv.requests, 8);
}


static char *call_bodies[6];


static void
send_body_next(int i)
{
    if (i + 1 < t.expect) {
        t_send(i + 1, "POST", "/b", call_bodies[i + 1]);
    }
}


/*
 * The worker keeps a closed call's block for the next call: bodies of
 * changing size in turn (small, larger than the kept block may be, small,
 * medium, small) each reach the server whole, request line and headers
 * with them, nothing of the call before left in it.
 */
static void
test_call_block_reuse(void **state)
{
    static const size_t sizes[] = { 3, 20000, 5, 3000, 1, 2900 };

    (void) state;
    srv_start(&t.srv, resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    bodies_reach(sizes, 6);
    assert_int_equal(t.srv.accepts, 1);
}


/*
 * A kept body is written from where it is, after the head: small ones, one
 * of 8 MiB that the socket takes in many writes (the rest of the head and
 * the body, then the rest of the body), and an empty one.
 */
static void
test_body_kept(void **state)
{
    static const size_t sizes[] = { 3, 8u << 20, 5, 0, 3000, 1 };

    (void) state;
    srv_start(&t.srv, resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t.kept = true;
    bodies_reach(sizes, 6);
    assert_int_equal(t.srv.accepts, 1);
}


/* Kept bodies over TLS: the head and the body are encrypted in turn. */
static void
test_tls_body_kept(void **state)
{
    static const size_t sizes[] = { 3, 1u << 20, 2 };

    (void) state;
    srv_start_tls(&t.srv, "good", resp_hello, 1);
    t_provider("localhost", t.srv.port, true);
    t.prov.ca_file = cert_path("ca.crt");
    t.kept = true;
    bodies_reach(sizes, 3);
    assert_int_equal(t.srv.accepts, 1);
}


/*
 * n calls in turn on the provider set up, with bodies of sizes[i] bytes of
 * 'a' + i: each reaches the server whole, request line and headers with
 * it, nothing of the call before left in it.
 */
static void
bodies_reach(const size_t *sizes, int n)
{
    char want[64];

    SL_ASSERT(n <= 6);
    for (int i = 0; i < n; i++) {
        call_bodies[i] = malloc(sizes[i] + 1);
        assert_non_null(call_bodies[i]);
        memset(call_bodies[i], 'a' + i, sizes[i]);
        call_bodies[i][sizes[i]] = '\0';
    }
    t_create();
    t.expect = n;
    t.on_done_hook = send_body_next;
    t_send(0, "POST", "/b", call_bodies[0]);
    t_run();

    for (int i = 0; i < n; i++) {
        const char *req, *end;

        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].status, 200);
        sl_buf_append(&t.recs[i].req, "", 1);
        req = t.recs[i].req.p;
        assert_memory_equal(req, "POST /b HTTP/1.1\r\n", 18);
        snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", sizes[i]);
        end = strstr(req, "\r\n\r\n");
        assert_non_null(end);
        assert_non_null(strstr(req, want));
        assert_true(strstr(req, want) < end);
        assert_int_equal(strlen(end + 4), sizes[i]);
        assert_string_equal(end + 4, call_bodies[i]);
        free(call_bodies[i]);
    }
}


static int lazy_next;


static void
send_lazy_cb(uv_timer_t *timer)
{
    t_send(lazy_next, "POST", "/lazy", "x");
}


/* After call i: call i + 1 after 120 ms, 150 ms, then 400 ms (keepalive_timeout 200 ms). */
static void
send_lazy(int i)
{
    static const uint64_t after[] = { 120, 150, 400 };

    if (i < 3) {
        lazy_next = i + 1;
        uv_ref((uv_handle_t *) &t.timer);
        uv_timer_start(&t.timer, send_lazy_cb, after[i], 0);
    }
}


/*
 * The idle connection's keep-alive timer is kept lazily: armed when the
 * connection first goes idle, left armed while it is reused, and re-armed
 * for the rest when it fires early. Reused 120 ms and then 150 ms after
 * going idle (270 ms after the timer was first armed for 200 ms: still
 * open), closed 400 ms after going idle.
 */
static void
test_keepalive_lazy_timer(void **state)
{
    srv_start(&t.srv, resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.keepalive_timeout = 200;
    t_create();
    t.expect = 4;
    t.on_done_hook = send_lazy;
    t_send(0, "POST", "/", "x");
    t_run();

    for (int i = 0; i < 4; i++) {
        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].status, 200);
    }
    assert_false(t.recs[0].timing.reused);
    assert_true(t.recs[1].timing.reused);
    assert_true(t.recs[2].timing.reused);
    assert_false(t.recs[3].timing.reused);
    assert_int_equal(t.srv.accepts, 2);
}


static void
test_head(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", false },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 2;
    t.on_done_hook = send_next;
    t.next_method = "HEAD";
    t_send(0, "HEAD", "/", NULL);
    t_run();
    for (int i = 0; i < 2; i++) {
        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].status, 200);
        assert_int_equal(t.recs[i].body.len, 0);
    }
    assert_true(t.recs[1].timing.reused);
    assert_int_equal(t.srv.accepts, 1);
}


static void
test_interim_response(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
          false },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[0].header_calls, 1);
    assert_int_equal(t.recs[0].status, 201);
    assert_int_equal(t.recs[0].body.len, 2);
}


static void
send_later_cb(uv_timer_t *timer)
{
    t_send(1, "POST", "/later", "x");
}


static void
send_later(int i)
{
    if (i == 0) {
        uv_ref((uv_handle_t *) &t.timer);
        uv_timer_start(&t.timer, send_later_cb, 50, 0);
    }
}


/* The server closes the kept-alive connection while it is idle: the pool notices and drops it. */
static void
test_stale_idle_closed(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false },
        { 10, NULL, true },
    };

    srv_start(&t.srv, steps, 2);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 2;
    t.on_done_hook = send_later;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[1].rc, 0);
    assert_false(t.recs[1].timing.reused);
    assert_int_equal(t.srv.accepts, 2);
    assert_int_equal(t.srv.requests, 2);
}


/* The connection goes stale under the second call, whose body was copied: retried whole. */
static void
test_stale_retry(void **state)
{
    stale_retry(false);
}


/* As test_stale_retry with kept bodies: the retry on a new connection sends the body whole again.
 */
static void
test_stale_retry_kept(void **state)
{
    stale_retry(true);
    assert_non_null(strstr(t.srv.last_req.p, "POST /later HTTP/1.1\r\n"));
    assert_non_null(strstr(t.srv.last_req.p, "\r\nContent-Length: 1\r\n\r\nx"));
}


/* The server drops the connection when the second request arrives on it: retried transparently. */
static void
stale_retry(bool kept)
{
    srv_start(&t.srv, resp_hello, 1);
    t.srv.drop_on_request = 2;
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.kept = kept;
    t.expect = 2;
    t.on_done_hook = send_later;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[1].rc, 0);
    assert_int_equal(t.recs[1].status, 200);
    assert_int_equal(t.recs[1].body.len, 5);
    assert_false(t.recs[1].timing.reused);
    assert_int_equal(t.srv.accepts, 2);
    assert_int_equal(t.srv.requests, 3);
}


static void
test_connect_refused(void **state)
{
    t_provider("127.0.0.1", t_free_port(), false);
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, UV_ECONNREFUSED);
    assert_int_equal(t.recs[0].header_calls, 0);
}


static void
test_first_byte_timeout(void **state)
{
    srv_start(&t.srv, resp_hello, 1);
    t.srv.silent = true;
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.first_byte_timeout = 100;
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ETIMEOUT);
    assert_int_equal(t.recs[0].header_calls, 0);
    assert_true(t.recs[0].timing.sent > 0);
    assert_true(t.recs[0].timing.first_byte == 0);
    assert_true(uv_now(&t.loop) - t.started >= 100);
}


/*
 * Before the response starts, a call's timer is armed no later than
 * idle_timeout ahead, so the read phase never needs to re-arm it: an answer
 * that starts after idle_timeout but within first_byte_timeout is not cut
 * (the timer fires early, finds nothing expired and re-arms for the rest),
 * and a silent upstream still times out at first_byte_timeout, not at
 * idle_timeout.
 */
static void
test_first_byte_after_idle(void **state)
{
    static const srv_step_t steps[] = {
        { 250, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.idle_timeout = 80;
    t.prov.first_byte_timeout = 2000;
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[0].status, 200);
    assert_int_equal(t.recs[0].body.len, 5);
    assert_memory_equal(t.recs[0].body.p, "hello", 5);
    assert_true(uv_now(&t.loop) - t.started >= 250);
}


static void
test_first_byte_timeout_idle_shorter(void **state)
{
    srv_start(&t.srv, resp_hello, 1);
    t.srv.silent = true;
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.idle_timeout = 50;
    t.prov.first_byte_timeout = 250;
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ETIMEOUT);
    assert_true(uv_now(&t.loop) - t.started >= 250);
}


static void
test_idle_timeout(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", false },
        { 50, "cd", false },
        { 5000, "efghij", false },
    };

    srv_start(&t.srv, steps, 3);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.idle_timeout = 150;
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ETIMEOUT);
    assert_int_equal(t.recs[0].status, 200);
    assert_int_equal(t.recs[0].body.len, 4);
    assert_true(uv_now(&t.loop) - t.started >= 200);
}


static void
test_total_timeout(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false },
        { 40, "1\r\na\r\n", false },
        { 40, "1\r\na\r\n", false },
        { 40, "1\r\na\r\n", false },
        { 40, "1\r\na\r\n", false },
        { 40, "1\r\na\r\n", false },
        { 40, "1\r\na\r\n", false },
        { 40, "1\r\na\r\n", false },
        { 40, "0\r\n\r\n", false },
    };

    srv_start(&t.srv, steps, 9);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.idle_timeout = 100;
    t.prov.total_timeout = 150;
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ETIMEOUT);
    assert_true(t.recs[0].body_calls >= 2);
    assert_true(t.recs[0].body.len < 7);
}


static void
test_pause_resume(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", false },
        { 20, "abcd", false },
    };

    srv_start(&t.srv, steps, 2);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.idle_timeout = 100;
    t_create();
    t.expect = 1;
    t.pause_in_headers = true;
    t_send(0, "POST", "/", "x");
    t_run();
    /* paused 300 ms with a 100 ms idle_timeout: no timeout while we hold the reads */
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[0].body.len, 4);
    assert_true(uv_now(&t.loop) - t.started >= 300);
}


static void
test_malformed(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 2x0 OK\r\n\r\n", false },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_EUPSTREAM);
}


static void
test_truncated(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ECLOSED);
    assert_int_equal(t.recs[0].body.len, 3);
}


static void
test_pool_limit(void **state)
{
    static const srv_step_t steps[] = {
        { 20, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.max_connections = 1;
    t_create();
    t.expect = 3;
    for (int i = 0; i < 3; i++) {
        t_send(i, "POST", "/", "x");
    }
    t_run();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].order, i);
    }
    assert_true(t.recs[1].timing.reused);
    assert_true(t.recs[2].timing.reused);
    assert_int_equal(t.srv.accepts, 1);
}


static void
test_pool_wait_timeout(void **state)
{
    static const srv_step_t steps[] = {
        { 300, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t.prov.max_connections = 1;
    t.prov.connect_timeout = 100;
    t_create();
    t.expect = 2;
    t_send(0, "POST", "/", "x");
    t_send(1, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[1].rc, SL_EPOOL);
    assert_int_equal(t.recs[1].order, 0);
    assert_int_equal(t.recs[0].rc, 0);
}


static void
test_cancel_mid_response(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false },
        { 50, "6\r\n world\r\n", false },
        { 50, "0\r\n\r\n", false },
    };

    srv_start(&t.srv, steps, 3);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.cancel_in_body = true;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].body_calls, 1);
    assert_int_equal(t.recs[0].done, 0);
    /* the connection was closed, not pooled */
    assert_int_equal(t.srv.eofs, 1);
}


/* From the first call's on_done: cancels the other one, and ends the test 100 ms later. */
static void
cancel_other(int i)
{
    sl_upstream_cancel(t.recs[1 - i].uc);
    uv_ref((uv_handle_t *) &t.timer);
    uv_timer_start(&t.timer, t_on_finish, 100, 0);
}


/*
 * A call cancelled while its on_done is due gets none: both answers come
 * 50 ms after their requests, so both calls end in one loop turn, and the
 * first on_done cancels the other call, ended too. Nothing of it is left
 * (the sanitizer build checks the memory).
 */
static void
test_cancel_when_done(void **state)
{
    static const srv_step_t steps[] = {
        { 50, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false },
    };

    srv_start(&t.srv, steps, 1);
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t.expect = 2; /* not reached: cancel_other ends the test */
    t.on_done_hook = cancel_other;
    t_send(0, "POST", "/", "x");
    t_send(1, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].done + t.recs[1].done, 1);
    assert_int_equal(t.recs[t.recs[0].done == 1 ? 0 : 1].rc, 0);
}


static void
destroy_cb(uv_timer_t *timer)
{
    t_finish();
}


static void
test_destroy_in_flight(void **state)
{
    srv_start(&t.srv, resp_hello, 1);
    t.srv.silent = true;
    t_provider("127.0.0.1", t.srv.port, false);
    t_create();
    t_send(0, "POST", "/", "x");
    t_send(1, "POST", "/", "x");
    uv_ref((uv_handle_t *) &t.timer);
    uv_timer_start(&t.timer, destroy_cb, 50, 0);
    t_run();
    assert_int_equal(t.recs[0].done, 0);
    assert_int_equal(t.recs[1].done, 0);
}


static void
test_localhost(void **state)
{
    srv_start(&t.srv, resp_hello, 1);
    t_provider("localhost", t.srv.port, false);
    t_create();
    t.expect = 2;
    t.on_done_hook = send_next;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[1].rc, 0);
    assert_int_equal(t.recs[0].body.len, 5);
    assert_int_equal(t.srv.accepts, 1);
}


static void
test_tls_ok(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false },
        { 30, "6\r\n world\r\n0\r\n\r\n", false },
    };

    srv_start_tls(&t.srv, "good", steps, 2);
    t_provider("localhost", t.srv.port, true);
    t.prov.ca_file = cert_path("ca.crt");
    t_create();
    t.expect = 3;
    t.on_done_hook = send_next;
    t_send(0, "POST", "/", "x");
    t_run();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].body.len, 11);
    }
    assert_true(t.recs[2].timing.reused);
    assert_int_equal(t.srv.accepts, 1);
}


/* Each answer closes its connection: the second and third connections resume the first's session.
 */
static void
test_tls_resume(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", false },
    };

    srv_start_tls(&t.srv, "good", steps, 1);
    assert_int_equal(sl_tls_conf_tickets(t.srv.tls, 3600), 0);
    t_provider("localhost", t.srv.port, true);
    t.prov.ca_file = cert_path("ca.crt");
    t_create();
    t.expect = 3;
    t.on_done_hook = send_next;
    t_send(0, "POST", "/", "x");
    t_run();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t.recs[i].rc, 0);
        assert_int_equal(t.recs[i].body.len, 5);
    }
    assert_int_equal(t.srv.accepts, 3);
    assert_int_equal(t.srv.resumed, 2);
}


static void
test_tls_ip_literal(void **state)
{
    srv_start_tls(&t.srv, "good", resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, true);
    t.prov.ca_file = cert_path("ca.crt");
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[0].body.len, 5);
}


static void
test_tls_untrusted(void **state)
{
    srv_start_tls(&t.srv, "good", resp_hello, 1);
    t_provider("localhost", t.srv.port, true);
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ECERT);
    assert_int_equal(t.srv.requests, 0);
}


/* wrong.crt is valid for wrong.example only; the client asks for localhost. */
static void
test_tls_name_mismatch(void **state)
{
    srv_start_tls(&t.srv, "wrong", resp_hello, 1);
    t_provider("localhost", t.srv.port, true);
    t.prov.ca_file = cert_path("ca.crt");
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ECERT);
    assert_int_equal(t.srv.requests, 0);
}


static void
test_tls_no_verify(void **state)
{
    srv_start_tls(&t.srv, "wrong", resp_hello, 1);
    t_provider("127.0.0.1", t.srv.port, true);
    t.prov.tls_verify = false;
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, 0);
    assert_int_equal(t.recs[0].body.len, 5);
}


static void
test_tls_to_plain_server(void **state)
{
    static const srv_step_t steps[] = {
        { 0, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", true },
    };

    srv_start(&t.srv, steps, 1);
    t.srv.greet = true;
    t_provider("127.0.0.1", t.srv.port, true);
    t.prov.tls_verify = false;
    t_create();
    t.expect = 1;
    t_send(0, "POST", "/", "x");
    t_run();
    assert_int_equal(t.recs[0].rc, SL_ETLS);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_content_length, test_setup),
        cmocka_unit_test_setup(test_provider_header_wins, test_setup),
        cmocka_unit_test_setup(test_get_no_body, test_setup),
        cmocka_unit_test_setup(test_chunked_pieces, test_setup),
        cmocka_unit_test_setup(test_close_delimited, test_setup),
        cmocka_unit_test_setup(test_keepalive_reuse, test_setup),
        cmocka_unit_test_setup(test_header_storage_reuse, test_setup),
        cmocka_unit_test_setup(test_call_block_reuse, test_setup),
        cmocka_unit_test_setup(test_body_kept, test_setup),
        cmocka_unit_test_setup(test_tls_body_kept, test_setup),
        cmocka_unit_test_setup(test_keepalive_lazy_timer, test_setup),
        cmocka_unit_test_setup(test_head, test_setup),
        cmocka_unit_test_setup(test_interim_response, test_setup),
        cmocka_unit_test_setup(test_stale_idle_closed, test_setup),
        cmocka_unit_test_setup(test_stale_retry, test_setup),
        cmocka_unit_test_setup(test_stale_retry_kept, test_setup),
        cmocka_unit_test_setup(test_connect_refused, test_setup),
        cmocka_unit_test_setup(test_first_byte_timeout, test_setup),
        cmocka_unit_test_setup(test_first_byte_after_idle, test_setup),
        cmocka_unit_test_setup(test_first_byte_timeout_idle_shorter, test_setup),
        cmocka_unit_test_setup(test_idle_timeout, test_setup),
        cmocka_unit_test_setup(test_total_timeout, test_setup),
        cmocka_unit_test_setup(test_pause_resume, test_setup),
        cmocka_unit_test_setup(test_malformed, test_setup),
        cmocka_unit_test_setup(test_truncated, test_setup),
        cmocka_unit_test_setup(test_pool_limit, test_setup),
        cmocka_unit_test_setup(test_pool_wait_timeout, test_setup),
        cmocka_unit_test_setup(test_cancel_mid_response, test_setup),
        cmocka_unit_test_setup(test_cancel_when_done, test_setup),
        cmocka_unit_test_setup(test_destroy_in_flight, test_setup),
        cmocka_unit_test_setup(test_localhost, test_setup),
        cmocka_unit_test_setup(test_tls_ok, test_setup),
        cmocka_unit_test_setup(test_tls_resume, test_setup),
        cmocka_unit_test_setup(test_tls_ip_literal, test_setup),
        cmocka_unit_test_setup(test_tls_untrusted, test_setup),
        cmocka_unit_test_setup(test_tls_name_mismatch, test_setup),
        cmocka_unit_test_setup(test_tls_no_verify, test_setup),
        cmocka_unit_test_setup(test_tls_to_plain_server, test_setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
