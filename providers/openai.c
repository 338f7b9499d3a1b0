/*
 * OpenAI wire format: the internal request already is one, so the adapter
 * only rewrites `model` to the target's name and puts in the credential;
 * answers and stream chunks are read into typed answers and events, and a
 * chat client gets the provider's own bytes (raw) beside them. The
 * OpenAI-compatible family, Azure and echo reuse it. No DOM on this path:
 * the request's bytes are spliced (core/base/json.h), answers and chunks are
 * read with the token reader, and every string in the typed output is the
 * provider's own literal.
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

#include "core/base/errno.h"
#include "core/base/log.h"
#include "providers/adapter_internal.h"
#include "providers/openai_internal.h"

#define OPENAI_MAX_INDEX 1023 /* choice and tool-call indexes taken (OpenAI's n is at most 128) */

/*
 * The members read from answers and chunks, each table in one pass over
 * its object (sl__adapter_members()).
 */
enum { OA_ID = 0, OA_MODEL, OA_CREATED, OA_CHOICES, OA_USAGE, OA_ERROR, OA_NROOT };
enum { OA_INDEX = 0, OA_MESSAGE, OA_DELTA, OA_FINISH, OA_NCHOICE };
enum { OA_CONTENT = 0, OA_REASONING_CONTENT, OA_REASONING, OA_TOOL_CALLS, OA_NMESSAGE };
enum { OA_TINDEX = 0, OA_TID, OA_FUNCTION, OA_NTOOL };
enum { OA_NAME = 0, OA_ARGUMENTS, OA_NFUNCTION };
enum { OA_PROMPT = 0, OA_COMPLETION, OA_PROMPT_DETAILS, OA_COMPLETION_DETAILS, OA_NUSAGE };

static const sl_str_t openai_root_keys[OA_NROOT] = {
    sl_str_lit("id"),      sl_str_lit("model"), sl_str_lit("created"),
    sl_str_lit("choices"), sl_str_lit("usage"), sl_str_lit("error"),
};
static const sl_str_t openai_choice_keys[OA_NCHOICE] = {
    sl_str_lit("index"),
    sl_str_lit("message"),
    sl_str_lit("delta"),
    sl_str_lit("finish_reason"),
};
static const sl_str_t openai_message_keys[OA_NMESSAGE] = {
    sl_str_lit("content"),
    sl_str_lit("reasoning_content"),
    sl_str_lit("reasoning"),
    sl_str_lit("tool_calls"),
};
static const sl_str_t openai_tool_keys[OA_NTOOL] = {
    sl_str_lit("index"),
    sl_str_lit("id"),
    sl_str_lit("function"),
};
static const sl_str_t openai_function_keys[OA_NFUNCTION] = {
    sl_str_lit("name"),
    sl_str_lit("arguments"),
};
static const sl_str_t openai_usage_keys[OA_NUSAGE] = {
    sl_str_lit("prompt_tokens"),
    sl_str_lit("completion_tokens"),
    sl_str_lit("prompt_tokens_details"),
    sl_str_lit("completion_tokens_details"),
};

/* Per-stream state (st->priv), request pool. */
typedef struct openai_stream {
    sl_json_t *doc; /* one reader for the whole stream: each event reuses its tokens */
    sl_buf_t *raw;  /* the current event as a chat client gets it */
    bool started;   /* SL_EV_START went out */
} openai_stream_t;

static int openai_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static int openai_preset_conf(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf);
static size_t openai_edits(const sl_call_t *call, const sl__openai_quirks_t *q, sl_json_edit_t *ed,
                           sl_buf_t *dropped);
static bool openai_internal(const sl_json_t *doc, int key);
static bool openai_drops(const sl__openai_quirks_t *q, const sl_json_t *doc, int key,
                         sl_pool_t *pool, sl_str_t *name);
