/*
 * The OTLP/HTTP trace exporter of a worker: the span queue (a ring of
 * batch buffers, each an export request in the making: room for the
 * export's head, then up to batch_size encoded spans; the buffers are
 * reused, so a warm exporter allocates nothing), the batch timer, and one
 * export at a time through a private upstream client whose only
 * "provider" is the collector (conf->otlp.collector).
 */
#include "core/admin/telemetry.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/admin/metrics.h"
#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "core/base/pool.h"
#include "core/http/upstream.h"

#define TEL_BACKOFF_MAX 30000 /* ms: the longest rest after failed exports */
#define TEL_LOG_EVERY   60000 /* ms between two messages about failing exports */
#define TEL_LAST_MAX    2000  /* ms the last export may take when the worker stops */

/* One export request in the making: head room, then the encoded spans. */
typedef struct tel_batch {
    sl_buf_t b;
    size_t n; /* spans */
} tel_batch_t;

struct sl_telemetry {
    uv_loop_t *loop;
    const sl_otlp_conf_t *oc;
    sl_conf_t uconf; /* what the upstream client sees: one provider, the collector */
    sl_upstream_t *up;
    sl_upstream_call_t *uc; /* the export in flight, or NULL */
    uv_timer_t timer;
    sl_pool_t *pool;          /* the resource attributes */
    sl_otlp_attrs_t resource; /* service.name, host.name, process.pid, OTEL_RESOURCE_ATTRIBUTES */
    size_t head;              /* bytes kept in front of a batch's spans for the export's head */
    tel_batch_t *ring;        /* queued batches, oldest first from first, and the one in flight */
    size_t nring;
    size_t first;        /* the oldest queued batch */
    size_t nb;           /* queued batches: all full but the last */
    size_t nq;           /* queued spans */
    tel_batch_t *flying; /* the batch of the export in flight, or NULL */
    size_t nbody;        /* its spans */
    size_t peak;         /* bytes of the largest export so far: what a batch buffer starts with */
    int status;          /* its response status */
    uint64_t rest_until; /* uv_now: no export before (after a failure) */
    uint64_t backoff;    /* ms, 0 after a success */
    uint64_t logged;     /* uv_now of the last failure message */
    uint64_t failed;     /* exports failed since that message */
    bool stopping;
    bool timer_closed;
    bool destroyed;
};

static sl_telemetry_t *tel_current;

static void tel_on_timer(uv_timer_t *h);
static void tel_on_last_deadline(uv_timer_t *h);
static void tel_on_close(uv_handle_t *h);
static void tel_export(sl_telemetry_t *t);
static void tel_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers,
                           size_t nheaders, void *data);
static void tel_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data);
static void tel_on_done(sl_upstream_call_t *uc, int rc, void *data);
static void tel_free(sl_telemetry_t *t);
static tel_batch_t *tel_batch(sl_telemetry_t *t);

static const sl_upstream_cbs_t tel_cbs = {
    tel_on_headers,
    tel_on_body,
    tel_on_done,
    NULL,
};


sl_telemetry_t *
sl_telemetry_create(uv_loop_t *loop, const sl_conf_t *conf)
{
    const sl_otlp_conf_t *oc = &conf->otlp;
    sl_telemetry_t *t;
    char host[256];

    if (!oc->enabled) {
        return NULL;
    }
    t = sl_xcalloc(1, sizeof(*t));
    t->loop = loop;
    t->oc = oc;
    t->uconf.providers = (sl_provider_conf_t *) &oc->collector;
    t->uconf.nproviders = 1;
    t->up = sl_upstream_create(loop, &t->uconf);
    if (t->up == NULL) {
        sl_log(NULL, SL_LOG_ERR, 0, "trace export to %s is off in this worker", oc->endpoint);
        free(t);
        return NULL;
    }
    t->pool = sl_pool_create(1024);
    if (t->pool == NULL) {
        abort(); /* fatal: worker rule */
    }
    sl_otlp_attrs_init(&t->resource, oc->protobuf, 1); /* Resource.attributes */
    sl_otlp_str(t->pool, &t->resource, "service.name", oc->service_name);
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        sl_otlp_str(t->pool, &t->resource, "host.name", sl_pstrdup(t->pool, host));
    }
    sl_otlp_int(t->pool, &t->resource, "process.pid", (int64_t) getpid());
    for (size_t i = 0; i < oc->nresource; i++) {
        sl_otlp_str(t->pool, &t->resource, sl_otlp_key(t->pool, oc->resource[i].name),
                    oc->resource[i].value);
    }
    t->head = sl_otlp_export_head_max(&t->resource);
    /* every queued batch is full but the last, plus the one in flight */
    t->nring = (oc->queue_size + oc->batch_size - 1) / oc->batch_size + 1;
    t->ring = sl_xcalloc(t->nring, sizeof(*t->ring));
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, tel_on_timer, oc->flush_interval, oc->flush_interval);
    uv_unref((uv_handle_t *) &t->timer); /* the exporter alone never keeps a worker alive */
    tel_current = t;
    return t;
}


