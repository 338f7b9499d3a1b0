/*
 * Google Gemini (the Generative Language API, generateContent): a
 * translating adapter. OpenAI's chat body becomes `contents` (user -> user,
 * assistant -> model, tool results -> functionResponse parts in a user
 * turn), `systemInstruction`, `generationConfig`, `tools` and `toolConfig`,
 * built with jansson. Answers and stream chunks (one GenerateContentResponse
 * per SSE event, alt=sse) are read with the token reader into the typed
 * answer and events (core/gateway/call.h): thought parts are reasoning, a
 * part's thoughtSignature its event's signature (byte for byte), a
 * functionCall one whole tool call (its args' JSON text as the arguments),
 * thoughtsTokenCount the reasoning tokens. Errors come back in OpenAI's
 * terms. Embeddings go to :embedContent (one input) or :batchEmbedContents
 * (a list) and come back as OpenAI's embeddings body (raw). Gemini speaks
 * no client API of sluice's (ops->api is SL_API_COUNT). Nothing here does
 * I/O. This file builds the requests; gemini_answer.c reads answers,
 * stream events and errors.
 *
 * Tool calls get ids "call_<n>", numbered within one answer; a later turn
 * recovers a tool result's function name from the most recent assistant
 * tool call with that id, so the numbering restarting per answer is safe.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/errno.h"
#include "providers/adapter_internal.h"
#include "providers/gemini_internal.h"

#define GEMINI_JSON_FLAGS  (JSON_COMPACT | JSON_REAL_PRECISION(15))
#define GEMINI_SCHEMA_MAX  64 /* nesting of a JSON schema we translate */
#define GEMINI_DEFAULT_URL "https://generativelanguage.googleapis.com/v1beta"

static int gemini_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static int gemini_build_chat(sl_call_t *call, json_t *body, json_t *req);
static int gemini_build_embed(sl_call_t *call, json_t *body, json_t *req, const char **method);
static json_t *gemini_embed_request(const char *model, json_t *text, json_t *dimensions);
static int gemini_messages(json_t *messages, json_t *reasoning, json_t *req);
static void gemini_signature(json_t *reasoning, size_t index, json_t *parts);
static int gemini_thinking(json_t *body, json_t *gc);
static void gemini_add_turn(json_t *contents, const char *role, json_t *parts);
static int gemini_text_parts(json_t *content, json_t *parts);
static int gemini_user_parts(json_t *content, json_t *parts);
static int gemini_image_part(const char *url, json_t *parts);
static int gemini_data_url(const char *url, json_t *parts);
static const char *gemini_guess_mime(const char *url);
static int gemini_assistant_parts(json_t *msg, json_t *names, json_t *parts);
static int gemini_tool_part(json_t *msg, json_t *names, json_t *parts);
static int gemini_generation_config(json_t *body, json_t *req);
static json_t *gemini_schema(json_t *src, unsigned depth);
static int gemini_tools(json_t *body, json_t *req);
static const char *gemini_model_path(sl_pool_t *pool, const char *model);

const sl_provider_ops_t sl_provider_gemini = {
    .kind = "gemini",
    .default_base_url = GEMINI_DEFAULT_URL,
    .api = SL_API_COUNT,
    .conf_parse = NULL,
    .build_request = gemini_build_request,
    .parse_response = sl__gemini_parse_response,
    .stream_event = sl__gemini_stream_event,
    .map_error = sl__gemini_map_error,
};

/* JSON-schema keys Gemini's Schema (an OpenAPI subset) takes; the rest are dropped. */
static const char *const gemini_schema_keys[] = {
    "format",           "title",         "description", "nullable",  "enum",
    "maxItems",         "minItems",      "required",    "minLength", "maxLength",
    "minProperties",    "maxProperties", "pattern",     "example",   "default",
    "propertyOrdering", "minimum",       "maximum",     NULL,
};


void
sl__gemini_decref(void *arg)
{
    json_decref(arg);
}


