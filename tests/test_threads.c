#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
/* The kernels' thread pool: results must be bit-identical for 1 and 2 threads (gemm on random shapes,
 * im2col/col2im, and a few training steps of an MLP and a CNN), the pool must survive concurrent callers,
 * shutdown and fork, and must leave nothing behind (the ASan build runs this suite with LeakSanitizer).
 * No test here looks at a clock. */
#include "test.h"

#include "internal.h"
#include "kernels/conv_kernels.h"
#include "kernels/threads.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t lcg = 0x2545f4914f6cdd1dull;

static float rnd(void) /* uniform in [-1, 1) */
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static int64_t rnd_int(int64_t lo, int64_t hi) /* in [lo, hi] */
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (int64_t)((lcg >> 33) % (uint64_t)(hi - lo + 1));
}

static float *random_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; p && i < n; i++) p[i] = rnd();
    return p;
}

/* C from the same inputs with `threads` threads; C starts as a copy of C0. */
static void gemm_with(int threads, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float beta, const float *C0, float *C, int64_t ldc)
{
    dn_set_threads(threads);
    memcpy(C, C0, (size_t)(M * ldc) * sizeof(float));
    dn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void threads_gemm_bit_identical(void)
{
    /* shapes big enough to be shared (>= 2 MFLOP), odd edges, every transpose variant, both cut directions */
    static const int64_t fixed[][3] = {{64, 512, 784}, {784, 512, 64}, {300, 40, 300}, {37, 1000, 91}, {1000, 17, 130},
                                       {7, 2000, 300}, {2000, 7, 300}, {150, 150, 600},
                                       /* one row, shared between threads: NN, TN, then NT (dot products) */
                                       {1, 3000, 700}, {1, 3000, 700}, {1, 3000, 700}};
    const int nfixed = (int)(sizeof fixed / sizeof fixed[0]);
    for (int t = 0; t < nfixed + 24; t++) {
        int64_t M, N, K;
        if (t < nfixed) {
            M = fixed[t][0], N = fixed[t][1], K = fixed[t][2];
        } else {
            M = rnd_int(1, 400), N = rnd_int(1, 400), K = rnd_int(1, 700);
        }
        const bool ta = t & 1, tb = (t >> 1) & 1;
        const float alpha = t % 3 == 0 ? 1.0f : 0.75f, beta = t % 4 == 0 ? 0.0f : t % 4 == 1 ? 1.0f : 0.3f;
        const int64_t pad = t % 3;
        const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        float *A = random_floats((size_t)((ta ? K : M) * lda)), *B = random_floats((size_t)((tb ? N : K) * ldb));
        float *C0 = random_floats((size_t)(M * ldc)), *C1 = malloc((size_t)(M * ldc) * sizeof(float)),
              *C2 = malloc((size_t)(M * ldc) * sizeof(float)), *C3 = malloc((size_t)(M * ldc) * sizeof(float));
        if (!A || !B || !C0 || !C1 || !C2 || !C3) {
            CHECK_MSG(0, "out of memory");
        } else {
            gemm_with(1, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C1, ldc);
            gemm_with(2, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C2, ldc);
            gemm_with(3, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C3, ldc); /* more parts than cores */
            CHECK_MSG(memcmp(C1, C2, (size_t)(M * ldc) * sizeof(float)) == 0,
                      "%c%c %lldx%lldx%lld: 2 threads differ from 1", ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)M,
                      (long long)N, (long long)K);
            CHECK_MSG(memcmp(C1, C3, (size_t)(M * ldc) * sizeof(float)) == 0,
                      "%c%c %lldx%lldx%lld: 3 threads differ from 1", ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)M,
                      (long long)N, (long long)K);
            /* and the shared product is still right (the serial one is checked by test_gemm) */
            double worst = 0;
            for (int64_t i = 0; i < M; i += 7)
                for (int64_t j = 0; j < N; j += 5) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                    double want = alpha * s + (beta == 0.0f ? 0.0 : beta * C0[i * ldc + j]);
                    worst = t_worse(worst, (float)fabs(want - C2[i * ldc + j]));
                }
            CHECK_MSG(worst < 1e-3 * (double)K, "%lldx%lldx%lld: error %g", (long long)M, (long long)N, (long long)K,
                      (double)worst);
        }
        free(A);
        free(B);
        free(C0);
        free(C1);
        free(C2);
        free(C3);
    }
    CHECK_MSG(dn_threads_workers() >= 1, "the pool never started a worker");
    dn_set_threads(0);
}

