/*
 * Request features for routing (see core/gateway/features.h for the rules): one
 * walk over the chat request's messages collects the sizes and, when a
 * score is wanted, the decoded user text the code and cue searches run on.
 */
#define _GNU_SOURCE /* memmem */

#include "core/gateway/features.h"

#include <string.h>

#include "core/base/errno.h"

typedef struct feat_walk {
    sl_pool_t *pool; /* NULL: sizes only, no text collected */
    size_t bytes;
    unsigned images;
    unsigned turns;
    bool tool_activity;
    sl_str_t *user; /* decoded user text, at most SL_FEATURES_SCAN_MAX bytes in all */
    size_t nuser;
    size_t cap;
    size_t user_bytes;
} feat_walk_t;

typedef struct feat_cue {
    const char *word;
    unsigned points;
} feat_cue_t;

static void feat_walk(const sl_json_t *doc, int root, feat_walk_t *w);
static void feat_message(const sl_json_t *doc, int msg, feat_walk_t *w);
static void feat_content(const sl_json_t *doc, int v, bool user, feat_walk_t *w);
static void feat_text(const sl_json_t *doc, int v, bool user, feat_walk_t *w);
static bool feat_str_eq(const sl_json_t *doc, int v, const char *s);
static bool feat_is_word_char(char c);
static bool feat_has_word(const feat_walk_t *w, const char *word);
static bool feat_has_marker(const feat_walk_t *w, const char *marker);
static size_t feat_count(const feat_walk_t *w, const char *needle);

static const char *const feat_code_markers[] = {
    "def ",    "class ",  "function", "#include", "import ", "return ", "=>",    "const ",
    "public ", "SELECT ", "fn ",      "};",       "();",     "!==",     "std::", NULL,
};

static const feat_cue_t feat_cues[] = {
    { "prove", 15 },    { "proof", 15 },   { "step by step", 15 }, { "step-by-step", 15 },
    { "derive", 15 },   { "analyze", 15 }, { "analyse", 15 },      { "analysis", 15 },
    { "why", 5 },       { "explain", 5 },  { "compare", 5 },       { "evaluate", 5 },
    { "debug", 5 },     { "optimize", 5 }, { "optimise", 5 },      { "design", 5 },
    { "trade-off", 5 }, { "tradeoff", 5 }, { "reason", 5 },        { NULL, 0 },
};


void
sl_features_init(sl_features_t *f)
{
    memset(f, 0, sizeof(*f));
    f->root = -1;
}


int
sl_features_from_chat(sl_features_t *f, const sl_json_t *doc, int root, sl_pool_t *pool)
{
    feat_walk_t w;
    int64_t n;
    int v;

    memset(&w, 0, sizeof(w));
    f->doc = doc;
    f->root = root;
    f->pool = pool;
    f->scored = false;
    if (sl_json_type(doc, root) != SL_JSON_OBJECT) {
        f->root = -1;
        return SL_EPARSE;
    }
    feat_walk(doc, root, &w);
    f->prompt_bytes = w.bytes + (size_t) w.images * SL_FEATURES_IMAGE_BYTES;
    f->prompt_tokens = (f->prompt_bytes + 3) / 4;
    f->has_images = w.images > 0;
    v = sl_json_get(doc, root, "tools");
    f->has_tools = sl_json_type(doc, v) == SL_JSON_ARRAY && sl_json_size(doc, v) > 0;
    v = sl_json_get(doc, root, "functions");
    f->has_tools =
        f->has_tools || (sl_json_type(doc, v) == SL_JSON_ARRAY && sl_json_size(doc, v) > 0);
    f->stream = sl_json_is_true(doc, sl_json_get(doc, root, "stream"));
    f->max_tokens = 0;
    v = sl_json_get(doc, root, "max_completion_tokens");
    if (v < 0) {
        v = sl_json_get(doc, root, "max_tokens");
    }
    if (sl_json_int(doc, v, &n) == 0 && n > 0) {
        f->max_tokens = (uint64_t) n;
    }
    return 0;
}


