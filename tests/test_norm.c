/* batch_norm: a small example worked by hand (forward, backward and the running statistics), several
 * training steps of running statistics, evaluation mode, the normalised output's statistics, and every
 * error path.  PyTorch agreement on random inputs is the golden test's job (tests/golden/batch_norm.txt). */
#include "test.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ helpers */

/* A tensor of the given shape from data; ctx NULL makes a heap tensor (as a model keeps its statistics). */
static dn_tensor *tensor(dn_ctx *ctx, int ndim, const int64_t *shape, const float *data, bool grad)
{
    dn_tensor *t = NULL;
    if (dn_tensor_from(ctx, ndim, shape, data, &t) != DN_OK) return NULL;
    if (grad && dn_tensor_set_requires_grad(t, true) != DN_OK) return NULL;
    return t;
}

static dn_tensor *vec(dn_ctx *ctx, int64_t n, const float *data, bool grad) { return tensor(ctx, 1, &n, data, grad); }

#define FLOATS(...) ((const float[]){__VA_ARGS__})


/* Backward from out with the given upstream gradient, or all ones when dy is NULL. */
static dn_status backward(dn_ctx *ctx, dn_tensor *out, const float *dy)
{
    if (!out) return dn_ctx_status(ctx);
    int64_t n = dn_tensor_numel(out);
    float *ones = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!ones) return DN_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) ones[i] = 1;
    dn_status s = dn_backward_with(ctx, out, dy ? dy : ones);
    free(ones);
    return s;
}

#define TOL 1e-5

/* The example used below: x [3, 2] (N = 3 samples, C = 2 channels).  Channel 0 holds 1, 2, 3 (mean 2, biased
 * variance 2/3, unbiased 1); channel 1 holds 10, 20, 30 (mean 20, biased variance 200/3, unbiased 100). */
static const int64_t X_SHAPE[] = {3, 2};
static const float X_DATA[] = {1, 10, 2, 20, 3, 30};

/* ------------------------------------------------------------------ forward and backward by hand */

static void test_bn_training_by_hand(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = tensor(ctx, 2, X_SHAPE, X_DATA, true);
    dn_tensor *gamma = vec(ctx, 2, FLOATS(1, 2), true), *beta = vec(ctx, 2, FLOATS(0, 1), true);
    dn_tensor *rmean = vec(ctx, 2, FLOATS(0, 0), false), *rvar = vec(ctx, 2, FLOATS(1, 1), false);
    dn_tensor *y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 0.1f, 1e-5f);
    CHECK_MSG(y, "batch_norm: %s", dn_last_error());
    if (!y) goto done;
    /* channel 0: (x - 2) / sqrt(2/3 + 1e-5) = -+1.22473569;  channel 1: 2 (x - 20) / sqrt(200/3 + 1e-5) + 1 */
    CHECK_AT(y, 0, -1.22473569, TOL);
    CHECK_AT(y, 2, 0.0, TOL);
    CHECK_AT(y, 4, 1.22473569, TOL);
    CHECK_AT(y, 1, 1 - 2 * 1.22474478, TOL);
    CHECK_AT(y, 3, 1.0, TOL);
    CHECK_AT(y, 5, 1 + 2 * 1.22474478, TOL);
    /* running statistics, momentum 0.1: mean 0.9*0 + 0.1*[2, 20]; var 0.9*1 + 0.1*[1, 100] (unbiased) */
    CHECK_AT(rmean, 0, 0.2, TOL);
    CHECK_AT(rmean, 1, 2.0, TOL);
    CHECK_AT(rvar, 0, 1.0, TOL);
    CHECK_AT(rvar, 1, 10.9, TOL);

    /* dy = 1 everywhere: dbeta = N = 3 and dgamma = sum xhat = 0; and dx = 0, because y does not change when
     * x shifts by the same amount in a channel (the mean absorbs it), which is the direction dy = 1 probes */
    CHECK_OK(backward(ctx, y, NULL));
    for (int i = 0; i < 6; i++) CHECK_GRAD(x, i, 0.0, TOL);
    CHECK_GRAD(beta, 0, 3.0, TOL);
    CHECK_GRAD(beta, 1, 3.0, TOL);
    CHECK_GRAD(gamma, 0, 0.0, TOL);
    CHECK_GRAD(gamma, 1, 0.0, TOL);
    CHECK(dn_tensor_grad(rmean) == NULL && dn_tensor_grad(rvar) == NULL);
