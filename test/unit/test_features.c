/*
 * Unit tests for core/gateway/features.c: the prompt size estimate, tools and
 * images detection, max_tokens and stream, and the complexity scorer on a
 * table of prompts with every part checked, deterministic across runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base/errno.h"
#include "core/gateway/features.h"
#include "core/base/json.h"
#include "core/base/pool.h"

typedef struct score_case {
    const char *name;
    const char *json;
    unsigned size, turns, code, tools, reasoning, score;
    sl_complexity_e cls;
} score_case_t;

static sl_features_t *features(sl_pool_t *pool, const char *json);


static sl_features_t *
features(sl_pool_t *pool, const char *json)
{
    sl_json_t *doc = sl_json_create(pool);
    sl_features_t *f = sl_palloc(pool, sizeof(*f));

    assert_int_equal(sl_json_parse(doc, json, strlen(json), NULL), 0);
    sl_features_init(f);
    assert_int_equal(sl_features_from_chat(f, doc, SL_JSON_ROOT, pool), 0);
    return f;
}


static void
test_sizes(void **state)
{
    sl_pool_t *pool = sl_pool_create(0);
    sl_features_t *f;
    sl_json_t *doc;

    (void) state;
    /* 12 + 4 bytes of text: 16 bytes, 4 tokens */
    f = features(pool,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief. "
                 "ok\"},{\"role\":\"user\",\"content\":\"hi!!\"}]}");
    assert_int_equal(f->prompt_bytes, 16);
    assert_int_equal(f->prompt_tokens, 4);
    assert_false(f->has_tools);
    assert_false(f->has_images);
    assert_false(f->stream);
    assert_int_equal(f->max_tokens, 0);

    /* escapes count decoded; parts, tool-call arguments and an image; 17 bytes round up */
    f = features(pool, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"a\\u00e9\\n\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                       "\"data:x\"}}]},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"
                       "\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                       "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"content\":\"sunny day\"}],"
                       "\"stream\":true,\"max_tokens\":300}");
    /* "a" + e-acute (2) + "\n" = 4, "{}" = 2, "sunny day" = 9, image 1024 */
    assert_int_equal(f->prompt_bytes, 4 + 2 + 9 + SL_FEATURES_IMAGE_BYTES);
    assert_int_equal(f->prompt_tokens, (4 + 2 + 9 + SL_FEATURES_IMAGE_BYTES + 3) / 4);
    assert_true(f->has_images);
    assert_false(f->has_tools);
    assert_true(f->stream);
    assert_int_equal(f->max_tokens, 300);

    /* tools count with their definitions; max_completion_tokens wins */
    f = features(pool, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                       "\"function\",\"function\":{\"name\":\"f\"}}],\"max_tokens\":5,"
                       "\"max_completion_tokens\":7}");
    assert_true(f->has_tools);
    assert_int_equal(f->prompt_bytes, 1
                                          + strlen("[{\"type\":\"function\",\"function\":{\"name\":"
                                                   "\"f\"}}]"));
    assert_int_equal(f->max_tokens, 7);
    f = features(pool, "{\"messages\":[],\"tools\":[]}");
    assert_false(f->has_tools);
    assert_int_equal(f->prompt_bytes, 2);
    f = features(pool, "{\"messages\":[],\"functions\":[{\"name\":\"f\"}]}");
    assert_true(f->has_tools);

    /* Anthropic shape: system blocks, image and tool_use blocks */
    f = features(pool,
                 "{\"system\":[{\"type\":\"text\",\"text\":\"sys\"}],\"messages\":[{\"role\":"
                 "\"user\",\"content\":[{\"type\":\"image\",\"source\":{}},{\"type\":\"text\","
                 "\"text\":\"look\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":"
                 "\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{\"a\":1}}]}],"
                 "\"max_tokens\":64}");
    assert_true(f->has_images);
    assert_int_equal(f->prompt_bytes, 3 + 4 + 7 + SL_FEATURES_IMAGE_BYTES);
    assert_int_equal(f->max_tokens, 64);

    /* not an object: an empty prompt, SL_EPARSE */
    doc = sl_json_create(pool);
    assert_int_equal(sl_json_parse(doc, "[1]", 3, NULL), 0);
    sl_features_init(f);
    assert_int_equal(sl_features_from_chat(f, doc, SL_JSON_ROOT, pool), SL_EPARSE);
    assert_int_equal(f->prompt_tokens, 0);
    assert_int_equal(sl_features_complexity(f)->score, 0);
    assert_int_equal(sl_features_class(f), SL_COMPLEXITY_SIMPLE);
    sl_pool_destroy(pool);
}


