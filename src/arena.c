/* The per-step arena: activations, gradients and tape nodes of one step come from here and are
 * dropped together by a reset. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_ALIGN 64
#define ARENA_MIN_CHUNK ((size_t)1 << 20)

struct dn_arena_chunk {
    dn_arena_chunk *prev;
    size_t size; /* usable bytes after the header */
    size_t used;
    /* the bytes follow, starting at an ARENA_ALIGN boundary */
};

static size_t header_size(void) { return (sizeof(dn_arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

static unsigned char *chunk_base(dn_arena_chunk *c)
{
    /* the chunk itself is allocated with ARENA_ALIGN slack; align the payload */
    uintptr_t p = (uintptr_t)c + header_size();
    return (unsigned char *)p;
}

void dn_arena_init(dn_arena *a) { memset(a, 0, sizeof *a); }

static dn_arena_chunk *chunk_new(size_t size)
{
    /* malloc promises only 16-byte alignment: allocate ARENA_ALIGN spare bytes so every request can be
     * aligned inside the payload. */
    dn_arena_chunk *c = dn_alloc(header_size() + size + ARENA_ALIGN);
    if (!c) return NULL;
    c->prev = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

static size_t align_up(uintptr_t p) { return (size_t)((p + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1)); }

void *dn_arena_alloc(dn_arena *a, size_t size)
{
    if (size > SIZE_MAX / 2) {
        dn_error(DN_ERR_NOMEM, "arena request of %zu bytes is too large", size);
        return NULL;
    }
    dn_arena_chunk *c = a->head;
    if (c) {
        /* the chunk has size + ARENA_ALIGN payload bytes: room for the alignment of its start */
        uintptr_t base = (uintptr_t)chunk_base(c);
        size_t start = align_up(base + c->used) - base;
        if (start + size <= c->size + ARENA_ALIGN) {
            c->used = start + size;
            a->used_total += size;
            if (a->used_total > a->high_water) a->high_water = a->used_total;
            return (unsigned char *)base + start;
        }
    }
    size_t want = size + ARENA_ALIGN;
    size_t csize = a->capacity > ARENA_MIN_CHUNK ? a->capacity : ARENA_MIN_CHUNK;
    if (csize < want) csize = want;
    size_t limit = dn_memory_limit();
    if (limit && a->capacity + csize > limit) {
        /* grow only as far as the budget allows; refuse what cannot fit at all */
        csize = want;
        if (a->capacity + csize > limit) {
            dn_error(DN_ERR_NOMEM, "this step needs more than %.1f MB of working memory (it asked for %.1f MB more), "
                                   "over the memory budget of %.1f MB: use a smaller batch, or raise the budget "
                                   "(DN_MEMORY_LIMIT, --memory-limit, dn_set_memory_limit)",
                     (double)(a->used_total + size) / 1e6, (double)size / 1e6, (double)limit / 1e6);
            return NULL;
        }
    }
    dn_arena_chunk *n = chunk_new(csize);
    if (!n) return NULL;
    n->prev = a->head;
    a->head = n;
    a->capacity += csize;
    uintptr_t base = (uintptr_t)chunk_base(n);
    size_t start = align_up(base) - base;
    n->used = start + size;
    a->used_total += size;
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    return (unsigned char *)base + start;
}

void *dn_arena_calloc(dn_arena *a, size_t size)
{
    void *p = dn_arena_alloc(a, size);
    if (p) memset(p, 0, size);
    return p;
}

void dn_arena_reset(dn_arena *a)
{
    if (a->head && a->head->prev) {
        /* grew past one chunk this step: replace all chunks by one that holds everything */
        size_t total = a->capacity;
        dn_arena_free(a);
        dn_arena_chunk *c = chunk_new(total);
        if (c) {
            a->head = c;
            a->capacity = total;
        }
    } else if (a->head) {
        a->head->used = 0;
    }
    a->used_total = 0;
}

void dn_arena_free(dn_arena *a)
{
    dn_arena_chunk *c = a->head;
    while (c) {
        dn_arena_chunk *p = c->prev;
        dn_free(c);
        c = p;
    }
    size_t hw = a->high_water;
    dn_arena_init(a);
    a->high_water = hw;
}

/* ------------------------------------------------------------------ memory budget */

/* The budget: DN_MEMORY_LIMIT (megabytes) read once, on the first question from any thread, until dn_set_memory_limit
 * says otherwise. */
static atomic_size_t memory_limit;
static pthread_once_t memory_limit_once = PTHREAD_ONCE_INIT;

static void read_memory_limit(void)
{
    const char *e = getenv("DN_MEMORY_LIMIT");
    double mb = e ? strtod(e, NULL) : 0;
    atomic_store(&memory_limit, mb > 0 ? (size_t)(mb * 1e6) : 0);
}

void dn_set_memory_limit(size_t bytes)
{
    pthread_once(&memory_limit_once, read_memory_limit); /* so a later first question cannot overwrite this */
    atomic_store(&memory_limit, bytes);
}

size_t dn_memory_limit(void)
{
    pthread_once(&memory_limit_once, read_memory_limit);
    return atomic_load_explicit(&memory_limit, memory_order_relaxed);
}
