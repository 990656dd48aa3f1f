/* dendrite — the command-line trainer.  It parses arguments and calls the library (public header only). */
#include "dendrite.h"
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

static int fail(const char *what)
{
    fprintf(stderr, "dendrite: %s%s%s\n", what ? what : "", what && *dn_last_error() ? ": " : "", dn_last_error());
    return 1;
}

/* ------------------------------------------------------------------ usage */

static const char *const usage_main =
    "usage: dendrite <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CFG       train the model described by CFG (see docs/cfg.md)\n"
    "  eval CKPT       loss, accuracy and confusion matrix of a checkpoint on the test set\n"
    "  predict CKPT FILE  class probabilities (or outputs) for each sample of FILE (IDX or CSV)\n"
    "  info CFG|CKPT   layers, output shapes, parameters and FLOPs\n"
    "  generate CKPT   sample text from a character model\n"
    "  export CKPT -o FILE  the model as an ONNX file (a build with make ONNX=1)\n"
    "  import FILE.onnx -o CKPT  an ONNX model as a checkpoint (make ONNX=1; feed-forward layers)\n"
    "  report LOG [CKPT]  an HTML page: training curves and, with CKPT, test-set confusion matrix and mistakes\n"
    "  visualize CKPT  the first convolutional layer's filters as an SVG or PNG picture\n"
    "  gradcheck       check every op's gradient against finite differences\n"
    "\n"
    "`dendrite <command> --help` describes a command's options.\n";

static const char *const usage_train =
    "usage: dendrite train CFG [options]\n"
    "  --data DIR|FILE   training data (MNIST folder or CSV file; default: the cfg's [data] train)\n"
    "  --epochs N        epochs (default: the cfg's)\n"
    "  --batch N         minibatch size\n"
    "  --lr X            learning rate\n"
    "  --threads N       kernel threads\n"
    "  --seed N          seed for initialisation, shuffling and dropout\n"
    "  --save FILE       checkpoint written after every epoch (crash-safe)\n"
    "  --resume FILE     continue a run from its checkpoint\n"
    "  --log FILE        one JSON line per epoch\n"
    "  --quiet           no progress output\n"
    "  --detect-anomaly  stop at the first op (and layer) that produces NaN or infinity\n"
    "  --memory-limit MB refuse steps that need more working memory than this\n"
    "The last line on stdout is one JSON object with the run's figures.\n";

static const char *const usage_eval =
    "usage: dendrite eval CKPT [--data DIR|FILE]\n"
    "Prints JSON: loss, accuracy, samples and the confusion matrix (rows: true class) on the test set.\n";

static const char *const usage_predict =
    "usage: dendrite predict CKPT FILE\n"
    "FILE: IDX images (as MNIST's) or a CSV file of features (one sample per line, no label column).\n"
    "Prints one line per sample: its index, the predicted class and the class probabilities (or the outputs).\n";

static const char *const usage_info =
    "usage: dendrite info CFG|CKPT\n"
    "Prints the layers with output shapes, parameter counts and FLOPs per sample, and the totals.\n";

static const char *const usage_generate =
    "usage: dendrite generate CKPT [--prime TEXT] [--length N] [--temperature T] [--seed N]\n"
    "Samples N characters (default 200) from a character model, after the prime text (default: a newline).\n"
    "Temperature below 1 sharpens the distribution, above 1 flattens it (default 0.8).\n";

static const char *const usage_gradcheck =
    "usage: dendrite gradcheck [OP...]\n"
    "Checks each op's backward against central finite differences; one line per op, exit 1 on a failure.\n";

static const char *const usage_export =
    "usage: dendrite export CKPT|CFG -o FILE.onnx [--opset N]\n"
    "Writes the model (a checkpoint, or a cfg's freshly initialised model) as ONNX for inference: opset 13 unless\n"
    "--opset says 13 to 17, a dynamic batch axis, the cfg in the metadata (docs/onnx.md).\n";

static const char *const usage_import =
    "usage: dendrite import FILE.onnx -o CKPT\n"
    "Reads an ONNX model of feed-forward layers (as torch.onnx.export writes them: Gemm, Conv, pooling, batch norm,\n"
    "activations, Flatten, Add, Concat; docs/onnx.md) and saves it as a checkpoint that eval, predict, info and train\n"
    "read.  An op or attribute the importer does not read is refused with the node's name.\n";

