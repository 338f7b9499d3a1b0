/*
 * The Anthropic Messages frontend: POST /v1/messages. The client's body is
 * translated into the internal OpenAI chat body (a jansson DOM, dumped once)
 * and travels along untouched as call->native, so an Anthropic target can
 * forward it natively. Answers, typed stream events and errors go back in
 * Anthropic's shapes; an answer or event an Anthropic target produced
 * natively (raw_api SL_API_MESSAGES) goes back as the provider's bytes.
 *
 * An Anthropic target gets the client's own body (thinking, top_k,
 * output_config, documents, server tools, anthropic-beta and all); the
 * translation is for every other target. Where it differs from Anthropic's
 * API:
 *  - thinking becomes sluice_thinking (Gemini's budget) and reasoning_effort,
 *    output_config.format response_format, top_k top_k (messages_thinking());
 *    thinking and redacted_thinking blocks of earlier assistant turns are
 *    dropped (only the model that wrote them can read them back); documents
 *    with base64 data or text become file and text parts.
 *  - what only Anthropic's API takes (server tools, documents by URL,
 *    search results and other block types, mcp_servers, container) makes
 *    the request one for an Anthropic target only (call->untranslatable):
 *    every other target refuses it with a 400 naming it.
 *  - tool results, which Anthropic puts in a user turn, become tool messages
 *    placed before the rest of that turn.
 *  - an answer's stop_sequence is always null: the typed answer says that a
 *    stop sequence ended it (stop_reason "stop_sequence") but not which one.
 *  - a stream's message_start carries the usage known when the first events
 *    arrive: Anthropic and Gemini targets report the input tokens there; an
 *    OpenAI-shaped target counts only at the end, so message_start carries
 *    an estimate (the client's body in bytes / 4, rounded up) and the real
 *    counts come in message_delta.
 *  - message_delta and message_stop are written at the clean end of the
 *    stream (encode_end, after the ledger row), with the request's final
 *    usage; a failure after the commit point is an `error` event instead.
 */
#include "core/gateway/frontend_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"

/* Kind of the content block a stream has open. */
typedef enum msg_block {
    MSG_BLOCK_NONE = 0,
    MSG_BLOCK_TEXT,
    MSG_BLOCK_THINKING,
    MSG_BLOCK_TOOL,
} msg_block_e;

/* Stream encoder state of one attempt. */
typedef struct msg_stream {
    const sl_call_t *call;
    sl_str_t id;    /* literal, once START gave one */
    sl_str_t model; /* literal, once START gave one */
    sl_usage_t usage;
    sl_finish_e finish;
    long long nblocks; /* blocks opened so far: the open one is nblocks - 1 */
    msg_block_e block; /* the open block's kind */
    unsigned tool;     /* the tool call index of an open tool_use block */
    bool head;         /* a START came: message_start is owed */
    bool started;      /* message_start went out */
    bool pinged;       /* the ping went out */
    bool finished;     /* a FINISH came (raw: the provider's message_delta went out) */
    bool raw;          /* the provider's own events are going out */
    bool over;         /* message_stop or an error went out: nothing follows */
} msg_stream_t;

static int messages_decode(sl_call_t *call, sl_str_t body, sl_error_t *err);
static int messages_parse_error(sl_call_t *call, sl_str_t body, const sl_json_error_t *jerr,
                                const char *why, sl_error_t *err);
static int messages_translate(sl_pool_t *pool, json_t *in, sl_str_t *out, const char **why);
static int messages_system(json_t *system, json_t *msgs, const char **why);
static json_t *messages_text(json_t *b);
static int messages_turns(sl_pool_t *pool, json_t *messages, json_t *msgs, const char **why);
static int messages_user(sl_pool_t *pool, json_t *content, json_t *msgs, const char **why);
static int messages_document(sl_pool_t *pool, json_t *b, json_t *parts, const char **why);
static int messages_only_anthropic(sl_pool_t *pool, const char *what, const char *type,
                                   const char **why);
static int messages_image(json_t *b, json_t *parts, const char **why);
static int messages_tool_result(sl_pool_t *pool, json_t *b, json_t *msgs, const char **why);
static int messages_assistant(sl_pool_t *pool, json_t *content, json_t *msgs, const char **why);
static int messages_options(json_t *in, json_t *req, const char **why);
static int messages_tools(sl_pool_t *pool, json_t *in, json_t *req, const char **why);
static int messages_thinking(sl_pool_t *pool, json_t *in, json_t *req, const char **why);
static int messages_standin(sl_pool_t *pool, json_t *in, sl_str_t *out);
static const char *messages_dump(sl_pool_t *pool, json_t *v, size_t *len);
static const char *messages_model(const sl_call_t *call);
static int messages_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out);
static void messages_tool_input(sl_pool_t *pool, sl_str_t args, sl_buf_t *out);
static void messages_usage(sl_buf_t *out, const sl_usage_t *u, bool start);
static sl_str_t messages_id(const sl_call_t *call, sl_str_t lit);
static sl_str_t messages_served(const sl_call_t *call, sl_str_t lit);
static const char *messages_stop_reason(sl_finish_e f);
static void *messages_stream_open(const sl_call_t *call);
static int messages_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out);
static void messages_track(msg_stream_t *s, const sl_ev_t *ev);
static void messages_start(msg_stream_t *s, sl_buf_t *out);
static void messages_open(msg_stream_t *s, msg_block_e kind, const sl_ev_t *ev, sl_buf_t *out);
static void messages_close(msg_stream_t *s, sl_buf_t *out);
static void messages_delta(msg_stream_t *s, const char *type, const char *field, sl_str_t lit,
                           sl_buf_t *out);
static void messages_end_delta(msg_stream_t *s, const sl_usage_t *u, sl_buf_t *out);
static int messages_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out);
static int messages_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out);
static int messages_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out);
static void messages_error_object(sl_buf_t *out, const char *type, const char *message);
static const char *messages_status_type(int status);
static bool messages_type_known(const char *type);

