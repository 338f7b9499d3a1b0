/*
 * Guardrails: policies of ordered checks that run as filters in the
 * request pipeline, on the internal request (before the cache lookup and
 * the plan: nothing has gone upstream yet) and on the typed answer (whole
 * answers and stream events, before the frontend encodes them), so every
 * frontend and every provider gets the same behaviour, streams included.
 *
 * A policy (guardrails.policies.NAME in the configuration) is a list of
 * checks, each one of:
 *   detect   built-in detectors: email, phone, card (Luhn-checked), iban
 *            (checksum-checked), ip (IPv4 and IPv6), secret (API-key
 *            shapes, JWTs, PEM private keys)
 *   deny     literals (case-insensitive, whole words where the literal
 *            starts or ends with a letter or digit, any run of white space
 *            matching a space) and "re:" POSIX extended regular expressions
 *            (always case-insensitive)
 *   limits   max_prompt_tokens, max_output_tokens, max_messages,
 *            max_images, max_body
 *   models   an allow-list of model name globs
 * with an action: block (refuse, naming the policy and the rule), redact
 * (replace the match by a typed placeholder such as [EMAIL_1], mapped back
 * in the answer with restore: true) or log (recorded only). detect and
 * deny read text; limits and models read the request's shape only, with
 * the token reader (no DOM).
 *
 * Which policy applies: the key's (`sluice keys --guard`), else the key's
 * team's (`sluice teams set --guard`), else the model's
 * (models.NAME.guard), else guardrails.apply. The name "none" anywhere in
 * that chain means "no policy" and stops it.
 *
 * Every decision lands in the request's ledger row as
 * "policy/rule/action;..." (never the matched text; output decisions name
 * the rule "output:RULE") and in /metrics as
 * sluice_guard_decisions_total{policy,action}.
 *
 * Master context for the configuration part, worker context (or the
 * worker's thread pool, for a large body) for the request part; the
 * per-request state lives in the request pool.
 */
#ifndef SL_CORE_GATEWAY_GUARD_H
#define SL_CORE_GATEWAY_GUARD_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/buf.h"
#include "core/base/pool.h"
#include "core/base/str.h"
#include "core/gateway/call.h"

#define SL_GUARD_NAME_MAX  64 /* bytes of a policy or rule name */
#define SL_GUARD_NONE      "none"
#define SL_GUARD_LABEL_MAX 16 /* bytes of a placeholder's label ("REDACTED") */

/* What a check does with what it finds. */
typedef enum sl_guard_action {
    SL_GUARD_LOG = 0, /* recorded only */
    SL_GUARD_REDACT,  /* replaced by a placeholder */
    SL_GUARD_BLOCK,   /* the request (or the answer) is refused */
} sl_guard_action_e;

typedef enum sl_guard_kind {
    SL_GUARD_DETECT = 0,
    SL_GUARD_DENY,
    SL_GUARD_LIMITS,
    SL_GUARD_MODELS,
} sl_guard_kind_e;

/* The built-in detectors, as bits of sl_guard_check_t.detect. */
typedef enum sl_guard_det {
    SL_GUARD_DET_EMAIL = 0,
    SL_GUARD_DET_PHONE,
    SL_GUARD_DET_CARD,
    SL_GUARD_DET_IBAN,
    SL_GUARD_DET_IP,
    SL_GUARD_DET_SECRET,
    SL_GUARD_DET_COUNT,
    SL_GUARD_DET_DENY = SL_GUARD_DET_COUNT, /* a deny pattern (placeholder [REDACTED_N]) */
    SL_GUARD_DET_RESTORE,                   /* a placeholder mapped back (output) */
} sl_guard_det_e;

/* Directions a text check runs in, as bits of sl_guard_check_t.on. */
#define SL_GUARD_INPUT  1u
#define SL_GUARD_OUTPUT 2u

/* One deny pattern. */
typedef struct sl_guard_pattern {
    const char *text; /* as written (for messages and `sluice guard test`) */
    bool regex;
    regex_t re;      /* compiled with REG_EXTENDED | REG_ICASE (regex) */
    const char *lit; /* the literal, lower case (ASCII), white space runs as one space */
    size_t len;
} sl_guard_pattern_t;

/* limits: every field 0 means "no limit". */
typedef struct sl_guard_limits {
    uint64_t max_prompt_tokens; /* estimated as the router does (core/gateway/features.h) */
    uint64_t max_output_tokens; /* the request's max_tokens / max_completion_tokens */
    uint64_t max_messages;      /* messages of the internal (chat) request */
    uint64_t max_images;        /* image parts in them */
    size_t max_body;            /* bytes of the client's body: 413 */
} sl_guard_limits_t;

typedef struct sl_guard_check {
    const char *name; /* `name:` as written, or NULL: the rule then is the detector, "deny[N]",
                         the limit's key or "models" */
    unsigned index;   /* 1-based position in the policy */
    sl_guard_kind_e kind;
    sl_guard_action_e action;
    unsigned on;     /* SL_GUARD_INPUT / SL_GUARD_OUTPUT (detect, deny) */
    bool restore;    /* redact: map the placeholders back in the answer */
    unsigned detect; /* 1u << sl_guard_det_e */
    sl_guard_pattern_t *deny;
    size_t ndeny;
    const char *deny_rule; /* "deny[N]" or name */
    sl_guard_limits_t limits;
    const char **models; /* fnmatch(3) globs, no flags */
    size_t nmodels;
} sl_guard_check_t;

