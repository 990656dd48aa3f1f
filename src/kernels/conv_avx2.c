/* The convolution's AVX2 + FMA kernels: the gemm's B panels packed straight from the padded input, and the weight
 * gradient as dot products over the pixels (conv_kernels.h and conv_pack.c say what they compute).  The same
 * numbers as conv_avx512.c with half-width registers: a 16-column panel is two __m256 halves, each a
 * _mm256_maskload_ps per run of pixels that reaches it, the runs OR-ed together (a masked-off lane loads +0.0,
 * whose bits are all zero, and the runs' lanes are disjoint).  Built on every x86-64 compiler (target
 * attributes), run only where kernels/cpu.h allows AVX2. */
#include "kernels/conv_isa.h"

#if DN_CONV_X86
#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx2,fma")))

/* The maskload mask of the lanes set in bits (8 of them). */
TARGET static inline __m256i lane_mask8(unsigned bits)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), bit), bit);
}

/* ------------------------------------------------------------------ packing B
 *
 * Per panel, each half's runs: the address of lane 0 and the mask.  A half that one run fills (a 28-wide output
 * row: 2 of every 3 halves) is a plain load; the usual panels have one run per half, the rest a few. */
typedef struct half_runs {
    int n;
    bool full; /* n == 1 and all 8 lanes */
    const float *p[8];
    __m256i m[8];
} half_runs;

TARGET static inline __m256 load_half(const half_runs *h, int64_t off)
{
    __m256 v = _mm256_maskload_ps(h->p[0] + off, h->m[0]);
    for (int r = 1; r < h->n; r++) v = _mm256_or_ps(v, _mm256_maskload_ps(h->p[r] + off, h->m[r]));
    return v;
}

TARGET void dn_conv_pack_b_avx2(const dn_conv_pack *cp, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float *dst)
{
    const dn_conv_geom *g = cp->g;
    const int64_t P = g->Ho * g->Wo;
    const int64_t *koff = cp->koff + p0;
    /* the pixel of column j0; later columns are reached by counting (no division per panel) */
    int64_t i = j0 / P, oh = j0 % P / g->Wo, ow = j0 % P % g->Wo;
    for (int64_t q = 0; q * 16 < nc; q++, dst += 16 * kc) {
        int64_t base[16];
        uint16_t mask[16];
        const int64_t c0 = j0 + q * 16, c1 = c0 + 16 < cp->L ? c0 + 16 : cp->L; /* columns of this panel */
        const int runs = dn_conv_pack_runs(g, c0, c1, &i, &oh, &ow, base, mask);
        half_runs h[2];
        for (int s = 0; s < 2; s++) {
            h[s].n = 0;
            h[s].full = false;
            for (int r = 0; r < runs; r++) {
                const unsigned bits = (unsigned)(mask[r] >> (8 * s)) & 0xFFu;
                if (!bits) continue;
                h[s].p[h[s].n] = cp->xpad + base[r] + 8 * s;
                h[s].m[h[s].n] = lane_mask8(bits);
                h[s].full = bits == 0xFFu;
                h[s].n++;
            }
            if (h[s].n == 0) { /* past the last column: zeros (a load with an empty mask reads nothing) */
                h[s].p[0] = cp->xpad;
                h[s].m[0] = _mm256_setzero_si256();
                h[s].n = 1;
                h[s].full = false;
            }
            h[s].full = h[s].full && h[s].n == 1;
        }
        if (h[0].full && h[1].full) { /* the usual cases, with the addresses in registers */
            const float *a = h[0].p[0], *b = h[1].p[0];
            for (int64_t k = 0; k < kc; k++) {
                _mm256_storeu_ps(dst + 16 * k, _mm256_loadu_ps(a + koff[k]));
                _mm256_storeu_ps(dst + 16 * k + 8, _mm256_loadu_ps(b + koff[k]));
            }
        } else if (h[0].full && h[1].n == 2) {
            const float *a = h[0].p[0], *b = h[1].p[0], *c = h[1].p[1];
            const __m256i mb = h[1].m[0], mc = h[1].m[1];
            for (int64_t k = 0; k < kc; k++) {
                _mm256_storeu_ps(dst + 16 * k, _mm256_loadu_ps(a + koff[k]));
                _mm256_storeu_ps(dst + 16 * k + 8, _mm256_or_ps(_mm256_maskload_ps(b + koff[k], mb),
                                                                _mm256_maskload_ps(c + koff[k], mc)));
            }
        } else if (h[0].n == 1 && h[1].n == 1) {
            const float *a = h[0].p[0], *b = h[1].p[0];
            const __m256i ma = h[0].m[0], mb = h[1].m[0];
            for (int64_t k = 0; k < kc; k++) {
                _mm256_storeu_ps(dst + 16 * k, _mm256_maskload_ps(a + koff[k], ma));
                _mm256_storeu_ps(dst + 16 * k + 8, _mm256_maskload_ps(b + koff[k], mb));
            }
        } else {
            for (int64_t k = 0; k < kc; k++) {
                _mm256_storeu_ps(dst + 16 * k, load_half(&h[0], koff[k]));
                _mm256_storeu_ps(dst + 16 * k + 8, load_half(&h[1], koff[k]));
            }
        }
    }
}

