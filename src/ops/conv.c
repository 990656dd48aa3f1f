/* 2-D convolution (NCHW), as torch.nn.functional.conv2d: stride, zero padding, dilation and groups.
 *
 * For image n and group g, with the group's channels unrolled into a column matrix (src/kernels/im2col.c)
 *     col[K, P]  (K = C/groups * kh * kw rows, P = Ho * Wo output pixels),
 * the convolution is one matrix product per (n, g):
 *     Y_g[F/groups, P] = W_g[F/groups, K] · col + b_g
 * and its gradients are matrix products too:
 *     dW_g += dY_g · colᵀ,      dcol = W_gᵀ · dY_g  (then col2im adds dcol into dx),      db = Σ_{n,p} dY.
 * When P is small, several images share one gemm (their columns side by side, see images_per_gemm).
 * The column buffer is one arena allocation per call (one per thread), reused for every block and group;
 * backward rebuilds the columns from the saved input instead of keeping N copies (im2col costs far less than the
 * gemm).  Threads take whole image blocks (see conv_parts and conv_dw_runs): the results never depend on how
 * many there are.
 * A 1x1, stride-1, unpadded convolution with P large enough for one image per gemm needs no im2col at
 * all: an image's group of channels [C/groups, H*W] already is its column matrix.
 * That im2col + gemm form is the reference, and this file keeps it.  Where the CPU has AVX2 + FMA or AVX-512 (as
 * kernels/cpu.h allows), with stride 1 along the width, two fast paths replace parts of it; their kernels live
 * per ISA in src/kernels (conv_pack.c picks one; conv_avx2.c, conv_avx512.c): col is not built at all for the
 * forward pass, the gemm packing its panels straight from a zero-padded copy of the block's images
 * (dn_sgemm_pack_fn + dn_conv_pack_b, the same numbers as im2col, bit for bit), and with at most
 * CONV_DOT_DW_MAX_F filters per group dW is computed as dot products over the pixels from that copy
 * (dn_conv_dw: another summation order, within rounding of the gemm's).  dx still goes through dcol and col2im.
 * dn_op_conv2d_reference is this op with the fast paths off, for the tests that compare the two. */
#include "internal.h"
#include "kernels/conv_kernels.h"
#include "kernels/threads.h"

#include <math.h>

/* attributes by index: enum dn_conv_attr (internal.h), checked against the row's names by tests/test_tables.c */
_Static_assert(DN_CONV_N_ATTRS <= DN_MAX_ATTRS, "conv2d's attributes fit a node");

typedef struct conv_plan {
    int64_t N, C, F, G; /* images, input channels, filters, groups */
    int64_t Cg, Fg;     /* channels and filters per group */
    int64_t K, P;       /* rows (Cg*kh*kw) and columns (Ho*Wo) of one column matrix */
    int64_t nb;         /* images per gemm (images_per_gemm) */
    dn_conv_geom geom;  /* one group of one image */
    bool direct;        /* 1x1, stride 1, no padding, one image per gemm: the input is the column matrix */
    bool packed;        /* forward: the gemm packs the columns straight from a padded copy of the input */
    bool dot_dw;        /* backward: the weight gradient as dot products from the padded input (dn_conv_dw) */
    bool relu;          /* conv2d_relu: a ReLU fused into the output (the gemm's epilogue) */
} conv_plan;

/* Images per gemm: the column matrices of nb images sit side by side, [K, nb*P], so that a small output
 * (7x7, or 2x2 late in a network) still gives the gemm enough columns to run at full speed: one image
 * with P = 4 is a matrix-vector product, 64 of them are a real gemm.  Measured on [64, 256, 2, 2] with
 * 256 1x1 filters: 17 -> 55 GFLOP/s.  dn_sgemm sums each output element over K in the same order whatever
 * the number of columns, so an image's output does not depend on the batch it came in (except for
 * problems so tiny that dn_sgemm takes its unpacked path). */
#define CONV_MIN_COLS 256

/* Up to this many filters per group, the weight gradient runs as dot products over the pixels (dn_conv_dw):
 * a gemm with so few rows spends more on im2col and packing than on arithmetic.  Measured on LeNet (6 and 16
 * filters); with 64 (the MNIST CNN) the gemm is faster. */
