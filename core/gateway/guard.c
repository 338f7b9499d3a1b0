/*
 * Guardrails (see core/gateway/guard.h): policy lookup and compilation
 * helpers for the configuration, the request phase (limits and the
 * model allow-list on the token reader, then the text checks over every
 * string of the internal request that a model reads), the answer filters
 * (whole answers and stream events), the ledger string and the per-policy
 * counters in the shared segment.
 *
 * Which strings of a request are text: every string value except those
 * under keys that name, identify, type or carry binary data (model, role,
 * type, id, name, tool_call_id, tool_use_id, call_id, image_url, url,
 * source, data, media_type, detail, format, encoding_format,
 * cache_control) and signed reasoning (thinking, signature,
 * encrypted_content), which a provider checks byte for byte. Keys are
 * never changed. The frontend's own body (call->native, e.g. an Anthropic
 * body forwarded natively) is read and rewritten the same way as the
 * internal one, with the same placeholders.
 */

#include "core/gateway/guard.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/str.h"
#include "core/base/shm.h"
#include "core/gateway/features.h"
#include "core/gateway/guard_internal.h"

#define GUARD_SLOTS   64 /* policies the shared counters tell apart */
#define GUARD_ACTIONS 3

/* A literal of an answer that the output filters replaced. */
typedef struct guard_lit {
    sl_str_t old;
    sl_str_t now;
} guard_lit_t;

struct sl_guard_req {
    sl__guard_sess_t sess;
    bool out; /* the answer goes through the output filters */
    bool counted;
    sl__guard_stream_t *streams;
    size_t nstreams;
    size_t capstreams;
    sl_ev_t *in; /* scratch: the batch being filtered */
    size_t capin;
    sl_buf_t text;       /* scratch: a decoded literal */
    sl_buf_t emit;       /* scratch: what a stream lets out */
    sl__guard_map_t map; /* scratch: the escapes of a decoded request string */
    guard_lit_t *lits;   /* the literals an answer's filters changed (heap) */
    size_t nlits;
    size_t caplits;
};

/* One walk over a request document. */
typedef struct guard_walk {
    sl_guard_req_t *g;
    const sl_json_t *doc;
    sl_pool_t *pool;
    bool bad; /* a string the reader refuses */
} guard_walk_t;

typedef struct guard_slot {
    _Atomic unsigned state; /* 0 free, 1 being claimed, 2 in use */
    char name[SL_GUARD_NAME_MAX + 1];
    _Atomic uint64_t v[GUARD_ACTIONS];
} guard_slot_t;

typedef struct guard_shm {
    guard_slot_t slots[GUARD_SLOTS];
    _Atomic uint64_t dropped[GUARD_ACTIONS]; /* decisions of policies without a slot */
} guard_shm_t;

/* The prompt's images, counted once per request and only when a limit needs them. */
typedef struct guard_images {
    bool done;
    unsigned parts; /* image parts of the messages' contents (max_images) */
    bool any;       /* an image wherever the router's estimate counts one (max_prompt_tokens) */
} guard_images_t;

static const sl_guard_policy_t *guard_choose(const sl_guard_conf_t *gc, const sl_guard_who_t *who,
                                             const char **missing);
static int guard_shape(sl_guard_req_t *g, const sl_guard_who_t *who, sl_call_t *call,
                       sl_error_t *err);
static int guard_limit(sl_guard_req_t *g, const sl_guard_check_t *c, const char *key, uint64_t have,
                       uint64_t max, sl_error_t *err);
static void guard_images(const sl_json_t *doc, int msgs, int system, guard_images_t *out);
static bool guard_content_images(const sl_json_t *doc, int content);
static bool guard_str_eq(const sl_json_t *doc, int v, const char *s);
static int guard_text_phase(sl_guard_req_t *g, sl_call_t *call, sl_error_t *err);
static int guard_rewrite(sl_guard_req_t *g, sl_pool_t *pool, const sl_json_t *doc, sl_str_t src,
                         sl_str_t *out_src, const sl_json_t **out_doc, sl_error_t *err);
static int guard_walk(guard_walk_t *w, int v, unsigned depth);
static int guard_walk_string(guard_walk_t *w, int v);
static int guard_walk_twin(guard_walk_t *w, const char *text, size_t n, size_t base);
static bool guard_deny_decoded(const sl_guard_check_t *c);
static bool guard_skip_key(sl_str_t k);
static void guard_block_error(sl_guard_req_t *g, sl_error_t *err);
static const char *guard_what(unsigned det);
static sl__guard_stream_t *guard_stream(sl_guard_req_t *g, unsigned choice, unsigned slot);
static int guard_feed(sl_guard_req_t *g, sl__guard_stream_t *st, sl_str_t lit, bool final,
                      sl_evs_t *evs, const sl_ev_t *like);
static int guard_flush(sl_guard_req_t *g, sl_evs_t *evs, bool all, unsigned choice);
static int guard_parts(sl_guard_req_t *g, sl_choice_t *c, bool *changed);
static int guard_one(sl_guard_req_t *g, sl_str_t *lit, bool json, bool *changed);
static int guard_restore_lit(sl_guard_req_t *g, sl_str_t *lit, bool *changed);
static void guard_lit_changed(sl_guard_req_t *g, sl_str_t old, sl_str_t now);
static bool guard_raw_splice(sl_guard_req_t *g, sl_answer_t *a);
static void guard_req_free(void *arg);
static guard_slot_t *guard_slot(const char *name);

/* Whether strings with escapes are scanned as twins (sl__guard_twin_enable(): the tests). */
static bool guard_twin_on = true;

/* Keys whose string values are not text a model reads (or must not change). */
/* (with their lengths: a key is compared only with the names of its length) */
#define GUARD_KEY(s)       \
    {                      \
        (s), sizeof(s) - 1 \
    }