static int
gemini_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out)
{
    const sl_provider_conf_t *p = call->target->provider;
    const char *model = gemini_model_path(call->pool, call->target->model);
    const char *method;
    json_t *body = sl_call_json(call);
    json_t *req;
    sl_http_header_t *h;
    sl_str_t text;
    size_t n = 0;
    int rc;

    (void) conf;
    if (model == NULL) {
        return SL_ENOTFOUND;
    }
    if (!json_is_object(body)) {
        return SL_EPARSE;
    }
    req = json_object();
    switch (call->api) {
    case SL_API_CHAT:
        method = call->stream ? "streamGenerateContent?alt=sse" : "generateContent";
        rc = gemini_build_chat(call, body, req);
        break;
    case SL_API_EMBEDDINGS:
        rc = gemini_build_embed(call, body, req, &method);
        break;
    default:
        rc = SL_EDENIED;
        break;
    }
    if (rc == 0) {
        rc = sl__gemini_dump(call->pool, req, &text);
    }
    json_decref(req);
    if (rc < 0) {
        return rc;
    }

    h = sl_palloc(call->pool, sizeof(*h) * (call->nheaders + 2));
    for (size_t i = 0; i < call->nheaders; i++) {
        h[n++] = call->headers[i];
    }
    h[n].name = sl_str_lit("content-type");
    h[n++].value = sl_str_lit("application/json");
    if (call->api_key != NULL && call->api_key->value != NULL) {
        h[n].name = sl_str_lit("x-goog-api-key");
        h[n].value = (sl_str_t){ call->api_key->value, strlen(call->api_key->value) };
        n++;
    }
    out->method = "POST";
    out->path = sl_psprintf(call->pool, "%s/%s:%s", p->base_path, model, method);
    out->headers = h;
    out->nheaders = n;
    out->body = text.p;
    out->body_len = text.len;
    return 0;
}


/*
 * "models/NAME" (or "tunedModels/NAME") for the path, or NULL when NAME
 * cannot be a Gemini model id: 1 to 128 of A-Z a-z 0-9 - . _, starting
 * with a letter or digit ("gemini-2.5-flash", "text-embedding-004"). A
 * client's "provider/model" must not walk the path, so "..", "a/b" and
 * anything that needs escaping are refused rather than encoded.
 */
static const char *
gemini_model_path(sl_pool_t *pool, const char *model)
{
    const char *prefix = "models/";
    size_t len;
    char c;

    if (strncmp(model, "models/", 7) == 0) {
        model += 7;
    } else if (strncmp(model, "tunedModels/", 12) == 0) {
        model += 12;
        prefix = "tunedModels/";
    }
    len = strlen(model);
    c = model[0];
    if (len == 0 || len > 128
        || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
        return NULL;
    }
    for (size_t i = 1; i < len; i++) {
        c = model[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
              || c == '.' || c == '_')) {
            return NULL;
        }
    }
    return sl_psprintf(pool, "%s%s", prefix, model);
}


/* j as compact JSON in pool. */
int
sl__gemini_dump(sl_pool_t *pool, json_t *j, sl_str_t *out)
{
    char *s = json_dumps(j, GEMINI_JSON_FLAGS);
    size_t len;

    if (s == NULL) {
        return SL_EPARSE;
    }
    len = strlen(s);
    out->p = sl_pstrndup(pool, s, len);
    out->len = len;
    free(s);
    return 0;
}


static int
gemini_build_chat(sl_call_t *call, json_t *body, json_t *req)
{
    int rc;

    (void) call;
    rc = gemini_messages(json_object_get(body, "messages"),
                         json_object_get(body, "sluice_reasoning"), req);
    if (rc < 0) {
        return rc;
    }
    rc = gemini_generation_config(body, req);
    if (rc < 0) {
        return rc;
    }
    return gemini_tools(body, req);
}


/*
 * OpenAI's messages -> contents and systemInstruction. Consecutive turns of
 * one role are merged: Gemini wants all results of one round of parallel
 * calls in a single user turn.
 */
