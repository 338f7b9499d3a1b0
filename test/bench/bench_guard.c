/*
 * Timing of the guardrails' built-in detectors (core/gateway/guard_detect.c
 * sl__guard_detect) on one thread, for work on the scan: a machine's load
 * blurs scripts/bench's throughput ratios by a few percent, while the
 * scan's own time over many passes of one text is steady to about 1%.
 *
 *   bench_guard TEXT [PASSES]
 *
 * TEXT is a file (its bytes are the prompt's text, as decoded from the
 * request's JSON) or "dense": scripts/bench's dense prompt, 20 KiB of
 * support tickets with an e-mail address, a phone number, an IP address
 * and a 16-digit number failing Luhn every ~400 bytes. Every detector is
 * on, with the best instruction set of this CPU. Prints one line:
 * "BYTES HITS SCAN_NS SCAN_NS_PER_KIB MEMO_NS REQUEST_NS": the scan
 * (sl__guard_detect); what the detectors' memo adds to it for a text it
 * has not seen (sl__guard_detect_whole, each pass's text another in one
 * byte); and what the policy of scripts/bench's "detectors" target (every
 * detector redacting, with restore) adds to a chat request whose one
 * message is the text (sl_guard_request on the parsed request, each pass
 * a new pool, parse and text, less the same passes without the policy):
 * the scan, reading past the JSON escapes (a twin or a decode), the
 * placeholders and the splice.
 * Each is the median of nine timings of PASSES passes (default 2000),
 * thread CPU time. No timing here is a test.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "core/base/buf.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/conf/conf.h"
#include "core/gateway/guard.h"
#include "core/gateway/guard_internal.h"

#define BENCH_DENSE_KIB 20
#define BENCH_TIMINGS   9

/* the policy of scripts/bench's "detectors" target */
#define BENCH_CONF                                                                                 \
    "server: {listen: 127.0.0.1:1}\n"                                                              \
    "providers: {demo: {kind: echo}}\n"                                                            \
    "models: {gpt-4o-mini: {targets: [demo/echo]}}\n"                                              \
    "guardrails:\n"                                                                                \
    "  policies:\n"                                                                                \
    "    pii: [{detect: [email, phone, card, iban, ip, secret], action: redact, restore: true}]\n" \
    "  apply: pii\n"

static int bench_read(const char *path, sl_buf_t *out);
static void bench_dense(sl_buf_t *out);
static double bench_cpu_ns(void);
static int bench_cmp(const void *a, const void *b);
static double bench_time(sl_buf_t *text, unsigned mask, unsigned long passes, bool whole,
                         sl__guard_hits_t *hits);
static void bench_body(const sl_buf_t *text, sl_buf_t *out);
static sl_conf_t *bench_conf(void);
static double bench_request(const sl_buf_t *body, const sl_conf_t *conf, unsigned long passes);


/* The file at path, whole. */
static int
bench_read(const char *path, sl_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t n;

    if (f == NULL) {
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        sl_buf_append(out, chunk, n);
    }
    fclose(f);
    return 0;
}


/* scripts/bench's dense prompt (guard_body there; the same paragraph and counters). */
static void
bench_dense(sl_buf_t *out)
{
    char para[1024];

    for (unsigned i = 0; out->len < BENCH_DENSE_KIB * 1024; i++) {
        int n = snprintf(para, sizeof(para),
                         "Ticket %u: the customer wrote again about the delayed delivery of the "
                         "spare parts and asks whether the invoice of last month can be split over "
                         "two payments; she can be reached at jane.roe%u@example.com or on +44 20 "
                         "7946 0%03u during office hours, the order number is 4111111111111112 and "
                         "the request came from 10.20.%u.40 according to the support portal, "
                         "version 2.4.1, logged at 12:30:45 on 2026-03-14. ",
                         i, i, i % 1000, i % 250);

        sl_buf_append(out, para, (size_t) n);
    }
    out->len = BENCH_DENSE_KIB * 1024;
}


static double
bench_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}


static int
bench_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


/*
 * The median nanoseconds of one pass: sl__guard_detect, or (whole)
 * sl__guard_detect_whole with text's byte 8 another digit each pass.
 */
static double
bench_time(sl_buf_t *text, unsigned mask, unsigned long passes, bool whole, sl__guard_hits_t *hits)
{
    double t[BENCH_TIMINGS];

    for (unsigned k = 0; k < BENCH_TIMINGS; k++) {
        double t0 = bench_cpu_ns();

        for (unsigned long i = 0; i < passes; i++) {
            hits->n = 0;
            hits->partial = SIZE_MAX;
            if (whole) {
                text->p[8] = (char) ('0' + (k * passes + i) % 10);
                sl__guard_detect_whole(text->p, text->len, mask, hits);
            } else {
                sl__guard_detect(text->p, text->len, 0, mask, hits);
            }
        }
        t[k] = (bench_cpu_ns() - t0) / (double) passes;
    }
    qsort(t, BENCH_TIMINGS, sizeof(t[0]), bench_cmp);
    return t[BENCH_TIMINGS / 2];
}


