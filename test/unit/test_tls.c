/*
 * Unit tests for core/http/tls.c: a client and a server session talk through
 * memory buffers only (no sockets). Certificates come from
 * test/unit/upstream/gen-certs.sh, run into a mkdtemp directory.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/base/errno.h"
#include "core/http/tls.h"

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
    int crc = UV_EAGAIN, src = UV_EAGAIN;
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
    for (int i = 0; i < 20 && (crc == UV_EAGAIN || src == UV_EAGAIN); i++) {
        if (crc == UV_EAGAIN) {
            crc = sl_tls_handshake(cli);
        }
        tls_pump(cli, srv);
        if (src == UV_EAGAIN) {
            src = sl_tls_handshake(srv);
        }
        tls_pump(srv, cli);
    }
    assert_int_equal(crc, 0);
    assert_int_equal(src, 0);
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


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data), cmocka_unit_test(test_untrusted),
        cmocka_unit_test(test_name_mismatch),      cmocka_unit_test(test_ip_literal),
        cmocka_unit_test(test_no_verify),          cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_server_pem),         cmocka_unit_test(test_read_into),
    };

    return cmocka_run_group_tests(tests, tls_group_setup, tls_group_teardown);
}
