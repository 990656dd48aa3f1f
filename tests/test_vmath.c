/* The vectorised maths of src/kernels/vmath.c against double-precision libm: the error in ulp over a dense
 * sweep of float inputs (every STRIDE-th bit pattern of each function's range, plus every float in a few
 * narrow places where an algorithm changes branch or the result leaves the normal range), for the SIMD path
 * (AVX2 or NEON, when this CPU has it) and the portable path, each on its own; then special values, in-place calls and odd lengths.
 *
 * DN_VMATH_BENCH=1 in the environment also prints nanoseconds per element next to glibc's scalar calls. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include "kernels/vmath.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef void (*vfn)(const float *x, float *y, int64_t n);

/* ~2.3M inputs per function: together with the reference calls the suite takes about half a second. */
#define STRIDE 997u
#define CHUNK 4096

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static float f_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t u_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* |y - exact| in units of the float spacing at `exact` (2^-149 at least); 0 when both are the same
 * infinity or both NaN, infinite when only one of them is NaN or y is infinite and the rounded exact
 * value is not (or the other way round). */
static double ulp_error(float y, double exact)
{
    if (isnan(exact) || isnan(y)) return isnan(exact) && isnan(y) ? 0.0 : INFINITY;
    float rounded = (float)exact;
    if (isinf(rounded) || isinf(y)) return y == rounded ? 0.0 : INFINITY;
    int e;
    frexp(exact, &e); /* |exact| in [2^(e-1), 2^e): the float spacing there is 2^(e-24) */
    double ulp = ldexp(1.0, e - 24 < -149 ? -149 : e - 24);
    return fabs((double)y - exact) / ulp;
}

typedef struct worst {
    double ulp;
    float x;
    long count;
} worst;

/* Runs f over xs[0..n) and folds the errors against ref into w. */
static void measure(vfn f, const float *xs, const double *ref, int64_t n, worst *w)
{
    static float y[CHUNK];
    f(xs, y, n);
    for (int64_t i = 0; i < n; i++) {
        double e = ulp_error(y[i], ref[i]);
        if (e > w->ulp || (isinf(e) && !isinf(w->ulp))) {
            w->ulp = e;
            w->x = xs[i];
        }
    }
    w->count += (long)n;
}

typedef struct fn_case {
    const char *name;
    vfn simd, portable;
    double (*ref)(double);
    float range;      /* sweep [-range, range] (log: (0, range]) */
    double bound;     /* the largest error in ulp the test accepts */
    float dense[3];   /* sweep every float within 2^14 floats of each of these (0: none) */
} fn_case;

static struct {
    float x[CHUNK];
    double ref[CHUNK];
    int n;
} batch;

static void flush(const fn_case *c, worst *ws, worst *wp)
{
    for (int i = 0; i < batch.n; i++) batch.ref[i] = c->ref((double)batch.x[i]);
    if (dn_vmath_simd()) measure(c->simd, batch.x, batch.ref, batch.n, ws);
    measure(c->portable, batch.x, batch.ref, batch.n, wp);
    batch.n = 0;
}

static void add(const fn_case *c, float x, worst *ws, worst *wp)
{
    batch.x[batch.n++] = x;
    if (batch.n == CHUNK) flush(c, ws, wp);
}

/* The SIMD path's name (AVX2 on x86-64, NEON on aarch64: vmath has no AVX-512 path of its own). */
static const char *simd_name(void)
{
#if defined(__aarch64__)
    return "neon";
#else
    return "avx2";
#endif
}

static void sweep(const fn_case *c)
{
    worst ws = {0, 0, 0}, wp = {0, 0, 0};
    uint32_t top = u_of(c->range);
    bool positive_only = c->ref == log;
    for (uint32_t u = 1; u <= top; u += STRIDE) {
        add(c, f_of(u), &ws, &wp);
        if (!positive_only) add(c, -f_of(u), &ws, &wp);
    }
    for (int d = 0; d < 3 && c->dense[d] != 0.0f; d++) {
        uint32_t mid = u_of(c->dense[d]);
        for (uint32_t u = mid - (1u << 14); u <= mid + (1u << 14); u++) add(c, f_of(u), &ws, &wp);
    }
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MIN, -FLT_MIN, 0x1p-149f,
                                     -0x1p-149f, FLT_MAX, -FLT_MAX, 1.0f, -1.0f, 88.72283f, 88.72284f,
                                     -87.33654f, -103.97208f, -103.9721f, 0.625f, -0.625f, 9.0f, 1e4f};
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) add(c, specials[i], &ws, &wp);
    flush(c, &ws, &wp);

    if (dn_vmath_simd()) {
        printf("    vmath %-7s %s:     max %.3f ulp (at x = %.9g) over %ld inputs\n", c->name, simd_name(), ws.ulp,
               (double)ws.x, ws.count);
        CHECK_MSG(ws.ulp <= c->bound, "%s (%s): %.3f ulp at x = %.9g, bound %g", c->name, simd_name(), ws.ulp,
                  (double)ws.x, c->bound);
    } else {
        printf("    vmath %-7s simd:     not available (no AVX2 + FMA or NEON, built without it, or capped by DN_ISA)\n",
               c->name);
    }
    printf("    vmath %-7s portable: max %.3f ulp (at x = %.9g) over %ld inputs\n", c->name, wp.ulp, (double)wp.x,
           wp.count);
    CHECK_MSG(wp.ulp <= c->bound, "%s (portable): %.3f ulp at x = %.9g, bound %g", c->name, wp.ulp, (double)wp.x,
              c->bound);
}

