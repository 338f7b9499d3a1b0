/*
 * Anthropic Messages API, the answer side of the adapter (anthropic.c
 * builds the requests and describes the mapping): a whole answer, the
 * events of a stream and errors, read with the token reader into the typed
 * answer and events of core/gateway/call.h, splicing the provider's own
 * JSON strings (checked first) so a text delta costs no DOM. For a native
 * Messages client the raw answer and events go back beside the typed ones.
 * Nothing here does I/O.
 */
#include "providers/anthropic_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"
#include "providers/adapter_internal.h"

/* Usage as last reported, field by field. */
typedef struct anthropic_usage {
    uint64_t input;          /* input_tokens: neither read from nor written to the cache */
    uint64_t cache_read;     /* cache_read_input_tokens */
    uint64_t cache_write;    /* cache_creation_input_tokens */
    uint64_t cache_write_1h; /* cache_creation.ephemeral_1h_input_tokens */
    uint64_t output;
} anthropic_usage_t;

/* Per-stream state, in the request pool (st->priv). */
typedef struct anthropic_stream {
    sl_json_t *doc; /* one reader for the whole stream */
    sl_buf_t *raw;  /* the current event as a Messages client gets it */
    anthropic_usage_t u;
    unsigned tools;      /* tool_use blocks so far: the next one's tool-call index */
    int64_t block;       /* Anthropic index of the open tool_use block, -1 for none */
    unsigned block_tool; /* its tool-call index */
    bool started;        /* SL_EV_START went out */
} anthropic_stream_t;

static sl_finish_e anthropic_finish(const sl_json_t *doc, int v);
static void anthropic_usage(const sl_json_t *doc, int usage, anthropic_usage_t *u, sl_usage_t *out);
static int anthropic_block(sl_call_t *call, const sl_json_t *doc, int b, sl_choice_t *c);
static anthropic_stream_t *anthropic_stream_state(sl_stream_t *st);
static sl_ev_t *anthropic_push(sl_evs_t *out, sl_ev_type_e type);
static void anthropic_push_usage(sl_stream_t *st, sl_evs_t *out);
static void anthropic_push_text(sl_stream_t *st, anthropic_stream_t *s, int v, sl_ev_type_e type,
                                unsigned index, sl_evs_t *out);
static void anthropic_push_signature(sl_stream_t *st, anthropic_stream_t *s, int v, sl_evs_t *out);
static void anthropic_on_message_start(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out);
static void anthropic_on_block_start(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out);
static void anthropic_on_block_delta(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out);
static void anthropic_on_message_delta(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out);
static void anthropic_on_error(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out);
static sl_str_t anthropic_name(const sl_json_t *doc, int v);
static int64_t anthropic_int(const sl_json_t *doc, int v, int64_t dflt);
static uint64_t anthropic_count(const sl_json_t *doc, int v, uint64_t dflt);
static const char *anthropic_error_type(const char *anthropic_type);


/*
 * Anthropic's stop_reason (a string token) -> sl_finish_e. Absent or
 * unknown: SL_FINISH_STOP (end_turn and reasons added later).
 */
static sl_finish_e
anthropic_finish(const sl_json_t *doc, int v)
{
    sl_str_t r = anthropic_name(doc, v);

    if (sl_str_eq(r, "max_tokens") || sl_str_eq(r, "model_context_window_exceeded")) {
        return SL_FINISH_LENGTH;
    }
    if (sl_str_eq(r, "tool_use")) {
        return SL_FINISH_TOOL_CALLS;
    }
    if (sl_str_eq(r, "refusal")) {
        return SL_FINISH_CONTENT_FILTER;
    }
    if (sl_str_eq(r, "stop_sequence")) {
        return SL_FINISH_STOP_SEQUENCE;
    }
    if (sl_str_eq(r, "pause_turn")) {
        return SL_FINISH_PAUSE;
    }
    return SL_FINISH_STOP;
}


/*
 * The usage members present in usage into the running counts u (a stream's
 * message_delta repeats only some of them), then the sum into out: every
 * input token is a prompt token (cache reads and writes included).
 */
