/*
 * kind echo: a provider without network, for a first request on a fresh
 * machine and for tests. Its `local` hook writes the whole upstream
 * response in OpenAI's wire format (a chat.completion, or an event stream
 * of chat.completion.chunk events ending in [DONE]), which the OpenAI
 * adapter's parse_response and stream_event then read as if it had come
 * over the wire. Deterministic, by these rules:
 *
 *  - The prompt is the text of the last message whose role is user or
 *    tool (a string content, or its text parts joined with "\n").
 *  - The answer is "echo: " followed by the prompt.
 *  - A tool call instead of text, when the request has function tools,
 *    tool_choice is not "none" and the last message is a user message (so
 *    an agent loop ends after one round trip): the tool that tool_choice
 *    names; with "required", the first tool the prompt names, else the
 *    first tool; otherwise the first tool (in `tools` order) whose name
 *    the prompt contains as a word (not next to a letter, digit, '_' or
 *    '-'). The call is {"id": "call_echo_0", "name": the tool, "arguments":
 *    {"text": the prompt}} and finish_reason is "tool_calls".
 *  - Usage: prompt tokens are the characters (code points) of every
 *    message's text, divided by 4 and rounded up; completion tokens are
 *    the words (runs of non-space) of the answer text, or of the
 *    arguments of a tool call.
 *  - max_completion_tokens (or max_tokens) keeps that many words of the
 *    answer text, with finish_reason "length".
 *  - A stream sends the role, then the answer text a word at a time (a
 *    tool call as one chunk with its id and name, then its arguments),
 *    the finish, a usage chunk (passed on only to a client that asked for
 *    usage, as with any OpenAI provider) and [DONE].
 *
 * Only chat is served (embeddings: SL_EDENIED). The kind takes no keys of
 * its own and refuses base_url: it never connects anywhere.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/base/errno.h"
#include "providers/adapter_internal.h"
#include "providers/openai_internal.h"

#define ECHO_PREFIX  "echo: "
#define ECHO_CALL_ID "call_echo_0"
/* never dialled (echo answers through `local`): only so that conf.c asks for no base_url */
#define ECHO_BASE_URL "http://echo.invalid"

/* What the answer is, worked out from the request. */
typedef struct echo_answer {
    sl_buf_t text;      /* answer text, or a tool call's arguments (JSON text) */
    sl_str_t tool;      /* the tool called (decoded), or p NULL for a text answer */
    uint64_t prompt;    /* prompt tokens */
    uint64_t words;     /* completion tokens */
    const char *finish; /* "stop", "length" or "tool_calls" */
} echo_answer_t;

static int echo_conf_parse(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf);
static int echo_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static int echo_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                             sl_evs_t *out);
static int echo_local(const void *conf, sl_call_t *call, sl_local_reply_t *out);
static int echo_read(sl_call_t *call, echo_answer_t *a);
static void echo_text(sl_call_t *call, int content, sl_buf_t *out);
static uint64_t echo_chars(sl_call_t *call, int content);
static bool echo_tool(sl_call_t *call, sl_str_t prompt, sl_str_t *name);
static bool echo_names(sl_str_t text, sl_str_t name);
static bool echo_word_byte(char c);
static uint64_t echo_words(const char *p, size_t len, uint64_t max, size_t *cut);
static void echo_head(sl_call_t *call, sl_buf_t *b, const char *object, int64_t created);
static void echo_chunk_open(sl_call_t *call, sl_buf_t *b, int64_t created);
static void echo_whole(sl_call_t *call, const echo_answer_t *a, sl_buf_t *b);
static void echo_stream(sl_call_t *call, const echo_answer_t *a, sl_buf_t *b);
static void echo_usage(sl_buf_t *b, const echo_answer_t *a);

const sl_provider_ops_t sl_provider_echo = {
    .kind = "echo",
    .default_base_url = ECHO_BASE_URL,
    .api = SL_API_CHAT,
    .conf_parse = echo_conf_parse,
    .build_request = echo_build_request,
    .parse_response = sl__openai_parse_response,
    .stream_event = echo_stream_event,
    .map_error = sl__openai_map_error,
    .local = echo_local,
};


