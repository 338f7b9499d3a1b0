/*
 * Module-private declarations of the guardrails (core/gateway/guard*.c):
 *
 *   guard_detect.c  the built-in detectors and the deny patterns: where
 *                   they match in a text
 *   guard_detect_num.c  the number detectors the scan calls (card, phone,
 *                   IP, IBAN)
 *   guard_memo.c    what the detectors found in the texts scanned last
 *   guard_redact.c  the text engine (every check of a policy over one text:
 *                   hits, block, placeholders, restore, decisions) and the
 *                   streaming redactor built on it
 *   guard.c         policies, the request phase, the answer filters, the
 *                   ledger string and the shared counters
 *
 * Texts are decoded UTF-8 (JSON string values, answer text); every
 * position is a byte offset. Nothing here is used outside core/gateway/
 * except by the unit tests, the fuzz target and `sluice guard test`.
 */
#ifndef SL_CORE_GATEWAY_GUARD_INTERNAL_H
#define SL_CORE_GATEWAY_GUARD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/base/str.h"
#include "core/gateway/guard.h"

#define SL__GUARD_CTX       32          /* bytes of emitted text a stream keeps as left context */
#define SL__GUARD_HOLD      64          /* least bytes a stream holds back for output checks */
#define SL__GUARD_FORCE     4096        /* a stream emits a "word" this long even without a space */
#define SL__GUARD_OPEN_MAX  (16 * 1024) /* ... and holds an open private key block this long */
#define SL__GUARD_PH_MAX    40          /* bytes of a placeholder, "[REDACTED_4294967295]" fits */
#define SL__GUARD_EMAIL_MAX 254

/* One match in a text. */
typedef struct sl__guard_hit {
    size_t start;
    size_t end;
    unsigned det;                  /* sl_guard_det_e */
    bool open;                     /* may go on past the end of the text (a PEM block) */
    const sl_guard_check_t *check; /* NULL for the detectors alone and for restore */
    const void *ph;                /* restore: the placeholder entry */
} sl__guard_hit_t;

/* A growable list of hits on the heap (reused between texts). */
typedef struct sl__guard_hits {
    sl__guard_hit_t *v;
    size_t n;
    size_t cap;
    /*
     * The earliest start of a deny literal matched up to the text's end but
     * not whole (SIZE_MAX: none): a stream must hold it back, since white
     * space runs make a literal's match longer than any fixed hold.
     */
    size_t partial;
} sl__guard_hits_t;

void sl__guard_hits_push(sl__guard_hits_t *h, size_t start, size_t end, unsigned det, bool open);
void sl__guard_hits_free(sl__guard_hits_t *h);

/*
 * guard_detect.c. Appends the matches of the detectors in mask (bits
 * 1u << sl_guard_det_e) that start in t[from..len); t[0..from) is context
 * (what came before, for the boundary tests). A match runs to where the
 * text ends when the text may go on (a PEM block without its END line:
 * open). Matches of one detector never overlap; matches of different ones
 * may. Linear in len.
 */
void sl__guard_detect(const char *t, size_t len, size_t from, unsigned mask, sl__guard_hits_t *out)
    __attribute__((noinline));

/*
 * guard_memo.c. sl__guard_detect() of the whole text (from 0), answered
 * from the process's memo when it scanned the same text (byte for byte)
 * with the same mask at least twice before (the first scan notes only its
 * hash, the second keeps it). Texts shorter than SL__GUARD_MEMO_MIN or
 * longer than SL__GUARD_MEMO_TEXT_MAX are scanned and not kept; the memo
 * keeps SL__GUARD_MEMO_BYTES of texts and their matches at most, dropping
 * the oldest first. Event loop only.
 */
#define SL__GUARD_MEMO_MIN      1024
#define SL__GUARD_MEMO_TEXT_MAX (256 * 1024)
#define SL__GUARD_MEMO_BYTES    (8 * 1024 * 1024)

void sl__guard_detect_whole(const char *t, size_t len, unsigned mask, sl__guard_hits_t *out);

/* The memo's counters since the process started or the last sl__guard_memo_clear(). */
typedef struct sl__guard_memo_stats {
    uint64_t hits;
    uint64_t misses;
    size_t bytes; /* held now */
} sl__guard_memo_stats_t;

sl__guard_memo_stats_t sl__guard_memo_stats(void);

