/*
 * OpenAI wire format: the client already speaks it, so the adapter only
 * rewrites `model` to the target's name, puts in the provider's credentials
 * and reads usage back. The OpenAI-compatible family and Azure reuse it.
 * No DOM on this path: the client's bytes are spliced (core/json.h) and the
 * answers are read with the token reader.
 *
 * The OpenAI-compatible presets (deepseek, mistral, groq, ...) live here
 * too: each is a kind with the same hooks, a default base_url and a row of
 * quirks (see openai_quirks[]). Azure, same bodies under other paths and
 * headers, is azure.c on the helpers of openai_internal.h.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errno.h"
#include "core/log.h"
#include "providers/openai_internal.h"

static int openai_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static int openai_preset_conf(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf);
static size_t openai_edits(const sl_call_t *call, const sl__openai_quirks_t *q, sl_json_edit_t *ed,
                           sl_buf_t *dropped);
static bool openai_drops(const sl__openai_quirks_t *q, const sl_json_t *doc, int key,
                         sl_pool_t *pool, sl_str_t *name);
static size_t openai_include_usage(const sl_call_t *call, sl_json_edit_t *ed);
static int openai_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                               sl_chunks_t *out);
static void openai_read_usage(const sl_json_t *doc, int usage, sl_usage_t *u);
static uint64_t openai_uint(const sl_json_t *doc, int v);
static size_t openai_string_len(const sl_json_t *doc, int v);

/*
 * The OpenAI-compatible presets: kinds that reuse every OpenAI hook and
 * differ only in their default base_url and in the top-level chat keys
 * they refuse with a 400 (or 422) instead of ignoring. Those keys are
 * dropped from the request, with one info log line per request; a client
 * that needs them must use a provider that takes them. When a preset drops
 * stream_options, a stream's usage is what the provider's last chunk
 * carries on its own (Mistral and Perplexity send it), else the core
 * estimates it. skip_empty_chunks marks providers that stream chunks with
 * "choices": [] and no usage (keep-alives, moderation notes), which some
 * clients choke on. The lists hold what the providers' API references
 * refuse as of this writing; keep them short and add a key only after
 * seeing the provider reject it.
 */
static const char *const openai_drop_deepseek[] = { "seed", "logit_bias", NULL };
static const char *const openai_drop_mistral[] = {
    "stream_options", "logit_bias", "logprobs", "top_logprobs", "user", "seed", NULL,
};
static const char *const openai_drop_groq[] = { "logprobs", "top_logprobs", "logit_bias", "n",
                                                NULL };
static const char *const openai_drop_perplexity[] = {
    "stream_options", "logit_bias", "logprobs", "top_logprobs", "n", NULL,
};
static const char *const openai_drop_cerebras[] = { "logit_bias", "n", NULL };

static const sl__openai_quirks_t openai_quirks[] = {
    { "deepseek", openai_drop_deepseek, false },
    { "mistral", openai_drop_mistral, false },
    { "groq", openai_drop_groq, false },
    { "together", NULL, true },
    { "fireworks", NULL, true },
    { "xai", NULL, false },
    { "openrouter", NULL, true },
    { "perplexity", openai_drop_perplexity, false },
    { "cerebras", openai_drop_cerebras, false },
    { "ollama", NULL, false },
    { "vllm", NULL, false },
};

const sl_provider_ops_t sl_provider_openai = {
    .kind = "openai",
    .default_base_url = NULL,
    .conf_parse = NULL,
    .build_request = openai_build_request,
    .parse_response = sl__openai_parse_response,
    .stream_event = openai_stream_event,
    .map_error = sl__openai_map_error,
};

/* One preset: the OpenAI hooks; its quirks are found by kind in openai_quirks[]. */
#define openai_preset(name, url)                     \
    const sl_provider_ops_t sl_provider_##name = {   \
        .kind = #name,                               \
        .default_base_url = url,                     \
        .conf_parse = openai_preset_conf,            \
        .build_request = openai_build_request,       \
        .parse_response = sl__openai_parse_response, \
        .stream_event = openai_stream_event,         \
        .map_error = sl__openai_map_error,           \
    }

