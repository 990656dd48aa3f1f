/* Convolutional networks end to end: cfg layers, shape errors, dropout and batch-norm modes, a small CNN and a
 * residual network trained on real MNIST. */
#include "test.h"

#include <stdlib.h>

static void expect_error(const char *text, const char *n1, const char *n2)
{
    dn_model *m = (dn_model *)1;
    dn_status s = dn_model_from_cfg(text, "cnn.cfg", &m, NULL);
    CHECK_MSG(s != DN_OK && m == NULL, "cfg was accepted:\n%s", text);
    CHECK_MSG(strstr(dn_last_error(), n1) && (!n2 || strstr(dn_last_error(), n2)), "message '%s' lacks '%s'/'%s'",
              dn_last_error(), n1, n2 ? n2 : "");
}

static void cnn_cfg_errors(void)
{
    /* kernel larger than the padded input */
    expect_error("[net]\ninput = 1, 4, 4\n[convolutional]\nfilters = 2\nsize = 7\n", "cnn.cfg:3", "larger");
    /* channels not divisible by groups */
    expect_error("[net]\ninput = 3, 8, 8\n[convolutional]\nfilters = 4\nsize = 3\ngroups = 2\n", "cnn.cfg:3", "groups");
    /* a shortcut to a layer of another shape */
    expect_error("[net]\ninput = 1, 8, 8\n[convolutional]\nfilters = 4\nsize = 3\npad = 1\n[convolutional]\n"
                 "filters = 8\nsize = 3\npad = 1\n[shortcut]\nfrom = -2\n", "cnn.cfg:11", "equal shapes");
    expect_error("[net]\ninput = 1, 8, 8\n[convolutional]\nfilters = 4\nsize = 3\n[shortcut]\nfrom = -5\n", "cnn.cfg:6",
                 "does not exist");
    expect_error("[net]\ninput = 1, 8, 8\n[convolutional]\nfilters = 4\nsize = 3\npad = 1\n[maxpool]\nsize = 2\n"
                 "[route]\nlayers = 0, 1\n", "cnn.cfg:9", "only channels");
    expect_error("[net]\ninput = 784\n[convolutional]\nfilters = 4\nsize = 3\n", "cnn.cfg:3", "[C, H, W]");
    expect_error("[net]\ninput = 1, 8, 8\n[convolutional]\nfilters = 4\nsize = 4\npad = same\n", "cnn.cfg:3", "odd");
    expect_error("[net]\ninput = 1, 8, 8\n[convolutional]\nfilters = 4\nsize = 3\npad = half\n", "cnn.cfg:6", "half");
    expect_error("[net]\ninput = 1, 8, 8\n[maxpool]\nsize = 16\n", "cnn.cfg:3", "larger");
    expect_error("[net]\ninput = 1, 8, 8\n[dropout]\np = 1.5\n", "cnn.cfg:3", "p must");
    expect_error("[net]\ninput = 8\n[dropout2d]\np = 0.5\n", "cnn.cfg:3", "channels");
}

static void cnn_shapes_and_summary(void)
{
    dn_model *m = NULL;
    CHECK_OK(dn_model_load_cfg("examples/mnist_resnet.cfg", &m, NULL));
    if (!m) return;
    CHECK(dn_model_layer_count(m) == 20);
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_output_shape(m, &nd, shape);
    CHECK(nd == 1 && shape[0] == 10);
    char buf[8192];
    dn_model_summary(m, buf, sizeof buf);
    CHECK(strstr(buf, "shortcut") && strstr(buf, "route") && strstr(buf, "[32, 14, 14]") && strstr(buf, "batchnorm2d"));
    /* forward on a batch: every layer runs */
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x;
    CHECK_OK(dn_tensor_new(ctx, 4, (int64_t[]){3, 1, 28, 28}, &x));
    dn_tensor *y = dn_model_forward(m, ctx, x);
    CHECK_MSG(y && dn_tensor_dim(y, 0) == 3 && dn_tensor_dim(y, 1) == 10, "%s", dn_last_error());
    dn_ctx_free(ctx);
    dn_model_free(m);
}

