/* ONNX export (docs/onnx.md).  In a build with ONNX support (make ONNX=1) this suite exports the example
 * networks and tests/fixtures/onnx_all.cfg (every activation and pooling kind), reads each file back with
 * protobuf-c to check its structure, and leaves for tests/test_onnx.sh, in $DN_ONNX_DIR, each .onnx file with a
 * .json of inputs (batch 1 and batch 3) and dendrite's outputs: that script runs them in onnxruntime and
 * onnx.checker.  In the default build it checks that the export says it is not built in. */
#include "test.h"
#include "nn/model.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef DN_ONNX
#include <dirent.h>
#include "io/onnx.h"
#include "nn/layer_table.h"
#include "onnx.pb-c.h"
#endif

static void onnx_not_built_says_so(void)
{
    if (dn_onnx_supported()) return;
    dn_model *m = NULL;
    CHECK_OK(dn_model_new(1, (int64_t[]){4}, 1, &m));
    CHECK_OK(dn_model_add_dense(m, 2, DN_INIT_DEFAULT, true));
    CHECK(dn_model_export_onnx(m, t_tmp_path("x.onnx"), 0) == DN_ERR_STATE);
    CHECK_MSG(strstr(dn_last_error(), "make ONNX=1"), "message: %s", dn_last_error());
    dn_model_free(m);
    m = (dn_model *)1;
    CHECK(dn_model_import_onnx("tests/fixtures/onnx/mlp.onnx", &m, NULL) == DN_ERR_STATE && m == NULL);
    CHECK_MSG(strstr(dn_last_error(), "make ONNX=1"), "message: %s", dn_last_error());
}

/* ------------------------------------------------------------------ fine-tuning from trained weights */

/* A folder of MNIST's first n training images (IDX files with the count rewritten) and its whole test set (links
 * to the t10k files), for short fine-tuning runs; NULL without MNIST. */
static const char *mnist_subset(int n)
{
    static char dir[600];
    if (!t_need_mnist()) return NULL;
    snprintf(dir, sizeof dir, "%s", t_tmp_path("mnist_subset"));
    mkdir(dir, 0755);
    static const char *const names[2] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"};
    for (int k = 0; k < 2; k++) {
        char from[700], to[700];
        snprintf(from, sizeof from, "%s/mnist/%s", t_data_dir(), names[k]);
        snprintf(to, sizeof to, "%s/%s", dir, names[k]);
        const size_t head = k ? 8 : 16, per = k ? 1 : 784, len = head + (size_t)n * per;
        unsigned char *buf = malloc(len);
        FILE *f = fopen(from, "rb");
        bool ok = buf && f && fread(buf, 1, len, f) == len;
        if (f) fclose(f);
        /* the count, big-endian, at bytes 4-7 */
        if (ok) buf[4] = (unsigned char)(n >> 24), buf[5] = (unsigned char)(n >> 16), buf[6] = (unsigned char)(n >> 8),
                buf[7] = (unsigned char)n;
        f = ok ? fopen(to, "wb") : NULL;
        ok = f && fwrite(buf, 1, len, f) == len;
        if (f && fclose(f)) ok = false;
        free(buf);
        CHECK_MSG(ok, "cannot write %s", to);
        if (!ok) return NULL;
    }
    static const char *const tests[2] = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int k = 0; k < 2; k++) {
        char cwd[1024] = "", from[2000], to[700];
        /* the link's target from the link's folder: absolute */
        if (t_data_dir()[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
        snprintf(from, sizeof from, "%s%s%s/mnist/%s", cwd, cwd[0] ? "/" : "", t_data_dir(), tests[k]);
        snprintf(to, sizeof to, "%s/%s", dir, tests[k]);
        unlink(to);
        CHECK_MSG(symlink(from, to) == 0, "cannot link %s to %s", to, from);
    }
    return dir;
}

static float *params_copy(dn_model *m)
{
    float *p = malloc(dn_model_param_count(m) * sizeof *p);
    if (p) memcpy(p, dn_model_params(m), dn_model_param_count(m) * sizeof *p);
    return p;
}

static bool params_equal(dn_model *m, const float *p)
{
    return p && !memcmp(dn_model_params(m), p, dn_model_param_count(m) * sizeof *p);
}

/* `dendrite train CKPT` and `train CFG --init CKPT` through the run API: a checkpoint's weights start a new run
 * (another seed does not re-initialise them), the optimiser starts fresh (so both ways train to the same bits),
 * and they change as it trains.  Both builds. */
static void fine_tune_from_checkpoint(void)
{
    const char *sub = mnist_subset(6000);
    if (!sub) return;
    const char *cfg = t_tmp_path("ft.cfg"), *ckpt = t_tmp_path("ft.ckpt");
    FILE *f = fopen(cfg, "w");
    if (f) {
        fputs("[net]\ninput = 784\nbatch = 64\nepochs = 1\nlr = 0.1\n[dense]\nunits = 16\nactivation = relu\n"
              "[dense]\nunits = 10\n", f);
        fclose(f);
    }
    dn_run_options o;
    dn_run_options_default(&o);
    o.data = sub;
    dn_run *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(dn_run_open(cfg, &o, &a));
    if (!a) return;
    CHECK_OK(dn_run_train(a, NULL, NULL, NULL));
    CHECK_OK(dn_run_save(a, ckpt)); /* a trainer's checkpoint: optimiser state included, and not used below */
    float *trained = params_copy(dn_run_model(a));
    o.seed = 7;
    CHECK_OK(dn_run_open(ckpt, &o, &b));
    CHECK_MSG(b && params_equal(dn_run_model(b), trained), "another seed re-initialised the checkpoint's weights");
    dn_run_free(b);
    o.seed = -1;
    CHECK_OK(dn_run_open(ckpt, &o, &b));
    CHECK_OK(dn_run_open(cfg, &o, &c));
    if (b && c) {
        CHECK(params_equal(dn_run_model(b), trained) && dn_trainer_epochs_done(dn_run_trainer(b)) == 0);
        CHECK(!params_equal(dn_run_model(c), trained));
        CHECK_OK(dn_run_init_weights(c, ckpt));
        CHECK(params_equal(dn_run_model(c), trained));
        CHECK_OK(dn_run_train(b, NULL, NULL, NULL));
        CHECK_OK(dn_run_train(c, NULL, NULL, NULL));
        CHECK_MSG(!params_equal(dn_run_model(b), trained), "fine-tuning left the weights as they were");
        float *pb = params_copy(dn_run_model(b));
        CHECK_MSG(params_equal(dn_run_model(c), pb), "train CKPT and train CFG --init CKPT differ");
        free(pb);
        dn_run_eval e;
        CHECK_OK(dn_run_evaluate(b, NULL, &e));
        /* 6000 images, one epoch from scratch and one fine-tuning: about 0.86 */
        CHECK_MSG(e.n == 10000 && e.accuracy >= 0.8, "fine-tuned: accuracy %.4f on %lld test images", e.accuracy,
                  (long long)e.n);
        CHECK(dn_run_init_weights(c, ckpt) == DN_ERR_STATE && strstr(dn_last_error(), "already trained"));
    }
    dn_run_free(a);
    dn_run_free(b);
    dn_run_free(c);
    free(trained);
}

/* A checkpoint trained with normalize = 1 keeps its input statistics when it is fine-tuned on other data: its
 * weights were trained on inputs standardised with them. */
static void fine_tune_keeps_input_statistics(void)
{
    const char *cfg = t_tmp_path("norm.cfg"), *a = t_tmp_path("norm_a.csv"), *b = t_tmp_path("norm_b.csv"),
               *ckpt = t_tmp_path("norm.ckpt");
    FILE *f = fopen(cfg, "w");
    if (f) {
        fputs("[net]\ninput = 2\nepochs = 1\nbatch = 4\n[data]\nformat = csv\nnormalize = 1\n[dense]\nunits = 2\n", f);
        fclose(f);
    }
    for (int k = 0; k < 2; k++) {
        f = fopen(k ? b : a, "w");
        for (int i = 0; f && i < 16; i++) fprintf(f, "%g,%d,%d\n", (k ? 5 : 100) + i * 0.5, (k ? -3 : 7) * (i % 4), i % 2);
        if (f) fclose(f);
    }
    dn_run_options o;
    dn_run_options_default(&o);
    o.data = a;
    dn_run *r = NULL, *again = NULL, *fresh = NULL;
    CHECK_OK(dn_run_open(cfg, &o, &r));
    if (r) CHECK_OK(dn_run_save(r, ckpt));
    o.data = b;
    CHECK_OK(dn_run_open(ckpt, &o, &again));
    CHECK_OK(dn_run_open(cfg, &o, &fresh));
    const float *mean_a = NULL, *mean_again = NULL, *mean_fresh = NULL;
    if (r && again && fresh) {
        CHECK(dn_model_input_stats(dn_run_model(r), &mean_a, NULL) == 2);
        CHECK(dn_model_input_stats(dn_run_model(again), &mean_again, NULL) == 2);
        CHECK(dn_model_input_stats(dn_run_model(fresh), &mean_fresh, NULL) == 2);
        CHECK_MSG(mean_a && mean_again && !memcmp(mean_a, mean_again, 2 * sizeof *mean_a),
                  "fine-tuning replaced the checkpoint's input statistics");
        CHECK(mean_fresh && mean_a && mean_fresh[0] != mean_a[0]); /* a new run takes the new data's */
    }
    dn_run_free(r);
    dn_run_free(again);
    dn_run_free(fresh);
}

#ifdef DN_ONNX

static const char *out_dir(void)
{
    const char *d = getenv("DN_ONNX_DIR");
    return d && *d ? d : NULL;
}

static const char *out_path(const char *name, const char *ext)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    char file[256];
    snprintf(file, sizeof file, "%s%s", name, ext);
    if (out_dir()) snprintf(buf[k], sizeof buf[k], "%s/%s", out_dir(), file);
    else snprintf(buf[k], sizeof buf[k], "%s", t_tmp_path(file));
    return buf[k];
}

