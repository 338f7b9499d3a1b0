/*
 * Helpers shared by the unit tests that work on files: temporary LMDB
 * directories, reading a file back whole. Test code only (cmocka asserts).
 */
#ifndef SL_TEST_UNIT_TESTUTIL_H
#define SL_TEST_UNIT_TESTUTIL_H

#include <stddef.h>

/*
 * assert_rc(rc, want): fails the test printing both codes and their
 * sl_strerror() text (STYLE.md §10: a storage assert prints sl_strerror).
 */
#define assert_rc(rc, want) sl_test_assert_rc((rc), (want), #rc, __FILE__, __LINE__)

void sl_test_assert_rc(int rc, int want, const char *expr, const char *file, int line);

/*
 * Makes a fresh directory from template (e.g. "/tmp/sl-keys-XXXXXX", at most
 * dirlen - 1 bytes) and points the error log at DIR/error.log (written into
 * log, loglen bytes) at info level. Asserts on failure.
 */
void sl_test_tmpdir(const char *template, char *dir, size_t dirlen, char *log, size_t loglen);

/* Removes path and everything below it; a missing path is fine. */
void sl_test_rmtree(const char *path);

/* Reads the whole file (asserts it can); NUL-terminated, *len bytes. Free with free(). */
char *sl_test_slurp(const char *path, size_t *len);

#endif
