/* A whole run in the library: data as the cfg names it, the validation split, input normalisation, the
 * trainer, evaluation, prediction and text generation.  `dendrite train/eval/predict/generate/report` are thin
 * wrappers over these functions, so every verb (and every C program) loads, splits and normalises data one way.
 *
 * Normalisation (normalize = 1) uses the statistics of the training part only, after the validation split, so
 * no validation or test row leaks into them; the model keeps them (dn_model_set_input_stats) and checkpoints
 * save them, so eval, predict and report apply exactly what training applied. */
#include "train.h"
#include "dist/dist.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct dn_run {
    dn_model *m;
    dn_train_config c;
    dn_trainer *t;                     /* NULL for a run opened from a checkpoint */
    dn_dataset *train, *val, *test;
    int64_t *confusion;                /* dn_run_evaluate's matrix */
    bool dist;                         /* dn_run_set_distributed */
};

void dn_run_options_default(dn_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = -1;
    o->seed = -1;
}

dn_model *dn_run_model(dn_run *r) { return r ? r->m : NULL; }
const dn_train_config *dn_run_config(const dn_run *r) { return r ? &r->c : NULL; }
dn_trainer *dn_run_trainer(dn_run *r) { return r ? r->t : NULL; }
const dn_dataset *dn_run_train_set(const dn_run *r) { return r ? r->train : NULL; }
const dn_dataset *dn_run_val_set(const dn_run *r) { return r ? r->val : NULL; }
const dn_dataset *dn_run_test_set(const dn_run *r) { return r ? r->test : NULL; }

void dn_run_set_distributed(dn_run *r, bool on)
{
    if (!r) return;
    r->dist = on;
    dn_trainer_set_distributed(r->t, on);
}

void dn_run_free(dn_run *r)
{
    if (!r) return;
    dn_trainer_free(r->t);
    dn_dataset_free(r->train);
    dn_dataset_free(r->val);
    dn_dataset_free(r->test);
    dn_model_free(r->m);
    dn_free(r->confusion);
    dn_free(r);
}

/* ------------------------------------------------------------------ data */

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_text(const dn_run *r) { return !strcmp(r->c.data_format, "text"); }

/* One data set as the cfg's [data] section (or `data`, a folder or file given instead) names it: the training
 * set, or the test set (test).  *out stays NULL, with DN_OK, when there is no such set. */
static dn_status load_data(dn_run *r, const char *data, bool test, dn_dataset **out)
{
    const dn_train_config *c = &r->c;
    *out = NULL;
    if (is_text(r)) {
        const char *path = test ? c->data_test : (data ? data : c->data_train);
        if (!path || !*path) return DN_OK;
        int64_t in_shape[DN_MAX_DIMS];
        dn_model_input_shape(r->m, in_shape);
        const dn_vocab *known = dn_model_vocab(r->m);
        dn_vocab v;
        dn_status s = dn_dataset_load_text(path, in_shape[0], known->size ? known : NULL, &v, out);
        if (s) return s;
        if (!known->size) dn_model_set_vocab(r->m, &v);
        /* unshuffled text feeds stateful layers: lay the windows out as `batch` parallel streams */
        if (!c->shuffle && !test) return dn_dataset_streams(*out, c->batch);
        return DN_OK;
    }
    if (!strcmp(c->data_format, "csv") || (data && !is_dir(data))) {
        const char *path = data ? data : (test ? c->data_test : c->data_train);
        if (test && data) return DN_OK; /* a CSV given instead of the cfg's has no separate test file */
        if (!path || !*path) return DN_OK;
        return dn_dataset_load_csv(path, c->label_column, c->csv_header, out);
    }
    const char *dir = data ? data : c->data_train;
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/%s-images-idx3-ubyte", dir, test ? "t10k" : "train");
    snprintf(b, sizeof b, "%s/%s-labels-idx1-ubyte", dir, test ? "t10k" : "train");
    /* the images stay bytes (a quarter of the memory of floats); batches are converted as they are copied out */
    dn_status s = dn_dataset_load_idx_compact(a, b, 1.0f / 255.0f, out);
    if (s && access(a, R_OK) != 0) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s", dn_last_error());
        return dn_error(DN_ERR_IO, "%s — run scripts/fetch-mnist.sh to download MNIST, or pass --data DIR", msg);
    }
    return s;
}

