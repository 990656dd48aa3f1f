/* Model files: Darknet-style cfg text -> a model and its training settings.  Every key is documented in
 * docs/cfg.md; a key nobody reads is an error with its line (dn_ini_check_unused). */
#include "io/ini.h"
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>

/* file:line prefix for errors about a section */
#define SEC_ERR(sec, ...) (dn_error(DN_ERR_FORMAT, __VA_ARGS__), dn_error_prefix("%s:%d", (sec)->file, (sec)->line), DN_ERR_FORMAT)

static dn_status get_string_into(dn_ini_section *s, const char *key, char *dst, size_t size)
{
    const char *v;
    dn_status st = dn_ini_get_string(s, key, dst, &v);
    if (st) return st;
    if (v != dst) {
        if (strlen(v) >= size) {
            dn_ini_entry *e = dn_ini_find(s, key);
            return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s': value is longer than %zu characters", s->file,
                            e ? e->line : s->line, key, size - 1);
        }
        snprintf(dst, size, "%s", v);
    }
    return DN_OK;
}

static dn_status read_net(dn_ini_section *s, int *in_ndim, int64_t *in_shape, dn_train_config *c)
{
    dn_status st;
    int dims[DN_MAX_DIMS], nd = 0;
    if ((st = dn_ini_require(s, "input"))) return st;
    if ((st = dn_ini_get_ints(s, "input", dims, DN_MAX_DIMS - 1, &nd))) return st;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 1) {
            dn_ini_entry *e = dn_ini_find(s, "input");
            return dn_error(DN_ERR_FORMAT, "%s:%d: input dimension %d is %d; dimensions must be positive", s->file,
                            e->line, i, dims[i]);
        }
        in_shape[i] = dims[i];
    }
    *in_ndim = nd;
    int batch = (int)c->batch, seed = (int)c->seed;
    if ((st = dn_ini_get_int(s, "batch", batch, &batch))) return st;
    if ((st = dn_ini_get_int(s, "epochs", c->epochs, &c->epochs))) return st;
    if ((st = dn_ini_get_int(s, "seed", seed, &seed))) return st;
    if ((st = dn_ini_get_int(s, "threads", c->threads, &c->threads))) return st;
    c->batch = batch;
    c->seed = (uint64_t)(uint32_t)seed;
    if ((st = get_string_into(s, "loss", c->loss, sizeof c->loss))) return st;
    if (dn_check_loss_name(c->loss)) {
        dn_ini_entry *e = dn_ini_find(s, "loss");
        dn_error_prefix("%s:%d", s->file, e ? e->line : s->line);
        return DN_ERR_FORMAT;
    }
    if ((st = dn_ini_get_float(s, "huber_delta", c->huber_delta, &c->huber_delta))) return st;

    char opt[32] = "sgd";
    if ((st = get_string_into(s, "optimizer", opt, sizeof opt))) return st;
    dn_optim_kind kind;
    if (dn_optim_kind_parse(opt, &kind)) {
        dn_ini_entry *e = dn_ini_find(s, "optimizer");
        return dn_error(DN_ERR_FORMAT, "%s:%d: unknown optimizer '%s' (sgd, adam, adamw, rmsprop, adagrad)", s->file,
                        e ? e->line : s->line, opt);
    }
    dn_optim_config *o = &c->optim;
    dn_optim_defaults(kind, o);
    bool nesterov = o->nesterov, amsgrad = o->amsgrad, centered = o->centered;
    if ((st = dn_ini_get_float(s, "lr", o->lr, &o->lr))) return st;
    if ((st = dn_ini_get_float(s, "momentum", o->momentum, &o->momentum))) return st;
    if ((st = dn_ini_get_float(s, "dampening", o->dampening, &o->dampening))) return st;
    if ((st = dn_ini_get_bool(s, "nesterov", nesterov, &o->nesterov))) return st;
    if ((st = dn_ini_get_float(s, "beta1", o->beta1, &o->beta1))) return st;
    if ((st = dn_ini_get_float(s, "beta2", o->beta2, &o->beta2))) return st;
    if ((st = dn_ini_get_float(s, "eps", o->eps, &o->eps))) return st;
    if ((st = dn_ini_get_float(s, "weight_decay", o->weight_decay, &o->weight_decay))) return st;
    if ((st = dn_ini_get_bool(s, "amsgrad", amsgrad, &o->amsgrad))) return st;
    if ((st = dn_ini_get_float(s, "alpha", o->alpha, &o->alpha))) return st;
    if ((st = dn_ini_get_bool(s, "centered", centered, &o->centered))) return st;
    if ((st = dn_ini_get_float(s, "lr_decay", o->lr_decay, &o->lr_decay))) return st;
    if ((st = dn_ini_get_float(s, "initial_accumulator", o->initial_accumulator, &o->initial_accumulator))) return st;

    if ((st = dn_ini_get_float(s, "l1", c->l1, &c->l1))) return st;
    if ((st = dn_ini_get_float(s, "l2", c->l2, &c->l2))) return st;
    if ((st = dn_ini_get_bool(s, "decay_bias", c->decay_bias, &c->decay_bias))) return st;
    if ((st = dn_ini_get_float(s, "clip_norm", c->clip_norm, &c->clip_norm))) return st;
    if ((st = dn_ini_get_float(s, "clip_value", c->clip_value, &c->clip_value))) return st;
    if ((st = dn_ini_get_float(s, "validation", c->validation, &c->validation))) return st;
    if ((st = dn_ini_get_int(s, "patience", c->patience, &c->patience))) return st;
    if ((st = dn_ini_get_float(s, "min_delta", c->min_delta, &c->min_delta))) return st;
    if ((st = dn_ini_get_bool(s, "restore_best", c->restore_best, &c->restore_best))) return st;
    if ((st = dn_ini_get_bool(s, "shuffle", c->shuffle, &c->shuffle))) return st;
    char mon[32] = "val_loss";
    if ((st = get_string_into(s, "monitor", mon, sizeof mon))) return st;
    if (!strcmp(mon, "val_loss")) c->monitor = DN_MONITOR_VAL_LOSS;
    else if (!strcmp(mon, "val_accuracy")) c->monitor = DN_MONITOR_VAL_ACCURACY;
    else {
        dn_ini_entry *e = dn_ini_find(s, "monitor");
        return dn_error(DN_ERR_FORMAT, "%s:%d: monitor must be val_loss or val_accuracy, not '%s'", s->file, e->line, mon);
    }

    char sched[32] = "constant";
    if ((st = get_string_into(s, "schedule", sched, sizeof sched))) return st;
    dn_sched_kind sk;
    if (dn_sched_kind_parse(sched, &sk)) {
        dn_ini_entry *e = dn_ini_find(s, "schedule");
        return dn_error(DN_ERR_FORMAT, "%s:%d: unknown schedule '%s' (constant, step, exponential, cosine, plateau)",
                        s->file, e ? e->line : s->line, sched);
    }
    dn_schedule *sc = &c->schedule;
    dn_schedule_defaults(sk, o->lr, sc);
    if ((st = dn_ini_get_int(s, "step_size", sc->step_size, &sc->step_size))) return st;
    if ((st = dn_ini_get_float(s, "gamma", sc->gamma, &sc->gamma))) return st;
    /* t_max 0: the run's epochs, filled in by the trainer (so --epochs moves it too) */
    if ((st = dn_ini_get_int(s, "t_max", 0, &sc->t_max))) return st;
    if ((st = dn_ini_get_float(s, "eta_min", sc->eta_min, &sc->eta_min))) return st;
    if ((st = dn_ini_get_int(s, "warmup_epochs", sc->warmup_epochs, &sc->warmup_epochs))) return st;
    if ((st = dn_ini_get_float(s, "warmup_start_factor", sc->warmup_start_factor, &sc->warmup_start_factor))) return st;
    if ((st = dn_ini_get_float(s, "factor", sc->factor, &sc->factor))) return st;
    if ((st = dn_ini_get_int(s, "plateau_patience", sc->patience, &sc->patience))) return st;
    if ((st = dn_ini_get_float(s, "threshold", sc->threshold, &sc->threshold))) return st;
    if ((st = dn_ini_get_int(s, "cooldown", sc->cooldown, &sc->cooldown))) return st;
    if ((st = dn_ini_get_float(s, "min_lr", sc->min_lr, &sc->min_lr))) return st;
    sc->base_lr = o->lr;
    sc->current_lr = o->lr;

    if (c->batch < 1 || c->epochs < 0 || c->validation < 0 || c->validation >= 1 || c->patience < 0)
        return SEC_ERR(s, "[net]: batch must be >= 1, epochs and patience >= 0, validation in [0, 1)");
    return DN_OK;
}

