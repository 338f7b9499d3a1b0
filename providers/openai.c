/*
 * OpenAI wire format: the client already speaks it, so the adapter only
 * rewrites `model` to the target's name, puts in the provider's credentials
 * and reads usage back. The OpenAI-compatible family and Azure reuse it.
 * No DOM on this path: the client's bytes are spliced (core/json.h) and the
 * answers are read with the token reader.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errno.h"

static int openai_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static size_t openai_include_usage(const sl_call_t *call, sl_json_edit_t *ed);
static int openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                                 sl_reply_t *out);
static int openai_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                               sl_chunks_t *out);
static int openai_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                            sl_error_t *out);
static void openai_read_usage(const sl_json_t *doc, int usage, sl_usage_t *u);
static uint64_t openai_uint(const sl_json_t *doc, int v);
static size_t openai_string_len(const sl_json_t *doc, int v);

const sl_provider_ops_t sl_provider_openai = {
    .kind = "openai",
    .conf_parse = NULL,
    .build_request = openai_build_request,
    .parse_response = openai_parse_response,
    .stream_event = openai_stream_event,
    .map_error = openai_map_error,
};


static int
openai_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out)
{
    const sl_provider_conf_t *p = call->target->provider;
    const char *endpoint;
    sl_http_header_t *h;
    sl_json_edit_t ed[2];
    sl_str_t model = sl_json_raw(call->doc, call->model);
    sl_str_t body;
    size_t ned = 0;
    size_t n = 0;

    (void) conf;
    switch (call->endpoint) {
    case SL_ENDPOINT_CHAT:
        endpoint = "/chat/completions";
        break;
    case SL_ENDPOINT_EMBEDDINGS:
        endpoint = "/embeddings";
        break;
    default:
        return SL_EDENIED;
    }
    if (sl_json_type(call->doc, call->model) != SL_JSON_STRING) {
        return SL_EPARSE; /* a call the proxy did not read */
    }
    ed[ned].start = (size_t) (model.p - call->raw.p);
    ed[ned].end = ed[ned].start + model.len;
    ed[ned].text = (sl_str_t){ call->target->model, strlen(call->target->model) };
    ed[ned].quote = true;
    ned++;
    if (call->stream && call->endpoint == SL_ENDPOINT_CHAT) {
        /* usage is what the ledger bills: ask for it even when the client did not
         * (the proxy hides that extra chunk from such a client) */
        ned += openai_include_usage(call, &ed[ned]);
        if (ned == 2 && ed[1].start < ed[0].start) {
            sl_json_edit_t t = ed[0];

            ed[0] = ed[1];
            ed[1] = t;
        }
    }
    if (sl_json_splice(call->pool, call->raw, ed, ned, &body) < 0) {
        return SL_EPARSE;
    }

    h = sl_palloc(call->pool, sizeof(*h) * (call->nheaders + 2));
    for (size_t i = 0; i < call->nheaders; i++) {
        h[n++] = call->headers[i];
    }
    h[n].name = sl_str_lit("content-type");
    h[n++].value = sl_str_lit("application/json");
    if (p->api_key.value != NULL) {
        const char *v = sl_psprintf(call->pool, "Bearer %s", p->api_key.value);

        h[n].name = sl_str_lit("authorization");
        h[n].value = (sl_str_t){ v, strlen(v) };
        n++;
    }
    out->method = "POST";
    out->path = sl_psprintf(call->pool, "%s%s", p->base_path, endpoint);
    out->headers = h;
    out->nheaders = n;
    out->body = body.p;
    out->body_len = body.len;
    return 0;
}


/*
 * The edit that makes stream_options.include_usage true: replaces the value
 * that is there, adds the member to the client's object, or sets the whole
 * stream_options (replaced when it is not an object, added before the
 * body's closing brace when absent: the body has a model, so a comma fits).
 */
