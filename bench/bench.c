/* dendrite's side of `make bench` (bench/run.sh runs it next to bench/bench_torch.py and prints the table).
 *
 *   bench [--data DIR] [--text FILE] CASE THREADS
 *
 * CASE is one of
 *   sgemm            GFLOP/s of C = A B (row-major, no transposes, beta 0) through dn_matmul, for each shape
 *   sgemm-openblas   the same products through OpenBLAS's cblas_sgemm (dlopen'ed: the build never needs it)
 *   fma-peak         GFLOP/s of a register-only loop of independent FMAs (AVX2, and AVX-512 when present)
 *   cores            how many cores' worth of CPU two busy threads get right now (2.0 on an idle 2-core
 *                    machine; less when other work, or a container's CPU limit, shares the cores): the
 *                    2-thread figures mean little when this is far below 2
 *   mlp              training samples/s over one MNIST epoch (after 5 warm-up batches): 784-512-256-10,
 *                    ReLU, batch 64
 *   lenet            training samples/s, LeNet-5, batch 64: 10 warm-up batches, then 200
 *   cnn              training samples/s, PyTorch's MNIST example CNN, batch 64: 3 warm-up batches, then 50
 *   infer-mlp        batch-1 inference latency of the MLP, median microseconds over 1000 calls
 *   infer-lenet      the same for LeNet-5
 *   conv             GFLOP/s of each convolution layer of the example networks (batch 64: LeNet's two, the CNN's
 *                    three, the ResNet's stem and a strided 3x3) through dn_conv2d: "fwd" the forward pass
 *                    alone (no tape), "train" forward + backward (dx and dw: three products' worth of FLOPs);
 *                    and, beside each, the share of this ISA's FMA peak (a "peak" line per ISA, from the
 *                    same register-only loop as fma-peak)
 *   lstm, gru        training tokens/s of a character language model on --text (data/fortunes.txt): byte
 *                    embedding 64, one LSTM (GRU) layer of 256, a dense layer to the vocabulary at every
 *                    step; Adam lr 0.002, batch 32 x 64 steps: 3 warm-up batches, then 60
 * The MNIST training cases use softmax cross-entropy and SGD (lr 0.01, momentum 0.9) on the real MNIST
 * training images scaled to [0, 1], in file order (--data names the folder of the IDX files).  Without the
 * text file the character cases print a "skipped" line to stderr and exit 0 with no result.
 *
 * Output: one line per figure, "result CASE IMPL THREADS VALUE UNIT"; for sgemm and training, also a
 * "cpuresult" line with the rate per CPU second (the steadier figure for one thread on a busy machine);
 * then for training cases a line
 * "memory CASE IMPL THREADS PEAK_KIB DATA_KIB": the process's peak resident memory (VmHWM) and the
 * resident memory right after the data was loaded.  Only the public header is used. */
#define _POSIX_C_SOURCE 200809L
#include "dendrite.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#else
#define BENCH_X86 0
#endif

static const char *data_dir = "data/mnist";
static const char *text_path = "data/fortunes.txt";
static int threads = 1;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds used by the whole process.  With one thread, a rate per CPU second does not drop when other
 * work takes the core away for a while, so it is the steadier figure on a shared machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, dn_last_error());
    exit(1);
}

#define OK(expr)                                                                                            \
    do {                                                                                                    \
        if ((expr) != DN_OK) die(#expr);                                                                    \
    } while (0)

/* A field of /proc/self/status in KiB (VmHWM: peak resident, VmRSS: now); -1 where there is no /proc. */
static long proc_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            v = atol(line + n + 1);
            break;
        }
    fclose(f);
    return v;
}

static float *random_floats(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof(float));
    if (!p) die("malloc");
    dn_rng r;
    dn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = dn_rng_uniform(&r) * 2.0f - 1.0f;
    return p;
}

/* ------------------------------------------------------------------ sgemm */

static const int64_t shapes[][3] = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}, {64, 512, 784},
                                    {64, 256, 512},  {784, 512, 64},  {25088, 64, 288}};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

