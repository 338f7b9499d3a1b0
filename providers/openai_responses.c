/*
 * OpenAI's Responses API, natively: a client of POST /v1/responses in front
 * of an openai or azure target gets its own body forwarded (only the model
 * changed) and the provider's answer and events back raw; beside them the
 * answer and events are read into the typed answer and events of
 * core/gateway/call.h (usage, the commit point, stored responses). Read
 * with the token reader, the provider's own literals spliced.
 *
 * Stream events: response.created is the answer's head (START); text,
 * reasoning summary or text, function call items and their argument deltas
 * are output; response.completed and response.incomplete end the stream
 * cleanly (usage, finish, and the event itself held for the frontend's
 * encode_end, after the ledger row: see SL_EV_DONE); response.failed and
 * error are SL_EV_ERROR (the driver decides what the client sees). Every
 * other event goes through raw as it came.
 */
#include "providers/provider.h"

#include <string.h>

#include "core/base/errno.h"
#include "providers/adapter_internal.h"
#include "providers/openai_internal.h"

/* Per-stream state (st->priv), request pool. */
typedef struct oar_stream {
    sl_json_t *doc;
    sl_buf_t *raw;
    unsigned tools; /* function_call items so far */
    unsigned tool;  /* the tool call index of the one being streamed */
    bool started;
} oar_stream_t;

static void oar_usage(const sl_json_t *doc, int u, sl_usage_t *out);
static sl_finish_e oar_finish(const sl_json_t *doc, int resp, bool tools);
static void oar_item(sl_call_t *call, const sl_json_t *doc, int item, sl_choice_t *c);
static oar_stream_t *oar_state(sl_stream_t *st);
static void oar_push(sl_evs_t *out, sl_ev_type_e type, sl_str_t text, unsigned index);
static void oar_error(sl_stream_t *st, const sl_json_t *doc, int err, sl_evs_t *out);
static int64_t oar_int(const sl_json_t *doc, int v);


int
sl__openai_responses_build(sl_call_t *call, const char *model_name, const char *path,
                           const char *auth_name, const char *auth_value, sl_upstream_req_t *out)
{
    const sl_json_t *doc = call->native_doc;
    int model = sl_json_get(doc, SL_JSON_ROOT, "model");
    sl_str_t raw = sl_json_raw(doc, model);
    sl_http_header_t *h;
    sl_json_edit_t ed;
    sl_str_t body;
    size_t n = 0;

    if (sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT
        || sl_json_type(doc, model) != SL_JSON_STRING) {
        return SL_EPARSE;
    }
    ed.start = (size_t) (raw.p - call->native.p);
    ed.end = ed.start + raw.len;
    ed.text = (sl_str_t){ model_name, strlen(model_name) };
    ed.quote = true;
    if (sl_json_splice(call->pool, call->native, &ed, 1, &body) < 0) {
        return SL_EPARSE;
    }
    h = sl_palloc(call->pool, sizeof(*h) * (call->nheaders + 2));
    for (size_t i = 0; i < call->nheaders; i++) {
        h[n++] = call->headers[i];
    }
    h[n].name = sl_str_lit("content-type");
    h[n++].value = sl_str_lit("application/json");
    if (auth_name != NULL) {
        h[n].name = (sl_str_t){ auth_name, strlen(auth_name) };
        h[n].value = (sl_str_t){ auth_value, strlen(auth_value) };
        n++;
    }
    out->method = "POST";
    out->path = path;
    out->headers = h;
    out->nheaders = n;
    out->body = body.p;
    out->body_len = body.len;
    call->forwarded = true;
    return 0;
}


/* Responses usage -> sl_usage_t. */
static void
oar_usage(const sl_json_t *doc, int u, sl_usage_t *out)
{
    if (sl_json_type(doc, u) != SL_JSON_OBJECT) {
        return;
    }
    out->known = true;
    out->prompt_tokens = sl__adapter_uint(doc, sl_json_get(doc, u, "input_tokens"));
    out->completion_tokens = sl__adapter_uint(doc, sl_json_get(doc, u, "output_tokens"));
    out->cached_tokens =
        sl__adapter_uint(doc, sl_json_path(doc, u, "input_tokens_details.cached_tokens"));
    out->reasoning_tokens =
        sl__adapter_uint(doc, sl_json_path(doc, u, "output_tokens_details.reasoning_tokens"));
}


