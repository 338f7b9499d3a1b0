/*
 * Google Gemini (the Generative Language API, generateContent): a
 * translating adapter. OpenAI's chat body becomes `contents` (user -> user,
 * assistant -> model, tool results -> functionResponse parts in a user
 * turn), `systemInstruction`, `generationConfig`, `tools` and `toolConfig`;
 * answers, stream chunks (one GenerateContentResponse per SSE event, alt=sse)
 * and errors come back in OpenAI's shape. Embeddings go to :embedContent (one
 * input) or :batchEmbedContents (a list). Everything is built with jansson in
 * the request pool; nothing here does I/O.
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
#include <time.h>

#include "core/errno.h"

#define GEMINI_JSON_FLAGS  (JSON_COMPACT | JSON_REAL_PRECISION(15))
#define GEMINI_MAX_CAND    8  /* candidateCount's ceiling */
#define GEMINI_SCHEMA_MAX  64 /* nesting of a JSON schema we translate */
#define GEMINI_DEFAULT_URL "https://generativelanguage.googleapis.com/v1beta"

/* Per-stream state (st->priv), request pool. */
typedef struct gemini_stream {
    const char *id;
    const char *model;
    json_int_t created;
    unsigned next_call;               /* ids: call_<next_call> */
    unsigned ncalls[GEMINI_MAX_CAND]; /* a candidate's tool-call indexes */
    uint32_t started;                 /* candidates that got their role chunk */
    uint32_t finished;
    uint32_t called; /* candidates that made a function call */
    uint64_t reasoning;
} gemini_stream_t;

static int gemini_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static int gemini_build_chat(sl_call_t *call, json_t *body, json_t *req);
static int gemini_build_embed(sl_call_t *call, json_t *body, json_t *req, const char **method);
static json_t *gemini_embed_request(const char *model, json_t *text, json_t *dimensions);
static int gemini_messages(json_t *messages, json_t *req);
static void gemini_add_turn(json_t *contents, const char *role, json_t *parts);
static int gemini_text_parts(json_t *content, json_t *parts);
static int gemini_user_parts(json_t *content, json_t *parts);
static int gemini_image_part(const char *url, json_t *parts);
static int gemini_data_url(const char *url, json_t *parts);
static const char *gemini_guess_mime(const char *url);
static int gemini_assistant_parts(json_t *msg, json_t *names, json_t *parts);
static int gemini_tool_part(json_t *msg, json_t *names, json_t *parts);
static void gemini_generation_config(json_t *body, json_t *req);
static json_t *gemini_schema(json_t *src, unsigned depth);
static int gemini_tools(json_t *body, json_t *req);
static const char *gemini_model_path(sl_pool_t *pool, const char *model);
static int gemini_dump(sl_pool_t *pool, json_t *j, sl_str_t *out);
static int gemini_buf_dump_cb(const char *buffer, size_t size, void *data);
static int gemini_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                                 sl_reply_t *out);
static int gemini_chat_response(sl_call_t *call, json_t *root, sl_reply_t *out);
static int gemini_embed_response(sl_call_t *call, json_t *root, sl_reply_t *out);
static json_t *gemini_base64_floats(json_t *values);
static json_t *gemini_message(json_t *cand, unsigned *next_call, bool *called, uint64_t *bytes);
static json_t *gemini_tool_call(json_t *fc, unsigned id, int index, uint64_t *bytes);
static bool gemini_is_thought(json_t *part);
static const char *gemini_finish(const char *reason, bool called);
static void gemini_read_usage(json_t *um, sl_usage_t *u, uint64_t *reasoning);
static json_t *gemini_usage_json(const sl_usage_t *u, uint64_t reasoning);
static const char *gemini_id(sl_pool_t *pool, json_t *root, const char *request_id);
static int gemini_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                               sl_chunks_t *out);
static void gemini_stream_candidate(sl_stream_t *st, gemini_stream_t *gs, json_t *cand, int index,
                                    sl_chunks_t *out);
