/* The 2 x 2 max / min pooling kernel with AVX2 (pool_kernels.h says what it computes): eight windows at once, the
 * comparisons of pool_avx512.c and pool2x2.c's SSE2 code in the same order (b, then c, then d against the best
 * so far, starting from a), a row's tail of fewer than eight windows loaded masked.  Built on every x86-64 compiler
 * (target attributes), run only where kernels/cpu.h allows AVX2. */
#include "kernels/pool_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))

/* 8 lanes of -1 then 8 of 0: loaded from ones_then_zeros + 8 - k, the mask of the first k 32-bit lanes. */
static const int32_t ones_then_zeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

TARGET static inline __m256i first_lanes(int64_t k) /* 0 <= k <= 8 */
{
    return _mm256_loadu_si256((const __m256i *)(ones_then_zeros + 8 - k));
}

/* The even and the odd elements of the 16 floats lo, hi, in order. */
TARGET static inline void deinterleave(__m256 lo, __m256 hi, __m256 *even, __m256 *odd)
{
    /* the shuffles work within 128-bit halves: (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6); the 64-bit pairs then go
     * back in order 0, 2, 1, 3 */
    const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* v replaces best where it is strictly better or a NaN; off records here there. */
TARGET static inline __m256 take8(bool is_max, __m256 v, __m256 best, __m256i *off, __m256i here)
{
    const __m256 better = is_max ? _mm256_cmp_ps(v, best, _CMP_GT_OQ) : _mm256_cmp_ps(v, best, _CMP_LT_OQ);
    const __m256 take = _mm256_or_ps(better, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    *off = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*off), _mm256_castsi256_ps(here), take));
    return _mm256_blendv_ps(best, v, take);
}

TARGET void dn_pool_2x2_plane_avx2(const dn_pool_geom *p, bool is_max, const float *xp, float *yp, int64_t *ap)
{
    const int64_t W = p->W, Ho = p->Ho, Wo = p->Wo;
    const __m256i one = _mm256_set1_epi32(1), below = _mm256_set1_epi32((int32_t)W);
    const __m256i diag = _mm256_set1_epi32((int32_t)W + 1);
    const __m256i lane2_lo = _mm256_setr_epi64x(0, 2, 4, 6), lane2_hi = _mm256_setr_epi64x(8, 10, 12, 14);
    for (int64_t oh = 0; oh < Ho; oh++) {
        const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
        float *yr = yp + oh * Wo;
        int64_t *ar = ap + oh * Wo;
        for (int64_t ow = 0; ow < Wo; ow += 8) {
            const int64_t n = Wo - ow < 8 ? Wo - ow : 8; /* windows in this pass: 2n inputs per row */
            __m256 t0, t1, u0, u1;
            if (n == 8) {
                t0 = _mm256_loadu_ps(r0 + 2 * ow), t1 = _mm256_loadu_ps(r0 + 2 * ow + 8);
                u0 = _mm256_loadu_ps(r1 + 2 * ow), u1 = _mm256_loadu_ps(r1 + 2 * ow + 8);
            } else { /* lanes past the row's 2n inputs are not read (and are dropped below) */
                const __m256i lo_m = first_lanes(2 * n >= 8 ? 8 : 2 * n), hi_m = first_lanes(2 * n > 8 ? 2 * n - 8 : 0);
                t0 = _mm256_maskload_ps(r0 + 2 * ow, lo_m), t1 = _mm256_maskload_ps(r0 + 2 * ow + 8, hi_m);
                u0 = _mm256_maskload_ps(r1 + 2 * ow, lo_m), u1 = _mm256_maskload_ps(r1 + 2 * ow + 8, hi_m);
            }
            __m256 a, b, c, d;
            deinterleave(t0, t1, &a, &b);
            deinterleave(u0, u1, &c, &d);
            __m256i off = _mm256_setzero_si256();
            __m256 best = take8(is_max, b, a, &off, one);
            best = take8(is_max, c, best, &off, below);
            best = take8(is_max, d, best, &off, diag);
            /* index = 2 oh W + 2 (ow + lane) + off, in 64 bits */
            const __m256i base = _mm256_set1_epi64x(2 * oh * W + 2 * ow);
            const __m256i lo = _mm256_add_epi64(_mm256_add_epi64(base, lane2_lo),
                                                _mm256_cvtepi32_epi64(_mm256_castsi256_si128(off)));
            const __m256i hi = _mm256_add_epi64(_mm256_add_epi64(base, lane2_hi),
                                                _mm256_cvtepi32_epi64(_mm256_extracti128_si256(off, 1)));
            if (n == 8) {
                _mm256_storeu_ps(yr + ow, best);
                _mm256_storeu_si256((__m256i *)(ar + ow), lo);
                _mm256_storeu_si256((__m256i *)(ar + ow + 4), hi);
            } else { /* through the stack: masked stores are slow on some AVX2 CPUs (AMD Zen 2) */
                float yt[8];
                int64_t at[8];
                _mm256_storeu_ps(yt, best);
                _mm256_storeu_si256((__m256i *)at, lo);
                _mm256_storeu_si256((__m256i *)(at + 4), hi);
                for (int64_t t = 0; t < n; t++) {
                    yr[ow + t] = yt[t];
                    ar[ow + t] = at[t];
                }
            }
        }
    }
}
#endif
