/*
 * Unit tests for core/http/tls.c: a client and a server session talk through
 * memory buffers only (no sockets). Certificates come from
 * test/unit/upstream/gen-certs.sh, run into a mkdtemp directory.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include <mbedtls/ssl.h>

#include "core/base/errno.h"
#include "core/http/tls.h"
#include "core/http/tls_ticket.h"

static char tls_dir[64];

static int tls_group_setup(void **state);
static int tls_group_teardown(void **state);
static const char *tls_path(const char *name);
static int tls_pump(sl_tls_t *from, sl_tls_t *to);
static int tls_connect(sl_tls_conf_t *ccf, const char *name, const char *cert, sl_tls_t **cli,
                       sl_tls_t **srv, sl_tls_conf_t **scf);
static void test_handshake_and_data(void **state);
static void test_untrusted(void **state);
static void test_name_mismatch(void **state);
static void test_ip_literal(void **state);
static void test_no_verify(void **state);
static void test_bad_files(void **state);
static void test_server_pem(void **state);
static void test_read_into(void **state);
static int tls_shake(sl_tls_t *cli, sl_tls_t *srv);
static int tls_resume(sl_tls_conf_t *ccf, sl_tls_conf_t *scf, const sl_tls_session_t *sess,
                      bool *resumed);
static uint64_t tls_clock(void);
static int tls_counter_rng(void *p, unsigned char *out, size_t len);
static void test_ticket_resume(void **state);
static void test_ticket_tamper(void **state);

static uint64_t tls_clock_now; /* what tls_clock answers */
static char *tls_slurp(const char *name, size_t *len);


static int
tls_group_setup(void **state)
{
    const char *src = getenv("SL_TEST_SRCDIR");
    char cmd[PATH_MAX * 2 + 64];

    snprintf(tls_dir, sizeof(tls_dir), "/tmp/sl-tls-XXXXXX");
    if (mkdtemp(tls_dir) == NULL) {
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "sh %s/unit/upstream/gen-certs.sh %s", src != NULL ? src : "test",
             tls_dir);
    if (system(cmd) != 0) {
        return -1;
    }
    return sl_tls_worker_init();
}


static int
tls_group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
    return system(cmd) == 0 ? 0 : -1;
}


static const char *
tls_path(const char *name)
{
    static char paths[4][PATH_MAX];
    static unsigned next;
    char *p = paths[next++ % 4];

    snprintf(p, PATH_MAX, "%s/%s", tls_dir, name);
    return p;
}


/* Moves from's pending ciphertext into to; returns the byte count. */
static int
tls_pump(sl_tls_t *from, sl_tls_t *to)
{
    sl_buf_t *out = sl_tls_output(from);
    int n = (int) out->len;

    if (n > 0) {
        sl_tls_feed(to, out->p, out->len);
        sl_buf_clear(out);
    }
    return n;
}


/* Runs both handshakes to the end; returns the client's result. */
static int
tls_connect(sl_tls_conf_t *ccf, const char *name, const char *cert, sl_tls_t **cli, sl_tls_t **srv,
            sl_tls_conf_t **scf)
{
    int crc = UV_EAGAIN, src = UV_EAGAIN;
    char crt[PATH_MAX], key[PATH_MAX];

    snprintf(crt, sizeof(crt), "%s/%s.crt", tls_dir, cert);
    snprintf(key, sizeof(key), "%s/%s.key", tls_dir, cert);
    *scf = sl_tls_conf_server(crt, key);
    assert_non_null(*scf);
    *cli = sl_tls_create(ccf, name);
    *srv = sl_tls_create(*scf, NULL);
    assert_non_null(*cli);
    assert_non_null(*srv);

    for (int i = 0; i < 20; i++) {
        if (crc == UV_EAGAIN) {
            crc = sl_tls_handshake(*cli);
        }
        tls_pump(*cli, *srv);
        if (src == UV_EAGAIN) {
            src = sl_tls_handshake(*srv);
        }
        tls_pump(*srv, *cli);
        if (crc != UV_EAGAIN && (src != UV_EAGAIN || crc != 0)) {
            break;
        }
    }
    if (crc == 0) {
        assert_int_equal(src, 0);
    }
    return crc;
}


