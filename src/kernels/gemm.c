/* Single-precision matrix multiply: C = alpha * op(A) * op(B) + beta * C, row-major.
 *
 * Blocking scheme (the BLIS / GotoBLAS loop nest)
 * -----------------------------------------------
 *
 *   for jc in steps of NC over N                      (loop 5)
 *     for pc in K blocks of at most KC                (loop 4)  pack op(B)[pc.., jc..] -> Bp  (KC x NC, L3)
 *       for ic in steps of MC over M                  (loop 3)  pack op(A)[ic.., pc..] -> Ap  (MC x KC, L2)
 *         for jr in steps of NR over nc               (loop 2)  one B micro-panel (KC x NR) stays in L1
 *           for ir in steps of MR over mc             (loop 1)  A micro-panels stream from L2
 *             micro-kernel: C[ir.., jr..] (MR x NR) += Ap micro-panel * Bp micro-panel
 *
 * Packed layouts.  Ap holds ceil(mc/MR) micro-panels; micro-panel p, step k holds the MR values
 * op(A)(ic + p*MR + i, pc + k) at Ap[p*MR*kc + k*MR + i].  Bp holds ceil(nc/NR) micro-panels; micro-panel
 * q, step k holds op(B)(pc + k, jc + q*NR + j) at Bp[q*NR*kc + k*NR + j].  Rows/columns past the matrix
 * edge are packed as zeros, so the micro-kernel always computes a full MR x NR tile and only the write-back
 * looks at the valid size.  The packing routines absorb the four transpose variants; the micro-kernels see
 * this one layout only.
 *
 * Block sizes (in floats; the micro-kernel tile is MR x NR = 6 x 16):
 *   KC = 288   B micro-panel KC*NR*4 = 18 KiB: most of a 32 KiB L1, with a 6.75 KiB A micro-panel beside it
 *   MC = 144   A block MC*KC*4 = 162 KiB: comfortably inside a ~1 MiB L2 (and still fine in 256-512 KiB)
 *   NC = 512   B block KC*NC*4 = 576 KiB: L2/L3.  A larger NC measured no faster (A is re-packed only
 *              once per 512 columns, i.e. once per 512 uses of each packed element), and it sets the size
 *              of the per-thread buffer.
 * K is cut into ceil(K/KC) nearly equal blocks (784 -> 262 + 261 + 261, not 288 + 288 + 208; 288 -> one
 * block), so no block is a sliver that pays a full pass over C for little work.  Measured on a Zen 5
 * (AVX2 path): KC from 256 to 384 and MC from 96 to 192 are within noise of each other on large squares;
 * KC >= 288 keeps K = 288 (a 3x3x32 convolution) in one block, which is worth ~20% on that shape.
 *
 * The packing buffers are fixed-size, 64-byte aligned, thread-local static arrays (MC*KC + KC*NC floats,
 * about 740 KiB per thread): no malloc, no failure path, and safe to call from several threads at once.
 *
 * Determinism: for a given shape the summation order is fixed.  In the blocked path C(i,j) is, per K
 * block in order, acc = sum over k of A(i,k)*B(k,j) accumulated sequentially from zero (fused multiply-add
 * in the AVX2 kernel), then C = alpha*acc + beta*C for the first block and C = alpha*acc + C for later
 * ones.  This does not depend on pointer alignment, the leading dimensions, M, N, or where (i,j) falls in a
 * tile (edge tiles go through the same arithmetic).  Which micro-kernel runs (AVX2+FMA or portable C) is
 * decided by the CPU, so results can differ in the last bits between machines, never between runs.
 *
 * Small problems (M*N*K <= 256, or M*N <= 16 where a 6 x 16 tile would be mostly padding) skip packing
 * and use a plain dot-product loop (a different, also fixed, order).  Measured crossover: the packed path
 * wins from about 6 x 6 x 6 up.
 *
 * alpha == 0 or K == 0: C = beta*C without reading A or B.  beta == 0: C is overwritten, never read, so
 * NaN or garbage in C does not leak into the result.
 */
#include "internal.h"

#include <stdint.h>

/* DN_GEMM_NO_SIMD builds only the portable code (to test it on an x86 machine). */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(DN_GEMM_NO_SIMD)
#define DN_GEMM_X86 1
#include <immintrin.h>
#else
#define DN_GEMM_X86 0
#endif

