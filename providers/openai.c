/*
 * OpenAI wire format (and the OpenAI-compatible family): passthrough with
 * the model name rewritten and the provider's credentials put in.
 */
#include "providers/provider.h"

const sl_provider_ops_t sl_provider_openai = {
    .kind = "openai",
};
