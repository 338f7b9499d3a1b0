/*
 * The guardrails' text engine and its streaming redactor.
 *
 * sl__guard_apply() runs every text check of a policy over one text at
 * once: the detectors and deny patterns report their hits, a block hit
 * wins over everything (the text up to it may still go out), log hits are
 * recorded, and the redact hits (and, on the answer, the placeholders to
 * restore) are applied left to right, the earliest and then the longest
 * winning where two overlap. A redacted match becomes a placeholder
 * [LABEL_N], numbered per label within the request; the same text always
 * gets the same placeholder.
 *
 * A stream's text arrives in pieces, so the engine also says how far the
 * text is decided (the cut): never inside a match, a placeholder or (with
 * output checks) a word, and at least the policy's hold before the end,
 * so a match that the next piece could still complete or extend is never
 * cut in two. The streaming redactor keeps what lies past the cut, with a
 * little of what went before as context for the boundary tests, and feeds
 * it again with the next piece. For every text shorter than
 * SL__GUARD_FORCE the pieces it emits join into exactly what the engine
 * makes of the whole text (the fuzz target checks it). Past that a "word"
 * without a space goes out as it stands; a private key block with no END
 * line yet is held up to SL__GUARD_OPEN_MAX (an RSA 16384 key's PEM is
 * about 13 KiB), so a real key is redacted whole, and once it ended it
 * goes out whole while what follows it waits as usual. Each piece scans
 * the text held again, so the bound also bounds that work.
 */
#include "core/gateway/guard_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/base/errno.h"
#include "core/base/json.h"

#define REDACT_PENDING   8
#define REDACT_SLAB      4096  /* bytes of pool cut at once for placeholders, at first */
#define REDACT_SLAB_MAX  65536 /* ... doubling up to this */
#define REDACT_ALIGN     _Alignof(sl__guard_ph_t)      /* where an entry may start */
#define REDACT_ENTRY     (sizeof(sl__guard_ph_t) + 24) /* an entry with an e-mail address */
#define REDACT_TAB_FIRST 256 /* slots of the placeholders' table at first (1 KiB) */
#define REDACT_PER_HIT   128 /* bytes of text per hit a dense text has (the arrays' first size) */

/*
 * The decisions of one sl__guard_apply() counted as they come and recorded
 * at its end, in the order of their first hit (what recording each at once
 * would give): one look-up per rule instead of one per hit.
 */
typedef struct redact_pending {
    struct {
        const sl_guard_check_t *check;
        unsigned det;
        unsigned count;
    } v[REDACT_PENDING];
    size_t n;
    unsigned char last[SL_GUARD_DET_COUNT + 1]; /* by det: the entry it was last counted in, + 1 */
} redact_pending_t;

static void redact_free(void *arg);
static void redact_decide_n(sl__guard_sess_t *s, const sl_guard_check_t *c, const char *rule,
                            bool output, unsigned count);
static void redact_pend(redact_pending_t *pd, sl__guard_sess_t *s, const sl_guard_check_t *c,
                        unsigned det, bool output);
static void redact_pend_find(redact_pending_t *pd, sl__guard_sess_t *s, const sl_guard_check_t *c,
                             unsigned det, bool output) __attribute__((noinline));
static void redact_pend_flush(redact_pending_t *pd, sl__guard_sess_t *s, bool output);
static bool redact_space(unsigned char c);
static bool redact_collect(sl__guard_sess_t *s, unsigned dir, const char *w, size_t n, size_t from,
                           unsigned *room);
static void redact_reserve(sl__guard_sess_t *s, const unsigned *room);
static void *redact_grow(sl_pool_t *pool, void *v, size_t n, size_t *cap, size_t need);
static void redact_restore_hits(sl__guard_sess_t *s, const char *w, size_t n, size_t from);
static size_t redact_fragment(const char *w, size_t n, size_t from);
static bool redact_open_at(const sl__guard_hits_t *h, size_t from);
static size_t redact_closed_end(const sl__guard_hits_t *h, size_t from, size_t n);
static size_t redact_cut(sl__guard_sess_t *s, const char *w, size_t n, size_t from, size_t hold,
                         bool words);
static void redact_sort(sl__guard_hits_t *h);
static const sl__guard_ph_t *redact_placeholder(sl__guard_sess_t *s, unsigned det, bool restorable,
                                                const char *p, size_t len);
static uint64_t redact_hash(unsigned label, const char *p, size_t len);
static const sl__guard_ph_t *redact_by_text(const sl__guard_sess_t *s, const char *p, size_t len);
static void redact_index(sl__guard_sess_t *s, size_t i);
static void redact_count_up(char *t, uint8_t *len);
static void redact_json_escape(sl_buf_t *out, const char *p, size_t len);
static size_t redact_utf8(char *d, unsigned cp);
static int redact_hex4(const char *p, unsigned *cp);
static size_t redact_u(const char *bs, const char *end, bool strict, unsigned *cp);
/* inlined: it is the decode's inner loop */
static inline bool redact_copy_plain(char **op, const char **pp, const char *end)
    __attribute__((always_inline));
static void redact_repl_reserve(sl__guard_sess_t *s, size_t more);
static bool redact_twin_clean(const sl__guard_hits_t *h, const char *w);
static uint64_t redact_backslashes(const char *p);

/* What the one-byte escape \\X decodes to, by X (0: not one; \\u is read apart). */
static const char redact_esc[256] = {
    ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
    ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t',
};

