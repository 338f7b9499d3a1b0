/*
 * The OpenAI Responses frontend: POST /v1/responses. The client's body is
 * translated into the internal OpenAI chat body (a jansson DOM, dumped
 * once) and travels along untouched as call->native, so an openai or azure
 * target forwards it natively (their answers and events then come back
 * raw). Answers, typed stream events and errors go back as Responses
 * objects, OpenAI's Responses event sequence (every event with `type` and
 * `sequence_number`) and OpenAI's error shape.
 *
 * The translation:
 *  - input: a string is one user message; items become chat messages:
 *    `message` (input_text, input_image, input_file, output_text parts),
 *    `function_call` (joined into the assistant message before it),
 *    `function_call_output` (a tool message), `reasoning` (see below) and
 *    `additional_tools` (more tool declarations); instructions is the first
 *    system message.
 *  - tools: function tools, and `namespace` groups (Codex's MCP servers),
 *    whose functions are flattened to namespace + name. A name a provider
 *    would refuse (outside [A-Za-z0-9_-], longer than 64) is replaced by a
 *    safe one; the internal body's sluice_tool_names maps it back, so the
 *    client sees its own name (and namespace) in function_call items.
 *  - hosted tools (web_search, file_search, computer_use, code_interpreter,
 *    image_generation, mcp, custom, ...), hosted tool calls in the input,
 *    item references and prompt templates have no counterpart elsewhere:
 *    only a target speaking Responses natively can serve such a request,
 *    every other one refuses it with a 400 naming the field
 *    (call->untranslatable).
 *  - reasoning items carry the provider's thinking back. The gateway puts
 *    a provider's signature in encrypted_content ("sl1.a." Anthropic
 *    signature, "sl1.r." Anthropic redacted data, "sl1.g." Gemini thought
 *    signature), and the internal body's sluice_reasoning hands it to the
 *    adapters that can use it; an item another provider wrote (or one
 *    without a signature) is dropped without an error, since no other
 *    model can read it.
 *  - text.format (json_schema, json_object) is response_format,
 *    reasoning.effort reasoning_effort, max_output_tokens
 *    max_completion_tokens; temperature, top_p, parallel_tool_calls,
 *    tool_choice and user keep their names; metadata is echoed.
 *  - the response's id ("resp_" + 24 hex digits, time then random) is chosen here and
 *    travels as sluice_response_id, so a stream's events and the stored
 *    response agree on it.
 */
#include "core/gateway/frontend_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"

#define RS_NAME_MAX 64 /* a function name every provider takes: [A-Za-z0-9_-]{1,64} */

/* Kinds of output items. */
typedef enum rs_kind {
    RS_REASONING = 1,
    RS_REDACTED,
    RS_MESSAGE,
    RS_CALL,
} rs_kind_e;

/* One output item of a stream: its text so far (escaped JSON string bodies). */
typedef struct rs_item {
    rs_kind_e kind;
    unsigned tool;  /* RS_CALL: the tool call index */
    sl_buf_t text;  /* message text, reasoning summary, call arguments, redacted data */
    sl_buf_t sig;   /* reasoning signature */
    sl_str_t id;    /* RS_CALL: call_id literal */
    sl_str_t name;  /* RS_CALL: name literal (as the client knows it) */
    sl_str_t space; /* RS_CALL: namespace literal, or empty */
    bool done;
} rs_item_t;

/* Stream encoder state of one attempt. */
typedef struct rs_stream {
    const sl_call_t *call;
    sl_str_t model; /* literal, once START gave one */
    int64_t created;
    unsigned long long seq;
    rs_item_t *items;
    size_t nitems;
    size_t cap;
    int open; /* the item whose events are under way, -1 for none */
    sl_usage_t usage;
    sl_finish_e finish;
    bool started;   /* response.created went out */
    bool raw;       /* the provider's own events are going out */
    bool over;      /* the end or an error went out */
    sl_buf_t held;  /* raw: the provider's closing event, written by encode_end */
    sl_str_t final; /* the response object the end carried (pool) */
} rs_stream_t;

/* The translation's working state. */
typedef struct rs_ctx {
    sl_call_t *call;
    json_t *req;
    json_t *msgs;
    json_t *tools;     /* chat tools, or NULL until the first */
    json_t *names;     /* safe name -> {name, namespace} */
    json_t *reasoning; /* sluice_reasoning */
    json_t *pending;   /* reasoning entries waiting for their assistant message */
    bool open;         /* the last message is an assistant message function calls may join */
    const char *untranslatable;
    sl_error_t *err;
} rs_ctx_t;

static int responses_decode(sl_call_t *call, sl_str_t body, sl_error_t *err);
static int rs_bad(rs_ctx_t *x, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void rs_native_only(rs_ctx_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rs_options(rs_ctx_t *x, json_t *in);
static int rs_tools(rs_ctx_t *x, json_t *tools, const char *where);
static int rs_function(rs_ctx_t *x, const char *space, json_t *t, const char *where);
static const char *rs_safe_name(rs_ctx_t *x, const char *space, const char *name);
static int rs_tool_choice(rs_ctx_t *x, json_t *tc);
static int rs_text(rs_ctx_t *x, json_t *text);
static int rs_items(rs_ctx_t *x, json_t *items, const char *where);
static int rs_item(rs_ctx_t *x, json_t *item, const char *where);
static int rs_message(rs_ctx_t *x, json_t *item, const char *where);
static int rs_user_parts(rs_ctx_t *x, json_t *content, const char *where, json_t **out);
static int rs_join_text(rs_ctx_t *x, json_t *content, const char *where, bool outputs, sl_buf_t *b);
static json_t *rs_assistant(rs_ctx_t *x);
static int rs_function_call(rs_ctx_t *x, json_t *item, const char *where);
static int rs_call_output(rs_ctx_t *x, json_t *item, const char *where);
static void rs_reasoning_item(rs_ctx_t *x, json_t *item);
static void rs_flush_reasoning(rs_ctx_t *x, size_t index);
static const char *rs_dump(sl_pool_t *pool, json_t *v, size_t *len);
static const char *rs_new_id(sl_call_t *call);
static const char *responses_model(const sl_call_t *call);
static int responses_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out);
static void rs_object_head(const sl_call_t *call, sl_str_t model, int64_t created,
                           const char *status, sl_finish_e finish, sl_buf_t *out);
static void rs_object_tail(const sl_call_t *call, const sl_usage_t *usage, sl_buf_t *out);
static void rs_echo(const sl_call_t *call, const char *key, const char *dflt, sl_buf_t *out);
static void rs_usage(const sl_usage_t *u, sl_buf_t *out);
static const char *rs_status(sl_finish_e f);
static void rs_item_id(const sl_call_t *call, const char *prefix, size_t n, sl_buf_t *out);
static sl_str_t rs_body(sl_str_t lit);
static void rs_write_reasoning(const sl_call_t *call, size_t n, sl_str_t text, sl_str_t sig,
                               sl_buf_t *out);
static void rs_write_redacted(const sl_call_t *call, size_t n, sl_str_t data, sl_buf_t *out);
static void rs_write_message(const sl_call_t *call, size_t n, sl_str_t text, const char *status,
                             sl_buf_t *out);
static void rs_write_call(const sl_call_t *call, size_t n, sl_str_t id, sl_str_t name,
                          sl_str_t space, sl_str_t args, const char *status, sl_buf_t *out);
static void rs_client_name(const sl_call_t *call, sl_str_t lit, sl_str_t *name, sl_str_t *space);
static char rs_sig_kind(const sl_call_t *call);
static void *responses_stream_open(const sl_call_t *call);
static void rs_stream_free(void *arg);
static int responses_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out);
static void rs_raw_done(rs_stream_t *s, const sl_ev_t *ev);
static void rs_start(rs_stream_t *s, sl_buf_t *out);
static void rs_event(rs_stream_t *s, const char *type, sl_buf_t *out);
static void rs_event_end(sl_buf_t *out);
static rs_item_t *rs_open(rs_stream_t *s, rs_kind_e kind, const sl_ev_t *ev, sl_buf_t *out);
static void rs_close(rs_stream_t *s, sl_buf_t *out);
static void rs_item_write(rs_stream_t *s, size_t i, const char *status, sl_buf_t *out);
static void rs_ref(rs_stream_t *s, size_t i, sl_buf_t *out);
static rs_item_t *rs_tool_item(rs_stream_t *s, unsigned tool, size_t *at);
static int responses_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out);
static int responses_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out);
static int responses_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out);
static void rs_quote_or_null(sl_buf_t *out, const char *s);
static void rs_put_u64(sl_buf_t *out, unsigned long long v);

const sl_frontend_t sl__frontend_responses = {
    .name = "responses",
    .api = SL_API_RESPONSES,
    .decode = responses_decode,
    .model = responses_model,
    .encode_answer = responses_encode_answer,
    .stream_open = responses_stream_open,
    .encode_events = responses_encode_events,
    .encode_end = responses_encode_end,
    .encode_stream_error = responses_encode_stream_error,
    .encode_error = responses_encode_error,
};

