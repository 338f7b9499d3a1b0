/*
 * Unit tests for core/base/crypto.c: SHA-256 against FIPS 180-2 vectors,
 * AES-256-GCM against the GCM specification's test case 14 and round trips
 * that must fail after any tampering (ciphertext, tag, nonce, additional
 * data, key), base62 against values computed independently, master key
 * parsing, and a DRBG that does not repeat its parent's stream after fork.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit/testutil.h"

#include "core/base/crypto.h"
#include "core/base/errno.h"


static void assert_sha256(const void *p, size_t len, const char *want_hex);
static void assert_base62(const void *in, size_t len, const char *want);
static void test_sha256(void **state);
static void test_gcm_vector(void **state);
static void test_gcm_round_trip(void **state);
static void test_gcm_tamper(void **state);
static void test_base62(void **state);
static void test_hex(void **state);
static void test_parse_key(void **state);
static void test_random(void **state);
static void random_after_fork(size_t n);
static void test_random_after_fork(void **state);
static void test_random_small(void **state);
static int cmp6(const void *a, const void *b);


static void
assert_sha256(const void *p, size_t len, const char *want_hex)
{
    uint8_t md[SL_CRYPTO_SHA256_LEN];
    char hex[2 * SL_CRYPTO_SHA256_LEN + 1];

    sl_crypto_sha256(p, len, md);
    sl_crypto_hex(md, sizeof(md), hex);
    assert_string_equal(hex, want_hex);
}


static void
assert_base62(const void *in, size_t len, const char *want)
{
    char out[128];

    assert_int_equal(sl_crypto_base62(in, len, out, sizeof(out)), (int) strlen(want));
    assert_string_equal(out, want);
}


static void
test_sha256(void **state)
{
    char *million = malloc(1000000);

    assert_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_non_null(million);
    memset(million, 'a', 1000000);
    assert_sha256(million, 1000000,
                  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}


/* GCM spec test case 14: AES-256, zero key, zero IV, one zero block. */
static void
test_gcm_vector(void **state)
{
    static const uint8_t ct_tag[] = {
        0xce,
        0xa7,
        0x40,
        0x3d,
        0x4d,
        0x60,
        0x6b,
        0x6e,
        0x07,
        0x4e,
        0xc5,
        0xd3,
        0xba,
        0xf3,
        0x9d,
        0x18,
        /* tag: */ 0xd0,
        0xd1,
        0xc8,
        0xa7,
        0x99,
        0x99,
        0x6b,
        0xf0,
        0x26,
        0x5b,
        0x98,
        0xb5,
        0xd4,
        0x8a,
        0xb9,
        0x19,
    };
    uint8_t key[SL_CRYPTO_KEY_LEN] = { 0 }, in[SL_CRYPTO_NONCE_LEN + sizeof(ct_tag)] = { 0 };
    uint8_t out[16], zero[16] = { 0 };

    memcpy(in + SL_CRYPTO_NONCE_LEN, ct_tag, sizeof(ct_tag));
    memset(out, 0xaa, sizeof(out));
    assert_rc(sl_crypto_open(key, NULL, 0, in, sizeof(in), out), 0);
    assert_memory_equal(out, zero, sizeof(out));

    in[SL_CRYPTO_NONCE_LEN + 3] ^= 1;
    assert_rc(sl_crypto_open(key, NULL, 0, in, sizeof(in), out), SL_EAUTH);
}