/* A response's status (and whether it called tools) -> a finish reason. */
static sl_finish_e
oar_finish(const sl_json_t *doc, int resp, bool tools)
{
    int status = sl_json_get(doc, resp, "status");
    int reason = sl_json_path(doc, resp, "incomplete_details.reason");
    sl_str_t s = sl_json_raw(doc, status);

    if (sl_json_type(doc, status) == SL_JSON_STRING && s.len == 12
        && memcmp(s.p, "\"incomplete\"", 12) == 0) {
        s = sl_json_raw(doc, reason);
        return s.len == 16 && memcmp(s.p, "\"content_filter\"", 16) == 0 ? SL_FINISH_CONTENT_FILTER
                                                                         : SL_FINISH_LENGTH;
    }
    return tools ? SL_FINISH_TOOL_CALLS : SL_FINISH_STOP;
}


/* One output item of a whole response into the choice (text, reasoning, calls). */
static void
oar_item(sl_call_t *call, const sl_json_t *doc, int item, sl_choice_t *c)
{
    sl_str_t type = sl_json_raw(doc, sl_json_get(doc, item, "type"));
    int list;

    if (sl_str_eq(type, "\"message\"")) {
        list = sl_json_get(doc, item, "content");
        for (int p = sl_json_first(doc, list); p >= 0; p = sl_json_next(doc, list, p)) {
            sl_str_t t = sl__adapter_literal(doc, sl_json_get(doc, p, "text"), NULL);

            if (t.len >= 2) {
                c->text = c->text.len == 0 ? t : sl_jstr_concat(call->pool, c->text, t);
            }
        }
    } else if (sl_str_eq(type, "\"reasoning\"")) {
        list = sl_json_get(doc, item, "summary");
        for (int p = sl_json_first(doc, list); p >= 0; p = sl_json_next(doc, list, p)) {
            sl_str_t t = sl__adapter_literal(doc, sl_json_get(doc, p, "text"), NULL);

            if (t.len > 2) {
                c->reasoning = sl_jstr_concat(call->pool, c->reasoning, t);
            }
        }
    } else if (sl_str_eq(type, "\"function_call\"")) {
        sl_tool_call_t *t = &c->tools[c->ntools];

        t->id = sl__adapter_literal(doc, sl_json_get(doc, item, "call_id"), NULL);
        t->name = sl__adapter_literal(doc, sl_json_get(doc, item, "name"), NULL);
        t->args = sl__adapter_literal(doc, sl_json_get(doc, item, "arguments"), NULL);
        if (t->id.len >= 2 && t->name.len >= 2) {
            c->ntools++;
        }
    }
}


int
sl__openai_responses_parse(sl_call_t *call, const sl_buf_t *body, sl_answer_t *out)
{
    sl_json_t *doc = sl_json_create(call->pool);
    sl_choice_t *c;
    bool skim;
    int output;

    out->raw = (sl_str_t){ body->p != NULL ? body->p : "", body->len };
    out->raw_api = SL_API_RESPONSES;
    /* an answer that goes on as these bytes is read for its usage: output is skimmed */
    skim = call->raw_answer && call->client_api == SL_API_RESPONSES;
    if (sl__adapter_parse_answer(doc, out->raw, skim) < 0
        || sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return SL_EUPSTREAM;
    }
    out->id = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "id"), NULL);
    out->model = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), NULL);
    out->created = oar_int(doc, sl_json_get(doc, SL_JSON_ROOT, "created_at"));
    if (out->created < 0) {
        out->created = 0;
    }
    oar_usage(doc, sl_json_get(doc, SL_JSON_ROOT, "usage"), &out->usage);
    if (skim) {
        return 0;
    }
    output = sl_json_get(doc, SL_JSON_ROOT, "output");
    c = sl_pcalloc(call->pool, sizeof(*c));
    c->tools = sl_pcalloc(call->pool, (sl_json_size(doc, output) + 1) * sizeof(sl_tool_call_t));
    for (int it = sl_json_first(doc, output); it >= 0; it = sl_json_next(doc, output, it)) {
        oar_item(call, doc, it, c);
    }
    c->finish = oar_finish(doc, SL_JSON_ROOT, c->ntools > 0);
    out->choices = c;
    out->nchoices = 1;
    return 0;
}


