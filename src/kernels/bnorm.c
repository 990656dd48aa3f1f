/* Batch-normalisation kernels (bnorm.h says what each computes and how the work is shared). */
#include "kernels/bnorm.h"
#include "kernels/rowops.h"
#include "kernels/threads.h"

#define RUN_MIN 32    /* runs at least this long go through rowops; shorter ones across channels */
#define COLS 256      /* floats of one sample handled together on the across-channels path */
#define PAR_MIN 32768 /* elements below which one thread does the whole job */

typedef enum { BN_STATS, BN_APPLY, BN_SUMS, BN_DX } bn_kind;

typedef struct bn_job {
    bn_kind kind;
    const dn_rowops *v;
    const float *x, *dy;
    float *y, *dx;
    const double *mean, *p1, *p2, *p3; /* apply: scale, shift;  dx: A, B, C */
    double *o1, *o2;                   /* stats: mean, var;  sums: sum_dy, sum_dy_xc */
    int64_t n, channels, inner;
} bn_job;

static inline float hi_of(double m) { return (float)m; }
static inline float lo_of(double m) { return (float)(m - (double)(float)m); }

/* ------------------------------------------------------------------ long runs: one channel at a time */

static void channel_runs(const bn_job *j, int64_t c)
{
    const dn_rowops *v = j->v;
    const int64_t n = j->n, inner = j->inner, stride = j->channels * inner;
    const float *x = j->x + c * inner;
    if (j->kind == BN_STATS) {
        const double m = (double)(n * inner);
        double sum = 0, sq = 0;
        for (int64_t s = 0; s < n; s++) sum += v->sum(x + s * stride, inner);
        const double mean = sum / m;
        const float hi = hi_of(mean), lo = lo_of(mean);
        for (int64_t s = 0; s < n; s++) sq += v->sum_sq_c(x + s * stride, hi, lo, inner);
        j->o1[c] = mean;
        j->o2[c] = sq / m;
        return;
    }
    const float hi = hi_of(j->mean[c]), lo = lo_of(j->mean[c]);
    if (j->kind == BN_APPLY) {
        const float a = (float)j->p1[c], b = (float)j->p2[c];
        for (int64_t s = 0; s < n; s++) v->affine_c(x + s * stride, hi, lo, a, b, j->y + c * inner + s * stride, inner);
    } else if (j->kind == BN_SUMS) {
        const float *dy = j->dy + c * inner;
        double sdy = 0, sdx = 0;
        for (int64_t s = 0; s < n; s++) {
            sdy += v->sum(dy + s * stride, inner);
            sdx += v->dot_c(dy + s * stride, x + s * stride, hi, lo, inner);
        }
        j->o1[c] = sdy;
        j->o2[c] = sdx;
    } else {
        const float A = (float)j->p1[c], B = (float)j->p2[c], C = (float)j->p3[c];
        for (int64_t s = 0; s < n; s++)
            v->bn_dx(x + s * stride, j->dy + c * inner + s * stride, hi, lo, A, B, C, j->dx + c * inner + s * stride,
                     inner);
    }
}

/* ------------------------------------------------------------------ short runs: channels c0 .. c1-1 side by side */

/* Each of the (c1 - c0) inner columns of a sample gets its own double sums and per-column parameters; a channel's
 * total adds its columns in order. */