typedef struct sl_guard_policy {
    const char *name;
    sl_guard_check_t *checks;
    size_t nchecks;
    unsigned in_detect;  /* detectors some input check uses */
    unsigned out_detect; /* detectors some output check uses */
    bool in_text;        /* some check reads the request's text */
    bool in_decode;      /* an input deny pattern reads the request's strings decoded (see
                            sl_guard_policy_finish) */
    bool out_text;       /* some check reads the answer's text */
    bool restore;        /* some redact check restores */
    size_t hold;         /* bytes a stream holds back for the output checks */
} sl_guard_policy_t;

/* The guardrails: section. */
typedef struct sl_guard_conf {
    sl_guard_policy_t *policies;
    size_t npolicies;
    const sl_guard_policy_t *apply; /* the global policy, NULL for none */
} sl_guard_conf_t;

/* The policy "none" (no checks), which every configuration knows. */
extern const sl_guard_policy_t sl_guard_policy_none;

/* The policy called name in gc (NULL for none), or &sl_guard_policy_none for "none". */
const sl_guard_policy_t *sl_guard_find(const sl_guard_conf_t *gc, const char *name);

/* "log", "redact", "block". */
const char *sl_guard_action_name(sl_guard_action_e a);

/* A detector by its configuration name ("email", ...); -1 when unknown. */
int sl_guard_det_find(const char *name);

/* "email", ..., "deny", "restore". */
const char *sl_guard_det_name(unsigned det);

/*
 * Compiles a deny pattern as written ("re:..." or a literal) into p, in
 * pool (the regex is freed with it). A leading "(?i)" of a regex is
 * accepted and dropped (every pattern is case-insensitive); any other
 * "(?" construct is refused. Returns 0, or -EINVAL with a reason in err.
 * Master or CLI context.
 */
int sl_guard_pattern_compile(sl_pool_t *pool, const char *text, sl_guard_pattern_t *p, char *err,
                             size_t errlen);

/*
 * Finishes a policy whose checks are filled in: their indexes, the deny
 * checks' rule names (in pool) and the summary fields (in_text, out_text,
 * restore, hold, ...). Master or CLI context.
 */
void sl_guard_policy_finish(sl_pool_t *pool, sl_guard_policy_t *p);

/* ---------------------------------------------------------------- requests */

typedef struct sl_guard_req sl_guard_req_t;

/* One decision, as a request keeps it. */
typedef struct sl_guard_decision {
    const char *policy;
    const char *rule; /* "email", "deny[2]", "max_messages", "models", a name */
    sl_guard_action_e action;
    bool output;    /* on the answer */
    unsigned count; /* how many matches it stands for */
} sl_guard_decision_t;

/* Who the request is, for choosing its policy. Strings may be NULL. */
typedef struct sl_guard_who {
    const char *key_guard;                 /* the key's guard field */
    const char *team_guard;                /* its team's */
    const char *model;                     /* the public model name the client asked for */
    const sl_guard_policy_t *model_policy; /* models.NAME.guard, NULL when unset */
    size_t body_len;                       /* bytes of the client's body */
} sl_guard_who_t;

/*
 * The request phase: chooses the policy (key > team > model > global) and
 * runs its checks on the internal request in call. A redaction rewrites
 * call->raw and call->native (re-read with the token reader; the caller's
 * bytes are not touched). Returns 0 (go on; *out is the request's state,
 * NULL when no policy applies), SL_EDENIED (blocked: *err is the error for
 * the client, in the pool), or SL_ENOTFOUND (the key or team names a policy
 * the configuration lacks: *err is a 500). Allocates in call->pool only:
 * safe in the thread pool while the loop leaves the request alone.
 */
int sl_guard_request(const sl_guard_conf_t *gc, const sl_guard_who_t *who, sl_call_t *call,
                     sl_guard_req_t **out, sl_error_t *err);

/* The request's decisions so far (n of them); NULL when none. For traces. */
const sl_guard_decision_t *sl_guard_decisions(const sl_guard_req_t *g, size_t *n);

/* The policy that applies, NULL for none. */
const char *sl_guard_policy_name(const sl_guard_req_t *g);

/*
 * The ledger's guard field, "policy/rule/action;..." ("" for none), in the
 * pool; also counts the decisions in /metrics, once per request. g may be
 * NULL.
 */
const char *sl_guard_row(sl_guard_req_t *g);

/* True when the answer goes through the output filters (restore or output checks). */
bool sl_guard_filters_output(const sl_guard_req_t *g);

/*
 * Output filter of one batch of stream events, in place: text and tool
 * argument deltas are rewritten (restored, redacted), held back at the
 * end (a bounded tail, never inside a word or a placeholder) and released
 * before the next event of their choice that is not a delta; evs->raw is
 * cleared (the frontend then encodes the typed events). final releases
 * everything held. Returns 0, or SL_EDENIED with *err when an output check
 * blocks: evs then holds what may go out before the error. g NULL is a no-op.
 */
int sl_guard_events(sl_guard_req_t *g, sl_evs_t *evs, bool final, sl_error_t *err);

/*
 * A new attempt's stream starts (the last one failed before the commit
 * point): forgets what the output filters held of the old one. g NULL is
 * a no-op.
 */
void sl_guard_restart(sl_guard_req_t *g);

/*
 * Output filter of a whole answer, in place (texts and tool arguments;
 * a->raw is cleared when anything changed). Returns 0 or SL_EDENIED with
 * *err. g NULL is a no-op.
 */
int sl_guard_answer(sl_guard_req_t *g, sl_answer_t *a, sl_error_t *err);

/* ------------------------------------------------------- shared counters */

/* Bytes the per-policy counters take in the shared segment. */
size_t sl_guard_shm_size(void);

/* Carves them (master, before any fork). Returns 0 or -ENOMEM. */
int sl_guard_init(void);

/* Appends sluice_guard_decisions_total{policy,action} in Prometheus text. */
void sl_guard_metrics_render(sl_buf_t *out);

#endif
