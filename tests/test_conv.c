/* Convolution and pooling: small cases worked out by hand, every error path, a larger convolution (groups,
 * stride, padding, dilation) against a direct-loop reference written here, forward and all three gradients,
 * and the pooling tie rule. */
#include "test.h"
#include "internal.h"
#include "kernels/conv_kernels.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ helpers */

static dn_tensor *tensor4(dn_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w, const float *data, bool grad)
{
    int64_t shape[] = {n, c, h, w};
    dn_tensor *t = NULL;
    if (data ? dn_tensor_from(ctx, 4, shape, data, &t) : dn_tensor_new(ctx, 4, shape, &t)) return NULL;
    if (grad && dn_tensor_set_requires_grad(t, true) != DN_OK) return NULL;
    return t;
}

static dn_tensor *tensor1(dn_ctx *ctx, int64_t n, const float *data, bool grad)
{
    dn_tensor *t = NULL;
    if (dn_tensor_from(ctx, 1, &n, data, &t)) return NULL;
    if (grad && dn_tensor_set_requires_grad(t, true) != DN_OK) return NULL;
    return t;
}

#define FLOATS(...) ((const float[]){__VA_ARGS__})

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

/* t (row-major) equals want[0 .. n-1] within tol. */
static void check_values(int line, const char *what, const float *got, const float *want, int64_t n, double tol)
{
    if (!got) {
        t_fail(__FILE__, line, "%s is missing: %s", what, dn_last_error());
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - (double)want[i]) <= tol)) {
            t_fail(__FILE__, line, "%s[%lld] = %.9g, expected %.9g", what, (long long)i, (double)got[i],
                   (double)want[i]);
            return;
        }
}
#define CHECK_VALUES(what, got, want, n, tol) check_values(__LINE__, what, got, want, n, tol)
#define OUT(t) ((t) ? dn_tensor_data(t) : NULL)
#define GRAD(t) ((t) ? dn_tensor_grad(t) : NULL)


/* ------------------------------------------------------------------ convolution by hand */

static void conv_identity_kernel(void)
{
    dn_ctx *ctx = dn_ctx_new();
    float xv[16];
    for (int i = 0; i < 16; i++) xv[i] = (float)(i + 1);
    dn_tensor *x = tensor4(ctx, 1, 1, 4, 4, xv, true);
    dn_tensor *w = tensor4(ctx, 1, 1, 3, 3, FLOATS(0, 0, 0, 0, 1, 0, 0, 0, 0), true);
    dn_tensor *b = tensor1(ctx, 1, FLOATS(0), true);
    /* a centred 1 with padding 1 reproduces the input */
    dn_tensor *y = dn_conv2d(ctx, x, w, b, 1, 1, 1, 1, 1, 1, 1);
    CHECK(y && dn_tensor_dim(y, 2) == 4 && dn_tensor_dim(y, 3) == 4);
    CHECK_VALUES("y", OUT(y), xv, 16, 0);
    CHECK_OK(backward_sum(ctx, y));
    /* each pixel is read once through the centre tap */
    float ones[16];
    for (int i = 0; i < 16; i++) ones[i] = 1;
    CHECK_VALUES("dx", GRAD(x), ones, 16, 0);
    /* dw[i][j] = sum of x over the 4x4 grid shifted by (i-1, j-1): e.g. tap (0,0) sees rows 0..2, cols 0..2 */
    CHECK_VALUES("dw", GRAD(w), FLOATS(54, 78, 63, 96, 136, 108, 90, 126, 99), 9, 0);
    CHECK_VALUES("db", GRAD(b), FLOATS(16), 1, 0);
    dn_ctx_free(ctx);
}