/*
 * What a twin writes for the escape \X, by X (0: a twin cannot hold it;
 * \/ is not one, for '/' and "//" end a number differently: "1/2", "1//2").
 */
static const char redact_twin_esc[256] = {
    ['"'] = '"',  ['\\'] = '\\', ['b'] = '\b', ['f'] = '\f',
    ['n'] = '\n', ['r'] = '\r',  ['t'] = '\t',
};

static const char *const redact_labels[SL_GUARD_DET_COUNT + 1] = {
    [SL_GUARD_DET_EMAIL] = "EMAIL",   [SL_GUARD_DET_PHONE] = "PHONE",
    [SL_GUARD_DET_CARD] = "CARD",     [SL_GUARD_DET_IBAN] = "IBAN",
    [SL_GUARD_DET_IP] = "IP",         [SL_GUARD_DET_SECRET] = "SECRET",
    [SL_GUARD_DET_DENY] = "REDACTED",
};

/* "[LABEL_", padded to a fixed size (copied whole), and its length */
static const char redact_prefix[SL_GUARD_DET_COUNT + 1][12] = {
    [SL_GUARD_DET_EMAIL] = "[EMAIL_",   [SL_GUARD_DET_PHONE] = "[PHONE_",
    [SL_GUARD_DET_CARD] = "[CARD_",     [SL_GUARD_DET_IBAN] = "[IBAN_",
    [SL_GUARD_DET_IP] = "[IP_",         [SL_GUARD_DET_SECRET] = "[SECRET_",
    [SL_GUARD_DET_DENY] = "[REDACTED_",
};
static const unsigned char redact_prefix_len[SL_GUARD_DET_COUNT + 1] = {
    [SL_GUARD_DET_EMAIL] = 7, [SL_GUARD_DET_PHONE] = 7, [SL_GUARD_DET_CARD] = 6,
    [SL_GUARD_DET_IBAN] = 6,  [SL_GUARD_DET_IP] = 4,    [SL_GUARD_DET_SECRET] = 8,
    [SL_GUARD_DET_DENY] = 10,
};


void
sl__guard_sess_init(sl__guard_sess_t *s, sl_pool_t *pool, const sl_guard_policy_t *policy)
{
    memset(s, 0, sizeof(*s));
    s->pool = pool;
    s->policy = policy;
    sl_pool_on_destroy(pool, redact_free, s);
}


static void
redact_free(void *arg)
{
    sl__guard_sess_t *s = arg;

    sl__guard_hits_free(&s->hits);
    sl_buf_free(&s->scratch);
    free(s->repl);
}


const char *
sl__guard_rule(const sl_guard_check_t *c, unsigned det)
{
    if (c->name != NULL) {
        return c->name;
    }
    if (c->kind == SL_GUARD_DENY) {
        return c->deny_rule;
    }
    return sl_guard_det_name(det);
}


void
sl__guard_decide(sl__guard_sess_t *s, const sl_guard_check_t *c, const char *rule, bool output)
{
    redact_decide_n(s, c, rule, output, 1);
}


/* sl__guard_decide() count times at once. */
static void
redact_decide_n(sl__guard_sess_t *s, const sl_guard_check_t *c, const char *rule, bool output,
                unsigned count)
{
    /* the same rule is nearly always the same string: the pointers first, no strcmp */
    for (size_t i = 0; i < s->ndec; i++) {
        sl_guard_decision_t *d = &s->dec[i];

        if (d->rule == rule && d->action == c->action && d->output == output) {
            d->count += count;
            return;
        }
    }
    for (size_t i = 0; i < s->ndec; i++) {
        sl_guard_decision_t *d = &s->dec[i];

        if (d->action == c->action && d->output == output && strcmp(d->rule, rule) == 0) {
            d->count += count;
            return;
        }
    }
    s->dec = sl_pgrow(s->pool, s->dec, s->ndec, &s->deccap, 4, sizeof(*s->dec));
    s->dec[s->ndec++] = (sl_guard_decision_t){ s->policy->name, rule, c->action, output, count };
}


static bool
redact_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}


/*
 * Every text check of direction dir, over w[from..n). True when a block
 * check found something. room[label] counts the redact hits of each label
 * (the placeholders they may make).
 */
static bool
redact_collect(sl__guard_sess_t *s, unsigned dir, const char *w, size_t n, size_t from,
               unsigned *room)
{
    const sl_guard_policy_t *p = s->policy;
    sl__guard_hits_t *h = &s->hits;
    bool block = false;

    for (size_t i = 0; i < p->nchecks; i++) {
        const sl_guard_check_t *c = &p->checks[i];
        size_t before = h->n;
        unsigned redact = c->action == SL_GUARD_REDACT;

        if (!(c->on & dir)) {
            continue;
        }
        if (c->kind == SL_GUARD_DETECT) {
            if (from == 0) {
                sl__guard_detect_whole(w, n, c->detect, h); /* a request's text, mostly */
            } else {
                sl__guard_detect(w, n, from, c->detect, h);
            }
        } else if (c->kind == SL_GUARD_DENY) {
            for (size_t k = 0; k < c->ndeny; k++) {
                sl__guard_deny(&c->deny[k], w, n, from, from == 0, h);
            }
        }
        for (size_t k = before; k < h->n; k++) {
            h->v[k].check = c;
            room[h->v[k].det] += redact; /* a detector's or SL_GUARD_DET_DENY: the label */
        }
        block = block || (c->action == SL_GUARD_BLOCK && h->n > before);
    }
    return block;
}