static int
gemini_messages(json_t *messages, json_t *reasoning, json_t *req)
{
    json_t *contents = json_array();
    json_t *system = json_array();
    json_t *names = json_object(); /* tool call id -> function name */
    json_t *msg;
    size_t i;
    int rc = 0;

    json_object_set_new(req, "contents", contents);
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        rc = SL_EPARSE;
        goto out_free;
    }
    json_array_foreach(messages, i, msg)
    {
        const char *role = json_string_value(json_object_get(msg, "role"));
        json_t *content = json_object_get(msg, "content");
        json_t *parts = json_array();
        const char *turn = "user";

        if (role == NULL) {
            rc = SL_EPARSE;
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            rc = gemini_text_parts(content, system);
            turn = NULL;
        } else if (strcmp(role, "user") == 0) {
            rc = gemini_user_parts(content, parts);
        } else if (strcmp(role, "assistant") == 0) {
            rc = gemini_assistant_parts(msg, names, parts);
            gemini_signature(reasoning, i, parts);
            turn = "model";
        } else if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
            rc = gemini_tool_part(msg, names, parts);
        } else {
            rc = SL_EPARSE;
        }
        if (rc == 0 && turn != NULL && json_array_size(parts) > 0) {
            gemini_add_turn(contents, turn, parts);
        }
        json_decref(parts);
        if (rc < 0) {
            goto out_free;
        }
    }
    if (json_array_size(system) > 0) {
        json_object_set_new(req, "systemInstruction", json_pack("{sO}", "parts", system));
    }
    if (json_array_size(contents) == 0) {
        rc = SL_EPARSE; /* Gemini refuses a request with only a system prompt */
    }

out_free:
    json_decref(names);
    json_decref(system);
    return rc;
}


static void
gemini_add_turn(json_t *contents, const char *role, json_t *parts)
{
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    const char *r = json_string_value(json_object_get(last, "role"));

    if (r != NULL && strcmp(r, role) == 0) {
        json_array_extend(json_object_get(last, "parts"), parts);
        return;
    }
    json_array_append_new(contents, json_pack("{sssO}", "role", role, "parts", parts));
}


/* A string, or an array of text (or refusal) parts, as text parts. null adds nothing. */
static int
gemini_text_parts(json_t *content, json_t *parts)
{
    json_t *part;
    size_t i;

    if (json_is_null(content) || content == NULL) {
        return 0;
    }
    if (json_is_string(content)) {
        if (json_string_length(content) > 0) {
            json_array_append_new(parts, json_pack("{sO}", "text", content));
        }
        return 0;
    }
    if (!json_is_array(content)) {
        return SL_EPARSE;
    }
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, type != NULL ? type : "text");

        if (type == NULL || (strcmp(type, "text") != 0 && strcmp(type, "refusal") != 0)
            || !json_is_string(text)) {
            return SL_EPARSE;
        }
        json_array_append_new(parts, json_pack("{sO}", "text", text));
    }
    return 0;
}


/* A user turn: text, images (image_url), audio (input_audio) and files (file_data). */
static int
gemini_user_parts(json_t *content, json_t *parts)
{
    json_t *part;
    size_t i;

    if (!json_is_array(content)) {
        return gemini_text_parts(content, parts);
    }
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        int rc = SL_EPARSE;

        if (type == NULL) {
            return SL_EPARSE;
        }
        if (strcmp(type, "text") == 0) {
            json_t *text = json_object_get(part, "text");

            if (json_is_string(text)) {
                json_array_append_new(parts, json_pack("{sO}", "text", text));
                rc = 0;
            }
        } else if (strcmp(type, "image_url") == 0) {
            json_t *iu = json_object_get(part, "image_url");
            const char *url =
                json_string_value(json_is_object(iu) ? json_object_get(iu, "url") : iu);

            rc = url != NULL ? gemini_image_part(url, parts) : SL_EPARSE;
        } else if (strcmp(type, "input_audio") == 0) {
            json_t *ia = json_object_get(part, "input_audio");
            const char *data = json_string_value(json_object_get(ia, "data"));
            const char *format = json_string_value(json_object_get(ia, "format"));

            if (data != NULL && format != NULL) {
                json_array_append_new(
                    parts, json_pack("{s{ssss}}", "inlineData", "mimeType",
                                     strcmp(format, "mp3") == 0 ? "audio/mp3" : "audio/wav", "data",
                                     data));
                rc = 0;
            }
        } else if (strcmp(type, "file") == 0) {
            const char *data =
                json_string_value(json_object_get(json_object_get(part, "file"), "file_data"));

            rc = data != NULL ? gemini_data_url(data, parts) : SL_EPARSE;
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}


/* data: URLs are sent inline; http(s) URLs as fileData for Gemini to fetch. */
static int
gemini_image_part(const char *url, json_t *parts)
{
    const char *mime;
    json_t *fd;

    if (strncmp(url, "data:", 5) == 0) {
        return gemini_data_url(url, parts);
    }
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0
        && strncmp(url, "gs://", 5) != 0) {
        return SL_EPARSE;
    }
    fd = json_pack("{ss}", "fileUri", url);
    mime = gemini_guess_mime(url);
    if (mime != NULL) {
        json_object_set_new(fd, "mimeType", json_string(mime));
    }
    json_array_append_new(parts, json_pack("{so}", "fileData", fd));
    return 0;
}


