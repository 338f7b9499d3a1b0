/*
 * The master process cycle. Signals are blocked except inside sigsuspend();
 * handlers only set flags. Timed work (respawn back-off, kill deadlines) is
 * driven by a one-shot ITIMER_REAL whose SIGALRM wakes sigsuspend.
 */
#define _GNU_SOURCE /* socketpair flags */

#include "core/process/master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/base/errno.h"
#include "core/gateway/intent.h"
#include "core/http/tls.h"
#include "core/gateway/guard.h"
#include "core/process/listen.h"
#include "core/process/process.h"
#include "core/gateway/limits.h"
#include "core/base/log.h"
#include "core/admin/metrics.h"
#include "core/base/shm.h"
#include "core/admin/alerts.h"
#include "core/admin/tail.h"
#include "core/gateway/state.h"
#include "core/gateway/settle.h"
#include "core/process/worker.h"
#include "storage/db.h"
#include "storage/vault.h"
#include "storage/spend.h"

#define MASTER_BACKOFF_MIN  100   /* ms */
#define MASTER_BACKOFF_MAX  30000 /* ms */
#define MASTER_QUICK_EXIT   2000  /* ms: a worker dying sooner than this counts as a crash loop */
#define MASTER_KILL_GRACE   2000  /* ms beyond drain_timeout before SIGKILL */
#define MASTER_SETTLE_RETRY 2000  /* ms between tries to write the rows a dead worker left */

typedef struct master_proc {
    pid_t pid;
    unsigned slot;
    unsigned generation;
    int ctl;          /* master's end of the socketpair, -1 when closed */
    uint64_t started; /* ms, monotonic */
    uint64_t kill_at; /* ms; 0 = no deadline */
    bool exiting;     /* told to stop: its exit is expected */
} master_proc_t;

typedef struct master_slot {
    uint64_t respawn_at; /* ms; 0 = nothing pending */
    uint64_t backoff;    /* ms */
    unsigned quick_exits;
} master_slot_t;

typedef enum master_state {
    MASTER_RUNNING = 0,
    MASTER_QUITTING,
    MASTER_TERMINATING,
} master_state_e;

typedef struct master {
    sl_conf_t *conf;
    const char *file;
    unsigned generation;
    sl_listen_set_t listeners;
    master_proc_t *procs;
    size_t nprocs;
    size_t cap;
    master_slot_t *slots;
    unsigned nslots;
    master_state_e state;
    uint64_t stop_deadline;
    pid_t *unsettled; /* dead workers whose intents could not be written yet */
    size_t nunsettled;
    uint64_t settle_at; /* ms; 0 = nothing to retry */
} master_t;

static volatile sig_atomic_t sig_reload;
static volatile sig_atomic_t sig_terminate;
static volatile sig_atomic_t sig_quit;
static volatile sig_atomic_t sig_reopen;
static volatile sig_atomic_t sig_child;
static volatile sig_atomic_t sig_alarm;

static uint64_t master_now(void);
static void master_on_signal(int signo);
static int master_install_signals(sigset_t *blocked);
static int master_write_pid(const char *path);
static int master_spawn(master_t *m, unsigned slot);
static void master_spawn_generation(master_t *m);
static void master_reap(master_t *m);
static void master_send(master_t *m, master_proc_t *p, char cmd);
static void master_send_all(master_t *m, char cmd, bool only_old);
static void master_reload(master_t *m);
static void master_timers(master_t *m);
static void master_arm_timer(master_t *m);
static bool master_slot_alive(const master_t *m, unsigned slot);
static int master_resize_slots(master_t *m, unsigned n);
static int master_storage_check(sl_conf_t *conf, bool cold);
static void master_settle(master_t *m, pid_t pid, bool signaled);
static void master_settle_retry(master_t *m);
static bool master_pid_alive(const master_t *m, pid_t pid);
static int master_clear_reserved_txn(sl_txn_t *t, void *arg);
static int master_shm_init(const sl_conf_t *conf);
static void master_core_dumps(const sl_conf_t *conf);
static void master_notify(const master_t *m, const char *state);


static uint64_t
master_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