const sl_frontend_t sl__frontend_messages = {
    .name = "messages",
    .api = SL_API_MESSAGES,
    .decode = messages_decode,
    .model = messages_model,
    .encode_answer = messages_encode_answer,
    .stream_open = messages_stream_open,
    .encode_events = messages_encode_events,
    .encode_end = messages_encode_end,
    .encode_stream_error = messages_encode_stream_error,
    .encode_error = messages_encode_error,
};


/*
 * The client's body -> the chat body, read as the chat frontend reads one;
 * the client's body stays as call->native. Messages for bodies that are not
 * a JSON object are jansson's, as when the gateway parsed with jansson.
 */
static int
messages_decode(sl_call_t *call, sl_str_t body, sl_error_t *err)
{
    sl_json_error_t jerr;
    sl_json_t *doc;
    json_t *in;
    const char *why = NULL;
    const char *untranslatable = NULL;
    sl_str_t chat;
    int rc;

    if (body.len == 0) {
        return sl__frontend_bad_request(err, NULL, NULL,
                                        "The request body is empty. Send a JSON object.");
    }
    in = sl_json_dom(call->pool, body);
    if (!json_is_object(in)) {
        return messages_parse_error(call, body, NULL,
                                    json_is_array(in) ? "the request body must be a JSON object"
                                                      : "'[' or '{' expected",
                                    err);
    }
    rc = messages_translate(call->pool, in, &chat, &why);
    if (rc == SL_EDENIED) {
        /* only an Anthropic target can take it: the chat body is a stand-in never sent */
        untranslatable = why;
        rc = messages_standin(call->pool, in, &chat);
    }
    if (rc < 0) {
        return sl__frontend_bad_request(err, NULL, NULL, why);
    }
    doc = sl_json_create(call->pool);
    if (sl_json_parse(doc, body.p, body.len, &jerr) < 0) {
        /* jansson took it: only the reader's own limits can refuse it here */
        return messages_parse_error(call, body, &jerr, NULL, err);
    }
    call->native = body;
    call->native_doc = doc;
    rc = sl__frontend_read_chat(call, chat, err);
    if (rc == 0) {
        call->untranslatable = untranslatable;
    }
    return rc;
}


/*
 * The 400 for a body that is not a JSON object: jansson's text when jansson
 * refuses it, else the reader's reason (jerr) or why.
 */
static int
messages_parse_error(sl_call_t *call, sl_str_t body, const sl_json_error_t *jerr, const char *why,
                     sl_error_t *err)
{
    json_error_t e;
    json_t *root = json_loadb(body.p, body.len, JSON_REJECT_DUPLICATES, &e);
    const char *msg;

    if (root == NULL) {
        msg = sl_psprintf(call->pool,
                          "We could not parse the JSON body of your request: %s "
                          "(line %d, column %d).",
                          e.text, e.line, e.column);
    } else if (jerr != NULL) {
        json_decref(root);
        msg = sl_psprintf(call->pool,
                          "We could not parse the JSON body of your request: %s "
                          "(line %u, column %u).",
                          jerr->text, jerr->line, jerr->column);
    } else {
        json_decref(root);
        msg = sl_psprintf(call->pool, "We could not parse the JSON body of your request: %s.", why);
    }
    return sl__frontend_bad_request(err, NULL, NULL, msg);
}


/*
 * The Anthropic request in -> the OpenAI chat body (NUL-terminated, in
 * pool). Returns 0, SL_EPARSE with *why saying what to fix, or SL_EDENIED
 * with *why naming what only Anthropic's API takes (the request is then
 * for a native target only).
 */
static int
messages_translate(sl_pool_t *pool, json_t *in, sl_str_t *out, const char **why)
{
    json_t *req = json_object();
    json_t *msgs = json_array();
    json_t *v;
    size_t len = 0;
    int rc;

    v = json_object_get(in, "model");
    if (v != NULL) {
        json_object_set(req, "model", v);
    }
    json_object_set_new(req, "messages", msgs);
    rc = messages_system(json_object_get(in, "system"), msgs, why);
    if (rc < 0) {
        goto out_free_req;
    }
    v = json_object_get(in, "max_tokens");
    if (v == NULL) {
        *why = "max_tokens: Field required";
        rc = SL_EPARSE;
        goto out_free_req;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        *why = "max_tokens: Input should be a positive integer";
        rc = SL_EPARSE;
        goto out_free_req;
    }
    json_object_set(req, "max_tokens", v);
    rc = messages_turns(pool, json_object_get(in, "messages"), msgs, why);
    if (rc < 0) {
        goto out_free_req;
    }
    rc = messages_options(in, req, why);
    if (rc < 0) {
        goto out_free_req;
    }
    rc = messages_tools(pool, in, req, why);
    if (rc < 0) {
        goto out_free_req;
    }
    rc = messages_thinking(pool, in, req, why);
    if (rc < 0) {
        goto out_free_req;
    }
    v = json_object_get(in, "stream");
    if (v != NULL && !json_is_boolean(v) && !json_is_null(v)) {
        *why = "stream: Input should be a valid boolean";
        rc = SL_EPARSE;
        goto out_free_req;
    }
    if (json_is_true(v)) {
        /* message_delta carries usage: ask every OpenAI-shaped target for it */
        json_object_set_new(req, "stream", json_true());
        json_object_set_new(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    out->p = messages_dump(pool, req, &len);
    out->len = len;
    if (out->p == NULL) {
        *why = "the request cannot be encoded";
        rc = SL_EPARSE;
    }

out_free_req:
    json_decref(req);
    return rc;
}


/* system: a string, or text blocks (cache_control kept, as the Anthropic adapter reads it). */
static int
messages_system(json_t *system, json_t *msgs, const char **why)
{
    json_t *parts;
    json_t *b;
    size_t i;

    if (system == NULL || json_is_null(system)) {
        return 0;
    }
    if (json_is_string(system)) {
        if (json_string_length(system) > 0) {
            json_array_append_new(msgs,
                                  json_pack("{s:s,s:O}", "role", "system", "content", system));
        }
        return 0;
    }
    if (!json_is_array(system)) {
        *why = "system: Input should be a valid string or a list of text blocks";
        return SL_EPARSE;
    }
    parts = json_array();
    json_array_foreach(system, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));

        if (type == NULL || strcmp(type, "text") != 0
            || !json_is_string(json_object_get(b, "text"))) {
            json_decref(parts);
            *why = "system: only text blocks are supported";
            return SL_EPARSE;
        }
        json_array_append_new(parts, messages_text(b));
    }
    if (json_array_size(parts) > 0) {
        json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "system", "content", parts));
    } else {
        json_decref(parts);
    }
    return 0;
}


