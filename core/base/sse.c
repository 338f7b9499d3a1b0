/*
 * WHATWG event-stream parser. The feed loop finds line ends with memchr and
 * hands each complete line to sse_process_line() straight from the caller's
 * buffer; only a line that is still open when a feed ends is copied (into
 * p->line) and completed by the next feed. Field values are copied into the
 * parser's event, data and id buffers, which are what the callback sees.
 */
#include "core/base/sse.h"

#include <string.h>

#include "core/base/errno.h"

#define SSE_DEFAULT_MAX_EVENT (16 * 1024 * 1024)

static const unsigned char sse_bom[3] = { 0xEF, 0xBB, 0xBF };

static size_t sse_fields_len(const sl_sse_parser_t *p);
static const char *sse_feed_bom(sl_sse_parser_t *p, const char *pos, const char *end);
static int sse_carry(sl_sse_parser_t *p, const char *s, size_t n);
static int sse_process_line(sl_sse_parser_t *p, const char *s, size_t n, sl_sse_event_cb cb,
                            void *data);
static int sse_dispatch(sl_sse_parser_t *p, sl_sse_event_cb cb, void *data);
static void sse_set_field(sl_buf_t *b, const char *v, size_t n);
static sl_str_t sse_field_str(const sl_buf_t *b);


void
sl_sse_init(sl_sse_parser_t *p, size_t max_event)
{
    memset(p, 0, sizeof(*p));
    p->max_event = max_event == 0 ? SSE_DEFAULT_MAX_EVENT : max_event;
}


void
sl_sse_free(sl_sse_parser_t *p)
{
    sl_buf_free(&p->line);
    sl_buf_free(&p->event);
    sl_buf_free(&p->data);
    sl_buf_free(&p->id);
}


int
sl_sse_feed(sl_sse_parser_t *p, const char *buf, size_t len, sl_sse_event_cb cb, void *data)
{
    const char *pos = buf;
    const char *end;
    const char *nl;
    const char *cr;
    int rc;

    if (len == 0) {
        return 0;
    }
    end = buf + len;
    if (!p->bom_done) {
        pos = sse_feed_bom(p, pos, end);
        if (pos == end) {
            return 0;
        }
    }
    if (p->skip_lf) {
        p->skip_lf = 0;
        if (*pos == '\n') {
            pos++;
        }
    }

    /*
     * nl and cr cache the next LF and CR at or after pos (end when there is
     * none), so each terminator kind is scanned for once per feed rather than
     * once per line.
     */
    nl = memchr(pos, '\n', (size_t) (end - pos));
    nl = nl != NULL ? nl : end;
    cr = memchr(pos, '\r', (size_t) (end - pos));
    cr = cr != NULL ? cr : end;

    while (pos < end) {
        const char *eol;
        const char *next;

        if (nl < pos) {
            nl = memchr(pos, '\n', (size_t) (end - pos));
            nl = nl != NULL ? nl : end;
        }
        if (cr < pos) {
            cr = memchr(pos, '\r', (size_t) (end - pos));
            cr = cr != NULL ? cr : end;
        }
        eol = nl < cr ? nl : cr;

        if (eol == end) {
            return sse_carry(p, pos, (size_t) (end - pos));
        }

        next = eol + 1;
        if (*eol == '\r') {
            if (next == end) {
                p->skip_lf = 1;
            } else if (*next == '\n') {
                next++;
            }
        }

        if (p->line.len > 0) {
            /* The line began in an earlier feed: complete the carried copy. */
            if (sse_fields_len(p) + p->line.len + (size_t) (eol - pos) > p->max_event) {
                return SL_ETOOBIG;
            }
            sl_buf_append(&p->line, pos, (size_t) (eol - pos));
            rc = sse_process_line(p, p->line.p, p->line.len, cb, data);
            sl_buf_clear(&p->line);
        } else if (p->in_comment) {
            p->in_comment = 0;
            rc = 0;
        } else {
            rc = sse_process_line(p, pos, (size_t) (eol - pos), cb, data);
        }
        if (rc != 0) {
            return rc;
        }
        pos = next;
    }
    return 0;
}


/*
 * Bytes held for the current event, not counting p->line: max_event bounds
 * these fields alone and these fields plus an open line.
 */
static size_t
sse_fields_len(const sl_sse_parser_t *p)
{
    return p->event.len + p->data.len + p->id.len;
}


