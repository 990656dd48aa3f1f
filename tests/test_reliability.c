/* Reliability: every allocation of a load or a training epoch failing in turn, checkpoints that survive a kill
 * and a full disk, and the fuzzers' crash inputs replayed (docs/reliability.md).
 *
 * Allocation failure: a counting allocator refuses the N-th request, for N = 1 .. the number a clean run makes.
 * Each call must then fail with a status and a message (or succeed with the same result as the clean run, when
 * the library could do without the block), and give back every block it took: the allocator counts live blocks,
 * so a leak fails here even without LeakSanitizer.  DN_RELIAB_VERBOSE=1 prints what each sweep saw. */
#include "test.h"

#include "../fuzz/fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ scratch files */

static char tmp_dir[64];

/* The path of a file in this suite's scratch folder; each name keeps its own buffer for the whole run. */
static const char *tmp_path(const char *name)
{
    static char paths[16][256];
    static const char *names[16];
    static int used;
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/dn_reliab_XXXXXX");
        if (!mkdtemp(tmp_dir)) tmp_dir[0] = '\0';
    }
    int i = 0;
    while (i < used && strcmp(names[i], name)) i++;
    if (i == used) {
        if (used == 16) return "/nonexistent/too-many-scratch-names";
        names[used++] = name;
        snprintf(paths[i], sizeof paths[i], "%s/%s", tmp_dir, name);
    }
    return paths[i];
}

static bool write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* A whole file with plain malloc (outside the library, so the counting allocator does not see it). */
static unsigned char *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    unsigned char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *nb = realloc(b, 2 * cap + 1);
            if (!nb) free(b);
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[len] = '\0';
    *n = len;
    return b;
}

static bool verbose(void)
{
    const char *v = getenv("DN_RELIAB_VERBOSE");
    return v && *v && *v != '0';
}

/* ------------------------------------------------------------------ the failing allocator */

static struct {
    long count;   /* requests seen (alloc and realloc) */
    long fail_at; /* the request to refuse; 0: none */
    bool failed;  /* it came and was refused */
    long live;    /* blocks handed out and not yet freed */
} fa;

static void *fa_alloc(size_t n, void *user)
{
    (void)user;
    if (++fa.count == fa.fail_at) {
        fa.failed = true;
        return NULL;
    }
    void *p = malloc(n);
    if (p) fa.live++;
    return p;
}

static void *fa_realloc(void *p, size_t n, void *user)
{
    (void)user;
    if (++fa.count == fa.fail_at) {
        fa.failed = true;
        return NULL;
    }
    void *q = realloc(p, n);
    if (q && !p) fa.live++;
    return q;
}

static void fa_free(void *p, void *user)
{
    (void)user;
    if (!p) return;
    fa.live--;
    free(p);
}

/* One call under test: does its work, checks a successful result against the clean run's (setting *wrong when
 * it differs), frees everything it made and returns its status. */
typedef dn_status (*sweep_fn)(void *arg, bool *wrong);

static const dn_allocator counting = {fa_alloc, fa_realloc, fa_free, NULL};

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The sweep proper: fn once cleanly, then once for each allocation it made with that allocation refused.  Writes
 * the allocation being refused to `progress` before each call.  Returns the failures it recorded. */