static oar_stream_t *
oar_state(sl_stream_t *st)
{
    oar_stream_t *s = st->priv;

    if (s == NULL) {
        s = sl_pcalloc(st->call->pool, sizeof(*s));
        s->doc = sl_json_create(st->call->pool);
        s->raw = sl__adapter_buf(st->call->pool);
        st->priv = s;
    }
    return s;
}


static void
oar_push(sl_evs_t *out, sl_ev_type_e type, sl_str_t text, unsigned index)
{
    sl_ev_t e;

    memset(&e, 0, sizeof(e));
    e.type = type;
    e.text = text;
    e.index = index;
    sl_evs_push(out, &e);
}


int
sl__openai_responses_stream(sl_stream_t *st, const sl_sse_event_t *ev, sl_evs_t *out)
{
    oar_stream_t *s = oar_state(st);
    sl_pool_t *pool = st->call->pool;
    const sl_json_t *doc = s->doc;
    bool pass = true;
    sl_str_t type;
    size_t len = 0;
    sl_ev_t e;

    sl_buf_clear(s->raw);
    out->raw = sl__adapter_buf_str(s->raw);
    out->raw_api = SL_API_RESPONSES;
    if (st->done || st->failed) {
        return 0;
    }
    if (sl_json_parse(s->doc, ev->data.p, ev->data.len, NULL) < 0
        || sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        sl__adapter_sse(s->raw, ev->event, ev->data);
        out->raw = sl__adapter_buf_str(s->raw);
        return 0;
    }
    type = sl_json_raw(doc, sl_json_get(doc, SL_JSON_ROOT, "type"));
    if (sl_str_eq(type, "\"response.created\"") && !s->started) {
        int resp = sl_json_get(doc, SL_JSON_ROOT, "response");
        int model = sl_json_get(doc, resp, "model");
        sl_str_t name;

        s->started = true;
        memset(&e, 0, sizeof(e));
        e.type = SL_EV_START;
        e.id = sl__adapter_keep(pool, sl__adapter_literal(doc, sl_json_get(doc, resp, "id"), NULL));
        e.name = sl__adapter_keep(pool, sl__adapter_literal(doc, model, NULL));
        sl_evs_push(out, &e);
        if (st->served_model == NULL && sl_json_string(doc, model, pool, &name) == 0) {
            st->served_model = sl_pstrndup(pool, name.p, name.len);
        }
    } else if (sl_str_eq(type, "\"response.output_text.delta\"")) {
        sl_str_t d = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "delta"), &len);

        if (d.len > 2) {
            oar_push(out, SL_EV_TEXT, sl__adapter_keep(pool, d), 0);
            st->content_bytes += len;
        }
    } else if (sl_str_eq(type, "\"response.reasoning_summary_text.delta\"")
               || sl_str_eq(type, "\"response.reasoning_text.delta\"")) {
        sl_str_t d = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "delta"), &len);

        if (d.len > 2) {
            oar_push(out, SL_EV_REASONING, sl__adapter_keep(pool, d), 0);
            st->content_bytes += len;
        }
    } else if (sl_str_eq(type, "\"response.output_item.added\"")) {
        int item = sl_json_get(doc, SL_JSON_ROOT, "item");

        if (sl_str_eq(sl_json_raw(doc, sl_json_get(doc, item, "type")), "\"function_call\"")) {
            memset(&e, 0, sizeof(e));
            e.type = SL_EV_TOOL_CALL;
            e.index = s->tools;
            e.id = sl__adapter_keep(
                pool, sl__adapter_literal(doc, sl_json_get(doc, item, "call_id"), NULL));
            e.name = sl__adapter_keep(
                pool, sl__adapter_literal(doc, sl_json_get(doc, item, "name"), NULL));
            if (e.name.len < 2) {
                e.name = sl_str_lit("\"\"");
            }
            sl_evs_push(out, &e);
            s->tool = s->tools++;
        }
    } else if (sl_str_eq(type, "\"response.function_call_arguments.delta\"")) {
        sl_str_t d = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "delta"), &len);

        if (d.len > 2 && s->tools > 0) {
            oar_push(out, SL_EV_TOOL_ARGS, sl__adapter_keep(pool, d), s->tool);
            st->content_bytes += len;
        }
    } else if (sl_str_eq(type, "\"response.completed\"")
               || sl_str_eq(type, "\"response.incomplete\"")) {
        int resp = sl_json_get(doc, SL_JSON_ROOT, "response");
        sl_usage_t *u = sl_palloc(pool, sizeof(*u));
        sl_buf_t framed = SL_BUF_INIT;

        oar_usage(doc, sl_json_get(doc, resp, "usage"), &st->usage);
        *u = st->usage;
        memset(&e, 0, sizeof(e));
        e.type = SL_EV_USAGE;
        e.usage = u;
        sl_evs_push(out, &e);
        memset(&e, 0, sizeof(e));
        e.type = SL_EV_FINISH;
        e.finish = oar_finish(doc, resp, s->tools > 0);
        sl_evs_push(out, &e);
        /* the closing event is the frontend's to write, after the ledger row */
        sl__adapter_sse(&framed, ev->event, ev->data);
        memset(&e, 0, sizeof(e));
        e.type = SL_EV_DONE;
        e.text = (sl_str_t){ sl_pstrndup(pool, framed.p, framed.len), framed.len };
        sl_evs_push(out, &e);
        sl_buf_free(&framed);
        st->done = true;
        pass = false;
    } else if (sl_str_eq(type, "\"response.failed\"")) {
        oar_error(st, doc, sl_json_path(doc, SL_JSON_ROOT, "response.error"), out);
        pass = false;
    } else if (sl_str_eq(type, "\"error\"")) {
        oar_error(st, doc, SL_JSON_ROOT, out);
        pass = false;
    }
    if (pass) {
        sl__adapter_sse(s->raw, ev->event, ev->data);
        out->raw = sl__adapter_buf_str(s->raw);
    }
    return 0;
}


