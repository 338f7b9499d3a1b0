/*
 * The writer (sl_json_w_*, see json.h): a document written and tokenized
 * at once, its tokens the ones sl_json_parse() of the same bytes would
 * write, so a reader takes it over at finish without reading it again.
 */
#include "core/base/json.h"
#include "core/base/json_internal.h"

#include <errno.h>
#include <string.h>

/* A writer (sl_json_w_*): the bytes so far and the open containers. */
struct sl_json_w {
    sl_pool_t *pool;
    sl_json_t *doc; /* gets the tokens as they are written */
    sl_buf_t buf;
    int nopen;
    int open[SL_JSON_W_DEPTH]; /* open containers (token indexes), innermost last */
    bool key;                  /* a key was written: its value is due */
    bool bad;                  /* misused: finish fails */
    bool done;                 /* the top value is complete */
};

static void json_w_free(void *arg);
static int json_w_push(sl_json_w_t *w, sl_json_type_e type, size_t start, size_t end);
static bool json_w_begin(sl_json_w_t *w);
static void json_w_done(sl_json_w_t *w, int t);
static void json_w_quote(sl_json_w_t *w, sl_str_t s, bool key);


sl_json_w_t *
sl_json_w_create(sl_pool_t *pool, sl_json_t *doc)
{
    sl_json_w_t *w = sl_pcalloc(pool, sizeof(*w));

    w->pool = pool;
    w->doc = doc;
    w->buf = (sl_buf_t) SL_BUF_INIT;
    sl_buf_reserve(&w->buf, 256);
    doc->ntok = 0;
    doc->p = NULL;
    doc->len = 0;
    sl_pool_on_destroy(pool, json_w_free, w);
    return w;
}


static void
json_w_free(void *arg)
{
    sl_json_w_t *w = arg;

    sl_buf_free(&w->buf);
}


/* A new token of the document being written. */
static int
json_w_push(sl_json_w_t *w, sl_json_type_e type, size_t start, size_t end)
{
    return sl__json_tok_add(w->doc, type, start, end);
}


/* Before a value: its comma, its place in an array. False (and bad) where no value may go. */
static bool
json_w_begin(sl_json_w_t *w)
{
    sl__json_tok_t *c;

    if (w->bad || w->done) {
        w->bad = true;
        return false;
    }
    if (w->nopen == 0) {
        return true;
    }
    c = &w->doc->tok[w->open[w->nopen - 1]];
    if (c->type == SL_JSON_OBJECT) {
        if (!w->key) {
            w->bad = true;
            return false;
        }
        w->key = false;
        return true;
    }
    if (c->size > 0) {
        sl_buf_append(&w->buf, ",", 1);
    }
    c->size++;
    return true;
}


/* Value t is complete: its subtree (and its key's) ends here. */
static void
json_w_done(sl_json_w_t *w, int t)
{
    sl_json_t *doc = w->doc;

    doc->tok[t].next = (int) doc->ntok;
    if (w->nopen == 0) {
        w->done = true;
        return;
    }
    if (doc->tok[w->open[w->nopen - 1]].type == SL_JSON_OBJECT) {
        doc->tok[t - 1].next = (int) doc->ntok;
    }
}


void
sl_json_w_open(sl_json_w_t *w, bool object)
{
    int t;

    if (!json_w_begin(w)) {
        return;
    }
    if (w->nopen == SL_JSON_W_DEPTH) {
        w->bad = true;
        return;
    }
    t = json_w_push(w, object ? SL_JSON_OBJECT : SL_JSON_ARRAY, w->buf.len, w->buf.len);
    sl_buf_append(&w->buf, object ? "{" : "[", 1);
    w->open[w->nopen++] = t;
}


void
sl_json_w_close(sl_json_w_t *w)
{
    int t;

    if (w->bad || w->nopen == 0 || w->key) {
        w->bad = true;
        return;
    }
    t = w->open[--w->nopen];
    sl_buf_append(&w->buf, w->doc->tok[t].type == SL_JSON_OBJECT ? "}" : "]", 1);
    w->doc->tok[t].end = (int) w->buf.len;
    json_w_done(w, t);
}