/* A text block -> an OpenAI text part (cache_control kept). New reference. */
static json_t *
messages_text(json_t *b)
{
    json_t *part = json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(b, "text"));
    json_t *cc = json_object_get(b, "cache_control");

    if (json_is_object(cc)) {
        json_object_set(part, "cache_control", cc);
    }
    return part;
}


static int
messages_turns(sl_pool_t *pool, json_t *messages, json_t *msgs, const char **why)
{
    json_t *m;
    size_t i;
    int rc;

    if (messages == NULL) {
        *why = "messages: Field required";
        return SL_EPARSE;
    }
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        *why = "messages: Input should be a non-empty list";
        return SL_EPARSE;
    }
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");

        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
            *why = "messages: each message's role must be \"user\" or \"assistant\"";
            return SL_EPARSE;
        }
        if (json_is_string(content)) {
            json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", role, "content", content));
            continue;
        }
        if (!json_is_array(content)) {
            *why = "messages: content must be a string or a list of content blocks";
            return SL_EPARSE;
        }
        rc = strcmp(role, "user") == 0 ? messages_user(pool, content, msgs, why)
                                       : messages_assistant(pool, content, msgs, why);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}


/* A user turn's blocks: tool results first (as tool messages), then the rest as one message. */
static int
messages_user(sl_pool_t *pool, json_t *content, json_t *msgs, const char **why)
{
    json_t *parts = json_array();
    json_t *b;
    size_t i;
    int rc = 0;

    json_array_foreach(content, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));

        if (type == NULL) {
            *why = "messages: a content block has no type";
            rc = SL_EPARSE;
            break;
        }
        if (strcmp(type, "text") == 0 && json_is_string(json_object_get(b, "text"))) {
            json_array_append_new(parts, messages_text(b));
        } else if (strcmp(type, "image") == 0) {
            rc = messages_image(b, parts, why);
        } else if (strcmp(type, "tool_result") == 0) {
            rc = messages_tool_result(pool, b, msgs, why);
        } else if (strcmp(type, "document") == 0) {
            rc = messages_document(pool, b, parts, why);
        } else {
            rc = messages_only_anthropic(pool, "content blocks of type", type, why);
        }
        if (rc < 0) {
            break;
        }
    }
    if (rc == 0 && json_array_size(parts) > 0) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", parts));
    }
    json_decref(parts);
    return rc;
}


/* image block (base64 or url source) -> image_url part. */
static int
messages_image(json_t *b, json_t *parts, const char **why)
{
    json_t *src = json_object_get(b, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    const char *mt = json_string_value(json_object_get(src, "media_type"));
    const char *data = json_string_value(json_object_get(src, "data"));
    const char *url = json_string_value(json_object_get(src, "url"));
    json_t *u = NULL;

    if (type != NULL && strcmp(type, "base64") == 0 && mt != NULL && data != NULL) {
        u = json_sprintf("data:%s;base64,%s", mt, data);
    } else if (type != NULL && strcmp(type, "url") == 0 && url != NULL) {
        u = json_string(url);
    }
    if (u == NULL) {
        *why = "messages: an image needs a base64 or url source";
        return SL_EPARSE;
    }
    json_array_append_new(parts,
                          json_pack("{s:s,s:{s:o}}", "type", "image_url", "image_url", "url", u));
    return 0;
}


/* tool_result -> a tool message; its content a string (text blocks joined). */
static int
messages_tool_result(sl_pool_t *pool, json_t *b, json_t *msgs, const char **why)
{
    json_t *id = json_object_get(b, "tool_use_id");
    json_t *content = json_object_get(b, "content");
    sl_buf_t text = SL_BUF_INIT;
    json_t *part;
    size_t i;

    if (!json_is_string(id)) {
        *why = "messages: tool_result.tool_use_id: Field required";
        return SL_EPARSE;
    }
    if (json_is_string(content)) {
        sl_buf_append(&text, json_string_value(content), json_string_length(content));
    } else if (json_is_array(content)) {
        json_array_foreach(content, i, part)
        {
            json_t *t = json_object_get(part, "text");
            const char *type = json_string_value(json_object_get(part, "type"));

            if (type != NULL && strcmp(type, "text") != 0) {
                sl_buf_free(&text);
                return messages_only_anthropic(pool, "tool_result content blocks of type", type,
                                               why);
            }
            if (type == NULL || !json_is_string(t)) {
                sl_buf_free(&text);
                *why = "messages: tool_result content may hold text blocks only";
                return SL_EPARSE;
            }
            if (text.len > 0) {
                sl_buf_puts(&text, "\n");
            }
            sl_buf_append(&text, json_string_value(t), json_string_length(t));
        }
    } else if (content != NULL && !json_is_null(content)) {
        *why = "messages: tool_result content must be a string or a list of text blocks";
        return SL_EPARSE;
    }
    json_array_append_new(msgs, json_pack("{s:s,s:O,s:s%}", "role", "tool", "tool_call_id", id,
                                          "content", text.len > 0 ? text.p : "", text.len));
    sl_buf_free(&text);
    return 0;
}


/* An assistant turn's blocks: text joined into content, tool_use blocks into tool_calls. */
static int
messages_assistant(sl_pool_t *pool, json_t *content, json_t *msgs, const char **why)
{
    json_t *calls = json_array();
    json_t *msg;
    sl_buf_t text = SL_BUF_INIT;
    json_t *b;
    size_t i;

    json_array_foreach(content, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        json_t *t = json_object_get(b, "text");

        if (type != NULL && strcmp(type, "text") == 0 && json_is_string(t)) {
            sl_buf_append(&text, json_string_value(t), json_string_length(t));
        } else if (type != NULL && strcmp(type, "tool_use") == 0) {
            json_t *id = json_object_get(b, "id");
            json_t *name = json_object_get(b, "name");
            json_t *input = json_object_get(b, "input");
            char *args;

            if (!json_is_string(id) || !json_is_string(name)) {
                *why = "messages: tool_use blocks need an id and a name";
                goto out_refuse;
            }
            args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
            json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", id, "type",
                                                   "function", "function", "name", name,
                                                   "arguments", args != NULL ? args : "{}"));
            free(args);
        } else if (type != NULL
                   && (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0)) {
            continue; /* only the model that wrote them could read them back */
        } else if (type != NULL) {
            json_decref(calls);
            sl_buf_free(&text);
            return messages_only_anthropic(pool, "content blocks of type", type, why);
        } else {
            *why = "messages: a content block has no type";
            goto out_refuse;
        }
    }
    msg = json_pack("{s:s}", "role", "assistant");
    if (text.len > 0 || json_array_size(calls) == 0) {
        json_object_set_new(msg, "content", json_stringn(text.len > 0 ? text.p : "", text.len));
    } else {
        json_object_set_new(msg, "content", json_null());
    }
    if (json_array_size(calls) > 0) {
        json_object_set(msg, "tool_calls", calls);
    }
    json_array_append_new(msgs, msg);
    json_decref(calls);
    sl_buf_free(&text);
    return 0;