static int usage(const char *text, bool error)
{
    fputs(text, error ? stderr : stdout);
    return error ? EXIT_USAGE : 0;
}

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------------ data */

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reshapes a data set's samples to the model's input shape when only the shape differs (784 vs 28x28). */
static dn_status fit_shape(dn_dataset *d, const int64_t *in_shape, int in_ndim)
{
    int64_t n = 1;
    for (int i = 0; i < in_ndim; i++) n *= in_shape[i];
    if (n != dn_dataset_sample_size(d)) return DN_OK; /* the trainer reports the mismatch */
    d->ndim = in_ndim;
    for (int i = 0; i < in_ndim; i++) d->shape[i] = in_shape[i];
    return DN_OK;
}

static dn_status load_split(const dn_train_config *c, dn_model *m, const char *data, bool test, dn_dataset **out)
{
    char a[1024], b[1024];
    *out = NULL;
    if (!strcmp(c->data_format, "text")) {
        const char *path = test ? c->data_test : (data ? data : c->data_train);
        if (!path || !*path) return DN_OK;
        int64_t in_shape[DN_MAX_DIMS];
        dn_model_input_shape(m, in_shape);
        const dn_vocab *known = dn_model_vocab(m);
        dn_vocab v;
        dn_status s = dn_dataset_load_text(path, in_shape[0], known->size ? known : NULL, &v, out);
        if (s) return s;
        if (!known->size) dn_model_set_vocab(m, &v);
        /* unshuffled text feeds stateful layers: lay the windows out as `batch` parallel streams */
        if (!c->shuffle && !test) return dn_dataset_streams(*out, c->batch);
        return DN_OK;
    }
    if (!strcmp(c->data_format, "csv") || (data && !is_dir(data))) {
        const char *path = data ? data : (test ? c->data_test : c->data_train);
        if (test && data) return DN_OK; /* a CSV given on the command line has no separate test file */
        if (!path || !*path) return DN_OK;
        return dn_dataset_load_csv(path, c->label_column, c->csv_header, out);
    }
    const char *dir = data ? data : c->data_train;
    snprintf(a, sizeof a, "%s/%s-images-idx3-ubyte", dir, test ? "t10k" : "train");
    snprintf(b, sizeof b, "%s/%s-labels-idx1-ubyte", dir, test ? "t10k" : "train");
    /* the images stay bytes (a quarter of the memory of floats); batches are converted as they are copied out */
    dn_status s = dn_dataset_load_idx_compact(a, b, 1.0f / 255.0f, out);
    if (s && access(a, R_OK) != 0) {
        char msg[1400];
        snprintf(msg, sizeof msg, "%s — run scripts/fetch-mnist.sh to download MNIST, or pass --data DIR", dn_last_error());
        fprintf(stderr, "dendrite: %s\n", msg);
        return DN_ERR_IO;
    }
    return s;
}

/* ------------------------------------------------------------------ train */

typedef struct progress {
    bool tty, quiet;
    double start;
    int64_t batch; /* samples per batch, for the rate */
} progress;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_batch(void *user, int epoch, int64_t batch, int64_t batches, double loss)
{
    progress *p = user;
    if (p->quiet || !p->tty) return;
    if (batch == 1) p->start = now();
    if (batch % 10 && batch != batches) return;
    double el = now() - p->start, eta = batch ? el * (double)(batches - batch) / (double)batch : 0;
    int width = 30, fill = (int)(width * batch / (batches ? batches : 1));
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = '\0';
    double rate = el > 0 ? (double)(batch * p->batch) / el : 0;
    fprintf(stderr, "\repoch %d [%s] %lld/%lld loss %.4f %.0f samples/s ETA %.0fs ", epoch, bar, (long long)batch,
            (long long)batches, loss, rate, eta);
    fflush(stderr);
}

static void json_num(FILE *f, const char *key, double v, bool comma)
{
    if (isfinite(v)) fprintf(f, "\"%s\": %.6g%s", key, v, comma ? ", " : "");
    else fprintf(f, "\"%s\": null%s", key, comma ? ", " : "");
}

