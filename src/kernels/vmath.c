/* Vectorised exp, tanh, sigmoid and log over float arrays (see vmath.h for the contract).
 *
 * Why not libm: glibc's expf/tanhf are scalar calls, ~27% of an LSTM's training time went into them, and
 * the compiler cannot vectorise a loop around them.  These are the classic Cephes single-precision
 * algorithms (Moshier), written once as scalar C (the portable path), once with AVX2 + FMA intrinsics
 * (8 lanes) and once with NEON (4 lanes, aarch64), chosen at run time, with the same constants.  Each is a range reduction to a small interval,
 * a short polynomial there, and a reconstruction:
 *
 *   exp(x)     = 2^n e^r,  n = round(x log2 e),  r = x - n ln2 in [-ln2/2, ln2/2]
 *                (ln2 split in a 9-bit hi part and a lo part, so n*hi is exact and r loses nothing)
 *                e^r = 1 + r + r^2 P(r), P of degree 5
 *   tanh(x)    = x + x s Q(s), s = x^2              for |x| < 0.625 (Q of degree 4)
 *              = sign(x) (1 - 2 / (e^(2|x|) + 1))   otherwise (|x| clamped to 10 first: tanh(10) rounds to 1)
 *   sigmoid(x) = 1 / (1 + e^-|x|)                   for x >= 0
 *              = e^-|x| / (1 + e^-|x|)              for x < 0  (e^|x| is never formed, so no overflow and
 *                                                               the tiny results for x << 0 keep their precision)
 *   log(x)     = k ln2 + log(1 + f),  x = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt(2))
 *                log(1 + f) = f - f^2/2 + f^3 R(f), R of degree 8
 *
 * 2^n is built from the exponent bits.  To keep subnormal results of exp (x in [-103.97, -87.34]) instead
 * of flushing them, the scale is applied in two halves, 2^(n/2) 2^(n - n/2): each half is a normal float,
 * the first product is exact, and the second rounds once, like any other result.  Subnormal inputs to log
 * are scaled by 2^23 first.
 *
 * Accuracy against double-precision libm, measured over every float of each function's range: exp 1.01 ulp,
 * tanh 1.33, sigmoid 1.48, log 0.83, on both paths (docs/ops.md; tests/test_vmath.c keeps checking it). */
#include "kernels/vmath.h"
#include "kernels/cpu.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && !defined(DN_VMATH_NO_SIMD)
#define DN_VMATH_X86 1
#include <immintrin.h>
#else
#define DN_VMATH_X86 0
#endif
#if defined(__aarch64__) && !defined(DN_VMATH_NO_SIMD)
#define DN_VMATH_NEON 1
#include <arm_neon.h>
#else
#define DN_VMATH_NEON 0
#endif

/* exp: inputs are clamped to [EXP_LO, EXP_HI] first.  Beyond 88.72 the result overflows to +inf (the
 * reconstruction does that by itself); below -103.97 it is below half the smallest subnormal, so 0. */
#define EXP_HI 89.0f
#define EXP_LO -104.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f      /* 355/512: n * LN2_HI is exact for |n| < 2^15 */
#define LN2_LO -2.12194440e-4f   /* ln2 - LN2_HI */
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f
/* adding and subtracting 1.5 * 2^23 rounds a float of magnitude < 2^22 to the nearest integer */
#define ROUND_MAGIC 12582912.0f

#define TANH_SMALL 0.625f
#define TANH_CLAMP 10.0f
#define TANH_Q0 -5.70498872745e-3f
#define TANH_Q1 2.06390887954e-2f
#define TANH_Q2 -5.37397155531e-2f
#define TANH_Q3 1.33314422036e-1f
#define TANH_Q4 -3.33332819422e-1f

#define SQRT_HALF 0.707106781186547524f
#define LOG_R0 7.0376836292e-2f
#define LOG_R1 -1.1514610310e-1f
#define LOG_R2 1.1676998740e-1f
#define LOG_R3 -1.2420140846e-1f
#define LOG_R4 1.4249322787e-1f
#define LOG_R5 -1.6668057665e-1f
#define LOG_R6 2.0000714765e-1f
#define LOG_R7 -2.4999993993e-1f
#define LOG_R8 3.3333331174e-1f

/* ------------------------------------------------------------------ portable path */

static inline uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 2^k for a k in [-126, 127] */
static inline float pow2i(int32_t k) { return float_of((uint32_t)(k + 127) << 23); }

