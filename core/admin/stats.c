/*
 * The dashboard's aggregation of ledger rows (core/admin/stats.h).
 */
#include "core/admin/stats.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/pool.h"
#include "core/base/str.h"
#include "storage/spend.h"

#define STATS_SLOTS    (SL_STATS_NAMES_MAX * 2) /* open addressing, at most half full */
#define STATS_SERVED   4                        /* targets kept per model */
#define STATS_SUB      8                        /* histogram bins per doubling */
#define STATS_NAME_MAX 128

typedef struct stats_name {
    char name[STATS_NAME_MAX];
    uint64_t hash;
    uint64_t requests;
    uint64_t cost; /* saturating */
    uint64_t *bucket_cost;
} stats_name_t;

typedef struct stats_dim {
    stats_name_t *names; /* SL_STATS_NAMES_MAX */
    size_t nnames;
    int slots[STATS_SLOTS]; /* index + 1 into names, 0: empty */
    stats_name_t other;
    bool has_other;
} stats_dim_t;

typedef struct stats_served {
    char provider[64];
    char model[STATS_NAME_MAX];
    uint64_t requests;
} stats_served_t;

typedef struct stats_model {
    char name[STATS_NAME_MAX];
    uint64_t requests;
    uint64_t errors;
    uint64_t cost;
    uint64_t count; /* rows in hist */
    uint32_t hist[SL_STATS_BINS];
    stats_served_t served[STATS_SERVED];
    size_t nserved;
} stats_model_t;

typedef struct stats_bucket {
    uint64_t requests;
    uint64_t errors;
    uint64_t cost;
    uint64_t cache_hits;
    uint64_t saved;
    uint64_t nlat;
    uint64_t nttft;
    uint32_t lat[SL_STATS_BINS];
    uint32_t ttft[SL_STATS_BINS];
} stats_bucket_t;

/* Guardrail decisions of one policy with one action (from the rows' guard field). */
typedef struct stats_guard {
    char policy[65];
    char action[8]; /* log, redact, block */
    uint64_t decisions;
    uint64_t requests; /* rows with at least one such decision */
} stats_guard_t;

struct sl_stats {
    int64_t since;
    int64_t until;
    int64_t start; /* since rounded down to bucket_ms */
    int64_t bucket_ms;
    size_t nbuckets;
    stats_bucket_t *b;
    stats_bucket_t total;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    stats_dim_t dim[SL_STATS_DIMS];
    stats_model_t *models;
    size_t nmodels;
    bool models_full;
    stats_guard_t guard[SL_STATS_GUARD_MAX];
    size_t nguard;
    uint64_t guard_requests; /* rows with any decision */
};

static uint64_t stats_sat_add(uint64_t a, uint64_t b);
static uint64_t stats_bin_value(unsigned i);
static void stats_name_add(sl_stats_t *s, stats_dim_t *d, const char *name, size_t bi,
                           uint64_t cost);
static void stats_model_add(sl_stats_t *s, const sl_ledger_row_t *row, bool error);
static void stats_bucket_add(stats_bucket_t *b, const sl_ledger_row_t *row, bool error);
static json_t *stats_pcts(const uint32_t *hist, uint64_t count);
static json_t *stats_pct_series(const sl_stats_t *s, bool ttft, unsigned q);
static json_t *stats_u64_series(const sl_stats_t *s, size_t offset);
static json_t *stats_dim_json(const sl_stats_t *s, const stats_dim_t *d);
static json_t *stats_name_json(const sl_stats_t *s, const stats_name_t *n);
static json_t *stats_models_json(const sl_stats_t *s);
static json_t *stats_ms(uint64_t us, bool known);
static json_t *stats_usd(uint64_t nusd);
static void stats_guard_add(sl_stats_t *s, const char *guard);
static json_t *stats_guard_json(const sl_stats_t *s);
static int stats_cmp_name(const void *a, const void *b);
static int stats_cmp_model(const void *a, const void *b);


