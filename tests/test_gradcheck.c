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