done:
    dn_ctx_free(ctx);
}

/* dy proportional to xhat: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) vanishes too (up to eps),
 * since scaling x within a channel leaves xhat unchanged; dgamma = sum xhat^2 = m var / (var + eps). */
static void test_bn_training_scale_direction(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = tensor(ctx, 2, X_SHAPE, X_DATA, true);
    dn_tensor *gamma = vec(ctx, 2, FLOATS(1, 2), true), *beta = vec(ctx, 2, FLOATS(0, 1), true);
    dn_tensor *rmean = vec(ctx, 2, FLOATS(0, 0), false), *rvar = vec(ctx, 2, FLOATS(1, 1), false);
    dn_tensor *y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 0.1f, 1e-5f);
    const float dy[] = {-1, -1, 0, 0, 1, 1}; /* xhat / 1.2247 in both channels */
    CHECK_OK(backward(ctx, y, dy));
    for (int i = 0; i < 6; i++) CHECK_GRAD(x, i, 0.0, 1e-4);
    CHECK_GRAD(gamma, 0, 2 * 1.22473569, TOL);
    CHECK_GRAD(gamma, 1, 2 * 1.22474478, TOL);
    CHECK_GRAD(beta, 0, 0.0, TOL);
    dn_ctx_free(ctx);
}

/* Three steps on batches x, 2x, 3x.  Channel 0 batch k is k, 2k, 3k: mean 2k, unbiased variance k^2.
 * Channel 1 is ten times that: mean 20k, variance 100 k^2.  With momentum 0.1 from (0, 1):
 *   mean: 0.1*2 = 0.2  ->  0.9*0.2 + 0.4 = 0.58  ->  0.9*0.58 + 0.6 = 1.122         (channel 1: 11.22)
 *   var:  0.9 + 0.1 = 1.0  ->  0.9 + 0.4 = 1.3  ->  1.17 + 0.9 = 2.07
 *   var channel 1: 0.9 + 10 = 10.9  ->  9.81 + 40 = 49.81  ->  44.829 + 90 = 134.829 */
static void test_bn_running_stats_three_steps(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *rmean = vec(NULL, 2, FLOATS(0, 0), false), *rvar = vec(NULL, 2, FLOATS(1, 1), false);
    for (int k = 1; k <= 3; k++) {
        float xk[6];
        for (int i = 0; i < 6; i++) xk[i] = X_DATA[i] * (float)k;
        dn_tensor *x = tensor(ctx, 2, X_SHAPE, xk, true);
        dn_tensor *gamma = vec(ctx, 2, FLOATS(1, 1), true), *beta = vec(ctx, 2, FLOATS(0, 0), true);
        dn_tensor *y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 0.1f, 1e-5f);
        CHECK_MSG(y, "step %d: %s", k, dn_last_error());
        CHECK_OK(backward(ctx, y, NULL)); /* backward leaves the running statistics alone */
        dn_ctx_reset(ctx);
    }
    CHECK_AT(rmean, 0, 1.122, TOL);
    CHECK_AT(rmean, 1, 11.22, 1e-4);
    CHECK_AT(rvar, 0, 2.07, TOL);
    CHECK_AT(rvar, 1, 134.829, 1e-3);

    /* momentum 0 keeps the estimates; momentum 1 replaces them with the batch's */
    dn_tensor *x = tensor(ctx, 2, X_SHAPE, X_DATA, false);
    dn_tensor *gamma = vec(ctx, 2, FLOATS(1, 1), false), *beta = vec(ctx, 2, FLOATS(0, 0), false);
    CHECK(dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 0.0f, 1e-5f) != NULL);
    CHECK_AT(rmean, 0, 1.122, TOL);
    CHECK_AT(rvar, 1, 134.829, 1e-3);
    CHECK(dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 1.0f, 1e-5f) != NULL);
    CHECK_AT(rmean, 0, 2.0, TOL);
    CHECK_AT(rmean, 1, 20.0, TOL);
    CHECK_AT(rvar, 0, 1.0, TOL);
    CHECK_AT(rvar, 1, 100.0, 1e-4);
    dn_tensor_free(rmean);
    dn_tensor_free(rvar);
    dn_ctx_free(ctx);
}

