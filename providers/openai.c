/*
 * OpenAI wire format: the client already speaks it, so the adapter only
 * rewrites `model` to the target's name, puts in the provider's credentials
 * and reads usage back. The OpenAI-compatible family and Azure reuse it.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errno.h"

static int openai_build_request(const void *conf, const sl_call_t *call, sl_upstream_req_t *out);
static int openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body,
                                 sl_reply_t *out);
static int openai_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                               sl_chunks_t *out);
static int openai_map_error(const void *conf, int status, const sl_buf_t *body, sl_pool_t *pool,
                            sl_error_t *out);
static void openai_read_usage(json_t *usage, sl_usage_t *u);
static void openai_free(void *p);

const sl_provider_ops_t sl_provider_openai = {
    .kind = "openai",
    .conf_parse = NULL,
    .build_request = openai_build_request,
    .parse_response = openai_parse_response,
    .stream_event = openai_stream_event,
    .map_error = openai_map_error,
};


static void
openai_free(void *p)
{
    free(p);
}


static int
openai_build_request(const void *conf, const sl_call_t *call, sl_upstream_req_t *out)
{
    const sl_provider_conf_t *p = call->target->provider;
    const char *endpoint;
    sl_http_header_t *h;
    size_t n = 0;
    char *body;

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
    if (json_object_set_new(call->body, "model", json_string(call->target->model)) != 0) {
        return SL_EPARSE;
    }
    if (call->stream && call->endpoint == SL_ENDPOINT_CHAT) {
        /* usage is what the ledger bills: ask for it even when the client did not
         * (the proxy hides that extra chunk from such a client) */
        json_t *so = json_object_get(call->body, "stream_options");

        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(call->body, "stream_options", so);
        }
        json_object_set_new(so, "include_usage", json_true());
    }
    body = json_dumps(call->body, JSON_COMPACT);
    if (body == NULL) {
        return SL_EPARSE;
    }
    sl_pool_on_destroy(call->pool, openai_free, body);

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
    out->body = body;
    out->body_len = strlen(body);
    return 0;
}


static void
openai_read_usage(json_t *usage, sl_usage_t *u)
{
    json_t *details;

    if (!json_is_object(usage)) {
        return;
    }
    u->known = true;
    u->prompt_tokens = (uint64_t) json_integer_value(json_object_get(usage, "prompt_tokens"));
    u->completion_tokens =
        (uint64_t) json_integer_value(json_object_get(usage, "completion_tokens"));
    details = json_object_get(usage, "prompt_tokens_details");
    if (json_is_object(details)) {
        u->cached_tokens = (uint64_t) json_integer_value(json_object_get(details, "cached_tokens"));
    }
}


static int
openai_parse_response(const void *conf, sl_call_t *call, const sl_buf_t *body, sl_reply_t *out)
{
    json_t *root;
    json_t *model;

    (void) conf;
    /* the client gets the provider's bytes unchanged; only usage is read */
    out->body = body->p;
    out->body_len = body->len;
    root = json_loadb(body->p, body->len, 0, NULL);
    if (root == NULL) {
        return SL_EUPSTREAM;
    }
    openai_read_usage(json_object_get(root, "usage"), &out->usage);
    model = json_object_get(root, "model");
    if (json_is_string(model)) {
        out->served_model = sl_pstrdup(call->pool, json_string_value(model));
    }
    json_decref(root);
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
    json_t *root;
    json_t *choices;
    json_t *usage;
    json_t *model;
    bool drop = false;

    (void) conf;
    if (sl_str_eq(ev->data, "[DONE]")) {
        st->done = true;
        return 0;
    }
    root = json_loadb(ev->data.p, ev->data.len, 0, NULL);
    if (root != NULL) {
        size_t i;
        json_t *choice;

        usage = json_object_get(root, "usage");
        choices = json_object_get(root, "choices");
        if (json_is_object(usage)) {
            openai_read_usage(usage, &st->usage);
            drop =
                !st->client_wants_usage && json_is_array(choices) && json_array_size(choices) == 0;
        }
        json_array_foreach(choices, i, choice)
        {
            json_t *delta = json_object_get(choice, "delta");
            json_t *content = json_object_get(delta, "content");
            json_t *calls = json_object_get(delta, "tool_calls");
            size_t k;
            json_t *call;

            if (json_is_string(content)) {
                st->content_bytes += json_string_length(content);
            }
            json_array_foreach(calls, k, call)
            {
                json_t *args = json_object_get(json_object_get(call, "function"), "arguments");

                if (json_is_string(args)) {
                    st->content_bytes += json_string_length(args);
                }
            }
        }
        model = json_object_get(root, "model");
        if (st->served_model == NULL && json_is_string(model)) {
            st->served_model = sl_pstrdup(st->call->pool, json_string_value(model));
        }
        json_decref(root);
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
