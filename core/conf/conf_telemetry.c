/*
 * telemetry: of the configuration: OpenTelemetry traces exported over
 * OTLP/HTTP (core/admin/telemetry.h), from `telemetry.otlp` and from the
 * standard OTEL_* environment variables the OpenTelemetry SDKs read. The
 * file wins key by key; a variable fills what the file leaves out; either
 * an endpoint in the environment or an otlp: mapping in the file turns the
 * export on (OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, and
 * `enabled: false` in the file, turn it off). A bad value, in the file or in
 * a variable, is an error like any other, so `sluice check` finds it; a
 * message never repeats a header value (they carry collector credentials).
 */
#include "core/conf/conf_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/errno.h"
#include "core/base/str.h"
#include "core/http/http.h"

#define TEL_DEFAULT_ENDPOINT "http://localhost:4318"
#define TEL_TRACES_PATH      "/v1/traces"
#define TEL_HEADERS_MAX      64
#define TEL_RESOURCE_MAX     64
#define TEL_QUEUE_MAX        1000000

typedef struct tel_kv {
    const char *name;
    const char *value;
} tel_kv_t;

static int tel_parse_file(sl_conf_ctx_t *cx, const sl_conf_node_t *map, bool *present);
static int tel_parse_env(sl_conf_ctx_t *cx, const sl_conf_node_t *where, bool present);
static int tel_endpoint(sl_conf_ctx_t *cx, const sl_conf_node_t *where);
static int tel_file_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n);
static int tel_env_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *var);
static int tel_add_header(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *name,
                          const char *value, bool from_file);
static int tel_env_kv_list(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *var,
                           tel_kv_t *out, size_t max, size_t *n);
static char *tel_pct_decode(sl_pool_t *pool, const char *p, size_t len, bool *ok);
static int tel_parse_ratio(const char *s, double *out);
static int tel_parse_protocol(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what,
                              const char *s);
static int tel_env_uint(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *var,
                        uint64_t min, uint64_t max, uint64_t *out);
static int tel_env_sampler(sl_conf_ctx_t *cx, const sl_conf_node_t *where);
static const char *tel_env(const char *name);

/* Keys of telemetry.otlp the file set, so the environment does not override them. */
typedef struct tel_set {
    bool enabled, endpoint, protocol, service_name, sampling, parent_based, queue_size, batch_size,
        flush_interval, timeout, ca_file;
} tel_set_t;

static tel_set_t tel_set;


int
sl__conf_parse_telemetry(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    sl_otlp_conf_t *o = &cx->conf->otlp;
    const sl_conf_node_t *otlp = NULL;
    bool present = false;

    memset(&tel_set, 0, sizeof(tel_set));
    memset(o, 0, sizeof(*o));
    o->service_name = "sluice";
    o->sampling = 1.0;
    o->parent_based = true;
    o->queue_size = 2048;
    o->batch_size = 512;
    o->flush_interval = 5000;
    o->timeout = 10000;
    o->protobuf = true; /* the OTLP/HTTP default */
    o->collector.name = "telemetry.otlp";
    o->collector.kind = "otlp";
    o->collector.tls_verify = true;
    o->collector.max_connections = 1; /* one export at a time per worker */
    o->collector.max_idle = 1;
    o->collector.keepalive_timeout = 60000;

    if (map != NULL && sl__conf_section(cx, map, "otlp", &otlp) != 0) {
        return SL_ECONF;
    }
    if (map != NULL && sl_conf_check_unknown(cx, map, "telemetry") != 0) {
        return SL_ECONF;
    }
    if (otlp != NULL && tel_parse_file(cx, otlp, &present) != 0) {
        return SL_ECONF;
    }
    if (tel_parse_env(cx, otlp, present) != 0) {
        return SL_ECONF;
    }
    if (!o->enabled) {
        return 0;
    }
    if (o->batch_size > o->queue_size) {
        return sl_conf_errorf(cx, otlp,
                              "telemetry.otlp batch_size (%u) must not exceed queue_size (%u)",
                              o->batch_size, o->queue_size);
    }
    o->collector.connect_timeout = o->timeout;
    o->collector.first_byte_timeout = o->timeout;
    o->collector.idle_timeout = o->timeout;
    o->collector.total_timeout = o->timeout;
    return 0;
}