static void
master_on_signal(int signo)
{
    int saved = errno;

    switch (signo) {
    case SIGHUP:
        sig_reload = 1;
        break;
    case SIGTERM:
    case SIGINT:
        sig_terminate = 1;
        break;
    case SIGQUIT:
        sig_quit = 1;
        break;
    case SIGUSR1:
        sig_reopen = 1;
        break;
    case SIGCHLD:
        sig_child = 1;
        break;
    case SIGALRM:
        sig_alarm = 1;
        break;
    default:
        break;
    }
    errno = saved;
}


static int
master_install_signals(sigset_t *blocked)
{
    static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD, SIGALRM };
    struct sigaction sa;

    sigemptyset(blocked);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaddset(blocked, sigs[i]);
    }
    if (sigprocmask(SIG_BLOCK, blocked, NULL) == -1) {
        int err = errno;

        sl_log(NULL, SL_LOG_EMERG, err, "sigprocmask() failed");
        return -err;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = master_on_signal;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &sa, NULL) == -1) {
            int err = errno;

            sl_log(NULL, SL_LOG_EMERG, err, "sigaction(%d) failed", sigs[i]);
            return -err;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}


/*
 * Maps the shared segment, sized from the first configuration, and carves
 * the modules' regions from it. It stays for the master's whole life:
 * reloads reuse it (sl_state_init registers the new targets).
 */
static int
master_shm_init(const sl_conf_t *conf)
{
    int rc = sl_shm_init(sl_metrics_shm_size() + sl_limits_shm_size() + sl_state_shm_size(conf)
                         + sl_db_shared_size() + sl_intent_shm_size(sl_settle_capacity(conf))
                         + sl_tail_shm_size() + sl_alerts_shm_size() + sl_guard_shm_size());

    if (rc == 0) {
        rc = sl_metrics_init();
    }
    if (rc == 0) {
        rc = sl_limits_init();
    }
    if (rc == 0) {
        rc = sl_state_init(conf);
    }
    if (rc == 0) {
        rc = sl_db_shared_init();
    }
    if (rc == 0) {
        rc = sl_intent_init(sl_settle_capacity(conf));
    }
    if (rc == 0) {
        rc = sl_tail_init();
    }
    if (rc == 0) {
        rc = sl_alerts_init();
    }
    if (rc == 0) {
        rc = sl_guard_init();
    }
    return rc;
}


static int
master_clear_reserved_txn(sl_txn_t *t, void *arg)
{
    (void) arg;
    return sl_spend_clear_reserved(t);
}


/*
 * The master's only use of LMDB, opened and closed again before any fork
 * (LMDB forbids using an environment across one): prove that the vault:
 * references of conf resolve and, at a cold start, drop the budget
 * reservations that workers of an earlier run never settled.
 */
static int
master_storage_check(sl_conf_t *conf, bool cold)
{
    char err[1024];
    sl_db_t *db;
    int rc = sl_db_open(conf->storage_path, conf->storage_map_size,
                        cold && conf->storage_init ? SL_DB_INIT : 0, &db);

    if (rc < 0) {
        if (cold) {
            sl_log(NULL, SL_LOG_EMERG, rc, "cannot open the storage at \"%s\"", conf->storage_path);
        }
        return rc;
    }
    sl_db_set_reserve(db, sl_settle_reserve(conf));
    rc = sl_vault_resolve_conf(conf, db, false, err, sizeof(err));
    if (rc < 0) {
        sl_log(NULL, cold ? SL_LOG_EMERG : SL_LOG_ERR, 0, "%s", err);
        sl_db_close(db);
        return rc;
    }
    if (cold) {
        rc = sl_db_write(db, master_clear_reserved_txn, NULL);
        if (rc < 0) {
            sl_log(NULL, SL_LOG_WARN, rc, "clearing stale budget reservations failed");
        }
    }
    sl_db_close(db);
    return 0;
}


/* The core-dump policy of conf for the master (workers apply it again after fork). */
static void
master_core_dumps(const sl_conf_t *conf)
{
    if (sl_process_core_dumps(conf->core_dumps) == 0 && conf->core_dumps) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "server.core_dumps is on: a core file of sluice may hold decrypted secrets");
    }
}