static void dropout_modes(void)
{
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 1000\nseed = 3\n[dropout]\np = 0.25\n", "d.cfg", &m, NULL));
    if (!m) return;
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x;
    CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){2, 1000}, &x));
    CHECK_OK(dn_tensor_fill(x, 1.0f));
    dn_tensor *y = dn_model_forward(m, ctx, x);
    int zeros = 0;
    for (int i = 0; y && i < 2000; i++) {
        float v = dn_tensor_data(y)[i];
        CHECK(v == 0.0f || fabsf(v - 1.0f / 0.75f) < 1e-6f);
        zeros += v == 0.0f;
    }
    CHECK_MSG(zeros > 400 && zeros < 600, "%d of 2000 dropped with p = 0.25", zeros);
    /* the same seed gives the same mask */
    dn_model *m2 = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 1000\nseed = 3\n[dropout]\np = 0.25\n", "d.cfg", &m2, NULL));
    dn_tensor *y2 = dn_model_forward(m2, ctx, x);
    CHECK(y && y2 && memcmp(dn_tensor_data(y), dn_tensor_data(y2), 2000 * sizeof(float)) == 0);
    /* evaluation mode: identity */
    dn_model_set_training(m, false);
    dn_tensor *y3 = dn_model_forward(m, ctx, x);
    CHECK(y3 && dn_tensor_data(y3)[0] == 1.0f && dn_tensor_data(y3)[1999] == 1.0f);
    dn_ctx_free(ctx);
    dn_model_free(m);
    dn_model_free(m2);

    /* a mask of 100,000 elements (filled in parts by the threads): the rate holds, the next mask is another one,
     * and 1 and 2 threads give the same masks */
    float *first[2] = {NULL, NULL};
    for (int threads = 1; threads <= 2; threads++) {
        dn_set_threads(threads);
        dn_model *big = NULL;
        CHECK_OK(dn_model_from_cfg("[net]\ninput = 50000\nseed = 4\n[dropout]\np = 0.3\n", "d.cfg", &big, NULL));
        ctx = dn_ctx_new();
        dn_tensor *ones = NULL;
        CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){2, 50000}, &ones));
        if (big && ones) {
            CHECK_OK(dn_tensor_fill(ones, 1.0f));
            dn_tensor *a = dn_model_forward(big, ctx, ones), *b = dn_model_forward(big, ctx, ones);
            int dropped = 0, same = 0;
            for (int i = 0; a && b && i < 100000; i++) {
                dropped += dn_tensor_data(a)[i] == 0.0f;
                same += dn_tensor_data(a)[i] == dn_tensor_data(b)[i];
            }
            CHECK_MSG(dropped > 29000 && dropped < 31000, "%d of 100000 dropped with p = 0.3", dropped);
            CHECK_MSG(same < 70000, "two masks agree on %d of 100000 elements", same); /* about 58% by chance */
            first[threads - 1] = malloc(100000 * sizeof(float));
            if (a && first[threads - 1]) memcpy(first[threads - 1], dn_tensor_data(a), 100000 * sizeof(float));
        }
        dn_ctx_free(ctx);
        dn_model_free(big);
    }
    dn_set_threads(0);
    CHECK(first[0] && first[1] && memcmp(first[0], first[1], 100000 * sizeof(float)) == 0);
    free(first[0]);
    free(first[1]);
}

static dn_dataset *train_set, *test_set;

/* False (the test skipped when the files are absent, failed when they do not load) without MNIST. */
static bool load(void)
{
    if (train_set) return true;
    if (!t_need_mnist()) return false;
    char a[512], b[512];
    dn_dataset *full = NULL, *rest = NULL;
    snprintf(a, sizeof a, "%s/mnist/train-images-idx3-ubyte", t_data_dir());
    snprintf(b, sizeof b, "%s/mnist/train-labels-idx1-ubyte", t_data_dir());
    CHECK_OK(dn_dataset_load_idx(a, b, 1.0f / 255.0f, &full));
    if (!full) return false;
    /* 6000 training images are plenty to show a CNN learning */
    if (dn_dataset_split(full, 0.9, 11, &train_set, &rest)) return false;
    dn_dataset_free(full);
    dn_dataset_free(rest);
    snprintf(a, sizeof a, "%s/mnist/t10k-images-idx3-ubyte", t_data_dir());
    snprintf(b, sizeof b, "%s/mnist/t10k-labels-idx1-ubyte", t_data_dir());
    CHECK_OK(dn_dataset_load_idx(a, b, 1.0f / 255.0f, &full));
    if (!full) return false;
    if (dn_dataset_split(full, 0.8, 12, &test_set, &rest)) return false; /* 2000 test images */
    dn_dataset_free(full);
    dn_dataset_free(rest);
    train_set->ndim = test_set->ndim = 3;
    train_set->shape[0] = test_set->shape[0] = 1;
    train_set->shape[1] = test_set->shape[1] = 28;
    train_set->shape[2] = test_set->shape[2] = 28;
    return true;
}

