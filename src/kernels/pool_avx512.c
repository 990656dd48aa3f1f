/* The 2 x 2 max / min pooling kernel with AVX-512 (pool_kernels.h says what it computes; pool_avx2.c is the same
 * for AVX2).  Built on every x86-64 compiler (target attributes), run only where kernels/cpu.h allows AVX-512. */
#include "kernels/pool_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Sixteen windows at once with AVX-512 (a LeNet row of 14 or 5 windows is one pass, the tail masked): the
 * same comparisons, in the same order, as take4. */
__attribute__((target("avx512f"))) void dn_pool_2x2_plane_avx512(const dn_pool_geom *p, bool is_max, const float *xp,
                                                                  float *yp, int64_t *ap)
{
    const int64_t W = p->W, Ho = p->Ho, Wo = p->Wo;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i one = _mm512_set1_epi32(1), below = _mm512_set1_epi32((int32_t)W), diag = _mm512_set1_epi32((int32_t)W + 1);
    const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
#define POOL_TAKE(v) ((is_max ? _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) : _mm512_cmp_ps_mask(v, best, _CMP_LT_OQ)) | \
                      _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q))
    for (int64_t oh = 0; oh < Ho; oh++) {
        const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
        float *yr = yp + oh * Wo;
        for (int64_t ow = 0; ow < Wo; ow += 16) {
            const int64_t n = Wo - ow < 16 ? Wo - ow : 16; /* windows in this pass: 2n inputs per row */
            const __mmask16 lo_m = (__mmask16)(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1u);
            const __mmask16 hi_m = (__mmask16)(n > 8 ? (1u << (2 * n - 16)) - 1u : 0u);
            const __m512 t0 = _mm512_maskz_loadu_ps(lo_m, r0 + 2 * ow), t1 = _mm512_maskz_loadu_ps(hi_m, r0 + 2 * ow + 16);
            const __m512 u0 = _mm512_maskz_loadu_ps(lo_m, r1 + 2 * ow), u1 = _mm512_maskz_loadu_ps(hi_m, r1 + 2 * ow + 16);
            const __m512 a = _mm512_permutex2var_ps(t0, even, t1), b = _mm512_permutex2var_ps(t0, odd, t1);
            const __m512 c = _mm512_permutex2var_ps(u0, even, u1), d = _mm512_permutex2var_ps(u0, odd, u1);
            __m512 best = a;
            __m512i off = _mm512_setzero_si512();
            __mmask16 take = POOL_TAKE(b);
            best = _mm512_mask_mov_ps(best, take, b);
            off = _mm512_mask_mov_epi32(off, take, one);
            take = POOL_TAKE(c);
            best = _mm512_mask_mov_ps(best, take, c);
            off = _mm512_mask_mov_epi32(off, take, below);
            take = POOL_TAKE(d);
            best = _mm512_mask_mov_ps(best, take, d);
            off = _mm512_mask_mov_epi32(off, take, diag);
            const __mmask16 out_m = (__mmask16)((1u << n) - 1u);
            _mm512_mask_storeu_ps(yr + ow, out_m, best);
            { /* index = 2 oh W + 2 (ow + lane) + off, in 64 bits */
                int64_t *ar = ap + oh * Wo + ow;
                const __m512i base = _mm512_add_epi64(_mm512_set1_epi64(2 * oh * W + 2 * ow), lane2);
                const __m512i lo = _mm512_add_epi64(base, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(off)));
                const __m512i hi = _mm512_add_epi64(_mm512_add_epi64(base, _mm512_set1_epi64(16)),
                                                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(off, 1)));
                _mm512_mask_storeu_epi64(ar, (__mmask8)out_m, lo);
                _mm512_mask_storeu_epi64(ar + 8, (__mmask8)(out_m >> 8), hi);
            }
        }
    }
#undef POOL_TAKE
}
#endif
