/*
 * The frontend table, by client API.
 */
#include "core/gateway/frontend.h"

#include "core/gateway/frontend_internal.h"

static const sl_frontend_t *const frontends[SL_API_COUNT] = {
    [SL_API_CHAT] = &sl__frontend_chat,
    [SL_API_EMBEDDINGS] = &sl__frontend_embeddings,
    [SL_API_MESSAGES] = &sl__frontend_messages,
    [SL_API_RESPONSES] = &sl__frontend_responses,
};


const sl_frontend_t *
sl_frontend_get(sl_api_e api)
{
    return (unsigned) api < SL_API_COUNT ? frontends[api] : NULL;
}