static void
test_gcm_round_trip(void **state)
{
    uint8_t key[SL_CRYPTO_KEY_LEN];
    const char *pt = "sk-ant-api03-very-secret-value";
    size_t len = strlen(pt);
    uint8_t sealed[64 + SL_CRYPTO_SEAL_OVERHEAD], sealed2[64 + SL_CRYPTO_SEAL_OVERHEAD];
    uint8_t out[64];

    assert_rc(sl_crypto_random(key, sizeof(key)), 0);
    assert_rc(sl_crypto_seal(key, "anthropic", 9, pt, len, sealed), 0);
    /* the plaintext does not appear in the sealed bytes */
    assert_null(memmem(sealed, len + SL_CRYPTO_SEAL_OVERHEAD, pt, 8));
    assert_rc(sl_crypto_open(key, "anthropic", 9, sealed, len + SL_CRYPTO_SEAL_OVERHEAD, out), 0);
    assert_memory_equal(out, pt, len);

    /* a fresh nonce every time: sealing twice gives different bytes */
    assert_rc(sl_crypto_seal(key, "anthropic", 9, pt, len, sealed2), 0);
    assert_memory_not_equal(sealed, sealed2, SL_CRYPTO_NONCE_LEN);
    assert_memory_not_equal(sealed + SL_CRYPTO_NONCE_LEN, sealed2 + SL_CRYPTO_NONCE_LEN, len);

    /* empty plaintext still authenticates */
    assert_rc(sl_crypto_seal(key, NULL, 0, "", 0, sealed), 0);
    assert_rc(sl_crypto_open(key, NULL, 0, sealed, SL_CRYPTO_SEAL_OVERHEAD, out), 0);
    assert_rc(sl_crypto_open(key, NULL, 0, sealed, SL_CRYPTO_SEAL_OVERHEAD - 1, out), SL_EPARSE);
}


static void
test_gcm_tamper(void **state)
{
    uint8_t key[SL_CRYPTO_KEY_LEN], other[SL_CRYPTO_KEY_LEN];
    const char *pt = "a secret of some length";
    size_t len = strlen(pt), n = len + SL_CRYPTO_SEAL_OVERHEAD;
    uint8_t sealed[64 + SL_CRYPTO_SEAL_OVERHEAD], out[64];

    assert_rc(sl_crypto_random(key, sizeof(key)), 0);
    memcpy(other, key, sizeof(key));
    other[31] ^= 0x80;
    assert_rc(sl_crypto_seal(key, "name", 4, pt, len, sealed), 0);

    /* every single bit flip anywhere is detected */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            sealed[i] ^= (uint8_t) (1u << bit);
            memset(out, 0x55, sizeof(out));
            assert_rc(sl_crypto_open(key, "name", 4, sealed, n, out), SL_EAUTH);
            sealed[i] ^= (uint8_t) (1u << bit);
        }
    }
    /* out is wiped on failure, never left with a guess */
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(out[i], 0);
    }
    assert_rc(sl_crypto_open(key, "Name", 4, sealed, n, out), SL_EAUTH);
    assert_rc(sl_crypto_open(key, "name", 3, sealed, n, out), SL_EAUTH);
    assert_rc(sl_crypto_open(key, NULL, 0, sealed, n, out), SL_EAUTH);
    assert_rc(sl_crypto_open(other, "name", 4, sealed, n, out), SL_EAUTH);
    assert_rc(sl_crypto_open(key, "name", 4, sealed, n - 1, out), SL_EAUTH);
    assert_rc(sl_crypto_open(key, "name", 4, sealed, n, out), 0);
    assert_memory_equal(out, pt, len);
}


static void
test_base62(void **state)
{
    uint8_t b[32];
    char out[64];

    assert_base62("\x00", 1, "00");
    assert_base62("\xff", 1, "47");
    assert_base62("\x3d", 1, "0z");
    assert_base62("\x01\x00", 2, "048");
    for (int i = 0; i < 32; i++) {
        b[i] = (uint8_t) i;
    }
    assert_base62(b, 32, "003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf");
    memset(b, 0xff, sizeof(b));
    assert_base62(b, 32, "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1");
    memset(b, 0, sizeof(b));
    assert_base62(b, 32, "0000000000000000000000000000000000000000000");
    assert_int_equal(SL_CRYPTO_BASE62_LEN(32), 43);

    /* too small a buffer is refused, not overrun */
    assert_int_equal(sl_crypto_base62(b, 32, out, 43), -ENOSPC);
    assert_int_equal(sl_crypto_base62(b, 32, out, 44), 43);
}


