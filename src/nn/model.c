/* Models: a chain of layers whose parameters live in one flat buffer (and gradients in another). */
#include "nn/layer_table.h"
#include "kernels/threads.h"

#include <math.h>
#include <stdlib.h>

dn_status dn_init_parse(const char *name, dn_init *init)
{
    static const struct { const char *name; dn_init init; } names[] = {
        {"default", DN_INIT_DEFAULT},         {"xavier_uniform", DN_INIT_XAVIER_UNIFORM},
        {"glorot", DN_INIT_XAVIER_UNIFORM},   {"glorot_uniform", DN_INIT_XAVIER_UNIFORM},
        {"xavier_normal", DN_INIT_XAVIER_NORMAL}, {"glorot_normal", DN_INIT_XAVIER_NORMAL},
        {"he_uniform", DN_INIT_HE_UNIFORM},   {"kaiming", DN_INIT_HE_UNIFORM},
        {"kaiming_uniform", DN_INIT_HE_UNIFORM}, {"he_normal", DN_INIT_HE_NORMAL},
        {"kaiming_normal", DN_INIT_HE_NORMAL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *init = names[i].init;
            return DN_OK;
        }
    return dn_error(DN_ERR_ARG, "unknown initialisation '%s' (default, xavier_uniform, xavier_normal, he_uniform, he_normal)",
                    name);
}

dn_status dn_model_new(int ndim, const int64_t *input_shape, uint64_t seed, dn_model **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_model_new: out is NULL");
    *out = NULL;
    if (ndim < 1 || ndim > DN_MAX_DIMS - 1)
        return dn_error(DN_ERR_SHAPE, "a sample has 1 to %d dimensions, not %d", DN_MAX_DIMS - 1, ndim);
    for (int i = 0; i < ndim; i++)
        if (input_shape[i] < 1 || input_shape[i] > (1 << 24))
            return dn_error(DN_ERR_SHAPE, "input dimension %d is %lld", i, (long long)input_shape[i]);
    dn_model *m = dn_calloc(1, sizeof *m);
    if (!m) return DN_ERR_NOMEM;
    m->in_ndim = ndim;
    memcpy(m->in_shape, input_shape, (size_t)ndim * sizeof(int64_t));
    dn_rng_seed(&m->rng, seed);
    m->training = true;
    *out = m;
    return DN_OK;
}

void dn_model_free(dn_model *m)
{
    if (!m) return;
    dn_free(m->layers);
    dn_free(m->tensors);
    dn_free(m->params);
    dn_free(m->grads);
    dn_free(m->decay);
    dn_free(m->buffers);
    dn_free(m->bufdata);
    dn_model_reset_state(m);
    dn_free(m->cfg_text);
    dn_free(m->in_mean);
    dn_free(m->in_std);
    dn_free(m);
}

dn_status dn_model_set_input_stats(dn_model *m, int64_t n, const float *mean, const float *std)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_set_input_stats: model is NULL");
    float *a = NULL, *b = NULL;
    if (n > 0) {
        if (!mean || !std) return dn_error(DN_ERR_ARG, "dn_model_set_input_stats: mean and std must not be NULL");
        a = dn_alloc((size_t)n * sizeof(float));
        b = dn_alloc((size_t)n * sizeof(float));
        if (!a || !b) {
            dn_free(a);
            dn_free(b);
            return DN_ERR_NOMEM;
        }
        memcpy(a, mean, (size_t)n * sizeof(float));
        memcpy(b, std, (size_t)n * sizeof(float));
    }
    dn_free(m->in_mean);
    dn_free(m->in_std);
    m->in_mean = a;
    m->in_std = b;
    m->in_stats_n = n > 0 ? n : 0;
    return DN_OK;
}

int64_t dn_model_input_stats(const dn_model *m, const float **mean, const float **std)
{
    if (mean) *mean = m ? m->in_mean : NULL;
    if (std) *std = m ? m->in_std : NULL;
    return m ? m->in_stats_n : 0;
}

dn_status dn_model_set_cfg_text(dn_model *m, const char *text)
{
    char *copy = text ? dn_strdup(text) : NULL;
    if (text && !copy) return DN_ERR_NOMEM;
    dn_free(m->cfg_text);
    m->cfg_text = copy;
    return DN_OK;
}

const char *dn_model_cfg_text(const dn_model *m) { return m->cfg_text; }

void dn_model_tail_shape(const dn_model *m, int *ndim, int64_t *shape)
{
    if (m->n_layers == 0) {
        *ndim = m->in_ndim;
        memcpy(shape, m->in_shape, sizeof m->in_shape);
    } else {
        const dn_layer *l = &m->layers[m->n_layers - 1];
        *ndim = l->out_ndim;
        memcpy(shape, l->out_shape, sizeof l->out_shape);
    }
}

