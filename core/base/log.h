/*
 * Error log in nginx's format:
 *   2026/11/21 04:40:00 [err] 1234#2: *15 connect() to 10.0.0.1:443 failed (111: Connection
 * refused) pid, worker id ("#0" is the master), then "*N" the connection serial where one applies.
 * One process-wide log file descriptor, opened O_APPEND, which sl_log_reopen() replaces on SIGUSR1.
 * Lines are written with one write(2) so concurrent workers never interleave within a line.
 */
#ifndef SL_CORE_BASE_LOG_H
#define SL_CORE_BASE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sl_log_level {
    SL_LOG_EMERG = 0,
    SL_LOG_ALERT,
    SL_LOG_CRIT,
    SL_LOG_ERR,
    SL_LOG_WARN,
    SL_LOG_NOTICE,
    SL_LOG_INFO,
    SL_LOG_DEBUG,
} sl_log_level_e;

typedef struct sl_log {
    int worker;    /* worker slot, -1 for the master or a CLI command */
    uint64_t conn; /* connection serial, 0 when none */
} sl_log_t;

/* The process's own context (no connection). Set worker with sl_log_set_worker. */
extern sl_log_t sl_log_main;

/* Current threshold; messages above it are dropped before formatting. */
extern sl_log_level_e sl_log_level;

/*
 * Opens path (O_APPEND|O_CREAT, 0640) as the log, or uses stderr when path is
 * NULL or "stderr". Returns 0 or -errno. Master or CLI, at start-up.
 */
int sl_log_open(const char *path, sl_log_level_e level);

/* Reopens the same path (SIGUSR1). Returns 0 or -errno; on failure the old fd stays. */
int sl_log_reopen(void);

/*
 * While on, messages at error level and worse also go to stderr when the
 * log is a file, so a start-up failure reaches the terminal that ran
 * `sluice serve` (nginx does the same). The master turns it off once the
 * first generation runs.
 */
void sl_log_set_startup(bool on);

/* Records the worker slot printed after the pid. */
void sl_log_set_worker(int worker);

/* Parses "emerg".."debug". Returns 0 or SL_ECONF. */
int sl_log_level_parse(const char *name, sl_log_level_e *out);

/*
 * Access log: one line per request, appended with one write(2) so workers
 * never interleave. path NULL closes it. Reopened by sl_log_reopen().
 * Returns 0 or -errno.
 */
int sl_access_log_open(const char *path);

/* True when an access log is open. */
bool sl_access_log_enabled(void);

/* Appends one line (len bytes, ending in '\n'). */
void sl_access_log_write(const char *line, size_t len);

/* The log fd, for handing to children. */
int sl_log_fd(void);

void sl_log_write(const sl_log_t *log, sl_log_level_e level, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * sl_log(log, level, err, fmt, ...): err is an errno (positive), a negative
 * sluice/libuv code, or 0; when non-zero " (N: text)" is appended.
 */
#define sl_log(log, level, err, ...)                          \
    do {                                                      \
        if ((level) <= sl_log_level) {                        \
            sl_log_write((log), (level), (err), __VA_ARGS__); \
        }                                                     \
    } while (0)

#ifndef NDEBUG
#define sl_debug(log, ...) sl_log((log), SL_LOG_DEBUG, 0, __VA_ARGS__)
#else
#define sl_debug(log, ...) \
    do {                   \
    } while (0)
#endif

/*
 * Invariant check that holds in every build (libuv's CHECK): a broken one
 * would corrupt state, so the process logs it at alert and aborts (a
 * worker is respawned by the master).
 */
#define SL_ASSERT(expr)                                     \
    do {                                                    \
        if (!(expr)) {                                      \
            sl__log_assert_fail(__FILE__, __LINE__, #expr); \
        }                                                   \
    } while (0)

/* Logs "assertion failed" at alert and aborts. Only through SL_ASSERT. */
void sl__log_assert_fail(const char *file, int line, const char *expr) __attribute__((noreturn));

#endif
