/* A training checkpoint: the model, the optimiser's buffers and the trainer's state (epochs, early stopping, the
 * schedule, the generators), so that a resumed run ends bit-identical to an uninterrupted one.  Floor 7: it knows
 * the trainer and writes through the checkpoint format of floor 6 (io/checkpoint.h). */
#include "io/checkpoint.h"
#include "train.h"

#include <stdlib.h>

dn_status dn_trainer_save(const dn_trainer *t, const char *path)
{
    if (!t || !path) return dn_error(DN_ERR_ARG, "dn_trainer_save: trainer and path must not be NULL");
    const dn_model *m = dn_trainer_model(t);
    dn_optim *opt = dn_trainer_optim(t);
    dn_trainer_state ts;
    dn_trainer_get_state(t, &ts);
    int n_state = dn_optim_state_count(opt);
    dn_st_entry *e = dn_calloc((size_t)m->n_tensors + (size_t)m->n_buffers + (size_t)n_state + 5, sizeof *e);
    char (*names)[64] = dn_calloc((size_t)n_state + 1, 64);
    if (!e || !names) {
        dn_free(e);
        dn_free(names);
        return DN_ERR_NOMEM;
    }
    int n = dn_ckpt_param_entries(m, e);
    int64_t np = (int64_t)dn_model_param_count(m);
    for (int i = 0; i < n_state; i++) {
        snprintf(names[i], 64, "optim.%s", dn_optim_state_name(opt, i));
        e[n].name = names[i];
        e[n].ndim = 1;
        e[n].shape[0] = np;
        e[n].data = dn_optim_state_data(opt, i);
        n++;
    }
    const float *best = dn_trainer_best_params(t), *best_buf = dn_trainer_best_buffers(t);
    if (best) {
        e[n].name = "best.params";
        e[n].ndim = 1;
        e[n].shape[0] = np;
        e[n].data = (float *)best;
        n++;
    }
    if (best && best_buf && m->n_bufdata) {
        e[n].name = "best.buffers";
        e[n].ndim = 1;
        e[n].shape[0] = (int64_t)m->n_bufdata;
        e[n].data = (float *)best_buf;
        n++;
    }
    dn_ckpt_meta ml = {0};
    char rb[40], rm[40];
    dn_ckpt_rng_text(&ts.batcher_rng, rb, sizeof rb);
    dn_ckpt_rng_text(&ts.model_rng, rm, sizeof rm);
    dn_ckpt_meta_add(&ml, "format", "%s", DN_CKPT_FORMAT);
    dn_ckpt_meta_add(&ml, "epochs_done", "%d", ts.epochs_done);
    dn_ckpt_meta_add(&ml, "finished", "%d", ts.finished ? 1 : 0);
    dn_ckpt_meta_add(&ml, "best", "%.17g", ts.best);
    dn_ckpt_meta_add(&ml, "bad_epochs", "%d", ts.bad_epochs);
    dn_ckpt_meta_add(&ml, "optimizer", "%s", dn_optim_kind_name(ts.optim_kind));
    dn_ckpt_meta_add(&ml, "optim_step", "%lld", (long long)ts.optim_step);
    dn_ckpt_meta_add(&ml, "batcher_rng", "%s", rb);
    dn_ckpt_meta_add(&ml, "model_rng", "%s", rm);
    dn_ckpt_meta_add(&ml, "sched_best", "%.9g", (double)ts.sched_best);
    dn_ckpt_meta_add(&ml, "sched_lr", "%.9g", (double)ts.sched_lr);
    dn_ckpt_meta_add(&ml, "sched_bad_epochs", "%d", ts.sched_bad_epochs);
    dn_ckpt_meta_add(&ml, "sched_cooldown_left", "%d", ts.sched_cooldown_left);
    char vocab[520];
    dn_ckpt_vocab_text(m, vocab, sizeof vocab);
    const char *keys[36], *vals[36];
    for (int i = 0; i < ml.n; i++) {
        keys[i] = ml.keys[i];
        vals[i] = ml.vptr[i];
    }
    int nm = ml.n;
    keys[nm] = "vocab";
    vals[nm] = vocab;
    nm++;
    char *sums = dn_ckpt_checksums_text(e, n);
    if (!sums) {
        dn_free(e);
        dn_free(names);
        return DN_ERR_NOMEM;
    }
    keys[nm] = "checksums";
    vals[nm] = sums;
    nm++;
    if (m->cfg_text) {
        keys[nm] = "cfg";
        vals[nm] = m->cfg_text;
        nm++;
    }
    dn_status s = dn_st_write(path, n, e, nm, keys, vals);
    dn_free(sums);
    dn_free(e);
    dn_free(names);
    return s;
}

static dn_status meta_int(const dn_st_file *f, const char *path, const char *key, long long *v)
{
    const char *text = dn_st_meta(f, key);
    char *end;
    if (!text) return dn_error(DN_ERR_FORMAT, "%s: metadata '%s' is missing (not a training checkpoint?)", path, key);
    *v = strtoll(text, &end, 10);
    if (end == text || *end) return dn_error(DN_ERR_FORMAT, "%s: metadata '%s' = '%s' is not an integer", path, key, text);
    return DN_OK;
}