static void
anthropic_usage(const sl_json_t *doc, int usage, anthropic_usage_t *u, sl_usage_t *out)
{
    if (sl_json_type(doc, usage) != SL_JSON_OBJECT) {
        return;
    }
    u->input = anthropic_count(doc, sl_json_get(doc, usage, "input_tokens"), u->input);
    u->cache_read =
        anthropic_count(doc, sl_json_get(doc, usage, "cache_read_input_tokens"), u->cache_read);
    u->cache_write = anthropic_count(doc, sl_json_get(doc, usage, "cache_creation_input_tokens"),
                                     u->cache_write);
    u->cache_write_1h =
        anthropic_count(doc, sl_json_path(doc, usage, "cache_creation.ephemeral_1h_input_tokens"),
                        u->cache_write_1h);
    u->output = anthropic_count(doc, sl_json_get(doc, usage, "output_tokens"), u->output);
    out->known = true;
    out->prompt_tokens = u->input + u->cache_read + u->cache_write;
    out->completion_tokens = u->output;
    out->cached_tokens = u->cache_read;
    out->cache_write_tokens = u->cache_write;
    out->cache_write_1h_tokens = u->cache_write_1h;
}


/*
 * A Messages answer -> the typed answer (one choice), read with the token
 * reader: text blocks joined, thinking blocks as reasoning (joined; the
 * last block's signature), tool_use blocks as tool calls (the input's JSON
 * text as the arguments), server tool and redacted thinking blocks left to
 * raw. raw is the body, for a Messages client. SL_EUPSTREAM for a body that
 * is not a JSON object, or a block whose strings jansson would refuse.
 */
int
sl__anthropic_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                             sl_answer_t *out)
{
    sl_json_t *doc = sl_json_create(call->pool);
    anthropic_usage_t u;
    sl_choice_t *c;
    bool skim;
    int content;
    int n;

    (void) conf;
    out->raw = (sl_str_t){ body->p != NULL ? body->p : "", body->len };
    out->raw_api = SL_API_MESSAGES;
    /* an answer that goes on as these bytes is read for its usage: content is skimmed */
    skim = call->raw_answer && call->client_api == SL_API_MESSAGES;
    if (sl__adapter_parse_answer(doc, out->raw, skim) < 0
        || sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return SL_EUPSTREAM;
    }
    out->id = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "id"), NULL);
    out->model = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), NULL);
    memset(&u, 0, sizeof(u));
    anthropic_usage(doc, sl_json_get(doc, SL_JSON_ROOT, "usage"), &u, &out->usage);
    if (skim) {
        return 0;
    }

    c = sl_pcalloc(call->pool, sizeof(*c));
    out->choices = c;
    out->nchoices = 1;
    c->finish = anthropic_finish(doc, sl_json_get(doc, SL_JSON_ROOT, "stop_reason"));
    content = sl_json_get(doc, SL_JSON_ROOT, "content");
    if (sl_json_type(doc, content) != SL_JSON_ARRAY) {
        return 0;
    }
    n = 0;
    for (int b = sl_json_first(doc, content); b >= 0; b = sl_json_next(doc, content, b)) {
        n += sl_str_eq(anthropic_name(doc, sl_json_get(doc, b, "type")), "tool_use");
    }
    if (n > 0) {
        c->tools = sl_pcalloc(call->pool, (size_t) n * sizeof(sl_tool_call_t));
    }
    c->parts = sl_pcalloc(call->pool, (sl_json_size(doc, content) + 1) * sizeof(sl_part_t));
    for (int b = sl_json_first(doc, content); b >= 0; b = sl_json_next(doc, content, b)) {
        if (anthropic_block(call, doc, b, c) < 0) {
            return SL_EUPSTREAM;
        }
    }
    return 0;
}