/* Which code computes an element depends on where it sits: products of 1 to 4 rows take an unpacked path,
 * whole 12 x 32 or 6 x 32 tiles an AVX-512 kernel where the CPU has one, edge tiles the AVX2 kernel.  All
 * must give the same bits, so a row (a sample) comes out the same whatever the batch around it, and a
 * column the same whatever the columns beside it.  The one exception, by design: a single row times a
 * transposed B (a dense layer on one sample) may be computed as dot products, in another fixed order, so
 * it is only checked to be close (and, above, to be the same for any thread count). */
static void threads_gemm_same_bits_on_every_path(void)
{
    for (int t = 0; t < 64; t++) {
        const bool ta = t & 1, tb = (t >> 1) & 1, cut_rows = t < 40;
        const int64_t big_m = 37, big_n = 100;
        /* the product of the first m rows (or n columns) alone, against the same rows (columns) of the big one */
        static const int64_t widths[] = {1, 5, 16, 17, 31, 33, 48, 64};
        const int64_t m = cut_rows ? 1 + t % 13 : big_m, n = cut_rows ? big_n : widths[t % 8];
        const int64_t K = t < 4 ? 784 : rnd_int(20, 700);
        /* beta 0.3: beta*C rounds, so a kernel that fused alpha*acc + beta*C into one FMA would show (0.5
         * would not) */
        const float alpha = t % 3 == 0 ? 1.0f : 0.75f, beta = t % 5 == 0 ? 0.0f : t % 5 == 1 ? 1.0f : 0.3f;
        const int64_t lda = (ta ? big_m : K) + t % 2, ldb = (tb ? K : big_n) + t % 3, ldc = big_n + 1;
        float *A = random_floats((size_t)((ta ? K : big_m) * lda));
        float *B = random_floats((size_t)((tb ? big_n : K) * ldb));
        float *C0 = random_floats((size_t)(big_m * ldc)), *Cbig = malloc((size_t)(big_m * ldc) * sizeof(float)),
              *Cpart = malloc((size_t)(big_m * ldc) * sizeof(float));
        if (!A || !B || !C0 || !Cbig || !Cpart) {
            CHECK_MSG(0, "out of memory");
        } else {
            for (int threads = 1; threads <= 2; threads++) {
                gemm_with(threads, ta, tb, big_m, big_n, K, alpha, A, lda, B, ldb, beta, C0, Cbig, ldc);
                /* op(A)'s first rows and op(B)'s first columns start at A and B whether transposed or not */
                gemm_with(threads, ta, tb, m, n, K, alpha, A, lda, B, ldb, beta, C0, Cpart, ldc);
                bool same = true;
                const bool dot_products = m == 1 && !ta && tb;
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        const float x = Cbig[i * ldc + j], y = Cpart[i * ldc + j];
                        const bool ok = dot_products ? fabsf(x - y) <= 1e-5f * (float)K : memcmp(&x, &y, sizeof x) == 0;
                        same = same && ok;
                    }
                CHECK_MSG(same, "%c%c %lldx%lldx%lld, %d thread(s): differs from the same part of %lldx%lldx%lld",
                          ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m, (long long)n, (long long)K, threads,
                          (long long)big_m, (long long)big_n, (long long)K);
            }
        }
        free(A);
        free(B);
        free(C0);
        free(Cbig);
        free(Cpart);
    }
    dn_set_threads(0);
}

