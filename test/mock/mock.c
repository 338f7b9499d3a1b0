/*
 * sluice-mock: process, event loop and connections. One libuv loop serves
 * HTTP/1.1 with keep-alive and pipelining, over plain TCP or TLS (core/http/tls.h
 * over memory buffers). Each request is parsed by llhttp into per-connection
 * buffers, handed to mock_api.c, and the resulting plan is sent segment by
 * segment: at once when nothing asks for pacing, otherwise driven by one
 * timer per connection. Pipelined requests wait (the parser is paused) until
 * the response before them is complete, so answers stay in order.
 *
 * Output is collected per connection and leaves with uv_try_write; only what
 * the socket refuses is copied into a uv_write request.
 */
#include "test/mock/mock.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <llhttp.h>
#include <uv.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/http/tls.h"

#define MOCK_DEFAULT_LISTEN "127.0.0.1:0"
#define MOCK_DEFAULT_CHUNKS 5
#define MOCK_BACKLOG        1024
#define MOCK_RBUF_SIZE      65536

#define CONN_MAX_HEADERS 128
#define CONN_MAX_HEAD    (1024 * 1024) /* target plus header names and values */
#define CONN_MAX_BODY    (64 * 1024 * 1024)
#define CONN_IN_HIGH     (8 * 1024 * 1024) /* unparsed input that stops reading */
#define CONN_LINGER_MS   2000
#define CONN_RESET_WAITS 1000 /* 1 ms each, for the peer to acknowledge before a RST */

typedef struct conn_hdr {
    size_t name_off;
    size_t name_len;
    size_t value_off;
    size_t value_len;
} conn_hdr_t;

typedef struct mock_conn mock_conn_t;

struct mock_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    llhttp_t parser;
    sl_tls_t *tls;
    mock_conn_t *prev;
    mock_conn_t *next;

    sl_buf_t in;  /* plaintext received but not parsed yet */
    sl_buf_t out; /* plaintext waiting for conn_flush */

    /* the request being parsed */
    sl_buf_t head; /* target, then header names and values */
    sl_buf_t body;
    conn_hdr_t hdrs[CONN_MAX_HEADERS];
    size_t nhdrs;
    size_t target_len;
    int hstate;      /* 0 start, 1 in a name, 2 in a value */
    int parse_error; /* status to answer a parser failure with, 0: 400 */
    uint8_t method;
    bool keep_alive;
    bool http10;

    /* the response being sent */
    sl_mock_resp_t resp;
    size_t seg; /* next segment */
    size_t off; /* next byte of resp.data */

    unsigned nwrites; /* uv_write requests in flight */
    unsigned reset_waits;
    int handles; /* libuv handles not yet closed */
    bool tls_ready;
    bool busy;     /* a response is in progress */
    bool in_parse; /* inside conn_process: the flush happens at its end */
    bool reading;
    bool eof;       /* the peer finished sending */
    bool closing;   /* no more requests: closing gracefully, resetting or closed */
    bool closed;    /* uv_close was called */
    bool shut;      /* uv_shutdown was called */
    bool lingering; /* response sent and FIN out; draining input before the close */
    bool reset_pending;
};

typedef struct conn_wreq {
    uv_write_t req;
    mock_conn_t *c;
    char data[];
} conn_wreq_t;