/* A data set's samples take the model's input shape when only the shape differs (784 vs 28x28); any other
 * mismatch is left for the trainer or evaluation to report. */
static void fit_shape(const dn_run *r, dn_dataset *d)
{
    if (!d) return;
    int64_t shape[DN_MAX_DIMS], n = 1;
    int nd = dn_model_input_shape(r->m, shape);
    for (int i = 0; i < nd; i++) n *= shape[i];
    if (n != dn_dataset_sample_size(d)) return;
    d->ndim = nd;
    memcpy(d->shape, shape, (size_t)nd * sizeof(int64_t));
}

/* The model's input normalisation applied to d (nothing when the model has none). */
static dn_status normalize(const dn_run *r, dn_dataset *d)
{
    const float *mean, *sd;
    int64_t n = dn_model_input_stats(r->m, &mean, &sd);
    if (!d || n == 0) return DN_OK;
    if (n != dn_dataset_sample_size(d))
        return dn_error(DN_ERR_SHAPE, "the model was trained on %lld normalised features, the data has %lld per sample",
                        (long long)n, (long long)dn_dataset_sample_size(d));
    return dn_dataset_normalize(d, mean, sd);
}

/* ------------------------------------------------------------------ opening */

/* The model's input normalisation from a data set's per-feature mean and deviation (the training part). */
static dn_status set_stats(dn_run *r, const dn_dataset *train)
{
    int64_t ss = dn_dataset_sample_size(train);
    float *mean = dn_alloc((size_t)(ss > 0 ? ss : 1) * sizeof(float));
    float *sd = dn_alloc((size_t)(ss > 0 ? ss : 1) * sizeof(float));
    dn_status s = DN_ERR_NOMEM;
    if (mean && sd) {
        dn_dataset_stats(train, mean, sd);
        s = dn_model_set_input_stats(r->m, ss, mean, sd);
    }
    dn_free(mean);
    dn_free(sd);
    return s;
}

/* A checkpoint trained with normalize = 1 by a dendrite that did not save the statistics: they are recomputed
 * as training computes them now (the cfg's training data, the training part of its split). */
static dn_status recompute_stats(dn_run *r)
{
    dn_dataset *full = NULL, *a = NULL, *b = NULL;
    dn_status s = load_data(r, NULL, false, &full);
    if (!s && !full) s = dn_error(DN_ERR_ARG, "the cfg names no training data");
    if (!s) {
        fit_shape(r, full);
        if (r->c.validation > 0 && r->c.validation < 1)
            s = dn_validation_split(full, &r->c, &a, &b);
        if (!s) s = set_stats(r, a ? a : full);
    }
    dn_dataset_free(full);
    dn_dataset_free(a);
    dn_dataset_free(b);
    return s;
}