static size_t openai_include_usage(const sl_call_t *call, sl_json_edit_t *ed);
static int openai_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                               sl_evs_t *out);
static openai_stream_t *openai_stream_state(sl_stream_t *st);
static void openai_stream_choice(sl_stream_t *st, openai_stream_t *s, int c, int pos,
                                 sl_evs_t *out);
static void openai_stream_error(sl_stream_t *st, const sl_json_t *doc, int err, sl_evs_t *out);
static bool openai_index(const sl_json_t *doc, int v, int pos, unsigned *out);
static int openai_choice(sl_call_t *call, const sl_json_t *doc, int c, int pos, sl_choice_t *out);
static sl_str_t openai_reasoning(const sl_json_t *doc, const int *m, size_t *len);
static sl_str_t openai_call_id(sl_pool_t *pool, sl_str_t id, unsigned choice, unsigned index);
static sl_finish_e openai_finish(const sl_json_t *doc, int v);
static void openai_read_usage(const sl_json_t *doc, int usage, sl_usage_t *u);
static void openai_classify(int status, sl_pool_t *pool, sl_error_t *out);

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
    .api = SL_API_CHAT,
    .native_apis = 1u << SL_API_RESPONSES,
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
        .api = SL_API_CHAT,                          \
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
    const char *endpoint = sl__openai_api_path(call->api);
    const char *auth = NULL;

    if (endpoint == NULL) {
        return SL_EDENIED;
    }
    if (call->api_key != NULL && call->api_key->value != NULL) {
        auth = sl_pstrcat(call->pool, "Bearer ", call->api_key->value);
    }
    if (call->client_api == SL_API_RESPONSES && sl_provider_speaks(p->ops, SL_API_RESPONSES)) {
        return sl__openai_responses_build(call, call->target->model,
                                          sl_pstrcat(call->pool, p->base_path, "/responses"),
                                          auth != NULL ? "authorization" : NULL, auth, out);
    }
    return sl__openai_build(call, conf, sl_pstrcat(call->pool, p->base_path, endpoint),
                            auth != NULL ? "authorization" : NULL, auth, out);
}


