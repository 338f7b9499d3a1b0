/*
 * The mock's Gemini API (generativelanguage.googleapis.com):
 * POST /v1beta/models/{model}:{method} (and /v1/models/...) for
 * generateContent, streamGenerateContent (SSE with ?alt=sse, else one JSON
 * array sent piece by piece), countTokens, embedContent and
 * batchEmbedContents, with Google's authentication (x-goog-api-key or
 * ?key=) and error shape {"error":{"code","message","status"}}. The answers
 * mirror the OpenAI endpoint's (same reply text, same tool trigger, same
 * embedding values for the same text).
 */
#include "test/mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define GEM_CTYPE_JSON "application/json; charset=UTF-8"
#define GEM_CTYPE_SSE  "text/event-stream"

/* What one generateContent call answers, shared by the plain and the streamed forms. */
typedef struct gem_gen {
    unsigned long long id;
    sl_str_t model;
    sl_str_t reply;     /* the text, or the call's args as JSON */
    sl_str_t tool_name; /* empty: a text reply */
    const char *finish;
    long long prompt_tokens; /* cached ones included, as Google counts them */
    long long output_tokens;
    unsigned long long cache_read;
    bool stream_error;
    bool sse; /* alt=sse; otherwise a streamed JSON array */
} gem_gen_t;

static sl_str_t gem_query(const sl_mock_req_t *r, const char *name);
static const char *gem_status(int status);
static void gem_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
                      const sl_mock_faults_t *f, const char *message);
static int gem_authorized(sl_mock_t *m, const sl_mock_req_t *r);
static const json_t *gem_get(const json_t *o, const char *camel, const char *snake);
static void gem_text_of(const json_t *content, sl_buf_t *text, size_t *chars, bool *fn_response);
static json_t *gem_parse(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                         const sl_mock_faults_t *f);
static void gem_generate(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                         const sl_mock_faults_t *f, sl_str_t model, int kind);
static void gem_usage(sl_buf_t *b, const gem_gen_t *g, bool final);
static void gem_candidate(sl_buf_t *b, const gem_gen_t *g, const char *p, size_t len, bool final);
static void gem_full(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                     const sl_mock_faults_t *f, const gem_gen_t *g);
static void gem_chunk(sl_mock_t *m, sl_mock_resp_t *resp, const gem_gen_t *g, bool last);
static void gem_stream(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                       const sl_mock_faults_t *f, const gem_gen_t *g);
static void gem_embed(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                      const sl_mock_faults_t *f, bool batch);

enum { GEM_GENERATE, GEM_STREAM, GEM_COUNT };


bool
sl__mock_is_gemini(const sl_mock_req_t *r)
{
    if (r->path.len >= 8 && memcmp(r->path.p, "/v1beta/", 8) == 0) {
        return true;
    }
    /* OpenAI's fine-tuned model ids have colons too, but are never POSTed to */
    return sl_str_eq(r->method, "POST") && r->path.len > 11
           && memcmp(r->path.p, "/v1/models/", 11) == 0
           && memchr(r->path.p + 11, ':', r->path.len - 11) != NULL;
}


