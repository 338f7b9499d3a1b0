/*
 * libFuzzer target for the configuration loader (core/conf.c, libyaml
 * behind it, and every adapter's conf_parse hook through the real provider
 * registry): the input is written to a file and loaded as sluice.yaml is,
 * then destroyed. Secrets resolve from two variables the target sets.
 *
 * Beyond "no crash, no sanitizer report, no leak" it checks the loader's
 * promises: a failure returns SL_ECONF or -errno with exactly one line of
 * message saying where, and never quotes a secret's value
 * (unless the input itself holds that text); a success yields a
 * configuration whose every model has targets naming a configured
 * provider, whose providers have an adapter, a host and a port, and whose
 * listen addresses are set.
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false \
 *       -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz test/fuzz/fuzz_conf
 *   build-fuzz/test/fuzz/fuzz_conf -max_total_time=60 -dict=test/fuzz/conf.dict
 * test/fuzz/corpus/conf or everything at once: scripts/fuzz.
 */
#define _GNU_SOURCE /* memmem */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf/conf.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "providers/registry.h"

#define FUZZ_SECRET  "sk-fuzz-secret-3f9a0c"
#define FUZZ_SECRET2 "mk-fuzz-other-77d1e2"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok, const char *what);
static void fuzz_init(void);
static void fuzz_cleanup(void);
static void fuzz_check_conf(const sl_conf_t *conf);

static char fuzz_path[64];


static void
fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_conf: check failed: %s\n", what);
        abort();
    }
}


static void
fuzz_cleanup(void)
{
    unlink(fuzz_path);
}


static void
fuzz_init(void)
{
    int fd;

    sl_log_open("stderr", SL_LOG_CRIT);
    snprintf(fuzz_path, sizeof(fuzz_path), "/tmp/sl-fuzz-conf-XXXXXX");
    fd = mkstemp(fuzz_path);
    fuzz_check(fd >= 0, "mkstemp");
    close(fd);
    setenv("FUZZ_KEY", FUZZ_SECRET, 1);
    setenv("SLUICE_KEY", FUZZ_SECRET2, 1);
    atexit(fuzz_cleanup);
}


static void
fuzz_check_conf(const sl_conf_t *conf)
{
    fuzz_check(conf->pool != NULL, "no generation pool");
    fuzz_check(conf->nlisten > 0 && conf->listen != NULL, "no listen address");
    fuzz_check(conf->workers >= 1, "no workers");
    fuzz_check(conf->pid_file != NULL && conf->error_log != NULL, "no pid file or error log");
    fuzz_check(conf->storage_path != NULL, "no storage path");
    for (size_t i = 0; i < conf->nproviders; i++) {
        const sl_provider_conf_t *p = &conf->providers[i];

        fuzz_check(p->name != NULL && p->ops != NULL && p->kind != NULL, "provider incomplete");
        fuzz_check(p->host != NULL && p->host[0] != '\0' && p->port != 0, "provider without host");
        fuzz_check(p->base_path != NULL && p->host_header != NULL, "provider without paths");
        fuzz_check(sl_conf_provider(conf, p->name, strlen(p->name)) == p,
                   "provider lookup by name");
    }
    for (size_t i = 0; i < conf->nmodels; i++) {
        const sl_model_conf_t *m = &conf->models[i];

        fuzz_check(m->ntargets > 0, "model without targets");
        fuzz_check(sl_conf_model(conf, m->name, strlen(m->name)) == m, "model lookup by name");
        for (size_t k = 0; k < m->ntargets; k++) {
            const sl_target_t *t = &m->targets[k];
            int found = 0;

            for (size_t j = 0; j < conf->nproviders; j++) {
                found |= t->provider == &conf->providers[j];
            }
            fuzz_check(found, "a target's provider is not configured");
            fuzz_check(t->model != NULL && t->model[0] != '\0', "target without model");
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    sl_conf_t *conf = NULL;
    FILE *f;
    int rc;

    if (fuzz_path[0] == '\0') {
        fuzz_init();
    }
    f = fopen(fuzz_path, "w");
    fuzz_check(f != NULL, "fopen");
    fuzz_check(fwrite(data, 1, size, f) == size, "fwrite");
    fuzz_check(fclose(f) == 0, "fclose");

    memset(err, 'x', sizeof(err));
    rc = sl_conf_load_with(fuzz_path, sl_provider_find, &conf, err, sizeof(err));
    if (rc == 0) {
        fuzz_check(conf != NULL, "success without a configuration");
        fuzz_check_conf(conf);
        sl_conf_destroy(conf);
        return 0;
    }
    fuzz_check(conf == NULL, "a configuration returned with an error");
    fuzz_check(rc == SL_ECONF || (rc < 0 && rc > -4096), "unexpected return code");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "message not NUL-terminated");
    /* "file:line:col: what" of this file, or of the pricing file it names */
    fuzz_check(err[0] != '\0' && strchr(err, ':') != NULL, "message without a place");
    fuzz_check(strchr(err, '\n') == NULL, "message of more than one line");
    if (memmem(data, size, FUZZ_SECRET, strlen(FUZZ_SECRET)) == NULL) {
        fuzz_check(strstr(err, FUZZ_SECRET) == NULL, "a secret in the message");
    }
    if (memmem(data, size, FUZZ_SECRET2, strlen(FUZZ_SECRET2)) == NULL) {
        fuzz_check(strstr(err, FUZZ_SECRET2) == NULL, "a secret in the message");
    }
    return 0;
}
