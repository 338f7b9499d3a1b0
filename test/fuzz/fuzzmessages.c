/*
 * The Messages frontend fuzz targets' stream checks (see fuzzmessages.h).
 */
#define _GNU_SOURCE /* memmem */

#include "fuzzmessages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static void messages_check(int ok, const char *name, const char *what);
static long long messages_index(json_t *v);


static void
messages_check(int ok, const char *name, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s: check failed: %s\n", name, what);
        abort();
    }
}


/* The "index" of an event, -1 when it has none that fits. */
static long long
messages_index(json_t *v)
{
    json_t *i = json_object_get(v, "index");

    return json_is_integer(i) && json_integer_value(i) >= 0 ? (long long) json_integer_value(i)
                                                            : -1;
}


void
sl_fuzz_messages_check(const char *name, const sl_buf_t *out, bool failed)
{
    const char *s = out->p;
    const char *end = out->p + out->len;
    const char *last = NULL;
    long long next = 0; /* index of the next block */
    long long open = -1;
    bool first = true;
    bool delta = false;

    while (s < end) {
        const char *sep = memmem(s, (size_t) (end - s), "\n\n", 2);
        const char *nl;
        const char *type;
        size_t name_len;
        json_t *v;

        messages_check(last == NULL, name, "events after an error or message_stop");
        messages_check(sep != NULL, name, "event without a blank line");
        messages_check(sep - s > 7 && memcmp(s, "event: ", 7) == 0, name, "event without a name");
        nl = memchr(s, '\n', (size_t) (sep - s));
        messages_check(nl != NULL, name, "event without data");
        name_len = (size_t) (nl - s - 7);
        messages_check(sep - nl > 6 && memcmp(nl + 1, "data: ", 6) == 0, name,
                       "event without data");
        messages_check(memchr(nl + 1, '\n', (size_t) (sep - nl - 1)) == NULL, name,
                       "data spans lines");
        v = json_loadb(nl + 7, (size_t) (sep - nl - 7), JSON_REJECT_DUPLICATES, NULL);
        messages_check(json_is_object(v), name, "event data is not a JSON object");
        type = json_string_value(json_object_get(v, "type"));
        messages_check(type != NULL && strlen(type) == name_len
                           && memcmp(type, s + 7, name_len) == 0,
                       name, "event name and data type differ");
        if (first) {
            messages_check(strcmp(type, "message_start") == 0, name,
                           "first event is not message_start");
            messages_check(json_is_string(json_object_get(json_object_get(v, "message"), "id")),
                           name, "message_start without an id");
            first = false;
        } else if (strcmp(type, "message_start") == 0) {
            messages_check(0, name, "a second message_start");
        } else if (strcmp(type, "content_block_start") == 0) {
            messages_check(open < 0 && !delta, name, "a block starts while one is open");
            messages_check(messages_index(v) == next, name, "a block starts at the wrong index");
            messages_check(json_is_object(json_object_get(v, "content_block")), name,
                           "a block without body");
            open = next++;
        } else if (strcmp(type, "content_block_delta") == 0) {
            messages_check(open >= 0 && messages_index(v) == open, name,
                           "a delta outside the open block");
        } else if (strcmp(type, "content_block_stop") == 0) {
            messages_check(open >= 0 && messages_index(v) == open, name,
                           "a stop outside the open block");
            open = -1;
        } else if (strcmp(type, "message_delta") == 0) {
            messages_check(open < 0 && !delta, name, "message_delta with a block open, or twice");
            messages_check(
                json_is_string(json_object_get(json_object_get(v, "delta"), "stop_reason")), name,
                "message_delta without a stop_reason");
            delta = true;
        } else if (strcmp(type, "message_stop") == 0) {
            messages_check(delta, name, "message_stop before message_delta");
            last = "message_stop";
        } else if (strcmp(type, "error") == 0) {
            messages_check(json_is_string(json_object_get(json_object_get(v, "error"), "type")),
                           name, "an error without a type");
            last = "error";
        } else {
            messages_check(strcmp(type, "ping") == 0, name, "an unknown event");
        }
        json_decref(v);
        s = sep + 2;
    }
    messages_check(last != NULL && strcmp(last, failed ? "error" : "message_stop") == 0, name,
                   "the stream does not end as it should");
}
