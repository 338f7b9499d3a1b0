/*
 * Borrowed byte strings. An sl_str_t points into memory someone else owns
 * (a pool, a read buffer, a literal); it is not NUL-terminated unless said.
 */
#ifndef SL_CORE_BASE_STR_H
#define SL_CORE_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sl_str {
    const char *p;
    size_t len;
} sl_str_t;

#define sl_str_lit(s) ((sl_str_t){ (s), sizeof(s) - 1 })
#define sl_str_null   ((sl_str_t){ NULL, 0 })

/* Case-sensitive equality with a C string. */
bool sl_str_eq(sl_str_t a, const char *b);

/* ASCII case-insensitive equality with a C string (HTTP header names). */
bool sl_str_caseeq(sl_str_t a, const char *b);

/* sl_str_caseeq with a string literal: lengths compared first, no strlen. */
#define sl_str_caseeq_lit(a, lit) \
    ((a).len == sizeof(lit) - 1 && sl_mem_caseeq((a).p, (lit), sizeof(lit) - 1))

/* ASCII case-insensitive comparison of two byte ranges of equal length. */
bool sl_mem_caseeq(const char *a, const char *b, size_t len);

/* Strips spaces and tabs at both ends. */
sl_str_t sl_str_trim(sl_str_t s);

/*
 * Parses a non-negative decimal integer that fills s exactly. Returns 0 and
 * stores it in *out, or SL_EPARSE on anything else (empty, sign, overflow).
 */
int sl_str_to_u64(sl_str_t s, unsigned long long *out);

/* Constant-time comparison: time depends on lengths only, never on content. */
bool sl_str_ct_eq(const char *a, size_t alen, const char *b, size_t blen);

/* FNV-1a (64 bits) of the NUL-terminated s, never 0 (callers use 0 for "free slot"). */
uint64_t sl_str_hash(const char *s);

/* sl_str_hash of a followed by b, without joining them. */
uint64_t sl_str_hash2(const char *a, const char *b);

/*
 * Length of the well-formed UTF-8 character at p (n > 0 bytes left): 1 to
 * 4, or 0 when p does not start one (a stray continuation byte, an overlong
 * form, a surrogate, beyond U+10FFFF, or cut short).
 */
size_t sl_utf8_char_len(const char *p, size_t n);

/*
 * Whether p[0..n) is text a JSON string may hold as it is (utf8.c): 0, or
 * SL_EPARSE for a control byte (below 0x20) or invalid UTF-8 (as
 * sl_utf8_char_len() reads it). 32 bytes a step when the CPU has AVX2.
 */
int sl_utf8_text(const char *p, size_t n);

/* For the tests: whether sl_utf8_text() may use AVX2; true when it now does. */
bool sl_utf8_text_simd(bool on);

#endif
