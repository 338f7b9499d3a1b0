/*
 * The worker process: start-up in the order STYLE.md §6 gives, a libuv loop
 * serving clients, and the two ways out: drain (stop accepting, let requests
 * and streams finish, bounded by drain_timeout) and terminate (close all now).
 */
#include "core/process/worker.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "core/base/crypto.h"
#include "core/admin/admin.h"
#include "core/admin/alerts.h"
#include "core/admin/telemetry.h"
#include "core/base/errno.h"
#include "core/http/http_server.h"
#include "core/base/log.h"
#include "core/process/process.h"
#include "core/gateway/driver.h"
#include "core/gateway/settle.h"
#include "core/http/tls.h"
#include "core/http/upstream.h"
#include "storage/cache.h"
#include "storage/db.h"
#include "storage/vault.h"
#include "storage/ledger.h"
#include "storage/responses.h"

#define WORKER_DRAIN_POLL 50   /* ms between "all connections gone?" checks while draining */
#define WORKER_TRIM_EVERY 2000 /* ms between looks at the connection count (worker_on_trim) */
#define WORKER_TRIM_DROP  256  /* connections gone since the peak before free memory goes back */

typedef struct worker {
    const sl_worker_ctx_t *ctx;
    uv_loop_t loop;
    uv_pipe_t ctl;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_quit;
    uv_signal_t sig_hup;
    uv_signal_t sig_usr1;
    uv_timer_t drain_timer; /* deadline of the drain */
    uv_timer_t drain_poll;  /* notices when the last connection closed */
    sl_http_server_t *server;
    sl_http_server_t *admin_server; /* admin listener; NULL when none */
    sl_admin_t *admin;
    sl_alerts_t *alerts;
    sl_upstream_t *upstream;
    sl_telemetry_t *telemetry; /* trace export; NULL when off */
    sl_driver_t *driver;
    sl_db_t *db;
    uv_timer_t sync_timer; /* flushes LMDB to disk every storage.sync_interval */
    uv_work_t sync_work;
    bool syncing;
    uv_timer_t trim_timer;  /* hands free heap memory back after a load peak */
    size_t conn_peak;       /* most connections seen since the last trim */
    uv_timer_t prune_timer; /* ledger retention and cache expiry, slot 0 only */
    uv_work_t prune_work;
    size_t pruned;      /* rows the last batch deleted */
    size_t resp_pruned; /* stored responses the last batch deleted */
    bool pruning;
    uint64_t drain_started;
    bool has_ctl;
    bool draining;
    bool stopping; /* handles are being closed */
} worker_t;

static void worker_reset_signals(void);
static void worker_on_ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void worker_on_ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void worker_on_signal(uv_signal_t *h, int signo);
static size_t worker_connections(const worker_t *w);
static void worker_drain(worker_t *w, bool retire);
static void worker_terminate(worker_t *w);
static void worker_on_drain_deadline(uv_timer_t *t);
static void worker_on_drain_poll(uv_timer_t *t);
static void worker_stop(worker_t *w);
static void worker_close_walk(uv_handle_t *h, void *arg);
static uint64_t worker_sync_tick(const sl_worker_ctx_t *ctx);
static void worker_on_sync_timer(uv_timer_t *t);
static void worker_sync_work(uv_work_t *req);
static void worker_sync_done(uv_work_t *req, int status);
static void worker_on_trim(uv_timer_t *t);
static void worker_on_prune_timer(uv_timer_t *t);
static void worker_prune_work(uv_work_t *req);
static void worker_prune_done(uv_work_t *req, int status);


static void
worker_reset_signals(void)
{
    sigset_t set;
    struct sigaction sa;
    static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD, SIGALRM };

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
}


static void
worker_on_ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char cmd[16];

    (void) h;
    (void) suggested;
    buf->base = cmd;
    buf->len = sizeof(cmd);
}


