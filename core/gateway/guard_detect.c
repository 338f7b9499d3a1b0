/*
 * The built-in detectors and the deny patterns: where they match in a
 * text. One pass over the text dispatches on the byte at hand (a digit, an
 * '@', a '+', a word's first letter, ...): 64-byte chunks are classified
 * at once (AVX2 when the CPU has it, chosen at run time; else SSE2; else a
 * table), the scan visits only the bytes where a match can start, and
 * takes a bounded look at each; a candidate is taken only when its
 * checksum or shape holds (the number detectors, card to ip, are in
 * guard_detect_num.c). The instruction sets find the same matches
 * (test/unit/test_guard_diff.c compares each with the reference
 * detectors kept in test/guardref/):
 *
 *   email   local@domain: local part of [A-Za-z0-9._%+-] (at most 64),
 *           a domain of at least two labels ([A-Za-z0-9-], not starting or
 *           ending with '-') whose last label is 2 to 24 letters
 *   phone   E.164 ("+" and 8 to 15 digits, single spaces, dashes, dots or
 *           one "(0)" between groups), North American (415-555-0100,
 *           415.555.0100, 415 555 0100, (415) 555-0100, 1-800-555-0100) and
 *           national numbers with a trunk 0 in groups (020 7946 0958: 9 to
 *           12 digits, one kind of separator); a plain run of digits is not
 *           a phone number
 *   card    13 to 19 digits, in groups of 2 to 6 with one kind of separator
 *           (space or dash) or none, first digit 2 to 6, Luhn-valid
 *   iban    a country code with its IBAN length (the ISO 13616 registry),
 *           two check digits, the BBAN (letters and digits, optionally in
 *           groups of four), mod 97 == 1
 *   ip      IPv4 dotted quads (0..255, no leading zeros) and IPv6 (what
 *           inet_pton(3) takes, with at least two ':' and a digit)
 *   secret  key shapes: sk-... (OpenAI, Anthropic sk-ant-, sluice
 *           sk-sluice-), sk_live_/sk_test_/rk_live_ (Stripe), AKIA/ASIA
 *           (AWS access key ids), AIza (Google), ghp_/gho_/ghu_/ghs_/ghr_
 *           and github_pat_ (GitHub), glpat- (GitLab), xoxb-/xoxp-/...
 *           (Slack), hf_ (Hugging Face), JWTs (eyJ...eyJ...sig) and PEM
 *           private key blocks (BEGIN ... PRIVATE KEY to its END line)
 *
 * Every match starts and ends at a boundary (the neighbour is not a
 * letter, digit or '_', or not part of a longer number), which is what
 * keeps "order 4111111111111112" or "v1.2.3.4.5" from matching.
 */
#include "core/gateway/guard_internal.h"

#include "core/base/errno.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <regex.h>

/*
 * What the build has: 1 or 0, tested in the code (if (DET_SSE2 && ...));
 * each helper that needs the instructions is defined under the same test
 * at file scope, with a stand-in otherwise (never called then).
 */
#if defined(__SSE2__)
#define DET_SSE2 1
#include <emmintrin.h>
#else
#define DET_SSE2 0
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* AVX2 for the scan's chunks when the CPU has it (target attribute, runtime choice) */
#define DET_AVX2 1
#include <immintrin.h>
#else
#define DET_AVX2 0
#endif

#define DET_BATCH 32 /* chunks of 64 bytes classified at once */

typedef struct det_prefix {
    const char *prefix;
    unsigned char plen;
    unsigned char min; /* least bytes after the prefix */
    bool aws;          /* exactly 16 of [A-Z0-9] */
} det_prefix_t;

/* One scan of sl__guard_detect(). */
typedef struct det_scan {
    const char *t;
    size_t len;
    size_t from;
    unsigned mask;
    sl__guard_hits_t *out;
    size_t next[SL_GUARD_DET_COUNT]; /* where each detector's next match may start */
    size_t skip;                     /* no trigger before it is looked at */
    size_t tried;                    /* the last word start a key was tried at, + 1 */
} det_scan_t;

static bool det_space(unsigned char c);
static bool det_keychar(unsigned char c);
static bool det_key_start(unsigned char a, unsigned char b);
static bool det_key_sep(unsigned char p);
static unsigned char det_lower(unsigned char c);
static size_t det_email(const char *t, size_t len, size_t at, size_t *start);
#if DET_SSE2
static unsigned det_alnum16(__m128i x, unsigned *dash, unsigned *dot);
#endif
static size_t det_email_local16(const char *p);
static size_t det_email_domain16(const char *t, size_t at, size_t *bad);
static size_t det_secret(const char *t, size_t len, size_t i, bool *open);
static size_t det_jwt(const char *t, size_t len, size_t i);
static size_t det_pem(const char *t, size_t len, size_t i, bool *open);
static size_t det_pem_label(const char *t, size_t len, size_t j);
static const char *det_find(const char *t, size_t len, const char *s);
static inline void det_push(sl__guard_hits_t *out, size_t *next, size_t s, size_t e, unsigned det,
                            bool open, size_t from) __attribute__((always_inline));
static unsigned det_isa_best(void);
static bool det_cpu_avx2(void);
static size_t det_chunks(const char *p, size_t n, uint64_t *trig, uint64_t *dig);
#if DET_AVX2
static void det_chunks_avx2(const char *p, size_t nch, uint64_t *trig, uint64_t *dig)
    __attribute__((target("avx2")));
static unsigned det_plain_avx2(const char *p, size_t n, size_t *done)
    __attribute__((target("avx2")));
#else
static void det_chunks_avx2(const char *p, size_t nch, uint64_t *trig, uint64_t *dig);
static unsigned det_plain_avx2(const char *p, size_t n, size_t *done);
#endif
static void det_chunks_sse2(const char *p, size_t nch, uint64_t *trig, uint64_t *dig);
static unsigned det_plain_sse2(const char *p, size_t n, size_t *done);
static void det_at(det_scan_t *sc, size_t i, unsigned char p);
static unsigned det_num_want(const char *t, size_t len, size_t i, size_t r);
static void det_number(det_scan_t *sc, size_t i, size_t r, unsigned want, unsigned char c1);
static void det_iban_at(det_scan_t *sc, size_t i) __attribute__((noinline));
static bool det_key_word(det_scan_t *sc, size_t j);
static bool det_key_at(det_scan_t *sc, size_t ws);
static void det_colon(det_scan_t *sc, size_t j);
static void deny_literal(const sl_guard_pattern_t *p, const char *t, size_t len, size_t from,
                         sl__guard_hits_t *out);