/* weights: the model came with trained weights, which another seed must not re-initialise */
static dn_status apply_options(dn_run *r, const dn_run_options *o, bool weights)
{
    dn_train_config *c = &r->c;
    if (o->seed >= 0 && (uint64_t)o->seed != c->seed) {
        /* initialisation, shuffling and dropout all follow the seed */
        c->seed = (uint64_t)o->seed;
        if (weights) dn_rng_seed(&r->m->rng, c->seed); /* dropout's generator only */
        else {
            dn_status s = dn_model_reinit(r->m, c->seed);
            if (s) return s;
        }
    }
    if (o->detect_anomaly) c->detect_anomaly = true;
    if (o->epochs >= 0) c->epochs = o->epochs;
    if (o->batch > 0) c->batch = o->batch;
    if (o->threads > 0) c->threads = o->threads;
    if (o->lr > 0) {
        c->optim.lr = (float)o->lr;
        c->schedule.base_lr = (float)o->lr;
        c->schedule.current_lr = (float)o->lr;
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ starting from trained weights */


/* Copies every parameter and buffer of src into m by name; first checks that each is there with m's shape. */
static dn_status copy_weights(dn_model *m, const dn_model *src, const char *path)
{
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < 2; k++) {
            const dn_param *list = k ? m->buffers : m->tensors, *from = k ? src->buffers : src->tensors;
            const int count = k ? m->n_buffers : m->n_tensors, n_from = k ? src->n_buffers : src->n_tensors;
            for (int i = 0; i < count; i++) {
                const dn_param *p = &list[i], *q = NULL;
                for (int j = 0; j < n_from && !q; j++)
                    if (!strcmp(from[j].name, p->name)) q = &from[j];
                bool same = q && q->t.ndim == p->t.ndim;
                for (int d = 0; same && d < p->t.ndim; d++) same = q->t.shape[d] == p->t.shape[d];
                if (pass == 1) memcpy(p->t.data, q->t.data, (size_t)dn_tensor_numel(&p->t) * sizeof(float));
                else if (!q)
                    return dn_error(DN_ERR_FORMAT, "%s: the model has no tensor '%s' (its layers are not the cfg's)",
                                    path, p->name);
                else if (!same)
                    return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' has shape %s but the cfg's model needs %s", path,
                                    p->name, dn_tshape(&q->t), dn_tshape(&p->t));
            }
        }
    return DN_OK;
}

dn_status dn_run_init_weights(dn_run *r, const char *path)
{
    if (!r || !path) return dn_error(DN_ERR_ARG, "dn_run_init_weights: run and path must not be NULL");
    if (r->t && dn_trainer_epochs_done(r->t) > 0)
        return dn_error(DN_ERR_STATE, "dn_run_init_weights: the run has already trained (call it before dn_run_train)");
    if (dn_model_file_kind(path) != DN_MODEL_ONNX) return dn_model_load_params(r->m, path);
    dn_model *src = NULL;
    dn_status s = dn_model_import_onnx(path, &src, NULL);
    if (!s) s = copy_weights(r->m, src, path);
    dn_model_free(src);
    return s;
}

dn_status dn_run_open(const char *cfg_path, const dn_run_options *options, dn_run **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_run_open: out is NULL");
    *out = NULL;
    if (!cfg_path) return dn_error(DN_ERR_ARG, "dn_run_open: cfg_path is NULL");
    dn_run_options defaults;
    dn_run_options_default(&defaults);
    const dn_run_options *o = options ? options : &defaults;
    dn_run *r = dn_calloc(1, sizeof *r);
    if (!r) return DN_ERR_NOMEM;
    dn_dataset *full = NULL;
    /* a checkpoint's or an ONNX file's weights start the training; a cfg's model is initialised afresh */
    const bool weights = dn_model_file_kind(cfg_path) != DN_MODEL_CFG;
    dn_status s = dn_model_open(cfg_path, &r->m, &r->c);
    if (!s) s = apply_options(r, o, weights);
    if (s) goto fail;
    const dn_train_config *c = &r->c;
    if (c->validation < 0 || c->validation >= 1) {
        s = dn_error(DN_ERR_ARG, "validation must be a fraction in [0, 1), got %g", (double)c->validation);
        goto fail;
    }
    if ((s = load_data(r, o->data, false, &full))) {
        dn_error_prefix("loading training data");
        goto fail;
    }
    if (!full) {
        s = dn_error(DN_ERR_ARG, "%s: no training data (the cfg's [data] section names none; give a folder or file)",
                     cfg_path);
        goto fail;
    }
    if ((s = load_data(r, o->data, true, &r->test))) {
        dn_error_prefix("loading test data");
        goto fail;
    }
    fit_shape(r, full);
    fit_shape(r, r->test);
    /* the split the trainer would make itself (same seed), made here so that normalisation sees only the
     * training part */
    if (c->validation > 0) {
        if ((s = dn_validation_split(full, c, &r->train, &r->val))) goto fail;
        dn_dataset_free(full);
    } else {
        r->train = full;
    }
    full = NULL;
    if (c->normalize && !is_text(r)) {
        /* trained weights keep the normalisation they were trained with, when their checkpoint has it */
        s = weights && dn_model_input_stats(r->m, NULL, NULL) > 0 ? DN_OK : set_stats(r, r->train);
        if (!s) s = normalize(r, r->train);
        if (!s) s = normalize(r, r->val);
        if (!s) s = normalize(r, r->test);
        if (s) {
            dn_error_prefix("normalizing the data");
            goto fail;
        }
    }
    if ((s = dn_trainer_new(r->m, c, r->train, r->val, &r->t))) goto fail;
    *out = r;
    return DN_OK;
fail:
    dn_dataset_free(full);
    dn_run_free(r);
    return s;
}

