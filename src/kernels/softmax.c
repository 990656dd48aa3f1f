/* Softmax, log-softmax and softmax cross-entropy kernels (softmax.h says what each computes).
 *
 * A row (inner = 1) takes three passes over its n floats, in chunks that stay in L1:
 *   m = max x;   per chunk: y = x - m, y = exp(y) in place (dn_vexp), s += sum y;   y *= 1/s  (or y = (x - m) - log s)
 * so each element is exponentiated once.  x - m is rounded once in float; log-softmax forms it again rather than
 * taking log of the stored softmax, so its large negative values keep full precision.  A block of columns
 * (inner > 1) does the same with 64 maxima and 64 double sums side by side. */
#include "kernels/softmax.h"
#include "kernels/rowops.h"
#include "kernels/threads.h"
#include "kernels/vmath.h"

#include <math.h>

#define CHUNK 1024 /* floats of a row exponentiated at a time (4 KB, in L1) */
#define COLS 64    /* columns of an inner > 1 block */
#define PAR_MIN 32768 /* elements below which one thread does the whole job */

typedef enum { SM_FWD, SM_BWD, XENT_FWD, XENT_BWD } job_kind;

typedef struct sm_job {
    job_kind kind;
    bool log_form, soft;
    const dn_rowops *v;
    const float *x, *y, *dy, *t, *g; /* inputs as each kind needs them (x: logits; y: softmax output or prob) */
    float *out, *dx;
    double *terms;
    int64_t g_stride;
    double g_scale;
    int64_t outer, n, inner, col_blocks;
} sm_job;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ rows (inner = 1) */

/* y = e^(x - m) for the row, *m its maximum; returns sum e^(x - m). */
static double row_exp(const dn_rowops *v, const float *x, float *y, int64_t n, float *m)
{
    *m = v->max(x, n);
    double s = 0;
    for (int64_t c = 0; c < n; c += CHUNK) {
        const int64_t len = min64(CHUNK, n - c);
        v->sub2(x + c, *m, 0.0f, y + c, len);
        dn_vexp(y + c, y + c, len);
        s += v->sum(y + c, len);
    }
    return s;
}

static void row_forward(const sm_job *j, int64_t r)
{
    const int64_t n = j->n;
    const float *x = j->x + r * n;
    float *y = j->out + r * n, m;
    const double s = row_exp(j->v, x, y, n, &m);
    if (j->kind == XENT_FWD) {
        const double log_s = log(s);
        if (j->soft) {
            /* sum_k t_k (lse - x_k) = sum_k t_k (m - x_k) + log s sum_k t_k: both sums of terms >= 0 for t >= 0 */
            const float *t = j->t + r * n;
            j->terms[r] = j->v->wdiff(t, x, m, n) + log_s * j->v->sum(t, n);
        } else {
            j->terms[r] = ((double)m - x[(int64_t)j->t[r]]) + log_s;
        }
    }
    if (j->log_form) j->v->sub2(x, m, (float)log(s), y, n);
    else j->v->scale(y, (float)(1.0 / s), n);
}

static void row_backward(const sm_job *j, int64_t r)
{
    const int64_t n = j->n;
    const float *y = j->y + r * n, *dy = j->dy + r * n;
    float *dx = j->dx + r * n;
    if (!j->log_form) {
        j->v->softmax_dx(y, dy, (float)j->v->dot(dy, y, n), dx, n);
        return;
    }
    const float s = (float)j->v->sum(dy, n);
    float e[CHUNK];
    for (int64_t c = 0; c < n; c += CHUNK) {
        const int64_t len = min64(CHUNK, n - c);
        dn_vexp(y + c, e, len); /* the softmax, from the log-softmax */
        j->v->log_softmax_dx(e, dy + c, s, dx + c, len);
    }
}