#define MR 6
#define NR 16
#ifndef DN_GEMM_KC /* the -D overrides are for tuning experiments */
#define DN_GEMM_KC 288
#endif
#ifndef DN_GEMM_MC
#define DN_GEMM_MC 144
#endif
#ifndef DN_GEMM_NC
#define DN_GEMM_NC 512
#endif
#define KC DN_GEMM_KC
#define MC DN_GEMM_MC /* multiple of MR */
#define NC DN_GEMM_NC /* multiple of NR */
#ifndef DN_GEMM_SMALL_MNK
#define DN_GEMM_SMALL_MNK 256
#endif
#define SMALL_MNK DN_GEMM_SMALL_MNK /* M*N*K at or below this: no packing */
#define SMALL_MN 16 /* M*N at or below this: no packing */

#if (MC % MR) != 0 || (NC % NR) != 0
#error "MC must be a multiple of MR and NC a multiple of NR"
#endif

static _Thread_local float pack_a[MC * KC] __attribute__((aligned(64)));
static _Thread_local float pack_b[KC * NC] __attribute__((aligned(64)));

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ C = beta * C (K == 0 or alpha == 0) */

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    if (beta == 1.0f) return;
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < N; j++) c[j] = 0.0f; /* overwrite: NaN in C must not survive */
        else
            for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
}

/* ------------------------------------------------------------------ reference */

void dn_sgemm_ref(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                float a = transa ? A[k * lda + i] : A[i * lda + k];
                float b = transb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            float t = alpha * s;
            float *c = &C[i * ldc + j];
            *c = beta == 0.0f ? t : t + beta * *c;
        }
    }
}

/* ------------------------------------------------------------------ small problems: no packing */

static void gemm_small(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc)
{
    const int64_t sai = transa ? 1 : lda, sak = transa ? lda : 1; /* A(i,k) = A[i*sai + k*sak] */
    const int64_t sbk = transb ? 1 : ldb, sbj = transb ? ldb : 1; /* B(k,j) = B[k*sbk + j*sbj] */
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            const float *a = A + i * sai, *b = B + j * sbj;
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) s += a[k * sak] * b[k * sbk];
            float t = alpha * s;
            float *c = &C[i * ldc + j];
            *c = beta == 0.0f ? t : beta == 1.0f ? t + *c : t + beta * *c;
        }
    }
}

/* ------------------------------------------------------------------ packing
 *
 * Packing only copies values, so the portable and the AVX2 packers produce identical buffers.  The AVX2
 * versions cover the two layouts that need a transpose on the way in (op(A) rows stored as rows, op(B)
 * columns stored as rows) for full micro-panels; everything else goes through the portable code. */

/* One A micro-panel: op(A) rows r0 .. r0+mr (mr <= MR), columns p0 .. p0+kc; rows mr .. MR are zero. */
static void pack_a_panel(bool transa, const float *A, int64_t lda, int64_t r0, int64_t p0, int64_t mr,
                         int64_t kc, float *restrict dst)
{
    if (!transa) {
        /* op(A)(i,k) = A[i*lda + k]: read along k, write with stride MR. */
        for (int64_t i = 0; i < mr; i++) {
            const float *src = A + (r0 + i) * lda + p0;
            for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = src[k];
        }
        for (int64_t i = mr; i < MR; i++)
            for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = 0.0f;
    } else if (mr == MR) {
        /* op(A)(i,k) = A[k*lda + i]: the MR values of a step k are contiguous.  Spelled out: as a loop,
         * gcc turns it into a memmove call per k, which made this case 30% slower. */
        for (int64_t k = 0; k < kc; k++) {
            const float *src = A + (p0 + k) * lda + r0;
            float *d = dst + k * MR;
            d[0] = src[0];
            d[1] = src[1];
            d[2] = src[2];
            d[3] = src[3];
            d[4] = src[4];
            d[5] = src[5];
        }
    } else {
        for (int64_t k = 0; k < kc; k++) {
            const float *src = A + (p0 + k) * lda + r0;
            for (int64_t i = 0; i < MR; i++) dst[k * MR + i] = i < mr ? src[i] : 0.0f;
        }
    }
}

