/*
 * Differential unit test of the built-in detectors: the scan of
 * core/gateway/guard_detect.c against the reference kept in
 * test/guardref/ (the detectors before their speed work) on many random
 * and adversarial texts, at every start offset class and detector mask,
 * under each scan instruction set this machine has (scalar, SSE2, AVX2):
 * every hit must be the same, in the same order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base/errno.h"
#include "core/gateway/guard.h"
#include "core/gateway/guard_internal.h"
#include "guardref/guard_diff.h"

#define DIFF_TEXTS 12000
#define DIFF_CAP   (64 * 1024)

/* 1 where the build targets SSE2, so the scan has that set to choose (tested with a plain if) */
#if defined(__SSE2__)
#define DIFF_SSE2 1
#else
#define DIFF_SSE2 0
#endif

static void diff_one(const char *t, size_t len, size_t from, unsigned mask);
static size_t diff_run(char *p, char c, size_t n);


static void
diff_one(const char *t, size_t len, size_t from, unsigned mask)
{
    char why[300];

    if (guard_diff_check(t, len, from, mask, why, sizeof(why)) != 0) {
        fail_msg("detectors differ from the reference (mask %#x, from %zu) on \"%.*s\": %s", mask,
                 from, (int) (len < 400 ? len : 400), t, why);
    }
}


/* Each instruction set the scan may use can be chosen; scalar always. */
static void
test_isa(void **state)
{
    (void) state;
    assert_int_equal(sl__guard_detect_isa(SL__GUARD_ISA_SCALAR), 0);
    if (DIFF_SSE2) {
        assert_int_equal(sl__guard_detect_isa(SL__GUARD_ISA_SSE2), 0);
    }
    assert_int_equal(sl__guard_detect_isa(SL__GUARD_ISA_AVX2 + 1), SL_ENOTFOUND);
    assert_int_equal(sl__guard_detect_isa(SL__GUARD_ISA_BEST), 0);
}


/* The texts of the unit tables and the bench's prompt, every mask. */
static void
test_fixed(void **state)
{
    static const char *const texts[] = {
        "write to john.smith+tag@example.co.uk today, +44 (0)20 7946 0958",
        "card 4111 1111 1111 1111 exp 12/29, order number 4111111111111112 shipped",
        "IBAN DE89 3704 0044 0532 0130 00, GB82WEST12345698765432 nl91abna0417164300",
        "v6 2001:db8::1 and fe80::1ff:fe23:4567:890a, lo ::1 at 12:30:45 use std::vector",
        "x_ ::1 ab_ ::2 a-b ::ffff:1.2.3.4 name: a1:b2::3 fe_1:: b-c:d::e 7a:: q7:: Ab:1::2",
        "sk-proj-x1234567890abcdefghij xoxb-1234567890 ghp_abcdefghijklmnopqrstuvwxyz0123456789 "
        "e-mail hf_abcdefghijklmnopqrstuvwxyz01234 AIzaSy-abcdefghijklmnopqrstuvwxyz012345 "
        "eyJa-bcdefghij.eyJhbGciOiJ.sig (415) 555-0100 (0) (41) 555",
        "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 AKIAIOSFODNN7EXAMPLE "
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THs",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9 and no end",
        "1111111111111111111111111111111111111111111111111111111111111111, card 4111 1111 1111 "
        "1111",
        "Ticket 7: the customer can be reached at jane.roe7@example.com or on +44 20 7946 0007 "
        "during office hours, the order number is 4111111111111112 and the request came from "
        "10.20.7.40 according to the support portal, version 2.4.1, logged at 12:30:45 on "
        "2026-03-14. ",
    };

    (void) state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t len = strlen(texts[i]);

        for (unsigned mask = 0; mask < 1u << SL_GUARD_DET_COUNT; mask++) {
            for (size_t from = 0; from < len; from += 1 + from / 3) {
                diff_one(texts[i], len, from, mask);
            }
        }
    }
}


/* Writes n bytes c at p; returns n. */
static size_t
diff_run(char *p, char c, size_t n)
{
    memset(p, c, n);
    return n;
}


