/*
 * The number detectors of sl__guard_detect() (guard_detect.c, which says
 * what each matches): payment cards (Luhn), phone numbers, IPv4 and IPv6
 * addresses, and IBANs (mod 97). The scan calls each at a place where a
 * number may start, and each takes a bounded look: the end of its match,
 * or 0. sl__guard_simd() picks their SSE2 shortcuts as it picks the scan's,
 * so each instruction set finds the same matches (test_guard_diff).
 */
#include "core/gateway/guard_internal.h"

#include <arpa/inet.h>
#include <string.h>

/* What the build has: 1 or 0, tested in the code (as guard_detect.c's DET_SSE2). */
#if defined(__SSE2__)
#define NUM_SSE2 1
#include <emmintrin.h>
#else
#define NUM_SSE2 0
#endif

#define NUM_CARD_GROUPS 24
#define NUM_IPV6_MAX    45
#define NUM_GROUP_MAX   8 /* the longest group num_group_tail() counts as one */

typedef struct num_iban_len {
    char cc[3];
    unsigned char len;
} num_iban_len_t;

/* ISO 13616 IBAN lengths by country (the SWIFT registry). */
static const num_iban_len_t num_iban_lens[] = {
    { "AD", 24 }, { "AE", 23 }, { "AL", 28 }, { "AT", 20 }, { "AZ", 28 }, { "BA", 20 },
    { "BE", 16 }, { "BG", 22 }, { "BH", 22 }, { "BI", 27 }, { "BR", 29 }, { "BY", 28 },
    { "CH", 21 }, { "CR", 22 }, { "CY", 28 }, { "CZ", 24 }, { "DE", 22 }, { "DJ", 27 },
    { "DK", 18 }, { "DO", 28 }, { "EE", 20 }, { "EG", 29 }, { "ES", 24 }, { "FI", 18 },
    { "FK", 18 }, { "FO", 18 }, { "FR", 27 }, { "GB", 22 }, { "GE", 22 }, { "GI", 23 },
    { "GL", 18 }, { "GR", 27 }, { "GT", 28 }, { "HR", 21 }, { "HU", 28 }, { "IE", 22 },
    { "IL", 23 }, { "IQ", 23 }, { "IS", 26 }, { "IT", 27 }, { "JO", 30 }, { "KW", 30 },
    { "KZ", 20 }, { "LB", 28 }, { "LC", 32 }, { "LI", 21 }, { "LT", 20 }, { "LU", 20 },
    { "LV", 21 }, { "LY", 25 }, { "MC", 27 }, { "MD", 24 }, { "ME", 22 }, { "MK", 19 },
    { "MN", 20 }, { "MR", 27 }, { "MT", 31 }, { "MU", 30 }, { "NI", 28 }, { "NL", 18 },
    { "NO", 15 }, { "OM", 23 }, { "PK", 24 }, { "PL", 28 }, { "PS", 29 }, { "PT", 25 },
    { "QA", 29 }, { "RO", 24 }, { "RS", 22 }, { "RU", 33 }, { "SA", 24 }, { "SC", 31 },
    { "SD", 18 }, { "SE", 24 }, { "SI", 19 }, { "SK", 24 }, { "SM", 27 }, { "SO", 23 },
    { "ST", 25 }, { "SV", 28 }, { "TL", 23 }, { "TN", 24 }, { "TR", 26 }, { "UA", 29 },
    { "VA", 22 }, { "VG", 24 }, { "XK", 20 }, { "YE", 30 },
};

