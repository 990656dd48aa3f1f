/* End to end: cfg -> model -> training on real MNIST, checkpoints, resume, early stopping, bad files. */
#define _DEFAULT_SOURCE /* setgroups */
#include "test.h"
#include "nn/model.h" /* the model's buffers (batch-norm running statistics) */

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/dn_train_XXXXXX");
        if (!mkdtemp(tmpdir)) tmpdir[0] = '\0';
    }
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static dn_dataset *mnist_train, *mnist_test;

/* The first n samples of a data set, as a data set of their own (shares nothing). */
static dn_dataset *head(const dn_dataset *d, int64_t n)
{
    dn_dataset *a = NULL, *b = NULL;
    /* a split with fraction 0 copies the set; then shrink the count */
    if (dn_dataset_split(d, 0.0, 1, &a, &b)) return NULL;
    dn_dataset_free(b);
    if (a && a->n > n) a->n = n;
    return a;
}

/* False (the test skipped when the files are absent, failed when they do not load) without MNIST. */
static bool load_mnist(void)
{
    if (mnist_train) return true;
    if (!t_need_mnist()) return false;
    char a[512], b[512];
    dn_dataset *full = NULL;
    snprintf(a, sizeof a, "%s/mnist/train-images-idx3-ubyte", t_data_dir());
    snprintf(b, sizeof b, "%s/mnist/train-labels-idx1-ubyte", t_data_dir());
    CHECK_OK(dn_dataset_load_idx(a, b, 1.0f / 255.0f, &full));
    if (!full) return false;
    mnist_train = head(full, 8000);
    dn_dataset_free(full);
    snprintf(a, sizeof a, "%s/mnist/t10k-images-idx3-ubyte", t_data_dir());
    snprintf(b, sizeof b, "%s/mnist/t10k-labels-idx1-ubyte", t_data_dir());
    CHECK_OK(dn_dataset_load_idx(a, b, 1.0f / 255.0f, &full));
    if (!full) return false;
    mnist_test = head(full, 2000);
    dn_dataset_free(full);
    return mnist_train && mnist_test;
}

static const char *small_cfg =
    "[net]\n"
    "input = 28, 28\n"
    "batch = 32\n"
    "epochs = 3\n"
    "seed = 5\n"
    "optimizer = adam\n"
    "lr = 0.002\n"
    "validation = 0.1\n"
    "\n"
    "[dense]\n"
    "units = 64\n"
    "init = he_uniform\n"
    "activation = relu\n"
    "\n"
    "[dense]\n"
    "units = 10\n";

static dn_status run_epochs(const char *cfg, int epochs, const char *save_after_1, const char *resume_from,
                            dn_model **out)
{
    dn_model *m = NULL;
    dn_train_config c;
    dn_trainer *t = NULL;
    dn_status s = dn_model_from_cfg(cfg, "small.cfg", &m, &c);
    if (s) return s;
    c.epochs = epochs;
    s = dn_trainer_new(m, &c, mnist_train, NULL, &t);
    if (!s && resume_from) s = dn_trainer_resume(t, resume_from);
    while (!s && !dn_trainer_finished(t)) {
        dn_epoch_stats st;
        s = dn_trainer_epoch(t, &st);
        if (!s && save_after_1 && st.epoch == 1) s = dn_trainer_save(t, save_after_1);
    }
    dn_trainer_free(t);
    if (s) {
        dn_model_free(m);
        return s;
    }
    *out = m;
    return DN_OK;
}

static void mnist_mlp_learns(void)
{
    if (!load_mnist()) return;
    dn_model *m = NULL;
    CHECK_OK(run_epochs(small_cfg, 3, NULL, NULL, &m));
    if (!m) return;
    dn_train_config c;
    dn_train_defaults(&c);
    dn_eval_result r;
    int64_t conf[100];
    CHECK_OK(dn_evaluate(m, &c, mnist_test, &r, conf));
    /* 8000 training images, 3 epochs: a 784-64-10 MLP lands near 93-94% */
    CHECK_MSG(r.accuracy >= 0.90, "test accuracy %.4f below the 0.90 floor", r.accuracy);
    int64_t total = 0, diag = 0;
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) {
            total += conf[i * 10 + j];
            if (i == j) diag += conf[i * 10 + j];
        }
    CHECK(total == 2000);
    CHECK_NEAR((double)diag / 2000.0, r.accuracy, 1e-9);
    dn_model_free(m);
}

static bool same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = false;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void same_seed_same_checkpoint(void)
{
    if (!load_mnist()) return;
    dn_model *a = NULL, *b = NULL;
    CHECK_OK(run_epochs(small_cfg, 1, tmp_path("a.ckpt"), NULL, &a));
    CHECK_OK(run_epochs(small_cfg, 1, tmp_path("b.ckpt"), NULL, &b));
    CHECK(same_file(tmp_path("a.ckpt"), tmp_path("b.ckpt")));
    dn_model_free(a);
    dn_model_free(b);
}