#define CONV_DOT_DW_MAX_F 16

static int64_t images_per_gemm(const conv_plan *p)
{
    if (p->P >= CONV_MIN_COLS || p->N <= 1) return 1;
    int64_t nb = (CONV_MIN_COLS + p->P - 1) / p->P;
    return nb < p->N ? nb : p->N;
}

/* Attributes arrive as doubles (from cfg text or the C API); these must be whole numbers >= min. */
static dn_status int_attr(const dn_node *node, int i, int64_t min, int64_t *out)
{
    double v = node->attr[i];
    if (!(v >= (double)min && v <= 1e9 && v == floor(v)))
        return dn_error(DN_ERR_ARG, "%s must be an integer >= %lld, got %g (input %s, weight %s)",
                        node->op->attr_names[i], (long long)min, v, dn_tshape(node->in[0]), dn_tshape(node->in[1]));
    *out = (int64_t)v;
    return DN_OK;
}

/* reference: im2col + gemm only (dn_op_conv2d_reference), neither packed nor dot_dw. */
static dn_status plan_conv(const dn_node *node, bool reference, conv_plan *p)
{
    if (node->n_in != 2 && node->n_in != 3)
        return dn_error(DN_ERR_ARG, "takes (x, weight) or (x, weight, bias), got %d inputs", node->n_in);
    const dn_tensor *x = node->in[0], *w = node->in[1], *b = node->n_in == 3 ? node->in[2] : NULL;
    if (x->ndim != 4)
        return dn_error(DN_ERR_SHAPE, "input must be [N, C, H, W], got %s (weight %s)", dn_tshape(x), dn_tshape(w));
    if (w->ndim != 4)
        return dn_error(DN_ERR_SHAPE, "weight must be [F, C/groups, kh, kw], got %s (input %s)", dn_tshape(w),
                        dn_tshape(x));
    for (int i = 0; i < 4; i++)
        if (w->shape[i] < 1 || (i > 0 && x->shape[i] < 1))
            return dn_error(DN_ERR_SHAPE, "input %s and weight %s must not have empty axes (only N may be 0)",
                            dn_tshape(x), dn_tshape(w));
    dn_conv_geom *g = &p->geom;
    dn_status s;
    if ((s = int_attr(node, DN_CONV_STRIDE_H, 1, &g->sh)) || (s = int_attr(node, DN_CONV_STRIDE_W, 1, &g->sw)) ||
        (s = int_attr(node, DN_CONV_PAD_H, 0, &g->ph)) || (s = int_attr(node, DN_CONV_PAD_W, 0, &g->pw)) ||
        (s = int_attr(node, DN_CONV_DILATION_H, 1, &g->dh)) || (s = int_attr(node, DN_CONV_DILATION_W, 1, &g->dw)) ||
        (s = int_attr(node, DN_CONV_GROUPS, 1, &p->G)))
        return s;
    p->relu = (node->op->flags & DN_OPF_RELU) != 0; /* conv2d_relu */
    p->N = x->shape[0];
    p->C = x->shape[1];
    p->F = w->shape[0];
    if (p->F % p->G != 0)
        return dn_error(DN_ERR_SHAPE, "weight %s: %lld filters do not divide into groups=%lld (input %s)", dn_tshape(w),
                        (long long)p->F, (long long)p->G, dn_tshape(x));
    if (p->C != w->shape[1] * p->G)
        return dn_error(DN_ERR_SHAPE, "input %s has %lld channels, but weight %s with groups=%lld expects %lld",
                        dn_tshape(x), (long long)p->C, dn_tshape(w), (long long)p->G, (long long)(w->shape[1] * p->G));
    g->C = p->Cg = w->shape[1];
    p->Fg = p->F / p->G;
    g->H = x->shape[2];
    g->W = x->shape[3];
    g->kh = w->shape[2];
    g->kw = w->shape[3];
    /* a negative numerator of dn_conv_out_size means the dilated kernel (extent dh (kh - 1) + 1) does not fit in
     * the padded input even once */
    int64_t nh = g->H + 2 * g->ph - g->dh * (g->kh - 1) - 1, nw = g->W + 2 * g->pw - g->dw * (g->kw - 1) - 1;
    if (nh < 0 || nw < 0)
        return dn_error(DN_ERR_SHAPE, "kernel of weight %s (dilation %lldx%lld, extent %lldx%lld) is larger than "
                        "input %s padded by %lldx%lld", dn_tshape(w), (long long)g->dh, (long long)g->dw,
                        (long long)(g->dh * (g->kh - 1) + 1), (long long)(g->dw * (g->kw - 1) + 1), dn_tshape(x),
                        (long long)g->ph, (long long)g->pw);
    g->Ho = dn_conv_out_size(g->H, g->kh, g->sh, g->ph, g->dh);
    g->Wo = dn_conv_out_size(g->W, g->kw, g->sw, g->pw, g->dw);
    if (b && (b->ndim != 1 || b->shape[0] != p->F))
        return dn_error(DN_ERR_SHAPE, "bias must be [%lld] (one per filter of weight %s), got %s", (long long)p->F,
                        dn_tshape(w), dn_tshape(b));
    p->K = p->Cg * g->kh * g->kw;
    p->P = g->Ho * g->Wo;
    p->nb = images_per_gemm(p);
    p->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 && p->nb == 1;
    /* the smallest block has one image, P columns: if that is not a tiny product, none is */
    const bool fast = !reference && !p->direct && dn_conv_pack_available(g);
    p->packed = fast && !dn_sgemm_is_tiny(p->Fg, p->P, p->K);
    /* few filters: the weight gradient as dot products over the pixels (dn_conv_dw), no column matrix */
    p->dot_dw = fast && p->Fg <= CONV_DOT_DW_MAX_F;
    return DN_OK;
}

