/*
 * The response cache's configuration: the cache: section (enabled, ttl,
 * scope, max_size and the optional semantic: part, whose embedding target
 * names a provider, so the section is read after providers:) and a model's
 * own cache: value (false, true, or {ttl, semantic}). The cache itself is
 * core/gateway/cache.c and storage/cache.c.
 */
#include "core/conf/conf_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"

#define CONF_CACHE_TTL_MAX   (365ULL * 86400 * 1000)
#define CONF_CACHE_MIN_SIZE  (64 * CONF_KIB)
#define CONF_CACHE_MAX_MSGS  1000
#define CONF_CACHE_THRESHOLD 0.92f

static int conf_parse_scope(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_cache_scope_e *out);
static int conf_parse_semantic(sl_conf_ctx_t *cx, const sl_conf_node_t *map, sl_cache_conf_t *c);
static int conf_parse_threshold(sl_conf_ctx_t *cx, const sl_conf_node_t *n, float *out);


int
sl__conf_parse_cache(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_cache_conf_t *c = &cx->conf->cache;
    const sl_conf_node_t *n;

    c->enabled = false;
    c->ttl = 3600ULL * 1000;
    c->scope = SL_CACHE_SCOPE_KEY;
    c->max_size = 256 * CONF_MIB;
    c->semantic = false;
    c->threshold = CONF_CACHE_THRESHOLD;
    c->max_messages = 4;
    if (map == NULL) {
        return 0;
    }
    if (sl_conf_get_bool(cx, map, "enabled", &c->enabled) != 0
        || sl_conf_get_duration(cx, map, "ttl", 1000, CONF_CACHE_TTL_MAX, &c->ttl) != 0
        || sl_conf_get_size(cx, map, "max_size", CONF_CACHE_MIN_SIZE, CONF_TIB, &c->max_size)
               != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, map, "scope");
    if (n != NULL && conf_parse_scope(cx, n, &c->scope) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, map, "semantic", &n) != 0) {
        return SL_ECONF;
    }
    if (n != NULL && conf_parse_semantic(cx, n, c) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "cache");
}


static int
conf_parse_scope(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_cache_scope_e *out)
{
    const char *s;

    if (sl__conf_scalar(cx, n, "scope", &s) != 0) {
        return SL_ECONF;
    }
    if (strcmp(s, "key") == 0) {
        *out = SL_CACHE_SCOPE_KEY;
    } else if (strcmp(s, "team") == 0) {
        *out = SL_CACHE_SCOPE_TEAM;
    } else if (strcmp(s, "global") == 0) {
        *out = SL_CACHE_SCOPE_GLOBAL;
    } else {
        return sl_conf_errorf(cx, n, "invalid cache scope \"%s\" (use key, team or global)", s);
    }
    return 0;
}


/* semantic: {embedding: provider/model (REQUIRED), threshold, max_messages} */
static int
conf_parse_semantic(sl_conf_ctx_t *cx, const sl_conf_node_t *map, sl_cache_conf_t *c)
{
    const sl_conf_node_t *n;
    const char *text, *slash;
    uint64_t v = c->max_messages;

    n = sl_conf_get(cx, map, "embedding");
    if (n == NULL) {
        return sl_conf_errorf(cx, map,
                              "cache.semantic needs an embedding target "
                              "(\"provider/model\")");
    }
    if (sl__conf_nonempty(cx, n, "embedding", &text) != 0) {
        return SL_ECONF;
    }
    slash = strchr(text, '/');
    if (slash == NULL || slash == text || slash[1] == '\0') {
        return sl_conf_errorf(cx, n, "embedding target \"%s\" must be \"provider/model\"", text);
    }
    c->embedding.provider = sl_conf_provider(cx->conf, text, (size_t) (slash - text));
    if (c->embedding.provider == NULL) {
        return sl_conf_errorf(cx, n, "unknown provider \"%.*s\" in embedding target \"%s\"",
                              (int) (slash - text), text, text);
    }
    c->embedding.model = slash + 1;
    c->embedding.weight = 1;
    n = sl_conf_get(cx, map, "threshold");
    if (n != NULL && conf_parse_threshold(cx, n, &c->threshold) != 0) {
        return SL_ECONF;
    }
    if (sl_conf_get_uint(cx, map, "max_messages", 1, CONF_CACHE_MAX_MSGS, &v) != 0) {
        return SL_ECONF;
    }
    c->max_messages = (unsigned) v;
    c->semantic = true;
    return sl_conf_check_unknown(cx, map, "cache.semantic");
}


/* A cosine similarity above 0 and at most 1, e.g. 0.92. */
static int
conf_parse_threshold(sl_conf_ctx_t *cx, const sl_conf_node_t *n, float *out)
{
    const char *s;
    char *end;
    double d;

    if (sl__conf_scalar(cx, n, "threshold", &s) != 0) {
        return SL_ECONF;
    }
    d = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(d) || d <= 0.0 || d > 1.0) {
        return sl_conf_errorf(
            cx, n,
            "invalid threshold \"%s\" (a cosine similarity above 0 and at most 1, "
            "e.g. 0.92)",
            s);
    }
    *out = (float) d;
    return 0;
}


int
sl__conf_parse_model_cache(sl_conf_ctx_t *cx, const sl_conf_node_t *n, sl_model_conf_t *m)
{
    bool on;
    bool semantic = true;

    if (sl__conf_is_scalar(n)) {
        if (sl__conf_parse_bool(sl__conf_text(n), &on) != 0) {
            return sl_conf_errorf(cx, n, "cache of model \"%s\" must be true, false or a mapping",
                                  m->name);
        }
        m->cache = on ? SL_MODEL_CACHE_ON : SL_MODEL_CACHE_OFF;
        return 0;
    }
    if (!sl__conf_is_map(n)) {
        return sl_conf_errorf(cx, n,
                              "cache of model \"%s\" must be true, false or a mapping, not %s",
                              m->name, sl__conf_type_name(n));
    }
    m->cache = SL_MODEL_CACHE_ON;
    if (sl_conf_get_duration(cx, n, "ttl", 1000, CONF_CACHE_TTL_MAX, &m->cache_ttl) != 0
        || sl_conf_get_bool(cx, n, "semantic", &semantic) != 0
        || sl_conf_check_unknown(cx, n, "cache") != 0) {
        return SL_ECONF;
    }
    m->cache_no_semantic = !semantic;
    return 0;
}
