/* dendrite — the command-line trainer.  It parses arguments and calls the library (public header only). */
#include "dendrite.h"
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

static int fail(const char *what)
{
    /* in a distributed run every process that fails says so, with its rank */
    char who[48] = "";
    if (dn_dist_size() > 1) snprintf(who, sizeof who, " (rank %d of %d)", dn_dist_rank(), dn_dist_size());
    fprintf(stderr, "dendrite%s: %s%s%s\n", who, what ? what : "", what && *dn_last_error() ? ": " : "",
            dn_last_error());
    return 1;
}

/* ------------------------------------------------------------------ usage */

static const char *const usage_main =
    "usage: dendrite <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CFG       train the model described by CFG (see docs/cfg.md), or fine-tune a checkpoint or .onnx\n"
    "  eval CKPT       loss, accuracy and confusion matrix of a checkpoint on the test set\n"
    "  predict CKPT FILE  class probabilities (or outputs) for each sample of FILE (IDX or CSV)\n"
    "  info CFG|CKPT   layers, output shapes, parameters and FLOPs\n"
    "  generate CKPT   sample text from a character model\n"
    "  export CKPT -o FILE  the model as an ONNX file (a build with make ONNX=1)\n"
    "  import FILE.onnx -o CKPT  an ONNX model as a checkpoint (make ONNX=1; feed-forward layers)\n"
    "  report LOG [CKPT]  an HTML page: training curves and, with CKPT, test-set confusion matrix and mistakes\n"
    "  visualize CKPT  the first convolutional layer's filters as an SVG or PNG picture\n"
    "  gradcheck       check every op's gradient against finite differences\n"
    "  compare A B     the largest difference between two checkpoints' parameters\n"
    "\n"
    "`dendrite <command> --help` describes a command's options.  Every command takes --threads N (kernel\n"
    "threads; default: DN_THREADS, else every core this process may use); DN_ISA=portable|avx2|avx512|neon caps\n"
    "the instruction set the kernels use.\n";

static const char *const usage_train =
    "usage: dendrite train CFG|CKPT|MODEL.onnx [options]\n"
    "A checkpoint or an ONNX file (imported) instead of CFG fine-tunes that model: its layers and weights, its\n"
    "[net] settings unless an option overrides them, a fresh optimiser (--resume continues a run instead).\n"
    "  --data DIR|FILE   training data (MNIST folder or CSV file; default: the cfg's [data] train)\n"
    "  --epochs N        epochs (default: the cfg's)\n"
    "  --batch N         minibatch size\n"
    "  --lr X            learning rate\n"
    "  --threads N       kernel threads (default: DN_THREADS, else every core this process may use)\n"
    "  --seed N          seed for initialisation, shuffling and dropout\n"
    "  --save FILE       checkpoint written after every epoch (crash-safe)\n"
    "  --resume FILE     continue a run from its checkpoint\n"
    "  --init FILE       start from the weights of a checkpoint or ONNX file (matched by name and shape), with\n"
    "                    CFG's layers and settings and a fresh optimiser\n"
    "  --log FILE        one JSON line per epoch\n"
    "  --quiet           no progress output\n"
    "  --detect-anomaly  stop at the first op (and layer) that produces NaN or infinity\n"
    "  --memory-limit MB refuse steps that need more working memory than this\n"
    "The last line on stdout is one JSON object with the run's figures.\n"
    "Under mpirun (a build with make MPI=1, docs/distributed.md) the processes train one model together, each on\n"
    "a shard of every batch; only rank 0 prints, logs and writes checkpoints.\n";

static const char *const usage_eval =
    "usage: dendrite eval CKPT [--data DIR|FILE]\n"
    "Prints JSON: loss, accuracy, samples and the confusion matrix (rows: true class) on the test set.\n";

static const char *const usage_predict =
    "usage: dendrite predict CKPT FILE\n"
    "FILE: IDX images (as MNIST's) or a CSV file of features (one sample per line, no label column), normalised\n"
    "as in training.  Prints one line per sample: its index, the predicted class and the class probabilities (or\n"
    "the outputs); for a model with a class per time step, its index and the predicted class of every step.\n";

