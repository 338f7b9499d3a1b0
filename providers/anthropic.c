/*
 * Anthropic Messages API: an OpenAI chat completion call becomes a POST
 * {base_path}/v1/messages, and the answer, whole or streamed, comes back as
 * OpenAI's chat.completion or chat.completion.chunk events. Requests and
 * whole answers are rebuilt through jansson DOMs; stream events are read
 * with the token reader and the chunks written by hand, splicing the
 * provider's own JSON strings (checked first), so a text delta costs no DOM.
 *
 * Where the two APIs differ:
 *  - max_tokens is required by Anthropic: max_completion_tokens, else
 *    max_tokens, else ANTHROPIC_MAX_TOKENS (4096).
 *  - temperature: OpenAI's range is 0..2, Anthropic's 0..1; values above 1
 *    are clamped to 1, not scaled (scaling would change every request).
 *  - system and developer messages, wherever they stand, become the
 *    top-level system: one string joined with blank lines, or an array of
 *    text blocks (cache_control kept) when any of them came as parts.
 *  - response_format json_schema or json_object is emulated with an
 *    instruction appended to system; a forced tool would change the shape
 *    of the answer the client parses.
 *  - roles must alternate: tool results become tool_result blocks of a user
 *    turn, and consecutive turns of one role are merged into one.
 *  - n > 1 cannot be served (one choice per answer) and is refused;
 *    logprobs, penalties, seed, logit_bias and other OpenAI-only parameters
 *    are dropped.
 *  - an `error` event in a stream goes to the client as OpenAI's in-band
 *    error event; the stream is then not marked done, so the core records a
 *    failure and sends no [DONE].
 *
 * The same file serves the other direction (POST /v1/messages in, any
 * provider out) through the client_* hooks: an Anthropic request becomes an
 * OpenAI chat request, and the OpenAI-shaped answer, chunks and errors the
 * pipeline produces become Anthropic's message, events and error body.
 * There, top_k and thinking are dropped, stop_reason stop_sequence cannot
 * be told from end_turn (OpenAI does not say which), tool results become
 * tool messages, and server tools and document blocks are refused.
 */
#include "providers/provider.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errno.h"

#define ANTHROPIC_VERSION "2023-06-01"
/* Anthropic requires max_tokens; OpenAI's default is "no limit" */
#define ANTHROPIC_MAX_TOKENS 4096

/* Per-stream state, in the request pool (st->priv). */
typedef struct anthropic_stream {
    sl_json_t *doc;       /* one reader for the whole stream */
    const char *head;     /* chunk prefix: {"id":…,"object":…,"created":…,"model":… */
    uint64_t input;       /* usage as last reported, field by field */
    uint64_t cache_read;  /* cache_read_input_tokens */
    uint64_t cache_write; /* cache_creation_input_tokens */
    uint64_t output;
    unsigned tools;      /* tool_use blocks so far: the next one's OpenAI index */
    int64_t block;       /* Anthropic index of the open tool_use block, -1 for none */
    unsigned block_tool; /* its OpenAI index */
    bool started;        /* the role chunk went out */
    bool failed;         /* an error event went out: the rest is ignored */
} anthropic_stream_t;

/* Per-stream state of the inbound side (/v1/messages), in the request pool. */
typedef struct anthropic_client_stream {
    sl_json_t *doc;
    const char *stop_reason; /* Anthropic's, once a finish_reason came */
    int64_t block;           /* index of the open content block, -1 for none */
    int64_t nblocks;         /* blocks opened so far */
    int64_t tool;            /* OpenAI index of the tool call in the open block */
    bool block_text;         /* the open block is a text block */
    bool started;            /* message_start went out */
    bool stopped;            /* message_stop went out */
    bool failed;             /* an error event went out: the rest is ignored */
} anthropic_client_stream_t;

static int anthropic_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static bool anthropic_fast_body(sl_call_t *call, sl_buf_t *b);
static bool anthropic_fast_messages(sl_call_t *call, int msgs, sl_buf_t *b, sl_buf_t *system);
static bool anthropic_fast_max_tokens(const sl_json_t *doc, int mct, int mt, int64_t *out);
static int anthropic_build_body(sl_call_t *call, json_t *in, json_t *body);
static int anthropic_messages(json_t *in, json_t *body, json_t *system, bool *system_parts);
static int anthropic_message_blocks(json_t *m, const char *role, json_t *blocks);
static int anthropic_system(json_t *m, json_t *system, bool *system_parts);
static int anthropic_content(json_t *content, bool user, json_t *blocks);
static int anthropic_text_block(json_t *part, json_t *blocks);
static int anthropic_image(json_t *part, json_t *blocks);
static int anthropic_tool_calls(json_t *calls, json_t *blocks);
static int anthropic_tool_result(json_t *m, json_t *blocks);
static int anthropic_response_format(json_t *in, json_t *system);
static void anthropic_set_system(json_t *body, json_t *system, bool parts);
static int anthropic_max_tokens(json_t *in, json_t *body);
static int anthropic_sampling(json_t *in, json_t *body);
static int anthropic_tools(json_t *in, json_t *body);
static int anthropic_tool_choice(json_t *in, json_t *body);
static sl_http_header_t *anthropic_headers(sl_call_t *call, size_t *n);
static const char *anthropic_dump(sl_pool_t *pool, json_t *v, size_t *len);
static int anthropic_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                                    sl_reply_t *out);
static bool anthropic_fast_completion(sl_call_t *call, const sl_buf_t *body, sl_reply_t *out);
static bool anthropic_fast_text(const sl_json_t *doc, int content, sl_pool_t *pool, sl_buf_t *text,
                                bool *has_text);