void
sl__mock_gemini(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                const sl_mock_faults_t *f)
{
    sl_str_t rest, model, method;
    const char *colon;
    int auth;

    auth = gem_authorized(m, r);
    if (auth == 403) {
        gem_error(m, r, resp, 403, f,
                  "Method doesn't allow unregistered callers (callers without established "
                  "identity). Please use API key or other form of API consumer identity to call "
                  "this API.");
        return;
    }
    if (auth == 400) {
        gem_error(m, r, resp, 400, f, "API key not valid. Please pass a valid API key.");
        return;
    }
    if (f->status != 0) {
        gem_error(m, r, resp, f->status, f,
                  f->status == 429   ? "Resource has been exhausted (e.g. check quota)."
                  : f->status == 503 ? "The model is overloaded. Please try again later."
                  : f->status == 500
                      ? "An internal error has occurred. Please retry or report in "
                        "https://developers.generativeai.google/guide/troubleshooting"
                      : sl_psprintf(m->scratch, "mock: injected HTTP %d", f->status));
        return;
    }

    if (r->path.len > 15 && memcmp(r->path.p, "/v1beta/models/", 15) == 0) {
        rest = (sl_str_t){ r->path.p + 15, r->path.len - 15 };
    } else if (r->path.len > 11 && memcmp(r->path.p, "/v1/models/", 11) == 0) {
        rest = (sl_str_t){ r->path.p + 11, r->path.len - 11 };
    } else {
        rest = (sl_str_t){ NULL, 0 };
    }
    colon = rest.len > 0 ? memchr(rest.p, ':', rest.len) : NULL;
    if (colon != NULL && sl_str_eq(r->method, "POST")) {
        model = (sl_str_t){ rest.p, (size_t) (colon - rest.p) };
        method = (sl_str_t){ colon + 1, rest.len - model.len - 1 };
        if (sl_str_eq(method, "generateContent")) {
            gem_generate(m, r, resp, f, model, GEM_GENERATE);
            return;
        }
        if (sl_str_eq(method, "streamGenerateContent")) {
            gem_generate(m, r, resp, f, model, GEM_STREAM);
            return;
        }
        if (sl_str_eq(method, "countTokens")) {
            gem_generate(m, r, resp, f, model, GEM_COUNT);
            return;
        }
        if (sl_str_eq(method, "embedContent")) {
            gem_embed(m, r, resp, f, false);
            return;
        }
        if (sl_str_eq(method, "batchEmbedContents")) {
            gem_embed(m, r, resp, f, true);
            return;
        }
    }
    gem_error(m, r, resp, 404, f, "Requested entity was not found.");
}


/* A query parameter's raw value; .p is NULL when it is absent. */
static sl_str_t
gem_query(const sl_mock_req_t *r, const char *name)
{
    const char *p = r->target.p + r->path.len;
    const char *end = r->target.p + r->target.len;
    size_t nlen = strlen(name);

    while (p < end) {
        const char *amp;

        p++; /* '?' or '&' */
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }
        if ((size_t) (amp - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            return (sl_str_t){ p + nlen + 1, (size_t) (amp - p) - nlen - 1 };
        }
        p = amp;
    }
    return (sl_str_t){ NULL, 0 };
}


static const char *
gem_status(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 501:
        return "UNIMPLEMENTED";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}


static void
gem_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
          const sl_mock_faults_t *f, const char *message)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_printf(b, "{\"error\":{\"code\":%d,\"message\":", status);
    sl__mock_json_str(b, message, strlen(message));
    sl_buf_printf(b, ",\"status\":\"%s\"", gem_status(status));
    if (status == 400 && strncmp(message, "API key not valid", 17) == 0) {
        sl_buf_puts(b, ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
                       "\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\","
                       "\"metadata\":{\"service\":\"generativelanguage.googleapis.com\"}}]");
    }
    sl_buf_puts(b, "}}");
    sl__mock_emit(m, r, resp, status, f, GEM_CTYPE_JSON, NULL);
}


/* 0 when allowed; 403 without a key, 400 with a wrong one (what Google answers). */
static int
gem_authorized(sl_mock_t *m, const sl_mock_req_t *r)
{
    const char *key = m->conf.api_key;
    const sl_http_header_t *h;
    sl_str_t v;

    if (key == NULL) {
        return 0;
    }
    h = sl__mock_header(r, "x-goog-api-key");
    v = h != NULL ? sl_str_trim(h->value) : gem_query(r, "key");
    if (v.p == NULL) {
        return 403;
    }
    return sl_str_ct_eq(v.p, v.len, key, strlen(key)) ? 0 : 400;
}


/* Google's JSON accepts both spellings of a field. */
static const json_t *
gem_get(const json_t *o, const char *camel, const char *snake)
{
    const json_t *v = json_object_get(o, camel);

    return v != NULL ? v : json_object_get(o, snake);
}


/*
 * The text parts of a Content, joined by a space, into text. chars also
 * counts functionResponse payloads, for the prompt tokens; fn_response is
 * set when the content answers a function call.
 */