static void resume_is_bit_identical(void)
{
    if (!load_mnist()) return;
    dn_model *whole = NULL, *resumed = NULL, *first = NULL;
    CHECK_OK(run_epochs(small_cfg, 2, NULL, NULL, &whole));
    CHECK_OK(run_epochs(small_cfg, 1, tmp_path("e1.ckpt"), NULL, &first));
    CHECK_OK(run_epochs(small_cfg, 2, NULL, tmp_path("e1.ckpt"), &resumed));
    if (whole && resumed) {
        size_t n = dn_model_param_count(whole);
        CHECK(n == dn_model_param_count(resumed));
        CHECK(memcmp(dn_model_params(whole), dn_model_params(resumed), n * sizeof(float)) == 0);
    }
    /* and the checkpoint reloads to identical outputs */
    dn_model *loaded = NULL;
    CHECK_OK(dn_model_load(tmp_path("e1.ckpt"), &loaded, NULL));
    if (loaded && first) {
        CHECK(memcmp(dn_model_params(first), dn_model_params(loaded), dn_model_param_count(first) * sizeof(float)) == 0);
        dn_ctx *ctx = dn_ctx_new();
        dn_ctx_set_grad(ctx, false);
        dn_tensor *x;
        CHECK_OK(dn_tensor_from(ctx, 3, (int64_t[]){4, 28, 28}, mnist_test->x, &x));
        dn_tensor *ya = dn_model_forward(first, ctx, x), *yb = dn_model_forward(loaded, ctx, x);
        CHECK(ya && yb && memcmp(dn_tensor_data(ya), dn_tensor_data(yb), 40 * sizeof(float)) == 0);
        dn_ctx_free(ctx);
    }
    dn_model_free(whole);
    dn_model_free(resumed);
    dn_model_free(first);
    dn_model_free(loaded);
}

static void early_stopping_stops_and_restores(void)
{
    if (!load_mnist()) return;
    /* min_delta so large that nothing after the first epoch counts as better: with patience 2 the run
     * stops after epoch 3 and restores epoch 1's weights */
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "[net]\npatience = 2\nmin_delta = 1000\n%s", strstr(small_cfg, "input"));
    dn_model *m = NULL;
    dn_train_config c;
    CHECK_OK(dn_model_from_cfg(cfg, "es.cfg", &m, &c));
    if (!m) return;
    c.epochs = 10;
    dn_trainer *t = NULL;
    CHECK_OK(dn_trainer_new(m, &c, mnist_train, NULL, &t));
    float *after1 = malloc(dn_model_param_count(m) * sizeof(float));
    int epochs = 0;
    bool stopped = false;
    while (t && !dn_trainer_finished(t)) {
        dn_epoch_stats st;
        CHECK_OK(dn_trainer_epoch(t, &st));
        epochs++;
        if (st.epoch == 1) {
            CHECK(st.improved);
            memcpy(after1, dn_model_params(m), dn_model_param_count(m) * sizeof(float));
        } else {
            CHECK(!st.improved);
        }
        stopped = st.stop;
        if (epochs > 10) break;
    }
    CHECK(stopped && epochs == 3);
    CHECK(memcmp(after1, dn_model_params(m), dn_model_param_count(m) * sizeof(float)) != 0);
    dn_trainer_restore_best(t);
    CHECK(memcmp(after1, dn_model_params(m), dn_model_param_count(m) * sizeof(float)) == 0);
    free(after1);
    dn_trainer_free(t);
    dn_model_free(m);
}

static void expect_cfg_error(const char *text, const char *needle1, const char *needle2)
{
    dn_model *m = (dn_model *)1;
    dn_status s = dn_model_from_cfg(text, "bad.cfg", &m, NULL);
    CHECK_MSG(s != DN_OK && m == NULL, "cfg was accepted:\n%s", text);
    CHECK_MSG(strstr(dn_last_error(), needle1) && (!needle2 || strstr(dn_last_error(), needle2)),
              "message '%s' lacks '%s'/'%s'", dn_last_error(), needle1, needle2 ? needle2 : "");
}

