/*
 * libFuzzer target for the guardrails' streaming redactor
 * (core/gateway/guard_redact.c over the detectors of guard_detect.c). The
 * first input byte chooses the policy (which detectors, a deny literal and
 * regex, block or redact on the output), the second how the rest is cut
 * into deltas (a chunk-size cap and a PRNG seed) and whether the text is
 * JSON (tool arguments); the rest is an answer's text.
 *
 * Beyond "no crash, no sanitizer report, no leak" it checks that cutting
 * never changes the result: what the stream lets out, joined, equals the
 * engine's answer for the whole text (same return code, same text, same
 * decisions); a blocked stream lets nothing out after the block and takes
 * nothing more; placeholders of the request ([EMAIL_1] for a fixed address)
 * are restored the same way in both. Any mismatch aborts. The promise
 * covers texts shorter than SL__GUARD_FORCE (core/gateway/guard_redact.c):
 * a stream lets a longer hold out as it stands rather than keep it without
 * bound (a "word" without whitespace; a private key with no END line past
 * SL__GUARD_OPEN_MAX), so for a longer text only the rest is checked.
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_guard_stream
 *   build-fuzz/test/fuzz/fuzz_guard_stream -max_total_time=60 test/fuzz/corpus/guard_stream
 * or everything at once: scripts/fuzz.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/pool.h"
#include "core/gateway/guard.h"
#include "core/gateway/guard_internal.h"

#define FUZZ_MAX_TEXT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok, const char *what);
static sl_guard_policy_t *fuzz_policy(sl_pool_t *pool, unsigned choice);
static void fuzz_session(sl__guard_sess_t *s, sl_pool_t *pool, const sl_guard_policy_t *p);
static bool fuzz_same_decisions(const sl__guard_sess_t *a, const sl__guard_sess_t *b);
static void fuzz_dump(const char *what, const sl__guard_sess_t *s, const sl_buf_t *out);

static const size_t fuzz_chunk_caps[8] = { 1, 2, 3, 5, 8, 17, 64, 700 };


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_guard_stream: check failed: %s\n", what);
        abort();
    }
}


/*
 * Bits of choice: 0 the detectors on the output (else email only), 1 a
 * deny check on the output, 2 that check blocks (else redacts), 3 the deny
 * check is a regex (else literals).
 */
static sl_guard_policy_t *
fuzz_policy(sl_pool_t *pool, unsigned choice)
{
    sl_guard_policy_t *p = sl_pcalloc(pool, sizeof(*p));
    sl_guard_check_t *c;
    char err[200];

    p->name = "fuzz";
    p->checks = sl_pcalloc(pool, 3 * sizeof(*p->checks));
    /* input: emails redacted with restore, so the answer's [EMAIL_1] maps back */
    c = &p->checks[p->nchecks++];
    c->kind = SL_GUARD_DETECT;
    c->action = SL_GUARD_REDACT;
    c->restore = true;
    c->on = SL_GUARD_INPUT;
    c->detect = 1u << SL_GUARD_DET_EMAIL;
    /* output: detectors redacted */
    c = &p->checks[p->nchecks++];
    c->kind = SL_GUARD_DETECT;
    c->action = SL_GUARD_REDACT;
    c->on = SL_GUARD_OUTPUT;
    c->detect = (choice & 1u) ? (1u << SL_GUARD_DET_COUNT) - 1 : 1u << SL_GUARD_DET_EMAIL;
    if (choice & 2u) {
        c = &p->checks[p->nchecks++];
        c->kind = SL_GUARD_DENY;
        c->action = (choice & 4u) ? SL_GUARD_BLOCK : SL_GUARD_REDACT;
        c->on = SL_GUARD_OUTPUT;
        c->deny = sl_pcalloc(pool, 2 * sizeof(*c->deny));
        if (choice & 8u) {
            fuzz_check(
                sl_guard_pattern_compile(pool, "re:code[0-9]+x?", &c->deny[0], err, sizeof(err))
                    == 0,
                "regex compiles");
            c->ndeny = 1;
        } else {
            fuzz_check(sl_guard_pattern_compile(pool, "falcon", &c->deny[0], err, sizeof(err)) == 0,
                       "literal compiles");
            fuzz_check(sl_guard_pattern_compile(pool, "top  secret!", &c->deny[1], err, sizeof(err))
                           == 0,
                       "literal compiles");
            c->ndeny = 2;
        }
    }
    sl_guard_policy_finish(pool, p);
    return p;
}