dn_status dn_run_load(const char *checkpoint, dn_run **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_run_load: out is NULL");
    *out = NULL;
    if (!checkpoint) return dn_error(DN_ERR_ARG, "dn_run_load: checkpoint is NULL");
    dn_run *r = dn_calloc(1, sizeof *r);
    if (!r) return DN_ERR_NOMEM;
    dn_status s = dn_model_load(checkpoint, &r->m, &r->c);
    if (!s && r->c.normalize && !is_text(r) && dn_model_input_stats(r->m, NULL, NULL) == 0 &&
        (s = recompute_stats(r)))
        dn_error_prefix("%s was trained with normalize = 1 but holds no input statistics (an older checkpoint); "
                        "recomputing them from its training data failed", checkpoint);
    if (s) {
        dn_run_free(r);
        return s;
    }
    *out = r;
    return DN_OK;
}

/* ------------------------------------------------------------------ training */

dn_status dn_run_train(dn_run *r, dn_epoch_fn fn, void *user, dn_epoch_stats *last)
{
    if (!r) return dn_error(DN_ERR_ARG, "dn_run_train: run is NULL");
    if (!r->t) return dn_error(DN_ERR_STATE, "dn_run_train: this run was opened from a checkpoint (dn_run_load), not "
                                             "a cfg (dn_run_open)");
    dn_epoch_stats st;
    memset(&st, 0, sizeof st);
    st.train_loss = st.val_loss = st.train_accuracy = st.val_accuracy = NAN;
    dn_status s = DN_OK;
    while (!s && !dn_trainer_finished(r->t)) {
        s = dn_trainer_epoch(r->t, &st);
        if (!s && fn) s = fn(user, &st);
    }
    if (!s) dn_trainer_restore_best(r->t);
    if (last) *last = st;
    return s;
}

dn_status dn_run_resume(dn_run *r, const char *path)
{
    if (!r || !path) return dn_error(DN_ERR_ARG, "dn_run_resume: run and path must not be NULL");
    if (!r->t) return dn_error(DN_ERR_STATE, "dn_run_resume: this run was not opened from a cfg (dn_run_open)");
    return dn_trainer_resume(r->t, path);
}

dn_status dn_run_save(const dn_run *r, const char *path)
{
    if (!r || !path) return dn_error(DN_ERR_ARG, "dn_run_save: run and path must not be NULL");
    /* every process of a distributed run holds the same state: one writes it, and no two race on the file */
    if (r->dist && dn_dist_rank() != 0) return DN_OK;
    return r->t ? dn_trainer_save(r->t, path) : dn_model_save(r->m, path);
}

/* ------------------------------------------------------------------ evaluation */

