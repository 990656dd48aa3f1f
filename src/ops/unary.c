/* Unary maths: exp, log, sqrt, pow, abs, clamp, scale, add_scalar — and the pointwise helpers that
 * activations share. */
#include "internal.h"
#include "kernels/threads.h"

#include <math.h>

/* Large arrays are cut into parts for the kernels' thread pool (dn_part_range: whole cache lines).  Every element
 * is computed on its own, so the cut changes no result. */
#define POINTWISE_PAR_MIN 65536

typedef struct pointwise_job {
    dn_pointwise_fn f;        /* forward: out = f(x) ... */
    dn_pointwise_grad_fn df;  /* ... or backward: out += dy f'(x, y) */
    const float *x, *y, *dy;
    float *out;
    int64_t n;
    const double *attr;
} pointwise_job;

static void pointwise_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const pointwise_job *j = arg;
    int64_t b, e;
    dn_part_range(j->n, 16, part, parts, &b, &e);
    if (j->f)
        j->f(j->x + b, j->out + b, e - b, j->attr);
    else
        j->df(j->x + b, j->y + b, j->dy + b, j->out + b, e - b, j->attr);
}

static void pointwise_run(pointwise_job *j)
{
    const int parts = j->n >= POINTWISE_PAR_MIN ? dn_parallel_parts() : 1;
    if (parts <= 1) {
        pointwise_part(j, 0, 1, NULL);
        return;
    }
    dn_parallel_run(parts, pointwise_part, j);
}

dn_status dn_pointwise_forward(dn_ctx *ctx, dn_node *node, dn_pointwise_fn f)
{
    dn_tensor *x = node->in[0];
    const float *xd = dn_ctx_contig(ctx, x);
    dn_tensor *y = dn_ctx_tensor(ctx, x->ndim, x->shape);
    if (!xd || !y) return DN_ERR_NOMEM;
    pointwise_job j = {.f = f, .x = xd, .out = y->data, .n = dn_tensor_numel(x), .attr = node->attr};
    pointwise_run(&j);
    node->out = y;
    node->saved = (void *)xd; /* contiguous input, kept for backward */
    return DN_OK;
}

dn_status dn_pointwise_backward(dn_ctx *ctx, dn_node *node, dn_pointwise_grad_fn df)
{
    dn_tensor *x = node->in[0];
    if (!x->requires_grad) return DN_OK;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    pointwise_job j = {.df = df, .x = node->saved, .y = node->out->data, .dy = node->out->grad, .out = dx,
                       .n = dn_tensor_numel(x), .attr = node->attr};
    pointwise_run(&j);
    return DN_OK;
}

/* dy = dy where y > 0, else 0, in place: the ReLU's backward step for ops that fuse a ReLU into their output
 * (linear_relu and conv2d_relu).  y > 0 exactly where the pre-activation was > 0, so this equals relu's own
 * gradient.  Its own loop with one array written (the pointwise helpers' dx += ... would see dx and dy overlap
 * and give up vectorising). */
typedef struct relu_mask_job {
    float *dy;
    const float *y;
    int64_t n;
} relu_mask_job;

