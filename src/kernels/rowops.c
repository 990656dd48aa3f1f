/* Vector primitives for the softmax and batch-norm kernels: a portable table and an AVX2 + FMA one (rowops.h).
 *
 * The portable loops work on 16 independent lanes so that gcc and clang vectorise them at -O3 for whatever
 * the target has (SSE2 on any x86-64, Advanced SIMD on aarch64) without -ffast-math: no reduction is ever
 * reassociated by the compiler, because the lanes are written out.  The AVX2 table does the same arithmetic
 * with two 8-float registers per lane set and masked loads and stores for the last n % 8 elements. */
#include "kernels/rowops.h"
#include "kernels/cpu.h"

#include <math.h>
#include <stdbool.h>

#if defined(__x86_64__) && !defined(DN_ROWOPS_NO_SIMD)
#define ROWOPS_X86 1
#include <immintrin.h>
#else
#define ROWOPS_X86 0
#endif

#define LANES 16
#define BLOCK DN_ROWOPS_BLOCK

/* The 16 double lanes summed in a fixed order: a pairwise tree. */
static double fold16(double *d)
{
    for (int w = LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) d[l] += d[l + w];
    return d[0];
}

/* ------------------------------------------------------------------ portable */

/* A reduction: TERM(i) is element i's float term; blocks of BLOCK elements add into 16 float lanes, each block
 * into 16 double lanes. */
#define RED_PORTABLE(name, params, TERM)                                                                    \
    static double name params                                                                               \
    {                                                                                                       \
        double dd_[LANES] = {0};                                                                              \
        for (int64_t b_ = 0; b_ < n; b_ += BLOCK) {                                                            \
            const int64_t end = n - b_ < BLOCK ? n : b_ + BLOCK;                                              \
            float a_[LANES] = {0};                                                                           \
            int64_t i = b_;                                                                                  \
            for (; i + LANES <= end; i += LANES)                                                            \
                for (int l = 0; l < LANES; l++) a_[l] += TERM(i + l);                                        \
            for (int l = 0; i + l < end; l++) a_[l] += TERM(i + l);                                          \
            for (int l = 0; l < LANES; l++) dd_[l] += (double)a_[l];                                           \
        }                                                                                                   \
        return fold16(dd_);                                                                                   \
    }

#define T_SUM(i) x[i]
#define T_DOT(i) (a[i] * b[i])
#define T_SUMC(i) ((x[i] - hi) - lo)
#define T_SQC(i) (((x[i] - hi) - lo) * ((x[i] - hi) - lo))
#define T_DOTC(i) (d[i] * ((x[i] - hi) - lo))
#define T_WDIFF(i) (t[i] * (m - x[i]))
RED_PORTABLE(sum_p, (const float *x, int64_t n), T_SUM)
RED_PORTABLE(dot_p, (const float *a, const float *b, int64_t n), T_DOT)
RED_PORTABLE(sum_c_p, (const float *x, float hi, float lo, int64_t n), T_SUMC)
RED_PORTABLE(sum_sq_c_p, (const float *x, float hi, float lo, int64_t n), T_SQC)
RED_PORTABLE(dot_c_p, (const float *d, const float *x, float hi, float lo, int64_t n), T_DOTC)
RED_PORTABLE(wdiff_p, (const float *t, const float *x, float m, int64_t n), T_WDIFF)

static float max_p(const float *x, int64_t n)
{
    float a[LANES];
    for (int l = 0; l < LANES; l++) a[l] = -INFINITY;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) a[l] = x[i + l] > a[l] ? x[i + l] : a[l];
    for (int l = 0; i + l < n; l++) a[l] = x[i + l] > a[l] ? x[i + l] : a[l];
    float m = -INFINITY;
    for (int l = 0; l < LANES; l++) m = a[l] > m ? a[l] : m;
    return m;
}