static const sl_str_t guard_skip[] = {
    GUARD_KEY("model"),         GUARD_KEY("role"),
    GUARD_KEY("type"),          GUARD_KEY("id"),
    GUARD_KEY("name"),          GUARD_KEY("tool_call_id"),
    GUARD_KEY("tool_use_id"),   GUARD_KEY("call_id"),
    GUARD_KEY("image_url"),     GUARD_KEY("url"),
    GUARD_KEY("source"),        GUARD_KEY("data"),
    GUARD_KEY("media_type"),    GUARD_KEY("detail"),
    GUARD_KEY("format"),        GUARD_KEY("encoding_format"),
    GUARD_KEY("cache_control"), GUARD_KEY("thinking"),
    GUARD_KEY("signature"),     GUARD_KEY("encrypted_content"),
};
#undef GUARD_KEY

static const char *const guard_det_names[] = {
    [SL_GUARD_DET_EMAIL] = "email", [SL_GUARD_DET_PHONE] = "phone",
    [SL_GUARD_DET_CARD] = "card",   [SL_GUARD_DET_IBAN] = "iban",
    [SL_GUARD_DET_IP] = "ip",       [SL_GUARD_DET_SECRET] = "secret",
    [SL_GUARD_DET_DENY] = "deny",   [SL_GUARD_DET_RESTORE] = "restore",
};

static const char *const guard_action_names[GUARD_ACTIONS] = { "log", "redact", "block" };

const sl_guard_policy_t sl_guard_policy_none = { .name = SL_GUARD_NONE };

static guard_shm_t *guard_shm;


const char *
sl_guard_action_name(sl_guard_action_e a)
{
    return (unsigned) a < GUARD_ACTIONS ? guard_action_names[a] : "-";
}


