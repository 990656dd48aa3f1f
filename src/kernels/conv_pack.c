/* Packing the convolution's column matrix directly, and the dot-product weight gradient: the padded copy, the taps'
 * offsets, and the one place that picks the ISA's kernel (conv_avx512.c, conv_avx2.c) through kernels/cpu.h.
 *
 * The convolution's forward gemm packs col into micro-panels of 16 columns (output pixels) by kc rows (taps);
 * building col first and copying it again is two passes over the largest array of the step.  The kernels write
 * the panels straight from a zero-padded copy of the input, with masked loads (stride 1 only: then a run of
 * consecutive pixels of one output row reads consecutive input floats for every tap).
 *
 * A panel's 16 columns fall into runs that share an image and an output row (a 28-wide row: runs of 16, or of
 * 12 and 4, ...; dn_conv_pack_runs in conv_isa.h).  For run r starting at lane a, of pixels (image i, row oh,
 * columns ow0 ..), and tap k = (c, ki, kj), lane t reads
 *     xpad[i][c][oh*sh + ki*dh][ow0 + (t - a) + kj*dw] = xpad_flat[base_r + t + koff[k]]
 * with base_r = ((i*C)*Hp + oh*sh)*Wp + ow0 - a and koff[k] = (c*Hp + ki*dh)*Wp + kj*dw, the padded plane
 * being Hp x Wp.  So a tap is one masked load per run (AVX-512: one 16-lane load; AVX2: one 8-lane load per run
 * and half of the panel).  base_r + t may point up to 15 floats before or after the padded images (lanes that
 * are masked off): the caller leaves DN_CONV_PACK_SLACK floats on both sides.  Masked-off lanes are never read,
 * so they cannot fault.
 *
 * Both ISAs copy the same floats into the same places, so the gemm computes what it computes from im2col's
 * matrix, bit for bit; and their weight gradients add the same products in the same order per lane (one fused
 * multiply-add per pixel), so they agree bit for bit with each other (not with the gemm's order: see
 * dn_conv_dw). */
#include "kernels/conv_isa.h"
#include "kernels/cpu.h"

#include <string.h>

_Static_assert(DN_CONV_PANEL == 16 && DN_CONV_DW_LANES == 16, "the kernels are written for 16-column panels");

bool dn_conv_pack_available(const dn_conv_geom *g)
{
#if DN_CONV_X86
    return g->sw == 1 && (dn_cpu_avx512() || dn_cpu_avx2());
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
#if DN_CONV_X86
    if (dn_cpu_avx512()) dn_conv_pack_b_avx512(arg, p0, j0, kc, nc, dst);
    else dn_conv_pack_b_avx2(arg, p0, j0, kc, nc, dst);
#else
    (void)arg, (void)p0, (void)j0, (void)kc, (void)nc, (void)dst; /* dn_conv_pack_available said no */
#endif
}

size_t dn_conv_dw_runs_bytes(int64_t L)
{
#if DN_CONV_X86
    /* per 16-pixel chunk: 16 AVX-512 entries, or 2 halves x 8 AVX2 entries */
    const size_t per_chunk = 16 * (sizeof(dn_conv_dw_run) > sizeof(dn_conv_dw_run8) ? sizeof(dn_conv_dw_run)
                                                                                      : sizeof(dn_conv_dw_run8));
    return ((size_t)(L + 15) / 16 * per_chunk + 63) / 64 * 64;
#else
    (void)L;
    return 64;
#endif
}

int64_t dn_conv_dw_dy_len(int64_t L) { return (L + 15) / 16 * 16 * DN_CONV_DW_MAX_F; }

void dn_conv_dw(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide, void *runs, float *dyb)
{
#if DN_CONV_X86
    if (dn_cpu_avx512()) dn_conv_dw_avx512(cp, dy, nf, wide, runs, dyb);
    else dn_conv_dw_avx2(cp, dy, nf, wide, runs, dyb);
#else
    (void)cp, (void)dy, (void)nf, (void)wide, (void)runs, (void)dyb; /* dn_conv_pack_available said no */
#endif
}