void
sl_telemetry_add(const sl_otlp_span_t *s)
{
    sl_telemetry_t *t = tel_current;
    tel_batch_t *b;

    if (t == NULL || t->stopping) {
        return;
    }
    if (t->nq >= t->oc->queue_size) {
        sl_metric_add(SL_METRIC_SPANS_QUEUE_FULL, 1);
        return;
    }
    b = tel_batch(t);
    if (!t->oc->protobuf && b->n > 0) {
        sl_buf_append(&b->b, ",", 1);
    }
    sl_otlp_encode_span(&b->b, s);
    b->n++;
    t->nq++;
    if (b->n >= t->oc->batch_size && t->uc == NULL && uv_now(t->loop) >= t->rest_until) {
        tel_export(t);
    }
}


/* The batch the next span goes into: the last queued one, or a new one when it is full. */
static tel_batch_t *
tel_batch(sl_telemetry_t *t)
{
    tel_batch_t *b;
    size_t want;

    if (t->nb > 0) {
        b = &t->ring[(t->first + t->nb - 1) % t->nring];
        if (b->n < t->oc->batch_size) {
            return b;
        }
    }
    b = &t->ring[(t->first + t->nb) % t->nring];
    t->nb++;
    want = t->peak > t->head ? t->peak : t->head + 1;
    if (b->b.cap < want) {
        sl_buf_free(&b->b); /* what it holds is spent: a fresh buffer, not a copy */
    }
    b->n = 0;
    b->b.len = 0;
    sl_buf_reserve(&b->b, want); /* the largest export's size: grown once, not doubled */
    b->b.len = t->head;
    return b;
}


static void
tel_on_timer(uv_timer_t *h)
{
    sl_telemetry_t *t = h->data;

    if (t->nq > 0 && t->uc == NULL && uv_now(t->loop) >= t->rest_until) {
        tel_export(t);
    }
}


/*
 * Sends the oldest queued batch (batch_size spans, or fewer when the timer
 * or the end calls): its head is written into the room in front of its
 * spans, its tail after them; nothing is copied.
 */
static void
tel_export(sl_telemetry_t *t)
{
    const sl_otlp_conf_t *oc = t->oc;
    tel_batch_t *b = &t->ring[t->first];
    size_t n = sl_otlp_export_head(b->b.p + t->head, &t->resource, b->b.len - t->head);
    sl_http_header_t h[1];
    sl_upstream_req_t req;
    int rc;

    sl_otlp_export_tail(&b->b, oc->protobuf);
    if (b->b.len > t->peak) {
        t->peak = b->b.len;
    }
    t->first = (t->first + 1) % t->nring;
    t->nb--;
    t->nq -= b->n;
    t->flying = b;
    t->nbody = b->n;
    t->status = 0;

    memset(&req, 0, sizeof(req));
    h[0] = (sl_http_header_t){ sl_str_lit("content-type"),
                               { sl_otlp_content_type(oc->protobuf),
                                 strlen(sl_otlp_content_type(oc->protobuf)) } };
    req.method = "POST";
    req.path = oc->path;
    req.headers = h;
    req.nheaders = 1;
    req.body = b->b.p + t->head - n;
    req.body_len = b->b.len - (t->head - n);
    rc = sl_upstream_send(t->up, &oc->collector, &req, &tel_cbs, t, NULL, &t->uc);
    if (rc < 0) {
        t->uc = NULL;
        tel_on_done(NULL, rc, t);
    }
}


static void
tel_on_headers(sl_upstream_call_t *uc, int status, const sl_http_header_t *headers, size_t nheaders,
               void *data)
{
    sl_telemetry_t *t = data;

    (void) uc;
    (void) headers;
    (void) nheaders;
    t->status = status;
}


static void
tel_on_body(sl_upstream_call_t *uc, const char *p, size_t len, void *data)
{
    (void) uc;
    (void) p;
    (void) len;
    (void) data; /* the collector's answer (partial success details) is not read */
}


