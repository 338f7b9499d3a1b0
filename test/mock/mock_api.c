/*
 * The mock's API: turns one parsed request into a response plan
 * (sl_mock_resp_t) in OpenAI's wire format, applies the x-mock-* fault
 * headers to that plan, keeps the request log and answers the /__mock/ endpoints.
 * Success bodies are written by hand (they are the benchmark's hot path);
 * request bodies are parsed with jansson.
 */
#include "test/mock/mock.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/errno.h"

#define API_MAX_DELAY_MS 3600000ULL
#define API_MAX_CHUNKS   100000ULL

/* What a chat completion answers, shared by the plain and the streamed forms. */
typedef struct api_chat {
    unsigned long long id;
    long long created;
    sl_str_t model;
    bool include_usage;
    sl_str_t reply;     /* the assistant text, or the tool's arguments */
    sl_str_t tool_name; /* empty: a text reply */
    long long prompt_tokens;
    long long completion_tokens;
} api_chat_t;

typedef struct api_model {
    const char *id;
    long long created;
} api_model_t;

static const api_model_t api_models_list[] = {
    { "gpt-4o-mini", 1721172741 },
    { "gpt-4o", 1715367049 },
    { "gpt-4.1-mini", 1744318173 },
    { "o3-mini", 1737146383 },
    { "text-embedding-3-small", 1705948997 },
    { "text-embedding-3-large", 1705953180 },
};

static const char api_garbage[] = "SLUICE-MOCK GARBAGE \x01\x02\x03\xff\xfe not http\r\n\r\n";

static const char *api_date(void);
static void api_emit(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
                     const sl_mock_faults_t *f);
static void api_error_body(sl_mock_t *m, const char *message, const char *type, const char *param,
                           const char *code);
static void api_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
                      const sl_mock_faults_t *f, const char *message, const char *type,
                      const char *param, const char *code);
static bool api_header_uint(const sl_mock_req_t *r, const char *name, unsigned long long max,
                            unsigned long long *out);
static void api_faults(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_faults_t *f);
static bool api_authorized(sl_mock_t *m, const sl_mock_req_t *r);
static bool api_azure(const sl_mock_req_t *r, sl_str_t *op);
static bool api_azure_authorized(sl_mock_t *m, const sl_mock_req_t *r);
static bool api_azure_version(const sl_mock_req_t *r);
static void api_record(sl_mock_t *m, const sl_mock_req_t *r);
static json_t *api_json_bytes(const char *p, size_t len);
static void api_introspect(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp);
static void api_requests(sl_mock_t *m);
static int api_program_faults(sl_mock_t *m, const sl_mock_req_t *r);
static const sl_mock_req_t *api_with_faults(sl_mock_t *m, const sl_mock_req_t *r,
                                            sl_mock_req_t *copy);
static void api_route(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                      const sl_mock_faults_t *f);
static json_t *api_parse_body(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                              const sl_mock_faults_t *f);
static void api_text_of(const json_t *content, sl_buf_t *out);
static void api_chat(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                     const sl_mock_faults_t *f);
static void api_usage(sl_buf_t *b, const api_chat_t *ch);
static void api_chat_full(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                          const sl_mock_faults_t *f, const api_chat_t *ch);
static void api_chunk_open(sl_mock_t *m, const api_chat_t *ch);
static void api_chunk_close(sl_mock_t *m, const api_chat_t *ch, const char *finish);
static void api_chat_stream(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                            const sl_mock_faults_t *f, const api_chat_t *ch);
static void api_embeddings(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                           const sl_mock_faults_t *f);
static void api_models(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                       const sl_mock_faults_t *f);
static void api_model_one(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                          const sl_mock_faults_t *f, sl_str_t id);


void
sl__mock_json_str(sl_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    char esc[6];

    sl_buf_reserve(b, len + 2);
    sl_buf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) s[i];

        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            continue;
        }
        sl_buf_append(b, run, (size_t) (s + i - run));
        run = s + i + 1;
        switch (ch) {
        case '"':
            sl_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            sl_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            sl_buf_append(b, "\\n", 2);
            break;
        case '\r':
            sl_buf_append(b, "\\r", 2);
            break;
        case '\t':
            sl_buf_append(b, "\\t", 2);
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 0xf];
            sl_buf_append(b, esc, 6);
            break;
        }
    }
    sl_buf_append(b, run, (size_t) (s + len - run));
    sl_buf_append(b, "\"", 1);
}


void
sl__mock_seg(sl_mock_resp_t *resp)
{
    if (resp->nseg == resp->seg_cap) {
        resp->seg_cap = resp->seg_cap == 0 ? 16 : resp->seg_cap * 2;
        resp->seg_end = sl_xrealloc(resp->seg_end, resp->seg_cap * sizeof(size_t));
    }
    resp->seg_end[resp->nseg++] = resp->data.len;
}


/* The Date header value, formatted once per second. */
static const char *
api_date(void)
{
    static char date[64];
    static time_t last;
    time_t now = time(NULL);
    struct tm tm;

    if (now != last) {
        last = now;
        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return date;
}


void
sl__mock_head(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
              const char *ctype, long long clen, const sl_mock_faults_t *f, const char *extra)
{
    sl_buf_t *b = &resp->data;

    sl_buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n", status,
                  sl_http_reason(status), api_date(), ctype);
    if (clen >= 0) {
        sl_buf_printf(b, "Content-Length: %lld\r\n", clen);
    } else {
        sl_buf_puts(b, "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n");
    }
    sl_buf_printf(b, "x-request-id: req_mock%llu\r\n", (unsigned long long) m->serial);
    if (extra != NULL) {
        sl_buf_puts(b, extra);
    }
    if (f != NULL && f->retry_after.len > 0) {
        sl_buf_puts(b, "Retry-After: ");
        sl_buf_append(b, f->retry_after.p, f->retry_after.len);
        sl_buf_puts(b, "\r\n");
    }
    if (resp->close) {
        sl_buf_puts(b, "Connection: close\r\n");
    } else if (r != NULL && r->http10) {
        sl_buf_puts(b, "Connection: keep-alive\r\n");
    }
    sl_buf_puts(b, "\r\n");
    sl__mock_seg(resp);
}