/*
 * E-mail addresses at the edges of their rules (the domain is checked as it
 * is read): label lengths 62 to 64, last labels of 1, 2, 24 and 25 letters
 * or with a digit, '-' at a label's ends, trailing dots and dashes, local
 * parts of 64 and 65 bytes, domains of 252 to 255 bytes.
 */
static void
test_email_edges(void **state)
{
    static const char *const tails[] = { "",   " ", ".",  "-",  "..", ".-", "-.", ". ",
                                         "@x", "_", ".a", ".1", "x",  ":",  ",",  ".-." };
    static const char *const mids[] = { "example.", "a-b.", "-ab.", "ab-.", "a.",   "",
                                        "x1.",      "ex..", ".ex.", "9.",   "e-x.", "1-2." };
    char buf[700];
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    for (size_t m = 0; m < sizeof(mids) / sizeof(mids[0]); m++) {
        for (size_t tl = 0; tl <= 26; tl++) {
            for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
                for (unsigned v = 0; v < 4; v++) {
                    size_t n = 0;

                    n += (size_t) snprintf(buf + n, sizeof(buf) - n, "to ");
                    n += diff_run(buf + n, 'j', v == 1 ? 64 : v == 2 ? 65 : 4);
                    buf[n++] = '@';
                    n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s", mids[m]);
                    if (v == 3) {
                        /* a long label, then the last: 62..64 letters by tl */
                        n += diff_run(buf + n, 'd', 62 + tl % 3);
                        buf[n++] = '.';
                    }
                    n += diff_run(buf + n, tl % 5 == 4 && tl > 4 ? 'Z' : 'c', tl);
                    if (tl == 7) {
                        buf[n - 3] = '4'; /* a digit in the last label */
                    }
                    n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s", tails[t]);
                    diff_one(buf, n, 0, all);
                    diff_one(buf, n, 0, 1u << SL_GUARD_DET_EMAIL);
                }
            }
        }
    }
    /* domains of 250 to 256 bytes: labels of 60 */
    for (size_t extra = 0; extra < 8; extra++) {
        size_t n = (size_t) snprintf(buf, sizeof(buf), "x jo@");

        for (unsigned k = 0; k < 4; k++) {
            n += diff_run(buf + n, (char) ('a' + k), 60);
            buf[n++] = '.';
        }
        n += diff_run(buf + n, 'b', 2 + extra % 4);
        n += diff_run(buf + n, '.', extra / 4);
        n += (size_t) snprintf(buf + n, sizeof(buf) - n, " ok");
        diff_one(buf, n, 0, all);
    }
}


/*
 * A run of digits of every length 1..21 and first digit 0, 1, 2, 4 or 7,
 * after each byte that may come before a number, followed by each byte the
 * scan tells the detectors apart by, then a digit, a space or a letter and
 * more groups of digits (or nothing).
 */
static void
test_number_edges(void **state)
{
    static const char before[] = " :(-,+.a";
    static const char firsts[] = "01247";
    static const char after[] = " -.:,/aAfFgGx)(+@_";
    static const char after2[] = "0 x";
    static const char *const more[] = { "", "55", "555 5555", "2 34", "5.6.7" };
    char buf[64];
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    for (size_t b = 0; b <= sizeof(before) - 1; b++) {
        for (size_t f = 0; f < sizeof(firsts) - 1; f++) {
            for (size_t n = 1; n <= 21; n++) {
                for (size_t a = 0; a <= sizeof(after) - 1; a++) {
                    for (size_t a2 = 0; a2 < sizeof(after2) - 1; a2++) {
                        for (size_t m = 0; m < sizeof(more) / sizeof(more[0]); m++) {
                            size_t len = 0;
                            unsigned d0 = (unsigned) (firsts[f] - '0');

                            if (b < sizeof(before) - 1) {
                                buf[len++] = '7';
                                buf[len++] = before[b];
                            }
                            for (size_t k = 0; k < n; k++) {
                                buf[len++] = (char) ('0' + (d0 + 3 * k) % 10);
                            }
                            if (a < sizeof(after) - 1) {
                                buf[len++] = after[a];
                                buf[len++] = after2[a2];
                                memcpy(buf + len, more[m], strlen(more[m]));
                                len += strlen(more[m]);
                            }
                            diff_one(buf, len, 0, all);
                        }
                    }
                }
            }
        }
    }
}