/* ------------------------------------------------------------------ the weight gradient
 *
 * dW[f, tap] += Σ_pixels dY[f, pixel] · col[tap, pixel] as conv_avx512.c computes it: 16 lanes, lane t summing the
 * block's pixels t, t + 16, ... in order with one fused multiply-add each, added into wide when the block is done.
 * With 16 registers of 8 lanes, each half of the 16 lanes is its own pass over the block (a lane's sum does not
 * depend on which others are computed beside it), F filters x T taps at a time: F*T accumulators, T column
 * vectors and one dy vector must fit in 16 registers.  6 x 2 (LeNet's 6 filters in one pass) or, when the filters
 * come in fours (16, 32), 4 x 3.  A tap past the last is computed from tap 0's offset and not stored. */

/* The F x T sums of taps t0 .. t0+T-1 of filters f0 .. f0+F-1 over every chunk's half s, into wide. */
TARGET __attribute__((always_inline)) static inline void dw_taps(const dn_conv_pack *cp, const float *dyb,
                                                                  int64_t chunks, const dn_conv_dw_run8 *runs, int s,
                                                                  int64_t f0, int64_t nf, int64_t t0, int64_t K,
                                                                  const int F, const int T, float *wide)
{
    __m256 acc[6][3];
    for (int a = 0; a < F; a++)
        for (int b = 0; b < T; b++) acc[a][b] = _mm256_setzero_ps();
    int64_t off[3];
    for (int b = 0; b < T; b++) off[b] = cp->koff[t0 + b < K ? t0 + b : 0];
    const float *xp = cp->xpad;
    for (int64_t c = 0; c < chunks; c++) {
        const dn_conv_dw_run8 *rc = runs + (2 * c + s) * 8;
        const float *dc = dyb + c * F * 16 + 8 * s;
        __m256 x[3];
        const __m256i m0 = _mm256_loadu_si256((const __m256i *)rc[0].mask);
        const float *b0 = xp + rc[0].base;
        for (int b = 0; b < T; b++) x[b] = _mm256_maskload_ps(b0 + off[b], m0);
        for (int64_t r = 1; r < rc[0].n; r++) {
            const __m256i m = _mm256_loadu_si256((const __m256i *)rc[r].mask);
            const float *br = xp + rc[r].base;
            for (int b = 0; b < T; b++) x[b] = _mm256_or_ps(x[b], _mm256_maskload_ps(br + off[b], m));
        }
        for (int a = 0; a < F; a++) {
            const __m256 d = _mm256_load_ps(dc + a * 16);
            for (int b = 0; b < T; b++) acc[a][b] = _mm256_fmadd_ps(d, x[b], acc[a][b]);
        }
    }
    for (int a = 0; a < F && f0 + a < nf; a++)
        for (int b = 0; b < T && t0 + b < K; b++) {
            float *w8 = wide + ((f0 + a) * K + t0 + b) * 16 + 8 * s;
            _mm256_storeu_ps(w8, _mm256_add_ps(_mm256_loadu_ps(w8), acc[a][b]));
        }
}

