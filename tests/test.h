/* The tiny test runner: CHECK records a failure and goes on; each test prints "ok", "skip NAME: reason" or its
 * failures, and main prints "N passed, N failed, N skipped" last. */
#ifndef DN_TEST_H
#define DN_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dendrite.h"

extern int t_failures_in_test;
void t_fail(const char *file, int line, const char *fmt, ...);
void t_run(const char *name, void (*fn)(void));
/* The running test cannot check what it is for because something it needs is missing: it counts as skipped
 * (printed "skip NAME: reason"), not passed.  requirement is a short key ("mnist", "python3", "regress"); when it
 * is listed in the comma-separated env DN_REQUIRE the skip is a failure instead.  The caller returns after it. */
void t_skip(const char *requirement, const char *fmt, ...);
/* True when the four MNIST files are readable under t_data_dir()/mnist; otherwise skips the test ("mnist"). */
int t_need_mnist(void);
/* True when requirement is listed in env DN_REQUIRE (the shell tests read the same variable). */
int t_required(const char *requirement);

/* NaN-aware maxima, for every "worst error" in the tests.  A NaN is the worst figure of all and, once seen, stays:
 * a plain `if (r > worst) worst = r;`, `if (!(r <= worst)) worst = r;` or fmax loses a NaN unless it comes last.
 * t_is_worse: r replaces worst (for loops that also keep the element's index).  t_worse: the worse of the two.
 * t_max_rel_err: the largest |a - b| / max(|b|, floor) over n elements, NaN when any element of a or b is NaN. */
static inline int t_is_worse(double worst, double r) { return !isnan(worst) && !(r <= worst); }
static inline double t_worse(double worst, double r) { return t_is_worse(worst, r) ? r : worst; }
double t_max_rel_err(const float *a, const float *b, long long n, double floor);
/* Directory of fixture files (tests/golden) and of MNIST (env DN_DATA, default "data"). */
const char *t_golden_dir(void);
const char *t_data_dir(void);

#define CHECK(cond)                                                                                         \
    do {                                                                                                    \
        if (!(cond)) t_fail(__FILE__, __LINE__, "check failed: %s", #cond);                                \
    } while (0)
#define CHECK_MSG(cond, ...)                                                                                \
    do {                                                                                                    \
        if (!(cond)) t_fail(__FILE__, __LINE__, __VA_ARGS__);                                               \
    } while (0)
#define CHECK_OK(expr)                                                                                      \
    do {                                                                                                    \
        dn_status s_ = (expr);                                                                              \
        if (s_ != DN_OK) t_fail(__FILE__, __LINE__, "%s returned %s: %s", #expr, dn_status_name(s_),        \
                               dn_last_error());                                                            \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                               \
    do {                                                                                                    \
        double a_ = (a), b_ = (b);                                                                          \
        if (!(fabs(a_ - b_) <= (tol))) t_fail(__FILE__, __LINE__, "%s = %.9g, expected %.9g (tol %g)", #a,  \
                                              a_, b_, (double)(tol));                                       \
    } while (0)

#define RUN(fn) t_run(#fn, fn)

/* Element i of t equals want within tol. */
#define CHECK_AT(t, i, want, tol)                                                                           \
    do {                                                                                                    \
        if (!(t)) t_fail(__FILE__, __LINE__, "%s is NULL: %s", #t, dn_last_error());                        \
        else CHECK_NEAR(dn_tensor_get((t), (i)), (want), (tol));                                            \
    } while (0)
/* Element i of t's gradient equals want within tol. */
#define CHECK_GRAD(t, i, want, tol)                                                                         \
    do {                                                                                                    \
        float *g_ = (t) ? dn_tensor_grad(t) : NULL;                                                         \
        if (!g_) t_fail(__FILE__, __LINE__, "%s has no gradient", #t);                                      \
        else CHECK_NEAR(g_[i], (want), (tol));                                                              \
    } while (0)

/* The op failed (out is NULL) with status `want` and its message holds each non-NULL piece; then the context
 * is reset for the next case. */
void t_expect_error(const char *file, int line, dn_ctx *ctx, const dn_tensor *out, dn_status want, const char *a,
                    const char *b, const char *c);
#define EXPECT_ERROR(ctx, out, want, a, b, c) t_expect_error(__FILE__, __LINE__, ctx, out, want, a, b, c)

/* A path inside a temporary directory made once per run (rotates among 8 buffers). */
const char *t_tmp_path(const char *name);

#endif