static int mock_parse_args(int argc, char **argv, sl_mock_conf_t *conf);
static void mock_usage(FILE *f);
static int mock_parse_uint(const char *opt, const char *s, unsigned *out);
static bool mock_is_option(const char *name);
static int mock_listen(const char *addr);
static void mock_on_signal(uv_signal_t *h, int signum);
static void mock_on_connection(uv_stream_t *server, int status);

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_tls_input(mock_conn_t *c, const char *p, size_t len);
static void conn_input(mock_conn_t *c, const char *p, size_t len);
static void conn_process(mock_conn_t *c);
static size_t conn_parse(mock_conn_t *c, const char *p, size_t len);
static void conn_dispatch(mock_conn_t *c);
static void conn_fail(mock_conn_t *c, int status);
static void conn_deliver(mock_conn_t *c);
static void conn_on_timer(uv_timer_t *t);
static void conn_flush(mock_conn_t *c);
static void conn_send_tls(mock_conn_t *c);
static void conn_send(mock_conn_t *c, const char *p, size_t len);
static void conn_on_write(uv_write_t *req, int status);
static void conn_on_eof(mock_conn_t *c);
static void conn_close_graceful(mock_conn_t *c);
static void conn_on_shutdown(uv_shutdown_t *req, int status);
static void conn_reset(mock_conn_t *c);
static void conn_reset_now(mock_conn_t *c);
static void conn_close(mock_conn_t *c);
static void conn_on_close(uv_handle_t *h);

static int conn_on_message_begin(llhttp_t *p);
static int conn_on_url(llhttp_t *p, const char *at, size_t len);
static int conn_on_header_field(llhttp_t *p, const char *at, size_t len);
static int conn_on_header_value(llhttp_t *p, const char *at, size_t len);
static int conn_on_headers_complete(llhttp_t *p);
static int conn_on_body(llhttp_t *p, const char *at, size_t len);
static int conn_on_message_complete(llhttp_t *p);

static sl_mock_t mock;
static uv_loop_t mock_loop;
static uv_tcp_t mock_listener;
static uv_signal_t mock_signals[2];
static sl_tls_conf_t *mock_tls;
static llhttp_settings_t mock_http;
static mock_conn_t *mock_conns;
static bool mock_stopping;
static char mock_rbuf[MOCK_RBUF_SIZE];
static sl_http_header_t mock_views[CONN_MAX_HEADERS];


int
main(int argc, char **argv)
{
    int rc;

    mock.conf.listen = MOCK_DEFAULT_LISTEN;
    mock.conf.chunks = MOCK_DEFAULT_CHUNKS;
    rc = mock_parse_args(argc, argv, &mock.conf);
    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    sl_log_open(NULL, SL_LOG_NOTICE);
    signal(SIGPIPE, SIG_IGN);

    if (mock.conf.tls_cert != NULL) {
        if (sl_tls_worker_init() != 0) {
            return 1;
        }
        mock_tls = sl_tls_conf_server(mock.conf.tls_cert, mock.conf.tls_key);
        if (mock_tls == NULL) {
            return 1;
        }
    }

    mock.scratch = sl_pool_create(0);
    if (mock.scratch == NULL) {
        return 1;
    }
    llhttp_settings_init(&mock_http);
    mock_http.on_message_begin = conn_on_message_begin;
    mock_http.on_url = conn_on_url;
    mock_http.on_header_field = conn_on_header_field;
    mock_http.on_header_value = conn_on_header_value;
    mock_http.on_headers_complete = conn_on_headers_complete;
    mock_http.on_body = conn_on_body;
    mock_http.on_message_complete = conn_on_message_complete;

    rc = uv_loop_init(&mock_loop);
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_EMERG, rc, "uv_loop_init() failed");
        return 1;
    }
    if (mock_listen(mock.conf.listen) != 0) {
        return 1;
    }
    uv_signal_init(&mock_loop, &mock_signals[0]);
    uv_signal_init(&mock_loop, &mock_signals[1]);
    uv_signal_start(&mock_signals[0], mock_on_signal, SIGTERM);
    uv_signal_start(&mock_signals[1], mock_on_signal, SIGINT);

    uv_run(&mock_loop, UV_RUN_DEFAULT);

    rc = uv_loop_close(&mock_loop);
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_ALERT, rc, "uv_loop_close() failed");
    }
    sl_tls_conf_destroy(mock_tls);
    sl_mock_log_free(&mock);
    sl_buf_free(&mock.body);
    sl_buf_free(&mock.tags);
    sl_pool_destroy(mock.scratch);
    return 0;
}