out_refuse:
    json_decref(calls);
    sl_buf_free(&text);
    return SL_EPARSE;
}


/* stop_sequences, temperature, top_p, metadata.user_id (top_k and thinking are dropped). */
static int
messages_options(json_t *in, json_t *req, const char **why)
{
    json_t *v = json_object_get(in, "stop_sequences");
    json_t *s;
    size_t i;

    if (json_is_array(v) && json_array_size(v) > 0) {
        json_array_foreach(v, i, s)
        {
            if (!json_is_string(s)) {
                *why = "stop_sequences: Input should be a list of strings";
                return SL_EPARSE;
            }
        }
        json_object_set(req, "stop", v);
    } else if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
        *why = "stop_sequences: Input should be a list of strings";
        return SL_EPARSE;
    }
    v = json_object_get(in, "temperature");
    if (json_is_number(v)) {
        json_object_set(req, "temperature", v);
    } else if (v != NULL && !json_is_null(v)) {
        *why = "temperature: Input should be a number";
        return SL_EPARSE;
    }
    v = json_object_get(in, "top_p");
    if (json_is_number(v)) {
        json_object_set(req, "top_p", v);
    } else if (v != NULL && !json_is_null(v)) {
        *why = "top_p: Input should be a number";
        return SL_EPARSE;
    }
    v = json_object_get(json_object_get(in, "metadata"), "user_id");
    if (json_is_string(v)) {
        json_object_set(req, "user", v);
    }
    return 0;
}


/* tools (custom ones only) and tool_choice. */
static int
messages_tools(sl_pool_t *pool, json_t *in, json_t *req, const char **why)
{
    json_t *tools = json_object_get(in, "tools");
    json_t *tc = json_object_get(in, "tool_choice");
    const char *type = json_string_value(json_object_get(tc, "type"));
    json_t *out;
    json_t *t;
    size_t i;

    if (tools != NULL && !json_is_null(tools) && !json_is_array(tools)) {
        *why = "tools: Input should be a valid list";
        return SL_EPARSE;
    }
    if (json_array_size(tools) > 0) {
        out = json_array();
        json_object_set_new(req, "tools", out);
        json_array_foreach(tools, i, t)
        {
            const char *tt = json_string_value(json_object_get(t, "type"));
            json_t *name = json_object_get(t, "name");
            json_t *desc = json_object_get(t, "description");
            json_t *schema = json_object_get(t, "input_schema");
            json_t *fn;

            if (tt != NULL && strcmp(tt, "custom") != 0) {
                /* web_search_20250305, code_execution, bash, text_editor, ...: Anthropic runs them
                 */
                return messages_only_anthropic(pool, "server tools like", tt, why);
            }
            if (!json_is_string(name)) {
                *why = "tools: a custom tool needs a name";
                return SL_EPARSE;
            }
            fn = json_pack("{s:O}", "name", name);
            if (json_is_string(desc)) {
                json_object_set(fn, "description", desc);
            }
            if (json_is_object(schema)) {
                json_object_set(fn, "parameters", schema);
            }
            json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
        }
    }
    if (tc == NULL || json_is_null(tc)) {
        return 0;
    }
    if (type == NULL) {
        *why = "tool_choice: Input should be an object with a type";
        return SL_EPARSE;
    }
    if (strcmp(type, "auto") == 0) {
        json_object_set_new(req, "tool_choice", json_string("auto"));
    } else if (strcmp(type, "any") == 0) {
        json_object_set_new(req, "tool_choice", json_string("required"));
    } else if (strcmp(type, "none") == 0) {
        json_object_set_new(req, "tool_choice", json_string("none"));
    } else if (strcmp(type, "tool") == 0 && json_is_string(json_object_get(tc, "name"))) {
        json_object_set_new(req, "tool_choice",
                            json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                                      json_object_get(tc, "name")));
    } else {
        *why = "tool_choice: type must be auto, any, tool (with a name) or none";
        return SL_EPARSE;
    }
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use"))
        && json_array_size(tools) > 0) {
        json_object_set_new(req, "parallel_tool_calls", json_false());
    }
    return 0;
}


/* v as compact JSON in pool, NUL-terminated; NULL when jansson cannot encode it. */
static const char *
messages_dump(sl_pool_t *pool, json_t *v, size_t *len)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    char *p;

    if (n == 0) {
        return NULL;
    }
    p = sl_palloc(pool, n + 1);
    json_dumpb(v, p, n, JSON_COMPACT | JSON_ENCODE_ANY);
    p[n] = '\0';
    *len = n;
    return p;
}


