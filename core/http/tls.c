/*
 * TLS over memory buffers with mbedTLS 2.28. mbedTLS never sees a socket:
 * its bio callbacks read ciphertext from the session's input buffer (filled
 * by sl_tls_feed) and append ciphertext to its output buffer (drained by the
 * caller). One CTR_DRBG per process, seeded after fork by
 * sl_tls_worker_init() (or lazily by the first conf or session when a
 * process forgot to), is shared by every configuration of that process.
 *
 * mbedTLS 2.28 checks the peer's name against dNSName SANs and the CN only,
 * so an IP literal is checked here against the certificate's iPAddress SANs
 * in a verify callback, and no SNI is sent for it (RFC 6066 3).
 */
#include "core/http/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <uv.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/http/tls_ticket.h"

#define TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define TLS_ERR_MAX        256
#define TLS_READ_CHUNK     16384
#define TLS_IN_KEEP        4096 /* larger input buffers are freed once consumed */

struct sl_tls_conf {
    mbedtls_ssl_config ssl;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    sl_tls_tickets_t *tickets; /* server with session tickets; NULL: none */
    bool server;
    bool verify;
};

struct sl_tls_session {
    mbedtls_ssl_session s;
};

struct sl_tls {
    mbedtls_ssl_context ssl;
    sl_tls_conf_t *conf;
    sl_buf_t in; /* ciphertext fed but not yet consumed by mbedTLS */
    size_t in_pos;
    sl_buf_t out; /* ciphertext for the peer */
    unsigned char ip[16];
    size_t iplen; /* non-zero: the peer is an IP literal, checked against iPAddress SANs */
    bool closed;  /* close_notify received */
    bool resumed; /* server: the handshake resumed a session from a ticket */
    char err[TLS_ERR_MAX];
};

static int tls_seed(void);
static sl_tls_conf_t *tls_conf_new(bool server);
static void tls_conf_harden_server(sl_tls_conf_t *conf);
static int tls_parse_pem(mbedtls_x509_crt *crt, mbedtls_pk_context *pk, const char *cert,
                         size_t cert_len, const char *key, size_t key_len, char *err,
                         size_t errlen);
static int tls_bio_send(void *ctx, const unsigned char *p, size_t len);
static int tls_bio_recv(void *ctx, unsigned char *p, size_t len);
static int tls_verify_ip(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags);
static bool tls_crt_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t iplen);
static int tls_error(sl_tls_t *t, int mrc);
static int tls_ticket_parse(void *p_ticket, mbedtls_ssl_session *session, unsigned char *buf,
                            size_t len);
static void tls_strerror(int mrc, char *buf, size_t len);

/*
 * What a server offers: ECDHE (forward secrecy) with AEAD ciphers only, for
 * ECDSA and RSA certificates alike; mbedTLS picks what the key allows.
 */
static const int tls_server_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static const char *tls_server_alpn[] = { "http/1.1", NULL };

/*
 * Key exchange groups, the fast ones first. mbedTLS 2.28's default puts
 * secp521r1 first and a server follows its own order, which made every
 * full handshake several times slower than with X25519 or P-256.
 */
static const mbedtls_ecp_group_id tls_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_SECP521R1,  MBEDTLS_ECP_DP_NONE,
};

static mbedtls_entropy_context tls_entropy;
static mbedtls_ctr_drbg_context tls_drbg;
static pid_t tls_seeded_pid;      /* 0: never seeded */
static sl_tls_t *tls_handshaking; /* the session in mbedtls_ssl_handshake (ticket callbacks) */


int
sl_tls_worker_init(void)
{
    if (tls_seeded_pid == getpid()) {
        return 0;
    }
    return tls_seed();
}


/*
 * (Re)seeds the DRBG for this process. A DRBG inherited through fork is
 * freed and seeded again, so a worker never replays its master's stream;
 * the pid in the personalization string separates workers seeded in the
 * same instant.
 */