static dn_status meta_double(const dn_st_file *f, const char *path, const char *key, double *v)
{
    const char *text = dn_st_meta(f, key);
    char *end;
    if (!text) return dn_error(DN_ERR_FORMAT, "%s: metadata '%s' is missing (not a training checkpoint?)", path, key);
    *v = strtod(text, &end);
    if (end == text || *end) return dn_error(DN_ERR_FORMAT, "%s: metadata '%s' = '%s' is not a number", path, key, text);
    return DN_OK;
}

dn_status dn_trainer_resume(dn_trainer *t, const char *path)
{
    if (!t || !path) return dn_error(DN_ERR_ARG, "dn_trainer_resume: trainer and path must not be NULL");
    dn_st_file *f = NULL;
    dn_status s = dn_ckpt_open(path, &f);
    if (s) return s;
    dn_model *m = dn_trainer_model(t);
    dn_optim *opt = dn_trainer_optim(t);
    dn_trainer_state ts;
    dn_trainer_get_state(t, &ts);
    long long epochs = 0, finished = 0, bad = 0, step = 0, sbad = 0, scool = 0;
    double best = 0, sbest = 0, slr = 0;
    dn_rng rb, rm;
    const char *fmt = dn_st_meta(f, "format"), *optname = dn_st_meta(f, "optimizer");
    int64_t np = (int64_t)dn_model_param_count(m);
    if (!fmt || strcmp(fmt, DN_CKPT_FORMAT)) {
        s = dn_error(DN_ERR_FORMAT, "%s: not a dendrite checkpoint (format '%s', expected '%s')", path, fmt ? fmt : "none",
                     DN_CKPT_FORMAT);
        goto done;
    }
    if ((s = meta_int(f, path, "epochs_done", &epochs)) || (s = meta_int(f, path, "finished", &finished)) ||
        (s = meta_int(f, path, "bad_epochs", &bad)) || (s = meta_int(f, path, "optim_step", &step)) ||
        (s = meta_int(f, path, "sched_bad_epochs", &sbad)) || (s = meta_int(f, path, "sched_cooldown_left", &scool)) ||
        (s = meta_double(f, path, "best", &best)) || (s = meta_double(f, path, "sched_best", &sbest)) ||
        (s = meta_double(f, path, "sched_lr", &slr)) || (s = dn_ckpt_rng_parse(path, dn_st_meta(f, "batcher_rng"), &rb)) ||
        (s = dn_ckpt_rng_parse(path, dn_st_meta(f, "model_rng"), &rm)))
        goto done;
    if (!optname || strcmp(optname, dn_optim_kind_name(ts.optim_kind))) {
        s = dn_error(DN_ERR_FORMAT, "%s: the checkpoint was trained with optimizer '%s', this run uses '%s'", path,
                     optname ? optname : "none", dn_optim_kind_name(ts.optim_kind));
        goto done;
    }
    if (epochs < 0 || epochs > 1000000 || step < 0) {
        s = dn_error(DN_ERR_FORMAT, "%s: training state out of range (epochs_done %lld, step %lld)", path, epochs, step);
        goto done;
    }
    /* check every optimiser buffer before touching anything */
    int n_state = dn_optim_state_count(opt);
    for (int i = 0; i < n_state; i++) {
        char name[64];
        snprintf(name, sizeof name, "optim.%s", dn_optim_state_name(opt, i));
        const dn_st_entry *e = dn_st_find(f, name);
        if (!e || e->ndim != 1 || e->shape[0] != np) {
            s = dn_error(DN_ERR_FORMAT, "%s: optimiser state '%s' is missing or has the wrong size", path, name);
            goto done;
        }
    }
    const dn_st_entry *bp = dn_st_find(f, "best.params"), *bb = dn_st_find(f, "best.buffers");
    if (bp && (bp->ndim != 1 || bp->shape[0] != np)) {
        s = dn_error(DN_ERR_FORMAT, "%s: best.params has the wrong size", path);
        goto done;
    }
    /* best.buffers came later: a checkpoint without it restores the parameters only, as it did */
    if (bb && (bb->ndim != 1 || bb->shape[0] != (int64_t)m->n_bufdata)) {
        s = dn_error(DN_ERR_FORMAT, "%s: best.buffers has the wrong size", path);
        goto done;
    }
    if ((s = dn_ckpt_load_params(m, f, path))) goto done;
    if (bp && (s = dn_trainer_set_best(t, bp->data, bb ? bb->data : NULL))) goto done;
    for (int i = 0; i < n_state; i++) {
        char name[64];
        snprintf(name, sizeof name, "optim.%s", dn_optim_state_name(opt, i));
        memcpy(dn_optim_state_data(opt, i), dn_st_find(f, name)->data, (size_t)np * sizeof(float));
    }
    ts.optim_step = step;
    ts.epochs_done = (int)epochs;
    ts.finished = finished != 0;
    ts.best = best;
    ts.bad_epochs = (int)bad;
    ts.batcher_rng = rb;
    ts.model_rng = rm;
    ts.sched_best = (float)sbest;
    ts.sched_lr = (float)slr;
    ts.sched_bad_epochs = (int)sbad;
    ts.sched_cooldown_left = (int)scool;
    dn_trainer_set_state(t, &ts);
done:
    dn_st_free(f);
    return s;
}
