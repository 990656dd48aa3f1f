/* The kernels' thread pool (see threads.h for what it promises).
 *
 * How a job travels
 * -----------------
 * One job at a time is published in `pool`: its function, argument and a state word
 *     state = generation << 32 | parts << 16 | next part to hand out.
 * The caller writes the function and argument, then stores the state of a new generation (release).  Every
 * thread, the caller included, then claims parts with a compare-and-swap on the state that bumps "next";
 * a claim fails once all parts are handed out or once the generation has moved on.  So a worker that wakes
 * late finds nothing left and does nothing, and the caller never waits for a worker that has not started:
 * on a busy machine, where a worker may not get a core for milliseconds, the caller simply runs the parts
 * itself.  It waits only for parts that a worker has claimed and is running (`unfinished`).
 *
 * A successful claim (acquire) sees the function and argument written before the generation's state; and
 * they cannot change under a worker while it runs its part, because the caller publishes the next job only
 * after every part of this one has finished.  Which thread runs a part never changes its numbers: the
 * kernels cut their work so that each output element belongs to one part, computed the same way anywhere.
 *
 * Waiting: spin, then sleep
 * -------------------------
 * A training step calls gemm many times with a little serial work in between.  Waking a sleeping thread
 * costs tens of microseconds (more in a virtual machine), as much as a small gemm, so a worker first spins
 * on the state for SPIN_NS and only then sleeps on a condition variable; the caller does the same while it
 * waits for claimed parts.  No wake-up is lost: a worker announces itself in `sleepers` and re-checks the
 * state under `lock` before it sleeps, and the caller, after publishing, broadcasts under `lock` whenever
 * `sleepers` is not zero (sequentially consistent atomics: one of the two sees the other's write).
 *
 * Memory
 * ------
 * Every worker gets its scratch buffer when it is created, from the library allocator (dn_alloc), and
 * frees it with dn_free when the pool shuts down at exit (so set a custom allocator before the first
 * kernel runs, as dn_set_allocator asks).  Other threads (the main thread, a user's threads) get theirs
 * on first use through a pthread key, whose destructor frees it when the thread exits; the main thread's
 * is freed at exit.  The pool joins its workers at exit, so nothing is left for LeakSanitizer.  After
 * fork() the child has no workers: atfork handlers keep the pool consistent across the fork and make the
 * child forget them (and free their buffers). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "base.h"
#include "kernels/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a waiting thread spins before it sleeps.  Longer than the serial work between two gemms of a
 * training step (so a worker is normally awake when the next job comes), short enough that an idle
 * process gives its cores back almost at once.  After the first SPIN_PAUSE_NS the spinning thread yields
 * its core on every turn: where there are more runnable threads than cores (a busy machine, or a container
 * that gets less CPU than it has cores), a thread that only spins takes the time that the thread it waits
 * for needs. */
#define SPIN_NS 300000
#define SPIN_PAUSE_NS 20000

typedef struct worker {
    pthread_t thread;
    void *scratch;     /* 64-byte aligned, inside scratch_raw */
    void *scratch_raw; /* as dn_alloc returned it */
} worker;

static struct {
    pthread_mutex_t region;     /* held by the thread that runs a parallel region */
    pthread_mutex_t lock;       /* guards sleeping: wake and done */
    pthread_cond_t wake;        /* workers sleep here until a new generation (or quit) */
    pthread_cond_t done;        /* the caller sleeps here until unfinished reaches 0 */
    _Atomic uint64_t state;     /* generation << 32 | parts << 16 | next part (see the top) */
    _Atomic int unfinished;     /* parts of the current job not yet finished */
    _Atomic int sleepers;       /* workers asleep (or about to be) on `wake` */
    _Atomic bool quit;          /* shutting down: workers return */
    dn_part_fn fn;              /* the current job, written before its state */
    void *arg;
    int n;                      /* workers running */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, 0, false, NULL, NULL, 0};
static worker workers[DN_MAX_THREADS - 1];

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t scratch_key; /* a thread's own scratch (raw pointer), for threads that are not workers */
static bool have_key;

/* ------------------------------------------------------------------ helpers */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause(); /* tells the core this is a spin loop: saves power, frees the sibling thread */
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One turn of a spin-wait that began at *start (0: not yet timed).  Returns false once the spinning should
 * stop and the thread should sleep. */