static int
tls_seed(void)
{
    char pers[64];
    pid_t pid = getpid();
    int n, mrc;
    char msg[TLS_ERR_MAX];

    if (tls_seeded_pid != 0) {
        mbedtls_ctr_drbg_free(&tls_drbg);
        mbedtls_entropy_free(&tls_entropy);
    }
    mbedtls_entropy_init(&tls_entropy);
    mbedtls_ctr_drbg_init(&tls_drbg);
    n = snprintf(pers, sizeof(pers), "sluice-%ld-%llu", (long) pid,
                 (unsigned long long) uv_hrtime());
    mrc = mbedtls_ctr_drbg_seed(&tls_drbg, mbedtls_entropy_func, &tls_entropy,
                                (const unsigned char *) pers, (size_t) n);
    if (mrc != 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        sl_log(&sl_log_main, SL_LOG_EMERG, 0, "mbedtls_ctr_drbg_seed() failed: %s", msg);
        mbedtls_ctr_drbg_free(&tls_drbg);
        mbedtls_entropy_free(&tls_entropy);
        tls_seeded_pid = 0;
        return SL_ETLS;
    }
    tls_seeded_pid = pid;
    return 0;
}


static sl_tls_conf_t *
tls_conf_new(bool server)
{
    sl_tls_conf_t *conf;
    int mrc;
    char msg[TLS_ERR_MAX];

    if (sl_tls_worker_init() != 0) {
        return NULL;
    }
    conf = sl_xcalloc(1, sizeof(*conf));
    conf->server = server;
    mbedtls_ssl_config_init(&conf->ssl);
    mbedtls_x509_crt_init(&conf->ca);
    mbedtls_x509_crt_init(&conf->cert);
    mbedtls_pk_init(&conf->key);

    mrc = mbedtls_ssl_config_defaults(&conf->ssl,
                                      server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (mrc != 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "mbedtls_ssl_config_defaults() failed: %s", msg);
        sl_tls_conf_destroy(conf);
        return NULL;
    }
    mbedtls_ssl_conf_min_version(&conf->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_rng(&conf->ssl, mbedtls_ctr_drbg_random, &tls_drbg);
    mbedtls_ssl_conf_curves(&conf->ssl, tls_curves);
    return conf;
}


sl_tls_conf_t *
sl_tls_conf_client(const char *extra_ca_file, bool verify)
{
    sl_tls_conf_t *conf;
    int mrc;
    char msg[TLS_ERR_MAX];

    conf = tls_conf_new(false);
    if (conf == NULL) {
        return NULL;
    }
    conf->verify = verify;
    if (!verify) {
        mbedtls_ssl_conf_authmode(&conf->ssl, MBEDTLS_SSL_VERIFY_NONE);
        return conf;
    }

    /* a positive result counts certificates it skipped, which is not fatal */
    mrc = mbedtls_x509_crt_parse_file(&conf->ca, TLS_SYSTEM_CA_FILE);
    if (mrc < 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        sl_log(&sl_log_main, extra_ca_file != NULL ? SL_LOG_WARN : SL_LOG_ERR, 0,
               "cannot load CA bundle \"%s\": %s", TLS_SYSTEM_CA_FILE, msg);
        if (extra_ca_file == NULL) {
            goto out_destroy;
        }
    }
    if (extra_ca_file != NULL) {
        mrc = mbedtls_x509_crt_parse_file(&conf->ca, extra_ca_file);
        if (mrc != 0) {
            if (mrc > 0) {
                sl_log(&sl_log_main, SL_LOG_ERR, 0,
                       "cannot load CA file \"%s\": %d certificates failed to parse", extra_ca_file,
                       mrc);
            } else {
                tls_strerror(mrc, msg, sizeof(msg));
                sl_log(&sl_log_main, SL_LOG_ERR, 0, "cannot load CA file \"%s\": %s", extra_ca_file,
                       msg);
            }
            goto out_destroy;
        }
    }
    mbedtls_ssl_conf_authmode(&conf->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf->ssl, &conf->ca, NULL);
    return conf;

out_destroy:
    sl_tls_conf_destroy(conf);
    return NULL;
}


sl_tls_conf_t *
sl_tls_conf_server(const char *cert_file, const char *key_file)
{
    sl_tls_conf_t *conf;
    int mrc;
    char msg[TLS_ERR_MAX];

    conf = tls_conf_new(true);
    if (conf == NULL) {
        return NULL;
    }
    mrc = mbedtls_x509_crt_parse_file(&conf->cert, cert_file);
    if (mrc != 0) {
        if (mrc > 0) {
            mrc = MBEDTLS_ERR_X509_INVALID_FORMAT;
        }
        tls_strerror(mrc, msg, sizeof(msg));
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "cannot load certificate \"%s\": %s", cert_file, msg);
        goto out_destroy;
    }
    mrc = mbedtls_pk_parse_keyfile(&conf->key, key_file, NULL);
    if (mrc != 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "cannot load private key \"%s\": %s", key_file, msg);
        goto out_destroy;
    }
    mrc = mbedtls_ssl_conf_own_cert(&conf->ssl, &conf->cert, &conf->key);
    if (mrc != 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "mbedtls_ssl_conf_own_cert(\"%s\") failed: %s",
               cert_file, msg);
        goto out_destroy;
    }
    tls_conf_harden_server(conf);
    return conf;

