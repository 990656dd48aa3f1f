#include "test.h"

#include <stdarg.h>
#include <stdlib.h>

int t_failures_in_test;
static int passed, failed, skipped;
static char skip_reason[512]; /* set by t_skip in the running test */

void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (t_failures_in_test < 10) {
        fprintf(stdout, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    }
    t_failures_in_test++;
}

int t_required(const char *requirement)
{
    const char *list = getenv("DN_REQUIRE");
    size_t len = strlen(requirement);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, requirement, n) == 0) return 1;
        p = end ? end + 1 : p + n;
    }
    return 0;
}

void t_skip(const char *requirement, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (t_required(requirement)) {
        printf("    DN_REQUIRE lists '%s', but: %s\n", requirement, why);
        t_failures_in_test++;
        return;
    }
    if (!skip_reason[0]) snprintf(skip_reason, sizeof skip_reason, "%s", why);
}

int t_need_mnist(void)
{
    static const char *files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                  "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/mnist/%s", t_data_dir(), files[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            t_skip("mnist", "%s not found (run scripts/fetch-mnist.sh, or make test fetches it)", path);
            return 0;
        }
        fclose(f);
    }
    return 1;
}

double t_max_rel_err(const float *a, const float *b, long long n, double floor)
{
    double worst = 0;
    for (long long i = 0; i < n; i++)
        worst = t_worse(worst, fabs((double)a[i] - (double)b[i]) / fmax(fabs((double)b[i]), floor));
    return worst;
}

void t_run(const char *name, void (*fn)(void))
{
    t_failures_in_test = 0;
    skip_reason[0] = '\0';
    fn();
    if (t_failures_in_test) {
        failed++;
        printf("FAIL %s\n", name);
    } else if (skip_reason[0]) {
        skipped++;
        printf("skip %s: %s\n", name, skip_reason);
    } else {
        passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

const char *t_golden_dir(void) { return "tests/golden"; }

void t_expect_error(const char *file, int line, dn_ctx *ctx, const dn_tensor *out, dn_status want, const char *a,
                    const char *b, const char *c)
{
    const char *msg = dn_last_error();
    if (out) t_fail(file, line, "expected %s, got a tensor", dn_status_name(want));
    if (dn_ctx_status(ctx) != want)
        t_fail(file, line, "expected %s, got %s (%s)", dn_status_name(want), dn_status_name(dn_ctx_status(ctx)), msg);
    const char *parts[] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (parts[i] && !strstr(msg, parts[i])) t_fail(file, line, "message '%s' lacks '%s'", msg, parts[i]);
    dn_ctx_reset(ctx);
}

const char *t_tmp_path(const char *name)
{
    static char dir[64], buf[8][512];
    static int k;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/dn_test_XXXXXX");
        if (!mkdtemp(dir)) snprintf(dir, sizeof dir, "/tmp");
    }
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

const char *t_data_dir(void)
{
    const char *d = getenv("DN_DATA");
    return d && *d ? d : "data";
}

/* ------------------------------------------------------------------ the runner's own tests */

/* A NaN anywhere in an array, not only last, makes the error figure NaN (and so fails `worst <= tol`). */
static void runner_nan_is_worst(void)
{
    float want[5] = {1, 2, 3, 4, 5}, got[5] = {1, 2, NAN, 4, 5.5f};
    double r = t_max_rel_err(got, want, 5, 1e-3);
    CHECK_MSG(isnan(r), "a NaN in the middle gave %g", r);
    CHECK(!(r <= 1.0));
    got[2] = 3;
    CHECK_NEAR(t_max_rel_err(got, want, 5, 1e-3), 0.1, 1e-7);
    CHECK(isnan(t_worse(t_worse(0.0, NAN), 2.0)) && isnan(t_worse(NAN, 0.0)) && t_worse(1.0, 0.5) == 1.0);
}

void suite_runner(void) { RUN(runner_nan_is_worst); }

/* Named only (`test_runner selftest`): tests/test_runner.sh checks that a skip is counted and printed, and that
 * DN_REQUIRE=selftest turns it into a failure. */
static void selftest_skips(void) { t_skip("selftest", "this test always skips"); }
static void suite_selftest(void) { RUN(selftest_skips); }

/* Each test file registers its tests in one function. */
#define SUITES(X)                                                                                           \
    X(runner) X(core) X(gradcheck) X(golden) X(act_loss) X(optim) X(data_io) X(train) X(conv) X(norm) X(cnn) X(rnn) \
    X(seq) X(threads) X(reliability) X(vmath) X(tables) \
    X(rowkernels) X(golden_big) X(onnx) X(replica) X(dist)
#define DECLARE(name) void suite_##name(void);
SUITES(DECLARE)

typedef struct suite {
    const char *name;
    void (*fn)(void);
} suite;

/* test_runner [SUITE...]: every suite, or the named ones in the order given; an unknown name is an error. */
int main(int argc, char **argv)
{
#define ENTRY(name) {#name, suite_##name},
    static const suite all[] = {SUITES(ENTRY){"selftest", suite_selftest}};
    const int n_all = (int)(sizeof all / sizeof all[0]), n_default = n_all - 1; /* selftest runs only by name */
    for (int a = 1; a < argc; a++) {
        int k = 0;
        while (k < n_all && strcmp(all[k].name, argv[a]) != 0) k++;
        if (k == n_all) {
            fprintf(stderr, "test_runner: no suite named '%s'; the suites are:", argv[a]);
            for (int j = 0; j < n_all; j++) fprintf(stderr, " %s", all[j].name);
            fprintf(stderr, "\n");
            return 2;
        }
    }
    if (argc > 1) {
        for (int a = 1; a < argc; a++)
            for (int k = 0; k < n_all; k++)
                if (strcmp(all[k].name, argv[a]) == 0) all[k].fn();
    } else {
        for (int k = 0; k < n_default; k++) all[k].fn();
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
