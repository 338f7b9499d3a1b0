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

/*
 * The Responses frontend's translation (fe_responses.c): the client's
 * request in (a DOM of call->native), with the conversation of a previous
 * response (history: an array of input and output items, or NULL) before
 * its input, into the internal chat body read as sl__frontend_read_chat
 * reads one; sets call->untranslatable. Returns 0 or SL_EPARSE with *err.
 */
int sl__frontend_responses_translate(sl_call_t *call, json_t *in, json_t *history, sl_error_t *err);

/*
 * The response object a Responses stream's clean end carried (state from
 * stream_open, after encode_end), in the request pool; empty before.
 */
sl_str_t sl__frontend_responses_final(void *state);

#endif