/* Tool and item types only OpenAI serves (hosted tools and their calls). */
static const char *const rs_hosted_items[] = {
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "custom_tool_call",
    "custom_tool_call_output",
    "tool_search_call",
    "tool_search_output",
    "item_reference",
    "compaction",
    NULL,
};


/*
 * The client's body -> the chat body. Read once with the token reader
 * (errors with a position, call->native_doc), then as a DOM to translate.
 */
static int
responses_decode(sl_call_t *call, sl_str_t body, sl_error_t *err)
{
    sl_json_error_t jerr;
    sl_json_t *doc;
    json_t *in;

    if (body.len == 0) {
        return sl__frontend_bad_request(err, NULL, NULL,
                                        "The request body is empty. Send a JSON object.");
    }
    doc = sl_json_create(call->pool);
    if (sl_json_parse(doc, body.p, body.len, &jerr) < 0) {
        return sl__frontend_bad_request(
            err, NULL, NULL,
            sl_psprintf(call->pool,
                        "We could not parse the JSON body of your request: %s (line %u, "
                        "column %u).",
                        jerr.text, jerr.line, jerr.column));
    }
    if (sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return sl__frontend_bad_request(err, NULL, NULL, "The request body must be a JSON object.");
    }
    in = sl_json_dom(call->pool, body);
    if (in == NULL) {
        return sl__frontend_bad_request(err, NULL, NULL,
                                        "We could not parse the JSON body of your request: a "
                                        "duplicate object key or an invalid string.");
    }
    call->native = body;
    call->native_doc = doc;
    return sl__frontend_responses_translate(call, in, NULL, err);
}


int
sl__frontend_responses_translate(sl_call_t *call, json_t *in, json_t *history, sl_error_t *err)
{
    rs_ctx_t x;
    json_t *input = json_object_get(in, "input");
    json_t *model = json_object_get(in, "model");
    json_t *v;
    sl_str_t chat;
    size_t len = 0;
    size_t turns = 0;
    json_t *m;
    size_t i;
    int rc;

    memset(&x, 0, sizeof(x));
    x.call = call;
    x.err = err;
    x.req = json_object();
    x.msgs = json_array();
    x.names = json_object();
    x.reasoning = json_array();
    x.pending = json_array();
    json_object_set_new(x.req, "messages", x.msgs);

    if (!json_is_string(model) || json_string_length(model) == 0) {
        rc = rs_bad(&x, model == NULL ? "missing_required_parameter" : "invalid_type", "model",
                    model == NULL ? "You must provide a model parameter."
                                  : "Invalid type for 'model': expected a non-empty string.");
        goto out_free;
    }
    json_object_set(x.req, "model", model);
    v = json_object_get(in, "instructions");
    if (json_is_string(v) && json_string_length(v) > 0) {
        json_array_append_new(x.msgs, json_pack("{s:s,s:O}", "role", "system", "content", v));
    } else if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
        rc = rs_bad(&x, "invalid_type", "instructions",
                    "Invalid type for 'instructions': expected a string.");
        goto out_free;
    }
    rc = rs_options(&x, in);
    if (rc < 0) {
        goto out_free;
    }
    v = json_object_get(in, "tools");
    if (v != NULL && !json_is_null(v)) {
        rc = rs_tools(&x, v, "tools");
        if (rc < 0) {
            goto out_free;
        }
    }
    if (history != NULL) {
        rc = rs_items(&x, history, "previous_response_id");
        if (rc < 0) {
            goto out_free;
        }
        x.open = false;
    }
    if (json_is_string(input)) {
        json_array_append_new(x.msgs, json_pack("{s:s,s:O}", "role", "user", "content", input));
        x.open = false;
    } else if (json_is_array(input)) {
        rc = rs_items(&x, input, "input");
        if (rc < 0) {
            goto out_free;
        }
    } else if (input != NULL && !json_is_null(input)) {
        rc = rs_bad(&x, "invalid_type", "input",
                    "Invalid type for 'input': expected a string or an array of input items.");
        goto out_free;
    }
    json_array_foreach(x.msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));

        turns += role != NULL && strcmp(role, "system") != 0 && strcmp(role, "developer") != 0;
    }
    if (turns == 0) {
        rc = rs_bad(&x, input == NULL ? "missing_required_parameter" : "invalid_value", "input",
                    input == NULL ? "Missing required parameter: 'input'."
                                  : "Invalid 'input': it holds no message to answer.");
        goto out_free;
    }
    rc = rs_tool_choice(&x, json_object_get(in, "tool_choice"));
    if (rc < 0) {
        goto out_free;
    }
    if (x.tools != NULL) {
        json_object_set(x.req, "tools", x.tools);
    }
    if (json_object_size(x.names) > 0) {
        json_object_set(x.req, "sluice_tool_names", x.names);
    }
    if (json_array_size(x.reasoning) > 0) {
        json_object_set(x.req, "sluice_reasoning", x.reasoning);
    }
    json_object_set_new(x.req, "sluice_response_id", json_string(rs_new_id(call)));
    v = json_object_get(in, "previous_response_id");
    if (json_is_string(v)) {
        /* echoed from here: a native body may have lost it to the whole conversation */
        json_object_set(x.req, "sluice_previous_response_id", v);
    }
    chat.p = rs_dump(call->pool, x.req, &len);
    chat.len = len;
    if (chat.p == NULL) {
        rc = rs_bad(&x, NULL, NULL, "The request cannot be encoded.");
        goto out_free;
    }
    rc = sl__frontend_read_chat(call, chat, err);
    if (rc == 0) {
        call->untranslatable = x.untranslatable;
    }

out_free:
    json_decref(x.req);
    json_decref(x.tools);
    json_decref(x.names);
    json_decref(x.reasoning);
    json_decref(x.pending);
    return rc;
}


/* A 400 for the client: fills x->err. Returns SL_EPARSE. */
static int
rs_bad(rs_ctx_t *x, const char *code, const char *param, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sl__frontend_bad_request(x->err, code,
                                    param != NULL ? sl_pstrdup(x->call->pool, param) : NULL,
                                    sl_pstrdup(x->call->pool, msg));
}


/* Something only a target speaking Responses natively can serve: the first one is kept. */
static void
rs_native_only(rs_ctx_t *x, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (x->untranslatable != NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    x->untranslatable = sl_pstrdup(x->call->pool, msg);
}


/* The scalar options. */
static int
rs_options(rs_ctx_t *x, json_t *in)
{
    static const char *const bools[] = { "stream", "store", "parallel_tool_calls", "background" };
    json_t *v;

    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        v = json_object_get(in, bools[i]);
        if (v != NULL && !json_is_boolean(v) && !json_is_null(v)) {
            return rs_bad(x, "invalid_type", bools[i], "Invalid type for '%s': expected a boolean.",
                          bools[i]);
        }
    }
    if (json_is_true(json_object_get(in, "background"))) {
        return rs_bad(x, "unsupported_parameter", "background",
                      "Background responses are not supported by this gateway: send "
                      "'background': false and keep the connection open, or stream.");
    }
    v = json_object_get(in, "conversation");
    if (v != NULL && !json_is_null(v)) {
        return rs_bad(x, "unsupported_parameter", "conversation",
                      "Conversations are not supported by this gateway: chain responses with "
                      "'previous_response_id' instead.");
    }
    v = json_object_get(in, "previous_response_id");
    if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
        return rs_bad(x, "invalid_type", "previous_response_id",
                      "Invalid type for 'previous_response_id': expected a string.");
    }
    v = json_object_get(in, "prompt");
    if (v != NULL && !json_is_null(v)) {
        rs_native_only(x, "prompt: stored prompt templates are OpenAI's");
    }
    if (json_is_true(json_object_get(in, "stream"))) {
        json_object_set_new(x->req, "stream", json_true());
    }
    v = json_object_get(in, "parallel_tool_calls");
    if (json_is_boolean(v)) {
        json_object_set(x->req, "parallel_tool_calls", v);
    }
    v = json_object_get(in, "max_output_tokens");
    if (json_is_integer(v) && json_integer_value(v) >= 1) {
        json_object_set(x->req, "max_completion_tokens", v);
    } else if (v != NULL && !json_is_null(v)) {
        return rs_bad(x, "invalid_value", "max_output_tokens",
                      "Invalid 'max_output_tokens': expected a positive integer.");
    }
    for (size_t i = 0; i < 2; i++) {
        const char *k = i == 0 ? "temperature" : "top_p";

        v = json_object_get(in, k);
        if (json_is_number(v)) {
            json_object_set(x->req, k, v);
        } else if (v != NULL && !json_is_null(v)) {
            return rs_bad(x, "invalid_type", k, "Invalid type for '%s': expected a number.", k);
        }
    }
    v = json_object_get(in, "user");
    if (json_is_string(v)) {
        json_object_set(x->req, "user", v);
    } else if (v != NULL && !json_is_null(v)) {
        return rs_bad(x, "invalid_type", "user", "Invalid type for 'user': expected a string.");
    }
    v = json_object_get(in, "metadata");
    if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
        return rs_bad(x, "invalid_type", "metadata",
                      "Invalid type for 'metadata': expected an object.");
    }
    v = json_object_get(in, "reasoning");
    if (json_is_object(v)) {
        json_t *effort = json_object_get(v, "effort");

        if (json_is_string(effort)) {
            json_object_set(x->req, "reasoning_effort", effort);
        } else if (effort != NULL && !json_is_null(effort)) {
            return rs_bad(x, "invalid_type", "reasoning.effort",
                          "Invalid type for 'reasoning.effort': expected a string.");
        }
    } else if (v != NULL && !json_is_null(v)) {
        return rs_bad(x, "invalid_type", "reasoning",
                      "Invalid type for 'reasoning': expected an object.");
    }
    v = json_object_get(in, "text");
    if (v != NULL && !json_is_null(v)) {
        return rs_text(x, v);
    }
    return 0;
}


