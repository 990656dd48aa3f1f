/* Checkpoints: a safetensors file holding the parameters (by name: "layers.0.weight"), the optimiser's
 * state ("optim.exp_avg", ...), the best weights seen ("best.params") and, in __metadata__, the model's
 * cfg text and the training state (epoch, step, generators, early-stopping and schedule state).
 * PyTorch users read the weights with safetensors.torch.load_file; dendrite rebuilds the model from the
 * cfg and resumes. */
#include "io/safetensors.h"
#include "train.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#define FORMAT_TAG "dendrite-checkpoint/1"

/* CRC-32 (IEEE, as zlib's) of a tensor's bytes: stored per tensor in the metadata so that a flipped bit
 * anywhere in the data is reported instead of trained on. */
static uint32_t crc32_of(const void *data, size_t n)
{
    static uint32_t table[256];
    static bool ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* "name=crc;name=crc;..." for the first n entries (heap string, NULL when out of memory). */
static char *checksums_text(const dn_st_entry *e, int n)
{
    size_t size = 1;
    for (int i = 0; i < n; i++) size += strlen(e[i].name) + 10;
    char *text = dn_alloc(size);
    if (!text) return NULL;
    size_t at = 0;
    text[0] = '\0';
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) numel *= e[i].shape[d];
        at += (size_t)snprintf(text + at, size - at, "%s=%08" PRIx32 ";", e[i].name,
                               crc32_of(e[i].data, (size_t)numel * sizeof(float)));
    }
    return text;
}

/* Checks every tensor against the stored checksums (files without them, e.g. written by other tools, pass). */
static dn_status verify_checksums(const dn_st_file *f, const char *path)
{
    const char *text = dn_st_meta(f, "checksums");
    if (!text) return DN_OK;
    for (int i = 0; i < dn_st_count(f); i++) {
        const dn_st_entry *e = dn_st_at(f, i);
        size_t len = strlen(e->name);
        const char *p = text, *hit = NULL;
        while ((p = strstr(p, e->name)) != NULL) {
            if ((p == text || p[-1] == ';') && p[len] == '=') {
                hit = p + len + 1;
                break;
            }
            p += len;
        }
        if (!hit)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' has no checksum although the file has checksums (the file "
                                           "was altered)", path, e->name);
        char *end;
        unsigned long want = strtoul(hit, &end, 16);
        uint32_t got = crc32_of(e->data, (size_t)dn_st_numel(e) * sizeof(float));
        if (*end != ';' || (uint32_t)want != got)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' fails its checksum (stored %08lx, data %08" PRIx32 "): the file is "
                                           "damaged; use an earlier checkpoint", path, e->name, want, got);
    }
    return DN_OK;
}
#define MAX_CKPT_BYTES ((uint64_t)4 << 30)

typedef struct meta_list {
    int n;
    const char *keys[32];
    char vals[32][96];
    const char *vptr[32];
} meta_list;

static void meta_add(meta_list *l, const char *key, const char *fmt, ...) DN_PRINTF(3, 4);
static void meta_add(meta_list *l, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->vals[l->n], sizeof l->vals[0], fmt, ap);
    va_end(ap);
    l->keys[l->n] = key;
    l->vptr[l->n] = l->vals[l->n];
    l->n++;
}

static void rng_text(const dn_rng *r, char *buf, size_t size)
{
    snprintf(buf, size, "%08" PRIx32 "%08" PRIx32 "%08" PRIx32 "%08" PRIx32, r->s[0], r->s[1], r->s[2], r->s[3]);
}

static dn_status rng_parse(const char *path, const char *text, dn_rng *r)
{
    if (!text || strlen(text) != 32) return dn_error(DN_ERR_FORMAT, "%s: generator state is missing or malformed", path);
    for (int i = 0; i < 4; i++) {
        char part[9];
        memcpy(part, text + 8 * i, 8);
        part[8] = '\0';
        char *end;
        unsigned long v = strtoul(part, &end, 16);
        if (*end) return dn_error(DN_ERR_FORMAT, "%s: generator state '%s' is not hexadecimal", path, text);
        r->s[i] = (uint32_t)v;
    }
    return DN_OK;
}

