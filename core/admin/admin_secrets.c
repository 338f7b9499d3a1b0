/*
 * /admin/secrets: the vault, write-only. A list gives names and dates, as
 * `sluice secrets list --json`; PUT seals a value under a name with the
 * master key this worker runs with, and wipes every copy of the value it
 * made; DELETE removes one. A worker that has no usable master key answers
 * 503, and says why.
 */
#include "core/admin/admin_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/base/crypto.h"
#include "core/base/errno.h"
#include "core/base/log.h"
#include "storage/ledger.h"
#include "storage/vault.h"

static bool admin_vault_usable(sl_http_req_t *r);
static int admin_secrets_list_cb(void *arg, const sl_vault_entry_t *e);


/* The vault handle exists (a master key that was given could be used); else 503. */
static bool
admin_vault_usable(sl_http_req_t *r)
{
    if (sl__admin_vault() == NULL) {
        sl__admin_error(r, 503, "vault_unavailable", NULL,
                        "The vault master key given to sluice cannot be used; see its error log.");
        return false;
    }
    return true;
}


void
sl__admin_secrets_list(sl_http_req_t *r)
{
    json_t *data;
    sl_txn_t *t;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r) || !admin_vault_usable(r)) {
        return;
    }
    data = json_array();
    if (data == NULL) {
        sl__admin_send(r, 500, NULL);
        return;
    }
    rc = sl_db_read(sl__admin_db(), &t);
    if (rc == 0) {
        rc = sl_vault_list(sl__admin_vault(), t, admin_secrets_list_cb, data);
        sl_db_abort(t);
    }
    if (rc < 0) {
        json_decref(data);
        sl__admin_store_error(r);
        return;
    }
    sl__admin_send_list(r, data);
}


/* Names and dates, as `sluice secrets list --json`; there is no way to read a value. */
static int
admin_secrets_list_cb(void *arg, const sl_vault_entry_t *e)
{
    char created[32], updated[32];
    json_t *j;

    sl_ledger_format_time(e->created, created, sizeof(created));
    sl_ledger_format_time(e->updated, updated, sizeof(updated));
    j = json_pack("{s:s, s:s, s:s}", "name", e->name, "created", created, "updated", updated);
    if (j == NULL || json_array_append_new(arg, j) != 0) {
        return -ENOMEM;
    }
    return 0;
}


/* PUT /admin/secrets/{name} {"value": "..."}: 204. The value is wiped from our copies. */
void
sl__admin_secret_put(sl_http_req_t *r)
{
    const char *field;
    sl_str_t rest;
    json_t *body, *v, *value = NULL;
    char *name;
    size_t len = 0;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    name = sl__admin_path_name(r, sizeof(ADMIN_SECRETS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0 || !sl_vault_name_valid(name)) {
        sl__admin_bad(r, NULL,
                      "Invalid secret name: use 1 to %d letters, digits, '.', '_' or '-', starting "
                      "with a letter or digit.",
                      SL_VAULT_NAME_MAX);
        return;
    }
    body = sl__admin_body(r);
    if (body == NULL) {
        return;
    }
    json_object_foreach(body, field, v)
    {
        if (strcmp(field, "value") != 0) {
            sl__admin_unknown_field(r, field, "field");
            goto out_body;
        }
        value = v;
    }
    if (value == NULL || !json_is_string(value) || json_string_length(value) == 0
        || json_string_length(value) > SL_VAULT_VALUE_MAX) {
        sl__admin_bad(r, "value", "value must be a string of 1 to %d bytes.", SL_VAULT_VALUE_MAX);
        goto out_body;
    }
    len = json_string_length(value);
    if (!admin_vault_usable(r)) {
        goto out_body;
    }
    if (!sl_vault_has_key(sl__admin_vault())) {
        sl__admin_error(
            r, 503, "vault_unavailable", NULL,
            "No vault master key: start sluice with SLUICE_MASTER_KEY (64 hex digits or "
            "base64 of 32 bytes) or SLUICE_MASTER_KEY_FILE in its environment.");
        goto out_body;
    }
    rc = sl_vault_set(sl__admin_vault(), name, json_string_value(value), len, (int64_t) time(NULL));
    switch (rc) {
    case 0:
        sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: secret %s stored from %s", name, r->client_addr);
        sl_http_respond(r, 204, NULL, 0, NULL, 0);
        break;
    case -EINVAL:
        sl__admin_bad(r, "value", "value must be a string of 1 to %d bytes.", SL_VAULT_VALUE_MAX);
        break;
    case SL_EAUTH:
        sl__admin_error(r, 503, "vault_unavailable", NULL,
                        "The master key sluice runs with does not match the vault.");
        break;
    case SL_ESECRET:
        sl__admin_error(r, 503, "vault_unavailable", NULL, "No vault master key.");
        break;
    default:
        sl__admin_store_error(r);
        break;
    }

out_body:
    if (value != NULL && json_is_string(value)) {
        sl_crypto_wipe((char *) json_string_value(value), json_string_length(value));
    }
    json_decref(body);
}


void
sl__admin_secret_delete(sl_http_req_t *r)
{
    sl_str_t rest;
    char *name;
    int rc;

    if (!sl__admin_auth(r) || !sl__admin_has_db(r)) {
        return;
    }
    name = sl__admin_path_name(r, sizeof(ADMIN_SECRETS_PREFIX) - 1, &rest);
    if (name == NULL || rest.len > 0) {
        sl__admin_error(r, 404, "not_found", NULL, "No such secret.");
        return;
    }
    if (!admin_vault_usable(r)) {
        return;
    }
    rc = sl_vault_rm(sl__admin_vault(), name);
    if (rc == SL_ENOTFOUND) {
        sl__admin_error(r, 404, "not_found", NULL, "No secret \"%s\".", name);
        return;
    }
    if (rc < 0) {
        sl__admin_store_error(r);
        return;
    }
    sl_log(&r->log, SL_LOG_NOTICE, 0, "admin: secret %s removed from %s", name, r->client_addr);
    sl_http_respond(r, 204, NULL, 0, NULL, 0);
}
