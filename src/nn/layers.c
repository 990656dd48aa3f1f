/* Convolutional-network layers and graph blocks: conv2d, pooling, batch norm, dropout, shortcut (ResNet) and
 * route (Inception).  Each constructor checks the shapes it will see, so a bad model fails when it is built,
 * naming the layer, not in the middle of training. */
#include "nn/layer_table.h"
#include "kernels/threads.h"

#include <math.h>
#include <stdlib.h>

static dn_status need_image(const dn_model *m, const char *what, int64_t *c, int64_t *h, int64_t *w)
{
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    if (nd != 3)
        return dn_error(DN_ERR_SHAPE, "%s needs images [C, H, W] as input, but the previous layer gives %s (set the "
                                      "[net] input to channels, height, width)", what, dn_shape_str(nd, shape));
    *c = shape[0];
    *h = shape[1];
    *w = shape[2];
    return DN_OK;
}

dn_status dn_model_add_conv2d(dn_model *m, int64_t filters, int kh, int kw, int stride, int pad, int dilation,
                              int groups, dn_init init, bool bias)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_add_conv2d: model is NULL");
    int64_t c = 0, h = 0, w = 0;
    dn_status s = need_image(m, "conv2d", &c, &h, &w);
    if (s) return s;
    if (filters < 1 || filters > (1 << 20) || kh < 1 || kw < 1 || stride < 1 || dilation < 1 || groups < 1 ||
        pad < DN_PAD_SAME || kh > 4096 || kw > 4096 || stride > 4096 || dilation > 4096 || pad > 4096)
        return dn_error(DN_ERR_ARG, "conv2d: filters %lld, size %dx%d, stride %d, dilation %d and groups %d must be positive (size, stride, "
                                    "dilation and pad at most 4096) and pad >= 0 (or same)", (long long)filters, kh, kw, stride, dilation, groups);
    if (c % groups || filters % groups)
        return dn_error(DN_ERR_SHAPE, "conv2d: groups=%d must divide the %lld input channels and the %lld filters", groups,
                        (long long)c, (long long)filters);
    int pad_h = pad, pad_w = pad;
    if (pad == DN_PAD_SAME) {
        if (stride != 1 || (dilation * (kh - 1)) % 2 || (dilation * (kw - 1)) % 2)
            return dn_error(DN_ERR_ARG, "conv2d: pad=same needs stride 1 and an odd kernel (got size %dx%d, stride %d)",
                            kh, kw, stride);
        pad_h = dilation * (kh - 1) / 2;
        pad_w = dilation * (kw - 1) / 2;
        if (pad_h != pad_w) return dn_error(DN_ERR_ARG, "conv2d: pad=same with a non-square kernel is not supported");
    }
    int64_t ho = dn_conv_out_size(h, kh, stride, pad_h, dilation);
    int64_t wo = dn_conv_out_size(w, kw, stride, pad_w, dilation);
    if (ho < 1 || wo < 1)
        return dn_error(DN_ERR_SHAPE, "conv2d: the %dx%d kernel (dilation %d) is larger than the padded %lldx%lld input",
                        kh, kw, dilation, (long long)(h + 2 * pad_h), (long long)(w + 2 * pad_w));
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_CONV2D, "conv2d");
    if (!l) return DN_ERR_NOMEM;
    int li = m->n_layers;
    char name[64];
    int64_t cin = c / groups;
    snprintf(name, sizeof name, "layers.%d.weight", li);
    int wi = dn_model_add_param(m, name, 4, (int64_t[]){filters, cin, kh, kw}, true);
    int bi = -2;
    if (wi >= 0 && bias) {
        snprintf(name, sizeof name, "layers.%d.bias", li);
        bi = dn_model_add_param(m, name, 1, &filters, false);
    }
    if (wi < 0 || bi == -1) return DN_ERR_NOMEM;
    l->n_tensors = bias ? 2 : 1;
    l->units = filters;
    l->kh = kh;
    l->kw = kw;
    l->stride = stride;
    l->pad = pad_h;
    l->dilation = dilation;
    l->groups = groups;
    l->init = init;
    l->bias = bias;
    l->op = dn_op_find("conv2d");
    l->op_relu = dn_op_find("conv2d_relu");
    l->out_ndim = 3;
    l->out_shape[0] = filters;
    l->out_shape[1] = ho;
    l->out_shape[2] = wo;
    l->flops = dn_flop_estimate((2.0 * (double)(cin * kh * kw) + (bias ? 1 : 0)) * (double)filters * (double)ho * (double)wo);
    int64_t nw = filters * cin * kh * kw;
    dn_model_init_weights(m, m->tensors[wi].t.data, nw, bias ? m->tensors[bi].t.data : NULL, filters, cin * kh * kw,
                          filters * kh * kw, init);
    m->n_layers++;
    return DN_OK;
}