typedef void (*gemm_fn)(void *state, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C);

/* GFLOP/s of one shape: calls are repeated until a timing spans >= 0.1 s; median of 5 timings.  *per_cpu
 * gets the same per CPU second (see cpu_now). */
static double time_gemm(gemm_fn fn, void *state, int64_t M, int64_t N, int64_t K, double *per_cpu)
{
    float *A = random_floats((size_t)(M * K), 1), *B = random_floats((size_t)(K * N), 2);
    float *C = random_floats((size_t)(M * N), 3);
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    int reps = 1;
    for (;;) {
        double t0 = now();
        for (int r = 0; r < reps; r++) fn(state, M, N, K, A, B, C);
        if (now() - t0 >= 0.1 || reps >= (1 << 20)) break;
        reps *= 2;
    }
    double g[5], gc[5];
    for (int s = 0; s < 5; s++) {
        double t0 = now(), c0 = cpu_now();
        for (int r = 0; r < reps; r++) fn(state, M, N, K, A, B, C);
        g[s] = flops * reps / (now() - t0) * 1e-9;
        gc[s] = flops * reps / (cpu_now() - c0) * 1e-9;
    }
    free(A);
    free(B);
    free(C);
    *per_cpu = median(gc, 5);
    return median(g, 5);
}

/* dendrite through the public API: dn_matmul of two heap tensors into a reused context (no tape), which is
 * dn_sgemm plus a few hundred nanoseconds of bookkeeping. */
typedef struct dn_gemm_state {
    dn_ctx *ctx;
    dn_tensor *a, *b;         /* copies of A and B as tensors */
    const float *from_a, *from_b;
} dn_gemm_state;

static void dn_gemm(void *state, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C)
{
    dn_gemm_state *s = state;
    if (A != s->from_a || B != s->from_b) { /* wrap the arrays once per shape (a copy, outside the timings) */
        dn_tensor_free(s->a);
        dn_tensor_free(s->b);
        OK(dn_tensor_from(NULL, 2, (int64_t[]){M, K}, A, &s->a));
        OK(dn_tensor_from(NULL, 2, (int64_t[]){K, N}, B, &s->b));
        s->from_a = A;
        s->from_b = B;
    }
    dn_ctx_reset(s->ctx);
    if (!dn_matmul(s->ctx, s->a, s->b)) die("dn_matmul"); /* the product lands in the context's arena */
    (void)C;
}

typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float beta, float *C, int ldc);
typedef struct blas_state {
    cblas_sgemm_fn sgemm;
} blas_state;

static void blas_gemm(void *state, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C)
{
    blas_state *s = state;
    enum { RowMajor = 101, NoTrans = 111 }; /* cblas.h's values */
    s->sgemm(RowMajor, NoTrans, NoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B, (int)N, 0.0f, C, (int)N);
}

static void case_sgemm(void)
{
    dn_gemm_state s = {dn_ctx_new(), NULL, NULL, NULL, NULL};
    if (!s.ctx) die("dn_ctx_new");
    dn_ctx_set_grad(s.ctx, false);
    for (int i = 0; i < N_SHAPES; i++) {
        double gc, g = time_gemm(dn_gemm, &s, shapes[i][0], shapes[i][1], shapes[i][2], &gc);
        printf("result sgemm-%lldx%lldx%lld dendrite %d %.2f GFLOP/s\n", (long long)shapes[i][0],
               (long long)shapes[i][1], (long long)shapes[i][2], threads, g);
        printf("cpuresult sgemm-%lldx%lldx%lld dendrite %d %.2f GFLOP/s\n", (long long)shapes[i][0],
               (long long)shapes[i][1], (long long)shapes[i][2], threads, gc);
        fflush(stdout);
    }
    dn_tensor_free(s.a);
    dn_tensor_free(s.b);
    dn_ctx_free(s.ctx);
}

