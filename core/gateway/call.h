/*
 * The shared pipeline types: what flows between a frontend (one client wire
 * format), the driver, and an adapter (one provider wire format). Providers
 * include this header and core/http/http.h, never the upstream client or storage.
 *
 * The internal request is an OpenAI-shaped JSON body (chat completions or
 * embeddings) read once with core/base/json.h and never edited: every attempt
 * gets its own sl_call_t view of it, and an adapter that wants a DOM builds
 * a private one with sl_call_json(). The client's own body travels along
 * (call->native) so that an adapter speaking the client's wire format can
 * forward it natively.
 *
 * Answers come back typed: a whole answer as sl_answer_t, a stream as
 * batches of sl_ev_t (text delta, tool-call delta, usage, finish, error).
 * Every string in them is a JSON string literal, quotes included, already
 * checked to be one jansson accepts (valid UTF-8, no control characters, no
 * \u0000): adapters splice the provider's own literals, frontends splice
 * them into their output, and only what needs the text (filters, the
 * cache's content words) decodes it (sl_jstr_decode).
 *
 * Everything here lives in the request pool.
 */
#ifndef SL_CORE_GATEWAY_CALL_H
#define SL_CORE_GATEWAY_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/base/buf.h"
#include "core/conf/conf.h"
#include "core/http/http.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/base/str.h"

/* Wire formats: the APIs clients speak (frontends) and providers speak (adapters). */
typedef enum sl_api {
    SL_API_CHAT = 0,   /* OpenAI chat completions */
    SL_API_EMBEDDINGS, /* OpenAI embeddings */
    SL_API_MESSAGES,   /* Anthropic messages */
    SL_API_RESPONSES,  /* OpenAI responses */
    SL_API_COUNT,
} sl_api_e;

/* "chat", "embeddings", "messages", "responses": the ledger's endpoint names. */
const char *sl_api_name(sl_api_e api);

/* Token counts of one exchange, as the provider reported them. */
typedef struct sl_usage {
    uint64_t prompt_tokens;         /* every input token: cached and cache writes included */
    uint64_t completion_tokens;     /* every output token: reasoning included */
    uint64_t cached_tokens;         /* input tokens read from the provider's cache */
    uint64_t cache_write_tokens;    /* input tokens written to the provider's cache */
    uint64_t cache_write_1h_tokens; /* of cache_write_tokens, those kept for 1 hour */
    uint64_t reasoning_tokens;      /* of completion_tokens, reasoning ("thinking") */
    bool known;                     /* false when the provider said nothing */
    bool estimated;                 /* true when sluice estimated the numbers */
} sl_usage_t;

/*
 * One attempt's view of the request, as the driver hands it to an adapter.
 * Fields above `body` are shared by every attempt and read-only.
 */
typedef struct sl_call {
    sl_pool_t *pool;             /* request pool: adapters allocate here */
    sl_api_e api;                /* what raw is: SL_API_CHAT or SL_API_EMBEDDINGS */
    sl_api_e client_api;         /* the frontend the client used */
    sl_str_t raw;                /* the internal request: OpenAI-shaped JSON */
    const sl_json_t *doc;        /* raw, tokenized: a JSON object */
    int model;                   /* doc value of "model" (a non-empty string) */
    int stream_options;          /* doc value of "stream_options", or -1 */
    sl_str_t native;             /* the client's own body (== raw when client_api is api) */
    const sl_json_t *native_doc; /* native, tokenized */
    bool stream;                 /* the client asked for a stream */
    bool client_wants_usage;     /* a chat client asked for stream_options.include_usage */
    uint64_t max_tokens;         /* the client's output limit, 0 when it set none */
    const char *request_id;
    const sl_http_header_t *headers; /* client headers that may go upstream */
    size_t nheaders;
    /*
     * Why the client's body cannot be translated (a field only the client's
     * own wire format has: a hosted tool, a server tool, a document by URL),
     * or NULL. raw is then a stand-in that is never sent: only an adapter
     * speaking client_api natively may serve the call; every other target
     * refuses it with a 400 saying this.
     */
    const char *untranslatable;

    /* this attempt's own: */
    json_t *body;               /* private DOM of raw: NULL until sl_call_json() */
    const sl_target_t *target;  /* provider and the provider's model name */
    const sl_secret_t *api_key; /* the credential this attempt uses, NULL for none */
    bool forwarded;             /* build_request forwarded native (answers come in client_api) */
    /*
     * Set by the attempt before parse_response: nothing reads a whole
     * answer's choices but the frontend, which sends raw when its raw_api
     * is client_api (no cache store, no output guardrail, no live-tail
     * text). The adapter may then leave them unread (nchoices 0) when it
     * sets raw in client_api.
     */
    bool raw_answer;
} sl_call_t;