/* Sends m->body as an OpenAI JSON response. */
static void
api_emit(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
         const sl_mock_faults_t *f)
{
    sl__mock_emit(m, r, resp, status, f, "application/json", NULL);
}


void
sl__mock_emit(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
              const sl_mock_faults_t *f, const char *ctype, const char *extra)
{
    size_t len = m->body.len;

    if (f != NULL && f->truncate) {
        resp->close = true;
        resp->abort = true;
        len /= 2;
    }
    sl__mock_head(m, r, resp, status, ctype, (long long) m->body.len, f, extra);
    sl_buf_append(&resp->data, m->body.p, len);
    sl__mock_seg(resp);
    if (f != NULL && f->reset_after >= 0) {
        resp->reset_after = 1;
    }
}


static void
api_error_body(sl_mock_t *m, const char *message, const char *type, const char *param,
               const char *code)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_puts(b, "{\"error\":{\"message\":");
    sl__mock_json_str(b, message, strlen(message));
    sl_buf_puts(b, ",\"type\":");
    sl__mock_json_str(b, type, strlen(type));
    sl_buf_puts(b, ",\"param\":");
    if (param != NULL) {
        sl__mock_json_str(b, param, strlen(param));
    } else {
        sl_buf_puts(b, "null");
    }
    sl_buf_puts(b, ",\"code\":");
    if (code != NULL) {
        sl__mock_json_str(b, code, strlen(code));
    } else {
        sl_buf_puts(b, "null");
    }
    sl_buf_puts(b, "}}");
}


static void
api_error(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, int status,
          const sl_mock_faults_t *f, const char *message, const char *type, const char *param,
          const char *code)
{
    api_error_body(m, message, type, param, code);
    api_emit(m, r, resp, status, f);
}


const sl_http_header_t *
sl__mock_header(const sl_mock_req_t *r, const char *name)
{
    return sl_http_find_header(r->headers, r->nheaders, name);
}


/* True when the header is present and holds a decimal number <= max. */
static bool
api_header_uint(const sl_mock_req_t *r, const char *name, unsigned long long max,
                unsigned long long *out)
{
    const sl_http_header_t *h = sl__mock_header(r, name);

    if (h == NULL || sl_str_to_u64(sl_str_trim(h->value), out) != 0) {
        return false;
    }
    if (*out > max) {
        *out = max;
    }
    return true;
}


static void
api_faults(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_faults_t *f)
{
    const sl_http_header_t *h;
    unsigned long long v;

    memset(f, 0, sizeof(*f));
    f->reset_after = -1;
    f->delay_ms = m->conf.latency_ms;
    f->chunks = m->conf.chunks;
    f->chunk_delay_ms = m->conf.chunk_delay_ms;

    if (api_header_uint(r, "x-mock-status", 999, &v) && v >= 400 && v <= 599) {
        f->status = (int) v;
    }
    h = sl__mock_header(r, "x-mock-retry-after");
    if (h != NULL) {
        sl_str_t s = sl_str_trim(h->value);

        /* only digits go back into a header line */
        if (sl_str_to_u64(s, &v) == 0) {
            f->retry_after = s;
        }
    }
    if (api_header_uint(r, "x-mock-delay-ms", API_MAX_DELAY_MS, &v)) {
        f->delay_ms = (unsigned) v;
    }
    if (api_header_uint(r, "x-mock-chunks", API_MAX_CHUNKS, &v)) {
        f->chunks = v == 0 ? 1 : (unsigned) v;
    }
    if (api_header_uint(r, "x-mock-chunk-delay-ms", API_MAX_DELAY_MS, &v)) {
        f->chunk_delay_ms = (unsigned) v;
    }
    if (api_header_uint(r, "x-mock-reset-after", API_MAX_CHUNKS, &v)) {
        f->reset_after = (long) v;
    }
    if (api_header_uint(r, "x-mock-drip-ms", API_MAX_DELAY_MS, &v)) {
        f->drip_ms = (unsigned) v;
    }
    f->truncate = api_header_uint(r, "x-mock-truncate", 1, &v) && v != 0;
    f->garbage = api_header_uint(r, "x-mock-garbage", 1, &v) && v != 0;
    f->close = api_header_uint(r, "x-mock-close", 1, &v) && v != 0;
}


static bool
api_authorized(sl_mock_t *m, const sl_mock_req_t *r)
{
    const char *key = m->conf.api_key;
    const sl_http_header_t *h;
    sl_str_t v;

    if (key == NULL) {
        return true;
    }
    h = sl__mock_header(r, "authorization");
    if (h == NULL) {
        return false;
    }
    v = sl_str_trim(h->value);
    if (v.len < 7 || !sl_mem_caseeq(v.p, "Bearer ", 7)) {
        return false;
    }
    return sl_str_ct_eq(v.p + 7, v.len - 7, key, strlen(key));
}


static void
api_record(sl_mock_t *m, const sl_mock_req_t *r)
{
    sl_mock_record_t *rec = &m->log[m->log_next];
    sl_buf_t *b = &rec->blob;

    sl_buf_clear(b);
    sl_buf_append(b, r->method.p, r->method.len);
    sl_buf_append(b, "", 1);
    sl_buf_append(b, r->target.p, r->target.len);
    sl_buf_append(b, "", 1);
    for (size_t i = 0; i < r->nheaders; i++) {
        const sl_http_header_t *h = &r->headers[i];
        size_t at = b->len;

        sl_buf_append(b, h->name.p, h->name.len);
        for (size_t k = at; k < b->len; k++) {
            if (b->p[k] >= 'A' && b->p[k] <= 'Z') {
                b->p[k] |= 0x20;
            }
        }
        sl_buf_append(b, "", 1);
        sl_buf_append(b, h->value.p, h->value.len);
        sl_buf_append(b, "", 1);
    }
    rec->nheaders = r->nheaders;
    rec->body_off = b->len;
    sl_buf_append(b, r->body.p, r->body.len);

    m->log_next = (m->log_next + 1) % SL_MOCK_LOG_MAX;
    if (m->log_len < SL_MOCK_LOG_MAX) {
        m->log_len++;
    }

    /* every tag, however many requests: the ledger tests match them one by one */
    const sl_http_header_t *tag = sl__mock_header(r, "x-mock-tag");

    if (tag != NULL && tag->value.len > 0 && tag->value.len <= 256
        && memchr(tag->value.p, '\n', tag->value.len) == NULL) {
        sl_buf_append(&m->tags, tag->value.p, tag->value.len);
        sl_buf_append(&m->tags, "\n", 1);
    }
}