/* The saved state: contiguous input and weight (the backward needs both). */
typedef struct conv_saved {
    const float *x, *w;
} conv_saved;

/* col[K, m*P] (row stride m*P) <- the columns of images n0 .. n0+m-1, group g */
static void block_im2col(const conv_plan *p, const float *x, int64_t n0, int64_t m, int64_t g, float *col)
{
    const int64_t HW = p->geom.H * p->geom.W;
    for (int64_t i = 0; i < m; i++)
        dn_im2col(&p->geom, x + ((n0 + i) * p->C + g * p->Cg) * HW, col + i * p->P, m * p->P);
}

/* Threads take whole blocks of images (the forward pass and dx are independent per image): a block's numbers
 * come from the same calls whichever thread runs it, and dn_sgemm's results do not depend on the thread count
 * (inside a part it runs on that part's thread), so the output is bit-identical for any number of threads.
 * Convolutions under CONV_PAR_MIN_FLOPS stay on one thread; each part has its own column (and gather) buffer. */
#define CONV_PAR_MIN_FLOPS 4e6

typedef struct conv_job {
    const conv_plan *p;
    const float *x, *w, *b; /* input, weight, bias (forward) */
    const float *dy;        /* the output's gradient (backward) */
    float *y;               /* forward: the output; backward: dx */
    float *col, *buf;       /* per-part column and gather buffers, col_len / buf_len floats apart */
    int64_t col_len, buf_len, blocks;
    float *partial;         /* backward: one [F, K] weight gradient per run of blocks */
    int64_t runs;
    float *xpad;            /* packed / dot_dw: per-part padded input blocks, xpad_len floats apart */
    int64_t xpad_len;
    float *wide;            /* dot_dw: per run of blocks, dW as partial sums [F, K, DN_CONV_DW_LANES] */
    char *dwruns;           /* dot_dw: per part, the pixel runs of a block (dn_conv_dw), dwruns_len bytes apart */
    size_t dwruns_len;
    float *dwdy;            /* dot_dw: per part, dy rearranged (dn_conv_dw), dwdy_len floats apart */
    int64_t dwdy_len;
    const int64_t *koff;    /* packed / dot_dw: each tap's offset in a padded block (dn_conv_pack_offsets) */
} conv_job;

/* How many parts a job over `blocks` image blocks gets, and the arena room for their buffers. */
static int conv_parts(const conv_plan *p, int64_t blocks)
{
    const double flops = 2.0 * (double)p->N * (double)p->F * (double)p->K * (double)p->P;
    if (blocks < 2 || flops < CONV_PAR_MIN_FLOPS) return 1;
    int parts = dn_parallel_parts();
    return parts > blocks ? (int)blocks : parts;
}