static bool spin_turn(unsigned turn, int64_t *start)
{
    if ((turn & 63) == 0) { /* reading the clock costs ~20 ns: not every turn */
        const int64_t now = now_ns();
        if (*start == 0) *start = now;
        const int64_t spent = now - *start;
        if (spent > SPIN_NS) return false;
        if (spent > SPIN_PAUSE_NS) {
            sched_yield();
            return true;
        }
    }
    cpu_relax();
    return true;
}

/* A scratch block with room to align it to 64 bytes (dn_alloc only promises malloc's alignment). */
static void *alloc_scratch(void) { return dn_alloc(DN_THREAD_SCRATCH_BYTES + 64); }
static void *align64(void *raw) { return (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63); }

static void free_scratch(void *raw) { dn_free(raw); }

static void at_exit(void) { dn_threads_shutdown(); }

/* fork(): the pool is locked around it, so the child starts from a consistent state.  In the child only the
 * forking thread exists: it forgets the workers (their buffers were copied into the child, so it frees
 * them) and a later parallel call starts new ones. */
static void before_fork(void)
{
    pthread_mutex_lock(&pool.region);
    pthread_mutex_lock(&pool.lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.region);
}

static void after_fork_child(void)
{
    for (int i = 0; i < pool.n; i++) {
        dn_free(workers[i].scratch_raw);
        workers[i].scratch_raw = workers[i].scratch = NULL;
    }
    pool.n = 0;
    atomic_store(&pool.unfinished, 0);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.quit, false);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.region);
}

static void init_once(void)
{
    have_key = pthread_key_create(&scratch_key, free_scratch) == 0;
    atexit(at_exit);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* ------------------------------------------------------------------ parts */

static uint32_t generation_of(uint64_t state) { return (uint32_t)(state >> 32); }

/* Claims the next part of job `gen`: true with *part and *parts set, false when none is left (or the job
 * is over). */
static bool claim(uint32_t gen, int *part, int *parts)
{
    uint64_t s = atomic_load_explicit(&pool.state, memory_order_acquire);
    for (;;) {
        const int n = (int)((s >> 16) & 0xffff), next = (int)(s & 0xffff);
        if (generation_of(s) != gen || next >= n) return false;
        if (atomic_compare_exchange_weak_explicit(&pool.state, &s, s + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *part = next;
            *parts = n;
            return true;
        }
    }
}

/* Runs parts of job `gen` until none is left.  Returns true if this thread finished the job's last part. */
static bool run_parts(uint32_t gen, void *scratch)
{
    bool last = false;
    int part, parts;
    while (claim(gen, &part, &parts)) {
        pool.fn(pool.arg, part, parts, scratch);
        last = atomic_fetch_sub_explicit(&pool.unfinished, 1, memory_order_acq_rel) == 1;
    }
    return last;
}

/* ------------------------------------------------------------------ workers */

/* Waits until the generation differs from `seen` (or the pool quits); returns the new generation. */
static uint32_t wait_for_job(uint32_t seen)
{
    uint32_t g;
    int64_t start = 0;
    for (unsigned i = 0;; i++) {
        g = generation_of(atomic_load_explicit(&pool.state, memory_order_acquire));
        if (g != seen || atomic_load_explicit(&pool.quit, memory_order_relaxed)) return g;
        if (!spin_turn(i, &start)) break;
    }
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.sleepers, 1);
    while ((g = generation_of(atomic_load(&pool.state))) == seen && !atomic_load(&pool.quit))
        pthread_cond_wait(&pool.wake, &pool.lock);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.lock);
    return g;
}

