/* Tensors, contexts, the arena, the tape and error handling. */
#include "test.h"

#include "../src/internal.h"

static void tensor_basics(void)
{
    dn_tensor *t = NULL;
    int64_t shape[] = {2, 3};
    float data[] = {1, 2, 3, 4, 5, 6};
    CHECK_OK(dn_tensor_from(NULL, 2, shape, data, &t));
    CHECK(dn_tensor_ndim(t) == 2 && dn_tensor_dim(t, -1) == 3 && dn_tensor_numel(t) == 6);
    CHECK(dn_tensor_data(t) && dn_tensor_data(t)[4] == 5);
    char buf[32];
    CHECK(strcmp(dn_tensor_shape_str(t, buf, sizeof buf), "[2, 3]") == 0);
    dn_tensor_free(t);
    dn_tensor_free(NULL);

    int64_t bad[] = {2, -1};
    t = (dn_tensor *)1;
    CHECK(dn_tensor_new(NULL, 2, bad, &t) == DN_ERR_SHAPE && t == NULL);
    CHECK(strstr(dn_last_error(), "negative") != NULL);
    int64_t big[] = {1LL << 30, 1LL << 30};
    CHECK(dn_tensor_new(NULL, 2, big, &t) == DN_ERR_SHAPE);
    CHECK(dn_tensor_new(NULL, 7, shape, &t) == DN_ERR_SHAPE);
}

static void views_share_storage(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x;
    int64_t shape[] = {2, 3, 4};
    CHECK_OK(dn_tensor_new(ctx, 3, shape, &x));
    for (int i = 0; i < 24; i++) x->data[i] = (float)i;
    dn_tensor *r = dn_reshape(ctx, x, 2, (int64_t[]){6, 4});
    CHECK(r && r->data == x->data);
    dn_tensor *p = dn_transpose(ctx, x, 0, 2); /* [4, 3, 2] */
    CHECK(p && p->data == x->data && !dn_tensor_is_contiguous(p));
    CHECK(dn_tensor_dim(p, 0) == 4 && dn_tensor_get(p, 1) == 12.0f); /* p[0,0,1] = x[1,0,0] */
    dn_tensor *s = dn_slice(ctx, x, 1, 1, 3, 1);                      /* [2, 2, 4] */
    CHECK(s && s->data == x->data + 4 && dn_tensor_get(s, 0) == 4.0f && dn_tensor_get(s, 8) == 16.0f);
    dn_tensor *c = dn_contiguous(ctx, p);
    CHECK(c && dn_tensor_is_contiguous(c) && dn_tensor_data(c)[1] == 12.0f);
    /* reshape of a non-contiguous view copies */
    dn_tensor *rp = dn_reshape(ctx, p, 1, (int64_t[]){24});
    CHECK(rp && rp->data != x->data && dn_tensor_data(rp)[1] == 12.0f);
    CHECK(dn_ctx_status(ctx) == DN_OK);
    dn_ctx_free(ctx);
}

static void broadcasting_forward(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *a, *b;
    CHECK_OK(dn_tensor_from(ctx, 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6}, &a));
    CHECK_OK(dn_tensor_from(ctx, 1, (int64_t[]){3}, (float[]){10, 20, 30}, &b));
    dn_tensor *y = dn_add(ctx, a, b);
    CHECK(y && dn_tensor_numel(y) == 6 && dn_tensor_data(y)[5] == 36.0f);
    dn_tensor *c;
    CHECK_OK(dn_tensor_from(ctx, 2, (int64_t[]){2, 1}, (float[]){2, 3}, &c));
    y = dn_mul(ctx, a, c);
    CHECK(y && dn_tensor_data(y)[0] == 2.0f && dn_tensor_data(y)[5] == 18.0f);
    dn_ctx_free(ctx);
}

