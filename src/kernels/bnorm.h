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

#include <stdbool.h>
#include <stdint.h>

/* Forward.  training: mean[c] = (1/m) sum x and var[c] = (1/m) sum (x - mean[c])^2 (two passes, biased) are
 * computed and written; otherwise mean and var are read (the running statistics).  Then
 *     y = (x - mean[c]) scale[c] + beta[c],   scale[c] = gamma[c] / sqrt(var[c] + eps)
 * channel by channel, while the channel is still in cache. */
void dn_bnorm_forward(const float *x, float *y, int64_t n, int64_t channels, int64_t inner, const float *gamma,
                      const float *beta, double eps, bool training, double *mean, double *var);

/* Backward, with xhat = (x - mean[c]) invstd[c] and k = gamma[c] invstd[c]:
 *     sum_dy[c] = sum dy,   sum_dy_xc[c] = sum dy (x - mean[c])      (dbeta, and dgamma = invstd sum_dy_xc)
 *     dx += k (dy - mean(dy) - xhat mean(dy xhat))   training (the batch statistics depend on x)
 *     dx += k dy                                      evaluation
 * dx NULL: the sums only. */
void dn_bnorm_backward(const float *x, const float *dy, float *dx, int64_t n, int64_t channels, int64_t inner,
                       const float *gamma, const double *mean, const double *invstd, bool training, double *sum_dy,
                       double *sum_dy_xc);

/* The steps of training's statistics and backward one at a time, for a batch spread over several processes
 * (synchronised batch norm, src/ops/norm.c): the caller adds each step's per-channel sums over the processes.
 *     dn_bnorm_sum:     sum[c] = sum x   (x0 n inner + sum (x - x0), x0 the channel's first value: the float lanes
 *                       add deviations, as forward's mean does)
 *     dn_bnorm_sum_sq:  sq[c]  = sum (x - mean[c])^2
 *     dn_bnorm_backward_dx: dx += k (dy - sum_dy/m - xhat invstd sum_dy_xc/m), the training rule of
 *                       dn_bnorm_backward with the whole batch's sums and its m values per channel.
 * n = 0 (an empty shard) writes zero sums and no dx. */
void dn_bnorm_sum(const float *x, int64_t n, int64_t channels, int64_t inner, double *sum);
void dn_bnorm_sum_sq(const float *x, int64_t n, int64_t channels, int64_t inner, const double *mean, double *sq);
void dn_bnorm_backward_dx(const float *x, const float *dy, float *dx, int64_t n, int64_t channels, int64_t inner,
                          const float *gamma, const double *mean, const double *invstd, double m, const double *sum_dy,
                          const double *sum_dy_xc);

#endif
