/*
 * The OpenAI frontends: POST /v1/chat/completions and POST /v1/embeddings.
 * The client's body already is the internal request, so decoding only reads
 * and checks it with the token reader (no DOM), and an answer from an
 * OpenAI-shaped provider goes back as the provider's bytes (raw). Answers
 * and events from other wire formats are encoded as chat.completion and
 * chat.completion.chunk objects.
 */
#include "core/gateway/frontend_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/base/errno.h"

/* Top-level keys of a client body that the frontend reads; none may repeat. */
enum {
    CHAT_KEY_MODEL = 0,
    CHAT_KEY_MESSAGES,
    CHAT_KEY_STREAM,
    CHAT_KEY_STREAM_OPTIONS,
    CHAT_KEY_INPUT,
    CHAT_KEY_MAX_COMPLETION_TOKENS,
    CHAT_KEY_MAX_TOKENS,
    CHAT_NKEYS
};

/* Stream encoder state of one attempt. */
typedef struct chat_stream {
    const sl_call_t *call;
    sl_str_t id;    /* literal */
    sl_str_t model; /* literal */
    int64_t created;
    sl_str_t head; /* "data: {...,"model":M": built once, at the first chunk */
    sl_usage_t usage;
    bool started; /* the role chunk went out */
    bool raw;     /* the provider's own chunks are going out */
} chat_stream_t;

static int chat_decode(sl_call_t *call, sl_str_t body, sl_error_t *err);
static int embeddings_decode(sl_call_t *call, sl_str_t body, sl_error_t *err);
static int chat_read(sl_call_t *call, sl_str_t body, sl_api_e api, sl_error_t *err);
static int chat_parse_error(sl_call_t *call, sl_str_t body, const sl_json_error_t *jerr,
                            const char *why, sl_error_t *err);
static const char *chat_model(const sl_call_t *call);
static int chat_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out);
static int embeddings_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out);
static void chat_usage(sl_buf_t *out, const sl_usage_t *u);
static void *chat_stream_open(const sl_call_t *call);
static int chat_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out);
static void chat_chunk_open(chat_stream_t *s, sl_buf_t *out);
static void chat_chunk_close(sl_buf_t *out, const char *finish);
static void chat_choice_open(sl_buf_t *out, unsigned index);
static int chat_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out);
static int chat_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out);
static int chat_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out);
static void chat_error_object(sl_buf_t *out, const sl_error_t *e);
static void chat_quote_or_null(sl_buf_t *out, const char *s);
static sl_str_t chat_literal(sl_str_t lit, const char *dflt, sl_pool_t *pool);

static const char *const chat_keys[CHAT_NKEYS] = {
    "model", "messages", "stream", "stream_options", "input", "max_completion_tokens", "max_tokens",
};

static const char *const chat_key_include_usage = "include_usage";

const sl_frontend_t sl__frontend_chat = {
    .name = "chat",
    .api = SL_API_CHAT,
    .decode = chat_decode,
    .model = chat_model,
    .encode_answer = chat_encode_answer,
    .stream_open = chat_stream_open,
    .encode_events = chat_encode_events,
    .encode_end = chat_encode_end,
    .encode_stream_error = chat_encode_stream_error,
    .encode_error = chat_encode_error,
};

const sl_frontend_t sl__frontend_embeddings = {
    .name = "embeddings",
    .api = SL_API_EMBEDDINGS,
    .decode = embeddings_decode,
    .model = chat_model,
    .encode_answer = embeddings_encode_answer,
    .stream_open = NULL,
    .encode_events = NULL,
    .encode_end = NULL,
    .encode_stream_error = NULL,
    .encode_error = chat_encode_error,
};


static int
chat_decode(sl_call_t *call, sl_str_t body, sl_error_t *err)
{
    return chat_read(call, body, SL_API_CHAT, err);
}


static int
embeddings_decode(sl_call_t *call, sl_str_t body, sl_error_t *err)
{
    return chat_read(call, body, SL_API_EMBEDDINGS, err);
}


int
sl__frontend_read_chat(sl_call_t *call, sl_str_t body, sl_error_t *err)
{
    return chat_read(call, body, SL_API_CHAT, err);
}


/* A 400 invalid_request_error for the client. Returns SL_EPARSE. */
int
sl__frontend_bad_request(sl_error_t *err, const char *code, const char *param, const char *message)
{
    memset(err, 0, sizeof(*err));
    err->status = 400;
    err->type = "invalid_request_error";
    err->code = code;
    err->param = param;
    err->message = message;
    return SL_EPARSE;
}