/* Batch-norm statistics and affine parameters, and PReLU slopes, away from their fresh values (mean 0, var 1,
 * gamma 1, beta 0, alpha constant), so that a mistake in their export shows. */
static void perturb(dn_model *m, dn_rng *r)
{
    for (int li = 0; li < m->n_layers; li++) {
        dn_layer *l = &m->layers[li];
        if (l->kind == DN_LAYER_BATCHNORM) {
            dn_tensor *g = &m->tensors[l->first_tensor].t, *b = &m->tensors[l->first_tensor + 1].t;
            dn_tensor *mean = &m->buffers[l->first_buffer].t, *var = &m->buffers[l->first_buffer + 1].t;
            for (int64_t i = 0; i < g->shape[0]; i++) {
                g->data[i] = 0.5f + dn_rng_uniform(r);
                b->data[i] = dn_rng_uniform(r) - 0.5f;
                mean->data[i] = 0.2f * (dn_rng_uniform(r) - 0.5f);
                var->data[i] = 0.5f + dn_rng_uniform(r);
            }
        }
        if (l->kind == DN_LAYER_ACTIVATION && l->n_tensors) {
            dn_tensor *a = &m->tensors[l->first_tensor].t;
            for (int64_t i = 0; i < a->shape[0]; i++) a->data[i] = 0.1f + 0.5f * dn_rng_uniform(r);
        }
    }
}

static void json_tensor(FILE *f, int ndim, const int64_t *dims, const float *data)
{
    int64_t n = 1;
    fprintf(f, "{\"dims\": [");
    for (int i = 0; i < ndim; i++) {
        fprintf(f, "%s%lld", i ? ", " : "", (long long)dims[i]);
        n *= dims[i];
    }
    fprintf(f, "], \"data\": [");
    for (int64_t i = 0; i < n; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)data[i]);
    fprintf(f, "]}");
}

/* dendrite's output for a batch of n random samples (uniform in [lo, hi)), written as one case of the .json. */
static void write_case(FILE *f, dn_model *m, dn_rng *r, int64_t n, float lo, float hi, bool first)
{
    int64_t shape[DN_MAX_DIMS + 1] = {n};
    int nd = dn_model_input_shape(m, shape + 1) + 1;
    /* a sequence model takes shorter sequences too (the exported graph leaves T free): the batch of 3 is 3 steps
     * shorter than the configured length */
    if (m->variable_length && n > 1 && shape[1] > 3) shape[1] -= 3;
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x = NULL;
    CHECK_OK(dn_tensor_new(ctx, nd, shape, &x));
    if (!x) {
        dn_ctx_free(ctx);
        return;
    }
    float *xd = dn_tensor_data(x);
    for (int64_t i = 0; i < dn_tensor_numel(x); i++) xd[i] = lo + (hi - lo) * dn_rng_uniform(r);
    /* an embedding's input is token ids: integers in [lo, hi) */
    if (m->n_layers && m->layers[0].kind == DN_LAYER_EMBEDDING)
        for (int64_t i = 0; i < dn_tensor_numel(x); i++) xd[i] = floorf(xd[i]);
    dn_ctx_set_grad(ctx, false);
    dn_model_set_training(m, false);
    dn_tensor *y = dn_model_forward(m, ctx, x);
    CHECK_MSG(y, "forward: %s", dn_last_error());
    if (y) {
        int64_t yshape[DN_MAX_DIMS];
        for (int i = 0; i < dn_tensor_ndim(y); i++) yshape[i] = dn_tensor_dim(y, i);
        fprintf(f, "%s  {\"inputs\": {\"input\": ", first ? "" : ",\n");
        json_tensor(f, nd, shape, xd);
        fprintf(f, "},\n   \"expected\": {\"output\": ");
        json_tensor(f, dn_tensor_ndim(y), yshape, dn_tensor_data(y));
        fprintf(f, "}}");
    }
    dn_ctx_free(ctx);
}

/* The written file read back: opset, the dynamic batch axis, the output's shape, the parameters under their
 * checkpoint names, the metadata and the op types used. */
static void check_file(const char *path, const dn_model *m, const char *const *must_have_ops, int opset)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f, "cannot open %s", path);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(len ? len : 1);
    CHECK(buf && fread(buf, 1, len, f) == len);
    fclose(f);
    Onnx__ModelProto *model = buf ? onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf) : NULL;
    free(buf);
    CHECK_MSG(model, "%s does not parse as an ONNX ModelProto", path);
    if (!model) return;
    CHECK(model->n_opset_import == 1 && model->opset_import[0]->version == (opset ? opset : DN_ONNX_OPSET));
    CHECK(model->graph && model->graph->n_input == 1 && model->graph->n_output == 1);
    const Onnx__TensorShapeProto *in = model->graph->input[0]->type->tensor_type->shape;
    CHECK(in->n_dim == (size_t)m->in_ndim + 1);
    CHECK(in->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
    /* a sequence model's T is free (named) too */
    for (int i = 0; i < m->in_ndim; i++)
        CHECK(i == 0 && m->variable_length ? in->dim[1]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                                           : in->dim[i + 1]->dim_value == m->in_shape[i]);
    CHECK(!strcmp(model->graph->output[0]->name, "output"));
    /* every parameter, with its data (a recurrent layer's are regrouped into ONNX's W, R and B: checked below) */
    for (int t = 0; t < m->n_tensors; t++) {
        bool found = false, recurrent = false;
        for (int li = 0; li < m->n_layers; li++)
            recurrent |= m->layers[li].kind == DN_LAYER_RECURRENT && t >= m->layers[li].first_tensor &&
                         t < m->layers[li].first_tensor + m->layers[li].n_tensors;
        if (recurrent) continue;
        for (size_t k = 0; k < model->graph->n_initializer; k++) {
            const Onnx__TensorProto *init = model->graph->initializer[k];
            if (strcmp(init->name, m->tensors[t].name)) continue;
            found = true;
            CHECK((int64_t)init->n_float_data == dn_tensor_numel(&m->tensors[t].t));
            CHECK(init->n_float_data && !memcmp(init->float_data, m->tensors[t].t.data, init->n_float_data * 4));
        }
        CHECK_MSG(found, "%s: parameter %s is not an initializer", path, m->tensors[t].name);
    }
    bool cfg = false;
    for (size_t k = 0; k < model->n_metadata_props; k++)
        cfg |= !strcmp(model->metadata_props[k]->key, "dendrite.cfg") &&
               !strcmp(model->metadata_props[k]->value, m->cfg_text);
    CHECK_MSG(cfg, "%s: the cfg text is not in metadata_props", path);
    for (int i = 0; must_have_ops && must_have_ops[i]; i++) {
        bool found = false;
        for (size_t k = 0; k < model->graph->n_node; k++) found |= !strcmp(model->graph->node[k]->op_type, must_have_ops[i]);
        CHECK_MSG(found, "%s has no %s node", path, must_have_ops[i]);
    }
    onnx__model_proto__free_unpacked(model, NULL);
}

static void export_opset(const char *cfg, const char *name, float lo, float hi, const char *const *ops, int opset)
{
    dn_model *m = NULL;
    CHECK_OK(dn_model_load_cfg(cfg, &m, NULL));
    if (!m) return;
    dn_rng r;
    dn_rng_seed(&r, 42);
    perturb(m, &r);
    const char *onnx = out_path(name, ".onnx");
    CHECK_OK(dn_model_export_onnx(m, onnx, opset));
    check_file(onnx, m, ops, opset);
    FILE *f = fopen(out_path(name, ".json"), "w");
    CHECK(f);
    if (f) {
        fprintf(f, "{\"model\": \"%s.onnx\", \"cases\": [\n", name);
        write_case(f, m, &r, 1, lo, hi, true);
        write_case(f, m, &r, 3, lo, hi, false);
        fprintf(f, "\n]}\n");
        CHECK(fclose(f) == 0);
    }
    dn_model_free(m);
}

