/*
 * The OpenAI Responses frontend, the answer side (fe_responses.c decodes
 * requests and describes the translation): a whole answer as a Responses
 * object, typed stream events as OpenAI's Responses event sequence (every
 * event with `type` and `sequence_number`, usage with cached and reasoning
 * token details on response.completed) and errors in OpenAI's shape. An
 * answer or event an openai or azure target produced natively (raw_api
 * SL_API_RESPONSES) goes back as the provider's bytes. The echoed request
 * fields come from the client's body (call->native_doc); the response id
 * and the tool names the translation replaced from the internal body
 * (call->doc: sluice_response_id, sluice_tool_names). Nothing here does I/O.
 */
#include "core/gateway/frontend_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/errno.h"

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

static void rs_object_head(const sl_call_t *call, sl_str_t model, int64_t created,
                           const char *status, sl_finish_e finish, sl_buf_t *out);
static void rs_object_tail(const sl_call_t *call, const sl_usage_t *usage, sl_buf_t *out);
static void rs_echo(const sl_call_t *call, int v, const char *dflt, sl_buf_t *out);
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
static void rs_stream_free(void *arg);
static void rs_raw_done(rs_stream_t *s, const sl_ev_t *ev);
static void rs_start(rs_stream_t *s, sl_buf_t *out);
static void rs_event(rs_stream_t *s, const char *type, sl_buf_t *out);
static void rs_event_end(sl_buf_t *out);
static rs_item_t *rs_open(rs_stream_t *s, rs_kind_e kind, const sl_ev_t *ev, sl_buf_t *out);
static void rs_close(rs_stream_t *s, sl_buf_t *out);
static void rs_item_write(rs_stream_t *s, size_t i, const char *status, sl_buf_t *out);
static void rs_ref(rs_stream_t *s, size_t i, sl_buf_t *out);
static rs_item_t *rs_tool_item(rs_stream_t *s, unsigned tool, size_t *at);
static void rs_quote_or_null(sl_buf_t *out, const char *s);


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
    static const char *const keys[] = { "instructions", "max_output_tokens" };
    int id = sl_json_get(call->doc, SL_JSON_ROOT, "sluice_response_id");
    int v[2];

    /* one pass over the client's members for the echoed ones */
    (void) sl_json_lookup(call->native_doc, SL_JSON_ROOT, keys, 2, v);
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
    sl_buf_put_u64(out, created < 0 ? 0ULL - (unsigned long long) created
                                    : (unsigned long long) created);
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
    rs_echo(call, v[0], "null", out);
    sl_buf_puts(out, ",\"max_output_tokens\":");
    rs_echo(call, v[1], "null", out);
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
    enum {
        PARALLEL = 0,
        REASONING,
        STORE,
        TEMPERATURE,
        TEXT,
        TOOL_CHOICE,
        TOOLS,
        TOP_P,
        USER,
        METADATA,
        NKEYS
    };
    static const char *const keys[NKEYS] = {
        "parallel_tool_calls", "reasoning", "store", "temperature", "text",
        "tool_choice",         "tools",     "top_p", "user",        "metadata",
    };
    int v[NKEYS];
    int effort;
    int prev;

    /* one pass over the client's members for the echoed ones */
    (void) sl_json_lookup(call->native_doc, SL_JSON_ROOT, keys, NKEYS, v);
    effort = sl_json_get(call->native_doc, v[REASONING], "effort");

    sl_buf_puts(out, "],\"parallel_tool_calls\":");
    rs_echo(call, v[PARALLEL], "true", out);
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
    rs_echo(call, v[STORE], "true", out);
    sl_buf_puts(out, ",\"temperature\":");
    rs_echo(call, v[TEMPERATURE], "1", out);
    sl_buf_puts(out, ",\"text\":");
    rs_echo(call, v[TEXT], "{\"format\":{\"type\":\"text\"}}", out);
    sl_buf_puts(out, ",\"tool_choice\":");
    rs_echo(call, v[TOOL_CHOICE], "\"auto\"", out);
    sl_buf_puts(out, ",\"tools\":");
    rs_echo(call, v[TOOLS], "[]", out);
    sl_buf_puts(out, ",\"top_p\":");
    rs_echo(call, v[TOP_P], "1", out);
    sl_buf_puts(out, ",\"truncation\":\"disabled\",\"usage\":");
    if (usage != NULL && usage->known) {
        rs_usage(usage, out);
    } else {
        sl_buf_puts(out, "null");
    }
    sl_buf_puts(out, ",\"user\":");
    rs_echo(call, v[USER], "null", out);
    sl_buf_puts(out, ",\"metadata\":");
    rs_echo(call, v[METADATA], "{}", out);
    sl_buf_puts(out, "}");
}


/* The client's own value v (of call->native_doc), or dflt when it sent none (or null). */
static void
rs_echo(const sl_call_t *call, int v, const char *dflt, sl_buf_t *out)
{
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
    sl_buf_put_u64(out, (unsigned long long) u->prompt_tokens);
    sl_buf_puts(out, ",\"input_tokens_details\":{\"cached_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) u->cached_tokens);
    sl_buf_puts(out, "},\"output_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) u->completion_tokens);
    sl_buf_puts(out, ",\"output_tokens_details\":{\"reasoning_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) u->reasoning_tokens);
    sl_buf_puts(out, "},\"total_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) (u->prompt_tokens + u->completion_tokens));
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
    sl_buf_put_u64(out, (unsigned long long) n);
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
int
sl__responses_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out)
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


void *
sl__responses_stream_open(const sl_call_t *call)
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
int
sl__responses_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out)
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
int
sl__responses_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out)
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
int
sl__responses_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out)
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
int
sl__responses_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out)
{
    return sl__frontend_chat.encode_error(pool, e, out);
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
