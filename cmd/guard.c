/*
 * sluice guard: try a guardrail policy without sending anything anywhere.
 * `guard test POLICY` reads a prompt from stdin and shows what the policy
 * would do with a request carrying it (limits, the model allow-list with
 * --model, each match of a detector or deny pattern with its line and
 * column, the placeholders, and the text that would go upstream), or with
 * --output what it would do with a model's answer, or with --request what
 * it would do with a whole chat request body. `guard list` lists the
 * policies and where they apply. Nothing is stored and no provider is
 * called; the configuration is read without resolving its secrets.
 *
 * A matched secret is shown by its first four characters only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd/cli.h"
#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/gateway/guard.h"
#include "core/gateway/guard_internal.h"

#define GUARD_PROG      "sluice guard"
#define GUARD_INPUT_MAX (64u * 1024 * 1024)

typedef struct guard_opts {
    const char *conf_file;
    const char *policy;
    const char *model;
    uint64_t max_tokens;
    bool output;
    bool request;
    bool json;
} guard_opts_t;

static void guard_help(FILE *f);
static int guard_read_stdin(char **out, size_t *len);
static int guard_test(const guard_opts_t *o, const sl_conf_t *conf);
static int guard_list(const sl_conf_t *conf);
static void guard_matches(sl__guard_sess_t *s, unsigned dir, const char *text, size_t len,
                          json_t *list);
static void guard_print(const guard_opts_t *o, json_t *report);
static const char *guard_verdict(const sl_guard_decision_t *d, size_t n, bool blocked);
static bool guard_utf8(const char *text, size_t len);


static void
guard_help(FILE *f)
{
    fprintf(f,
            "usage: sluice guard test POLICY [--model NAME] [--max-tokens N] [--output]\n"
            "                         [--request] [--json]    (the prompt on stdin)\n"
            "       sluice guard list\n"
            "\n"
            "test shows what the guardrail policy POLICY (guardrails.policies in the\n"
            "configuration) would do with a request whose prompt is stdin: blocked (and\n"
            "by which rule), redacted (each match, where, and its placeholder) or let\n"
            "through, and the text that would go to the provider. Nothing is sent.\n"
            "\n"
            "  --model NAME    the model the request asks for (for a models: check)\n"
            "  --max-tokens N  the request's output limit (for max_output_tokens)\n"
            "  --output        stdin is a model's answer: the policy's output checks\n"
            "  --request       stdin is a whole chat completions request body (JSON)\n"
            "  --json          print JSON instead of text\n"
            "  -c FILE         configuration file (default %s)\n"
            "\n"
            "Exit status: 0 when the request would go through (redacted or not), 1 when\n"
            "it would be blocked or on an error, 2 on a usage error.\n",
            SL_CLI_DEFAULT_CONF);
}


int
sl_cli_check_guard(const char *prog, const sl_conf_t *conf, const char *name)
{
    if (name == NULL || sl_guard_find(conf->guard, name) != NULL) {
        return 0;
    }
    fprintf(stderr, "%s: no guardrail policy \"%s\" in %s (guardrails.policies, or none)\n", prog,
            name, conf->file);
    return SL_CLI_USAGE;
}


int
sl_cmd_guard(int argc, char **argv)
{
    guard_opts_t o;
    sl_conf_t *conf = NULL;
    const char *v, *sub;
    char err[1024];
    int rc;

    memset(&o, 0, sizeof(o));
    o.conf_file = SL_CLI_DEFAULT_CONF;
    o.model = "guard-test";
    if (argc < 2 || sl_cli_is_help(argv[1])) {
        guard_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? SL_CLI_USAGE : SL_CLI_OK;
    }
    sub = argv[1];
    if (strcmp(sub, "test") != 0 && strcmp(sub, "list") != 0) {
        fprintf(stderr, "%s: unknown subcommand \"%s\"\n\n", GUARD_PROG, sub);
        guard_help(stderr);
        return SL_CLI_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            guard_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(GUARD_PROG, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(GUARD_PROG, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            o.conf_file = v;
        } else if ((rc = sl_cli_opt(GUARD_PROG, argc, argv, &i, "--model", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            o.model = v;
        } else if ((rc = sl_cli_opt(GUARD_PROG, argc, argv, &i, "--max-tokens", &v)) != 0) {
            if (rc < 0 || sl_cli_parse_u64(v, &o.max_tokens) != 0) {
                if (rc > 0) {
                    fprintf(stderr, "%s: --max-tokens wants a whole number, not \"%s\"\n",
                            GUARD_PROG, v);
                }
                return SL_CLI_USAGE;
            }
        } else if (strcmp(argv[i], "--output") == 0) {
            o.output = true;
        } else if (strcmp(argv[i], "--request") == 0) {
            o.request = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            o.json = true;
        } else if (strcmp(sub, "test") == 0 && o.policy == NULL && argv[i][0] != '-') {
            o.policy = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", GUARD_PROG, argv[i]);
            return SL_CLI_USAGE;
        }
    }
    if (strcmp(sub, "test") == 0 && o.policy == NULL) {
        fprintf(stderr, "%s test: which policy? give its name\n", GUARD_PROG);
        return SL_CLI_USAGE;
    }
    if (o.output && o.request) {
        fprintf(stderr, "%s test: --output and --request do not go together\n", GUARD_PROG);
        return SL_CLI_USAGE;
    }
    rc = sl_conf_load_flags(o.conf_file, SL_CONF_NO_SECRETS, &conf, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", GUARD_PROG, err);
        return SL_CLI_FAIL;
    }
    if (strcmp(sub, "list") == 0) {
        rc = guard_list(conf);
    } else if (sl_cli_check_guard(GUARD_PROG " test", conf, o.policy) != 0) {
        rc = SL_CLI_USAGE;
    } else {
        rc = guard_test(&o, conf);
    }
    sl_conf_destroy(conf);
    if (rc != SL_CLI_USAGE && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "%s: writing the output failed\n", GUARD_PROG);
        rc = SL_CLI_FAIL;
    }
    return rc;
}


static int
guard_read_stdin(char **out, size_t *len)
{
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);

    if (buf == NULL) {
        return -ENOMEM;
    }
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            char *b;

            if (cap >= GUARD_INPUT_MAX) {
                free(buf);
                return SL_ETOOBIG;
            }
            cap *= 2;
            b = realloc(buf, cap);
            if (b == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = b;
        }
    }
    if (ferror(stdin)) {
        free(buf);
        return -EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}


/* Whether text[0..len) is UTF-8 without NUL (what jansson takes as a string). */
static bool
guard_utf8(const char *text, size_t len)
{
    json_t *j = json_stringn(text, len);

    json_decref(j);
    return j != NULL;
}