/* Something only Anthropic's API takes: *why names it (pool). Returns SL_EDENIED. */
static int
messages_only_anthropic(sl_pool_t *pool, const char *what, const char *type, const char **why)
{
    *why = sl_psprintf(pool, "%s `%s`: only Anthropic's API takes them", what, type);
    return SL_EDENIED;
}


/*
 * A document block: base64 data (a PDF) -> a file part, plain text -> a
 * text part; one by URL or by a file id is fetched by Anthropic only.
 */
static int
messages_document(sl_pool_t *pool, json_t *b, json_t *parts, const char **why)
{
    json_t *src = json_object_get(b, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    const char *mt = json_string_value(json_object_get(src, "media_type"));
    json_t *data = json_object_get(src, "data");
    json_t *title = json_object_get(b, "title");
    json_t *file;

    if (type != NULL && strcmp(type, "base64") == 0 && mt != NULL && json_is_string(data)) {
        file = json_pack("{s:o}", "file_data",
                         json_sprintf("data:%s;base64,%s", mt, json_string_value(data)));
        if (json_is_string(title)) {
            json_object_set(file, "filename", title);
        }
        json_array_append_new(parts, json_pack("{s:s,s:o}", "type", "file", "file", file));
        return 0;
    }
    if (type != NULL && strcmp(type, "text") == 0 && json_is_string(data)) {
        json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text", data));
        return 0;
    }
    if (type == NULL) {
        *why = "messages: a document needs a source with a type";
        return SL_EPARSE;
    }
    return messages_only_anthropic(pool, "document sources of type", type, why);
}


/*
 * thinking, output_config (and the older output_format), top_k and what
 * only Anthropic runs (mcp_servers, container):
 *  - thinking enabled with budget_tokens, or adaptive, or disabled, goes
 *    as sluice_thinking (Gemini's thinking budget takes it exactly) and as
 *    reasoning_effort for OpenAI-shaped targets: a budget up to 2048 is
 *    low, up to 8192 medium, more high; adaptive is medium;
 *  - output_config.format (json_schema) is response_format, with the
 *    schema strict; output_config.effort is reasoning_effort;
 *  - top_k goes as top_k.
 */
static int
messages_thinking(sl_pool_t *pool, json_t *in, json_t *req, const char **why)
{
    json_t *thinking = json_object_get(in, "thinking");
    json_t *oc = json_object_get(in, "output_config");
    json_t *format = json_object_get(oc, "format");
    json_t *effort = json_object_get(oc, "effort");
    json_t *top_k = json_object_get(in, "top_k");
    const char *type = json_string_value(json_object_get(thinking, "type"));
    json_t *v;

    v = json_object_get(in, "mcp_servers");
    if (json_array_size(v) > 0) {
        return messages_only_anthropic(pool, "request fields like", "mcp_servers", why);
    }
    v = json_object_get(in, "container");
    if (v != NULL && !json_is_null(v)) {
        return messages_only_anthropic(pool, "request fields like", "container", why);
    }
    if (thinking != NULL && !json_is_null(thinking)) {
        json_t *budget = json_object_get(thinking, "budget_tokens");

        if (type != NULL && strcmp(type, "enabled") == 0 && json_is_integer(budget)
            && json_integer_value(budget) >= 1) {
            json_int_t n = json_integer_value(budget);

            json_object_set_new(req, "sluice_thinking",
                                json_pack("{s:s,s:O}", "type", "enabled", "budget_tokens", budget));
            json_object_set_new(req, "reasoning_effort",
                                json_string(n <= 2048   ? "low"
                                            : n <= 8192 ? "medium"
                                                        : "high"));
        } else if (type != NULL && strcmp(type, "adaptive") == 0) {
            json_object_set_new(req, "sluice_thinking", json_pack("{s:s}", "type", "adaptive"));
            json_object_set_new(req, "reasoning_effort", json_string("medium"));
        } else if (type != NULL && strcmp(type, "disabled") == 0) {
            json_object_set_new(req, "sluice_thinking", json_pack("{s:s}", "type", "disabled"));
        } else {
            *why = "thinking: expected {\"type\": \"enabled\", \"budget_tokens\": N}, "
                   "{\"type\": \"adaptive\"} or {\"type\": \"disabled\"}";
            return SL_EPARSE;
        }
    }
    if (format == NULL || json_is_null(format)) {
        format = json_object_get(in, "output_format");
    }
    if (format != NULL && !json_is_null(format)) {
        const char *ft = json_string_value(json_object_get(format, "type"));
        json_t *schema = json_object_get(format, "schema");

        if (ft == NULL || strcmp(ft, "json_schema") != 0 || !json_is_object(schema)) {
            *why = "output_config.format: expected {\"type\": \"json_schema\", \"schema\": {...}}";
            return SL_EPARSE;
        }
        json_object_set_new(req, "response_format",
                            json_pack("{s:s,s:{s:s,s:O,s:b}}", "type", "json_schema", "json_schema",
                                      "name", "output", "schema", schema, "strict", 1));
    }
    if (json_is_string(effort)) {
        json_object_set(req, "reasoning_effort", effort);
    } else if (effort != NULL && !json_is_null(effort)) {
        *why = "output_config.effort: Input should be a string";
        return SL_EPARSE;
    }
    if (json_is_integer(top_k) && json_integer_value(top_k) >= 1) {
        json_object_set(req, "top_k", top_k);
    } else if (top_k != NULL && !json_is_null(top_k)) {
        *why = "top_k: Input should be a positive integer";
        return SL_EPARSE;
    }
    return 0;
}


/*
 * The chat body of a request only an Anthropic target can serve: its
 * model, max_tokens and stream, and one empty user turn. Never sent; it
 * gives the driver what it reads (model, stream, the output limit).
 */
static int
messages_standin(sl_pool_t *pool, json_t *in, sl_str_t *out)
{
    json_t *model = json_object_get(in, "model");
    json_t *max = json_object_get(in, "max_tokens");
    json_t *req = json_pack("{s:[{s:s,s:s}]}", "messages", "role", "user", "content", "");
    size_t len = 0;

    if (model != NULL) {
        json_object_set(req, "model", model);
    }
    if (json_is_integer(max)) {
        json_object_set(req, "max_tokens", max);
    }
    if (json_is_true(json_object_get(in, "stream"))) {
        json_object_set_new(req, "stream", json_true());
    }
    out->p = messages_dump(pool, req, &len);
    out->len = len;
    json_decref(req);
    return out->p != NULL ? 0 : SL_EPARSE;
}


/* The model the client named, from its own body (the chat body holds a copy). */
static const char *
messages_model(const sl_call_t *call)
{
    sl_str_t s;

    if (sl_json_string(call->native_doc, sl_json_get(call->native_doc, SL_JSON_ROOT, "model"),
                       call->pool, &s)
        < 0) {
        return NULL;
    }
    return sl_pstrndup(call->pool, s.p, s.len);
}


/* lit, or "msg_<request id>" when the provider gave no id. */
static sl_str_t
messages_id(const sl_call_t *call, sl_str_t lit)
{
    const char *id;

    if (lit.len >= 2) {
        return lit;
    }
    id = sl_psprintf(call->pool, "msg_%s", call->request_id != NULL ? call->request_id : "");
    return sl_jstr_quote(call->pool, (sl_str_t){ id, strlen(id) });
}


/* lit, or the target's model name when the provider named none. */
static sl_str_t
messages_served(const sl_call_t *call, sl_str_t lit)
{
    const char *m = call->target != NULL ? call->target->model : "";

    if (lit.len >= 2) {
        return lit;
    }
    return sl_jstr_quote(call->pool, (sl_str_t){ m, strlen(m) });
}


/* Anthropic's stop_reason; an answer that did not say ended its turn. */
static const char *
messages_stop_reason(sl_finish_e f)
{
    const char *r = sl_finish_anthropic(f);

    return r != NULL ? r : "end_turn";
}


/*
 * A whole answer -> an Anthropic message: the first choice's thinking
 * (signature byte-identical), text and tool_use blocks, in that order.
 */
static int
messages_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out)
{
    const sl_choice_t *c;
    sl_str_t id;
    sl_str_t model;
    bool first = true;

    if (a->raw.p != NULL && a->raw_api == SL_API_MESSAGES) {
        sl_buf_append(out, a->raw.p, a->raw.len);
        return 0;
    }
    if (a->nchoices == 0) {
        return SL_EPARSE;
    }
    c = &a->choices[0];
    id = messages_id(call, a->id);
    model = messages_served(call, a->model);
    sl_buf_puts(out, "{\"id\":");
    sl_buf_append(out, id.p, id.len);
    sl_buf_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sl_buf_append(out, model.p, model.len);
    sl_buf_puts(out, ",\"content\":[");
    if (c->reasoning.len > 2 || c->signature.len > 2) {
        sl_buf_puts(out, "{\"type\":\"thinking\",\"thinking\":");
        if (c->reasoning.len >= 2) {
            sl_buf_append(out, c->reasoning.p, c->reasoning.len);
        } else {
            sl_buf_puts(out, "\"\"");
        }
        sl_buf_puts(out, ",\"signature\":");
        if (c->signature.len >= 2) {
            sl_buf_append(out, c->signature.p, c->signature.len);
        } else {
            sl_buf_puts(out, "\"\"");
        }
        sl_buf_puts(out, "}");
        first = false;
    }
    if (c->text.len > 2) {
        sl_buf_puts(out, first ? "{\"type\":\"text\",\"text\":" : ",{\"type\":\"text\",\"text\":");
        sl_buf_append(out, c->text.p, c->text.len);
        sl_buf_puts(out, "}");
        first = false;
    }
    for (size_t k = 0; k < c->ntools; k++) {
        const sl_tool_call_t *t = &c->tools[k];

        sl_buf_puts(out,
                    first ? "{\"type\":\"tool_use\",\"id\":" : ",{\"type\":\"tool_use\",\"id\":");
        if (t->id.len >= 2) {
            sl_buf_append(out, t->id.p, t->id.len);
        } else {
            sl_buf_puts(out, "\"\"");
        }
        sl_buf_puts(out, ",\"name\":");
        if (t->name.len >= 2) {
            sl_buf_append(out, t->name.p, t->name.len);
        } else {
            sl_buf_puts(out, "\"\"");
        }
        sl_buf_puts(out, ",\"input\":");
        messages_tool_input(call->pool, t->args, out);
        sl_buf_puts(out, "}");
        first = false;
    }
    sl_buf_printf(out, "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":",
                  messages_stop_reason(c->finish));
    messages_usage(out, &a->usage, false);
    sl_buf_puts(out, "}");
    return 0;
}


