/* CPU features: detected once, capped by DN_ISA or dn_set_isa (cpu.h says why). */
#include "kernels/cpu.h"

#include "base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_X86 1
#elif defined(__aarch64__)
#define CPU_ARM64 1
#endif

static const char *const isa_names[] = {"portable", "avx2", "avx512", "neon"};
_Static_assert(sizeof isa_names / sizeof isa_names[0] == DN_ISA_NEON + 1, "one name per dn_isa");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int best;           /* what the CPU has */
static atomic_int level;   /* what the kernels may use */

/* Whether the CPU can run isa's code: portable always, else the same architecture and not above what it has. */
static bool isa_on_this_cpu(int isa)
{
    if (isa == DN_ISA_PORTABLE) return true;
#if CPU_X86
    return (isa == DN_ISA_AVX2 || isa == DN_ISA_AVX512) && isa <= best;
#elif CPU_ARM64
    return isa == DN_ISA_NEON && isa <= best;
#else
    return false;
#endif
}

static int detect(void)
{
#if CPU_X86
    __builtin_cpu_init();
    /* libgcc's checks include the operating system's support for the wider registers (XGETBV) */
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return DN_ISA_PORTABLE;
    return __builtin_cpu_supports("avx512f") ? DN_ISA_AVX512 : DN_ISA_AVX2;
#elif CPU_ARM64
    return DN_ISA_NEON; /* Advanced SIMD is part of every AArch64 CPU */
#else
    return DN_ISA_PORTABLE;
#endif
}

/* The dn_isa named, or -1. */
static int parse_isa(const char *name)
{
    for (int i = 0; name && i <= DN_ISA_NEON; i++)
        if (strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

static void init(void)
{
    best = detect();
    int l = best;
    const char *e = getenv("DN_ISA");
    /* a cap, not a demand: DN_ISA=avx512 on an AVX2 machine leaves AVX2; an unknown name changes nothing (the
     * command-line tool reports it) */
    const int cap = parse_isa(e);
    if (cap >= 0 && isa_on_this_cpu(cap)) l = cap;
    atomic_store(&level, l);
}

int dn_cpu_level(void)
{
    pthread_once(&once, init);
    return atomic_load_explicit(&level, memory_order_relaxed);
}

dn_isa dn_get_isa(void) { return (dn_isa)dn_cpu_level(); }

bool dn_isa_supported(dn_isa isa)
{
    pthread_once(&once, init);
    return (int)isa >= 0 && (int)isa <= DN_ISA_NEON && isa_on_this_cpu((int)isa);
}

dn_status dn_set_isa(dn_isa isa)
{
    pthread_once(&once, init);
    if ((int)isa < 0 || (int)isa > DN_ISA_NEON) return dn_error(DN_ERR_ARG, "dn_set_isa: %d is not a dn_isa", (int)isa);
    if (!isa_on_this_cpu((int)isa))
        return dn_error(DN_ERR_ARG, "dn_set_isa: this CPU cannot run %s code (it has %s)", isa_names[isa],
                        isa_names[best]);
    atomic_store(&level, (int)isa);
    return DN_OK;
}

const char *dn_isa_name(dn_isa isa) { return (int)isa >= 0 && (int)isa <= DN_ISA_NEON ? isa_names[isa] : "unknown"; }

dn_status dn_isa_from_name(const char *name, dn_isa *isa)
{
    const int i = parse_isa(name);
    if (i >= 0) {
        *isa = (dn_isa)i;
        return DN_OK;
    }
    return dn_error(DN_ERR_ARG, "unknown instruction set '%s' (portable, avx2, avx512 or neon)", name ? name : "(null)");
}