static size_t
openai_include_usage(const sl_call_t *call, sl_json_edit_t *ed)
{
    const sl_json_t *doc = call->doc;
    int so = call->stream_options;
    sl_str_t raw;

    ed->quote = false;
    if (sl_json_type(doc, so) == SL_JSON_OBJECT) {
        int iu = sl_json_get(doc, so, "include_usage");

        if (iu >= 0) {
            raw = sl_json_raw(doc, iu);
            ed->start = (size_t) (raw.p - call->raw.p);
            ed->end = ed->start + raw.len;
            ed->text = sl_str_lit("true");
            return 1;
        }
        ed->start = sl_json_offset(doc, so) + 1;
        ed->end = ed->start;
        ed->text = sl_json_size(doc, so) > 0 ? sl_str_lit("\"include_usage\":true,")
                                             : sl_str_lit("\"include_usage\":true");
        return 1;
    }
    if (so >= 0) {
        raw = sl_json_raw(doc, so);
        ed->start = (size_t) (raw.p - call->raw.p);
        ed->end = ed->start + raw.len;
        ed->text = sl_str_lit("{\"include_usage\":true}");
        return 1;
    }
    raw = sl_json_raw(doc, SL_JSON_ROOT);
    ed->start = (size_t) (raw.p - call->raw.p) + raw.len - 1;
    ed->end = ed->start;
    ed->text = sl_str_lit(",\"stream_options\":{\"include_usage\":true}");
    return 1;
}


/* A usage count: json_integer_value()'s reading (0 for anything but an integer). */
static uint64_t
openai_uint(const sl_json_t *doc, int v)
{
    int64_t n;

    return sl_json_int(doc, v, &n) == 0 ? (uint64_t) n : 0;
}


/* Decoded length of string v (json_string_length()), 0 for anything else. */
static size_t
openai_string_len(const sl_json_t *doc, int v)
{
    size_t len;

    return sl_json_string_len(doc, v, &len) == 0 ? len : 0;
}


static void
openai_read_usage(const sl_json_t *doc, int usage, sl_usage_t *u)
{
    if (sl_json_type(doc, usage) != SL_JSON_OBJECT) {
        return;
    }
    u->known = true;
    u->prompt_tokens = openai_uint(doc, sl_json_get(doc, usage, "prompt_tokens"));
    u->completion_tokens = openai_uint(doc, sl_json_get(doc, usage, "completion_tokens"));
    u->cached_tokens =
        openai_uint(doc, sl_json_path(doc, usage, "prompt_tokens_details.cached_tokens"));
}


static int
openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_reply_t *out)
{
    sl_json_t *doc = sl_json_create(call->pool);
    sl_json_type_e type;
    sl_str_t model;

    (void) conf;
    /* the client gets the provider's bytes unchanged; only usage is read */
    out->body = body->p;
    out->body_len = body->len;
    if (sl_json_parse(doc, body->p, body->len, NULL) < 0) {
        return SL_EUPSTREAM;
    }
    type = sl_json_type(doc, SL_JSON_ROOT);
    if (type != SL_JSON_OBJECT && type != SL_JSON_ARRAY) {
        return SL_EUPSTREAM;
    }
    openai_read_usage(doc, sl_json_get(doc, SL_JSON_ROOT, "usage"), &out->usage);
    if (sl_json_string(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), call->pool, &model) == 0) {
        out->served_model = sl_pstrndup(call->pool, model.p, model.len);
    }
    return 0;
}


/*
 * OpenAI's own events go to the client unchanged, with two exceptions: the
 * final usage-only chunk (choices empty) is dropped when the client did not
 * ask for usage (sluice asked on its behalf), and "[DONE]" is held back for
 * the core to send once the ledger row is written.
 */
