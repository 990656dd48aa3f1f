/* im2col and col2im (see conv_kernels.h for the layout).
 *
 * Both walk the column matrix row by row: a row is one (channel, kernel row i, kernel column j).  For a
 * fixed j the output columns ow whose input column iw = ow*sw - pw + j*dw lands inside [0, W) form one
 * contiguous range [lo, hi), computed once per row; so the inner loops are plain copies (or adds) with no
 * bounds test per element, and the padding is zeros on either side.  Large matrices are shared between
 * threads in a way that keeps the results identical for any thread count (see "threads" below). */
#include "kernels/conv_kernels.h"
#include "kernels/cpu.h"
#include "kernels/threads.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* DN_IM2COL_NO_SIMD builds only the portable loops (to test or time them on an x86 machine). */
#if defined(__x86_64__) && !defined(DN_IM2COL_NO_SIMD)
#define IM2COL_X86 1
#include <immintrin.h>
#else
#define IM2COL_X86 0
#endif

/* The range [*lo, *hi) of output positions o with 0 <= o*s + off < n (off may be negative). */
static void valid_range(int64_t n_out, int64_t s, int64_t off, int64_t n, int64_t *lo, int64_t *hi)
{
    /* o*s + off >= 0  <=>  o >= ceil(-off / s) */
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    /* o*s + off <= n - 1  <=>  o <= floor((n - 1 - off) / s) */
    int64_t b = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    if (b > n_out) b = n_out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* Rows [r0, r1) of the column matrix; row r is (channel c, kernel row i, kernel column j) with
 * r = (c*kh + i)*kw + j. */
static void im2col_rows(const dn_conv_geom *g, const float *x, float *col, int64_t ldcol, int64_t r0, int64_t r1)
{
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, sw = g->sw;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t c = r / (g->kh * g->kw), i = r / g->kw % g->kh, j = r % g->kw;
        const float *xc = x + c * H * W;
        int64_t hoff = i * g->dh - g->ph; /* ih = oh*sh + hoff */
        int64_t woff = j * g->dw - g->pw; /* iw = ow*sw + woff */
        int64_t lo, hi;
        valid_range(Wo, sw, woff, W, &lo, &hi);
        float *row = col + r * ldcol;
        for (int64_t oh = 0; oh < Ho; oh++) {
            float *dst = row + oh * Wo;
            int64_t ih = oh * g->sh + hoff;
            if (ih < 0 || ih >= H) {
                memset(dst, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *src = xc + ih * W; /* input row; column ow reads src[ow*sw + woff] */
            for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
            if (sw == 1) {
                /* rows are short (Wo = 14 is typical), where a memcpy call costs more than the copy:
                 * this 4-wide loop measured 20% faster over a whole im2col */
                const float *s1 = src + lo + woff; /* lo + woff >= 0 by valid_range */
                float *d1 = dst + lo;
                int64_t k = 0, n = hi - lo;
                for (; k + 4 <= n; k += 4) {
                    float a0 = s1[k], a1 = s1[k + 1], a2 = s1[k + 2], a3 = s1[k + 3];
                    d1[k] = a0;
                    d1[k + 1] = a1;
                    d1[k + 2] = a2;
                    d1[k + 3] = a3;
                }
                for (; k < n; k++) d1[k] = s1[k];
            } else {
                for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw + woff];
            }
            for (int64_t ow = hi; ow < Wo; ow++) dst[ow] = 0.0f;
        }
    }
}

#if IM2COL_X86
/* ------------------------------------------------------------------ AVX-512, stride 1
 *
 * With stride 1 a row segment (one output row oh of one column-matrix row) is Wo consecutive input
 * values with zeros on either side, and Wo is small (28, 14, 7 in MNIST networks), where the loops above
 * spend more on loop control than on copying.  Masked loads and stores do a whole segment of up to 16
 * values in two instructions: the load's mask selects [lo, hi) and fills the padding with zeros, the
 * store's mask stops at Wo.  Lanes outside a mask are never touched (no fault, no write), so the input
 * address may be formed a few floats before the row: it is computed as an integer for that reason.
 * The values copied and the additions made (and their order per pixel) are those of the loops above. */

/* Lanes [a, b) of 16, clamped to 0 .. 16. */
static inline unsigned lane_mask(int64_t a, int64_t b)
{
    if (a < 0) a = 0;
    if (b > 16) b = 16;
    return b <= a ? 0u : ((1u << (b - a)) - 1u) << a;
}

static inline const float *shifted(const float *p, int64_t n) /* p + n, n may point before p's array */
{
    return (const float *)((uintptr_t)p + (uintptr_t)(n * (int64_t)sizeof(float)));
}

/* Output rows of at most S1_CHUNKS*16 values (Wo <= 64) go this way; the masks of a column-matrix row are
 * the same for all its output rows, so they are worked out once per row. */
#define S1_CHUNKS 4

__attribute__((target("avx512f"))) static void im2col_rows_s1_avx512(const dn_conv_geom *g, const float *x,
                                                                      float *col, int64_t ldcol, int64_t r0,
                                                                      int64_t r1)
{
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, nq = (Wo + 15) / 16;
    __mmask16 ld[S1_CHUNKS], st[S1_CHUNKS]; /* chunk q: lanes to load (inside the input), lanes to store */
    for (int64_t q = 0; q < nq; q++) st[q] = (__mmask16)lane_mask(0, Wo - 16 * q);
    /* (c, i, j) of row r, stepped along with r instead of divided out each time */
    int64_t c = r0 / (g->kh * g->kw), i = r0 / g->kw % g->kh, j = r0 % g->kw;
    for (int64_t r = r0; r < r1; r++) {
        const float *xc = x + c * H * W;
        const int64_t hoff = i * g->dh - g->ph, woff = j * g->dw - g->pw;
        int64_t lo, hi;
        valid_range(Wo, 1, woff, W, &lo, &hi);
        for (int64_t q = 0; q < nq; q++) ld[q] = (__mmask16)lane_mask(lo - 16 * q, hi - 16 * q);
        float *row = col + r * ldcol;
        for (int64_t oh = 0; oh < Ho; oh++) {
            float *dst = row + oh * Wo;
            const int64_t ih = oh * g->sh + hoff;
            if (ih < 0 || ih >= H) { /* all padding */
                for (int64_t q = 0; q < nq; q++) _mm512_mask_storeu_ps(dst + 16 * q, st[q], _mm512_setzero_ps());
                continue;
            }
            const float *src = shifted(xc + ih * W, woff); /* output column ow reads src[ow] */
            for (int64_t q = 0; q < nq; q++)
                _mm512_mask_storeu_ps(dst + 16 * q, st[q], _mm512_maskz_loadu_ps(ld[q], shifted(src, 16 * q)));
        }
        if (++j == g->kw) {
            j = 0;
            if (++i == g->kh) {
                i = 0;
                c++;
            }
        }
    }
}

/* col2im turned inside out: for each input row (c, ih), its W pixels (at most S1_CHUNKS*16 of them) stay in
 * registers while every (i, j) that reaches the row adds its segment, loaded already shifted into place.
 * A pixel receives its additions in (i, j) order, as in the loops above (for a given pixel and i there is
 * one oh), so the sums are bit for bit the same; masked adds leave the lanes a segment does not reach
 * untouched (adding 0 would turn -0 into +0).  Each pixel is loaded and stored once, where the loops above
 * read and write it once per (i, j). */
#define S1_KW 16 /* kernels up to 16 wide */

__attribute__((target("avx512f"))) static void col2im_channels_s1_avx512(const dn_conv_geom *g, const float *col,
                                                                          int64_t ldcol, float *dx, int64_t c0,
                                                                          int64_t c1)
{
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, kh = g->kh, kw = g->kw, nq = (W + 15) / 16;
    __mmask16 m[S1_KW][S1_CHUNKS], row_mask[S1_CHUNKS]; /* kernel column j, chunk q: pixels it reaches */
    int64_t woff[S1_KW];
    for (int64_t j = 0; j < kw; j++) {
        woff[j] = j * g->dw - g->pw;
        int64_t lo, hi; /* output columns [lo, hi) land on pixels [lo + woff, hi + woff) */
        valid_range(Wo, 1, woff[j], W, &lo, &hi);
        for (int64_t q = 0; q < nq; q++) m[j][q] = (__mmask16)lane_mask(lo + woff[j] - 16 * q, hi + woff[j] - 16 * q);
    }
    for (int64_t q = 0; q < nq; q++) row_mask[q] = (__mmask16)lane_mask(0, W - 16 * q);
    for (int64_t c = c0; c < c1; c++) {
        const float *colc = col + c * kh * kw * ldcol;
        for (int64_t ih = 0; ih < H; ih++) {
            float *d = dx + (c * H + ih) * W;
            __m512 acc[S1_CHUNKS];
            for (int64_t q = 0; q < nq; q++) acc[q] = _mm512_maskz_loadu_ps(row_mask[q], d + 16 * q);
            for (int64_t i = 0; i < kh; i++) {
                const int64_t t = ih + g->ph - i * g->dh; /* = oh * sh for the output row that reads ih */
                if (t < 0 || t % g->sh != 0 || t / g->sh >= Ho) continue;
                const float *seg = colc + i * kw * ldcol + t / g->sh * Wo; /* row (c, i, 0), output row oh */
                for (int64_t j = 0; j < kw; j++, seg += ldcol) {
                    const float *src = shifted(seg, -woff[j]); /* pixel iw takes seg[iw - woff] */
                    for (int64_t q = 0; q < nq; q++)
                        acc[q] = _mm512_mask_add_ps(acc[q], m[j][q], acc[q],
                                                    _mm512_maskz_loadu_ps(m[j][q], shifted(src, 16 * q)));
                }
            }
            for (int64_t q = 0; q < nq; q++) _mm512_mask_storeu_ps(d + 16 * q, row_mask[q], acc[q]);
        }
    }
}

/* ------------------------------------------------------------------ AVX2, stride 1 (col2im only)
 *
 * col2im_channels_s1_avx512 with 8-lane registers: a row's W <= 64 pixels in NQ <= 8 chunks, a masked add
 * (add, then blend by the mask: lanes a segment does not reach keep their bits, -0 included) per (i, j) and
 * chunk, the pixel's additions in the same (i, j) order, so the sums are the loops' bit for bit.  NQ is a
 * constant (2, 4 or 8; chunks past W have empty masks), so the sums stay in registers.  im2col has no AVX2
 * version: where AVX2 is the best the CPU has, the forward pass packs its columns without im2col (conv_pack.c),
 * and the weight gradient of many filters, im2col's remaining user, spends far more in the gemm. */
__attribute__((target("avx2"))) static inline __m256i lane_mask8(int64_t a, int64_t b) /* lanes [a, b) of 8 */
{
    if (a < 0) a = 0;
    if (b > 8) b = 8;
    const unsigned bits = b <= a ? 0u : ((1u << (b - a)) - 1u) << a;
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), bit), bit);
}