static int cmd_train(int argc, char **argv)
{
    const char *cfg_path = NULL, *data = NULL, *save = NULL, *resume = NULL, *log_path = NULL;
    long epochs = -1, batch = -1, threads = -1, seed = -1;
    double lr = -1;
    bool quiet = false, anomaly = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) return usage(usage_train, false);
        bool has = i + 1 < argc;
        if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--detect-anomaly")) anomaly = true;
        else if (!strcmp(a, "--memory-limit") && has) {
            long mb;
            if (!parse_long(argv[++i], 1, 1 << 30, &mb)) goto bad;
            dn_set_memory_limit((size_t)mb * 1000000u);
        }
        else if (!strcmp(a, "--data") && has) data = argv[++i];
        else if (!strcmp(a, "--save") && has) save = argv[++i];
        else if (!strcmp(a, "--resume") && has) resume = argv[++i];
        else if (!strcmp(a, "--log") && has) log_path = argv[++i];
        else if (!strcmp(a, "--epochs") && has) { if (!parse_long(argv[++i], 0, 1000000, &epochs)) goto bad; }
        else if (!strcmp(a, "--batch") && has) { if (!parse_long(argv[++i], 1, 1 << 24, &batch)) goto bad; }
        else if (!strcmp(a, "--threads") && has) { if (!parse_long(argv[++i], 1, 1024, &threads)) goto bad; }
        else if (!strcmp(a, "--seed") && has) { if (!parse_long(argv[++i], 0, 0xffffffffL, &seed)) goto bad; }
        else if (!strcmp(a, "--lr") && has) {
            char *end;
            lr = strtod(argv[++i], &end);
            if (*end || !(lr > 0)) goto bad;
        } else if (a[0] == '-') {
            fprintf(stderr, "dendrite train: unknown option '%s'\n", a);
            return usage(usage_train, true);
        } else if (!cfg_path) cfg_path = a;
        else goto bad;
        continue;
    bad:
        fprintf(stderr, "dendrite train: bad or missing value for '%s'\n", a);
        return usage(usage_train, true);
    }
    if (!cfg_path) return usage(usage_train, true);

    /* read the cfg once for its settings, then rebuild with a possibly overridden seed */
    dn_model *m = NULL;
    dn_train_config c;
    if (dn_model_load_cfg(cfg_path, &m, &c)) return fail(NULL);
    if (seed >= 0 && (uint64_t)seed != c.seed) {
        /* initialisation, shuffling and dropout all follow the seed */
        c.seed = (uint64_t)seed;
        if (dn_model_reinit(m, c.seed)) return fail(NULL);
    }
    if (anomaly) c.detect_anomaly = true;
    if (epochs >= 0) c.epochs = (int)epochs;
    if (batch > 0) c.batch = batch;
    if (threads > 0) c.threads = (int)threads;
    if (lr > 0) {
        c.optim.lr = (float)lr;
        c.schedule.base_lr = (float)lr;
        c.schedule.current_lr = (float)lr;
    }
    int in_ndim;
    int64_t in_shape[DN_MAX_DIMS];
    dn_dataset *train = NULL, *test = NULL;
    int rc = 1;
    FILE *logf = NULL;
    dn_trainer *t = NULL;
    if (load_split(&c, m, data, false, &train) || !train) {
        if (!train && !*dn_last_error()) fprintf(stderr, "dendrite: no training data\n");
        else if (!train) fail("loading training data");
        goto out;
    }
    if (load_split(&c, m, data, true, &test)) { fail("loading test data"); goto out; }
    in_ndim = dn_model_input_shape(m, in_shape);
    fit_shape(train, in_shape, in_ndim);
    if (test) fit_shape(test, in_shape, in_ndim);
    if (c.normalize) {
        int64_t ss = dn_dataset_sample_size(train);
        float *mean = malloc((size_t)ss * sizeof(float)), *sd = malloc((size_t)ss * sizeof(float));
        if (!mean || !sd) { free(mean); free(sd); fail("out of memory"); goto out; }
        dn_dataset_stats(train, mean, sd);
        dn_status s = dn_dataset_normalize(train, mean, sd);
        if (!s && test) s = dn_dataset_normalize(test, mean, sd);
        free(mean);
        free(sd);
        if (s) { fail("normalizing the data"); goto out; }
    }
    if (dn_trainer_new(m, &c, train, NULL, &t)) { fail(NULL); goto out; }
    progress prog = {isatty(2), quiet, 0, c.batch};
    dn_trainer_set_batch_callback(t, on_batch, &prog);
    if (resume && dn_trainer_resume(t, resume)) { fail("resuming"); goto out; }
    if (log_path) {
        logf = fopen(log_path, resume ? "a" : "w");
        if (!logf) { fprintf(stderr, "dendrite: cannot open log %s: %s\n", log_path, strerror(errno)); goto out; }
    }
    double t0 = now(), sps_sum = 0;
    int sps_n = 0;
    dn_epoch_stats st = {0};
    st.train_loss = st.val_loss = NAN;
    while (!dn_trainer_finished(t)) {
        if (dn_trainer_epoch(t, &st)) {
            if (prog.tty && !quiet) fputc('\n', stderr);
            fail("training");
            goto out;
        }
        sps_sum += st.samples_per_sec;
        sps_n++;
        if (!quiet) {
            if (prog.tty) fputc('\r', stderr);
            char acc[32] = "", val[64] = "";
            if (isfinite(st.train_accuracy)) snprintf(acc, sizeof acc, "  acc %.4f", st.train_accuracy);
            if (isfinite(st.val_loss)) snprintf(val, sizeof val, "  val_loss %.4f", st.val_loss);
            if (isfinite(st.val_accuracy))
                snprintf(val + strlen(val), sizeof val - strlen(val), "  val_acc %.4f", st.val_accuracy);
            fprintf(stderr, "epoch %d/%d  loss %.4f%s%s  lr %.3g  %.0f samples/s  %.1fs%s%-10s\n", st.epoch, st.epochs,
                    st.train_loss, acc, val, st.lr, st.samples_per_sec, st.seconds, st.stop ? "  (early stop)" : "", "");
        }
        if (logf) {
            fprintf(logf, "{\"epoch\": %d, ", st.epoch);
            json_num(logf, "train_loss", st.train_loss, true);
            json_num(logf, "train_accuracy", st.train_accuracy, true);
            json_num(logf, "val_loss", st.val_loss, true);
            json_num(logf, "val_accuracy", st.val_accuracy, true);
            json_num(logf, "lr", st.lr, true);
            json_num(logf, "samples_per_sec", st.samples_per_sec, true);
            json_num(logf, "seconds", st.seconds, false);
            fprintf(logf, "}\n");
            fflush(logf);
        }
        if (save && dn_trainer_save(t, save)) { fail("saving checkpoint"); goto out; }
    }
    dn_trainer_restore_best(t);
    if (save && dn_trainer_save(t, save)) { fail("saving checkpoint"); goto out; }
    dn_eval_result te = {NAN, NAN, 0};
    if (test && dn_evaluate(m, &c, test, &te, NULL)) { fail("evaluating"); goto out; }
    printf("{\"epochs\": %d, ", dn_trainer_epochs_done(t));
    json_num(stdout, "train_loss", st.train_loss, true);
    json_num(stdout, "val_loss", st.val_loss, true);
    json_num(stdout, "test_loss", te.loss, true);
    json_num(stdout, "test_accuracy", te.accuracy, true);
    json_num(stdout, "samples_per_sec", sps_n ? sps_sum / sps_n : NAN, true);
    json_num(stdout, "seconds", now() - t0, false);
    printf("}\n");
    rc = 0;