/* "data:MIME;base64,DATA" -> inlineData. Only base64 data URLs are taken. */
static int
gemini_data_url(const char *url, json_t *parts)
{
    const char *semi, *comma;
    json_t *mime;

    if (strncmp(url, "data:", 5) != 0) {
        return SL_EPARSE;
    }
    comma = strchr(url, ',');
    semi = strchr(url, ';');
    if (comma == NULL || semi == NULL || semi > comma || semi == url + 5
        || strncmp(semi, ";base64,", 8) != 0) {
        return SL_EPARSE;
    }
    mime = json_stringn(url + 5, (size_t) (semi - url - 5));
    if (mime == NULL) {
        return SL_EPARSE;
    }
    json_array_append_new(
        parts, json_pack("{s{soss}}", "inlineData", "mimeType", mime, "data", comma + 1));
    return 0;
}


/* The image type an URL's extension names, or NULL (Gemini then sniffs it). */
static const char *
gemini_guess_mime(const char *url)
{
    static const char *const map[][2] = {
        { ".png", "image/png" },   { ".jpg", "image/jpeg" },      { ".jpeg", "image/jpeg" },
        { ".webp", "image/webp" }, { ".gif", "image/gif" },       { ".heic", "image/heic" },
        { ".heif", "image/heif" }, { ".pdf", "application/pdf" },
    };
    size_t len = strcspn(url, "?#");

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t n = strlen(map[i][0]);

        if (len >= n && strncasecmp(url + len - n, map[i][0], n) == 0) {
            return map[i][1];
        }
    }
    return NULL;
}


/* An assistant turn: its text, then a functionCall part per tool call (names remembered). */
static int
gemini_assistant_parts(json_t *msg, json_t *names, json_t *parts)
{
    json_t *calls = json_object_get(msg, "tool_calls");
    json_t *tc;
    size_t i;
    int rc;

    rc = gemini_text_parts(json_object_get(msg, "content"), parts);
    if (rc < 0 || calls == NULL || json_is_null(calls)) {
        return rc;
    }
    if (!json_is_array(calls)) {
        return SL_EPARSE;
    }
    json_array_foreach(calls, i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        json_t *name = json_object_get(fn, "name");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *arguments = json_string_value(json_object_get(fn, "arguments"));
        json_t *args;

        if (!json_is_string(name)) {
            return SL_EPARSE;
        }
        if (arguments == NULL || arguments[strspn(arguments, " \t\r\n")] == '\0') {
            args = json_object();
        } else {
            args = json_loads(arguments, JSON_REJECT_DUPLICATES, NULL);
            if (!json_is_object(args)) {
                json_decref(args);
                return SL_EPARSE;
            }
        }
        json_array_append_new(parts,
                              json_pack("{s{sOso}}", "functionCall", "name", name, "args", args));
        if (id != NULL) {
            json_object_set(names, id, name);
        }
    }
    return 0;
}


/*
 * A tool result -> functionResponse. Its name comes from the assistant call
 * it answers (or the message's own name); its response is the content
 * parsed as a JSON object, else {"content": the content}.
 */