/* telemetry.otlp as written; *present: the mapping asks for an export. */
static int
tel_parse_file(sl_conf_ctx_t *cx, const sl_conf_node_t *map, bool *present)
{
    sl_otlp_conf_t *o = &cx->conf->otlp;
    const sl_conf_node_t *n;
    const char *s;
    uint64_t v;

    *present = true;
    n = sl_conf_get(cx, map, "enabled");
    if (n != NULL) {
        if (sl_conf_get_bool(cx, map, "enabled", &o->enabled) != 0) {
            return SL_ECONF;
        }
        tel_set.enabled = true;
        *present = o->enabled;
    }
    n = sl_conf_get(cx, map, "endpoint");
    if (n != NULL) {
        if (sl__conf_nonempty(cx, n, "endpoint", &s) != 0
            || sl__conf_parse_url(cx, n, "endpoint", "headers", s, &o->collector) != 0) {
            return SL_ECONF;
        }
        o->path = sl_psprintf(cx->pool, "%s%s", o->collector.base_path, TEL_TRACES_PATH);
        tel_set.endpoint = true;
    }
    n = sl_conf_get(cx, map, "traces_endpoint");
    if (n != NULL) {
        if (sl__conf_nonempty(cx, n, "traces_endpoint", &s) != 0
            || sl__conf_parse_url(cx, n, "traces_endpoint", "headers", s, &o->collector) != 0) {
            return SL_ECONF;
        }
        o->path = o->collector.base_path[0] != '\0' ? o->collector.base_path : "/";
        tel_set.endpoint = true;
    }
    n = sl_conf_get(cx, map, "protocol");
    if (n != NULL) {
        if (sl__conf_scalar(cx, n, "protocol", &s) != 0
            || tel_parse_protocol(cx, n, "protocol", s) != 0) {
            return SL_ECONF;
        }
        tel_set.protocol = true;
    }
    n = sl_conf_get(cx, map, "headers");
    if (n != NULL && tel_file_headers(cx, n) != 0) {
        return SL_ECONF;
    }
    n = sl_conf_get(cx, map, "service_name");
    if (n != NULL) {
        if (sl__conf_nonempty(cx, n, "service_name", &o->service_name) != 0) {
            return SL_ECONF;
        }
        tel_set.service_name = true;
    }
    n = sl_conf_get(cx, map, "sampling");
    if (n != NULL) {
        if (sl__conf_scalar(cx, n, "sampling", &s) != 0) {
            return SL_ECONF;
        }
        if (tel_parse_ratio(s, &o->sampling) != 0) {
            return sl_conf_errorf(cx, n, "invalid sampling \"%s\" (a share from 0 to 1, e.g. 0.25)",
                                  s);
        }
        tel_set.sampling = true;
    }
    if (sl_conf_get(cx, map, "parent_based") != NULL) {
        if (sl_conf_get_bool(cx, map, "parent_based", &o->parent_based) != 0) {
            return SL_ECONF;
        }
        tel_set.parent_based = true;
    }
    v = o->queue_size;
    if (sl_conf_get(cx, map, "queue_size") != NULL) {
        if (sl_conf_get_uint(cx, map, "queue_size", 1, TEL_QUEUE_MAX, &v) != 0) {
            return SL_ECONF;
        }
        o->queue_size = (unsigned) v;
        tel_set.queue_size = true;
    }
    v = o->batch_size;
    if (sl_conf_get(cx, map, "batch_size") != NULL) {
        if (sl_conf_get_uint(cx, map, "batch_size", 1, TEL_QUEUE_MAX, &v) != 0) {
            return SL_ECONF;
        }
        o->batch_size = (unsigned) v;
        tel_set.batch_size = true;
    }
    if (sl_conf_get(cx, map, "flush_interval") != NULL) {
        if (sl_conf_get_duration(cx, map, "flush_interval", 1, CONF_MS_MAX, &o->flush_interval)
            != 0) {
            return SL_ECONF;
        }
        tel_set.flush_interval = true;
    }
    if (sl_conf_get(cx, map, "timeout") != NULL) {
        if (sl_conf_get_duration(cx, map, "timeout", 1, CONF_MS_MAX, &o->timeout) != 0) {
            return SL_ECONF;
        }
        tel_set.timeout = true;
    }
    n = sl_conf_get(cx, map, "ca_file");
    if (n != NULL) {
        if (sl__conf_nonempty(cx, n, "ca_file", &o->collector.ca_file) != 0) {
            return SL_ECONF;
        }
        tel_set.ca_file = true;
    }
    return sl_conf_check_unknown(cx, map, "telemetry.otlp");
}