static void
gem_text_of(const json_t *content, sl_buf_t *text, size_t *chars, bool *fn_response)
{
    size_t i;
    const json_t *part;

    json_array_foreach(json_object_get(content, "parts"), i, part)
    {
        const json_t *t = json_object_get(part, "text");
        const json_t *fr = gem_get(part, "functionResponse", "function_response");

        if (fr != NULL) {
            char *dump = json_dumps(fr, JSON_COMPACT);

            *fn_response = true;
            *chars += dump != NULL ? strlen(dump) : 0;
            free(dump);
            continue;
        }
        if (json_is_string(t)) {
            if (text->len > 0) {
                sl_buf_append(text, " ", 1);
            }
            sl_buf_append(text, json_string_value(t), json_string_length(t));
            *chars += json_string_length(t);
        }
    }
}


static json_t *
gem_parse(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f)
{
    json_error_t err;
    json_t *root = json_loadb(r->body.p, r->body.len, 0, &err);

    if (root != NULL && json_is_object(root)) {
        return root;
    }
    json_decref(root);
    gem_error(m, r, resp, 400, f, "Invalid JSON payload received. Unexpected token.");
    return NULL;
}


static void
gem_generate(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
             sl_str_t model, int kind)
{
    json_t *root;
    const json_t *contents, *content, *tools, *tool, *gc, *max;
    const sl_http_header_t *h;
    sl_buf_t text = SL_BUF_INIT;
    sl_buf_t last_user = SL_BUF_INIT;
    size_t chars = 0, i;
    bool last_is_question = false;
    bool unused = false;
    gem_gen_t g;

    root = gem_parse(m, r, resp, f);
    if (root == NULL) {
        return;
    }
    contents = json_object_get(root, "contents");
    if (kind == GEM_COUNT && contents == NULL) {
        contents = json_object_get(
            gem_get(root, "generateContentRequest", "generate_content_request"), "contents");
    }
    if (!json_is_array(contents) || json_array_size(contents) == 0) {
        gem_error(m, r, resp, 400, f,
                  "* GenerateContentRequest.contents: contents is not specified\n");
        goto out;
    }
    gem_text_of(gem_get(root, "systemInstruction", "system_instruction"), &text, &chars, &unused);
    json_array_foreach(contents, i, content)
    {
        const json_t *role = json_object_get(content, "role");
        bool user = !json_is_string(role) || strcmp(json_string_value(role), "user") == 0;
        bool fn_response = false;

        sl_buf_clear(&text);
        gem_text_of(content, &text, &chars, &fn_response);
        /* as with OpenAI: the reply echoes the last user question, not a function's result */
        if (user && text.len > 0) {
            sl_buf_clear(&last_user);
            sl_buf_append(&last_user, text.p, text.len);
        }
        last_is_question = user && !fn_response;
    }

    memset(&g, 0, sizeof(g));
    g.prompt_tokens = (long long) (chars / 4 + 1);
    if (kind == GEM_COUNT) {
        sl_buf_clear(&m->body);
        sl_buf_printf(&m->body, "{\"totalTokens\":%lld}", g.prompt_tokens);
        sl__mock_emit(m, r, resp, 200, f, GEM_CTYPE_JSON, NULL);
        goto out;
    }

    g.id = (unsigned long long) m->serial;
    g.model = model;
    g.finish = "STOP";
    g.sse = sl_str_eq(gem_query(r, "alt"), "sse");
    h = sl__mock_header(r, "x-mock-cache-read");
    if (h != NULL && sl_str_to_u64(sl_str_trim(h->value), &g.cache_read) != 0) {
        g.cache_read = 0;
    }
    g.prompt_tokens += (long long) g.cache_read;
    h = sl__mock_header(r, "x-mock-stream-error");
    g.stream_error = h != NULL && sl_str_eq(sl_str_trim(h->value), "1");

    tools = json_object_get(root, "tools");
    json_array_foreach(tools, i, tool)
    {
        const json_t *decls = gem_get(tool, "functionDeclarations", "function_declarations");
        const json_t *name = json_object_get(json_array_get(decls, 0), "name");

        if (json_is_string(name)) {
            g.tool_name = (sl_str_t){ json_string_value(name), json_string_length(name) };
            break;
        }
    }
    if (g.tool_name.len > 0 && last_is_question
        && sl__mock_contains_ci(last_user.p, last_user.len, "weather")) {
        g.reply = sl_str_lit(SL_MOCK_TOOL_ARGS);
        g.output_tokens = (long long) (g.reply.len / 4 + 1);
    } else {
        g.tool_name = (sl_str_t){ NULL, 0 };
        g.reply = sl__mock_reply(m, last_user.p, last_user.len);
        g.output_tokens = sl__mock_words(g.reply.p, g.reply.len);
        gc = gem_get(root, "generationConfig", "generation_config");
        max = gem_get(gc, "maxOutputTokens", "max_output_tokens");
        if (json_integer_value(max) > 0 && g.output_tokens > json_integer_value(max)) {
            g.output_tokens = json_integer_value(max);
            g.reply.len = sl__mock_words_prefix(g.reply.p, g.reply.len, g.output_tokens);
            g.finish = "MAX_TOKENS";
        }
    }

    if (kind == GEM_STREAM) {
        gem_stream(m, r, resp, f, &g);
    } else {
        gem_full(m, r, resp, f, &g);
    }

out:
    sl_buf_free(&text);
    sl_buf_free(&last_user);
    json_decref(root);
}