/*
 * IPv6 addresses and near misses (times, C++ scopes, MAC addresses, runs
 * of 15, 16 and 17 bytes, a trailing '.' or ':') at every offset 0..20
 * after a prefix, followed by each byte that ends a run, at the text's end
 * too: the address's run crosses the sixteen-byte look of det_ipv6() at
 * every point, and the look falls back to the byte scan near the end.
 */
static void
test_ipv6_edges(void **state)
{
    static const char *const addrs[] = {
        "2001:db8::1",
        "fe80::1ff:fe23:4567:890a",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:1.2.3.4",
        "::ffff:10.0.0.1",
        "::1",
        "::",
        "a::",
        "12:30:45",
        "00:1a:2b:3c:4d:5e",
        "std::vector",
        "dead:beef",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "1:2:3:4:5:6:7::",
        "ab:cd::ef.",
        "1::2:",
        "12345::1",
        "1:2:3:4:5:6:7:8:9",
        "::1.2.3.4.5",
        "1:2::3:4",
        "abcd:1::",
        "1::2:3:4:5:6:7",
        "Fe80::Ab",
        "f::g",
        "7: the",
        ":1",
    };
    static const char *const pre[] = { "", "ip ", "x=", "(" };
    static const char after[] = " .:x,)-";
    char buf[128];
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    for (size_t a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++) {
        for (size_t p = 0; p < sizeof(pre) / sizeof(pre[0]); p++) {
            for (size_t off = 0; off <= 20; off++) {
                for (size_t e = 0; e <= sizeof(after) - 1; e++) {
                    for (size_t tail = 0; tail <= 20; tail += 5) {
                        size_t len = 0, al = strlen(addrs[a]);

                        memset(buf, 'q', off);
                        if (off > 0) {
                            buf[off - 1] = ' ';
                        }
                        len = off;
                        memcpy(buf + len, pre[p], strlen(pre[p]));
                        len += strlen(pre[p]);
                        memcpy(buf + len, addrs[a], al);
                        len += al;
                        if (e < sizeof(after) - 1) {
                            buf[len++] = after[e];
                            /* then nothing, or more text: the run ends near or far from the end */
                            memset(buf + len, 'z', tail);
                            len += tail;
                        }
                        diff_one(buf, len, 0, all);
                        diff_one(buf, len, 0, 1u << SL_GUARD_DET_IP);
                    }
                }
            }
        }
    }
}


/*
 * Numbers and keys around the scan's chunk boundaries (64 bytes, and the
 * 2048 of a batch): a piece at every offset near one, after a digit, a
 * space or a letter, and after a key whose end moves the scan into the
 * middle of a chunk with a digit right before the next number.
 */
