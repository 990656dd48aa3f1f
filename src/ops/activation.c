/* Activations: every nonlinearity the seed names, each with its PyTorch equivalent.
 *
 * Most are pointwise and use the shared helpers of unary.c (y = f(x); dx += dy * f'(x)).  softmax and
 * log_softmax work along an axis; prelu and swish have a second, learnable input (alpha, beta).
 *
 * Conventions at kinks follow PyTorch, so that gradients there match its goldens:
 * relu'(0) = 0, leaky_relu'(0) = alpha, elu'(0) = alpha, hard_tanh and hard_sigmoid pass the gradient
 * only strictly inside their linear part. */
#include "internal.h"
#include "kernels/softmax.h"
#include "kernels/vmath.h"

#include <math.h>

#define A0 ((float)attr[0])
#define A1 ((float)attr[1])

/* ------------------------------------------------------------------ scalar helpers */

/* 1 / (1 + e^-x) in two branches, so that e^|x| is never formed: exact and finite for any float x. */
static inline float sigmoid1(float x)
{
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows, and keeps full precision for x << 0. */
static inline float softplus1(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

/* ------------------------------------------------------------------ pointwise activations */

#define POINTWISE DN_POINTWISE
#define PLAIN_FORWARD DN_POINTWISE_FORWARD

POINTWISE(identity, v, g)
PLAIN_FORWARD(identity)

/* sigmoid and tanh run their forward pass through the vectorised kernels (kernels/vmath.h: within 2 ulp
 * of libm, same two-branch sigmoid, tanh exactly +-1 for large |x|); their gradients come from the saved
 * output:  sigma' = sigma (1 - sigma),  tanh' = 1 - tanh^2. */
static void sigmoid_f(const float *x, float *y, int64_t n, const double *attr)
{
    (void)attr;
    dn_vsigmoid(x, y, n);
}

static void sigmoid_df(const float *x, const float *y, const float *dy, float *dx, int64_t n, const double *attr)
{
    (void)x;
    (void)attr;
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

static void tanh_f(const float *x, float *y, int64_t n, const double *attr)
{
    (void)attr;
    dn_vtanh(x, y, n);
}

static void tanh_df(const float *x, const float *y, const float *dy, float *dx, int64_t n, const double *attr)
{
    (void)x;
    (void)attr;
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

static dn_status sigmoid_bwd(dn_ctx *ctx, dn_node *node) { return dn_pointwise_backward(ctx, node, sigmoid_df); }
static dn_status tanh_bwd(dn_ctx *ctx, dn_node *node) { return dn_pointwise_backward(ctx, node, tanh_df); }
PLAIN_FORWARD(sigmoid)
PLAIN_FORWARD(tanh)

/* `v <= 0 ? 0 : v` lets a NaN through instead of hiding it as 0 */
POINTWISE(relu, v <= 0 ? 0.0f : v, v > 0 ? g : 0.0f)
PLAIN_FORWARD(relu)

POINTWISE(leaky_relu, v > 0 ? v : A0 * v, v > 0 ? g : A0 * g)
PLAIN_FORWARD(leaky_relu)

/* elu: x for x > 0, alpha (e^x - 1) below (expm1 keeps precision near 0); the slope below is alpha e^x */
POINTWISE(elu, v > 0 ? v : A0 * expm1f(v), v > 0 ? g : g * A0 * expf(v))
PLAIN_FORWARD(elu)

/* selu(x) = lambda * elu(x, alpha) with the self-normalising constants of Klambauer et al. */
#define SELU_LAMBDA 1.0507009873554805f
#define SELU_ALPHA 1.6732632423543772f
POINTWISE(selu, SELU_LAMBDA * (v > 0 ? v : SELU_ALPHA * expm1f(v)),
          g * SELU_LAMBDA * (v > 0 ? 1.0f : SELU_ALPHA * expf(v)))
PLAIN_FORWARD(selu)

/* mish(x) = x tanh(softplus(x));
 * mish'(x) = tanh(sp) + x sigma(x) (1 - tanh(sp)^2), since softplus'(x) = sigma(x) */
static inline float mish_grad(float x)
{
    float t = tanhf(softplus1(x));
    return t + x * sigmoid1(x) * (1.0f - t * t);
}
POINTWISE(mish, v * tanhf(softplus1(v)), g * mish_grad(v))
PLAIN_FORWARD(mish)

/* gelu exact:  0.5 x (1 + erf(x / sqrt 2)) = x Phi(x);  gelu'(x) = Phi(x) + x phi(x).
 * gelu tanh:   0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
 *              gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
#define GELU_K 0.7978845608028654f   /* sqrt(2/pi) */
#define GELU_C 0.044715f
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f
static inline float gelu1(float x, int approx)
{
    if (approx) return 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x)));
    return 0.5f * x * (1.0f + erff(x * INV_SQRT2));
}
static inline float gelu_grad(float x, int approx)
{
    if (approx) {
        float t = tanhf(GELU_K * (x + GELU_C * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
    }
    return 0.5f * (1.0f + erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
}
POINTWISE(gelu, gelu1(v, attr[0] != 0), g * gelu_grad(v, attr[0] != 0))

/* softplus(x) = log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (as PyTorch: there the
 * two differ by less than e^-threshold).  Its slope is sigma(beta x). */
POINTWISE(softplus, A0 * v > A1 ? v : softplus1(A0 * v) / A0, A0 * v > A1 ? g : g * sigmoid1(A0 * v))

/* hard_sigmoid(x) = clamp(slope x + offset, 0, 1); the slope passes only strictly inside (0, 1), as
 * PyTorch's hardsigmoid (whose gradient is 0 at x = +-3 exactly). */
static inline float hard_sigmoid_grad(float x, float slope, float offset)
{
    float z = slope * x + offset;
    return (z > 0.0f && z < 1.0f) ? slope : 0.0f;
}
POINTWISE(hard_sigmoid, fminf(fmaxf(A0 * v + A1, 0.0f), 1.0f), g * hard_sigmoid_grad(v, A0, A1))

/* hard_tanh(x) = clamp(x, min, max); gradient 1 strictly inside (min, max), as torch's hardtanh. */
POINTWISE(hard_tanh, fminf(fmaxf(v, A0), A1), (v > A0 && v < A1) ? g : 0.0f)

static dn_status check_finite_attrs(const dn_node *node)
{
    for (int i = 0; i < node->op->n_attrs; i++)
        if (!isfinite(node->attr[i]))
            return dn_error(DN_ERR_ARG, "attribute %s must be finite, got %g", node->op->attr_names[i], node->attr[i]);
    return DN_OK;
}

static dn_status gelu_fwd(dn_ctx *ctx, dn_node *node)
{
    double a = node->attr[0];
    if (a != 0 && a != 1) return dn_error(DN_ERR_ARG, "approximate must be 0 (erf) or 1 (tanh), got %g", a);
    return dn_pointwise_forward(ctx, node, gelu_f);
}

static dn_status softplus_fwd(dn_ctx *ctx, dn_node *node)
{
    if (!(node->attr[0] > 0) || !isfinite(node->attr[0]))
        return dn_error(DN_ERR_ARG, "beta must be a positive number, got %g", node->attr[0]);
    if (isnan(node->attr[1])) return dn_error(DN_ERR_ARG, "threshold is NaN");
    return dn_pointwise_forward(ctx, node, softplus_f);
}

static dn_status hard_sigmoid_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_status s = check_finite_attrs(node);
    return s ? s : dn_pointwise_forward(ctx, node, hard_sigmoid_f);
}

static dn_status hard_tanh_fwd(dn_ctx *ctx, dn_node *node)
{
    if (isnan(node->attr[0]) || isnan(node->attr[1]) || node->attr[0] > node->attr[1])
        return dn_error(DN_ERR_ARG, "min (%g) must not exceed max (%g)", node->attr[0], node->attr[1]);
    return dn_pointwise_forward(ctx, node, hard_tanh_f);
}

/* ------------------------------------------------------------------ softmax and log_softmax */

/* Views x as [outer, n, inner] around `axis`: element (o, k, i) is at o*n*inner + k*inner + i. */
static dn_status split_axis(const dn_node *node, int64_t *outer, int64_t *n, int64_t *inner)
{
    const dn_tensor *x = node->in[0];
    double a = node->attr[0];
    int ndim = x->ndim ? x->ndim : 1; /* a 0-d tensor acts as [1] */
    int axis = (a == floor(a) && fabs(a) <= DN_MAX_DIMS) ? dn_norm_axis((int)a, ndim) : -1;
    if (axis < 0) return dn_error(DN_ERR_ARG, "axis %g is out of range for a tensor of shape %s", a, dn_tshape(x));
    *outer = *n = *inner = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (i < axis) *outer *= x->shape[i];
        else if (i == axis) *n = x->shape[i];
        else *inner *= x->shape[i];
    }
    return DN_OK;
}

/* Both subtract the maximum first, so exp never overflows:
 *   softmax_k     = e^(x_k - m) / sum_j e^(x_j - m)
 *   log_softmax_k = (x_k - m) - log(sum_j e^(x_j - m))
 * The kernel (kernels/softmax.h) exponentiates each element once, in vectors, on all the kernel threads. */
static dn_status softmax_forward(dn_ctx *ctx, dn_node *node, bool log_form)
{
    int64_t outer = 0, n = 0, inner = 0;
    dn_status s = split_axis(node, &outer, &n, &inner);
    if (s) return s;
    dn_tensor *x = node->in[0];
    const float *xd = dn_ctx_contig(ctx, x);
    dn_tensor *y = dn_ctx_tensor(ctx, x->ndim, x->shape);
    if (!xd || !y) return DN_ERR_NOMEM;
    dn_softmax_forward(xd, y->data, outer, n, inner, log_form);
    node->out = y;
    return DN_OK;
}

/* softmax:     dx_k = y_k (dy_k - sum_j dy_j y_j)
 * log_softmax: dx_k = dy_k - e^(y_k) sum_j dy_j      (e^(y_k) is the softmax) */
static dn_status softmax_backward(dn_ctx *ctx, dn_node *node, bool log_form)
{
    dn_tensor *x = node->in[0];
    if (!x->requires_grad) return DN_OK;
    int64_t outer = 0, n = 0, inner = 0;
    dn_status s = split_axis(node, &outer, &n, &inner);
    if (s) return s;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    dn_softmax_backward(node->out->data, node->out->grad, dx, outer, n, inner, log_form);
    return DN_OK;
}

static dn_status softmax_fwd(dn_ctx *c, dn_node *n) { return softmax_forward(c, n, false); }
static dn_status softmax_bwd(dn_ctx *c, dn_node *n) { return softmax_backward(c, n, false); }
static dn_status log_softmax_fwd(dn_ctx *c, dn_node *n) { return softmax_forward(c, n, true); }
static dn_status log_softmax_bwd(dn_ctx *c, dn_node *n) { return softmax_backward(c, n, true); }

/* ------------------------------------------------------------------ prelu */

/* What prelu and swish keep for backward: contiguous copies (or the data itself) of both inputs. */
typedef struct two_inputs {
    const float *x, *w;
} two_inputs;

static dn_status save_two(dn_ctx *ctx, dn_node *node, const float *x, const float *w)
{
    two_inputs *sv = dn_ctx_alloc(ctx, sizeof *sv);
    if (!sv) return DN_ERR_NOMEM;
    sv->x = x;
    sv->w = w;
    node->saved = sv;
    return DN_OK;
}

/* Elements of x that share one alpha: 1 for a shared alpha (all of x uses alpha[0]), else the size of the
 * axes after the channel axis 1.  *channels gets the number of alphas. */
static dn_status prelu_layout(const dn_tensor *x, const dn_tensor *alpha, int64_t *channels, int64_t *inner)
{
    int64_t na = dn_tensor_numel(alpha);
    *inner = 1;
    *channels = 1;
    if (na == 1) return DN_OK;
    if (x->ndim < 2 || na != x->shape[1])
        return dn_error(DN_ERR_SHAPE, "alpha %s must have 1 element or one per channel (axis 1) of x %s", dn_tshape(alpha),
                        dn_tshape(x));
    *channels = na;
    for (int i = 2; i < x->ndim; i++) *inner *= x->shape[i];
    return DN_OK;
}

/* prelu(x) = x for x > 0, alpha_c x otherwise (c the channel of x) */
static dn_status prelu_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0], *alpha = node->in[1];
    int64_t channels, inner;
    dn_status s = prelu_layout(x, alpha, &channels, &inner);
    if (s) return s;
    const float *xd = dn_ctx_contig(ctx, x), *ad = dn_ctx_contig(ctx, alpha);
    dn_tensor *y = dn_ctx_tensor(ctx, x->ndim, x->shape);
    if (!xd || !ad || !y) return DN_ERR_NOMEM;
    int64_t n = dn_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        float a = ad[(i / inner) % channels];
        y->data[i] = xd[i] > 0 ? xd[i] : a * xd[i];
    }
    node->out = y;
    return save_two(ctx, node, xd, ad);
}

