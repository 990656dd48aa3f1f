/* Standalone check of dn_sgemm against dn_sgemm_ref (and, bit for bit against dn_sgemm's result: dn_sgemm_ex's
 * ReLU epilogue against relu of it, and dn_sgemm_packed with B packed beforehand), plus a timing mode.
 *
 *   test_gemm_standalone           correctness: all transpose variants over many shapes
 *   test_gemm_standalone --bench   also GFLOP/s (median of 5 runs) for a few sizes
 *
 * Last line: "N passed, N failed, 0 skipped" (it needs nothing it could skip); exit status 1 on any failure. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_pass, n_fail;

/* ------------------------------------------------------------------ data */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float rnd(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static float *alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static float *random_floats(size_t n)
{
    float *p = alloc_floats(n);
    for (size_t i = 0; i < n; i++) p[i] = rnd();
    return p;
}

/* ------------------------------------------------------------------ a caller's B packer (dn_sgemm_pack_fn) */

typedef struct packer_arg {
    const float *B;
    int64_t ldb, N;
    bool tb;
} packer_arg;

/* op(B)[p0.., j0..] in panels of 16 columns, zero past N: what a convolution's packer produces from an image */
static void pack_from_matrix(const void *arg, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float *dst)
{
    const packer_arg *a = arg;
    for (int64_t q = 0; q * 16 < nc; q++)
        for (int64_t k = 0; k < kc; k++)
            for (int64_t j = 0; j < 16; j++) {
                const int64_t col = j0 + q * 16 + j, row = p0 + k;
                dst[q * 16 * kc + k * 16 + j] =
                    col < a->N && q * 16 + j < nc ? (a->tb ? a->B[col * a->ldb + row] : a->B[row * a->ldb + col]) : 0.0f;
            }
}

/* ------------------------------------------------------------------ one comparison */

#define SENTINEL 12345.0f

/* Runs both implementations on the same inputs and compares.  C is ldc wide; the columns past N carry a
 * sentinel that must survive.  nan_c fills C's valid part with NaN (only meaningful with beta == 0). */
static void check(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad_a, int64_t pad_b,
                  int64_t pad_c, float alpha, float beta, bool nan_c)
{
    const int64_t arows = ta ? K : M, acols = ta ? M : K; /* stored shape of A */
    const int64_t brows = tb ? N : K, bcols = tb ? K : N;
    const int64_t lda = acols + pad_a, ldb = bcols + pad_b, ldc = N + pad_c;
    float *A = random_floats((size_t)(arows * lda));
    float *B = random_floats((size_t)(brows * ldb));
    float *A_copy = alloc_floats((size_t)(arows * lda)), *B_copy = alloc_floats((size_t)(brows * ldb));
    memcpy(A_copy, A, sizeof(float) * (size_t)(arows * lda));
    memcpy(B_copy, B, sizeof(float) * (size_t)(brows * ldb));
    float *C0 = alloc_floats((size_t)(M * ldc));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < ldc; j++) C0[i * ldc + j] = j < N ? (nan_c ? NAN : rnd()) : SENTINEL;
    float *C = alloc_floats((size_t)(M * ldc)), *R = alloc_floats((size_t)(M * ldc));
    float *C2 = alloc_floats((size_t)(M * ldc)), *C3 = alloc_floats((size_t)(M * ldc));
    float *C4 = alloc_floats((size_t)(M * ldc)), *C5 = alloc_floats((size_t)(M * ldc));
    memcpy(C, C0, sizeof(float) * (size_t)(M * ldc));
    memcpy(C3, C0, sizeof(float) * (size_t)(M * ldc));
    memcpy(C4, C0, sizeof(float) * (size_t)(M * ldc));
    memcpy(C5, C0, sizeof(float) * (size_t)(M * ldc));
    /* B packed beforehand (64-byte aligned, as the arena gives it) */
    const size_t packed_bytes = (dn_sgemm_packed_b_floats(K, N) * sizeof(float) + 127) / 64 * 64;
    float *P = aligned_alloc(64, packed_bytes);
    if (!P) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(R, C0, sizeof(float) * (size_t)(M * ldc));
    memcpy(C2, C0, sizeof(float) * (size_t)(M * ldc));

    dn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    dn_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    dn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc); /* determinism */
    dn_sgemm_ex(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C3, ldc, DN_GEMM_RELU); /* = relu(C), bit for bit */
    dn_packed_b pb;
    dn_sgemm_pack_b(tb, K, N, B, ldb, P, &pb);
    dn_sgemm_packed(ta, M, alpha, A, lda, &pb, beta, C4, ldc); /* = C, bit for bit */
    /* B from a packer function (A not transposed): = C, bit for bit, unless refused as too small; not for one
     * row times a transposed B, which dn_sgemm computes as dot products (gemv_rows_avx512) */
    const packer_arg pa = {B, ldb, N, tb};
    if (ta || (M == 1 && tb) || !dn_sgemm_pack_fn(M, N, K, alpha, A, lda, pack_from_matrix, &pa, beta, C5, ldc, DN_GEMM_NONE))
        memcpy(C5, C, sizeof(float) * (size_t)(M * ldc));

    int64_t bad = 0, wi = -1, wj = -1; /* wi, wj: the first bad element */
    const char *why = "";
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < ldc; j++) {
            const float c = C[i * ldc + j], r = R[i * ldc + j];
            const char *fault = NULL;
            const float relu_c = c <= 0.0f ? 0.0f : c;
            if (j >= N) {
                if (c != SENTINEL || C3[i * ldc + j] != SENTINEL || C4[i * ldc + j] != SENTINEL ||
                    C5[i * ldc + j] != SENTINEL)
                    fault = "wrote past column N";
            } else if (memcmp(&c, &C2[i * ldc + j], sizeof c) != 0) {
                fault = "second call differs";
            } else if (memcmp(&relu_c, &C3[i * ldc + j], sizeof c) != 0) {
                fault = "the ReLU epilogue differs from relu(C)";
            } else if (memcmp(&c, &C4[i * ldc + j], sizeof c) != 0) {
                fault = "the product with B packed beforehand differs";
            } else if (memcmp(&c, &C5[i * ldc + j], sizeof c) != 0) {
                fault = "the product with B from a packer function differs";
            } else if (isnan(c) || isnan(r)) {
                if (!(isnan(c) && isnan(r)) || nan_c) fault = "NaN";
            } else {
                /* Both sums carry at most ~K*eps relative error on sum |a*b|. */
                double mag = 0.0;
                for (int64_t k = 0; k < K; k++) {
                    const double x = ta ? A[k * lda + i] : A[i * lda + k];
                    const double y = tb ? B[j * ldb + k] : B[k * ldb + j];
                    mag += fabs(x * y);
                }
                mag = fabs((double)alpha) * mag + (beta != 0.0f ? fabs((double)beta * C0[i * ldc + j]) : 0.0);
                const double tol = 2.0 * (double)(K + 4) * FLT_EPSILON * mag + 1e-30;
                if (fabs((double)c - (double)r) > tol) fault = "mismatch";
            }
            if (fault) {
                if (bad == 0) {
                    wi = i;
                    wj = j;
                    why = fault;
                }
                bad++;
            }
        }
    }
    if (memcmp(A, A_copy, sizeof(float) * (size_t)(arows * lda)) != 0 ||
        memcmp(B, B_copy, sizeof(float) * (size_t)(brows * ldb)) != 0) {
        if (bad == 0) why = "modified A or B";
        bad++;
    }
    if (bad) {
        n_fail++;
        printf("FAIL %c%c M=%lld N=%lld K=%lld lda=%lld ldb=%lld ldc=%lld alpha=%g beta=%g%s: %lld bad; "
               "first (%lld,%lld) %s",
               ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)M, (long long)N, (long long)K, (long long)lda,
               (long long)ldb, (long long)ldc, (double)alpha, (double)beta, nan_c ? " NaN-in-C" : "",
               (long long)bad, (long long)wi, (long long)wj, why);
        if (wi >= 0) printf(": got %.9g want %.9g", (double)C[wi * ldc + wj], (double)R[wi * ldc + wj]);
        printf("\n");
    } else {
        n_pass++;
    }
    free(A);
    free(B);
    free(A_copy);
    free(B_copy);
    free(C0);
    free(C);
    free(R);
    free(C2);
    free(C3);
    free(C4);
    free(C5);
    free(P);
}