static void export_one(const char *cfg, const char *name, float lo, float hi, const char *const *ops)
{
    export_opset(cfg, name, lo, hi, ops, 0);
}

static void onnx_export_examples(void)
{
    export_one("examples/mnist_mlp.cfg", "mnist_mlp", 0, 1, (const char *[]){"Gemm", "Relu", NULL});
    export_one("examples/mnist_lenet.cfg", "mnist_lenet", 0, 1, (const char *[]){"Conv", "MaxPool", "Flatten", NULL});
    export_one("examples/mnist_cnn.cfg", "mnist_cnn", 0, 1, (const char *[]){"Conv", "BatchNormalization", NULL});
    export_one("examples/mnist_resnet.cfg", "mnist_resnet", 0, 1,
               (const char *[]){"Add", "Concat", "GlobalAveragePool", NULL});
    export_one("tests/fixtures/onnx_all.cfg", "onnx_all", -1.5f, 1.5f,
               (const char *[]){"PRelu", "AveragePool", "Neg", "Erf", "Clip", "Selu", "Elu", "Where", "HardSigmoid",
                                "LeakyRelu", "Softmax", "LogSoftmax", "GlobalMaxPool", "Softplus", "Sigmoid", NULL});
}

/* The sequence models: the recurrent examples and two cfgs with every recurrent kind, stacked and bidirectional,
 * an embedding, dense layers at every step, and both kinds of output (every step, last step). */
static void onnx_export_sequences(void)
{
    export_one("examples/mnist_rows_lstm.cfg", "mnist_rows_lstm", 0, 1, (const char *[]){"LSTM", "Transpose", NULL});
    export_one("examples/mnist_rows_gru.cfg", "mnist_rows_gru", 0, 1, (const char *[]){"GRU", "Gemm", NULL});
    export_one("examples/char_lstm.cfg", "char_lstm", 0, 128, (const char *[]){"Cast", "Gather", "LSTM", "MatMul", NULL});
    export_one("tests/fixtures/onnx_seq.cfg", "onnx_seq", 0, 20,
               (const char *[]){"Gather", "RNN", "GRU", "LSTM", "MatMul", "Add", "Reshape", "Tanh", NULL});
    export_one("tests/fixtures/onnx_seq2.cfg", "onnx_seq2", -1, 1, (const char *[]){"RNN", "GRU", "LSTM", "Squeeze", NULL});
}

/* ------------------------------------------------------------------ the recurrent layout traps */

/* A model from cfg text with every parameter set to a value that names it: parameter t, element i holds
 * 1000 t + i (so a block found at the wrong place shows), exported and read back. */
static Onnx__ModelProto *export_named(const char *cfg, dn_model **out)
{
    dn_model *m = NULL;
    *out = NULL;
    CHECK_OK(dn_model_from_cfg(cfg, "trap", &m, NULL));
    if (!m) return NULL;
    for (int t = 0; t < m->n_tensors; t++)
        for (int64_t i = 0; i < dn_tensor_numel(&m->tensors[t].t); i++) m->tensors[t].t.data[i] = (float)(1000 * t + i);
    const char *path = t_tmp_path("trap.onnx");
    CHECK_OK(dn_model_export_onnx(m, path, 0));
    static uint8_t buf[1 << 16];
    FILE *f = fopen(path, "rb");
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    CHECK(mp && mp->graph);
    *out = m;
    return mp;
}

static const Onnx__TensorProto *find_init(const Onnx__ModelProto *mp, const char *name)
{
    for (size_t k = 0; mp && k < mp->graph->n_initializer; k++)
        if (!strcmp(mp->graph->initializer[k]->name, name)) return mp->graph->initializer[k];
    return NULL;
}

static const Onnx__NodeProto *find_node(const Onnx__ModelProto *mp, const char *op)
{
    for (size_t k = 0; mp && k < mp->graph->n_node; k++)
        if (!strcmp(mp->graph->node[k]->op_type, op)) return mp->graph->node[k];
    return NULL;
}

/* The node whose output is `name`. */
static const Onnx__NodeProto *maker(const Onnx__ModelProto *mp, const char *name)
{
    for (size_t k = 0; mp && k < mp->graph->n_node; k++)
        for (size_t o = 0; o < mp->graph->node[k]->n_output; o++)
            if (!strcmp(mp->graph->node[k]->output[o], name)) return mp->graph->node[k];
    return NULL;
}

/* The first node reading `name`. */
static const Onnx__NodeProto *reader(const Onnx__ModelProto *mp, const char *name)
{
    for (size_t k = 0; mp && k < mp->graph->n_node; k++)
        for (size_t i = 0; i < mp->graph->node[k]->n_input; i++)
            if (!strcmp(mp->graph->node[k]->input[i], name)) return mp->graph->node[k];
    return NULL;
}

static bool perm_is(const Onnx__NodeProto *n, int len, const int64_t *want)
{
    if (!n || strcmp(n->op_type, "Transpose") || n->n_attribute != 1 || n->attribute[0]->n_ints != (size_t)len) return false;
    for (int i = 0; i < len; i++)
        if (n->attribute[0]->ints[i] != want[i]) return false;
    return true;
}

/* ONNX's gate blocks by name (the ONNX operator docs): LSTM i, o, f, c; GRU z, r, h.  PyTorch's (dendrite's): LSTM
 * i, f, g, o (g is ONNX's c); GRU r, z, n (n is ONNX's h).  Block j of ONNX's W (per direction) must be PyTorch's
 * block of the same gate. */
static int torch_block(const char *torch, char gate)
{
    const char *p = strchr(torch, gate);
    return p ? (int)(p - torch) : -1;
}

static void check_gates(const char *what, const char *cfg, const char *onnx_gates, const char *torch_gates)
{
    dn_model *m = NULL;
    Onnx__ModelProto *mp = export_named(cfg, &m);
    const Onnx__TensorProto *w = find_init(mp, "layers.0.W_l0");
    CHECK_MSG(w && w->n_dims == 3, "%s: no W initializer", what);
    if (m && w && w->n_dims == 3) {
        const int64_t dirs = w->dims[0], gh = w->dims[1], in = w->dims[2], hid = m->layers[0].units;
        const int gates = (int)strlen(onnx_gates);
        for (int64_t d = 0; d < dirs; d++)
            for (int j = 0; j < gates; j++) {
                /* weight_ih of direction d is parameter 4 d (weight_ih, weight_hh, bias_ih, bias_hh per direction) */
                const float *torch_w = m->tensors[m->layers[0].first_tensor + 4 * d].t.data;
                const int tb = torch_block(torch_gates, onnx_gates[j]);
                const bool same = tb >= 0 && !memcmp(w->float_data + d * gh * in + j * hid * in, torch_w + tb * hid * in,
                                                     (size_t)(hid * in) * sizeof(float));
                CHECK_MSG(same, "%s: ONNX gate %c (block %d, direction %lld) is not PyTorch's gate %c", what, onnx_gates[j],
                          j, (long long)d, tb >= 0 ? torch_gates[tb] : '?');
            }
    }
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    dn_model_free(m);
}

/* Trap 1, gate order: LSTM i, o, f, c from i, f, g, o; GRU z, r, h from r, z, n (both directions) */
static void onnx_trap_gate_order(void)
{
    check_gates("LSTM", "[net]\ninput = 4, 3\n[lstm]\nhidden = 2\nbidirectional = 1\n", "iofg", "ifgo");
    check_gates("GRU", "[net]\ninput = 4, 3\n[gru]\nhidden = 2\nbidirectional = 1\n", "zrn", "rzn");
    /* GRU's h is PyTorch's n only with linear_before_reset = 1 */
    dn_model *m = NULL;
    Onnx__ModelProto *mp = export_named("[net]\ninput = 4, 3\n[gru]\nhidden = 2\n", &m);
    const Onnx__NodeProto *gru = find_node(mp, "GRU");
    bool lbr = false;
    for (size_t k = 0; gru && k < gru->n_attribute; k++)
        lbr |= !strcmp(gru->attribute[k]->name, "linear_before_reset") && gru->attribute[k]->i == 1;
    CHECK_MSG(lbr, "the GRU node lacks linear_before_reset = 1");
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    dn_model_free(m);
}

