/*
 * The responses: section: whether POST /v1/responses keeps what clients
 * ask it to store (store: true, OpenAI's default), for how long, and up to
 * what size (storage/responses.h keeps them).
 */
#include "core/conf/conf_internal.h"

#include <stddef.h>

#include "core/base/errno.h"

#define CONF_RESPONSES_RETENTION (30ull * 24 * 3600 * 1000) /* OpenAI keeps them 30 days */
#define CONF_RESPONSES_MAX_SIZE  (16 * CONF_MIB)

static const conf_field_t conf_responses_fields[] = {
    { "store", CONF_BOOL, offsetof(sl_conf_t, responses_store), 0, 0 },
    { "retention", CONF_MSEC, offsetof(sl_conf_t, responses_retention), 1000, CONF_MS_MAX },
    { "max_size", CONF_SIZE, offsetof(sl_conf_t, responses_max_size), CONF_KIB, CONF_GIB },
    { NULL, CONF_BOOL, 0, 0, 0 },
};


int
sl__conf_parse_responses(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    cx->conf->responses_store = true;
    cx->conf->responses_retention = CONF_RESPONSES_RETENTION;
    cx->conf->responses_max_size = CONF_RESPONSES_MAX_SIZE;
    if (map == NULL) {
        return 0;
    }
    if (sl__conf_read_fields(cx, map, conf_responses_fields, cx->conf) != 0) {
        return SL_ECONF;
    }
    return sl_conf_check_unknown(cx, map, "responses");
}