/* usageMetadata; a stream's earlier chunks know only the prompt. */
static void
gem_usage(sl_buf_t *b, const gem_gen_t *g, bool final)
{
    long long out = final ? g->output_tokens : 0;

    sl_buf_printf(b, ",\"usageMetadata\":{\"promptTokenCount\":%lld", g->prompt_tokens);
    if (final) {
        sl_buf_printf(b, ",\"candidatesTokenCount\":%lld", out);
    }
    sl_buf_printf(b, ",\"totalTokenCount\":%lld", g->prompt_tokens + out);
    if (g->cache_read > 0) {
        sl_buf_printf(b, ",\"cachedContentTokenCount\":%llu", g->cache_read);
    }
    sl_buf_puts(b, "}");
}


/* A whole GenerateContentResponse whose one part holds p[0..len) (text or the call). */
static void
gem_candidate(sl_buf_t *b, const gem_gen_t *g, const char *p, size_t len, bool final)
{
    sl_buf_puts(b, "{\"candidates\":[{\"content\":{\"parts\":[{");
    if (g->tool_name.len > 0) {
        sl_buf_puts(b, "\"functionCall\":{\"name\":");
        sl__mock_json_str(b, g->tool_name.p, g->tool_name.len);
        sl_buf_puts(b, ",\"args\":");
        sl_buf_append(b, p, len);
        sl_buf_puts(b, "}");
    } else {
        sl_buf_puts(b, "\"text\":");
        sl__mock_json_str(b, p, len);
    }
    sl_buf_puts(b, "}],\"role\":\"model\"}");
    if (final) {
        sl_buf_printf(b, ",\"finishReason\":\"%s\"", g->finish);
    }
    sl_buf_puts(b, ",\"index\":0}]");
    gem_usage(b, g, final);
    sl_buf_puts(b, ",\"modelVersion\":");
    sl__mock_json_str(b, g->model.p, g->model.len);
    sl_buf_printf(b, ",\"responseId\":\"mock-%llu\"}", g->id);
}


static void
gem_full(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
         const gem_gen_t *g)
{
    sl_buf_clear(&m->body);
    gem_candidate(&m->body, g, g->reply.p, g->reply.len, true);
    sl__mock_emit(m, r, resp, 200, f, GEM_CTYPE_JSON, NULL);
}


/* Frames the JSON in m->body (from offset 0) as one stream piece: an SSE event or array item. */
static void
gem_chunk(sl_mock_t *m, sl_mock_resp_t *resp, const gem_gen_t *g, bool last)
{
    sl_buf_t *b = &m->body;

    if (g->sse) {
        sl_buf_puts(b, "\r\n\r\n");
    } else if (last) {
        sl_buf_puts(b, "\n]");
    }
    sl__mock_event(m, resp, last);
}