static void
mock_usage(FILE *f)
{
    fputs(
        "usage: sluice-mock [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]\n"
        "                   [--api-key KEY] [--chunks N] [--chunk-delay-ms N] [--latency-ms N]\n"
        "Prints \"port=N\" once listening; stops on SIGTERM or SIGINT. See test/mock/README.md.\n",
        f);
}


static int
mock_parse_uint(const char *opt, const char *s, unsigned *out)
{
    unsigned long long v;

    if (sl_str_to_u64((sl_str_t){ s, strlen(s) }, &v) != 0 || v > 0xffffffffULL) {
        fprintf(stderr, "sluice-mock: %s needs a number, got \"%s\"\n", opt, s);
        return -1;
    }
    *out = (unsigned) v;
    return 0;
}


static bool
mock_is_option(const char *name)
{
    static const char *const opts[] = {
        "--listen", "--tls-cert",       "--tls-key",    "--api-key",
        "--chunks", "--chunk-delay-ms", "--latency-ms",
    };

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        if (strcmp(name, opts[i]) == 0) {
            return true;
        }
    }
    return false;
}


/* Returns 0 to run, 1 after --help, -1 on a usage error (reported). */
static int
mock_parse_args(int argc, char **argv, sl_mock_conf_t *conf)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        char name[32];
        size_t nlen = eq != NULL ? (size_t) (eq - arg) : strlen(arg);

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            mock_usage(stdout);
            return 1;
        }
        if (nlen >= sizeof(name) || strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "sluice-mock: unknown option \"%s\"\n", arg);
            mock_usage(stderr);
            return -1;
        }
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        if (!mock_is_option(name)) {
            fprintf(stderr, "sluice-mock: unknown option \"%s\"\n", name);
            mock_usage(stderr);
            return -1;
        }
        if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "sluice-mock: %s needs a value\n", name);
            return -1;
        }

        if (strcmp(name, "--listen") == 0) {
            conf->listen = val;
        } else if (strcmp(name, "--tls-cert") == 0) {
            conf->tls_cert = val;
        } else if (strcmp(name, "--tls-key") == 0) {
            conf->tls_key = val;
        } else if (strcmp(name, "--api-key") == 0) {
            conf->api_key = val;
        } else if (strcmp(name, "--chunks") == 0) {
            if (mock_parse_uint(name, val, &conf->chunks) != 0) {
                return -1;
            }
            if (conf->chunks == 0) {
                conf->chunks = 1;
            }
        } else if (strcmp(name, "--chunk-delay-ms") == 0) {
            if (mock_parse_uint(name, val, &conf->chunk_delay_ms) != 0) {
                return -1;
            }
        } else if (strcmp(name, "--latency-ms") == 0) {
            if (mock_parse_uint(name, val, &conf->latency_ms) != 0) {
                return -1;
            }
        } else {
            fprintf(stderr, "sluice-mock: unknown option \"%s\"\n", name);
            mock_usage(stderr);
            return -1;
        }
    }
    if ((conf->tls_cert == NULL) != (conf->tls_key == NULL)) {
        fputs("sluice-mock: --tls-cert and --tls-key go together\n", stderr);
        return -1;
    }
    return 0;
}


