/* Reductions over a set of axes: sum, mean, max (amax: ties share the gradient evenly, as torch.amax). */
#include "internal.h"

#include <math.h>

enum { R_SUM, R_MEAN, R_MAX };

typedef struct reduce_plan {
    int64_t out_shape[DN_MAX_DIMS]; /* keepdim layout: reduced axes have size 1 */
    int64_t out_stride[DN_MAX_DIMS]; /* strides into the output as seen from the input's index, 0 on reduced axes */
    int64_t count;                   /* elements folded into each output */
} reduce_plan;

static dn_status plan_reduce(const dn_node *node, reduce_plan *p, int *ndim_out, int64_t *shape_out)
{
    const dn_tensor *x = node->in[0];
    double mask_d = node->attr[0];
    if (mask_d < 0 || mask_d != floor(mask_d) || mask_d >= (double)(1u << DN_MAX_DIMS))
        return dn_error(DN_ERR_ARG, "axes mask %g is not a valid bit mask", mask_d);
    unsigned mask = (unsigned)mask_d;
    if (mask == 0) mask = (1u << x->ndim) - 1;
    if (mask >> x->ndim)
        return dn_error(DN_ERR_ARG, "axes mask 0x%x names an axis beyond the input's %d dimensions %s", mask, x->ndim,
                        dn_tshape(x));
    bool keep = node->attr[1] != 0;
    p->count = 1;
    int k = 0;
    for (int i = 0; i < x->ndim; i++) {
        bool red = (mask >> i) & 1;
        p->out_shape[i] = red ? 1 : x->shape[i];
        if (red) p->count *= x->shape[i];
        if (!red || keep) shape_out[k++] = p->out_shape[i];
    }
    *ndim_out = k;
    dn_contiguous_strides(x->ndim, p->out_shape, p->out_stride);
    for (int i = 0; i < x->ndim; i++)
        if ((mask >> i) & 1) p->out_stride[i] = 0;
    return DN_OK;
}

static dn_status reduce_forward(dn_ctx *ctx, dn_node *node, int kind)
{
    dn_tensor *x = node->in[0];
    reduce_plan p;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_status s = plan_reduce(node, &p, &nd, shape);
    if (s) return s;
    if (kind == R_MAX && p.count == 0) return dn_error(DN_ERR_SHAPE, "max over an empty axis of %s", dn_tshape(x));
    dn_tensor *y = dn_ctx_tensor(ctx, nd, shape);
    if (!y) return DN_ERR_NOMEM;
    int64_t n_out = dn_tensor_numel(y);
    for (int64_t i = 0; i < n_out; i++) y->data[i] = kind == R_MAX ? -INFINITY : 0.0f;
    const int64_t *strides[] = {x->stride, p.out_stride};
    dn_iter it;
    dn_iter_init(&it, x->ndim, x->shape, 2, strides);
    if (!it.empty) do {
        const float *xr = x->data + it.off[0];
        float *yr = y->data + it.off[1];
        int64_t sx = it.step[0], sy = it.step[1];
        if (kind == R_MAX) {
            for (int64_t j = 0; j < it.inner; j++) {
                float v = xr[j * sx];
                /* NaN wins, as in torch */
                if (v > yr[j * sy] || isnan(v)) yr[j * sy] = v;
            }
        } else {
            for (int64_t j = 0; j < it.inner; j++) yr[j * sy] += xr[j * sx];
        }
    } while (dn_iter_next(&it));
    if (kind == R_MEAN) {
        float inv = p.count ? 1.0f / (float)p.count : NAN;
        for (int64_t i = 0; i < n_out; i++) y->data[i] *= inv;
    }
    node->out = y;
    return DN_OK;
}

