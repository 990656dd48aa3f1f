/* The 2 x 2 max / min pooling kernel: the one place that picks the ISA's code (pool_avx512.c, pool_avx2.c) through
 * kernels/cpu.h, and the code for the rest: SSE2 (every x86-64 has it) with a scalar tail, or scalar.
 * pool_kernels.h states the rule all of them keep. */
#include "kernels/pool_kernels.h"
#include "kernels/cpu.h"

#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The common case, 2 x 2 windows with stride 2 and no padding, for max and min: every window lies inside the
 * plane, so the clipping goes, and the comparisons keep the general loop's order and rule (strict, so the first
 * extreme element wins ties; a NaN takes over).  The first element needs no comparison: against the -inf
 * (+inf) start it is taken or, being -inf (+inf) itself, equals the start, and the index starts at it either
 * way.  `off` is where the winner lies from the window's first element: 0, 1, W or W + 1. */
static inline float take2(bool is_max, float v, float best, int32_t *off, int32_t here)
{
    const bool take = (is_max ? v > best : v < best) || isnan(v);
    if (take) *off = here;
    return take ? v : best;
}

#ifdef __SSE2__
/* Four windows at once with SSE2 (every x86-64 has it): compare masks select the values and offsets, so no
 * branch depends on the data. */
static inline __m128 take4(bool is_max, __m128 v, __m128 best, __m128i *off, __m128i here)
{
    const __m128 better = is_max ? _mm_cmpgt_ps(v, best) : _mm_cmplt_ps(v, best);
    const __m128 take = _mm_or_ps(better, _mm_cmpunord_ps(v, v));
    const __m128i ti = _mm_castps_si128(take);
    *off = _mm_or_si128(_mm_and_si128(ti, here), _mm_andnot_si128(ti, *off));
    return _mm_or_ps(_mm_and_ps(take, v), _mm_andnot_ps(take, best));
}
#endif

void dn_pool_2x2(const dn_pool_geom *p, bool is_max, const float *xd, float *yd, int64_t *arg, int64_t pl0,
                 int64_t pl1)
{
#if defined(__x86_64__)
    if (dn_cpu_avx512() || dn_cpu_avx2()) {
        const bool wide = dn_cpu_avx512();
        for (int64_t pl = pl0; pl < pl1; pl++) {
            const float *xp = xd + pl * p->H * p->W;
            float *yp = yd + pl * p->Ho * p->Wo;
            int64_t *ap = arg + pl * p->Ho * p->Wo;
            if (wide) dn_pool_2x2_plane_avx512(p, is_max, xp, yp, ap);
            else dn_pool_2x2_plane_avx2(p, is_max, xp, yp, ap);
        }
        return;
    }
#endif
    const int64_t W = p->W, Ho = p->Ho, Wo = p->Wo;
    const int32_t down = (int32_t)W; /* W < 2^31: a layer's input has at most 2^31 elements */
    for (int64_t pl = pl0; pl < pl1; pl++) {
        const float *xp = xd + pl * p->H * W;
        for (int64_t oh = 0; oh < Ho; oh++) {
            const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
            float *yr = yd + (pl * Ho + oh) * Wo;
            int64_t *ar = arg + (pl * Ho + oh) * Wo;
            const int64_t first = 2 * oh * W; /* the index of window (oh, 0)'s first element in the plane */
            int64_t ow = 0;
#ifdef __SSE2__
            const __m128i one = _mm_set1_epi32(1), below = _mm_set1_epi32(down), diag = _mm_set1_epi32(down + 1);
            for (; ow + 4 <= Wo; ow += 4) {
                /* columns 2ow .. 2ow+7 of both rows, split into even (left) and odd (right) columns */
                const __m128 t0 = _mm_loadu_ps(r0 + 2 * ow), t1 = _mm_loadu_ps(r0 + 2 * ow + 4);
                const __m128 u0 = _mm_loadu_ps(r1 + 2 * ow), u1 = _mm_loadu_ps(r1 + 2 * ow + 4);
                const __m128 a = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));
                const __m128 b = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));
                const __m128 c = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));
                const __m128 d = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));
                __m128i off = _mm_setzero_si128();
                __m128 best = take4(is_max, b, a, &off, one);
                best = take4(is_max, c, best, &off, below);
                best = take4(is_max, d, best, &off, diag);
                _mm_storeu_ps(yr + ow, best);
                /* index = first + 2 ow + off, widened to 64 bits (off >= 0, so zeros are its high halves) */
                const __m128i lo = _mm_unpacklo_epi32(off, _mm_setzero_si128());
                const __m128i hi = _mm_unpackhi_epi32(off, _mm_setzero_si128());
                const int64_t base = first + 2 * ow;
                _mm_storeu_si128((__m128i *)(ar + ow), _mm_add_epi64(lo, _mm_set_epi64x(base + 2, base)));
                _mm_storeu_si128((__m128i *)(ar + ow + 2), _mm_add_epi64(hi, _mm_set_epi64x(base + 6, base + 4)));
            }
#endif
            for (; ow < Wo; ow++) {
                int32_t off = 0;
                float best = take2(is_max, r0[2 * ow + 1], r0[2 * ow], &off, 1);
                best = take2(is_max, r1[2 * ow], best, &off, down);
                best = take2(is_max, r1[2 * ow + 1], best, &off, down + 1);
                yr[ow] = best;
                ar[ow] = first + 2 * ow + off;
            }
        }
    }
}