static void deny_regex(const sl_guard_pattern_t *p, const char *t, size_t len, size_t from,
                       bool at_start, sl__guard_hits_t *out);

/*
 * The scan's instruction set (SL__GUARD_ISA_*): chosen by the first
 * sl__guard_isa(), which loading a configuration with a guard policy makes
 * (sl_guard_policy_finish), before any worker or thread exists; after that
 * only the tests change it.
 */
static unsigned det_isa = SL__GUARD_ISA_BEST;

/* The byte classes (SL__GUARD_C_* in guard_internal.h, which says what each is). */
const unsigned char sl__guard_cls[256] = {
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   128,
    0,   0,   32,  0,   0,   224, 0,   176, 192, 64,  225, 225, 225, 225, 225, 225, 225, 225, 225,
    225, 32,  0,   0,   0,   0,   0,   96,  170, 138, 138, 138, 138, 138, 130, 130, 130, 162, 130,
    130, 130, 130, 130, 130, 130, 130, 130, 130, 130, 130, 130, 130, 130, 130, 0,   0,   0,   0,
    228, 0,   138, 138, 138, 138, 138, 138, 130, 130, 130, 130, 130, 130, 130, 130, 130, 130, 130,
    130, 130, 130, 130, 130, 130, 130, 130, 130, 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,
};

/*
 * Key shapes by prefix, grouped by first letter (det_secret() knows the
 * groups); the longest prefixes first where one begins another.
 */
static const det_prefix_t det_prefixes[] = {
    /* s: 0..3 */
    { "sk_live_", 8, 16, false },
    { "sk_test_", 8, 16, false },
    { "sk-", 3, 20, false },
    /* r: 3..4 */
    { "rk_live_", 8, 16, false },
    /* A: 4..7 */
    { "AKIA", 4, 16, true },
    { "ASIA", 4, 16, true },
    { "AIza", 4, 35, false },
    /* g: 7..14 */
    { "ghp_", 4, 36, false },
    { "gho_", 4, 36, false },
    { "ghu_", 4, 36, false },
    { "ghs_", 4, 36, false },
    { "ghr_", 4, 36, false },
    { "github_pat_", 11, 22, false },
    { "glpat-", 6, 20, false },
    /* x: 14..20 */
    { "xoxb-", 5, 10, false },
    { "xoxp-", 5, 10, false },
    { "xoxa-", 5, 10, false },
    { "xoxr-", 5, 10, false },
    { "xoxs-", 5, 10, false },
    { "xapp-", 5, 10, false },
    /* h: 20..21 */
    { "hf_", 3, 30, false },
};


static bool
det_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}


/* What API keys are made of. */
static bool
det_keychar(unsigned char c)
{
    return (sl__guard_cls[c]
            & (SL__GUARD_C_DIGIT | SL__GUARD_C_ALPHA | SL__GUARD_C_UNDER | SL__GUARD_C_DASH))
           != 0;
}


/*
 * Whether a key shape (det_secret) may start with a, b: the first two
 * bytes of a prefix (sk, rk, AK, AS, AI, gh, gi, gl, xo, xa, hf) or of a
 * JWT (ey).
 */
static bool
det_key_start(unsigned char a, unsigned char b)
{
    switch (a) {
    case 's':
    case 'r':
        return b == 'k';
    case 'A':
        return b == 'K' || b == 'S' || b == 'I';
    case 'g':
        return b == 'h' || b == 'i' || b == 'l';
    case 'x':
        return b == 'o' || b == 'a';
    case 'h':
        return b == 'f';
    case 'e':
        return b == 'y';
    default:
        return false;
    }
}


/*
 * Whether p may come right before the first '-' or '_' of a key prefix:
 * sk- sk_ rk_ (k), ghp_ gho_ ghu_ ghs_ ghr_ (p o u s r), github_ (b),
 * glpat- (t), xoxb- xoxp- xoxa- xoxr- xoxs- xapp- (b p a r s), hf_ (f).
 * A separator after another byte is a later one of its word (whose start
 * the first one tried already), or one of a word no prefix starts; the
 * words the 'A' and 'J' triggers try (AIza..., eyJ...) are tried there
 * first.
 */
static bool
det_key_sep(unsigned char p)
{
    const uint32_t az = 1u << ('k' - 'a') | 1u << ('p' - 'a') | 1u << ('o' - 'a')
                        | 1u << ('u' - 'a') | 1u << ('s' - 'a') | 1u << ('r' - 'a')
                        | 1u << ('b' - 'a') | 1u << ('t' - 'a') | 1u << ('a' - 'a')
                        | 1u << ('f' - 'a');

    return (unsigned) (p - 'a') < 26u && ((az >> (p - 'a')) & 1u);
}


static unsigned char
det_lower(unsigned char c)
{
    return (unsigned) (c - 'A') < 26u ? (unsigned char) (c | 0x20) : c;
}


