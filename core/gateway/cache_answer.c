/*
 * How the response cache keeps an answer (core/gateway/cache.h): the
 * typed answer encoded for the store and decoded back without a JSON
 * parser, a stream's events gathered into a whole answer while they go to
 * the client, and a kept answer turned back into the events a streaming
 * client gets.
 *
 * Encoding (native byte order): u8 version (1); id, model (u32 length +
 * bytes, JSON string literals or empty); i64 created; usage (six u64 and a
 * u8 of flags: 1 known, 2 estimated); raw (u32 api, u32 length + bytes);
 * u32 choices, each: u32 index, text, reasoning, signature, u32 finish,
 * u32 tools, each: id, name, arguments.
 */
#include "core/gateway/cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"

#define CACHE_ANSWER_VERSION 1
#define CACHE_CHOICES_MAX    16  /* choices a stream may have to be kept */
#define CACHE_TOOLS_MAX      128 /* tool calls per choice */
#define CACHE_PIECE          64  /* bytes of text per replayed event, about */

/* One tool call of a stream being gathered. */
typedef struct cache_acc_tool {
    sl_str_t id;   /* literal */
    sl_str_t name; /* literal */
    sl_buf_t args; /* the literals' contents, without quotes */
    bool seen;
} cache_acc_tool_t;

/* One choice of a stream being gathered: the literals' contents, without quotes. */
typedef struct cache_acc_choice {
    sl_buf_t text;
    sl_buf_t reasoning;
    sl_buf_t signature;
    cache_acc_tool_t *tools;
    size_t ntools;
    sl_finish_e finish;
    bool seen;
} cache_acc_choice_t;

struct sl_cache_acc {
    sl_pool_t *pool;
    sl_str_t id;    /* literal from START */
    sl_str_t model; /* literal from START */
    sl_usage_t usage;
    cache_acc_choice_t choices[CACHE_CHOICES_MAX];
    size_t bytes; /* gathered so far */
    bool done;    /* SL_EV_DONE came */
    bool broken;  /* an error, too many choices or tools, or too long: not kept */
    bool output;  /* real output came */
};

static void cache_put_u32(sl_buf_t *out, uint32_t v);
static void cache_put_u64(sl_buf_t *out, uint64_t v);
static void cache_put_str(sl_buf_t *out, sl_str_t s);
static int cache_get_u32(const char **p, const char *end, uint32_t *v);
static int cache_get_u64(const char **p, const char *end, uint64_t *v);
static int cache_get_str(const char **p, const char *end, sl_str_t *s);
static int cache_get_lit(const char **p, const char *end, sl_str_t *s);
static void cache_acc_free(void *arg);
static sl_str_t cache_acc_keep(sl_pool_t *pool, sl_str_t lit);
static void cache_acc_piece(sl_cache_acc_t *acc, sl_buf_t *b, sl_str_t lit);
static sl_str_t cache_acc_lit(sl_pool_t *pool, const sl_buf_t *b);
static void cache_replay_text(const sl_answer_t *a, const sl_choice_t *c, sl_evs_t *out);
static size_t cache_char_len(const char *p, size_t left);


static void
cache_put_u32(sl_buf_t *out, uint32_t v)
{
    sl_buf_append(out, &v, 4);
}


static void
cache_put_u64(sl_buf_t *out, uint64_t v)
{
    sl_buf_append(out, &v, 8);
}


static void
cache_put_str(sl_buf_t *out, sl_str_t s)
{
    cache_put_u32(out, (uint32_t) s.len);
    if (s.len > 0) {
        sl_buf_append(out, s.p, s.len);
    }
}


