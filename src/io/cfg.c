/* Model files: Darknet-style cfg text -> a model and its training settings.  [net] and [data] are read here; a
 * layer section's keys, defaults and builder come from its entry in the layer table (src/nn/layer_table.h).
 * Every key is documented in docs/cfg.md (tests/test_tables.c checks the layer keys); a key nobody reads is an
 * error with its line (dn_ini_check_unused). */
#include "io/ini.h"
#include "nn/layer_table.h"

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

/* The line an error about `key` of s points at: the key's own, or the section's when it is absent. */
static int key_line(dn_ini_section *s, const char *key)
{
    for (int i = 0; key && i < s->n_entries; i++)
        if (!strcmp(s->entries[i].key, key)) return s->entries[i].line;
    return s->line;
}

/* Reads the keys of the section's layer-table entry, in the entry's order, into args. */
static dn_status read_keys(dn_ini_section *s, dn_layer_args *a)
{
    const dn_layer_def *def = a->def;
    dn_status st = DN_OK;
    for (int k = 0; k < DN_LAYER_MAX_KEYS && def->keys[k].name; k++) {
        const dn_layer_key *key = &def->keys[k];
        const char *d = key->def ? key->def : "";
        if (key->only && strcmp(key->only, s->name)) { /* not this section's: its default, and the key stays unread */
            a->i[k] = atoi(d);
            a->f[k] = strtof(d, NULL);
            a->s[k] = d;
            continue;
        }
        if (!key->def && (st = dn_ini_require(s, key->name))) return st;
        a->given[k] = dn_ini_find(s, key->name) != NULL;
        bool b = false;
        switch (key->type) {
        case DN_KEY_INT: st = dn_ini_get_int(s, key->name, atoi(d), &a->i[k]); break;
        case DN_KEY_FLOAT: st = dn_ini_get_float(s, key->name, strtof(d, NULL), &a->f[k]); break;
        case DN_KEY_BOOL:
            st = dn_ini_get_bool(s, key->name, atoi(d) != 0, &b);
            a->i[k] = b;
            break;
        case DN_KEY_STRING: st = dn_ini_get_string(s, key->name, d, &a->s[k]); break;
        case DN_KEY_INTS: st = dn_ini_get_ints(s, key->name, a->ints, DN_MAX_ROUTE, &a->n_ints); break;
        }
        if (st) return st;
    }
    if (!def->open_key) return DN_OK;
    /* the keys the entry lists are read: any other belongs to the layer only if open_key says so */
    for (int i = 0; i < s->n_entries; i++) {
        dn_ini_entry *e = &s->entries[i];
        if (e->used) continue;
        if ((st = def->open_key(a, e->key))) {
            dn_error_prefix("%s:%d", s->file, e->line);
            return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT;
        }
        char *end;
        strtod(e->value, &end);
        if (end == e->value || *end)
            return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s': '%s' is not a number", s->file, e->line, e->key, e->value);
        size_t len = strlen(a->extra);
        snprintf(a->extra + len, sizeof a->extra - len, "%s=%s ", e->key, e->value);
        e->used = true;
    }
    return DN_OK;
}

/* A layer section: its entry in the layer table reads the keys and builds the layer. */
static dn_status read_layer(dn_model *m, dn_ini_section *s)
{
    const dn_layer_def *def = dn_layer_def_find(s->name);
    if (!def) {
        char list[512] = "net, data";
        for (int k = 0; k < dn_layer_def_count(); k++) {
            const dn_layer_def *d = dn_layer_def_of((dn_layer_kind)k);
            for (int j = 0; j < 4 && d->sections[j]; j++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, ", %s", d->sections[j]);
            }
        }
        return dn_error(DN_ERR_FORMAT, "%s:%d: unknown section [%s] (%s)", s->file, s->line, s->name, list);
    }
    dn_layer_args a;
    memset(&a, 0, sizeof a);
    a.def = def;
    a.section = s->name;
    dn_status st = read_keys(s, &a);
    if (st) return st;
    if ((st = def->build(m, &a))) {
        dn_error_prefix("%s:%d", s->file, key_line(s, a.fault));
        return st == DN_ERR_NOMEM ? st : DN_ERR_FORMAT; /* running out of memory is not a bad file */
    }
    return DN_OK;
}

/* The [train] section's defaults (docs/cfg.md lists them): they live with the keys they are defaults of. */
void dn_train_defaults(dn_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 10;
    c->batch = 64;
    c->seed = 1;
    snprintf(c->loss, sizeof c->loss, "softmax_cross_entropy");
    c->huber_delta = 1.0f;
    dn_optim_defaults(DN_SGD, &c->optim);
    dn_schedule_defaults(DN_SCHED_CONSTANT, c->optim.lr, &c->schedule);
    c->monitor = DN_MONITOR_VAL_LOSS;
    c->restore_best = true;
    c->shuffle = true;
    snprintf(c->data_format, sizeof c->data_format, "mnist");
    snprintf(c->data_train, sizeof c->data_train, "data/mnist");
    c->label_column = -1;
    c->csv_header = -1;
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