/*
 * The OTEL_* variables, for what the file did not set. where is the
 * otlp: mapping (for the position of messages about variables) or NULL.
 */
static int
tel_parse_env(sl_conf_ctx_t *cx, const sl_conf_node_t *where, bool present)
{
    sl_otlp_conf_t *o = &cx->conf->otlp;
    const char *s;
    uint64_t v;
    bool on = present;

    s = tel_env("OTEL_SDK_DISABLED");
    if (s != NULL && strcasecmp(s, "true") == 0 && !tel_set.enabled) {
        return 0; /* the SDK switch: nothing is exported */
    }
    s = tel_env("OTEL_TRACES_EXPORTER");
    if (s != NULL) {
        if (strcmp(s, "none") == 0) {
            if (!tel_set.enabled) {
                return 0;
            }
        } else if (strcmp(s, "otlp") == 0) {
            on = on || !tel_set.enabled;
        } else {
            return sl_conf_errorf(cx, where,
                                  "environment variable OTEL_TRACES_EXPORTER: \"%s\" is not "
                                  "supported (sluice exports otlp, or none)",
                                  s);
        }
    }
    if (!tel_set.enabled
        && (tel_env("OTEL_EXPORTER_OTLP_ENDPOINT") != NULL
            || tel_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != NULL)) {
        on = true;
    }
    if (!on) {
        return 0;
    }
    o->enabled = true;
    if (tel_endpoint(cx, where) != 0) {
        return SL_ECONF;
    }
    if (!tel_set.protocol) {
        const char *var = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";

        s = tel_env(var);
        if (s == NULL) {
            var = "OTEL_EXPORTER_OTLP_PROTOCOL";
            s = tel_env(var);
        }
        if (s != NULL && tel_parse_protocol(cx, where, var, s) != 0) {
            return SL_ECONF;
        }
    }
    /* file headers are in already; the signal's own variable wins over the general one */
    if (tel_env_headers(cx, where, "OTEL_EXPORTER_OTLP_TRACES_HEADERS") != 0
        || tel_env_headers(cx, where, "OTEL_EXPORTER_OTLP_HEADERS") != 0) {
        return SL_ECONF;
    }
    if (!tel_set.timeout) {
        if (tel_env_uint(cx, where, "OTEL_EXPORTER_OTLP_TIMEOUT", 1, CONF_MS_MAX, &o->timeout) != 0
            || tel_env_uint(cx, where, "OTEL_BSP_EXPORT_TIMEOUT", 1, CONF_MS_MAX, &o->timeout) != 0
            || tel_env_uint(cx, where, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 1, CONF_MS_MAX,
                            &o->timeout)
                   != 0) {
            return SL_ECONF;
        }
    }
    if (!tel_set.flush_interval
        && tel_env_uint(cx, where, "OTEL_BSP_SCHEDULE_DELAY", 1, CONF_MS_MAX, &o->flush_interval)
               != 0) {
        return SL_ECONF;
    }
    if (!tel_set.queue_size) {
        v = o->queue_size;
        if (tel_env_uint(cx, where, "OTEL_BSP_MAX_QUEUE_SIZE", 1, TEL_QUEUE_MAX, &v) != 0) {
            return SL_ECONF;
        }
        o->queue_size = (unsigned) v;
    }
    if (!tel_set.batch_size) {
        v = o->batch_size;
        if (tel_env_uint(cx, where, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, TEL_QUEUE_MAX, &v) != 0) {
            return SL_ECONF;
        }
        o->batch_size = (unsigned) v;
    }
    if (!tel_set.ca_file) {
        s = tel_env("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE");
        if (s == NULL) {
            s = tel_env("OTEL_EXPORTER_OTLP_CERTIFICATE");
        }
        if (s != NULL) {
            o->collector.ca_file = sl_pstrdup(cx->pool, s);
        }
    }
    if (tel_env_sampler(cx, where) != 0) {
        return SL_ECONF;
    }
    {
        tel_kv_t kv[TEL_RESOURCE_MAX];
        size_t n = 0;

        if (tel_env_kv_list(cx, where, "OTEL_RESOURCE_ATTRIBUTES", kv, TEL_RESOURCE_MAX, &n) != 0) {
            return SL_ECONF;
        }
        o->resource = sl_palloc(cx->pool, sizeof(*o->resource) * (n > 0 ? n : 1));
        for (size_t i = 0; i < n; i++) {
            if (strcmp(kv[i].name, "service.name") == 0) {
                if (!tel_set.service_name && tel_env("OTEL_SERVICE_NAME") == NULL) {
                    o->service_name = kv[i].value;
                }
                continue;
            }
            o->resource[o->nresource].name = kv[i].name;
            o->resource[o->nresource].value = kv[i].value;
            o->nresource++;
        }
    }
    s = tel_env("OTEL_SERVICE_NAME");
    if (s != NULL && !tel_set.service_name) {
        o->service_name = sl_pstrdup(cx->pool, s);
    }
    return 0;
}