static bool anthropic_loadable(const sl_json_t *doc, int v);
static uint64_t anthropic_uint(const sl_json_t *doc, int v);
static const char *anthropic_finish_reason_str(const sl_json_t *doc, int v, sl_pool_t *pool);
static json_t *anthropic_completion(json_t *in, sl_call_t *call, sl_usage_t *u);
static json_t *anthropic_usage_json(const sl_usage_t *u);
static const char *anthropic_dom_string(json_t *v);
static const char *anthropic_finish_reason(const char *stop_reason);
static int anthropic_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                                  sl_chunks_t *out);
static anthropic_stream_t *anthropic_stream_state(sl_stream_t *st);
static void anthropic_on_message_start(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_on_block_start(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_on_block_delta(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_on_message_delta(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_on_message_stop(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_on_error(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_read_usage(sl_stream_t *st, anthropic_stream_t *s, int usage);
static void anthropic_begin(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_head(sl_stream_t *st, anthropic_stream_t *s, sl_str_t id, sl_str_t model);
static void anthropic_chunk_open(anthropic_stream_t *s, sl_buf_t *b);
static void anthropic_chunk_close(sl_buf_t *b, const char *finish);
static sl_str_t anthropic_name(const sl_json_t *doc, int v);
static bool anthropic_raw_string(const sl_json_t *doc, int v, sl_str_t *raw, size_t *len);
static int64_t anthropic_int(const sl_json_t *doc, int v, int64_t dflt);
static const char *anthropic_quote(sl_pool_t *pool, const char *s);
static int anthropic_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                               sl_error_t *out);
static const char *anthropic_error_type(const char *anthropic_type);
static int anthropic_client_request(sl_pool_t *pool, sl_str_t body, sl_str_t *out,
                                    const char **why);
static int anthropic_client_system(json_t *system, json_t *msgs, const char **why);
static json_t *anthropic_client_text(json_t *b);
static int anthropic_client_messages(json_t *messages, json_t *msgs, const char **why);
static int anthropic_client_user(json_t *content, json_t *msgs, const char **why);
static int anthropic_client_image(json_t *b, json_t *parts, const char **why);
static int anthropic_client_tool_result(json_t *b, json_t *msgs, const char **why);
static int anthropic_client_assistant(json_t *content, json_t *msgs, const char **why);
static int anthropic_client_options(json_t *in, json_t *req, const char **why);
static int anthropic_client_tools(json_t *in, json_t *req, const char **why);
static int anthropic_client_response(sl_pool_t *pool, sl_str_t body, sl_str_t *out);
static json_t *anthropic_client_usage(json_t *usage);
static const char *anthropic_stop_reason(const char *finish);
static int anthropic_client_stream_event(sl_stream_t *st, const sl_sse_event_t *ev,
                                         sl_chunks_t *out);
static void anthropic_client_tool_delta(sl_stream_t *st, anthropic_client_stream_t *s, int k,
                                        sl_buf_t *b);
static void anthropic_client_start(sl_stream_t *st, anthropic_client_stream_t *s, sl_buf_t *b);
static void anthropic_client_usage_raw(sl_stream_t *st, sl_buf_t *b, bool start);
static void anthropic_client_close_block(anthropic_client_stream_t *s, sl_buf_t *b);
static void anthropic_client_stream_error(sl_stream_t *st, anthropic_client_stream_t *s,
                                          sl_buf_t *b);
static bool anthropic_client_type_known(const char *type);
static int anthropic_client_error(int status, const sl_error_t *err, sl_pool_t *pool,
                                  sl_str_t *out);

const sl_provider_ops_t sl_provider_anthropic = {
    .kind = "anthropic",
    .default_base_url = "https://api.anthropic.com",
    .conf_parse = NULL,
    .build_request = anthropic_build_request,
    .parse_response = anthropic_parse_response,
    .stream_event = anthropic_stream_event,
    .map_error = anthropic_map_error,
    .client_request = anthropic_client_request,
    .client_response = anthropic_client_response,
    .client_stream_event = anthropic_client_stream_event,
    .client_error = anthropic_client_error,
};


/*
 * Returns 0; SL_EDENIED for an endpoint other than chat; SL_EPARSE for a
 * call that cannot be said in Anthropic's terms (n > 1, tool arguments that
 * are not a JSON object, an image that is neither a data: nor an http(s)
 * URL, a content part or role Anthropic has no counterpart for).
 */
static int
anthropic_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out)
{
    const sl_provider_conf_t *p = call->target->provider;
    json_t *in;
    json_t *body;
    int rc;

    (void) conf;
    if (call->endpoint != SL_ENDPOINT_CHAT) {
        return SL_EDENIED;
    }
    if (call->body == NULL) {
        sl_buf_t b = SL_BUF_INIT;

        if (anthropic_fast_body(call, &b)) {
            out->body = sl_pstrndup(call->pool, b.p, b.len);
            out->body_len = b.len;
            sl_buf_free(&b);
            out->method = "POST";
            out->path = sl_psprintf(call->pool, "%s/v1/messages", p->base_path);
            out->headers = anthropic_headers(call, &out->nheaders);
            return 0;
        }
        sl_buf_free(&b);
    }
    in = sl_call_json(call);
    if (!json_is_object(in)) {
        return SL_EPARSE;
    }
    body = json_object();
    rc = anthropic_build_body(call, in, body);
    if (rc < 0) {
        goto out_free_body;
    }
    out->body = anthropic_dump(call->pool, body, &out->body_len);
    if (out->body == NULL) {
        rc = SL_EPARSE;
        goto out_free_body;
    }
    out->method = "POST";
    out->path = sl_psprintf(call->pool, "%s/v1/messages", p->base_path);
    out->headers = anthropic_headers(call, &out->nheaders);

out_free_body:
    json_decref(body);
    return rc;
}


/*
 * The common call written straight from the token reader, no DOM: only
 * model, messages (system, developer, user and assistant messages with
 * string content), max_tokens or max_completion_tokens, stream and a null
 * stream_options. Writes what anthropic_build_body() would, member for
 * member, into b. False for anything else, and for anything jansson might
 * refuse (a string that is not valid, an integer that does not fit): the
 * DOM path then decides, so the answer is the same either way.
 */
static bool
anthropic_fast_body(sl_call_t *call, sl_buf_t *b)
{
    static const char *const keys[] = { "model",  "messages",       "max_tokens",
                                        "stream", "stream_options", "max_completion_tokens" };
    const sl_json_t *doc = call->doc;
    sl_buf_t system = SL_BUF_INIT;
    int v[6];
    size_t found = 0;
    int64_t max_tokens;
    size_t len;
    sl_json_type_e st;

    if (sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT
        || sl_json_lookup(doc, SL_JSON_ROOT, keys, 6, v) < 0) {
        return false;
    }
    for (size_t i = 0; i < 6; i++) {
        found += v[i] >= 0;
    }
    st = sl_json_type(doc, v[3]);
    if (found != sl_json_size(doc, SL_JSON_ROOT) || sl_json_string_len(doc, v[0], &len) < 0
        || sl_json_type(doc, v[1]) != SL_JSON_ARRAY
        || (v[4] >= 0 && sl_json_type(doc, v[4]) != SL_JSON_NULL)
        || (v[3] >= 0 && st != SL_JSON_TRUE && st != SL_JSON_FALSE && st != SL_JSON_NULL)
        || !anthropic_fast_max_tokens(doc, v[5], v[2], &max_tokens)) {
        return false;
    }

    sl_buf_puts(b, "{\"model\":");
    sl_json_quote(b, (sl_str_t){ call->target->model, strlen(call->target->model) });
    sl_buf_printf(b, ",\"max_tokens\":%lld,\"messages\":[", (long long) max_tokens);
    if (!anthropic_fast_messages(call, v[1], b, &system)) {
        sl_buf_free(&system);
        return false;
    }
    sl_buf_append(b, "]", 1);
    if (system.len > 0) {
        sl_buf_puts(b, ",\"system\":");
        sl_json_quote(b, (sl_str_t){ system.p + 2, system.len - 2 });
    }
    sl_buf_free(&system);
    if (call->stream) {
        sl_buf_puts(b, ",\"stream\":true");
    }
    sl_buf_append(b, "}", 1);
    return true;
}


/* As anthropic_max_tokens() decides, for integers that fit; false to let it decide. */
static bool
anthropic_fast_max_tokens(const sl_json_t *doc, int mct, int mt, int64_t *out)
{
    int v =
        sl_json_type(doc, mct) == SL_JSON_NONE || sl_json_type(doc, mct) == SL_JSON_NULL ? mt : mct;

    if (sl_json_type(doc, v) == SL_JSON_NONE || sl_json_type(doc, v) == SL_JSON_NULL) {
        *out = ANTHROPIC_MAX_TOKENS;
        return true;
    }
    return sl_json_int(doc, v, out) == 0 && *out >= 1;
}


/*
 * messages -> the turns of anthropic_messages() into b, system texts into
 * system, each behind "\n\n" (the caller drops the first). False for a
 * message the fast path does not take.
 */
static bool
anthropic_fast_messages(sl_call_t *call, int msgs, sl_buf_t *b, sl_buf_t *system)
{
    static const char *const keys[] = { "role", "content" };
    const sl_json_t *doc = call->doc;
    const char *turn_role = NULL;

    for (int m = sl_json_first(doc, msgs); m >= 0; m = sl_json_next(doc, msgs, m)) {
        int v[2];
        sl_str_t role;
        sl_str_t text;
        const char *as;

        if (sl_json_type(doc, m) != SL_JSON_OBJECT || sl_json_lookup(doc, m, keys, 2, v) < 0
            || v[0] < 0 || v[1] < 0 || sl_json_size(doc, m) != 2
            || sl_json_string(doc, v[0], call->pool, &role) < 0
            || sl_json_string(doc, v[1], call->pool, &text) < 0) {
            return false;
        }
        if (sl_str_eq(role, "system") || sl_str_eq(role, "developer")) {
            if (text.len > 0) {
                sl_buf_append(system, "\n\n", 2);
                sl_buf_append(system, text.p, text.len);
            }
            continue;
        }
        if (sl_str_eq(role, "user")) {
            as = "user";
        } else if (sl_str_eq(role, "assistant")) {
            as = "assistant";
        } else {
            return false; /* tool, function, unknown: the DOM path */
        }
        if (text.len == 0) {
            continue; /* Anthropic refuses empty turns */
        }
        if (turn_role == as) {
            sl_buf_append(b, ",", 1);
        } else {
            if (turn_role != NULL) {
                sl_buf_append(b, "]},", 3);
            }
            sl_buf_printf(b, "{\"role\":\"%s\",\"content\":[", as);
            turn_role = as;
        }
        sl_buf_puts(b, "{\"type\":\"text\",\"text\":");
        sl_json_quote(b, text);
        sl_buf_append(b, "}", 1);
    }
    if (turn_role != NULL) {
        sl_buf_append(b, "]}", 2);
    }
    return true;
}


static int
anthropic_build_body(sl_call_t *call, json_t *in, json_t *body)
{
    json_t *system = json_array();
    json_t *v;
    bool parts = false;
    int rc;

    json_object_set_new(body, "model", json_string(call->target->model));
    v = json_object_get(in, "n");
    if (v != NULL && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) != 1)) {
        rc = SL_EPARSE; /* Anthropic answers with one choice only */
        goto out_free_system;
    }
    rc = anthropic_max_tokens(in, body);
    if (rc < 0) {
        goto out_free_system;
    }
    rc = anthropic_messages(in, body, system, &parts);
    if (rc < 0) {
        goto out_free_system;
    }
    rc = anthropic_response_format(in, system);
    if (rc < 0) {
        goto out_free_system;
    }
    anthropic_set_system(body, system, parts);
    rc = anthropic_sampling(in, body);
    if (rc < 0) {
        goto out_free_system;
    }
    rc = anthropic_tools(in, body);
    if (rc < 0) {
        goto out_free_system;
    }
    v = json_object_get(in, "user");
    if (json_is_string(v)) {
        json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", v));
    }
    if (call->stream) {
        json_object_set_new(body, "stream", json_true());
    }

out_free_system:
    json_decref(system);
    return rc;
}


/*
 * OpenAI's messages -> Anthropic's alternating turns. System messages go to
 * system; user and tool messages make user turns, assistant messages
 * assistant turns, and a message of the same turn role as the one before
 * joins its turn (so tool results and a following user message share one).
 */
static int
anthropic_messages(json_t *in, json_t *body, json_t *system, bool *system_parts)
{
    json_t *msgs = json_object_get(in, "messages");
    json_t *out = json_array();
    json_t *turn = NULL; /* content of the last turn, owned by out */
    const char *turn_role = NULL;
    json_t *m;
    size_t i;
    int rc = 0;

    json_object_set_new(body, "messages", out);
    if (!json_is_array(msgs)) {
        return SL_EPARSE;
    }
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *as;
        json_t *blocks;

        if (role == NULL) {
            return SL_EPARSE;
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            rc = anthropic_system(m, system, system_parts);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        as = strcmp(role, "assistant") == 0 ? "assistant" : "user";
        blocks = json_array();
        rc = anthropic_message_blocks(m, role, blocks);
        if (rc < 0) {
            json_decref(blocks);
            return rc;
        }
        if (json_array_size(blocks) == 0) {
            /* Anthropic refuses empty turns; an empty message says nothing */
        } else if (turn_role != NULL && strcmp(turn_role, as) == 0) {
            json_array_extend(turn, blocks);
        } else {
            json_array_append_new(out, json_pack("{s:s,s:O}", "role", as, "content", blocks));
            turn = blocks;
            turn_role = as;
        }
        json_decref(blocks);
    }
    return 0;
}


static int
anthropic_message_blocks(json_t *m, const char *role, json_t *blocks)
{
    json_t *content = json_object_get(m, "content");
    int rc;

    if (strcmp(role, "user") == 0) {
        return anthropic_content(content, true, blocks);
    }
    if (strcmp(role, "tool") == 0) {
        return anthropic_tool_result(m, blocks);
    }
    if (strcmp(role, "assistant") != 0) {
        return SL_EPARSE; /* "function" (deprecated) and unknown roles */
    }
    rc = anthropic_content(content, false, blocks);
    if (rc < 0) {
        return rc;
    }
    return anthropic_tool_calls(json_object_get(m, "tool_calls"), blocks);
}


static int
anthropic_system(json_t *m, json_t *system, bool *system_parts)
{
    json_t *content = json_object_get(m, "content");
    json_t *part;
    size_t i;
    int rc;

    if (json_is_string(content)) {
        if (json_string_length(content) > 0) {
            json_array_append_new(system, json_pack("{s:s,s:O}", "type", "text", "text", content));
        }
        return 0;
    }
    if (!json_is_array(content)) {
        return SL_EPARSE;
    }
    *system_parts = true;
    json_array_foreach(content, i, part)
    {
        if (!json_is_string(json_object_get(part, "type"))
            || strcmp(json_string_value(json_object_get(part, "type")), "text") != 0) {
            return SL_EPARSE;
        }
        rc = anthropic_text_block(part, system);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}


/* User or assistant content: a string, null, or an array of parts. */
static int
anthropic_content(json_t *content, bool user, json_t *blocks)
{
    json_t *part;
    size_t i;
    int rc;

    if (content == NULL || json_is_null(content)) {
        return 0;
    }
    if (json_is_string(content)) {
        if (json_string_length(content) > 0) {
            json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", content));
        }
        return 0;
    }
    if (!json_is_array(content)) {
        return SL_EPARSE;
    }
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));

        if (type == NULL) {
            return SL_EPARSE;
        }
        if (strcmp(type, "text") == 0) {
            rc = anthropic_text_block(part, blocks);
        } else if (user && strcmp(type, "image_url") == 0) {
            rc = anthropic_image(part, blocks);
        } else if (!user && strcmp(type, "refusal") == 0) {
            rc = 0; /* the model's own refusal: nothing Anthropic can take back */
        } else {
            rc = SL_EPARSE;
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}


/* {"type":"text","text":…} part -> text block; empty text is left out (Anthropic refuses it). */
static int
anthropic_text_block(json_t *part, json_t *blocks)
{
    json_t *text = json_object_get(part, "text");
    json_t *cc = json_object_get(part, "cache_control");
    json_t *block;

    if (!json_is_string(text)) {
        return SL_EPARSE;
    }
    if (json_string_length(text) == 0) {
        return 0;
    }
    block = json_pack("{s:s,s:O}", "type", "text", "text", text);
    if (json_is_object(cc)) {
        json_object_set(block, "cache_control", cc);
    }
    json_array_append_new(blocks, block);
    return 0;
}


/* image_url part: a base64 data: URL or an http(s) URL. */
static int
anthropic_image(json_t *part, json_t *blocks)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url;
    const char *comma;
    const char *semi;
    json_t *source;

    url =
        json_is_string(iu) ? json_string_value(iu) : json_string_value(json_object_get(iu, "url"));
    if (url == NULL) {
        return SL_EPARSE;
    }
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        source = json_pack("{s:s,s:s}", "type", "url", "url", url);
    } else if (strncmp(url, "data:", 5) == 0) {
        /* data:<media type>[;param=value...];base64,<data> */
        comma = strchr(url, ',');
        if (comma == NULL || comma - url < 5 + 7 || strncmp(comma - 7, ";base64", 7) != 0) {
            return SL_EPARSE;
        }
        semi = strchr(url + 5, ';');
        if (semi == url + 5) {
            return SL_EPARSE;
        }
        source = json_pack("{s:s,s:s%,s:s}", "type", "base64", "media_type", url + 5,
                           (size_t) (semi - (url + 5)), "data", comma + 1);
    } else {
        return SL_EPARSE;
    }
    if (source == NULL) {
        return SL_EPARSE;
    }
    json_array_append_new(blocks, json_pack("{s:s,s:o}", "type", "image", "source", source));
    return 0;
}


/* Assistant tool_calls -> tool_use blocks; arguments must hold a JSON object. */
static int
anthropic_tool_calls(json_t *calls, json_t *blocks)
{
    json_t *c;
    size_t i;

    if (calls == NULL || json_is_null(calls)) {
        return 0;
    }
    if (!json_is_array(calls)) {
        return SL_EPARSE;
    }
    json_array_foreach(calls, i, c)
    {
        json_t *id = json_object_get(c, "id");
        json_t *fn = json_object_get(c, "function");
        json_t *name = json_object_get(fn, "name");
        json_t *args = json_object_get(fn, "arguments");
        json_t *input;

        if (!json_is_string(id) || !json_is_string(name)) {
            return SL_EPARSE;
        }
        if (args == NULL || json_is_null(args)
            || (json_is_string(args)
                && strspn(json_string_value(args), " \t\r\n") == json_string_length(args))) {
            input = json_object();
        } else if (json_is_string(args)) {
            input = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
        } else {
            input = NULL;
        }
        if (!json_is_object(input)) {
            json_decref(input);
            return SL_EPARSE;
        }
        json_array_append_new(blocks, json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id", id,
                                                "name", name, "input", input));
    }
    return 0;
}