static void malformed_cfg_files(void)
{
    expect_cfg_error("[net]\ninput = 4\nlern_rate = 0.1\n[dense]\nunits = 2\n", "bad.cfg:3", "lern_rate");
    expect_cfg_error("[net]\ninput = 4\n[dense]\nunits = abc\n", "bad.cfg:4", "abc");
    expect_cfg_error("[net]\ninput = 4\n[dense]\nunits = -3\n", "bad.cfg:4", "units");
    expect_cfg_error("[net]\ninput = 4\n[convolution]\n", "bad.cfg:3", "convolution");
    expect_cfg_error("[dense]\nunits = 3\n", "bad.cfg:1", "[net]");
    expect_cfg_error("[net]\ninput = 4\n", "no layers", NULL);
    expect_cfg_error("[net]\nbatch = 3\n[dense]\nunits = 2\n", "input", NULL);
    expect_cfg_error("[net]\ninput = 4\noptimizer = adamm\n[dense]\nunits = 2\n", "bad.cfg:3", "adamm");
    expect_cfg_error("[net]\ninput = 4\n[activation]\ntype = relux\n", "bad.cfg:3", "relux");
    expect_cfg_error("[net]\ninput = 4\n[activation]\ntype = leaky_relu\nalpah = 0.2\n", "bad.cfg:5", "alpah");
    expect_cfg_error("[net]\ninput = 3, 4\n[activation]\ntype = prelu\nchannels = 5\n", "bad.cfg", "channels");
    expect_cfg_error("[net]\ninput = 4\nvalidation = 1.5\n[dense]\nunits = 2\n", "validation", NULL);
    expect_cfg_error("[net]\ninput = 4\nloss = mse\n[dense]\nunits = 2\n", "bad.cfg:3", "mse");
    expect_cfg_error("[net\ninput = 4\n", "bad.cfg:1", NULL);
    /* a good one, with every layer kind */
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 2, 3\n[flatten]\n[dense]\nunits = 4\nactivation = elu\n"
                               "[activation]\ntype = prelu\nchannels = 4\n[activation]\ntype = swish\n"
                               "[dense]\nunits = 3\nbias = 0\n[activation]\ntype = softmax\naxis = -1\n",
                               "ok.cfg", &m, NULL));
    if (m) {
        CHECK(dn_model_param_count(m) == 6 * 4 + 4 + 4 + 1 + 4 * 3);
        char buf[2048];
        dn_model_summary(m, buf, sizeof buf);
        CHECK(strstr(buf, "prelu") && strstr(buf, "total: 45 parameters"));
    }
    dn_model_free(m);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* Saves m over path inside a read-only folder, in a child process; returns 0 when the save failed with DN_ERR_IO
 * and a message naming the file and the reason.  Root ignores file permissions, so a root child first becomes
 * nobody (uid and gid 65534, no supplementary groups): the check then runs the same for every user, CI's root
 * included. */
static int save_into_readonly_dir(dn_model *m, const char *path)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 20;
    if (pid == 0) {
        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) _exit(10);
        if (access(tmpdir, W_OK) == 0) _exit(11);
        dn_status s = dn_model_save(m, path);
        _exit(s == DN_OK                                   ? 1
              : s != DN_ERR_IO                             ? 3
              : !strstr(dn_last_error(), path)             ? 2
              : !strstr(dn_last_error(), strerror(EACCES)) ? 4
                                                           : 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static void bad_checkpoints_are_refused(void)
{
    dn_model *m = NULL;
    dn_train_config c;
    CHECK_OK(dn_model_from_cfg(small_cfg, "small.cfg", &m, &c));
    if (!m) return;
    char good[512];
    snprintf(good, sizeof good, "%s", tmp_path("good.ckpt"));
    CHECK_OK(dn_model_save(m, good));
    /* truncated */
    FILE *f = fopen(good, "rb");
    static unsigned char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 1000);
    write_bytes(tmp_path("trunc.ckpt"), buf, n / 2);
    dn_model *x = NULL;
    CHECK(dn_model_load(tmp_path("trunc.ckpt"), &x, NULL) != DN_OK && x == NULL);
    CHECK(strstr(dn_last_error(), "trunc.ckpt") != NULL);
    /* not a checkpoint at all */
    write_bytes(tmp_path("junk.ckpt"), "hello world, not a checkpoint", 29);
    CHECK(dn_model_load(tmp_path("junk.ckpt"), &x, NULL) != DN_OK);
    /* a checkpoint of another model */
    dn_model *other = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 784\n[dense]\nunits = 10\n", "o.cfg", &other, NULL));
    CHECK(other && dn_model_load_params(other, good) != DN_OK && strstr(dn_last_error(), "layers.0.weight"));
    dn_model_free(other);
    /* a save that fails leaves the old file intact */
    CHECK(dn_model_save(m, "/nonexistent-dir/x.ckpt") != DN_OK);
    write_bytes(tmp_path("good.copy"), buf, n);
    chmod(tmpdir, 0555); /* others may enter (the child may be nobody), nobody may write */
    int code = save_into_readonly_dir(m, good);
    chmod(tmpdir, 0700);
    CHECK_MSG(code == 0, "save into a read-only folder: %s",
              code == 1    ? "succeeded"
              : code == 2  ? "failed without naming the file"
              : code == 3  ? "failed with a status other than DN_ERR_IO"
              : code == 4  ? "failed without saying the permission was denied"
              : code == 10 ? "could not drop root privileges to uid/gid 65534"
              : code == 11 ? "the folder is still writable"
                           : "the child did not finish");
    CHECK_MSG(same_file(good, tmp_path("good.copy")), "the failed save changed %s", good);
    CHECK_OK(dn_model_load(good, &x, NULL));
    dn_model_free(x);
    dn_model_free(m);
}