openai_preset(deepseek, "https://api.deepseek.com/v1");
openai_preset(mistral, "https://api.mistral.ai/v1");
openai_preset(groq, "https://api.groq.com/openai/v1");
openai_preset(together, "https://api.together.xyz/v1");
openai_preset(fireworks, "https://api.fireworks.ai/inference/v1");
openai_preset(xai, "https://api.x.ai/v1");
openai_preset(openrouter, "https://openrouter.ai/api/v1");
openai_preset(perplexity, "https://api.perplexity.ai");
openai_preset(cerebras, "https://api.cerebras.ai/v1");
openai_preset(ollama, "http://127.0.0.1:11434/v1");
openai_preset(vllm, NULL);


/* A preset's ext: a copy of its row of openai_quirks[]. */
static int
openai_preset_conf(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf)
{
    const sl_provider_conf_t *p = sl_conf_current_provider(cx);
    sl__openai_quirks_t *q;

    for (size_t i = 0; i < sizeof(openai_quirks) / sizeof(openai_quirks[0]); i++) {
        if (p != NULL && strcmp(openai_quirks[i].kind, p->ops->kind) == 0) {
            q = sl_palloc(sl_conf_pool(cx), sizeof(*q));
            *q = openai_quirks[i];
            *conf = q;
            return 0;
        }
    }
    return sl_conf_errorf(cx, node, "no quirks entry for this OpenAI-compatible kind");
}


static int
openai_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out)
{
    const sl_provider_conf_t *p = call->target->provider;
    const char *endpoint = sl__openai_endpoint_path(call->endpoint);
    const char *auth = NULL;

    if (endpoint == NULL) {
        return SL_EDENIED;
    }
    if (p->api_key.value != NULL) {
        auth = sl_psprintf(call->pool, "Bearer %s", p->api_key.value);
    }
    return sl__openai_build(call, conf, sl_psprintf(call->pool, "%s%s", p->base_path, endpoint),
                            auth != NULL ? "authorization" : NULL, auth, out);
}


const char *
sl__openai_endpoint_path(sl_endpoint_e endpoint)
{
    switch (endpoint) {
    case SL_ENDPOINT_CHAT:
        return "/chat/completions";
    case SL_ENDPOINT_EMBEDDINGS:
        return "/embeddings";
    default:
        return NULL;
    }
}