void
sl__guard_hits_push(sl__guard_hits_t *h, size_t start, size_t end, unsigned det, bool open)
{
    if (h->n == h->cap) {
        h->cap = h->cap == 0 ? 64 : h->cap * 2;
        h->v = sl_xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    h->v[h->n++] = (sl__guard_hit_t){ start, end, det, open, NULL, NULL };
}


void
sl__guard_hits_free(sl__guard_hits_t *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}


static void
det_push(sl__guard_hits_t *out, size_t *next, size_t s, size_t e, unsigned det, bool open,
         size_t from)
{
    if (s >= from && s >= next[det]) {
        if (out->n < out->cap) {
            /* sl__guard_hits_push() without the call */
            out->v[out->n++] = (sl__guard_hit_t){ s, e, det, open, NULL, NULL };
        } else {
            sl__guard_hits_push(out, s, e, det, open);
        }
        next[det] = e;
    }
}


/* (the number detectors ask within a scan, which made det_isa the set it scans with) */
bool
sl__guard_simd(void)
{
    return det_isa >= SL__GUARD_ISA_SSE2;
}


unsigned
sl__guard_isa(void)
{
    if (det_isa == SL__GUARD_ISA_BEST) {
        det_isa = det_isa_best();
    }
    return det_isa;
}


/* The best instruction set of the scan this build and CPU have. */
static unsigned
det_isa_best(void)
{
    if (DET_AVX2 && det_cpu_avx2()) {
        return SL__GUARD_ISA_AVX2;
    }
    return DET_SSE2 ? SL__GUARD_ISA_SSE2 : SL__GUARD_ISA_SCALAR;
}


#if DET_AVX2
/* Whether this CPU runs AVX2 (the build's compiler can emit it). */
static bool
det_cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#else
/* (no AVX2 code in this build) */
static bool
det_cpu_avx2(void)
{
    return false;
}
#endif


int
sl__guard_detect_isa(unsigned isa)
{
    unsigned best = det_isa_best();

    if (isa == SL__GUARD_ISA_BEST) {
        det_isa = best;
        return 0;
    }
    if (isa > best) {
        return SL_ENOTFOUND;
    }
    det_isa = isa;
    return 0;
}


#if DET_AVX2
/*
 * det_chunks() of nch chunks of 64 bytes with AVX2: the triggers exactly (digits, '@',
 * '+', '(', '-', '_', ':', 'A', 'J'), found by a look-up of each byte's
 * low and high nibble (a bit per high nibble 2, 3, 4, 5 in the low
 * nibble's entry; ':' has a bit of its own), so no other punctuation
 * reaches the table. The digits are the bytes with the bit of high nibble
 * 3 (value 2), shifted to the top of the byte for the mask.
 */
static void
det_chunks_avx2(const char *p, size_t nch, uint64_t *trig, uint64_t *dig)
{
    const __m256i nib = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    /* low nibble 0: '0' '@'; 1: '1' 'A'; 2..7, 9: digits; 8: '(' '8'; A: ':' (16) 'J'; B: '+';
     * D: '-'; F: '_' */
    const __m256i lot = _mm256_setr_epi8(6, 6, 2, 2, 2, 2, 2, 2, 3, 2, 20, 1, 0, 1, 0, 8, 6, 6, 2,
                                         2, 2, 2, 2, 2, 3, 2, 20, 1, 0, 1, 0, 8);
    const __m256i hit = _mm256_setr_epi8(0, 0, 1, 2 | 16, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         1, 2 | 16, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    for (size_t c = 0; c < nch; c++, p += 64) {
        uint32_t tm[2], dm[2];

        for (unsigned q = 0; q < 2; q++) {
            __m256i x = _mm256_loadu_si256((const __m256i *) (const void *) (p + 32 * q));
            /* a byte >= 0x80 looks up 0 in lot */
            __m256i l = _mm256_shuffle_epi8(lot, x);
            __m256i h = _mm256_shuffle_epi8(hit, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));
            __m256i lh = _mm256_and_si256(l, h); /* 0..31: no sign bit */

            tm[q] = (uint32_t) _mm256_movemask_epi8(_mm256_cmpgt_epi8(lh, zero));
            /* bit 1 to bit 7 (the bits shifted in from the byte below land lower) */
            dm[q] = (uint32_t) _mm256_movemask_epi8(_mm256_slli_epi16(lh, 6));
        }
        trig[c] = tm[0] | (uint64_t) tm[1] << 32;
        dig[c] = dm[0] | (uint64_t) dm[1] << 32;
    }
}
#else
/* (no AVX2 code in this build: det_isa is never AVX2, and nothing calls it) */
static void
det_chunks_avx2(const char *p, size_t nch, uint64_t *trig, uint64_t *dig)
{
    (void) p;
    (void) nch;
    (void) trig;
    (void) dig;
}
#endif


#if DET_SSE2
/*
 * det_chunks() of nch chunks of 64 bytes with SSE2: a superset of the
 * triggers (the bytes '(' to 'A', 'J' and '_'; the caller asks the table)
 * and the digits exactly.
 */
static void
det_chunks_sse2(const char *p, size_t nch, uint64_t *trig, uint64_t *dig)
{
    for (size_t c = 0; c < nch; c++, p += 64) {
        const __m128i c0 = _mm_set1_epi8('0'), c9 = _mm_set1_epi8(9);
        const __m128i lo = _mm_set1_epi8(0x28), span = _mm_set1_epi8(0x19);
        const __m128i cj = _mm_set1_epi8('J'), cu = _mm_set1_epi8('_');
        unsigned tm[4], dm[4];

        for (unsigned q = 0; q < 4; q++) {
            __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (p + 16 * q));
            __m128i v = _mm_sub_epi8(x, c0);
            __m128i w = _mm_sub_epi8(x, lo);
            /* '(' to 'A' (0x28..0x41): digits, '(', '+', '-', ':', '@', 'A' and a few others */
            __m128i r = _mm_cmpeq_epi8(_mm_min_epu8(w, span), w);

            r = _mm_or_si128(r, _mm_or_si128(_mm_cmpeq_epi8(x, cj), _mm_cmpeq_epi8(x, cu)));
            tm[q] = (unsigned) _mm_movemask_epi8(r);
            dm[q] = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, c9), v));
        }
        trig[c] = tm[0] | (uint64_t) tm[1] << 16 | (uint64_t) tm[2] << 32 | (uint64_t) tm[3] << 48;
        dig[c] = dm[0] | (uint64_t) dm[1] << 16 | (uint64_t) dm[2] << 32 | (uint64_t) dm[3] << 48;
    }
}
#else
/* (no SSE2 in this build: det_isa is never SSE2 or better, and nothing calls it) */
static void
det_chunks_sse2(const char *p, size_t nch, uint64_t *trig, uint64_t *dig)
{
    (void) p;
    (void) nch;
    (void) trig;
    (void) dig;
}
#endif


/*
 * Classifies the chunks of p[0..n): DET_BATCH chunks of 64 bytes at most,
 * or the last piece when n < 64. For chunk c, the bytes that may be
 * triggers (a superset: the caller asks the table) in trig[c] and its
 * digits in dig[c], as bits. Returns how many chunks.
 */