static int
guard_test(const guard_opts_t *o, const sl_conf_t *conf)
{
    const sl_guard_policy_t *p = sl_guard_find(conf->guard, o->policy);
    sl_pool_t *pool = sl_pool_create(0);
    json_t *report = json_object(), *matches = json_array(), *decs = json_array(), *body;
    const sl_guard_decision_t *d = NULL;
    sl__guard_sess_t *s;
    sl_guard_req_t *g = NULL;
    sl_call_t call;
    sl_json_t *doc;
    sl_error_t e;
    char *text = NULL, *dumped;
    size_t len = 0, nd = 0;
    bool blocked = false;
    int rc;

    if (pool == NULL || report == NULL || matches == NULL || decs == NULL) {
        fprintf(stderr, "%s: out of memory\n", GUARD_PROG);
        return SL_CLI_FAIL;
    }
    rc = guard_read_stdin(&text, &len);
    if (rc != 0) {
        fprintf(stderr, "%s: reading stdin failed: %s\n", GUARD_PROG, sl_strerror(rc));
        sl_pool_destroy(pool);
        return SL_CLI_FAIL;
    }
    json_object_set_new(report, "policy", json_string(p->name));
    s = sl_palloc(pool, sizeof(*s));
    sl__guard_sess_init(s, pool, p);
    if (o->output) {
        sl_buf_t out = SL_BUF_INIT;
        size_t cut;
        bool changed;

        if (!guard_utf8(text, len)) {
            fprintf(stderr, "%s: the answer on stdin is not UTF-8 text\n", GUARD_PROG);
            rc = SL_CLI_FAIL;
            goto out;
        }
        guard_matches(s, SL_GUARD_OUTPUT, text, len, matches);
        sl__guard_hits_free(&s->hits); /* a fresh session for the answer itself */
        sl_buf_free(&s->scratch);
        sl__guard_sess_init(s, pool, p);
        rc = sl__guard_apply(s, SL_GUARD_OUTPUT, text, len, 0, true, false, &out, &cut, &changed);
        blocked = rc < 0;
        json_object_set_new(report, "text", json_stringn(out.p != NULL ? out.p : "", out.len));
        sl_buf_free(&out);
        d = s->dec;
        nd = s->ndec;
        if (blocked) {
            json_object_set_new(report, "message",
                                json_sprintf("blocked by rule \"output:%s\"",
                                             sl__guard_rule(s->blocked, s->blocked_det)));
        }
    } else {
        sl_guard_who_t who = { o->policy, NULL, o->model, NULL, 0 };

        if (o->request) {
            body = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
            if (!json_is_object(body) || !json_is_array(json_object_get(body, "messages"))) {
                json_decref(body);
                fprintf(stderr,
                        "%s: stdin is not a chat request body (a JSON object with "
                        "messages)\n",
                        GUARD_PROG);
                rc = SL_CLI_FAIL;
                goto out;
            }
            if (json_is_string(json_object_get(body, "model"))) {
                who.model = sl_pstrdup(pool, json_string_value(json_object_get(body, "model")));
            }
        } else {
            if (!guard_utf8(text, len)) {
                fprintf(stderr, "%s: the prompt on stdin is not UTF-8 text\n", GUARD_PROG);
                rc = SL_CLI_FAIL;
                goto out;
            }
            guard_matches(s, SL_GUARD_INPUT, text, len, matches);
            body = json_pack("{s:s,s:[{s:s,s:s%}]}", "model", o->model, "messages", "role", "user",
                             "content", text, len);
            if (o->max_tokens > 0) {
                json_object_set_new(body, "max_tokens", json_integer((json_int_t) o->max_tokens));
            }
        }
        dumped = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (dumped == NULL) {
            fprintf(stderr, "%s: out of memory\n", GUARD_PROG);
            rc = SL_CLI_FAIL;
            goto out;
        }
        memset(&call, 0, sizeof(call));
        call.pool = pool;
        call.api = call.client_api = SL_API_CHAT;
        call.raw = call.native = (sl_str_t){ sl_pstrdup(pool, dumped), strlen(dumped) };
        free(dumped);
        doc = sl_json_create(pool);
        sl_json_parse(doc, call.raw.p, call.raw.len, NULL);
        call.doc = call.native_doc = doc;
        call.model = sl_json_get(doc, SL_JSON_ROOT, "model");
        call.stream_options = -1;
        if (o->request) {
            int64_t n = 0;

            if (sl_json_int(doc, sl_json_get(doc, SL_JSON_ROOT, "max_completion_tokens"), &n)
                != 0) {
                sl_json_int(doc, sl_json_get(doc, SL_JSON_ROOT, "max_tokens"), &n);
            }
            call.max_tokens = n > 0 ? (uint64_t) n : 0;
        } else {
            call.max_tokens = o->max_tokens;
        }
        who.body_len = call.raw.len;
        rc = sl_guard_request(conf->guard, &who, &call, &g, &e);
        blocked = rc < 0;
        if (blocked) {
            json_object_set_new(report, "message", json_string(e.message));
            json_object_set_new(report, "status", json_integer(e.status));
        } else if (o->request) {
            json_object_set_new(report, "body", json_stringn(call.raw.p, call.raw.len));
        } else {
            json_t *b = json_loadb(call.raw.p, call.raw.len, 0, NULL);

            json_object_set(
                report, "text",
                json_object_get(json_array_get(json_object_get(b, "messages"), 0), "content"));
            json_decref(b);
        }
        d = sl_guard_decisions(g, &nd);
    }
    for (size_t i = 0; i < nd; i++) {
        json_array_append_new(decs, json_pack("{s:s,s:s,s:b,s:i}", "rule", d[i].rule, "action",
                                              sl_guard_action_name(d[i].action), "output",
                                              d[i].output, "count", (int) d[i].count));
    }
    json_object_set_new(report, "verdict", json_string(guard_verdict(d, nd, blocked)));
    json_object_set_new(report, "decisions", decs);
    decs = NULL;
    if (!o->request) {
        json_object_set_new(report, "matches", matches);
        matches = NULL;
    }
    guard_print(o, report);
    rc = blocked ? SL_CLI_FAIL : 0;

out:
    json_decref(report);
    json_decref(matches);
    json_decref(decs);
    free(text);
    sl_pool_destroy(pool);
    return rc;
}


