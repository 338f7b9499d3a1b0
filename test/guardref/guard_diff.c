/*
 * Differential checks of the built-in detectors: the current scan against
 * the reference one, and texts made to be hard for them (see guard_diff.h).
 */
#include "guardref/guard_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/base/str.h"
#include "core/gateway/guard_internal.h"
#include "guardref/guard_detect_ref.h"

static uint64_t diff_next(uint64_t *rng);
static bool diff_utf8_ref(const char *t, size_t len);
static int diff_same(const sl__guard_hits_t *a, const sl__guard_hits_t *b, unsigned isa, char *why,
                     size_t whylen);
static int diff_twin(const char *t, size_t len, unsigned mask, const sl__guard_hits_t *ref,
                     char *why, size_t whylen);
static size_t diff_escape(const char *t, size_t len, bool slash, char *body, size_t *off);
static bool diff_twin_clean(const sl__guard_hits_t *h, const char *w);

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
    if (rc == 0 && from == 0) {
        rc = diff_twin(c, len, mask, &ref, why, whylen);
    }
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


/*
 * t[0..len) as a JSON string body, then its twin (sl__guard_twin): when no
 * hit in the twin covers a byte an escape wrote, its hits must be ref's
 * (t's own) at the body's offsets. Line breaks, tabs, quotes, backslashes,
 * \b and \f are the escapes a twin holds; '/' is written \/ when len is a
 * multiple of 3 and the other control bytes \u00XX, which a twin refuses.
 */
static int
diff_twin(const char *t, size_t len, unsigned mask, const sl__guard_hits_t *ref, char *why,
          size_t whylen)
{
    size_t *off = malloc((len + 1) * sizeof(*off)), blen;
    char *body = malloc(6 * len + 1), *tw;
    sl__guard_hits_t got = { NULL, 0, 0, SIZE_MAX };
    bool refuse = false;
    int rc = 0, trc;

    if (off == NULL || body == NULL) {
        abort();
    }
    blen = diff_escape(t, len, len % 3 == 0, body, off);
    for (size_t i = 0; i + 1 < blen; i++) {
        if (body[i] == '\\') {
            refuse = refuse || body[i + 1] == '/' || body[i + 1] == 'u';
            i++;
        }
    }
    tw = malloc(blen > 0 ? blen : 1); /* its exact size: a write past it is a sanitizer report */
    if (tw == NULL) {
        abort();
    }
    trc = sl__guard_twin(body, blen, tw);
    if (trc != (refuse ? SL_ENOTFOUND : 0)) {
        snprintf(why, whylen, "sl__guard_twin() returned %d on a body %s\\/ or \\u", trc,
                 refuse ? "with" : "without");
        rc = -1;
    } else if (!refuse) {
        sl__guard_detect(tw, blen, 0, mask, &got);
        if (diff_twin_clean(&got, tw)) {
            for (size_t i = 0; i < ref->n && rc == 0; i++) {
                const sl__guard_hit_t *x = &ref->v[i], *y = i < got.n ? &got.v[i] : NULL;

                if (y == NULL || y->start != off[x->start] || y->end != off[x->end]
                    || y->det != x->det || y->open != x->open) {
                    snprintf(why, whylen,
                             "twin: hit %zu of the text, %zu..%zu det %u, is %zu..%zu in the "
                             "body, the twin's %zd..%zd det %d (%zu hits, the text %zu)",
                             i, x->start, x->end, x->det, off[x->start], off[x->end],
                             y != NULL ? (ssize_t) y->start : -1, y != NULL ? (ssize_t) y->end : -1,
                             y != NULL ? (int) y->det : -1, got.n, ref->n);
                    rc = -1;
                }
            }
            if (rc == 0 && got.n != ref->n) {
                snprintf(why, whylen, "twin: %zu hits, the text %zu", got.n, ref->n);
                rc = -1;
            }
        }
    }
    sl__guard_hits_free(&got);
    free(tw);
    free(body);
    free(off);
    return rc;
}


/* t[0..len) JSON-escaped into body (room for 6 * len); off[i]: where t[i] starts in it. */
static size_t
diff_escape(const char *t, size_t len, bool slash, char *body, size_t *off)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) t[i];
        const char *e = NULL;

        off[i] = n;
        switch (c) {
        case '\n':
            e = "\\n";
            break;
        case '\t':
            e = "\\t";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '/':
            e = slash ? "\\/" : NULL;
            break;
        default:
            break;
        }
        if (e != NULL) {
            body[n++] = e[0];
            body[n++] = e[1];
        } else if (c < 0x20) {
            memcpy(body + n, "\\u00", 4);
            body[n + 4] = hex[c >> 4];
            body[n + 5] = hex[c & 15];
            n += 6;
        } else {
            body[n++] = (char) c;
        }
    }
    off[len] = n;
    return n;
}


/* Whether no hit in h covers a control byte, '"' or '\\' of w (what only an escape writes). */
static bool
diff_twin_clean(const sl__guard_hits_t *h, const char *w)
{
    for (size_t i = 0; i < h->n; i++) {
        for (size_t k = h->v[i].start; k < h->v[i].end; k++) {
            if ((unsigned char) w[k] < 0x20 || w[k] == '"' || w[k] == '\\') {
                return false;
            }
        }
    }
    return true;
}