static void conv_edge_filter_and_geometry(void)
{
    dn_ctx *ctx = dn_ctx_new();
    /* Sobel-x on a vertical step: 0 where the window is flat, 4 = (1 + 2 + 1) where it straddles the step */
    dn_tensor *x = tensor4(ctx, 1, 1, 3, 4, FLOATS(0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1), false);
    dn_tensor *w = tensor4(ctx, 1, 1, 3, 3, FLOATS(-1, 0, 1, -2, 0, 2, -1, 0, 1), false);
    dn_tensor *y = dn_conv2d(ctx, x, w, NULL, 1, 1, 0, 0, 1, 1, 1);
    CHECK(y && dn_tensor_dim(y, 2) == 1 && dn_tensor_dim(y, 3) == 2);
    CHECK_VALUES("sobel", OUT(y), FLOATS(0, 4), 2, 0);
    dn_ctx_reset(ctx);

    /* a 2x2 box of ones, dilation 2, stride 2 on 0..24: y[i][j] = x[2i][2j] + x[2i][2j+2] + x[2i+2][2j] + x[2i+2][2j+2] */
    float v[25];
    for (int i = 0; i < 25; i++) v[i] = (float)i;
    x = tensor4(ctx, 1, 1, 5, 5, v, false);
    w = tensor4(ctx, 1, 1, 2, 2, FLOATS(1, 1, 1, 1), false);
    y = dn_conv2d(ctx, x, w, NULL, 2, 2, 0, 0, 2, 2, 1);
    CHECK(y && dn_tensor_dim(y, 2) == 2 && dn_tensor_dim(y, 3) == 2);
    CHECK_VALUES("dilated", OUT(y), FLOATS(24, 32, 64, 72), 4, 0);
    dn_ctx_reset(ctx);

    /* groups: each filter sees only its own channel (ones and twos), plus its bias */
    x = tensor4(ctx, 1, 2, 2, 2, FLOATS(1, 1, 1, 1, 2, 2, 2, 2), false);
    w = tensor4(ctx, 2, 1, 1, 1, FLOATS(3, 5), false);
    dn_tensor *b = tensor1(ctx, 2, FLOATS(0.5f, -1), false);
    y = dn_conv2d(ctx, x, w, b, 1, 1, 0, 0, 1, 1, 2);
    CHECK_VALUES("groups", OUT(y), FLOATS(3.5f, 3.5f, 3.5f, 3.5f, 9, 9, 9, 9), 8, 0);
    dn_ctx_reset(ctx);

    /* Ho = floor((H + 2p - d(k-1) - 1) / s) + 1 = floor((7 + 2 - 2 - 1) / 3) + 1 = 3; Wo = (6 + 0 - 4 - 1)/1 + 1 = 2 */
    x = tensor4(ctx, 2, 3, 7, 6, NULL, false);
    w = tensor4(ctx, 5, 3, 2, 3, NULL, false);
    y = dn_conv2d(ctx, x, w, NULL, 3, 1, 1, 0, 2, 2, 1);
    CHECK(y && dn_tensor_dim(y, 0) == 2 && dn_tensor_dim(y, 1) == 5 && dn_tensor_dim(y, 2) == 3 &&
          dn_tensor_dim(y, 3) == 2);
    dn_ctx_free(ctx);
}

static void conv_errors(void)
{
    dn_ctx *ctx = dn_ctx_new();
    int64_t s3[] = {1, 4, 4};
    dn_tensor *x3 = NULL;
    CHECK_OK(dn_tensor_new(ctx, 3, s3, &x3));
    dn_tensor *w = tensor4(ctx, 2, 1, 3, 3, NULL, false);
    EXPECT_ERROR(ctx, dn_conv2d(ctx, x3, w, NULL, 1, 1, 0, 0, 1, 1, 1), DN_ERR_SHAPE, "conv2d", "[1, 4, 4]", "[2, 1, 3, 3]");

#define FRESH() x = tensor4(ctx, 1, 3, 4, 4, NULL, false), w = tensor4(ctx, 2, 3, 3, 3, NULL, false)
    dn_tensor *x;
    FRESH();
    int64_t s2[] = {2, 27};
    dn_tensor *w2 = NULL;
    CHECK_OK(dn_tensor_new(ctx, 2, s2, &w2));
    EXPECT_ERROR(ctx, dn_conv2d(ctx, x, w2, NULL, 1, 1, 0, 0, 1, 1, 1), DN_ERR_SHAPE, "conv2d", "[2, 27]", "[1, 3, 4, 4]");
    /* channels: 3 in the input, 2 * groups in the weight */
    FRESH();
    dn_tensor *wc = tensor4(ctx, 2, 2, 3, 3, NULL, false);
    EXPECT_ERROR(ctx, dn_conv2d(ctx, x, wc, NULL, 1, 1, 0, 0, 1, 1, 1), DN_ERR_SHAPE, "conv2d", "[1, 3, 4, 4]",
                 "[2, 2, 3, 3]");
    /* filters not divisible by groups */
    x = tensor4(ctx, 1, 4, 4, 4, NULL, false);
    w = tensor4(ctx, 3, 2, 3, 3, NULL, false);
    EXPECT_ERROR(ctx, dn_conv2d(ctx, x, w, NULL, 1, 1, 0, 0, 1, 1, 2), DN_ERR_SHAPE, "conv2d", "[3, 2, 3, 3]", "groups=2");
    /* kernel larger than the padded input, directly and through dilation */
    x = tensor4(ctx, 1, 1, 2, 2, NULL, false);
    w = tensor4(ctx, 1, 1, 3, 3, NULL, false);
    EXPECT_ERROR(ctx, dn_conv2d(ctx, x, w, NULL, 1, 1, 0, 0, 1, 1, 1), DN_ERR_SHAPE, "larger", "[1, 1, 2, 2]",
                 "[1, 1, 3, 3]");
    x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    w = tensor4(ctx, 1, 1, 3, 3, NULL, false);
    EXPECT_ERROR(ctx, dn_conv2d(ctx, x, w, NULL, 1, 1, 0, 0, 2, 2, 1), DN_ERR_SHAPE, "larger", "[1, 1, 4, 4]", "dilation");
    x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    w = tensor4(ctx, 1, 1, 3, 3, NULL, false);
    CHECK(dn_conv2d(ctx, x, w, NULL, 1, 1, 1, 1, 2, 2, 1) != NULL); /* padding makes room: 4 + 2 >= 5 */
    dn_ctx_reset(ctx);
    /* bias of the wrong size */
    FRESH();
    dn_tensor *b = tensor1(ctx, 3, FLOATS(0, 0, 0), false);
    EXPECT_ERROR(ctx, dn_conv2d(ctx, x, w, b, 1, 1, 0, 0, 1, 1, 1), DN_ERR_SHAPE, "conv2d", "bias", "[3]");
    /* attributes out of range */
    const int bad[][7] = {{0, 1, 0, 0, 1, 1, 1}, {1, -1, 0, 0, 1, 1, 1}, {1, 1, -1, 0, 1, 1, 1}, {1, 1, 0, -2, 1, 1, 1},
                          {1, 1, 0, 0, 0, 1, 1}, {1, 1, 0, 0, 1, 0, 1}, {1, 1, 0, 0, 1, 1, 0}};
    const char *names[] = {"stride_h", "stride_w", "pad_h", "pad_w", "dilation_h", "dilation_w", "groups"};
    for (int i = 0; i < 7; i++) {
        FRESH();
        const int *a = bad[i];
        EXPECT_ERROR(ctx, dn_conv2d(ctx, x, w, NULL, a[0], a[1], a[2], a[3], a[4], a[5], a[6]), DN_ERR_ARG, "conv2d",
                     names[i], "[1, 3, 4, 4]");
    }
    /* a fractional attribute through the registry, and a wrong number of inputs */
    FRESH();
    dn_tensor *in[] = {x, w};
    const dn_op *op = dn_op_find("conv2d");
    double attrs[] = {1.5, 1, 0, 0, 1, 1, 1, 0};
    EXPECT_ERROR(ctx, dn_op_apply(ctx, op, 2, in, attrs), DN_ERR_ARG, "conv2d", "stride_h", "1.5");
    FRESH();
    in[0] = x;
    EXPECT_ERROR(ctx, dn_op_apply(ctx, op, 1, in, NULL), DN_ERR_ARG, "conv2d", "inputs", NULL);
#undef FRESH
    dn_ctx_free(ctx);
}