static dn_status conv2d_build(dn_model *m, dn_layer_args *a)
{
    int size = dn_layer_arg_int(a, "size"), pad = 0;
    int size_h = dn_layer_arg_given(a, "size_h") ? dn_layer_arg_int(a, "size_h") : size;
    int size_w = dn_layer_arg_given(a, "size_w") ? dn_layer_arg_int(a, "size_w") : size;
    const char *pad_text = dn_layer_arg_str(a, "pad");
    if (!strcmp(pad_text, "same")) pad = DN_PAD_SAME;
    else {
        char *end;
        long v = strtol(pad_text, &end, 10);
        if (end == pad_text || *end || v < 0 || v > 1024) {
            a->fault = "pad";
            return dn_error(DN_ERR_FORMAT, "key 'pad': '%s' is not a padding (a number >= 0, or same)", pad_text);
        }
        pad = (int)v;
    }
    dn_init init;
    if (dn_init_parse(dn_layer_arg_str(a, "init"), &init)) {
        a->fault = "init";
        return DN_ERR_FORMAT;
    }
    dn_status st = dn_model_add_conv2d(m, dn_layer_arg_int(a, "filters"), size_h, size_w, dn_layer_arg_int(a, "stride"),
                                       pad, dn_layer_arg_int(a, "dilation"), dn_layer_arg_int(a, "groups"), init,
                                       dn_layer_arg_int(a, "bias") != 0);
    return st ? st : dn_layer_fuse_arg(m, a);
}

static dn_tensor *conv2d_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m;
    dn_tensor *in[3] = {h, e->p0, e->p1};
    double a[DN_CONV_N_ATTRS];
    a[DN_CONV_STRIDE_H] = a[DN_CONV_STRIDE_W] = l->stride;
    a[DN_CONV_PAD_H] = a[DN_CONV_PAD_W] = l->pad;
    a[DN_CONV_DILATION_H] = a[DN_CONV_DILATION_W] = l->dilation;
    a[DN_CONV_GROUPS] = l->groups;
    return dn_op_apply(ctx, e->relu ? l->op_relu : l->op, e->bias ? 3 : 2, in, a);
}

const dn_layer_def dn_layer_conv2d = {
    .kind = DN_LAYER_CONV2D,
    .sections = {"convolutional", "conv", "conv2d"},
    .keys = {DN_KEY("filters", DN_KEY_INT, NULL),
             DN_KEY("size", DN_KEY_INT, NULL),
             DN_KEY_DOC("size_h", DN_KEY_INT, "", "= size"),
             DN_KEY_DOC("size_w", DN_KEY_INT, "", "= size"),
             DN_KEY("stride", DN_KEY_INT, "1"),
             DN_KEY("pad", DN_KEY_STRING, "0"),
             DN_KEY("dilation", DN_KEY_INT, "1"),
             DN_KEY("groups", DN_KEY_INT, "1"),
             DN_KEY("bias", DN_KEY_BOOL, "1"),
             DN_KEY("init", DN_KEY_STRING, "default"),
             DN_KEY("activation", DN_KEY_STRING, "")},
    .build = conv2d_build,
    .forward = conv2d_forward,
    .reinit = dn_layer_reinit_affine,
    .fusable = true,
};