static void gemini_emit(gemini_stream_t *gs, int index, json_t *delta, const char *finish,
                        sl_chunks_t *out);
static void gemini_emit_json(json_t *chunk, sl_chunks_t *out);
static int gemini_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                            sl_error_t *out);
static uint64_t gemini_retry_delay(json_t *err);
static const char *gemini_lower(sl_pool_t *pool, const char *s);
static uint64_t gemini_count(json_t *obj, const char *key);
static void gemini_decref(void *arg);

const sl_provider_ops_t sl_provider_gemini = {
    .kind = "gemini",
    .default_base_url = GEMINI_DEFAULT_URL,
    .conf_parse = NULL,
    .build_request = gemini_build_request,
    .parse_response = gemini_parse_response,
    .stream_event = gemini_stream_event,
    .map_error = gemini_map_error,
};

/* JSON-schema keys Gemini's Schema (an OpenAPI subset) takes; the rest are dropped. */
static const char *const gemini_schema_keys[] = {
    "format",           "title",         "description", "nullable",  "enum",
    "maxItems",         "minItems",      "required",    "minLength", "maxLength",
    "minProperties",    "maxProperties", "pattern",     "example",   "default",
    "propertyOrdering", "minimum",       "maximum",     NULL,
};


static void
gemini_decref(void *arg)
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
    switch (call->endpoint) {
    case SL_ENDPOINT_CHAT:
        method = call->stream ? "streamGenerateContent?alt=sse" : "generateContent";
        rc = gemini_build_chat(call, body, req);
        break;
    case SL_ENDPOINT_EMBEDDINGS:
        rc = gemini_build_embed(call, body, req, &method);
        break;
    default:
        rc = SL_EDENIED;
        break;
    }
    if (rc == 0) {
        rc = gemini_dump(call->pool, req, &text);
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
    if (p->api_key.value != NULL) {
        h[n].name = sl_str_lit("x-goog-api-key");
        h[n].value = (sl_str_t){ p->api_key.value, p->api_key.len };
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
static int
gemini_dump(sl_pool_t *pool, json_t *j, sl_str_t *out)
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
    rc = gemini_messages(json_object_get(body, "messages"), req);
    if (rc < 0) {
        return rc;
    }
    gemini_generation_config(body, req);
    return gemini_tools(body, req);
}


/*
 * OpenAI's messages -> contents and systemInstruction. Consecutive turns of
 * one role are merged: Gemini wants all results of one round of parallel
 * calls in a single user turn.
 */
static int
gemini_messages(json_t *messages, json_t *req)
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


/* temperature, top_p, max tokens, stop, n, seed, penalties, response_format. */
static void
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
    if (json_object_size(gc) > 0) {
        json_object_set(req, "generationConfig", gc);
    }
    json_decref(gc);
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


static int
gemini_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_reply_t *out)
{
    json_t *root;
    int rc;

    (void) conf;
    root = json_loadb(body->p != NULL ? body->p : "", body->len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return SL_EUPSTREAM;
    }
    sl_pool_on_destroy(call->pool, gemini_decref, root);
    rc = call->endpoint == SL_ENDPOINT_EMBEDDINGS ? gemini_embed_response(call, root, out)
                                                  : gemini_chat_response(call, root, out);
    return rc;
}