/* A JSON string from bytes that may not be UTF-8: bytes jansson refuses become '?'. */
static json_t *
api_json_bytes(const char *p, size_t len)
{
    json_t *s = json_stringn(p, len);
    char *copy;

    if (s != NULL) {
        return s;
    }
    copy = sl_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) p[i];

        copy[i] = ch >= 0x80 || ch == 0 ? '?' : (char) ch;
    }
    s = json_stringn(copy, len);
    free(copy);
    return s;
}


/* GET /__mock/requests into m->body, oldest first. */
static void
api_requests(sl_mock_t *m)
{
    json_t *arr = json_array();
    size_t first = (m->log_next + SL_MOCK_LOG_MAX - m->log_len) % SL_MOCK_LOG_MAX;
    char *text;

    for (size_t n = 0; n < m->log_len; n++) {
        const sl_mock_record_t *rec = &m->log[(first + n) % SL_MOCK_LOG_MAX];
        const char *p = rec->blob.p;
        json_t *o = json_object();
        json_t *hdrs = json_object();

        json_object_set_new(o, "method", api_json_bytes(p, strlen(p)));
        p += strlen(p) + 1;
        json_object_set_new(o, "path", api_json_bytes(p, strlen(p)));
        p += strlen(p) + 1;
        for (size_t i = 0; i < rec->nheaders; i++) {
            const char *name = p;
            const char *value = p + strlen(p) + 1;
            json_t *old = json_object_get(hdrs, name);

            p = value + strlen(value) + 1;
            if (old != NULL && json_is_string(old)) {
                /* repeated header: join as a proxy would (RFC 9110 5.3) */
                char *joined = sl_psprintf(m->scratch, "%s, %s", json_string_value(old), value);

                json_object_set_new(hdrs, name, api_json_bytes(joined, strlen(joined)));
            } else {
                json_object_set_new(hdrs, name, api_json_bytes(value, strlen(value)));
            }
        }
        json_object_set_new(o, "headers", hdrs);
        json_object_set_new(
            o, "body", api_json_bytes(rec->blob.p + rec->body_off, rec->blob.len - rec->body_off));
        json_array_append_new(arr, o);
    }
    text = json_dumps(arr, JSON_COMPACT);
    sl_buf_clear(&m->body);
    sl_buf_puts(&m->body, text != NULL ? text : "[]");
    free(text);
    json_decref(arr);
}


/*
 * POST /__mock/faults {"headers": {"x-mock-status": "500", ...}, "count": N}:
 * the next N API requests (all of them for -1 or no count; none for 0)
 * behave as if they carried those headers, so one mock of several can fail
 * while the others answer. Returns 0 or -1 for a body it cannot use.
 */
static int
api_program_faults(sl_mock_t *m, const sl_mock_req_t *r)
{
    json_t *root = json_loadb(r->body.p, r->body.len, 0, NULL);
    json_t *hdrs = json_object_get(root, "headers");
    json_t *count = json_object_get(root, "count");
    const char *name;
    json_t *v;
    size_t off[SL_MOCK_FAULTS_MAX][2];
    size_t n = 0;

    if (!json_is_object(hdrs) || json_object_size(hdrs) > SL_MOCK_FAULTS_MAX
        || (count != NULL && !json_is_integer(count))) {
        json_decref(root);
        return -1;
    }
    sl_buf_clear(&m->fault_blob);
    json_object_foreach(hdrs, name, v)
    {
        if (!json_is_string(v)) {
            json_decref(root);
            return -1;
        }
        off[n][0] = m->fault_blob.len;
        sl_buf_append(&m->fault_blob, name, strlen(name) + 1);
        off[n][1] = m->fault_blob.len;
        sl_buf_append(&m->fault_blob, json_string_value(v), json_string_length(v) + 1);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        const char *nm = m->fault_blob.p + off[i][0];
        const char *val = m->fault_blob.p + off[i][1];

        m->fault_h[i].name = (sl_str_t){ nm, strlen(nm) };
        m->fault_h[i].value = (sl_str_t){ val, strlen(val) };
    }
    m->nfault = n;
    m->fault_count = count != NULL ? (long) json_integer_value(count) : -1;
    json_decref(root);
    return 0;
}


/* r with the programmed fault headers in front of its own (they win), or r. */
static const sl_mock_req_t *
api_with_faults(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_req_t *copy)
{
    sl_http_header_t *h;

    if (m->nfault == 0 || m->fault_count == 0) {
        return r;
    }
    if (m->fault_count > 0) {
        m->fault_count--;
    }
    h = sl_palloc(m->scratch, sizeof(*h) * (m->nfault + r->nheaders));
    memcpy(h, m->fault_h, sizeof(*h) * m->nfault);
    if (r->nheaders > 0) {
        memcpy(h + m->nfault, r->headers, sizeof(*h) * r->nheaders);
    }
    *copy = *r;
    copy->headers = h;
    copy->nheaders = m->nfault + r->nheaders;
    return copy;
}