int
sl_guard_det_find(const char *name)
{
    for (int i = 0; i < SL_GUARD_DET_COUNT; i++) {
        if (strcmp(name, guard_det_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}


const char *
sl_guard_det_name(unsigned det)
{
    return det <= SL_GUARD_DET_RESTORE ? guard_det_names[det] : "-";
}


const sl_guard_policy_t *
sl_guard_find(const sl_guard_conf_t *gc, const char *name)
{
    if (strcmp(name, SL_GUARD_NONE) == 0) {
        return &sl_guard_policy_none;
    }
    for (size_t i = 0; gc != NULL && i < gc->npolicies; i++) {
        if (strcmp(gc->policies[i].name, name) == 0) {
            return &gc->policies[i];
        }
    }
    return NULL;
}


static void
guard_regfree(void *arg)
{
    regfree(arg);
}


int
sl_guard_pattern_compile(sl_pool_t *pool, const char *text, sl_guard_pattern_t *p, char *err,
                         size_t errlen)
{
    char msg[160];
    char *lit;
    size_t n = 0;
    int rc;

    memset(p, 0, sizeof(*p));
    p->text = text;
    if (strncmp(text, "re:", 3) == 0) {
        const char *re = text + 3;

        if (strncmp(re, "(?i)", 4) == 0) {
            re += 4; /* every pattern is case-insensitive already */
        }
        if (strstr(re, "(?") != NULL) {
            snprintf(err, errlen,
                     "\"(?\" is not POSIX extended regular expression syntax (only a leading "
                     "(?i) is accepted, and patterns are case-insensitive anyway)");
            return -EINVAL;
        }
        if (*re == '\0') {
            snprintf(err, errlen, "the regular expression is empty");
            return -EINVAL;
        }
        rc = regcomp(&p->re, re, REG_EXTENDED | REG_ICASE);
        if (rc != 0) {
            regerror(rc, &p->re, msg, sizeof(msg));
            snprintf(err, errlen, "bad regular expression: %s", msg);
            return -EINVAL;
        }
        sl_pool_on_destroy(pool, guard_regfree, &p->re);
        if (regexec(&p->re, "", 0, NULL, 0) == 0) {
            snprintf(err, errlen, "the regular expression matches the empty string");
            return -EINVAL;
        }
        p->regex = true;
        return 0;
    }
    lit = sl_palloc(pool, strlen(text) + 1);
    for (const char *s = text; *s != '\0'; s++) {
        unsigned char c = (unsigned char) *s;

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            if (n > 0 && lit[n - 1] != ' ') {
                lit[n++] = ' ';
            }
            continue;
        }
        lit[n++] = (char) ((unsigned) (c - 'A') < 26u ? c | 0x20 : c);
    }
    while (n > 0 && lit[n - 1] == ' ') {
        n--;
    }
    lit[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "a deny literal must not be empty");
        return -EINVAL;
    }
    p->lit = lit;
    p->len = n;
    return 0;
}


void
sl_guard_policy_finish(sl_pool_t *pool, sl_guard_policy_t *p)
{
    size_t longest = 0;

    p->in_detect = p->out_detect = 0;
    p->in_text = p->in_decode = p->out_text = p->restore = false;
    for (size_t i = 0; i < p->nchecks; i++) {
        sl_guard_check_t *c = &p->checks[i];

        c->index = (unsigned) i + 1;
        if (c->kind != SL_GUARD_DETECT && c->kind != SL_GUARD_DENY) {
            continue;
        }
        if (c->kind == SL_GUARD_DENY && c->deny_rule == NULL) {
            c->deny_rule = c->name != NULL ? c->name : sl_psprintf(pool, "deny[%u]", c->index);
        }
        if (c->on & SL_GUARD_INPUT) {
            p->in_text = true;
            p->in_decode = p->in_decode || guard_deny_decoded(c);
            p->in_detect |= c->detect;
        }
        if (c->on & SL_GUARD_OUTPUT) {
            p->out_text = true;
            p->out_detect |= c->detect;
            for (size_t k = 0; k < c->ndeny; k++) {
                if (!c->deny[k].regex && c->deny[k].len > longest) {
                    longest = c->deny[k].len;
                }
            }
        }
        if (c->action == SL_GUARD_REDACT && c->restore && (c->on & SL_GUARD_INPUT)) {
            p->restore = true;
        }
    }
    p->hold = SL__GUARD_HOLD + longest;
    /*
     * the scan's instruction set, chosen here while the configuration loads
     * (before the workers and their thread pools exist): the scans that run
     * in the pool beside the loop then only read it
     */
    (void) sl__guard_isa();
}


/* ----------------------------------------------------------- the request */

static const sl_guard_policy_t *
guard_choose(const sl_guard_conf_t *gc, const sl_guard_who_t *who, const char **missing)
{
    const char *names[2] = { who->key_guard, who->team_guard };
    const sl_guard_policy_t *p;

    *missing = NULL;
    for (size_t i = 0; i < 2; i++) {
        if (names[i] == NULL || names[i][0] == '\0') {
            continue;
        }
        p = sl_guard_find(gc, names[i]);
        if (p == NULL) {
            *missing = names[i];
        }
        return p;
    }
    if (who->model_policy != NULL) {
        return who->model_policy;
    }
    return gc != NULL ? gc->apply : NULL;
}


int
sl_guard_request(const sl_guard_conf_t *gc, const sl_guard_who_t *who, sl_call_t *call,
                 sl_guard_req_t **out, sl_error_t *err)
{
    const sl_guard_policy_t *p;
    const char *missing;
    sl_guard_req_t *g;
    int rc;

    *out = NULL;
    p = guard_choose(gc, who, &missing);
    if (missing != NULL) {
        memset(err, 0, sizeof(*err));
        err->status = 500;
        err->type = "api_error";
        err->code = "guardrail_policy_missing";
        err->message = sl_psprintf(call->pool,
                                   "This API key is bound to the guardrail policy \"%s\", which "
                                   "the gateway's configuration does not define.",
                                   missing);
        return SL_ENOTFOUND;
    }
    if (p == NULL || p->nchecks == 0) {
        return 0;
    }
    g = sl_pcalloc(call->pool, sizeof(*g));
    sl__guard_sess_init(&g->sess, call->pool, p);
    sl_pool_on_destroy(call->pool, guard_req_free, g);
    *out = g;
    rc = guard_shape(g, who, call, err);
    if (rc == 0 && p->in_text) {
        rc = guard_text_phase(g, call, err);
    }
    g->out = p->out_text || g->sess.nrestorable > 0;
    return rc;
}


static void
guard_req_free(void *arg)
{
    sl_guard_req_t *g = arg;

    for (size_t i = 0; i < g->nstreams; i++) {
        sl__guard_stream_free(&g->streams[i]);
    }
    free(g->streams);
    free(g->in);
    free(g->map.v);
    free(g->lits);
    sl_buf_free(&g->text);
    sl_buf_free(&g->emit);
}


/* limits and models: the request's shape, read with the token reader. */
static int
guard_shape(sl_guard_req_t *g, const sl_guard_who_t *who, sl_call_t *call, sl_error_t *err)
{
    static const sl_str_t root_keys[] = { sl_str_lit("messages"), sl_str_lit("system") };
    const sl_guard_policy_t *p = g->sess.policy;
    const sl_json_t *doc = call->doc;
    bool chat = call->api != SL_API_EMBEDDINGS;
    guard_images_t images = { 0 };
    int root[2];
    int rc = 0;

    sl_json_members(doc, SL_JSON_ROOT, root_keys, 2, root);

    for (size_t i = 0; i < p->nchecks && rc == 0; i++) {
        const sl_guard_check_t *c = &p->checks[i];
        const sl_guard_limits_t *l = &c->limits;

        if (c->kind == SL_GUARD_MODELS) {
            bool ok = false;

            for (size_t k = 0; k < c->nmodels && !ok; k++) {
                ok = fnmatch(c->models[k], who->model != NULL ? who->model : "", 0) == 0;
            }
            if (ok) {
                continue;
            }
            sl__guard_decide(&g->sess, c, c->name != NULL ? c->name : "models", false);
            if (c->action != SL_GUARD_BLOCK) {
                continue;
            }
            memset(err, 0, sizeof(*err));
            err->status = 403;
            err->type = "invalid_request_error";
            err->code = "model_not_allowed";
            err->param = "model";
            err->message = sl_psprintf(call->pool,
                                       "Blocked by guardrail policy \"%s\", rule \"%s\": the model "
                                       "`%s` is not allowed.",
                                       p->name, c->name != NULL ? c->name : "models",
                                       who->model != NULL ? who->model : "");
            return SL_EDENIED;
        }
        if (c->kind != SL_GUARD_LIMITS) {
            continue;
        }
        if (l->max_body > 0) {
            rc = guard_limit(g, c, "max_body", who->body_len, l->max_body, err);
        }
        if (rc == 0 && l->max_output_tokens > 0) {
            rc =
                guard_limit(g, c, "max_output_tokens", call->max_tokens, l->max_output_tokens, err);
        }
        if (rc == 0 && l->max_messages > 0 && chat) {
            rc =
                guard_limit(g, c, "max_messages", sl_json_size(doc, root[0]), l->max_messages, err);
        }
        if (rc == 0 && l->max_images > 0 && chat) {
            guard_images(doc, root[0], root[1], &images);
            rc = guard_limit(g, c, "max_images", images.parts, l->max_images, err);
        }
        if (rc == 0 && l->max_prompt_tokens > 0) {
            uint64_t tokens;

            if (chat && call->raw.len / 4 < l->max_prompt_tokens) {
                guard_images(doc, root[0], root[1], &images);
            }
            if (chat && call->raw.len / 4 < l->max_prompt_tokens && !images.any) {
                /* the text is never longer than the body, and there is no image: under the limit
                   without reading it */
                tokens = (call->raw.len + 3) / 4;
            } else if (chat) {
                sl_features_t f;

                sl_features_init(&f);
                sl_features_from_chat(&f, doc, SL_JSON_ROOT, NULL);
                tokens = f.prompt_tokens;
            } else {
                tokens = (sl_json_raw(doc, sl_json_get(doc, SL_JSON_ROOT, "input")).len + 3) / 4;
            }
            rc = guard_limit(g, c, "max_prompt_tokens", tokens, l->max_prompt_tokens, err);
        }
    }
    return rc;
}


/* One limit: over it, a decision and (block) the error. */
static int
guard_limit(sl_guard_req_t *g, const sl_guard_check_t *c, const char *key, uint64_t have,
            uint64_t max, sl_error_t *err)
{
    static const struct {
        const char *key;
        const char *what;
    } what[] = {
        { "max_body", "The request body is %llu bytes; at most %llu are allowed." },
        { "max_output_tokens", "The request asks for up to %llu output tokens; at most %llu are "
                               "allowed." },
        { "max_messages", "The request has %llu messages; at most %llu are allowed." },
        { "max_images", "The request has %llu images; at most %llu are allowed." },
        { "max_prompt_tokens", "The prompt is about %llu tokens; at most %llu are allowed." },
    };
    const char *rule = c->name != NULL ? c->name : key;
    const char *fmt = "";
    sl_pool_t *pool = g->sess.pool;

    if (have <= max) {
        return 0;
    }
    sl__guard_decide(&g->sess, c, rule, false);
    if (c->action != SL_GUARD_BLOCK) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        if (strcmp(what[i].key, key) == 0) {
            fmt = what[i].what;
        }
    }
    memset(err, 0, sizeof(*err));
    err->status = strcmp(key, "max_body") == 0 ? 413 : 400;
    err->type = "invalid_request_error";
    err->code = "guardrail_limit_exceeded";
    err->param = strcmp(key, "max_output_tokens") == 0 ? "max_tokens" : NULL;
    err->message = sl_psprintf(
        pool, "Blocked by guardrail policy \"%s\", rule \"%s\": %s", g->sess.policy->name, rule,
        sl_psprintf(pool, fmt, (unsigned long long) have, (unsigned long long) max));
    return SL_EDENIED;
}


