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
 * KC >= 288 keeps K = 288 (a 3x3x32 convolution) in one block, which is worth ~20% on that shape.  The
 * AVX-512 kernel keeps two B micro-panels (36 KiB) in a 48 KiB L1 with the same sizes.
 *
 * The packing buffers (MC*KC + KC*NC floats, about 740 KiB) are the running thread's scratch buffer from
 * the kernels' thread pool (threads.h): allocated once per thread, so the loop itself never allocates, and
 * dn_sgemm is safe to call from several threads at once.  Large products are shared between threads, with
 * results that do not depend on the thread count (see "threads" below).
 *
 * Micro-kernels.  The portable C kernel and the AVX2 + FMA kernel compute MR x NR tiles.  Where the CPU has
 * AVX-512, whole 12 x 32 tiles (two A micro-panels by two B micro-panels of the same packed buffers) and
 * 6 x 32 tiles go to AVX-512 kernels, twice as much work per instruction, and the edges stay with the AVX2
 * kernel.  On aarch64 a NEON kernel computes the 6 x 16 tiles (micro_kernel_neon).  Products of 1 to 4 rows
 * skip packing altogether on x86 ("skinny products" below); on aarch64 they take the packed path with the NEON
 * kernel (the same numbers: the skinny kernels exist for speed, and ARM speed cannot be measured here).
 *
 * Determinism: for a given shape the summation order is fixed.  In the blocked path C(i,j) is, per K
 * block in order, acc = sum over k of A(i,k)*B(k,j) accumulated sequentially from zero (fused multiply-add
 * in the SIMD kernels), then C = alpha*acc + beta*C for the first block and C = alpha*acc + C for later
 * ones.  This does not depend on pointer alignment, the leading dimensions, M, N, or where (i,j) falls in a
 * tile: the AVX2, AVX-512 and skinny kernels do exactly this arithmetic per element (FMA lanes round the
 * same at any vector width), so which of them computes an element, and how many threads share the
 * product, never changes it.  One exception, for speed: on AVX-512 machines a single row times a
 * transposed B (a dense layer on one sample) is a set of dot products, with its own fixed order (see
 * gemv_rows_avx512).  Whether FMA is used at all (SIMD or portable C), and that exception, depend on the
 * CPU, so results can differ in the last bits between machines, never between runs or thread counts.
 *
 * Small problems (M*N*K <= 256, or M*N <= 16 where a 6 x 16 tile would be mostly padding) skip packing
 * and use a plain dot-product loop (a different, also fixed, order).  Measured crossover: the packed path
 * wins from about 6 x 6 x 6 up.
 *
 * Epilogue: dn_sgemm_ex can apply ReLU to C as the last step (DN_GEMM_RELU), so that a layer's bias + matmul +
 * ReLU writes its output once.  In the blocked path each micro-tile gets it right after its last K block's
 * write-back, while the tile is still in L1; the other paths apply it to their part of C before returning.
 * ReLU is y = (y <= 0 ? 0 : y), the rule of the relu op (NaN stays NaN), so the fused result equals
 * relu(gemm) bit for bit.
 *
 * alpha == 0 or K == 0: C = beta*C without reading A or B.  beta == 0: C is overwritten, never read, so
 * NaN or garbage in C does not leak into the result.
 */
#include "base.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* DN_GEMM_NO_SIMD builds only the portable code (to test it on an x86 machine). */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(DN_GEMM_NO_SIMD)
#define DN_GEMM_X86 1
#include <immintrin.h>
#else
#define DN_GEMM_X86 0
#endif
/* Advanced SIMD is part of every AArch64 CPU: no target attributes needed, only the run-time cap (cpu.h). */
#if defined(__aarch64__) && !defined(DN_GEMM_NO_SIMD)
#define DN_GEMM_NEON 1
#include <arm_neon.h>
#else
#define DN_GEMM_NEON 0
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


static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#if DN_GEMM_X86 || DN_GEMM_NEON
/* A partial MR x NR tile (mr < MR or nr < NR) is written back through a scratch tile, so that its elements see
 * exactly the arithmetic of a full one: tile_stage fills the scratch with C's valid corner when C is read
 * (beta != 0; zeros elsewhere, results discarded), tile_unstage copies the valid corner back. */
static inline void tile_stage(float *tmp, const float *C, int64_t ldc, int64_t mr, int64_t nr, float beta)
{
    if (beta != 0.0f)
        for (int64_t i = 0; i < MR; i++)
            for (int64_t j = 0; j < NR; j++) tmp[i * NR + j] = i < mr && j < nr ? C[i * ldc + j] : 0.0f;
}

static inline void tile_unstage(const float *tmp, float *C, int64_t ldc, int64_t mr, int64_t nr)
{
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) C[i * ldc + j] = tmp[i * NR + j];
}
#endif

/* The epilogue on an m x n rectangle of C: ReLU, with the relu op's rule (x <= 0 ? +0 : x, so -0 becomes +0 and
 * NaN stays NaN), branch-free: a tile's signs are random and a branch per element would mispredict half the
 * time.  The AVX version (cmp <= 0, and-not) gives the same bits. */
#if DN_GEMM_X86
__attribute__((target("avx2"))) static void relu_rect_avx2(float *C, int64_t ldc, int64_t m, int64_t n)
{
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t i = 0; i < m; i++) {
        float *c = C + i * ldc;
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) {
            const __m256 v = _mm256_loadu_ps(c + j);
            _mm256_storeu_ps(c + j, _mm256_andnot_ps(_mm256_cmp_ps(v, zero, _CMP_LE_OQ), v));
        }
        for (; j < n; j++) c[j] = c[j] <= 0.0f ? 0.0f : c[j];
    }
}
#endif

#if DN_GEMM_NEON
/* NEON: the same rule (v <= 0 compares false for NaN, so a NaN is kept), 4 lanes at a time. */
static void relu_rect_neon(float *C, int64_t ldc, int64_t m, int64_t n)
{
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < m; i++) {
        float *c = C + i * ldc;
        int64_t j = 0;
        for (; j + 4 <= n; j += 4) {
            const float32x4_t v = vld1q_f32(c + j);
            vst1q_f32(c + j, vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), vcleq_f32(v, zero))));
        }
        for (; j < n; j++) c[j] = c[j] <= 0.0f ? 0.0f : c[j];
    }
}
#endif