static int
gemini_chat_response(sl_call_t *call, json_t *root, sl_reply_t *out)
{
    json_t *cands = json_object_get(root, "candidates");
    const char *mv = json_string_value(json_object_get(root, "modelVersion"));
    const char *block =
        json_string_value(json_object_get(json_object_get(root, "promptFeedback"), "blockReason"));
    json_t *resp, *choices, *cand;
    uint64_t reasoning = 0;
    uint64_t bytes = 0;
    unsigned next_call = 0;
    sl_str_t text;
    size_t i;
    int rc;

    choices = json_array();
    json_array_foreach(cands, i, cand)
    {
        json_t *idx = json_object_get(cand, "index");
        const char *reason = json_string_value(json_object_get(cand, "finishReason"));
        bool called = false;
        json_t *msg = gemini_message(cand, &next_call, &called, &bytes);

        json_array_append_new(
            choices,
            json_pack("{sIsosnss}", "index",
                      json_is_integer(idx) ? json_integer_value(idx) : (json_int_t) i, "message",
                      msg, "logprobs", "finish_reason", gemini_finish(reason, called)));
    }
    if (json_array_size(choices) == 0) {
        if (block == NULL) {
            json_decref(choices);
            return SL_EUPSTREAM;
        }
        /* the prompt itself was blocked: an empty, filtered answer */
        json_array_append_new(choices, json_pack("{sis{sssn}snss}", "index", 0, "message", "role",
                                                 "assistant", "content", "logprobs",
                                                 "finish_reason", "content_filter"));
    }
    gemini_read_usage(json_object_get(root, "usageMetadata"), &out->usage, &reasoning);
    resp = json_pack("{sssssIsssoso}", "id", gemini_id(call->pool, root, call->request_id),
                     "object", "chat.completion", "created", (json_int_t) time(NULL), "model",
                     mv != NULL ? mv : call->target->model, "choices", choices, "usage",
                     gemini_usage_json(&out->usage, reasoning));
    rc = gemini_dump(call->pool, resp, &text);
    json_decref(resp);
    if (rc < 0) {
        return SL_EUPSTREAM;
    }
    out->body = text.p;
    out->body_len = text.len;
    if (mv != NULL) {
        out->served_model = sl_pstrdup(call->pool, mv);
    }
    return 0;
}


/* "chatcmpl-" + Gemini's responseId, else the gateway's request id. */
static const char *
gemini_id(sl_pool_t *pool, json_t *root, const char *request_id)
{
    const char *rid = json_string_value(json_object_get(root, "responseId"));

    if (rid == NULL) {
        rid = request_id != NULL ? request_id : "gemini";
    }
    return sl_psprintf(pool, "chatcmpl-%s", rid);
}


/* A candidate's parts -> OpenAI's message: text joined, thoughts left out, calls numbered. */
static json_t *
gemini_message(json_t *cand, unsigned *next_call, bool *called, uint64_t *bytes)
{
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    json_t *calls = json_array();
    json_t *msg, *part;
    sl_buf_t text = SL_BUF_INIT;
    bool has_text = false;
    size_t i;

    json_array_foreach(parts, i, part)
    {
        json_t *t = json_object_get(part, "text");
        json_t *fc = json_object_get(part, "functionCall");

        if (json_is_string(t) && !gemini_is_thought(part)) {
            sl_buf_append(&text, json_string_value(t), json_string_length(t));
            has_text = true;
        } else if (json_is_object(fc)) {
            json_array_append_new(calls, gemini_tool_call(fc, (*next_call)++, -1, bytes));
        }
    }
    *bytes += text.len;
    msg = json_pack("{sssn}", "role", "assistant", "content");
    if (has_text) {
        json_object_set_new(msg, "content", json_stringn(text.p != NULL ? text.p : "", text.len));
    }
    sl_buf_free(&text);
    if (json_array_size(calls) > 0) {
        *called = true;
        json_object_set(msg, "tool_calls", calls);
    }
    json_decref(calls);
    return msg;
}


/* A functionCall as one complete OpenAI tool call; index >= 0 adds the stream's index. */
static json_t *
gemini_tool_call(json_t *fc, unsigned id, int index, uint64_t *bytes)
{
    const char *name = json_string_value(json_object_get(fc, "name"));
    const char *gid = json_string_value(json_object_get(fc, "id"));
    json_t *args = json_object_get(fc, "args");
    char *arguments = json_is_object(args) ? json_dumps(args, GEMINI_JSON_FLAGS) : NULL;
    char idbuf[32];
    json_t *tc;

    if (gid == NULL) {
        snprintf(idbuf, sizeof(idbuf), "call_%u", id);
        gid = idbuf;
    }
    tc = json_pack("{sssss{ssss}}", "id", gid, "type", "function", "function", "name",
                   name != NULL ? name : "", "arguments", arguments != NULL ? arguments : "{}");
    if (index >= 0) {
        json_object_set_new(tc, "index", json_integer(index));
    }
    *bytes += arguments != NULL ? strlen(arguments) : 2;
    free(arguments);
    return tc;
}