/* ------------------------------------------------------------------ against a direct-loop reference */

typedef struct conv_cfg {
    int N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw, G;
    bool bias;
} conv_cfg;

static int64_t out_size(int n, int k, int s, int p, int d) { return (n + 2 * p - d * (k - 1) - 1) / s + 1; }

/* y, and the gradients for upstream dy, by the definition (double accumulators):
 *     y[n][f][oh][ow] = b[f] + Σ_{c in f's group} Σ_{i,j} w[f][c'][i][j] x[n][c][oh*sh - ph + i*dh][ow*sw - pw + j*dw] */
static void conv_reference(const conv_cfg *c, const float *x, const float *w, const float *b, const float *dy,
                           double *y, double *dx, double *dw, double *db)
{
    int64_t Ho = out_size(c->H, c->kh, c->sh, c->ph, c->dh), Wo = out_size(c->W, c->kw, c->sw, c->pw, c->dw);
    int Cg = c->C / c->G, Fg = c->F / c->G;
    memset(dx, 0, sizeof(double) * (size_t)(c->N * c->C * c->H * c->W));
    memset(dw, 0, sizeof(double) * (size_t)(c->F * Cg * c->kh * c->kw));
    memset(db, 0, sizeof(double) * (size_t)c->F);
    for (int n = 0; n < c->N; n++)
        for (int f = 0; f < c->F; f++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    int64_t o = ((n * (int64_t)c->F + f) * Ho + oh) * Wo + ow;
                    double acc = c->bias ? b[f] : 0.0, g = dy[o];
                    db[f] += g;
                    for (int cc = 0; cc < Cg; cc++) {
                        int ch = (f / Fg) * Cg + cc;
                        for (int i = 0; i < c->kh; i++)
                            for (int j = 0; j < c->kw; j++) {
                                int64_t ih = oh * c->sh - c->ph + i * c->dh, iw = ow * c->sw - c->pw + j * c->dw;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                int64_t xi = ((n * (int64_t)c->C + ch) * c->H + ih) * c->W + iw;
                                int64_t wi = ((f * (int64_t)Cg + cc) * c->kh + i) * c->kw + j;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * g;
                                dw[wi] += (double)x[xi] * g;
                            }
                    }
                    y[o] = acc;
                }
}

/* got matches want within rtol relative to want's largest magnitude (float32 sums of many products) */
static void check_close(int line, const char *what, const conv_cfg *c, const float *got, const double *want, int64_t n)
{
    if (!got) {
        t_fail(__FILE__, line, "%s missing: %s", what, dn_last_error());
        return;
    }
    double scale = 1e-30;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 2e-5 * scale)) {
            t_fail(__FILE__, line, "%s[%lld] = %.9g, reference %.9g (N=%d C=%d %dx%d F=%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d "
                   "groups=%d)", what, (long long)i, (double)got[i], want[i], c->N, c->C, c->H, c->W, c->F, c->kh,
                   c->kw, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw, c->G);
            return;
        }
}