/* The traces URL: the file's, else the signal's variable as it is, else the general one. */
static int
tel_endpoint(sl_conf_ctx_t *cx, const sl_conf_node_t *where)
{
    sl_otlp_conf_t *o = &cx->conf->otlp;
    const char *s;

    if (!tel_set.endpoint) {
        s = tel_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        if (s != NULL) {
            if (sl__conf_parse_url(cx, where,
                                   "environment variable OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:",
                                   "OTEL_EXPORTER_OTLP_HEADERS", s, &o->collector)
                != 0) {
                return SL_ECONF;
            }
            o->path = o->collector.base_path[0] != '\0' ? o->collector.base_path : "/";
        } else {
            s = tel_env("OTEL_EXPORTER_OTLP_ENDPOINT");
            if (s == NULL) {
                s = TEL_DEFAULT_ENDPOINT;
            }
            if (sl__conf_parse_url(cx, where, "environment variable OTEL_EXPORTER_OTLP_ENDPOINT:",
                                   "OTEL_EXPORTER_OTLP_HEADERS", s, &o->collector)
                != 0) {
                return SL_ECONF;
            }
            o->path = sl_psprintf(cx->pool, "%s%s", o->collector.base_path, TEL_TRACES_PATH);
        }
    }
    o->endpoint = sl_psprintf(cx->pool, "%s://%s%s", o->collector.tls ? "https" : "http",
                              o->collector.host_header, o->path);
    return 0;
}


static int
tel_parse_protocol(sl_conf_ctx_t *cx, const sl_conf_node_t *n, const char *what, const char *s)
{
    if (strcmp(s, "http/protobuf") == 0) {
        cx->conf->otlp.protobuf = true;
    } else if (strcmp(s, "http/json") == 0) {
        cx->conf->otlp.protobuf = false;
    } else if (strcmp(what, "protocol") == 0) {
        return sl_conf_errorf(cx, n, "invalid protocol \"%s\" (use http/protobuf or http/json)", s);
    } else {
        return sl_conf_errorf(cx, n,
                              "environment variable %s: \"%s\" is not supported (use "
                              "http/protobuf or http/json)",
                              what, s);
    }
    return 0;
}


/* headers: {Name: SECRET_REF, ...}; the values are secrets. */
static int
tel_file_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *n)
{
    size_t count = sl_conf_map_size(n);

    if (!sl_conf_node_is_map(n)) {
        return sl_conf_errorf(cx, n,
                              "headers must be a mapping of header names to secret "
                              "references");
    }
    for (size_t i = 0; i < count; i++) {
        const sl_conf_node_t *k, *v;
        const char *name;
        sl_secret_t sec;

        if (sl_conf_map_pair(cx, n, i, &k, &v) != 0) {
            return SL_ECONF;
        }
        name = sl_conf_node_str(k, NULL);
        if (name == NULL || !sl__conf_is_token(name)) {
            return sl_conf_errorf(cx, k, "invalid header name in telemetry.otlp headers");
        }
        if (v == NULL) {
            return sl_conf_errorf(cx, k,
                                  "header \"%s\" needs a secret reference (env:NAME or "
                                  "file:PATH)",
                                  name);
        }
        memset(&sec, 0, sizeof(sec));
        if (sl__conf_secret(cx, v, "telemetry.otlp header", &sec) != 0) {
            return SL_ECONF;
        }
        if (sec.vault) {
            return sl_conf_errorf(cx, v,
                                  "header \"%s\": vault: references are not supported here "
                                  "(use env: or file:)",
                                  name);
        }
        if (tel_add_header(cx, v, name, sec.value != NULL ? sec.value : "", true) != 0) {
            return SL_ECONF;
        }
    }
    return 0;
}