/* dx = dy for x > 0, alpha_c dy otherwise;  dalpha_c = sum over x <= 0 of x dy */
static dn_status prelu_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0], *alpha = node->in[1];
    const two_inputs *sv = node->saved;
    const float *dy = node->out->grad;
    int64_t channels, inner;
    dn_status s = prelu_layout(x, alpha, &channels, &inner);
    if (s) return s;
    int64_t n = dn_tensor_numel(x);
    if (x->requires_grad) {
        float *dx = dn_grad_buf(ctx, x);
        if (!dx) return DN_ERR_NOMEM;
        for (int64_t i = 0; i < n; i++) dx[i] += sv->x[i] > 0 ? dy[i] : sv->w[(i / inner) % channels] * dy[i];
    }
    if (alpha->requires_grad) {
        float *da = dn_grad_buf(ctx, alpha);
        double *acc = dn_ctx_calloc(ctx, (size_t)channels * sizeof(double));
        if (!da || !acc) return DN_ERR_NOMEM;
        for (int64_t i = 0; i < n; i++)
            if (sv->x[i] <= 0) acc[(i / inner) % channels] += (double)sv->x[i] * dy[i];
        for (int64_t c = 0; c < channels; c++) da[c] += (float)acc[c];
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ swish */

/* swish(x) = x sigma(beta x).  With s = sigma(beta x):
 *   dy/dx    = s + beta x s (1 - s)
 *   dy/dbeta = x^2 s (1 - s) */
static dn_status swish_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0], *beta = node->in[1];
    if (dn_tensor_numel(beta) != 1)
        return dn_error(DN_ERR_SHAPE, "beta must have 1 element, got %s (x is %s)", dn_tshape(beta), dn_tshape(x));
    const float *xd = dn_ctx_contig(ctx, x), *bd = dn_ctx_contig(ctx, beta);
    dn_tensor *y = dn_ctx_tensor(ctx, x->ndim, x->shape);
    if (!xd || !bd || !y) return DN_ERR_NOMEM;
    float b = bd[0];
    int64_t n = dn_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) y->data[i] = xd[i] * sigmoid1(b * xd[i]);
    node->out = y;
    return save_two(ctx, node, xd, bd);
}