static int
mock_listen(const char *addr)
{
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    char host[256];
    const char *colon = strrchr(addr, ':');
    unsigned port;
    size_t hlen;
    int rc;

    if (colon == NULL || mock_parse_uint("--listen", colon + 1, &port) != 0 || port > 65535) {
        fprintf(stderr, "sluice-mock: --listen wants HOST:PORT, got \"%s\"\n", addr);
        return -1;
    }
    hlen = (size_t) (colon - addr);
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        fprintf(stderr, "sluice-mock: host too long in \"%s\"\n", addr);
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';

    if (strchr(host, ':') != NULL) {
        rc = uv_ip6_addr(host, (int) port, (struct sockaddr_in6 *) &ss);
    } else {
        rc = uv_ip4_addr(hlen == 0 ? "0.0.0.0" : host, (int) port, (struct sockaddr_in *) &ss);
    }
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_EMERG, rc, "invalid listen address \"%s\"", host);
        return -1;
    }

    uv_tcp_init(&mock_loop, &mock_listener);
    rc = uv_tcp_bind(&mock_listener, (const struct sockaddr *) &ss, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *) &mock_listener, MOCK_BACKLOG, mock_on_connection);
    }
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_EMERG, rc, "bind() to %s failed", mock.conf.listen);
        return -1;
    }
    rc = uv_tcp_getsockname(&mock_listener, (struct sockaddr *) &ss, &namelen);
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_EMERG, rc, "getsockname() failed");
        return -1;
    }
    port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *) &ss)->sin_port);
    printf("port=%u\n", port);
    fflush(stdout);
    return 0;
}


static void
mock_on_signal(uv_signal_t *h, int signum)
{
    mock_conn_t *c, *next;

    if (mock_stopping) {
        return;
    }
    mock_stopping = true;
    uv_close((uv_handle_t *) &mock_listener, NULL);
    for (c = mock_conns; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
    uv_close((uv_handle_t *) &mock_signals[0], NULL);
    uv_close((uv_handle_t *) &mock_signals[1], NULL);
}


static void
mock_on_connection(uv_stream_t *server, int status)
{
    mock_conn_t *c;
    int rc;

    if (status != 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, status, "accept() failed");
        return;
    }
    c = sl_xcalloc(1, sizeof(*c));
    uv_tcp_init(&mock_loop, &c->tcp);
    uv_timer_init(&mock_loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = mock_conns;
    if (mock_conns != NULL) {
        mock_conns->prev = c;
    }
    mock_conns = c;
    mock.connections++;
    mock.active++;

    rc = uv_accept(server, (uv_stream_t *) &c->tcp);
    if (rc != 0) {
        sl_log(&sl_log_main, SL_LOG_ERR, rc, "accept() failed");
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &mock_http);
    c->parser.data = c;
    if (mock_tls != NULL) {
        c->tls = sl_tls_create(mock_tls, NULL);
        if (c->tls == NULL) {
            conn_close(c);
            return;
        }
    }
    rc = uv_read_start((uv_stream_t *) &c->tcp, conn_on_alloc, conn_on_read);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}


/* Reads land in one shared buffer: everything is consumed or copied before the callback returns. */
static void
conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = mock_rbuf;
    buf->len = sizeof(mock_rbuf);
}


static void
conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mock_conn_t *c = s->data;

    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && !c->closing) {
            conn_on_eof(c);
        } else {
            conn_close(c);
        }
        return;
    }
    if (c->closing) {
        /* lingering or about to reset: the rest of the input is not wanted */
        return;
    }
    if (c->tls != NULL) {
        conn_tls_input(c, buf->base, (size_t) nread);
    } else {
        conn_input(c, buf->base, (size_t) nread);
    }
}


static void
conn_tls_input(mock_conn_t *c, const char *p, size_t len)
{
    int rc;

    sl_tls_feed(c->tls, p, len);
    if (!c->tls_ready) {
        rc = sl_tls_handshake(c->tls);
        conn_send_tls(c);
        if (rc == UV_EAGAIN) {
            return;
        }
        if (rc != 0) {
            sl_log(&sl_log_main, SL_LOG_INFO, 0, "tls handshake failed: %s",
                   sl_tls_last_error(c->tls));
            conn_close(c);
            return;
        }
        c->tls_ready = true;
    }
    for (;;) {
        rc = sl_tls_read(c->tls, &c->in);
        if (rc > 0) {
            continue;
        }
        if (rc == 0) {
            break;
        }
        if (rc == SL_ECLOSED) {
            conn_process(c);
            if (!c->closing) {
                conn_on_eof(c);
            }
            return;
        }
        sl_log(&sl_log_main, SL_LOG_INFO, 0, "tls read failed: %s", sl_tls_last_error(c->tls));
        conn_close(c);
        return;
    }
    conn_process(c);
}