/*
 * A tool call's arguments (a literal holding JSON text) -> its input
 * object. Anthropic's input is always an object: arguments that do not
 * hold one (empty, cut off, an array) become {}.
 */
static void
messages_tool_input(sl_pool_t *pool, sl_str_t args, sl_buf_t *out)
{
    sl_str_t text;
    json_t *v = NULL;
    size_t n;
    size_t at;

    if (args.len > 2 && sl_jstr_decode(pool, args, &text) == 0) {
        v = json_loadb(text.p, text.len, 0, NULL);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        sl_buf_puts(out, "{}");
        return;
    }
    n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    at = out->len;
    sl_buf_reserve(out, n);
    out->len = at + json_dumpb(v, out->p + at, n, JSON_COMPACT);
    json_decref(v);
}


/*
 * Anthropic usage: input_tokens counts neither cache reads nor cache
 * writes; the cache fields appear when the provider reported them, with
 * the split by time to live when there were writes. At a stream's start
 * output_tokens is 0.
 */
static void
messages_usage(sl_buf_t *out, const sl_usage_t *u, bool start)
{
    uint64_t cached = u->cached_tokens + u->cache_write_tokens;
    uint64_t input = u->prompt_tokens > cached ? u->prompt_tokens - cached : 0;
    uint64_t h1 = u->cache_write_1h_tokens < u->cache_write_tokens ? u->cache_write_1h_tokens
                                                                   : u->cache_write_tokens;

    sl_buf_printf(out, "{\"input_tokens\":%llu", (unsigned long long) input);
    if (u->cache_write_tokens > 0) {
        sl_buf_printf(out, ",\"cache_creation_input_tokens\":%llu",
                      (unsigned long long) u->cache_write_tokens);
    }
    if (u->cached_tokens > 0) {
        sl_buf_printf(out, ",\"cache_read_input_tokens\":%llu",
                      (unsigned long long) u->cached_tokens);
    }
    if (u->cache_write_tokens > 0) {
        sl_buf_printf(out,
                      ",\"cache_creation\":{\"ephemeral_5m_input_tokens\":%llu,"
                      "\"ephemeral_1h_input_tokens\":%llu}",
                      (unsigned long long) (u->cache_write_tokens - h1), (unsigned long long) h1);
    }
    sl_buf_printf(out, ",\"output_tokens\":%llu}",
                  (unsigned long long) (start ? 0 : u->completion_tokens));
}