void dn_model_output_shape(const dn_model *m, int *ndim, int64_t *shape) { dn_model_tail_shape(m, ndim, shape); }

/* ------------------------------------------------------------------ parameter storage */

static void refresh_views(dn_model *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        m->tensors[i].t.data = m->params + m->tensors[i].offset;
        m->tensors[i].t.grad = m->grads + m->tensors[i].offset;
    }
    for (int i = 0; i < m->n_buffers; i++) m->buffers[i].t.data = m->bufdata + m->buffers[i].offset;
}

/* Appends a buffer (saved, never trained) filled with `value`; returns its index or -1. */
int dn_model_add_buffer(dn_model *m, const char *name, int64_t n, float value)
{
    if (m->n_buffers == m->cap_buffers) {
        int cap = m->cap_buffers ? 2 * m->cap_buffers : 8;
        dn_param *b = dn_realloc(m->buffers, (size_t)cap * sizeof *b);
        if (!b) return -1;
        m->buffers = b;
        m->cap_buffers = cap;
        refresh_views(m);
    }
    if (m->n_bufdata + (size_t)n > m->cap_bufdata) {
        size_t cap = m->cap_bufdata ? m->cap_bufdata : 256;
        while (cap < m->n_bufdata + (size_t)n) cap *= 2;
        float *d = dn_realloc(m->bufdata, cap * sizeof(float));
        if (!d) return -1;
        m->bufdata = d;
        m->cap_bufdata = cap;
        refresh_views(m);
    }
    dn_param *p = &m->buffers[m->n_buffers];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = m->n_bufdata;
    p->t.ndim = 1;
    p->t.shape[0] = n;
    p->t.stride[0] = 1;
    for (int64_t i = 0; i < n; i++) m->bufdata[m->n_bufdata + (size_t)i] = value;
    m->n_bufdata += (size_t)n;
    m->n_buffers++;
    refresh_views(m);
    return m->n_buffers - 1;
}

/* Appends a parameter tensor of the given shape; returns its index or -1. */
int dn_model_add_param(dn_model *m, const char *name, int ndim, const int64_t *shape, bool decay)
{
    int64_t n = dn_shape_numel(ndim, shape);
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 8;
        dn_param *t = dn_realloc(m->tensors, (size_t)cap * sizeof *t);
        if (!t) return -1;
        m->tensors = t;
        m->cap_tensors = cap;
        refresh_views(m);
    }
    if (m->n_params + (size_t)n > m->cap_params) {
        size_t cap = m->cap_params ? m->cap_params : 1024;
        while (cap < m->n_params + (size_t)n) cap *= 2;
        float *p = dn_realloc(m->params, cap * sizeof(float));
        if (!p) return -1;
        m->params = p;
        float *g = dn_realloc(m->grads, cap * sizeof(float));
        if (!g) return -1;
        m->grads = g;
        uint8_t *d = dn_realloc(m->decay, cap);
        if (!d) return -1;
        m->decay = d;
        m->cap_params = cap;
        refresh_views(m);
    }
    dn_param *p = &m->tensors[m->n_tensors];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = m->n_params;
    p->decay = decay;
    p->t.ndim = ndim;
    memcpy(p->t.shape, shape, (size_t)ndim * sizeof(int64_t));
    dn_contiguous_strides(ndim, shape, p->t.stride);
    p->t.requires_grad = true;
    memset(m->params + m->n_params, 0, (size_t)n * sizeof(float));
    memset(m->grads + m->n_params, 0, (size_t)n * sizeof(float));
    memset(m->decay + m->n_params, decay ? 1 : 0, (size_t)n);
    m->n_params += (size_t)n;
    m->n_tensors++;
    refresh_views(m);
    return m->n_tensors - 1;
}

dn_layer *dn_model_new_layer(dn_model *m, dn_layer_kind kind, const char *type)
{
    int tnd;
    int64_t tshape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &tnd, tshape);
    if (dn_shape_numel(tnd, tshape) > ((int64_t)1 << 31)) {
        dn_error(DN_ERR_SHAPE, "%s: its input %s has more than 2^31 elements per sample", type, dn_shape_str(tnd, tshape));
        return NULL;
    }
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 8;
        dn_layer *l = dn_realloc(m->layers, (size_t)cap * sizeof *l);
        if (!l) return NULL;
        m->layers = l;
        m->cap_layers = cap;
    }
    dn_layer *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    snprintf(l->type, sizeof l->type, "%s", type);
    l->first_tensor = m->n_tensors;
    l->first_buffer = m->n_buffers;
    dn_model_tail_shape(m, &l->out_ndim, l->out_shape);
    return l;
}