/* A tool message -> one tool_result block (its content a string or text blocks). */
static int
anthropic_tool_result(json_t *m, json_t *blocks)
{
    json_t *id = json_object_get(m, "tool_call_id");
    json_t *content = json_object_get(m, "content");
    json_t *block;
    json_t *parts;
    int rc;

    if (!json_is_string(id)) {
        return SL_EPARSE;
    }
    block = json_pack("{s:s,s:O}", "type", "tool_result", "tool_use_id", id);
    if (json_is_string(content)) {
        if (json_string_length(content) > 0) {
            json_object_set(block, "content", content);
        }
    } else if (json_is_array(content)) {
        parts = json_array();
        rc = anthropic_content(content, false, parts);
        if (rc < 0) {
            json_decref(parts);
            json_decref(block);
            return rc;
        }
        json_object_set_new(block, "content", parts);
    } else if (content != NULL && !json_is_null(content)) {
        json_decref(block);
        return SL_EPARSE;
    }
    json_array_append_new(blocks, block);
    return 0;
}


/* response_format: an instruction at the end of system (see the file comment). */
static int
anthropic_response_format(json_t *in, json_t *system)
{
    json_t *rf = json_object_get(in, "response_format");
    const char *type = json_string_value(json_object_get(rf, "type"));
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    char *dump;
    json_t *text;

    if (rf == NULL || json_is_null(rf) || (type != NULL && strcmp(type, "text") == 0)) {
        return 0;
    }
    if (type == NULL || (strcmp(type, "json_object") != 0 && strcmp(type, "json_schema") != 0)) {
        return SL_EPARSE;
    }
    if (strcmp(type, "json_schema") != 0 || !json_is_object(schema)) {
        json_array_append_new(
            system, json_pack("{s:s,s:s}", "type", "text", "text",
                              "Respond with a single valid JSON object and nothing else: no "
                              "prose before or after it and no code fences."));
        return 0;
    }
    dump = json_dumps(schema, JSON_COMPACT | JSON_SORT_KEYS);
    if (dump == NULL) {
        return SL_EPARSE;
    }
    text = json_sprintf("Respond with a single JSON value that conforms to this JSON schema, and "
                        "nothing else: no prose before or after it and no code fences.\n%s",
                        dump);
    free(dump);
    if (text == NULL) {
        return SL_EPARSE;
    }
    json_array_append_new(system, json_pack("{s:s,s:o}", "type", "text", "text", text));
    return 0;
}


/* The collected system text blocks -> body.system: a string unless parts were given. */
static void
anthropic_set_system(json_t *body, json_t *system, bool parts)
{
    json_t *block;
    sl_buf_t text = SL_BUF_INIT;
    size_t i;

    if (json_array_size(system) == 0) {
        return;
    }
    if (parts) {
        json_object_set(body, "system", system);
        return;
    }
    json_array_foreach(system, i, block)
    {
        json_t *t = json_object_get(block, "text");

        if (i > 0) {
            sl_buf_append(&text, "\n\n", 2);
        }
        sl_buf_append(&text, json_string_value(t), json_string_length(t));
    }
    json_object_set_new(body, "system", json_stringn(text.p, text.len));
    sl_buf_free(&text);
}


static int
anthropic_max_tokens(json_t *in, json_t *body)
{
    json_t *v = json_object_get(in, "max_completion_tokens");

    if (v == NULL || json_is_null(v)) {
        v = json_object_get(in, "max_tokens");
    }
    if (v == NULL || json_is_null(v)) {
        json_object_set_new(body, "max_tokens", json_integer(ANTHROPIC_MAX_TOKENS));
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        return SL_EPARSE;
    }
    json_object_set(body, "max_tokens", v);
    return 0;
}


/* stop, temperature (clamped to Anthropic's 0..1), top_p. */
static int
anthropic_sampling(json_t *in, json_t *body)
{
    json_t *stop = json_object_get(in, "stop");
    json_t *v;
    size_t i;

    if (json_is_string(stop)) {
        json_object_set_new(body, "stop_sequences", json_pack("[O]", stop));
    } else if (json_is_array(stop)) {
        json_array_foreach(stop, i, v)
        {
            if (!json_is_string(v)) {
                return SL_EPARSE;
            }
        }
        if (json_array_size(stop) > 0) {
            json_object_set(body, "stop_sequences", stop);
        }
    } else if (stop != NULL && !json_is_null(stop)) {
        return SL_EPARSE;
    }

    v = json_object_get(in, "temperature");
    if (json_is_number(v)) {
        double t = json_number_value(v);

        json_object_set_new(body, "temperature", json_real(t > 1.0 ? 1.0 : t));
    } else if (v != NULL && !json_is_null(v)) {
        return SL_EPARSE;
    }
    v = json_object_get(in, "top_p");
    if (json_is_number(v)) {
        json_object_set(body, "top_p", v);
    } else if (v != NULL && !json_is_null(v)) {
        return SL_EPARSE;
    }
    return 0;
}