static void relu_mask_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const relu_mask_job *j = arg;
    int64_t b, e;
    dn_part_range(j->n, 16, part, parts, &b, &e);
    float *dy = j->dy;
    const float *y = j->y;
    for (int64_t i = b; i < e; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void dn_relu_mask_grad(float *dy, const float *y, int64_t n)
{
    relu_mask_job j = {dy, y, n};
    dn_parallel_run(n >= POINTWISE_PAR_MIN ? dn_parallel_parts() : 1, relu_mask_part, &j);
}

/* each op here checks nothing in its forward pass */
#define POINTWISE(name, fwd_expr, grad_expr) DN_POINTWISE(name, fwd_expr, grad_expr) DN_POINTWISE_FORWARD(name)

#define A0 ((float)attr[0])
#define A1 ((float)attr[1])

POINTWISE(exp, expf(v), g * out)
POINTWISE(log, logf(v), g / v)
POINTWISE(sqrt, sqrtf(v), g * 0.5f / out)
/* d/dx x^p = p x^(p-1); written as p * x^(p-1) so x = 0 with p >= 1 stays finite */
POINTWISE(pow, powf(v, A0), g * A0 * powf(v, A0 - 1.0f))
/* |x|' = sign(x), 0 at 0 as PyTorch */
POINTWISE(abs, fabsf(v), v > 0 ? g : (v < 0 ? -g : 0.0f))
/* clamp passes the gradient where lo <= x <= hi (PyTorch includes the bounds) */
POINTWISE(clamp, fminf(fmaxf(v, A0), A1), (v >= A0 && v <= A1) ? g : 0.0f)
POINTWISE(scale, A0 * v, A0 * g)
POINTWISE(add_scalar, v + A0, g)

#define SHAPE2x3 2, {2, 3}
#define SHAPE3x4 2, {3, 4}

static const dn_case exp_cases[] = {{1, {{SHAPE3x4, DN_FILL_UNIFORM, -3, 3}}, NULL}};
static const dn_case log_cases[] = {{1, {{SHAPE3x4, DN_FILL_UNIFORM, 0.2f, 4}}, NULL}};
static const dn_case sqrt_cases[] = {{1, {{SHAPE3x4, DN_FILL_UNIFORM, 0.2f, 4}}, NULL}};
static const dn_case pow_cases[] = {
    {1, {{SHAPE3x4, DN_FILL_UNIFORM, 0.2f, 2}}, "exponent=3"},
    {1, {{SHAPE3x4, DN_FILL_UNIFORM, 0.2f, 2}}, "exponent=-1.5"},
    {1, {{SHAPE2x3, DN_FILL_UNIFORM, 0.2f, 2}}, "exponent=0.5"},
};
static const dn_case abs_cases[] = {{1, {{SHAPE3x4, DN_FILL_UNIFORM, -2, 2}}, NULL}};
static const dn_case clamp_cases[] = {{1, {{SHAPE3x4, DN_FILL_UNIFORM, -2, 2}}, "min=-0.5 max=0.7"}};
static const dn_case scale_cases[] = {{1, {{SHAPE3x4, DN_FILL_UNIFORM, -2, 2}}, "factor=-1.7"}};
static const dn_case add_scalar_cases[] = {{1, {{SHAPE3x4, DN_FILL_UNIFORM, -2, 2}}, "value=0.3"}};

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

const dn_op dn_ops_unary[] = {
    {.name = "exp", .arity = 1, .forward = exp_fwd, .backward = exp_bwd, .doc = "y = e^x",
     .cases = exp_cases, .n_cases = N(exp_cases)},
    {.name = "log", .arity = 1, .forward = log_fwd, .backward = log_bwd, .doc = "y = ln x (natural log)",
     .cases = log_cases, .n_cases = N(log_cases)},
    {.name = "sqrt", .arity = 1, .forward = sqrt_fwd, .backward = sqrt_bwd, .doc = "y = sqrt(x)",
     .cases = sqrt_cases, .n_cases = N(sqrt_cases)},
    {.name = "pow", .arity = 1, .n_attrs = 1, .attr_names = {"exponent"}, .attr_defaults = {2},
     .forward = pow_fwd, .backward = pow_bwd, .doc = "y = x^p (p a number)", .cases = pow_cases,
     .n_cases = N(pow_cases)},
    {.name = "abs", .arity = 1, .forward = abs_fwd, .backward = abs_bwd, .doc = "y = |x|; dy/dx = sign(x), 0 at 0",
     .cases = abs_cases, .n_cases = N(abs_cases), .kinks = {0}, .n_kinks = 1},
    {.name = "clamp", .arity = 1, .n_attrs = 2, .attr_names = {"min", "max"}, .attr_defaults = {-INFINITY, INFINITY},
     .forward = clamp_fwd, .backward = clamp_bwd, .doc = "y = min(max(x, min), max)", .cases = clamp_cases,
     .n_cases = N(clamp_cases), .kinks = {-0.5f, 0.7f}, .n_kinks = 2},
    {.name = "scale", .arity = 1, .n_attrs = 1, .attr_names = {"factor"}, .attr_defaults = {1},
     .forward = scale_fwd, .backward = scale_bwd, .doc = "y = factor * x", .cases = scale_cases,
     .n_cases = N(scale_cases)},
    {.name = "add_scalar", .arity = 1, .n_attrs = 1, .attr_names = {"value"}, .attr_defaults = {0},
     .forward = add_scalar_fwd, .backward = add_scalar_bwd, .doc = "y = x + value", .cases = add_scalar_cases,
     .n_cases = N(add_scalar_cases)},
    {0},
};

dn_tensor *dn_exp(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "exp", 1, &x, NULL); }
dn_tensor *dn_log(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "log", 1, &x, NULL); }
dn_tensor *dn_sqrt(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "sqrt", 1, &x, NULL); }
dn_tensor *dn_abs(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "abs", 1, &x, NULL); }

dn_tensor *dn_pow(dn_ctx *ctx, dn_tensor *x, float exponent)
{
    double a[] = {exponent};
    return dn_apply(ctx, "pow", 1, &x, a);
}

dn_tensor *dn_clamp(dn_ctx *ctx, dn_tensor *x, float lo, float hi)
{
    double a[] = {lo, hi};
    return dn_apply(ctx, "clamp", 1, &x, a);
}

dn_tensor *dn_scale(dn_ctx *ctx, dn_tensor *x, float factor)
{
    double a[] = {factor};
    return dn_apply(ctx, "scale", 1, &x, a);
}

dn_tensor *dn_add_scalar(dn_ctx *ctx, dn_tensor *x, float value)
{
    double a[] = {value};
    return dn_apply(ctx, "add_scalar", 1, &x, a);
}
