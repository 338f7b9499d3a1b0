/*
 * Listening sockets: open, match across reloads, close. Sockets are
 * non-blocking and close-on-exec; workers inherit them through fork.
 */
#define _GNU_SOURCE /* SO_REUSEPORT, SOCK_NONBLOCK, SOCK_CLOEXEC */

#include "core/process/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/base/log.h"

static int listen_open_one(const sl_listen_conf_t *a, bool reuse_port, unsigned backlog);
static bool listen_same_addr(const sl_listen_conf_t *a, const sl_listen_conf_t *b);
static int listen_probe(const sl_listen_conf_t *a);
static int listen_build(sl_listener_t *l, const sl_listen_conf_t *a, bool reuse_port, size_t nfds,
                        unsigned backlog, const sl_listener_t *old, bool admin);
static void listen_close(sl_listener_t *l);


void
sl_listen_addr_text(const sl_listen_conf_t *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) &a->addr;

        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *) &a->addr;

        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
    }
}


static int
listen_open_one(const sl_listen_conf_t *a, bool reuse_port, unsigned backlog)
{
    char text[INET6_ADDRSTRLEN + 8];
    int one = 1;
    int fd;
    int err;

    sl_listen_addr_text(a, text, sizeof(text));
    fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "socket() for %s failed", text);
        return -err;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "setsockopt(SO_REUSEADDR) for %s failed", text);
        goto out_close;
    }
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "setsockopt(SO_REUSEPORT) for %s failed", text);
        goto out_close;
    }
    if (a->addr.ss_family == AF_INET6
        && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "setsockopt(IPV6_V6ONLY) for %s failed", text);
        goto out_close;
    }
    if (bind(fd, (const struct sockaddr *) &a->addr, a->addrlen) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "bind() to %s failed", text);
        goto out_close;
    }
    if (listen(fd, (int) backlog) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "listen() to %s failed", text);
        goto out_close;
    }
    return fd;

out_close:
    close(fd);
    return -err;
}


/*
 * SO_REUSEPORT lets any process of the same user join a port, so a second
 * sluice (or anything else) on our address would silently split the
 * traffic. Before opening reuseport sockets on a new address, bind a plain
 * socket there: that fails while anyone listens on it.
 */
static int
listen_probe(const sl_listen_conf_t *a)
{
    char text[INET6_ADDRSTRLEN + 8];
    int one = 1;
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err;

    if (fd == -1) {
        return 0; /* the real socket() reports it */
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a->addr.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *) &a->addr, a->addrlen) == -1) {
        err = errno;
        close(fd);
        sl_listen_addr_text(a, text, sizeof(text));
        sl_log(NULL, SL_LOG_EMERG, err, "bind() to %s failed (is another sluice running?)", text);
        return -err;
    }
    close(fd);
    return 0;
}


static bool
listen_same_addr(const sl_listen_conf_t *a, const sl_listen_conf_t *b)
{
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}


/*
 * Fills l with nfds sockets for address a, taking existing ones from old
 * (same address and mode) before opening new ones. Taken fds are marked -1
 * in old so the caller's later close of old does not close them.
 */
static int
listen_build(sl_listener_t *l, const sl_listen_conf_t *a, bool reuse_port, size_t nfds,
             unsigned backlog, const sl_listener_t *old, bool admin)
{
    size_t i;

    l->addr = *a;
    l->reuse_port = reuse_port;
    l->admin = admin;
    l->nfds = nfds;
    l->fds = calloc(nfds, sizeof(int));
    if (l->fds == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < nfds; i++) {
        l->fds[i] = -1;
    }
    if (reuse_port && (old == NULL || old->nfds == 0)) {
        int rc = listen_probe(a);

        if (rc < 0) {
            free(l->fds);
            l->fds = NULL;
            return rc;
        }
    }
    for (i = 0; i < nfds; i++) {
        if (old != NULL && i < old->nfds && old->fds[i] != -1) {
            l->fds[i] = old->fds[i];
            continue;
        }
        l->fds[i] = listen_open_one(a, reuse_port, backlog);
        if (l->fds[i] < 0) {
            int rc = l->fds[i];

            /* close only what this call opened itself */
            for (size_t j = 0; j < i; j++) {
                if (old == NULL || j >= old->nfds || old->fds[j] != l->fds[j]) {
                    close(l->fds[j]);
                }
            }
            free(l->fds);
            l->fds = NULL;
            return rc;
        }
    }
    return 0;
}


static void
listen_close(sl_listener_t *l)
{
    for (size_t i = 0; i < l->nfds; i++) {
        if (l->fds[i] != -1) {
            close(l->fds[i]);
        }
    }
    free(l->fds);
    l->fds = NULL;
    l->nfds = 0;
}


int
sl_listen_sync(sl_listen_set_t *set, const sl_conf_t *conf)
{
    size_t want = conf->nlisten + (conf->admin_listen != NULL ? 1 : 0);
    sl_listener_t *next = calloc(want == 0 ? 1 : want, sizeof(*next));
    size_t built = 0;
    int rc = 0;

    if (next == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < want; i++) {
        bool admin = i == conf->nlisten;
        const sl_listen_conf_t *a = admin ? conf->admin_listen : &conf->listen[i];
        /* the admin listener carries little traffic: one shared socket */
        bool reuse = admin ? false : conf->reuse_port;
        size_t nfds = reuse ? conf->workers : 1;
        const sl_listener_t *old = NULL;

        for (size_t j = 0; j < set->n; j++) {
            if (listen_same_addr(&set->items[j].addr, a) && set->items[j].reuse_port == reuse) {
                old = &set->items[j];
                break;
            }
        }
        rc = listen_build(&next[i], a, reuse, nfds, conf->backlog, old, admin);
        if (rc < 0) {
            goto out_undo;
        }
        built++;
    }

    /* Close what the new set did not take over, then swap. */
    for (size_t j = 0; j < set->n; j++) {
        sl_listener_t *o = &set->items[j];

        for (size_t k = 0; k < o->nfds; k++) {
            bool kept = false;

            for (size_t i = 0; i < want && !kept; i++) {
                for (size_t m = 0; m < next[i].nfds; m++) {
                    if (next[i].fds[m] == o->fds[k]) {
                        kept = true;
                        break;
                    }
                }
            }
            if (!kept && o->fds[k] != -1) {
                close(o->fds[k]);
            }
        }
        free(o->fds);
    }
    free(set->items);
    set->items = next;
    set->n = want;
    return 0;

out_undo:
    for (size_t i = 0; i < built; i++) {
        for (size_t m = 0; m < next[i].nfds; m++) {
            bool reused = false;

            for (size_t j = 0; j < set->n && !reused; j++) {
                for (size_t k = 0; k < set->items[j].nfds; k++) {
                    if (set->items[j].fds[k] == next[i].fds[m]) {
                        reused = true;
                        break;
                    }
                }
            }
            if (!reused) {
                close(next[i].fds[m]);
            }
        }
        free(next[i].fds);
    }
    free(next);
    return rc;
}


void
sl_listen_close_all(sl_listen_set_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        listen_close(&set->items[i]);
    }
    free(set->items);
    set->items = NULL;
    set->n = 0;
}


int
sl_listen_fd_for_slot(const sl_listener_t *l, unsigned slot)
{
    if (l->nfds == 1) {
        return l->fds[0];
    }
    return l->fds[slot % l->nfds];
}
