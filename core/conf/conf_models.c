/*
 * The models: and routing: sections. A model names its targets
 * ("provider/model", optionally weighted), starts from the top-level
 * routing: (retries, backoff, timeouts, retry_on, strategy, retry budget,
 * breaker) and may override any of those keys directly under its name; its
 * rules: pick other targets when a request matches their when: conditions
 * (prompt size, headers, key, team, tools, images, complexity). Providers
 * are parsed before models, so a target refers to its provider directly.
 */
#include "core/conf/conf_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/base/errno.h"

#define CONF_HOUR_MS    (3600ULL * 1000)
#define CONF_DAY_MS     (86400ULL * 1000)
#define CONF_TOKENS_MAX 1000000000ULL

static int conf_parse_model(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *map,
                            sl_model_conf_t *m);
static int conf_parse_target(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_target_t *t);
static int conf_parse_targets(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *owner,
                              sl_target_t **out, size_t *count);
static void conf_routing_defaults(sl_routing_conf_t *r);
static int conf_read_routing(sl_conf_ctx_t *cx, const sl_conf_node_t *map, sl_routing_conf_t *r);
static int conf_parse_strategy(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_strategy_e *out);
static int conf_parse_retry_on(sl_conf_ctx_t *cx, const sl_conf_node_t *n, unsigned *out);
static int conf_parse_rules(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_model_conf_t *m);
static int conf_parse_rule(sl_conf_ctx_t *cx, const sl_conf_node_t *item, const sl_model_conf_t *m,
                           sl_rule_conf_t *rule);
static int conf_parse_when(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *where,
                           sl_rule_conf_t *rule);
static int conf_parse_when_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n,
                                   sl_rule_conf_t *rule);
static int conf_parse_names(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                            const char ***out, size_t *count);
static bool conf_valid_model_name(const char *s);


static const char *const conf_strategies[] = {
    [SL_STRATEGY_FALLBACK] = "fallback",     [SL_STRATEGY_WEIGHTED] = "weighted",
    [SL_STRATEGY_CHEAPEST] = "cheapest",     [SL_STRATEGY_FASTEST] = "fastest",
    [SL_STRATEGY_LEAST_BUSY] = "least_busy",
};


int
sl__conf_parse_models(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_conf_t *conf = cx->conf;
    const sl_conf_node_t *k, *v;
    size_t count;

    if (map == NULL) {
        return 0;
    }
    count = sl__conf_map_len(map);
    conf->models = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_model_conf_t));
    for (size_t i = 0; i < count; i++) {
        sl__conf_map_at(cx, map, i, &k, &v);
        if (conf_parse_model(cx, k, v, &conf->models[i]) != 0) {
            return SL_ECONF;
        }
        conf->nmodels = i + 1;
    }
    return 0;
}


static int
conf_parse_model(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *map,
                 sl_model_conf_t *m)
{
    char where[CONF_WHERE_MAX];
    const sl_conf_node_t *n;

    if (sl__conf_scalar(cx, key, "model name", &m->name) != 0) {
        return SL_ECONF;
    }
    if (!conf_valid_model_name(m->name)) {
        return sl_conf_errorf(cx, key, "invalid model name \"%s\" (%s)", m->name,
                              "1 to 256 characters, no spaces or control characters");
    }
    if (!sl__conf_is_map(map)) {
        return sl_conf_errorf(cx, map, "model \"%s\" must be a mapping, not %s", m->name,
                              sl__conf_type_name(map));
    }

    n = sl_conf_get(cx, map, "targets");
    if (n == NULL) {
        return sl_conf_errorf(cx, key, "model \"%s\" needs targets", m->name);
    }
    if (conf_parse_targets(cx, n, m->name, &m->targets, &m->ntargets) != 0) {
        return SL_ECONF;
    }

    /* every routing: key may be overridden here, directly under the model */
    m->routing = cx->conf->routing;
    if (conf_read_routing(cx, map, &m->routing) != 0) {
        return SL_ECONF;
    }
    m->strategy = m->routing.strategy;

    n = sl_conf_get(cx, map, "rules");
    if (n != NULL && conf_parse_rules(cx, n, m) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "guard");
    if (n != NULL && sl__conf_guard_ref(cx, n, &m->guard) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, map, "cache");
    if (n != NULL && sl__conf_parse_model_cache(cx, n, m) != 0) {
        return SL_ECONF;
    }

    snprintf(where, sizeof(where), "model \"%s\"", m->name);
    return sl_conf_check_unknown(cx, map, where);
}