static int sweep_here(const char *name, sweep_fn fn, void *arg, FILE *progress)
{
    int failures_before = t_failures_in_test;
    bool wrong = false;
    memset(&fa, 0, sizeof fa);
    dn_error_clear();
    dn_set_allocator(&counting);
    dn_status s = fn(arg, &wrong); /* also makes any lazily kept buffers (thread scratch) before leaks count */
    dn_set_allocator(NULL);
    CHECK_MSG(s == DN_OK && !wrong, "%s: the clean run failed: %s: %s", name, dn_status_name(s), dn_last_error());
    if (s || wrong) return t_failures_in_test - failures_before;
    long total = fa.count, nomem = 0, other = 0, tolerated = 0;
    char first_other[200] = "";
    for (long n = 1; n <= total && t_failures_in_test - failures_before < 10; n++) {
        if (progress) {
            rewind(progress);
            fprintf(progress, "%ld of %ld\n", n, total);
            fflush(progress);
        }
        memset(&fa, 0, sizeof fa);
        fa.fail_at = n;
        wrong = false;
        dn_error_clear();
        dn_set_allocator(&counting);
        s = fn(arg, &wrong);
        dn_set_allocator(NULL);
        CHECK_MSG(fa.live == 0, "%s: allocation %ld of %ld refused: %ld block(s) leaked", name, n, total, fa.live);
        CHECK_MSG(!wrong, "%s: allocation %ld of %ld refused: %s", name, n, total,
                  s ? "the result is wrong" : "the call succeeded with a different result");
        if (s == DN_OK) {
            tolerated += fa.failed;
            continue;
        }
        CHECK_MSG(dn_last_error()[0] != '\0', "%s: allocation %ld of %ld refused: %s without a message", name, n,
                  total, dn_status_name(s));
        if (s == DN_ERR_NOMEM) nomem++;
        else if (!other++)
            snprintf(first_other, sizeof first_other, "#%ld %s: %s", n, dn_status_name(s), dn_last_error());
    }
    if (verbose())
        printf("    %s: %ld allocations; refused one at a time: %ld DN_ERR_NOMEM, %ld other statuses, "
               "%ld tolerated%s%s\n",
               name, total, nomem, other, tolerated, other ? "; first other: " : "", first_other);
    return t_failures_in_test - failures_before;
}

/* Runs the sweep in a child process, so that an error path that never returns (a loop waiting for memory that
 * will not come) fails the test instead of hanging the suite; the child prints its own failures. */
#ifndef SWEEP_TIMEOUT_S
#define SWEEP_TIMEOUT_S 60
#endif

static void sweep(const char *name, sweep_fn fn, void *arg)
{
    const char *progress_path = tmp_path("sweep.progress");
    FILE *progress = fopen(progress_path, "w+");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK_MSG(pid >= 0, "%s: fork failed", name);
    if (pid < 0) {
        if (progress) fclose(progress);
        return;
    }
    if (pid == 0) {
        int failures = sweep_here(name, fn, arg, progress);
        fflush(stdout);
        _exit(failures > 100 ? 100 : failures);
    }
    int status = 0;
    pid_t got = 0;
    for (double waited = 0; (got = waitpid(pid, &status, WNOHANG)) == 0 && waited < SWEEP_TIMEOUT_S * 1000.0;
         waited += 10)
        sleep_ms(10);
    char where[64] = "?";
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if (progress) {
        rewind(progress);
        if (!fgets(where, sizeof where, progress)) snprintf(where, sizeof where, "?");
        where[strcspn(where, "\n")] = '\0';
        fclose(progress);
    }
    remove(progress_path);
    if (got == 0)
        CHECK_MSG(false, "%s: with allocation %s refused the call did not return in %d s", name, where,
                  SWEEP_TIMEOUT_S);
    else if (WIFSIGNALED(status))
        CHECK_MSG(false, "%s: crashed (signal %d) with allocation %s refused", name, WTERMSIG(status), where);
    else
        CHECK_MSG(WEXITSTATUS(status) == 0,
                  "%s: %d failure(s) or a sanitizer report (above; the last refused allocation: %s)", name,
                  WEXITSTATUS(status), where);
}

/* ------------------------------------------------------------------ what the sweeps run */

typedef struct model_ref {
    const char *text;     /* cfg text */
    const char *path;     /* a checkpoint of the same model */
    const char *out_path; /* where the save sweep writes */
    size_t n_params;
    float *params;        /* the clean run's parameters (malloc) */
    dn_model *model;      /* a model to load parameters into / to save */
} model_ref;

static bool same_params(dn_model *m, const model_ref *r)
{
    return dn_model_param_count(m) == r->n_params &&
           memcmp(dn_model_params(m), r->params, r->n_params * sizeof(float)) == 0;
}

static dn_status run_from_cfg(void *arg, bool *wrong)
{
    model_ref *r = arg;
    dn_model *m = NULL;
    dn_train_config tc;
    dn_status s = dn_model_from_cfg(r->text, "mnist_lenet.cfg", &m, &tc);
    if (!s) *wrong = !same_params(m, r) || tc.batch != 64;
    /* the text is fine: a refused allocation must read as out of memory, never as a malformed file */
    CHECK_MSG(s == DN_OK || s == DN_ERR_NOMEM, "dn_model_from_cfg: a refused allocation gave %s: %s",
              dn_status_name(s), dn_last_error());
    dn_model_free(m);
    return s;
}