/* ------------------------------------------------------------------ timing */

static double now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double bench(bool ta, bool tb, int64_t M, int64_t N, int64_t K)
{
    float *A = random_floats((size_t)(M * K)), *B = random_floats((size_t)(K * N));
    float *C = random_floats((size_t)(M * N));
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    /* Repeat each measurement until it spans >= 50 ms, so tiny shapes are timed meaningfully. */
    int reps = 1;
    for (;;) {
        double t0 = now();
        for (int r = 0; r < reps; r++) dn_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        if (now() - t0 >= 0.05 || reps >= (1 << 20)) break;
        reps *= 2;
    }
    double g[5];
    for (int s = 0; s < 5; s++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) dn_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        g[s] = flops * (double)reps / (now() - t0) * 1e-9;
    }
    qsort(g, 5, sizeof g[0], cmp_double);
    free(A);
    free(B);
    free(C);
    return g[2];
}

static void run_bench(void)
{
    static const int64_t shapes[][3] = {{256, 256, 256},  {512, 512, 512}, {1024, 1024, 1024},
                                        {64, 512, 784},   {784, 512, 64},  {25088, 64, 288}};
    printf("GFLOP/s, median of 5 (alpha=1, beta=0, minimal leading dimensions)\n");
    printf("%6s %6s %6s %8s %8s %8s %8s\n", "M", "N", "K", "NN", "NT", "TN", "TT");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        printf("%6lld %6lld %6lld", (long long)shapes[s][0], (long long)shapes[s][1], (long long)shapes[s][2]);
        for (int v = 0; v < 4; v++) {
            printf(" %8.1f", bench(v & 2, v & 1, shapes[s][0], shapes[s][1], shapes[s][2]));
            fflush(stdout);
        }
        printf("\n");
    }
}