const char *
sl__openai_api_path(sl_api_e api)
{
    switch (api) {
    case SL_API_CHAT:
        return "/chat/completions";
    case SL_API_EMBEDDINGS:
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
        return SL_EPARSE; /* a call the frontend did not read */
    }
    ed = sl_palloc(call->pool, sizeof(*ed) * (sl_json_size(call->doc, SL_JSON_ROOT) + 2));
    ned = openai_edits(call, q, ed, &dropped);
    if (ned == 0) {
        body = call->raw; /* the client's body as it is: not copied (sent from there) */
        rc = 0;
    } else {
        rc = sl_json_splice(call->pool, call->raw, ed, ned, &body);
    }
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
    bool chat = call->api == SL_API_CHAT;
    bool usage = call->stream && chat;
    bool kept = false;
    size_t prev_end = 0;
    size_t ned = 0;
    sl_str_t name = sl_str_null;

    for (int k = sl_json_first(doc, SL_JSON_ROOT); k >= 0; k = sl_json_next(doc, SL_JSON_ROOT, k)) {
        int v = sl_json_key_value(doc, k);
        sl_str_t raw = sl_json_raw(doc, v);
        size_t vstart = (size_t) (raw.p - call->raw.p);
        size_t vend = vstart + raw.len;

        if (v == call->model) {
            if (!sl__adapter_same_string(raw, call->target->model)) {
                ed[ned].start = vstart;
                ed[ned].end = vend;
                ed[ned].text = (sl_str_t){ call->target->model, strlen(call->target->model) };
                ed[ned].quote = true;
                ned++;
            }
        } else if (chat
                   && (openai_internal(doc, k) || openai_drops(q, doc, k, call->pool, &name))) {
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
            if (openai_internal(doc, k)) {
                continue; /* the gateway's own: never the provider's business */
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
 * Whether key names one of the internal body's own members ("sluice_...":
 * tool name maps, reasoning to carry back, the response id; see the
 * frontends), which no OpenAI-shaped provider is sent.
 */
static bool
openai_internal(const sl_json_t *doc, int key)
{
    sl_str_t raw = sl_json_raw(doc, key);

    return raw.len > 8 && memcmp(raw.p, "\"sluice_", 8) == 0;
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


/*
 * usage -> u: prompt and completion tokens, cached input
 * (prompt_tokens_details.cached_tokens) and reasoning output
 * (completion_tokens_details.reasoning_tokens).
 */
static void
openai_read_usage(const sl_json_t *doc, int usage, sl_usage_t *u)
{
    int v[OA_NUSAGE];

    if (sl_json_type(doc, usage) != SL_JSON_OBJECT) {
        return;
    }
    sl__adapter_members(doc, usage, openai_usage_keys, OA_NUSAGE, v);
    u->known = true;
    u->prompt_tokens = sl__adapter_uint(doc, v[OA_PROMPT]);
    u->completion_tokens = sl__adapter_uint(doc, v[OA_COMPLETION]);
    u->cached_tokens =
        sl__adapter_uint(doc, sl_json_get(doc, v[OA_PROMPT_DETAILS], "cached_tokens"));
    u->reasoning_tokens =
        sl__adapter_uint(doc, sl_json_get(doc, v[OA_COMPLETION_DETAILS], "reasoning_tokens"));
}


/* A choice or tool-call index: v when it is a small integer, else pos; false for neither. */
static bool
openai_index(const sl_json_t *doc, int v, int pos, unsigned *out)
{
    int64_t n;

    if (v < 0) {
        n = pos;
    } else if (sl_json_int(doc, v, &n) < 0) {
        return false;
    }
    if (n < 0 || n > OPENAI_MAX_INDEX) {
        return false;
    }
    *out = (unsigned) n;
    return true;
}


/* OpenAI's finish_reason string v -> sl_finish_e; NONE for null or absent. */
static sl_finish_e
openai_finish(const sl_json_t *doc, int v)
{
    sl_str_t r = sl_json_raw(doc, v);

    if (sl_json_type(doc, v) != SL_JSON_STRING) {
        return SL_FINISH_NONE;
    }
    r = (sl_str_t){ r.p + 1, r.len - 2 };
    if (sl_str_eq(r, "length")) {
        return SL_FINISH_LENGTH;
    }
    if (sl_str_eq(r, "tool_calls") || sl_str_eq(r, "function_call")) {
        return SL_FINISH_TOOL_CALLS;
    }
    if (sl_str_eq(r, "content_filter")) {
        return SL_FINISH_CONTENT_FILTER;
    }
    return SL_FINISH_STOP;
}


/*
 * Reasoning text of a message or delta: reasoning_content (DeepSeek, vLLM,
 * Together) or reasoning (OpenRouter, Groq, Ollama); an empty literal when
 * neither is a non-empty string.
 */
static sl_str_t
openai_reasoning(const sl_json_t *doc, const int *m, size_t *len)
{
    sl_str_t lit = sl__adapter_literal(doc, m[OA_REASONING_CONTENT], len);

    if (lit.len <= 2) {
        lit = sl__adapter_literal(doc, m[OA_REASONING], len);
    }
    return lit.len > 2 ? lit : sl_str_null;
}


/* id, or "call_<choice>_<index>" for a provider that sent none. */
static sl_str_t
openai_call_id(sl_pool_t *pool, sl_str_t id, unsigned choice, unsigned index)
{
    if (id.len >= 2) {
        return id;
    }
    return sl__adapter_quote(pool, sl_psprintf(pool, "call_%u_%u", choice, index));
}


int
sl__openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_answer_t *out)
{
    sl_json_t *doc = sl_json_create(call->pool);
    sl_json_type_e type;
    int v[OA_NROOT];
    int64_t created;
    int choices;
    bool skim;
    int n = 0;

    (void) conf;
    if (call->forwarded && call->client_api == SL_API_RESPONSES) {
        return sl__openai_responses_parse(call, body, out);
    }
    /* a client of the provider's own API gets its bytes unchanged */
    out->raw = (sl_str_t){ body->p != NULL ? body->p : "", body->len };
    out->raw_api = call->api;
    /* an answer that goes on as these bytes is read for its usage (embeddings: always) */
    skim = call->api == SL_API_EMBEDDINGS || (call->raw_answer && call->client_api == call->api);
    if (sl__adapter_parse_answer(doc, out->raw, skim) < 0) {
        return SL_EUPSTREAM;
    }
    type = sl_json_type(doc, SL_JSON_ROOT);
    if (type != SL_JSON_OBJECT && type != SL_JSON_ARRAY) {
        return SL_EUPSTREAM;
    }
    sl__adapter_members(doc, SL_JSON_ROOT, openai_root_keys, OA_NROOT, v);
    openai_read_usage(doc, v[OA_USAGE], &out->usage);
    if (call->api == SL_API_EMBEDDINGS) {
        return 0;
    }
    out->id = sl__adapter_literal(doc, v[OA_ID], NULL);
    out->model = sl__adapter_literal(doc, v[OA_MODEL], NULL);
    if (sl_json_int(doc, v[OA_CREATED], &created) == 0) {
        out->created = created;
    }
    choices = v[OA_CHOICES];
    if (skim || sl_json_type(doc, choices) != SL_JSON_ARRAY || sl_json_size(doc, choices) == 0) {
        return 0;
    }
    out->choices = sl_pcalloc(call->pool, sl_json_size(doc, choices) * sizeof(sl_choice_t));
    for (int c = sl_json_first(doc, choices); c >= 0; c = sl_json_next(doc, choices, c), n++) {
        if (openai_choice(call, doc, c, n, &out->choices[out->nchoices]) == 0) {
            out->nchoices++;
        }
    }
    return 0;
}


/* One choice of a chat.completion; SL_EPARSE for one that is not an object or has a bad index. */
static int
openai_choice(sl_call_t *call, const sl_json_t *doc, int c, int pos, sl_choice_t *out)
{
    int ch[OA_NCHOICE];
    int m[OA_NMESSAGE];
    int calls;
    int k = 0;

    if (sl_json_type(doc, c) != SL_JSON_OBJECT) {
        return SL_EPARSE;
    }
    sl__adapter_members(doc, c, openai_choice_keys, OA_NCHOICE, ch);
    if (!openai_index(doc, ch[OA_INDEX], pos, &out->index)) {
        return SL_EPARSE;
    }
    sl__adapter_members(doc, ch[OA_MESSAGE], openai_message_keys, OA_NMESSAGE, m);
    out->text = sl__adapter_literal(doc, m[OA_CONTENT], NULL);
    out->reasoning = openai_reasoning(doc, m, NULL);
    out->finish = openai_finish(doc, ch[OA_FINISH]);
    calls = m[OA_TOOL_CALLS];
    if (sl_json_type(doc, calls) != SL_JSON_ARRAY || sl_json_size(doc, calls) == 0) {
        return 0;
    }
    out->tools = sl_pcalloc(call->pool, sl_json_size(doc, calls) * sizeof(sl_tool_call_t));
    for (int t = sl_json_first(doc, calls); t >= 0; t = sl_json_next(doc, calls, t), k++) {
        sl_tool_call_t *tc = &out->tools[out->ntools];
        int tv[OA_NTOOL];
        int fv[OA_NFUNCTION];

        sl__adapter_members(doc, t, openai_tool_keys, OA_NTOOL, tv);
        sl__adapter_members(doc, tv[OA_FUNCTION], openai_function_keys, OA_NFUNCTION, fv);
        tc->name = sl__adapter_literal(doc, fv[OA_NAME], NULL);
        if (tc->name.len < 2) {
            continue; /* not a function call sluice can carry */
        }
        tc->id = openai_call_id(call->pool, sl__adapter_literal(doc, tv[OA_TID], NULL), out->index,
                                (unsigned) k);
        tc->args = sl__adapter_literal(doc, fv[OA_ARGUMENTS], NULL);
        if (tc->args.p == NULL && sl_json_type(doc, fv[OA_ARGUMENTS]) == SL_JSON_OBJECT) {
            /* arguments as an object (some compatible servers): its text */
            sl__adapter_json_literal(call->pool, doc, fv[OA_ARGUMENTS], &tc->args);
        }
        out->ntools++;
    }
    return 0;
}


/* conf is NULL for openai itself, a preset's quirks otherwise. */
static int
openai_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_evs_t *out)
{
    if (st->call->forwarded && st->call->client_api == SL_API_RESPONSES) {
        return sl__openai_responses_stream(st, ev, out);
    }
    return sl__openai_stream(st, ev, conf, out);
}


static openai_stream_t *
openai_stream_state(sl_stream_t *st)
{
    openai_stream_t *s = st->priv;

    if (s == NULL) {
        s = sl_pcalloc(st->call->pool, sizeof(*s));
        s->doc = sl_json_create(st->call->pool);
        if (st->call->client_api == SL_API_CHAT) {
            s->raw = sl__adapter_buf(st->call->pool);
        }
        st->priv = s;
    }
    return s;
}


/*
 * One chunk -> events: SL_EV_START once (the first JSON chunk's id and
 * model), then per choice TEXT, REASONING, TOOL_CALL (a tool-call delta
 * with an id or a name) and TOOL_ARGS (its arguments) and FINISH, then
 * USAGE when the chunk has usage. "[DONE]" is SL_EV_DONE; a chunk holding
 * "error" is SL_EV_ERROR (the stream failed). A chat client gets each event
 * raw as the provider sent it, with these exceptions: the final usage-only
 * chunk (choices empty) when the client did not ask for usage (sluice asked
 * on its behalf), other empty chunks when q says the provider sends them,
 * and "[DONE]" and errors, which are the frontend's and the driver's to
 * write. Data that is not JSON passes raw, with no event.
 */
int
sl__openai_stream(sl_stream_t *st, const sl_sse_event_t *ev, const sl__openai_quirks_t *q,
                  sl_evs_t *out)
{
    openai_stream_t *s = openai_stream_state(st);
    const sl_json_t *doc = s->doc;
    sl_json_type_e type;
    bool drop = false;
    sl_ev_t e;

    if (s->raw != NULL) {
        sl_buf_clear(s->raw);
        out->raw = sl__adapter_buf_str(s->raw);
        out->raw_api = SL_API_CHAT;
    }
    if (st->done || st->failed) {
        return 0;
    }
    if (sl_str_eq(ev->data, "[DONE]")) {
        st->done = true;
        memset(&e, 0, sizeof(e));
        e.type = SL_EV_DONE;
        sl_evs_push(out, &e);
        return 0;
    }
    type = sl_json_parse(s->doc, ev->data.p, ev->data.len, NULL) == 0
               ? sl_json_type(doc, SL_JSON_ROOT)
               : SL_JSON_NONE;
    if (type == SL_JSON_OBJECT) {
        int v[OA_NROOT];
        int choices;
        bool empty;
        int pos = 0;

        sl__adapter_members(doc, SL_JSON_ROOT, openai_root_keys, OA_NROOT, v);
        choices = v[OA_CHOICES];
        empty = sl_json_type(doc, choices) == SL_JSON_ARRAY && sl_json_size(doc, choices) == 0;
        if (sl_json_type(doc, v[OA_ERROR]) == SL_JSON_OBJECT
            || sl_json_type(doc, v[OA_ERROR]) == SL_JSON_STRING) {
            openai_stream_error(st, doc, v[OA_ERROR], out);
            return 0;
        }
        if (!s->started) {
            int model = v[OA_MODEL];
            sl_str_t name;

            s->started = true;
            memset(&e, 0, sizeof(e));
            e.type = SL_EV_START;
            e.id = sl__adapter_keep(st->call->pool, sl__adapter_literal(doc, v[OA_ID], NULL));
            e.name = sl__adapter_keep(st->call->pool, sl__adapter_literal(doc, model, NULL));
            sl_evs_push(out, &e);
            if (st->served_model == NULL
                && sl_json_string(doc, model, st->call->pool, &name) == 0) {
                st->served_model = sl_pstrndup(st->call->pool, name.p, name.len);
            }
        }
        if (sl_json_type(doc, choices) != SL_JSON_ARRAY) {
            choices = -1;
        }
        for (int c = sl_json_first(doc, choices); c >= 0; c = sl_json_next(doc, choices, c)) {
            openai_stream_choice(st, s, c, pos++, out);
        }
        if (sl_json_type(doc, v[OA_USAGE]) == SL_JSON_OBJECT) {
            sl_usage_t *u = sl_palloc(st->call->pool, sizeof(*u));

            openai_read_usage(doc, v[OA_USAGE], &st->usage);
            *u = st->usage;
            memset(&e, 0, sizeof(e));
            e.type = SL_EV_USAGE;
            e.usage = u;
            sl_evs_push(out, &e);
            drop = empty && !st->call->client_wants_usage;
        } else if (q != NULL && q->skip_empty_chunks && empty) {
            drop = true;
        }
    }
    if (s->raw != NULL && !drop) {
        sl__adapter_sse(s->raw, ev->event, ev->data);
        out->raw = sl__adapter_buf_str(s->raw);
    }
    return 0;
}


/* One element of a chunk's choices -> its events. */
static void
openai_stream_choice(sl_stream_t *st, openai_stream_t *s, int c, int pos, sl_evs_t *out)
{
    const sl_json_t *doc = s->doc;
    sl_pool_t *pool = st->call->pool;
    int ch[OA_NCHOICE];
    int d[OA_NMESSAGE];
    unsigned index;
    sl_ev_t e;
    size_t len = 0;
    int calls;
    int k = 0;

    sl__adapter_members(doc, c, openai_choice_keys, OA_NCHOICE, ch);
    if (sl_json_type(doc, c) != SL_JSON_OBJECT || !openai_index(doc, ch[OA_INDEX], pos, &index)) {
        return;
    }
    sl__adapter_members(doc, ch[OA_DELTA], openai_message_keys, OA_NMESSAGE, d);
    memset(&e, 0, sizeof(e));
    e.choice = index;
    e.text = openai_reasoning(doc, d, &len);
    if (e.text.len > 2) {
        e.type = SL_EV_REASONING;
        e.text = sl__adapter_keep(pool, e.text);
        sl_evs_push(out, &e);
    }
    e.text = sl__adapter_literal(doc, d[OA_CONTENT], &len);
    if (e.text.len > 2) {
        e.type = SL_EV_TEXT;
        e.text = sl__adapter_keep(pool, e.text);
        sl_evs_push(out, &e);
        st->content_bytes += len;
    }
    calls = sl_json_type(doc, d[OA_TOOL_CALLS]) == SL_JSON_ARRAY ? d[OA_TOOL_CALLS] : -1;
    for (int t = sl_json_first(doc, calls); t >= 0; t = sl_json_next(doc, calls, t), k++) {
        int tv[OA_NTOOL];
        int fv[OA_NFUNCTION];
        sl_str_t id;
        sl_str_t name;

        sl__adapter_members(doc, t, openai_tool_keys, OA_NTOOL, tv);
        sl__adapter_members(doc, tv[OA_FUNCTION], openai_function_keys, OA_NFUNCTION, fv);
        memset(&e, 0, sizeof(e));
        e.choice = index;
        if (!openai_index(doc, tv[OA_TINDEX], k, &e.index)) {
            continue;
        }
        id = sl__adapter_literal(doc, tv[OA_TID], NULL);
        name = sl__adapter_literal(doc, fv[OA_NAME], NULL);
        if (id.len >= 2 || name.len >= 2) {
            /* the delta that opens a tool call carries its id and name */
            e.type = SL_EV_TOOL_CALL;
            e.id = openai_call_id(pool, sl__adapter_keep(pool, id), index, e.index);
            e.name = name.len >= 2 ? sl__adapter_keep(pool, name) : sl_str_lit("\"\"");
            sl_evs_push(out, &e);
            e.id = e.name = sl_str_null;
        }
        e.text = sl__adapter_literal(doc, fv[OA_ARGUMENTS], &len);
        if (e.text.len > 2) {
            e.type = SL_EV_TOOL_ARGS;
            e.text = sl__adapter_keep(pool, e.text);
            sl_evs_push(out, &e);
            st->content_bytes += len;
        }
    }
    memset(&e, 0, sizeof(e));
    e.finish = openai_finish(doc, ch[OA_FINISH]);
    if (e.finish != SL_FINISH_NONE) {
        e.type = SL_EV_FINISH;
        e.choice = index;
        sl_evs_push(out, &e);
    }
}


/*
 * An in-band {"error": {...}} (or {"error": "text"}) -> SL_EV_ERROR. Its
 * status is error.code when that is an HTTP status (vLLM and others put
 * one there), else what its type says (rate limit, invalid request),
 * else 502; then as map_error would map that status.
 */
static void
openai_stream_error(sl_stream_t *st, const sl_json_t *doc, int err, sl_evs_t *out)
{
    sl_pool_t *pool = st->call->pool;
    sl_error_t *e = sl_pcalloc(pool, sizeof(*e));
    sl_str_t s;
    int64_t code;
    int status = 502;
    sl_ev_t ev;

    if (sl_json_string(doc, err, pool, &s) == 0) {
        e->message = sl_pstrndup(pool, s.p, s.len);
    }
    if (sl_json_string(doc, sl_json_get(doc, err, "message"), pool, &s) == 0) {
        e->message = sl_pstrndup(pool, s.p, s.len);
    }
    if (sl_json_string(doc, sl_json_get(doc, err, "type"), pool, &s) == 0) {
        e->type = sl_pstrndup(pool, s.p, s.len);
        if (sl_str_eq(s, "rate_limit_error") || sl_str_eq(s, "rate_limit_exceeded")) {
            status = 429;
        } else if (sl_str_eq(s, "invalid_request_error")) {
            status = 400;
        }
    }
    if (sl_json_string(doc, sl_json_get(doc, err, "code"), pool, &s) == 0) {
        e->code = sl_pstrndup(pool, s.p, s.len);
    } else if (sl_json_int(doc, sl_json_get(doc, err, "code"), &code) == 0 && code >= 400
               && code <= 599) {
        status = (int) code;
    }
    if (sl_json_string(doc, sl_json_get(doc, err, "param"), pool, &s) == 0) {
        e->param = sl_pstrndup(pool, s.p, s.len);
    }
    if (e->message == NULL) {
        e->message = "the provider reported an error in the stream";
    }
    openai_classify(status, pool, e);
    st->failed = true;
    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_ERROR;
    ev.error = e;
    sl_evs_push(out, &ev);
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
    openai_classify(status, pool, out);
    return 0;
}


/*
 * The provider's status -> the client's status, type and retryability
 * (out->type and message as the provider gave them, or NULL).
 */
static void
openai_classify(int status, sl_pool_t *pool, sl_error_t *out)
{
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
}