static dn_status run_load(void *arg, bool *wrong)
{
    model_ref *r = arg;
    dn_model *m = NULL;
    dn_status s = dn_model_load(r->path, &m, NULL);
    if (!s) *wrong = !same_params(m, r);
    dn_model_free(m);
    return s;
}

static dn_status run_load_params(void *arg, bool *wrong)
{
    model_ref *r = arg;
    float *p = dn_model_params(r->model);
    memset(p, 0, r->n_params * sizeof(float));
    dn_status s = dn_model_load_params(r->model, r->path);
    if (!s) *wrong = !same_params(r->model, r);
    /* a failed load checks everything before it copies: the parameters are as they were */
    for (size_t i = 0; s && i < r->n_params && !*wrong; i++) *wrong = p[i] != 0.0f;
    return s;
}

/* A save that fails must leave the file it would replace as it was, and no temporary file. */
static dn_status run_save(void *arg, bool *wrong)
{
    model_ref *r = arg;
    dn_status s = dn_model_save(r->model, r->out_path);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", r->out_path, (long)getpid());
    struct stat st;
    if (stat(tmp, &st) == 0) *wrong = true;
    return s;
}

static void test_alloc_fail_model_files(void)
{
    model_ref r = {0};
    size_t len;
    char *text = (char *)read_whole("examples/mnist_lenet.cfg", &len);
    CHECK_MSG(text != NULL, "cannot read examples/mnist_lenet.cfg (run from the repository root)");
    if (!text) return;
    r.text = text;
    r.path = tmp_path("lenet.ckpt");
    r.out_path = tmp_path("lenet_out.ckpt");
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg(text, "mnist_lenet.cfg", &m, NULL));
    if (!m) {
        free(text);
        return;
    }
    r.n_params = dn_model_param_count(m);
    r.params = malloc(r.n_params * sizeof(float));
    memcpy(r.params, dn_model_params(m), r.n_params * sizeof(float));
    CHECK_OK(dn_model_save(m, r.path));
    CHECK_OK(dn_model_save(m, r.out_path));
    r.model = m;

    sweep("dn_model_from_cfg(mnist_lenet.cfg)", run_from_cfg, &r);
    sweep("dn_model_load", run_load, &r);
    sweep("dn_model_load_params", run_load_params, &r);
    sweep("dn_model_save", run_save, &r);
    /* the file that every failed save would have replaced still holds the model */
    dn_model *back = NULL;
    CHECK_OK(dn_model_load(r.out_path, &back, NULL));
    CHECK(back && same_params(back, &r));
    dn_model_free(back);

    dn_model_free(m);
    free(r.params);
    free(text);
    remove(r.path);
    remove(r.out_path);
}

/* One epoch of a tiny CNN (conv + pool + dense) on 2 batches of 4 MNIST-shaped samples, validated on the same
 * samples; the model is re-initialised first, so a clean run always ends with the same parameters. */
typedef struct train_ref {
    dn_model *m;
    dn_train_config tc;
    dn_dataset d;
    size_t n_params;
    float *after;      /* parameters after the clean run's epoch; NULL while it runs */
    dn_trainer *t;     /* a trainer one epoch in, for save and resume */
    const char *ckpt;  /* its checkpoint */
    const char *out;   /* where the save sweep writes */
} train_ref;

static dn_status run_epoch(void *arg, bool *wrong)
{
    train_ref *r = arg;
    dn_set_allocator(NULL); /* reinit allocates nothing, but keep the model's own memory out of the count */
    dn_status s = dn_model_reinit(r->m, 7);
    if (s) return s;
    dn_set_allocator(&counting);
    dn_trainer *t = NULL;
    dn_epoch_stats st;
    s = dn_trainer_new(r->m, &r->tc, &r->d, &r->d, &t);
    if (!s) s = dn_trainer_epoch(t, &st);
    dn_trainer_free(t);
    if (!s && r->after) *wrong = memcmp(dn_model_params(r->m), r->after, r->n_params * sizeof(float)) != 0;
    return s;
}

/* A failed training save leaves no temporary file behind. */
static dn_status run_trainer_save(void *arg, bool *wrong)
{
    train_ref *r = arg;
    dn_status s = dn_trainer_save(r->t, r->out);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", r->out, (long)getpid());
    struct stat st;
    if (stat(tmp, &st) == 0) *wrong = true;
    return s;
}