static bool have_avx2_fma(void);
#if DN_GEMM_NEON
static bool have_neon(void);
#endif

static void epilogue_rect(dn_gemm_epilogue ep, float *C, int64_t ldc, int64_t m, int64_t n)
{
    if (ep != DN_GEMM_RELU) return;
#if DN_GEMM_X86
    if (have_avx2_fma()) {
        relu_rect_avx2(C, ldc, m, n);
        return;
    }
#endif
#if DN_GEMM_NEON
    if (have_neon()) {
        relu_rect_neon(C, ldc, m, n);
        return;
    }
#endif
    for (int64_t i = 0; i < m; i++) {
        float *c = C + i * ldc;
        for (int64_t j = 0; j < n; j++) c[j] = c[j] <= 0.0f ? 0.0f : c[j];
    }
}

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

/* B micro-panel, op(B) transposed (columns of op(B) are rows in memory), nr <= NR columns (the rest zero): two
 * 8 x 8 transposes per 8 k steps, with zero rows standing in for the missing columns.  (The ragged last
 * panel matters: a convolution's weight gradient has N = C*kh*kw, 25 or 150 in LeNet.) */
__attribute__((target("avx2,fma"))) static void pack_b_panel_t_avx2(const float *B, int64_t ldb, int64_t p0,
                                                                     int64_t c0, int64_t nr, int64_t kc,
                                                                     float *restrict dst)
{
    const float *src = B + c0 * ldb + p0; /* column j of op(B) starts at src + j*ldb */
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        for (int h = 0; h < NR; h += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++)
                r[j] = h + j < nr ? _mm256_loadu_ps(src + (h + j) * ldb + k) : _mm256_setzero_ps();
            transpose8x8(r);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + (k + j) * NR + h, r[j]);
        }
    }
    for (; k < kc; k++)
        for (int j = 0; j < NR; j++) dst[k * NR + j] = j < nr ? src[j * ldb + k] : 0.0f;
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
        if (simd && transb) {
            pack_b_panel_t_avx2(B, ldb, p0, j0 + jr, nr, kc, dst);
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
        tile_stage(tmp, C, ldc, mr, nr, beta);
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
    if (!full) tile_unstage(tmp, C, ldc, mr, nr);
}
#endif

#if DN_GEMM_NEON
/* NEON (AArch64 Advanced SIMD), 6 x 16 tile, the packed layouts of the other kernels.  Register layout (32
 * 128-bit registers):
 *
 *   cIJ   I = row 0..5, J = 0..3 for columns 4J .. 4J+3   24 accumulators
 *   b0..b3                                                 the 16 values of op(B) for the current k
 *   a03, a45                                               op(A)(0..3, k) and op(A)(4..5, k)
 *
 * 30 registers in all; vfmaq_laneq_f32 multiplies by one lane of a, so no broadcasts are needed.  Each k step
 * is 4 + 2 loads and 24 FMAs.  Per element the arithmetic is the AVX2 kernel's: a chain of single-rounding FMAs
 * in k order from zero, then alpha*acc (+ C, or + beta*C) with separate roundings, so on an FMA machine the
 * result is the same whichever SIMD kernel computes it. */
static void micro_kernel_neon(int64_t kc, const float *restrict Ap, const float *restrict Bp, float *C, int64_t ldc,
                              int64_t mr, int64_t nr, float alpha, float beta)
{
    float32x4_t c00 = vdupq_n_f32(0.0f), c01 = c00, c02 = c00, c03 = c00;
    float32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    float32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;
    float32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    float32x4_t c40 = c00, c41 = c00, c42 = c00, c43 = c00;
    float32x4_t c50 = c00, c51 = c00, c52 = c00, c53 = c00;
    for (int64_t k = 0; k < kc; k++) {
        const float32x4_t b0 = vld1q_f32(Bp), b1 = vld1q_f32(Bp + 4), b2 = vld1q_f32(Bp + 8), b3 = vld1q_f32(Bp + 12);
        const float32x4_t a03 = vld1q_f32(Ap);
        const float32x2_t a45 = vld1_f32(Ap + 4);
#define DN_GEMM_ROW(x0, x1, x2, x3, fma, a, lane)                                                        \
    do {                                                                                                  \
        x0 = fma(x0, b0, a, lane);                                                                        \
        x1 = fma(x1, b1, a, lane);                                                                        \
        x2 = fma(x2, b2, a, lane);                                                                        \
        x3 = fma(x3, b3, a, lane);                                                                        \
    } while (0)
        DN_GEMM_ROW(c00, c01, c02, c03, vfmaq_laneq_f32, a03, 0);
        DN_GEMM_ROW(c10, c11, c12, c13, vfmaq_laneq_f32, a03, 1);
        DN_GEMM_ROW(c20, c21, c22, c23, vfmaq_laneq_f32, a03, 2);
        DN_GEMM_ROW(c30, c31, c32, c33, vfmaq_laneq_f32, a03, 3);
        DN_GEMM_ROW(c40, c41, c42, c43, vfmaq_lane_f32, a45, 0);
        DN_GEMM_ROW(c50, c51, c52, c53, vfmaq_lane_f32, a45, 1);
#undef DN_GEMM_ROW
        Ap += MR;
        Bp += NR;
    }

    /* Write-back; a partial tile goes through a 6 x 16 scratch copy, as in the AVX2 kernel. */
    float tmp[MR * NR];
    float *dst = C;
    int64_t ld = ldc;
    const bool full = mr == MR && nr == NR;
    if (!full) {
        dst = tmp;
        ld = NR;
        tile_stage(tmp, C, ldc, mr, nr, beta);
    }
    const float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
#define DN_GEMM_WB1(cp, x)                                                                                \
    do {                                                                                                  \
        float32x4_t t = vmulq_f32(va, x);                                                                 \
        if (beta == 1.0f) t = vaddq_f32(t, vld1q_f32(cp));                                                \
        else if (beta != 0.0f) t = vaddq_f32(t, vmulq_f32(vb, vld1q_f32(cp)));                            \
        vst1q_f32(cp, t);                                                                                 \
    } while (0)
#define DN_GEMM_WB(row, x0, x1, x2, x3)                                                                   \
    do {                                                                                                  \
        float *cp = dst + (row) * ld;                                                                     \
        DN_GEMM_WB1(cp, x0);                                                                              \
        DN_GEMM_WB1(cp + 4, x1);                                                                          \
        DN_GEMM_WB1(cp + 8, x2);                                                                          \
        DN_GEMM_WB1(cp + 12, x3);                                                                         \
    } while (0)
    DN_GEMM_WB(0, c00, c01, c02, c03);
    DN_GEMM_WB(1, c10, c11, c12, c13);
    DN_GEMM_WB(2, c20, c21, c22, c23);
    DN_GEMM_WB(3, c30, c31, c32, c33);
    DN_GEMM_WB(4, c40, c41, c42, c43);
    DN_GEMM_WB(5, c50, c51, c52, c53);
#undef DN_GEMM_WB
#undef DN_GEMM_WB1
    if (!full) tile_unstage(tmp, C, ldc, mr, nr);
}
#endif