/* One B micro-panel: op(B) rows p0 .. p0+kc, columns c0 .. c0+nr (nr <= NR); columns nr .. NR are zero. */
static void pack_b_panel(bool transb, const float *B, int64_t ldb, int64_t p0, int64_t c0, int64_t nr,
                         int64_t kc, float *restrict dst)
{
    if (!transb) {
        /* op(B)(k,j) = B[k*ldb + j]: the NR values of a step k are contiguous. */
        for (int64_t k = 0; k < kc; k++) {
            const float *src = B + (p0 + k) * ldb + c0;
            float *d = dst + k * NR;
            if (nr == NR)
                memcpy(d, src, NR * sizeof(float));
            else
                for (int64_t j = 0; j < NR; j++) d[j] = j < nr ? src[j] : 0.0f;
        }
    } else {
        /* op(B)(k,j) = B[j*ldb + k]: column j of op(B) is contiguous; write with stride NR. */
        for (int64_t j = 0; j < nr; j++) {
            const float *src = B + (c0 + j) * ldb + p0;
            for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = src[k];
        }
        for (int64_t j = nr; j < NR; j++)
            for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = 0.0f;
    }
}

#if DN_GEMM_X86
/* In-register 8 x 8 transpose: afterwards r[k][j] is the old r[j][k]. */
__attribute__((target("avx2,fma"))) static inline void transpose8x8(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); /* low halves: k = 0..3 */
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); /* high halves: k = 4..7 */
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Full A micro-panel, op(A) not transposed (rows of op(A) are rows in memory): 8 k steps at a time, the
 * 6 rows (+2 zero rows) transposed in registers.  Each 8-float store writes the 6 values of step k plus 2
 * floats of step k+1, which the next store overwrites; the vector loop stops while a step k+8 remains, so
 * nothing is written past the panel. */
__attribute__((target("avx2,fma"))) static void pack_a_panel_n_avx2(const float *A, int64_t lda, int64_t r0,
                                                                     int64_t p0, int64_t kc,
                                                                     float *restrict dst)
{
    const float *s[MR];
    for (int i = 0; i < MR; i++) s[i] = A + (r0 + i) * lda + p0;
    int64_t k = 0;
    for (; k + 8 < kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < MR; i++) {
            _mm_prefetch((const char *)(s[i] + k + 64), _MM_HINT_T0); /* ~4 lines ahead */
            r[i] = _mm256_loadu_ps(s[i] + k);
        }
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8x8(r);
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + (k + j) * MR, r[j]);
    }
    for (; k < kc; k++)
        for (int i = 0; i < MR; i++) dst[k * MR + i] = s[i][k];
}

/* Full B micro-panel, op(B) transposed (columns of op(B) are rows in memory): two 8 x 8 transposes per
 * 8 k steps. */
__attribute__((target("avx2,fma"))) static void pack_b_panel_t_avx2(const float *B, int64_t ldb, int64_t p0,
                                                                     int64_t c0, int64_t kc,
                                                                     float *restrict dst)
{
    const float *src = B + c0 * ldb + p0; /* column j of op(B) starts at src + j*ldb */
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        for (int h = 0; h < NR; h += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(src + (h + j) * ldb + k);
            transpose8x8(r);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + (k + j) * NR + h, r[j]);
        }
    }
    for (; k < kc; k++)
        for (int j = 0; j < NR; j++) dst[k * NR + j] = src[j * ldb + k];
}
#endif

/* Packs op(A)[i0 .. i0+mc, p0 .. p0+kc] into ceil(mc/MR) micro-panels (see the top). */
static void pack_a_block(bool simd, bool transa, const float *A, int64_t lda, int64_t i0, int64_t p0,
                         int64_t mc, int64_t kc, float *restrict dst)
{
    (void)simd;
    for (int64_t ir = 0; ir < mc; ir += MR, dst += MR * kc) {
        const int64_t mr = min64(MR, mc - ir);
#if DN_GEMM_X86
        if (simd && !transa && mr == MR) {
            pack_a_panel_n_avx2(A, lda, i0 + ir, p0, kc, dst);
            continue;
        }
#endif
        pack_a_panel(transa, A, lda, i0 + ir, p0, mr, kc, dst);
    }
}

/* Packs op(B)[p0 .. p0+kc, j0 .. j0+nc] into ceil(nc/NR) micro-panels (see the top). */
static void pack_b_block(bool simd, bool transb, const float *B, int64_t ldb, int64_t p0, int64_t j0,
                         int64_t kc, int64_t nc, float *restrict dst)
{
    (void)simd;
    for (int64_t jr = 0; jr < nc; jr += NR, dst += NR * kc) {
        const int64_t nr = min64(NR, nc - jr);
#if DN_GEMM_X86
        if (simd && transb && nr == NR) {
            pack_b_panel_t_avx2(B, ldb, p0, j0 + jr, kc, dst);
            continue;
        }
#endif
        pack_b_panel(transb, B, ldb, p0, j0 + jr, nr, kc, dst);
    }
}