static int
gemini_tool_part(json_t *msg, json_t *names, json_t *parts)
{
    const char *id = json_string_value(json_object_get(msg, "tool_call_id"));
    json_t *name = id != NULL ? json_object_get(names, id) : NULL;
    json_t *content = json_object_get(msg, "content");
    json_t *text = NULL;
    json_t *response = NULL;

    if (name == NULL) {
        name = json_object_get(msg, "name");
    }
    if (!json_is_string(name)) {
        return SL_EPARSE;
    }
    if (json_is_array(content)) {
        json_t *tp = json_array();
        json_t *part;
        size_t i;
        sl_buf_t b = SL_BUF_INIT;

        if (gemini_text_parts(content, tp) < 0) {
            json_decref(tp);
            return SL_EPARSE;
        }
        json_array_foreach(tp, i, part)
        {
            json_t *t = json_object_get(part, "text");

            sl_buf_append(&b, json_string_value(t), json_string_length(t));
        }
        text = json_stringn(b.p != NULL ? b.p : "", b.len);
        sl_buf_free(&b);
        json_decref(tp);
    } else if (json_is_string(content)) {
        text = json_incref(content);
    } else if (content == NULL || json_is_null(content)) {
        text = json_string("");
    } else {
        return SL_EPARSE;
    }
    if (text == NULL) {
        return SL_EPARSE;
    }
    response = json_loads(json_string_value(text), JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(response)) {
        json_decref(response);
        response = json_pack("{sO}", "content", text);
    }
    json_decref(text);
    json_array_append_new(
        parts, json_pack("{s{sOso}}", "functionResponse", "name", name, "response", response));
    return 0;
}


/* temperature, top_p, max tokens, stop, n, seed, penalties, response_format, thinking. */
static int
gemini_generation_config(json_t *body, json_t *req)
{
    static const char *const copy[][2] = {
        { "temperature", "temperature" },
        { "top_p", "topP" },
        { "top_k", "topK" },
        { "seed", "seed" },
        { "presence_penalty", "presencePenalty" },
        { "frequency_penalty", "frequencyPenalty" },
    };
    json_t *gc = json_object();
    json_t *v, *rf;

    for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
        v = json_object_get(body, copy[i][0]);
        if (json_is_number(v)) {
            json_object_set(gc, copy[i][1], v);
        }
    }
    /* max_completion_tokens wins, as the proxy reads it */
    v = json_object_get(body, "max_completion_tokens");
    if (!json_is_integer(v)) {
        v = json_object_get(body, "max_tokens");
    }
    if (json_is_integer(v)) {
        json_object_set(gc, "maxOutputTokens", v);
    }
    v = json_object_get(body, "n");
    if (json_is_integer(v) && json_integer_value(v) > 1) {
        json_object_set(gc, "candidateCount", v);
    }
    v = json_object_get(body, "stop");
    if (json_is_string(v)) {
        json_object_set_new(gc, "stopSequences", json_pack("[O]", v));
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        json_object_set(gc, "stopSequences", v);
    }
    rf = json_object_get(body, "response_format");
    v = json_object_get(rf, "type");
    if (json_is_string(v) && strcmp(json_string_value(v), "json_object") == 0) {
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
    } else if (json_is_string(v) && strcmp(json_string_value(v), "json_schema") == 0) {
        json_t *schema =
            gemini_schema(json_object_get(json_object_get(rf, "json_schema"), "schema"), 0);

        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        if (schema != NULL) {
            json_object_set_new(gc, "responseSchema", schema);
        }
    }
    if (gemini_thinking(body, gc) < 0) {
        json_decref(gc);
        return SL_EPARSE;
    }
    if (json_object_size(gc) > 0) {
        json_object_set(req, "generationConfig", gc);
    }
    json_decref(gc);
    return 0;
}


/*
 * Thinking: sluice_thinking (an Anthropic client's thinking: enabled with
 * budget_tokens, adaptive as a dynamic budget, disabled), else
 * reasoning_effort (minimal 512, low 1024, medium 8192, high 24576 tokens;
 * none 0), as thinkingConfig with the thoughts returned. Returns 0 or
 * SL_EPARSE (an effort Gemini has no budget for).
 */