static dn_status swish_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0], *beta = node->in[1];
    const two_inputs *sv = node->saved;
    const float *dy = node->out->grad;
    float b = sv->w[0];
    int64_t n = dn_tensor_numel(x);
    float *dx = x->requires_grad ? dn_grad_buf(ctx, x) : NULL;
    float *db = beta->requires_grad ? dn_grad_buf(ctx, beta) : NULL;
    if ((x->requires_grad && !dx) || (beta->requires_grad && !db)) return DN_ERR_NOMEM;
    double dbeta = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = sv->x[i], sg = sigmoid1(b * v), ds = sg * (1.0f - sg);
        if (dx) dx[i] += dy[i] * (sg + b * v * ds);
        dbeta += (double)dy[i] * v * v * ds;
    }
    if (db) db[0] += (float)dbeta;
    return DN_OK;
}

/* ------------------------------------------------------------------ gradient-check cases */

#define S34 2, {3, 4}
#define S234 3, {2, 3, 4}

static const dn_case wide_cases[] = {{1, {{S34, DN_FILL_UNIFORM, -3, 3}}, NULL}};
/* values up to +-8 exercise both branches of the stable sigmoid and the saturated tails of tanh */
static const dn_case saturating_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -3, 3}}, NULL},
    {1, {{2, {2, 5}, DN_FILL_UNIFORM, -8, 8}}, NULL},
};
static const dn_case relu_cases[] = {{1, {{S234, DN_FILL_UNIFORM, -2, 2}}, NULL}};
static const dn_case leaky_relu_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -2, 2}}, NULL},
    {1, {{S234, DN_FILL_UNIFORM, -2, 2}}, "alpha=0.2"},
};
static const dn_case elu_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -3, 2}}, NULL},
    {1, {{S34, DN_FILL_UNIFORM, -3, 2}}, "alpha=0.5"},
};
static const dn_case softmax_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -3, 3}}, NULL},
    {1, {{S234, DN_FILL_UNIFORM, -3, 3}}, "axis=1"},
    {1, {{S234, DN_FILL_UNIFORM, -3, 3}}, "axis=0"},
    {1, {{S234, DN_FILL_UNIFORM, -3, 3}}, "axis=-2"},
    {1, {{1, {5}, DN_FILL_UNIFORM, -3, 3}}, "axis=0"},
};
/* alpha kept well above 0; the x kink at 0 is listed */
static const dn_case prelu_cases[] = {
    {2, {{S34, DN_FILL_UNIFORM, -2, 2}, {1, {1}, DN_FILL_UNIFORM, 0.1f, 0.5f}}, NULL},
    {2, {{S234, DN_FILL_UNIFORM, -2, 2}, {1, {3}, DN_FILL_UNIFORM, 0.1f, 0.5f}}, NULL},
    {2, {{2, {4, 3}, DN_FILL_UNIFORM, -2, 2}, {1, {3}, DN_FILL_UNIFORM, 0.1f, 0.5f}}, NULL},
};
static const dn_case swish_cases[] = {
    {2, {{S34, DN_FILL_UNIFORM, -3, 3}, {0, {0}, DN_FILL_UNIFORM, 0.5f, 2}}, NULL},
    {2, {{S234, DN_FILL_UNIFORM, -3, 3}, {1, {1}, DN_FILL_UNIFORM, -1, 1}}, NULL},
};
static const dn_case gelu_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -4, 4}}, NULL},
    {1, {{S34, DN_FILL_UNIFORM, -4, 4}}, "approximate=1"},
};
/* The switch to y = x at beta x = threshold is a jump of up to log(1 + e^-threshold) / beta, so each case
 * keeps its inputs on one side of it: the first three below it, the last above it. */