#if DN_GEMM_X86
/* AVX-512 micro-kernels: 12 x 32 tiles (two A micro-panels, rows 0-5 and 6-11, times two B micro-panels,
 * columns 0-15 and 16-31, of the same packed buffers; 24 zmm accumulators) and 6 x 32 tiles (one A micro-panel;
 * 12 accumulators).  Each k step of the 12-row kernel is 2 loads of B, 12 broadcasts of A and 24 FMAs, so the FMA
 * units, not the loads, set the pace: twice the work per instruction of the AVX2 kernel on a CPU with 512-bit FMA
 * units.
 *
 * Each lane computes exactly what the AVX2 kernel computes for that element (a chain of single-rounding FMAs in k
 * order from zero, then alpha*acc + beta*C with the same roundings), so results do not depend on which kernel
 * ran: the driver uses these for 32-column strips and the AVX2 kernel for the edges.
 *
 * Both are written from the two macros below: AVX512_ROW is one row's two FMAs at step k, AVX512_WB one row's
 * write-back (rows at or past `rows` are skipped: the 6-row kernel takes mr <= 6; in the 12-row kernel the limit
 * is the constant 12 and the test vanishes).  The accumulators cIH (row I: 0-9, then A, B for 10, 11; columns
 * 16*H .. 16*H + 15) are named variables, not an array, so that the compiler keeps them all in registers. */
#define AVX512_ROW(acc0, acc1, ptr)                                                                         \
    do {                                                                                                    \
        const __m512 a = _mm512_set1_ps(*(ptr));                                                            \
        acc0 = _mm512_fmadd_ps(a, x0, acc0);                                                                \
        acc1 = _mm512_fmadd_ps(a, x1, acc1);                                                                \
    } while (0)
#define AVX512_WB(row, rows, x0, x1)                                                                        \
    do {                                                                                                    \
        if ((row) >= (rows)) break;                                                                         \
        float *cp = C + (row) * ldc;                                                                        \
        __m512 t0 = _mm512_mul_ps(va, x0), t1 = _mm512_mul_ps(va, x1);                                      \
        if (beta == 1.0f) {                                                                                 \
            t0 = _mm512_add_ps(t0, _mm512_loadu_ps(cp));                                                    \
            t1 = _mm512_add_ps(t1, _mm512_loadu_ps(cp + NR));                                               \
        } else if (beta != 0.0f) {                                                                          \
            t0 = _mm512_add_ps(t0, _mm512_mul_ps(vb, _mm512_loadu_ps(cp)));                                 \
            t1 = _mm512_add_ps(t1, _mm512_mul_ps(vb, _mm512_loadu_ps(cp + NR)));                            \
        }                                                                                                   \
        _mm512_storeu_ps(cp, t0);                                                                           \
        _mm512_storeu_ps(cp + NR, t1);                                                                      \
    } while (0)
/* The six rows of one A micro-panel p at step k, into accumulators c<r0>..c<r0+5>. */
#define AVX512_PANEL(p, c0a, c0b, c1a, c1b, c2a, c2b, c3a, c3b, c4a, c4b, c5a, c5b)                          \
    do {                                                                                                    \
        AVX512_ROW(c0a, c0b, (p));                                                                          \
        AVX512_ROW(c1a, c1b, (p) + 1);                                                                      \
        AVX512_ROW(c2a, c2b, (p) + 2);                                                                      \
        AVX512_ROW(c3a, c3b, (p) + 3);                                                                      \
        AVX512_ROW(c4a, c4b, (p) + 4);                                                                      \
        AVX512_ROW(c5a, c5b, (p) + 5);                                                                      \
    } while (0)
#define AVX512_PANEL_WB(r0, rows, c0a, c0b, c1a, c1b, c2a, c2b, c3a, c3b, c4a, c4b, c5a, c5b)              \
    do {                                                                                                    \
        AVX512_WB((r0), rows, c0a, c0b);                                                                    \
        AVX512_WB((r0) + 1, rows, c1a, c1b);                                                                \
        AVX512_WB((r0) + 2, rows, c2a, c2b);                                                                \
        AVX512_WB((r0) + 3, rows, c3a, c3b);                                                                \
        AVX512_WB((r0) + 4, rows, c4a, c4b);                                                                \
        AVX512_WB((r0) + 5, rows, c5a, c5b);                                                                \
    } while (0)
#define AVX512_ACC_ZERO(c0a, c0b, c1a, c1b, c2a, c2b, c3a, c3b, c4a, c4b, c5a, c5b)                          \
    __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;                 \
    __m512 c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a
/* APPLY(m, ...) calls m with the arguments expanded first, so that a list macro such as ACC_LO counts as 12 */
#define APPLY(m, ...) m(__VA_ARGS__)
#define ACC_LO c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51
#define ACC_HI c60, c61, c70, c71, c80, c81, c90, c91, cA0, cA1, cB0, cB1