static dn_status read_data(dn_ini_section *s, dn_train_config *c)
{
    dn_status st;
    if ((st = get_string_into(s, "format", c->data_format, sizeof c->data_format))) return st;
    if (strcmp(c->data_format, "mnist") && strcmp(c->data_format, "csv") && strcmp(c->data_format, "text"))
        return SEC_ERR(s, "[data]: format must be mnist, csv or text, not '%s'", c->data_format);
    if ((st = get_string_into(s, "train", c->data_train, sizeof c->data_train))) return st;
    if ((st = get_string_into(s, "test", c->data_test, sizeof c->data_test))) return st;
    if ((st = dn_ini_get_int(s, "label_column", c->label_column, &c->label_column))) return st;
    if ((st = dn_ini_get_int(s, "header", c->csv_header, &c->csv_header))) return st;
    if ((st = dn_ini_get_bool(s, "normalize", c->normalize, &c->normalize))) return st;
    return DN_OK;
}

static dn_status add_activation_section(dn_model *m, dn_ini_section *s, const char *type)
{
    const dn_op *op = dn_op_find_flagged(type, DN_OPF_ACTIVATION);
    char attrs[256] = "";
    for (int i = 0; i < s->n_entries; i++) {
        dn_ini_entry *e = &s->entries[i];
        if (e->used) continue;
        bool layer_key = op && op->param.name &&
                         (!strcmp(e->key, "init") || (!strcmp(e->key, "channels") && op->param.shape == DN_OP_PARAM_CHANNELS));
        if (!layer_key && (!op || dn_op_attr_index(op, e->key) < 0))
            return dn_error(DN_ERR_FORMAT, "%s:%d: unknown key '%s' for activation %s", s->file, e->line, e->key, type);
        char *end;
        strtod(e->value, &end);
        if (end == e->value || *end)
            return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s': '%s' is not a number", s->file, e->line, e->key, e->value);
        size_t len = strlen(attrs);
        snprintf(attrs + len, sizeof attrs - len, "%s=%s ", e->key, e->value);
        e->used = true;
    }
    dn_status st = dn_model_add_activation(m, type, attrs);
    if (st) dn_error_prefix("%s:%d", s->file, s->line);
    return st;
}