static bool num_group_tail(const char *t, size_t i);
/* (out of line: inlined into the scan, it cost the scan's registers more than the call) */
static bool num_few_digits16(const char *p) __attribute__((noinline));
static size_t num_phone_plus(const char *t, size_t len, size_t i);
static size_t num_phone_nanp(const char *t, size_t len, size_t i);
static size_t num_phone_national(const char *t, size_t len, size_t i);
static bool num_end(const char *t, size_t len, size_t e);
static size_t num_digits(const char *t, size_t len, size_t i, size_t n);
static inline size_t num_ipv4_part(const char *t, size_t len, size_t j);
static int num_ipv6_shape16(const char *p, size_t *colons, bool *dbl, bool *digit);
static size_t num_ipv6_scan(const char *t, size_t len, size_t i, size_t *colons, bool *dbl,
                            bool *digit);
static size_t num_ipv6_end(const char *t, size_t i, size_t j) __attribute__((noinline));
static unsigned num_iban_len(unsigned char a, unsigned char b);


/*
 * Whether t[i] follows a separator (' ' or '-') after an alphanumeric group
 * holding a digit: the tail of a longer run of groups such as an account
 * number or an IBAN ("DE89 3704 0044 ..."), where no card or phone starts.
 * A group is at most NUM_GROUP_MAX bytes: a longer run is a word ("8rrrrrrrrr
 * 0044 ..." may hold a phone number), and the look back stays within the
 * left context a stream keeps (SL__GUARD_CTX), so a stream decides as the
 * whole text does.
 */
static bool
num_group_tail(const char *t, size_t i)
{
    bool digit = false;

    if (i < 2 || (t[i - 1] != ' ' && t[i - 1] != '-')) {
        return false;
    }
    for (size_t k = i - 1; k > 0 && sl__guard_alnum((unsigned char) t[k - 1]); k--) {
        if (i - k > NUM_GROUP_MAX) {
            return false; /* a word, not a group */
        }
        digit = digit || sl__guard_digit((unsigned char) t[k - 1]);
    }
    return digit;
}


/* Whether a number may end at t[e]: not glued to a word nor going on as 1.5, 1-2, 1,5. */
static bool
num_end(const char *t, size_t len, size_t e)
{
    unsigned char c;

    if (e >= len) {
        return true;
    }
    c = (unsigned char) t[e];
    if (sl__guard_word(c)) {
        return false;
    }
    if ((c == '.' || c == '-' || c == ',' || c == '/') && e + 1 < len
        && sl__guard_digit((unsigned char) t[e + 1])) {
        return false;
    }
    return true;
}


/* The end of exactly n digits at t[i], or 0. */
static size_t
num_digits(const char *t, size_t len, size_t i, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (i + k >= len || !sl__guard_digit((unsigned char) t[i + k])) {
            return 0;
        }
    }
    return i + n;
}


/* ------------------------------------------------------------------- card */

#if NUM_SSE2
/*
 * Whether the 19 bytes at p (32 readable) hold fewer than 13 digits: no
 * card in groups starts there (sl__guard_card: a window of groups of 2 to 6
 * digits with single separators, 13 to 19 digits in all, whose first 13
 * digits are in at most 7 groups: 19 bytes).
 */
static bool
num_few_digits16(const char *p)
{
    const __m128i c0 = _mm_set1_epi8('0'), c9 = _mm_set1_epi8(9);
    __m128i v = _mm_sub_epi8(_mm_loadu_si128((const __m128i *) (const void *) p), c0);
    __m128i w = _mm_sub_epi8(_mm_loadu_si128((const __m128i *) (const void *) (p + 16)), c0);
    uint32_t x = (uint32_t) _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, c9), v))
                 | (uint32_t) _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(w, c9), w)) << 16;

    x &= (1u << 19) - 1;
    /* a popcount without the instruction (a libgcc call without -mpopcnt) */
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return ((x * 0x01010101u) >> 24) < 13;
}
#else
/* (no SSE2 in this build: never called; false leaves sl__guard_card() to look) */
static bool
num_few_digits16(const char *p)
{
    (void) p;
    return false;
}
#endif


