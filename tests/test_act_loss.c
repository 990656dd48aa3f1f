/* Activations and losses: values worked out by hand (or with PyTorch, quoted to 8 digits) at a few points,
 * the numerically hard ends (|x| = 1e4), gradients at kinks, and every error path. */
#include "test.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ helpers */

static dn_tensor *tensor(dn_ctx *ctx, int ndim, const int64_t *shape, const float *data, bool grad)
{
    dn_tensor *t = NULL;
    if (dn_tensor_from(ctx, ndim, shape, data, &t) != DN_OK) return NULL;
    if (grad && dn_tensor_set_requires_grad(t, true) != DN_OK) return NULL;
    return t;
}

static dn_tensor *vec_(dn_ctx *ctx, const float *data, int64_t n, bool grad) { return tensor(ctx, 1, &n, data, grad); }
static dn_tensor *mat_(dn_ctx *ctx, int64_t r, int64_t c, const float *data, bool grad)
{
    int64_t shape[] = {r, c};
    return tensor(ctx, 2, shape, data, grad);
}

#define FLOATS(...) ((const float[]){__VA_ARGS__})
#define COUNT(...) ((int64_t)(sizeof(FLOATS(__VA_ARGS__)) / sizeof(float)))
/* a 1-D tensor from literal values: VEC(ctx, 1, 2, 3); GVEC also requires a gradient */
#define VEC(ctx, ...) vec_(ctx, FLOATS(__VA_ARGS__), COUNT(__VA_ARGS__), false)
#define GVEC(ctx, ...) vec_(ctx, FLOATS(__VA_ARGS__), COUNT(__VA_ARGS__), true)
#define MAT(ctx, r, c, ...) mat_(ctx, r, c, FLOATS(__VA_ARGS__), false)
#define GMAT(ctx, r, c, ...) mat_(ctx, r, c, FLOATS(__VA_ARGS__), true)


/* Backward from the sum of all elements of out (seed of ones). */
static dn_status backward_sum(dn_ctx *ctx, dn_tensor *out)
{
    if (!out) return dn_ctx_status(ctx);
    int64_t n = dn_tensor_numel(out);
    float *ones = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!ones) return DN_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) ones[i] = 1;
    dn_status s = dn_backward_with(ctx, out, ones);
    free(ones);
    return s;
}


#define TOL 1e-6

/* ------------------------------------------------------------------ activations */

static void test_sigmoid_tanh_values(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = GVEC(ctx, 0, 2, 1e4f, -1e4f, -2);
    dn_tensor *s = dn_sigmoid(ctx, x);
    CHECK_AT(s, 0, 0.5, TOL);
    CHECK_AT(s, 1, 0.88079707797788231, TOL);
    CHECK_AT(s, 2, 1.0, 0);  /* exact, no overflow */
    CHECK_AT(s, 3, 0.0, 0);
    CHECK_AT(s, 4, 0.11920292202211769, TOL);
    CHECK_OK(backward_sum(ctx, s));
    CHECK_GRAD(x, 0, 0.25, TOL);
    CHECK_GRAD(x, 2, 0.0, 0);
    CHECK_GRAD(x, 3, 0.0, 0);
    dn_ctx_reset(ctx);

    x = GVEC(ctx, 0, 0.5f, 1e4f, -1e4f);
    dn_tensor *t = dn_tanh(ctx, x);
    CHECK_AT(t, 0, 0.0, 0);
    CHECK_AT(t, 1, 0.46211715726000974, TOL);
    CHECK_AT(t, 2, 1.0, 0);
    CHECK_AT(t, 3, -1.0, 0);
    CHECK_OK(backward_sum(ctx, t));
    CHECK_GRAD(x, 0, 1.0, TOL);
    CHECK_GRAD(x, 1, 1 - 0.46211715726000974 * 0.46211715726000974, TOL);
    CHECK_GRAD(x, 2, 0.0, 0);
    dn_ctx_free(ctx);
}