/* Bounds: a little above the maxima of an exhaustive run over every float of these ranges (exp 1.01 ulp,
 * tanh 1.33, sigmoid 1.48, log 0.83; docs/ops.md), so a less accurate change fails: sigmoid with a plain
 * float division, for one, reaches 2.26. */
static const fn_case cases[] = {
    {"exp", dn_vexp, dn_vexp_portable, exp, 105.0f, 1.1, {88.72283f, -87.33654f, -103.97208f}},
    {"tanh", dn_vtanh, dn_vtanh_portable, tanh, 12.0f, 1.5, {0.625f, 9.0f, 0}},
    {"sigmoid", dn_vsigmoid, dn_vsigmoid_portable, ref_sigmoid, 110.0f, 1.6, {-87.33654f, -16.0f, 0}},
    {"log", dn_vlog, dn_vlog_portable, log, FLT_MAX, 1.0, {1.0f, 0.70710677f, FLT_MIN}},
};

static void vmath_ulp_against_libm(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) sweep(&cases[i]);
}

/* ------------------------------------------------------------------ special values */

/* Same bits, or both NaN. */
static bool same(float a, float b) { return (isnan(a) && isnan(b)) || u_of(a) == u_of(b); }

static void check_special(const char *name, vfn f, float x, float want)
{
    float y;
    f(&x, &y, 1);
    CHECK_MSG(same(y, want), "%s(%.9g) = %.9g (bits %08x), want %.9g (bits %08x)", name, (double)x, (double)y,
              (unsigned)u_of(y), (double)want, (unsigned)u_of(want));
}

static void vmath_special_values(void)
{
    for (int path = 0; path < 2; path++) {
        if (path == 0 && !dn_vmath_simd()) continue;
        vfn vexp = path ? dn_vexp_portable : dn_vexp, vtanh = path ? dn_vtanh_portable : dn_vtanh;
        vfn vsig = path ? dn_vsigmoid_portable : dn_vsigmoid, vlog = path ? dn_vlog_portable : dn_vlog;
        check_special("exp", vexp, NAN, NAN);
        check_special("exp", vexp, -INFINITY, 0.0f);
        check_special("exp", vexp, INFINITY, INFINITY);
        check_special("exp", vexp, 0.0f, 1.0f);
        check_special("exp", vexp, -0.0f, 1.0f);
        check_special("exp", vexp, 88.73f, INFINITY);
        check_special("exp", vexp, FLT_MAX, INFINITY);
        check_special("exp", vexp, -FLT_MAX, 0.0f);
        check_special("exp", vexp, -104.0f, 0.0f);
        check_special("exp", vexp, -103.9f, 0x1p-149f); /* e^-103.9 = 1.5e-45: the smallest subnormal */
        check_special("exp", vexp, -100.0f, (float)exp(-100.0));

        check_special("tanh", vtanh, NAN, NAN);
        check_special("tanh", vtanh, 0.0f, 0.0f);
        check_special("tanh", vtanh, -0.0f, -0.0f);
        check_special("tanh", vtanh, INFINITY, 1.0f);
        check_special("tanh", vtanh, -INFINITY, -1.0f);
        check_special("tanh", vtanh, 9.5f, 1.0f);
        check_special("tanh", vtanh, -1e4f, -1.0f);
        check_special("tanh", vtanh, -FLT_MAX, -1.0f);
        check_special("tanh", vtanh, 0x1p-149f, 0x1p-149f);
        check_special("tanh", vtanh, -1e-20f, -1e-20f);

        check_special("sigmoid", vsig, NAN, NAN);
        check_special("sigmoid", vsig, INFINITY, 1.0f);
        check_special("sigmoid", vsig, -INFINITY, 0.0f);
        check_special("sigmoid", vsig, 0.0f, 0.5f);
        check_special("sigmoid", vsig, -0.0f, 0.5f);
        check_special("sigmoid", vsig, 20.0f, 1.0f);
        check_special("sigmoid", vsig, FLT_MAX, 1.0f);
        check_special("sigmoid", vsig, -FLT_MAX, 0.0f);
        check_special("sigmoid", vsig, -200.0f, 0.0f);
        check_special("sigmoid", vsig, -100.0f, (float)ref_sigmoid(-100.0)); /* subnormal, not flushed */

        check_special("log", vlog, NAN, NAN);
        check_special("log", vlog, 0.0f, -INFINITY);
        check_special("log", vlog, -0.0f, -INFINITY);
        check_special("log", vlog, -1.0f, NAN);
        check_special("log", vlog, -INFINITY, NAN);
        check_special("log", vlog, -0x1p-149f, NAN);
        check_special("log", vlog, INFINITY, INFINITY);
        check_special("log", vlog, 1.0f, 0.0f);
        check_special("log", vlog, 0x1p-149f, (float)log(0x1p-149));
        check_special("log", vlog, FLT_MAX, (float)log((double)FLT_MAX));
    }
}

