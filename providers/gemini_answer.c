/*
 * Google Gemini, the answer side of the adapter (gemini.c builds the
 * requests): a generateContent answer, one GenerateContentResponse per SSE
 * event of a stream (alt=sse), embeddings and errors, read with the token
 * reader into the typed answer and events (core/gateway/call.h). Thought
 * parts are reasoning, a part's thoughtSignature its event's signature
 * (byte for byte), a functionCall one whole tool call (its args' JSON text
 * as the arguments, ids "call_<n>" numbered within one answer),
 * thoughtsTokenCount the reasoning tokens; errors come back in OpenAI's
 * terms. Nothing here does I/O.
 */
#include "providers/gemini_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/errno.h"
#include "providers/adapter_internal.h"

#define GEMINI_MAX_CAND 8 /* candidateCount's ceiling */

/* Per-stream state (st->priv), request pool. */
typedef struct gemini_stream {
    sl_json_t *doc;                   /* one reader for the whole stream */
    unsigned next_call;               /* ids: call_<next_call> */
    unsigned ncalls[GEMINI_MAX_CAND]; /* a candidate's tool-call indexes */
    uint32_t started;                 /* candidates seen */
    uint32_t finished;
    uint32_t called;     /* candidates that made a function call */
    bool started_stream; /* SL_EV_START went out */
} gemini_stream_t;

static int gemini_chat_response(sl_call_t *call, const sl_json_t *doc, sl_answer_t *out);
static void gemini_answer_part(sl_call_t *call, const sl_json_t *doc, int p, sl_choice_t *ch,
                               unsigned *next_call);
static void gemini_tool_call(sl_call_t *call, const sl_json_t *doc, int fc, unsigned id,
                             sl_tool_call_t *out);
static sl_str_t gemini_id(sl_call_t *call, const sl_json_t *doc);
static sl_finish_e gemini_finish(const sl_json_t *doc, int v, bool called);
static void gemini_read_usage(const sl_json_t *doc, int um, sl_usage_t *u);
static int gemini_embed_response(sl_call_t *call, json_t *root, sl_answer_t *out);
static json_t *gemini_base64_floats(json_t *values);
static gemini_stream_t *gemini_stream_state(sl_stream_t *st);
static sl_ev_t *gemini_push(sl_evs_t *out, sl_ev_type_e type);
static void gemini_stream_candidate(sl_stream_t *st, gemini_stream_t *gs, int c, unsigned index,
                                    sl_evs_t *out);
static void gemini_stream_error(sl_stream_t *st, const sl_json_t *doc, int err, sl_evs_t *out);
static uint64_t gemini_retry_delay(json_t *err);
static const char *gemini_lower(sl_pool_t *pool, const char *s);


int
sl__gemini_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_answer_t *out)
{
    json_t *root;
    sl_json_t *doc;

    (void) conf;
    if (call->api == SL_API_EMBEDDINGS) {
        root = json_loadb(body->p != NULL ? body->p : "", body->len, 0, NULL);
        if (!json_is_object(root)) {
            json_decref(root);
            return SL_EUPSTREAM;
        }
        sl_pool_on_destroy(call->pool, sl__gemini_decref, root);
        return gemini_embed_response(call, root, out);
    }
    doc = sl_json_create(call->pool);
    if (sl_json_parse(doc, body->p != NULL ? body->p : "", body->len, NULL) < 0
        || sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return SL_EUPSTREAM;
    }
    return gemini_chat_response(call, doc, out);
}


/*
 * A GenerateContentResponse -> the typed answer, one choice per candidate:
 * text parts joined, thought parts as reasoning (joined; the last
 * thoughtSignature as the signature), function calls as tool calls
 * numbered across the answer. A prompt blocked before any candidate is one
 * empty choice finished by the content filter. SL_EUPSTREAM for neither.
 */