static int run_cli(const char *args, char *out, size_t size)
{
    char cmd[1024];
    const char *bin = getenv("DN_BUILD");
    const char *pre = getenv("DN_RUN_PREFIX"); /* e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu" for a cross build */
    snprintf(cmd, sizeof cmd, "%s%s%s/dendrite %s 2>&1", pre ? pre : "", pre ? " " : "", bin ? bin : "build", args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    char sink[4096]; /* drain the rest so the command is not killed by SIGPIPE */
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void command_line(void)
{
    static char out[1 << 16];
    if (!t_need_mnist()) return; /* a real run through the command trains on MNIST */
    CHECK(run_cli("", out, sizeof out) == 2 && strstr(out, "usage"));
    CHECK(run_cli("frobnicate", out, sizeof out) == 2 && strstr(out, "unknown command"));
    CHECK(run_cli("train --help", out, sizeof out) == 0 && strstr(out, "--resume"));
    CHECK(run_cli("train", out, sizeof out) == 2);
    CHECK(run_cli("train examples/mnist_mlp.cfg --epochs x", out, sizeof out) == 2);
    CHECK(run_cli("info examples/mnist_mlp.cfg", out, sizeof out) == 0 && strstr(out, "total: 535818 parameters"));
    CHECK(run_cli("info /nonexistent.cfg", out, sizeof out) == 1 && strstr(out, "nonexistent"));
    CHECK(run_cli("gradcheck relu sigmoid", out, sizeof out) == 0 && strstr(out, "2 passed, 0 failed"));
    CHECK(run_cli("gradcheck no_such_op", out, sizeof out) == 1);
    /* a short real run through the command: save, eval, predict */
    char args[1024];
    snprintf(args, sizeof args, "train tests/fixtures/tiny_mnist.cfg --data %s/mnist --epochs 1 --quiet --save %s --log %s",
             t_data_dir(), tmp_path("cli.ckpt"), tmp_path("log.jsonl"));
    int rc = run_cli(args, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "\"test_accuracy\""), "train exited %d: %s", rc, out);
    snprintf(args, sizeof args, "eval %s --data %s/mnist", tmp_path("cli.ckpt"), t_data_dir());
    CHECK(run_cli(args, out, sizeof out) == 0 && strstr(out, "\"confusion\": [["));
    snprintf(args, sizeof args, "predict %s %s/mnist/t10k-images-idx3-ubyte", tmp_path("cli.ckpt"), t_data_dir());
    CHECK(run_cli(args, out, sizeof out) == 0 && strncmp(out, "0 7 ", 4) == 0); /* the first test digit is a 7 */
    /* CSV end to end: train on labelled rows, predict on rows of features alone */
    FILE *f = fopen(tmp_path("q.csv"), "w");
    if (f) {
        fputs("a,b,c,label\n0.1,0.2,0.3,1\n0.5,0.5,0.5,0\n0.9,0.1,0.4,1\n", f);
        fclose(f);
    }
    f = fopen(tmp_path("p.csv"), "w");
    if (f) {
        fputs("0.1,0.2,0.3\n0.5,0.5,0.5\n", f);
        fclose(f);
    }
    f = fopen(tmp_path("p.cfg"), "w");
    if (f) {
        fputs("[net]\ninput = 3\nloss = bce_with_logits\n[data]\nformat = csv\n[dense]\nunits = 1\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "train %s --data %s --epochs 2 --quiet --save %s", tmp_path("p.cfg"), tmp_path("q.csv"),
             tmp_path("p.ckpt"));
    rc = run_cli(args, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "\"epochs\": 2"), "csv train exited %d: %s", rc, out);
    snprintf(args, sizeof args, "predict %s %s", tmp_path("p.ckpt"), tmp_path("p.csv"));
    CHECK(run_cli(args, out, sizeof out) == 0 && strncmp(out, "0 ", 2) == 0 && strstr(out, "\n1 "));
    snprintf(args, sizeof args, "train %s --data %s --epochs 1", tmp_path("p.cfg"), tmp_path("p.csv"));
    CHECK(run_cli(args, out, sizeof out) == 1 && strstr(out, "[2]") && strstr(out, "[3]"));
    /* malformed files through the command: a clear message and exit status 1, nothing written */
    f = fopen(tmp_path("ragged.csv"), "w");
    if (f) {
        fputs("1,2,3,0\n4,5,1\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "train %s --data %s --quiet --save %s", tmp_path("p.cfg"), tmp_path("ragged.csv"),
             tmp_path("never.ckpt"));
    CHECK(run_cli(args, out, sizeof out) == 1 && strstr(out, "line 2") && access(tmp_path("never.ckpt"), F_OK) != 0);
    snprintf(args, sizeof args, "eval %s --data %s/mnist", tmp_path("q.csv"), t_data_dir());
    CHECK(run_cli(args, out, sizeof out) == 1 && strstr(out, "q.csv"));
    f = fopen(tmp_path("trunc-images"), "wb");
    if (f) {
        fwrite("\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x1c\x00\x00\x00\x1c", 1, 16, f);
        fclose(f);
    }
    snprintf(args, sizeof args, "predict %s %s", tmp_path("cli.ckpt"), tmp_path("trunc-images"));
    CHECK(run_cli(args, out, sizeof out) == 1 && strstr(out, "trunc-images"));
    snprintf(args, sizeof args, "train tests/fixtures/tiny_mnist.cfg --data %s --quiet", tmpdir);
    CHECK(run_cli(args, out, sizeof out) == 1 && strstr(out, "fetch-mnist"));
    snprintf(args, sizeof args, "info %s", tmp_path("cli.ckpt"));
    CHECK(run_cli(args, out, sizeof out) == 0 && strstr(out, "dense"));
}

/* ------------------------------------------------------------------ the run API and issue 14's bugs */

/* Rows of two features far from 0 and of very different scales; the label needs both: only a model trained on
 * standardised features learns it, and one fed raw features is at chance. */
static void write_offset_csv(const char *path, int rows, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    dn_rng r;
    dn_rng_seed(&r, seed);
    fputs("a,b,label\n", f);
    for (int i = 0; i < rows; i++) {
        float u = 2 * dn_rng_uniform(&r) - 1, v = 2 * dn_rng_uniform(&r) - 1;
        fprintf(f, "%.6f,%.9f,%d\n", 1000.0 + u, 0.001 * v, u + v > 0);
    }
    fclose(f);
}

static double json_field(const char *text, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(text, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

/* normalize = 1: statistics of the training part only (after the validation split), kept in the checkpoint and
 * applied by eval and by a checkpoint loaded through the C API: eval's accuracy is train's. */
static void csv_normalize_is_saved_and_applied(void)
{
    char train[512], test[512]; /* tmp_path's buffers rotate */
    snprintf(train, sizeof train, "%s", tmp_path("norm_train.csv"));
    snprintf(test, sizeof test, "%s", tmp_path("norm_test.csv"));
    write_offset_csv(train, 200, 11);
    write_offset_csv(test, 100, 12);
    char cfg[2048], args[1024];
    static char out[1 << 14];
    snprintf(cfg, sizeof cfg, "[net]\ninput = 2\nbatch = 16\nepochs = 15\nseed = 3\nloss = bce_with_logits\n"
                              "optimizer = adam\nlr = 0.05\nvalidation = 0.2\n[data]\nformat = csv\ntrain = %s\n"
                              "test = %s\nnormalize = 1\n[dense]\nunits = 1\n", train, test);
    FILE *f = fopen(tmp_path("norm.cfg"), "w");
    if (f) {
        fputs(cfg, f);
        fclose(f);
    }
    snprintf(args, sizeof args, "train %s --quiet --save %s", tmp_path("norm.cfg"), tmp_path("norm.ckpt"));
    int rc = run_cli(args, out, sizeof out);
    double trained = json_field(out, "test_accuracy");
    CHECK_MSG(rc == 0 && trained > 0.9, "train exited %d with test accuracy %g: %s", rc, trained, out);
    snprintf(args, sizeof args, "eval %s", tmp_path("norm.ckpt"));
    rc = run_cli(args, out, sizeof out);
    double evaluated = json_field(out, "accuracy");
    CHECK_MSG(rc == 0 && evaluated == trained, "eval exited %d with accuracy %g, train said %g: %s", rc, evaluated,
              trained, out);

    /* the statistics are the training part's: the same split as the trainer's (seed ^ 0x5eed), then stats */
    dn_dataset *full = NULL, *a = NULL, *b = NULL;
    CHECK_OK(dn_dataset_load_csv(train, -1, -1, &full));
    if (full) CHECK_OK(dn_dataset_split(full, 0.2, 3 ^ 0x5eedULL, &a, &b));
    float mean[2] = {0}, sd[2] = {0}, mean_all[2] = {0}, sd_all[2] = {0};
    if (a) dn_dataset_stats(a, mean, sd);
    if (full) dn_dataset_stats(full, mean_all, sd_all);
    dn_run *run = NULL;
    CHECK_OK(dn_run_load(tmp_path("norm.ckpt"), &run));
    if (run && a) {
        const float *m, *s;
        CHECK(dn_model_input_stats(dn_run_model(run), &m, &s) == 2);
        for (int j = 0; m && j < 2; j++) {
            CHECK_MSG(m[j] == mean[j] && s[j] == sd[j], "feature %d: saved %g/%g, training part %g/%g", j, m[j],
                      s[j], mean[j], sd[j]);
        }
        CHECK(m && (m[0] != mean_all[0] || s[0] != sd_all[0])); /* the validation rows would have moved them */
        dn_run_eval e;
        CHECK_OK(dn_run_load_test(run, NULL));
        CHECK_OK(dn_run_evaluate(run, NULL, &e));
        CHECK_MSG(e.accuracy == trained && e.n == 100, "C API accuracy %g on %lld", e.accuracy, (long long)e.n);
        /* a checkpoint from before the statistics were saved: they are recomputed from the cfg's training data */
        dn_model *m0 = dn_run_model(run);
        CHECK_OK(dn_model_set_input_stats(m0, 0, NULL, NULL));
        CHECK_OK(dn_model_save(m0, tmp_path("norm_old.ckpt")));
        dn_run *old = NULL;
        CHECK_OK(dn_run_load(tmp_path("norm_old.ckpt"), &old));
        if (old) {
            CHECK(dn_model_input_stats(dn_run_model(old), &m, &s) == 2 && m[0] == mean[0] && s[1] == sd[1]);
            CHECK_OK(dn_run_load_test(old, NULL));
            CHECK_OK(dn_run_evaluate(old, NULL, &e));
            CHECK_MSG(e.accuracy == trained, "old checkpoint: accuracy %g", e.accuracy);
        }
        dn_run_free(old);
        /* and without the training data it says so instead of evaluating raw features */
        rename(train, tmp_path("norm_train.moved"));
        CHECK(dn_run_load(tmp_path("norm_old.ckpt"), &old) != DN_OK && strstr(dn_last_error(), "normalize"));
        rename(tmp_path("norm_train.moved"), train);
    }
    dn_run_free(run);
    dn_dataset_free(full);
    dn_dataset_free(a);
    dn_dataset_free(b);
}

/* A small batch-norm CNN on synthetic images with a validation split: restore-best puts back the running
 * statistics of the best epoch with its weights (they were the last epoch's). */
static void restore_best_restores_buffers(void)
{
    char csv[512];
    snprintf(csv, sizeof csv, "%s", tmp_path("bn.csv"));
    FILE *f = fopen(csv, "w");
    dn_rng r;
    dn_rng_seed(&r, 5);
    for (int i = 0; f && i < 96; i++) {
        int label = i % 2;
        for (int j = 0; j < 36; j++) fprintf(f, "%.4f,", dn_rng_uniform(&r) + (label && j < 18 ? 0.5 : 0.0));
        fprintf(f, "%d\n", label);
    }
    if (f) fclose(f);
    f = fopen(tmp_path("bn.cfg"), "w");
    if (f) {
        /* min_delta so large that only the first epoch counts as an improvement: the best epoch is not the last */
        fputs("[net]\ninput = 1, 6, 6\nbatch = 16\nepochs = 4\nseed = 2\nlr = 0.1\nvalidation = 0.25\nmin_delta = 1000\n"
              "[data]\nformat = csv\n[conv2d]\nfilters = 4\nsize = 3\n[batchnorm]\n[activation]\ntype = relu\n[dense]\nunits = 2\n", f);
        fclose(f);
    }
    dn_run_options o;
    dn_run_options_default(&o);
    o.data = csv;
    dn_run *run = NULL;
    CHECK_OK(dn_run_open(tmp_path("bn.cfg"), &o, &run));
    if (!run) return;
    dn_model *m = dn_run_model(run);
    size_t nb = m->n_bufdata, np = dn_model_param_count(m);
    CHECK(nb == 8); /* 4 running means, 4 running variances */
    float *best_buf = calloc(nb, sizeof(float)), *best_par = calloc(np, sizeof(float));
    int best_epoch = 0, last = 0;
    dn_trainer *t = dn_run_trainer(run);
    while (!dn_trainer_finished(t)) {
        dn_epoch_stats st;
        CHECK_OK(dn_trainer_epoch(t, &st));
        if (st.improved) {
            memcpy(best_buf, m->bufdata, nb * sizeof(float));
            memcpy(best_par, dn_model_params(m), np * sizeof(float));
            best_epoch = st.epoch;
        }
        last = st.epoch;
        if (last > 8) break;
    }
    CHECK_MSG(best_epoch > 0 && best_epoch < last, "best epoch %d of %d: the test needs an earlier best", best_epoch,
              last);
    CHECK(memcmp(best_buf, m->bufdata, nb * sizeof(float)) != 0);
    dn_trainer_restore_best(t);
    CHECK(memcmp(best_par, dn_model_params(m), np * sizeof(float)) == 0);
    CHECK_MSG(memcmp(best_buf, m->bufdata, nb * sizeof(float)) == 0, "running statistics are not the best epoch's");
    /* and through a checkpoint: a resumed run restores the same buffers */
    CHECK_OK(dn_run_save(run, tmp_path("bn.ckpt")));
    dn_run *again = NULL;
    CHECK_OK(dn_run_open(tmp_path("bn.cfg"), &o, &again));
    if (again) {
        CHECK_OK(dn_run_resume(again, tmp_path("bn.ckpt")));
        dn_model *m2 = dn_run_model(again);
        memset(m2->bufdata, 0, nb * sizeof(float));
        dn_trainer_restore_best(dn_run_trainer(again));
        CHECK(memcmp(best_buf, m2->bufdata, nb * sizeof(float)) == 0);
    }
    dn_run_free(again);
    free(best_buf);
    free(best_par);
    dn_run_free(run);
}

/* The examples are programs that exit 0 only when they learned their task. */
static void examples_learn(void)
{
    static char out[1 << 14];
    const char *b = getenv("DN_BUILD") ? getenv("DN_BUILD") : "build";
    const char *pre = getenv("DN_RUN_PREFIX") ? getenv("DN_RUN_PREFIX") : "", *sp = *pre ? " " : "";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s%s%s/examples/xor 2>&1", pre, sp, b);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    int st = p ? pclose(p) : -1;
    CHECK_MSG(st == 0 && strstr(out, "4/4 correct"), "xor: %s", out);
    snprintf(cmd, sizeof cmd, "%s%s%s/examples/fit_sine 2>&1", pre, sp, b);
    p = popen(cmd, "r");
    n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    st = p ? pclose(p) : -1;
    CHECK_MSG(st == 0 && strstr(out, "final mse"), "fit_sine: %s", out);
}

/* The seed's L2 penalty l2/2 * sum w^2 adds l2 * w to each weight's gradient, which for SGD is exactly
 * weight_decay = l2: two runs must agree bit for bit.  L1 adds l1 * sign(w): checked by hand on one step. */
static void l1_l2_penalties(void)
{
    if (!load_mnist()) return;
    const char *base = "[net]\ninput = 28, 28\nbatch = 50\nepochs = 1\noptimizer = sgd\nlr = 0.1\n%s\n"
                       "[dense]\nunits = 10\n";
    char a[512], b[512];
    snprintf(a, sizeof a, base, "l2 = 0.01");
    snprintf(b, sizeof b, base, "weight_decay = 0.01");
    dn_model *ma = NULL, *mb = NULL;
    CHECK_OK(run_epochs(a, 1, NULL, NULL, &ma));
    CHECK_OK(run_epochs(b, 1, NULL, NULL, &mb));
    if (ma && mb) CHECK(memcmp(dn_model_params(ma), dn_model_params(mb), dn_model_param_count(ma) * sizeof(float)) == 0);
    dn_model_free(ma);
    dn_model_free(mb);

    /* one step of plain SGD with lr 1 on an all-zero input: the data gradient of the weights is 0, so the
     * update is exactly -l1 * sign(w) for weights and nothing for the (excluded) biases */
    dn_model *m = NULL;
    dn_train_config c;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 3\nbatch = 2\nepochs = 1\nlr = 1\nl1 = 0.25\n[dense]\nunits = 2\n",
                               "l1.cfg", &m, &c));
    if (!m) return;
    float before[8];
    memcpy(before, dn_model_params(m), 8 * sizeof(float));
    dn_dataset d = {.n = 2, .ndim = 1, .shape = {3}, .x = (float[6]){0}, .y = (float[2]){0, 1}, .n_classes = 2};
    dn_trainer *t = NULL;
    CHECK_OK(dn_trainer_new(m, &c, &d, NULL, &t));
    dn_epoch_stats st;
    CHECK_OK(dn_trainer_epoch(t, &st));
    const float *after = dn_model_params(m);
    for (int i = 0; i < 6; i++) CHECK_NEAR(after[i], before[i] - 0.25f * (before[i] > 0 ? 1.0f : -1.0f), 1e-7);
    dn_trainer_free(t);
    dn_model_free(m);
}


/* ------------------------------------------------------------------ numeric traps, budgets, damaged files */

static void anomaly_detection_names_the_op(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_ctx_set_detect_anomaly(ctx, true);
    dn_tensor *x;
    CHECK_OK(dn_tensor_from(ctx, 1, (int64_t[]){3}, (float[]){1, -1, 4}, &x));
    CHECK(dn_sqrt(ctx, x) == NULL && dn_ctx_status(ctx) == DN_ERR_NUMERIC);
    CHECK_MSG(strstr(dn_last_error(), "anomaly: sqrt") && strstr(dn_last_error(), "forward"), "%s", dn_last_error());
    /* backward: sqrt at 0 is finite, its derivative is not */
    dn_ctx_reset(ctx);
    CHECK_OK(dn_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0, 4}, &x));
    CHECK_OK(dn_tensor_set_requires_grad(x, true));
    dn_tensor *y = dn_sum(ctx, dn_sqrt(ctx, x), 0, false);
    CHECK(y != NULL);
    CHECK(dn_backward(ctx, y) == DN_ERR_NUMERIC);
    CHECK_MSG(strstr(dn_last_error(), "backward pass of sqrt") && strstr(dn_last_error(), "inf"), "%s", dn_last_error());
    dn_ctx_free(ctx);

    /* in a model, the layer is named */
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 3\n[dense]\nunits = 4\nactivation = relu\n[dense]\nunits = 2\n", "a.cfg",
                               &m, NULL));
    if (!m) return;
    dn_model_params(m)[12 + 4 + 1] = NAN; /* a weight of layer 1 */
    ctx = dn_ctx_new();
    dn_ctx_set_detect_anomaly(ctx, true);
    CHECK_OK(dn_tensor_from(ctx, 2, (int64_t[]){1, 3}, (float[]){1, 2, 3}, &x));
    CHECK(dn_model_forward(m, ctx, x) == NULL);
    CHECK_MSG(strstr(dn_last_error(), "layer 1 (dense)") && strstr(dn_last_error(), "linear"), "%s", dn_last_error());
    dn_ctx_free(ctx);
    dn_model_free(m);
}

