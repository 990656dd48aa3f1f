/* Every registered op's backward against central finite differences (the registry is walked, so no op
 * can escape). */
#include "test.h"

static const dn_op *current;

static void check_current(void)
{
    double worst = 0;
    char msg[512];
    dn_status s = dn_gradcheck_op(current, &worst, msg, sizeof msg);
    CHECK_MSG(s == DN_OK, "%s: %s", dn_op_name(current), msg);
}

/* The checker itself must be able to fail: a deliberately wrong backward is caught. */
static void gradcheck_catches_wrong_gradient(void);
static void gradcheck_catches_5_percent_in_one_element(void);

void suite_gradcheck(void)
{
    int n = dn_op_count();
    CHECK(n > 0);
    for (int i = 0; i < n; i++) {
        current = dn_op_at(i);
        char name[96];
        snprintf(name, sizeof name, "gradcheck/%s", dn_op_name(current));
        t_run(name, check_current);
    }
    RUN(gradcheck_catches_wrong_gradient);
    RUN(gradcheck_catches_5_percent_in_one_element);
}

#include "../src/internal.h"

static dn_status bad_backward(dn_ctx *ctx, dn_node *node)
{
    /* claims d exp(x)/dx = 2 exp(x) */
    float *dx = dn_grad_buf(ctx, node->in[0]);
    if (!dx) return DN_ERR_NOMEM;
    int64_t n = dn_tensor_numel(node->in[0]);
    for (int64_t i = 0; i < n; i++) dx[i] += 2.0f * node->out->grad[i] * node->out->data[i];
    return DN_OK;
}

static void gradcheck_catches_wrong_gradient(void)
{
    dn_op bad = *dn_op_find("exp");
    bad.backward = bad_backward;
    double worst = 0;
    char msg[256];
    dn_status s = dn_gradcheck_op(&bad, &worst, msg, sizeof msg);
    CHECK(s != DN_OK);
    CHECK(worst > 1.0);
}

/* A real op whose backward is right except for one element of its first input's gradient, 5% too large. */
static const dn_op *wrapped;
static int64_t wrong_at;   /* the element; -1: none (the unmodified op) */
static int n_wrong;        /* cases in which the element was made wrong */

static dn_status backward_5_percent(dn_ctx *ctx, dn_node *node)
{
    dn_status s = wrapped->backward(ctx, node);
    if (s || wrong_at < 0 || wrong_at >= dn_tensor_numel(node->in[0])) return s;
    float *dx = dn_grad_buf(ctx, node->in[0]);
    if (!dx) return DN_ERR_NOMEM;
    /* only where the gradient is not tiny: 5% of |g| must stand above the finite differences' resolution */
    if (fabsf(dx[wrong_at]) >= 1e-3f) {
        dx[wrong_at] *= 1.05f;
        n_wrong++;
    }
    return DN_OK;
}

/* Every element of the first input in turn: the checker rejects the op whenever that element was made 5% wrong
 * (and names it), and passes the same wrapper with no element wrong. */
static void check_5_percent(const char *name)
{
    dn_op op = *dn_op_find(name);
    wrapped = dn_op_find(name);
    op.backward = backward_5_percent;
    double worst = 0;
    char msg[512];
    wrong_at = -1;
    CHECK_MSG(dn_gradcheck_op(&op, &worst, msg, sizeof msg) == DN_OK, "%s unmodified: %s", name, msg);
    int tried = 0, caught = 0;
    for (wrong_at = 0; wrong_at < 24; wrong_at++) {
        n_wrong = 0;
        dn_status s = dn_gradcheck_op(&op, &worst, msg, sizeof msg);
        if (!n_wrong) continue;
        tried++;
        char where[64];
        snprintf(where, sizeof where, "element %lld:", (long long)wrong_at);
        if (s != DN_OK && strstr(msg, where)) caught++;
        else CHECK_MSG(0, "%s with element %lld of input 0's gradient 5%% off: %s", name, (long long)wrong_at, msg);
    }
    CHECK_MSG(tried >= 8, "%s: only %d elements had a gradient to spoil", name, tried);
    wrong_at = -1;
}

static void gradcheck_catches_5_percent_in_one_element(void)
{
    check_5_percent("mul");
    check_5_percent("tanh");
}
