/*
 * TLS session tickets with keys shared by every worker of one master: see
 * tls_ticket.h for the scheme and the ticket layout.
 */
#include "core/http/tls_ticket.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "core/base/log.h"
#include "core/base/pool.h"

#define TICKET_SECRET_LEN 32
#define TICKET_PERIOD_LEN 4
#define TICKET_IV_LEN     12
#define TICKET_TIME_LEN   8
#define TICKET_TAG_LEN    16
#define TICKET_HEAD       (TICKET_PERIOD_LEN + TICKET_IV_LEN)
#define TICKET_MIN        (TICKET_HEAD + TICKET_TIME_LEN + TICKET_TAG_LEN)
#define TICKET_SKEW       60 /* seconds a ticket may seem to come from the future */

typedef struct {
    uint32_t period;
    bool ready;
    mbedtls_gcm_context gcm;
} ticket_key_t;

struct sl_tls_tickets {
    unsigned char cert_hash[32];
    uint32_t lifetime;
    sl_tls_rng_fn rng;
    void *p_rng;
    ticket_key_t keys[2]; /* the two periods in use, most recent first */
};

static int ticket_secret_draw(void);
static ticket_key_t *ticket_key(sl_tls_tickets_t *tk, uint32_t period);
static uint64_t ticket_now(void);
static void ticket_put_be(unsigned char *p, uint64_t v, size_t n);
static uint64_t ticket_get_be(const unsigned char *p, size_t n);

static unsigned char ticket_secret[TICKET_SECRET_LEN];
static bool ticket_secret_ready;

uint64_t (*sl__tls_ticket_clock)(void) = NULL;


int
sl_tls_tickets_init(void)
{
    return ticket_secret_ready ? 0 : ticket_secret_draw();
}


static int
ticket_secret_draw(void)
{
    size_t got = 0;

    while (got < sizeof(ticket_secret)) {
        ssize_t n = getrandom(ticket_secret + got, sizeof(ticket_secret) - got, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        got += (size_t) n;
    }
    ticket_secret_ready = true;
    return 0;
}


sl_tls_tickets_t *
sl__tls_tickets_new(const unsigned char *cert_der, size_t cert_len, uint32_t lifetime,
                    sl_tls_rng_fn rng, void *p_rng)
{
    sl_tls_tickets_t *tk;

    SL_ASSERT(lifetime > 0);
    if (!ticket_secret_ready && ticket_secret_draw() != 0) {
        /* no getrandom(): the DRBG (seeded from the kernel's entropy too) stands in */
        int rc = rng(p_rng, ticket_secret, sizeof(ticket_secret));

        SL_ASSERT(rc == 0);
        ticket_secret_ready = true;
    }
    tk = sl_xcalloc(1, sizeof(*tk));
    (void) mbedtls_sha256_ret(cert_der, cert_len, tk->cert_hash, 0);
    tk->lifetime = lifetime;
    tk->rng = rng;
    tk->p_rng = p_rng;
    for (size_t i = 0; i < 2; i++) {
        mbedtls_gcm_init(&tk->keys[i].gcm);
    }
    return tk;
}


void
sl__tls_tickets_destroy(sl_tls_tickets_t *tk)
{
    if (tk == NULL) {
        return;
    }
    for (size_t i = 0; i < 2; i++) {
        mbedtls_gcm_free(&tk->keys[i].gcm);
    }
    mbedtls_platform_zeroize(tk, sizeof(*tk));
    free(tk);
}


/*
 * The key of a period: HMAC-SHA256(secret, "sluice tls ticket" | certificate
 * hash | period). Two are kept; the older is replaced. NULL when mbedTLS
 * refuses (it does not with these sizes).
 */
static ticket_key_t *
ticket_key(sl_tls_tickets_t *tk, uint32_t period)
{
    static const char label[] = "sluice tls ticket";
    unsigned char msg[sizeof(label) - 1 + 32 + TICKET_PERIOD_LEN];
    unsigned char key[32];
    ticket_key_t *k;
    int mrc;

    for (size_t i = 0; i < 2; i++) {
        if (tk->keys[i].ready && tk->keys[i].period == period) {
            return &tk->keys[i];
        }
    }
    /* replace the slot of the older period (or an empty one) */
    k = !tk->keys[0].ready                                        ? &tk->keys[0]
        : !tk->keys[1].ready                                      ? &tk->keys[1]
        : (int32_t) (tk->keys[0].period - tk->keys[1].period) < 0 ? &tk->keys[0]
                                                                  : &tk->keys[1];
    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, tk->cert_hash, 32);
    ticket_put_be(msg + sizeof(label) - 1 + 32, period, TICKET_PERIOD_LEN);
    mrc = mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), ticket_secret,
                          sizeof(ticket_secret), msg, sizeof(msg), key);
    if (mrc == 0) {
        mrc = mbedtls_gcm_setkey(&k->gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
    }
    mbedtls_platform_zeroize(key, sizeof(key));
    if (mrc != 0) {
        k->ready = false;
        return NULL;
    }
    k->period = period;
    k->ready = true;
    return k;
}