static inline float exp_1(float x)
{
    float v = x < EXP_HI ? x : EXP_HI; /* a NaN becomes EXP_HI here and is put back at the end */
    v = v > EXP_LO ? v : EXP_LO;
    float n = (v * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    float r = v - n * LN2_HI;
    r = r - n * LN2_LO;
    float p = EXP_P0;
    p = p * r + EXP_P1;
    p = p * r + EXP_P2;
    p = p * r + EXP_P3;
    p = p * r + EXP_P4;
    p = p * r + EXP_P5;
    p = p * (r * r) + r + 1.0f;
    int32_t k = (int32_t)n, k1 = k / 2; /* k in [-150, 129]: both halves are normal exponents */
    float y = p * pow2i(k1) * pow2i(k - k1);
    return x != x ? x : y;
}

static inline float tanh_1(float x)
{
    float a = fabsf(x);
    float s = a * a;
    float q = TANH_Q0;
    q = q * s + TANH_Q1;
    q = q * s + TANH_Q2;
    q = q * s + TANH_Q3;
    q = q * s + TANH_Q4;
    float small = q * s * a + a;
    float e = exp_1(2.0f * (a > TANH_CLAMP ? TANH_CLAMP : a)); /* a NaN passes through */
    float large = 1.0f - 2.0f / (e + 1.0f);
    return copysignf(a < TANH_SMALL ? small : large, x); /* tanh(-0) = -0 */
}

/* 1 + e and the quotient in double: exact or nearly so, which keeps the result within the exp error plus
 * one rounding (in float the rounding of 1 + e comes on top: 2.26 ulp in all). */
static inline float sigmoid_1(float x)
{
    float e = exp_1(-fabsf(x));
    return (float)((double)(x < 0.0f ? e : 1.0f) / (1.0 + (double)e));
}

static inline float log_1(float x)
{
    /* subnormal (and 0 or negative: fixed below) inputs are scaled into the normal range first */
    bool tiny = x < FLT_MIN;
    uint32_t u = bits_of(tiny ? x * 0x1p23f : x);
    int32_t k = (int32_t)((u >> 23) & 0xff) - 126 - (tiny ? 23 : 0);
    float m = float_of((u & 0x007fffffu) | 0x3f000000u); /* x = 2^k m, m in [0.5, 1) */
    if (m < SQRT_HALF) {
        k -= 1;
        m = m + m - 1.0f;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float p = LOG_R0;
    p = p * m + LOG_R1;
    p = p * m + LOG_R2;
    p = p * m + LOG_R3;
    p = p * m + LOG_R4;
    p = p * m + LOG_R5;
    p = p * m + LOG_R6;
    p = p * m + LOG_R7;
    p = p * m + LOG_R8;
    float fk = (float)k;
    float y = p * m * z;
    y = y + LN2_LO * fk;
    y = y - 0.5f * z;
    y = m + y + LN2_HI * fk;
    if (x != x || x == INFINITY) return x;
    if (x == 0.0f) return -INFINITY;
    if (x < 0.0f) return NAN;
    return y;
}

void dn_vexp_portable(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = exp_1(x[i]);
}

void dn_vtanh_portable(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = tanh_1(x[i]);
}

void dn_vsigmoid_portable(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = sigmoid_1(x[i]);
}

void dn_vlog_portable(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = log_1(x[i]);
}

/* ------------------------------------------------------------------ AVX2 + FMA path */

#if DN_VMATH_X86

#define SIMD __attribute__((target("avx2,fma")))
#define SIMD_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

SIMD_INLINE __m256 pow2_8(__m256i k)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

SIMD_INLINE __m256 exp_8(__m256 x)
{
    __m256 v = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(EXP_HI)), _mm256_set1_ps(EXP_LO));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), v);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i k = _mm256_cvtps_epi32(n);
    __m256i k1 = _mm256_srai_epi32(k, 1);
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, pow2_8(k1)), pow2_8(_mm256_sub_epi32(k, k1)));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); /* NaN in, NaN out */
}

SIMD_INLINE __m256 tanh_8(__m256 x)
{
    const __m256 sign_bit = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_andnot_ps(sign_bit, x);
    __m256 s = _mm256_mul_ps(a, a);
    __m256 q = _mm256_set1_ps(TANH_Q0);
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(TANH_Q1));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(TANH_Q2));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(TANH_Q3));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(TANH_Q4));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(q, s), a, a);
    /* min(10, a) keeps a NaN (minps returns its second operand when either is NaN) */
    __m256 ac = _mm256_min_ps(_mm256_set1_ps(TANH_CLAMP), a);
    __m256 e = exp_8(_mm256_add_ps(ac, ac));
    __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    __m256 y = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, _mm256_set1_ps(TANH_SMALL), _CMP_LT_OQ));
    return _mm256_or_ps(y, _mm256_and_ps(sign_bit, x));
}