static int
gemini_chat_response(sl_call_t *call, const sl_json_t *doc, sl_answer_t *out)
{
    int cands = sl_json_get(doc, SL_JSON_ROOT, "candidates");
    int block = sl_json_path(doc, SL_JSON_ROOT, "promptFeedback.blockReason");
    size_t n = sl_json_type(doc, cands) == SL_JSON_ARRAY ? sl_json_size(doc, cands) : 0;
    unsigned next_call = 0;
    int pos = 0;

    if (n == 0 && sl_json_type(doc, block) != SL_JSON_STRING) {
        return SL_EUPSTREAM;
    }
    out->id = gemini_id(call, doc);
    out->model = sl__adapter_literal(doc, sl_json_get(doc, SL_JSON_ROOT, "modelVersion"), NULL);
    gemini_read_usage(doc, sl_json_get(doc, SL_JSON_ROOT, "usageMetadata"), &out->usage);
    out->choices = sl_pcalloc(call->pool, (n > 0 ? n : 1) * sizeof(sl_choice_t));
    if (n == 0) {
        /* the prompt itself was blocked: an empty, filtered answer */
        out->choices[0].finish = SL_FINISH_CONTENT_FILTER;
        out->nchoices = 1;
        return 0;
    }
    for (int c = sl_json_first(doc, cands); c >= 0; c = sl_json_next(doc, cands, c), pos++) {
        sl_choice_t *ch = &out->choices[out->nchoices++];
        int parts = sl_json_path(doc, c, "content.parts");
        int64_t index;

        ch->index = sl_json_int(doc, sl_json_get(doc, c, "index"), &index) == 0 && index >= 0
                            && index < GEMINI_MAX_CAND
                        ? (unsigned) index
                        : (unsigned) pos;
        if (sl_json_type(doc, parts) == SL_JSON_ARRAY && sl_json_size(doc, parts) > 0) {
            ch->tools = sl_pcalloc(call->pool, sl_json_size(doc, parts) * sizeof(sl_tool_call_t));
        }
        for (int p = sl_json_first(doc, parts); p >= 0; p = sl_json_next(doc, parts, p)) {
            gemini_answer_part(call, doc, p, ch, &next_call);
        }
        ch->finish = gemini_finish(doc, sl_json_get(doc, c, "finishReason"), ch->ntools > 0);
    }
    return 0;
}


/* One part of a candidate's answer into ch. */
static void
gemini_answer_part(sl_call_t *call, const sl_json_t *doc, int p, sl_choice_t *ch,
                   unsigned *next_call)
{
    sl_str_t text = sl__adapter_literal(doc, sl_json_get(doc, p, "text"), NULL);
    sl_str_t sig = sl__adapter_literal(doc, sl_json_get(doc, p, "thoughtSignature"), NULL);
    int fc = sl_json_get(doc, p, "functionCall");

    if (sig.len > 2) {
        ch->signature = sig; /* byte for byte, as Gemini wrote it */
    }
    if (text.p != NULL && sl_json_is_true(doc, sl_json_get(doc, p, "thought"))) {
        ch->reasoning = sl_jstr_concat(call->pool, ch->reasoning, text);
    } else if (text.p != NULL) {
        /* an empty first part still makes the content "", not null */
        ch->text = ch->text.len == 0 ? text : sl_jstr_concat(call->pool, ch->text, text);
    } else if (sl_json_type(doc, fc) == SL_JSON_OBJECT) {
        gemini_tool_call(call, doc, fc, (*next_call)++, &ch->tools[ch->ntools++]);
    }
}


/* A functionCall -> one whole tool call: Gemini's id or "call_<id>", its name, args' JSON text. */
static void
gemini_tool_call(sl_call_t *call, const sl_json_t *doc, int fc, unsigned id, sl_tool_call_t *out)
{
    int args = sl_json_get(doc, fc, "args");

    out->id = sl__adapter_literal(doc, sl_json_get(doc, fc, "id"), NULL);
    if (out->id.len < 2) {
        out->id = sl__adapter_quote(call->pool, sl_psprintf(call->pool, "call_%u", id));
    }
    out->name = sl__adapter_literal(doc, sl_json_get(doc, fc, "name"), NULL);
    if (out->name.len < 2) {
        out->name = sl_str_lit("\"\"");
    }
    if (sl_json_type(doc, args) != SL_JSON_OBJECT
        || sl__adapter_json_literal(call->pool, doc, args, &out->args) < 0) {
        out->args = sl_str_lit("\"{}\"");
    }
}


/* "chatcmpl-" + Gemini's responseId, else the gateway's request id, as a literal. */
static sl_str_t
gemini_id(sl_call_t *call, const sl_json_t *doc)
{
    sl_str_t rid;
    const char *id;

    if (sl_json_string(doc, sl_json_get(doc, SL_JSON_ROOT, "responseId"), call->pool, &rid) == 0) {
        id = sl_psprintf(call->pool, "chatcmpl-%.*s", (int) rid.len, rid.p);
    } else {
        id = sl_psprintf(call->pool, "chatcmpl-%s",
                         call->request_id != NULL ? call->request_id : "gemini");
    }
    return sl_jstr_quote(call->pool, (sl_str_t){ id, strlen(id) });
}


