/*
 * The live tail ring in the shared segment (core/admin/tail.h).
 */
#include "core/admin/tail.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "core/base/json.h"
#include "core/base/log.h"
#include "core/base/shm.h"
#include "core/base/str.h"
#include "storage/spend.h"

typedef struct tail_entry {
    _Atomic uint64_t seq; /* 0 while empty or being written, else its sequence number */
    int64_t time_ms;
    uint32_t status;
    uint32_t attempts;
    uint32_t flags;
    uint64_t latency_us;
    uint64_t ttft_us;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cost_nusd;
    char request_id[64];
    char key[64];
    char team[64];
    char endpoint[16];
    char model[96];
    char provider[64];
    char served_model[96];
    char cache[12];
    char guard[160];                   /* the row's guardrail decisions, "policy/rule/action;..." */
    char prompt[SL_TAIL_TEXT_MAX + 4]; /* both empty unless dashboard.tail_text; +4: utf8_clean */
    char answer[SL_TAIL_TEXT_MAX + 4];
    bool text;
} tail_entry_t;

typedef struct tail_shm {
    _Atomic uint64_t next; /* sequence numbers handed out */
    tail_entry_t e[SL_TAIL_SIZE];
} tail_shm_t;

static tail_shm_t *tail_shm;

static void tail_copy(char *dst, size_t size, const char *src);
static void tail_text_put(char *dst, size_t *len, const char *src, size_t n);
static int tail_text_content(const sl_json_t *doc, int content, sl_pool_t *pool, sl_str_t *out);


size_t
sl_tail_shm_size(void)
{
    return sizeof(tail_shm_t) + 64;
}


int
sl_tail_init(void)
{
    tail_shm = sl_shm_region("tail", sizeof(tail_shm_t));
    if (tail_shm == NULL) {
        sl_log(NULL, SL_LOG_EMERG, ENOMEM, "no room for the live tail in the shared segment");
        return -ENOMEM;
    }
    return 0;
}


static void
tail_copy(char *dst, size_t size, const char *src)
{
    sl_ledger_utf8_clean(src != NULL ? src : "", true, dst, size);
}


/*
 * Appends src[0..n) to dst (SL_TAIL_TEXT_MAX bytes, *len used) with line
 * breaks and tabs as spaces, other control characters dropped, and never a
 * UTF-8 sequence cut in two: what is kept reads on one line. A character
 * that does not fit fills *len (later pieces add nothing).
 */
static void
tail_text_put(char *dst, size_t *len, const char *src, size_t n)
{
    size_t at = *len;

    for (size_t i = 0; i < n && at < SL_TAIL_TEXT_MAX; i++) {
        unsigned char c = (unsigned char) src[i];

        if (c == '\n' || c == '\r' || c == '\t') {
            if (at > 0 && dst[at - 1] != ' ') {
                dst[at++] = ' ';
            }
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            continue;
        }
        if (c >= 0xc0) {
            size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

            if (at + need > SL_TAIL_TEXT_MAX) {
                dst[at] = '\0';
                *len = SL_TAIL_TEXT_MAX;
                return;
            }
        }
        dst[at++] = (char) c;
    }
    dst[at] = '\0';
    *len = at;
}


/* The text of a message's content: a string, or its first text part. 0 or -1 (none). */
static int
tail_text_content(const sl_json_t *doc, int content, sl_pool_t *pool, sl_str_t *out)
{
    if (sl_json_type(doc, content) == SL_JSON_STRING) {
        return sl_json_string(doc, content, pool, out) == 0 ? 0 : -1;
    }
    if (sl_json_type(doc, content) != SL_JSON_ARRAY) {
        return -1;
    }
    for (int p = sl_json_first(doc, content); p >= 0; p = sl_json_next(doc, content, p)) {
        if (sl_json_string(doc, sl_json_get(doc, p, "text"), pool, out) == 0) {
            return 0;
        }
    }
    return -1;
}