static void
test_handshake_and_data(void **state)
{
    sl_tls_conf_t *ccf, *scf;
    sl_tls_t *cli, *srv;
    sl_buf_t plain = SL_BUF_INIT;
    char big[40000];
    int rc;

    ccf = sl_tls_conf_client(tls_path("ca.crt"), true);
    assert_non_null(ccf);
    assert_int_equal(tls_connect(ccf, "localhost", "good", &cli, &srv, &scf), 0);

    assert_int_equal(sl_tls_write(cli, "ping", 4), 0);
    tls_pump(cli, srv);
    rc = sl_tls_read(srv, &plain);
    assert_int_equal(rc, 4);
    assert_memory_equal(plain.p, "ping", 4);
    sl_buf_clear(&plain);

    /* larger than one record: arrives in several, read in one call */
    memset(big, 'x', sizeof(big));
    assert_int_equal(sl_tls_write(srv, big, sizeof(big)), 0);
    tls_pump(srv, cli);
    assert_int_equal(sl_tls_read(cli, &plain), (int) sizeof(big));
    sl_buf_clear(&plain);

    /* nothing fed: needs more input */
    assert_int_equal(sl_tls_read(cli, &plain), 0);

    /* data then close_notify in the same flight */
    assert_int_equal(sl_tls_write(srv, "bye", 3), 0);
    sl_tls_close_notify(srv);
    tls_pump(srv, cli);
    assert_int_equal(sl_tls_read(cli, &plain), 3);
    assert_int_equal(sl_tls_read(cli, &plain), SL_ECLOSED);

    sl_buf_free(&plain);
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(ccf);
    sl_tls_conf_destroy(scf);
}


static void
test_untrusted(void **state)
{
    sl_tls_conf_t *ccf, *scf;
    sl_tls_t *cli, *srv;

    ccf = sl_tls_conf_client(NULL, true);
    assert_non_null(ccf);
    assert_int_equal(tls_connect(ccf, "localhost", "good", &cli, &srv, &scf), SL_ECERT);
    assert_non_null(strstr(sl_tls_last_error(cli), "not correctly signed"));
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(ccf);
    sl_tls_conf_destroy(scf);
}


static void
test_name_mismatch(void **state)
{
    sl_tls_conf_t *ccf, *scf;
    sl_tls_t *cli, *srv;

    ccf = sl_tls_conf_client(tls_path("ca.crt"), true);
    assert_non_null(ccf);
    assert_int_equal(tls_connect(ccf, "localhost", "wrong", &cli, &srv, &scf), SL_ECERT);
    assert_non_null(strstr(sl_tls_last_error(cli), "Common Name"));
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(scf);

    assert_int_equal(tls_connect(ccf, "wrong.example", "wrong", &cli, &srv, &scf), 0);
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(scf);
    sl_tls_conf_destroy(ccf);
}


static void
test_ip_literal(void **state)
{
    sl_tls_conf_t *ccf, *scf;
    sl_tls_t *cli, *srv;

    ccf = sl_tls_conf_client(tls_path("ca.crt"), true);
    assert_non_null(ccf);
    assert_int_equal(tls_connect(ccf, "127.0.0.1", "good", &cli, &srv, &scf), 0);
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(scf);

    assert_int_equal(tls_connect(ccf, "127.0.0.2", "good", &cli, &srv, &scf), SL_ECERT);
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(scf);

    assert_int_equal(tls_connect(ccf, "::1", "good", &cli, &srv, &scf), SL_ECERT);
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(scf);
    sl_tls_conf_destroy(ccf);
}


static void
test_no_verify(void **state)
{
    sl_tls_conf_t *ccf, *scf;
    sl_tls_t *cli, *srv;

    ccf = sl_tls_conf_client(NULL, false);
    assert_non_null(ccf);
    assert_int_equal(tls_connect(ccf, "somewhere.else", "wrong", &cli, &srv, &scf), 0);
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(ccf);
    sl_tls_conf_destroy(scf);
}


static void
test_bad_files(void **state)
{
    assert_null(sl_tls_conf_client(tls_path("missing.crt"), true));
    assert_null(sl_tls_conf_server(tls_path("missing.crt"), tls_path("good.key")));
    assert_null(sl_tls_conf_server(tls_path("good.crt"), tls_path("missing.key")));
    assert_null(sl_tls_conf_server(tls_path("good.crt"), tls_path("ca.cnf")));
}


/* A file of the test directory, NUL-terminated; *len excludes the NUL. */
static char *
tls_slurp(const char *name, size_t *len)
{
    FILE *f = fopen(tls_path(name), "rb");
    char *p;

    assert_non_null(f);
    p = calloc(1, 65536);
    assert_non_null(p);
    *len = fread(p, 1, 65535, f);
    fclose(f);
    return p;
}


