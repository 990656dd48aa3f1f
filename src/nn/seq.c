/* Sequence layers: embedding and the recurrent layers (RNN, LSTM, GRU) with PyTorch's parameter layout, so
 * weights move between the two by name.  The recurrence itself is dn_rnn_sequence (src/nn/rnn.c), built from
 * registered ops: backpropagation through time is the tape run backwards. */
#include "nn/layer_table.h"
#include "nn/rnn.h"

#include <math.h>

dn_status dn_model_add_embedding(dn_model *m, int64_t vocab, int64_t size)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_add_embedding: model is NULL");
    if (vocab < 1 || vocab > (1 << 24) || size < 1 || size > (1 << 16))
        return dn_error(DN_ERR_ARG, "embedding: vocab %lld and size %lld must be positive", (long long)vocab,
                        (long long)size);
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    if (m->n_layers != 0 || nd != 1)
        return dn_error(DN_ERR_SHAPE, "embedding must be the first layer and take token ids [T], got %s",
                        dn_shape_str(nd, shape));
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_EMBEDDING, "embedding");
    if (!l) return DN_ERR_NOMEM;
    char name[64];
    snprintf(name, sizeof name, "layers.%d.weight", m->n_layers);
    int wi = dn_model_add_param(m, name, 2, (int64_t[]){vocab, size}, true);
    if (wi < 0) return DN_ERR_NOMEM;
    /* torch.nn.Embedding: N(0, 1) */
    float *w = m->tensors[wi].t.data;
    for (int64_t i = 0; i < vocab * size; i++) w[i] = dn_rng_normal(&m->rng);
    l->n_tensors = 1;
    l->op = dn_op_find("embedding");
    l->units = vocab;
    l->init = DN_INIT_DEFAULT;
    l->out_ndim = 2;
    l->out_shape[0] = shape[0];
    l->out_shape[1] = size;
    l->flops = dn_flop_estimate((double)shape[0] * (double)size);
    m->variable_length = true;
    m->n_layers++;
    return DN_OK;
}

static int gates_of(dn_rnn_kind k) { return k == DN_LSTM ? 4 : (k == DN_GRU ? 3 : 1); }

static void init_recurrent(dn_model *m, const dn_layer *l)
{
    /* torch.nn.RNN/LSTM/GRU: every weight and bias U(-1/sqrt(H), 1/sqrt(H)) */
    float a = 1.0f / sqrtf((float)l->units);
    for (int k = 0; k < l->n_tensors; k++) {
        dn_tensor *t = &m->tensors[l->first_tensor + k].t;
        int64_t n = dn_tensor_numel(t);
        for (int64_t i = 0; i < n; i++) t->data[i] = a * (2.0f * dn_rng_uniform(&m->rng) - 1.0f);
    }
}

void dn_model_init_recurrent(dn_model *m, const dn_layer *l) { init_recurrent(m, l); }

