/*
 * Process-wide settings the master and every worker apply to themselves:
 * the core-dump policy and the service manager's readiness protocol.
 *
 * Core dumps. A worker's memory holds decrypted provider keys (vault:
 * secrets are decrypted after fork), client keys in flight and request
 * bodies, so by default no sluice process can be dumped: the soft
 * RLIMIT_CORE is 0 and the process is not dumpable (PR_SET_DUMPABLE 0),
 * which also keeps other users' ptrace and /proc/PID/mem, environ and maps
 * readers out. `server.core_dumps: true` turns both back on for debugging
 * (soft limit raised to the hard one). The master applies the setting at
 * start and after each reload, each worker right after fork; cmd/main.c
 * turns dumps off before any secret is read.
 *
 * Readiness. Under systemd's Type=notify ($NOTIFY_SOCKET set), the master
 * reports READY=1 once its first generation runs, RELOADING=1 / READY=1
 * around a reload and STOPPING=1 on shutdown (sd_notify(3)'s datagram
 * protocol, without libsystemd). Without $NOTIFY_SOCKET it does nothing.
 */
#ifndef SL_CORE_PROCESS_PROCESS_H
#define SL_CORE_PROCESS_PROCESS_H

#include <stdbool.h>

/*
 * Applies the core-dump policy to the calling process: enable false sets
 * the soft RLIMIT_CORE to 0 and PR_SET_DUMPABLE to 0; true raises the soft
 * limit to the hard one and sets PR_SET_DUMPABLE to 1 (a hard limit of 0,
 * e.g. systemd's LimitCORE=0, is logged as a warning: only root can raise
 * it). The hard limit is never lowered, so a reload can turn dumps back on.
 * Returns 0 or -errno (logged). Any process, no allocation.
 */
int sl_process_core_dumps(bool enable);

/*
 * Sends state (e.g. "READY=1\nSTATUS=serving") to the service manager's
 * $NOTIFY_SOCKET, a path or an abstract name starting with '@'. Returns 0,
 * also when there is no $NOTIFY_SOCKET, or -errno (logged at warn: a lost
 * notification must not stop the gateway). Master context.
 */
int sl_process_notify(const char *state);

/*
 * In a build that writes a profile for profile-guided optimization (meson
 * -Db_pgo=generate, scripts/build-release's first pass), writes this
 * process's counts now: a worker leaves with _exit(), which skips the exit
 * handler that writes them, so without this only the master's part and
 * `serve --single` would be profiled. Concurrent writers merge (libgcov
 * locks each file). In any other build it does nothing. Any process.
 */
void sl_process_profile_dump(void);

#endif