/*
 * Room in the placeholder arrays for room[label] more placeholders of each
 * label (at least twice what there was, so that many texts of a few hits
 * each do not copy them every time), and a slab for their entries when
 * the one left looks short.
 */
static void
redact_reserve(sl__guard_sess_t *s, const unsigned *room)
{
    size_t all = 0, size;

    for (unsigned l = 0; l <= SL_GUARD_DET_COUNT; l++) {
        if (s->counter[l] + (size_t) room[l] > s->labcap[l]) {
            s->by_label[l] = redact_grow(s->pool, s->by_label[l], s->counter[l], &s->labcap[l],
                                         s->counter[l] + (size_t) room[l]);
        }
        all += room[l];
    }
    if (s->nph + all > s->phcap) {
        s->ph = redact_grow(s->pool, s->ph, s->nph, &s->phcap, s->nph + all);
    }
    if (all * REDACT_ENTRY > s->slab_left && all * REDACT_ENTRY > REDACT_SLAB) {
        /* a dense text: one slab for its entries (the doublings took several) */
        size = all * REDACT_ENTRY < REDACT_SLAB_MAX ? all * REDACT_ENTRY : REDACT_SLAB_MAX;
        s->slab = sl_palloc(s->pool, size);
        s->slab_left = size;
        s->slab_size = size > s->slab_size ? size : s->slab_size;
    }
}


/* A pool array of n placeholder pointers with room for need (at least twice *cap and 16): v, or a
 * copy. */
static void *
redact_grow(sl_pool_t *pool, void *v, size_t n, size_t *cap, size_t need)
{
    size_t next = *cap * 2 > need ? *cap * 2 : need;
    void *nv;

    next = next > 16 ? next : 16;
    nv = sl_palloc(pool, next * sizeof(sl__guard_ph_t *));
    if (n > 0) {
        memcpy(nv, v, n * sizeof(sl__guard_ph_t *));
    }
    *cap = next;
    return nv;
}


/* The restorable placeholders in w[from..n). */
static void
redact_restore_hits(sl__guard_sess_t *s, const char *w, size_t n, size_t from)
{
    const char *p, *end;

    if (n <= from) {
        return; /* w may be NULL (an empty stream window) */
    }
    p = w + from;
    end = w + n;
    while (p < end && (p = memchr(p, '[', (size_t) (end - p))) != NULL) {
        /* [LABEL_N]: up to its ']', made of A-Z 0-9 _ only */
        const char *q = p + 1;
        const sl__guard_ph_t *ph;

        while (q < end && (size_t) (q - p) < SL__GUARD_PH_MAX
               && ((unsigned) (*q - 'A') < 26u || (unsigned) (*q - '0') < 10u || *q == '_')) {
            q++;
        }
        if (q < end && *q == ']') {
            ph = redact_by_text(s, p, (size_t) (q + 1 - p));
            if (ph != NULL && ph->restorable) {
                sl__guard_hits_push(&s->hits, (size_t) (p - w), (size_t) (q + 1 - w),
                                    SL_GUARD_DET_RESTORE, false);
                s->hits.v[s->hits.n - 1].ph = ph;
            }
        }
        p++;
    }
}


/*
 * A hash of the label and the text: eight bytes a step up to the last 9
 * to 16, which are taken as two words of eight (overlapping), each mixed
 * with its own multiplier, then one finishing mix.
 */
static uint64_t
redact_hash(unsigned label, const char *p, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t) label << 32) ^ len, a = 0, b = 0;
    size_t i = 0;

    if (len >= 8) {
        for (; i + 16 < len; i += 8) {
            memcpy(&a, p + i, 8);
            h = (h ^ a) * 0xff51afd7ed558ccdULL;
            h ^= h >> 29;
        }
        memcpy(&a, p + i, 8);
        memcpy(&b, p + len - 8, 8);
    } else {
        for (unsigned k = 0; k < len; k++) {
            a |= (uint64_t) (unsigned char) p[k] << (8 * k);
        }
    }
    h ^= a * 0xff51afd7ed558ccdULL;
    h ^= (b ^ (h >> 31)) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 32;
    h *= 0x9fb21c651e98df25ULL;
    return h ^ (h >> 29);
}


/*
 * The placeholder whose text is p[0..len), or NULL: "[LABEL_N]" is read as
 * its label and number, which index the label's placeholders.
 */
static const sl__guard_ph_t *
redact_by_text(const sl__guard_sess_t *s, const char *p, size_t len)
{
    size_t us = len, v = 0;
    const sl__guard_ph_t *ph;

    if (s->nph == 0 || len < 4 || len > SL__GUARD_PH_MAX || p[0] != '[' || p[len - 1] != ']') {
        return NULL;
    }
    while (us > 1 && p[us - 1] != '_') {
        us--;
    }
    /* N: 1 to 10 digits without a leading zero */
    if (us <= 1 || us + 1 >= len || p[us] == '0' || len - 1 - us > 10) {
        return NULL;
    }
    for (size_t k = us; k < len - 1; k++) {
        if ((unsigned) (p[k] - '0') >= 10u) {
            return NULL;
        }
        v = v * 10 + (size_t) (p[k] - '0');
    }
    for (unsigned label = 0; label <= SL_GUARD_DET_COUNT; label++) {
        if (redact_labels[label] == NULL || v > s->counter[label]
            || strlen(redact_labels[label]) != us - 2
            || memcmp(redact_labels[label], p + 1, us - 2) != 0) {
            continue;
        }
        ph = s->by_label[label][v - 1];
        return ph->len == len && memcmp(ph->text, p, len) == 0 ? ph : NULL;
    }
    return NULL;
}


