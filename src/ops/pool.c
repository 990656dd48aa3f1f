/* 2-D pooling (NCHW): max, min and average over kh x kw windows, and their global forms over the whole plane.
 *
 * Window (oh, ow) covers input rows oh*sh - ph .. oh*sh - ph + kh - 1 (and the same for columns); the
 * output size is floor((H + 2 ph - kh) / sh) + 1, as torch with ceil_mode off.  Padding never wins a max
 * or min (it counts as -inf / +inf), so the window is simply clipped to the input.  Average pooling divides
 * by kh*kw even where the window overlaps the padding (torch's count_include_pad=True): the padding
 * counts as zeros.
 *
 * Max and min send the gradient to ONE element per window: the first extreme one in row-major window order
 * (torch's argmax rule, ties included; a NaN wins, as in torch).  The forward pass records that element's
 * index in the plane, so backward is a scatter-add. */
#include "internal.h"
#include "kernels/pool_kernels.h"
#include "kernels/threads.h"

#include <math.h>

enum { P_MAX, P_MIN, P_AVG };

typedef struct pool_plan {
    int64_t planes, H, W; /* N*C input planes of H x W */
    int64_t kh, kw, sh, sw, ph, pw;
    int64_t Ho, Wo;
} pool_plan;

static dn_status int_attr(const dn_node *node, int i, int64_t min, int64_t *out)
{
    double v = node->attr[i];
    if (!(v >= (double)min && v <= 1e9 && v == floor(v)))
        return dn_error(DN_ERR_ARG, "%s must be an integer >= %lld, got %g (input %s)", node->op->attr_names[i],
                        (long long)min, v, dn_tshape(node->in[0]));
    *out = (int64_t)v;
    return DN_OK;
}

/* global: one window over the whole plane (no attributes). */
static dn_status plan_pool(const dn_node *node, bool global, pool_plan *p)
{
    const dn_tensor *x = node->in[0];
    if (x->ndim != 4) return dn_error(DN_ERR_SHAPE, "input must be [N, C, H, W], got %s", dn_tshape(x));
    p->planes = x->shape[0] * x->shape[1];
    p->H = x->shape[2];
    p->W = x->shape[3];
    if (p->H < 1 || p->W < 1) return dn_error(DN_ERR_SHAPE, "input %s has an empty plane", dn_tshape(x));
    if (global) {
        p->kh = p->H;
        p->kw = p->W;
        p->sh = p->sw = 1;
        p->ph = p->pw = 0;
    } else {
        dn_status s;
        if ((s = int_attr(node, DN_POOL_KERNEL_H, 1, &p->kh)) || (s = int_attr(node, DN_POOL_KERNEL_W, 1, &p->kw)) ||
            (s = int_attr(node, DN_POOL_STRIDE_H, 0, &p->sh)) || (s = int_attr(node, DN_POOL_STRIDE_W, 0, &p->sw)) ||
            (s = int_attr(node, DN_POOL_PAD_H, 0, &p->ph)) || (s = int_attr(node, DN_POOL_PAD_W, 0, &p->pw)))
            return s;
        if (p->sh == 0) p->sh = p->kh; /* torch's default stride is the kernel size */
        if (p->sw == 0) p->sw = p->kw;
        /* torch's rule; it also guarantees that every window holds at least one input element */
        if (p->ph > p->kh / 2 || p->pw > p->kw / 2)
            return dn_error(DN_ERR_ARG, "padding %lldx%lld must be at most half the kernel %lldx%lld (input %s)",
                            (long long)p->ph, (long long)p->pw, (long long)p->kh, (long long)p->kw, dn_tshape(x));
        if (p->H + 2 * p->ph < p->kh || p->W + 2 * p->pw < p->kw)
            return dn_error(DN_ERR_SHAPE, "kernel %lldx%lld is larger than input %s padded by %lldx%lld",
                            (long long)p->kh, (long long)p->kw, dn_tshape(x), (long long)p->ph, (long long)p->pw);
    }
    p->Ho = dn_conv_out_size(p->H, p->kh, p->sh, p->ph, 1);
    p->Wo = dn_conv_out_size(p->W, p->kw, p->sw, p->pw, 1);
    return DN_OK;
}

/* The window of output (oh, ow), clipped to the input: rows [*h0, *h1), columns [*w0, *w1). */
static void window(const pool_plan *p, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * p->sh - p->ph, ws = ow * p->sw - p->pw;
    *h1 = hs + p->kh < p->H ? hs + p->kh : p->H;
    *w1 = ws + p->kw < p->W ? ws + p->kw : p->W;
    *h0 = hs > 0 ? hs : 0;
    *w0 = ws > 0 ? ws : 0;
}

/* Planes are independent, so threads take whole planes of a large input: the same numbers for any count. */
#define POOL_PAR_MIN 65536