/* Trap 2, B layout: B[d] = [W_b; R_b] = [bias_ih; bias_hh], each in ONNX's gate order (LSTM i, o, f, c) */
static void onnx_trap_bias_layout(void)
{
    dn_model *m = NULL;
    Onnx__ModelProto *mp = export_named("[net]\ninput = 4, 3\n[lstm]\nhidden = 2\nlayers = 2\nbidirectional = 1\n", &m);
    for (int layer = 0; m && layer < 2; layer++) {
        char name[32];
        snprintf(name, sizeof name, "layers.0.B_l%d", layer);
        const Onnx__TensorProto *b = find_init(mp, name);
        CHECK_MSG(b && b->n_dims == 2 && b->dims[0] == 2 && b->dims[1] == 16, "%s: missing or not [2, 16]", name);
        if (!b || b->n_dims != 2 || b->dims[1] != 16) continue;
        for (int d = 0; d < 2; d++)
            for (int half = 0; half < 2; half++) /* 0: W_b = bias_ih, 1: R_b = bias_hh */
                for (int j = 0; j < 4; j++) {
                    const float *torch_b = m->tensors[m->layers[0].first_tensor + 4 * (layer * 2 + d) + 2 + half].t.data;
                    const int tb = torch_block("ifgo", "iofg"[j]);
                    CHECK_MSG(!memcmp(b->float_data + d * 16 + half * 8 + j * 2, torch_b + tb * 2, 2 * sizeof(float)),
                              "%s direction %d: block %d of %s is not %s's gate %c", name, d, j, half ? "R_b" : "W_b",
                              half ? "bias_hh" : "bias_ih", "iofg"[j]);
                }
    }
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    dn_model_free(m);
}

/* Trap 3, X layout: with layout 0 (no layout attribute, or 0) X is [T, N, I], so dendrite's batch-first input is
 * transposed (1, 0, 2) on its way in, and every step's output back on its way out */
static void onnx_trap_x_layout(void)
{
    dn_model *m = NULL;
    Onnx__ModelProto *mp = export_named("[net]\ninput = 4, 3\n[rnn]\nhidden = 2\n", &m);
    const Onnx__NodeProto *rnn = find_node(mp, "RNN");
    CHECK(rnn && rnn->n_input >= 4);
    if (rnn && rnn->n_input >= 4) {
        for (size_t k = 0; k < rnn->n_attribute; k++)
            CHECK_MSG(strcmp(rnn->attribute[k]->name, "layout") || rnn->attribute[k]->i == 0, "layout is not 0");
        const Onnx__NodeProto *in = maker(mp, rnn->input[0]);
        CHECK_MSG(perm_is(in, 3, (int64_t[]){1, 0, 2}) && !strcmp(in->input[0], "input"),
                  "X is not the input transposed (1, 0, 2)");
        const Onnx__NodeProto *sq = reader(mp, rnn->output[0]), *out = sq ? reader(mp, sq->output[0]) : NULL;
        CHECK_MSG(sq && !strcmp(sq->op_type, "Squeeze") && perm_is(out, 3, (int64_t[]){1, 0, 2}),
                  "Y is not squeezed and transposed (1, 0, 2) back to [N, T, H]");
    }
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    dn_model_free(m);
}

/* Trap 4, bidirectional output layout: Y [T, 2, N, H] becomes dendrite's [N, T, 2H] (forward then reverse features)
 * by Transpose(0, 2, 1, 3), Reshape(0, 0, -1), Transpose(1, 0, 2); the last step is Y_h (each direction's final
 * state), not Y at T-1, by Transpose(1, 0, 2), Reshape(0, -1) */
static void onnx_trap_bidirectional_output(void)
{
    dn_model *m = NULL;
    Onnx__ModelProto *mp = export_named("[net]\ninput = 4, 3\n[gru]\nhidden = 2\nbidirectional = 1\n"
                                        "[lstm]\nhidden = 2\nbidirectional = 1\nreturn_sequences = 0\n", &m);
    const Onnx__NodeProto *gru = find_node(mp, "GRU"), *lstm = find_node(mp, "LSTM");
    CHECK(gru && lstm);
    if (gru && lstm) {
        const Onnx__NodeProto *t1 = reader(mp, gru->output[0]), *r = t1 ? reader(mp, t1->output[0]) : NULL;
        const Onnx__NodeProto *t2 = r ? reader(mp, r->output[0]) : NULL;
        CHECK_MSG(perm_is(t1, 4, (int64_t[]){0, 2, 1, 3}) && r && !strcmp(r->op_type, "Reshape") &&
                      perm_is(t2, 3, (int64_t[]){1, 0, 2}) && reader(mp, t2->output[0]) == maker(mp, lstm->input[0]),
                  "the GRU's Y does not go Transpose(0, 2, 1, 3), Reshape, Transpose(1, 0, 2) to the next layer's input");
        const Onnx__TensorProto *shape = r && r->n_input == 2 ? find_init(mp, r->input[1]) : NULL;
        CHECK_MSG(shape && shape->n_int64_data == 3 && shape->int64_data[0] == 0 && shape->int64_data[1] == 0 &&
                      shape->int64_data[2] == -1, "the Reshape of Y is not (0, 0, -1)");
        CHECK_MSG(lstm->n_output == 2 && !lstm->output[0][0] && lstm->output[1][0],
                  "the last step is not read from Y_h (output 1) alone");
        const Onnx__NodeProto *h1 = lstm->n_output == 2 ? reader(mp, lstm->output[1]) : NULL;
        const Onnx__NodeProto *h2 = h1 ? reader(mp, h1->output[0]) : NULL;
        CHECK_MSG(perm_is(h1, 3, (int64_t[]){1, 0, 2}) && h2 && !strcmp(h2->op_type, "Reshape"),
                  "Y_h does not go Transpose(1, 0, 2), Reshape(0, -1)");
    }
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    dn_model_free(m);
}

/* The exporters' table (src/io/onnx_export.c) has a row for every layer kind, so a kind added to the layer table
 * cannot be forgotten by the export (the _Static_assert there catches a missing last row, this one a gap). */
static void onnx_every_layer_kind_has_an_exporter(void)
{
    for (int k = 0; k < dn_layer_def_count(); k++)
        CHECK_MSG(dn_onnx_layer_ops(k) && dn_onnx_layer_ops(k)[0], "layer kind %d (section [%s]) has no ONNX exporter",
                  k, dn_layer_def_of((dn_layer_kind)k)->sections[0]);
    CHECK(dn_onnx_layer_ops(dn_layer_def_count()) == NULL && dn_onnx_layer_ops(-1) == NULL);
}

/* The opsets the exporter writes besides 13: one small model each, run in onnxruntime by tests/test_onnx.sh. */
static void onnx_export_opsets(void)
{
    for (int opset = 14; opset <= 17; opset++) {
        char name[32];
        snprintf(name, sizeof name, "opset%d_seq2", opset);
        export_opset("tests/fixtures/onnx_seq2.cfg", name, -1, 1, (const char *[]){"LSTM", NULL}, opset);
        snprintf(name, sizeof name, "opset%d_mlp", opset);
        export_opset("examples/mnist_mlp.cfg", name, 0, 1, (const char *[]){"Gemm", NULL}, opset);
    }
}

static void onnx_export_refusals(void)
{
    dn_model *m = NULL;
    CHECK_OK(dn_model_new(1, (int64_t[]){4}, 1, &m));
    CHECK_OK(dn_model_add_dense(m, 2, DN_INIT_DEFAULT, true));
    CHECK(dn_model_export_onnx(m, t_tmp_path("x.onnx"), 12) == DN_ERR_ARG);
    CHECK_MSG(strstr(dn_last_error(), "13 to 17"), "message: %s", dn_last_error());
    CHECK(dn_model_export_onnx(NULL, t_tmp_path("x.onnx"), 0) == DN_ERR_ARG);
    CHECK(dn_model_export_onnx(m, "/nonexistent-dir/x.onnx", 0) == DN_ERR_IO);
    CHECK_MSG(strstr(dn_last_error(), "/nonexistent-dir/x.onnx"), "message: %s", dn_last_error());
    dn_model_free(m);
    /* a flatten of a sequence is refused: its size depends on T, which the graph leaves free */
    m = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 6, 3\n[lstm]\nhidden = 2\n[flatten]\n[dense]\nunits = 2\n", "seqflat", &m,
                               NULL));
    CHECK(dn_model_export_onnx(m, t_tmp_path("seqflat.onnx"), 0) == DN_ERR_ARG);
    CHECK_MSG(strstr(dn_last_error(), "layers.1: a flatten of a sequence"), "message: %s", dn_last_error());
    dn_model_free(m);
}

/* ------------------------------------------------------------------ import */

/* "TAG D0 D1 ...\n values...\n" of a fixture written by tools/onnx_fixtures.py; the values in a malloc'd array. */
static float *read_fixture_tensor(FILE *f, const char *tag, int *ndim, int64_t *dims)
{
    char word[32], line[256];
    if (fscanf(f, "%31s", word) != 1 || strcmp(word, tag)) return NULL;
    if (!fgets(line, sizeof line, f)) return NULL;
    *ndim = 0;
    int64_t n = 1;
    for (char *p = line, *end; *ndim < DN_MAX_DIMS; p = end) {
        long long v = strtoll(p, &end, 10);
        if (end == p) break;
        dims[(*ndim)++] = v;
        n *= v;
    }
    float *data = malloc((size_t)n * sizeof *data);
    for (int64_t i = 0; data && i < n; i++)
        if (fscanf(f, "%f", &data[i]) != 1) {
            free(data);
            return NULL;
        }
    return data;
}