/* im2col and col2im by their definitions (conv_kernels.h), with col2im's additions in the kernel's order
 * (c, i, j, oh, ow), so that the results must agree to the bit. */
static void naive_im2col(const dn_conv_geom *g, const float *x, float *col, int64_t ld)
{
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++)
                for (int64_t oh = 0; oh < g->Ho; oh++)
                    for (int64_t ow = 0; ow < g->Wo; ow++) {
                        const int64_t ih = oh * g->sh - g->ph + i * g->dh, iw = ow * g->sw - g->pw + j * g->dw;
                        const bool in = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
                        col[((c * g->kh + i) * g->kw + j) * ld + oh * g->Wo + ow] =
                            in ? x[(c * g->H + ih) * g->W + iw] : 0.0f;
                    }
}

static void naive_col2im(const dn_conv_geom *g, const float *col, int64_t ld, float *dx)
{
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++)
                for (int64_t oh = 0; oh < g->Ho; oh++)
                    for (int64_t ow = 0; ow < g->Wo; ow++) {
                        const int64_t ih = oh * g->sh - g->ph + i * g->dh, iw = ow * g->sw - g->pw + j * g->dw;
                        const float v = col[((c * g->kh + i) * g->kw + j) * ld + oh * g->Wo + ow];
                        if (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W) dx[(c * g->H + ih) * g->W + iw] += v;
                    }
}

static void im2col_bit_identical_on(dn_isa isa)
{
    /* a many-channel image (shared between threads) and a one-channel one (rows shared); fields in order
     * C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo */
    static const dn_conv_geom geoms[] = {
        {32, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 14, 14},
        {1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1, 28, 28},
        {9, 13, 11, 3, 2, 2, 1, 1, 0, 1, 2, 7, 9},
        {4, 30, 30, 3, 3, 1, 1, 2, 2, 1, 1, 32, 32}, /* rows longer than 16 */
        {3, 8, 40, 3, 5, 1, 1, 1, 2, 1, 1, 8, 40},   /* longer than 32 */
        {40, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 5, 5},    /* stride 2: the portable loops */
    };
    for (size_t t = 0; t < sizeof geoms / sizeof geoms[0]; t++) {
        const dn_conv_geom *g = &geoms[t];
        const int64_t rows = g->C * g->kh * g->kw, P = g->Ho * g->Wo, ld = P + 3, npix = g->C * g->H * g->W;
        float *x = random_floats((size_t)npix), *col1 = random_floats((size_t)(rows * ld));
        float *col2 = malloc((size_t)(rows * ld) * sizeof(float));
        float *dx1 = random_floats((size_t)npix), *dx2 = malloc((size_t)npix * sizeof(float));
        float *col3 = malloc((size_t)(rows * ld) * sizeof(float)), *dx3 = malloc((size_t)npix * sizeof(float));
        if (!x || !col1 || !col2 || !dx1 || !dx2 || !col3 || !dx3) {
            CHECK_MSG(0, "out of memory");
        } else {
            memcpy(col2, col1, (size_t)(rows * ld) * sizeof(float));
            memcpy(col3, col1, (size_t)(rows * ld) * sizeof(float));
            memcpy(dx2, dx1, (size_t)npix * sizeof(float));
            memcpy(dx3, dx1, (size_t)npix * sizeof(float));
            naive_im2col(g, x, col3, ld);
            naive_col2im(g, col3, ld, dx3);
            dn_set_threads(1);
            dn_im2col(g, x, col1, ld);
            dn_col2im(g, col1, ld, dx1);
            dn_set_threads(2);
            dn_im2col(g, x, col2, ld);
            dn_col2im(g, col2, ld, dx2);
            const char *name = dn_isa_name(isa);
            CHECK_MSG(memcmp(col1, col2, (size_t)(rows * ld) * sizeof(float)) == 0, "%s, geometry %zu: im2col differs",
                      name, t);
            CHECK_MSG(memcmp(dx1, dx2, (size_t)npix * sizeof(float)) == 0, "%s, geometry %zu: col2im differs", name, t);
            CHECK_MSG(memcmp(col1, col3, (size_t)(rows * ld) * sizeof(float)) == 0,
                      "%s, geometry %zu: im2col differs from its definition", name, t);
            CHECK_MSG(memcmp(dx1, dx3, (size_t)npix * sizeof(float)) == 0,
                      "%s, geometry %zu: col2im differs from its definition", name, t);
        }
        free(col3);
        free(dx3);
        free(x);
        free(col1);
        free(col2);
        free(dx1);
        free(dx2);
    }
    dn_set_threads(0);
}