__attribute__((target("avx2"), always_inline)) static inline void
col2im_s1_avx2(const dn_conv_geom *g, const float *col, int64_t ldcol, float *dx, int64_t c0, int64_t c1, const int NQ)
{
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, kh = g->kh, kw = g->kw;
    __m256i m[S1_KW][8], row_mask[8]; /* kernel column j, chunk q: pixels it reaches */
    int64_t woff[S1_KW];
    for (int64_t j = 0; j < kw; j++) {
        woff[j] = j * g->dw - g->pw;
        int64_t lo, hi; /* output columns [lo, hi) land on pixels [lo + woff, hi + woff) */
        valid_range(Wo, 1, woff[j], W, &lo, &hi);
        for (int q = 0; q < NQ; q++) m[j][q] = lane_mask8(lo + woff[j] - 8 * q, hi + woff[j] - 8 * q);
    }
    for (int q = 0; q < NQ; q++) row_mask[q] = lane_mask8(0, W - 8 * q);
    for (int64_t c = c0; c < c1; c++) {
        const float *colc = col + c * kh * kw * ldcol;
        for (int64_t ih = 0; ih < H; ih++) {
            float *d = dx + (c * H + ih) * W;
            __m256 acc[8];
            for (int q = 0; q < NQ; q++) acc[q] = _mm256_maskload_ps(d + 8 * q, row_mask[q]);
            for (int64_t i = 0; i < kh; i++) {
                const int64_t t = ih + g->ph - i * g->dh; /* = oh * sh for the output row that reads ih */
                if (t < 0 || t % g->sh != 0 || t / g->sh >= Ho) continue;
                const float *seg = colc + i * kw * ldcol + t / g->sh * Wo; /* row (c, i, 0), output row oh */
                for (int64_t j = 0; j < kw; j++, seg += ldcol) {
                    const float *src = shifted(seg, -woff[j]); /* pixel iw takes seg[iw - woff] */
                    for (int q = 0; q < NQ; q++) {
                        const __m256 v = _mm256_maskload_ps(shifted(src, 8 * q), m[j][q]);
                        acc[q] = _mm256_blendv_ps(acc[q], _mm256_add_ps(acc[q], v), _mm256_castsi256_ps(m[j][q]));
                    }
                }
            }
            for (int q = 0; q < NQ; q++) {
                if (W - 8 * q >= 8) _mm256_storeu_ps(d + 8 * q, acc[q]);
                else if (W > 8 * q) _mm256_maskstore_ps(d + 8 * q, row_mask[q], acc[q]);
            }
        }
    }
}