static const dn_case softplus_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -4, 4}}, NULL},
    {1, {{S34, DN_FILL_UNIFORM, -3, 3}}, "beta=2"},
    {1, {{S34, DN_FILL_UNIFORM, -3, 1.5f}}, "beta=0.5 threshold=1"},
    {1, {{S34, DN_FILL_UNIFORM, 2.5f, 4}}, "beta=0.5 threshold=1"},
};
/* kinks at -1, 1 (slope 0.5, the seed's form) and -3, 3 (slope 1/6, PyTorch's form) */
static const dn_case hard_sigmoid_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -2, 2}}, NULL},
    {1, {{S234, DN_FILL_UNIFORM, -5, 5}}, "slope=0.16666666666666667 offset=0.5"},
};
/* kinks at -1, 1 (default) and -0.5, 2 */
static const dn_case hard_tanh_cases[] = {
    {1, {{S34, DN_FILL_UNIFORM, -2, 2}}, NULL},
    {1, {{S234, DN_FILL_UNIFORM, -1.5f, 3}}, "min=-0.5 max=2"},
};

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))
#define CASES(a) .cases = a, .n_cases = N(a)

const dn_op dn_ops_activation[] = {
    {.name = "identity", .flags = DN_OPF_ACTIVATION, .arity = 1, .forward = identity_fwd, .backward = identity_bwd,
     .doc = "y = x (torch.nn.Identity)", CASES(relu_cases)},
    {.name = "sigmoid", .flags = DN_OPF_ACTIVATION, .arity = 1, .forward = sigmoid_fwd, .backward = sigmoid_bwd,
     .doc = "y = 1 / (1 + e^-x) (torch.sigmoid)", CASES(saturating_cases)},
    {.name = "tanh", .flags = DN_OPF_ACTIVATION, .arity = 1, .forward = tanh_fwd, .backward = tanh_bwd,
     .doc = "y = tanh(x) (torch.tanh)", CASES(saturating_cases)},
    {.name = "relu", .flags = DN_OPF_ACTIVATION, .arity = 1, .forward = relu_fwd, .backward = relu_bwd,
     .doc = "y = max(0, x); dy/dx = 0 at 0 (torch.nn.functional.relu)", CASES(relu_cases), .kinks = {0}, .n_kinks = 1},
    {.name = "leaky_relu", .flags = DN_OPF_ACTIVATION,
     .arity = 1, .n_attrs = 1, .attr_names = {"alpha"}, .attr_defaults = {0.01},
     .forward = leaky_relu_fwd, .backward = leaky_relu_bwd,
     .doc = "y = x for x > 0, alpha x otherwise (torch.nn.functional.leaky_relu)", CASES(leaky_relu_cases),
     .kinks = {0}, .n_kinks = 1},
    {.name = "softmax", .flags = DN_OPF_ACTIVATION,
     .arity = 1, .n_attrs = 1, .attr_names = {"axis"}, .attr_defaults = {-1},
     .forward = softmax_fwd, .backward = softmax_bwd,
     .doc = "y_k = e^x_k / sum_j e^x_j along axis (torch.softmax)", CASES(softmax_cases)},
    {.name = "log_softmax", .flags = DN_OPF_ACTIVATION,
     .arity = 1, .n_attrs = 1, .attr_names = {"axis"}, .attr_defaults = {-1},
     .forward = log_softmax_fwd, .backward = log_softmax_bwd,
     .doc = "y_k = x_k - log sum_j e^x_j along axis (torch.log_softmax)", CASES(softmax_cases)},
    {.name = "prelu", .flags = DN_OPF_ACTIVATION, .param = {"alpha", DN_OP_PARAM_CHANNELS, 0.25},
     .arity = 2, .forward = prelu_fwd, .backward = prelu_bwd,
     .doc = "y = x for x > 0, alpha_c x otherwise; alpha shared or one per channel (torch.nn.functional.prelu)",
     CASES(prelu_cases), .kinks = {0}, .n_kinks = 1},
    {.name = "elu", .flags = DN_OPF_ACTIVATION, .arity = 1, .n_attrs = 1, .attr_names = {"alpha"}, .attr_defaults = {1},
     .forward = elu_fwd, .backward = elu_bwd,
     .doc = "y = x for x > 0, alpha (e^x - 1) otherwise (torch.nn.functional.elu)", CASES(elu_cases),
     .kinks = {0}, .n_kinks = 1},
    {.name = "swish", .flags = DN_OPF_ACTIVATION, .param = {"beta", DN_OP_PARAM_ONE, 1.0},
     .arity = 2, .forward = swish_fwd, .backward = swish_bwd,
     .doc = "y = x sigmoid(beta x), beta learnable (torch.nn.functional.silu when beta = 1)", CASES(swish_cases)},
    {.name = "mish", .flags = DN_OPF_ACTIVATION, .arity = 1, .forward = mish_fwd, .backward = mish_bwd,
     .doc = "y = x tanh(softplus(x)) (torch.nn.functional.mish)", CASES(wide_cases)},
    {.name = "gelu", .flags = DN_OPF_ACTIVATION,
     .arity = 1, .n_attrs = 1, .attr_names = {"approximate"}, .attr_defaults = {0},
     .forward = gelu_fwd, .backward = gelu_bwd,
     .doc = "y = 0.5 x (1 + erf(x / sqrt 2)); approximate=1: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) "
            "(torch.nn.functional.gelu)",
     CASES(gelu_cases)},
    {.name = "softplus", .flags = DN_OPF_ACTIVATION,
     .arity = 1, .n_attrs = 2, .attr_names = {"beta", "threshold"}, .attr_defaults = {1, 20},
     .forward = softplus_fwd, .backward = softplus_bwd,
     .doc = "y = log(1 + e^(beta x)) / beta, y = x where beta x > threshold (torch.nn.functional.softplus)",
     CASES(softplus_cases)},
    {.name = "selu", .flags = DN_OPF_ACTIVATION, .arity = 1, .forward = selu_fwd, .backward = selu_bwd,
     .doc = "y = lambda (x for x > 0, alpha (e^x - 1) otherwise), lambda 1.0507, alpha 1.6733 "
            "(torch.nn.functional.selu)",
     CASES(wide_cases), .kinks = {0}, .n_kinks = 1},
    {.name = "hard_sigmoid", .flags = DN_OPF_ACTIVATION,
     .arity = 1, .n_attrs = 2, .attr_names = {"slope", "offset"}, .attr_defaults = {0.5, 0.5},
     .forward = hard_sigmoid_fwd, .backward = hard_sigmoid_bwd,
     .doc = "y = max(0, min(1, slope x + offset)) (torch.nn.functional.hardsigmoid is slope 1/6)",
     CASES(hard_sigmoid_cases), .kinks = {-1, 1, -3, 3}, .n_kinks = 4},
    {.name = "hard_tanh", .flags = DN_OPF_ACTIVATION,
     .arity = 1, .n_attrs = 2, .attr_names = {"min", "max"}, .attr_defaults = {-1, 1},
     .forward = hard_tanh_fwd, .backward = hard_tanh_bwd,
     .doc = "y = min(max(x, min), max) (torch.nn.functional.hardtanh)", CASES(hard_tanh_cases),
     .kinks = {-1, 1, -0.5f, 2}, .n_kinks = 4},
    {0},
};