static const char *const usage_info =
    "usage: dendrite info CFG|CKPT|MODEL.onnx\n"
    "Prints the layers with output shapes, parameter counts and FLOPs per sample, and the totals.\n";

static const char *const usage_generate =
    "usage: dendrite generate CKPT [--prime TEXT] [--length N] [--temperature T] [--seed N]\n"
    "Samples N characters (default 200) from a character model, after the prime text (default: a newline).\n"
    "Temperature below 1 sharpens the distribution, above 1 flattens it (default 0.8).\n";

static const char *const usage_gradcheck =
    "usage: dendrite gradcheck [OP...]\n"
    "Checks each op's backward against central finite differences; one line per op, exit 1 on a failure.\n";

static const char *const usage_export =
    "usage: dendrite export CKPT|CFG|MODEL.onnx -o FILE.onnx [--opset N]\n"
    "Writes the model (a checkpoint, an imported ONNX model, or a cfg's freshly initialised model) as ONNX for inference: opset 13 unless\n"
    "--opset says 13 to 17, a dynamic batch axis, the cfg in the metadata (docs/onnx.md).\n";

static const char *const usage_import =
    "usage: dendrite import FILE.onnx -o CKPT [--cfg FILE.cfg]\n"
    "Reads an ONNX model of feed-forward layers (as torch.onnx.export writes them: Gemm, Conv, pooling, batch norm,\n"
    "activations, Flatten, Add, Concat; docs/onnx.md) and saves it as a checkpoint that eval, predict, info and train\n"
    "read.  An op or attribute the importer does not read is refused with the node's name.  --cfg also writes the\n"
    "model's cfg text, for `dendrite train FILE.cfg --init CKPT` with [net] settings of your own.\n";

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

/* What the epoch callback needs: it prints the epoch's line, appends to the log and saves the checkpoint. */
typedef struct epoch_out {
    progress prog;
    bool quiet, saving; /* saving: the failure was the checkpoint's, not the epoch's */
    const char *save;
    FILE *log;
    dn_run *run;
    double sps_sum;
    int sps_n;
    double comm;  /* seconds waiting for gradient sums, all epochs */
} epoch_out;

static dn_status on_epoch(void *user, const dn_epoch_stats *st)
{
    epoch_out *e = user;
    e->sps_sum += st->samples_per_sec;
    e->sps_n++;
    e->comm += st->comm_seconds;
    char comm[48] = "";
    if (dn_dist_size() > 1 && st->steps > 0)
        snprintf(comm, sizeof comm, "  comm wait %.2f ms/step", 1e3 * st->comm_seconds / (double)st->steps);
    if (!e->quiet) {
        if (e->prog.tty) fputc('\r', stderr);
        char acc[32] = "", val[64] = "";
        if (isfinite(st->train_accuracy)) snprintf(acc, sizeof acc, "  acc %.4f", st->train_accuracy);
        if (isfinite(st->val_loss)) snprintf(val, sizeof val, "  val_loss %.4f", st->val_loss);
        if (isfinite(st->val_accuracy))
            snprintf(val + strlen(val), sizeof val - strlen(val), "  val_acc %.4f", st->val_accuracy);
        fprintf(stderr, "epoch %d/%d  loss %.4f%s%s  lr %.3g  %.0f samples/s  %.1fs%s%s%-10s\n", st->epoch, st->epochs,
                st->train_loss, acc, val, st->lr, st->samples_per_sec, st->seconds, comm,
                st->stop ? "  (early stop)" : "", "");
    }
    if (e->log) {
        fprintf(e->log, "{\"epoch\": %d, ", st->epoch);
        json_num(e->log, "train_loss", st->train_loss, true);
        json_num(e->log, "train_accuracy", st->train_accuracy, true);
        json_num(e->log, "val_loss", st->val_loss, true);
        json_num(e->log, "val_accuracy", st->val_accuracy, true);
        json_num(e->log, "lr", st->lr, true);
        json_num(e->log, "samples_per_sec", st->samples_per_sec, true);
        if (dn_dist_size() > 1) json_num(e->log, "comm_seconds", st->comm_seconds, true);
        json_num(e->log, "seconds", st->seconds, false);
        fprintf(e->log, "}\n");
        fflush(e->log);
    }
    e->saving = true;
    dn_status s = e->save ? dn_run_save(e->run, e->save) : DN_OK;
    e->saving = s != DN_OK;
    return s;
}