/* Parameters and buffers of m as safetensors entries (the first n entries of e), then the input normalisation
 * ("input.mean", "input.std") when the model has one: at most n_tensors + n_buffers + 2 entries. */
static int param_entries(const dn_model *m, dn_st_entry *e)
{
    int n = 0;
    for (int k = 0; k < 2; k++) {
        const dn_param *list = k ? m->buffers : m->tensors;
        int count = k ? m->n_buffers : m->n_tensors;
        for (int i = 0; i < count; i++, n++) {
            e[n].name = list[i].name;
            e[n].ndim = list[i].t.ndim;
            memcpy(e[n].shape, list[i].t.shape, sizeof e[n].shape);
            e[n].data = list[i].t.data;
        }
    }
    if (m->in_stats_n > 0) {
        const char *names[2] = {"input.mean", "input.std"};
        float *data[2] = {m->in_mean, m->in_std};
        for (int k = 0; k < 2; k++, n++) {
            e[n].name = names[k];
            e[n].ndim = 1;
            e[n].shape[0] = m->in_stats_n;
            e[n].data = data[k];
        }
    }
    return n;
}

/* The input normalisation saved with the model, if the file has one (older checkpoints have none: fine). */
static dn_status load_input_stats(dn_model *m, const dn_st_file *f, const char *path)
{
    const dn_st_entry *mean = dn_st_find(f, "input.mean"), *sd = dn_st_find(f, "input.std");
    if (!mean && !sd) return dn_model_set_input_stats(m, 0, NULL, NULL);
    if (!mean || !sd || mean->ndim != 1 || sd->ndim != 1 || mean->shape[0] != sd->shape[0])
        return dn_error(DN_ERR_FORMAT, "%s: input.mean and input.std must both be there, of one length", path);
    int64_t n = mean->shape[0];
    for (int64_t j = 0; j < n; j++)
        if (!isfinite(mean->data[j]) || !isfinite(sd->data[j]) || sd->data[j] < 0)
            return dn_error(DN_ERR_NUMERIC, "%s: the input normalisation holds a bad value at feature %lld", path,
                            (long long)j);
    return dn_model_set_input_stats(m, n, mean->data, sd->data);
}

/* The vocabulary as hex digits, two per byte ("" when the model has none). */
static void vocab_text(const dn_model *m, char *buf, size_t size)
{
    size_t k = 0;
    for (int i = 0; i < m->vocab.size && k + 3 < size; i++, k += 2) snprintf(buf + k, 3, "%02x", m->vocab.bytes[i]);
    buf[k] = '\0';
}

static dn_status vocab_parse(dn_model *m, const char *path, const char *text)
{
    dn_vocab v;
    memset(&v, 0, sizeof v);
    for (int b = 0; b < 256; b++) v.index[b] = -1;
    size_t n = text ? strlen(text) : 0;
    if (n % 2 || n > 512) return dn_error(DN_ERR_FORMAT, "%s: metadata 'vocab' is malformed", path);
    for (size_t i = 0; i < n; i += 2) {
        char hex[3] = {text[i], text[i + 1], 0}, *end;
        if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]))
            return dn_error(DN_ERR_FORMAT, "%s: metadata 'vocab' is malformed", path);
        unsigned long b = strtoul(hex, &end, 16);
        if (*end || b > 255 || v.index[b] >= 0) return dn_error(DN_ERR_FORMAT, "%s: metadata 'vocab' is malformed", path);
        v.index[b] = (int16_t)v.size;
        v.bytes[v.size++] = (unsigned char)b;
    }
    dn_model_set_vocab(m, &v);
    return DN_OK;
}

