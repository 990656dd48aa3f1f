/* One allocation hook for the whole library (dn_set_allocator), so embedders can route memory and
 * tests can fail the N-th allocation. */
#include "base.h"

#include <stdlib.h>
#include <string.h>

static void *std_alloc(size_t size, void *user) { (void)user; return malloc(size); }
static void *std_realloc(void *p, size_t size, void *user) { (void)user; return realloc(p, size); }
static void std_free(void *p, void *user) { (void)user; free(p); }

static dn_allocator allocator = {std_alloc, std_realloc, std_free, NULL};

void dn_set_allocator(const dn_allocator *a)
{
    if (a && a->alloc && a->realloc && a->free)
        allocator = *a;
    else
        allocator = (dn_allocator){std_alloc, std_realloc, std_free, NULL};
}

void *dn_alloc(size_t size)
{
    void *p = allocator.alloc(size ? size : 1, allocator.user);
    if (!p) dn_error(DN_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *dn_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        dn_error(DN_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = dn_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *dn_realloc(void *p, size_t size)
{
    void *q = allocator.realloc(p, size ? size : 1, allocator.user);
    if (!q) dn_error(DN_ERR_NOMEM, "out of memory growing a block to %zu bytes", size);
    return q;
}

void dn_free(void *p)
{
    if (p) allocator.free(p, allocator.user);
}

char *dn_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = dn_alloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