static void channel_cols(const bn_job *j, int64_t c0, int64_t c1)
{
    const int64_t n = j->n, inner = j->inner, stride = j->channels * inner, w = (c1 - c0) * inner;
    const int64_t off = c0 * inner;
    double a1[COLS], a2[COLS];
    float hi[COLS], lo[COLS], pa[COLS], pb[COLS], pc[COLS];
    for (int64_t k = 0; k < w; k++) {
        const int64_t c = c0 + k / inner;
        a1[k] = a2[k] = 0;
        if (j->kind != BN_STATS) {
            hi[k] = hi_of(j->mean[c]);
            lo[k] = lo_of(j->mean[c]);
        }
        if (j->kind == BN_APPLY || j->kind == BN_DX) {
            pa[k] = (float)j->p1[c];
            pb[k] = (float)j->p2[c];
            pc[k] = j->kind == BN_DX ? (float)j->p3[c] : 0.0f;
        }
    }
    switch (j->kind) {
    case BN_STATS: {
        const double m = (double)(n * inner);
        for (int64_t s = 0; s < n; s++) {
            const float *x = j->x + s * stride + off;
            for (int64_t k = 0; k < w; k++) a1[k] += x[k];
        }
        for (int64_t c = c0; c < c1; c++) {
            double sum = 0;
            for (int64_t i = 0; i < inner; i++) sum += a1[(c - c0) * inner + i];
            j->o1[c] = sum / m;
        }
        for (int64_t k = 0; k < w; k++) {
            hi[k] = hi_of(j->o1[c0 + k / inner]);
            lo[k] = lo_of(j->o1[c0 + k / inner]);
        }
        for (int64_t s = 0; s < n; s++) {
            const float *x = j->x + s * stride + off;
            for (int64_t k = 0; k < w; k++) {
                const float d = (x[k] - hi[k]) - lo[k];
                a2[k] += (double)(d * d);
            }
        }
        for (int64_t c = c0; c < c1; c++) {
            double sq = 0;
            for (int64_t i = 0; i < inner; i++) sq += a2[(c - c0) * inner + i];
            j->o2[c] = sq / m;
        }
        break;
    }
    case BN_APPLY:
        for (int64_t s = 0; s < n; s++) {
            const float *x = j->x + s * stride + off;
            float *y = j->y + s * stride + off;
            for (int64_t k = 0; k < w; k++) y[k] = ((x[k] - hi[k]) - lo[k]) * pa[k] + pb[k];
        }
        break;
    case BN_SUMS:
        for (int64_t s = 0; s < n; s++) {
            const float *x = j->x + s * stride + off, *dy = j->dy + s * stride + off;
            for (int64_t k = 0; k < w; k++) {
                a1[k] += dy[k];
                a2[k] += (double)(dy[k] * ((x[k] - hi[k]) - lo[k]));
            }
        }
        for (int64_t c = c0; c < c1; c++) {
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < inner; i++) {
                s1 += a1[(c - c0) * inner + i];
                s2 += a2[(c - c0) * inner + i];
            }
            j->o1[c] = s1;
            j->o2[c] = s2;
        }
        break;
    case BN_DX:
        for (int64_t s = 0; s < n; s++) {
            const float *x = j->x + s * stride + off, *dy = j->dy + s * stride + off;
            float *dx = j->dx + s * stride + off;
            for (int64_t k = 0; k < w; k++) dx[k] += pa[k] * dy[k] + (pb[k] * ((x[k] - hi[k]) - lo[k]) + pc[k]);
        }
        break;
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
    if (j->channels <= 0 || j->n <= 0 || j->inner <= 0) return;
    j->v = dn_rowops_get();
    int parts = j->n * j->channels * j->inner >= PAR_MIN ? dn_parallel_parts() : 1;
    if (parts > j->channels) parts = (int)j->channels;
    dn_parallel_run(parts, part, j);
}

void dn_bnorm_stats(const float *x, int64_t n, int64_t channels, int64_t inner, double *mean, double *var)
{
    bn_job j = {.kind = BN_STATS, .x = x, .o1 = mean, .o2 = var, .n = n, .channels = channels, .inner = inner};
    run(&j);
}

void dn_bnorm_apply(const float *x, float *y, int64_t n, int64_t channels, int64_t inner, const double *mean,
                    const double *scale, const double *shift)
{
    bn_job j = {.kind = BN_APPLY, .x = x, .y = y, .mean = mean, .p1 = scale, .p2 = shift, .n = n,
                .channels = channels, .inner = inner};
    run(&j);
}

void dn_bnorm_backward_sums(const float *x, const float *dy, int64_t n, int64_t channels, int64_t inner,
                            const double *mean, double *sum_dy, double *sum_dy_xc)
{
    bn_job j = {.kind = BN_SUMS, .x = x, .dy = dy, .mean = mean, .o1 = sum_dy, .o2 = sum_dy_xc, .n = n,
                .channels = channels, .inner = inner};
    run(&j);
}

void dn_bnorm_backward_dx(const float *x, const float *dy, float *dx, int64_t n, int64_t channels, int64_t inner,
                          const double *mean, const double *A, const double *B, const double *C)
{
    bn_job j = {.kind = BN_DX, .x = x, .dy = dy, .dx = dx, .mean = mean, .p1 = A, .p2 = B, .p3 = C, .n = n,
                .channels = channels, .inner = inner};
    run(&j);
}