/* The denominator 1 + e rounds (up to ~0.9 ulp of the result, 2.26 ulp in all), so its rounding error
 * t = (1 - d) + e is kept (exact, as 1 >= e) and the quotient q = num / d corrected to num / (d + t):
 *     residual = num - q d - q t  (the first product exact by FMA),   q += residual / d
 * where an approximate 1/d (rcpps, 12 bits) is plenty for a correction of about an ulp. */
SIMD_INLINE __m256 sigmoid_8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp_8(_mm256_or_ps(x, _mm256_set1_ps(-0.0f))); /* e^-|x|: set the sign bit */
    __m256 num = _mm256_blendv_ps(one, e, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    __m256 d = _mm256_add_ps(one, e);
    __m256 t = _mm256_add_ps(_mm256_sub_ps(one, d), e);
    __m256 q = _mm256_div_ps(num, d);
    __m256 residual = _mm256_fnmadd_ps(q, t, _mm256_fnmadd_ps(q, d, num));
    return _mm256_fmadd_ps(residual, _mm256_rcp_ps(d), q); /* a NaN stays NaN; e = 0 (x = +-inf) gives q */
}

SIMD_INLINE __m256 log_8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(FLT_MIN), _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(0x1p23f)), tiny);
    __m256i u = _mm256_castps_si256(xs);
    __m256i k = _mm256_sub_epi32(_mm256_srli_epi32(u, 23), _mm256_set1_epi32(126));
    k = _mm256_sub_epi32(k, _mm256_and_si256(_mm256_castps_si256(tiny), _mm256_set1_epi32(23)));
    __m256 m = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
    /* m < sqrt(1/2): use 2m - 1 and k - 1 */
    __m256 lo = _mm256_cmp_ps(m, _mm256_set1_ps(SQRT_HALF), _CMP_LT_OQ);
    k = _mm256_add_epi32(k, _mm256_castps_si256(lo)); /* the mask is -1 where set */
    m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(m, lo)), one);
    __m256 z = _mm256_mul_ps(m, m);
    __m256 p = _mm256_set1_ps(LOG_R0);
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R1));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R2));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R3));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R4));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R5));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R6));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R7));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(LOG_R8));
    __m256 fk = _mm256_cvtepi32_ps(k);
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, m), z);
    y = _mm256_fmadd_ps(fk, _mm256_set1_ps(LN2_LO), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
    y = _mm256_fmadd_ps(fk, _mm256_set1_ps(LN2_HI), _mm256_add_ps(m, y));
    /* log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, log(NaN) = NaN */
    y = _mm256_blendv_ps(y, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    __m256 pass = _mm256_or_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q), _mm256_cmp_ps(x, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
    return _mm256_blendv_ps(y, x, pass);
}

/* The array loop: whole vectors, then the last n % 8 elements through a zero-padded buffer (so a tail
 * is computed exactly as a full vector would compute it). */
#define ARRAY_SIMD(name, kernel)                                                                            \
    SIMD static void name(const float *x, float *y, int64_t n)                                              \
    {                                                                                                       \
        int64_t i = 0;                                                                                      \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, kernel(_mm256_loadu_ps(x + i)));                 \
        if (i < n) {                                                                                        \
            float buf[8] = {0};                                                                             \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));                                            \
            _mm256_storeu_ps(buf, kernel(_mm256_loadu_ps(buf)));                                            \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));                                            \
        }                                                                                                   \
    }
ARRAY_SIMD(vexp_avx2, exp_8)
ARRAY_SIMD(vtanh_avx2, tanh_8)
ARRAY_SIMD(vsigmoid_avx2, sigmoid_8)
ARRAY_SIMD(vlog_avx2, log_8)

#endif /* DN_VMATH_X86 */

/* ------------------------------------------------------------------ NEON path (AArch64)
 *
 * The AVX2 code lane for lane, 4 lanes wide: the same constants, the same fused multiply-adds in the same
 * order, the same clamps and selects.  Two differences, neither of which moves a result by more than a tiny
 * fraction of an ulp: the sigmoid correction multiplies by vrecpeq's 8-bit reciprocal estimate instead of
 * rcpps's 12-bit one (the correction itself is about an ulp, so an 8-bit factor leaves ~1/256 ulp of error), and
 * the clamps use vminnmq/vmaxnmq, which like minps/maxps return the number when one operand is NaN. */

