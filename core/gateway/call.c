/*
 * Helpers on the shared pipeline types: API names, the per-attempt DOM,
 * event batches, JSON string literals and finish reasons.
 */
#include "core/gateway/call.h"

#include <string.h>

#include "core/base/errno.h"

#define EVS_FIRST 8 /* events per batch before the array first grows */

static const char *const call_api_names[SL_API_COUNT] = {
    "chat",
    "embeddings",
    "messages",
    "responses",
};


const char *
sl_api_name(sl_api_e api)
{
    return (unsigned) api < SL_API_COUNT ? call_api_names[api] : "-";
}


json_t *
sl_call_json(sl_call_t *call)
{
    if (call->body == NULL) {
        call->body = sl_json_dom(call->pool, call->raw);
    }
    return call->body;
}


bool
sl_ev_is_output(const sl_ev_t *ev)
{
    switch (ev->type) {
    case SL_EV_TEXT:
    case SL_EV_TOOL_ARGS:
        return ev->text.len > 2; /* more than "" */
    case SL_EV_REASONING:
        return ev->text.len > 2 || ev->signature.len > 2;
    case SL_EV_TOOL_CALL:
    case SL_EV_REDACTED:
        return true;
    default:
        return false;
    }
}


void
sl_evs_push(sl_evs_t *evs, const sl_ev_t *ev)
{
    if (evs->n == evs->cap) {
        size_t cap = evs->cap == 0 ? EVS_FIRST : evs->cap * 2;
        sl_ev_t *v = sl_palloc(evs->pool, cap * sizeof(*v));

        if (evs->n > 0) {
            memcpy(v, evs->v, evs->n * sizeof(*v));
        }
        evs->v = v;
        evs->cap = cap;
    }
    evs->v[evs->n++] = *ev;
}


void
sl_evs_reset(sl_evs_t *evs)
{
    evs->n = 0;
    evs->raw = sl_str_null;
}


int
sl_jstr_decode(sl_pool_t *pool, sl_str_t lit, sl_str_t *out)
{
    sl_json_t *doc;

    if (lit.len < 2 || lit.p[0] != '"' || lit.p[lit.len - 1] != '"') {
        return SL_EPARSE;
    }
    if (memchr(lit.p, '\\', lit.len) == NULL) {
        /* a checked literal without escapes is its own text */
        *out = (sl_str_t){ lit.p + 1, lit.len - 2 };
        return 0;
    }
    doc = sl_json_create(pool);
    if (sl_json_parse(doc, lit.p, lit.len, NULL) < 0) {
        return SL_EPARSE;
    }
    return sl_json_string(doc, SL_JSON_ROOT, pool, out);
}


sl_str_t
sl_jstr_quote(sl_pool_t *pool, sl_str_t s)
{
    sl_buf_t b = SL_BUF_INIT;
    char *p;
    size_t len;

    sl_json_quote(&b, s);
    len = b.len;
    p = sl_palloc(pool, len + 1);
    memcpy(p, b.p, len);
    p[len] = '\0';
    sl_buf_free(&b);
    return (sl_str_t){ p, len };
}


sl_str_t
sl_jstr_concat(sl_pool_t *pool, sl_str_t a, sl_str_t b)
{
    char *p;

    if (a.len < 2) {
        return b;
    }
    if (b.len < 2) {
        return a;
    }
    /* "x" + "y" -> "xy": both bodies are escaped already */
    p = sl_palloc(pool, a.len + b.len - 1);
    memcpy(p, a.p, a.len - 1);
    memcpy(p + a.len - 1, b.p + 1, b.len - 1);
    p[a.len + b.len - 2] = '\0';
    return (sl_str_t){ p, a.len + b.len - 2 };
}


const char *
sl_finish_openai(sl_finish_e f)
{
    switch (f) {
    case SL_FINISH_NONE:
        return NULL;
    case SL_FINISH_LENGTH:
        return "length";
    case SL_FINISH_TOOL_CALLS:
        return "tool_calls";
    case SL_FINISH_CONTENT_FILTER:
        return "content_filter";
    default:
        return "stop";
    }
}


const char *
sl_finish_anthropic(sl_finish_e f)
{
    switch (f) {
    case SL_FINISH_NONE:
        return NULL;
    case SL_FINISH_LENGTH:
        return "max_tokens";
    case SL_FINISH_TOOL_CALLS:
        return "tool_use";
    case SL_FINISH_CONTENT_FILTER:
        return "refusal";
    case SL_FINISH_STOP_SEQUENCE:
        return "stop_sequence";
    case SL_FINISH_PAUSE:
        return "pause_turn";
    default:
        return "end_turn";
    }
}