/* ------------------------------------------------------------------ layers */

/* Weight initialisation.  fan_in/fan_out count the connections into/out of one output element (for a conv:
 * C/groups * kh * kw and F * kh * kw, as torch's _calculate_fan_in_and_fan_out). */
void dn_model_init_weights(dn_model *m, float *w, int64_t n, float *b, int64_t nb, int64_t fan_in, int64_t fan_out,
                         dn_init init)
{
    double a;
    switch (init) {
    case DN_INIT_XAVIER_UNIFORM:
        a = sqrt(6.0 / (double)(fan_in + fan_out));
        for (int64_t i = 0; i < n; i++) w[i] = (float)(a * (2.0 * dn_rng_uniform(&m->rng) - 1.0));
        break;
    case DN_INIT_XAVIER_NORMAL:
        a = sqrt(2.0 / (double)(fan_in + fan_out));
        for (int64_t i = 0; i < n; i++) w[i] = (float)(a * dn_rng_normal(&m->rng));
        break;
    case DN_INIT_HE_UNIFORM:
        a = sqrt(6.0 / (double)fan_in);
        for (int64_t i = 0; i < n; i++) w[i] = (float)(a * (2.0 * dn_rng_uniform(&m->rng) - 1.0));
        break;
    case DN_INIT_HE_NORMAL:
        a = sqrt(2.0 / (double)fan_in);
        for (int64_t i = 0; i < n; i++) w[i] = (float)(a * dn_rng_normal(&m->rng));
        break;
    default:
        /* torch.nn.Linear / Conv2d: kaiming_uniform(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
         * and the bias takes the same bound */
        a = 1.0 / sqrt((double)fan_in);
        for (int64_t i = 0; i < n; i++) w[i] = (float)(a * (2.0 * dn_rng_uniform(&m->rng) - 1.0));
        if (b)
            for (int64_t i = 0; i < nb; i++) b[i] = (float)(a * (2.0 * dn_rng_uniform(&m->rng) - 1.0));
        return;
    }
    if (b) memset(b, 0, (size_t)nb * sizeof(float));
}

static void init_dense(dn_model *m, float *w, float *b, int64_t fan_out, int64_t fan_in, dn_init init)
{
    dn_model_init_weights(m, w, fan_in * fan_out, b, fan_out, fan_in, fan_out, init);
}

dn_status dn_model_add_dense(dn_model *m, int64_t units, dn_init init, bool bias)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_add_dense: model is NULL");
    if (units < 1 || units > (1 << 24)) return dn_error(DN_ERR_ARG, "dense: units must be 1 .. 16777216, got %lld", (long long)units);
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    /* a sequence [T, F] (from an embedding or a recurrent layer) gets the layer at every step; anything else is
     * flattened first */
    bool per_step = nd == 2 && m->variable_length;
    int64_t fan_in = per_step ? shape[1] : dn_shape_numel(nd, shape);
    if (fan_in > ((int64_t)1 << 31) / units) /* by division: the product itself may overflow */
        return dn_error(DN_ERR_SHAPE, "dense: %lld x %lld weights are too many", (long long)units, (long long)fan_in);
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_DENSE, "dense");
    if (!l) return DN_ERR_NOMEM;
    int li = m->n_layers;
    char name[64];
    snprintf(name, sizeof name, "layers.%d.weight", li);
    int wi = dn_model_add_param(m, name, 2, (int64_t[]){units, fan_in}, true);
    int bi = -2;
    if (wi >= 0 && bias) {
        snprintf(name, sizeof name, "layers.%d.bias", li);
        bi = dn_model_add_param(m, name, 1, &units, false);
    }
    if (wi < 0 || bi == -1) {
        m->n_tensors = l->first_tensor; /* roll back */
        return DN_ERR_NOMEM;
    }
    l->n_tensors = bias ? 2 : 1;
    l->units = units;
    l->init = init;
    l->bias = bias;
    l->per_step = per_step;
    l->out_ndim = per_step ? 2 : 1;
    l->out_shape[per_step ? 1 : 0] = units;
    l->op = dn_op_find("linear");
    l->op_relu = dn_op_find("linear_relu");
    l->flops = dn_flop_estimate((2.0 * (double)fan_in * (double)units + (bias ? (double)units : 0.0)) *
                                (double)(per_step ? shape[0] : 1));
    init_dense(m, m->tensors[wi].t.data, bias ? m->tensors[bi].t.data : NULL, units, fan_in, init);
    m->n_layers++;
    return DN_OK;
}