static void test_relu_family_values(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = GVEC(ctx, -1, 0, 2);
    dn_tensor *y = dn_relu(ctx, x);
    CHECK_AT(y, 0, 0, 0);
    CHECK_AT(y, 1, 0, 0);
    CHECK_AT(y, 2, 2, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 0, 0);
    CHECK_GRAD(x, 1, 0, 0); /* relu'(0) = 0, as PyTorch */
    CHECK_GRAD(x, 2, 1, 0);
    dn_ctx_reset(ctx);

    x = GVEC(ctx, -2, 0, 3);
    y = dn_leaky_relu(ctx, x, 0.1f);
    CHECK_AT(y, 0, -0.2, TOL);
    CHECK_AT(y, 2, 3, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 0.1, TOL);
    CHECK_GRAD(x, 1, 0.1, TOL); /* PyTorch's leaky_relu takes the alpha side at 0 */
    CHECK_GRAD(x, 2, 1, 0);
    dn_ctx_reset(ctx);

    x = GVEC(ctx, -1, 0, 2);
    y = dn_elu(ctx, x, 1.0f);
    CHECK_AT(y, 0, -0.63212055882855767, TOL);
    CHECK_AT(y, 2, 2, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 0.36787944117144233, TOL);
    CHECK_GRAD(x, 2, 1, 0);
    dn_ctx_reset(ctx);

    x = GVEC(ctx, 1, -1, 0);
    y = dn_selu(ctx, x);
    CHECK_AT(y, 0, 1.0507009873554805, TOL);
    CHECK_AT(y, 1, -1.1113307378125628, TOL);
    CHECK_AT(y, 2, 0, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 1.0507009873554805, TOL);
    CHECK_GRAD(x, 2, 1.7580993408473766, 1e-5); /* lambda * alpha at 0, as PyTorch */
    dn_ctx_reset(ctx);

    x = GVEC(ctx, 1.5f, -4);
    y = dn_identity(ctx, x);
    CHECK_AT(y, 0, 1.5, 0);
    CHECK_AT(y, 1, -4, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 1, 1, 0);
    dn_ctx_free(ctx);
}

static void test_softmax_values(void)
{
    dn_ctx *ctx = dn_ctx_new();
    /* the second row is the first plus 1000: subtracting the max keeps it finite and equal */
    dn_tensor *x = GMAT(ctx, 2, 3, 1, 2, 3, 1001, 1002, 1003);
    dn_tensor *y = dn_softmax(ctx, x, -1);
    const double sm[] = {0.090030573170380462, 0.24472847105479767, 0.66524095577481771};
    for (int i = 0; i < 6; i++) CHECK_AT(y, i, sm[i % 3], TOL);
    dn_tensor *l = dn_log_softmax(ctx, x, 1);
    const double lsm[] = {-2.4076059644443806, -1.4076059644443806, -0.40760596444438063};
    for (int i = 0; i < 6; i++) CHECK_AT(l, i, lsm[i % 3], 1e-5);
    dn_ctx_reset(ctx);

    /* along axis 0 of [2, 2]: columns */
    x = MAT(ctx, 2, 2, 0, 1, 0, 3);
    y = dn_softmax(ctx, x, 0);
    CHECK_AT(y, 0, 0.5, TOL);
    CHECK_AT(y, 2, 0.5, TOL);
    CHECK_AT(y, 1, 0.11920292202211769, TOL);
    CHECK_AT(y, 3, 0.88079707797788231, TOL);
    dn_ctx_reset(ctx);

    /* the gradient of sum(softmax) is 0; of log_softmax[0], 1 - softmax[0] and -softmax[k] */
    x = GVEC(ctx, 1, 2, 3);
    y = dn_softmax(ctx, x, 0);
    CHECK_OK(backward_sum(ctx, y));
    for (int i = 0; i < 3; i++) CHECK_GRAD(x, i, 0, 1e-6);
    dn_ctx_reset(ctx);
    x = GVEC(ctx, 1, 2, 3);
    l = dn_log_softmax(ctx, x, -1);
    const float seed[] = {1, 0, 0};
    CHECK_OK(dn_backward_with(ctx, l, seed));
    CHECK_GRAD(x, 0, 1 - sm[0], TOL);
    CHECK_GRAD(x, 1, -sm[1], TOL);
    CHECK_GRAD(x, 2, -sm[2], TOL);
    dn_ctx_free(ctx);
}