dn_status dn_model_add_pool2d(dn_model *m, const char *kind, int size, int stride, int pad)
{
    if (!m || !kind) return dn_error(DN_ERR_ARG, "dn_model_add_pool2d: model or kind is NULL");
    char opname[32];
    snprintf(opname, sizeof opname, "%s_pool2d", kind);
    const dn_op *op = dn_op_find(opname);
    if (!op || (strcmp(kind, "max") && strcmp(kind, "avg") && strcmp(kind, "min")))
        return dn_error(DN_ERR_ARG, "unknown pooling '%s' (max, avg, min)", kind);
    int64_t c = 0, h = 0, w = 0;
    dn_status s = need_image(m, opname, &c, &h, &w);
    if (s) return s;
    if (stride == 0) stride = size;
    if (size < 1 || stride < 1 || pad < 0 || pad > size / 2 || size > 4096 || stride > 4096)
        return dn_error(DN_ERR_ARG, "%s: size %d and stride %d must be positive and pad %d at most size/2", opname, size,
                        stride, pad);
    if (h + 2 * pad < size || w + 2 * pad < size)
        return dn_error(DN_ERR_SHAPE, "%s: the %dx%d window is larger than the padded %lldx%lld input", opname, size, size,
                        (long long)(h + 2 * pad), (long long)(w + 2 * pad));
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_POOL, opname);
    if (!l) return DN_ERR_NOMEM;
    l->op = op;
    double a[DN_MAX_ATTRS] = {0};
    a[DN_POOL_KERNEL_H] = a[DN_POOL_KERNEL_W] = size;
    a[DN_POOL_STRIDE_H] = a[DN_POOL_STRIDE_W] = stride;
    a[DN_POOL_PAD_H] = a[DN_POOL_PAD_W] = pad;
    memcpy(l->attr, a, sizeof a);
    l->kh = l->kw = size;
    l->stride = stride;
    l->pad = pad;
    l->out_shape[1] = dn_conv_out_size(h, size, stride, pad, 1);
    l->out_shape[2] = dn_conv_out_size(w, size, stride, pad, 1);
    l->flops = (int64_t)size * size * c * l->out_shape[1] * l->out_shape[2];
    m->n_layers++;
    return DN_OK;
}

static dn_status pool_build(dn_model *m, dn_layer_args *a)
{
    char kind[8];
    snprintf(kind, sizeof kind, "%.3s", a->section); /* maxpool -> max */
    return dn_model_add_pool2d(m, kind, dn_layer_arg_int(a, "size"), dn_layer_arg_int(a, "stride"),
                               dn_layer_arg_int(a, "pad"));
}

/* pooling and global pooling: the op chosen when the layer was built, with its attributes */
static dn_tensor *op_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m, (void)e;
    return dn_op_apply(ctx, l->op, 1, &h, l->attr);
}

const dn_layer_def dn_layer_pool = {
    .kind = DN_LAYER_POOL,
    .sections = {"maxpool", "avgpool", "minpool"},
    .keys = {DN_KEY("size", DN_KEY_INT, "2"), DN_KEY_DOC("stride", DN_KEY_INT, "0", "= size"), DN_KEY("pad", DN_KEY_INT, "0")},
    .build = pool_build,
    .forward = op_forward,
};

dn_status dn_model_add_global_pool(dn_model *m, const char *kind)
{
    if (!m || !kind) return dn_error(DN_ERR_ARG, "dn_model_add_global_pool: model or kind is NULL");
    char opname[40];
    snprintf(opname, sizeof opname, "global_%s_pool2d", kind);
    const dn_op *op = dn_op_find(opname);
    if (!op || (strcmp(kind, "max") && strcmp(kind, "avg")))
        return dn_error(DN_ERR_ARG, "unknown global pooling '%s' (avg, max)", kind);
    int64_t c = 0, h = 0, w = 0;
    dn_status s = need_image(m, opname, &c, &h, &w);
    if (s) return s;
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_GLOBAL_POOL, opname);
    if (!l) return DN_ERR_NOMEM;
    l->op = op;
    for (int i = 0; i < op->n_attrs; i++) l->attr[i] = op->attr_defaults[i];
    l->out_shape[1] = l->out_shape[2] = 1;
    l->flops = c * h * w;
    m->n_layers++;
    return DN_OK;
}

static dn_status global_pool_build(dn_model *m, dn_layer_args *a)
{
    return dn_model_add_global_pool(m, a->section[7] == 'a' ? "avg" : "max"); /* global_avgpool, global_maxpool */
}

