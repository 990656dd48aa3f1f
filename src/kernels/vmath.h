/* Vectorised float32 transcendental functions over arrays: y[i] = f(x[i]) for i < n.
 *
 * Internal to the library (src/ops/ uses them; tests/test_vmath.c checks them against libm).  On x86 CPUs
 * with AVX2 and FMA the work is done 8 lanes at a time, on aarch64 4 at a time with NEON; elsewhere (or capped
 * by DN_ISA=portable) a portable scalar loop runs the same algorithm.  Both paths are within 2 ulp of the exact result everywhere (measured maxima in docs/ops.md,
 * "Vectorised maths"), but they may differ from each other, and from libm, in the last bit.
 *
 * y may equal x (in place); otherwise the arrays must not overlap.  n <= 0 does nothing.
 *
 * Special values follow C99 Annex F: NaN in gives NaN out, and
 *   exp:     exp(-inf) = 0, exp(+inf) = +inf, +inf for x > 88.72, subnormal results are kept (not flushed)
 *   tanh:    tanh(+-0) = +-0, tanh(+-inf) = +-1, exactly +-1 from |x| ~ 9 on
 *   sigmoid: 1 / (1 + e^-x); sigmoid(-inf) = 0, sigmoid(+inf) = 1, never NaN for a non-NaN x
 *   log:     log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, subnormal inputs handled */
#ifndef DN_VMATH_H
#define DN_VMATH_H

#include <stdbool.h>
#include <stdint.h>

void dn_vexp(const float *x, float *y, int64_t n);
void dn_vtanh(const float *x, float *y, int64_t n);
void dn_vsigmoid(const float *x, float *y, int64_t n);
void dn_vlog(const float *x, float *y, int64_t n);

/* The portable scalar path whatever the CPU, for tests (as dn_sgemm_ref is for the gemm). */
void dn_vexp_portable(const float *x, float *y, int64_t n);
void dn_vtanh_portable(const float *x, float *y, int64_t n);
void dn_vsigmoid_portable(const float *x, float *y, int64_t n);
void dn_vlog_portable(const float *x, float *y, int64_t n);

/* True when dn_vexp and friends take the SIMD path (AVX2 + FMA, or NEON) on this CPU. */
bool dn_vmath_simd(void);

#endif