static void
api_introspect(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp)
{
    sl_buf_t *b = &m->body;

    if (sl_str_eq(r->path, "/__mock/requests") && sl_str_eq(r->method, "GET")) {
        api_requests(m);
    } else if (sl_str_eq(r->path, "/__mock/tags") && sl_str_eq(r->method, "GET")) {
        json_t *arr = json_array();
        char *text;

        for (size_t at = 0; at < m->tags.len;) {
            const char *nl = memchr(m->tags.p + at, '\n', m->tags.len - at);

            json_array_append_new(arr,
                                  api_json_bytes(m->tags.p + at, (size_t) (nl - m->tags.p) - at));
            at = (size_t) (nl - m->tags.p) + 1;
        }
        text = json_dumps(arr, JSON_COMPACT);
        sl_buf_clear(b);
        sl_buf_puts(b, text != NULL ? text : "[]");
        free(text);
        json_decref(arr);
    } else if (sl_str_eq(r->path, "/__mock/reset") && sl_str_eq(r->method, "POST")) {
        for (size_t i = 0; i < SL_MOCK_LOG_MAX; i++) {
            sl_buf_clear(&m->log[i].blob);
        }
        m->log_len = 0;
        m->log_next = 0;
        sl_buf_clear(&m->tags);
        m->requests = 0;
        m->connections = 0;
        m->nfault = 0;
        m->fault_count = 0;
        sl_buf_clear(b);
        sl_buf_puts(b, "{\"ok\":true}");
    } else if (sl_str_eq(r->path, "/__mock/faults") && sl_str_eq(r->method, "POST")) {
        if (api_program_faults(m, r) < 0) {
            api_error_body(m, "expected {\"headers\": {name: value, ...}, \"count\": N}",
                           "invalid_request_error", NULL, NULL);
            api_emit(m, r, resp, 400, NULL);
            return;
        }
        sl_buf_clear(b);
        sl_buf_puts(b, "{\"ok\":true}");
    } else if (sl_str_eq(r->path, "/__mock/stats") && sl_str_eq(r->method, "GET")) {
        sl_buf_clear(b);
        sl_buf_printf(b, "{\"requests\":%llu,\"connections\":%llu,\"active\":%llu}",
                      (unsigned long long) m->requests, (unsigned long long) m->connections,
                      (unsigned long long) m->active);
    } else {
        api_error_body(m, "unknown mock control endpoint", "invalid_request_error", NULL, NULL);
        api_emit(m, r, resp, 404, NULL);
        return;
    }
    api_emit(m, r, resp, 200, NULL);
}


void
sl_mock_handle(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp)
{
    sl_mock_faults_t f;
    sl_mock_req_t copy;

    sl_buf_clear(&resp->data);
    resp->nseg = 0;
    resp->paced_from = 0;
    resp->delay_ms = 0;
    resp->chunk_delay_ms = 0;
    resp->drip_ms = 0;
    resp->reset_after = 0;
    resp->close = !r->keep_alive;
    resp->abort = false;
    m->serial++;

    if (r->path.len >= 8 && memcmp(r->path.p, "/__mock/", 8) == 0) {
        api_introspect(m, r, resp);
        goto out;
    }

    m->requests++;
    api_record(m, r); /* as it came: the programmed faults are not the client's */
    r = api_with_faults(m, r, &copy);
    api_faults(m, r, &f);
    resp->close = resp->close || f.close;
    resp->delay_ms = f.delay_ms;
    resp->chunk_delay_ms = f.chunk_delay_ms;
    resp->drip_ms = f.drip_ms;

    if (f.garbage) {
        sl_buf_append(&resp->data, api_garbage, sizeof(api_garbage) - 1);
        sl__mock_seg(resp);
        resp->close = true;
        resp->abort = true;
        goto out;
    }
    if (sl__mock_is_anthropic(r)) {
        sl__mock_anthropic(m, r, resp, &f);
        goto out;
    }
    if (sl__mock_is_gemini(r)) {
        sl__mock_gemini(m, r, resp, &f);
        goto out;
    }
    if (api_azure(r, NULL) || sl_str_eq(r->path, "/openai/v1/responses")) {
        if (!api_azure_authorized(m, r)) {
            api_error(m, r, resp, 401, &f,
                      "Access denied due to invalid subscription key or wrong API endpoint. Make "
                      "sure to provide a valid key for an active subscription and use a correct "
                      "regional API endpoint for your resource.",
                      "invalid_request_error", NULL, "401");
            goto out;
        }
    } else if (!api_authorized(m, r)) {
        api_error(m, r, resp, 401, &f, "Incorrect API key provided.", "invalid_request_error", NULL,
                  "invalid_api_key");
        goto out;
    }
    if (f.status != 0) {
        char *msg = sl_psprintf(m->scratch, "mock: injected HTTP %d", f.status);

        if (f.status == 429) {
            api_error(m, r, resp, f.status, &f, msg, "rate_limit_exceeded", NULL,
                      "rate_limit_exceeded");
        } else if (f.status >= 500) {
            api_error(m, r, resp, f.status, &f, msg, "server_error", NULL, NULL);
        } else {
            api_error(m, r, resp, f.status, &f, msg, "invalid_request_error", NULL, NULL);
        }
        goto out;
    }
    api_route(m, r, resp, &f);

out:
    sl_pool_reset(m->scratch);
}


void
sl_mock_bad_request(sl_mock_t *m, sl_mock_resp_t *resp, int status)
{
    sl_buf_clear(&resp->data);
    resp->nseg = 0;
    resp->paced_from = 0;
    resp->delay_ms = 0;
    resp->chunk_delay_ms = 0;
    resp->drip_ms = 0;
    resp->reset_after = 0;
    resp->close = true;
    resp->abort = false;
    m->serial++;
    api_error_body(m, status != 400 ? "request too large" : "malformed HTTP request",
                   "invalid_request_error", NULL, NULL);
    api_emit(m, NULL, resp, status, NULL);
}


void
sl_mock_log_free(sl_mock_t *m)
{
    for (size_t i = 0; i < SL_MOCK_LOG_MAX; i++) {
        sl_buf_free(&m->log[i].blob);
    }
    m->log_len = 0;
    sl_buf_free(&m->fault_blob);
}


/*
 * Azure OpenAI: /openai/deployments/{deployment}/{op}. True for such a
 * path (a non-empty deployment segment and a non-empty rest); op, when not
 * NULL, gets the rest ("chat/completions", "embeddings", ...).
 */