static void conv_against_reference_case(const conv_cfg *c, uint64_t seed)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_rng r;
    dn_rng_seed(&r, seed);
    int Cg = c->C / c->G;
    dn_tensor *x = tensor4(ctx, c->N, c->C, c->H, c->W, NULL, true);
    dn_tensor *w = tensor4(ctx, c->F, Cg, c->kh, c->kw, NULL, true);
    float zero[64] = {0};
    dn_tensor *b = c->bias ? tensor1(ctx, c->F, zero, true) : NULL;
    if (!x || !w || (c->bias && !b)) {
        t_fail(__FILE__, __LINE__, "setup: %s", dn_last_error());
        dn_ctx_free(ctx);
        return;
    }
    CHECK_OK(dn_tensor_fill_uniform(x, &r, -1, 1));
    CHECK_OK(dn_tensor_fill_uniform(w, &r, -1, 1));
    if (b) CHECK_OK(dn_tensor_fill_uniform(b, &r, -1, 1));
    dn_tensor *y = dn_conv2d(ctx, x, w, b, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw, c->G);
    int64_t ny = y ? dn_tensor_numel(y) : 0, nx = dn_tensor_numel(x), nw = dn_tensor_numel(w);
    float *dy = malloc(sizeof(float) * (size_t)(ny + 1));
    double *ry = malloc(sizeof(double) * (size_t)(ny + 1)), *rdx = malloc(sizeof(double) * (size_t)nx);
    double *rdw = malloc(sizeof(double) * (size_t)nw), *rdb = malloc(sizeof(double) * (size_t)c->F);
    CHECK(y && dy && ry && rdx && rdw && rdb);
    if (y && dy && ry && rdx && rdw && rdb) {
        for (int64_t i = 0; i < ny; i++) dy[i] = dn_rng_normal(&r);
        CHECK_OK(dn_backward_with(ctx, y, dy));
        conv_reference(c, dn_tensor_data(x), dn_tensor_data(w), b ? dn_tensor_data(b) : NULL, dy, ry, rdx, rdw, rdb);
        check_close(__LINE__, "y", c, dn_tensor_data(y), ry, ny);
        check_close(__LINE__, "dx", c, dn_tensor_grad(x), rdx, nx);
        check_close(__LINE__, "dw", c, dn_tensor_grad(w), rdw, nw);
        if (b) check_close(__LINE__, "db", c, dn_tensor_grad(b), rdb, c->F);
    }
    free(dy);
    free(ry);
    free(rdx);
    free(rdw);
    free(rdb);
    dn_ctx_free(ctx);
}