/* ------------------------------------------------------------------ main */

/* Every check, with the kernels of the ISA in force. */
static void run_checks(void)
{
    /* Irregular sizes around the 6 x 16 tile and the small-problem threshold. */
    static const int64_t mn[] = {1, 2, 3, 5, 6, 7, 11, 12, 13, 16, 17, 23, 31, 33, 48, 49, 64, 70};
    static const int64_t ks[] = {1, 2, 3, 4, 5, 7, 16, 17, 31, 64, 70};
    const size_t nmn = sizeof mn / sizeof mn[0], nks = sizeof ks / sizeof ks[0];

    for (int v = 0; v < 4; v++) {
        const bool ta = v & 2, tb = v & 1;
        unsigned variant = 0;
        for (size_t a = 0; a < nmn; a++)
            for (size_t b = 0; b < nmn; b++)
                for (size_t c = 0; c < nks; c++, variant++) {
                    /* Cycle the scalars and paddings instead of taking every combination. */
                    static const float alphas[] = {1.0f, 0.5f};
                    static const float betas[] = {0.0f, 1.0f, 0.3f};
                    const float alpha = alphas[variant % 2], beta = betas[(variant / 2) % 3];
                    const int64_t pad = (variant % 5 == 0) ? 0 : (int64_t)(variant % 7) + 1;
                    check(ta, tb, mn[a], mn[b], ks[c], pad, (pad * 3) % 11, pad % 4, alpha, beta,
                          beta == 0.0f && variant % 4 == 0);
                }
        /* Larger shapes: several K blocks, M and N blocks, ragged edges everywhere. */
        check(ta, tb, 256, 256, 256, 0, 0, 0, 1.0f, 0.0f, false);
        check(ta, tb, 256, 256, 256, 5, 3, 1, 0.5f, 0.3f, false);
        check(ta, tb, 257, 129, 300, 0, 0, 0, 1.0f, 0.0f, true);
        check(ta, tb, 257, 129, 300, 7, 9, 3, 0.5f, 1.0f, false);
        check(ta, tb, 257, 129, 300, 1, 2, 5, 1.0f, 0.3f, false);
        check(ta, tb, 145, 1030, 513, 3, 1, 2, 0.5f, 0.3f, false); /* crosses MC, NC and 2 K blocks */
        check(ta, tb, 70, 70, 1000, 0, 0, 0, 1.0f, 1.0f, false);
        check(ta, tb, 1, 300, 200, 0, 0, 0, 1.0f, 0.0f, true);
        check(ta, tb, 300, 1, 200, 2, 2, 2, 0.5f, 0.3f, false);
        check(ta, tb, 64, 512, 784, 0, 0, 0, 1.0f, 0.0f, false);
        /* Degenerate sizes. */
        check(ta, tb, 0, 5, 5, 0, 0, 0, 1.0f, 0.0f, false);
        check(ta, tb, 5, 0, 5, 0, 0, 1, 1.0f, 0.0f, false);
        check(ta, tb, 5, 5, 0, 0, 0, 0, 1.0f, 0.0f, true); /* K == 0, beta == 0: C becomes 0 */
        check(ta, tb, 5, 5, 0, 0, 0, 0, 1.0f, 0.3f, false);
        check(ta, tb, 40, 40, 0, 1, 1, 1, 0.5f, 1.0f, false);
        check(ta, tb, 40, 40, 40, 1, 1, 1, 0.0f, 0.3f, false); /* alpha == 0 */
    }
}

int main(int argc, char **argv)
{
    const bool do_bench = argc > 1 && strcmp(argv[1], "--bench") == 0;

    /* Once per instruction set this CPU has (portable C, AVX2, AVX-512 on x86-64; portable C, NEON on aarch64),
     * each against dn_sgemm_ref, within the ISA cap of DN_ISA (if set) */
    const dn_isa best = dn_get_isa();
    for (int isa = DN_ISA_PORTABLE; isa <= DN_ISA_NEON; isa++) {
        if (!dn_isa_supported((dn_isa)isa) || (isa > (int)best && isa != DN_ISA_PORTABLE)) continue;
        if (dn_set_isa((dn_isa)isa) != DN_OK) {
            printf("FAIL dn_set_isa(%s): %s\n", dn_isa_name((dn_isa)isa), dn_last_error());
            n_fail++;
            continue;
        }
        const int pass0 = n_pass, fail0 = n_fail;
        run_checks();
        printf("%s: %d passed, %d failed\n", dn_isa_name((dn_isa)isa), n_pass - pass0, n_fail - fail0);
    }
    if (dn_set_isa(best) != DN_OK) n_fail++;

    if (do_bench) run_bench();

    printf("%d passed, %d failed, 0 skipped\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