static bool
api_azure(const sl_mock_req_t *r, sl_str_t *op)
{
    static const char prefix[] = "/openai/deployments/";
    size_t plen = sizeof(prefix) - 1;
    const char *slash;

    if (r->path.len <= plen || memcmp(r->path.p, prefix, plen) != 0) {
        return false;
    }
    slash = memchr(r->path.p + plen, '/', r->path.len - plen);
    if (slash == NULL || slash == r->path.p + plen || slash == r->path.p + r->path.len - 1) {
        return false;
    }
    if (op != NULL) {
        op->p = slash + 1;
        op->len = (size_t) (r->path.p + r->path.len - op->p);
    }
    return true;
}


/* Azure's key header: `api-key: KEY` (Authorization does not count). */
static bool
api_azure_authorized(sl_mock_t *m, const sl_mock_req_t *r)
{
    const char *key = m->conf.api_key;
    const sl_http_header_t *h;
    sl_str_t v;

    if (key == NULL) {
        return true;
    }
    h = sl__mock_header(r, "api-key");
    if (h == NULL) {
        return false;
    }
    v = sl_str_trim(h->value);
    return sl_str_ct_eq(v.p, v.len, key, strlen(key));
}


/* Whether the query has a non-empty api-version parameter. */
static bool
api_azure_version(const sl_mock_req_t *r)
{
    static const char name[] = "api-version=";
    size_t nlen = sizeof(name) - 1;
    const char *end = r->target.p + r->target.len;
    const char *q = memchr(r->target.p, '?', r->target.len);

    while (q != NULL && q < end) {
        const char *p = q + 1;
        const char *amp = memchr(p, '&', (size_t) (end - p));
        const char *pend = amp != NULL ? amp : end;

        if ((size_t) (pend - p) > nlen && memcmp(p, name, nlen) == 0) {
            return true;
        }
        q = amp;
    }
    return false;
}


static void
api_route(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f)
{
    bool get = sl_str_eq(r->method, "GET");
    bool post = sl_str_eq(r->method, "POST");
    sl_str_t op;
    char *msg;

    if (api_azure(r, &op)) {
        /* Azure answers a missing api-version and an unknown operation alike */
        if (!api_azure_version(r)) {
            api_error(m, r, resp, 404, f, "Resource not found", "invalid_request_error", NULL,
                      "404");
        } else if (post && sl_str_eq(op, "chat/completions")) {
            api_chat(m, r, resp, f);
        } else if (post && sl_str_eq(op, "embeddings")) {
            api_embeddings(m, r, resp, f);
        } else {
            api_error(m, r, resp, 404, f, "Resource not found", "invalid_request_error", NULL,
                      "404");
        }
        return;
    }

    if (sl__mock_is_responses(r)) {
        sl__mock_responses(m, r, resp, f);
        return;
    }
    if (post && sl_str_eq(r->path, "/v1/chat/completions")) {
        api_chat(m, r, resp, f);
        return;
    }
    if (post && sl_str_eq(r->path, "/v1/embeddings")) {
        api_embeddings(m, r, resp, f);
        return;
    }
    if (get && sl_str_eq(r->path, "/v1/models")) {
        api_models(m, r, resp, f);
        return;
    }
    if (get && r->path.len > 11 && memcmp(r->path.p, "/v1/models/", 11) == 0) {
        api_model_one(m, r, resp, f, (sl_str_t){ r->path.p + 11, r->path.len - 11 });
        return;
    }

    /* OpenAI's own wording; the URL is made ASCII so the message stays valid JSON */
    msg = sl_psprintf(m->scratch, "Invalid URL (%.*s %.*s)", (int) r->method.len, r->method.p,
                      (int) r->path.len, r->path.p);
    for (char *p = msg; *p != '\0'; p++) {
        if ((unsigned char) *p >= 0x80) {
            *p = '?';
        }
    }
    api_error(m, r, resp, 404, f, msg, "invalid_request_error", NULL, NULL);
}


/* Parses the request body as a JSON object, or answers 400 and returns NULL. */
static json_t *
api_parse_body(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
               const sl_mock_faults_t *f)
{
    json_error_t err;
    json_t *root = json_loadb(r->body.p, r->body.len, 0, &err);

    if (root != NULL && json_is_object(root)) {
        return root;
    }
    json_decref(root);
    api_error(
        m, r, resp, 400, f,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)",
        "invalid_request_error", NULL, NULL);
    return NULL;
}


/* Appends the text of a message's content: a string, or the "text" parts of an array. */
static void
api_text_of(const json_t *content, sl_buf_t *out)
{
    size_t i;
    const json_t *part;

    if (json_is_string(content)) {
        sl_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    if (!json_is_array(content)) {
        return;
    }
    json_array_foreach(content, i, part)
    {
        const json_t *text = json_object_get(part, "text");

        if (json_is_string(text)) {
            if (out->len > 0) {
                sl_buf_append(out, " ", 1);
            }
            sl_buf_append(out, json_string_value(text), json_string_length(text));
        }
    }
}


/* Bytes taken by the first `chars` code points of UTF-8 text. */
size_t
sl__mock_utf8_prefix(const char *s, size_t len, size_t chars)
{
    size_t i = 0;

    while (i < len && chars > 0) {
        i++;
        while (i < len && ((unsigned char) s[i] & 0xc0) == 0x80) {
            i++;
        }
        chars--;
    }
    return i;
}


size_t
sl__mock_utf8_len(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }
    return n;
}


long long
sl__mock_words(const char *s, size_t len)
{
    long long n = 0;
    bool in_word = false;

    for (size_t i = 0; i < len; i++) {
        bool space = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';

        if (!space && !in_word) {
            n++;
        }
        in_word = !space;
    }
    return n;
}


bool
sl__mock_contains_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++) {
        if (sl_mem_caseeq(s + i, needle, n)) {
            return true;
        }
    }
    return false;
}