/* C[12 x 32] = alpha * Ap Bp + beta * C: whole tiles only. */
__attribute__((target("avx512f"))) static void micro_kernel_avx512(int64_t kc, const float *restrict Ap,
                                                                    const float *restrict Bp, float *C,
                                                                    int64_t ldc, float alpha, float beta)
{
    const float *restrict a0 = Ap, *restrict a1 = Ap + MR * kc; /* rows 0-5, rows 6-11 */
    const float *restrict b0 = Bp, *restrict b1 = Bp + NR * kc; /* columns 0-15, 16-31 */
    APPLY(AVX512_ACC_ZERO, ACC_LO);
    APPLY(AVX512_ACC_ZERO, ACC_HI);
    for (int i = 0; i < 2 * MR; i++) _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
    for (int64_t k = 0; k < kc; k++) {
        const __m512 x0 = _mm512_load_ps(b0 + k * NR), x1 = _mm512_load_ps(b1 + k * NR);
        APPLY(AVX512_PANEL, a0 + k * MR, ACC_LO);
        APPLY(AVX512_PANEL, a1 + k * MR, ACC_HI);
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    APPLY(AVX512_PANEL_WB, 0, 2 * MR, ACC_LO);
    APPLY(AVX512_PANEL_WB, MR, 2 * MR, ACC_HI);
}

/* C[mr x 32] (mr <= 6; the packed rows past mr are zeros and their results are dropped) for the rows a 12-row
 * strip leaves over (M = 64 = 5 * 12 + 4) and for products with few rows (6 or 16 filters). */
__attribute__((target("avx512f"))) static void micro_kernel_avx512_6(int64_t kc, const float *restrict Ap,
                                                                      const float *restrict Bp, float *C,
                                                                      int64_t ldc, int64_t mr, float alpha,
                                                                      float beta)
{
    const float *restrict b0 = Bp, *restrict b1 = Bp + NR * kc;
    APPLY(AVX512_ACC_ZERO, ACC_LO);
    for (int64_t i = 0; i < mr; i++) _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
    for (int64_t k = 0; k < kc; k++) {
        const __m512 x0 = _mm512_load_ps(b0 + k * NR), x1 = _mm512_load_ps(b1 + k * NR);
        APPLY(AVX512_PANEL, Ap + k * MR, ACC_LO);
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    APPLY(AVX512_PANEL_WB, 0, mr, ACC_LO);
}
#undef APPLY
#undef ACC_LO
#undef ACC_HI
#undef AVX512_ACC_ZERO
#undef AVX512_PANEL_WB
#undef AVX512_PANEL
#undef AVX512_WB
#undef AVX512_ROW
#endif

/* ------------------------------------------------------------------ skinny products (M <= SKINNY_M)
 *
 * A product with 1 to 4 rows (a dense layer on one sample, dy W for a tiny batch) wastes most of a 6 x 16
 * tile, and packing B costs as much as the arithmetic: each element of B is used only M times.  So these
 * go straight from A and B to C, 8 columns at a time, with no packing: op(B) rows are read directly, or,
 * when B is transposed (a dense layer's weight), 8 x 8 blocks are transposed in registers on the way in.
 *
 * Same numbers as the blocked path: each element of C is, per K block (the same blocks), a chain of fused
 * multiply-adds in k order starting from zero, then alpha*acc + beta*C with the same roundings.  So whether
 * a product goes this way or the other never changes its result. */
#define SKINNY_M 4

#if DN_GEMM_X86

/* Scalar fallback for the last N % 8 columns, with the same arithmetic as one lane of the vector code. */
__attribute__((target("avx2,fma"))) static void skinny_column(bool transa, bool transb, int64_t m, int64_t K,
                                                               float alpha, const float *A, int64_t lda,
                                                               const float *B, int64_t ldb, float beta,
                                                               float *C, int64_t ldc, int64_t j)
{
    const int64_t kblocks = (K + KC - 1) / KC;
    for (int64_t i = 0; i < m; i++) {
        float *c = C + i * ldc + j;
        for (int64_t kb = 0, p0 = 0; kb < kblocks; kb++) {
            const int64_t kc = K / kblocks + (kb < K % kblocks ? 1 : 0);
            float acc = 0.0f;
            for (int64_t k = p0; k < p0 + kc; k++)
                acc = fmaf(transa ? A[k * lda + i] : A[i * lda + k], transb ? B[j * ldb + k] : B[k * ldb + j], acc);
            const float bk = kb == 0 ? beta : 1.0f;
            /* separate statements, so no compiler fuses alpha*acc + beta*c into one rounding */
            const float t = alpha * acc;
            if (bk == 0.0f) {
                *c = t;
            } else if (bk == 1.0f) {
                *c = t + *c;
            } else {
                const float u = bk * *c;
                *c = t + u;
            }
            p0 += kc;
        }
    }
}

/* The skinny kernel works on g groups of 8 columns at once.  Each element's sum is one chain of FMAs (that
 * is what keeps it identical to the blocked path), and an FMA waits ~4 cycles for the previous one, so one
 * row needs several independent column groups in flight: 4 groups for 1 row, 2 for 2 rows, 1 for 3-4 rows
 * (4 chains, and registers run out beyond that). */
#define SKINNY_GROUPS(m) ((m) == 1 ? 4 : (m) == 2 ? 2 : 1) /* groups * m <= SKINNY_M */

/* 8 k steps [k, k+8) of one group of 8 columns: acc[i] += op(A)(i, k+s) * op(B)(k+s, 8 columns), s in order.
 * ap holds op(A)'s rows of the K block interleaved (ap[k*SKINNY_M + i] = op(A)(i, k)); b points at the
 * group's op(B): op(B)(k, j) = b[k*ldb + j], or b[j*ldb + k] when transb, in which case 8 rows of B are
 * transposed in registers into 8 vectors over j. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
skinny_8steps(const int m, bool transb, int64_t k, const float *ap, const float *b, int64_t ldb, __m256 *acc)
{
    __m256 r[8];
    if (transb) {
        r[0] = _mm256_loadu_ps(b + k);
        r[1] = _mm256_loadu_ps(b + ldb + k);
        r[2] = _mm256_loadu_ps(b + 2 * ldb + k);
        r[3] = _mm256_loadu_ps(b + 3 * ldb + k);
        r[4] = _mm256_loadu_ps(b + 4 * ldb + k);
        r[5] = _mm256_loadu_ps(b + 5 * ldb + k);
        r[6] = _mm256_loadu_ps(b + 6 * ldb + k);
        r[7] = _mm256_loadu_ps(b + 7 * ldb + k);
        transpose8x8(r);
    } else {
        r[0] = _mm256_loadu_ps(b + k * ldb);
        r[1] = _mm256_loadu_ps(b + (k + 1) * ldb);
        r[2] = _mm256_loadu_ps(b + (k + 2) * ldb);
        r[3] = _mm256_loadu_ps(b + (k + 3) * ldb);
        r[4] = _mm256_loadu_ps(b + (k + 4) * ldb);
        r[5] = _mm256_loadu_ps(b + (k + 5) * ldb);
        r[6] = _mm256_loadu_ps(b + (k + 6) * ldb);
        r[7] = _mm256_loadu_ps(b + (k + 7) * ldb);
    }
#define SK_FMA(s)                                                                                           \
    do {                                                                                                    \
        const float *a_ = ap + (k + (s)) * SKINNY_M;                                                        \
        acc[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_), r[s], acc[0]);                                    \
        if (m > 1) acc[1] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_ + 1), r[s], acc[1]);                     \
        if (m > 2) acc[2] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_ + 2), r[s], acc[2]);                     \
        if (m > 3) acc[3] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_ + 3), r[s], acc[3]);                     \
    } while (0)
    SK_FMA(0);
    SK_FMA(1);
    SK_FMA(2);
    SK_FMA(3);
    SK_FMA(4);
    SK_FMA(5);
    SK_FMA(6);
    SK_FMA(7);
}

/* One k step (the last kc % 8 of a block). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
skinny_1step(const int m, bool transb, int64_t k, const float *ap, const float *b, int64_t ldb, __m256 *acc)
{
    const __m256 v = transb ? _mm256_set_ps(b[7 * ldb + k], b[6 * ldb + k], b[5 * ldb + k], b[4 * ldb + k],
                                            b[3 * ldb + k], b[2 * ldb + k], b[ldb + k], b[k])
                            : _mm256_loadu_ps(b + k * ldb);
    const float *a_ = ap + k * SKINNY_M;
    acc[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_), v, acc[0]);
    if (m > 1) acc[1] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_ + 1), v, acc[1]);
    if (m > 2) acc[2] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_ + 2), v, acc[2]);
    if (m > 3) acc[3] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_ + 3), v, acc[3]);
#undef SK_FMA
}

/* C (m rows, g*8 columns) from one K block of kc steps; beta as for this block (see gemm_skinny_avx2).  m and
 * g are constants after inlining, so the g*m accumulators live in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
skinny_tile(const int m, const int g, bool transb, int64_t kc, const float *ap, const float *b, int64_t ldb,
            float alpha, float beta, float *C, int64_t ldc)
{
    __m256 acc[SKINNY_M]; /* group q, row i: acc[q*m + i] (g*m <= 4) */
    acc[0] = acc[1] = acc[2] = acc[3] = _mm256_setzero_ps();
    const int64_t gstep = transb ? 8 * ldb : 8; /* from one group's op(B) to the next */
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        skinny_8steps(m, transb, k, ap, b, ldb, acc);
        if (g > 1) skinny_8steps(m, transb, k, ap, b + gstep, ldb, acc + m);
        if (g > 2) skinny_8steps(m, transb, k, ap, b + 2 * gstep, ldb, acc + 2 * m);
        if (g > 3) skinny_8steps(m, transb, k, ap, b + 3 * gstep, ldb, acc + 3 * m);
    }
    for (; k < kc; k++) {
        skinny_1step(m, transb, k, ap, b, ldb, acc);
        if (g > 1) skinny_1step(m, transb, k, ap, b + gstep, ldb, acc + m);
        if (g > 2) skinny_1step(m, transb, k, ap, b + 2 * gstep, ldb, acc + 2 * m);
        if (g > 3) skinny_1step(m, transb, k, ap, b + 3 * gstep, ldb, acc + 3 * m);
    }
    /* write-back with the blocked kernel's roundings: alpha*acc, then + C or + beta*C */
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int x = 0; x < g * m; x++) { /* accumulator x is group x / m, row x % m */
        float *c = C + (x % m) * ldc + 8 * (x / m);
        __m256 t = _mm256_mul_ps(va, acc[x]);
        if (beta == 1.0f)
            t = _mm256_add_ps(t, _mm256_loadu_ps(c));
        else if (beta != 0.0f)
            t = _mm256_add_ps(t, _mm256_mul_ps(vb, _mm256_loadu_ps(c)));
        _mm256_storeu_ps(c, t);
    }
}

