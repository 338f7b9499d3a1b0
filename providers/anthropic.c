/*
 * Anthropic Messages API. A call of the internal (OpenAI chat) request
 * becomes a POST {base_path}/v1/messages; the answer, whole or streamed,
 * comes back as the typed answer and events of core/gateway/call.h.
 * Requests are written from the token reader for the common call and
 * rebuilt through a jansson DOM otherwise; answers and stream events are
 * read with the token reader, splicing the provider's own JSON strings
 * (checked first), so a text delta costs no DOM.
 *
 * A client of the Messages API itself (POST /v1/messages) in front of an
 * Anthropic target is served natively (ops->api): its own body goes
 * upstream with only the model changed, with its anthropic-version and
 * anthropic-beta, and answers and events go back raw, with the typed
 * answer and events filled beside them (usage, thinking and signatures)
 * for the driver.
 *
 * Where the two APIs differ when translating:
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
 *  - reasoning_effort is extended thinking with a budget (see
 *    anthropic_thinking()); top_k goes as it is; the internal body's
 *    sluice_reasoning (a Responses client's reasoning items, signed by
 *    Anthropic) become thinking and redacted_thinking blocks again, first
 *    in their assistant turn; file parts with base64 data are documents.
 *  - thinking blocks are reasoning (their signatures kept byte for byte),
 *    tool_use blocks tool calls (the input's JSON text as arguments); stop
 *    reasons keep what Anthropic tells apart (stop_sequence, pause_turn,
 *    refusal); usage counts cache reads and writes (1-hour writes apart).
 *  - an `error` event in a stream is SL_EV_ERROR (the stream failed, it is
 *    not done): the driver decides what the client sees.
 *
 * This file builds the requests and holds the adapter's ops;
 * anthropic_answer.c reads answers, stream events and errors.
 */
#include "providers/provider.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/errno.h"
#include "providers/adapter_internal.h"
#include "providers/anthropic_internal.h"

#define ANTHROPIC_VERSION "2023-06-01"
/* Anthropic requires max_tokens; OpenAI's default is "no limit" */
#define ANTHROPIC_MAX_TOKENS 4096

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
static int anthropic_thinking(json_t *in, json_t *body);
static void anthropic_reasoning(json_t *reasoning, size_t index, json_t *blocks);
static int anthropic_document(json_t *part, json_t *blocks);
static int anthropic_tool_choice(json_t *in, json_t *body);
static sl_http_header_t *anthropic_headers(sl_call_t *call, bool native, size_t *n);
static const char *anthropic_dump(sl_pool_t *pool, json_t *v, size_t *len);
static int anthropic_build_native(sl_call_t *call, sl_upstream_req_t *out);

const sl_provider_ops_t sl_provider_anthropic = {
    .kind = "anthropic",
    .default_base_url = "https://api.anthropic.com",
    .api = SL_API_MESSAGES,
    .conf_parse = NULL,
    .build_request = anthropic_build_request,
    .parse_response = sl__anthropic_parse_response,
    .stream_event = sl__anthropic_stream_event,
    .map_error = sl__anthropic_map_error,
};


/*
 * Returns 0; SL_EDENIED for an API other than chat; SL_EPARSE for a call
 * that cannot be said in Anthropic's terms (n > 1, tool arguments that are
 * not a JSON object, an image that is neither a data: nor an http(s) URL,
 * a content part or role Anthropic has no counterpart for). A Messages
 * client's own body goes as it is (anthropic_build_native()).
 */