static void test_prelu_swish_values(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = GVEC(ctx, -2, 3, -1);
    dn_tensor *a = GVEC(ctx, 0.25f);
    dn_tensor *y = dn_prelu(ctx, x, a);
    CHECK_AT(y, 0, -0.5, TOL);
    CHECK_AT(y, 1, 3, 0);
    CHECK_AT(y, 2, -0.25, TOL);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 0.25, TOL);
    CHECK_GRAD(x, 1, 1, 0);
    CHECK_GRAD(a, 0, -3, TOL); /* sum of the negative x */
    dn_ctx_reset(ctx);

    /* per channel: x [2, 2, 1], alpha [2] */
    int64_t shape[] = {2, 2, 1};
    x = tensor(ctx, 3, shape, FLOATS(-1, -2, 3, -4), true);
    a = GVEC(ctx, 0.1f, 0.5f);
    y = dn_prelu(ctx, x, a);
    CHECK_AT(y, 0, -0.1, TOL);
    CHECK_AT(y, 1, -1.0, TOL);
    CHECK_AT(y, 2, 3, 0);
    CHECK_AT(y, 3, -2.0, TOL);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(a, 0, -1, TOL);
    CHECK_GRAD(a, 1, -6, TOL);
    CHECK_GRAD(x, 3, 0.5, TOL);
    dn_ctx_reset(ctx);

    /* swish(1) with beta 1 is x sigmoid(x); d/dbeta = x^2 s (1 - s) */
    x = GVEC(ctx, 1, 0);
    a = GVEC(ctx, 1);
    y = dn_swish(ctx, x, a);
    CHECK_AT(y, 0, 0.73105857863000490, TOL);
    CHECK_AT(y, 1, 0, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 0.73105857863000490 + 0.19661193324148185, TOL);
    CHECK_GRAD(x, 1, 0.5, TOL);
    CHECK_GRAD(a, 0, 0.19661193324148185, TOL);
    dn_ctx_free(ctx);
}

static void test_smooth_activation_values(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = VEC(ctx, 1, 1e4f, -1e4f, 0);
    dn_tensor *m = dn_mish(ctx, x);
    CHECK_AT(m, 0, 0.86509838826731034, TOL);
    CHECK_AT(m, 1, 1e4, 0);
    CHECK_AT(m, 2, 0, 0);
    CHECK_AT(m, 3, 0, 0);
    dn_tensor *g = dn_gelu(ctx, x, DN_GELU_ERF);
    CHECK_AT(g, 0, 0.84134474606854293, TOL);
    CHECK_AT(g, 1, 1e4, 0);
    CHECK_AT(g, 2, 0, 0);
    dn_tensor *gt = dn_gelu(ctx, x, DN_GELU_TANH);
    CHECK_AT(gt, 0, 0.84119199060827680, TOL);
    CHECK_AT(gt, 1, 1e4, 0);
    CHECK_AT(gt, 2, 0, 0);
    dn_tensor *sp = dn_softplus(ctx, x, 1, 20);
    CHECK_AT(sp, 0, 1.3132616875182228, TOL);
    CHECK_AT(sp, 1, 1e4, 0); /* exact: above the threshold y = x */
    CHECK_AT(sp, 2, 0, 0);
    CHECK_AT(sp, 3, 0.69314718055994531, TOL);
    dn_tensor *sp2 = dn_softplus(ctx, x, 2, 1e30f); /* no threshold: the stable form alone must hold */
    CHECK_AT(sp2, 0, 1.0634640055214863, TOL);
    CHECK_AT(sp2, 1, 1e4, 0);
    CHECK_AT(sp2, 2, 0, 0);
    CHECK(dn_ctx_status(ctx) == DN_OK);
    dn_ctx_reset(ctx);

    /* gelu'(0) = 0.5 for both forms; softplus'(x) = sigmoid(beta x) */
    x = GVEC(ctx, 0, 1);
    g = dn_gelu(ctx, x, DN_GELU_ERF);
    CHECK_OK(backward_sum(ctx, g));
    CHECK_GRAD(x, 0, 0.5, TOL);
    CHECK_GRAD(x, 1, 1.0833154705876864, TOL); /* Phi(1) + phi(1) */
    dn_ctx_reset(ctx);
    x = GVEC(ctx, 0, 1);
    sp = dn_softplus(ctx, x, 2, 20);
    CHECK_OK(backward_sum(ctx, sp));
    CHECK_GRAD(x, 0, 0.5, TOL);
    CHECK_GRAD(x, 1, 0.88079707797788231, TOL);
    dn_ctx_free(ctx);
}

