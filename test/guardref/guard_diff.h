/*
 * Differential checks of the built-in detectors (test/guardref/guard_diff.c):
 * sl__guard_detect() against the reference (guard_detect_ref.c) on one
 * text, under every scan instruction set this machine has; and a maker of
 * texts dense in near misses, for the unit test and the fuzz target.
 */
#ifndef SL_TEST_GUARDREF_GUARD_DIFF_H
#define SL_TEST_GUARDREF_GUARD_DIFF_H

#include <stddef.h>
#include <stdint.h>

/*
 * Runs both detectors over t[0..len) (from and mask as sl__guard_detect
 * takes them) and both sl__guard_plain() over t[from..len) under every
 * instruction set of the scan, and sl_utf8_text() over t[from..len)
 * against a character-at-a-time reference; and, when from is 0, the hits
 * in the twin of t as a JSON string body (sl__guard_twin) against t's own
 * when none covers an escape's bytes. 0 when every run gives exactly the
 * reference's hits (same order) and answers, else -1 with what
 * differs in why (NUL-terminated). The text is copied to a buffer of its
 * exact size first, so a read past it is a sanitizer report.
 */
int guard_diff_check(const char *t, size_t len, size_t from, unsigned mask, char *why,
                     size_t whylen);

/*
 * Writes a text of at most cap bytes built from the pieces the detectors
 * look for (prefixes, digit groups, separators, hex, '@', ...), chosen by
 * sel[0..nsel) (a fuzzer's bytes) or, when sel is NULL, by *rng.
 * Returns its length.
 */
size_t guard_diff_make(uint64_t *rng, const uint8_t *sel, size_t nsel, char *buf, size_t cap);

#endif
