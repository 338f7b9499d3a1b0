/*
 * The guardrails: section (core/gateway/guard.h) and a model's guard: key.
 *
 *   guardrails:
 *     policies:
 *       NAME:                       # 1..64 of A-Z a-z 0-9 _ . -, not "none"
 *         - {detect: [email, phone, card, iban, ip, secret], action: redact,
 *            restore: true, on: input, name: pii}
 *         - {deny: ["project falcon", "re:internal[- ]only"], action: block}
 *         - {limits: {max_prompt_tokens: N, max_output_tokens: N,
 *                     max_messages: N, max_images: N, max_body: SIZE}}
 *         - {models: ["gpt-4o*", "claude-*"]}
 *     apply: NAME                   # the global policy; "none" or absent: none
 *
 * Each check is one of detect, deny, limits or models. action defaults to
 * redact for detect and block for the others (limits and models take block
 * or log only); restore only goes with redact; on (input, output, both or
 * a list) only with detect (default input) and deny (default both).
 * Patterns are compiled here, so a bad regular expression is a
 * file:line:col error at load.
 */
#include "core/conf/conf_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/gateway/guard.h"

#define CONF_GUARD_MAX 100000000000ULL /* a limit's largest value */

static int conf_guard_policy(sl_conf_ctx_t *cx, const sl_conf_node_t *key,
                             const sl_conf_node_t *list, sl_guard_policy_t *p);
static int conf_guard_check(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_guard_policy_t *p,
                            sl_guard_check_t *c);
static int conf_guard_list(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                           const char ***out, size_t *count);
static int conf_guard_detect(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_guard_check_t *c);
static int conf_guard_deny(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_guard_check_t *c);
static int conf_guard_limits(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_guard_check_t *c);
static int conf_guard_action(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_guard_check_t *c);
static int conf_guard_on(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_guard_check_t *c);
static int conf_guard_name(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                           const char **out);

static const char *const conf_guard_kinds[] = { "detect", "deny", "limits", "models" };


int
sl__conf_parse_guardrails(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_guard_conf_t *gc;
    const sl_conf_node_t *policies, *n, *k, *v;
    size_t count;

    if (map == NULL) {
        return 0;
    }
    gc = sl_pcalloc(cx->pool, sizeof(*gc));
    if (sl__conf_section(cx, map, "policies", &policies) != 0) {
        return SL_ECONF;
    }
    count = policies != NULL ? sl__conf_map_len(policies) : 0;
    gc->policies = sl_pcalloc(cx->pool, (count > 0 ? count : 1) * sizeof(sl_guard_policy_t));
    for (size_t i = 0; i < count; i++) {
        sl__conf_map_at(cx, policies, i, &k, &v);
        if (conf_guard_policy(cx, k, v, &gc->policies[i]) != 0) {
            return SL_ECONF;
        }
        gc->npolicies = i + 1;
    }
    cx->conf->guard = gc;
    n = sl_conf_get(cx, map, "apply");
    if (n != NULL && sl__conf_guard_ref(cx, n, &gc->apply) != 0) {
        return SL_ECONF;
    }
    if (gc->apply == &sl_guard_policy_none) {
        gc->apply = NULL;
    }
    return sl_conf_check_unknown(cx, map, "guardrails");
}


int
sl__conf_guard_ref(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const sl_guard_policy_t **out)
{
    const char *name;

    if (sl__conf_nonempty(cx, n, "a guard policy", &name) != 0) {
        return SL_ECONF;
    }
    *out = sl_guard_find(cx->conf->guard, name);
    if (*out == NULL) {
        return sl_conf_errorf(
            cx, n, "unknown guardrail policy \"%s\" (guardrails.policies has %s)", name,
            cx->conf->guard != NULL && cx->conf->guard->npolicies > 0 ? "others" : "none");
    }
    return 0;
}


static int
conf_guard_policy(sl_conf_ctx_t *cx, const sl_conf_node_t *key, const sl_conf_node_t *list,
                  sl_guard_policy_t *p)
{
    size_t len;

    if (conf_guard_name(cx, key, "policy name", &p->name) != 0) {
        return SL_ECONF;
    }
    if (strcmp(p->name, SL_GUARD_NONE) == 0) {
        return sl_conf_errorf(cx, key, "\"none\" is reserved: it means no policy");
    }
    if (sl__conf_is_null(list)) {
        len = 0;
    } else if (!sl__conf_is_seq(list)) {
        return sl_conf_errorf(cx, list, "policy \"%s\" must be a list of checks, not %s", p->name,
                              sl__conf_type_name(list));
    } else {
        len = sl__conf_seq_len(list);
    }
    p->checks = sl_pcalloc(cx->pool, (len > 0 ? len : 1) * sizeof(sl_guard_check_t));
    for (size_t i = 0; i < len; i++) {
        if (conf_guard_check(cx, sl__conf_seq_item(cx, list, i), p, &p->checks[i]) != 0) {
            return SL_ECONF;
        }
        p->nchecks = i + 1;
    }
    sl_guard_policy_finish(cx->pool, p);
    return 0;
}