/* Resuming puts back the parameters the checkpoint holds (the ones after the clean epoch). */
static dn_status run_trainer_resume(void *arg, bool *wrong)
{
    train_ref *r = arg;
    memset(dn_model_params(r->m), 0, r->n_params * sizeof(float));
    dn_status s = dn_trainer_resume(r->t, r->ckpt);
    if (!s) *wrong = memcmp(dn_model_params(r->m), r->after, r->n_params * sizeof(float)) != 0;
    return s;
}

static void test_alloc_fail_training(void)
{
    train_ref r = {0};
    dn_status s = dn_model_new(3, (int64_t[]){1, 28, 28}, 7, &r.m);
    if (!s) s = dn_model_add_conv2d(r.m, 4, 3, 3, 1, 1, 1, 1, DN_INIT_DEFAULT, true);
    if (!s) s = dn_model_add_activation(r.m, "relu", NULL);
    if (!s) s = dn_model_add_pool2d(r.m, "max", 2, 0, 0);
    if (!s) s = dn_model_add_dense(r.m, 10, DN_INIT_DEFAULT, true);
    CHECK_OK(s);
    if (s) {
        dn_model_free(r.m);
        return;
    }
    dn_train_defaults(&r.tc);
    r.tc.batch = 4;
    r.tc.epochs = 1;
    dn_optim_defaults(DN_ADAM, &r.tc.optim);
    r.d = (dn_dataset){.n = 8, .ndim = 3, .shape = {1, 28, 28}, .n_classes = 10};
    r.d.x = malloc(8 * 784 * sizeof(float));
    r.d.y = malloc(8 * sizeof(float));
    dn_rng rng;
    dn_rng_seed(&rng, 3);
    for (int i = 0; i < 8 * 784; i++) r.d.x[i] = dn_rng_uniform(&rng);
    for (int i = 0; i < 8; i++) r.d.y[i] = (float)(i % 10);
    r.n_params = dn_model_param_count(r.m);

    /* the reference: one clean epoch */
    bool wrong = false;
    s = run_epoch(&r, &wrong);
    dn_set_allocator(NULL);
    CHECK_OK(s);
    r.after = malloc(r.n_params * sizeof(float));
    memcpy(r.after, dn_model_params(r.m), r.n_params * sizeof(float));

    sweep("dn_trainer_new + dn_trainer_epoch (conv, pool, dense; adam; validation)", run_epoch, &r);

    /* a training checkpoint of the same epoch, saved and resumed with allocations refused */
    r.ckpt = tmp_path("trainer.ckpt");
    r.out = tmp_path("trainer_out.ckpt");
    dn_epoch_stats st;
    CHECK_OK(dn_model_reinit(r.m, 7));
    CHECK_OK(dn_trainer_new(r.m, &r.tc, &r.d, &r.d, &r.t));
    if (r.t) {
        CHECK_OK(dn_trainer_epoch(r.t, &st));
        CHECK(memcmp(dn_model_params(r.m), r.after, r.n_params * sizeof(float)) == 0);
        CHECK_OK(dn_trainer_save(r.t, r.ckpt));
        sweep("dn_trainer_save", run_trainer_save, &r);
        sweep("dn_trainer_resume", run_trainer_resume, &r);
        dn_trainer_free(r.t);
    }
    remove(r.ckpt);
    remove(r.out);

    free(r.after);
    free(r.d.x);
    free(r.d.y);
    dn_model_free(r.m);
}

/* Small files for the loaders, and what the clean load gives. */
typedef struct data_ref {
    const char *images, *labels, *csv, *text;
    dn_dataset *idx_ref, *idx_compact_ref, *csv_ref, *text_ref;
} data_ref;

static bool same_dataset(const dn_dataset *a, const dn_dataset *b)
{
    if (!a || !b || a->n != b->n || a->ndim != b->ndim || a->n_classes != b->n_classes ||
        memcmp(a->shape, b->shape, sizeof a->shape) || dn_dataset_target_size(a) != dn_dataset_target_size(b))
        return false;
    size_t nx = (size_t)(a->n * dn_dataset_sample_size(a)), ny = (size_t)(a->n * dn_dataset_target_size(a));
    if (!a->x != !b->x || !a->x_bytes != !b->x_bytes) return false; /* the same storage: floats or bytes */
    bool same_x = a->x ? memcmp(a->x, b->x, nx * sizeof(float)) == 0
                       : memcmp(a->x_bytes, b->x_bytes, nx) == 0 && a->x_scale == b->x_scale;
    return same_x && memcmp(a->y, b->y, ny * sizeof(float)) == 0;
}