static double train_cfg(const char *text, int epochs)
{
    dn_model *m = NULL;
    dn_train_config c;
    dn_trainer *t = NULL;
    double acc = -1;
    if (dn_model_from_cfg(text, "cnn.cfg", &m, &c)) return -1;
    c.epochs = epochs;
    if (dn_trainer_new(m, &c, train_set, NULL, &t) == DN_OK) {
        dn_epoch_stats st;
        dn_status s = DN_OK;
        while (!s && !dn_trainer_finished(t)) s = dn_trainer_epoch(t, &st);
        dn_eval_result r;
        if (!s && dn_evaluate(m, &c, test_set, &r, NULL) == DN_OK) acc = r.accuracy;
        if (s) printf("    training failed: %s\n", dn_last_error());
    }
    dn_trainer_free(t);
    dn_model_free(m);
    return acc;
}

static void small_cnn_learns(void)
{
    if (!load()) return;
    /* conv-bn-relu-pool twice, dropout, dense: 2 epochs on 6000 images */
    double acc = train_cfg("[net]\ninput = 1, 28, 28\nbatch = 32\nseed = 2\noptimizer = adam\nlr = 0.002\n"
                           "[convolutional]\nfilters = 8\nsize = 3\npad = 1\nbias = 0\n[batchnorm]\n[activation]\ntype = relu\n"
                           "[maxpool]\nsize = 2\n"
                           "[convolutional]\nfilters = 16\nsize = 3\npad = 1\nactivation = relu\n[maxpool]\nsize = 2\n"
                           "[dropout2d]\np = 0.1\n[dense]\nunits = 10\n", 2);
    CHECK_MSG(acc >= 0.94, "small CNN test accuracy %.4f below the 0.94 floor", acc);
}

static void residual_net_learns(void)
{
    if (!load()) return;
    double acc = train_cfg("[net]\ninput = 1, 28, 28\nbatch = 32\nseed = 3\noptimizer = adam\nlr = 0.002\n"
                           "[convolutional]\nfilters = 8\nsize = 3\nstride = 2\npad = 1\nactivation = relu\n"
                           "[convolutional]\nfilters = 8\nsize = 3\npad = same\nbias = 0\n[batchnorm]\n[activation]\ntype = relu\n"
                           "[convolutional]\nfilters = 8\nsize = 3\npad = same\nbias = 0\n[batchnorm]\n"
                           "[shortcut]\nfrom = 0\nactivation = relu\n"
                           "[convolutional]\nfilters = 8\nsize = 1\nactivation = relu\n"
                           "[route]\nlayers = -1, -2\n"
                           "[avgpool]\nsize = 2\n[global_maxpool]\n[dense]\nunits = 10\n", 2);
    /* global pooling over 8 channels caps this tiny net; it must still learn far beyond chance */
    CHECK_MSG(acc >= 0.60, "residual net test accuracy %.4f below the 0.60 floor", acc);
}


/* ------------------------------------------------------------------ a whole block against PyTorch */

#include "../src/nn/model.h"

typedef struct fx_tensor {
    char name[96];
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    float *v;
    int64_t n;
} fx_tensor;

/* Reads tests/golden/block_resnet.txt (tools/golden_block.py): the cfg text and named tensors. */
static int read_block_fixture(const char *path, char **cfg, fx_tensor *t, int max)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int n = 0, cfg_lines = 0;
    *cfg = NULL;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (sscanf(line, "cfg %d", &cfg_lines) == 1) {
            *cfg = calloc((size_t)cfg_lines + 1, 128);
            for (int i = 0; i < cfg_lines && fgets(line, sizeof line, f); i++) strcat(*cfg, line);
            continue;
        }
        if (strncmp(line, "tensor ", 7) || n >= max) continue;
        fx_tensor *x = &t[n];
        char *p = line + 7;
        int used = 0;
        if (sscanf(p, "%95s %d%n", x->name, &x->ndim, &used) != 2) break;
        p += used;
        x->n = 1;
        for (int d = 0; d < x->ndim; d++) {
            long long v;
            if (sscanf(p, "%lld%n", &v, &used) != 1) break;
            p += used;
            x->shape[d] = v;
            x->n *= v;
        }
        x->v = malloc((size_t)x->n * sizeof(float));
        for (int64_t i = 0; i < x->n; i++)
            if (fscanf(f, "%f", &x->v[i]) != 1) x->v[i] = NAN;
        n++;
    }
    fclose(f);
    return n;
}

