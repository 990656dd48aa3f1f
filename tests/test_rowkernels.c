/* The softmax, cross-entropy and batch-norm kernels (src/kernels/softmax.c, bnorm.c) on every ISA this CPU has:
 * each against a plain double-precision reference written here (never against another path of the same kernel),
 * with NaN-aware comparisons (a NaN where a number is expected fails), ragged lengths (not multiples of 8 or 16,
 * across the 256-element sum blocks and the 1024-element exp chunks), rows of a 50000-word vocabulary, numerical
 * edge cases, bit-identical results for 1, 2 and 3 threads, and the PyTorch goldens of the ops that use them. */
#include "test.h"

#include "kernels/bnorm.h"
#include "kernels/softmax.h"

#include <stdint.h>
#include <stdlib.h>

/* tests/test_golden.c: one op's fixture through the registry, as the golden suite runs it */
void t_golden_file(const char *op_name);

static const char *isa_label = "";

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state;
static float urand(float lo, float hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((rng_state >> 40) * 0x1p-24);
}
static float *filled(int64_t count, float lo, float hi)
{
    float *p = malloc((size_t)(count ? count : 1) * sizeof(float));
    for (int64_t i = 0; p && i < count; i++) p[i] = urand(lo, hi);
    return p;
}
static double *dalloc(int64_t count) { return calloc((size_t)(count ? count : 1), sizeof(double)); }

/* got[i] against want[i]: |got - want| <= tol * (scale ? scale[i] : max(|want|, 1e-30)); infinities must match
 * exactly, and a NaN on either side fails.  Reports the first three misses; returns the number of misses. */
static int compare(const char *file, int line, const char *what, const float *got, const double *want,
                   const double *scale, int64_t count, double tol)
{
    int bad = 0;
    for (int64_t i = 0; i < count; i++) {
        double g = got[i], w = want[i];
        bool ok = isinf(w) ? g == w : fabs(g - w) <= tol * (scale ? scale[i] : fmax(fabs(w), 1e-30));
        if (!ok && bad++ < 3)
            t_fail(file, line, "[%s] %s element %lld: got %.9g, expected %.9g", isa_label, what, (long long)i, g, w);
    }
    return bad;
}
#define COMPARE(what, got, want, scale, count, tol) compare(__FILE__, __LINE__, what, got, want, scale, count, tol)

/* Runs fn once per ISA this CPU has, then restores the one in force. */
static void each_isa(void (*fn)(void))
{
    const dn_isa saved = dn_get_isa();
    const dn_isa all[] = {DN_ISA_PORTABLE, DN_ISA_AVX2, DN_ISA_AVX512, DN_ISA_NEON};
    for (int k = 0; k < 4; k++) {
        if (!dn_isa_supported(all[k])) continue;
        CHECK_OK(dn_set_isa(all[k]));
        isa_label = dn_isa_name(all[k]);
        rng_state = 12345;
        fn();
    }
    CHECK_OK(dn_set_isa(saved));
    isa_label = "";
}

/* ------------------------------------------------------------------ references in double */

/* softmax (or log_softmax) of [outer, n, inner] along n; *m and *lse per sample when asked */
static void ref_softmax(const float *x, double *y, int64_t outer, int64_t n, int64_t inner, bool log_form, double *lse)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
            double m = -INFINITY, s = 0;
            /* a comparison, not fmax (the same for a NaN): gcc 12.2 for aarch64 stops with an internal compiler
             * error (vect_transform_reduction) vectorising an fmax reduction over floats widened to double */
            for (int64_t k = 0; k < n; k++) {
                const double v = x[base + k * inner];
                if (v > m) m = v;
            }
            for (int64_t k = 0; k < n; k++) s += exp((double)x[base + k * inner] - m);
            for (int64_t k = 0; k < n; k++) {
                double d = (double)x[base + k * inner] - m;
                y[base + k * inner] = log_form ? d - log(s) : exp(d) / s;
            }
            if (lse) lse[o * inner + i] = m + log(s);
        }
}