/* activation= on a layer: fused into that layer, so layer indices stay equal to section order */
static dn_status fuse_activation(dn_model *m, dn_ini_section *s, const char *act)
{
    if (!*act || !strcmp(act, "identity") || !strcmp(act, "linear")) return DN_OK;
    dn_status st = dn_model_fuse_activation(m, act, NULL);
    if (st) {
        dn_ini_entry *e = dn_ini_find(s, "activation");
        dn_error_prefix("%s:%d", s->file, e ? e->line : s->line);
        return st == DN_ERR_NOMEM ? DN_ERR_NOMEM : DN_ERR_FORMAT; /* running out of memory is not a bad file */
    }
    return DN_OK;
}

static dn_status read_layer(dn_model *m, dn_ini_section *s)
{
    dn_status st;
    if (!strcmp(s->name, "dense") || !strcmp(s->name, "connected")) {
        int units;
        bool bias;
        const char *init_name, *act;
        if ((st = dn_ini_require(s, "units"))) return st;
        if ((st = dn_ini_get_int(s, "units", 0, &units))) return st;
        if ((st = dn_ini_get_bool(s, "bias", true, &bias))) return st;
        if ((st = dn_ini_get_string(s, "init", "default", &init_name))) return st;
        if ((st = dn_ini_get_string(s, "activation", "", &act))) return st;
        dn_init init;
        if (dn_init_parse(init_name, &init)) {
            dn_ini_entry *e = dn_ini_find(s, "init");
            dn_error_prefix("%s:%d", s->file, e->line);
            return DN_ERR_FORMAT;
        }
        if (units < 1) {
            dn_ini_entry *e = dn_ini_find(s, "units");
            return dn_error(DN_ERR_FORMAT, "%s:%d: units must be positive, got %d", s->file, e->line, units);
        }
        if ((st = dn_model_add_dense(m, units, init, bias))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st;
        }
        return fuse_activation(m, s, act);
    }
    if (!strcmp(s->name, "convolutional") || !strcmp(s->name, "conv") || !strcmp(s->name, "conv2d")) {
        int filters, size, size_h, size_w, stride, dilation, groups, pad = 0;
        bool bias;
        const char *init_name, *act, *pad_text;
        if ((st = dn_ini_require(s, "filters")) || (st = dn_ini_require(s, "size"))) return st;
        if ((st = dn_ini_get_int(s, "filters", 0, &filters)) || (st = dn_ini_get_int(s, "size", 0, &size)) ||
            (st = dn_ini_get_int(s, "size_h", size, &size_h)) || (st = dn_ini_get_int(s, "size_w", size, &size_w)) ||
            (st = dn_ini_get_int(s, "stride", 1, &stride)) || (st = dn_ini_get_int(s, "dilation", 1, &dilation)) ||
            (st = dn_ini_get_int(s, "groups", 1, &groups)) || (st = dn_ini_get_bool(s, "bias", true, &bias)) ||
            (st = dn_ini_get_string(s, "init", "default", &init_name)) ||
            (st = dn_ini_get_string(s, "activation", "", &act)) || (st = dn_ini_get_string(s, "pad", "0", &pad_text)))
            return st;
        if (!strcmp(pad_text, "same")) pad = DN_PAD_SAME;
        else {
            char *end;
            long v = strtol(pad_text, &end, 10);
            dn_ini_entry *e = dn_ini_find(s, "pad");
            if (end == pad_text || *end || v < 0 || v > 1024)
                return dn_error(DN_ERR_FORMAT, "%s:%d: key 'pad': '%s' is not a padding (a number >= 0, or same)", s->file,
                                e ? e->line : s->line, pad_text);
            pad = (int)v;
        }
        dn_init init;
        if (dn_init_parse(init_name, &init)) {
            dn_error_prefix("%s:%d", s->file, dn_ini_find(s, "init")->line);
            return DN_ERR_FORMAT;
        }
        if ((st = dn_model_add_conv2d(m, filters, size_h, size_w, stride, pad, dilation, groups, init, bias))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return fuse_activation(m, s, act);
    }
    if (!strcmp(s->name, "maxpool") || !strcmp(s->name, "avgpool") || !strcmp(s->name, "minpool")) {
        int size, stride, pad;
        if ((st = dn_ini_get_int(s, "size", 2, &size)) || (st = dn_ini_get_int(s, "stride", 0, &stride)) ||
            (st = dn_ini_get_int(s, "pad", 0, &pad)))
            return st;
        char kind[8];
        snprintf(kind, sizeof kind, "%.3s", s->name);
        if ((st = dn_model_add_pool2d(m, kind, size, stride, pad))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return DN_OK;
    }
    if (!strcmp(s->name, "global_avgpool") || !strcmp(s->name, "global_maxpool")) {
        if ((st = dn_model_add_global_pool(m, s->name[7] == 'a' ? "avg" : "max"))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return DN_OK;
    }
    if (!strcmp(s->name, "batchnorm")) {
        float momentum, eps;
        if ((st = dn_ini_get_float(s, "momentum", 0.1f, &momentum)) || (st = dn_ini_get_float(s, "eps", 1e-5f, &eps)))
            return st;
        if ((st = dn_model_add_batchnorm(m, momentum, eps))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return DN_OK;
    }
    if (!strcmp(s->name, "dropout") || !strcmp(s->name, "dropout2d")) {
        float p;
        if ((st = dn_ini_get_float(s, "p", 0.5f, &p))) return st;
        if ((st = dn_model_add_dropout(m, p, !strcmp(s->name, "dropout2d")))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return DN_OK;
    }
    if (!strcmp(s->name, "shortcut")) {
        int from;
        const char *act;
        if ((st = dn_ini_require(s, "from")) || (st = dn_ini_get_int(s, "from", 0, &from)) ||
            (st = dn_ini_get_string(s, "activation", "", &act)))
            return st;
        if ((st = dn_model_add_shortcut(m, from))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return fuse_activation(m, s, act);
    }
    if (!strcmp(s->name, "embedding")) {
        int vocab, size;
        if ((st = dn_ini_require(s, "size")) || (st = dn_ini_get_int(s, "vocab", 256, &vocab)) ||
            (st = dn_ini_get_int(s, "size", 0, &size)))
            return st;
        if ((st = dn_model_add_embedding(m, vocab, size))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return DN_OK;
    }
    if (!strcmp(s->name, "rnn") || !strcmp(s->name, "lstm") || !strcmp(s->name, "gru")) {
        int hidden, layers;
        bool bidir, seqs, stateful;
        float dropout;
        const char *nonlin = "tanh";
        if ((st = dn_ini_require(s, "hidden")) || (st = dn_ini_get_int(s, "hidden", 0, &hidden)) ||
            (st = dn_ini_get_int(s, "layers", 1, &layers)) || (st = dn_ini_get_bool(s, "bidirectional", false, &bidir)) ||
            (st = dn_ini_get_float(s, "dropout", 0.0f, &dropout)) ||
            (st = dn_ini_get_bool(s, "return_sequences", true, &seqs)) ||
            (st = dn_ini_get_bool(s, "stateful", false, &stateful)))
            return st;
        if (!strcmp(s->name, "rnn") && (st = dn_ini_get_string(s, "nonlinearity", "tanh", &nonlin))) return st;
        if (strcmp(nonlin, "tanh") && strcmp(nonlin, "relu")) {
            dn_ini_entry *e = dn_ini_find(s, "nonlinearity");
            return dn_error(DN_ERR_FORMAT, "%s:%d: nonlinearity must be tanh or relu, not '%s'", s->file, e->line, nonlin);
        }
        const char *kind = strcmp(s->name, "rnn") ? s->name : (strcmp(nonlin, "relu") ? "rnn" : "rnn_relu");
        if ((st = dn_model_add_recurrent(m, kind, hidden, layers, bidir, dropout, seqs, stateful))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return DN_OK;
    }
    if (!strcmp(s->name, "route")) {
        int layers[8], n = 0;
        if ((st = dn_ini_require(s, "layers")) || (st = dn_ini_get_ints(s, "layers", layers, 8, &n))) return st;
        if ((st = dn_model_add_route(m, n, layers))) {
            dn_error_prefix("%s:%d", s->file, s->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        return DN_OK;
    }
    if (!strcmp(s->name, "activation")) {
        const char *type;
        if ((st = dn_ini_require(s, "type"))) return st;
        if ((st = dn_ini_get_string(s, "type", "", &type))) return st;
        return add_activation_section(m, s, type);
    }
    if (!strcmp(s->name, "flatten")) {
        st = dn_model_add_flatten(m);
        if (st) dn_error_prefix("%s:%d", s->file, s->line);
        return st;
    }
    return dn_error(DN_ERR_FORMAT, "%s:%d: unknown section [%s] (net, data, dense, convolutional, maxpool, avgpool, "
                                   "minpool, global_avgpool, global_maxpool, batchnorm, dropout, dropout2d, shortcut, "
                                   "route, embedding, rnn, lstm, gru, activation, flatten)", s->file, s->line, s->name);
}

dn_status dn_model_from_cfg(const char *text, const char *filename, dn_model **model, dn_train_config *train)
{
    if (!text || !model) return dn_error(DN_ERR_ARG, "dn_model_from_cfg: text and model must not be NULL");
    *model = NULL;
    const char *fname = filename ? filename : "<cfg>";
    dn_ini *ini = NULL;
    dn_model *m = NULL;
    dn_train_config c;
    dn_train_defaults(&c);
    dn_status st = dn_ini_parse(text, fname, &ini);
    if (st) return st;
    if (ini->n_sections == 0 || strcmp(ini->sections[0].name, "net")) {
        st = dn_error(DN_ERR_FORMAT, "%s:%d: the first section must be [net] (input shape and training settings)", fname,
                      ini->n_sections ? ini->sections[0].line : 1);
        goto done;
    }
    int in_ndim = 0;
    int64_t in_shape[DN_MAX_DIMS];
    if ((st = read_net(&ini->sections[0], &in_ndim, in_shape, &c))) goto done;
    if ((st = dn_model_new(in_ndim, in_shape, c.seed, &m))) {
        dn_error_prefix("%s:%d", fname, ini->sections[0].line);
        goto done;
    }
    int layers = 0;
    for (int i = 1; i < ini->n_sections; i++) {
        dn_ini_section *s = &ini->sections[i];
        if (!strcmp(s->name, "net")) {
            st = SEC_ERR(s, "[net] may appear only once, as the first section");
            goto done;
        }
        if (!strcmp(s->name, "data")) {
            if ((st = read_data(s, &c))) goto done;
            continue;
        }
        if ((st = read_layer(m, s))) goto done;
        layers++;
    }
    if (layers == 0) {
        st = dn_error(DN_ERR_FORMAT, "%s: the model has no layers (add a [dense] section)", fname);
        goto done;
    }
    if ((st = dn_ini_check_unused(ini))) goto done;
    if ((st = dn_model_set_cfg_text(m, text))) goto done;
done:
    dn_ini_free(ini);
    if (st) {
        dn_model_free(m);
        return st;
    }
    *model = m;
    if (train) *train = c;
    return DN_OK;
}

dn_status dn_model_load_cfg(const char *path, dn_model **model, dn_train_config *train)
{
    char *text = NULL;
    dn_status st = dn_read_file(path, 1 << 20, &text, NULL);
    if (st) return st;
    st = dn_model_from_cfg(text, path, model, train);
    dn_free(text);
    return st;
}