/* need_col: a column matrix per part (im2col); need_pad: a padded input block per part (the packed paths). */
static dn_status conv_job_buffers(dn_ctx *ctx, conv_job *j, int parts, bool need_col, bool need_pad)
{
    const conv_plan *p = j->p;
    if (need_pad) {
        /* no column matrix: a padded copy of each block's input (zero borders, written once) and the taps'
         * offsets in it */
        const dn_conv_geom *g = &p->geom;
        j->xpad_len = p->nb * p->Cg * (g->H + 2 * g->ph) * (g->W + 2 * g->pw) + 2 * DN_CONV_PACK_SLACK;
        j->xpad = dn_ctx_calloc(ctx, (size_t)(parts * j->xpad_len) * sizeof(float));
        int64_t *koff = dn_ctx_alloc(ctx, (size_t)p->K * sizeof(int64_t));
        if (!j->xpad || !koff) return DN_ERR_NOMEM;
        dn_conv_pack_offsets(g, koff);
        j->koff = koff;
    }
    j->col_len = need_col ? p->K * p->nb * p->P : 0; /* [K, nb*P] */
    j->buf_len = p->nb == 1 ? 0 : p->Fg * p->nb * p->P; /* [Fg, nb*P] */
    j->col = j->col_len ? dn_ctx_alloc(ctx, (size_t)(parts * j->col_len) * sizeof(float)) : NULL;
    j->buf = j->buf_len ? dn_ctx_alloc(ctx, (size_t)(parts * j->buf_len) * sizeof(float)) : NULL;
    return (j->col_len && !j->col) || (j->buf_len && !j->buf) ? DN_ERR_NOMEM : DN_OK;
}

/* A part's own column, gather and padded-input buffers. */
static float *part_col(const conv_job *j, int part) { return j->col ? j->col + part * j->col_len : NULL; }
static float *part_buf(const conv_job *j, int part) { return j->buf ? j->buf + part * j->buf_len : NULL; }
static float *part_xpad(const conv_job *j, int part)
{
    return j->xpad ? j->xpad + part * j->xpad_len + DN_CONV_PACK_SLACK : NULL;
}

/* Images in block blk (the last block may be short). */
static int64_t block_images(const conv_plan *p, int64_t blk)
{
    const int64_t n0 = blk * p->nb;
    return p->N - n0 < p->nb ? p->N - n0 : p->nb;
}

/* Y for the image blocks of this part. */
static void conv_fwd_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const conv_job *j = arg;
    const conv_plan *p = j->p;
    const int64_t nb = p->nb, HW = p->geom.H * p->geom.W;
    float *col = part_col(j, part), *ybuf = part_buf(j, part);
    float *xpad = part_xpad(j, part);
    const dn_gemm_epilogue ep = p->relu ? DN_GEMM_RELU : DN_GEMM_NONE;
    for (int64_t blk = j->blocks * part / parts; blk < j->blocks * (part + 1) / parts; blk++) {
        const int64_t n0 = blk * nb, m = block_images(p, blk), L = m * p->P; /* m images, L columns */
        for (int64_t g = 0; g < p->G; g++) {
            const float *xg = j->x + (n0 * p->C + g * p->Cg) * HW, *wg = j->w + g * p->Fg * p->K;
            /* one image writes straight into y; a block goes through ybuf and is scattered below */
            float *out = m == 1 ? j->y + (n0 * p->F + g * p->Fg) * p->P : ybuf; /* [Fg, L] */
            if (j->b)
                for (int64_t f = 0; f < p->Fg; f++)
                    for (int64_t q = 0; q < L; q++) out[f * L + q] = j->b[g * p->Fg + f];
            /* Y_g = W_g · col (+ the bias already there), then the ReLU if fused; col is packed for the gemm
             * straight from the padded input, or built by im2col first, or (direct) is the input itself */
            if (p->packed) {
                dn_conv_pad(&p->geom, xg, p->C * HW, m, xpad);
                const dn_conv_pack pk = {&p->geom, xpad, j->koff, L};
                dn_sgemm_pack_fn(p->Fg, L, p->K, 1.0f, wg, p->K, dn_conv_pack_b, &pk, j->b ? 1.0f : 0.0f, out, L, ep);
            } else {
                const float *cols = xg;
                if (!p->direct) {
                    block_im2col(p, j->x, n0, m, g, col);
                    cols = col;
                }
                dn_sgemm_ex(false, false, p->Fg, L, p->K, 1.0f, wg, p->K, cols, L, j->b ? 1.0f : 0.0f, out, L, ep);
            }
            if (m > 1)
                for (int64_t i = 0; i < m; i++)
                    for (int64_t f = 0; f < p->Fg; f++)
                        memcpy(j->y + ((n0 + i) * p->F + g * p->Fg + f) * p->P, ybuf + f * L + i * p->P,
                               (size_t)p->P * sizeof(float));
        }
    }
}