static size_t
det_chunks(const char *p, size_t n, uint64_t *trig, uint64_t *dig)
{
    size_t nch = n / 64 < DET_BATCH ? n / 64 : DET_BATCH;
    uint64_t m = 0, d = 0;

    if (nch > 0 && DET_AVX2 && det_isa == SL__GUARD_ISA_AVX2) {
        det_chunks_avx2(p, nch, trig, dig);
        return nch;
    }
    if (nch > 0 && DET_SSE2 && det_isa >= SL__GUARD_ISA_SSE2) {
        det_chunks_sse2(p, nch, trig, dig);
        return nch;
    }
    if (nch == 0) {
        nch = 1; /* the last piece */
    } else {
        n = 64;
    }
    for (size_t c = 0; c < nch; c++, p += 64) {
        m = d = 0;
        for (size_t k = 0; k < n && k < 64; k++) {
            unsigned char x = sl__guard_cls[(unsigned char) p[k]];

            m |= (x & SL__GUARD_C_TRIG) ? (uint64_t) 1 << k : 0;
            d |= (x & SL__GUARD_C_DIGIT) ? (uint64_t) 1 << k : 0;
        }
        trig[c] = m;
        dig[c] = d;
    }
    return nch;
}


void
sl__guard_detect(const char *t, size_t len, size_t from, unsigned mask, sl__guard_hits_t *out)
{
    det_scan_t sc;
    size_t b = from, bi = 0, bn = 0;
    uint64_t tb[DET_BATCH], db[DET_BATCH], carry;

    (void) sl__guard_isa(); /* det_isa chosen */
    memset(&sc, 0, sizeof(sc));
    sc.t = t;
    sc.len = len;
    sc.from = from;
    sc.mask = mask;
    sc.out = out;
    sc.skip = from;
    /* whether the byte before the chunk is a digit (then a run at its start is no run's start) */
    carry = b > 0 && b < len && sl__guard_digit((unsigned char) t[b - 1]) ? 1 : 0;
    while (b < len) {
        uint64_t trig, dig, m;

        if (bi == bn) {
            bn = det_chunks(t + b, len - b, tb, db);
            bi = 0;
        }
        trig = tb[bi];
        dig = db[bi];
        bi++;
        /* digits only where a run of them starts */
        m = (trig & ~dig) | (dig & ~((dig << 1) | carry));
        /* (bits below sc.skip are never set here: see the end of the loop) */
        while (m != 0) {
            unsigned k = (unsigned) __builtin_ctzll(m);
            size_t i = b + k;
            unsigned char c = (unsigned char) t[i];
            unsigned char p = i > 0 ? (unsigned char) t[i - 1] : ' ';
            unsigned want;

            m &= m - 1;
            if ((unsigned) (c - '0') < 10u) {
                /* a digit: the start of a run (the other digits are not in m) */
                uint64_t rest;
                size_t r;

                if (sl__guard_cls[p] & (SL__GUARD_C_ALPHA | SL__GUARD_C_NOSTART)) {
                    /* glued to a word or the tail of a number: an IBAN's check digits at most */
                    if ((sl__guard_cls[p] & SL__GUARD_C_ALPHA)
                        && (mask & (1u << SL_GUARD_DET_IBAN))) {
                        det_iban_at(&sc, i);
                    }
                    continue;
                }
                /* p is ',' '-' or ':' (bits 0, 1 and 14 from ',') */
                if ((unsigned) (p - ',') < 15u && ((0x4003u >> (p - ',')) & 1u) && i >= 2
                    && sl__guard_digit((unsigned char) t[i - 2])) {
                    continue; /* the tail of 12:30, 1,234, 12-34: no number starts */
                }
                /* the run's end: within the chunk, or further on (a chunk all digits has no 0 bit)
                 */
                rest = ~(dig >> k);
                r = rest != 0 ? i + (size_t) __builtin_ctzll(rest) : b + 64;
                if (r == b + 64) {
                    while (r < len && sl__guard_digit((unsigned char) t[r])) {
                        r++;
                    }
                }
                want = det_num_want(t, len, i, r) & mask;
                if (want != 0) {
                    det_number(&sc, i, r, want, r < len ? (unsigned char) t[r] : 0);
                }
                continue;
            }
            if (!(sl__guard_cls[c] & SL__GUARD_C_TRIG)) {
                continue;
            }
            /* what could start here at all (det_at looks closer) */
            if ((c == '-' || c == '_')
                && !(det_key_sep(p) || (c == '-' && i + 1 < len && t[i + 1] == '-'))) {
                continue; /* not a key prefix's first separator; a PEM line starts "--" */
            }
            if (c == ':' && !sl__guard_hex(p) && !(i + 1 < len && t[i + 1] == ':')) {
                continue;
            }
            if (c == ':' && sl__guard_hex(p) && i >= 2 && det_keychar((unsigned char) t[i - 2])
                && !sl__guard_hex((unsigned char) t[i - 2])) {
                continue; /* "name:", "v_1:": the word before it is not all hex digits */
            }
            if (c == ':' && sl__guard_digit(p)
                && (i < 2 || !det_keychar((unsigned char) t[i - 2])
                    || (sl__guard_digit((unsigned char) t[i - 2])
                        && (i < 3 || !det_keychar((unsigned char) t[i - 3]))))) {
                continue; /* 12:30, "Ticket 7:": the word before it does not start with a letter */
            }
            det_at(&sc, i, p);
            if (sc.skip > i + 1) {
                /* a key, a PEM block */
                m = sc.skip - b >= 64 ? 0 : m & (~(uint64_t) 0 << (sc.skip - b));
            }
        }
        /* a piece shorter than 64 bytes is the last: b then passes len */
        if (sc.skip > b + 64) {
            b = sc.skip;
            bn = bi; /* the chunks classified no longer start at b */
            carry = b < len && sl__guard_digit((unsigned char) t[b - 1]) ? 1 : 0;
        } else {
            b += 64;
            carry = dig >> 63;
        }
    }
}