static int cmd_train(int argc, char **argv)
{
    const char *cfg_path = NULL, *save = NULL, *resume = NULL, *log_path = NULL, *init = NULL;
    dn_run_options o;
    dn_run_options_default(&o);
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
        else if (!strcmp(a, "--data") && has) o.data = argv[++i];
        else if (!strcmp(a, "--save") && has) save = argv[++i];
        else if (!strcmp(a, "--resume") && has) resume = argv[++i];
        else if (!strcmp(a, "--init") && has) init = argv[++i];
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
    if (init && resume) {
        fprintf(stderr, "dendrite train: --init (new training from weights) and --resume (continue a run) exclude each other\n");
        return usage(usage_train, true);
    }

    /* the library loads the data, splits, normalises and builds the trainer; this verb prints */
    o.epochs = (int)epochs;
    o.batch = batch;
    o.threads = (int)threads;
    o.seed = seed;
    o.lr = lr;
    o.detect_anomaly = anomaly;
    dn_run *run = NULL;
    if (dn_run_open(cfg_path, &o, &run)) return fail(NULL);
    const dn_train_config *c = dn_run_config(run);
    int rc = 1;
    /* distributed (mpirun -np K): every process trains its shard; rank 0 alone prints and logs, and dn_run_save
     * writes on rank 0 only */
    const bool lead = dn_dist_rank() == 0;
    dn_run_set_distributed(run, true);
    if (!lead) {
        quiet = true;
        log_path = NULL;
    }
    epoch_out eo = {.quiet = quiet, .save = save, .run = run};
    eo.prog = (progress){isatty(2), quiet, 0, c->batch};
    dn_trainer_set_batch_callback(dn_run_trainer(run), on_batch, &eo.prog);
    if (resume && dn_run_resume(run, resume)) { fail("resuming"); goto out; }
    if (init && dn_run_init_weights(run, init)) { fail("loading the initial weights"); goto out; }
    if (log_path) {
        eo.log = fopen(log_path, resume ? "a" : "w");
        if (!eo.log) { fprintf(stderr, "dendrite: cannot open log %s: %s\n", log_path, strerror(errno)); goto out; }
    }
    double t0 = now();
    dn_epoch_stats st;
    if (dn_run_train(run, on_epoch, &eo, &st)) {
        if (eo.prog.tty && !quiet && !eo.saving) fputc('\n', stderr);
        fail(eo.saving ? "saving checkpoint" : "training");
        goto out;
    }
    if (save && dn_run_save(run, save)) { fail("saving checkpoint"); goto out; }
    dn_run_eval te = {NAN, NAN, 0, 0, NULL};
    if (dn_run_test_set(run) && dn_run_evaluate(run, NULL, &te)) { fail("evaluating"); goto out; }
    rc = 0;
    if (!lead) goto out;
    printf("{\"epochs\": %d, ", dn_trainer_epochs_done(dn_run_trainer(run)));
    json_num(stdout, "train_loss", st.train_loss, true);
    json_num(stdout, "val_loss", st.val_loss, true);
    json_num(stdout, "test_loss", te.loss, true);
    json_num(stdout, "test_accuracy", te.accuracy, true);
    json_num(stdout, "samples_per_sec", eo.sps_n ? eo.sps_sum / eo.sps_n : NAN, true);
    if (dn_dist_size() > 1) {
        printf("\"processes\": %d, ", dn_dist_size());
        json_num(stdout, "comm_seconds", eo.comm, true);
    }
    json_num(stdout, "seconds", now() - t0, false);
    printf("}\n");
out:
    if (eo.log) fclose(eo.log);
    dn_run_free(run);
    return rc;
}

/* train under mpirun or alone: MPI starts first; a process that fails ends the whole job (the others would wait for
 * it in the next gradient sum), with its message already printed. */