/* All tiles of one K block for a constant m: wide tiles of SKINNY_GROUPS(m) groups, then single groups. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
skinny_block(const int m, bool transb, int64_t N, int64_t kc, const float *ap, const float *B, int64_t ldb,
             float alpha, float beta, float *C, int64_t ldc)
{
    const int g = SKINNY_GROUPS(m);
    const int64_t n8 = N - N % 8;
    int64_t j0 = 0;
    if (g > 1)
        for (; j0 + 8 * g <= n8; j0 += 8 * g)
            skinny_tile(m, g, transb, kc, ap, transb ? B + j0 * ldb : B + j0, ldb, alpha, beta, C + j0, ldc);
    for (; j0 < n8; j0 += 8)
        skinny_tile(m, 1, transb, kc, ap, transb ? B + j0 * ldb : B + j0, ldb, alpha, beta, C + j0, ldc);
}

/* One row times a transposed B (a dense layer on a single sample: y = W x with W stored [N, K]) as N dot
 * products along the rows of B, which are contiguous: B is read once, front to back, with no transposing,
 * which makes this about twice as fast as the skinny kernel for this case (measured: MNIST MLP layers
 * 784-512-256, 27 us against 55 us).  The price: a different, also fixed, summation order.  Lane l of an
 * accumulator sums k = l, l + 16, l + 32, ... by FMAs; the 16 lanes are then added in _mm512_reduce_add_ps's
 * fixed order, and C = alpha*dot + beta*C.  So a sample on its own can differ in the last bits from the same
 * sample inside a batch (as with any BLAS); across runs and thread counts it cannot.  AVX-512 machines only:
 * elsewhere the skinny kernel does these too. */
