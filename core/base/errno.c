/*
 * Names for sluice's own error codes, falling back to strerror() for -errno
 * values. Kept in a table indexed by code so the lookup is O(1).
 */
#include "core/base/errno.h"

#include <string.h>

static const char *const errno_names[] = {
    [0] = "no error",
    [-(SL_ECONF - SL_EBASE)] = "invalid configuration",
    [-(SL_EPARSE - SL_EBASE)] = "malformed input",
    [-(SL_ETOOBIG - SL_EBASE)] = "size limit exceeded",
    [-(SL_ETIMEOUT - SL_EBASE)] = "timed out",
    [-(SL_ETLS - SL_EBASE)] = "TLS failure",
    [-(SL_ECERT - SL_EBASE)] = "certificate verification failed",
    [-(SL_EUPSTREAM - SL_EBASE)] = "invalid upstream response",
    [-(SL_ECLOSED - SL_EBASE)] = "connection closed by peer",
    [-(SL_ENOTFOUND - SL_EBASE)] = "not found",
    [-(SL_ESTORE - SL_EBASE)] = "storage failure",
    [-(SL_EAUTH - SL_EBASE)] = "authentication failed",
    [-(SL_EDENIED - SL_EBASE)] = "permission denied",
    [-(SL_ESECRET - SL_EBASE)] = "secret reference could not be resolved",
    [-(SL_ECANCELED - SL_EBASE)] = "operation canceled",
    [-(SL_EPOOL - SL_EBASE)] = "connection pool exhausted",
    [-(SL_ERESOLVE - SL_EBASE)] = "name resolution failed",
    [-(SL_EFULL - SL_EBASE)] = "storage is full",
    [-(SL_ECORRUPT - SL_EBASE)] = "storage is damaged",
};


const char *
sl_strerror(int rc)
{
    if (rc == 0) {
        return errno_names[0];
    }
    if (rc < SL_EBASE && rc > SL_ELAST) {
        return errno_names[-(rc - SL_EBASE)];
    }
    if (rc < 0 && rc > -4096) {
        return strerror(-rc);
    }
    return "unknown error";
}