static void
test_server_pem(void **state)
{
    size_t clen, klen, wlen, calen;
    char *crt = tls_slurp("good.crt", &clen);
    char *key = tls_slurp("good.key", &klen);
    char *wkey = tls_slurp("wrong.key", &wlen);
    char *ca = tls_slurp("ca.crt", &calen);
    sl_tls_conf_t *scf, *ccf;
    sl_tls_t *cli, *srv;
    char err[256];
    char saved;

    assert_int_equal(sl_tls_check_server_pem(crt, clen, key, klen, err, sizeof(err)), 0);
    assert_int_equal(sl_tls_check_server_pem(crt, clen, wkey, wlen, err, sizeof(err)), SL_ETLS);
    assert_string_equal(err, "private key: it does not belong to the certificate");
    assert_int_equal(sl_tls_check_server_pem(key, klen, key, klen, err, sizeof(err)), SL_ETLS);
    assert_non_null(strstr(err, "certificate: no PEM certificate"));
    assert_int_equal(sl_tls_check_server_pem(crt, clen, ca, calen, err, sizeof(err)), SL_ETLS);
    assert_memory_equal(err, "private key: ", 13);
    assert_int_equal(sl_tls_check_server_pem(crt, clen, "hello", 5, err, sizeof(err)), SL_ETLS);
    assert_non_null(strstr(err, "private key: not a PEM key"));
    /* a damaged certificate */
    saved = crt[clen / 2];
    crt[clen / 2] = saved == 'A' ? 'B' : 'A';
    assert_int_equal(sl_tls_check_server_pem(crt, clen, key, klen, err, sizeof(err)), SL_ETLS);
    assert_non_null(strstr(err, "certificate: "));
    assert_null(sl_tls_conf_server_pem(crt, clen, key, klen, err, sizeof(err)));
    crt[clen / 2] = saved;

    /* the configuration made from memory serves a verifying client */
    scf = sl_tls_conf_server_pem(crt, clen, key, klen, err, sizeof(err));
    assert_non_null(scf);
    ccf = sl_tls_conf_client(tls_path("ca.crt"), true);
    assert_non_null(ccf);
    cli = sl_tls_create(ccf, "localhost");
    srv = sl_tls_create(scf, NULL);
    assert_int_equal(tls_shake(cli, srv), 0);
    /* the client offered no ALPN: none agreed */
    assert_null(sl_tls_alpn(srv));

    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(ccf);
    sl_tls_conf_destroy(scf);
    free(crt);
    free(key);
    free(wkey);
    free(ca);
    (void) state;
}


/* sl_tls_read_into fills a bounded buffer; what does not fit stays pending. */
static void
test_read_into(void **state)
{
    sl_tls_conf_t *ccf, *scf;
    sl_tls_t *cli, *srv;
    char big[40000], got[40000 + 16], small[1000];
    size_t n = 0;
    int rc;

    ccf = sl_tls_conf_client(tls_path("ca.crt"), true);
    assert_non_null(ccf);
    assert_int_equal(tls_connect(ccf, "localhost", "good", &cli, &srv, &scf), 0);
    assert_false(sl_tls_pending(srv));
    assert_int_equal(sl_tls_read_into(srv, small, sizeof(small)), 0);

    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char) ('a' + i % 26);
    }
    assert_int_equal(sl_tls_write(cli, big, sizeof(big)), 0);
    sl_tls_close_notify(cli);
    tls_pump(cli, srv);
    assert_true(sl_tls_pending(srv));
    while ((rc = sl_tls_read_into(srv, small, sizeof(small))) > 0) {
        assert_true((size_t) rc <= sizeof(small));
        memcpy(got + n, small, (size_t) rc);
        n += (size_t) rc;
    }
    assert_int_equal(rc, SL_ECLOSED);
    assert_int_equal(n, sizeof(big));
    assert_memory_equal(got, big, sizeof(big));
    assert_int_equal(sl_tls_read_into(srv, small, sizeof(small)), SL_ECLOSED);

    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    sl_tls_conf_destroy(ccf);
    sl_tls_conf_destroy(scf);
    (void) state;
}


/* Runs both handshakes of two fresh sessions to the end; returns the client's result. */
static int
tls_shake(sl_tls_t *cli, sl_tls_t *srv)
{
    int crc = UV_EAGAIN, src = UV_EAGAIN;

    for (int i = 0; i < 20 && (crc == UV_EAGAIN || (crc == 0 && src == UV_EAGAIN)); i++) {
        if (crc == UV_EAGAIN) {
            crc = sl_tls_handshake(cli);
        }
        tls_pump(cli, srv);
        if (src == UV_EAGAIN) {
            src = sl_tls_handshake(srv);
        }
        tls_pump(srv, cli);
    }
    if (crc == 0) {
        assert_int_equal(src, 0);
    }
    return crc;
}


