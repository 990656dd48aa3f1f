/* im2col / col2im: the data movement that turns a convolution into one matrix product.
 *
 * For one image and one group of channels, the column matrix has a row per (channel, kernel row, kernel
 * column) and a column per output pixel:
 *     col[(c*kh + i)*kw + j][oh*Wo + ow] = x[c][oh*sh - ph + i*dh][ow*sw - pw + j*dw]   (0 outside x)
 * so that y[F, Ho*Wo] = W[F, C*kh*kw] · col.  col2im is its transpose: it ADDS each column entry back
 * into the input pixel it was read from, which is exactly dx from dcol = Wᵀ dy.
 * Raw float arrays only: no tensors, no allocation (the caller owns every buffer). */
#ifndef DN_CONV_KERNELS_H
#define DN_CONV_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The geometry of one image's convolution (for one group: C is the group's channel count). */
typedef struct dn_conv_geom {
    int64_t C, H, W;   /* input channels and size */
    int64_t kh, kw;    /* kernel size */
    int64_t sh, sw;    /* stride, >= 1 */
    int64_t ph, pw;    /* zero padding, >= 0 */
    int64_t dh, dw;    /* dilation, >= 1 */
    int64_t Ho, Wo;    /* output size, >= 1 */
} dn_conv_geom;

/* x [C, H, W] (contiguous) -> col [C*kh*kw, Ho*Wo], row r starting at col + r*ldcol (ldcol >= Ho*Wo). */
void dn_im2col(const dn_conv_geom *g, const float *x, float *col, int64_t ldcol);
/* dx [C, H, W] += the transpose of im2col applied to col [C*kh*kw, Ho*Wo] (row stride ldcol). */
void dn_col2im(const dn_conv_geom *g, const float *col, int64_t ldcol, float *dx);

/* Packing the column matrix for the forward gemm straight from the input (conv_pack.c has the details): a block of
 * m images, one group of channels, g->C of them, zero-padded into xpad [m, C, H + 2ph, W + 2pw] with
 * DN_CONV_PACK_SLACK spare floats before and after; koff [C*kh*kw] from dn_conv_pack_offsets; L = m*Ho*Wo
 * columns.  dn_conv_pack_b is a dn_gemm_pack_b_fn with a dn_conv_pack as its argument: micro-panels of
 * DN_CONV_PANEL columns (the gemm's NR).  The kernels are per ISA (conv_avx512.c, conv_avx2.c), chosen here at
 * each call through kernels/cpu.h; they copy the same floats, so the gemm's results are those of im2col. */
#define DN_CONV_PACK_SLACK 16
#define DN_CONV_PANEL 16
typedef struct dn_conv_pack {
    const dn_conv_geom *g;
    const float *xpad;
    const int64_t *koff;
    int64_t L;
} dn_conv_pack;
/* Whether this machine and geometry have it: AVX2 + FMA or AVX-512 (allowed by the ISA cap) and stride 1 along
 * the width. */
bool dn_conv_pack_available(const dn_conv_geom *g);
void dn_conv_pack_offsets(const dn_conv_geom *g, int64_t *koff);
/* Copies images i = 0 .. m-1 (x + i*x_image_stride, channels [C, H, W]) into the interior of xpad; the border
 * must already be zero (it is never written). */
void dn_conv_pad(const dn_conv_geom *g, const float *x, int64_t x_image_stride, int64_t m, float *xpad);
void dn_conv_pack_b(const void *arg, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float *dst);
/* The weight gradient of a block without a column matrix: dy [nf, L] · colᵀ, col read from the padded block as
 * dn_conv_pack_b reads it, added into wide [nf, C*kh*kw, DN_CONV_DW_LANES]: each sum as DN_CONV_DW_LANES partial
 * sums (lane t sums the pixels t, t + 16, t + 32, ... of the block, in order, with fused multiply-adds), which
 * the caller adds up in lane order in the end.  The AVX2 and AVX-512 kernels give the same bits.  Scratch:
 * runs, dn_conv_dw_runs_bytes(L) bytes; dyb, dn_conv_dw_dy_len(L) floats; both 64-byte aligned. */
#define DN_CONV_DW_LANES 16
size_t dn_conv_dw_runs_bytes(int64_t L);
int64_t dn_conv_dw_dy_len(int64_t L);
void dn_conv_dw(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide, void *runs, float *dyb);

#endif /* DN_CONV_KERNELS_H */
