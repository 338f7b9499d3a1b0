/*
 * Timing of the JSON reader (core/base/json.c) and the jansson bridge on hostile
 * request bodies, for scripts/bench (BENCH_ONLY=json). Every shape but
 * deep and badend (refused on purpose) is a valid chat request
 * ({"model":…,"max_tokens":…,"messages":[…]}) that carries a worst case in
 * an extra field, in its message text or in its top-level keys, padded to
 * the size asked for:
 *
 *   bench_json gen SHAPE BYTES            writes the body to stdout
 *   bench_json run SHAPE BYTES [STAGE]    times the stages, one line each:
 *                                         "SHAPE BYTES STAGE MS RESULT"
 *   bench_json shapes                     lists the shapes
 *
 * Stages: parse (sl_json_parse), lookup (the proxy's top-level lookups),
 * walk (every value through sl_json_first/next), dom (sl_json_dom: jansson
 * with duplicate keys refused) and messages (the anthropic adapter's
 * client_request, the /v1/messages translation). MS is the process's CPU
 * time (CLOCK_PROCESS_CPUTIME_ID: the same as the wall clock on an idle
 * machine, and not inflated on a busy one), the best of BENCH_JSON_REPS
 * runs (3 unless set). RESULT is "ok" or what was refused.
 * No timing here is a test: scripts/bench prints the numbers.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/buf.h"
#include "core/base/errno.h"
#include "core/base/json.h"
#include "core/base/pool.h"
#include "core/gateway/frontend.h"

#define BENCH_HEAD "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"messages\":"
#define BENCH_MSGS "[{\"role\":\"user\",\"content\":\"hi\"}]"
#define BENCH_NEST 2000 /* under both the reader's and jansson's 2048 */

typedef void (*bench_gen_cb)(sl_buf_t *b, size_t size);

typedef struct bench_shape {
    const char *name;
    const char *what;
    bench_gen_cb gen;
} bench_shape_t;

static void bench_gen_arrays(sl_buf_t *b, size_t size);
static void bench_gen_objects(sl_buf_t *b, size_t size);
static void bench_gen_nest(sl_buf_t *b, size_t size);
static void bench_gen_deep(sl_buf_t *b, size_t size);
static void bench_gen_keys(sl_buf_t *b, size_t size);
static void bench_gen_esckeys(sl_buf_t *b, size_t size);
static void bench_gen_string(sl_buf_t *b, size_t size);
static void bench_gen_strings(sl_buf_t *b, size_t size);
static void bench_gen_numbers(sl_buf_t *b, size_t size);
static void bench_gen_badend(sl_buf_t *b, size_t size);
static void bench_extra_open(sl_buf_t *b);
static void bench_pad(sl_buf_t *b, size_t size, size_t tail);
static const bench_shape_t *bench_shape(const char *name);
static double bench_cpu_ms(void);
static const char *bench_stage(const char *stage, const char *p, size_t len);
static void bench_walk(const sl_json_t *doc, int v, size_t *count);
static int bench_usage(void);

static const bench_shape_t bench_shapes[] = {
    { "arrays", "x: [[],[],…] (the issue's body)", bench_gen_arrays },
    { "objects", "x: [{},{},…]", bench_gen_objects },
    { "nest", "x: [[[…2000 deep…]],[[…]],…]", bench_gen_nest },
    { "deep", "x: [[[[… as deep as the size allows (refused)", bench_gen_deep },
    { "keys", "top level: \"k0000001\":0,… many keys", bench_gen_keys },
    { "esckeys", "top level: \"\\u006b0000001\":0,… escaped keys", bench_gen_esckeys },
    { "string", "content: one string of escapes", bench_gen_string },
    { "strings", "x: [\"a\\n\\u00e9\",…] many short escaped strings", bench_gen_strings },
    { "numbers", "x: [-1.5e+10,123456789,0.25,…]", bench_gen_numbers },
    { "badend", "objects, its last byte wrong (refused: the 400 path)", bench_gen_badend },
};

#define BENCH_NSHAPES (sizeof(bench_shapes) / sizeof(bench_shapes[0]))

static const char *const bench_keys[] = {
    "model", "messages", "stream", "stream_options", "input", "max_completion_tokens", "max_tokens",
};