/* "provider/model" or {target: "provider/model", weight: N}. */
static int
conf_parse_target(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_target_t *t)
{
    const sl_conf_node_t *n = item;
    const char *text, *slash;
    uint64_t weight = 1;

    if (sl__conf_is_map(item)) {
        n = sl_conf_get(cx, item, "target");
        if (n == NULL) {
            return sl_conf_errorf(cx, item, "a target mapping needs a \"target\" key");
        }
        if (sl_conf_get_uint(cx, item, "weight", 1, 1000, &weight) != 0
            || sl_conf_check_unknown(cx, item, "target") != 0) {
            return SL_ECONF;
        }
    } else if (!sl__conf_is_scalar(item)) {
        return sl_conf_errorf(cx, item, "a target must be \"provider/model\" or a mapping, not %s",
                              sl__conf_type_name(item));
    }

    if (sl__conf_scalar(cx, n, "target", &text) != 0) {
        return SL_ECONF;
    }
    slash = strchr(text, '/');
    if (slash == NULL || slash == text || slash[1] == '\0') {
        return sl_conf_errorf(cx, n, "target \"%s\" must be \"provider/model\"", text);
    }
    t->provider = sl_conf_provider(cx->conf, text, (size_t) (slash - text));
    if (t->provider == NULL) {
        return sl_conf_errorf(cx, n, "unknown provider \"%.*s\" in target \"%s\"",
                              (int) (slash - text), text, text);
    }
    t->model = slash + 1;
    t->weight = (unsigned) weight;
    return 0;
}


/* A model's or a rule's targets: a non-empty list, no target twice. */
static int
conf_parse_targets(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *owner, sl_target_t **out,
                   size_t *count)
{
    const sl_conf_node_t *item;
    sl_target_t *t;
    size_t len;

    if (!sl__conf_is_seq(n)) {
        return sl_conf_errorf(cx, n, "targets must be a list, not %s", sl__conf_type_name(n));
    }
    len = sl__conf_seq_len(n);
    if (len == 0) {
        return sl_conf_errorf(cx, n, "model \"%s\" needs at least one target", owner);
    }
    t = sl_pcalloc(cx->pool, len * sizeof(sl_target_t));
    for (size_t i = 0; i < len; i++) {
        item = sl__conf_seq_item(cx, n, i);
        if (conf_parse_target(cx, item, &t[i]) != 0) {
            return SL_ECONF;
        }
        for (size_t j = 0; j < i; j++) {
            if (t[j].provider == t[i].provider && strcmp(t[j].model, t[i].model) == 0) {
                return sl_conf_errorf(cx, item, "target \"%s/%s\" is listed twice",
                                      t[i].provider->name, t[i].model);
            }
        }
    }
    *out = t;
    *count = len;
    return 0;
}


static void
conf_routing_defaults(sl_routing_conf_t *r)
{
    r->retries = 1;
    r->backoff = 200;
    r->max_wait = 5 * 1000;
    r->retry_on = SL_RETRY_ON_ALL;
    r->first_token_timeout = 60 * 1000;
    r->breaker_failures = 5;
    r->breaker_cooldown = 30 * 1000;
    r->retry_budget = 200;
    r->deadline = 0;
    r->strategy = SL_STRATEGY_FALLBACK;
    r->max_latency = 0;
}


/* The top-level routing: map; every model starts from it. */
int
sl__conf_parse_routing(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    conf_routing_defaults(&cx->conf->routing);
    if (conf_read_routing(cx, map, &cx->conf->routing) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "routing");
}


/*
 * Reads the routing keys present in map over r; absent keys keep what r
 * holds. Shared by routing: and by a model, where the same keys sit
 * directly under the model's name (the caller checks for unknown keys).
 */