/*
 * The images of a chat prompt (messages msgs, a top-level system), once:
 * image parts of the messages' contents, and whether there is an image
 * where the router's estimate counts one (core/gateway/features.c: those,
 * tool results within them, the system). Reads the tokens only.
 */
static void
guard_images(const sl_json_t *doc, int msgs, int system, guard_images_t *out)
{
    bool nested = false;

    if (out->done) {
        return;
    }
    out->done = true;
    for (int m = sl_json_first(doc, msgs); m >= 0; m = sl_json_next(doc, msgs, m)) {
        int content = sl_json_get(doc, m, "content");

        if (sl_json_type(doc, content) != SL_JSON_ARRAY) {
            continue; /* text, the common case */
        }
        for (int part = sl_json_first(doc, content); part >= 0;
             part = sl_json_next(doc, content, part)) {
            int type = sl_json_get(doc, part, "type");

            if (guard_str_eq(doc, type, "image_url") || guard_str_eq(doc, type, "image")
                || guard_str_eq(doc, type, "input_image")) {
                out->parts++;
            } else if (!nested && guard_str_eq(doc, type, "tool_result")) {
                nested = guard_content_images(doc, sl_json_get(doc, part, "content"));
            }
        }
    }
    out->any = out->parts > 0 || nested || guard_content_images(doc, system);
}


static bool
guard_content_images(const sl_json_t *doc, int content)
{
    if (sl_json_type(doc, content) != SL_JSON_ARRAY) {
        return false;
    }
    for (int part = sl_json_first(doc, content); part >= 0;
         part = sl_json_next(doc, content, part)) {
        int type = sl_json_get(doc, part, "type");

        if (guard_str_eq(doc, type, "image_url") || guard_str_eq(doc, type, "image")
            || guard_str_eq(doc, type, "input_image")
            || (guard_str_eq(doc, type, "tool_result")
                && guard_content_images(doc, sl_json_get(doc, part, "content")))) {
            return true;
        }
    }
    return false;
}


static bool
guard_str_eq(const sl_json_t *doc, int v, const char *s)
{
    sl_str_t raw = sl_json_raw(doc, v);
    size_t n = strlen(s);

    return sl_json_type(doc, v) == SL_JSON_STRING && raw.len == n + 2
           && memcmp(raw.p + 1, s, n) == 0;
}


/* detect and deny on the request: the internal body, and the client's own when it differs. */
static int
guard_text_phase(sl_guard_req_t *g, sl_call_t *call, sl_error_t *err)
{
    bool same = call->native.p == call->raw.p && call->native.len == call->raw.len;
    const sl_json_t *doc;
    sl_str_t src;
    int rc;

    rc = guard_rewrite(g, call->pool, call->doc, call->raw, &src, &doc, err);
    if (rc < 0) {
        return rc;
    }
    if (same) {
        call->raw = call->native = src;
        call->doc = call->native_doc = doc;
        return 0;
    }
    call->raw = src;
    call->doc = doc;
    if (call->native.p == NULL) {
        return 0;
    }
    rc = guard_rewrite(g, call->pool, call->native_doc, call->native, &src, &doc, err);
    if (rc < 0) {
        return rc;
    }
    call->native = src;
    call->native_doc = doc;
    return 0;
}


/* One document: its text checked, and rewritten when something was redacted. */
static int
guard_rewrite(sl_guard_req_t *g, sl_pool_t *pool, const sl_json_t *doc, sl_str_t src,
              sl_str_t *out_src, const sl_json_t **out_doc, sl_error_t *err)
{
    guard_walk_t w;
    sl_json_t *nd;
    int rc;

    memset(&w, 0, sizeof(w));
    w.g = g;
    w.doc = doc;
    w.pool = pool;
    *out_src = src;
    *out_doc = doc;
    g->sess.nrepl = 0; /* the walk's strings append their edits */
    rc = guard_walk(&w, SL_JSON_ROOT, 0);
    if (rc == SL_EDENIED) {
        guard_block_error(g, err);
        return rc;
    }
    if (w.bad) {
        memset(err, 0, sizeof(*err));
        err->status = 400;
        err->type = "invalid_request_error";
        err->message = sl_psprintf(pool,
                                   "Guardrail policy \"%s\" cannot read a string of this request: "
                                   "it is not valid UTF-8 JSON text.",
                                   g->sess.policy->name);
        return SL_EDENIED;
    }
    if (g->sess.nrepl == 0) {
        return 0;
    }
    /* the placeholders replace bytes inside strings: the tokens only move */
    nd = sl_json_create(pool);
    if (sl_json_splice_strings(nd, doc, g->sess.repl, g->sess.nrepl, out_src) < 0) {
        memset(err, 0, sizeof(*err));
        err->status = 500;
        err->type = "api_error";
        err->message = "The gateway could not apply a guardrail redaction.";
        return SL_EPARSE;
    }
    *out_doc = nd;
    return 0;
}


