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

const char *t_data_dir(void)
{
    const char *d = getenv("DN_DATA");
    return d && *d ? d : "data";
}

/* Each test file registers its tests in one function. */
#define SUITES(X) X(core) X(gradcheck) X(golden) X(act_loss) X(optim) X(data_io) X(train) X(conv) X(norm) X(cnn) X(rnn) X(seq)
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