static dn_status reduce_backward(dn_ctx *ctx, dn_node *node, int kind)
{
    dn_tensor *x = node->in[0], *y = node->out;
    if (!x->requires_grad) return DN_OK;
    reduce_plan p;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_status s = plan_reduce(node, &p, &nd, shape);
    if (s) return s;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    int64_t gx[DN_MAX_DIMS];
    dn_contiguous_strides(x->ndim, x->shape, gx);
    const float *dy = y->grad;
    float *ties = NULL;
    if (kind == R_MAX) {
        /* first pass: how many elements reached each maximum */
        ties = dn_ctx_calloc(ctx, (size_t)(dn_tensor_numel(y) + 1) * sizeof(float));
        if (!ties) return DN_ERR_NOMEM;
        const int64_t *st[] = {x->stride, p.out_stride};
        dn_iter it;
        dn_iter_init(&it, x->ndim, x->shape, 2, st);
        if (!it.empty) do {
            for (int64_t j = 0; j < it.inner; j++)
                if (x->data[it.off[0] + j * it.step[0]] == y->data[it.off[1] + j * it.step[1]])
                    ties[it.off[1] + j * it.step[1]] += 1.0f;
        } while (dn_iter_next(&it));
    }
    const int64_t *strides[] = {x->stride, p.out_stride, gx};
    dn_iter it;
    dn_iter_init(&it, x->ndim, x->shape, 3, strides);
    float inv = kind == R_MEAN && p.count ? 1.0f / (float)p.count : 1.0f;
    if (!it.empty) do {
        for (int64_t j = 0; j < it.inner; j++) {
            int64_t o = it.off[1] + j * it.step[1];
            float g = dy[o];
            if (kind == R_MAX) {
                if (x->data[it.off[0] + j * it.step[0]] != y->data[o]) continue;
                g /= ties[o];
            }
            dx[it.off[2] + j * it.step[2]] += g * inv;
        }
    } while (dn_iter_next(&it));
    return DN_OK;
}

static dn_status sum_fwd(dn_ctx *c, dn_node *n) { return reduce_forward(c, n, R_SUM); }
static dn_status mean_fwd(dn_ctx *c, dn_node *n) { return reduce_forward(c, n, R_MEAN); }
static dn_status max_fwd(dn_ctx *c, dn_node *n) { return reduce_forward(c, n, R_MAX); }
static dn_status sum_bwd(dn_ctx *c, dn_node *n) { return reduce_backward(c, n, R_SUM); }
static dn_status mean_bwd(dn_ctx *c, dn_node *n) { return reduce_backward(c, n, R_MEAN); }
static dn_status max_bwd(dn_ctx *c, dn_node *n) { return reduce_backward(c, n, R_MAX); }

static const dn_case reduce_cases[] = {
    {1, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -2, 2}}, NULL},
    {1, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -2, 2}}, "axes=2"},
    {1, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -2, 2}}, "axes=5 keepdim=1"},
    {1, {{2, {3, 5}, DN_FILL_UNIFORM, -2, 2}}, "axes=1 keepdim=1"},
};

#define REDUCE_OP(nm, f, b, d)                                                                              \
    {.name = nm, .arity = 1, .n_attrs = 2, .attr_names = {"axes", "keepdim"}, .attr_defaults = {0, 0},       \
     .forward = f, .backward = b, .doc = d, .cases = reduce_cases, .n_cases = 4}

const dn_op dn_ops_reduce[] = {
    REDUCE_OP("sum", sum_fwd, sum_bwd, "y = sum of x over the axes in the bit mask `axes` (0: all); torch.sum"),
    REDUCE_OP("mean", mean_fwd, mean_bwd, "y = mean of x over `axes` (0: all); torch.mean"),
    REDUCE_OP("max", max_fwd, max_bwd, "y = max of x over `axes` (0: all); ties share the gradient; torch.amax"),
    {0},
};

static dn_tensor *reduce(dn_ctx *ctx, const char *name, dn_tensor *x, unsigned axes, bool keepdim)
{
    double a[] = {(double)axes, keepdim ? 1.0 : 0.0};
    return dn_apply(ctx, name, 1, &x, a);
}

dn_tensor *dn_sum(dn_ctx *ctx, dn_tensor *x, unsigned axes, bool keepdim) { return reduce(ctx, "sum", x, axes, keepdim); }
dn_tensor *dn_mean(dn_ctx *ctx, dn_tensor *x, unsigned axes, bool keepdim) { return reduce(ctx, "mean", x, axes, keepdim); }
dn_tensor *dn_max(dn_ctx *ctx, dn_tensor *x, unsigned axes, bool keepdim) { return reduce(ctx, "max", x, axes, keepdim); }