void
sl_cache_answer_encode(const sl_answer_t *a, sl_buf_t *out)
{
    const sl_usage_t *u = &a->usage;

    sl_buf_append(out, "\x01", 1);
    cache_put_str(out, a->id);
    cache_put_str(out, a->model);
    cache_put_u64(out, (uint64_t) a->created);
    cache_put_u64(out, u->prompt_tokens);
    cache_put_u64(out, u->completion_tokens);
    cache_put_u64(out, u->cached_tokens);
    cache_put_u64(out, u->cache_write_tokens);
    cache_put_u64(out, u->cache_write_1h_tokens);
    cache_put_u64(out, u->reasoning_tokens);
    sl_buf_append(out, &(uint8_t){ (uint8_t) ((u->known ? 1 : 0) | (u->estimated ? 2 : 0)) }, 1);
    cache_put_u32(out, (uint32_t) a->raw_api);
    cache_put_str(out, a->raw.p != NULL ? a->raw : sl_str_null);
    cache_put_u32(out, (uint32_t) a->nchoices);
    for (size_t i = 0; i < a->nchoices; i++) {
        const sl_choice_t *c = &a->choices[i];

        cache_put_u32(out, c->index);
        cache_put_str(out, c->text);
        cache_put_str(out, c->reasoning);
        cache_put_str(out, c->signature);
        cache_put_u32(out, (uint32_t) c->finish);
        cache_put_u32(out, (uint32_t) c->ntools);
        for (size_t k = 0; k < c->ntools; k++) {
            cache_put_str(out, c->tools[k].id);
            cache_put_str(out, c->tools[k].name);
            cache_put_str(out, c->tools[k].args);
        }
    }
}


static int
cache_get_u32(const char **p, const char *end, uint32_t *v)
{
    if (end - *p < 4) {
        return SL_EPARSE;
    }
    memcpy(v, *p, 4);
    *p += 4;
    return 0;
}


static int
cache_get_u64(const char **p, const char *end, uint64_t *v)
{
    if (end - *p < 8) {
        return SL_EPARSE;
    }
    memcpy(v, *p, 8);
    *p += 8;
    return 0;
}


static int
cache_get_str(const char **p, const char *end, sl_str_t *s)
{
    uint32_t len;

    if (cache_get_u32(p, end, &len) != 0 || (size_t) (end - *p) < len) {
        return SL_EPARSE;
    }
    *s = len > 0 ? (sl_str_t){ *p, len } : sl_str_null;
    *p += len;
    return 0;
}


/* A string that is empty or looks like a JSON string literal: it is spliced into answers. */
static int
cache_get_lit(const char **p, const char *end, sl_str_t *s)
{
    if (cache_get_str(p, end, s) != 0) {
        return SL_EPARSE;
    }
    if (s->len > 0 && (s->len < 2 || s->p[0] != '"' || s->p[s->len - 1] != '"')) {
        return SL_EPARSE;
    }
    return 0;
}


int
sl_cache_answer_decode(sl_str_t body, sl_pool_t *pool, sl_answer_t *a)
{
    const char *p = body.p, *end = body.p + body.len;
    sl_usage_t *u = &a->usage;
    uint64_t created;
    uint32_t api, n;

    memset(a, 0, sizeof(*a));
    if (body.len < 1 || (uint8_t) *p != CACHE_ANSWER_VERSION) {
        return SL_EPARSE;
    }
    p++;
    if (cache_get_lit(&p, end, &a->id) != 0 || cache_get_lit(&p, end, &a->model) != 0
        || cache_get_u64(&p, end, &created) != 0 || cache_get_u64(&p, end, &u->prompt_tokens) != 0
        || cache_get_u64(&p, end, &u->completion_tokens) != 0
        || cache_get_u64(&p, end, &u->cached_tokens) != 0
        || cache_get_u64(&p, end, &u->cache_write_tokens) != 0
        || cache_get_u64(&p, end, &u->cache_write_1h_tokens) != 0
        || cache_get_u64(&p, end, &u->reasoning_tokens) != 0 || end - p < 1) {
        return SL_EPARSE;
    }
    a->created = (int64_t) created;
    u->known = (*p & 1) != 0;
    u->estimated = (*p & 2) != 0;
    p++;
    if (cache_get_u32(&p, end, &api) != 0 || api >= SL_API_COUNT
        || cache_get_str(&p, end, &a->raw) != 0 || cache_get_u32(&p, end, &n) != 0
        || n > (uint32_t) (end - p) / 24) {
        return SL_EPARSE;
    }
    a->raw_api = (sl_api_e) api;
    a->nchoices = n;
    a->choices = sl_pcalloc(pool, (n > 0 ? n : 1) * sizeof(sl_choice_t));
    for (uint32_t i = 0; i < n; i++) {
        sl_choice_t *c = &a->choices[i];
        uint32_t finish, nt;

        if (cache_get_u32(&p, end, &c->index) != 0 || cache_get_lit(&p, end, &c->text) != 0
            || cache_get_lit(&p, end, &c->reasoning) != 0
            || cache_get_lit(&p, end, &c->signature) != 0 || cache_get_u32(&p, end, &finish) != 0
            || finish > SL_FINISH_PAUSE || cache_get_u32(&p, end, &nt) != 0
            || nt > (uint32_t) (end - p) / 12) {
            return SL_EPARSE;
        }
        c->finish = (sl_finish_e) finish;
        c->ntools = nt;
        c->tools = nt > 0 ? sl_pcalloc(pool, nt * sizeof(sl_tool_call_t)) : NULL;
        for (uint32_t k = 0; k < nt; k++) {
            if (cache_get_lit(&p, end, &c->tools[k].id) != 0
                || cache_get_lit(&p, end, &c->tools[k].name) != 0
                || cache_get_lit(&p, end, &c->tools[k].args) != 0) {
                return SL_EPARSE;
            }
        }
    }
    return p == end ? 0 : SL_EPARSE;
}