static bool
gemini_is_thought(json_t *part)
{
    return json_is_true(json_object_get(part, "thought"));
}


static const char *
gemini_finish(const char *reason, bool called)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", NULL,
    };

    if (reason == NULL || strcmp(reason, "STOP") == 0) {
        return called ? "tool_calls" : "stop";
    }
    if (strcmp(reason, "MAX_TOKENS") == 0) {
        return "length";
    }
    for (size_t i = 0; filtered[i] != NULL; i++) {
        if (strcmp(reason, filtered[i]) == 0) {
            return "content_filter";
        }
    }
    return called ? "tool_calls" : "stop";
}


static uint64_t
gemini_count(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t) json_integer_value(v) : 0;
}


/*
 * usageMetadata -> usage: prompt = promptTokenCount (cached included) +
 * toolUsePromptTokenCount; completion = candidatesTokenCount +
 * thoughtsTokenCount (thinking is billed as output); cached =
 * cachedContentTokenCount.
 */
static void
gemini_read_usage(json_t *um, sl_usage_t *u, uint64_t *reasoning)
{
    if (!json_is_object(um)) {
        return;
    }
    u->known = true;
    u->prompt_tokens =
        gemini_count(um, "promptTokenCount") + gemini_count(um, "toolUsePromptTokenCount");
    *reasoning = gemini_count(um, "thoughtsTokenCount");
    u->completion_tokens = gemini_count(um, "candidatesTokenCount") + *reasoning;
    u->cached_tokens = gemini_count(um, "cachedContentTokenCount");
}


static json_t *
gemini_usage_json(const sl_usage_t *u, uint64_t reasoning)
{
    return json_pack("{sIsIsIs{sI}s{sI}}", "prompt_tokens", (json_int_t) u->prompt_tokens,
                     "completion_tokens", (json_int_t) u->completion_tokens, "total_tokens",
                     (json_int_t) (u->prompt_tokens + u->completion_tokens),
                     "prompt_tokens_details", "cached_tokens", (json_int_t) u->cached_tokens,
                     "completion_tokens_details", "reasoning_tokens", (json_int_t) reasoning);
}


/*
 * {"embedding": {"values"}} or {"embeddings": [{"values"}]} -> OpenAI's
 * list. Gemini reports no tokens for embeddings: usage is estimated from
 * the input (about four bytes a token) and marked so.
 */
static int
gemini_embed_response(sl_call_t *call, json_t *root, sl_reply_t *out)
{
    json_t *body = sl_call_json(call);
    json_t *one = json_object_get(root, "embedding");
    json_t *list = json_object_get(root, "embeddings");
    json_t *input = json_object_get(body, "input");
    const char *format = json_string_value(json_object_get(body, "encoding_format"));
    bool b64 = format != NULL && strcmp(format, "base64") == 0;
    json_t *data = json_array();
    json_t *resp, *e, *item;
    uint64_t bytes = 0;
    sl_str_t text;
    size_t i;
    int rc;

    if (json_is_object(one)) {
        list = json_pack("[O]", one);
    } else if (json_is_array(list)) {
        json_incref(list);
    } else {
        json_decref(data);
        return SL_EUPSTREAM;
    }
    json_array_foreach(list, i, e)
    {
        json_t *values = json_object_get(e, "values");
        json_t *vec;

        if (!json_is_array(values)) {
            json_decref(list);
            json_decref(data);
            return SL_EUPSTREAM;
        }
        vec = b64 ? gemini_base64_floats(values) : json_incref(values);
        json_array_append_new(
            data, json_pack("{sssiso}", "object", "embedding", "index", (int) i, "embedding", vec));
    }
    json_decref(list);

    if (json_is_string(input)) {
        bytes = json_string_length(input);
    }
    json_array_foreach(input, i, item)
    {
        bytes += json_string_length(item);
    }
    out->usage.prompt_tokens = (bytes + 3) / 4;
    out->usage.estimated = true;
    resp =
        json_pack("{sssosss{sIsI}}", "object", "list", "data", data, "model", call->target->model,
                  "usage", "prompt_tokens", (json_int_t) out->usage.prompt_tokens, "total_tokens",
                  (json_int_t) out->usage.prompt_tokens);
    rc = gemini_dump(call->pool, resp, &text);
    json_decref(resp);
    if (rc < 0) {
        return SL_EUPSTREAM;
    }
    out->body = text.p;
    out->body_len = text.len;
    return 0;
}


