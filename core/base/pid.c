/*
 * The cached process id (core/base/pid.h). A child made by fork() runs the
 * atfork handler before returning, so its first sl_pid() asks the kernel.
 */
#include "core/base/pid.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static _Atomic pid_t pid_cached;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void);
static void pid_register(void);


pid_t
sl_pid(void)
{
    pid_t p = atomic_load_explicit(&pid_cached, memory_order_relaxed);

    if (p != 0) {
        return p;
    }
    pthread_once(&pid_once, pid_register);
    p = getpid();
    atomic_store_explicit(&pid_cached, p, memory_order_relaxed);
    return p;
}


static void
pid_forget(void)
{
    atomic_store_explicit(&pid_cached, 0, memory_order_relaxed);
}


static void
pid_register(void)
{
    pthread_atfork(NULL, NULL, pid_forget);
}