static void
test_complexity_table(void **state)
{
    static char long_prompt[16000 + 128];
    static char chat[1024];
    const score_case_t cases[] = {
        { "greeting", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}", 0, 0, 0, 0,
          0, 0, SL_COMPLEXITY_SIMPLE },
        { "weak cue", "{\"messages\":[{\"role\":\"user\",\"content\":\"Why is the sky blue?\"}]}",
          0, 0, 0, 0, 5, 5, SL_COMPLEXITY_SIMPLE },
        { "strong cues",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"Prove that sqrt(2) is irrational, "
          "step by step.\"}]}",
          0, 0, 0, 0, 30, 30, SL_COMPLEXITY_COMPLEX },
        { "cues are whole words, any case",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"ANALYZE this; the whyte house; "
          "reasonable; proven\"}]}",
          0, 0, 0, 0, 15, 15, SL_COMPLEXITY_SIMPLE },
        { "cues capped",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"prove, derive, analyze and explain "
          "why\"}]}",
          0, 0, 0, 0, 35, 35, SL_COMPLEXITY_COMPLEX },
        { "system prompt cues do not count",
          "{\"messages\":[{\"role\":\"system\",\"content\":\"Prove, derive, analyze step by "
          "step.\"},{\"role\":\"user\",\"content\":\"ok\"}]}",
          0, 0, 0, 0, 0, 0, SL_COMPLEXITY_SIMPLE },
        { "one fenced block with markers",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"Fix this:\\n```\\ndef f(x):\\n    "
          "return x\\n```\"}]}",
          0, 0, 14, 0, 0, 14, SL_COMPLEXITY_SIMPLE },
        { "code and a debug request",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"Debug:\\n```c\\n#include <x.h>\\n"
          "int main() { return 0; }\\n```\\nand\\n```js\\nconst f = () => 1;\\n```\"}]}",
          0, 0, 23, 0, 5, 28, SL_COMPLEXITY_SIMPLE },
        { "tools offered and used",
          "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\","
          "\"tool_calls\":[{\"id\":\"1\",\"type\":\"function\",\"function\":{\"name\":\"w\","
          "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"sun\"}]"
          ","
          "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"w\"}}]}",
          0, 3, 0, 15, 0, 18, SL_COMPLEXITY_SIMPLE },
        { "long prompt", long_prompt, 25, 0, 0, 0, 0, 25, SL_COMPLEXITY_SIMPLE },
        { "long chat with a cue", chat, 0, 15, 0, 0, 15, 30, SL_COMPLEXITY_COMPLEX },
    };
    sl_pool_t *pool = sl_pool_create(0);
    sl_complexity_t c, again;
    sl_json_t *doc = sl_json_create(pool);
    size_t n;

    (void) state;
    /* 16000 bytes of user text: 4000 tokens, the size part's maximum */
    n = (size_t) snprintf(long_prompt, sizeof(long_prompt),
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(long_prompt + n, 'a', 16000);
    n += 16000;
    snprintf(long_prompt + n, sizeof(long_prompt) - n, "\"}]}");
    n = (size_t) snprintf(chat, sizeof(chat), "{\"messages\":[");
    for (int i = 0; i < 7; i++) {
        n += (size_t) snprintf(chat + n, sizeof(chat) - n, "{\"role\":\"%s\",\"content\":\"%s\"},",
                               i % 2 == 0 ? "user" : "assistant", i == 6 ? "now derive it" : "ok");
    }
    snprintf(chat + n - 1, sizeof(chat) - n + 1, "]}");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const score_case_t *t = &cases[i];
        sl_features_t f;

        assert_int_equal(sl_json_parse(doc, t->json, strlen(t->json), NULL), 0);
        assert_int_equal(sl_complexity_score(doc, SL_JSON_ROOT, pool, &c), 0);
        if (c.size != t->size || c.turns != t->turns || c.code != t->code || c.tools != t->tools
            || c.reasoning != t->reasoning || c.score != t->score) {
            fail_msg("%s: size %u turns %u code %u tools %u reasoning %u score %u; want %u %u "
                     "%u %u %u %u",
                     t->name, c.size, c.turns, c.code, c.tools, c.reasoning, c.score, t->size,
                     t->turns, t->code, t->tools, t->reasoning, t->score);
        }
        /* deterministic, and the same through the lazy features path */
        assert_int_equal(sl_complexity_score(doc, SL_JSON_ROOT, pool, &again), 0);
        assert_memory_equal(&c, &again, sizeof(c));
        sl_features_init(&f);
        assert_int_equal(sl_features_from_chat(&f, doc, SL_JSON_ROOT, pool), 0);
        assert_int_equal(sl_features_complexity(&f)->score, t->score);
        if (sl_features_class(&f) != t->cls) {
            fail_msg("%s: class %d, want %d", t->name, sl_features_class(&f), t->cls);
        }
    }
    assert_int_equal(sl_complexity_score(doc, -1, pool, &c), SL_EPARSE);
    assert_int_equal(c.score, 0);
    sl_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_complexity_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