/* finishReason (a string token) -> sl_finish_e; tool calls make a natural end TOOL_CALLS. */
static sl_finish_e
gemini_finish(const sl_json_t *doc, int v, bool called)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", NULL,
    };
    sl_str_t r = sl_json_raw(doc, v);

    if (sl_json_type(doc, v) != SL_JSON_STRING) {
        return called ? SL_FINISH_TOOL_CALLS : SL_FINISH_STOP;
    }
    r = (sl_str_t){ r.p + 1, r.len - 2 };
    if (sl_str_eq(r, "MAX_TOKENS")) {
        return SL_FINISH_LENGTH;
    }
    for (size_t i = 0; filtered[i] != NULL; i++) {
        if (sl_str_eq(r, filtered[i])) {
            return SL_FINISH_CONTENT_FILTER;
        }
    }
    return called ? SL_FINISH_TOOL_CALLS : SL_FINISH_STOP;
}


/*
 * usageMetadata -> usage: prompt = promptTokenCount (cached included) +
 * toolUsePromptTokenCount; completion = candidatesTokenCount +
 * thoughtsTokenCount (thinking is billed as output), the latter also as
 * reasoning; cached = cachedContentTokenCount.
 */
static void
gemini_read_usage(const sl_json_t *doc, int um, sl_usage_t *u)
{
    if (sl_json_type(doc, um) != SL_JSON_OBJECT) {
        return;
    }
    u->known = true;
    u->prompt_tokens = sl__adapter_uint(doc, sl_json_get(doc, um, "promptTokenCount"))
                       + sl__adapter_uint(doc, sl_json_get(doc, um, "toolUsePromptTokenCount"));
    u->reasoning_tokens = sl__adapter_uint(doc, sl_json_get(doc, um, "thoughtsTokenCount"));
    u->completion_tokens =
        sl__adapter_uint(doc, sl_json_get(doc, um, "candidatesTokenCount")) + u->reasoning_tokens;
    u->cached_tokens = sl__adapter_uint(doc, sl_json_get(doc, um, "cachedContentTokenCount"));
}


static gemini_stream_t *
gemini_stream_state(sl_stream_t *st)
{
    gemini_stream_t *gs = st->priv;

    if (gs == NULL) {
        gs = sl_pcalloc(st->call->pool, sizeof(*gs));
        gs->doc = sl_json_create(st->call->pool);
        st->priv = gs;
    }
    return gs;
}


/*
 * One GenerateContentResponse chunk -> typed events: START with the first
 * chunk (the id from responseId, else the request id; the model from
 * modelVersion), then per candidate its parts as TEXT, REASONING (thought
 * parts) and whole tool calls (TOOL_CALL, then TOOL_ARGS with all the
 * arguments), a part's thoughtSignature as the signature of the part's
 * event, FINISH at its finishReason; USAGE when the chunk has
 * usageMetadata. Gemini has no end event: once every candidate that
 * started has finished, the stream is done (SL_EV_DONE). A chunk holding
 * "error" is SL_EV_ERROR.
 */
