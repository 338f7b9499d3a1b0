/*
 * The reference detectors (test/guardref/guard_detect_ref.c): what
 * sl__guard_detect() found before its speed work, for differential tests.
 * Same contract as sl__guard_detect() (core/gateway/guard_internal.h).
 */
#ifndef SL_TEST_GUARDREF_GUARD_DETECT_REF_H
#define SL_TEST_GUARDREF_GUARD_DETECT_REF_H

#include "core/gateway/guard_internal.h"

void sl__guard_ref_detect(const char *t, size_t len, size_t from, unsigned mask,
                          sl__guard_hits_t *out);
unsigned sl__guard_ref_plain(const char *p, size_t n);

#endif
