/*
 * Unit tests for core/gateway/intent.c: the shared table's capacity (a full table
 * says so once and gives NULL), reuse of freed entries lowest first,
 * updates, entries found by owner pid after that owner died (as the master
 * finds a killed worker's), and strings cut at a UTF-8 boundary.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/gateway/intent.h"

static void test_table(void **state);
static void test_dead_owner(void **state);
static void test_str(void **state);
static void test_reuse_cleared(void **state);
static void count_cb(void *arg, sl_intent_t *in);
static void close_cb(void *arg, sl_intent_t *in);


static void
count_cb(void *arg, sl_intent_t *in)
{
    (void) in;
    (*(size_t *) arg)++;
}


static void
close_cb(void *arg, sl_intent_t *in)
{
    char *ids = arg;

    strcat(ids, in->request_id);
    strcat(ids, ";");
    sl_intent_close(in);
}


static void
test_table(void **state)
{
    sl_intent_t *in[5];
    size_t n = 0;

    (void) state;
    assert_null(sl_intent_open());
    assert_int_equal(sl_intent_init(4), 0);
    assert_int_equal(sl_intent_capacity(), 4);
    for (int i = 0; i < 4; i++) {
        in[i] = sl_intent_open();
        assert_non_null(in[i]);
        assert_int_equal(in[i]->state, SL_INTENT_OPEN);
        assert_int_equal(in[i]->flags, 0);
    }
    in[4] = sl_intent_open();
    assert_null(in[4]);
    assert_int_equal(sl_intent_scan(getpid(), count_cb, &n), 4);
    assert_int_equal(n, 4);

    /* a freed entry comes back, zeroed */
    in[1]->relayed = 99;
    sl_intent_close(in[1]);
    in[4] = sl_intent_open();
    assert_ptr_equal(in[4], in[1]);
    assert_int_equal(in[4]->relayed, 0);
    sl_intent_update(in[4], 1234);
    assert_int_equal(in[4]->flags & SL_INTENT_SENT, SL_INTENT_SENT);
    assert_int_equal(in[4]->relayed, 1234);
    sl_intent_update(NULL, 1);
    sl_intent_close(NULL);
    for (int i = 0; i < 4; i++) {
        sl_intent_close(in[i == 1 ? 4 : i]);
    }
    n = 0;
    assert_int_equal(sl_intent_scan(getpid(), count_cb, &n), 0);
}


/* A child opens entries and dies without closing them: they are its, found and freed after. */
static void
test_dead_owner(void **state)
{
    char ids[256] = "";
    size_t n = 0;
    int status;
    pid_t pid;

    (void) state;
    assert_int_equal(sl_intent_init(4), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 2; i++) {
            sl_intent_t *in = sl_intent_open();

            if (in == NULL) {
                _exit(1);
            }
            sl_intent_str(in->request_id, sizeof(in->request_id), i == 0 ? "req-a" : "req-b");
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    /* not this process's */
    assert_int_equal(sl_intent_scan(getpid(), count_cb, &n), 0);
    assert_int_equal(sl_intent_scan(pid, close_cb, ids), 2);
    assert_string_equal(ids, "req-a;req-b;");
    assert_int_equal(sl_intent_scan(pid, count_cb, &n), 0);
}


static void
test_str(void **state)
{
    char f[6];

    (void) state;
    sl_intent_str(f, sizeof(f), "abc");
    assert_string_equal(f, "abc");
    sl_intent_str(f, sizeof(f), "abcdefgh");
    assert_string_equal(f, "abcde");
    /* "abcd" + the first byte of a two-byte character would be cut in half: it goes */
    sl_intent_str(f, sizeof(f), "abcd\xc3\xa9");
    assert_string_equal(f, "abcd");
    sl_intent_str(f, sizeof(f), NULL);
    assert_string_equal(f, "");

    /* sl_intent_strn: the bytes given, no NUL needed, cut as above */
    sl_intent_strn(f, sizeof(f), "abXYZ", 2);
    assert_string_equal(f, "ab");
    sl_intent_strn(f, sizeof(f), "abcd\xc3\xa9zz", 6);
    assert_string_equal(f, "abcd");
    sl_intent_strn(f, sizeof(f), NULL, 0);
    assert_string_equal(f, "");
}


/*
 * An entry taken again after a request that filled every byte of it reads
 * as new: every number 0, every string empty (a dead worker's entry must
 * not show its previous request's row).
 */
static void
test_reuse_cleared(void **state)
{
    static const uint8_t zero[offsetof(sl_intent_t, request_id)];
    sl_intent_t *in, *again;

    (void) state;
    assert_int_equal(sl_intent_init(4), 0);
    in = sl_intent_open();
    assert_non_null(in);
    memset(in, 0xff, sizeof(*in));
    sl_intent_close(in);
    again = sl_intent_open();
    assert_ptr_equal(again, in);
    assert_int_equal(again->state, SL_INTENT_OPEN);
    again->state = 0; /* the one field open sets */
    assert_memory_equal(again, zero, sizeof(zero));
    assert_string_equal(again->request_id, "");
    assert_string_equal(again->key_id, "");
    assert_string_equal(again->key_name, "");
    assert_string_equal(again->team, "");
    assert_string_equal(again->endpoint, "");
    assert_string_equal(again->provider, "");
    assert_string_equal(again->model, "");
    assert_string_equal(again->target_model, "");
    sl_intent_close(again);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_dead_owner),
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_reuse_cleared),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
