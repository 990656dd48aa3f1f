/* The single-precision matrix product and its variants (gemm.c), for the ops above.  Floor 1: raw float arrays,
 * no tensors.  Not installed. */
#ifndef DN_KERNELS_GEMM_H
#define DN_KERNELS_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* C = alpha * op(A) * op(B) + beta * C, row-major.  op(A) is M x K, op(B) is K x N.
 * transa: A is stored K x M (lda >= M) and used transposed; same for transb.  beta == 0 ignores C. */
void dn_sgemm(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* What dn_sgemm_ex does to C after the product: nothing, or ReLU (y <= 0 ? 0 : y, NaN stays NaN). */
typedef enum dn_gemm_epilogue { DN_GEMM_NONE, DN_GEMM_RELU } dn_gemm_epilogue;
/* dn_sgemm, then the epilogue on C, applied tile by tile while the tile is in cache. */
void dn_sgemm_ex(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, dn_gemm_epilogue ep);
/* op(B) (K x N) packed once for many products with the same B, e.g. a recurrent weight at every step of a
 * sequence.  data: dn_sgemm_packed_b_floats(K, N) floats, 64-byte aligned (an arena allocation is), which must
 * outlive the uses; B itself must too (small products read it directly).  Results equal dn_sgemm's bit for bit. */
typedef struct dn_packed_b {
    bool transb;
    int64_t K, N, ldb;
    const float *B;
    float *data;
    int64_t npad; /* N rounded up to whole micro-panels */
} dn_packed_b;
size_t dn_sgemm_packed_b_floats(int64_t K, int64_t N);
void dn_sgemm_pack_b(bool transb, int64_t K, int64_t N, const float *B, int64_t ldb, float *data, dn_packed_b *pb);
/* C = alpha * op(A) * op(B) + beta * C with op(B) from dn_sgemm_pack_b; op(A) is M x pb->K. */
void dn_sgemm_packed(bool transa, int64_t M, float alpha, const float *A, int64_t lda, const dn_packed_b *pb,
                     float beta, float *C, int64_t ldc);
/* Whether dn_sgemm takes its small, unpacked path for this size (M, N, K >= 1); false for any larger N. */
bool dn_sgemm_is_tiny(int64_t M, int64_t N, int64_t K);
/* Fills dst with op(B)[p0 .. p0+kc, j0 .. j0+nc] packed: ceil(nc/NR) micro-panels (NR = 16) one after another,
 * panel q holding at dst[q*16*kc + k*16 + j] the element (p0 + k, j0 + q*16 + j), and 0 past column N. */
typedef void (*dn_gemm_pack_b_fn)(const void *arg, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float *dst);
/* C = alpha * A * B + beta * C (A not transposed, M x K) with B produced by pack_fn, then the epilogue; the same
 * numbers as dn_sgemm_ex(false, false, ...) on the same B.  Returns false, doing nothing, for a product too small to pack (or
 * empty): the caller then uses dn_sgemm_ex. */
bool dn_sgemm_pack_fn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      dn_gemm_pack_b_fn pack_fn, const void *pack_arg, float beta, float *C, int64_t ldc,
                      dn_gemm_epilogue ep);
/* The portable reference (no SIMD), for tests. */
void dn_sgemm_ref(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

#endif /* DN_KERNELS_GEMM_H */