static int
gemini_thinking(json_t *body, json_t *gc)
{
    static const struct {
        const char *effort;
        json_int_t budget;
    } budgets[] = {
        { "minimal", 512 }, { "low", 1024 },    { "medium", 8192 },
        { "high", 24576 },  { "xhigh", 32768 }, { "none", 0 },
    };
    json_t *thinking = json_object_get(body, "sluice_thinking");
    json_t *effort = json_object_get(body, "reasoning_effort");
    const char *type = json_string_value(json_object_get(thinking, "type"));
    json_int_t budget = -2;

    if (type != NULL && strcmp(type, "enabled") == 0
        && json_is_integer(json_object_get(thinking, "budget_tokens"))) {
        budget = json_integer_value(json_object_get(thinking, "budget_tokens"));
    } else if (type != NULL && strcmp(type, "adaptive") == 0) {
        budget = -1; /* Gemini decides */
    } else if (type != NULL && strcmp(type, "disabled") == 0) {
        budget = 0;
    } else if (json_is_string(effort)) {
        for (size_t i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
            if (strcmp(json_string_value(effort), budgets[i].effort) == 0) {
                budget = budgets[i].budget;
            }
        }
        if (budget == -2) {
            return SL_EPARSE;
        }
    }
    if (budget == -2) {
        return 0;
    }
    json_object_set_new(
        gc, "thinkingConfig",
        budget == 0 ? json_pack("{s:I}", "thinkingBudget", budget)
                    : json_pack("{s:I,s:b}", "thinkingBudget", budget, "includeThoughts", 1));
    return 0;
}


/*
 * The thought signature a Responses client carried back for model turn
 * index (sluice_reasoning, kind gemini) goes on the turn's first function
 * call, else its first part, where Gemini put it.
 */
static void
gemini_signature(json_t *reasoning, size_t index, json_t *parts)
{
    json_t *e, *p, *at = NULL;
    size_t i;

    json_array_foreach(reasoning, i, e)
    {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        json_t *sig = json_object_get(e, "signature");

        if (json_integer_value(json_object_get(e, "message")) != (json_int_t) index || kind == NULL
            || strcmp(kind, "gemini") != 0 || !json_is_string(sig)) {
            continue;
        }
        json_array_foreach(parts, i, p)
        {
            if (json_object_get(p, "functionCall") != NULL) {
                at = p;
                break;
            }
        }
        if (at == NULL) {
            at = json_array_get(parts, 0);
        }
        if (at != NULL) {
            json_object_set(at, "thoughtSignature", sig);
        }
        return;
    }
}


/*
 * A JSON schema as Gemini's Schema: the keys it knows (gemini_schema_keys,
 * plus the structural ones walked here), a type list ["T", "null"] or an
 * anyOf member {"type": "null"} as nullable, const as a one-value enum. Everything else
 * (additionalProperties, $schema, $ref, strict, ...) is dropped, since Gemini refuses unknown keys.
 * NULL when src is not an object or nests too deep.
 */
static json_t *
gemini_schema(json_t *src, unsigned depth)
{
    json_t *out, *v, *props;
    const char *key;

    if (!json_is_object(src) || depth > GEMINI_SCHEMA_MAX) {
        return NULL;
    }
    out = json_object();
    for (size_t i = 0; gemini_schema_keys[i] != NULL; i++) {
        v = json_object_get(src, gemini_schema_keys[i]);
        if (v != NULL) {
            json_object_set(out, gemini_schema_keys[i], v);
        }
    }
    v = json_object_get(src, "type");
    if (json_is_string(v)) {
        json_object_set(out, "type", v);
    } else if (json_is_array(v)) {
        json_t *t;
        size_t i;

        json_array_foreach(v, i, t)
        {
            if (!json_is_string(t)) {
                continue;
            }
            if (strcmp(json_string_value(t), "null") == 0) {
                json_object_set_new(out, "nullable", json_true());
            } else if (json_object_get(out, "type") == NULL) {
                json_object_set(out, "type", t);
            }
        }
    }
    v = json_object_get(src, "const");
    if (v != NULL && json_object_get(out, "enum") == NULL) {
        json_object_set_new(out, "enum", json_pack("[O]", v));
    }
    props = json_object_get(src, "properties");
    if (json_is_object(props)) {
        json_t *p = json_object();

        json_object_foreach(props, key, v)
        {
            json_t *s = gemini_schema(v, depth + 1);

            json_object_set_new(p, key, s != NULL ? s : json_object());
        }
        json_object_set_new(out, "properties", p);
    }
    v = gemini_schema(json_object_get(src, "items"), depth + 1);
    if (v != NULL) {
        json_object_set_new(out, "items", v);
    }
    v = json_object_get(src, "anyOf");
    if (json_is_array(v)) {
        json_t *any = json_array();
        json_t *s;
        size_t i;

        json_array_foreach(v, i, s)
        {
            json_t *t = gemini_schema(s, depth + 1);
            const char *type = json_string_value(json_object_get(t, "type"));

            if (type != NULL && strcmp(type, "null") == 0) {
                /* Gemini has no null type: {"type": "null"} in anyOf is nullable */
                json_object_set_new(out, "nullable", json_true());
                json_decref(t);
            } else if (t != NULL) {
                json_array_append_new(any, t);
            }
        }
        json_object_set_new(out, "anyOf", any);
    }
    return out;
}