const dn_layer_def dn_layer_global_pool = {
    .kind = DN_LAYER_GLOBAL_POOL,
    .sections = {"global_avgpool", "global_maxpool"},
    .build = global_pool_build,
    .forward = op_forward,
};

dn_status dn_model_add_batchnorm(dn_model *m, float momentum, float eps)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_add_batchnorm: model is NULL");
    if (!(momentum >= 0 && momentum <= 1) || !(eps > 0))
        return dn_error(DN_ERR_ARG, "batchnorm: momentum must be in [0, 1] and eps positive (got %g, %g)",
                        (double)momentum, (double)eps);
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    if (nd != 1 && nd != 2 && nd != 3)
        return dn_error(DN_ERR_SHAPE, "batchnorm needs features [C], [C, L] or images [C, H, W], got %s",
                        dn_shape_str(nd, shape));
    int64_t c = shape[0];
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_BATCHNORM, nd == 3 ? "batchnorm2d" : "batchnorm1d");
    if (!l) return DN_ERR_NOMEM;
    int li = m->n_layers;
    char name[64];
    snprintf(name, sizeof name, "layers.%d.weight", li);
    int gi = dn_model_add_param(m, name, 1, &c, false);
    snprintf(name, sizeof name, "layers.%d.bias", li);
    int bi = gi >= 0 ? dn_model_add_param(m, name, 1, &c, false) : -1;
    snprintf(name, sizeof name, "layers.%d.running_mean", li);
    int mi = bi >= 0 ? dn_model_add_buffer(m, name, c, 0.0f) : -1;
    snprintf(name, sizeof name, "layers.%d.running_var", li);
    int vi = mi >= 0 ? dn_model_add_buffer(m, name, c, 1.0f) : -1;
    if (vi < 0) return DN_ERR_NOMEM;
    for (int64_t i = 0; i < c; i++) m->tensors[gi].t.data[i] = 1.0f;
    l->n_tensors = 2;
    l->n_buffers = 2;
    l->bias = true;
    l->momentum = momentum;
    l->eps = eps;
    l->flops = 4 * dn_shape_numel(nd, shape);
    m->n_layers++;
    return DN_OK;
}

static dn_status batchnorm_build(dn_model *m, dn_layer_args *a)
{
    return dn_model_add_batchnorm(m, dn_layer_arg_float(a, "momentum"), dn_layer_arg_float(a, "eps"));
}

static dn_tensor *batchnorm_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    return dn_batch_norm(ctx, h, e->p0, e->p1, &m->buffers[l->first_buffer].t, &m->buffers[l->first_buffer + 1].t,
                         m->training, l->momentum, l->eps);
}

static void batchnorm_reinit(dn_model *m, const dn_layer *l)
{
    dn_tensor *gamma = &m->tensors[l->first_tensor].t;
    int64_t n = dn_tensor_numel(gamma);
    for (int64_t i = 0; i < n; i++) gamma->data[i] = 1.0f;
    memset(m->tensors[l->first_tensor + 1].t.data, 0, (size_t)n * sizeof(float));
}

const dn_layer_def dn_layer_batchnorm = {
    .kind = DN_LAYER_BATCHNORM,
    .sections = {"batchnorm"},
    .keys = {DN_KEY("momentum", DN_KEY_FLOAT, "0.1"), DN_KEY("eps", DN_KEY_FLOAT, "1e-5")},
    .build = batchnorm_build,
    .forward = batchnorm_forward,
    .reinit = batchnorm_reinit,
};

dn_status dn_model_add_dropout(dn_model *m, float p, bool channels)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_add_dropout: model is NULL");
    if (!(p >= 0 && p < 1)) return dn_error(DN_ERR_ARG, "dropout: p must be in [0, 1), got %g", (double)p);
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    if (channels && nd != 3)
        return dn_error(DN_ERR_SHAPE, "dropout2d drops channels of images [C, H, W], got %s", dn_shape_str(nd, shape));
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_DROPOUT, channels ? "dropout2d" : "dropout");
    if (!l) return DN_ERR_NOMEM;
    l->p = p;
    l->channel_dropout = channels;
    m->n_layers++;
    return DN_OK;
}