int
main(int argc, char **argv)
{
    const bench_shape_t *shape;
    const char *env = getenv("BENCH_JSON_REPS");
    static const char *const stages[] = { "parse", "lookup", "walk", "dom", "messages" };
    sl_buf_t b = SL_BUF_INIT;
    int reps = env != NULL && atoi(env) > 0 ? atoi(env) : 3;
    size_t size;

    if (argc == 2 && strcmp(argv[1], "shapes") == 0) {
        for (size_t i = 0; i < BENCH_NSHAPES; i++) {
            printf("%-8s %s\n", bench_shapes[i].name, bench_shapes[i].what);
        }
        return 0;
    }
    if (argc < 4 || (shape = bench_shape(argv[2])) == NULL) {
        return bench_usage();
    }
    size = strtoul(argv[3], NULL, 10);
    shape->gen(&b, size);
    if (strcmp(argv[1], "gen") == 0) {
        fwrite(b.p, 1, b.len, stdout);
        sl_buf_free(&b);
        return 0;
    }
    if (strcmp(argv[1], "run") != 0) {
        return bench_usage();
    }
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        double best = -1;
        const char *result = "";

        if (argc > 4 && strcmp(argv[4], stages[i]) != 0) {
            continue;
        }
        for (int r = 0; r < reps; r++) {
            double t0 = bench_cpu_ms();
            double t;

            result = bench_stage(stages[i], b.p, b.len);
            t = bench_cpu_ms() - t0;
            if (best < 0 || t < best) {
                best = t;
            }
        }
        printf("%s %zu %s %.2f %s\n", shape->name, b.len, stages[i], best, result);
        fflush(stdout);
    }
    sl_buf_free(&b);
    return 0;
}


static int
bench_usage(void)
{
    fprintf(stderr, "usage: bench_json gen SHAPE BYTES | run SHAPE BYTES [STAGE] | shapes\n");
    return 2;
}


static const bench_shape_t *
bench_shape(const char *name)
{
    for (size_t i = 0; i < BENCH_NSHAPES; i++) {
        if (strcmp(bench_shapes[i].name, name) == 0) {
            return &bench_shapes[i];
        }
    }
    return NULL;
}


static double
bench_cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}


/*
 * One stage on a fresh pool. The reader stages parse first (not counted
 * apart: lookup and walk include the parse they need).
 */
static const char *
bench_stage(const char *stage, const char *p, size_t len)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_json_t *doc = sl_json_create(pool);
    sl_json_error_t err;
    const char *result = "ok";

    if (strcmp(stage, "dom") == 0) {
        result = sl_json_dom(pool, (sl_str_t){ p, len }) != NULL ? "ok" : "refused";
    } else if (strcmp(stage, "messages") == 0) {
        const sl_frontend_t *fe = sl_frontend_get(SL_API_MESSAGES);
        sl_call_t call = { .pool = pool, .client_api = SL_API_MESSAGES, .model = -1 };
        sl_error_t e;

        memset(&e, 0, sizeof(e));
        call.stream_options = -1;
        if (fe->decode(&call, (sl_str_t){ p, len }, &e) < 0) {
            result = e.message != NULL ? e.message : "refused";
        }
    } else if (sl_json_parse(doc, p, len, &err) < 0) {
        result = err.text;
    } else if (strcmp(stage, "lookup") == 0) {
        int v[sizeof(bench_keys) / sizeof(bench_keys[0])];

        if (sl_json_lookup(doc, SL_JSON_ROOT, bench_keys, sizeof(v) / sizeof(v[0]), v) < 0) {
            result = "duplicate key";
        } else if (v[0] < 0 || v[1] < 0) {
            result = "model or messages not found";
        }
    } else if (strcmp(stage, "walk") == 0) {
        size_t count = 0;

        bench_walk(doc, SL_JSON_ROOT, &count);
        result = count > 0 ? "ok" : "nothing walked";
    }
    sl_pool_destroy(pool);
    return result;
}


/* Visits every value under v (recursion depth is bounded by the reader's limit). */
static void
bench_walk(const sl_json_t *doc, int v, size_t *count)
{
    bool obj = sl_json_type(doc, v) == SL_JSON_OBJECT;

    (*count)++;
    for (int c = sl_json_first(doc, v); c >= 0; c = sl_json_next(doc, v, c)) {
        bench_walk(doc, obj ? sl_json_key_value(doc, c) : c, count);
    }
}


/* The head of the body and an extra field "x" whose value follows. */
static void
bench_extra_open(sl_buf_t *b)
{
    sl_buf_puts(b, BENCH_HEAD BENCH_MSGS ",\"x\":");
}


