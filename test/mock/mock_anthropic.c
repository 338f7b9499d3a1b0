/*
 * The mock's Anthropic Messages API: POST /v1/messages (plain JSON, or the
 * SSE event sequence message_start, content_block_start, ping,
 * content_block_delta..., content_block_stop, message_delta, message_stop)
 * and POST /v1/messages/count_tokens, with Anthropic's authentication
 * (x-api-key, anthropic-version) and error shape
 * {"type":"error","error":{"type","message"}}. The answers mirror the
 * OpenAI endpoint's (same reply text, same tool trigger), so a request
 * translated by sluice gets the same content from either mock.
 */
#include "test/mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ANT_TOOL_ID  "toolu_mock1"
#define ANT_PREAMBLE 4 /* segments sent at once: headers, message_start, block start, ping */

/* What one Messages call answers, shared by the plain and the streamed forms. */
typedef struct ant_msg {
    unsigned long long id;
    sl_str_t model;
    sl_str_t reply;     /* the text, or the tool input as JSON */
    sl_str_t tool_name; /* empty: a text reply */
    const char *stop_reason;
    const char *extra; /* response header lines */
    long long input_tokens;
    long long output_tokens;
    unsigned long long cache_read;
    unsigned long long cache_write;    /* cache_creation_input_tokens */
    unsigned long long cache_write_1h; /* of them, cache_creation.ephemeral_1h_input_tokens */
    bool stream_error;
    sl_str_t thinking; /* empty: the request did not ask for thinking */
    char signature[24];
} ant_msg_t;

static const char *ant_error_type(int status);
static void ant_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
                      const sl_mock_faults_t *f, const char *type, const char *message);
static bool ant_authorized(sl_mock_t *m, const sl_mock_req_t *r);
static void ant_text_of(const json_t *content, sl_buf_t *text, size_t *chars, bool *tool_result);
static json_t *ant_parse(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                         const sl_mock_faults_t *f, bool need_max_tokens);
static void ant_messages(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                         const sl_mock_faults_t *f, bool count_only);
static void ant_usage(sl_buf_t *b, const ant_msg_t *a, long long output_tokens);
static void ant_full(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                     const sl_mock_faults_t *f, const ant_msg_t *a);
static void ant_open(sl_mock_t *m, const char *event);
static void ant_close(sl_mock_t *m, sl_mock_resp_t *resp, bool last);
static void ant_stream(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                       const sl_mock_faults_t *f, const ant_msg_t *a);
static void ant_sign(const char *p, size_t len, char *out);
static const char *ant_check_thinking(const json_t *messages);


bool
sl__mock_is_anthropic(const sl_mock_req_t *r)
{
    return sl_str_eq(r->path, "/v1/messages")
           || (r->path.len > 13 && memcmp(r->path.p, "/v1/messages/", 13) == 0);
}


void
sl__mock_anthropic(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                   const sl_mock_faults_t *f)
{
    bool post = sl_str_eq(r->method, "POST");

    if (!ant_authorized(m, r)) {
        ant_error(m, r, resp, 401, f, "authentication_error",
                  sl__mock_header(r, "x-api-key") == NULL ? "x-api-key header is required"
                                                          : "invalid x-api-key");
        return;
    }
    if (f->status != 0) {
        ant_error(m, r, resp, f->status, f, ant_error_type(f->status),
                  f->status == 529 ? "Overloaded"
                                   : sl_psprintf(m->scratch, "mock: injected HTTP %d", f->status));
        return;
    }
    if (post && sl_str_eq(r->path, "/v1/messages")) {
        ant_messages(m, r, resp, f, false);
        return;
    }
    if (post && sl_str_eq(r->path, "/v1/messages/count_tokens")) {
        ant_messages(m, r, resp, f, true);
        return;
    }
    ant_error(m, r, resp, 404, f, "not_found_error", "Not Found");
}


static const char *
ant_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}


static void
ant_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
          const sl_mock_faults_t *f, const char *type, const char *message)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_puts(b, "{\"type\":\"error\",\"error\":{\"type\":");
    sl__mock_json_str(b, type, strlen(type));
    sl_buf_puts(b, ",\"message\":");
    sl__mock_json_str(b, message, strlen(message));
    sl_buf_puts(b, "}}");
    sl__mock_emit(
        m, r, resp, status, f, "application/json",
        sl_psprintf(m->scratch, "request-id: req_mock%llu\r\n", (unsigned long long) m->serial));
}