static void
test_hex(void **state)
{
    char out[9];

    sl_crypto_hex("\x00\x01\xab\xff", 4, out);
    assert_string_equal(out, "0001abff");
}


static void
test_parse_key(void **state)
{
    static const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    /* base64 of the same 32 bytes */
    static const char b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    uint8_t want[SL_CRYPTO_KEY_LEN], out[SL_CRYPTO_KEY_LEN];
    char buf[128];

    for (int i = 0; i < 32; i++) {
        want[i] = (uint8_t) i;
    }
    assert_rc(sl_crypto_parse_key(hex, strlen(hex), out), 0);
    assert_memory_equal(out, want, sizeof(want));
    memset(out, 0, sizeof(out));
    assert_rc(sl_crypto_parse_key(b64, strlen(b64), out), 0);
    assert_memory_equal(out, want, sizeof(want));
    snprintf(buf, sizeof(buf), "  %s\r\n\n", hex);
    assert_rc(sl_crypto_parse_key(buf, strlen(buf), out), 0);
    assert_memory_equal(out, want, sizeof(want));

    assert_rc(sl_crypto_parse_key(hex, 62, out), SL_EPARSE);
    snprintf(buf, sizeof(buf), "%.63sg", hex);
    assert_rc(sl_crypto_parse_key(buf, 64, out), SL_EPARSE);
    /* base64 of 31 bytes, of 33 bytes */
    assert_rc(sl_crypto_parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 44, out),
              SL_EPARSE);
    assert_rc(sl_crypto_parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 44, out),
              SL_EPARSE);
    assert_rc(sl_crypto_parse_key("", 0, out), SL_EPARSE);
    assert_rc(sl_crypto_parse_key("not a key at all", 16, out), SL_EPARSE);
}


static void
test_random(void **state)
{
    uint8_t a[32], b[32], big[5000], zero[32] = { 0 };

    assert_rc(sl_crypto_init(), 0);
    assert_rc(sl_crypto_random(a, sizeof(a)), 0);
    assert_rc(sl_crypto_random(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    /* more than one DRBG request's worth */
    memset(big, 0, sizeof(big));
    assert_rc(sl_crypto_random(big, sizeof(big)), 0);
    assert_memory_not_equal(big + sizeof(big) - 32, zero, 32);
}


/*
 * A child that inherited the parent's DRBG state, or its pool of DRBG
 * output for small draws, would produce exactly the bytes the parent
 * draws next. It must reseed and refill instead. n: a small draw (from
 * the pool) or a large one (straight from the DRBG).
 */
static void
random_after_fork(size_t n)
{
    uint8_t mine[64], theirs[64];
    int fds[2], status;
    pid_t pid;

    assert_true(n <= sizeof(mine));
    assert_rc(sl_crypto_random(mine, n), 0);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (sl_crypto_random(theirs, n) != 0 || write(fds[1], theirs, n) != (ssize_t) n) {
            _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], theirs, n), (int) n);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    assert_rc(sl_crypto_random(mine, n), 0);
    assert_memory_not_equal(mine, theirs, n);
}


static void
test_random_after_fork(void **state)
{
    (void) state;
    random_after_fork(8);
    random_after_fork(32);
    random_after_fork(64);
}


/* Small draws (pooled) and large ones agree with no repeats: 2,000 ids of 6 bytes all differ. */
static void
test_random_small(void **state)
{
    static uint8_t ids[2000][6];

    (void) state;
    for (size_t i = 0; i < 2000; i++) {
        assert_rc(sl_crypto_random(ids[i], 6), 0);
    }
    qsort(ids, 2000, 6, cmp6);
    for (size_t i = 1; i < 2000; i++) {
        assert_memory_not_equal(ids[i - 1], ids[i], 6);
    }
}


static int
cmp6(const void *a, const void *b)
{
    return memcmp(a, b, 6);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_gcm_vector),
        cmocka_unit_test(test_gcm_round_trip),
        cmocka_unit_test(test_gcm_tamper),
        cmocka_unit_test(test_base62),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_parse_key),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_random_after_fork),
        cmocka_unit_test(test_random_small),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