int
sl__gemini_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_evs_t *out)
{
    gemini_stream_t *gs = gemini_stream_state(st);
    const sl_json_t *doc = gs->doc;
    sl_pool_t *pool = st->call->pool;
    int cands;
    int model;
    int um;
    uint32_t before;
    int pos = 0;
    sl_str_t name;
    sl_ev_t *e;

    (void) conf;
    if (st->done || st->failed) {
        return 0;
    }
    if (sl_json_parse(gs->doc, ev->data.p, ev->data.len, NULL) < 0
        || sl_json_type(doc, SL_JSON_ROOT) != SL_JSON_OBJECT) {
        return 0; /* not a chunk (a keep-alive, or a comment the parser let through) */
    }
    if (sl_json_type(doc, sl_json_get(doc, SL_JSON_ROOT, "error")) == SL_JSON_OBJECT) {
        gemini_stream_error(st, doc, sl_json_get(doc, SL_JSON_ROOT, "error"), out);
        return 0;
    }
    model = sl_json_get(doc, SL_JSON_ROOT, "modelVersion");
    if (st->served_model == NULL && sl_json_string(doc, model, pool, &name) == 0) {
        st->served_model = sl_pstrndup(pool, name.p, name.len);
    }
    if (!gs->started_stream) {
        gs->started_stream = true;
        e = gemini_push(out, SL_EV_START);
        e->id = gemini_id(st->call, doc);
        e->name = sl__adapter_keep(pool, sl__adapter_literal(doc, model, NULL));
    }

    before = gs->finished;
    cands = sl_json_get(doc, SL_JSON_ROOT, "candidates");
    if (sl_json_type(doc, cands) != SL_JSON_ARRAY) {
        cands = -1;
    }
    for (int c = sl_json_first(doc, cands); c >= 0; c = sl_json_next(doc, cands, c), pos++) {
        int64_t index;

        if (sl_json_int(doc, sl_json_get(doc, c, "index"), &index) < 0) {
            index = pos;
        }
        if (index >= 0 && index < GEMINI_MAX_CAND) {
            gemini_stream_candidate(st, gs, c, (unsigned) index, out);
        }
    }
    if (sl_json_type(doc, sl_json_path(doc, SL_JSON_ROOT, "promptFeedback.blockReason"))
            == SL_JSON_STRING
        && sl_json_size(doc, cands) == 0 && gs->started == 0) {
        gemini_push(out, SL_EV_FINISH)->finish = SL_FINISH_CONTENT_FILTER;
        gs->started = gs->finished = 1;
    }
    um = sl_json_get(doc, SL_JSON_ROOT, "usageMetadata");
    if (sl_json_type(doc, um) == SL_JSON_OBJECT) {
        sl_usage_t *u = sl_palloc(pool, sizeof(*u));

        gemini_read_usage(doc, um, &st->usage);
        *u = st->usage;
        gemini_push(out, SL_EV_USAGE)->usage = u;
    }
    if (gs->finished != before && (gs->finished & gs->started) == gs->started) {
        st->done = true;
        gemini_push(out, SL_EV_DONE);
    }
    return 0;
}


/* Pushes an event of type with nothing else set; returns it for the caller to fill. */
static sl_ev_t *
gemini_push(sl_evs_t *out, sl_ev_type_e type)
{
    sl_ev_t e;

    memset(&e, 0, sizeof(e));
    e.type = type;
    sl_evs_push(out, &e);
    return &out->v[out->n - 1];
}


static void
gemini_stream_candidate(sl_stream_t *st, gemini_stream_t *gs, int c, unsigned index, sl_evs_t *out)
{
    const sl_json_t *doc = gs->doc;
    sl_pool_t *pool = st->call->pool;
    int parts = sl_json_path(doc, c, "content.parts");
    int reason = sl_json_get(doc, c, "finishReason");
    uint32_t bit = 1u << index;

    if (gs->finished & bit) {
        return;
    }
    gs->started |= bit;
    for (int p = sl_json_first(doc, parts); p >= 0; p = sl_json_next(doc, parts, p)) {
        size_t len = 0;
        sl_str_t text = sl__adapter_literal(doc, sl_json_get(doc, p, "text"), &len);
        sl_str_t sig = sl__adapter_literal(doc, sl_json_get(doc, p, "thoughtSignature"), NULL);
        int fc = sl_json_get(doc, p, "functionCall");
        bool thought = sl_json_is_true(doc, sl_json_get(doc, p, "thought"));
        sl_ev_t *e = NULL;

        sig = sig.len > 2 ? sl__adapter_keep(pool, sig) : sl_str_null;
        if (text.len > 2) {
            e = gemini_push(out, thought ? SL_EV_REASONING : SL_EV_TEXT);
            e->text = sl__adapter_keep(pool, text);
            st->content_bytes += len;
        } else if (sl_json_type(doc, fc) == SL_JSON_OBJECT) {
            sl_tool_call_t tc;

            gemini_tool_call(st->call, doc, fc, gs->next_call++, &tc);
            e = gemini_push(out, SL_EV_TOOL_CALL);
            e->index = gs->ncalls[index];
            e->id = sl__adapter_keep(pool, tc.id);
            e->name = sl__adapter_keep(pool, tc.name);
            e->signature = sig;
            e->choice = index;
            e = gemini_push(out, SL_EV_TOOL_ARGS);
            e->index = gs->ncalls[index]++;
            e->text = tc.args; /* in the pool already */
            st->content_bytes += tc.args.len - 2;
            gs->called |= bit;
            e->choice = index;
            continue;
        } else if (sig.p != NULL) {
            e = gemini_push(out, SL_EV_REASONING);
        }
        if (e != NULL) {
            e->choice = index;
            e->signature = sig;
        }
    }
    if (sl_json_type(doc, reason) == SL_JSON_STRING && sl_json_raw(doc, reason).len > 2) {
        sl_ev_t *e = gemini_push(out, SL_EV_FINISH);

        e->choice = index;
        e->finish = gemini_finish(doc, reason, (gs->called & bit) != 0);
        gs->finished |= bit;
    }
}