/* What starts at (or around) the trigger byte t[i] (p: the byte before it, or ' '). */
static void
det_at(det_scan_t *sc, size_t i, unsigned char p)
{
    const char *t = sc->t;
    unsigned char c = (unsigned char) t[i];
    size_t e, s;
    bool open;

    switch (c) {
    case '@':
        if ((sc->mask & (1u << SL_GUARD_DET_EMAIL)) && (e = det_email(t, sc->len, i, &s)) != 0) {
            det_push(sc->out, sc->next, s, e, SL_GUARD_DET_EMAIL, false, sc->from);
        }
        return;
    case '+':
    case '(':
        /* a '(' opens "(415)" or nothing (det_phone looks closer) */
        if ((sc->mask & (1u << SL_GUARD_DET_PHONE)) && i >= sc->next[SL_GUARD_DET_PHONE]
            && !sl__guard_word(p) && p != '+' && (c == '+' || (i + 4 < sc->len && t[i + 4] == ')'))
            && (e = sl__guard_phone(t, sc->len, i)) != 0) {
            det_push(sc->out, sc->next, i, e, SL_GUARD_DET_PHONE, false, sc->from);
        }
        return;
    case '-':
        if (det_key_word(sc, i)) {
            return;
        }
        if ((sc->mask & (1u << SL_GUARD_DET_SECRET)) && p != '-' && i + 1 < sc->len
            && t[i + 1] == '-' && i >= sc->next[SL_GUARD_DET_SECRET]
            && (e = det_pem(t, sc->len, i, &open)) != 0) {
            det_push(sc->out, sc->next, i, e, SL_GUARD_DET_SECRET, open, sc->from);
            sc->skip = e;
        }
        return;
    case '_':
        det_key_word(sc, i);
        return;
    case ':':
        det_colon(sc, i);
        return;
    case 'A':
        /* AKIA, ASIA, AIza */
        if (!det_keychar(p) && i + 1 < sc->len && det_key_start('A', (unsigned char) t[i + 1])) {
            det_key_at(sc, i);
        }
        return;
    case 'J':
        if (i >= sc->from + 2 && t[i - 2] == 'e' && t[i - 1] == 'y'
            && (i == 2 || !det_keychar((unsigned char) t[i - 3]))) {
            det_key_at(sc, i - 2);
        }
        return;
    default:
        return;
    }
}


/* The check digits at t[i] of an IBAN whose two-letter country code starts a word. */
static void
det_iban_at(det_scan_t *sc, size_t i)
{
    const char *t = sc->t;
    size_t ws = i - 2, e;

    if (i >= sc->from + 2 && sl__guard_alpha((unsigned char) t[i - 1])
        && sl__guard_alpha((unsigned char) t[ws])
        && (ws == 0 || !det_keychar((unsigned char) t[ws - 1])) && ws >= sc->next[SL_GUARD_DET_IBAN]
        && ws >= sc->next[SL_GUARD_DET_SECRET] && (e = sl__guard_iban(t, sc->len, ws)) != 0) {
        det_push(sc->out, sc->next, ws, e, SL_GUARD_DET_IBAN, false, sc->from);
    }
}


/*
 * The detectors a number starting with the run of digits t[i..r) could be
 * (bits 1u << sl_guard_det_e; usually none): what the run's length and
 * the two bytes after it allow.
 */
static inline unsigned
det_num_want(const char *t, size_t len, size_t i, size_t r)
{
    size_t n = r - i;
    unsigned char d0 = (unsigned char) t[i];
    unsigned char c1 = r < len ? (unsigned char) t[r] : 0;
    bool card = d0 >= '2' && d0 <= '6';
    unsigned want = 0;

    if (card && n >= 13 && n <= 19) {
        want |= 1u << SL_GUARD_DET_CARD;
    }
    if (c1 == ' ' || c1 == '-' || c1 == '.') {
        bool d2 = r + 1 < len && sl__guard_digit((unsigned char) t[r + 1]);

        if (n == 3 || (n == 1 && d0 == '1')) {
            want |= 1u << SL_GUARD_DET_PHONE;
        }
        if (c1 == '.') {
            want |= n <= 3 && d2 ? 1u << SL_GUARD_DET_IP : 0;
        } else if (d2 && n >= 2) {
            /* groups: "4111 1111 ...", "020 7946 0958" */
            want |= card && n <= 6 ? 1u << SL_GUARD_DET_CARD : 0;
            want |= d0 == '0' && n <= 5 ? 1u << SL_GUARD_DET_PHONE : 0;
        }
    } else if (n <= 4 && (c1 == ':' || sl__guard_hex(c1)) && (i == 0 || t[i - 1] != ':')) {
        /*
         * IPv6 (the byte before is neither a letter nor a digit: see
         * sl__guard_detect); after "N:" an address goes on with a hex
         * digit, ':' or '.' (det_ipv6 asks the same), not "Ticket 7: the"
         */
        if (c1 != ':'
            || (r + 1 < len
                && (sl__guard_hex((unsigned char) t[r + 1]) || t[r + 1] == ':'
                    || t[r + 1] == '.'))) {
            want |= 1u << SL_GUARD_DET_IP;
        }
    }
    return want;
}


/*
 * A number's start at the run of digits t[i..r), for the detectors in want
 * (det_num_want(): card, phone, IPv4 or IPv6); c1 is the byte after the
 * run (0 at the text's end).
 */
static void
det_number(det_scan_t *sc, size_t i, size_t r, unsigned want, unsigned char c1)
{
    const char *t = sc->t;
    size_t len = sc->len, e;

    /* (the scan made sure that a number may start here) */
    if ((want & (1u << SL_GUARD_DET_CARD)) && i >= sc->next[SL_GUARD_DET_CARD]
        && (e = sl__guard_card(t, len, i, r)) != 0) {
        det_push(sc->out, sc->next, i, e, SL_GUARD_DET_CARD, false, sc->from);
    }
    if ((want & (1u << SL_GUARD_DET_PHONE)) && i >= sc->next[SL_GUARD_DET_PHONE]
        && (e = sl__guard_phone(t, len, i)) != 0) {
        det_push(sc->out, sc->next, i, e, SL_GUARD_DET_PHONE, false, sc->from);
    }
    if ((want & (1u << SL_GUARD_DET_IP)) && i >= sc->next[SL_GUARD_DET_IP]) {
        /* IPv4 after a '.', else IPv6 (what det_num_want() asked for) */
        e = c1 == '.' ? sl__guard_ipv4(t, len, i) : sl__guard_ipv6(t, len, i);
        if (e != 0) {
            det_push(sc->out, sc->next, i, e, SL_GUARD_DET_IP, false, sc->from);
        }
    }
}


/*
 * A key whose prefix holds the '-' or '_' at t[j] (sk-, ghp_, github_pat_,
 * ...: the separator is at most 6 bytes into the word). True when one
 * matched.
 */
static bool
det_key_word(det_scan_t *sc, size_t j)
{
    size_t ws = j;

    if (!(sc->mask & (1u << SL_GUARD_DET_SECRET))) {
        return false;
    }
    while (ws > 0 && det_keychar((unsigned char) sc->t[ws - 1])) {
        ws--;
        if (j - ws > 6) {
            return false;
        }
    }
    if (ws == j || ws < sc->from
        || !det_key_start((unsigned char) sc->t[ws], (unsigned char) sc->t[ws + 1])) {
        return false;
    }
    return det_key_at(sc, ws);
}