/*
 * One handshake against scf offering sess; *resumed says whether the server
 * resumed it. A finished handshake also carries a byte each way.
 */
static int
tls_resume(sl_tls_conf_t *ccf, sl_tls_conf_t *scf, const sl_tls_session_t *sess, bool *resumed)
{
    sl_tls_t *cli = sl_tls_create(ccf, "localhost");
    sl_tls_t *srv = sl_tls_create(scf, NULL);
    sl_buf_t plain = SL_BUF_INIT;
    int rc;

    assert_non_null(cli);
    assert_non_null(srv);
    if (sess != NULL) {
        assert_int_equal(sl_tls_session_set(cli, sess), 0);
    }
    rc = tls_shake(cli, srv);
    *resumed = sl_tls_resumed(srv);
    if (rc == 0) {
        assert_int_equal(sl_tls_write(cli, "x", 1), 0);
        tls_pump(cli, srv);
        assert_int_equal(sl_tls_read(srv, &plain), 1);
        sl_buf_free(&plain);
    }
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);
    return rc;
}


static uint64_t
tls_clock(void)
{
    return tls_clock_now;
}


/*
 * Session tickets: a ticket one server configuration issued resumes on
 * another of the same certificate (another worker), within its lifetime
 * only, not where tickets are off, and never on another certificate.
 */
static void
test_ticket_resume(void **state)
{
    sl_tls_conf_t *ccf, *worker1, *worker2, *plain, *other;
    sl_tls_session_t *sess;
    sl_tls_t *cli, *srv;
    bool resumed;
    uint64_t issued = (uint64_t) time(NULL);

    ccf = sl_tls_conf_client(tls_path("ca.crt"), true);
    worker1 = sl_tls_conf_server(tls_path("good.crt"), tls_path("good.key"));
    worker2 = sl_tls_conf_server(tls_path("good.crt"), tls_path("good.key"));
    plain = sl_tls_conf_server(tls_path("good.crt"), tls_path("good.key"));
    other = sl_tls_conf_server(tls_path("wrong.crt"), tls_path("wrong.key"));
    assert_non_null(ccf);
    assert_non_null(worker1);
    assert_non_null(worker2);
    assert_non_null(plain);
    assert_non_null(other);
    assert_int_equal(sl_tls_conf_tickets(ccf, 3600), -EINVAL);
    assert_int_equal(sl_tls_conf_tickets(worker1, 0), -EINVAL);
    assert_int_equal(sl_tls_conf_tickets(worker1, 3600), 0);
    assert_int_equal(sl_tls_conf_tickets(worker2, 3600), 0);
    assert_int_equal(sl_tls_conf_tickets(other, 3600), 0);
    tls_clock_now = issued;
    sl__tls_ticket_clock = tls_clock;

    /* a full handshake with worker 1 leaves the client a ticket */
    cli = sl_tls_create(ccf, "localhost");
    srv = sl_tls_create(worker1, NULL);
    assert_int_equal(tls_shake(cli, srv), 0);
    assert_false(sl_tls_resumed(srv));
    sess = sl_tls_session_get(cli);
    assert_non_null(sess);
    sl_tls_destroy(cli);
    sl_tls_destroy(srv);

    /* worker 2 resumes it; so does worker 1 until the lifetime ends */
    assert_int_equal(tls_resume(ccf, worker2, sess, &resumed), 0);
    assert_true(resumed);
    tls_clock_now = issued + 3599;
    assert_int_equal(tls_resume(ccf, worker1, sess, &resumed), 0);
    assert_true(resumed);
    tls_clock_now = issued + 3601;
    assert_int_equal(tls_resume(ccf, worker1, sess, &resumed), 0);
    assert_false(resumed);
    tls_clock_now = issued + 3 * 3600;
    assert_int_equal(tls_resume(ccf, worker2, sess, &resumed), 0);
    assert_false(resumed);
    tls_clock_now = issued;

    /* tickets off: a full handshake */
    assert_int_equal(tls_resume(ccf, plain, sess, &resumed), 0);
    assert_false(resumed);
    /* another certificate: the ticket is not accepted, the full handshake checks the name */
    assert_int_equal(tls_resume(ccf, other, sess, &resumed), SL_ECERT);
    assert_false(resumed);
    /* nothing offered: a full handshake */
    assert_int_equal(tls_resume(ccf, worker1, NULL, &resumed), 0);
    assert_false(resumed);

    sl__tls_ticket_clock = NULL;
    sl_tls_session_free(sess);
    sl_tls_conf_destroy(ccf);
    sl_tls_conf_destroy(worker1);
    sl_tls_conf_destroy(worker2);
    sl_tls_conf_destroy(plain);
    sl_tls_conf_destroy(other);
    (void) state;
}