static void case_sgemm_openblas(void)
{
    /* DN_OPENBLAS names a library; else Debian's OpenMP build, its pthreads build, then the loader's choice */
    const char *tries[] = {getenv("DN_OPENBLAS"), "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
                           "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0", "libopenblas.so.0",
                           "libopenblas.so"};
    void *lib = NULL;
    const char *used = NULL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0] && !lib; i++)
        if (tries[i] && (lib = dlopen(tries[i], RTLD_NOW | RTLD_LOCAL))) used = tries[i];
    if (!lib) {
        printf("skip sgemm-openblas: no libopenblas found (install libopenblas0 or set DN_OPENBLAS)\n");
        return;
    }
    blas_state s;
    *(void **)&s.sgemm = dlsym(lib, "cblas_sgemm"); /* object-to-function pointer, the way POSIX spells it */
    void (*set_threads)(int);
    *(void **)&set_threads = dlsym(lib, "openblas_set_num_threads");
    char *(*corename)(void);
    *(void **)&corename = dlsym(lib, "openblas_get_corename");
    if (!s.sgemm) {
        printf("skip sgemm-openblas: %s has no cblas_sgemm\n", used);
        return;
    }
    if (set_threads) set_threads(threads);
    printf("info openblas %s core=%s\n", used, corename ? corename() : "?");
    for (int i = 0; i < N_SHAPES; i++) {
        double gc, g = time_gemm(blas_gemm, &s, shapes[i][0], shapes[i][1], shapes[i][2], &gc);
        printf("result sgemm-%lldx%lldx%lld openblas %d %.2f GFLOP/s\n", (long long)shapes[i][0],
               (long long)shapes[i][1], (long long)shapes[i][2], threads, g);
        printf("cpuresult sgemm-%lldx%lldx%lld openblas %d %.2f GFLOP/s\n", (long long)shapes[i][0],
               (long long)shapes[i][1], (long long)shapes[i][2], threads, gc);
        fflush(stdout);
    }
    /* not dlclose'd: an OpenMP runtime does not like being unloaded under its own threads */
}

/* ------------------------------------------------------------------ FMA peak
 *
 * 12 independent accumulator chains (as many as the 6 x 16 gemm tile has), 2 FMAs per chain per turn: enough
 * to cover the FMA latency at 2 FMAs per cycle.  The result is printed so the loop is not optimised away. */
#if BENCH_X86
/* The chains are named variables, not an array, so that they certainly live in registers. */
#define FMA12(fma)                                                                                          \
    do {                                                                                                    \
        c0 = fma(c0, a, b), c1 = fma(c1, a, b), c2 = fma(c2, a, b), c3 = fma(c3, a, b);                     \
        c4 = fma(c4, a, b), c5 = fma(c5, a, b), c6 = fma(c6, a, b), c7 = fma(c7, a, b);                     \
        c8 = fma(c8, a, b), c9 = fma(c9, a, b), c10 = fma(c10, a, b), c11 = fma(c11, a, b);                 \
    } while (0)

__attribute__((target("avx2,fma"))) static double fma_peak_avx2(long iters)
{
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(0), c1 = _mm256_set1_ps(1), c2 = _mm256_set1_ps(2), c3 = _mm256_set1_ps(3);
    __m256 c4 = _mm256_set1_ps(4), c5 = _mm256_set1_ps(5), c6 = _mm256_set1_ps(6), c7 = _mm256_set1_ps(7);
    __m256 c8 = _mm256_set1_ps(8), c9 = _mm256_set1_ps(9), c10 = _mm256_set1_ps(10), c11 = _mm256_set1_ps(11);
    double t0 = now();
    for (long it = 0; it < iters; it++) FMA12(_mm256_fmadd_ps);
    double t = now() - t0;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    if (out[0] == 12345.0f) printf("%g\n", (double)out[0]); /* keeps the loop alive */
    return 2.0 * 8 * 12 * (double)iters / t * 1e-9;
}

__attribute__((target("avx512f"))) static double fma_peak_avx512(long iters)
{
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2), c3 = _mm512_set1_ps(3);
    __m512 c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5), c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7);
    __m512 c8 = _mm512_set1_ps(8), c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    double t0 = now();
    for (long it = 0; it < iters; it++) FMA12(_mm512_fmadd_ps);
    double t = now() - t0;
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    if (_mm512_reduce_add_ps(s) == 12345.0f) printf("x\n");
    return 2.0 * 16 * 12 * (double)iters / t * 1e-9;
}
#endif