void
sl_cache_replay_events(const sl_answer_t *a, sl_evs_t *out)
{
    sl_ev_t e;

    memset(&e, 0, sizeof(e));
    e.type = SL_EV_START;
    e.id = a->id;
    e.name = a->model;
    sl_evs_push(out, &e);
    for (size_t i = 0; i < a->nchoices; i++) {
        const sl_choice_t *c = &a->choices[i];

        if (c->reasoning.len > 2 || c->signature.len > 2) {
            memset(&e, 0, sizeof(e));
            e.type = SL_EV_REASONING;
            e.choice = c->index;
            e.text = c->reasoning;
            e.signature = c->signature;
            sl_evs_push(out, &e);
        }
        cache_replay_text(a, c, out);
        for (size_t k = 0; k < c->ntools; k++) {
            memset(&e, 0, sizeof(e));
            e.type = SL_EV_TOOL_CALL;
            e.choice = c->index;
            e.index = (unsigned) k;
            e.id = c->tools[k].id;
            e.name = c->tools[k].name;
            sl_evs_push(out, &e);
            if (c->tools[k].args.len > 2) {
                e.type = SL_EV_TOOL_ARGS;
                e.id = sl_str_null;
                e.name = sl_str_null;
                e.text = c->tools[k].args;
                sl_evs_push(out, &e);
            }
        }
        memset(&e, 0, sizeof(e));
        e.type = SL_EV_FINISH;
        e.choice = c->index;
        e.finish = c->finish != SL_FINISH_NONE ? c->finish : SL_FINISH_STOP;
        sl_evs_push(out, &e);
    }
    memset(&e, 0, sizeof(e));
    e.type = SL_EV_USAGE;
    e.usage = &a->usage;
    sl_evs_push(out, &e);
    e.type = SL_EV_DONE;
    e.usage = NULL;
    sl_evs_push(out, &e);
}


/* A choice's text as several TEXT events, cut only between characters. */
static void
cache_replay_text(const sl_answer_t *a, const sl_choice_t *c, sl_evs_t *out)
{
    const char *p, *end;
    sl_ev_t e;

    (void) a;
    if (c->text.len <= 2) {
        return;
    }
    p = c->text.p + 1;
    end = c->text.p + c->text.len - 1;
    while (p < end) {
        const char *q = p;
        char *lit;

        while (q < end && (size_t) (q - p) < CACHE_PIECE) {
            q += cache_char_len(q, (size_t) (end - q));
        }
        lit = sl_palloc(out->pool, (size_t) (q - p) + 2);
        lit[0] = '"';
        memcpy(lit + 1, p, (size_t) (q - p));
        lit[q - p + 1] = '"';
        memset(&e, 0, sizeof(e));
        e.type = SL_EV_TEXT;
        e.choice = c->index;
        e.text = (sl_str_t){ lit, (size_t) (q - p) + 2 };
        sl_evs_push(out, &e);
        p = q;
    }
}