static int train_main(int argc, char **argv)
{
    if (dn_dist_init(NULL, NULL)) return fail("starting MPI");
    int rc = cmd_train(argc, argv);
    fflush(stdout);
    fflush(stderr);
    if (rc != 0) dn_dist_abort(rc);
    dn_dist_finalize();
    return rc;
}

/* ------------------------------------------------------------------ compare */

static const char *const usage_compare =
    "usage: dendrite compare A B\n"
    "Compares the parameters of two checkpoints of the same model.  Prints JSON: max_rel_error (over tensors, the\n"
    "largest |a - b| divided by the tensor's largest |a|), max_abs_error, and identical (every bit equal).\n"
    "Exit status 0, or 1 when the models differ in names or shapes.\n";

static int cmd_compare(int argc, char **argv)
{
    const char *pa = NULL, *pb = NULL;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) return usage(usage_compare, false);
        if (argv[i][0] == '-') return usage(usage_compare, true);
        if (!pa) pa = argv[i];
        else if (!pb) pb = argv[i];
        else return usage(usage_compare, true);
    }
    if (!pa || !pb) return usage(usage_compare, true);
    dn_model *a = NULL, *b = NULL;
    if (dn_model_load(pa, &a, NULL)) return fail(pa);
    if (dn_model_load(pb, &b, NULL)) {
        dn_model_free(a);
        return fail(pb);
    }
    int rc = 0, n = dn_model_tensor_count(a);
    double max_rel = 0, max_abs = 0;
    bool identical = true;
    if (n != dn_model_tensor_count(b)) {
        fprintf(stderr, "dendrite compare: %s has %d parameter tensors, %s has %d\n", pa, n, pb, dn_model_tensor_count(b));
        rc = 1;
    }
    for (int i = 0; !rc && i < n; i++) {
        dn_tensor *x = dn_model_tensor(a, i), *y = dn_model_tensor(b, i);
        int64_t k = dn_tensor_numel(x);
        if (strcmp(dn_model_tensor_name(a, i), dn_model_tensor_name(b, i)) || k != dn_tensor_numel(y)) {
            fprintf(stderr, "dendrite compare: tensor %d is %s in %s but %s in %s\n", i, dn_model_tensor_name(a, i), pa,
                    dn_model_tensor_name(b, i), pb);
            rc = 1;
            break;
        }
        const float *u = dn_tensor_data(x), *v = dn_tensor_data(y);
        double scale = 0, diff = 0;
        for (int64_t j = 0; j < k; j++) {
            double d = fabs((double)u[j] - (double)v[j]);
            scale = fabs((double)u[j]) > scale ? fabs((double)u[j]) : scale;
            diff = d > diff ? d : diff;
            if (memcmp(&u[j], &v[j], sizeof(float)) != 0) identical = false;
        }
        max_abs = diff > max_abs ? diff : max_abs;
        double rel = scale > 0 ? diff / scale : diff;
        max_rel = rel > max_rel ? rel : max_rel;
    }
    if (!rc)
        printf("{\"max_rel_error\": %.9g, \"max_abs_error\": %.9g, \"identical\": %s}\n", max_rel, max_abs,
               identical ? "true" : "false");
    dn_model_free(a);
    dn_model_free(b);
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
    dn_run *run = NULL;
    if (dn_run_load(ckpt, &run)) return fail(NULL);
    int rc = 1;
    dn_run_eval r;
    if (dn_run_load_test(run, data)) { fail("loading test data"); goto out; }
    if (dn_run_evaluate(run, NULL, &r)) { fail("evaluating"); goto out; }
    printf("{");
    json_num(stdout, "loss", r.loss, true);
    json_num(stdout, "accuracy", r.accuracy, true);
    printf("\"samples\": %lld, \"confusion\": [", (long long)r.n);
    for (int i = 0; i < r.n_classes; i++) {
        printf(i ? ", [" : "[");
        for (int j = 0; j < r.n_classes; j++) printf(j ? ", %lld" : "%lld", (long long)r.confusion[i * r.n_classes + j]);
        printf("]");
    }
    printf("]}\n");
    rc = 0;
out:
    dn_run_free(run);
    return rc;
}

