/* The convolution's AVX-512 kernels: the gemm's B panels packed straight from the padded input, and the weight
 * gradient as dot products over the pixels (conv_kernels.h and conv_pack.c say what they compute; conv_avx2.c
 * is the same for AVX2).  Built on every x86-64 compiler (target attributes), run only where kernels/cpu.h allows
 * AVX-512. */
#include "kernels/conv_isa.h"

#if DN_CONV_X86
#include <immintrin.h>

/* Tap k's values for the 16 columns of the runs: one masked load per run (lanes of no run are 0). */
__attribute__((target("avx512f"), always_inline)) static inline __m512 pack_tap(const float *xpad, int runs,
                                                                                 const int64_t *base,
                                                                                 const __mmask16 *mask, int64_t off)
{
    __m512 v = _mm512_maskz_loadu_ps(mask[0], xpad + base[0] + off);
    for (int r = 1; r < runs; r++) v = _mm512_mask_loadu_ps(v, mask[r], xpad + base[r] + off);
    return v;
}

__attribute__((target("avx512f"))) void dn_conv_pack_b_avx512(const dn_conv_pack *cp, int64_t p0, int64_t j0,
                                                             int64_t kc, int64_t nc, float *dst)
{
    const dn_conv_geom *g = cp->g;
    const int64_t P = g->Ho * g->Wo;
    /* the pixel of column j0; later columns are reached by counting (no division per panel) */
    int64_t i = j0 / P, oh = j0 % P / g->Wo, ow = j0 % P % g->Wo;
    for (int64_t q = 0; q * 16 < nc; q++, dst += 16 * kc) {
        int64_t base[16];
        __mmask16 mask[16];
        const int64_t c0 = j0 + q * 16, c1 = c0 + 16 < cp->L ? c0 + 16 : cp->L; /* columns of this panel */
        const int runs = dn_conv_pack_runs(g, c0, c1, &i, &oh, &ow, base, mask);
        const int64_t *koff = cp->koff + p0;
        if (runs == 1) { /* the usual cases, with the masks and bases in registers */
            const float *b0 = cp->xpad + base[0];
            const __mmask16 m0 = mask[0];
            for (int64_t k = 0; k < kc; k++) _mm512_storeu_ps(dst + 16 * k, _mm512_maskz_loadu_ps(m0, b0 + koff[k]));
        } else if (runs == 2) {
            const float *b0 = cp->xpad + base[0], *b1 = cp->xpad + base[1];
            const __mmask16 m0 = mask[0], m1 = mask[1];
            for (int64_t k = 0; k < kc; k++) {
                const __m512 v = _mm512_maskz_loadu_ps(m0, b0 + koff[k]);
                _mm512_storeu_ps(dst + 16 * k, _mm512_mask_loadu_ps(v, m1, b1 + koff[k]));
            }
        } else {
            for (int64_t k = 0; k < kc; k++) _mm512_storeu_ps(dst + 16 * k, pack_tap(cp->xpad, runs, base, mask, koff[k]));
        }
    }
}

/* The weight gradient of one block, dW[f, tap] += Σ_pixels dY[f, pixel] · col[tap, pixel], as dot products
 * along the block's pixels, 16 at a time, a tap's 16 values loaded from the padded input as conv_pack_avx512
 * loads them (one masked load per run of pixels sharing an output row; the input is L1-resident: a LeNet image
 * is 4 KB).  6 filters x 3 taps = 18 accumulators, which with their 9 operands fit the 32 registers.  No column
 * matrix and no transposed packing: with few filters (LeNet: 6, 16) those passes cost more than the
 * arithmetic.  The sums stay 16 lanes wide (wide[(f*K + tap)*16 + lane], added to block after block, pixels
 * in order); the caller adds the lanes up once, at the end.  runs: the runs of every 16-pixel chunk, up to 16
 * entries per chunk, the count in the chunk's first.  Six filters' dy are first copied chunk by chunk into dyb,
 * so that a chunk's six vectors sit side by side (one pointer, no masks in the inner loop). */
enum { DW_F = 6, DW_T = 3 };
_Static_assert(DW_F <= DN_CONV_DW_MAX_F, "dn_conv_dw_dy_len sizes dyb");

/* The 18 sums of taps t0 .. t0+2 over every chunk, into wide.  dyb: the 6 filters' dy, chunk-major
 * (dyb[(c*6 + a)*16 + lane], zeros past the filters and pixels).  all_taps: t0 + 3 <= K, so no tap mask. */