/* Once per ISA this machine has: the stride-1 kernels (AVX-512: im2col and col2im; AVX2: col2im), then the loops. */
static void threads_im2col_bit_identical(void)
{
    static const dn_isa isas[] = {DN_ISA_AVX512, DN_ISA_AVX2, DN_ISA_PORTABLE};
    const dn_isa best = dn_get_isa();
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (!dn_isa_supported(isas[k])) continue;
        CHECK_OK(dn_set_isa(isas[k]));
        im2col_bit_identical_on(isas[k]);
    }
    CHECK_OK(dn_set_isa(best));
}

/* `steps` SGD-with-momentum steps of the model from cfg text on fixed random data, with `threads` threads;
 * the parameters afterwards go to *params (malloc'd). */
static size_t train_steps(const char *cfg, int threads, int steps, int64_t batch, float **params)
{
    *params = NULL;
    dn_set_threads(threads);
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg(cfg, "threads.cfg", &m, NULL));
    if (!m) return 0;
    int64_t in_shape[DN_MAX_DIMS + 1];
    int in_nd = dn_model_input_shape(m, in_shape + 1);
    in_shape[0] = batch;
    int64_t sample = 1;
    for (int i = 1; i <= in_nd; i++) sample *= in_shape[i];
    dn_optim_config oc;
    dn_optim_defaults(DN_SGD, &oc);
    oc.lr = 0.05f;
    oc.momentum = 0.9f;
    dn_optim *opt = NULL;
    size_t n = dn_model_param_count(m);
    CHECK_OK(dn_optim_new(&oc, n, NULL, &opt));
    dn_ctx *ctx = dn_ctx_new();
    lcg = 12345; /* the same data whatever the thread count */
    float *x = random_floats((size_t)(batch * sample)), *y = malloc((size_t)batch * sizeof(float));
    for (int64_t i = 0; y && i < batch; i++) y[i] = (float)rnd_int(0, 9);
    for (int s = 0; opt && ctx && x && y && s < steps; s++) {
        dn_ctx_reset(ctx);
        dn_tensor *xt = NULL, *yt = NULL;
        CHECK_OK(dn_tensor_from(ctx, in_nd + 1, in_shape, x, &xt));
        CHECK_OK(dn_tensor_from(ctx, 1, &batch, y, &yt));
        dn_tensor *loss = dn_softmax_cross_entropy(ctx, dn_model_forward(m, ctx, xt), yt, DN_REDUCE_MEAN);
        CHECK_MSG(loss != NULL, "step %d: %s", s, dn_last_error());
        if (!loss) break;
        dn_model_zero_grad(m);
        CHECK_OK(dn_backward(ctx, loss));
        dn_optim_step(opt, dn_model_params(m), dn_model_grads(m));
    }
    *params = malloc(n * sizeof(float));
    if (*params) memcpy(*params, dn_model_params(m), n * sizeof(float));
    free(x);
    free(y);
    dn_ctx_free(ctx);
    dn_optim_free(opt);
    dn_model_free(m);
    dn_set_threads(0);
    return n;
}

