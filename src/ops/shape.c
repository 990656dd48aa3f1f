/* Shape ops: reshape, permute, slice (views that share storage), concat and contiguous (copies). */
#include "internal.h"

#include <math.h>

/* dst[i] (+)= src[i] over a strided index space: the copy (forward) and the accumulation (every backward here)
 * of a view's elements.  Both sides have their own strides. */
static void strided_move(int ndim, const int64_t *shape, float *dst, const int64_t *dst_stride, const float *src,
                         const int64_t *src_stride, bool accumulate)
{
    const int64_t *strides[] = {dst_stride, src_stride};
    dn_iter it;
    dn_iter_init(&it, ndim, shape, 2, strides);
    if (it.empty) return;
    do {
        float *d = dst + it.off[0];
        const float *s = src + it.off[1];
        if (accumulate)
            for (int64_t j = 0; j < it.inner; j++) d[j * it.step[0]] += s[j * it.step[1]];
        else
            for (int64_t j = 0; j < it.inner; j++) d[j * it.step[0]] = s[j * it.step[1]];
    } while (dn_iter_next(&it));
}

static void strided_add(int ndim, const int64_t *shape, float *dst, const int64_t *dst_stride, const float *src,
                        const int64_t *src_stride)
{
    strided_move(ndim, shape, dst, dst_stride, src, src_stride, true);
}

static void strided_copy(int ndim, const int64_t *shape, float *dst, const int64_t *dst_stride, const float *src,
                         const int64_t *src_stride)
{
    strided_move(ndim, shape, dst, dst_stride, src, src_stride, false);
}

/* ------------------------------------------------------------------ reshape */

static dn_status reshape_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0];
    double nd_d = node->attr[0];
    if (nd_d < 0 || nd_d > DN_MAX_DIMS || nd_d != floor(nd_d))
        return dn_error(DN_ERR_ARG, "ndim %g must be 0..%d", nd_d, DN_MAX_DIMS);
    int nd = (int)nd_d, infer = -1;
    int64_t shape[DN_MAX_DIMS], known = 1, n = dn_tensor_numel(x);
    for (int i = 0; i < nd; i++) {
        shape[i] = (int64_t)node->attr[1 + i];
        if (shape[i] == -1) {
            if (infer >= 0) return dn_error(DN_ERR_ARG, "only one dimension may be -1");
            infer = i;
        } else if (shape[i] < 0) {
            return dn_error(DN_ERR_ARG, "dimension %d is %lld", i, (long long)shape[i]);
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) shape[infer] = known ? n / known : 0;
    if (dn_shape_numel(nd, shape) != n)
        return dn_error(DN_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s", dn_tshape(x), (long long)n,
                        dn_shape_str(nd, shape));
    dn_tensor *y;
    if (dn_tensor_is_contiguous(x)) {
        y = dn_ctx_view(ctx, x);
        if (!y) return DN_ERR_NOMEM;
    } else {
        y = dn_ctx_tensor(ctx, x->ndim, x->shape);
        if (!y) return DN_ERR_NOMEM;
        dn_tensor_read(x, y->data);
    }
    y->ndim = nd;
    for (int i = 0; i < nd; i++) y->shape[i] = shape[i];
    dn_contiguous_strides(nd, shape, y->stride);
    node->out = y;
    return DN_OK;
}

/* Reshape, contiguous: elements keep their row-major order, so the gradient passes straight through. */
static dn_status passthrough_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0];
    if (!x->requires_grad) return DN_OK;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    const float *dy = node->out->grad;
    int64_t n = dn_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
    return DN_OK;
}

/* ------------------------------------------------------------------ permute */

