/*
 * sluice pricing show|check: what the pricing table of a configuration
 * says, without a running gateway or its storage. `show MODEL` prints the
 * line that prices MODEL (a model alias: each of its targets; PROVIDER/MODEL
 * for a configured provider; KIND/MODEL; or a bare model name: every line
 * of that model) with the file and line it comes from and every field.
 * `check` lists the configured targets the table has no price for and
 * exits 1 when there is one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "core/base/errno.h"
#include "core/gateway/pricing.h"

#define PRICING_PROG "sluice pricing"

typedef struct pricing_opts {
    const char *conf_file;
    const char *model; /* show */
    bool json;
} pricing_opts_t;

/* One answer of `show`: the price of a target (target set) or a line of the table. */
typedef struct pricing_hit {
    const char *query;         /* what was looked up */
    const sl_target_t *target; /* a configured target, or NULL */
    const sl_price_t *price;   /* NULL: none */
} pricing_hit_t;

typedef struct pricing_out {
    json_t *array; /* --json */
    size_t found;
    size_t missing;
} pricing_out_t;

static void pricing_help(FILE *f);
static int pricing_load(const char *conf_file, sl_conf_t **conf);
static int pricing_show(const sl_conf_t *conf, const pricing_opts_t *o);
static int pricing_check(const sl_conf_t *conf, const pricing_opts_t *o);
static void pricing_target(const sl_conf_t *conf, pricing_out_t *out, const char *query,
                           const sl_target_t *t);
static void pricing_emit(pricing_out_t *out, const pricing_hit_t *h);
static void pricing_print(const pricing_hit_t *h);
static json_t *pricing_json(const pricing_hit_t *h);
static json_t *pricing_rates_json(const sl_price_rates_t *r);
static char *pricing_usd(uint64_t micro, char *buf, size_t size);
static char *pricing_date(uint32_t ymd, char *buf, size_t size);
static void pricing_notes(const sl_conf_t *conf);
static bool pricing_free_kind(const sl_target_t *t);


static void
pricing_help(FILE *f)
{
    fprintf(f,
            "usage: sluice pricing show MODEL [-c FILE] [--json]\n"
            "       sluice pricing check [-c FILE] [--json]\n"
            "\n"
            "show: the line of the pricing table that prices MODEL, with its file and line\n"
            "and every field (USD per 1M tokens). MODEL is a model alias of the configuration\n"
            "(each of its targets), PROVIDER/MODEL for a configured provider, KIND/MODEL\n"
            "(openai/gpt-4o-mini), or a bare model name (every line of that model).\n"
            "Exits 1 when nothing prices it.\n"
            "\n"
            "check: every target of every model alias (rules included) and whether the\n"
            "table prices it; exits 1 when some target has no price (kind echo, built in,\n"
            "costs nothing and needs none). Also reports entries of LiteLLM tables that\n"
            "were skipped.\n"
            "\n"
            "  -c FILE   configuration file (default %s)\n"
            "  --json    an array of {query, provider, model, key, file, line, source,\n"
            "            checked, input, output, cached_input, cache_write, cache_write_1h,\n"
            "            above, above_rates, max_output}; key is null when unpriced\n",
            SL_CLI_DEFAULT_CONF);
}


