/*
 * Unit tests for core/process/process.c: the core-dump policy as this process sees
 * it (RLIMIT_CORE and PR_GET_DUMPABLE), and sd_notify's datagram to a path
 * and to an abstract $NOTIFY_SOCKET, with the bad values refused.
 */
#define _GNU_SOURCE /* SOCK_CLOEXEC */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/process/process.h"

static int dgram_bind(const char *name, bool abstract);
static void expect_datagram(int fd, const char *want);


static void
test_core_dumps(void **state)
{
    struct rlimit before, rl;

    (void) state;
    assert_int_equal(getrlimit(RLIMIT_CORE, &before), 0);

    assert_int_equal(sl_process_core_dumps(false), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
    assert_int_equal(rl.rlim_max, before.rlim_max); /* never lowered */
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);

    assert_int_equal(sl_process_core_dumps(true), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, before.rlim_max);
    assert_int_equal(rl.rlim_max, before.rlim_max);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);

    assert_int_equal(sl_process_core_dumps(false), 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    assert_int_equal(setrlimit(RLIMIT_CORE, &before), 0);
    assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
}


/* A bound datagram socket at name (a path, or an abstract name without its '@'). */
static int
dgram_bind(const char *name, bool abstract)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (abstract) {
        memcpy(sun.sun_path + 1, name, strlen(name));
        len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    } else {
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", name);
        len = (socklen_t) sizeof(sun);
    }
    assert_int_equal(bind(fd, (struct sockaddr *) &sun, len), 0);
    return fd;
}


static void
expect_datagram(int fd, const char *want)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}


static void
test_notify(void **state)
{
    char dir[] = "/tmp/sl-notify-XXXXXX";
    char path[64];
    char abstract[48];
    int fd;

    (void) state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);

    /* no service manager: nothing to do, no error */
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    assert_int_equal(sl_process_notify("READY=1"), 0);

    fd = dgram_bind(path, false);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(sl_process_notify("READY=1\nSTATUS=generation 1, 2 workers"), 0);
    expect_datagram(fd, "READY=1\nSTATUS=generation 1, 2 workers");
    assert_int_equal(sl_process_notify("STOPPING=1"), 0);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
    unlink(path);

    /* nobody listens any more */
    assert_int_equal(sl_process_notify("READY=1"), -ENOENT);

    snprintf(abstract, sizeof(abstract), "sl-notify-test-%d", (int) getpid());
    fd = dgram_bind(abstract, true);
    snprintf(path, sizeof(path), "@%s", abstract);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(sl_process_notify("RELOADING=1"), 0);
    expect_datagram(fd, "RELOADING=1");
    close(fd);

    assert_int_equal(setenv("NOTIFY_SOCKET", "relative/notify", 1), 0);
    assert_int_equal(sl_process_notify("READY=1"), -EINVAL);
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    assert_int_equal(rmdir(dir), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_dumps),
        cmocka_unit_test(test_notify),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
