/*
 * Unit tests for core/gateway/fe_responses.c, the Responses frontend's
 * request side: the chat body written with the token writer carries the
 * tokens the reader makes of the same bytes (call->doc is never parsed
 * again) over every item, tool and option the translation knows; what
 * jansson refuses is a 400 (repeated keys, invalid strings, numbers out of
 * range, anywhere in the body); function calls join the assistant message
 * before them, reasoning points at its message, a tool name is mapped once;
 * a previous response's items (another reader, several arrays) go before
 * the input, named in errors as previous_response_id[N]; namespaced and
 * unsafe tool names, reasoning items carried or dropped, hosted tools only
 * for a native target, and names mapped back in answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/base/errno.h"
#include "core/base/json_internal.h"
#include "core/base/pool.h"
#include "core/gateway/frontend.h"
#include "core/gateway/frontend_internal.h"
#include "unit/testutil.h"

static int setup(void **state);
static int teardown(void **state);
static int decode(sl_pool_t *pool, const char *body, sl_call_t *call, sl_error_t *err);
static json_t *chat_of(sl_pool_t *pool, const sl_call_t *call);
static void test_tokens(void **state);
static void test_refused(void **state);
static void test_join(void **state);
static void test_history(void **state);
static void test_translate_tools(void **state);
static void test_translate_reasoning(void **state);
static void test_translate_native_only(void **state);
static void test_answer_names(void **state);


static int
setup(void **state)
{
    *state = sl_pool_create(0);
    return *state == NULL ? -1 : 0;
}


static int
teardown(void **state)
{
    sl_pool_destroy(*state);
    return 0;
}


static int
decode(sl_pool_t *pool, const char *body, sl_call_t *call, sl_error_t *err)
{
    memset(call, 0, sizeof(*call));
    memset(err, 0, sizeof(*err));
    call->pool = pool;
    call->client_api = SL_API_RESPONSES;
    call->model = -1;
    call->stream_options = -1;
    call->request_id = "req-test";
    return sl_frontend_get(SL_API_RESPONSES)->decode(call, (sl_str_t){ body, strlen(body) }, err);
}


/*
 * The chat body of a decoded call, as jansson reads it (duplicates refused),
 * after checking that call->doc holds what the reader makes of call->raw.
 */