bool
sl__guard_luhn(const char *digits, size_t n)
{
    const uint64_t zeros = 0x3030303030303030ULL, dbl = 0x00ff00ff00ff00ffULL;
    char buf[24];
    uint64_t w[3], acc = 0;
    unsigned sum = 0;
    size_t i = n;

    if (n == 0) {
        return false;
    }
    if (n >= 8 && n <= 24) {
        /*
         * the words of buf below read from the digits themselves: the last
         * eight, the eight before them, and the first n % 8 (or eight)
         * moved up to the top of a word of '0's
         */
        size_t lead = n - 8 - (n > 16 ? 8 : 0);

        memcpy(&w[2], digits + n - 8, 8);
        if (n > 16) {
            memcpy(&w[1], digits + n - 16, 8);
        } else {
            w[1] = zeros;
        }
        w[0] = zeros;
        if (lead > 0) {
            uint64_t x;

            memcpy(&x, digits, 8);
            x = lead == 8 ? x : x << (8 * (8 - lead)) | zeros >> (8 * lead);
            w[n > 16 ? 0 : 1] = x;
        }
    }
    if (n <= sizeof(buf)) {
        /*
         * eight digits a step: right-aligned in buf after '0's, so the
         * digits doubled (every second from the right) are the even bytes
         */
        if (n < 8) {
            memset(buf, '0', sizeof(buf));
            memcpy(buf + sizeof(buf) - n, digits, n);
            memcpy(w, buf, sizeof(buf));
        }
        for (unsigned k = 0; k < 3; k++) {
            uint64_t x = w[k] - zeros; /* each byte a digit 0..9 */
            uint64_t d = x & dbl;      /* the doubled ones (little-endian: the even bytes) */
            /* 2d, less 9 where d >= 5 (d + 123 reaches the byte's top bit) */
            uint64_t ge5 = ((d + 0x7b7b7b7b7b7b7b7bULL) >> 7) & 0x0001000100010001ULL;

            acc += (x & ~dbl) + 2 * d - 9 * ge5;
        }
        /* each byte at most 3 * 9 = 27: the sum of the eight fits one byte */
        sum = (unsigned) ((acc * 0x0101010101010101ULL) >> 56);
        return sum % 10 == 0;
    }
    while (i >= 2) {
        /* every second digit from the right doubled, less 9 when above 9 */
        unsigned d = 2 * (unsigned) (unsigned char) (digits[i - 2] - '0');

        sum += (unsigned) (unsigned char) (digits[i - 1] - '0') + d - (d > 9 ? 9 : 0);
        i -= 2;
    }
    if (i == 1) {
        sum += (unsigned) (digits[0] - '0');
    }
    return sum % 10 == 0;
}


/*
 * A card number starting at t[i]: groups of digits with one kind of
 * separator; the longest run of whole groups from here with 13..19 digits
 * that passes Luhn.
 */