/* A key at the word start t[ws]: true when one matched (the scan goes on after it). */
static bool
det_key_at(det_scan_t *sc, size_t ws)
{
    size_t e;
    bool open;

    if (!(sc->mask & (1u << SL_GUARD_DET_SECRET)) || ws < sc->next[SL_GUARD_DET_SECRET]
        || ws + 1 == sc->tried) {
        return false;
    }
    sc->tried = ws + 1;
    e = det_secret(sc->t, sc->len, ws, &open);
    if (e == 0) {
        return false;
    }
    det_push(sc->out, sc->next, ws, e, SL_GUARD_DET_SECRET, open, sc->from);
    if (e > sc->skip) {
        sc->skip = e;
    }
    return true;
}


/* IPv6 at the ':' of t[j]: after a word of 1 to 4 hex digits that starts with a letter, or "::". */
static void
det_colon(det_scan_t *sc, size_t j)
{
    const char *t = sc->t;
    size_t len = sc->len, ws = j, e;
    unsigned char p = j > 0 ? (unsigned char) t[j - 1] : ' ', q;

    if (!(sc->mask & (1u << SL_GUARD_DET_IP))) {
        return;
    }
    while (ws > 0 && j - ws < 5 && det_keychar((unsigned char) t[ws - 1])) {
        ws--;
    }
    q = ws > 0 ? (unsigned char) t[ws - 1] : ' ';
    if (ws < j && j - ws <= 4 && ws >= sc->from && !det_keychar(q) && q != ':' && q != '.'
        && sl__guard_alpha((unsigned char) t[ws]) && sl__guard_hex((unsigned char) t[ws])
        && ws >= sc->next[SL_GUARD_DET_IP] && ws >= sc->next[SL_GUARD_DET_SECRET]
        && (e = sl__guard_ipv6(t, len, ws)) != 0) {
        det_push(sc->out, sc->next, ws, e, SL_GUARD_DET_IP, false, sc->from);
    }
    if (j + 1 < len && t[j + 1] == ':' && !sl__guard_hex(p) && !sl__guard_word(p) && p != ':'
        && p != '.' && j >= sc->next[SL_GUARD_DET_IP] && (e = sl__guard_ipv6(t, len, j)) != 0) {
        det_push(sc->out, sc->next, j, e, SL_GUARD_DET_IP, false, sc->from);
    }
}


#if DET_AVX2
/* sl__guard_plain() of p[0..*done) with AVX2 (*done: the 32-byte blocks of n). */
static unsigned
det_plain_avx2(const char *p, size_t n, size_t *done)
{
    __m256i esc = _mm256_setzero_si256(), high = _mm256_setzero_si256();
    size_t i = 0;

    /* 64 bytes a step, then 32 */
    for (; i + 64 <= n; i += 64) {
        __m256i x = _mm256_loadu_si256((const __m256i *) (const void *) (p + i));
        __m256i y = _mm256_loadu_si256((const __m256i *) (const void *) (p + i + 32));

        esc = _mm256_or_si256(esc, _mm256_cmpeq_epi8(x, _mm256_set1_epi8('\\')));
        esc = _mm256_or_si256(esc, _mm256_cmpeq_epi8(y, _mm256_set1_epi8('\\')));
        /* signed: below 0x20, or 0x80 and above */
        high = _mm256_or_si256(high, _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), x));
        high = _mm256_or_si256(high, _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), y));
    }
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *) (const void *) (p + i));

        esc = _mm256_or_si256(esc, _mm256_cmpeq_epi8(x, _mm256_set1_epi8('\\')));
        high = _mm256_or_si256(high, _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), x));
    }
    *done = i;
    return (_mm256_movemask_epi8(esc) != 0 ? SL__GUARD_PLAIN_ESC : 0)
           | (_mm256_movemask_epi8(high) != 0 ? SL__GUARD_PLAIN_HIGH : 0);
}
#else
/* (no AVX2 code in this build: det_isa is never AVX2, and nothing calls it) */
static unsigned
det_plain_avx2(const char *p, size_t n, size_t *done)
{
    (void) p;
    (void) n;
    *done = 0;
    return 0;
}
#endif


#if DET_SSE2
/* sl__guard_plain() of p[*done..) with SSE2, sixteen bytes a step (*done: where it stopped). */
static unsigned
det_plain_sse2(const char *p, size_t n, size_t *done)
{
    __m128i esc = _mm_setzero_si128(), high = _mm_setzero_si128();
    size_t i = *done;

    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (p + i));

        esc = _mm_or_si128(esc, _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
        /* signed: below 0x20, or 0x80 and above */
        high = _mm_or_si128(high, _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
    }
    *done = i;
    return (_mm_movemask_epi8(esc) != 0 ? SL__GUARD_PLAIN_ESC : 0)
           | (_mm_movemask_epi8(high) != 0 ? SL__GUARD_PLAIN_HIGH : 0);
}
#else
/* (no SSE2 in this build: det_isa is never SSE2 or better, and nothing calls it) */
static unsigned
det_plain_sse2(const char *p, size_t n, size_t *done)
{
    (void) p;
    (void) n;
    (void) done;
    return 0;
}
#endif


unsigned
sl__guard_plain(const char *p, size_t n)
{
    unsigned r = 0;
    size_t i = 0;

    (void) sl__guard_isa(); /* det_isa chosen */
    if (DET_AVX2 && det_isa == SL__GUARD_ISA_AVX2) {
        r = det_plain_avx2(p, n, &i);
    }
    if (DET_SSE2 && det_isa >= SL__GUARD_ISA_SSE2) {
        r |= det_plain_sse2(p, n, &i);
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char) p[i];

        r |= c == '\\' ? SL__GUARD_PLAIN_ESC : 0;
        r |= c < 0x20 || c >= 0x80 ? SL__GUARD_PLAIN_HIGH : 0;
    }
    return r;
}


/* ------------------------------------------------------------------ email */

/*
 * The address around the '@' at t[at]: its end, with *start; 0 when it is
 * not one. The domain is checked as it is read: a label ends at each '.'
 * (not empty, at most 63 bytes, no '-' at either end), and the last label
 * is 2 to 24 letters.
 */