static void compare_training(const char *what, const char *cfg, int64_t batch)
{
    float *p1, *p2;
    size_t n1 = train_steps(cfg, 1, 3, batch, &p1), n2 = train_steps(cfg, 2, 3, batch, &p2);
    CHECK(n1 == n2 && n1 > 0 && p1 && p2);
    if (n1 == n2 && p1 && p2) {
        size_t differ = 0;
        for (size_t i = 0; i < n1; i++) differ += memcmp(&p1[i], &p2[i], sizeof(float)) != 0;
        CHECK_MSG(differ == 0, "%s: %zu of %zu weights differ between 1 and 2 threads", what, differ, n1);
    }
    free(p1);
    free(p2);
}

static void threads_training_bit_identical(void)
{
    /* every gemm of the dense layers (25 MFLOP and up) is shared between the threads */
    compare_training("MLP", "[net]\ninput = 784\nseed = 5\n[dense]\nunits = 256\nactivation = relu\n"
                            "[dense]\nunits = 128\nactivation = relu\n[dense]\nunits = 10\n", 64);
    /* the second convolution's gemms (32 x 392 x 144) are shared, and its im2col/col2im */
    compare_training("CNN", "[net]\ninput = 1, 28, 28\nseed = 5\n[convolutional]\nfilters = 16\nsize = 3\npad = 1\n"
                            "activation = relu\n[maxpool]\nsize = 2\n[convolutional]\nfilters = 32\nsize = 3\npad = 1\n"
                            "activation = relu\n[maxpool]\nsize = 2\n[dense]\nunits = 64\nactivation = relu\n"
                            "[dense]\nunits = 10\n", 16);
}

/* Every optimiser over 300,001 parameters (cut into parts at 2^17 and up, with a decay mask and a ragged end):
 * the same weights and state with 1 and with 2 threads. */
static void threads_optimiser_bit_identical(void)
{
    const size_t n = 300001;
    const dn_optim_kind kinds[] = {DN_SGD, DN_ADAM, DN_ADAMW, DN_RMSPROP, DN_ADAGRAD};
    lcg = 777;
    float *g = random_floats(n), *p0 = random_floats(n);
    uint8_t *mask = malloc(n);
    for (size_t i = 0; mask && i < n; i++) mask[i] = (uint8_t)(i % 3 != 0);
    for (size_t k = 0; g && p0 && mask && k < sizeof kinds / sizeof kinds[0]; k++) {
        float *res[2] = {NULL, NULL};
        for (int t = 0; t < 2; t++) {
            dn_set_threads(t + 1);
            dn_optim_config c;
            dn_optim_defaults(kinds[k], &c);
            c.lr = 0.01f;
            c.weight_decay = 0.1f;
            if (kinds[k] == DN_SGD || kinds[k] == DN_RMSPROP) c.momentum = 0.9f;
            if (kinds[k] == DN_ADAM) c.amsgrad = true;
            if (kinds[k] == DN_RMSPROP) c.centered = true;
            dn_optim *o = NULL;
            CHECK_OK(dn_optim_new(&c, n, mask, &o));
            res[t] = malloc(n * sizeof(float));
            if (o && res[t]) {
                memcpy(res[t], p0, n * sizeof(float));
                for (int s = 0; s < 3; s++) dn_optim_step(o, res[t], g);
            }
            dn_optim_free(o);
        }
        dn_set_threads(0);
        CHECK_MSG(res[0] && res[1] && !memcmp(res[0], res[1], n * sizeof(float)), "%s differs between 1 and 2 threads",
                  dn_optim_kind_name(kinds[k]));
        free(res[0]);
        free(res[1]);
    }
    free(g);
    free(p0);
    free(mask);
}

/* Two of the caller's own threads multiply at once: one gets the pool, the other runs its parts alone. */
typedef struct concurrent_job {
    const float *A, *B;
    float *C;
    int64_t n;
} concurrent_job;

static void *concurrent_main(void *p)
{
    concurrent_job *j = p;
    for (int r = 0; r < 4; r++)
        dn_sgemm(false, false, j->n, j->n, j->n, 1.0f, j->A, j->n, j->B, j->n, 0.0f, j->C, j->n);
    return NULL;
}