static dn_status conv_forward(dn_ctx *ctx, dn_node *node, bool reference)
{
    conv_plan p;
    dn_status s = plan_conv(node, reference, &p);
    if (s) return s;
    dn_tensor *x = node->in[0], *w = node->in[1], *b = node->n_in == 3 ? node->in[2] : NULL;
    int64_t shape[4] = {p.N, p.F, p.geom.Ho, p.geom.Wo};
    dn_tensor *y = dn_ctx_tensor(ctx, 4, shape);
    const float *xd = dn_ctx_contig(ctx, x), *wd = dn_ctx_contig(ctx, w), *bd = b ? dn_ctx_contig(ctx, b) : NULL;
    conv_saved *sv = dn_ctx_alloc(ctx, sizeof *sv);
    if (!y || !xd || !wd || (b && !bd) || !sv) return DN_ERR_NOMEM;
    conv_job j = {.p = &p, .x = xd, .w = wd, .b = bd, .y = y->data, .blocks = (p.N + p.nb - 1) / p.nb};
    const int parts = conv_parts(&p, j.blocks);
    if ((s = conv_job_buffers(ctx, &j, parts, !p.direct && !p.packed, p.packed))) return s;
    dn_parallel_run(parts, conv_fwd_part, &j);
    sv->x = xd;
    sv->w = wd;
    node->saved = sv;
    node->out = y;
    return DN_OK;
}

/* dY_g of images n0 .. n0+m-1 as one [Fg, m*P] matrix: in place for one image, gathered into buf for several */
static const float *block_dy(const conv_plan *p, const float *dy, int64_t n0, int64_t m, int64_t g, float *buf)
{
    if (m == 1) return dy + (n0 * p->F + g * p->Fg) * p->P;
    const int64_t L = m * p->P;
    for (int64_t i = 0; i < m; i++)
        for (int64_t f = 0; f < p->Fg; f++)
            memcpy(buf + f * L + i * p->P, dy + ((n0 + i) * p->F + g * p->Fg + f) * p->P, (size_t)p->P * sizeof(float));
    return buf;
}

/* dx for the image blocks of this part: dcol = W_gᵀ · dY_g, and col2im sends each entry back to its pixel. */
static void conv_dx_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const conv_job *j = arg;
    const conv_plan *p = j->p;
    const int64_t nb = p->nb, HW = p->geom.H * p->geom.W;
    float *col = part_col(j, part), *buf = part_buf(j, part);
    for (int64_t blk = j->blocks * part / parts; blk < j->blocks * (part + 1) / parts; blk++) {
        const int64_t n0 = blk * nb, m = block_images(p, blk), L = m * p->P;
        for (int64_t g = 0; g < p->G; g++) {
            const float *wg = j->w + g * p->Fg * p->K, *dyg = block_dy(p, j->dy, n0, m, g, buf);
            float *dxg = j->y + (n0 * p->C + g * p->Cg) * HW;
            if (p->direct) {
                /* dx_g[Cg, HW] += W_gᵀ · dY_g straight into the gradient */
                dn_sgemm(true, false, p->K, L, p->Fg, 1.0f, wg, p->K, dyg, L, 1.0f, dxg, L);
            } else {
                dn_sgemm(true, false, p->K, L, p->Fg, 1.0f, wg, p->K, dyg, L, 0.0f, col, L);
                for (int64_t i = 0; i < m; i++) dn_col2im(&p->geom, col + i * p->P, L, dxg + i * p->C * HW);
            }
        }
    }
}