size_t
sl__guard_card(const char *t, size_t len, size_t i, size_t r)
{
    size_t gend[NUM_CARD_GROUPS];
    unsigned gdig[NUM_CARD_GROUPS];
    char digits[24];
    size_t ng = 0, j = i;
    unsigned total;
    char sep = 0;
    unsigned char first = (unsigned char) t[i];

    if (first < '2' || first > '6') {
        return 0;
    }
    if (NUM_SSE2 && r - i <= 6 && i + 32 <= len && sl__guard_simd() && num_few_digits16(t + i)) {
        return 0; /* groups, but too few digits for a card */
    }
    if (num_group_tail(t, i)) {
        return 0;
    }
    while (ng < NUM_CARD_GROUPS) {
        size_t s = j;

        if (ng == 0) {
            j = r - i <= 20 ? r : i + 20; /* the first run is known: t[i..r) */
        }
        while (j < len && sl__guard_digit((unsigned char) t[j]) && j - s <= 19) {
            j++;
        }
        gdig[ng] = (unsigned) (j - s);
        gend[ng] = j;
        ng++;
        if (j + 1 < len && (t[j] == ' ' || t[j] == '-') && (sep == 0 || sep == t[j])
            && sl__guard_digit((unsigned char) t[j + 1])) {
            sep = t[j];
            j++;
            continue;
        }
        break;
    }
    if (ng == 1) {
        if (gdig[0] < 13 || gdig[0] > 19 || !num_end(t, len, gend[0])) {
            return 0;
        }
        return sl__guard_luhn(t + i, gdig[0]) ? gend[0] : 0;
    }
    total = 0;
    for (size_t g = 0; g < ng; g++) {
        total += gdig[g];
    }
    if (total < 13) {
        return 0; /* no window of groups is long enough */
    }
    /* groups: the longest window from the first group */
    for (size_t b = ng; b >= 2; b--) {
        size_t k = 0;
        bool ok = true;

        total = 0;
        for (size_t g = 0; g < b; g++) {
            if (gdig[g] < 2 || gdig[g] > 6) {
                ok = false;
                break;
            }
            total += gdig[g];
        }
        if (!ok || total < 13 || total > 19) {
            continue;
        }
        if (b == ng && !num_end(t, len, gend[b - 1])) {
            continue;
        }
        for (size_t p = i; p < gend[b - 1]; p++) {
            if (sl__guard_digit((unsigned char) t[p])) {
                digits[k++] = t[p];
            }
        }
        if (sl__guard_luhn(digits, k)) {
            return gend[b - 1];
        }
    }
    return 0;
}


/* ------------------------------------------------------------------ phone */

size_t
sl__guard_phone(const char *t, size_t len, size_t i)
{
    size_t e;

    if (t[i] == '+') {
        return num_phone_plus(t, len, i);
    }
    if (t[i] == '(' && (num_digits(t, len, i + 1, 3) == 0 || i + 4 >= len || t[i + 4] != ')')) {
        return 0; /* "(415)" or nothing (num_phone_nanp asks the same first) */
    }
    if (num_group_tail(t, i)) {
        return 0;
    }
    e = num_phone_nanp(t, len, i);
    if (e == 0 && t[i] == '0') {
        e = num_phone_national(t, len, i);
    }
    return e;
}


/* +CC then 8..15 digits in all, single separators, at most one "(0)"-like group. */
static size_t
num_phone_plus(const char *t, size_t len, size_t i)
{
    size_t j = i + 1, last = 0;
    unsigned digits = 0;
    bool paren = false;

    if (j >= len || t[j] < '1' || t[j] > '9') {
        return 0;
    }
    while (j < len) {
        unsigned char c = (unsigned char) t[j];

        if (sl__guard_digit(c)) {
            digits++;
            j++;
            last = j;
            if (digits > 15) {
                return 0;
            }
            continue;
        }
        if ((c == ' ' || c == '-' || c == '.') && last == j && j + 1 < len
            && (sl__guard_digit((unsigned char) t[j + 1]) || t[j + 1] == '(')) {
            j++;
            continue;
        }
        if (c == '(' && !paren) {
            size_t k = j + 1;

            while (k < len && sl__guard_digit((unsigned char) t[k]) && k - j <= 4) {
                k++;
            }
            if (k == j + 1 || k >= len || t[k] != ')') {
                break;
            }
            digits += (unsigned) (k - j - 1);
            k++;
            if (k < len && t[k] == ' ') {
                k++;
            }
            if (k >= len || !sl__guard_digit((unsigned char) t[k])) {
                break;
            }
            paren = true;
            j = k;
            continue;
        }
        break;
    }
    if (digits < 8 || digits > 15) {
        return 0;
    }
    return num_end(t, len, last) ? last : 0;
}