/* Plain input. The common case parses straight from the read buffer, without a copy. */
static void
conn_input(mock_conn_t *c, const char *p, size_t len)
{
    size_t n;

    if (c->in.len > 0 || c->busy) {
        sl_buf_append(&c->in, p, len);
        conn_process(c);
        return;
    }
    c->in_parse = true;
    n = conn_parse(c, p, len);
    if (n < len && !c->closing) {
        sl_buf_append(&c->in, p + n, len - n);
    }
    c->in_parse = false;
    conn_flush(c);
    if (c->in.len > CONN_IN_HIGH && c->reading && !c->closing) {
        uv_read_stop((uv_stream_t *) &c->tcp);
        c->reading = false;
    }
}


/* Parses what c->in holds, then sends what the answers produced. */
static void
conn_process(mock_conn_t *c)
{
    size_t n;

    c->in_parse = true;
    n = conn_parse(c, c->in.p, c->in.len);
    c->in_parse = false;
    if (c->closing) {
        conn_flush(c);
        return;
    }
    sl_buf_consume(&c->in, n);
    conn_flush(c);
    if (c->closing) {
        return;
    }
    if (c->in.len > CONN_IN_HIGH && c->reading) {
        uv_read_stop((uv_stream_t *) &c->tcp);
        c->reading = false;
    } else if (c->in.len <= CONN_IN_HIGH && !c->reading && !c->eof) {
        if (uv_read_start((uv_stream_t *) &c->tcp, conn_on_alloc, conn_on_read) == 0) {
            c->reading = true;
        }
    }
    if (c->eof && !c->busy) {
        conn_close_graceful(c);
    }
}


/* Feeds the parser until the input ends or a response is pending. Returns the bytes consumed. */
static size_t
conn_parse(mock_conn_t *c, const char *p, size_t len)
{
    size_t off = 0;
    llhttp_errno_t err;

    while (off < len && !c->busy && !c->closing) {
        err = llhttp_execute(&c->parser, p + off, len - off);
        if (err == HPE_OK) {
            return len;
        }
        if (err == HPE_PAUSED) {
            off = (size_t) (llhttp_get_error_pos(&c->parser) - p);
            llhttp_resume(&c->parser);
            conn_dispatch(c);
            continue;
        }
        sl_log(&sl_log_main, SL_LOG_INFO, 0, "bad request: %s",
               llhttp_get_error_reason(&c->parser));
        conn_fail(c, c->parse_error != 0 ? c->parse_error : 400);
        return len;
    }
    return off;
}


static void
conn_dispatch(mock_conn_t *c)
{
    sl_mock_req_t r;
    const char *method = llhttp_method_name((llhttp_method_t) c->method);
    const char *q;

    for (size_t i = 0; i < c->nhdrs; i++) {
        mock_views[i].name = (sl_str_t){ c->head.p + c->hdrs[i].name_off, c->hdrs[i].name_len };
        mock_views[i].value = (sl_str_t){ c->head.p + c->hdrs[i].value_off, c->hdrs[i].value_len };
    }
    r.method = (sl_str_t){ method, strlen(method) };
    r.target = (sl_str_t){ c->head.p, c->target_len };
    q = c->target_len > 0 ? memchr(c->head.p, '?', c->target_len) : NULL;
    r.path = (sl_str_t){ c->head.p, q != NULL ? (size_t) (q - c->head.p) : c->target_len };
    r.headers = mock_views;
    r.nheaders = c->nhdrs;
    r.body = (sl_str_t){ c->body.p, c->body.len };
    r.keep_alive = c->keep_alive && !c->eof;
    r.http10 = c->http10;

    sl_mock_handle(&mock, &r, &c->resp);

    c->busy = true;
    c->seg = 0;
    c->off = 0;
    if (c->resp.delay_ms > 0) {
        uv_timer_start(&c->timer, conn_on_timer, c->resp.delay_ms, 0);
        return;
    }
    conn_deliver(c);
}


