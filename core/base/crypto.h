/*
 * Cryptographic primitives outside TLS, on mbedTLS (crypto.c is its only
 * non-TLS user): SHA-256, random bytes from a per-process CTR_DRBG, AES-256-GCM
 * sealing, hex/base62/base64 text encodings of binary values, and wiping.
 *
 * The DRBG is seeded from the OS on first use in each process and seeded
 * again when the process id changes, so a forked worker never replays its
 * parent's stream. Every function here is thread-safe (a worker's
 * uv_queue_work threads may draw random bytes too).
 */
#ifndef SL_CORE_BASE_CRYPTO_H
#define SL_CORE_BASE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SL_CRYPTO_SHA256_LEN 32
#define SL_CRYPTO_KEY_LEN    32 /* AES-256 */
#define SL_CRYPTO_NONCE_LEN  12 /* 96-bit GCM nonce */
#define SL_CRYPTO_TAG_LEN    16

/* Bytes sl_crypto_seal adds to a plaintext: nonce in front, tag behind. */
#define SL_CRYPTO_SEAL_OVERHEAD (SL_CRYPTO_NONCE_LEN + SL_CRYPTO_TAG_LEN)

/*
 * Characters sl_crypto_base62 writes for n bytes (without the NUL): at least
 * ceil(8n / log2(62)); 59541/10000 is just below log2(62), so the width is
 * never too small. 32 bytes -> 43 characters.
 */
#define SL_CRYPTO_BASE62_LEN(n) (((n) *80000 + 59540) / 59541)

/*
 * Seeds this process's DRBG now (it is otherwise seeded on first use).
 * Workers call it after fork so the first request does not pay for it.
 * Returns 0 or -EIO (logged).
 */
int sl_crypto_init(void);

/* Fills buf with len random bytes. Returns 0 or -EIO (logged). */
int sl_crypto_random(void *buf, size_t len);

/* out = SHA-256(p[0..len)). */
void sl_crypto_sha256(const void *p, size_t len, uint8_t out[SL_CRYPTO_SHA256_LEN]);

/*
 * AES-256-GCM with a fresh random 96-bit nonce. Writes nonce || ciphertext
 * || tag, len + SL_CRYPTO_SEAL_OVERHEAD bytes, to out (which must not
 * overlap pt). ad (adlen bytes, may be NULL when adlen is 0) is
 * authenticated but not stored. Returns 0 or -EIO (logged).
 */
int sl_crypto_seal(const uint8_t key[SL_CRYPTO_KEY_LEN], const void *ad, size_t adlen,
                   const void *pt, size_t len, uint8_t *out);

/*
 * Opens what sl_crypto_seal wrote: in is inlen bytes, out receives
 * inlen - SL_CRYPTO_SEAL_OVERHEAD bytes. Returns 0, SL_EPARSE when in is
 * shorter than the overhead, or SL_EAUTH when the key, the additional data
 * or any byte of in is not what was sealed (out is wiped then). Logs nothing:
 * the caller knows what failing means.
 */
int sl_crypto_open(const uint8_t key[SL_CRYPTO_KEY_LEN], const void *ad, size_t adlen,
                   const void *in, size_t inlen, uint8_t *out);

/*
 * Big-endian base62 (0-9, A-Z, a-z) of in, left-padded with '0' to exactly
 * SL_CRYPTO_BASE62_LEN(len) characters, NUL-terminated. outlen must be at
 * least that plus one. Returns the number of characters, or -ENOSPC.
 */
int sl_crypto_base62(const void *in, size_t len, char *out, size_t outlen);

/* Lower-case hex of in into out (2 * len + 1 bytes, NUL-terminated). */
void sl_crypto_hex(const void *in, size_t len, char *out);

/*
 * Parses a 256-bit key written as 64 hex digits or as base64 of 32 bytes
 * (spaces and newlines around it ignored). Returns 0 or SL_EPARSE.
 */
int sl_crypto_parse_key(const char *text, size_t len, uint8_t out[SL_CRYPTO_KEY_LEN]);

/* Overwrites n bytes at p with zeros in a way the compiler cannot drop. */
void sl_crypto_wipe(void *p, size_t n);

#endif