static void conv_against_reference(void)
{
    static const conv_cfg cfgs[] = {
        /* N  C   H   W   F  kh kw sh sw ph pw dh dw G  bias */
        {2, 8, 12, 12, 16, 3, 3, 2, 2, 1, 1, 1, 1, 2, true},  /* the brief's case */
        {2, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
        {1, 6, 11, 9, 6, 3, 2, 1, 2, 2, 1, 2, 3, 6, true},    /* depthwise, dilated, uneven */
        {3, 4, 5, 7, 8, 1, 1, 1, 1, 0, 0, 1, 1, 2, true},     /* 1x1 with groups, 3 images per gemm */
        {2, 3, 9, 9, 4, 5, 5, 3, 3, 2, 2, 1, 1, 1, false},    /* large kernel, stride 3 */
        {1, 2, 6, 6, 4, 1, 1, 2, 2, 1, 1, 1, 1, 1, true},     /* 1x1 strided and padded: im2col */
        /* Ho*Wo >= 256: one image per gemm, so 1x1 takes the direct path and 3x3 writes y in place */
        {2, 3, 16, 16, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},
        {2, 4, 16, 16, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, false},
        /* 100 pixels: blocks of 3 images, the last one short (3 + 2) */
        {5, 2, 10, 10, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
        /* LeNet's first layer; and stride and dilation along the height only (the width keeps stride 1, which the
         * packed-column path needs) */
        {3, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1, 1, true},
        {2, 3, 9, 11, 5, 3, 2, 2, 1, 2, 1, 2, 1, 1, true},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) conv_against_reference_case(&cfgs[i], 7 + i);
}

/* Where it can (AVX-512, width stride 1) the forward gemm packs its columns straight from a padded copy of the
 * input, and with few filters the weight gradient runs as dot products from that copy; elsewhere im2col builds
 * the columns first.  The forward paths feed the same gemm arithmetic, so y (and dx) must agree bit for bit; dw
 * within rounding.  LeNet's two layers, a block of images per gemm with a short last block, groups, height
 * stride and dilation, a fused ReLU, at 1 and 2 threads (each path bit for bit the same at both). */
static void conv_packed_columns_match_im2col(void)
{
    static const conv_cfg cfgs[] = {
        {9, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1, 1, true},
        {7, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1, 1, true},
        {5, 4, 7, 9, 6, 3, 3, 2, 1, 1, 2, 2, 1, 2, false},
        {2, 32, 26, 26, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1, true},
    };
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        const conv_cfg *c = &cfgs[ci];
        float *out[2] = {NULL, NULL};
        int64_t ny = 0;
        for (int threads = 1; threads <= 2; threads++)
            for (int packed = 1; packed >= 0; packed--) {
                /* the packed path needs AVX-512; capped at AVX2 the im2col path runs, with the same FMA arithmetic.
                 * Without AVX-512 (an AVX2 machine, aarch64) both runs take the im2col path with the CPU's best
                 * kernels (portable C would round differently: no FMA), and the comparison below is skipped. */
                const dn_isa best = dn_get_isa();
                CHECK_OK(dn_set_isa(packed || best != DN_ISA_AVX512 ? best : DN_ISA_AVX2));
                dn_set_threads(threads);
                dn_ctx *ctx = dn_ctx_new();
                dn_rng r;
                dn_rng_seed(&r, 40 + ci);
                dn_tensor *x = tensor4(ctx, c->N, c->C, c->H, c->W, NULL, true);
                dn_tensor *w = tensor4(ctx, c->F, c->C / c->G, c->kh, c->kw, NULL, true);
                float zero[64] = {0};
                dn_tensor *b = c->bias ? tensor1(ctx, c->F, zero, true) : NULL;
                dn_tensor *y = NULL;
                if (x && w && (!c->bias || b)) {
                    CHECK_OK(dn_tensor_fill_uniform(x, &r, -1, 1));
                    CHECK_OK(dn_tensor_fill_uniform(w, &r, -1, 1));
                    if (b) CHECK_OK(dn_tensor_fill_uniform(b, &r, -1, 1));
                    dn_tensor *in[3] = {x, w, b};
                    const double attrs[] = {c->sh, c->sw, c->ph, c->pw, c->dh, c->dw, c->G, (double)(ci % 2)}; /* relu */
                    y = dn_op_apply(ctx, dn_op_find("conv2d"), b ? 3 : 2, in, attrs);
                }
                CHECK_MSG(y != NULL, "conv failed: %s", dn_last_error());
                if (y) {
                    /* y, then dx, dw (and db) after a backward pass, side by side */
                    const int64_t nx = dn_tensor_numel(x), nw = dn_tensor_numel(w);
                    ny = dn_tensor_numel(y) + nx + nw;
                    float *got = malloc(sizeof(float) * (size_t)ny), *seed = malloc(sizeof(float) * (size_t)ny);
                    if (!out[packed]) out[packed] = malloc(sizeof(float) * (size_t)ny);
                    for (int64_t i = 0; i < dn_tensor_numel(y); i++) seed[i] = dn_rng_normal(&r);
                    CHECK_OK(dn_backward_with(ctx, y, seed));
                    dn_tensor_read(y, got);
                    if (dn_tensor_grad(x)) memcpy(got + dn_tensor_numel(y), dn_tensor_grad(x), sizeof(float) * (size_t)nx);
                    if (dn_tensor_grad(w)) memcpy(got + dn_tensor_numel(y) + nx, dn_tensor_grad(w), sizeof(float) * (size_t)nw);
                    free(seed);
                    if (threads == 1) {
                        memcpy(out[packed], got, sizeof(float) * (size_t)ny);
                    } else {
                        CHECK_MSG(!memcmp(out[packed], got, sizeof(float) * (size_t)ny), "case %zu: 2 threads differ", ci);
                    }
                    free(got);
                }
                dn_ctx_free(ctx);
                CHECK_OK(dn_set_isa(best));
            }
        dn_set_threads(1);
        if (out[0] && out[1] && dn_get_isa() == DN_ISA_AVX512) {
            /* y and dx bit for bit; dw within rounding where few filters take the dot-product path (dn_conv_dw:
             * another summation order) */
            const int64_t nw = (int64_t)c->F * (c->C / c->G) * c->kh * c->kw, nyx = ny - nw;
            CHECK_MSG(!memcmp(out[0], out[1], sizeof(float) * (size_t)nyx), "case %zu: packed columns differ from "
                      "im2col (y or dx)", ci);
            /* maxima by comparison, not fmax: gcc 12.2 for aarch64 stops with an internal compiler error
             * (vect_transform_reduction) vectorising an fmax reduction over floats widened to double at -O3 */
            double scale = 1e-30, worst = 0;
            for (int64_t i = nyx; i < ny; i++) {
                const double v = fabs(out[0][i]);
                scale = v > scale ? v : scale;
            }
            for (int64_t i = nyx; i < ny; i++) {
                const double d = fabs(out[0][i] - out[1][i]) / scale;
                worst = d > worst ? d : worst;
            }
            CHECK_MSG(worst <= 1e-5, "case %zu: dw differs by %g of its largest value", ci, worst);
        }
        free(out[0]);
        free(out[1]);
    }
}

/* The same call twice gives bit-identical outputs and gradients; a strided (non-contiguous) input gives the
 * same answer as its contiguous copy; an input that needs no gradient gets none. */
static void conv_determinism_and_views(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_rng r;
    dn_rng_seed(&r, 3);
    float *first = NULL, *firstg = NULL;
    for (int run = 0; run < 2; run++) {
        dn_rng_seed(&r, 3);
        dn_tensor *x = tensor4(ctx, 2, 4, 6, 6, NULL, true), *w = tensor4(ctx, 6, 2, 3, 3, NULL, true);
        CHECK_OK(dn_tensor_fill_uniform(x, &r, -1, 1));
        CHECK_OK(dn_tensor_fill_uniform(w, &r, -1, 1));
        dn_tensor *y = dn_conv2d(ctx, x, w, NULL, 1, 1, 1, 1, 1, 1, 2);
        CHECK_OK(backward_sum(ctx, y));
        const float *yd = y ? dn_tensor_data(y) : NULL, *gx = dn_tensor_grad(x);
        size_t ny = y ? sizeof(float) * (size_t)dn_tensor_numel(y) : 0, nx = sizeof(float) * 288;
        if (!yd || !gx) {
            t_fail(__FILE__, __LINE__, "run %d: %s", run, dn_last_error());
        } else if (run == 0) {
            first = malloc(ny);
            firstg = malloc(nx);
            if (first) memcpy(first, yd, ny);
            if (firstg) memcpy(firstg, gx, nx);
        } else {
            CHECK(first && memcmp(first, yd, ny) == 0);
            CHECK(firstg && memcmp(firstg, gx, nx) == 0);
        }
        dn_ctx_reset(ctx);
    }
    free(first);
    free(firstg);

    /* a batch of 4 (one gemm for all: Ho*Wo = 36) gives each image exactly the output it gets alone */
    dn_rng_seed(&r, 5);
    dn_tensor *xb = tensor4(ctx, 4, 8, 6, 6, NULL, false), *wb = tensor4(ctx, 16, 8, 3, 3, NULL, false);
    float bias[16];
    for (int i = 0; i < 16; i++) bias[i] = 0.1f * (float)i - 0.7f;
    dn_tensor *bb = tensor1(ctx, 16, bias, false);
    CHECK_OK(dn_tensor_fill_uniform(xb, &r, -1, 1));
    CHECK_OK(dn_tensor_fill_uniform(wb, &r, -1, 1));
    dn_tensor *yb = dn_conv2d(ctx, xb, wb, bb, 1, 1, 1, 1, 1, 1, 1);
    for (int n = 0; n < 4 && yb; n++) {
        dn_tensor *xn = tensor4(ctx, 1, 8, 6, 6, dn_tensor_data(xb) + n * 288, false);
        dn_tensor *yn = dn_conv2d(ctx, xn, wb, bb, 1, 1, 1, 1, 1, 1, 1);
        CHECK(yn && memcmp(dn_tensor_data(yn), dn_tensor_data(yb) + n * 576, 576 * sizeof(float)) == 0);
    }
    dn_ctx_reset(ctx);

    /* a transposed view (H and W swapped) against the same data made contiguous */
    dn_rng_seed(&r, 4);
    dn_tensor *base = tensor4(ctx, 1, 2, 5, 4, NULL, true), *w = tensor4(ctx, 3, 2, 2, 2, NULL, false);
    CHECK_OK(dn_tensor_fill_uniform(base, &r, -1, 1));
    CHECK_OK(dn_tensor_fill_uniform(w, &r, -1, 1));
    dn_tensor *view = dn_transpose(ctx, base, 2, 3);
    dn_tensor *copy = dn_contiguous(ctx, view);
    dn_tensor *yv = dn_conv2d(ctx, view, w, NULL, 1, 2, 1, 0, 1, 1, 1);
    dn_tensor *yc = dn_conv2d(ctx, copy, w, NULL, 1, 2, 1, 0, 1, 1, 1);
    CHECK(yv && yc && dn_tensor_numel(yv) == dn_tensor_numel(yc));
    if (yv && yc) CHECK_VALUES("view", OUT(yv), OUT(yc), dn_tensor_numel(yv), 0);
    CHECK_OK(backward_sum(ctx, yv));
    CHECK(dn_tensor_grad(w) == NULL); /* w did not ask for a gradient */
    CHECK(dn_tensor_grad(base) != NULL);
    dn_ctx_free(ctx);
}

/* ------------------------------------------------------------------ pooling */

static void pool_values_and_ties(void)
{
    dn_ctx *ctx = dn_ctx_new();
    /* 2x2 windows on a 4x4 plane; every window ties */
    const float *tie = FLOATS(1, 1, 0, 2, 1, 0, 2, 2, 0, 3, 3, 1, 3, 3, 1, 1);
    dn_tensor *x = tensor4(ctx, 1, 1, 4, 4, tie, true);
    dn_tensor *y = dn_max_pool2d(ctx, x, 2, 2, 0, 0, 0, 0);
    CHECK_VALUES("max", OUT(y), FLOATS(1, 2, 3, 3), 4, 0);
    CHECK_OK(backward_sum(ctx, y));
    /* the first maximal element of each window in row-major order takes the whole gradient */
    CHECK_VALUES("dmax", GRAD(x), FLOATS(1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0), 16, 0);
    dn_ctx_reset(ctx);

    x = tensor4(ctx, 1, 1, 4, 4, tie, true);
    y = dn_min_pool2d(ctx, x, 2, 2, 0, 0, 0, 0);
    CHECK_VALUES("min", OUT(y), FLOATS(0, 0, 0, 1), 4, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_VALUES("dmin", GRAD(x), FLOATS(0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0), 16, 0);
    dn_ctx_reset(ctx);

    /* overlapping windows (stride 1) on one row of ties: windows {0,1} and {1,2} pick 0 and 1 */
    x = tensor4(ctx, 1, 1, 1, 3, FLOATS(2, 2, 2), true);
    y = dn_max_pool2d(ctx, x, 1, 2, 1, 1, 0, 0);
    CHECK_VALUES("overlap", OUT(y), FLOATS(2, 2), 2, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_VALUES("doverlap", GRAD(x), FLOATS(1, 1, 0), 3, 0);
    dn_ctx_reset(ctx);

    /* padding never wins: all-negative input, 3x3 windows with padding 1 */
    x = tensor4(ctx, 1, 1, 2, 2, FLOATS(-4, -3, -2, -1), true);
    y = dn_max_pool2d(ctx, x, 3, 3, 1, 1, 1, 1);
    CHECK_VALUES("max pad", OUT(y), FLOATS(-1, -1, -1, -1), 4, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_VALUES("dmax pad", GRAD(x), FLOATS(0, 0, 0, 4), 4, 0);
    dn_ctx_reset(ctx);

    /* average with padding divides by kh*kw (count_include_pad): 4 ones in every 3x3 window -> 4/9 */
    x = tensor4(ctx, 1, 1, 2, 2, FLOATS(1, 1, 1, 1), true);
    y = dn_avg_pool2d(ctx, x, 3, 3, 1, 1, 1, 1);
    CHECK_VALUES("avg pad", OUT(y), FLOATS(4 / 9.0f, 4 / 9.0f, 4 / 9.0f, 4 / 9.0f), 4, 1e-7);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_VALUES("davg pad", GRAD(x), FLOATS(4 / 9.0f, 4 / 9.0f, 4 / 9.0f, 4 / 9.0f), 4, 1e-7);
    dn_ctx_reset(ctx);

    /* global: one window per plane; the max tie goes to the first */
    x = tensor4(ctx, 1, 2, 2, 2, FLOATS(1, 3, 3, 0, -1, -2, -3, -4), true);
    y = dn_global_max_pool2d(ctx, x);
    CHECK(y && dn_tensor_ndim(y) == 4 && dn_tensor_dim(y, 2) == 1 && dn_tensor_dim(y, 3) == 1);
    CHECK_VALUES("gmax", OUT(y), FLOATS(3, -1), 2, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_VALUES("dgmax", GRAD(x), FLOATS(0, 1, 0, 0, 1, 0, 0, 0), 8, 0);
    dn_ctx_reset(ctx);
    x = tensor4(ctx, 1, 2, 2, 2, FLOATS(1, 3, 3, 0, -1, -2, -3, -4), true);
    y = dn_global_avg_pool2d(ctx, x);
    CHECK_VALUES("gavg", OUT(y), FLOATS(1.75f, -2.5f), 2, 0);
    CHECK_OK(backward_sum(ctx, y));
    CHECK_VALUES("dgavg", GRAD(x), FLOATS(0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f), 8, 0);
    dn_ctx_free(ctx);
}

static void pool_errors(void)
{
    dn_ctx *ctx = dn_ctx_new();
    int64_t s3[] = {1, 4, 4};
    dn_tensor *x3 = NULL;
    CHECK_OK(dn_tensor_new(ctx, 3, s3, &x3));
    EXPECT_ERROR(ctx, dn_max_pool2d(ctx, x3, 2, 2, 0, 0, 0, 0), DN_ERR_SHAPE, "max_pool2d", "[1, 4, 4]", NULL);
    CHECK_OK(dn_tensor_new(ctx, 3, s3, &x3));
    EXPECT_ERROR(ctx, dn_global_avg_pool2d(ctx, x3), DN_ERR_SHAPE, "global_avg_pool2d", "[1, 4, 4]", NULL);
    dn_tensor *x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    /* torch's rule: padding at most half the kernel */
    EXPECT_ERROR(ctx, dn_avg_pool2d(ctx, x, 3, 3, 1, 1, 2, 1), DN_ERR_ARG, "avg_pool2d", "half", "[1, 1, 4, 4]");
    x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    EXPECT_ERROR(ctx, dn_min_pool2d(ctx, x, 5, 2, 0, 0, 0, 0), DN_ERR_SHAPE, "min_pool2d", "larger", "[1, 1, 4, 4]");
    x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    EXPECT_ERROR(ctx, dn_max_pool2d(ctx, x, 0, 2, 0, 0, 0, 0), DN_ERR_ARG, "max_pool2d", "kernel_h", NULL);
    x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    EXPECT_ERROR(ctx, dn_max_pool2d(ctx, x, 2, 2, -1, 0, 0, 0), DN_ERR_ARG, "max_pool2d", "stride_h", NULL);
    x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    EXPECT_ERROR(ctx, dn_max_pool2d(ctx, x, 2, 2, 0, 0, 0, -1), DN_ERR_ARG, "max_pool2d", "pad_w", NULL);
    /* stride 0 is the kernel size: 4x4 -> 2x2; an explicit stride 1 -> 3x3 */
    x = tensor4(ctx, 1, 1, 4, 4, NULL, false);
    dn_tensor *y = dn_max_pool2d(ctx, x, 2, 2, 0, 0, 0, 0);
    CHECK(y && dn_tensor_dim(y, 2) == 2 && dn_tensor_dim(y, 3) == 2);
    y = dn_avg_pool2d(ctx, x, 2, 2, 1, 1, 0, 0);
    CHECK(y && dn_tensor_dim(y, 2) == 3 && dn_tensor_dim(y, 3) == 3);
    dn_ctx_free(ctx);
}

/* The 2x2 / stride 2 path (SIMD, four windows at a time, then a scalar tail) against a plain loop over the
 * rule, on planes full of ties, NaNs and infinities, with odd sizes (the last row and column are dropped) and
 * widths that leave a tail. */
static void pool_2x2_against_rule(void)
{
    /* Wo = 18: a full pass of 16 windows and a masked one of 2 in the AVX-512 kernel; W odd: a column left over */
    const int64_t N = 2, C = 3, H = 7, W = 37, Ho = H / 2, Wo = W / 2;
    static float data[2 * 3 * 7 * 37];
    uint64_t r = 12345;
    for (int64_t i = 0; i < N * C * H * W; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        const int k = (int)(r >> 59); /* 0..31 */
        data[i] = k < 2 ? NAN : k < 4 ? INFINITY : k < 6 ? -INFINITY : (float)(k % 3) - 1.0f;
    }
    /* every kernel this CPU has: AVX-512, and the SSE2 / portable one */
    const dn_isa isa = dn_get_isa();
    for (int run = 0; run < 4; run++) {
        const int is_max = run % 2;
        if (run >= 2) CHECK_OK(dn_set_isa(DN_ISA_PORTABLE));
        dn_ctx *ctx = dn_ctx_new();
        dn_tensor *x = tensor4(ctx, N, C, H, W, data, true);
        dn_tensor *y = is_max ? dn_max_pool2d(ctx, x, 2, 2, 0, 0, 0, 0) : dn_min_pool2d(ctx, x, 2, 2, 0, 0, 0, 0);
        CHECK_OK(backward_sum(ctx, y));
        const float *yv = OUT(y), *dx = GRAD(x);
        if (!yv || !dx) {
            dn_ctx_free(ctx);
            break;
        }
        static float want_dx[2 * 3 * 7 * 37];
        memset(want_dx, 0, sizeof want_dx);
        int bad = 0;
        for (int64_t pl = 0; pl < N * C; pl++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    float best = is_max ? -INFINITY : INFINITY;
                    int64_t at = pl * H * W + 2 * oh * W + 2 * ow;
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            const int64_t k = pl * H * W + (2 * oh + i) * W + 2 * ow + j;
                            const float v = data[k];
                            if ((is_max ? v > best : v < best) || isnan(v)) {
                                best = v;
                                at = k;
                            }
                        }
                    const float got = yv[(pl * Ho + oh) * Wo + ow];
                    if (!(got == best || (isnan(got) && isnan(best)))) bad++;
                    want_dx[at] += 1.0f;
                }
        CHECK(bad == 0);
        CHECK(memcmp(want_dx, dx, sizeof want_dx) == 0);
        dn_ctx_free(ctx);
    }
    CHECK_OK(dn_set_isa(isa));
}

void suite_conv(void)
{
    RUN(conv_identity_kernel);
    RUN(conv_edge_filter_and_geometry);
    RUN(conv_errors);
    RUN(conv_against_reference);
    RUN(conv_packed_columns_match_im2col);
    RUN(conv_determinism_and_views);
    RUN(pool_values_and_ties);
    RUN(pool_2x2_against_rule);
    RUN(pool_errors);
}