/* Spaces up to size - tail bytes (the closing bytes still to come). */
static void
bench_pad(sl_buf_t *b, size_t size, size_t tail)
{
    while (b->len + tail < size) {
        sl_buf_append(b, " ", 1);
    }
}


static void
bench_gen_arrays(sl_buf_t *b, size_t size)
{
    bench_extra_open(b);
    sl_buf_puts(b, "[[]");
    while (b->len + 3 + 2 <= size) {
        sl_buf_puts(b, ",[]");
    }
    sl_buf_puts(b, "]}");
}


static void
bench_gen_objects(sl_buf_t *b, size_t size)
{
    bench_extra_open(b);
    sl_buf_puts(b, "[{}");
    while (b->len + 3 + 2 <= size) {
        sl_buf_puts(b, ",{}");
    }
    sl_buf_puts(b, "]}");
}


static void
bench_gen_nest(sl_buf_t *b, size_t size)
{
    size_t group = BENCH_NEST * 2 + 2;

    bench_extra_open(b);
    sl_buf_puts(b, "[0");
    while (b->len + group + 2 <= size) {
        sl_buf_append(b, ",", 1);
        for (int i = 0; i < BENCH_NEST; i++) {
            sl_buf_append(b, "[", 1);
        }
        sl_buf_append(b, "0", 1);
        for (int i = 0; i < BENCH_NEST; i++) {
            sl_buf_append(b, "]", 1);
        }
    }
    bench_pad(b, size, 2);
    sl_buf_puts(b, "]}");
}


static void
bench_gen_deep(sl_buf_t *b, size_t size)
{
    size_t n;

    bench_extra_open(b);
    n = size > b->len + 1 ? (size - b->len - 1) / 2 : 1;
    for (size_t i = 0; i < n; i++) {
        sl_buf_append(b, "[", 1);
    }
    for (size_t i = 0; i < n; i++) {
        sl_buf_append(b, "]", 1);
    }
    sl_buf_puts(b, "}");
}


static void
bench_gen_keys(sl_buf_t *b, size_t size)
{
    unsigned k = 0;

    sl_buf_puts(b, BENCH_HEAD BENCH_MSGS);
    while (b->len + 14 + 1 <= size) {
        sl_buf_printf(b, ",\"k%08u\":0", k++);
    }
    bench_pad(b, size, 1);
    sl_buf_puts(b, "}");
}


/* Keys longer than any the proxy asks for once decoded, each with an escape to decode. */
static void
bench_gen_esckeys(sl_buf_t *b, size_t size)
{
    unsigned k = 0;

    sl_buf_puts(b, BENCH_HEAD BENCH_MSGS);
    while (b->len + 19 + 1 <= size) {
        sl_buf_printf(b, ",\"\\u006b%08u\":0", k++);
    }
    bench_pad(b, size, 1);
    sl_buf_puts(b, "}");
}


static void
bench_gen_string(sl_buf_t *b, size_t size)
{
    static const char piece[] = "\\\"\\\\\\n\\u00e9\\ud83d\\ude00 abc\\t";

    sl_buf_puts(b, BENCH_HEAD "[{\"role\":\"user\",\"content\":\"");
    while (b->len + sizeof(piece) - 1 + 4 <= size) {
        sl_buf_puts(b, piece);
    }
    while (b->len + 4 < size) {
        sl_buf_append(b, "a", 1);
    }
    sl_buf_puts(b, "\"}]}");
}


static void
bench_gen_strings(sl_buf_t *b, size_t size)
{
    bench_extra_open(b);
    sl_buf_puts(b, "[\"\"");
    while (b->len + 13 + 2 <= size) {
        sl_buf_puts(b, ",\"a\\n\\u00e9\"");
    }
    bench_pad(b, size, 2);
    sl_buf_puts(b, "]}");
}


static void
bench_gen_numbers(sl_buf_t *b, size_t size)
{
    static const char *const nums[] = { "-1.5e+10", "123456789", "0.25", "0", "-7" };
    unsigned k = 0;

    bench_extra_open(b);
    sl_buf_puts(b, "[1");
    while (b->len + 10 + 2 <= size) {
        sl_buf_printf(b, ",%s", nums[k++ % 5]);
    }
    bench_pad(b, size, 2);
    sl_buf_puts(b, "]}");
}


static void
bench_gen_badend(sl_buf_t *b, size_t size)
{
    bench_gen_objects(b, size);
    b->p[b->len - 1] = ']';
}