static json_t *
chat_of(sl_pool_t *pool, const sl_call_t *call)
{
    sl_json_t *again = sl_json_create(pool);
    json_t *chat;

    assert_int_equal(sl_json_parse(again, call->raw.p, call->raw.len, NULL), 0);
    if (!sl__json_same(call->doc, again)) {
        fail_msg("the writer's tokens differ from the reader's for %.*s", (int) call->raw.len,
                 call->raw.p);
    }
    chat = json_loadb(call->raw.p, call->raw.len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(chat);
    return chat;
}


/* Every kind of item, tool and option: the tokens are right and jansson takes the body. */
static void
test_tokens(void **state)
{
    static const char *const bodies[] = {
        "{\"model\":\"m\",\"input\":\"hi\"}",
        "{ \"model\" : \"m\\u00e9\" , \"instructions\":\"be \\\"brief\\\"\",\"input\":\"x\","
        "\"stream\":true,\"store\":false,\"parallel_tool_calls\":false,\"max_output_tokens\":9,"
        "\"temperature\":0.5,\"top_p\":1,\"user\":\"u\",\"metadata\":{\"a\":\"b\"},"
        "\"reasoning\":{\"effort\":\"high\"},\"text\":{\"verbosity\":\"low\",\"format\":{\"type\":"
        "\"json_schema\",\"name\":\"n\",\"strict\":true,\"description\":\"d\",\"schema\":{"
        "\"type\":\"object\", \"properties\" : {}}}},\"previous_response_id\":null}",
        "{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_object\"}},"
        "\"tool_choice\":\"required\",\"tools\":[{\"type\":\"function\",\"name\":\"f\","
        "\"description\":\"d\",\"parameters\":{\"type\":\"object\"},\"strict\":false},"
        "{\"type\":\"namespace\",\"name\":\"mcp__s__\",\"tools\":[{\"type\":\"function\","
        "\"name\":\"a.b\"},{\"type\":\"function\",\"name\":\"c\"}]},{\"type\":\"web_search\"}]}",
        "{\"model\":\"m\",\"input\":[{\"role\":\"developer\",\"content\":\"dev\"},{\"type\":"
        "\"message\",\"role\":\"system\",\"content\":[{\"type\":\"input_text\",\"text\":\"s1\"},"
        "{\"type\":\"text\",\"text\":\"s2\"}]},{\"role\":\"user\",\"content\":[{\"type\":"
        "\"input_text\",\"text\":\"q\"},{\"type\":\"input_image\",\"image_url\":\"data:x\","
        "\"detail\":\"low\"},{\"type\":\"input_image\",\"file_id\":\"f\"},{\"type\":"
        "\"input_file\",\"file_data\":\"ZGF0YQ==\",\"filename\":\"a.pdf\"},{\"type\":"
        "\"input_audio\",\"input_audio\":{\"data\":\"AA\",\"format\":\"wav\"}}]},"
        "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"t\\n\"}],"
        "\"encrypted_content\":\"sl1.a.S\\/IG\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
        "\"output_text\",\"text\":\"a1\"},{\"type\":\"refusal\",\"refusal\":\"no\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"g h\",\"namespace\":\"n.\","
        "\"arguments\":\"{\\\"k\\\":1}\"},{\"type\":\"function_call\",\"call_id\":\"c2\","
        "\"name\":\"f\"},{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":[{"
        "\"type\":\"input_text\",\"text\":\"r1\"},{\"type\":\"input_image\"}]},{\"type\":"
        "\"function_call_output\",\"call_id\":\"c2\",\"output\":\"r2\"},{\"type\":"
        "\"additional_tools\",\"tools\":[{\"type\":\"function\",\"name\":\"late\"}]},{\"type\":"
        "\"web_search_call\",\"id\":\"w\"},{\"role\":\"user\",\"content\":\"again\"}],"
        "\"tool_choice\":{\"type\":\"function\",\"name\":\"h\",\"namespace\":\"n.\"}}",
    };
    sl_pool_t *pool = *state;
    sl_call_t call;
    sl_error_t err;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *chat;

        if (decode(pool, bodies[i], &call, &err) != 0) {
            fail_msg("body %zu refused: %s", i, err.message);
        }
        chat = chat_of(pool, &call);
        assert_true(json_is_string(json_object_get(chat, "sluice_response_id")));
        assert_true(json_array_size(json_object_get(chat, "messages")) > 0);
        json_decref(chat);
    }

    /* the options, mapped */
    assert_int_equal(decode(pool, bodies[1], &call, &err), 0);
    {
        json_t *chat = chat_of(pool, &call);
        json_t *rf = json_object_get(chat, "response_format");

        assert_string_equal(json_string_value(json_object_get(chat, "model")), "m\xc3\xa9");
        assert_true(call.stream);
        assert_int_equal(call.max_tokens, 9);
        assert_int_equal(json_integer_value(json_object_get(chat, "max_completion_tokens")), 9);
        assert_true(json_is_false(json_object_get(chat, "parallel_tool_calls")));
        assert_string_equal(json_string_value(json_object_get(chat, "reasoning_effort")), "high");
        assert_string_equal(json_string_value(json_object_get(chat, "verbosity")), "low");
        assert_string_equal(json_string_value(json_object_get(rf, "type")), "json_schema");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(rf, "json_schema"), "name")), "n");
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(chat, "messages"), 0), "content")),
                            "be \"brief\"");
        assert_null(json_object_get(chat, "sluice_previous_response_id"));
        json_decref(chat);
    }

    /* the items: 7 messages; the image by file_id and the hosted call only natively */
    assert_int_equal(decode(pool, bodies[3], &call, &err), 0);
    {
        json_t *chat = chat_of(pool, &call);
        json_t *msgs = json_object_get(chat, "messages");
        json_t *user = json_object_get(json_array_get(msgs, 2), "content");

        assert_int_equal(json_array_size(msgs), 7);
        assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                            "s1s2");
        assert_int_equal(json_array_size(user), 4);
        assert_string_equal(json_string_value(json_object_get(json_array_get(user, 2), "type")),
                            "file");
        assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 4), "content")),
                            "r1");
        assert_int_equal(json_array_size(json_object_get(chat, "tools")), 1);
        assert_non_null(call.untranslatable);
        assert_non_null(strstr(call.untranslatable, "input[2].content[2]"));
        json_decref(chat);
    }

    /* a model the x-sluice-model header could not carry, as the chat frontend refuses it */
    assert_int_equal(decode(pool, "{\"model\":\"m\\u0007\",\"input\":\"x\"}", &call, &err),
                     SL_EPARSE);
    assert_string_equal(err.param, "model");
    assert_non_null(strstr(err.message, "control characters"));
}