/* A dropout mask in the arena: 0 with probability p, else 1/(1-p) (inverted dropout).  Channel dropout draws
 * one value per [n, c] and broadcasts it over the spatial axes.
 *
 * Each mask takes one 64-bit key from the model's generator; element i's uniform number is a hash of (key, i)
 * (splitmix64's finaliser over key + i * golden ratio), so any stretch of the mask can be filled on its own: large
 * masks are shared between threads, with the same values for any thread count, and a checkpoint's generator
 * state still fixes every later mask.  A shard of a batch spread over replicas (ctx->replica) numbers its elements
 * as the whole batch does (from shard_offset samples on): every replica draws the same key, so the shards' masks
 * are the pieces of the whole batch's mask. */
typedef struct mask_job {
    float *data;
    int64_t n;
    uint64_t base; /* the global index of element 0 */
    uint64_t key;
    float p, keep;
} mask_job;

static inline float mask_uniform(uint64_t key, uint64_t i)
{
    uint64_t z = key + i * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f); /* the top 24 bits: a float in [0, 1) */
}

static void mask_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const mask_job *j = arg;
    int64_t lo, hi;
    dn_part_range(j->n, 16, part, parts, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) j->data[i] = mask_uniform(j->key, j->base + (uint64_t)i) < j->p ? 0.0f : j->keep;
}

static dn_tensor *dropout_mask(dn_model *m, dn_ctx *ctx, const dn_tensor *h, const dn_layer *l)
{
    int64_t shape[DN_MAX_DIMS] = {0};
    int nd = h->ndim;
    for (int i = 0; i < nd; i++) shape[i] = (l->channel_dropout && i >= 2) ? 1 : h->shape[i];
    dn_tensor *mask = dn_ctx_tensor(ctx, nd, shape);
    if (!mask) return NULL;
    const uint64_t hi = dn_rng_u32(&m->rng), lo = dn_rng_u32(&m->rng);
    int64_t per_sample = 1; /* mask elements per sample */
    for (int i = 1; i < nd; i++) per_sample *= shape[i];
    const uint64_t base = ctx->replica && nd > 0 ? (uint64_t)(ctx->shard_offset * per_sample) : 0;
    mask_job j = {mask->data, dn_tensor_numel(mask), base, hi << 32 | lo, l->p, 1.0f / (1.0f - l->p)};
    dn_parallel_run(j.n >= 65536 ? dn_parallel_parts() : 1, mask_part, &j);
    return mask;
}

static dn_status dropout_build(dn_model *m, dn_layer_args *a)
{
    return dn_model_add_dropout(m, dn_layer_arg_float(a, "p"), !strcmp(a->section, "dropout2d"));
}

static dn_tensor *dropout_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)e;
    if (!m->training || l->p <= 0) return h;
    dn_tensor *mask = dropout_mask(m, ctx, h, l);
    if (!mask) {
        ctx->status = DN_ERR_NOMEM;
        return NULL;
    }
    return dn_mul(ctx, h, mask);
}

const dn_layer_def dn_layer_dropout = {
    .kind = DN_LAYER_DROPOUT,
    .sections = {"dropout", "dropout2d"},
    .keys = {DN_KEY("p", DN_KEY_FLOAT, "0.5")},
    .build = dropout_build,
    .forward = dropout_forward,
};

/* A layer reference: negative counts back from the layer being added (-1 = the previous one). */
static dn_status resolve(const dn_model *m, int ref, const char *what, int *abs_index)
{
    int i = ref < 0 ? m->n_layers + ref : ref;
    if (i < 0 || i >= m->n_layers)
        return dn_error(DN_ERR_ARG, "%s: layer %d does not exist (there are %d layers before this one)", what, ref,
                        m->n_layers);
    *abs_index = i;
    return DN_OK;
}

