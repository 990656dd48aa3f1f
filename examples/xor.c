/* XOR with a 2-4-1 network: the smallest problem a single layer cannot solve.
 * Build: make examples; run: build/examples/xor */
#include <dendrite.h>
#include <stdio.h>

#define CHECK(call)                                                                                         \
    do {                                                                                                    \
        if ((call) != DN_OK) {                                                                              \
            fprintf(stderr, "error: %s\n", dn_last_error());                                                \
            return 1;                                                                                       \
        }                                                                                                   \
    } while (0)

int main(void)
{
    const float inputs[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    const float targets[4] = {0, 1, 1, 0};

    dn_model *model;
    CHECK(dn_model_new(1, (int64_t[]){2}, 7, &model));
    CHECK(dn_model_add_dense(model, 4, DN_INIT_XAVIER_UNIFORM, true));
    CHECK(dn_model_add_activation(model, "tanh", NULL));
    CHECK(dn_model_add_dense(model, 1, DN_INIT_XAVIER_UNIFORM, true));

    dn_optim_config oc;
    dn_optim_defaults(DN_ADAM, &oc);
    oc.lr = 0.05f;
    dn_optim *opt;
    CHECK(dn_optim_new(&oc, dn_model_param_count(model), NULL, &opt));

    dn_ctx *ctx = dn_ctx_new();
    if (!ctx) return 1;
    float loss_value = 0;
    for (int step = 0; step < 500; step++) {
        dn_ctx_reset(ctx); /* drop last step's activations and tape; the memory is reused */
        dn_tensor *x, *y;
        CHECK(dn_tensor_from(ctx, 2, (int64_t[]){4, 2}, &inputs[0][0], &x));
        CHECK(dn_tensor_from(ctx, 2, (int64_t[]){4, 1}, targets, &y));
        dn_tensor *logits = dn_model_forward(model, ctx, x);
        dn_tensor *loss = dn_bce_with_logits(ctx, logits, y, DN_REDUCE_MEAN);
        if (!loss) { /* any failed op above leaves its message here */
            fprintf(stderr, "error: %s\n", dn_last_error());
            return 1;
        }
        dn_model_zero_grad(model);
        CHECK(dn_backward(ctx, loss));
        dn_optim_step(opt, dn_model_params(model), dn_model_grads(model));
        loss_value = dn_tensor_data(loss)[0];
    }

    int correct = 0;
    dn_ctx_reset(ctx);
    dn_ctx_set_grad(ctx, false);
    dn_tensor *x;
    CHECK(dn_tensor_from(ctx, 2, (int64_t[]){4, 2}, &inputs[0][0], &x));
    dn_tensor *p = dn_sigmoid(ctx, dn_model_forward(model, ctx, x));
    if (!p) return 1;
    for (int i = 0; i < 4; i++) {
        float v = dn_tensor_data(p)[i];
        printf("%g xor %g -> %.3f\n", inputs[i][0], inputs[i][1], v);
        correct += (v > 0.5f) == (targets[i] > 0.5f);
    }
    printf("final loss %.4f, %d/4 correct\n", loss_value, correct);
    dn_ctx_free(ctx);
    dn_optim_free(opt);
    dn_model_free(model);
    return correct == 4 ? 0 : 1;
}
