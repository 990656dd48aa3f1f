/* The 2 x 2, stride 2, unpadded max / min pooling kernel (floor 1: raw float arrays).  The general pooling loops
 * and the op live in src/ops/pool.c; this is its common case, with SIMD per ISA (pool_avx512.c, pool_avx2.c; the
 * SSE2 and scalar code in pool2x2.c), chosen in dn_pool_2x2 through kernels/cpu.h.
 *
 * Every path keeps the general loop's order and rule: the window's elements are taken in row-major order,
 * a later one replaces the best so far when it is strictly greater (max) or smaller (min), or is a NaN; so the
 * first extreme element wins ties and a NaN takes over (torch's argmax rule).  The results, index included, are
 * the same bits on every path. */
#ifndef DN_KERNELS_POOL_KERNELS_H
#define DN_KERNELS_POOL_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* A plane's size: H x W in, Ho x Wo out (Ho <= H/2, Wo <= W/2; W < 2^31). */
typedef struct dn_pool_geom {
    int64_t H, W, Ho, Wo;
} dn_pool_geom;

/* Planes [pl0, pl1) of x (each H*W floats): y (each Ho*Wo) = the max (is_max) or min of each window, and arg the
 * index in its plane of the element taken. */
void dn_pool_2x2(const dn_pool_geom *p, bool is_max, const float *x, float *y, int64_t *arg, int64_t pl0,
                 int64_t pl1);

#if defined(__x86_64__)
/* One plane each (pool_avx512.c, pool_avx2.c). */
void dn_pool_2x2_plane_avx512(const dn_pool_geom *p, bool is_max, const float *xp, float *yp, int64_t *ap);
void dn_pool_2x2_plane_avx2(const dn_pool_geom *p, bool is_max, const float *xp, float *yp, int64_t *ap);
#endif

#endif /* DN_KERNELS_POOL_KERNELS_H */