static void
worker_on_ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    worker_t *w = s->data;

    if (nread < 0) {
        /* EOF: the master is gone; finish what we have and leave (HAProxy does the same) */
        if (nread != UV_EOF) {
            sl_log(NULL, SL_LOG_ERR, (int) nread, "read() from master channel failed");
        } else if (!w->draining) {
            sl_log(NULL, SL_LOG_WARN, 0, "master process went away, draining");
        }
        uv_read_stop(s);
        worker_drain(w, false);
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        switch (buf->base[i]) {
        case SL_WORKER_CMD_QUIT:
            worker_drain(w, false);
            break;
        case SL_WORKER_CMD_RETIRE:
            worker_drain(w, true);
            break;
        case SL_WORKER_CMD_TERMINATE:
            worker_terminate(w);
            return;
        case SL_WORKER_CMD_REOPEN: {
            int rc = sl_log_reopen();

            if (rc < 0) {
                sl_log(NULL, SL_LOG_ERR, rc, "reopening the log failed");
            }
            break;
        }
        default:
            sl_log(NULL, SL_LOG_WARN, 0, "unknown command 0x%02x from master",
                   (unsigned char) buf->base[i]);
            break;
        }
    }
}


static void
worker_on_signal(uv_signal_t *h, int signo)
{
    worker_t *w = h->data;

    switch (signo) {
    case SIGTERM:
    case SIGINT:
        worker_terminate(w);
        break;
    case SIGQUIT:
        worker_drain(w, false);
        break;
    case SIGUSR1:
        sl_log_reopen();
        break;
    default:
        /* SIGHUP goes to the master; a worker ignores it (e.g. a process-group HUP) */
        break;
    }
}


/* Open connections of the client and the admin listeners together. */
static size_t
worker_connections(const worker_t *w)
{
    size_t n = sl_http_server_connections(w->server);

    if (w->admin_server != NULL) {
        n += sl_http_server_connections(w->admin_server);
    }
    return n;
}


/*
 * Stops accepting and leaves once every connection is gone, or at
 * drain_timeout. retire (a reload) keeps idle keep-alive connections until
 * their clients use or close them; a stop gives them a short grace. A stop
 * that comes while retiring shortens that wait.
 */
static void
worker_drain(worker_t *w, bool retire)
{
    if (w->stopping) {
        return;
    }
    if (w->draining) {
        if (!retire) {
            sl_http_server_drain(w->server, false);
            if (w->admin_server != NULL) {
                sl_http_server_drain(w->admin_server, false);
            }
        }
        return;
    }
    w->draining = true;
    w->drain_started = uv_now(&w->loop);
    sl_log(NULL, SL_LOG_INFO, 0, "gracefully shutting down%s, %zu connections open",
           retire ? " (replaced by a reload)" : "", worker_connections(w));
    sl_http_server_drain(w->server, retire);
    if (w->admin_server != NULL) {
        sl_http_server_drain(w->admin_server, retire);
    }
    uv_timer_start(&w->drain_timer, worker_on_drain_deadline, w->ctx->conf->drain_timeout, 0);
    uv_timer_start(&w->drain_poll, worker_on_drain_poll, 0, WORKER_DRAIN_POLL);
}


static void
worker_on_drain_deadline(uv_timer_t *t)
{
    worker_t *w = t->data;
    size_t busy = sl_http_server_busy_connections(w->server);

    if (w->admin_server != NULL) {
        busy += sl_http_server_busy_connections(w->admin_server);
    }
    /* idle keep-alive connections kept for their clients are no news; cut requests are */
    sl_log(NULL, busy > 0 ? SL_LOG_WARN : SL_LOG_INFO, 0,
           "drain timeout, closing %zu connections (%zu with a request in progress)",
           worker_connections(w), busy);
    /* a stream cut here must not look complete: each gets an in-band error first */
    sl_driver_cut_streams(w->driver, "the gateway is shutting down and closed this stream "
                                     "(drain_timeout)");
    sl_http_server_close_all(w->server);
    if (w->admin_server != NULL) {
        sl_http_server_close_all(w->admin_server);
    }
}