static void sub2_p(const float *x, float b1, float b2, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - b1) - b2;
}
static void scale_p(float *y, float s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] *= s;
}
static void axpy_p(float a, const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
static void affine_c_p(const float *x, float hi, float lo, float a, float b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = ((x[i] - hi) - lo) * a + b;
}
static void bn_dx_p(const float *x, const float *dy, float hi, float lo, float A, float B, float C, float *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dx[i] += A * dy[i] + (B * ((x[i] - hi) - lo) + C);
}
static void softmax_dx_p(const float *y, const float *dy, float dot, float *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dx[i] += y[i] * (dy[i] - dot);
}
static void log_softmax_dx_p(const float *e, const float *dy, float s, float *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] - e[i] * s;
}
static void xent_soft_dx_p(const float *p, const float *t, float T, float g, float *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dx[i] += g * (p[i] * T - t[i]);
}

static const dn_rowops portable = {
    .max = max_p,
    .sum = sum_p,
    .dot = dot_p,
    .sum_c = sum_c_p,
    .sum_sq_c = sum_sq_c_p,
    .dot_c = dot_c_p,
    .wdiff = wdiff_p,
    .sub2 = sub2_p,
    .scale = scale_p,
    .axpy = axpy_p,
    .affine_c = affine_c_p,
    .bn_dx = bn_dx_p,
    .softmax_dx = softmax_dx_p,
    .log_softmax_dx = log_softmax_dx_p,
    .xent_soft_dx = xent_soft_dx_p,
};

/* ------------------------------------------------------------------ AVX2 + FMA */

#if ROWOPS_X86

#define SIMD __attribute__((target("avx2,fma")))
#define SIMD_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

static const int32_t tail_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lanes 0 .. r-1 set (r clamped to [0, 8]). */
SIMD_INLINE __m256i tail_mask(int64_t r)
{
    r = r < 0 ? 0 : r > 8 ? 8 : r;
    return _mm256_loadu_si256((const __m256i *)(tail_bits + 8 - r));
}

#define LDU(p) _mm256_loadu_ps(p)
#define LDM(p) _mm256_maskload_ps((p), mk)
#define STU(p, v) _mm256_storeu_ps((p), (v))
#define STM(p, v) _mm256_maskstore_ps((p), mk, (v))
#define SET1 _mm256_set1_ps

/* The reduction of RED_PORTABLE with the same lanes: a0 holds lanes 0-7, a1 lanes 8-15. */
#define RED_AVX2(name, params, SETUP, TERM)                                                                 \
    SIMD static double name params                                                                          \
    {                                                                                                       \
        SETUP;                                                                                              \
        __m256d d0 = _mm256_setzero_pd(), d1 = d0, d2 = d0, d3 = d0;                                        \
        for (int64_t b_ = 0; b_ < n; b_ += BLOCK) {                                                            \
            const int64_t end = n - b_ < BLOCK ? n : b_ + BLOCK;                                              \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;                                                       \
            int64_t i = b_;                                                                                  \
            for (; i + LANES <= end; i += LANES) {                                                          \
                a0 = _mm256_add_ps(a0, TERM(LDU, i));                                                       \
                a1 = _mm256_add_ps(a1, TERM(LDU, i + 8));                                                   \
            }                                                                                               \
            if (i < end) {                                                                                  \
                __m256i mk = tail_mask(end - i);                                                            \
                a0 = _mm256_add_ps(a0, _mm256_and_ps(TERM(LDM, i), _mm256_castsi256_ps(mk)));               \
                if (i + 8 < end) {                                                                          \
                    mk = tail_mask(end - i - 8);                                                            \
                    a1 = _mm256_add_ps(a1, _mm256_and_ps(TERM(LDM, i + 8), _mm256_castsi256_ps(mk)));       \
                }                                                                                           \
            }                                                                                               \
            d0 = _mm256_add_pd(d0, _mm256_cvtps_pd(_mm256_castps256_ps128(a0)));                            \
            d1 = _mm256_add_pd(d1, _mm256_cvtps_pd(_mm256_extractf128_ps(a0, 1)));                          \
            d2 = _mm256_add_pd(d2, _mm256_cvtps_pd(_mm256_castps256_ps128(a1)));                            \
            d3 = _mm256_add_pd(d3, _mm256_cvtps_pd(_mm256_extractf128_ps(a1, 1)));                          \
        }                                                                                                   \
        double dd_[LANES];                                                                                    \
        _mm256_storeu_pd(dd_, d0);                                                                            \
        _mm256_storeu_pd(dd_ + 4, d1);                                                                        \
        _mm256_storeu_pd(dd_ + 8, d2);                                                                        \
        _mm256_storeu_pd(dd_ + 12, d3);                                                                       \
        return fold16(dd_);                                                                                   \
    }

