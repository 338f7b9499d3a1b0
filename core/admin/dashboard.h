/*
 * The dashboard's files, built into the binary: core/admin/dashboard/ holds
 * the HTML, CSS and JavaScript (written for sluice, no framework, nothing
 * fetched from elsewhere); at build time embed.py turns them into C arrays,
 * each with a gzip copy and an ETag (a hash of its content), in the
 * generated dashboard_assets.c. index.html is served at /, the others at
 * /assets/NAME (favicon.svg also at /favicon.ico).
 */
#ifndef SL_CORE_ADMIN_DASHBOARD_H
#define SL_CORE_ADMIN_DASHBOARD_H

#include <stddef.h>

typedef struct sl_dash_asset {
    const char *path; /* "/" or "/assets/dashboard.js" */
    const char *type; /* Content-Type */
    const unsigned char *body;
    size_t len;
    const unsigned char *gzip; /* the same bytes, gzip-compressed */
    size_t gzip_len;
    const char *etag; /* quoted, e.g. "\"3f2a...\"" */
} sl_dash_asset_t;

/* The asset served at path[0..len), or NULL. Static data; any context. */
const sl_dash_asset_t *sl_dash_asset(const char *path, size_t len);

#endif