/*
 * Bytes of the character at p inside a literal: an escape (\n, \uXXXX, or
 * a surrogate pair \uD8XX\uDCXX as one), a UTF-8 sequence, or one byte.
 */
static size_t
cache_char_len(const char *p, size_t left)
{
    unsigned char c = (unsigned char) *p;
    size_t n = 1;

    if (c == '\\') {
        if (left >= 2 && p[1] != 'u') {
            return 2;
        }
        if (left >= 12 && (p[2] == 'd' || p[2] == 'D')
            && (p[3] == '8' || p[3] == '9' || p[3] == 'a' || p[3] == 'A' || p[3] == 'b'
                || p[3] == 'B')
            && p[6] == '\\' && p[7] == 'u') {
            return 12;
        }
        return left >= 6 ? 6 : left;
    }
    if (c >= 0xf0) {
        n = 4;
    } else if (c >= 0xe0) {
        n = 3;
    } else if (c >= 0xc0) {
        n = 2;
    }
    return n <= left ? n : left;
}


sl_cache_acc_t *
sl_cache_acc_create(sl_pool_t *pool)
{
    sl_cache_acc_t *acc = sl_pcalloc(pool, sizeof(*acc));

    acc->pool = pool;
    sl_pool_on_destroy(pool, cache_acc_free, acc);
    return acc;
}


static void
cache_acc_free(void *arg)
{
    sl_cache_acc_t *acc = arg;

    sl_cache_acc_reset(acc);
}


void
sl_cache_acc_reset(sl_cache_acc_t *acc)
{
    sl_pool_t *pool = acc->pool;

    for (size_t i = 0; i < CACHE_CHOICES_MAX; i++) {
        cache_acc_choice_t *c = &acc->choices[i];

        sl_buf_free(&c->text);
        sl_buf_free(&c->reasoning);
        sl_buf_free(&c->signature);
        for (size_t k = 0; k < c->ntools; k++) {
            sl_buf_free(&c->tools[k].args);
        }
        free(c->tools);
    }
    memset(acc, 0, sizeof(*acc));
    acc->pool = pool;
}


/* A copy of lit in pool: the accumulator outlives the batch it came in. */
static sl_str_t
cache_acc_keep(sl_pool_t *pool, sl_str_t lit)
{
    char *p = sl_palloc(pool, lit.len);

    memcpy(p, lit.p, lit.len);
    return (sl_str_t){ p, lit.len };
}


/* Appends a literal's content (without its quotes) to b. */
static void
cache_acc_piece(sl_cache_acc_t *acc, sl_buf_t *b, sl_str_t lit)
{
    if (lit.len <= 2) {
        return;
    }
    acc->bytes += lit.len - 2;
    if (acc->bytes > SL_CACHE_ACC_MAX) {
        acc->broken = true;
        return;
    }
    sl_buf_append(b, lit.p + 1, lit.len - 2);
}