static void
worker_on_drain_poll(uv_timer_t *t)
{
    worker_t *w = t->data;

    if (worker_connections(w) == 0) {
        worker_stop(w);
    }
}


static void
worker_terminate(worker_t *w)
{
    if (w->stopping) {
        return;
    }
    sl_http_server_drain(w->server, false);
    sl_http_server_close_all(w->server);
    if (w->admin_server != NULL) {
        sl_http_server_drain(w->admin_server, false);
        sl_http_server_close_all(w->admin_server);
    }
    w->draining = true;
    /* close callbacks of the client connections run on the next loop turn */
    uv_timer_start(&w->drain_poll, worker_on_drain_poll, 0, WORKER_DRAIN_POLL);
}


/* The sync timer's period: an eighth of storage.sync_interval, 1 ms at least. */
static uint64_t
worker_sync_tick(const sl_worker_ctx_t *ctx)
{
    uint64_t tick = ctx->conf->storage_sync_interval / 8;

    return tick > 0 ? tick : 1;
}


/*
 * Commits reach the page cache at once (MDB_NOSYNC); this puts them on disk
 * every storage.sync_interval (one worker's msync for all), in the thread
 * pool since fsync blocks. The timer ticks eight times per interval: a tick
 * makes the msync when the last one (any worker's) is an interval old, less
 * half a tick, and populates the pages past the map's used ones when the
 * commits took half of those populated before, or a whole-map msync
 * write-protected them (sl_db_prefault: a no-op otherwise), so fresh pages
 * fault on this loop for an eighth of an interval at most. The same
 * pass looks at the room left in the map (growing it, or entering or
 * leaving the full state), and then, back on the loop, writes the rows
 * that failed to commit before.
 */
static void
worker_on_sync_timer(uv_timer_t *t)
{
    worker_t *w = t->data;

    if (w->syncing || w->db == NULL) {
        return;
    }
    w->syncing = true;
    w->sync_work.data = w;
    if (uv_queue_work(&w->loop, &w->sync_work, worker_sync_work, worker_sync_done) < 0) {
        w->syncing = false;
    }
}


static void
worker_sync_work(uv_work_t *req)
{
    worker_t *w = req->data;

    /* one msync covers every worker's commits: the first worker due makes it */
    sl_db_sync_shared(w->db, w->ctx->conf->storage_sync_interval - worker_sync_tick(w->ctx) / 2);
    sl_db_check_room(w->db);
    sl_db_prefault(w->db);
}


static void
worker_sync_done(uv_work_t *req, int status)
{
    worker_t *w = req->data;

    (void) status;
    w->syncing = false;
    sl_settle_retry(w->db, w->ctx->conf);
}


/*
 * glibc keeps what a load peak freed: free chunks between live ones are not
 * returned, so a worker that once held 10,000 streams stays that large (and
 * grows with every peak, as fragmentation spreads). When the connection
 * count has fallen to half its peak or less, by at least WORKER_TRIM_DROP,
 * malloc_trim(0) gives the free pages back (madvise; the heap stays mapped).
 * It walks the free lists, so it runs only after such a drop, never per
 * request.
 */
static void
worker_on_trim(uv_timer_t *t)
{
    worker_t *w = t->data;
    size_t n = worker_connections(w);
    uint64_t t0;

    if (n >= w->conn_peak) {
        w->conn_peak = n;
        return;
    }
    if (w->conn_peak - n < WORKER_TRIM_DROP || n > w->conn_peak / 2) {
        return;
    }
    t0 = uv_hrtime();
    malloc_trim(0);
    sl_log(NULL, SL_LOG_INFO, 0,
           "%zu connections, down from %zu: free memory returned to the system in %llu us", n,
           w->conn_peak, (unsigned long long) ((uv_hrtime() - t0) / 1000));
    w->conn_peak = n;
}


#define WORKER_PRUNE_EVERY 60000 /* ms between retention passes */
#define WORKER_PRUNE_BATCH 500   /* rows per write transaction */