static int
conf_guard_check(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_guard_policy_t *p,
                 sl_guard_check_t *c)
{
    const sl_conf_node_t *kinds[4], *n;
    char where[SL_GUARD_NAME_MAX + 48];
    size_t found = 0;
    int kind = -1;

    if (!sl__conf_is_map(item)) {
        return sl_conf_errorf(cx, item, "a check of policy \"%s\" must be a mapping, not %s",
                              p->name, sl__conf_type_name(item));
    }
    for (int i = 0; i < 4; i++) {
        kinds[i] = sl_conf_get(cx, item, conf_guard_kinds[i]);
        if (kinds[i] != NULL) {
            found++;
            kind = i;
        }
    }
    if (found != 1) {
        return sl_conf_errorf(cx, item,
                              "a check of policy \"%s\" needs exactly one of detect, deny, limits "
                              "or models",
                              p->name);
    }
    c->kind = (sl_guard_kind_e) kind;
    n = kinds[kind];
    c->action = c->kind == SL_GUARD_DETECT ? SL_GUARD_REDACT : SL_GUARD_BLOCK;
    c->on = c->kind == SL_GUARD_DETECT ? SL_GUARD_INPUT
            : c->kind == SL_GUARD_DENY ? SL_GUARD_INPUT | SL_GUARD_OUTPUT
                                       : SL_GUARD_INPUT;
    switch (c->kind) {
    case SL_GUARD_DETECT:
        if (conf_guard_detect(cx, n, c) != 0) {
            return SL_ECONF;
        }
        break;
    case SL_GUARD_DENY:
        if (conf_guard_deny(cx, n, c) != 0) {
            return SL_ECONF;
        }
        break;
    case SL_GUARD_LIMITS:
        if (conf_guard_limits(cx, n, c) != 0) {
            return SL_ECONF;
        }
        break;
    case SL_GUARD_MODELS:
        if (conf_guard_list(cx, n, "models", &c->models, &c->nmodels) != 0) {
            return SL_ECONF;
        }
        break;
    }
    if (conf_guard_action(cx, item, c) != 0 || conf_guard_on(cx, item, c) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, item, "name");
    if (n != NULL && conf_guard_name(cx, n, "rule name", &c->name) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, item, "restore");
    if (n != NULL) {
        if (sl_conf_get_bool(cx, item, "restore", &c->restore) != 0) {
            return SL_ECONF;
        }
        if (c->restore && (c->action != SL_GUARD_REDACT || !(c->on & SL_GUARD_INPUT))) {
            return sl_conf_errorf(cx, n, "restore goes with action redact on the input");
        }
    }
    snprintf(where, sizeof(where), "a check of policy \"%s\"", p->name);
    return sl_conf_check_unknown(cx, item, where);
}


/* A non-empty list of non-empty strings, copied into the generation pool. */
static int
conf_guard_list(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char ***out,
                size_t *count)
{
    const char **v;
    size_t len;

    if (!sl__conf_is_seq(n) || sl__conf_seq_len(n) == 0) {
        return sl_conf_errorf(cx, n, "%s must be a non-empty list", what);
    }
    len = sl__conf_seq_len(n);
    v = sl_pcalloc(cx->pool, len * sizeof(*v));
    for (size_t i = 0; i < len; i++) {
        if (sl__conf_nonempty(cx, sl__conf_seq_item(cx, n, i), what, &v[i]) != 0) {
            return SL_ECONF;
        }
    }
    *out = v;
    *count = len;
    return 0;
}


static int
conf_guard_detect(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_guard_check_t *c)
{
    const char **names;
    size_t count;
    int det;

    if (conf_guard_list(cx, n, "detect", &names, &count) != 0) {
        return SL_ECONF;
    }
    for (size_t i = 0; i < count; i++) {
        det = sl_guard_det_find(names[i]);
        if (det < 0) {
            return sl_conf_errorf(cx, sl__conf_seq_item(cx, n, i),
                                  "unknown detector \"%s\" (email, phone, card, iban, ip, secret)",
                                  names[i]);
        }
        c->detect |= 1u << det;
    }
    return 0;
}


