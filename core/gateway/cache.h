/*
 * The response cache, gateway side: what a request's cache key is made of,
 * how an answer is kept and replayed, and what the semantic cache compares.
 * The store is storage/cache.h; the driver's phases (lookup before the
 * plan, fill after the record) are in core/gateway/cache.c and
 * cache_semantic.c, declared in driver_internal.h.
 *
 * Exact key: SHA-256 over the frontend, the public model name, the scope
 * (the key, its team, or everyone: cache.scope), the request headers that
 * change an answer (anthropic-version, anthropic-beta, openai-beta) and the
 * canonical form of the client's body without its top-level stream and
 * stream_options. The canonical form is independent of key order,
 * whitespace, how a string is escaped ("\u00e9" and "é" are one string) and
 * how a number is written (1, 1.0, 10e-1 and 1e0 are one number; integers
 * are kept digit for digit, however long).
 *
 * Answers are kept in the typed form of core/gateway/call.h (id, model,
 * choices with text, reasoning, signature, tool calls and finish, usage),
 * so one filled from a JSON answer replays as a stream and one filled from
 * a stream replays as JSON, in the client's frontend (any sl_frontend_t).
 * Embeddings answers are kept as the provider's bytes.
 *
 * Worker context (loop or thread pool); everything in the pool given.
 */
#ifndef SL_CORE_GATEWAY_CACHE_H
#define SL_CORE_GATEWAY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/base/str.h"
#include "core/gateway/call.h"

/*
 * Appends the canonical form of value v of doc to out: objects with their
 * members sorted by decoded key, strings decoded, numbers as sign, digits
 * without leading or trailing zeros and a decimal exponent, every part
 * length-prefixed so that two different documents never give the same
 * bytes. At the top level, the keys in skip (NULL-terminated, may be NULL)
 * are left out when v is an object; the value omit (-1: none) is written
 * as a placeholder. Returns 0, or SL_EPARSE for a string jansson would
 * refuse (the frontend has refused those already).
 */
int sl_cache_canonical(const sl_json_t *doc, int v, const char *const *skip, int omit,
                       sl_pool_t *pool, sl_buf_t *out);

/* A number's canonical text ("-15e-1" for -1.50), appended to out. Returns 0 or SL_EPARSE. */
int sl_cache_number(sl_str_t text, sl_buf_t *out);

/* The directives of a request's Cache-Control header. */
typedef struct sl_cache_cc {
    bool no_cache; /* skip the lookup, fill (refresh) the entry */
    bool no_store; /* neither look up nor fill */
    bool max_age;  /* max_age_s is set: older entries do not count */
    uint64_t max_age_s;
} sl_cache_cc_t;

/*
 * Reads a Cache-Control value: no-cache, no-store and max-age=N (any case,
 * comma-separated, N in seconds; a malformed N counts as 0), other
 * directives ignored.
 */
void sl_cache_cc_parse(sl_str_t value, sl_cache_cc_t *out);

/*
 * The content words of text (UTF-8), the rule the semantic cache uses to
 * tell "the capital of Spain" from "the capital of Germany" however close
 * their embeddings are:
 *  1. ASCII letters are lower-cased;
 *  2. words are the longest runs of letters, digits and non-ASCII
 *     characters; a '.' or ',' between two digits belongs to the number
 *     ("3.5", "1,000"); anything else (spaces, punctuation, apostrophes)
 *     separates, so "Spain's" gives "spain" and "s";
 *  3. words of one ASCII letter, and the stopwords (sl_cache_stopword),
 *     are dropped;
 *  4. a word of 5 or more characters ending in "ies" ends in "y" instead,
 *     and one of 4 or more ending in "s" but not "ss", "us" or "is" loses
 *     the "s" ("capitals" -> "capital", "cities" -> "city");
 *  5. what is left, without repeats, is the set of content words: names,
 *     numbers, nouns and the other words that carry the question.
 * Two prompts have the same content words when the sets are equal. Stores
 * the words' 32-bit FNV-1a hashes, sorted and unique, in *out (pool) and
 * their number in *n (at most max; more are dropped, which makes a match
 * less likely, never more). Returns 0.
 */
int sl_cache_words(sl_str_t text, sl_pool_t *pool, size_t max, uint32_t **out, uint32_t *n);

/* True when word (lower case) is one of the stopwords the content-word rule drops. */
bool sl_cache_stopword(const char *word, size_t len);

/*
 * The last user turn of a chat body (the internal request: messages of
 * OpenAI's shape), for the semantic cache: *content is the value index of
 * its content and *text its text (a string, or the text parts of an
 * array joined with "\n", in pool). SL_EDENIED when the semantic cache does
 * not apply: no messages, more than max_messages of them, a tool turn
 * anywhere (a tool or function message, an assistant's tool calls), a last
 * message that is not the user's, or content other than text.
 */
int sl_cache_prompt(const sl_json_t *doc, unsigned max_messages, sl_pool_t *pool, int *content,
                    sl_str_t *text);

/* Encodes a whole answer (typed, or raw for embeddings) for the store. */
void sl_cache_answer_encode(const sl_answer_t *a, sl_buf_t *out);

/*
 * Decodes what sl_cache_answer_encode wrote; a's strings point into body,
 * which must outlive it, and its arrays are in pool. Returns 0 or
 * SL_EPARSE.
 */
int sl_cache_answer_decode(sl_str_t body, sl_pool_t *pool, sl_answer_t *a);

/*
 * The typed events a stream client gets for a: START, then per choice its
 * reasoning, its text in pieces of about 64 bytes (never inside an escape
 * or a character), each tool call (TOOL_CALL, TOOL_ARGS) and FINISH, then
 * USAGE. Appended to out (its pool holds the pieces).
 */
void sl_cache_replay_events(const sl_answer_t *a, sl_evs_t *out);

/*
 * A stream's events gathered into a whole answer while they go to the
 * client. At most SL_CACHE_ACC_MAX bytes of text: a longer answer is not
 * kept (sl_cache_acc_answer refuses it).
 */
#define SL_CACHE_ACC_MAX (8u * 1024 * 1024)

typedef struct sl_cache_acc sl_cache_acc_t;

/* A new, empty accumulator in pool (its buffers are freed with the pool). */
sl_cache_acc_t *sl_cache_acc_create(sl_pool_t *pool);

/* Forgets everything gathered (another attempt starts over). */
void sl_cache_acc_reset(sl_cache_acc_t *acc);

/* Gathers one batch of events. */
void sl_cache_acc_add(sl_cache_acc_t *acc, const sl_evs_t *evs);

/*
 * The answer gathered, with usage (NULL: the last SL_EV_USAGE), in the
 * accumulator's pool. Returns 0, or SL_EDENIED when the stream did not end
 * cleanly (no SL_EV_DONE, an error), was too long, or had no output.
 */
int sl_cache_acc_answer(sl_cache_acc_t *acc, const sl_usage_t *usage, sl_answer_t *out);

#endif
