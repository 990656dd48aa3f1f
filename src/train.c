/* The fit loop: minibatches, loss, backward, regularisation, clipping, optimiser step, validation, early
 * stopping and learning-rate schedules.  Everything that decides the next step's numbers is state that a
 * checkpoint saves (train_state.c), so a resumed run continues bit-identically. */
#include "train.h"
#include "dist/dist.h"
#include "kernels/threads.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

struct dn_trainer {
    dn_model *m;
    dn_train_config cfg;
    const dn_dataset *train, *val;
    dn_dataset *own_train, *own_val; /* made by a validation split */
    dn_batcher *batcher;
    dn_optim *opt;
    dn_schedule schedule;
    dn_ctx *ctx;
    float *xbuf, *ybuf;
    uint8_t *mask;        /* decay mask actually used (biases included when decay_bias) */
    int epochs_done;
    bool finished;
    double best;          /* best monitored value so far (NaN: none) */
    int bad_epochs;
    float *best_params;   /* copy of the parameters at the best epoch */
    float *best_buffers;  /* and of the buffers (batch-norm running statistics), so restore-best restores both */
    dn_batch_fn batch_fn;
    void *batch_user;
    bool dist;            /* one shard of a group of processes (dn_trainer_set_distributed) */
    grad_sync *sync;      /* its gradient all-reduce, made at the first distributed epoch */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ loss and targets */

/* dn_check_loss_name and dn_loss_target_kind read the registry's loss rows (registry.c). */

/* Builds the target tensor for a batch: class indices as they are, or one-hot rows (±1 for hinge) when the
 * model has several outputs and the loss compares dense vectors, or the values themselves for regression. */
static dn_tensor *make_target(dn_ctx *ctx, const dn_train_config *c, const float *y, int64_t n, int64_t ts,
                              int64_t outputs)
{
    dn_loss_target kind = dn_loss_target_kind(c->loss);
    dn_tensor *t = NULL;
    if (kind == DN_TARGET_INDEX) {
        if (dn_tensor_from(ctx, ts > 1 ? 2 : 1, (int64_t[]){n, ts}, y, &t)) return NULL;
        return t;
    }
    if (ts > 1) {
        dn_error(DN_ERR_ARG, "targets with %lld values per sample need a class-index loss (softmax_cross_entropy, "
                             "nll_loss, multi_margin_loss), not %s", (long long)ts, c->loss);
        return NULL;
    }
    int64_t shape[2] = {n, outputs};
    if (dn_tensor_new(ctx, 2, shape, &t)) return NULL;
    float lo = kind == DN_TARGET_SIGN ? -1.0f : 0.0f;
    if (outputs == 1) {
        for (int64_t i = 0; i < n; i++) t->data[i] = kind == DN_TARGET_SIGN ? (y[i] > 0 ? 1.0f : -1.0f) : y[i];
        return t;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (int64_t)y[i];
        for (int64_t j = 0; j < outputs; j++) t->data[i * outputs + j] = j == k ? 1.0f : lo;
        if (k < 0 || k >= outputs || (float)k != y[i]) {
            dn_error(DN_ERR_ARG, "label %g of sample %lld is not a class index below the model's %lld outputs",
                     (double)y[i], (long long)i, (long long)outputs);
            return NULL;
        }
    }
    return t;
}

dn_tensor *dn_apply_loss(dn_ctx *ctx, const dn_train_config *c, dn_tensor *out, const float *y, int64_t n, int64_t ts)
{
    if (!out) return NULL;
    /* values per sample and target (an empty shard of a spread batch has n = 0: from the shape then) */
    int64_t outputs = dn_tensor_numel(out) / (n ? n : 1) / (ts > 1 ? ts : 1);
    if (!n) {
        outputs = 1;
        for (int i = 1; i < out->ndim; i++) outputs *= out->shape[i];
        outputs /= ts > 1 ? ts : 1;
    }
    dn_tensor *target = make_target(ctx, c, y, n, ts, outputs);
    if (!target) {
        if (!ctx->status) ctx->status = DN_ERR_ARG;
        return NULL;
    }
    dn_tensor *pred = out;
    if (dn_loss_target_kind(c->loss) == DN_TARGET_DENSE && out->ndim != 2)
        pred = dn_reshape(ctx, out, 2, (int64_t[]){n, outputs});
    if (ts > 1) {
        /* a class per time step: [N, T, C] -> [N, C, T], the class axis second as torch's CrossEntropyLoss wants */
        if (out->ndim != 3 || out->shape[1] != ts) {
            if (!ctx->status)
                ctx->status = dn_error(DN_ERR_SHAPE, "%lld targets per sample need an output [N, %lld, classes], got %s",
                                       (long long)ts, (long long)ts, dn_tshape(out));
            return NULL;
        }
        pred = dn_contiguous(ctx, dn_transpose(ctx, out, 1, 2));
    }
    dn_tensor *in[2] = {pred, target};
    if (!strcmp(c->loss, "huber_loss")) {
        char attrs[64];
        snprintf(attrs, sizeof attrs, "delta=%.9g", (double)c->huber_delta);
        return dn_apply_named(ctx, c->loss, 2, in, attrs);
    }
    return dn_apply_named(ctx, c->loss, 2, in, NULL);
}

/* Correct predictions in a batch: argmax over outputs, or a threshold for one output (0.5 for
 * probabilities, 0 for logits and hinge scores). */
int64_t dn_count_correct(const dn_train_config *c, const dn_tensor *out, const float *y, int64_t n, int64_t *confusion,
                         int n_classes)
{
    int64_t outputs = dn_tensor_numel(out) / (n ? n : 1), correct = 0;
    const float *o = out->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t pred;
        if (outputs == 1) {
            float thr = !strcmp(c->loss, "bce_loss") ? 0.5f : 0.0f;
            pred = o[i] > thr ? 1 : 0;
        } else {
            pred = 0;
            for (int64_t j = 1; j < outputs; j++)
                if (o[i * outputs + j] > o[i * outputs + pred]) pred = j;
        }
        int64_t truth = (int64_t)y[i];
        if (!strcmp(c->loss, "hinge_loss") && outputs == 1) truth = y[i] > 0 ? 1 : 0;
        if (pred == truth) correct++;
        if (confusion && truth >= 0 && truth < n_classes && pred < n_classes) confusion[truth * n_classes + pred]++;
    }
    return correct;
}