/* Tells a Type=notify service manager about state, with the generation as its status. */
static void
master_notify(const master_t *m, const char *state)
{
    char buf[256];
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, sizeof(buf), "%s\nMONOTONIC_USEC=%llu\nSTATUS=generation %u, %u workers", state,
             (unsigned long long) ts.tv_sec * 1000000 + (unsigned long long) ts.tv_nsec / 1000,
             m->generation, m->conf->workers);
    sl_process_notify(buf);
}


static int
master_write_pid(const char *path)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err;

    if (fd == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "open() \"%s\" failed", path);
        return -err;
    }
    if (write(fd, buf, (size_t) n) != n) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "write() to \"%s\" failed", path);
        close(fd);
        return -err;
    }
    close(fd);
    return 0;
}


static int
master_resize_slots(master_t *m, unsigned n)
{
    master_slot_t *s = realloc(m->slots, sizeof(*s) * (n == 0 ? 1 : n));

    if (s == NULL) {
        return -ENOMEM;
    }
    for (unsigned i = m->nslots; i < n; i++) {
        s[i] = (master_slot_t){ 0, MASTER_BACKOFF_MIN, 0 };
    }
    for (unsigned i = 0; i < n; i++) {
        s[i].respawn_at = 0;
    }
    m->slots = s;
    m->nslots = n;
    return 0;
}


static int
master_spawn(master_t *m, unsigned slot)
{
    int sv[2];
    pid_t pid;
    int err;
    master_proc_t *p;

    if (m->nprocs == m->cap) {
        size_t cap = m->cap == 0 ? 16 : m->cap * 2;
        master_proc_t *procs = realloc(m->procs, sizeof(*procs) * cap);

        if (procs == NULL) {
            sl_log(NULL, SL_LOG_ALERT, ENOMEM, "cannot track worker processes");
            return -ENOMEM;
        }
        m->procs = procs;
        m->cap = cap;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_ALERT, err, "socketpair() failed while spawning worker");
        return -err;
    }
    fflush(NULL);
    pid = fork();
    if (pid == -1) {
        err = errno;
        sl_log(NULL, SL_LOG_ALERT, err, "fork() failed while spawning worker");
        close(sv[0]);
        close(sv[1]);
        return -err;
    }
    if (pid == 0) {
        sl_worker_ctx_t ctx;
        int fds[64];
        size_t nfds = 0;
        int admin_fd = -1;

        /* Close what belongs to the master and the other workers. */
        close(sv[0]);
        for (size_t i = 0; i < m->nprocs; i++) {
            if (m->procs[i].ctl != -1) {
                close(m->procs[i].ctl);
            }
        }
        for (size_t i = 0; i < m->listeners.n; i++) {
            const sl_listener_t *l = &m->listeners.items[i];
            int mine = sl_listen_fd_for_slot(l, slot);

            for (size_t k = 0; k < l->nfds; k++) {
                if (l->fds[k] != mine) {
                    close(l->fds[k]);
                }
            }
            if (l->admin) {
                admin_fd = mine;
            } else if (nfds < sizeof(fds) / sizeof(fds[0])) {
                fds[nfds++] = mine;
            }
        }
        ctx.conf = m->conf;
        ctx.slot = slot;
        ctx.generation = m->generation;
        ctx.listen_fds = fds;
        ctx.nlisten = nfds;
        ctx.admin_fd = admin_fd;
        ctx.ctl_fd = sv[1];
        int rc = sl_worker_run(&ctx);

        sl_process_profile_dump();
        _exit(rc);
    }
    close(sv[1]);
    p = &m->procs[m->nprocs++];
    p->pid = pid;
    p->slot = slot;
    p->generation = m->generation;
    p->ctl = sv[0];
    p->started = master_now();
    p->kill_at = 0;
    p->exiting = false;
    sl_log(NULL, SL_LOG_NOTICE, 0, "start worker process %d (slot %u, generation %u)", (int) pid,
           slot, m->generation);
    return 0;
}


static void
master_spawn_generation(master_t *m)
{
    for (unsigned slot = 0; slot < m->conf->workers; slot++) {
        if (master_spawn(m, slot) < 0) {
            /* retry through the respawn timer */
            m->slots[slot].respawn_at = master_now() + m->slots[slot].backoff;
        }
    }
}