#if DN_VMATH_NEON

static inline float32x4_t sel4(uint32x4_t mask, float32x4_t if_set, float32x4_t if_clear)
{
    return vbslq_f32(mask, if_set, if_clear);
}

static inline float32x4_t pow2_4(int32x4_t k)
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23));
}

/* fmadd(a, b, c) = a*b + c and fnmadd(a, b, c) = c - a*b, one rounding each, as the AVX2 intrinsics */
#define FMADD4(a, b, c) vfmaq_f32((c), (a), (b))
#define FNMADD4(a, b, c) vfmsq_f32((c), (a), (b))

static inline float32x4_t exp_4(float32x4_t x)
{
    float32x4_t v = vmaxnmq_f32(vminnmq_f32(x, vdupq_n_f32(EXP_HI)), vdupq_n_f32(EXP_LO));
    float32x4_t n = vrndnq_f32(vmulq_f32(v, vdupq_n_f32(LOG2E))); /* to nearest, ties to even, like roundps */
    float32x4_t r = FNMADD4(n, vdupq_n_f32(LN2_HI), v);
    r = FNMADD4(n, vdupq_n_f32(LN2_LO), r);
    float32x4_t p = vdupq_n_f32(EXP_P0);
    p = FMADD4(p, r, vdupq_n_f32(EXP_P1));
    p = FMADD4(p, r, vdupq_n_f32(EXP_P2));
    p = FMADD4(p, r, vdupq_n_f32(EXP_P3));
    p = FMADD4(p, r, vdupq_n_f32(EXP_P4));
    p = FMADD4(p, r, vdupq_n_f32(EXP_P5));
    p = vaddq_f32(FMADD4(p, vmulq_f32(r, r), r), vdupq_n_f32(1.0f));
    int32x4_t k = vcvtq_s32_f32(n); /* n is a whole number: truncation is exact */
    int32x4_t k1 = vshrq_n_s32(k, 1);  /* arithmetic shift, as srai */
    float32x4_t y = vmulq_f32(vmulq_f32(p, pow2_4(k1)), pow2_4(vsubq_s32(k, k1)));
    return sel4(vceqq_f32(x, x), y, x); /* NaN in, NaN out */
}

static inline float32x4_t tanh_4(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t a = vabsq_f32(x);
    float32x4_t s = vmulq_f32(a, a);
    float32x4_t q = vdupq_n_f32(TANH_Q0);
    q = FMADD4(q, s, vdupq_n_f32(TANH_Q1));
    q = FMADD4(q, s, vdupq_n_f32(TANH_Q2));
    q = FMADD4(q, s, vdupq_n_f32(TANH_Q3));
    q = FMADD4(q, s, vdupq_n_f32(TANH_Q4));
    float32x4_t small = FMADD4(vmulq_f32(q, s), a, a);
    float32x4_t ac = vminq_f32(vdupq_n_f32(TANH_CLAMP), a); /* vminq propagates a NaN */
    float32x4_t e = exp_4(vaddq_f32(ac, ac));
    float32x4_t large = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one)));
    float32x4_t y = sel4(vcltq_f32(a, vdupq_n_f32(TANH_SMALL)), small, large);
    /* copy the sign of x (tanh(-0) = -0) */
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    return vreinterpretq_f32_u32(
        vorrq_u32(vreinterpretq_u32_f32(y), vandq_u32(sign, vreinterpretq_u32_f32(x))));
}

/* as sigmoid_8: q = num / d, corrected for the rounding of d = 1 + e */
static inline float32x4_t sigmoid_4(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t e = exp_4(vnegq_f32(vabsq_f32(x))); /* e^-|x| */
    float32x4_t num = sel4(vcltq_f32(x, vdupq_n_f32(0.0f)), e, one);
    float32x4_t d = vaddq_f32(one, e);
    float32x4_t t = vaddq_f32(vsubq_f32(one, d), e);
    float32x4_t q = vdivq_f32(num, d);
    float32x4_t residual = FNMADD4(q, t, FNMADD4(q, d, num));
    return FMADD4(residual, vrecpeq_f32(d), q);
}