/* Enters s->ph[i] in the table, growing it (and entering every placeholder again) first. */
static void
redact_index(sl__guard_sess_t *s, size_t i)
{
    size_t mask, k;

    if ((i + 1) * 4 > s->tabcap * 3) {
        s->tabcap = s->tabcap == 0 ? REDACT_TAB_FIRST : s->tabcap * 4;
        s->by_orig = sl_pcalloc(s->pool, s->tabcap * sizeof(uint32_t));
        for (size_t j = 0; j < i; j++) {
            redact_index(s, j);
        }
    }
    mask = s->tabcap - 1;
    k = (size_t) s->ph[i]->horig & mask;
    while (s->by_orig[k] != 0) {
        k = (k + 1) & mask;
    }
    s->by_orig[k] = (uint32_t) (i + 1);
}


/*
 * Where a placeholder may have begun at the end of w: a '[' followed only
 * by what placeholders are made of. n when there is none.
 */
static size_t
redact_fragment(const char *w, size_t n, size_t from)
{
    size_t lo = n - from > SL__GUARD_PH_MAX ? n - SL__GUARD_PH_MAX : from;

    for (size_t i = n; i > lo; i--) {
        unsigned char c = (unsigned char) w[i - 1];

        if (c == '[') {
            return i - 1;
        }
        if (!((unsigned) (c - 'A') < 26u || (unsigned) (c - '0') < 10u || c == '_')) {
            return n;
        }
    }
    return n;
}


/* Insertion sort: by start, the longest first. Hits come nearly in order. */
static void
redact_sort(sl__guard_hits_t *h)
{
    for (size_t i = 1; i < h->n; i++) {
        sl__guard_hit_t x;
        size_t j = i;

        if (h->v[i - 1].start < h->v[i].start) {
            continue; /* in place already */
        }
        x = h->v[i];

        while (j > 0
               && (h->v[j - 1].start > x.start
                   || (h->v[j - 1].start == x.start && h->v[j - 1].end < x.end))) {
            h->v[j] = h->v[j - 1];
            j--;
        }
        h->v[j] = x;
    }
}


/* Whether an open match (a private key block before its END line) holds the text at from. */
static bool
redact_open_at(const sl__guard_hits_t *h, size_t from)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->v[i].open && h->v[i].start <= from) {
            return true;
        }
    }
    return false;
}


/* The end of the longest match that holds the text at from and ended before n; 0 for none. */
static size_t
redact_closed_end(const sl__guard_hits_t *h, size_t from, size_t n)
{
    size_t e = 0;

    for (size_t i = 0; i < h->n; i++) {
        const sl__guard_hit_t *x = &h->v[i];

        if (!x->open && x->start <= from && x->end > from && x->end < n && x->end > e) {
            e = x->end;
        }
    }
    return e;
}


/* How far a text that may go on is decided (see sl__guard_apply). */
static size_t
redact_cut(sl__guard_sess_t *s, const char *w, size_t n, size_t from, size_t hold, bool words)
{
    sl__guard_hits_t *h = &s->hits;
    size_t cut = n - from > hold ? n - hold : from, c0, f;

    for (size_t i = 0; i < h->n; i++) {
        const sl__guard_hit_t *x = &h->v[i];

        /* a match at the very end may grow with the next piece */
        if (x->det != SL_GUARD_DET_RESTORE && (x->open || x->end >= n) && x->start < cut) {
            cut = x->start;
        }
    }
    if (s->nrestorable > 0) {
        f = redact_fragment(w, n, from);
        if (f < cut) {
            cut = f;
        }
    }
    if (h->partial < cut) {
        cut = h->partial > from ? h->partial : from;
    }
    do {
        c0 = cut;
        if (words && cut < n && cut > from && !redact_space((unsigned char) w[cut - 1])) {
            size_t p = cut - 1;

            while (p > from && !redact_space((unsigned char) w[p - 1])) {
                p--;
            }
            cut = p;
        }
        for (size_t i = 0; i < h->n; i++) {
            if (h->v[i].start < cut && cut < h->v[i].end) {
                cut = h->v[i].start;
            }
        }
    } while (cut != c0);
    if (cut == from && n - from >= SL__GUARD_FORCE && h->partial == SIZE_MAX
        && (n - from >= SL__GUARD_OPEN_MAX || !redact_open_at(h, from))) {
        /*
         * a "word" this long goes out anyway, decided as it stands (not a
         * deny literal's start); a long match that ended (a key block with
         * its END line) goes out whole, and what follows it waits as usual
         */
        f = redact_closed_end(h, from, n);
        return f != 0 ? f : n;
    }
    while (cut > from && cut < n && ((unsigned char) w[cut] & 0xc0) == 0x80) {
        cut--;
    }
    return cut;
}