static void
master_send(master_t *m, master_proc_t *p, char cmd)
{
    ssize_t n;

    (void) m;
    if (p->ctl == -1) {
        return;
    }
    do {
        n = write(p->ctl, &cmd, 1);
    } while (n == -1 && errno == EINTR);
    if (n != 1) {
        int err = errno;

        /* the worker is gone or its pipe is broken: a signal still reaches it */
        sl_log(NULL, SL_LOG_WARN, err, "write() to worker process %d channel failed", (int) p->pid);
        kill(p->pid, cmd == SL_WORKER_CMD_QUIT || cmd == SL_WORKER_CMD_RETIRE ? SIGQUIT : SIGTERM);
    }
}


static void
master_send_all(master_t *m, char cmd, bool only_old)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        master_proc_t *p = &m->procs[i];

        if (only_old && p->generation == m->generation) {
            continue;
        }
        master_send(m, p, cmd);
        if (cmd != SL_WORKER_CMD_REOPEN) {
            uint64_t grace = cmd != SL_WORKER_CMD_TERMINATE
                                 ? m->conf->drain_timeout + MASTER_KILL_GRACE
                                 : m->conf->stop_timeout;

            p->exiting = true;
            if (p->kill_at == 0 || master_now() + grace < p->kill_at) {
                p->kill_at = master_now() + grace;
            }
        }
    }
}


static bool
master_slot_alive(const master_t *m, unsigned slot)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        if (m->procs[i].generation == m->generation && m->procs[i].slot == slot) {
            return true;
        }
    }
    return false;
}


static void
master_reap(master_t *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        size_t i;
        master_proc_t p;

        if (pid <= 0) {
            return;
        }
        for (i = 0; i < m->nprocs; i++) {
            if (m->procs[i].pid == pid) {
                break;
            }
        }
        if (i == m->nprocs) {
            continue;
        }
        p = m->procs[i];
        if (p.ctl != -1) {
            close(p.ctl);
        }
        m->procs[i] = m->procs[--m->nprocs];
        /* its requests are gone: they no longer count as in flight */
        sl_state_process_exited(pid);

        if (WIFSIGNALED(status)) {
            int sig = WTERMSIG(status);
            bool crash =
                sig == SIGSEGV || sig == SIGABRT || sig == SIGBUS || sig == SIGFPE || sig == SIGILL;

            sl_log(NULL, crash ? SL_LOG_ALERT : (p.exiting ? SL_LOG_NOTICE : SL_LOG_ERR), 0,
                   "worker process %d exited on signal %d%s", (int) pid, sig,
                   WCOREDUMP(status) ? " (core dumped)" : "");
        } else {
            int code = WEXITSTATUS(status);

            sl_log(NULL, code == 0 ? SL_LOG_NOTICE : SL_LOG_ERR, 0,
                   "worker process %d exited with code %d", (int) pid, code);
        }
        /* before any respawn: LMDB is opened and closed in there, never across a fork */
        master_settle(m, pid, WIFSIGNALED(status));

        if (p.exiting || m->state != MASTER_RUNNING || p.generation != m->generation
            || p.slot >= m->nslots || master_slot_alive(m, p.slot)) {
            continue;
        }

        /* An unexpected exit: respawn, backing off when it keeps happening. */
        master_slot_t *s = &m->slots[p.slot];
        uint64_t now = master_now();

        if (now - p.started < MASTER_QUICK_EXIT) {
            s->quick_exits++;
            if (s->quick_exits > 1) {
                s->backoff =
                    s->backoff * 2 > MASTER_BACKOFF_MAX ? MASTER_BACKOFF_MAX : s->backoff * 2;
                sl_log(NULL, SL_LOG_ALERT, 0,
                       "worker slot %u exited %u times in a row within %d ms of start, "
                       "respawning in %llu ms",
                       p.slot, s->quick_exits, MASTER_QUICK_EXIT, (unsigned long long) s->backoff);
            }
            s->respawn_at = now + (s->quick_exits > 1 ? s->backoff : 0);
        } else {
            s->quick_exits = 0;
            s->backoff = MASTER_BACKOFF_MIN;
            s->respawn_at = now;
        }
        if (s->respawn_at <= now) {
            s->respawn_at = 0;
            if (master_spawn(m, p.slot) < 0) {
                s->respawn_at = now + s->backoff;
            }
        }
    }
}


