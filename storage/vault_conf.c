/*
 * Resolving vault: references of a configuration. Kept out of conf.c so the
 * YAML loader does not depend on the storage layer: only the commands and
 * processes that need the plaintext (a worker) or proof that it resolves
 * (the master before forking a generation, `sluice check`) pay for an LMDB
 * environment.
 */
#include "storage/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/errno.h"
#include "storage/db.h"

typedef struct vault_ref_walk {
    sl_secret_t **refs;
    size_t n;
    size_t cap;
} vault_ref_walk_t;

static void vault_conf_collect(sl_conf_t *conf, vault_ref_walk_t *w);
static void vault_conf_add(vault_ref_walk_t *w, sl_secret_t *s);


static void
vault_conf_add(vault_ref_walk_t *w, sl_secret_t *s)
{
    if (!s->vault) {
        return;
    }
    if (w->n == w->cap) {
        w->cap = w->cap == 0 ? 8 : w->cap * 2;
        w->refs = sl_xrealloc(w->refs, w->cap * sizeof(*w->refs));
    }
    w->refs[w->n++] = s;
}


static void
vault_conf_collect(sl_conf_t *conf, vault_ref_walk_t *w)
{
    /* every credential of a provider; api_key is a copy of api_keys[0], synced after */
    for (size_t i = 0; i < conf->nproviders; i++) {
        for (size_t k = 0; k < conf->providers[i].napi_keys; k++) {
            vault_conf_add(w, &conf->providers[i].api_keys[k]);
        }
    }
    for (size_t i = 0; i < conf->nstatic_keys; i++) {
        vault_conf_add(w, &conf->static_keys[i]);
    }
    vault_conf_add(w, &conf->admin_key);
    vault_conf_add(w, &conf->alerts.webhook);
}


int
sl_vault_resolve_conf(sl_conf_t *conf, sl_db_t *db, bool keep, char *err, size_t errlen)
{
    vault_ref_walk_t w = { NULL, 0, 0 };
    sl_db_t *own = NULL;
    sl_vault_t *v = NULL;
    sl_txn_t *t = NULL;
    sl_pool_t *tmp = NULL;
    int rc = 0;

    vault_conf_collect(conf, &w);
    if (w.n == 0) {
        return 0;
    }
    if (db == NULL) {
        rc = sl_db_open(conf->storage_path, conf->storage_map_size, 0, &own);
        if (rc < 0) {
            snprintf(err, errlen, "%s: %s needs the vault in \"%s\", which cannot be opened (%s)",
                     w.refs[0]->where, w.refs[0]->ref, conf->storage_path, sl_strerror(rc));
            rc = SL_ESECRET;
            goto out;
        }
        db = own;
    }
    rc = sl_vault_open(db, conf->storage_master_key_file, &v);
    if (rc < 0 || !sl_vault_has_key(v)) {
        snprintf(err, errlen,
                 "%s: %s needs the vault master key: set %s or storage.master_key_file (%s)",
                 w.refs[0]->where, w.refs[0]->ref, SL_VAULT_KEY_ENV,
                 rc < 0 ? sl_strerror(rc) : "none given");
        rc = SL_ESECRET;
        goto out;
    }
    rc = sl_db_read(db, &t);
    if (rc < 0) {
        snprintf(err, errlen, "%s: reading the vault failed (%s)", w.refs[0]->where,
                 sl_strerror(rc));
        rc = SL_ESECRET;
        goto out;
    }
    tmp = sl_pool_create(0);
    for (size_t i = 0; i < w.n; i++) {
        sl_secret_t *s = w.refs[i];
        sl_str_t value;
        const char *name = s->ref + 6;

        /* keep: the generation pool holds it (wiped with it); else a scratch pool */
        rc = sl_vault_get(v, t, name, keep ? conf->pool : tmp, &value);
        if (rc < 0) {
            snprintf(err, errlen, "%s: %s: %s", s->where, s->ref,
                     rc == SL_ENOTFOUND ? "no such secret in the vault (sluice secrets set)"
                     : rc == SL_EAUTH   ? "the master key does not match the vault"
                                        : "the secret cannot be opened");
            rc = SL_ESECRET;
            goto out;
        }
        if (keep) {
            s->value = value.p;
            s->len = value.len;
        }
    }
    if (keep) {
        for (size_t i = 0; i < conf->nproviders; i++) {
            if (conf->providers[i].napi_keys > 0) {
                conf->providers[i].api_key = conf->providers[i].api_keys[0];
            }
        }
    }
    rc = 0;

out:
    if (t != NULL) {
        sl_db_abort(t);
    }
    /* the scratch pool wipes every plaintext it held */
    sl_pool_destroy(tmp);
    sl_vault_close(v);
    sl_db_close(own);
    free(w.refs);
    return rc;
}