static void
api_chat(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f)
{
    json_t *root;
    const json_t *model, *messages, *msg, *tools, *opts;
    sl_buf_t text = SL_BUF_INIT;
    sl_buf_t last_user = SL_BUF_INIT;
    size_t prompt_chars = 0;
    size_t i, cut;
    bool last_is_user = false;
    api_chat_t ch;
    char *reply;

    root = api_parse_body(m, r, resp, f);
    if (root == NULL) {
        return;
    }
    model = json_object_get(root, "model");
    if (!json_is_string(model)) {
        api_error(m, r, resp, 400, f, "you must provide a model parameter", "invalid_request_error",
                  NULL, NULL);
        goto out;
    }
    messages = json_object_get(root, "messages");
    if (!json_is_array(messages)) {
        api_error(m, r, resp, 400, f, "Missing required parameter: 'messages'.",
                  "invalid_request_error", "messages", "missing_required_parameter");
        goto out;
    }
    if (json_array_size(messages) == 0) {
        api_error(m, r, resp, 400, f, "[] is too short - 'messages'", "invalid_request_error",
                  "messages", "empty_array");
        goto out;
    }

    json_array_foreach(messages, i, msg)
    {
        const json_t *role = json_object_get(msg, "role");
        bool user = json_is_string(role) && strcmp(json_string_value(role), "user") == 0;

        sl_buf_clear(&text);
        api_text_of(json_object_get(msg, "content"), &text);
        prompt_chars += text.len;
        if (user) {
            sl_buf_clear(&last_user);
            sl_buf_append(&last_user, text.p, text.len);
        }
        last_is_user = user;
    }

    memset(&ch, 0, sizeof(ch));
    ch.id = (unsigned long long) m->serial;
    ch.created = (long long) time(NULL);
    ch.model = (sl_str_t){ json_string_value(model), json_string_length(model) };
    opts = json_object_get(root, "stream_options");
    ch.include_usage = json_is_true(json_object_get(opts, "include_usage"));
    ch.prompt_tokens = (long long) (prompt_chars / 4 + 1);

    tools = json_object_get(root, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0 && last_is_user
        && sl__mock_contains_ci(last_user.p, last_user.len, "weather")) {
        const json_t *name =
            json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name");

        if (json_is_string(name)) {
            ch.tool_name = (sl_str_t){ json_string_value(name), json_string_length(name) };
        } else {
            ch.tool_name = sl_str_lit("get_weather");
        }
        ch.reply = sl_str_lit(SL_MOCK_TOOL_ARGS);
        ch.completion_tokens = (long long) (ch.reply.len / 4 + 1);
    } else {
        cut = sl__mock_utf8_prefix(last_user.p, last_user.len, SL_MOCK_REPLY_MAX_CHARS);
        reply = sl_palloc(m->scratch, sizeof("mock reply: ") + cut);
        memcpy(reply, "mock reply: ", sizeof("mock reply: ") - 1);
        if (cut > 0) {
            memcpy(reply + sizeof("mock reply: ") - 1, last_user.p, cut);
        }
        ch.reply = (sl_str_t){ reply, sizeof("mock reply: ") - 1 + cut };
        ch.completion_tokens = sl__mock_words(ch.reply.p, ch.reply.len);
    }

    if (json_is_true(json_object_get(root, "stream"))) {
        api_chat_stream(m, r, resp, f, &ch);
    } else {
        api_chat_full(m, r, resp, f, &ch);
    }

out:
    sl_buf_free(&text);
    sl_buf_free(&last_user);
    json_decref(root);
}


static void
api_usage(sl_buf_t *b, const api_chat_t *ch)
{
    sl_buf_printf(b,
                  "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":0},"
                  "\"completion_tokens_details\":{\"reasoning_tokens\":0}}",
                  ch->prompt_tokens, ch->completion_tokens,
                  ch->prompt_tokens + ch->completion_tokens);
}


static void
api_chat_full(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
              const api_chat_t *ch)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_printf(b,
                  "{\"id\":\"chatcmpl-mock%llu\",\"object\":\"chat.completion\",\"created\":%lld,"
                  "\"model\":",
                  ch->id, ch->created);
    sl__mock_json_str(b, ch->model.p, ch->model.len);
    sl_buf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (ch->tool_name.len > 0) {
        sl_buf_puts(b, "null,\"tool_calls\":[{\"id\":\"call_mock1\",\"type\":\"function\","
                       "\"function\":{\"name\":");
        sl__mock_json_str(b, ch->tool_name.p, ch->tool_name.len);
        sl_buf_puts(b, ",\"arguments\":");
        sl__mock_json_str(b, ch->reply.p, ch->reply.len);
        sl_buf_puts(b,
                    "}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]");
    } else {
        sl__mock_json_str(b, ch->reply.p, ch->reply.len);
        sl_buf_puts(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    }
    sl_buf_puts(b, ",\"usage\":");
    api_usage(b, ch);
    sl_buf_puts(b, ",\"system_fingerprint\":\"fp_mock\"}");
    api_emit(m, r, resp, 200, f);
}


/* Starts "data: {chunk" in m->body, up to the opening of "choices". */
static void
api_chunk_open(sl_mock_t *m, const api_chat_t *ch)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_printf(b,
                  "data: {\"id\":\"chatcmpl-mock%llu\",\"object\":\"chat.completion.chunk\","
                  "\"created\":%lld,\"model\":",
                  ch->id, ch->created);
    sl__mock_json_str(b, ch->model.p, ch->model.len);
    sl_buf_puts(b, ",\"system_fingerprint\":\"fp_mock\",\"choices\":[");
}


/* Ends one choice (after its delta) and the chunk. finish is a JSON value. */
static void
api_chunk_close(sl_mock_t *m, const api_chat_t *ch, const char *finish)
{
    sl_buf_printf(&m->body, ",\"logprobs\":null,\"finish_reason\":%s}]%s}\n\n", finish,
                  ch->include_usage ? ",\"usage\":null" : "");
}


