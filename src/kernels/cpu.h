/* The one place that knows what the CPU can do (floor 1).
 *
 * Kernels ask dn_cpu_avx2() / dn_cpu_avx512() / dn_cpu_neon() before they take a SIMD path.  The answer is what the
 * CPU has, capped by the environment variable DN_ISA (portable, avx2, avx512, neon; read once, at the first
 * question) or by dn_set_isa(), so that one machine can run and test every path it has: a test or benchmark caps the
 * ISA, and every kernel falls back to the next path down.  The order is portable < avx2 < avx512 on x86-64 and
 * portable < neon on aarch64. */
#ifndef DN_KERNELS_CPU_H
#define DN_KERNELS_CPU_H

#include <stdbool.h>

/* The level in force (a dn_isa value): detected once, then capped. */
int dn_cpu_level(void);

/* AVX2 and FMA (x86-64), allowed by the cap. */
static inline bool dn_cpu_avx2(void)
{
    const int l = dn_cpu_level();
    return l == 1 || l == 2;
}
/* AVX-512F as well (x86-64), allowed by the cap. */
static inline bool dn_cpu_avx512(void) { return dn_cpu_level() == 2; }
/* Advanced SIMD (aarch64), allowed by the cap. */
static inline bool dn_cpu_neon(void) { return dn_cpu_level() == 3; }

#endif