static dn_status run_idx(void *arg, bool *wrong)
{
    data_ref *r = arg;
    dn_dataset *d = NULL;
    dn_status s = dn_dataset_load_idx(r->images, r->labels, 1.0f / 255.0f, &d);
    if (!s) *wrong = !same_dataset(d, r->idx_ref);
    dn_dataset_free(d);
    return s;
}

static dn_status run_idx_compact(void *arg, bool *wrong)
{
    data_ref *r = arg;
    dn_dataset *d = NULL;
    dn_status s = dn_dataset_load_idx_compact(r->images, r->labels, 1.0f / 255.0f, &d);
    if (!s) *wrong = !same_dataset(d, r->idx_compact_ref);
    dn_dataset_free(d);
    return s;
}

static dn_status run_csv(void *arg, bool *wrong)
{
    data_ref *r = arg;
    dn_dataset *d = NULL;
    dn_status s = dn_dataset_load_csv(r->csv, -1, -1, &d);
    if (!s) *wrong = !same_dataset(d, r->csv_ref);
    dn_dataset_free(d);
    return s;
}

static dn_status run_text(void *arg, bool *wrong)
{
    data_ref *r = arg;
    dn_dataset *d = NULL;
    dn_vocab v;
    dn_status s = dn_dataset_load_text(r->text, 8, NULL, &v, &d);
    if (!s) *wrong = !same_dataset(d, r->text_ref);
    dn_dataset_free(d);
    return s;
}

static void test_alloc_fail_loaders(void)
{
    data_ref r = {0};
    r.images = tmp_path("images.idx");
    r.labels = tmp_path("labels.idx");
    r.csv = tmp_path("data.csv");
    r.text = tmp_path("text.txt");

    /* 6 images of 4x4 bytes and their labels */
    unsigned char img[16 + 96], lab[8 + 6];
    memcpy(img, (const unsigned char[]){0, 0, 8, 3, 0, 0, 0, 6, 0, 0, 0, 4, 0, 0, 0, 4}, 16);
    for (int i = 0; i < 96; i++) img[16 + i] = (unsigned char)(i * 37);
    memcpy(lab, (const unsigned char[]){0, 0, 8, 1, 0, 0, 0, 6}, 8);
    for (int i = 0; i < 6; i++) lab[8 + i] = (unsigned char)(i % 3);
    const char *csv = "a,b,c,label\n0.5,1,2,0\n-1,2.5,3,1\n4,5,6,2\n7,8,9e-1,1\n\n1,1,1,0\n";
    const char *text = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
                       "age of foolishness, it was the epoch of belief, it was the epoch of incredulity.\n";
    CHECK(write_file(r.images, img, sizeof img) && write_file(r.labels, lab, sizeof lab) &&
          write_file(r.csv, csv, strlen(csv)) && write_file(r.text, text, strlen(text)));

    /* the references, loaded with the ordinary allocator */
    dn_vocab v;
    CHECK_OK(dn_dataset_load_idx(r.images, r.labels, 1.0f / 255.0f, &r.idx_ref));
    CHECK_OK(dn_dataset_load_idx_compact(r.images, r.labels, 1.0f / 255.0f, &r.idx_compact_ref));
    CHECK_OK(dn_dataset_load_csv(r.csv, -1, -1, &r.csv_ref));
    CHECK_OK(dn_dataset_load_text(r.text, 8, NULL, &v, &r.text_ref));
    CHECK(r.idx_ref && r.idx_ref->n == 6 && r.idx_ref->n_classes == 3);
    CHECK(r.csv_ref && r.csv_ref->n == 5 && r.csv_ref->shape[0] == 3);
    CHECK(r.text_ref && r.text_ref->n == (int64_t)(strlen(text) - 1) / 8);
    CHECK(r.idx_compact_ref && r.idx_compact_ref->x_bytes && !r.idx_compact_ref->x);
    if (r.idx_ref && r.idx_compact_ref && r.csv_ref && r.text_ref) {
        sweep("dn_dataset_load_idx (images + labels)", run_idx, &r);
        sweep("dn_dataset_load_idx_compact (images + labels)", run_idx_compact, &r);
        sweep("dn_dataset_load_csv", run_csv, &r);
        sweep("dn_dataset_load_text", run_text, &r);
    }
    dn_dataset_free(r.idx_ref);
    dn_dataset_free(r.idx_compact_ref);
    dn_dataset_free(r.csv_ref);
    dn_dataset_free(r.text_ref);
    remove(r.images);
    remove(r.labels);
    remove(r.csv);
    remove(r.text);
}