/* Evaluation normalises with the running statistics and leaves them as they are.  With running mean [1, 2],
 * running variance [4, 9] and eps 0: y0 = (x - 1)/2, y1 = 2 (x - 2)/3 + 1.  dx = gamma dy / sqrt(var);
 * dgamma = sum xhat: channel 0 (0 + 0.5 + 1) = 1.5, channel 1 (8 + 18 + 28)/3 = 18. */
static void test_bn_eval_uses_running_stats(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = tensor(ctx, 2, X_SHAPE, X_DATA, true);
    dn_tensor *gamma = vec(ctx, 2, FLOATS(1, 2), true), *beta = vec(ctx, 2, FLOATS(0, 1), true);
    dn_tensor *rmean = vec(ctx, 2, FLOATS(1, 2), false), *rvar = vec(ctx, 2, FLOATS(4, 9), false);
    dn_tensor *y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, false, 0.1f, 0.0f);
    CHECK_MSG(y, "batch_norm: %s", dn_last_error());
    if (!y) goto done;
    const double want[] = {0, 1 + 2 * 8 / 3.0, 0.5, 13, 1, 1 + 2 * 28 / 3.0};
    for (int i = 0; i < 6; i++) CHECK_AT(y, i, want[i], TOL);
    CHECK_AT(rmean, 0, 1.0, 0);
    CHECK_AT(rmean, 1, 2.0, 0);
    CHECK_AT(rvar, 0, 4.0, 0);
    CHECK_AT(rvar, 1, 9.0, 0);
    CHECK_OK(backward(ctx, y, NULL));
    for (int s = 0; s < 3; s++) {
        CHECK_GRAD(x, 2 * s, 0.5, TOL);
        CHECK_GRAD(x, 2 * s + 1, 2 / 3.0, TOL);
    }
    CHECK_GRAD(gamma, 0, 1.5, TOL);
    CHECK_GRAD(gamma, 1, 18.0, TOL);
    CHECK_GRAD(beta, 0, 3.0, TOL);
    CHECK_GRAD(beta, 1, 3.0, TOL);

    /* one sample is fine in evaluation (no batch statistics are formed) */
    dn_ctx_reset(ctx);
    int64_t one[] = {1, 2};
    x = tensor(ctx, 2, one, FLOATS(3, 5), false);
    gamma = vec(ctx, 2, FLOATS(1, 1), false);
    beta = vec(ctx, 2, FLOATS(0, 0), false);
    rmean = vec(ctx, 2, FLOATS(1, 2), false);
    rvar = vec(ctx, 2, FLOATS(4, 9), false);
    y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, false, 0.1f, 0.0f);
    CHECK_AT(y, 0, 1.0, TOL);
    CHECK_AT(y, 1, 1.0, TOL);
done:
    dn_ctx_free(ctx);
}

/* ------------------------------------------------------------------ the normalised output */

/* [N, C, H, W] with channels of very different location and scale: before gamma and beta, every channel of
 * the training output has mean 0 and biased variance var / (var + eps) ~ 1. */