__attribute__((target("avx2"))) static void col2im_channels_s1_avx2(const dn_conv_geom *g, const float *col,
                                                                      int64_t ldcol, float *dx, int64_t c0, int64_t c1)
{
    if (g->W <= 16) col2im_s1_avx2(g, col, ldcol, dx, c0, c1, 2);
    else if (g->W <= 32) col2im_s1_avx2(g, col, ldcol, dx, c0, c1, 4);
    else col2im_s1_avx2(g, col, ldcol, dx, c0, c1, 8);
}

/* The stride-1 kernels take rows of up to 64 values and kernels up to S1_KW wide. */
static bool s1_fits(const dn_conv_geom *g)
{
    return g->sw == 1 && g->Wo <= 16 * S1_CHUNKS && g->W <= 16 * S1_CHUNKS && g->kw <= S1_KW;
}
static bool use_avx512(const dn_conv_geom *g) { return s1_fits(g) && dn_cpu_avx512(); }
static bool use_avx2(const dn_conv_geom *g) { return s1_fits(g) && dn_cpu_avx2(); }
#endif

/* dx channels [c0, c1) += the column rows of those channels.  A channel's pixels receive their additions
 * in the same order however the channels are shared out, so the sums never depend on the thread count. */
static void col2im_channels(const dn_conv_geom *g, const float *col, int64_t ldcol, float *dx, int64_t c0, int64_t c1)
{
    const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, sw = g->sw;
    for (int64_t c = c0; c < c1; c++) {
        float *dxc = dx + c * H * W;
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t hoff = i * g->dh - g->ph;
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t woff = j * g->dw - g->pw;
                int64_t lo, hi;
                valid_range(Wo, sw, woff, W, &lo, &hi);
                const float *row = col + ((c * g->kh + i) * g->kw + j) * ldcol;
                for (int64_t oh = 0; oh < Ho; oh++) {
                    int64_t ih = oh * g->sh + hoff;
                    if (ih < 0 || ih >= H) continue; /* read from the padding: no input pixel to credit */
                    const float *src = row + oh * Wo;
                    float *dst = dxc + ih * W;
                    for (int64_t ow = lo; ow < hi; ow++) dst[ow * sw + woff] += src[ow];
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ threads
 *
 * Large column matrices are shared between the kernels' threads: im2col by rows (each row is written by
 * one thread), col2im by channels (each input pixel is written by one thread).  Below PAR_MIN_FLOATS a
 * column matrix is filled faster than a second thread is woken (measured: ~10 us of copying). */
#ifndef DN_IM2COL_PAR_MIN_FLOATS
#define DN_IM2COL_PAR_MIN_FLOATS 32768
#endif

typedef struct im2col_job {
    const dn_conv_geom *g;
    const float *x;
    float *col;
    const float *ccol;
    float *dx;
    int64_t ldcol, n; /* rows (im2col) or channels (col2im) to share out */
} im2col_job;

/* Rows [r0, r1) by the fastest code the CPU and the geometry allow. */
static void im2col_some(const dn_conv_geom *g, const float *x, float *col, int64_t ldcol, int64_t r0, int64_t r1)
{
#if IM2COL_X86
    if (use_avx512(g)) {
        im2col_rows_s1_avx512(g, x, col, ldcol, r0, r1);
        return;
    }
#endif
    im2col_rows(g, x, col, ldcol, r0, r1);
}

static void col2im_some(const dn_conv_geom *g, const float *col, int64_t ldcol, float *dx, int64_t c0, int64_t c1)
{
#if IM2COL_X86
    if (use_avx512(g)) {
        col2im_channels_s1_avx512(g, col, ldcol, dx, c0, c1);
        return;
    }
    if (use_avx2(g)) {
        col2im_channels_s1_avx2(g, col, ldcol, dx, c0, c1);
        return;
    }
#endif
    col2im_channels(g, col, ldcol, dx, c0, c1);
}

static void im2col_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const im2col_job *j = arg;
    im2col_some(j->g, j->x, j->col, j->ldcol, j->n * part / parts, j->n * (part + 1) / parts);
}

static void col2im_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const im2col_job *j = arg;
    col2im_some(j->g, j->ccol, j->ldcol, j->dx, j->n * part / parts, j->n * (part + 1) / parts);
}