/*
 * Ledger retention: delete rows older than ledger.retention, in short
 * batches; and expired response cache entries.
 */
static void
worker_on_prune_timer(uv_timer_t *t)
{
    worker_t *w = t->data;

    if (w->pruning || w->db == NULL || w->stopping) {
        return;
    }
    w->pruning = true;
    w->prune_work.data = w;
    if (uv_queue_work(&w->loop, &w->prune_work, worker_prune_work, worker_prune_done) < 0) {
        w->pruning = false;
    }
}


static void
worker_prune_work(uv_work_t *req)
{
    worker_t *w = req->data;
    struct timespec ts;
    int64_t before;

    clock_gettime(CLOCK_REALTIME, &ts);
    before = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec
             - (int64_t) w->ctx->conf->ledger_retention * 1000000;
    w->pruned = 0;
    if (w->ctx->conf->ledger_retention > 0) {
        sl_ledger_prune(w->db, before, WORKER_PRUNE_BATCH, &w->pruned);
    }
    /* the response cache's expired entries go in the same pass (each read misses them anyway) */
    sl_cache_expire(w->db, (int64_t) ts.tv_sec, WORKER_PRUNE_BATCH, NULL);
    before = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec
             - (int64_t) w->ctx->conf->responses_retention * 1000000;
    w->resp_pruned = 0;
    sl_responses_prune(w->db, before, WORKER_PRUNE_BATCH, &w->resp_pruned);
}


static void
worker_prune_done(uv_work_t *req, int status)
{
    worker_t *w = req->data;

    (void) status;
    w->pruning = false;
    if (w->pruned > 0) {
        sl_log(NULL, SL_LOG_INFO, 0, "ledger retention removed %zu rows", w->pruned);
    }
    if (w->resp_pruned > 0) {
        sl_log(NULL, SL_LOG_INFO, 0, "responses retention removed %zu stored responses",
               w->resp_pruned);
    }
    if ((w->pruned == WORKER_PRUNE_BATCH || w->resp_pruned == WORKER_PRUNE_BATCH) && !w->stopping) {
        /* more to go: the next batch soon, letting requests write in between */
        uv_timer_start(&w->prune_timer, worker_on_prune_timer, 50, WORKER_PRUNE_EVERY);
    }
}


static void
worker_close_walk(uv_handle_t *h, void *arg)
{
    (void) arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}


/* Every client connection is gone: close our own handles so uv_run returns. */
static void
worker_stop(worker_t *w)
{
    if (w->stopping) {
        return;
    }
    w->stopping = true;
    uv_timer_stop(&w->drain_timer);
    uv_timer_stop(&w->drain_poll);
    uv_timer_stop(&w->sync_timer);
    uv_timer_stop(&w->prune_timer);
    uv_timer_stop(&w->trim_timer);
    uv_close((uv_handle_t *) &w->prune_timer, NULL);
    uv_close((uv_handle_t *) &w->trim_timer, NULL);
    uv_close((uv_handle_t *) &w->drain_timer, NULL);
    uv_close((uv_handle_t *) &w->drain_poll, NULL);
    uv_close((uv_handle_t *) &w->sync_timer, NULL);
    uv_close((uv_handle_t *) &w->sig_term, NULL);
    uv_close((uv_handle_t *) &w->sig_int, NULL);
    uv_close((uv_handle_t *) &w->sig_quit, NULL);
    uv_close((uv_handle_t *) &w->sig_hup, NULL);
    uv_close((uv_handle_t *) &w->sig_usr1, NULL);
    if (w->has_ctl) {
        uv_close((uv_handle_t *) &w->ctl, NULL);
    }
    sl_upstream_destroy(w->upstream);
    w->upstream = NULL;
    sl_alerts_stop(w->alerts);
    sl_telemetry_shutdown(w->telemetry);
}