/* Sizes of everything the model reads; with w->pool, the user text as well. */
static void
feat_walk(const sl_json_t *doc, int root, feat_walk_t *w)
{
    int msgs = sl_json_get(doc, root, "messages"), v;

    for (int m = sl_json_first(doc, msgs); m >= 0; m = sl_json_next(doc, msgs, m)) {
        feat_message(doc, m, w);
    }
    /* Anthropic's top-level system prompt */
    feat_content(doc, sl_json_get(doc, root, "system"), false, w);
    v = sl_json_get(doc, root, "tools");
    if (sl_json_type(doc, v) == SL_JSON_ARRAY) {
        w->bytes += sl_json_raw(doc, v).len;
    }
    v = sl_json_get(doc, root, "functions");
    if (sl_json_type(doc, v) == SL_JSON_ARRAY) {
        w->bytes += sl_json_raw(doc, v).len;
    }
}


static void
feat_message(const sl_json_t *doc, int msg, feat_walk_t *w)
{
    int role = sl_json_get(doc, msg, "role"), calls, fn;
    bool user = feat_str_eq(doc, role, "user");

    if (user || feat_str_eq(doc, role, "assistant")) {
        w->turns++;
    } else if (feat_str_eq(doc, role, "tool") || feat_str_eq(doc, role, "function")) {
        w->tool_activity = true;
    }
    feat_content(doc, sl_json_get(doc, msg, "content"), user, w);

    calls = sl_json_get(doc, msg, "tool_calls");
    for (int c = sl_json_first(doc, calls); c >= 0; c = sl_json_next(doc, calls, c)) {
        w->tool_activity = true;
        feat_text(doc, sl_json_path(doc, c, "function.arguments"), false, w);
    }
    fn = sl_json_get(doc, msg, "function_call");
    if (fn >= 0) {
        w->tool_activity = true;
        feat_text(doc, sl_json_get(doc, fn, "arguments"), false, w);
    }
}


/* A content value: a string, or an array of parts (OpenAI or Anthropic blocks). */
static void
feat_content(const sl_json_t *doc, int v, bool user, feat_walk_t *w)
{
    int type, x;

    switch (sl_json_type(doc, v)) {
    case SL_JSON_STRING:
        feat_text(doc, v, user, w);
        return;
    case SL_JSON_ARRAY:
        break;
    default:
        return;
    }
    for (int part = sl_json_first(doc, v); part >= 0; part = sl_json_next(doc, v, part)) {
        if (sl_json_type(doc, part) == SL_JSON_STRING) {
            feat_text(doc, part, user, w);
            continue;
        }
        type = sl_json_get(doc, part, "type");
        if (feat_str_eq(doc, type, "image_url") || feat_str_eq(doc, type, "image")
            || feat_str_eq(doc, type, "input_image")) {
            w->images++;
            continue;
        }
        if (feat_str_eq(doc, type, "tool_use")) {
            w->tool_activity = true;
            x = sl_json_get(doc, part, "input");
            w->bytes += x >= 0 ? sl_json_raw(doc, x).len : 0;
            continue;
        }
        if (feat_str_eq(doc, type, "tool_result")) {
            w->tool_activity = true;
            feat_content(doc, sl_json_get(doc, part, "content"), false, w);
            continue;
        }
        feat_text(doc, sl_json_get(doc, part, "text"), user, w);
    }
}


/* A string's decoded length; a user's text is also kept for the scorer. */
static void
feat_text(const sl_json_t *doc, int v, bool user, feat_walk_t *w)
{
    sl_str_t s;
    size_t len;

    if (sl_json_string_len(doc, v, &len) != 0) {
        return;
    }
    w->bytes += len;
    if (!user || w->pool == NULL || w->user_bytes >= SL_FEATURES_SCAN_MAX
        || sl_json_string(doc, v, w->pool, &s) != 0) {
        return;
    }
    if (s.len > SL_FEATURES_SCAN_MAX - w->user_bytes) {
        s.len = SL_FEATURES_SCAN_MAX - w->user_bytes;
    }
    if (w->nuser == w->cap) {
        sl_str_t *grown;

        w->cap = w->cap == 0 ? 8 : w->cap * 2;
        grown = sl_palloc(w->pool, w->cap * sizeof(sl_str_t));
        if (w->nuser > 0) {
            memcpy(grown, w->user, w->nuser * sizeof(sl_str_t));
        }
        w->user = grown;
    }
    w->user[w->nuser++] = s;
    w->user_bytes += s.len;
}