/* ------------------------------------------------------------------ micro-kernels
 *
 * Both compute acc = sum over k < kc of Ap[k*MR + i] * Bp[k*NR + j] for the full MR x NR tile, then
 * write back only the valid mr x nr corner: C = alpha*acc (beta == 0, C not read), alpha*acc + C
 * (beta == 1) or alpha*acc + beta*C.
 */
typedef void micro_kernel_fn(int64_t kc, const float *restrict Ap, const float *restrict Bp, float *C,
                             int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta);

static void micro_kernel_c(int64_t kc, const float *restrict Ap, const float *restrict Bp, float *C,
                           int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta)
{
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;
    for (int64_t k = 0; k < kc; k++) {
        const float *a = Ap + k * MR, *b = Bp + k * NR;
        for (int i = 0; i < MR; i++) {
            const float ai = a[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * b[j];
        }
    }
    for (int64_t i = 0; i < mr; i++) {
        float *c = C + i * ldc;
        for (int64_t j = 0; j < nr; j++) {
            const float t = alpha * acc[i][j];
            c[j] = beta == 0.0f ? t : beta == 1.0f ? t + c[j] : t + beta * c[j];
        }
    }
}

#if DN_GEMM_X86
/* AVX2 + FMA, 6 x 16 tile.  Register layout (16 ymm registers):
 *
 *   c[i][0], c[i][1]  i = 0..5   12 accumulators; row i of the tile, columns 0-7 and 8-15
 *   b0, b1                       the 16 values of op(B) for the current k (two aligned loads)
 *   a                            op(A)(i, k) broadcast to all 8 lanes, reused for row i
 *
 * The accumulators are named cIJ below: I = row 0..5, J = 0 for columns 0-7, 1 for columns 8-15.
 * Each k step is 2 loads + 6 broadcasts (load-port work, no shuffle port) + 12 FMAs; the 12 independent
 * accumulator chains hide the FMA latency (4-5 cycles at 2 FMAs per cycle needs >= 8-10 chains).  The k
 * loop is unrolled by 2: gcc spills accumulators when it is unrolled by 4, and 2 already keeps the loop
 * overhead small next to 24 FMAs. */
__attribute__((target("avx2,fma"))) static void micro_kernel_avx2(int64_t kc, const float *restrict Ap,
                                                                   const float *restrict Bp, float *C,
                                                                   int64_t ldc, int64_t mr, int64_t nr,
                                                                   float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

    /* Bring the C tile towards the core while the k loop runs. */
    if (mr == MR && nr == NR)
        for (int i = 0; i < MR; i++) {
            _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(C + i * ldc + NR - 1), _MM_HINT_T0);
        }

#define DN_GEMM_STEP(off)                                                                  \
    do {                                                                                   \
        const __m256 b0 = _mm256_load_ps(Bp + (off) * NR);                                 \
        const __m256 b1 = _mm256_load_ps(Bp + (off) * NR + 8);                             \
        __m256 a;                                                                          \
        a = _mm256_broadcast_ss(Ap + (off) * MR + 0);                                      \
        c00 = _mm256_fmadd_ps(a, b0, c00);                                                 \
        c01 = _mm256_fmadd_ps(a, b1, c01);                                                 \
        a = _mm256_broadcast_ss(Ap + (off) * MR + 1);                                      \
        c10 = _mm256_fmadd_ps(a, b0, c10);                                                 \
        c11 = _mm256_fmadd_ps(a, b1, c11);                                                 \
        a = _mm256_broadcast_ss(Ap + (off) * MR + 2);                                      \
        c20 = _mm256_fmadd_ps(a, b0, c20);                                                 \
        c21 = _mm256_fmadd_ps(a, b1, c21);                                                 \
        a = _mm256_broadcast_ss(Ap + (off) * MR + 3);                                      \
        c30 = _mm256_fmadd_ps(a, b0, c30);                                                 \
        c31 = _mm256_fmadd_ps(a, b1, c31);                                                 \
        a = _mm256_broadcast_ss(Ap + (off) * MR + 4);                                      \
        c40 = _mm256_fmadd_ps(a, b0, c40);                                                 \
        c41 = _mm256_fmadd_ps(a, b1, c41);                                                 \
        a = _mm256_broadcast_ss(Ap + (off) * MR + 5);                                      \
        c50 = _mm256_fmadd_ps(a, b0, c50);                                                 \
        c51 = _mm256_fmadd_ps(a, b1, c51);                                                 \
    } while (0)

    int64_t k = 0;
    for (; k + 2 <= kc; k += 2) {
        DN_GEMM_STEP(0);
        DN_GEMM_STEP(1);
        Ap += 2 * MR;
        Bp += 2 * NR;
    }
    for (; k < kc; k++) {
        DN_GEMM_STEP(0);
        Ap += MR;
        Bp += NR;
    }
#undef DN_GEMM_STEP

    /* Write-back.  A partial tile goes through a 6 x 16 scratch copy so that edge elements see exactly
     * the same arithmetic as interior ones. */
    float tmp[MR * NR] __attribute__((aligned(32)));
    float *dst = C;
    int64_t ld = ldc;
    const bool full = mr == MR && nr == NR;
    if (!full) {
        dst = tmp;
        ld = NR;
        if (beta != 0.0f) /* C is read: copy its valid corner in, zeros elsewhere (results discarded) */
            for (int64_t i = 0; i < MR; i++)
                for (int64_t j = 0; j < NR; j++) tmp[i * NR + j] = i < mr && j < nr ? C[i * ldc + j] : 0.0f;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#define DN_GEMM_WB(row, x0, x1)                                                                   \
    do {                                                                                          \
        float *cp = dst + (row) * ld;                                                             \
        __m256 t0 = _mm256_mul_ps(va, x0), t1 = _mm256_mul_ps(va, x1);                            \
        if (beta == 1.0f) {                                                                       \
            t0 = _mm256_add_ps(t0, _mm256_loadu_ps(cp));                                          \
            t1 = _mm256_add_ps(t1, _mm256_loadu_ps(cp + 8));                                      \
        } else if (beta != 0.0f) {                                                                \
            t0 = _mm256_add_ps(t0, _mm256_mul_ps(vb, _mm256_loadu_ps(cp)));                       \
            t1 = _mm256_add_ps(t1, _mm256_mul_ps(vb, _mm256_loadu_ps(cp + 8)));                   \
        }                                                                                         \
        _mm256_storeu_ps(cp, t0);                                                                 \
        _mm256_storeu_ps(cp + 8, t1);                                                             \
    } while (0)
    DN_GEMM_WB(0, c00, c01);
    DN_GEMM_WB(1, c10, c11);
    DN_GEMM_WB(2, c20, c21);
    DN_GEMM_WB(3, c30, c31);
    DN_GEMM_WB(4, c40, c41);
    DN_GEMM_WB(5, c50, c51);
#undef DN_GEMM_WB
    if (!full)
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < nr; j++) C[i * ldc + j] = tmp[i * NR + j];
}
#endif