static int
conf_guard_deny(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_guard_check_t *c)
{
    const char **texts;
    char err[256];
    size_t count;

    if (conf_guard_list(cx, n, "deny", &texts, &count) != 0) {
        return SL_ECONF;
    }
    c->deny = sl_pcalloc(cx->pool, count * sizeof(*c->deny));
    for (size_t i = 0; i < count; i++) {
        if (sl_guard_pattern_compile(cx->pool, texts[i], &c->deny[i], err, sizeof(err)) != 0) {
            return sl_conf_errorf(cx, sl__conf_seq_item(cx, n, i), "deny pattern \"%s\": %s",
                                  texts[i], err);
        }
        c->ndeny = i + 1;
    }
    return 0;
}


static int
conf_guard_limits(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_guard_check_t *c)
{
    sl_guard_limits_t *l = &c->limits;

    if (!sl__conf_is_map(n) || sl__conf_map_len(n) == 0) {
        return sl_conf_errorf(cx, n, "limits must be a mapping with at least one limit");
    }
    if (sl_conf_get_uint(cx, n, "max_prompt_tokens", 1, CONF_GUARD_MAX, &l->max_prompt_tokens) != 0
        || sl_conf_get_uint(cx, n, "max_output_tokens", 1, CONF_GUARD_MAX, &l->max_output_tokens)
               != 0
        || sl_conf_get_uint(cx, n, "max_messages", 1, CONF_GUARD_MAX, &l->max_messages) != 0
        || sl_conf_get_uint(cx, n, "max_images", 1, CONF_GUARD_MAX, &l->max_images) != 0
        || sl_conf_get_size(cx, n, "max_body", 1, (size_t) CONF_TIB, &l->max_body) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, n, "limits");
}


static int
conf_guard_action(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_guard_check_t *c)
{
    const sl_conf_node_t *n = sl_conf_get(cx, item, "action");
    const char *s;

    if (n == NULL) {
        return 0;
    }
    if (sl__conf_scalar(cx, n, "action", &s) != 0) {
        return SL_ECONF;
    }
    if (strcmp(s, "block") == 0) {
        c->action = SL_GUARD_BLOCK;
    } else if (strcmp(s, "log") == 0) {
        c->action = SL_GUARD_LOG;
    } else if (strcmp(s, "redact") == 0
               && (c->kind == SL_GUARD_DETECT || c->kind == SL_GUARD_DENY)) {
        c->action = SL_GUARD_REDACT;
    } else {
        return sl_conf_errorf(cx, n, "action must be %s, not \"%s\"",
                              c->kind == SL_GUARD_DETECT || c->kind == SL_GUARD_DENY
                                  ? "block, redact or log"
                                  : "block or log",
                              s);
    }
    return 0;
}


/* on: input | output | both | [input, output]. */
static int
conf_guard_on(sl_conf_ctx_t *cx, const sl_conf_node_t *item, sl_guard_check_t *c)
{
    const sl_conf_node_t *n = sl_conf_get(cx, item, "on");
    const char **v;
    size_t count = 1;
    unsigned on = 0;

    if (n == NULL) {
        return 0;
    }
    if (c->kind != SL_GUARD_DETECT && c->kind != SL_GUARD_DENY) {
        return sl_conf_errorf(cx, n, "on: goes with detect and deny checks only");
    }
    if (sl__conf_is_seq(n)) {
        if (conf_guard_list(cx, n, "on", &v, &count) != 0) {
            return SL_ECONF;
        }
    } else {
        v = sl_palloc(cx->pool, sizeof(*v));
        if (sl__conf_nonempty(cx, n, "on", &v[0]) != 0) {
            return SL_ECONF;
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(v[i], "input") == 0) {
            on |= SL_GUARD_INPUT;
        } else if (strcmp(v[i], "output") == 0) {
            on |= SL_GUARD_OUTPUT;
        } else if (strcmp(v[i], "both") == 0) {
            on |= SL_GUARD_INPUT | SL_GUARD_OUTPUT;
        } else {
            return sl_conf_errorf(cx, n, "on must be input, output or both, not \"%s\"", v[i]);
        }
    }
    c->on = on;
    return 0;
}


/* A policy or rule name: 1..64 of A-Z a-z 0-9 _ . - (also the ledger's separators stay out). */
static int
conf_guard_name(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char **out)
{
    if (sl__conf_nonempty(cx, n, what, out) != 0) {
        return SL_ECONF;
    }
    if (!sl__conf_valid_name(*out) || strlen(*out) > SL_GUARD_NAME_MAX) {
        return sl_conf_errorf(cx, n, "invalid %s \"%s\" (1 to 64 of A-Z a-z 0-9 _ . -)", what,
                              *out);
    }
    return 0;
}