int
sl__guard_apply(sl__guard_sess_t *s, unsigned dir, const char *w, size_t n, size_t from, bool final,
                bool json, sl_buf_t *out, size_t *cut, bool *changed)
{
    const sl_guard_policy_t *p = s->policy;
    sl__guard_hits_t *h = &s->hits;
    bool checks = dir == SL_GUARD_INPUT ? p->in_text : p->out_text;
    const sl__guard_hit_t *blk = NULL;
    size_t limit, pos = from;
    bool output = dir == SL_GUARD_OUTPUT, block = false, any = false;
    sl_json_edit_t *ed = NULL; /* the next edit (without out, when there is room for some) */
    size_t base = s->repl_base;
    redact_pending_t pd;
    unsigned room[SL_GUARD_DET_COUNT + 1] = { 0 };

    h->n = 0;
    h->partial = SIZE_MAX;
    SL_ASSERT(out != NULL || dir == SL_GUARD_INPUT);
    if (h->cap < (n - from) / REDACT_PER_HIT) {
        /* room for a dense text's hits at once, not a doubling at a time */
        h->cap = (n - from) / REDACT_PER_HIT;
        free(h->v);
        h->v = sl_xmalloc(h->cap * sizeof(*h->v));
    }
    pd.n = 0;
    memset(pd.last, 0, sizeof(pd.last));
    SL_ASSERT(!s->twin || (dir == SL_GUARD_INPUT && out == NULL && from == 0 && final));
    if (checks) {
        block = redact_collect(s, dir, w, n, from, room);
        if (s->twin && !redact_twin_clean(h, w)) {
            *cut = 0;
            *changed = false;
            return SL__GUARD_UNTWIN; /* nothing applied or recorded yet */
        }
        redact_reserve(s, room);
        if (out == NULL) {
            redact_repl_reserve(s, h->n);
        }
    }
    if (output && s->nrestorable > 0) {
        redact_restore_hits(s, w, n, from);
    }
    redact_sort(h);
    limit = final ? n : redact_cut(s, w, n, from, checks ? p->hold : 0, checks);

    for (size_t i = 0; block && i < h->n; i++) {
        const sl__guard_hit_t *x = &h->v[i];

        if (x->start >= limit) {
            break;
        }
        if (x->check != NULL && x->check->action == SL_GUARD_BLOCK) {
            blk = x;
            break;
        }
    }
    if (blk != NULL) {
        limit = blk->start;
        s->blocked = blk->check;
        s->blocked_det = blk->det;
        s->blocked_output = output;
    }

    if (out == NULL && s->repl != NULL) {
        ed = s->repl + s->nrepl;
    }
    for (size_t i = 0; i < h->n; i++) {
        const sl__guard_hit_t *x = &h->v[i];
        const sl__guard_ph_t *ph;
        bool restore = x->det == SL_GUARD_DET_RESTORE;
        sl_guard_action_e action = restore ? SL_GUARD_REDACT : x->check->action; /* no check */

        if (x->start >= limit) {
            break;
        }
        if (action == SL_GUARD_LOG) {
            redact_pend(&pd, s, x->check, x->det, output);
            continue;
        }
        if (action != SL_GUARD_REDACT || x->start < pos) {
            continue; /* a block past the limit, or overlapped by an earlier match */
        }
        if (x->end > limit) {
            limit = x->start; /* blocked inside it: nothing of it goes out */
            break;
        }
        if (restore) {
            ph = x->ph;
        } else {
            ph = redact_placeholder(s, x->det, !output && x->check->restore, w + x->start,
                                    x->end - x->start);
            redact_pend(&pd, s, x->check, x->det, output);
        }
        if (out == NULL) {
            /* redact_repl_reserve() made room for every hit */
            *ed++ =
                (sl_json_edit_t){ base + x->start, base + x->end, { ph->text, ph->len }, false };
        } else {
            sl_buf_append(out, w + pos, x->start - pos);
            if (!restore) {
                sl_buf_append(out, ph->text, ph->len);
            } else if (json) {
                redact_json_escape(out, ph->orig.p, ph->orig.len);
            } else {
                sl_buf_append(out, ph->orig.p, ph->orig.len);
            }
        }
        any = true;
        pos = x->end;
    }
    if (limit > pos && out != NULL) {
        sl_buf_append(out, w + pos, limit - pos);
    }
    if (ed != NULL) {
        s->nrepl = (size_t) (ed - s->repl);
    }
    redact_pend_flush(&pd, s, output);
    *changed = any;
    if (blk != NULL) {
        /* after the decisions on the text before it, as a stream records them */
        sl__guard_decide(s, blk->check, sl__guard_rule(blk->check, blk->det), output);
    }
    *cut = limit;
    return blk != NULL ? SL_EDENIED : 0;
}


/* Counts a decision of check c about det in pd: in the entry of det's last one when it is c's. */
static void
redact_pend(redact_pending_t *pd, sl__guard_sess_t *s, const sl_guard_check_t *c, unsigned det,
            bool output)
{
    size_t i;

    SL_ASSERT(det <= SL_GUARD_DET_COUNT); /* a detector's or SL_GUARD_DET_DENY, never a restore */
    i = pd->last[det];
    if (i > 0 && pd->v[i - 1].check == c) {
        pd->v[i - 1].count++;
    } else {
        redact_pend_find(pd, s, c, det, output);
    }
}


/* redact_pend() when det's last entry is not c's: c's entry of det, or a new one. */
static void
redact_pend_find(redact_pending_t *pd, sl__guard_sess_t *s, const sl_guard_check_t *c, unsigned det,
                 bool output)
{
    size_t i;

    for (i = 0; i < pd->n; i++) {
        if (pd->v[i].check == c && pd->v[i].det == det) {
            pd->v[i].count++;
            pd->last[det] = (unsigned char) (i + 1);
            return;
        }
    }
    if (pd->n == REDACT_PENDING) {
        redact_pend_flush(pd, s, output); /* (which forgets every last entry) */
    }
    pd->v[pd->n].check = c;
    pd->v[pd->n].det = det;
    pd->v[pd->n].count = 1;
    pd->n++;
    pd->last[det] = (unsigned char) pd->n;
}