/*
 * The requests pid left in the intent table become ledger rows and its
 * reservations are released; when the storage cannot take them now, pid
 * is kept and tried again every MASTER_SETTLE_RETRY.
 */
static void
master_settle(master_t *m, pid_t pid, bool signaled)
{
    pid_t *u;

    if (sl_settle_dead(m->conf, pid, signaled, NULL) == 0) {
        return;
    }
    u = realloc(m->unsettled, sizeof(*u) * (m->nunsettled + 1));
    if (u == NULL) {
        sl_log(NULL, SL_LOG_ALERT, ENOMEM, "cannot remember worker process %d to settle it later",
               (int) pid);
        return;
    }
    m->unsettled = u;
    m->unsettled[m->nunsettled++] = pid;
    if (m->settle_at == 0) {
        m->settle_at = master_now() + MASTER_SETTLE_RETRY;
    }
}


static void
master_settle_retry(master_t *m)
{
    size_t i = 0;

    m->settle_at = 0;
    while (i < m->nunsettled) {
        pid_t pid = m->unsettled[i];

        /* a recycled pid now owns fresh entries of its own: leave them alone */
        if (!master_pid_alive(m, pid) && sl_settle_dead(m->conf, pid, true, NULL) != 0) {
            i++;
            continue;
        }
        m->unsettled[i] = m->unsettled[--m->nunsettled];
    }
    if (m->nunsettled > 0) {
        m->settle_at = master_now() + MASTER_SETTLE_RETRY;
    }
}


static bool
master_pid_alive(const master_t *m, pid_t pid)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        if (m->procs[i].pid == pid) {
            return true;
        }
    }
    return false;
}


static void
master_reload(master_t *m)
{
    char err[1024];
    sl_conf_t *next = NULL;
    sl_conf_t *old = m->conf;
    int rc;

    sl_log(NULL, SL_LOG_NOTICE, 0, "reconfiguring from \"%s\"", m->file);
    rc = sl_conf_load(m->file, &next, err, sizeof(err));
    if (rc < 0) {
        sl_log(NULL, SL_LOG_ERR, 0, "%s", err);
        sl_log(NULL, SL_LOG_ERR, 0,
               "reload failed, generation %u keeps running with the previous configuration",
               m->generation);
        return;
    }
    if (master_storage_check(next, false) < 0) {
        sl_log(NULL, SL_LOG_ERR, 0,
               "reload failed, generation %u keeps running with the previous configuration",
               m->generation);
        sl_conf_destroy(next);
        return;
    }
    rc = sl_listen_sync(&m->listeners, next);
    if (rc < 0) {
        sl_log(NULL, SL_LOG_ERR, rc,
               "reload failed, generation %u keeps running with the previous configuration",
               m->generation);
        sl_conf_destroy(next);
        return;
    }
    if (master_resize_slots(m, next->workers) < 0) {
        sl_log(NULL, SL_LOG_ERR, ENOMEM, "reload failed");
        sl_conf_destroy(next);
        return;
    }
    if (sl_settle_capacity(next) > sl_intent_capacity()) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "the intent table keeps its %zu entries, fewer than the %zu that workers and "
               "max_connections now allow in flight: restart sluice to resize it",
               sl_intent_capacity(), sl_settle_capacity(next));
    }
    if (strcmp(old->error_log, next->error_log) != 0 || old->log_level != next->log_level) {
        rc = sl_log_open(next->error_log, next->log_level);
        if (rc < 0) {
            sl_log(NULL, SL_LOG_ERR, rc, "open() \"%s\" failed, keeping the old log",
                   next->error_log);
        }
    }
    if ((old->access_log == NULL) != (next->access_log == NULL)
        || (old->access_log != NULL && strcmp(old->access_log, next->access_log) != 0)) {
        rc = sl_access_log_open(next->access_log);
        if (rc < 0) {
            sl_log(NULL, SL_LOG_ERR, rc, "open() \"%s\" failed, keeping the old access log",
                   next->access_log);
        }
    }
    m->conf = next;
    m->generation++;
    /* the segment stays: existing targets keep their state, new ones get slots */
    sl_state_init(next);
    master_core_dumps(next);
    master_spawn_generation(m);
    /* the old workers keep their own copy of the old configuration */
    master_send_all(m, SL_WORKER_CMD_RETIRE, true);
    sl_conf_destroy(old);
    sl_log(NULL, SL_LOG_NOTICE, 0, "generation %u started with %u workers", m->generation,
           m->conf->workers);
}