/* One content block of an answer into c. SL_EPARSE for strings jansson would refuse. */
static int
anthropic_block(sl_call_t *call, const sl_json_t *doc, int b, sl_choice_t *c)
{
    sl_str_t type = anthropic_name(doc, sl_json_get(doc, b, "type"));
    int v;

    if (sl_str_eq(type, "text")) {
        v = sl_json_get(doc, b, "text");
        if (sl_json_type(doc, v) != SL_JSON_STRING) {
            return 0;
        }
        if (sl__adapter_literal(doc, v, NULL).p == NULL) {
            return SL_EPARSE;
        }
        /* an empty first block still makes the content "", not null */
        c->text = c->text.len == 0 ? sl_json_raw(doc, v)
                                   : sl_jstr_concat(call->pool, c->text, sl_json_raw(doc, v));
        c->parts[c->nparts++] = (sl_part_t){ SL_PART_TEXT, sl_json_raw(doc, v), sl_str_null, 0 };
        return 0;
    }
    if (sl_str_eq(type, "thinking")) {
        sl_str_t text = sl__adapter_literal(doc, sl_json_get(doc, b, "thinking"), NULL);
        sl_str_t sig = sl__adapter_literal(doc, sl_json_get(doc, b, "signature"), NULL);

        if (text.len > 2) {
            c->reasoning = sl_jstr_concat(call->pool, c->reasoning, text);
        }
        if (sig.len > 2) {
            c->signature = sig; /* byte for byte, as Anthropic wrote it */
        }
        c->parts[c->nparts++] = (sl_part_t){ SL_PART_REASONING, text, sig, 0 };
        return 0;
    }
    if (sl_str_eq(type, "redacted_thinking")) {
        sl_str_t data = sl__adapter_literal(doc, sl_json_get(doc, b, "data"), NULL);

        if (data.len > 2) {
            c->parts[c->nparts++] = (sl_part_t){ SL_PART_REDACTED, data, sl_str_null, 0 };
        }
        return 0;
    }
    if (sl_str_eq(type, "tool_use")) {
        sl_tool_call_t *t = &c->tools[c->ntools];
        int input = sl_json_get(doc, b, "input");

        t->id = sl__adapter_literal(doc, sl_json_get(doc, b, "id"), NULL);
        t->name = sl__adapter_literal(doc, sl_json_get(doc, b, "name"), NULL);
        if (t->id.len == 0) {
            t->id = sl_str_lit("\"\"");
        }
        if (t->name.len == 0) {
            t->name = sl_str_lit("\"\"");
        }
        if (input < 0) {
            t->args = sl_str_lit("\"{}\"");
        } else if (sl__adapter_json_literal(call->pool, doc, input, &t->args) < 0) {
            return SL_EPARSE;
        }
        c->parts[c->nparts++] = (sl_part_t){ SL_PART_TOOL, sl_str_null, sl_str_null, c->ntools };
        c->ntools++;
    }
    /* server tools, citations: carried by raw only */
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
        if (st->call->client_api == SL_API_MESSAGES) {
            s->raw = sl__adapter_buf(st->call->pool);
        }
        st->priv = s;
    }
    return s;
}


/*
 * One Anthropic event -> typed events. The event's own "type" member names
 * it (the SSE event: line says the same). A Messages client gets the event
 * raw as it came, but for message_stop (the frontend's encode_end writes
 * it) and error (the driver decides what the client sees). Parts that are
 * not what they claim give no typed event.
 */
int
sl__anthropic_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                           sl_evs_t *out)
{
    anthropic_stream_t *s = anthropic_stream_state(st);
    bool pass = true;
    sl_str_t type;

    (void) conf;
    if (s->raw != NULL) {
        sl_buf_clear(s->raw);
        out->raw = sl__adapter_buf_str(s->raw);
        out->raw_api = SL_API_MESSAGES;
    }
    if (st->failed || st->done) {
        return 0;
    }
    if (sl_json_parse(s->doc, ev->data.p, ev->data.len, NULL) == 0
        && sl_json_type(s->doc, SL_JSON_ROOT) == SL_JSON_OBJECT) {
        type = anthropic_name(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "type"));
        if (type.p == NULL) {
            type = ev->event;
        }
        if (sl_str_eq(type, "message_start")) {
            anthropic_on_message_start(st, s, out);
        } else if (sl_str_eq(type, "content_block_start")) {
            anthropic_on_block_start(st, s, out);
        } else if (sl_str_eq(type, "content_block_delta")) {
            anthropic_on_block_delta(st, s, out);
        } else if (sl_str_eq(type, "content_block_stop")) {
            if (anthropic_int(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "index"), -2) == s->block) {
                s->block = -1;
            }
        } else if (sl_str_eq(type, "message_delta")) {
            anthropic_on_message_delta(st, s, out);
        } else if (sl_str_eq(type, "message_stop")) {
            anthropic_push(out, SL_EV_DONE);
            st->done = true;
            pass = false;
        } else if (sl_str_eq(type, "error")) {
            anthropic_on_error(st, s, out);
            pass = false;
        }
        /* ping and event types added later: nothing typed */
    }
    if (s->raw != NULL && pass) {
        sl__adapter_sse(s->raw, ev->event, ev->data);
        out->raw = sl__adapter_buf_str(s->raw);
    }
    return 0;
}


/* Pushes an event of type with nothing else set; returns it for the caller to fill. */
static sl_ev_t *
anthropic_push(sl_evs_t *out, sl_ev_type_e type)
{
    sl_ev_t e;

    memset(&e, 0, sizeof(e));
    e.type = type;
    sl_evs_push(out, &e);
    return &out->v[out->n - 1];
}


