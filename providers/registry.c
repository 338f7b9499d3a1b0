/*
 * The registry: one line per adapter. Presets of the OpenAI-compatible family
 * are kinds of the openai adapter and are listed by it.
 */
#include "providers/registry.h"

#include <string.h>

extern const sl_provider_ops_t sl_provider_openai;

const sl_provider_ops_t *const sl_providers[] = {
    &sl_provider_openai,
    NULL,
};


const sl_provider_ops_t *
sl_provider_find(const char *kind)
{
    for (size_t i = 0; sl_providers[i] != NULL; i++) {
        if (strcmp(sl_providers[i]->kind, kind) == 0) {
            return sl_providers[i];
        }
    }
    return NULL;
}
