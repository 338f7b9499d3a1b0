/*
 * Differential checks of the built-in detectors: the current scan against
 * the reference one, and texts made to be hard for them (see guard_diff.h).
 */
#include "guardref/guard_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/str.h"
#include "core/gateway/guard_internal.h"
#include "guardref/guard_detect_ref.h"

static uint64_t diff_next(uint64_t *rng);
static bool diff_utf8_ref(const char *t, size_t len);
static int diff_same(const sl__guard_hits_t *a, const sl__guard_hits_t *b, unsigned isa, char *why,
                     size_t whylen);

/* What the detectors look for, whole and in part, and what stands between. */
static const char *const diff_pieces[] = {
    " ",
    " ",
    " ",
    "  ",
    "\n",
    "\t",
    ".",
    ",",
    "-",
    "--",
    "_",
    ":",
    "::",
    ";",
    "/",
    "+",
    "(",
    ")",
    "(0)",
    "@",
    "[",
    "]",
    "\"",
    "'",
    "=",
    "#",
    "*",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "00",
    "12",
    "20",
    "44",
    "255",
    "256",
    "415",
    "555",
    "0100",
    "0958",
    "7946",
    "020",
    "0800",
    "1-800-555-0100",
    "+1 415 555 0100",
    "+44 20 7946 0958",
    "+44 (0)20 7946 0958",
    "(415) 555-0100",
    "415.555.0100",
    "+4915112345678",
    "4111111111111111",
    "4111111111111112",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "3782 822463 10005",
    "6011111111111117",
    "5500000000000004",
    "1111111111111111111111111111111111111111111111111111111111111111",
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "nl91abna0417164300",
    "DE",
    "GB",
    "89",
    "3704",
    "10.20.30.40",
    "192.168.1.10",
    "8.8.8.8",
    "1.2.3",
    "01.02.03.04",
    "2001:db8::1",
    "fe80::1ff:fe23:4567:890a",
    "::1",
    "::ffff:10.0.0.1",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "12:30:45",
    "ffff",
    "fe80",
    "abcd",
    "beef",
    "a",
    "b",
    "e",
    "f",
    "x",
    "y",
    "z",
    "A",
    "J",
    "Z",
    "jane.roe",
    "john.smith+tag",
    "example.com",
    "mail.example.org",
    "co.uk",
    "localhost",
    ".io",
    "sk-",
    "sk-proj-",
    "sk-ant-api03-",
    "sk-sluice-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "AKIA",
    "ASIA",
    "AIza",
    "ghp_",
    "gho_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xapp-",
    "hf_",
    "eyJ",
    "eyJhbGciOiJIUzI1NiJ9",
    "abcdefghijklmnopqrstuvwxyz012345",
    "IOSFODNN7EXAMPLE",
    "0123456789abcdefghijklmnopqrstuvwxyz",
    "-----BEGIN ",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "PRIVATE KEY",
    "-----",
    "MIIBOgIBAAJBAKj34GkxFhD9",
    "\xc3\xa9",
    "\xe2\x82\xac",
    "\xff",
    "\x01",
    "Ticket 12: order",
    "v2.4.1",
    "2026-03-14",
};

#define DIFF_NPIECES (sizeof(diff_pieces) / sizeof(diff_pieces[0]))


static uint64_t
diff_next(uint64_t *rng)
{
    uint64_t x = *rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    return x;
}


size_t
guard_diff_make(uint64_t *rng, const uint8_t *sel, size_t nsel, char *buf, size_t cap)
{
    size_t n = 0, want = sel != NULL ? nsel : (size_t) (diff_next(rng) % 96) + 1;

    if (sel == NULL && diff_next(rng) % 8 == 0) {
        want *= 40; /* a long one: across many scan chunks */
    }
    for (size_t k = 0; k < want; k++) {
        unsigned v = sel != NULL ? sel[k] : (unsigned) (diff_next(rng) >> 11);
        const char *p;
        size_t l;
        char one[2];

        if (v % 7 == 6 && sel == NULL) {
            /* a random byte: letters and digits mostly */
            static const char any[] = "0123456789abcdefABCDEFxyzXYZ -_.:@+";
            unsigned r = (unsigned) (diff_next(rng) >> 20);

            one[0] = any[r % (sizeof(any) - 1)];
            one[1] = '\0';
            p = one;
        } else {
            p = diff_pieces[(v / 7) % DIFF_NPIECES];
        }
        l = strlen(p);
        if (n + l > cap) {
            break;
        }
        memcpy(buf + n, p, l);
        n += l;
    }
    if (sel == NULL && n > 0 && diff_next(rng) % 4 == 0) {
        /* a few bytes changed: checksums and shapes just off */
        for (unsigned k = (unsigned) (diff_next(rng) % 4) + 1; k > 0; k--) {
            size_t at = (size_t) (diff_next(rng) % n);

            buf[at] = "0123456789 -.:@_aZ"[diff_next(rng) % 18];
        }
    }
    return n;
}