/* ------------------------------------------------------------------ trainer */

void dn_trainer_free(dn_trainer *t)
{
    if (!t) return;
    dn_batcher_free(t->batcher);
    grad_sync_free(t->sync);
    dn_optim_free(t->opt);
    dn_ctx_free(t->ctx);
    dn_dataset_free(t->own_train);
    dn_dataset_free(t->own_val);
    dn_free(t->xbuf);
    dn_free(t->ybuf);
    dn_free(t->best_params);
    dn_free(t->best_buffers);
    dn_free(t->mask);
    dn_free(t);
}

dn_status dn_trainer_new(dn_model *m, const dn_train_config *config, const dn_dataset *train, const dn_dataset *val,
                         dn_trainer **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_trainer_new: out is NULL");
    *out = NULL;
    if (!m || !config || !train) return dn_error(DN_ERR_ARG, "dn_trainer_new: model, config and data must not be NULL");
    dn_status s = dn_check_loss_name(config->loss);
    if (s) return s;
    if (config->batch < 1) return dn_error(DN_ERR_ARG, "batch must be at least 1, got %lld", (long long)config->batch);
    if (config->epochs < 0) return dn_error(DN_ERR_ARG, "epochs must not be negative");
    if (config->validation < 0 || config->validation >= 1)
        return dn_error(DN_ERR_ARG, "validation must be a fraction in [0, 1), got %g", (double)config->validation);
    int nd;
    int64_t shape[DN_MAX_DIMS];
    bool same = train->ndim == m->in_ndim;
    for (int i = 0; same && i < m->in_ndim; i++) same = train->shape[i] == m->in_shape[i];
    if (!same)
        return dn_error(DN_ERR_SHAPE, "the data's samples are %s but the model takes %s",
                        dn_shape_str(train->ndim, train->shape), dn_shape_str(m->in_ndim, m->in_shape));
    if (train->n == 0) return dn_error(DN_ERR_ARG, "the training set is empty");
    dn_model_output_shape(m, &nd, shape);
    int64_t outputs = dn_dataset_target_size(train) > 1 ? shape[nd - 1] : dn_shape_numel(nd, shape);
    if (dn_loss_target_kind(config->loss) == DN_TARGET_INDEX && train->n_classes > outputs)
        return dn_error(DN_ERR_SHAPE, "the data has %d classes but the model has %lld outputs (for text: raise vocab in "
                                      "[embedding] and units in the last [dense])", train->n_classes, (long long)outputs);

    dn_trainer *t = dn_calloc(1, sizeof *t);
    if (!t) return DN_ERR_NOMEM;
    t->m = m;
    t->cfg = *config;
    if (!val && config->validation > 0) {
        s = dn_validation_split(train, config, &t->own_train, &t->own_val);
        if (s) goto fail;
        t->train = t->own_train;
        t->val = t->own_val;
    } else {
        t->train = train;
        t->val = val;
    }
    if (t->val && t->val->n == 0) t->val = NULL;
    s = dn_batcher_new(t->train, config->batch, config->shuffle, config->seed, &t->batcher);
    if (s) goto fail;
    size_t n = dn_model_param_count(m);
    t->mask = dn_alloc(n ? n : 1);
    if (!t->mask) { s = DN_ERR_NOMEM; goto fail; }
    if (n) memcpy(t->mask, dn_model_decay_mask(m), n);
    if (config->decay_bias) memset(t->mask, 1, n);
    s = dn_optim_new(&config->optim, n, t->mask, &t->opt);
    if (s) goto fail;
    t->ctx = dn_ctx_new();
    if (t->ctx) dn_ctx_set_detect_anomaly(t->ctx, config->detect_anomaly);
    int64_t ss = dn_dataset_sample_size(t->train);
    t->xbuf = dn_alloc((size_t)(config->batch * ss) * sizeof(float));
    t->ybuf = dn_alloc((size_t)(config->batch * dn_dataset_target_size(t->train)) * sizeof(float));
    if (!t->ctx || !t->xbuf || !t->ybuf) { s = DN_ERR_NOMEM; goto fail; }
    t->schedule = config->schedule;
    t->schedule.base_lr = config->optim.lr;
    t->schedule.current_lr = config->optim.lr;
    if (t->schedule.kind == DN_SCHED_COSINE && t->schedule.t_max <= 0) t->schedule.t_max = config->epochs;
    t->best = NAN;
    *out = t;
    return DN_OK;
fail:
    dn_trainer_free(t);
    return s;
}