/* A chat request whose one message is text (escaped as JSON writers do). */
static void
bench_body(const sl_buf_t *text, sl_buf_t *out)
{
    sl_buf_puts(out, "{\"model\":\"gpt-4o-mini\",\"max_tokens\":1000,\"messages\":[{\"role\":"
                     "\"user\",\"content\":\"");
    for (size_t i = 0; i < text->len; i++) {
        unsigned char c = (unsigned char) text->p[i];
        char esc[8];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            sl_buf_append(out, esc, 2);
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            sl_buf_append(out, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            sl_buf_append(out, esc, 6);
        } else {
            sl_buf_append(out, &text->p[i], 1);
        }
    }
    sl_buf_puts(out, "\"}]}");
    sl_buf_append(out, "", 1); /* a NUL after it, not counted */
    out->len--;
}


/* The configuration of BENCH_CONF (NULL when it does not load). */
static sl_conf_t *
bench_conf(void)
{
    char path[] = "/tmp/sl-bench-guard-XXXXXX", err[512];
    int fd = mkstemp(path);
    sl_conf_t *conf = NULL;

    if (fd < 0) {
        return NULL;
    }
    if (write(fd, BENCH_CONF, strlen(BENCH_CONF)) != (ssize_t) strlen(BENCH_CONF)
        || sl_conf_load(path, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_guard: %s\n", conf == NULL ? err : "cannot write the config");
        conf = NULL;
    }
    close(fd);
    unlink(path);
    return conf;
}


/*
 * The median nanoseconds of one request: a pool, a copy of body (its
 * message's byte 8 another digit each pass), the parse and (conf not NULL)
 * the request phase of conf's global policy.
 */
static double
bench_request(const sl_buf_t *body, const sl_conf_t *conf, unsigned long passes)
{
    const char *content = strstr(body->p, "\"content\":\"") + strlen("\"content\":\"");
    size_t at = (size_t) (content - body->p) + 8;
    sl_guard_who_t who = { .model = "gpt-4o-mini", .body_len = body->len };
    double t[BENCH_TIMINGS];

    for (unsigned k = 0; k < BENCH_TIMINGS; k++) {
        double t0 = bench_cpu_ns();

        for (unsigned long i = 0; i < passes; i++) {
            sl_pool_t *pool = sl_pool_create(0);
            sl_call_t *call = sl_pcalloc(pool, sizeof(*call));
            char *b = sl_palloc(pool, body->len + 1);
            sl_json_t *doc = sl_json_create(pool);
            sl_guard_req_t *g;
            sl_error_t e;

            memcpy(b, body->p, body->len + 1);
            b[at] = (char) ('0' + (k * passes + i) % 10);
            if (sl_json_parse(doc, b, body->len, NULL) != 0) {
                fprintf(stderr, "bench_guard: the request does not parse\n");
                exit(1);
            }
            call->pool = pool;
            call->api = SL_API_CHAT;
            call->raw = (sl_str_t){ b, body->len };
            call->doc = doc;
            call->model = sl_json_get(doc, SL_JSON_ROOT, "model");
            call->native = call->raw;
            call->native_doc = doc;
            call->max_tokens = 1000;
            if (conf != NULL && sl_guard_request(conf->guard, &who, call, &g, &e) != 0) {
                fprintf(stderr, "bench_guard: the policy refused the request: %s\n", e.message);
                exit(1);
            }
            sl_pool_destroy(pool);
        }
        t[k] = (bench_cpu_ns() - t0) / (double) passes;
    }
    qsort(t, BENCH_TIMINGS, sizeof(t[0]), bench_cmp);
    return t[BENCH_TIMINGS / 2];
}


int
main(int argc, char **argv)
{
    sl_buf_t text = SL_BUF_INIT;
    sl__guard_hits_t hits = { 0 };
    unsigned mask = 0;
    unsigned long passes = 2000;
    double scan, whole, bare, guarded;
    sl_buf_t body = SL_BUF_INIT;
    sl_conf_t *conf;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_guard TEXT|dense [PASSES]\n");
        return 2;
    }
    if (argc == 3) {
        passes = strtoul(argv[2], NULL, 10);
    }
    if (strcmp(argv[1], "dense") == 0) {
        bench_dense(&text);
    } else if (bench_read(argv[1], &text) != 0) {
        fprintf(stderr, "bench_guard: cannot read %s\n", argv[1]);
        return 1;
    }
    if (passes == 0) {
        fprintf(stderr, "bench_guard: nothing to time\n");
        return 2;
    }
    for (unsigned d = 0; d < SL_GUARD_DET_COUNT; d++) {
        mask |= 1u << d;
    }
    if (text.len < 16) {
        fprintf(stderr, "bench_guard: the text is shorter than 16 bytes\n");
        return 2;
    }
    /*
     * as in a worker under load: its heap's top is seldom free, so freed
     * blocks stay (here every pass frees all it took, and glibc would give
     * the top back and take it again with each pass: brk and page faults)
     */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    conf = bench_conf();
    if (conf == NULL) {
        return 1;
    }
    bench_body(&text, &body);
    scan = bench_time(&text, mask, passes, false, &hits);
    whole = bench_time(&text, mask, passes, true, &hits);
    bare = bench_request(&body, NULL, passes);
    guarded = bench_request(&body, conf, passes);
    printf("%zu %zu %.0f %.1f %.0f %.0f\n", text.len, hits.n, scan,
           scan * 1024.0 / (double) text.len, whole - scan, guarded - bare);
    sl_conf_destroy(conf);
    sl_buf_free(&body);
    sl__guard_hits_free(&hits);
    sl_buf_free(&text);
    return 0;
}