static const char *
guard_verdict(const sl_guard_decision_t *d, size_t n, bool blocked)
{
    bool redact = false;

    if (blocked) {
        return "block";
    }
    for (size_t i = 0; i < n; i++) {
        redact = redact || d[i].action == SL_GUARD_REDACT;
    }
    return redact ? "redact" : n > 0 ? "log" : "pass";
}


/* Every match of the policy's text checks in text, where it is and what becomes of it. */
static void
guard_matches(sl__guard_sess_t *s, unsigned dir, const char *text, size_t len, json_t *list)
{
    sl_buf_t out = SL_BUF_INIT;
    size_t cut;
    bool changed;

    sl__guard_apply(s, dir, text, len, 0, true, false, &out, &cut, &changed);
    sl_buf_free(&out);
    for (size_t i = 0; i < s->hits.n; i++) {
        const sl__guard_hit_t *h = &s->hits.v[i];
        const char *ph = NULL;
        unsigned line = 1, col = 1;
        json_t *m;

        if (h->check == NULL) {
            continue;
        }
        for (size_t k = 0; k < h->start; k++) {
            if (text[k] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char) text[k] & 0xc0) != 0x80) {
                col++;
            }
        }
        for (size_t k = 0; k < s->nph && h->check->action == SL_GUARD_REDACT; k++) {
            if (s->ph[k]->orig.len == h->end - h->start
                && memcmp(s->ph[k]->orig.p, text + h->start, h->end - h->start) == 0) {
                ph = s->ph[k]->text;
            }
        }
        m = json_pack("{s:i,s:i,s:s,s:s,s:s}", "line", (int) line, "column", (int) col, "rule",
                      sl__guard_rule(h->check, h->det), "detector", sl_guard_det_name(h->det),
                      "action", sl_guard_action_name(h->check->action));
        if (h->det == SL_GUARD_DET_SECRET) {
            json_object_set_new(m, "text",
                                json_sprintf("%.4s\xe2\x80\xa6 (%zu characters)", text + h->start,
                                             h->end - h->start));
        } else {
            json_object_set_new(m, "text", json_stringn(text + h->start, h->end - h->start));
        }
        json_object_set_new(m, "replacement", ph != NULL ? json_string(ph) : json_null());
        json_array_append_new(list, m);
    }
}


