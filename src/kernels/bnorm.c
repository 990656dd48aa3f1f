/* Batch-normalisation kernels (bnorm.h says what each computes and how the work is shared). */
#include "kernels/bnorm.h"
#include "kernels/rowops.h"
#include "kernels/threads.h"

#include <math.h>

#define RUN_MIN 32    /* runs at least this long go through rowops; shorter ones across channels */
#define COLS 256      /* floats of one sample handled together on the across-channels path */
#define PAR_MIN 32768 /* elements below which one thread does the whole job */

/* BN_FWD, BN_BWD: bnorm.h's forward and backward.  For a batch spread over several processes the statistics are
 * summed between the steps, so the steps are also there one at a time: BN_SUM (sum x), BN_SQ (sum (x - mean)^2
 * around a given mean), BN_DX (dx from given sums, over m values in all). */
typedef enum { BN_FWD, BN_BWD, BN_SUM, BN_SQ, BN_DX } bn_kind;

typedef struct bn_job {
    bn_kind kind;
    bool training;
    const dn_rowops *v;
    const float *x, *dy, *gamma, *beta;
    float *y, *dx;
    double eps;
    double *mean, *var;           /* forward: written in training, read otherwise */
    const double *invstd;         /* backward */
    double *sum_dy, *sum_dy_xc;   /* backward: written (BN_BWD) or read (BN_DX) */
    double *out;                  /* BN_SUM, BN_SQ: one sum per channel */
    double m;                     /* values per channel in the whole batch (0: n inner) */
    int64_t n, channels, inner;
} bn_job;

static inline float hi_of(double m) { return (float)m; }
static inline float lo_of(double m) { return (float)(m - (double)(float)m); }

/* y = (x - mean) scale + shift for channel c */
static void fwd_coeffs(const bn_job *j, int64_t c, float *scale, float *shift)
{
    *scale = (float)(j->gamma[c] * (1.0 / sqrt(j->var[c] + j->eps)));
    *shift = j->beta[c];
}

/* dx += A dy + (B (x - mean) + C) for channel c, from its sums */
static void dx_coeffs(const bn_job *j, int64_t c, double sdy, double sdx, float *A, float *B, float *C)
{
    const double invstd = j->invstd[c], k = j->gamma[c] * invstd, m = j->m > 0 ? j->m : (double)(j->n * j->inner);
    *A = (float)k;
    *B = j->training ? (float)(-k * invstd * (sdx * invstd / m)) : 0.0f;
    *C = j->training ? (float)(-k * (sdy / m)) : 0.0f;
}

/* ------------------------------------------------------------------ long runs: one channel at a time */

/* The channel's n runs are read again while they are in cache (a channel of a 64 x 28 x 28 batch is 200 KB). */
static void channel_runs(const bn_job *j, int64_t c)
{
    const dn_rowops *v = j->v;
    const int64_t n = j->n, inner = j->inner, stride = j->channels * inner, first = c * inner;
    const float *x = j->x + first;
    if (j->kind == BN_SUM) {
        /* as forward's mean: the float lanes add deviations from x0 (this shard's first value), and the n inner
         * copies of x0 are added back in double */
        const float x0 = x[0];
        double sum = 0;
        for (int64_t s = 0; s < n; s++) sum += v->sum_c(x + s * stride, x0, 0.0f, inner);
        j->out[c] = (double)x0 * (double)(n * inner) + sum;
        return;
    }
    if (j->kind == BN_SQ) {
        const float hi = hi_of(j->mean[c]), lo = lo_of(j->mean[c]);
        double sq = 0;
        for (int64_t s = 0; s < n; s++) sq += v->sum_sq_c(x + s * stride, hi, lo, inner);
        j->out[c] = sq;
        return;
    }
    if (j->kind == BN_FWD) {
        if (j->training) {
            const double m = (double)(n * inner);
            /* the mean as x0 + mean(x - x0), x0 the channel's first value: the float lanes then add deviations, not
             * values (a channel of mean 1000 and spread 0.01 would lose its spread in a plain float sum) */
            const float x0 = x[0];
            double sum = 0, sq = 0;
            for (int64_t s = 0; s < n; s++) sum += v->sum_c(x + s * stride, x0, 0.0f, inner);
            const double mean = (double)x0 + sum / m;
            const float hi = hi_of(mean), lo = lo_of(mean);
            for (int64_t s = 0; s < n; s++) sq += v->sum_sq_c(x + s * stride, hi, lo, inner);
            j->mean[c] = mean;
            j->var[c] = sq / m;
        }
        const float hi = hi_of(j->mean[c]), lo = lo_of(j->mean[c]);
        float a, b;
        fwd_coeffs(j, c, &a, &b);
        for (int64_t s = 0; s < n; s++) v->affine_c(x + s * stride, hi, lo, a, b, j->y + first + s * stride, inner);
        return;
    }
    const float hi = hi_of(j->mean[c]), lo = lo_of(j->mean[c]);
    const float *dy = j->dy + first;
    double sdy = 0, sdx = 0;
    if (j->kind == BN_DX) {
        sdy = j->sum_dy[c];
        sdx = j->sum_dy_xc[c];
    } else {
        for (int64_t s = 0; s < n; s++) {
            sdy += v->sum(dy + s * stride, inner);
            sdx += v->dot_c(dy + s * stride, x + s * stride, hi, lo, inner);
        }
        j->sum_dy[c] = sdy;
        j->sum_dy_xc[c] = sdx;
    }
    if (!j->dx) return;
    float A, B, C;
    dx_coeffs(j, c, sdy, sdx, &A, &B, &C);
    for (int64_t s = 0; s < n; s++)
        v->bn_dx(x + s * stride, dy + s * stride, hi, lo, A, B, C, j->dx + first + s * stride, inner);
}