/* Parts for a job of `units` independent pieces and `floats` floats of column matrix. */
static int parts_for(int64_t units, int64_t floats)
{
    if (floats < DN_IM2COL_PAR_MIN_FLOATS || units < 2) return 1;
    int parts = dn_parallel_parts();
    return units < parts ? (int)units : parts;
}

void dn_im2col(const dn_conv_geom *g, const float *x, float *col, int64_t ldcol)
{
    const int64_t rows = g->C * g->kh * g->kw;
    im2col_job job = {.g = g, .x = x, .col = col, .ldcol = ldcol, .n = rows};
    int parts = parts_for(rows, rows * g->Ho * g->Wo);
    if (parts <= 1)
        im2col_some(g, x, col, ldcol, 0, rows);
    else
        dn_parallel_run(parts, im2col_part, &job);
}

void dn_col2im(const dn_conv_geom *g, const float *col, int64_t ldcol, float *dx)
{
    im2col_job job = {.g = g, .ccol = col, .dx = dx, .ldcol = ldcol, .n = g->C};
    int parts = parts_for(g->C, g->C * g->kh * g->kw * g->Ho * g->Wo);
    if (parts <= 1)
        col2im_some(g, col, ldcol, dx, 0, g->C);
    else
        dn_parallel_run(parts, col2im_part, &job);
}