static bool
ant_authorized(sl_mock_t *m, const sl_mock_req_t *r)
{
    const char *key = m->conf.api_key;
    const sl_http_header_t *h;
    sl_str_t v;

    if (key == NULL) {
        return true;
    }
    h = sl__mock_header(r, "x-api-key");
    if (h == NULL) {
        return false;
    }
    v = sl_str_trim(h->value);
    return sl_str_ct_eq(v.p, v.len, key, strlen(key));
}


/*
 * The text of a message's content (a string, or "text" blocks joined by a
 * space) into text. chars also counts tool_result contents, for the prompt
 * tokens; tool_result is set when the content answers a tool call.
 */
static void
ant_text_of(const json_t *content, sl_buf_t *text, size_t *chars, bool *tool_result)
{
    size_t i;
    const json_t *block;

    if (json_is_string(content)) {
        sl_buf_append(text, json_string_value(content), json_string_length(content));
        *chars += json_string_length(content);
        return;
    }
    json_array_foreach(content, i, block)
    {
        const json_t *type = json_object_get(block, "type");
        const json_t *t = json_object_get(block, "text");

        if (json_is_string(type) && strcmp(json_string_value(type), "tool_result") == 0) {
            sl_buf_t inner = SL_BUF_INIT;
            bool nested = false;

            *tool_result = true;
            ant_text_of(json_object_get(block, "content"), &inner, chars, &nested);
            sl_buf_free(&inner);
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


/* The body as a JSON object with the fields every Messages call needs, or NULL after a 400. */
static json_t *
ant_parse(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
          bool need_max_tokens)
{
    json_error_t err;
    json_t *root;
    const json_t *messages;
    const char *msg = NULL;

    if (sl__mock_header(r, "anthropic-version") == NULL) {
        ant_error(m, r, resp, 400, f, "invalid_request_error",
                  "anthropic-version: header is required");
        return NULL;
    }
    root = json_loadb(r->body.p, r->body.len, 0, &err);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        ant_error(m, r, resp, 400, f, "invalid_request_error",
                  "There was an issue with your request body: invalid JSON");
        return NULL;
    }
    messages = json_object_get(root, "messages");
    if (!json_is_string(json_object_get(root, "model"))) {
        msg = "model: Field required";
    } else if (messages == NULL) {
        msg = "messages: Field required";
    } else if (!json_is_array(messages)) {
        msg = "messages: Input should be a valid list";
    } else if (json_array_size(messages) == 0) {
        msg = "messages: at least one message is required";
    } else if (need_max_tokens && !json_is_integer(json_object_get(root, "max_tokens"))) {
        msg = json_object_get(root, "max_tokens") == NULL
                  ? "max_tokens: Field required"
                  : "max_tokens: Input should be a valid integer";
    }
    if (msg != NULL) {
        json_decref(root);
        ant_error(m, r, resp, 400, f, "invalid_request_error", msg);
        return NULL;
    }
    return root;
}


static void
ant_messages(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
             bool count_only)
{
    json_t *root;
    const json_t *messages, *msg, *tools, *model, *max;
    const sl_http_header_t *h;
    sl_buf_t text = SL_BUF_INIT;
    sl_buf_t last_user = SL_BUF_INIT;
    size_t chars = 0, i;
    bool last_is_question = false;
    bool unused = false;
    ant_msg_t a;

    root = ant_parse(m, r, resp, f, !count_only);
    if (root == NULL) {
        return;
    }
    messages = json_object_get(root, "messages");
    if (ant_check_thinking(messages) != NULL) {
        ant_error(m, r, resp, 400, f, "invalid_request_error", ant_check_thinking(messages));
        goto out;
    }
    ant_text_of(json_object_get(root, "system"), &text, &chars, &unused);
    json_array_foreach(messages, i, msg)
    {
        const json_t *role = json_object_get(msg, "role");
        bool user = json_is_string(role) && strcmp(json_string_value(role), "user") == 0;
        bool tool_result = false;

        sl_buf_clear(&text);
        ant_text_of(json_object_get(msg, "content"), &text, &chars, &tool_result);
        /* as with OpenAI: the reply echoes the last user question, not a tool's result */
        if (user && text.len > 0) {
            sl_buf_clear(&last_user);
            sl_buf_append(&last_user, text.p, text.len);
        }
        last_is_question = user && !tool_result;
    }

    memset(&a, 0, sizeof(a));
    a.input_tokens = (long long) (chars / 4 + 1);
    if (count_only) {
        sl_buf_clear(&m->body);
        sl_buf_printf(&m->body, "{\"input_tokens\":%lld}", a.input_tokens);
        sl__mock_emit(m, r, resp, 200, f, "application/json", NULL);
        goto out;
    }

    model = json_object_get(root, "model");
    a.id = (unsigned long long) m->serial;
    a.model = (sl_str_t){ json_string_value(model), json_string_length(model) };
    a.extra = sl_psprintf(m->scratch, "request-id: req_mock%llu\r\n", a.id);
    h = sl__mock_header(r, "x-mock-cache-read");
    if (h != NULL && sl_str_to_u64(sl_str_trim(h->value), &a.cache_read) != 0) {
        a.cache_read = 0;
    }
    h = sl__mock_header(r, "x-mock-cache-write");
    if (h != NULL && sl_str_to_u64(sl_str_trim(h->value), &a.cache_write) != 0) {
        a.cache_write = 0;
    }
    h = sl__mock_header(r, "x-mock-cache-write-1h");
    if (h != NULL && sl_str_to_u64(sl_str_trim(h->value), &a.cache_write_1h) != 0) {
        a.cache_write_1h = 0;
    }
    if (a.cache_write_1h > a.cache_write) {
        a.cache_write = a.cache_write_1h;
    }
    h = sl__mock_header(r, "x-mock-stream-error");
    a.stream_error = h != NULL && sl_str_eq(sl_str_trim(h->value), "1");

    tools = json_object_get(root, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0 && last_is_question
        && sl__mock_contains_ci(last_user.p, last_user.len, "weather")) {
        const json_t *name = json_object_get(json_array_get(tools, 0), "name");

        a.tool_name = json_is_string(name)
                          ? (sl_str_t){ json_string_value(name), json_string_length(name) }
                          : sl_str_lit("get_weather");
        a.reply = sl_str_lit(SL_MOCK_TOOL_ARGS);
        a.output_tokens = (long long) (a.reply.len / 4 + 1);
        a.stop_reason = "tool_use";
    } else {
        a.reply = sl__mock_reply(m, last_user.p, last_user.len);
        a.output_tokens = sl__mock_words(a.reply.p, a.reply.len);
        a.stop_reason = "end_turn";
        max = json_object_get(root, "max_tokens");
        if (json_integer_value(max) > 0 && a.output_tokens > json_integer_value(max)) {
            a.output_tokens = json_integer_value(max);
            a.reply.len = sl__mock_words_prefix(a.reply.p, a.reply.len, a.output_tokens);
            a.stop_reason = "max_tokens";
        }
    }

    {
        const char *tt =
            json_string_value(json_object_get(json_object_get(root, "thinking"), "type"));

        if (tt != NULL && (strcmp(tt, "enabled") == 0 || strcmp(tt, "adaptive") == 0)) {
            a.thinking.p = sl_psprintf(m->scratch, "Thinking about: %.*s", (int) last_user.len,
                                       last_user.p != NULL ? last_user.p : "");
            a.thinking.len = strlen(a.thinking.p);
            ant_sign(a.thinking.p, a.thinking.len, a.signature);
        }
    }
    if (json_is_true(json_object_get(root, "stream"))) {
        ant_stream(m, r, resp, f, &a);
    } else {
        ant_full(m, r, resp, f, &a);
    }

out:
    sl_buf_free(&text);
    sl_buf_free(&last_user);
    json_decref(root);
}


static void
ant_usage(sl_buf_t *b, const ant_msg_t *a, long long output_tokens)
{
    sl_buf_printf(b,
                  "{\"input_tokens\":%lld,\"cache_creation_input_tokens\":%llu,"
                  "\"cache_read_input_tokens\":%llu,\"output_tokens\":%lld",
                  a->input_tokens, a->cache_write, a->cache_read, output_tokens);
    if (a->cache_write > 0) {
        sl_buf_printf(b,
                      ",\"cache_creation\":{\"ephemeral_5m_input_tokens\":%llu,"
                      "\"ephemeral_1h_input_tokens\":%llu}",
                      a->cache_write - a->cache_write_1h, a->cache_write_1h);
    }
    sl_buf_puts(b, "}");
}


static void
ant_full(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
         const ant_msg_t *a)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_printf(
        b,
        "{\"id\":\"msg_mock%llu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", a->id);
    sl__mock_json_str(b, a->model.p, a->model.len);
    sl_buf_puts(b, ",\"content\":[");
    if (a->thinking.len > 0) {
        sl_buf_puts(b, "{\"type\":\"thinking\",\"thinking\":");
        sl__mock_json_str(b, a->thinking.p, a->thinking.len);
        sl_buf_printf(b, ",\"signature\":\"%s\"},", a->signature);
    }
    if (a->tool_name.len > 0) {
        sl_buf_puts(b, "{\"type\":\"tool_use\",\"id\":\"" ANT_TOOL_ID "\",\"name\":");
        sl__mock_json_str(b, a->tool_name.p, a->tool_name.len);
        sl_buf_puts(b, ",\"input\":");
        sl_buf_append(b, a->reply.p, a->reply.len);
    } else {
        sl_buf_puts(b, "{\"type\":\"text\",\"text\":");
        sl__mock_json_str(b, a->reply.p, a->reply.len);
    }
    sl_buf_printf(b, "}],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":", a->stop_reason);
    ant_usage(b, a, a->output_tokens);
    sl_buf_puts(b, "}");
    sl__mock_emit(m, r, resp, 200, f, "application/json", a->extra);
}


/* Starts one SSE event in m->body, up to its data's JSON. */
static void
ant_open(sl_mock_t *m, const char *event)
{
    sl_buf_clear(&m->body);
    sl_buf_printf(&m->body, "event: %s\ndata: ", event);
}


/* Ends the event and frames it as one HTTP chunk (and segment). */
static void
ant_close(sl_mock_t *m, sl_mock_resp_t *resp, bool last)
{
    sl_buf_append(&m->body, "\n\n", 2);
    sl__mock_event(m, resp, last);
}


static void
ant_stream(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
           const ant_msg_t *a)
{
    sl_buf_t *b = &m->body;
    size_t chars = sl__mock_utf8_len(a->reply.p, a->reply.len);
    size_t pieces = f->chunks < chars ? f->chunks : chars;
    size_t at = 0;
    bool tool = a->tool_name.len > 0;
    int block = a->thinking.len > 0 ? 1 : 0;

    sl__mock_head(m, r, resp, 200, "text/event-stream; charset=utf-8", -1, f, a->extra);

    ant_open(m, "message_start");
    sl_buf_printf(b,
                  "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock%llu\","
                  "\"type\":\"message\",\"role\":\"assistant\",\"model\":",
                  a->id);
    sl__mock_json_str(b, a->model.p, a->model.len);
    sl_buf_puts(b, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    ant_usage(b, a, 1);
    sl_buf_puts(b, "}}");
    ant_close(m, resp, false);

    if (a->thinking.len > 0) {
        /* the thinking block first: start, one thinking_delta, the signature, stop */
        ant_open(m, "content_block_start");
        sl_buf_puts(b, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                       "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}");
        ant_close(m, resp, false);
        ant_open(m, "content_block_delta");
        sl_buf_puts(b, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                       "\"thinking_delta\",\"thinking\":");
        sl__mock_json_str(b, a->thinking.p, a->thinking.len);
        sl_buf_puts(b, "}}");
        ant_close(m, resp, false);
        ant_open(m, "content_block_delta");
        sl_buf_printf(b,
                      "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                      "\"signature_delta\",\"signature\":\"%s\"}}",
                      a->signature);
        ant_close(m, resp, false);
        ant_open(m, "content_block_stop");
        sl_buf_puts(b, "{\"type\":\"content_block_stop\",\"index\":0}");
        ant_close(m, resp, false);
    }
    ant_open(m, "content_block_start");
    if (tool) {
        sl_buf_printf(b,
                      "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
                      "{\"type\":\"tool_use\",\"id\":\"" ANT_TOOL_ID "\",\"name\":",
                      block);
        sl__mock_json_str(b, a->tool_name.p, a->tool_name.len);
        sl_buf_puts(b, ",\"input\":{}}}");
    } else {
        sl_buf_printf(b,
                      "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
                      "{\"type\":\"text\",\"text\":\"\"}}",
                      block);
    }
    ant_close(m, resp, false);

    /* sic: Anthropic's ping has the space */
    ant_open(m, "ping");
    sl_buf_puts(b, "{\"type\": \"ping\"}");
    ant_close(m, resp, false);

    for (size_t i = 0; i < pieces; i++) {
        /* piece i covers code points [i*chars/pieces, (i+1)*chars/pieces) */
        size_t want = (i + 1) * chars / pieces - i * chars / pieces;
        size_t len = sl__mock_utf8_prefix(a->reply.p + at, a->reply.len - at, want);

        ant_open(m, "content_block_delta");
        sl_buf_printf(b, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":", block);
        sl_buf_puts(b, tool ? "{\"type\":\"input_json_delta\",\"partial_json\":"
                            : "{\"type\":\"text_delta\",\"text\":");
        sl__mock_json_str(b, a->reply.p + at, len);
        sl_buf_puts(b, "}}");
        ant_close(m, resp, false);
        at += len;

        if (a->stream_error) {
            ant_open(m, "error");
            sl_buf_puts(b, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                           "\"message\":\"Overloaded\"}}");
            ant_close(m, resp, true);
            goto paced;
        }
    }

    ant_open(m, "content_block_stop");
    sl_buf_printf(b, "{\"type\":\"content_block_stop\",\"index\":%d}", block);
    ant_close(m, resp, false);

    ant_open(m, "message_delta");
    sl_buf_printf(b,
                  "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                  "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%lld}}",
                  a->stop_reason, a->output_tokens);
    ant_close(m, resp, false);

    ant_open(m, "message_stop");
    sl_buf_puts(b, "{\"type\":\"message_stop\"}");
    ant_close(m, resp, true);

paced:
    /* headers, message_start, content_block_start and ping go at once; each later event waits */
    resp->paced_from = ANT_PREAMBLE + (a->thinking.len > 0 ? 4 : 0);
    if (f->reset_after >= 0) {
        resp->reset_after = resp->paced_from
                            + ((size_t) f->reset_after < pieces ? (size_t) f->reset_after : pieces);
        if (resp->reset_after > resp->nseg) {
            resp->reset_after = resp->nseg;
        }
    }
}


/* The mock's signature of a thinking text: "sig_" + 16 hex digits of its FNV-1a hash. */
static void
ant_sign(const char *p, size_t len, char *out)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t) p[i]) * 1099511628211ull;
    }
    snprintf(out, 24, "sig_%016llx", (unsigned long long) h);
}


/*
 * Anthropic refuses a thinking block whose signature is not the one it
 * gave: the mock checks its own, so a gateway that changed a byte of the
 * thinking or of its signature is caught. NULL when every block is intact.
 */
static const char *
ant_check_thinking(const json_t *messages)
{
    const json_t *msg, *b;
    size_t i, k;
    char want[24];

    json_array_foreach(messages, i, msg)
    {
        json_array_foreach(json_object_get(msg, "content"), k, b)
        {
            const char *type = json_string_value(json_object_get(b, "type"));
            const json_t *t = json_object_get(b, "thinking");
            const char *sig = json_string_value(json_object_get(b, "signature"));

            if (type == NULL || strcmp(type, "thinking") != 0) {
                continue;
            }
            if (!json_is_string(t) || sig == NULL) {
                return "thinking blocks need thinking and signature";
            }
            ant_sign(json_string_value(t), json_string_length(t), want);
            if (strcmp(sig, want) != 0) {
                return "Invalid `signature` in `thinking` block";
            }
        }
    }
    return NULL;
}