/*
 * {"error": {"code", "message", "status"}} in a stream -> SL_EV_ERROR:
 * Google's message, its status lower-cased as the code, the HTTP status
 * from error.code mapped as map_error maps it (502 when there is none).
 */
static void
gemini_stream_error(sl_stream_t *st, const sl_json_t *doc, int err, sl_evs_t *out)
{
    sl_pool_t *pool = st->call->pool;
    sl_error_t *e = sl_pcalloc(pool, sizeof(*e));
    sl_buf_t none = SL_BUF_INIT;
    int64_t code;
    sl_str_t s;

    if (sl_json_int(doc, sl_json_get(doc, err, "code"), &code) < 0 || code < 400 || code > 599) {
        code = 502;
    }
    sl__gemini_map_error(NULL, (int) code, &none, pool, e);
    e->message = "the provider failed mid-stream";
    if (sl_json_string(doc, sl_json_get(doc, err, "message"), pool, &s) == 0) {
        e->message = sl_pstrndup(pool, s.p, s.len);
    }
    e->code = "upstream_error";
    if (sl_json_string(doc, sl_json_get(doc, err, "status"), pool, &s) == 0) {
        e->code = gemini_lower(pool, sl_pstrndup(pool, s.p, s.len));
    }
    e->type = "api_error";
    st->failed = true;
    gemini_push(out, SL_EV_ERROR)->error = e;
}


/*
 * {"embedding": {"values"}} or {"embeddings": [{"values"}]} -> OpenAI's
 * list. Gemini reports no tokens for embeddings: usage is estimated from
 * the input (about four bytes a token) and marked so.
 */
static int
gemini_embed_response(sl_call_t *call, json_t *root, sl_answer_t *out)
{
    json_t *body = sl_call_json(call);
    json_t *one = json_object_get(root, "embedding");
    json_t *list = json_object_get(root, "embeddings");
    json_t *input = json_object_get(body, "input");
    const char *format = json_string_value(json_object_get(body, "encoding_format"));
    bool b64 = format != NULL && strcmp(format, "base64") == 0;
    json_t *data = json_array();
    json_t *resp, *e, *item;
    uint64_t bytes = 0;
    sl_str_t text;
    size_t i;
    int rc;

    if (json_is_object(one)) {
        list = json_pack("[O]", one);
    } else if (json_is_array(list)) {
        json_incref(list);
    } else {
        json_decref(data);
        return SL_EUPSTREAM;
    }
    json_array_foreach(list, i, e)
    {
        json_t *values = json_object_get(e, "values");
        json_t *vec;

        if (!json_is_array(values)) {
            json_decref(list);
            json_decref(data);
            return SL_EUPSTREAM;
        }
        vec = b64 ? gemini_base64_floats(values) : json_incref(values);
        json_array_append_new(
            data, json_pack("{sssiso}", "object", "embedding", "index", (int) i, "embedding", vec));
    }
    json_decref(list);

    if (json_is_string(input)) {
        bytes = json_string_length(input);
    }
    json_array_foreach(input, i, item)
    {
        bytes += json_string_length(item);
    }
    out->usage.prompt_tokens = (bytes + 3) / 4;
    out->usage.estimated = true;
    resp =
        json_pack("{sssosss{sIsI}}", "object", "list", "data", data, "model", call->target->model,
                  "usage", "prompt_tokens", (json_int_t) out->usage.prompt_tokens, "total_tokens",
                  (json_int_t) out->usage.prompt_tokens);
    rc = sl__gemini_dump(call->pool, resp, &text);
    json_decref(resp);
    if (rc < 0) {
        return SL_EUPSTREAM;
    }
    out->raw = text;
    out->raw_api = SL_API_EMBEDDINGS;
    return 0;
}