int
sl__openai_build(sl_call_t *call, const sl__openai_quirks_t *q, const char *path,
                 const char *auth_name, const char *auth_value, sl_upstream_req_t *out)
{
    sl_http_header_t *h;
    sl_json_edit_t *ed;
    sl_buf_t dropped = SL_BUF_INIT;
    sl_str_t body;
    size_t ned;
    size_t n = 0;
    int rc;

    if (sl_json_type(call->doc, call->model) != SL_JSON_STRING
        || sl_json_type(call->doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return SL_EPARSE; /* a call the proxy did not read */
    }
    ed = sl_palloc(call->pool, sizeof(*ed) * (sl_json_size(call->doc, SL_JSON_ROOT) + 2));
    ned = openai_edits(call, q, ed, &dropped);
    rc = sl_json_splice(call->pool, call->raw, ed, ned, &body);
    if (rc == 0 && dropped.len > 0) {
        sl_log(&sl_log_main, SL_LOG_INFO, 0,
               "provider \"%s\" (kind %s) does not take %.*s: dropped from request %s",
               call->target->provider->name, q->kind, (int) dropped.len, dropped.p,
               call->request_id != NULL ? call->request_id : "-");
    }
    sl_buf_free(&dropped);
    if (rc < 0) {
        return SL_EPARSE;
    }

    h = sl_palloc(call->pool, sizeof(*h) * (call->nheaders + 2));
    for (size_t i = 0; i < call->nheaders; i++) {
        h[n++] = call->headers[i];
    }
    h[n].name = sl_str_lit("content-type");
    h[n++].value = sl_str_lit("application/json");
    if (auth_name != NULL) {
        h[n].name = (sl_str_t){ auth_name, strlen(auth_name) };
        h[n].value = (sl_str_t){ auth_value, strlen(auth_value) };
        n++;
    }
    out->method = "POST";
    out->path = path;
    out->headers = h;
    out->nheaders = n;
    out->body = body.p;
    out->body_len = body.len;
    return 0;
}


/*
 * The edits of one request, in source order: one pass over the body's
 * members replaces the model's value, removes the chat members q drops
 * (each with the comma before it, or with the one after it while no member
 * before it was kept) and makes stream_options ask for usage; a missing
 * stream_options is added at the end. The dropped names go to dropped,
 * comma-separated.
 */
static size_t
openai_edits(const sl_call_t *call, const sl__openai_quirks_t *q, sl_json_edit_t *ed,
             sl_buf_t *dropped)
{
    const sl_json_t *doc = call->doc;
    bool chat = call->endpoint == SL_ENDPOINT_CHAT;
    bool usage = call->stream && chat;
    bool kept = false;
    size_t prev_end = 0;
    size_t ned = 0;
    sl_str_t name;

    for (int k = sl_json_first(doc, SL_JSON_ROOT); k >= 0; k = sl_json_next(doc, SL_JSON_ROOT, k)) {
        int v = sl_json_key_value(doc, k);
        sl_str_t raw = sl_json_raw(doc, v);
        size_t vstart = (size_t) (raw.p - call->raw.p);
        size_t vend = vstart + raw.len;

        if (v == call->model) {
            ed[ned].start = vstart;
            ed[ned].end = vend;
            ed[ned].text = (sl_str_t){ call->target->model, strlen(call->target->model) };
            ed[ned].quote = true;
            ned++;
        } else if (chat && openai_drops(q, doc, k, call->pool, &name)) {
            int next = sl_json_next(doc, SL_JSON_ROOT, k);

            ed[ned].quote = false;
            ed[ned].text = sl_str_lit("");
            if (kept) {
                ed[ned].start = prev_end;
                ed[ned].end = vend;
                prev_end = vend;
            } else {
                ed[ned].start = sl_json_offset(doc, k);
                ed[ned].end = next >= 0 ? sl_json_offset(doc, next) : vend;
            }
            ned++;
            if (v == call->stream_options) {
                usage = false;
            }
            if (dropped->len > 0) {
                sl_buf_puts(dropped, ", ");
            }
            sl_buf_append(dropped, name.p, name.len);
            continue;
        } else if (usage && v == call->stream_options) {
            ned += openai_include_usage(call, &ed[ned]);
            usage = false;
        }
        kept = true;
        prev_end = vend;
    }
    if (usage && call->stream_options < 0 && !openai_drops(q, NULL, -1, NULL, NULL)) {
        ned += openai_include_usage(call, &ed[ned]);
    }
    return ned;
}


/*
 * Whether q drops the member whose key is key (name gets the decoded key).
 * With key -1, whether q drops stream_options.
 */
static bool
openai_drops(const sl__openai_quirks_t *q, const sl_json_t *doc, int key, sl_pool_t *pool,
             sl_str_t *name)
{
    sl_str_t s = sl_str_lit("stream_options");

    if (q == NULL || q->drop == NULL) {
        return false;
    }
    if (key >= 0 && sl_json_string(doc, key, pool, &s) < 0) {
        return false;
    }
    for (size_t i = 0; q->drop[i] != NULL; i++) {
        if (strlen(q->drop[i]) == s.len && memcmp(q->drop[i], s.p, s.len) == 0) {
            if (name != NULL) {
                *name = s;
            }
            return true;
        }
    }
    return false;
}


/*
 * The edit that makes stream_options.include_usage true: replaces the value
 * that is there, adds the member to the client's object, or sets the whole
 * stream_options (replaced when it is not an object, added before the
 * body's closing brace when absent: the body has a model, so a comma fits).
 */
static size_t
openai_include_usage(const sl_call_t *call, sl_json_edit_t *ed)
{
    const sl_json_t *doc = call->doc;
    int so = call->stream_options;
    sl_str_t raw;

    ed->quote = false;
    if (sl_json_type(doc, so) == SL_JSON_OBJECT) {
        int iu = sl_json_get(doc, so, "include_usage");

        if (iu >= 0) {
            raw = sl_json_raw(doc, iu);
            ed->start = (size_t) (raw.p - call->raw.p);
            ed->end = ed->start + raw.len;
            ed->text = sl_str_lit("true");
            return 1;
        }
        ed->start = sl_json_offset(doc, so) + 1;
        ed->end = ed->start;
        ed->text = sl_json_size(doc, so) > 0 ? sl_str_lit("\"include_usage\":true,")
                                             : sl_str_lit("\"include_usage\":true");
        return 1;
    }
    if (so >= 0) {
        raw = sl_json_raw(doc, so);
        ed->start = (size_t) (raw.p - call->raw.p);
        ed->end = ed->start + raw.len;
        ed->text = sl_str_lit("{\"include_usage\":true}");
        return 1;
    }
    raw = sl_json_raw(doc, SL_JSON_ROOT);
    ed->start = (size_t) (raw.p - call->raw.p) + raw.len - 1;
    ed->end = ed->start;
    ed->text = sl_str_lit(",\"stream_options\":{\"include_usage\":true}");
    return 1;
}


/* A usage count: json_integer_value()'s reading (0 for anything but an integer). */
static uint64_t
openai_uint(const sl_json_t *doc, int v)
{
    int64_t n;

    return sl_json_int(doc, v, &n) == 0 ? (uint64_t) n : 0;
}


/* Decoded length of string v (json_string_length()), 0 for anything else. */
static size_t
openai_string_len(const sl_json_t *doc, int v)
{
    size_t len;

    return sl_json_string_len(doc, v, &len) == 0 ? len : 0;
}


static void
openai_read_usage(const sl_json_t *doc, int usage, sl_usage_t *u)
{
    if (sl_json_type(doc, usage) != SL_JSON_OBJECT) {
        return;
    }
    u->known = true;
    u->prompt_tokens = openai_uint(doc, sl_json_get(doc, usage, "prompt_tokens"));
    u->completion_tokens = openai_uint(doc, sl_json_get(doc, usage, "completion_tokens"));
    u->cached_tokens =
        openai_uint(doc, sl_json_path(doc, usage, "prompt_tokens_details.cached_tokens"));
}


int
sl__openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_reply_t *out)
{
    sl_json_t *doc = sl_json_create(call->pool);
    sl_json_type_e type;
    sl_str_t model;

    (void) conf;
    /* the client gets the provider's bytes unchanged; only usage is read */
    out->body = body->p;
    out->body_len = body->len;
    if (sl_json_parse(doc, body->p, body->len, NULL) < 0) {
        return SL_EUPSTREAM;
    }
    type = sl_json_type(doc, SL_JSON_ROOT);
    if (type != SL_JSON_OBJECT && type != SL_JSON_ARRAY) {
        return SL_EUPSTREAM;
    }
    openai_read_usage(doc, sl_json_get(doc, SL_JSON_ROOT, "usage"), &out->usage);
    if (sl_json_string(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), call->pool, &model) == 0) {
        out->served_model = sl_pstrndup(call->pool, model.p, model.len);
    }
    return 0;
}


