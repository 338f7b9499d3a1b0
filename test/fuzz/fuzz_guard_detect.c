/*
 * libFuzzer target, differential: the built-in detectors
 * (core/gateway/guard_detect.c) against the reference kept in
 * test/guardref/ (the detectors before their speed work), under every
 * scan instruction set this machine has (scalar, SSE2, AVX2). The first
 * input byte is the detector mask (its low six bits) and, in its top bit,
 * whether the rest is a text as it stands or a list of pieces
 * (guard_diff_make(): prefixes, digit groups, separators, ...); the second
 * where the scan starts (a fraction of the text). Any difference in the
 * hits aborts, as does one in sl__guard_plain() or in sl_utf8_text()
 * (against a character-at-a-time reference), or, when the scan starts at
 * 0, one between the hits in the text's twin as a request string
 * (sl__guard_twin) and the text's own.
 *
 *   ninja -C build-fuzz test/fuzz/fuzz_guard_detect
 *   build-fuzz/test/fuzz/fuzz_guard_detect -max_total_time=60 test/fuzz/corpus/guard_detect
 * or scripts/fuzz guard_detect.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gateway/guard.h"
#include "core/gateway/guard_internal.h"
#include "guardref/guard_diff.h"

#define FUZZ_MAX_TEXT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[FUZZ_MAX_TEXT];
    const char *t;
    size_t len, from;
    unsigned mask;
    char why[300];

    if (size < 2) {
        return 0;
    }
    mask = data[0] & ((1u << SL_GUARD_DET_COUNT) - 1);
    if (data[0] & 0x80) {
        len = guard_diff_make(NULL, data + 2, size - 2, buf, sizeof(buf));
        t = buf;
    } else {
        len = size - 2 < FUZZ_MAX_TEXT ? size - 2 : FUZZ_MAX_TEXT;
        t = (const char *) data + 2;
    }
    from = len > 0 ? (size_t) data[1] * len / 256 : 0;
    if (guard_diff_check(t, len, from, mask, why, sizeof(why)) != 0) {
        fprintf(stderr, "fuzz_guard_detect: mask %#x from %zu: %s\n", mask, from, why);
        abort();
    }
    return 0;
}