static void *
messages_stream_open(const sl_call_t *call)
{
    msg_stream_t *s = sl_pcalloc(call->pool, sizeof(*s));

    s->call = call;
    return s;
}


/*
 * One batch of typed events -> Anthropic events. message_start waits for
 * the end of the batch that brought the answer's head, or for the first
 * block, so that usage reported with the head (Anthropic's message_start,
 * Gemini's first chunk) is in it. Only the first choice is encoded.
 */
static int
messages_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out)
{
    msg_stream_t *s = state;

    if (s->over) {
        return 0;
    }
    if (evs->raw.p != NULL && evs->raw_api == SL_API_MESSAGES) {
        s->raw = true;
        sl_buf_append(out, evs->raw.p, evs->raw.len);
    }
    if (s->raw) {
        /*
         * The provider's own events go out: keep what encode_end needs.
         * A batch the adapter gave no raw bytes for is not encoded here,
         * since blocks of ours would collide with the provider's indexes.
         */
        for (size_t i = 0; i < evs->n; i++) {
            messages_track(s, &evs->v[i]);
        }
        if (s->head) {
            s->started = true;
        }
        return 0;
    }
    for (size_t i = 0; i < evs->n; i++) {
        const sl_ev_t *ev = &evs->v[i];

        if (sl_ev_is_output(ev)) {
            /* the driver commits on it, even when it is empty: the message has begun */
            messages_start(s, out);
        }
        if (ev->type != SL_EV_START && ev->type != SL_EV_USAGE && ev->choice != 0) {
            continue;
        }
        switch (ev->type) {
        case SL_EV_TEXT:
            if (ev->text.len > 2) {
                messages_open(s, MSG_BLOCK_TEXT, ev, out);
                messages_delta(s, "text_delta", "text", ev->text, out);
            }
            break;
        case SL_EV_REASONING:
            if (ev->text.len > 2 || ev->signature.len > 2) {
                messages_open(s, MSG_BLOCK_THINKING, ev, out);
            }
            if (ev->text.len > 2) {
                messages_delta(s, "thinking_delta", "thinking", ev->text, out);
            }
            if (ev->signature.len > 2) {
                messages_delta(s, "signature_delta", "signature", ev->signature, out);
            }
            break;
        case SL_EV_TOOL_CALL:
            if (s->block != MSG_BLOCK_TOOL || s->tool != ev->index) {
                messages_open(s, MSG_BLOCK_TOOL, ev, out);
            }
            break;
        case SL_EV_TOOL_ARGS:
            /* pieces of a call whose block is not the open one have nowhere to go */
            if (s->block == MSG_BLOCK_TOOL && s->tool == ev->index && ev->text.len > 2) {
                messages_delta(s, "input_json_delta", "partial_json", ev->text, out);
            }
            break;
        case SL_EV_FINISH:
            messages_track(s, ev);
            messages_start(s, out);
            messages_close(s, out);
            break;
        default:
            messages_track(s, ev);
            break;
        }
    }
    if (s->head) {
        messages_start(s, out);
    }
    return 0;
}


/* What the stream's head, usage and end need from one event. */
static void
messages_track(msg_stream_t *s, const sl_ev_t *ev)
{
    switch (ev->type) {
    case SL_EV_START:
        if (ev->id.len >= 2 && s->id.p == NULL) {
            s->id = ev->id;
        }
        if (ev->name.len >= 2 && s->model.p == NULL) {
            s->model = ev->name;
        }
        s->head = true;
        break;
    case SL_EV_USAGE:
        if (ev->usage != NULL) {
            s->usage = *ev->usage;
        }
        break;
    case SL_EV_FINISH:
        if (ev->choice == 0) {
            s->finish = ev->finish;
            s->finished = true;
        }
        break;
    default:
        break;
    }
}


/* message_start, once. */
static void
messages_start(msg_stream_t *s, sl_buf_t *out)
{
    sl_str_t id;
    sl_str_t model;

    if (s->started) {
        return;
    }
    s->started = true;
    id = messages_id(s->call, s->id);
    model = messages_served(s->call, s->model);
    sl_buf_puts(out,
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":");
    sl_buf_append(out, id.p, id.len);
    sl_buf_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sl_buf_append(out, model.p, model.len);
    sl_buf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    if (s->usage.known || s->usage.prompt_tokens > 0) {
        messages_usage(out, &s->usage, true);
    } else {
        /* an OpenAI-shaped target counts only at the end: an estimate, see the file comment */
        sl_usage_t est;

        memset(&est, 0, sizeof(est));
        est.prompt_tokens = (s->call->native.len + 3) / 4;
        messages_usage(out, &est, true);
    }
    sl_buf_puts(out, "}}\n\n");
}


/*
 * Closes the open block and opens one of kind (a tool_use block from ev's
 * id, name and index); the first block is followed by a ping, as Anthropic
 * sends one there. Does nothing when a block of that kind is open, except
 * for tool_use, which the caller decides.
 */