static inline float32x4_t log_4(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f), zero = vdupq_n_f32(0.0f);
    uint32x4_t tiny = vcltq_f32(x, vdupq_n_f32(FLT_MIN));
    float32x4_t xs = sel4(tiny, vmulq_f32(x, vdupq_n_f32(0x1p23f)), x);
    uint32x4_t u = vreinterpretq_u32_f32(xs);
    int32x4_t k = vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(u, 23)), vdupq_n_s32(126));
    k = vsubq_s32(k, vreinterpretq_s32_u32(vandq_u32(tiny, vdupq_n_u32(23))));
    float32x4_t m = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(u, vdupq_n_u32(0x007fffffu)), vdupq_n_u32(0x3f000000u)));
    /* m < sqrt(1/2): use 2m - 1 and k - 1 */
    uint32x4_t lo = vcltq_f32(m, vdupq_n_f32(SQRT_HALF));
    k = vaddq_s32(k, vreinterpretq_s32_u32(lo)); /* the mask is -1 where set */
    m = vsubq_f32(vaddq_f32(m, vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(m), lo))), one);
    float32x4_t z = vmulq_f32(m, m);
    float32x4_t p = vdupq_n_f32(LOG_R0);
    p = FMADD4(p, m, vdupq_n_f32(LOG_R1));
    p = FMADD4(p, m, vdupq_n_f32(LOG_R2));
    p = FMADD4(p, m, vdupq_n_f32(LOG_R3));
    p = FMADD4(p, m, vdupq_n_f32(LOG_R4));
    p = FMADD4(p, m, vdupq_n_f32(LOG_R5));
    p = FMADD4(p, m, vdupq_n_f32(LOG_R6));
    p = FMADD4(p, m, vdupq_n_f32(LOG_R7));
    p = FMADD4(p, m, vdupq_n_f32(LOG_R8));
    float32x4_t fk = vcvtq_f32_s32(k);
    float32x4_t y = vmulq_f32(vmulq_f32(p, m), z);
    y = FMADD4(fk, vdupq_n_f32(LN2_LO), y);
    y = FNMADD4(vdupq_n_f32(0.5f), z, y);
    y = FMADD4(fk, vdupq_n_f32(LN2_HI), vaddq_f32(m, y));
    /* log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, log(NaN) = NaN */
    y = sel4(vceqq_f32(x, zero), vdupq_n_f32(-INFINITY), y);
    y = sel4(vcltq_f32(x, zero), vdupq_n_f32(NAN), y);
    uint32x4_t pass = vorrq_u32(vmvnq_u32(vceqq_f32(x, x)), vceqq_f32(x, vdupq_n_f32(INFINITY)));
    return sel4(pass, x, y);
}
#undef FMADD4
#undef FNMADD4

/* whole vectors, then the last n % 4 elements through a zero-padded buffer, as ARRAY_SIMD */
#define ARRAY_NEON(name, kernel)                                                                            \
    static void name(const float *x, float *y, int64_t n)                                                   \
    {                                                                                                       \
        int64_t i = 0;                                                                                      \
        for (; i + 4 <= n; i += 4) vst1q_f32(y + i, kernel(vld1q_f32(x + i)));                              \
        if (i < n) {                                                                                        \
            float buf[4] = {0};                                                                             \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));                                            \
            vst1q_f32(buf, kernel(vld1q_f32(buf)));                                                         \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));                                            \
        }                                                                                                   \
    }
ARRAY_NEON(vexp_neon, exp_4)
ARRAY_NEON(vtanh_neon, tanh_4)
ARRAY_NEON(vsigmoid_neon, sigmoid_4)
ARRAY_NEON(vlog_neon, log_4)

#endif /* DN_VMATH_NEON */

/* ------------------------------------------------------------------ dispatch */

bool dn_vmath_simd(void)
{
#if DN_VMATH_X86
    return dn_cpu_avx2();
#elif DN_VMATH_NEON
    return dn_cpu_neon();
#else
    return false;
#endif
}

#if DN_VMATH_X86
#define DISPATCH(name)                                                                                      \
    void dn_##name(const float *x, float *y, int64_t n)                                                     \
    {                                                                                                       \
        if (dn_vmath_simd()) name##_avx2(x, y, n);                                                          \
        else dn_##name##_portable(x, y, n);                                                                 \
    }
#elif DN_VMATH_NEON
#define DISPATCH(name)                                                                                      \
    void dn_##name(const float *x, float *y, int64_t n)                                                     \
    {                                                                                                       \
        if (dn_vmath_simd()) name##_neon(x, y, n);                                                          \
        else dn_##name##_portable(x, y, n);                                                                 \
    }
#else
#define DISPATCH(name)                                                                                      \
    void dn_##name(const float *x, float *y, int64_t n) { dn_##name##_portable(x, y, n); }
#endif
DISPATCH(vexp)
DISPATCH(vtanh)
DISPATCH(vsigmoid)
DISPATCH(vlog)