static int
diff_same(const sl__guard_hits_t *a, const sl__guard_hits_t *b, unsigned isa, char *why,
          size_t whylen)
{
    for (size_t i = 0; i < a->n || i < b->n; i++) {
        const sl__guard_hit_t *x = i < a->n ? &a->v[i] : NULL;
        const sl__guard_hit_t *y = i < b->n ? &b->v[i] : NULL;

        if (x == NULL || y == NULL || x->start != y->start || x->end != y->end || x->det != y->det
            || x->open != y->open) {
            snprintf(why, whylen,
                     "isa %u, hit %zu: got %zd..%zd det %d open %d, reference %zd..%zd det %d "
                     "open %d (%zu hits, reference %zu)",
                     isa, i, x != NULL ? (ssize_t) x->start : -1, x != NULL ? (ssize_t) x->end : -1,
                     x != NULL ? (int) x->det : -1, x != NULL ? (int) x->open : -1,
                     y != NULL ? (ssize_t) y->start : -1, y != NULL ? (ssize_t) y->end : -1,
                     y != NULL ? (int) y->det : -1, y != NULL ? (int) y->open : -1, a->n, b->n);
            return -1;
        }
    }
    return 0;
}


int
guard_diff_check(const char *t, size_t len, size_t from, unsigned mask, char *why, size_t whylen)
{
    char *c = malloc(len > 0 ? len : 1);
    sl__guard_hits_t ref = { NULL, 0, 0, SIZE_MAX }, got = { NULL, 0, 0, SIZE_MAX };
    bool utf8;
    int rc = 0;

    if (c == NULL) {
        abort();
    }
    memcpy(c, t, len);
    utf8 = diff_utf8_ref(c + from, len - from);
    sl__guard_ref_detect(c, len, from, mask, &ref);
    for (unsigned isa = SL__GUARD_ISA_SCALAR; isa <= SL__GUARD_ISA_AVX2 && rc == 0; isa++) {
        if (sl__guard_detect_isa(isa) < 0) {
            continue; /* not on this machine */
        }
        got.n = 0;
        sl_utf8_text_simd(isa == SL__GUARD_ISA_AVX2); /* byte by byte under the others */
        sl__guard_detect(c, len, from, mask, &got);
        rc = diff_same(&got, &ref, isa, why, whylen);
        if (rc == 0
            && sl__guard_plain(c + from, len - from) != sl__guard_ref_plain(c + from, len - from)) {
            snprintf(why, whylen, "isa %u: sl__guard_plain() says %u, reference %u", isa,
                     sl__guard_plain(c + from, len - from),
                     sl__guard_ref_plain(c + from, len - from));
            rc = -1;
        }
        if (rc == 0 && (sl_utf8_text(c + from, len - from) == 0) != utf8) {
            snprintf(why, whylen, "isa %u: sl_utf8_text() says %s, the reference %s", isa,
                     utf8 ? "invalid" : "valid", utf8 ? "valid" : "invalid");
            rc = -1;
        }
    }
    sl__guard_detect_isa(SL__GUARD_ISA_BEST);
    sl_utf8_text_simd(true);
    sl__guard_hits_free(&got);
    free(ref.v);
    free(c);
    return rc;
}


/*
 * What sl_utf8_text() of t[0..len) answers, a character at a time by
 * sl_utf8_char_len(): no byte below 0x20, no ill-formed character.
 */
static bool
diff_utf8_ref(const char *t, size_t len)
{
    for (size_t i = 0, k; i < len; i += k) {
        k = sl_utf8_char_len(t + i, len - i);
        if (k == 0 || (unsigned char) t[i] < 0x20) {
            return false;
        }
    }
    return true;
}
