/* Floor 0: the allocation hook and the error message, declared for every floor (the kernels included, which use
 * nothing else of the library's internals).  Not installed. */
#ifndef DN_BASE_H
#define DN_BASE_H

#include "dendrite.h"

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define DN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define DN_UNUSED __attribute__((unused))
#else
#define DN_PRINTF(a, b)
#define DN_UNUSED
#endif

/* ------------------------------------------------------------------ errors (error.c) */

/* Records a message for dn_last_error() and returns s, so callers can `return dn_error(...)`. */
dn_status dn_error(dn_status s, const char *fmt, ...) DN_PRINTF(2, 3);
/* Prepends "prefix: " to the current message (adds context as an error travels up). */
void dn_error_prefix(const char *fmt, ...) DN_PRINTF(1, 2);
/* Clears the message (successful calls leave it alone; tests use this). */
void dn_error_clear(void);

/* ------------------------------------------------------------------ allocation (alloc.c) */

/* Every allocation in the library goes through these, so dn_set_allocator() and the failure-injection
 * tests see all of them.  dn_alloc/dn_calloc record DN_ERR_NOMEM on failure. */
void *dn_alloc(size_t size);
void *dn_calloc(size_t n, size_t size);
void *dn_realloc(void *p, size_t size);
void dn_free(void *p);
char *dn_strdup(const char *s);

/* ------------------------------------------------------------------ files (files.c) */

/* Reads a whole file into a NUL-terminated buffer (free with dn_free).  Refuses files larger than
 * max_bytes (0: no limit) before allocating; *len (may be NULL) receives the size without the NUL. */
DN_NODISCARD dn_status dn_read_file(const char *path, size_t max_bytes, char **text, size_t *len);

#endif /* DN_BASE_H */