static void
gem_stream(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
           const gem_gen_t *g)
{
    sl_buf_t *b = &m->body;
    size_t chars = sl__mock_utf8_len(g->reply.p, g->reply.len);
    size_t pieces = f->chunks < chars ? f->chunks : chars;
    size_t at = 0;

    /* a function call arrives whole, in one chunk */
    if (g->tool_name.len > 0) {
        pieces = 1;
    }
    sl__mock_head(m, r, resp, 200, g->sse ? GEM_CTYPE_SSE : GEM_CTYPE_JSON, -1, f, NULL);

    for (size_t i = 0; i < pieces; i++) {
        size_t want = (i + 1) * chars / pieces - i * chars / pieces;
        size_t len = g->tool_name.len > 0
                         ? g->reply.len
                         : sl__mock_utf8_prefix(g->reply.p + at, g->reply.len - at, want);
        bool final = i + 1 == pieces && !g->stream_error;

        sl_buf_clear(b);
        sl_buf_puts(b, g->sse ? "data: " : i == 0 ? "[" : ",\r\n");
        gem_candidate(b, g, g->reply.p + at, len, final);
        gem_chunk(m, resp, g, final);
        at += len;

        if (g->stream_error) {
            sl_buf_clear(b);
            sl_buf_puts(b, g->sse ? "data: " : ",\r\n");
            sl_buf_puts(b, "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. "
                           "Please try again later.\",\"status\":\"UNAVAILABLE\"}}");
            gem_chunk(m, resp, g, true);
            break;
        }
    }

    /* the headers and the first chunk go at once; every later chunk waits its turn */
    resp->paced_from = 2;
    if (f->reset_after >= 0) {
        resp->reset_after =
            1 + ((size_t) f->reset_after < pieces ? (size_t) f->reset_after : pieces);
    }
}


static void
gem_embed(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
          bool batch)
{
    json_t *root;
    const json_t *reqs, *one;
    sl_buf_t *b = &m->body;
    sl_buf_t text = SL_BUF_INIT;
    size_t chars = 0, i;
    bool unused = false;

    root = gem_parse(m, r, resp, f);
    if (root == NULL) {
        return;
    }
    reqs = batch ? json_object_get(root, "requests") : NULL;
    if (batch && (!json_is_array(reqs) || json_array_size(reqs) == 0)) {
        gem_error(m, r, resp, 400, f,
                  "* BatchEmbedContentsRequest.requests: requests is not specified\n");
        goto out;
    }
    if (!batch && !json_is_object(json_object_get(root, "content"))) {
        gem_error(m, r, resp, 400, f, "* EmbedContentRequest.content: content is not specified\n");
        goto out;
    }

    sl_buf_clear(b);
    if (!batch) {
        gem_text_of(json_object_get(root, "content"), &text, &chars, &unused);
        sl_buf_puts(b, "{\"embedding\":{\"values\":");
        sl__mock_embedding(b, text.p != NULL ? text.p : "", text.len, false);
        sl_buf_puts(b, "}}");
        sl__mock_emit(m, r, resp, 200, f, GEM_CTYPE_JSON, NULL);
        goto out;
    }
    sl_buf_puts(b, "{\"embeddings\":[");
    json_array_foreach(reqs, i, one)
    {
        sl_buf_clear(&text);
        gem_text_of(json_object_get(one, "content"), &text, &chars, &unused);
        sl_buf_puts(b, i == 0 ? "{\"values\":" : ",{\"values\":");
        sl__mock_embedding(b, text.p != NULL ? text.p : "", text.len, false);
        sl_buf_puts(b, "}");
    }
    sl_buf_puts(b, "]}");
    sl__mock_emit(m, r, resp, 200, f, GEM_CTYPE_JSON, NULL);

out:
    sl_buf_free(&text);
    json_decref(root);
}