/* The FMA peak of the instruction set in force (DN_ISA caps it): GFLOP/s of one core, median of 5. */
static double isa_fma_peak(void)
{
    double g[5] = {0};
#if BENCH_X86
    const dn_isa isa = dn_get_isa();
    for (int i = 0; i < 5; i++)
        g[i] = isa == DN_ISA_AVX512 ? fma_peak_avx512(20000000) : isa == DN_ISA_AVX2 ? fma_peak_avx2(20000000) : 0;
#endif
    return median(g, 5);
}

/* One conv layer, batch 64: GFLOP/s of the forward pass and of forward + backward, repeated until a timing spans
 * 0.2 s, median of 5. */
static void conv_layer(const char *name, int C, int H, int W, int F, int k, int stride, int pad, double peak)
{
    const int N = 64, Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    const double fwd_flops = 2.0 * N * F * C * k * k * (double)Ho * Wo;
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x, *w, *b;
    dn_rng r;
    dn_rng_seed(&r, 5);
    OK(dn_tensor_new(NULL, 4, (int64_t[]){N, C, H, W}, &x));
    OK(dn_tensor_new(NULL, 4, (int64_t[]){F, C, k, k}, &w));
    OK(dn_tensor_new(NULL, 1, (int64_t[]){F}, &b));
    OK(dn_tensor_fill_uniform(x, &r, -1, 1));
    OK(dn_tensor_fill_uniform(w, &r, -0.1f, 0.1f));
    OK(dn_tensor_fill_uniform(b, &r, -0.1f, 0.1f));
    float *seed = random_floats((size_t)N * F * Ho * Wo, 9);
    for (int train = 0; train <= 1; train++) {
        OK(dn_tensor_set_requires_grad(x, train));
        OK(dn_tensor_set_requires_grad(w, train));
        OK(dn_tensor_set_requires_grad(b, train));
        dn_ctx_set_grad(ctx, train);
        double g[5];
        int reps = 1;
        for (int s = -1; s < 5; s++) { /* s = -1: doubling the repetitions until a timing spans 0.2 s */
            double t0 = now();
            for (int i = 0; i < reps; i++) {
                dn_ctx_reset(ctx);
                dn_tensor *y = dn_conv2d(ctx, x, w, b, stride, stride, pad, pad, 1, 1, 1);
                if (!y) die("dn_conv2d");
                if (train) OK(dn_backward_with(ctx, y, seed));
            }
            const double t = now() - t0;
            if (s < 0 && t < 0.2 && reps < (1 << 20)) {
                reps *= 2;
                s--;
            } else if (s >= 0) {
                g[s] = fwd_flops * (train ? 3 : 1) * reps / t * 1e-9;
            }
        }
        const double m = median(g, 5);
        printf("result conv-%s-%s dendrite %d %.2f GFLOP/s\n", name, train ? "train" : "fwd", threads, m);
        if (peak > 0) printf("share conv-%s-%s %d %.0f%% of %.1f GFLOP/s per core\n", name, train ? "train" : "fwd",
                             threads, 100.0 * m / (peak * threads), peak);
    }
    free(seed);
    dn_tensor_free(x);
    dn_tensor_free(w);
    dn_tensor_free(b);
    dn_ctx_free(ctx);
}

static void case_conv(void)
{
    const double peak = isa_fma_peak();
    if (peak > 0) printf("peak %s %.1f GFLOP/s per core\n", dn_isa_name(dn_get_isa()), peak);
    conv_layer("lenet1-1x28-6x5", 1, 28, 28, 6, 5, 1, 2, peak);
    conv_layer("lenet2-6x14-16x5", 6, 14, 14, 16, 5, 1, 0, peak);
    conv_layer("cnn1-1x28-32x3", 1, 28, 28, 32, 3, 1, 1, peak);
    conv_layer("cnn2-32x14-64x3", 32, 14, 14, 64, 3, 1, 1, peak);
    conv_layer("cnn3-64x7-128x3", 64, 7, 7, 128, 3, 1, 1, peak);
    conv_layer("resnet-32x28-32x3", 32, 28, 28, 32, 3, 1, 1, peak);
    conv_layer("resnet-s2-32x28-64x3", 32, 28, 28, 64, 3, 2, 1, peak);
}