/* The model's output for x [dims] (evaluation mode) into a malloc'd array of *n floats. */
static float *run_model(dn_model *m, int ndim, const int64_t *dims, const float *x, int64_t *n)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *t = NULL;
    float *out = NULL;
    CHECK_OK(dn_tensor_new(ctx, ndim, dims, &t));
    if (t) {
        memcpy(dn_tensor_data(t), x, (size_t)dn_tensor_numel(t) * sizeof(float));
        dn_ctx_set_grad(ctx, false);
        dn_model_set_training(m, false);
        dn_tensor *y = dn_model_forward(m, ctx, t);
        CHECK_MSG(y, "forward: %s", dn_last_error());
        if (y) {
            *n = dn_tensor_numel(y);
            out = malloc((size_t)*n * sizeof *out);
            if (out) memcpy(out, dn_tensor_data(y), (size_t)*n * sizeof *out);
        }
    }
    dn_ctx_free(ctx);
    return out;
}

/* |got - want| <= tol max(1, |want|) everywhere; returns the largest such ratio */
static double worst_diff(const float *got, const float *want, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
        worst = d > worst || d != d ? d : worst;
    }
    return worst;
}

/* A model made by PyTorch and written by torch.onnx.export (tools/onnx_fixtures.py) gives PyTorch's outputs, and
 * so does its checkpoint after saving and loading. */
static void import_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/onnx/%s.txt", name);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f, "cannot open %s", path);
    if (!f) return;
    int xnd = 0, ynd = 0;
    int64_t xd[DN_MAX_DIMS], yd[DN_MAX_DIMS];
    float *x = read_fixture_tensor(f, "input", &xnd, xd);
    float *want = x ? read_fixture_tensor(f, "output", &ynd, yd) : NULL;
    fclose(f);
    CHECK_MSG(x && want, "%s is malformed", path);
    snprintf(path, sizeof path, "tests/fixtures/onnx/%s.onnx", name);
    dn_model *m = NULL, *m2 = NULL;
    CHECK_OK(dn_model_import_onnx(path, &m, NULL));
    if (m && x && want) {
        int64_t n = 0, n2 = 0;
        float *got = run_model(m, xnd, xd, x, &n);
        CHECK(got && n == dn_shape_numel(ynd, yd));
        if (got && n == dn_shape_numel(ynd, yd)) {
            double w = worst_diff(got, want, n);
            CHECK_MSG(w <= 1e-5, "%s: dendrite differs from PyTorch by %g", name, w);
        }
        const char *ckpt = t_tmp_path("imported.ckpt");
        CHECK_OK(dn_model_save(m, ckpt));
        CHECK_OK(dn_model_load(ckpt, &m2, NULL));
        float *again = m2 ? run_model(m2, xnd, xd, x, &n2) : NULL;
        CHECK_MSG(again && got && n2 == n && !memcmp(again, got, (size_t)n * sizeof *got),
                  "%s: the saved checkpoint gives other outputs", name);
        free(got);
        free(again);
    }
    dn_model_free(m);
    dn_model_free(m2);
    free(x);
    free(want);
}

static void onnx_import_pytorch_mlp(void) { import_fixture("mlp"); }
static void onnx_import_pytorch_lenet(void) { import_fixture("lenet"); }
static void onnx_import_pytorch_resnet(void) { import_fixture("resnet"); }
/* the recurrent ones (tools/onnx_fixtures.py): each with a free batch and length T */
static void onnx_import_pytorch_lstm_rows(void) { import_fixture("lstm_rows"); }
static void onnx_import_pytorch_gru_bi(void) { import_fixture("gru_bi"); }
static void onnx_import_pytorch_rnn_tanh(void) { import_fixture("rnn_tanh"); }
static void onnx_import_pytorch_char_lstm(void) { import_fixture("char_lstm"); }
static void onnx_import_pytorch_gru_hn(void) { import_fixture("gru_hn"); }
static void onnx_import_pytorch_lstm_hn2(void) { import_fixture("lstm_hn2"); }

/* Every op the importer reads that the examples lack: PReLU (one alpha, one per channel), Clip, avg pooling with
 * padding, global max pooling, the activations with attributes; and a dense layer reading a flattened image. */
static const char import_ops_cfg[] =
    "[net]\ninput = 2, 8, 8\n"
    "[convolutional]\nfilters = 4\nsize = 3\npad = 1\n"
    "[activation]\ntype = prelu\nchannels = 4\n"
    "[avgpool]\nsize = 3\nstride = 1\npad = 1\n"
    "[activation]\ntype = hard_tanh\nmin = -0.5\nmax = 0.7\n"
    "[activation]\ntype = elu\nalpha = 0.5\n"
    "[route]\nlayers = 0\n"
    "[global_maxpool]\n"
    "[route]\nlayers = -1, -1\n"
    "[flatten]\n"
    "[dense]\nunits = 6\n"
    "[activation]\ntype = prelu\n"
    "[activation]\ntype = selu\n"
    "[activation]\ntype = hard_sigmoid\nslope = 0.3\noffset = 0.4\n"
    "[activation]\ntype = leaky_relu\nalpha = 0.1\n"
    "[dense]\nunits = 5\nactivation = softplus\n"
    "[activation]\ntype = log_softmax\n";

/* export -> import gives a model with the same outputs, for the example networks and import_ops_cfg */
static void onnx_round_trip_examples(void)
{
    const char *cfgs[] = {"examples/mnist_mlp.cfg", "examples/mnist_lenet.cfg", "examples/mnist_cnn.cfg",
                          "examples/mnist_resnet.cfg", "tests/fixtures/onnx_all.cfg", "examples/mnist_rows_lstm.cfg",
                          "examples/mnist_rows_gru.cfg", "examples/char_lstm.cfg", "tests/fixtures/onnx_seq.cfg",
                          "tests/fixtures/onnx_seq2.cfg", NULL};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        dn_model *m = NULL, *back = NULL;
        if (cfgs[c]) CHECK_OK(dn_model_load_cfg(cfgs[c], &m, NULL));
        else CHECK_OK(dn_model_from_cfg(import_ops_cfg, "import_ops_cfg", &m, NULL));
        if (!m) continue;
        dn_rng r;
        dn_rng_seed(&r, 3);
        perturb(m, &r);
        const char *path = t_tmp_path("round.onnx");
        CHECK_OK(dn_model_export_onnx(m, path, 0));
        CHECK_OK(dn_model_import_onnx(path, &back, NULL));
        if (back) {
            CHECK(dn_model_param_count(back) == dn_model_param_count(m));
            int64_t dims[DN_MAX_DIMS + 1] = {3};
            int nd = dn_model_input_shape(m, dims + 1) + 1;
            int64_t numel = dn_shape_numel(nd, dims), n1 = 0, n2 = 0;
            float *x = malloc((size_t)numel * sizeof *x);
            /* token ids for an embedding: integers below its vocabulary */
            const float ids = m->layers[0].kind == DN_LAYER_EMBEDDING ? (float)m->layers[0].units : 0;
            for (int64_t i = 0; x && i < numel; i++) x[i] = ids ? floorf(ids * dn_rng_uniform(&r)) : dn_rng_uniform(&r);
            float *a = x ? run_model(m, nd, dims, x, &n1) : NULL, *b = x ? run_model(back, nd, dims, x, &n2) : NULL;
            CHECK(a && b && n1 == n2);
            if (a && b && n1 == n2) {
                double w = worst_diff(b, a, n1);
                CHECK_MSG(w <= 1e-5, "%s: exported and imported again, the outputs differ by %g",
                          cfgs[c] ? cfgs[c] : "import_ops_cfg", w);
            }
            free(x);
            free(a);
            free(b);
        }
        dn_model_free(m);
        dn_model_free(back);
    }
}

/* Export, import, export again, import again, export a third time: the second and third files hold the same graph
 * (nodes, names, attributes, initializers and their data), so export and import are each other's inverse on what
 * an import gives.  (The first export differs: an imported model has each fused activation as its own layer.) */