static void *worker_main(void *p)
{
    worker *w = p;
    uint32_t seen = generation_of(atomic_load(&pool.state));
    for (;;) {
        const uint32_t g = wait_for_job(seen);
        if (atomic_load(&pool.quit)) break;
        seen = g;
        if (run_parts(g, w->scratch)) {
            pthread_mutex_lock(&pool.lock); /* the caller may be asleep: wake it under the lock */
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* Starts workers until there are `want` (called with `region` held).  A worker that cannot get its
 * scratch buffer or its thread is not started: the pool just stays smaller. */
static void grow(int want)
{
    while (pool.n < want) {
        worker *w = &workers[pool.n];
        w->scratch_raw = alloc_scratch();
        if (!w->scratch_raw) break;
        w->scratch = align64(w->scratch_raw);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            dn_free(w->scratch_raw);
            w->scratch_raw = w->scratch = NULL;
            break;
        }
        pool.n++;
    }
}

/* ------------------------------------------------------------------ the public side */

/* The count asked for (0: the default), and the default, found once. */
static atomic_int n_threads;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static int default_threads;

static void find_default_threads(void)
{
    const char *e = getenv("DN_THREADS");
    int v = e ? atoi(e) : 0;
    if (v <= 0) {
        cpu_set_t set;
        /* the cores this process may run on (taskset, cgroups' cpusets), not every core of the machine */
        v = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    default_threads = v < 1 ? 1 : v > DN_MAX_THREADS ? DN_MAX_THREADS : v;
}

void dn_set_threads(int n) { atomic_store(&n_threads, n > 0 ? n : 0); }

int dn_get_threads(void)
{
    const int n = atomic_load(&n_threads);
    if (n > 0) return n;
    pthread_once(&default_once, find_default_threads);
    return default_threads;
}

int dn_parallel_parts(void)
{
    int n = dn_get_threads();
    return n < 1 ? 1 : n > DN_MAX_THREADS ? DN_MAX_THREADS : n;
}

void *dn_thread_scratch(void)
{
    pthread_once(&once, init_once);
    if (!have_key) return NULL;
    void *raw = pthread_getspecific(scratch_key);
    if (!raw) {
        raw = alloc_scratch();
        if (!raw) return NULL;
        if (pthread_setspecific(scratch_key, raw) != 0) {
            dn_free(raw);
            return NULL;
        }
    }
    return align64(raw);
}

void dn_parallel_run(int parts, dn_part_fn fn, void *arg)
{
    if (parts > DN_MAX_THREADS) parts = DN_MAX_THREADS;
    if (parts > 1) pthread_once(&once, init_once);
    /* One part, or another region is running (another thread's, or this is a part calling in): all here. */
    if (parts <= 1 || pthread_mutex_trylock(&pool.region) != 0) {
        void *scratch = dn_thread_scratch();
        for (int p = 0; p < (parts < 1 ? 1 : parts); p++) fn(arg, p, parts < 1 ? 1 : parts, scratch);
        return;
    }
    if (pool.n < parts - 1) grow(parts - 1);

    /* publish the job: function and argument first, then the state of a new generation */
    pool.fn = fn;
    pool.arg = arg;
    atomic_store_explicit(&pool.unfinished, parts, memory_order_relaxed);
    const uint32_t gen = generation_of(atomic_load(&pool.state)) + 1;
    atomic_store(&pool.state, (uint64_t)gen << 32 | (uint64_t)parts << 16);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }

    /* take parts like any worker, then wait for the ones that workers are still running */
    run_parts(gen, dn_thread_scratch());
    int64_t start = 0;
    for (unsigned i = 0; atomic_load_explicit(&pool.unfinished, memory_order_acquire) > 0; i++) {
        if (!spin_turn(i, &start)) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load_explicit(&pool.unfinished, memory_order_acquire) > 0)
                pthread_cond_wait(&pool.done, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
            break;
        }
    }
    pthread_mutex_unlock(&pool.region);
}

void dn_threads_shutdown(void)
{
    pthread_mutex_lock(&pool.region);
    if (pool.n > 0) {
        pthread_mutex_lock(&pool.lock);
        atomic_store(&pool.quit, true);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
        for (int i = 0; i < pool.n; i++) {
            pthread_join(workers[i].thread, NULL);
            dn_free(workers[i].scratch_raw);
            workers[i].scratch_raw = workers[i].scratch = NULL;
        }
        pool.n = 0;
        atomic_store(&pool.quit, false);
    }
    pthread_mutex_unlock(&pool.region);
    /* The main thread's scratch: exit() runs no key destructors for it. */
    if (have_key) {
        void *raw = pthread_getspecific(scratch_key);
        if (raw) {
            pthread_setspecific(scratch_key, NULL);
            dn_free(raw);
        }
    }
}

int dn_threads_workers(void)
{
    pthread_mutex_lock(&pool.region);
    int n = pool.n;
    pthread_mutex_unlock(&pool.region);
    return n;
}

/* ------------------------------------------------------------------ zeroing large buffers */

typedef struct zero_job {
    unsigned char *p;
    size_t bytes;
} zero_job;

static void zero_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const zero_job *j = arg;
    int64_t lo, hi;
    dn_part_range((int64_t)j->bytes, 64, part, parts, &lo, &hi);
    if (hi > lo) memset(j->p + lo, 0, (size_t)(hi - lo));
}

void dn_parallel_zero(void *p, size_t bytes)
{
    zero_job j = {p, bytes};
    dn_parallel_run(bytes >= ((size_t)1 << 20) ? dn_parallel_parts() : 1, zero_part, &j);
}