void dn_trainer_set_distributed(dn_trainer *t, bool on)
{
    if (t) t->dist = on && dist_active();
}

void dn_trainer_set_batch_callback(dn_trainer *t, dn_batch_fn fn, void *user)
{
    t->batch_fn = fn;
    t->batch_user = user;
}

int dn_trainer_epochs_done(const dn_trainer *t) { return t->epochs_done; }
bool dn_trainer_finished(const dn_trainer *t) { return t->finished || t->epochs_done >= t->cfg.epochs; }

/* L1 and L2 penalties enter through their gradients: d/dw (l2/2 w^2) = l2 w, d/dw (l1 |w|) = l1 sign(w). */
static void add_penalty_grads(dn_trainer *t)
{
    const dn_train_config *c = &t->cfg;
    if (c->l1 == 0 && c->l2 == 0) return;
    float *w = dn_model_params(t->m), *g = dn_model_grads(t->m);
    size_t n = dn_model_param_count(t->m);
    for (size_t i = 0; i < n; i++) {
        if (!t->mask[i]) continue;
        /* fused multiply-adds, rounded as torch's add_(p, alpha=wd) is: l2 then equals SGD's weight_decay exactly */
        if (c->l2 != 0) g[i] = fmaf(c->l2, w[i], g[i]);
        if (c->l1 != 0) g[i] = fmaf(c->l1, w[i] > 0 ? 1.0f : (w[i] < 0 ? -1.0f : 0.0f), g[i]);
    }
}