static void
messages_open(msg_stream_t *s, msg_block_e kind, const sl_ev_t *ev, sl_buf_t *out)
{
    if (s->block == kind && kind != MSG_BLOCK_TOOL) {
        return;
    }
    messages_start(s, out);
    messages_close(s, out);
    sl_buf_printf(out,
                  "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                  "\"index\":%lld,\"content_block\":",
                  s->nblocks);
    switch (kind) {
    case MSG_BLOCK_TEXT:
        sl_buf_puts(out, "{\"type\":\"text\",\"text\":\"\"}}\n\n");
        break;
    case MSG_BLOCK_THINKING:
        sl_buf_puts(out, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n");
        break;
    default:
        sl_buf_puts(out, "{\"type\":\"tool_use\",\"id\":");
        if (ev->id.len > 2) {
            sl_buf_append(out, ev->id.p, ev->id.len);
        } else {
            const char *id =
                sl_psprintf(s->call->pool, "toolu_%s_%u",
                            s->call->request_id != NULL ? s->call->request_id : "", ev->index);

            sl_json_quote(out, (sl_str_t){ id, strlen(id) });
        }
        sl_buf_puts(out, ",\"name\":");
        if (ev->name.len >= 2) {
            sl_buf_append(out, ev->name.p, ev->name.len);
        } else {
            sl_buf_puts(out, "\"\"");
        }
        sl_buf_puts(out, ",\"input\":{}}}\n\n");
        s->tool = ev->index;
        break;
    }
    s->block = kind;
    s->nblocks++;
    if (!s->pinged) {
        /* sic: Anthropic's ping has the space */
        sl_buf_puts(out, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
        s->pinged = true;
    }
}


static void
messages_close(msg_stream_t *s, sl_buf_t *out)
{
    if (s->block == MSG_BLOCK_NONE) {
        return;
    }
    sl_buf_printf(out,
                  "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                  "\"index\":%lld}\n\n",
                  s->nblocks - 1);
    s->block = MSG_BLOCK_NONE;
}


/* A content_block_delta of the open block: {"type":type, field: lit}. */
static void
messages_delta(msg_stream_t *s, const char *type, const char *field, sl_str_t lit, sl_buf_t *out)
{
    sl_buf_printf(out,
                  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                  "\"index\":%lld,\"delta\":{\"type\":\"%s\",\"%s\":",
                  s->nblocks - 1, type, field);
    sl_buf_append(out, lit.p, lit.len);
    sl_buf_puts(out, "}}\n\n");
}


static void
messages_end_delta(msg_stream_t *s, const sl_usage_t *u, sl_buf_t *out)
{
    sl_buf_printf(out,
                  "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
                  "{\"stop_reason\":\"%s\",\"stop_sequence\":null},\"usage\":",
                  messages_stop_reason(s->finish));
    messages_usage(out, u, false);
    sl_buf_puts(out, "}\n\n");
}


/*
 * The clean end: the open block closes, message_delta brings the stop
 * reason and the request's final usage, then message_stop. After the
 * provider's own events only what it did not send: message_stop, and
 * message_delta if no finish came.
 */
static int
messages_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out)
{
    msg_stream_t *s = state;
    const sl_usage_t *u = usage != NULL ? usage : &s->usage;

    if (s->over) {
        return 0;
    }
    if (!s->raw) {
        if (!s->started) {
            /* nothing came: the head can have the final counts */
            s->usage = *u;
        }
        messages_start(s, out);
        messages_close(s, out);
    }
    if (!s->raw || !s->finished) {
        messages_end_delta(s, u, out);
    }
    sl_buf_puts(out, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s->over = true;
    return 0;
}


/*
 * A failure after the commit point as Anthropic's error event; nothing
 * follows it. The type is the error's code or type where Anthropic knows
 * it ("overloaded_error" comes as a code from OpenAI-shaped streams), else
 * api_error.
 */
static int
messages_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out)
{
    msg_stream_t *s = state;
    const char *type = "api_error";

    if (s->over) {
        return 0;
    }
    if (e->code != NULL && messages_type_known(e->code)) {
        type = e->code;
    } else if (e->type != NULL && messages_type_known(e->type)) {
        type = e->type;
    }
    sl_buf_puts(out, "event: error\ndata: ");
    messages_error_object(out, type,
                          e->message != NULL ? e->message
                                             : "the provider reported an error in the stream");
    sl_buf_puts(out, "\n\n");
    s->over = true;
    return 0;
}


static int
messages_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out)
{
    sl_buf_t b = SL_BUF_INIT;
    char *p;

    messages_error_object(&b, messages_status_type(e->status),
                          e->message != NULL ? e->message : "error");
    p = sl_palloc(pool, b.len + 1);
    memcpy(p, b.p, b.len);
    p[b.len] = '\0';
    *out = (sl_str_t){ p, b.len };
    sl_buf_free(&b);
    return 0;
}


/*
 * {"type":"error","error":{"type":…,"message":…}}. A message that is not
 * UTF-8 (a provider's bytes quoted in an error text) cannot be a JSON
 * string: "error" stands in for it.
 */
static void
messages_error_object(sl_buf_t *out, const char *type, const char *message)
{
    json_t *check = json_string(message);

    if (check == NULL) {
        message = "error";
    }
    json_decref(check);
    sl_buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":");
    sl_json_quote(out, (sl_str_t){ type, strlen(type) });
    sl_buf_puts(out, ",\"message\":");
    sl_json_quote(out, (sl_str_t){ message, strlen(message) });
    sl_buf_puts(out, "}}");
}


/* Anthropic's error type for a status. */
static const char *
messages_status_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}


/* True for the error types Anthropic's API documents. */
static bool
messages_type_known(const char *type)
{
    static const char *const known[] = {
        "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
        "request_too_large",     "rate_limit_error",     "api_error",        "overloaded_error",
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(type, known[i]) == 0) {
            return true;
        }
    }
    return false;
}