sl_stats_t *
sl_stats_create(int64_t since_ms, int64_t until_ms, int64_t bucket_ms)
{
    sl_stats_t *s;
    int64_t start;
    size_t n;

    if (bucket_ms <= 0 || until_ms <= since_ms || since_ms < 0) {
        return NULL;
    }
    start = since_ms - since_ms % bucket_ms;
    n = (size_t) ((until_ms - start + bucket_ms - 1) / bucket_ms);
    if (n == 0 || n > SL_STATS_BUCKETS_MAX) {
        return NULL;
    }
    s = sl_xcalloc(1, sizeof(*s));
    s->since = since_ms;
    s->until = until_ms;
    s->start = start;
    s->bucket_ms = bucket_ms;
    s->nbuckets = n;
    s->b = sl_xcalloc(n, sizeof(stats_bucket_t));
    for (int d = 0; d < SL_STATS_DIMS; d++) {
        s->dim[d].names = sl_xcalloc(SL_STATS_NAMES_MAX, sizeof(stats_name_t));
        s->dim[d].other.bucket_cost = sl_xcalloc(n, sizeof(uint64_t));
        strcpy(s->dim[d].other.name, "other");
    }
    s->models = sl_xcalloc(SL_STATS_MODELS_MAX, sizeof(stats_model_t));
    return s;
}


void
sl_stats_destroy(sl_stats_t *s)
{
    if (s == NULL) {
        return;
    }
    for (int d = 0; d < SL_STATS_DIMS; d++) {
        for (size_t i = 0; i < s->dim[d].nnames; i++) {
            free(s->dim[d].names[i].bucket_cost);
        }
        free(s->dim[d].names);
        free(s->dim[d].other.bucket_cost);
    }
    free(s->models);
    free(s->b);
    free(s);
}


static uint64_t
stats_sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}


unsigned
sl_stats_bin(uint64_t v)
{
    unsigned msb, bin;

    if (v < STATS_SUB) {
        return (unsigned) v;
    }
    msb = 63u - (unsigned) __builtin_clzll(v);
    bin = msb * STATS_SUB + (unsigned) ((v >> (msb - 3)) & (STATS_SUB - 1));
    return bin < SL_STATS_BINS ? bin : SL_STATS_BINS - 1;
}


/* The middle of bin i: the inverse of sl_stats_bin. */
static uint64_t
stats_bin_value(unsigned i)
{
    unsigned msb = i / STATS_SUB, sub = i % STATS_SUB;

    if (i < STATS_SUB) {
        return i;
    }
    return ((uint64_t) (STATS_SUB + sub) << (msb - 3)) + ((uint64_t) 1 << (msb - 3)) / 2;
}


uint64_t
sl_stats_percentile(const uint32_t *hist, uint64_t count, unsigned q)
{
    uint64_t rank, seen = 0;

    if (count == 0) {
        return 0;
    }
    /* nearest rank: the smallest value with at least q% of the values at or below it */
    rank = (count * q + 99) / 100;
    rank = rank == 0 ? 1 : rank;
    for (unsigned i = 0; i < SL_STATS_BINS; i++) {
        seen += hist[i];
        if (seen >= rank) {
            return stats_bin_value(i);
        }
    }
    return stats_bin_value(SL_STATS_BINS - 1);
}


uint64_t
sl_stats_project(uint64_t spent, int64_t start, int64_t end, int64_t now)
{
    double rate;

    if (end <= now || now - start < 60 * 1000) {
        return spent;
    }
    rate = (double) spent / (double) (now - start);
    return spent + (uint64_t) (rate * (double) (end - now));
}


