/*
 * Module-private declarations of the frontends (core/gateway/fe_*.c): the
 * frontend objects frontend.c lists, and helpers they share.
 */
#ifndef SL_CORE_GATEWAY_FRONTEND_INTERNAL_H
#define SL_CORE_GATEWAY_FRONTEND_INTERNAL_H

#include "core/gateway/frontend.h"

extern const sl_frontend_t sl__frontend_chat;
extern const sl_frontend_t sl__frontend_embeddings;
extern const sl_frontend_t sl__frontend_messages;
extern const sl_frontend_t sl__frontend_responses;

/*
 * Reads an OpenAI chat body into call as the chat frontend does (call->native,
 * when already set, is kept: a frontend that translated the client's body
 * into chat reads the result with this). Returns 0 or SL_EPARSE with *err.
 */
int sl__frontend_read_chat(sl_call_t *call, sl_str_t body, sl_error_t *err);

/* Fills *err as a 400 invalid_request_error. Returns SL_EPARSE. */
int sl__frontend_bad_request(sl_error_t *err, const char *code, const char *param,
                             const char *message);

/* One array of Responses input (or output) items, in reader doc. */
typedef struct sl_rs_items {
    const sl_json_t *doc;
    int items;
} sl_rs_items_t;

/*
 * The Responses frontend's translation (fe_responses.c): the client's
 * request (call->native_doc, which sl_json_strict() took), with the
 * conversation of a previous response (history: n arrays of input and
 * output items, oldest first, each in a reader sl_json_strict() took; NULL
 * and 0 for none) before its input, written into the internal chat body
 * and its tokens, set in call as sl__frontend_read_chat() sets a chat body
 * (from what was written, without a pass over it); sets
 * call->untranslatable. Returns 0 or SL_EPARSE with *err.
 */
int sl__frontend_responses_translate(sl_call_t *call, const sl_rs_items_t *history, size_t n,
                                     sl_error_t *err);

/* The Responses frontend's answer side (fe_responses_answer.c): see sl_frontend_t. */
int sl__responses_encode_answer(const sl_call_t *call, const sl_answer_t *a, sl_buf_t *out);
void *sl__responses_stream_open(const sl_call_t *call);
int sl__responses_encode_events(void *state, const sl_evs_t *evs, sl_buf_t *out);
int sl__responses_encode_end(void *state, const sl_usage_t *usage, sl_buf_t *out);
int sl__responses_encode_stream_error(void *state, const sl_error_t *e, sl_buf_t *out);
int sl__responses_encode_error(sl_pool_t *pool, const sl_error_t *e, sl_str_t *out);

/*
 * The response object a Responses stream's clean end carried (state from
 * stream_open, after encode_end), in the request pool; empty before.
 */
sl_str_t sl__frontend_responses_final(void *state);

#endif