dn_status dn_model_add_shortcut(dn_model *m, int from)
{
    if (!m) return dn_error(DN_ERR_ARG, "dn_model_add_shortcut: model is NULL");
    int i = 0;
    dn_status s = resolve(m, from, "shortcut", &i);
    if (s) return s;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    const dn_layer *src = &m->layers[i];
    bool same = src->out_ndim == nd;
    for (int k = 0; same && k < nd; k++) same = src->out_shape[k] == shape[k];
    if (!same)
        return dn_error(DN_ERR_SHAPE, "shortcut: layer %d gives %s but the previous layer gives %s; a residual add "
                                      "needs equal shapes", i, dn_shape_str(src->out_ndim, src->out_shape),
                        dn_shape_str(nd, shape));
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_SHORTCUT, "shortcut");
    if (!l) return DN_ERR_NOMEM;
    l->n_from = 1;
    l->from[0] = i;
    l->flops = dn_shape_numel(nd, shape);
    m->n_layers++;
    return DN_OK;
}

static dn_status shortcut_build(dn_model *m, dn_layer_args *a)
{
    dn_status st = dn_model_add_shortcut(m, dn_layer_arg_int(a, "from"));
    return st ? st : dn_layer_fuse_arg(m, a);
}

static dn_tensor *shortcut_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m;
    return dn_add(ctx, h, e->outs[l->from[0] + 1]);
}

const dn_layer_def dn_layer_shortcut = {
    .kind = DN_LAYER_SHORTCUT,
    .sections = {"shortcut"},
    .keys = {DN_KEY("from", DN_KEY_INT, NULL), DN_KEY("activation", DN_KEY_STRING, "")},
    .build = shortcut_build,
    .forward = shortcut_forward,
};

dn_status dn_model_add_route(dn_model *m, int n, const int *layers)
{
    if (!m || !layers || n < 1 || n > DN_MAX_ROUTE)
        return dn_error(DN_ERR_ARG, "route: give 1 to %d layers", DN_MAX_ROUTE);
    int idx[DN_MAX_ROUTE] = {0};
    int64_t channels = 0;
    const dn_layer *first = NULL;
    for (int k = 0; k < n; k++) {
        dn_status s = resolve(m, layers[k], "route", &idx[k]);
        if (s) return s;
        const dn_layer *src = &m->layers[idx[k]];
        if (!first) first = src;
        bool ok = src->out_ndim == first->out_ndim;
        for (int d = 1; ok && d < src->out_ndim; d++) ok = src->out_shape[d] == first->out_shape[d];
        if (!ok)
            return dn_error(DN_ERR_SHAPE, "route: layer %d gives %s and layer %d gives %s; only channels may differ",
                            idx[0], dn_shape_str(first->out_ndim, first->out_shape), idx[k],
                            dn_shape_str(src->out_ndim, src->out_shape));
        channels += src->out_shape[0];
        if (channels > (1 << 24))
            return dn_error(DN_ERR_SHAPE, "route: the joined output would have %lld channels", (long long)channels);
    }
    /* copy what is needed from `first` now: adding a layer may move the layer array */
    int out_ndim = first->out_ndim;
    int64_t out_shape[DN_MAX_DIMS];
    memcpy(out_shape, first->out_shape, sizeof out_shape);
    dn_layer *l = dn_model_new_layer(m, DN_LAYER_ROUTE, "route");
    if (!l) return DN_ERR_NOMEM;
    l->n_from = n;
    memcpy(l->from, idx, (size_t)n * sizeof(int));
    l->out_ndim = out_ndim;
    memcpy(l->out_shape, out_shape, sizeof l->out_shape);
    l->out_shape[0] = channels;
    m->n_layers++;
    return DN_OK;
}

static dn_status route_build(dn_model *m, dn_layer_args *a) { return dn_model_add_route(m, a->n_ints, a->ints); }

static dn_tensor *route_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e)
{
    (void)m, (void)h;
    dn_tensor *parts[DN_MAX_ROUTE];
    for (int k = 0; k < l->n_from; k++) parts[k] = e->outs[l->from[k] + 1];
    return l->n_from == 1 ? parts[0] : dn_concat(ctx, l->n_from, parts, 1);
}

const dn_layer_def dn_layer_route = {
    .kind = DN_LAYER_ROUTE,
    .sections = {"route"},
    .keys = {DN_KEY("layers", DN_KEY_INTS, NULL)},
    .build = route_build,
    .forward = route_forward,
};