/* ------------------------------------------------------------------ predict */

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
    dn_run *run = NULL;
    if (dn_run_load(ckpt, &run)) return fail(NULL);
    dn_predictions *p = NULL;
    if (dn_run_predict(run, file, &p)) {
        dn_run_free(run);
        return fail(NULL);
    }
    for (int64_t i = 0; i < p->n; i++) {
        printf("%lld", (long long)i);
        if (p->steps > 1) {
            /* a class per time step: the T predicted classes */
            for (int64_t t = 0; t < p->steps; t++) printf(" %lld", (long long)p->classes[i * p->steps + t]);
        } else {
            printf(" %lld", (long long)p->classes[i]);
            for (int64_t j = 0; j < p->outputs; j++) printf(" %.6g", p->values[i * p->outputs + j]);
        }
        printf("\n");
    }
    dn_predictions_free(p);
    dn_run_free(run);
    return 0;
}

/* ------------------------------------------------------------------ info */

static int cmd_info(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-') return usage(usage_info, !(argc == 1 && is_help(argv[0])));
    dn_model *m = NULL;
    dn_train_config c;
    dn_status s = dn_model_open(argv[0], &m, &c);
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
    dn_status s = dn_model_open(in, &m, &c);
    if (s) return fail(NULL);
    s = dn_model_export_onnx(m, out, opset);
    dn_model_free(m);
    if (s) return fail("export");
    printf("%s: written\n", out);
    return 0;
}

/* Writes text to path (the imported model's cfg). */
static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    bool ok = f && text && fputs(text, f) >= 0;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) {
        fprintf(stderr, "dendrite: cannot write %s: %s\n", path, text ? strerror(errno) : "the model has no cfg text");
        return 1;
    }
    printf("%s: written\n", path);
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *cfg = NULL;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) return usage(usage_import, false);
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--cfg") && i + 1 < argc) cfg = argv[++i];
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
    if (s) {
        dn_model_free(m);
        return fail("import");
    }
    printf("%s: written\n", out);
    int rc = cfg ? write_text(cfg, dn_model_cfg_text(m)) : 0;
    dn_model_free(m);
    return rc;
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
    dn_run *run = NULL;
    if (dn_run_load(ckpt, &run)) return fail(NULL);
    char *text = malloc((size_t)length + 1);
    if (!text) {
        dn_run_free(run);
        return fail("out of memory");
    }
    int rc = 0;
    if (dn_run_generate(run, prime, length, temperature, (uint64_t)seed, text, NULL)) rc = fail(ckpt);
    else printf("%s%s\n", prime, text);
    free(text);
    dn_run_free(run);
    return rc;
}

/* Options every command takes: --threads N (kernel threads; default: DN_THREADS, else every core this process may
 * use) is taken out of argv here, and DN_ISA is checked once so that a misspelt name is reported, not ignored.
 * Returns false (after a message) on a bad value. */
static bool common_options(int *argc, char **argv)
{
    const char *isa = getenv("DN_ISA");
    dn_isa want;
    if (isa && *isa) {
        if (dn_isa_from_name(isa, &want) != DN_OK)
            fprintf(stderr, "dendrite: ignoring DN_ISA=%s (use portable, avx2, avx512 or neon); using %s\n", isa,
                    dn_isa_name(dn_get_isa()));
        else if (!dn_isa_supported(want))
            fprintf(stderr, "dendrite: this CPU cannot run %s code (DN_ISA); using %s\n", isa, dn_isa_name(dn_get_isa()));
    }
    int out = 2;
    for (int i = 2; i < *argc; i++) {
        if (!strcmp(argv[i], "--threads") && strcmp(argv[1], "train") != 0) { /* train passes it to its run */
            long n;
            if (i + 1 >= *argc || !parse_long(argv[i + 1], 1, 1024, &n)) {
                fprintf(stderr, "dendrite %s: bad or missing value for '--threads'\n", argv[1]);
                return false;
            }
            dn_set_threads((int)n);
            i++;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(usage_main, true);
    if (!common_options(&argc, argv)) return 2;
    const char *cmd = argv[1];
    if (is_help(cmd)) return usage(usage_main, false);
    if (!strcmp(cmd, "--version")) {
        printf("dendrite %s\n", DN_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "train")) return train_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 2, argv + 2);
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