static int
anthropic_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out)
{
    const sl_provider_conf_t *p = call->target->provider;
    json_t *in;
    json_t *body;
    int rc;

    (void) conf;
    if (call->api != SL_API_CHAT) {
        return SL_EDENIED;
    }
    if (call->client_api == SL_API_MESSAGES) {
        return anthropic_build_native(call, out);
    }
    if (call->body == NULL) {
        sl_buf_t b = SL_BUF_INIT;

        if (anthropic_fast_body(call, &b)) {
            out->body = sl_pstrndup(call->pool, b.p, b.len);
            out->body_len = b.len;
            sl_buf_free(&b);
            out->method = "POST";
            out->path = sl_psprintf(call->pool, "%s/v1/messages", p->base_path);
            out->headers = anthropic_headers(call, false, &out->nheaders);
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
    out->headers = anthropic_headers(call, false, &out->nheaders);

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
    /* the last two are the Responses frontend's own, which this body does not need */
    static const char *const keys[] = {
        "model",
        "messages",
        "max_tokens",
        "stream",
        "stream_options",
        "max_completion_tokens",
        "sluice_response_id",
        "sluice_previous_response_id",
    };
    const sl_json_t *doc = call->doc;
    sl_buf_t system = SL_BUF_INIT;
    int v[8];
    size_t found = 0;
    int64_t max_tokens;
    size_t len;
    sl_json_type_e st;

    if (sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT
        || sl_json_lookup(doc, SL_JSON_ROOT, keys, 8, v) < 0) {
        return false;
    }
    for (size_t i = 0; i < 8; i++) {
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
    rc = anthropic_thinking(in, body);
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
        if (strcmp(as, "assistant") == 0) {
            anthropic_reasoning(json_object_get(in, "sluice_reasoning"), i, blocks);
        }
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
        } else if (user && strcmp(type, "file") == 0) {
            rc = anthropic_document(part, blocks);
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


/*
 * reasoning_effort -> extended thinking with a budget (minimal 1024, low
 * 2048, medium 8192, high 24576 tokens; none: no thinking), max_tokens
 * raised above the budget when it is not, and what Anthropic refuses
 * with thinking left out (temperature, top_k, top_p below 0.95). A
 * forced tool choice and thinking do not go together: the choice wins.
 * Without thinking, top_k goes as it is.
 */
static int
anthropic_thinking(json_t *in, json_t *body)
{
    static const struct {
        const char *effort;
        json_int_t budget;
    } budgets[] = {
        { "minimal", 1024 }, { "low", 2048 },    { "medium", 8192 },
        { "high", 24576 },   { "xhigh", 32768 }, { "none", 0 },
    };
    json_t *effort = json_object_get(in, "reasoning_effort");
    json_t *top_k = json_object_get(in, "top_k");
    const char *choice =
        json_string_value(json_object_get(json_object_get(body, "tool_choice"), "type"));
    json_int_t budget = -1;
    json_int_t max;

    if (top_k != NULL && !json_is_null(top_k)) {
        if (!json_is_integer(top_k) || json_integer_value(top_k) < 1) {
            return SL_EPARSE;
        }
        json_object_set(body, "top_k", top_k);
    }
    if (effort == NULL || json_is_null(effort)) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(budgets) / sizeof(budgets[0]) && json_is_string(effort); i++) {
        if (strcmp(json_string_value(effort), budgets[i].effort) == 0) {
            budget = budgets[i].budget;
        }
    }
    if (budget < 0) {
        return SL_EPARSE;
    }
    if (budget == 0
        || (choice != NULL && (strcmp(choice, "any") == 0 || strcmp(choice, "tool") == 0))) {
        return 0;
    }
    max = json_integer_value(json_object_get(body, "max_tokens"));
    if (max <= budget) {
        json_object_set_new(body, "max_tokens", json_integer(budget + max));
    }
    json_object_set_new(body, "thinking",
                        json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens", budget));
    json_object_del(body, "temperature");
    json_object_del(body, "top_k");
    if (json_object_get(body, "top_p") != NULL
        && json_number_value(json_object_get(body, "top_p")) < 0.95) {
        json_object_del(body, "top_p");
    }
    return 0;
}


/*
 * The thinking blocks of assistant message index (sluice_reasoning, from a
 * Responses client's reasoning items): Anthropic's own, signature and all,
 * first in the turn; what another provider wrote is not there (the
 * frontend dropped it).
 */
static void
anthropic_reasoning(json_t *reasoning, size_t index, json_t *blocks)
{
    json_t *e;
    size_t i;

    json_array_foreach(reasoning, i, e)
    {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        json_t *sig = json_object_get(e, "signature");

        if (json_integer_value(json_object_get(e, "message")) != (json_int_t) index || kind == NULL
            || !json_is_string(sig)) {
            continue;
        }
        if (strcmp(kind, "anthropic") == 0) {
            json_array_append_new(blocks, json_pack("{s:s,s:O,s:O}", "type", "thinking", "thinking",
                                                    json_object_get(e, "text"), "signature", sig));
        } else if (strcmp(kind, "redacted") == 0) {
            json_array_append_new(blocks,
                                  json_pack("{s:s,s:O}", "type", "redacted_thinking", "data", sig));
        }
    }
}


/* A file part with base64 data (a data: URL) -> a document block (PDF or text). */
static int
anthropic_document(json_t *part, json_t *blocks)
{
    const char *url =
        json_string_value(json_object_get(json_object_get(part, "file"), "file_data"));
    const char *comma;
    const char *semi;

    if (url == NULL || strncmp(url, "data:", 5) != 0) {
        return SL_EPARSE;
    }
    comma = strchr(url, ',');
    semi = strchr(url + 5, ';');
    if (comma == NULL || semi == NULL || semi > comma || strncmp(semi, ";base64,", 8) != 0
        || semi == url + 5) {
        return SL_EPARSE;
    }
    json_array_append_new(blocks, json_pack("{s:s,s:{s:s,s:s%,s:s}}", "type", "document", "source",
                                            "type", "base64", "media_type", url + 5,
                                            (size_t) (semi - (url + 5)), "data", comma + 1));
    return 0;
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


/*
 * The client's headers, then ours. A translated request is in the one
 * anthropic-version this adapter speaks, so the client's is dropped; a
 * native one is in the client's, which goes as it came (ours when it sent
 * none). anthropic-beta goes as the client sent it.
 */
static sl_http_header_t *
anthropic_headers(sl_call_t *call, bool native, size_t *n)
{
    const char *key = call->api_key != NULL ? call->api_key->value : NULL;
    sl_http_header_t *h = sl_palloc(call->pool, sizeof(*h) * (call->nheaders + 3));
    bool version = false;
    size_t k = 0;

    for (size_t i = 0; i < call->nheaders; i++) {
        if (sl_str_caseeq(call->headers[i].name, "anthropic-version")) {
            if (!native) {
                continue;
            }
            version = true;
        }
        h[k++] = call->headers[i];
    }
    h[k].name = sl_str_lit("content-type");
    h[k++].value = sl_str_lit("application/json");
    if (!version) {
        h[k].name = sl_str_lit("anthropic-version");
        h[k++].value = sl_str_lit(ANTHROPIC_VERSION);
    }
    if (key != NULL) {
        h[k].name = sl_str_lit("x-api-key");
        h[k].value = (sl_str_t){ key, strlen(key) };
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


/*
 * The client's own Messages request, forwarded (a client of Anthropic's
 * API in front of an Anthropic target): the body with only `model` set to
 * the target's model, nothing added, even to a stream. Returns 0 or
 * SL_EPARSE (a body without a string model).
 */
static int
anthropic_build_native(sl_call_t *call, sl_upstream_req_t *out)
{
    const sl_provider_conf_t *p = call->target->provider;
    const sl_json_t *doc = call->native_doc;
    int model = sl_json_get(doc, SL_JSON_ROOT, "model");
    sl_str_t raw = sl_json_raw(doc, model);
    sl_json_edit_t ed;
    sl_str_t body;

    if (sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT
        || sl_json_type(doc, model) != SL_JSON_STRING) {
        return SL_EPARSE;
    }
    ed.start = (size_t) (raw.p - call->native.p);
    ed.end = ed.start + raw.len;
    ed.text = (sl_str_t){ call->target->model, strlen(call->target->model) };
    ed.quote = true;
    if (sl__adapter_same_string(raw, call->target->model)) {
        body = call->native; /* the model is the target's already: not copied */
    } else if (sl_json_splice(call->pool, call->native, &ed, 1, &body) < 0) {
        return SL_EPARSE;
    }
    out->method = "POST";
    out->path = sl_psprintf(call->pool, "%s/v1/messages", p->base_path);
    out->headers = anthropic_headers(call, true, &out->nheaders);
    out->body = body.p;
    out->body_len = body.len;
    return 0;
}