dn_status dn_model_save(const dn_model *m, const char *path)
{
    if (!m || !path) return dn_error(DN_ERR_ARG, "dn_model_save: model and path must not be NULL");
    dn_st_entry *e = dn_calloc((size_t)m->n_tensors + (size_t)m->n_buffers + 3, sizeof *e);
    if (!e) return DN_ERR_NOMEM;
    int n = param_entries(m, e);
    char vocab[520];
    vocab_text(m, vocab, sizeof vocab);
    char *sums = checksums_text(e, n);
    if (!sums) {
        dn_free(e);
        return DN_ERR_NOMEM;
    }
    const char *keys[] = {"format", "vocab", "checksums", "cfg"};
    const char *vals[] = {FORMAT_TAG, vocab, sums, m->cfg_text ? m->cfg_text : ""};
    dn_status s = dn_st_write(path, n, e, m->cfg_text ? 4 : 3, keys, vals);
    dn_free(sums);
    dn_free(e);
    return s;
}

/* Copies every parameter and buffer of m from the file, checking names, shapes and values first. */
static dn_status load_params(dn_model *m, const dn_st_file *f, const char *path)
{
    for (int pass = 0; pass < 2; pass++) { /* pass 0 checks everything, pass 1 copies */
        for (int k = 0; k < 2; k++) {
            dn_param *list = k ? m->buffers : m->tensors;
            int count = k ? m->n_buffers : m->n_tensors;
            for (int i = 0; i < count; i++) {
                dn_param *p = &list[i];
                const dn_st_entry *e = dn_st_find(f, p->name);
                if (pass == 1) {
                    memcpy(p->t.data, e->data, (size_t)dn_st_numel(e) * sizeof(float));
                    continue;
                }
                if (!e)
                    return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' is missing (the checkpoint does not match this model)",
                                    path, p->name);
                bool same = e->ndim == p->t.ndim;
                for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == p->t.shape[d];
                if (!same)
                    return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' has shape %s but the model needs %s", path, p->name,
                                    dn_shape_str(e->ndim, e->shape), dn_tshape(&p->t));
                int64_t numel = dn_st_numel(e);
                for (int64_t j = 0; j < numel; j++)
                    if (!isfinite(e->data[j]))
                        return dn_error(DN_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at element %lld", path,
                                        p->name, (long long)j);
            }
        }
    }
    return DN_OK;
}

dn_status dn_model_load(const char *path, dn_model **model, dn_train_config *train)
{
    if (!path || !model) return dn_error(DN_ERR_ARG, "dn_model_load: path and model must not be NULL");
    *model = NULL;
    dn_st_file *f = NULL;
    dn_model *m = NULL;
    dn_status s = dn_st_read(path, MAX_CKPT_BYTES, &f);
    if (!s) s = verify_checksums(f, path);
    if (s) {
        dn_st_free(f);
        return s;
    }
    const char *cfg = dn_st_meta(f, "cfg");
    if (!cfg || !*cfg) {
        s = dn_error(DN_ERR_FORMAT, "%s: the checkpoint holds no model cfg (it was saved from a model built in C: "
                                    "build the same model and use dn_model_load_params)", path);
        goto done;
    }
    char where[300];
    snprintf(where, sizeof where, "%s[cfg]", path);
    if ((s = dn_model_from_cfg(cfg, where, &m, train))) goto done;
    if ((s = load_params(m, f, path))) goto done;
    if ((s = load_input_stats(m, f, path))) goto done;
    if ((s = vocab_parse(m, path, dn_st_meta(f, "vocab")))) goto done;
done:
    dn_st_free(f);
    if (s) {
        dn_model_free(m);
        return s;
    }
    *model = m;
    return DN_OK;
}

dn_status dn_model_load_params(dn_model *m, const char *path)
{
    if (!m || !path) return dn_error(DN_ERR_ARG, "dn_model_load_params: model and path must not be NULL");
    dn_st_file *f = NULL;
    dn_status s = dn_st_read(path, MAX_CKPT_BYTES, &f);
    if (!s) s = verify_checksums(f, path);
    if (s) {
        dn_st_free(f);
        return s;
    }
    s = load_params(m, f, path);
    dn_st_free(f);
    return s;
}