static bool improved(const dn_trainer *t, double v)
{
    if (isnan(t->best)) return !isnan(v);
    if (t->cfg.monitor == DN_MONITOR_VAL_ACCURACY) return v > t->best + t->cfg.min_delta;
    return v < t->best - t->cfg.min_delta;
}

/* The trainer's thread count ([train] threads, --threads) holds while it works and is put back after, so a trainer
 * never changes what other code in the process gets. */
dn_status dn_validation_split(const dn_dataset *d, const dn_train_config *c, dn_dataset **train, dn_dataset **val)
{
    return dn_dataset_split(d, c->validation, c->seed ^ 0x5eedULL, train, val);
}

static int threads_enter(int want)
{
    const int old = dn_threads_requested();
    if (want > 0) dn_set_threads(want);
    return old;
}

static dn_status trainer_epoch(dn_trainer *t, dn_epoch_stats *st);
static dn_status evaluate(dn_model *m, const dn_train_config *c, const dn_dataset *d, dn_eval_result *r,
                          int64_t *confusion, bool sharded);

/* Rank r of k takes samples [floor(r n / k), floor((r + 1) n / k)) of a global batch of n. */
static int64_t shard_start(int64_t n, int r, int k) { return n * (int64_t)r / k; }

dn_status dn_trainer_epoch(dn_trainer *t, dn_epoch_stats *st)
{
    const int old = threads_enter(t ? t->cfg.threads : 0);
    dn_status s = trainer_epoch(t, st);
    dn_set_threads(old);
    return s;
}

