/*
 * The shared segment: a header holding the table of named regions, then
 * the regions, each 64-byte aligned so that no two modules share a cache
 * line. Only the master writes the header (at init and on reload, never
 * concurrently with itself); workers only read the regions' memory.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS */

#include "core/base/shm.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/base/log.h"

#define SHM_ALIGN 64

typedef struct shm_region {
    char name[SL_SHM_NAME_MAX];
    size_t off; /* from the start of the segment */
    size_t size;
} shm_region_t;

typedef struct shm_header {
    size_t size; /* mapped bytes */
    size_t used; /* first free byte, from the start of the segment */
    unsigned nregions;
    shm_region_t regions[SL_SHM_REGIONS];
} shm_header_t;

static shm_header_t *shm;

static size_t shm_align(size_t n);


static size_t
shm_align(size_t n)
{
    return (n + SHM_ALIGN - 1) & ~(size_t) (SHM_ALIGN - 1);
}


int
sl_shm_init(size_t size)
{
    size_t total;
    void *p;
    int err;

    if (shm != NULL) {
        return 0;
    }
    if (size > SIZE_MAX / 2) {
        return -ENOMEM;
    }
    /* room for the header and for aligning every region */
    total = shm_align(sizeof(shm_header_t)) + shm_align(size) + SL_SHM_REGIONS * SHM_ALIGN;
    p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        err = errno;
        sl_log(NULL, SL_LOG_EMERG, err, "mmap() of %zu bytes of shared memory failed", total);
        return -err;
    }
    shm = p;
    shm->size = total;
    shm->used = shm_align(sizeof(shm_header_t));
    return 0;
}


void *
sl_shm_region(const char *name, size_t size)
{
    shm_region_t *r;
    size_t len = strlen(name);

    if (shm == NULL && sl_shm_init(SL_SHM_DEFAULT_SIZE) != 0) {
        return NULL;
    }
    if (len == 0 || len >= SL_SHM_NAME_MAX) {
        sl_log(NULL, SL_LOG_ALERT, 0, "invalid shared memory region name \"%s\"", name);
        return NULL;
    }
    for (unsigned i = 0; i < shm->nregions; i++) {
        r = &shm->regions[i];
        if (strcmp(r->name, name) != 0) {
            continue;
        }
        if (r->size < size) {
            sl_log(NULL, SL_LOG_ALERT, 0,
                   "shared memory region \"%s\" has %zu bytes, %zu are needed: restart sluice",
                   name, r->size, size);
            return NULL;
        }
        return (char *) shm + r->off;
    }
    if (shm->nregions == SL_SHM_REGIONS) {
        sl_log(NULL, SL_LOG_ALERT, 0, "no room for shared memory region \"%s\": too many regions",
               name);
        return NULL;
    }
    if (size > shm->size - shm->used || shm_align(size) > shm->size - shm->used) {
        sl_log(NULL, SL_LOG_ALERT, 0,
               "no room for shared memory region \"%s\" (%zu bytes, %zu free): restart sluice",
               name, size, shm->size - shm->used);
        return NULL;
    }
    r = &shm->regions[shm->nregions++];
    memcpy(r->name, name, len + 1);
    r->off = shm->used;
    r->size = size;
    shm->used += shm_align(size);
    return (char *) shm + r->off;
}


size_t
sl_shm_capacity(void)
{
    return shm == NULL ? 0 : shm->size - shm_align(sizeof(shm_header_t));
}


size_t
sl_shm_used(void)
{
    return shm == NULL ? 0 : shm->used - shm_align(sizeof(shm_header_t));
}