/* dW is a sum over all images.  The image blocks are cut into `runs` stretches of consecutive blocks, a number
 * that depends on the problem and never on the thread count; each stretch sums its blocks in image order into its
 * own [F, K] partial (dW_g += dY_g · colᵀ, the columns rebuilt from the saved input), and the partials are added
 * to dw in stretch order.  Threads take whole stretches, so dW comes out the same for any thread count. */
#define CONV_DW_RUNS 4

static int64_t conv_dw_runs(const conv_plan *p, int64_t blocks)
{
    const double flops = 2.0 * (double)p->N * (double)p->F * (double)p->K * (double)p->P;
    if (flops < CONV_PAR_MIN_FLOPS) return 1;
    return blocks < CONV_DW_RUNS ? blocks : CONV_DW_RUNS;
}

static void conv_dw_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const conv_job *j = arg;
    const conv_plan *p = j->p;
    const int64_t nb = p->nb, HW = p->geom.H * p->geom.W;
    float *col = part_col(j, part), *buf = part_buf(j, part);
    float *xpad = part_xpad(j, part);
    for (int64_t r = j->runs * part / parts; r < j->runs * (part + 1) / parts; r++) {
        /* the gemm adds into acc; the dot products add into wide, whose lane sums then overwrite acc */
        float *acc = j->partial + r * p->F * p->K;
        float *wide = p->dot_dw ? j->wide + r * p->F * p->K * DN_CONV_DW_LANES : NULL;
        if (wide) memset(wide, 0, (size_t)(p->F * p->K * DN_CONV_DW_LANES) * sizeof(float));
        else memset(acc, 0, (size_t)(p->F * p->K) * sizeof(float));
        for (int64_t blk = j->blocks * r / j->runs; blk < j->blocks * (r + 1) / j->runs; blk++) {
            const int64_t n0 = blk * nb, m = block_images(p, blk), L = m * p->P;
            for (int64_t g = 0; g < p->G; g++) {
                const float *xg = j->x + (n0 * p->C + g * p->Cg) * HW, *dyg = block_dy(p, j->dy, n0, m, g, buf);
                float *accg = acc + g * p->Fg * p->K;
                if (p->dot_dw) { /* dot products straight from the padded input, DN_CONV_DW_LANES partial sums each */
                    dn_conv_pad(&p->geom, xg, p->C * HW, m, xpad);
                    const dn_conv_pack pk = {&p->geom, xpad, j->koff, L};
                    dn_conv_dw(&pk, dyg, p->Fg, wide + g * p->Fg * p->K * DN_CONV_DW_LANES,
                               j->dwruns + part * j->dwruns_len, j->dwdy + part * j->dwdy_len);
                    continue;
                }
                const float *cols = xg;
                if (!p->direct) {
                    block_im2col(p, j->x, n0, m, g, col);
                    cols = col;
                }
                dn_sgemm(false, true, p->Fg, p->K, L, 1.0f, dyg, L, cols, L, 1.0f, accg, p->K);
            }
        }
        if (wide) /* the partial sums of each weight, added in lane order */
            for (int64_t i = 0; i < p->F * p->K; i++) {
                float sum = 0.0f;
                for (int lane = 0; lane < DN_CONV_DW_LANES; lane++) sum += wide[i * DN_CONV_DW_LANES + lane];
                acc[i] = sum;
            }
    }
}

/* db[f] = Σ_n Σ_p dy[n, f, p], summed in double in a fixed order: eight running sums (element q goes to sum
 * q mod 8), so the additions do not wait on each other and the loop vectorises, then added up.  Threads take
 * whole filters. */
typedef struct bias_job {
    const conv_plan *p;
    const float *dy;
    float *db;
} bias_job;

static void bias_grad_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const bias_job *j = arg;
    const conv_plan *p = j->p;
    enum { LANES = 8 };
    for (int64_t f = p->F * part / parts; f < p->F * (part + 1) / parts; f++) {
        double acc[LANES] = {0};
        for (int64_t n = 0; n < p->N; n++) {
            const float *row = j->dy + (n * p->F + f) * p->P;
            int64_t q = 0;
            for (; q + LANES <= p->P; q += LANES)
                for (int k = 0; k < LANES; k++) acc[k] += row[q + k];
            for (int k = 0; q < p->P; q++, k++) acc[k] += row[q];
        }
        double total = 0;
        for (int k = 0; k < LANES; k++) total += acc[k];
        j->db[f] += (float)total;
    }
}