/* Function tools -> Anthropic tools; then tool_choice, which needs tools. */
static int
anthropic_tools(json_t *in, json_t *body)
{
    json_t *tools = json_object_get(in, "tools");
    json_t *out;
    json_t *t;
    size_t i;

    if (tools == NULL || json_is_null(tools)) {
        return 0;
    }
    if (!json_is_array(tools)) {
        return SL_EPARSE;
    }
    if (json_array_size(tools) == 0) {
        return 0;
    }
    out = json_array();
    json_object_set_new(body, "tools", out);
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function");
        json_t *name = json_object_get(fn, "name");
        json_t *desc = json_object_get(fn, "description");
        json_t *params = json_object_get(fn, "parameters");
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *tool;

        if (type == NULL || strcmp(type, "function") != 0 || !json_is_string(name)) {
            return SL_EPARSE;
        }
        tool = json_pack("{s:O}", "name", name);
        if (json_is_string(desc)) {
            json_object_set(tool, "description", desc);
        }
        if (json_is_object(params)) {
            json_object_set(tool, "input_schema", params);
        } else {
            /* OpenAI allows a function without parameters; Anthropic needs a schema */
            json_object_set_new(tool, "input_schema",
                                json_pack("{s:s,s:{}}", "type", "object", "properties"));
        }
        json_array_append_new(out, tool);
    }
    return anthropic_tool_choice(in, body);
}


static int
anthropic_tool_choice(json_t *in, json_t *body)
{
    json_t *tc = json_object_get(in, "tool_choice");
    json_t *ptc = json_object_get(in, "parallel_tool_calls");
    const char *s = json_string_value(tc);
    json_t *out;

    if (tc == NULL || json_is_null(tc) || (s != NULL && strcmp(s, "auto") == 0)) {
        out = json_pack("{s:s}", "type", "auto");
    } else if (s != NULL && strcmp(s, "none") == 0) {
        out = json_pack("{s:s}", "type", "none");
    } else if (s != NULL && strcmp(s, "required") == 0) {
        out = json_pack("{s:s}", "type", "any");
    } else if (json_is_object(tc)
               && json_is_string(json_object_get(json_object_get(tc, "function"), "name"))) {
        out = json_pack("{s:s,s:O}", "type", "tool", "name",
                        json_object_get(json_object_get(tc, "function"), "name"));
    } else {
        return SL_EPARSE;
    }
    if (json_is_false(ptc)
        && strcmp(json_string_value(json_object_get(out, "type")), "none") != 0) {
        json_object_set_new(out, "disable_parallel_tool_use", json_true());
    }
    if ((tc == NULL || json_is_null(tc)) && json_object_size(out) == 1) {
        /* nothing the default would not do: leave it to the provider */
        json_decref(out);
        return 0;
    }
    json_object_set_new(body, "tool_choice", out);
    return 0;
}


/* Client headers (minus anthropic-version: the adapter speaks one version), then ours. */
static sl_http_header_t *
anthropic_headers(sl_call_t *call, size_t *n)
{
    const sl_provider_conf_t *p = call->target->provider;
    sl_http_header_t *h = sl_palloc(call->pool, sizeof(*h) * (call->nheaders + 3));
    size_t k = 0;

    for (size_t i = 0; i < call->nheaders; i++) {
        if (!sl_str_caseeq(call->headers[i].name, "anthropic-version")) {
            h[k++] = call->headers[i];
        }
    }
    h[k].name = sl_str_lit("content-type");
    h[k++].value = sl_str_lit("application/json");
    h[k].name = sl_str_lit("anthropic-version");
    h[k++].value = sl_str_lit(ANTHROPIC_VERSION);
    if (p->api_key.value != NULL) {
        h[k].name = sl_str_lit("x-api-key");
        h[k].value = (sl_str_t){ p->api_key.value, strlen(p->api_key.value) };
        k++;
    }
    *n = k;
    return h;
}


/* v as compact JSON in pool, NUL-terminated; NULL when jansson cannot encode it. */
static const char *
anthropic_dump(sl_pool_t *pool, json_t *v, size_t *len)
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


static int
anthropic_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_reply_t *out)
{
    json_t *in;
    json_t *res = NULL;
    int rc = SL_EUPSTREAM;

    (void) conf;
    if (anthropic_fast_completion(call, body, out)) {
        return 0;
    }
    in = json_loadb(body->p, body->len, 0, NULL);
    if (!json_is_object(in)) {
        goto out_free;
    }
    res = anthropic_completion(in, call, &out->usage);
    if (res == NULL) {
        goto out_free;
    }
    out->body = anthropic_dump(call->pool, res, &out->body_len);
    if (out->body == NULL) {
        goto out_free;
    }
    if (json_is_string(json_object_get(in, "model"))) {
        out->served_model = sl_pstrdup(call->pool, json_string_value(json_object_get(in, "model")));
    }
    rc = 0;

out_free:
    json_decref(res);
    json_decref(in);
    return rc;
}


/*
 * A text-only Anthropic message -> the chat.completion anthropic_completion()
 * would write, member for member, read with the token reader. False, with
 * out untouched, for a tool_use block and for any document jansson might
 * judge differently (see anthropic_loadable()): the DOM path then answers.
 */
static bool
anthropic_fast_completion(sl_call_t *call, const sl_buf_t *body, sl_reply_t *out)
{
    static const char *const keys[] = { "id", "model", "content", "usage", "stop_reason" };
    sl_json_t *doc = sl_json_create(call->pool);
    sl_buf_t text = SL_BUF_INIT;
    sl_buf_t b = SL_BUF_INIT;
    sl_usage_t u = out->usage;
    bool has_text = false;
    sl_str_t model = sl_str_null;
    int v[5];

    if (sl_json_parse(doc, body->p != NULL ? body->p : "", body->len, NULL) < 0
        || sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT
        || !anthropic_loadable(doc, SL_JSON_ROOT)) {
        return false;
    }
    /* repeated keys: jansson keeps the last, as sl_json_get() does */
    v[0] = sl_json_get(doc, SL_JSON_ROOT, keys[0]);
    v[1] = sl_json_get(doc, SL_JSON_ROOT, keys[1]);
    v[2] = sl_json_get(doc, SL_JSON_ROOT, keys[2]);
    v[3] = sl_json_get(doc, SL_JSON_ROOT, keys[3]);
    v[4] = sl_json_get(doc, SL_JSON_ROOT, keys[4]);
    if (!anthropic_fast_text(doc, v[2], call->pool, &text, &has_text)) {
        sl_buf_free(&text);
        return false;
    }
    if (sl_json_type(doc, v[3]) == SL_JSON_OBJECT) {
        uint64_t read = anthropic_uint(doc, sl_json_get(doc, v[3], "cache_read_input_tokens"));
        uint64_t write = anthropic_uint(doc, sl_json_get(doc, v[3], "cache_creation_input_tokens"));

        u.known = true;
        u.prompt_tokens =
            anthropic_uint(doc, sl_json_get(doc, v[3], "input_tokens")) + read + write;
        u.completion_tokens = anthropic_uint(doc, sl_json_get(doc, v[3], "output_tokens"));
        u.cached_tokens = read;
        u.cache_write_tokens = write;
    }

    sl_buf_puts(&b, "{\"id\":");
    if (sl_json_type(doc, v[0]) == SL_JSON_STRING) {
        sl_str_t raw = sl_json_raw(doc, v[0]);

        sl_buf_append(&b, raw.p, raw.len);
    } else {
        sl_buf_puts(&b, "\"\"");
    }
    sl_buf_printf(
        &b, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":", (long long) time(NULL));
    if (sl_json_type(doc, v[1]) == SL_JSON_STRING) {
        sl_str_t raw = sl_json_raw(doc, v[1]);

        sl_buf_append(&b, raw.p, raw.len);
        sl_json_string(doc, v[1], call->pool, &model);
    } else {
        sl_json_quote(&b, (sl_str_t){ call->target->model, strlen(call->target->model) });
    }
    sl_buf_puts(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (has_text) {
        sl_json_quote(&b, (sl_str_t){ text.p != NULL ? text.p : "", text.len });
    } else {
        sl_buf_puts(&b, "null");
    }
    sl_buf_free(&text);
    sl_buf_printf(&b, "},\"logprobs\":null,\"finish_reason\":\"%s\"}]",
                  anthropic_finish_reason_str(doc, v[4], call->pool));
    if (u.known) {
        sl_buf_printf(&b,
                      ",\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                      "\"total_tokens\":%lld,\"prompt_tokens_details\":{\"cached_tokens\":%lld}}",
                      (long long) u.prompt_tokens, (long long) u.completion_tokens,
                      (long long) (u.prompt_tokens + u.completion_tokens),
                      (long long) u.cached_tokens);
    }
    sl_buf_append(&b, "}", 1);

    out->usage = u;
    out->body = sl_pstrndup(call->pool, b.p, b.len);
    out->body_len = b.len;
    sl_buf_free(&b);
    if (model.p != NULL) {
        out->served_model = sl_pstrndup(call->pool, model.p, model.len);
    }
    return true;
}


/*
 * The text blocks of content, joined, into text (has_text when there was
 * one), as anthropic_completion() reads them. False for a tool_use block.
 */
static bool
anthropic_fast_text(const sl_json_t *doc, int content, sl_pool_t *pool, sl_buf_t *text,
                    bool *has_text)
{
    if (sl_json_type(doc, content) != SL_JSON_ARRAY) {
        return true;
    }
    for (int blk = sl_json_first(doc, content); blk >= 0; blk = sl_json_next(doc, content, blk)) {
        int t = sl_json_get(doc, blk, "text");
        sl_str_t type;
        sl_str_t s;

        if (sl_json_string(doc, sl_json_get(doc, blk, "type"), pool, &type) < 0) {
            continue;
        }
        if (sl_str_eq(type, "text") && sl_json_type(doc, t) == SL_JSON_STRING) {
            sl_json_string(doc, t, pool, &s);
            sl_buf_append(text, s.p, s.len);
            *has_text = true;
        } else if (sl_str_eq(type, "tool_use")) {
            return false;
        }
    }
    return true;
}


/*
 * True when jansson's json_loadb() would take every value under v the way
 * the token reader does: every string (keys too) valid, every number an
 * integer that fits int64_t (reals are left to jansson's own conversion).
 */
static bool
anthropic_loadable(const sl_json_t *doc, int v)
{
    size_t len;
    int64_t n;

    switch (sl_json_type(doc, v)) {
    case SL_JSON_OBJECT:
        for (int k = sl_json_first(doc, v); k >= 0; k = sl_json_next(doc, v, k)) {
            if (sl_json_string_len(doc, k, &len) < 0
                || !anthropic_loadable(doc, sl_json_key_value(doc, k))) {
                return false;
            }
        }
        return true;
    case SL_JSON_ARRAY:
        for (int e = sl_json_first(doc, v); e >= 0; e = sl_json_next(doc, v, e)) {
            if (!anthropic_loadable(doc, e)) {
                return false;
            }
        }
        return true;
    case SL_JSON_STRING:
        return sl_json_string_len(doc, v, &len) == 0;
    case SL_JSON_NUMBER:
        return sl_json_int(doc, v, &n) == 0;
    default:
        return true;
    }
}


/* As jansson's json_integer_value(): the integer, 0 for anything else. */
static uint64_t
anthropic_uint(const sl_json_t *doc, int v)
{
    int64_t n;

    return sl_json_int(doc, v, &n) == 0 ? (uint64_t) n : 0;
}


/* anthropic_finish_reason() of string v (NULL when v is not a string). */
static const char *
anthropic_finish_reason_str(const sl_json_t *doc, int v, sl_pool_t *pool)
{
    sl_str_t s;

    if (sl_json_string(doc, v, pool, &s) < 0) {
        return anthropic_finish_reason(NULL);
    }
    return anthropic_finish_reason(sl_pstrndup(pool, s.p, s.len));
}


/* An Anthropic message -> OpenAI chat.completion (new reference), and its usage into u. */
static json_t *
anthropic_completion(json_t *in, sl_call_t *call, sl_usage_t *u)
{
    json_t *content = json_object_get(in, "content");
    json_t *usage = json_object_get(in, "usage");
    json_t *id = json_object_get(in, "id");
    json_t *model = json_object_get(in, "model");
    json_t *calls = json_array();
    json_t *message;
    json_t *res;
    json_t *b;
    sl_buf_t text = SL_BUF_INIT;
    bool has_text = false;
    size_t i;

    json_array_foreach(content, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        json_t *t = json_object_get(b, "text");

        if (type == NULL) {
            continue;
        }
        if (strcmp(type, "text") == 0 && json_is_string(t)) {
            sl_buf_append(&text, json_string_value(t), json_string_length(t));
            has_text = true;
        } else if (strcmp(type, "tool_use") == 0) {
            json_t *input = json_object_get(b, "input");
            char *args = input != NULL ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

            json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id",
                                                   anthropic_dom_string(json_object_get(b, "id")),
                                                   "type", "function", "function", "name",
                                                   anthropic_dom_string(json_object_get(b, "name")),
                                                   "arguments", args != NULL ? args : "{}"));
            free(args);
        }
    }

    message = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(message, "content",
                        has_text ? json_stringn(text.p != NULL ? text.p : "", text.len)
                                 : json_null());
    if (json_array_size(calls) > 0) {
        json_object_set(message, "tool_calls", calls);
    }
    sl_buf_free(&text);
    json_decref(calls);

    if (json_is_object(usage)) {
        uint64_t read =
            (uint64_t) json_integer_value(json_object_get(usage, "cache_read_input_tokens"));
        uint64_t write =
            (uint64_t) json_integer_value(json_object_get(usage, "cache_creation_input_tokens"));

        u->known = true;
        u->prompt_tokens =
            (uint64_t) json_integer_value(json_object_get(usage, "input_tokens")) + read + write;
        u->completion_tokens =
            (uint64_t) json_integer_value(json_object_get(usage, "output_tokens"));
        u->cached_tokens = read;
        u->cache_write_tokens = write;
    }

    res = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}]}", "id", anthropic_dom_string(id),
                    "object", "chat.completion", "created", (json_int_t) time(NULL), "model",
                    json_is_string(model) ? json_string_value(model) : call->target->model,
                    "choices", "index", 0, "message", message, "logprobs", "finish_reason",
                    anthropic_finish_reason(json_string_value(json_object_get(in, "stop_reason"))));
    if (res != NULL && u->known) {
        json_object_set_new(res, "usage", anthropic_usage_json(u));
    }
    return res;
}


