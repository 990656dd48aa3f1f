/* Vector primitives over contiguous float runs, shared by the softmax and batch-norm kernels (floor 1).
 *
 * dn_rowops_get() returns the table for the ISA in force (kernels/cpu.h): AVX2 + FMA intrinsics on x86-64 CPUs
 * that have them, else portable C written in 16-lane blocks so that the compiler vectorises it for the target
 * (SSE2, NEON, ...).  A kernel takes the table once per call and passes it to its parts.
 *
 * Reductions add in float, 16 lanes (element i of a 256-element block goes to lane i % 16), and each block's
 * lanes are added into 16 double lanes, which are summed in a fixed order at the end: a float sum over at most
 * 16 terms per lane, then double, so the error stays within a few float ulp of the double sum for any length,
 * and the result depends only on the inputs (never on threads).  The two paths may differ in the last bit. */
#ifndef DN_KERNELS_ROWOPS_H
#define DN_KERNELS_ROWOPS_H

#include <stdint.h>

typedef struct dn_rowops {
    /* max_i x[i] (NaNs skipped; -inf for n = 0) */
    float (*max)(const float *x, int64_t n);
    /* sum_i x[i] */
    double (*sum)(const float *x, int64_t n);
    /* sum_i a[i] b[i] */
    double (*dot)(const float *a, const float *b, int64_t n);
    /* sum_i ((x[i] - hi) - lo): deviations from a centre hi + lo held in two floats */
    double (*sum_c)(const float *x, float hi, float lo, int64_t n);
    /* sum_i ((x[i] - hi) - lo)^2: the same, squared */
    double (*sum_sq_c)(const float *x, float hi, float lo, int64_t n);
    /* sum_i d[i] ((x[i] - hi) - lo) */
    double (*dot_c)(const float *d, const float *x, float hi, float lo, int64_t n);
    /* sum_i t[i] (m - x[i]) */
    double (*wdiff)(const float *t, const float *x, float m, int64_t n);
    /* y[i] = (x[i] - b1) - b2 */
    void (*sub2)(const float *x, float b1, float b2, float *y, int64_t n);
    /* y[i] *= s */
    void (*scale)(float *y, float s, int64_t n);
    /* y[i] += a x[i] */
    void (*axpy)(float a, const float *x, float *y, int64_t n);
    /* y[i] = ((x[i] - hi) - lo) a + b */
    void (*affine_c)(const float *x, float hi, float lo, float a, float b, float *y, int64_t n);
    /* dx[i] += A dy[i] + (B ((x[i] - hi) - lo) + C) */
    void (*bn_dx)(const float *x, const float *dy, float hi, float lo, float A, float B, float C, float *dx, int64_t n);
    /* dx[i] += y[i] (dy[i] - dot) */
    void (*softmax_dx)(const float *y, const float *dy, float dot, float *dx, int64_t n);
    /* dx[i] += dy[i] - e[i] s */
    void (*log_softmax_dx)(const float *e, const float *dy, float s, float *dx, int64_t n);
    /* dx[i] += g (p[i] T - t[i]) */
    void (*xent_soft_dx)(const float *p, const float *t, float T, float g, float *dx, int64_t n);
} dn_rowops;

/* The table for the ISA in force now. */
const dn_rowops *dn_rowops_get(void);

/* Elements per float block of the reductions (see above). */
#define DN_ROWOPS_BLOCK 256

#endif