static void test_bn_output_statistics(void)
{
    enum { N = 6, C = 3, H = 4, W = 5, HW = H * W };
    dn_ctx *ctx = dn_ctx_new();
    dn_rng r;
    dn_rng_seed(&r, 42);
    static float xd[N * C * HW];
    for (int s = 0; s < N; s++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) xd[(s * C + c) * HW + i] = 100.0f * (float)c + (float)(c + 1) * 3 * dn_rng_normal(&r);
    int64_t shape[] = {N, C, H, W};
    dn_tensor *x = tensor(ctx, 4, shape, xd, false);
    dn_tensor *gamma = vec(ctx, C, FLOATS(0.5f, -2, 3), false), *beta = vec(ctx, C, FLOATS(1, 0, -4), false);
    dn_tensor *rmean = vec(ctx, C, FLOATS(0, 0, 0), false), *rvar = vec(ctx, C, FLOATS(1, 1, 1), false);
    dn_tensor *y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 0.1f, 1e-5f);
    CHECK_MSG(y, "batch_norm: %s", dn_last_error());
    if (!y) goto done;
    const float *g = dn_tensor_data(gamma), *b = dn_tensor_data(beta), *yd = dn_tensor_data(y);
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0;
        for (int s = 0; s < N; s++)
            for (int i = 0; i < HW; i++) sum += (yd[(s * C + c) * HW + i] - b[c]) / g[c];
        double mean = sum / (N * HW);
        for (int s = 0; s < N; s++)
            for (int i = 0; i < HW; i++) {
                double d = (yd[(s * C + c) * HW + i] - b[c]) / g[c] - mean;
                sq += d * d;
            }
        CHECK_NEAR(mean, 0.0, 1e-5);
        CHECK_NEAR(sq / (N * HW), 1.0, 1e-4);
    }
    /* the running mean moved a tenth of the way to each channel's location (0, 100, 200) */
    CHECK_AT(rmean, 1, 10.0, 0.5);
    CHECK_AT(rmean, 2, 20.0, 0.5);
done:
    dn_ctx_free(ctx);
}

/* A strided view of x gives the same result as its contiguous copy. */
static void test_bn_strided_input(void)
{
    dn_ctx *ctx = dn_ctx_new();
    int64_t t_shape[] = {2, 3}; /* x transposed: [C, N] */
    dn_tensor *xt = tensor(ctx, 2, t_shape, FLOATS(1, 2, 3, 10, 20, 30), false);
    const int perm[] = {1, 0};
    dn_tensor *x = dn_permute(ctx, xt, perm);
    dn_tensor *gamma = vec(ctx, 2, FLOATS(1, 2), false), *beta = vec(ctx, 2, FLOATS(0, 1), false);
    dn_tensor *rmean = vec(ctx, 2, FLOATS(0, 0), false), *rvar = vec(ctx, 2, FLOATS(1, 1), false);
    dn_tensor *y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 0.1f, 1e-5f);
    CHECK_AT(y, 0, -1.22473569, TOL);
    CHECK_AT(y, 5, 1 + 2 * 1.22474478, TOL);
    CHECK_AT(rvar, 1, 10.9, TOL);
    dn_ctx_free(ctx);
}

/* ------------------------------------------------------------------ errors */

/* The call failed with `want`, its message holds `a` and `b`, and the running statistics were not touched. */
static void expect_error(int line, dn_ctx *ctx, const dn_tensor *out, dn_status want, const char *a, const char *b,
                         dn_tensor *rmean)
{
    const char *msg = dn_last_error();
    if (out) t_fail(__FILE__, line, "expected %s, got a tensor", dn_status_name(want));
    if (dn_ctx_status(ctx) != want)
        t_fail(__FILE__, line, "expected %s, got %s (%s)", dn_status_name(want), dn_status_name(dn_ctx_status(ctx)), msg);
    if (!strstr(msg, "batch_norm")) t_fail(__FILE__, line, "message '%s' does not name the op", msg);
    if (a && !strstr(msg, a)) t_fail(__FILE__, line, "message '%s' lacks '%s'", msg, a);
    if (b && !strstr(msg, b)) t_fail(__FILE__, line, "message '%s' lacks '%s'", msg, b);
    if (rmean && dn_tensor_get(rmean, 0) != 0.0f) t_fail(__FILE__, line, "the running mean changed on error");
    dn_ctx_reset(ctx);
}
#undef EXPECT_ERROR /* this file's version also checks the running statistics */
#define EXPECT_ERROR(out, want, a, b) expect_error(__LINE__, ctx, out, want, a, b, rm)

