/*
 * The OpenAI Responses frontend: POST /v1/responses, the request side
 * (fe_responses_answer.c encodes answers, streams and errors). The client's
 * body is read once with the token reader, checked as jansson would check
 * it (sl_json_strict: a body jansson refuses is a 400), and translated
 * straight into the internal OpenAI chat body with the token writer
 * (sl_json_w_*): no DOM, and the chat body's tokens come from the writer,
 * not from a second parse. Strings the translation does not change are
 * copied as the client wrote them. The client's body travels along
 * untouched as call->native, so an openai or azure target forwards it
 * natively (their answers and events then come back raw).
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
#include <string.h>
#include <time.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"

#define RS_NAME_MAX 64 /* a function name every provider takes: [A-Za-z0-9_-]{1,64} */

/* Top-level keys of a client body that the translation reads. */
enum {
    RS_KEY_MODEL = 0,
    RS_KEY_INSTRUCTIONS,
    RS_KEY_INPUT,
    RS_KEY_TOOLS,
    RS_KEY_TOOL_CHOICE,
    RS_KEY_STREAM,
    RS_KEY_STORE,
    RS_KEY_PARALLEL,
    RS_KEY_BACKGROUND,
    RS_KEY_CONVERSATION,
    RS_KEY_PREVIOUS,
    RS_KEY_PROMPT,
    RS_KEY_MAX_OUTPUT,
    RS_KEY_TEMPERATURE,
    RS_KEY_TOP_P,
    RS_KEY_USER,
    RS_KEY_METADATA,
    RS_KEY_REASONING,
    RS_KEY_TEXT,
    RS_NKEYS,
};

/* A reasoning item waiting for the assistant message it belongs to. */
typedef struct rs_pending {
    const char *kind;
    sl_str_t text;      /* decoded */
    sl_str_t signature; /* decoded */
} rs_pending_t;

/* The translation's working state. */
typedef struct rs_ctx {
    sl_call_t *call;
    const sl_json_t *in; /* the client's body (call->native_doc) */
    int v[RS_NKEYS];     /* its top-level values */
    const sl_json_t *d;  /* the document of the items being read */
    sl_json_w_t *w;      /* the chat body */
    sl_json_t *tools_doc;
    sl_json_w_t *tools; /* chat tools (an open array), or NULL until the first */
    sl_json_t *names_doc;
    sl_json_w_t *names; /* safe name -> {name, namespace} (an open object), or NULL */
    sl_str_t *named;    /* the safe names in names */
    size_t nnamed;
    size_t named_cap;
    sl_json_t *reasoning_doc;
    sl_json_w_t *reasoning; /* sluice_reasoning (an open array), or NULL */
    rs_pending_t *pending;  /* reasoning waiting for its assistant message */
    size_t npending;
    size_t pending_cap;
    size_t nmsgs;           /* messages written (or open) */
    size_t turns;           /* of them, user, assistant and tool messages */
    bool open;              /* the last message is an assistant message function calls may join */
    bool calls;             /* the open assistant message has its tool_calls array open */
    const char *where_base; /* where the item or tools being read are: base[idx] */
    size_t where_idx;       /* (size_t) -1: base alone */
    char at[80];
    const char *untranslatable;
    sl_error_t *err;
} rs_ctx_t;