/* What jansson refuses anywhere in the body is a 400, as when the body was a DOM. */
static void
test_refused(void **state)
{
    static const char *const bodies[] = {
        "{\"model\":\"m\",\"input\":\"x\",\"model\":\"n\"}",
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"input\":\"x\",\"metadata\":{\"k\":\"\\ud800\"}}",
        "{\"model\":\"m\",\"input\":\"x\",\"unknown\":[\"\\u0000\"]}",
        "{\"model\":\"m\",\"input\":\"x\",\"temperature\":1e999}",
        "{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":99999999999999999999}",
        "{\"model\":\"m\",\"input\":\"bad \xff utf-8\"}",
    };
    sl_pool_t *pool = *state;
    sl_call_t call;
    sl_error_t err;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        if (decode(pool, bodies[i], &call, &err) != SL_EPARSE || err.status != 400
            || strstr(err.message, "could not parse the JSON body") == NULL) {
            fail_msg("body %zu: not refused as unparsable (%s)", i,
                     err.message != NULL ? err.message : "taken");
        }
    }
}


/*
 * Function calls join the assistant message before them (reasoning between
 * them goes with it); an unsafe name is mapped once however often it comes.
 */
static void
test_join(void **state)
{
    static const char body[] =
        "{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"name\":\"a.b\"}],\"input\":["
        "{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"let me\"},"
        "{\"type\":\"reasoning\",\"encrypted_content\":\"sl1.g.G1\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"a.b\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"a.b\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"1\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c3\",\"name\":\"x\"}]}";
    sl_pool_t *pool = *state;
    sl_call_t call;
    sl_error_t err;
    json_t *chat, *msgs, *calls, *names, *r;

    assert_int_equal(decode(pool, body, &call, &err), 0);
    chat = chat_of(pool, &call);
    msgs = json_object_get(chat, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                        "let me");
    calls = json_object_get(json_array_get(msgs, 1), "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(calls, 1), "function"), "arguments")),
                        "{}");
    assert_true(json_is_null(json_object_get(json_array_get(msgs, 3), "content")));
    assert_int_equal(json_array_size(json_object_get(json_array_get(msgs, 3), "tool_calls")), 1);
    names = json_object_get(chat, "sluice_tool_names");
    assert_int_equal(json_object_size(names), 1);
    r = json_object_get(chat, "sluice_reasoning");
    assert_int_equal(json_array_size(r), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "message")), 1);
    json_decref(chat);
}


/* A previous response's items, from other readers, go first; errors name them. */
static void
test_history(void **state)
{
    static const char rec1[] = "{\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":"
                               "[{\"type\":\"input_text\",\"text\":\"first\"}]}],\"output\":["
                               "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{"
                               "\"type\":\"output_text\",\"text\":\"answer\"}]}]}";
    static const char rec2[] = "{\"input\":[{\"type\":\"nope\"}]}";
    sl_pool_t *pool = *state;
    sl_json_t *d1 = sl_json_create(pool);
    sl_json_t *d2 = sl_json_create(pool);
    sl_rs_items_t hist[3];
    sl_call_t call;
    sl_error_t err;
    json_t *chat, *msgs;

    assert_int_equal(sl_json_parse(d1, rec1, strlen(rec1), NULL), 0);
    assert_int_equal(sl_json_parse(d2, rec2, strlen(rec2), NULL), 0);
    hist[0] = (sl_rs_items_t){ d1, sl_json_get(d1, SL_JSON_ROOT, "input") };
    hist[1] = (sl_rs_items_t){ d1, sl_json_get(d1, SL_JSON_ROOT, "output") };
    hist[2] = (sl_rs_items_t){ d2, sl_json_get(d2, SL_JSON_ROOT, "input") };
    assert_int_equal(decode(pool,
                            "{\"model\":\"m\",\"instructions\":\"i\",\"input\":\"second\","
                            "\"previous_response_id\":\"resp_1\"}",
                            &call, &err),
                     0);
    assert_int_equal(sl__frontend_responses_translate(&call, hist, 2, &err), 0);
    chat = chat_of(pool, &call);
    msgs = json_object_get(chat, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                        "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "content")),
                        "answer");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 3), "content")),
                        "second");
    assert_string_equal(json_string_value(json_object_get(chat, "sluice_previous_response_id")),
                        "resp_1");
    json_decref(chat);

    /* the third array's item is the conversation's third */
    assert_int_equal(sl__frontend_responses_translate(&call, hist, 3, &err), SL_EPARSE);
    assert_string_equal(err.param, "previous_response_id[2]");
}