/* tools -> functionDeclarations; tool_choice -> toolConfig.functionCallingConfig. */
static int
gemini_tools(json_t *body, json_t *req)
{
    json_t *tools = json_object_get(body, "tools");
    json_t *choice = json_object_get(body, "tool_choice");
    json_t *decls, *tool, *fcc;
    const char *mode = NULL;
    size_t i;

    if (json_is_array(tools) && json_array_size(tools) > 0) {
        decls = json_array();
        json_array_foreach(tools, i, tool)
        {
            const char *type = json_string_value(json_object_get(tool, "type"));
            json_t *fn = json_object_get(tool, "function");
            json_t *name = json_object_get(fn, "name");
            json_t *desc = json_object_get(fn, "description");
            json_t *params = json_object_get(fn, "parameters");
            json_t *d;

            if (type == NULL || strcmp(type, "function") != 0 || !json_is_string(name)) {
                json_decref(decls);
                return SL_EPARSE;
            }
            d = json_pack("{sO}", "name", name);
            if (json_is_string(desc)) {
                json_object_set(d, "description", desc);
            }
            /* an object without properties is refused: a function without parameters */
            if (json_object_size(json_object_get(params, "properties")) > 0) {
                json_object_set_new(d, "parameters", gemini_schema(params, 0));
            }
            json_array_append_new(decls, d);
        }
        json_object_set_new(req, "tools", json_pack("[{so}]", "functionDeclarations", decls));
    }

    if (json_is_string(choice)) {
        const char *c = json_string_value(choice);

        mode = strcmp(c, "none") == 0       ? "NONE"
               : strcmp(c, "required") == 0 ? "ANY"
               : strcmp(c, "auto") == 0     ? "AUTO"
                                            : NULL;
        if (mode == NULL) {
            return SL_EPARSE;
        }
        fcc = json_pack("{ss}", "mode", mode);
    } else if (json_is_object(choice)) {
        json_t *name = json_object_get(json_object_get(choice, "function"), "name");

        if (!json_is_string(name)) {
            return SL_EPARSE;
        }
        fcc = json_pack("{ss s[O]}", "mode", "ANY", "allowedFunctionNames", name);
    } else {
        return 0;
    }
    json_object_set_new(req, "toolConfig", json_pack("{so}", "functionCallingConfig", fcc));
    return 0;
}


/* One string -> :embedContent, a list of strings -> :batchEmbedContents. */
static int
gemini_build_embed(sl_call_t *call, json_t *body, json_t *req, const char **method)
{
    json_t *input = json_object_get(body, "input");
    json_t *dims = json_object_get(body, "dimensions");
    const char *model = gemini_model_path(call->pool, call->target->model);
    json_t *requests, *item, *one;
    size_t i;

    if (!json_is_integer(dims)) {
        dims = NULL;
    }
    if (json_is_string(input)) {
        *method = "embedContent";
        one = gemini_embed_request(model, input, dims);
        json_object_update(req, one);
        json_decref(one);
        return 0;
    }
    if (!json_is_array(input) || json_array_size(input) == 0) {
        return SL_EPARSE;
    }
    *method = "batchEmbedContents";
    requests = json_array();
    json_object_set_new(req, "requests", requests);
    json_array_foreach(input, i, item)
    {
        if (!json_is_string(item)) {
            return SL_EPARSE; /* token arrays: Gemini takes text only */
        }
        json_array_append_new(requests, gemini_embed_request(model, item, dims));
    }
    return 0;
}


static json_t *
gemini_embed_request(const char *model, json_t *text, json_t *dimensions)
{
    json_t *r = json_pack("{sss{s[{sO}]}}", "model", model, "content", "parts", "text", text);

    if (dimensions != NULL) {
        json_object_set(r, "outputDimensionality", dimensions);
    }
    return r;
}