static void diverging_run_stops_and_keeps_checkpoint(void)
{
    if (!load_mnist()) return;
    /* a learning rate of 1e30 overflows within the first epoch; the epoch-0 checkpoint stays as it was */
    dn_model *m = NULL;
    dn_train_config c;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 28, 28\nbatch = 100\nlr = 1e30\nmomentum = 0.9\n[dense]\nunits = 32\n"
                               "activation = relu\n[dense]\nunits = 10\n", "div.cfg", &m, &c));
    if (!m) return;
    c.detect_anomaly = true;
    dn_trainer *t = NULL;
    CHECK_OK(dn_trainer_new(m, &c, mnist_train, NULL, &t));
    char ck[512];
    snprintf(ck, sizeof ck, "%s", tmp_path("div.ckpt"));
    CHECK_OK(dn_trainer_save(t, ck));
    dn_epoch_stats st;
    dn_status s = t ? dn_trainer_epoch(t, &st) : DN_ERR_STATE;
    CHECK_MSG(s == DN_ERR_NUMERIC && (strstr(dn_last_error(), "anomaly") || strstr(dn_last_error(), "diverged")),
              "status %s: %s", dn_status_name(s), dn_last_error());
    dn_model *back = NULL;
    CHECK_OK(dn_model_load(ck, &back, NULL));
    dn_model_free(back);
    dn_trainer_free(t);
    dn_model_free(m);
}