sl_tail_text_t *
sl_tail_text_new(const sl_conf_t *conf, sl_pool_t *pool, const sl_call_t *call, bool answers)
{
    const sl_json_t *doc = call->doc;
    sl_tail_text_t *t;
    sl_str_t s = { NULL, 0 };
    int msgs, v;

    if (!conf->dashboard.tail_text) {
        return NULL;
    }
    t = sl_pcalloc(pool, sizeof(*t));
    t->nanswer = answers ? 0 : SL_TAIL_TEXT_MAX;
    msgs = sl_json_get(doc, SL_JSON_ROOT, "messages");
    for (int m = sl_json_first(doc, msgs); m >= 0; m = sl_json_next(doc, msgs, m)) {
        sl_str_t role = { NULL, 0 }, text;

        if (sl_json_string(doc, sl_json_get(doc, m, "role"), pool, &role) == 0
            && sl_str_eq(role, "user")
            && tail_text_content(doc, sl_json_get(doc, m, "content"), pool, &text) == 0) {
            s = text; /* the last one stands */
        }
    }
    v = sl_json_get(doc, SL_JSON_ROOT, "input");
    if (msgs < 0 && v >= 0) {
        if (sl_json_type(doc, v) == SL_JSON_ARRAY) {
            v = sl_json_first(doc, v);
        }
        (void) sl_json_string(doc, v, pool, &s);
    }
    if (s.p != NULL) {
        tail_text_put(t->prompt, &t->nprompt, s.p, s.len);
    }
    return t;
}


void
sl_tail_text_events(sl_tail_text_t *t, sl_pool_t *pool, const sl_evs_t *evs)
{
    sl_str_t s;

    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < evs->n && t->nanswer < SL_TAIL_TEXT_MAX; i++) {
        const sl_ev_t *ev = &evs->v[i];

        if (ev->type == SL_EV_TEXT && ev->choice == 0 && ev->text.len > 2
            && sl_jstr_decode(pool, ev->text, &s) == 0) {
            tail_text_put(t->answer, &t->nanswer, s.p, s.len);
        }
    }
}


void
sl_tail_text_answer(sl_tail_text_t *t, sl_pool_t *pool, const sl_answer_t *ans)
{
    sl_str_t s;

    if (t == NULL || ans->nchoices == 0 || t->nanswer == SL_TAIL_TEXT_MAX) {
        return;
    }
    if (ans->choices[0].text.len > 2 && sl_jstr_decode(pool, ans->choices[0].text, &s) == 0) {
        t->nanswer = 0;
        tail_text_put(t->answer, &t->nanswer, s.p, s.len);
    }
}


void
sl_tail_add(const sl_ledger_row_t *row, const sl_tail_text_t *text)
{
    tail_entry_t *e;
    uint64_t seq;

    if (tail_shm == NULL) {
        return;
    }
    seq = atomic_fetch_add_explicit(&tail_shm->next, 1, memory_order_relaxed) + 1;
    e = &tail_shm->e[seq % SL_TAIL_SIZE];
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    e->time_ms = row->time_ns / 1000000;
    e->status = row->status;
    e->attempts = row->attempts;
    e->flags = row->flags;
    e->latency_us = row->latency_us;
    e->ttft_us = row->ttft_us;
    e->prompt_tokens = row->prompt_tokens;
    e->completion_tokens = row->completion_tokens;
    e->cost_nusd = row->cost_nusd;
    tail_copy(e->request_id, sizeof(e->request_id), row->request_id);
    tail_copy(e->key, sizeof(e->key), row->key_name);
    tail_copy(e->team, sizeof(e->team), row->team);
    tail_copy(e->endpoint, sizeof(e->endpoint), row->endpoint);
    tail_copy(e->model, sizeof(e->model), row->model);
    tail_copy(e->provider, sizeof(e->provider), row->provider);
    tail_copy(e->served_model, sizeof(e->served_model), row->served_model);
    tail_copy(e->cache, sizeof(e->cache), row->cache);
    tail_copy(e->guard, sizeof(e->guard), row->guard);
    e->text = text != NULL;
    tail_copy(e->prompt, sizeof(e->prompt), text != NULL ? text->prompt : "");
    tail_copy(e->answer, sizeof(e->answer), text != NULL ? text->answer : "");
    atomic_store_explicit(&e->seq, seq, memory_order_release);
}


