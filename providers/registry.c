/*
 * The registry: one line per adapter. Presets of the OpenAI-compatible family
 * are kinds defined in openai.c (same hooks, their own default base_url and
 * quirks); each still needs its line here.
 */
#include "providers/registry.h"

#include <string.h>

extern const sl_provider_ops_t sl_provider_anthropic;
extern const sl_provider_ops_t sl_provider_openai;
extern const sl_provider_ops_t sl_provider_azure;
extern const sl_provider_ops_t sl_provider_deepseek;
extern const sl_provider_ops_t sl_provider_mistral;
extern const sl_provider_ops_t sl_provider_groq;
extern const sl_provider_ops_t sl_provider_together;
extern const sl_provider_ops_t sl_provider_fireworks;
extern const sl_provider_ops_t sl_provider_xai;
extern const sl_provider_ops_t sl_provider_openrouter;
extern const sl_provider_ops_t sl_provider_perplexity;
extern const sl_provider_ops_t sl_provider_cerebras;
extern const sl_provider_ops_t sl_provider_ollama;
extern const sl_provider_ops_t sl_provider_vllm;
extern const sl_provider_ops_t sl_provider_echo;

/* one adapter a line (clang-format would pack them) */
/* clang-format off */
const sl_provider_ops_t *const sl_providers[] = {
    &sl_provider_openai,
    &sl_provider_azure,
    &sl_provider_deepseek,
    &sl_provider_mistral,
    &sl_provider_groq,
    &sl_provider_together,
    &sl_provider_fireworks,
    &sl_provider_xai,
    &sl_provider_openrouter,
    &sl_provider_perplexity,
    &sl_provider_cerebras,
    &sl_provider_ollama,
    &sl_provider_vllm,
    &sl_provider_anthropic,
    &sl_provider_echo,
    NULL,
};
/* clang-format on */


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