static void
guard_print(const guard_opts_t *o, json_t *report)
{
    const char *verdict = json_string_value(json_object_get(report, "verdict"));
    json_t *v;
    size_t i;

    if (o->json) {
        sl_cli_print_json(GUARD_PROG, json_incref(report));
        return;
    }
    printf("policy %s: %s\n", json_string_value(json_object_get(report, "policy")),
           strcmp(verdict, "block") == 0    ? "blocked"
           : strcmp(verdict, "redact") == 0 ? "redacted, then let through"
           : strcmp(verdict, "log") == 0    ? "let through (logged)"
                                            : "let through");
    if (json_is_string(json_object_get(report, "message"))) {
        printf("  %s\n", json_string_value(json_object_get(report, "message")));
    }
    json_array_foreach(json_object_get(report, "matches"), i, v)
    {
        const char *ph = json_string_value(json_object_get(v, "replacement"));

        printf("  line %lld, column %lld: %s (rule %s, %s) \"%s\"%s%s\n",
               (long long) json_integer_value(json_object_get(v, "line")),
               (long long) json_integer_value(json_object_get(v, "column")),
               json_string_value(json_object_get(v, "detector")),
               json_string_value(json_object_get(v, "rule")),
               json_string_value(json_object_get(v, "action")),
               json_string_value(json_object_get(v, "text")), ph != NULL ? " -> " : "",
               ph != NULL ? ph : "");
    }
    json_array_foreach(json_object_get(report, "decisions"), i, v)
    {
        printf("  decision: %s%s/%s (%lld)\n",
               json_is_true(json_object_get(v, "output")) ? "output:" : "",
               json_string_value(json_object_get(v, "rule")),
               json_string_value(json_object_get(v, "action")),
               (long long) json_integer_value(json_object_get(v, "count")));
    }
    if (json_is_string(json_object_get(report, "text"))) {
        printf("%s:\n%s\n", o->output ? "the client would get" : "the provider would get",
               json_string_value(json_object_get(report, "text")));
    } else if (json_is_string(json_object_get(report, "body"))) {
        printf("the provider would get:\n%s\n", json_string_value(json_object_get(report, "body")));
    }
}


static int
guard_list(const sl_conf_t *conf)
{
    const sl_guard_conf_t *gc = conf->guard;

    if (gc == NULL || gc->npolicies == 0) {
        printf("no guardrail policies (guardrails.policies in %s)\n", conf->file);
        return 0;
    }
    for (size_t i = 0; i < gc->npolicies; i++) {
        const sl_guard_policy_t *p = &gc->policies[i];

        printf("%s%s\n", p->name, gc->apply == p ? "  (global: guardrails.apply)" : "");
        for (size_t k = 0; k < p->nchecks; k++) {
            const sl_guard_check_t *c = &p->checks[k];
            static const char *const kinds[] = { "detect", "deny", "limits", "models" };

            printf("  %zu. %s%s%s, %s%s%s\n", k + 1, kinds[c->kind], c->name != NULL ? " " : "",
                   c->name != NULL ? c->name : "", sl_guard_action_name(c->action),
                   c->kind <= SL_GUARD_DENY
                       ? (c->on == (SL_GUARD_INPUT | SL_GUARD_OUTPUT) ? ", input and output"
                          : c->on == SL_GUARD_OUTPUT                  ? ", output"
                                                                      : ", input")
                       : "",
                   c->restore ? ", restore" : "");
        }
        for (size_t m = 0; m < conf->nmodels; m++) {
            if (conf->models[m].guard == p) {
                printf("  model %s\n", conf->models[m].name);
            }
        }
    }
    return 0;
}