/* ------------------------------------------------------------------ short runs: channels c0 .. c1-1 side by side */

/* Adds each inner column of channels c0 .. c1-1 over the n samples into acc (x, or with hi/lo its squared deviation
 * from the mean hi + lo), then each channel's columns in order into out[c] / div. */
static void column_totals(const bn_job *j, int64_t c0, int64_t c1, const float *hi, const float *lo, double *acc,
                          double *out, double div)
{
    const int64_t n = j->n, inner = j->inner, stride = j->channels * inner, w = (c1 - c0) * inner;
    for (int64_t s = 0; s < n; s++) {
        const float *x = j->x + s * stride + c0 * inner;
        if (hi)
            for (int64_t k = 0; k < w; k++) {
                const float d = (x[k] - hi[k]) - lo[k];
                acc[k] += (double)(d * d);
            }
        else
            for (int64_t k = 0; k < w; k++) acc[k] += x[k];
    }
    for (int64_t c = c0; c < c1; c++) {
        double sum = 0;
        for (int64_t i = 0; i < inner; i++) sum += acc[(c - c0) * inner + i];
        out[c] = sum / div;
    }
}

/* Each of the (c1 - c0) inner columns of a sample gets its own double sums and per-column parameters; a channel's
 * total adds its columns in order, so it does not depend on where a block starts. */
static void channel_cols(const bn_job *j, int64_t c0, int64_t c1)
{
    const int64_t n = j->n, inner = j->inner, stride = j->channels * inner, w = (c1 - c0) * inner;
    const int64_t off = c0 * inner;
    const double m = (double)(n * inner);
    double a1[COLS], a2[COLS];
    float hi[COLS], lo[COLS], pa[COLS], pb[COLS], pc[COLS];
    for (int64_t k = 0; k < w; k++) a1[k] = a2[k] = 0;
    if (j->kind == BN_SUM) {
        column_totals(j, c0, c1, NULL, NULL, a1, j->out, 1);
        return;
    }
    if (j->kind == BN_FWD && j->training) column_totals(j, c0, c1, NULL, NULL, a1, j->mean, m);
    for (int64_t k = 0; k < w; k++) {
        hi[k] = hi_of(j->mean[c0 + k / inner]);
        lo[k] = lo_of(j->mean[c0 + k / inner]);
    }
    if (j->kind == BN_SQ) {
        column_totals(j, c0, c1, hi, lo, a2, j->out, 1);
        return;
    }
    if (j->kind == BN_FWD) {
        if (j->training) column_totals(j, c0, c1, hi, lo, a2, j->var, m);
        for (int64_t c = c0; c < c1; c++)
            for (int64_t i = 0; i < inner; i++) fwd_coeffs(j, c, &pa[(c - c0) * inner + i], &pb[(c - c0) * inner + i]);
        for (int64_t s = 0; s < n; s++) {
            const float *x = j->x + s * stride + off;
            float *y = j->y + s * stride + off;
            for (int64_t k = 0; k < w; k++) y[k] = ((x[k] - hi[k]) - lo[k]) * pa[k] + pb[k];
        }
        return;
    }
    for (int64_t s = 0; j->kind == BN_BWD && s < n; s++) {
        const float *x = j->x + s * stride + off, *dy = j->dy + s * stride + off;
        for (int64_t k = 0; k < w; k++) {
            a1[k] += dy[k];
            a2[k] += (double)(dy[k] * ((x[k] - hi[k]) - lo[k]));
        }
    }
    for (int64_t c = c0; c < c1; c++) {
        double s1 = 0, s2 = 0;
        if (j->kind == BN_DX) {
            s1 = j->sum_dy[c];
            s2 = j->sum_dy_xc[c];
        } else {
            for (int64_t i = 0; i < inner; i++) {
                s1 += a1[(c - c0) * inner + i];
                s2 += a2[(c - c0) * inner + i];
            }
            j->sum_dy[c] = s1;
            j->sum_dy_xc[c] = s2;
        }
        for (int64_t i = 0; i < inner; i++) {
            const int64_t k = (c - c0) * inner + i;
            dx_coeffs(j, c, s1, s2, &pa[k], &pb[k], &pc[k]);
        }
    }
    if (!j->dx) return;
    for (int64_t s = 0; s < n; s++) {
        const float *x = j->x + s * stride + off, *dy = j->dy + s * stride + off;
        float *dx = j->dx + s * stride + off;
        for (int64_t k = 0; k < w; k++) dx[k] += pa[k] * dy[k] + (pb[k] * ((x[k] - hi[k]) - lo[k]) + pc[k]);
    }
}

