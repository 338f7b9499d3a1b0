/*
 * The live tail ring in the shared segment (core/admin/tail.h).
 */
#include "core/admin/tail.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "core/base/log.h"
#include "core/base/shm.h"

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
} tail_entry_t;

typedef struct tail_shm {
    _Atomic uint64_t next; /* sequence numbers handed out */
    tail_entry_t e[SL_TAIL_SIZE];
} tail_shm_t;

static tail_shm_t *tail_shm;

static void tail_copy(char *dst, size_t size, const char *src);


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


void
sl_tail_add(const sl_ledger_row_t *row)
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
        sl_budget_format_usd(copy.cost_nusd, usd, sizeof(usd));
        sl_ledger_format_time(copy.time_ms / 1000, when, sizeof(when));
        o = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, "
                      "s:I, s:I, s:s, s:I, s:s, s:b}",
                      "seq", (json_int_t) seq, "time", when, "time_ms", (json_int_t) copy.time_ms,
                      "request_id", copy.request_id, "key", copy.key, "team", copy.team, "endpoint",
                      copy.endpoint, "model", copy.model, "provider", copy.provider, "served_model",
                      copy.served_model, "status", (int) copy.status, "attempts",
                      (int) copy.attempts, "latency_us", (json_int_t) copy.latency_us, "ttft_us",
                      (json_int_t) copy.ttft_us, "prompt_tokens", (json_int_t) copy.prompt_tokens,
                      "completion_tokens", (json_int_t) copy.completion_tokens, "cost_usd", usd,
                      "cost_nusd", (json_int_t) copy.cost_nusd, "cache", copy.cache, "stream",
                      (copy.flags & SL_LEDGER_STREAM) != 0);
        if (o == NULL || json_array_append_new(data, o) != 0) {
            json_decref(data);
            return NULL;
        }
    }
    return data;
}