/* Records the decisions pending in pd, in the order of their first hit. */
static void
redact_pend_flush(redact_pending_t *pd, sl__guard_sess_t *s, bool output)
{
    for (size_t i = 0; i < pd->n; i++) {
        redact_decide_n(s, pd->v[i].check, sl__guard_rule(pd->v[i].check, pd->v[i].det), output,
                        pd->v[i].count);
    }
    pd->n = 0;
    memset(pd->last, 0, sizeof(pd->last));
}


/* Room in s->repl for more edits (at least twice what there was). */
static void
redact_repl_reserve(sl__guard_sess_t *s, size_t more)
{
    if (s->nrepl + more > s->caprepl) {
        s->caprepl = s->caprepl * 2 > s->nrepl + more ? s->caprepl * 2 : s->nrepl + more;
        s->repl = sl_xrealloc(s->repl, s->caprepl * sizeof(*s->repl));
    }
}


const sl__guard_ph_t *
sl__guard_ph_find(const sl__guard_sess_t *s, const char *p, size_t len)
{
    return redact_by_text(s, p, len);
}


sl_str_t
sl__guard_ph_json(sl__guard_sess_t *s, const sl__guard_ph_t *ph)
{
    sl__guard_ph_t *m = (sl__guard_ph_t *) ph; /* the session's own entry */
    sl_buf_t q = SL_BUF_INIT;

    if (m->orig_json.p == NULL) {
        redact_json_escape(&q, ph->orig.p, ph->orig.len);
        m->orig_json = (sl_str_t){ sl_pstrndup(s->pool, q.p != NULL ? q.p : "", q.len), q.len };
        sl_buf_free(&q);
    }
    return m->orig_json;
}


/* The placeholder of w[p..p+len) found by det (the same text gets the same one). */
static const sl__guard_ph_t *
redact_placeholder(sl__guard_sess_t *s, unsigned det, bool restorable, const char *p, size_t len)
{
    unsigned label = det < SL_GUARD_DET_COUNT ? det : SL_GUARD_DET_COUNT;
    uint64_t h = redact_hash(label, p, len);
    size_t k = 0, mask = s->tabcap - 1, pl, need;
    sl__guard_ph_t *ph;

    if (s->tabcap != 0) {
        for (k = (size_t) h & mask; s->by_orig[k] != 0; k = (k + 1) & mask) {
            ph = s->ph[s->by_orig[k] - 1];
            if (ph->horig == h && ph->det == label && ph->orig.len == len
                && memcmp(ph->orig.p, p, len) == 0) {
                if (restorable && !ph->restorable) {
                    ph->restorable = true;
                    s->nrestorable++;
                }
                return ph;
            }
        }
    }
    /*
     * the entry and its original in one piece of the pool (entries never
     * move), cut from a slab of the pool taken for several at once (each
     * slab twice the last: a dense text takes a few)
     */
    need = (sizeof(*ph) + len + 1 + REDACT_ALIGN - 1) & ~(size_t) (REDACT_ALIGN - 1);
    if (need > REDACT_SLAB / 4) {
        ph = sl_palloc(s->pool, need); /* a long one alone */
    } else {
        if (need > s->slab_left) {
            s->slab_size = s->slab_size == 0                ? REDACT_SLAB
                           : s->slab_size < REDACT_SLAB_MAX ? s->slab_size * 2
                                                            : REDACT_SLAB_MAX;
            s->slab = sl_palloc(s->pool, s->slab_size);
            s->slab_left = s->slab_size;
        }
        ph = (sl__guard_ph_t *) (void *) s->slab;
        s->slab += need;
        s->slab_left -= need;
    }
    memcpy((char *) (ph + 1), p, len);
    ((char *) (ph + 1))[len] = '\0';
    ph->det = label;
    ph->orig = (sl_str_t){ (const char *) (ph + 1), len };
    ph->orig_json = (sl_str_t){ NULL, 0 };
    ph->restorable = restorable;
    s->nrestorable += restorable ? 1 : 0;
    /* redact_reserve() made room for every redact hit */
    SL_ASSERT(s->nph < s->phcap && s->counter[label] < s->labcap[label]);
    s->ph[s->nph++] = ph;
    s->by_label[label][s->counter[label]] = ph;
    /*
     * "[LABEL_N]": a copy of the label's last one, counted up in place
     * (snprintf costs more than the rest of a match). Counting up in a
     * buffer of the session and copying that out stalled each match: the
     * copy's wide loads waited for the count's byte stores to reach the
     * cache (a third of sl__guard_apply's samples, perf, a dense prompt).
     */
    if (++s->counter[label] == 1) {
        pl = redact_prefix_len[label];
        memcpy(ph->text, redact_prefix[label], sizeof(redact_prefix[label]));
        memcpy(ph->text + pl, "1]", 3);
        ph->len = (uint8_t) (pl + 2);
    } else {
        const sl__guard_ph_t *last = s->by_label[label][s->counter[label] - 2];

        memcpy(ph->text, last->text, sizeof(ph->text));
        ph->len = last->len;
        redact_count_up(ph->text, &ph->len);
    }
    ph->horig = h;
    if (s->nph * 4 > s->tabcap * 3) {
        redact_index(s, s->nph - 1); /* grows the table and enters every placeholder again */
    } else {
        s->by_orig[k] = (uint32_t) s->nph; /* the free slot the look-up ended at */
    }
    return ph;
}


