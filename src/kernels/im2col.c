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

/* The dot-product weight gradient's block: DW_F filters x DW_T taps (see conv_dw_taps).  Outside the x86 block:
 * dn_conv_dw_dy_len sizes dyb on every CPU. */
enum { DW_F = 6, DW_T = 3 };

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
#endif

#if IM2COL_X86
static bool use_avx512(const dn_conv_geom *g)
{
    return g->sw == 1 && g->Wo <= 16 * S1_CHUNKS && g->W <= 16 * S1_CHUNKS && g->kw <= S1_KW && dn_cpu_avx512();
}
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

/* ------------------------------------------------------------------ packing the column matrix directly
 *
 * The convolution's forward gemm packs col into micro-panels of 16 columns (output pixels) by kc rows (taps);
 * building col first and copying it again is two passes over the largest array of the step.  This writes the
 * panels straight from a zero-padded copy of the input, with AVX-512 masked loads (stride 1 only: then a run
 * of consecutive pixels of one output row reads consecutive input floats for every tap).
 *
 * A panel's 16 columns fall into runs that share an image and an output row (a 28-wide row: runs of 16, or of
 * 12 and 4, ...).  For run r starting at lane a, of pixels (image i, row oh, columns ow0 ..), and tap
 * k = (c, ki, kj), lane t reads
 *     xpad[i][c][oh*sh + ki*dh][ow0 + (t - a) + kj*dw] = xpad_flat[base_r + t + koff[k]]
 * with base_r = ((i*C)*Hp + oh*sh)*Wp + ow0 - a and koff[k] = (c*Hp + ki*dh)*Wp + kj*dw, the padded plane
 * being Hp x Wp.  So a tap is one masked load per run.  base_r + t may point up to 15 floats before or after
 * the padded images (lanes that are masked off): the caller leaves DN_CONV_PACK_SLACK floats on both sides. */
#if IM2COL_X86
/* The runs of columns c0 .. c1-1 (c1 - c0 <= 16), from the cursor (image i, output row oh, column ow) of column
 * c0, which moves on to column c1.  Returns the number of runs; run r is base[r], mask[r] as above. */
static int pack_runs(const dn_conv_geom *g, int64_t c0, int64_t c1, int64_t *i, int64_t *oh, int64_t *ow,
                     int64_t *base, __mmask16 *mask)
{
    const int64_t Hp = g->H + 2 * g->ph, Wp = g->W + 2 * g->pw;
    int runs = 0;
    for (int64_t col = c0; col < c1;) {
        int64_t len = g->Wo - *ow; /* to the end of this output row */
        if (len > c1 - col) len = c1 - col;
        const int64_t a = col - c0;
        base[runs] = (*i * g->C * Hp + *oh * g->sh) * Wp + *ow - a;
        mask[runs] = (__mmask16)(((1u << len) - 1u) << a);
        runs++;
        col += len;
        *ow += len;
        if (*ow == g->Wo) { /* next output row, next image */
            *ow = 0;
            if (++*oh == g->Ho) {
                *oh = 0;
                ++*i;
            }
        }
    }
    return runs;
}

/* Tap k's values for the 16 columns of the runs: one masked load per run (lanes of no run are 0). */
__attribute__((target("avx512f"), always_inline)) static inline __m512 pack_tap(const float *xpad, int runs,
                                                                                 const int64_t *base,
                                                                                 const __mmask16 *mask, int64_t off)
{
    __m512 v = _mm512_maskz_loadu_ps(mask[0], xpad + base[0] + off);
    for (int r = 1; r < runs; r++) v = _mm512_mask_loadu_ps(v, mask[r], xpad + base[r] + off);
    return v;
}

__attribute__((target("avx512f"))) static void conv_pack_avx512(const dn_conv_pack *cp, int64_t p0, int64_t j0,
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
        const int runs = pack_runs(g, c0, c1, &i, &oh, &ow, base, mask);
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
#endif

bool dn_conv_pack_available(const dn_conv_geom *g)
{
#if IM2COL_X86
    return g->sw == 1 && dn_cpu_avx512();
#else
    (void)g;
    return false;
#endif
}

void dn_conv_pack_offsets(const dn_conv_geom *g, int64_t *koff)
{
    const int64_t Hp = g->H + 2 * g->ph, Wp = g->W + 2 * g->pw;
    for (int64_t c = 0, k = 0; c < g->C; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) koff[k++] = (c * Hp + ki * g->dh) * Wp + kj * g->dw;
}

void dn_conv_pad(const dn_conv_geom *g, const float *x, int64_t x_image_stride, int64_t m, float *xpad)
{
    const int64_t Hp = g->H + 2 * g->ph, Wp = g->W + 2 * g->pw;
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < g->C; c++) {
            const float *src = x + i * x_image_stride + c * g->H * g->W;
            float *plane = xpad + (i * g->C + c) * Hp * Wp;
            for (int64_t h = 0; h < g->H; h++)
                memcpy(plane + (h + g->ph) * Wp + g->pw, src + h * g->W, (size_t)g->W * sizeof(float));
        }
}

void dn_conv_pack_b(const void *arg, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float *dst)
{
#if IM2COL_X86
    conv_pack_avx512(arg, p0, j0, kc, nc, dst);
#else
    (void)arg, (void)p0, (void)j0, (void)kc, (void)nc, (void)dst; /* dn_conv_pack_available said no */
#endif
}

int64_t dn_conv_dw_runs_len(int64_t L) { return (L + 15) / 16 * 16; }
int64_t dn_conv_dw_dy_len(int64_t L) { return (L + 15) / 16 * 16 * DW_F; }

void dn_conv_dw(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide, dn_conv_dw_run *runs, float *dyb)
{
#if IM2COL_X86
    /* the runs of every 16-pixel chunk, found once for all filters and taps */
    int64_t i = 0, oh = 0, ow = 0;
    for (int64_t c = 0; c * 16 < cp->L; c++) {
        int64_t base[16];
        __mmask16 mask[16];
        const int64_t c1 = c * 16 + 16 < cp->L ? c * 16 + 16 : cp->L;
        const int n = pack_runs(cp->g, c * 16, c1, &i, &oh, &ow, base, mask);
        for (int r = 0; r < n; r++) runs[c * 16 + r] = (dn_conv_dw_run){base[r], mask[r], n};
    }
    conv_dw_avx512(cp, dy, nf, wide, runs, dyb);
#else
    (void)cp, (void)dy, (void)nf, (void)wide, (void)runs, (void)dyb; /* dn_conv_pack_available said no */
#endif
}