out_destroy:
    sl_tls_conf_destroy(conf);
    return NULL;
}


sl_tls_conf_t *
sl_tls_conf_server_pem(const char *cert, size_t cert_len, const char *key, size_t key_len,
                       char *err, size_t errlen)
{
    sl_tls_conf_t *conf;
    int mrc;
    char msg[TLS_ERR_MAX];

    conf = tls_conf_new(true);
    if (conf == NULL) {
        snprintf(err, errlen, "the random generator cannot be seeded");
        return NULL;
    }
    if (tls_parse_pem(&conf->cert, &conf->key, cert, cert_len, key, key_len, err, errlen) != 0) {
        goto out_destroy;
    }
    mrc = mbedtls_ssl_conf_own_cert(&conf->ssl, &conf->cert, &conf->key);
    if (mrc != 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        snprintf(err, errlen, "certificate: %s", msg);
        goto out_destroy;
    }
    tls_conf_harden_server(conf);
    return conf;

out_destroy:
    sl_tls_conf_destroy(conf);
    return NULL;
}


int
sl_tls_check_server_pem(const char *cert, size_t cert_len, const char *key, size_t key_len,
                        char *err, size_t errlen)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    int rc;

    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&pk);
    rc = tls_parse_pem(&crt, &pk, cert, cert_len, key, key_len, err, errlen);
    mbedtls_x509_crt_free(&crt);
    mbedtls_pk_free(&pk);
    return rc;
}


/*
 * Parses a PEM chain and a PEM key (both NUL-terminated: mbedTLS wants the
 * NUL counted) and checks that the key is the leaf's. Messages never quote
 * the key.
 */
static int
tls_parse_pem(mbedtls_x509_crt *crt, mbedtls_pk_context *pk, const char *cert, size_t cert_len,
              const char *key, size_t key_len, char *err, size_t errlen)
{
    int mrc;
    char msg[TLS_ERR_MAX];

    if (cert[cert_len] != '\0' || strstr(cert, "-----BEGIN CERTIFICATE-----") == NULL) {
        snprintf(err, errlen, "certificate: no PEM certificate (\"-----BEGIN CERTIFICATE-----\")");
        return SL_ETLS;
    }
    mrc = mbedtls_x509_crt_parse(crt, (const unsigned char *) cert, cert_len + 1);
    if (mrc != 0) {
        if (mrc > 0) {
            snprintf(err, errlen, "certificate: %d certificates of the chain failed to parse", mrc);
        } else {
            tls_strerror(mrc, msg, sizeof(msg));
            snprintf(err, errlen, "certificate: %s", msg);
        }
        return SL_ETLS;
    }
    if (key[key_len] != '\0' || strstr(key, "-----BEGIN") == NULL) {
        snprintf(err, errlen, "private key: not a PEM key (\"-----BEGIN ... PRIVATE KEY-----\")");
        return SL_ETLS;
    }
    mrc = mbedtls_pk_parse_key(pk, (const unsigned char *) key, key_len + 1, NULL, 0);
    if (mrc != 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        snprintf(err, errlen, "private key: %s", msg);
        return SL_ETLS;
    }
    mrc = mbedtls_pk_check_pair(&crt->pk, pk);
    if (mrc != 0) {
        snprintf(err, errlen, "private key: it does not belong to the certificate");
        return SL_ETLS;
    }
    return 0;
}