/* Empties the memo and zeroes its counters (the tests). */
void sl__guard_memo_clear(void);

/* The instruction sets of the detectors' scan (sl__guard_detect_isa()). */
#define SL__GUARD_ISA_SCALAR 0u
#define SL__GUARD_ISA_SSE2   1u
#define SL__GUARD_ISA_AVX2   2u
#define SL__GUARD_ISA_BEST   99u /* the best this CPU has (the default) */

/*
 * For the tests: makes sl__guard_detect() scan with isa from now on, in
 * this process (the matches are the same with each). Returns 0, or
 * SL_ENOTFOUND when this build or CPU lacks it.
 */
int sl__guard_detect_isa(unsigned isa);

/*
 * Appends the matches of deny pattern p starting in t[from..len).
 * at_start: t[0] is the start of the whole text (a regex's ^).
 */
void sl__guard_deny(const sl_guard_pattern_t *p, const char *t, size_t len, size_t from,
                    bool at_start, sl__guard_hits_t *out);

/*
 * The detectors' byte classes (ASCII; every byte >= 0x80 is none of them):
 * sl__guard_cls[c] holds c's SL__GUARD_C_* bits, SL__GUARD_C_TRIG for the
 * bytes where the scan stops to look (see sl__guard_detect): digits, '@',
 * '+', '(', '-', '_', ':', 'A' and 'J'.
 */
#define SL__GUARD_C_DIGIT 1u
#define SL__GUARD_C_ALPHA 2u
#define SL__GUARD_C_UNDER 4u
#define SL__GUARD_C_HEXL  8u /* a-f A-F */
#define SL__GUARD_C_DASH  16u
#define SL__GUARD_C_TRIG  32u
/* no number starts right after it: a digit, '_', '+', '/', '@', '.' */
#define SL__GUARD_C_NOSTART 64u
#define SL__GUARD_C_LOCAL   128u /* an e-mail address's local part: [A-Za-z0-9._%+-] */

extern const unsigned char sl__guard_cls[256];

/* Whether c is a digit; a letter; either; either or '_'; a hex digit. */
static inline bool
sl__guard_digit(unsigned char c)
{
    return (sl__guard_cls[c] & SL__GUARD_C_DIGIT) != 0;
}

static inline bool
sl__guard_alpha(unsigned char c)
{
    return (sl__guard_cls[c] & SL__GUARD_C_ALPHA) != 0;
}

static inline bool
sl__guard_alnum(unsigned char c)
{
    return (sl__guard_cls[c] & (SL__GUARD_C_DIGIT | SL__GUARD_C_ALPHA)) != 0;
}

static inline bool
sl__guard_word(unsigned char c)
{
    return (sl__guard_cls[c] & (SL__GUARD_C_DIGIT | SL__GUARD_C_ALPHA | SL__GUARD_C_UNDER)) != 0;
}

static inline bool
sl__guard_hex(unsigned char c)
{
    return (sl__guard_cls[c] & (SL__GUARD_C_DIGIT | SL__GUARD_C_HEXL)) != 0;
}

/*
 * guard_detect_num.c: the number detectors sl__guard_detect() calls where
 * a number may start, at t[i] (for a card, t[i..r) is the run of digits
 * there): the end of the match starting at t[i] (an IBAN's country code),
 * or 0.
 */
size_t sl__guard_card(const char *t, size_t len, size_t i, size_t r);
size_t sl__guard_phone(const char *t, size_t len, size_t i);
size_t sl__guard_ipv4(const char *t, size_t len, size_t i);
size_t sl__guard_ipv6(const char *t, size_t len, size_t i);
size_t sl__guard_iban(const char *t, size_t len, size_t i);

/* Within a scan: whether its instruction set (sl__guard_detect_isa()) is SSE2 or better. */
bool sl__guard_simd(void);

/* The scan's instruction set (SL__GUARD_ISA_*), as the next scan will pick it. */
unsigned sl__guard_isa(void);

/* The checksums, for the tests: Luhn over the digits of s; IBAN mod 97 of an IBAN without spaces.
 */
bool sl__guard_luhn(const char *digits, size_t n);
bool sl__guard_iban_valid(const char *s, size_t n);

#define SL__GUARD_PH_TEXT 24 /* a placeholder's text and its NUL: "[REDACTED_4294967295]" fits */