/* A session of p that has redacted one address on the input ([EMAIL_1]). */
static void
fuzz_session(sl__guard_sess_t *s, sl_pool_t *pool, const sl_guard_policy_t *p)
{
    static const char in[] = "write to me@home.org";
    sl_buf_t out = SL_BUF_INIT;
    size_t cut = 0;
    bool changed = false;

    sl__guard_sess_init(s, pool, p);
    fuzz_check(
        sl__guard_apply(s, SL_GUARD_INPUT, in, sizeof(in) - 1, 0, true, false, &out, &cut, &changed)
                == 0
            && changed && s->nrestorable == 1,
        "the input's address is redacted");
    sl_buf_free(&out);
}


static bool
fuzz_same_decisions(const sl__guard_sess_t *a, const sl__guard_sess_t *b)
{
    if (a->ndec != b->ndec) {
        return false;
    }
    for (size_t i = 0; i < a->ndec; i++) {
        if (strcmp(a->dec[i].rule, b->dec[i].rule) != 0 || a->dec[i].action != b->dec[i].action
            || a->dec[i].output != b->dec[i].output || a->dec[i].count != b->dec[i].count) {
            return false;
        }
    }
    return true;
}


/* What one side made of the text, on a failed check. */
static void
fuzz_dump(const char *what, const sl__guard_sess_t *s, const sl_buf_t *out)
{
    fprintf(stderr, "%s: \"%.*s\"\n", what, (int) out->len, out->p != NULL ? out->p : "");
    for (size_t i = 0; i < s->ndec; i++) {
        fprintf(stderr, "  %s%s/%s*%u\n", s->dec[i].output ? "output:" : "", s->dec[i].rule,
                sl_guard_action_name(s->dec[i].action), s->dec[i].count);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_pool_t *pool;
    const sl_guard_policy_t *p;
    sl__guard_sess_t whole, st;
    sl__guard_stream_t stream;
    sl_buf_t a = SL_BUF_INIT, b = SL_BUF_INIT, piece = SL_BUF_INIT;
    const char *text;
    size_t len, cut = 0, cap, i = 0;
    uint32_t seed;
    bool changed = false, json;
    int rc_whole, rc_stream = 0;

    if (size < 2 || size - 2 > FUZZ_MAX_TEXT) {
        return 0;
    }
    pool = sl_pool_create(0);
    p = fuzz_policy(pool, data[0]);
    cap = fuzz_chunk_caps[data[1] & 7u];
    json = (data[1] & 8u) != 0;
    seed = (uint32_t) data[1] * 2654435761u + 1u;
    text = (const char *) data + 2;
    len = size - 2;

    fuzz_session(&whole, pool, p);
    fuzz_session(&st, pool, p);
    rc_whole =
        sl__guard_apply(&whole, SL_GUARD_OUTPUT, text, len, 0, true, json, &a, &cut, &changed);
    fuzz_check(rc_whole == 0 || rc_whole == SL_EDENIED, "the engine answers 0 or SL_EDENIED");
    fuzz_check(rc_whole == 0 ? cut == len : cut <= len, "the whole text is decided");

    memset(&stream, 0, sizeof(stream));
    stream.json = json;
    while (i < len && rc_stream == 0) {
        size_t n;

        seed = seed * 1103515245u + 12345u;
        n = 1 + (size_t) ((seed >> 16) % cap);
        n = n > len - i ? len - i : n;
        sl_buf_clear(&piece);
        rc_stream = sl__guard_stream_feed(&st, &stream, text + i, n, false, &piece);
        fuzz_check(rc_stream == 0 || rc_stream == SL_EDENIED, "a feed answers 0 or SL_EDENIED");
        sl_buf_append(&b, piece.p, piece.len);
        i += n;
    }
    if (rc_stream == 0) {
        sl_buf_clear(&piece);
        rc_stream = sl__guard_stream_feed(&st, &stream, "", 0, true, &piece);
        sl_buf_append(&b, piece.p, piece.len);
    } else {
        /* blocked: the stream takes nothing more and lets nothing out */
        sl_buf_clear(&piece);
        fuzz_check(sl__guard_stream_feed(&st, &stream, "more", 4, true, &piece) == SL_EDENIED
                       && piece.len == 0,
                   "a blocked stream stays blocked and silent");
    }
    if (len < SL__GUARD_FORCE) {
        fuzz_check(rc_whole == rc_stream, "the stream blocks when the whole text does");
        if (a.len != b.len || (a.len > 0 && memcmp(a.p, b.p, a.len) != 0)) {
            fuzz_dump("whole", &whole, &a);
            fuzz_dump("stream", &st, &b);
            fuzz_check(0, "the stream lets out what the engine makes of the whole text");
        }
        if (!fuzz_same_decisions(&whole, &st)) {
            fuzz_dump("whole", &whole, &a);
            fuzz_dump("stream", &st, &b);
            fuzz_check(0, "the same decisions");
        }
    }

    sl__guard_stream_free(&stream);
    sl_buf_free(&a);
    sl_buf_free(&b);
    sl_buf_free(&piece);
    sl_pool_destroy(pool);
    return 0;
}