static json_t *
anthropic_usage_json(const sl_usage_t *u)
{
    return json_pack("{s:I,s:I,s:I,s:{s:I}}", "prompt_tokens", (json_int_t) u->prompt_tokens,
                     "completion_tokens", (json_int_t) u->completion_tokens, "total_tokens",
                     (json_int_t) (u->prompt_tokens + u->completion_tokens),
                     "prompt_tokens_details", "cached_tokens", (json_int_t) u->cached_tokens);
}


/* A DOM string's value, "" for anything else. */
static const char *
anthropic_dom_string(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}


static const char *
anthropic_finish_reason(const char *stop_reason)
{
    if (stop_reason == NULL) {
        return "stop";
    }
    if (strcmp(stop_reason, "max_tokens") == 0
        || strcmp(stop_reason, "model_context_window_exceeded") == 0) {
        return "length";
    }
    if (strcmp(stop_reason, "tool_use") == 0) {
        return "tool_calls";
    }
    if (strcmp(stop_reason, "refusal") == 0) {
        return "content_filter";
    }
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}


/*
 * One Anthropic event -> zero or more OpenAI chunks. The event's own "type"
 * member names it (the SSE event: line says the same). Events that are not
 * JSON objects, and parts that are not what they claim, are skipped.
 */
static int
anthropic_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                       sl_chunks_t *out)
{
    anthropic_stream_t *s = anthropic_stream_state(st);
    sl_str_t type;

    (void) conf;
    if (s->failed || st->done) {
        return 0;
    }
    if (sl_json_parse(s->doc, ev->data.p, ev->data.len, NULL) < 0
        || sl_json_type(s->doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return 0;
    }
    type = anthropic_name(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "type"));
    if (type.len == 0) {
        type = ev->event;
    }
    if (sl_str_eq(type, "message_start")) {
        anthropic_on_message_start(st, s, out->out);
    } else if (sl_str_eq(type, "content_block_start")) {
        anthropic_on_block_start(st, s, out->out);
    } else if (sl_str_eq(type, "content_block_delta")) {
        anthropic_on_block_delta(st, s, out->out);
    } else if (sl_str_eq(type, "content_block_stop")) {
        if (anthropic_int(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "index"), -2) == s->block) {
            s->block = -1;
        }
    } else if (sl_str_eq(type, "message_delta")) {
        anthropic_on_message_delta(st, s, out->out);
    } else if (sl_str_eq(type, "message_stop")) {
        anthropic_on_message_stop(st, s, out->out);
    } else if (sl_str_eq(type, "error")) {
        anthropic_on_error(st, s, out->out);
    }
    /* ping and event types added later: nothing for the client */
    return 0;
}


static anthropic_stream_t *
anthropic_stream_state(sl_stream_t *st)
{
    anthropic_stream_t *s = st->priv;

    if (s == NULL) {
        s = sl_pcalloc(st->call->pool, sizeof(*s));
        s->doc = sl_json_create(st->call->pool);
        s->block = -1;
        st->priv = s;
    }
    return s;
}


static void
anthropic_on_message_start(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b)
{
    int msg = sl_json_get(s->doc, SL_JSON_ROOT, "message");
    int model = sl_json_get(s->doc, msg, "model");
    sl_str_t id_raw = sl_str_null;
    sl_str_t model_raw = sl_str_null;
    sl_str_t name;
    size_t len;

    if (!anthropic_raw_string(s->doc, sl_json_get(s->doc, msg, "id"), &id_raw, &len)) {
        id_raw = sl_str_null;
    }
    if (!anthropic_raw_string(s->doc, model, &model_raw, &len)) {
        model_raw = sl_str_null;
    } else if (st->served_model == NULL
               && sl_json_string(s->doc, model, st->call->pool, &name) == 0) {
        st->served_model = sl_pstrndup(st->call->pool, name.p, name.len);
    }
    anthropic_head(st, s, id_raw, model_raw);
    anthropic_read_usage(st, s, sl_json_get(s->doc, msg, "usage"));
    anthropic_begin(st, s, b);
}


static void
anthropic_on_block_start(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b)
{
    int cb = sl_json_get(s->doc, SL_JSON_ROOT, "content_block");
    sl_str_t type;
    sl_str_t raw;
    sl_str_t id;
    sl_str_t name;
    size_t len;

    type = anthropic_name(s->doc, sl_json_get(s->doc, cb, "type"));
    if (sl_str_eq(type, "text")) {
        if (anthropic_raw_string(s->doc, sl_json_get(s->doc, cb, "text"), &raw, &len) && len > 0) {
            anthropic_begin(st, s, b);
            anthropic_chunk_open(s, b);
            sl_buf_puts(b, "{\"content\":");
            sl_buf_append(b, raw.p, raw.len);
            sl_buf_puts(b, "}");
            anthropic_chunk_close(b, "null");
            st->content_bytes += len;
        }
        return;
    }
    if (!sl_str_eq(type, "tool_use")
        || !anthropic_raw_string(s->doc, sl_json_get(s->doc, cb, "id"), &id, &len)
        || !anthropic_raw_string(s->doc, sl_json_get(s->doc, cb, "name"), &name, &len)) {
        return; /* thinking, server tools: nothing OpenAI's shape can carry */
    }
    s->block = anthropic_int(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "index"), -1);
    s->block_tool = s->tools++;
    anthropic_begin(st, s, b);
    anthropic_chunk_open(s, b);
    sl_buf_printf(b, "{\"tool_calls\":[{\"index\":%u,\"id\":", s->block_tool);
    sl_buf_append(b, id.p, id.len);
    sl_buf_puts(b, ",\"type\":\"function\",\"function\":{\"name\":");
    sl_buf_append(b, name.p, name.len);
    sl_buf_puts(b, ",\"arguments\":\"\"}}]}");
    anthropic_chunk_close(b, "null");
}