static int
echo_conf_parse(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf)
{
    const sl_conf_node_t *n = sl_conf_get(cx, node, "base_url");

    *conf = NULL;
    if (n != NULL) {
        return sl_conf_errorf(cx, n, "kind echo answers without network and takes no base_url");
    }
    return 0;
}


/*
 * The request echo would send, were it sent: the internal request as it
 * is. What it checks is what local needs.
 */
static int
echo_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out)
{
    (void) conf;
    if (call->api != SL_API_CHAT) {
        return SL_EDENIED;
    }
    if (sl_json_type(call->doc, sl_json_get(call->doc, SL_JSON_ROOT, "messages"))
        != SL_JSON_ARRAY) {
        return SL_EPARSE;
    }
    out->method = "POST";
    out->path = "/chat/completions";
    out->headers = NULL;
    out->nheaders = 0;
    out->body = call->raw.p;
    out->body_len = call->raw.len;
    return 0;
}


static int
echo_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_evs_t *out)
{
    (void) conf;
    return sl__openai_stream(st, ev, NULL, out);
}


static int
echo_local(const void *conf, sl_call_t *call, sl_local_reply_t *out)
{
    echo_answer_t a;
    sl_buf_t b = SL_BUF_INIT;
    int rc;

    (void) conf;
    memset(&a, 0, sizeof(a));
    rc = echo_read(call, &a);
    if (rc < 0) {
        sl_buf_free(&a.text);
        return rc;
    }
    if (call->stream) {
        echo_stream(call, &a, &b);
    } else {
        echo_whole(call, &a, &b);
    }
    out->status = 200;
    out->content_type = call->stream ? "text/event-stream" : "application/json";
    out->body = sl_pstrndup(call->pool, b.p != NULL ? b.p : "", b.len);
    out->body_len = b.len;
    sl_buf_free(&b);
    sl_buf_free(&a.text);
    return 0;
}


/* The rules of the file comment -> a. SL_EPARSE for a body that is not a chat request. */
static int
echo_read(sl_call_t *call, echo_answer_t *a)
{
    const sl_json_t *doc = call->doc;
    int msgs = sl_json_get(doc, SL_JSON_ROOT, "messages");
    int last = -1;
    bool user = false;
    uint64_t chars = 0;
    sl_buf_t prompt = SL_BUF_INIT;
    size_t cut;

    if (call->api != SL_API_CHAT || sl_json_type(doc, msgs) != SL_JSON_ARRAY) {
        return SL_EPARSE;
    }
    for (int m = sl_json_first(doc, msgs); m >= 0; m = sl_json_next(doc, msgs, m)) {
        sl_str_t role;

        chars += echo_chars(call, sl_json_get(doc, m, "content"));
        if (sl_json_string(doc, sl_json_get(doc, m, "role"), call->pool, &role) < 0) {
            continue;
        }
        if (sl_str_eq(role, "user") || sl_str_eq(role, "tool")) {
            last = m;
            user = sl_str_eq(role, "user");
        } else {
            user = false;
        }
    }
    a->prompt = (chars + 3) / 4;
    echo_text(call, sl_json_get(doc, last, "content"), &prompt);

    if (user
        && echo_tool(call, (sl_str_t){ prompt.p != NULL ? prompt.p : "", prompt.len }, &a->tool)) {
        sl_buf_puts(&a->text, "{\"text\":");
        sl_json_quote(&a->text, (sl_str_t){ prompt.p != NULL ? prompt.p : "", prompt.len });
        sl_buf_puts(&a->text, "}");
        a->words = echo_words(a->text.p, a->text.len, 0, &cut);
        a->finish = "tool_calls";
        sl_buf_free(&prompt);
        return 0;
    }
    sl_buf_puts(&a->text, ECHO_PREFIX);
    sl_buf_append(&a->text, prompt.p != NULL ? prompt.p : "", prompt.len);
    sl_buf_free(&prompt);
    a->finish = "stop";
    a->words = echo_words(a->text.p, a->text.len, call->max_tokens, &cut);
    if (cut < a->text.len) {
        a->text.len = cut;
        a->finish = "length";
    }
    return 0;
}