/* In place, and every length 0..19 (the AVX2 path's tails): element for element the same as one call over
 * the whole array, and nothing written past n. */
static void vmath_in_place_and_tails(void)
{
    enum { N = 19 };
    float x[N], whole[N], part[N + 1], inplace[N];
    for (int i = 0; i < N; i++) x[i] = -6.0f + 0.61f * (float)i;
    vfn fns[] = {dn_vexp, dn_vtanh, dn_vsigmoid, dn_vlog};
    for (int k = 0; k < 4; k++) {
        fns[k](x, whole, N);
        for (int n = 0; n <= N; n++) {
            for (int i = 0; i <= N; i++) part[i] = -7.0f;
            fns[k](x, part, n);
            for (int i = 0; i < n; i++) CHECK_MSG(same(part[i], whole[i]), "fn %d, n %d: element %d differs", k, n, i);
            for (int i = n; i <= N; i++) CHECK_MSG(part[i] == -7.0f, "fn %d, n %d: wrote element %d", k, n, i);
        }
        memcpy(inplace, x, sizeof x);
        fns[k](inplace, inplace, N);
        for (int i = 0; i < N; i++) CHECK_MSG(same(inplace[i], whole[i]), "fn %d in place: element %d differs", k, i);
    }
}

/* ------------------------------------------------------------------ optional timing */

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void libm_expf(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}
static void libm_tanhf(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void libm_sigmoidf(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void libm_logf(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = logf(x[i]);
}

/* ns per element over arrays of 1024 (the size of an LSTM row's gates), best of 5 runs of 2000 calls. */
static double ns_per_element(vfn f, const float *x, float *y)
{
    double best = INFINITY;
    for (int run = 0; run < 5; run++) {
        double t0 = seconds();
        for (int rep = 0; rep < 2000; rep++) f(x, y, 1024);
        double t = (seconds() - t0) / (2000.0 * 1024.0) * 1e9;
        if (t < best) best = t;
    }
    return best;
}

static void vmath_timing(void)
{
    static float x[1024], xpos[1024], y[1024];
    for (int i = 0; i < 1024; i++) {
        x[i] = -8.0f + 16.0f * (float)i / 1024.0f;
        xpos[i] = 1e-3f + 100.0f * (float)i / 1024.0f;
    }
    struct {
        const char *name;
        vfn libm, simd, portable;
        const float *in;
    } rows[] = {{"exp", libm_expf, dn_vexp, dn_vexp_portable, x},
                {"tanh", libm_tanhf, dn_vtanh, dn_vtanh_portable, x},
                {"sigmoid", libm_sigmoidf, dn_vsigmoid, dn_vsigmoid_portable, x},
                {"log", libm_logf, dn_vlog, dn_vlog_portable, xpos}};
    for (int r = 0; r < 4; r++)
        printf("    vmath %-7s ns/element: libm %.2f, %s %.2f, portable %.2f\n", rows[r].name,
               ns_per_element(rows[r].libm, rows[r].in, y), dn_vmath_simd() ? simd_name() : "(no simd)",
               ns_per_element(rows[r].simd, rows[r].in, y), ns_per_element(rows[r].portable, rows[r].in, y));
}

void suite_vmath(void)
{
    RUN(vmath_ulp_against_libm);
    RUN(vmath_special_values);
    RUN(vmath_in_place_and_tails);
    const char *bench = getenv("DN_VMATH_BENCH");
    if (bench && *bench && strcmp(bench, "0") != 0) RUN(vmath_timing);
}