/* t, the NUL-terminated "[LABEL_N]" of *len bytes, becomes "[LABEL_N+1]". */
static void
redact_count_up(char *t, uint8_t *len)
{
    size_t i = *len - 2; /* N's last digit */

    while (t[i] == '9') {
        t[i--] = '0';
    }
    if (t[i] != '_') {
        t[i]++;
        return;
    }
    /* N was all nines: a 1 before as many zeros */
    SL_ASSERT(*len + 2 <= SL__GUARD_PH_TEXT);
    t[i + 1] = '1';
    t[*len - 1] = '0';
    t[*len] = ']';
    t[*len + 1] = '\0';
    (*len)++;
}


/* p as the body of a JSON string (without the quotes). */
static void
redact_json_escape(sl_buf_t *out, const char *p, size_t len)
{
    sl_buf_t q = SL_BUF_INIT;

    sl_json_quote(&q, (sl_str_t){ p, len });
    sl_buf_append(out, q.p + 1, q.len - 2);
    sl_buf_free(&q);
}


int
sl__guard_stream_feed(sl__guard_sess_t *s, sl__guard_stream_t *st, const char *text, size_t len,
                      bool final, sl_buf_t *out)
{
    size_t cut = 0, keep;
    bool changed;
    int rc;

    if (st->blocked) {
        return SL_EDENIED;
    }
    sl_buf_append(&st->win, text, len);
    rc = sl__guard_apply(s, SL_GUARD_OUTPUT, st->win.p, st->win.len, st->from, final, st->json, out,
                         &cut, &changed);
    if (rc < 0) {
        st->blocked = true;
        return rc;
    }
    /* keep some context before the cut for the boundary tests */
    keep = cut > SL__GUARD_CTX ? cut - SL__GUARD_CTX : 0;
    sl_buf_consume(&st->win, keep);
    st->from = cut - keep;
    st->started = st->started || cut > 0;
    return 0;
}


void
sl__guard_stream_free(sl__guard_stream_t *st)
{
    sl_buf_free(&st->win);
}


int
sl__guard_unquote(sl_str_t lit, sl_buf_t *out)
{
    if (lit.len < 2 || lit.p[0] != '"' || lit.p[lit.len - 1] != '"') {
        return SL_EPARSE;
    }
    return sl__guard_decode(lit.p + 1, lit.len - 2, out, NULL, false);
}


int
sl__guard_decode(const char *body, size_t n, sl_buf_t *out, sl__guard_map_t *map, bool strict)
{
    const char *p = body, *end = body + n;
    char *o;

    if (map != NULL) {
        map->n = 0;
        if (map->cap < n / 32) {
            /* a guess (an escape every 32 bytes: prose has one a line) that spares the doublings */
            map->cap = n / 32;
            free(map->v);
            map->v = sl_xmalloc(map->cap * sizeof(*map->v));
        }
    }
    /*
     * an escape never decodes to more bytes than it takes: one allocation,
     * and the decoded bytes are written in place (o never passes what was read)
     */
    if (n == 0) {
        return 0;
    }
    sl_buf_reserve(out, n);
    o = out->p + out->len;
    while (p < end) {
        const char *bs;
        size_t rl = 2;
        char *o0;
        unsigned cp;

        if (!redact_copy_plain(&o, &p, end)) {
            break;
        }
        bs = p;
        o0 = o;
        if (end - bs < 2) {
            return SL_EPARSE;
        }
        if (bs[1] != 'u') {
            char c = redact_esc[(unsigned char) bs[1]];

            if (c == 0) {
                return SL_EPARSE;
            }
            *o++ = c;
        } else {
            rl = redact_u(bs, end, strict, &cp);
            if (rl == 0) {
                return SL_EPARSE;
            }
            o += redact_utf8(o, cp);
        }
        if (map != NULL) {
            if (map->n == map->cap) {
                map->cap = map->cap == 0 ? 16 : map->cap * 2;
                map->v = sl_xrealloc(map->v, map->cap * sizeof(*map->v));
            }
            map->v[map->n++] = (sl__guard_esc_t){ (size_t) (o0 - out->p), (size_t) (o - o0),
                                                  (size_t) (bs - body), rl };
        }
        p = bs + rl;
    }
    out->len = (size_t) (o - out->p);
    return 0;
}


int
sl__guard_twin(const char *body, size_t n, char *out)
{
    size_t i = 0, next = 0; /* next: where an escape may start (past the last one) */

    memcpy(out, body, n);
    for (;; i += 64) {
        uint64_t m;

        if (i + 64 <= n) {
            m = redact_backslashes(body + i);
        } else {
            /* the last piece, a byte at a time */
            m = 0;
            for (size_t k = i; k < n; k++) {
                m |= body[k] == '\\' ? (uint64_t) 1 << (k - i) : 0;
            }
        }
        while (m != 0) {
            size_t j = i + (size_t) __builtin_ctzll(m);
            char c;

            m &= m - 1;
            if (j < next) {
                continue; /* the second byte of \\ */
            }
            c = j + 1 < n ? redact_twin_esc[(unsigned char) body[j + 1]] : 0;
            if (c == 0) {
                return SL_ENOTFOUND;
            }
            out[j] = out[j + 1] = c;
            next = j + 2;
        }
        if (i + 64 >= n) {
            return 0;
        }
    }
}


/*
 * Whether no hit in h covers a byte of the twin w that an escape wrote: a
 * control byte, '"' or '\\' (a JSON string holds none of them as they
 * are). The detectors take none of those into an e-mail address, a number
 * or a key, so only a private key block (its line breaks) is not clean.
 */