/*
 * Matches the start of the stream against a UTF-8 BOM, which may itself be
 * split across feeds: matched bytes wait in p->line until all three have
 * arrived (then they are dropped) or a byte differs (then they are the start
 * of the first line). Returns the first byte not consumed.
 */
static const char *
sse_feed_bom(sl_sse_parser_t *p, const char *pos, const char *end)
{
    while (pos < end && p->line.len < sizeof(sse_bom)) {
        if ((unsigned char) *pos != sse_bom[p->line.len]) {
            p->bom_done = 1;
            return pos;
        }
        sl_buf_append(&p->line, pos, 1);
        pos++;
    }
    if (p->line.len == sizeof(sse_bom)) {
        sl_buf_clear(&p->line);
        p->bom_done = 1;
    }
    return pos;
}


/* Keeps the open tail of a feed for the next one. */
static int
sse_carry(sl_sse_parser_t *p, const char *s, size_t n)
{
    if (p->in_comment || (p->line.len == 0 && *s == ':')) {
        /* A comment is never used, so its bytes are not kept. */
        p->in_comment = 1;
        return 0;
    }
    if (sse_fields_len(p) + p->line.len + n > p->max_event) {
        return SL_ETOOBIG;
    }
    sl_buf_append(&p->line, s, n);
    return 0;
}


static int
sse_process_line(sl_sse_parser_t *p, const char *s, size_t n, sl_sse_event_cb cb, void *data)
{
    const char *colon;
    const char *v;
    size_t name_len;
    size_t vlen;

    if (n == 0) {
        return sse_dispatch(p, cb, data);
    }
    if (s[0] == ':') {
        return 0;
    }

    colon = memchr(s, ':', n);
    if (colon != NULL) {
        name_len = (size_t) (colon - s);
        v = colon + 1;
        vlen = n - name_len - 1;
        if (vlen > 0 && *v == ' ') {
            v++;
            vlen--;
        }
    } else {
        name_len = n;
        v = s + n;
        vlen = 0;
    }

    switch (name_len) {
    case 4:
        if (memcmp(s, "data", 4) != 0) {
            return 0;
        }
        if (sse_fields_len(p) + vlen + 1 > p->max_event) {
            return SL_ETOOBIG;
        }
        sl_buf_reserve(&p->data, vlen + 1);
        if (vlen > 0) {
            memcpy(p->data.p + p->data.len, v, vlen);
        }
        p->data.p[p->data.len + vlen] = '\n';
        p->data.len += vlen + 1;
        p->has_data = 1;
        return 0;

    case 5:
        if (memcmp(s, "event", 5) != 0) {
            return 0;
        }
        if (sse_fields_len(p) - p->event.len + vlen > p->max_event) {
            return SL_ETOOBIG;
        }
        sse_set_field(&p->event, v, vlen);
        return 0;

    case 2:
        if (memcmp(s, "id", 2) != 0 || (vlen > 0 && memchr(v, '\0', vlen) != NULL)) {
            return 0;
        }
        if (sse_fields_len(p) - p->id.len + vlen > p->max_event) {
            return SL_ETOOBIG;
        }
        sse_set_field(&p->id, v, vlen);
        return 0;

    default:
        /* "retry" and unknown fields: nothing here needs them. */
        return 0;
    }
}


static int
sse_dispatch(sl_sse_parser_t *p, sl_sse_event_cb cb, void *data)
{
    sl_sse_event_t ev;
    int rc;

    if (!p->has_data) {
        sl_buf_clear(&p->event);
        return 0;
    }

    /* Overwrite the trailing LF with a NUL: strips it and terminates data. */
    p->data.len--;
    p->data.p[p->data.len] = '\0';

    ev.event = sse_field_str(&p->event);
    ev.data = sse_field_str(&p->data);
    ev.id = sse_field_str(&p->id);
    rc = cb(data, &ev);

    sl_buf_clear(&p->event);
    sl_buf_clear(&p->data);
    p->has_data = 0;
    return rc;
}


/* Replaces b's content with v and keeps it NUL-terminated. */
static void
sse_set_field(sl_buf_t *b, const char *v, size_t n)
{
    sl_buf_clear(b);
    sl_buf_reserve(b, n + 1);
    if (n > 0) {
        memcpy(b->p, v, n);
    }
    b->p[n] = '\0';
    b->len = n;
}


static sl_str_t
sse_field_str(const sl_buf_t *b)
{
    sl_str_t s;

    if (b->len == 0) {
        s.p = "";
        s.len = 0;
    } else {
        s.p = b->p;
        s.len = b->len;
    }
    return s;
}