/*
 * Reads and checks an OpenAI body without building a DOM (the passthrough
 * forwards the bytes), with the messages the gateway gave when it parsed
 * with jansson.
 */
static int
chat_read(sl_call_t *call, sl_str_t body, sl_api_e api, sl_error_t *err)
{
    sl_json_error_t jerr;
    sl_json_t *doc;
    sl_str_t model = sl_str_null;
    int v[CHAT_NKEYS];
    int usage = -1;
    int64_t n = 0;
    int64_t limit;
    int rc;

    if (body.len == 0) {
        return sl__frontend_bad_request(err, NULL, NULL,
                                        "The request body is empty. Send a JSON object.");
    }
    doc = sl_json_create(call->pool);
    if (sl_json_parse(doc, body.p, body.len, &jerr) < 0) {
        return chat_parse_error(call, body, &jerr, NULL, err);
    }
    switch (sl_json_type(doc, SL_JSON_ROOT)) {
    case SL_JSON_OBJECT:
        break;
    case SL_JSON_ARRAY:
        return sl__frontend_bad_request(err, NULL, NULL, "The request body must be a JSON object.");
    default:
        /* jansson, as the gateway called it, takes only an object or an array */
        return chat_parse_error(call, body, NULL, "'[' or '{' expected", err);
    }

    /*
     * What jansson refused while parsing is refused before any field is
     * checked: a repeated key (an ambiguous model is a routing and billing
     * hazard), a string it would not decode, an integer too big.
     */
    if (sl_json_lookup(doc, SL_JSON_ROOT, chat_keys, CHAT_NKEYS, v) < 0
        || sl_json_lookup(doc, v[CHAT_KEY_STREAM_OPTIONS], &chat_key_include_usage, 1, &usage)
               < 0) {
        return chat_parse_error(call, body, NULL, "duplicate object key", err);
    }
    if (sl_json_type(doc, v[CHAT_KEY_MODEL]) == SL_JSON_STRING
        && sl_json_string(doc, v[CHAT_KEY_MODEL], call->pool, &model) < 0) {
        return chat_parse_error(call, body, NULL, "invalid string", err);
    }
    rc = sl_json_int(doc, v[CHAT_KEY_MAX_COMPLETION_TOKENS], &n);
    if (rc == SL_ETOOBIG || sl_json_int(doc, v[CHAT_KEY_MAX_TOKENS], &limit) == SL_ETOOBIG) {
        return chat_parse_error(call, body, NULL, "too big integer", err);
    }
    if (rc != 0) {
        /* max_completion_tokens, when it is an integer, wins (even at 0) */
        rc = sl_json_int(doc, v[CHAT_KEY_MAX_TOKENS], &n);
    }
    call->max_tokens = rc == 0 && n > 0 ? (uint64_t) n : 0;

    if (model.len == 0) {
        bool missing = v[CHAT_KEY_MODEL] < 0;

        return sl__frontend_bad_request(
            err, missing ? "missing_required_parameter" : "invalid_type", "model",
            missing ? "You must provide a model parameter."
                    : "Invalid type for 'model': expected a non-empty string.");
    }
    if (!sl_http_is_field_value(model)) {
        /* it would reach the x-sluice-model header (and the upstream request) */
        return sl__frontend_bad_request(err, "invalid_value", "model",
                                        "Invalid 'model': control characters are not allowed.");
    }
    if (api == SL_API_CHAT) {
        int m = v[CHAT_KEY_MESSAGES];
        sl_json_type_e st = sl_json_type(doc, v[CHAT_KEY_STREAM]);

        if (sl_json_type(doc, m) != SL_JSON_ARRAY || sl_json_size(doc, m) == 0) {
            return sl__frontend_bad_request(
                err, m < 0 ? "missing_required_parameter" : "invalid_type", "messages",
                m < 0 ? "Missing required parameter: 'messages'."
                      : "Invalid type for 'messages': expected a non-empty array.");
        }
        if (st != SL_JSON_NONE && st != SL_JSON_TRUE && st != SL_JSON_FALSE && st != SL_JSON_NULL) {
            return sl__frontend_bad_request(err, "invalid_type", "stream",
                                            "Invalid type for 'stream': expected a boolean.");
        }
        call->stream = st == SL_JSON_TRUE;
        call->client_wants_usage = sl_json_is_true(doc, usage);
    } else {
        int in = v[CHAT_KEY_INPUT];
        sl_json_type_e t = sl_json_type(doc, in);

        if (t != SL_JSON_STRING && t != SL_JSON_ARRAY) {
            return sl__frontend_bad_request(
                err, in < 0 ? "missing_required_parameter" : "invalid_type", "input",
                in < 0 ? "Missing required parameter: 'input'."
                       : "Invalid type for 'input': expected a string or an array.");
        }
        call->stream = false;
    }
    call->api = api;
    call->raw = body;
    call->doc = doc;
    call->model = v[CHAT_KEY_MODEL];
    call->stream_options = v[CHAT_KEY_STREAM_OPTIONS];
    if (call->native.p == NULL) {
        call->native = body;
        call->native_doc = doc;
    }
    return 0;
}