static void onnx_round_trip_fixed_point(void)
{
    const char *cfgs[] = {"examples/mnist_resnet.cfg", "examples/mnist_cnn.cfg", "tests/fixtures/onnx_all.cfg",
                          "examples/mnist_rows_lstm.cfg", "examples/mnist_rows_gru.cfg", "examples/char_lstm.cfg",
                          "tests/fixtures/onnx_seq.cfg", "tests/fixtures/onnx_seq2.cfg"};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        dn_model *m = NULL;
        CHECK_OK(dn_model_load_cfg(cfgs[c], &m, NULL));
        if (!m) continue;
        dn_rng r;
        dn_rng_seed(&r, 5);
        perturb(m, &r);
        uint8_t *graph[3] = {NULL, NULL, NULL};
        size_t glen[3] = {0, 0, 0};
        for (int k = 0; k < 3 && m; k++) {
            const char *path = t_tmp_path("fixed.onnx");
            CHECK_OK(dn_model_export_onnx(m, path, 0));
            FILE *f = fopen(path, "rb");
            size_t len = 0;
            uint8_t *bytes = NULL;
            if (f) {
                fseek(f, 0, SEEK_END);
                len = (size_t)ftell(f);
                fseek(f, 0, SEEK_SET);
                bytes = malloc(len ? len : 1);
                if (bytes && fread(bytes, 1, len, f) != len) len = 0;
                fclose(f);
            }
            Onnx__ModelProto *mp = bytes ? onnx__model_proto__unpack(NULL, len, bytes) : NULL;
            free(bytes);
            CHECK(mp && mp->graph);
            if (mp && mp->graph) {
                glen[k] = onnx__graph_proto__get_packed_size(mp->graph);
                graph[k] = malloc(glen[k] ? glen[k] : 1);
                if (graph[k]) onnx__graph_proto__pack(mp->graph, graph[k]);
            }
            if (mp) onnx__model_proto__free_unpacked(mp, NULL);
            dn_model_free(m);
            m = NULL;
            if (k < 2) CHECK_OK(dn_model_import_onnx(path, &m, NULL));
        }
        CHECK_MSG(graph[1] && graph[2] && glen[1] == glen[2] && !memcmp(graph[1], graph[2], glen[1]),
                  "%s: the second and third exports differ (%zu and %zu bytes)", cfgs[c], glen[1], glen[2]);
        /* without fused activations (the recurrent examples) the first export is the same graph too */
        if (c >= 3 && c <= 5)
            CHECK_MSG(graph[0] && graph[1] && glen[0] == glen[1] && !memcmp(graph[0], graph[1], glen[0]),
                      "%s: the first and second exports differ (%zu and %zu bytes)", cfgs[c], glen[0], glen[1]);
        for (int k = 0; k < 3; k++) free(graph[k]);
        dn_model_free(m);
    }
}

/* An imported model trains: every imported parameter gets a gradient, and the loss of a fixed batch falls over a
 * few plain gradient steps (PyTorch's LeNet, softmax cross-entropy). */
static void onnx_imported_model_trains(void)
{
    dn_model *m = NULL;
    CHECK_OK(dn_model_import_onnx("tests/fixtures/onnx/lenet.onnx", &m, NULL));
    if (!m) return;
    dn_rng r;
    dn_rng_seed(&r, 9);
    enum { N = 8 };
    static float x[N * 784], y[N];
    for (int i = 0; i < N * 784; i++) x[i] = dn_rng_uniform(&r);
    for (int i = 0; i < N; i++) y[i] = (float)(i % 10);
    dn_ctx *ctx = dn_ctx_new();
    double first = 0, last = 0;
    for (int step = 0; step < 20; step++) {
        dn_ctx_reset(ctx);
        dn_model_zero_grad(m);
        dn_tensor *xt = NULL, *yt = NULL;
        CHECK_OK(dn_tensor_new(ctx, 4, (int64_t[]){N, 1, 28, 28}, &xt));
        CHECK_OK(dn_tensor_new(ctx, 1, (int64_t[]){N}, &yt));
        if (!xt || !yt) break;
        memcpy(dn_tensor_data(xt), x, sizeof x);
        memcpy(dn_tensor_data(yt), y, sizeof y);
        dn_tensor *loss = dn_softmax_cross_entropy(ctx, dn_model_forward(m, ctx, xt), yt, DN_REDUCE_MEAN);
        CHECK_MSG(loss, "%s", dn_last_error());
        if (!loss) break;
        last = dn_tensor_get(loss, 0);
        if (step == 0) first = last;
        CHECK_OK(dn_backward(ctx, loss));
        for (int t = 0; step == 0 && t < dn_model_tensor_count(m); t++) {
            /* every imported parameter gets a gradient */
            dn_tensor *pt = dn_model_tensor(m, t);
            const float *g = dn_tensor_grad(pt);
            double norm = 0;
            for (int64_t i = 0; g && i < dn_tensor_numel(pt); i++) norm += fabs(g[i]);
            CHECK_MSG(norm > 0, "%s has no gradient", dn_model_tensor_name(m, t));
        }
        float *p = dn_model_params(m);
        const float *g = dn_model_grads(m);
        for (size_t i = 0; i < dn_model_param_count(m); i++) p[i] -= 0.1f * g[i];
    }
    CHECK_MSG(last < 0.95 * first, "the loss went from %g to %g", first, last);
    dn_ctx_free(ctx);
    dn_model_free(m);
}

/* ------------------------------------------------------------------ ONNX's own test cases */

/* A serialized TensorProto (a test case's input_0.pb) as floats; NULL if it is not a float tensor. */
static float *read_pb_tensor(const char *path, int *ndim, int64_t *dims, int64_t *numel)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static uint8_t buf[1 << 22];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!t) return NULL;
    float *out = NULL;
    *numel = 1;
    *ndim = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims && i < DN_MAX_DIMS; i++) *numel *= (dims[i] = t->dims[i]);
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->n_dims <= DN_MAX_DIMS &&
        (out = malloc((size_t)*numel * sizeof *out))) {
        if (t->has_raw_data && t->raw_data.len == (size_t)*numel * 4) memcpy(out, t->raw_data.data, t->raw_data.len);
        else if (t->n_float_data == (size_t)*numel) memcpy(out, t->float_data, (size_t)*numel * 4);
        else {
            free(out);
            out = NULL;
        }
    } else if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && t->n_dims <= DN_MAX_DIMS &&
               (out = malloc((size_t)(*numel ? *numel : 1) * sizeof *out))) {
        /* token ids (an embedding's input): dendrite's ids are floats */
        for (int64_t i = 0; i < *numel; i++) {
            int64_t v = 0;
            if (t->has_raw_data && t->raw_data.len == (size_t)*numel * 8) memcpy(&v, t->raw_data.data + 8 * i, 8);
            else if ((int64_t)t->n_int64_data == *numel) v = t->int64_data[i];
            out[i] = (float)v;
        }
    }
    onnx__tensor_proto__free_unpacked(t, NULL);
    return out;
}

/* Debian's libonnx-testdata (ONNX's backend test cases): every case of pytorch-converted/ either imports and gives
 * the expected output within 1e-5 (relative above 1), or is refused with a message; `must_pass` lists those that
 * must import.  Skipped when the package is not installed. */
static void onnx_conformance_pytorch_converted(void)
{
    const char *root = "/usr/share/libonnx-testdata/data/pytorch-converted";
    static const char *const must_pass[] = {
        "test_AvgPool2d", "test_AvgPool2d_stride", "test_BatchNorm2d_eval", "test_BatchNorm2d_momentum_eval",
        "test_Conv2d", "test_Conv2d_depthwise", "test_Conv2d_depthwise_padded", "test_Conv2d_depthwise_strided",
        "test_Conv2d_depthwise_with_multiplier", "test_Conv2d_dilated", "test_Conv2d_groups", "test_Conv2d_groups_thnn",
        "test_Conv2d_no_bias", "test_Conv2d_padding", "test_Conv2d_strided", "test_Embedding", "test_Embedding_sparse",
        "test_Linear", "test_MaxPool2d",
        "test_PReLU_2d", "test_ReLU", "test_Sigmoid", "test_Softmax", "test_Softplus", "test_Tanh", NULL};
    DIR *d = opendir(root);
    if (!d) {
        printf("    skipped: %s is not installed (apt-get install libonnx-testdata)\n", root);
        return;
    }
    int passed = 0, refused = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        bool must = false;
        for (int k = 0; must_pass[k]; k++) must |= !strcmp(must_pass[k], e->d_name);
        snprintf(path, sizeof path, "%s/%s/model.onnx", root, e->d_name);
        dn_model *m = NULL;
        dn_status st = dn_model_import_onnx(path, &m, NULL);
        if (st) {
            CHECK_MSG(!must, "%s: refused: %s", e->d_name, dn_last_error());
            CHECK_MSG(dn_last_error()[0], "%s: refused without a message", e->d_name);
            if (getenv("DN_ONNX_VERBOSE")) printf("    refused %s: %s\n", e->d_name, dn_last_error());
            refused++;
            continue;
        }
        int xnd = 0, ynd = 0;
        int64_t xd[DN_MAX_DIMS], yd[DN_MAX_DIMS], xn = 0, yn = 0, n = 0;
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_0.pb", root, e->d_name);
        float *x = read_pb_tensor(path, &xnd, xd, &xn);
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_0.pb", root, e->d_name);
        float *want = read_pb_tensor(path, &ynd, yd, &yn);
        float *got = x && want ? run_model(m, xnd, xd, x, &n) : NULL;
        CHECK_MSG(got && n == yn, "%s: imported but does not run on its input (%s)", e->d_name, dn_last_error());
        if (got && n == yn) {
            double w = worst_diff(got, want, n);
            CHECK_MSG(w <= 1e-5, "%s: differs from ONNX's expected output by %g", e->d_name, w);
            passed++;
            if (getenv("DN_ONNX_VERBOSE")) printf("    matched %s (within %.2g)\n", e->d_name, w);
        }
        free(x);
        free(want);
        free(got);
        dn_model_free(m);
    }
    closedir(d);
    if (getenv("DN_ONNX_VERBOSE")) printf("    %d cases imported and matched, %d refused\n", passed, refused);
    CHECK_MSG(passed >= 23, "only %d cases imported and matched", passed);
}