dn_status dn_model_add_recurrent(dn_model *m, const char *kind, int64_t hidden, int layers, bool bidirectional,
                                 float dropout, bool return_sequences, bool stateful)
{
    if (!m || !kind) return dn_error(DN_ERR_ARG, "dn_model_add_recurrent: model or kind is NULL");
    dn_rnn_kind k;
    if (!strcmp(kind, "rnn") || !strcmp(kind, "rnn_tanh")) k = DN_RNN_TANH;
    else if (!strcmp(kind, "rnn_relu")) k = DN_RNN_RELU;
    else if (!strcmp(kind, "lstm")) k = DN_LSTM;
    else if (!strcmp(kind, "gru")) k = DN_GRU;
    else return dn_error(DN_ERR_ARG, "unknown recurrent layer '%s' (rnn, rnn_relu, lstm, gru)", kind);
    if (hidden < 1 || hidden > (1 << 16) || layers < 1 || layers > 16 || !(dropout >= 0 && dropout < 1))
        return dn_error(DN_ERR_ARG, "%s: hidden %lld and layers %d must be positive and dropout in [0, 1)", kind,
                        (long long)hidden, layers);
    int dirs = bidirectional ? 2 : 1;
    if (m->n_carry + (k == DN_LSTM ? 2 : 1) > DN_MAX_CARRY)
        return dn_error(DN_ERR_ARG, "%s: too many recurrent layers (their states fill %d slots)", kind, DN_MAX_CARRY);
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    if (nd != 2)
        return dn_error(DN_ERR_SHAPE, "%s needs sequences [T, features] as input, got %s (for token ids add an "
                                      "[embedding] first)", kind, dn_shape_str(nd, shape));
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_RECURRENT, kind);
    if (!l) return DN_ERR_NOMEM;
    int li = m->n_layers, g = gates_of(k);
    for (int layer = 0; layer < layers; layer++) {
        int64_t in = layer == 0 ? shape[1] : dirs * hidden;
        for (int d = 0; d < dirs; d++) {
            const char *sfx = d ? "_reverse" : "";
            char name[64];
            int ok = 1;
            snprintf(name, sizeof name, "layers.%d.weight_ih_l%d%s", li, layer, sfx);
            ok &= dn_model_add_param(m, name, 2, (int64_t[]){g * hidden, in}, true) >= 0;
            snprintf(name, sizeof name, "layers.%d.weight_hh_l%d%s", li, layer, sfx);
            ok &= dn_model_add_param(m, name, 2, (int64_t[]){g * hidden, hidden}, true) >= 0;
            snprintf(name, sizeof name, "layers.%d.bias_ih_l%d%s", li, layer, sfx);
            ok &= dn_model_add_param(m, name, 1, (int64_t[]){g * hidden}, false) >= 0;
            snprintf(name, sizeof name, "layers.%d.bias_hh_l%d%s", li, layer, sfx);
            ok &= dn_model_add_param(m, name, 1, (int64_t[]){g * hidden}, false) >= 0;
            if (!ok) return DN_ERR_NOMEM;
        }
    }
    l->n_tensors = 4 * layers * dirs;
    l->units = hidden;
    l->rnn_kind = k;
    l->rnn_layers = layers;
    l->bidirectional = bidirectional;
    l->return_sequences = return_sequences;
    l->stateful = stateful;
    l->p = dropout;
    l->out_ndim = return_sequences ? 2 : 1;
    l->out_shape[0] = return_sequences ? shape[0] : dirs * hidden;
    l->out_shape[1] = dirs * hidden;
    double per_step = 0;
    for (int layer = 0; layer < layers; layer++)
        per_step += (double)dirs * 2.0 * g * (double)hidden * (double)((layer == 0 ? shape[1] : dirs * hidden) + hidden);
    l->flops = dn_flop_estimate((double)shape[0] * per_step);
    /* every recurrent layer has slots: stateful ones carry state across training batches, all of them across
     * forward calls when the model is streaming (generation) */
    l->state_first = m->n_carry;
    m->n_carry += k == DN_LSTM ? 2 : 1;
    init_recurrent(m, l);
    if (m->n_layers == 0) m->variable_length = true;
    m->n_layers++;
    return DN_OK;
}

void dn_model_set_streaming(dn_model *m, bool on)
{
    if (!m) return;
    m->streaming = on;
    dn_model_reset_state(m);
}

bool dn_model_can_stream(const dn_model *m)
{
    for (int i = 0; m && i < m->n_layers; i++)
        if (m->layers[i].kind == DN_LAYER_RECURRENT && m->layers[i].bidirectional) return false;
    return m != NULL;
}

void dn_model_reset_state(dn_model *m)
{
    for (int i = 0; i < m->n_carry; i++) {
        dn_free(m->carry[i]);
        m->carry[i] = NULL;
        m->carry_numel[i] = 0;
    }
}

/* The carried state for a batch of n, as a fresh leaf (no history: truncated BPTT), or NULL to start at 0. */
static dn_tensor *carried(dn_model *m, dn_ctx *ctx, int slot, int64_t rows, int64_t n, int64_t hidden)
{
    int64_t numel = rows * n * hidden;
    if (!m->carry[slot] || m->carry_numel[slot] != numel) return NULL;
    dn_tensor *t = NULL;
    if (dn_tensor_from(ctx, 3, (int64_t[]){rows, n, hidden}, m->carry[slot], &t)) return NULL;
    return t;
}

static void keep(dn_model *m, int slot, const dn_tensor *t)
{
    int64_t numel = dn_tensor_numel(t);
    if (m->carry_numel[slot] != numel) {
        dn_free(m->carry[slot]);
        m->carry[slot] = dn_alloc((size_t)numel * sizeof(float));
        m->carry_numel[slot] = m->carry[slot] ? numel : 0;
    }
    if (m->carry[slot]) dn_tensor_read(t, m->carry[slot]);
}

