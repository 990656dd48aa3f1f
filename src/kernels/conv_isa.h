/* What the convolution's per-ISA kernels (conv_avx512.c, conv_avx2.c) share with their dispatch point
 * (conv_pack.c), and nothing else includes: the planning of a panel's pixel runs, the run tables of the weight
 * gradient, and the kernels' prototypes.  x86-64 only: elsewhere this header declares nothing, and
 * dn_conv_pack_available() says no. */
#ifndef DN_KERNELS_CONV_ISA_H
#define DN_KERNELS_CONV_ISA_H

#include "kernels/conv_kernels.h"

#include <stdint.h>

/* DN_IM2COL_NO_SIMD builds only the portable loops (to test or time them on an x86 machine). */
#if defined(__x86_64__) && !defined(DN_IM2COL_NO_SIMD)
#define DN_CONV_X86 1
#else
#define DN_CONV_X86 0
#endif

/* The most filters a weight-gradient kernel takes per pass (dn_conv_dw's dyb holds that many rows of dy per
 * 16-pixel chunk). */
#define DN_CONV_DW_MAX_F 6

#if DN_CONV_X86
/* The runs of columns c0 .. c1-1 (c1 - c0 <= 16) of the column matrix, from the cursor (image i, output row oh,
 * column ow) of column c0, which moves on to column c1.  Returns the number of runs; run r covers the lanes set
 * in mask[r] (bit t: lane t of the 16-column panel) and its lane t reads xpad[base[r] + t + koff[tap]] (see
 * conv_pack.c). */
static inline int dn_conv_pack_runs(const dn_conv_geom *g, int64_t c0, int64_t c1, int64_t *i, int64_t *oh,
                                    int64_t *ow, int64_t *base, uint16_t *mask)
{
    const int64_t Hp = g->H + 2 * g->ph, Wp = g->W + 2 * g->pw;
    int runs = 0;
    for (int64_t col = c0; col < c1;) {
        int64_t len = g->Wo - *ow; /* to the end of this output row */
        if (len > c1 - col) len = c1 - col;
        const int64_t a = col - c0;
        base[runs] = (*i * g->C * Hp + *oh * g->sh) * Wp + *ow - a;
        mask[runs] = (uint16_t)(((1u << len) - 1u) << a);
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

/* AVX-512's run table for the weight gradient: the runs of every 16-pixel chunk, up to 16 entries per chunk,
 * the count in the chunk's first. */
typedef struct dn_conv_dw_run {
    int64_t base;
    uint16_t mask;
    int n; /* in a chunk's first entry: the chunk's number of runs */
} dn_conv_dw_run;

/* AVX2's: the same runs cut into the chunk's two 8-lane halves, 8 entries per half (chunk c, half h at entry
 * (2c + h)*8), the count in the half's first entry (0: the half lies past the last pixel; its first entry then
 * has an empty mask).  mask[t] is -1 for the lanes the run covers (a _mm256_maskload_ps mask); base already
 * includes the half's 8. */
typedef struct dn_conv_dw_run8 {
    int32_t mask[8];
    int64_t base;
    int64_t n;
} dn_conv_dw_run8;

/* The AVX-512 kernels (conv_avx512.c). */
void dn_conv_pack_b_avx512(const dn_conv_pack *cp, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float *dst);
void dn_conv_dw_avx512(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide, dn_conv_dw_run *runs,
                       float *dyb);
/* The AVX2 + FMA kernels (conv_avx2.c): the same numbers as AVX-512's, packing and weight gradient alike. */
void dn_conv_pack_b_avx2(const dn_conv_pack *cp, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float *dst);
void dn_conv_dw_avx2(const dn_conv_pack *cp, const float *dy, int64_t nf, float *wide, dn_conv_dw_run8 *runs,
                     float *dyb);
#endif

#endif /* DN_KERNELS_CONV_ISA_H */