static int
conf_read_routing(sl_conf_ctx_t *cx, const sl_conf_node_t *map, sl_routing_conf_t *r)
{
    const sl_conf_node_t *n, *b;
    const char *s;
    uint64_t v;

    if (map == NULL) {
        return 0;
    }
    v = r->retries;
    if (sl_conf_get_uint(cx, map, "retries", 0, 10, &v) != 0) {
        return SL_ECONF;
    }
    r->retries = (unsigned) v;
    if (sl_conf_get_duration(cx, map, "backoff", 0, CONF_HOUR_MS, &r->backoff) != 0
        || sl_conf_get_duration(cx, map, "max_wait", 0, CONF_HOUR_MS, &r->max_wait) != 0
        || sl_conf_get_duration(cx, map, "first_token_timeout", 0, CONF_DAY_MS,
                                &r->first_token_timeout)
               != 0
        || sl_conf_get_duration(cx, map, "deadline", 0, CONF_DAY_MS, &r->deadline) != 0
        || sl_conf_get_duration(cx, map, "max_latency", 0, CONF_HOUR_MS, &r->max_latency) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "retry_on");
    if (n != NULL && conf_parse_retry_on(cx, n, &r->retry_on) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "strategy");
    if (n != NULL && conf_parse_strategy(cx, n, &r->strategy) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, map, "retry_budget");
    if (n != NULL) {
        if (sl__conf_scalar(cx, n, "retry_budget", &s) != 0) {
            return SL_ECONF;
        }
        if (sl_conf_parse_share(s, &r->retry_budget) != 0) {
            return sl_conf_errorf(cx, n,
                                  "invalid retry_budget \"%s\" (a share of requests between 0%% "
                                  "and 100%%, e.g. 20%% or 0.2)",
                                  s);
        }
    }

    if (sl__conf_section(cx, map, "breaker", &b) != 0) {
        return SL_ECONF;
    }
    if (b != NULL) {
        v = r->breaker_failures;
        if (sl_conf_get_uint(cx, b, "failures", 0, 1000, &v) != 0
            || sl_conf_get_duration(cx, b, "cooldown", 1, CONF_DAY_MS, &r->breaker_cooldown) != 0
            || sl_conf_check_unknown(cx, b, "breaker") != 0) {
            return SL_ECONF;
        }
        r->breaker_failures = (unsigned) v;
    }
    return 0;
}


static int
conf_parse_strategy(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_strategy_e *out)
{
    const char *s;

    if (sl__conf_scalar(cx, n, "strategy", &s) != 0) {
        return SL_ECONF;
    }
    for (size_t i = 0; i < sizeof(conf_strategies) / sizeof(conf_strategies[0]); i++) {
        if (strcmp(s, conf_strategies[i]) == 0) {
            *out = (sl_strategy_e) i;
            return 0;
        }
    }
    return sl_conf_errorf(
        cx, n, "invalid strategy \"%s\" (use fallback, weighted, cheapest, fastest or least_busy)",
        s);
}


/* A list of connect, timeout, 429, 5xx; an empty list retries nothing. */
static int
conf_parse_retry_on(sl_conf_ctx_t *cx, const sl_conf_node_t *n, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } classes[] = {
        { "connect", SL_RETRY_ON_CONNECT },
        { "timeout", SL_RETRY_ON_TIMEOUT },
        { "429", SL_RETRY_ON_429 },
        { "5xx", SL_RETRY_ON_5XX },
    };
    const sl_conf_node_t *item;
    unsigned bits = 0;
    const char *s;
    size_t i;

    if (!sl__conf_is_seq(n)) {
        return sl_conf_errorf(cx, n, "retry_on must be a list, not %s", sl__conf_type_name(n));
    }
    for (size_t k = 0; k < sl__conf_seq_len(n); k++) {
        item = sl__conf_seq_item(cx, n, k);
        if (sl__conf_scalar(cx, item, "retry_on entry", &s) != 0) {
            return SL_ECONF;
        }
        for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
            if (strcmp(s, classes[i].name) == 0) {
                break;
            }
        }
        if (i == sizeof(classes) / sizeof(classes[0])) {
            return sl_conf_errorf(cx, item,
                                  "invalid retry_on entry \"%s\" (use connect, timeout, 429 or "
                                  "5xx)",
                                  s);
        }
        if ((bits & classes[i].bit) != 0) {
            return sl_conf_errorf(cx, item, "retry_on lists \"%s\" twice", s);
        }
        bits |= classes[i].bit;
    }
    *out = bits;
    return 0;
}