/* The run API end to end: open a cfg (CSV, validation split, normalisation), train an epoch, save, load the
 * checkpoint, evaluate and predict; with any one allocation refused it fails cleanly or gives the same figures. */
typedef struct run_ref {
    const char *cfg, *ckpt;
    double accuracy;    /* the clean run's test accuracy from the loaded checkpoint */
    int64_t first_pred; /* and its first prediction */
} run_ref;

static dn_status run_whole(void *arg, bool *wrong)
{
    run_ref *r = arg;
    dn_run *run = NULL, *loaded = NULL;
    dn_predictions *p = NULL;
    dn_run_eval e = {0};
    dn_status s = dn_run_open(r->cfg, NULL, &run);
    if (!s) s = dn_run_train(run, NULL, NULL, NULL);
    if (!s) s = dn_run_save(run, r->ckpt);
    if (!s) s = dn_run_load(r->ckpt, &loaded);
    if (!s) s = dn_run_load_test(loaded, NULL);
    if (!s) s = dn_run_evaluate(loaded, NULL, &e);
    if (!s) s = dn_run_predict_set(loaded, dn_run_test_set(loaded), &p);
    if (!s && r->accuracy >= 0) *wrong = e.accuracy != r->accuracy || p->classes[0] != r->first_pred;
    if (!s && r->accuracy < 0) {
        r->accuracy = e.accuracy;
        r->first_pred = p->classes[0];
    }
    dn_predictions_free(p);
    dn_run_free(loaded);
    dn_run_free(run);
    return s;
}

static void test_alloc_fail_run(void)
{
    run_ref r = {tmp_path("run.cfg"), tmp_path("run.ckpt"), -1, -1};
    const char *csv_path = tmp_path("run.csv");
    char cfg[1024], csv[4096] = "";
    for (int i = 0; i < 40; i++)
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "%d,%g,%d\n", 100 + i % 7, 0.01 * (i % 5), i % 2);
    snprintf(cfg, sizeof cfg, "[net]\ninput = 2\nbatch = 8\nepochs = 1\nvalidation = 0.25\n[data]\nformat = csv\n"
                              "train = %s\ntest = %s\nnormalize = 1\n[dense]\nunits = 4\nactivation = relu\n[dense]\n"
                              "units = 2\n", csv_path, csv_path);
    CHECK(write_file(csv_path, csv, strlen(csv)) && write_file(r.cfg, cfg, strlen(cfg)));
    bool wrong = false;
    CHECK_OK(run_whole(&r, &wrong));
    if (r.accuracy >= 0) sweep("dn_run_open + train + save + load + evaluate + predict (csv, normalize)", run_whole, &r);
    remove(csv_path);
    remove(r.cfg);
    remove(r.ckpt);
}

/* ------------------------------------------------------------------ crash safety */

/* About 1 MB of parameters (512 x 512 + 512), from cfg text so that dn_model_load can rebuild it. */
static const char *big_cfg = "[net]\ninput = 512\n[dense]\nunits = 512\n";

static void fill_params(dn_model *m, float v)
{
    float *p = dn_model_params(m);
    for (size_t i = 0; i < dn_model_param_count(m); i++) p[i] = v;
}

/* Loads path; returns the constant every parameter holds, or -1 if it does not load or the values differ. */
static double loaded_constant(const char *path)
{
    dn_model *m = NULL;
    if (dn_model_load(path, &m, NULL)) return -1;
    const float *p = dn_model_params(m);
    double v = p[0];
    for (size_t i = 1; i < dn_model_param_count(m) && v >= 0; i++)
        if (p[i] != p[0]) v = -1;
    dn_model_free(m);
    return v;
}

/* A child saves in a loop, each save a new constant, and is killed at a random moment: the file must always be one
 * whole save, never a torn one.  A kill may leave the child's "<path>.tmp.<pid>"; it is removed here. */
