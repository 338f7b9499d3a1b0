/*
 * SHA-256, random bytes, AES-256-GCM and text encodings on mbedTLS 2.28.
 * The DRBG lives behind one mutex and remembers the pid that seeded it: the
 * first draw in a new process (a forked worker) seeds it again from the OS,
 * with the pid and a timestamp in the personalization string, so no two
 * processes share a stream even if their entropy polls collided.
 */
#include "core/base/crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pid.h"

static int crypto_seed_locked(void);
static int crypto_draw_locked(unsigned char *p, size_t len);
static void crypto_log_error(const char *what, int mrc);
static int crypto_hex_val(char c);
static int crypto_parse_hex(const char *p, size_t len, uint8_t out[SL_CRYPTO_KEY_LEN]);

static const char crypto_base62_digits[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static pthread_mutex_t crypto_lock = PTHREAD_MUTEX_INITIALIZER;
static mbedtls_entropy_context crypto_entropy;
static mbedtls_ctr_drbg_context crypto_drbg;
static pid_t crypto_seeded_pid; /* 0: never seeded */

#define CRYPTO_POOL       256 /* bytes of DRBG output a thread keeps for small draws */
#define CRYPTO_POOL_SMALL 32  /* draws up to this many bytes come from the pool */

static _Thread_local unsigned char crypto_pool[CRYPTO_POOL];
static _Thread_local size_t crypto_pool_left; /* unserved bytes: crypto_pool[0..left) */
static _Thread_local pid_t crypto_pool_pid;   /* the process that filled it */


int
sl_crypto_init(void)
{
    int rc = 0;

    pthread_mutex_lock(&crypto_lock);
    if (crypto_seeded_pid != sl_pid()) {
        rc = crypto_seed_locked();
    }
    pthread_mutex_unlock(&crypto_lock);
    return rc;
}


/*
 * (Re)seeds the DRBG; crypto_lock is held. A DRBG inherited through fork is
 * freed and seeded afresh rather than reused.
 */
static int
crypto_seed_locked(void)
{
    struct timespec ts;
    char pers[80];
    pid_t pid = sl_pid();
    int n, mrc;

    if (crypto_seeded_pid != 0) {
        mbedtls_ctr_drbg_free(&crypto_drbg);
        mbedtls_entropy_free(&crypto_entropy);
        crypto_seeded_pid = 0;
    }
    mbedtls_entropy_init(&crypto_entropy);
    mbedtls_ctr_drbg_init(&crypto_drbg);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    n = snprintf(pers, sizeof(pers), "sluice-crypto-%ld-%lld.%09ld", (long) pid,
                 (long long) ts.tv_sec, ts.tv_nsec);
    mrc = mbedtls_ctr_drbg_seed(&crypto_drbg, mbedtls_entropy_func, &crypto_entropy,
                                (const unsigned char *) pers, (size_t) n);
    if (mrc != 0) {
        crypto_log_error("mbedtls_ctr_drbg_seed()", mrc);
        mbedtls_ctr_drbg_free(&crypto_drbg);
        mbedtls_entropy_free(&crypto_entropy);
        return -EIO;
    }
    crypto_seeded_pid = pid;
    return 0;
}


static void
crypto_log_error(const char *what, int mrc)
{
    char msg[128];

    mbedtls_strerror(mrc, msg, sizeof(msg));
    sl_log(&sl_log_main, SL_LOG_ALERT, 0, "%s failed: %s (-0x%04x)", what, msg, (unsigned) -mrc);
}


int
sl_crypto_random(void *buf, size_t len)
{
    int rc;

    if (len > CRYPTO_POOL_SMALL) {
        pthread_mutex_lock(&crypto_lock);
        rc = crypto_draw_locked(buf, len);
        pthread_mutex_unlock(&crypto_lock);
        return rc;
    }
    /*
     * A small draw (an id, a nonce) comes from this thread's pool of DRBG
     * output: one locked DRBG call per CRYPTO_POOL bytes instead of one per
     * draw. A pool filled by another process (inherited through fork) is
     * dropped, and served bytes are wiped from it.
     */
    if (crypto_pool_pid != sl_pid() || crypto_pool_left < len) {
        pthread_mutex_lock(&crypto_lock);
        rc = crypto_draw_locked(crypto_pool, sizeof(crypto_pool));
        pthread_mutex_unlock(&crypto_lock);
        if (rc != 0) {
            crypto_pool_left = 0;
            return rc;
        }
        crypto_pool_left = sizeof(crypto_pool);
        crypto_pool_pid = sl_pid();
    }
    crypto_pool_left -= len;
    memcpy(buf, crypto_pool + crypto_pool_left, len);
    mbedtls_platform_zeroize(crypto_pool + crypto_pool_left, len);
    return 0;
}


/* len bytes of the DRBG (seeded for this process first); crypto_lock is held. */
static int
crypto_draw_locked(unsigned char *p, size_t len)
{
    size_t chunk;
    int rc = 0, mrc;

    if (crypto_seeded_pid != sl_pid()) {
        rc = crypto_seed_locked();
    }
    /* mbedtls_ctr_drbg_random() gives at most 1024 bytes per call */
    while (rc == 0 && len > 0) {
        chunk = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        mrc = mbedtls_ctr_drbg_random(&crypto_drbg, p, chunk);
        if (mrc != 0) {
            crypto_log_error("mbedtls_ctr_drbg_random()", mrc);
            rc = -EIO;
            break;
        }
        p += chunk;
        len -= chunk;
    }
    return rc;
}


void
sl_crypto_sha256(const void *p, size_t len, uint8_t out[SL_CRYPTO_SHA256_LEN])
{
    /* cannot fail for SHA-256 without hardware acceleration hooks */
    (void) mbedtls_sha256_ret(p, len, out, 0);
}


int
sl_crypto_seal(const uint8_t key[SL_CRYPTO_KEY_LEN], const void *ad, size_t adlen, const void *pt,
               size_t len, uint8_t *out)
{
    mbedtls_gcm_context gcm;
    uint8_t *nonce = out, *ct = out + SL_CRYPTO_NONCE_LEN, *tag = ct + len;
    int rc, mrc;

    rc = sl_crypto_random(nonce, SL_CRYPTO_NONCE_LEN);
    if (rc != 0) {
        return rc;
    }
    mbedtls_gcm_init(&gcm);
    mrc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, SL_CRYPTO_KEY_LEN * 8);
    if (mrc == 0) {
        mrc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, SL_CRYPTO_NONCE_LEN,
                                        ad, adlen, pt, ct, SL_CRYPTO_TAG_LEN, tag);
    }
    mbedtls_gcm_free(&gcm);
    if (mrc != 0) {
        crypto_log_error("AES-256-GCM encryption", mrc);
        mbedtls_platform_zeroize(out, len + SL_CRYPTO_SEAL_OVERHEAD);
        return -EIO;
    }
    return 0;
}