out:
    if (logf) fclose(logf);
    dn_trainer_free(t);
    dn_dataset_free(train);
    dn_dataset_free(test);
    dn_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ eval */

static int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) return usage(usage_eval, false);
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (argv[i][0] == '-' || ckpt) return usage(usage_eval, true);
        else ckpt = argv[i];
    }
    if (!ckpt) return usage(usage_eval, true);
    dn_model *m = NULL;
    dn_train_config c;
    if (dn_model_load(ckpt, &m, &c)) return fail(NULL);
    dn_dataset *test = NULL;
    int rc = 1;
    int64_t *conf = NULL;
    /* a CSV given with --data is the evaluation set itself; an MNIST folder gives its t10k files */
    bool csv = !strcmp(c.data_format, "csv") || (data && !is_dir(data));
    if (load_split(&c, m, data, !(csv && data), &test) || !test) {
        if (!test) fprintf(stderr, "dendrite: no test data (give --data)\n");
        else fail("loading test data");
        goto out;
    }
    int64_t in_shape[DN_MAX_DIMS];
    int in_ndim = dn_model_input_shape(m, in_shape);
    fit_shape(test, in_shape, in_ndim);
    int k = test->n_classes;
    if (k > 0) {
        conf = calloc((size_t)k * (size_t)k, sizeof *conf);
        if (!conf) { fail("out of memory"); goto out; }
    }
    dn_eval_result r;
    if (dn_evaluate(m, &c, test, &r, conf)) { fail("evaluating"); goto out; }
    printf("{");
    json_num(stdout, "loss", r.loss, true);
    json_num(stdout, "accuracy", r.accuracy, true);
    printf("\"samples\": %lld, \"confusion\": [", (long long)r.n);
    for (int i = 0; i < k; i++) {
        printf(i ? ", [" : "[");
        for (int j = 0; j < k; j++) printf(j ? ", %lld" : "%lld", (long long)conf[i * k + j]);
        printf("]");
    }
    printf("]}\n");
    rc = 0;