/* OpenAI's encoding_format=base64: the vector as little-endian float32, base64. */
static json_t *
gemini_base64_floats(json_t *values)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = json_array_size(values) * 4;
    unsigned char *raw = sl_xmalloc(n + 1);
    char *text = sl_xmalloc((n + 2) / 3 * 4 + 1);
    char *d = text;
    json_t *v, *s;
    size_t i;

    json_array_foreach(values, i, v)
    {
        float f = (float) json_number_value(v);
        uint32_t bits;

        memcpy(&bits, &f, sizeof(bits));
        raw[i * 4] = (unsigned char) bits;
        raw[i * 4 + 1] = (unsigned char) (bits >> 8);
        raw[i * 4 + 2] = (unsigned char) (bits >> 16);
        raw[i * 4 + 3] = (unsigned char) (bits >> 24);
    }
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t t = (uint32_t) raw[i] << 16 | (uint32_t) raw[i + 1] << 8 | raw[i + 2];

        *d++ = b64[t >> 18];
        *d++ = b64[(t >> 12) & 63];
        *d++ = b64[(t >> 6) & 63];
        *d++ = b64[t & 63];
    }
    if (i < n) {
        uint32_t t = (uint32_t) raw[i] << 16 | (i + 1 < n ? (uint32_t) raw[i + 1] << 8 : 0);

        *d++ = b64[t >> 18];
        *d++ = b64[(t >> 12) & 63];
        *d++ = i + 1 < n ? b64[(t >> 6) & 63] : '=';
        *d++ = '=';
    }
    *d = '\0';
    s = json_string(text);
    free(raw);
    free(text);
    return s;
}


/*
 * One GenerateContentResponse chunk -> OpenAI chunks: the role first, then
 * text deltas and one complete delta per function call, a finish chunk per
 * candidate, and (when the client asked for it) a usage chunk once every
 * candidate finished. Gemini has no end event: the stream is done at that
 * point, and the core takes the upstream's EOF after it as success.
 */