static void
stats_bucket_add(stats_bucket_t *b, const sl_ledger_row_t *row, bool error)
{
    b->requests++;
    b->errors += error;
    b->cost = stats_sat_add(b->cost, row->cost_nusd);
    if (row->flags & SL_LEDGER_CACHE_HIT) {
        b->cache_hits++;
        b->saved = stats_sat_add(b->saved, row->saved_nusd);
    }
    b->lat[sl_stats_bin(row->latency_us)]++;
    b->nlat++;
    if (row->ttft_us > 0) {
        b->ttft[sl_stats_bin(row->ttft_us)]++;
        b->nttft++;
    }
}


static void
stats_name_add(sl_stats_t *s, stats_dim_t *d, const char *name, size_t bi, uint64_t cost)
{
    uint64_t h = sl_str_hash(name);
    size_t slot = (size_t) (h % STATS_SLOTS);
    stats_name_t *n = NULL;

    for (size_t probe = 0; probe < STATS_SLOTS; probe++, slot = (slot + 1) % STATS_SLOTS) {
        int idx = d->slots[slot];

        if (idx == 0) {
            if (d->nnames < SL_STATS_NAMES_MAX) {
                n = &d->names[d->nnames++];
                n->hash = h;
                snprintf(n->name, sizeof(n->name), "%s", name);
                n->bucket_cost = sl_xcalloc(s->nbuckets, sizeof(uint64_t));
                d->slots[slot] = (int) d->nnames;
            }
            break;
        }
        if (d->names[idx - 1].hash == h
            && strncmp(d->names[idx - 1].name, name, STATS_NAME_MAX - 1) == 0) {
            n = &d->names[idx - 1];
            break;
        }
    }
    if (n == NULL) {
        n = &d->other;
        d->has_other = true;
    }
    n->requests++;
    n->cost = stats_sat_add(n->cost, cost);
    n->bucket_cost[bi] = stats_sat_add(n->bucket_cost[bi], cost);
}


static void
stats_model_add(sl_stats_t *s, const sl_ledger_row_t *row, bool error)
{
    stats_model_t *m = NULL;
    size_t i;

    for (i = 0; i < s->nmodels; i++) {
        if (strncmp(s->models[i].name, row->model, STATS_NAME_MAX - 1) == 0) {
            m = &s->models[i];
            break;
        }
    }
    if (m == NULL) {
        if (s->nmodels == SL_STATS_MODELS_MAX) {
            s->models_full = true;
            return;
        }
        m = &s->models[s->nmodels++];
        snprintf(m->name, sizeof(m->name), "%s", row->model);
    }
    m->requests++;
    m->errors += error;
    m->cost = stats_sat_add(m->cost, row->cost_nusd);
    m->hist[sl_stats_bin(row->latency_us)]++;
    m->count++;
    if (row->provider[0] == '\0' || row->status >= 400) {
        return;
    }
    for (i = 0; i < m->nserved; i++) {
        if (strcmp(m->served[i].provider, row->provider) == 0
            && strncmp(m->served[i].model, row->served_model, STATS_NAME_MAX - 1) == 0) {
            m->served[i].requests++;
            return;
        }
    }
    if (m->nserved < STATS_SERVED) {
        snprintf(m->served[m->nserved].provider, sizeof(m->served[0].provider), "%s",
                 row->provider);
        snprintf(m->served[m->nserved].model, sizeof(m->served[0].model), "%s", row->served_model);
        m->served[m->nserved++].requests = 1;
    }
}


void
sl_stats_add(sl_stats_t *s, const sl_ledger_row_t *row)
{
    int64_t t = row->time_ns / 1000000;
    bool error = row->status >= 400;
    const char *names[SL_STATS_DIMS];
    size_t bi;

    if (t < s->since || t >= s->until || (row->flags & SL_LEDGER_GATEWAY)) {
        return;
    }
    bi = (size_t) ((t - s->start) / s->bucket_ms);
    stats_bucket_add(&s->b[bi], row, error);
    stats_bucket_add(&s->total, row, error);
    s->prompt_tokens += row->prompt_tokens;
    s->completion_tokens += row->completion_tokens;
    names[SL_STATS_BY_MODEL] = row->model;
    names[SL_STATS_BY_PROVIDER] = row->provider[0] != '\0' ? row->provider : "(none)";
    names[SL_STATS_BY_KEY] = row->key_name;
    names[SL_STATS_BY_TEAM] = row->team[0] != '\0' ? row->team : "(no team)";
    for (int d = 0; d < SL_STATS_DIMS; d++) {
        stats_name_add(s, &s->dim[d], names[d], bi, row->cost_nusd);
    }
    stats_model_add(s, row, error);
    if (row->guard != NULL && row->guard[0] != '\0') {
        stats_guard_add(s, row->guard);
    }
}