static void expect_import_error(const char *path, dn_status want, const char *a, const char *b)
{
    dn_model *m = (dn_model *)1;
    dn_status s = dn_model_import_onnx(path, &m, NULL);
    CHECK_MSG(s == want, "%s: got %s (%s), expected %s", path, dn_status_name(s), dn_last_error(), dn_status_name(want));
    CHECK(m == NULL);
    CHECK_MSG(!a || strstr(dn_last_error(), a), "message '%s' lacks '%s'", dn_last_error(), a);
    CHECK_MSG(!b || strstr(dn_last_error(), b), "message '%s' lacks '%s'", dn_last_error(), b);
}

static void onnx_import_refusals(void)
{
    expect_import_error("/nonexistent.onnx", DN_ERR_IO, "/nonexistent.onnx", NULL);
    /* not a protobuf */
    const char *junk = t_tmp_path("junk.onnx");
    FILE *f = fopen(junk, "wb");
    fputs("\xff\xff\xff\xff this is not an ONNX file", f);
    fclose(f);
    expect_import_error(junk, DN_ERR_FORMAT, "not an ONNX model", NULL);
    /* a truncated model */
    char *buf = NULL;
    f = fopen("tests/fixtures/onnx/lenet.onnx", "rb");
    size_t len = 0;
    if (f) {
        buf = malloc(100000);
        len = buf ? fread(buf, 1, 100000, f) : 0;
        fclose(f);
    }
    CHECK(len > 1000);
    const char *cut = t_tmp_path("cut.onnx");
    f = fopen(cut, "wb");
    if (f && buf) fwrite(buf, 1, len / 2, f);
    if (f) fclose(f);
    free(buf);
    expect_import_error(cut, DN_ERR_FORMAT, NULL, NULL);
    /* an op the importer does not read names the node: a dense layer's export with its Relu node made an Abs */
    dn_model *m = NULL;
    CHECK_OK(dn_model_new(1, (int64_t[]){4}, 1, &m));
    CHECK_OK(dn_model_add_dense(m, 3, DN_INIT_DEFAULT, true));
    CHECK_OK(dn_model_add_activation(m, "relu", NULL));
    const char *relu = t_tmp_path("relu.onnx"), *abs = t_tmp_path("abs.onnx");
    CHECK_OK(dn_model_export_onnx(m, relu, 0));
    dn_model_free(m);
    f = fopen(relu, "rb");
    uint8_t bytes[4096];
    len = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, bytes);
    CHECK(mp && mp->graph);
    for (size_t k = 0; mp && k < mp->graph->n_node; k++)
        if (!strcmp(mp->graph->node[k]->op_type, "Relu")) strcpy(mp->graph->node[k]->op_type, "Abs");
    size_t n = mp ? onnx__model_proto__pack(mp, bytes) : 0;
    f = fopen(abs, "wb");
    if (f) {
        fwrite(bytes, 1, n, f);
        fclose(f);
    }
    /* a graph of more nodes than the limit (the same node 10001 times) */
    const char *many = t_tmp_path("many.onnx");
    Onnx__NodeProto **nodes = mp ? malloc(10001 * sizeof *nodes) : NULL;
    if (nodes) {
        for (int k = 0; k < 10001; k++) nodes[k] = mp->graph->node[0];
        Onnx__NodeProto **keep = mp->graph->node;
        size_t keep_n = mp->graph->n_node;
        mp->graph->node = nodes;
        mp->graph->n_node = 10001;
        uint8_t *big = malloc(onnx__model_proto__get_packed_size(mp));
        size_t big_n = big ? onnx__model_proto__pack(mp, big) : 0;
        mp->graph->node = keep;
        mp->graph->n_node = keep_n;
        f = fopen(many, "wb");
        if (f && big) fwrite(big, 1, big_n, f);
        if (f) fclose(f);
        free(big);
        free(nodes);
        expect_import_error(many, DN_ERR_FORMAT, "10001 nodes, more than the importer's limit of 10000", NULL);
    }
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    expect_import_error(abs, DN_ERR_FORMAT, "node 'layers.1/Relu_1' (Abs): op type not supported", "the importer reads Gemm");
}

/* A recurrent model exported, its `op` node changed by `change`, written again: the import must refuse it with the
 * node's name, its op type and `want`. */
static void refuse_changed(const char *cfg, const char *op, void (*change)(Onnx__NodeProto *n, const Onnx__GraphProto *g),
                           const char *want)
{
    dn_model *m = NULL;
    Onnx__ModelProto *mp = export_named(cfg, &m);
    dn_model_free(m);
    Onnx__NodeProto *n = NULL;
    for (size_t k = 0; mp && k < mp->graph->n_node; k++)
        if (!strcmp(mp->graph->node[k]->op_type, op)) n = mp->graph->node[k];
    CHECK(n);
    if (!n) {
        if (mp) onnx__model_proto__free_unpacked(mp, NULL);
        return;
    }
    change(n, mp->graph);
    char expect[128];
    snprintf(expect, sizeof expect, "node '%s' (%s): ", n->name, op);
    static uint8_t buf[1 << 16];
    size_t len = onnx__model_proto__pack(mp, buf);
    onnx__model_proto__free_unpacked(mp, NULL);
    const char *path = t_tmp_path("changed.onnx");
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
    expect_import_error(path, DN_ERR_FORMAT, expect, want);
}

/* one more attribute (malloc'd, as protobuf-c's unpacker allocates: free_unpacked frees it) */
static Onnx__AttributeProto *add_attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto **list = malloc((n->n_attribute + 1) * sizeof *list), *a = malloc(sizeof *a);
    if (!list || !a) abort();
    memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    free(n->attribute);
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->has_type = 1;
    a->type = type;
    list[n->n_attribute++] = a;
    n->attribute = list;
    return a;
}

/* input k (the ones before it "") reading `name` */
static void set_input(Onnx__NodeProto *n, size_t k, const char *name)
{
    if (k >= n->n_input) {
        char **list = malloc((k + 1) * sizeof *list);
        if (!list) abort();
        memcpy(list, n->input, n->n_input * sizeof *list);
        for (size_t i = n->n_input; i <= k; i++) list[i] = strdup("");
        free(n->input);
        n->input = list;
        n->n_input = k + 1;
    }
    free(n->input[k]);
    n->input[k] = strdup(name);
}