static size_t
det_email(const char *t, size_t len, size_t at, size_t *start)
{
    size_t k = at, j = at + 1, e, ls = at + 1, bad = SIZE_MAX;
    size_t lim = len - at > SL__GUARD_EMAIL_MAX + 1 ? at + SL__GUARD_EMAIL_MAX + 1 : len;
    size_t low = at > 65 ? at - 65 : 0;

    if (DET_SSE2 && at >= 16 && det_isa >= SL__GUARD_ISA_SSE2) {
        /* the sixteen bytes before the '@' at once; byte by byte when all are local */
        k = at - det_email_local16(t + at - 16);
    }
    while (k > low && (sl__guard_cls[(unsigned char) t[k - 1]] & SL__GUARD_C_LOCAL)) {
        k--;
    }
    if (at - k > 64) {
        return 0; /* longer than a local part may be */
    }
    while (k < at && t[k] == '.') {
        k++;
    }
    if (k == at || t[at - 1] == '.') {
        return 0;
    }
    if (DET_SSE2 && len - at >= 17 && det_isa >= SL__GUARD_ISA_SSE2) {
        /* a domain that ends within the sixteen bytes after the '@': found at once */
        j = det_email_domain16(t, at, &bad);
    }
    while (j < lim) {
        unsigned char c = (unsigned char) t[j];

        if (sl__guard_cls[c] & (SL__GUARD_C_DIGIT | SL__GUARD_C_ALPHA | SL__GUARD_C_DASH)) {
            j++;
            continue;
        }
        if (c != '.' || j + 1 >= len || t[j + 1] == '.') {
            break;
        }
        /* the label t[ls..j) ends here: the first bad one's end is kept */
        if (bad == SIZE_MAX && (j == ls || j - ls > 63 || t[ls] == '-' || t[j - 1] == '-')) {
            bad = j;
        }
        ls = ++j;
    }
    e = j;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) {
        e--;
    }
    if (e < len && (sl__guard_word((unsigned char) t[e]) || t[e] == '@')) {
        return 0;
    }
    /* 4..253 bytes, every label before the last good, the last 2..24 letters after a '.' */
    if (e - at - 1 < 4 || e - at - 1 > 253 || bad < e) {
        return 0;
    }
    for (j = e; j > at + 1 && sl__guard_alpha((unsigned char) t[j - 1]); j--) {
        if (e - j >= 24) {
            return 0;
        }
    }
    if (e - j < 2 || t[j - 1] != '.') {
        return 0;
    }
    *start = k;
    return e;
}


#if DET_SSE2
/* The letters and digits of p[0..16) (bits), and in *dash its '-', in *dot its '.'. */
static unsigned
det_alnum16(__m128i x, unsigned *dash, unsigned *dot)
{
    __m128i v = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    __m128i w = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
    __m128i d = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(9)), v);
    __m128i a = _mm_cmpeq_epi8(_mm_min_epu8(w, _mm_set1_epi8(25)), w);

    *dash = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('-')));
    *dot = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')));
    return (unsigned) _mm_movemask_epi8(_mm_or_si128(d, a));
}


/*
 * How many of the sixteen bytes p[0..16) that end right before an '@' are
 * a local part's ([A-Za-z0-9._%+-]) counted back from the '@'; 0 when all
 * sixteen are (det_email then goes on byte by byte from the '@').
 */
static size_t
det_email_local16(const char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *) (const void *) p);
    unsigned dash, dot, m = det_alnum16(x, &dash, &dot) | dash | dot;

    m |= (unsigned) _mm_movemask_epi8(_mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('_')), _mm_cmpeq_epi8(x, _mm_set1_epi8('%'))),
        _mm_cmpeq_epi8(x, _mm_set1_epi8('+'))));
    if (m == 0xffffu) {
        return 0;
    }
    /* the run of ones at the top: the bits above the highest zero */
    return (size_t) (15 - (31 - __builtin_clz(~m & 0xffffu)));
}


/*
 * det_email()'s domain loop over t[at + 1..at + 17) at once (t holds them):
 * where the run of [A-Za-z0-9-] labels joined by single dots ends, with
 * *bad the end of the first bad label (empty, or with '-' at either end);
 * at + 1 (the loop then runs from there as before) when the run does not
 * end within the sixteen bytes or a dot is their last.
 */
static size_t
det_email_domain16(const char *t, size_t at, size_t *bad)
{
    __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (t + at + 1));
    unsigned dash, dot, m = det_alnum16(x, &dash, &dot) | dash;
    /* a byte of neither kind ends it, and so does the first '.' of ".." */
    unsigned stop = (~(m | dot) | (dot & (dot >> 1))) & 0xffffu;
    size_t ls = at + 1, e;

    if (stop == 0) {
        return at + 1;
    }
    e = at + 1 + (size_t) __builtin_ctz(stop);
    /* the labels that end at a '.' before the end (a few) */
    for (unsigned d = dot & (((unsigned) 1 << __builtin_ctz(stop)) - 1u); d != 0; d &= d - 1) {
        size_t j = at + 1 + (size_t) __builtin_ctz(d);

        if (*bad == SIZE_MAX && (j == ls || t[ls] == '-' || t[j - 1] == '-')) {
            *bad = j;
        }
        ls = j + 1;
    }
    return e;
}
#else
/* (no SSE2 in this build: never called; these answers leave det_email() byte by byte) */
static size_t
det_email_local16(const char *p)
{
    (void) p;
    return 0;
}


static size_t
det_email_domain16(const char *t, size_t at, size_t *bad)
{
    (void) t;
    (void) bad;
    return at + 1;
}
#endif


/* ----------------------------------------------------------------- secret */

static size_t
det_secret(const char *t, size_t len, size_t i, bool *open)
{
    size_t j, lo, hi;

    *open = false;
    /* the group of det_prefixes starting with t[i] */
    switch (t[i]) {
    case 'e':
        return det_jwt(t, len, i);
    case 's':
        lo = 0, hi = 3;
        break;
    case 'r':
        lo = 3, hi = 4;
        break;
    case 'A':
        lo = 4, hi = 7;
        break;
    case 'g':
        lo = 7, hi = 14;
        break;
    case 'x':
        lo = 14, hi = 20;
        break;
    case 'h':
        lo = 20, hi = 21;
        break;
    default:
        return 0;
    }
    for (size_t k = lo; k < hi; k++) {
        const det_prefix_t *p = &det_prefixes[k];

        if (len - i < p->plen || t[i + 1] != p->prefix[1]
            || memcmp(t + i, p->prefix, p->plen) != 0) {
            continue;
        }
        j = i + p->plen;
        if (p->aws) {
            while (j < len && j - i - p->plen < 16
                   && (sl__guard_digit((unsigned char) t[j]) || (unsigned) (t[j] - 'A') < 26u)) {
                j++;
            }
            if (j - i - p->plen != 16 || (j < len && det_keychar((unsigned char) t[j]))) {
                return 0;
            }
            return j;
        }
        while (j < len && det_keychar((unsigned char) t[j])) {
            j++;
        }
        return j - i - p->plen >= p->min ? j : 0;
    }
    return 0;
}