__attribute__((target("avx512f"))) static void gemv_rows_avx512(int64_t N, int64_t K, float alpha, const float *x,
                                                                  const float *B, int64_t ldb, float beta,
                                                                  float *C)
{
    const int64_t k16 = K - K % 16;
    const __mmask16 tail = (__mmask16)((1u << (K % 16)) - 1u);
    int64_t j = 0;
    /* 8 rows at a time: 8 independent FMA chains keep both FMA units busy */
    for (; j + 8 <= N; j += 8) {
        const float *b = B + j * ldb;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int64_t k = 0; k < K; k += 16) {
            const __mmask16 m = k < k16 ? (__mmask16)0xffff : tail;
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + k);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + k), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + ldb + k), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 2 * ldb + k), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 3 * ldb + k), xv, a3);
            a4 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 4 * ldb + k), xv, a4);
            a5 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 5 * ldb + k), xv, a5);
            a6 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 6 * ldb + k), xv, a6);
            a7 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + 7 * ldb + k), xv, a7);
        }
        float dot[8] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2),
                        _mm512_reduce_add_ps(a3), _mm512_reduce_add_ps(a4), _mm512_reduce_add_ps(a5),
                        _mm512_reduce_add_ps(a6), _mm512_reduce_add_ps(a7)};
        for (int i = 0; i < 8; i++) {
            const float t = alpha * dot[i]; /* separate statements: no fused alpha*dot + beta*C */
            if (beta == 0.0f) {
                C[j + i] = t;
            } else if (beta == 1.0f) {
                C[j + i] = t + C[j + i];
            } else {
                const float u = beta * C[j + i];
                C[j + i] = t + u;
            }
        }
    }
    for (; j < N; j++) { /* the last N % 8 rows, one at a time, same arithmetic */
        const float *b = B + j * ldb;
        __m512 a = _mm512_setzero_ps();
        for (int64_t k = 0; k < K; k += 16) {
            const __mmask16 m = k < k16 ? (__mmask16)0xffff : tail;
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, b + k), _mm512_maskz_loadu_ps(m, x + k), a);
        }
        const float t = alpha * _mm512_reduce_add_ps(a);
        if (beta == 0.0f) {
            C[j] = t;
        } else if (beta == 1.0f) {
            C[j] = t + C[j];
        } else {
            const float u = beta * C[j];
            C[j] = t + u;
        }
    }
}

__attribute__((target("avx2,fma"))) static void gemm_skinny_avx2(bool transa, bool transb, int64_t M, int64_t N,
                                                                  int64_t K, float alpha, const float *A,
                                                                  int64_t lda, const float *B, int64_t ldb,
                                                                  float beta, float *C, int64_t ldc)
{
    float ap[KC * SKINNY_M] __attribute__((aligned(32))); /* op(A)'s rows of one K block, interleaved */
    const int64_t kblocks = (K + KC - 1) / KC;
    for (int64_t kb = 0, p0 = 0; kb < kblocks; kb++) {
        const int64_t kc = K / kblocks + (kb < K % kblocks ? 1 : 0);
        const float bk = kb == 0 ? beta : 1.0f; /* later K blocks accumulate, as in the blocked path */
        for (int64_t k = 0; k < kc; k++)
            for (int64_t i = 0; i < M; i++)
                ap[k * SKINNY_M + i] = transa ? A[(p0 + k) * lda + i] : A[i * lda + p0 + k];
        const float *b = transb ? B + p0 : B + p0 * ldb; /* op(B)'s K block */
        switch (M) { /* a constant m: see skinny_tile */
        case 1: skinny_block(1, transb, N, kc, ap, b, ldb, alpha, bk, C, ldc); break;
        case 2: skinny_block(2, transb, N, kc, ap, b, ldb, alpha, bk, C, ldc); break;
        case 3: skinny_block(3, transb, N, kc, ap, b, ldb, alpha, bk, C, ldc); break;
        default: skinny_block(4, transb, N, kc, ap, b, ldb, alpha, bk, C, ldc); break;
        }
        p0 += kc;
    }
    for (int64_t j = N - N % 8; j < N; j++)
        skinny_column(transa, transb, M, K, alpha, A, lda, B, ldb, beta, C, ldc, j);
}
#endif

/* True when the AVX2 + FMA code may run.  Depends only on the CPU. */
static bool have_avx2_fma(void)
{
#if DN_GEMM_X86
    return dn_cpu_avx2();
#else
    return false;
#endif
}

#if DN_GEMM_NEON
/* True when the NEON kernel may run (AArch64, not capped to portable). */
static bool have_neon(void) { return dn_cpu_neon(); }
#endif

/* True when the AVX-512 kernel may run as well (DN_GEMM_NO_AVX512 builds without it, for comparisons). */
static bool have_avx512(void)
{
#if DN_GEMM_X86 && !defined(DN_GEMM_NO_AVX512)
    return dn_cpu_avx512();
#else
    return false;
#endif
}

/* ------------------------------------------------------------------ blocked driver */

/* The five-loop nest (see the top) over one rectangle of C, with packing buffers in `scratch`. */
static void gemm_blocked(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, float *scratch,
                         dn_gemm_epilogue ep, const dn_packed_b *pb, int64_t col0, dn_gemm_pack_b_fn pack_fn,
                         const void *pack_arg)
{
    const bool simd = have_avx2_fma();
    micro_kernel_fn *kernel = micro_kernel_c;
#if DN_GEMM_X86
    const bool wide = have_avx512();
    if (simd) kernel = micro_kernel_avx2;
#endif
#if DN_GEMM_NEON
    if (have_neon()) kernel = micro_kernel_neon;
#endif
    float *const Ap = scratch, *const Bbuf = scratch + MC * KC; /* MC*KC floats (a multiple of 16): stays aligned */

    const int64_t kblocks = (K + KC - 1) / KC; /* K split into nearly equal blocks of at most KC */
    for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = min64(NC, N - jc);
        for (int64_t kb = 0, pc = 0; kb < kblocks; kb++) {
            const int64_t kc = K / kblocks + (kb < K % kblocks ? 1 : 0);
            const float beta_k = kb == 0 ? beta : 1.0f; /* later K blocks accumulate */
            const dn_gemm_epilogue ep_k = kb == kblocks - 1 ? ep : DN_GEMM_NONE; /* after the last K block */
            /* op(B)[pc.., jc..]: packed here, or already packed (pb: this rectangle starts at column col0 of it) */
            const float *Bp = pb ? pb->data + pc * pb->npad + (col0 + jc) * kc : Bbuf;
            if (pack_fn) pack_fn(pack_arg, pc, col0 + jc, kc, nc, Bbuf); /* the caller's packer */
            else if (!pb) pack_b_block(simd, transb, B, ldb, pc, jc, kc, nc, Bbuf);
            for (int64_t ic = 0; ic < M; ic += MC) {
                const int64_t mc = min64(MC, M - ic);
                pack_a_block(simd, transa, A, lda, ic, pc, mc, kc, Ap);
                int64_t jr = 0;
#if DN_GEMM_X86
                /* 32-column strips with the AVX-512 kernels (12 rows, then up to 6), the rest with AVX2 */
                for (; wide && jr + 2 * NR <= nc; jr += 2 * NR) {
                    const float *bp = Bp + jr * kc;
                    float *c = C + ic * ldc + jc + jr;
                    int64_t ir = 0;
                    for (; ir + 2 * MR <= mc; ir += 2 * MR) {
                        micro_kernel_avx512(kc, Ap + ir * kc, bp, c + ir * ldc, ldc, alpha, beta_k);
                        epilogue_rect(ep_k, c + ir * ldc, ldc, 2 * MR, 2 * NR);
                    }
                    for (; ir < mc; ir += MR) {
                        micro_kernel_avx512_6(kc, Ap + ir * kc, bp, c + ir * ldc, ldc, min64(MR, mc - ir), alpha,
                                              beta_k);
                        epilogue_rect(ep_k, c + ir * ldc, ldc, min64(MR, mc - ir), 2 * NR);
                    }
                }
#endif
                for (; jr < nc; jr += NR) {
                    const int64_t nr = min64(NR, nc - jr);
                    const float *bp = Bp + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = min64(MR, mc - ir);
                        kernel(kc, Ap + ir * kc, bp, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, beta_k);
                        epilogue_rect(ep_k, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr);
                    }
                }
            }
            pc += kc;
        }
    }
}