static void
conn_fail(mock_conn_t *c, int status)
{
    sl_mock_bad_request(&mock, &c->resp, status);
    c->busy = true;
    c->seg = 0;
    c->off = 0;
    conn_deliver(c);
}


/*
 * Sends the response plan from the cursor on, until it is done or has to
 * wait (pacing, drip). Faults act at segment boundaries.
 */
static void
conn_deliver(mock_conn_t *c)
{
    sl_mock_resp_t *rs = &c->resp;
    size_t end;

    while (c->seg < rs->nseg) {
        if (c->closing) {
            return;
        }
        end = rs->seg_end[c->seg];
        if (rs->drip_ms > 0 && c->off < end) {
            sl_buf_append(&c->out, rs->data.p + c->off, 1);
            c->off++;
        } else {
            sl_buf_append(&c->out, rs->data.p + c->off, end - c->off);
            c->off = end;
        }
        if (c->off == end) {
            c->seg++;
            if (rs->reset_after != 0 && c->seg == rs->reset_after) {
                conn_flush(c);
                conn_reset(c);
                return;
            }
        }
        if (c->seg == rs->nseg) {
            break;
        }
        if (rs->drip_ms > 0) {
            conn_flush(c);
            uv_timer_start(&c->timer, conn_on_timer, rs->drip_ms, 0);
            return;
        }
        if (rs->paced_from > 0 && c->seg >= rs->paced_from) {
            /* a stream: every event leaves in its own write */
            conn_flush(c);
            if (rs->chunk_delay_ms > 0) {
                uv_timer_start(&c->timer, conn_on_timer, rs->chunk_delay_ms, 0);
                return;
            }
        }
    }

    c->busy = false;
    if (rs->close) {
        conn_close_graceful(c);
        return;
    }
    if (!c->in_parse) {
        conn_process(c);
    }
}


static void
conn_on_timer(uv_timer_t *t)
{
    mock_conn_t *c = t->data;

    if (c->lingering) {
        conn_close(c);
        return;
    }
    if (c->reset_pending) {
        if (c->nwrites == 0) {
            conn_reset_now(c);
        }
        return;
    }
    conn_deliver(c);
    if (!c->in_parse) {
        conn_flush(c);
    }
}


static void
conn_flush(mock_conn_t *c)
{
    if (c->out.len == 0 || c->closed || c->shut) {
        return;
    }
    if (c->tls != NULL) {
        if (sl_tls_write(c->tls, c->out.p, c->out.len) != 0) {
            sl_log(&sl_log_main, SL_LOG_ERR, 0, "tls write failed: %s", sl_tls_last_error(c->tls));
            conn_close(c);
            return;
        }
        sl_buf_clear(&c->out);
        conn_send_tls(c);
        return;
    }
    conn_send(c, c->out.p, c->out.len);
    sl_buf_clear(&c->out);
}


static void
conn_send_tls(mock_conn_t *c)
{
    sl_buf_t *o = sl_tls_output(c->tls);

    if (o->len > 0) {
        conn_send(c, o->p, o->len);
        sl_buf_clear(o);
    }
}


