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

#endif