static void row_xent_backward(const sm_job *j, int64_t r)
{
    const int64_t n = j->n;
    const float *p = j->y + r * n;
    float *dx = j->dx + r * n;
    const double g = (double)j->g[r * j->g_stride] * j->g_scale;
    if (j->soft) {
        const float *t = j->t + r * n;
        j->v->xent_soft_dx(p, t, (float)j->v->sum(t, n), (float)g, dx, n);
        return;
    }
    /* the target's element apart: g (p - 1) in double, since p near 1 would cancel in g p - g */
    const int64_t y = (int64_t)j->t[r];
    const float keep = dx[y];
    j->v->axpy((float)g, p, dx, n);
    dx[y] = keep + (float)(g * ((double)p[y] - 1.0));
}

/* ------------------------------------------------------------------ column blocks (inner > 1) */

/* Columns i0 .. i0+w-1 of slice o: element (k, c) at base + k inner + c. */
static void cols_forward(const sm_job *j, int64_t o, int64_t i0, int64_t w)
{
    const int64_t n = j->n, inner = j->inner, base = o * n * inner + i0;
    float m[COLS];
    double s[COLS];
    for (int64_t c = 0; c < w; c++) {
        m[c] = -INFINITY;
        s[c] = 0;
    }
    for (int64_t k = 0; k < n; k++) {
        const float *xk = j->x + base + k * inner;
        for (int64_t c = 0; c < w; c++) m[c] = xk[c] > m[c] ? xk[c] : m[c];
    }
    for (int64_t k = 0; k < n; k++) {
        const float *xk = j->x + base + k * inner;
        float *yk = j->out + base + k * inner;
        for (int64_t c = 0; c < w; c++) yk[c] = xk[c] - m[c];
        dn_vexp(yk, yk, w);
        for (int64_t c = 0; c < w; c++) s[c] += yk[c];
    }
    if (j->kind == XENT_FWD) {
        for (int64_t c = 0; c < w; c++) {
            const int64_t sample = o * inner + i0 + c;
            double term;
            if (j->soft) {
                double a = 0, tsum = 0;
                for (int64_t k = 0; k < n; k++) {
                    const int64_t at = base + k * inner + c;
                    a += (double)j->t[at] * ((double)m[c] - j->x[at]);
                    tsum += j->t[at];
                }
                term = a + log(s[c]) * tsum;
            } else {
                term = ((double)m[c] - j->x[base + (int64_t)j->t[sample] * inner + c]) + log(s[c]);
            }
            j->terms[sample] = term;
        }
    }
    float f[COLS];
    for (int64_t c = 0; c < w; c++) f[c] = j->log_form ? (float)log(s[c]) : (float)(1.0 / s[c]);
    for (int64_t k = 0; k < n; k++) {
        const float *xk = j->x + base + k * inner;
        float *yk = j->out + base + k * inner;
        if (j->log_form)
            for (int64_t c = 0; c < w; c++) yk[c] = (xk[c] - m[c]) - f[c];
        else
            for (int64_t c = 0; c < w; c++) yk[c] *= f[c];
    }
}

static void cols_backward(const sm_job *j, int64_t o, int64_t i0, int64_t w)
{
    const int64_t n = j->n, inner = j->inner, base = o * n * inner + i0;
    double acc[COLS] = {0};
    float a[COLS], e[COLS];
    /* softmax: sum dy y;  log-softmax: sum dy */
    for (int64_t k = 0; k < n; k++) {
        const float *yk = j->y + base + k * inner, *dyk = j->dy + base + k * inner;
        if (j->log_form)
            for (int64_t c = 0; c < w; c++) acc[c] += dyk[c];
        else
            for (int64_t c = 0; c < w; c++) acc[c] += (double)dyk[c] * yk[c];
    }
    for (int64_t c = 0; c < w; c++) a[c] = (float)acc[c];
    for (int64_t k = 0; k < n; k++) {
        const float *yk = j->y + base + k * inner, *dyk = j->dy + base + k * inner;
        float *dxk = j->dx + base + k * inner;
        if (j->log_form) {
            dn_vexp(yk, e, w);
            for (int64_t c = 0; c < w; c++) dxk[c] += dyk[c] - e[c] * a[c];
        } else {
            for (int64_t c = 0; c < w; c++) dxk[c] += yk[c] * (dyk[c] - a[c]);
        }
    }
}