/* conf is NULL for openai itself, a preset's quirks otherwise. */
static int
openai_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_chunks_t *out)
{
    return sl__openai_stream(st, ev, conf, out);
}


/*
 * OpenAI's own events go to the client unchanged, with these exceptions:
 * the final usage-only chunk (choices empty) is dropped when the client did
 * not ask for usage (sluice asked on its behalf), other empty chunks are
 * dropped when q says the provider sends them, and "[DONE]" is held back
 * for the core to send once the ledger row is written.
 */
int
sl__openai_stream(sl_stream_t *st, const sl_sse_event_t *ev, const sl__openai_quirks_t *q,
                  sl_chunks_t *out)
{
    sl_json_t *doc = st->priv;
    sl_json_type_e type;
    bool drop = false;

    if (sl_str_eq(ev->data, "[DONE]")) {
        st->done = true;
        return 0;
    }
    if (doc == NULL) {
        /* one reader for the whole stream: each event reuses its tokens */
        doc = sl_json_create(st->call->pool);
        st->priv = doc;
    }
    type = sl_json_parse(doc, ev->data.p, ev->data.len, NULL) == 0 ? sl_json_type(doc, SL_JSON_ROOT)
                                                                   : SL_JSON_NONE;
    if (type == SL_JSON_OBJECT || type == SL_JSON_ARRAY) {
        int usage = sl_json_get(doc, SL_JSON_ROOT, "usage");
        int choices = sl_json_get(doc, SL_JSON_ROOT, "choices");
        sl_str_t model;

        if (sl_json_type(doc, usage) == SL_JSON_OBJECT) {
            openai_read_usage(doc, usage, &st->usage);
            drop = !st->client_wants_usage && sl_json_type(doc, choices) == SL_JSON_ARRAY
                   && sl_json_size(doc, choices) == 0;
        } else if (q != NULL && q->skip_empty_chunks && sl_json_type(doc, choices) == SL_JSON_ARRAY
                   && sl_json_size(doc, choices) == 0) {
            drop = true;
        }
        if (sl_json_type(doc, choices) != SL_JSON_ARRAY) {
            choices = -1;
        }
        for (int c = sl_json_first(doc, choices); c >= 0; c = sl_json_next(doc, choices, c)) {
            int delta = sl_json_get(doc, c, "delta");
            int calls = sl_json_get(doc, delta, "tool_calls");

            st->content_bytes += openai_string_len(doc, sl_json_get(doc, delta, "content"));
            if (sl_json_type(doc, calls) != SL_JSON_ARRAY) {
                continue;
            }
            for (int k = sl_json_first(doc, calls); k >= 0; k = sl_json_next(doc, calls, k)) {
                st->content_bytes +=
                    openai_string_len(doc, sl_json_path(doc, k, "function.arguments"));
            }
        }
        if (st->served_model == NULL
            && sl_json_string(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), st->call->pool, &model)
                   == 0) {
            st->served_model = sl_pstrndup(st->call->pool, model.p, model.len);
        }
    }
    if (drop) {
        return 0;
    }
    if (ev->event.len > 0) {
        sl_buf_puts(out->out, "event: ");
        sl_buf_append(out->out, ev->event.p, ev->event.len);
        sl_buf_puts(out->out, "\n");
    }
    /* one "data:" line per line: the parser joined multi-line data with LF, and
     * a bare line in the output would be a field the client does not expect
     * (fuzz_openai_stream) */
    for (const char *p = ev->data.p, *end = ev->data.p + ev->data.len;;) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        const char *stop = nl != NULL ? nl : end;

        sl_buf_puts(out->out, "data: ");
        sl_buf_append(out->out, p, (size_t) (stop - p));
        sl_buf_puts(out->out, "\n");
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    sl_buf_puts(out->out, "\n");
    return 0;
}