static dn_status trainer_epoch(dn_trainer *t, dn_epoch_stats *st)
{
    if (!t || !st) return dn_error(DN_ERR_ARG, "dn_trainer_epoch: trainer and stats must not be NULL");
    memset(st, 0, sizeof *st);
    if (dn_trainer_finished(t)) return dn_error(DN_ERR_STATE, "training has finished (%d epochs done)", t->epochs_done);
    dn_model *m = t->m;
    const dn_train_config *c = &t->cfg;
    int epoch = t->epochs_done; /* 0-based */
    float lr = dn_schedule_lr(&t->schedule, epoch);
    dn_optim_set_lr(t->opt, lr);
    dn_model_set_training(m, true);
    double start = now_seconds(), loss_sum = 0, comm = 0;
    int64_t seen = 0, correct = 0, nb, b = 0;
    const bool dist = t->dist && dist_active();
    const int rank = dist ? dn_dist_rank() : 0, ranks = dist ? dn_dist_size() : 1;
    if (dist && !t->sync) {
        dn_status s = grad_sync_new(m, &t->sync);
        if (s) return s;
    }
    const int64_t ss = dn_dataset_sample_size(t->train);
    int64_t batches = (t->train->n + c->batch - 1) / c->batch, ts = dn_dataset_target_size(t->train);
    int64_t xshape[DN_MAX_DIMS];
    xshape[0] = 0;
    memcpy(xshape + 1, t->train->shape, (size_t)t->train->ndim * sizeof(int64_t));
    dn_batcher_reset(t->batcher);
    dn_model_reset_state(m); /* truncated BPTT restarts at each epoch */
    while ((nb = dn_batcher_next(t->batcher, t->xbuf, t->ybuf)) > 0) {
        /* every process drew the same global batch (same seed); this one computes its shard [lo, lo + nl) */
        int64_t lo = dist ? shard_start(nb, rank, ranks) : 0;
        int64_t nl = dist ? shard_start(nb, rank + 1, ranks) - lo : nb;
        dn_ctx_reset(t->ctx);
        if (dist) {
            t->ctx->replica = dist_replica();
            t->ctx->shard_offset = lo;
            t->ctx->global_batch = nb;
        }
        /* an empty shard runs too: the collective sums inside (batch norm's statistics) need every process */
        xshape[0] = nl;
        dn_tensor *x;
        dn_status s = dn_tensor_from(t->ctx, t->train->ndim + 1, xshape, t->xbuf + lo * ss, &x);
        if (s) return s;
        dn_tensor *out = dn_model_forward(m, t->ctx, x);
        dn_tensor *loss = dn_apply_loss(t->ctx, c, out, t->ybuf + lo * ts, nl, ts);
        if (!loss) {
            dn_error_prefix("epoch %d, batch %lld", epoch + 1, (long long)b + 1);
            return dn_ctx_status(t->ctx) ? dn_ctx_status(t->ctx) : DN_ERR_STATE;
        }
        float lv = loss->data[0];
        if (!isfinite(lv))
            return dn_error(DN_ERR_NUMERIC, "epoch %d, batch %lld: the loss is %g — training diverged (lower the "
                                            "learning rate, or clip gradients with clip_norm)",
                            epoch + 1, (long long)b + 1, (double)lv);
        dn_model_zero_grad(m);
        if (dist) {
            /* backward starts each bucket's sum as soon as its gradients are final; then wait for all of them */
            grad_sync_begin(t->sync, t->ctx);
            s = dn_backward_hooked(t->ctx, loss, grad_sync_node, t->sync);
            if (!s) s = grad_sync_finish(t->sync, &comm);
        } else {
            s = dn_backward(t->ctx, loss);
        }
        if (s) return s;
        /* from here on every process holds the same summed gradient, so the same step follows everywhere */
        add_penalty_grads(t);
        if (c->clip_value > 0) dn_clip_grad_value(dn_model_grads(m), dn_model_param_count(m), c->clip_value);
        if (c->clip_norm > 0) dn_clip_grad_norm(dn_model_grads(m), dn_model_param_count(m), c->clip_norm);
        dn_optim_step(t->opt, dn_model_params(m), dn_model_grads(m));
        /* a shard's loss is its part of the global batch's mean: lv * nb sums its samples' terms */
        loss_sum += (double)lv * (double)nb;
        if (t->train->n_classes > 0 && nl > 0) correct += dn_count_correct(c, out, t->ybuf + lo * ts, nl * ts, NULL, 0);
        seen += nl;
        b++;
        if (t->batch_fn) t->batch_fn(t->batch_user, epoch + 1, b, batches, seen ? loss_sum / (double)seen : 0);
    }
    if (dist) {
        double sums[3] = {loss_sum, (double)correct, (double)seen};
        dn_status s = dist_sum(sums, 3);
        if (s) return s;
        loss_sum = sums[0];
        correct = (int64_t)sums[1];
        seen = (int64_t)sums[2];
    }
    t->epochs_done++;
    st->epoch = t->epochs_done;
    st->epochs = c->epochs;
    st->lr = lr;
    st->train_loss = seen ? loss_sum / (double)seen : NAN;
    st->train_accuracy = t->train->n_classes > 0 && seen ? (double)correct / (double)(seen * ts) : NAN;
    st->seconds = now_seconds() - start;
    st->samples_per_sec = st->seconds > 0 ? (double)seen / st->seconds : 0;
    st->comm_seconds = comm;
    st->steps = b;
    st->val_loss = st->val_accuracy = NAN;
    double monitored = st->train_loss;
    if (t->val) {
        dn_eval_result r;
        dn_status s = evaluate(m, c, t->val, &r, NULL, dist); /* the trainer's thread count holds already */
        if (s) return s;
        st->val_loss = r.loss;
        st->val_accuracy = r.accuracy;
        monitored = c->monitor == DN_MONITOR_VAL_ACCURACY ? r.accuracy : r.loss;
        if (improved(t, monitored)) {
            t->best = monitored;
            t->bad_epochs = 0;
            st->improved = true;
            s = dn_trainer_set_best(t, dn_model_params(m), m->bufdata);
            if (s) return s;
        } else {
            t->bad_epochs++;
        }
        if (c->patience > 0 && t->bad_epochs >= c->patience) {
            st->stop = true;
            t->finished = true;
        }
    } else {
        st->improved = true;
    }
    if (t->schedule.kind == DN_SCHED_PLATEAU) dn_schedule_observe(&t->schedule, (float)(t->val ? st->val_loss : st->train_loss));
    if (dist) {
        /* the sums give every process the same bits, so the weights must agree: check it, cheaply, every epoch */
        bool same;
        dn_status s = dist_all_equal(dn_model_fingerprint(m), &same);
        if (s) return s;
        if (!same)
            return dn_error(DN_ERR_STATE, "after epoch %d the weights or buffers differ between the %d processes "
                                          "(fingerprint %016llx on rank %d): the gradient sums or the batch-norm "
                                          "statistics were not the same bits everywhere",
                            epoch + 1, ranks, (unsigned long long)dn_model_fingerprint(m), rank);
    }
    return DN_OK;
}

