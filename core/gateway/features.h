/*
 * What the router needs to know about one request: its estimated size,
 * whether it streams, offers tools or carries images, who sent it, and a
 * deterministic complexity score. Read from the internal (OpenAI chat
 * shaped) request with the zero-copy reader (core/base/json.h), never a DOM;
 * Anthropic-style fields (top-level "system", "image" and "tool_use"
 * blocks) are understood too.
 *
 * Prompt size. prompt_bytes is the text a model reads: every message's
 * content (strings and "text" parts, decoded), tool-call arguments, tool
 * results, the system prompt, the raw bytes of the tools' definitions, and
 * SL_FEATURES_IMAGE_BYTES per image. prompt_tokens = ceil(prompt_bytes /
 * 4), the same rule sl_pricing_estimate() prices with: close for English
 * and code, low for scripts with multi-byte characters.
 *
 * Complexity (sl_complexity_score), 0..100, the sum of five parts:
 *   size       min(25, prompt_tokens / 160)            25 at 4000 tokens
 *   turns      min(15, 3 x (user and assistant messages - 1))
 *   code       10 for a fenced ``` block, 15 for two or more, plus 2 per
 *              distinct code marker (def, class, function, #include, import,
 *              return, =>, const, public, SELECT, fn, };, ();, !==, std::),
 *              at most 25 in all; in user messages only
 *   tools      10 when the request offers tools, +5 when the conversation
 *              already holds tool calls or results
 *   reasoning  15 per distinct strong cue (prove, proof, step by step,
 *              step-by-step, derive, analyze, analyse, analysis) and 5 per
 *              weak one (why, explain, compare, evaluate, debug, optimize,
 *              optimise, design, trade-off, tradeoff, reason), whole words,
 *              any case, at most 35; in user messages only
 * capped at 100. A request is "complex" at SL_COMPLEXITY_THRESHOLD or
 * more, else "simple". User text beyond SL_FEATURES_SCAN_MAX bytes is not
 * scanned for code or cues (the size part still counts it).
 *
 * Worker context; allocation only in the pool given (decoded strings).
 */
#ifndef SL_CORE_GATEWAY_FEATURES_H
#define SL_CORE_GATEWAY_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf/conf.h"
#include "core/http/http.h"
#include "core/base/json.h"
#include "core/base/pool.h"

#define SL_COMPLEXITY_THRESHOLD 30
#define SL_FEATURES_IMAGE_BYTES 1024         /* an image counts as 256 tokens */
#define SL_FEATURES_SCAN_MAX    (256 * 1024) /* user text scanned for code and cues */

/* The parts of a complexity score (see above). */
typedef struct sl_complexity {
    unsigned score; /* 0..100 */
    unsigned size;
    unsigned turns;
    unsigned code;
    unsigned tools;
    unsigned reasoning;
} sl_complexity_t;

/*
 * A request's routing features. sl_features_from_chat fills the request
 * part; the driver sets headers, key_name and team. The complexity is
 * computed on first use only (a rule that asks for it), then kept.
 */
typedef struct sl_features {
    uint64_t prompt_tokens; /* estimate, see above */
    size_t prompt_bytes;    /* what the estimate is made of (for sl_pricing_estimate) */
    uint64_t max_tokens;    /* the client's output limit; 0: none given */
    bool stream;
    bool has_tools;  /* the request offers tools (or functions) */
    bool has_images; /* some message carries an image */

    const sl_http_header_t *headers; /* the client's request headers */
    size_t nheaders;
    const char *key_name; /* the client key's name; NULL for static keys */
    const char *team;     /* the key's team; NULL for none */

    /* private to features.c: the lazily computed complexity */
    const sl_json_t *doc;
    int root;
    sl_pool_t *pool;
    bool scored;
    sl_complexity_t complexity;
} sl_features_t;

/* Zeroes f: no request, nothing known (an empty prompt, simple). */
void sl_features_init(sl_features_t *f);

/*
 * Fills f's request part from the chat request at value root of doc (an
 * object), which must outlive f; pool (the request pool) holds decoded
 * strings later. Leaves headers, key_name and team alone. Returns 0, or
 * SL_EPARSE when root is not an object (f then describes an empty prompt).
 */
int sl_features_from_chat(sl_features_t *f, const sl_json_t *doc, int root, sl_pool_t *pool);

/* The complexity of f's request, computed on the first call (zero without a request). */
const sl_complexity_t *sl_features_complexity(sl_features_t *f);

/* SL_COMPLEXITY_SIMPLE or SL_COMPLEXITY_COMPLEX by the threshold. */
sl_complexity_e sl_features_class(sl_features_t *f);

/*
 * Scores the chat request at root of doc (see above). Returns 0, or
 * SL_EPARSE when root is not an object (out is then all zero).
 */
int sl_complexity_score(const sl_json_t *doc, int root, sl_pool_t *pool, sl_complexity_t *out);

#endif