static void
conn_send(mock_conn_t *c, const char *p, size_t len)
{
    conn_wreq_t *w;
    uv_buf_t b;
    int n;

    if (c->closed || c->shut) {
        return;
    }
    if (c->nwrites == 0) {
        b = uv_buf_init((char *) p, (unsigned) len);
        n = uv_try_write((uv_stream_t *) &c->tcp, &b, 1);
        if (n >= 0 && (size_t) n == len) {
            return;
        }
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        if (n > 0) {
            p += n;
            len -= (size_t) n;
        }
    }
    w = sl_xmalloc(sizeof(*w) + len);
    w->c = c;
    memcpy(w->data, p, len);
    b = uv_buf_init(w->data, (unsigned) len);
    n = uv_write(&w->req, (uv_stream_t *) &c->tcp, &b, 1, conn_on_write);
    if (n != 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->nwrites++;
}


static void
conn_on_write(uv_write_t *req, int status)
{
    conn_wreq_t *w = (conn_wreq_t *) req;
    mock_conn_t *c = w->c;

    free(w);
    c->nwrites--;
    if (status != 0) {
        conn_close(c);
        return;
    }
    if (c->nwrites == 0 && c->reset_pending) {
        conn_reset_now(c);
    }
}


/* The peer finished sending: answer what is pending, then close. */
static void
conn_on_eof(mock_conn_t *c)
{
    c->eof = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *) &c->tcp);
        c->reading = false;
    }
    if (c->busy) {
        return;
    }
    if (c->nwrites == 0 && c->out.len == 0) {
        conn_close(c);
        return;
    }
    conn_close_graceful(c);
}


/* FIN after the pending output, then drain input for a while so our close sends no RST. */
static void
conn_close_graceful(mock_conn_t *c)
{
    int rc;

    if (c->shut || c->closed) {
        return;
    }
    c->closing = true;
    uv_timer_stop(&c->timer);
    conn_flush(c);
    if (c->tls != NULL && c->tls_ready && !c->resp.abort) {
        sl_tls_close_notify(c->tls);
        conn_send_tls(c);
    }
    if (c->closed) {
        return;
    }
    c->shut = true;
    rc = uv_shutdown(&c->shutdown, (uv_stream_t *) &c->tcp, conn_on_shutdown);
    if (rc != 0) {
        conn_close(c);
    }
}