void
sl__mock_event(sl_mock_t *m, sl_mock_resp_t *resp, bool last)
{
    sl_buf_printf(&resp->data, "%zx\r\n", m->body.len);
    sl_buf_append(&resp->data, m->body.p, m->body.len);
    if (last) {
        sl_buf_append(&resp->data, "\r\n0\r\n\r\n", 7);
    } else {
        sl_buf_append(&resp->data, "\r\n", 2);
    }
    sl__mock_seg(resp);
}


static void
api_chat_stream(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
                const sl_mock_faults_t *f, const api_chat_t *ch)
{
    sl_buf_t *b = &m->body;
    size_t chars = sl__mock_utf8_len(ch->reply.p, ch->reply.len);
    size_t pieces = f->chunks < chars ? f->chunks : chars;
    size_t at = 0;
    bool tool = ch->tool_name.len > 0;

    sl__mock_head(m, r, resp, 200, "text/event-stream; charset=utf-8", -1, f, NULL);

    api_chunk_open(m, ch);
    if (tool) {
        sl_buf_puts(b, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
                       "\"tool_calls\":[{\"index\":0,\"id\":\"call_mock1\",\"type\":\"function\","
                       "\"function\":{\"name\":");
        sl__mock_json_str(b, ch->tool_name.p, ch->tool_name.len);
        sl_buf_puts(b, ",\"arguments\":\"\"}}],\"refusal\":null}");
    } else {
        sl_buf_puts(b, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                       "\"refusal\":null}");
    }
    api_chunk_close(m, ch, "null");
    sl__mock_event(m, resp, false);

    for (size_t i = 0; i < pieces; i++) {
        /* piece i covers code points [i*chars/pieces, (i+1)*chars/pieces) */
        size_t want = (i + 1) * chars / pieces - i * chars / pieces;
        size_t len = sl__mock_utf8_prefix(ch->reply.p + at, ch->reply.len - at, want);

        api_chunk_open(m, ch);
        if (tool) {
            sl_buf_puts(b, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                           "\"function\":{\"arguments\":");
            sl__mock_json_str(b, ch->reply.p + at, len);
            sl_buf_puts(b, "}}]}");
        } else {
            sl_buf_puts(b, "{\"index\":0,\"delta\":{\"content\":");
            sl__mock_json_str(b, ch->reply.p + at, len);
            sl_buf_puts(b, "}");
        }
        api_chunk_close(m, ch, "null");
        sl__mock_event(m, resp, false);
        at += len;
    }

    api_chunk_open(m, ch);
    sl_buf_puts(b, "{\"index\":0,\"delta\":{}");
    api_chunk_close(m, ch, tool ? "\"tool_calls\"" : "\"stop\"");
    sl__mock_event(m, resp, false);

    if (ch->include_usage) {
        api_chunk_open(m, ch);
        sl_buf_puts(b, "],\"usage\":");
        api_usage(b, ch);
        sl_buf_puts(b, "}\n\n");
        sl__mock_event(m, resp, false);
    }

    sl_buf_clear(b);
    sl_buf_puts(b, "data: [DONE]\n\n");
    sl__mock_event(m, resp, true);

    /* headers and the role chunk go at once; every later event waits its turn */
    resp->paced_from = 2;
    if (f->reset_after >= 0) {
        resp->reset_after =
            2 + ((size_t) f->reset_after < pieces ? (size_t) f->reset_after : pieces);
    }
}


/*
 * SL_MOCK_EMBED_DIMS deterministic values for the input, meaningful enough
 * for a semantic cache: a bag of words hashed into the dimensions. Words
 * are runs of ASCII letters and digits (lower-cased) and UTF-8 bytes; each
 * adds +1 or -1 (by its FNV-1a hash) to one dimension, and the vector is
 * scaled to length 1. Texts with the same words get the same vector, texts
 * sharing most of their words close ones. Each value is then rounded to a
 * multiple of 1/1024, exact in float32, so the float and base64 encodings
 * decode to the same numbers. A text without words gets (1, 0, 0, ...).
 */
void
sl__mock_embedding(sl_buf_t *b, const char *p, size_t len, bool base64)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[SL_MOCK_EMBED_DIMS * 4];
    double acc[SL_MOCK_EMBED_DIMS] = { 0 };
    float v[SL_MOCK_EMBED_DIMS];
    double norm = 0;
    size_t i = 0;

    while (i < len) {
        uint32_t h = 2166136261u;
        size_t n = 0;

        for (; i < len; i++, n++) {
            unsigned char c = (unsigned char) p[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c >= 0x80)) {
                break;
            }
            h ^= (uint32_t) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            h *= 16777619u;
        }
        if (n > 0) {
            acc[h % SL_MOCK_EMBED_DIMS] += (h >> 31) != 0 ? -1.0 : 1.0;
        }
        if (n == 0) {
            i++;
        }
    }
    for (i = 0; i < SL_MOCK_EMBED_DIMS; i++) {
        norm += acc[i] * acc[i];
    }
    if (norm == 0) {
        acc[0] = 1;
        norm = 1;
    }
    norm = sqrt(norm);
    for (i = 0; i < SL_MOCK_EMBED_DIMS; i++) {
        v[i] = (float) floor(acc[i] / norm * 1024 + 0.5) / 1024.0f;
    }

    if (!base64) {
        sl_buf_append(b, "[", 1);
        for (i = 0; i < SL_MOCK_EMBED_DIMS; i++) {
            sl_buf_printf(b, "%s%.10g", i == 0 ? "" : ",", (double) v[i]);
        }
        sl_buf_append(b, "]", 1);
        return;
    }

    for (i = 0; i < SL_MOCK_EMBED_DIMS; i++) {
        uint32_t u;

        memcpy(&u, &v[i], 4);
        raw[i * 4] = (unsigned char) u;
        raw[i * 4 + 1] = (unsigned char) (u >> 8);
        raw[i * 4 + 2] = (unsigned char) (u >> 16);
        raw[i * 4 + 3] = (unsigned char) (u >> 24);
    }
    sl_buf_append(b, "\"", 1);
    for (i = 0; i < sizeof(raw); i += 3) {
        size_t n = sizeof(raw) - i < 3 ? sizeof(raw) - i : 3;
        uint32_t w = (uint32_t) raw[i] << 16;
        char out[4];

        if (n > 1) {
            w |= (uint32_t) raw[i + 1] << 8;
        }
        if (n > 2) {
            w |= raw[i + 2];
        }
        out[0] = b64[(w >> 18) & 63];
        out[1] = b64[(w >> 12) & 63];
        out[2] = n > 1 ? b64[(w >> 6) & 63] : '=';
        out[3] = n > 2 ? b64[w & 63] : '=';
        sl_buf_append(b, out, 4);
    }
    sl_buf_append(b, "\"", 1);
}