static void threads_concurrent_callers(void)
{
    const int64_t n = 160;
    float *A = random_floats((size_t)(n * n)), *B = random_floats((size_t)(n * n));
    float *want = malloc((size_t)(n * n) * sizeof(float)), *C[3];
    for (int i = 0; i < 3; i++) C[i] = malloc((size_t)(n * n) * sizeof(float));
    if (!A || !B || !want || !C[0] || !C[1] || !C[2]) {
        CHECK_MSG(0, "out of memory");
    } else {
        dn_set_threads(1);
        dn_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, want, n);
        dn_set_threads(2);
        pthread_t th[2];
        concurrent_job jobs[3] = {{A, B, C[0], n}, {A, B, C[1], n}, {A, B, C[2], n}};
        bool started[2];
        for (int i = 0; i < 2; i++) started[i] = pthread_create(&th[i], NULL, concurrent_main, &jobs[i]) == 0;
        concurrent_main(&jobs[2]);
        for (int i = 0; i < 2; i++)
            if (started[i]) pthread_join(th[i], NULL); /* each thread's scratch is freed as it exits */
        for (int i = 0; i < 3; i++)
            CHECK_MSG(memcmp(C[i], want, (size_t)(n * n) * sizeof(float)) == 0, "caller %d got a different product", i);
    }
    free(A);
    free(B);
    free(want);
    for (int i = 0; i < 3; i++) free(C[i]);
    dn_set_threads(0);
}

/* Shutting the pool down and using it again; and a forked child, which has no workers, must not wait for
 * them. */
static void threads_shutdown_and_fork(void)
{
    const int64_t n = 200;
    float *A = random_floats((size_t)(n * n)), *B = random_floats((size_t)(n * n));
    float *C1 = malloc((size_t)(n * n) * sizeof(float)), *C2 = malloc((size_t)(n * n) * sizeof(float));
    if (!A || !B || !C1 || !C2) {
        CHECK_MSG(0, "out of memory");
    } else {
        dn_set_threads(2);
        dn_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C1, n);
        CHECK(dn_threads_workers() >= 1);
        dn_threads_shutdown();
        CHECK(dn_threads_workers() == 0);
        dn_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C2, n);
        CHECK(dn_threads_workers() >= 1);
        CHECK(memcmp(C1, C2, (size_t)(n * n) * sizeof(float)) == 0);

        /* qemu-user 7.2 aborts in a child forked from a process whose threads are running (an assertion in its
         * TCG code, not ours): under emulation (make test-aarch64 sets DN_RUN_PREFIX) the fork half is left out */
        const char *emu = getenv("DN_RUN_PREFIX");
        if (emu && *emu) {
            printf("    fork check not run under emulation (%s)\n", emu);
        } else {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                alarm(30); /* a child stuck waiting for workers it does not have dies instead of hanging the suite */
                float *C3 = malloc((size_t)(n * n) * sizeof(float));
                if (!C3) _exit(3);
                dn_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C3, n);
                int same = memcmp(C1, C3, (size_t)(n * n) * sizeof(float)) == 0;
                free(C3);
                free(A); /* the child's copies too: a leak checker (valgrind) looks at the child as well */
                free(B);
                free(C1);
                free(C2);
                dn_threads_shutdown();
                _exit(same ? 0 : 1);
            }
            CHECK(pid > 0);
            int status = 0;
            if (pid > 0) {
                CHECK(waitpid(pid, &status, 0) == pid);
                CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child: status %d", status);
            }
        }
    }
    free(A);
    free(B);
    free(C1);
    free(C2);
    dn_set_threads(0);
}

static long n_allocs, n_frees;
static void *count_alloc(size_t n, void *u) { (void)u; n_allocs++; return malloc(n); }
static void *count_realloc(void *p, size_t n, void *u) { (void)u; n_allocs += p == NULL; return realloc(p, n); }
static void count_free(void *p, void *u) { (void)u; n_frees += p != NULL; free(p); }