static void
master_timers(master_t *m)
{
    uint64_t now = master_now();

    for (size_t i = 0; i < m->nprocs; i++) {
        master_proc_t *p = &m->procs[i];

        if (p->kill_at != 0 && now >= p->kill_at) {
            sl_log(NULL, SL_LOG_WARN, 0, "worker process %d did not exit in time, sending SIGKILL",
                   (int) p->pid);
            kill(p->pid, SIGKILL);
            p->kill_at = 0;
        }
    }
    if (m->settle_at != 0 && now >= m->settle_at) {
        master_settle_retry(m);
    }
    if (m->state != MASTER_RUNNING) {
        return;
    }
    for (unsigned s = 0; s < m->nslots && s < m->conf->workers; s++) {
        if (m->slots[s].respawn_at != 0 && now >= m->slots[s].respawn_at) {
            m->slots[s].respawn_at = 0;
            if (!master_slot_alive(m, s) && master_spawn(m, s) < 0) {
                m->slots[s].respawn_at = now + m->slots[s].backoff;
            }
        }
    }
}


static void
master_arm_timer(master_t *m)
{
    uint64_t next = 0;
    uint64_t now = master_now();
    struct itimerval itv;

    for (size_t i = 0; i < m->nprocs; i++) {
        if (m->procs[i].kill_at != 0 && (next == 0 || m->procs[i].kill_at < next)) {
            next = m->procs[i].kill_at;
        }
    }
    for (unsigned s = 0; s < m->nslots; s++) {
        if (m->slots[s].respawn_at != 0 && (next == 0 || m->slots[s].respawn_at < next)) {
            next = m->slots[s].respawn_at;
        }
    }
    if (m->settle_at != 0 && (next == 0 || m->settle_at < next)) {
        next = m->settle_at;
    }
    memset(&itv, 0, sizeof(itv));
    if (next != 0) {
        uint64_t in = next > now ? next - now : 1;

        itv.it_value.tv_sec = (time_t) (in / 1000);
        itv.it_value.tv_usec = (suseconds_t) ((in % 1000) * 1000);
    }
    setitimer(ITIMER_REAL, &itv, NULL);
}