/* eyJ<header>.eyJ<payload>.<signature> (the signature may be empty: alg none). */
static size_t
det_jwt(const char *t, size_t len, size_t i)
{
    size_t j = i, s;

    for (int part = 0; part < 3; part++) {
        s = j;
        if (part < 2 && (len - j < 3 || memcmp(t + j, "eyJ", 3) != 0)) {
            return 0;
        }
        while (j < len && det_keychar((unsigned char) t[j])) {
            j++;
        }
        if (part < 2) {
            if (j - s < 10 || j >= len || t[j] != '.') {
                return 0;
            }
            j++;
        }
    }
    return j;
}


/* The end of a PEM label "... PRIVATE KEY-----" starting at t[j], or 0. */
static size_t
det_pem_label(const char *t, size_t len, size_t j)
{
    static const char tail[] = "PRIVATE KEY-----";
    size_t s = j;

    while (j < len && j - s < 64 && ((unsigned) (t[j] - 'A') < 26u || t[j] == ' ')) {
        j++;
    }
    if (j - s < 11 || len - (j - 11) < sizeof(tail) - 1
        || memcmp(t + j - 11, tail, sizeof(tail) - 1) != 0) {
        return 0;
    }
    return j - 11 + sizeof(tail) - 1;
}


/* -----BEGIN ... PRIVATE KEY----- to its END line (or the text's end: open). */
static size_t
det_pem(const char *t, size_t len, size_t i, bool *open)
{
    const char *e;
    size_t hdr, k, end;

    *open = false;
    if (len - i < 11 || memcmp(t + i, "-----BEGIN ", 11) != 0) {
        return 0;
    }
    hdr = det_pem_label(t, len, i + 11);
    if (hdr == 0) {
        return 0;
    }
    e = det_find(t + hdr, len - hdr, "-----END ");
    while (e != NULL) {
        k = (size_t) (e - t) + 9;
        end = det_pem_label(t, len, k);
        if (end != 0) {
            return end;
        }
        e = det_find(t + k, len - k, "-----END ");
    }
    *open = true;
    return len;
}


static const char *
det_find(const char *t, size_t len, const char *s)
{
    size_t n = strlen(s);

    for (const char *p = t; p != NULL && (size_t) (t + len - p) >= n;) {
        p = memchr(p, s[0], (size_t) (t + len - p) - n + 1);
        if (p == NULL) {
            return NULL;
        }
        if (memcmp(p, s, n) == 0) {
            return p;
        }
        p++;
    }
    return NULL;
}


/* ------------------------------------------------------------------- deny */

void
sl__guard_deny(const sl_guard_pattern_t *p, const char *t, size_t len, size_t from, bool at_start,
               sl__guard_hits_t *out)
{
    if (p->regex) {
        deny_regex(p, t, len, from, at_start, out);
    } else {
        deny_literal(p, t, len, from, out);
    }
}


/* Case-insensitive, white space runs as one space, whole words at the word ends. */
static void
deny_literal(const sl_guard_pattern_t *p, const char *t, size_t len, size_t from,
             sl__guard_hits_t *out)
{
    const unsigned char *lit = (const unsigned char *) p->lit;
    bool wstart = sl__guard_word(lit[0]), wend = sl__guard_word(lit[p->len - 1]);
    size_t i = from;

    while (i < len) {
        size_t j = i, k = 0;

        if (det_lower((unsigned char) t[i]) != lit[0]
            || (wstart && i > 0 && sl__guard_word((unsigned char) t[i - 1]))) {
            i++;
            continue;
        }
        while (k < p->len && j < len) {
            if (lit[k] == ' ') {
                if (!det_space((unsigned char) t[j])) {
                    break;
                }
                while (j < len && det_space((unsigned char) t[j])) {
                    j++;
                }
                k++;
            } else if (det_lower((unsigned char) t[j]) == lit[k]) {
                j++;
                k++;
            } else {
                break;
            }
        }
        if (k == p->len && !(wend && j < len && sl__guard_word((unsigned char) t[j]))) {
            sl__guard_hits_push(out, i, j, SL_GUARD_DET_DENY, false);
            i = j;
            continue;
        }
        if (j == len && k < p->len && i < out->partial) {
            out->partial = i; /* the next piece may complete it */
        }
        i++;
    }
}


/*
 * regexec with REG_STARTEND: glibc keeps within [rm_so, rm_eo), but t
 * must still be a C string (the sanitizers' interceptor and other libcs
 * read up to its NUL), and texts here are not: t is matched as a copy.
 */
static void
deny_regex(const sl_guard_pattern_t *p, const char *text, size_t len, size_t from, bool at_start,
           sl__guard_hits_t *out)
{
    size_t pos = from;
    regmatch_t m;
    char *t;

    if (from >= len) {
        return;
    }
    t = sl_xmalloc(len + 1);
    memcpy(t, text, len);
    t[len] = '\0';
    while (pos < len) {
        size_t s, e;

        m.rm_so = (regoff_t) pos;
        m.rm_eo = (regoff_t) len;
        if (regexec(&p->re, t, 1, &m, REG_STARTEND | (pos > 0 || !at_start ? REG_NOTBOL : 0))
            != 0) {
            break;
        }
        s = (size_t) m.rm_so;
        e = (size_t) m.rm_eo;
        if (e <= s) {
            pos = s + 1;
            continue;
        }
        /* whole UTF-8 characters only */
        while (s > 0 && ((unsigned char) t[s] & 0xc0) == 0x80) {
            s--;
        }
        while (e < len && ((unsigned char) t[e] & 0xc0) == 0x80) {
            e++;
        }
        if (s >= from) {
            sl__guard_hits_push(out, s, e, SL_GUARD_DET_DENY, false);
        }
        pos = e;
    }
    free(t);
}