/* (415) 555-0100, 415-555-0100, 415.555.0100, 415 555 0100, 1-800-555-0100. */
static size_t
num_phone_nanp(const char *t, size_t len, size_t i)
{
    size_t j = i, e;
    char sep;

    if (t[i] == '(') {
        j = num_digits(t, len, i + 1, 3);
        if (j == 0 || j >= len || t[j] != ')') {
            return 0;
        }
        j++;
        if (j < len && t[j] == ' ') {
            j++;
        }
        j = num_digits(t, len, j, 3);
        if (j == 0 || j + 1 >= len || (t[j] != '-' && t[j] != '.')) {
            return 0;
        }
        e = num_digits(t, len, j + 1, 4);
        return e != 0 && num_end(t, len, e) ? e : 0;
    }
    if (t[i] == '1' && i + 2 < len && (t[i + 1] == '-' || t[i + 1] == '.' || t[i + 1] == ' ')
        && sl__guard_digit((unsigned char) t[i + 2]) && num_digits(t, len, i + 2, 3) != 0
        && i + 5 < len && t[i + 5] == t[i + 1]) {
        j = i + 2;
    }
    e = num_digits(t, len, j, 3);
    if (e == 0 || e >= len) {
        return 0;
    }
    sep = t[e];
    if (sep != '-' && sep != '.' && sep != ' ') {
        return 0;
    }
    e = num_digits(t, len, e + 1, 3);
    if (e == 0 || e >= len || t[e] != sep) {
        return 0;
    }
    e = num_digits(t, len, e + 1, 4);
    return e != 0 && num_end(t, len, e) ? e : 0;
}


/* 020 7946 0958, 0800-123-4567: trunk 0, 2..6 groups, 9..12 digits, one separator kind. */
static size_t
num_phone_national(const char *t, size_t len, size_t i)
{
    size_t j = i, groups = 0, digits = 0;
    char sep = 0;

    for (;;) {
        size_t s = j;

        while (j < len && sl__guard_digit((unsigned char) t[j])) {
            j++;
        }
        if ((groups == 0 && (j - s < 2 || j - s > 5)) || (groups > 0 && (j - s < 2 || j - s > 8))) {
            return 0;
        }
        groups++;
        digits += j - s;
        if (j + 1 < len && (t[j] == ' ' || t[j] == '-') && (sep == 0 || sep == t[j])
            && sl__guard_digit((unsigned char) t[j + 1]) && groups < 6) {
            sep = t[j];
            j++;
            continue;
        }
        break;
    }
    if (groups < 2 || digits < 9 || digits > 12) {
        return 0;
    }
    return num_end(t, len, j) ? j : 0;
}


/* --------------------------------------------------------------------- ip */

/*
 * The end of a dotted quad's part at t[j] (a digit): 0..255 without a
 * leading zero and not followed by another digit; 0 when it is not one.
 */
static inline size_t
num_ipv4_part(const char *t, size_t len, size_t j)
{
    unsigned v = (unsigned) (t[j] - '0');

    j++;
    if (j < len && sl__guard_digit((unsigned char) t[j])) {
        if (v == 0) {
            return 0; /* a leading zero */
        }
        v = v * 10 + (unsigned) (t[j] - '0');
        j++;
        if (j < len && sl__guard_digit((unsigned char) t[j])) {
            v = v * 10 + (unsigned) (t[j] - '0');
            j++;
            if (v > 255 || (j < len && sl__guard_digit((unsigned char) t[j]))) {
                return 0;
            }
        }
    }
    return j;
}


size_t
sl__guard_ipv4(const char *t, size_t len, size_t i)
{
    size_t j = i;

    if (!sl__guard_digit((unsigned char) t[i])) {
        return 0;
    }
    for (int part = 0; part < 4; part++) {
        j = num_ipv4_part(t, len, j);
        if (j == 0) {
            return 0;
        }
        if (part < 3) {
            /* a '.' and the next part's first digit */
            if (j + 1 >= len || t[j] != '.' || !sl__guard_digit((unsigned char) t[j + 1])) {
                return 0;
            }
            j++;
        }
    }
    if (j < len && (sl__guard_word((unsigned char) t[j]) || t[j] == ':')) {
        return 0;
    }
    if (j + 1 < len && t[j] == '.' && sl__guard_digit((unsigned char) t[j + 1])) {
        return 0;
    }
    return j;
}