/* A USAGE event with the counts so far (a copy in the pool). */
static void
anthropic_push_usage(sl_stream_t *st, sl_evs_t *out)
{
    sl_usage_t *u = sl_palloc(st->call->pool, sizeof(*u));

    *u = st->usage;
    anthropic_push(out, SL_EV_USAGE)->usage = u;
}


/* A TEXT, REASONING or TOOL_ARGS event of string v (nothing for an empty or refused one). */
static void
anthropic_push_text(sl_stream_t *st, anthropic_stream_t *s, int v, sl_ev_type_e type,
                    unsigned index, sl_evs_t *out)
{
    size_t len;
    sl_str_t lit = sl__adapter_literal(s->doc, v, &len);
    sl_ev_t *e;

    if (lit.len <= 2) {
        return;
    }
    st->content_bytes += len;
    e = anthropic_push(out, type);
    e->text = sl__adapter_keep(st->call->pool, lit);
    e->index = index;
}


static void
anthropic_on_message_start(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out)
{
    sl_pool_t *pool = st->call->pool;
    int msg = sl_json_get(s->doc, SL_JSON_ROOT, "message");
    int model = sl_json_get(s->doc, msg, "model");
    sl_ev_t *e;
    sl_str_t name;

    if (!s->started) {
        s->started = true;
        e = anthropic_push(out, SL_EV_START);
        e->id = sl__adapter_keep(pool,
                                 sl__adapter_literal(s->doc, sl_json_get(s->doc, msg, "id"), NULL));
        e->name = sl__adapter_keep(pool, sl__adapter_literal(s->doc, model, NULL));
        if (st->served_model == NULL && e->name.len > 0
            && sl_json_string(s->doc, model, pool, &name) == 0) {
            st->served_model = sl_pstrndup(pool, name.p, name.len);
        }
    }
    if (sl_json_type(s->doc, sl_json_get(s->doc, msg, "usage")) == SL_JSON_OBJECT) {
        anthropic_usage(s->doc, sl_json_get(s->doc, msg, "usage"), &s->u, &st->usage);
        anthropic_push_usage(st, out);
    }
}


static void
anthropic_on_block_start(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out)
{
    sl_pool_t *pool = st->call->pool;
    int cb = sl_json_get(s->doc, SL_JSON_ROOT, "content_block");
    sl_str_t type = anthropic_name(s->doc, sl_json_get(s->doc, cb, "type"));
    int input;
    sl_str_t id;
    sl_str_t name;
    sl_str_t args;
    sl_ev_t *e;

    if (sl_str_eq(type, "text")) {
        anthropic_push_text(st, s, sl_json_get(s->doc, cb, "text"), SL_EV_TEXT, 0, out);
        return;
    }
    if (sl_str_eq(type, "thinking")) {
        anthropic_push_text(st, s, sl_json_get(s->doc, cb, "thinking"), SL_EV_REASONING, 0, out);
        anthropic_push_signature(st, s, sl_json_get(s->doc, cb, "signature"), out);
        return;
    }
    id = sl__adapter_literal(s->doc, sl_json_get(s->doc, cb, "id"), NULL);
    name = sl__adapter_literal(s->doc, sl_json_get(s->doc, cb, "name"), NULL);
    if (sl_str_eq(type, "redacted_thinking")) {
        sl_str_t data = sl__adapter_literal(s->doc, sl_json_get(s->doc, cb, "data"), NULL);

        if (data.len > 2) {
            anthropic_push(out, SL_EV_REDACTED)->text = sl__adapter_keep(pool, data);
        }
        return;
    }
    if (!sl_str_eq(type, "tool_use") || id.len < 2 || name.len < 2) {
        return; /* server tools: raw only */
    }
    s->block = anthropic_int(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "index"), -1);
    s->block_tool = s->tools++;
    e = anthropic_push(out, SL_EV_TOOL_CALL);
    e->index = s->block_tool;
    e->id = sl__adapter_keep(pool, id);
    e->name = sl__adapter_keep(pool, name);
    /* the input comes as input_json_delta; one given whole at the start is its arguments */
    input = sl_json_get(s->doc, cb, "input");
    if (sl_json_size(s->doc, input) > 0
        && sl__adapter_json_literal(pool, s->doc, input, &args) == 0) {
        e = anthropic_push(out, SL_EV_TOOL_ARGS);
        e->index = s->block_tool;
        e->text = args;
        st->content_bytes += args.len - 2;
    }
}