/* A placeholder and what it stands for (fields ordered so that no padding is left between them). */
typedef struct sl__guard_ph {
    sl_str_t orig; /* in the pool */
    sl_str_t
        orig_json;  /* orig as JSON string content (escaped, no quotes), made when first needed */
    uint64_t horig; /* hash of det and orig (the session's table) */
    unsigned det;
    uint8_t len;     /* of text */
    bool restorable; /* from an input check with restore: true */
    char text[SL__GUARD_PH_TEXT];
} sl__guard_ph_t;

/*
 * One request's (or one `sluice guard test` run's) guardrail state: the
 * policy, its placeholders and the decisions. In pool.
 */
typedef struct sl__guard_sess {
    sl_pool_t *pool;
    const sl_guard_policy_t *policy;
    sl__guard_ph_t **ph; /* every placeholder, in the order they were made (each in pool) */
    size_t nph;
    size_t phcap;
    size_t nrestorable;
    uint32_t *by_orig; /* hash of the placeholders by label and text: index in ph + 1, 0 empty */
    size_t tabcap;     /* its slots (a power of two, at most 3/4 full) */
    unsigned counter[SL_GUARD_DET_COUNT + 1];          /* placeholders per label, the last: deny */
    sl__guard_ph_t **by_label[SL_GUARD_DET_COUNT + 1]; /* label's placeholder N at [N - 1] */
    size_t labcap[SL_GUARD_DET_COUNT + 1];
    sl_guard_decision_t *dec;
    size_t ndec;
    size_t deccap;
    size_t lastdec;                  /* the decision last counted, + 1 (0: none) */
    const sl_guard_check_t *blocked; /* the check that blocked, when one did */
    unsigned blocked_det;
    bool blocked_output;
    sl__guard_hits_t hits; /* scratch */
    sl_buf_t scratch;      /* scratch */
    sl_json_edit_t *repl;  /* the redactions of sl__guard_apply() without out, as edits (heap) */
    size_t nrepl;
    size_t caprepl;
    size_t repl_base; /* where the text starts in the document those edits are of */
    bool twin;        /* sl__guard_apply()'s text is a twin (sl__guard_twin()) */
    char *slab;       /* where the next placeholder goes: a piece of pool cut for several */
    size_t slab_left;
    size_t slab_size; /* of the last piece (each is twice the one before, up to a bound) */
} sl__guard_sess_t;

/* Initializes s for policy (buffers released with pool). */
void sl__guard_sess_init(sl__guard_sess_t *s, sl_pool_t *pool, const sl_guard_policy_t *policy);

/* Records a decision of check c about rule (deduplicated by rule, action and direction). */
void sl__guard_decide(sl__guard_sess_t *s, const sl_guard_check_t *c, const char *rule,
                      bool output);

/* The rule name of a check's decision about det ("email", "deny[2]", its name). */
const char *sl__guard_rule(const sl_guard_check_t *c, unsigned det);

/* The placeholder whose text is p[0..len) ("[EMAIL_1]"), or NULL. */
const sl__guard_ph_t *sl__guard_ph_find(const sl__guard_sess_t *s, const char *p, size_t len);

/* ph's original as JSON string content (escaped, without quotes), made once in the pool. */
sl_str_t sl__guard_ph_json(sl__guard_sess_t *s, const sl__guard_ph_t *ph);

/*
 * The text engine: runs the policy's text checks of direction dir
 * (SL_GUARD_INPUT or SL_GUARD_OUTPUT; on output also the restore of the
 * placeholders) over w[0..n), of which w[0..from) is context already
 * dealt with. With final, everything up to n is decided; otherwise *cut
 * is how far the text is decided: never inside a match or a placeholder,
 * and, when output checks run, never inside a word and at least
 * policy->hold bytes before n (a stream holds the rest back). Hits that
 * start before *cut are applied and recorded as decisions; out gets
 * w[from..*cut) with redactions and restores (JSON-escaped when json: the
 * text is JSON, e.g. tool arguments). *changed tells whether out differs
 * from the text. Without out (NULL; on input only), each redaction is
 * appended to s->repl instead, as an edit of the document the text is in
 * at s->repl_base (its bytes unescaped: from s->repl_base + start to
 * s->repl_base + end, the placeholder's text; the caller empties
 * s->repl). Returns
 * 0, or SL_EDENIED when a block hit starts before the cut: *cut is then
 * its start and out the text before it. With s->twin (a request string's
 * twin, final, from 0, no out), SL__GUARD_UNTWIN when a hit covers a byte
 * an escape wrote: nothing was applied or recorded, and the caller
 * decodes the string instead.
 */