static void case_fma_peak(void)
{
#if BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        double g[5];
        for (int i = 0; i < 5; i++) g[i] = fma_peak_avx2(20000000);
        printf("result fma-peak-avx2 dendrite 1 %.2f GFLOP/s\n", median(g, 5));
    }
    if (__builtin_cpu_supports("avx512f")) {
        double g[5];
        for (int i = 0; i < 5; i++) g[i] = fma_peak_avx512(20000000);
        printf("result fma-peak-avx512 dendrite 1 %.2f GFLOP/s\n", median(g, 5));
    }
#else
    printf("skip fma-peak: not an x86 machine\n");
#endif
}

/* ------------------------------------------------------------------ CPU available */

static void *busy_loop(void *arg)
{
    volatile double x = 0;
    for (long i = 0; i < 100000000L; i++) x += 1e-9;
    *(double *)arg = x;
    return NULL;
}

static void case_cores(void)
{
    double sink[2];
    double t0 = now();
    busy_loop(&sink[0]);
    const double one = now() - t0;
    pthread_t th;
    t0 = now();
    const bool started = pthread_create(&th, NULL, busy_loop, &sink[1]) == 0;
    busy_loop(&sink[0]);
    if (started) pthread_join(th, NULL);
    const double two = now() - t0;
    printf("result cores dendrite 2 %.2f cores\n", started ? 2.0 * one / two : 1.0);
}

/* ------------------------------------------------------------------ models */

