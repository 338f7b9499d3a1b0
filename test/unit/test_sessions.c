/*
 * Unit tests for storage/sessions.c: one-time login links and sessions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/base/errno.h"
#include "storage/db.h"
#include "storage/sessions.h"
#include "testutil.h"

#define NOW 1796428800000LL

typedef struct fixture {
    char dir[128];
    char log[256];
    sl_db_t *db;
} fixture_t;

static int
setup(void **state)
{
    static fixture_t f;

    memset(&f, 0, sizeof(f));
    sl_test_tmpdir("/tmp/sl-sessions-XXXXXX", f.dir, sizeof(f.dir), f.log, sizeof(f.log));
    assert_rc(sl_db_open(f.dir, 8u << 20, 0, &f.db), 0);
    *state = &f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t *f = *state;

    sl_db_close(f->db);
    sl_test_rmtree(f->dir);
    return 0;
}


/* A link logs in once; the session it opens is found by its token, with its CSRF token. */
static void
test_link_once(void **state)
{
    fixture_t *f = *state;
    char link[SL_SESSION_TOKEN_LEN + 1], tok[SL_SESSION_TOKEN_LEN + 1],
        again[SL_SESSION_TOKEN_LEN + 1];
    sl_session_t s, got;

    assert_rc(sl_sessions_link_create(f->db, NOW, 60000, link), 0);
    assert_int_equal(strlen(link), SL_SESSION_TOKEN_LEN);
    assert_rc(sl_sessions_redeem(f->db, link, strlen(link), NOW + 1000, 3600000, tok, &s), 0);
    assert_string_not_equal(tok, link);
    assert_int_equal(strlen(s.csrf), SL_SESSION_TOKEN_LEN);
    assert_int_equal(s.expires, NOW + 1000 + 3600000);
    /* used: a second exchange fails */
    assert_rc(sl_sessions_redeem(f->db, link, strlen(link), NOW + 2000, 3600000, again, &s),
              SL_EAUTH);
    assert_rc(sl_sessions_get(f->db, tok, strlen(tok), NOW + 5000, &got), 0);
    assert_string_equal(got.csrf, s.csrf);
    /* expired, and logged out */
    assert_rc(sl_sessions_get(f->db, tok, strlen(tok), NOW + 1000 + 3600000, &got), SL_EAUTH);
    assert_rc(sl_sessions_delete(f->db, tok, strlen(tok)), 0);
    assert_rc(sl_sessions_get(f->db, tok, strlen(tok), NOW + 5000, &got), SL_EAUTH);
}


/* An expired link is refused (and gone); wrong or malformed tokens never match. */
static void
test_link_expired(void **state)
{
    fixture_t *f = *state;
    char link[SL_SESSION_TOKEN_LEN + 1], tok[SL_SESSION_TOKEN_LEN + 1];
    sl_session_t s;

    assert_rc(sl_sessions_link_create(f->db, NOW, 60000, link), 0);
    assert_rc(sl_sessions_redeem(f->db, link, strlen(link), NOW + 60000, 3600000, tok, &s),
              SL_EAUTH);
    assert_rc(sl_sessions_redeem(f->db, link, strlen(link), NOW + 1, 3600000, tok, &s), SL_EAUTH);
    assert_rc(sl_sessions_redeem(f->db, "short", 5, NOW, 3600000, tok, &s), SL_EAUTH);
    assert_rc(sl_sessions_get(f->db, link, strlen(link), NOW, &s), SL_EAUTH);
    /* a link is not a session, nor a session a link */
    assert_rc(sl_sessions_link_create(f->db, NOW, 60000, link), 0);
    assert_rc(sl_sessions_get(f->db, link, strlen(link), NOW, &s), SL_EAUTH);
    assert_rc(sl_sessions_create(f->db, NOW, 60000, tok, &s), 0);
    assert_rc(sl_sessions_redeem(f->db, tok, strlen(tok), NOW, 60000, link, &s), SL_EAUTH);
}


/* Creating a session removes the expired records. */
static void
test_prune(void **state)
{
    fixture_t *f = *state;
    char tok[SL_SESSION_TOKEN_LEN + 1];
    sl_session_t s;
    sl_txn_t *t;
    size_t n;

    for (int i = 0; i < 5; i++) {
        assert_rc(sl_sessions_create(f->db, NOW, 1000, tok, &s), 0);
    }
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_db_count(t, SL_DBI_SESSIONS, &n), 0);
    sl_db_abort(t);
    assert_true(n >= 5);
    assert_rc(sl_sessions_create(f->db, NOW + 2000, 1000, tok, &s), 0);
    assert_rc(sl_db_read(f->db, &t), 0);
    assert_rc(sl_db_count(t, SL_DBI_SESSIONS, &n), 0);
    sl_db_abort(t);
    assert_int_equal(n, 1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_link_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