void dn_trainer_restore_best(dn_trainer *t)
{
    if (!t || !t->cfg.restore_best || !t->best_params || !t->val) return;
    memcpy(dn_model_params(t->m), t->best_params, dn_model_param_count(t->m) * sizeof(float));
    /* the running statistics belong to the weights they were gathered with */
    if (t->best_buffers && t->m->n_bufdata) memcpy(t->m->bufdata, t->best_buffers, t->m->n_bufdata * sizeof(float));
}

/* ------------------------------------------------------------------ state for checkpoints */

void dn_trainer_get_state(const dn_trainer *t, dn_trainer_state *st)
{
    memset(st, 0, sizeof *st);
    st->epochs_done = t->epochs_done;
    st->finished = t->finished;
    st->best = t->best;
    st->bad_epochs = t->bad_epochs;
    st->optim_kind = t->cfg.optim.kind;
    st->optim_step = dn_optim_get_step(t->opt);
    st->batcher_rng = *dn_batcher_rng(t->batcher);
    st->model_rng = t->m->rng;
    st->sched_best = t->schedule.best;
    st->sched_lr = t->schedule.current_lr;
    st->sched_bad_epochs = t->schedule.bad_epochs;
    st->sched_cooldown_left = t->schedule.cooldown_left;
}

void dn_trainer_set_state(dn_trainer *t, const dn_trainer_state *st)
{
    dn_optim_set_step(t->opt, st->optim_step);
    t->epochs_done = st->epochs_done;
    t->finished = st->finished;
    t->best = st->best;
    t->bad_epochs = st->bad_epochs;
    *dn_batcher_rng(t->batcher) = st->batcher_rng;
    t->m->rng = st->model_rng;
    t->schedule.best = st->sched_best;
    t->schedule.current_lr = st->sched_lr;
    t->schedule.bad_epochs = st->sched_bad_epochs;
    t->schedule.cooldown_left = st->sched_cooldown_left;
}

dn_model *dn_trainer_model(const dn_trainer *t) { return t->m; }
dn_optim *dn_trainer_optim(const dn_trainer *t) { return t->opt; }
const float *dn_trainer_best_params(const dn_trainer *t) { return t->best_params; }
const float *dn_trainer_best_buffers(const dn_trainer *t) { return t->best_buffers; }

dn_status dn_trainer_set_best(dn_trainer *t, const float *params, const float *buffers)
{
    size_t n = dn_model_param_count(t->m), nb = t->m->n_bufdata;
    if (!t->best_params) t->best_params = dn_alloc(n ? n * sizeof(float) : 1);
    if (!t->best_params) return DN_ERR_NOMEM;
    if (n) memcpy(t->best_params, params, n * sizeof(float));
    if (!buffers || !nb) return DN_OK;
    if (!t->best_buffers) t->best_buffers = dn_alloc(nb * sizeof(float));
    if (!t->best_buffers) return DN_ERR_NOMEM;
    memcpy(t->best_buffers, buffers, nb * sizeof(float));
    return DN_OK;
}

/* ------------------------------------------------------------------ evaluation */

dn_status dn_evaluate(dn_model *m, const dn_train_config *c, const dn_dataset *d, dn_eval_result *r, int64_t *confusion)
{
    const int old = threads_enter(c ? c->threads : 0);
    dn_status s = evaluate(m, c, d, r, confusion, false);
    dn_set_threads(old);
    return s;
}

dn_status dist_evaluate(dn_model *m, const dn_train_config *c, const dn_dataset *d, dn_eval_result *r,
                        int64_t *confusion)
{
    const int old = threads_enter(c ? c->threads : 0);
    dn_status s = evaluate(m, c, d, r, confusion, dist_active());
    dn_set_threads(old);
    return s;
}

/* sharded: this process evaluates its block of d ([floor(r n / k), floor((r + 1) n / k))) and the loss sums,
 * counts and confusion matrices of all processes are added (collective: every process calls it, even with no
 * samples of its own). */
