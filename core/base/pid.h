/*
 * The calling process's id without a system call per use: glibc's getpid()
 * is a real syscall, and the request path asked for it several times per
 * request (in-flight counts, intents, ledger keys). The value is cached on
 * first use and forgotten in a forked child (pthread_atfork), so a worker
 * never sees its master's pid. Base layer: depends on nothing above it.
 */
#ifndef SL_CORE_BASE_PID_H
#define SL_CORE_BASE_PID_H

#include <sys/types.h>

/* getpid(), cached per process. Any context, any thread. */
pid_t sl_pid(void);

#endif
