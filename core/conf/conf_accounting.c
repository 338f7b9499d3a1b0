/*
 * The configuration of the money path: pricing: (one file or a list, loaded
 * into the generation pool), unpriced: (allow or reject requests to targets
 * the table has no price for) and budgets: (how large a budget reservation
 * may get). ledger: itself is read with storage: in conf_server.c.
 */
#include "core/conf/conf_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/base/errno.h"
#include "core/gateway/pricing.h"

#define CONF_PRICING_FILES_MAX 64
#define CONF_OUTPUT_MAX        10000000ULL /* tokens */

static int conf_parse_unpriced(sl_conf_ctx_t *cx, const sl_conf_node_t *root);
static int conf_parse_budgets(sl_conf_ctx_t *cx, const sl_conf_node_t *map);
static int conf_pricing_error(sl_conf_ctx_t *cx, const sl_conf_node_t *n, int rc, const char *err);


void
sl__conf_accounting_defaults(sl_conf_t *conf)
{
    conf->unpriced_reject = false;
    conf->budget_max_reservation = 0;
    conf->budget_max_reservation_permille = 100;
    conf->budget_default_output = SL_BUDGET_DEFAULT_OUTPUT;
}


/*
 * Loads the tables `pricing:` names into the generation pool, so a reload
 * swaps prices together with everything else. An unreadable file is
 * reported at the `pricing:` line (or the list item); the table's own
 * errors keep their file:line:col, which point into the pricing file.
 */
int
sl__conf_parse_pricing(sl_conf_ctx_t *cx, const sl_conf_node_t *n)
{
    const sl_conf_node_t *item;
    const char **files;
    sl_pricing_t *pricing;
    char err[1024];
    size_t nfiles;
    int rc;

    if (sl__conf_is_seq(n)) {
        nfiles = sl__conf_seq_len(n);
        if (nfiles == 0 || nfiles > CONF_PRICING_FILES_MAX) {
            return sl_conf_errorf(cx, n, "pricing must list 1 to %d files", CONF_PRICING_FILES_MAX);
        }
    } else {
        nfiles = 1;
    }
    files = sl_pcalloc(cx->pool, nfiles * sizeof(*files));
    for (size_t i = 0; i < nfiles; i++) {
        item = sl__conf_is_seq(n) ? sl__conf_seq_item(cx, n, i) : n;
        if (sl__conf_nonempty(cx, item, "pricing", &files[i]) != 0) {
            return SL_ECONF;
        }
    }
    cx->conf->pricing_file = files[0];
    cx->conf->pricing_files = files;
    cx->conf->npricing_files = nfiles;

    rc = sl_pricing_load_files(files, nfiles, cx->pool, &pricing, err, sizeof(err));
    if (rc == 0) {
        cx->conf->pricing = pricing;
        return 0;
    }
    if (rc != SL_ECONF) {
        /* which file: the message starts with its path */
        for (size_t i = 0; i < nfiles && sl__conf_is_seq(n); i++) {
            size_t len = strlen(files[i]);

            if (strncmp(err, files[i], len) == 0 && err[len] == ':') {
                return conf_pricing_error(cx, sl__conf_seq_item(cx, n, i), rc, err);
            }
        }
    }
    return conf_pricing_error(cx, n, rc, err);
}


static int
conf_pricing_error(sl_conf_ctx_t *cx, const sl_conf_node_t *n, int rc, const char *err)
{
    if (rc != SL_ECONF) {
        return sl_conf_errorf(cx, n, "cannot load pricing: %s", err);
    }
    if (!cx->failed) {
        cx->failed = true;
        if (cx->err != NULL && cx->errlen > 0) {
            snprintf(cx->err, cx->errlen, "%s", err);
        }
    }
    return SL_ECONF;
}


int
sl__conf_parse_accounting(sl_conf_ctx_t *cx, const sl_conf_node_t *root)
{
    const sl_conf_node_t *n;

    if (conf_parse_unpriced(cx, root) != 0) {
        return SL_ECONF;
    }
    if (sl__conf_section(cx, root, "budgets", &n) != 0 || conf_parse_budgets(cx, n) != 0) {
        return SL_ECONF;
    }
    return 0;
}


/* unpriced: allow | reject */
static int
conf_parse_unpriced(sl_conf_ctx_t *cx, const sl_conf_node_t *root)
{
    const sl_conf_node_t *n = root != NULL ? sl_conf_get(cx, root, "unpriced") : NULL;
    const char *s;

    if (n == NULL) {
        return 0;
    }
    if (sl__conf_scalar(cx, n, "unpriced", &s) != 0) {
        return SL_ECONF;
    }
    if (strcmp(s, "allow") == 0) {
        cx->conf->unpriced_reject = false;
    } else if (strcmp(s, "reject") == 0) {
        cx->conf->unpriced_reject = true;
    } else {
        return sl_conf_errorf(cx, n, "invalid unpriced \"%s\" (use allow or reject)", s);
    }
    return 0;
}


/* budgets: {max_reservation: USD | N%, default_output_tokens: N} */
static int
conf_parse_budgets(sl_conf_ctx_t *cx, const sl_conf_node_t *map)
{
    const sl_conf_node_t *n;
    uint64_t micro, v;
    unsigned permille;
    const char *s;

    if (map == NULL) {
        return 0;
    }
    n = sl_conf_get(cx, map, "max_reservation");
    if (n != NULL) {
        if (sl__conf_scalar(cx, n, "max_reservation", &s) != 0) {
            return SL_ECONF;
        }
        if (strchr(s, '%') != NULL) {
            if (sl_conf_parse_share(s, &permille) != 0) {
                return sl_conf_errorf(cx, n,
                                      "invalid max_reservation \"%s\" (a share of the budget, "
                                      "0%% to 100%% with one decimal at most, or USD like 0.50)",
                                      s);
            }
            cx->conf->budget_max_reservation = 0;
            cx->conf->budget_max_reservation_permille = permille;
        } else {
            if (sl_pricing_parse_usd(s, &micro) != 0) {
                return sl_conf_errorf(cx, n,
                                      "invalid max_reservation \"%s\" (USD with at most 6 "
                                      "decimals like 0.50, or a share of the budget like 10%%)",
                                      s);
            }
            cx->conf->budget_max_reservation = micro * 1000;
            cx->conf->budget_max_reservation_permille = 0;
        }
    }
    v = cx->conf->budget_default_output;
    if (sl_conf_get_uint(cx, map, "default_output_tokens", 1, CONF_OUTPUT_MAX, &v) != 0) {
        return SL_ECONF;
    }
    cx->conf->budget_default_output = v;
    return sl_conf_check_unknown(cx, map, "budgets");
}