/*
 * Counts the decisions of a row's guard field, "policy/rule/action;...":
 * by policy and action (never the rule's text beyond its name, which the
 * field already holds; nothing of the matched text is in it).
 */
static void
stats_guard_add(sl_stats_t *s, const char *guard)
{
    size_t seen[SL_STATS_GUARD_MAX];
    size_t nseen = 0;

    s->guard_requests++;
    for (const char *p = guard; *p != '\0';) {
        const char *end = strchr(p, ';'), *slash = strchr(p, '/'), *act;
        size_t plen, alen, k;

        if (end == NULL) {
            end = p + strlen(p);
        }
        act = end;
        while (act > p && act[-1] != '/') {
            act--;
        }
        if (slash != NULL && slash < end && act > slash) {
            plen = (size_t) (slash - p);
            alen = (size_t) (end - act);
            for (k = 0; k < s->nguard; k++) {
                if (strlen(s->guard[k].policy) == plen && memcmp(s->guard[k].policy, p, plen) == 0
                    && strlen(s->guard[k].action) == alen
                    && memcmp(s->guard[k].action, act, alen) == 0) {
                    break;
                }
            }
            if (k == s->nguard && k < SL_STATS_GUARD_MAX && plen < sizeof(s->guard[k].policy)
                && alen < sizeof(s->guard[k].action)) {
                memcpy(s->guard[k].policy, p, plen);
                s->guard[k].policy[plen] = '\0';
                memcpy(s->guard[k].action, act, alen);
                s->guard[k].action[alen] = '\0';
                s->nguard++;
            }
            if (k < s->nguard) {
                bool counted = false;

                s->guard[k].decisions++;
                for (size_t i = 0; i < nseen; i++) {
                    counted = counted || seen[i] == k;
                }
                if (!counted && nseen < SL_STATS_GUARD_MAX) {
                    seen[nseen++] = k;
                    s->guard[k].requests++;
                }
            }
        }
        p = *end == ';' ? end + 1 : end;
    }
}


/* [{policy, action, decisions, requests}], the most decisions first. */
static json_t *
stats_guard_json(const sl_stats_t *s)
{
    json_t *a = json_array();
    size_t order[SL_STATS_GUARD_MAX];

    for (size_t i = 0; i < s->nguard; i++) {
        size_t j = i;

        while (j > 0 && s->guard[order[j - 1]].decisions < s->guard[i].decisions) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t i = 0; a != NULL && i < s->nguard; i++) {
        const stats_guard_t *g = &s->guard[order[i]];

        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I}", "policy", g->policy, "action",
                                           g->action, "decisions", (json_int_t) g->decisions,
                                           "requests", (json_int_t) g->requests));
    }
    return a;
}


static json_t *
stats_ms(uint64_t us, bool known)
{
    return known ? json_integer((json_int_t) (us > INT64_MAX ? INT64_MAX : us)) : json_null();
}


static json_t *
stats_usd(uint64_t nusd)
{
    char buf[32];

    sl_budget_format_usd(nusd, buf, sizeof(buf));
    return json_string(buf);
}