static dn_model *build_mlp(void)
{
    dn_model *m = NULL;
    OK(dn_model_new(1, (int64_t[]){784}, 1, &m));
    OK(dn_model_add_dense(m, 512, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_dense(m, 256, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_dense(m, 10, DN_INIT_DEFAULT, true));
    return m;
}

/* LeNet-5 with ReLU and max pooling: conv5x5 1->6 pad 2, pool; conv5x5 6->16, pool; 400-120-84-10. */
static dn_model *build_lenet(void)
{
    dn_model *m = NULL;
    OK(dn_model_new(3, (int64_t[]){1, 28, 28}, 1, &m));
    OK(dn_model_add_conv2d(m, 6, 5, 5, 1, 2, 1, 1, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_pool2d(m, "max", 2, 0, 0));
    OK(dn_model_add_conv2d(m, 16, 5, 5, 1, 0, 1, 1, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_pool2d(m, "max", 2, 0, 0));
    OK(dn_model_add_dense(m, 120, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_dense(m, 84, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_dense(m, 10, DN_INIT_DEFAULT, true));
    return m;
}

/* pytorch/examples mnist/main.py: conv3x3 1->32, ReLU, conv3x3 32->64, ReLU, maxpool 2, dropout 0.25,
 * 9216-128, ReLU, dropout 0.5, 128-10. */
static dn_model *build_cnn(void)
{
    dn_model *m = NULL;
    OK(dn_model_new(3, (int64_t[]){1, 28, 28}, 1, &m));
    OK(dn_model_add_conv2d(m, 32, 3, 3, 1, 0, 1, 1, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_conv2d(m, 64, 3, 3, 1, 0, 1, 1, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_pool2d(m, "max", 2, 0, 0));
    OK(dn_model_add_dropout(m, 0.25f, false));
    OK(dn_model_add_dense(m, 128, DN_INIT_DEFAULT, true));
    OK(dn_model_add_activation(m, "relu", NULL));
    OK(dn_model_add_dropout(m, 0.5f, false));
    OK(dn_model_add_dense(m, 10, DN_INIT_DEFAULT, true));
    return m;
}

static dn_dataset *load_mnist(void)
{
    char images[1024], labels[1024];
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte", data_dir);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", data_dir);
    dn_dataset *d = NULL;
    if (dn_dataset_load_idx_compact(images, labels, 1.0f / 255.0f, &d) != DN_OK) { /* bytes: 47 MB, not 188 */
        fprintf(stderr, "bench: cannot load MNIST from %s (%s); fetch it with scripts/fetch-mnist.sh or pass --data\n",
                data_dir, dn_last_error());
        exit(1);
    }
    return d;
}

/* ------------------------------------------------------------------ training */

/* Trains on batches of 64 in file order: `warmup` untimed batches, then `batches` timed ones (0: one epoch,
 * wrapping round to the start).  Prints samples/s and the memory line. */
static void train_case(const char *name, dn_model *(*build)(void), int warmup, int batches)
{
    dn_dataset *d = load_mnist();
    long data_kib = proc_kib("VmRSS");
    dn_model *m = build();
    dn_model_set_training(m, true);
    dn_optim_config oc;
    dn_optim_defaults(DN_SGD, &oc);
    oc.lr = 0.01f;
    oc.momentum = 0.9f;
    dn_optim *opt = NULL;
    OK(dn_optim_new(&oc, dn_model_param_count(m), NULL, &opt));
    dn_ctx *ctx = dn_ctx_new();
    if (!ctx) die("dn_ctx_new");
    const int64_t B = 64, nbatches = (d->n + B - 1) / B;
    int64_t xshape[DN_MAX_DIMS + 1]; /* [N, the model's sample shape] (MNIST's samples are [28, 28]) */
    const int in_nd = dn_model_input_shape(m, xshape + 1);
    xshape[0] = B;
    if (batches <= 0) batches = (int)nbatches;
    double t0 = 0, c0 = 0, loss_sum = 0;
    int64_t samples = 0;
    for (int b = 0; b < warmup + batches; b++) {
        if (b == warmup) {
            t0 = now();
            c0 = cpu_now();
        }
        const int64_t at = (int64_t)b * B % d->n, nb = d->n - at < B ? d->n - at : B;
        dn_ctx_reset(ctx);
        xshape[0] = nb;
        dn_tensor *x, *y;
        OK(dn_tensor_new(ctx, in_nd + 1, xshape, &x));
        dn_dataset_get(d, at, nb, dn_tensor_data(x)); /* this batch's bytes as floats */
        OK(dn_tensor_from(ctx, 1, &nb, d->y + at, &y));
        dn_tensor *loss = dn_softmax_cross_entropy(ctx, dn_model_forward(m, ctx, x), y, DN_REDUCE_MEAN);
        if (!loss) die("forward");
        dn_model_zero_grad(m);
        OK(dn_backward(ctx, loss));
        dn_optim_step(opt, dn_model_params(m), dn_model_grads(m));
        if (b >= warmup) {
            samples += nb;
            loss_sum += dn_tensor_get(loss, 0);
        }
    }
    double t = now() - t0, tc = cpu_now() - c0;
    printf("result %s dendrite %d %.1f samples/s\n", name, threads, (double)samples / t);
    printf("cpuresult %s dendrite %d %.1f samples/s\n", name, threads, (double)samples / tc);
    printf("memory %s dendrite %d %ld %ld\n", name, threads, proc_kib("VmHWM"), data_kib);
    printf("info %s dendrite mean loss %.4f over %lld samples\n", name, loss_sum / batches, (long long)samples);
    dn_ctx_free(ctx);
    dn_optim_free(opt);
    dn_model_free(m);
    dn_dataset_free(d);
}

/* ------------------------------------------------------------------ batch-1 inference */

static void infer_case(const char *name, dn_model *(*build)(void))
{
    dn_dataset *d = load_mnist();
    dn_model *m = build();
    dn_model_set_training(m, false);
    dn_ctx *ctx = dn_ctx_new();
    if (!ctx) die("dn_ctx_new");
    dn_ctx_set_grad(ctx, false);
    int64_t xshape[DN_MAX_DIMS + 1];
    const int in_nd = dn_model_input_shape(m, xshape + 1);
    xshape[0] = 1;
#ifndef BENCH_INFER_CALLS /* -DBENCH_INFER_CALLS=100000 gives a profiler something to look at */
#define BENCH_INFER_CALLS 1000
#endif
    enum { WARMUP = 100, CALLS = BENCH_INFER_CALLS };
    static double us[CALLS];
    float checksum = 0;
    for (int i = 0; i < WARMUP + CALLS; i++) {
        const int64_t k = i % d->n;
        double t0 = now();
        dn_ctx_reset(ctx);
        dn_tensor *x;
        OK(dn_tensor_new(ctx, in_nd + 1, xshape, &x));
        dn_dataset_get(d, k, 1, dn_tensor_data(x));
        dn_tensor *y = dn_model_forward(m, ctx, x);
        if (!y) die("forward");
        float v = dn_tensor_get(y, 0);
        if (i >= WARMUP) us[i - WARMUP] = (now() - t0) * 1e6;
        checksum += v;
    }
    printf("result %s dendrite %d %.2f us\n", name, threads, median(us, CALLS));
    printf("info %s dendrite checksum %g\n", name, (double)checksum);
    dn_ctx_free(ctx);
    dn_model_free(m);
    dn_dataset_free(d);
}

/* ------------------------------------------------------------------ RNN CASES
 *
 * Character-level language models on data/fortunes.txt, as examples/char_lstm.cfg without validation and
 * clipping: byte embedding (vocab -> 64), one LSTM or GRU layer of 256 returning every step, a dense layer
 * (256 -> vocab) at every step, softmax cross-entropy averaged over all B*T positions; Adam lr 0.002.
 * Batches of 32 windows of 64 bytes in file order, the state starting at zero in every batch. */

enum { RNN_BATCH = 32, RNN_SEQ = 64, RNN_EMBED = 64, RNN_HIDDEN = 256, RNN_WARMUP = 3, RNN_STEPS = 60 };

static dn_model *build_char_model(const char *kind, int vocab)
{
    dn_model *m = NULL;
    OK(dn_model_new(1, (int64_t[]){RNN_SEQ}, 1, &m));
    OK(dn_model_add_embedding(m, vocab, RNN_EMBED));
    OK(dn_model_add_recurrent(m, kind, RNN_HIDDEN, 1, false, 0.0f, true, false)); /* every step; not stateful */
    OK(dn_model_add_dense(m, vocab, DN_INIT_DEFAULT, true));                       /* per step on [T, H] */
    return m;
}

/* Trains `warmup` untimed then `steps` timed batches (wrapping round the text); prints tokens/s (B*T per step),
 * the rate per CPU second and the memory line, as train_case does for the MNIST models. */
static void char_case(const char *kind, int warmup, int steps)
{
    dn_vocab vocab;
    dn_dataset *d = NULL;
    if (dn_dataset_load_text(text_path, RNN_SEQ, NULL, &vocab, &d) != DN_OK) {
        fprintf(stderr, "bench: %s skipped: cannot load %s (%s); fetch it with scripts/fetch-fortunes.sh or pass "
                        "--text FILE\n", kind, text_path, dn_last_error());
        exit(0); /* no result line: run.sh's table simply has no row for this case */
    }
    if (d->n < RNN_BATCH) {
        fprintf(stderr, "bench: %s skipped: %s has %lld windows of %d bytes, fewer than one batch of %d\n", kind,
                text_path, (long long)d->n, RNN_SEQ, RNN_BATCH);
        exit(0);
    }
    long data_kib = proc_kib("VmRSS");
    dn_model *m = build_char_model(kind, vocab.size);
    dn_model_set_training(m, true);
    printf("info %s dendrite vocab %d, %zu parameters, %lld windows\n", kind, vocab.size, dn_model_param_count(m),
           (long long)d->n);
    dn_optim_config oc;
    dn_optim_defaults(DN_ADAM, &oc);
    oc.lr = 0.002f;
    dn_optim *opt = NULL;
    OK(dn_optim_new(&oc, dn_model_param_count(m), NULL, &opt));
    dn_ctx *ctx = dn_ctx_new();
    if (!ctx) die("dn_ctx_new");
    const int64_t B = RNN_BATCH, T = RNN_SEQ, full = d->n / B; /* whole batches only: every step is B x T */
    double t0 = 0, c0 = 0, loss_sum = 0;
    int64_t tokens = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            t0 = now();
            c0 = cpu_now();
        }
        const int64_t at = s % full * B; /* first window of the batch */
        dn_ctx_reset(ctx);
        dn_tensor *x, *y;
        OK(dn_tensor_from(ctx, 2, (int64_t[]){B, T}, d->x + at * T, &x));
        OK(dn_tensor_from(ctx, 1, (int64_t[]){B * T}, d->y + at * T, &y));
        /* logits [B, T, V] -> [B*T, V]: one class per position, the mean over all of them */
        dn_tensor *logits = dn_reshape(ctx, dn_model_forward(m, ctx, x), 2, (int64_t[]){B * T, vocab.size});
        dn_tensor *loss = dn_softmax_cross_entropy(ctx, logits, y, DN_REDUCE_MEAN);
        if (!loss) die("forward");
        dn_model_zero_grad(m);
        OK(dn_backward(ctx, loss));
        dn_optim_step(opt, dn_model_params(m), dn_model_grads(m));
        if (s >= warmup) {
            tokens += B * T;
            loss_sum += dn_tensor_get(loss, 0);
        }
    }
    double t = now() - t0, tc = cpu_now() - c0;
    printf("result %s dendrite %d %.1f tokens/s\n", kind, threads, (double)tokens / t);
    printf("cpuresult %s dendrite %d %.1f tokens/s\n", kind, threads, (double)tokens / tc);
    printf("memory %s dendrite %d %ld %ld\n", kind, threads, proc_kib("VmHWM"), data_kib);
    printf("info %s dendrite mean loss %.4f over %d steps\n", kind, loss_sum / steps, steps);
    dn_ctx_free(ctx);
    dn_optim_free(opt);
    dn_model_free(m);
    dn_dataset_free(d);
}

int main(int argc, char **argv)
{
    int a = 1;
    for (;;) {
        if (a + 1 < argc && !strcmp(argv[a], "--data")) data_dir = argv[a + 1];
        else if (a + 1 < argc && !strcmp(argv[a], "--text")) text_path = argv[a + 1];
        else break;
        a += 2;
    }
    if (argc - a != 2) {
        fprintf(stderr, "usage: bench [--data DIR] [--text FILE] CASE THREADS\n"
                        "  CASE: sgemm sgemm-openblas fma-peak cores conv mlp lenet cnn infer-mlp infer-lenet lstm gru\n");
        return 2;
    }
    const char *c = argv[a];
    threads = atoi(argv[a + 1]);
    if (threads < 1) threads = 1;
    dn_set_threads(threads);
    if (!strcmp(c, "sgemm")) case_sgemm();
    else if (!strcmp(c, "sgemm-openblas")) case_sgemm_openblas();
    else if (!strcmp(c, "fma-peak")) case_fma_peak();
    else if (!strcmp(c, "cores")) case_cores();
    else if (!strcmp(c, "conv")) case_conv();
    else if (!strcmp(c, "mlp")) train_case("mlp", build_mlp, 5, 0);
    else if (!strcmp(c, "lenet")) train_case("lenet", build_lenet, 10, 200);
    else if (!strcmp(c, "cnn")) train_case("cnn", build_cnn, 3, 50);
    else if (!strcmp(c, "infer-mlp")) infer_case("infer-mlp", build_mlp);
    else if (!strcmp(c, "infer-lenet")) infer_case("infer-lenet", build_lenet);
    else if (!strcmp(c, "lstm") || !strcmp(c, "gru")) char_case(c, RNN_WARMUP, RNN_STEPS);
    else {
        fprintf(stderr, "bench: unknown case '%s'\n", c);
        return 2;
    }
    return 0;
}
