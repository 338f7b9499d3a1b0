/*
 * The table of provider adapters, by YAML `kind:`. The only extern table
 * shared across modules (nginx ngx_modules[]).
 */
#ifndef SL_PROVIDERS_REGISTRY_H
#define SL_PROVIDERS_REGISTRY_H

#include "providers/provider.h"

/* NULL-terminated. */
extern const sl_provider_ops_t *const sl_providers[];

/* Finds an adapter by kind; NULL when no adapter has that kind. Any context. */
const sl_provider_ops_t *sl_provider_find(const char *kind);

#endif
