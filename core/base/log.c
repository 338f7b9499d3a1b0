/*
 * The error log. Formatting happens into a stack buffer and leaves in one
 * write(2), so lines from several processes sharing an O_APPEND fd never mix.
 */
#include "core/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/base/errno.h"

#define LOG_LINE_MAX 2048

sl_log_t sl_log_main = { -1, 0 };
sl_log_level_e sl_log_level = SL_LOG_NOTICE;

static int log_fd = STDERR_FILENO;
static char *log_path;
static int access_fd = -1;
static bool log_startup;
static char *access_path;

static const char *const log_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

static int log_open_path(const char *path);


static int
log_open_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd == -1) {
        return -errno;
    }
    return fd;
}


int
sl_log_open(const char *path, sl_log_level_e level)
{
    int fd;

    sl_log_level = level;
    if (path == NULL || strcmp(path, "stderr") == 0) {
        free(log_path);
        log_path = NULL;
        log_fd = STDERR_FILENO;
        return 0;
    }
    fd = log_open_path(path);
    if (fd < 0) {
        return fd;
    }
    if (log_fd != STDERR_FILENO) {
        close(log_fd);
    }
    free(log_path);
    log_path = strdup(path);
    log_fd = fd;
    return 0;
}


int
sl_log_reopen(void)
{
    int fd;

    if (access_path != NULL) {
        fd = log_open_path(access_path);
        if (fd >= 0) {
            dup2(fd, access_fd);
            close(fd);
        }
    }
    if (log_path == NULL) {
        return 0;
    }
    fd = log_open_path(log_path);
    if (fd < 0) {
        return fd;
    }
    /* dup2 keeps the fd number stable for anyone who cached it */
    if (dup2(fd, log_fd) == -1) {
        int err = errno;

        close(fd);
        return -err;
    }
    close(fd);
    return 0;
}


int
sl_access_log_open(const char *path)
{
    int fd = -1;

    if (path != NULL) {
        fd = log_open_path(path);
        if (fd < 0) {
            return fd;
        }
    }
    if (access_fd != -1) {
        close(access_fd);
    }
    free(access_path);
    access_path = path != NULL ? strdup(path) : NULL;
    access_fd = fd;
    return 0;
}


bool
sl_access_log_enabled(void)
{
    return access_fd != -1;
}


void
sl_access_log_write(const char *line, size_t len)
{
    if (access_fd != -1 && write(access_fd, line, len) < 0) {
        /* a full disk must not stop the traffic; the error log says why once per minute */
        static time_t warned;
        time_t now = time(NULL);

        if (now - warned >= 60) {
            warned = now;
            sl_log(NULL, SL_LOG_CRIT, errno, "write() to access log \"%s\" failed", access_path);
        }
    }
}


void
sl_log_set_startup(bool on)
{
    log_startup = on;
}


void
sl_log_set_worker(int worker)
{
    sl_log_main.worker = worker;
}


int
sl_log_level_parse(const char *name, sl_log_level_e *out)
{
    for (int i = 0; i <= SL_LOG_DEBUG; i++) {
        if (strcmp(name, log_names[i]) == 0 || (i == SL_LOG_ERR && strcmp(name, "err") == 0)) {
            *out = (sl_log_level_e) i;
            return 0;
        }
    }
    return SL_ECONF;
}


int
sl_log_fd(void)
{
    return log_fd;
}


void
sl_log_write(const sl_log_t *log, sl_log_level_e level, int err, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    size_t n = 0;
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int w;
    int saved = errno;

    if (log == NULL) {
        log = &sl_log_main;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
    w = snprintf(line + n, sizeof(line) - n, " [%s] %d#%d: ", log_names[level], (int) getpid(),
                 log->worker < 0 ? 0 : log->worker + 1);
    n += (size_t) (w > 0 ? w : 0);
    if (log->conn != 0 && n < sizeof(line)) {
        w = snprintf(line + n, sizeof(line) - n, "*%llu ", (unsigned long long) log->conn);
        n += (size_t) (w > 0 ? w : 0);
    }
    if (n < sizeof(line)) {
        va_start(ap, fmt);
        w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        n += (size_t) (w > 0 ? w : 0);
    }
    if (err != 0 && n < sizeof(line)) {
        int code = err > 0 ? err : -err;
        const char *text = err > 0 ? strerror(err) : sl_strerror(err);

        w = snprintf(line + n, sizeof(line) - n, " (%d: %s)", err > 0 ? code : err, text);
        n += (size_t) (w > 0 ? w : 0);
    }
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
    }
    line[n++] = '\n';
    if (write(log_fd, line, n) < 0) {
        /* nowhere left to report it */
    }
    if (log_startup && log_fd != STDERR_FILENO && level <= SL_LOG_ERR
        && write(STDERR_FILENO, line, n) < 0) {
        /* as above */
    }
    errno = saved;
}


void
sl__log_assert_fail(const char *file, int line, const char *expr)
{
    sl_log_write(NULL, SL_LOG_ALERT, 0, "assertion \"%s\" failed at %s:%d", expr, file, line);
    /* fatal */
    abort();
}