void
sl_cache_acc_add(sl_cache_acc_t *acc, const sl_evs_t *evs)
{
    for (size_t i = 0; i < evs->n && !acc->broken; i++) {
        const sl_ev_t *ev = &evs->v[i];
        cache_acc_choice_t *c;

        if (ev->type == SL_EV_ERROR) {
            acc->broken = true;
            break;
        }
        if (ev->type == SL_EV_DONE) {
            acc->done = true;
            continue;
        }
        if (ev->type == SL_EV_START) {
            if (acc->id.p == NULL && ev->id.len >= 2) {
                acc->id = cache_acc_keep(acc->pool, ev->id);
            }
            if (acc->model.p == NULL && ev->name.len >= 2) {
                acc->model = cache_acc_keep(acc->pool, ev->name);
            }
            continue;
        }
        if (ev->type == SL_EV_USAGE) {
            if (ev->usage != NULL) {
                acc->usage = *ev->usage;
            }
            continue;
        }
        if (ev->choice >= CACHE_CHOICES_MAX) {
            acc->broken = true;
            break;
        }
        c = &acc->choices[ev->choice];
        c->seen = true;
        acc->output |= sl_ev_is_output(ev);
        switch (ev->type) {
        case SL_EV_TEXT:
            cache_acc_piece(acc, &c->text, ev->text);
            break;
        case SL_EV_REASONING:
            cache_acc_piece(acc, &c->reasoning, ev->text);
            cache_acc_piece(acc, &c->signature, ev->signature);
            break;
        case SL_EV_TOOL_CALL:
        case SL_EV_TOOL_ARGS:
            if (ev->index >= CACHE_TOOLS_MAX) {
                acc->broken = true;
                break;
            }
            if (ev->index >= c->ntools) {
                size_t n = ev->index + 1;

                c->tools = realloc(c->tools, n * sizeof(*c->tools));
                if (c->tools == NULL) {
                    abort(); /* fatal: a worker aborts on OOM */
                }
                memset(c->tools + c->ntools, 0, (n - c->ntools) * sizeof(*c->tools));
                c->ntools = n;
            }
            if (ev->type == SL_EV_TOOL_CALL) {
                c->tools[ev->index].seen = true;
                if (ev->id.len >= 2) {
                    c->tools[ev->index].id = cache_acc_keep(acc->pool, ev->id);
                }
                if (ev->name.len >= 2) {
                    c->tools[ev->index].name = cache_acc_keep(acc->pool, ev->name);
                }
            } else {
                cache_acc_piece(acc, &c->tools[ev->index].args, ev->text);
            }
            break;
        case SL_EV_FINISH:
            c->finish = ev->finish;
            break;
        default:
            break;
        }
    }
}


/* A literal of b's content, or empty when b is. */
static sl_str_t
cache_acc_lit(sl_pool_t *pool, const sl_buf_t *b)
{
    char *p;

    if (b->len == 0) {
        return sl_str_null;
    }
    p = sl_palloc(pool, b->len + 2);
    p[0] = '"';
    memcpy(p + 1, b->p, b->len);
    p[b->len + 1] = '"';
    return (sl_str_t){ p, b->len + 2 };
}


int
sl_cache_acc_answer(sl_cache_acc_t *acc, const sl_usage_t *usage, sl_answer_t *out)
{
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    if (!acc->done || acc->broken || !acc->output) {
        return SL_EDENIED;
    }
    out->id = acc->id;
    out->model = acc->model;
    out->usage = usage != NULL ? *usage : acc->usage;
    out->choices = sl_pcalloc(acc->pool, CACHE_CHOICES_MAX * sizeof(sl_choice_t));
    for (unsigned i = 0; i < CACHE_CHOICES_MAX; i++) {
        const cache_acc_choice_t *c = &acc->choices[i];
        sl_choice_t *o = &out->choices[n];
        size_t nt = 0;

        if (!c->seen) {
            continue;
        }
        o->index = i;
        o->text = cache_acc_lit(acc->pool, &c->text);
        o->reasoning = cache_acc_lit(acc->pool, &c->reasoning);
        o->signature = cache_acc_lit(acc->pool, &c->signature);
        o->finish = c->finish;
        o->tools = c->ntools > 0 ? sl_pcalloc(acc->pool, c->ntools * sizeof(sl_tool_call_t)) : NULL;
        for (size_t k = 0; k < c->ntools; k++) {
            if (!c->tools[k].seen || c->tools[k].name.len < 2) {
                continue; /* arguments of a call that never started: not an answer to keep */
            }
            o->tools[nt].id = c->tools[k].id;
            o->tools[nt].name = c->tools[k].name;
            o->tools[nt].args = cache_acc_lit(acc->pool, &c->tools[k].args);
            nt++;
        }
        o->ntools = nt;
        n++;
    }
    out->nchoices = n;
    return n > 0 ? 0 : SL_EDENIED;
}