static dn_status read_perm(const dn_node *node, int nd, int *perm)
{
    bool seen[DN_MAX_DIMS] = {false};
    for (int i = 0; i < nd; i++) {
        double v = node->attr[i];
        int p = (int)v;
        if (v != floor(v)) return dn_error(DN_ERR_ARG, "p%d = %g is not an integer", i, v);
        if (p < 0) p += nd;
        if (p < 0 || p >= nd || seen[p])
            return dn_error(DN_ERR_ARG, "p0..p%d is not a permutation of the %d axes of %s", nd - 1, nd,
                            dn_tshape(node->in[0]));
        seen[p] = true;
        perm[i] = p;
    }
    return DN_OK;
}

static dn_status permute_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0];
    int perm[DN_MAX_DIMS];
    dn_status s = read_perm(node, x->ndim, perm);
    if (s) return s;
    dn_tensor *y = dn_ctx_view(ctx, x);
    if (!y) return DN_ERR_NOMEM;
    for (int i = 0; i < x->ndim; i++) {
        y->shape[i] = x->shape[perm[i]];
        y->stride[i] = x->stride[perm[i]];
    }
    node->out = y;
    return DN_OK;
}

static dn_status permute_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0], *y = node->out;
    if (!x->requires_grad) return DN_OK;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    int perm[DN_MAX_DIMS];
    dn_status s = read_perm(node, x->ndim, perm);
    if (s) return s;
    int64_t gx[DN_MAX_DIMS], gxp[DN_MAX_DIMS], gy[DN_MAX_DIMS];
    dn_contiguous_strides(x->ndim, x->shape, gx);
    dn_contiguous_strides(y->ndim, y->shape, gy);
    for (int i = 0; i < x->ndim; i++) gxp[i] = gx[perm[i]];
    strided_add(y->ndim, y->shape, dx, gxp, y->grad, gy);
    return DN_OK;
}

/* ------------------------------------------------------------------ slice */

typedef struct slice_plan {
    int axis;
    int64_t start, count, step;
} slice_plan;

static dn_status plan_slice(const dn_node *node, slice_plan *p)
{
    const dn_tensor *x = node->in[0];
    int axis = dn_norm_axis((int)node->attr[0], x->ndim);
    if (axis < 0) return dn_error(DN_ERR_ARG, "axis %g is out of range for %s", node->attr[0], dn_tshape(x));
    int64_t dim = x->shape[axis], start = (int64_t)node->attr[1], end, step = (int64_t)node->attr[3];
    /* end defaults to "to the end" (the attribute default is a huge number) */
    end = node->attr[2] >= (double)INT64_MAX / 2 ? dim : (int64_t)node->attr[2];
    if (step < 1) return dn_error(DN_ERR_ARG, "step must be >= 1, got %lld", (long long)step);
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (start < 0) start = 0;
    if (start > dim) start = dim;
    if (end > dim) end = dim;
    if (end < start) end = start;
    p->axis = axis;
    p->start = start;
    p->step = step;
    p->count = (end - start + step - 1) / step;
    return DN_OK;
}

static dn_status slice_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0];
    slice_plan p = {0, 0, 0, 1};
    dn_status s = plan_slice(node, &p);
    if (s) return s;
    dn_tensor *y = dn_ctx_view(ctx, x);
    if (!y) return DN_ERR_NOMEM;
    if (p.count > 0) y->data = x->data + p.start * x->stride[p.axis];
    y->shape[p.axis] = p.count;
    y->stride[p.axis] = x->stride[p.axis] * p.step;
    node->out = y;
    return DN_OK;
}

static dn_status slice_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0], *y = node->out;
    if (!x->requires_grad) return DN_OK;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    slice_plan p = {0, 0, 0, 1};
    dn_status s = plan_slice(node, &p);
    if (s) return s;
    int64_t gx[DN_MAX_DIMS], gy[DN_MAX_DIMS];
    dn_contiguous_strides(x->ndim, x->shape, gx);
    dn_contiguous_strides(y->ndim, y->shape, gy);
    float *base = dx + p.start * gx[p.axis];
    gx[p.axis] *= p.step;
    if (p.count > 0) strided_add(y->ndim, y->shape, base, gx, y->grad, gy);
    return DN_OK;
}