int
sl__openai_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                     sl_error_t *out)
{
    json_t *root = NULL;
    json_t *err = NULL;
    const char *message = NULL;

    (void) conf;
    if (body->len > 0) {
        root = json_loadb(body->p, body->len, 0, NULL);
        err = json_object_get(root, "error");
    }
    if (json_is_object(err)) {
        json_t *v = json_object_get(err, "message");

        if (json_is_string(v)) {
            message = sl_pstrdup(pool, json_string_value(v));
        }
        v = json_object_get(err, "type");
        if (json_is_string(v)) {
            out->type = sl_pstrdup(pool, json_string_value(v));
        }
        v = json_object_get(err, "code");
        if (json_is_string(v)) {
            out->code = sl_pstrdup(pool, json_string_value(v));
        }
        v = json_object_get(err, "param");
        if (json_is_string(v)) {
            out->param = sl_pstrdup(pool, json_string_value(v));
        }
    } else if (json_is_string(err)) {
        message = sl_pstrdup(pool, json_string_value(err));
    }
    json_decref(root);

    out->message =
        message != NULL ? message : sl_psprintf(pool, "upstream returned HTTP %d", status);
    out->status = status;
    out->retryable = false;
    if (status == 401 || status == 403) {
        /* the provider rejected the gateway's own key: not the client's fault, and
         * the provider's message may quote part of that key */
        out->status = 502;
        out->type = "api_error";
        out->code = "upstream_auth_failed";
        out->param = NULL;
        out->message =
            sl_psprintf(pool, "the provider rejected the gateway's credentials (HTTP %d)", status);
    } else if (status == 408) {
        out->status = 504;
        out->retryable = true;
    } else if (status == 429) {
        out->retryable = true;
    } else if (status == 503 || status == 529) {
        out->status = 503;
        out->retryable = true;
    } else if (status >= 500) {
        out->status = 502;
        out->retryable = true;
    } else if (status < 400) {
        out->status = 502;
    }
    if (out->type == NULL) {
        out->type = out->status >= 500 ? "api_error" : "invalid_request_error";
    }
    if (out->status >= 500) {
        /* one type for every provider-side failure, whatever the provider called it */
        out->type = "api_error";
    }
    return 0;
}