int
sl_cmd_pricing(int argc, char **argv)
{
    pricing_opts_t o;
    const char *cmd = NULL, *v;
    sl_conf_t *conf;
    int rc;

    memset(&o, 0, sizeof(o));
    o.conf_file = SL_CLI_DEFAULT_CONF;
    for (int i = 1; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            pricing_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(PRICING_PROG, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(PRICING_PROG, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            o.conf_file = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            o.json = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "%s: unknown option \"%s\"\n", PRICING_PROG, argv[i]);
            pricing_help(stderr);
            return SL_CLI_USAGE;
        } else if (cmd == NULL) {
            cmd = argv[i];
        } else if (strcmp(cmd, "show") == 0 && o.model == NULL) {
            o.model = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", PRICING_PROG, argv[i]);
            pricing_help(stderr);
            return SL_CLI_USAGE;
        }
    }
    if (cmd == NULL || (strcmp(cmd, "show") != 0 && strcmp(cmd, "check") != 0)) {
        fprintf(stderr, "%s: %s\n", PRICING_PROG,
                cmd == NULL ? "show or check?" : "unknown command (show or check)");
        pricing_help(stderr);
        return SL_CLI_USAGE;
    }
    if (strcmp(cmd, "show") == 0 && (o.model == NULL || o.model[0] == '\0')) {
        fprintf(stderr, "%s: show needs a MODEL\n", PRICING_PROG);
        return SL_CLI_USAGE;
    }
    if (pricing_load(o.conf_file, &conf) != 0) {
        return SL_CLI_FAIL;
    }
    rc = strcmp(cmd, "show") == 0 ? pricing_show(conf, &o) : pricing_check(conf, &o);
    sl_conf_destroy(conf);
    return rc;
}