/* A message's content as text: a string, or its text parts joined with "\n". */
static void
echo_text(sl_call_t *call, int content, sl_buf_t *out)
{
    const sl_json_t *doc = call->doc;
    bool first = true;
    sl_str_t s;

    if (sl_json_string(doc, content, call->pool, &s) == 0) {
        sl_buf_append(out, s.p, s.len);
        return;
    }
    if (sl_json_type(doc, content) != SL_JSON_ARRAY) {
        return;
    }
    for (int p = sl_json_first(doc, content); p >= 0; p = sl_json_next(doc, content, p)) {
        if (sl_json_string(doc, sl_json_get(doc, p, "text"), call->pool, &s) < 0) {
            continue;
        }
        if (!first) {
            sl_buf_append(out, "\n", 1);
        }
        first = false;
        sl_buf_append(out, s.p, s.len);
    }
}


/* Code points of a content's text (a string, or its text parts). */
static uint64_t
echo_chars(sl_call_t *call, int content)
{
    sl_buf_t text = SL_BUF_INIT;
    uint64_t n = 0;

    echo_text(call, content, &text);
    for (size_t i = 0; i < text.len; i++) {
        /* every byte but UTF-8 continuation bytes starts a code point */
        n += ((unsigned char) text.p[i] & 0xc0) != 0x80;
    }
    sl_buf_free(&text);
    return n;
}


/* The tool to call by the rules of the file comment; false for a text answer. */
static bool
echo_tool(sl_call_t *call, sl_str_t prompt, sl_str_t *name)
{
    const sl_json_t *doc = call->doc;
    int tools = sl_json_get(doc, SL_JSON_ROOT, "tools");
    int choice = sl_json_get(doc, SL_JSON_ROOT, "tool_choice");
    sl_str_t forced = sl_str_null;
    sl_str_t first = sl_str_null;
    sl_str_t mode = sl_str_lit("auto");

    if (sl_json_type(doc, tools) != SL_JSON_ARRAY) {
        return false;
    }
    if (sl_json_type(doc, choice) == SL_JSON_STRING) {
        sl_json_string(doc, choice, call->pool, &mode);
    } else if (sl_json_type(doc, choice) == SL_JSON_OBJECT) {
        sl_json_string(doc, sl_json_path(doc, choice, "function.name"), call->pool, &forced);
    }
    if (sl_str_eq(mode, "none")) {
        return false;
    }
    for (int t = sl_json_first(doc, tools); t >= 0; t = sl_json_next(doc, tools, t)) {
        sl_str_t n;

        if (sl_json_string(doc, sl_json_path(doc, t, "function.name"), call->pool, &n) < 0
            || n.len == 0) {
            continue;
        }
        if (forced.p != NULL) {
            if (n.len == forced.len && memcmp(n.p, forced.p, n.len) == 0) {
                *name = n;
                return true;
            }
            continue;
        }
        if (first.p == NULL) {
            first = n;
        }
        if (echo_names(prompt, n)) {
            *name = n;
            return true;
        }
    }
    if (forced.p == NULL && sl_str_eq(mode, "required") && first.p != NULL) {
        *name = first;
        return true;
    }
    return false;
}


/* True when text holds name as a word (see the file comment). */
static bool
echo_names(sl_str_t text, sl_str_t name)
{
    for (size_t i = 0; i + name.len <= text.len; i++) {
        if (memcmp(text.p + i, name.p, name.len) == 0 && (i == 0 || !echo_word_byte(text.p[i - 1]))
            && (i + name.len == text.len || !echo_word_byte(text.p[i + name.len]))) {
            return true;
        }
    }
    return false;
}


static bool
echo_word_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
           || c == '-';
}


/*
 * Words (runs of bytes other than space, tab, CR and LF) of p[0..len),
 * counting at most max of them when max > 0; *cut is where the text ends
 * after the last word counted (len when all fit).
 */
static uint64_t
echo_words(const char *p, size_t len, uint64_t max, size_t *cut)
{
    uint64_t n = 0;
    bool in_word = false;

    *cut = len;
    for (size_t i = 0; i < len; i++) {
        bool space = p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n';

        if (!space && !in_word) {
            if (max > 0 && n == max) {
                /* the end of the last word kept, without the spaces after it */
                while (i > 0
                       && (p[i - 1] == ' ' || p[i - 1] == '\t' || p[i - 1] == '\r'
                           || p[i - 1] == '\n')) {
                    i--;
                }
                *cut = i;
                return n;
            }
            n++;
        }
        in_word = !space;
    }
    return n;
}


