/* Distributed training's gradient buckets (src/dist/grad_sync.c), in one process: each bucket must start its
 * all-reduce only once backward has written its gradients for the last time, and most buckets must start before
 * backward ends (that is the overlap).  The transport of the default build sums nothing, so the flat buffer at the
 * end is what every bucket must have held when it started.  tests/test_mpi.sh checks the sums across processes. */
#include "test.h"
#include "dist/dist.h"

#include <stdlib.h>

/* A weight used by two nodes (the same linear layer applied twice): its last writer is the older node, which
 * backward reaches after the newer one. */
static void buckets_start_when_final(void)
{
    const char *cfg = "[net]\ninput = 64\n[dense]\nunits = 64\n[dense]\nunits = 64\n[dense]\nunits = 16\n";
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg(cfg, "test.cfg", &m, NULL));
    if (!m) return;
    setenv("DN_BUCKET_KB", "0", 1); /* ignored: not a positive size, so the default of 1 MiB */
    grad_sync *g = NULL;
    CHECK_OK(grad_sync_new(m, &g));
    CHECK(g && grad_sync_bucket_floats(g) == (1u << 20) / sizeof(float));
    grad_sync_free(g);
    g = NULL;
    /* buckets of 256 floats: 37 of them over the model's 9360 parameters */
    setenv("DN_BUCKET_KB", "1", 1);
    CHECK_OK(grad_sync_new(m, &g));
    unsetenv("DN_BUCKET_KB");
    if (!g) {
        dn_model_free(m);
        return;
    }
    size_t n = dn_model_param_count(m);
    float *shadow = calloc(n, sizeof(float));
    grad_sync_set_shadow(g, shadow);
    dn_ctx *ctx = dn_ctx_new();
    float xs[4 * 64];
    for (int i = 0; i < 4 * 64; i++) xs[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    for (int step = 0; step < 2; step++) {
        dn_ctx_reset(ctx);
        dn_tensor *x = NULL;
        CHECK_OK(dn_tensor_from(ctx, 2, (int64_t[]){4, 64}, xs, &x));
        dn_tensor *w0 = dn_model_tensor(m, 0), *b0 = dn_model_tensor(m, 1);
        dn_tensor *w1 = dn_model_tensor(m, 2), *b1 = dn_model_tensor(m, 3);
        dn_tensor *w2 = dn_model_tensor(m, 4), *b2 = dn_model_tensor(m, 5);
        dn_tensor *h = dn_tanh(ctx, dn_linear(ctx, x, w0, b0));
        h = dn_tanh(ctx, dn_linear(ctx, h, w1, b1));
        h = dn_tanh(ctx, dn_linear(ctx, h, w1, b1)); /* layer 1 again */
        dn_tensor *loss = dn_mean(ctx, dn_linear(ctx, h, w2, b2), 0, false);
        CHECK(loss != NULL);
        if (!loss) break;
        dn_model_zero_grad(m);
        memset(shadow, 0, n * sizeof(float));
        grad_sync_begin(g, ctx);
        CHECK_OK(dn_backward_hooked(ctx, loss, grad_sync_node, g));
        double wait = 0;
        CHECK_OK(grad_sync_finish(g, &wait));
        const float *grads = dn_model_grads(m);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) differ += memcmp(&shadow[i], &grads[i], sizeof(float)) != 0;
        CHECK_MSG(differ == 0, "step %d: %zu of %zu gradients changed after their bucket started", step, differ, n);
        /* the output layer's and the first use of layer 1's buckets start before backward reaches layer 0 */
        CHECK_MSG(grad_sync_early_buckets(g) >= 2, "only %d buckets started during backward",
                  grad_sync_early_buckets(g));
    }
    dn_ctx_free(ctx);
    free(shadow);
    grad_sync_free(g);
    dn_model_free(m);
}

void suite_dist(void) { RUN(buckets_start_when_final); }