/* OpenAI's encoding_format=base64: the vector as little-endian float32, base64. */
static json_t *
gemini_base64_floats(json_t *values)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = json_array_size(values) * 4;
    unsigned char *raw = sl_xmalloc(n + 1);
    char *text = sl_xmalloc((n + 2) / 3 * 4 + 1);
    char *d = text;
    json_t *v, *s;
    size_t i;

    json_array_foreach(values, i, v)
    {
        float f = (float) json_number_value(v);
        uint32_t bits;

        memcpy(&bits, &f, sizeof(bits));
        raw[i * 4] = (unsigned char) bits;
        raw[i * 4 + 1] = (unsigned char) (bits >> 8);
        raw[i * 4 + 2] = (unsigned char) (bits >> 16);
        raw[i * 4 + 3] = (unsigned char) (bits >> 24);
    }
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t t = (uint32_t) raw[i] << 16 | (uint32_t) raw[i + 1] << 8 | raw[i + 2];

        *d++ = b64[t >> 18];
        *d++ = b64[(t >> 12) & 63];
        *d++ = b64[(t >> 6) & 63];
        *d++ = b64[t & 63];
    }
    if (i < n) {
        uint32_t t = (uint32_t) raw[i] << 16 | (i + 1 < n ? (uint32_t) raw[i + 1] << 8 : 0);

        *d++ = b64[t >> 18];
        *d++ = b64[(t >> 12) & 63];
        *d++ = i + 1 < n ? b64[(t >> 6) & 63] : '=';
        *d++ = '=';
    }
    *d = '\0';
    s = json_string(text);
    free(raw);
    free(text);
    return s;
}


/*
 * Google's {"error": {"code", "message", "status", "details"}} (or a list
 * holding one) -> OpenAI's error. A key Google refuses is the gateway's
 * problem, whatever the status: 502 upstream_auth_failed, without Google's
 * message.
 */
int
sl__gemini_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                     sl_error_t *out)
{
    json_t *root = NULL;
    json_t *err;
    const char *msg = NULL;
    const char *gstatus = NULL;
    bool bad_key = false;

    (void) conf;
    if (body->len > 0) {
        root = json_loadb(body->p, body->len, 0, NULL);
    }
    err = json_object_get(json_is_array(root) ? json_array_get(root, 0) : root, "error");
    if (json_is_object(err)) {
        json_t *details = json_object_get(err, "details");
        json_t *d;
        size_t i;

        msg = json_string_value(json_object_get(err, "message"));
        gstatus = json_string_value(json_object_get(err, "status"));
        json_array_foreach(details, i, d)
        {
            const char *reason = json_string_value(json_object_get(d, "reason"));

            if (reason != NULL
                && (strcmp(reason, "API_KEY_INVALID") == 0
                    || strcmp(reason, "API_KEY_SERVICE_BLOCKED") == 0)) {
                bad_key = true;
            }
        }
        out->retry_after = gemini_retry_delay(details);
    }
    out->message = msg != NULL ? sl_pstrdup(pool, msg)
                               : sl_psprintf(pool, "upstream returned HTTP %d", status);
    out->code = gstatus != NULL ? gemini_lower(pool, gstatus) : NULL;
    out->param = NULL;
    out->status = status;
    out->retryable = false;
    out->type = "invalid_request_error";
    json_decref(root);

    if (status == 401 || status == 403 || bad_key) {
        out->status = 502;
        out->type = "api_error";
        out->code = "upstream_auth_failed";
        out->message =
            sl_psprintf(pool, "the provider rejected the gateway's credentials (HTTP %d)", status);
        out->retry_after = 0;
    } else if (status == 429) {
        out->type = "rate_limit_error";
        out->code = "rate_limit_exceeded";
        out->retryable = true;
    } else if (status == 503) {
        out->type = "api_error";
        out->retryable = true;
    } else if (status == 504 || status == 408) {
        out->status = 504;
        out->type = "api_error";
        out->retryable = true;
    } else if (status >= 500 || status < 400) {
        out->status = 502;
        out->type = "api_error";
        out->retryable = status >= 500;
    }
    return 0;
}


/* google.rpc.RetryInfo's retryDelay ("12s", "1.5s") in ms, 0 when absent. */
static uint64_t
gemini_retry_delay(json_t *details)
{
    json_t *d;
    size_t i;

    json_array_foreach(details, i, d)
    {
        const char *delay = json_string_value(json_object_get(d, "retryDelay"));
        char *end;
        double s;

        if (delay == NULL) {
            continue;
        }
        s = strtod(delay, &end);
        if (end != delay && strcmp(end, "s") == 0 && s >= 0 && s < 86400) {
            return (uint64_t) (s * 1000);
        }
    }
    return 0;
}


static const char *
gemini_lower(sl_pool_t *pool, const char *s)
{
    char *out = sl_pstrdup(pool, s);

    for (char *c = out; *c != '\0'; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char) (*c - 'A' + 'a');
        }
    }
    return out;
}