/* {"id":…,"object":…,"created":…,"model":… (no closing brace). */
static void
echo_head(sl_call_t *call, sl_buf_t *b, const char *object, int64_t created)
{
    const char *id = sl_psprintf(call->pool, "chatcmpl-%s",
                                 call->request_id != NULL ? call->request_id : "echo");
    const char *model = call->target != NULL ? call->target->model : "echo";

    sl_buf_puts(b, "{\"id\":");
    sl_json_quote(b, (sl_str_t){ id, strlen(id) });
    sl_buf_printf(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, (long long) created);
    sl_json_quote(b, (sl_str_t){ model, strlen(model) });
}


/* "data: " and a chunk up to its delta's value. */
static void
echo_chunk_open(sl_call_t *call, sl_buf_t *b, int64_t created)
{
    sl_buf_puts(b, "data: ");
    echo_head(call, b, "chat.completion.chunk", created);
    sl_buf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":");
}


/* A chat.completion. */
static void
echo_whole(sl_call_t *call, const echo_answer_t *a, sl_buf_t *b)
{
    sl_str_t text = { a->text.p != NULL ? a->text.p : "", a->text.len };

    echo_head(call, b, "chat.completion", (int64_t) time(NULL));
    sl_buf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (a->tool.p != NULL) {
        sl_buf_puts(b, "null,\"tool_calls\":[{\"id\":\"" ECHO_CALL_ID "\",\"type\":\"function\","
                       "\"function\":{\"name\":");
        sl_json_quote(b, a->tool);
        sl_buf_puts(b, ",\"arguments\":");
        sl_json_quote(b, text);
        sl_buf_puts(b, "}}]");
    } else {
        sl_json_quote(b, text);
    }
    sl_buf_printf(b, "},\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":", a->finish);
    echo_usage(b, a);
    sl_buf_puts(b, "}");
}


/* The chunks of the file comment, each "data: …\n\n", then "data: [DONE]\n\n". */
static void
echo_stream(sl_call_t *call, const echo_answer_t *a, sl_buf_t *b)
{
    int64_t created = (int64_t) time(NULL);
    const char *p = a->text.p != NULL ? a->text.p : "";
    size_t len = a->text.len;

    echo_chunk_open(call, b, created);
    sl_buf_puts(b, "{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
                   "\"finish_reason\":null}]}\n\n");
    if (a->tool.p != NULL) {
        echo_chunk_open(call, b, created);
        sl_buf_puts(b, "{\"tool_calls\":[{\"index\":0,\"id\":\"" ECHO_CALL_ID "\","
                       "\"type\":\"function\",\"function\":{\"name\":");
        sl_json_quote(b, a->tool);
        sl_buf_puts(b, ",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        echo_chunk_open(call, b, created);
        sl_buf_puts(b, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
        sl_json_quote(b, (sl_str_t){ p, len });
        sl_buf_puts(b, "}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    } else {
        /* a word at a time: each piece is a word and the spaces before it */
        for (size_t i = 0; i < len;) {
            size_t j = i;

            while (j < len && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r' || p[j] == '\n')) {
                j++;
            }
            while (j < len && !(p[j] == ' ' || p[j] == '\t' || p[j] == '\r' || p[j] == '\n')) {
                j++;
            }
            echo_chunk_open(call, b, created);
            sl_buf_puts(b, "{\"content\":");
            sl_json_quote(b, (sl_str_t){ p + i, j - i });
            sl_buf_puts(b, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
            i = j;
        }
    }
    echo_chunk_open(call, b, created);
    sl_buf_printf(b, "{},\"logprobs\":null,\"finish_reason\":\"%s\"}]}\n\n", a->finish);

    sl_buf_puts(b, "data: ");
    echo_head(call, b, "chat.completion.chunk", created);
    sl_buf_puts(b, ",\"choices\":[],\"usage\":");
    echo_usage(b, a);
    sl_buf_puts(b, "}\n\ndata: [DONE]\n\n");
}


static void
echo_usage(sl_buf_t *b, const echo_answer_t *a)
{
    sl_buf_printf(b,
                  "{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"total_tokens\":%llu,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":0}}",
                  (unsigned long long) a->prompt, (unsigned long long) a->words,
                  (unsigned long long) (a->prompt + a->words));
}