static void test_bn_errors(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *rm = vec(NULL, 2, FLOATS(0, 0), false), *rv = vec(NULL, 2, FLOATS(1, 1), false);
    dn_tensor *x, *g, *b;
#define FRESH()                                                                                             \
    do {                                                                                                    \
        x = tensor(ctx, 2, X_SHAPE, X_DATA, true);                                                          \
        g = vec(ctx, 2, FLOATS(1, 1), true);                                                                \
        b = vec(ctx, 2, FLOATS(0, 0), true);                                                                \
    } while (0)

    /* x of rank 1 */
    FRESH();
    x = vec(ctx, 3, FLOATS(1, 2, 3), false);
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, 0.1f, 1e-5f), DN_ERR_SHAPE, "[3]", "[N, C]");
    /* gamma, beta and the statistics must be [C] */
    FRESH();
    g = vec(ctx, 3, FLOATS(1, 1, 1), false);
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, 0.1f, 1e-5f), DN_ERR_SHAPE, "gamma", "[3, 2]");
    FRESH();
    int64_t row[] = {1, 2};
    b = tensor(ctx, 2, row, FLOATS(0, 0), false);
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, 0.1f, 1e-5f), DN_ERR_SHAPE, "beta", "[1, 2]");
    FRESH();
    dn_tensor *rv3 = vec(ctx, 3, FLOATS(1, 1, 1), false);
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv3, true, 0.1f, 1e-5f), DN_ERR_SHAPE, "running_var", "[3]");
    FRESH();
    dn_tensor *rm1 = vec(ctx, 1, FLOATS(0), false);
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm1, rv, false, 0.1f, 1e-5f), DN_ERR_SHAPE, "running_mean", "[1]");
    /* attributes */
    FRESH();
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, 0.1f, -1e-5f), DN_ERR_ARG, "eps", NULL);
    FRESH();
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, 1.5f, 1e-5f), DN_ERR_ARG, "momentum", "1.5");
    FRESH();
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, -0.1f, 1e-5f), DN_ERR_ARG, "momentum", NULL);
    FRESH();
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, false, NAN, 1e-5f), DN_ERR_ARG, "momentum", NULL);
    /* one value per channel cannot be normalised by its own statistics (torch's message) */
    int64_t one[] = {1, 2}, one3[] = {1, 2, 1};
    FRESH();
    x = tensor(ctx, 2, one, FLOATS(1, 2), false);
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, 0.1f, 1e-5f), DN_ERR_SHAPE, "more than 1 value per channel",
                 "[1, 2]");
    FRESH();
    x = tensor(ctx, 3, one3, FLOATS(1, 2), false);
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, rm, rv, true, 0.1f, 1e-5f), DN_ERR_SHAPE, "more than 1 value", NULL);
    /* a NULL input */
    FRESH();
    EXPECT_ERROR(dn_batch_norm(ctx, x, g, b, NULL, rv, true, 0.1f, 1e-5f), DN_ERR_ARG, "NULL", NULL);
#undef FRESH
    dn_tensor_free(rm);
    dn_tensor_free(rv);
    dn_ctx_free(ctx);
}

/* An empty batch in training returns an empty output and learns nothing (as torch). */
static void test_bn_empty_batch(void)
{
    dn_ctx *ctx = dn_ctx_new();
    int64_t shape[] = {0, 2};
    dn_tensor *x = NULL;
    CHECK_OK(dn_tensor_new(ctx, 2, shape, &x));
    dn_tensor *gamma = vec(ctx, 2, FLOATS(1, 1), false), *beta = vec(ctx, 2, FLOATS(0, 0), false);
    dn_tensor *rmean = vec(ctx, 2, FLOATS(0.5f, 0.5f), false), *rvar = vec(ctx, 2, FLOATS(2, 2), false);
    dn_tensor *y = dn_batch_norm(ctx, x, gamma, beta, rmean, rvar, true, 0.1f, 1e-5f);
    CHECK_MSG(y && dn_tensor_numel(y) == 0, "batch_norm on [0, 2]: %s", dn_last_error());
    CHECK_AT(rmean, 0, 0.5, 0);
    CHECK_AT(rvar, 1, 2.0, 0);
    dn_ctx_free(ctx);
}