static void cols_xent_backward(const sm_job *j, int64_t o, int64_t i0, int64_t w)
{
    const int64_t n = j->n, inner = j->inner, base = o * n * inner + i0;
    for (int64_t c = 0; c < w; c++) {
        const int64_t sample = o * inner + i0 + c;
        const double g = (double)j->g[sample * j->g_stride] * j->g_scale;
        double tsum = 0;
        if (j->soft)
            for (int64_t k = 0; k < n; k++) tsum += j->t[base + k * inner + c];
        const int64_t y = j->soft ? -1 : (int64_t)j->t[sample];
        for (int64_t k = 0; k < n; k++) {
            const int64_t at = base + k * inner + c;
            const double p = j->y[at];
            j->dx[at] += (float)(j->soft ? g * (p * tsum - j->t[at]) : g * (p - (k == y ? 1.0 : 0.0)));
        }
    }
}

/* ------------------------------------------------------------------ the threaded driver */

static void part(void *arg, int p, int parts, void *scratch)
{
    (void)scratch;
    const sm_job *j = arg;
    const bool rows = j->inner == 1;
    const int64_t units = rows ? j->outer : j->outer * j->col_blocks;
    int64_t lo, hi;
    dn_part_range(units, 1, p, parts, &lo, &hi);
    for (int64_t u = lo; u < hi; u++) {
        if (rows) {
            if (j->kind == SM_FWD || j->kind == XENT_FWD) row_forward(j, u);
            else if (j->kind == SM_BWD) row_backward(j, u);
            else row_xent_backward(j, u);
            continue;
        }
        const int64_t o = u / j->col_blocks, i0 = (u % j->col_blocks) * COLS, w = min64(COLS, j->inner - i0);
        if (j->kind == SM_FWD || j->kind == XENT_FWD) cols_forward(j, o, i0, w);
        else if (j->kind == SM_BWD) cols_backward(j, o, i0, w);
        else cols_xent_backward(j, o, i0, w);
    }
}

static void run(sm_job *j)
{
    if (j->outer <= 0 || j->n <= 0 || j->inner <= 0) return;
    j->v = dn_rowops_get();
    j->col_blocks = (j->inner + COLS - 1) / COLS;
    const int64_t units = j->inner == 1 ? j->outer : j->outer * j->col_blocks;
    int parts = j->outer * j->n * j->inner >= PAR_MIN ? dn_parallel_parts() : 1;
    if (parts > units) parts = (int)units;
    dn_parallel_run(parts, part, j);
}

void dn_softmax_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, bool log_form)
{
    sm_job j = {.kind = SM_FWD, .log_form = log_form, .x = x, .out = y, .outer = outer, .n = n, .inner = inner};
    run(&j);
}

void dn_softmax_backward(const float *y, const float *dy, float *dx, int64_t outer, int64_t n, int64_t inner,
                         bool log_form)
{
    sm_job j = {.kind = SM_BWD, .log_form = log_form, .y = y, .dy = dy, .dx = dx, .outer = outer, .n = n, .inner = inner};
    run(&j);
}

void dn_xent_forward(const float *x, const float *target, bool soft, float *prob, double *terms, int64_t outer,
                     int64_t n, int64_t inner)
{
    sm_job j = {.kind = XENT_FWD, .soft = soft, .x = x, .t = target, .out = prob, .terms = terms, .outer = outer,
                .n = n, .inner = inner};
    run(&j);
}

void dn_xent_backward(const float *prob, const float *target, bool soft, const float *g, int64_t g_stride,
                      double g_scale, float *dx, int64_t outer, int64_t n, int64_t inner)
{
    sm_job j = {.kind = XENT_BWD, .soft = soft, .y = prob, .t = target, .g = g, .g_stride = g_stride,
                .g_scale = g_scale, .dx = dx, .outer = outer, .n = n, .inner = inner};
    run(&j);
}