/* OTEL_EXPORTER_OTLP_[TRACES_]HEADERS: key=value,... (values percent-encoded). */
static int
tel_env_headers(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *var)
{
    tel_kv_t kv[TEL_HEADERS_MAX];
    size_t n = 0;

    if (tel_env_kv_list(cx, where, var, kv, TEL_HEADERS_MAX, &n) != 0) {
        return SL_ECONF;
    }
    for (size_t i = 0; i < n; i++) {
        if (!sl__conf_is_token(kv[i].name)) {
            return sl_conf_errorf(cx, where, "environment variable %s: invalid header name", var);
        }
        if (tel_add_header(cx, where, kv[i].name, kv[i].value, false) != 0) {
            return SL_ECONF;
        }
    }
    return 0;
}


/*
 * Adds a header unless one of that name is there already (the file's, or
 * a more specific variable's). Values may be secrets: never in a message.
 */
static int
tel_add_header(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *name, const char *value,
               bool from_file)
{
    sl_provider_conf_t *c = &cx->conf->otlp.collector;
    sl_str_t nm = { name, strlen(name) };
    sl_header_conf_t *h;

    for (size_t i = 0; i < c->nheaders; i++) {
        if (strcasecmp(c->headers[i].name, name) == 0) {
            if (from_file) {
                return sl_conf_errorf(cx, where, "header \"%s\" is given twice", name);
            }
            return 0;
        }
    }
    if (sl_http_is_hop_by_hop(nm) || strcasecmp(name, "host") == 0
        || strcasecmp(name, "content-length") == 0 || strcasecmp(name, "content-type") == 0) {
        return sl_conf_errorf(cx, where, "header \"%s\" is set by sluice and may not be configured",
                              name);
    }
    if (!sl_http_is_field_value((sl_str_t){ value, strlen(value) })) {
        return sl_conf_errorf(
            cx, where, "the value of header \"%s\" has control characters (not shown)", name);
    }
    if (c->nheaders >= TEL_HEADERS_MAX) {
        return sl_conf_errorf(cx, where, "too many telemetry.otlp headers (at most %d)",
                              TEL_HEADERS_MAX);
    }
    h = sl_palloc(cx->pool, sizeof(*h) * (c->nheaders + 1));
    if (c->nheaders > 0) {
        memcpy(h, c->headers, sizeof(*h) * c->nheaders);
    }
    h[c->nheaders].name = sl_pstrdup(cx->pool, name);
    h[c->nheaders].value = value;
    c->headers = h;
    c->nheaders++;
    return 0;
}


/*
 * The W3C-baggage-like list the OTEL_* variables use: key=value pairs
 * separated by commas, spaces around them trimmed, values percent-decoded.
 * Values are copied into the generation pool and may be secrets.
 */
static int
tel_env_kv_list(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *var, tel_kv_t *out,
                size_t max, size_t *n)
{
    const char *s = tel_env(var);
    const char *p, *end, *eq;

    *n = 0;
    if (s == NULL) {
        return 0;
    }
    for (p = s; *p != '\0'; p = *end == ',' ? end + 1 : end) {
        const char *ks, *ke, *vs, *ve;
        bool ok = true;

        end = p + strcspn(p, ",");
        eq = memchr(p, '=', (size_t) (end - p));
        for (ks = p; ks < end && (*ks == ' ' || *ks == '\t'); ks++) {
        }
        if (ks == end) {
            continue; /* an empty item, e.g. a trailing comma */
        }
        if (eq == NULL) {
            return sl_conf_errorf(cx, where, "environment variable %s: an item is not key=value",
                                  var);
        }
        for (ke = eq; ke > ks && (ke[-1] == ' ' || ke[-1] == '\t'); ke--) {
        }
        for (vs = eq + 1; vs < end && (*vs == ' ' || *vs == '\t'); vs++) {
        }
        for (ve = end; ve > vs && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) {
        }
        if (ke == ks) {
            return sl_conf_errorf(cx, where, "environment variable %s: an item has no key", var);
        }
        if (*n >= max) {
            return sl_conf_errorf(cx, where, "environment variable %s: more than %zu items", var,
                                  max);
        }
        out[*n].name = tel_pct_decode(cx->pool, ks, (size_t) (ke - ks), &ok);
        out[*n].value = tel_pct_decode(cx->pool, vs, (size_t) (ve - vs), &ok);
        if (!ok) {
            return sl_conf_errorf(cx, where, "environment variable %s: bad percent-encoding", var);
        }
        (*n)++;
    }
    return 0;
}


