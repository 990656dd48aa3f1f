/* Fits sin(x) on [-pi, pi] with a 1-32-32-1 tanh network and mean squared error.
 * Build: make examples; run: build/examples/fit_sine */
#include <dendrite.h>
#include <math.h>
#include <stdio.h>

#define N 256

int main(void)
{
    static float xs[N], ys[N];
    for (int i = 0; i < N; i++) {
        xs[i] = -3.14159265f + 6.2831853f * (float)i / (N - 1);
        ys[i] = sinf(xs[i]);
    }
    dn_model *model = NULL;
    dn_optim *opt = NULL;
    dn_ctx *ctx = dn_ctx_new();
    dn_optim_config oc;
    dn_optim_defaults(DN_ADAM, &oc);
    oc.lr = 0.01f;
    if (!ctx || dn_model_new(1, (int64_t[]){1}, 3, &model) || dn_model_add_dense(model, 32, DN_INIT_DEFAULT, true) ||
        dn_model_add_activation(model, "tanh", NULL) || dn_model_add_dense(model, 32, DN_INIT_DEFAULT, true) ||
        dn_model_add_activation(model, "tanh", NULL) || dn_model_add_dense(model, 1, DN_INIT_DEFAULT, true) ||
        dn_optim_new(&oc, dn_model_param_count(model), NULL, &opt)) {
        fprintf(stderr, "error: %s\n", dn_last_error());
        return 1;
    }
    float mse = 0;
    for (int step = 0; step < 2000; step++) {
        dn_ctx_reset(ctx);
        dn_tensor *x, *y;
        if (dn_tensor_from(ctx, 2, (int64_t[]){N, 1}, xs, &x) || dn_tensor_from(ctx, 2, (int64_t[]){N, 1}, ys, &y))
            return 1;
        dn_tensor *loss = dn_mse_loss(ctx, dn_model_forward(model, ctx, x), y, DN_REDUCE_MEAN);
        dn_model_zero_grad(model);
        if (!loss || dn_backward(ctx, loss)) {
            fprintf(stderr, "error: %s\n", dn_last_error());
            return 1;
        }
        dn_optim_step(opt, dn_model_params(model), dn_model_grads(model));
        mse = dn_tensor_data(loss)[0];
        if (step % 500 == 0) printf("step %4d  mse %.6f\n", step, mse);
    }
    printf("final mse %.6f\n", mse);
    dn_optim_free(opt);
    dn_model_free(model);
    dn_ctx_free(ctx);
    return mse < 1e-3f ? 0 : 1;
}