int
sl_worker_run(const sl_worker_ctx_t *ctx)
{
    worker_t w;
    const sl_http_route_t *routes;
    size_t nroutes;
    int rc;
    int code = 0;

    /* 1. signals back to default, nothing blocked; no core file with this worker's secrets */
    worker_reset_signals();
    sl_log_set_worker((int) ctx->slot);
    if (sl_process_core_dumps(ctx->conf->core_dumps) < 0) {
        return 2;
    }
    /* 2. privileges: sluice runs as the user that started it (no user: key yet) */
    /* 3. other slots' fds were closed by the master right after fork */

    memset(&w, 0, sizeof(w));
    w.ctx = ctx;

    /* 4. a fresh loop */
    rc = uv_loop_init(&w.loop);
    if (rc < 0) {
        sl_log(NULL, SL_LOG_EMERG, rc, "uv_loop_init() failed");
        return 2;
    }
    /* 5. the LMDB environment (never opened in the master across a fork) */
    rc = sl_db_open(ctx->conf->storage_path, ctx->conf->storage_map_size,
                    ctx->conf->storage_init ? SL_DB_INIT : 0, &w.db);
    if (rc < 0) {
        code = 2;
        goto out_loop;
    }
    sl_db_set_reserve(w.db, sl_settle_reserve(ctx->conf));
    {
        char err[1024];

        /* vault plaintexts live only here: in this worker's private copy of the
         * generation (copy-on-write after fork), never in the master */
        rc = sl_vault_resolve_conf((sl_conf_t *) ctx->conf, w.db, true, err, sizeof(err));
        if (rc < 0) {
            sl_log(NULL, SL_LOG_EMERG, 0, "%s", err);
            code = 2;
            goto out_loop;
        }
    }
    /* 6. this process's own DRBGs, never ones cloned from the master */
    if (sl_tls_worker_init() < 0 || sl_crypto_init() < 0) {
        code = 2;
        goto out_loop;
    }
    /* 7. providers' per-worker state lives in the upstream client and adapters */
    w.upstream = sl_upstream_create(&w.loop, ctx->conf);
    if (w.upstream == NULL) {
        code = 2;
        goto out_loop;
    }
    w.telemetry = sl_telemetry_create(&w.loop, ctx->conf);
    w.driver = sl_driver_create(&w.loop, ctx->conf, w.upstream, w.db);
    if (w.driver == NULL) {
        code = 2;
        goto out_upstream;
    }
    w.alerts = sl_alerts_create(&w.loop, ctx->conf, w.db);
    routes = sl_driver_routes(&nroutes);
    w.server = sl_http_server_create(&w.loop, ctx->conf, routes, nroutes);
    if (w.server == NULL) {
        code = 2;
        goto out_driver;
    }
    for (size_t i = 0; i < ctx->nlisten; i++) {
        const sl_listen_tls_t *tls = i < ctx->conf->nlisten ? ctx->conf->listen[i].tls : NULL;

        rc = sl_http_server_listen_tls(w.server, ctx->listen_fds[i], tls);
        if (rc < 0) {
            sl_log(NULL, SL_LOG_EMERG, rc, "adopting listening socket %d failed",
                   ctx->listen_fds[i]);
            code = 2;
            goto out_server;
        }
    }
    if (ctx->admin_fd != -1) {
        /* the admin API shares this loop; --single has no master to reload */
        w.admin = sl_admin_create(&w.loop, ctx->conf, w.db, ctx->ctl_fd != -1);
        routes = sl_admin_routes(&nroutes);
        w.admin_server = sl_http_server_create(&w.loop, ctx->conf, routes, nroutes);
        if (w.admin == NULL || w.admin_server == NULL) {
            code = 2;
            goto out_server;
        }
        rc = sl_http_server_listen_tls(w.admin_server, ctx->admin_fd, ctx->conf->admin_listen->tls);
        if (rc < 0) {
            sl_log(NULL, SL_LOG_EMERG, rc, "adopting admin listening socket %d failed",
                   ctx->admin_fd);
            code = 2;
            goto out_server;
        }
    }

    uv_timer_init(&w.loop, &w.drain_timer);
    uv_timer_init(&w.loop, &w.drain_poll);
    uv_timer_init(&w.loop, &w.sync_timer);
    w.drain_timer.data = &w;
    w.drain_poll.data = &w;
    w.sync_timer.data = &w;
    uv_timer_start(&w.sync_timer, worker_on_sync_timer, worker_sync_tick(ctx),
                   worker_sync_tick(ctx));
    uv_timer_init(&w.loop, &w.trim_timer);
    w.trim_timer.data = &w;
    uv_timer_start(&w.trim_timer, worker_on_trim, WORKER_TRIM_EVERY, WORKER_TRIM_EVERY);
    uv_timer_init(&w.loop, &w.prune_timer);
    w.prune_timer.data = &w;
    if (ctx->slot == 0) {
        uv_timer_start(&w.prune_timer, worker_on_prune_timer, 10000, WORKER_PRUNE_EVERY);
    }
    uv_signal_init(&w.loop, &w.sig_term);
    uv_signal_init(&w.loop, &w.sig_int);
    uv_signal_init(&w.loop, &w.sig_quit);
    uv_signal_init(&w.loop, &w.sig_hup);
    uv_signal_init(&w.loop, &w.sig_usr1);
    w.sig_term.data = w.sig_int.data = w.sig_quit.data = w.sig_hup.data = w.sig_usr1.data = &w;
    uv_signal_start(&w.sig_term, worker_on_signal, SIGTERM);
    uv_signal_start(&w.sig_int, worker_on_signal, SIGINT);
    uv_signal_start(&w.sig_quit, worker_on_signal, SIGQUIT);
    uv_signal_start(&w.sig_hup, worker_on_signal, SIGHUP);
    uv_signal_start(&w.sig_usr1, worker_on_signal, SIGUSR1);
    if (ctx->ctl_fd != -1) {
        uv_pipe_init(&w.loop, &w.ctl, 0);
        rc = uv_pipe_open(&w.ctl, ctx->ctl_fd);
        if (rc < 0) {
            sl_log(NULL, SL_LOG_EMERG, rc, "uv_pipe_open() on master channel failed");
            uv_close((uv_handle_t *) &w.ctl, NULL);
        } else {
            w.has_ctl = true;
            w.ctl.data = &w;
            uv_read_start((uv_stream_t *) &w.ctl, worker_on_ctl_alloc, worker_on_ctl_read);
        }
    }

    sl_log(NULL, SL_LOG_INFO, 0, "worker started, generation %u", ctx->generation);
    sl_log_set_startup(false);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    sl_log(NULL, SL_LOG_INFO, 0, "worker exiting after %llu requests",
           (unsigned long long) sl_driver_requests(w.driver));

out_server:
    if (!w.stopping) {
        /* start-up failed half-way: close whatever exists */
        sl_http_server_close_all(w.server);
        if (w.admin_server != NULL) {
            sl_http_server_close_all(w.admin_server);
        }
        uv_walk(&w.loop, worker_close_walk, NULL);
        uv_run(&w.loop, UV_RUN_DEFAULT);
    }
    sl_http_server_destroy(w.admin_server);
    sl_admin_destroy(w.admin);
    sl_http_server_destroy(w.server);
out_driver:
    sl_driver_destroy(w.driver);
out_upstream:
    if (w.upstream != NULL) {
        sl_upstream_destroy(w.upstream);
        uv_run(&w.loop, UV_RUN_DEFAULT);
    }
    sl_telemetry_destroy(w.telemetry);
out_loop:
    sl_alerts_stop(w.alerts);
    uv_walk(&w.loop, worker_close_walk, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    sl_alerts_destroy(w.alerts);
    rc = uv_loop_close(&w.loop);
    if (rc < 0) {
        sl_log(NULL, SL_LOG_ALERT, rc, "uv_loop_close() failed: handles left open");
    }
    if (w.db != NULL) {
        sl_settle_exit(w.db, ctx->conf);
        /* what this worker committed reaches the disk before it goes */
        sl_db_sync(w.db);
        sl_db_close(w.db);
    }
    return code;
}