#define SL__GUARD_UNTWIN 1
int sl__guard_apply(sl__guard_sess_t *s, unsigned dir, const char *w, size_t n, size_t from,
                    bool final, bool json, sl_buf_t *out, size_t *cut, bool *changed);

/* The streaming redactor of one text (an answer's text or a tool call's arguments). */
typedef struct sl__guard_stream {
    sl_buf_t win; /* context + held text, decoded */
    size_t from;  /* where the held text starts in win */
    bool json;    /* the text is JSON */
    bool started; /* the text's start is no longer in win */
    bool blocked; /* a block ended it: nothing more goes out */
    unsigned choice;
    unsigned slot; /* 0: answer text; k + 1: tool call k's arguments */
} sl__guard_stream_t;

/*
 * Feeds text[0..len) (decoded) to st and appends to out what may go out now
 * (everything with final). Returns 0 or SL_EDENIED (out holds the text
 * before the blocked match; the stream takes nothing more).
 */
int sl__guard_stream_feed(sl__guard_sess_t *s, sl__guard_stream_t *st, const char *text, size_t len,
                          bool final, sl_buf_t *out);

/* Releases st's buffers. */
void sl__guard_stream_free(sl__guard_stream_t *st);

/*
 * Decodes a checked JSON string literal (quotes included) into out
 * (appended). Returns 0 or SL_EPARSE.
 */
int sl__guard_unquote(sl_str_t lit, sl_buf_t *out);

/* One escape of a decoded string body: its bytes in the decoded text and in the body. */
typedef struct sl__guard_esc {
    size_t d;  /* where its decoded bytes start */
    size_t dl; /* how many there are */
    size_t r;  /* where the escape starts in the body (its backslash) */
    size_t rl; /* its length: 2, 6 or 12 (a surrogate pair) */
} sl__guard_esc_t;

/* Where a decoded text's bytes are in the JSON string body it came from. */
typedef struct sl__guard_map {
    sl__guard_esc_t *v; /* heap */
    size_t n;
    size_t cap;
} sl__guard_map_t;

/*
 * Decodes the JSON string body p[0..n) (no quotes) into out (appended),
 * recording its escapes in map (reset first) unless it is NULL. Returns 0,
 * or SL_EPARSE for an escape that is not one (a bad letter, a \u without
 * four hex digits). Strict, SL_EPARSE also for the escapes the JSON reader
 * refuses: \u0000 and a surrogate not in a pair (its bytes outside the
 * escapes are sl_utf8_text's to check); else those decode as they are.
 */
int sl__guard_decode(const char *p, size_t n, sl_buf_t *out, sl__guard_map_t *map, bool strict);

/*
 * A request string's twin: the JSON string body p[0..n) (as the JSON reader
 * took it) with each escape \n \t \r \b \f \" \\ written as two
 * copies of the byte it stands for ("a\nb" becomes 'a' '\n' '\n' 'b'),
 * into out (n bytes). The detectors find in it what they find in the
 * decoded text (the escapes' bytes end every match they do not hold), at
 * the body's offsets: no decode and no map (sl_guard_request scans a twin
 * unless an input deny pattern needs the decoded text, a regex or a
 * literal with '"', '\\' or a control byte, and decodes a string whose
 * matches hold an escape's bytes). Returns 0, or SL_ENOTFOUND when p holds
 * an escape a twin cannot (\/ and the \u ones; out is then undefined).
 */
int sl__guard_twin(const char *p, size_t n, char *out);

/* For the tests: whether sl_guard_request scans twins (the default) or decodes every string. */
void sl__guard_twin_enable(bool on);

/* The body offset of the decoded text's byte d (a character's first byte, or the text's end). */
size_t sl__guard_map_raw(const sl__guard_map_t *map, size_t d);

#define SL__GUARD_PLAIN_ESC  1u /* a backslash */
#define SL__GUARD_PLAIN_HIGH 2u /* a control byte or one >= 0x80 */

/* What p[0..n) holds besides printable ASCII: SL__GUARD_PLAIN_* bits. */
unsigned sl__guard_plain(const char *p, size_t n);

#endif