static void add_peepholes(Onnx__NodeProto *n, const Onnx__GraphProto *g) { set_input(n, 7, n->input[3]); }
static void add_clip(Onnx__NodeProto *n, const Onnx__GraphProto *g)
{
    Onnx__AttributeProto *a = add_attr(n, "clip", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = 3;
}
static void lstm_relu(Onnx__NodeProto *n, const Onnx__GraphProto *g)
{
    Onnx__AttributeProto *a = add_attr(n, "activations", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->strings = malloc(3 * sizeof *a->strings);
    if (!a->strings) abort();
    const char *names[3] = {"Sigmoid", "Relu", "Tanh"};
    for (int i = 0; i < 3; i++) a->strings[i] = (ProtobufCBinaryData){strlen(names[i]), (uint8_t *)strdup(names[i])};
    a->n_strings = 3;
}
static void reverse_only(Onnx__NodeProto *n, const Onnx__GraphProto *g)
{
    Onnx__AttributeProto *a = add_attr(n, "direction", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s = (ProtobufCBinaryData){7, (uint8_t *)strdup("reverse")};
}
static void initial_state(Onnx__NodeProto *n, const Onnx__GraphProto *g) { set_input(n, 5, n->input[3]); }
static void sequence_lens(Onnx__NodeProto *n, const Onnx__GraphProto *g) { set_input(n, 4, n->input[3]); }
static void reset_before(Onnx__NodeProto *n, const Onnx__GraphProto *g)
{
    for (size_t k = 0; k < n->n_attribute; k++)
        if (!strcmp(n->attribute[k]->name, "linear_before_reset")) n->attribute[k]->i = 0;
}

/* What the importer refuses around recurrent layers, each with the node and the reason */
static void onnx_import_recurrent_refusals(void)
{
    const char *lstm = "[net]\ninput = 4, 3\n[lstm]\nhidden = 2\n", *gru = "[net]\ninput = 4, 3\n[gru]\nhidden = 2\n";
    refuse_changed(lstm, "LSTM", add_peepholes, "peepholes (input P) are not supported");
    refuse_changed(lstm, "LSTM", add_clip, "clip, activation_alpha and activation_beta are not supported");
    refuse_changed(lstm, "LSTM", lstm_relu, "only the default activations (Sigmoid, Tanh, Tanh)");
    refuse_changed(lstm, "LSTM", reverse_only, "direction must be forward or bidirectional");
    refuse_changed(lstm, "LSTM", initial_state, "the initial state (input 5) must be zeros");
    refuse_changed(gru, "GRU", sequence_lens, "sequence_lens is not supported");
    refuse_changed(gru, "GRU", reset_before, "linear_before_reset must be 1");
    /* PyTorch's y[:, -1] of a bidirectional GRU: not dendrite's last step (tools/onnx_fixtures.py) */
    expect_import_error("tests/fixtures/onnx/refused/bigru_last.onnx", DN_ERR_FORMAT, "node '/Gather' (Gather)",
                        "the last step of a bidirectional layer's output");
}

/* ------------------------------------------------------------------ allocation failures */

static struct {
    long count, fail_at, live;
} fa;

static void *fa_alloc(size_t n, void *user)
{
    (void)user;
    if (++fa.count == fa.fail_at) return NULL;
    void *p = malloc(n);
    if (p) fa.live++;
    return p;
}

static void *fa_realloc(void *p, size_t n, void *user)
{
    (void)user;
    if (++fa.count == fa.fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) fa.live++;
    return q;
}

static void fa_free(void *p, void *user)
{
    (void)user;
    if (p) {
        fa.live--;
        free(p);
    }
}

/* Import and export with each allocation refused in turn: every one fails cleanly (DN_ERR_NOMEM, a message,
 * nothing leaked) or, when the refused allocation had a fallback, succeeds. */
static void onnx_allocation_failures(void)
{
    const dn_allocator counting = {fa_alloc, fa_realloc, fa_free, NULL};
    dn_model *small = NULL, *seq = NULL;
    CHECK_OK(dn_model_load_cfg("tests/fixtures/onnx_all.cfg", &small, NULL));
    CHECK_OK(dn_model_load_cfg("tests/fixtures/onnx_seq.cfg", &seq, NULL));
    const char *out = t_tmp_path("alloc.onnx");
    /* 0, 1: import of lenet, export of onnx_all; 2, 3: the same for sequence models (PyTorch's stacked bidirectional
     * GRU, onnx_seq.cfg) */
    for (int which = 0; which < 4; which++) {
        long total = 0;
        for (long at = 0;; at++) {
            fa.count = 0;
            fa.fail_at = at;
            fa.live = 0;
            dn_set_allocator(&counting);
            dn_model *m = NULL;
            dn_status st = which == 0   ? dn_model_import_onnx("tests/fixtures/onnx/lenet.onnx", &m, NULL)
                           : which == 1 ? dn_model_export_onnx(small, out, 0)
                           : which == 2 ? dn_model_import_onnx("tests/fixtures/onnx/gru_bi.onnx", &m, NULL)
                                        : dn_model_export_onnx(seq, out, 0);
            dn_model_free(m);
            dn_set_allocator(NULL);
            if (at == 0) {
                CHECK_OK(st);
                total = fa.count;
            } else {
                CHECK_MSG(st == DN_OK || st == DN_ERR_NOMEM, "%s, allocation %ld refused: %s (%s)",
                          which % 2 ? "export" : "import", at, dn_status_name(st), dn_last_error());
            }
            CHECK_MSG(fa.live == 0, "%s, allocation %ld refused: %ld blocks leaked", which % 2 ? "export" : "import", at,
                      fa.live);
            if (at >= total || t_failures_in_test) break;
        }
        CHECK(total > 10);
    }
    dn_model_free(small);
    dn_model_free(seq);
}

/* PyTorch's MLP (torch.onnx.export) fine-tuned on an MNIST subset through the run API, the way `dendrite train`
 * does it: from its imported checkpoint, from the .onnx file itself, and from the cfg `dendrite import --cfg`
 * writes with --init (dn_run_init_weights); the three train to the same bits, from the imported weights, which
 * change, to a stated accuracy.  The imported checkpoint also evaluates and predicts (dendrite eval / predict). */
static void onnx_fine_tune_imported(void)
{
    const char *sub = mnist_subset(6000);
    if (!sub) return;
    const char *onnx = "tests/fixtures/onnx/mlp.onnx", *ckpt = t_tmp_path("imported.ckpt"), *cfg = t_tmp_path("imported.cfg");
    dn_model *m0 = NULL;
    CHECK_OK(dn_model_import_onnx(onnx, &m0, NULL));
    if (!m0) return;
    CHECK_OK(dn_model_save(m0, ckpt));
    FILE *f = fopen(cfg, "w");
    if (f) {
        fputs(dn_model_cfg_text(m0), f);
        fclose(f);
    }
    float *imported = params_copy(m0);
    /* eval and predict on the imported checkpoint: PyTorch's untrained MLP, near chance */
    dn_run *r = NULL;
    CHECK_OK(dn_run_load(ckpt, &r));
    dn_run_eval e = {0};
    dn_predictions *p = NULL;
    char t10k[700];
    snprintf(t10k, sizeof t10k, "%s/t10k-images-idx3-ubyte", sub);
    if (r) {
        CHECK_OK(dn_run_load_test(r, sub));
        CHECK_OK(dn_run_evaluate(r, NULL, &e));
        CHECK_MSG(e.n == 10000 && e.accuracy < 0.3, "imported: accuracy %.4f on %lld images", e.accuracy, (long long)e.n);
        CHECK_OK(dn_run_predict(r, t10k, &p));
        CHECK(p && p->n == 10000 && p->outputs == 10);
        dn_predictions_free(p);
    }
    dn_run_free(r);
    dn_run_options o;
    dn_run_options_default(&o);
    o.data = sub;
    o.epochs = 2;
    o.lr = 0.1;
    const char *sources[3] = {ckpt, onnx, cfg};
    float *tuned = NULL;
    for (int k = 0; k < 3; k++) {
        r = NULL;
        CHECK_OK(dn_run_open(sources[k], &o, &r));
        if (!r) continue;
        if (k == 2) CHECK_OK(dn_run_init_weights(r, onnx));
        CHECK_MSG(params_equal(dn_run_model(r), imported), "%s: the run does not start from the imported weights",
                  sources[k]);
        CHECK_OK(dn_run_train(r, NULL, NULL, NULL));
        CHECK_MSG(!params_equal(dn_run_model(r), imported), "%s: training left the weights as they were", sources[k]);
        if (!tuned) {
            tuned = params_copy(dn_run_model(r));
            CHECK_OK(dn_run_evaluate(r, NULL, &e));
            /* 6000 images, 2 epochs of SGD at lr 0.1 from PyTorch's initialisation: about 0.82 */
            CHECK_MSG(e.n == 10000 && e.accuracy >= 0.75, "fine-tuned: accuracy %.4f on %lld images", e.accuracy,
                      (long long)e.n);
        } else {
            CHECK_MSG(params_equal(dn_run_model(r), tuned), "%s: trains to other weights than %s", sources[k], ckpt);
        }
        dn_run_free(r);
    }
    /* weights of another model: refused with the tensor at fault */
    r = NULL;
    CHECK_OK(dn_run_open(cfg, &o, &r));
    if (r) {
        CHECK(dn_run_init_weights(r, "tests/fixtures/onnx/lenet.onnx") == DN_ERR_FORMAT);
        CHECK_MSG(strstr(dn_last_error(), "layers.0.weight"), "message: %s", dn_last_error());
    }
    dn_run_free(r);
    free(tuned);
    free(imported);
    dn_model_free(m0);
}

#endif

void suite_onnx(void)
{
    RUN(onnx_not_built_says_so);
    RUN(fine_tune_from_checkpoint);
    RUN(fine_tune_keeps_input_statistics);
#ifdef DN_ONNX
    RUN(onnx_every_layer_kind_has_an_exporter);
    RUN(onnx_export_refusals);
    RUN(onnx_export_examples);
    RUN(onnx_export_sequences);
    RUN(onnx_trap_gate_order);
    RUN(onnx_trap_bias_layout);
    RUN(onnx_trap_x_layout);
    RUN(onnx_trap_bidirectional_output);
    RUN(onnx_export_opsets);
    RUN(onnx_import_pytorch_mlp);
    RUN(onnx_import_pytorch_lenet);
    RUN(onnx_import_pytorch_resnet);
    RUN(onnx_import_pytorch_lstm_rows);
    RUN(onnx_import_pytorch_gru_bi);
    RUN(onnx_import_pytorch_rnn_tanh);
    RUN(onnx_import_pytorch_char_lstm);
    RUN(onnx_import_pytorch_gru_hn);
    RUN(onnx_import_pytorch_lstm_hn2);
    RUN(onnx_round_trip_examples);
    RUN(onnx_round_trip_fixed_point);
    RUN(onnx_imported_model_trains);
    RUN(onnx_import_refusals);
    RUN(onnx_import_recurrent_refusals);
    RUN(onnx_conformance_pytorch_converted);
    RUN(onnx_allocation_failures);
    RUN(onnx_fine_tune_imported);
#endif
}