#define V_SUM(L, i) L(x + (i))
#define V_DOT(L, i) _mm256_mul_ps(L(a + (i)), L(b + (i)))
#define V_CENTRE(L, i) _mm256_sub_ps(_mm256_sub_ps(L(x + (i)), vhi), vlo)
#define V_SUMC(L, i) V_CENTRE(L, i)
#define V_SQC(L, i) _mm256_mul_ps(V_CENTRE(L, i), V_CENTRE(L, i))
#define V_DOTC(L, i) _mm256_mul_ps(L(d + (i)), V_CENTRE(L, i))
#define V_WDIFF(L, i) _mm256_mul_ps(L(t + (i)), _mm256_sub_ps(vm, L(x + (i))))
#define CENTRE_SETUP const __m256 vhi = SET1(hi), vlo = SET1(lo)
RED_AVX2(sum_a, (const float *x, int64_t n), (void)0, V_SUM)
RED_AVX2(dot_a, (const float *a, const float *b, int64_t n), (void)0, V_DOT)
RED_AVX2(sum_c_a, (const float *x, float hi, float lo, int64_t n), CENTRE_SETUP, V_SUMC)
RED_AVX2(sum_sq_c_a, (const float *x, float hi, float lo, int64_t n), CENTRE_SETUP, V_SQC)
RED_AVX2(dot_c_a, (const float *d, const float *x, float hi, float lo, int64_t n), CENTRE_SETUP, V_DOTC)
RED_AVX2(wdiff_a, (const float *t, const float *x, float m, int64_t n), const __m256 vm = SET1(m), V_WDIFF)

SIMD static float max_a(const float *x, int64_t n)
{
    const __m256 ninf = SET1(-INFINITY);
    __m256 a0 = ninf, a1 = ninf;
    int64_t i = 0;
    /* maxps returns its second operand when the first is NaN: NaNs are skipped, as in max_p */
    for (; i + LANES <= n; i += LANES) {
        a0 = _mm256_max_ps(LDU(x + i), a0);
        a1 = _mm256_max_ps(LDU(x + i + 8), a1);
    }
    for (; i < n; i += 8) {
        const __m256i mk = tail_mask(n - i);
        a0 = _mm256_max_ps(_mm256_blendv_ps(ninf, LDM(x + i), _mm256_castsi256_ps(mk)), a0);
    }
    float a[LANES];
    _mm256_storeu_ps(a, a0);
    _mm256_storeu_ps(a + 8, a1);
    float m = -INFINITY;
    for (int l = 0; l < LANES; l++) m = a[l] > m ? a[l] : m;
    return m;
}

/* An elementwise loop: BODY(L, S, i) loads with L and stores with S for the 8 elements at i. */
#define MAP_AVX2(name, params, SETUP, BODY)                                                                 \
    SIMD static void name params                                                                            \
    {                                                                                                       \
        SETUP;                                                                                              \
        int64_t i = 0;                                                                                      \
        for (; i + 8 <= n; i += 8) BODY(LDU, STU, i);                                                       \
        if (i < n) {                                                                                        \
            const __m256i mk = tail_mask(n - i);                                                            \
            BODY(LDM, STM, i);                                                                              \
        }                                                                                                   \
    }