void
sl_json_w_key(sl_json_w_t *w, sl_str_t key)
{
    sl__json_tok_t *c;
    int t;

    if (w->bad || w->nopen == 0 || w->key) {
        w->bad = true;
        return;
    }
    c = &w->doc->tok[w->open[w->nopen - 1]];
    if (c->type != SL_JSON_OBJECT) {
        w->bad = true;
        return;
    }
    if (c->size > 0) {
        sl_buf_append(&w->buf, ",", 1);
    }
    c->size++;
    t = json_w_push(w, SL_JSON_STRING, w->buf.len + 1, 0);
    json_w_quote(w, key, true);
    w->doc->tok[t].end = (int) w->buf.len - 2;
    w->doc->tok[t].size = 1;
    w->key = true;
}


/* s quoted (and escaped) by sl_json_quote(), then ':' for a key. */
static void
json_w_quote(sl_json_w_t *w, sl_str_t s, bool key)
{
    sl_json_quote(&w->buf, s);
    if (key) {
        sl_buf_append(&w->buf, ":", 1);
    }
}


void
sl_json_w_str(sl_json_w_t *w, sl_str_t s)
{
    int t;

    if (!json_w_begin(w)) {
        return;
    }
    t = json_w_push(w, SL_JSON_STRING, w->buf.len + 1, 0);
    json_w_quote(w, s, false);
    w->doc->tok[t].end = (int) w->buf.len - 1;
    json_w_done(w, t);
}


void
sl_json_w_scalar(sl_json_w_t *w, sl_json_type_e type, sl_str_t text)
{
    int t;

    if (type != SL_JSON_NUMBER && type != SL_JSON_TRUE && type != SL_JSON_FALSE
        && type != SL_JSON_NULL) {
        w->bad = true;
        return;
    }
    if (!json_w_begin(w)) {
        return;
    }
    t = json_w_push(w, type, w->buf.len, w->buf.len + text.len);
    sl_buf_append(&w->buf, text.p, text.len);
    json_w_done(w, t);
}


void
sl_json_w_value(sl_json_w_t *w, const sl_json_t *src, int v)
{
    sl_json_t *doc = w->doc;
    size_t from;
    size_t to;
    long delta;
    int first;
    int n;

    if (sl_json_type(src, v) == SL_JSON_NONE || src == doc) {
        w->bad = true;
        return;
    }
    if (!json_w_begin(w)) {
        return;
    }
    from = sl__json_raw_start(src, v);
    to = sl__json_raw_end(src, v);
    delta = (long) w->buf.len - (long) from;
    n = src->tok[v].next - v;
    if (doc->cap - doc->ntok < (unsigned) n) {
        sl__json_tok_grow(doc, doc->ntok + (unsigned) n);
    }
    first = (int) doc->ntok;
    for (int i = 0; i < n; i++) {
        sl__json_tok_t t = src->tok[v + i];

        t.start = (int) (t.start + delta);
        t.end = (int) (t.end + delta);
        t.next = t.next - v + first;
        doc->tok[first + i] = t;
    }
    doc->ntok += (unsigned) n;
    sl_buf_append(&w->buf, src->p + from, to - from);
    json_w_done(w, first);
}


size_t
sl_json_w_len(const sl_json_w_t *w)
{
    return w->buf.len;
}


int
sl_json_w_finish(sl_json_w_t *w, sl_str_t *out)
{
    sl_json_t *doc = w->doc;
    char *p;

    if (w->bad || !w->done || w->buf.len >= SL__JSON_MAX_LEN) {
        doc->ntok = 0;
        return -EINVAL;
    }
    p = sl_palloc(w->pool, w->buf.len + 1);
    memcpy(p, w->buf.p, w->buf.len);
    p[w->buf.len] = '\0';
    doc->p = p;
    doc->len = w->buf.len;
    doc->work = 0;
    sl_buf_free(&w->buf);
    *out = (sl_str_t){ p, doc->len };
    return 0;
}