int
sl_crypto_open(const uint8_t key[SL_CRYPTO_KEY_LEN], const void *ad, size_t adlen, const void *in,
               size_t inlen, uint8_t *out)
{
    mbedtls_gcm_context gcm;
    const uint8_t *nonce = in, *ct, *tag;
    size_t len;
    int mrc;

    if (inlen < SL_CRYPTO_SEAL_OVERHEAD) {
        return SL_EPARSE;
    }
    len = inlen - SL_CRYPTO_SEAL_OVERHEAD;
    ct = nonce + SL_CRYPTO_NONCE_LEN;
    tag = ct + len;
    mbedtls_gcm_init(&gcm);
    mrc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, SL_CRYPTO_KEY_LEN * 8);
    if (mrc == 0) {
        mrc = mbedtls_gcm_auth_decrypt(&gcm, len, nonce, SL_CRYPTO_NONCE_LEN, ad, adlen, tag,
                                       SL_CRYPTO_TAG_LEN, ct, out);
    }
    mbedtls_gcm_free(&gcm);
    if (mrc != 0) {
        /* mbedTLS already wipes out on a bad tag; a setkey failure leaves it unwritten */
        mbedtls_platform_zeroize(out, len);
        return SL_EAUTH;
    }
    return 0;
}


/*
 * Treats in as one big-endian number and divides it by 62 repeatedly,
 * emitting remainders from the right. Quadratic, which is nothing for the
 * 32-byte values this encodes.
 */
int
sl_crypto_base62(const void *in, size_t len, char *out, size_t outlen)
{
    uint8_t num[64];
    size_t width = SL_CRYPTO_BASE62_LEN(len), pos, start = 0;
    unsigned rem;

    if (outlen < width + 1 || len > sizeof(num)) {
        return -ENOSPC;
    }
    memcpy(num, in, len);
    out[width] = '\0';
    for (pos = width; pos > 0; pos--) {
        while (start < len && num[start] == 0) {
            start++;
        }
        rem = 0;
        for (size_t i = start; i < len; i++) {
            unsigned cur = (rem << 8) | num[i];

            num[i] = (uint8_t) (cur / 62);
            rem = cur % 62;
        }
        out[pos - 1] = crypto_base62_digits[rem];
    }
    mbedtls_platform_zeroize(num, sizeof(num));
    return (int) width;
}


void
sl_crypto_hex(const void *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = in;

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * len] = '\0';
}


static int
crypto_hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}


static int
crypto_parse_hex(const char *p, size_t len, uint8_t out[SL_CRYPTO_KEY_LEN])
{
    int hi, lo;

    if (len != 2 * SL_CRYPTO_KEY_LEN) {
        return SL_EPARSE;
    }
    for (size_t i = 0; i < SL_CRYPTO_KEY_LEN; i++) {
        hi = crypto_hex_val(p[2 * i]);
        lo = crypto_hex_val(p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            mbedtls_platform_zeroize(out, SL_CRYPTO_KEY_LEN);
            return SL_EPARSE;
        }
        out[i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}


int
sl_crypto_parse_key(const char *text, size_t len, uint8_t out[SL_CRYPTO_KEY_LEN])
{
    uint8_t buf[48];
    size_t got = 0;
    int mrc;

    while (len > 0 && (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n')) {
        text++;
        len--;
    }
    while (len > 0
           && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r'
               || text[len - 1] == '\n')) {
        len--;
    }
    if (len == 2 * SL_CRYPTO_KEY_LEN) {
        return crypto_parse_hex(text, len, out);
    }
    mrc = mbedtls_base64_decode(buf, sizeof(buf), &got, (const unsigned char *) text, len);
    if (mrc != 0 || got != SL_CRYPTO_KEY_LEN) {
        mbedtls_platform_zeroize(buf, sizeof(buf));
        return SL_EPARSE;
    }
    memcpy(out, buf, SL_CRYPTO_KEY_LEN);
    mbedtls_platform_zeroize(buf, sizeof(buf));
    return 0;
}


void
sl_crypto_wipe(void *p, size_t n)
{
    mbedtls_platform_zeroize(p, n);
}