static dn_status dense_build(dn_model *m, dn_layer_args *a)
{
    int units = dn_layer_arg_int(a, "units");
    dn_init init;
    if (dn_init_parse(dn_layer_arg_str(a, "init"), &init)) {
        a->fault = "init";
        return DN_ERR_FORMAT;
    }
    if (units < 1) {
        a->fault = "units";
        return dn_error(DN_ERR_FORMAT, "units must be positive, got %d", units);
    }
    dn_status st = dn_model_add_dense(m, units, init, dn_layer_arg_int(a, "bias") != 0);
    return st ? st : dn_layer_fuse_arg(m, a);
}

/* [N, ...] as [N, features]; the feature count from the shape, so an empty batch (N = 0, a replica's empty shard)
 * keeps it (reshape's -1 cannot infer it from 0 elements). */
static dn_tensor *flatten_samples(dn_ctx *ctx, dn_tensor *h)
{
    int64_t per = 1;
    for (int i = 1; i < h->ndim; i++) per *= h->shape[i];
    return dn_reshape(ctx, h, 2, (int64_t[]){h->shape[0], per});
}

static dn_tensor *dense_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m;
    if (h->ndim != 2 && !l->per_step) h = flatten_samples(ctx, h);
    dn_tensor *in[3] = {h, e->p0, e->p1};
    return dn_op_apply(ctx, e->relu ? l->op_relu : l->op, e->bias ? 3 : 2, in, NULL);
}

/* Dense and conv2d: the initialisation the layer was built with (fan-out = filters x kernel area for a conv). */
void dn_layer_reinit_affine(dn_model *m, const dn_layer *l)
{
    dn_tensor *w = &m->tensors[l->first_tensor].t;
    float *b = l->bias && l->n_tensors > 1 ? m->tensors[l->first_tensor + 1].t.data : NULL;
    int64_t nw = dn_tensor_numel(w), fan_in = nw / w->shape[0];
    dn_model_init_weights(m, w->data, nw, b, w->shape[0], fan_in,
                          w->shape[0] * (l->kind == DN_LAYER_CONV2D ? (int64_t)l->kh * l->kw : 1), l->init);
}

const dn_layer_def dn_layer_dense = {
    .kind = DN_LAYER_DENSE,
    .sections = {"dense", "connected"},
    .keys = {DN_KEY("units", DN_KEY_INT, NULL),
             DN_KEY("bias", DN_KEY_BOOL, "1"),
             DN_KEY("init", DN_KEY_STRING, "default"),
             DN_KEY("activation", DN_KEY_STRING, "")},
    .build = dense_build,
    .forward = dense_forward,
    .reinit = dn_layer_reinit_affine,
    .fusable = true,
};

dn_status dn_model_add_flatten(dn_model *m)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_add_flatten: model is NULL");
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_FLATTEN, "flatten");
    if (!l) return DN_ERR_NOMEM;
    l->out_shape[0] = dn_shape_numel(l->out_ndim, l->out_shape);
    l->out_ndim = 1;
    m->n_layers++;
    return DN_OK;
}

static dn_status flatten_build(dn_model *m, dn_layer_args *a)
{
    (void)a;
    return dn_model_add_flatten(m);
}

static dn_tensor *flatten_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m, (void)l, (void)e;
    return flatten_samples(ctx, h);
}

const dn_layer_def dn_layer_flatten = {
    .kind = DN_LAYER_FLATTEN,
    .sections = {"flatten"},
    .build = flatten_build,
    .forward = flatten_forward,
};

/* Applies the op once to a one-sample input of the layer's shape, so that attribute values the op refuses
 * (gelu approximate=5, hard_tanh min > max, ...) fail when the model is built, not at its first batch. */
static dn_status try_activation(const dn_op *op, const double *attr, int nd, const int64_t *shape, int64_t n_param)
{
    dn_ctx *ctx = dn_ctx_new();
    if (!ctx) return DN_ERR_NOMEM;
    int64_t full[DN_MAX_DIMS + 1];
    full[0] = 1;
    memcpy(full + 1, shape, (size_t)nd * sizeof(int64_t));
    dn_tensor *in[2] = {dn_ctx_zeros(ctx, nd + 1, full), n_param ? dn_ctx_zeros(ctx, 1, &n_param) : NULL};
    dn_status s = DN_ERR_NOMEM;
    if (in[0] && (!n_param || in[1])) s = dn_op_apply(ctx, op, n_param ? 2 : 1, in, attr) ? DN_OK : dn_ctx_status(ctx);
    dn_ctx_free(ctx);
    return s;
}