/*
 * This attempt's DOM of the internal request, parsed on first use and
 * released with the request pool. The adapter may edit it: the next
 * attempt gets a fresh one. NULL when jansson refuses bytes the reader
 * accepted (treat as SL_EPARSE).
 */
json_t *sl_call_json(sl_call_t *call);

/* Why an answer ended. */
typedef enum sl_finish {
    SL_FINISH_NONE = 0, /* not given (yet) */
    SL_FINISH_STOP,     /* natural end, or a stop sequence */
    SL_FINISH_LENGTH,   /* the output limit */
    SL_FINISH_TOOL_CALLS,
    SL_FINISH_CONTENT_FILTER, /* refused or filtered by the provider */
    SL_FINISH_STOP_SEQUENCE,  /* a stop sequence (Anthropic tells it apart) */
    SL_FINISH_PAUSE,          /* Anthropic pause_turn: a long turn paused */
} sl_finish_e;

/* One tool call of an answer; literals. */
typedef struct sl_tool_call {
    sl_str_t id;
    sl_str_t name;
    sl_str_t args; /* the arguments' JSON text, as a JSON string literal */
} sl_tool_call_t;

/*
 * One piece of a choice in the order the provider wrote it: interleaved
 * thinking (thinking, tool call, thinking, tool call) and redacted
 * thinking need the order and one signature per block, which the joined
 * fields of sl_choice_t cannot give.
 */
typedef enum sl_part_type {
    SL_PART_TEXT = 1,  /* text: a piece of answer text */
    SL_PART_REASONING, /* text and signature: one reasoning block */
    SL_PART_REDACTED,  /* text: the provider's opaque (redacted) reasoning data */
    SL_PART_TOOL,      /* tool: index into the choice's tools */
} sl_part_type_e;

typedef struct sl_part {
    sl_part_type_e type;
    sl_str_t text; /* literal */
    sl_str_t signature;
    size_t tool;
} sl_part_t;

/* One choice of a whole answer. Empty literals (len 0) are absent fields. */
typedef struct sl_choice {
    unsigned index;
    sl_str_t text;      /* answer text */
    sl_str_t reasoning; /* reasoning ("thinking") text */
    sl_str_t signature; /* the provider's signature of the reasoning, kept byte-identical */
    sl_tool_call_t *tools;
    size_t ntools;
    sl_finish_e finish;
    /*
     * The same output as ordered pieces, when the adapter gives them (0:
     * only the fields above); a frontend that keeps blocks apart reads these.
     */
    sl_part_t *parts;
    size_t nparts;
} sl_choice_t;

/* A whole answer. */
typedef struct sl_answer {
    sl_str_t id;    /* literal, or empty */
    sl_str_t model; /* literal: the model the provider says it used, or empty */
    int64_t created;
    sl_choice_t *choices;
    size_t nchoices;
    sl_usage_t usage;
    /*
     * The provider's body as a client of raw_api should get it (an adapter
     * whose wire format is the client's), or empty: then the frontend
     * encodes the typed answer. Embeddings answers are raw only.
     */
    sl_str_t raw;
    sl_api_e raw_api;
} sl_answer_t;