static int
pricing_load(const char *conf_file, sl_conf_t **conf)
{
    char err[1024];

    /* the providers' keys are not needed to read prices */
    if (sl_conf_load_flags(conf_file, SL_CONF_NO_SECRETS, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", PRICING_PROG, err);
        return SL_CLI_FAIL;
    }
    return 0;
}


static int
pricing_show(const sl_conf_t *conf, const pricing_opts_t *o)
{
    const char *name = o->model, *slash = strchr(name, '/');
    const sl_model_conf_t *m = sl_conf_model(conf, name, strlen(name));
    const sl_provider_conf_t *p;
    pricing_out_t out;
    pricing_hit_t h;
    int status;

    memset(&out, 0, sizeof(out));
    out.array = o->json ? json_array() : NULL;
    if (m != NULL) {
        for (size_t i = 0; i < m->ntargets; i++) {
            pricing_target(conf, &out, name, &m->targets[i]);
        }
        for (size_t r = 0; r < m->nrules; r++) {
            for (size_t i = 0; i < m->rules[r].ntargets; i++) {
                pricing_target(conf, &out, name, &m->rules[r].targets[i]);
            }
        }
    } else if (slash != NULL && slash != name && slash[1] != '\0') {
        p = sl_conf_provider(conf, name, (size_t) (slash - name));
        if (p != NULL) {
            sl_target_t t = { p, slash + 1, 1 };

            pricing_target(conf, &out, name, &t);
        } else {
            char kind[128];

            snprintf(kind, sizeof(kind), "%.*s", (int) (slash - name), name);
            memset(&h, 0, sizeof(h));
            h.query = name;
            h.price = sl_pricing_find(conf->pricing, NULL, kind, slash + 1);
            pricing_emit(&out, &h);
        }
    } else {
        /* a bare model: every line whose model part is exactly it */
        for (size_t i = 0; i < sl_pricing_count(conf->pricing); i++) {
            const sl_price_t *pr = sl_pricing_at(conf->pricing, i);
            const char *model = strchr(pr->key, '/') + 1;

            if (strcmp(model, name) == 0) {
                memset(&h, 0, sizeof(h));
                h.query = name;
                h.price = pr;
                pricing_emit(&out, &h);
            }
        }
        if (out.found == 0) {
            memset(&h, 0, sizeof(h));
            h.query = name;
            pricing_emit(&out, &h);
        }
    }
    status = out.found > 0 ? SL_CLI_OK : SL_CLI_FAIL;
    if (out.found == 0) {
        fprintf(stderr, "%s: no price for \"%s\"%s\n", PRICING_PROG, name,
                conf->pricing == NULL ? " (the configuration has no pricing:)" : "");
    }
    if (o->json) {
        if (sl_cli_print_json(PRICING_PROG, out.array) != 0) {
            return SL_CLI_FAIL;
        }
    }
    return status;
}


static int
pricing_check(const sl_conf_t *conf, const pricing_opts_t *o)
{
    pricing_out_t out;

    memset(&out, 0, sizeof(out));
    out.array = o->json ? json_array() : NULL;
    for (size_t mi = 0; mi < conf->nmodels; mi++) {
        const sl_model_conf_t *m = &conf->models[mi];

        for (size_t i = 0; i < m->ntargets; i++) {
            pricing_target(conf, &out, m->name, &m->targets[i]);
        }
        for (size_t r = 0; r < m->nrules; r++) {
            for (size_t i = 0; i < m->rules[r].ntargets; i++) {
                pricing_target(conf, &out, m->name, &m->rules[r].targets[i]);
            }
        }
    }
    pricing_notes(conf);
    if (o->json && sl_cli_print_json(PRICING_PROG, out.array) != 0) {
        return SL_CLI_FAIL;
    }
    fprintf(stderr, "%s: %zu target(s) priced, %zu without a price%s\n", PRICING_PROG, out.found,
            out.missing,
            conf->pricing == NULL ? " (the configuration has no pricing:)"
            : out.missing > 0 && conf->unpriced_reject
                ? " (unpriced: reject refuses their requests)"
                : "");
    return out.missing > 0 ? SL_CLI_FAIL : SL_CLI_OK;
}


/* A target, looked up as a request to it would be. */
static void
pricing_target(const sl_conf_t *conf, pricing_out_t *out, const char *query, const sl_target_t *t)
{
    pricing_hit_t h;

    memset(&h, 0, sizeof(h));
    h.query = query;
    h.target = t;
    h.price = sl_pricing_find(conf->pricing, t->provider->name, t->provider->kind, t->model);
    pricing_emit(out, &h);
}


static void
pricing_emit(pricing_out_t *out, const pricing_hit_t *h)
{
    if (h->price != NULL) {
        out->found++;
    } else if (h->target == NULL || !pricing_free_kind(h->target)) {
        out->missing++;
    }
    if (out->array != NULL) {
        json_array_append_new(out->array, pricing_json(h));
    } else {
        pricing_print(h);
    }
}


/* kind echo is built in and costs nothing: it needs no price. */
static bool
pricing_free_kind(const sl_target_t *t)
{
    return strcmp(t->provider->kind, "echo") == 0;
}


static void
pricing_print(const pricing_hit_t *h)
{
    const sl_price_t *p = h->price;
    char a[32], b[32], c[32], d[32], e[32];

    if (h->target != NULL) {
        printf("%s -> %s/%s (kind %s): ", h->query, h->target->provider->name, h->target->model,
               h->target->provider->kind);
    } else {
        printf("%s: ", h->query);
    }
    if (p == NULL) {
        printf("%s\n", h->target != NULL && pricing_free_kind(h->target)
                           ? "no price needed (built in, costs nothing)"
                           : "NO PRICE");
        return;
    }
    printf("%s\n", p->key);
    printf("  file            %s:%u\n", p->file, p->line);
    printf("  source          %s\n", p->source[0] != '\0' ? p->source : "-");
    printf("  checked         %s\n", pricing_date(p->checked, a, sizeof(a)));
    printf("  USD per 1M tokens:\n");
    printf("  input           %s\n", pricing_usd(p->rates.input, a, sizeof(a)));
    printf("  output          %s\n", pricing_usd(p->rates.output, a, sizeof(a)));
    printf("  cached_input    %s\n", pricing_usd(p->rates.cached_input, a, sizeof(a)));
    printf("  cache_write     %s\n", pricing_usd(p->rates.cache_write, a, sizeof(a)));
    printf("  cache_write_1h  %s\n", pricing_usd(p->rates.cache_write_1h, a, sizeof(a)));
    if (p->above != 0) {
        printf(
            "  above_%lluk      input %s, output %s, cached_input %s, cache_write %s, "
            "cache_write_1h %s (prompts above %llu tokens)\n",
            (unsigned long long) (p->above / 1000), pricing_usd(p->long_rates.input, a, sizeof(a)),
            pricing_usd(p->long_rates.output, b, sizeof(b)),
            pricing_usd(p->long_rates.cached_input, c, sizeof(c)),
            pricing_usd(p->long_rates.cache_write, d, sizeof(d)),
            pricing_usd(p->long_rates.cache_write_1h, e, sizeof(e)), (unsigned long long) p->above);
    }
    if (p->max_output != 0) {
        printf("  max_output      %llu tokens\n", (unsigned long long) p->max_output);
    }
}


static json_t *
pricing_json(const pricing_hit_t *h)
{
    const sl_price_t *p = h->price;
    json_t *o = json_object();
    char buf[32];

    json_object_set_new(o, "query", json_string(h->query));
    json_object_set_new(o, "provider",
                        h->target != NULL ? json_string(h->target->provider->name) : json_null());
    json_object_set_new(o, "model",
                        h->target != NULL ? json_string(h->target->model) : json_null());
    json_object_set_new(o, "key", p != NULL ? json_string(p->key) : json_null());
    if (p == NULL) {
        json_object_set_new(o, "free",
                            json_boolean(h->target != NULL && pricing_free_kind(h->target)));
        return o;
    }
    json_object_set_new(o, "file", json_string(p->file));
    json_object_set_new(o, "line", json_integer(p->line));
    json_object_set_new(o, "source", json_string(p->source));
    json_object_set_new(o, "checked",
                        p->checked != 0 ? json_string(pricing_date(p->checked, buf, sizeof(buf)))
                                        : json_null());
    json_object_update_new(o, pricing_rates_json(&p->rates));
    json_object_set_new(o, "above", json_integer((json_int_t) p->above));
    json_object_set_new(o, "above_rates",
                        p->above != 0 ? pricing_rates_json(&p->long_rates) : json_null());
    json_object_set_new(o, "max_output", json_integer((json_int_t) p->max_output));
    return o;
}


static json_t *
pricing_rates_json(const sl_price_rates_t *r)
{
    char a[32], b[32], c[32], d[32], e[32];

    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "input", pricing_usd(r->input, a, sizeof(a)),
                     "output", pricing_usd(r->output, b, sizeof(b)), "cached_input",
                     pricing_usd(r->cached_input, c, sizeof(c)), "cache_write",
                     pricing_usd(r->cache_write, d, sizeof(d)), "cache_write_1h",
                     pricing_usd(r->cache_write_1h, e, sizeof(e)));
}


