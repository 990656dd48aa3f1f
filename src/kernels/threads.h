/* The kernels' thread pool: fork-join over a few parts, and a scratch buffer per thread.
 *
 * A kernel that wants to use several cores cuts its work into `parts` pieces whose results do not
 * depend on how many pieces there are or which thread runs them (each output element is computed by
 * exactly one piece, in the same order as in the serial code), then calls dn_parallel_run.  The calling
 * thread and the pool's workers take pieces until none is left; the call returns when every piece has
 * finished.  So the numbers never depend on the thread count, only the speed does, and a worker that the
 * operating system has not scheduled yet never holds the caller up: the caller does its share as well.
 *
 * The pool is made on first use and grows to the largest count asked for; its workers wait (spinning
 * briefly, then asleep) between calls and are joined at exit.  Only one parallel region runs at a time:
 * a second thread that calls in meanwhile, or a part that calls dn_parallel_run itself, gets its parts
 * run one after another on the calling thread — same results, no deadlock.
 *
 * Users: the kernels (gemm, im2col/col2im), and ops whose work splits into independent pieces with fixed
 * boundaries: conv2d (whole image blocks), pooling (whole planes), pointwise activations and the optimiser
 * update (ranges of elements).  The tape, the arena and everything else stay on the caller's thread. */
#ifndef DN_THREADS_H
#define DN_THREADS_H

#include <stddef.h>
#include <stdint.h>

#define DN_MAX_THREADS 64
/* Bytes of each thread's scratch buffer (64-byte aligned).  gemm.c keeps its packed A and B panels
 * there and checks at compile time that they fit. */
#define DN_THREAD_SCRATCH_BYTES ((size_t)768 * 1024)

/* One part of a parallel job.  scratch: the running thread's scratch buffer (DN_THREAD_SCRATCH_BYTES),
 * or NULL if it could not be allocated — the part must then manage without it. */
typedef void (*dn_part_fn)(void *arg, int part, int parts, void *scratch);

/* The count dn_set_threads last asked for (0: the default), so a caller can put it back. */
int dn_threads_requested(void);
/* Parts a kernel should cut a large job into: dn_get_threads(), at most DN_MAX_THREADS. */
int dn_parallel_parts(void);
/* Runs fn(arg, p, parts, scratch) for p = 0 .. parts-1, each exactly once, on the caller and the pool's
 * workers, and returns when all are done.  parts <= 1 runs part 0 on the caller without touching the pool. */
void dn_parallel_run(int parts, dn_part_fn fn, void *arg);
/* The stretch [*lo, *hi) of n items that part `part` of `parts` takes: nearly equal shares, cut at multiples
 * of `unit` items (16 floats or 64 bytes: a cache line, so no two parts write one), the last ending at n. */
static inline void dn_part_range(int64_t n, int64_t unit, int part, int parts, int64_t *lo, int64_t *hi)
{
    const int64_t units = (n + unit - 1) / unit, end = units * (part + 1) / parts * unit;
    *lo = units * part / parts * unit;
    *hi = end < n ? end : n;
}
/* memset(p, 0, bytes), shared between the threads when it is large (a megabyte and up). */
void dn_parallel_zero(void *p, size_t bytes);
/* The calling thread's scratch buffer: allocated (with the library allocator) on first use, freed when
 * the thread exits, or at process exit for the main thread.  NULL if out of memory. */
void *dn_thread_scratch(void);
/* Joins the workers and frees their memory and the calling thread's scratch.  Runs at exit; a later
 * dn_parallel_run makes a new pool.  Must not be called while a parallel region is running. */
void dn_threads_shutdown(void);
/* Workers the pool holds now (0 before first use and after shutdown); for tests. */
int dn_threads_workers(void);

#endif /* DN_THREADS_H */