/* dx0 + the gradient, and a per-element scale (the sizes of the terms that cancel) */
static void ref_softmax_bwd(const float *y, const float *dy, const float *dx0, double *dx, double *scale,
                            int64_t outer, int64_t n, int64_t inner, bool log_form)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
            double acc = 0, mag = 0;
            for (int64_t k = 0; k < n; k++) {
                const int64_t at = base + k * inner;
                acc += log_form ? dy[at] : (double)dy[at] * y[at];
                mag += log_form ? fabs(dy[at]) : fabs((double)dy[at] * y[at]);
            }
            for (int64_t k = 0; k < n; k++) {
                const int64_t at = base + k * inner;
                const double e = log_form ? exp((double)y[at]) : y[at];
                dx[at] = dx0[at] + (log_form ? dy[at] - e * acc : e * (dy[at] - acc));
                scale[at] = fabs(dx0[at]) + fabs(dy[at]) * (log_form ? 1 : fabs(e)) + fabs(e) * mag + 1e-30;
            }
        }
}

/* ------------------------------------------------------------------ softmax and log-softmax */

static const int64_t shapes[][3] = {
    {3, 1, 1}, {4, 7, 1}, {5, 17, 1}, {3, 33, 1}, {2, 255, 1}, {2, 257, 1}, {2, 1029, 1}, {1, 2100, 1}, /* rows */
    {2, 5, 3}, {2, 4, 70}, {1, 3, 130}, {3, 1, 9},                                                     /* columns */
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static void softmax_case(int64_t outer, int64_t n, int64_t inner, bool log_form, float spread)
{
    const int64_t count = outer * n * inner;
    float *x = filled(count, -spread, spread), *y = filled(count, 0, 0), *dy = filled(count, -1, 1);
    float *dx = filled(count, -0.5f, 0.5f), *dx0 = malloc((size_t)count * sizeof(float));
    double *want = dalloc(count), *scale = dalloc(count);
    if (!x || !y || !dy || !dx || !dx0 || !want || !scale) {
        t_fail(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    memcpy(dx0, dx, (size_t)count * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "%s [%lld, %lld, %lld] forward", log_form ? "log_softmax" : "softmax",
             (long long)outer, (long long)n, (long long)inner);
    dn_softmax_forward(x, y, outer, n, inner, log_form);
    ref_softmax(x, want, outer, n, inner, log_form, NULL);
    if (log_form) { /* y = (x - m) - log s: judged against max(|y|, 1), as its terms are */
        for (int64_t i = 0; i < count; i++) scale[i] = fmax(fabs(want[i]), 1.0);
        COMPARE(what, y, want, scale, count, 2e-6);
    } else {
        COMPARE(what, y, want, NULL, count, 3e-6);
    }
    snprintf(what, sizeof what, "%s [%lld, %lld, %lld] backward", log_form ? "log_softmax" : "softmax",
             (long long)outer, (long long)n, (long long)inner);
    dn_softmax_backward(y, dy, dx, outer, n, inner, log_form);
    ref_softmax_bwd(y, dy, dx0, want, scale, outer, n, inner, log_form);
    COMPARE(what, dx, want, scale, count, 2e-6);
done:
    free(x), free(y), free(dy), free(dx), free(dx0), free(want), free(scale);
}

static void softmax_shapes(void)
{
    for (int s = 0; s < N_SHAPES; s++)
        for (int log_form = 0; log_form < 2; log_form++)
            softmax_case(shapes[s][0], shapes[s][1], shapes[s][2], log_form, 6.0f);
}
static void test_softmax_vs_double(void) { each_isa(softmax_shapes); }

/* a 50000-word vocabulary: the sums run over 196 blocks and 49 exp chunks */
static void softmax_vocab(void)
{
    softmax_case(10, 50000, 1, false, 10.0f);
    softmax_case(10, 50000, 1, true, 10.0f);
}
static void test_softmax_large_rows(void) { each_isa(softmax_vocab); }

/* one finite value among -inf; huge logits; all equal; a NaN poisons its row only */
static void softmax_edges(void)
{
    enum { N = 19 };
    float x[4 * N], y[4 * N], ly[4 * N];
    double want[4 * N], lwant[4 * N];
    for (int k = 0; k < N; k++) {
        x[k] = k == 5 ? 3.0f : -INFINITY;
        x[N + k] = k % 3 == 0 ? 1e30f : k % 3 == 1 ? -1e30f : (float)k;
        x[2 * N + k] = 7.5f;
        x[3 * N + k] = urand(-2, 2);
    }
    x[N + 6] = 1e30f; /* 7 of the 19 hold 1e30 */
    dn_softmax_forward(x, y, 3, N, 1, false);
    dn_softmax_forward(x, ly, 3, N, 1, true);
    ref_softmax(x, want, 3, N, 1, false, NULL);
    ref_softmax(x, lwant, 3, N, 1, true, NULL);
    COMPARE("softmax edge rows", y, want, NULL, 3 * N, 3e-6);
    COMPARE("log_softmax edge rows", ly, lwant, NULL, 3 * N, 2e-6);
    CHECK_MSG(y[5] == 1.0f && y[4] == 0.0f && ly[5] == 0.0f && ly[6] == -INFINITY, "[%s] one-hot row: %g %g %g %g",
              isa_label, y[5], y[4], ly[5], ly[6]);
    /* a NaN in row 3 makes that row NaN (as torch) and leaves the others alone */
    x[3 * N + 7] = NAN;
    dn_softmax_forward(x, y, 4, N, 1, false);
    dn_softmax_forward(x, ly, 4, N, 1, true);
    int nans = 0;
    for (int k = 0; k < N; k++) nans += isnan(y[3 * N + k]) + isnan(ly[3 * N + k]);
    CHECK_MSG(nans == 2 * N, "[%s] a NaN logit gave %d NaNs of %d", isa_label, nans, 2 * N);
    COMPARE("softmax rows beside a NaN row", y, want, NULL, 3 * N, 3e-6);

    /* cross-entropy on the same rows: one-hot row, target the finite one: 0; huge logits: log 7 at a 1e30 */
    float t[3] = {5, 0, 4}, prob[3 * N];
    double terms[3];
    dn_xent_forward(x, t, false, prob, terms, 3, N, 1);
    CHECK_MSG(terms[0] == 0.0 && fabs(terms[1] - log(7.0)) <= 1e-6 && fabs(terms[2] - log((double)N)) <= 1e-6,
              "[%s] cross-entropy edge terms %.9g %.9g %.9g", isa_label, terms[0], terms[1], terms[2]);

    /* a confident row (p of the target 1 - 2.5e-6): its gradient g (p - 1) must not cancel (as g p - g would) */
    const float xc[2 * 4] = {14, 0, 0, 0, 0, 0, 0, 14}, tc[2] = {0, 3}, gc[2] = {0.3f, -0.7f};
    float pc[8], dxc[8] = {0};
    double tmc[2];
    dn_xent_forward(xc, tc, false, pc, tmc, 2, 4, 1);
    dn_xent_backward(pc, tc, false, gc, 1, 1.0, dxc, 2, 4, 1);
    for (int r = 0; r < 2; r++) {
        const int yc = (int)tc[r];
        const double wc = (double)gc[r] * ((double)pc[4 * r + yc] - 1.0);
        CHECK_MSG(fabs(dxc[4 * r + yc] - wc) <= 1e-6 * fabs(wc), "[%s] confident row %d: dx %.9g, expected %.9g",
                  isa_label, r, dxc[4 * r + yc], wc);
    }
}
static void test_softmax_edge_cases(void) { each_isa(softmax_edges); }

/* ------------------------------------------------------------------ softmax cross-entropy */

static void xent_case(int64_t outer, int64_t n, int64_t inner, bool soft, bool per_sample)
{
    const int64_t count = outer * n * inner, samples = outer * inner;
    float *x = filled(count, -8, 8), *prob = filled(count, 0, 0), *dx = filled(count, -0.5f, 0.5f);
    float *t = soft ? filled(count, 0, 1) : filled(samples, 0, 0), *g = filled(samples, -2, 2);
    float *dx0 = malloc((size_t)count * sizeof(float));
    double *terms = dalloc(samples), *want = dalloc(count), *lse = dalloc(samples), *wterms = dalloc(samples);
    double *scale = dalloc(count);
    if (!x || !prob || !dx || !t || !g || !dx0 || !terms || !want || !lse || !wterms || !scale) {
        t_fail(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    for (int64_t s = 0; !soft && s < samples; s++) t[s] = (float)((s * 7 + 3) % n);
    memcpy(dx0, dx, (size_t)count * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "xent %s [%lld, %lld, %lld]", soft ? "soft" : "index", (long long)outer, (long long)n,
             (long long)inner);
    dn_xent_forward(x, t, soft, prob, terms, outer, n, inner);
    ref_softmax(x, want, outer, n, inner, false, lse);
    COMPARE(what, prob, want, NULL, count, 3e-6);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t s = o * inner + i, base = o * n * inner + i;
            double term = 0;
            if (soft)
                for (int64_t k = 0; k < n; k++) term += t[base + k * inner] * (lse[s] - x[base + k * inner]);
            else
                term = lse[s] - x[base + (int64_t)t[s] * inner];
            wterms[s] = term;
        }
    int bad = 0;
    for (int64_t s = 0; s < samples; s++)
        if (!(fabs(terms[s] - wterms[s]) <= 2e-6 * fmax(fabs(wterms[s]), 1.0)) && bad++ < 3)
            t_fail(__FILE__, __LINE__, "[%s] %s term %lld: got %.12g, expected %.12g", isa_label, what, (long long)s,
                   terms[s], wterms[s]);
    /* backward: per-sample gradients (reduction none) or one shared, scaled (mean) */
    const double gscale = per_sample ? 1.0 : 1.0 / (double)samples;
    dn_xent_backward(prob, t, soft, g, per_sample ? 1 : 0, gscale, dx, outer, n, inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t s = o * inner + i, base = o * n * inner + i;
            const double gs = (double)g[per_sample ? s : 0] * gscale;
            double tsum = 0;
            for (int64_t k = 0; soft && k < n; k++) tsum += t[base + k * inner];
            for (int64_t k = 0; k < n; k++) {
                const int64_t at = base + k * inner;
                const double p = prob[at], tk = soft ? t[at] : (k == (int64_t)t[s] ? 1.0 : 0.0);
                want[at] = dx0[at] + gs * (p * (soft ? tsum : 1.0) - tk);
                scale[at] = fabs(dx0[at]) + fabs(gs) * (p * (soft ? tsum : 1.0) + tk) + 1e-30;
            }
        }
    COMPARE(what, dx, want, scale, count, 2e-6);
done:
    free(x), free(prob), free(dx), free(t), free(g), free(dx0), free(terms), free(want), free(lse), free(wterms);
    free(scale);
}

static void xent_shapes(void)
{
    for (int s = 0; s < N_SHAPES; s++)
        for (int soft = 0; soft < 2; soft++) xent_case(shapes[s][0], shapes[s][1], shapes[s][2], soft, s % 2);
    xent_case(4, 50000, 1, false, true); /* a vocabulary */
    xent_case(3, 50000, 1, true, false);
}
static void test_xent_vs_double(void) { each_isa(xent_shapes); }

/* ------------------------------------------------------------------ batch norm */

static void bn_case(int64_t n, int64_t C, int64_t inner, bool big_mean, bool training)
{
    const int64_t count = n * C * inner, m = n * inner;
    const double eps = 1e-5;
    float *x = filled(count, -3, 3), *y = filled(count, 0, 0), *dy = filled(count, -1, 1);
    float *dx = filled(count, -0.5f, 0.5f), *dx0 = malloc((size_t)count * sizeof(float));
    float *gamma = filled(C, 0.5f, 1.5f), *beta = filled(C, -1, 1);
    double *mean = dalloc(C), *var = dalloc(C), *wmean = dalloc(C), *wvar = dalloc(C), *invstd = dalloc(C);
    double *s1 = dalloc(C), *s2 = dalloc(C), *t1 = dalloc(C), *t2 = dalloc(C);
    double *want = dalloc(count), *tol = dalloc(count);
    if (!x || !y || !dy || !dx || !dx0 || !gamma || !beta || !mean || !var || !wmean || !wvar || !invstd || !s1 ||
        !s2 || !t1 || !t2 || !want || !tol) {
        t_fail(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    /* channel 0 of a big_mean case: mean 1000, spread 0.01 (a plain float mean would lose the spread) */
    for (int64_t s = 0; big_mean && s < n; s++)
        for (int64_t i = 0; i < inner; i++) x[s * C * inner + i] = 1000.0f + urand(-0.01f, 0.01f);
    memcpy(dx0, dx, (size_t)count * sizeof(float));
#define AT(s, c, i) (((s) * C + (c)) * inner + (i))
    for (int64_t c = 0; c < C; c++) {
        double sum = 0, sq = 0;
        for (int64_t s = 0; s < n; s++)
            for (int64_t i = 0; i < inner; i++) sum += x[AT(s, c, i)];
        wmean[c] = sum / (double)m;
        for (int64_t s = 0; s < n; s++)
            for (int64_t i = 0; i < inner; i++) sq += (x[AT(s, c, i)] - wmean[c]) * (x[AT(s, c, i)] - wmean[c]);
        wvar[c] = sq / (double)m;
        invstd[c] = 1.0 / sqrt(wvar[c] + eps);
        mean[c] = wmean[c]; /* evaluation reads them as the running statistics */
        var[c] = wvar[c];
    }
    char what[112];
    snprintf(what, sizeof what, "batch norm [%lld, %lld, %lld] %s%s", (long long)n, (long long)C, (long long)inner,
             training ? "training" : "evaluation", big_mean ? " (a channel of mean 1000)" : "");
    dn_bnorm_forward(x, y, n, C, inner, gamma, beta, eps, training, mean, var);
    int bad = 0;
    for (int64_t c = 0; c < C; c++) {
        bool ok = fabs(mean[c] - wmean[c]) <= 1e-6 * (fabs(wmean[c]) + 3) && fabs(var[c] - wvar[c]) <= 1e-5 * wvar[c];
        if (!ok && bad++ < 3)
            t_fail(__FILE__, __LINE__, "[%s] %s channel %lld: mean %.12g var %.12g, expected %.12g %.12g", isa_label,
                   what, (long long)c, mean[c], var[c], wmean[c], wvar[c]);
    }
    for (int64_t s = 0; s < n; s++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < inner; i++) {
                const double k = gamma[c] * invstd[c], d = (x[AT(s, c, i)] - wmean[c]) * k;
                want[AT(s, c, i)] = d + beta[c];
                /* judged against one standard deviation of the output, as float rounding of the mean moves it */
                tol[AT(s, c, i)] = fabs(d) + fabs(beta[c]) + fabs(k) * sqrt(wvar[c]);
            }
    COMPARE(what, y, want, tol, count, 2e-6);

    dn_bnorm_backward(x, dy, dx, n, C, inner, gamma, wmean, invstd, training, s1, s2);
    dn_bnorm_backward(x, dy, NULL, n, C, inner, gamma, wmean, invstd, training, t1, t2); /* sums only */
    CHECK_MSG(memcmp(s1, t1, (size_t)C * sizeof(double)) == 0 && memcmp(s2, t2, (size_t)C * sizeof(double)) == 0,
              "[%s] %s: the sums differ without dx", isa_label, what);
    for (int64_t c = 0; c < C; c++) {
        double a = 0, b = 0, ma = 0, mb = 0;
        for (int64_t s = 0; s < n; s++)
            for (int64_t i = 0; i < inner; i++) {
                a += dy[AT(s, c, i)];
                b += dy[AT(s, c, i)] * (x[AT(s, c, i)] - wmean[c]);
                ma += fabs(dy[AT(s, c, i)]);
                mb += fabs(dy[AT(s, c, i)] * (x[AT(s, c, i)] - wmean[c]));
            }
        bool ok = fabs(s1[c] - a) <= 1e-6 * (ma + 1e-30) && fabs(s2[c] - b) <= 1e-6 * (mb + 1e-30);
        if (!ok && bad++ < 3)
            t_fail(__FILE__, __LINE__, "[%s] %s sums of channel %lld: %.12g %.12g, expected %.12g %.12g", isa_label,
                   what, (long long)c, s1[c], s2[c], a, b);
        const double k = gamma[c] * invstd[c], mdy = training ? a / (double)m : 0;
        const double mdyx = training ? b * invstd[c] / (double)m : 0;
        for (int64_t s = 0; s < n; s++)
            for (int64_t i = 0; i < inner; i++) {
                const int64_t e = AT(s, c, i);
                const double xhat = (x[e] - wmean[c]) * invstd[c];
                want[e] = dx0[e] + k * (dy[e] - mdy - xhat * mdyx);
                tol[e] = fabs(dx0[e]) + fabs(k) * (fabs(dy[e]) + fabs(mdy) + fabs(xhat * mdyx)) + 1e-30;
            }
    }
    COMPARE(what, dx, want, tol, count, 2e-6);
#undef AT
done:
    free(x), free(y), free(dy), free(dx), free(dx0), free(gamma), free(beta), free(mean), free(var), free(wmean);
    free(wvar), free(invstd), free(s1), free(s2), free(t1), free(t2), free(want), free(tol);
}

static void bn_shapes(void)
{
    static const int64_t bn[][3] = {{5, 3, 1},  {7, 19, 1}, {3, 300, 1}, {3, 4, 5}, {2, 70, 3},
                                    {2, 3, 33}, {4, 2, 50}, {3, 2, 300}, {2, 3, 1029}};
    for (int k = 0; k < (int)(sizeof bn / sizeof bn[0]); k++)
        for (int training = 0; training < 2; training++) bn_case(bn[k][0], bn[k][1], bn[k][2], k % 2 == 1, training);
    /* no samples: the sums are 0 (NaN beforehand), nothing else is touched */
    float g1[3] = {1, 1, 1}, one = 0;
    double mu[3] = {0}, inv[3] = {1, 1, 1}, sdy[3] = {NAN, NAN, NAN}, sdx[3] = {NAN, NAN, NAN};
    dn_bnorm_backward(&one, &one, &one, 0, 3, 4, g1, mu, inv, true, sdy, sdx);
    CHECK_MSG(sdy[0] == 0 && sdy[2] == 0 && sdx[1] == 0 && one == 0, "[%s] empty batch: sums %g %g %g", isa_label, sdy[0],
              sdy[2], sdx[1]);
}
static void test_bnorm_vs_double(void) { each_isa(bn_shapes); }

/* ------------------------------------------------------------------ thread counts */

/* Every kernel on inputs large enough to be shared among threads: 1, 2 and 3 threads give the same bits. */
static void threads_same_bits(void)
{
    enum { RUNS = 3, OUT = 9 };
    const int counts[RUNS] = {1, 2, 3};
    const int64_t R = 64, V = 1000, CO = 4, CN = 10, CI = 900;       /* rows; columns */
    const int64_t XN = 2048, XC = 256;                              /* the char LSTM's output */
    const int64_t BN = 16, BC = 8, BI = 28 * 28, B1N = 512, B1C = 64; /* a conv map; [N, C] */
    const int64_t big = XN * XC;
    float *x = filled(big, -6, 6), *dy = filled(big, -1, 1), *t = filled(big, 0, 1), *ti = filled(XN, 0, 0);
    float *out[RUNS][OUT];
    double *dout[RUNS][4];
    bool ok = x && dy && t && ti;
    for (int r = 0; r < RUNS; r++) {
        for (int k = 0; k < OUT; k++) ok &= (out[r][k] = calloc((size_t)big, sizeof(float))) != NULL;
        for (int k = 0; k < 4; k++) ok &= (dout[r][k] = dalloc(XN)) != NULL;
    }
    if (!ok) {
        t_fail(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    for (int64_t s = 0; s < XN; s++) ti[s] = (float)((s * 37) % XC);
    const int saved = dn_get_threads();
    for (int r = 0; r < RUNS; r++) {
        dn_set_threads(counts[r]);
        float **o = out[r];
        double **d = dout[r];
        dn_softmax_forward(x, o[0], R, V, 1, false);
        dn_softmax_forward(x, o[1], R, V, 1, true);
        dn_softmax_backward(o[0], dy, o[2], R, V, 1, false);
        dn_softmax_backward(o[1], dy, o[2], R, V, 1, true);
        dn_softmax_forward(x, o[3], CO, CN, CI, true);
        dn_softmax_backward(o[3], dy, o[2], CO, CN, CI, true);
        dn_xent_forward(x, ti, false, o[4], d[0], XN, XC, 1);
        dn_xent_forward(x, t, true, o[5], d[1], XN, XC, 1);
        dn_xent_backward(o[4], ti, false, dy, 1, 1.0, o[6], XN, XC, 1);
        dn_xent_backward(o[5], t, true, dy, 0, 1.0 / XN, o[6], XN, XC, 1);
        /* d[2], d[3]: mean, var, invstd, sum_dy, sum_dy_xc side by side; x's first values serve as gamma, beta */
        dn_bnorm_forward(x, o[7], BN, BC, BI, x, dy, 1e-5, true, d[2], d[2] + BC);
        for (int64_t c = 0; c < BC; c++) d[2][2 * BC + c] = 1.0 / sqrt(d[2][BC + c] + 1e-5);
        dn_bnorm_backward(x, dy, o[6], BN, BC, BI, x, d[2], d[2] + 2 * BC, true, d[2] + 3 * BC, d[2] + 4 * BC);
        dn_bnorm_forward(x, o[8], B1N, B1C, 1, x, dy, 1e-5, true, d[3], d[3] + B1C);
        for (int64_t c = 0; c < B1C; c++) d[3][2 * B1C + c] = 1.0 / sqrt(d[3][B1C + c] + 1e-5);
        dn_bnorm_backward(x, dy, o[8], B1N, B1C, 1, x, d[3], d[3] + 2 * B1C, true, d[3] + 3 * B1C, d[3] + 4 * B1C);
    }
    dn_set_threads(saved);
    for (int r = 1; r < RUNS; r++) {
        for (int k = 0; k < OUT; k++)
            CHECK_MSG(memcmp(out[0][k], out[r][k], (size_t)big * sizeof(float)) == 0,
                      "[%s] output %d differs between 1 and %d threads", isa_label, k, counts[r]);
        for (int k = 0; k < 4; k++)
            CHECK_MSG(memcmp(dout[0][k], dout[r][k], (size_t)XN * sizeof(double)) == 0,
                      "[%s] sums %d differ between 1 and %d threads", isa_label, k, counts[r]);
    }
done:
    free(x), free(dy), free(t), free(ti);
    for (int r = 0; r < RUNS; r++) {
        for (int k = 0; k < OUT; k++) free(out[r][k]);
        for (int k = 0; k < 4; k++) free(dout[r][k]);
    }
}
static void test_threads_bit_identical(void) { each_isa(threads_same_bits); }

/* ------------------------------------------------------------------ the PyTorch goldens on every ISA */

static void goldens(void)
{
    static const char *const ops[] = {"softmax", "log_softmax", "softmax_cross_entropy", "softmax_cross_entropy_soft",
                                      "batch_norm"};
    for (int k = 0; k < (int)(sizeof ops / sizeof ops[0]); k++) t_golden_file(ops[k]);
}
static void test_goldens_per_isa(void) { each_isa(goldens); }

void suite_rowkernels(void)
{
    RUN(test_softmax_vs_double);
    RUN(test_softmax_large_rows);
    RUN(test_softmax_edge_cases);
    RUN(test_xent_vs_double);
    RUN(test_bnorm_vs_double);
    RUN(test_threads_bit_identical);
    RUN(test_goldens_per_isa);
}