typedef enum sl_ev_type {
    SL_EV_START = 1, /* id, name (the model): the answer's head; preamble */
    SL_EV_TEXT,      /* choice, text: a piece of answer text */
    SL_EV_REASONING, /* choice, text and/or signature: a piece of reasoning */
    SL_EV_TOOL_CALL, /* choice, index, id, name: a tool call starts */
    SL_EV_TOOL_ARGS, /* choice, index, text: a piece of its JSON arguments */
    SL_EV_FINISH,    /* choice, finish */
    SL_EV_USAGE,     /* usage: the counts so far (the last one stands) */
    SL_EV_ERROR,     /* error: the provider reported a failure in the stream */
    /*
     * The provider ended the stream cleanly. text, for a client of the
     * adapter's own API whose wire format closes with an event of the
     * provider's (Responses: response.completed), is that event SSE framed:
     * the frontend writes it at the clean end (encode_end), after the row.
     */
    SL_EV_DONE,
    SL_EV_REDACTED, /* choice, text: opaque (redacted) reasoning data, a block of its own */
} sl_ev_type_e;

/* One typed stream event; literals as in sl_answer_t. */
typedef struct sl_ev {
    sl_ev_type_e type;
    unsigned choice;
    unsigned index; /* tool call index within the choice */
    sl_str_t id;
    sl_str_t name;
    sl_str_t text;
    sl_str_t signature;
    sl_finish_e finish;
    const sl_usage_t *usage;
    const struct sl_error *error;
} sl_ev_t;

/*
 * True for the events that are real output: the commit point of a stream.
 * An empty text or reasoning piece (OpenAI's first chunk carries content
 * "") is preamble, not output.
 */
bool sl_ev_is_output(const sl_ev_t *ev);

/*
 * The events one upstream event turned into. raw, when its p is not NULL,
 * is what a client of raw_api gets instead of the encoded events (SSE
 * framed; len 0: nothing); the adapter sets it only when its wire format is
 * the client's.
 */
typedef struct sl_evs {
    sl_pool_t *pool;
    sl_ev_t *v;
    size_t n;
    size_t cap;
    sl_str_t raw;
    sl_api_e raw_api;
} sl_evs_t;

/* Appends a copy of ev (the strings are not copied). Aborts on OOM (worker). */
void sl_evs_push(sl_evs_t *evs, const sl_ev_t *ev);

/* Empties the batch for the next upstream event (keeps the array). */
void sl_evs_reset(sl_evs_t *evs);

/* An error in OpenAI's terms. Strings live in the request pool or are static. */
typedef struct sl_error {
    int status;           /* status to send the client */
    const char *type;     /* "invalid_request_error", "rate_limit_error", "api_error", ... */
    const char *code;     /* or NULL */
    const char *param;    /* or NULL */
    const char *message;  /* the provider's own message where it gave one */
    bool retryable;       /* another attempt (or target) may succeed */
    uint64_t retry_after; /* ms, 0 when the provider gave none */
} sl_error_t;

/* Per-stream state of one attempt; the adapter keeps its own in priv. */
typedef struct sl_stream {
    sl_call_t *call;
    void *priv;
    sl_usage_t usage; /* kept current by the adapter */
    bool done;        /* the adapter saw the provider's clean end */
    bool failed;      /* the provider reported an error in the stream (an SL_EV_ERROR went out) */
    const char *served_model;
    uint64_t content_bytes; /* generated text seen so far, for estimates */
} sl_stream_t;

/*
 * JSON string literals. sl_jstr_decode decodes lit (quotes included) into
 * pool; returns 0 or SL_EPARSE. sl_jstr_quote makes a literal of s (valid
 * UTF-8) in pool. sl_jstr_concat joins two literals into one (their bodies
 * concatenated) in pool; either may be empty.
 */
int sl_jstr_decode(sl_pool_t *pool, sl_str_t lit, sl_str_t *out);
sl_str_t sl_jstr_quote(sl_pool_t *pool, sl_str_t s);
sl_str_t sl_jstr_concat(sl_pool_t *pool, sl_str_t a, sl_str_t b);

/* OpenAI's finish_reason for f ("stop", "length", "tool_calls", "content_filter"); NULL: none. */
const char *sl_finish_openai(sl_finish_e f);

/* Anthropic's stop_reason for f ("end_turn", "max_tokens", "tool_use", ...); NULL: none. */
const char *sl_finish_anthropic(sl_finish_e f);

#endif
