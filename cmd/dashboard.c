/*
 * sluice dashboard: prints a one-time login link to the dashboard on the
 * admin listener, as Jupyter does. The link's token is stored (hashed) in
 * the storage, where every worker finds it; the first one to get the link
 * exchanges it for an HttpOnly session cookie and deletes it. It expires
 * after dashboard.link_ttl.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/gateway/state.h"
#include "storage/sessions.h"

#define DASH_PROG "sluice dashboard"

static void dash_help(FILE *f);
static void dash_base(const sl_conf_t *conf, char *out, size_t size);


static void
dash_help(FILE *f)
{
    fprintf(f,
            "usage: sluice dashboard [-c FILE] [--base-url URL]\n"
            "\n"
            "Prints a link that opens the dashboard (server.admin_listen) logged in. It\n"
            "works once, within dashboard.link_ttl (10 minutes by default); the login lasts\n"
            "dashboard.session_ttl. --base-url replaces http://ADMIN_LISTEN in the link, for\n"
            "a gateway reached through another name or a proxy.\n"
            "\n"
            "  -c FILE   configuration file (default %s)\n",
            SL_CLI_DEFAULT_CONF);
}


/* http(s)://host:port of the admin listener; a wildcard address becomes the loopback. */
static void
dash_base(const sl_conf_t *conf, char *out, size_t size)
{
    const sl_listen_conf_t *l = conf->admin_listen;
    const char *scheme = l->tls != NULL ? "https" : "http";
    char ip[INET6_ADDRSTRLEN];

    if (l->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) &l->addr;

        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) {
            snprintf(ip, sizeof(ip), "::1");
        } else {
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        }
        snprintf(out, size, "%s://[%s]:%u", scheme, ip, (unsigned) ntohs(a->sin6_port));
        return;
    }
    {
        const struct sockaddr_in *a = (const struct sockaddr_in *) &l->addr;

        if (a->sin_addr.s_addr == htonl(INADDR_ANY)) {
            snprintf(ip, sizeof(ip), "127.0.0.1");
        } else {
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        }
        snprintf(out, size, "%s://%s:%u", scheme, ip, (unsigned) ntohs(a->sin_port));
    }
}


int
sl_cmd_dashboard(int argc, char **argv)
{
    const char *conf_file = SL_CLI_DEFAULT_CONF, *base_url = NULL, *v;
    char token[SL_SESSION_TOKEN_LEN + 1], base[128];
    sl_conf_t *conf;
    sl_db_t *db;
    size_t blen;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (sl_cli_is_help(argv[i])) {
            dash_help(stdout);
            return SL_CLI_OK;
        }
        if ((rc = sl_cli_opt(DASH_PROG, argc, argv, &i, "-c", &v)) != 0
            || (rc = sl_cli_opt(DASH_PROG, argc, argv, &i, "--config", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            conf_file = v;
        } else if ((rc = sl_cli_opt(DASH_PROG, argc, argv, &i, "--base-url", &v)) != 0) {
            if (rc < 0) {
                return SL_CLI_USAGE;
            }
            base_url = v;
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", DASH_PROG, argv[i]);
            dash_help(stderr);
            return SL_CLI_USAGE;
        }
    }
    if (base_url != NULL && strncmp(base_url, "http://", 7) != 0
        && strncmp(base_url, "https://", 8) != 0) {
        fprintf(stderr, "%s: --base-url must start with http:// or https://\n", DASH_PROG);
        return SL_CLI_USAGE;
    }
    if (sl_cli_open_db(DASH_PROG, conf_file, 0, &db, &conf) != 0) {
        return SL_CLI_FAIL;
    }
    if (conf->admin_listen == NULL || !conf->dashboard.enabled) {
        fprintf(stderr, "%s: %s\n", DASH_PROG,
                conf->admin_listen == NULL
                    ? "the dashboard is served on server.admin_listen, which is not set"
                    : "the dashboard is off (dashboard.enabled: false)");
        sl_db_close(db);
        sl_conf_destroy(conf);
        return SL_CLI_FAIL;
    }
    rc = sl_sessions_link_create(db, (int64_t) sl_state_now(), (int64_t) conf->dashboard.link_ttl,
                                 token);
    sl_db_close(db);
    if (rc < 0) {
        fprintf(stderr, "%s: the login link could not be stored: %s\n", DASH_PROG, sl_strerror(rc));
        sl_conf_destroy(conf);
        return SL_CLI_FAIL;
    }
    if (base_url != NULL) {
        blen = strlen(base_url);
        while (blen > 0 && base_url[blen - 1] == '/') {
            blen--;
        }
        snprintf(base, sizeof(base), "%.*s", (int) blen, base_url);
    } else {
        dash_base(conf, base, sizeof(base));
    }
    fprintf(stderr, "Open this link within %llu minute(s); it logs in once:\n",
            (unsigned long long) ((conf->dashboard.link_ttl + 59999) / 60000));
    printf("%s/login?token=%s\n", base, token);
    fflush(stdout);
    sl_crypto_wipe(token, sizeof(token));
    sl_conf_destroy(conf);
    return SL_CLI_OK;
}