static int
gemini_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_chunks_t *out)
{
    gemini_stream_t *gs = st->priv;
    json_t *root, *cands, *cand, *err;
    const char *mv;
    const char *block;
    uint32_t before;
    size_t i;

    (void) conf;
    root = json_loadb(ev->data.p, ev->data.len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return 0; /* not a chunk (a keep-alive, or a comment the parser let through) */
    }
    err = json_object_get(root, "error");
    if (json_is_object(err)) {
        const char *msg = json_string_value(json_object_get(err, "message"));
        const char *status = json_string_value(json_object_get(err, "status"));
        json_t *e = json_pack(
            "{s{sssssnss}}", "error", "message",
            msg != NULL ? msg : "the provider failed mid-stream", "type", "api_error", "param",
            "code", status != NULL ? gemini_lower(st->call->pool, status) : "upstream_error");

        gemini_emit_json(e, out);
        goto out_free;
    }

    if (gs == NULL) {
        gs = sl_pcalloc(st->call->pool, sizeof(*gs));
        gs->id = gemini_id(st->call->pool, root, st->call->request_id);
        gs->created = (json_int_t) time(NULL);
        st->priv = gs;
    }
    mv = json_string_value(json_object_get(root, "modelVersion"));
    if (mv != NULL && st->served_model == NULL) {
        st->served_model = sl_pstrdup(st->call->pool, mv);
    }
    if (gs->model == NULL) {
        gs->model = st->served_model != NULL ? st->served_model : st->call->target->model;
    }
    gemini_read_usage(json_object_get(root, "usageMetadata"), &st->usage, &gs->reasoning);

    before = gs->finished;
    cands = json_object_get(root, "candidates");
    json_array_foreach(cands, i, cand)
    {
        json_t *idx = json_object_get(cand, "index");
        json_int_t index = json_is_integer(idx) ? json_integer_value(idx) : (json_int_t) i;

        if (index >= 0 && index < GEMINI_MAX_CAND) {
            gemini_stream_candidate(st, gs, cand, (int) index, out);
        }
    }
    block =
        json_string_value(json_object_get(json_object_get(root, "promptFeedback"), "blockReason"));
    if (block != NULL && json_array_size(cands) == 0 && gs->started == 0) {
        gemini_emit(gs, 0, json_pack("{sssn}", "role", "assistant", "content"), NULL, out);
        gemini_emit(gs, 0, json_object(), "content_filter", out);
        gs->started = gs->finished = 1;
    }

    if (gs->finished != before && (gs->finished & gs->started) == gs->started) {
        if (st->client_wants_usage && st->usage.known) {
            json_t *u =
                json_pack("{sssssIsss[]so}", "id", gs->id, "object", "chat.completion.chunk",
                          "created", gs->created, "model", gs->model, "choices", "usage",
                          gemini_usage_json(&st->usage, gs->reasoning));

            gemini_emit_json(u, out);
        }
        st->done = true;
    }

out_free:
    json_decref(root);
    return 0;
}


static void
gemini_stream_candidate(sl_stream_t *st, gemini_stream_t *gs, json_t *cand, int index,
                        sl_chunks_t *out)
{
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    const char *reason = json_string_value(json_object_get(cand, "finishReason"));
    uint32_t bit = 1u << index;
    sl_buf_t text = SL_BUF_INIT;
    json_t *part;
    size_t i;

    if (gs->finished & bit) {
        return;
    }
    if (!(gs->started & bit)) {
        gemini_emit(gs, index, json_pack("{ssss}", "role", "assistant", "content", ""), NULL, out);
        gs->started |= bit;
    }
    json_array_foreach(parts, i, part)
    {
        json_t *t = json_object_get(part, "text");
        json_t *fc = json_object_get(part, "functionCall");

        if (json_is_string(t) && !gemini_is_thought(part)) {
            sl_buf_append(&text, json_string_value(t), json_string_length(t));
            continue;
        }
        if (!json_is_object(fc)) {
            continue;
        }
        if (text.len > 0) {
            gemini_emit(gs, index, json_pack("{ss%}", "content", text.p, text.len), NULL, out);
            st->content_bytes += text.len;
            sl_buf_clear(&text);
        }
        gemini_emit(gs, index,
                    json_pack("{s[o]}", "tool_calls",
                              gemini_tool_call(fc, gs->next_call++, (int) gs->ncalls[index]++,
                                               &st->content_bytes)),
                    NULL, out);
        gs->called |= bit;
    }
    if (text.len > 0) {
        gemini_emit(gs, index, json_pack("{ss%}", "content", text.p, text.len), NULL, out);
        st->content_bytes += text.len;
    }
    sl_buf_free(&text);
    if (reason != NULL && reason[0] != '\0') {
        gemini_emit(gs, index, json_object(), gemini_finish(reason, (gs->called & bit) != 0), out);
        gs->finished |= bit;
    }
}


/* One chat.completion.chunk with one choice; takes delta's reference. */
static void
gemini_emit(gemini_stream_t *gs, int index, json_t *delta, const char *finish, sl_chunks_t *out)
{
    json_t *chunk = json_pack("{sssssIsss[{sisosnso}]}", "id", gs->id, "object",
                              "chat.completion.chunk", "created", gs->created, "model", gs->model,
                              "choices", "index", index, "delta", delta, "logprobs",
                              "finish_reason", finish != NULL ? json_string(finish) : json_null());

    gemini_emit_json(chunk, out);
}