static const fx_tensor *fx_find(const fx_tensor *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

static void fx_compare(const char *what, const float *got, const fx_tensor *want)
{
    if (!got || !want) {
        CHECK_MSG(0, "%s: missing (%s)", what, got ? "no expected value" : "no value");
        return;
    }
    float scale = 0;
    for (int64_t i = 0; i < want->n; i++) scale = (float)t_worse(scale, fabsf(want->v[i]));
    for (int64_t i = 0; i < want->n; i++) {
        /* float32 through three convolutions and two batch norms: 1e-4 of the tensor's largest value */
        if (!(fabsf(got[i] - want->v[i]) <= 1e-4f * fmaxf(scale, 1e-3f))) { /* a NaN fails too */
            CHECK_MSG(0, "%s[%lld] = %.7g, PyTorch %.7g", what, (long long)i, (double)got[i], (double)want->v[i]);
            return;
        }
    }
}

static void residual_block_matches_pytorch(void)
{
    fx_tensor t[64];
    char *cfg = NULL;
    int n = read_block_fixture("tests/golden/block_resnet.txt", &cfg, t, 64);
    CHECK_MSG(n > 0 && cfg, "cannot read tests/golden/block_resnet.txt");
    dn_model *m = NULL;
    if (cfg) CHECK_OK(dn_model_from_cfg(cfg, "block_resnet.cfg", &m, NULL));
    dn_ctx *ctx = dn_ctx_new();
    if (m) {
        char key[128];
        for (int i = 0; i < dn_model_tensor_count(m); i++) {
            snprintf(key, sizeof key, "param:%s", dn_model_tensor_name(m, i));
            const fx_tensor *p = fx_find(t, n, key);
            dn_tensor *pt = dn_model_tensor(m, i);
            CHECK_MSG(p && p->n == dn_tensor_numel(pt), "parameter %s missing or of another size", key);
            if (p && p->n == dn_tensor_numel(pt)) memcpy(dn_tensor_data(pt), p->v, (size_t)p->n * sizeof(float));
        }
        const fx_tensor *x = fx_find(t, n, "input"), *gy = fx_find(t, n, "grad_output");
        dn_tensor *xt = NULL;
        if (x && gy) {
            CHECK_OK(dn_tensor_from(ctx, 4, x->shape, x->v, &xt));
            CHECK_OK(dn_tensor_set_requires_grad(xt, true));
            dn_model_zero_grad(m);
            dn_tensor *y = dn_model_forward(m, ctx, xt);
            CHECK_MSG(y != NULL, "%s", dn_last_error());
            if (y) {
                fx_compare("output", dn_tensor_data(y), fx_find(t, n, "output"));
                CHECK_OK(dn_backward_with(ctx, y, gy->v));
                fx_compare("grad:input", dn_tensor_grad(xt), fx_find(t, n, "grad:input"));
                for (int i = 0; i < dn_model_tensor_count(m); i++) {
                    snprintf(key, sizeof key, "grad:%s", dn_model_tensor_name(m, i));
                    fx_compare(key, dn_tensor_grad(dn_model_tensor(m, i)), fx_find(t, n, key));
                }
                for (int i = 0; i < m->n_buffers; i++) {
                    snprintf(key, sizeof key, "buffer:%s", m->buffers[i].name);
                    fx_compare(key, m->buffers[i].t.data, fx_find(t, n, key));
                }
            }
        }
    }
    dn_ctx_free(ctx);
    dn_model_free(m);
    for (int i = 0; i < n; i++) free(t[i].v);
    free(cfg);
}

/* ReLU fusion (dn_model_forward): a conv or dense layer with activation=relu, or followed by a relu layer, runs as
 * one op with the ReLU in the gemm's write-back.  The same network with an identity layer wedged between each
 * layer and its relu runs unfused; outputs and every parameter gradient must agree bit for bit, at 1 and 2
 * threads.  The third conv's pre-activation feeds a shortcut, so its relu must stay a separate op (else the
 * shortcut would add the wrong tensor). */
static const char *fusion_cfg(bool wedge)
{
    static char text[1024];
    const char *own = wedge ? "[activation]\ntype = identity\n[activation]\ntype = relu\n" : "activation = relu\n";
    const char *id = wedge ? "[activation]\ntype = identity\n" : "";
    snprintf(text, sizeof text,
             "[net]\ninput = 2, 9, 9\nseed = 7\n"
             "[convolutional]\nfilters = 4\nsize = 3\npad = 1\n%s"          /* activation=relu */
             "[convolutional]\nfilters = 4\nsize = 3\npad = 1\n%s"          /* a relu layer after it */
             "[activation]\ntype = relu\n"
             "[convolutional]\nfilters = 4\nsize = 3\npad = 1\n%s"          /* its pre-activation ... */
             "[activation]\ntype = relu\n"
             "[shortcut]\nfrom = %d\n"                                       /* ... goes to a shortcut */
             "[maxpool]\nsize = 2\n"
             "[dense]\nunits = 12\n%s"                                       /* activation=relu */
             "[dense]\nunits = 8\n%s[activation]\ntype = relu\n"            /* a relu layer after it */
             "[dense]\nunits = 3\n",
             own, id, id, wedge ? -3 : -2, own, id);
    return text;
}

static void relu_fusion_is_exact(void)
{
    float *out[2][2] = {{0}}, *grads[2][2] = {{0}};
    size_t n_out = 0, n_par = 0;
    for (int threads = 1; threads <= 2; threads++) {
        dn_set_threads(threads);
        for (int wedge = 0; wedge < 2; wedge++) {
            dn_model *m = NULL;
            CHECK_OK(dn_model_from_cfg(fusion_cfg(wedge), "fusion.cfg", &m, NULL));
            if (!m) break;
            dn_ctx *ctx = dn_ctx_new();
            dn_rng r;
            dn_rng_seed(&r, 11);
            dn_tensor *x = NULL;
            CHECK_OK(dn_tensor_new(ctx, 4, (int64_t[]){5, 2, 9, 9}, &x));
            CHECK_OK(dn_tensor_fill_uniform(x, &r, -1, 1));
            dn_model_zero_grad(m);
            dn_tensor *y = dn_model_forward(m, ctx, x);
            CHECK_MSG(y != NULL, "forward failed: %s", dn_last_error());
            if (y && dn_tensor_numel(y) == 15) {
                n_out = 15;
                float seed[15];
                for (int i = 0; i < 15; i++) seed[i] = (float)i / 7.0f - 1.0f;
                CHECK_OK(dn_backward_with(ctx, y, seed));
                n_par = dn_model_param_count(m);
                out[threads - 1][wedge] = malloc(n_out * sizeof(float));
                grads[threads - 1][wedge] = malloc(n_par * sizeof(float));
                dn_tensor_read(y, out[threads - 1][wedge]);
                memcpy(grads[threads - 1][wedge], dn_model_grads(m), n_par * sizeof(float));
            }
            dn_ctx_free(ctx);
            dn_model_free(m);
        }
    }
    dn_set_threads(1);
    CHECK(n_out == 15);
    for (int t = 0; t < 2; t++) {
        if (!out[t][0] || !out[t][1] || !out[0][0]) continue;
        CHECK_MSG(!memcmp(out[t][0], out[t][1], n_out * sizeof(float)), "%d thread(s): fused output differs", t + 1);
        CHECK_MSG(!memcmp(grads[t][0], grads[t][1], n_par * sizeof(float)), "%d thread(s): fused gradients differ", t + 1);
        CHECK(!memcmp(out[t][0], out[0][0], n_out * sizeof(float)));
        double g2 = 0;
        for (size_t i = 0; i < n_par; i++) g2 += (double)grads[t][0][i] * grads[t][0][i];
        CHECK(g2 > 0); /* gradients flowed */
    }
    for (int t = 0; t < 2; t++)
        for (int w = 0; w < 2; w++) {
            free(out[t][w]);
            free(grads[t][w]);
        }
}

void suite_cnn(void)
{
    RUN(cnn_cfg_errors);
    RUN(cnn_shapes_and_summary);
    RUN(dropout_modes);
    RUN(relu_fusion_is_exact);
    RUN(residual_block_matches_pytorch);
    RUN(small_cnn_learns);
    RUN(residual_net_learns);
    dn_dataset_free(train_set);
    dn_dataset_free(test_set);
    train_set = test_set = NULL;
}