/* All filters and taps, F x T at a time (F <= 6, T <= 3, F*T + T + 1 <= 16). */
TARGET __attribute__((always_inline)) static inline void dw_all(const dn_conv_pack *cp, const float *dy, int64_t nf,
                                                                 float *wide, const dn_conv_dw_run8 *runs, float *dyb,
                                                                 const int F, const int T)
{
    const dn_conv_geom *g = cp->g;
    const int64_t K = g->C * g->kh * g->kw, L = cp->L, chunks = (L + 15) / 16;
    for (int64_t f0 = 0; f0 < nf; f0 += F) {
        /* F filters' dy, chunk-major (dyb[(c*F + a)*16 + lane], zeros past the filters and pixels) */
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t left = L - c * 16; /* pixels in this chunk, if below 16 */
            const __m256i lo = lane_mask8(left >= 8 ? 0xFFu : (1u << left) - 1u);
            const __m256i hi = lane_mask8(left >= 16 ? 0xFFu : left > 8 ? (1u << (left - 8)) - 1u : 0u);
            for (int a = 0; a < F; a++) {
                float *d = dyb + (c * F + a) * 16;
                const float *src = dy + (f0 + a) * L + c * 16;
                const bool have = f0 + a < nf;
                _mm256_store_ps(d, have ? _mm256_maskload_ps(src, lo) : _mm256_setzero_ps());
                _mm256_store_ps(d + 8, have ? _mm256_maskload_ps(src + 8, hi) : _mm256_setzero_ps());
            }
        }
        for (int64_t t0 = 0; t0 < K; t0 += T)
            for (int s = 0; s < 2; s++) dw_taps(cp, dyb, chunks, runs, s, f0, nf, t0, K, F, T, wide);
    }
}

TARGET static void dw_6x2(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide,
                          const dn_conv_dw_run8 *runs, float *dyb)
{
    dw_all(cp, dy, nf, wide, runs, dyb, 6, 2);
}

TARGET static void dw_4x3(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide,
                          const dn_conv_dw_run8 *runs, float *dyb)
{
    dw_all(cp, dy, nf, wide, runs, dyb, 4, 3);
}

_Static_assert(6 <= DN_CONV_DW_MAX_F, "dn_conv_dw_dy_len sizes dyb");

TARGET void dn_conv_dw_avx2(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide, dn_conv_dw_run8 *runs,
                            float *dyb)
{
    /* the runs of every 16-pixel chunk, cut into its halves, found once for all filters and taps */
    int64_t i = 0, oh = 0, ow = 0;
    for (int64_t c = 0; c * 16 < cp->L; c++) {
        int64_t base[16];
        uint16_t mask[16];
        const int64_t c1 = c * 16 + 16 < cp->L ? c * 16 + 16 : cp->L;
        const int n = dn_conv_pack_runs(cp->g, c * 16, c1, &i, &oh, &ow, base, mask);
        for (int s = 0; s < 2; s++) {
            dn_conv_dw_run8 *rh = runs + (2 * c + s) * 8;
            int64_t k = 0;
            for (int r = 0; r < n; r++) {
                const unsigned bits = (unsigned)(mask[r] >> (8 * s)) & 0xFFu;
                if (!bits) continue;
                for (int t = 0; t < 8; t++) rh[k].mask[t] = bits >> t & 1u ? -1 : 0;
                rh[k].base = base[r] + 8 * s;
                k++;
            }
            if (k == 0) { /* past the last pixel: an empty mask loads zeros */
                memset(rh[0].mask, 0, sizeof rh[0].mask);
                rh[0].base = 0;
            }
            rh[0].n = k ? k : 1;
        }
    }
    if (nf % 4 == 0) dw_4x3(cp, dy, nf, wide, runs, dyb);
    else dw_6x2(cp, dy, nf, wide, runs, dyb);
}
#endif