static void
tel_on_done(sl_upstream_call_t *uc, int rc, void *data)
{
    sl_telemetry_t *t = data;
    uint64_t now = uv_now(t->loop);

    (void) uc;
    t->uc = NULL;
    t->flying = NULL; /* its buffer is reused */
    if (rc == 0 && t->status >= 200 && t->status <= 299) {
        sl_metric_add(SL_METRIC_SPANS_EXPORTED, t->nbody);
        t->backoff = 0;
        t->rest_until = 0;
    } else {
        sl_metric_add(SL_METRIC_SPANS_FAILED, t->nbody);
        t->backoff = t->backoff == 0 ? t->oc->flush_interval : t->backoff * 2;
        if (t->backoff > TEL_BACKOFF_MAX) {
            t->backoff = TEL_BACKOFF_MAX;
        }
        t->rest_until = now + t->backoff;
        t->failed++;
        if (t->logged == 0 || now - t->logged >= TEL_LOG_EVERY) {
            if (rc == 0) {
                sl_log(NULL, SL_LOG_WARN, 0,
                       "trace export to %s failed: HTTP %d (%llu failed exports, spans dropped)",
                       t->oc->endpoint, t->status, (unsigned long long) t->failed);
            } else {
                sl_log(NULL, SL_LOG_WARN, 0,
                       "trace export to %s failed: %s (%llu failed exports, spans dropped)",
                       t->oc->endpoint, sl_strerror(rc), (unsigned long long) t->failed);
            }
            t->logged = now;
            t->failed = 0;
        }
    }
    t->nbody = 0;
    if (t->stopping) {
        uv_timer_stop(&t->timer);
        sl_upstream_destroy(t->up);
        t->up = NULL;
        return;
    }
    if (t->nb > 0 && t->ring[t->first].n >= t->oc->batch_size && now >= t->rest_until) {
        tel_export(t);
    }
}


bool
sl_telemetry_full(size_t n)
{
    const sl_telemetry_t *t = tel_current;

    return t == NULL || t->stopping || t->nq + n > t->oc->queue_size;
}


void
sl_telemetry_drop(size_t n)
{
    if (tel_current != NULL && !tel_current->stopping) {
        sl_metric_add(SL_METRIC_SPANS_QUEUE_FULL, n);
    }
}


void
sl_telemetry_shutdown(sl_telemetry_t *t)
{
    if (t == NULL || t->stopping) {
        return;
    }
    if (t->uc == NULL && t->nq > 0) {
        tel_export(t); /* the last batch; what does not fit in it is lost */
    }
    t->stopping = true;
    uv_timer_stop(&t->timer);
    if (t->uc == NULL) {
        sl_upstream_destroy(t->up);
        t->up = NULL;
        return;
    }
    /* the export in flight keeps the loop; this bounds how long */
    uv_timer_start(&t->timer, tel_on_last_deadline,
                   t->oc->timeout < TEL_LAST_MAX ? t->oc->timeout : TEL_LAST_MAX, 0);
}


/* The last export took too long: drop it, so the worker can exit. */
static void
tel_on_last_deadline(uv_timer_t *h)
{
    sl_telemetry_t *t = h->data;

    if (t->up != NULL) {
        sl_metric_add(SL_METRIC_SPANS_FAILED, t->nbody);
        sl_upstream_destroy(t->up); /* cancels the call: no callback follows */
        t->up = NULL;
        t->uc = NULL;
    }
}


void
sl_telemetry_destroy(sl_telemetry_t *t)
{
    if (t == NULL || t->destroyed) {
        return;
    }
    t->destroyed = true;
    t->stopping = true;
    if (tel_current == t) {
        tel_current = NULL;
    }
    if (t->up != NULL) {
        sl_upstream_destroy(t->up); /* cancels the export in flight: no callback follows */
        t->up = NULL;
        t->uc = NULL;
    }
    if (uv_is_closing((uv_handle_t *) &t->timer)) {
        /* a walk closed it already: its callback is not ours, free now */
        tel_free(t);
        return;
    }
    uv_close((uv_handle_t *) &t->timer, tel_on_close);
}


static void
tel_on_close(uv_handle_t *h)
{
    tel_free(h->data);
}


static void
tel_free(sl_telemetry_t *t)
{
    for (size_t i = 0; i < t->nring; i++) {
        sl_buf_free(&t->ring[i].b);
    }
    free(t->ring);
    sl_pool_destroy(t->pool);
    free(t);
}