static int
openai_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_chunks_t *out)
{
    sl_json_t *doc = st->priv;
    sl_json_type_e type;
    bool drop = false;

    (void) conf;
    if (sl_str_eq(ev->data, "[DONE]")) {
        st->done = true;
        return 0;
    }
    if (doc == NULL) {
        /* one reader for the whole stream: each event reuses its tokens */
        doc = sl_json_create(st->call->pool);
        st->priv = doc;
    }
    type = sl_json_parse(doc, ev->data.p, ev->data.len, NULL) == 0 ? sl_json_type(doc, SL_JSON_ROOT)
                                                                   : SL_JSON_NONE;
    if (type == SL_JSON_OBJECT || type == SL_JSON_ARRAY) {
        int usage = sl_json_get(doc, SL_JSON_ROOT, "usage");
        int choices = sl_json_get(doc, SL_JSON_ROOT, "choices");
        sl_str_t model;

        if (sl_json_type(doc, usage) == SL_JSON_OBJECT) {
            openai_read_usage(doc, usage, &st->usage);
            drop = !st->client_wants_usage && sl_json_type(doc, choices) == SL_JSON_ARRAY
                   && sl_json_size(doc, choices) == 0;
        }
        if (sl_json_type(doc, choices) != SL_JSON_ARRAY) {
            choices = -1;
        }
        for (int c = sl_json_first(doc, choices); c >= 0; c = sl_json_next(doc, choices, c)) {
            int delta = sl_json_get(doc, c, "delta");
            int calls = sl_json_get(doc, delta, "tool_calls");

            st->content_bytes += openai_string_len(doc, sl_json_get(doc, delta, "content"));
            if (sl_json_type(doc, calls) != SL_JSON_ARRAY) {
                continue;
            }
            for (int k = sl_json_first(doc, calls); k >= 0; k = sl_json_next(doc, calls, k)) {
                st->content_bytes +=
                    openai_string_len(doc, sl_json_path(doc, k, "function.arguments"));
            }
        }
        if (st->served_model == NULL
            && sl_json_string(doc, sl_json_get(doc, SL_JSON_ROOT, "model"), st->call->pool, &model)
                   == 0) {
            st->served_model = sl_pstrndup(st->call->pool, model.p, model.len);
        }
    }
    if (drop) {
        return 0;
    }
    if (ev->event.len > 0) {
        sl_buf_puts(out->out, "event: ");
        sl_buf_append(out->out, ev->event.p, ev->event.len);
        sl_buf_puts(out->out, "\n");
    }
    sl_buf_puts(out->out, "data: ");
    sl_buf_append(out->out, ev->data.p, ev->data.len);
    sl_buf_puts(out->out, "\n\n");
    return 0;
}


static int
openai_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                 sl_error_t *out)
{
    json_t *root = NULL;
    json_t *err = NULL;
    const char *message = NULL;

    (void) conf;
    if (body->len > 0) {
        root = json_loadb(body->p, body->len, 0, NULL);
        err = json_object_get(root, "error");
    }
    if (json_is_object(err)) {
        json_t *v = json_object_get(err, "message");

        if (json_is_string(v)) {
            message = sl_pstrdup(pool, json_string_value(v));
        }
        v = json_object_get(err, "type");
        if (json_is_string(v)) {
            out->type = sl_pstrdup(pool, json_string_value(v));
        }
        v = json_object_get(err, "code");
        if (json_is_string(v)) {
            out->code = sl_pstrdup(pool, json_string_value(v));
        }
        v = json_object_get(err, "param");
        if (json_is_string(v)) {
            out->param = sl_pstrdup(pool, json_string_value(v));
        }
    } else if (json_is_string(err)) {
        message = sl_pstrdup(pool, json_string_value(err));
    }
    json_decref(root);

    out->message =
        message != NULL ? message : sl_psprintf(pool, "upstream returned HTTP %d", status);
    out->status = status;
    out->retryable = false;
    if (status == 401 || status == 403) {
        /* the provider rejected the gateway's own key: not the client's fault, and
         * the provider's message may quote part of that key */
        out->status = 502;
        out->type = "api_error";
        out->code = "upstream_auth_failed";
        out->param = NULL;
        out->message =
            sl_psprintf(pool, "the provider rejected the gateway's credentials (HTTP %d)", status);
    } else if (status == 408) {
        out->status = 504;
        out->retryable = true;
    } else if (status == 429) {
        out->retryable = true;
    } else if (status == 503 || status == 529) {
        out->status = 503;
        out->retryable = true;
    } else if (status >= 500) {
        out->status = 502;
        out->retryable = true;
    } else if (status < 400) {
        out->status = 502;
    }
    if (out->type == NULL) {
        out->type = out->status >= 500 ? "api_error" : "invalid_request_error";
    }
    if (out->status >= 500) {
        /* one type for every provider-side failure, whatever the provider called it */
        out->type = "api_error";
    }
    return 0;
}