static void
test_chunk_edges(void **state)
{
    static const char *const pieces[] = {
        "4111111111111111",
        "10.20.30.40",
        "+44 20 7946 0958",
        "12:30:45",
        "2001:db8::1",
        "415-555-0100",
        "7",
        "sk-abcdefghijklmnopqrstuv1234",
        "sk-abcdefghijklmnopqrstuvwx 4111111111111111",
        "sk-abcdefghijklmnopqrstuvwx4111111111111111 5",
        /* cards in groups (and near misses) across the 27 bytes the scan counts digits in */
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "41 11 11 11 11 11 11 1",
        "41 11 11 11 11 11 11 11 00",
        "41 11 11 11 11 11 11 11 110",
        "5555 5555 5555 4444 4",
        "3782 822463 10005",
        "20 7946 0958 4111 11",
        "2026-03-14 4111-1111",
        "4 1111 1111 1111 1111",
    };
    static const size_t bases[] = { 64, 128, 2048, 4096 };
    static const char before[] = "9 a";
    char *buf = malloc(8192);
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    assert_non_null(buf);
    for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
        size_t pl = strlen(pieces[p]);

        for (size_t bs = 0; bs < sizeof(bases) / sizeof(bases[0]); bs++) {
            for (size_t at = bases[bs] - pl - 2; at <= bases[bs] + 2; at++) {
                for (size_t b = 0; b < sizeof(before) - 1; b++) {
                    size_t len = at + pl;

                    memset(buf, ' ', at);
                    buf[at - 1] = before[b];
                    memcpy(buf + at, pieces[p], pl);
                    diff_one(buf, len, 0, all);
                    /* more text after it, and a number right at the next chunk's start */
                    memcpy(buf + len, " 99 4111111111111111", 20);
                    diff_one(buf, len + 20, 0, all);
                    diff_one(buf, len + 20, at > 3 ? at - 3 : 0, all);
                }
            }
        }
    }
    free(buf);
}


/*
 * IBANs and words ending in digits after each prefix (nothing: the text's
 * start; a letter, a digit, '_' or '-' glued to it; a space, '.' or '/'
 * before it), with the scan starting at every offset up to the country
 * code and past it: the scan looks at a run of digits after a letter only
 * where two letters start a word.
 */
static void
test_iban_starts(void **state)
{
    static const char *const prefixes[] = { "", "x", "7", "_", "-", " ", ".", "/", "ab ", "a-" };
    static const char *const words[] = {
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "DE8",
        "D89",
        "roe7",
        "v2",
        "DE89 3704",
        "de89370400440532013000",
    };
    char buf[64];
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
            size_t pl = strlen(prefixes[p]), len = pl + strlen(words[w]);

            snprintf(buf, sizeof(buf), "%s%s", prefixes[p], words[w]);
            for (size_t from = 0; from <= pl + 3 && from < len; from++) {
                diff_one(buf, len, from, all);
                diff_one(buf, len, from, 1u << SL_GUARD_DET_IBAN);
            }
        }
    }
}


/*
 * Addresses whose local part and domain end before, at and after the
 * sixteen bytes det_email() looks at at once on either side of the '@':
 * local parts of 1 to 20 bytes of every local character, domains of dotted
 * labels of every length up to 20 with '-', ".." and a '.' at the block's
 * end, then each tail, with and without text after it (the look needs
 * sixteen bytes after the '@').
 */
static void
test_email_blocks(void **state)
{
    static const char local[] = "ab.c_d%e+f-g1h";
    static const char *const domains[] = {
        "example.com",
        "a.io",
        "x-y.example.org",
        "ab..cd",
        "-a.com",
        "a-.com",
        "mail.example.co.",
        "e.x",
        "sub.do-main.net",
        "aaaaaaaaaaaaa.b",
        "aaaaaaaaaaaaaa.bb",
        "aaaaaaaaaaaaa.bb.",
        "a.b.c.d.e.f.g.hi",
        "q1.2z",
        ".ex.com",
        "ex.c-m",
        "a.example..com",
        "mail.ex..org",
        "ab.cd..",
        "abcdefghijkl.de..",
    };
    static const char *const tails[] = { "", " ", ".", "..", "@", "_", "-", ".x" };
    char buf[256];
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    for (size_t ll = 1; ll <= 20; ll++) {
        for (size_t d = 0; d < sizeof(domains) / sizeof(domains[0]); d++) {
            for (size_t tl = 0; tl < sizeof(tails) / sizeof(tails[0]); tl++) {
                for (unsigned pad = 0; pad < 2; pad++) {
                    size_t n =
                        (size_t) snprintf(buf, sizeof(buf), "write to %s", ll % 3 ? "" : "<");

                    for (size_t k = 0; k < ll; k++) {
                        buf[n++] = local[(k + d) % (sizeof(local) - 1)];
                    }
                    n += (size_t) snprintf(buf + n, sizeof(buf) - n, "@%s%s%s", domains[d],
                                           tails[tl], pad ? " and then some more text" : "");
                    diff_one(buf, n, 0, all);
                    diff_one(buf, n, 0, 1u << SL_GUARD_DET_EMAIL);
                }
            }
        }
    }
}