size_t
sl__guard_ipv6(const char *t, size_t len, size_t i)
{
    size_t j = 0, colons = 0;
    bool digit = false, dbl = false;
    int k = 16;

    if (NUM_SSE2 && i + 16 <= len && sl__guard_simd()) {
        k = num_ipv6_shape16(t + i, &colons, &dbl, &digit);
        if (k == 0) {
            return 0;
        }
        j = i + (size_t) k;
    }
    if (k == 16) {
        /* near the text's end, or the run goes on past the block: byte by byte */
        j = num_ipv6_scan(t, len, i, &colons, &dbl, &digit);
        if (j == 0) {
            return 0;
        }
    }
    if (j - i > NUM_IPV6_MAX + 2) {
        return 0;
    }
    if (colons < 2 || !digit || (j < len && sl__guard_word((unsigned char) t[j]))) {
        return 0;
    }
    if (!dbl && colons < 6) {
        return 0; /* neither "::" nor 8 groups (or 6 and an IPv4 address): 12:30:45 */
    }
    return num_ipv6_end(t, i, j);
}


/*
 * The run of [0-9A-Fa-f:.] that an IPv6 address at t[i] would be (up to
 * NUM_IPV6_MAX + 3 bytes: then it is too long): its end, with its colons,
 * whether two are adjacent and whether it holds a digit; 0 when no
 * address starts at t[i].
 */
static size_t
num_ipv6_scan(const char *t, size_t len, size_t i, size_t *colons, bool *dbl, bool *digit)
{
    size_t j = i, lim;

    /* an address starts with ':' or with 1..4 hex digits and a ':' */
    while (j < len && j - i < 4 && sl__guard_hex((unsigned char) t[j])) {
        j++;
    }
    if (j >= len || t[j] != ':') {
        return 0;
    }
    if (j + 1 >= len
        || !(sl__guard_hex((unsigned char) t[j + 1]) || t[j + 1] == ':' || t[j + 1] == '.')) {
        return 0; /* the scan below would stop after one ':' ("Ticket 7: the") */
    }
    lim = len - i > NUM_IPV6_MAX + 3 ? i + NUM_IPV6_MAX + 3 : len;
    for (j = i; j < lim; j++) {
        unsigned char c = (unsigned char) t[j];
        if (sl__guard_hex(c)) {
            *digit = *digit || sl__guard_digit(c);
        } else if (c == ':') {
            (*colons)++;
            *dbl = *dbl || (j > i && t[j - 1] == ':');
        } else if (c != '.') {
            break;
        }
    }
    return j;
}


#if NUM_SSE2
/*
 * sl__guard_ipv6()'s look at the sixteen bytes p[0..16) at once: 0 when no
 * address starts at p (no ':' after at most four hex digits, or none of
 * [0-9A-Fa-f:.] after that ':'); else where the run of [0-9A-Fa-f:.]
 * from p ends (16: not within the block) with its colons, whether two of
 * them are adjacent and whether it holds a digit (below 16).
 */
static int
num_ipv6_shape16(const char *p, size_t *colons, bool *dbl, bool *digit)
{
    __m128i x = _mm_loadu_si128((const __m128i *) (const void *) p);
    __m128i v = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    __m128i w = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
    unsigned dm =
        (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(9)), v));
    unsigned lm =
        (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(w, _mm_set1_epi8(5)), w));
    unsigned cm = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(':')));
    unsigned pm = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')));
    unsigned hx = dm | lm, mm = hx | cm | pm, below;
    int h = __builtin_ctz(~hx), k;

    /* 1..4 hex digits or none, a ':', then a hex digit, ':' or '.' */
    if (h > 4 || !((cm >> h) & 1u) || !((mm >> (h + 1)) & 1u)) {
        return 0;
    }
    k = __builtin_ctz(~mm);
    if (k < 16) {
        below = (1u << k) - 1u;
        *colons = 0;
        for (unsigned c = cm & below; c != 0; c &= c - 1) {
            (*colons)++; /* (a few: no popcount instruction to count on) */
        }
        *dbl = (cm & (cm << 1) & below) != 0;
        *digit = (dm & below) != 0;
    }
    return k;
}
#else
/* (no SSE2 in this build: never called; 16 would send sl__guard_ipv6() byte by byte) */
static int
num_ipv6_shape16(const char *p, size_t *colons, bool *dbl, bool *digit)
{
    (void) p;
    (void) colons;
    (void) dbl;
    (void) digit;
    return 16;
}
#endif


