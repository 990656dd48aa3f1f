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

#endif /* DN_CONV_KERNELS_H */
