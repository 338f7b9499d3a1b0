/*
 * The built-in detectors as they were before their speed work (wave 4):
 * core/gateway/guard_detect.c at main e4a2e7c, kept verbatim in
 * guard_detect_v1.inc with its outside names renamed. The differential
 * unit test (test/unit/test_guard_diff.c) and fuzz target
 * (test/fuzz/fuzz_guard_detect.c) compare sl__guard_detect() with
 * sl__guard_ref_detect() on the same texts: every match must be the same.
 * Not linked into sluice.
 */
#define sl__guard_detect     sl__guard_ref_detect
#define sl__guard_deny       sl__guard_ref_deny
#define sl__guard_hits_push  sl__guard_ref_hits_push
#define sl__guard_hits_free  sl__guard_ref_hits_free
#define sl__guard_luhn       sl__guard_ref_luhn
#define sl__guard_iban_valid sl__guard_ref_iban_valid
#define sl__guard_plain      sl__guard_ref_plain

#include "guardref/guard_detect_ref.h"

#include "guard_detect_v1.inc"