/* ------------------------------------------------------------------ threads
 *
 * Several threads share one product by cutting C into vertical strips (whole NR-wide micro-panels of
 * packed B) or horizontal strips (whole MR-high micro-panels of packed A); each thread runs the blocked
 * driver on its strip with its own packing buffers.  An element of C is computed by one thread, with
 * the same K blocks and the same micro-kernel arithmetic as in the serial code (the order does not depend
 * on where the element sits, see the top), so results are bit-identical for any thread count.
 *
 * Cutting N makes every thread pack all of A (M*K) but only its share of B; cutting M, the reverse.  So
 * we cut the dimension whose cut duplicates the smaller operand: N when M <= N (the MLP's and the
 * convolutions' shapes), M otherwise (tall im2col products like 25088 x 64 x 288).  Below PAR_MIN_FLOPS a
 * product is not worth waking a second thread for (about 20 us of work on one core). */
#ifndef DN_GEMM_PAR_MIN_FLOPS
#define DN_GEMM_PAR_MIN_FLOPS 2000000.0
#endif

_Static_assert((MC * KC + KC * NC) * sizeof(float) <= DN_THREAD_SCRATCH_BYTES,
               "the packing buffers must fit in a thread's scratch");
_Static_assert((MC * KC) % 16 == 0, "packed B must start 64-byte aligned (the AVX2 kernel loads it aligned)");

typedef struct gemm_job {
    bool transa, transb, split_n, skinny, gemv;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int64_t panels; /* micro-panels along the cut dimension */
    dn_gemm_epilogue ep;
    const dn_packed_b *pb; /* op(B) packed beforehand, or NULL */
    dn_gemm_pack_b_fn pack_fn; /* or packed by the caller's function (blocked path only), or NULL */
    const void *pack_arg;
} gemm_job;

/* The blocked loop with one A and one B micro-panel on the stack and the portable kernel, for a product whose B
 * only the caller's packer can produce, when the thread has no scratch buffer (out of memory). */
static void gemm_panels_on_stack(const gemm_job *j, int64_t M, int64_t N, const float *A, float *C, int64_t col0)
{
    float ap[MR * KC], bp[KC * NR];
    const int64_t K = j->K, kblocks = (K + KC - 1) / KC;
    for (int64_t kb = 0, pc = 0; kb < kblocks; kb++) {
        const int64_t kc = K / kblocks + (kb < K % kblocks ? 1 : 0);
        const float beta_k = kb == 0 ? j->beta : 1.0f;
        for (int64_t jr = 0; jr < N; jr += NR) {
            const int64_t nr = min64(NR, N - jr);
            j->pack_fn(j->pack_arg, pc, col0 + jr, kc, nr, bp);
            for (int64_t ir = 0; ir < M; ir += MR) {
                const int64_t mr = min64(MR, M - ir);
                pack_a_panel(j->transa, A, j->lda, ir, pc, mr, kc, ap);
                micro_kernel_c(kc, ap, bp, C + ir * j->ldc + jr, j->ldc, mr, nr, j->alpha, beta_k);
                if (kb == kblocks - 1) epilogue_rect(j->ep, C + ir * j->ldc + jr, j->ldc, mr, nr);
            }
        }
        pc += kc;
    }
}

static void gemm_part(void *arg, int part, int parts, void *scratch)
{
    const gemm_job *j = arg;
    /* this part's micro-panels [p0, p1): as equal as whole panels allow */
    const int64_t p0 = j->panels * part / parts, p1 = j->panels * (part + 1) / parts;
    const float *A = j->A, *B = j->B;
    float *C = j->C;
    int64_t M = j->M, N = j->N, col0 = 0;
    if (j->split_n) {
        const int64_t c0 = p0 * NR, c1 = min64(p1 * NR, j->N); /* columns [c0, c1) of op(B) and C */
        if (c1 <= c0) return;
        if (B) B += j->transb ? c0 * j->ldb : c0; /* (no B when the caller packs it) */
        C += c0;
        N = c1 - c0;
        col0 = c0;
    } else {
        const int64_t r0 = p0 * MR, r1 = min64(p1 * MR, j->M); /* rows [r0, r1) of op(A) and C */
        if (r1 <= r0) return;
        A += j->transa ? r0 : r0 * j->lda;
        C += r0 * j->ldc;
        M = r1 - r0;
    }
#if DN_GEMM_X86
    if (j->gemv) {
        gemv_rows_avx512(N, j->K, j->alpha, A, B, j->ldb, j->beta, C);
        epilogue_rect(j->ep, C, j->ldc, M, N);
        return;
    }
    if (j->skinny) {
        gemm_skinny_avx2(j->transa, j->transb, M, N, j->K, j->alpha, A, j->lda, B, j->ldb, j->beta, C, j->ldc);
        epilogue_rect(j->ep, C, j->ldc, M, N);
        return;
    }
#endif
    if (scratch) {
        gemm_blocked(j->transa, j->transb, M, N, j->K, j->alpha, A, j->lda, B, j->ldb, j->beta, C, j->ldc, scratch,
                     j->ep, j->pb, col0, j->pack_fn, j->pack_arg);
    } else if (j->pack_fn) { /* out of memory for the packing buffers, and no B to read: one panel at a time */
        gemm_panels_on_stack(j, M, N, A, C, col0);
    } else { /* out of memory for the packing buffers: slower, still correct (rounding may differ) */
        gemm_small(j->transa, j->transb, M, N, j->K, j->alpha, A, j->lda, B, j->ldb, j->beta, C, j->ldc);
        epilogue_rect(j->ep, C, j->ldc, M, N);
    }
}