static void
anthropic_on_block_delta(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b)
{
    int d = sl_json_get(s->doc, SL_JSON_ROOT, "delta");
    sl_str_t type;
    sl_str_t raw;
    size_t len;

    type = anthropic_name(s->doc, sl_json_get(s->doc, d, "type"));
    if (sl_str_eq(type, "text_delta")) {
        if (!anthropic_raw_string(s->doc, sl_json_get(s->doc, d, "text"), &raw, &len) || len == 0) {
            return;
        }
        anthropic_begin(st, s, b);
        anthropic_chunk_open(s, b);
        sl_buf_puts(b, "{\"content\":");
        sl_buf_append(b, raw.p, raw.len);
        sl_buf_puts(b, "}");
        anthropic_chunk_close(b, "null");
        st->content_bytes += len;
        return;
    }
    if (!sl_str_eq(type, "input_json_delta") || s->block < 0
        || anthropic_int(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "index"), -1) != s->block
        || !anthropic_raw_string(s->doc, sl_json_get(s->doc, d, "partial_json"), &raw, &len)
        || len == 0) {
        return; /* thinking, signatures, citations, or a delta for no open tool block */
    }
    anthropic_begin(st, s, b);
    anthropic_chunk_open(s, b);
    sl_buf_printf(b, "{\"tool_calls\":[{\"index\":%u,\"function\":{\"arguments\":", s->block_tool);
    sl_buf_append(b, raw.p, raw.len);
    sl_buf_puts(b, "}}]}");
    anthropic_chunk_close(b, "null");
    st->content_bytes += len;
}


static void
anthropic_on_message_delta(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b)
{
    sl_str_t r = anthropic_name(s->doc, sl_json_path(s->doc, SL_JSON_ROOT, "delta.stop_reason"));
    char reason[64];

    anthropic_read_usage(st, s, sl_json_get(s->doc, SL_JSON_ROOT, "usage"));
    if (r.p == NULL) {
        return; /* no stop reason (yet): usage only */
    }
    if (r.len >= sizeof(reason)) {
        r.len = 0; /* no stop reason is that long: "stop" */
    }
    memcpy(reason, r.p, r.len);
    reason[r.len] = '\0';
    anthropic_begin(st, s, b);
    anthropic_chunk_open(s, b);
    sl_buf_printf(b, "{},\"logprobs\":null,\"finish_reason\":\"%s\"}]}\n\n",
                  anthropic_finish_reason(reason));
}


static void
anthropic_on_message_stop(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b)
{
    if (st->client_wants_usage && st->usage.known) {
        anthropic_head(st, s, sl_str_null, sl_str_null);
        sl_buf_puts(b, "data: ");
        sl_buf_puts(b, s->head);
        sl_buf_printf(
            b,
            ",\"choices\":[],\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,"
            "\"total_tokens\":%llu,\"prompt_tokens_details\":{\"cached_tokens\":%llu}}}"
            "\n\n",
            (unsigned long long) st->usage.prompt_tokens,
            (unsigned long long) st->usage.completion_tokens,
            (unsigned long long) (st->usage.prompt_tokens + st->usage.completion_tokens),
            (unsigned long long) st->usage.cached_tokens);
    }
    st->done = true;
}


/*
 * {"type":"error","error":{"type":…,"message":…}} -> OpenAI's in-band error
 * event, Anthropic's type as its code. st->failed tells the core: it
 * records a failure and adds neither its own error nor [DONE].
 */
static void
anthropic_on_error(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b)
{
    int err = sl_json_get(s->doc, SL_JSON_ROOT, "error");
    json_t *ev = json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message",
                           "the provider reported an error in the stream", "type", "api_error",
                           "param", "code");
    json_t *e = json_object_get(ev, "error");
    sl_str_t v;
    char *p;

    s->failed = true;
    st->failed = true;
    if (sl_json_string(s->doc, sl_json_get(s->doc, err, "type"), st->call->pool, &v) == 0) {
        const char *t = sl_pstrndup(st->call->pool, v.p, v.len);

        json_object_set_new(e, "type", json_string(anthropic_error_type(t)));
        json_object_set_new(e, "code", json_stringn(v.p, v.len));
    }
    if (sl_json_string(s->doc, sl_json_get(s->doc, err, "message"), st->call->pool, &v) == 0) {
        json_object_set_new(e, "message", json_stringn(v.p, v.len));
    }
    p = json_dumps(ev, JSON_COMPACT);
    if (p != NULL) {
        sl_buf_puts(b, "data: ");
        sl_buf_puts(b, p);
        sl_buf_puts(b, "\n\n");
        free(p);
    }
    json_decref(ev);
}


/*
 * Reads the usage members present in usage (message_start has them all,
 * message_delta the cumulative output and sometimes the rest) into st.
 */
static void
anthropic_read_usage(sl_stream_t *st, anthropic_stream_t *s, int usage)
{
    if (sl_json_type(s->doc, usage) != SL_JSON_OBJECT) {
        return;
    }
    s->input = (uint64_t) anthropic_int(s->doc, sl_json_get(s->doc, usage, "input_tokens"),
                                        (int64_t) s->input);
    s->cache_read = (uint64_t) anthropic_int(
        s->doc, sl_json_get(s->doc, usage, "cache_read_input_tokens"), (int64_t) s->cache_read);
    s->cache_write =
        (uint64_t) anthropic_int(s->doc, sl_json_get(s->doc, usage, "cache_creation_input_tokens"),
                                 (int64_t) s->cache_write);
    s->output = (uint64_t) anthropic_int(s->doc, sl_json_get(s->doc, usage, "output_tokens"),
                                         (int64_t) s->output);
    st->usage.known = true;
    st->usage.prompt_tokens = s->input + s->cache_read + s->cache_write;
    st->usage.completion_tokens = s->output;
    st->usage.cached_tokens = s->cache_read;
    st->usage.cache_write_tokens = s->cache_write;
}


/* Before the first chunk with content: the role chunk (and a head if message_start was missing). */
static void
anthropic_begin(sl_stream_t *st, anthropic_stream_t *s, sl_buf_t *b)
{
    if (s->started) {
        return;
    }
    s->started = true;
    anthropic_head(st, s, sl_str_null, sl_str_null);
    anthropic_chunk_open(s, b);
    sl_buf_puts(b, "{\"role\":\"assistant\",\"content\":\"\"}");
    anthropic_chunk_close(b, "null");
}


/* Builds the chunk prefix once; id and model are raw JSON strings, or null for the fallbacks. */
static void
anthropic_head(sl_stream_t *st, anthropic_stream_t *s, sl_str_t id, sl_str_t model)
{
    sl_pool_t *pool = st->call->pool;
    const char *fallback;

    if (s->head != NULL) {
        return;
    }
    if (id.p == NULL) {
        id = sl_str_lit("\"\"");
    }
    if (model.p == NULL) {
        fallback = anthropic_quote(pool, st->call->target != NULL ? st->call->target->model : "");
        model = (sl_str_t){ fallback, strlen(fallback) };
    }
    s->head = sl_psprintf(pool,
                          "{\"id\":%.*s,\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                          "\"model\":%.*s",
                          (int) id.len, id.p, (long long) time(NULL), (int) model.len, model.p);
}


static void
anthropic_chunk_open(anthropic_stream_t *s, sl_buf_t *b)
{
    sl_buf_puts(b, "data: ");
    sl_buf_puts(b, s->head);
    sl_buf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":");
}


/* finish: a JSON value, "null" or a quoted reason. */
static void
anthropic_chunk_close(sl_buf_t *b, const char *finish)
{
    sl_buf_puts(b, ",\"logprobs\":null,\"finish_reason\":");
    sl_buf_puts(b, finish);
    sl_buf_puts(b, "}]}\n\n");
}


/*
 * True when v is a string jansson would accept (no control characters,
 * valid UTF-8, no \u0000): then raw is its JSON text, quotes included, fit
 * to splice into a chunk, and len its decoded length.
 */
static bool
anthropic_raw_string(const sl_json_t *doc, int v, sl_str_t *raw, size_t *len)
{
    if (sl_json_string_len(doc, v, len) < 0) {
        return false;
    }
    *raw = sl_json_raw(doc, v);
    return true;
}


/*
 * The bytes between a string's quotes, undecoded: enough to compare names
 * Anthropic writes plainly ("message_start", "end_turn") without a copy.
 * p NULL when v is not a string.
 */
static sl_str_t
anthropic_name(const sl_json_t *doc, int v)
{
    sl_str_t raw;

    if (sl_json_type(doc, v) != SL_JSON_STRING) {
        return sl_str_null;
    }
    raw = sl_json_raw(doc, v);
    return (sl_str_t){ raw.p + 1, raw.len - 2 };
}


/* Integer value v, or dflt when v is not an integer that fits. */
static int64_t
anthropic_int(const sl_json_t *doc, int v, int64_t dflt)
{
    int64_t n;

    return sl_json_int(doc, v, &n) == 0 && n >= 0 ? n : dflt;
}


/* s as a JSON string, in pool; "\"\"" when s is not UTF-8. */
static const char *
anthropic_quote(sl_pool_t *pool, const char *s)
{
    json_t *v = json_string(s);
    size_t len = 0;
    const char *q = v != NULL ? anthropic_dump(pool, v, &len) : NULL;

    json_decref(v);
    return q != NULL ? q : "\"\"";
}


/*
 * {"type":"error","error":{"type":…,"message":…}} and the status -> OpenAI
 * error. The provider's message is kept except for authentication failures
 * (it may quote the gateway's key). Retry-After is read by the core.
 */