static void
conn_on_shutdown(uv_shutdown_t *req, int status)
{
    mock_conn_t *c = (mock_conn_t *) ((char *) req - offsetof(mock_conn_t, shutdown));

    if (c->closed) {
        return;
    }
    if (status != 0 || c->eof) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    if (!c->reading) {
        if (uv_read_start((uv_stream_t *) &c->tcp, conn_on_alloc, conn_on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    }
    uv_timer_start(&c->timer, conn_on_timer, CONN_LINGER_MS, 0);
}


/* RST once what was written has left (SO_LINGER 0, then close). */
static void
conn_reset(mock_conn_t *c)
{
    c->closing = true;
    uv_timer_stop(&c->timer);
    if (c->nwrites > 0) {
        c->reset_pending = true;
        return;
    }
    conn_reset_now(c);
}


static void
conn_reset_now(mock_conn_t *c)
{
    uv_os_fd_t fd;
    int queued = 0;

    if (c->closed) {
        return;
    }
    /* SO_LINGER 0 throws away what the peer has not acknowledged: wait for it, briefly */
    if (c->reset_waits < CONN_RESET_WAITS && uv_fileno((uv_handle_t *) &c->tcp, &fd) == 0
        && ioctl(fd, TIOCOUTQ, &queued) == 0 && queued > 0) {
        c->reset_waits++;
        c->reset_pending = true;
        uv_timer_start(&c->timer, conn_on_timer, 1, 0);
        return;
    }
    c->closed = true;
    c->closing = true;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        mock_conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (uv_tcp_close_reset(&c->tcp, conn_on_close) != 0) {
        uv_close((uv_handle_t *) &c->tcp, conn_on_close);
    }
    uv_close((uv_handle_t *) &c->timer, conn_on_close);
}


/* Immediate close: pending writes are cancelled. The memory goes in conn_on_close. */
static void
conn_close(mock_conn_t *c)
{
    if (c->closed) {
        return;
    }
    c->closed = true;
    c->closing = true;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        mock_conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    uv_close((uv_handle_t *) &c->tcp, conn_on_close);
    uv_close((uv_handle_t *) &c->timer, conn_on_close);
}


static void
conn_on_close(uv_handle_t *h)
{
    mock_conn_t *c = h->data;

    if (--c->handles > 0) {
        return;
    }
    sl_tls_destroy(c->tls);
    sl_buf_free(&c->in);
    sl_buf_free(&c->out);
    sl_buf_free(&c->head);
    sl_buf_free(&c->body);
    sl_buf_free(&c->resp.data);
    free(c->resp.seg_end);
    free(c);
    mock.active--;
}


static int
conn_on_message_begin(llhttp_t *p)
{
    mock_conn_t *c = p->data;

    sl_buf_clear(&c->head);
    sl_buf_clear(&c->body);
    c->nhdrs = 0;
    c->target_len = 0;
    c->hstate = 0;
    c->parse_error = 0;
    return 0;
}


static int
conn_on_url(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;

    if (c->head.len + len > CONN_MAX_HEAD) {
        c->parse_error = 414;
        return -1;
    }
    sl_buf_append(&c->head, at, len);
    c->target_len += len;
    return 0;
}


static int
conn_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;
    conn_hdr_t *h;

    if (c->head.len + len > CONN_MAX_HEAD) {
        c->parse_error = 431;
        return -1;
    }
    if (c->hstate != 1) {
        if (c->nhdrs == CONN_MAX_HEADERS) {
            c->parse_error = 431;
            return -1;
        }
        h = &c->hdrs[c->nhdrs++];
        h->name_off = c->head.len;
        h->name_len = 0;
        h->value_off = c->head.len;
        h->value_len = 0;
        c->hstate = 1;
    }
    sl_buf_append(&c->head, at, len);
    c->hdrs[c->nhdrs - 1].name_len += len;
    return 0;
}


static int
conn_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;
    conn_hdr_t *h;

    if (c->head.len + len > CONN_MAX_HEAD) {
        c->parse_error = 431;
        return -1;
    }
    if (c->nhdrs == 0) {
        return 0;
    }
    h = &c->hdrs[c->nhdrs - 1];
    if (c->hstate != 2) {
        h->value_off = c->head.len;
        c->hstate = 2;
    }
    sl_buf_append(&c->head, at, len);
    h->value_len += len;
    return 0;
}


static int
conn_on_headers_complete(llhttp_t *p)
{
    mock_conn_t *c = p->data;
    sl_str_t v;

    if (p->content_length > CONN_MAX_BODY && (p->flags & F_CONTENT_LENGTH) != 0) {
        c->parse_error = 413;
        return -1;
    }
    for (size_t i = 0; i < c->nhdrs; i++) {
        sl_str_t name = { c->head.p + c->hdrs[i].name_off, c->hdrs[i].name_len };

        if (!sl_str_caseeq(name, "expect")) {
            continue;
        }
        v = (sl_str_t){ c->head.p + c->hdrs[i].value_off, c->hdrs[i].value_len };
        if (sl_str_caseeq(sl_str_trim(v), "100-continue")) {
            /* queued behind any earlier answer; conn_process flushes it */
            sl_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        }
    }
    return 0;
}


static int
conn_on_body(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;

    if (c->body.len + len > CONN_MAX_BODY) {
        c->parse_error = 413;
        return -1;
    }
    sl_buf_append(&c->body, at, len);
    return 0;
}


/* Pauses the parser: conn_parse answers this request before reading the next one. */
static int
conn_on_message_complete(llhttp_t *p)
{
    mock_conn_t *c = p->data;

    c->method = llhttp_get_method(p);
    c->keep_alive = llhttp_should_keep_alive(p) != 0;
    c->http10 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0;
    return HPE_PAUSED;
}
