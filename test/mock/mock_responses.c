/*
 * The mock's OpenAI Responses API: POST /v1/responses (and Azure's v1
 * path, POST /openai/v1/responses), for sluice's native forwarding. The
 * answer mirrors the chat endpoint's: "mock reply: " + the last user text
 * of the input (a string, or message items' text parts), or, when the
 * request has tools and that text mentions "weather", a function_call of
 * the first function tool (a namespace's first function, with its
 * namespace) with {"location":"Paris"}. A whole answer is a response
 * object; "stream": true gives OpenAI's event sequence (response.created,
 * response.in_progress, output_item.added, content_part.added, N text or
 * argument deltas, their done events, output_item.done, then
 * response.completed with usage), each event with its sequence_number.
 * previous_response_id is accepted and not looked at (the mock keeps
 * nothing); x-mock-stream-error ends a stream with an `error` event after
 * the first delta.
 */
#include "test/mock/mock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define MR_PREAMBLE 3 /* segments sent at once: headers, created, in_progress */

/* One Responses answer. */
typedef struct mr_answer {
    unsigned long long id;
    sl_str_t model;
    sl_str_t reply; /* text, or the call's arguments */
    sl_str_t tool;  /* empty: a text answer */
    sl_str_t space; /* the tool's namespace, or empty */
    long long input_tokens;
    long long output_tokens;
    bool stream_error;
} mr_answer_t;

static void mr_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                     const sl_mock_faults_t *f, int status, const char *message, const char *param);
static void mr_text_of(const json_t *content, sl_buf_t *out);
static void mr_first_tool(const json_t *tools, sl_str_t *name, sl_str_t *space);
static void mr_item(sl_mock_t *m, const mr_answer_t *a, const char *status, size_t text_len);
static void mr_object(sl_mock_t *m, const mr_answer_t *a, const char *status, bool output);
static void mr_event(sl_mock_t *m, sl_mock_resp_t *resp, unsigned *seq, const char *type,
                     bool last);


bool
sl__mock_is_responses(const sl_mock_req_t *r)
{
    return sl_str_eq(r->path, "/v1/responses") || sl_str_eq(r->path, "/openai/v1/responses");
}


static void
mr_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
         int status, const char *message, const char *param)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_puts(b, "{\"error\":{\"message\":");
    sl__mock_json_str(b, message, strlen(message));
    sl_buf_puts(b, ",\"type\":\"invalid_request_error\",\"param\":");
    if (param != NULL) {
        sl__mock_json_str(b, param, strlen(param));
    } else {
        sl_buf_puts(b, "null");
    }
    sl_buf_puts(b, ",\"code\":null}}");
    sl__mock_emit(m, r, resp, status, f, "application/json", NULL);
}