dn_status dn_run_load_test(dn_run *r, const char *data)
{
    if (!r) return dn_error(DN_ERR_ARG, "dn_run_load_test: run is NULL");
    /* a file given is the evaluation set itself; a folder gives its t10k files */
    bool file = data && !is_dir(data);
    bool csv = !strcmp(r->c.data_format, "csv") || file;
    dn_dataset *d = NULL;
    dn_status s = load_data(r, data, !(csv && data), &d);
    if (!s && !d)
        s = dn_error(DN_ERR_ARG, "no test data: the cfg names no test file (give a file or an MNIST folder)");
    if (!s) {
        fit_shape(r, d);
        s = normalize(r, d);
    }
    if (s) {
        dn_dataset_free(d);
        return s;
    }
    dn_dataset_free(r->test);
    r->test = d;
    return DN_OK;
}

dn_status dn_run_evaluate(dn_run *r, const dn_dataset *d, dn_run_eval *out)
{
    if (!r || !out) return dn_error(DN_ERR_ARG, "dn_run_evaluate: run and out must not be NULL");
    memset(out, 0, sizeof *out);
    if (!d) d = r->test;
    if (!d) return dn_error(DN_ERR_ARG, "dn_run_evaluate: the run has no test set (dn_run_load_test loads one)");
    /* a test set that lacks the top classes still gets the model's full matrix */
    dn_dataset view = *d;
    int out_ndim;
    int64_t out_shape[DN_MAX_DIMS];
    dn_model_output_shape(r->m, &out_ndim, out_shape);
    if (dn_dataset_target_size(d) == 1 && d->n_classes > 0 && out_ndim == 1 && out_shape[0] > d->n_classes &&
        out_shape[0] <= 1000)
        view.n_classes = (int)out_shape[0];
    int k = view.n_classes > 0 ? view.n_classes : 0;
    dn_free(r->confusion);
    r->confusion = NULL;
    if (k > 0 && !(r->confusion = dn_calloc((size_t)k * (size_t)k, sizeof *r->confusion))) return DN_ERR_NOMEM;
    dn_eval_result e;
    dn_status s = r->dist ? dist_evaluate(r->m, &r->c, &view, &e, r->confusion)
                          : dn_evaluate(r->m, &r->c, &view, &e, r->confusion);
    if (s) return s;
    out->loss = e.loss;
    out->accuracy = e.accuracy;
    out->n = e.n;
    out->n_classes = k;
    out->confusion = r->confusion;
    return DN_OK;
}

/* ------------------------------------------------------------------ prediction */

void dn_predictions_free(dn_predictions *p)
{
    if (!p) return;
    dn_free(p->classes);
    dn_free(p->values);
    dn_free(p);
}

static bool looks_like_idx(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char h[4] = {1, 1, 1, 1};
    if (!f) return false;
    size_t n = fread(h, 1, 4, f);
    fclose(f);
    return n == 4 && h[0] == 0 && h[1] == 0;
}

dn_status dn_run_predict(dn_run *r, const char *path, dn_predictions **out)
{
    if (!r || !path || !out) return dn_error(DN_ERR_ARG, "dn_run_predict: run, path and out must not be NULL");
    *out = NULL;
    dn_dataset *d = NULL;
    dn_status s = looks_like_idx(path) ? dn_dataset_load_idx_compact(path, NULL, 1.0f / 255.0f, &d)
                                       : dn_dataset_load_csv(path, DN_CSV_NO_LABEL, r->c.csv_header, &d);
    if (!s) {
        fit_shape(r, d);
        s = normalize(r, d);
    }
    if (!s) s = dn_run_predict_set(r, d, out);
    dn_dataset_free(d);
    return s;
}