dn_status dn_model_add_activation(dn_model *m, const char *name, const char *attrs)
{
    if (!m || !name) return dn_error(DN_ERR_ARG, "dn_model_add_activation: model or name is NULL");
    const dn_op *op = dn_op_find_flagged(name, DN_OPF_ACTIVATION);
    char list[512];
    if (!op)
        return dn_error(DN_ERR_ARG, "unknown activation '%s' (%s)", name, dn_op_list(DN_OPF_ACTIVATION, 0, list, sizeof list));
    /* split layer settings (the learnt parameter's channels and init) from the op's own attributes */
    const dn_op_param *pp = &op->param;
    double channels = 1, init = pp->name ? pp->init : 1.0;
    char optext[256] = "";
    const char *p = attrs ? attrs : "";
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *end = p;
        while (*end && *end != ' ' && *end != ',') end++;
        char tok[96];
        size_t len = (size_t)(end - p) < sizeof tok - 1 ? (size_t)(end - p) : sizeof tok - 1;
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (strncmp(tok, "channels=", 9) == 0 && pp->shape == DN_OP_PARAM_CHANNELS) channels = atof(tok + 9);
        else if (strncmp(tok, "init=", 5) == 0 && pp->name) init = atof(tok + 5);
        else if (strlen(optext) + len + 2 < sizeof optext) {
            strcat(optext, tok);
            strcat(optext, " ");
        }
        p = end;
    }
    double a[DN_MAX_ATTRS];
    dn_status s = dn_parse_attrs(op, optext, a);
    if (s) return s;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    if (pp->shape == DN_OP_PARAM_CHANNELS && channels != 1 && (channels != shape[0]))
        return dn_error(DN_ERR_SHAPE, "%s: channels=%g must be 1 or the input's channel count %lld", name, channels,
                        (long long)shape[0]);
    const int64_t count = !pp->name ? 0 : pp->shape == DN_OP_PARAM_CHANNELS ? (int64_t)channels : 1;
    if ((s = try_activation(op, a, nd, shape, count))) return s;
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_ACTIVATION, name);
    if (!l) return DN_ERR_NOMEM;
    l->op = op;
    memcpy(l->attr, a, sizeof a);
    if (pp->name) {
        char pname[64];
        snprintf(pname, sizeof pname, "layers.%d.%s", m->n_layers, pp->name);
        int ti = dn_model_add_param(m, pname, 1, &count, false);
        if (ti < 0) return DN_ERR_NOMEM;
        for (int64_t i = 0; i < count; i++) m->tensors[ti].t.data[i] = (float)init;
        l->n_tensors = 1;
        l->param_init = (float)init;
    }
    l->flops = 4 * dn_shape_numel(nd, shape);
    m->n_layers++;
    return DN_OK;
}

dn_status dn_model_fuse_activation(dn_model *m, const char *name, const char *attrs)
{
    const dn_op *op = dn_op_find_flagged(name, DN_OPF_ACTIVATION);
    if (!op || op->param.name) {
        char plain[512], learnt[128];
        dn_op_list(DN_OPF_ACTIVATION, -1, plain, sizeof plain);
        dn_op_list(DN_OPF_ACTIVATION, 1, learnt, sizeof learnt);
        return dn_error(DN_ERR_ARG, "'%s' cannot follow a layer as activation= (use %s; %s learn parameters: give them "
                                    "an [activation] section)", name, plain, learnt);
    }
    if (m->n_layers == 0) return dn_error(DN_ERR_STATE, "activation %s has no layer to follow", name);
    dn_layer *l = &m->layers[m->n_layers - 1];
    double a[DN_MAX_ATTRS];
    dn_status s = dn_parse_attrs(op, attrs, a);
    if (!s) s = try_activation(op, a, l->out_ndim, l->out_shape, 0);
    if (s) return s;
    l->act = op;
    memcpy(l->act_attr, a, sizeof a);
    l->flops += 4 * dn_shape_numel(l->out_ndim, l->out_shape);
    return DN_OK;
}

/* [activation] type=NAME: besides the op's attributes, an op with a learnt parameter takes init= (and channels= when
 * the parameter may have one value per channel). */
static dn_status activation_open_key(const dn_layer_args *a, const char *key)
{
    const char *type = dn_layer_arg_str(a, "type");
    const dn_op *op = dn_op_find_flagged(type, DN_OPF_ACTIVATION);
    bool layer_key = op && op->param.name &&
                     (!strcmp(key, "init") || (!strcmp(key, "channels") && op->param.shape == DN_OP_PARAM_CHANNELS));
    if (!layer_key && (!op || dn_op_attr_index(op, key) < 0))
        return dn_error(DN_ERR_FORMAT, "unknown key '%s' for activation %s", key, type);
    return DN_OK;
}

static dn_status activation_build(dn_model *m, dn_layer_args *a)
{
    return dn_model_add_activation(m, dn_layer_arg_str(a, "type"), a->extra);
}