static json_t *
stats_pcts(const uint32_t *hist, uint64_t count)
{
    return json_pack("{s:o, s:o, s:o}", "p50",
                     stats_ms(sl_stats_percentile(hist, count, 50), count > 0), "p95",
                     stats_ms(sl_stats_percentile(hist, count, 95), count > 0), "p99",
                     stats_ms(sl_stats_percentile(hist, count, 99), count > 0));
}


static json_t *
stats_pct_series(const sl_stats_t *s, bool ttft, unsigned q)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < s->nbuckets; i++) {
        const stats_bucket_t *b = &s->b[i];
        uint64_t n = ttft ? b->nttft : b->nlat;

        json_array_append_new(a,
                              stats_ms(sl_stats_percentile(ttft ? b->ttft : b->lat, n, q), n > 0));
    }
    return a;
}


/* The uint64_t at offset in every bucket, as a JSON array. */
static json_t *
stats_u64_series(const sl_stats_t *s, size_t offset)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < s->nbuckets; i++) {
        uint64_t v;

        memcpy(&v, (const char *) &s->b[i] + offset, sizeof(v));
        json_array_append_new(a, json_integer((json_int_t) (v > INT64_MAX ? INT64_MAX : v)));
    }
    return a;
}


static json_t *
stats_name_json(const sl_stats_t *s, const stats_name_t *n)
{
    json_t *costs = json_array();

    for (size_t i = 0; costs != NULL && i < s->nbuckets; i++) {
        json_array_append_new(
            costs, json_integer((json_int_t) (n->bucket_cost[i] > INT64_MAX ? INT64_MAX
                                                                            : n->bucket_cost[i])));
    }
    return json_pack("{s:s%, s:o, s:o, s:I}", "name", n->name, strlen(n->name), "cost_usd",
                     stats_usd(n->cost), "cost_nusd", costs, "requests", (json_int_t) n->requests);
}


static int
stats_cmp_name(const void *a, const void *b)
{
    const stats_name_t *x = *(const stats_name_t *const *) a, *y = *(const stats_name_t *const *) b;

    if (x->cost != y->cost) {
        return x->cost > y->cost ? -1 : 1;
    }
    if (x->requests != y->requests) {
        return x->requests > y->requests ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}


/* The top SL_STATS_TOP names by cost, then one "other" for the rest. */
static json_t *
stats_dim_json(const sl_stats_t *s, const stats_dim_t *d)
{
    const stats_name_t *order[SL_STATS_NAMES_MAX];
    stats_name_t other;
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < d->nnames; i++) {
        order[i] = &d->names[i];
    }
    qsort(order, d->nnames, sizeof(order[0]), stats_cmp_name);
    for (i = 0; i < d->nnames && i < SL_STATS_TOP; i++) {
        json_array_append_new(a, stats_name_json(s, order[i]));
    }
    if (i == d->nnames && !d->has_other) {
        return a;
    }
    other = d->other;
    other.bucket_cost = sl_xcalloc(s->nbuckets, sizeof(uint64_t));
    memcpy(other.bucket_cost, d->other.bucket_cost, s->nbuckets * sizeof(uint64_t));
    for (; i < d->nnames; i++) {
        other.requests += order[i]->requests;
        other.cost = stats_sat_add(other.cost, order[i]->cost);
        for (size_t k = 0; k < s->nbuckets; k++) {
            other.bucket_cost[k] = stats_sat_add(other.bucket_cost[k], order[i]->bucket_cost[k]);
        }
    }
    json_array_append_new(a, stats_name_json(s, &other));
    free(other.bucket_cost);
    return a;
}


