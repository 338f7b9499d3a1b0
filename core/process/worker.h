/*
 * A worker process: one libuv loop serving client connections on the
 * listening sockets it inherited, until the master tells it to stop (or
 * disappears). Start-up order follows STYLE.md §6.
 */
#ifndef SL_CORE_PROCESS_WORKER_H
#define SL_CORE_PROCESS_WORKER_H

#include <stddef.h>

#include "core/conf/conf.h"

typedef struct sl_worker_ctx {
    const sl_conf_t *conf;
    unsigned slot;         /* 0..workers-1 */
    unsigned generation;   /* bumps on every reload */
    const int *listen_fds; /* client API listeners: listen_fds[i] serves conf->listen[i] */
    size_t nlisten;
    int admin_fd; /* admin listener, -1 when none */
    int ctl_fd;   /* socketpair end from the master, -1 in single mode */
} sl_worker_ctx_t;

/* Control bytes the master writes on the socketpair. */
#define SL_WORKER_CMD_QUIT      'q' /* drain and exit: a stop (idle connections get a 1 s grace) */
#define SL_WORKER_CMD_RETIRE    'e' /* drain and exit: a reload (idle connections stay until used) */
#define SL_WORKER_CMD_TERMINATE 't' /* close everything and exit now */
#define SL_WORKER_CMD_REOPEN    'r' /* reopen log files */

/* Runs the worker loop; returns the process exit code once the loop has ended. Worker context. */
int sl_worker_run(const sl_worker_ctx_t *ctx);

#endif
