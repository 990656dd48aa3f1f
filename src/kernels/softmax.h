/* Softmax, log-softmax and softmax cross-entropy over raw float arrays (floor 1).
 *
 * Layout: x is a contiguous [outer, n, inner] block and the softmax runs along the middle axis: element (o, k, i)
 * is at (o n + k) inner + i.  inner = 1 is the common case (rows: the last axis), and each row is done with the
 * vector primitives of kernels/rowops.h; inner > 1 (a softmax along an earlier axis, or a cross-entropy with
 * classes on axis 1 of [N, C, d1, ...]) is done 64 neighbouring columns at a time, the vectors running along inner.
 *
 * Every slice is computed the same way whatever else is computed, so the rows (or column blocks) are shared among
 * the kernel threads (kernels/threads.h) and the results are bit-identical for any thread count.  One exponential
 * per element: e = exp(x - max) is stored once (kernels/vmath.h, dispatched like everything else by the ISA in
 * force), summed, and scaled in place.  Sums are float lanes per 256 elements, then double (rowops.h). */
#ifndef DN_KERNELS_SOFTMAX_H
#define DN_KERNELS_SOFTMAX_H

#include <stdbool.h>
#include <stdint.h>

/* y = softmax(x) or log_softmax(x) along n (y may not overlap x):
 *   softmax_k = e^(x_k - m) / sum_j e^(x_j - m),  log_softmax_k = (x_k - m) - log sum_j e^(x_j - m),  m = max_j x_j */
void dn_softmax_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, bool log_form);

/* dx += the gradient through y = softmax(x) (or log_softmax) given dy, all [outer, n, inner]:
 *   softmax: dx_k += y_k (dy_k - sum_j dy_j y_j),  log_softmax: dx_k += dy_k - e^(y_k) sum_j dy_j */
void dn_softmax_backward(const float *y, const float *dy, float *dx, int64_t outer, int64_t n, int64_t inner,
                         bool log_form);

/* Softmax cross-entropy of logits x [outer, n, inner] (classes along n; sample s = o inner + i, S = outer inner):
 * prob = softmax(x) in x's layout (kept for backward) and one term per sample,
 *   index targets (soft false; target[s] a class index, checked by the caller): terms[s] = lse_s - x_(s, y_s)
 *   probability targets (target in x's layout):                                terms[s] = sum_k t_k (lse_s - x_k)
 * lse_s = m + log sum_k e^(x_k - m), in double. */
void dn_xent_forward(const float *x, const float *target, bool soft, float *prob, double *terms, int64_t outer,
                     int64_t n, int64_t inner);

/* dx += g_s (prob - onehot(y_s))  or  g_s (prob sum_k t_k - t), with g_s = g[s * g_stride] * g_scale (g_stride 0:
 * one gradient for every sample). */
void dn_xent_backward(const float *prob, const float *target, bool soft, const float *g, int64_t g_stride,
                      double g_scale, float *dx, int64_t outer, int64_t n, int64_t inner);

#endif