/* True when the AVX2 + FMA code may run.  Depends only on the CPU. */
static bool have_avx2_fma(void)
{
#if DN_GEMM_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

/* ------------------------------------------------------------------ blocked driver */

void dn_sgemm(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    /* Too little work to pay for packing, or an output so small that a 6 x 16 tile would be mostly
     * padding.  (M, N, K >= 1, so the products cannot overflow once each factor is bounded.) */
    const bool tiny_work = M <= SMALL_MNK && N <= SMALL_MNK && K <= SMALL_MNK && M * N * K <= SMALL_MNK;
    const bool tiny_out = M <= SMALL_MN && N <= SMALL_MN && M * N <= SMALL_MN;
    if (tiny_work || tiny_out) {
        gemm_small(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }

    const bool simd = have_avx2_fma();
    micro_kernel_fn *kernel = micro_kernel_c;
#if DN_GEMM_X86
    if (simd) kernel = micro_kernel_avx2;
#endif
    float *const Ap = pack_a, *const Bp = pack_b;

    const int64_t kblocks = (K + KC - 1) / KC; /* K split into nearly equal blocks of at most KC */
    for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = min64(NC, N - jc);
        for (int64_t kb = 0, pc = 0; kb < kblocks; kb++) {
            const int64_t kc = K / kblocks + (kb < K % kblocks ? 1 : 0);
            const float beta_k = kb == 0 ? beta : 1.0f; /* later K blocks accumulate */
            pack_b_block(simd, transb, B, ldb, pc, jc, kc, nc, Bp);
            for (int64_t ic = 0; ic < M; ic += MC) {
                const int64_t mc = min64(MC, M - ic);
                pack_a_block(simd, transa, A, lda, ic, pc, mc, kc, Ap);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t nr = min64(NR, nc - jr);
                    const float *bp = Bp + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = min64(MR, mc - ir);
                        kernel(kc, Ap + ir * kc, bp, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, beta_k);
                    }
                }
            }
            pc += kc;
        }
    }
}