out:
    free(conf);
    dn_dataset_free(test);
    dn_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ predict */

static bool looks_like_idx(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char h[4] = {1, 1, 1, 1};
    if (!f) return false;
    size_t n = fread(h, 1, 4, f);
    fclose(f);
    return n == 4 && h[0] == 0 && h[1] == 0;
}

static int cmd_predict(int argc, char **argv)
{
    const char *ckpt = NULL, *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) return usage(usage_predict, false);
        if (argv[i][0] == '-') return usage(usage_predict, true);
        if (!ckpt) ckpt = argv[i];
        else if (!file) file = argv[i];
        else return usage(usage_predict, true);
    }
    if (!ckpt || !file) return usage(usage_predict, true);
    dn_model *m = NULL;
    dn_train_config c;
    if (dn_model_load(ckpt, &m, &c)) return fail(NULL);
    dn_dataset *d = NULL;
    dn_ctx *ctx = NULL;
    int rc = 1;
    dn_status s = looks_like_idx(file) ? dn_dataset_load_idx_compact(file, NULL, 1.0f / 255.0f, &d)
                                       : dn_dataset_load_csv(file, DN_CSV_NO_LABEL, c.csv_header, &d);
    if (s) { fail(NULL); goto out; }
    int64_t in_shape[DN_MAX_DIMS];
    int in_ndim = dn_model_input_shape(m, in_shape);
    fit_shape(d, in_shape, in_ndim);
    ctx = dn_ctx_new();
    if (!ctx) { fail("out of memory"); goto out; }
    dn_ctx_set_grad(ctx, false);
    dn_model_set_training(m, false);
    int64_t xshape[DN_MAX_DIMS + 1];
    memcpy(xshape + 1, d->shape, (size_t)d->ndim * sizeof(int64_t));
    bool softmax = !strcmp(c.loss, "softmax_cross_entropy") || !strcmp(c.loss, "softmax_cross_entropy_soft");
    bool sigmoid = !strcmp(c.loss, "bce_with_logits");
    for (int64_t at = 0; at < d->n; at += 256) {
        int64_t nb = d->n - at < 256 ? d->n - at : 256;
        dn_ctx_reset(ctx);
        xshape[0] = nb;
        dn_tensor *x, *y;
        if (dn_tensor_new(ctx, d->ndim + 1, xshape, &x)) { fail(NULL); goto out; }
        dn_dataset_get(d, at, nb, dn_tensor_data(x));
        y = dn_model_forward(m, ctx, x);
        if (y && softmax) y = dn_softmax(ctx, y, -1);
        if (y && sigmoid) y = dn_sigmoid(ctx, y);
        if (!y) { fail("predicting"); goto out; }
        int64_t k = dn_tensor_numel(y) / nb;
        const float *o = dn_tensor_data(y);
        for (int64_t i = 0; i < nb; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < k; j++)
                if (o[i * k + j] > o[i * k + best]) best = j;
            if (k == 1) best = o[i] > (sigmoid ? 0.5f : 0.0f);
            printf("%lld %lld", (long long)(at + i), (long long)best);
            for (int64_t j = 0; j < k; j++) printf(" %.6g", o[i * k + j]);
            printf("\n");
        }
    }
    rc = 0;