typedef struct pool_job {
    const pool_plan *p;
    int kind;
    const float *x, *dy; /* input (forward), output gradient (backward) */
    float *y;            /* output (forward), dx (backward) */
    int64_t *arg;        /* max/min: the index in its plane of the element each output took */
} pool_job;

static void pool_forward_planes(const pool_job *j, int64_t pl0, int64_t pl1)
{
    const pool_plan p = *j->p;
    const int kind = j->kind;
    if (kind != P_AVG && p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0) {
        /* the common case, with SIMD kernels (src/kernels/pool2x2.c): the same rule, the same results */
        const dn_pool_geom g = {p.H, p.W, p.Ho, p.Wo};
        dn_pool_2x2(&g, kind == P_MAX, j->x, j->y, j->arg, pl0, pl1);
        return;
    }
    const float count = (float)(p.kh * p.kw); /* count_include_pad: always the full window */
    for (int64_t pl = pl0; pl < pl1; pl++) {
        const float *xp = j->x + pl * p.H * p.W;
        float *yp = j->y + pl * p.Ho * p.Wo;
        for (int64_t oh = 0; oh < p.Ho; oh++) {
            for (int64_t ow = 0; ow < p.Wo; ow++) {
                int64_t h0, h1, w0, w1, o = oh * p.Wo + ow;
                window(&p, oh, ow, &h0, &h1, &w0, &w1);
                if (kind == P_AVG) {
                    float sum = 0;
                    for (int64_t i = h0; i < h1; i++)
                        for (int64_t jj = w0; jj < w1; jj++) sum += xp[i * p.W + jj];
                    yp[o] = sum / count;
                    continue;
                }
                /* strict comparison keeps the first extreme element; a NaN always takes over (torch) */
                float best = kind == P_MAX ? -INFINITY : INFINITY;
                int64_t at = h0 * p.W + w0;
                for (int64_t i = h0; i < h1; i++) {
                    for (int64_t jj = w0; jj < w1; jj++) {
                        float v = xp[i * p.W + jj];
                        if ((kind == P_MAX ? v > best : v < best) || isnan(v)) {
                            best = v;
                            at = i * p.W + jj;
                        }
                    }
                }
                yp[o] = best;
                j->arg[pl * p.Ho * p.Wo + o] = at;
            }
        }
    }
}

static void pool_backward_planes(const pool_job *j, int64_t pl0, int64_t pl1)
{
    const pool_plan p = *j->p;
    const float count = (float)(p.kh * p.kw);
    for (int64_t pl = pl0; pl < pl1; pl++) {
        float *dxp = j->y + pl * p.H * p.W;
        const float *dyp = j->dy + pl * p.Ho * p.Wo;
        if (j->kind != P_AVG) {
            const int64_t *ap = j->arg + pl * p.Ho * p.Wo;
            for (int64_t o = 0; o < p.Ho * p.Wo; o++) dxp[ap[o]] += dyp[o];
            continue;
        }
        /* y = (1/(kh kw)) Σ_window x, so every element of the window receives dy / (kh kw) */
        for (int64_t oh = 0; oh < p.Ho; oh++) {
            for (int64_t ow = 0; ow < p.Wo; ow++) {
                int64_t h0, h1, w0, w1;
                window(&p, oh, ow, &h0, &h1, &w0, &w1);
                float g = dyp[oh * p.Wo + ow] / count;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t jj = w0; jj < w1; jj++) dxp[i * p.W + jj] += g;
            }
        }
    }
}

static void pool_forward_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const pool_job *j = arg;
    pool_forward_planes(j, j->p->planes * part / parts, j->p->planes * (part + 1) / parts);
}

static void pool_backward_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const pool_job *j = arg;
    pool_backward_planes(j, j->p->planes * part / parts, j->p->planes * (part + 1) / parts);
}

static int pool_parts(const pool_plan *p)
{
    if (p->planes < 2 || p->planes * p->H * p->W < POOL_PAR_MIN) return 1;
    const int parts = dn_parallel_parts();
    return parts > p->planes ? (int)p->planes : parts;
}

static dn_status pool_forward(dn_ctx *ctx, dn_node *node, int kind, bool global)
{
    pool_plan p;
    dn_status s = plan_pool(node, global, &p);
    if (s) return s;
    dn_tensor *x = node->in[0];
    int64_t shape[4] = {x->shape[0], x->shape[1], p.Ho, p.Wo};
    dn_tensor *y = dn_ctx_tensor(ctx, 4, shape);
    const float *xd = dn_ctx_contig(ctx, x);
    int64_t n_out = dn_tensor_numel(y ? y : x);
    /* max/min: the index in its plane of the element each output took (backward's scatter target) */
    int64_t *arg = kind == P_AVG ? NULL : dn_ctx_alloc(ctx, (size_t)(n_out + 1) * sizeof(int64_t));
    if (!y || !xd || (kind != P_AVG && !arg)) return DN_ERR_NOMEM;
    pool_job j = {.p = &p, .kind = kind, .x = xd, .y = y->data, .arg = arg};
    dn_parallel_run(pool_parts(&p), pool_forward_part, &j);
    node->saved = arg;
    node->out = y;
    return DN_OK;
}