static int
tls_counter_rng(void *p, unsigned char *out, size_t len)
{
    unsigned *n = p;

    for (size_t i = 0; i < len; i++) {
        out[i] = (unsigned char) (*n)++;
    }
    return 0;
}


/* A ticket changed anywhere, cut short, or of another certificate does not parse. */
static void
test_ticket_tamper(void **state)
{
    unsigned counter = 1;
    sl_tls_tickets_t *tk =
        sl__tls_tickets_new((const unsigned char *) "cert-a", 6, 600, tls_counter_rng, &counter);
    sl_tls_tickets_t *tk2 =
        sl__tls_tickets_new((const unsigned char *) "cert-a", 6, 600, tls_counter_rng, &counter);
    sl_tls_tickets_t *other =
        sl__tls_tickets_new((const unsigned char *) "cert-b", 6, 600, tls_counter_rng, &counter);
    mbedtls_ssl_session in, out;
    unsigned char ticket[2048], copy[2048];
    size_t tlen;
    uint32_t lifetime = 0;

    mbedtls_ssl_session_init(&in);
    in.ciphersuite = MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
    memset(in.master, 0x5a, sizeof(in.master));
    assert_int_equal(sl__tls_ticket_write(tk, &in, ticket, ticket + 40, &tlen, &lifetime),
                     MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL);
    assert_int_equal(
        sl__tls_ticket_write(tk, &in, ticket, ticket + sizeof(ticket), &tlen, &lifetime), 0);
    assert_int_equal(lifetime, 600);
    /* the master secret is not in the ticket in clear */
    for (size_t i = 0; i + 8 <= tlen; i++) {
        assert_false(memcmp(ticket + i, in.master, 8) == 0);
    }

    /* intact: both contexts of the certificate read it */
    memcpy(copy, ticket, tlen);
    mbedtls_ssl_session_init(&out);
    assert_int_equal(sl__tls_ticket_parse(tk2, &out, copy, tlen), 0);
    assert_int_equal(out.ciphersuite, in.ciphersuite);
    assert_memory_equal(out.master, in.master, sizeof(in.master));
    mbedtls_ssl_session_free(&out);

    for (size_t i = 0; i < tlen; i++) {
        memcpy(copy, ticket, tlen);
        copy[i] ^= 0x01;
        mbedtls_ssl_session_init(&out);
        if (i < 4) {
            /* the period: an old one is expired, any other not ours */
            assert_int_not_equal(sl__tls_ticket_parse(tk, &out, copy, tlen), 0);
        } else {
            assert_int_equal(sl__tls_ticket_parse(tk, &out, copy, tlen),
                             MBEDTLS_ERR_SSL_INVALID_MAC);
        }
        mbedtls_ssl_session_free(&out);
    }
    memcpy(copy, ticket, tlen);
    mbedtls_ssl_session_init(&out);
    assert_int_equal(sl__tls_ticket_parse(tk, &out, copy, tlen - 1), MBEDTLS_ERR_SSL_INVALID_MAC);
    assert_int_equal(sl__tls_ticket_parse(tk, &out, copy, 20), MBEDTLS_ERR_SSL_BAD_INPUT_DATA);
    memcpy(copy, ticket, tlen);
    assert_int_equal(sl__tls_ticket_parse(other, &out, copy, tlen), MBEDTLS_ERR_SSL_INVALID_MAC);
    mbedtls_ssl_session_free(&out);

    mbedtls_ssl_session_free(&in);
    sl__tls_tickets_destroy(tk);
    sl__tls_tickets_destroy(tk2);
    sl__tls_tickets_destroy(other);
    (void) state;
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data), cmocka_unit_test(test_untrusted),
        cmocka_unit_test(test_name_mismatch),      cmocka_unit_test(test_ip_literal),
        cmocka_unit_test(test_no_verify),          cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_server_pem),         cmocka_unit_test(test_read_into),
        cmocka_unit_test(test_ticket_resume),      cmocka_unit_test(test_ticket_tamper),
    };

    return cmocka_run_group_tests(tests, tls_group_setup, tls_group_teardown);
}