/* Function tools, namespaces flattened, unsafe names replaced and mapped. */
static void
test_translate_tools(void **state)
{
    sl_pool_t *pool = *state;
    static const char body[] =
        "{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"function\",\"name\":\"b\","
        "\"namespace\":\"mcp__s__\"},\"tools\":[{\"type\":\"function\",\"name\":\"plain_name\","
        "\"parameters\":{\"type\":\"object\"},\"strict\":true},{\"type\":\"function\",\"name\":"
        "\"dotted.name\"},{\"type\":\"namespace\",\"name\":\"mcp__s__\",\"tools\":[{\"type\":"
        "\"function\",\"name\":\"b\"}]}]}";
    sl_call_t call;
    sl_error_t err;
    json_t *chat, *tools, *names;
    const char *safe;

    assert_int_equal(decode(pool, body, &call, &err), 0);
    assert_null(call.untranslatable);
    chat = json_loadb(call.raw.p, call.raw.len, 0, NULL);
    tools = json_object_get(chat, "tools");
    assert_int_equal(json_array_size(tools), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(tools, 0), "function"), "name")),
                        "plain_name");
    assert_true(json_is_true(
        json_object_get(json_object_get(json_array_get(tools, 0), "function"), "strict")));
    safe = json_string_value(
        json_object_get(json_object_get(json_array_get(tools, 1), "function"), "name"));
    assert_string_equal(safe, "dotted_name_4c738d92");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(tools, 2), "function"), "name")),
                        "mcp__s__b");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(chat, "tool_choice"), "function"), "name")),
        "mcp__s__b");
    names = json_object_get(chat, "sluice_tool_names");
    assert_string_equal(json_string_value(json_object_get(json_object_get(names, safe), "name")),
                        "dotted.name");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(names, "mcp__s__b"), "namespace")),
        "mcp__s__");
    assert_null(json_object_get(names, "plain_name"));
    json_decref(chat);
}


/*
 * Reasoning items: a provider's signed one goes with the assistant
 * message after it; OpenAI's own and unsigned ones are dropped, silently.
 */
static void
test_translate_reasoning(void **state)
{
    sl_pool_t *pool = *state;
    static const char body[] =
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},"
        "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"t\"}],"
        "\"encrypted_content\":\"sl1.a.SIG\"},{\"type\":\"reasoning\",\"summary\":[],"
        "\"encrypted_content\":\"gAAAA-openai\"},{\"type\":\"reasoning\",\"summary\":[]},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"r\"},"
        "{\"type\":\"reasoning\",\"encrypted_content\":\"sl1.g.GSIG\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"a\"}]},"
        "{\"type\":\"reasoning\",\"encrypted_content\":\"sl1.r.DATA\"},"
        "{\"role\":\"user\",\"content\":\"next\"}]}";
    sl_call_t call;
    sl_error_t err;
    json_t *chat, *r;

    assert_int_equal(decode(pool, body, &call, &err), 0);
    chat = json_loadb(call.raw.p, call.raw.len, 0, NULL);
    r = json_object_get(chat, "sluice_reasoning");
    assert_int_equal(json_array_size(r), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "kind")),
                        "anthropic");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "signature")),
                        "SIG");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "text")), "t");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "message")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 1), "kind")), "gemini");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 1), "message")), 3);
    assert_int_equal(json_array_size(json_object_get(chat, "messages")), 5);
    assert_null(strstr(call.raw.p, "gAAAA"));
    assert_null(strstr(call.raw.p, "DATA")); /* no assistant turn followed it */
    json_decref(chat);
}