/*
 * The 400 for a body that is not JSON: the reader's reason and position
 * (jerr), or why without a position. No second parse with jansson for its
 * wording: on a hostile body that held the worker ~0.4 s per MiB.
 */
static int
chat_parse_error(sl_call_t *call, sl_str_t body, const sl_json_error_t *jerr, const char *why,
                 sl_error_t *err)
{
    const char *msg;

    (void) body;
    if (jerr != NULL) {
        msg = sl_psprintf(call->pool,
                          "We could not parse the JSON body of your request: %s "
                          "(line %u, column %u).",
                          jerr->text, jerr->line, jerr->column);
    } else {
        msg = sl_psprintf(call->pool, "We could not parse the JSON body of your request: %s.", why);
    }
    return sl__frontend_bad_request(err, NULL, NULL, msg);
}


static const char *
chat_model(const sl_call_t *call)
{
    sl_str_t s;

    if (sl_json_string(call->doc, call->model, call->pool, &s) < 0) {
        return NULL;
    }
    return sl_pstrndup(call->pool, s.p, s.len);
}


/* lit, or dflt quoted when lit is empty. */
static sl_str_t
chat_literal(sl_str_t lit, const char *dflt, sl_pool_t *pool)
{
    if (lit.len >= 2) {
        return lit;
    }
    return sl_jstr_quote(pool, (sl_str_t){ dflt, strlen(dflt) });
}


static int
chat_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out)
{
    sl_str_t id;
    sl_str_t model;

    if (a->raw.p != NULL && a->raw_api == SL_API_CHAT) {
        sl_buf_append(out, a->raw.p, a->raw.len);
        return 0;
    }
    id = chat_literal(a->id, "", call->pool);
    model = chat_literal(a->model, call->target != NULL ? call->target->model : "", call->pool);
    sl_buf_puts(out, "{\"id\":");
    sl_buf_append(out, id.p, id.len);
    sl_buf_puts(out, ",\"object\":\"chat.completion\",\"created\":");
    sl_buf_put_i64(out, (long long) (a->created != 0 ? a->created : (int64_t) time(NULL)));
    sl_buf_puts(out, ",\"model\":");
    sl_buf_append(out, model.p, model.len);
    sl_buf_puts(out, ",\"choices\":[");
    for (size_t i = 0; i < a->nchoices; i++) {
        const sl_choice_t *c = &a->choices[i];
        const char *finish = sl_finish_openai(c->finish);

        sl_buf_puts(out, i > 0 ? ",{\"index\":" : "{\"index\":");
        sl_buf_put_u64(out, c->index);
        sl_buf_puts(out, ",\"message\":{\"role\":\"assistant\",\"content\":");
        if (c->text.len >= 2) {
            sl_buf_append(out, c->text.p, c->text.len);
        } else {
            sl_buf_puts(out, "null");
        }
        if (c->ntools > 0) {
            sl_buf_puts(out, ",\"tool_calls\":[");
            for (size_t k = 0; k < c->ntools; k++) {
                const sl_tool_call_t *t = &c->tools[k];

                sl_buf_puts(out, k > 0 ? ",{\"id\":" : "{\"id\":");
                sl_buf_append(out, t->id.p, t->id.len);
                sl_buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
                sl_buf_append(out, t->name.p, t->name.len);
                sl_buf_puts(out, ",\"arguments\":");
                if (t->args.len >= 2) {
                    sl_buf_append(out, t->args.p, t->args.len);
                } else {
                    sl_buf_puts(out, "\"{}\"");
                }
                sl_buf_puts(out, "}}");
            }
            sl_buf_puts(out, "]");
        }
        sl_buf_puts(out, "},\"logprobs\":null,\"finish_reason\":");
        chat_quote_or_null(out, finish);
        sl_buf_puts(out, "}");
    }
    sl_buf_puts(out, "]");
    if (a->usage.known) {
        sl_buf_puts(out, ",\"usage\":");
        chat_usage(out, &a->usage);
    }
    sl_buf_puts(out, "}");
    return 0;
}