static int
anthropic_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                    sl_error_t *out)
{
    json_t *root = NULL;
    json_t *err = NULL;
    const char *message = NULL;
    const char *atype = NULL;

    (void) conf;
    if (body->len > 0) {
        root = json_loadb(body->p, body->len, 0, NULL);
        err = json_object_get(root, "error");
    }
    if (json_is_string(json_object_get(err, "message"))) {
        message = sl_pstrdup(pool, json_string_value(json_object_get(err, "message")));
    }
    if (json_is_string(json_object_get(err, "type"))) {
        atype = sl_pstrdup(pool, json_string_value(json_object_get(err, "type")));
    }
    json_decref(root);

    out->status = status;
    out->code = NULL;
    out->param = NULL;
    out->retryable = false;
    out->retry_after = 0;
    out->message =
        message != NULL ? message : sl_psprintf(pool, "upstream returned HTTP %d", status);
    if (status == 401 || status == 403) {
        out->status = 502;
        out->type = "api_error";
        out->code = "upstream_auth_failed";
        out->message =
            sl_psprintf(pool, "the provider rejected the gateway's credentials (HTTP %d)", status);
        return 0;
    }
    if (status == 408) {
        out->status = 504;
        out->retryable = true;
    } else if (status == 429) {
        out->retryable = true;
        out->code = "rate_limit_exceeded";
    } else if (status == 503 || status == 529) {
        out->status = 503; /* overloaded: another target may have room */
        out->retryable = true;
    } else if (status >= 500) {
        out->status = 502;
        out->retryable = true;
    } else if (status < 400) {
        out->status = 502;
    }
    out->type = out->status >= 500 ? "api_error"
                : atype != NULL    ? anthropic_error_type(atype)
                : status == 429    ? "rate_limit_error"
                                   : "invalid_request_error";
    return 0;
}


/* Anthropic error type -> the OpenAI type a client expects. */
static const char *
anthropic_error_type(const char *anthropic_type)
{
    if (strcmp(anthropic_type, "rate_limit_error") == 0) {
        return "rate_limit_error";
    }
    if (strcmp(anthropic_type, "invalid_request_error") == 0
        || strcmp(anthropic_type, "not_found_error") == 0
        || strcmp(anthropic_type, "request_too_large") == 0) {
        return "invalid_request_error";
    }
    return "api_error"; /* api_error, overloaded_error and types added later */
}


/*
 * Inbound: POST /v1/messages. The client's Anthropic request becomes an
 * OpenAI chat request the rest of the pipeline already knows; answers come
 * back the other way. Tool results, which Anthropic puts in a user turn,
 * become tool messages placed before the rest of that turn (OpenAI wants
 * them right after the assistant's tool calls).
 */
static int
anthropic_client_request(sl_pool_t *pool, sl_str_t body, sl_str_t *out, const char **why)
{
    json_t *in = sl_json_dom(pool, body);
    json_t *req;
    json_t *msgs;
    json_t *v;
    size_t len = 0;
    int rc;

    *why = NULL;
    if (!json_is_object(in)) {
        return SL_EPARSE;
    }
    req = json_object();
    msgs = json_array();
    v = json_object_get(in, "model");
    if (v != NULL) {
        json_object_set(req, "model", v);
    }
    json_object_set_new(req, "messages", msgs);
    rc = anthropic_client_system(json_object_get(in, "system"), msgs, why);
    if (rc < 0) {
        goto out_free_req;
    }
    rc = anthropic_client_messages(json_object_get(in, "messages"), msgs, why);
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
    rc = anthropic_client_options(in, req, why);
    if (rc < 0) {
        goto out_free_req;
    }
    rc = anthropic_client_tools(in, req, why);
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
        json_object_set_new(req, "stream", json_true());
        json_object_set_new(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    out->p = anthropic_dump(pool, req, &len);
    out->len = len;
    if (out->p == NULL) {
        *why = "the request cannot be encoded";
        rc = SL_EPARSE;
    }

out_free_req:
    json_decref(req);
    return rc;
}


/* system: a string, or text blocks (cache_control kept, as the outbound side reads it). */
static int
anthropic_client_system(json_t *system, json_t *msgs, const char **why)
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
        json_array_append_new(parts, anthropic_client_text(b));
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
anthropic_client_text(json_t *b)
{
    json_t *part = json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(b, "text"));
    json_t *cc = json_object_get(b, "cache_control");

    if (json_is_object(cc)) {
        json_object_set(part, "cache_control", cc);
    }
    return part;
}


static int
anthropic_client_messages(json_t *messages, json_t *msgs, const char **why)
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
        rc = strcmp(role, "user") == 0 ? anthropic_client_user(content, msgs, why)
                                       : anthropic_client_assistant(content, msgs, why);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}