static void
api_embeddings(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp,
               const sl_mock_faults_t *f)
{
    json_t *root;
    const json_t *model, *input, *fmt, *item;
    json_t *inputs = NULL;
    sl_buf_t *b = &m->body;
    long long tokens = 0;
    bool base64 = false;
    size_t i;

    root = api_parse_body(m, r, resp, f);
    if (root == NULL) {
        return;
    }
    model = json_object_get(root, "model");
    if (!json_is_string(model)) {
        api_error(m, r, resp, 400, f, "you must provide a model parameter", "invalid_request_error",
                  NULL, NULL);
        goto out;
    }
    fmt = json_object_get(root, "encoding_format");
    if (fmt != NULL && !json_is_null(fmt)) {
        if (json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0) {
            base64 = true;
        } else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "float") != 0) {
            api_error(m, r, resp, 400, f,
                      "Invalid value for 'encoding_format': must be 'float' or 'base64'.",
                      "invalid_request_error", "encoding_format", "invalid_value");
            goto out;
        }
    }

    /* normalise: a list of inputs, each a string or a token array */
    input = json_object_get(root, "input");
    inputs = json_array();
    if (json_is_string(input)) {
        json_array_append(inputs, (json_t *) input);
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        if (json_is_integer(json_array_get(input, 0))) {
            json_array_append(inputs, (json_t *) input);
        } else {
            json_array_foreach(input, i, item)
            {
                if (!json_is_string(item) && !json_is_array(item)) {
                    break;
                }
                json_array_append(inputs, (json_t *) item);
            }
            if (i != json_array_size(input)) {
                json_array_clear(inputs);
            }
        }
    }
    if (json_array_size(inputs) == 0) {
        api_error(m, r, resp, 400, f,
                  input == NULL ? "Missing required parameter: 'input'." : "Invalid 'input'.",
                  "invalid_request_error", "input",
                  input == NULL ? "missing_required_parameter" : "invalid_value");
        goto out;
    }

    sl_buf_clear(b);
    sl_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    json_array_foreach(inputs, i, item)
    {
        const char *p;
        size_t len;
        char *dump = NULL;

        if (json_is_string(item)) {
            p = json_string_value(item);
            len = json_string_length(item);
            tokens += (long long) (len / 4 + 1);
        } else {
            dump = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
            p = dump != NULL ? dump : "";
            len = strlen(p);
            tokens += (long long) (json_is_array(item) ? json_array_size(item) : 1);
        }
        sl_buf_printf(
            b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i == 0 ? "" : ",", i);
        sl__mock_embedding(b, p, len, base64);
        sl_buf_append(b, "}", 1);
        free(dump);
    }
    sl_buf_puts(b, "],\"model\":");
    sl__mock_json_str(b, json_string_value(model), json_string_length(model));
    sl_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", tokens, tokens);
    api_emit(m, r, resp, 200, f);

out:
    json_decref(inputs);
    json_decref(root);
}


static void
api_models(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f)
{
    sl_buf_t *b = &m->body;

    sl_buf_clear(b);
    sl_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < sizeof(api_models_list) / sizeof(api_models_list[0]); i++) {
        sl_buf_printf(b,
                      "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":%lld,"
                      "\"owned_by\":\"mock\"}",
                      i == 0 ? "" : ",", api_models_list[i].id, api_models_list[i].created);
    }
    sl_buf_puts(b, "]}");
    api_emit(m, r, resp, 200, f);
}


static void
api_model_one(sl_mock_t *m, const sl_mock_req_t *r, sl_mock_resp_t *resp, const sl_mock_faults_t *f,
              sl_str_t id)
{
    sl_buf_t *b = &m->body;
    char *msg;

    for (size_t i = 0; i < sizeof(api_models_list) / sizeof(api_models_list[0]); i++) {
        if (sl_str_eq(id, api_models_list[i].id)) {
            sl_buf_clear(b);
            sl_buf_printf(b,
                          "{\"id\":\"%s\",\"object\":\"model\",\"created\":%lld,"
                          "\"owned_by\":\"mock\"}",
                          api_models_list[i].id, api_models_list[i].created);
            api_emit(m, r, resp, 200, f);
            return;
        }
    }
    msg = sl_psprintf(m->scratch, "The model '%.*s' does not exist", (int) id.len, id.p);
    for (char *p = msg; *p != '\0'; p++) {
        if ((unsigned char) *p >= 0x80) {
            *p = '?';
        }
    }
    api_error(m, r, resp, 404, f, msg, "invalid_request_error", "model", "model_not_found");
}


sl_str_t
sl__mock_reply(sl_mock_t *m, const char *text, size_t len)
{
    static const char prefix[] = "mock reply: ";
    size_t cut = sl__mock_utf8_prefix(text, len, SL_MOCK_REPLY_MAX_CHARS);
    char *reply = sl_palloc(m->scratch, sizeof(prefix) + cut);

    memcpy(reply, prefix, sizeof(prefix) - 1);
    if (cut > 0) {
        memcpy(reply + sizeof(prefix) - 1, text, cut);
    }
    return (sl_str_t){ reply, sizeof(prefix) - 1 + cut };
}


size_t
sl__mock_words_prefix(const char *s, size_t len, long long words)
{
    bool in_word = false;

    for (size_t i = 0; i < len; i++) {
        bool space = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';

        if (space && in_word && --words == 0) {
            return i;
        }
        in_word = !space;
    }
    return len;
}