static dn_status evaluate(dn_model *m, const dn_train_config *c, const dn_dataset *d, dn_eval_result *r,
                          int64_t *confusion, bool sharded)
{
    if (!m || !c || !d || !r) return dn_error(DN_ERR_ARG, "dn_evaluate: model, config, data and result must not be NULL");
    memset(r, 0, sizeof *r);
    dn_status s = dn_check_loss_name(c->loss);
    if (s) return s;
    bool same = d->ndim == m->in_ndim;
    for (int i = 0; same && i < m->in_ndim; i++) same = d->shape[i] == m->in_shape[i];
    if (!same)
        return dn_error(DN_ERR_SHAPE, "the data's samples are %s but the model takes %s", dn_shape_str(d->ndim, d->shape),
                        dn_shape_str(m->in_ndim, m->in_shape));
    int64_t batch = c->batch > 0 ? (c->batch < 256 ? 256 : c->batch) : 256;
    int64_t ts = dn_dataset_target_size(d);
    if (d->n > 0 && (!d->y || (!d->x && !d->x_bytes && dn_dataset_sample_size(d) > 0)))
        return dn_error(DN_ERR_ARG, "dn_evaluate: data set of %lld samples has no x or y array", (long long)d->n);
    dn_ctx *ctx = dn_ctx_new();
    if (!ctx) return DN_ERR_NOMEM;
    dn_ctx_set_grad(ctx, false);
    bool was_training = m->training;
    dn_model_set_training(m, false);
    if (confusion && d->n_classes > 0) memset(confusion, 0, (size_t)d->n_classes * (size_t)d->n_classes * sizeof(int64_t));
    double loss_sum = 0;
    int64_t correct = 0;
    int64_t xshape[DN_MAX_DIMS];
    memcpy(xshape + 1, d->shape, (size_t)d->ndim * sizeof(int64_t));
    int64_t first = 0, end = d->n;
    if (sharded) {
        first = shard_start(d->n, dn_dist_rank(), dn_dist_size());
        end = shard_start(d->n, dn_dist_rank() + 1, dn_dist_size());
    }
    for (int64_t at = first; at < end; at += batch) {
        int64_t nb = end - at < batch ? end - at : batch;
        dn_ctx_reset(ctx);
        xshape[0] = nb;
        dn_tensor *x;
        s = dn_tensor_new(ctx, d->ndim + 1, xshape, &x);
        if (s) break;
        dn_dataset_get(d, at, nb, x->data); /* floats or bytes, converted a batch at a time */
        dn_tensor *out = dn_model_forward(m, ctx, x);
        dn_tensor *loss = dn_apply_loss(ctx, c, out, d->y + at * ts, nb, ts);
        if (!loss) {
            s = dn_ctx_status(ctx) ? dn_ctx_status(ctx) : DN_ERR_STATE;
            break;
        }
        loss_sum += (double)loss->data[0] * (double)nb;
        if (d->n_classes > 0) correct += dn_count_correct(c, out, d->y + at * ts, nb * ts, confusion, d->n_classes);
    }
    dn_model_set_training(m, was_training);
    dn_ctx_free(ctx);
    if (s) return s;
    if (sharded) {
        /* the counts are exact in doubles (below 2^53); the confusion matrix travels with them */
        size_t k = confusion && d->n_classes > 0 ? (size_t)d->n_classes * (size_t)d->n_classes : 0;
        double *sums = dn_alloc((2 + k) * sizeof(double));
        if (!sums) return DN_ERR_NOMEM;
        sums[0] = loss_sum;
        sums[1] = (double)correct;
        for (size_t i = 0; i < k; i++) sums[2 + i] = (double)confusion[i];
        s = dist_sum(sums, 2 + k);
        loss_sum = sums[0];
        correct = (int64_t)sums[1];
        for (size_t i = 0; i < k; i++) confusion[i] = (int64_t)sums[2 + i];
        dn_free(sums);
        if (s) return s;
    }
    r->n = d->n;
    r->loss = d->n ? loss_sum / (double)d->n : NAN;
    r->accuracy = d->n_classes > 0 && d->n ? (double)correct / (double)(d->n * ts) : NAN;
    return DN_OK;
}