/* ------------------------------------------------------------------ batch-norm folding */

/* Models for the folding test (momentum 0.9: a few training passes move the running statistics most of the
 * way to the batch's).  `folds` says whether inference should fold a batch norm somewhere in the model. */
#define BN "[batchnorm]\nmomentum = 0.9\n"
#define CONV(bias) "[convolutional]\nfilters = 4\nsize = 3\npad = 1\nbias = " #bias "\n"
#define RELU "[activation]\ntype = relu\n"
static const struct {
    const char *what, *cfg;
    bool folds;
    int vocab; /* > 0: the input is token ids below it */
} fold_cases[] = {
    {"conv -> bn -> relu", "[net]\ninput = 3, 6, 6\nseed = 1\n" CONV(1) BN RELU CONV(1) BN RELU, true, 0},
    {"conv (no bias) -> bn", "[net]\ninput = 3, 6, 6\nseed = 2\n" CONV(0) BN CONV(0) BN, true, 0},
    {"conv -> bn -> relu, the bn's output to a shortcut (folded, relu kept)",
     "[net]\ninput = 3, 6, 6\nseed = 3\n" CONV(1) BN RELU "[shortcut]\nfrom = -2\n", true, 0},
    {"dense -> bn -> relu, dense -> bn (batchnorm1d)",
     "[net]\ninput = 3, 6, 6\nseed = 4\n" CONV(1) "[maxpool]\nsize = 2\n[dense]\nunits = 16\n" BN RELU
     "[dense]\nunits = 5\nbias = 0\n" BN, true, 0},
    {"conv -> bn, the conv's output to a shortcut (not folded)",
     "[net]\ninput = 3, 6, 6\nseed = 5\n" CONV(1) BN "[shortcut]\nfrom = -2\n", false, 0},
    /* a dense layer applied at every step of a sequence [T, units]: the batch norm's channels are the T steps */
    {"per-step dense -> bn (not folded)",
     "[net]\ninput = 6\nseed = 6\n[embedding]\nvocab = 10\nsize = 4\n[dense]\nunits = 6\n" BN, false, 10},
};
#undef BN
#undef CONV
#undef RELU

/* Inputs off zero (so the running means move away from 0), or token ids below vocab. */
static void fill_input(dn_tensor *x, dn_rng *r, int vocab)
{
    float *d = x ? dn_tensor_data(x) : NULL;
    for (int64_t i = 0; d && i < dn_tensor_numel(x); i++)
        d[i] = vocab ? (float)(dn_rng_u32(r) % (uint32_t)vocab) : 4.0f * dn_rng_uniform(r) - 1.0f;
}

/* At inference (evaluation mode, gradient recording off) a batch norm after a conv/dense layer is folded
 * into its weights (src/nn/model.c).  The reference is the same model with recording on, which never folds:
 * the outputs agree to 1e-5 of their largest magnitude, differ in some bit where a fold happened (so the fold
 * really ran), and are equal bit for bit where none may.  With recording on, backward still reaches every
 * parameter, gamma and beta included. */