static void memory_budget_is_enforced(void)
{
    dn_set_memory_limit(2000000);
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *t = NULL;
    CHECK(dn_tensor_new(ctx, 1, (int64_t[]){1000000}, &t) == DN_ERR_NOMEM);
    CHECK_MSG(strstr(dn_last_error(), "budget") && strstr(dn_last_error(), "MB"), "%s", dn_last_error());
    CHECK_OK(dn_tensor_new(ctx, 1, (int64_t[]){100000}, &t));
    dn_ctx_free(ctx);
    dn_set_memory_limit(0);
}

static void flipped_bit_is_reported(void)
{
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg(small_cfg, "small.cfg", &m, NULL));
    if (!m) return;
    char good[512];
    snprintf(good, sizeof good, "%s", tmp_path("flip.ckpt"));
    CHECK_OK(dn_model_save(m, good));
    FILE *f = fopen(good, "r+b");
    if (f) {
        fseek(f, -100, SEEK_END); /* inside the last tensor's data */
        int ch = fgetc(f);
        fseek(f, -100, SEEK_END);
        fputc(ch ^ 0x10, f);
        fclose(f);
    }
    dn_model *x = NULL;
    CHECK(dn_model_load(good, &x, NULL) == DN_ERR_FORMAT && x == NULL);
    CHECK_MSG(strstr(dn_last_error(), "checksum"), "%s", dn_last_error());
    dn_model_free(m);
}