/* Percent-decodes p[0..len) into pool; *ok false on a bad escape or a decoded NUL. */
static char *
tel_pct_decode(sl_pool_t *pool, const char *p, size_t len, bool *ok)
{
    char *out = sl_palloc(pool, len + 1);
    size_t k = 0;

    for (size_t i = 0; i < len; i++) {
        char hex[3];

        if (p[i] != '%') {
            out[k++] = p[i];
            continue;
        }
        if (i + 2 >= len || !isxdigit((unsigned char) p[i + 1])
            || !isxdigit((unsigned char) p[i + 2])) {
            *ok = false;
            break;
        }
        hex[0] = p[i + 1];
        hex[1] = p[i + 2];
        hex[2] = '\0';
        out[k] = (char) strtol(hex, NULL, 16);
        if (out[k++] == '\0') {
            *ok = false; /* a NUL would cut the value short */
            break;
        }
        i += 2;
    }
    out[k] = '\0';
    return out;
}


/* A share 0..1 ("0.25", "1", "1.0", "0"). Returns 0 or SL_ECONF. */
static int
tel_parse_ratio(const char *s, double *out)
{
    char *end;
    double v;

    if (s[0] == '\0' || strspn(s, "0123456789.") != strlen(s)) {
        return SL_ECONF;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v > 1) {
        return SL_ECONF;
    }
    *out = v;
    return 0;
}


/* OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, unless the file chose. */
static int
tel_env_sampler(sl_conf_ctx_t *cx, const sl_conf_node_t *where)
{
    sl_otlp_conf_t *o = &cx->conf->otlp;
    const char *s = tel_env("OTEL_TRACES_SAMPLER");
    const char *arg = tel_env("OTEL_TRACES_SAMPLER_ARG");
    double ratio = 1.0;
    bool parent;

    if (s == NULL || (tel_set.sampling && tel_set.parent_based)) {
        return 0;
    }
    if (strcmp(s, "always_on") == 0 || strcmp(s, "parentbased_always_on") == 0) {
        ratio = 1.0;
    } else if (strcmp(s, "always_off") == 0 || strcmp(s, "parentbased_always_off") == 0) {
        ratio = 0.0;
    } else if (strcmp(s, "traceidratio") == 0 || strcmp(s, "parentbased_traceidratio") == 0) {
        if (arg != NULL && tel_parse_ratio(arg, &ratio) != 0) {
            return sl_conf_errorf(cx, where,
                                  "environment variable OTEL_TRACES_SAMPLER_ARG: \"%s\" is not "
                                  "a share from 0 to 1",
                                  arg);
        }
    } else {
        return sl_conf_errorf(cx, where,
                              "environment variable OTEL_TRACES_SAMPLER: \"%s\" is not supported "
                              "(use always_on, always_off, traceidratio or their parentbased_ "
                              "forms)",
                              s);
    }
    parent = strncmp(s, "parentbased_", 12) == 0;
    if (!tel_set.sampling) {
        o->sampling = ratio;
    }
    if (!tel_set.parent_based) {
        o->parent_based = parent;
    }
    return 0;
}


/* An integer variable (milliseconds or a count) into *out when set. */
static int
tel_env_uint(sl_conf_ctx_t *cx, const sl_conf_node_t *where, const char *var, uint64_t min,
             uint64_t max, uint64_t *out)
{
    const char *s = tel_env(var);
    uint64_t v;

    if (s == NULL) {
        return 0;
    }
    if (sl__conf_parse_uint(s, &v) != 0 || v < min || v > max) {
        return sl_conf_errorf(cx, where,
                              "environment variable %s: \"%s\" is not a whole number from %llu to "
                              "%llu",
                              var, s, (unsigned long long) min, (unsigned long long) max);
    }
    *out = v;
    return 0;
}


/* A variable's value; unset and empty are the same (as the OpenTelemetry SDKs read them). */
static const char *
tel_env(const char *name)
{
    const char *s = getenv(name);

    return s != NULL && s[0] != '\0' ? s : NULL;
}