/* ------------------------------------------------------------------ public wrappers */

static dn_tensor *apply1(dn_ctx *ctx, const char *name, dn_tensor *x, const double *attrs)
{
    return dn_apply(ctx, name, 1, &x, attrs);
}

dn_tensor *dn_identity(dn_ctx *ctx, dn_tensor *x) { return apply1(ctx, "identity", x, NULL); }
dn_tensor *dn_sigmoid(dn_ctx *ctx, dn_tensor *x) { return apply1(ctx, "sigmoid", x, NULL); }
dn_tensor *dn_tanh(dn_ctx *ctx, dn_tensor *x) { return apply1(ctx, "tanh", x, NULL); }
dn_tensor *dn_relu(dn_ctx *ctx, dn_tensor *x) { return apply1(ctx, "relu", x, NULL); }
dn_tensor *dn_mish(dn_ctx *ctx, dn_tensor *x) { return apply1(ctx, "mish", x, NULL); }
dn_tensor *dn_selu(dn_ctx *ctx, dn_tensor *x) { return apply1(ctx, "selu", x, NULL); }

dn_tensor *dn_leaky_relu(dn_ctx *ctx, dn_tensor *x, float alpha)
{
    double a[] = {alpha};
    return apply1(ctx, "leaky_relu", x, a);
}