static dn_status conv_backward(dn_ctx *ctx, dn_node *node, bool reference)
{
    conv_plan p;
    dn_status s = plan_conv(node, reference, &p);
    if (s) return s;
    dn_tensor *x = node->in[0], *w = node->in[1], *b = node->n_in == 3 ? node->in[2] : NULL;
    const conv_saved *sv = node->saved;
    /* a fused ReLU: dy becomes the gradient of the pre-activation, in place (nothing reads y's gradient after
     * this node's backward step) */
    if (p.relu) dn_relu_mask_grad(node->out->grad, node->out->data, dn_tensor_numel(node->out));
    const float *dy = node->out->grad; /* [N, F, P] */
    if (b && b->requires_grad) {
        float *db = dn_grad_buf(ctx, b);
        if (!db) return DN_ERR_NOMEM;
        bias_job bj = {&p, dy, db};
        dn_parallel_run(p.F >= 2 && p.N * p.F * p.P >= 65536 ? dn_parallel_parts() : 1, bias_grad_part, &bj);
    }
    float *dx = x->requires_grad ? dn_grad_buf(ctx, x) : NULL;
    float *dw = w->requires_grad ? dn_grad_buf(ctx, w) : NULL;
    if ((x->requires_grad && !dx) || (w->requires_grad && !dw)) return DN_ERR_NOMEM;
    conv_job j = {.p = &p, .x = sv->x, .w = sv->w, .dy = dy, .y = dx, .blocks = (p.N + p.nb - 1) / p.nb};
    const int parts = conv_parts(&p, j.blocks);
    const bool need_col = !p.direct && (dx || (dw && !p.dot_dw)), need_pad = dw && p.dot_dw;
    if ((dx || dw) && (s = conv_job_buffers(ctx, &j, parts, need_col, need_pad))) return s;
    if (dw) {
        const int64_t runs = conv_dw_runs(&p, j.blocks);
        j.partial = dn_ctx_alloc(ctx, (size_t)(runs * p.F * p.K) * sizeof(float));
        if (!j.partial) return DN_ERR_NOMEM;
        if (p.dot_dw) {
            j.dwruns_len = dn_conv_dw_runs_bytes(p.nb * p.P); /* a multiple of 64: each part's stays aligned */
            j.wide = dn_ctx_alloc(ctx, (size_t)(runs * p.F * p.K * DN_CONV_DW_LANES) * sizeof(float));
            j.dwruns = dn_ctx_alloc(ctx, (size_t)parts * j.dwruns_len);
            j.dwdy_len = dn_conv_dw_dy_len(p.nb * p.P); /* a multiple of 16 floats: each part's stays aligned */
            j.dwdy = dn_ctx_alloc(ctx, (size_t)(parts * j.dwdy_len) * sizeof(float));
            if (!j.wide || !j.dwruns || !j.dwdy) return DN_ERR_NOMEM;
        }
        j.runs = runs;
        dn_parallel_run(parts < runs ? parts : (int)runs, conv_dw_part, &j);
        /* dw += the runs' sums, in run order */
        for (int64_t i = 0; i < p.F * p.K; i++) {
            float sum = dw[i];
            for (int64_t r = 0; r < runs; r++) sum += j.partial[r * p.F * p.K + i];
            dw[i] = sum;
        }
    }
    if (dx) dn_parallel_run(parts, conv_dx_part, &j);
    return DN_OK;
}

static dn_status conv_fwd(dn_ctx *ctx, dn_node *node) { return conv_forward(ctx, node, false); }
static dn_status conv_bwd(dn_ctx *ctx, dn_node *node) { return conv_backward(ctx, node, false); }
static dn_status conv_ref_fwd(dn_ctx *ctx, dn_node *node) { return conv_forward(ctx, node, true); }
static dn_status conv_ref_bwd(dn_ctx *ctx, dn_node *node) { return conv_backward(ctx, node, true); }

#define X(n, c, h, w) {4, {n, c, h, w}, DN_FILL_UNIFORM, -1, 1}
#define B(f) {1, {f}, DN_FILL_UNIFORM, -1, 1}