/* The end of the IPv6 address t[i..j) (its shape checked), or 0: what inet_pton(3) takes. */
static size_t
num_ipv6_end(const char *t, size_t i, size_t j)
{
    char buf[NUM_IPV6_MAX + 1];
    unsigned char b6[16];

    /* a sentence may end right after it */
    for (int tries = 0; tries < 2 && j > i; tries++) {
        if (j - i <= NUM_IPV6_MAX) {
            memcpy(buf, t + i, j - i);
            buf[j - i] = '\0';
            if (inet_pton(AF_INET6, buf, b6) == 1) {
                return j;
            }
        }
        if (t[j - 1] != '.' && !(t[j - 1] == ':' && (j - i < 2 || t[j - 2] != ':'))) {
            return 0;
        }
        j--;
    }
    return 0;
}


/* ------------------------------------------------------------------- iban */

static unsigned
num_iban_len(unsigned char a, unsigned char b)
{
    a = (unsigned char) (a & ~0x20);
    b = (unsigned char) (b & ~0x20);
    for (size_t k = 0; k < sizeof(num_iban_lens) / sizeof(num_iban_lens[0]); k++) {
        if (num_iban_lens[k].cc[0] == (char) a && num_iban_lens[k].cc[1] == (char) b) {
            return num_iban_lens[k].len;
        }
    }
    return 0;
}


bool
sl__guard_iban_valid(const char *s, size_t n)
{
    unsigned rem = 0;

    if (n < 15 || n > 34 || num_iban_len((unsigned char) s[0], (unsigned char) s[1]) != n
        || !sl__guard_digit((unsigned char) s[2]) || !sl__guard_digit((unsigned char) s[3])) {
        return false;
    }
    /* the first four characters go to the end; letters count as 10..35 */
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char) s[(k + 4) % n];

        if (sl__guard_digit(c)) {
            rem = (rem * 10 + (unsigned) (c - '0')) % 97;
        } else if (sl__guard_alpha(c)) {
            rem = (rem * 100 + (unsigned) ((c & ~0x20) - 'A' + 10)) % 97;
        } else {
            return false;
        }
    }
    return rem == 1;
}


size_t
sl__guard_iban(const char *t, size_t len, size_t i)
{
    char buf[34];
    size_t n = 0, j = i;
    unsigned want;

    if (i + 3 >= len || !sl__guard_alpha((unsigned char) t[i + 1])
        || !sl__guard_digit((unsigned char) t[i + 2])
        || !sl__guard_digit((unsigned char) t[i + 3])) {
        return 0;
    }
    want = num_iban_len((unsigned char) t[i], (unsigned char) t[i + 1]);
    if (want == 0) {
        return 0;
    }
    while (n < want && j < len) {
        if (sl__guard_alnum((unsigned char) t[j])) {
            buf[n++] = t[j++];
        } else if (t[j] == ' ' && n % 4 == 0 && j + 1 < len
                   && sl__guard_alnum((unsigned char) t[j + 1])) {
            j++;
        } else {
            break;
        }
    }
    if (n != want || (j < len && sl__guard_word((unsigned char) t[j]))) {
        return 0;
    }
    return sl__guard_iban_valid(buf, n) ? j : 0;
}
