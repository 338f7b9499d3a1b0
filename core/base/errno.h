/*
 * Error codes. Every function that does something returns 0 on success or a
 * negative code: either -errno (libuv codes are already of that form and may
 * pass through) or one of the SL_E* codes below, which live in -39999..-39000
 * so they never collide with an errno. sl_strerror() names both kinds.
 */
#ifndef SL_CORE_BASE_ERRNO_H
#define SL_CORE_BASE_ERRNO_H

#define SL_OK       0
#define SL_DECLINED 1 /* provider dispatch only: "not mine" */
#define SL_ASYNC    2 /* provider dispatch only: finishes later through a callback */

#define SL_EBASE     (-39000)
#define SL_ECONF     (-39001) /* invalid configuration */
#define SL_EPARSE    (-39002) /* malformed input (HTTP, JSON, SSE) */
#define SL_ETOOBIG   (-39003) /* a size limit was exceeded */
#define SL_ETIMEOUT  (-39004) /* a deadline passed */
#define SL_ETLS      (-39005) /* TLS handshake or record failure */
#define SL_ECERT     (-39006) /* certificate verification failed */
#define SL_EUPSTREAM (-39007) /* upstream sent something we cannot use */
#define SL_ECLOSED   (-39008) /* the peer closed the connection */
#define SL_ENOTFOUND (-39009) /* no such record / route / key */
#define SL_ESTORE    (-39010) /* storage failure (details logged where it happened) */
#define SL_EAUTH     (-39011) /* authentication failed */
#define SL_EDENIED   (-39012) /* authenticated but not allowed */
#define SL_ESECRET   (-39013) /* a secret reference could not be resolved */
#define SL_ECANCELED (-39014) /* the operation was cancelled by its owner */
#define SL_EPOOL     (-39015) /* connection pool is full */
#define SL_ERESOLVE  (-39016) /* DNS resolution failed */
#define SL_EFULL     (-39017) /* storage is full: map at its limit or no disk space to back it */
#define SL_ECORRUPT  (-39018) /* storage file is damaged (details logged where it was found) */
#define SL_ELAST     (-39019)

/*
 * Returns a static, human-readable description of rc (an -errno value, a
 * libuv code or an SL_E* code). Never returns NULL. Any process context.
 */
const char *sl_strerror(int rc);

#endif