/* The text of a message's content: a string, or the text of its parts. */
static void
mr_text_of(const json_t *content, sl_buf_t *out)
{
    const json_t *p;
    size_t i;

    if (json_is_string(content)) {
        sl_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    json_array_foreach(content, i, p)
    {
        const json_t *t = json_object_get(p, "text");

        if (json_is_string(t)) {
            sl_buf_append(out, json_string_value(t), json_string_length(t));
        }
    }
}


/* The first function tool's name (and its namespace). */
static void
mr_first_tool(const json_t *tools, sl_str_t *name, sl_str_t *space)
{
    const json_t *t, *s;
    size_t i, k;

    json_array_foreach(tools, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        const json_t *n = json_object_get(t, "name");

        if (type != NULL && strcmp(type, "function") == 0 && json_is_string(n)) {
            *name = (sl_str_t){ json_string_value(n), json_string_length(n) };
            return;
        }
        if (type != NULL && strcmp(type, "namespace") == 0 && json_is_string(n)) {
            json_array_foreach(json_object_get(t, "tools"), k, s)
            {
                const json_t *sn = json_object_get(s, "name");

                if (json_is_string(sn)) {
                    *space = (sl_str_t){ json_string_value(n), json_string_length(n) };
                    *name = (sl_str_t){ json_string_value(sn), json_string_length(sn) };
                    return;
                }
            }
        }
    }
}


void
sl__mock_responses(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                   const sl_mock_faults_t *f)
{
    json_t *root = json_loadb(r->body.p, r->body.len, 0, NULL);
    const json_t *input, *model, *it, *tools;
    sl_buf_t last = SL_BUF_INIT;
    sl_buf_t text = SL_BUF_INIT;
    const sl_http_header_t *h;
    size_t chars = 0, i;
    bool question = false;
    mr_answer_t a;

    if (!sl_str_eq(r->method, "POST")) {
        mr_error(m, r, resp, f, 405, "Method not allowed", NULL);
        goto out;
    }
    model = json_object_get(root, "model");
    input = json_object_get(root, "input");
    if (!json_is_object(root) || !json_is_string(model)) {
        mr_error(m, r, resp, f, 400, "Missing required parameter: 'model'.", "model");
        goto out;
    }
    if (json_is_string(input)) {
        sl_buf_append(&last, json_string_value(input), json_string_length(input));
        chars = json_string_length(input);
        question = true;
    } else if (json_is_array(input)) {
        json_array_foreach(input, i, it)
        {
            const char *role = json_string_value(json_object_get(it, "role"));
            const char *type = json_string_value(json_object_get(it, "type"));

            sl_buf_clear(&text);
            mr_text_of(json_object_get(it, "content"), &text);
            chars += text.len;
            if (role != NULL && strcmp(role, "user") == 0) {
                sl_buf_clear(&last);
                sl_buf_append(&last, text.p, text.len);
                question = true;
            } else if (type != NULL && strcmp(type, "reasoning") != 0) {
                question = false; /* a tool's output answers no question */
            }
        }
    } else {
        mr_error(m, r, resp, f, 400, "Missing required parameter: 'input'.", "input");
        goto out;
    }
    memset(&a, 0, sizeof(a));
    a.id = (unsigned long long) m->serial;
    a.model = (sl_str_t){ json_string_value(model), json_string_length(model) };
    a.input_tokens = (long long) (chars / 4 + 1);
    h = sl__mock_header(r, "x-mock-stream-error");
    a.stream_error = h != NULL && sl_str_eq(sl_str_trim(h->value), "1");
    tools = json_object_get(root, "tools");
    if (json_array_size(tools) > 0 && question
        && sl__mock_contains_ci(last.p, last.len, "weather")) {
        mr_first_tool(tools, &a.tool, &a.space);
    }
    if (a.tool.len > 0) {
        a.reply = sl_str_lit(SL_MOCK_TOOL_ARGS);
        a.output_tokens = (long long) (a.reply.len / 4 + 1);
    } else {
        a.reply = sl__mock_reply(m, last.p, last.len);
        a.output_tokens = sl__mock_words(a.reply.p, a.reply.len);
    }

    if (!json_is_true(json_object_get(root, "stream"))) {
        sl_buf_clear(&m->body);
        mr_object(m, &a, "completed", true);
        sl__mock_emit(m, r, resp, 200, f, "application/json", NULL);
        goto out;
    }

    {
        size_t clen = sl__mock_utf8_len(a.reply.p, a.reply.len);
        size_t pieces = f->chunks < clen ? f->chunks : clen;
        unsigned seq = 0;
        size_t at = 0;
        sl_buf_t *b = &m->body;

        sl__mock_head(m, r, resp, 200, "text/event-stream; charset=utf-8", -1, f, NULL);
        sl_buf_clear(b);
        sl_buf_puts(b, ",\"response\":");
        mr_object(m, &a, "in_progress", false);
        mr_event(m, resp, &seq, "response.created", false);
        sl_buf_clear(b);
        sl_buf_puts(b, ",\"response\":");
        mr_object(m, &a, "in_progress", false);
        mr_event(m, resp, &seq, "response.in_progress", false);
        sl_buf_clear(b);
        sl_buf_puts(b, ",\"output_index\":0,\"item\":");
        mr_item(m, &a, "in_progress", 0);
        mr_event(m, resp, &seq, "response.output_item.added", false);
        if (a.tool.len == 0) {
            sl_buf_clear(b);
            sl_buf_printf(b,
                          ",\"item_id\":\"msg_mock%llu\",\"output_index\":0,\"content_index\":0,"
                          "\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}",
                          a.id);
            mr_event(m, resp, &seq, "response.content_part.added", false);
        }
        for (size_t p = 0; p < pieces; p++) {
            size_t want = (p + 1) * clen / pieces - p * clen / pieces;
            size_t len = sl__mock_utf8_prefix(a.reply.p + at, a.reply.len - at, want);

            sl_buf_clear(b);
            sl_buf_printf(b, ",\"item_id\":\"%s_mock%llu\",\"output_index\":0",
                          a.tool.len > 0 ? "fc" : "msg", a.id);
            if (a.tool.len == 0) {
                sl_buf_puts(b, ",\"content_index\":0");
            }
            sl_buf_puts(b, ",\"delta\":");
            sl__mock_json_str(b, a.reply.p + at, len);
            mr_event(m, resp, &seq,
                     a.tool.len > 0 ? "response.function_call_arguments.delta"
                                    : "response.output_text.delta",
                     false);
            at += len;
            if (a.stream_error) {
                sl_buf_clear(b);
                sl_buf_puts(b, ",\"code\":\"server_error\",\"message\":\"The server had an "
                               "error while processing your request.\",\"param\":null");
                mr_event(m, resp, &seq, "error", true);
                goto paced;
            }
        }
        sl_buf_clear(b);
        sl_buf_printf(b, ",\"item_id\":\"%s_mock%llu\",\"output_index\":0",
                      a.tool.len > 0 ? "fc" : "msg", a.id);
        if (a.tool.len > 0) {
            sl_buf_puts(b, ",\"arguments\":");
            sl__mock_json_str(b, a.reply.p, a.reply.len);
            mr_event(m, resp, &seq, "response.function_call_arguments.done", false);
        } else {
            sl_buf_puts(b, ",\"content_index\":0,\"text\":");
            sl__mock_json_str(b, a.reply.p, a.reply.len);
            mr_event(m, resp, &seq, "response.output_text.done", false);
            sl_buf_clear(b);
            sl_buf_printf(b,
                          ",\"item_id\":\"msg_mock%llu\",\"output_index\":0,\"content_index\":0,"
                          "\"part\":{\"type\":\"output_text\",\"text\":",
                          a.id);
            sl__mock_json_str(b, a.reply.p, a.reply.len);
            sl_buf_puts(b, ",\"annotations\":[]}");
            mr_event(m, resp, &seq, "response.content_part.done", false);
        }
        sl_buf_clear(b);
        sl_buf_puts(b, ",\"output_index\":0,\"item\":");
        mr_item(m, &a, "completed", a.reply.len);
        mr_event(m, resp, &seq, "response.output_item.done", false);
        sl_buf_clear(b);
        sl_buf_puts(b, ",\"response\":");
        mr_object(m, &a, "completed", true);
        mr_event(m, resp, &seq, "response.completed", true);

    paced:
        resp->paced_from = MR_PREAMBLE;
        if (f->reset_after >= 0) {
            resp->reset_after = MR_PREAMBLE + 2 + (size_t) f->reset_after;
            if (resp->reset_after > resp->nseg) {
                resp->reset_after = resp->nseg;
            }
        }
    }

out:
    sl_buf_free(&last);
    sl_buf_free(&text);
    json_decref(root);
}


/* The answer's one output item into m->body (text_len bytes of the reply). */
static void
mr_item(sl_mock_t *m, const mr_answer_t *a, const char *status, size_t text_len)
{
    sl_buf_t *b = &m->body;

    if (a->tool.len > 0) {
        sl_buf_printf(b,
                      "{\"id\":\"fc_mock%llu\",\"type\":\"function_call\",\"status\":\"%s\","
                      "\"arguments\":",
                      a->id, status);
        sl__mock_json_str(b, a->reply.p, text_len);
        sl_buf_puts(b, ",\"call_id\":\"call_mock1\",\"name\":");
        sl__mock_json_str(b, a->tool.p, a->tool.len);
        if (a->space.len > 0) {
            sl_buf_puts(b, ",\"namespace\":");
            sl__mock_json_str(b, a->space.p, a->space.len);
        }
        sl_buf_puts(b, "}");
        return;
    }
    sl_buf_printf(b,
                  "{\"id\":\"msg_mock%llu\",\"type\":\"message\",\"status\":\"%s\",\"role\":"
                  "\"assistant\",\"content\":[",
                  a->id, status);
    if (text_len > 0) {
        sl_buf_puts(b, "{\"type\":\"output_text\",\"text\":");
        sl__mock_json_str(b, a->reply.p, text_len);
        sl_buf_puts(b, ",\"annotations\":[]}");
    }
    sl_buf_puts(b, "]}");
}


/* A response object into m->body: with its output and usage, or in progress. */
static void
mr_object(sl_mock_t *m, const mr_answer_t *a, const char *status, bool output)
{
    sl_buf_t *b = &m->body;

    sl_buf_printf(b,
                  "{\"id\":\"resp_mock%llu\",\"object\":\"response\",\"created_at\":%lld,"
                  "\"status\":\"%s\",\"error\":null,\"incomplete_details\":null,\"model\":",
                  a->id, (long long) time(NULL), status);
    sl__mock_json_str(b, a->model.p, a->model.len);
    sl_buf_puts(b, ",\"output\":[");
    if (output) {
        mr_item(m, a, "completed", a->reply.len);
    }
    sl_buf_puts(b, "],\"usage\":");
    if (output) {
        sl_buf_printf(b,
                      "{\"input_tokens\":%lld,\"input_tokens_details\":{\"cached_tokens\":0},"
                      "\"output_tokens\":%lld,\"output_tokens_details\":{\"reasoning_tokens\":0},"
                      "\"total_tokens\":%lld}",
                      a->input_tokens, a->output_tokens, a->input_tokens + a->output_tokens);
    } else {
        sl_buf_puts(b, "null");
    }
    sl_buf_puts(b, "}");
}


/*
 * m->body holds the event's members after type and sequence_number
 * (",k:v..."): frames it as one SSE event, one HTTP chunk.
 */
static void
mr_event(sl_mock_t *m, sl_mock_resp_t *resp, unsigned *seq, const char *type, bool last)
{
    sl_buf_t ev = SL_BUF_INIT;

    sl_buf_printf(&ev, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%u", type, type,
                  (*seq)++);
    sl_buf_append(&ev, m->body.p, m->body.len);
    sl_buf_puts(&ev, "}\n\n");
    sl_buf_clear(&m->body);
    sl_buf_append(&m->body, ev.p, ev.len);
    sl_buf_free(&ev);
    sl__mock_event(m, resp, last);
}