dn_status dn_run_predict_set(dn_run *r, const dn_dataset *d, dn_predictions **out)
{
    if (!r || !d || !out) return dn_error(DN_ERR_ARG, "dn_run_predict_set: run, data and out must not be NULL");
    *out = NULL;
    dn_model *m = r->m;
    const char *loss = r->c.loss;
    bool softmax = !strcmp(loss, "softmax_cross_entropy") || !strcmp(loss, "softmax_cross_entropy_soft");
    bool sigmoid = !strcmp(loss, "bce_with_logits");
    /* one output is a score: above 0.5 for probabilities, above 0 for logits and hinge scores (as accuracy counts) */
    float threshold = sigmoid || !strcmp(loss, "bce_loss") ? 0.5f : 0.0f;
    dn_predictions *p = dn_calloc(1, sizeof *p);
    dn_ctx *ctx = dn_ctx_new();
    if (!p || !ctx) {
        dn_free(p);
        dn_ctx_free(ctx);
        return DN_ERR_NOMEM;
    }
    p->n = d->n;
    dn_ctx_set_grad(ctx, false);
    dn_model_set_training(m, false);
    int64_t xshape[DN_MAX_DIMS + 1];
    memcpy(xshape + 1, d->shape, (size_t)d->ndim * sizeof(int64_t));
    dn_status s = DN_OK;
    for (int64_t at = 0; at < d->n; at += 256) {
        int64_t nb = d->n - at < 256 ? d->n - at : 256;
        dn_ctx_reset(ctx);
        xshape[0] = nb;
        dn_tensor *x, *y;
        if ((s = dn_tensor_new(ctx, d->ndim + 1, xshape, &x))) break;
        dn_dataset_get(d, at, nb, dn_tensor_data(x));
        y = dn_model_forward(m, ctx, x);
        if (y && softmax) y = dn_softmax(ctx, y, -1);
        if (y && sigmoid) y = dn_sigmoid(ctx, y);
        if (y && !dn_tensor_data(y)) y = dn_contiguous(ctx, y);
        if (!y) {
            s = dn_ctx_status(ctx) ? dn_ctx_status(ctx) : DN_ERR_STATE;
            dn_error_prefix("predicting samples %lld..%lld", (long long)at, (long long)(at + nb - 1));
            break;
        }
        /* [N, T, K]: a prediction per time step (a class per step); anything else: one per sample */
        int64_t steps = dn_tensor_ndim(y) == 3 ? dn_tensor_dim(y, 1) : 1;
        int64_t k = dn_tensor_numel(y) / nb / steps;
        if (!p->classes) {
            p->steps = steps;
            p->outputs = k;
            p->classes = dn_alloc((size_t)(d->n * steps) * sizeof *p->classes);
            p->values = dn_alloc((size_t)(d->n * steps * k) * sizeof *p->values);
            if (!p->classes || !p->values) {
                s = DN_ERR_NOMEM;
                break;
            }
        } else if (steps != p->steps || k != p->outputs) {
            s = dn_error(DN_ERR_SHAPE, "predictions change shape between batches");
            break;
        }
        const float *o = dn_tensor_data(y);
        memcpy(p->values + at * steps * k, o, (size_t)(nb * steps * k) * sizeof(float));
        for (int64_t i = 0; i < nb * steps; i++) {
            const float *row = o + i * k;
            int64_t best = 0;
            if (k == 1) best = row[0] > threshold;
            else
                for (int64_t j = 1; j < k; j++)
                    if (row[j] > row[best]) best = j;
            p->classes[at * steps + i] = best;
        }
    }
    dn_ctx_free(ctx);
    if (s) {
        dn_predictions_free(p);
        return s;
    }
    *out = p;
    return DN_OK;
}

/* ------------------------------------------------------------------ generation */