static void test_hard_activation_values(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = GVEC(ctx, 0, 0.5f, 1.5f, -3, 1);
    dn_tensor *y = dn_hard_sigmoid(ctx, x, 0.5f, 0.5f);
    CHECK_AT(y, 0, 0.5, 0);
    CHECK_AT(y, 1, 0.75, 0);
    CHECK_AT(y, 2, 1, 0);
    CHECK_AT(y, 3, 0, 0);
    CHECK_AT(y, 4, 1, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 0.5, 0);
    CHECK_GRAD(x, 2, 0, 0);
    CHECK_GRAD(x, 4, 0, 0); /* at the top of the ramp: outside, as PyTorch */
    dn_ctx_reset(ctx);

    /* PyTorch's hardsigmoid: slope 1/6, gradient 0 at +-3 exactly */
    x = GVEC(ctx, 3, -3, 0);
    y = dn_hard_sigmoid(ctx, x, 1.0f / 6, 0.5f);
    CHECK_AT(y, 0, 1, TOL);
    CHECK_AT(y, 1, 0, TOL);
    CHECK_AT(y, 2, 0.5, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 0, 0, 0);
    CHECK_GRAD(x, 1, 0, 0);
    CHECK_GRAD(x, 2, 1.0 / 6, TOL);
    dn_ctx_reset(ctx);

    x = GVEC(ctx, -2, 0.5f, 2, 1, -1);
    y = dn_hard_tanh(ctx, x, -1, 1);
    CHECK_AT(y, 0, -1, 0);
    CHECK_AT(y, 1, 0.5, 0);
    CHECK_AT(y, 2, 1, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_GRAD(x, 1, 1, 0);
    CHECK_GRAD(x, 2, 0, 0);
    CHECK_GRAD(x, 3, 0, 0); /* bounds are outside, as torch's hardtanh */
    CHECK_GRAD(x, 4, 0, 0);
    dn_ctx_free(ctx);
}

static void test_activation_errors(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    EXPECT_ERROR(ctx, dn_hard_tanh(ctx, x, 1, -1), DN_ERR_ARG, "hard_tanh", "min", NULL);
    x = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    EXPECT_ERROR(ctx, dn_softplus(ctx, x, 0, 20), DN_ERR_ARG, "softplus", "beta", NULL);
    x = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    EXPECT_ERROR(ctx, dn_softplus(ctx, x, -1, 20), DN_ERR_ARG, "softplus", "beta", NULL);
    x = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    EXPECT_ERROR(ctx, dn_gelu(ctx, x, 2), DN_ERR_ARG, "gelu", "approximate", NULL);
    x = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    EXPECT_ERROR(ctx, dn_softmax(ctx, x, 2), DN_ERR_ARG, "softmax", "[2, 3]", NULL);
    x = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    EXPECT_ERROR(ctx, dn_log_softmax(ctx, x, -3), DN_ERR_ARG, "log_softmax", "axis", NULL);
    x = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    dn_tensor *a = VEC(ctx, 0.1f, 0.2f);
    EXPECT_ERROR(ctx, dn_prelu(ctx, x, a), DN_ERR_SHAPE, "prelu", "[2, 3]", "[2]");
    x = VEC(ctx, 1, 2, 3);
    a = VEC(ctx, 0.1f, 0.2f, 0.3f); /* a 1-D x has no channel axis */
    EXPECT_ERROR(ctx, dn_prelu(ctx, x, a), DN_ERR_SHAPE, "prelu", "[3]", NULL);
    x = VEC(ctx, 1, 2, 3);
    a = VEC(ctx, 1, 2);
    EXPECT_ERROR(ctx, dn_swish(ctx, x, a), DN_ERR_SHAPE, "swish", "beta", "[2]");
    x = VEC(ctx, 1, 2, 3);
    EXPECT_ERROR(ctx, dn_hard_sigmoid(ctx, x, INFINITY, 0.5f), DN_ERR_ARG, "hard_sigmoid", "slope", NULL);
    dn_ctx_free(ctx);
}

/* ------------------------------------------------------------------ losses */

static void test_regression_losses(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *p = GVEC(ctx, 1, 2, 3), *t = VEC(ctx, 1, 1, 1);
    dn_tensor *l = dn_mse_loss(ctx, p, t, DN_REDUCE_MEAN);
    CHECK(l && dn_tensor_ndim(l) == 0 && dn_tensor_numel(l) == 1);
    CHECK_AT(l, 0, 5.0 / 3, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(p, 0, 0, 0);
    CHECK_GRAD(p, 1, 2.0 / 3, TOL);
    CHECK_GRAD(p, 2, 4.0 / 3, TOL);
    CHECK(dn_tensor_grad(t) == NULL); /* the target takes no gradient */
    dn_ctx_reset(ctx);

    p = GVEC(ctx, 1, 2, 3);
    t = VEC(ctx, 1, 1, 1);
    l = dn_mse_loss(ctx, p, t, DN_REDUCE_SUM);
    CHECK_AT(l, 0, 5, TOL);
    dn_tensor *none = dn_mse_loss(ctx, p, t, DN_REDUCE_NONE);
    CHECK(none && dn_tensor_ndim(none) == 1 && dn_tensor_dim(none, 0) == 3);
    CHECK_AT(none, 2, 4, 0);
    dn_ctx_reset(ctx);

    p = GVEC(ctx, 1, 2, -1);
    t = VEC(ctx, 1, 1, 1);
    l = dn_l1_loss(ctx, p, t, DN_REDUCE_MEAN);
    CHECK_AT(l, 0, 1, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(p, 0, 0, 0); /* sign(0) = 0, as PyTorch */
    CHECK_GRAD(p, 1, 1.0 / 3, TOL);
    CHECK_GRAD(p, 2, -1.0 / 3, TOL);
    dn_ctx_reset(ctx);

    /* huber, delta 1: d = 0.5 is quadratic (0.125), d = -2 linear (1.5) */
    p = GVEC(ctx, 0.5f, -2);
    t = VEC(ctx, 0, 0);
    l = dn_huber_loss(ctx, p, t, 1, DN_REDUCE_MEAN);
    CHECK_AT(l, 0, 0.8125, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(p, 0, 0.25, TOL);
    CHECK_GRAD(p, 1, -0.5, TOL);
    dn_ctx_reset(ctx);

    /* hinge: 1 - t p = 0.5, -1 (clamped to 0), 1.5 */
    p = GVEC(ctx, 0.5f, 2, 0.5f);
    t = VEC(ctx, 1, 1, -1);
    l = dn_hinge_loss(ctx, p, t, DN_REDUCE_MEAN);
    CHECK_AT(l, 0, 2.0 / 3, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(p, 0, -1.0 / 3, TOL);
    CHECK_GRAD(p, 1, 0, 0);
    CHECK_GRAD(p, 2, 1.0 / 3, TOL);
    dn_ctx_free(ctx);
}

static void test_binary_losses(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *p = GVEC(ctx, 0.8f, 0, 0.25f), *t = VEC(ctx, 1, 1, 0);
    dn_tensor *l = dn_bce_loss(ctx, p, t, DN_REDUCE_NONE);
    CHECK_AT(l, 0, 0.22314355131420976, TOL);
    CHECK_AT(l, 1, 100, 0); /* log 0 clamped at -100, as PyTorch */
    CHECK_AT(l, 2, 0.28768207245178090, TOL);
    CHECK_OK(backward_sum(ctx, l));
    CHECK_GRAD(p, 0, -1.25, 1e-5);
    CHECK_GRAD(p, 2, 1.0 / 0.75, 1e-5);
    dn_ctx_reset(ctx);

    dn_tensor *x = GVEC(ctx, 1e4f, -1e4f, 0, 1e4f, 2);
    t = VEC(ctx, 0, 1, 0.5f, 1, 0);
    l = dn_bce_with_logits(ctx, x, t, DN_REDUCE_NONE);
    CHECK_AT(l, 0, 1e4, 0); /* exact, and finite */
    CHECK_AT(l, 1, 1e4, 0);
    CHECK_AT(l, 2, 0.69314718055994531, TOL);
    CHECK_AT(l, 3, 0, 0);
    CHECK_AT(l, 4, 2.1269280110429727, TOL);
    CHECK_OK(backward_sum(ctx, l));
    CHECK_GRAD(x, 0, 1, 0);
    CHECK_GRAD(x, 1, -1, 0);
    CHECK_GRAD(x, 2, 0, TOL);
    CHECK_GRAD(x, 4, 0.88079707797788231, TOL);
    dn_ctx_free(ctx);
}

static void test_class_losses(void)
{
    dn_ctx *ctx = dn_ctx_new();
    /* second row: logits 1000 apart, the log-sum-exp keeps it exact */
    dn_tensor *x = GMAT(ctx, 2, 3, 1, 2, 3, 1000, 0, 0);
    dn_tensor *y = VEC(ctx, 2, 1);
    dn_tensor *l = dn_softmax_cross_entropy(ctx, x, y, DN_REDUCE_NONE);
    CHECK(l && dn_tensor_ndim(l) == 1 && dn_tensor_dim(l, 0) == 2);
    CHECK_AT(l, 0, 0.40760596444438063, TOL);
    CHECK_AT(l, 1, 1000, 0);
    CHECK_OK(backward_sum(ctx, l));
    CHECK_GRAD(x, 0, 0.090030573170380462, TOL);
    CHECK_GRAD(x, 2, 0.66524095577481771 - 1, TOL);
    CHECK_GRAD(x, 3, 1, 0);
    CHECK_GRAD(x, 4, -1, 0);
    dn_ctx_reset(ctx);

    /* classes on axis 1 of [N, C, d]: [1, 2, 2] with targets [1, 2]; mean over the N*d = 2 samples */
    int64_t shape[] = {1, 2, 2}, tshape[] = {1, 2};
    x = tensor(ctx, 3, shape, FLOATS(0, 5, 0, 5), true); /* sample 0: (0, 0); sample 1: (5, 5) */
    y = tensor(ctx, 2, tshape, FLOATS(1, 0), false);
    l = dn_softmax_cross_entropy(ctx, x, y, DN_REDUCE_MEAN);
    CHECK_AT(l, 0, 0.69314718055994531, TOL);
    dn_tensor *ln = dn_softmax_cross_entropy(ctx, x, y, DN_REDUCE_NONE);
    CHECK(ln && dn_tensor_ndim(ln) == 2 && dn_tensor_dim(ln, 1) == 2);
    dn_ctx_reset(ctx);

    x = GMAT(ctx, 1, 3, 1, 2, 3);
    dn_tensor *q = MAT(ctx, 1, 3, 0, 0, 1);
    l = dn_softmax_cross_entropy_soft(ctx, x, q, DN_REDUCE_MEAN);
    CHECK_AT(l, 0, 0.40760596444438063, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(x, 2, 0.66524095577481771 - 1, TOL);
    dn_ctx_reset(ctx);

    dn_tensor *lp = GMAT(ctx, 2, 2, -1, -2, -3, -4);
    y = VEC(ctx, 1, 0);
    l = dn_nll_loss(ctx, lp, y, DN_REDUCE_MEAN);
    CHECK_AT(l, 0, 2.5, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(lp, 0, 0, 0);
    CHECK_GRAD(lp, 1, -0.5, 0);
    CHECK_GRAD(lp, 2, -0.5, 0);
    dn_ctx_reset(ctx);

    dn_tensor *p = GMAT(ctx, 2, 2, 0.2f, 0.8f, 0.5f, 0.5f);
    q = MAT(ctx, 2, 2, 0, 1, 1, 0);
    l = dn_cross_entropy_prob(ctx, p, q, DN_REDUCE_MEAN);
    CHECK_AT(l, 0, 0.45814536593707755, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(p, 0, 0, 0);
    CHECK_GRAD(p, 1, -0.5 / 0.8, TOL);
    CHECK_GRAD(p, 2, -1, TOL);
    dn_ctx_reset(ctx);

    /* multi-margin: row [0.1, 0.2, 0.4] with y = 1: hinges 0.9 and 1.2, / C = 0.7 */
    x = GMAT(ctx, 1, 3, 0.1f, 0.2f, 0.4f);
    y = VEC(ctx, 1);
    l = dn_multi_margin_loss(ctx, x, y, 1, DN_REDUCE_SUM);
    CHECK_AT(l, 0, 0.7, TOL);
    CHECK_OK(dn_backward(ctx, l));
    CHECK_GRAD(x, 0, 1.0 / 3, TOL);
    CHECK_GRAD(x, 1, -2.0 / 3, TOL);
    CHECK_GRAD(x, 2, 1.0 / 3, TOL);
    dn_ctx_free(ctx);
}

static void test_loss_errors(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *p = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6), *t = MAT(ctx, 3, 2, 1, 2, 3, 4, 5, 6);
    EXPECT_ERROR(ctx, dn_mse_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_SHAPE, "mse_loss", "[2, 3]", "[3, 2]");

    p = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    t = VEC(ctx, 0, 5);
    EXPECT_ERROR(ctx, dn_softmax_cross_entropy(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_ARG, "softmax_cross_entropy",
                 "row 1", "index 5");
    p = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    t = VEC(ctx, 1.5f, 0);
    EXPECT_ERROR(ctx, dn_nll_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_ARG, "nll_loss", "row 0", "1.5");
    p = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    t = VEC(ctx, -1, 0);
    EXPECT_ERROR(ctx, dn_multi_margin_loss(ctx, p, t, 1, DN_REDUCE_MEAN), DN_ERR_ARG, "multi_margin_loss", "row 0",
                 "-1");
    p = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    t = VEC(ctx, 0, 1, 2);
    EXPECT_ERROR(ctx, dn_softmax_cross_entropy(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_SHAPE, "[2, 3]", "[3]", "[2]");
    p = MAT(ctx, 2, 3, 1, 2, 3, 4, 5, 6);
    t = MAT(ctx, 2, 2, 0, 0, 0, 0);
    EXPECT_ERROR(ctx, dn_softmax_cross_entropy_soft(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_SHAPE,
                 "softmax_cross_entropy_soft", "[2, 3]", "[2, 2]");
    p = VEC(ctx, 1, 2, 3);
    t = VEC(ctx, 0);
    EXPECT_ERROR(ctx, dn_nll_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_SHAPE, "nll_loss", "[3]", NULL);

    p = VEC(ctx, 0.5f, 0.5f);
    t = VEC(ctx, 0, 1.5f);
    EXPECT_ERROR(ctx, dn_bce_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_ARG, "bce_loss", "target", "1.5");
    p = VEC(ctx, -0.1f, 0.5f);
    t = VEC(ctx, 0, 1);
    EXPECT_ERROR(ctx, dn_bce_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_ARG, "bce_loss", "prediction", "-0.1");
    p = VEC(ctx, 0.5f, 0.5f);
    t = VEC(ctx, 1, 0);
    EXPECT_ERROR(ctx, dn_hinge_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_ARG, "hinge_loss", "-1 or +1", NULL);

    p = VEC(ctx, NAN, 0.5f);
    t = VEC(ctx, 1, 0);
    EXPECT_ERROR(ctx, dn_mse_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_NUMERIC, "mse_loss", "prediction", NULL);
    p = VEC(ctx, 0.5f, 0.5f);
    t = VEC(ctx, 1, INFINITY);
    EXPECT_ERROR(ctx, dn_bce_loss(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_NUMERIC, "bce_loss", "target", NULL);
    p = MAT(ctx, 1, 2, INFINITY, 0);
    t = VEC(ctx, 1);
    EXPECT_ERROR(ctx, dn_softmax_cross_entropy(ctx, p, t, DN_REDUCE_MEAN), DN_ERR_NUMERIC, "softmax_cross_entropy",
                 NULL, NULL);

    p = VEC(ctx, 1, 2);
    t = VEC(ctx, 1, 2);
    EXPECT_ERROR(ctx, dn_l1_loss(ctx, p, t, 3), DN_ERR_ARG, "l1_loss", "reduction", NULL);
    p = VEC(ctx, 1, 2);
    t = VEC(ctx, 1, 2);
    EXPECT_ERROR(ctx, dn_huber_loss(ctx, p, t, 0, DN_REDUCE_MEAN), DN_ERR_ARG, "huber_loss", "delta", NULL);
    int64_t s3[] = {1, 2, 2}, s2[] = {1, 2};
    p = tensor(ctx, 3, s3, FLOATS(0, 1, 2, 3), false);
    t = tensor(ctx, 2, s2, FLOATS(0, 1), false);
    EXPECT_ERROR(ctx, dn_multi_margin_loss(ctx, p, t, 1, DN_REDUCE_MEAN), DN_ERR_SHAPE, "multi_margin_loss",
                 "[1, 2, 2]", NULL);
    dn_ctx_free(ctx);
}

/* The names and attributes the PyTorch golden script relies on. */
static void test_act_loss_registry(void)
{
    static const struct {
        const char *name;
        int arity;
        const char *attrs; /* "name=default ..." */
    } want[] = {
        {"identity", 1, ""}, {"sigmoid", 1, ""}, {"tanh", 1, ""}, {"relu", 1, ""}, {"mish", 1, ""},
        {"selu", 1, ""}, {"leaky_relu", 1, "alpha=0.01"}, {"softmax", 1, "axis=-1"},
        {"log_softmax", 1, "axis=-1"}, {"prelu", 2, ""}, {"elu", 1, "alpha=1"}, {"swish", 2, ""},
        {"gelu", 1, "approximate=0"}, {"softplus", 1, "beta=1 threshold=20"},
        {"hard_sigmoid", 1, "slope=0.5 offset=0.5"}, {"hard_tanh", 1, "min=-1 max=1"},
        {"mse_loss", 2, "reduction=0"}, {"l1_loss", 2, "reduction=0"}, {"huber_loss", 2, "delta=1 reduction=0"},
        {"cross_entropy_prob", 2, "reduction=0"}, {"bce_loss", 2, "reduction=0"},
        {"bce_with_logits", 2, "reduction=0"}, {"hinge_loss", 2, "reduction=0"},
        {"multi_margin_loss", 2, "margin=1 reduction=0"}, {"softmax_cross_entropy", 2, "reduction=0"},
        {"softmax_cross_entropy_soft", 2, "reduction=0"}, {"nll_loss", 2, "reduction=0"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const dn_op *op = dn_op_find(want[i].name);
        CHECK_MSG(op != NULL, "op %s is not registered", want[i].name);
        if (!op) continue;
        CHECK_MSG(dn_op_arity(op) == want[i].arity, "%s: arity %d", want[i].name, dn_op_arity(op));
        CHECK_MSG(dn_op_doc(op) && strstr(dn_op_doc(op), "torch"), "%s: doc names no PyTorch equivalent", want[i].name);
        char got[128] = "";
        size_t used = 0;
        for (int k = 0; k < dn_op_attr_count(op); k++)
            used += (size_t)snprintf(got + used, sizeof got - used, "%s%s=%g", k ? " " : "", dn_op_attr_name(op, k),
                                     dn_op_attr_default(op, k));
        CHECK_MSG(strcmp(got, want[i].attrs) == 0, "%s: attributes '%s', expected '%s'", want[i].name, got,
                  want[i].attrs);
    }
}

void suite_act_loss(void)
{
    RUN(test_sigmoid_tanh_values);
    RUN(test_relu_family_values);
    RUN(test_softmax_values);
    RUN(test_prelu_swish_values);
    RUN(test_smooth_activation_values);
    RUN(test_hard_activation_values);
    RUN(test_activation_errors);
    RUN(test_regression_losses);
    RUN(test_binary_losses);
    RUN(test_class_losses);
    RUN(test_loss_errors);
    RUN(test_act_loss_registry);
}