/* text: format (json_schema, json_object, text) and verbosity. */
static int
rs_text(rs_ctx_t *x, json_t *text)
{
    json_t *format = json_object_get(text, "format");
    json_t *verbosity = json_object_get(text, "verbosity");
    const char *type = json_string_value(json_object_get(format, "type"));
    json_t *schema, *js, *name;

    if (!json_is_object(text)) {
        return rs_bad(x, "invalid_type", "text", "Invalid type for 'text': expected an object.");
    }
    if (json_is_string(verbosity)) {
        json_object_set(x->req, "verbosity", verbosity);
    }
    if (format == NULL || json_is_null(format)) {
        return 0;
    }
    if (type == NULL) {
        return rs_bad(x, "missing_required_parameter", "text.format.type",
                      "Missing required parameter: 'text.format.type'.");
    }
    if (strcmp(type, "text") == 0) {
        return 0;
    }
    if (strcmp(type, "json_object") == 0) {
        json_object_set_new(x->req, "response_format", json_pack("{s:s}", "type", "json_object"));
        return 0;
    }
    if (strcmp(type, "json_schema") != 0) {
        return rs_bad(x, "invalid_value", "text.format.type",
                      "Invalid value for 'text.format.type': expected one of text, json_object "
                      "or json_schema.");
    }
    schema = json_object_get(format, "schema");
    if (!json_is_object(schema)) {
        return rs_bad(x, "missing_required_parameter", "text.format.schema",
                      "Missing required parameter: 'text.format.schema'.");
    }
    name = json_object_get(format, "name");
    js = json_pack("{s:O}", "schema", schema);
    json_object_set_new(js, "name",
                        json_string(json_is_string(name) ? json_string_value(name) : "response"));
    if (json_is_boolean(json_object_get(format, "strict"))) {
        json_object_set(js, "strict", json_object_get(format, "strict"));
    }
    if (json_is_string(json_object_get(format, "description"))) {
        json_object_set(js, "description", json_object_get(format, "description"));
    }
    json_object_set_new(x->req, "response_format",
                        json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
    return 0;
}


/* Tool declarations (tools, or an additional_tools item's) -> chat tools. */
static int
rs_tools(rs_ctx_t *x, json_t *tools, const char *where)
{
    json_t *t;
    size_t i;
    int rc;

    if (!json_is_array(tools)) {
        return rs_bad(x, "invalid_type", where, "Invalid type for '%s': expected an array.", where);
    }
    json_array_foreach(tools, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *space;
        json_t *sub, *s;
        size_t k;

        if (type == NULL) {
            return rs_bad(x, "missing_required_parameter", where,
                          "Missing required parameter: '%s[%zu].type'.", where, i);
        }
        if (strcmp(type, "function") == 0) {
            rc = rs_function(x, NULL, t, where);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        if (strcmp(type, "namespace") != 0) {
            rs_native_only(x,
                           "%s[%zu]: the hosted tool `%s` is served by OpenAI's Responses API "
                           "only",
                           where, i, type);
            continue;
        }
        space = json_string_value(json_object_get(t, "name"));
        sub = json_object_get(t, "tools");
        if (space == NULL || !json_is_array(sub)) {
            return rs_bad(x, "invalid_value", where,
                          "Invalid '%s[%zu]': a namespace needs a name and a tools array.", where,
                          i);
        }
        json_array_foreach(sub, k, s)
        {
            const char *st = json_string_value(json_object_get(s, "type"));

            if (st == NULL || strcmp(st, "function") != 0) {
                rs_native_only(x,
                               "%s[%zu].tools[%zu]: the tool type `%s` is served by OpenAI's "
                               "Responses API only",
                               where, i, k, st != NULL ? st : "(none)");
                continue;
            }
            rc = rs_function(x, space, s, where);
            if (rc < 0) {
                return rc;
            }
        }
    }
    return 0;
}


/* One function tool (of namespace space, or NULL) -> a chat tool. */
static int
rs_function(rs_ctx_t *x, const char *space, json_t *t, const char *where)
{
    const char *name = json_string_value(json_object_get(t, "name"));
    json_t *desc = json_object_get(t, "description");
    json_t *params = json_object_get(t, "parameters");
    json_t *strict = json_object_get(t, "strict");
    json_t *fn;

    if (name == NULL || name[0] == '\0') {
        return rs_bad(x, "missing_required_parameter", where,
                      "Missing required parameter: '%s[].name' of a function tool.", where);
    }
    fn = json_pack("{s:s}", "name", rs_safe_name(x, space, name));
    if (json_is_string(desc)) {
        json_object_set(fn, "description", desc);
    }
    if (json_is_object(params)) {
        json_object_set(fn, "parameters", params);
    }
    if (json_is_boolean(strict)) {
        json_object_set(fn, "strict", strict);
    }
    if (x->tools == NULL) {
        x->tools = json_array();
    }
    json_array_append_new(x->tools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    return 0;
}


/*
 * The chat name of function name in namespace space (NULL: none): space +
 * name when every provider takes it, else its characters outside
 * [A-Za-z0-9_-] made '_', cut to 55 and followed by '_' and 8 hex digits
 * of its FNV-1a hash, so the same name always maps the same way. A name
 * that changed goes into sluice_tool_names. In the pool.
 */
static const char *
rs_safe_name(rs_ctx_t *x, const char *space, const char *name)
{
    const char *flat = space != NULL ? sl_psprintf(x->call->pool, "%s%s", space, name) : name;
    size_t len = strlen(flat);
    bool ok = len > 0 && len <= RS_NAME_MAX;
    uint32_t h = 2166136261u;
    char *safe;
    json_t *entry;

    for (size_t i = 0; i < len; i++) {
        char c = flat[i];

        ok = ok
             && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                 || c == '_' || c == '-');
        h = (h ^ (uint8_t) c) * 16777619u;
    }
    if (ok && space == NULL) {
        return name;
    }
    if (ok) {
        safe = (char *) flat;
    } else {
        size_t n = len < 55 ? len : 55;

        safe = sl_palloc(x->call->pool, n + 10);
        for (size_t i = 0; i < n; i++) {
            char c = flat[i];

            safe[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                              || c == '-'
                          ? c
                          : '_';
        }
        snprintf(safe + n, 10, "_%08x", h);
    }
    entry = json_pack("{s:s}", "name", name);
    if (space != NULL) {
        json_object_set_new(entry, "namespace", json_string(space));
    }
    json_object_set_new(x->names, safe, entry);
    return safe;
}


static int
rs_tool_choice(rs_ctx_t *x, json_t *tc)
{
    const char *s = json_string_value(tc);
    const char *type = json_string_value(json_object_get(tc, "type"));
    const char *name = json_string_value(json_object_get(tc, "name"));
    const char *space = json_string_value(json_object_get(tc, "namespace"));

    if (tc == NULL || json_is_null(tc)) {
        return 0;
    }
    if (s != NULL) {
        if (strcmp(s, "auto") != 0 && strcmp(s, "none") != 0 && strcmp(s, "required") != 0) {
            return rs_bad(x, "invalid_value", "tool_choice",
                          "Invalid value for 'tool_choice': expected auto, none or required.");
        }
        json_object_set(x->req, "tool_choice", tc);
        return 0;
    }
    if (type == NULL) {
        return rs_bad(x, "invalid_type", "tool_choice",
                      "Invalid type for 'tool_choice': expected a string or an object with a "
                      "type.");
    }
    if (strcmp(type, "function") == 0 && name != NULL) {
        json_object_set_new(x->req, "tool_choice",
                            json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name",
                                      rs_safe_name(x, space, name)));
        return 0;
    }
    rs_native_only(x, "tool_choice: the choice `%s` is served by OpenAI's Responses API only",
                   type);
    return 0;
}


static int
rs_items(rs_ctx_t *x, json_t *items, const char *where)
{
    json_t *item;
    size_t i;
    int rc;

    json_array_foreach(items, i, item)
    {
        char at[64];

        snprintf(at, sizeof(at), "%s[%zu]", where, i);
        rc = rs_item(x, item, at);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}


/* One input item. */
static int
rs_item(rs_ctx_t *x, json_t *item, const char *where)
{
    const char *type = json_string_value(json_object_get(item, "type"));

    if (!json_is_object(item)) {
        return rs_bad(x, "invalid_type", where, "Invalid type for '%s': expected an object.",
                      where);
    }
    if (type == NULL && json_object_get(item, "role") != NULL) {
        type = "message";
    }
    if (type == NULL) {
        return rs_bad(x, "missing_required_parameter", where,
                      "Missing required parameter: '%s.type'.", where);
    }
    if (strcmp(type, "message") == 0) {
        return rs_message(x, item, where);
    }
    if (strcmp(type, "function_call") == 0) {
        return rs_function_call(x, item, where);
    }
    if (strcmp(type, "function_call_output") == 0) {
        x->open = false;
        return rs_call_output(x, item, where);
    }
    if (strcmp(type, "reasoning") == 0) {
        rs_reasoning_item(x, item);
        return 0;
    }
    if (strcmp(type, "additional_tools") == 0) {
        return rs_tools(x, json_object_get(item, "tools"), where);
    }
    for (size_t i = 0; rs_hosted_items[i] != NULL; i++) {
        if (strcmp(type, rs_hosted_items[i]) == 0) {
            rs_native_only(x, "%s: the item type `%s` is served by OpenAI's Responses API only",
                           where, type);
            x->open = false;
            return 0;
        }
    }
    return rs_bad(x, "invalid_value", where, "Invalid value for '%s.type': unknown item type `%s`.",
                  where, type);
}


/* A message item: user (parts), system or developer (text), assistant (output text). */
static int
rs_message(rs_ctx_t *x, json_t *item, const char *where)
{
    const char *role = json_string_value(json_object_get(item, "role"));
    json_t *content = json_object_get(item, "content");
    sl_buf_t text = SL_BUF_INIT;
    json_t *parts = NULL;
    json_t *msg;
    int rc;

    if (role == NULL) {
        return rs_bad(x, "missing_required_parameter", where,
                      "Missing required parameter: '%s.role'.", where);
    }
    if (!json_is_string(content) && !json_is_array(content)) {
        return rs_bad(x, "invalid_type", where,
                      "Invalid type for '%s.content': expected a string or an array.", where);
    }
    if (strcmp(role, "assistant") == 0) {
        rc = rs_join_text(x, content, where, true, &text);
        if (rc == 0) {
            msg = rs_assistant(x);
            json_object_set_new(msg, "content",
                                json_stringn(text.p != NULL ? text.p : "", text.len));
        }
        sl_buf_free(&text);
        return rc;
    }
    x->open = false;
    json_array_clear(x->pending); /* reasoning not followed by the model's turn */
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        rc = rs_join_text(x, content, where, false, &text);
        if (rc == 0 && text.len > 0) {
            json_array_append_new(
                x->msgs, json_pack("{s:s,s:s%}", "role", role, "content", text.p, text.len));
        }
        sl_buf_free(&text);
        return rc;
    }
    if (strcmp(role, "user") != 0) {
        return rs_bad(x, "invalid_value", where,
                      "Invalid value for '%s.role': expected user, assistant, system or "
                      "developer.",
                      where);
    }
    if (json_is_string(content)) {
        json_array_append_new(x->msgs, json_pack("{s:s,s:O}", "role", "user", "content", content));
        return 0;
    }
    rc = rs_user_parts(x, content, where, &parts);
    if (rc == 0) {
        json_array_append_new(x->msgs, json_pack("{s:s,s:o}", "role", "user", "content", parts));
    }
    return rc;
}


/* A user message's parts -> chat parts (a new array in *out). */
static int
rs_user_parts(rs_ctx_t *x, json_t *content, const char *where, json_t **out)
{
    json_t *parts = json_array();
    json_t *p;
    size_t i;

    json_array_foreach(content, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        json_t *text = json_object_get(p, "text");

        if (type == NULL) {
            json_decref(parts);
            return rs_bad(x, "missing_required_parameter", where,
                          "Missing required parameter: '%s.content[%zu].type'.", where, i);
        }
        if ((strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0
             || strcmp(type, "text") == 0)
            && json_is_string(text)) {
            json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text", text));
        } else if (strcmp(type, "input_image") == 0) {
            json_t *url = json_object_get(p, "image_url");
            json_t *detail = json_object_get(p, "detail");
            json_t *iu;

            if (!json_is_string(url)) {
                rs_native_only(x,
                               "%s.content[%zu]: an input_image by file_id refers to OpenAI's "
                               "file storage",
                               where, i);
                continue;
            }
            iu = json_pack("{s:O}", "url", url);
            if (json_is_string(detail)) {
                json_object_set(iu, "detail", detail);
            }
            json_array_append_new(parts,
                                  json_pack("{s:s,s:o}", "type", "image_url", "image_url", iu));
        } else if (strcmp(type, "input_file") == 0) {
            json_t *data = json_object_get(p, "file_data");
            json_t *name = json_object_get(p, "filename");
            json_t *file;

            if (!json_is_string(data)) {
                rs_native_only(x,
                               "%s.content[%zu]: an input_file by file_id or file_url is "
                               "fetched by OpenAI",
                               where, i);
                continue;
            }
            file = json_pack("{s:O}", "file_data", data);
            if (json_is_string(name)) {
                json_object_set(file, "filename", name);
            }
            json_array_append_new(parts, json_pack("{s:s,s:o}", "type", "file", "file", file));
        } else if (strcmp(type, "input_audio") == 0
                   && json_is_object(json_object_get(p, "input_audio"))) {
            json_array_append_new(parts,
                                  json_pack("{s:s,s:O}", "type", "input_audio", "input_audio",
                                            json_object_get(p, "input_audio")));
        } else {
            json_decref(parts);
            return rs_bad(x, "invalid_value", where,
                          "Invalid value for '%s.content[%zu].type': `%s` is not a content part "
                          "of a user message.",
                          where, i, type);
        }
    }
    *out = parts;
    return 0;
}


/*
 * The text of content (a string, or text parts) into b, parts joined with
 * nothing between them. outputs: an assistant's (output_text, refusal).
 */
static int
rs_join_text(rs_ctx_t *x, json_t *content, const char *where, bool outputs, sl_buf_t *b)
{
    json_t *p;
    size_t i;

    if (json_is_string(content)) {
        sl_buf_append(b, json_string_value(content), json_string_length(content));
        return 0;
    }
    json_array_foreach(content, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        json_t *text = json_object_get(p, "text");

        if (type != NULL && json_is_string(text)
            && (strcmp(type, "output_text") == 0 || strcmp(type, "input_text") == 0
                || strcmp(type, "text") == 0)) {
            sl_buf_append(b, json_string_value(text), json_string_length(text));
        } else if (outputs && type != NULL && strcmp(type, "refusal") == 0) {
            continue; /* the model's refusal: nothing a provider takes back */
        } else {
            return rs_bad(x, "invalid_value", where,
                          "Invalid value for '%s.content[%zu]': expected text parts.", where, i);
        }
    }
    return 0;
}


/* A new assistant message (the reasoning before it attached); returns it. */
static json_t *
rs_assistant(rs_ctx_t *x)
{
    json_t *msg = json_pack("{s:s}", "role", "assistant");

    json_array_append_new(x->msgs, msg);
    rs_flush_reasoning(x, json_array_size(x->msgs) - 1);
    x->open = true;
    return msg;
}


/* function_call -> a tool call of the assistant message it continues (or a new one). */
static int
rs_function_call(rs_ctx_t *x, json_t *item, const char *where)
{
    json_t *id = json_object_get(item, "call_id");
    const char *name = json_string_value(json_object_get(item, "name"));
    const char *space = json_string_value(json_object_get(item, "namespace"));
    json_t *args = json_object_get(item, "arguments");
    json_t *msg, *calls;

    if (!json_is_string(id) || name == NULL) {
        return rs_bad(x, "missing_required_parameter", where,
                      "Missing required parameter: '%s' needs a call_id and a name.", where);
    }
    if (x->open) {
        msg = json_array_get(x->msgs, json_array_size(x->msgs) - 1);
        rs_flush_reasoning(x, json_array_size(x->msgs) - 1);
    } else {
        msg = rs_assistant(x);
        json_object_set_new(msg, "content", json_null());
    }
    calls = json_object_get(msg, "tool_calls");
    if (calls == NULL) {
        calls = json_array();
        json_object_set_new(msg, "tool_calls", calls);
    }
    json_array_append_new(calls,
                          json_pack("{s:O,s:s,s:{s:s,s:s}}", "id", id, "type", "function",
                                    "function", "name", rs_safe_name(x, space, name), "arguments",
                                    json_is_string(args) ? json_string_value(args) : "{}"));
    return 0;
}


/* function_call_output -> a tool message (text parts joined; other parts only natively). */
static int
rs_call_output(rs_ctx_t *x, json_t *item, const char *where)
{
    json_t *id = json_object_get(item, "call_id");
    json_t *output = json_object_get(item, "output");
    sl_buf_t text = SL_BUF_INIT;
    json_t *p;
    size_t i;

    if (!json_is_string(id)) {
        return rs_bad(x, "missing_required_parameter", where,
                      "Missing required parameter: '%s.call_id'.", where);
    }
    json_array_clear(x->pending);
    if (json_is_string(output)) {
        sl_buf_append(&text, json_string_value(output), json_string_length(output));
    } else if (json_is_array(output)) {
        json_array_foreach(output, i, p)
        {
            json_t *t = json_object_get(p, "text");

            if (json_is_string(t)) {
                sl_buf_append(&text, json_string_value(t), json_string_length(t));
            } else {
                rs_native_only(x,
                               "%s.output[%zu]: a tool output that is not text is taken by "
                               "OpenAI's Responses API only",
                               where, i);
            }
        }
    } else {
        return rs_bad(x, "invalid_type", where,
                      "Invalid type for '%s.output': expected a string or an array.", where);
    }
    json_array_append_new(x->msgs, json_pack("{s:s,s:O,s:s%}", "role", "tool", "tool_call_id", id,
                                             "content", text.p != NULL ? text.p : "", text.len));
    sl_buf_free(&text);
    return 0;
}


/*
 * A reasoning item waits for the assistant message it belongs to. Only
 * what a provider signed is kept (see the file comment).
 */
static void
rs_reasoning_item(rs_ctx_t *x, json_t *item)
{
    const char *enc = json_string_value(json_object_get(item, "encrypted_content"));
    json_t *summary = json_object_get(item, "summary");
    json_t *content = json_object_get(item, "content");
    sl_buf_t text = SL_BUF_INIT;
    const char *kind;
    json_t *p;
    size_t i;

    if (enc == NULL || strlen(enc) < 7 || strncmp(enc, "sl1.", 4) != 0 || enc[5] != '.') {
        return; /* OpenAI's own, or unsigned: no other provider can read it */
    }
    switch (enc[4]) {
    case 'a':
        kind = "anthropic";
        break;
    case 'r':
        kind = "redacted";
        break;
    case 'g':
        kind = "gemini";
        break;
    default:
        return;
    }
    json_array_foreach(json_is_array(summary) && json_array_size(summary) > 0 ? summary : content,
                       i, p)
    {
        json_t *t = json_object_get(p, "text");

        if (json_is_string(t)) {
            sl_buf_append(&text, json_string_value(t), json_string_length(t));
        }
    }
    json_array_append_new(x->pending,
                          json_pack("{s:s,s:s%,s:s}", "kind", kind, "text",
                                    text.p != NULL ? text.p : "", text.len, "signature", enc + 6));
    sl_buf_free(&text);
}


/* The waiting reasoning entries belong to message index. */
static void
rs_flush_reasoning(rs_ctx_t *x, size_t index)
{
    json_t *e;
    size_t i;

    json_array_foreach(x->pending, i, e)
    {
        json_object_set_new(e, "message", json_integer((json_int_t) index));
        json_array_append(x->reasoning, e);
    }
    json_array_clear(x->pending);
}


/* v as compact JSON in pool, NUL-terminated; NULL when jansson cannot encode it. */
static const char *
rs_dump(sl_pool_t *pool, json_t *v, size_t *len)
{
    char *t = json_dumps(v, JSON_COMPACT); /* one pass (json_dumpb would take two) */
    size_t n;
    char *p;

    if (t == NULL || t[0] == '\0') {
        free(t);
        return NULL;
    }
    n = strlen(t);
    p = sl_palloc(pool, n + 1);
    memcpy(p, t, n + 1);
    free(t);
    *len = n;
    return p;
}


/*
 * "resp_" + 24 hex digits: 12 of the time in milliseconds, then 12 random
 * ones (the request id's when there is no randomness). Ids that grow with
 * time keep the store's inserts at the right edge of its B-tree, so a
 * batch of responses touches a few pages instead of one page each.
 */
static const char *
rs_new_id(sl_call_t *call)
{
    unsigned char r[6];
    char hex[13];
    struct timespec ts;
    unsigned long long ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = ((unsigned long long) ts.tv_sec * 1000 + (unsigned long long) ts.tv_nsec / 1000000)
         & 0xffffffffffffULL;
    if (sl_crypto_random(r, sizeof(r)) == 0) {
        sl_crypto_hex(r, sizeof(r), hex);
        return sl_psprintf(call->pool, "resp_%012llx%s", ms, hex);
    }
    return sl_psprintf(call->pool, "resp_%s", call->request_id != NULL ? call->request_id : "0");
}


/* The model the client named, from its own body. */
static const char *
responses_model(const sl_call_t *call)
{
    sl_str_t s;

    if (sl_json_string(call->native_doc, sl_json_get(call->native_doc, SL_JSON_ROOT, "model"),
                       call->pool, &s)
        < 0) {
        return NULL;
    }
    return sl_pstrndup(call->pool, s.p, s.len);
}


/* ------------------------------------------------------------ encoding */


/* The body of literal lit (without its quotes); empty for an absent one. */
static sl_str_t
rs_body(sl_str_t lit)
{
    if (lit.len < 2) {
        return (sl_str_t){ "", 0 };
    }
    return (sl_str_t){ lit.p + 1, lit.len - 2 };
}


/* The response's status for a finish reason. */
static const char *
rs_status(sl_finish_e f)
{
    return f == SL_FINISH_LENGTH || f == SL_FINISH_CONTENT_FILTER ? "incomplete" : "completed";
}


/*
 * {"id":…,"object":"response",…,"output":[ — the response object up to its
 * output items; the echoed fields come from the client's body.
 */
static void
rs_object_head(const sl_call_t *call, sl_str_t model, int64_t created, const char *status,
               sl_finish_e finish, sl_buf_t *out)
{
    int id = sl_json_get(call->doc, SL_JSON_ROOT, "sluice_response_id");

    sl_buf_puts(out, "{\"id\":");
    if (id >= 0) {
        sl_str_t raw = sl_json_raw(call->doc, id);

        sl_buf_append(out, raw.p, raw.len);
    } else {
        sl_buf_puts(out, "\"resp_0\"");
    }
    sl_buf_puts(out, ",\"object\":\"response\",\"created_at\":");
    if (created < 0) {
        sl_buf_puts(out, "-");
    }
    rs_put_u64(out,
               created < 0 ? 0ULL - (unsigned long long) created : (unsigned long long) created);
    sl_buf_puts(out, ",\"status\":\"");
    sl_buf_puts(out, status);
    sl_buf_puts(out, "\",\"background\":false,\"error\":null,\"incomplete_details\":");
    if (strcmp(status, "incomplete") == 0) {
        sl_buf_printf(out, "{\"reason\":\"%s\"}",
                      finish == SL_FINISH_CONTENT_FILTER ? "content_filter" : "max_output_tokens");
    } else {
        sl_buf_puts(out, "null");
    }
    sl_buf_puts(out, ",\"instructions\":");
    rs_echo(call, "instructions", "null", out);
    sl_buf_puts(out, ",\"max_output_tokens\":");
    rs_echo(call, "max_output_tokens", "null", out);
    sl_buf_puts(out, ",\"model\":");
    if (model.len >= 2) {
        sl_buf_append(out, model.p, model.len);
    } else {
        const char *m = call->target != NULL ? call->target->model : "";

        sl_json_quote(out, (sl_str_t){ m, strlen(m) });
    }
    sl_buf_puts(out, ",\"output\":[");
}


/* ],…,"usage":…} — the rest of the response object (usage NULL: null). */
static void
rs_object_tail(const sl_call_t *call, const sl_usage_t *usage, sl_buf_t *out)
{
    int reasoning = sl_json_get(call->native_doc, SL_JSON_ROOT, "reasoning");
    int effort = sl_json_get(call->native_doc, reasoning, "effort");
    int prev;

    sl_buf_puts(out, "],\"parallel_tool_calls\":");
    rs_echo(call, "parallel_tool_calls", "true", out);
    sl_buf_puts(out, ",\"previous_response_id\":");
    prev = sl_json_get(call->doc, SL_JSON_ROOT, "sluice_previous_response_id");
    if (prev >= 0) {
        sl_str_t raw = sl_json_raw(call->doc, prev);

        sl_buf_append(out, raw.p, raw.len);
    } else {
        sl_buf_puts(out, "null");
    }
    sl_buf_puts(out, ",\"reasoning\":{\"effort\":");
    if (sl_json_type(call->native_doc, effort) == SL_JSON_STRING) {
        sl_str_t raw = sl_json_raw(call->native_doc, effort);

        sl_buf_append(out, raw.p, raw.len);
    } else {
        sl_buf_puts(out, "null");
    }
    sl_buf_puts(out, ",\"summary\":null},\"service_tier\":\"default\",\"store\":");
    rs_echo(call, "store", "true", out);
    sl_buf_puts(out, ",\"temperature\":");
    rs_echo(call, "temperature", "1", out);
    sl_buf_puts(out, ",\"text\":");
    rs_echo(call, "text", "{\"format\":{\"type\":\"text\"}}", out);
    sl_buf_puts(out, ",\"tool_choice\":");
    rs_echo(call, "tool_choice", "\"auto\"", out);
    sl_buf_puts(out, ",\"tools\":");
    rs_echo(call, "tools", "[]", out);
    sl_buf_puts(out, ",\"top_p\":");
    rs_echo(call, "top_p", "1", out);
    sl_buf_puts(out, ",\"truncation\":\"disabled\",\"usage\":");
    if (usage != NULL && usage->known) {
        rs_usage(usage, out);
    } else {
        sl_buf_puts(out, "null");
    }
    sl_buf_puts(out, ",\"user\":");
    rs_echo(call, "user", "null", out);
    sl_buf_puts(out, ",\"metadata\":");
    rs_echo(call, "metadata", "{}", out);
    sl_buf_puts(out, "}");
}


/* The client's own value of key, or dflt when it sent none (or null). */
static void
rs_echo(const sl_call_t *call, const char *key, const char *dflt, sl_buf_t *out)
{
    int v = sl_json_get(call->native_doc, SL_JSON_ROOT, key);
    sl_json_type_e t = sl_json_type(call->native_doc, v);

    if (t == SL_JSON_NONE || t == SL_JSON_NULL) {
        sl_buf_puts(out, dflt);
        return;
    }
    {
        sl_str_t raw = sl_json_raw(call->native_doc, v);

        sl_buf_append(out, raw.p, raw.len);
    }
}


static void
rs_usage(const sl_usage_t *u, sl_buf_t *out)
{
    sl_buf_puts(out, "{\"input_tokens\":");
    rs_put_u64(out, (unsigned long long) u->prompt_tokens);
    sl_buf_puts(out, ",\"input_tokens_details\":{\"cached_tokens\":");
    rs_put_u64(out, (unsigned long long) u->cached_tokens);
    sl_buf_puts(out, "},\"output_tokens\":");
    rs_put_u64(out, (unsigned long long) u->completion_tokens);
    sl_buf_puts(out, ",\"output_tokens_details\":{\"reasoning_tokens\":");
    rs_put_u64(out, (unsigned long long) u->reasoning_tokens);
    sl_buf_puts(out, "},\"total_tokens\":");
    rs_put_u64(out, (unsigned long long) (u->prompt_tokens + u->completion_tokens));
    sl_buf_puts(out, "}");
}


/* An item id: prefix, the response id's random part, '_', n. */
static void
rs_item_id(const sl_call_t *call, const char *prefix, size_t n, sl_buf_t *out)
{
    int id = sl_json_get(call->doc, SL_JSON_ROOT, "sluice_response_id");
    sl_str_t body = id >= 0 ? rs_body(sl_json_raw(call->doc, id)) : sl_str_lit("resp_0");

    if (body.len > 5) {
        body.p += 5;
        body.len -= 5;
    }
    sl_buf_puts(out, "\"");
    sl_buf_puts(out, prefix);
    sl_buf_puts(out, "_");
    sl_buf_append(out, body.p, body.len);
    sl_buf_puts(out, "_");
    rs_put_u64(out, (unsigned long long) n);
    sl_buf_puts(out, "\"");
}


/*
 * The prefix of encrypted_content for a signature from the provider call
 * went to: 'a' Anthropic, 'g' Gemini, 0 for one whose reasoning carries no
 * signature a client could send back.
 */
static char
rs_sig_kind(const sl_call_t *call)
{
    const char *kind = call->target != NULL ? call->target->provider->kind : "";

    if (strcmp(kind, "anthropic") == 0) {
        return 'a';
    }
    if (strcmp(kind, "gemini") == 0) {
        return 'g';
    }
    return 0;
}


/* A reasoning item; text and sig are string bodies. */
static void
rs_write_reasoning(const sl_call_t *call, size_t n, sl_str_t text, sl_str_t sig, sl_buf_t *out)
{
    char kind = rs_sig_kind(call);

    sl_buf_puts(out, "{\"id\":");
    rs_item_id(call, "rs", n, out);
    sl_buf_puts(out, ",\"type\":\"reasoning\",\"summary\":[");
    if (text.len > 0) {
        sl_buf_puts(out, "{\"type\":\"summary_text\",\"text\":\"");
        sl_buf_append(out, text.p, text.len);
        sl_buf_puts(out, "\"}");
    }
    sl_buf_puts(out, "]");
    if (sig.len > 0 && kind != 0) {
        sl_buf_printf(out, ",\"encrypted_content\":\"sl1.%c.", kind);
        sl_buf_append(out, sig.p, sig.len);
        sl_buf_puts(out, "\"");
    }
    sl_buf_puts(out, "}");
}


/* Redacted reasoning: no summary, the data as encrypted_content. */
static void
rs_write_redacted(const sl_call_t *call, size_t n, sl_str_t data, sl_buf_t *out)
{
    sl_buf_puts(out, "{\"id\":");
    rs_item_id(call, "rs", n, out);
    sl_buf_puts(out, ",\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"sl1.r.");
    sl_buf_append(out, data.p, data.len);
    sl_buf_puts(out, "\"}");
}


static void
rs_write_message(const sl_call_t *call, size_t n, sl_str_t text, const char *status, sl_buf_t *out)
{
    sl_buf_puts(out, "{\"id\":");
    rs_item_id(call, "msg", n, out);
    sl_buf_puts(out, ",\"type\":\"message\",\"status\":\"");
    sl_buf_puts(out, status);
    sl_buf_puts(out,
                "\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"");
    sl_buf_append(out, text.p, text.len);
    sl_buf_puts(out, "\",\"annotations\":[],\"logprobs\":[]}]}");
}


/* A function_call item; id, name and space literals, args a string body. */
static void
rs_write_call(const sl_call_t *call, size_t n, sl_str_t id, sl_str_t name, sl_str_t space,
              sl_str_t args, const char *status, sl_buf_t *out)
{
    sl_buf_puts(out, "{\"id\":");
    rs_item_id(call, "fc", n, out);
    sl_buf_printf(out, ",\"type\":\"function_call\",\"status\":\"%s\",\"arguments\":\"", status);
    sl_buf_append(out, args.p, args.len);
    sl_buf_puts(out, "\",\"call_id\":");
    if (id.len >= 2) {
        sl_buf_append(out, id.p, id.len);
    } else {
        rs_item_id(call, "call", n, out);
    }
    sl_buf_puts(out, ",\"name\":");
    if (name.len >= 2) {
        sl_buf_append(out, name.p, name.len);
    } else {
        sl_buf_puts(out, "\"\"");
    }
    if (space.len >= 2) {
        sl_buf_puts(out, ",\"namespace\":");
        sl_buf_append(out, space.p, space.len);
    }
    sl_buf_puts(out, "}");
}


/*
 * The client's name (and namespace) of a tool call the provider named lit:
 * sluice_tool_names of the internal body maps the names the translation
 * changed back; other names are their own.
 */
static void
rs_client_name(const sl_call_t *call, sl_str_t lit, sl_str_t *name, sl_str_t *space)
{
    int map = sl_json_get(call->doc, SL_JSON_ROOT, "sluice_tool_names");
    sl_str_t s;
    int entry;

    *name = lit;
    *space = sl_str_null;
    if (map < 0 || lit.len < 2 || sl_jstr_decode(call->pool, lit, &s) < 0) {
        return;
    }
    entry = sl_json_get(call->doc, map, sl_pstrndup(call->pool, s.p, s.len));
    if (sl_json_type(call->doc, sl_json_get(call->doc, entry, "name")) != SL_JSON_STRING) {
        return;
    }
    *name = sl_json_raw(call->doc, sl_json_get(call->doc, entry, "name"));
    if (sl_json_type(call->doc, sl_json_get(call->doc, entry, "namespace")) == SL_JSON_STRING) {
        *space = sl_json_raw(call->doc, sl_json_get(call->doc, entry, "namespace"));
    }
}


/*
 * A whole answer -> a response object: the first choice's pieces in the
 * provider's order when it gave them, else reasoning, text, then tool calls.
 */
static int
responses_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out)
{
    const sl_choice_t *c;
    size_t n = 0;

    if (a->raw.p != NULL && a->raw_api == SL_API_RESPONSES) {
        sl_buf_append(out, a->raw.p, a->raw.len);
        return 0;
    }
    if (a->nchoices == 0) {
        return SL_EPARSE;
    }
    c = &a->choices[0];
    rs_object_head(call, a->model, a->created != 0 ? a->created : (int64_t) time(NULL),
                   rs_status(c->finish), c->finish, out);
    if (c->nparts > 0) {
        for (size_t i = 0; i < c->nparts; i++) {
            const sl_part_t *p = &c->parts[i];

            if (p->type == SL_PART_TOOL && p->tool >= c->ntools) {
                continue;
            }
            if (n > 0) {
                sl_buf_puts(out, ",");
            }
            switch (p->type) {
            case SL_PART_REASONING:
                rs_write_reasoning(call, n, rs_body(p->text), rs_body(p->signature), out);
                break;
            case SL_PART_REDACTED:
                rs_write_redacted(call, n, rs_body(p->text), out);
                break;
            case SL_PART_TEXT:
                rs_write_message(call, n, rs_body(p->text), "completed", out);
                break;
            default: {
                const sl_tool_call_t *t = &c->tools[p->tool];
                sl_str_t name, space;

                rs_client_name(call, t->name, &name, &space);
                rs_write_call(call, n, t->id, name, space,
                              t->args.len >= 2 ? rs_body(t->args) : sl_str_lit("{}"), "completed",
                              out);
                break;
            }
            }
            n++;
        }
    } else {
        if (c->reasoning.len > 2 || c->signature.len > 2) {
            rs_write_reasoning(call, n++, rs_body(c->reasoning), rs_body(c->signature), out);
        }
        if (c->text.len > 2 || c->ntools == 0) {
            if (n > 0) {
                sl_buf_puts(out, ",");
            }
            rs_write_message(call, n++, rs_body(c->text), "completed", out);
        }
        for (size_t k = 0; k < c->ntools; k++) {
            const sl_tool_call_t *t = &c->tools[k];
            sl_str_t name, space;

            if (n > 0) {
                sl_buf_puts(out, ",");
            }
            rs_client_name(call, t->name, &name, &space);
            rs_write_call(call, n++, t->id, name, space,
                          t->args.len >= 2 ? rs_body(t->args) : sl_str_lit("{}"), "completed", out);
        }
    }
    rs_object_tail(call, &a->usage, out);
    return 0;
}


/* -------------------------------------------------------------- streams */


static void *
responses_stream_open(const sl_call_t *call)
{
    rs_stream_t *s = sl_pcalloc(call->pool, sizeof(*s));

    s->call = call;
    s->created = (int64_t) time(NULL);
    s->open = -1;
    s->held = (sl_buf_t) SL_BUF_INIT;
    sl_pool_on_destroy(call->pool, rs_stream_free, s);
    return s;
}


static void
rs_stream_free(void *arg)
{
    rs_stream_t *s = arg;

    for (size_t i = 0; i < s->nitems; i++) {
        sl_buf_free(&s->items[i].text);
        sl_buf_free(&s->items[i].sig);
    }
    free(s->items);
    sl_buf_free(&s->held);
}


/* "event: TYPE\ndata: {"type":"TYPE","sequence_number":N — the caller adds members and ends it. */
static void
rs_event(rs_stream_t *s, const char *type, sl_buf_t *out)
{
    sl_buf_printf(out, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%llu", type, type,
                  s->seq++);
}


static void
rs_event_end(sl_buf_t *out)
{
    sl_buf_puts(out, "}\n\n");
}


/* response.created and response.in_progress, once. */
static void
rs_start(rs_stream_t *s, sl_buf_t *out)
{
    static const char *const types[] = { "response.created", "response.in_progress" };

    if (s->started) {
        return;
    }
    s->started = true;
    for (size_t i = 0; i < 2; i++) {
        rs_event(s, types[i], out);
        sl_buf_puts(out, ",\"response\":");
        rs_object_head(s->call, s->model, s->created, "in_progress", SL_FINISH_NONE, out);
        rs_object_tail(s->call, NULL, out);
        rs_event_end(out);
    }
}


/* ,"item_id":ID,"output_index":I of item i. */
static void
rs_ref(rs_stream_t *s, size_t i, sl_buf_t *out)
{
    static const char *const prefix[] = { "", "rs", "rs", "msg", "fc" };

    sl_buf_puts(out, ",\"item_id\":");
    rs_item_id(s->call, prefix[s->items[i].kind], i, out);
    sl_buf_printf(out, ",\"output_index\":%zu", i);
}


/* Item i as a whole (output_item.done, the final output). */
static void
rs_item_write(rs_stream_t *s, size_t i, const char *status, sl_buf_t *out)
{
    rs_item_t *it = &s->items[i];
    sl_str_t text = { it->text.p != NULL ? it->text.p : "", it->text.len };
    sl_str_t sig = { it->sig.p != NULL ? it->sig.p : "", it->sig.len };

    switch (it->kind) {
    case RS_REASONING:
        rs_write_reasoning(s->call, i, text, sig, out);
        break;
    case RS_REDACTED:
        rs_write_redacted(s->call, i, text, out);
        break;
    case RS_MESSAGE:
        rs_write_message(s->call, i, text, status, out);
        break;
    default:
        rs_write_call(s->call, i, it->id, it->name, it->space, text, status, out);
        break;
    }
}


/* Closes the open item, then opens a new one of kind and announces it. */
static rs_item_t *
rs_open(rs_stream_t *s, rs_kind_e kind, const sl_ev_t *ev, sl_buf_t *out)
{
    rs_item_t *it;
    size_t i;

    rs_close(s, out);
    if (s->nitems == s->cap) {
        s->cap = s->cap == 0 ? 4 : s->cap * 2;
        s->items = sl_xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    i = s->nitems++;
    it = &s->items[i];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->text = (sl_buf_t) SL_BUF_INIT;
    it->sig = (sl_buf_t) SL_BUF_INIT;
    s->open = (int) i;
    if (kind == RS_CALL) {
        it->tool = ev->index;
        it->id = ev->id;
        rs_client_name(s->call, ev->name, &it->name, &it->space);
    }
    if (kind == RS_REDACTED) {
        sl_str_t data = rs_body(ev->text);

        sl_buf_append(&it->text, data.p, data.len);
    }
    rs_event(s, "response.output_item.added", out);
    sl_buf_printf(out, ",\"output_index\":%zu,\"item\":", i);
    switch (kind) {
    case RS_REASONING:
        sl_buf_puts(out, "{\"id\":");
        rs_item_id(s->call, "rs", i, out);
        sl_buf_puts(out, ",\"type\":\"reasoning\",\"summary\":[]}");
        rs_event_end(out);
        rs_event(s, "response.reasoning_summary_part.added", out);
        rs_ref(s, i, out);
        sl_buf_puts(out, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}");
        break;
    case RS_MESSAGE:
        sl_buf_puts(out, "{\"id\":");
        rs_item_id(s->call, "msg", i, out);
        sl_buf_puts(out, ",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\","
                         "\"content\":[]}");
        rs_event_end(out);
        rs_event(s, "response.content_part.added", out);
        rs_ref(s, i, out);
        sl_buf_puts(out, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\","
                         "\"annotations\":[],\"logprobs\":[]}");
        break;
    default:
        rs_item_write(s, i, "in_progress", out);
        break;
    }
    rs_event_end(out);
    if (kind == RS_REDACTED) {
        rs_close(s, out);
    }
    return it;
}


/* The open item's closing events. */
static void
rs_close(rs_stream_t *s, sl_buf_t *out)
{
    rs_item_t *it;
    size_t i;

    if (s->open < 0) {
        return;
    }
    i = (size_t) s->open;
    it = &s->items[i];
    s->open = -1;
    it->done = true;
    switch (it->kind) {
    case RS_REASONING:
        rs_event(s, "response.reasoning_summary_text.done", out);
        rs_ref(s, i, out);
        sl_buf_puts(out, ",\"summary_index\":0,\"text\":\"");
        sl_buf_append(out, it->text.p != NULL ? it->text.p : "", it->text.len);
        sl_buf_puts(out, "\"");
        rs_event_end(out);
        rs_event(s, "response.reasoning_summary_part.done", out);
        rs_ref(s, i, out);
        sl_buf_puts(out, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"");
        sl_buf_append(out, it->text.p != NULL ? it->text.p : "", it->text.len);
        sl_buf_puts(out, "\"}");
        rs_event_end(out);
        break;
    case RS_MESSAGE:
        rs_event(s, "response.output_text.done", out);
        rs_ref(s, i, out);
        sl_buf_puts(out, ",\"content_index\":0,\"text\":\"");
        sl_buf_append(out, it->text.p != NULL ? it->text.p : "", it->text.len);
        sl_buf_puts(out, "\",\"logprobs\":[]");
        rs_event_end(out);
        rs_event(s, "response.content_part.done", out);
        rs_ref(s, i, out);
        sl_buf_puts(out, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"");
        sl_buf_append(out, it->text.p != NULL ? it->text.p : "", it->text.len);
        sl_buf_puts(out, "\",\"annotations\":[],\"logprobs\":[]}");
        rs_event_end(out);
        break;
    case RS_CALL:
        rs_event(s, "response.function_call_arguments.done", out);
        rs_ref(s, i, out);
        sl_buf_puts(out, ",\"arguments\":\"");
        sl_buf_append(out, it->text.p != NULL ? it->text.p : "", it->text.len);
        sl_buf_puts(out, "\"");
        rs_event_end(out);
        break;
    default:
        break;
    }
    rs_event(s, "response.output_item.done", out);
    sl_buf_printf(out, ",\"output_index\":%zu,\"item\":", i);
    rs_item_write(s, i, "completed", out);
    rs_event_end(out);
}


/* The item of tool call index tool (its position in *at), or NULL. */
static rs_item_t *
rs_tool_item(rs_stream_t *s, unsigned tool, size_t *at)
{
    for (size_t i = s->nitems; i-- > 0;) {
        if (s->items[i].kind == RS_CALL && s->items[i].tool == tool) {
            *at = i;
            return &s->items[i];
        }
    }
    return NULL;
}


/*
 * One batch of typed events -> Responses events. Only the first choice is
 * encoded. A reasoning block ends at its signature: reasoning text after
 * one opens a new item.
 */
static int
responses_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out)
{
    rs_stream_t *s = state;

    if (s->over) {
        return 0;
    }
    if (evs->raw.p != NULL && evs->raw_api == SL_API_RESPONSES) {
        s->raw = true;
        sl_buf_append(out, evs->raw.p, evs->raw.len);
    }
    if (s->raw) {
        for (size_t i = 0; i < evs->n; i++) {
            if (evs->v[i].type == SL_EV_DONE) {
                rs_raw_done(s, &evs->v[i]);
            } else if (evs->v[i].type == SL_EV_USAGE && evs->v[i].usage != NULL) {
                s->usage = *evs->v[i].usage;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < evs->n; i++) {
        const sl_ev_t *ev = &evs->v[i];
        rs_item_t *it = s->open >= 0 ? &s->items[s->open] : NULL;
        sl_str_t body;
        size_t at;

        if (ev->type == SL_EV_START && ev->name.len >= 2 && s->model.p == NULL) {
            s->model = ev->name;
        }
        if (ev->type == SL_EV_USAGE) {
            if (ev->usage != NULL) {
                s->usage = *ev->usage;
            }
            continue;
        }
        if (ev->choice != 0) {
            continue;
        }
        if (ev->type == SL_EV_START || sl_ev_is_output(ev)) {
            rs_start(s, out);
        }
        if ((ev->type == SL_EV_TEXT || ev->type == SL_EV_TOOL_CALL) && ev->signature.len > 2) {
            /* Gemini signs the part after its thoughts: a reasoning item carries it back */
            if (it == NULL || it->kind != RS_REASONING || it->sig.len > 0) {
                it = rs_open(s, RS_REASONING, ev, out);
            }
            body = rs_body(ev->signature);
            sl_buf_append(&it->sig, body.p, body.len);
            rs_close(s, out);
            it = NULL;
        }
        switch (ev->type) {
        case SL_EV_REASONING:
            if (ev->text.len > 2) {
                if (it == NULL || it->kind != RS_REASONING || it->sig.len > 0) {
                    it = rs_open(s, RS_REASONING, ev, out);
                }
                body = rs_body(ev->text);
                sl_buf_append(&it->text, body.p, body.len);
                rs_event(s, "response.reasoning_summary_text.delta", out);
                rs_ref(s, (size_t) s->open, out);
                sl_buf_puts(out, ",\"summary_index\":0,\"delta\":");
                sl_buf_append(out, ev->text.p, ev->text.len);
                rs_event_end(out);
            }
            if (ev->signature.len > 2) {
                if (it == NULL || it->kind != RS_REASONING) {
                    it = rs_open(s, RS_REASONING, ev, out);
                }
                body = rs_body(ev->signature);
                sl_buf_append(&it->sig, body.p, body.len);
            }
            break;
        case SL_EV_REDACTED:
            rs_open(s, RS_REDACTED, ev, out);
            break;
        case SL_EV_TEXT:
            if (ev->text.len <= 2) {
                break;
            }
            if (it == NULL || it->kind != RS_MESSAGE) {
                it = rs_open(s, RS_MESSAGE, ev, out);
            }
            body = rs_body(ev->text);
            sl_buf_append(&it->text, body.p, body.len);
            rs_event(s, "response.output_text.delta", out);
            rs_ref(s, (size_t) s->open, out);
            sl_buf_puts(out, ",\"content_index\":0,\"delta\":");
            sl_buf_append(out, ev->text.p, ev->text.len);
            sl_buf_puts(out, ",\"logprobs\":[]");
            rs_event_end(out);
            break;
        case SL_EV_TOOL_CALL:
            rs_open(s, RS_CALL, ev, out);
            break;
        case SL_EV_TOOL_ARGS:
            it = rs_tool_item(s, ev->index, &at);
            if (it == NULL || ev->text.len <= 2) {
                break;
            }
            body = rs_body(ev->text);
            sl_buf_append(&it->text, body.p, body.len);
            if (!it->done) {
                rs_event(s, "response.function_call_arguments.delta", out);
                rs_ref(s, at, out);
                sl_buf_puts(out, ",\"delta\":");
                sl_buf_append(out, ev->text.p, ev->text.len);
                rs_event_end(out);
            }
            break;
        case SL_EV_FINISH:
            s->finish = ev->finish;
            break;
        default:
            break;
        }
    }
    return 0;
}


/*
 * The provider's closing event (raw): kept for encode_end, and its
 * response object kept as the final one.
 */
static void
rs_raw_done(rs_stream_t *s, const sl_ev_t *ev)
{
    sl_json_t *doc;
    const char *data;
    const char *end;
    const char *nl;
    int resp;

    if (ev->text.len == 0) {
        return;
    }
    sl_buf_clear(&s->held);
    sl_buf_append(&s->held, ev->text.p, ev->text.len);
    /* the adapter framed one data line: "event: T\ndata: {...}\n\n" */
    end = ev->text.p + ev->text.len;
    for (data = ev->text.p; data + 6 <= end && memcmp(data, "data: ", 6) != 0;) {
        const char *lf = memchr(data, '\n', (size_t) (end - data));

        data = lf != NULL ? lf + 1 : end;
    }
    if (data + 6 > end) {
        return;
    }
    data += 6;
    nl = memchr(data, '\n', (size_t) (end - data));
    doc = sl_json_create(s->call->pool);
    if (sl_json_parse(doc, data, (size_t) ((nl != NULL ? nl : end) - data), NULL) < 0) {
        return;
    }
    resp = sl_json_get(doc, SL_JSON_ROOT, "response");
    if (sl_json_type(doc, resp) == SL_JSON_OBJECT) {
        sl_str_t raw = sl_json_raw(doc, resp);

        s->final = (sl_str_t){ sl_pstrndup(s->call->pool, raw.p, raw.len), raw.len };
    }
}


/*
 * The clean end: the open item closes, and response.completed (or
 * response.incomplete) carries the whole response with the request's
 * final usage. After the provider's own events: its closing event.
 */
static int
responses_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out)
{
    rs_stream_t *s = state;
    const char *status;
    sl_buf_t obj = SL_BUF_INIT;

    if (s->over) {
        return 0;
    }
    s->over = true;
    if (s->raw) {
        sl_buf_append(out, s->held.p != NULL ? s->held.p : "", s->held.len);
        return 0;
    }
    rs_start(s, out);
    rs_close(s, out);
    status = rs_status(s->finish);
    rs_object_head(s->call, s->model, s->created, status, s->finish, &obj);
    for (size_t i = 0; i < s->nitems; i++) {
        if (i > 0) {
            sl_buf_puts(&obj, ",");
        }
        rs_item_write(s, i, "completed", &obj);
    }
    rs_object_tail(s->call, usage != NULL ? usage : &s->usage, &obj);
    s->final = (sl_str_t){ sl_pstrndup(s->call->pool, obj.p, obj.len), obj.len };
    rs_event(s, strcmp(status, "completed") == 0 ? "response.completed" : "response.incomplete",
             out);
    sl_buf_puts(out, ",\"response\":");
    sl_buf_append(out, obj.p, obj.len);
    rs_event_end(out);
    sl_buf_free(&obj);
    return 0;
}


sl_str_t
sl__frontend_responses_final(void *state)
{
    rs_stream_t *s = state;

    return s != NULL ? s->final : sl_str_null;
}


/*
 * A failure after the stream started: OpenAI's `error` event (type, code,
 * message, param), with the same fields under "error" too, so that SDKs
 * that raise on an event carrying an error (the openai SDKs) raise;
 * nothing follows it.
 */
static int
responses_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out)
{
    rs_stream_t *s = state;
    const char *msg = e->message != NULL ? e->message : "the provider reported an error";
    sl_buf_t fields = SL_BUF_INIT;

    if (s == NULL || s->over) {
        return 0;
    }
    s->over = true;
    sl_buf_puts(&fields, ",\"code\":");
    rs_quote_or_null(&fields, e->code != NULL ? e->code : e->type);
    sl_buf_puts(&fields, ",\"message\":");
    sl_json_quote(&fields, (sl_str_t){ msg, strlen(msg) });
    sl_buf_puts(&fields, ",\"param\":");
    rs_quote_or_null(&fields, e->param);
    rs_event(s, "error", out);
    sl_buf_append(out, fields.p, fields.len);
    sl_buf_puts(out, ",\"error\":{\"type\":");
    rs_quote_or_null(out, e->type != NULL ? e->type : "api_error");
    sl_buf_append(out, fields.p, fields.len);
    sl_buf_puts(out, "}");
    rs_event_end(out);
    sl_buf_free(&fields);
    return 0;
}


/* OpenAI's error shape, as the chat frontend writes it. */
static int
responses_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out)
{
    return sl__frontend_chat.encode_error(pool, e, out);
}


/* v in decimal (no printf: the answers' hot path). */
static void
rs_put_u64(sl_buf_t *out, unsigned long long v)
{
    char d[24];
    size_t k = sizeof(d);

    do {
        d[--k] = (char) ('0' + v % 10);
        v /= 10;
    } while (v > 0);
    sl_buf_append(out, d + k, sizeof(d) - k);
}


static void
rs_quote_or_null(sl_buf_t *out, const char *s)
{
    if (s == NULL) {
        sl_buf_puts(out, "null");
        return;
    }
    sl_json_quote(out, (sl_str_t){ s, strlen(s) });
}