/* Options every command takes: --threads for eval/predict/generate too (a bad value refused), and a DN_ISA that names
 * no instruction set is reported, not silently ignored.  Needs no data. */
static void command_common_options(void)
{
    char out[4096];
    CHECK(run_cli("eval --threads 0 nosuch.ckpt", out, sizeof out) == 2);
    CHECK_MSG(strstr(out, "--threads") != NULL, "%s", out);
    /* a good count is taken out of argv: what is left is the command's own (here, a missing checkpoint) */
    CHECK(run_cli("eval --threads 2 /nonexistent/x.ckpt", out, sizeof out) != 0);
    CHECK_MSG(strstr(out, "/nonexistent/x.ckpt") != NULL && !strstr(out, "usage"), "%s", out);
    CHECK(run_cli("--version", out, sizeof out) == 0);
    CHECK_MSG(!strstr(out, "DN_ISA") || getenv("DN_ISA"), "%s", out);
    setenv("DN_ISA", "nonsense", 1);
    CHECK(run_cli("--version", out, sizeof out) == 0);
    unsetenv("DN_ISA");
    CHECK_MSG(strstr(out, "ignoring DN_ISA=nonsense") != NULL, "%s", out);
}

void suite_train(void)
{
    RUN(command_common_options);
    RUN(malformed_cfg_files);
    RUN(bad_checkpoints_are_refused);
    RUN(mnist_mlp_learns);
    RUN(same_seed_same_checkpoint);
    RUN(resume_is_bit_identical);
    RUN(early_stopping_stops_and_restores);
    RUN(l1_l2_penalties);
    RUN(command_line);
    RUN(examples_learn);
    RUN(anomaly_detection_names_the_op);
    RUN(diverging_run_stops_and_keeps_checkpoint);
    RUN(memory_budget_is_enforced);
    RUN(flipped_bit_is_reported);
    RUN(csv_normalize_is_saved_and_applied);
    RUN(restore_best_restores_buffers);
    dn_dataset_free(mnist_train);
    dn_dataset_free(mnist_test);
    mnist_train = mnist_test = NULL;
}