dn_status dn_run_generate(dn_run *r, const char *prime, int64_t length, double temperature, uint64_t seed, char *out,
                          int64_t *steps)
{
    if (!r || !prime || !out) return dn_error(DN_ERR_ARG, "dn_run_generate: run, prime and out must not be NULL");
    if (steps) *steps = 0;
    out[0] = '\0';
    if (length < 0 || !(temperature > 0) || !isfinite(temperature))
        return dn_error(DN_ERR_ARG, "dn_run_generate: length must not be negative and the temperature must be positive");
    dn_model *m = r->m;
    const dn_vocab *v = dn_model_vocab(m);
    if (!v->size) return dn_error(DN_ERR_ARG, "this is not a character model (it has no vocabulary)");
    int64_t n = (int64_t)strlen(prime);
    if (n == 0) return dn_error(DN_ERR_ARG, "the prime text is empty");
    for (int64_t i = 0; i < n; i++)
        if (v->index[(unsigned char)prime[i]] < 0)
            return dn_error(DN_ERR_ARG, "the prime's character 0x%02x does not occur in the training text",
                            (unsigned char)prime[i]);
    float *ids = dn_alloc((size_t)(n + length) * sizeof *ids);
    dn_ctx *ctx = dn_ctx_new();
    if (!ids || !ctx) {
        dn_free(ids);
        dn_ctx_free(ctx);
        return DN_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) ids[i] = (float)v->index[(unsigned char)prime[i]];
    int64_t in_shape[DN_MAX_DIMS];
    dn_model_input_shape(m, in_shape);
    int64_t window = in_shape[0], fed = 0, work = 0;
    /* Carrying the state makes each character one time step; a bidirectional layer needs the whole window */
    bool stream = dn_model_can_stream(m);
    dn_rng rng;
    dn_rng_seed(&rng, seed);
    dn_ctx_set_grad(ctx, false);
    dn_model_set_training(m, false);
    dn_model_set_streaming(m, stream);
    dn_status s = DN_OK;
    for (int64_t k = 0; k < length; k++, n++) {
        /* streaming: the characters not yet fed (the prime, then the last one drawn), in pieces no longer than
         * the model's window; otherwise (up to) the window of the most recent characters, from a zero state */
        dn_tensor *x, *y = NULL;
        do {
            int64_t first = stream ? fed : (n < window ? 0 : n - window);
            int64_t t = n - first < window ? n - first : window;
            fed = first + t;
            work += t;
            dn_ctx_reset(ctx);
            if ((s = dn_tensor_from(ctx, 2, (int64_t[]){1, t}, ids + first, &x))) break;
            y = dn_model_forward(m, ctx, x);
        } while (y && fed < n);
        if (s) break;
        if (y && !dn_tensor_data(y)) y = dn_contiguous(ctx, y);
        if (!y) {
            s = dn_ctx_status(ctx) ? dn_ctx_status(ctx) : DN_ERR_STATE;
            dn_error_prefix("generating character %lld", (long long)k + 1);
            break;
        }
        int64_t classes = dn_tensor_dim(y, -1);
        if (classes < v->size) {
            s = dn_error(DN_ERR_SHAPE, "the model has %lld outputs for a vocabulary of %d", (long long)classes, v->size);
            break;
        }
        /* the last step's logits */
        const float *logits = dn_tensor_data(y) + dn_tensor_numel(y) - classes;
        /* softmax(logits / T), then one draw */
        double mx = logits[0], sum = 0;
        float probs[256];
        for (int64_t j = 1; j < v->size; j++) mx = logits[j] > mx ? logits[j] : mx;
        for (int64_t j = 0; j < v->size; j++) sum += probs[j] = (float)exp((logits[j] - mx) / temperature);
        double u = dn_rng_uniform(&rng) * sum, acc = 0;
        int64_t pick = v->size - 1;
        for (int64_t j = 0; j < v->size; j++) {
            acc += probs[j];
            if (u < acc) {
                pick = j;
                break;
            }
        }
        ids[n] = (float)pick;
        out[k] = (char)v->bytes[pick];
        out[k + 1] = '\0';
    }
    dn_model_set_streaming(m, false);
    dn_ctx_free(ctx);
    dn_free(ids);
    if (steps) *steps = work;
    return s;
}