/* A REASONING event with signature v alone (nothing for an empty one). */
static void
anthropic_push_signature(sl_stream_t *st, anthropic_stream_t *s, int v, sl_evs_t *out)
{
    sl_str_t lit = sl__adapter_literal(s->doc, v, NULL);

    if (lit.len <= 2) {
        return;
    }
    anthropic_push(out, SL_EV_REASONING)->signature = sl__adapter_keep(st->call->pool, lit);
}


static void
anthropic_on_block_delta(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out)
{
    int d = sl_json_get(s->doc, SL_JSON_ROOT, "delta");
    sl_str_t type = anthropic_name(s->doc, sl_json_get(s->doc, d, "type"));

    if (sl_str_eq(type, "text_delta")) {
        anthropic_push_text(st, s, sl_json_get(s->doc, d, "text"), SL_EV_TEXT, 0, out);
    } else if (sl_str_eq(type, "thinking_delta")) {
        anthropic_push_text(st, s, sl_json_get(s->doc, d, "thinking"), SL_EV_REASONING, 0, out);
    } else if (sl_str_eq(type, "signature_delta")) {
        anthropic_push_signature(st, s, sl_json_get(s->doc, d, "signature"), out);
    } else if (sl_str_eq(type, "input_json_delta") && s->block >= 0
               && anthropic_int(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "index"), -1)
                      == s->block) {
        anthropic_push_text(st, s, sl_json_get(s->doc, d, "partial_json"), SL_EV_TOOL_ARGS,
                            s->block_tool, out);
    }
    /* citations, or a delta for no open tool block: nothing typed */
}


static void
anthropic_on_message_delta(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out)
{
    int reason = sl_json_path(s->doc, SL_JSON_ROOT, "delta.stop_reason");

    if (sl_json_type(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "usage")) == SL_JSON_OBJECT) {
        anthropic_usage(s->doc, sl_json_get(s->doc, SL_JSON_ROOT, "usage"), &s->u, &st->usage);
        anthropic_push_usage(st, out);
    }
    if (sl_json_type(s->doc, reason) == SL_JSON_STRING) {
        anthropic_push(out, SL_EV_FINISH)->finish = anthropic_finish(s->doc, reason);
    }
}


/*
 * {"type":"error","error":{"type":…,"message":…}} -> SL_EV_ERROR: the
 * provider's message, OpenAI's type for Anthropic's (Anthropic's as the
 * code), the status map_error would give it, retryable when Anthropic was
 * overloaded or failed (overloaded_error, api_error).
 */
static void
anthropic_on_error(sl_stream_t *st, anthropic_stream_t *s, sl_evs_t *out)
{
    sl_pool_t *pool = st->call->pool;
    int err = sl_json_get(s->doc, SL_JSON_ROOT, "error");
    sl_error_t *e = sl_pcalloc(pool, sizeof(*e));
    sl_str_t v;

    e->status = 502;
    e->type = "api_error";
    e->message = "the provider reported an error in the stream";
    e->retryable = true;
    if (sl_json_string(s->doc, sl_json_get(s->doc, err, "type"), pool, &v) == 0) {
        const char *t = sl_pstrndup(pool, v.p, v.len);

        e->code = t;
        e->type = anthropic_error_type(t);
        e->retryable = strcmp(t, "overloaded_error") == 0 || strcmp(t, "api_error") == 0;
        if (strcmp(t, "overloaded_error") == 0) {
            e->status = 503;
        } else if (strcmp(t, "rate_limit_error") == 0) {
            e->status = 429;
        } else if (strcmp(e->type, "invalid_request_error") == 0) {
            e->status = 400;
        }
    }
    if (sl_json_string(s->doc, sl_json_get(s->doc, err, "message"), pool, &v) == 0) {
        e->message = sl_pstrndup(pool, v.p, v.len);
    }
    st->failed = true;
    anthropic_push(out, SL_EV_ERROR)->error = e;
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


/* A token count v, or dflt when v is absent or not a count. */
static uint64_t
anthropic_count(const sl_json_t *doc, int v, uint64_t dflt)
{
    return (uint64_t) anthropic_int(doc, v, (int64_t) dflt);
}


/*
 * {"type":"error","error":{"type":…,"message":…}} and the status -> OpenAI
 * error. The provider's message is kept except for authentication failures
 * (it may quote the gateway's key). Retry-After is read by the core.
 */
int
sl__anthropic_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
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