static const dn_case conv_cases[] = {
    {3, {X(2, 3, 5, 5), X(4, 3, 3, 3), B(4)}, NULL},
    {2, {X(2, 3, 5, 5), X(4, 3, 3, 3)}, "stride_h=2 stride_w=2 pad_h=1 pad_w=1"},
    {3, {X(1, 2, 7, 7), X(3, 2, 3, 3), B(3)}, "dilation_h=2 dilation_w=2 pad_h=1 pad_w=1"},
    /* groups 3, non-square kernel, a different stride and padding per axis */
    {3, {X(1, 6, 5, 5), X(6, 2, 2, 3), B(6)}, "groups=3 stride_h=2 pad_w=1"},
    /* depthwise: one filter per channel */
    {3, {X(2, 3, 5, 5), X(3, 1, 3, 3), B(3)}, "groups=3 pad_h=1 pad_w=1"},
    /* 1x1: two images share a gemm (a copy instead of im2col); one image takes the direct path */
    {3, {X(2, 4, 3, 3), X(5, 4, 1, 1), B(5)}, NULL},
    {2, {X(1, 4, 3, 3), X(4, 2, 1, 1)}, "groups=2"},
    /* everything different along the two axes */
    {2, {X(1, 2, 6, 7), X(2, 2, 2, 3)}, "stride_w=2 pad_h=1 dilation_h=2"},
};
/* conv2d_relu: one image per gemm, and two images sharing one */
static const dn_case conv_relu_cases[] = {
    {3, {X(1, 3, 5, 5), X(4, 3, 3, 3), B(4)}, "pad_h=1 pad_w=1"},
    {3, {X(2, 3, 5, 5), X(4, 3, 3, 3), B(4)}, NULL},
};

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

#define CONV_ATTRS                                                                                          \
    .arity = -1, .n_attrs = DN_CONV_N_ATTRS,                                                                \
    .attr_names = {"stride_h", "stride_w", "pad_h", "pad_w", "dilation_h", "dilation_w", "groups"},         \
    .attr_defaults = {1, 1, 0, 0, 1, 1, 1}

const dn_op dn_ops_conv[] = {
    {.name = "conv2d", CONV_ATTRS, .forward = conv_fwd, .backward = conv_bwd,
     .doc = "y = w ⋆ x + b, cross-correlation with stride, zero padding, dilation, groups; torch.nn.functional.conv2d",
     .cases = conv_cases, .n_cases = N_OF(conv_cases)},
    {.name = "conv2d_relu", .flags = DN_OPF_RELU, CONV_ATTRS, .forward = conv_fwd, .backward = conv_bwd,
     .doc = "y = relu(w ⋆ x + b), conv2d with the ReLU in the gemm's epilogue and the gradient masked in backward "
            "(bit for bit conv2d then relu, without the pre-activation tensor)",
     .cases = conv_relu_cases, .n_cases = N_OF(conv_relu_cases)},
    {0},
};

/* Not in the registry: conv2d and conv2d_relu by im2col + gemm only, the references the tests hold the fast paths
 * to. */
const dn_op dn_op_conv2d_reference = {.name = "conv2d_reference", CONV_ATTRS, .forward = conv_ref_fwd,
                                      .backward = conv_ref_bwd};
const dn_op dn_op_conv2d_relu_reference = {.name = "conv2d_relu_reference", .flags = DN_OPF_RELU, CONV_ATTRS,
                                           .forward = conv_ref_fwd, .backward = conv_ref_bwd};

dn_tensor *dn_conv2d(dn_ctx *ctx, dn_tensor *x, dn_tensor *w, dn_tensor *b, int stride_h, int stride_w, int pad_h,
                     int pad_w, int dilation_h, int dilation_w, int groups)
{
    dn_tensor *in[] = {x, w, b};
    double a[DN_CONV_N_ATTRS];
    a[DN_CONV_STRIDE_H] = stride_h;
    a[DN_CONV_STRIDE_W] = stride_w;
    a[DN_CONV_PAD_H] = pad_h;
    a[DN_CONV_PAD_W] = pad_w;
    a[DN_CONV_DILATION_H] = dilation_h;
    a[DN_CONV_DILATION_W] = dilation_w;
    a[DN_CONV_GROUPS] = groups;
    return dn_apply(ctx, "conv2d", b ? 3 : 2, in, a);
}