/*
 * An error event (or a failed response's error: code and message) ->
 * SL_EV_ERROR: a rate limit or a server failure may be retried elsewhere
 * before the commit point.
 */
static void
oar_error(sl_stream_t *st, const sl_json_t *doc, int err, sl_evs_t *out)
{
    sl_pool_t *pool = st->call->pool;
    sl_error_t *e = sl_pcalloc(pool, sizeof(*e));
    sl_str_t s;
    sl_ev_t ev;

    e->status = 502;
    e->type = "api_error";
    e->retryable = true;
    e->message = "the provider reported an error in the stream";
    if (sl_json_string(doc, sl_json_get(doc, err, "message"), pool, &s) == 0) {
        e->message = sl_pstrndup(pool, s.p, s.len);
    }
    if (sl_json_string(doc, sl_json_get(doc, err, "code"), pool, &s) == 0) {
        e->code = sl_pstrndup(pool, s.p, s.len);
        if (sl_str_eq(s, "rate_limit_exceeded")) {
            e->status = 429;
            e->type = "rate_limit_error";
        } else if (sl_str_eq(s, "invalid_prompt") || sl_str_eq(s, "invalid_request_error")) {
            e->status = 400;
            e->type = "invalid_request_error";
            e->retryable = false;
        }
    }
    st->failed = true;
    memset(&ev, 0, sizeof(ev));
    ev.type = SL_EV_ERROR;
    ev.error = e;
    sl_evs_push(out, &ev);
}


static int64_t
oar_int(const sl_json_t *doc, int v)
{
    int64_t n;

    return sl_json_int(doc, v, &n) == 0 ? n : -1;
}
