/*
 * Helpers shared by the file-based unit tests (see testutil.h).
 */
#include "unit/testutil.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/base/errno.h"
#include "core/base/log.h"


void
sl_test_rmtree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[512];

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            sl_test_rmtree(sub);
        }
    }
    closedir(d);
    rmdir(path);
}


char *
sl_test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t) n;
    return buf;
}


void
sl_test_assert_rc(int rc, int want, const char *expr, const char *file, int line)
{
    if (rc != want) {
        print_error("%s = %d (%s), want %d (%s)\n", expr, rc, sl_strerror(rc), want,
                    sl_strerror(want));
        _fail(file, line);
    }
}


void
sl_test_tmpdir(const char *template, char *dir, size_t dirlen, char *log, size_t loglen)
{
    snprintf(dir, dirlen, "%s", template);
    assert_non_null(mkdtemp(dir));
    snprintf(log, loglen, "%s/error.log", dir);
    assert_int_equal(sl_log_open(log, SL_LOG_INFO), 0);
}