static int
conf_parse_rules(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_model_conf_t *m)
{
    size_t count;

    if (!sl__conf_is_seq(n)) {
        return sl_conf_errorf(cx, n, "rules must be a list, not %s", sl__conf_type_name(n));
    }
    count = sl__conf_seq_len(n);
    if (count == 0) {
        return 0;
    }
    m->rules = sl_pcalloc(cx->pool, count * sizeof(sl_rule_conf_t));
    for (size_t i = 0; i < count; i++) {
        m->rules[i].index = (unsigned) i;
        if (conf_parse_rule(cx, sl__conf_seq_item(cx, n, i), m, &m->rules[i]) != 0) {
            return SL_ECONF;
        }
        m->nrules = i + 1;
    }
    return 0;
}


/* {when: {...}, targets: [...], strategy: S}; when and targets are required. */
static int
conf_parse_rule(sl_conf_ctx_t *cx, const sl_conf_node_t *item, const sl_model_conf_t *m,
                sl_rule_conf_t *rule)
{
    char where[CONF_WHERE_MAX + 32];
    const sl_conf_node_t *n;

    snprintf(where, sizeof(where), "rule %u of model \"%s\"", rule->index + 1, m->name);
    if (!sl__conf_is_map(item)) {
        return sl_conf_errorf(cx, item, "%s must be a mapping, not %s", where,
                              sl__conf_type_name(item));
    }
    rule->where = sl__conf_where(cx, item);

    n = sl_conf_get(cx, item, "when");
    if (n == NULL) {
        return sl_conf_errorf(cx, item, "%s needs a when", where);
    }
    if (conf_parse_when(cx, n, where, rule) != 0) {
        return SL_ECONF;
    }

    n = sl_conf_get(cx, item, "targets");
    if (n == NULL) {
        return sl_conf_errorf(cx, item, "%s needs targets", where);
    }
    if (conf_parse_targets(cx, n, m->name, &rule->targets, &rule->ntargets) != 0) {
        return SL_ECONF;
    }

    rule->routing = m->routing;
    n = sl_conf_get(cx, item, "strategy");
    if (n != NULL && conf_parse_strategy(cx, n, &rule->routing.strategy) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, item, where);
}


static int
conf_parse_when(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *where, sl_rule_conf_t *rule)
{
    char in[CONF_WHERE_MAX + 48];
    const sl_conf_node_t *v;
    const char *s;

    if (!sl__conf_is_map(n)) {
        return sl_conf_errorf(cx, n, "when must be a mapping, not %s", sl__conf_type_name(n));
    }
    if (sl_conf_get(cx, n, "min_prompt_tokens") != NULL) {
        rule->when |= SL_WHEN_MIN_PROMPT_TOKENS;
        if (sl_conf_get_uint(cx, n, "min_prompt_tokens", 0, CONF_TOKENS_MAX,
                             &rule->min_prompt_tokens)
            != 0) {
            return SL_ECONF;
        }
    }
    if (sl_conf_get(cx, n, "max_prompt_tokens") != NULL) {
        rule->when |= SL_WHEN_MAX_PROMPT_TOKENS;
        if (sl_conf_get_uint(cx, n, "max_prompt_tokens", 0, CONF_TOKENS_MAX,
                             &rule->max_prompt_tokens)
            != 0) {
            return SL_ECONF;
        }
        if ((rule->when & SL_WHEN_MIN_PROMPT_TOKENS) != 0
            && rule->max_prompt_tokens < rule->min_prompt_tokens) {
            return sl_conf_errorf(cx, sl_conf_get(cx, n, "max_prompt_tokens"),
                                  "max_prompt_tokens (%" PRIu64
                                  ") is below min_prompt_tokens (%" PRIu64 ")",
                                  rule->max_prompt_tokens, rule->min_prompt_tokens);
        }
    }

    v = sl_conf_get(cx, n, "header");
    if (v != NULL) {
        rule->when |= SL_WHEN_HEADER;
        if (conf_parse_when_headers(cx, v, rule) != 0) {
            return SL_ECONF;
        }
    }
    v = sl_conf_get(cx, n, "key");
    if (v != NULL) {
        rule->when |= SL_WHEN_KEY;
        if (conf_parse_names(cx, v, "key", &rule->keys, &rule->nkeys) != 0) {
            return SL_ECONF;
        }
    }
    v = sl_conf_get(cx, n, "team");
    if (v != NULL) {
        rule->when |= SL_WHEN_TEAM;
        if (conf_parse_names(cx, v, "team", &rule->teams, &rule->nteams) != 0) {
            return SL_ECONF;
        }
    }
    if (sl_conf_get(cx, n, "has_tools") != NULL) {
        rule->when |= SL_WHEN_HAS_TOOLS;
        if (sl_conf_get_bool(cx, n, "has_tools", &rule->has_tools) != 0) {
            return SL_ECONF;
        }
    }
    if (sl_conf_get(cx, n, "has_images") != NULL) {
        rule->when |= SL_WHEN_HAS_IMAGES;
        if (sl_conf_get_bool(cx, n, "has_images", &rule->has_images) != 0) {
            return SL_ECONF;
        }
    }
    v = sl_conf_get(cx, n, "complexity");
    if (v != NULL) {
        rule->when |= SL_WHEN_COMPLEXITY;
        if (sl__conf_scalar(cx, v, "complexity", &s) != 0) {
            return SL_ECONF;
        }
        if (strcmp(s, "simple") == 0) {
            rule->complexity = SL_COMPLEXITY_SIMPLE;
        } else if (strcmp(s, "complex") == 0) {
            rule->complexity = SL_COMPLEXITY_COMPLEX;
        } else {
            return sl_conf_errorf(cx, v, "invalid complexity \"%s\" (use simple or complex)", s);
        }
    }

    snprintf(in, sizeof(in), "when of %s", where);
    if (sl_conf_check_unknown(cx, n, in) != 0) {
        return SL_ECONF;
    }
    if (rule->when == 0) {
        /* an empty when would match everything and hide every later rule */
        return sl_conf_errorf(cx, n, "when of %s needs at least one condition", where);
    }
    return 0;
}