out:
    dn_ctx_free(ctx);
    dn_dataset_free(d);
    dn_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ info */

static bool looks_like_checkpoint(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char h[9];
    if (!f) return false;
    size_t n = fread(h, 1, 9, f);
    fclose(f);
    return n == 9 && h[8] == '{' && h[7] == 0 && h[6] == 0;
}

static int cmd_info(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-') return usage(usage_info, !(argc == 1 && is_help(argv[0])));
    dn_model *m = NULL;
    dn_train_config c;
    dn_status s = looks_like_checkpoint(argv[0]) ? dn_model_load(argv[0], &m, &c) : dn_model_load_cfg(argv[0], &m, &c);
    if (s) return fail(NULL);
    size_t need = dn_model_summary(m, NULL, 0) + 1;
    char *buf = malloc(need);
    if (!buf) { dn_model_free(m); return fail("out of memory"); }
    dn_model_summary(m, buf, need);
    fputs(buf, stdout);
    printf("training: %s, batch %lld, %d epochs, optimizer %s lr %g, loss %s\n", argv[0], (long long)c.batch, c.epochs,
           dn_optim_kind_name(c.optim.kind), (double)c.optim.lr, c.loss);
    free(buf);
    dn_model_free(m);
    return 0;
}

/* ------------------------------------------------------------------ export */

static int cmd_export(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    int opset = 0;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) return usage(usage_export, false);
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--opset") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000) return usage(usage_export, true);
            opset = (int)v;
        } else if (argv[i][0] == '-' || in) return usage(usage_export, true);
        else in = argv[i];
    }
    if (!in || !out) return usage(usage_export, true);
    if (!dn_onnx_supported()) {
        fprintf(stderr, "dendrite: export: built without ONNX support (make ONNX=1)\n");
        return 1;
    }
    dn_model *m = NULL;
    dn_train_config c;
    dn_status s = looks_like_checkpoint(in) ? dn_model_load(in, &m, &c) : dn_model_load_cfg(in, &m, &c);
    if (s) return fail(NULL);
    s = dn_model_export_onnx(m, out, opset);
    dn_model_free(m);
    if (s) return fail("export");
    printf("%s: written\n", out);
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) return usage(usage_import, false);
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] == '-' || in) return usage(usage_import, true);
        else in = argv[i];
    }
    if (!in || !out) return usage(usage_import, true);
    if (!dn_onnx_supported()) {
        fprintf(stderr, "dendrite: import: built without ONNX support (make ONNX=1)\n");
        return 1;
    }
    dn_model *m = NULL;
    if (dn_model_import_onnx(in, &m, NULL)) return fail("import");
    dn_status s = dn_model_save(m, out);
    dn_model_free(m);
    if (s) return fail("import");
    printf("%s: written\n", out);
    return 0;
}

/* ------------------------------------------------------------------ gradcheck */

static int cmd_gradcheck(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < argc; i++)
        if (is_help(argv[i])) return usage(usage_gradcheck, false);
    int n = dn_op_count();
    for (int i = 0; i < n; i++) {
        const dn_op *op = dn_op_at(i);
        bool wanted = argc == 0;
        for (int k = 0; k < argc; k++) wanted |= !strcmp(argv[k], dn_op_name(op));
        if (!wanted) continue;
        double worst;
        char msg[512];
        dn_status s = dn_gradcheck_op(op, &worst, msg, sizeof msg);
        printf("%-4s %-28s %s\n", s ? "FAIL" : "ok", dn_op_name(op), msg);
        if (s) failed++;
        else passed++;
    }
    for (int k = 0; k < argc; k++)
        if (!dn_op_find(argv[k])) {
            fprintf(stderr, "dendrite gradcheck: no op named '%s'\n", argv[k]);
            failed++;
        }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------------ generate */