static void test_kill_during_save(void)
{
    const char *path = tmp_path("killed.ckpt");
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg(big_cfg, "big.cfg", &m, NULL));
    if (!m) return;
    CHECK(dn_model_param_count(m) * sizeof(float) > 1000000);
    fill_params(m, 0.0f);
    CHECK_OK(dn_model_save(m, path));
    fflush(stdout);
    fflush(stderr);
    /* a new sequence of delays each run (the seed is in any failure message, to replay it) */
    uint64_t seed = (uint64_t)time(NULL);
    dn_rng rng;
    dn_rng_seed(&rng, seed);
    double last = 0;
    int leftovers = 0, newer = 0;
    /* child k writes the constants k*span + 1, k*span + 2, ...: all exact in float32 for 30 children */
    const long span = 100000;
    for (int k = 0; k < 30; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid < 0) break;
        if (pid == 0) {
            for (long v = (long)k * span + 1;; v++) {
                fill_params(m, (float)v);
                if (dn_model_save(m, path)) _exit(2);
            }
        }
        sleep_ms(50.0 * dn_rng_uniform(&rng));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "kill %d: the saving child ended by itself (%d)",
                  k, status);
        double v = loaded_constant(path);
        /* a whole save: a constant no older than the last one seen, from an earlier child or this one */
        bool whole = v >= last && v == floor(v) && (v == last || (v > (double)k * span && v < (double)(k + 1) * span));
        CHECK_MSG(whole, "kill %d (delay seed %llu): the checkpoint holds %g after the kill (last whole save: %g): %s",
                  k, (unsigned long long)seed, v, last, dn_last_error());
        newer += v > last;
        if (v >= 0) last = v;
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
        if (remove(tmp) == 0) leftovers++;
    }
    if (verbose())
        printf("    30 kills: the file advanced %d times, %d temporary files left behind and removed\n", newer,
               leftovers);
    dn_model_free(m);
    remove(path);
}

/* A save that runs out of disk (RLIMIT_FSIZE in a child) must fail with DN_ERR_IO and keep the old file. */
static void test_full_disk(void)
{
    const char *path = tmp_path("full.ckpt");
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg(big_cfg, "big.cfg", &m, NULL));
    if (!m) return;
    fill_params(m, 7.0f);
    CHECK_OK(dn_model_save(m, path));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {64 * 1024, 64 * 1024};
        signal(SIGXFSZ, SIG_IGN); /* write() then fails with EFBIG instead of killing us */
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
        fill_params(m, 8.0f);
        dn_status s = dn_model_save(m, path);
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        struct stat st;
        int code = s == DN_OK                        ? 1
                   : s != DN_ERR_IO                  ? 2
                   : !strstr(dn_last_error(), path)  ? 3
                   : stat(tmp, &st) == 0             ? 4
                                                     : 0;
        _exit(code);
    }
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    CHECK_MSG(code == 0, "full disk: %s",
              code == 1    ? "the save succeeded past RLIMIT_FSIZE"
              : code == 2  ? "the save failed with a status other than DN_ERR_IO"
              : code == 3  ? "the message does not name the file"
              : code == 4  ? "the temporary file was left behind"
              : code == 10 ? "setrlimit failed"
                           : "the child died");
    CHECK_MSG(loaded_constant(path) == 7.0, "full disk: the old checkpoint did not survive the failed save");
    dn_model_free(m);
    remove(path);
}

/* ------------------------------------------------------------------ fuzz inputs replayed */

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static fuzz_fn fuzz_target(const char *name)
{
    static const struct {
        const char *prefix;
        fuzz_fn fn;
    } targets[] = {{"cfg", dn_fuzz_cfg}, {"checkpoint", dn_fuzz_checkpoint}, {"idx", dn_fuzz_idx},
                   {"csv", dn_fuzz_csv}, {"text", dn_fuzz_text}};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        size_t n = strlen(targets[i].prefix);
        if (strncmp(name, targets[i].prefix, n) == 0 && (name[n] == '-' || name[n] == '\0')) return targets[i].fn;
    }
    return NULL;
}

/* One input through fn in a child process: a regression that still crashes (a sanitizer abort, a segfault) or
 * hangs then fails its test instead of ending the suite.  Returns the child's verdict as a message, NULL if clean. */