static bool
feat_str_eq(const sl_json_t *doc, int v, const char *s)
{
    sl_str_t raw = sl_json_raw(doc, v);
    size_t n = strlen(s);

    /* raw holds the quotes; role and type values never need escapes */
    return sl_json_type(doc, v) == SL_JSON_STRING && raw.len == n + 2
           && memcmp(raw.p + 1, s, n) == 0;
}


static bool
feat_is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}


/* word (lower case) as a whole word, in any case, in some piece of user text. */
static bool
feat_has_word(const feat_walk_t *w, const char *word)
{
    size_t wl = strlen(word);

    for (size_t k = 0; k < w->nuser; k++) {
        const char *p = w->user[k].p;
        size_t len = w->user[k].len;

        for (size_t i = 0; i + wl <= len; i++) {
            if ((p[i] | 0x20) != word[0] || !sl_mem_caseeq(p + i, word, wl)) {
                continue;
            }
            if ((i == 0 || !feat_is_word_char(p[i - 1]))
                && (i + wl == len || !feat_is_word_char(p[i + wl]))) {
                return true;
            }
        }
    }
    return false;
}


static bool
feat_has_marker(const feat_walk_t *w, const char *marker)
{
    size_t ml = strlen(marker);

    for (size_t k = 0; k < w->nuser; k++) {
        if (memmem(w->user[k].p, w->user[k].len, marker, ml) != NULL) {
            return true;
        }
    }
    return false;
}


static size_t
feat_count(const feat_walk_t *w, const char *needle)
{
    size_t nl = strlen(needle), n = 0;

    for (size_t k = 0; k < w->nuser; k++) {
        const char *p = w->user[k].p, *end = p + w->user[k].len, *hit;

        while ((hit = memmem(p, (size_t) (end - p), needle, nl)) != NULL) {
            n++;
            p = hit + nl;
        }
    }
    return n;
}


int
sl_complexity_score(const sl_json_t *doc, int root, sl_pool_t *pool, sl_complexity_t *out)
{
    feat_walk_t w;
    uint64_t tokens;
    size_t fences;
    unsigned markers = 0, sum;

    memset(out, 0, sizeof(*out));
    if (sl_json_type(doc, root) != SL_JSON_OBJECT) {
        return SL_EPARSE;
    }
    memset(&w, 0, sizeof(w));
    w.pool = pool;
    feat_walk(doc, root, &w);

    tokens = (w.bytes + (uint64_t) w.images * SL_FEATURES_IMAGE_BYTES + 3) / 4;
    out->size = tokens / 160 > 25 ? 25 : (unsigned) (tokens / 160);
    out->turns = w.turns <= 1 ? 0 : (3 * (w.turns - 1) > 15 ? 15 : 3 * (w.turns - 1));

    fences = feat_count(&w, "```");
    out->code = fences == 0 ? 0 : (fences <= 2 ? 10 : 15);
    for (size_t i = 0; feat_code_markers[i] != NULL; i++) {
        if (feat_has_marker(&w, feat_code_markers[i])) {
            markers += 2;
        }
    }
    out->code += markers > 10 ? 10 : markers;
    if (out->code > 25) {
        out->code = 25;
    }

    if (sl_json_size(doc, sl_json_get(doc, root, "tools")) > 0
        || sl_json_size(doc, sl_json_get(doc, root, "functions")) > 0) {
        out->tools = 10;
    }
    if (w.tool_activity) {
        out->tools += 5;
    }

    for (size_t i = 0; feat_cues[i].word != NULL; i++) {
        if (feat_has_word(&w, feat_cues[i].word)) {
            out->reasoning += feat_cues[i].points;
        }
    }
    if (out->reasoning > 35) {
        out->reasoning = 35;
    }

    sum = out->size + out->turns + out->code + out->tools + out->reasoning;
    out->score = sum > 100 ? 100 : sum;
    return 0;
}


const sl_complexity_t *
sl_features_complexity(sl_features_t *f)
{
    if (!f->scored) {
        f->scored = true;
        if (f->root < 0 || f->pool == NULL
            || sl_complexity_score(f->doc, f->root, f->pool, &f->complexity) != 0) {
            memset(&f->complexity, 0, sizeof(f->complexity));
        }
    }
    return &f->complexity;
}


sl_complexity_e
sl_features_class(sl_features_t *f)
{
    return sl_features_complexity(f)->score >= SL_COMPLEXITY_THRESHOLD ? SL_COMPLEXITY_COMPLEX
                                                                       : SL_COMPLEXITY_SIMPLE;
}