static void sticky_errors(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *a, *b;
    CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){2, 3}, &a));
    CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){4, 5}, &b));
    dn_tensor *y = dn_add(ctx, a, b);
    CHECK(y == NULL);
    CHECK(dn_ctx_status(ctx) == DN_ERR_SHAPE);
    CHECK(strstr(dn_last_error(), "add") && strstr(dn_last_error(), "[2, 3]") && strstr(dn_last_error(), "[4, 5]"));
    /* later ops return NULL without touching the first message */
    CHECK(dn_exp(ctx, a) == NULL);
    CHECK(strstr(dn_last_error(), "[4, 5]") != NULL);
    CHECK(dn_backward(ctx, y) != DN_OK);
    dn_ctx_reset(ctx);
    CHECK(dn_ctx_status(ctx) == DN_OK);
    CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){2, 3}, &a));
    CHECK(dn_exp(ctx, a) != NULL);
    CHECK(dn_matmul(ctx, a, a) == NULL && strstr(dn_last_error(), "inner dimensions"));
    dn_ctx_reset(ctx);
    CHECK(dn_apply_named(ctx, "nope", 1, &a, NULL) == NULL && strstr(dn_last_error(), "nope"));
    dn_ctx_reset(ctx);
    CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){2, 3}, &a));
    CHECK(dn_apply_named(ctx, "pow", 1, &a, "exponnent=2") == NULL && strstr(dn_last_error(), "exponnent"));
    dn_ctx_free(ctx);
}

static void backward_accumulates(void)
{
    /* y = sum(x * x + x): dy/dx = 2x + 1; a second step without zeroing doubles it */
    dn_tensor *x;
    CHECK_OK(dn_tensor_from(NULL, 1, (int64_t[]){3}, (float[]){1, -2, 0.5f}, &x));
    CHECK_OK(dn_tensor_set_requires_grad(x, true));
    dn_ctx *ctx = dn_ctx_new();
    for (int step = 1; step <= 2; step++) {
        dn_tensor *y = dn_sum(ctx, dn_add(ctx, dn_mul(ctx, x, x), x), 0, false);
        CHECK_OK(dn_backward(ctx, y));
        CHECK(dn_backward(ctx, y) == DN_ERR_STATE); /* twice on one tape is refused */
        CHECK_NEAR(dn_tensor_grad(x)[0], step * 3.0, 1e-6);
        CHECK_NEAR(dn_tensor_grad(x)[1], step * -3.0, 1e-6);
        dn_ctx_reset(ctx);
    }
    dn_tensor_zero_grad(x);
    CHECK(dn_tensor_grad(x)[0] == 0.0f);
    /* no-grad mode records nothing */
    dn_ctx_set_grad(ctx, false);
    dn_tensor *y = dn_sum(ctx, dn_mul(ctx, x, x), 0, false);
    CHECK(y && !dn_tensor_requires_grad(y));
    CHECK(dn_backward(ctx, y) == DN_ERR_STATE);
    dn_ctx_free(ctx);
    dn_tensor_free(x);
}

static void arena_reuses_memory(void)
{
    dn_ctx *ctx = dn_ctx_new();
    size_t cap = 0;
    for (int step = 0; step < 5; step++) {
        dn_tensor *t;
        for (int i = 0; i < 50; i++) CHECK_OK(dn_tensor_new(ctx, 1, (int64_t[]){100000}, &t));
        if (step == 1) cap = dn_ctx_arena_bytes(ctx);
        if (step > 1) CHECK(dn_ctx_arena_bytes(ctx) == cap); /* steady state: no growth */
        dn_ctx_reset(ctx);
    }
    dn_ctx_free(ctx);
}

static void rng_is_reproducible(void)
{
    dn_rng a, b;
    dn_rng_seed(&a, 42);
    dn_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(dn_rng_u32(&a) == dn_rng_u32(&b));
    double s = 0, s2 = 0;
    for (int i = 0; i < 20000; i++) {
        float v = dn_rng_normal(&a);
        s += v;
        s2 += v * v;
    }
    CHECK_NEAR(s / 20000, 0.0, 0.03);
    CHECK_NEAR(s2 / 20000, 1.0, 0.05);
}

static void registry_is_sane(void)
{
    int n = dn_op_count();
    for (int i = 0; i < n; i++) {
        const dn_op *op = dn_op_at(i);
        CHECK_MSG(dn_op_doc(op) && *dn_op_doc(op), "op %s has no doc", dn_op_name(op));
        CHECK_MSG(dn_op_find(dn_op_name(op)) == op, "op name %s is registered twice", dn_op_name(op));
    }
}

void suite_core(void)
{
    RUN(tensor_basics);
    RUN(views_share_storage);
    RUN(broadcasting_forward);
    RUN(sticky_errors);
    RUN(backward_accumulates);
    RUN(arena_reuses_memory);
    RUN(rng_is_reproducible);
    RUN(registry_is_sane);
}