static const char *replay_one(const char *path, fuzz_fn fn, char *why, size_t why_size)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return "fork failed";
    if (pid == 0) {
        size_t len = 0;
        unsigned char *data = read_whole(path, &len);
        if (!data) _exit(120);
        int rc = fn(data, len);
        if (rc) fprintf(stdout, "    %s: %s\n", path, dn_last_error());
        fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    pid_t got = 0;
    for (double waited = 0; (got = waitpid(pid, &status, WNOHANG)) == 0 && waited < 60000; waited += 5) sleep_ms(5);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return "did not finish in 60 s";
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, why_size, "crashed with signal %d", WTERMSIG(status));
        return why;
    }
    int code = WEXITSTATUS(status);
    if (code == 0) return NULL;
    if (code == 120) return "cannot be read";
    /* codes 1-3 are dn_fuzz_* verdicts (fuzz/fuzz_common.h); a sanitizer exits with 1 too, after its report */
    snprintf(why, why_size, "exit %d: a broken promise or a sanitizer report (above)", code);
    return why;
}

/* Every file in dir through fn (or, when fn is NULL, through the target its name starts with: "cfg-...").
 * Returns the number of files replayed. */
static int replay_dir(const char *dir, fuzz_fn fn)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[512], why[200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        fuzz_fn f = fn ? fn : fuzz_target(e->d_name);
        CHECK_MSG(f != NULL, "%s: the name does not start with a fuzz target (cfg-, checkpoint-, idx-, csv-, text-)",
                  path);
        if (!f) continue;
        const char *verdict = replay_one(path, f, why, sizeof why);
        CHECK_MSG(verdict == NULL, "%s: %s", path, verdict);
        n++;
    }
    closedir(d);
    return n;
}

/* Each input that once crashed a fuzz target, in tests/fixtures/regress/<target>-<what>. */
static void test_fuzz_regressions(void)
{
    DIR *d = opendir("tests/fixtures/regress");
    if (!d) {
        t_skip("regress", "no tests/fixtures/regress folder (run from the repository root)");
        return;
    }
    closedir(d);
    int n = replay_dir("tests/fixtures/regress", NULL);
    CHECK_MSG(n > 0, "tests/fixtures/regress holds no inputs");
    if (verbose()) printf("    %d regression inputs replayed\n", n);
}

/* The seed corpora go through the same code (they must load, or fail cleanly). */
static void test_fuzz_seeds(void)
{
    int n = replay_dir("fuzz/corpus/cfg", dn_fuzz_cfg) + replay_dir("fuzz/corpus/checkpoint", dn_fuzz_checkpoint) +
            replay_dir("fuzz/corpus/idx", dn_fuzz_idx) + replay_dir("fuzz/corpus/csv", dn_fuzz_csv) +
            replay_dir("fuzz/corpus/text", dn_fuzz_text);
    CHECK_MSG(n >= 20, "only %d seed inputs found under fuzz/corpus (run from the repository root)", n);
}

/* The harness fails loudly on its own I/O errors: with a scratch folder it cannot write, it aborts with a message
 * instead of calling the input clean. */
static void test_fuzz_harness_io_error_aborts(void)
{
    const char *log = tmp_path("harness.err");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "w", stderr)) _exit(10);
        setenv("DN_FUZZ_SCRATCH", "/nonexistent-dn-fuzz-scratch", 1);
        int rc = dn_fuzz_csv((const uint8_t *)"1,2\n", 4);
        _exit(rc == 0 ? 11 : 12);
    }
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "the harness %s",
              WIFEXITED(status) && WEXITSTATUS(status) == 11 ? "reported clean" : "did not abort");
    size_t len = 0;
    char *text = (char *)read_whole(log, &len);
    CHECK_MSG(text && strstr(text, "cannot create the scratch file /nonexistent-dn-fuzz-scratch/"), "stderr: %s",
              text ? text : "(none)");
    free(text);
    remove(log);
}

void suite_reliability(void)
{
    RUN(test_alloc_fail_model_files);
    RUN(test_alloc_fail_training);
    RUN(test_alloc_fail_loaders);
    RUN(test_alloc_fail_run);
    RUN(test_kill_during_save);
    RUN(test_full_disk);
    RUN(test_fuzz_regressions);
    RUN(test_fuzz_seeds);
    RUN(test_fuzz_harness_io_error_aborts);
    if (tmp_dir[0]) rmdir(tmp_dir);
}