/* Texts made of the pieces the detectors look for, changed a little. */
static void
test_random(void **state)
{
    char *buf = malloc(DIFF_CAP);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    assert_non_null(buf);
    for (unsigned k = 0; k < DIFF_TEXTS; k++) {
        size_t len = guard_diff_make(&rng, NULL, 0, buf, DIFF_CAP);
        size_t from = k % 3 == 0 && len > 0 ? (size_t) (rng >> 7) % len : 0;
        unsigned mask = k % 4 == 0 ? (unsigned) (rng >> 3) & all : all;

        diff_one(buf, len, from, mask);
    }
    free(buf);
}


/*
 * A request string's twin (sl__guard_twin; guard_diff_check() compares its
 * hits with the text's when no hit covers an escape's bytes): texts with
 * the bytes JSON escapes next to what the detectors look for, and the
 * generated texts with such bytes strewn in.
 */
static void
test_twin(void **state)
{
    static const char *const texts[] = {
        "mail\njane.roe@example.com\n",
        "\"jane@example.com\"",
        "a\\b@example.org\\c",
        "card \"4111 1111 1111 1111\"\tok",
        "+44 20\n7946 0958",
        "+44 20 7946 0958\r\n",
        "(415)\n555-0100",
        "415\t555\t0100",
        "10.0.0.1\n",
        "\\\\10.0.0.1\\",
        "1/2 10.0.0.1/24",
        "1\n2\n3\n4",
        "2001:db8::1\n::1\t",
        "ab\n::1",
        "\bsk-proj-abcdefghijklmnopqrstuvwxyz\f",
        "x\neyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END RSA PRIVATE "
        "KEY-----\n",
        "DE89 3704 0044 0532 0130 00\n",
        "\nDE89370400440532013000\"",
        "12:30\n:45 x\n12",
        "order\n4111111111111112\n",
        "\"\"\"",
        "\\",
        "\n",
    };
    static const char strew[] = "\n\t\r\"\\\b\f/";
    char *buf = malloc(DIFF_CAP);
    uint64_t rng = 0xd1b54a32d192ed03ULL;
    unsigned all = (1u << SL_GUARD_DET_COUNT) - 1;

    (void) state;
    assert_non_null(buf);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        diff_one(texts[i], strlen(texts[i]), 0, all);
    }
    for (unsigned k = 0; k < DIFF_TEXTS / 2; k++) {
        size_t len = guard_diff_make(&rng, NULL, 0, buf, DIFF_CAP);

        for (size_t i = 0; i < len; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if ((rng >> 32) % 8 == 0) {
                buf[i] = strew[(rng >> 40) % (sizeof(strew) - 1)];
            }
        }
        diff_one(buf, len, 0, all);
    }
    free(buf);
}


/* Random bytes, digits and separators only, and every byte value. */
static void
test_noise(void **state)
{
    static const char dense[] = "0123456789 -.:(+@";
    char buf[2048];
    uint64_t rng = 0x2545f4914f6cdd1dULL;

    (void) state;
    for (unsigned k = 0; k < 4000; k++) {
        size_t len = (size_t) (rng % sizeof(buf));

        for (size_t i = 0; i < len; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            buf[i] = k % 2 == 0 ? (char) (rng >> 24) : dense[(rng >> 24) % (sizeof(dense) - 1)];
        }
        diff_one(buf, len, 0, (1u << SL_GUARD_DET_COUNT) - 1);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa),          cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_email_edges),  cmocka_unit_test(test_number_edges),
        cmocka_unit_test(test_random),       cmocka_unit_test(test_noise),
        cmocka_unit_test(test_ipv6_edges),   cmocka_unit_test(test_chunk_edges),
        cmocka_unit_test(test_email_blocks), cmocka_unit_test(test_iban_starts),
        cmocka_unit_test(test_twin),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