static int responses_decode(sl_call_t *call, sl_str_t body, sl_error_t *err);
static const char *responses_model(const sl_call_t *call);
static int rs_bad(rs_ctx_t *x, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void rs_native_only(rs_ctx_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *rs_at(rs_ctx_t *x);
static bool rs_is(sl_str_t s, const char *lit);
static bool rs_str(rs_ctx_t *x, const sl_json_t *d, int v, sl_str_t *out);
static bool rs_null(const sl_json_t *d, int v);
static void rs_key(rs_ctx_t *x, const char *key);
static void rs_copy(rs_ctx_t *x, const char *key, const sl_json_t *d, int v);
static void rs_put_str(rs_ctx_t *x, const char *key, sl_str_t s);
static int rs_options(rs_ctx_t *x);
static int rs_text(rs_ctx_t *x, int text);
static int rs_tools(rs_ctx_t *x, int tools);
static int rs_function(rs_ctx_t *x, const sl_str_t *space, int t);
static sl_str_t rs_safe_name(rs_ctx_t *x, const sl_str_t *space, sl_str_t name);
static int rs_tool_choice(rs_ctx_t *x, int tc);
static int rs_items(rs_ctx_t *x, const sl_json_t *d, int items, const char *base, size_t *idx);
static int rs_item(rs_ctx_t *x, int item);
static int rs_message(rs_ctx_t *x, int item);
static void rs_open_message(rs_ctx_t *x, const char *role);
static void rs_close_message(rs_ctx_t *x);
static int rs_user_parts(rs_ctx_t *x, int content);
static int rs_join_text(rs_ctx_t *x, int content, bool outputs, sl_buf_t *b);
static void rs_assistant(rs_ctx_t *x);
static int rs_function_call(rs_ctx_t *x, int item);
static int rs_call_output(rs_ctx_t *x, int item);
static void rs_reasoning_item(rs_ctx_t *x, int item);
static void rs_flush_reasoning(rs_ctx_t *x);
static sl_str_t rs_new_id(sl_call_t *call);
static int rs_call(rs_ctx_t *x, sl_str_t chat, sl_json_t *doc);
static void rs_lookup(rs_ctx_t *x);

static const char *const rs_keys[RS_NKEYS] = {
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "stream",
    "store",
    "parallel_tool_calls",
    "background",
    "conversation",
    "previous_response_id",
    "prompt",
    "max_output_tokens",
    "temperature",
    "top_p",
    "user",
    "metadata",
    "reasoning",
    "text",
};

static const unsigned char rs_key_len[RS_NKEYS] = {
    5, 12, 5, 5, 11, 6, 5, 19, 10, 12, 20, 6, 17, 11, 5, 4, 8, 9, 4,
};

const sl_frontend_t sl__frontend_responses = {
    .name = "responses",
    .api = SL_API_RESPONSES,
    .decode = responses_decode,
    .model = responses_model,
    .encode_answer = sl__responses_encode_answer,
    .stream_open = sl__responses_stream_open,
    .encode_events = sl__responses_encode_events,
    .encode_end = sl__responses_encode_end,
    .encode_stream_error = sl__responses_encode_stream_error,
    .encode_error = sl__responses_encode_error,
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
 * (errors with a position), checked as jansson checks (call->native_doc),
 * then translated from the tokens.
 */
static int
responses_decode(sl_call_t *call, sl_str_t body, sl_error_t *err)
{
    sl_json_error_t jerr;
    sl_json_t *doc;

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
    if (sl_json_strict(doc, call->pool) < 0) {
        return sl__frontend_bad_request(err, NULL, NULL,
                                        "We could not parse the JSON body of your request: a "
                                        "duplicate object key or an invalid string.");
    }
    call->native = body;
    call->native_doc = doc;
    return sl__frontend_responses_translate(call, NULL, 0, err);
}


int
sl__frontend_responses_translate(sl_call_t *call, const sl_rs_items_t *history, size_t nhistory,
                                 sl_error_t *err)
{
    rs_ctx_t x;
    sl_json_t *doc;
    sl_str_t chat;
    sl_str_t s;
    size_t idx = 0;
    int input;
    int v;
    int rc;

    memset(&x, 0, sizeof(x));
    x.call = call;
    x.err = err;
    x.in = call->native_doc;
    x.where_idx = (size_t) -1;
    rs_lookup(&x);
    input = x.v[RS_KEY_INPUT];
    v = x.v[RS_KEY_MODEL];
    if (!rs_str(&x, x.in, v, &s) || s.len == 0) {
        return rs_bad(&x, v < 0 ? "missing_required_parameter" : "invalid_type", "model",
                      v < 0 ? "You must provide a model parameter."
                            : "Invalid type for 'model': expected a non-empty string.");
    }
    v = x.v[RS_KEY_INSTRUCTIONS];
    if (sl_json_type(x.in, v) != SL_JSON_STRING && !rs_null(x.in, v)) {
        return rs_bad(&x, "invalid_type", "instructions",
                      "Invalid type for 'instructions': expected a string.");
    }
    doc = sl_json_create(call->pool);
    x.w = sl_json_w_create(call->pool, doc);
    sl_json_w_open(x.w, true);
    rs_copy(&x, "model", x.in, x.v[RS_KEY_MODEL]);
    rc = rs_options(&x);
    if (rc < 0) {
        return rc;
    }
    rs_key(&x, "messages");
    sl_json_w_open(x.w, false);
    v = x.v[RS_KEY_INSTRUCTIONS];
    if (sl_json_type(x.in, v) == SL_JSON_STRING && sl_json_raw(x.in, v).len > 2) {
        rs_open_message(&x, "system");
        rs_copy(&x, "content", x.in, v);
        sl_json_w_close(x.w);
    }
    v = x.v[RS_KEY_TOOLS];
    if (!rs_null(x.in, v)) {
        x.d = x.in;
        x.where_base = "tools";
        rc = rs_tools(&x, v);
        if (rc < 0) {
            return rc;
        }
    }
    for (size_t i = 0; i < nhistory; i++) {
        rc = rs_items(&x, history[i].doc, history[i].items, "previous_response_id", &idx);
        if (rc < 0) {
            return rc;
        }
    }
    if (nhistory > 0) {
        rs_close_message(&x);
    }
    if (sl_json_type(x.in, input) == SL_JSON_STRING) {
        rs_close_message(&x);
        rs_open_message(&x, "user");
        rs_copy(&x, "content", x.in, input);
        sl_json_w_close(x.w);
    } else if (sl_json_type(x.in, input) == SL_JSON_ARRAY) {
        idx = 0;
        rc = rs_items(&x, x.in, input, "input", &idx);
        if (rc < 0) {
            return rc;
        }
    } else if (!rs_null(x.in, input)) {
        return rs_bad(&x, "invalid_type", "input",
                      "Invalid type for 'input': expected a string or an array of input items.");
    }
    rs_close_message(&x);
    sl_json_w_close(x.w); /* messages */
    if (x.turns == 0) {
        return rs_bad(&x, input < 0 ? "missing_required_parameter" : "invalid_value", "input",
                      input < 0 ? "Missing required parameter: 'input'."
                                : "Invalid 'input': it holds no message to answer.");
    }
    rc = rs_tool_choice(&x, x.v[RS_KEY_TOOL_CHOICE]);
    if (rc < 0) {
        return rc;
    }
    if (x.tools != NULL) {
        sl_json_w_close(x.tools);
        if (sl_json_w_finish(x.tools, &s) < 0) {
            return rs_bad(&x, NULL, NULL, "The request cannot be encoded.");
        }
        rs_copy(&x, "tools", x.tools_doc, SL_JSON_ROOT);
    }
    if (x.names != NULL) {
        sl_json_w_close(x.names);
        if (sl_json_w_finish(x.names, &s) < 0) {
            return rs_bad(&x, NULL, NULL, "The request cannot be encoded.");
        }
        rs_copy(&x, "sluice_tool_names", x.names_doc, SL_JSON_ROOT);
    }
    if (x.reasoning != NULL) {
        sl_json_w_close(x.reasoning);
        if (sl_json_w_finish(x.reasoning, &s) < 0) {
            return rs_bad(&x, NULL, NULL, "The request cannot be encoded.");
        }
        rs_copy(&x, "sluice_reasoning", x.reasoning_doc, SL_JSON_ROOT);
    }
    rs_put_str(&x, "sluice_response_id", rs_new_id(call));
    v = x.v[RS_KEY_PREVIOUS];
    if (sl_json_type(x.in, v) == SL_JSON_STRING) {
        /* echoed from here: a native body may have lost it to the whole conversation */
        rs_copy(&x, "sluice_previous_response_id", x.in, v);
    }
    sl_json_w_close(x.w);
    if (sl_json_w_finish(x.w, &chat) < 0) {
        return rs_bad(&x, NULL, NULL, "The request cannot be encoded.");
    }
    return rs_call(&x, chat, doc);
}


/*
 * The chat body into call, as the chat frontend would read it, from what
 * the translation wrote (the model first, stream only when true, no
 * stream_options, max_completion_tokens only when positive).
 */
static int
rs_call(rs_ctx_t *x, sl_str_t chat, sl_json_t *doc)
{
    sl_call_t *call = x->call;
    sl_str_t model;
    int64_t n = 0;

    if (!rs_str(x, x->in, x->v[RS_KEY_MODEL], &model) || !sl_http_is_field_value(model)) {
        /* it would reach the x-sluice-model header (and the upstream request) */
        return rs_bad(x, "invalid_value", "model",
                      "Invalid 'model': control characters are not allowed.");
    }
    call->api = SL_API_CHAT;
    call->raw = chat;
    call->doc = doc;
    call->model = sl_json_key_value(doc, sl_json_first(doc, SL_JSON_ROOT));
    call->stream_options = -1;
    call->stream = sl_json_is_true(x->in, x->v[RS_KEY_STREAM]);
    call->client_wants_usage = false;
    call->max_tokens =
        sl_json_int(x->in, x->v[RS_KEY_MAX_OUTPUT], &n) == 0 && n > 0 ? (uint64_t) n : 0;
    call->untranslatable = x->untranslatable;
    return 0;
}


/*
 * The top-level values the translation reads, in one pass over the
 * client's members (sl_json_strict() took the body: no key repeats).
 */
static void
rs_lookup(rs_ctx_t *x)
{
    const sl_json_t *in = x->in;

    for (int i = 0; i < RS_NKEYS; i++) {
        x->v[i] = -1;
    }
    for (int k = sl_json_first(in, SL_JSON_ROOT); k >= 0; k = sl_json_next(in, SL_JSON_ROOT, k)) {
        sl_str_t key = sl_json_raw(in, k);

        if (key.len < 2) {
            continue; /* a key is a quoted string: never (and GCC's -Wstringop-overread asks) */
        }
        key = (sl_str_t){ key.p + 1, key.len - 2 };
        if (memchr(key.p, '\\', key.len) != NULL
            && sl_json_string(in, k, x->call->pool, &key) < 0) {
            continue;
        }
        for (int i = 0; i < RS_NKEYS; i++) {
            if (key.len == rs_key_len[i] && memcmp(key.p, rs_keys[i], key.len) == 0) {
                x->v[i] = sl_json_key_value(in, k);
                break;
            }
        }
    }
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


/* Where the item (or tools) being read is, for messages: "input[3]", "tools". */
static const char *
rs_at(rs_ctx_t *x)
{
    if (x->where_idx == (size_t) -1) {
        return x->where_base;
    }
    snprintf(x->at, sizeof(x->at), "%s[%zu]", x->where_base, x->where_idx);
    return x->at;
}


static bool
rs_is(sl_str_t s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.p, lit, n) == 0;
}


/*
 * String value v of d, decoded (borrowed, or in the call's pool when it
 * holds escapes; not NUL-terminated). False (and *out null) when v is not a
 * string.
 */
static bool
rs_str(rs_ctx_t *x, const sl_json_t *d, int v, sl_str_t *out)
{
    if (sl_json_type(d, v) != SL_JSON_STRING) {
        *out = sl_str_null;
        return false;
    }
    return sl_json_string(d, v, x->call->pool, out) == 0;
}


/* True for an absent value or null. */
static bool
rs_null(const sl_json_t *d, int v)
{
    sl_json_type_e t = sl_json_type(d, v);

    return t == SL_JSON_NONE || t == SL_JSON_NULL;
}


/* A key of the chat body's open object. */
static void
rs_key(rs_ctx_t *x, const char *key)
{
    sl_json_w_key(x->w, (sl_str_t){ key, strlen(key) });
}


/* "key": value v of d, as the client wrote it. */
static void
rs_copy(rs_ctx_t *x, const char *key, const sl_json_t *d, int v)
{
    rs_key(x, key);
    sl_json_w_value(x->w, d, v);
}


/* "key": s (decoded text). */
static void
rs_put_str(rs_ctx_t *x, const char *key, sl_str_t s)
{
    rs_key(x, key);
    sl_json_w_str(x->w, s);
}


/* The scalar options (written into the chat body's top-level object). */
static int
rs_options(rs_ctx_t *x)
{
    static const int bools[] = { RS_KEY_STREAM, RS_KEY_STORE, RS_KEY_PARALLEL, RS_KEY_BACKGROUND };
    const sl_json_t *in = x->in;
    sl_json_type_e t;
    int v;

    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        t = sl_json_type(in, x->v[bools[i]]);
        if (t != SL_JSON_NONE && t != SL_JSON_TRUE && t != SL_JSON_FALSE && t != SL_JSON_NULL) {
            return rs_bad(x, "invalid_type", rs_keys[bools[i]],
                          "Invalid type for '%s': expected a boolean.", rs_keys[bools[i]]);
        }
    }
    if (sl_json_is_true(in, x->v[RS_KEY_BACKGROUND])) {
        return rs_bad(x, "unsupported_parameter", "background",
                      "Background responses are not supported by this gateway: send "
                      "'background': false and keep the connection open, or stream.");
    }
    if (!rs_null(in, x->v[RS_KEY_CONVERSATION])) {
        return rs_bad(x, "unsupported_parameter", "conversation",
                      "Conversations are not supported by this gateway: chain responses with "
                      "'previous_response_id' instead.");
    }
    v = x->v[RS_KEY_PREVIOUS];
    if (!rs_null(in, v) && sl_json_type(in, v) != SL_JSON_STRING) {
        return rs_bad(x, "invalid_type", "previous_response_id",
                      "Invalid type for 'previous_response_id': expected a string.");
    }
    if (!rs_null(in, x->v[RS_KEY_PROMPT])) {
        rs_native_only(x, "prompt: stored prompt templates are OpenAI's");
    }
    if (sl_json_is_true(in, x->v[RS_KEY_STREAM])) {
        rs_copy(x, "stream", in, x->v[RS_KEY_STREAM]);
    }
    v = x->v[RS_KEY_PARALLEL];
    t = sl_json_type(in, v);
    if (t == SL_JSON_TRUE || t == SL_JSON_FALSE) {
        rs_copy(x, "parallel_tool_calls", in, v);
    }
    {
        int64_t n = 0;

        v = x->v[RS_KEY_MAX_OUTPUT];
        if (sl_json_int(in, v, &n) == 0 && n >= 1) {
            rs_copy(x, "max_completion_tokens", in, v);
        } else if (!rs_null(in, v)) {
            return rs_bad(x, "invalid_value", "max_output_tokens",
                          "Invalid 'max_output_tokens': expected a positive integer.");
        }
    }
    for (int k = RS_KEY_TEMPERATURE; k <= RS_KEY_TOP_P; k++) {
        v = x->v[k];
        if (sl_json_type(in, v) == SL_JSON_NUMBER) {
            rs_copy(x, rs_keys[k], in, v);
        } else if (!rs_null(in, v)) {
            return rs_bad(x, "invalid_type", rs_keys[k],
                          "Invalid type for '%s': expected a number.", rs_keys[k]);
        }
    }
    v = x->v[RS_KEY_USER];
    if (sl_json_type(in, v) == SL_JSON_STRING) {
        rs_copy(x, "user", in, v);
    } else if (!rs_null(in, v)) {
        return rs_bad(x, "invalid_type", "user", "Invalid type for 'user': expected a string.");
    }
    v = x->v[RS_KEY_METADATA];
    if (!rs_null(in, v) && sl_json_type(in, v) != SL_JSON_OBJECT) {
        return rs_bad(x, "invalid_type", "metadata",
                      "Invalid type for 'metadata': expected an object.");
    }
    v = x->v[RS_KEY_REASONING];
    if (sl_json_type(in, v) == SL_JSON_OBJECT) {
        int effort = sl_json_get(in, v, "effort");

        if (sl_json_type(in, effort) == SL_JSON_STRING) {
            rs_copy(x, "reasoning_effort", in, effort);
        } else if (!rs_null(in, effort)) {
            return rs_bad(x, "invalid_type", "reasoning.effort",
                          "Invalid type for 'reasoning.effort': expected a string.");
        }
    } else if (!rs_null(in, v)) {
        return rs_bad(x, "invalid_type", "reasoning",
                      "Invalid type for 'reasoning': expected an object.");
    }
    v = x->v[RS_KEY_TEXT];
    if (!rs_null(in, v)) {
        return rs_text(x, v);
    }
    return 0;
}


/* text: format (json_schema, json_object, text) and verbosity. */
static int
rs_text(rs_ctx_t *x, int text)
{
    const sl_json_t *in = x->in;
    int format = sl_json_get(in, text, "format");
    int verbosity = sl_json_get(in, text, "verbosity");
    int schema, name, v;
    sl_str_t type;

    if (sl_json_type(in, text) != SL_JSON_OBJECT) {
        return rs_bad(x, "invalid_type", "text", "Invalid type for 'text': expected an object.");
    }
    if (sl_json_type(in, verbosity) == SL_JSON_STRING) {
        rs_copy(x, "verbosity", in, verbosity);
    }
    if (rs_null(in, format)) {
        return 0;
    }
    if (!rs_str(x, in, sl_json_get(in, format, "type"), &type)) {
        return rs_bad(x, "missing_required_parameter", "text.format.type",
                      "Missing required parameter: 'text.format.type'.");
    }
    if (rs_is(type, "text")) {
        return 0;
    }
    if (rs_is(type, "json_object")) {
        rs_key(x, "response_format");
        sl_json_w_open(x->w, true);
        rs_put_str(x, "type", sl_str_lit("json_object"));
        sl_json_w_close(x->w);
        return 0;
    }
    if (!rs_is(type, "json_schema")) {
        return rs_bad(x, "invalid_value", "text.format.type",
                      "Invalid value for 'text.format.type': expected one of text, json_object "
                      "or json_schema.");
    }
    schema = sl_json_get(in, format, "schema");
    if (sl_json_type(in, schema) != SL_JSON_OBJECT) {
        return rs_bad(x, "missing_required_parameter", "text.format.schema",
                      "Missing required parameter: 'text.format.schema'.");
    }
    rs_key(x, "response_format");
    sl_json_w_open(x->w, true);
    rs_put_str(x, "type", sl_str_lit("json_schema"));
    rs_key(x, "json_schema");
    sl_json_w_open(x->w, true);
    rs_copy(x, "schema", in, schema);
    name = sl_json_get(in, format, "name");
    if (sl_json_type(in, name) == SL_JSON_STRING) {
        rs_copy(x, "name", in, name);
    } else {
        rs_put_str(x, "name", sl_str_lit("response"));
    }
    v = sl_json_get(in, format, "strict");
    if (sl_json_type(in, v) == SL_JSON_TRUE || sl_json_type(in, v) == SL_JSON_FALSE) {
        rs_copy(x, "strict", in, v);
    }
    v = sl_json_get(in, format, "description");
    if (sl_json_type(in, v) == SL_JSON_STRING) {
        rs_copy(x, "description", in, v);
    }
    sl_json_w_close(x->w);
    sl_json_w_close(x->w);
    return 0;
}


/* Tool declarations (tools, or an additional_tools item's; x->d) -> chat tools. */
static int
rs_tools(rs_ctx_t *x, int tools)
{
    const sl_json_t *d = x->d;
    size_t i = 0;
    int rc;

    if (sl_json_type(d, tools) != SL_JSON_ARRAY) {
        return rs_bad(x, "invalid_type", rs_at(x), "Invalid type for '%s': expected an array.",
                      rs_at(x));
    }
    for (int t = sl_json_first(d, tools); t >= 0; t = sl_json_next(d, tools, t), i++) {
        sl_str_t type, space;
        int sub;
        size_t k = 0;

        if (!rs_str(x, d, sl_json_get(d, t, "type"), &type)) {
            return rs_bad(x, "missing_required_parameter", rs_at(x),
                          "Missing required parameter: '%s[%zu].type'.", rs_at(x), i);
        }
        if (rs_is(type, "function")) {
            rc = rs_function(x, NULL, t);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        if (!rs_is(type, "namespace")) {
            rs_native_only(x,
                           "%s[%zu]: the hosted tool `%.*s` is served by OpenAI's Responses API "
                           "only",
                           rs_at(x), i, (int) type.len, type.p);
            continue;
        }
        sub = sl_json_get(d, t, "tools");
        if (!rs_str(x, d, sl_json_get(d, t, "name"), &space)
            || sl_json_type(d, sub) != SL_JSON_ARRAY) {
            return rs_bad(x, "invalid_value", rs_at(x),
                          "Invalid '%s[%zu]': a namespace needs a name and a tools array.",
                          rs_at(x), i);
        }
        for (int s = sl_json_first(d, sub); s >= 0; s = sl_json_next(d, sub, s), k++) {
            sl_str_t st;

            if (!rs_str(x, d, sl_json_get(d, s, "type"), &st) || !rs_is(st, "function")) {
                rs_native_only(x,
                               "%s[%zu].tools[%zu]: the tool type `%.*s` is served by OpenAI's "
                               "Responses API only",
                               rs_at(x), i, k, st.p != NULL ? (int) st.len : 6,
                               st.p != NULL ? st.p : "(none)");
                continue;
            }
            rc = rs_function(x, &space, s);
            if (rc < 0) {
                return rc;
            }
        }
    }
    return 0;
}


/* One function tool t of x->d (of namespace space, or NULL) -> a chat tool. */
static int
rs_function(rs_ctx_t *x, const sl_str_t *space, int t)
{
    const sl_json_t *d = x->d;
    int desc = sl_json_get(d, t, "description");
    int params = sl_json_get(d, t, "parameters");
    int strict = sl_json_get(d, t, "strict");
    sl_json_w_t *w;
    sl_str_t name;
    sl_str_t safe;

    if (!rs_str(x, d, sl_json_get(d, t, "name"), &name) || name.len == 0) {
        return rs_bad(x, "missing_required_parameter", rs_at(x),
                      "Missing required parameter: '%s[].name' of a function tool.", rs_at(x));
    }
    safe = rs_safe_name(x, space, name);
    if (x->tools == NULL) {
        x->tools_doc = sl_json_create(x->call->pool);
        x->tools = sl_json_w_create(x->call->pool, x->tools_doc);
        sl_json_w_open(x->tools, false);
    }
    w = x->tools;
    sl_json_w_open(w, true);
    sl_json_w_key(w, sl_str_lit("type"));
    sl_json_w_str(w, sl_str_lit("function"));
    sl_json_w_key(w, sl_str_lit("function"));
    sl_json_w_open(w, true);
    sl_json_w_key(w, sl_str_lit("name"));
    sl_json_w_str(w, safe);
    if (sl_json_type(d, desc) == SL_JSON_STRING) {
        sl_json_w_key(w, sl_str_lit("description"));
        sl_json_w_value(w, d, desc);
    }
    if (sl_json_type(d, params) == SL_JSON_OBJECT) {
        sl_json_w_key(w, sl_str_lit("parameters"));
        sl_json_w_value(w, d, params);
    }
    if (sl_json_type(d, strict) == SL_JSON_TRUE || sl_json_type(d, strict) == SL_JSON_FALSE) {
        sl_json_w_key(w, sl_str_lit("strict"));
        sl_json_w_value(w, d, strict);
    }
    sl_json_w_close(w);
    sl_json_w_close(w);
    return 0;
}


/*
 * The chat name of function name in namespace space (NULL: none): space +
 * name when every provider takes it, else its characters outside
 * [A-Za-z0-9_-] made '_', cut to 55 and followed by '_' and 8 hex digits
 * of its FNV-1a hash, so the same name always maps the same way. A name
 * that changed goes into sluice_tool_names (once). In the pool.
 */
static sl_str_t
rs_safe_name(rs_ctx_t *x, const sl_str_t *space, sl_str_t name)
{
    sl_str_t flat = name;
    bool ok;
    uint32_t h = 2166136261u;
    char *safe;
    size_t n;
    sl_json_w_t *w;

    if (space != NULL) {
        char *p = sl_palloc(x->call->pool, space->len + name.len + 1);

        memcpy(p, space->p, space->len);
        memcpy(p + space->len, name.p, name.len);
        p[space->len + name.len] = '\0';
        flat = (sl_str_t){ p, space->len + name.len };
    }
    ok = flat.len > 0 && flat.len <= RS_NAME_MAX;
    for (size_t i = 0; i < flat.len; i++) {
        char c = flat.p[i];

        ok = ok
             && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                 || c == '_' || c == '-');
        h = (h ^ (uint8_t) c) * 16777619u;
    }
    if (ok && space == NULL) {
        return name;
    }
    if (ok) {
        safe = (char *) flat.p;
        n = flat.len;
    } else {
        n = flat.len < 55 ? flat.len : 55;
        safe = sl_palloc(x->call->pool, n + 10);
        for (size_t i = 0; i < n; i++) {
            char c = flat.p[i];

            safe[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                              || c == '-'
                          ? c
                          : '_';
        }
        snprintf(safe + n, 10, "_%08x", h);
        n += 9;
    }
    for (size_t i = 0; i < x->nnamed; i++) {
        if (x->named[i].len == n && memcmp(x->named[i].p, safe, n) == 0) {
            return x->named[i];
        }
    }
    if (x->names == NULL) {
        x->names_doc = sl_json_create(x->call->pool);
        x->names = sl_json_w_create(x->call->pool, x->names_doc);
        sl_json_w_open(x->names, true);
    }
    if (x->nnamed == x->named_cap) {
        x->named =
            sl_pgrow(x->call->pool, x->named, x->nnamed, &x->named_cap, 8, sizeof(*x->named));
    }
    x->named[x->nnamed++] = (sl_str_t){ safe, n };
    w = x->names;
    sl_json_w_key(w, (sl_str_t){ safe, n });
    sl_json_w_open(w, true);
    sl_json_w_key(w, sl_str_lit("name"));
    sl_json_w_str(w, name);
    if (space != NULL) {
        sl_json_w_key(w, sl_str_lit("namespace"));
        sl_json_w_str(w, *space);
    }
    sl_json_w_close(w);
    return (sl_str_t){ safe, n };
}


static int
rs_tool_choice(rs_ctx_t *x, int tc)
{
    const sl_json_t *in = x->in;
    sl_str_t s, type, name, space;
    bool has_space;

    if (rs_null(in, tc)) {
        return 0;
    }
    if (rs_str(x, in, tc, &s)) {
        if (!rs_is(s, "auto") && !rs_is(s, "none") && !rs_is(s, "required")) {
            return rs_bad(x, "invalid_value", "tool_choice",
                          "Invalid value for 'tool_choice': expected auto, none or required.");
        }
        rs_copy(x, "tool_choice", in, tc);
        return 0;
    }
    if (!rs_str(x, in, sl_json_get(in, tc, "type"), &type)) {
        return rs_bad(x, "invalid_type", "tool_choice",
                      "Invalid type for 'tool_choice': expected a string or an object with a "
                      "type.");
    }
    if (rs_is(type, "function") && rs_str(x, in, sl_json_get(in, tc, "name"), &name)) {
        has_space = rs_str(x, in, sl_json_get(in, tc, "namespace"), &space);
        name = rs_safe_name(x, has_space ? &space : NULL, name);
        rs_key(x, "tool_choice");
        sl_json_w_open(x->w, true);
        rs_put_str(x, "type", sl_str_lit("function"));
        rs_key(x, "function");
        sl_json_w_open(x->w, true);
        rs_put_str(x, "name", name);
        sl_json_w_close(x->w);
        sl_json_w_close(x->w);
        return 0;
    }
    rs_native_only(x, "tool_choice: the choice `%.*s` is served by OpenAI's Responses API only",
                   (int) type.len, type.p);
    return 0;
}


/* The items of array items of d; *idx numbers them (on from where an earlier array stopped). */
static int
rs_items(rs_ctx_t *x, const sl_json_t *d, int items, const char *base, size_t *idx)
{
    int rc;

    x->d = d;
    x->where_base = base;
    for (int it = sl_json_first(d, items); it >= 0; it = sl_json_next(d, items, it)) {
        x->d = d;
        x->where_base = base;
        x->where_idx = (*idx)++;
        rc = rs_item(x, it);
        if (rc < 0) {
            return rc;
        }
    }
    x->where_idx = (size_t) -1;
    return 0;
}


/* One input item (of x->d). */
static int
rs_item(rs_ctx_t *x, int item)
{
    const sl_json_t *d = x->d;
    sl_str_t type;
    bool typed;

    typed = rs_str(x, d, sl_json_get(d, item, "type"), &type);
    if (sl_json_type(d, item) != SL_JSON_OBJECT) {
        return rs_bad(x, "invalid_type", rs_at(x), "Invalid type for '%s': expected an object.",
                      rs_at(x));
    }
    if (!typed && sl_json_get(d, item, "role") >= 0) {
        type = sl_str_lit("message");
        typed = true;
    }
    if (!typed) {
        return rs_bad(x, "missing_required_parameter", rs_at(x),
                      "Missing required parameter: '%s.type'.", rs_at(x));
    }
    if (rs_is(type, "message")) {
        return rs_message(x, item);
    }
    if (rs_is(type, "function_call")) {
        return rs_function_call(x, item);
    }
    if (rs_is(type, "function_call_output")) {
        rs_close_message(x);
        return rs_call_output(x, item);
    }
    if (rs_is(type, "reasoning")) {
        rs_reasoning_item(x, item);
        return 0;
    }
    if (rs_is(type, "additional_tools")) {
        return rs_tools(x, sl_json_get(d, item, "tools"));
    }
    for (size_t i = 0; rs_hosted_items[i] != NULL; i++) {
        if (rs_is(type, rs_hosted_items[i])) {
            rs_native_only(x, "%s: the item type `%s` is served by OpenAI's Responses API only",
                           rs_at(x), rs_hosted_items[i]);
            rs_close_message(x);
            return 0;
        }
    }
    return rs_bad(x, "invalid_value", rs_at(x),
                  "Invalid value for '%s.type': unknown item type `%.*s`.", rs_at(x),
                  (int) type.len, type.p);
}


/* A new chat message {"role":role, ... (left open; the open assistant one closed first). */
static void
rs_open_message(rs_ctx_t *x, const char *role)
{
    rs_close_message(x);
    sl_json_w_open(x->w, true);
    rs_put_str(x, "role", (sl_str_t){ role, strlen(role) });
    x->nmsgs++;
    x->turns += strcmp(role, "system") != 0 && strcmp(role, "developer") != 0;
}


/* The open assistant message, if any, is done: no function call joins it any more. */
static void
rs_close_message(rs_ctx_t *x)
{
    if (!x->open) {
        return;
    }
    if (x->calls) {
        sl_json_w_close(x->w);
    }
    sl_json_w_close(x->w);
    x->open = false;
    x->calls = false;
}


/* A message item: user (parts), system or developer (text), assistant (output text). */
static int
rs_message(rs_ctx_t *x, int item)
{
    const sl_json_t *d = x->d;
    int content = sl_json_get(d, item, "content");
    sl_json_type_e ct = sl_json_type(d, content);
    sl_buf_t text = SL_BUF_INIT;
    sl_str_t role;
    int rc;

    if (!rs_str(x, d, sl_json_get(d, item, "role"), &role)) {
        return rs_bad(x, "missing_required_parameter", rs_at(x),
                      "Missing required parameter: '%s.role'.", rs_at(x));
    }
    if (ct != SL_JSON_STRING && ct != SL_JSON_ARRAY) {
        return rs_bad(x, "invalid_type", rs_at(x),
                      "Invalid type for '%s.content': expected a string or an array.", rs_at(x));
    }
    if (rs_is(role, "assistant")) {
        if (ct == SL_JSON_STRING) {
            rs_assistant(x);
            rs_copy(x, "content", d, content);
            return 0;
        }
        rc = rs_join_text(x, content, true, &text);
        if (rc == 0) {
            rs_assistant(x);
            rs_put_str(x, "content", (sl_str_t){ text.p != NULL ? text.p : "", text.len });
        }
        sl_buf_free(&text);
        return rc;
    }
    rs_close_message(x);
    x->npending = 0; /* reasoning not followed by the model's turn */
    if (rs_is(role, "system") || rs_is(role, "developer")) {
        if (ct == SL_JSON_STRING) {
            if (sl_json_raw(d, content).len > 2) {
                rs_open_message(x, rs_is(role, "system") ? "system" : "developer");
                rs_copy(x, "content", d, content);
                sl_json_w_close(x->w);
            }
            return 0;
        }
        rc = rs_join_text(x, content, false, &text);
        if (rc == 0 && text.len > 0) {
            rs_open_message(x, rs_is(role, "system") ? "system" : "developer");
            rs_put_str(x, "content", (sl_str_t){ text.p, text.len });
            sl_json_w_close(x->w);
        }
        sl_buf_free(&text);
        return rc;
    }
    if (!rs_is(role, "user")) {
        return rs_bad(x, "invalid_value", rs_at(x),
                      "Invalid value for '%s.role': expected user, assistant, system or "
                      "developer.",
                      rs_at(x));
    }
    rs_open_message(x, "user");
    if (ct == SL_JSON_STRING) {
        rs_copy(x, "content", d, content);
        sl_json_w_close(x->w);
        return 0;
    }
    rs_key(x, "content");
    rc = rs_user_parts(x, content);
    sl_json_w_close(x->w);
    return rc;
}


/* A user message's parts -> chat parts (an array written as the message's content). */
static int
rs_user_parts(rs_ctx_t *x, int content)
{
    const sl_json_t *d = x->d;
    sl_json_w_t *w = x->w;
    size_t i = 0;

    sl_json_w_open(w, false);
    for (int p = sl_json_first(d, content); p >= 0; p = sl_json_next(d, content, p), i++) {
        int text = sl_json_get(d, p, "text");
        sl_str_t type;

        if (!rs_str(x, d, sl_json_get(d, p, "type"), &type)) {
            return rs_bad(x, "missing_required_parameter", rs_at(x),
                          "Missing required parameter: '%s.content[%zu].type'.", rs_at(x), i);
        }
        if ((rs_is(type, "input_text") || rs_is(type, "output_text") || rs_is(type, "text"))
            && sl_json_type(d, text) == SL_JSON_STRING) {
            sl_json_w_open(w, true);
            rs_put_str(x, "type", sl_str_lit("text"));
            rs_copy(x, "text", d, text);
            sl_json_w_close(w);
        } else if (rs_is(type, "input_image")) {
            int url = sl_json_get(d, p, "image_url");
            int detail = sl_json_get(d, p, "detail");

            if (sl_json_type(d, url) != SL_JSON_STRING) {
                rs_native_only(x,
                               "%s.content[%zu]: an input_image by file_id refers to OpenAI's "
                               "file storage",
                               rs_at(x), i);
                continue;
            }
            sl_json_w_open(w, true);
            rs_put_str(x, "type", sl_str_lit("image_url"));
            rs_key(x, "image_url");
            sl_json_w_open(w, true);
            rs_copy(x, "url", d, url);
            if (sl_json_type(d, detail) == SL_JSON_STRING) {
                rs_copy(x, "detail", d, detail);
            }
            sl_json_w_close(w);
            sl_json_w_close(w);
        } else if (rs_is(type, "input_file")) {
            int data = sl_json_get(d, p, "file_data");
            int name = sl_json_get(d, p, "filename");

            if (sl_json_type(d, data) != SL_JSON_STRING) {
                rs_native_only(x,
                               "%s.content[%zu]: an input_file by file_id or file_url is "
                               "fetched by OpenAI",
                               rs_at(x), i);
                continue;
            }
            sl_json_w_open(w, true);
            rs_put_str(x, "type", sl_str_lit("file"));
            rs_key(x, "file");
            sl_json_w_open(w, true);
            rs_copy(x, "file_data", d, data);
            if (sl_json_type(d, name) == SL_JSON_STRING) {
                rs_copy(x, "filename", d, name);
            }
            sl_json_w_close(w);
            sl_json_w_close(w);
        } else if (rs_is(type, "input_audio")
                   && sl_json_type(d, sl_json_get(d, p, "input_audio")) == SL_JSON_OBJECT) {
            sl_json_w_open(w, true);
            rs_put_str(x, "type", sl_str_lit("input_audio"));
            rs_copy(x, "input_audio", d, sl_json_get(d, p, "input_audio"));
            sl_json_w_close(w);
        } else {
            return rs_bad(x, "invalid_value", rs_at(x),
                          "Invalid value for '%s.content[%zu].type': `%.*s` is not a content "
                          "part of a user message.",
                          rs_at(x), i, (int) type.len, type.p);
        }
    }
    sl_json_w_close(w);
    return 0;
}


/*
 * The text of content (a string, or text parts; of x->d) into b, parts
 * joined with nothing between them. outputs: an assistant's (output_text,
 * refusal).
 */
static int
rs_join_text(rs_ctx_t *x, int content, bool outputs, sl_buf_t *b)
{
    const sl_json_t *d = x->d;
    sl_str_t s;
    size_t i = 0;

    if (rs_str(x, d, content, &s)) {
        sl_buf_append(b, s.p, s.len);
        return 0;
    }
    for (int p = sl_json_first(d, content); p >= 0; p = sl_json_next(d, content, p), i++) {
        sl_str_t type;
        bool typed = rs_str(x, d, sl_json_get(d, p, "type"), &type);

        if (typed && rs_str(x, d, sl_json_get(d, p, "text"), &s)
            && (rs_is(type, "output_text") || rs_is(type, "input_text") || rs_is(type, "text"))) {
            sl_buf_append(b, s.p, s.len);
        } else if (outputs && typed && rs_is(type, "refusal")) {
            continue; /* the model's refusal: nothing a provider takes back */
        } else {
            return rs_bad(x, "invalid_value", rs_at(x),
                          "Invalid value for '%s.content[%zu]': expected text parts.", rs_at(x), i);
        }
    }
    return 0;
}


/* A new assistant message (the reasoning before it attached), left open. */
static void
rs_assistant(rs_ctx_t *x)
{
    rs_open_message(x, "assistant");
    rs_flush_reasoning(x);
    x->open = true;
}


/* function_call -> a tool call of the assistant message it continues (or a new one). */
static int
rs_function_call(rs_ctx_t *x, int item)
{
    const sl_json_t *d = x->d;
    int id = sl_json_get(d, item, "call_id");
    int args = sl_json_get(d, item, "arguments");
    sl_str_t name, space;
    bool has_space;

    if (sl_json_type(d, id) != SL_JSON_STRING
        || !rs_str(x, d, sl_json_get(d, item, "name"), &name)) {
        return rs_bad(x, "missing_required_parameter", rs_at(x),
                      "Missing required parameter: '%s' needs a call_id and a name.", rs_at(x));
    }
    has_space = rs_str(x, d, sl_json_get(d, item, "namespace"), &space);
    name = rs_safe_name(x, has_space ? &space : NULL, name);
    if (x->open) {
        rs_flush_reasoning(x);
    } else {
        rs_assistant(x);
        rs_key(x, "content");
        sl_json_w_scalar(x->w, SL_JSON_NULL, sl_str_lit("null"));
    }
    if (!x->calls) {
        rs_key(x, "tool_calls");
        sl_json_w_open(x->w, false);
        x->calls = true;
    }
    sl_json_w_open(x->w, true);
    rs_copy(x, "id", d, id);
    rs_put_str(x, "type", sl_str_lit("function"));
    rs_key(x, "function");
    sl_json_w_open(x->w, true);
    rs_put_str(x, "name", name);
    if (sl_json_type(d, args) == SL_JSON_STRING) {
        rs_copy(x, "arguments", d, args);
    } else {
        rs_put_str(x, "arguments", sl_str_lit("{}"));
    }
    sl_json_w_close(x->w);
    sl_json_w_close(x->w);
    return 0;
}


/* function_call_output -> a tool message (text parts joined; other parts only natively). */
static int
rs_call_output(rs_ctx_t *x, int item)
{
    const sl_json_t *d = x->d;
    int id = sl_json_get(d, item, "call_id");
    int output = sl_json_get(d, item, "output");
    sl_buf_t text = SL_BUF_INIT;
    size_t i = 0;

    if (sl_json_type(d, id) != SL_JSON_STRING) {
        return rs_bad(x, "missing_required_parameter", rs_at(x),
                      "Missing required parameter: '%s.call_id'.", rs_at(x));
    }
    x->npending = 0;
    if (sl_json_type(d, output) == SL_JSON_STRING) {
        rs_open_message(x, "tool");
        rs_copy(x, "tool_call_id", d, id);
        rs_copy(x, "content", d, output);
        sl_json_w_close(x->w);
        return 0;
    }
    if (sl_json_type(d, output) != SL_JSON_ARRAY) {
        return rs_bad(x, "invalid_type", rs_at(x),
                      "Invalid type for '%s.output': expected a string or an array.", rs_at(x));
    }
    for (int p = sl_json_first(d, output); p >= 0; p = sl_json_next(d, output, p), i++) {
        sl_str_t t;

        if (rs_str(x, d, sl_json_get(d, p, "text"), &t)) {
            sl_buf_append(&text, t.p, t.len);
        } else {
            rs_native_only(x,
                           "%s.output[%zu]: a tool output that is not text is taken by OpenAI's "
                           "Responses API only",
                           rs_at(x), i);
        }
    }
    rs_open_message(x, "tool");
    rs_copy(x, "tool_call_id", d, id);
    rs_put_str(x, "content", (sl_str_t){ text.p != NULL ? text.p : "", text.len });
    sl_json_w_close(x->w);
    sl_buf_free(&text);
    return 0;
}


/*
 * A reasoning item waits for the assistant message it belongs to. Only
 * what a provider signed is kept (see the file comment).
 */
static void
rs_reasoning_item(rs_ctx_t *x, int item)
{
    const sl_json_t *d = x->d;
    int summary = sl_json_get(d, item, "summary");
    int from = sl_json_size(d, summary) > 0 ? summary : sl_json_get(d, item, "content");
    sl_buf_t text = SL_BUF_INIT;
    rs_pending_t *e;
    const char *kind;
    sl_str_t enc;

    if (!rs_str(x, d, sl_json_get(d, item, "encrypted_content"), &enc) || enc.len < 7
        || memcmp(enc.p, "sl1.", 4) != 0 || enc.p[5] != '.') {
        return; /* OpenAI's own, or unsigned: no other provider can read it */
    }
    switch (enc.p[4]) {
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
    if (sl_json_type(d, from) == SL_JSON_ARRAY) {
        for (int p = sl_json_first(d, from); p >= 0; p = sl_json_next(d, from, p)) {
            sl_str_t t;

            if (rs_str(x, d, sl_json_get(d, p, "text"), &t)) {
                sl_buf_append(&text, t.p, t.len);
            }
        }
    }
    if (x->npending == x->pending_cap) {
        x->pending = sl_pgrow(x->call->pool, x->pending, x->npending, &x->pending_cap, 4,
                              sizeof(*x->pending));
    }
    e = &x->pending[x->npending++];
    e->kind = kind;
    e->text =
        (sl_str_t){ text.len > 0 ? sl_pstrndup(x->call->pool, text.p, text.len) : "", text.len };
    e->signature = (sl_str_t){ enc.p + 6, enc.len - 6 };
    sl_buf_free(&text);
}


/* The waiting reasoning entries belong to the message just opened (the last one). */
static void
rs_flush_reasoning(rs_ctx_t *x)
{
    sl_json_w_t *w;
    char num[24];

    if (x->npending == 0) {
        return;
    }
    if (x->reasoning == NULL) {
        x->reasoning_doc = sl_json_create(x->call->pool);
        x->reasoning = sl_json_w_create(x->call->pool, x->reasoning_doc);
        sl_json_w_open(x->reasoning, false);
    }
    w = x->reasoning;
    snprintf(num, sizeof(num), "%zu", x->nmsgs - 1);
    for (size_t i = 0; i < x->npending; i++) {
        rs_pending_t *e = &x->pending[i];

        sl_json_w_open(w, true);
        sl_json_w_key(w, sl_str_lit("kind"));
        sl_json_w_str(w, (sl_str_t){ e->kind, strlen(e->kind) });
        sl_json_w_key(w, sl_str_lit("text"));
        sl_json_w_str(w, e->text);
        sl_json_w_key(w, sl_str_lit("signature"));
        sl_json_w_str(w, e->signature);
        sl_json_w_key(w, sl_str_lit("message"));
        sl_json_w_scalar(w, SL_JSON_NUMBER, (sl_str_t){ num, strlen(num) });
        sl_json_w_close(w);
    }
    x->npending = 0;
}


/*
 * "resp_" + 24 hex digits: 12 of the time in milliseconds, then 12 random
 * ones (the request id's when there is no randomness). Ids that grow with
 * time keep the store's inserts at the right edge of its B-tree, so a
 * batch of responses touches a few pages instead of one page each.
 */
static sl_str_t
rs_new_id(sl_call_t *call)
{
    static const char hexd[] = "0123456789abcdef";
    unsigned char r[6];
    struct timespec ts;
    unsigned long long ms;
    char *id;
    const char *rid;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = ((unsigned long long) ts.tv_sec * 1000 + (unsigned long long) ts.tv_nsec / 1000000)
         & 0xffffffffffffULL;
    if (sl_crypto_random(r, sizeof(r)) == 0) {
        id = sl_palloc(call->pool, 5 + 24 + 1);
        memcpy(id, "resp_", 5);
        for (int i = 0; i < 12; i++) {
            id[5 + i] = hexd[(ms >> (44 - 4 * i)) & 0xf];
        }
        sl_crypto_hex(r, sizeof(r), id + 17);
        id[29] = '\0';
        return (sl_str_t){ id, 29 };
    }
    rid = call->request_id != NULL ? call->request_id : "0";
    id = sl_psprintf(call->pool, "resp_%s", rid);
    return (sl_str_t){ id, strlen(id) };
}


/* The model the client named: the chat body holds the client's own value (call->model). */
static const char *
responses_model(const sl_call_t *call)
{
    sl_str_t s;

    if (sl_json_string(call->doc, call->model, call->pool, &s) < 0) {
        return NULL;
    }
    return sl_pstrndup(call->pool, s.p, s.len);
}