/* Hosted tools and items: a request for a native target only, with what it is named. */
static void
test_translate_native_only(void **state)
{
    sl_pool_t *pool = *state;
    static const char *const bodies[] = {
        "{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}",
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"x\"},{\"type\":"
        "\"web_search_call\",\"id\":\"ws\"}]}",
        "{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"namespace\",\"name\":\"n\","
        "\"tools\":[{\"type\":\"custom\",\"name\":\"c\"}]}]}",
        "{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"file_search\"}}",
    };
    static const char *const names[] = { "web_search", "web_search_call", "custom", "file_search" };
    sl_call_t call;
    sl_error_t err;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        assert_int_equal(decode(pool, bodies[i], &call, &err), 0);
        if (call.untranslatable == NULL || strstr(call.untranslatable, names[i]) == NULL) {
            fail_msg("case %zu: untranslatable \"%s\"", i,
                     call.untranslatable != NULL ? call.untranslatable : "(null)");
        }
    }
    assert_int_equal(decode(pool, "{\"model\":\"m\",\"input\":[{\"type\":\"nope\"}]}", &call, &err),
                     SL_EPARSE);
    assert_string_equal(err.param, "input[0]");
}


/* An answer's tool call comes back under the client's own name and namespace. */
static void
test_answer_names(void **state)
{
    sl_pool_t *pool = *state;
    static const char body[] =
        "{\"model\":\"m\",\"input\":\"x\",\"metadata\":{\"a\":\"b\"},\"tools\":[{\"type\":"
        "\"namespace\",\"name\":\"mcp__s__\",\"tools\":[{\"type\":\"function\",\"name\":\"g.h\"}]}]"
        "}";
    const sl_frontend_t *fe = sl_frontend_get(SL_API_RESPONSES);
    sl_provider_conf_t prov = { .name = "p", .kind = "anthropic" };
    sl_target_t target = { &prov, "claude", 1 };
    sl_tool_call_t tc = { sl_str_lit("\"toolu_1\""), { NULL, 0 }, sl_str_lit("\"{\\\"a\\\":1}\"") };
    sl_part_t parts[2];
    sl_choice_t ch;
    sl_answer_t a;
    sl_call_t call;
    sl_error_t err;
    sl_buf_t out = SL_BUF_INIT;
    json_t *names, *r, *items;
    const char *safe;
    void *it;

    assert_int_equal(decode(pool, body, &call, &err), 0);
    call.target = &target;
    r = json_loadb(call.raw.p, call.raw.len, 0, NULL);
    names = json_object_get(r, "sluice_tool_names");
    it = json_object_iter(names);
    safe = sl_psprintf(pool, "\"%s\"", json_object_iter_key(it));
    json_decref(r);
    tc.name = (sl_str_t){ safe, strlen(safe) };
    memset(&ch, 0, sizeof(ch));
    ch.tools = &tc;
    ch.ntools = 1;
    ch.finish = SL_FINISH_TOOL_CALLS;
    parts[0] = (sl_part_t){ SL_PART_REASONING, sl_str_lit("\"hmm\""), sl_str_lit("\"S1\""), 0 };
    parts[1] = (sl_part_t){ SL_PART_TOOL, { NULL, 0 }, { NULL, 0 }, 0 };
    ch.parts = parts;
    ch.nparts = 2;
    memset(&a, 0, sizeof(a));
    a.choices = &ch;
    a.nchoices = 1;
    a.usage.known = true;
    a.usage.prompt_tokens = 3;
    a.usage.completion_tokens = 4;
    assert_int_equal(fe->encode_answer(&call, &a, &out), 0);
    r = json_loadb(out.p, out.len, 0, NULL);
    assert_non_null(r);
    items = json_object_get(r, "output");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(items, 0), "encrypted_content")),
        "sl1.a.S1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "name")),
                        "g.h");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "namespace")),
                        "mcp__s__");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "call_id")),
                        "toolu_1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "metadata"), "a")),
                        "b");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "usage"), "total_tokens")), 7);
    json_decref(r);
    sl_buf_free(&out);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translate_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translate_reasoning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translate_native_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_names, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
