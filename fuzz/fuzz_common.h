/* What each fuzz target does with one input, shared by the libFuzzer targets (fuzz/fuzz_*.c) and the regression
 * replay in tests/test_reliability.c, so a saved crash input is replayed by exactly the code that found it.
 *
 * dn_fuzz_<target>(data, size) feeds the input to a parser or loader through the public API and returns 0, or a
 * nonzero code when the library broke a promise without crashing:
 *     1  a call failed but left no message in dn_last_error()
 *     2  a model the cfg builder accepted failed in forward/backward (the builder must reject bad shapes)
 *     3  a result is inconsistent (output shape differs from dn_model_output_shape, a label outside n_classes,
 *        a text file that cannot be reloaded with its own vocabulary)
 *     4  two loaders of the same file disagree (the IDX loader with float and with byte storage)
 * Crashes, leaks and undefined behaviour are for the sanitizers to report.
 *
 * Every call runs under an allocator that refuses blocks over a cap (2 MB for cfg text, 8 MB for files): a cfg may
 * ask for a legitimately huge model, and "out of memory" is then the right answer, not a finding; the small cap
 * for cfg text also keeps each run short (initialising a large model costs more than parsing it).  Files are
 * written to $DN_FUZZ_SCRATCH (else /dev/shm, $TMPDIR or /tmp) under a per-process name and removed after each
 * input.
 *
 * The harness's own failures (a scratch file it cannot write or remove, memory it cannot get for its copies) are
 * not verdicts on the library: it prints what went wrong and aborts, so a broken harness can never report an
 * input as clean. */
#ifndef DN_FUZZ_COMMON_H
#define DN_FUZZ_COMMON_H

#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DN_FUZZ_CFG_CAP ((size_t)2 << 20)
#define DN_FUZZ_FILE_CAP ((size_t)8 << 20)

static inline void *dn_fuzz_alloc(size_t n, void *cap)
{
    return n > *(const size_t *)cap ? NULL : malloc(n);
}

static inline void *dn_fuzz_realloc(void *p, size_t n, void *cap)
{
    return n > *(const size_t *)cap ? NULL : realloc(p, n);
}

static inline void dn_fuzz_free(void *p, void *user)
{
    (void)user;
    free(p);
}

static inline void dn_fuzz_begin(size_t cap)
{
    static size_t limit;
    limit = cap;
    const dn_allocator capped = {dn_fuzz_alloc, dn_fuzz_realloc, dn_fuzz_free, &limit};
    dn_set_allocator(&capped);
    dn_error_clear();
}

/* Back to malloc: blocks from either allocator are plain malloc blocks, so they may be freed by the other. */
static inline void dn_fuzz_end(void) { dn_set_allocator(NULL); }

/* The harness itself failed: say so and abort (never "clean"). */
static inline void dn_fuzz_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz harness: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

static inline void *dn_fuzz_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) dn_fuzz_die("out of memory (%zu bytes)", n);
    return p;
}

static inline void dn_fuzz_remove(const char *path)
{
    if (remove(path) != 0) dn_fuzz_die("cannot remove the scratch file %s: %s", path, strerror(errno));
}

/* A failed call must say why. */
static inline int dn_fuzz_said_why(dn_status s) { return s == DN_OK || dn_last_error()[0] ? 0 : 1; }

/* Writes data to a scratch file named after the process and `tag`; path receives its name.  Aborts when it
 * cannot (returns 0 otherwise, for the callers' `if (dn_fuzz_write(...))`). */
