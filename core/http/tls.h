/*
 * TLS over memory buffers, the only user of mbedTLS's TLS API. The caller
 * owns the socket: it feeds ciphertext read from the socket with
 * sl_tls_feed() and sends whatever sl_tls_output() holds. This keeps TLS out
 * of the event loop's I/O model (libuv reads and writes, mbedTLS only
 * transforms bytes).
 *
 * Worker context (and the test mock). sl_tls_worker_init() must run in each
 * worker after fork, before any session: it seeds this process's CTR_DRBG
 * from the OS, so no two workers share a random stream.
 */
#ifndef SL_CORE_HTTP_TLS_H
#define SL_CORE_HTTP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"

typedef struct sl_tls_conf sl_tls_conf_t;
typedef struct sl_tls sl_tls_t;
typedef struct sl_tls_session sl_tls_session_t;

/*
 * Seeds the per-process DRBG. Returns 0 or SL_ETLS (logged). Idempotent per
 * process; in a process forked after seeding it seeds again. Workers call it
 * after fork; a conf or session created in a process that never called it
 * seeds lazily (so the test mock and CLI need not care).
 */
int sl_tls_worker_init(void);

/*
 * Client configuration: trusts the system CA bundle
 * (/etc/ssl/certs/ca-certificates.crt) plus extra_ca_file when not NULL.
 * verify false disables certificate checks (explicit opt-out only).
 * Returns NULL on failure (logged, naming the file).
 */
sl_tls_conf_t *sl_tls_conf_client(const char *extra_ca_file, bool verify);

/*
 * Server configuration from PEM files (certificate chain, private key).
 * NULL on failure (logged). Server configurations speak TLS 1.2 or later
 * only, with ECDHE key exchange and AEAD ciphers, offer ALPN "http/1.1",
 * refuse renegotiation and ask for no client certificate.
 */
sl_tls_conf_t *sl_tls_conf_server(const char *cert_file, const char *key_file);

/*
 * The same from PEM text in memory: cert (the chain, leaf first) and key,
 * each NUL-terminated, *_len counting the bytes before the NUL. Both are
 * copied. NULL on failure, with a one-line reason in err (never key
 * material); nothing is logged.
 */
sl_tls_conf_t *sl_tls_conf_server_pem(const char *cert, size_t cert_len, const char *key,
                                      size_t key_len, char *err, size_t errlen);

/*
 * Checks that cert (PEM chain) and key (PEM private key) parse and belong
 * together, as sl_tls_conf_server_pem would need them, without touching the
 * DRBG (the master checks a configuration before it forks). Returns 0, or
 * SL_ETLS with "certificate: why" or "private key: why" in err.
 */
int sl_tls_check_server_pem(const char *cert, size_t cert_len, const char *key, size_t key_len,
                            char *err, size_t errlen);

/*
 * Turns on session tickets (RFC 5077) for a server configuration: tickets
 * live `lifetime` seconds and any worker of the same master accepts them
 * (see core/http/tls_ticket.h; the master calls sl_tls_tickets_init before
 * forking). Returns 0, or -EINVAL for a client conf or a zero lifetime.
 */
int sl_tls_conf_tickets(sl_tls_conf_t *conf, uint32_t lifetime);

/* Draws the ticket secret the workers share; the master calls it before forking. */
int sl_tls_tickets_init(void);

/* Frees a configuration; every session made from it must be gone. NULL is a no-op. */
void sl_tls_conf_destroy(sl_tls_conf_t *conf);

/*
 * New session. For a client, server_name is sent as SNI and checked against
 * the certificate (an IP literal is checked against IP SANs); NULL for a
 * server. Returns NULL on failure. The session borrows conf.
 */
sl_tls_t *sl_tls_create(sl_tls_conf_t *conf, const char *server_name);

/* Frees a session. NULL is a no-op. */
void sl_tls_destroy(sl_tls_t *t);

/*
 * Server: whether the finished handshake resumed a session from a ticket
 * (an abbreviated handshake: no certificate, no key exchange).
 */
bool sl_tls_resumed(const sl_tls_t *t);

/*
 * Client resumption: sl_tls_session_get copies the session of a finished
 * handshake (with its ticket, if the server sent one; NULL on failure; the
 * caller frees it), and sl_tls_session_set offers it in the next
 * handshake of another sl_tls_t of the same conf (before its first
 * sl_tls_handshake; 0 or SL_ETLS). The copy holds the session's master
 * secret: keep it in memory only.
 */
sl_tls_session_t *sl_tls_session_get(const sl_tls_t *t);
int sl_tls_session_set(sl_tls_t *t, const sl_tls_session_t *s);
void sl_tls_session_free(sl_tls_session_t *s);

/* Gives the session ciphertext that arrived from the peer (copied). */
void sl_tls_feed(sl_tls_t *t, const char *p, size_t len);

/*
 * Advances the handshake. Returns 0 when it is complete, UV_EAGAIN when it
 * needs more input (send sl_tls_output first), SL_ECERT when the peer's
 * certificate failed verification, SL_ETLS on any other failure.
 */
int sl_tls_handshake(sl_tls_t *t);

/* Encrypts len bytes of plaintext into the output buffer. Returns 0 or SL_ETLS. */
int sl_tls_write(sl_tls_t *t, const char *p, size_t len);

/*
 * Decrypts what the fed ciphertext holds, appending plaintext to out.
 * Returns the number of bytes appended (0 when it needs more input),
 * SL_ECLOSED after the peer's close_notify, SL_ETLS on error. Plaintext that
 * came before a close_notify is returned first; the next call returns
 * SL_ECLOSED, so read until 0 or an error.
 */
int sl_tls_read(sl_tls_t *t, sl_buf_t *out);

/*
 * Decrypts into p, at most len bytes. Returns the number of bytes (0 when
 * it needs more input), SL_ECLOSED after the peer's close_notify, SL_ETLS
 * on error. Call it until it returns 0 (or fails); anything the session
 * must answer meanwhile (alerts) waits in the output buffer.
 */
int sl_tls_read_into(sl_tls_t *t, char *p, size_t len);

/* True when fed ciphertext or decrypted plaintext waits to be read. */
bool sl_tls_pending(const sl_tls_t *t);

/* The protocol ALPN agreed on, or NULL. */
const char *sl_tls_alpn(const sl_tls_t *t);

/* Queues a close_notify alert in the output buffer. */
void sl_tls_close_notify(sl_tls_t *t);

/* Ciphertext waiting to go to the peer. The caller sends it and clears it (sl_buf_clear). */
sl_buf_t *sl_tls_output(sl_tls_t *t);

/* A short description of the last failure, for logs (never contains secrets). */
const char *sl_tls_last_error(const sl_tls_t *t);

#endif