int
sl__tls_ticket_write(void *p_ticket, const mbedtls_ssl_session *session, unsigned char *start,
                     const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
    sl_tls_tickets_t *tk = p_ticket;
    uint64_t now = ticket_now();
    uint32_t period = (uint32_t) (now / tk->lifetime);
    unsigned char *iv = start + TICKET_PERIOD_LEN;
    unsigned char *plain = start + TICKET_HEAD;
    ticket_key_t *k;
    size_t room, olen;
    int mrc;

    *tlen = 0;
    if (end < start || (size_t) (end - start) < TICKET_MIN) {
        return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
    }
    room = (size_t) (end - start) - TICKET_MIN;
    k = ticket_key(tk, period);
    if (k == NULL) {
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    }
    ticket_put_be(start, period, TICKET_PERIOD_LEN);
    mrc = tk->rng(tk->p_rng, iv, TICKET_IV_LEN);
    if (mrc != 0) {
        return mrc;
    }
    ticket_put_be(plain, now, TICKET_TIME_LEN);
    mrc = mbedtls_ssl_session_save(session, plain + TICKET_TIME_LEN, room, &olen);
    if (mrc != 0) {
        return mrc;
    }
    olen += TICKET_TIME_LEN;
    mrc = mbedtls_gcm_crypt_and_tag(&k->gcm, MBEDTLS_GCM_ENCRYPT, olen, iv, TICKET_IV_LEN, start,
                                    TICKET_PERIOD_LEN, plain, plain, TICKET_TAG_LEN, plain + olen);
    if (mrc != 0) {
        mbedtls_platform_zeroize(plain, olen);
        return mrc;
    }
    *tlen = TICKET_HEAD + olen + TICKET_TAG_LEN;
    *lifetime = tk->lifetime;
    return 0;
}


int
sl__tls_ticket_parse(void *p_ticket, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
    sl_tls_tickets_t *tk = p_ticket;
    uint64_t now = ticket_now();
    uint32_t current = (uint32_t) (now / tk->lifetime);
    uint32_t period;
    unsigned char *plain = buf + TICKET_HEAD;
    size_t clen;
    uint64_t issued;
    ticket_key_t *k;
    int mrc;

    if (len < TICKET_MIN) {
        return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
    }
    period = (uint32_t) ticket_get_be(buf, TICKET_PERIOD_LEN);
    if (period != current && period + 1 != current) {
        /* an old key is gone; a future one was never ours */
        return period < current ? MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED
                                : MBEDTLS_ERR_SSL_INVALID_MAC;
    }
    k = ticket_key(tk, period);
    if (k == NULL) {
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    }
    clen = len - TICKET_HEAD - TICKET_TAG_LEN;
    mrc = mbedtls_gcm_auth_decrypt(&k->gcm, clen, buf + TICKET_PERIOD_LEN, TICKET_IV_LEN, buf,
                                   TICKET_PERIOD_LEN, plain + clen, TICKET_TAG_LEN, plain, plain);
    if (mrc != 0) {
        return MBEDTLS_ERR_SSL_INVALID_MAC;
    }
    issued = ticket_get_be(plain, TICKET_TIME_LEN);
    if (issued > now + TICKET_SKEW || now - issued > tk->lifetime) {
        mrc = MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
    } else {
        mrc = mbedtls_ssl_session_load(session, plain + TICKET_TIME_LEN, clen - TICKET_TIME_LEN);
    }
    mbedtls_platform_zeroize(plain, clen);
    return mrc;
}


static uint64_t
ticket_now(void)
{
    return sl__tls_ticket_clock != NULL ? sl__tls_ticket_clock() : (uint64_t) time(NULL);
}


static void
ticket_put_be(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[n - 1 - i] = (unsigned char) (v >> (8 * i));
    }
}


static uint64_t
ticket_get_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}