static dn_tensor *activation_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m;
    dn_tensor *in[2] = {h, e->p0};
    return dn_op_apply(ctx, l->op, e->p0 ? 2 : 1, in, l->attr);
}

const dn_layer_def dn_layer_activation = {
    .kind = DN_LAYER_ACTIVATION,
    .sections = {"activation"},
    .keys = {DN_KEY("type", DN_KEY_STRING, NULL)},
    .open_doc = "channels init",
    .open_key = activation_open_key,
    .build = activation_build,
    .forward = activation_forward,
};

/* ------------------------------------------------------------------ forward */

/* ReLU fusion.  A dense or conv2d layer followed by a ReLU (its own activation=relu, or a parameter-free relu
 * layer right after it) computes relu(layer(x)) in one op: linear_relu / conv2d_relu apply the ReLU in the
 * gemm's write-back and mask the gradient in their backward step.  The result is bit for bit the same as the
 * two ops; it saves a pass over the output and, above all, the pre-activation tensor and its gradient, which
 * the arena would otherwise hold until the step ends.  A relu layer is absorbed only when no shortcut or
 * route reads the layer's pre-activation output.
 *
 * Batch-norm folding.  At inference (evaluation mode and no tape), a batch norm is a fixed affine map per
 * channel, y = s_f (z - running_mean_f) + beta_f with s_f = gamma_f / sqrt(running_var_f + eps), so when it
 * directly follows a dense or conv2d layer z = W x + b it folds into that layer's weights:
 *     W'_f = s_f W_f  (every weight of output channel f),   b'_f = s_f (b_f - running_mean_f) + beta_f
 * and the pair runs as one linear / conv2d op, with a ReLU after the batch norm fused as above.  That saves
 * the batch norm's pass over the output and the tensor between them.  The result equals the two ops up to
 * float rounding (not bit for bit: W' is rounded once more).  W' and b' are made afresh in the arena at every
 * forward pass, so they always follow the current parameters and running statistics.  Only without a tape:
 * W' and b' are copies, not parameters, so backward would give no gradient to W, b, gamma or beta; in
 * training the batch statistics are not constants anyway.  As for the ReLU, nothing is folded when a
 * shortcut or route reads the layer's output, and a dense layer folds only on [N, units] (a per-step dense
 * layer's batch norm would see the time steps as channels). */
static bool read_later(const dn_model *m, int li)
{
    for (int k = li + 2; k < m->n_layers; k++)
        for (int f = 0; f < m->layers[k].n_from; f++)
            if (m->layers[k].from[f] == li) return true;
    return false;
}

static bool is_plain_relu(const dn_layer *l)
{
    return l->kind == DN_LAYER_ACTIVATION && !strcmp(l->op->name, "relu") && !l->n_tensors && !l->act;
}

/* What one turn of the forward loop computes: layer li and `absorbed` layers after it. */
typedef struct fusion {
    bool fold_bn;  /* layer li + 1 is a batch norm folded into li's weights */
    bool relu;     /* the op applies a ReLU: the own activation of the last layer covered, or a relu layer */
    int absorbed;  /* layers after li that the op's output stands for */
} fusion;

static fusion plan_fusion(const dn_model *m, const dn_ctx *ctx, int li)
{
    fusion fu = {false, false, 0};
    const dn_layer *l = &m->layers[li];
    if (!dn_layer_def_of(l->kind)->fusable) return fu;
    fu.fold_bn = !m->training && !ctx->grad_enabled && !l->act && li + 1 < m->n_layers &&
                 m->layers[li + 1].kind == DN_LAYER_BATCHNORM && (l->kind == DN_LAYER_CONV2D || l->out_ndim == 1) &&
                 !read_later(m, li);
    int last = li + fu.fold_bn; /* the layer whose output the op computes */
    const dn_layer *t = &m->layers[last];
    if (t->act) fu.relu = !strcmp(t->act->name, "relu");
    else if (last + 1 < m->n_layers && is_plain_relu(&m->layers[last + 1]) && !read_later(m, last)) {
        fu.relu = true;
        last++;
    }
    fu.absorbed = last - li;
    return fu;
}

/* The folded weights W', b' of layer l and the batch norm bn after it (formula above), in the arena;
 * false when out of memory.  s_f is computed in double, and each product rounded once to float. */