static int cmd_generate(int argc, char **argv)
{
    const char *ckpt = NULL, *prime = "\n";
    long length = 200, seed = 1;
    double temperature = 0.8;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (is_help(a)) return usage(usage_generate, false);
        if (!strcmp(a, "--prime") && has) prime = argv[++i];
        else if (!strcmp(a, "--length") && has) { if (!parse_long(argv[++i], 0, 1 << 24, &length)) goto bad; }
        else if (!strcmp(a, "--seed") && has) { if (!parse_long(argv[++i], 0, 0xffffffffL, &seed)) goto bad; }
        else if (!strcmp(a, "--temperature") && has) {
            char *end;
            temperature = strtod(argv[++i], &end);
            if (*end || !(temperature > 0) || temperature > 100) goto bad;
        } else if (a[0] == '-' || ckpt) goto bad;
        else ckpt = a;
        continue;
    bad:
        fprintf(stderr, "dendrite generate: bad or missing value for '%s'\n", a);
        return usage(usage_generate, true);
    }
    if (!ckpt) return usage(usage_generate, true);
    dn_model *m = NULL;
    dn_train_config c;
    if (dn_model_load(ckpt, &m, &c)) return fail(NULL);
    const dn_vocab *v = dn_model_vocab(m);
    int rc = 1;
    dn_ctx *ctx = dn_ctx_new();
    float *ids = NULL, *probs = NULL;
    if (!v->size) {
        fprintf(stderr, "dendrite: %s is not a character model (it has no vocabulary)\n", ckpt);
        goto out;
    }
    int64_t in_shape[DN_MAX_DIMS];
    dn_model_input_shape(m, in_shape);
    int64_t window = in_shape[0], n = (int64_t)strlen(prime);
    if (n == 0) {
        fprintf(stderr, "dendrite generate: the prime text is empty\n");
        goto out;
    }
    ids = malloc((size_t)(n + length) * sizeof *ids);
    probs = malloc(256 * sizeof *probs);
    if (!ctx || !ids || !probs) { fail("out of memory"); goto out; }
    for (int64_t i = 0; i < n; i++) {
        int id = v->index[(unsigned char)prime[i]];
        if (id < 0) {
            fprintf(stderr, "dendrite generate: the prime's character 0x%02x does not occur in the training text\n",
                    (unsigned char)prime[i]);
            goto out;
        }
        ids[i] = (float)id;
    }
    dn_rng rng;
    dn_rng_seed(&rng, (uint64_t)seed);
    dn_ctx_set_grad(ctx, false);
    dn_model_set_training(m, false);
    fputs(prime, stdout);
    for (long k = 0; k < length; k++, n++) {
        /* the model sees (up to) its training window of the most recent characters */
        int64_t t = n < window ? n : window;
        dn_ctx_reset(ctx);
        dn_tensor *x;
        if (dn_tensor_from(ctx, 2, (int64_t[]){1, t}, ids + n - t, &x)) { fail(NULL); goto out; }
        dn_tensor *y = dn_model_forward(m, ctx, x);
        if (!y) { fail("generating"); goto out; }
        int64_t classes = dn_tensor_dim(y, -1);
        const float *logits = dn_tensor_data(y) + (t - 1) * classes;
        /* softmax(logits / T), then one draw */
        double mx = logits[0], sum = 0;
        for (int64_t j = 1; j < v->size; j++) mx = logits[j] > mx ? logits[j] : mx;
        for (int64_t j = 0; j < v->size; j++) sum += probs[j] = (float)exp((logits[j] - mx) / temperature);
        double r = dn_rng_uniform(&rng) * sum, acc = 0;
        int64_t pick = v->size - 1;
        for (int64_t j = 0; j < v->size; j++) {
            acc += probs[j];
            if (r < acc) { pick = j; break; }
        }
        ids[n] = (float)pick;
        fputc(v->bytes[pick], stdout);
    }
    fputc('\n', stdout);
    rc = 0;
out:
    free(ids);
    free(probs);
    dn_ctx_free(ctx);
    dn_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(usage_main, true);
    const char *cmd = argv[1];
    if (is_help(cmd)) return usage(usage_main, false);
    if (!strcmp(cmd, "--version")) {
        printf("dendrite %s\n", DN_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "gradcheck")) return cmd_gradcheck(argc - 2, argv + 2);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 2, argv + 2);
    if (!strcmp(cmd, "import")) return cmd_import(argc - 2, argv + 2);
    if (!strcmp(cmd, "report")) return dn_cli_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "visualize")) return dn_cli_visualize(argc - 2, argv + 2);
    fprintf(stderr, "dendrite: unknown command '%s'\n", cmd);
    return usage(usage_main, true);
}