static inline int dn_fuzz_write(const char *tag, const uint8_t *data, size_t size, char *path, size_t path_size)
{
    const char *dir = getenv("DN_FUZZ_SCRATCH");
    if (!dir || !*dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    if ((size_t)snprintf(path, path_size, "%s/dn_fuzz_%ld_%s", dir, (long)getpid(), tag) >= path_size)
        dn_fuzz_die("the scratch path in %s is too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f) dn_fuzz_die("cannot create the scratch file %s: %s", path, strerror(errno));
    if (size && fwrite(data, 1, size, f) != size) dn_fuzz_die("cannot write the scratch file %s: %s", path, strerror(errno));
    if (fclose(f) != 0) dn_fuzz_die("cannot write the scratch file %s: %s", path, strerror(errno));
    return 0;
}

/* Reads every element of a data set (so ASan sees any buffer that is shorter than n and the shape claim) and
 * checks class labels against n_classes. */
static inline int dn_fuzz_check_dataset(const dn_dataset *d)
{
    if (d->n < 1 || d->ndim < 1 || d->ndim > DN_MAX_DIMS) return 3;
    int64_t ss = dn_dataset_sample_size(d), ts = dn_dataset_target_size(d);
    volatile float sink = 0;
    float *row = dn_fuzz_malloc((size_t)(ss > 0 ? ss : 1) * sizeof(float));
    for (int64_t i = 0; i < d->n; i++) { /* through the accessor, which serves both storages */
        if (ss && dn_dataset_get(d, i, 1, row) != 1) {
            free(row);
            return 3;
        }
        for (int64_t j = 0; j < ss; j++) sink += row[j];
    }
    free(row);
    for (int64_t i = 0; i < d->n * ts; i++) {
        sink += d->y[i];
        if (d->n_classes > 0 && !(d->y[i] >= 0 && d->y[i] < (float)d->n_classes)) return 3;
    }
    (void)sink;
    return 0;
}

/* ------------------------------------------------------------------ cfg */

/* Runs a batch of two zero samples forward and backward through a model the builder accepted: the builder
 * promises to reject every shape the layers cannot take, so any error here but running out of memory is a
 * finding.  Only small models, to keep the fuzzer fast; the context is kept from one input to the next because
 * a fresh arena's first megabyte costs more (mmap and page faults under ASan) than a small model's forward. */
static inline int dn_fuzz_run_model(dn_model *m)
{
    int64_t in_shape[DN_MAX_DIMS], out_shape[DN_MAX_DIMS];
    int in_ndim = dn_model_input_shape(m, in_shape), out_ndim = 0;
    dn_model_output_shape(m, &out_ndim, out_shape);
    int64_t in_numel = 1; /* stops past 4096, before it could overflow */
    for (int i = 0; i < in_ndim && in_numel <= 4096; i++) in_numel *= in_shape[i];
    if (in_numel > 4096 || dn_model_param_count(m) > ((size_t)1 << 18) || dn_model_flops(m) > 1000000) return 0;

    static dn_ctx *ctx;
    if (!ctx) ctx = dn_ctx_new();
    if (!ctx) return 0;
    dn_ctx_reset(ctx);
    int rc = 0;
    int64_t shape[DN_MAX_DIMS] = {2};
    memcpy(shape + 1, in_shape, (size_t)in_ndim * sizeof *shape);
    dn_tensor *x = NULL;
    dn_status s = dn_tensor_new(ctx, in_ndim + 1, shape, &x); /* zeros: token id 0 is valid for embeddings */
    /* the input takes a gradient too, so the output always depends on something that does (a model of pooling
     * alone has no parameters) and the layers' input-gradient paths run as well */
    if (!s) s = dn_tensor_set_requires_grad(x, true);
    dn_tensor *y = s ? NULL : dn_model_forward(m, ctx, x);
    if (y) {
        bool same = dn_tensor_ndim(y) == out_ndim + 1 && dn_tensor_dim(y, 0) == 2;
        for (int i = 0; same && i < out_ndim; i++) same = dn_tensor_dim(y, i + 1) == out_shape[i];
        if (!same) rc = 3;
        dn_tensor *loss = dn_sum(ctx, y, 0, false);
        if (loss && !rc) s = dn_backward(ctx, loss);
    }
    if (!s) s = dn_ctx_status(ctx);
    if (s && s != DN_ERR_NOMEM && !rc) rc = 2;
    dn_ctx_reset(ctx);
    return rc;
}

static inline int dn_fuzz_cfg(const uint8_t *data, size_t size)
{
    char *text = dn_fuzz_malloc(size + 1);
    if (size) memcpy(text, data, size);
    text[size] = '\0';
    dn_fuzz_begin(DN_FUZZ_CFG_CAP);
    dn_model *m = NULL;
    dn_train_config tc;
    dn_status s = dn_model_from_cfg(text, "fuzz.cfg", &m, &tc);
    int rc = dn_fuzz_said_why(s);
    if (!s) {
        char summary[256]; /* short on purpose: the summary must truncate cleanly */
        (void)dn_model_summary(m, summary, sizeof summary);
        rc = dn_fuzz_run_model(m);
    }
    dn_model_free(m);
    dn_fuzz_end();
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ checkpoints */

/* The small model that dn_model_load_params and dn_trainer_resume fill: names layers.0.weight [3, 4],
 * layers.0.bias [3], layers.2.weight [2, 3], layers.2.bias [2], trained with Adam (the seed checkpoints include
 * one of this shape and a training checkpoint of it).  Layer 1 is a dropout rather than the seeds' relu: it
 * names the same tensors, and adding it costs nothing, where an activation may run its op once to check it. */
static inline dn_model *dn_fuzz_fixed_model(void)
{
    dn_model *m = NULL;
    if (dn_model_new(1, (int64_t[]){4}, 1, &m)) return NULL;
    if (dn_model_add_dense(m, 3, DN_INIT_DEFAULT, true) || dn_model_add_dropout(m, 0.0f, false) ||
        dn_model_add_dense(m, 2, DN_INIT_DEFAULT, true)) {
        dn_model_free(m);
        return NULL;
    }
    return m;
}

static inline int dn_fuzz_checkpoint(const uint8_t *data, size_t size)
{
    char path[256];
    if (dn_fuzz_write("ckpt", data, size, path, sizeof path)) return 0;
    dn_fuzz_begin(DN_FUZZ_FILE_CAP);
    int rc = 0;
    dn_model *m = NULL;
    dn_train_config tc;
    dn_status s = dn_model_load(path, &m, &tc);
    rc |= dn_fuzz_said_why(s);
    if (!s) {
        volatile float sink = 0;
        float *p = dn_model_params(m);
        for (size_t i = 0; i < dn_model_param_count(m); i++) sink += p[i];
        (void)sink;
        dn_model_free(m);
    }
    dn_model *fixed = dn_fuzz_fixed_model();
    if (fixed) {
        dn_error_clear();
        s = dn_model_load_params(fixed, path);
        rc |= dn_fuzz_said_why(s);
        /* the training state too: metadata, optimiser buffers, best weights */
        float x[8 * 4] = {0}, y[8] = {0, 1, 0, 1, 0, 1, 0, 1};
        dn_dataset d = {.n = 8, .ndim = 1, .shape = {4}, .x = x, .y = y, .n_classes = 2};
        dn_train_defaults(&tc);
        tc.batch = 4;
        dn_optim_defaults(DN_ADAM, &tc.optim);
        dn_trainer *t = NULL;
        if (dn_trainer_new(fixed, &tc, &d, &d, &t) == DN_OK) {
            dn_error_clear();
            s = dn_trainer_resume(t, path);
            rc |= dn_fuzz_said_why(s);
            dn_trainer_free(t);
        }
        dn_model_free(fixed);
    }
    dn_fuzz_end();
    dn_fuzz_remove(path);
    return rc;
}

/* ------------------------------------------------------------------ IDX */

/* Byte 0 chooses the mode.  Even: the rest is an images file, loaded without labels.  Odd: bytes 1-2 are a
 * little-endian length L, the next L bytes (or as many as there are) the images file and the remainder the
 * labels file. */
static inline int dn_fuzz_idx(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char images[256], labels[256];
    const uint8_t *img = data + 1, *lab = NULL;
    size_t n_img = size - 1, n_lab = 0;
    bool split = data[0] & 1;
    if (split) {
        if (size < 3) return 0;
        size_t len = (size_t)data[1] | (size_t)data[2] << 8;
        img = data + 3;
        n_img = len < size - 3 ? len : size - 3;
        lab = img + n_img;
        n_lab = size - 3 - n_img;
    }
    if (dn_fuzz_write("images", img, n_img, images, sizeof images)) return 0;
    if (split && dn_fuzz_write("labels", lab, n_lab, labels, sizeof labels)) {
        dn_fuzz_remove(images);
        return 0;
    }
    dn_fuzz_begin(DN_FUZZ_FILE_CAP);
    dn_dataset *d = NULL;
    dn_status s = dn_dataset_load_idx(images, split ? labels : NULL, 1.0f / 255.0f, &d);
    int rc = dn_fuzz_said_why(s);
    if (!s) rc = dn_fuzz_check_dataset(d);
    /* the compact loader (bytes stay bytes) must agree with it: the same verdict and, through dn_dataset_get,
     * the same samples and targets (unless one of them ran out of the capped memory: it needs less) */
    dn_dataset *c = NULL;
    dn_status sc = dn_dataset_load_idx_compact(images, split ? labels : NULL, 1.0f / 255.0f, &c);
    if (!rc) rc = dn_fuzz_said_why(sc);
    if (!rc && !sc) rc = dn_fuzz_check_dataset(c);
    if (!rc && s != DN_ERR_NOMEM && sc != DN_ERR_NOMEM) {
        if ((s == DN_OK) != (sc == DN_OK)) rc = 4;
        if (!rc && !s) {
            const int64_t ss = dn_dataset_sample_size(d), ts = dn_dataset_target_size(d);
            if (c->n != d->n || dn_dataset_sample_size(c) != ss || dn_dataset_target_size(c) != ts ||
                memcmp(c->y, d->y, (size_t)(d->n * ts) * sizeof(float)))
                rc = 4;
            float *a = dn_fuzz_malloc((size_t)(ss > 0 ? ss : 1) * sizeof(float));
            float *b = dn_fuzz_malloc((size_t)(ss > 0 ? ss : 1) * sizeof(float));
            for (int64_t i = 0; !rc && i < d->n; i++) {
                dn_dataset_get(d, i, 1, a);
                dn_dataset_get(c, i, 1, b);
                if (memcmp(a, b, (size_t)ss * sizeof(float))) rc = 4;
            }
            free(a);
            free(b);
        }
    }
    dn_dataset_free(c);
    dn_dataset_free(d);
    dn_fuzz_end();
    dn_fuzz_remove(images);
    if (split) dn_fuzz_remove(labels);
    return rc;
}

/* ------------------------------------------------------------------ CSV */

/* The same file with the last column as the label (header detected), and with every column a feature. */
static inline int dn_fuzz_csv(const uint8_t *data, size_t size)
{
    char path[256];
    if (dn_fuzz_write("csv", data, size, path, sizeof path)) return 0;
    dn_fuzz_begin(DN_FUZZ_FILE_CAP);
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        dn_dataset *d = NULL;
        dn_error_clear();
        dn_status s = dn_dataset_load_csv(path, k == 0 ? -1 : DN_CSV_NO_LABEL, -1, &d);
        rc = dn_fuzz_said_why(s);
        if (!s) rc = dn_fuzz_check_dataset(d);
        dn_dataset_free(d);
    }
    dn_fuzz_end();
    dn_fuzz_remove(path);
    return rc;
}

/* ------------------------------------------------------------------ text */

/* Windows of 8 characters with a vocabulary built from the file; then the same file with that vocabulary must
 * load to the same windows, and regrouping into 2 streams must keep every id. */
static inline int dn_fuzz_text(const uint8_t *data, size_t size)
{
    char path[256];
    if (dn_fuzz_write("text", data, size, path, sizeof path)) return 0;
    dn_fuzz_begin(DN_FUZZ_FILE_CAP);
    dn_vocab v;
    dn_dataset *d = NULL, *again = NULL;
    dn_status s = dn_dataset_load_text(path, 8, NULL, &v, &d);
    int rc = dn_fuzz_said_why(s);
    if (!s) {
        rc = dn_fuzz_check_dataset(d);
        if (!rc && (d->n_classes != v.size || v.size < 1 || v.size > 256)) rc = 3;
        s = rc ? DN_ERR_STATE : dn_dataset_load_text(path, 8, &v, NULL, &again);
        if (!rc && s && s != DN_ERR_NOMEM) rc = 3;
        if (!rc && !s &&
            (again->n != d->n || memcmp(again->x, d->x, (size_t)(d->n * 8) * sizeof(float)) ||
             memcmp(again->y, d->y, (size_t)(d->n * 8) * sizeof(float))))
            rc = 3;
        if (!rc && dn_dataset_streams(d, 2) == DN_OK) rc = dn_fuzz_check_dataset(d);
    }
    dn_dataset_free(d);
    dn_dataset_free(again);
    dn_fuzz_end();
    dn_fuzz_remove(path);
    return rc;
}

#endif /* DN_FUZZ_COMMON_H */