int
sl_master_run(sl_conf_t *conf, const char *file)
{
    master_t m;
    sigset_t blocked;
    sigset_t empty;
    int rc;

    memset(&m, 0, sizeof(m));
    m.conf = conf;
    m.file = file;
    m.generation = 1;
    sl_log_set_worker(-1);
    master_core_dumps(conf);

    rc = master_shm_init(conf);
    if (rc < 0) {
        sl_log(NULL, SL_LOG_EMERG, rc, "setting up the shared memory segment failed");
        sl_conf_destroy(conf);
        return 1;
    }
    if (master_install_signals(&blocked) < 0 || master_storage_check(conf, true) < 0) {
        sl_conf_destroy(conf);
        return 1;
    }
    rc = sl_listen_sync(&m.listeners, conf);
    if (rc < 0) {
        sl_conf_destroy(conf);
        return 1;
    }
    /* every worker, of every generation, inherits the one TLS ticket secret */
    rc = sl_tls_tickets_init();
    if (rc < 0) {
        sl_log(NULL, SL_LOG_EMERG, rc, "getrandom() for the TLS ticket secret failed");
        sl_listen_close_all(&m.listeners);
        sl_conf_destroy(conf);
        return 1;
    }
    if (master_write_pid(conf->pid_file) < 0) {
        sl_listen_close_all(&m.listeners);
        sl_conf_destroy(conf);
        return 1;
    }
    if (master_resize_slots(&m, conf->workers) < 0) {
        sl_log(NULL, SL_LOG_EMERG, ENOMEM, "cannot allocate worker slots");
        unlink(conf->pid_file);
        sl_listen_close_all(&m.listeners);
        sl_conf_destroy(conf);
        return 1;
    }
    if (!conf->ledger_enabled) {
        sl_log(NULL, SL_LOG_WARN, 0,
               "ledger.enabled is false: no usage is recorded and no "
               "budget is enforced");
    }
    sl_log(NULL, SL_LOG_NOTICE, 0, "sluice started, master process %d, %u workers, %s listener",
           (int) getpid(), conf->workers, conf->reuse_port ? "per-worker reuseport" : "shared");
    master_spawn_generation(&m);
    sl_log_set_startup(false);
    master_notify(&m, "READY=1");

    sigemptyset(&empty);
    for (;;) {
        master_arm_timer(&m);
        sigsuspend(&empty);

        if (sig_child) {
            sig_child = 0;
            master_reap(&m);
        }
        if (sig_terminate && m.state != MASTER_TERMINATING) {
            sig_terminate = 0;
            sl_log(NULL, SL_LOG_NOTICE, 0, "fast shutdown");
            m.state = MASTER_TERMINATING;
            master_notify(&m, "STOPPING=1");
            master_send_all(&m, SL_WORKER_CMD_TERMINATE, false);
        }
        if (sig_quit && m.state == MASTER_RUNNING) {
            sig_quit = 0;
            sl_log(NULL, SL_LOG_NOTICE, 0, "graceful shutdown");
            m.state = MASTER_QUITTING;
            master_notify(&m, "STOPPING=1");
            master_send_all(&m, SL_WORKER_CMD_QUIT, false);
        }
        if (sig_reload) {
            sig_reload = 0;
            if (m.state == MASTER_RUNNING) {
                master_notify(&m, "RELOADING=1");
                master_reload(&m);
                master_notify(&m, "READY=1");
            }
        }
        if (sig_reopen) {
            sig_reopen = 0;
            rc = sl_log_reopen();
            if (rc < 0) {
                sl_log(NULL, SL_LOG_ERR, rc, "reopening the log failed");
            } else {
                sl_log(NULL, SL_LOG_NOTICE, 0, "reopened log files");
            }
            for (size_t i = 0; i < m.nprocs; i++) {
                master_send(&m, &m.procs[i], SL_WORKER_CMD_REOPEN);
            }
        }
        if (sig_alarm) {
            sig_alarm = 0;
        }
        master_timers(&m);
        if (m.state != MASTER_RUNNING && m.nprocs == 0) {
            break;
        }
    }

    sl_log(NULL, SL_LOG_NOTICE, 0, "exit");
    if (m.nunsettled > 0) {
        master_settle_retry(&m);
    }
    if (m.nunsettled > 0) {
        sl_log(NULL, SL_LOG_ERR, 0,
               "exiting with the requests of %zu dead worker(s) not in the ledger: the storage "
               "could not take their rows",
               m.nunsettled);
    }
    unlink(m.conf->pid_file);
    sl_listen_close_all(&m.listeners);
    free(m.unsettled);
    free(m.procs);
    free(m.slots);
    sl_conf_destroy(m.conf);
    return 0;
}


int
sl_master_run_single(sl_conf_t *conf)
{
    sl_listen_set_t set = { NULL, 0 };
    sl_worker_ctx_t ctx;
    int fds[64];
    int rc;

    /* one process: the per-slot sockets collapse to one per address */
    conf->workers = 1;
    master_core_dumps(conf);
    if (master_shm_init(conf) < 0) {
        sl_log(NULL, SL_LOG_EMERG, 0, "setting up the shared memory segment failed");
        sl_conf_destroy(conf);
        return 1;
    }
    if (sl_listen_sync(&set, conf) < 0) {
        sl_conf_destroy(conf);
        return 1;
    }
    ctx.admin_fd = -1;
    ctx.nlisten = 0;
    for (size_t i = 0; i < set.n && ctx.nlisten < 64; i++) {
        if (set.items[i].admin) {
            ctx.admin_fd = sl_listen_fd_for_slot(&set.items[i], 0);
        } else {
            fds[ctx.nlisten++] = sl_listen_fd_for_slot(&set.items[i], 0);
        }
    }
    ctx.conf = conf;
    ctx.slot = 0;
    ctx.generation = 1;
    ctx.listen_fds = fds;
    ctx.ctl_fd = -1;
    rc = sl_worker_run(&ctx);
    sl_listen_close_all(&set);
    sl_conf_destroy(conf);
    return rc;
}