/* ------------------------------------------------------------------ the threaded driver */

static void part(void *arg, int p, int parts, void *scratch)
{
    (void)scratch;
    const bn_job *j = arg;
    int64_t lo, hi;
    dn_part_range(j->channels, 1, p, parts, &lo, &hi);
    if (j->inner >= RUN_MIN) {
        for (int64_t c = lo; c < hi; c++) channel_runs(j, c);
        return;
    }
    const int64_t per = COLS / j->inner; /* whole channels per block (inner < RUN_MIN <= COLS) */
    for (int64_t c = lo; c < hi; c += per) channel_cols(j, c, c + per < hi ? c + per : hi);
}

static void run(bn_job *j)
{
    /* no values: the sums a job writes are 0 */
    for (int64_t c = 0; (j->n <= 0 || j->inner <= 0) && c < j->channels; c++) {
        if (j->out) j->out[c] = 0;
        if (j->kind == BN_BWD) j->sum_dy[c] = j->sum_dy_xc[c] = 0;
    }
    if (j->channels <= 0 || j->n <= 0 || j->inner <= 0) return;
    j->v = dn_rowops_get();
    int parts = j->n * j->channels * j->inner >= PAR_MIN ? dn_parallel_parts() : 1;
    if (parts > j->channels) parts = (int)j->channels;
    dn_parallel_run(parts, part, j);
}

void dn_bnorm_forward(const float *x, float *y, int64_t n, int64_t channels, int64_t inner, const float *gamma,
                      const float *beta, double eps, bool training, double *mean, double *var)
{
    bn_job j = {.kind = BN_FWD, .training = training, .x = x, .y = y, .gamma = gamma, .beta = beta, .eps = eps,
                .mean = mean, .var = var, .n = n, .channels = channels, .inner = inner};
    run(&j);
}

void dn_bnorm_backward(const float *x, const float *dy, float *dx, int64_t n, int64_t channels, int64_t inner,
                       const float *gamma, const double *mean, const double *invstd, bool training, double *sum_dy,
                       double *sum_dy_xc)
{
    bn_job j = {.kind = BN_BWD, .training = training, .x = x, .dy = dy, .dx = dx, .gamma = gamma,
                .mean = (double *)mean /* only read */, .invstd = invstd, .sum_dy = sum_dy, .sum_dy_xc = sum_dy_xc, .n = n,
                .channels = channels, .inner = inner};
    run(&j);
}

void dn_bnorm_sum(const float *x, int64_t n, int64_t channels, int64_t inner, double *sum)
{
    bn_job j = {.kind = BN_SUM, .x = x, .out = sum, .n = n, .channels = channels, .inner = inner};
    run(&j);
}

void dn_bnorm_sum_sq(const float *x, int64_t n, int64_t channels, int64_t inner, const double *mean, double *sq)
{
    bn_job j = {.kind = BN_SQ, .x = x, .mean = (double *)mean /* only read */, .out = sq, .n = n,
                .channels = channels, .inner = inner};
    run(&j);
}

void dn_bnorm_backward_dx(const float *x, const float *dy, float *dx, int64_t n, int64_t channels, int64_t inner,
                          const float *gamma, const double *mean, const double *invstd, double m, const double *sum_dy,
                          const double *sum_dy_xc)
{
    if (!dx) return;
    bn_job j = {.kind = BN_DX, .training = true, .x = x, .dy = dy, .dx = dx, .gamma = gamma,
                .mean = (double *)mean, .invstd = invstd, .sum_dy = (double *)sum_dy, .sum_dy_xc = (double *)sum_dy_xc,
                .m = m, .n = n, .channels = channels, .inner = inner}; /* mean and the sums are only read */
    run(&j);
}