static int
stats_cmp_model(const void *a, const void *b)
{
    const stats_model_t *x = a, *y = b;

    if (x->requests != y->requests) {
        return x->requests > y->requests ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}


static json_t *
stats_models_json(const sl_stats_t *s)
{
    stats_model_t *m = sl_xcalloc(s->nmodels > 0 ? s->nmodels : 1, sizeof(*m));
    json_t *a = json_array(), *served;

    memcpy(m, s->models, s->nmodels * sizeof(*m));
    qsort(m, s->nmodels, sizeof(*m), stats_cmp_model);
    for (size_t i = 0; a != NULL && i < s->nmodels; i++) {
        served = json_array();
        for (size_t k = 0; served != NULL && k < m[i].nserved; k++) {
            json_array_append_new(served,
                                  json_pack("{s:s, s:s, s:I}", "provider", m[i].served[k].provider,
                                            "model", m[i].served[k].model, "requests",
                                            (json_int_t) m[i].served[k].requests));
        }
        json_array_append_new(
            a, json_pack("{s:s, s:I, s:I, s:o, s:o, s:o}", "model", m[i].name, "requests",
                         (json_int_t) m[i].requests, "errors", (json_int_t) m[i].errors, "cost_usd",
                         stats_usd(m[i].cost), "p95_us",
                         stats_ms(sl_stats_percentile(m[i].hist, m[i].count, 95), m[i].count > 0),
                         "served", served != NULL ? served : json_array()));
    }
    free(m);
    return a;
}


json_t *
sl_stats_json(const sl_stats_t *s)
{
    static const char *const dim_names[SL_STATS_DIMS] = { "model", "provider", "key", "team" };
    const stats_bucket_t *t = &s->total;
    json_t *j, *buckets = json_array(), *series = json_object(), *total;
    char since[32], until[32];

    for (size_t i = 0; buckets != NULL && i < s->nbuckets; i++) {
        json_array_append_new(buckets,
                              json_integer((json_int_t) (s->start + (int64_t) i * s->bucket_ms)));
    }
    for (int d = 0; series != NULL && d < SL_STATS_DIMS; d++) {
        json_object_set_new(series, dim_names[d], stats_dim_json(s, &s->dim[d]));
    }
    total = json_pack(
        "{s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "requests", (json_int_t) t->requests,
        "errors", (json_int_t) t->errors, "cost_usd", stats_usd(t->cost), "cost_nusd",
        (json_int_t) (t->cost > INT64_MAX ? INT64_MAX : t->cost), "prompt_tokens",
        (json_int_t) s->prompt_tokens, "completion_tokens", (json_int_t) s->completion_tokens,
        "cache_hits", (json_int_t) t->cache_hits, "saved_usd", stats_usd(t->saved), "latency_us",
        stats_pcts(t->lat, t->nlat), "ttft_us", stats_pcts(t->ttft, t->nttft));
    sl_ledger_format_time(s->since / 1000, since, sizeof(since));
    sl_ledger_format_time(s->until / 1000, until, sizeof(until));
    j = json_pack(
        "{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:{s:o, s:o, s:o}, "
        "s:o, s:o, s:o, s:b, s:o, s:I}",
        "since", since, "until", until, "bucket", s->bucket_ms >= SL_STATS_DAY_MS ? "day" : "hour",
        "bucket_ms", (json_int_t) s->bucket_ms, "buckets", buckets, "requests",
        stats_u64_series(s, offsetof(stats_bucket_t, requests)), "errors",
        stats_u64_series(s, offsetof(stats_bucket_t, errors)), "cost_nusd",
        stats_u64_series(s, offsetof(stats_bucket_t, cost)), "cache_hits",
        stats_u64_series(s, offsetof(stats_bucket_t, cache_hits)), "saved_nusd",
        stats_u64_series(s, offsetof(stats_bucket_t, saved)), "latency_us", "p50",
        stats_pct_series(s, false, 50), "p95", stats_pct_series(s, false, 95), "p99",
        stats_pct_series(s, false, 99), "ttft_us", "p50", stats_pct_series(s, true, 50), "p95",
        stats_pct_series(s, true, 95), "p99", stats_pct_series(s, true, 99), "series", series,
        "total", total, "models", stats_models_json(s), "models_truncated", s->models_full, "guard",
        stats_guard_json(s), "guard_requests", (json_int_t) s->guard_requests);
    return j;
}