json_t *
sl_tail_json(uint64_t after, size_t limit, uint64_t *last)
{
    uint64_t next, from, s1, s2;
    tail_entry_t copy;
    char usd[32], when[32];
    json_t *data = json_array(), *o;

    *last = 0;
    if (data == NULL || tail_shm == NULL) {
        return data;
    }
    next = atomic_load_explicit(&tail_shm->next, memory_order_acquire);
    *last = next;
    from = next > SL_TAIL_SIZE ? next - SL_TAIL_SIZE + 1 : 1;
    if (limit > 0 && next >= limit && next - limit + 1 > from) {
        from = next - limit + 1;
    }
    if (after + 1 > from) {
        from = after + 1;
    }
    for (uint64_t seq = from; seq <= next; seq++) {
        tail_entry_t *e = &tail_shm->e[seq % SL_TAIL_SIZE];

        s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (s1 != seq) {
            continue; /* being written, or already overwritten */
        }
        memcpy((char *) &copy + sizeof(copy.seq), (char *) e + sizeof(e->seq),
               sizeof(copy) - sizeof(copy.seq));
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
        if (s2 != s1) {
            continue;
        }
        copy.request_id[sizeof(copy.request_id) - 1] = '\0';
        copy.key[sizeof(copy.key) - 1] = '\0';
        copy.team[sizeof(copy.team) - 1] = '\0';
        copy.endpoint[sizeof(copy.endpoint) - 1] = '\0';
        copy.model[sizeof(copy.model) - 1] = '\0';
        copy.provider[sizeof(copy.provider) - 1] = '\0';
        copy.served_model[sizeof(copy.served_model) - 1] = '\0';
        copy.cache[sizeof(copy.cache) - 1] = '\0';
        copy.guard[sizeof(copy.guard) - 1] = '\0';
        copy.prompt[sizeof(copy.prompt) - 1] = '\0';
        copy.answer[sizeof(copy.answer) - 1] = '\0';
        sl_budget_format_usd(copy.cost_nusd, usd, sizeof(usd));
        sl_ledger_format_time(copy.time_ms / 1000, when, sizeof(when));
        o = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, "
                      "s:I, s:I, s:s, s:I, s:s, s:b, s:s}",
                      "seq", (json_int_t) seq, "time", when, "time_ms", (json_int_t) copy.time_ms,
                      "request_id", copy.request_id, "key", copy.key, "team", copy.team, "endpoint",
                      copy.endpoint, "model", copy.model, "provider", copy.provider, "served_model",
                      copy.served_model, "status", (int) copy.status, "attempts",
                      (int) copy.attempts, "latency_us", (json_int_t) copy.latency_us, "ttft_us",
                      (json_int_t) copy.ttft_us, "prompt_tokens", (json_int_t) copy.prompt_tokens,
                      "completion_tokens", (json_int_t) copy.completion_tokens, "cost_usd", usd,
                      "cost_nusd", (json_int_t) copy.cost_nusd, "cache", copy.cache, "stream",
                      (copy.flags & SL_LEDGER_STREAM) != 0, "guard", copy.guard);
        if (o != NULL && copy.text
            && (json_object_set_new(o, "prompt", json_string(copy.prompt)) != 0
                || json_object_set_new(o, "answer", json_string(copy.answer)) != 0)) {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_array_append_new(data, o) != 0) {
            json_decref(data);
            return NULL;
        }
    }
    return data;
}