static int
guard_walk(guard_walk_t *w, int v, unsigned depth)
{
    const sl_json_t *doc = w->doc;
    sl_str_t key;
    int rc;

    switch (sl_json_type(doc, v)) {
    case SL_JSON_STRING:
        return guard_walk_string(w, v);
    case SL_JSON_ARRAY:
        for (int e = sl_json_first(doc, v); e >= 0; e = sl_json_next(doc, v, e)) {
            rc = guard_walk(w, e, depth + 1);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    case SL_JSON_OBJECT:
        for (int k = sl_json_first(doc, v); k >= 0; k = sl_json_next(doc, v, k)) {
            if (sl_json_string(doc, k, w->pool, &key) < 0 || guard_skip_key(key)) {
                continue;
            }
            rc = guard_walk(w, sl_json_key_value(doc, k), depth + 1);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    default:
        return 0;
    }
}


static bool
guard_skip_key(sl_str_t k)
{
    for (size_t i = 0; i < sizeof(guard_skip) / sizeof(guard_skip[0]); i++) {
        if (k.len == guard_skip[i].len && memcmp(k.p, guard_skip[i].p, k.len) == 0) {
            return true;
        }
    }
    return false;
}


/*
 * One string: checked as it stands in the body when it has no escapes (its
 * bytes are its text), else decoded with a map back to the body; each
 * placeholder then replaces the match's bytes in the body (escapes
 * included), so the string is never written out again whole.
 */
static int
guard_walk_string(guard_walk_t *w, int v)
{
    sl_guard_req_t *g = w->g;
    sl__guard_sess_t *s = &g->sess;
    sl_str_t raw = sl_json_raw(w->doc, v);
    const char *text = raw.p + 1;
    size_t n = raw.len - 2, base = sl_json_offset(w->doc, v) + 1, cut;
    unsigned plain = sl__guard_plain(text, n);
    const sl__guard_map_t *map = NULL;
    size_t first = s->nrepl;
    bool changed;
    int rc;

    if ((plain & SL__GUARD_PLAIN_HIGH) && sl_utf8_text(text, n) < 0) {
        w->bad = true; /* a control byte or bad UTF-8 */
        return 0;
    }
    if ((plain & SL__GUARD_PLAIN_ESC) && !s->policy->in_decode && guard_twin_on) {
        rc = guard_walk_twin(w, text, n, base);
        if (rc != SL__GUARD_UNTWIN) {
            return rc;
        }
    }
    if (plain & SL__GUARD_PLAIN_ESC) {
        sl_buf_clear(&g->text);
        if (sl__guard_decode(text, n, &g->text, &g->map, true) < 0) {
            w->bad = true; /* a bad escape, \u0000 or a lone surrogate */
            return 0;
        }
        text = g->text.p != NULL ? g->text.p : "";
        n = g->text.len;
        map = &g->map;
    }
    /* without escapes the text is the body's bytes: its edits are the body's at once */
    s->repl_base = map != NULL ? 0 : base;
    rc = sl__guard_apply(s, SL_GUARD_INPUT, text, n, 0, true, false, NULL, &cut, &changed);
    if (rc < 0 || map == NULL) {
        return rc;
    }
    for (size_t i = first; i < s->nrepl; i++) {
        sl_json_edit_t *e = &s->repl[i];

        e->start = base + sl__guard_map_raw(map, e->start);
        e->end = base + sl__guard_map_raw(map, e->end);
    }
    return 0;
}


/*
 * Whether deny check c must read the request's strings decoded, not as
 * their twins (guard_walk_twin): a regex may match an escape's byte
 * anywhere ('.' takes a line break), and so does a literal with '"', '\\'
 * or a control byte. A literal without them matches in a twin where it
 * matches in the decoded text: its other bytes are never an escape's, and
 * its white space takes a run of them, the twin's doubled line break as
 * well (such a match holds an escape's bytes: decoded again).
 */
static bool
guard_deny_decoded(const sl_guard_check_t *c)
{
    for (size_t k = 0; c->kind == SL_GUARD_DENY && k < c->ndeny; k++) {
        const sl_guard_pattern_t *d = &c->deny[k];

        if (d->regex) {
            return true;
        }
        for (size_t i = 0; i < d->len; i++) {
            unsigned char b = (unsigned char) d->lit[i];

            if (b < 0x20 || b == '"' || b == '\\') {
                return true;
            }
        }
    }
    return false;
}


/*
 * A string with escapes scanned as its twin (sl__guard_twin): its matches
 * are at the body's offsets, as a string's without escapes. Not for a
 * policy whose deny patterns read decoded text (guard_deny_decoded: a
 * regex, a literal with '"', '\\' or a control byte). SL__GUARD_UNTWIN
 * when the string has an escape a twin cannot hold or a match holds an
 * escape's bytes (a private key block): nothing was recorded, and the
 * caller decodes it.
 */
static int
guard_walk_twin(guard_walk_t *w, const char *text, size_t n, size_t base)
{
    sl_guard_req_t *g = w->g;
    sl__guard_sess_t *s = &g->sess;
    size_t cut;
    bool changed;
    int rc;

    sl_buf_clear(&g->text);
    sl_buf_reserve(&g->text, n);
    if (sl__guard_twin(text, n, g->text.p) < 0) {
        return SL__GUARD_UNTWIN;
    }
    g->text.len = n;
    s->repl_base = base;
    s->twin = true;
    rc = sl__guard_apply(s, SL_GUARD_INPUT, g->text.p, n, 0, true, false, NULL, &cut, &changed);
    s->twin = false;
    return rc;
}


void
sl__guard_twin_enable(bool on)
{
    guard_twin_on = on;
}


/* What a detector found, for the client's message. */
static const char *
guard_what(unsigned det)
{
    switch (det) {
    case SL_GUARD_DET_EMAIL:
        return "an e-mail address";
    case SL_GUARD_DET_PHONE:
        return "a phone number";
    case SL_GUARD_DET_CARD:
        return "a payment card number";
    case SL_GUARD_DET_IBAN:
        return "a bank account number (IBAN)";
    case SL_GUARD_DET_IP:
        return "an IP address";
    case SL_GUARD_DET_SECRET:
        return "a secret (an API key, token or private key)";
    default:
        return "text this policy does not allow";
    }
}


static void
guard_block_error(sl_guard_req_t *g, sl_error_t *err)
{
    const sl__guard_sess_t *s = &g->sess;
    const char *rule = sl__guard_rule(s->blocked, s->blocked_det);

    memset(err, 0, sizeof(*err));
    err->status = 400;
    err->type = "invalid_request_error";
    err->code = "guardrail_blocked";
    err->message =
        sl_psprintf(s->pool,
                    "Blocked by guardrail policy \"%s\", rule \"%s%s\": the %s "
                    "contains %s.",
                    s->policy->name, s->blocked_output ? "output:" : "", rule,
                    s->blocked_output ? "answer" : "request", guard_what(s->blocked_det));
}


const sl_guard_decision_t *
sl_guard_decisions(const sl_guard_req_t *g, size_t *n)
{
    *n = g != NULL ? g->sess.ndec : 0;
    return *n > 0 ? g->sess.dec : NULL;
}


const char *
sl_guard_policy_name(const sl_guard_req_t *g)
{
    return g != NULL ? g->sess.policy->name : NULL;
}


bool
sl_guard_filters_output(const sl_guard_req_t *g)
{
    return g != NULL && g->out;
}


const char *
sl_guard_row(sl_guard_req_t *g)
{
    sl_buf_t b = SL_BUF_INIT;
    const char *s;
    guard_slot_t *slot = NULL;

    if (g == NULL || g->sess.ndec == 0) {
        return "";
    }
    if (!g->counted && guard_shm != NULL) {
        slot = guard_slot(g->sess.policy->name);
    }
    for (size_t i = 0; i < g->sess.ndec; i++) {
        const sl_guard_decision_t *d = &g->sess.dec[i];

        const char *act = sl_guard_action_name(d->action);

        /* "[;]policy/[output:]rule/action" (appended: a printf costs more than the rest here) */
        if (i > 0) {
            sl_buf_append(&b, ";", 1);
        }
        sl_buf_append(&b, d->policy, strlen(d->policy));
        sl_buf_append(&b, d->output ? "/output:" : "/", d->output ? 8 : 1);
        sl_buf_append(&b, d->rule, strlen(d->rule));
        sl_buf_append(&b, "/", 1);
        sl_buf_append(&b, act, strlen(act));
        if (!g->counted && guard_shm != NULL) {
            atomic_fetch_add_explicit(slot != NULL ? &slot->v[d->action]
                                                   : &guard_shm->dropped[d->action],
                                      1, memory_order_relaxed);
        }
    }
    g->counted = true;
    s = sl_pstrndup(g->sess.pool, b.p, b.len);
    sl_buf_free(&b);
    return s;
}


/* ------------------------------------------------------------ the answer */

static sl__guard_stream_t *
guard_stream(sl_guard_req_t *g, unsigned choice, unsigned slot)
{
    sl__guard_stream_t *st;

    for (size_t i = 0; i < g->nstreams; i++) {
        if (g->streams[i].choice == choice && g->streams[i].slot == slot) {
            return &g->streams[i];
        }
    }
    if (g->nstreams == g->capstreams) {
        g->capstreams = g->capstreams == 0 ? 2 : g->capstreams * 2;
        g->streams = sl_xrealloc(g->streams, g->capstreams * sizeof(*g->streams));
    }
    st = &g->streams[g->nstreams++];
    memset(st, 0, sizeof(*st));
    st->choice = choice;
    st->slot = slot;
    st->json = slot > 0;
    return st;
}


/*
 * Feeds one literal to st; what may go out is pushed as an event like
 * `like` (TEXT or TOOL_ARGS of st's choice and slot).
 */
static int
guard_feed(sl_guard_req_t *g, sl__guard_stream_t *st, sl_str_t lit, bool final, sl_evs_t *evs,
           const sl_ev_t *like)
{
    sl_ev_t ev = *like;
    int rc;

    sl_buf_clear(&g->text);
    sl_buf_clear(&g->emit);
    if (lit.len >= 2 && sl__guard_unquote(lit, &g->text) < 0) {
        sl_evs_push(evs, like); /* not ours to read: as it came */
        return 0;
    }
    rc = sl__guard_stream_feed(&g->sess, st, g->text.p != NULL ? g->text.p : "", g->text.len, final,
                               &g->emit);
    if (g->emit.len > 0) {
        ev.text = sl_jstr_quote(evs->pool, (sl_str_t){ g->emit.p, g->emit.len });
        sl_evs_push(evs, &ev);
    }
    return rc;
}


/* Lets out what the streams of choice (or all of them) still hold. */
static int
guard_flush(sl_guard_req_t *g, sl_evs_t *evs, bool all, unsigned choice)
{
    for (size_t i = 0; i < g->nstreams; i++) {
        sl__guard_stream_t *st = &g->streams[i];
        sl_ev_t like;

        if ((!all && st->choice != choice) || st->blocked) {
            continue;
        }
        memset(&like, 0, sizeof(like));
        like.type = st->slot == 0 ? SL_EV_TEXT : SL_EV_TOOL_ARGS;
        like.choice = st->choice;
        like.index = st->slot > 0 ? st->slot - 1 : 0;
        if (guard_feed(g, st, sl_str_null, true, evs, &like) < 0) {
            return SL_EDENIED;
        }
    }
    return 0;
}


int
sl_guard_events(sl_guard_req_t *g, sl_evs_t *evs, bool final, sl_error_t *err)
{
    size_t n = evs->n;
    int rc = 0;

    if (g == NULL || !g->out) {
        return 0;
    }
    if (n > g->capin) {
        g->capin = n;
        g->in = sl_xrealloc(g->in, n * sizeof(*g->in));
    }
    if (n > 0) {
        memcpy(g->in, evs->v, n * sizeof(*g->in));
    }
    sl_evs_reset(evs);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sl_ev_t *ev = &g->in[i];

        switch (ev->type) {
        case SL_EV_TEXT:
            rc = guard_feed(g, guard_stream(g, ev->choice, 0), ev->text, false, evs, ev);
            break;
        case SL_EV_TOOL_ARGS:
            rc =
                guard_feed(g, guard_stream(g, ev->choice, ev->index + 1), ev->text, false, evs, ev);
            break;
        case SL_EV_TOOL_CALL:
        case SL_EV_FINISH:
            rc = guard_flush(g, evs, false, ev->choice);
            if (rc == 0) {
                sl_evs_push(evs, ev);
            }
            break;
        case SL_EV_DONE:
        case SL_EV_ERROR:
            rc = guard_flush(g, evs, true, 0);
            if (rc == 0) {
                sl_evs_push(evs, ev);
            }
            break;
        default:
            sl_evs_push(evs, ev);
            break;
        }
    }
    if (rc == 0 && final) {
        rc = guard_flush(g, evs, true, 0);
    }
    if (rc < 0) {
        guard_block_error(g, err);
        return SL_EDENIED;
    }
    return 0;
}


void
sl_guard_restart(sl_guard_req_t *g)
{
    for (size_t i = 0; g != NULL && i < g->nstreams; i++) {
        sl__guard_stream_free(&g->streams[i]);
    }
    if (g != NULL) {
        g->nstreams = 0;
    }
}


/* One whole literal through the output checks; *lit replaced when it changed. */
static int
guard_one(sl_guard_req_t *g, sl_str_t *lit, bool json, bool *changed)
{
    sl__guard_sess_t *s = &g->sess;
    size_t cut;
    bool ch = false;
    int rc;

    if (lit->len < 2) {
        return 0;
    }
    if (!s->policy->out_text && !json && guard_restore_lit(g, lit, changed) == 0) {
        return 0;
    }
    sl_buf_clear(&g->text);
    sl_buf_clear(&g->emit);
    if (sl__guard_unquote(*lit, &g->text) < 0) {
        return 0;
    }
    rc = sl__guard_apply(s, SL_GUARD_OUTPUT, g->text.p != NULL ? g->text.p : "", g->text.len, 0,
                         true, json, &g->emit, &cut, &ch);
    if (rc < 0) {
        return rc;
    }
    if (ch) {
        sl_str_t now = sl_jstr_quote(s->pool, (sl_str_t){ g->emit.p, g->emit.len });

        guard_lit_changed(g, *lit, now);
        *lit = now;
        *changed = true;
    }
    return 0;
}


static void
guard_lit_changed(sl_guard_req_t *g, sl_str_t old, sl_str_t now)
{
    if (g->nlits == g->caplits) {
        g->caplits = g->caplits == 0 ? 4 : g->caplits * 2;
        g->lits = sl_xrealloc(g->lits, g->caplits * sizeof(*g->lits));
    }
    g->lits[g->nlits++] = (guard_lit_t){ old, now };
}


/*
 * When every literal the filters changed lies in the provider's body that
 * a->raw passes on (an adapter's literals point into it), that body gets
 * them replaced in place: the client gets what it would without a policy,
 * restored, and the frontend encodes nothing. Otherwise (false) a->raw is
 * left for the caller to clear.
 */
static bool
guard_raw_splice(sl_guard_req_t *g, sl_answer_t *a)
{
    const char *lo = a->raw.p, *hi = a->raw.p + a->raw.len, *at;
    size_t len = a->raw.len, n = 0;
    char *buf, *d;

    if (lo == NULL) {
        return false;
    }
    for (size_t i = 0; i < g->nlits; i++) {
        guard_lit_t x = g->lits[i];
        size_t j = n;

        if (x.old.p < lo || x.old.p + x.old.len > hi) {
            return false;
        }
        /* in order of position; the same literal read twice (text and parts) once */
        while (j > 0 && g->lits[j - 1].old.p > x.old.p) {
            g->lits[j] = g->lits[j - 1];
            j--;
        }
        if (j > 0 && g->lits[j - 1].old.p == x.old.p) {
            if (g->lits[j - 1].old.len != x.old.len || g->lits[j - 1].now.len != x.now.len
                || memcmp(g->lits[j - 1].now.p, x.now.p, x.now.len) != 0) {
                return false;
            }
            memmove(&g->lits[j], &g->lits[j + 1], (n - j) * sizeof(*g->lits));
            continue;
        }
        g->lits[j] = x;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && g->lits[i - 1].old.p + g->lits[i - 1].old.len > g->lits[i].old.p) {
            return false;
        }
        len = len - g->lits[i].old.len + g->lits[i].now.len;
    }
    buf = sl_palloc(g->sess.pool, len + 1);
    d = buf;
    at = lo;
    for (size_t i = 0; i < n; i++) {
        memcpy(d, at, (size_t) (g->lits[i].old.p - at));
        d += g->lits[i].old.p - at;
        memcpy(d, g->lits[i].now.p, g->lits[i].now.len);
        d += g->lits[i].now.len;
        at = g->lits[i].old.p + g->lits[i].old.len;
    }
    memcpy(d, at, (size_t) (hi - at));
    d += hi - at;
    *d = '\0';
    a->raw = (sl_str_t){ buf, len };
    return true;
}