/* Micro-USD per 1M tokens as USD per 1M tokens, exact: "0.075", "15", "1.234567". */
static char *
pricing_usd(uint64_t micro, char *buf, size_t size)
{
    int n;

    n = snprintf(buf, size, "%llu.%06llu", (unsigned long long) (micro / 1000000),
                 (unsigned long long) (micro % 1000000));
    while (n > 0 && buf[n - 1] == '0') {
        buf[--n] = '\0';
    }
    if (n > 0 && buf[n - 1] == '.') {
        buf[--n] = '\0';
    }
    return buf;
}


static char *
pricing_date(uint32_t ymd, char *buf, size_t size)
{
    if (ymd == 0) {
        snprintf(buf, size, "-");
    } else {
        snprintf(buf, size, "%04u-%02u-%02u", ymd / 10000, ymd / 100 % 100, ymd % 100);
    }
    return buf;
}


static void
pricing_notes(const sl_conf_t *conf)
{
    size_t n = sl_pricing_skipped(conf->pricing);
    const char *note;

    if (n == 0) {
        return;
    }
    fprintf(stderr, "%s: %zu entr%s of LiteLLM tables skipped (not priced):\n", PRICING_PROG, n,
            n == 1 ? "y" : "ies");
    for (size_t i = 0; (note = sl_pricing_note(conf->pricing, i)) != NULL; i++) {
        fprintf(stderr, "  %s\n", note);
    }
    if (n > SL_PRICING_NOTES_MAX) {
        fprintf(stderr, "  ... and %zu more\n", n - SL_PRICING_NOTES_MAX);
    }
}