/* Embeddings answers travel as the provider's bytes. */
static int
embeddings_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out)
{
    (void) call;
    if (a->raw.p == NULL || a->raw_api != SL_API_EMBEDDINGS) {
        return SL_EPARSE;
    }
    sl_buf_append(out, a->raw.p, a->raw.len);
    return 0;
}


static void
chat_usage(sl_buf_t *out, const sl_usage_t *u)
{
    sl_buf_puts(out, "{\"prompt_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) u->prompt_tokens);
    sl_buf_puts(out, ",\"completion_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) u->completion_tokens);
    sl_buf_puts(out, ",\"total_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) (u->prompt_tokens + u->completion_tokens));
    sl_buf_puts(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    sl_buf_put_u64(out, (unsigned long long) u->cached_tokens);
    sl_buf_puts(out, "}");
    if (u->reasoning_tokens > 0) {
        sl_buf_puts(out, ",\"completion_tokens_details\":{\"reasoning_tokens\":");
        sl_buf_put_u64(out, (unsigned long long) u->reasoning_tokens);
        sl_buf_puts(out, "}");
    }
    sl_buf_puts(out, "}");
}


static void *
chat_stream_open(const sl_call_t *call)
{
    chat_stream_t *s = sl_pcalloc(call->pool, sizeof(*s));

    s->call = call;
    s->created = (int64_t) time(NULL);
    return s;
}


static void
chat_chunk_open(chat_stream_t *s, sl_buf_t *out)
{
    if (s->head.p == NULL) {
        /* the chunks' common prefix, formatted once per stream */
        sl_buf_t b = SL_BUF_INIT;
        char *p;

        if (s->id.p == NULL) {
            s->id = chat_literal(sl_str_null, "", s->call->pool);
        }
        if (s->model.p == NULL) {
            s->model = chat_literal(
                sl_str_null, s->call->target != NULL ? s->call->target->model : "", s->call->pool);
        }
        sl_buf_puts(&b, "data: {\"id\":");
        sl_buf_append(&b, s->id.p, s->id.len);
        sl_buf_puts(&b, ",\"object\":\"chat.completion.chunk\",\"created\":");
        sl_buf_put_i64(&b, (long long) s->created);
        sl_buf_puts(&b, ",\"model\":");
        sl_buf_append(&b, s->model.p, s->model.len);
        p = sl_palloc(s->call->pool, b.len);
        memcpy(p, b.p, b.len);
        s->head = (sl_str_t){ p, b.len };
        sl_buf_free(&b);
    }
    sl_buf_append(out, s->head.p, s->head.len);
}


/* ,"choices":[{"index":N,"delta": */
static void
chat_choice_open(sl_buf_t *out, unsigned index)
{
    sl_buf_puts(out, ",\"choices\":[{\"index\":");
    sl_buf_put_u64(out, index);
    sl_buf_puts(out, ",\"delta\":");
}


/* A small unsigned number without printf. */
/* finish: a reason, or NULL for null. */
static void
chat_chunk_close(sl_buf_t *out, const char *finish)
{
    sl_buf_puts(out, ",\"logprobs\":null,\"finish_reason\":");
    chat_quote_or_null(out, finish);
    sl_buf_puts(out, "}]}\n\n");
}


static int
chat_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out)
{
    chat_stream_t *s = state;

    if (evs->raw.p != NULL && evs->raw_api == SL_API_CHAT) {
        s->raw = true;
        sl_buf_append(out, evs->raw.p, evs->raw.len);
        return 0;
    }
    for (size_t i = 0; i < evs->n; i++) {
        const sl_ev_t *ev = &evs->v[i];

        if (ev->type == SL_EV_START) {
            if (ev->id.len >= 2 && s->id.p == NULL) {
                s->id = ev->id;
            }
            if (ev->name.len >= 2 && s->model.p == NULL) {
                s->model = ev->name;
            }
        }
        if (!s->started
            && (ev->type == SL_EV_START || sl_ev_is_output(ev) || ev->type == SL_EV_FINISH)) {
            s->started = true;
            chat_chunk_open(s, out);
            chat_choice_open(out, ev->choice);
            sl_buf_puts(out, "{\"role\":\"assistant\",\"content\":\"\"}");
            chat_chunk_close(out, NULL);
        }
        switch (ev->type) {
        case SL_EV_TEXT:
            chat_chunk_open(s, out);
            chat_choice_open(out, ev->choice);
            sl_buf_puts(out, "{\"content\":");
            sl_buf_append(out, ev->text.p, ev->text.len);
            sl_buf_puts(out, "}");
            chat_chunk_close(out, NULL);
            break;
        case SL_EV_TOOL_CALL:
            chat_chunk_open(s, out);
            chat_choice_open(out, ev->choice);
            sl_buf_puts(out, "{\"tool_calls\":[{\"index\":");
            sl_buf_put_u64(out, ev->index);
            sl_buf_puts(out, ",\"id\":");
            sl_buf_append(out, ev->id.p, ev->id.len);
            sl_buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
            sl_buf_append(out, ev->name.p, ev->name.len);
            sl_buf_puts(out, ",\"arguments\":\"\"}}]}");
            chat_chunk_close(out, NULL);
            break;
        case SL_EV_TOOL_ARGS:
            chat_chunk_open(s, out);
            chat_choice_open(out, ev->choice);
            sl_buf_puts(out, "{\"tool_calls\":[{\"index\":");
            sl_buf_put_u64(out, ev->index);
            sl_buf_puts(out, ",\"function\":{\"arguments\":");
            sl_buf_append(out, ev->text.p, ev->text.len);
            sl_buf_puts(out, "}}]}");
            chat_chunk_close(out, NULL);
            break;
        case SL_EV_FINISH:
            chat_chunk_open(s, out);
            chat_choice_open(out, ev->choice);
            sl_buf_puts(out, "{}");
            chat_chunk_close(out, sl_finish_openai(ev->finish));
            break;
        case SL_EV_USAGE:
            if (ev->usage != NULL) {
                s->usage = *ev->usage;
            }
            break;
        default:
            /* reasoning has no place in chat chunks; errors and the end are the driver's */
            break;
        }
    }
    return 0;
}


static int
chat_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out)
{
    chat_stream_t *s = state;

    if (!s->raw && s->call->client_wants_usage && usage != NULL && usage->known) {
        chat_chunk_open(s, out);
        sl_buf_puts(out, ",\"choices\":[],\"usage\":");
        chat_usage(out, usage);
        sl_buf_puts(out, "}\n\n");
    }
    sl_buf_puts(out, "data: [DONE]\n\n");
    return 0;
}


/*
 * A failure after the stream started, the way OpenAI reports one, so an
 * SDK raises instead of taking a truncated answer for a complete one.
 */
static int
chat_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out)
{
    (void) state;
    sl_buf_puts(out, "data: ");
    chat_error_object(out, e);
    sl_buf_puts(out, "\n\n");
    return 0;
}


static int
chat_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out)
{
    sl_buf_t b = SL_BUF_INIT;
    char *p;

    chat_error_object(&b, e);
    p = sl_palloc(pool, b.len + 1);
    memcpy(p, b.p, b.len);
    p[b.len] = '\0';
    *out = (sl_str_t){ p, b.len };
    sl_buf_free(&b);
    return 0;
}


/* {"error":{"message","type","param","code"}} */
static void
chat_error_object(sl_buf_t *out, const sl_error_t *e)
{
    const char *msg = e->message != NULL ? e->message : "error";

    sl_buf_puts(out, "{\"error\":{\"message\":");
    sl_json_quote(out, (sl_str_t){ msg, strlen(msg) });
    sl_buf_puts(out, ",\"type\":");
    chat_quote_or_null(out, e->type != NULL ? e->type : "api_error");
    sl_buf_puts(out, ",\"param\":");
    chat_quote_or_null(out, e->param);
    sl_buf_puts(out, ",\"code\":");
    chat_quote_or_null(out, e->code);
    sl_buf_puts(out, "}}");
}


static void
chat_quote_or_null(sl_buf_t *out, const char *s)
{
    if (s == NULL) {
        sl_buf_puts(out, "null");
        return;
    }
    sl_json_quote(out, (sl_str_t){ s, strlen(s) });
}