/* TLS 1.2+ (tls_conf_new), ECDHE + AEAD, ALPN http/1.1, no renegotiation, no client certs. */
static void
tls_conf_harden_server(sl_tls_conf_t *conf)
{
    mbedtls_ssl_conf_authmode(&conf->ssl, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_ciphersuites(&conf->ssl, tls_server_suites);
    (void) mbedtls_ssl_conf_alpn_protocols(&conf->ssl, tls_server_alpn);
    mbedtls_ssl_conf_renegotiation(&conf->ssl, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_legacy_renegotiation(&conf->ssl, MBEDTLS_SSL_LEGACY_NO_RENEGOTIATION);
}


void
sl_tls_conf_destroy(sl_tls_conf_t *conf)
{
    if (conf == NULL) {
        return;
    }
    mbedtls_ssl_config_free(&conf->ssl);
    sl__tls_tickets_destroy(conf->tickets);
    mbedtls_x509_crt_free(&conf->ca);
    mbedtls_x509_crt_free(&conf->cert);
    mbedtls_pk_free(&conf->key);
    free(conf);
}


int
sl_tls_conf_tickets(sl_tls_conf_t *conf, uint32_t lifetime)
{
    if (!conf->server || lifetime == 0 || conf->cert.raw.p == NULL) {
        return -EINVAL;
    }
    sl__tls_tickets_destroy(conf->tickets);
    conf->tickets = sl__tls_tickets_new(conf->cert.raw.p, conf->cert.raw.len, lifetime,
                                        mbedtls_ctr_drbg_random, &tls_drbg);
    mbedtls_ssl_conf_session_tickets_cb(&conf->ssl, sl__tls_ticket_write, tls_ticket_parse,
                                        conf->tickets);
    return 0;
}


/* The ticket module's parse, noting on the session being handshaken that it resumed. */
static int
tls_ticket_parse(void *p_ticket, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
    int mrc = sl__tls_ticket_parse(p_ticket, session, buf, len);

    if (mrc == 0 && tls_handshaking != NULL) {
        tls_handshaking->resumed = true;
    }
    return mrc;
}


bool
sl_tls_resumed(const sl_tls_t *t)
{
    return t->resumed;
}


sl_tls_session_t *
sl_tls_session_get(const sl_tls_t *t)
{
    sl_tls_session_t *s = sl_xcalloc(1, sizeof(*s));

    mbedtls_ssl_session_init(&s->s);
    if (mbedtls_ssl_get_session(&t->ssl, &s->s) != 0) {
        sl_tls_session_free(s);
        return NULL;
    }
    return s;
}


int
sl_tls_session_set(sl_tls_t *t, const sl_tls_session_t *s)
{
    return mbedtls_ssl_set_session(&t->ssl, &s->s) == 0 ? 0 : SL_ETLS;
}


void
sl_tls_session_free(sl_tls_session_t *s)
{
    if (s == NULL) {
        return;
    }
    mbedtls_ssl_session_free(&s->s);
    free(s);
}


sl_tls_t *
sl_tls_create(sl_tls_conf_t *conf, const char *server_name)
{
    sl_tls_t *t;
    struct in6_addr a6;
    int mrc;
    char msg[TLS_ERR_MAX];

    if (sl_tls_worker_init() != 0) {
        return NULL;
    }
    t = sl_xcalloc(1, sizeof(*t));
    t->conf = conf;
    t->in = SL_BUF_INIT;
    t->out = SL_BUF_INIT;
    mbedtls_ssl_init(&t->ssl);
    mrc = mbedtls_ssl_setup(&t->ssl, &conf->ssl);
    if (mrc != 0) {
        tls_strerror(mrc, msg, sizeof(msg));
        sl_log(&sl_log_main, SL_LOG_ERR, 0, "mbedtls_ssl_setup() failed: %s", msg);
        goto out_free;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, tls_bio_send, tls_bio_recv, NULL);

    if (!conf->server && server_name != NULL) {
        if (inet_pton(AF_INET, server_name, &a6) == 1) {
            memcpy(t->ip, &a6, 4);
            t->iplen = 4;
        } else if (inet_pton(AF_INET6, server_name, &a6) == 1) {
            memcpy(t->ip, &a6, 16);
            t->iplen = 16;
        }
        if (t->iplen != 0) {
            if (conf->verify) {
                mbedtls_ssl_set_verify(&t->ssl, tls_verify_ip, t);
            }
        } else {
            mrc = mbedtls_ssl_set_hostname(&t->ssl, server_name);
            if (mrc != 0) {
                tls_strerror(mrc, msg, sizeof(msg));
                sl_log(&sl_log_main, SL_LOG_ERR, 0, "mbedtls_ssl_set_hostname() failed: %s", msg);
                goto out_free;
            }
        }
    }
    return t;

out_free:
    mbedtls_ssl_free(&t->ssl);
    free(t);
    return NULL;
}


void
sl_tls_destroy(sl_tls_t *t)
{
    if (t == NULL) {
        return;
    }
    mbedtls_ssl_free(&t->ssl);
    sl_buf_free(&t->in);
    sl_buf_free(&t->out);
    free(t);
}


void
sl_tls_feed(sl_tls_t *t, const char *p, size_t len)
{
    if (t->in_pos > 0) {
        sl_buf_consume(&t->in, t->in_pos);
        t->in_pos = 0;
    }
    sl_buf_append(&t->in, p, len);
}


int
sl_tls_handshake(sl_tls_t *t)
{
    int mrc;
    uint32_t flags;
    int n;

    tls_handshaking = t;
    mrc = mbedtls_ssl_handshake(&t->ssl);
    tls_handshaking = NULL;
    if (mrc == 0) {
        return 0;
    }
    if (mrc == MBEDTLS_ERR_SSL_WANT_READ || mrc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        return UV_EAGAIN;
    }
    if (mrc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        flags = mbedtls_ssl_get_verify_result(&t->ssl);
        n = mbedtls_x509_crt_verify_info(t->err, sizeof(t->err), "", flags);
        /* the info is one line per flag; make it one log line */
        while (n > 0 && t->err[n - 1] == '\n') {
            t->err[--n] = '\0';
        }
        for (int i = 0; i < n; i++) {
            if (t->err[i] == '\n') {
                t->err[i] = ';';
            }
        }
        if (n <= 0) {
            snprintf(t->err, sizeof(t->err), "certificate verification failed (flags 0x%x)",
                     (unsigned) flags);
        }
        return SL_ECERT;
    }
    return tls_error(t, mrc);
}


int
sl_tls_write(sl_tls_t *t, const char *p, size_t len)
{
    int mrc;

    while (len > 0) {
        mrc = mbedtls_ssl_write(&t->ssl, (const unsigned char *) p, len);
        if (mrc < 0) {
            if (mrc == MBEDTLS_ERR_SSL_WANT_READ || mrc == MBEDTLS_ERR_SSL_WANT_WRITE) {
                /* writes before the handshake completed */
                snprintf(t->err, sizeof(t->err), "write before the handshake completed");
                return SL_ETLS;
            }
            return tls_error(t, mrc);
        }
        p += mrc;
        len -= (size_t) mrc;
    }
    return 0;
}


int
sl_tls_read(sl_tls_t *t, sl_buf_t *out)
{
    size_t total = 0;
    int mrc;

    if (t->closed) {
        return SL_ECLOSED;
    }
    for (;;) {
        sl_buf_reserve(out, TLS_READ_CHUNK);
        mrc = mbedtls_ssl_read(&t->ssl, (unsigned char *) out->p + out->len, out->cap - out->len);
        if (mrc > 0) {
            out->len += (size_t) mrc;
            total += (size_t) mrc;
            continue;
        }
        if (mrc == MBEDTLS_ERR_SSL_WANT_READ || mrc == MBEDTLS_ERR_SSL_WANT_WRITE) {
            break;
        }
        if (mrc == 0 || mrc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            /* plaintext already decrypted goes first; the next call reports the close */
            t->closed = true;
            if (total > 0) {
                break;
            }
            return SL_ECLOSED;
        }
        return tls_error(t, mrc);
    }
    return total > (size_t) INT32_MAX ? INT32_MAX : (int) total;
}


int
sl_tls_read_into(sl_tls_t *t, char *p, size_t len)
{
    int mrc;

    if (t->closed) {
        return SL_ECLOSED;
    }
    if (len == 0) {
        return 0;
    }
    if (len > INT32_MAX) {
        len = INT32_MAX;
    }
    for (;;) {
        mrc = mbedtls_ssl_read(&t->ssl, (unsigned char *) p, len);
        if (mrc > 0) {
            return mrc;
        }
        /*
         * WANT_READ also follows a record that carried no data (an alert, a
         * refused renegotiation); records fed behind it are read on. Each
         * round consumes input, so this ends.
         */
        if (mrc == MBEDTLS_ERR_SSL_WANT_READ && t->in_pos < t->in.len) {
            continue;
        }
        break;
    }
    if (mrc == MBEDTLS_ERR_SSL_WANT_READ || mrc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        return 0;
    }
    if (mrc == 0 || mrc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        t->closed = true;
        return SL_ECLOSED;
    }
    return tls_error(t, mrc);
}


bool
sl_tls_pending(const sl_tls_t *t)
{
    return t->in.len > t->in_pos || mbedtls_ssl_get_bytes_avail(&t->ssl) > 0
           || mbedtls_ssl_check_pending(&t->ssl) != 0;
}


const char *
sl_tls_alpn(const sl_tls_t *t)
{
    return mbedtls_ssl_get_alpn_protocol(&t->ssl);
}


void
sl_tls_close_notify(sl_tls_t *t)
{
    (void) mbedtls_ssl_close_notify(&t->ssl);
}


sl_buf_t *
sl_tls_output(sl_tls_t *t)
{
    return &t->out;
}


const char *
sl_tls_last_error(const sl_tls_t *t)
{
    return t->err[0] != '\0' ? t->err : "no error";
}


static int
tls_bio_send(void *ctx, const unsigned char *p, size_t len)
{
    sl_tls_t *t = ctx;

    if (len > INT32_MAX) {
        len = INT32_MAX;
    }
    sl_buf_append(&t->out, p, len);
    return (int) len;
}


static int
tls_bio_recv(void *ctx, unsigned char *p, size_t len)
{
    sl_tls_t *t = ctx;
    size_t avail = t->in.len - t->in_pos;

    if (avail == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    if (len > avail) {
        len = avail;
    }
    if (len > INT32_MAX) {
        len = INT32_MAX;
    }
    memcpy(p, t->in.p + t->in_pos, len);
    t->in_pos += len;
    if (t->in_pos == t->in.len) {
        /* all consumed: a big read's buffer is not kept by an idle session */
        t->in_pos = 0;
        if (t->in.cap > TLS_IN_KEEP) {
            sl_buf_free(&t->in);
        } else {
            t->in.len = 0;
        }
    }
    return (int) len;
}


/* Verify callback for IP literal peers: the leaf must carry the address as an iPAddress SAN. */
static int
tls_verify_ip(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    sl_tls_t *t = arg;

    if (depth == 0 && !tls_crt_has_ip(crt, t->ip, t->iplen)) {
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    return 0;
}


/*
 * Walks the raw v3 extensions (mbedTLS 2.28 keeps only dNSName entries in
 * subject_alt_names): Extensions ::= SEQUENCE OF SEQUENCE { extnID OID,
 * critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }, the SAN value
 * being a SEQUENCE OF GeneralName where iPAddress is [7] primitive.
 */
static bool
tls_crt_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t iplen)
{
    unsigned char *p = crt->v3_ext.p;
    unsigned char *end, *ext_end, *san_end;
    size_t len;
    mbedtls_x509_buf oid;
    int critical, rc;

    if (p == NULL || crt->v3_ext.len == 0) {
        return false;
    }
    end = p + crt->v3_ext.len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
        != 0) {
        return false;
    }
    end = p + len;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
            != 0) {
            return false;
        }
        ext_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0) {
            return false;
        }
        oid.p = p;
        p += oid.len;
        rc = mbedtls_asn1_get_bool(&p, ext_end, &critical);
        if (rc != 0 && rc != MBEDTLS_ERR_ASN1_UNEXPECTED_TAG) {
            return false;
        }
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0) {
            return false;
        }
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) != 0) {
            p = ext_end;
            continue;
        }
        san_end = p + len;
        if (mbedtls_asn1_get_tag(&p, san_end, &len,
                                 MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
            != 0) {
            return false;
        }
        while (p < san_end) {
            unsigned char tag = *p++;

            if (mbedtls_asn1_get_len(&p, san_end, &len) != 0) {
                return false;
            }
            if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == iplen
                && memcmp(p, ip, iplen) == 0) {
                return true;
            }
            p += len;
        }
        p = ext_end;
    }
    return false;
}


static int
tls_error(sl_tls_t *t, int mrc)
{
    tls_strerror(mrc, t->err, sizeof(t->err));
    return SL_ETLS;
}


static void
tls_strerror(int mrc, char *buf, size_t len)
{
    mbedtls_strerror(mrc, buf, len);
    if (buf[0] == '\0') {
        snprintf(buf, len, "mbedtls error -0x%04x", (unsigned) -mrc);
    }
}
