/*
 * Listening sockets, created by the master with plain syscalls and
 * inherited by workers. In reuse_port mode every worker slot gets its own
 * SO_REUSEPORT socket per address, so the kernel spreads connections evenly;
 * otherwise all workers share one socket per address. Either way the master
 * keeps every socket open across reloads (matched by address, nginx
 * "remain"), so a connection that arrives while generations change waits in
 * a backlog instead of being refused.
 *
 * Master context only (blocking syscalls are fine there).
 */
#ifndef SL_CORE_PROCESS_LISTEN_H
#define SL_CORE_PROCESS_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/conf/conf.h"

typedef struct sl_listener {
    sl_listen_conf_t addr;
    bool reuse_port;
    int *fds; /* reuse_port: one per slot; else fds[0] only */
    size_t nfds;
    bool admin; /* the admin listener */
} sl_listener_t;

typedef struct sl_listen_set {
    sl_listener_t *items;
    size_t n;
} sl_listen_set_t;

/*
 * Makes set match conf: keeps sockets whose address and mode are unchanged
 * (growing or shrinking the per-slot array to conf->workers), opens new ones,
 * closes the ones no longer configured. On failure (logged, naming the
 * address) set is left as it was and a negative code returned.
 */
int sl_listen_sync(sl_listen_set_t *set, const sl_conf_t *conf);

/* Closes every socket and frees the set's memory. */
void sl_listen_close_all(sl_listen_set_t *set);

/* The fd worker slot uses for listener i. */
int sl_listen_fd_for_slot(const sl_listener_t *l, unsigned slot);

/* Writes "127.0.0.1:4141" into buf. */
void sl_listen_addr_text(const sl_listen_conf_t *a, char *buf, size_t len);

#endif
