/*
 * Azure OpenAI: OpenAI's bodies under Azure's paths. A model is served by a
 * deployment, so the path is /openai/deployments/{deployment}/chat/completions
 * (or /embeddings) with ?api-version=; the credential goes in `api-key`.
 * The provider's keys are `api_version` (default 2024-10-21) and
 * `deployments` (model name -> deployment name; a target model not in the
 * map is taken as the deployment name, and refused with SL_ENOTFOUND when it
 * cannot be one). Bodies, answers, streams and errors
 * are the OpenAI adapter's (openai_internal.h), not copies of it; Azure's
 * stream opens with a "choices": [] chunk of content-filter notes, which is
 * dropped. A client of OpenAI's Responses API is forwarded natively to
 * Azure's v1 API, POST /openai/v1/responses, the deployment named as the
 * body's model (the target's model, mapped through deployments).
 */
#include "providers/provider.h"

#include <stdio.h>
#include <string.h>

#include "core/base/errno.h"
#include "providers/openai_internal.h"

#define AZURE_API_VERSION "2024-10-21"

typedef struct azure_deployment {
    const char *model;
    const char *name;
} azure_deployment_t;

typedef struct azure_conf {
    const char *api_version;
    azure_deployment_t *deployments;
    size_t ndeployments;
} azure_conf_t;

static int azure_conf_parse(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf);
static bool azure_valid_name(const char *s);
static bool azure_valid_deployment(const char *s);
static int azure_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out);
static int azure_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev,
                              sl_evs_t *out);

static const sl__openai_quirks_t azure_quirks = { "azure", NULL, true };

const sl_provider_ops_t sl_provider_azure = {
    .kind = "azure",
    .default_base_url = NULL, /* https://RESOURCE.openai.azure.com: no default */
    .api = SL_API_CHAT,
    .native_apis = 1u << SL_API_RESPONSES,
    .conf_parse = azure_conf_parse,
    .build_request = azure_build_request,
    .parse_response = sl__openai_parse_response,
    .stream_event = azure_stream_event,
    .map_error = sl__openai_map_error,
};


static int
azure_conf_parse(sl_conf_ctx_t *cx, const sl_conf_node_t *node, void **conf)
{
    azure_conf_t *az = sl_pcalloc(sl_conf_pool(cx), sizeof(*az));
    const sl_conf_node_t *map;
    size_t n;

    az->api_version = AZURE_API_VERSION;
    if (sl_conf_get_str(cx, node, "api_version", &az->api_version) != 0) {
        return SL_ECONF;
    }
    if (!azure_valid_name(az->api_version)) {
        return sl_conf_errorf(cx, sl_conf_get(cx, node, "api_version"),
                              "api_version \"%s\" must be 1 to 64 of A-Z a-z 0-9 - . _",
                              az->api_version);
    }
    map = sl_conf_get(cx, node, "deployments");
    if (map != NULL && !sl_conf_node_is_map(map)) {
        return sl_conf_errorf(cx, map, "deployments must be a mapping of model to deployment");
    }
    n = sl_conf_map_size(map);
    az->deployments = sl_pcalloc(sl_conf_pool(cx), (n > 0 ? n : 1) * sizeof(azure_deployment_t));
    for (size_t i = 0; i < n; i++) {
        const sl_conf_node_t *k, *v;
        const char *model, *name;

        if (sl_conf_map_pair(cx, map, i, &k, &v) != 0) {
            return SL_ECONF;
        }
        model = sl_conf_node_str(k, NULL);
        name = v != NULL ? sl_conf_node_str(v, NULL) : NULL;
        if (model == NULL || name == NULL) {
            return sl_conf_errorf(cx, v != NULL ? v : k,
                                  "a deployments entry maps a model name to a deployment name");
        }
        if (!azure_valid_deployment(name)) {
            return sl_conf_errorf(cx, v,
                                  "deployment \"%s\" must be 1 to 64 of A-Z a-z 0-9 - . _, "
                                  "starting with a letter or digit",
                                  name);
        }
        az->deployments[i].model = sl_pstrdup(sl_conf_pool(cx), model);
        az->deployments[i].name = sl_pstrdup(sl_conf_pool(cx), name);
    }
    az->ndeployments = n;
    *conf = az;
    return 0;
}


/* Azure's resource names: what a path segment and a query value take as they are. */
static bool
azure_valid_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 64) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
              || c == '.' || c == '_')) {
            return false;
        }
    }
    return true;
}


/*
 * A deployment name as Azure accepts one (and as a path segment takes it
 * as is): 1 to 64 of A-Z a-z 0-9 - . _, starting with a letter or digit,
 * the rule of Azure's Cognitive Services resource names
 * (^[a-zA-Z0-9][a-zA-Z0-9_.-]*$). So never "." or "..", which would walk
 * the upstream path.
 */
static bool
azure_valid_deployment(const char *s)
{
    char c = s[0];

    return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
           && azure_valid_name(s);
}


static int
azure_build_request(const void *conf, sl_call_t *call, sl_upstream_req_t *out)
{
    const azure_conf_t *az = conf;
    const sl_provider_conf_t *p = call->target->provider;
    const char *endpoint = sl__openai_api_path(call->api);
    const char *key = call->api_key != NULL ? call->api_key->value : NULL;
    const char *deployment = NULL;
    const char *path;

    if (endpoint == NULL || az == NULL) {
        return SL_EDENIED;
    }

    for (size_t i = 0; i < az->ndeployments; i++) {
        if (strcmp(az->deployments[i].model, call->target->model) == 0) {
            deployment = az->deployments[i].name;
            break;
        }
    }
    if (deployment == NULL) {
        /* the model is the deployment: a client's "az/.." must not walk the path */
        if (!azure_valid_deployment(call->target->model)) {
            return SL_ENOTFOUND;
        }
        deployment = call->target->model;
    }
    if (call->client_api == SL_API_RESPONSES) {
        /* Azure's v1 API: the deployment is the body's model, no api-version */
        path = sl_psprintf(call->pool, "%s/openai/v1/responses", p->base_path);
        return sl__openai_responses_build(call, deployment, path, key != NULL ? "api-key" : NULL,
                                          key, out);
    }
    path = sl_psprintf(call->pool, "%s/openai/deployments/%s%s?api-version=%s", p->base_path,
                       deployment, endpoint, az->api_version);
    return sl__openai_build(call, NULL, path, key != NULL ? "api-key" : NULL, key, out);
}


static int
azure_stream_event(const void *conf, sl_stream_t *st, const sl_sse_event_t *ev, sl_evs_t *out)
{
    (void) conf;
    if (st->call->forwarded && st->call->client_api == SL_API_RESPONSES) {
        return sl__openai_responses_stream(st, ev, out);
    }
    return sl__openai_stream(st, ev, &azure_quirks, out);
}