/* Everything the pool takes from the library allocator (each worker's buffer, the caller's buffer) goes
 * back to it at shutdown, which also runs at exit. */
static void threads_memory_returned(void)
{
    const int64_t n = 128;
    float *A = random_floats((size_t)(n * n)), *B = random_floats((size_t)(n * n)), *C = malloc((size_t)(n * n) * 4);
    if (!A || !B || !C) {
        CHECK_MSG(0, "out of memory");
    } else {
        dn_threads_shutdown(); /* start from nothing, so every block below comes from the counting allocator */
        dn_allocator counting = {count_alloc, count_realloc, count_free, NULL};
        n_allocs = n_frees = 0;
        dn_set_allocator(&counting);
        dn_set_threads(2);
        dn_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        long taken = n_allocs;
        dn_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        CHECK_MSG(n_allocs == taken, "a second product allocated %ld blocks", n_allocs - taken);
        dn_threads_shutdown();
        dn_set_allocator(NULL);
        CHECK_MSG(taken >= 2, "expected a buffer for the worker and one for the caller, got %ld", taken);
        CHECK_MSG(n_frees == n_allocs, "%ld blocks allocated, %ld freed", n_allocs, n_frees);
    }
    free(A);
    free(B);
    free(C);
    dn_set_threads(0);
}

/* By default the kernels use every core the process may run on (or DN_THREADS); a trainer's own count holds only
 * while it works, seen from inside its batches, and the process's setting is back afterwards. */
static void record_threads(void *user, int epoch, int64_t batch, int64_t batches, double loss)
{
    (void)epoch, (void)batch, (void)batches, (void)loss;
    *(int *)user = dn_get_threads();
}

static void threads_default_and_trainer_scope(void)
{
    dn_set_threads(0);
    cpu_set_t set;
    const char *env = getenv("DN_THREADS");
    int want = env && atoi(env) > 0 ? atoi(env) : sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    if (want > DN_MAX_THREADS) want = DN_MAX_THREADS;
    CHECK_MSG(dn_get_threads() == want, "default threads %d, expected %d", dn_get_threads(), want);

    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 4\nbatch = 4\nepochs = 1\nthreads = 1\n[dense]\nunits = 2\n", "scope.cfg",
                               &m, NULL));
    float x[32], y[8];
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < 8; i++) y[i] = (float)(i % 2);
    dn_dataset d = {.n = 8, .ndim = 1, .shape = {4}, .x = x, .y = y, .n_classes = 2};
    dn_train_config c;
    dn_train_defaults(&c);
    c.batch = 4;
    c.epochs = 1;
    c.threads = 1;
    c.validation = 0;
    dn_trainer *t = NULL;
    dn_set_threads(3);
    if (m) CHECK_OK(dn_trainer_new(m, &c, &d, NULL, &t));
    int inside = 0;
    if (t) {
        dn_trainer_set_batch_callback(t, record_threads, &inside);
        dn_epoch_stats st;
        CHECK_OK(dn_trainer_epoch(t, &st));
    }
    CHECK_MSG(inside == 1, "the trainer ran its batches with %d threads, not its own 1", inside);
    CHECK_MSG(dn_get_threads() == 3 && dn_threads_requested() == 3, "after training the process has %d threads, not 3",
              dn_get_threads());
    dn_trainer_free(t);
    dn_model_free(m);
    dn_set_threads(0);
}

void suite_threads(void)
{
    RUN(threads_default_and_trainer_scope);
    RUN(threads_memory_returned);
    RUN(threads_gemm_bit_identical);
    RUN(threads_gemm_same_bits_on_every_path);
    RUN(threads_im2col_bit_identical);
    RUN(threads_training_bit_identical);
    RUN(threads_optimiser_bit_identical);
    RUN(threads_concurrent_callers);
    RUN(threads_shutdown_and_fork);
}
