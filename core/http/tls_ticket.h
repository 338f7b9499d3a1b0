/*
 * TLS session tickets (RFC 5077) for the server side of core/http/tls.c.
 *
 * Every worker must accept the tickets every other worker issued (with
 * reuse_port a client's next connection lands on any of them), also after a
 * reload, so the keys cannot be each process's own random ones. The master
 * draws one random secret at start (sl_tls_tickets_init, before it forks);
 * workers inherit it, and each ticket key is derived from it: an AES-256-GCM
 * key per period of `lifetime` seconds and per certificate (HMAC-SHA256 of
 * the secret over the certificate's hash and the period number). A ticket is
 * accepted in its own period and the next one, and only while its issue
 * time is younger than the lifetime. The secret never leaves memory: a
 * restart invalidates every ticket (clients fall back to a full handshake).
 *
 * Ticket layout: period (4 bytes, big-endian) | IV (12, random) |
 * AES-GCM(issue time (8, big-endian) | mbedtls_ssl_session_save output) |
 * tag (16); the period is the additional data.
 *
 * Worker context (loop thread); the secret is written once by the master.
 */
#ifndef SL_HTTP_TLS_TICKET_H
#define SL_HTTP_TLS_TICKET_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ssl.h>

typedef struct sl_tls_tickets sl_tls_tickets_t;

/* A random number source with mbedTLS's signature (the process's DRBG). */
typedef int (*sl_tls_rng_fn)(void *p_rng, unsigned char *out, size_t len);

/*
 * Draws the process's ticket secret once (later calls keep it). The master
 * calls it before forking workers; a process that never did gets its own
 * secret on the first sl__tls_tickets_new. Returns 0 or a negative errno.
 */
int sl_tls_tickets_init(void);

/*
 * A ticket context for one server certificate (cert_der, the leaf's DER:
 * tickets of one certificate do not open sessions on another) with a
 * lifetime in seconds (> 0). rng draws the IVs. Never NULL (aborts on
 * allocation failure).
 */
sl_tls_tickets_t *sl__tls_tickets_new(const unsigned char *cert_der, size_t cert_len,
                                      uint32_t lifetime, sl_tls_rng_fn rng, void *p_rng);

/* Frees and wipes the context's keys. NULL is a no-op. */
void sl__tls_tickets_destroy(sl_tls_tickets_t *tk);

/* mbedtls_ssl_ticket_write_t: p_ticket is an sl_tls_tickets_t. */
int sl__tls_ticket_write(void *p_ticket, const mbedtls_ssl_session *session, unsigned char *start,
                         const unsigned char *end, size_t *tlen, uint32_t *lifetime);

/*
 * mbedtls_ssl_ticket_parse_t: decrypts in place; MBEDTLS_ERR_SSL_INVALID_MAC
 * for a ticket that is not ours or was changed, _SESSION_TICKET_EXPIRED for
 * one past its lifetime or of a period no longer accepted.
 */
int sl__tls_ticket_parse(void *p_ticket, mbedtls_ssl_session *session, unsigned char *buf,
                         size_t len);

/* Tests set it to move the clock (seconds since the epoch); NULL: time(). */
extern uint64_t (*sl__tls_ticket_clock)(void);

#endif /* SL_HTTP_TLS_TICKET_H */