static bool fold_bn(dn_model *m, dn_ctx *ctx, const dn_layer *l, const dn_layer *bn, dn_tensor **w, dn_tensor **b)
{
    const dn_tensor *w0 = &m->tensors[l->first_tensor].t;
    const float *b0 = l->bias ? m->tensors[l->first_tensor + 1].t.data : NULL;
    const float *gamma = m->tensors[bn->first_tensor].t.data, *beta = m->tensors[bn->first_tensor + 1].t.data;
    const float *mean = m->buffers[bn->first_buffer].t.data, *var = m->buffers[bn->first_buffer + 1].t.data;
    *w = dn_ctx_tensor(ctx, w0->ndim, w0->shape);
    *b = dn_ctx_tensor(ctx, 1, w0->shape);
    if (!*w || !*b) return false;
    const int64_t channels = w0->shape[0], per = channels ? dn_tensor_numel(w0) / channels : 0;
    for (int64_t f = 0; f < channels; f++) {
        const double s = gamma[f] / sqrt((double)var[f] + (double)bn->eps);
        for (int64_t i = f * per; i < (f + 1) * per; i++) (*w)->data[i] = (float)(w0->data[i] * s);
        (*b)->data[f] = (float)(((b0 ? b0[f] : 0.0) - mean[f]) * s + beta[f]);
    }
    return true;
}

dn_tensor *dn_model_forward(dn_model *m, dn_ctx *ctx, dn_tensor *x)
{
    if (!ctx) return NULL;
    if (!m || !x) {
        if (!ctx->status) ctx->status = dn_error(DN_ERR_ARG, "dn_model_forward: model or input is NULL");
        return NULL;
    }
    if (ctx->status) return NULL;
    bool ok = x->ndim == m->in_ndim + 1;
    /* sequence models take any length T (axis 1) */
    for (int i = 0; ok && i < m->in_ndim; i++) ok = x->shape[i + 1] == m->in_shape[i] || (i == 0 && m->variable_length);
    if (ok && m->variable_length && x->shape[1] > m->in_shape[0]) {
        ctx->status = dn_error(DN_ERR_SHAPE, "a sequence of %lld steps is longer than the model's configured %lld (the "
                                             "input length in [net])", (long long)x->shape[1], (long long)m->in_shape[0]);
        return NULL;
    }
    if (!ok) {
        ctx->status = dn_error(DN_ERR_SHAPE, "model input must be [N, %s, got %s",
                               dn_shape_str(m->in_ndim, m->in_shape) + 1, dn_tshape(x));
        return NULL;
    }
    /* every layer's output is kept for shortcuts and routes */
    dn_tensor **outs = dn_ctx_alloc(ctx, (size_t)(m->n_layers + 1) * sizeof *outs);
    if (!outs) {
        ctx->status = DN_ERR_NOMEM;
        return NULL;
    }
    dn_tensor *h = x;
    const char *outer_tag = ctx->tag;
    for (int li = 0; li < m->n_layers && h; li++) {
        dn_layer *l = &m->layers[li];
        if (ctx->detect_anomaly) {
            /* names the layer in anomaly reports, forward and backward */
            char *tag = dn_ctx_alloc(ctx, 64);
            if (tag) snprintf(tag, 64, "layer %d (%s)", li, l->type);
            ctx->tag = tag;
        }
        dn_tensor *p0 = l->n_tensors ? &m->tensors[l->first_tensor].t : NULL;
        dn_tensor *p1 = l->n_tensors > 1 ? &m->tensors[l->first_tensor + 1].t : NULL;
        const fusion fu = plan_fusion(m, ctx, li);
        const bool bias = l->bias || fu.fold_bn; /* a folded batch norm always gives a bias */
        if (fu.fold_bn && !fold_bn(m, ctx, l, &m->layers[li + 1], &p0, &p1)) {
            ctx->status = DN_ERR_NOMEM;
            h = NULL;
            break; /* out of the layer loop */
        }
        const dn_layer_env env = {p0, p1, bias, fu.relu, outs};
        h = dn_layer_def_of(l->kind)->forward(m, ctx, l, h, &env);
        /* a folded batch norm's own activation, when it is not a fused ReLU, comes after the folded op */
        const dn_layer *last = &m->layers[li + fu.absorbed];
        if (h && last->act && !fu.relu) h = dn_op_apply(ctx, last->act, 1, &h, last->act_attr);
        if (!h && !ctx->detect_anomaly) dn_error_prefix("layer %d (%s)", li, l->type);
        /* the absorbed layers (batch norm, relu) are done too; no one reads the outputs in between */
        for (int k = 0; k <= fu.absorbed; k++) outs[li + 1 + k] = h;
        li += fu.absorbed;
    }
    ctx->tag = outer_tag;
    outs[0] = x;
    return h;
}

void dn_model_set_training(dn_model *m, bool training) { m->training = training; }

int dn_model_input_shape(const dn_model *m, int64_t *shape)
{
    memcpy(shape, m->in_shape, (size_t)m->in_ndim * sizeof(int64_t));
    return m->in_ndim;
}