/*
 * Restore alone (no output checks) on a text literal as it stands: a
 * placeholder is made of [A-Z0-9_] between brackets, none of which an
 * escape writes but a backslash-u one, so it is found in the literal's
 * bytes and replaced by its original, escaped. Returns 0, or -1 when the
 * literal has a backslash-u escape (it is then decoded).
 */
static int
guard_restore_lit(sl_guard_req_t *g, sl_str_t *lit, bool *changed)
{
    sl__guard_sess_t *s = &g->sess;
    const char *p = lit->p + 1, *end = lit->p + lit->len - 1, *at = p;
    sl_buf_t *out = &g->emit;
    bool any = false;

    for (const char *b = p; b < end && (b = memchr(b, '\\', (size_t) (end - b))) != NULL; b += 2) {
        if (b + 1 < end && b[1] == 'u') {
            return -1;
        }
    }
    sl_buf_clear(out);
    while (p < end && (p = memchr(p, '[', (size_t) (end - p))) != NULL) {
        const char *q = p + 1;
        const sl__guard_ph_t *ph;

        while (q < end && (size_t) (q - p) < SL__GUARD_PH_MAX
               && ((unsigned) (*q - 'A') < 26u || (unsigned) (*q - '0') < 10u || *q == '_')) {
            q++;
        }
        if (q < end && *q == ']' && (ph = sl__guard_ph_find(s, p, (size_t) (q + 1 - p))) != NULL
            && ph->restorable) {
            sl_str_t o = sl__guard_ph_json(s, ph);

            if (!any) {
                sl_buf_append(out, "\"", 1);
                any = true;
            }
            sl_buf_append(out, at, (size_t) (p - at));
            sl_buf_append(out, o.p, o.len);
            at = p = q + 1;
            continue;
        }
        p++;
    }
    if (any) {
        sl_buf_append(out, at, (size_t) (end - at));
        sl_buf_append(out, "\"", 1);
        sl_str_t now = { sl_pstrndup(s->pool, out->p, out->len), out->len };

        guard_lit_changed(g, *lit, now);
        *lit = now;
        *changed = true;
    }
    return 0;
}


