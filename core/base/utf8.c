/*
 * Whether bytes are text a JSON string may hold as they are (what the JSON
 * reader, core/base/json.c, takes between its escapes): no control byte
 * (below 0x20) and valid UTF-8, with no overlong form, no surrogate,
 * nothing past U+10FFFF and no sequence cut short.
 *
 * Byte by byte this is slow on text in other scripts (a mispredicted
 * branch a character: 25 us for 20 KiB of Cyrillic), and the guard and
 * the JSON reader ask it of every string with a byte outside printable
 * ASCII, which in real prompts is most of them. With AVX2 (when the CPU
 * has it, chosen at run time) it takes 32 bytes a step, by the lookup
 * method of Keiser and Lemire ("Validating UTF-8 in less than one
 * instruction per byte", 2021): every error of a pair of bytes is one bit
 * in three 16-entry tables, looked up by the first byte's high and low
 * nibbles and the second byte's high nibble; a bit set in all three is an
 * error. The one case that needs more than a pair, a third or fourth byte
 * of a sequence, is where the byte two before starts a three-byte sequence
 * or the byte three before a four-byte one: there the pair must be two
 * continuation bytes, and nowhere else. A block of ASCII only checks for
 * control bytes and for a sequence the block before left open, and four
 * such blocks in a row take one branch: a prompt in a Latin script is
 * mostly ASCII, and 20 KiB of README.md with one non-ASCII character is
 * checked 2.4 times as fast so (430 ns against 1040 ns, one thread, this
 * function alone). After a block that is not ASCII the wide step waits for
 * one that is, so text in other scripts does not pay for it.
 */
#include "core/base/str.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "core/base/errno.h"

/* 1 when the AVX2 code is built (target attribute, chosen at run time); 0: a stand-in */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define UTF8_AVX2 1
#include <immintrin.h>
#else
#define UTF8_AVX2 0
#endif

/* the errors of a pair of bytes (first, second), one bit each */
#define U8_TOO_SHORT  0x01u /* a lead byte not followed by a continuation byte */
#define U8_TOO_LONG   0x02u /* ASCII followed by a continuation byte */
#define U8_OVERLONG_3 0x04u /* E0 80..9F */
#define U8_TOO_LARGE  0x08u /* F4 90..BF, F5..FF 90..BF */
#define U8_SURROGATE  0x10u /* ED A0..BF */
#define U8_OVERLONG_2 0x20u /* C0..C1 80..BF */
#define U8_HIGH_8X    0x40u /* F0 80..8F (overlong), F5..FF 80..8F (too large) */
#define U8_TWO_CONTS  0x80u /* two continuation bytes: an error unless a sequence's 3rd or 4th */
#define U8_ANY        (U8_TOO_SHORT | U8_TOO_LONG | U8_TWO_CONTS)

static int utf8_scalar(const unsigned char *p, size_t n);
#if UTF8_AVX2
static int utf8_avx2(const char *p, size_t n) __attribute__((target("avx2")));
#endif
static int utf8_avx2(const char *p, size_t n);
static bool utf8_cpu_avx2(void);

/*
 * Whether sl_utf8_text() uses AVX2: -1 until its first call
 * (sl_utf8_text_simd() sets it). Atomic: the thread pool's decodes and
 * guard checks call it beside the loop (all store the same answer).
 */
static _Atomic int utf8_simd = -1;

/* By the first byte's high nibble. */
static const unsigned char utf8_first_high[16] = {
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TWO_CONTS,
    U8_TWO_CONTS,
    U8_TWO_CONTS,
    U8_TWO_CONTS,
    U8_TOO_SHORT | U8_OVERLONG_2,                /* C */
    U8_TOO_SHORT,                                /* D */
    U8_TOO_SHORT | U8_OVERLONG_3 | U8_SURROGATE, /* E */
    U8_TOO_SHORT | U8_TOO_LARGE | U8_HIGH_8X,    /* F */
};

/* By the first byte's low nibble. */
static const unsigned char utf8_first_low[16] = {
    U8_ANY | U8_OVERLONG_3 | U8_OVERLONG_2 | U8_HIGH_8X, /* x0: E0, C0, F0 */
    U8_ANY | U8_OVERLONG_2,                              /* x1: C1 */
    U8_ANY,
    U8_ANY,
    U8_ANY | U8_TOO_LARGE,              /* x4: F4 */
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X, /* F5.. */
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X | U8_SURROGATE, /* xD: ED */
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
    U8_ANY | U8_TOO_LARGE | U8_HIGH_8X,
};

/* By the second byte's high nibble. */
static const unsigned char utf8_second_high[16] = {
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_HIGH_8X,   /* 8 */
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_TOO_LARGE, /* 9 */
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,  /* A */
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,  /* B */
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
};


int
sl_utf8_text(const char *p, size_t n)
{
    int simd = atomic_load_explicit(&utf8_simd, memory_order_relaxed);

    if (simd < 0) {
        simd = utf8_cpu_avx2() ? 1 : 0;
        atomic_store_explicit(&utf8_simd, simd, memory_order_relaxed);
    }
    if (UTF8_AVX2 && simd == 1) {
        return utf8_avx2(p, n);
    }
    return utf8_scalar((const unsigned char *) p, n);
}


bool
sl_utf8_text_simd(bool on)
{
    int simd = on && utf8_cpu_avx2() ? 1 : 0;

    atomic_store_explicit(&utf8_simd, simd, memory_order_relaxed);
    return simd == 1;
}