/* A user turn's blocks: tool results first (as tool messages), then the rest as one message. */
static int
anthropic_client_user(json_t *content, json_t *msgs, const char **why)
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
            json_array_append_new(parts, anthropic_client_text(b));
        } else if (strcmp(type, "image") == 0) {
            rc = anthropic_client_image(b, parts, why);
        } else if (strcmp(type, "tool_result") == 0) {
            rc = anthropic_client_tool_result(b, msgs, why);
        } else {
            *why = "messages: this content block type is not supported by the gateway";
            rc = SL_EPARSE;
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
anthropic_client_image(json_t *b, json_t *parts, const char **why)
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
anthropic_client_tool_result(json_t *b, json_t *msgs, const char **why)
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

            if (type == NULL || strcmp(type, "text") != 0 || !json_is_string(t)) {
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
anthropic_client_assistant(json_t *content, json_t *msgs, const char **why)
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
        } else {
            *why = "messages: this content block type is not supported by the gateway";
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
anthropic_client_options(json_t *in, json_t *req, const char **why)
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
anthropic_client_tools(json_t *in, json_t *req, const char **why)
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

            if ((tt != NULL && strcmp(tt, "custom") != 0) || !json_is_string(name)) {
                *why = "tools: only custom tools with a name are supported by the gateway";
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


/* chat.completion -> Anthropic message. */
static int
anthropic_client_response(sl_pool_t *pool, sl_str_t body, sl_str_t *out)
{
    json_t *in = sl_json_dom(pool, body);
    json_t *choice = json_array_get(json_object_get(in, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_array();
    json_t *v;
    json_t *c;
    json_t *root;
    const char *id = json_string_value(json_object_get(in, "id"));
    const char *model = json_string_value(json_object_get(in, "model"));
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    size_t i;
    size_t len = 0;

    if (!json_is_object(in) || !json_is_object(msg)) {
        json_decref(content);
        return SL_EPARSE;
    }
    v = json_object_get(msg, "content");
    if (json_is_string(v) && json_string_length(v) > 0) {
        json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", v));
    }
    v = json_object_get(msg, "refusal");
    if (json_is_string(v) && json_string_length(v) > 0) {
        json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", v));
        finish = "content_filter";
    }
    json_array_foreach(json_object_get(msg, "tool_calls"), i, c)
    {
        json_t *fn = json_object_get(c, "function");
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        json_t *input = args != NULL ? json_loads(args, 0, NULL) : NULL;

        if (!json_is_object(input)) {
            json_decref(input);
            input = json_object(); /* Anthropic's input is always an object */
        }
        json_array_append_new(content,
                              json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                        json_is_string(json_object_get(c, "id"))
                                            ? json_string_value(json_object_get(c, "id"))
                                            : "",
                                        "name",
                                        json_is_string(json_object_get(fn, "name"))
                                            ? json_string_value(json_object_get(fn, "name"))
                                            : "",
                                        "input", input));
    }
    root = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", id != NULL ? id : "", "type",
                     "message", "role", "assistant", "model", model != NULL ? model : "", "content",
                     content, "stop_reason", anthropic_stop_reason(finish), "stop_sequence",
                     "usage", anthropic_client_usage(json_object_get(in, "usage")));
    out->p = root != NULL ? anthropic_dump(pool, root, &len) : NULL;
    out->len = len;
    json_decref(root);
    return out->p != NULL ? 0 : SL_EPARSE;
}


/* OpenAI usage -> Anthropic's (input_tokens excludes the cached part). New reference. */
static json_t *
anthropic_client_usage(json_t *usage)
{
    json_int_t prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
    json_int_t cached = json_integer_value(
        json_object_get(json_object_get(usage, "prompt_tokens_details"), "cached_tokens"));
    json_t *u;

    if (cached > prompt) {
        cached = prompt;
    }
    u = json_pack("{s:I,s:I}", "input_tokens", prompt - cached, "output_tokens",
                  json_integer_value(json_object_get(usage, "completion_tokens")));
    if (cached > 0) {
        json_object_set_new(u, "cache_read_input_tokens", json_integer(cached));
    }
    return u;
}


/* OpenAI finish_reason -> Anthropic stop_reason. */
static const char *
anthropic_stop_reason(const char *finish)
{
    if (finish == NULL || strcmp(finish, "stop") == 0) {
        return "end_turn";
    }
    if (strcmp(finish, "length") == 0) {
        return "max_tokens";
    }
    if (strcmp(finish, "tool_calls") == 0 || strcmp(finish, "function_call") == 0) {
        return "tool_use";
    }
    if (strcmp(finish, "content_filter") == 0) {
        return "refusal";
    }
    return "end_turn";
}


/* One OpenAI chunk event -> Anthropic events (see the file comment's inbound part). */
static int
anthropic_client_stream_event(sl_stream_t *st, const sl_sse_event_t *ev, sl_chunks_t *out)
{
    anthropic_client_stream_t *s = st->priv;
    sl_buf_t *b = out->out;
    int choice;
    int delta;
    int calls;
    int finish;
    sl_str_t raw;
    size_t len;

    if (s == NULL) {
        s = sl_pcalloc(st->call->pool, sizeof(*s));
        s->doc = sl_json_create(st->call->pool);
        s->block = -1;
        s->tool = -1;
        st->priv = s;
    }
    if (s->failed || s->stopped) {
        return 0;
    }
    if (sl_str_eq(ev->data, "[DONE]")) {
        /* s->doc may still point into an earlier event's data, which is gone
         * now (fuzz_anthropic_client_stream): start from an empty object */
        sl_json_parse(s->doc, "{}", 2, NULL);
        anthropic_client_start(st, s, b);
        anthropic_client_close_block(s, b);
        sl_buf_printf(b,
                      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
                      "{\"stop_reason\":\"%s\",\"stop_sequence\":null},\"usage\":",
                      s->stop_reason != NULL ? s->stop_reason : "end_turn");
        anthropic_client_usage_raw(st, b, false);
        sl_buf_puts(b, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        s->stopped = true;
        st->done = true;
        return 0;
    }
    if (sl_json_parse(s->doc, ev->data.p, ev->data.len, NULL) < 0
        || sl_json_type(s->doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return 0;
    }
    if (sl_json_get(s->doc, SL_JSON_ROOT, "error") >= 0) {
        anthropic_client_stream_error(st, s, b);
        return 0;
    }
    anthropic_client_start(st, s, b);
    choice = sl_json_first(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "choices"));
    delta = sl_json_get(s->doc, choice, "delta");
    if (anthropic_raw_string(s->doc, sl_json_get(s->doc, delta, "content"), &raw, &len)
        && len > 0) {
        if (s->block < 0 || !s->block_text) {
            anthropic_client_close_block(s, b);
            s->block = s->nblocks++;
            s->block_text = true;
            sl_buf_printf(b,
                          "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                          "\"index\":%lld,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                          (long long) s->block);
        }
        sl_buf_printf(b,
                      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                      "\"index\":%lld,\"delta\":{\"type\":\"text_delta\",\"text\":",
                      (long long) s->block);
        sl_buf_append(b, raw.p, raw.len);
        sl_buf_puts(b, "}}\n\n");
    }
    calls = sl_json_get(s->doc, delta, "tool_calls");
    if (sl_json_type(s->doc, calls) == SL_JSON_ARRAY) {
        for (int k = sl_json_first(s->doc, calls); k >= 0; k = sl_json_next(s->doc, calls, k)) {
            anthropic_client_tool_delta(st, s, k, b);
        }
    }
    finish = sl_json_get(s->doc, choice, "finish_reason");
    if (sl_json_type(s->doc, finish) == SL_JSON_STRING) {
        sl_str_t f = anthropic_name(s->doc, finish);
        char reason[32];

        if (f.len >= sizeof(reason)) {
            f.len = 0;
        }
        memcpy(reason, f.p, f.len);
        reason[f.len] = '\0';
        s->stop_reason = anthropic_stop_reason(reason);
        anthropic_client_close_block(s, b);
    }
    return 0;
}


/* One tool_calls[] element: a new call opens a tool_use block, arguments are its deltas. */
static void
anthropic_client_tool_delta(sl_stream_t *st, anthropic_client_stream_t *s, int k, sl_buf_t *b)
{
    const sl_json_t *doc = s->doc;
    int64_t idx = anthropic_int(doc, sl_json_get(doc, k, "index"), 0);
    int fn = sl_json_get(doc, k, "function");
    sl_str_t id;
    sl_str_t name;
    sl_str_t raw;
    size_t len;
    bool has_id = anthropic_raw_string(doc, sl_json_get(doc, k, "id"), &id, &len) && len > 0;
    bool has_name = anthropic_raw_string(doc, sl_json_get(doc, fn, "name"), &name, &len) && len > 0;

    if ((has_id || has_name) && (s->block < 0 || s->block_text || s->tool != idx)) {
        anthropic_client_close_block(s, b);
        s->block = s->nblocks++;
        s->block_text = false;
        s->tool = idx;
        sl_buf_printf(b,
                      "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                      "\"index\":%lld,\"content_block\":{\"type\":\"tool_use\",\"id\":",
                      (long long) s->block);
        if (has_id) {
            sl_buf_append(b, id.p, id.len);
        } else {
            sl_buf_printf(b, "\"toolu_%s_%lld\"", st->call->request_id, (long long) idx);
        }
        sl_buf_puts(b, ",\"name\":");
        if (has_name) {
            sl_buf_append(b, name.p, name.len);
        } else {
            sl_buf_puts(b, "\"\"");
        }
        sl_buf_puts(b, ",\"input\":{}}}\n\n");
    }
    if (s->block < 0 || s->block_text || s->tool != idx
        || !anthropic_raw_string(doc, sl_json_get(doc, fn, "arguments"), &raw, &len) || len == 0) {
        return;
    }
    sl_buf_printf(b,
                  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                  "\"index\":%lld,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":",
                  (long long) s->block);
    sl_buf_append(b, raw.p, raw.len);
    sl_buf_puts(b, "}}\n\n");
}


/* message_start, once, from the first chunk's id and model. */
static void
anthropic_client_start(sl_stream_t *st, anthropic_client_stream_t *s, sl_buf_t *b)
{
    sl_str_t id = sl_str_null;
    sl_str_t model = sl_str_null;
    size_t len;
    const char *q;

    if (s->started) {
        return;
    }
    s->started = true;
    sl_buf_puts(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":");
    if (anthropic_raw_string(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "id"), &id, &len)
        && len > 0) {
        sl_buf_append(b, id.p, id.len);
    } else {
        sl_buf_printf(b, "\"msg_%s\"", st->call->request_id);
    }
    sl_buf_puts(b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    if (anthropic_raw_string(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "model"), &model, &len)
        && len > 0) {
        sl_buf_append(b, model.p, model.len);
    } else {
        q = anthropic_quote(st->call->pool,
                            st->call->target != NULL ? st->call->target->model : "");
        sl_buf_puts(b, q);
    }
    sl_buf_puts(b, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    anthropic_client_usage_raw(st, b, true);
    sl_buf_puts(b, "}}\n\n");
}


/* Usage as Anthropic streams it; at the start only the input side is known. */
static void
anthropic_client_usage_raw(sl_stream_t *st, sl_buf_t *b, bool start)
{
    const sl_usage_t *u = &st->usage;
    uint64_t cached = u->cached_tokens + u->cache_write_tokens;
    uint64_t input = u->prompt_tokens > cached ? u->prompt_tokens - cached : 0;

    sl_buf_printf(b, "{\"input_tokens\":%llu,", (unsigned long long) input);
    if (u->cached_tokens > 0) {
        sl_buf_printf(b, "\"cache_read_input_tokens\":%llu,",
                      (unsigned long long) u->cached_tokens);
    }
    if (u->cache_write_tokens > 0) {
        sl_buf_printf(b, "\"cache_creation_input_tokens\":%llu,",
                      (unsigned long long) u->cache_write_tokens);
    }
    sl_buf_printf(b, "\"output_tokens\":%llu}",
                  (unsigned long long) (start ? 0 : u->completion_tokens));
}


static void
anthropic_client_close_block(anthropic_client_stream_t *s, sl_buf_t *b)
{
    if (s->block < 0) {
        return;
    }
    sl_buf_printf(b,
                  "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                  "\"index\":%lld}\n\n",
                  (long long) s->block);
    s->block = -1;
    s->tool = -1;
}


/* OpenAI's in-band {"error":…} -> Anthropic's error event; nothing follows it. */
static void
anthropic_client_stream_error(sl_stream_t *st, anthropic_client_stream_t *s, sl_buf_t *b)
{
    int err = sl_json_get(s->doc, SL_JSON_ROOT, "error");
    sl_str_t v;
    const char *type = "api_error";
    const char *message = "the provider reported an error in the stream";
    json_t *ev;
    char *p;

    s->failed = true;
    if (sl_json_string(s->doc, sl_json_get(s->doc, err, "code"), st->call->pool, &v) == 0) {
        const char *code = sl_pstrndup(st->call->pool, v.p, v.len);

        if (anthropic_client_type_known(code)) {
            type = code;
        }
    }
    if (strcmp(type, "api_error") == 0
        && sl_json_string(s->doc, sl_json_get(s->doc, err, "type"), st->call->pool, &v) == 0) {
        const char *t = sl_pstrndup(st->call->pool, v.p, v.len);

        type = anthropic_client_type_known(t) ? t : "api_error";
    }
    if (sl_json_string(s->doc, sl_json_get(s->doc, err, "message"), st->call->pool, &v) == 0) {
        message = sl_pstrndup(st->call->pool, v.p, v.len);
    }
    ev = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", message);
    p = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
    if (p != NULL) {
        sl_buf_puts(b, "event: error\ndata: ");
        sl_buf_puts(b, p);
        sl_buf_puts(b, "\n\n");
        free(p);
    }
    json_decref(ev);
}


/* True for the error types Anthropic's API documents. */
static bool
anthropic_client_type_known(const char *type)
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


/* {"type":"error","error":{"type":…,"message":…}}, the type from the status. */
static int
anthropic_client_error(int status, const sl_error_t *err, sl_pool_t *pool, sl_str_t *out)
{
    const char *type;
    json_t *root;
    size_t len = 0;

    switch (status) {
    case 400:
        type = "invalid_request_error";
        break;
    case 401:
        type = "authentication_error";
        break;
    case 403:
        type = "permission_error";
        break;
    case 404:
        type = "not_found_error";
        break;
    case 413:
        type = "request_too_large";
        break;
    case 429:
        type = "rate_limit_error";
        break;
    case 503:
    case 529:
        type = "overloaded_error";
        break;
    default:
        type = status >= 500 ? "api_error" : "invalid_request_error";
        break;
    }
    root = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message",
                     err->message != NULL ? err->message : "error");
    out->p = root != NULL ? anthropic_dump(pool, root, &len) : NULL;
    out->len = len;
    json_decref(root);
    if (out->p == NULL) {
        out->p = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"error\"}}";
        out->len = strlen(out->p);
    }
    return 0;
}