__attribute__((target("avx512f"), always_inline)) static inline void
conv_dw_taps(const dn_conv_pack *cp, const float *dyb, int64_t chunks, const dn_conv_dw_run *runs, int64_t f0,
             int64_t nf, int64_t t0, int64_t K, bool all_taps, float *wide)
{
    __m512 acc[DW_F][DW_T];
    for (int a = 0; a < DW_F; a++)
        for (int b = 0; b < DW_T; b++) acc[a][b] = _mm512_setzero_ps();
    int64_t off[DW_T];
    __mmask16 tm[DW_T]; /* taps past K load nothing */
    for (int b = 0; b < DW_T; b++) {
        off[b] = t0 + b < K ? cp->koff[t0 + b] : 0;
        tm[b] = all_taps || t0 + b < K ? 0xFFFF : 0;
    }
    const float *xp = cp->xpad;
    for (int64_t c = 0; c < chunks; c++) {
        const dn_conv_dw_run *rc = runs + c * 16;
        const float *dc = dyb + c * DW_F * 16;
        __m512 x[DW_T];
        const float *b0 = xp + rc[0].base;
        for (int b = 0; b < DW_T; b++)
            x[b] = _mm512_maskz_loadu_ps(all_taps ? rc[0].mask : rc[0].mask & tm[b], b0 + off[b]);
        for (int r = 1; r < rc[0].n; r++) {
            const float *br = xp + rc[r].base;
            for (int b = 0; b < DW_T; b++)
                x[b] = _mm512_mask_loadu_ps(x[b], all_taps ? rc[r].mask : rc[r].mask & tm[b], br + off[b]);
        }
        for (int a = 0; a < DW_F; a++) {
            const __m512 d = _mm512_load_ps(dc + a * 16);
            for (int b = 0; b < DW_T; b++) acc[a][b] = _mm512_fmadd_ps(d, x[b], acc[a][b]);
        }
    }
    for (int a = 0; a < DW_F && f0 + a < nf; a++)
        for (int b = 0; b < DW_T && t0 + b < K; b++) {
            float *w16 = wide + ((f0 + a) * K + t0 + b) * 16;
            _mm512_storeu_ps(w16, _mm512_add_ps(_mm512_loadu_ps(w16), acc[a][b]));
        }
}

__attribute__((target("avx512f"))) static void conv_dw_avx512(const dn_conv_pack *cp, const float *dy, int64_t nf,
                                                                float *wide, const dn_conv_dw_run *runs, float *dyb)
{
    const dn_conv_geom *g = cp->g;
    const int64_t K = g->C * g->kh * g->kw, L = cp->L, chunks = (L + 15) / 16;
    for (int64_t f0 = 0; f0 < nf; f0 += DW_F) {
        for (int64_t c = 0; c < chunks; c++) {
            const __mmask16 pm = (__mmask16)(L - c * 16 >= 16 ? 0xFFFFu : (1u << (L - c * 16)) - 1u);
            for (int a = 0; a < DW_F; a++)
                _mm512_store_ps(dyb + (c * DW_F + a) * 16,
                                f0 + a < nf ? _mm512_maskz_loadu_ps(pm, dy + (f0 + a) * L + c * 16) : _mm512_setzero_ps());
        }
        int64_t t0 = 0;
        for (; t0 + DW_T <= K; t0 += DW_T) conv_dw_taps(cp, dyb, chunks, runs, f0, nf, t0, K, true, wide);
        if (t0 < K) conv_dw_taps(cp, dyb, chunks, runs, f0, nf, t0, K, false, wide);
    }
}

/* Plans the runs of every chunk, then the dot products (above). */
__attribute__((target("avx512f"))) void dn_conv_dw_avx512(const dn_conv_pack *cp, const float *dy, int64_t nf,
                                                           float *wide, dn_conv_dw_run *runs, float *dyb)
{
    /* the runs of every 16-pixel chunk, found once for all filters and taps */
    int64_t i = 0, oh = 0, ow = 0;
    for (int64_t c = 0; c * 16 < cp->L; c++) {
        int64_t base[16];
        __mmask16 mask[16];
        const int64_t c1 = c * 16 + 16 < cp->L ? c * 16 + 16 : cp->L;
        const int n = dn_conv_pack_runs(cp->g, c * 16, c1, &i, &oh, &ow, base, mask);
        for (int r = 0; r < n; r++) runs[c * 16 + r] = (dn_conv_dw_run){base[r], mask[r], n};
    }
    conv_dw_avx512(cp, dy, nf, wide, runs, dyb);
}
#endif
