#include "test.h"

#include <stdarg.h>
#include <stdlib.h>

int t_failures_in_test;
static int passed, failed;

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

void t_run(const char *name, void (*fn)(void))
{
    t_failures_in_test = 0;
    fn();
    if (t_failures_in_test) {
        failed++;
        printf("FAIL %s\n", name);
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

/* Each test file registers its tests in one function. */
#define SUITES(X) X(core) X(gradcheck) X(golden) X(act_loss) X(optim) X(data_io) X(train) X(conv) X(norm) X(cnn) X(rnn) X(seq) X(threads) X(reliability) X(vmath) X(onnx)
#define DECLARE(name) void suite_##name(void);
SUITES(DECLARE)

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
#define CALL(name)                                                                                          \
    if (!only || strcmp(only, #name) == 0) suite_##name();
    SUITES(CALL)
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
