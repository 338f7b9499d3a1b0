/*
 * Small helpers over sl_str_t: comparisons, trimming, integer parsing and a
 * constant-time compare for secrets.
 */
#include "core/base/str.h"

#include <limits.h>
#include <stdint.h>

#include "core/base/errno.h"

static uint64_t str_lower8(uint64_t w);

bool
sl_str_eq(sl_str_t a, const char *b)
{
    size_t n = strlen(b);

    return a.len == n && (n == 0 || memcmp(a.p, b, n) == 0);
}


/*
 * w with its bytes 'A' to 'Z' made lower case. A byte's low seven bits plus
 * 0x3f reach 0x80 from 'A' up, plus 0x25 from 'Z' + 1 up, and neither sum
 * carries into the next byte: their high bits differ exactly for 'A'..'Z'
 * (a byte with its own high bit set is no letter), and that bit shifted
 * down two places is 0x20.
 */
static uint64_t
str_lower8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t low7 = w & ~high;
    uint64_t upper = ((low7 + ones * (0x80 - 'A')) ^ (low7 + ones * (0x80 - 'Z' - 1))) & ~w & high;

    return w | (upper >> 2);
}


bool
sl_mem_caseeq(const char *a, const char *b, size_t len)
{
    size_t i = 0;

    /* eight bytes a step: equal words need no case folding, header names mostly are */
    for (; i + 8 <= len; i += 8) {
        uint64_t x, y;

        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y && str_lower8(x) != str_lower8(y)) {
            return false;
        }
    }
    if (i < len && len >= 8) {
        /* the last eight bytes, overlapping some already compared */
        uint64_t x, y;

        memcpy(&x, a + len - 8, 8);
        memcpy(&y, b + len - 8, 8);
        return x == y || str_lower8(x) == str_lower8(y);
    }
    for (; i < len; i++) {
        unsigned char x = (unsigned char) a[i];
        unsigned char y = (unsigned char) b[i];

        if (x >= 'A' && x <= 'Z') {
            x |= 0x20;
        }
        if (y >= 'A' && y <= 'Z') {
            y |= 0x20;
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}


bool
sl_str_caseeq(sl_str_t a, const char *b)
{
    /* no strlen(b) first: most calls (header lookups) differ in the first byte */
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char) a.p[i];
        unsigned char y = (unsigned char) b[i];

        if (y == '\0') {
            return false;
        }
        if (x >= 'A' && x <= 'Z') {
            x |= 0x20;
        }
        if (y >= 'A' && y <= 'Z') {
            y |= 0x20;
        }
        if (x != y) {
            return false;
        }
    }
    return b[a.len] == '\0';
}


sl_str_t
sl_str_trim(sl_str_t s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}


int
sl_str_to_u64(sl_str_t s, unsigned long long *out)
{
    unsigned long long v = 0;

    /* No length cap: leading zeros are valid, the loop catches overflow. */
    if (s.len == 0) {
        return SL_EPARSE;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned d;

        if (s.p[i] < '0' || s.p[i] > '9') {
            return SL_EPARSE;
        }
        d = (unsigned) (s.p[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) {
            return SL_EPARSE;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}


bool
sl_str_ct_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    /*
     * Walk the longer input fully so timing leaks only the lengths: eight
     * bytes a step over what both hold, then byte by byte, every difference
     * ORed in and no early exit.
     */
    size_t n = alen > blen ? alen : blen, common = alen < blen ? alen : blen, i = 0;
    uint64_t diff = (uint64_t) (alen != blen);

    for (; i + 8 <= common; i += 8) {
        uint64_t x, y;

        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char) a[i] : 0;
        unsigned char y = i < blen ? (unsigned char) b[i] : 0;

        diff |= (unsigned char) (x ^ y);
    }
    return diff == 0;
}


uint64_t
sl_str_hash(const char *s)
{
    return sl_str_hash2(s, "");
}


uint64_t
sl_str_hash2(const char *a, const char *b)
{
    uint64_t h = 14695981039346656037ULL;

    while (*a != '\0') {
        h = (h ^ (uint8_t) *a++) * 1099511628211ULL;
    }
    while (*b != '\0') {
        h = (h ^ (uint8_t) *b++) * 1099511628211ULL;
    }
    return h != 0 ? h : 1;
}


size_t
sl_utf8_char_len(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *) p;
    uint32_t cp;
    size_t len;

    if (u[0] < 0x80) {
        return 1;
    }
    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        len = 2;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        len = 3;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        len = 4;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    cp = u[0] & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (u[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;
    }
    return len;
}
