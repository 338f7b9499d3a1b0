/*
 * Process-wide settings (core/process/process.h): the core-dump policy through
 * setrlimit(RLIMIT_CORE) and prctl(PR_SET_DUMPABLE), and sd_notify(3)'s
 * datagram to $NOTIFY_SOCKET.
 */
#define _GNU_SOURCE /* SOCK_CLOEXEC */

#include "core/process/process.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/base/log.h"


int
sl_process_core_dumps(bool enable)
{
    struct rlimit rl;
    int err;

    if (getrlimit(RLIMIT_CORE, &rl) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_ALERT, err, "getrlimit(RLIMIT_CORE) failed");
        return -err;
    }
    rl.rlim_cur = enable ? rl.rlim_max : 0;
    if (setrlimit(RLIMIT_CORE, &rl) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_ALERT, err, "setrlimit(RLIMIT_CORE) failed");
        return -err;
    }
    if (prctl(PR_SET_DUMPABLE, enable ? 1 : 0, 0, 0, 0) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_ALERT, err, "prctl(PR_SET_DUMPABLE) failed");
        return -err;
    }
    if (enable && rl.rlim_max == 0) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "server.core_dumps is on but the hard RLIMIT_CORE is 0 (LimitCORE=0 in the "
               "systemd unit?): no core file can be written");
    }
    return 0;
}


int
sl_process_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    socklen_t len;
    size_t plen;
    ssize_t n;
    int fd;
    int err;

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
        sl_log(NULL, SL_LOG_WARN, 0, "NOTIFY_SOCKET \"%s\" is not a socket path", path);
        return -EINVAL;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@') {
        /* an abstract name: no NUL at the end, the length says where it stops */
        sun.sun_path[0] = '\0';
    }
    len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/' ? 1 : 0));

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_WARN, err, "socket(AF_UNIX) for NOTIFY_SOCKET failed");
        return -err;
    }
    do {
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &sun, len);
    } while (n == -1 && errno == EINTR);
    err = n == -1 ? errno : 0;
    close(fd);
    if (err != 0) {
        sl_log(NULL, SL_LOG_WARN, err, "sendto() NOTIFY_SOCKET \"%s\" failed", path);
        return -err;
    }
    return 0;
}


/*
 * libgcov's writer in a profile-generating build, else NULL. Through a
 * volatile pointer, so that sl_process_profile_dump has one shape in both
 * passes of the build (the second refuses a function whose control flow
 * differs from the profile the first wrote).
 */
#if defined(SL_PGO_GENERATE)
void __gcov_dump(void); /* in every -fprofile-generate link; no header declares it */

static void (*volatile process_gcov_dump)(void) = __gcov_dump;
#else
static void (*volatile process_gcov_dump)(void) = NULL;
#endif


void
sl_process_profile_dump(void)
{
    void (*dump)(void) = process_gcov_dump;

    if (dump != NULL) {
        dump();
    }
}
