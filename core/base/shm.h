/*
 * The one shared-memory segment of a sluice instance. The master maps it
 * (MAP_SHARED | MAP_ANONYMOUS) once, before it forks the first worker, and
 * keeps it for its whole life: every worker of every generation inherits
 * the same mapping, so what modules keep there (rate-limit windows,
 * metrics, breakers, latency estimates, in-flight counts) survives
 * reloads. Modules carve named regions from it at init, in the master;
 * a region asked for again by name (a reload, a second init) is the same
 * memory. Anonymous memory starts zeroed, so a fresh region is all zeros.
 *
 * The segment cannot grow once workers exist: its size is fixed by the
 * first sl_shm_init() (the master sizes it from the first configuration,
 * with headroom), and a region that does not fit is refused, never
 * overlapped. Base layer: depends on nothing above it.
 */
#ifndef SL_CORE_BASE_SHM_H
#define SL_CORE_BASE_SHM_H

#include <stdbool.h>
#include <stddef.h>

#define SL_SHM_REGIONS      16                 /* named regions per segment */
#define SL_SHM_NAME_MAX     32                 /* bytes of a region name, NUL included */
#define SL_SHM_DEFAULT_SIZE (4u * 1024 * 1024) /* when a region is asked for before any init */

/*
 * Maps the segment with room for size bytes of regions (plus its own
 * header and alignment). Master (or single mode, or a test), before any
 * fork. A second call keeps the existing segment and returns 0, whatever
 * size it asks for. Returns 0 or -errno (logged).
 */
int sl_shm_init(size_t size);

/*
 * The region called name (1..SL_SHM_NAME_MAX-1 bytes) of at least size
 * bytes, 64-byte aligned: the existing one when it was carved before (a
 * reload), else a new zeroed one. Maps a segment of SL_SHM_DEFAULT_SIZE
 * first when none is mapped (tests, tools). Returns NULL, after logging,
 * when the segment cannot be mapped, the segment has no room left, the
 * table of names is full, or name exists with a smaller size. Master (or
 * single mode) context, before any fork: not safe against concurrent
 * callers.
 */
void *sl_shm_region(const char *name, size_t size);

/* Bytes of the segment available to regions; 0 before it is mapped. */
size_t sl_shm_capacity(void);

/* Bytes already carved (alignment included). */
size_t sl_shm_used(void);

#endif