/* header: {NAME: VALUE, ...}: names are matched in any case, values exactly. */
static int
conf_parse_when_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_rule_conf_t *rule)
{
    const sl_conf_node_t *k, *v;
    sl_header_conf_t *h;

    if (!sl__conf_is_map(n) || sl__conf_map_len(n) == 0) {
        return sl_conf_errorf(cx, n, "header must be a mapping of header names to values");
    }
    rule->headers = sl_pcalloc(cx->pool, sl__conf_map_len(n) * sizeof(sl_header_conf_t));
    for (size_t j = 0; j < sl__conf_map_len(n); j++) {
        sl__conf_map_at(cx, n, j, &k, &v);
        h = &rule->headers[rule->nheaders];
        if (sl__conf_scalar(cx, k, "header name", &h->name) != 0) {
            return SL_ECONF;
        }
        if (!sl__conf_is_token(h->name)) {
            return sl_conf_errorf(cx, k, "invalid header name \"%s\"", h->name);
        }
        for (size_t i = 0; i < rule->nheaders; i++) {
            if (strcasecmp(h->name, rule->headers[i].name) == 0) {
                return sl_conf_errorf(cx, k, "duplicate header \"%s\"", h->name);
            }
        }
        if (sl__conf_is_null(v)) {
            h->value = "";
        } else if (sl__conf_scalar(cx, v, "header value", &h->value) != 0) {
            return SL_ECONF;
        }
        rule->nheaders++;
    }
    return 0;
}


/* One name or a non-empty list of names (keys, teams). */
static int
conf_parse_names(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char ***out,
                 size_t *count)
{
    const sl_conf_node_t *item;
    const char **names;
    size_t len = 1;

    if (sl__conf_is_seq(n)) {
        len = sl__conf_seq_len(n);
        if (len == 0) {
            return sl_conf_errorf(cx, n, "%s needs at least one name", what);
        }
    } else if (sl__conf_is_map(n)) {
        return sl_conf_errorf(cx, n, "%s must be a name or a list of names, not a mapping", what);
    }
    names = sl_pcalloc(cx->pool, len * sizeof(const char *));
    for (size_t i = 0; i < len; i++) {
        item = sl__conf_is_seq(n) ? sl__conf_seq_item(cx, n, i) : n;
        names[i] = NULL;
        if (sl__conf_scalar(cx, item, what, &names[i]) != 0) {
            return SL_ECONF;
        }
        if (names[i] == NULL || names[i][0] == '\0') {
            return sl_conf_errorf(cx, item, "%s must not be empty", what);
        }
    }
    *out = names;
    *count = len;
    return 0;
}


const char *
sl_conf_strategy_name(sl_strategy_e s)
{
    if ((size_t) s >= sizeof(conf_strategies) / sizeof(conf_strategies[0])) {
        return "unknown";
    }
    return conf_strategies[s];
}


static bool
conf_valid_model_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > CONF_MODEL_MAX) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if ((unsigned char) *s <= 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}