#define B_SUB2(L, S, i) S(y + (i), _mm256_sub_ps(_mm256_sub_ps(L(x + (i)), v1), v2))
#define B_SCALE(L, S, i) S(y + (i), _mm256_mul_ps(L(y + (i)), vs))
#define B_AXPY(L, S, i) S(y + (i), _mm256_fmadd_ps(va, L(x + (i)), L(y + (i))))
#define B_AFFINE(L, S, i) S(y + (i), _mm256_fmadd_ps(V_CENTRE(L, i), va, vb))
#define B_BNDX(L, S, i)                                                                                     \
    S(dx + (i), _mm256_add_ps(L(dx + (i)), _mm256_fmadd_ps(vA, L(dy + (i)), _mm256_fmadd_ps(vB, V_CENTRE(L, i), vC))))
#define B_SMDX(L, S, i) S(dx + (i), _mm256_fmadd_ps(L(y + (i)), _mm256_sub_ps(L(dy + (i)), vd), L(dx + (i))))
#define B_LSMDX(L, S, i) S(dx + (i), _mm256_add_ps(L(dx + (i)), _mm256_fnmadd_ps(L(e + (i)), vs, L(dy + (i)))))
#define B_XSDX(L, S, i)                                                                                     \
    S(dx + (i), _mm256_fmadd_ps(vg, _mm256_fmsub_ps(L(p + (i)), vT, L(t + (i))), L(dx + (i))))
MAP_AVX2(sub2_a, (const float *x, float b1, float b2, float *y, int64_t n), const __m256 v1 = SET1(b1); const __m256 v2 = SET1(b2), B_SUB2)
MAP_AVX2(scale_a, (float *y, float s, int64_t n), const __m256 vs = SET1(s), B_SCALE)
MAP_AVX2(axpy_a, (float a, const float *x, float *y, int64_t n), const __m256 va = SET1(a), B_AXPY)
MAP_AVX2(affine_c_a, (const float *x, float hi, float lo, float a, float b, float *y, int64_t n),
         CENTRE_SETUP; const __m256 va = SET1(a); const __m256 vb = SET1(b), B_AFFINE)
MAP_AVX2(bn_dx_a, (const float *x, const float *dy, float hi, float lo, float A, float B, float C, float *dx, int64_t n),
         CENTRE_SETUP; const __m256 vA = SET1(A); const __m256 vB = SET1(B); const __m256 vC = SET1(C), B_BNDX)
MAP_AVX2(softmax_dx_a, (const float *y, const float *dy, float dot, float *dx, int64_t n), const __m256 vd = SET1(dot),
         B_SMDX)
MAP_AVX2(log_softmax_dx_a, (const float *e, const float *dy, float s, float *dx, int64_t n), const __m256 vs = SET1(s),
         B_LSMDX)
MAP_AVX2(xent_soft_dx_a, (const float *p, const float *t, float T, float g, float *dx, int64_t n),
         const __m256 vT = SET1(T); const __m256 vg = SET1(g), B_XSDX)

static const dn_rowops avx2 = {
    .max = max_a,
    .sum = sum_a,
    .dot = dot_a,
    .sum_c = sum_c_a,
    .sum_sq_c = sum_sq_c_a,
    .dot_c = dot_c_a,
    .wdiff = wdiff_a,
    .sub2 = sub2_a,
    .scale = scale_a,
    .axpy = axpy_a,
    .affine_c = affine_c_a,
    .bn_dx = bn_dx_a,
    .softmax_dx = softmax_dx_a,
    .log_softmax_dx = log_softmax_dx_a,
    .xent_soft_dx = xent_soft_dx_a,
};

#endif /* ROWOPS_X86 */

const dn_rowops *dn_rowops_get(void)
{
#if ROWOPS_X86
    if (dn_cpu_avx2()) return &avx2;
#endif
    return &portable;
}