/* Byte by byte: a character at a time. */
static int
utf8_scalar(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;

    while (p < end) {
        size_t k;

        if (*p >= 0x20 && *p < 0x80) {
            p++;
            continue;
        }
        k = sl_utf8_char_len((const char *) p, (size_t) (end - p));
        if (*p < 0x20 || k == 0) {
            return SL_EPARSE;
        }
        p += k;
    }
    return 0;
}


#if UTF8_AVX2
/*
 * 32 bytes a step; the last block is the rest, padded with spaces (ASCII,
 * not a control byte: a sequence it cuts short is an error as at any
 * ASCII byte). err collects errors as set bits; open, what the block
 * before left open: a lead byte among its last three whose sequence runs
 * past it.
 */
static int
utf8_avx2(const char *p, size_t n)
{
    const __m256i first_high = _mm256_broadcastsi128_si256(
        _mm_loadu_si128((const __m128i *) (const void *) utf8_first_high));
    const __m256i first_low = _mm256_broadcastsi128_si256(
        _mm_loadu_si128((const __m128i *) (const void *) utf8_first_low));
    const __m256i second_high = _mm256_broadcastsi128_si256(
        _mm_loadu_si128((const __m128i *) (const void *) utf8_second_high));
    const __m256i nib = _mm256_set1_epi8(0x0f);
    const __m256i ctl = _mm256_set1_epi8(0x1f);
    /* the last three bytes of a block: a lead byte of 4, 3 or 2 bytes there is left open */
    const __m256i open_max = _mm256_setr_epi8(
        (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff,
        (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff,
        (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff,
        (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff,
        (char) 0xff, (char) 0xef, (char) 0xdf, (char) 0xbf);
    __m256i prev = _mm256_set1_epi8(0x20), err = _mm256_setzero_si256();
    __m256i open = _mm256_setzero_si256();
    char last[32];
    size_t i = 0;
    bool wide = true; /* try 128 bytes of ASCII at once (not after text that was not) */

    for (;;) {
        __m256i in, before, p1, p2, p3, special, must;

        if (wide && i + 128 <= n) {
            /* 128 bytes of ASCII take one branch: only control bytes to look for */
            __m256i a = _mm256_loadu_si256((const __m256i *) (const void *) (p + i));
            __m256i b = _mm256_loadu_si256((const __m256i *) (const void *) (p + i + 32));
            __m256i c = _mm256_loadu_si256((const __m256i *) (const void *) (p + i + 64));
            __m256i d = _mm256_loadu_si256((const __m256i *) (const void *) (p + i + 96));

            if (_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)))
                == 0) {
                __m256i low = _mm256_min_epu8(_mm256_min_epu8(a, b), _mm256_min_epu8(c, d));

                err = _mm256_or_si256(err, open);
                err = _mm256_or_si256(err, _mm256_cmpeq_epi8(_mm256_min_epu8(low, ctl), low));
                open = _mm256_setzero_si256();
                prev = d;
                i += 128;
                continue;
            }
            wide = false; /* until a block of ASCII: other scripts pay no second look */
        }
        if (i + 32 <= n) {
            in = _mm256_loadu_si256((const __m256i *) (const void *) (p + i));
        } else if (i < n) {
            memset(last, ' ', sizeof(last));
            memcpy(last, p + i, n - i);
            in = _mm256_loadu_si256((const __m256i *) (const void *) last);
        } else {
            break;
        }
        i += 32;
        /* control bytes: x <= 0x1f */
        err = _mm256_or_si256(err, _mm256_cmpeq_epi8(_mm256_min_epu8(in, ctl), in));
        if (_mm256_movemask_epi8(in) == 0) {
            /* ASCII: only a sequence left open before is an error */
            err = _mm256_or_si256(err, open);
            open = _mm256_setzero_si256();
            prev = in;
            wide = true;
            continue;
        }
        /* the bytes one, two and three before each byte: the block before's last ones first */
        before = _mm256_permute2x128_si256(prev, in, 0x21);
        p1 = _mm256_alignr_epi8(in, before, 15);
        p2 = _mm256_alignr_epi8(in, before, 14);
        p3 = _mm256_alignr_epi8(in, before, 13);
        special = _mm256_and_si256(
            _mm256_and_si256(
                _mm256_shuffle_epi8(first_high, _mm256_and_si256(_mm256_srli_epi16(p1, 4), nib)),
                _mm256_shuffle_epi8(first_low, _mm256_and_si256(p1, nib))),
            _mm256_shuffle_epi8(second_high, _mm256_and_si256(_mm256_srli_epi16(in, 4), nib)));
        /* 0x80 where the byte two before is E0.. or the one three before F0..: a 3rd or 4th */
        must = _mm256_and_si256(
            _mm256_or_si256(_mm256_subs_epu8(p2, _mm256_set1_epi8((char) (0xe0 - 0x80))),
                            _mm256_subs_epu8(p3, _mm256_set1_epi8((char) (0xf0 - 0x80)))),
            _mm256_set1_epi8((char) 0x80));
        err = _mm256_or_si256(err, _mm256_xor_si256(must, special));
        open = _mm256_subs_epu8(in, open_max);
        prev = in;
    }
    err = _mm256_or_si256(err, open); /* a sequence the text ends in */
    return _mm256_testz_si256(err, err) ? 0 : SL_EPARSE;
}


/* Whether this CPU runs AVX2. */
static bool
utf8_cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#else
/* (no AVX2 code in this build: utf8_simd is never 1, and nothing calls it) */
static int
utf8_avx2(const char *p, size_t n)
{
    return utf8_scalar((const unsigned char *) p, n);
}


static bool
utf8_cpu_avx2(void)
{
    return false;
}
#endif