static dn_status pool_backward(dn_ctx *ctx, dn_node *node, int kind, bool global)
{
    dn_tensor *x = node->in[0];
    if (!x->requires_grad) return DN_OK;
    pool_plan p;
    dn_status s = plan_pool(node, global, &p);
    if (s) return s;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    pool_job j = {.p = &p, .kind = kind, .dy = node->out->grad, .y = dx, .arg = node->saved};
    dn_parallel_run(pool_parts(&p), pool_backward_part, &j);
    return DN_OK;
}

static dn_status max_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_MAX, false); }
static dn_status min_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_MIN, false); }
static dn_status avg_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_AVG, false); }
static dn_status gmax_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_MAX, true); }
static dn_status gavg_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_AVG, true); }
static dn_status max_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_MAX, false); }
static dn_status min_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_MIN, false); }
static dn_status avg_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_AVG, false); }
static dn_status gmax_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_MAX, true); }
static dn_status gavg_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_AVG, true); }

/* Inputs spread over -5..5: a max or min flips only when two elements of a window lie within the
 * finite-difference step (2e-3) of each other, which these seeds avoid. */
#define X(n, c, h, w) {4, {n, c, h, w}, DN_FILL_UNIFORM, -5, 5}

static const dn_case pool_cases[] = {
    {1, {X(2, 3, 5, 5)}, NULL},
    /* overlapping windows with padding */
    {1, {X(2, 3, 5, 5)}, "kernel_h=3 kernel_w=3 stride_h=2 stride_w=2 pad_h=1 pad_w=1"},
    /* non-square kernel, a different stride and padding per axis */
    {1, {X(1, 2, 6, 7)}, "kernel_h=2 kernel_w=3 stride_h=1 stride_w=2 pad_w=1"},
};
static const dn_case global_cases[] = {
    {1, {X(2, 3, 4, 5)}, NULL},
    {1, {X(1, 2, 1, 3)}, NULL},
};

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))
#define POOL_OP(nm, f, b, d)                                                                                \
    {.name = nm, .arity = 1, .n_attrs = DN_POOL_N_ATTRS,                                                    \
     .attr_names = {"kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"},                      \
     .attr_defaults = {2, 2, 0, 0, 0, 0}, .forward = f, .backward = b, .doc = d, .cases = pool_cases,        \
     .n_cases = N_OF(pool_cases)}

const dn_op dn_ops_pool[] = {
    POOL_OP("max_pool2d", max_fwd, max_bwd,
            "y = max over each kh x kw window (stride 0 = kernel; padding is -inf); torch.nn.functional.max_pool2d"),
    POOL_OP("avg_pool2d", avg_fwd, avg_bwd,
            "y = window sum / (kh kw), padding counted as zeros; torch.nn.functional.avg_pool2d"),
    POOL_OP("min_pool2d", min_fwd, min_bwd,
            "y = min over each kh x kw window (padding is +inf); -torch.nn.functional.max_pool2d(-x)"),
    {.name = "global_avg_pool2d", .arity = 1, .forward = gavg_fwd, .backward = gavg_bwd,
     .doc = "[N, C, H, W] -> [N, C, 1, 1], mean of each plane; torch.nn.functional.adaptive_avg_pool2d(x, 1)",
     .cases = global_cases, .n_cases = N_OF(global_cases)},
    {.name = "global_max_pool2d", .arity = 1, .forward = gmax_fwd, .backward = gmax_bwd,
     .doc = "[N, C, H, W] -> [N, C, 1, 1], max of each plane; torch.nn.functional.adaptive_max_pool2d(x, 1)",
     .cases = global_cases, .n_cases = N_OF(global_cases)},
    {0},
};

static dn_tensor *pool(dn_ctx *ctx, const char *name, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    double a[] = {kh, kw, sh, sw, ph, pw};
    return dn_apply(ctx, name, 1, &x, a);
}

dn_tensor *dn_max_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    return pool(ctx, "max_pool2d", x, kh, kw, sh, sw, ph, pw);
}

dn_tensor *dn_avg_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    return pool(ctx, "avg_pool2d", x, kh, kw, sh, sw, ph, pw);
}

dn_tensor *dn_min_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    return pool(ctx, "min_pool2d", x, kh, kw, sh, sw, ph, pw);
}

dn_tensor *dn_global_avg_pool2d(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "global_avg_pool2d", 1, &x, NULL); }
dn_tensor *dn_global_max_pool2d(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "global_max_pool2d", 1, &x, NULL); }