/* ------------------------------------------------------------------ trainer state */

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
    int n = param_entries(m, e);
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
    meta_list ml = {0};
    char rb[40], rm[40];
    rng_text(&ts.batcher_rng, rb, sizeof rb);
    rng_text(&ts.model_rng, rm, sizeof rm);
    meta_add(&ml, "format", "%s", FORMAT_TAG);
    meta_add(&ml, "epochs_done", "%d", ts.epochs_done);
    meta_add(&ml, "finished", "%d", ts.finished ? 1 : 0);
    meta_add(&ml, "best", "%.17g", ts.best);
    meta_add(&ml, "bad_epochs", "%d", ts.bad_epochs);
    meta_add(&ml, "optimizer", "%s", dn_optim_kind_name(ts.optim_kind));
    meta_add(&ml, "optim_step", "%lld", (long long)ts.optim_step);
    meta_add(&ml, "batcher_rng", "%s", rb);
    meta_add(&ml, "model_rng", "%s", rm);
    meta_add(&ml, "sched_best", "%.9g", (double)ts.sched_best);
    meta_add(&ml, "sched_lr", "%.9g", (double)ts.sched_lr);
    meta_add(&ml, "sched_bad_epochs", "%d", ts.sched_bad_epochs);
    meta_add(&ml, "sched_cooldown_left", "%d", ts.sched_cooldown_left);
    char vocab[520];
    vocab_text(m, vocab, sizeof vocab);
    const char *keys[36], *vals[36];
    for (int i = 0; i < ml.n; i++) {
        keys[i] = ml.keys[i];
        vals[i] = ml.vptr[i];
    }
    int nm = ml.n;
    keys[nm] = "vocab";
    vals[nm] = vocab;
    nm++;
    char *sums = checksums_text(e, n);
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
    dn_status s = dn_st_read(path, MAX_CKPT_BYTES, &f);
    if (!s) s = verify_checksums(f, path);
    if (s) {
        dn_st_free(f);
        return s;
    }
    dn_model *m = dn_trainer_model(t);
    dn_optim *opt = dn_trainer_optim(t);
    dn_trainer_state ts;
    dn_trainer_get_state(t, &ts);
    long long epochs = 0, finished = 0, bad = 0, step = 0, sbad = 0, scool = 0;
    double best = 0, sbest = 0, slr = 0;
    dn_rng rb, rm;
    const char *fmt = dn_st_meta(f, "format"), *optname = dn_st_meta(f, "optimizer");
    int64_t np = (int64_t)dn_model_param_count(m);
    if (!fmt || strcmp(fmt, FORMAT_TAG)) {
        s = dn_error(DN_ERR_FORMAT, "%s: not a dendrite checkpoint (format '%s', expected '%s')", path, fmt ? fmt : "none",
                     FORMAT_TAG);
        goto done;
    }
    if ((s = meta_int(f, path, "epochs_done", &epochs)) || (s = meta_int(f, path, "finished", &finished)) ||
        (s = meta_int(f, path, "bad_epochs", &bad)) || (s = meta_int(f, path, "optim_step", &step)) ||
        (s = meta_int(f, path, "sched_bad_epochs", &sbad)) || (s = meta_int(f, path, "sched_cooldown_left", &scool)) ||
        (s = meta_double(f, path, "best", &best)) || (s = meta_double(f, path, "sched_best", &sbest)) ||
        (s = meta_double(f, path, "sched_lr", &slr)) || (s = rng_parse(path, dn_st_meta(f, "batcher_rng"), &rb)) ||
        (s = rng_parse(path, dn_st_meta(f, "model_rng"), &rm)))
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
    if ((s = load_params(m, f, path))) goto done;
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