void dn_sgemm(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    dn_sgemm_ex(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, DN_GEMM_NONE);
}

/* Whether a product takes the unpacked small path (see the top). */
bool dn_sgemm_is_tiny(int64_t M, int64_t N, int64_t K)
{
    const bool tiny_work = M <= SMALL_MNK && N <= SMALL_MNK && K <= SMALL_MNK && M * N * K <= SMALL_MNK;
    const bool tiny_out = M <= SMALL_MN && N <= SMALL_MN && M * N <= SMALL_MN;
    return tiny_work || tiny_out;
}

static void gemm_run(gemm_job *job)
{
    job->panels = job->split_n ? (job->N + NR - 1) / NR : (job->M + MR - 1) / MR;
    int parts = 1;
    if (2.0 * (double)job->M * (double)job->N * (double)job->K >= DN_GEMM_PAR_MIN_FLOPS) {
        parts = dn_parallel_parts();
        if (parts > job->panels) parts = (int)job->panels;
    }
    dn_parallel_run(parts, gemm_part, job);
}

static void gemm_dispatch(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                          int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                          dn_gemm_epilogue ep, const dn_packed_b *pb)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        epilogue_rect(ep, C, ldc, M, N);
        return;
    }
    /* Too little work to pay for packing, or an output so small that a 6 x 16 tile would be mostly
     * padding.  (M, N, K >= 1, so the products cannot overflow once each factor is bounded.) */
    if (dn_sgemm_is_tiny(M, N, K)) {
        gemm_small(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        epilogue_rect(ep, C, ldc, M, N);
        return;
    }

    /* 1 to SKINNY_M rows: no packing (see "skinny products"); one row times a transposed B: dot products
     * (gemv_rows_avx512).  These are always cut along N. */
    const bool skinny = DN_GEMM_X86 && M <= SKINNY_M && have_avx2_fma();
    const bool gemv = skinny && M == 1 && !transa && transb && have_avx512();
    gemm_job job = {transa, transb, skinny || M <= N, skinny, gemv, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, 0, ep,
                    pb, NULL, NULL};
    gemm_run(&job);
}

void dn_sgemm_ex(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, dn_gemm_epilogue ep)
{
    gemm_dispatch(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, NULL);
}

/* ------------------------------------------------------------------ B packed once, used many times
 *
 * A recurrent layer multiplies by the same W_hh at every step.  Packing it (1 MB for an LSTM of 256) costs
 * about as much as a step's arithmetic, so the sequence ops pack it once.  The layout is the blocked path's,
 * for all of N at once: K block kb (the same nearly equal blocks) holds ceil(N/NR) micro-panels of kc x NR,
 * so any run of columns that starts at a panel boundary (as every thread's share does) is a contiguous run
 * of panels, exactly what pack_b_block would have produced for it.  The products are therefore the same,
 * bit for bit, as dn_sgemm's.  Products that skip packing (1 to 4 rows, tiny ones) read B itself. */
size_t dn_sgemm_packed_b_floats(int64_t K, int64_t N)
{
    return (size_t)(K > 0 ? K : 0) * (size_t)((N + NR - 1) / NR * NR);
}

void dn_sgemm_pack_b(bool transb, int64_t K, int64_t N, const float *B, int64_t ldb, float *data, dn_packed_b *pb)
{
    *pb = (dn_packed_b){transb, K, N, ldb, B, data, (N + NR - 1) / NR * NR};
    if (K <= 0 || N <= 0) return;
    const bool simd = have_avx2_fma();
    const int64_t kblocks = (K + KC - 1) / KC;
    for (int64_t kb = 0, pc = 0; kb < kblocks; kb++) {
        const int64_t kc = K / kblocks + (kb < K % kblocks ? 1 : 0);
        pack_b_block(simd, transb, B, ldb, pc, 0, kc, N, data + pc * pb->npad);
        pc += kc;
    }
}

void dn_sgemm_packed(bool transa, int64_t M, float alpha, const float *A, int64_t lda, const dn_packed_b *pb,
                     float beta, float *C, int64_t ldc)
{
    gemm_dispatch(transa, pb->transb, M, pb->N, pb->K, alpha, A, lda, pb->B, pb->ldb, beta, C, ldc, DN_GEMM_NONE, pb);
}

/* ------------------------------------------------------------------ B packed by the caller
 *
 * A convolution's B is its column matrix, which im2col would write out only for the packing to copy it again.
 * With a packer function the gemm asks for each block of op(B) in packed form (pack_b_block's layout) and the
 * caller fills it straight from the image.  Always the blocked path; a skinny product (1 to 4 rows) computes
 * the same numbers that way, so the result equals dn_sgemm's with B not transposed on the same matrices bit
 * for bit, except for tiny products, which this refuses (false) so that the caller takes dn_sgemm's small
 * path itself. */
bool dn_sgemm_pack_fn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      dn_gemm_pack_b_fn pack_fn, const void *pack_arg, float beta, float *C, int64_t ldc,
                      dn_gemm_epilogue ep)
{
    if (M <= 0 || N <= 0 || K <= 0 || alpha == 0.0f || dn_sgemm_is_tiny(M, N, K)) return false;
    gemm_job job = {false, false, M <= N, false, false, M, N, K, lda, 0, ldc, alpha, beta, A, NULL, C, 0, ep,
                    NULL, pack_fn, pack_arg};
    gemm_run(&job);
    return true;
}
