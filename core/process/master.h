/*
 * The master process: owns the configuration generations, the listening
 * sockets and the worker processes; never serves traffic and never runs
 * libuv. It sleeps in sigsuspend() and acts on flags its signal handlers set
 * (nginx ngx_master_process_cycle).
 *
 *   SIGHUP   reload: parse, validate, fork a new generation, drain the old
 *   SIGTERM  fast stop (SIGINT too); SIGKILL after stop_timeout
 *   SIGQUIT  graceful stop: workers drain, bounded by drain_timeout
 *   SIGUSR1  reopen log files (master and workers)
 *   SIGCHLD  reap; respawn a crashed worker with back-off
 */
#ifndef SL_CORE_PROCESS_MASTER_H
#define SL_CORE_PROCESS_MASTER_H

#include "core/conf/conf.h"

/*
 * Runs the master until it is stopped. Takes ownership of conf (the first
 * generation; file is kept to re-read on SIGHUP). Returns the process exit
 * code. Master context: call from main() only, once.
 */
int sl_master_run(sl_conf_t *conf, const char *file);

/* Runs one worker in this process, without a master (debug mode). Returns the exit code. */
int sl_master_run_single(sl_conf_t *conf);

#endif