/* ------------------------------------------------------------------ concat */

static dn_status concat_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x0 = node->in[0];
    int axis = dn_norm_axis((int)node->attr[0], x0->ndim);
    if (axis < 0) return dn_error(DN_ERR_ARG, "axis %g is out of range for %s", node->attr[0], dn_tshape(x0));
    int64_t shape[DN_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[axis] = 0;
    for (int k = 0; k < node->n_in; k++) {
        dn_tensor *x = node->in[k];
        bool ok = x->ndim == x0->ndim;
        for (int i = 0; ok && i < x0->ndim; i++) ok = i == axis || x->shape[i] == x0->shape[i];
        if (!ok)
            return dn_error(DN_ERR_SHAPE, "input %d %s does not match input 0 %s outside axis %d", k, dn_tshape(x),
                            dn_tshape(x0), axis);
        shape[axis] += x->shape[axis];
    }
    dn_tensor *y = dn_ctx_tensor(ctx, x0->ndim, shape);
    if (!y) return DN_ERR_NOMEM;
    int64_t at = 0;
    for (int k = 0; k < node->n_in; k++) {
        dn_tensor *x = node->in[k];
        strided_copy(x->ndim, x->shape, y->data + at * y->stride[axis], y->stride, x->data, x->stride);
        at += x->shape[axis];
    }
    node->out = y;
    return DN_OK;
}

static dn_status concat_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *y = node->out;
    int axis = dn_norm_axis((int)node->attr[0], y->ndim);
    int64_t at = 0;
    for (int k = 0; k < node->n_in; k++) {
        dn_tensor *x = node->in[k];
        if (x->requires_grad) {
            float *dx = dn_grad_buf(ctx, x);
            if (!dx) return DN_ERR_NOMEM;
            int64_t gx[DN_MAX_DIMS];
            dn_contiguous_strides(x->ndim, x->shape, gx);
            strided_add(x->ndim, x->shape, dx, gx, y->grad + at * y->stride[axis], y->stride);
        }
        at += x->shape[axis];
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ contiguous */

static dn_status contiguous_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0];
    dn_tensor *y = dn_ctx_tensor(ctx, x->ndim, x->shape);
    if (!y) return DN_ERR_NOMEM;
    dn_tensor_read(x, y->data);
    node->out = y;
    return DN_OK;
}

static const dn_case reshape_cases[] = {
    {1, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -2, 2}}, "ndim=2 d0=6 d1=-1"},
    {1, {{2, {3, 4}, DN_FILL_UNIFORM, -2, 2}}, "ndim=1 d0=12"},
};
static const dn_case permute_cases[] = {
    {1, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -2, 2}}, "p0=2 p1=0 p2=1"},
    {1, {{2, {3, 4}, DN_FILL_UNIFORM, -2, 2}}, "p0=1 p1=0"},
};
static const dn_case slice_cases[] = {
    {1, {{3, {2, 5, 3}, DN_FILL_UNIFORM, -2, 2}}, "axis=1 start=1 end=4 step=2"},
    {1, {{2, {6, 3}, DN_FILL_UNIFORM, -2, 2}}, "axis=0 start=-4 end=-1"},
};
static const dn_case concat_cases[] = {
    {2, {{2, {2, 3}, DN_FILL_UNIFORM, -2, 2}, {2, {2, 2}, DN_FILL_UNIFORM, -2, 2}}, "axis=1"},
    {3, {{2, {1, 3}, DN_FILL_UNIFORM, -2, 2}, {2, {2, 3}, DN_FILL_UNIFORM, -2, 2}, {2, {1, 3}, DN_FILL_UNIFORM, -2, 2}},
     "axis=0"},
};
static const dn_case contiguous_cases[] = {{1, {{2, {3, 4}, DN_FILL_UNIFORM, -2, 2}}, NULL}};