int
sl_guard_answer(sl_guard_req_t *g, sl_answer_t *a, sl_error_t *err)
{
    bool changed = false;

    if (g == NULL || !g->out) {
        return 0;
    }
    g->nlits = 0;
    for (size_t i = 0; i < a->nchoices; i++) {
        sl_choice_t *c = &a->choices[i];

        if (guard_one(g, &c->text, false, &changed) < 0) {
            guard_block_error(g, err);
            return SL_EDENIED;
        }
        for (size_t k = 0; k < c->ntools; k++) {
            if (guard_one(g, &c->tools[k].args, true, &changed) < 0) {
                guard_block_error(g, err);
                return SL_EDENIED;
            }
        }
        if (c->nparts > 0 && guard_parts(g, c, &changed) < 0) {
            guard_block_error(g, err);
            return SL_EDENIED;
        }
    }
    if (changed && !guard_raw_splice(g, a)) {
        a->raw = sl_str_null;
    }
    g->nlits = 0;
    return 0;
}


/*
 * The text parts of c (the same text as c->text, in the order a frontend
 * that keeps blocks apart reads them) through the output filters too;
 * their decisions are those already counted for c->text, so the counts
 * are put back as they were.
 */
static int
guard_parts(sl_guard_req_t *g, sl_choice_t *c, bool *changed)
{
    sl__guard_sess_t *s = &g->sess;
    size_t ndec = s->ndec;
    unsigned *counts = ndec > 0 ? sl_palloc(s->pool, ndec * sizeof(*counts)) : NULL;
    int rc = 0;

    for (size_t i = 0; i < ndec; i++) {
        counts[i] = s->dec[i].count;
    }
    for (size_t k = 0; k < c->nparts && rc == 0; k++) {
        if (c->parts[k].type == SL_PART_TEXT) {
            rc = guard_one(g, &c->parts[k].text, false, changed);
        }
    }
    if (rc == 0) {
        s->ndec = ndec;
        for (size_t i = 0; i < ndec; i++) {
            s->dec[i].count = counts[i];
        }
    }
    return rc;
}