static void test_bn_folding_at_inference(void)
{
    for (size_t c = 0; c < sizeof fold_cases / sizeof fold_cases[0]; c++) {
        dn_model *m = NULL;
        CHECK_OK(dn_model_from_cfg(fold_cases[c].cfg, "fold.cfg", &m, NULL));
        if (!m) continue;
        dn_ctx *ctx = dn_ctx_new();
        dn_rng r;
        dn_rng_seed(&r, 100 + c);
        int64_t shape[DN_MAX_DIMS] = {6};
        const int nd = 1 + dn_model_input_shape(m, shape + 1);
        dn_tensor *x = NULL;
        /* training passes move the running means and variances away from 0 and 1 */
        dn_model_set_training(m, true);
        for (int step = 0; step < 3; step++) {
            CHECK_OK(dn_tensor_new(ctx, nd, shape, &x));
            fill_input(x, &r, fold_cases[c].vocab);
            CHECK_MSG(dn_model_forward(m, ctx, x) != NULL, "%s: training forward: %s", fold_cases[c].what,
                      dn_last_error());
            dn_ctx_reset(ctx);
        }
        /* gamma (the 1-d weights) and every bias away from 1 and 0, some gammas negative */
        for (int i = 0; i < dn_model_tensor_count(m); i++) {
            dn_tensor *t = dn_model_tensor(m, i);
            const char *name = dn_model_tensor_name(m, i);
            bool gamma = dn_tensor_ndim(t) == 1 && strstr(name, "weight");
            for (int64_t k = 0; k < dn_tensor_numel(t); k++)
                if (gamma || strstr(name, "bias")) dn_tensor_data(t)[k] = 2.0f * dn_rng_uniform(&r) - (gamma ? 0.7f : 1.0f);
        }
        dn_model_set_training(m, false);
        CHECK_OK(dn_tensor_new(NULL, nd, shape, &x));
        fill_input(x, &r, fold_cases[c].vocab);

        /* the reference: recording on, nothing folded; backward reaches every parameter */
        dn_tensor *y = dn_model_forward(m, ctx, x);
        CHECK_MSG(y != NULL, "%s: forward: %s", fold_cases[c].what, dn_last_error());
        if (!y) goto next;
        const int64_t n = dn_tensor_numel(y);
        float *ref = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)n * sizeof(float));
        float *dy = malloc((size_t)n * sizeof(float));
        dn_tensor_read(y, ref);
        for (int64_t i = 0; i < n; i++) dy[i] = 2.0f * dn_rng_uniform(&r) - 1.0f;
        dn_model_zero_grad(m);
        CHECK_OK(backward(ctx, y, dy));
        for (int i = 0; i < dn_model_tensor_count(m); i++) {
            dn_tensor *t = dn_model_tensor(m, i);
            const float *g = dn_tensor_grad(t);
            double g2 = 0;
            for (int64_t k = 0; g && k < dn_tensor_numel(t); k++) g2 += (double)g[k] * g[k];
            CHECK_MSG(g2 > 0, "%s: %s got no gradient", fold_cases[c].what, dn_model_tensor_name(m, i));
        }

        /* inference: recording off */
        dn_ctx_reset(ctx);
        dn_ctx_set_grad(ctx, false);
        y = dn_model_forward(m, ctx, x);
        CHECK_MSG(y && dn_tensor_numel(y) == n, "%s: inference forward: %s", fold_cases[c].what, dn_last_error());
        if (y && dn_tensor_numel(y) == n) {
            dn_tensor_read(y, got);
            /* maxima by comparison, not fmax: gcc 12.2 for aarch64 stops with an internal compiler error
             * (vect_transform_reduction) vectorising an fmax reduction over floats widened to double at -O3 */
            double big = 0, err = 0;
            for (int64_t i = 0; i < n; i++) {
                big = t_worse(big, fabs(ref[i]));
                err = t_worse(err, fabs((double)got[i] - ref[i]));
            }
            CHECK_MSG(big > 0.1 && err <= 1e-5 * big, "%s: folded output off by %g (largest |y| %g)",
                      fold_cases[c].what, err, big);
            bool same = !memcmp(got, ref, (size_t)n * sizeof(float));
            CHECK_MSG(same != fold_cases[c].folds, "%s: output %s the unfolded one bit for bit", fold_cases[c].what,
                      same ? "equals" : "differs from");
        }
        free(ref);
        free(got);
        free(dy);
    next:
        dn_tensor_free(x);
        dn_ctx_free(ctx);
        dn_model_free(m);
    }
}

void suite_norm(void)
{
    RUN(test_bn_training_by_hand);
    RUN(test_bn_training_scale_direction);
    RUN(test_bn_running_stats_three_steps);
    RUN(test_bn_eval_uses_running_stats);
    RUN(test_bn_output_statistics);
    RUN(test_bn_strided_input);
    RUN(test_bn_errors);
    RUN(test_bn_empty_batch);
    RUN(test_bn_folding_at_inference);
}