const dn_op dn_ops_shape[] = {
    {.name = "reshape", .arity = 1, .n_attrs = 7, .attr_names = {"ndim", "d0", "d1", "d2", "d3", "d4", "d5"},
     .attr_defaults = {1, -1, 1, 1, 1, 1, 1}, .forward = reshape_fwd, .backward = passthrough_bwd,
     .doc = "y = x with shape (d0..d{ndim-1}); one -1 is inferred; a view when x is contiguous; torch.reshape",
     .cases = reshape_cases, .n_cases = 2},
    {.name = "permute", .arity = 1, .n_attrs = 6, .attr_names = {"p0", "p1", "p2", "p3", "p4", "p5"},
     .attr_defaults = {0, 1, 2, 3, 4, 5}, .forward = permute_fwd, .backward = permute_bwd,
     .doc = "y = x with axes reordered: y axis i is x axis p_i (a view); torch.permute", .cases = permute_cases,
     .n_cases = 2},
    {.name = "slice", .arity = 1, .n_attrs = 4, .attr_names = {"axis", "start", "end", "step"},
     .attr_defaults = {0, 0, 9.2e18, 1}, .forward = slice_fwd, .backward = slice_bwd,
     .doc = "y = x[start:end:step] along axis (a view; negative start/end count from the end); torch slicing",
     .cases = slice_cases, .n_cases = 2},
    {.name = "concat", .arity = -1, .n_attrs = 1, .attr_names = {"axis"}, .attr_defaults = {0},
     .forward = concat_fwd, .backward = concat_bwd, .doc = "y = the inputs joined along axis; torch.cat",
     .cases = concat_cases, .n_cases = 2},
    {.name = "contiguous", .arity = 1, .forward = contiguous_fwd, .backward = passthrough_bwd,
     .doc = "y = a row-major copy of x; Tensor.contiguous", .cases = contiguous_cases, .n_cases = 1},
    {0},
};

dn_tensor *dn_reshape(dn_ctx *ctx, dn_tensor *x, int ndim, const int64_t *shape)
{
    double a[7] = {ndim, 1, 1, 1, 1, 1, 1};
    if (ndim < 0 || ndim > DN_MAX_DIMS) a[0] = -1; /* let the op report it */
    for (int i = 0; i < ndim && i < DN_MAX_DIMS; i++) a[1 + i] = (double)shape[i];
    return dn_apply(ctx, "reshape", 1, &x, a);
}

dn_tensor *dn_permute(dn_ctx *ctx, dn_tensor *x, const int *perm)
{
    double a[6] = {0, 1, 2, 3, 4, 5};
    for (int i = 0; x && i < x->ndim; i++) a[i] = perm[i];
    return dn_apply(ctx, "permute", 1, &x, a);
}

dn_tensor *dn_transpose(dn_ctx *ctx, dn_tensor *x, int axis0, int axis1)
{
    int perm[DN_MAX_DIMS] = {0, 1, 2, 3, 4, 5};
    if (x) {
        int a = dn_norm_axis(axis0, x->ndim), b = dn_norm_axis(axis1, x->ndim);
        if (a < 0 || b < 0) {
            dn_error(DN_ERR_ARG, "transpose: axes %d and %d out of range for %s", axis0, axis1, dn_tshape(x));
            if (ctx && !ctx->status) ctx->status = DN_ERR_ARG;
            return NULL;
        }
        perm[a] = b;
        perm[b] = a;
    }
    return dn_permute(ctx, x, perm);
}

dn_tensor *dn_slice(dn_ctx *ctx, dn_tensor *x, int axis, int64_t start, int64_t end, int64_t step)
{
    double a[] = {axis, (double)start, (double)end, (double)step};
    return dn_apply(ctx, "slice", 1, &x, a);
}

dn_tensor *dn_concat(dn_ctx *ctx, int n, dn_tensor *const *xs, int axis)
{
    double a[] = {axis};
    return dn_apply(ctx, "concat", n, xs, a);
}

dn_tensor *dn_contiguous(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "contiguous", 1, &x, NULL); }