dn_status dn_model_reinit(dn_model *m, uint64_t seed)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_reinit: model is NULL");
    dn_rng_seed(&m->rng, seed);
    for (int li = 0; li < m->n_layers; li++) {
        dn_layer *l = &m->layers[li];
        for (int k = 0; k < l->n_buffers; k++) {
            dn_tensor *t = &m->buffers[l->first_buffer + k].t;
            for (int64_t i = 0; i < dn_tensor_numel(t); i++) t->data[i] = k == 0 ? 0.0f : 1.0f; /* mean 0, var 1 */
        }
        if (l->n_tensors == 0) continue;
        const dn_layer_def *def = dn_layer_def_of(l->kind);
        if (def->reinit) def->reinit(m, l);
        else
            for (int k = 0; k < l->n_tensors; k++) {
                dn_tensor *t = &m->tensors[l->first_tensor + k].t;
                for (int64_t i = 0; i < dn_tensor_numel(t); i++) t->data[i] = l->param_init;
            }
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ accessors */

int dn_model_layer_count(const dn_model *m) { return m->n_layers; }
size_t dn_model_param_count(const dn_model *m) { return m->n_params; }
float *dn_model_params(dn_model *m) { return m->params; }
float *dn_model_grads(dn_model *m) { return m->grads; }
void dn_model_zero_grad(dn_model *m)
{
    if (m->n_params) dn_parallel_zero(m->grads, m->n_params * sizeof(float));
}
int dn_model_tensor_count(const dn_model *m) { return m->n_tensors; }
const char *dn_model_tensor_name(const dn_model *m, int i) { return (i >= 0 && i < m->n_tensors) ? m->tensors[i].name : NULL; }
dn_tensor *dn_model_tensor(dn_model *m, int i) { return (i >= 0 && i < m->n_tensors) ? &m->tensors[i].t : NULL; }
const uint8_t *dn_model_decay_mask(const dn_model *m) { return m->decay; }

int64_t dn_model_flops(const dn_model *m)
{
    double f = 0; /* each layer's figure is saturated (dn_flop_estimate); so is the sum */
    for (int i = 0; i < m->n_layers; i++) f += (double)m->layers[i].flops;
    return dn_flop_estimate(f);
}

static const char *human(double v, char *buf, size_t size)
{
    if (v >= 1e9) snprintf(buf, size, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, size, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, size, "%.1fk", v / 1e3);
    else snprintf(buf, size, "%.0f", v);
    return buf;
}

size_t dn_model_summary(const dn_model *m, char *buf, size_t size)
{
    size_t n = 0;
#define OUT(...) n += (size_t)snprintf(buf ? buf + (n < size ? n : size) : NULL, buf && n < size ? size - n : 0, __VA_ARGS__)
    char h1[32];
    OUT("%-4s %-14s %-18s %12s %10s\n", "#", "layer", "output shape", "parameters", "FLOPs");
    OUT("%-4s %-14s %-18s %12s %10s\n", "-", "input", dn_shape_str(m->in_ndim, m->in_shape), "", "");
    int64_t total = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const dn_layer *l = &m->layers[i];
        int64_t np = 0;
        for (int k = 0; k < l->n_tensors; k++) np += dn_tensor_numel(&m->tensors[l->first_tensor + k].t);
        total += np;
        const dn_layer_def *def = dn_layer_def_of(l->kind);
        char label[64];
        if (def->summary) def->summary(l, label, sizeof label);
        else snprintf(label, sizeof label, "%s", l->type);
        OUT("%-4d %-14s %-18s %12lld %10s\n", i, label, dn_shape_str(l->out_ndim, l->out_shape), (long long)np,
            human((double)l->flops, h1, sizeof h1));
    }
    /* memory: parameters (with their gradients and up to two optimiser buffers when training) and the
     * activations one sample keeps for the backward pass */
    double act = 0;
    for (int i = 0; i < m->n_layers; i++) act += (double)dn_shape_numel(m->layers[i].out_ndim, m->layers[i].out_shape);
    char h2[32], h3[32], h4[32];
    OUT("total: %lld parameters (%sB as float32), %s FLOPs per sample\n", (long long)total,
        human((double)total * 4, h1, sizeof h1), human((double)dn_model_flops(m), h2, sizeof h2));
    OUT("memory: %sB of activations per sample; training with batch 64 needs about %sB (parameters, gradients, "
        "Adam state and activations)\n", human(act * 4, h3, sizeof h3),
        human((double)total * 16 + act * 4 * 64 * 3, h4, sizeof h4));
#undef OUT
    return n;
}
