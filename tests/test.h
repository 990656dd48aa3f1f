/* The tiny test runner: CHECK records a failure and goes on; each test prints "ok" or its failures, and
 * main prints "N passed, N failed" last. */
#ifndef DN_TEST_H
#define DN_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dendrite.h"

extern int t_failures_in_test;
void t_fail(const char *file, int line, const char *fmt, ...);
void t_run(const char *name, void (*fn)(void));
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