/* ------------------------------------------------------- shared counters */

size_t
sl_guard_shm_size(void)
{
    return sizeof(guard_shm_t);
}


int
sl_guard_init(void)
{
    if (guard_shm != NULL) {
        return 0;
    }
    guard_shm = sl_shm_region("guard", sizeof(guard_shm_t));
    return guard_shm != NULL ? 0 : -ENOMEM;
}


/*
 * The slot of a policy name, claimed on first use by whichever process
 * gets there first. Two processes may claim one each for the same name;
 * the rendering adds them up. NULL when every slot is taken.
 */
static guard_slot_t *
guard_slot(const char *name)
{
    size_t len = strlen(name);

    if (len > SL_GUARD_NAME_MAX) {
        return NULL;
    }
    for (size_t i = 0; i < GUARD_SLOTS; i++) {
        guard_slot_t *s = &guard_shm->slots[i];
        unsigned st = atomic_load_explicit(&s->state, memory_order_acquire);

        if (st == 2 && strcmp(s->name, name) == 0) {
            return s;
        }
        if (st == 0) {
            unsigned zero = 0;

            if (atomic_compare_exchange_strong(&s->state, &zero, 1)) {
                memcpy(s->name, name, len + 1);
                atomic_store_explicit(&s->state, 2, memory_order_release);
                return s;
            }
        }
    }
    return NULL;
}


void
sl_guard_metrics_render(sl_buf_t *out)
{
    bool seen[GUARD_SLOTS] = { false };

    sl_buf_puts(out, "# HELP sluice_guard_decisions_total Guardrail decisions by policy and "
                     "action (one per rule and action in a request).\n"
                     "# TYPE sluice_guard_decisions_total counter\n");
    if (guard_shm == NULL) {
        return;
    }
    for (size_t i = 0; i < GUARD_SLOTS; i++) {
        guard_slot_t *s = &guard_shm->slots[i];
        uint64_t v[GUARD_ACTIONS] = { 0 };

        if (seen[i] || atomic_load_explicit(&s->state, memory_order_acquire) != 2) {
            continue;
        }
        for (size_t j = i; j < GUARD_SLOTS; j++) {
            guard_slot_t *o = &guard_shm->slots[j];

            if (atomic_load_explicit(&o->state, memory_order_acquire) == 2
                && strcmp(o->name, s->name) == 0) {
                seen[j] = true;
                for (size_t a = 0; a < GUARD_ACTIONS; a++) {
                    v[a] += atomic_load_explicit(&o->v[a], memory_order_relaxed);
                }
            }
        }
        for (size_t a = 0; a < GUARD_ACTIONS; a++) {
            /* policy names are [A-Za-z0-9._-]: nothing to escape */
            sl_buf_printf(out, "sluice_guard_decisions_total{policy=\"%s\",action=\"%s\"} %llu\n",
                          s->name, guard_action_names[a], (unsigned long long) v[a]);
        }
    }
    for (size_t a = 0; a < GUARD_ACTIONS; a++) {
        uint64_t d = atomic_load_explicit(&guard_shm->dropped[a], memory_order_relaxed);

        if (d > 0) {
            sl_buf_printf(out, "sluice_guard_decisions_total{policy=\"\",action=\"%s\"} %llu\n",
                          guard_action_names[a], (unsigned long long) d);
        }
    }
}