dn_tensor *dn_softmax(dn_ctx *ctx, dn_tensor *x, int axis)
{
    double a[] = {axis};
    return apply1(ctx, "softmax", x, a);
}

dn_tensor *dn_log_softmax(dn_ctx *ctx, dn_tensor *x, int axis)
{
    double a[] = {axis};
    return apply1(ctx, "log_softmax", x, a);
}

dn_tensor *dn_prelu(dn_ctx *ctx, dn_tensor *x, dn_tensor *alpha)
{
    dn_tensor *in[] = {x, alpha};
    return dn_apply(ctx, "prelu", 2, in, NULL);
}

dn_tensor *dn_elu(dn_ctx *ctx, dn_tensor *x, float alpha)
{
    double a[] = {alpha};
    return apply1(ctx, "elu", x, a);
}

dn_tensor *dn_swish(dn_ctx *ctx, dn_tensor *x, dn_tensor *beta)
{
    dn_tensor *in[] = {x, beta};
    return dn_apply(ctx, "swish", 2, in, NULL);
}

dn_tensor *dn_gelu(dn_ctx *ctx, dn_tensor *x, int approximate)
{
    double a[] = {approximate};
    return apply1(ctx, "gelu", x, a);
}

dn_tensor *dn_softplus(dn_ctx *ctx, dn_tensor *x, float beta, float threshold)
{
    double a[] = {beta, threshold};
    return apply1(ctx, "softplus", x, a);
}

dn_tensor *dn_hard_sigmoid(dn_ctx *ctx, dn_tensor *x, float slope, float offset)
{
    double a[] = {slope, offset};
    return apply1(ctx, "hard_sigmoid", x, a);
}

dn_tensor *dn_hard_tanh(dn_ctx *ctx, dn_tensor *x, float lo, float hi)
{
    double a[] = {lo, hi};
    return apply1(ctx, "hard_tanh", x, a);
}
