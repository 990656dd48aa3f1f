/* Batch-normalisation kernels over raw float arrays (floor 1).
 *
 * Layout: x is a contiguous [n, channels, inner] block; channel c owns the n runs of `inner` floats at
 * (s channels + c) inner, s < n, so its statistics run over m = n inner values.  Channels are shared among the
 * kernel threads (kernels/threads.h); each channel is computed by one thread in a fixed order, so the results are
 * bit-identical for any thread count.  Runs of 32 floats and more go through the vector primitives of
 * kernels/rowops.h (AVX2 + FMA or portable); shorter ones ([N, C] and small maps) are done across neighbouring
 * channels instead, so the vectors still have work.  Sums are float lanes folded into double (rowops.h) or double.
 *
 * A mean is applied as two floats hi + lo (hi = (float)mean, lo = (float)(mean - hi)): x - hi is exact for x near
 * the mean, so a channel whose mean is large against its spread is centred without cancellation. */
#ifndef DN_KERNELS_BNORM_H
#define DN_KERNELS_BNORM_H

#include <stdint.h>

/* mean[c] = (1/m) sum x,  var[c] = (1/m) sum (x - mean[c])^2  (two passes, biased) */
void dn_bnorm_stats(const float *x, int64_t n, int64_t channels, int64_t inner, double *mean, double *var);

/* y = (x - mean[c]) scale[c] + shift[c] */
void dn_bnorm_apply(const float *x, float *y, int64_t n, int64_t channels, int64_t inner, const double *mean,
                    const double *scale, const double *shift);

/* sum_dy[c] = sum dy,  sum_dy_xc[c] = sum dy (x - mean[c]) */
void dn_bnorm_backward_sums(const float *x, const float *dy, int64_t n, int64_t channels, int64_t inner,
                            const double *mean, double *sum_dy, double *sum_dy_xc);

/* dx += A[c] dy + (B[c] (x - mean[c]) + C[c]) */
void dn_bnorm_backward_dx(const float *x, const float *dy, float *dx, int64_t n, int64_t channels, int64_t inner,
                          const double *mean, const double *A, const double *B, const double *C);

#endif