dn_tensor *dn_layer_recurrent_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *x)
{
    int dirs = l->bidirectional ? 2 : 1;
    int64_t n = x->shape[0], rows = (int64_t)l->rnn_layers * dirs;
    bool lstm = l->rnn_kind == DN_LSTM;
    dn_tensor *h0 = NULL, *c0 = NULL, *y = NULL, *hn = NULL, *cn = NULL;
    /* streaming: one (or a few) steps per call, each call continuing the last one's state */
    bool carry = (l->stateful && m->training) || (m->streaming && !m->training);
    if (carry) {
        h0 = carried(m, ctx, l->state_first, rows, n, l->units);
        if (lstm) c0 = carried(m, ctx, l->state_first + 1, rows, n, l->units);
        if (!h0 || (lstm && !c0)) h0 = c0 = NULL;
    }
    dn_tensor **params = dn_ctx_alloc(ctx, (size_t)l->n_tensors * sizeof *params);
    if (!params) {
        if (!ctx->status) ctx->status = DN_ERR_NOMEM;
        return NULL;
    }
    for (int k = 0; k < l->n_tensors; k++) params[k] = &m->tensors[l->first_tensor + k].t;
    dn_status s = dn_rnn_sequence(ctx, (dn_rnn_kind)l->rnn_kind, x, NULL, l->rnn_layers, l->bidirectional, params, h0,
                                  c0, l->p, &m->rng, m->training, &y, &hn, lstm ? &cn : NULL);
    if (s) {
        if (!ctx->status) ctx->status = s;
        return NULL;
    }
    if (carry) {
        keep(m, l->state_first, hn);
        if (lstm) keep(m, l->state_first + 1, cn);
    }
    if (l->return_sequences) return y;
    /* the last layer's final state; both directions side by side when bidirectional */
    dn_tensor *parts[2];
    for (int d = 0; d < dirs; d++)
        parts[d] = dn_reshape(ctx, dn_slice(ctx, hn, 0, rows - dirs + d, rows - dirs + d + 1, 1), 2,
                              (int64_t[]){n, l->units});
    return dirs == 1 ? parts[0] : dn_concat(ctx, 2, parts, 1);
}

void dn_model_set_vocab(dn_model *m, const dn_vocab *v)
{
    if (v) m->vocab = *v;
    else memset(&m->vocab, 0, sizeof m->vocab);
}

const dn_vocab *dn_model_vocab(const dn_model *m) { return &m->vocab; }

/* ------------------------------------------------------------------ layer-table entries */

static dn_status embedding_build(dn_model *m, dn_layer_args *a)
{
    return dn_model_add_embedding(m, dn_layer_arg_int(a, "vocab"), dn_layer_arg_int(a, "size"));
}

static dn_tensor *embedding_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m;
    dn_tensor *in[2] = {h, e->p0};
    return dn_op_apply(ctx, l->op, 2, in, NULL);
}

static void embedding_reinit(dn_model *m, const dn_layer *l)
{
    dn_tensor *w = &m->tensors[l->first_tensor].t; /* torch.nn.Embedding: N(0, 1) */
    for (int64_t i = 0; i < dn_tensor_numel(w); i++) w->data[i] = dn_rng_normal(&m->rng);
}

const dn_layer_def dn_layer_embedding = {
    .kind = DN_LAYER_EMBEDDING,
    .sections = {"embedding"},
    .keys = {DN_KEY("vocab", DN_KEY_INT, "256"), DN_KEY("size", DN_KEY_INT, NULL)},
    .build = embedding_build,
    .forward = embedding_forward,
    .reinit = embedding_reinit,
};

static dn_status recurrent_build(dn_model *m, dn_layer_args *a)
{
    const char *nonlin = dn_layer_arg_str(a, "nonlinearity");
    if (strcmp(nonlin, "tanh") && strcmp(nonlin, "relu")) {
        a->fault = "nonlinearity";
        return dn_error(DN_ERR_FORMAT, "nonlinearity must be tanh or relu, not '%s'", nonlin);
    }
    const char *kind = strcmp(a->section, "rnn") ? a->section : (strcmp(nonlin, "relu") ? "rnn" : "rnn_relu");
    return dn_model_add_recurrent(m, kind, dn_layer_arg_int(a, "hidden"), dn_layer_arg_int(a, "layers"),
                                  dn_layer_arg_int(a, "bidirectional") != 0, dn_layer_arg_float(a, "dropout"),
                                  dn_layer_arg_int(a, "return_sequences") != 0, dn_layer_arg_int(a, "stateful") != 0);
}

static dn_tensor *recurrent_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)e;
    return dn_layer_recurrent_forward(m, ctx, l, h);
}

const dn_layer_def dn_layer_recurrent = {
    .kind = DN_LAYER_RECURRENT,
    .sections = {"rnn", "lstm", "gru"},
    .keys = {DN_KEY("hidden", DN_KEY_INT, NULL),
             DN_KEY("layers", DN_KEY_INT, "1"),
             DN_KEY("bidirectional", DN_KEY_BOOL, "0"),
             DN_KEY("dropout", DN_KEY_FLOAT, "0"),
             DN_KEY("return_sequences", DN_KEY_BOOL, "1"),
             DN_KEY("stateful", DN_KEY_BOOL, "0"),
             DN_KEY_IN("nonlinearity", DN_KEY_STRING, "tanh", "rnn")},
    .build = recurrent_build,
    .forward = recurrent_forward,
    .reinit = dn_model_init_recurrent,
};