static bool
redact_twin_clean(const sl__guard_hits_t *h, const char *w)
{
    for (size_t i = 0; i < h->n; i++) {
        for (size_t k = h->v[i].start; k < h->v[i].end; k++) {
            unsigned char c = (unsigned char) w[k];

            if (c < 0x20 || c == '"' || c == '\\') {
                return false;
            }
        }
    }
    return true;
}


#if defined(__SSE2__)
/* The backslashes of p[0..64), a bit each. */
static uint64_t
redact_backslashes(const char *p)
{
    const __m128i bs = _mm_set1_epi8('\\');
    uint64_t m = 0;

    for (unsigned q = 0; q < 4; q++) {
        __m128i x = _mm_loadu_si128((const __m128i *) (const void *) (p + 16 * q));

        m |= (uint64_t) (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(x, bs)) << (16 * q);
    }
    return m;
}
#else
/* Without SSE2: the same a byte at a time. */
static uint64_t
redact_backslashes(const char *p)
{
    uint64_t m = 0;

    for (unsigned k = 0; k < 64; k++) {
        m |= p[k] == '\\' ? (uint64_t) 1 << k : 0;
    }
    return m;
}
#endif


#if defined(__SSE2__)
/*
 * Copies the bytes from *pp up to the next backslash (or up to end) to *op
 * and moves both cursors past them; true when *pp stopped at a backslash,
 * false at end. 32 or 16 bytes at a time while that many remain, each
 * block stored whole, so up to 31 bytes past the new *op may be written
 * too: *op must have room for end - *pp bytes (the decode's o never runs
 * ahead of its p, and its buffer holds the whole body). Inlined, both
 * cursors stay in registers.
 */
static inline bool
redact_copy_plain(char **op, const char **pp, const char *end)
{
    const char *p = *pp;
    char *o = *op;

    while (end - p >= 32) {
        __m128i v = _mm_loadu_si128((const __m128i *) (const void *) p);
        __m128i w = _mm_loadu_si128((const __m128i *) (const void *) (p + 16));
        unsigned m = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))
                     | (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(w, _mm_set1_epi8('\\'))) << 16;

        _mm_storeu_si128((__m128i *) (void *) o, v);
        _mm_storeu_si128((__m128i *) (void *) (o + 16), w);
        if (m != 0) {
            *pp = p + __builtin_ctz(m);
            *op = o + __builtin_ctz(m);
            return true;
        }
        p += 32;
        o += 32;
    }
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *) (const void *) p);
        unsigned m = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));

        _mm_storeu_si128((__m128i *) (void *) o, v);
        if (m != 0) {
            *pp = p + __builtin_ctz(m);
            *op = o + __builtin_ctz(m);
            return true;
        }
        p += 16;
        o += 16;
    }
    while (p < end && *p != '\\') {
        *o++ = *p++;
    }
    *pp = p;
    *op = o;
    return p < end;
}
#else
/*
 * Without SSE2: the same a byte at a time (only the bytes it moves past
 * are written; *op must have room for end - *pp bytes all the same).
 */
static inline bool
redact_copy_plain(char **op, const char **pp, const char *end)
{
    const char *p = *pp;
    char *o = *op;

    while (p < end && *p != '\\') {
        *o++ = *p++;
    }
    *pp = p;
    *op = o;
    return p < end;
}
#endif


size_t
sl__guard_map_raw(const sl__guard_map_t *map, size_t d)
{
    size_t lo = 0, hi = map != NULL ? map->n : 0;
    const sl__guard_esc_t *e;

    /* the last escape whose decoded bytes start at or before d */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (map->v[mid].d <= d) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return d;
    }
    e = &map->v[lo - 1];
    if (d < e->d + e->dl) {
        return e->r;
    }
    return e->r + e->rl + (d - e->d - e->dl);
}


/*
 * The \\u escape at bs (its backslash): its length (6, or 12 for a
 * surrogate pair) and code point, or 0 when its hex digits are not four.
 * Strict, also 0 where the JSON reader refuses it: \\u0000, or a
 * surrogate not in a pair; else such a surrogate is a code point of its
 * own (written as UTF-8 would, if it could).
 */
static size_t
redact_u(const char *bs, const char *end, bool strict, unsigned *cp)
{
    unsigned lo;

    if (end - bs < 6 || redact_hex4(bs + 2, cp) < 0) {
        return 0;
    }
    if (*cp >= 0xd800 && *cp < 0xdc00 && end - bs >= 12 && bs[6] == '\\' && bs[7] == 'u'
        && redact_hex4(bs + 8, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
        return 12;
    }
    if (strict && (*cp == 0 || (*cp >= 0xd800 && *cp < 0xe000))) {
        return 0;
    }
    return 6;
}


/* The four hex digits at p: 0 with their value in *v, or -1. */
static int
redact_hex4(const char *p, unsigned *v)
{
    unsigned x = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char) p[i];
        unsigned d;

        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            d = (unsigned) ((c | 0x20) - 'a' + 10);
        } else {
            return -1;
        }
        x = x << 4 | d;
    }
    *v = x;
    return 0;
}


/* Writes code point cp as UTF-8 at d; returns its length. */
static size_t
redact_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char) (0xc0 | (cp >> 6));
        d[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char) (0xe0 | (cp >> 12));
        d[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char) (0xf0 | (cp >> 18));
    d[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}