/* "data: JSON\n\n" into out; releases chunk. */
static void
gemini_emit_json(json_t *chunk, sl_chunks_t *out)
{
    if (chunk == NULL) {
        return;
    }
    sl_buf_puts(out->out, "data: ");
    json_dump_callback(chunk, gemini_buf_dump_cb, out->out, GEMINI_JSON_FLAGS);
    sl_buf_puts(out->out, "\n\n");
    json_decref(chunk);
}


static int
gemini_buf_dump_cb(const char *buffer, size_t size, void *data)
{
    sl_buf_append(data, buffer, size);
    return 0;
}


/*
 * Google's {"error": {"code", "message", "status", "details"}} (or a list
 * holding one) -> OpenAI's error. A key Google refuses is the gateway's
 * problem, whatever the status: 502 upstream_auth_failed, without Google's
 * message.
 */
static int
gemini_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                 sl_error_t *out)
{
    json_t *root = NULL;
    json_t *err;
    const char *msg = NULL;
    const char *gstatus = NULL;
    bool bad_key = false;

    (void) conf;
    if (body->len > 0) {
        root = json_loadb(body->p, body->len, 0, NULL);
    }
    err = json_object_get(json_is_array(root) ? json_array_get(root, 0) : root, "error");
    if (json_is_object(err)) {
        json_t *details = json_object_get(err, "details");
        json_t *d;
        size_t i;

        msg = json_string_value(json_object_get(err, "message"));
        gstatus = json_string_value(json_object_get(err, "status"));
        json_array_foreach(details, i, d)
        {
            const char *reason = json_string_value(json_object_get(d, "reason"));

            if (reason != NULL
                && (strcmp(reason, "API_KEY_INVALID") == 0
                    || strcmp(reason, "API_KEY_SERVICE_BLOCKED") == 0)) {
                bad_key = true;
            }
        }
        out->retry_after = gemini_retry_delay(details);
    }
    out->message = msg != NULL ? sl_pstrdup(pool, msg)
                               : sl_psprintf(pool, "upstream returned HTTP %d", status);
    out->code = gstatus != NULL ? gemini_lower(pool, gstatus) : NULL;
    out->param = NULL;
    out->status = status;
    out->retryable = false;
    out->type = "invalid_request_error";
    json_decref(root);

    if (status == 401 || status == 403 || bad_key) {
        out->status = 502;
        out->type = "api_error";
        out->code = "upstream_auth_failed";
        out->message =
            sl_psprintf(pool, "the provider rejected the gateway's credentials (HTTP %d)", status);
        out->retry_after = 0;
    } else if (status == 429) {
        out->type = "rate_limit_error";
        out->code = "rate_limit_exceeded";
        out->retryable = true;
    } else if (status == 503) {
        out->type = "api_error";
        out->retryable = true;
    } else if (status == 504 || status == 408) {
        out->status = 504;
        out->type = "api_error";
        out->retryable = true;
    } else if (status >= 500 || status < 400) {
        out->status = 502;
        out->type = "api_error";
        out->retryable = status >= 500;
    }
    return 0;
}


/* google.rpc.RetryInfo's retryDelay ("12s", "1.5s") in ms, 0 when absent. */
static uint64_t
gemini_retry_delay(json_t *details)
{
    json_t *d;
    size_t i;

    json_array_foreach(details, i, d)
    {
        const char *delay = json_string_value(json_object_get(d, "retryDelay"));
        char *end;
        double s;

        if (delay == NULL) {
            continue;
        }
        s = strtod(delay, &end);
        if (end != delay && strcmp(end, "s") == 0 && s >= 0 && s < 86400) {
            return (uint64_t) (s * 1000);
        }
    }
    return 0;
}


static const char *
gemini_lower(sl_pool_t *pool, const char *s)
{
    char *out = sl_pstrdup(pool, s);

    for (char *c = out; *c != '\0'; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char) (*c - 'A' + 'a');
        }
    }
    return out;
}
